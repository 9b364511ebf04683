//! The OpenAPI 3 spec, generated from the handlers' annotations ([`ApiDoc`], beside the route
//! table) and the wire types, served at `/api/audit/swagger/v1/swagger.json` with Swagger UI
//! at `/api/audit/swagger/` (the paths Thru MFT's audit API serves its spec at, so tools
//! pointed at one find the other). Swagger UI's files are embedded in the binary: no network
//! needed.

use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::routes::ApiDoc;

/// The bearer-key scheme, and the answers every keyed operation can give whatever the
/// handler: 429 from the rate limiter, 504 from the timeout, 414 and 431 from the head
/// limits, 500 and 503 from storage; 400 for an operation with parameters or a body (they
/// are parsed strictly), 415 for a body that is not JSON, and 507 for writes when the disk
/// is full.
pub(crate) struct ApiKeyAuth;

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
