//! The shares of the server that one key or tenant may hold at once, so that no key, however
//! busy or hostile, can take what the others need:
//!
//! - [`BlockingPool`]: threads for blocking work (storage reads, searches, counts), at most
//!   `limits.blocking_threads` in all and `limits.blocking_per_tenant` for one tenant. A
//!   request over its tenant's share waits for one of its own tenant's jobs to finish, never
//!   for another tenant's; the wait counts against the request's timeout.
//! - [`Streams`]: long-lived answers (exports, live tails) open at once, at most
//!   `limits.max_streams_per_key` per key (or session, or viewer token) and
//!   `limits.max_streams_per_tenant` per tenant; one more is a 429 with `Retry-After`. A
//!   stream's [`StreamPermit`] lives as long as its body: it is given back when the stream
//!   ends or its client goes away (see [`crate::conn`] for clients that stop reading).
//! - [`IngestAdmission`]: ingests in flight (being read, parsed, or waiting for their
//!   commit): at most `limits.max_ingest_bytes_in_flight` of bodies together, by their
//!   `Content-Length`, and at most a number of requests that shrinks while the median
//!   ingest takes longer than `limits.ingest_target_latency_ms` and grows back when it
//!   takes less than half of it. One more is a 503 `overloaded` with `Retry-After` before
//!   its body is parsed: under load beyond what the server can commit,
//!   the excess is refused for little, and what is taken in is answered in time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::Semaphore;
use veritrail_api::error_codes;
use veritrail_core::event::TenantId;

use crate::error::ApiError;

/// Ingests in flight (admitted, not yet answered): at most `limits.max_ingest_bytes_in_flight`
/// of bodies together (by their `Content-Length`), and at most a number of requests that
/// follows how long admitted ingests take (see the module doc).
///
/// The request limit moves between [`MIN_INGEST_CONCURRENCY`] and
/// [`MAX_INGEST_CONCURRENCY`]: every 50 ms, if the median ingest answered in that window
/// took longer than the target latency, a queue is standing and the limit drops to what
/// the server answers in the target latency (twice the rate times the target, by Little's
/// law; the rate is the higher of the window's and the recent windows' average, so that a
/// short stall does not shut clients out); if the median took less than half the target, the limit doubles. Under
/// overload the server thus takes in about what it answers in the target latency and
/// refuses the rest at once, from the first window on; under ordinary load the limit is at
/// its ceiling and absorbs bursts; a bulk loader's few large batches stay within the floor.
#[derive(Debug)]
pub struct IngestAdmission {
    in_flight_bytes: AtomicU64,
    in_flight: AtomicU64,
    limit: AtomicU64,
    max_bytes: u64,
    target: Duration,
    window: Mutex<LatencyWindow>,
}

#[derive(Debug)]
struct LatencyWindow {
    started: Instant,
    /// The latencies of the window's answers (at most [`WINDOW_SAMPLES`]).
    latencies: Vec<Duration>,
    /// The window's answers (all of them).
    answered: u64,
    /// Answers per second, averaged over recent windows (each weighs 1/4).
    recent_rate: f64,
}

/// Latencies kept per window (the first ones; enough for its median).
const WINDOW_SAMPLES: usize = 512;

/// How often the limit is adjusted.
const ADMISSION_WINDOW: Duration = Duration::from_millis(50);

/// The request limit's floor: a bulk loader's connections always get in.
pub const MIN_INGEST_CONCURRENCY: u64 = 8;
/// The request limit's ceiling.
pub const MAX_INGEST_CONCURRENCY: u64 = 1024;

/// One admitted ingest's share, given back (and its latency counted) when it is answered.
#[derive(Debug)]
pub struct IngestPermit {
    admission: Arc<IngestAdmission>,
    bytes: u64,
    admitted: Instant,
}

impl Drop for IngestPermit {
    fn drop(&mut self) {
        self.admission
            .in_flight_bytes
            .fetch_sub(self.bytes, Ordering::Relaxed);
        self.admission.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.admission
            .answered(self.admitted.elapsed(), Instant::now());
    }
}

impl IngestAdmission {
    /// At most `max_bytes` of bodies in flight, answering in about `target`.
    pub fn new(max_bytes: usize, target: Duration) -> Self {
        Self {
            in_flight_bytes: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            limit: AtomicU64::new(MAX_INGEST_CONCURRENCY),
            max_bytes: max_bytes as u64,
            target,
            window: Mutex::new(LatencyWindow {
                started: Instant::now(),
                latencies: Vec::with_capacity(WINDOW_SAMPLES),
                answered: 0,
                recent_rate: 0.0,
            }),
        }
    }

    /// Admits a body of `content_length` bytes (unknown: `max_body` bytes; more than the
    /// byte budget: the whole budget, so that the largest body gets in when nothing else is
    /// in flight), or refuses it with 503 `overloaded`.
    pub fn admit(
        self: &Arc<Self>,
        content_length: Option<u64>,
        max_body: usize,
    ) -> Result<IngestPermit, ApiError> {
        let overloaded = || {
            ApiError::overloaded(
                "the server is taking in as many events as it can commit in time; nothing of this request was stored: retry after the Retry-After seconds (with the same event ids, safely)",
            )
        };
        let limit = self.limit.load(Ordering::Relaxed);
        if self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_err()
        {
            return Err(overloaded());
        }
        let bytes = content_length
            .unwrap_or(max_body as u64)
            .clamp(1, self.max_bytes.max(1));
        let fits = self
            .in_flight_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |in_flight| {
                (in_flight == 0 || in_flight + bytes <= self.max_bytes).then_some(in_flight + bytes)
            })
            .is_ok();
        if !fits {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(overloaded());
        }
        Ok(IngestPermit {
            admission: Arc::clone(self),
            bytes,
            admitted: Instant::now(),
        })
    }

    /// Counts one ingest answered at `now` after `latency`; at the end of a window, adjusts
    /// the limit.
    fn answered(&self, latency: Duration, now: Instant) {
        let mut window = self.window.lock().expect("admission lock poisoned");
        window.answered += 1;
        if window.latencies.len() < WINDOW_SAMPLES {
            window.latencies.push(latency);
        }
        let elapsed = now.saturating_duration_since(window.started);
        if elapsed < ADMISSION_WINDOW {
            return;
        }
        #[allow(
            clippy::cast_precision_loss,
            reason = "a count of answers, far below 2^52"
        )]
        let rate = window.answered as f64 / elapsed.as_secs_f64();
        // A stall (a slow disk write, a burst of indexing) answers little in one window:
        // the rate that sizes the limit is the higher of the window's and the recent one,
        // so that a stall does not shut out clients the server answers in time otherwise.
        let rate_for_limit = rate.max(window.recent_rate);
        window.recent_rate = 0.75 * window.recent_rate + 0.25 * rate;
        let latencies = &mut window.latencies;
        latencies.sort_unstable();
        let median = latencies[latencies.len() / 2];
        let limit = self.limit.load(Ordering::Relaxed);
        let next = if median > self.target {
            // Most ingests waited longer than the target: a queue is standing. What is
            // answered in the target latency is the rate times the target (Little's law);
            // twice that keeps the sequencer's group commits full.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive count of requests, clamped below"
            )]
            let sustainable = (2.0 * rate_for_limit * self.target.as_secs_f64()).round() as u64;
            limit
                .min(sustainable)
                .clamp(MIN_INGEST_CONCURRENCY, MAX_INGEST_CONCURRENCY)
        } else if median < self.target / 2 {
            (limit * 2).min(MAX_INGEST_CONCURRENCY)
        } else {
            limit
        };
        self.limit.store(next, Ordering::Relaxed);
        window.started = now;
        window.latencies.clear();
        window.answered = 0;
    }

    /// Bytes of bodies in flight now.
    pub fn in_flight_bytes(&self) -> u64 {
        self.in_flight_bytes.load(Ordering::Relaxed)
    }

    /// The number of ingests admitted in flight now may reach.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }
}

/// Threads for blocking work, shared fairly between tenants (see the module doc).
#[derive(Debug)]
pub struct BlockingPool {
    all: Arc<Semaphore>,
    per_tenant: usize,
    /// A semaphore per tenant with work running or waiting; idle ones are removed.
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
    /// Jobs waiting for a thread, for `/metrics`.
    waiting: AtomicUsize,
}

impl BlockingPool {
    pub fn new(threads: usize, per_tenant: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(threads.max(1))),
            per_tenant: per_tenant.max(1),
            tenants: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Runs `work` on a blocking thread, within `tenant`'s share (`None`: work of no
    /// tenant, such as the server admin's, which only the total bounds).
    pub async fn run<T: Send + 'static>(
        &self,
        tenant: Option<&TenantId>,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permits = self.permits(tenant).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let (tenant_permit, permit) = permits?;
        let result = tokio::task::spawn_blocking(move || {
            let _held = (tenant_permit, permit);
            work()
        })
        .await
        .map_err(|err| ApiError::internal(format!("blocking task failed: {err}")))?;
        if let Some(tenant) = tenant {
            self.forget_idle(tenant);
        }
        result
    }

    /// The tenant's permit first (waiting there costs no shared thread), then a thread.
    async fn permits(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<
        (
            Option<tokio::sync::OwnedSemaphorePermit>,
            tokio::sync::OwnedSemaphorePermit,
        ),
        ApiError,
    > {
        let closed = |_| ApiError::internal("the blocking pool is closed");
        let tenant_permit = match tenant {
            Some(tenant) => Some(
                self.semaphore_of(tenant)
                    .acquire_owned()
                    .await
                    .map_err(closed)?,
            ),
            None => None,
        };
        let permit = Arc::clone(&self.all)
            .acquire_owned()
            .await
            .map_err(closed)?;
        Ok((tenant_permit, permit))
    }

    fn semaphore_of(&self, tenant: &TenantId) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().expect("blocking pool lock poisoned");
        Arc::clone(
            tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant))),
        )
    }

    /// Removes the tenant's semaphore when nothing holds or waits for it, so that the map
    /// holds only busy tenants.
    fn forget_idle(&self, tenant: &TenantId) {
        let mut tenants = self.tenants.lock().expect("blocking pool lock poisoned");
        if tenants.get(tenant).is_some_and(|semaphore| {
            Arc::strong_count(semaphore) == 1 && semaphore.available_permits() == self.per_tenant
        }) {
            tenants.remove(tenant);
        }
    }

    /// Jobs waiting for a thread now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Long-lived answers open at once, per key and per tenant (see the module doc).
#[derive(Debug)]
pub struct Streams {
    per_key: usize,
    per_tenant: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    by_key: HashMap<String, usize>,
    by_tenant: HashMap<TenantId, usize>,
    total: usize,
}

impl Streams {
    pub fn new(per_key: usize, per_tenant: usize) -> Self {
        Self {
            per_key,
            per_tenant,
            open: Mutex::new(Open::default()),
        }
    }

    /// A permit for one more stream of `key` (a key id, or another name of who asks) in
    /// `tenant`, or a 429 saying which share is used up.
    pub fn open(self: &Arc<Self>, key: &str, tenant: &TenantId) -> Result<StreamPermit, ApiError> {
        let mut open = self.open.lock().expect("streams lock poisoned");
        let of_key = open.by_key.get(key).copied().unwrap_or(0);
        let of_tenant = open.by_tenant.get(tenant).copied().unwrap_or(0);
        let refusal = if of_key >= self.per_key {
            Some(format!(
                "this key has {of_key} exports or live tails open already (limits.max_streams_per_key); close one, or retry after the Retry-After seconds"
            ))
        } else if of_tenant >= self.per_tenant {
            Some(format!(
                "tenant {tenant} has {of_tenant} exports or live tails open already (limits.max_streams_per_tenant); close one, or retry after the Retry-After seconds"
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                error_codes::RATE_LIMITED,
                message,
            );
            err.retry_after = Some(5);
            return Err(err);
        }
        *open.by_key.entry(key.to_owned()).or_default() += 1;
        *open.by_tenant.entry(tenant.clone()).or_default() += 1;
        open.total += 1;
        Ok(StreamPermit {
            streams: Arc::clone(self),
            key: key.to_owned(),
            tenant: tenant.clone(),
        })
    }

    /// Streams open now, all tenants together.
    pub fn total(&self) -> usize {
        self.open.lock().expect("streams lock poisoned").total
    }

    fn close(&self, key: &str, tenant: &TenantId) {
        let mut open = self.open.lock().expect("streams lock poisoned");
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_key.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                open.by_key.remove(key);
            }
        }
        if let Some(count) = open.by_tenant.get_mut(tenant) {
            *count -= 1;
            if *count == 0 {
                open.by_tenant.remove(tenant);
            }
        }
    }
}

/// One open stream; dropping it (with the stream's body) gives its place back.
#[derive(Debug)]
pub struct StreamPermit {
    streams: Arc<Streams>,
    key: String,
    tenant: TenantId,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.streams.close(&self.key, &self.tenant);
    }
}

/// Descriptors a server needs besides its connections and its tenants' files: the journal,
/// the indexes' files (the search index's segments), listeners, threads' own.
const OTHER_DESCRIPTORS: u64 = 1024;

/// Raises the process's limit of open files to its hard limit (the soft one is often 1,024,
/// below what the connection bound alone allows); returns the limit now in force.
///
/// # Errors
///
/// When the limit cannot be read or set.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current.is_none_or(|current| current < hard)
    {
        limit.current = Some(hard);
        setrlimit(Resource::Nofile, limit).map_err(std::io::Error::from)?;
    }
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

/// Warns when the open-files limit is below what `limits` may use at once: every
/// connection, every open tenant's two ledger files, and the rest. Past it, a new
/// connection or file fails (`Too many open files`) until descriptors are freed.
pub fn check_open_files_limit(limits: &crate::config::Limits) {
    let current = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let needed =
        limits.max_connections as u64 + 2 * limits.max_open_tenants as u64 + OTHER_DESCRIPTORS;
    if current < needed {
        tracing::warn!(
            limit = current,
            needed,
            "the open-files limit (ulimit -n) is below what limits.max_connections and limits.max_open_tenants may use; raise it, or lower them"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let hard = getrlimit(Resource::Nofile).maximum;
        // Start from a low soft limit, as many systems do.
        let mut low = getrlimit(Resource::Nofile);
        low.current = Some(256.min(hard.unwrap_or(256)));
        setrlimit(Resource::Nofile, low).expect("lower the soft limit");
        let now = raise_open_files_limit().expect("raised");
        assert_eq!(Some(now), getrlimit(Resource::Nofile).current);
        assert_eq!(Some(now), hard.or(Some(u64::MAX)));
    }

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).expect("tenant id")
    }

    #[test]
    fn streams_are_bounded_per_key_and_per_tenant_and_given_back_on_drop() {
        let streams = Arc::new(Streams::new(2, 3));
        let (a, b) = (tenant("a"), tenant("b"));
        let first = streams.open("k1", &a).expect("1 of k1");
        let _second = streams.open("k1", &a).expect("2 of k1");
        let err = streams.open("k1", &a).expect_err("k1 is full");
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            err.message.contains("max_streams_per_key"),
            "{}",
            err.message
        );
        let _third = streams.open("k2", &a).expect("3 of tenant a");
        let err = streams.open("k3", &a).expect_err("tenant a is full");
        assert!(
            err.message.contains("max_streams_per_tenant"),
            "{}",
            err.message
        );
        streams
            .open("k3", &b)
            .expect("another tenant has its own share");
        drop(first);
        assert_eq!(streams.total(), 2);
        streams.open("k1", &a).expect("k1 has a place again");
    }

    #[test]
    fn ingest_admission_bounds_bytes_and_follows_latency() {
        let admission = Arc::new(IngestAdmission::new(1000, Duration::from_millis(20)));
        // Bytes: the budget together; a body larger than the budget alone.
        let first = admission.admit(Some(600), 10_000).expect("fits");
        let err = admission
            .admit(Some(600), 10_000)
            .expect_err("over the bytes");
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            admission.in_flight.load(Ordering::Relaxed),
            1,
            "refusal gives back"
        );
        drop(first);
        let huge = admission
            .admit(None, 10_000)
            .expect("alone, the largest gets in");
        admission
            .admit(Some(1), 10_000)
            .expect_err("nothing beside it");
        drop(huge);
        assert_eq!(admission.in_flight_bytes(), 0);

        // Latency: windows of 100 answers in 50 ms, each answered in 50 ms (a standing
        // queue): the limit drops to twice what is answered in the target (2 x 2000/s x
        // 20 ms = 80).
        let admission = Arc::new(IngestAdmission::new(1000, Duration::from_millis(20)));
        let start = admission.window.lock().expect("lock").started;
        let mut at = Duration::ZERO;
        let mut feed = |count: u32, latency: Duration| {
            for i in 1..=count {
                admission.answered(latency, start + at + ADMISSION_WINDOW * i / count);
            }
            at += ADMISSION_WINDOW;
            admission.limit()
        };
        assert_eq!(feed(100, Duration::from_millis(50)), 80);
        // A stall (10 answers in a window) counts at the recent rate (2000 x 1/4 = 500/s),
        // not at its own: 2 x 500/s x 20 ms = 20.
        assert_eq!(feed(10, Duration::from_millis(50)), 20);
        // Sustained, the recent rate falls to the real one: the floor.
        for _ in 0..20 {
            feed(10, Duration::from_millis(50));
        }
        assert_eq!(admission.limit(), MIN_INGEST_CONCURRENCY);
        // Between half the target and the target: it holds.
        assert_eq!(feed(100, Duration::from_millis(15)), MIN_INGEST_CONCURRENCY);
        // Fast again: it doubles per window up to the ceiling.
        assert_eq!(
            feed(100, Duration::from_millis(2)),
            2 * MIN_INGEST_CONCURRENCY
        );
        for _ in 0..8 {
            feed(100, Duration::from_millis(2));
        }
        assert_eq!(admission.limit(), MAX_INGEST_CONCURRENCY);
        let admission = Arc::new(IngestAdmission::new(1000, Duration::from_millis(20)));

        // At the limit, one more is refused at once.
        admission.limit.store(2, Ordering::Relaxed);
        let _a = admission.admit(Some(1), 10).expect("1");
        let _b = admission.admit(Some(1), 10).expect("2");
        let err = admission.admit(Some(1), 10).expect_err("over the count");
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tenant_waits_for_its_own_jobs_not_for_the_others() {
        let pool = Arc::new(BlockingPool::new(4, 2));
        let (busy, quiet) = (tenant("busy"), tenant("quiet"));
        let release = Arc::new(std::sync::Barrier::new(3));
        let mut held = Vec::new();
        for _ in 0..2 {
            let (pool, busy, release) = (Arc::clone(&pool), busy.clone(), Arc::clone(&release));
            held.push(tokio::spawn(async move {
                pool.run(Some(&busy), move || {
                    release.wait();
                    Ok(())
                })
                .await
            }));
        }
        // Wait until both of the busy tenant's jobs hold their threads.
        while pool.all.available_permits() > 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A third job of the busy tenant waits; the quiet tenant's runs at once.
        let third = {
            let (pool, busy) = (Arc::clone(&pool), busy.clone());
            tokio::spawn(async move { pool.run(Some(&busy), || Ok(())).await })
        };
        tokio::time::timeout(Duration::from_secs(5), pool.run(Some(&quiet), || Ok(())))
            .await
            .expect("the quiet tenant is not held up")
            .expect("ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "the busy tenant is over its share");
        release.wait();
        for job in held {
            job.await.expect("joined").expect("ran");
        }
        third.await.expect("joined").expect("ran");
        assert!(
            pool.tenants.lock().expect("lock").is_empty(),
            "idle tenants are forgotten"
        );
    }
}
