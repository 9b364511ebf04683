//! veritrail's client SDK: a typed async client of the HTTP API, a batcher for high-volume
//! senders, and the offline verifier of export bundles.
//!
//! ```no_run
//! # async fn demo() -> Result<(), veritrail_client::ClientError> {
//! use veritrail_client::{Client, IngestOptions};
//! use veritrail_api::EventInput;
//!
//! let client = Client::new("https://audit.example.com", "vt_...")?;
//! let event = EventInput {
//!     id: Some("order-42-paid".into()),
//!     event_type: "order.paid".into(),
//!     ..EventInput::default()
//! };
//! let reply = client.send(&[event], IngestOptions::default()).await?;
//! println!("stored at seq {}", reply.receipts[0].seq);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`client`]: [`Client`], one method per route, with retries ([`RetryPolicy`]);
//!   [`Pager`] follows search cursors.
//! - [`batcher`]: [`Batcher`], which groups pushed events into requests and gives each
//!   event an id so that retries are idempotent.
//! - [`tail`]: [`Tail`], the live tail of new records ([`Client::tail`]), reconnecting
//!   without losing or repeating a record.
//! - [`download`]: [`Client::export_events`], filtered exports (JSON Lines, CSV) downloaded
//!   whole rows at a time, resumable after the last one.
//! - [`export`]: [`export::verify_export`], which checks a downloaded export bundle with
//!   nothing but the pinned verifier key.
//! - [`service`]: what one service key does for many tenants: [`Client::send_mixed`],
//!   [`Client::for_tenant`], viewer tokens, and the server admin's service keys.
//! - [`error`]: [`ClientError`], what a call ends in when it fails.
//!
//! The wire types are those of [`veritrail_api`].
//!
//! HTTPS uses rustls with the `ring` crypto provider and the platform's trusted roots.

pub mod batcher;
pub mod client;
pub mod download;
pub mod error;
pub mod export;
pub mod service;
pub mod tail;

pub use batcher::{BatchError, BatchReport, Batcher, BatcherOptions, Receipt, Rejected};
pub use client::{
    Client, ClientOptions, IngestOptions, KeyScope, LeafRef, MAX_EVENTS_PER_REQUEST,
    MAX_REQUEST_BYTES, Pager, RetryPolicy, Wait,
};
pub use error::ClientError;
pub use tail::{Tail, TailEvent};

/// A single-threaded tokio runtime with I/O and timers, for callers that have none of their
/// own (a command-line tool): `runtime()?.block_on(client.me())`.
///
/// # Errors
///
/// When the operating system refuses the runtime's resources.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
