//! The wall clock, in the one place the server reads it (the ledger stamps `received_at`
//! with its own reading of the system clock).
//!
//! With the feature `testing`, a test may move the server's clock forward
//! (`advance_for_tests`): a retention run then sees the log's records as that much older.

use std::time::{SystemTime, UNIX_EPOCH};

use veritrail_core::event::Timestamp;

#[cfg(feature = "testing")]
static OFFSET_NANOS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Now.
pub fn now() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    #[cfg(feature = "testing")]
    let nanos = nanos.saturating_add(OFFSET_NANOS.load(std::sync::atomic::Ordering::Relaxed));
    Timestamp::from_unix_nanos(nanos)
}

/// Moves this process's server clock `nanos` ahead of the system clock (feature
/// `testing`; the ledger's `received_at` stays on the system clock).
#[cfg(feature = "testing")]
pub fn advance_for_tests(nanos: i64) {
    OFFSET_NANOS.store(nanos, std::sync::atomic::Ordering::Relaxed);
}

/// Now, in whole seconds since the Unix epoch.
pub fn now_unix_secs() -> u64 {
    u64::try_from(now().unix_nanos() / 1_000_000_000).unwrap_or(0)
}

/// Now, in RFC 3339.
pub fn now_rfc3339() -> String {
    now().to_rfc3339()
}
