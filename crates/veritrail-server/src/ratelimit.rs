//! Rate limiting: a token bucket per key id (or per viewer token id, for the embedded
//! view, or per service key and tenant, counting events), refilled continuously.
//!
//! A request takes one token; an empty bucket answers 429 with `Retry-After` (whole seconds
//! until a token is back). Buckets live in memory: a restart refills them, which is fine for
//! a limit meant to stop runaway clients, not to meter. Buckets that refilled are dropped
//! once there are many, so the map holds about the keys active lately.

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
    /// Who is limited, for the 429's message: "this key", "this viewer token".
    who: &'static str,
    /// The limit, for the 429's message.
    limit: String,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Past this many buckets, full ones are dropped (each check then prunes at most once per
/// doubling, so the cost stays constant per check).
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// The per-key limit of the API.
    pub fn new(config: &RateLimit) -> Self {
        Self {
            per_second: f64::from(config.requests_per_second),
            burst: f64::from(config.burst),
            who: "this key",
            limit: format!(
                "{} requests per second (batch events to send more per request)",
                config.requests_per_second
            ),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The per-viewer-token limit of the embedded view: `per_minute` requests a minute, as
    /// many at once.
    pub fn embedded(per_minute: u32) -> Self {
        Self {
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(per_minute),
            who: "this viewer token",
            limit: format!("{per_minute} requests per minute"),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The per-tenant limit of a service key: `per_second` events a second into one tenant,
    /// `burst` at once, so that one tenant's flood cannot use up a key shared by all.
    pub fn per_tenant(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            who: "tenant",
            limit: format!("{per_second} events per second through one service key"),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key_id`, or says how long to wait.
    pub fn check(&self, key_id: &str) -> Result<(), ApiError> {
        self.check_at(key_id, Instant::now())
    }

    /// Takes `n` tokens from the bucket of `key_id` and each tenant of `wants` (its name
    /// and count), all or none: the 429 names the first tenant whose bucket cannot pay.
    pub fn take_for_tenants(&self, key_id: &str, wants: &[(&str, u32)]) -> Result<(), ApiError> {
        self.take_for_tenants_at(key_id, wants, Instant::now())
    }

    fn take_for_tenants_at(
        &self,
        key_id: &str,
        wants: &[(&str, u32)],
        now: Instant,
    ) -> Result<(), ApiError> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("rate limit lock poisoned");
        let names: Vec<String> = wants
            .iter()
            .map(|(tenant, _)| format!("{key_id}/{tenant}"))
            .collect();
        let any_new = names.iter().any(|name| !buckets.contains_key(name));
        self.prune(&mut buckets, any_new, now);
        for (name, &(tenant, n)) in names.iter().zip(wants) {
            let bucket = self.refilled(&mut buckets, name, now);
            // A request larger than the burst passes on a full bucket (and empties it).
            let n = f64::from(n).min(self.burst);
            if bucket.tokens < n {
                let wait = self.wait_for(n - bucket.tokens);
                return Err(refusal(
                    format!(
                        "tenant {tenant} is over its rate limit of {}; nothing was stored: retry after the Retry-After seconds (other tenants are not limited by it)",
                        self.limit
                    ),
                    wait,
                ));
            }
        }
        for (name, &(_, n)) in names.iter().zip(wants) {
            if let Some(bucket) = buckets.get_mut(name) {
                bucket.tokens -= f64::from(n).min(self.burst);
            }
        }
        Ok(())
    }

    fn check_at(&self, key_id: &str, now: Instant) -> Result<(), ApiError> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("rate limit lock poisoned");
        let new = !buckets.contains_key(key_id);
        self.prune(&mut buckets, new, now);
        let bucket = self.refilled(&mut buckets, key_id, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = self.wait_for(1.0 - bucket.tokens);
        Err(refusal(
            format!(
                "{} is over its rate limit of {}; retry after the Retry-After seconds",
                self.who, self.limit
            ),
            wait,
        ))
    }

    /// Drops the buckets that refilled, when there are many and a new one is about to be
    /// made.
    fn prune(&self, buckets: &mut HashMap<String, Bucket>, new: bool, now: Instant) {
        if buckets.len() > PRUNE_ABOVE && new {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| {
                let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
                bucket.tokens + elapsed * per_second < burst
            });
        }
    }

    /// `name`'s bucket (full if it is new), refilled for the time since its last use.
    fn refilled<'a>(
        &self,
        buckets: &'a mut HashMap<String, Bucket>,
        name: &str,
        now: Instant,
    ) -> &'a mut Bucket {
        if !buckets.contains_key(name) {
            buckets.insert(
                name.to_owned(),
                Bucket {
                    tokens: self.burst,
                    at: now,
                },
            );
        }
        let bucket = buckets
            .get_mut(name)
            .unwrap_or_else(|| unreachable!("inserted above"));
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        bucket
    }

    /// Whole seconds until `missing` tokens are back (at least one).
    fn wait_for(&self, missing: f64) -> u32 {
        let wait = (missing / self.per_second).ceil().max(1.0);
        // At most a few seconds: a whole number of seconds fits in u32.
        format!("{wait:.0}").parse().unwrap_or(1)
    }
}

/// A 429 `rate_limited` saying `message`, with `Retry-After: wait`.
fn refusal(message: String, wait: u32) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        error_codes::RATE_LIMITED,
        message,
    );
    err.retry_after = Some(wait);
    err
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
            embed_per_minute: 0,
            ..RateLimit::default()
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
    fn a_tenant_over_its_share_is_refused_alone_and_nothing_is_taken_from_the_others() {
        let limiter = RateLimiter::per_tenant(10, 100);
        let start = Instant::now();
        limiter
            .take_for_tenants_at("svc", &[("noisy", 90), ("quiet", 5)], start)
            .expect("within both bursts");
        let err = limiter
            .take_for_tenants_at("svc", &[("quiet", 5), ("noisy", 20)], start)
            .expect_err("noisy has 10 left");
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(err.message.contains("tenant noisy"), "{}", err.message);
        assert_eq!(err.retry_after, Some(1));
        // The refused request took nothing from quiet: 95 are left, not 90.
        limiter
            .take_for_tenants_at("svc", &[("quiet", 95)], start)
            .expect("quiet kept its tokens");
        assert!(
            limiter
                .take_for_tenants_at("svc", &[("quiet", 1)], start)
                .is_err()
        );
        // Another key has its own buckets for the same tenant.
        limiter
            .take_for_tenants_at("svc2", &[("noisy", 100)], start)
            .expect("another key");
        limiter
            .take_for_tenants_at("svc", &[("noisy", 20)], start + Duration::from_secs(1))
            .expect("ten a second come back");
    }

    #[test]
    fn zero_turns_it_off() {
        let limiter = RateLimiter::new(&RateLimit {
            requests_per_second: 0,
            burst: 0,
            embed_per_minute: 0,
            ..RateLimit::default()
        });
        for _ in 0..10_000 {
            limiter.check("a").expect("no limit");
        }
    }

    #[test]
    fn buckets_that_refilled_are_forgotten_when_there_are_many() {
        let limiter = RateLimiter::embedded(60);
        let start = Instant::now();
        for key in 0..=PRUNE_ABOVE {
            limiter
                .check_at(&format!("token{key}"), start)
                .expect("first use");
        }
        limiter
            .check_at("late", start + Duration::from_secs(120))
            .expect("a new token");
        assert_eq!(
            limiter.buckets.lock().expect("lock").len(),
            1,
            "the refilled buckets are gone"
        );
    }
}
