//! The I/O-free core of veritrail: no files, sockets, clock or randomness.
//!
//! # Layout
//!
//! - [`event`]: the wire [`event::EventInput`] and the validated [`event::Event`] with its
//!   parts; [`event::limits`] and the stable error [`event::codes`].
//! - [`record`]: [`record::Record`] and its canonical, versioned byte encoding.
//! - [`canonical_json`]: the canonical JSON used for `details`.
//! - [`csv`]: a record as one CSV row of the export's stable columns.
//! - [`merkle`]: RFC 6962 / RFC 9162 hashing, the append frontier, inclusion and
//!   consistency proofs (generated from stored node hashes, and verified).
//! - [`checkpoint`]: the C2SP `tlog-checkpoint` body.
//! - [`note`]: C2SP `signed-note` signing and verification with Ed25519.
//! - [`catalog`]: event catalogs (the `veritrail-catalog/v1` document, its checks, the
//!   summary templates, and a tenant's catalogs applied to an event).
//! - [`ocsf`]: a record as an OCSF 1.x event of its catalog's class.
//! - [`webhook`]: Standard Webhooks secrets and signatures, and the notification bodies.
//! - `json_out`: a record's JSON view written straight into a buffer.

pub mod canonical_json;
pub mod catalog;
pub mod checkpoint;
pub mod csv;
pub mod event;
mod json_out;
pub mod merkle;
pub mod note;
pub mod ocsf;
pub mod record;
pub mod webhook;
