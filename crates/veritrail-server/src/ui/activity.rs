//! The Activity page: its filters (all in the URL), the table of events with operations
//! folded by correlation id, the filter choices, and live mode.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use veritrail_api::SearchParams;
use veritrail_core::event::TenantId;
use veritrail_search::{Order, Query};

use super::histogram::histogram;
use super::page::{UNREADABLE, page};
use super::session::{Session, open_session_by_id};
use crate::AppState;
use crate::control::Principal;
use crate::error::ApiError;

/// Rows on the Activity page.
pub(super) const ROWS: usize = 50;

/// Most choices a filter's list offers (categories, type suggestions).
pub(super) const MAX_CHOICES: usize = 500;

#[derive(Template)]
#[template(path = "activity.html")]
pub(super) struct ActivityPage<'a> {
    tenant: &'a str,
    role: &'a str,
    csrf: &'a str,
    filters: &'a ActivityParams,
    /// What was wrong with the filters (nothing is shown then).
    problem: Option<String>,
    view: View,
}

/// What the Activity page shows for its filters.
#[derive(Default)]
pub(super) struct View {
    pub(super) rows: Vec<Row>,
    pub(super) log_size: u64,
    pub(super) indexed_size: u64,
    /// The link to the next (older) page, when there is one.
    pub(super) older: Option<String>,
    /// Whether the page offers live mode (its first page does, older pages do not).
    pub(super) live: bool,
    /// Live mode starts after this seq (the log's last when the page was made; empty for
    /// an empty log).
    pub(super) live_after: String,
    pub(super) histogram: Vec<Bar>,
    /// Bucket slots across the histogram (empty buckets have no bar but keep their place).
    pub(super) slots: u64,
    /// The histogram's bucket width, for people (`1h`).
    pub(super) interval: String,
    /// Events on this page, the steps folded into operations included.
    pub(super) shown: usize,
    /// The category drop-down: the tenant's categories with their event counts.
    pub(super) categories: Vec<Choice>,
    /// Suggestions for the event type: the tenant's types with their event counts.
    pub(super) types: Vec<Choice>,
    /// Quick date ranges ending now: `(label, href)`.
    pub(super) ranges: Vec<(&'static str, String)>,
    /// A row's record page is this, its seq, then this: `/activity/events/` and nothing
    /// for a session, `/embed/events/` and the token for the embedded view.
    pub(super) record_prefix: &'static str,
    pub(super) record_suffix: String,
}

/// An option of a filter's list.
pub(super) struct Choice {
    pub(super) value: String,
    pub(super) label: String,
    pub(super) selected: bool,
}

/// One bar of the histogram: a link that narrows the date range to its bucket.
pub(super) struct Bar {
    pub(super) x: u64,
    /// Heights in the SVG's units: all events, and the failures among them.
    pub(super) total_height: u64,
    pub(super) failure_height: u64,
    pub(super) total: u64,
    pub(super) failures: u64,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) href: String,
}

/// The Activity page's filters, all in the URL so that a view can be bookmarked and
/// shared.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActivityParams {
    #[serde(rename = "type")]
    pub(super) event_type: String,
    pub(super) category: String,
    pub(super) actor: String,
    pub(super) target: String,
    pub(super) outcome: String,
    pub(super) q: String,
    pub(super) from: String,
    pub(super) to: String,
    /// Paging: the last seq of the previous page (older events follow).
    pub(super) after: Option<u64>,
    /// The viewer token of the embeddable view (`/embed`).
    pub(super) token: String,
}

impl ActivityParams {
    /// The search parameters of these filters (each trimmed, blank ones left out); public
    /// for the fuzz tests.
    pub fn search(&self) -> SearchParams {
        let some = |text: &str| {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        SearchParams {
            event_type: some(&self.event_type),
            category: some(&self.category),
            actor: some(&self.actor),
            target: some(&self.target),
            outcome: some(&self.outcome),
            q: some(&self.q),
            from: some(&self.from),
            to: some(&self.to),
            ..SearchParams::default()
        }
    }

    /// The page's URL with these filters, `from`/`to` and `after` replaced (public for the
    /// fuzz tests).
    pub fn url(&self, from: &str, to: &str, after: Option<u64>) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (name, value) in [
            ("type", self.event_type.as_str()),
            ("category", self.category.as_str()),
            ("actor", self.actor.as_str()),
            ("target", self.target.as_str()),
            ("outcome", self.outcome.as_str()),
            ("q", self.q.as_str()),
            ("from", from),
            ("to", to),
        ] {
            if !value.trim().is_empty() {
                pairs.push((name, value.trim()));
            }
        }
        let after = after.map(|seq| seq.to_string());
        if let Some(after) = &after {
            pairs.push(("after", after));
        }
        let base = if self.token.is_empty() {
            "/activity"
        } else {
            pairs.push(("token", self.token.as_str()));
            "/embed"
        };
        let query: Vec<String> = pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", percent(value)))
            .collect();
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", query.join("&"))
        }
    }
}

/// Percent-encoding of a query value.
pub(super) fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'*' | b':' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// One event as the Activity table shows it.
pub(super) struct Row {
    pub(super) seq: u64,
    /// The operation it is a step of (a lifecycle's events share one: requested, in
    /// progress, done or failed).
    pub(super) correlation_id: Option<String>,
    /// The other steps of its operation on this page, newest first (only on the newest).
    pub(super) steps: Vec<Row>,
    pub(super) time: String,
    pub(super) time_short: String,
    pub(super) actor: String,
    pub(super) event: String,
    pub(super) event_type: String,
    pub(super) code: Option<u64>,
    pub(super) target: String,
    pub(super) outcome: String,
}

pub(super) async fn activity(
    State(state): State<AppState>,
    session: Session,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (filters, mut problem) = match params {
        Ok(axum::extract::Query(filters)) => (filters, None),
        Err(rejection) => (
            ActivityParams::default(),
            Some(format!(
                "The address has a filter this page does not know: {}",
                rejection.body_text()
            )),
        ),
    };
    let query = match crate::params::Filters::of_search(&filters.search()).to_query() {
        Ok(query) => Some(query),
        Err(err) => {
            problem = Some(err.message);
            None
        }
    };
    let mut view = View::default();
    let mut status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    if let Some(query) = query {
        let tenant = session.tenant.clone();
        let work = state.clone();
        let work_filters = filters.clone();
        let found = state
            .blocking(&session.tenant, move || {
                activity_view(&work, &tenant, &query, &work_filters)
            })
            .await;
        match found {
            Ok(found) => view = found,
            // A query over the server's cost limits: what to change, as for a bad filter.
            Err(err) if err.status == StatusCode::BAD_REQUEST => {
                status = err.status;
                problem = Some(err.message);
            }
            Err(mut err) => {
                err.report();
                status = StatusCode::SERVICE_UNAVAILABLE;
                problem = Some(UNREADABLE.to_owned());
            }
        }
    }
    page(
        status,
        ActivityPage {
            tenant: session.tenant.as_str(),
            role: session.role.as_str(),
            csrf: &session.csrf,
            filters: &filters,
            problem,
            view,
        }
        .render(),
        &[],
    )
}

/// The page of rows (newest first, after `filters.after`) and the histogram of the
/// matching events over the filters' range, or over the time the matching events span.
pub(super) fn activity_view(
    state: &AppState,
    tenant: &TenantId,
    query: &Query,
    filters: &ActivityParams,
) -> Result<View, ApiError> {
    let log_size = state.ledger().size(tenant)?;
    let indexed_size = state.search().applied(tenant).min(log_size);
    let search = state.search();
    let page = search.search(tenant, query, Order::Desc, ROWS, filters.after)?;
    let rows = operations(rows_of(state, tenant, &page.seqs)?);
    let older = page
        .next_after
        .map(|after| filters.url(&filters.from, &filters.to, Some(after)));
    let (histogram, interval, slots) = histogram(state, tenant, query, filters)?;
    let embedded = !filters.token.is_empty();
    // The embedded view offers no category or type lists: its token may narrow it to one
    // actor or target, and the tenant's counts would say more than that scope.
    let (categories, types) = if embedded {
        (Vec::new(), Vec::new())
    } else {
        choices(&search.catalog_counts(tenant)?, filters)
    };
    let shown = rows.iter().map(|row| 1 + row.steps.len()).sum();
    let (record_prefix, record_suffix) = if embedded {
        (
            "/embed/events/",
            format!("?token={}", percent(&filters.token)),
        )
    } else {
        ("/activity/events/", String::new())
    };
    Ok(View {
        record_prefix,
        record_suffix,
        shown,
        categories,
        types,
        ranges: ranges(filters),
        live: filters.after.is_none() && !embedded,
        live_after: log_size
            .checked_sub(1)
            .map_or_else(String::new, |seq| seq.to_string()),
        rows,
        log_size,
        indexed_size,
        older,
        histogram,
        slots,
        interval,
    })
}

/// The category drop-down and the type suggestions, from the tenant's `(category, type,
/// count)` of [`veritrail_search::SearchIndex::catalog_counts`]; a category in the URL that
/// has no events (or a bookmark's) is kept as a choice, selected.
pub(super) fn choices(
    counts: &[(Option<String>, String, u64)],
    filters: &ActivityParams,
) -> (Vec<Choice>, Vec<Choice>) {
    // Categories match in any case, as the search does: one choice per category whatever
    // its case, named as its first spelling.
    let mut by_category: BTreeMap<String, (&str, u64)> = BTreeMap::new();
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for (category, event_type, count) in counts {
        if let Some(category) = category {
            by_category
                .entry(category.to_lowercase())
                .or_insert((category, 0))
                .1 += count;
        }
        *by_type.entry(event_type).or_default() += count;
    }
    let wanted = filters.category.trim();
    let wanted_lower = wanted.to_lowercase();
    let mut categories: Vec<Choice> = by_category
        .into_iter()
        .map(|(lower, (name, count))| Choice {
            selected: lower == wanted_lower,
            label: format!("{name} ({count})"),
            value: name.to_owned(),
        })
        .collect();
    if !wanted.is_empty() && !categories.iter().any(|choice| choice.selected) {
        categories.push(Choice {
            value: wanted.to_owned(),
            label: format!("{wanted} (no events)"),
            selected: true,
        });
    }
    // A publisher under the lenient policy can make any number of types: the page lists
    // the most frequent ones only.
    let mut by_type: Vec<(&str, u64)> = by_type.into_iter().collect();
    if by_type.len() > MAX_CHOICES {
        by_type.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        by_type.truncate(MAX_CHOICES);
        by_type.sort_unstable();
    }
    let types = by_type
        .into_iter()
        .map(|(value, count)| Choice {
            label: format!("{count} events"),
            value: value.to_owned(),
            selected: false,
        })
        .collect();
    if categories.len() > MAX_CHOICES {
        categories.sort_by_key(|choice| std::cmp::Reverse(choice.selected));
        categories.truncate(MAX_CHOICES);
        categories.sort_by_key(|choice| choice.value.to_lowercase());
    }
    (categories, types)
}

/// Links to the last hour, day, week and month, ending now, with the other filters kept.
pub(super) fn ranges(filters: &ActivityParams) -> Vec<(&'static str, String)> {
    let now = crate::clock::now().unix_nanos().div_euclid(1_000_000_000);
    [
        ("Last hour", 3600),
        ("24 hours", 86_400),
        ("7 days", 7 * 86_400),
        ("30 days", 30 * 86_400),
    ]
    .into_iter()
    .map(|(label, secs)| {
        let from = veritrail_core::event::Timestamp::from_unix_nanos((now - secs) * 1_000_000_000)
            .to_rfc3339();
        (label, filters.url(&from, "", None))
    })
    .collect()
}

/// Folds the rows that share a correlation id into the newest of them, as one operation
/// with its steps (requested, in progress, done or failed), keeping the page's order.
pub(super) fn operations(rows: Vec<Row>) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    for row in rows {
        match row
            .correlation_id
            .as_ref()
            .and_then(|id| at.get(id).copied())
        {
            Some(first) => out[first].steps.push(row),
            None => {
                if let Some(id) = &row.correlation_id {
                    at.insert(id.clone(), out.len());
                }
                out.push(row);
            }
        }
    }
    out
}

/// The rows of records `seqs`.
pub(super) fn rows_of(
    state: &AppState,
    tenant: &TenantId,
    seqs: &[u64],
) -> Result<Vec<Row>, ApiError> {
    let mut rows = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        let Some(record) = state.ledger().kept_record(tenant, seq)? else {
            continue;
        };
        let event = record.event();
        let time = event
            .occurred_at()
            .unwrap_or_else(|| record.received_at())
            .to_rfc3339();
        let time_short = time.get(..19).unwrap_or(&time).replace('T', " ") + " UTC";
        let actor = event.actor().map_or_else(String::new, |actor| {
            actor
                .email()
                .map(|email| email.as_str().to_owned())
                .or_else(|| actor.name().map(|name| name.as_str().to_owned()))
                .or_else(|| actor.id().map(|id| id.as_str().to_owned()))
                .unwrap_or_default()
        });
        let target = event.targets().first().map_or_else(String::new, |target| {
            target
                .name()
                .map(|name| name.as_str().to_owned())
                .or_else(|| target.id().map(|id| id.as_str().to_owned()))
                .unwrap_or_default()
        });
        let catalog = record.catalog();
        rows.push(Row {
            seq,
            correlation_id: event.correlation_id().map(|id| id.as_str().to_owned()),
            steps: Vec::new(),
            time,
            time_short,
            actor,
            event: catalog.name.as_ref().map_or_else(
                || event.event_type().as_str().to_owned(),
                |name| name.as_str().to_owned(),
            ),
            event_type: event.event_type().as_str().to_owned(),
            code: catalog.code,
            target,
            outcome: event
                .outcome()
                .map_or("unknown", |outcome| outcome.as_str())
                .to_owned(),
        });
    }
    Ok(rows)
}

/// Live mode: the records matching the page's filters after `after`, as Server-Sent Events
/// (the live tail, authenticated by the session).
pub(super) async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Option<Session>,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(session) = session else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    let Ok(axum::extract::Query(filters)) = params else {
        return (StatusCode::BAD_REQUEST, "the filters are not valid").into_response();
    };
    // The stream counts among its key's streams, and ends when the session does (sign-out,
    // expiry, the key revoked, viewers no longer admitted).
    let Some(Principal::Tenant(key)) = state.control().principal_by_hash(&session.key_hash) else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    let permit = match state.streams().open(&key.key_id, &session.tenant) {
        Ok(permit) => permit,
        Err(err) => return err.into_response(),
    };
    let (check_state, session_id) = (state.clone(), session.id.clone());
    let access = crate::tail::Access {
        permit,
        allowed: Box::new(move || open_session_by_id(&check_state, &session_id).is_some()),
        ends_at: Some(tokio::time::Instant::from_std(session.expires)),
    };
    // A reconnecting EventSource says where it stopped.
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
        .or(filters.after);
    match crate::params::Filters::of_search(&filters.search()).to_query() {
        Ok(query) => {
            crate::tail::tail(&state, session.tenant, query, after, access).into_response()
        }
        Err(err) => (StatusCode::BAD_REQUEST, err.message).into_response(),
    }
}
