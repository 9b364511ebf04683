//! Helpers shared by the ledger's integration tests.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use veritrail_core::event::TenantId;
use veritrail_ledger::conformance::test_signer;
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, Ledger, LedgerConfig, LedgerStore};

/// The offline verifier over `ledger_dir`, decoding every record, with the test key.
pub(crate) fn verify_decoding(ledger_dir: &Path) -> veritrail_ledger::verify::Report {
    veritrail_ledger::verify::verify_ledger_dir(
        ledger_dir,
        &test_signer().verifier(),
        &veritrail_ledger::verify::VerifyOptions {
            decode_records: true,
            ..veritrail_ledger::verify::VerifyOptions::default()
        },
        &mut |_, _| {},
    )
    .unwrap()
}

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
        compact_bytes_per_second: 0,
        index_compact_after_forgotten: 10,
        index_cache_bytes: 64 << 10,
        // Two tenants' files open at a time: most tests close and reopen them often.
        max_open_tenants: 2,
        sync_file_system_above: 16,
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

/// xorshift64: the crash tests' random moments, reproducible from their seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A crash test's rounds (`{var}_ROUNDS`, else `default_rounds`) and seed (`{var}_SEED`,
/// else from the clock), printed so that a failure can be replayed.
pub(crate) fn rounds_and_seed(var: &str, default_rounds: u64) -> (u64, u64) {
    let rounds = std::env::var(format!("{var}_ROUNDS"))
        .ok()
        .map_or(default_rounds, |n| n.parse().unwrap());
    let seed = std::env::var(format!("{var}_SEED")).ok().map_or_else(
        || {
            u64::from(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos(),
            ) | 1
        },
        |s| s.parse().unwrap(),
    );
    eprintln!("{rounds} rounds, {var}_SEED={seed}");
    (rounds, seed)
}
