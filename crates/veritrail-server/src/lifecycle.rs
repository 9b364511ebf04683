//! Data lifecycle: retention, erasure and legal holds.
//!
//! Every removal is one event of the tenant's own log that reports it
//! (`veritrail.retention.deleted`, `veritrail.event.erased`), committed together with the
//! removal ([`veritrail_ledger::Ledger::append_removal`]). The removed records' leaf hashes
//! stay in the tree, so every checkpoint and every proof of a kept record still verifies,
//! and the log itself says who removed what, when and why. Reading a removed record answers
//! 410; the search index deletes what it held of them when it applies the reporting event;
//! webhooks and exports read through the ledger, which leaves them out.
//!
//! A legal hold keeps what it covers: a retention run cuts around it (the cut's `except`
//! list), an erasure that would touch it is refused (409). One tenant's lifecycle changes
//! run one at a time (a lock per tenant), so a hold placed while a run computes its cut
//! either is seen by that run or comes after it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use veritrail_api::{
    ErasureBody, ErasureInput, HoldBody, HoldInput, RetentionBody, RetentionPolicy, RetentionRun,
    SubjectFilter, error_codes,
};
use veritrail_core::event::TenantId;
use veritrail_core::record::Record;
use veritrail_ledger::{Ledger, RemovalScope};
use veritrail_search::{Order, Query};

use crate::AppState;
use crate::audit;
use crate::clock;
use crate::control::{DataSettings, Principal};
use crate::error::ApiError;

/// Most records one erasure removes; a subject with more is erased by repeating the
/// request (each is one event, whose details list the seqs).
pub const MAX_ERASURE_RECORDS: usize = 1000;
/// Most legal holds a tenant has at once.
pub const MAX_HOLDS: usize = 100;
const MAX_REASON_BYTES: usize = 1024;
const MAX_SUBJECT_BYTES: usize = 256;
/// The longest retention a policy may set: 100 years.
const MAX_AGE_DAYS: u32 = 36_500;
/// How long an erasure or a run waits for the search index to hold every record it must
/// look at.
const SEARCH_WAIT: Duration = Duration::from_secs(30);
const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// Per-tenant locks, the last retention runs, and the compaction that follows removals.
#[derive(Debug, Default)]
pub struct Lifecycle {
    locks: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
    last_runs: Mutex<HashMap<TenantId, RetentionRun>>,
    /// A compaction was asked for since the running one started.
    compaction_wanted: AtomicBool,
    compaction_running: AtomicBool,
    /// Compaction passes done, record bodies they took out, and the journal bytes they
    /// gave back.
    compaction_passes: AtomicU64,
    compacted_records: AtomicU64,
    compacted_bytes: AtomicU64,
    /// Held by a compaction and by a scrub: a scrub reads the journal files beside the
    /// derived ones, which a compaction moves under it.
    maintenance: Mutex<()>,
}

impl Lifecycle {
    async fn lock(&self, tenant: &TenantId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().expect("lifecycle locks poisoned");
            Arc::clone(locks.entry(tenant.clone()).or_default())
        };
        lock.lock_owned().await
    }

    /// Waits for the compaction or scrub under way; holds the others off while held.
    pub fn maintenance(&self) -> std::sync::MutexGuard<'_, ()> {
        self.maintenance.lock().expect("maintenance lock poisoned")
    }

    /// Waits (at most `limit`) until no compaction runs; at shutdown, after the flag is set,
    /// none starts again.
    pub fn wait_compaction_stopped(&self, limit: Duration) {
        let started = std::time::Instant::now();
        while self.compaction_running.load(Ordering::SeqCst) && started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `(passes, record bodies taken out, journal bytes given back, running now)` of
    /// compaction.
    pub fn compaction_stats(&self) -> (u64, u64, u64, bool) {
        (
            self.compaction_passes.load(Ordering::Relaxed),
            self.compacted_records.load(Ordering::Relaxed),
            self.compacted_bytes.load(Ordering::Relaxed),
            self.compaction_running.load(Ordering::Relaxed),
        )
    }

    fn last_run(&self, tenant: &TenantId) -> Option<RetentionRun> {
        let runs = self.last_runs.lock().expect("lifecycle runs poisoned");
        runs.get(tenant).cloned()
    }
}

/// Whether a retention policy can be applied: limits of at least one day or one event.
///
/// # Errors
///
/// A sentence saying which limit is wrong.
pub fn check_policy(policy: &RetentionPolicy) -> Result<(), String> {
    if let Some(days) = policy.max_age_days
        && !(1..=MAX_AGE_DAYS).contains(&days)
    {
        return Err(format!(
            "max_age_days must be between 1 and {MAX_AGE_DAYS}, not {days}"
        ));
    }
    if policy.max_events == Some(0) {
        return Err("max_events must be at least 1 (leave it out to keep any number)".into());
    }
    // The spec's bound for an integer (a signed 64-bit one, as JSON tools read it).
    if let Some(events) = policy.max_events
        && i64::try_from(events).is_err()
    {
        return Err(format!(
            "max_events must be at most {}, not {events}",
            i64::MAX
        ));
    }
    Ok(())
}

/// A policy in words, as the audit events record it.
fn policy_text(policy: &RetentionPolicy) -> String {
    match (policy.max_age_days, policy.max_events) {
        (None, None) => "keep forever".to_owned(),
        (Some(days), None) => format!("max_age_days={days}"),
        (None, Some(events)) => format!("max_events={events}"),
        (Some(days), Some(events)) => format!("max_age_days={days} max_events={events}"),
    }
}

/// The policy in force for a tenant with these settings, and where it comes from.
fn effective(state: &AppState, settings: &DataSettings) -> (RetentionPolicy, &'static str) {
    match settings.retention {
        Some(policy) => (policy, "tenant"),
        None => (state.config().retention.policy(), "server"),
    }
}

/// `GET /api/v1/retention`.
///
/// # Errors
///
/// The control plane's.
pub async fn retention(state: &AppState, tenant: &TenantId) -> Result<RetentionBody, ApiError> {
    let settings = data_settings(state, tenant).await?;
    Ok(retention_body(state, tenant, &settings))
}

fn retention_body(state: &AppState, tenant: &TenantId, settings: &DataSettings) -> RetentionBody {
    let (policy, source) = effective(state, settings);
    let removed = state.ledger().removed(tenant);
    RetentionBody {
        policy,
        source: source.to_owned(),
        interval_seconds: state.config().retention.interval_secs,
        removed_below: removed.below(),
        removed_count: removed.count(),
        last_run: state.lifecycle().last_run(tenant),
    }
}

async fn data_settings(state: &AppState, tenant: &TenantId) -> Result<DataSettings, ApiError> {
    let (work_state, work_tenant) = (state.clone(), tenant.clone());
    state
        .blocking(tenant, move || {
            Ok(work_state.control().data_settings(&work_tenant)?)
        })
        .await
}

async fn put_data_settings(
    state: &AppState,
    tenant: &TenantId,
    settings: DataSettings,
) -> Result<DataSettings, ApiError> {
    let (work_state, work_tenant) = (state.clone(), tenant.clone());
    state
        .blocking(tenant, move || {
            Ok(work_state
                .control()
                .put_data_settings(&work_tenant, &settings)?)
        })
        .await
}

/// Sets the tenant's own retention policy (`None`: the server's default applies again),
/// recorded as `veritrail.retention.changed`; undone if that cannot be written.
///
/// # Errors
///
/// 400 for a policy that cannot apply; the control plane's and the ledger's.
pub async fn set_retention(
    state: &AppState,
    actor: &Principal,
    tenant: &TenantId,
    policy: Option<RetentionPolicy>,
) -> Result<RetentionBody, ApiError> {
    if let Some(policy) = &policy {
        check_policy(policy)
            .map_err(|err| ApiError::bad_request(error_codes::INVALID_PARAMETER, err))?;
    }
    let _guard = state.lifecycle().lock(tenant).await;
    let mut settings = data_settings(state, tenant).await?;
    let previous = settings.clone();
    settings.retention = policy;
    put_data_settings(state, tenant, settings.clone()).await?;
    let text = match policy {
        Some(policy) => policy_text(&policy),
        None => format!(
            "server default ({})",
            policy_text(&state.config().retention.policy())
        ),
    };
    let event = audit::retention_changed(actor, tenant, &text)?;
    if let Err(err) = audit::record(state, tenant, event).await {
        put_data_settings(state, tenant, previous).await?;
        return Err(err);
    }
    Ok(retention_body(state, tenant, &settings))
}

/// Applies the tenant's retention policy now: removes every record past it that no legal
/// hold keeps, as one `veritrail.retention.deleted` event (none when nothing is removed).
/// `actor` is the key that asked, or `None` for the background job.
///
/// # Errors
///
/// The control plane's, the search index's (503 when it cannot catch up in time) and the
/// ledger's.
pub async fn run_retention(
    state: &AppState,
    tenant: &TenantId,
    actor: Option<&Principal>,
) -> Result<RetentionRun, ApiError> {
    let _guard = state.lifecycle().lock(tenant).await;
    let settings = data_settings(state, tenant).await?;
    let (policy, _) = effective(state, &settings);
    let now = clock::now();
    let (work_state, work_tenant) = (state.clone(), tenant.clone());
    let cut = state
        .blocking(tenant, move || {
            retention_cut(work_state.ledger(), &work_tenant, &policy, now.unix_nanos())
        })
        .await?;
    let removed = state.ledger().removed(tenant);
    let old_below = removed.below();
    let below = cut.below.max(old_below);
    let nothing = |skipped_held| RetentionRun {
        at: now.to_rfc3339(),
        removed: 0,
        below_seq: old_below,
        skipped_held,
        recorded_as: None,
    };
    // Records a cut may take, counted without listing them: those an earlier cut kept
    // (a hold's few), and the stretch up to this cut less what erasures took (nothing at or
    // past the last cut was removed by a cut).
    let n_candidates = removed
        .kept_below()
        .filter(|seq| removed.by(*seq).is_none())
        .count() as u64
        + (below - old_below)
        - removed.erased_in(old_below..below);
    if n_candidates == 0 {
        return Ok(nothing(0));
    }
    if settings
        .holds
        .iter()
        .any(|hold| is_whole_log(&hold.subject))
    {
        return Ok(nothing(n_candidates));
    }
    // Every held record below the cut that is still there is a candidate (below the last
    // cut, only what it kept is still there).
    let except: Vec<u64> = held_below(state, tenant, &settings.holds, below)
        .await?
        .into_iter()
        .filter(|seq| removed.by(*seq).is_none())
        .collect();
    let count = n_candidates - except.len() as u64;
    if count == 0 {
        return Ok(nothing(except.len() as u64));
    }
    let skipped_held = except.len() as u64;
    let event = audit::retention_deleted(
        actor,
        tenant,
        &cut.before,
        count,
        below,
        &policy_text(&policy),
        skipped_held,
    )?;
    let receipt =
        audit::record_removal(state, tenant, event, RemovalScope::Below { below, except }).await?;
    compact_soon(state);
    let run = RetentionRun {
        at: now.to_rfc3339(),
        removed: count,
        below_seq: below,
        skipped_held,
        recorded_as: Some(receipt.seq),
    };
    state
        .lifecycle()
        .last_runs
        .lock()
        .expect("lifecycle runs poisoned")
        .insert(tenant.clone(), run.clone());
    tracing::info!(%tenant, removed = count, below, skipped_held, "retention run");
    Ok(run)
}

/// Where a policy cuts a log: every record below `below` is past it.
struct Cut {
    below: u64,
    /// The time before which records are past it, RFC 3339.
    before: String,
}

fn retention_cut(
    ledger: &Ledger,
    tenant: &TenantId,
    policy: &RetentionPolicy,
    now: i64,
) -> Result<Cut, ApiError> {
    let size = ledger.size(tenant)?;
    // A count limit acts once the log passes it by more than 1% (and more than one
    // record): the event a run writes must not make the next run remove one record and
    // write another, hour after hour, in an idle log.
    let removed_below = ledger.removed(tenant).below();
    let by_count = policy.max_events.map_or(0, |keep| {
        let cut = size.saturating_sub(keep);
        if cut > removed_below + (keep / 100).max(1) {
            cut
        } else {
            0
        }
    });
    let by_age = match policy.max_age_days {
        None => 0,
        Some(days) => {
            let threshold = now.saturating_sub(i64::from(days) * NANOS_PER_DAY);
            // `received_at` never decreases along the log: the first record received at or
            // after the threshold is the cut.
            let (mut lo, mut hi) = (removed_below, size);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match first_kept_received_at(ledger, tenant, mid, hi)? {
                    Some(at) if at >= threshold => hi = mid,
                    _ => lo = mid + 1,
                }
            }
            lo
        }
    };
    let below = by_count.max(by_age);
    let before = match first_kept_received_at(ledger, tenant, below, size)? {
        Some(at) => veritrail_core::event::Timestamp::from_unix_nanos(at).to_rfc3339(),
        None => veritrail_core::event::Timestamp::from_unix_nanos(now).to_rfc3339(),
    };
    Ok(Cut { below, before })
}

/// The `received_at` of the first kept record in `from..to`: removed records have none, and
/// every record after them was received no earlier.
fn first_kept_received_at(
    ledger: &Ledger,
    tenant: &TenantId,
    mut from: u64,
    to: u64,
) -> Result<Option<i64>, ApiError> {
    while from < to {
        let read = ledger.records(tenant, from, 256)?;
        if let Some(record) = read.records.first() {
            return Ok(Some(record.received_at().unix_nanos()));
        }
        if read.end <= from {
            break;
        }
        from = read.end;
    }
    Ok(None)
}

/// The kept records below `below` that a hold covers.
async fn held_below(
    state: &AppState,
    tenant: &TenantId,
    holds: &[HoldBody],
    below: u64,
) -> Result<BTreeSet<u64>, ApiError> {
    if holds.is_empty() {
        return Ok(BTreeSet::new());
    }
    caught_up(state, tenant, below).await?;
    let (work_state, work_tenant) = (state.clone(), tenant.clone());
    let holds = holds.to_vec();
    state
        .blocking(tenant, move || {
            let mut held = BTreeSet::new();
            for hold in &holds {
                let (seqs, _) = subject_seqs(
                    &work_state,
                    &work_tenant,
                    &hold.subject,
                    below,
                    veritrail_ledger::store::MAX_REMOVAL_SEQS,
                )?;
                held.extend(seqs);
            }
            Ok(held)
        })
        .await
}

/// Waits until the search index holds `tenant`'s records below `size`.
async fn caught_up(state: &AppState, tenant: &TenantId, size: u64) -> Result<(), ApiError> {
    tokio::time::timeout(
        SEARCH_WAIT,
        crate::ingest::wait_until_searchable(state, tenant, size),
    )
    .await
    .map_err(|_| {
        let mut err = ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            error_codes::UNAVAILABLE,
            "the search index is catching up with the log; try again in a minute",
        );
        err.retry_after = Some(60);
        err
    })?
}

fn is_whole_log(subject: &SubjectFilter) -> bool {
    subject.actor_id.is_none() && subject.actor_email.is_none() && subject.target_id.is_none()
}

/// Whether `record` is about `subject`: any of its fields matches.
fn matches(subject: &SubjectFilter, record: &Record) -> bool {
    let event = record.event();
    let actor = event.actor();
    let actor_id = actor.and_then(|actor| actor.id()).map(|id| id.as_str());
    let actor_email = actor
        .and_then(|actor| actor.email())
        .map(|email| email.as_str());
    subject
        .actor_id
        .as_deref()
        .is_some_and(|id| actor_id == Some(id))
        || subject.actor_email.as_deref().is_some_and(|email| {
            actor_email.is_some_and(|found| found.to_lowercase() == email.to_lowercase())
        })
        || subject.target_id.as_deref().is_some_and(|id| {
            event
                .targets()
                .iter()
                .any(|target| target.id().is_some_and(|found| found.as_str() == id))
        })
}

/// The kept records below `below` about `subject`, ascending: at most `limit`, and whether
/// there are more. The search index finds the candidates (it must hold every record below
/// `below`); each is checked on the record itself.
fn subject_seqs(
    state: &AppState,
    tenant: &TenantId,
    subject: &SubjectFilter,
    below: u64,
    limit: usize,
) -> Result<(Vec<u64>, bool), ApiError> {
    let ledger = state.ledger();
    let mut queries = Vec::new();
    if let Some(id) = &subject.actor_id {
        queries.push(Query {
            actor: Some(id.clone()),
            ..Query::default()
        });
    }
    if let Some(email) = &subject.actor_email {
        queries.push(Query {
            actor: Some(email.clone()),
            ..Query::default()
        });
    }
    if let Some(id) = &subject.target_id {
        queries.push(Query {
            target: Some(id.clone()),
            ..Query::default()
        });
    }
    let mut found = BTreeSet::new();
    let mut more = false;
    for query in &queries {
        let mut after = None;
        'pages: loop {
            let page = state
                .search()
                .search(tenant, query, Order::Asc, 1000, after)?;
            for &seq in &page.seqs {
                if seq >= below {
                    break 'pages;
                }
                if found.contains(&seq) {
                    continue;
                }
                let Some(record) = ledger.kept_record(tenant, seq)? else {
                    continue;
                };
                if matches(subject, &record) {
                    found.insert(seq);
                    if found.len() > limit {
                        more = true;
                        break 'pages;
                    }
                }
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    let seqs: Vec<u64> = found.into_iter().take(limit).collect();
    Ok((seqs, more))
}

fn check_text(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::bad_request(
            error_codes::INVALID_PARAMETER,
            format!("{name} is required and may not be blank"),
        ));
    }
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            error_codes::INVALID_PARAMETER,
            format!("{name} must be at most {max} bytes, without control characters"),
        ));
    }
    Ok(())
}

fn check_subject(subject: &SubjectFilter) -> Result<(), ApiError> {
    for (name, value) in [
        ("actor_id", &subject.actor_id),
        ("actor_email", &subject.actor_email),
        ("target_id", &subject.target_id),
    ] {
        if let Some(value) = value {
            check_text(name, value, MAX_SUBJECT_BYTES)?;
        }
    }
    Ok(())
}

/// The names of the subject's fields (never their values: the audit event must not repeat
/// the personal data it erases).
fn filter_names(subject: &SubjectFilter, with_seqs: bool) -> String {
    let mut names = Vec::new();
    if subject.actor_id.is_some() {
        names.push("actor_id");
    }
    if subject.actor_email.is_some() {
        names.push("actor_email");
    }
    if subject.target_id.is_some() {
        names.push("target_id");
    }
    if with_seqs {
        names.push("seqs");
    }
    if names.is_empty() {
        "whole log".to_owned()
    } else {
        names.join(",")
    }
}

/// `POST /api/v1/erasures`: removes the records about a subject (and any seqs given), as one
/// `veritrail.event.erased` event; a dry run only lists them. Records already removed are
/// left out, so repeating an erasure removes nothing more.
///
/// # Errors
///
/// 400 for a request without reason or subject, or with seqs past the log; 409 `held` when
/// a legal hold covers a record it would remove; the search index's and the ledger's.
pub async fn erase(
    state: &AppState,
    actor: &Principal,
    tenant: &TenantId,
    input: ErasureInput,
) -> Result<ErasureBody, ApiError> {
    check_text("reason", &input.reason, MAX_REASON_BYTES)?;
    let subject = input.subject();
    check_subject(&subject)?;
    if is_whole_log(&subject) && input.seqs.is_empty() {
        return Err(ApiError::bad_request(
            error_codes::INVALID_PARAMETER,
            "say what to erase: actor_id, actor_email, target_id or seqs",
        ));
    }
    if input.seqs.len() > MAX_ERASURE_RECORDS {
        return Err(ApiError::bad_request(
            error_codes::TOO_LARGE,
            format!("an erasure takes at most {MAX_ERASURE_RECORDS} seqs"),
        ));
    }
    let _guard = state.lifecycle().lock(tenant).await;
    let size = state.ledger().size(tenant)?;
    if let Some(seq) = input.seqs.iter().find(|seq| **seq >= size) {
        return Err(ApiError::bad_request(
            error_codes::INVALID_PARAMETER,
            format!("seq {seq} is past the log, which has {size} records"),
        ));
    }
    if !is_whole_log(&subject) {
        caught_up(state, tenant, size).await?;
    }
    let settings = data_settings(state, tenant).await?;
    let (work_state, work_tenant, work_subject) = (state.clone(), tenant.clone(), subject.clone());
    let explicit = input.seqs.clone();
    let holds = settings.holds.clone();
    let (seqs, remaining) = state
        .blocking(tenant, move || {
            let ledger = work_state.ledger();
            let mut seqs: BTreeSet<u64> = BTreeSet::new();
            let mut more = false;
            if !is_whole_log(&work_subject) {
                let (found, found_more) = subject_seqs(
                    &work_state,
                    &work_tenant,
                    &work_subject,
                    size,
                    MAX_ERASURE_RECORDS,
                )?;
                seqs.extend(found);
                more = found_more;
            }
            seqs.extend(
                explicit
                    .iter()
                    .filter(|seq| ledger.removed_by(&work_tenant, **seq).is_none()),
            );
            let remaining = seqs.len().saturating_sub(MAX_ERASURE_RECORDS) as u64 + u64::from(more);
            let seqs: Vec<u64> = seqs.into_iter().take(MAX_ERASURE_RECORDS).collect();
            // A hold keeps what it covers: refuse rather than erase around it.
            for hold in &holds {
                let hit = if is_whole_log(&hold.subject) {
                    seqs.first().copied()
                } else {
                    let mut hit = None;
                    for &seq in &seqs {
                        let record = ledger.kept_record(&work_tenant, seq)?;
                        if record.is_some_and(|record| matches(&hold.subject, &record)) {
                            hit = Some(seq);
                            break;
                        }
                    }
                    hit
                };
                if let Some(seq) = hit {
                    return Err(ApiError::new(
                        axum::http::StatusCode::CONFLICT,
                        error_codes::HELD,
                        format!(
                            "legal hold {} ({}) covers record {seq}: release the hold first, \
                             or erase what it does not cover",
                            hold.hold_id, hold.reason
                        ),
                    ));
                }
            }
            Ok((seqs, remaining))
        })
        .await?;
    let mut body = ErasureBody {
        dry_run: input.dry_run,
        count: seqs.len() as u64,
        seqs,
        remaining,
        recorded_as: None,
    };
    if input.dry_run || body.seqs.is_empty() {
        return Ok(body);
    }
    let filter = filter_names(&subject, !input.seqs.is_empty());
    let event = audit::event_erased(actor, tenant, &input.reason, &body.seqs, &filter)?;
    let receipt =
        audit::record_removal(state, tenant, event, RemovalScope::Seqs(body.seqs.clone())).await?;
    body.recorded_as = Some(receipt.seq);
    tracing::info!(%tenant, count = body.count, by = receipt.seq, "erasure");
    compact_soon(state);
    Ok(body)
}

/// The tenant's legal holds.
///
/// # Errors
///
/// The control plane's.
pub async fn holds(state: &AppState, tenant: &TenantId) -> Result<Vec<HoldBody>, ApiError> {
    Ok(data_settings(state, tenant).await?.holds)
}

/// Places a legal hold, recorded as `veritrail.hold.created`.
///
/// # Errors
///
/// 400 for a request without reason; 409 past [`MAX_HOLDS`]; the control plane's and the
/// ledger's.
pub async fn create_hold(
    state: &AppState,
    actor: &Principal,
    tenant: &TenantId,
    input: HoldInput,
) -> Result<HoldBody, ApiError> {
    check_text("reason", &input.reason, MAX_REASON_BYTES)?;
    let subject = input.subject();
    check_subject(&subject)?;
    let _guard = state.lifecycle().lock(tenant).await;
    let mut settings = data_settings(state, tenant).await?;
    if settings.holds.len() >= MAX_HOLDS {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            error_codes::CONFLICT,
            format!("a tenant has at most {MAX_HOLDS} legal holds; release one first"),
        ));
    }
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(ApiError::internal)?;
    let hold = HoldBody {
        hold_id: format!("hold_{}", crate::control::hex(&id)),
        reason: input.reason.clone(),
        subject: subject.clone(),
        created_at: clock::now_rfc3339(),
        created_by: actor.id().to_owned(),
    };
    let previous = settings.clone();
    settings.holds.push(hold.clone());
    put_data_settings(state, tenant, settings).await?;
    let event = audit::hold_changed(
        actor,
        audit::types::HOLD_CREATED,
        &hold.hold_id,
        Some(&hold.reason),
        Some(&filter_names(&subject, false)),
    )?;
    if let Err(err) = audit::record(state, tenant, event).await {
        put_data_settings(state, tenant, previous).await?;
        return Err(err);
    }
    Ok(hold)
}

/// Releases a legal hold, recorded as `veritrail.hold.released`.
///
/// # Errors
///
/// 404 for an unknown hold; the control plane's and the ledger's.
pub async fn release_hold(
    state: &AppState,
    actor: &Principal,
    tenant: &TenantId,
    hold_id: &str,
) -> Result<HoldBody, ApiError> {
    let _guard = state.lifecycle().lock(tenant).await;
    let mut settings = data_settings(state, tenant).await?;
    let previous = settings.clone();
    let at = settings
        .holds
        .iter()
        .position(|hold| hold.hold_id == hold_id)
        .ok_or_else(|| ApiError::not_found(format!("no legal hold {hold_id}")))?;
    let hold = settings.holds.remove(at);
    put_data_settings(state, tenant, settings).await?;
    let event = audit::hold_changed(actor, audit::types::HOLD_RELEASED, hold_id, None, None)?;
    if let Err(err) = audit::record(state, tenant, event).await {
        put_data_settings(state, tenant, previous).await?;
        return Err(err);
    }
    Ok(hold)
}

/// The background job: every `retention.interval_secs`, applies each tenant's policy.
/// Ends with the server.
pub fn spawn_job(state: &AppState) {
    let interval = Duration::from_secs(state.config().retention.interval_secs);
    state.spawn_every(interval, |state| async move { run_all(&state).await });
}

/// Takes the bodies of removed records out of the journal, in the background: now, or
/// right after the compaction under way (which may have started before the latest
/// removal). Reads, proofs, ingest and webhooks go on meanwhile.
pub fn compact_soon(state: &AppState) {
    let lifecycle = state.lifecycle();
    lifecycle.compaction_wanted.store(true, Ordering::SeqCst);
    if lifecycle.compaction_running.swap(true, Ordering::SeqCst) {
        return;
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let lifecycle = state.lifecycle();
        loop {
            while lifecycle.compaction_wanted.swap(false, Ordering::SeqCst) {
                if state.is_shutting_down() {
                    break;
                }
                let compacted = {
                    let _alone = lifecycle.maintenance();
                    state.ledger().compact()
                };
                lifecycle.compaction_passes.fetch_add(1, Ordering::Relaxed);
                match compacted {
                    Ok(stats) => {
                        lifecycle
                            .compacted_records
                            .fetch_add(stats.records, Ordering::Relaxed);
                        lifecycle.compacted_bytes.fetch_add(
                            stats.bytes_before.saturating_sub(stats.bytes_after),
                            Ordering::Relaxed,
                        );
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "compaction failed; the next removal or retention pass tries again");
                    }
                }
            }
            lifecycle.compaction_running.store(false, Ordering::SeqCst);
            // A request that came after the loop's last look, and found it still running.
            if !lifecycle.compaction_wanted.load(Ordering::SeqCst)
                || lifecycle.compaction_running.swap(true, Ordering::SeqCst)
            {
                return;
            }
        }
    });
}

/// One pass of the job over every tenant whose policy has a limit.
async fn run_all(state: &AppState) {
    let tenants = {
        let work_state = state.clone();
        state
            .blocking_untenanted(move || Ok(work_state.control().tenants()?))
            .await
    };
    let tenants = match tenants {
        Ok(tenants) => tenants,
        Err(mut err) => {
            err.report();
            return;
        }
    };
    for row in tenants {
        if state.is_shutting_down() {
            return;
        }
        let Ok(tenant) = TenantId::parse(&row.id) else {
            continue;
        };
        if let Err(mut err) = run_retention(state, &tenant, None).await {
            tracing::warn!(%tenant, code = err.code, message = %err.message, "retention run failed");
            err.report();
        }
    }
    // Segments sealed since the last removal, and any compaction a restart cut short.
    compact_soon(state);
}
