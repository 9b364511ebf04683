//! The wire types of veritrail's HTTP API (v1): what the server sends and the client SDK
//! reads. Plain serde structs, no behaviour; the server documents them in its OpenAPI spec
//! (feature `openapi`).
//!
//! # Layout
//!
//! - [`paths`]: every route, as the server mounts it and the SDK calls it.
//! - [`error_codes`] and [`ErrorBody`]: the one error shape of every 4xx and 5xx.
//! - Ingest: [`IngestResponse`], [`ReceiptBody`].
//! - Search: [`SearchResponse`], [`CountResponse`], [`RecordResponse`].
//! - The log: [`InclusionProofBody`], [`ConsistencyProofBody`], [`LogKeyBody`], and the
//!   export bundle ([`ExportHeader`], [`ExportLine`]).
//! - Tenants and keys: [`Role`], [`TenantBody`], [`KeyBody`], [`KeyCreated`], [`WhoAmI`].
//!
//! Hashes and proof nodes are standard base64 (with padding), as in C2SP tlog-proof.
//! Timestamps are RFC 3339 in UTC.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use veritrail_core::event::{ActorInput, EventInput, SourceInput, TargetInput};

/// Every route of the API.
pub mod paths {
    /// `POST` one event or an array of events; `GET` searches.
    pub const EVENTS: &str = "/api/v1/events";
    /// `GET` counts, grouped or as a histogram.
    pub const EVENTS_COUNT: &str = "/api/v1/events/count";
    /// `GET` the matching records as JSON Lines or CSV, streamed in seq order.
    pub const EVENTS_EXPORT: &str = "/api/v1/events/export";
    /// `GET` the live tail: Server-Sent Events of new matching records (`Last-Event-ID`
    /// resumes after that seq).
    pub const EVENTS_STREAM: &str = "/api/v1/events/stream";
    /// `GET /api/v1/events/{seq}`: one record by its seq.
    pub const EVENT_BY_SEQ: &str = "/api/v1/events/{seq}";
    /// `GET` the latest signed checkpoint (a C2SP signed note, `text/plain`).
    pub const LOG_CHECKPOINT: &str = "/api/v1/log/checkpoint";
    /// `GET` the verifier key and the log's origin.
    pub const LOG_KEY: &str = "/api/v1/log/key";
    /// `GET ?seq=|id=&tree_size=`: inclusion proof.
    pub const LOG_INCLUSION: &str = "/api/v1/log/proof/inclusion";
    /// `GET ?from=&to=`: consistency proof between two tree sizes.
    pub const LOG_CONSISTENCY: &str = "/api/v1/log/proof/consistency";
    /// `GET` the export bundle (`application/x-ndjson`).
    pub const LOG_EXPORT: &str = "/api/v1/log/export";
    /// `GET` the last complete scrub of the caller's log.
    pub const LOG_INTEGRITY: &str = "/api/v1/log/integrity";
    /// `GET` who the presented key is.
    pub const ME: &str = "/api/v1/me";
    /// `GET` lists, `POST` creates keys of the caller's tenant.
    pub const KEYS: &str = "/api/v1/keys";
    /// `DELETE /api/v1/keys/{key_id}` revokes a key of the caller's tenant.
    pub const KEY: &str = "/api/v1/keys/{key_id}";
    /// `GET` lists, `POST` creates tenants (server admin).
    pub const TENANTS: &str = "/api/v1/tenants";
    /// `GET /api/v1/tenants/{tenant}` (server admin).
    pub const TENANT: &str = "/api/v1/tenants/{tenant}";
    /// `POST` one event or an array of events to the tenant's log (a service publisher key,
    /// or the tenant's own publisher key).
    pub const TENANT_EVENTS: &str = "/api/v1/tenants/{tenant}/events";
    /// `GET` the tenant's own catalog (a service embedder key).
    pub const TENANT_CATALOG: &str = "/api/v1/tenants/{tenant}/catalog";
    /// `GET` lists, `POST` mints viewer tokens of the tenant (a service embedder key).
    pub const TENANT_VIEWER_TOKENS: &str = "/api/v1/tenants/{tenant}/viewer-tokens";
    /// `DELETE` revokes a viewer token of the tenant (a service embedder key).
    pub const TENANT_VIEWER_TOKEN: &str = "/api/v1/tenants/{tenant}/viewer-tokens/{token_id}";
    /// `GET` lists, `POST` creates service keys (server admin).
    pub const SERVICE_KEYS: &str = "/api/v1/service-keys";
    /// `DELETE` revokes a service key (server admin).
    pub const SERVICE_KEY: &str = "/api/v1/service-keys/{key_id}";
    /// `GET` lists, `POST` creates keys of a tenant (server admin).
    pub const TENANT_KEYS: &str = "/api/v1/tenants/{tenant}/keys";
    /// `DELETE` revokes a key of a tenant (server admin).
    pub const TENANT_KEY: &str = "/api/v1/tenants/{tenant}/keys/{key_id}";
    /// `GET` the tenant's own catalog (`?format=yaml`, `?version=N`); `PUT` replaces it
    /// (JSON or YAML).
    pub const CATALOG: &str = "/api/v1/catalog";
    /// `GET` the entry of a type (from whichever catalog defines it); `PUT` adds or changes,
    /// `DELETE` removes it in the tenant's own catalog.
    pub const CATALOG_TYPE: &str = "/api/v1/catalog/types/{event_type}";
    /// `GET` categories with event counts and their types, for filter drop-downs.
    pub const CATALOG_CATEGORIES: &str = "/api/v1/catalog/categories";
    /// `GET` / `PUT` the tenant's catalog policy and adopted shared catalogs.
    pub const CATALOG_SETTINGS: &str = "/api/v1/catalog/settings";
    /// `GET` the shared catalogs a tenant can adopt.
    pub const CATALOG_SHARED: &str = "/api/v1/catalog/shared";
    /// `GET` one shared catalog (`?format=yaml`).
    pub const CATALOG_SHARED_ONE: &str = "/api/v1/catalog/shared/{catalog_id}";
    /// `POST` mints a viewer token for the embeddable Activity view.
    pub const VIEWER_TOKENS: &str = "/api/v1/viewer-tokens";
    pub const VIEWER_TOKEN: &str = "/api/v1/viewer-tokens/{token_id}";
    /// `GET` / `PUT` the tenant's Activity page settings.
    pub const ACTIVITY_SETTINGS: &str = "/api/v1/activity/settings";
    /// `GET` lists, `POST` creates the tenant's webhook subscriptions.
    pub const WEBHOOKS: &str = "/api/v1/webhooks";
    /// `GET`, `PATCH` or `DELETE` one subscription.
    pub const WEBHOOK: &str = "/api/v1/webhooks/{webhook_id}";
    /// `POST` rotates the subscription's signing secret.
    pub const WEBHOOK_ROTATE: &str = "/api/v1/webhooks/{webhook_id}/rotate";
    /// `GET` the subscription's delivery attempts, newest first.
    pub const WEBHOOK_ATTEMPTS: &str = "/api/v1/webhooks/{webhook_id}/attempts";
    /// `POST` sends one message, or the messages of a seq range, again.
    pub const WEBHOOK_REDELIVER: &str = "/api/v1/webhooks/{webhook_id}/redeliver";
    /// `POST` sends a test message now and returns the attempt.
    pub const WEBHOOK_PING: &str = "/api/v1/webhooks/{webhook_id}/ping";
    /// `GET` the tenant's retention policy and its last run; `PUT` sets it, `DELETE`
    /// goes back to the server's default.
    pub const RETENTION: &str = "/api/v1/retention";
    /// `POST` applies the retention policy now (the background job does it on its own).
    pub const RETENTION_RUN: &str = "/api/v1/retention/run";
    /// `POST` erases the records about one subject (or given seqs); `dry_run` shows them.
    pub const ERASURES: &str = "/api/v1/erasures";
    /// `GET` lists, `POST` places legal holds.
    pub const HOLDS: &str = "/api/v1/holds";
    /// `DELETE` releases a legal hold.
    pub const HOLD: &str = "/api/v1/holds/{hold_id}";
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness: the ledger and the search index are open.
    pub const READYZ: &str = "/readyz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// The OpenAPI 3 spec (at the path Thru MFT's Audit API serves its spec at).
    pub const OPENAPI: &str = "/api/audit/swagger/v1/swagger.json";
    /// Swagger UI.
    pub const SWAGGER_UI: &str = "/api/audit/swagger/";
}

/// The stable machine codes of [`ErrorDetail::code`]. Field-level codes inside
/// [`EventErrors`] are those of `veritrail_core::event::codes`.
pub mod error_codes {
    /// 400: the body is not JSON, or not the expected shape.
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// 400: the request's body is empty, or an empty array of events.
    pub const EMPTY_BODY: &str = "empty_body";
    /// 400: a query parameter is invalid.
    pub const INVALID_PARAMETER: &str = "invalid_parameter";
    /// 400: the cursor was not issued by this server for this query.
    pub const INVALID_CURSOR: &str = "invalid_cursor";
    /// 400: one or more events are invalid; see `errors`.
    pub const INVALID_EVENTS: &str = "invalid_events";
    /// 422: events the tenant's catalogs refuse under the strict policy (see `events`).
    pub const REJECTED_BY_CATALOG: &str = "rejected_by_catalog";
    /// 422: a catalog document with problems (see `errors`).
    pub const INVALID_CATALOG: &str = "invalid_catalog";
    /// 422: a webhook subscription with an invalid field (the message names it).
    pub const INVALID_WEBHOOK: &str = "invalid_webhook";
    /// 422: a webhook URL whose host is, or resolves to, an address deliveries may not go
    /// to (loopback, private, link-local, multicast, cloud metadata) and that the server's
    /// `webhooks.allow_networks` does not allow.
    pub const FORBIDDEN_TARGET: &str = "forbidden_target";
    /// 400: the request's `Content-Type` is not `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 401: no API key, or one this server does not know, or a revoked one.
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// 403: the key's role may not do this.
    pub const FORBIDDEN: &str = "forbidden";
    /// 404: no such route, record, tenant or key.
    pub const NOT_FOUND: &str = "not_found";
    /// 410: the record was removed by a retention run or an erasure; the message says by
    /// which record of the log, when and why, and `removed_by` holds that record's seq.
    pub const RECORD_REMOVED: &str = "record_removed";
    /// 410: a proof from (or to) a tree that ends inside the removed records at the start
    /// of the log, whose leaves are gone; the message says from which tree size proofs
    /// start.
    pub const TREE_SIZE_REMOVED: &str = "tree_size_removed";
    /// 409: an erasure would remove records a legal hold keeps; the message names the hold.
    pub const HELD: &str = "held";
    /// 405: the route exists, the method does not.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 409: the tenant already exists.
    pub const CONFLICT: &str = "conflict";
    /// 413: the body is larger than the limit, or has more events than the limit.
    pub const TOO_LARGE: &str = "too_large";
    /// 429: this key's request rate is over its limit, or one of its shares (streams open,
    /// redeliveries waiting, viewer tokens alive) is used up; see `Retry-After`.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// 400: a search or count that would cost more than the server allows one query (too
    /// many words, a prefix matching too many words, too many histogram buckets, too many
    /// values in a list filter); the message says which and what to change.
    pub const QUERY_TOO_COSTLY: &str = "query_too_costly";
    /// 414: the request's path and query are longer than the server takes.
    pub const URI_TOO_LONG: &str = "uri_too_long";
    /// 431: the request's headers are larger than the server takes.
    pub const HEADERS_TOO_LARGE: &str = "headers_too_large";
    /// 500: a bug; the detail is in the server's log under the request id.
    pub const INTERNAL: &str = "internal";
    /// 500: stored data failed its integrity check (a checksum, or a proof that does not
    /// fold to the signed checkpoint's root), so it was not served; the server's log has
    /// the detail. Not worth retrying.
    pub const INTEGRITY_ERROR: &str = "integrity_error";
    /// 507: the server's disk is full; nothing of the request was stored. Retry later with
    /// the same event ids.
    pub const STORAGE_FULL: &str = "storage_full";
    /// 503: the ledger cannot store or read right now; retrying with the same event ids is
    /// safe.
    pub const UNAVAILABLE: &str = "unavailable";
    /// 503: the server is shutting down.
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// 503: the server takes in as much as it can process in time already; nothing of the
    /// request was read or stored. Retry after `Retry-After` seconds (with the same event
    /// ids, safely).
    pub const OVERLOADED: &str = "overloaded";
    /// 504: the request took longer than the server's timeout.
    pub const TIMEOUT: &str = "timeout";
}

/// The body of every error response: `{"error": {"code", "message", ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and for people (`message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable machine-readable code, one of [`error_codes`].
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// For `invalid_events` and `rejected_by_catalog`: each refused event by its index in
    /// the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventErrors>,
    /// For `invalid_catalog`: every problem of the catalog document, by path (like
    /// `events[3].code`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorBody>,
    /// For `record_removed` (410): which record of the log removed it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<RemovedBody>,
    /// The request id, also in the `x-request-id` header and the server's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// How a record left the log: the record that reports its removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemovedBody {
    /// The removed record's seq.
    pub seq: u64,
    /// The seq of the record reporting the removal (`veritrail.retention.deleted` or
    /// `veritrail.event.erased`).
    pub removed_by: u64,
    /// That record's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by_type: Option<String>,
    /// When it was removed (the reporting record's `received_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<String>,
    /// Why: the retention policy, or the erasure's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The invalid fields of one event of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventErrors {
    /// Index of the event in the request (0 for a single event).
    pub index: usize,
    pub errors: Vec<FieldErrorBody>,
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldErrorBody {
    /// JSON path of the field, like `actor.email` or `targets[3].id`.
    pub field: String,
    /// Stable machine-readable code, like `too_long` or `invalid_email`.
    pub code: String,
    pub message: String,
}

/// Reply to `POST /api/v1/events`, sent once the events are durable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestResponse {
    /// One receipt per event, in request order.
    pub receipts: Vec<ReceiptBody>,
    /// A signed checkpoint (C2SP signed note) whose tree holds every event of the request.
    pub checkpoint: String,
    /// Size of that checkpoint's tree.
    pub tree_size: u64,
}

/// Reply to `POST /api/v1/events` with a service publisher key (each event names its
/// tenant), sent once every event is durable: each tenant's events went to its own log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MixedIngestResponse {
    /// One receipt per event, in request order, each naming its tenant.
    pub receipts: Vec<ReceiptBody>,
    /// For each tenant of the request (in the order of first appearance), a signed
    /// checkpoint of its log whose tree holds every event of the request for that tenant.
    pub logs: Vec<LogCheckpointBody>,
}

/// Reply to `POST /api/v1/events`: [`IngestResponse`] for a tenant key, and
/// [`MixedIngestResponse`] for a service publisher key (whose events name their tenants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum IngestReply {
    Tenant(IngestResponse),
    Mixed(MixedIngestResponse),
}

/// A tenant's log as of a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogCheckpointBody {
    pub tenant: String,
    /// A signed checkpoint (C2SP signed note) of the tenant's log.
    pub checkpoint: String,
    /// Size of that checkpoint's tree.
    pub tree_size: u64,
}

/// Where one ingested event is in its tenant's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptBody {
    /// The event's tenant, in the reply to a batch that names tenants per event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The event's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Position in the tenant's log (0-based).
    pub seq: u64,
    /// `SHA-256(0x00 || canonical record)`, base64.
    pub leaf_hash: String,
    /// The id was already in the log: this is the original record's receipt and nothing
    /// new was stored.
    pub duplicate: bool,
    /// With `?proof=true`: the inclusion proof of `seq` in the response's checkpoint
    /// (base64 hashes, leaf to root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<Vec<String>>,
}

/// Reply to `GET /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResponse {
    /// Matching records, in the requested order of seq.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub events: Vec<Value>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// How far the answer is complete: the search index holds seqs `0..indexed_size`.
    pub indexed_size: u64,
    /// The log's size when the search ran; events at or past `indexed_size` are not yet
    /// searchable (normally for less than a second).
    pub log_size: u64,
}

/// Reply to `GET /api/v1/events/count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountResponse {
    /// Matching events.
    pub total: u64,
    /// With `group_by`: counts per key, largest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupCount>>,
    /// With `interval`: counts per time bucket (only non-empty ones), oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Vec<HistogramBucket>>,
    pub indexed_size: u64,
    pub log_size: u64,
}

/// One group of a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupCount {
    pub key: String,
    pub count: u64,
}

/// One bucket of a histogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistogramBucket {
    /// Start of the bucket (RFC 3339); buckets are aligned to multiples of the interval
    /// since the Unix epoch.
    pub start: String,
    pub count: u64,
    /// Of those, events whose outcome is `failure`.
    pub failures: u64,
}

/// Reply to `GET /api/v1/events/{seq}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordResponse {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub record: Value,
    /// The record's leaf hash, base64.
    pub leaf_hash: String,
    /// With `?proof=true`: its inclusion proof in the latest checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<InclusionProofBody>,
}

/// An inclusion proof with the checkpoint it leads to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProofBody {
    pub seq: u64,
    pub tree_size: u64,
    /// base64.
    pub leaf_hash: String,
    /// base64 hashes, leaf to root.
    pub proof: Vec<String>,
    /// The signed checkpoint of `tree_size` when that is the latest; otherwise the latest
    /// one, and a consistency proof relates the two.
    pub checkpoint: String,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProofBody {
    pub from_size: u64,
    pub to_size: u64,
    /// base64 hashes.
    pub proof: Vec<String>,
    /// The latest signed checkpoint.
    pub checkpoint: String,
}

/// Reply to `GET /api/v1/log/key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogKeyBody {
    /// The verifier key (`name+keyid+base64`), to pin for offline verification.
    pub verifier_key: String,
    /// The checkpoint origin of the caller's log: `<deployment>/<tenant>`.
    pub origin: String,
}

/// The first line of an export bundle (`application/x-ndjson`).
///
/// An export is the header line, then one [`ExportLine`] per record from seq 0 to
/// `tree_size - 1`, the removed records at the start of the log as one prefix line. A
/// filtered export (`filters` set) holds only the matching kept records, each with its
/// inclusion proof in the checkpoint's tree. `veritrail verify --export FILE --key KEY`
/// checks it offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// A verifier reads what it checks, nothing else: an unknown (or damaged) field name is a
// fault, never a readable part that was not checked.
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    /// Always [`ExportHeader::FORMAT`].
    pub format: String,
    pub tenant: String,
    pub origin: String,
    /// The key that signed `checkpoint` (check it against the key you pinned).
    pub verifier_key: String,
    pub tree_size: u64,
    /// Signed checkpoint of exactly `tree_size` records.
    pub checkpoint: String,
    /// Set on a filtered export: the filters it was asked with, as a query string
    /// (`type=user.*&outcome=failure`). Its lines are then the matching kept records of the
    /// checkpoint's tree that search had indexed, each proven by its own inclusion proof;
    /// the bundle does not prove that no other record matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<String>,
}

impl ExportHeader {
    /// The bundle format this version writes and reads.
    pub const FORMAT: &str = "veritrail-export/v1";
}

/// One record of an export bundle: its bytes, or for a removed record only its leaf
/// hash and the seq of the record that reports its removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExportLine {
    pub seq: u64,
    /// base64 of `SHA-256(0x00 || record)`; empty on a prefix line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub leaf_hash: String,
    /// base64 of the canonical record bytes (docs/format.md); absent for a removed record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The record's JSON, as search returns it, for people and tools to read; the verifier
    /// checks that it is what `record` decodes to.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// On a filtered export: the base64 hashes of the record's inclusion proof in the
    /// checkpoint's tree (RFC 9162).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proof: Vec<String>,
    /// For a removed record: the seq of the `veritrail.retention.deleted` or
    /// `veritrail.event.erased` record that removed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<u64>,
    /// Only on a *prefix line*, the first line (seq 0) of a log whose first records were
    /// removed: it stands for records `0..removed_below`, all removed, and
    /// `subtree_hashes` holds the base64 hashes of the complete subtrees they split into
    /// (largest first), in place of their leaf hashes. `removed_by` names the record that
    /// removed the last of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_below: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtree_hashes: Vec<String>,
}

/// A tenant key's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads, manages every key (owner keys too).
    Owner,
    /// Reads, manages every key but owner keys.
    SuperAdmin,
    /// Reads, manages viewer and publisher keys.
    Admin,
    /// Reads only.
    Viewer,
    /// Writes events only.
    Publisher,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::SuperAdmin,
        Role::Admin,
        Role::Viewer,
        Role::Publisher,
    ];

    /// The role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::SuperAdmin => "super_admin",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Publisher => "publisher",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service key's role: deployment-level keys that act on many tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ServiceRole {
    /// Writes events to the tenants it may (and creates them on first write, if allowed).
    ServicePublisher,
    /// Mints, lists and revokes viewer tokens of the tenants it may, and reads their
    /// catalogs.
    ServiceEmbedder,
}

impl ServiceRole {
    pub const ALL: [ServiceRole; 2] = [ServiceRole::ServicePublisher, ServiceRole::ServiceEmbedder];

    /// The role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceRole::ServicePublisher => "service_publisher",
            ServiceRole::ServiceEmbedder => "service_embedder",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<ServiceRole> {
        ServiceRole::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
    }
}

impl std::fmt::Display for ServiceRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /api/v1/service-keys`. With neither `tenants` nor `tenant_prefix` the key
/// acts on every tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateServiceKey {
    pub role: ServiceRole,
    /// What the key is for, like "billing backend".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The only tenants the key may act on (at most 1,000 ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// The key may act on the tenants whose id starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_prefix: Option<String>,
    /// A service publisher creates a tenant it may act on when an event names it first
    /// (with the server's defaults for new tenants); otherwise an unknown tenant is a 404.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_tenants: bool,
}

/// A service key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceKeyBody {
    /// Public id, like `svc_3f9a0c2e71b4d6a8`: names the key in lists, records
    /// (`published_by`) and audit events.
    pub id: String,
    pub role: ServiceRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_prefix: Option<String>,
    pub create_tenants: bool,
    pub created_at: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A service key just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceKeyCreated {
    pub key: ServiceKeyBody,
    /// The secret to send as `Authorization: Bearer <secret>`; stored only as a hash.
    pub secret: String,
}

/// Reply to `GET /api/v1/service-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceKeyList {
    pub keys: Vec<ServiceKeyBody>,
}

/// Body of `POST /api/v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// `[a-z0-9][a-z0-9_-]*`, at most 64 bytes; part of every checkpoint origin.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantBody {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: String,
    /// Records in the tenant's log.
    pub log_size: u64,
}

/// Reply to `POST /api/v1/tenants`: the tenant and its first owner key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantCreated {
    pub tenant: TenantBody,
    pub owner_key: KeyCreated,
}

/// Reply to `GET /api/v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantList {
    pub tenants: Vec<TenantBody>,
}

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub role: Role,
    /// What the key is for, like "billing backend".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An API key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyBody {
    /// Public id, like `key_3f9a0c2e71b4d6a8`: names the key in lists, logs and audit
    /// events.
    pub id: String,
    pub tenant: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: String,
    /// Who created it: a key id, or `server_admin`.
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A key just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyCreated {
    pub key: KeyBody,
    /// The secret to send as `Authorization: Bearer <secret>`; stored only as a hash.
    pub secret: String,
}

/// Reply to `GET /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyList {
    pub keys: Vec<KeyBody>,
}

/// Reply to `GET /api/v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    /// `server_admin` or the key's id.
    pub key_id: String,
    /// The key's tenant; absent for the server admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The key's role; absent for the server admin and service keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// A service key's role and the tenants it may act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceKeyBody>,
}

/// Declares a struct of query parameters that starts with the search filters (`type`,
/// `category`, `code`, `name`, `actor`, `target`, `outcome`, `correlation_id`, `id`,
/// `from`, `to`, `q`), the same fields with the same documentation everywhere, then has its
/// own.
macro_rules! with_search_filters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($own:tt)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
        /// Event types, comma-separated: exact (`user.login`) or a prefix (`user.*`).
        #[cfg_attr(
            feature = "openapi",
            param(
                pattern = r"^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?(,[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)*)?$"
            )
        )]
        #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
        pub event_type: Option<String>,
        /// Catalog category, case-insensitive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub category: Option<String>,
        /// Catalog numeric code.
        #[cfg_attr(feature = "openapi", param(pattern = r"^[0-9]{1,20}$"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<String>,
        /// Catalog event name, case-insensitive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Actor id or email (email case-insensitive).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub actor: Option<String>,
        /// Target id or name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target: Option<String>,
        /// `success`, `failure`, `pending` or `unknown`.
        #[cfg_attr(
            feature = "openapi",
            param(pattern = r"^(success|failure|pending|unknown)$")
        )]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub outcome: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub correlation_id: Option<String>,
        /// The client's event id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// Events at or after this time (RFC 3339); event time is `occurred_at`, else
        /// `received_at`.
        #[cfg_attr(feature = "openapi", param(format = DateTime))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
        /// Events before this time (RFC 3339).
        #[cfg_attr(feature = "openapi", param(format = DateTime))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub to: Option<String>,
        /// Free text: every word must appear in the summary, name, description, type, actor,
        /// target names or the text of `details`; `word*` matches a prefix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub q: Option<String>,
            $($own)*
        }
    };
}

with_search_filters! {
    /// Query parameters of `GET /api/v1/events`. All optional; values are checked by the
    /// server, which names a bad one in an `invalid_parameter` error.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    #[serde(deny_unknown_fields)]
    pub struct SearchParams {
        /// `desc` (newest first, the default) or `asc`, by seq.
        #[cfg_attr(feature = "openapi", param(pattern = r"^(asc|desc)$"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub order: Option<String>,
        /// Page size: 1 to 1000, default 50.
        #[cfg_attr(feature = "openapi", param(value_type = Option<u64>, minimum = 1, maximum = 1000))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit: Option<String>,
        /// `next_cursor` of the previous page, with the same filters and order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cursor: Option<String>,
    }
}

with_search_filters! {
    /// Query parameters of `GET /api/v1/events/count`: the filters of [`SearchParams`] plus
    /// grouping and a histogram.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    #[serde(deny_unknown_fields)]
    pub struct CountParams {
        /// `type`, `category`, `outcome` or `actor`.
        #[cfg_attr(
            feature = "openapi",
            param(pattern = r"^(type|category|outcome|actor)$")
        )]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub group_by: Option<String>,
        /// Histogram bucket width: a number and a unit, `s`, `m`, `h` or `d` (like `15m`).
        #[cfg_attr(feature = "openapi", param(pattern = r"^[1-9][0-9]{0,6}[smhd]$"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<String>,
    }
}

with_search_filters! {
    /// Query parameters of `GET /api/v1/events/export`: the filters of [`SearchParams`], the
    /// format, and where to continue.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    #[serde(deny_unknown_fields)]
    pub struct ExportParams {
        /// `jsonl` (the default: one record JSON per line, as search returns them), `csv`
        /// (a header row, then one row per record; the columns are in docs/exporting.md) or
        /// `ocsf` (one OCSF 1.x event per line, of the class the catalog maps the type to).
        #[cfg_attr(feature = "openapi", param(pattern = r"^(jsonl|csv|ocsf)$"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub format: Option<String>,
        /// Continue after this seq: the `seq` of the last line received (a CSV export then has
        /// no header row).
        #[cfg_attr(feature = "openapi", param(value_type = Option<u64>))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub after_seq: Option<String>,
    }
}

with_search_filters! {
    /// Query parameters of `GET /api/v1/log/export`: with any of the filters of
    /// [`SearchParams`], the bundle holds only the matching records, each with its inclusion
    /// proof.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    #[serde(deny_unknown_fields)]
    pub struct BundleParams {
    }
}

/// Query parameters of `POST /api/v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct IngestParams {
    /// `durable` (the default): reply once the events are stored; `searchable`: also wait
    /// until search finds them.
    #[cfg_attr(feature = "openapi", param(pattern = r"^(durable|searchable)$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    /// `true`: each receipt carries its inclusion proof.
    #[cfg_attr(feature = "openapi", param(pattern = r"^(true|false)$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// Reply to `GET /api/v1/catalog`: the tenant's own catalog and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogBody {
    /// The tenant.
    pub tenant: String,
    /// The catalog's stored version (0: the tenant has none yet).
    pub version: u64,
    /// `strict` or `lenient`.
    pub policy: String,
    /// Shared catalogs the tenant adopted, consulted after its own.
    pub adopted: Vec<String>,
    /// The catalog document (`veritrail-catalog/v1`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub catalog: veritrail_core::catalog::CatalogDoc,
}

/// Reply to a catalog change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogChanged {
    /// The new version of the tenant's catalog.
    pub version: u64,
    /// Entries it holds.
    pub entries: usize,
}

/// `GET`/`PUT /api/v1/catalog/settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CatalogSettingsBody {
    /// `strict`: an event of a type no catalog defines, or without a `details` field its
    /// entry requires, is refused (422). `lenient` (the default): it is stored, with the
    /// category `Uncatalogued` when no catalog defines its type.
    pub policy: String,
    /// Shared catalogs to adopt (see `GET /api/v1/catalog/shared`), in lookup order.
    #[serde(default)]
    pub adopted: Vec<String>,
}

/// One entry, from whichever catalog defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogEntryBody {
    /// The catalog that defines the type (the tenant's own, a shared one, or `veritrail`).
    pub catalog: String,
    /// The entry.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub entry: veritrail_core::catalog::EntryDoc,
    /// The OCSF class and activity: the entry's own, else the default of its family
    /// (log in / out, password, MFA, account, group and API families); absent if neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub ocsf: Option<veritrail_core::catalog::Ocsf>,
}

/// Reply to `GET /api/v1/catalog/shared`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SharedCatalogList {
    /// Every shared catalog.
    pub catalogs: Vec<SharedCatalogSummary>,
}

/// A shared catalog, in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SharedCatalogSummary {
    /// Its id, to adopt it by.
    pub id: String,
    /// Its title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Entries it holds.
    pub entries: usize,
}

/// Reply to `GET /api/v1/catalog/categories`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryList {
    /// Categories, by name; events stored without a category come last under `null`.
    pub categories: Vec<CategoryBody>,
    /// Counts cover the searchable records (`0..indexed_size` of the log).
    pub indexed_size: u64,
}

/// One category with its event count and its types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryBody {
    /// The category (`null` for records stored without one).
    pub category: Option<String>,
    /// Searchable events of the category.
    pub count: u64,
    /// Its types: every type the tenant's catalogs put in it, and every type stored in it.
    pub types: Vec<TypeCount>,
}

/// One event type in a [`CategoryBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypeCount {
    /// The type key.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The catalog's name for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The catalog's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u64>,
    /// Searchable events of the type in the category.
    pub count: u64,
}

/// Which events a webhook subscription sends. Empty lists match everything; within a list
/// any entry may match, and every non-empty list must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookFilter {
    /// Event types; `user.*` matches every type under `user.`.
    #[serde(default)]
    pub types: Vec<String>,
    /// Catalog categories, any case.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Outcomes: `success`, `failure`, `unknown`.
    #[serde(default)]
    pub outcomes: Vec<String>,
}

/// `POST /api/v1/webhooks`: a new subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where deliveries are `POST`ed: `http` or `https`.
    pub url: String,
    /// A note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub filter: WebhookFilter,
    /// `standard` (the default): Standard Webhooks `{type, timestamp, data}` with the record
    /// in `data`. `envelope`: user-action notifications as VGS sends them (its documented
    /// envelope: `event`, `description`, `summary`, `details`, `producer`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `every_single` (the default): one message per event. A window such as `60s`, `5m`
    /// or `1h`: one message per event type and actor per window, `occurrence` counting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<String>,
    /// The signing secret (`whsec_` and base64 of 24 to 64 bytes); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The first seq to deliver; absent: the events stored after the subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_seq: Option<u64>,
    /// `false` creates the subscription disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `PATCH /api/v1/webhooks/{webhook_id}`: the fields to change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<WebhookFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<String>,
    /// `true` resumes a disabled subscription where it stopped; `false` pauses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A signing secret of a subscription, without the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookSecretInfo {
    pub created_at: String,
    /// When a rotated-out secret stops being used; `null` for the current one.
    pub expires_at: Option<String>,
}

/// A webhook subscription (its secrets are never shown after creation or rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookBody {
    /// `wh_` and 16 hex digits.
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub description: Option<String>,
    pub filter: WebhookFilter,
    pub format: String,
    pub grouping: String,
    pub enabled: bool,
    /// Why it was disabled: by a person, by a `410 Gone`, or after failing for too long.
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub secrets: Vec<WebhookSecretInfo>,
    /// Every matching event below this seq has been delivered.
    pub next_seq: u64,
    /// The tenant's log size: `log_size - next_seq` bounds the backlog.
    pub log_size: u64,
    /// When the current run of failed attempts began; `null` while deliveries succeed.
    pub failing_since: Option<String>,
}

/// `POST /api/v1/webhooks` reply: the subscription and its secret, shown only now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookCreated {
    pub webhook: WebhookBody,
    /// The signing secret (`whsec_...`): shown only now.
    pub secret: String,
}

/// `GET /api/v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookList {
    pub webhooks: Vec<WebhookBody>,
}

/// `POST /api/v1/webhooks/{webhook_id}/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookRotateInput {
    /// The new secret; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// How long the previous secret keeps signing too (both signatures are sent), in
    /// seconds; default 86,400 (one day), 0 ends it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_seconds: Option<u64>,
}

/// Reply to a rotation: the new secret, shown only now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookRotated {
    pub webhook: WebhookBody,
    pub secret: String,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookAttempt {
    /// Increasing per subscription.
    pub id: u64,
    /// The message's `webhook-id` (the same on every attempt of a message).
    pub message_id: String,
    /// `delivery`, `redelivery` or `ping`.
    pub kind: String,
    /// The seq of the (first) event of the message; `null` for a ping.
    pub seq: Option<u64>,
    /// Events the message stands for.
    pub occurrence: u64,
    pub attempted_at: String,
    /// The receiver's HTTP status; `null` when there was no answer.
    pub status: Option<u16>,
    pub latency_ms: f64,
    /// What went wrong; `null` for a 2xx.
    pub error: Option<String>,
    /// Whether this attempt delivered the message (a 2xx).
    pub delivered: bool,
}

/// `GET /api/v1/webhooks/{webhook_id}/attempts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookAttemptList {
    pub attempts: Vec<WebhookAttempt>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    pub next_before: Option<u64>,
}

/// Query of `GET /api/v1/webhooks/{webhook_id}/attempts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct WebhookAttemptParams {
    /// Attempts older than this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// At most this many (default 100, at most 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `POST /api/v1/webhooks/{webhook_id}/redeliver`: one message (`message_id`) or the
/// messages of the events `from_seq..=to_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookRedeliverInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<u64>,
}

/// Reply to a redelivery: how many messages were queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookRedeliverQueued {
    pub queued: u64,
    /// Their ids, in the order they will be sent.
    pub message_ids: Vec<String>,
}

/// `GET`/`PUT /api/v1/activity/settings`: who may open the tenant's Activity page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivitySettingsBody {
    /// Viewer keys may open the Activity page too (off by default; owner, super_admin and
    /// admin keys always can).
    pub admit_viewers: bool,
}

/// `POST /api/v1/viewer-tokens`: a token that shows the tenant's Activity view, read-only,
/// in an iframe (`/embed?token=...`), optionally only one actor's or one target's events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ViewerTokenInput {
    /// Only this actor's events (the token cannot be widened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only events about this target (such as one integration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How long the token works, in seconds: default 900, at most 86,400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// A minted viewer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViewerTokenBody {
    /// The token (`vtv_...`): give it to the page that embeds the view.
    pub token: String,
    /// Its id, as audit events name it.
    pub token_id: String,
    pub expires_at: String,
    /// The path to put in the iframe's `src`, after this server's address.
    pub embed_path: String,
}

/// One viewer token, as `GET /api/v1/viewer-tokens` lists it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViewerTokenInfo {
    pub token_id: String,
    /// The actor it is limited to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The target it is limited to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub created_at: String,
    /// The key that minted it: the token stops working when that key is revoked.
    pub created_by: String,
    pub expires_at: String,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// `live` (it opens the view), `revoked`, or `minter_revoked` (the key that made it
    /// was revoked).
    pub state: String,
}

/// `GET /api/v1/viewer-tokens`: the tenant's viewer tokens that have not expired, newest
/// first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViewerTokenList {
    pub tokens: Vec<ViewerTokenInfo>,
}

/// `GET /api/v1/log/integrity`: how the server's scrubber last found the tenant's stored
/// log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntegrityBody {
    /// How often the scrubber starts a pass over the stored logs, in seconds.
    pub interval_seconds: u64,
    /// The last complete scrub that covered this log (none yet after a first start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scrub: Option<ScrubBody>,
}

/// One complete scrub of a tenant's stored log: the journal's checksums, every record's
/// leaf hash, every stored Merkle node and record offset, every signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScrubBody {
    pub started_at: String,
    pub finished_at: String,
    /// The log's size when the scrub started: every record below it was checked.
    pub tree_size: u64,
    /// Nothing was found wrong.
    pub ok: bool,
    /// How many failures were found; `failures` lists the first 20.
    pub n_failures: u64,
    pub failures: Vec<IntegrityFailure>,
    /// The seq of the `veritrail.integrity.check_failed` event that reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_as: Option<u64>,
}

/// One thing a scrub found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntegrityFailure {
    /// What failed: `journal` (a segment or frame that cannot be read), `checksum`,
    /// `record` (not a valid record), `sequence` (a gap or records out of order),
    /// `signature`, `checkpoint` (a signed root that differs from the records), `unsigned`,
    /// `missing` (committed data gone), `removal`, or `derived` (a record offset or a
    /// stored node hash that differs from the journal).
    pub check: String,
    /// The record's seq, where the damage names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The journal position, where the damage names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    pub detail: String,
    /// A damaged derived file was rebuilt from the journal (proofs read the repaired hashes
    /// from then on).
    pub repaired: bool,
}

/// A retention policy: records are removed once either limit is passed (no limit: kept
/// forever).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep records received in the last this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    /// Keep at most this many of the newest records. A run acts once the log passes it by
    /// more than 1% (and more than one record), so that a run's own event does not call
    /// for another run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
}

/// `GET /api/v1/retention`: the policy in force and the last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionBody {
    /// The policy in force.
    pub policy: RetentionPolicy,
    /// `tenant` (set for this tenant) or `server` (the server's default applies).
    pub source: String,
    /// How often the background job applies it, in seconds.
    pub interval_seconds: u64,
    /// The log's records below this seq are removed by retention.
    pub removed_below: u64,
    /// Records removed from the log in all (retention and erasures).
    pub removed_count: u64,
    /// The last run that removed something, in this server's life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RetentionRun>,
}

/// What one retention run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionRun {
    /// When it ran.
    pub at: String,
    /// Records it removed.
    pub removed: u64,
    /// The log's records below this seq are now removed (those under a hold aside).
    pub below_seq: u64,
    /// Records past the cut-off that a legal hold kept.
    pub skipped_held: u64,
    /// The seq of the `veritrail.retention.deleted` record it wrote (none when it removed
    /// nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_as: Option<u64>,
}

/// Which records are about one subject: any of the given fields matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubjectFilter {
    /// Records whose `actor.id` is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// Records whose `actor.email` is this, whatever its case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    /// Records with a target whose `id` is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
}

/// `POST /api/v1/erasures`: erase the records about one subject, or given seqs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErasureInput {
    /// Records whose `actor.id` is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// Records whose `actor.email` is this, whatever its case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    /// Records with a target whose `id` is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// These records (at most 1,000), alone or with the fields above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seqs: Vec<u64>,
    /// Why (recorded in the `veritrail.event.erased` event): required.
    pub reason: String,
    /// Only show what would be erased.
    #[serde(default)]
    pub dry_run: bool,
}

/// What an erasure removed (or, for a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureBody {
    pub dry_run: bool,
    /// How many records.
    pub count: u64,
    /// Their seqs, ascending.
    pub seqs: Vec<u64>,
    /// Matching records past the 1,000 one erasure takes (at least this many): repeat the
    /// request to erase them.
    pub remaining: u64,
    /// The seq of the `veritrail.event.erased` record (none for a dry run, or when nothing
    /// was left to erase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_as: Option<u64>,
}

/// `POST /api/v1/holds`: a legal hold on the records about one subject, or (with no
/// field) on the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HoldInput {
    /// Records whose `actor.id` is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// Records whose `actor.email` is this, whatever its case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    /// Records with a target whose `id` is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Why (a matter, a case number): required.
    pub reason: String,
}

/// A legal hold: retention and erasure skip the records it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldBody {
    pub hold_id: String,
    pub reason: String,
    /// What it covers; every field empty: the whole log.
    pub subject: SubjectFilter,
    pub created_at: String,
    /// The key that placed it.
    pub created_by: String,
}

/// `GET /api/v1/holds`: the tenant's holds in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldList {
    pub holds: Vec<HoldBody>,
}

impl ErasureInput {
    /// The subject fields of the request.
    #[must_use]
    pub fn subject(&self) -> SubjectFilter {
        SubjectFilter {
            actor_id: self.actor_id.clone(),
            actor_email: self.actor_email.clone(),
            target_id: self.target_id.clone(),
        }
    }
}

impl HoldInput {
    /// The subject fields of the request.
    #[must_use]
    pub fn subject(&self) -> SubjectFilter {
        SubjectFilter {
            actor_id: self.actor_id.clone(),
            actor_email: self.actor_email.clone(),
            target_id: self.target_id.clone(),
        }
    }
}
