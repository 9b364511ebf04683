//! [`ClientError`]: everything a call to the server can end in, other than success.
//!
//! The kinds are kept apart because callers act on them differently: an [`ClientError::Api`]
//! is the server's considered answer (fix the request, or wait `retry_after`); a
//! [`ClientError::Transport`] may or may not have reached the server; a
//! [`ClientError::Decode`] means client and server disagree about the API.

use std::time::Duration;

use veritrail_api::EventErrors;

/// Why a call failed.
///
/// Display is one sentence; the underlying cause, if any, is the error's `source()` (print
/// the chain, like anyhow's `{:#}`, to see it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error status and (normally) an
    /// [`veritrail_api::ErrorBody`]. Displays as the server's message.
    #[error("{message}")]
    Api {
        /// HTTP status, 400 to 599.
        status: u16,
        /// The stable machine code (one of [`veritrail_api::error_codes`]), or `http_<status>`
        /// when the body was not an `ErrorBody` (for instance an error page of a proxy).
        code: String,
        /// The server's sentence for people.
        message: String,
        /// For `invalid_events` and `rejected_by_catalog`: the invalid fields of each
        /// rejected event, by index in the request.
        events: Vec<EventErrors>,
        /// For `invalid_catalog`: every problem of the catalog document, by path.
        errors: Box<[veritrail_api::FieldErrorBody]>,
        /// The server's request id, to find the request in its log.
        request_id: Option<Box<str>>,
        /// From `Retry-After` (429, sometimes 503): how long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The request did not complete: connection refused, TLS failure, timeout, a connection
    /// cut mid-response. Whether the server acted on it is unknown unless
    /// [`ClientError::is_unsent`] says so.
    #[error("cannot reach the server")]
    Transport(#[source] reqwest::Error),
    /// A 2xx response whose body is not what the API promises.
    #[error("unexpected response to {what}")]
    Decode {
        /// The request whose answer did not decode, like `GET /api/v1/events`.
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A streamed download (an event export) that ended inside a row, whose gzip does not
    /// decode, or whose rows are not what the API promises; resume it from the last whole
    /// row.
    #[error("the download is incomplete or damaged: {0}")]
    Download(String),
    /// The base URL or API key cannot be used.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The call was refused before anything was sent, like an empty batch or one over the
    /// API's limits.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Writing a downloaded body (an export) failed.
    #[error("cannot write the response")]
    Write(#[source] std::io::Error),
    /// The operating system's random number generator failed (event ids of the
    /// [`crate::Batcher`]).
    #[error("cannot generate an event id")]
    Random(#[source] getrandom::Error),
}

impl ClientError {
    /// The HTTP status of an [`ClientError::Api`] error.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The machine code of an [`ClientError::Api`] error.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the server refused the request as the client's fault (4xx other than 429):
    /// sending it again unchanged will fail again.
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        matches!(self, ClientError::Api { status, .. } if (400..500).contains(status) && *status != 429)
    }

    /// Whether the request certainly never reached the server (the connection was never
    /// established), so it had no effect.
    #[must_use]
    pub fn is_unsent(&self) -> bool {
        matches!(self, ClientError::Transport(err) if err.is_connect())
    }
}
