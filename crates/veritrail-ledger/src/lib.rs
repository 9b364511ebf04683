//! veritrail's ledger: where audit events become durable, ordered and provable.
//!
//! # Layout
//!
//! - [`store`]: the [`LedgerStore`] trait and its contract; every backend passes the
//!   conformance suite.
//! - [`embedded`]: [`EmbeddedStore`], the default backend: a [`journal`] of synced frames as
//!   the source of truth, plus derived per-tenant files and `index`, the redb id index.
//! - [`ledger`]: [`Ledger`], the sequencer (one writer, group commit) and the read and proof
//!   API on top of a store.
//! - [`histogram`]: lock-free histograms for metrics.
//! - [`keys`]: the log signing key file.
//! - [`verify`]: the offline verifier of a data directory.
//! - [`vfs`]: the file system operations of the embedded store ([`vfs::RealFs`] passes them
//!   to `std::fs`).
//!
//! Test support, feature `testing` (it does not ship; other crates' tests get it through a
//! dev-dependency):
//!
//! - `conformance`: the [`LedgerStore`] contract as a test suite (`run_all` over a
//!   `Harness`), one test per rule, and the fixtures tests build batches with
//!   (`BatchBuilder`, `test_signer`, `test_event`).
//! - `memory`: `MemoryStore`, an in-memory store with injectable faults (`InjectedFault`).
//! - `simfs`: a simulated disk that can lose power.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod embedded;
pub mod histogram;
mod index;
pub mod journal;
pub mod keys;
pub mod ledger;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(any(test, feature = "testing"))]
pub mod simfs;
pub mod store;
pub mod verify;
pub mod vfs;

pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use ledger::{
    AppendError, CheckedConsistency, CheckedInclusion, Ledger, LedgerConfig, LedgerStats,
    ReadError, Receipt, Records,
};
#[cfg(any(test, feature = "testing"))]
pub use memory::{InjectedFault, MemoryStore};
pub use store::{CompactStats, LedgerStore, Removal, RemovalScope, Removed, StoreError};
