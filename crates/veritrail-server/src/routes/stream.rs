//! `GET /api/v1/events/stream`, the live tail: the tenant's records that match the search
//! filters, as Server-Sent Events, in seq order, as they become searchable.
//!
//! Each SSE event's `id` is the record's seq and its `data` the record's JSON (as search
//! returns it). A client that reconnects with `Last-Event-ID: <seq>` gets exactly the
//! matching records after that seq, none twice and none missing, including those appended
//! while it was away: the stream is a sequence of ascending search pages with `after` set
//! to the last seq sent, which is exact under concurrent ingest. Without `Last-Event-ID` it
//! starts with the records appended after the request. A page comes as soon as the index
//! holds it (at most `search.commit_interval_ms` after the acknowledgement, normally);
//! between records a heartbeat comment every 15 s keeps idle connections open through
//! proxies. The stream ends when the server shuts down (clients reconnect), when the key it
//! was opened with is revoked (or the session signs out or expires) — at once, through
//! [`crate::control::ControlPlane::access_changes`] — and when its client stops reading
//! (see [`crate::conn`]). Each stream holds one of its key's and tenant's stream places
//! ([`crate::limits::Streams`]) while it is open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use veritrail_api::{ErrorBody, SearchParams};
use veritrail_core::event::TenantId;
use veritrail_search::{Order, Query};

use super::ApiQuery;
use super::events::{Filters, search_error, write_indexed_record};
use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::limits::StreamPermit;

/// Records read per step.
const PAGE: usize = 200;
/// Time between heartbeats on an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Live tail of a tenant's matching events.
#[utoipa::path(
    get,
    path = "/api/v1/events/stream",
    tag = "events",
    params(
        SearchParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this seq (the `id` of the last event received)."),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: one event per matching record, its `id:` line the record's seq and its `data:` line the record as a JSON object (the schema here is that of each event's data), the same object search returns in `events`; a `: heartbeat` comment every 15 s.", content_type = "text/event-stream", body = Object, example = json!("id: 41\ndata: {\"seq\":41,\"type\":\"user.login\",\"tenant\":\"acme\"}\n\n")),
        (status = 400, description = "An invalid filter, a `cursor`, `order` or `limit` (a stream has none), or a `Last-Event-ID` that is not a seq (`invalid_parameter`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 429, description = "The key (or its tenant) has as many exports and live tails open as it may (`rate_limited`); see Retry-After.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    for (name, given) in [
        ("cursor", params.cursor.is_some()),
        ("order", params.order.is_some()),
        ("limit", params.limit.is_some()),
    ] {
        if given {
            return Err(ApiError::invalid_parameter(
                name,
                "a stream has no pages: it sends every matching record in seq order (resume with Last-Event-ID)",
            ));
        }
    }
    let query = Filters::of_search(&params).to_query()?;
    let key = auth.reader()?;
    let permit = state.streams().open(&key.key_id, &tenant)?;
    let (control_state, key_hash) = (state.clone(), key.key_hash);
    let access = Access {
        permit,
        allowed: Box::new(move || control_state.control().is_active(&key_hash)),
        ends_at: None,
    };
    let after = match headers.get("last-event-id") {
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            Some(text.trim().parse::<u64>().map_err(|_| {
                ApiError::invalid_parameter(
                    "Last-Event-ID",
                    format!("{text:?} is not a seq (the `id` of an event of this stream)"),
                )
            })?)
        }
        // From now: the records appended after this request.
        None => state.ledger().size(&tenant)?.checked_sub(1),
    };
    Ok(tail(&state, tenant, query, after, access))
}

/// Who a stream is for: its place among its key's and tenant's streams (given back when it
/// ends), whether it may still go on, and when it must end at the latest.
pub(crate) struct Access {
    #[allow(
        dead_code,
        reason = "held, never read: dropping it with the stream gives the place back"
    )]
    pub(crate) permit: StreamPermit,
    /// Whether the key (or session) it was opened with may still read: checked at once
    /// whenever access is taken away anywhere.
    pub(crate) allowed: Box<dyn Fn() -> bool + Send + Sync>,
    pub(crate) ends_at: Option<tokio::time::Instant>,
}

/// The Server-Sent Events of `tenant`'s records matching `query` after seq `after` (also
/// the Activity page's live mode).
pub(crate) fn tail(
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
                Err(err) => {
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
                    .search(&tenant, &query, Order::Asc, PAGE, after)
                    .map_err(search_error)?;
                let mut records = Vec::with_capacity(page.seqs.len());
                for seq in page.seqs {
                    let mut json = Vec::with_capacity(768);
                    write_indexed_record(state.ledger(), &tenant, seq, &mut json)?;
                    records.push((seq, String::from_utf8(json).map_err(ApiError::internal)?));
                }
                Ok(records)
            })
            .await?;
        if let Some((last, _)) = records.last() {
            self.after = Some(*last);
        }
        let found = !records.is_empty();
        self.ready.extend(records);
        Ok(found)
    }
}
