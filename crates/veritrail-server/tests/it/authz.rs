//! The authorization matrix: every route × every kind of caller × own or another tenant,
//! each cell's expected status written out, no data of the other tenant in any answer to
//! tenant A's keys, and nothing changed by a refused request.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use veritrail_api::Role;
use veritrail_client::{IngestOptions, KeyScope};

use crate::support::{Reply, TestServer, event};

const A: &str = "alpha-co";
const B: &str = "bravo-co";
/// B's log is longer than A's will ever be in this test: this seq exists only in B.
const B_EVENTS: usize = 600;

/// Who calls. The tenant keys are all of tenant A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    NoKey,
    Garbage,
    Revoked,
    ServerAdmin,
    Owner,
    SuperAdmin,
    Admin,
    Viewer,
    Publisher,
    /// A service publisher key for the tenants whose id starts with `alpha-` (A, not B).
    ServicePublisher,
    /// A service embedder key for the tenant list `[A]`.
    ServiceEmbedder,
}

/// The columns of [`ROWS`], in order.
const WHO: [Who; 11] = [
    Who::NoKey,
    Who::Garbage,
    Who::Revoked,
    Who::ServerAdmin,
    Who::Owner,
    Who::SuperAdmin,
    Who::Admin,
    Who::Viewer,
    Who::Publisher,
    Who::ServicePublisher,
    Who::ServiceEmbedder,
];

/// Which tenant the path or body names: the caller's own (A) or another (B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Own,
    Other,
}

/// What a successful cell changes, so that the test can tell what every failed one must
/// not have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Reads only.
    Nothing,
    /// Appends one record to the target tenant's log (an event or an audit event).
    Appends,
    /// Creates a key in the target tenant (and its audit event).
    CreatesKey,
    /// Revokes the cell's victim key (and appends its audit event).
    RevokesVictim,
    /// Creates a new tenant.
    CreatesTenant,
    /// Reads; a service key's read appends one record (`veritrail.service_key.read`).
    ServiceRead,
}

struct Row {
    method: &'static str,
    /// Placeholders: `{tenant}` (A or B by target), `{victim}` (a fresh key of
    /// `victim` role in the target tenant, one per cell), `{b_key}` (B's owner key id),
    /// `{b_seq}` (a seq only B's log has), `{b_event}` (an event id of B's).
    path: &'static str,
    /// JSON; `{fresh}` is replaced by an id unique to the cell.
    body: Option<&'static str>,
    target: Target,
    victim: Option<Role>,
    effect: Effect,
    /// Expected status per caller, in the order of [`WHO`]:
    /// no key, garbage key, revoked key, server admin, owner, super_admin, admin, viewer,
    /// publisher, service publisher, service embedder.
    expect: [u16; 11],
}

const U: u16 = 401;
const F: u16 = 403;
const N: u16 = 404;

/// The expected table.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Events: publishers write, owner/super_admin/admin/viewer read; the server admin neither.
    Row { method: "POST", path: "/api/v1/events", body: Some(r#"{"id": "{fresh}", "type": "matrix.ingested"}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, F, F, F, F, 200, 400, F] },
    Row { method: "GET", path: "/api/v1/events", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/events?id={b_event}", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/events/count?group_by=type", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/events/export?format=csv", body: None, target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    // The live tail never ends, so its cell asks for what a stream refuses (`limit`): the
    // role check comes first, and readers get as far as the 400.
    Row { method: "GET", path: "/api/v1/events/stream?limit=1", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 400, 400, 400, 400, F, F, F] },
    Row { method: "GET", path: "/api/v1/events/0", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/events/{b_seq}", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, N, F, F, F] },
    // The log.
    Row { method: "GET", path: "/api/v1/log/checkpoint", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/log/key", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/log/proof/inclusion?seq=0", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/log/proof/inclusion?id={b_event}", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, N, F, F, F] },
    Row { method: "GET", path: "/api/v1/log/proof/consistency?from=1", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/log/export", body: None, target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/log/integrity", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    // Who am I: any valid key.
    Row { method: "GET", path: "/api/v1/me", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, 200, 200, 200, 200, 200, 200, 200, 200] },
    // The caller's own keys: owner any role, super_admin all but owner, admin viewer and
    // publisher, viewer and publisher none; the server admin uses /tenants/{t}/keys.
    Row { method: "GET", path: "/api/v1/keys", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/keys", body: Some(r#"{"role": "owner"}"#), target: Target::Own, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, F, 201, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/keys", body: Some(r#"{"role": "super_admin"}"#), target: Target::Own, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, F, 201, 201, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/keys", body: Some(r#"{"role": "admin"}"#), target: Target::Own, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, F, 201, 201, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/keys", body: Some(r#"{"role": "viewer"}"#), target: Target::Own, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, F, 201, 201, 201, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/keys", body: Some(r#"{"role": "publisher"}"#), target: Target::Own, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, F, 201, 201, 201, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/keys/{victim}", body: None, target: Target::Own, victim: Some(Role::Owner), effect: Effect::RevokesVictim,
          expect: [U, U, U, F, 200, F, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/keys/{victim}", body: None, target: Target::Own, victim: Some(Role::SuperAdmin), effect: Effect::RevokesVictim,
          expect: [U, U, U, F, 200, 200, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/keys/{victim}", body: None, target: Target::Own, victim: Some(Role::Admin), effect: Effect::RevokesVictim,
          expect: [U, U, U, F, 200, 200, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/keys/{victim}", body: None, target: Target::Own, victim: Some(Role::Viewer), effect: Effect::RevokesVictim,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/keys/{victim}", body: None, target: Target::Own, victim: Some(Role::Publisher), effect: Effect::RevokesVictim,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    // Another tenant's key id under /keys is not in the caller's tenant: 404 to those who
    // may manage keys, refused to those who may manage none.
    Row { method: "DELETE", path: "/api/v1/keys/{victim}", body: None, target: Target::Other, victim: Some(Role::Viewer), effect: Effect::RevokesVictim,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    // Tenants: the server admin only.
    Row { method: "GET", path: "/api/v1/tenants", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, 200, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/tenants", body: Some(r#"{"id": "{fresh}"}"#), target: Target::Own, victim: None, effect: Effect::CreatesTenant,
          expect: [U, U, U, 201, F, F, F, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/tenants/{tenant}", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, 200, F, F, F, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/tenants/{tenant}", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, 200, F, F, F, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/tenants/{tenant}/keys", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, 200, F, F, F, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/tenants/{tenant}/keys", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, 200, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/tenants/{tenant}/keys", body: Some(r#"{"role": "viewer"}"#), target: Target::Own, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, 201, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/tenants/{tenant}/keys", body: Some(r#"{"role": "owner"}"#), target: Target::Own, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, 201, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/tenants/{tenant}/keys", body: Some(r#"{"role": "viewer"}"#), target: Target::Other, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, 201, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/tenants/{tenant}/keys", body: Some(r#"{"role": "owner"}"#), target: Target::Other, victim: None, effect: Effect::CreatesKey,
          expect: [U, U, U, 201, F, F, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/tenants/{tenant}/keys/{victim}", body: None, target: Target::Own, victim: Some(Role::Owner), effect: Effect::RevokesVictim,
          expect: [U, U, U, 200, F, F, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/tenants/{tenant}/keys/{victim}", body: None, target: Target::Other, victim: Some(Role::Viewer), effect: Effect::RevokesVictim,
          expect: [U, U, U, 200, F, F, F, F, F, F, F] },
    // The catalog: readers read it; owner, super_admin and admin change it (each change an
    // audit event); the server admin neither.
    Row { method: "GET", path: "/api/v1/catalog", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "PUT", path: "/api/v1/catalog", body: Some(r#"{"format": "veritrail-catalog/v1", "id": "matrix", "events": [{"type": "matrix.{fresh}", "name": "Matrix", "category": "Matrix"}]}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/catalog/types/veritrail.key.created", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "PUT", path: "/api/v1/catalog/types/matrix.entry", body: Some(r#"{"type": "matrix.entry", "name": "{fresh}", "category": "Matrix"}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/catalog/types/matrix.never_defined", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/catalog/categories", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/catalog/settings", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "PUT", path: "/api/v1/catalog/settings", body: Some(r#"{"policy": "lenient", "adopted": ["vgs-user-actions"]}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/catalog/shared", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "GET", path: "/api/v1/catalog/shared/vgs-user-actions", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    // The Activity page's settings: the roles that manage the tenant.
    Row { method: "GET", path: "/api/v1/activity/settings", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    Row { method: "PUT", path: "/api/v1/activity/settings", body: Some(r#"{"admit_viewers": false}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/viewer-tokens", body: Some(r#"{"actor": "{fresh}", "ttl_seconds": 60}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 201, 201, 201, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/viewer-tokens", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    // Another tenant's token is not found (and not revoked).
    Row { method: "DELETE", path: "/api/v1/viewer-tokens/{b_token}", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    // Webhooks: owner, super_admin and admin manage them (each change an audit event);
    // another tenant's subscription is not found. New subscriptions are made disabled, so
    // that nothing is sent to their (public, unreachable) address.
    Row { method: "GET", path: "/api/v1/webhooks", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/webhooks", body: Some(r#"{"url": "http://10.0.0.1/{fresh}", "enabled": false}"#), target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 422, 422, 422, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/webhooks", body: Some(r#"{"url": "http://93.184.216.34/{fresh}", "enabled": false}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 201, 201, 201, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/webhooks/{b_webhook}", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    Row { method: "PATCH", path: "/api/v1/webhooks/{b_webhook}", body: Some(r#"{"enabled": true}"#), target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/webhooks/{b_webhook}", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/webhooks/{b_webhook}/rotate", body: Some("{}"), target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/webhooks/{b_webhook}/attempts", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/webhooks/{b_webhook}/redeliver", body: Some(r#"{"from_seq": 0, "to_seq": 0}"#), target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/webhooks/{b_webhook}/ping", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, F] },
    // Data lifecycle: readers read the policy and the holds; only owner and super_admin
    // change them or erase. An erasure naming seqs only B has is past A's log (400).
    Row { method: "GET", path: "/api/v1/retention", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "PUT", path: "/api/v1/retention", body: Some(r#"{"max_age_days": 36500}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 200, 200, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/retention", body: None, target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 200, 200, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/retention/run", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/erasures", body: Some(r#"{"actor_id": "{fresh}", "reason": "matrix", "dry_run": true}"#), target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/erasures", body: Some(r#"{"seqs": [{b_seq}], "reason": "matrix"}"#), target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 400, 400, F, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/holds", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, 200, 200, 200, 200, F, F, F] },
    Row { method: "POST", path: "/api/v1/holds", body: Some(r#"{"actor_id": "{fresh}", "reason": "matrix"}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 201, 201, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/holds/hold_0000000000000000", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, F, F, F, F, F] },
    // Service keys (server admin), and what they do on the tenant they name.
    Row { method: "GET", path: "/api/v1/service-keys", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, 200, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/service-keys", body: Some(r#"{"role": "service_embedder", "name": "{fresh}", "tenants": ["{tenant}"]}"#), target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, 201, F, F, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/service-keys/svc_0000000000000000", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, N, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/tenants/{tenant}/events", body: Some(r#"{"id": "{fresh}", "type": "matrix.ingested"}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, F, F, F, F, 200, 200, F] },
    Row { method: "POST", path: "/api/v1/tenants/{tenant}/events", body: Some(r#"{"id": "{fresh}", "type": "matrix.ingested"}"#), target: Target::Other, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/events", body: Some(r#"{"id": "{fresh}", "tenant": "{tenant}", "type": "matrix.ingested"}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, F, F, F, F, 200, 200, F] },
    Row { method: "POST", path: "/api/v1/events", body: Some(r#"{"id": "{fresh}", "tenant": "{tenant}", "type": "matrix.ingested"}"#), target: Target::Other, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, F, F, F, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/tenants/{tenant}/catalog", body: None, target: Target::Own, victim: None, effect: Effect::ServiceRead,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, 200] },
    Row { method: "GET", path: "/api/v1/tenants/{tenant}/catalog", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, F, F, F, F, F, F, F] },
    Row { method: "POST", path: "/api/v1/tenants/{tenant}/viewer-tokens", body: Some(r#"{"actor": "{fresh}", "ttl_seconds": 60}"#), target: Target::Own, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, 201, 201, 201, F, F, F, 201] },
    Row { method: "POST", path: "/api/v1/tenants/{tenant}/viewer-tokens", body: Some(r#"{"actor": "{fresh}", "ttl_seconds": 60}"#), target: Target::Other, victim: None, effect: Effect::Appends,
          expect: [U, U, U, F, F, F, F, F, F, F, F] },
    Row { method: "GET", path: "/api/v1/tenants/{tenant}/viewer-tokens", body: None, target: Target::Own, victim: None, effect: Effect::ServiceRead,
          expect: [U, U, U, F, 200, 200, 200, F, F, F, 200] },
    Row { method: "GET", path: "/api/v1/tenants/{tenant}/viewer-tokens", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, F, F, F, F, F, F, F] },
    Row { method: "DELETE", path: "/api/v1/tenants/{tenant}/viewer-tokens/vtk_0000000000000000", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, N, N, N, F, F, F, N] },
    Row { method: "DELETE", path: "/api/v1/tenants/{tenant}/viewer-tokens/{b_token}", body: None, target: Target::Other, victim: None, effect: Effect::Nothing,
          expect: [U, U, U, F, F, F, F, F, F, F, F] },
    // Operations endpoints: open to anyone (bind to loopback or guard them at the proxy).
    Row { method: "GET", path: "/healthz", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [200; 11] },
    Row { method: "GET", path: "/readyz", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [200; 11] },
    Row { method: "GET", path: "/metrics", body: None, target: Target::Own, victim: None, effect: Effect::Nothing,
          expect: [200; 11] },
];

/// Whether `row_path` (a row's path, placeholders filled or not, maybe with a query) is an
/// instance of the route `template` (`{name}` segments match anything).
fn instance_of(row_path: &str, template: &str) -> bool {
    let path = row_path.split('?').next().unwrap_or(row_path);
    let (segments, pattern): (Vec<&str>, Vec<&str>) =
        (path.split('/').collect(), template.split('/').collect());
    segments.len() == pattern.len()
        && segments
            .iter()
            .zip(&pattern)
            .all(|(segment, part)| part.starts_with('{') || segment == part)
}

/// The matrix covers every route the router has: a route added without rows fails here.
#[test]
fn the_matrix_has_a_row_for_every_route_of_the_router() {
    let missing: Vec<String> = veritrail_server::routes::route_list()
        .into_iter()
        .filter(|(method, template)| {
            !ROWS
                .iter()
                .any(|row| row.method == method.as_str() && instance_of(row.path, template))
        })
        .map(|(method, template)| format!("{method} {template}"))
        .collect();
    assert!(missing.is_empty(), "routes without rows: {missing:?}");
}

/// What a tenant looks like from the server admin's side.
#[derive(Debug, PartialEq)]
struct TenantState {
    log_size: u64,
    keys: BTreeSet<String>,
    revoked: BTreeSet<String>,
}

async fn tenant_state(server: &TestServer, tenant: &str) -> TenantState {
    let admin = server.admin();
    let log_size = admin.tenant(tenant).await.expect("tenant").log_size;
    let keys = admin
        .list_keys(&KeyScope::Tenant(tenant.to_owned()))
        .await
        .expect("keys")
        .keys;
    TenantState {
        log_size,
        keys: keys.iter().map(|key| key.id.clone()).collect(),
        revoked: keys
            .iter()
            .filter(|key| key.revoked_at.is_some())
            .map(|key| key.id.clone())
            .collect(),
    }
}

/// Every `"tenant"` member anywhere in `value`.
fn tenants_named(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (name, member) in map {
                if name == "tenant"
                    && let Some(text) = member.as_str()
                {
                    out.push(text.to_owned());
                }
                tenants_named(member, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| tenants_named(item, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_every_caller_as_the_role_table_says_and_nothing_leaks() {
    let server = TestServer::start().await;
    let admin = server.admin();

    // Tenant B, with distinctive events, first.
    let b_owner = server.tenant(B).await;
    let b_publisher = server.key(B, Role::Publisher).await;
    let b_viewer = server.key(B, Role::Viewer).await;
    let b_events: Vec<_> = (0..B_EVENTS)
        .map(|i| {
            event(
                &format!("bravo-secret-evt-{i}"),
                "bravo.secret_thing",
                json!({"summary": format!("BRAVO-SUMMARY {i}"), "actor": {"id": format!("bravo-user-{i}")}}),
            )
        })
        .collect();
    server
        .client(&b_publisher)
        .send(&b_events, IngestOptions::default())
        .await
        .expect("B's events");
    let b_owner_id = server.client(&b_owner).me().await.expect("me").key_id;
    let b_hook = server
        .post_json(
            "/api/v1/webhooks",
            Some(&b_owner),
            &json!({"url": "http://93.184.216.34/bravo-hook", "enabled": false}),
        )
        .await
        .json();
    let b_webhook = b_hook["webhook"]["id"]
        .as_str()
        .expect("B's webhook")
        .to_owned();
    let b_webhook_secret = b_hook["secret"].as_str().expect("B's secret").to_owned();
    let b_token = server
        .post_json("/api/v1/viewer-tokens", Some(&b_owner), &json!({}))
        .await
        .json()["token_id"]
        .as_str()
        .expect("B's viewer token")
        .to_owned();

    // Tenant A and one key of each kind.
    server.tenant(A).await;
    let mut keys: BTreeMap<&str, String> = BTreeMap::new();
    for (name, role) in [
        ("owner", Role::Owner),
        ("super_admin", Role::SuperAdmin),
        ("admin", Role::Admin),
        ("viewer", Role::Viewer),
        ("publisher", Role::Publisher),
    ] {
        keys.insert(name, server.key(A, role).await);
    }
    let revoked = admin
        .create_key(&KeyScope::Tenant(A.to_owned()), Role::Owner, None)
        .await
        .expect("key to revoke");
    admin
        .revoke_key(&KeyScope::Tenant(A.to_owned()), &revoked.key.id)
        .await
        .expect("revoked");
    let a_events: Vec<_> = (0..5)
        .map(|i| event(&format!("alpha-evt-{i}"), "alpha.thing", json!({})))
        .collect();
    server
        .client(&keys["publisher"])
        .send(&a_events, IngestOptions::default())
        .await
        .expect("A's events");
    let service_publisher = server
        .post_json(
            "/api/v1/service-keys",
            Some(&server.admin_key),
            &json!({"role": "service_publisher", "tenant_prefix": "alpha-"}),
        )
        .await
        .json()["secret"]
        .as_str()
        .expect("service publisher")
        .to_owned();
    let service_embedder = server
        .post_json(
            "/api/v1/service-keys",
            Some(&server.admin_key),
            &json!({"role": "service_embedder", "tenants": [A]}),
        )
        .await
        .json()["secret"]
        .as_str()
        .expect("service embedder")
        .to_owned();
    let garbage = format!("vt_{}", "Q".repeat(43));
    let key_of = |who: Who| -> Option<String> {
        match who {
            Who::NoKey => None,
            Who::Garbage => Some(garbage.clone()),
            Who::Revoked => Some(revoked.secret.clone()),
            Who::ServerAdmin => Some(server.admin_key.clone()),
            Who::Owner => Some(keys["owner"].clone()),
            Who::SuperAdmin => Some(keys["super_admin"].clone()),
            Who::Admin => Some(keys["admin"].clone()),
            Who::Viewer => Some(keys["viewer"].clone()),
            Who::Publisher => Some(keys["publisher"].clone()),
            Who::ServicePublisher => Some(service_publisher.clone()),
            Who::ServiceEmbedder => Some(service_embedder.clone()),
        }
    };

    // A fresh victim key for every cell that revokes one.
    let mut victims: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for (r, row) in ROWS.iter().enumerate() {
        if let Some(role) = row.victim {
            let tenant = if row.target == Target::Own { A } else { B };
            for c in 0..WHO.len() {
                let victim = admin
                    .create_key(&KeyScope::Tenant(tenant.to_owned()), role, None)
                    .await
                    .expect("victim key");
                victims.insert((r, c), victim.key.id);
            }
        }
    }

    // What of B must never reach A's keys (unless the request itself named it).
    let b_state = tenant_state(&server, B).await;
    let mut b_secrets: Vec<String> = vec![
        b_owner.clone(),
        b_publisher.clone(),
        b_viewer.clone(),
        b_webhook_secret.clone(),
    ];
    let mut b_strings: Vec<String> = b_state.keys.iter().cloned().collect();
    b_strings.push(B.to_owned());
    b_strings.push("BRAVO-SUMMARY".to_owned());
    b_strings.push("bravo-hook".to_owned());
    b_strings.push("bravo.secret_thing".to_owned());
    b_strings.extend((0..B_EVENTS).map(|i| format!("bravo-secret-evt-{i}")));

    let a_before = tenant_state(&server, A).await;
    let b_before = b_state;
    let tenants_before: BTreeSet<String> = admin
        .list_tenants()
        .await
        .expect("tenants")
        .tenants
        .into_iter()
        .map(|tenant| tenant.id)
        .collect();
    assert!(a_before.log_size < (B_EVENTS - 1) as u64);

    let mut failures = Vec::new();
    let mut expected_a = 0u64;
    let mut expected_b = 0u64;
    let mut created: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut revoked_victims: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut kept_victims: Vec<(&str, String)> = Vec::new();
    let mut new_tenants = BTreeSet::new();
    for (r, row) in ROWS.iter().enumerate() {
        let tenant = if row.target == Target::Own { A } else { B };
        for (c, &who) in WHO.iter().enumerate() {
            let fresh = format!("m-{r}-{c}");
            let victim = victims.get(&(r, c)).cloned().unwrap_or_default();
            let path = row
                .path
                .replace("{tenant}", tenant)
                .replace("{victim}", &victim)
                .replace("{b_key}", &b_owner_id)
                .replace("{b_webhook}", &b_webhook)
                .replace("{b_token}", &b_token)
                .replace("{b_seq}", &(B_EVENTS - 1).to_string())
                .replace("{b_event}", "bravo-secret-evt-7");
            let body = row
                .body
                .map(|body| body.replace("{fresh}", &fresh).replace("{tenant}", tenant));
            let method = reqwest::Method::from_bytes(row.method.as_bytes()).expect("method");
            let mut request = server.request(method, &path, key_of(who).as_deref());
            if let Some(body) = &body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            let reply = check(&server, request).await;
            let cell = format!("{} {} as {who:?} (row {r})", row.method, path);
            let want = row.expect[c];
            if reply.status != want {
                failures.push(format!(
                    "{cell}: got {} want {want}: {}",
                    reply.status,
                    reply.text()
                ));
            }
            let want_code = match reply.status {
                401 => Some("unauthenticated"),
                403 => Some("forbidden"),
                404 => Some("not_found"),
                _ => None,
            };
            if want_code.is_some() && reply.code().as_deref() != want_code {
                failures.push(format!("{cell}: error code {:?}", reply.code()));
            }
            if reply.status >= 400 && !reply.text().contains("request_id") {
                failures.push(format!("{cell}: error without request_id"));
            }

            // Nothing of B in an answer to anyone but the server admin.
            if who != Who::ServerAdmin {
                let text = reply.text();
                let asked = format!("{path} {}", body.as_deref().unwrap_or(""));
                for secret in &b_secrets {
                    if text.contains(secret.as_str()) {
                        failures.push(format!("{cell}: B's secret leaked"));
                    }
                }
                for leak in &b_strings {
                    if text.contains(leak.as_str()) && !asked.contains(leak.as_str()) {
                        failures.push(format!("{cell}: {leak:?} leaked: {text}"));
                    }
                }
                let mut named = Vec::new();
                for line in text.lines() {
                    if let Ok(value) = serde_json::from_str::<Value>(line) {
                        tenants_named(&value, &mut named);
                    }
                }
                if let Some(other) = named.iter().find(|name| name.as_str() != A) {
                    failures.push(format!("{cell}: answer names tenant {other:?}"));
                }
            }

            // What the cell changed, if it succeeded.
            let ok = (200..300).contains(&reply.status);
            let count = |expected_a: &mut u64, expected_b: &mut u64| {
                if tenant == A {
                    *expected_a += 1;
                } else {
                    *expected_b += 1;
                }
            };
            match row.effect {
                Effect::Nothing => {}
                Effect::Appends if ok => count(&mut expected_a, &mut expected_b),
                Effect::CreatesKey if ok => {
                    count(&mut expected_a, &mut expected_b);
                    let made = reply.json();
                    let id = made["key"]["id"].as_str().expect("key id").to_owned();
                    assert_eq!(made["key"]["tenant"], tenant, "{cell}");
                    if tenant == B {
                        b_secrets.push(made["secret"].as_str().expect("secret").to_owned());
                    }
                    created.entry(tenant).or_default().insert(id);
                }
                Effect::RevokesVictim if ok => {
                    count(&mut expected_a, &mut expected_b);
                    revoked_victims.entry(tenant).or_default().insert(victim);
                }
                Effect::RevokesVictim => kept_victims.push((tenant, victim)),
                Effect::CreatesTenant if ok => {
                    new_tenants.insert(fresh);
                }
                Effect::ServiceRead
                    if ok && matches!(who, Who::ServicePublisher | Who::ServiceEmbedder) =>
                {
                    count(&mut expected_a, &mut expected_b);
                }
                Effect::Appends
                | Effect::CreatesKey
                | Effect::CreatesTenant
                | Effect::ServiceRead => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Refused requests changed nothing: each tenant changed by exactly what the allowed
    // cells did.
    for (tenant, before, appended) in [(A, &a_before, expected_a), (B, &b_before, expected_b)] {
        let after = tenant_state(&server, tenant).await;
        assert_eq!(
            after.log_size,
            before.log_size + appended,
            "{tenant} log size"
        );
        let mut keys = before.keys.clone();
        keys.extend(created.get(tenant).cloned().unwrap_or_default());
        assert_eq!(after.keys, keys, "{tenant} keys");
        let mut revoked = before.revoked.clone();
        revoked.extend(revoked_victims.get(tenant).cloned().unwrap_or_default());
        assert_eq!(after.revoked, revoked, "{tenant} revoked keys");
    }
    for (tenant, victim) in &kept_victims {
        let after = tenant_state(&server, tenant).await;
        assert!(!after.revoked.contains(victim), "{victim} of {tenant}");
    }
    let tenants_after: BTreeSet<String> = admin
        .list_tenants()
        .await
        .expect("tenants")
        .tenants
        .into_iter()
        .map(|tenant| tenant.id)
        .collect();
    let mut want_tenants = tenants_before;
    want_tenants.extend(new_tenants);
    assert_eq!(tenants_after, want_tenants);

    // B's log holds its events and the server admin's key changes, nothing from A.
    let b_view = server.client(&b_viewer);
    let b_log = crate::support::all_records(&b_view).await;
    assert!(b_log.iter().all(|record| record["tenant"] == B));
    assert!(
        b_log
            .iter()
            .filter(|record| record["actor"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("key_")))
            .all(|record| record["type"] == "veritrail.log.exported"
                || (record["type"] == "veritrail.webhook.created"
                    && record["details"]["subscription_id"] == json!(b_webhook))
                || (record["type"] == "veritrail.viewer_token.minted"
                    && record["details"]["token_id"] == json!(b_token))),
        "only B's own viewer (and its owner, making its webhook and token) acted on B's log with a key"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_role_that_manages_no_keys_is_refused_before_the_key_is_looked_up() {
    let server = TestServer::start().await;
    server.tenant(A).await;
    server.tenant(B).await;
    let b_key = server
        .admin()
        .create_key(&KeyScope::Tenant(B.to_owned()), Role::Viewer, None)
        .await
        .expect("B key")
        .key
        .id;
    let a_key = server
        .admin()
        .create_key(&KeyScope::Tenant(A.to_owned()), Role::Viewer, None)
        .await
        .expect("A key")
        .key
        .id;
    for role in [Role::Viewer, Role::Publisher] {
        let key = server.key(A, role).await;
        // GET /keys refuses these roles outright; DELETE must answer the same whatever the
        // id, so that it tells nothing about which key ids exist.
        for id in [a_key.as_str(), b_key.as_str(), "key_0000000000000000"] {
            let reply = server
                .send(server.request(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/keys/{id}"),
                    Some(&key),
                ))
                .await;
            reply.expect(403, Some("forbidden"));
        }
    }
    server.stop().await;
}

/// Sends a request and reads the answer.
async fn check(server: &TestServer, request: reqwest::RequestBuilder) -> Reply {
    server.send(request).await
}

#[tokio::test]
async fn the_bearer_scheme_and_key_text_are_checked() {
    let server = TestServer::start().await;
    let owner = server.tenant(A).await;
    for header in [
        format!("Basic {owner}"),
        format!("Bearer{owner}"),
        owner.clone(),
        "Bearer ".to_owned(),
        format!("Bearer {owner}x"),
    ] {
        let reply = server
            .send(
                server
                    .request(reqwest::Method::GET, "/api/v1/me", None)
                    .header("authorization", header.clone()),
            )
            .await;
        reply.expect(401, Some("unauthenticated"));
    }
    // The scheme is case-insensitive in HTTP; surrounding blanks are trimmed.
    for header in [
        format!("Bearer {owner}"),
        format!("bearer {owner}"),
        format!("Bearer  {owner} "),
    ] {
        let reply = server
            .send(
                server
                    .request(reqwest::Method::GET, "/api/v1/me", None)
                    .header("authorization", header.clone()),
            )
            .await;
        reply.expect(200, None);
    }
    server.stop().await;
}

/// Who visits a page: nobody, an API key sent as a bearer header (which signs no one in),
/// a session whose key was revoked since, and sessions of tenant A's owner, admin and viewer
/// keys (A admits viewers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visitor {
    Anonymous,
    Bearer,
    Stale,
    Owner,
    Admin,
    Viewer,
}

const VISITORS: [Visitor; 6] = [
    Visitor::Anonymous,
    Visitor::Bearer,
    Visitor::Stale,
    Visitor::Owner,
    Visitor::Admin,
    Visitor::Viewer,
];

/// What a page answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shows {
    /// 200, the sign-in form.
    SignIn,
    /// 200, the page itself (not the sign-in form).
    Page,
    /// This status.
    Status(u16),
}

struct PageRow {
    method: &'static str,
    /// Placeholders: `{a_seq}` (a seq of A's log), `{b_seq}` (a seq only B's log has),
    /// `{a_token}` (a viewer token of A).
    path: &'static str,
    /// A form body, sent without its CSRF token.
    form: Option<&'static str>,
    /// In the order of [`VISITORS`].
    expect: [Shows; 6],
}

const S: Shows = Shows::SignIn;
const P: Shows = Shows::Page;

/// The UI's table.
#[rustfmt::skip]
const PAGE_ROWS: &[PageRow] = &[
    PageRow { method: "GET", path: "/", form: None, expect: [Shows::Status(303); 6] },
    PageRow { method: "GET", path: "/activity", form: None, expect: [S, S, S, P, P, P] },
    PageRow { method: "GET", path: "/activity/events/{a_seq}", form: None, expect: [S, S, S, P, P, P] },
    // Another tenant's record is the same as a missing one.
    PageRow { method: "GET", path: "/activity/events/{b_seq}", form: None,
              expect: [S, S, S, Shows::Status(404), Shows::Status(404), Shows::Status(404)] },
    PageRow { method: "GET", path: "/activity/catalog", form: None, expect: [S, S, S, P, P, P] },
    PageRow { method: "GET", path: "/activity/integrity", form: None, expect: [S, S, S, P, P, P] },
    PageRow { method: "GET", path: "/activity/stream", form: None,
              expect: [Shows::Status(401), Shows::Status(401), Shows::Status(401), Shows::Status(200), Shows::Status(200), Shows::Status(200)] },
    // Forms without their CSRF token change nothing.
    PageRow { method: "POST", path: "/ui/sign-in", form: Some("key=vt_x"), expect: [Shows::Status(403); 6] },
    PageRow { method: "POST", path: "/ui/sign-out", form: Some("csrf="),
              expect: [Shows::Status(303), Shows::Status(303), Shows::Status(303), Shows::Status(403), Shows::Status(403), Shows::Status(403)] },
    // The embedded view: the viewer token is the permission, whoever asks; no token, none.
    PageRow { method: "GET", path: "/embed", form: None, expect: [Shows::Status(401); 6] },
    PageRow { method: "GET", path: "/embed?token={a_token}", form: None, expect: [P; 6] },
    PageRow { method: "GET", path: "/embed/events/{a_seq}?token={a_token}", form: None, expect: [P; 6] },
    PageRow { method: "GET", path: "/embed/events/{b_seq}?token={a_token}", form: None, expect: [Shows::Status(404); 6] },
    PageRow { method: "GET", path: "/ui/assets/app.css", form: None, expect: [P; 6] },
    PageRow { method: "GET", path: "/ui/assets/icon.svg", form: None, expect: [P; 6] },
    PageRow { method: "GET", path: "/ui/assets/verify.js", form: None, expect: [P; 6] },
    PageRow { method: "GET", path: "/ui/assets/activity.js", form: None, expect: [P; 6] },
];

#[test]
fn the_page_matrix_has_a_row_for_every_ui_route() {
    let missing: Vec<String> = veritrail_server::ui::route_list()
        .into_iter()
        .filter(|(method, template)| {
            !PAGE_ROWS
                .iter()
                .any(|row| row.method == method.as_str() && instance_of(row.path, template))
        })
        .map(|(method, template)| format!("{method} {template}"))
        .collect();
    assert!(missing.is_empty(), "UI routes without rows: {missing:?}");
}

/// Every page answers every visitor as [`PAGE_ROWS`] says, and nothing of tenant B reaches
/// tenant A's visitors.
#[tokio::test(flavor = "multi_thread")]
async fn every_page_answers_every_visitor_as_the_page_table_says_and_nothing_leaks() {
    let server = TestServer::start().await;
    let b_owner = server.tenant(B).await;
    let b_publisher = server.key(B, Role::Publisher).await;
    let b_events: Vec<_> = (0..B_EVENTS)
        .map(|i| {
            event(
                &format!("bravo-secret-evt-{i}"),
                "bravo.secret_thing",
                json!({"summary": format!("BRAVO-SUMMARY {i}")}),
            )
        })
        .collect();
    server
        .client(&b_publisher)
        .send(&b_events, IngestOptions::default())
        .await
        .expect("B's events");
    drop(b_owner);
    let owner = server.tenant(A).await;
    server
        .send(
            server
                .request(
                    reqwest::Method::PUT,
                    "/api/v1/activity/settings",
                    Some(&owner),
                )
                .header("content-type", "application/json")
                .body(r#"{"admit_viewers": true}"#),
        )
        .await
        .expect(200, None);
    let publisher = server.key(A, Role::Publisher).await;
    server
        .client(&publisher)
        .send(
            &[event("alpha-evt", "alpha.thing", json!({}))],
            IngestOptions::default(),
        )
        .await
        .expect("A's event");
    let session_of = |key: String| {
        let server = &server;
        async move {
            let reply = crate::ui::sign_in(server, &key).await;
            assert_eq!(reply.status, 303, "{}", reply.text());
            crate::ui::set_cookie(&reply, "vt_session")
                .expect("a session")
                .0
        }
    };
    let admin_key = server.key(A, Role::Admin).await;
    let viewer_key = server.key(A, Role::Viewer).await;
    // The embedded view finds records through the search index.
    crate::support::wait_indexed(&server.client(&viewer_key), 2).await;
    let stale = server
        .admin()
        .create_key(&KeyScope::Tenant(A.to_owned()), Role::Admin, None)
        .await
        .expect("a key to revoke");
    let sessions: BTreeMap<&str, String> = [
        ("owner", session_of(owner.clone()).await),
        ("admin", session_of(admin_key).await),
        ("viewer", session_of(viewer_key).await),
        ("stale", session_of(stale.secret.clone()).await),
    ]
    .into_iter()
    .collect();
    server
        .admin()
        .revoke_key(&KeyScope::Tenant(A.to_owned()), &stale.key.id)
        .await
        .expect("revoked");
    let a_token = server
        .post_json("/api/v1/viewer-tokens", Some(&owner), &json!({}))
        .await
        .json()["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let mut failures = Vec::new();
    for row in PAGE_ROWS {
        for (c, &visitor) in VISITORS.iter().enumerate() {
            let path = row
                .path
                .replace("{a_seq}", "1")
                .replace("{b_seq}", &(B_EVENTS - 1).to_string())
                .replace("{a_token}", &a_token);
            let method = reqwest::Method::from_bytes(row.method.as_bytes()).expect("method");
            let mut request = server.request(
                method,
                &path,
                (visitor == Visitor::Bearer).then_some(owner.as_str()),
            );
            let cookie = match visitor {
                Visitor::Stale => Some(&sessions["stale"]),
                Visitor::Owner => Some(&sessions["owner"]),
                Visitor::Admin => Some(&sessions["admin"]),
                Visitor::Viewer => Some(&sessions["viewer"]),
                Visitor::Anonymous | Visitor::Bearer => None,
            };
            if let Some(session) = cookie {
                request = request.header("cookie", format!("vt_session={session}"));
            }
            if let Some(form) = row.form {
                request = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form);
            }
            let cell = format!("{} {path} as {visitor:?}", row.method);
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            // A live stream never ends: its status and headers are its answer.
            let text = if path.ends_with("/stream") {
                String::new()
            } else {
                response.text().await.expect("body")
            };
            let sign_in_form = status == 200 && text.contains("name=\"key\"");
            let shows = match row.expect[c] {
                Shows::SignIn => sign_in_form,
                Shows::Page => status == 200 && !sign_in_form,
                Shows::Status(want) => status == want,
            };
            if !shows {
                failures.push(format!(
                    "{cell}: got {status} (sign-in form: {sign_in_form}), want {:?}",
                    row.expect[c]
                ));
            }
            for leak in ["BRAVO-SUMMARY", "bravo-secret-evt", "bravo.secret_thing", B] {
                if text.contains(leak) {
                    failures.push(format!("{cell}: {leak:?} leaked"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.stop().await;
}

/// One tenant's events never reach another tenant's live tail, Activity stream or webhook
/// subscription: B's events are sent first, then A's marker, and each of A's streams must
/// deliver the marker with nothing of B before it.
#[tokio::test(flavor = "multi_thread")]
async fn another_tenants_events_reach_none_of_a_tenants_streams_or_webhooks() {
    use crate::receiver::Receiver;
    let server = TestServer::start_with(|config| {
        config.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
    })
    .await;
    let a_owner = server.tenant(A).await;
    let b_owner = server.tenant(B).await;
    let a_publisher = server.key(A, Role::Publisher).await;
    let b_publisher = server.key(B, Role::Publisher).await;
    let a_viewer = server.key(A, Role::Viewer).await;
    let receiver = Receiver::start().await;
    for owner in [&a_owner, &b_owner] {
        server
            .post_json(
                "/api/v1/webhooks",
                Some(owner),
                &json!({"url": receiver.url(if owner == &a_owner { "a" } else { "b" })}),
            )
            .await
            .expect(201, None);
    }
    let mut tail = server
        .request(
            reqwest::Method::GET,
            "/api/v1/events/stream",
            Some(&a_viewer),
        )
        .send()
        .await
        .expect("tail");
    let signed_in = crate::ui::sign_in(&server, &a_owner).await;
    let (session, _) = crate::ui::set_cookie(&signed_in, "vt_session").expect("session");
    let mut live = server
        .request(reqwest::Method::GET, "/activity/stream", None)
        .header("cookie", format!("vt_session={session}"))
        .send()
        .await
        .expect("activity stream");
    let b_events: Vec<_> = (0..50)
        .map(|i| {
            event(
                &format!("bravo-secret-evt-{i}"),
                "bravo.secret_thing",
                json!({"summary": "BRAVO-SUMMARY"}),
            )
        })
        .collect();
    server
        .client(&b_publisher)
        .send(&b_events, IngestOptions::default())
        .await
        .expect("B's events");
    server
        .client(&a_publisher)
        .send(
            &[event("alpha-marker", "alpha.marker", json!({}))],
            IngestOptions::default(),
        )
        .await
        .expect("A's marker");
    for (what, stream) in [
        ("the live tail", &mut tail),
        ("the Activity stream", &mut live),
    ] {
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !seen.contains("alpha-marker") {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk())
                .await
                .unwrap_or_else(|_| panic!("{what}: no marker; got {seen}"))
                .expect("chunk")
                .expect("more");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        for leak in ["bravo", "BRAVO", B] {
            assert!(!seen.contains(leak), "{what} carried {leak:?}: {seen}");
        }
    }
    let deliveries = receiver
        .wait_for(
            |all| {
                all.iter().any(|d| {
                    d.path == "/a" && String::from_utf8_lossy(&d.body).contains("alpha-marker")
                })
            },
            std::time::Duration::from_secs(10),
        )
        .await;
    for delivery in deliveries.iter().filter(|d| d.path == "/a") {
        let body = String::from_utf8_lossy(&delivery.body);
        assert!(
            !body.contains("bravo") && !body.contains(B),
            "A's subscription got {body}"
        );
    }
    receiver.stop().await;
    server.stop().await;
}
