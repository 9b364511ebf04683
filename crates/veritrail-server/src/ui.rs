//! The web UI: server-rendered pages (askama templates, escaped by default) at `/` and
//! `/activity`, with every asset embedded in the binary and a Content-Security-Policy that
//! allows nothing from elsewhere.
//!
//! **Sessions.** A person signs in with an API key of their tenant; the key becomes a
//! session: a random 256-bit id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when
//! the request came over HTTPS through a proxy, `X-Forwarded-Proto: https`). The server
//! keeps, by the SHA-256 of the session id, the tenant, the role and the key's hash, never
//! the key; every request checks that the key is still active, so revoking it ends its
//! sessions. Sessions live in memory for 12 hours: a restart signs everyone out.
//!
//! **CSRF.** Every state change is a `POST` carrying a token: the sign-in form's token is
//! also in a cookie (double submit), the sign-out form's is the session's own; a request
//! without the matching token is refused (403) and changes nothing. `SameSite=Strict`
//! cookies already keep other sites' forms from carrying the session.
//!
//! **Who enters.** Owner, super_admin and admin keys, as in seed 004; viewer keys when the
//! tenant admits them (`PUT /api/v1/activity/settings`, off by default; turning it off ends
//! their sessions). Publisher keys, and the server admin's, get a page saying why not.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use veritrail_api::{Role, SearchParams};
use veritrail_core::event::TenantId;
use veritrail_search::{Bucket, Order, Query};

use crate::AppState;
use crate::control::{Principal, hex};
use crate::error::ApiError;
use crate::proofs::checkpoint_size;
use crate::routes::Route;

const SESSION_COOKIE: &str = "vt_session";
const SIGN_IN_COOKIE: &str = "vt_sign_in";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions one key may have open at once (the memory of sign-ins stays bounded).
const SESSIONS_PER_KEY: usize = 32;
/// Rows on the Activity page.
const ROWS: usize = 50;
/// Most choices a filter's list offers (categories, type suggestions).
const MAX_CHOICES: usize = 500;
/// Nothing from elsewhere: styles and scripts from this server only (no inline script), no
/// frames, no other connections.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The embedded view's: the same (its drawer fetches records from this server), but any
/// site may frame it (the token is the permission).
const EMBED_CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors *; base-uri 'none'";
static CSS: Asset = Asset::new("text/css; charset=utf-8", include_str!("../assets/app.css"));
/// The in-browser check of a record's proof and checkpoint.
static VERIFY_JS: Asset = Asset::new(JS, include_str!("../assets/verify.js"));
/// Local times, live mode, the record drawer and loading states of the Activity page.
static ACTIVITY_JS: Asset = Asset::new(JS, include_str!("../assets/activity.js"));
const JS: &str = "text/javascript; charset=utf-8";
/// The pages' icon.
static ICON: Asset = Asset::new("image/svg+xml", include_str!("../assets/icon.svg"));

/// Signed-in browsers.
#[derive(Debug, Default)]
pub struct Sessions {
    /// By SHA-256 of the session id.
    map: Mutex<HashMap<[u8; 32], Session>>,
}

#[derive(Debug, Clone)]
struct Session {
    tenant: TenantId,
    role: Role,
    /// SHA-256 of the key it was opened with.
    key_hash: [u8; 32],
    /// The token of this session's forms.
    csrf: String,
    expires: Instant,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.map.lock().expect("sessions lock poisoned")
    }

    /// A new session; returns its id (for the cookie). A key has at most
    /// [`SESSIONS_PER_KEY`] sessions: a new one ends its oldest.
    fn open(&self, tenant: TenantId, role: Role, key_hash: [u8; 32]) -> Option<String> {
        let id = random_token()?;
        let session = Session {
            tenant,
            role,
            key_hash,
            csrf: random_token()?,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, session| session.expires > now);
        let mut of_key: Vec<([u8; 32], Instant)> = map
            .iter()
            .filter(|(_, other)| other.key_hash == key_hash)
            .map(|(id, other)| (*id, other.expires))
            .collect();
        if of_key.len() >= SESSIONS_PER_KEY {
            of_key.sort_by_key(|(_, expires)| *expires);
            for (oldest, _) in &of_key[..=of_key.len() - SESSIONS_PER_KEY] {
                map.remove(oldest);
            }
        }
        map.insert(digest(&id), session);
        Some(id)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let key = digest(id);
        let mut map = self.lock();
        match map.get(&key) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    fn close(&self, id: &str) {
        self.lock().remove(&digest(id));
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex(&bytes))
}

/// The UI's routes, as a table (see [`crate::routes::Route`]): the pages, the forms, the
/// live stream, the embedded view and the assets.
pub fn table() -> Vec<Route> {
    use axum::http::Method as M;
    let mut routes = vec![
        Route::new(M::GET, "/", || async { Redirect::to("/activity") }),
        Route::new(M::GET, "/activity", activity),
        Route::new(M::POST, "/ui/sign-in", sign_in),
        Route::new(M::POST, "/ui/sign-out", sign_out),
        Route::new(M::GET, "/activity/events/{seq}", record),
        Route::new(M::GET, "/activity/catalog", catalog),
        Route::new(M::GET, "/embed", embed),
        Route::new(M::GET, "/embed/events/{seq}", embed_record),
        Route::new(M::GET, "/activity/stream", live),
        Route::new(M::GET, "/activity/integrity", integrity),
    ];
    // The assets, each served by its `Asset::serve`.
    let assets: [(&str, &'static Asset); 4] = [
        ("/ui/assets/app.css", &CSS),
        ("/ui/assets/icon.svg", &ICON),
        ("/ui/assets/verify.js", &VERIFY_JS),
        ("/ui/assets/activity.js", &ACTIVITY_JS),
    ];
    routes.extend(assets.into_iter().map(|(path, asset)| {
        Route::new(M::GET, path, move |headers: HeaderMap| async move {
            asset.serve(&headers)
        })
    }));
    routes
}

/// The UI's routes (merged into the app by [`crate::app`]).
pub fn router() -> Router<AppState> {
    Route::router(table())
}

/// `(method, path)` of every UI route, as [`table`] has them.
pub fn route_list() -> Vec<(axum::http::Method, &'static str)> {
    table()
        .into_iter()
        .map(|route| (route.method, route.path))
        .collect()
}

/// The value of cookie `name` in the request.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: Option<u64>) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A page with the security headers every page carries.
fn page(status: StatusCode, html: Result<String, askama::Error>, cookies: &[String]) -> Response {
    framed_page(status, html, cookies, false)
}

/// [`page`]; `embeddable` pages may be shown in another site's frame (the embedded view).
fn framed_page(
    status: StatusCode,
    html: Result<String, askama::Error>,
    cookies: &[String],
    embeddable: bool,
) -> Response {
    let html = match html {
        Ok(html) => html,
        Err(err) => {
            tracing::error!(error = %err, "a page did not render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response();
        }
    };
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if embeddable { EMBED_CSP } else { CSP }),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !embeddable {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    problem: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage<'a> {
    heading: &'a str,
    reason: &'a str,
    /// A way on: `(href, text)`.
    link: Option<(&'a str, &'a str)>,
}

/// The heading of a refused sign-in.
const REFUSED: &str = "This key cannot open the Activity page";
/// The heading of a page that failed for the server's reasons.
const UNAVAILABLE: &str = "This page cannot be shown right now";
/// The way back to the Activity page.
const BACK: Option<(&str, &str)> = Some(("/activity", "Back to the Activity page"));

/// The page of a session's page whose log could not be read (503; the cause is logged).
fn unreadable() -> Response {
    problem_page(
        StatusCode::SERVICE_UNAVAILABLE,
        UNAVAILABLE,
        UNREADABLE,
        BACK,
        false,
    )
}

/// The page of a record whose stored data failed its integrity check (500; the detail is
/// logged as an integrity error): it is not shown, rather than shown unverifiable.
fn damaged(embeddable: bool) -> Response {
    problem_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "This event failed its integrity check",
        "Its stored data does not verify against the log's signed checkpoint, so it is not shown. The server's log names the damage; the operator can check the whole log with `veritrail verify`.",
        if embeddable { None } else { BACK },
        embeddable,
    )
}

/// A page that says what went wrong: a refused key or token, a missing record, a log that
/// cannot be read. `embeddable`: for the embedded view, which other sites frame.
fn problem_page(
    status: StatusCode,
    heading: &str,
    reason: &str,
    link: Option<(&str, &str)>,
    embeddable: bool,
) -> Response {
    let html = ProblemPage {
        heading,
        reason,
        link,
    }
    .render();
    framed_page(status, html, &[], embeddable)
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage<'a> {
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
struct View {
    rows: Vec<Row>,
    log_size: u64,
    indexed_size: u64,
    /// The link to the next (older) page, when there is one.
    older: Option<String>,
    /// Whether the page offers live mode (its first page does, older pages do not).
    live: bool,
    /// Live mode starts after this seq (the log's last when the page was made; empty for
    /// an empty log).
    live_after: String,
    histogram: Vec<Bar>,
    /// Bucket slots across the histogram (empty buckets have no bar but keep their place).
    slots: u64,
    /// The histogram's bucket width, for people (`1h`).
    interval: String,
    /// Events on this page, the steps folded into operations included.
    shown: usize,
    /// The category drop-down: the tenant's categories with their event counts.
    categories: Vec<Choice>,
    /// Suggestions for the event type: the tenant's types with their event counts.
    types: Vec<Choice>,
    /// Quick date ranges ending now: `(label, href)`.
    ranges: Vec<(&'static str, String)>,
    /// A row's record page is this, its seq, then this: `/activity/events/` and nothing
    /// for a session, `/embed/events/` and the token for the embedded view.
    record_prefix: &'static str,
    record_suffix: String,
}

/// An option of a filter's list.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// One bar of the histogram: a link that narrows the date range to its bucket.
struct Bar {
    x: u64,
    /// Heights in the SVG's units: all events, and the failures among them.
    total_height: u64,
    failure_height: u64,
    total: u64,
    failures: u64,
    from: String,
    to: String,
    href: String,
}

/// The Activity page's filters, all in the URL so that a view can be bookmarked and
/// shared.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActivityParams {
    #[serde(rename = "type")]
    event_type: String,
    category: String,
    actor: String,
    target: String,
    outcome: String,
    q: String,
    from: String,
    to: String,
    /// Paging: the last seq of the previous page (older events follow).
    after: Option<u64>,
    /// The viewer token of the embeddable view (`/embed`).
    token: String,
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
fn percent(text: &str) -> String {
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
struct Row {
    seq: u64,
    /// The operation it is a step of (lifecycle events share one, as in seed 004).
    correlation_id: Option<String>,
    /// The other steps of its operation on this page, newest first (only on the newest).
    steps: Vec<Row>,
    time: String,
    time_short: String,
    actor: String,
    event: String,
    event_type: String,
    code: Option<u64>,
    target: String,
    outcome: String,
}

/// The sign-in page, with a fresh token in its form and in a cookie.
fn sign_in_page(headers: &HeaderMap, status: StatusCode, problem: Option<&str>) -> Response {
    let Some(token) = random_token() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response();
    };
    let cookie = set_cookie(headers, SIGN_IN_COOKIE, &token, Some(3600));
    page(
        status,
        SignInPage {
            csrf: &token,
            problem,
        }
        .render(),
        &[cookie],
    )
}

/// The session of the request, if it is open and its key still active.
fn session(state: &AppState, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = cookie(headers, SESSION_COOKIE)?;
    Some((id.to_owned(), open_session_by_id(state, id)?))
}

/// Session `id`, if it is open, unexpired, its key still active and (for a viewer key) its
/// tenant still admitting viewers; else it is closed and `None`.
fn open_session_by_id(state: &AppState, id: &str) -> Option<Session> {
    let session = state.inner_sessions().get(id)?;
    match state.control().principal_by_hash(&session.key_hash) {
        Some(Principal::Tenant(key))
            if key.tenant == session.tenant
                && (key.role != Role::Viewer || viewers_admitted(state, &key.tenant)) =>
        {
            Some(session)
        }
        _ => {
            // The key was revoked: the session ends with it.
            state.inner_sessions().close(id);
            None
        }
    }
}

async fn activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some((_, session)) = session(&state, &headers) else {
        return sign_in_page(&headers, StatusCode::OK, None);
    };
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
            Err(err) => {
                tracing::error!(error = %err.message, "the Activity page could not read the log");
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

/// What the Activity pages say when the log cannot be read.
const UNREADABLE: &str = "The log cannot be read right now. Nothing is lost; try again in a moment, and if this persists, the server's log says why.";

/// Bars of the histogram, about.
const BARS: i64 = 48;
/// The histogram's height, in SVG units.
const CHART_HEIGHT: u64 = 80;

/// Bucket widths the histogram chooses from, with their names.
const INTERVALS: [(i64, &str); 10] = [
    (60, "1m"),
    (300, "5m"),
    (900, "15m"),
    (3600, "1h"),
    (3 * 3600, "3h"),
    (6 * 3600, "6h"),
    (12 * 3600, "12h"),
    (86_400, "1d"),
    (7 * 86_400, "7d"),
    (28 * 86_400, "28d"),
];

/// The page of rows (newest first, after `filters.after`) and the histogram of the
/// matching events over the filters' range, or over the time the matching events span.
fn activity_view(
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
fn choices(
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
fn ranges(filters: &ActivityParams) -> Vec<(&'static str, String)> {
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

/// The bucket width for a histogram over `span_nanos`: the narrowest of [`INTERVALS`]
/// that needs at most [`BARS`] bars.
fn interval_for(span_nanos: i64) -> (i64, &'static str) {
    let span_secs = span_nanos.saturating_add(999_999_999) / 1_000_000_000;
    INTERVALS
        .iter()
        .copied()
        .find(|(width, _)| span_secs / width <= BARS)
        .unwrap_or(INTERVALS[INTERVALS.len() - 1])
}

/// Most buckets the histogram's count keeps before it moves to a wider bucket width (well
/// above [`BARS`], so the width shown is never narrower than the width counted).
const COUNTED_BUCKETS: usize = 1024;

/// The histogram of the events matching `query`: its bars, the bucket width's name and the
/// number of bucket slots. It spans the filters' dates; what they leave open is the time
/// the matching events span.
///
/// One count does it. With both dates it counts at the width they need; otherwise over
/// the ladder of [`INTERVALS`] (each a multiple of the one before): the count moves to a
/// wider width whenever the matches' buckets would pass [`COUNTED_BUCKETS`], so it ends at
/// a width no wider than the one shown, whose buckets are then sums of the counted ones.
fn histogram(
    state: &AppState,
    tenant: &TenantId,
    query: &Query,
    filters: &ActivityParams,
) -> Result<(Vec<Bar>, String, u64), ApiError> {
    const NANOS: i64 = 1_000_000_000;
    let none = (Vec::new(), String::new(), 0);
    let search = state.search();
    let (from, to) = (
        query.from.map(|t| t.unix_nanos()),
        query.to.map(|t| t.unix_nanos()),
    );
    let ladder: Vec<i64> = match (from, to) {
        // Spans saturate: events may lie anywhere in the 584 years of `Timestamp`.
        (Some(from), Some(to)) if to > from => {
            vec![interval_for(to.saturating_sub(from)).0 * NANOS]
        }
        (Some(_), Some(_)) => return Ok(none),
        _ => INTERVALS.iter().map(|(width, _)| width * NANOS).collect(),
    };
    let (counted_nanos, counts) = search.histogram(tenant, query, &ladder, COUNTED_BUCKETS)?;
    let counts = counts.histogram;
    let (Some(first), Some(last)) = (counts.first(), counts.last()) else {
        return Ok(none);
    };
    // The range: the filters' dates, else the counted buckets'.
    let start = from.unwrap_or_else(|| first.start.unix_nanos());
    let end = to.unwrap_or_else(|| last.start.unix_nanos().saturating_add(counted_nanos));
    if end <= start {
        return Ok(none);
    }
    let (width, name) = interval_for(end.saturating_sub(start));
    let width_nanos = width * NANOS;
    let buckets = if width_nanos == counted_nanos {
        counts
    } else if width_nanos > counted_nanos && width_nanos % counted_nanos == 0 {
        rebucket(&counts, width_nanos)
    } else {
        search
            .count(tenant, query, None, Some(width_nanos))?
            .histogram
    };
    let tallest = buckets
        .iter()
        .map(|bucket| bucket.total)
        .max()
        .unwrap_or(1)
        .max(1);
    let first_slot = start.div_euclid(width_nanos);
    let last_slot = (end - 1).div_euclid(width_nanos);
    let slots = u64::try_from(last_slot - first_slot + 1).unwrap_or(0);
    let mut bars = Vec::with_capacity(buckets.len());
    for bucket in &buckets {
        let slot = bucket.start.unix_nanos().div_euclid(width_nanos);
        let Ok(offset) = u64::try_from(slot - first_slot) else {
            continue;
        };
        if offset >= slots {
            continue;
        }
        let from = bucket.start.to_rfc3339();
        let to = veritrail_core::event::Timestamp::from_unix_nanos(
            bucket.start.unix_nanos().saturating_add(width_nanos),
        )
        .to_rfc3339();
        bars.push(Bar {
            x: offset * 10,
            total_height: bucket.total * CHART_HEIGHT / tallest,
            failure_height: bucket.failures * CHART_HEIGHT / tallest,
            total: bucket.total,
            failures: bucket.failures,
            href: filters.url(&from, &to, None),
            from,
            to,
        });
    }
    Ok((bars, name.to_owned(), slots))
}

/// `buckets` (ascending, of a width that divides `width_nanos`) summed into buckets of
/// `width_nanos`.
fn rebucket(buckets: &[Bucket], width_nanos: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for bucket in buckets {
        let start = bucket
            .start
            .unix_nanos()
            .div_euclid(width_nanos)
            .saturating_mul(width_nanos);
        match out.last_mut() {
            Some(last) if last.start.unix_nanos() == start => {
                last.total += bucket.total;
                last.failures += bucket.failures;
            }
            _ => out.push(Bucket {
                start: veritrail_core::event::Timestamp::from_unix_nanos(start),
                total: bucket.total,
                failures: bucket.failures,
            }),
        }
    }
    out
}

/// Folds the rows that share a correlation id into the newest of them, as one operation
/// with its steps (requested, in progress, done or failed), keeping the page's order.
fn operations(rows: Vec<Row>) -> Vec<Row> {
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
fn rows_of(state: &AppState, tenant: &TenantId, seqs: &[u64]) -> Result<Vec<Row>, ApiError> {
    let mut rows = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        let Some(record) = state.ledger().records(tenant, seq, 1)?.pop() else {
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

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return sign_in_page(
            &headers,
            StatusCode::BAD_REQUEST,
            Some("The form was not sent as a form; try again."),
        );
    };
    if form.csrf.is_empty() || cookie(&headers, SIGN_IN_COOKIE) != Some(form.csrf.as_str()) {
        return sign_in_page(
            &headers,
            StatusCode::FORBIDDEN,
            Some("This sign-in form has expired or did not come from this page; try again."),
        );
    }
    let key = form.key.trim();
    let refused = |reason: &str| {
        problem_page(
            StatusCode::FORBIDDEN,
            REFUSED,
            reason,
            Some(("/activity", "Sign in with another key")),
            false,
        )
    };
    let principal = state.control().authenticate(key);
    // Sign-ins count against the key's rate limit, as its API requests do.
    if let Some(principal) = &principal
        && let Err(err) = state.limiter().check(principal.id())
    {
        return err.into_response();
    }
    match principal {
        None => sign_in_page(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("That key is not recognised, or it was revoked."),
        ),
        Some(Principal::ServerAdmin) => refused(
            "The server-admin key manages tenants and keys and reads no events. Sign in with a key of a tenant.",
        ),
        Some(Principal::Tenant(tenant_key)) => match tenant_key.role {
            Role::Owner | Role::SuperAdmin | Role::Admin => {
                open_session(&state, &headers, &tenant_key.tenant, tenant_key.role, key)
            }
            Role::Viewer if viewers_admitted(&state, &tenant_key.tenant) => {
                open_session(&state, &headers, &tenant_key.tenant, tenant_key.role, key)
            }
            Role::Viewer => refused(
                "This tenant does not admit viewer keys to the Activity page (its owner can change that: PUT /api/v1/activity/settings). Owner, super admin and admin keys may enter.",
            ),
            Role::Publisher => refused(
                "A publisher key only sends events: it cannot read them. Sign in with an owner, super admin or admin key.",
            ),
        },
    }
}

/// Whether `tenant` admits viewer keys to the Activity page.
fn viewers_admitted(state: &AppState, tenant: &TenantId) -> bool {
    state
        .control()
        .activity_settings(tenant)
        .is_ok_and(|settings| settings.admit_viewers)
}

/// A new session for `key`, and the redirect to the Activity page that sets its cookie.
fn open_session(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &TenantId,
    role: Role,
    key: &str,
) -> Response {
    let Some(id) = state
        .inner_sessions()
        .open(tenant.clone(), role, digest(key))
    else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response();
    };
    let mut response = Redirect::to("/activity").into_response();
    let session_cookie = set_cookie(headers, SESSION_COOKIE, &id, None);
    let clear = set_cookie(headers, SIGN_IN_COOKIE, "", Some(0));
    for cookie in [session_cookie, clear] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignOutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let token = form.map(|Form(form)| form.csrf).unwrap_or_default();
    match session(&state, &headers) {
        Some((id, session)) if !token.is_empty() && token == session.csrf => {
            state.inner_sessions().close(&id);
            // Its live stream ends too.
            state.control().access_changed();
            let mut response = Redirect::to("/activity").into_response();
            if let Ok(value) =
                HeaderValue::from_str(&set_cookie(&headers, SESSION_COOKIE, "", Some(0)))
            {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Some(_) => (
            StatusCode::FORBIDDEN,
            "this sign-out did not come from a page of this session; nothing changed",
        )
            .into_response(),
        None => Redirect::to("/activity").into_response(),
    }
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage<'a> {
    tenant: &'a str,
    role: &'a str,
    csrf: &'a str,
    back: &'a str,
    r: Shown,
}

#[derive(Template)]
#[template(path = "embed_record.html")]
struct EmbedRecordPage<'a> {
    tenant: &'a str,
    /// The embedded view of the same token.
    back: &'a str,
    r: Shown,
}

/// What a record page shows (`record_sections.html`): the whole record, and what the
/// browser needs to check it: its stored bytes, its inclusion proof, the signed checkpoint
/// and the log's verifier key.
struct Shown {
    tenant: String,
    seq: u64,
    title: String,
    tree_size: u64,
    checkpoint: String,
    record_b64: String,
    proof_json: String,
    proof_len: usize,
    record_json: String,
    verifier_key: String,
    /// Whether the page's reader can pin the key (signed in: the Integrity page).
    pinnable: bool,
}

/// One record with what the browser needs to check its inclusion.
async fn record(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(seq): axum::extract::Path<String>,
) -> Response {
    let Some((_, session)) = session(&state, &headers) else {
        return sign_in_page(&headers, StatusCode::OK, None);
    };
    let refused = |status: StatusCode, reason: &str| {
        problem_page(status, "No such event", reason, BACK, false)
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return refused(
            StatusCode::NOT_FOUND,
            "There is no such event: its number is not a seq.",
        );
    };
    let tenant = session.tenant.clone();
    let work = state.clone();
    let found = state
        .blocking(&session.tenant, move || record_view(&work, &tenant, seq))
        .await;
    let shown = match found {
        Ok(Some(shown)) => shown,
        Ok(None) => {
            return refused(
                StatusCode::NOT_FOUND,
                "This tenant's log has no event with that seq.",
            );
        }
        Err(err) if err.code == veritrail_api::error_codes::INTEGRITY_ERROR => {
            return damaged(false);
        }
        Err(err) => {
            tracing::error!(error = %err.message, "the record page could not read the log");
            return unreadable();
        }
    };
    page(
        StatusCode::OK,
        RecordPage {
            tenant: session.tenant.as_str(),
            role: session.role.as_str(),
            csrf: &session.csrf,
            back: "/activity",
            r: Shown {
                pinnable: true,
                ..shown
            },
        }
        .render(),
        &[],
    )
}

/// The record `seq`, its inclusion proof in the latest checkpoint's tree, and that
/// checkpoint; `None` when the log has no such record. The bytes are checked against their
/// leaf hash and the proof against the signed root first: a page never carries a proof
/// that does not verify (`integrity_error` instead).
fn record_view(state: &AppState, tenant: &TenantId, seq: u64) -> Result<Option<Shown>, ApiError> {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let ledger = state.ledger();
    let Some(size) = ledger.signed_checkpoint(tenant)?.map(|(_, c)| c.size()) else {
        return Ok(None);
    };
    if seq >= size {
        return Ok(None);
    }
    let Some((bytes, _)) = ledger.checked_record(tenant, seq)? else {
        return Ok(None);
    };
    let record = veritrail_core::record::Record::decode(&bytes)
        .map_err(|err| ApiError::integrity(format!("record {seq} does not decode: {err}")))?;
    let checked = ledger.checked_inclusion(tenant, seq, None)?;
    let catalog_name = record
        .catalog()
        .name
        .as_ref()
        .map(|name| name.as_str().to_owned());
    let proof: Vec<String> = checked.proof.iter().map(|hash| b64(hash)).collect();
    Ok(Some(Shown {
        tenant: tenant.as_str().to_owned(),
        seq,
        title: catalog_name.unwrap_or_else(|| record.event().event_type().as_str().to_owned()),
        tree_size: checked.tree_size,
        checkpoint: checked.checkpoint.to_string(),
        record_b64: b64(&bytes),
        proof_len: proof.len(),
        proof_json: serde_json::to_string(&proof).unwrap_or_default(),
        record_json: serde_json::to_string_pretty(&record.to_json()).unwrap_or_default(),
        verifier_key: ledger.verifier().to_vkey_string(),
        pinnable: false,
    }))
}

/// Live mode: the records matching the page's filters after `after`, as Server-Sent Events
/// (the live tail, authenticated by the session).
async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some((session_id, session)) = session(&state, &headers) else {
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
    let check_state = state.clone();
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

#[derive(Template)]
#[template(path = "embed.html")]
struct EmbedPage<'a> {
    tenant: &'a str,
    claims: &'a crate::viewer::Claims,
    filters: &'a ActivityParams,
    problem: Option<String>,
    view: View,
}

/// The embedded view's refusal page (it has no way elsewhere: it is inside another site).
fn embed_refused(status: StatusCode, reason: &str) -> Response {
    problem_page(status, "This view cannot be shown", reason, None, true)
}

/// Opens the viewer token of an embedded view's request (the `token` of its filters): the
/// filters, with the token's fixed ones put over the URL's (a token cannot be widened), the
/// token's claims and tenant, with this use recorded in the tenant's log; or the page that
/// says why not.
async fn use_token(
    state: &AppState,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Result<(ActivityParams, crate::viewer::Claims, TenantId), Response> {
    let Ok(axum::extract::Query(mut filters)) = params else {
        return Err(embed_refused(
            StatusCode::BAD_REQUEST,
            "The address of this view is not valid.",
        ));
    };
    let now = crate::clock::now().unix_nanos().div_euclid(1_000_000_000);
    let claims = match crate::viewer::open(state.control().viewer_token_key(), &filters.token, now)
    {
        Ok(claims) => claims,
        Err(crate::viewer::TokenError::Expired) => {
            return Err(embed_refused(
                StatusCode::UNAUTHORIZED,
                "This view's token has expired; the page that shows it must get a new one.",
            ));
        }
        Err(crate::viewer::TokenError::Invalid) => {
            return Err(embed_refused(
                StatusCode::UNAUTHORIZED,
                "This view's token is not valid.",
            ));
        }
    };
    let Ok(tenant) = TenantId::parse(&claims.tenant) else {
        return Err(embed_refused(
            StatusCode::UNAUTHORIZED,
            "This view's token is not valid.",
        ));
    };
    if state
        .control()
        .live_viewer_token(&claims.tenant, &claims.id, now)
        .is_none()
    {
        return Err(embed_refused(
            StatusCode::UNAUTHORIZED,
            "This view's token was revoked (or the key that made it was); the page that shows it must get a new one.",
        ));
    }
    if let Err(err) = state.embed_limiter().check(&claims.id) {
        let mut refusal = embed_refused(
            StatusCode::TOO_MANY_REQUESTS,
            "This view was asked for too often in the last minute; wait a moment and reload.",
        );
        if let Some(seconds) = err.retry_after {
            refusal
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        return Err(refusal);
    }
    if let Some(actor) = &claims.actor {
        filters.actor.clone_from(actor);
    }
    if let Some(target) = &claims.target {
        filters.target.clone_from(target);
    }
    // Uses are recorded by token and minute: the first of each minute writes the event.
    let minute = now.div_euclid(60);
    if state.embed_uses().first_in_minute(&claims.id, minute) {
        let used = crate::audit::viewer_token_used(&claims.id, minute);
        let recorded = match used {
            Ok(event) => crate::audit::record(state, &tenant, event).await,
            Err(err) => Err(err),
        };
        if recorded.is_err() {
            state.embed_uses().forget(&claims.id, minute);
            return Err(embed_refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The log cannot be written right now, and the uses of this view are recorded in it. Try again in a moment.",
            ));
        }
    }
    Ok((filters, claims, tenant))
}

/// One record of the embedded view, as the record page shows it (the drawer opens it),
/// when it is inside the token's scope: the search index must find it under the token's
/// filters, the same test that put it in the view's table. Outside the scope, or missing,
/// it is the same 404, so a token tells nothing of the records it does not show.
async fn embed_record(
    State(state): State<AppState>,
    axum::extract::Path(seq): axum::extract::Path<String>,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (filters, claims, tenant) = match use_token(&state, params).await {
        Ok(opened) => opened,
        Err(refusal) => return refusal,
    };
    let back = ActivityParams {
        token: filters.token.clone(),
        ..ActivityParams::default()
    }
    .url("", "", None);
    let missing = || {
        problem_page(
            StatusCode::NOT_FOUND,
            "No such event",
            "This view has no event with that number.",
            Some((&back, "Back to the events")),
            true,
        )
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return missing();
    };
    let scope = ActivityParams {
        actor: claims.actor.clone().unwrap_or_default(),
        target: claims.target.clone().unwrap_or_default(),
        ..ActivityParams::default()
    };
    let Ok(query) = crate::params::Filters::of_search(&scope.search()).to_query() else {
        return missing();
    };
    let (work, work_tenant) = (state.clone(), tenant.clone());
    let found = state
        .blocking(&tenant, move || -> Result<Option<Shown>, ApiError> {
            // The newest record at or below `seq` in the scope is `seq` itself, or it is not
            // in the scope.
            let hit = work
                .search()
                .search(&work_tenant, &query, Order::Desc, 1, seq.checked_add(1))
                .map_err(ApiError::unavailable)?;
            if hit.seqs.first() != Some(&seq) {
                return Ok(None);
            }
            record_view(&work, &work_tenant, seq)
        })
        .await;
    let shown = match found {
        Ok(Some(shown)) => shown,
        Ok(None) => return missing(),
        Err(err) if err.code == veritrail_api::error_codes::INTEGRITY_ERROR => {
            return damaged(true);
        }
        Err(err) => {
            tracing::error!(error = %err.message, "the embedded view could not read the log");
            return embed_refused(StatusCode::SERVICE_UNAVAILABLE, UNREADABLE);
        }
    };
    framed_page(
        StatusCode::OK,
        EmbedRecordPage {
            tenant: tenant.as_str(),
            back: &back,
            r: shown,
        }
        .render(),
        &[],
        true,
    )
}

/// The embeddable view: the Activity table and histogram of a viewer token's tenant, with
/// the token's fixed filters over whatever the URL asks; each use is an audit event.
async fn embed(
    State(state): State<AppState>,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (filters, claims, tenant) = match use_token(&state, params).await {
        Ok(opened) => opened,
        Err(refusal) => return refusal,
    };
    let (view, problem) = match crate::params::Filters::of_search(&filters.search()).to_query() {
        Ok(query) => {
            let (work, work_tenant, work_filters) =
                (state.clone(), tenant.clone(), filters.clone());
            match state
                .blocking(&tenant, move || {
                    activity_view(&work, &work_tenant, &query, &work_filters)
                })
                .await
            {
                Ok(view) => (view, None),
                Err(err) if err.status == StatusCode::BAD_REQUEST => {
                    (View::default(), Some(err.message))
                }
                Err(err) => {
                    tracing::error!(error = %err.message, "the embedded view could not read the log");
                    return embed_refused(StatusCode::SERVICE_UNAVAILABLE, UNREADABLE);
                }
            }
        }
        Err(err) => (View::default(), Some(err.message)),
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    framed_page(
        status,
        EmbedPage {
            tenant: tenant.as_str(),
            claims: &claims,
            filters: &filters,
            problem,
            view,
        }
        .render(),
        &[],
        true,
    )
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage<'a> {
    tenant: &'a str,
    role: &'a str,
    csrf: &'a str,
    catalogs: Vec<CatalogView>,
}

struct CatalogView {
    id: String,
    entries: Vec<EntryView>,
}

struct EntryView {
    category: String,
    event_type: String,
    code: Option<u64>,
    name: String,
    description: String,
}

/// The tenant's catalogs: categories, types, codes, names, descriptions.
async fn catalog(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session(&state, &headers) else {
        return sign_in_page(&headers, StatusCode::OK, None);
    };
    let catalogs = match state.catalogs().effective(state.control(), &session.tenant) {
        Ok(catalogs) => catalogs,
        Err(err) => {
            tracing::error!(error = %err.message, "the catalog page could not read the catalogs");
            return problem_page(
                StatusCode::SERVICE_UNAVAILABLE,
                UNAVAILABLE,
                "The catalogs cannot be read right now. Try again in a moment; if this persists, the server's log says why.",
                BACK,
                false,
            );
        }
    };
    let catalogs = catalogs
        .catalogs
        .iter()
        .map(|catalog| {
            let mut entries: Vec<EntryView> = catalog
                .entries()
                .iter()
                .map(|entry| EntryView {
                    category: entry.category.as_str().to_owned(),
                    event_type: entry.event_type.as_str().to_owned(),
                    code: entry.code,
                    name: entry.name.as_str().to_owned(),
                    description: entry
                        .description
                        .as_ref()
                        .map_or_else(String::new, |d| d.as_str().to_owned()),
                })
                .collect();
            entries.sort_by(|a, b| (&a.category, &a.event_type).cmp(&(&b.category, &b.event_type)));
            CatalogView {
                id: catalog.id().to_owned(),
                entries,
            }
        })
        .collect();
    page(
        StatusCode::OK,
        CatalogPage {
            tenant: session.tenant.as_str(),
            role: session.role.as_str(),
            csrf: &session.csrf,
            catalogs,
        }
        .render(),
        &[],
    )
}

#[derive(Template)]
#[template(path = "integrity.html")]
struct IntegrityPage<'a> {
    tenant: &'a str,
    role: &'a str,
    csrf: &'a str,
    tree_size: u64,
    checkpoint: String,
    verifier_key: String,
    origin: String,
}

/// The latest checkpoint, the verifier key, and the command that verifies an export.
async fn integrity(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session(&state, &headers) else {
        return sign_in_page(&headers, StatusCode::OK, None);
    };
    let checkpoint = match state.ledger().checkpoint(&session.tenant) {
        Ok(note) => note.map_or_else(String::new, |note| note.to_string()),
        Err(err) => {
            tracing::error!(error = %err, "the integrity page could not read the checkpoint");
            return unreadable();
        }
    };
    let tree_size = checkpoint_size(&checkpoint).unwrap_or(0);
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    page(
        StatusCode::OK,
        IntegrityPage {
            tenant: session.tenant.as_str(),
            role: session.role.as_str(),
            csrf: &session.csrf,
            tree_size,
            checkpoint,
            verifier_key: state.ledger().verifier().to_vkey_string(),
            origin: format!("http://{host}"),
        }
        .render(),
        &[],
    )
}

/// An embedded asset. Browsers keep it but ask again each time (`no-cache`) with its
/// `ETag`, a hash of its bytes, and get a 304 while it is unchanged: after an upgrade,
/// pages never run an older script than their own.
struct Asset {
    content_type: &'static str,
    body: &'static str,
    etag: std::sync::OnceLock<String>,
}

impl Asset {
    const fn new(content_type: &'static str, body: &'static str) -> Self {
        Self {
            content_type,
            body,
            etag: std::sync::OnceLock::new(),
        }
    }

    fn serve(&self, headers: &HeaderMap) -> Response {
        let etag = self
            .etag
            .get_or_init(|| format!("\"{}\"", &hex(&digest(self.body))[..16]));
        // `*`, or the tag, also as a weak one (as compressing proxies hand it on).
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .map(str::trim)
                    .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag.as_str())
            });
        let status = if fresh {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        };
        (
            status,
            [
                (header::CONTENT_TYPE, self.content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::ETAG, etag.as_str()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            if fresh { "" } else { self.body },
        )
            .into_response()
    }
}
