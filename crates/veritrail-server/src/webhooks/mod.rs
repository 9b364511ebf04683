//! Webhook notifications: subscriptions, and their durable at-least-once delivery from the
//! ledger.
//!
//! # Layout
//!
//! - [`store`]: `webhooks.redb` (subscriptions with their secrets, progress, attempts).
//! - [`message`]: which records a subscription sends and the messages they make.
//! - [`net`]: where deliveries may go (the SSRF guard) and the HTTP client.
//! - `worker`: one task per subscription, delivering in order with retries.
//!
//! # Delivery
//!
//! **Delivery is driven by the ledger**, not by ingest: each subscription's progress is a
//! point in its tenant's log, so events appended while a receiver is down, or while the
//! server is stopped or crashed, are delivered when it is back. Progress is written a few
//! times a second; after a crash the messages since the last write are sent again, with the
//! same `webhook-id`, which is a function of the subscription and the event's seq.

pub mod message;
pub mod net;
pub mod store;
pub(crate) mod worker;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use veritrail_core::event::TenantId;

use crate::AppState;
use crate::config;
use crate::error::ApiError;
use message::Message;
use net::Guard;
use store::{AttemptRow, Progress, Store, SubscriptionRow};
use worker::{Shared, Worker};

/// Attempts kept in memory while the store cannot take them (the newest).
const MAX_UNFLUSHED_ATTEMPTS: usize = 10_000;

/// How often progress and attempts are written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

type Key = (String, String);

/// Subscriptions and their delivery tasks.
pub struct WebhookService {
    store: Store,
    guard: Guard,
    client: reqwest::Client,
    attempts_kept: u64,
    subscriptions: Mutex<HashMap<Key, Entry>>,
    unflushed: Mutex<Unflushed>,
    started: AtomicBool,
    /// Attempts that got a 2xx, and those that did not (metrics).
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService").finish_non_exhaustive()
    }
}

struct Entry {
    shared: Arc<Shared>,
    /// The redelivery queue's receiving end, until the task starts.
    waiting: Option<mpsc::Receiver<worker::Redelivery>>,
    task: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
struct Unflushed {
    progress: HashMap<Key, Progress>,
    attempts: Vec<(Key, AttemptRow)>,
}

impl WebhookService {
    /// Opens `webhooks.redb` in `dir` and loads the subscriptions (their tasks start with
    /// [`WebhookService::start`]).
    pub fn open(dir: &Path, config: &config::Webhooks) -> anyhow::Result<WebhookService> {
        let store = Store::open(dir)?;
        let guard = Guard::new(&config.allow_networks).map_err(anyhow::Error::msg)?;
        let client = net::client(&guard, config.attempt_timeout())?;
        let service = WebhookService {
            store,
            guard,
            client,
            attempts_kept: config.attempts_kept,
            subscriptions: Mutex::new(HashMap::new()),
            unflushed: Mutex::new(Unflushed::default()),
            started: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        };
        for (row, progress) in service.store.all()? {
            service.register(row, progress);
        }
        Ok(service)
    }

    pub(crate) fn guard(&self) -> &Guard {
        &self.guard
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn register(&self, row: SubscriptionRow, progress: Progress) -> Arc<Shared> {
        let key = (row.tenant.clone(), row.id.clone());
        let (redeliver, waiting) = mpsc::channel(worker::REDELIVERY_QUEUE);
        let shared = Arc::new(Shared {
            row: watch::Sender::new(Arc::new(row)),
            progress: Mutex::new(progress),
            redeliver,
        });
        self.lock().insert(
            key,
            Entry {
                shared: Arc::clone(&shared),
                waiting: Some(waiting),
                task: None,
            },
        );
        shared
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.subscriptions
            .lock()
            .expect("subscriptions lock poisoned")
    }

    /// Starts every subscription's task, and the flusher (inside the server's runtime).
    pub fn start(&self, state: &AppState) {
        self.started.store(true, Ordering::SeqCst);
        let keys: Vec<Key> = self.lock().keys().cloned().collect();
        for key in keys {
            self.spawn(state, &key);
        }
        let flush_state = state.clone();
        tokio::spawn(async move {
            let mut shutdown = flush_state.shutdown_signal();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(FLUSH_INTERVAL) => {}
                    _ = shutdown.changed() => {}
                }
                let service_state = flush_state.clone();
                let flushed =
                    tokio::task::spawn_blocking(move || service_state.webhooks().flush()).await;
                if let Ok(Err(error)) = flushed {
                    tracing::error!(%error, "webhook progress could not be written");
                }
                if *shutdown.borrow() {
                    return;
                }
            }
        });
    }

    fn spawn(&self, state: &AppState, key: &Key) {
        let mut subscriptions = self.lock();
        let Some(entry) = subscriptions.get_mut(key) else {
            return;
        };
        let Some(redeliveries) = entry.waiting.take() else {
            return;
        };
        let Ok(tenant) = TenantId::parse(&key.0) else {
            tracing::error!(tenant = %key.0, "webhook subscription of an invalid tenant id");
            return;
        };
        let worker = Worker {
            state: state.clone(),
            tenant,
            shared: Arc::clone(&entry.shared),
            row: entry.shared.row.subscribe(),
            redeliveries,
            pending: None,
        };
        entry.task = Some(tokio::spawn(worker.run()).abort_handle());
    }

    /// The tenant's subscriptions, by id, with their progress.
    pub fn list(&self, tenant: &str) -> Vec<(Arc<SubscriptionRow>, Progress)> {
        let mut list: Vec<_> = self
            .lock()
            .iter()
            .filter(|((owner, _), _)| owner == tenant)
            .map(|(_, entry)| snapshot(&entry.shared))
            .collect();
        list.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        list
    }

    /// One subscription of the tenant, with its progress.
    pub fn get(&self, tenant: &str, id: &str) -> Option<(Arc<SubscriptionRow>, Progress)> {
        self.lock()
            .get(&(tenant.to_owned(), id.to_owned()))
            .map(|entry| snapshot(&entry.shared))
    }

    fn shared(&self, tenant: &str, id: &str) -> Option<Arc<Shared>> {
        self.lock()
            .get(&(tenant.to_owned(), id.to_owned()))
            .map(|entry| Arc::clone(&entry.shared))
    }

    /// Stores a new subscription (durably) and starts delivering.
    pub fn create(
        &self,
        state: &AppState,
        row: SubscriptionRow,
        progress: Progress,
    ) -> Result<(), ApiError> {
        self.store
            .put(&row, Some(&progress))
            .map_err(ApiError::unavailable)?;
        let key = (row.tenant.clone(), row.id.clone());
        self.register(row, progress);
        if self.started.load(Ordering::SeqCst) {
            self.spawn(state, &key);
        }
        Ok(())
    }

    /// Stores a changed subscription (durably) and hands it to its task.
    pub fn update(&self, row: SubscriptionRow) -> Result<(), ApiError> {
        let shared = self
            .shared(&row.tenant, &row.id)
            .ok_or_else(|| ApiError::not_found(format!("no webhook subscription {}", row.id)))?;
        self.store.put(&row, None).map_err(ApiError::unavailable)?;
        shared.row.send_replace(Arc::new(row));
        Ok(())
    }

    /// Removes a subscription: its task stops, its progress and attempts are deleted.
    pub fn delete(&self, tenant: &str, id: &str) -> Result<(), ApiError> {
        let key = (tenant.to_owned(), id.to_owned());
        self.store
            .delete(tenant, id)
            .map_err(ApiError::unavailable)?;
        if let Some(entry) = self.lock().remove(&key)
            && let Some(task) = entry.task
        {
            task.abort();
        }
        let mut unflushed = self.unflushed.lock().expect("unflushed lock poisoned");
        unflushed.progress.remove(&key);
        unflushed.attempts.retain(|(owner, _)| *owner != key);
        Ok(())
    }

    /// Disables a subscription, with the reason, and writes `veritrail.webhook.disabled`
    /// to the tenant's log (the service is the actor).
    pub async fn disable(
        &self,
        state: &AppState,
        tenant: &str,
        id: &str,
        reason: &str,
    ) -> Result<(), ApiError> {
        let Some((row, _)) = self.get(tenant, id) else {
            return Ok(());
        };
        let mut row = (*row).clone();
        row.enabled = false;
        row.disabled_reason = Some(reason.to_owned());
        row.updated_at = crate::clock::now_rfc3339();
        self.update(row)?;
        tracing::warn!(subscription = %id, tenant, reason, "webhook subscription disabled");
        let tenant_id = TenantId::parse(tenant).map_err(ApiError::internal)?;
        let event = crate::audit::webhook_changed(
            None,
            crate::audit::types::WEBHOOK_DISABLED,
            id,
            Some(reason),
        )?;
        crate::audit::record(state, &tenant_id, event).await
    }

    /// Queues a redelivery (sent after the message being sent now); 429 when
    /// [`worker::REDELIVERY_QUEUE`] of them wait already.
    pub(crate) fn redeliver(
        &self,
        tenant: &str,
        id: &str,
        redelivery: worker::Redelivery,
    ) -> Result<(), ApiError> {
        let shared = self
            .shared(tenant, id)
            .ok_or_else(|| ApiError::not_found(format!("no webhook subscription {id}")))?;
        shared.redeliver.try_send(redelivery).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => {
                let mut err = ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    veritrail_api::error_codes::RATE_LIMITED,
                    format!(
                        "{} redeliveries of this subscription are waiting already; ask again once they are sent",
                        worker::REDELIVERY_QUEUE
                    ),
                );
                err.retry_after = Some(5);
                err
            }
            mpsc::error::TrySendError::Closed(_) => {
                ApiError::unavailable("the subscription's delivery task has stopped")
            }
        })
    }

    /// Sends one message now, once, and records the attempt.
    pub async fn ping(
        &self,
        state: &AppState,
        tenant: &str,
        id: &str,
        message: &Message,
    ) -> Result<AttemptRow, ApiError> {
        let shared = self
            .shared(tenant, id)
            .ok_or_else(|| ApiError::not_found(format!("no webhook subscription {id}")))?;
        let row = shared.row.borrow().clone();
        let result = worker::attempt(state, &shared, &row, message, "ping").await;
        self.mark_attempt(tenant, id, result.row.clone());
        Ok(result.row)
    }

    /// Attempts of a subscription, newest first: those not yet written, then the stored.
    pub fn attempts(
        &self,
        tenant: &str,
        id: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<AttemptRow>, ApiError> {
        let key = (tenant.to_owned(), id.to_owned());
        let mut rows: Vec<AttemptRow> = {
            let unflushed = self.unflushed.lock().expect("unflushed lock poisoned");
            unflushed
                .attempts
                .iter()
                .filter(|(owner, row)| *owner == key && row.id < before)
                .map(|(_, row)| row.clone())
                .collect()
        };
        rows.extend(
            self.store
                .attempts(tenant, id, before, limit)
                .map_err(ApiError::unavailable)?,
        );
        rows.sort_by_key(|row| std::cmp::Reverse(row.id));
        rows.dedup_by_key(|row| row.id);
        rows.truncate(limit);
        Ok(rows)
    }

    pub(crate) fn mark_progress(&self, tenant: &str, id: &str, progress: Progress) {
        self.unflushed
            .lock()
            .expect("unflushed lock poisoned")
            .progress
            .insert((tenant.to_owned(), id.to_owned()), progress);
    }

    pub(crate) fn mark_attempt(&self, tenant: &str, id: &str, attempt: AttemptRow) {
        let counter = if attempt.delivered {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.unflushed
            .lock()
            .expect("unflushed lock poisoned")
            .attempts
            .push(((tenant.to_owned(), id.to_owned()), attempt));
    }

    /// Writes the progress and attempts gathered since the last flush, durably.
    pub fn flush(&self) -> Result<(), store::StoreError> {
        let taken = std::mem::take(&mut *self.unflushed.lock().expect("unflushed lock poisoned"));
        if taken.progress.is_empty() && taken.attempts.is_empty() {
            return Ok(());
        }
        let progress: Vec<_> = taken.progress.into_iter().collect();
        let result = self
            .store
            .flush(&progress, &taken.attempts, self.attempts_kept);
        if result.is_err() {
            // Keep them for the next flush (newer progress wins).
            let mut unflushed = self.unflushed.lock().expect("unflushed lock poisoned");
            for (key, at) in progress {
                unflushed.progress.entry(key).or_insert(at);
            }
            let mut attempts = taken.attempts;
            attempts.append(&mut unflushed.attempts);
            // While the store fails, only the newest attempts are kept.
            let excess = attempts.len().saturating_sub(MAX_UNFLUSHED_ATTEMPTS);
            attempts.drain(..excess);
            unflushed.attempts = attempts;
        }
        result
    }
}

/// What `/metrics` shows of webhooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookStats {
    pub subscriptions: u64,
    pub disabled: u64,
    /// Over enabled subscriptions: records of their tenants' logs past their progress (an
    /// upper bound of the messages waiting, as the filters skip some).
    pub backlog: u64,
    pub delivered: u64,
    pub failed: u64,
}

impl WebhookService {
    /// Counts for `/metrics`.
    pub fn stats(&self, state: &AppState) -> WebhookStats {
        let sizes: HashMap<TenantId, u64> = state.ledger().committed_sizes().into_iter().collect();
        let mut stats = WebhookStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            ..WebhookStats::default()
        };
        for entry in self.lock().values() {
            let (row, progress) = snapshot(&entry.shared);
            stats.subscriptions += 1;
            if !row.enabled {
                stats.disabled += 1;
                continue;
            }
            let size = TenantId::parse(&row.tenant)
                .ok()
                .and_then(|tenant| sizes.get(&tenant).copied())
                .unwrap_or(0);
            stats.backlog += size.saturating_sub(progress.unit_start);
        }
        stats
    }
}

fn snapshot(shared: &Shared) -> (Arc<SubscriptionRow>, Progress) {
    (
        shared.row.borrow().clone(),
        *shared.progress.lock().expect("progress lock poisoned"),
    )
}
