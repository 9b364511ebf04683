//! The OpenAPI 3 spec, generated from the handlers' annotations and the wire types, served
//! at `/api/audit/swagger/v1/swagger.json` with Swagger UI at `/api/audit/swagger/` (the
//! paths of seed 002). Swagger UI's files are embedded in the binary: no network needed.

use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::routes::{activity, admin, catalog, events, log, ops, stream, viewer, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "veritrail audit API",
        description = "A verifiable, multi-tenant audit log. Every tenant's log is a Merkle tree with signed checkpoints: anyone can prove that no event was altered, removed or reordered.\n\nAuthenticate with `Authorization: Bearer <key>`. Errors are `{\"error\": {\"code\", \"message\"}}` with a stable `code`.",
    ),
    paths(
        events::ingest, events::search, events::count, events::record, stream::stream,
        log::checkpoint, log::key, log::inclusion, log::consistency, log::export,
        admin::me, admin::create_tenant, admin::list_tenants, admin::get_tenant,
        admin::list_keys, admin::create_key, admin::revoke_key,
        admin::list_tenant_keys, admin::create_tenant_key, admin::revoke_tenant_key,
        catalog::get_catalog, catalog::put_catalog, catalog::get_type, catalog::put_type,
        catalog::delete_type, catalog::categories, catalog::get_settings, catalog::put_settings,
        catalog::list_shared, catalog::get_shared,
        activity::get_settings, activity::put_settings, viewer::mint, viewer::list,
        viewer::revoke,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate, webhooks::attempts, webhooks::redeliver, webhooks::ping,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(veritrail_api::ActorInput, veritrail_api::TargetInput, veritrail_api::SourceInput)),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "events", description = "Send, search and count audit events."),
        (name = "log", description = "The verifiable log: checkpoints, proofs, export."),
        (name = "tenants", description = "Tenants (server admin)."),
        (name = "keys", description = "API keys and their roles."),
        (name = "catalog", description = "The event catalog: types with codes, names, categories, summaries and required details; validation policy; shared catalogs."),
        (name = "activity", description = "The Activity page (the web UI): who may open it, and viewer tokens for embedding it."),
        (name = "webhooks", description = "Webhook subscriptions: signed (Standard Webhooks) at-least-once deliveries of matching events, in seq order, with retries, an attempt log, redelivery and pings."),
        (name = "operations", description = "Health and metrics."),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The bearer-key scheme, and the answers every keyed operation can give whatever the
/// handler: 429 from the rate limiter, 504 from the timeout, 414 and 431 from the head
/// limits, 500 and 503 from storage; 400 for an operation with parameters or a body (they
/// are parsed strictly), 415 for a body that is not JSON, and 507 for writes when the disk
/// is full.
struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for item in openapi.paths.paths.values_mut() {
            let writes = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            let operations = writes
                .into_iter()
                .map(|operation| (true, operation))
                .chain(std::iter::once((false, &mut item.get)));
            for (writes, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                if operation.security.is_none() {
                    continue;
                }
                let mut common = vec![
                    ("429", "Rate limited (`rate_limited`); see Retry-After."),
                    ("504", "Slower than the server's timeout (`timeout`)."),
                    (
                        "414",
                        "The path and query are longer than `limits.max_uri_bytes` (`uri_too_long`).",
                    ),
                    (
                        "431",
                        "The request's headers are larger than `limits.max_header_bytes` (`headers_too_large`).",
                    ),
                    (
                        "500",
                        "A bug (`internal`), or stored data that failed its integrity check and is not served (`integrity_error`); the server's log has the detail under the request id.",
                    ),
                    (
                        "503",
                        "Storage cannot be read or written now (`unavailable`), or the server is shutting down (`shutting_down`); retry after Retry-After.",
                    ),
                ];
                // Parameters and bodies are parsed strictly: an unknown query parameter, a
                // path segment or a body that does not parse is a 400.
                let parsed = operation
                    .parameters
                    .as_ref()
                    .is_some_and(|parameters| !parameters.is_empty())
                    || operation.request_body.is_some();
                if parsed {
                    common.push((
                        "400",
                        "A parameter or body that does not parse or fit (`invalid_parameter`, `malformed_json`).",
                    ));
                }
                if operation.request_body.is_some() {
                    common.push((
                        "415",
                        "The body is not `application/json` (`unsupported_media_type`).",
                    ));
                }
                if writes {
                    common.push(("507", "The server's disk is full (`storage_full`): nothing was stored; retry later."));
                }
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}

/// Swagger UI and the spec.
pub fn router() -> Router<AppState> {
    Router::from(
        SwaggerUi::new("/api/audit/swagger")
            .url("/api/audit/swagger/v1/swagger.json", ApiDoc::openapi()),
    )
}
