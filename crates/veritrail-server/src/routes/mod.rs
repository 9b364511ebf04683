//! The handlers, one module per area, and the extractors that turn axum's rejections into
//! [`ApiError`]s with stable codes.
//!
//! - [`events`]: ingest, search, count, one record.
//! - [`log`]: checkpoint, verifier key, proofs, export.
//! - [`admin`]: tenants, keys, who-am-I.
//! - [`activity`]: the Activity page's settings. [`viewer`]: viewer tokens.
//! - [`catalog`]: the tenant's catalog, its settings, shared catalogs, categories.
//! - [`ops`]: health, readiness, metrics.
//! - [`stream`]: the live tail (Server-Sent Events).
//! - [`webhooks`]: webhook subscriptions, attempts, redelivery, pings.

pub mod activity;
pub mod admin;
pub mod catalog;
pub mod events;
pub mod log;
pub mod ops;
pub mod stream;
pub mod viewer;
pub mod webhooks;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::request::Parts;
use axum::routing::{MethodFilter, MethodRouter};
use serde::de::DeserializeOwned;
use veritrail_api::{error_codes, paths};

use crate::AppState;
use crate::error::ApiError;

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
        Route::new(M::GET, paths::EVENTS_STREAM, stream::stream),
        Route::new(M::GET, paths::EVENT_BY_SEQ, events::record),
        Route::new(M::GET, paths::LOG_CHECKPOINT, log::checkpoint),
        Route::new(M::GET, paths::LOG_KEY, log::key),
        Route::new(M::GET, paths::LOG_INCLUSION, log::inclusion),
        Route::new(M::GET, paths::LOG_CONSISTENCY, log::consistency),
        Route::new(M::GET, paths::LOG_EXPORT, log::export),
        Route::new(M::GET, paths::ME, admin::me),
        Route::new(M::GET, paths::KEYS, admin::list_keys),
        Route::new(M::POST, paths::KEYS, admin::create_key),
        Route::new(M::DELETE, paths::KEY, admin::revoke_key),
        Route::new(M::GET, paths::TENANTS, admin::list_tenants),
        Route::new(M::POST, paths::TENANTS, admin::create_tenant),
        Route::new(M::GET, paths::TENANT, admin::get_tenant),
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
        Route::new(M::GET, paths::HEALTHZ, ops::healthz),
        Route::new(M::GET, paths::READYZ, ops::readyz),
        Route::new(M::GET, paths::METRICS, ops::metrics),
    ]
}

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

/// `Query` with rejections as `invalid_parameter` errors.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::bad_request(
        error_codes::INVALID_PARAMETER,
        format!("the query string is invalid: {}", rejection.body_text()),
    )
}

/// `Json` with rejections as the API's error body: 415 `unsupported_media_type` for a body
/// that is not declared JSON, 400 `malformed_json` for one that does not parse or does not
/// fit (an unknown field, a wrong type: serde's message names it). Take it as
/// `Result<ApiJson<T>, ApiError>` and check the caller's role first, so that a refused key
/// learns nothing from the body's errors. `Option<ApiJson<T>>` is `None` without a
/// `Content-Type` (an optional body).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(request, state)
            .await
            .map_err(|rejection| json_rejection(&rejection))?;
        object_of(value).map(ApiJson)
    }
}

/// `T` from a JSON object: serde would also take a struct from an array of its fields in
/// order (`[null, 60]`), which the API does not promise.
fn object_of<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request(
            error_codes::MALFORMED_JSON,
            "the body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        ApiError::bad_request(
            error_codes::MALFORMED_JSON,
            format!("the body does not fit: {err}"),
        )
    })
}

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, ApiError> {
        <axum::Json<serde_json::Value> as axum::extract::OptionalFromRequest<S>>::from_request(
            request, state,
        )
        .await
        .map_err(|rejection| json_rejection(&rejection))?
        .map(|axum::Json(value)| object_of(value).map(ApiJson))
        .transpose()
    }
}

/// A JSON body's rejection as the API's error.
fn json_rejection(rejection: &axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection;
    use axum::http::StatusCode;
    let code = match rejection {
        JsonRejection::MissingJsonContentType(_) => error_codes::UNSUPPORTED_MEDIA_TYPE,
        _ => error_codes::MALFORMED_JSON,
    };
    let status = rejection.status();
    ApiError::new(
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            status
        } else {
            StatusCode::BAD_REQUEST
        },
        code,
        rejection.body_text(),
    )
}

/// `Path` with rejections as `not_found` / `invalid_parameter` errors.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> ApiError {
    ApiError::bad_request(
        error_codes::INVALID_PARAMETER,
        format!("the path is invalid: {}", rejection.body_text()),
    )
}

/// The request body, or the error for a body over the limit (`too_large`, with `hint` for
/// what to send instead) or one that could not be read.
pub fn body_or_error(
    state: &AppState,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    hint: &str,
) -> Result<axum::body::Bytes, ApiError> {
    let max_bytes = state.config().limits.max_body_bytes;
    body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "the body is larger than the limit of {max_bytes} bytes{hint}"
            ))
        } else {
            ApiError::bad_request(error_codes::MALFORMED_JSON, rejection.body_text())
        }
    })
}

/// The media type of a `Content-Type` value, lowercased, without parameters (`""` when
/// absent).
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Standard base64 of a hash.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
