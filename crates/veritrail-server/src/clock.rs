//! The wall clock, in the one place the server reads it.

use std::time::{SystemTime, UNIX_EPOCH};

use veritrail_core::event::Timestamp;

/// Now.
pub fn now() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_nanos(nanos)
}

/// Now, in RFC 3339.
pub fn now_rfc3339() -> String {
    now().to_rfc3339()
}
