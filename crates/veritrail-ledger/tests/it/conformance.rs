//! The store conformance suite, run against every backend in this crate.

use std::path::Path;
use std::sync::Arc;

use tempfile::TempDir;
use veritrail_ledger::conformance::{Harness, run_all};
use veritrail_ledger::simfs::{Loss, SimFs};
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, MemoryStore};

use crate::support::small_options;

struct Memory(MemoryStore);

impl Harness for Memory {
    type Store = MemoryStore;
    fn open(&mut self) -> MemoryStore {
        self.0.clone()
    }
}

struct Embedded(TempDir, EmbeddedOptions);

impl Harness for Embedded {
    type Store = EmbeddedStore;
    fn open(&mut self) -> EmbeddedStore {
        EmbeddedStore::open(self.0.path(), self.1.clone()).unwrap()
    }
}

/// The embedded store on a simulated disk, which the harness can kill at any change (the
/// page cache survives, as after `kill -9`).
struct SimEmbedded(SimFs, EmbeddedOptions);

impl Harness for SimEmbedded {
    type Store = EmbeddedStore;
    fn open(&mut self) -> EmbeddedStore {
        if self.0.is_dead() {
            self.0 = self.0.power_cut(Loss::Nothing);
        }
        EmbeddedStore::open_with(
            Arc::new(self.0.clone()),
            Path::new("/data/ledger"),
            self.1.clone(),
        )
        .unwrap()
    }

    fn kill_after(&mut self, changes: u64) -> bool {
        self.0.schedule_cut(changes);
        true
    }

    fn was_killed(&self) -> bool {
        self.0.is_dead()
    }
}

#[test]
fn memory_store_conforms() {
    run_all(|| Memory(MemoryStore::new()));
}

#[test]
fn embedded_store_conforms() {
    run_all(|| Embedded(tempfile::tempdir().unwrap(), EmbeddedOptions::default()));
}

#[test]
fn embedded_store_conforms_with_tiny_segments_and_constant_syncs() {
    run_all(|| Embedded(tempfile::tempdir().unwrap(), small_options()));
}

#[test]
fn embedded_store_conforms_without_ever_syncing_the_derived_files() {
    // Every reopen must then rebuild the derived files and index from the journal.
    let never = EmbeddedOptions {
        sync_every_bytes: u64::MAX,
        sync_every: std::time::Duration::from_secs(3600),
        ..small_options()
    };
    run_all(|| Embedded(tempfile::tempdir().unwrap(), never.clone()));
}

#[test]
fn embedded_store_conforms_on_a_disk_that_can_be_killed() {
    let options = EmbeddedOptions {
        segment_max_bytes: 8 << 10,
        ..small_options()
    };
    run_all(|| SimEmbedded(SimFs::new(), options.clone()));
}
