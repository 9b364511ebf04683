//! Per-key rate limiting: a token bucket per key id, refilled continuously.
//!
//! A request takes one token; an empty bucket answers 429 with `Retry-After` (whole seconds
//! until a token is back). Buckets live in memory: a restart refills them, which is fine for
//! a limit meant to stop runaway clients, not to meter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;
use veritrail_api::error_codes;

use crate::config::RateLimit;
use crate::error::ApiError;

#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(config: &RateLimit) -> Self {
        Self {
            per_second: f64::from(config.requests_per_second),
            burst: f64::from(config.burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key_id`, or says how long to wait.
    pub fn check(&self, key_id: &str) -> Result<(), ApiError> {
        self.check_at(key_id, Instant::now())
    }

    fn check_at(&self, key_id: &str, now: Instant) -> Result<(), ApiError> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("rate limit lock poisoned");
        if !buckets.contains_key(key_id) {
            buckets.insert(
                key_id.to_owned(),
                Bucket {
                    tokens: self.burst,
                    at: now,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(key_id) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.tokens) / self.per_second).ceil().max(1.0);
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            error_codes::RATE_LIMITED,
            format!(
                "this key is over its rate limit of {} requests per second; retry after the Retry-After seconds (batch events to send more per request)",
                self.per_second
            ),
        );
        // At most a few seconds: a whole number of seconds fits in u64.
        err.retry_after = Some(format!("{wait:.0}").parse().unwrap_or(1));
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_and_keys_do_not_share_buckets() {
        let limiter = RateLimiter::new(&RateLimit {
            requests_per_second: 2,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            limiter.check_at("a", start).expect("within the burst");
        }
        let err = limiter.check_at("a", start).expect_err("burst used up");
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.retry_after, Some(1));
        limiter
            .check_at("b", start)
            .expect("another key has its own bucket");
        limiter
            .check_at("a", start + Duration::from_millis(500))
            .expect("one token back after half a second at 2/s");
        assert!(
            limiter
                .check_at("a", start + Duration::from_millis(500))
                .is_err()
        );
    }

    #[test]
    fn zero_turns_it_off() {
        let limiter = RateLimiter::new(&RateLimit {
            requests_per_second: 0,
            burst: 0,
        });
        for _ in 0..10_000 {
            limiter.check("a").expect("no limit");
        }
    }
}
