//! Ingest, apart from HTTP: a body becomes validated events (every invalid field of every
//! event named by index, nothing stored unless all are valid), the tenant's catalogs are
//! applied, the ledger appends them, and the receipts (with proofs when asked) come back
//! once the commit holding them is durable (and searchable, when asked).
//!
//! A request writes to one tenant (its key's, or the one its path names), or, sent with a
//! service key, to the tenant each event names: each tenant's events go to its own log, all
//! of them in one commit of the ledger, so every event of the request is stored or none.
//!
//! **Tenants on first write.** A service key allowed to create tenants creates the ones
//! its request names that do not exist: under one lock ([`AppState::tenant_creation`]), the
//! rows are written with the configured defaults, the events are checked against those
//! tenants' catalogs, and each new log's first record, `veritrail.tenant.created`, is
//! committed with the events. If anything fails the rows are removed again, and a tenant is
//! known to other requests only once its creation is committed: concurrent first writes
//! create it once, and no log starts without its creation event.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::value::RawValue;
use veritrail_api::{
    EventErrors, EventInput, FieldErrorBody, IngestResponse, LogCheckpointBody,
    MixedIngestResponse, ReceiptBody, error_codes,
};
use veritrail_core::event::{Event, Identifier, TenantId};
use veritrail_core::record::CatalogFields;

use crate::auth::{Act, Acting, Auth};
use crate::control::{ServiceKey, TenantRow};
use crate::error::ApiError;
use crate::proofs::{b64, checkpoint_size};
use crate::{AppState, clock};

/// One event of a request, and the tenant it names, if it names one.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub tenant: Option<TenantId>,
    pub event: Event,
}

/// Parses the body as one event or an array of events and validates every one, reporting
/// every invalid field of every event: what ingest does with a body before the tenant's
/// catalogs (public for the fuzz tests).
///
/// # Errors
///
/// `empty_body`, `malformed_json`, `too_large` (more than `max_events`), or
/// `invalid_events` with the errors of each invalid event by index.
pub fn parse_events(body: &[u8], max_events: usize) -> Result<Vec<Parsed>, ApiError> {
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
            .and_then(|mut input| {
                let tenant = input.tenant.take().map(|tenant| {
                    TenantId::parse(&tenant).map_err(|err| FieldErrorBody {
                        field: "tenant".to_owned(),
                        code: err.code.to_owned(),
                        message: err.message,
                    })
                });
                let event = Event::parse(input).map_err(|invalid| {
                    invalid
                        .errors
                        .into_iter()
                        .map(|error| FieldErrorBody {
                            field: error.field,
                            code: error.code.to_owned(),
                            message: error.message,
                        })
                        .collect::<Vec<_>>()
                });
                match (tenant.transpose(), event) {
                    (Ok(tenant), Ok(event)) => Ok(Parsed { tenant, event }),
                    (tenant, event) => {
                        let mut errors = tenant.err().into_iter().collect::<Vec<_>>();
                        errors.extend(event.err().unwrap_or_default());
                        Err(errors)
                    }
                }
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

/// Stores `events` (valid, from [`parse_events`]) in the log of the tenant `acting` acts on,
/// through its catalogs, and answers with a receipt per event, in order, once the commit
/// holding them is durable. An event may name that tenant, and no other.
///
/// # Errors
///
/// `forbidden` (an event names another tenant), `not_found` (the tenant does not exist and
/// the key may not create it), `rate_limited` (the tenant's share of a service key),
/// `rejected_by_catalog` (nothing stored), or the ledger's refusal by what the caller
/// should do ([`ApiError`]'s `From<AppendError>`).
pub async fn ingest(
    state: &AppState,
    acting: &Acting,
    events: Vec<Parsed>,
    options: Options,
) -> Result<IngestResponse, ApiError> {
    if let Some((index, named)) = events.iter().enumerate().find_map(|(index, parsed)| {
        parsed
            .tenant
            .as_ref()
            .filter(|named| **named != acting.tenant)
            .map(|named| (index, named))
    }) {
        return Err(ApiError::forbidden(format!(
            "event {index} names tenant {named}, but this request writes to tenant {}; nothing was stored",
            acting.tenant
        )));
    }
    let group = Group {
        tenant: acting.tenant.clone(),
        indexes: (0..events.len()).collect(),
        events: events.into_iter().map(|parsed| parsed.event).collect(),
    };
    let mut logs = store(state, acting.service.as_ref(), vec![group], options).await?;
    let log = logs
        .pop()
        .ok_or_else(|| ApiError::internal("an append returned no log"))?;
    Ok(IngestResponse {
        receipts: log.receipts,
        checkpoint: log.checkpoint,
        tree_size: log.tree_size,
    })
}

/// Stores a batch sent with a service key whose events each name their tenant: each
/// tenant's events go to its own log, all in one commit. The reply has a receipt per event
/// in request order (naming its tenant), and a signed checkpoint of each tenant's log.
///
/// # Errors
///
/// As [`ingest`]; besides, `invalid_events` for events that name no tenant, and
/// `forbidden` for a tenant the key may not write to.
pub async fn ingest_mixed(
    state: &AppState,
    auth: &Auth,
    events: Vec<Parsed>,
    options: Options,
) -> Result<MixedIngestResponse, ApiError> {
    if let crate::control::Principal::Service(key) = &auth.0
        && key.role != veritrail_api::ServiceRole::ServicePublisher
    {
        return Err(ApiError::forbidden(format!(
            "a {} key cannot send events; that takes a service_publisher key",
            key.role
        )));
    }
    let unnamed: Vec<EventErrors> = events
        .iter()
        .enumerate()
        .filter(|(_, parsed)| parsed.tenant.is_none())
        .map(|(index, _)| EventErrors {
            index,
            errors: vec![FieldErrorBody {
                field: "tenant".to_owned(),
                code: veritrail_core::event::codes::REQUIRED.to_owned(),
                message: "a service key's events each name their `tenant` (or send them to POST /api/v1/tenants/{tenant}/events)".to_owned(),
            }],
        })
        .collect();
    if !unnamed.is_empty() {
        let mut err = ApiError::bad_request(
            error_codes::INVALID_EVENTS,
            format!(
                "{} of {} events name no tenant (see `events` for each by index); nothing was stored",
                unnamed.len(),
                events.len()
            ),
        );
        err.events = unnamed;
        return Err(err);
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: std::collections::HashMap<TenantId, usize> = std::collections::HashMap::new();
    let mut service = None;
    for (index, parsed) in events.into_iter().enumerate() {
        let Some(tenant) = parsed.tenant else {
            continue;
        };
        let at = match group_of.get(&tenant) {
            Some(&at) => at,
            None => {
                let acting = auth.acting_on(&tenant, Act::Publish)?;
                service = service.or(acting.service);
                group_of.insert(tenant.clone(), groups.len());
                groups.push(Group {
                    tenant,
                    indexes: Vec::new(),
                    events: Vec::new(),
                });
                groups.len() - 1
            }
        };
        groups[at].indexes.push(index);
        groups[at].events.push(parsed.event);
    }
    let n_events: usize = groups.iter().map(|group| group.events.len()).sum();
    let indexes: Vec<Vec<usize>> = groups.iter().map(|group| group.indexes.clone()).collect();
    let logs = store(state, service.as_ref(), groups, options).await?;
    let mut receipts: Vec<Option<ReceiptBody>> = vec![None; n_events];
    let mut bodies = Vec::with_capacity(logs.len());
    for (log, indexes) in logs.into_iter().zip(indexes) {
        for (mut receipt, index) in log.receipts.into_iter().zip(indexes) {
            receipt.tenant = Some(log.tenant.to_string());
            receipts[index] = Some(receipt);
        }
        bodies.push(LogCheckpointBody {
            tenant: log.tenant.to_string(),
            checkpoint: log.checkpoint,
            tree_size: log.tree_size,
        });
    }
    Ok(MixedIngestResponse {
        receipts: receipts
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::internal("an event without a receipt"))?,
        logs: bodies,
    })
}

/// A request's events for one tenant, with their indexes in the request.
struct Group {
    tenant: TenantId,
    indexes: Vec<usize>,
    events: Vec<Event>,
}

/// What a request stored in one tenant's log.
struct Stored {
    tenant: TenantId,
    receipts: Vec<ReceiptBody>,
    checkpoint: String,
    tree_size: u64,
}

/// Stores every group in its tenant's log, in one commit: the tenants checked (and created
/// on first write when `service` may), the tenants' shares of the service key taken, the
/// catalogs applied (every refused event of every group reported by its request index).
async fn store(
    state: &AppState,
    service: Option<&ServiceKey>,
    groups: Vec<Group>,
    options: Options,
) -> Result<Vec<Stored>, ApiError> {
    let missing: Vec<TenantId> = groups
        .iter()
        .filter(|group| !state.control().tenant_exists(&group.tenant))
        .map(|group| group.tenant.clone())
        .collect();
    if let Some(key) = service {
        let wants: Vec<(&str, u32)> = groups
            .iter()
            .map(|group| {
                (
                    group.tenant.as_str(),
                    u32::try_from(group.events.len()).unwrap_or(u32::MAX),
                )
            })
            .collect();
        if let Some(tenant) = missing.first()
            && !key.create_tenants
        {
            return Err(no_tenant(tenant));
        }
        state
            .tenant_limiter()
            .take_for_tenants(&key.key_id, &wants)?;
    } else if let Some(tenant) = missing.first() {
        return Err(no_tenant(tenant));
    }
    if missing.is_empty() {
        return append(state, service, groups, Vec::new(), options).await;
    }
    // Tenants are created one request at a time; the others wait here.
    let _creating = state.tenant_creation().lock().await;
    let settings = crate::control::CatalogSettings::for_new_tenants(&state.config().tenants);
    let created = {
        let (state, missing) = (state.clone(), missing.clone());
        state
            .clone()
            .blocking_untenanted(move || {
                Ok(state
                    .control()
                    .create_tenants_without_keys(&missing, &settings)?)
            })
            .await?
    };
    let result = append(state, service, groups, created.clone(), options).await;
    if !created.is_empty() {
        match &result {
            Ok(_) => state.control().confirm_tenants(&created),
            Err(_) => {
                let (undo_state, undo) = (state.clone(), created.clone());
                state
                    .clone()
                    .blocking_untenanted(move || {
                        Ok(undo_state.control().undo_create_tenants(&undo)?)
                    })
                    .await?;
                for row in &created {
                    if let Ok(tenant) = TenantId::parse(&row.id) {
                        state.catalogs().invalidate(&tenant);
                    }
                }
            }
        }
    }
    result
}

fn no_tenant(tenant: &TenantId) -> ApiError {
    ApiError::not_found(format!(
        "there is no tenant {tenant} (the server admin creates tenants, or a service key allowed to creates one on first write); nothing was stored"
    ))
}

/// Applies each group's catalogs and appends every group, and the creation event of each
/// tenant of `created` first in its log, in one commit.
async fn append(
    state: &AppState,
    service: Option<&ServiceKey>,
    groups: Vec<Group>,
    created: Vec<TenantRow>,
    options: Options,
) -> Result<Vec<Stored>, ApiError> {
    let published_by = service
        .map(|key| Identifier::parse(&key.key_id))
        .transpose()
        .map_err(ApiError::internal)?;
    let mut parts = Vec::with_capacity(groups.len() + created.len());
    for row in &created {
        let tenant = TenantId::parse(&row.id).map_err(ApiError::internal)?;
        let key = service.ok_or_else(|| ApiError::internal("a tenant created without a key"))?;
        let event = crate::audit::tenant_created_on_first_write(&key.key_id, &tenant)?;
        parts.push((tenant, vec![crate::audit::catalogued(state, event)?]));
    }
    let n_created = parts.len();
    let mut refused: Vec<EventErrors> = Vec::new();
    let mut last_refusal = None;
    let mut ids: Vec<Vec<Option<String>>> = Vec::with_capacity(groups.len());
    let mut tenants = Vec::with_capacity(groups.len());
    let n_events: usize = groups.iter().map(|group| group.events.len()).sum();
    for group in groups {
        ids.push(
            group
                .events
                .iter()
                .map(|event| event.id().map(|id| id.as_str().to_owned()))
                .collect(),
        );
        match apply_catalogs(state, &group.tenant, group.events).await {
            Ok(mut events) => {
                if let Some(published_by) = &published_by {
                    for (_, fields) in &mut events {
                        fields.published_by = Some(published_by.clone());
                    }
                }
                tenants.push(group.tenant.clone());
                parts.push((group.tenant, events));
            }
            Err(mut err) if !err.events.is_empty() => {
                for event_errors in &mut err.events {
                    event_errors.index = group.indexes[event_errors.index];
                }
                refused.append(&mut err.events);
                last_refusal = Some(err);
            }
            Err(err) => return Err(err),
        }
    }
    if let Some(mut err) = last_refusal {
        if ids.len() > 1 {
            refused.sort_by_key(|event_errors| event_errors.index);
            err.message = format!(
                "{} of {n_events} events are refused by their tenants' catalogs (see `events` for each by index); nothing was stored",
                refused.len()
            );
        }
        err.events = refused;
        return Err(err);
    }
    let mut receipts = match state.ledger().append_parts(parts).await {
        Ok(receipts) => receipts,
        Err(err) => {
            if matches!(err, veritrail_ledger::AppendError::StorageFull(_)) {
                for tenant in &tenants {
                    state.disk_full().refused(tenant);
                }
            }
            return Err(err.into());
        }
    };
    if let Some(episode) = state.disk_full().ended() {
        record_disk_full(state.clone(), episode);
    }
    let mut stored = Vec::with_capacity(tenants.len());
    for ((tenant, receipts), ids) in tenants
        .into_iter()
        .zip(receipts.drain(n_created..))
        .zip(ids)
    {
        stored.push(receipts_of(state, tenant, &receipts, ids, options).await?);
    }
    Ok(stored)
}

/// The reply's part for one tenant: its receipts (with proofs when asked) and checkpoint,
/// once searchable when asked.
async fn receipts_of(
    state: &AppState,
    tenant: TenantId,
    receipts: &[veritrail_ledger::Receipt],
    ids: Vec<Option<String>>,
    options: Options,
) -> Result<Stored, ApiError> {
    let note = receipts
        .first()
        .map(|receipt| Arc::clone(&receipt.checkpoint))
        .ok_or_else(|| ApiError::internal("an append returned no receipts"))?;
    let checkpoint = note.to_string();
    let tree_size = checkpoint_size(&checkpoint)?;
    let seqs: Vec<u64> = receipts.iter().map(|receipt| receipt.seq).collect();
    let mut proofs = if options.proofs {
        Some(
            receipt_proofs(state, &tenant, seqs.clone(), note)
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
            tenant: None,
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
        wait_until_searchable(state, &tenant, last + 1).await?;
    }
    Ok(Stored {
        tenant,
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
