//! The scrubber: re-verifies the stored ledger in the background while the server runs.
//!
//! A pass asks the store for its live bounds (where the journal ended and every log's size,
//! between two commits) and runs the offline verifier over what lies before them
//! ([`veritrail_ledger::verify::verify_live_ledger_dir`]): the journal's checksums, every
//! record's leaf hash, every stored Merkle node and record offset, every signed checkpoint
//! under the deployment's key. It reads at most `scrub.bytes_per_second`, one pass every
//! `scrub.interval_secs`.
//!
//! What a pass finds goes four ways: one `veritrail.integrity.check_failed` event into each
//! affected tenant's log (damage that names no tenant, such as an unreadable frame, affects
//! every tenant), an error in the server log, `veritrail_integrity_failures_total` in
//! `/metrics`, and the tenant's last scrub (`GET /api/v1/log/integrity`, the integrity
//! page). Damaged derived files (record offsets, node hashes) are rewritten from the
//! journal at once; damage to the journal itself cannot be repaired here and is reported
//! on every pass until it is dealt with (`veritrail verify` says exactly where).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use veritrail_api::{IntegrityBody, IntegrityFailure, ScrubBody};
use veritrail_core::event::{Event, EventInput, TenantId};
use veritrail_ledger::verify::{self, Fault, FaultKind, LiveBounds};

use crate::AppState;
use crate::audit;
use crate::clock;
use crate::error::ApiError;

/// Failures one scrub lists per tenant (the count says how many there were).
const LISTED_FAILURES: usize = 20;

/// The scrubber's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct Scrubber {
    passes: AtomicU64,
    last_finished_unix: AtomicU64,
    /// Passes that could not run (the ledger directory unreadable).
    errors: AtomicU64,
}

impl Scrubber {
    /// `(passes, unix time the last pass finished, passes that could not run)`.
    pub fn stats(&self) -> (u64, u64, u64) {
        (
            self.passes.load(Ordering::Relaxed),
            self.last_finished_unix.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// What `GET /api/v1/log/integrity` and the integrity page show of `tenant`'s log.
pub async fn integrity(state: &AppState, tenant: &TenantId) -> Result<IntegrityBody, ApiError> {
    let work_state = state.clone();
    let work_tenant = tenant.clone();
    let last_scrub = state
        .blocking(tenant, move || {
            Ok(work_state.control().scrub(&work_tenant)?)
        })
        .await?;
    Ok(IntegrityBody {
        interval_seconds: state.config().scrub.interval_secs,
        last_scrub,
    })
}

/// Starts the background job: a pass every `scrub.interval_secs`, until shutdown.
pub fn spawn_job(state: &AppState) {
    let interval = Duration::from_secs(state.config().scrub.interval_secs);
    state.spawn_every(interval, |state| async move {
        if let Err(mut err) = run_pass(&state).await {
            err.report();
        }
    });
}

/// One pass over every log: verifies, repairs what is derived, records what it found.
/// Returns the number of failures found.
pub async fn run_pass(state: &AppState) -> Result<u64, ApiError> {
    let work_state = state.clone();
    let pass = tokio::task::spawn_blocking(move || verify_pass(&work_state))
        .await
        .map_err(ApiError::internal)?;
    let Some(pass) = pass else {
        return Ok(0);
    };
    let n_failures = pass.by_tenant.values().map(|f| f.len() as u64).sum();
    let mut scrubs = Vec::with_capacity(pass.bounds.sizes.len());
    for (tenant, &size) in &pass.bounds.sizes {
        let failures = pass.by_tenant.get(tenant).cloned().unwrap_or_default();
        let mut scrub = ScrubBody {
            started_at: pass.started_at.clone(),
            finished_at: pass.finished_at.clone(),
            tree_size: size,
            ok: failures.is_empty(),
            n_failures: failures.len() as u64,
            failures: failures.iter().take(LISTED_FAILURES).cloned().collect(),
            recorded_as: None,
        };
        if !failures.is_empty() {
            scrub.recorded_as = record_failures(state, tenant, &scrub).await;
        }
        scrubs.push((tenant.clone(), scrub));
    }
    let work_state = state.clone();
    state
        .blocking_untenanted(move || Ok(work_state.control().put_scrubs(&scrubs)?))
        .await?;
    let scrubber = state.scrubber();
    scrubber.passes.fetch_add(1, Ordering::Relaxed);
    crate::metrics::FAULTS
        .integrity
        .fetch_add(n_failures, Ordering::Relaxed);
    scrubber
        .last_finished_unix
        .store(clock::now_unix_secs(), Ordering::Relaxed);
    Ok(n_failures)
}

/// What one pass found.
struct Pass {
    bounds: LiveBounds,
    started_at: String,
    finished_at: String,
    by_tenant: BTreeMap<TenantId, Vec<IntegrityFailure>>,
}

/// Verifies the ledger to its live bounds at the configured pace, and rewrites the
/// derived files of every tenant found with damaged ones. `None` when the store has no
/// files to scrub, the pass was stopped by shutdown, or the directory could not be read.
fn verify_pass(state: &AppState) -> Option<Pass> {
    let scrubber = state.scrubber();
    // One pass at a time, and never beside a compaction.
    let _alone = state.lifecycle().maintenance();
    let ledger = state.ledger();
    let (dir, bounds) = ledger.store().live_bounds()?;
    let started_at = clock::now_rfc3339();
    let started = Instant::now();
    let bytes_per_second = state.config().scrub.bytes_per_second.max(1);
    let mut pace = |done: u64, _total: u64| {
        if state.is_shutting_down() {
            return false;
        }
        // Sleep until the bytes read so far are within the budget.
        let due = Duration::from_secs_f64(done as f64 / bytes_per_second as f64);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(ahead.min(Duration::from_secs(1)));
        }
        true
    };
    let report = match verify::verify_live_ledger_dir(&dir, ledger.verifier(), &bounds, &mut pace) {
        Ok(report) => report,
        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => return None,
        Err(err) => {
            scrubber.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, dir = %dir.display(), "the scrubber could not read the ledger");
            return None;
        }
    };
    let mut by_tenant: BTreeMap<TenantId, Vec<IntegrityFailure>> = BTreeMap::new();
    let mut derived: HashMap<TenantId, bool> = HashMap::new();
    for fault in &report.faults {
        tracing::error!(%fault, "the scrubber found the stored ledger damaged");
        let failure = failure(fault);
        match &fault.tenant {
            Some(tenant) => {
                if fault.kind == FaultKind::DerivedMismatch {
                    derived.insert(tenant.clone(), false);
                }
                by_tenant.entry(tenant.clone()).or_default().push(failure);
            }
            // Damage that names no tenant may hold any tenant's records.
            None => {
                for tenant in bounds.sizes.keys() {
                    by_tenant
                        .entry(tenant.clone())
                        .or_default()
                        .push(failure.clone());
                }
            }
        }
    }
    for (tenant, repaired) in &mut derived {
        match ledger.store().rewrite_derived(tenant, &bounds) {
            Ok(()) => *repaired = true,
            Err(err) => {
                tracing::error!(%tenant, error = %err, "could not rewrite the tenant's derived files");
            }
        }
    }
    for (tenant, failures) in &mut by_tenant {
        if derived.get(tenant).copied().unwrap_or(false) {
            for failure in failures.iter_mut().filter(|f| f.check == "derived") {
                failure.repaired = true;
            }
        }
    }
    Some(Pass {
        bounds,
        started_at,
        finished_at: clock::now_rfc3339(),
        by_tenant,
    })
}

fn failure(fault: &Fault) -> IntegrityFailure {
    let check = match fault.kind {
        FaultKind::DamagedJournal => "journal",
        FaultKind::ChecksumMismatch => "checksum",
        FaultKind::UndecodableRecord => "record",
        FaultKind::SeqGap | FaultKind::SeqOutOfOrder => "sequence",
        FaultKind::BadSignature => "signature",
        FaultKind::BadCheckpoint | FaultKind::CheckpointMismatch => "checkpoint",
        FaultKind::Unsigned => "unsigned",
        FaultKind::MissingCommitted => "missing",
        FaultKind::DerivedMismatch => "derived",
        FaultKind::BadRemoval => "removal",
    };
    IntegrityFailure {
        check: check.to_owned(),
        seq: fault.seq,
        position: fault.pos,
        detail: fault.detail.clone(),
        repaired: false,
    }
}

/// Writes the tenant's `veritrail.integrity.check_failed` event; its seq, if it could be
/// written (a log too damaged to append to is still reported by the API and the metric).
async fn record_failures(state: &AppState, tenant: &TenantId, scrub: &ScrubBody) -> Option<u64> {
    let written = match check_failed(scrub) {
        Ok(event) => audit::record_returning_seq(state, tenant, event).await,
        Err(err) => Err(err),
    };
    match written {
        Ok(seq) => Some(seq),
        Err(mut err) => {
            err.report();
            tracing::error!(%tenant, "the integrity event could not be written");
            None
        }
    }
}

/// The event that reports a scrub's failures: what failed first, and how many.
fn check_failed(scrub: &ScrubBody) -> Result<Event, ApiError> {
    let first = scrub.failures.first();
    let reason = first.map_or_else(String::new, |failure| {
        let mut text = failure.check.clone();
        if let Some(seq) = failure.seq {
            text.push_str(&format!(" at seq {seq}"));
        }
        if let Some(pos) = failure.position {
            text.push_str(&format!(" (journal position {pos})"));
        }
        format!("{text}: {}", failure.detail)
    });
    let input: EventInput = serde_json::from_value(json!({
        "type": audit::types::INTEGRITY_CHECK_FAILED,
        "actor": {"id": "veritrail", "type": "service"},
        "targets": [{"id": "ledger", "type": "storage"}],
        "outcome": "failure",
        "source": {"service": "veritrail", "component": "scrubber", "version": env!("CARGO_PKG_VERSION")},
        "details": {
            "reason": reason,
            "tree_size": scrub.tree_size,
            "failures": scrub.n_failures,
            "checks": scrub.failures.iter().map(|f| f.check.as_str()).collect::<std::collections::BTreeSet<_>>(),
            "repaired": scrub.failures.iter().any(|f| f.repaired),
            "scrub_started_at": scrub.started_at,
        },
    }))
    .map_err(ApiError::internal)?;
    Event::parse(input).map_err(ApiError::internal)
}
