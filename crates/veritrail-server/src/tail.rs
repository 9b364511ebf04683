//! The live tail: a tenant's records matching a query, as Server-Sent Events, in seq order,
//! as they become searchable (the API's `/api/v1/events/stream` and the Activity page's live
//! mode).
//!
//! Each SSE event's `id` is the record's seq and its `data` the record's JSON (as search
//! returns it). The stream is a sequence of ascending search pages with `after` set to the
//! last seq sent, which is exact under concurrent ingest: a client that resumes after a seq
//! gets exactly the matching records after it, none twice and none missing. A page comes as
//! soon as the index holds it; between records a heartbeat comment every 15 s keeps idle
//! connections open through proxies. The stream ends when the server shuts down, when the
//! access it was opened with is taken away (a revoked key, a signed-out or expired session)
//! — at once, through [`crate::control::ControlPlane::access_changes`] — and when its client
//! stops reading (see [`crate::conn`]). Each stream holds its place among its key's and
//! tenant's streams ([`crate::limits::Streams`]) while it is open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use veritrail_core::event::TenantId;
use veritrail_search::{Order, Query};

use crate::AppState;
use crate::error::ApiError;
use crate::limits::StreamPermit;
use crate::records::write_indexed_record;

/// Records read per step.
const PAGE: usize = 200;

/// Time between heartbeats on an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Who a stream is for: its place among its key's and tenant's streams (given back when it
/// ends), whether it may still go on, and when it must end at the latest.
pub struct Access {
    #[allow(
        dead_code,
        reason = "held, never read: dropping it with the stream gives the place back"
    )]
    pub permit: StreamPermit,
    /// Whether the key (or session) it was opened with may still read: checked at once
    /// whenever access is taken away anywhere.
    pub allowed: Box<dyn Fn() -> bool + Send + Sync>,
    pub ends_at: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("ends_at", &self.ends_at)
            .finish_non_exhaustive()
    }
}

/// The Server-Sent Events of `tenant`'s records matching `query` after seq `after` (also
/// the Activity page's live mode).
pub fn tail(
    state: &AppState,
    tenant: TenantId,
    query: Query,
    after: Option<u64>,
    access: Access,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let tail = Tail {
        state: state.clone(),
        tenant,
        query: Arc::new(query),
        after,
        ready: VecDeque::new(),
        progress: state.indexer().progress(),
        shutdown: state.shutdown_signal(),
        access_changes: state.control().access_changes(),
        access,
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        tail.next().await.map(|event| (Ok(event), tail))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

/// The state of one stream.
struct Tail {
    state: AppState,
    tenant: TenantId,
    query: Arc<Query>,
    /// The last seq sent (or to start after).
    after: Option<u64>,
    /// Records read and not sent yet: `(seq, JSON)`.
    ready: VecDeque<(u64, String)>,
    progress: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    access_changes: tokio::sync::watch::Receiver<u64>,
    access: Access,
}

impl Tail {
    /// The next event; `None` ends the stream (shutdown, access taken away, expiry, or the
    /// index failed).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.access_changes.has_changed().unwrap_or(true) {
                self.access_changes.borrow_and_update();
                if !(self.access.allowed)() {
                    tracing::debug!(tenant = %self.tenant, "live tail ended: its access was taken away");
                    return None;
                }
            }
            if self
                .access
                .ends_at
                .is_some_and(|at| tokio::time::Instant::now() >= at)
            {
                return None;
            }
            if let Some((seq, json)) = self.ready.pop_front() {
                return Some(Event::default().id(seq.to_string()).data(json));
            }
            if *self.shutdown.borrow() {
                return None;
            }
            // Mark the index's progress seen before reading, so a commit in between wakes
            // the wait below.
            self.progress.borrow_and_update();
            match self.read_page().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(mut err) => {
                    err.report();
                    tracing::warn!(error = %err.message, "live tail ended: the search failed");
                    return None;
                }
            }
            let ends = self.access.ends_at;
            tokio::select! {
                changed = self.progress.changed() => if changed.is_err() { return None },
                _ = self.shutdown.changed() => return None,
                changed = self.access_changes.changed() => {
                    if changed.is_err() || !(self.access.allowed)() {
                        return None;
                    }
                }
                () = async {
                    match ends {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => return None,
            }
        }
    }

    /// Reads the next page of matching records after `after`; whether it found any.
    async fn read_page(&mut self) -> Result<bool, ApiError> {
        let state = self.state.clone();
        let tenant = self.tenant.clone();
        let query = Arc::clone(&self.query);
        let after = self.after;
        let records = state
            .clone()
            .blocking(&tenant.clone(), move || {
                let page = state
                    .search()
                    .search(&tenant, &query, Order::Asc, PAGE, after)?;
                let mut records = Vec::with_capacity(page.seqs.len());
                for &seq in &page.seqs {
                    let mut json = Vec::with_capacity(768);
                    if write_indexed_record(state.ledger(), &tenant, seq, &mut json)? {
                        records.push((seq, String::from_utf8(json).map_err(ApiError::internal)?));
                    }
                }
                Ok((records, page.seqs.last().copied()))
            })
            .await?;
        let (records, last_seen) = records;
        if let Some(last) = last_seen {
            self.after = Some(last);
        }
        self.ready.extend(records);
        Ok(last_seen.is_some())
    }
}
