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
//! - [`IngestAdmission`]: ingest bodies in flight (being read, parsed, or waiting for their
//!   commit), at most `limits.max_ingest_bytes_in_flight` together, counted by their
//!   `Content-Length` before a byte of the body is read. One more is a 503 `overloaded`
//!   with `Retry-After` at once: under load beyond what the server can commit, the excess
//!   is refused for almost nothing, and what is taken in is answered in time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use tokio::sync::Semaphore;
use veritrail_api::error_codes;
use veritrail_core::event::TenantId;

use crate::error::ApiError;

/// Ingest bodies in flight, by their size (see the module doc). Counted in KiB.
#[derive(Debug)]
pub struct IngestAdmission {
    budget_kib: u32,
    permits: Arc<Semaphore>,
}

/// One admitted ingest's share of the budget, given back when it is answered.
#[derive(Debug)]
pub struct IngestPermit {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl IngestAdmission {
    pub fn new(budget_bytes: usize) -> Self {
        let budget_kib = u32::try_from(budget_bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            budget_kib,
            permits: Arc::new(Semaphore::new(budget_kib as usize)),
        }
    }

    /// Admits a body of `content_length` bytes (unknown: `max_body` bytes; more than the
    /// whole budget: the whole budget, so that the largest body gets in when nothing else
    /// is in flight), or refuses it with 503 `overloaded`.
    pub fn admit(
        &self,
        content_length: Option<u64>,
        max_body: usize,
    ) -> Result<IngestPermit, ApiError> {
        let bytes = content_length.unwrap_or(max_body as u64);
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_kib);
        match Arc::clone(&self.permits).try_acquire_many_owned(kib) {
            Ok(permit) => Ok(IngestPermit { _permit: permit }),
            Err(_) => Err(ApiError::overloaded(
                "the server is taking in as many events as it can commit in time; nothing of this request was read or stored: retry after the Retry-After seconds (with the same event ids, safely)",
            )),
        }
    }

    /// Bytes of bodies in flight now.
    pub fn in_flight(&self) -> u64 {
        u64::from(self.budget_kib).saturating_sub(self.permits.available_permits() as u64) * 1024
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
