//! The handlers, one module per area, and the table that routes to them. Handlers speak
//! only HTTP (parse, check the caller's role, answer); the work is in the service modules
//! beside `routes/` ([`crate::ingest`], [`crate::records`], [`crate::proofs`],
//! [`crate::tail`], ...). Each handler module is a leaf: it imports no other, and nothing
//! outside `routes/` names a handler but this module's [`table`] and [`ApiDoc`] (the tidy
//! test checks both).
//!
//! # Layout
//!
//! - [`events`]: ingest, search, count, export, one record.
//! - [`log`]: checkpoint, verifier key, proofs, export.
//! - [`admin`]: tenants, keys, who-am-I.
//! - [`activity`]: the Activity page's settings.
//! - [`viewer`]: viewer tokens.
//! - [`catalog`]: the tenant's catalog, its settings, shared catalogs, categories.
//! - [`lifecycle`]: retention, erasures, legal holds.
//! - [`ops`]: health, readiness, metrics.
//! - [`stream`]: the live tail (Server-Sent Events).
//! - [`webhooks`]: webhook subscriptions, attempts, redelivery, pings.

pub mod activity;
pub mod admin;
pub mod catalog;
pub mod events;
pub mod lifecycle;
pub mod log;
pub mod ops;
pub mod stream;
pub mod viewer;
pub mod webhooks;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use veritrail_api::paths;

use crate::openapi::ApiKeyAuth;

use crate::AppState;

/// One route: a method, a path and its handler. The router is built from a table of them,
/// so the table is what the server answers: tests compare it with the served spec and the
/// authorization matrix, and a route cannot be added without them noticing.
pub struct Route<S = AppState> {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<S>,
}

impl<S: Clone + Send + Sync + 'static> Route<S> {
    /// `handler` for `method` on `path`.
    pub fn new<H, T>(method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| unreachable!("the table uses plain methods"));
        Self {
            method,
            path,
            handler: axum::routing::on(filter, handler),
        }
    }

    /// The same route with a request body limit of `bytes`.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.handler = self
            .handler
            .layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }

    /// A router of `routes`.
    pub fn router(routes: Vec<Route<S>>) -> Router<S> {
        routes.into_iter().fold(Router::new(), |router, route| {
            router.route(route.path, route.handler)
        })
    }
}

impl<S> std::fmt::Debug for Route<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Every API route (the OpenAPI routes are merged by [`crate::app`]); `max_body` is the
/// body limit of the routes that take large bodies.
pub fn table(max_body: usize) -> Vec<Route> {
    use Method as M;
    vec![
        Route::new(M::POST, paths::EVENTS, events::ingest).body_limit(max_body),
        Route::new(M::GET, paths::EVENTS, events::search),
        Route::new(M::GET, paths::EVENTS_COUNT, events::count),
        Route::new(M::GET, paths::EVENTS_EXPORT, events::export),
        Route::new(M::GET, paths::EVENTS_STREAM, stream::stream),
        Route::new(M::GET, paths::EVENT_BY_SEQ, events::record),
        Route::new(M::GET, paths::LOG_CHECKPOINT, log::checkpoint),
        Route::new(M::GET, paths::LOG_KEY, log::key),
        Route::new(M::GET, paths::LOG_INCLUSION, log::inclusion),
        Route::new(M::GET, paths::LOG_CONSISTENCY, log::consistency),
        Route::new(M::GET, paths::LOG_EXPORT, log::export),
        Route::new(M::GET, paths::LOG_INTEGRITY, log::integrity),
        Route::new(M::GET, paths::ME, admin::me),
        Route::new(M::GET, paths::KEYS, admin::list_keys),
        Route::new(M::POST, paths::KEYS, admin::create_key),
        Route::new(M::DELETE, paths::KEY, admin::revoke_key),
        Route::new(M::GET, paths::TENANTS, admin::list_tenants),
        Route::new(M::POST, paths::TENANTS, admin::create_tenant),
        Route::new(M::GET, paths::TENANT, admin::get_tenant),
        Route::new(M::POST, paths::TENANT_EVENTS, events::ingest_for_tenant).body_limit(max_body),
        Route::new(M::GET, paths::TENANT_CATALOG, catalog::get_tenant_catalog),
        Route::new(M::GET, paths::TENANT_VIEWER_TOKENS, viewer::list_for_tenant),
        Route::new(
            M::POST,
            paths::TENANT_VIEWER_TOKENS,
            viewer::mint_for_tenant,
        ),
        Route::new(
            M::DELETE,
            paths::TENANT_VIEWER_TOKEN,
            viewer::revoke_for_tenant,
        ),
        Route::new(M::GET, paths::SERVICE_KEYS, admin::list_service_keys),
        Route::new(M::POST, paths::SERVICE_KEYS, admin::create_service_key),
        Route::new(M::DELETE, paths::SERVICE_KEY, admin::revoke_service_key),
        Route::new(M::GET, paths::TENANT_KEYS, admin::list_tenant_keys),
        Route::new(M::POST, paths::TENANT_KEYS, admin::create_tenant_key),
        Route::new(M::DELETE, paths::TENANT_KEY, admin::revoke_tenant_key),
        Route::new(M::GET, paths::CATALOG, catalog::get_catalog),
        Route::new(M::PUT, paths::CATALOG, catalog::put_catalog).body_limit(max_body),
        Route::new(M::GET, paths::CATALOG_TYPE, catalog::get_type),
        Route::new(M::PUT, paths::CATALOG_TYPE, catalog::put_type),
        Route::new(M::DELETE, paths::CATALOG_TYPE, catalog::delete_type),
        Route::new(M::GET, paths::CATALOG_CATEGORIES, catalog::categories),
        Route::new(M::GET, paths::CATALOG_SETTINGS, catalog::get_settings),
        Route::new(M::PUT, paths::CATALOG_SETTINGS, catalog::put_settings),
        Route::new(M::GET, paths::CATALOG_SHARED, catalog::list_shared),
        Route::new(M::GET, paths::CATALOG_SHARED_ONE, catalog::get_shared),
        Route::new(M::GET, paths::ACTIVITY_SETTINGS, activity::get_settings),
        Route::new(M::PUT, paths::ACTIVITY_SETTINGS, activity::put_settings),
        Route::new(M::GET, paths::VIEWER_TOKENS, viewer::list),
        Route::new(M::POST, paths::VIEWER_TOKENS, viewer::mint),
        Route::new(M::DELETE, paths::VIEWER_TOKEN, viewer::revoke),
        Route::new(M::GET, paths::WEBHOOKS, webhooks::list),
        Route::new(M::POST, paths::WEBHOOKS, webhooks::create),
        Route::new(M::GET, paths::WEBHOOK, webhooks::get),
        Route::new(M::PATCH, paths::WEBHOOK, webhooks::update),
        Route::new(M::DELETE, paths::WEBHOOK, webhooks::delete),
        Route::new(M::POST, paths::WEBHOOK_ROTATE, webhooks::rotate),
        Route::new(M::GET, paths::WEBHOOK_ATTEMPTS, webhooks::attempts),
        Route::new(M::POST, paths::WEBHOOK_REDELIVER, webhooks::redeliver),
        Route::new(M::POST, paths::WEBHOOK_PING, webhooks::ping),
        Route::new(M::GET, paths::RETENTION, lifecycle::get_retention),
        Route::new(M::PUT, paths::RETENTION, lifecycle::put_retention),
        Route::new(M::DELETE, paths::RETENTION, lifecycle::delete_retention),
        Route::new(M::POST, paths::RETENTION_RUN, lifecycle::run_retention),
        Route::new(M::POST, paths::ERASURES, lifecycle::erase),
        Route::new(M::GET, paths::HOLDS, lifecycle::list_holds),
        Route::new(M::POST, paths::HOLDS, lifecycle::create_hold),
        Route::new(M::DELETE, paths::HOLD, lifecycle::release_hold),
        Route::new(M::GET, paths::HEALTHZ, ops::healthz),
        Route::new(M::GET, paths::READYZ, ops::readyz),
        Route::new(M::GET, paths::METRICS, ops::metrics),
    ]
}

/// The OpenAPI document of every handler in [`table`] (the spec's tests check that the two
/// agree); [`crate::openapi`] serves it.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "veritrail audit API",
        description = "A verifiable, multi-tenant audit log. Every tenant's log is a Merkle tree with signed checkpoints: anyone can prove that no event was altered, removed or reordered.\n\nAuthenticate with `Authorization: Bearer <key>`. Errors are `{\"error\": {\"code\", \"message\"}}` with a stable `code`.",
    ),
    paths(
        events::ingest, events::ingest_for_tenant, events::search, events::count, events::export, events::record, stream::stream,
        log::checkpoint, log::key, log::inclusion, log::consistency, log::export,
        log::integrity,
        admin::me, admin::create_tenant, admin::list_tenants, admin::get_tenant,
        admin::list_keys, admin::create_key, admin::revoke_key,
        admin::list_tenant_keys, admin::create_tenant_key, admin::revoke_tenant_key,
        admin::create_service_key, admin::list_service_keys, admin::revoke_service_key,
        catalog::get_catalog, catalog::put_catalog, catalog::get_type, catalog::put_type,
        catalog::delete_type, catalog::categories, catalog::get_settings, catalog::put_settings,
        catalog::list_shared, catalog::get_shared, catalog::get_tenant_catalog,
        activity::get_settings, activity::put_settings, viewer::mint, viewer::list,
        viewer::revoke, viewer::mint_for_tenant, viewer::list_for_tenant,
        viewer::revoke_for_tenant,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate, webhooks::attempts, webhooks::redeliver, webhooks::ping,
        lifecycle::get_retention, lifecycle::put_retention, lifecycle::delete_retention,
        lifecycle::run_retention, lifecycle::erase, lifecycle::list_holds,
        lifecycle::create_hold, lifecycle::release_hold,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(veritrail_api::ActorInput, veritrail_api::TargetInput, veritrail_api::SourceInput)),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "events", description = "Send, search and count audit events."),
        (name = "log", description = "The verifiable log: checkpoints, proofs, export, and the scrubber's last check of the stored log."),
        (name = "tenants", description = "Tenants (server admin)."),
        (name = "keys", description = "API keys and their roles; service keys (deployment-level keys that write to, or embed the Activity view of, many tenants)."),
        (name = "catalog", description = "The event catalog: types with codes, names, categories, summaries and required details; validation policy; shared catalogs."),
        (name = "activity", description = "The Activity page (the web UI): who may open it, and viewer tokens for embedding it."),
        (name = "webhooks", description = "Webhook subscriptions: signed (Standard Webhooks) at-least-once deliveries of matching events, in seq order, with retries, an attempt log, redelivery and pings."),
        (name = "lifecycle", description = "Keeping data: the retention policy, erasures of one subject's records, legal holds. Removals keep every proof: removed records stay in the tree as leaf hashes, and each removal is an event of the log."),
        (name = "operations", description = "Health and metrics."),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Every API route, from [`table`].
pub fn router(state: &AppState) -> Router<AppState> {
    Route::router(table(state.config().limits.max_body_bytes))
}

/// `(method, path)` of every API route, as [`table`] has them.
pub fn route_list() -> Vec<(Method, &'static str)> {
    table(0)
        .into_iter()
        .map(|route| (route.method, route.path))
        .collect()
}
