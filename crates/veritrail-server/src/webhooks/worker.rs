//! One task per subscription: computes the next messages from the ledger, delivers them in
//! order with retries, and records progress and attempts.
//!
//! **Ordering:** a subscription's messages are delivered one at a time, in the seq order of
//! their (first) events; the next is not sent before the previous one got a 2xx. A receiver
//! that fails therefore holds up its own subscription only, never ingest or other
//! subscriptions. Redeliveries asked for through the API are sent between two messages.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use veritrail_core::event::TenantId;
use veritrail_core::webhook::{WebhookSecret, signature_header};

use super::message::{Grouping, Groups, Matcher, Message, Shape};
use super::net;
use super::store::{AttemptRow, Progress, SubscriptionRow};
use crate::AppState;
use crate::clock;
use crate::error::ApiError;

/// Records read per step.
const CHUNK: usize = 512;
/// How long after a grouping window ends it is closed (the events received in it are then
/// all in the ledger: see [`Worker::close_window`]).
const WINDOW_GRACE: Duration = Duration::from_millis(200);

/// What a subscription's task shares with the API.
#[derive(Debug)]
pub(super) struct Shared {
    pub row: watch::Sender<Arc<SubscriptionRow>>,
    pub progress: Mutex<Progress>,
    pub redeliver: mpsc::Sender<Redelivery>,
}

/// Most redeliveries that wait per subscription (the API answers 429 beyond): each is a
/// range of at most 10,000 seqs, whose messages the task computes when it sends them.
pub(crate) const REDELIVERY_QUEUE: usize = 16;

/// A redelivery asked for through the API: the messages of `from..=to`, or only the one
/// with id `only`.
#[derive(Debug, Clone)]
pub(crate) struct Redelivery {
    pub from: u64,
    pub to: u64,
    pub only: Option<String>,
}

/// What one attempt came to.
#[derive(Debug)]
pub(super) struct AttemptResult {
    pub row: AttemptRow,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
}

pub(super) struct Worker {
    pub state: AppState,
    pub tenant: TenantId,
    pub shared: Arc<Shared>,
    pub row: watch::Receiver<Arc<SubscriptionRow>>,
    pub redeliveries: mpsc::Receiver<Redelivery>,
    /// The redelivery taken from the queue and not sent yet (one at most: the queue is the
    /// bound).
    pub pending: Option<Redelivery>,
}

/// The next step of a subscription.
enum Next {
    /// Messages of the unit starting at the progress point, and where the unit ends.
    Unit { messages: Vec<Message>, end: u64 },
    /// Nothing new in the ledger.
    Idle,
    /// A grouping window is open until then (Unix nanoseconds).
    WindowOpen(i64),
    /// A grouping window has ended, but events received in it may still be on their way
    /// into the ledger.
    WindowEnded,
}

enum Delivery {
    Delivered,
    /// The subscription was disabled or changed, or the server is stopping.
    Interrupted,
}

impl Worker {
    pub(super) async fn run(mut self) {
        let mut shutdown = self.state.shutdown_signal();
        let mut commits = self.state.ledger().subscribe();
        let mut window_closable = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let row = self.row.borrow_and_update().clone();
            if !row.enabled {
                tokio::select! {
                    changed = self.row.changed() => if changed.is_err() { return },
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            if self.pending.is_none() {
                self.pending = self.redeliveries.try_recv().ok();
            }
            if let Some(redelivery) = self.pending.take() {
                self.redeliver(&row, redelivery).await;
                continue;
            }
            commits.borrow_and_update();
            let progress = *self.shared.progress.lock().expect("progress lock");
            let next = match self.next(&row, progress, window_closable).await {
                Ok(next) => next,
                Err(mut error) => {
                    error.report();
                    tracing::warn!(subscription = %row.id, error = %error.message, "webhook: cannot read the ledger; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            window_closable = false;
            match next {
                Next::Unit { messages, end } => {
                    let grouped = Grouping::parse(&row.grouping) != Ok(Grouping::EverySingle);
                    let mut done = true;
                    for (at, message) in messages.iter().enumerate().skip(to_usize(progress.skip)) {
                        if let Delivery::Interrupted = self.deliver(message, "delivery").await {
                            done = false;
                            break;
                        }
                        self.advance(|progress| {
                            if grouped {
                                progress.skip = at as u64 + 1;
                            } else {
                                progress.unit_start = message.seq + 1;
                                progress.skip = 0;
                            }
                        });
                        if self.row.has_changed().unwrap_or(true) {
                            done = false;
                            break;
                        }
                    }
                    if done {
                        self.advance(|progress| {
                            progress.unit_start = end;
                            progress.skip = 0;
                        });
                    } else if grouped && self.row.has_changed().unwrap_or(false) {
                        // New settings: the open window is computed and sent again whole.
                        self.advance(|progress| progress.skip = 0);
                    }
                }
                Next::Idle => {
                    tokio::select! {
                        _ = commits.changed() => {}
                        _ = self.row.changed() => {}
                        _ = shutdown.changed() => {}
                        Some(redelivery) = self.redeliveries.recv() => self.pending = Some(redelivery),
                    }
                }
                Next::WindowOpen(until) => {
                    let wait = Duration::from_nanos(
                        u64::try_from(until - clock::now().unix_nanos()).unwrap_or(0),
                    ) + WINDOW_GRACE;
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = self.row.changed() => {}
                        _ = shutdown.changed() => {}
                        Some(redelivery) = self.redeliveries.recv() => self.pending = Some(redelivery),
                    }
                }
                Next::WindowEnded => {
                    window_closable = self.close_window().await;
                    if !window_closable {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }

    /// Sends the messages of a redelivery, computed from the ledger now.
    async fn redeliver(&mut self, row: &Arc<SubscriptionRow>, redelivery: Redelivery) {
        let (state, tenant, work_row) = (self.state.clone(), self.tenant.clone(), Arc::clone(row));
        let messages = self
            .state
            .blocking(&self.tenant, move || {
                redelivery_messages(&state, &tenant, &work_row, &redelivery)
            })
            .await;
        let messages = match messages {
            Ok(messages) => messages,
            Err(mut error) => {
                error.report();
                tracing::warn!(subscription = %row.id, error = %error.message, "webhook: a redelivery could not be computed; it is dropped");
                return;
            }
        };
        for message in messages {
            if let Delivery::Interrupted = self.deliver(&message, "redelivery").await {
                break;
            }
        }
    }

    /// Waits until every event received before now is in the ledger: an empty append goes
    /// through the ledger's queue, so it returns after every batch sequenced before it has
    /// committed; batches sequenced after it are stamped later than now. Whether it worked.
    async fn close_window(&self) -> bool {
        self.state
            .ledger()
            .append(self.tenant.clone(), Vec::new())
            .await
            .is_ok()
    }

    /// Changes the progress, for the API and the next flush.
    fn advance(&self, change: impl FnOnce(&mut Progress)) {
        let progress = {
            let mut progress = self.shared.progress.lock().expect("progress lock");
            change(&mut progress);
            *progress
        };
        let row = self.row.borrow().clone();
        self.state
            .webhooks()
            .mark_progress(&row.tenant, &row.id, progress);
    }

    /// Computes the next unit from the ledger (off the async threads).
    async fn next(
        &self,
        row: &Arc<SubscriptionRow>,
        progress: Progress,
        window_closable: bool,
    ) -> Result<Next, ApiError> {
        let state = self.state.clone();
        let tenant = self.tenant.clone();
        let row = Arc::clone(row);
        tokio::task::spawn_blocking(move || {
            compute(&state, &tenant, &row, progress.unit_start, window_closable)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Delivers one message, retrying with backoff until a 2xx, or until the subscription
    /// is disabled or changed or the server stops.
    async fn deliver(&mut self, message: &Message, kind: &str) -> Delivery {
        let mut shutdown = self.state.shutdown_signal();
        let config = self.state.config().webhooks.clone();
        let mut retry: u32 = 0;
        loop {
            if *shutdown.borrow() {
                return Delivery::Interrupted;
            }
            let row = self.row.borrow().clone();
            if !row.enabled {
                return Delivery::Interrupted;
            }
            let result = attempt(&self.state, &self.shared, &row, message, kind).await;
            let status = result.row.status;
            self.state
                .webhooks()
                .mark_attempt(&row.tenant, &row.id, result.row);
            if matches!(status, Some(200..=299)) {
                self.advance(|progress| progress.failing_since = None);
                return Delivery::Delivered;
            }
            if status == Some(410) {
                self.disable(&row, "the receiver answered 410 Gone").await;
                return Delivery::Interrupted;
            }
            let now = clock::now().unix_nanos();
            let mut since = now;
            self.advance(|progress| since = *progress.failing_since.get_or_insert(now));
            let failing = Duration::from_nanos(u64::try_from(now - since).unwrap_or(0));
            if failing >= Duration::from_secs(config.disable_after_secs) {
                let reason = format!(
                    "every delivery attempt failed for {} seconds (webhooks.disable_after_secs)",
                    failing.as_secs()
                );
                self.disable(&row, &reason).await;
                return Delivery::Interrupted;
            }
            // A 429 or 503's Retry-After is honoured (up to an hour), even beyond
            // retry_max_ms.
            let wait = match result.retry_after {
                Some(wait) => wait.min(Duration::from_secs(3600)),
                None => backoff(&config, retry),
            };
            retry = retry.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return Delivery::Interrupted,
                _ = self.row.changed() => {
                    // Settings changed (a new URL or secret, or disabled): try again now.
                    if !self.row.borrow().enabled {
                        return Delivery::Interrupted;
                    }
                }
            }
        }
    }

    async fn disable(&self, row: &SubscriptionRow, reason: &str) {
        if let Err(mut error) = self
            .state
            .webhooks()
            .disable(&self.state, &row.tenant, &row.id, reason)
            .await
        {
            error.report();
            tracing::error!(subscription = %row.id, error = %error.message, "webhook: cannot disable the subscription");
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The wait before retry number `retry` (0 for the first): `retry_initial_ms` doubled each
/// time up to `retry_max_ms`, drawn at random between half and all of it.
pub(crate) fn backoff(config: &crate::config::Webhooks, retry: u32) -> Duration {
    let full = config
        .retry_initial_ms
        .saturating_mul(1u64 << retry.min(40))
        .min(config.retry_max_ms);
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let half = full / 2;
    let jitter = if half == 0 {
        0
    } else {
        u64::from_le_bytes(bytes) % (half + 1)
    };
    Duration::from_millis(half + jitter)
}

/// The filter and grouping of a stored subscription, checked when it was created: one that
/// no longer parses is a fault of the server's (500), not the caller's.
fn stored_rules(row: &SubscriptionRow) -> Result<(Matcher, Grouping), ApiError> {
    let matcher = Matcher::new(&row.filter).map_err(|err| {
        ApiError::internal(format!("subscription {}: its stored filter: {err}", row.id))
    })?;
    let grouping = Grouping::parse(&row.grouping).map_err(|err| {
        ApiError::internal(format!(
            "subscription {}: its stored grouping: {err}",
            row.id
        ))
    })?;
    Ok((matcher, grouping))
}

/// Computes the unit that starts at `from`.
fn compute(
    state: &AppState,
    tenant: &TenantId,
    row: &SubscriptionRow,
    from: u64,
    window_closable: bool,
) -> Result<Next, ApiError> {
    let (matcher, grouping) = stored_rules(row)?;
    let shape = Shape::of(row);
    let ledger = state.ledger();
    let size = ledger.size(tenant)?;
    if from >= size {
        return Ok(Next::Idle);
    }
    let read = |at: u64| ledger.records(tenant, at, CHUNK);
    if grouping == Grouping::EverySingle {
        let read = read(from)?;
        let end = read.end;
        let messages = read
            .records
            .iter()
            .filter(|record| matcher.matches(record))
            .map(|record| shape.message(record, 1, None))
            .collect();
        return Ok(Next::Unit { messages, end });
    }
    // A window: from its first matching event to the first event received after it ends.
    let mut at = from;
    let mut window: Option<(i64, i64)> = None;
    let mut groups = Groups::default();
    while at < size {
        let read = read(at)?;
        if read.end <= at {
            break;
        }
        // Removed records are left out; the unit still ends after them.
        let read_end = read.end;
        for record in read.records {
            let seq = record.seq();
            at = seq + 1;
            if let Some((_, end)) = window
                && record.received_at().unix_nanos() >= end
            {
                return Ok(Next::Unit {
                    messages: groups.messages(&shape),
                    end: seq,
                });
            }
            if !matcher.matches(&record) {
                continue;
            }
            if window.is_none() {
                window = grouping.window_of(&record);
            }
            groups.add(record);
        }
        at = at.max(read_end);
    }
    match window {
        // No matching event: skip the records read.
        None => Ok(Next::Unit {
            messages: Vec::new(),
            end: at,
        }),
        Some((_, end)) if clock::now().unix_nanos() < end => Ok(Next::WindowOpen(end)),
        Some(_) if !window_closable => Ok(Next::WindowEnded),
        Some(_) => Ok(Next::Unit {
            messages: groups.messages(&shape),
            end: at,
        }),
    }
}

/// The messages of the grouping window that holds the matching record `seq`, and the
/// first seq after the window: the window's records are found by their received time,
/// which grows with seq.
pub(crate) fn window_messages(
    state: &AppState,
    tenant: &TenantId,
    row: &SubscriptionRow,
    seq: u64,
) -> Result<(Vec<Message>, u64), ApiError> {
    let (matcher, grouping) = stored_rules(row)?;
    let shape = Shape::of(row);
    let ledger = state.ledger();
    let size = ledger.size(tenant)?;
    let Some(record) = ledger.kept_record(tenant, seq)? else {
        if ledger.removed_by(tenant, seq).is_some() {
            // Removed since it was read: nothing of it goes out.
            return Ok((Vec::new(), seq + 1));
        }
        return Err(ApiError::internal(format!(
            "the log has no record {seq} below its size"
        )));
    };
    let Some((start, end)) = grouping.window_of(&record) else {
        return Ok((vec![shape.message(&record, 1, None)], seq + 1));
    };
    // A seq in `lo..=hi` such that every kept record of `lo..hi` before it was received
    // before `time` and every one from it on at or after `time`. Removed records are not
    // read: a probe looks at the first kept record at or after its seq.
    let first_at = |mut lo: u64, mut hi: u64, time: i64| -> Result<u64, ApiError> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let probe = ledger.records(tenant, mid, 1)?;
            match probe.records.first() {
                Some(kept) if kept.seq() < hi && kept.received_at().unix_nanos() < time => {
                    lo = kept.seq() + 1;
                }
                _ => hi = mid,
            }
        }
        Ok(lo)
    };
    let lo = first_at(0, seq, start)?;
    let hi = first_at(seq, size, end)?;
    let mut groups = Groups::default();
    let mut at = lo;
    while at < hi {
        let limit = usize::try_from((hi - at).min(CHUNK as u64)).unwrap_or(CHUNK);
        let read = ledger.records(tenant, at, limit)?;
        if read.end <= at {
            break;
        }
        at = read.end;
        for record in read.records {
            if matcher.matches(&record) {
                groups.add(record);
            }
        }
    }
    Ok((groups.messages(&shape), hi))
}

/// Sends one message once: signs it with every live secret, posts it, and returns the
/// attempt (not yet recorded).
pub(super) async fn attempt(
    state: &AppState,
    shared: &Shared,
    row: &SubscriptionRow,
    message: &Message,
    kind: &str,
) -> AttemptResult {
    let service = state.webhooks();
    let id = {
        let mut progress = shared.progress.lock().expect("progress lock");
        let id = progress.next_attempt.max(1);
        progress.next_attempt = id + 1;
        id
    };
    let attempted_at = clock::now_rfc3339();
    let started = Instant::now();
    let outcome = send(service, row, message).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (status, error, retry_after) = match outcome {
        Ok((status, retry_after)) => {
            let error = (!(200..300).contains(&status)).then(|| match status {
                410 => {
                    "410 Gone: the receiver asked to stop; the subscription is disabled".to_owned()
                }
                _ => format!("the receiver answered {status}"),
            });
            (Some(status), error, retry_after)
        }
        Err(error) => (None, Some(error), None),
    };
    AttemptResult {
        row: AttemptRow {
            id,
            message_id: message.id.clone(),
            kind: kind.to_owned(),
            seq: (kind != "ping").then_some(message.seq),
            occurrence: message.occurrence,
            attempted_at,
            status,
            latency_ms,
            error,
            delivered: matches!(status, Some(200..=299)),
        },
        retry_after,
    }
}

/// Posts `message` to the subscription's URL: the status and a 429/503's `Retry-After`, or
/// why there was no answer.
async fn send(
    service: &super::WebhookService,
    row: &SubscriptionRow,
    message: &Message,
) -> Result<(u16, Option<Duration>), String> {
    let url = net::parse_url(&row.url).map_err(|err| format!("{err:?}"))?;
    net::check_before_send(service.guard(), &url)?;
    let now = clock::now().unix_nanos().div_euclid(1_000_000_000);
    let secrets = live_secrets(row, now)?;
    let secrets: Vec<&WebhookSecret> = secrets.iter().collect();
    let signature = signature_header(&secrets, &message.id, now, &message.body);
    let response = service
        .client()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &message.id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(message.body.clone())
        .send()
        .await
        .map_err(|err| describe(&err))?;
    let status = response.status().as_u16();
    let retry_after = if matches!(status, 429 | 503) {
        response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    } else {
        None
    };
    // The body is not read: close the exchange (a small body is drained by the pool).
    drop(response);
    Ok((status, retry_after))
}

/// The secrets that sign now: the current one and rotated-out ones not yet expired.
pub(crate) fn live_secrets(row: &SubscriptionRow, now: i64) -> Result<Vec<WebhookSecret>, String> {
    row.secrets
        .iter()
        .filter(|secret| secret.expires_at.is_none_or(|at| at > now))
        .map(|secret| WebhookSecret::parse(&secret.secret).map_err(|err| err.to_string()))
        .collect()
}

/// A client error with its causes, for the attempt log.
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "no answer within webhooks.attempt_timeout_ms".to_owned()
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The messages of a redelivery: those of `from..=to` (or the one with id `only`), as the
/// subscription makes them now.
pub(crate) fn redelivery_messages(
    state: &AppState,
    tenant: &TenantId,
    row: &SubscriptionRow,
    redelivery: &Redelivery,
) -> Result<Vec<Message>, ApiError> {
    let (from, to, only) = (redelivery.from, redelivery.to, redelivery.only.as_deref());
    let (matcher, grouping) = stored_rules(row)?;
    let shape = Shape::of(row);
    let mut messages = Vec::new();
    let mut at = from;
    while at <= to {
        let limit = usize::try_from((to - at + 1).min(512)).unwrap_or(512);
        let read = state.ledger().records(tenant, at, limit)?;
        if read.end <= at {
            break;
        }
        let mut next = read.end;
        for record in &read.records {
            if record.seq() < at || !matcher.matches(record) {
                continue;
            }
            match grouping {
                Grouping::EverySingle => {
                    let message = shape.message(record, 1, None);
                    if only.is_none_or(|id| id == message.id) {
                        messages.push(message);
                    }
                }
                // The groups of the record's window, as they were sent: those whose first
                // event is in the range.
                Grouping::Window(_) => {
                    let (window, after) = window_messages(state, tenant, row, record.seq())?;
                    messages.extend(window.into_iter().filter(|message| {
                        (from..=to).contains(&message.seq) && only.is_none_or(|id| id == message.id)
                    }));
                    next = after;
                    break;
                }
            }
        }
        at = next;
    }
    Ok(messages)
}
