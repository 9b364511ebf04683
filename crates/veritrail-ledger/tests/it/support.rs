//! Helpers shared by the ledger's integration tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use veritrail_core::event::TenantId;
use veritrail_ledger::conformance::test_signer;
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, Ledger, LedgerConfig, LedgerStore};

pub(crate) fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// Small segments and frequent syncs, so tests cross segment and marker boundaries.
pub(crate) fn small_options() -> EmbeddedOptions {
    EmbeddedOptions {
        segment_max_bytes: 64 << 10,
        sync_every_bytes: 32 << 10,
        sync_every: Duration::from_millis(50),
        // A small cache, so tests read index pages back from the file too.
        index_cache_bytes: 64 << 10,
    }
}

pub(crate) fn open_embedded(dir: &Path) -> Arc<EmbeddedStore> {
    Arc::new(EmbeddedStore::open(&dir.join("ledger"), small_options()).unwrap())
}

pub(crate) fn start(store: Arc<dyn LedgerStore>) -> Ledger {
    Ledger::start(
        store,
        test_signer(),
        LedgerConfig {
            ..LedgerConfig::default()
        },
    )
    .unwrap()
}
