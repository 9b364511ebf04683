//! Ingest, apart from HTTP: a body becomes validated events (every invalid field of every
//! event named by index, nothing stored unless all are valid), the tenant's catalogs are
//! applied, the ledger appends them, and the receipts (with proofs when asked) come back
//! once the commit holding them is durable (and searchable, when asked).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::value::RawValue;
use veritrail_api::{
    EventErrors, EventInput, FieldErrorBody, IngestResponse, ReceiptBody, error_codes,
};
use veritrail_core::event::{Event, TenantId};
use veritrail_core::record::CatalogFields;

use crate::error::ApiError;
use crate::proofs::{b64, checkpoint_size};
use crate::{AppState, clock};

/// Parses the body as one event or an array of events and validates every one, reporting
/// every invalid field of every event: what ingest does with a body before the tenant's
/// catalogs (public for the fuzz tests).
///
/// # Errors
///
/// `empty_body`, `malformed_json`, `too_large` (more than `max_events`), or
/// `invalid_events` with the errors of each invalid event by index.
pub fn parse_events(body: &[u8], max_events: usize) -> Result<Vec<Event>, ApiError> {
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    let raws: Vec<&RawValue> = match first {
        None => {
            return Err(ApiError::bad_request(
                error_codes::EMPTY_BODY,
                "the body is empty; send one event object or an array of events",
            ));
        }
        Some(b'[') => serde_json::from_slice(body).map_err(|err| malformed(&err))?,
        Some(b'{') => vec![serde_json::from_slice(body).map_err(|err| malformed(&err))?],
        Some(_) => {
            return Err(ApiError::bad_request(
                error_codes::MALFORMED_JSON,
                "the body must be a JSON object (one event) or a JSON array of events",
            ));
        }
    };
    if raws.is_empty() {
        return Err(ApiError::bad_request(
            error_codes::EMPTY_BODY,
            "the array of events is empty",
        ));
    }
    if raws.len() > max_events {
        return Err(ApiError::too_large(format!(
            "a request may carry at most {max_events} events, this one has {}; split it",
            raws.len()
        )));
    }
    let mut events = Vec::with_capacity(raws.len());
    let mut invalid = Vec::new();
    for (index, raw) in raws.into_iter().enumerate() {
        let parsed = input_of(raw.get())
            .map_err(|error| vec![error])
            .and_then(|input| {
                Event::parse(input).map_err(|invalid| {
                    invalid
                        .errors
                        .into_iter()
                        .map(|error| FieldErrorBody {
                            field: error.field,
                            code: error.code.to_owned(),
                            message: error.message,
                        })
                        .collect()
                })
            });
        match parsed {
            Ok(event) => events.push(event),
            Err(errors) => invalid.push(EventErrors { index, errors }),
        }
    }
    if !invalid.is_empty() {
        let n_invalid = invalid.len();
        let mut err = ApiError::bad_request(
            error_codes::INVALID_EVENTS,
            format!(
                "{n_invalid} of {} events are invalid (see `events` for each by index); nothing was stored",
                events.len() + n_invalid
            ),
        );
        err.events = invalid;
        return Err(err);
    }
    Ok(events)
}

/// Deserialises one event, naming the field at fault: an unknown field (`unknown_field`),
/// a value of the wrong JSON type (`invalid_type`), or anything else (`malformed_json`).
fn input_of(raw: &str) -> Result<EventInput, FieldErrorBody> {
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    // An event is an object, not an array of its fields.
    serde_path_to_error::deserialize(&mut deserializer)
        .map(|veritrail_core::event::ObjectOnly(input)| input)
        .map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            // serde's message ends with the position in this event's JSON: not useful here.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            let code = if message.starts_with("unknown field") {
                "unknown_field"
            } else if message.starts_with("invalid type") {
                veritrail_core::event::codes::INVALID_TYPE
            } else {
                error_codes::MALFORMED_JSON
            };
            FieldErrorBody {
                field: if path == "." { String::new() } else { path },
                code: code.to_owned(),
                message,
            }
        })
}

fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        error_codes::MALFORMED_JSON,
        format!("the body is not valid JSON: {err}"),
    )
}

/// Applies the tenant's catalogs to every event: the catalog fields, default outcome and
/// rendered summary each record stores; under the strict policy, every refused event by
/// index (422 `rejected_by_catalog`, nothing stored). Types under `veritrail.` are the
/// service's own and refused from clients under any policy.
pub async fn apply_catalogs(
    state: &AppState,
    tenant: &TenantId,
    events: Vec<Event>,
) -> Result<Vec<(Event, CatalogFields)>, ApiError> {
    let effective = match state.catalogs().cached(tenant) {
        Some(effective) => effective,
        None => {
            let state = state.clone();
            let tenant = tenant.clone();
            state
                .clone()
                .blocking(&tenant.clone(), move || {
                    state.catalogs().effective(state.control(), &tenant)
                })
                .await?
        }
    };
    let n_events = events.len();
    let mut applied = Vec::with_capacity(n_events);
    let mut refused = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        let result = if event.event_type().is_reserved() {
            Err(vec![crate::catalogs::reserved_type("type".to_owned())])
        } else {
            effective.apply(event)
        };
        match result {
            Ok(pair) => applied.push(pair),
            Err(errors) => refused.push(EventErrors {
                index,
                errors: errors
                    .into_iter()
                    .map(crate::catalogs::field_error_body)
                    .collect(),
            }),
        }
    }
    if refused.is_empty() {
        return Ok(applied);
    }
    let mut err = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        error_codes::REJECTED_BY_CATALOG,
        format!(
            "{} of {n_events} events are refused by the tenant's catalog (policy {}; see `events` for each by index); nothing was stored",
            refused.len(),
            effective.policy.as_str()
        ),
    );
    err.events = refused;
    Err(err)
}

pub(crate) async fn wait_until_searchable(
    state: &AppState,
    tenant: &TenantId,
    size: u64,
) -> Result<(), ApiError> {
    let mut progress = state.indexer().progress();
    state.indexer().nudge();
    loop {
        if state.search().applied(tenant) >= size {
            return Ok(());
        }
        // The request timeout bounds the wait.
        if tokio::time::timeout(Duration::from_secs(5), progress.changed())
            .await
            .is_err()
        {
            state.indexer().nudge();
        }
    }
}

/// What an ingest answers with, besides the receipts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Each receipt carries its inclusion proof in the receipts' checkpoint.
    pub proofs: bool,
    /// Answer once the events are searchable, not only durable.
    pub wait_searchable: bool,
}

/// Stores `events` (valid, from [`parse_events`]) in `tenant`'s log through its catalogs,
/// and answers with a receipt per event, in order, once the commit holding them is durable.
///
/// # Errors
///
/// `rejected_by_catalog` (nothing stored), or the ledger's refusal by what the caller
/// should do ([`ApiError`]'s `From<AppendError>`).
pub async fn ingest(
    state: &AppState,
    tenant: &TenantId,
    events: Vec<Event>,
    options: Options,
) -> Result<IngestResponse, ApiError> {
    let ids: Vec<Option<String>> = events
        .iter()
        .map(|event| event.id().map(|id| id.as_str().to_owned()))
        .collect();
    let events = apply_catalogs(state, tenant, events).await?;
    let receipts = match state
        .ledger()
        .append_catalogued(tenant.clone(), events)
        .await
    {
        Ok(receipts) => receipts,
        Err(err) => {
            if matches!(err, veritrail_ledger::AppendError::StorageFull(_)) {
                state.disk_full().refused(tenant);
            }
            return Err(err.into());
        }
    };
    if let Some(episode) = state.disk_full().ended() {
        record_disk_full(state.clone(), episode);
    }
    let note = receipts
        .first()
        .map(|receipt| Arc::clone(&receipt.checkpoint))
        .ok_or_else(|| ApiError::internal("an append returned no receipts"))?;
    let checkpoint = note.to_string();
    let tree_size = checkpoint_size(&checkpoint)?;
    let seqs: Vec<u64> = receipts.iter().map(|receipt| receipt.seq).collect();
    let mut proofs = if options.proofs {
        Some(
            receipt_proofs(state, tenant, seqs.clone(), note)
                .await?
                .into_iter(),
        )
    } else {
        None
    };
    let receipts = receipts
        .iter()
        .zip(ids)
        .map(|(receipt, id)| ReceiptBody {
            id,
            seq: receipt.seq,
            leaf_hash: b64(&receipt.leaf_hash),
            duplicate: receipt.duplicate,
            inclusion_proof: proofs.as_mut().and_then(Iterator::next),
        })
        .collect();
    if options.wait_searchable
        && let Some(last) = seqs.iter().max()
    {
        wait_until_searchable(state, tenant, last + 1).await?;
    }
    Ok(IngestResponse {
        receipts,
        checkpoint,
        tree_size,
    })
}

/// The inclusion proof of each of `seqs` in the receipts' signed checkpoint `note`, checked
/// against it before it is sent. Proofs read stored hashes: off the async threads.
async fn receipt_proofs(
    state: &AppState,
    tenant: &TenantId,
    seqs: Vec<u64>,
    note: Arc<str>,
) -> Result<Vec<Vec<String>>, ApiError> {
    let ledger = Arc::clone(state.ledger());
    let proof_tenant = tenant.clone();
    state
        .blocking(tenant, move || {
            seqs.iter()
                .map(|seq| {
                    let checked =
                        ledger.checked_inclusion_in(&proof_tenant, *seq, Arc::clone(&note))?;
                    Ok(checked.proof.iter().map(|hash| b64(hash)).collect())
                })
                .collect()
        })
        .await
}

/// A disk-full episode: from the first ingest refused for a full disk to the first append
/// that succeeded after it, with the refused ingests of each tenant.
#[derive(Debug)]
pub struct DiskFullEpisode {
    since: String,
    refused: BTreeMap<TenantId, u64>,
}

/// Tenants whose ingests a full disk refused, kept until an append succeeds again; then each
/// gets one `veritrail.disk.full` event in its own log.
#[derive(Debug, Default)]
pub struct DiskFull {
    episode: Mutex<Option<DiskFullEpisode>>,
    /// Whether an episode is open (read on every ingest without the lock).
    open: AtomicBool,
}

/// Most tenants an episode names; the refusals of more are counted under the last ones.
const MAX_EPISODE_TENANTS: usize = 10_000;

impl DiskFull {
    /// Counts an ingest of `tenant` refused for a full disk (opening an episode).
    pub fn refused(&self, tenant: &TenantId) {
        let mut episode = self.episode.lock().expect("disk-full lock poisoned");
        let episode = episode.get_or_insert_with(|| DiskFullEpisode {
            since: clock::now_rfc3339(),
            refused: BTreeMap::new(),
        });
        if episode.refused.len() < MAX_EPISODE_TENANTS || episode.refused.contains_key(tenant) {
            *episode.refused.entry(tenant.clone()).or_insert(0) += 1;
        }
        self.open.store(true, Ordering::Release);
    }

    /// The episode an append that succeeded has ended, if one was open (taken: it is
    /// recorded once).
    pub fn ended(&self) -> Option<DiskFullEpisode> {
        // A load first: every ingest asks, and only the rare one after an episode writes.
        // Cleared before the episode is taken: a refusal in between joins the episode
        // taken here, and one after it opens the next.
        if !self.open.load(Ordering::Acquire) || !self.open.swap(false, Ordering::AcqRel) {
            return None;
        }
        self.episode.lock().expect("disk-full lock poisoned").take()
    }
}

/// Writes `episode`'s event into each tenant's log it names (in the background: the ingest
/// that ended it is answered at once).
fn record_disk_full(state: AppState, episode: DiskFullEpisode) {
    tokio::spawn(async move {
        let until = clock::now_rfc3339();
        for (tenant, refused) in episode.refused {
            let written = match crate::audit::disk_full(&episode.since, &until, refused) {
                Ok(event) => crate::audit::record(&state, &tenant, event).await,
                Err(err) => Err(err),
            };
            if let Err(mut err) = written {
                err.report();
                tracing::error!(%tenant, "the disk-full event could not be written");
            }
        }
    });
}
