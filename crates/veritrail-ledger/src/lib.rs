//! veritrail's ledger: where audit events become durable, ordered and provable.
//!
//! # Layout
//!
//! - [`store`]: the [`LedgerStore`] trait and its contract; every backend passes
//!   [`conformance`].
//! - [`embedded`]: [`EmbeddedStore`], the default backend: a [`journal`] of synced frames as
//!   the source of truth, plus derived per-tenant files and a redb index.
//! - [`memory`]: [`MemoryStore`], for tests, with injectable faults.
//! - [`ledger`]: [`Ledger`], the sequencer (one writer, group commit) and the read and proof
//!   API on top of a store.
//! - [`histogram`]: lock-free histograms for metrics.
//! - [`keys`]: the log signing key file.
//! - [`verify`]: the offline verifier of a data directory.
//! - [`vfs`]: the file system operations of the embedded store ([`vfs::RealFs`] passes them
//!   to `std::fs`); `simfs` (feature `testing`) is a simulated disk that can lose power.

pub mod conformance;
pub mod embedded;
pub mod histogram;
mod index;
pub mod journal;
pub mod keys;
pub mod ledger;
pub mod memory;
#[cfg(any(test, feature = "testing"))]
pub mod simfs;
pub mod store;
pub mod verify;
pub mod vfs;

pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use ledger::{
    AppendError, CheckedConsistency, CheckedInclusion, Ledger, LedgerConfig, LedgerStats,
    ReadError, Receipt,
};
pub use memory::{InjectedFault, MemoryStore};
pub use store::{LedgerStore, StoreError};
