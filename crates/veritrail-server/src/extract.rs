//! The request extractors of the API and the UI, which turn axum's rejections into
//! [`ApiError`]s with stable codes ([`ApiJson`], [`ApiQuery`], [`ApiPath`]), and the body and
//! media-type checks they share.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use veritrail_api::error_codes;

use crate::AppState;
use crate::error::ApiError;

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
