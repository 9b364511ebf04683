//! The service's own audit events: every management action is an event in the affected
//! tenant's own log, so the log that customers verify also shows who changed its access.
//!
//! Types are under `veritrail.` (`veritrail.tenant.created`, `veritrail.key.created`,
//! `veritrail.key.revoked`, `veritrail.log.exported`, `veritrail.events.exported`,
//! `veritrail.catalog.changed`, `veritrail.tenant.settings_changed`, `veritrail.webhook.*`,
//! `veritrail.service_key.read`), defined by the built-in `veritrail` catalog
//! (`catalogs/veritrail.yaml`), which gives each record its code, name, category, severity,
//! description and summary. The actor is the key that acted (its id, never its secret), the
//! source is this service.

use serde_json::json;
use veritrail_api::EventInput;
use veritrail_core::event::{Event, TenantId};
use veritrail_core::record::CatalogFields;
use veritrail_ledger::{Receipt, RemovalScope};

use crate::AppState;
use crate::auth::Acting;
use crate::control::{KeyRow, Principal};
use crate::error::ApiError;

/// Event types the service writes.
pub mod types {
    pub const TENANT_CREATED: &str = "veritrail.tenant.created";
    pub const KEY_CREATED: &str = "veritrail.key.created";
    pub const KEY_REVOKED: &str = "veritrail.key.revoked";
    pub const LOG_EXPORTED: &str = "veritrail.log.exported";
    pub const EVENTS_EXPORTED: &str = "veritrail.events.exported";
    pub const CATALOG_CHANGED: &str = "veritrail.catalog.changed";
    pub const SETTINGS_CHANGED: &str = "veritrail.tenant.settings_changed";
    pub const WEBHOOK_CREATED: &str = "veritrail.webhook.created";
    pub const WEBHOOK_UPDATED: &str = "veritrail.webhook.updated";
    pub const WEBHOOK_SECRET_ROTATED: &str = "veritrail.webhook.secret_rotated";
    pub const WEBHOOK_DISABLED: &str = "veritrail.webhook.disabled";
    pub const WEBHOOK_DELETED: &str = "veritrail.webhook.deleted";
    pub const VIEWER_TOKEN_MINTED: &str = "veritrail.viewer_token.minted";
    pub const VIEWER_TOKEN_USED: &str = "veritrail.viewer_token.used";
    pub const SERVICE_KEY_READ: &str = "veritrail.service_key.read";
    pub const VIEWER_TOKEN_REVOKED: &str = "veritrail.viewer_token.revoked";
    pub const DISK_FULL: &str = "veritrail.disk.full";
    pub const INTEGRITY_CHECK_FAILED: &str = "veritrail.integrity.check_failed";
    pub const RETENTION_CHANGED: &str = "veritrail.retention.changed";
    pub const RETENTION_DELETED: &str = "veritrail.retention.deleted";
    pub const EVENT_ERASED: &str = "veritrail.event.erased";
    pub const HOLD_CREATED: &str = "veritrail.hold.created";
    pub const HOLD_RELEASED: &str = "veritrail.hold.released";
}

/// Builds one of the service's events.
fn event(
    event_type: &str,
    actor: &Principal,
    target: &serde_json::Value,
    details: &serde_json::Value,
) -> Result<Event, ApiError> {
    let actor_type = match actor {
        Principal::ServerAdmin => "server_admin",
        Principal::Tenant(_) => "api_key",
        Principal::Service(_) => "service_key",
    };
    event_by(
        event_type,
        &json!({"id": actor.id(), "type": actor_type}),
        target,
        details,
    )
}

/// Builds one of the service's events with the given actor.
fn event_by(
    event_type: &str,
    actor: &serde_json::Value,
    target: &serde_json::Value,
    details: &serde_json::Value,
) -> Result<Event, ApiError> {
    let input: EventInput = serde_json::from_value(json!({
        "type": event_type,
        "actor": actor,
        "targets": [target],
        "outcome": "success",
        "source": {"service": "veritrail", "component": "api", "version": env!("CARGO_PKG_VERSION")},
        "details": details,
    }))
    .map_err(ApiError::internal)?;
    Event::parse(input).map_err(ApiError::internal)
}

/// The disk was full from `since` until `until` (when an append succeeded again), and
/// `refused` of this tenant's ingests were refused with 507 meanwhile. The actor is the
/// service itself.
pub fn disk_full(since: &str, until: &str, refused: u64) -> Result<Event, ApiError> {
    let input: EventInput = serde_json::from_value(json!({
        "type": types::DISK_FULL,
        "occurred_at": since,
        "actor": {"id": "veritrail", "type": "service"},
        "targets": [{"id": "data_dir", "type": "storage"}],
        "outcome": "failure",
        "source": {"service": "veritrail", "component": "ledger", "version": env!("CARGO_PKG_VERSION")},
        "details": {"since": since, "until": until, "refused": refused},
    }))
    .map_err(ApiError::internal)?;
    Event::parse(input).map_err(ApiError::internal)
}

/// Appends a service event to `tenant`'s log, with the built-in catalog's fields and
/// summary; returns once it is durable.
pub async fn record(state: &AppState, tenant: &TenantId, event: Event) -> Result<(), ApiError> {
    let catalogued = catalogued(state, event)?;
    state
        .ledger()
        .append_catalogued(tenant.clone(), vec![catalogued])
        .await?;
    Ok(())
}

/// [`record`], returning the event's seq.
pub async fn record_returning_seq(
    state: &AppState,
    tenant: &TenantId,
    event: Event,
) -> Result<u64, ApiError> {
    let catalogued = catalogued(state, event)?;
    let receipts = state
        .ledger()
        .append_catalogued(tenant.clone(), vec![catalogued])
        .await?;
    receipts
        .first()
        .map(|receipt| receipt.seq)
        .ok_or_else(|| ApiError::internal("an append without a receipt"))
}

/// Appends a service event that reports a removal (`veritrail.retention.deleted`,
/// `veritrail.event.erased`) and removes `scope` in the same commit.
pub async fn record_removal(
    state: &AppState,
    tenant: &TenantId,
    event: Event,
    scope: RemovalScope,
) -> Result<Receipt, ApiError> {
    let catalogued = catalogued(state, event)?;
    Ok(state
        .ledger()
        .append_removal(tenant.clone(), catalogued, scope)
        .await?)
}

pub(crate) fn catalogued(
    state: &AppState,
    event: Event,
) -> Result<(Event, CatalogFields), ApiError> {
    state.catalogs().builtin().apply(event).map_err(|errors| {
        ApiError::internal(format!("a service event misfits its catalog: {errors:?}"))
    })
}

/// The tenant's retention policy set (`policy` in words) or cleared.
pub fn retention_changed(
    actor: &Principal,
    tenant: &TenantId,
    policy: &str,
) -> Result<Event, ApiError> {
    event(
        types::RETENTION_CHANGED,
        actor,
        &json!({"id": tenant.as_str(), "type": "tenant"}),
        &json!({"policy": policy}),
    )
}

/// A retention run removed `count` records, every one below `below_seq` (received before
/// `before`) but `skipped_held` a legal hold keeps. The actor is the service, or the key
/// that asked for the run.
pub fn retention_deleted(
    actor: Option<&Principal>,
    tenant: &TenantId,
    before: &str,
    count: u64,
    below_seq: u64,
    policy: &str,
    skipped_held: u64,
) -> Result<Event, ApiError> {
    let target = json!({"id": tenant.as_str(), "type": "tenant"});
    let details = json!({
        "before": before, "count": count, "below_seq": below_seq,
        "policy": policy, "skipped_held": skipped_held,
    });
    match actor {
        Some(actor) => event(types::RETENTION_DELETED, actor, &target, &details),
        None => event_by(
            types::RETENTION_DELETED,
            &json!({"id": "veritrail", "type": "service"}),
            &target,
            &details,
        ),
    }
}

/// `actor` erased `seqs` (as ranges, like `3-5,9`), chosen by a filter of kind `filter`
/// (its field names, never the erased values), for `reason`.
pub fn event_erased(
    actor: &Principal,
    tenant: &TenantId,
    reason: &str,
    seqs: &[u64],
    filter: &str,
) -> Result<Event, ApiError> {
    event(
        types::EVENT_ERASED,
        actor,
        &json!({"id": tenant.as_str(), "type": "tenant"}),
        &json!({"reason": reason, "count": seqs.len(), "seqs": seq_ranges(seqs), "filter": filter}),
    )
}

/// `seqs` (ascending) as ranges: `[[3, 5], [9, 9]]`.
fn seq_ranges(seqs: &[u64]) -> Vec<[u64; 2]> {
    let mut ranges: Vec<[u64; 2]> = Vec::new();
    for &seq in seqs {
        match ranges.last_mut() {
            Some(range) if range[1] + 1 == seq => range[1] = seq,
            _ => ranges.push([seq, seq]),
        }
    }
    ranges
}

/// A legal hold placed (`filter`: what it covers, by field names) or released.
pub fn hold_changed(
    actor: &Principal,
    event_type: &str,
    hold_id: &str,
    reason: Option<&str>,
    filter: Option<&str>,
) -> Result<Event, ApiError> {
    let mut details = json!({"hold_id": hold_id});
    if let Some(reason) = reason {
        details["reason"] = json!(reason);
    }
    if let Some(filter) = filter {
        details["filter"] = json!(filter);
    }
    event(
        event_type,
        actor,
        &json!({"id": hold_id, "type": "legal_hold"}),
        &details,
    )
}

pub fn tenant_created(
    actor: &Principal,
    tenant: &TenantId,
    owner_key: &KeyRow,
) -> Result<Event, ApiError> {
    event(
        types::TENANT_CREATED,
        actor,
        &json!({"id": tenant.as_str(), "type": "tenant"}),
        &json!({"owner_key_id": owner_key.id}),
    )
}

/// A tenant created by service key `key_id` writing to it first.
pub fn tenant_created_on_first_write(key_id: &str, tenant: &TenantId) -> Result<Event, ApiError> {
    event_by(
        types::TENANT_CREATED,
        &json!({"id": key_id, "type": "service_key"}),
        &json!({"id": tenant.as_str(), "type": "tenant"}),
        &json!({"on_first_write": true}),
    )
}

pub fn key_created(actor: &Principal, key: &KeyRow) -> Result<Event, ApiError> {
    event(
        types::KEY_CREATED,
        actor,
        &key_target(key),
        &json!({"key_id": key.id, "role": key.role.as_str(), "name": key.name}),
    )
}

pub fn key_revoked(actor: &Principal, key: &KeyRow) -> Result<Event, ApiError> {
    event(
        types::KEY_REVOKED,
        actor,
        &key_target(key),
        &json!({"key_id": key.id, "role": key.role.as_str()}),
    )
}

/// An export of the log's bundle: its tree size, and the filters of a filtered one.
pub fn log_exported(
    actor: &Principal,
    tenant: &TenantId,
    tree_size: u64,
    filters: &str,
) -> Result<Event, ApiError> {
    let mut details = json!({"tree_size": tree_size});
    if !filters.is_empty() {
        details["filters"] = json!(filters);
    }
    event(
        types::LOG_EXPORTED,
        actor,
        &json!({"id": tenant.as_str(), "type": "tenant"}),
        &details,
    )
}

/// A filtered export of the tenant's events: its format, the filters given (as a query
/// string; absent for all events), its bound and where it continued from.
pub fn events_exported(
    actor: &Principal,
    tenant: &TenantId,
    format: &str,
    filters: &str,
    indexed_size: u64,
    after_seq: Option<u64>,
) -> Result<Event, ApiError> {
    let mut details = json!({"format": format, "indexed_size": indexed_size});
    if !filters.is_empty() {
        details["filters"] = json!(filters);
    }
    if let Some(after_seq) = after_seq {
        details["after_seq"] = json!(after_seq);
    }
    event(
        types::EVENTS_EXPORTED,
        actor,
        &json!({"id": tenant.as_str(), "type": "tenant"}),
        &details,
    )
}

/// A change of the tenant's catalog: `change` is `imported`, `entry_updated` or
/// `entry_deleted`.
pub fn catalog_changed(
    actor: &Principal,
    tenant: &TenantId,
    catalog: &str,
    version: u64,
    change: &str,
) -> Result<Event, ApiError> {
    event(
        types::CATALOG_CHANGED,
        actor,
        &json!({"id": tenant.as_str(), "type": "tenant"}),
        &json!({"catalog": catalog, "version": version, "change": change}),
    )
}

/// A change of a tenant setting.
pub fn settings_changed(
    actor: &Principal,
    tenant: &TenantId,
    setting: &str,
    value: &str,
) -> Result<Event, ApiError> {
    event(
        types::SETTINGS_CHANGED,
        actor,
        &json!({"id": tenant.as_str(), "type": "tenant"}),
        &json!({"setting": setting, "value": value}),
    )
}

/// A change of a webhook subscription: `event_type` is one of the `WEBHOOK_*` types. The
/// actor is the key that acted, or the service itself (`None`), which disables a
/// subscription whose receiver answered 410 or failed for too long.
pub fn webhook_changed(
    actor: Option<&Principal>,
    event_type: &str,
    subscription: &str,
    reason: Option<&str>,
) -> Result<Event, ApiError> {
    let target = json!({"id": subscription, "type": "webhook_subscription"});
    let mut details = json!({"subscription_id": subscription});
    if let Some(reason) = reason {
        details["reason"] = json!(reason);
    }
    match actor {
        Some(actor) => event(event_type, actor, &target, &details),
        None => event_by(
            event_type,
            &json!({"id": "veritrail", "type": "service"}),
            &target,
            &details,
        ),
    }
}

/// A viewer token minted (by `actor`) or used (`None`: the token itself is the actor).
pub fn viewer_token(
    actor: Option<&Principal>,
    event_type: &str,
    token_id: &str,
) -> Result<Event, ApiError> {
    let target = json!({"id": token_id, "type": "viewer_token"});
    let details = json!({"token_id": token_id});
    match actor {
        Some(actor) => event(event_type, actor, &target, &details),
        None => event_by(
            event_type,
            &json!({"id": token_id, "type": "viewer_token"}),
            &target,
            &details,
        ),
    }
}

/// `veritrail.viewer_token.used`: token `token_id` was used in `minute` (Unix minutes; the
/// first use of each minute is recorded, see [`crate::viewer::Uses`]).
pub fn viewer_token_used(token_id: &str, minute: i64) -> Result<Event, ApiError> {
    let at =
        veritrail_core::event::Timestamp::from_unix_nanos(minute.saturating_mul(60_000_000_000))
            .to_rfc3339();
    event_by(
        types::VIEWER_TOKEN_USED,
        &json!({"id": token_id, "type": "viewer_token"}),
        &json!({"id": token_id, "type": "viewer_token"}),
        &json!({"token_id": token_id, "minute": at}),
    )
}

/// Records that the service key of `acting` read `what` of its tenant (`catalog`,
/// `viewer_tokens`): once per key, tenant, read and minute, before the read is answered,
/// as viewer-token uses are. A tenant key's reads are not recorded.
pub async fn service_read(state: &AppState, acting: &Acting, what: &str) -> Result<(), ApiError> {
    if acting.service.is_none() {
        return Ok(());
    }
    let minute = i64::try_from(crate::clock::now_unix_secs())
        .unwrap_or(i64::MAX)
        .div_euclid(60);
    let name = format!("{}/{}/{what}", acting.key_id, acting.tenant);
    if !state.service_reads().first_in_minute(&name, minute) {
        return Ok(());
    }
    let at =
        veritrail_core::event::Timestamp::from_unix_nanos(minute.saturating_mul(60_000_000_000))
            .to_rfc3339();
    let event = event_by(
        types::SERVICE_KEY_READ,
        &json!({"id": acting.key_id, "type": "service_key"}),
        &json!({"id": acting.tenant.as_str(), "type": "tenant"}),
        &json!({"key_id": acting.key_id, "read": what, "minute": at}),
    );
    let recorded = match event {
        Ok(event) => record(state, &acting.tenant, event).await,
        Err(err) => Err(err),
    };
    if recorded.is_err() {
        state.service_reads().forget(&name, minute);
    }
    recorded
}

fn key_target(key: &KeyRow) -> serde_json::Value {
    let mut target = json!({"id": key.id, "type": "api_key"});
    if let Some(name) = &key.name {
        target["name"] = json!(name);
    }
    target
}
