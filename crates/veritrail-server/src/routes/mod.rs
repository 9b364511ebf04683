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
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use serde::de::DeserializeOwned;
use veritrail_api::{error_codes, paths};

use crate::AppState;
use crate::error::ApiError;

/// Every API route (the OpenAPI routes are merged by [`crate::app`]).
pub fn router(state: &AppState) -> Router<AppState> {
    let max_body = state.config().limits.max_body_bytes;
    Router::new()
        .route(
            paths::EVENTS,
            get(events::search)
                .post(events::ingest)
                .layer(axum::extract::DefaultBodyLimit::max(max_body)),
        )
        .route(paths::EVENTS_COUNT, get(events::count))
        .route(paths::EVENTS_STREAM, get(stream::stream))
        .route(paths::EVENT_BY_SEQ, get(events::record))
        .route(paths::LOG_CHECKPOINT, get(log::checkpoint))
        .route(paths::LOG_KEY, get(log::key))
        .route(paths::LOG_INCLUSION, get(log::inclusion))
        .route(paths::LOG_CONSISTENCY, get(log::consistency))
        .route(paths::LOG_EXPORT, get(log::export))
        .route(paths::ME, get(admin::me))
        .route(paths::KEYS, get(admin::list_keys).post(admin::create_key))
        .route(paths::KEY, delete(admin::revoke_key))
        .route(
            paths::TENANTS,
            get(admin::list_tenants).post(admin::create_tenant),
        )
        .route(paths::TENANT, get(admin::get_tenant))
        .route(
            paths::TENANT_KEYS,
            get(admin::list_tenant_keys).post(admin::create_tenant_key),
        )
        .route(paths::TENANT_KEY, delete(admin::revoke_tenant_key))
        .route(
            paths::CATALOG,
            get(catalog::get_catalog)
                .put(catalog::put_catalog)
                .layer(axum::extract::DefaultBodyLimit::max(max_body)),
        )
        .route(
            paths::CATALOG_TYPE,
            get(catalog::get_type)
                .put(catalog::put_type)
                .delete(catalog::delete_type),
        )
        .route(paths::CATALOG_CATEGORIES, get(catalog::categories))
        .route(
            paths::CATALOG_SETTINGS,
            get(catalog::get_settings).put(catalog::put_settings),
        )
        .route(paths::CATALOG_SHARED, get(catalog::list_shared))
        .route(paths::CATALOG_SHARED_ONE, get(catalog::get_shared))
        .route(
            paths::ACTIVITY_SETTINGS,
            get(activity::get_settings).put(activity::put_settings),
        )
        .route(paths::VIEWER_TOKENS, get(viewer::list).post(viewer::mint))
        .route(paths::VIEWER_TOKEN, delete(viewer::revoke))
        .route(paths::WEBHOOKS, get(webhooks::list).post(webhooks::create))
        .route(
            paths::WEBHOOK,
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(paths::WEBHOOK_ROTATE, post(webhooks::rotate))
        .route(paths::WEBHOOK_ATTEMPTS, get(webhooks::attempts))
        .route(paths::WEBHOOK_REDELIVER, post(webhooks::redeliver))
        .route(paths::WEBHOOK_PING, post(webhooks::ping))
        .route(paths::HEALTHZ, get(ops::healthz))
        .route(paths::READYZ, get(ops::readyz))
        .route(paths::METRICS, get(ops::metrics))
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
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|axum::Json(value)| ApiJson(value))
            .map_err(|rejection| json_rejection(&rejection))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, ApiError> {
        <axum::Json<T> as axum::extract::OptionalFromRequest<S>>::from_request(request, state)
            .await
            .map(|value| value.map(|axum::Json(value)| ApiJson(value)))
            .map_err(|rejection| json_rejection(&rejection))
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
