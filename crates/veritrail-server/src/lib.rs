//! veritrail's HTTP service: the only crate that knows HTTP.
//!
//! [`Server`] opens the data directory (ledger, control plane, search index), starts the
//! indexer, and serves [`Server::router`] until a shutdown signal, then finishes in-flight
//! requests and the ledger's queue. Handlers (in [`routes`] and [`ui`]) speak HTTP; the
//! service modules beside them do the work.
//!
//! # Layout
//!
//! - [`routes`]: the API's handlers and their table; [`openapi`]: Swagger UI and the spec.
//! - [`ui`]: the web UI (sign-in, the Activity page, the embedded view).
//! - [`extract`]: the extractors that answer bad requests with the API's errors.
//! - [`error`]: `ApiError`, the one error type, mapped by what the caller should do.
//! - [`auth`]: the role rules, in one place; [`viewer`]: viewer tokens.
//! - [`params`]: the filters, cursors and flags the API and the UI share.
//! - [`ingest`]: a body to validated events, through the catalogs, into the ledger.
//! - [`records`]: checked records and search pages; [`proofs`]: checkpoints and proofs.
//! - [`tail`]: the live tail (Server-Sent Events).
//! - [`export`]: streamed downloads: the event export (JSON Lines, CSV) and the bundle's body.
//! - [`lifecycle`]: retention, erasures and legal holds; the retention job.
//! - [`scrub`]: the scrubber, re-verifying the stored ledger in the background.
//! - [`catalogs`]: the shared catalogs and each tenant's effective ones.
//! - [`control`]: tenants, API keys, settings (`control.redb`).
//! - [`audit`]: the service's own audit events, written to each tenant's log.
//! - [`config`]: defaults, TOML file, `VERITRAIL_*` environment.
//! - [`conn`]: the accept loop and what each connection is held to.
//! - [`limits`]: what one key or tenant may hold at once; [`ratelimit`]: token buckets.
//! - [`indexer`]: keeps the search index caught up with the ledger.
//! - [`webhooks`]: webhook subscriptions and their delivery from the ledger.
//! - [`metrics`]: Prometheus text at `/metrics`. [`clock`]: the wall clock, in one place.
//! - [`demo`]: the demo tenant of `veritrail serve --demo`.

pub mod audit;
pub mod auth;
pub mod catalogs;
pub mod clock;
pub mod config;
pub mod conn;
pub mod control;
pub mod demo;
pub mod error;
pub mod export;
pub mod extract;
pub mod indexer;
pub mod ingest;
pub mod lifecycle;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod proofs;
pub mod ratelimit;
pub mod records;
pub mod routes;
pub mod scrub;
pub mod tail;
pub mod ui;
pub mod viewer;
pub mod webhooks;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use veritrail_api::error_codes;
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, Ledger, LedgerConfig, keys};
use veritrail_search::{SearchIndex, SearchOptions};

pub use config::Config;
use control::ControlPlane;
use error::ApiError;
use indexer::Indexer;
use metrics::Metrics;
use ratelimit::RateLimiter;

tokio::task_local! {
    /// The id of the request being served, for error bodies and logs.
    static REQUEST_ID: String;
}

/// The current request's id, inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Everything handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    ledger: Arc<Ledger>,
    control: ControlPlane,
    catalogs: catalogs::CatalogService,
    search: Arc<SearchIndex>,
    indexer: Indexer,
    metrics: Metrics,
    limiter: RateLimiter,
    /// Requests per viewer token to the embedded view.
    embed_limiter: RateLimiter,
    /// Events per service key and tenant.
    tenant_limiter: RateLimiter,
    /// Held while tenants are created on first write, until their creation is committed.
    tenant_creation: tokio::sync::Mutex<()>,
    /// Viewer-token uses recorded, by minute.
    embed_uses: viewer::Uses,
    /// Service keys' reads recorded, by key, tenant, read and minute.
    service_reads: viewer::Uses,
    webhooks: webhooks::WebhookService,
    sessions: ui::Sessions,
    blocking: limits::BlockingPool,
    streams: Arc<limits::Streams>,
    ingest_admission: Arc<limits::IngestAdmission>,
    disk_full: ingest::DiskFull,
    lifecycle: lifecycle::Lifecycle,
    scrubber: scrub::Scrubber,
    connections: Arc<conn::ConnStats>,
    shutting_down: AtomicBool,
    /// Becomes true when shutdown starts: long-lived responses (the live tail) end.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// The background jobs of `spawn_every`: shutdown waits for each to end, so that none
    /// holds the stores open after `serve` returns.
    jobs: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl AppState {
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.inner.ledger
    }

    pub fn control(&self) -> &ControlPlane {
        &self.inner.control
    }

    pub fn catalogs(&self) -> &catalogs::CatalogService {
        &self.inner.catalogs
    }

    pub fn search(&self) -> &Arc<SearchIndex> {
        &self.inner.search
    }

    pub fn indexer(&self) -> &Indexer {
        &self.inner.indexer
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The rate limit of each viewer token on the embedded view.
    /// Service keys' reads recorded, by key, tenant, read and minute.
    pub fn service_reads(&self) -> &viewer::Uses {
        &self.inner.service_reads
    }

    /// Events per service key and tenant.
    pub fn tenant_limiter(&self) -> &RateLimiter {
        &self.inner.tenant_limiter
    }

    /// Held while tenants are created on first write (see [`ingest`]).
    pub fn tenant_creation(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.tenant_creation
    }

    pub fn embed_limiter(&self) -> &RateLimiter {
        &self.inner.embed_limiter
    }

    /// The viewer-token uses recorded this minute.
    pub fn embed_uses(&self) -> &viewer::Uses {
        &self.inner.embed_uses
    }

    pub fn webhooks(&self) -> &webhooks::WebhookService {
        &self.inner.webhooks
    }

    pub(crate) fn inner_sessions(&self) -> &ui::Sessions {
        &self.inner.sessions
    }

    /// Runs storage work (reads, searches, counts) on a blocking thread, within `tenant`'s
    /// share of them ([`limits::BlockingPool`]).
    pub async fn blocking<T: Send + 'static>(
        &self,
        tenant: &veritrail_core::event::TenantId,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.inner.blocking.run(Some(tenant), work).await
    }

    /// [`AppState::blocking`] for work of no tenant (the server admin's).
    pub async fn blocking_untenanted<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.inner.blocking.run(None, work).await
    }

    /// The blocking pool (for `/metrics`).
    pub fn blocking_pool(&self) -> &limits::BlockingPool {
        &self.inner.blocking
    }

    /// Ingest bodies in flight, and the permits for more.
    pub fn ingest_admission(&self) -> &Arc<limits::IngestAdmission> {
        &self.inner.ingest_admission
    }

    /// The disk-full episode open now, if any.
    pub fn disk_full(&self) -> &ingest::DiskFull {
        &self.inner.disk_full
    }

    /// Retention runs, erasures and holds: one at a time per tenant.
    pub fn lifecycle(&self) -> &lifecycle::Lifecycle {
        &self.inner.lifecycle
    }

    /// The scrubber's counters.
    pub fn scrubber(&self) -> &scrub::Scrubber {
        &self.inner.scrubber
    }

    /// Long-lived answers open now, and the permits for more.
    pub fn streams(&self) -> &Arc<limits::Streams> {
        &self.inner.streams
    }

    /// Connections open, refused and closed for stalling.
    pub fn connections(&self) -> &conn::ConnStats {
        &self.inner.connections
    }

    /// Changes to true when shutdown starts.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Runs `job` every `interval` (the first time one interval from now), in the
    /// background, until shutdown starts.
    pub fn spawn_every<F, Fut>(&self, interval: std::time::Duration, job: F)
    where
        F: Fn(AppState) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let state = self.clone();
        let mut shutdown = self.shutdown_signal();
        let handle = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => return,
                }
                if state.is_shutting_down() {
                    return;
                }
                job(state.clone()).await;
            }
        });
        self.inner
            .jobs
            .lock()
            .expect("jobs lock poisoned")
            .push(handle);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Events acknowledged but not yet searchable, over all tenants.
    pub fn search_lag(&self) -> u64 {
        self.ledger()
            .committed_sizes()
            .iter()
            .map(|(tenant, size)| size.saturating_sub(self.search().applied(tenant)))
            .sum()
    }

    pub fn indexer_commits(&self) -> u64 {
        self.inner.indexer.commits()
    }
}

/// A veritrail server over one data directory.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    new_admin_key: Option<String>,
}

impl Server {
    /// Opens the data directory (creating it on first start) and starts the ledger's
    /// sequencer and the indexer.
    pub fn open(config: Config) -> anyhow::Result<Server> {
        let dir = config.data_dir.clone();
        keys::create_private_dir(&dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        for warning in private_mode_warnings(&dir) {
            tracing::warn!("{warning}");
        }
        let signer = keys::load_or_create_signer(&dir.join("log-key"), &config.origin)
            .context("cannot load the log signing key")?;
        let options = EmbeddedOptions {
            compact_bytes_per_second: config.retention.compaction_bytes_per_second,
            max_open_tenants: config.limits.max_open_tenants,
            ..EmbeddedOptions::default()
        };
        limits::check_open_files_limit(&config.limits);
        let store =
            EmbeddedStore::open(&dir.join("ledger"), options).context("cannot open the ledger")?;
        let ledger = Arc::new(
            Ledger::start(
                Arc::new(store),
                signer,
                LedgerConfig {
                    max_queued_events: config.limits.max_queued_events,
                    ..LedgerConfig::default()
                },
            )
            .context("cannot start the ledger")?,
        );
        let (control, new_admin_key) =
            ControlPlane::open(&dir).context("cannot open the control plane")?;
        if let Some(key) = &config.admin_key {
            control.add_configured_admin_key(key);
        }
        let search_options = SearchOptions {
            writer_memory_bytes: config.search.writer_memory_mib * 1024 * 1024,
            limits: veritrail_search::QueryLimits {
                max_words: config.limits.max_query_words,
                max_prefix_words: config.limits.max_prefix_words,
                max_prefix_terms: config.limits.max_prefix_terms,
                max_buckets: config.limits.max_histogram_buckets,
                max_filter_values: config.limits.max_filter_values,
            },
            ..SearchOptions::default()
        };
        let search_dir = dir.join("search");
        // Opened on a thread of the indexer's priority: tantivy's merge threads, made now,
        // inherit it (see `indexer::yield_to_ingest`).
        let search = std::thread::scope(|scope| {
            scope
                .spawn(|| -> anyhow::Result<_> {
                    indexer::yield_to_ingest();
                    match SearchIndex::open(&search_dir, search_options) {
                        // The index is derived from the ledger: one of another version is
                        // rebuilt.
                        Err(veritrail_search::SearchError::IncompatibleFormat(why)) => {
                            tracing::warn!(%why, "the search index is of another format; rebuilding it from the ledger");
                            std::fs::remove_dir_all(&search_dir)
                                .context("cannot remove the old search index")?;
                            Ok(SearchIndex::open(&search_dir, search_options))
                        }
                        other => Ok(other),
                    }
                })
                .join()
                .map_err(|_| anyhow::anyhow!("opening the search index panicked"))?
        })?;
        let search = Arc::new(
            search.context("cannot open the search index (`veritrail reindex` rebuilds it)")?,
        );
        let indexer = Indexer::start(
            Arc::clone(&ledger),
            Arc::clone(&search),
            std::time::Duration::from_millis(config.search.commit_interval_ms),
        )
        .context("cannot start the indexer")?;
        let limiter = RateLimiter::new(&config.rate_limit);
        let embed_limiter = RateLimiter::embedded(config.rate_limit.embed_per_minute);
        let tenant_limiter = RateLimiter::per_tenant(
            config.rate_limit.tenant_events_per_second,
            config.rate_limit.tenant_events_burst,
        );
        let catalogs =
            catalogs::CatalogService::new().context("cannot load the shipped catalogs")?;
        if let Some(unknown) = config
            .tenants
            .default_catalogs
            .iter()
            .find(|id| !catalogs.shared().contains_key(id))
        {
            anyhow::bail!(
                "tenants.default_catalogs names {unknown:?}, which is not a shared catalog (GET /api/v1/catalog/shared lists them)"
            );
        }
        let ingest_admission = Arc::new(limits::IngestAdmission::new(
            config.limits.max_ingest_bytes_in_flight,
            std::time::Duration::from_millis(config.limits.ingest_target_latency_ms),
        ));
        let blocking = limits::BlockingPool::new(
            config.limits.blocking_threads,
            config.limits.blocking_per_tenant,
        );
        let streams = Arc::new(limits::Streams::new(
            config.limits.max_streams_per_key,
            config.limits.max_streams_per_tenant,
        ));
        let webhooks = webhooks::WebhookService::open(&dir, &config.webhooks)
            .context("cannot open the webhook store")?;
        Ok(Server {
            state: AppState {
                inner: Arc::new(Inner {
                    config,
                    ledger,
                    control,
                    catalogs,
                    search,
                    indexer,
                    metrics: Metrics::default(),
                    embed_limiter,
                    tenant_limiter,
                    tenant_creation: tokio::sync::Mutex::new(()),
                    embed_uses: viewer::Uses::default(),
                    service_reads: viewer::Uses::default(),
                    limiter,
                    webhooks,
                    sessions: ui::Sessions::default(),
                    blocking,
                    streams,
                    ingest_admission,
                    disk_full: ingest::DiskFull::default(),
                    lifecycle: lifecycle::Lifecycle::default(),
                    scrubber: scrub::Scrubber::default(),
                    connections: Arc::default(),
                    shutting_down: AtomicBool::new(false),
                    shutdown: tokio::sync::watch::Sender::new(false),
                    jobs: std::sync::Mutex::new(Vec::new()),
                }),
            },
            new_admin_key,
        })
    }

    /// The server-admin key made at first start: show it once, it is stored only hashed.
    pub fn take_new_admin_key(&mut self) -> Option<String> {
        self.new_admin_key.take()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The whole HTTP API.
    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes; then stops taking connections,
    /// finishes every in-flight request (ingests reply once durable), drains the ledger's
    /// queue and makes every stored event searchable.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        state.webhooks().start(&state);
        lifecycle::spawn_job(&state);
        scrub::spawn_job(&state);
        let router = self.router();
        let flag_state = state.clone();
        conn::serve(
            listener,
            router,
            conn::ConnLimits::of(&state.config().limits),
            Arc::clone(&state.inner.connections),
            async move {
                shutdown.await;
                flag_state.inner.shutting_down.store(true, Ordering::SeqCst);
                flag_state.inner.shutdown.send_replace(true);
                tracing::info!("shutting down: finishing in-flight requests");
            },
        )
        .await;
        // The background jobs end (a pass under way stops or finishes first), dropping what
        // they hold of the state.
        let jobs = std::mem::take(&mut *state.inner.jobs.lock().expect("jobs lock poisoned"));
        for job in jobs {
            if let Err(error) = job.await {
                tracing::error!(%error, "a background job failed");
            }
        }
        let inner = Arc::clone(&state.inner);
        tokio::task::spawn_blocking(move || {
            // A compaction or scrub under way ends first (a scrub stops at once; a
            // compaction finishes the segment it is rewriting).
            drop(inner.lifecycle.maintenance());
            inner
                .lifecycle
                .wait_compaction_stopped(std::time::Duration::from_secs(60));
            inner.ledger.shutdown();
            inner.indexer.stop();
            if let Err(error) = inner.webhooks.flush() {
                tracing::error!(%error, "the last webhook progress could not be written");
            }
        })
        .await
        .context("shutdown")?;
        // The stores close when the last holder of the state lets go: a connection task or
        // a blocking read that outlived its request may still hold it for a moment. Wait
        // for them and close the stores here, so that when `run` returns the data directory
        // is free to be opened again.
        drop(self);
        let inner = Arc::clone(&state.inner);
        drop(state);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&inner) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if Arc::strong_count(&inner) > 1 {
            tracing::warn!(
                "the server state is still held 10 s after shutdown; the stores close when it is let go"
            );
        }
        tokio::task::spawn_blocking(move || drop(inner))
            .await
            .context("closing the stores")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Rebuilds the search index of a data directory from its ledger (the server must be
/// stopped). Returns the number of records indexed.
pub fn reindex(config: &Config, progress: &mut dyn FnMut(u64)) -> anyhow::Result<u64> {
    let dir = &config.data_dir;
    let signer = keys::load_or_create_signer(&dir.join("log-key"), &config.origin)
        .context("cannot load the log signing key")?;
    let store = EmbeddedStore::open(&dir.join("ledger"), EmbeddedOptions::default())
        .context("cannot open the ledger (is the server still running?)")?;
    let ledger = Ledger::start(Arc::new(store), signer, LedgerConfig::default())
        .context("cannot start the ledger")?;
    let search_dir = dir.join("search");
    let search = match SearchIndex::open(&search_dir, SearchOptions::default()) {
        Err(veritrail_search::SearchError::IncompatibleFormat(_)) => {
            std::fs::remove_dir_all(&search_dir).context("cannot remove the old search index")?;
            SearchIndex::open(&search_dir, SearchOptions::default())
        }
        other => other,
    }
    .context("cannot open the search index")?;
    search.clear().context("cannot clear the search index")?;
    let mut done = 0;
    let total = indexer::catch_up(&ledger, &search, &mut || {
        done += 1;
        progress(done);
    })?;
    Ok(total)
}

/// The router over `state`: every route, then the middleware.
pub fn app(state: AppState) -> Router {
    routes::router(&state)
        .merge(openapi::router())
        .merge(ui::router())
        .fallback(|| async {
            ApiError::not_found("no such route; the API is described at /api/audit/swagger/")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                error_codes::METHOD_NOT_ALLOWED,
                "this route does not take that method; the API is described at /api/audit/swagger/",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), timeout))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            head_limits,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a handler panicked").into_response()
            },
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Request id, request log line, request metrics and the `Server-Timing` header.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_owned);
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", id = %request_id);
    let mut response = REQUEST_ID
        .scope(
            request_id.clone(),
            tracing::Instrument::instrument(next.run(request), span),
        )
        .await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics()
        .observe_request(method.as_str(), &route, status, seconds);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    // The server's own time, for browsers' developer tools and the page benchmark (for a
    // streamed body, the time to its headers).
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={:.3}", seconds * 1000.0)) {
        response.headers_mut().insert("server-timing", value);
    }
    tracing::debug!(
        target: "veritrail::access",
        request_id = %request_id,
        method = %method,
        path = %path,
        status,
        millis = seconds * 1000.0,
        "request"
    );
    response
}

/// 414 for a request target over `limits.max_uri_bytes` and 431 for a head over
/// `limits.max_header_bytes`, with the API's error body (hyper itself closes a connection
/// whose head is over twice that, with a bare 431).
async fn head_limits(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &state.config().limits;
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > limits.max_uri_bytes {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            error_codes::URI_TOO_LONG,
            format!(
                "the request's path and query are {target} bytes; the server takes at most {} (limits.max_uri_bytes)",
                limits.max_uri_bytes
            ),
        )
        .into_response();
    }
    let head: usize = target
        + request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if head > limits.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            error_codes::HEADERS_TOO_LARGE,
            format!(
                "the request's headers are {head} bytes; the server takes at most {} (limits.max_header_bytes)",
                limits.max_header_bytes
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// 504 after the configured time; exports (long streams) are exempt.
async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.uri().path() == veritrail_api::paths::LOG_EXPORT {
        return next.run(request).await;
    }
    match tokio::time::timeout(state.config().request_timeout(), next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            error_codes::TIMEOUT,
            "the request took longer than the server's timeout; an ingest may still complete, and retrying it with the same event ids is safe",
        )
        .into_response(),
    }
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    control::hex(&bytes)
}

/// The files of a data directory that hold secrets: the log signing key, the control plane
/// (key hashes, the viewer-token signing key) and the webhook store (signing secrets).
const SECRET_FILES: [&str; 3] = ["log-key", "control.redb", "webhooks.redb"];

/// What is readable by others than the server's user in data directory `dir`: the directory
/// itself (its files hold every tenant's events) and the files that hold secrets. The
/// server warns of each at start; it does not change modes the operator chose.
pub fn private_mode_warnings(dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(mode) = keys::loose_mode(dir) {
        warnings.push(format!(
            "the data directory {} can be read by other users (mode {mode:o}); it holds every tenant's events and the keys: run chmod 700 on it",
            dir.display()
        ));
    }
    for name in SECRET_FILES {
        let path = dir.join(name);
        if let Some(mode) = keys::loose_mode(&path) {
            warnings.push(format!(
                "{} holds secrets and can be read by other users (mode {mode:o}): run chmod 600 on it",
                path.display()
            ));
        }
    }
    warnings
}

/// Whether `dir` looks like a data directory a server has used.
pub fn is_data_dir(dir: &Path) -> bool {
    dir.join("log-key").exists()
}
