//! [`ApiError`]: the one error type of every handler, turned into the JSON error body
//! `{"error": {"code", "message", ...}}` with its status.
//!
//! Client errors keep their message. Internal errors (5xx but `unavailable` and
//! `storage_full`) answer with a generic sentence; the detail goes to the log with the
//! request id. Errors are mapped by what the caller should do: 503 and 507 mean "retry
//! later" (with `Retry-After`), 500 never does.
//!
//! Building an error has no side effect: the server's faults (storage unavailable or full,
//! integrity failures, bugs, overload) are logged and counted once, by
//! [`ApiError::report`], when the error is answered ([`IntoResponse`]) or, where it is not
//! answered as JSON (a web page, a stream that ends, a webhook worker), by the code that
//! handles it.

use std::sync::atomic::Ordering::Relaxed;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use veritrail_api::{
    ErrorBody, ErrorDetail, EventErrors, FieldErrorBody, RemovedBody, error_codes,
};

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
    pub retry_after: Option<u32>,
    /// For `record_removed`: how the record left the log.
    pub removed: Option<Box<RemovedBody>>,
    /// The server's fault behind a 5xx, with its detail for the server's log (never sent):
    /// reported once by [`ApiError::report`].
    fault: Option<Box<(Fault, String)>>,
}

/// A fault of the server's, by how it is logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Storage cannot serve right now.
    Unavailable,
    /// The disk is full.
    StorageFull,
    /// Stored data failed a check.
    Integrity,
    /// A stored record failed its checksum or decoding in the store.
    StorageCorrupt,
    /// The store refused a commit that contradicts it (a bug).
    StorageConflict,
    /// A bug or an unexpected failure.
    Internal,
    /// More ingest than can be committed in time.
    Overloaded,
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
            removed: None,
            fault: None,
        }
    }

    /// 410 `record_removed`: record `removed.seq` left the log as `removed` says.
    pub fn removed(removed: RemovedBody) -> Self {
        let why = match (&removed.removed_by_type, &removed.reason) {
            (Some(kind), Some(reason)) => format!(" ({kind}: {reason})"),
            (Some(kind), None) => format!(" ({kind})"),
            _ => String::new(),
        };
        let when = removed
            .removed_at
            .as_ref()
            .map_or_else(String::new, |at| format!(" on {at}"));
        let mut err = Self::new(
            StatusCode::GONE,
            error_codes::RECORD_REMOVED,
            format!(
                "record {} was removed from this log{when} by record {}{why}; its leaf hash \
                 stays in the tree, so every checkpoint and every proof of the other records \
                 still verify",
                removed.seq, removed.removed_by
            ),
        );
        err.removed = Some(Box::new(removed));
        err
    }

    fn with_fault(mut self, fault: Fault, detail: impl std::fmt::Display) -> Self {
        self.fault = Some(Box::new((fault, detail.to_string())));
        self
    }

    /// Logs and counts the server's fault behind this error, once (later calls do nothing):
    /// [`IntoResponse`] calls it; code that handles an error otherwise (a page, the end of a
    /// stream) calls it itself.
    pub fn report(&mut self) {
        let Some((fault, detail)) = self.fault.take().map(|fault| *fault) else {
            return;
        };
        let faults = &crate::metrics::FAULTS;
        match fault {
            Fault::Unavailable => {
                tracing::error!(%detail, "storage unavailable");
                faults.storage_unavailable.fetch_add(1, Relaxed);
            }
            Fault::StorageFull => {
                tracing::error!(%detail, "storage full");
                faults.storage_full.fetch_add(1, Relaxed);
            }
            Fault::Integrity | Fault::StorageCorrupt => {
                tracing::error!(target: "veritrail::integrity", %detail, "integrity failure: stored data does not verify");
                faults.integrity.fetch_add(1, Relaxed);
                if fault == Fault::StorageCorrupt {
                    faults.storage_corrupt.fetch_add(1, Relaxed);
                }
            }
            Fault::StorageConflict => {
                tracing::error!(%detail, "internal error");
                faults.storage_conflict.fetch_add(1, Relaxed);
            }
            Fault::Internal => tracing::error!(%detail, "internal error"),
            Fault::Overloaded => {
                faults.overloaded.fetch_add(1, Relaxed);
            }
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

    /// Storage cannot serve right now: 503 (the detail is for the server's log).
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error_codes::UNAVAILABLE,
            "storage is unavailable right now; retry later (retrying an ingest with the same event ids is safe)",
        );
        err.retry_after = Some(1);
        err.with_fault(Fault::Unavailable, detail)
    }

    /// The server is taking in as much as it can process in time: 503 `overloaded` with
    /// `Retry-After`; nothing of the request was stored.
    pub fn overloaded(message: impl Into<String>) -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error_codes::OVERLOADED,
            message,
        );
        err.retry_after = Some(1);
        err.with_fault(Fault::Overloaded, "")
    }

    /// The disk is full: 507; nothing of the request was stored, and a retry with the same
    /// event ids is safe once space is back.
    pub fn storage_full(detail: impl std::fmt::Display) -> Self {
        let mut err = Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            error_codes::STORAGE_FULL,
            "the server's disk is full: nothing of this request was stored; retry later with the same event ids",
        );
        err.retry_after = Some(10);
        err.with_fault(Fault::StorageFull, detail)
    }

    /// Stored data failed a check (a checksum, a decoding, a proof that does not fold to the
    /// signed root): 500, never the damaged data. Reported as an integrity error and
    /// counted (`veritrail_integrity_failures_total`).
    pub fn integrity(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_codes::INTEGRITY_ERROR,
            "stored data failed its integrity check, so it is not served; the server's log has the detail under this request id",
        )
        .with_fault(Fault::Integrity, detail)
    }

    /// A bug or an unexpected failure: 500 with a generic message (the detail is for the
    /// server's log).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_codes::INTERNAL,
            "internal error; the server's log has the detail under this request id",
        )
        .with_fault(Fault::Internal, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        self.report();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                events: self.events,
                errors: self.errors,
                removed: self.removed.map(|removed| *removed),
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
            ControlError::NoViewerToken { tenant, token_id } => {
                ApiError::not_found(format!("tenant {tenant} has no viewer token {token_id}"))
            }
            ControlError::TooManyViewerTokens { tenant, live } => {
                let mut answer = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    error_codes::RATE_LIMITED,
                    format!(
                        "tenant {tenant} has {live} viewer tokens alive, its limit (limits.max_viewer_tokens_per_tenant): revoke some (DELETE /api/v1/viewer-tokens/{{id}}) or mint shorter-lived ones"
                    ),
                );
                answer.retry_after = Some(60);
                answer
            }
            ControlError::TooManyKeys { tenant, active } => ApiError::new(
                StatusCode::CONFLICT,
                error_codes::CONFLICT,
                format!(
                    "tenant {tenant} has {active} active keys, as many as a tenant may have; revoke keys it no longer uses first"
                ),
            ),
            ControlError::NoServiceKey(key_id) => {
                ApiError::not_found(format!("there is no service key {key_id}"))
            }
            ControlError::TooManyServiceKeys(active) => ApiError::new(
                StatusCode::CONFLICT,
                error_codes::CONFLICT,
                format!(
                    "the deployment has {active} active service keys, as many as it may have; revoke keys no longer used first"
                ),
            ),
            ControlError::Store(_) => ApiError::unavailable(err),
            ControlError::Corrupt(_) => ApiError::internal(err),
        }
    }
}

/// Each storage error by what the caller should do: retry later (`Unavailable`: 503, or 507
/// when the disk is full), nothing (`Corrupt`, `Conflict`: 500, counted, never "retry"),
/// or look elsewhere (`NotFound`: 404).
impl From<veritrail_ledger::StoreError> for ApiError {
    fn from(err: veritrail_ledger::StoreError) -> Self {
        use veritrail_ledger::StoreError;
        match err {
            StoreError::Unavailable(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                ApiError::storage_full(io)
            }
            StoreError::Unavailable(_) | StoreError::Injected => ApiError::unavailable(err),
            StoreError::Corrupt(_) => {
                ApiError::integrity("").with_fault(Fault::StorageCorrupt, err)
            }
            StoreError::Conflict { .. } => {
                ApiError::internal("").with_fault(Fault::StorageConflict, err)
            }
            StoreError::NotFound(what) => ApiError::not_found(what),
        }
    }
}

/// Reads and proofs: a range the log does not have is the caller's mistake (400); a proof
/// that does not verify is never served ([`ApiError::integrity`]).
impl From<veritrail_ledger::ReadError> for ApiError {
    fn from(err: veritrail_ledger::ReadError) -> Self {
        use veritrail_ledger::ReadError;
        match err {
            ReadError::Store(err) => err.into(),
            ReadError::OutOfRange { .. } => {
                ApiError::bad_request(error_codes::INVALID_PARAMETER, err.to_string())
            }
            ReadError::Integrity { .. } => ApiError::integrity(err),
            ReadError::SizeRemoved { .. } => ApiError::new(
                StatusCode::GONE,
                error_codes::TREE_SIZE_REMOVED,
                err.to_string(),
            ),
            ReadError::Removed { seq, by_seq, .. } => ApiError::removed(RemovedBody {
                seq,
                removed_by: by_seq,
                removed_by_type: None,
                removed_at: None,
                reason: None,
            }),
        }
    }
}

/// An append the ledger refused, by what the caller should do: split the request (413),
/// or retry later with the same event ids (503: shutting down, storage unavailable, or the
/// queue full; 507: the disk is full; with `Retry-After`).
impl From<veritrail_ledger::AppendError> for ApiError {
    fn from(err: veritrail_ledger::AppendError) -> Self {
        use veritrail_ledger::AppendError;
        match err {
            AppendError::TooManyEvents { .. } => ApiError::too_large(err.to_string()),
            AppendError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                error_codes::SHUTTING_DOWN,
                "the server is shutting down; retry with the same event ids",
            ),
            AppendError::Unavailable(_) => ApiError::unavailable(err),
            AppendError::StorageFull(_) => ApiError::storage_full(err),
            AppendError::Overloaded { .. } => ApiError::overloaded(format!(
                "{err}; nothing of this request was stored: retry after the Retry-After seconds (with the same event ids, safely)"
            )),
        }
    }
}

/// A search the index refuses is the caller's to change (400: `invalid_parameter`, or
/// `query_too_costly` with what to change); an index that cannot answer is "retry later"
/// (503).
impl From<veritrail_search::SearchError> for ApiError {
    fn from(err: veritrail_search::SearchError) -> Self {
        use veritrail_search::SearchError;
        match err {
            SearchError::InvalidQuery(message) => {
                ApiError::bad_request(error_codes::INVALID_PARAMETER, message)
            }
            SearchError::TooCostly(message) => {
                ApiError::bad_request(error_codes::QUERY_TOO_COSTLY, message)
            }
            other => ApiError::unavailable(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use veritrail_ledger::StoreError;

    use super::*;

    #[test]
    fn a_fault_is_counted_once_when_it_is_answered_not_when_it_is_built() {
        let faults = &crate::metrics::FAULTS;
        let (integrity, corrupt) = (
            faults.integrity.load(Relaxed),
            faults.storage_corrupt.load(Relaxed),
        );
        let mut err = ApiError::from(StoreError::Corrupt("a crc does not match".into()));
        assert_eq!(
            faults.integrity.load(Relaxed),
            integrity,
            "built, not counted"
        );
        err.report();
        err.report();
        assert_eq!(
            faults.integrity.load(Relaxed),
            integrity + 1,
            "reported once"
        );
        assert_eq!(faults.storage_corrupt.load(Relaxed), corrupt + 1);
        let answer = err.into_response();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            faults.integrity.load(Relaxed),
            integrity + 1,
            "answered after a report: not counted again"
        );
        let _ = ApiError::internal("a bug").into_response();
        let _ = ApiError::unavailable("the disk is gone").into_response();
        assert_eq!(faults.integrity.load(Relaxed), integrity + 1);
    }

    #[test]
    fn storage_errors_answer_by_what_the_caller_should_do() {
        let io = |kind| StoreError::Unavailable(std::io::Error::from(kind));
        let cases = [
            (io(std::io::ErrorKind::Other), 503, error_codes::UNAVAILABLE),
            (
                io(std::io::ErrorKind::StorageFull),
                507,
                error_codes::STORAGE_FULL,
            ),
            (
                StoreError::Corrupt("crc".into()),
                500,
                error_codes::INTEGRITY_ERROR,
            ),
            (
                StoreError::Conflict {
                    tenant: veritrail_core::event::TenantId::parse("acme").expect("id"),
                    first_seq: 3,
                    size: 4,
                },
                500,
                error_codes::INTERNAL,
            ),
            (
                StoreError::NotFound("seq 9".into()),
                404,
                error_codes::NOT_FOUND,
            ),
        ];
        for (err, status, code) in cases {
            let answer = ApiError::from(err);
            assert_eq!(answer.status.as_u16(), status, "{}", answer.message);
            assert_eq!(answer.code, code);
            assert_eq!(answer.retry_after.is_some(), status >= 503, "{code}");
        }
    }
}
