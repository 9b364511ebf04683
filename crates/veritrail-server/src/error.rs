//! [`ApiError`]: the one error type of every handler, turned into the JSON error body
//! `{"error": {"code", "message", ...}}` with its status.
//!
//! Client errors keep their message. Internal errors (5xx but `unavailable`) answer with a
//! generic sentence; the detail goes to the log with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use veritrail_api::{ErrorBody, ErrorDetail, EventErrors, FieldErrorBody, error_codes};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub events: Vec<EventErrors>,
    /// For `invalid_catalog`: every problem of the document, by path.
    pub errors: Vec<FieldErrorBody>,
    /// For 429 and some 503s: seconds to wait.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            events: Vec::new(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid_parameter(name: &str, message: impl std::fmt::Display) -> Self {
        Self::bad_request(
            error_codes::INVALID_PARAMETER,
            format!("query parameter {name}: {message}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error_codes::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, error_codes::FORBIDDEN, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            error_codes::UNAUTHENTICATED,
            message,
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_codes::TOO_LARGE,
            message,
        )
    }

    /// Storage cannot serve right now: 503, and the detail is logged.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "storage unavailable");
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error_codes::UNAVAILABLE,
            "storage is unavailable right now; retry later (retrying an ingest with the same event ids is safe)",
        );
        err.retry_after = Some(1);
        err
    }

    /// A bug or an unexpected failure: 500 with a generic message; the detail is logged.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_codes::INTERNAL,
            "internal error; the server's log has the detail under this request id",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                events: self.events,
                errors: self.errors,
                request_id: crate::current_request_id(),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<crate::control::ControlError> for ApiError {
    fn from(err: crate::control::ControlError) -> Self {
        use crate::control::ControlError;
        match err {
            ControlError::TenantExists(tenant) => ApiError::new(
                StatusCode::CONFLICT,
                error_codes::CONFLICT,
                format!("tenant {tenant} already exists"),
            ),
            ControlError::NoTenant(tenant) => ApiError::not_found(format!("no tenant {tenant}")),
            ControlError::NoKey { tenant, key_id } => {
                ApiError::not_found(format!("tenant {tenant} has no key {key_id}"))
            }
            ControlError::Store(_) => ApiError::unavailable(err),
            ControlError::Corrupt(_) => ApiError::internal(err),
        }
    }
}

impl From<veritrail_ledger::StoreError> for ApiError {
    fn from(err: veritrail_ledger::StoreError) -> Self {
        ApiError::unavailable(err)
    }
}
