//! The veritrail side of the HTTP benchmark: a lean keep-alive HTTP/1.1 client (hyper's
//! connection API, one TCP connection per worker, no pool), the tenant and keys set-up,
//! the preload and the measured phases against a running `veritrail serve`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::load::finish;
use crate::load::{self, Bounds, PhaseResult, Worker};
use crate::synth::{self, Event, QueryKind, QuerySpec};
use crate::{Phase, Workload};

/// One keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            host: addr.to_string(),
        })
    }

    /// Sends one JSON API request (with `key` as its bearer token) and reads the whole
    /// answer.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let auth = key.map(|key| format!("Bearer {key}"));
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let (status, _, body) = self.exchange(method, path, &headers, body).await?;
        Ok((status, body))
    }

    /// Sends one request with `headers` and reads the whole answer, headers included.
    pub(crate) async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, hyper::HeaderMap, Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.unwrap_or_default()))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((status, parts.headers, body))
    }

    /// Sends a GET with `key` and hands each piece of the answer's body to `on_data` as it
    /// arrives; returns the status and headers once the body has ended.
    pub(crate) async fn stream(
        &mut self,
        path: &str,
        key: &str,
        mut on_data: impl FnMut(&[u8]),
    ) -> anyhow::Result<(StatusCode, hyper::HeaderMap)> {
        self.sender.ready().await.context("connection closed")?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(hyper::header::HOST, &self.host)
            .header("authorization", format!("Bearer {key}"))
            .body(Full::new(Bytes::new()))?;
        let response = self.sender.send_request(request).await?;
        let (parts, mut body) = response.into_parts();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                on_data(&data);
            }
        }
        Ok((parts.status, parts.headers))
    }

    /// Sends a JSON body with `key`; the answer must be a success, its body is returned.
    pub(crate) async fn ok_json(
        &mut self,
        method: Method,
        path: &str,
        key: &str,
        json: serde_json::Value,
    ) -> anyhow::Result<Bytes> {
        self.ok(method, path, Some(key), Some(Bytes::from(json.to_string())))
            .await
    }

    /// Sends a request that must answer 200 and returns its body.
    pub(crate) async fn ok(
        &mut self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Bytes> {
        let (status, body) = self.send(method, path, key, body).await?;
        anyhow::ensure!(
            status.is_success(),
            "{path}: {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        Ok(body)
    }
}

/// Ingests events `first..first + count` of `stream` per request: `batch` events each
/// (`batch == 0`: one event object, not an array).
pub(crate) struct IngestWorker {
    conn: Conn,
    key: String,
    stream: String,
    batch: u64,
    scratch: Event,
    text: String,
    body: Bytes,
    n_events: u64,
}

impl Worker for IngestWorker {
    fn prepare(&mut self, i: u64) -> anyhow::Result<()> {
        self.text.clear();
        let n = self.batch.max(1);
        if self.batch > 0 {
            self.text.push('[');
        }
        for k in 0..n {
            if k > 0 {
                self.text.push(',');
            }
            self.scratch.fill(&self.stream, i * n + k);
            self.scratch.write_json(&mut self.text);
        }
        if self.batch > 0 {
            self.text.push(']');
        }
        self.body = Bytes::from(std::mem::take(&mut self.text));
        self.n_events = n;
        Ok(())
    }

    async fn call(&mut self) -> anyhow::Result<u64> {
        let body = self.body.clone();
        self.conn
            .ok(Method::POST, "/api/v1/events", Some(&self.key), Some(body))
            .await?;
        Ok(self.n_events)
    }
}

#[derive(Deserialize)]
struct SearchPage {
    events: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct CountPage {
    total: u64,
    #[serde(default)]
    groups: Option<Vec<Group>>,
}

#[derive(Deserialize)]
struct Group {
    key: String,
    count: u64,
}

#[derive(Deserialize)]
struct CategoryList {
    categories: Vec<CategoryCount>,
}

#[derive(Deserialize)]
struct CategoryCount {
    count: u64,
}

/// Asks query `i` of `kind`.
pub(crate) struct SearchWorker {
    pub(crate) conn: Conn,
    pub(crate) key: String,
    pub(crate) kind: QueryKind,
    pub(crate) path: String,
}

/// `GET` path of a query.
fn query_path(spec: &QuerySpec) -> String {
    let mut path = String::new();
    let time = |ms: i64| {
        let mut text = String::new();
        synth::rfc3339_ms(ms, &mut text);
        text
    };
    match spec {
        QuerySpec::Filtered {
            family,
            from_ms,
            to_ms,
        } => {
            let _ = write!(
                path,
                "/api/v1/events?category={}&from={}&to={}&limit=50",
                synth::FAMILIES[*family],
                time(*from_ms),
                time(*to_ms)
            );
        }
        QuerySpec::Text { words } => {
            let _ = write!(path, "/api/v1/events?q={}&limit=50", words.join("%20"));
        }
        QuerySpec::CountByFamily { from_ms, to_ms } => {
            let _ = write!(
                path,
                "/api/v1/events/count?from={}&to={}&group_by=category",
                time(*from_ms),
                time(*to_ms)
            );
        }
        QuerySpec::Categories => path.push_str("/api/v1/catalog/categories"),
    }
    path
}

impl Worker for SearchWorker {
    fn prepare(&mut self, i: u64) -> anyhow::Result<()> {
        self.path = query_path(&self.kind.query(i));
        Ok(())
    }

    async fn call(&mut self) -> anyhow::Result<u64> {
        let body = self
            .conn
            .ok(Method::GET, &self.path, Some(&self.key), None)
            .await?;
        if self.kind == QueryKind::Count {
            let page: CountPage = serde_json::from_slice(&body)?;
            let groups: u64 = page
                .groups
                .unwrap_or_default()
                .iter()
                .filter(|group| synth::FAMILIES.contains(&group.key.as_str()))
                .map(|group| group.count)
                .sum();
            anyhow::ensure!(groups == page.total, "the categories do not add up");
            Ok(page.total)
        } else if self.kind == QueryKind::Categories {
            let list: CategoryList = serde_json::from_slice(&body)?;
            Ok(list.categories.iter().map(|category| category.count).sum())
        } else {
            let page: SearchPage = serde_json::from_slice(&body)?;
            Ok(page.events.len() as u64)
        }
    }
}

/// The keys the benchmark uses.
pub(crate) struct Keys {
    pub(crate) publisher: String,
    pub(crate) viewer: String,
    /// An admin's key: the catalog import, and the Activity page's sign-in.
    pub(crate) admin: String,
}

#[derive(Deserialize)]
struct KeyCreated {
    secret: String,
}

/// Makes the keys, and the tenant first if `create`.
pub(crate) async fn set_up(
    addr: SocketAddr,
    admin_key: &str,
    tenant: &str,
    create: bool,
) -> anyhow::Result<Keys> {
    let mut conn = Conn::open(addr).await?;
    if create {
        conn.ok(
            Method::POST,
            "/api/v1/tenants",
            Some(admin_key),
            Some(Bytes::from(format!("{{\"id\":\"{tenant}\"}}"))),
        )
        .await
        .context("creating the tenant")?;
    }
    let mut key = async |role: &str| -> anyhow::Result<String> {
        let body = conn
            .ok(
                Method::POST,
                &format!("/api/v1/tenants/{tenant}/keys"),
                Some(admin_key),
                Some(Bytes::from(format!("{{\"role\":\"{role}\"}}"))),
            )
            .await
            .with_context(|| format!("creating a {role} key"))?;
        Ok(serde_json::from_slice::<KeyCreated>(&body)?.secret)
    };
    let publisher = key("publisher").await?;
    let viewer = key("viewer").await?;
    let catalog_admin = key("admin").await?;
    // The catalog of the synthetic types: each family is a category, as on PostgreSQL.
    let catalog = serde_json::json!({
        "format": "veritrail-catalog/v1",
        "id": "bench",
        "events": synth::FAMILIES.iter().zip(synth::TYPES.iter()).flat_map(|(family, types)| {
            types.iter().map(move |kind| serde_json::json!({
                "type": format!("{family}.{kind}"),
                "name": kind.replace('_', " "),
                "category": family,
            }))
        }).collect::<Vec<_>>(),
    });
    conn.ok(
        Method::PUT,
        "/api/v1/catalog",
        Some(&catalog_admin),
        Some(Bytes::from(catalog.to_string())),
    )
    .await
    .context("importing the catalog")?;
    Ok(Keys {
        publisher,
        viewer,
        admin: catalog_admin,
    })
}

/// Selected counters of `/metrics`.
#[derive(Debug, Default, Clone)]
pub(crate) struct ServerMetrics {
    values: HashMap<String, f64>,
}

impl ServerMetrics {
    pub(crate) async fn read(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut conn = Conn::open(addr).await?;
        let body = conn.ok(Method::GET, "/metrics", None, None).await?;
        let text = String::from_utf8_lossy(&body);
        let values = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.contains("_bucket"))
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect();
        Ok(Self { values })
    }

    pub(crate) fn get(&self, name: &str) -> f64 {
        self.values.get(name).copied().unwrap_or(0.0)
    }

    /// Commits, events per commit, mean commit time and mean server time of `route`
    /// between `self` (before) and `after`.
    pub(crate) fn describe(&self, after: &ServerMetrics, method: &str, route: &str) -> String {
        let delta = |name: &str| after.get(name) - self.get(name);
        let commits = delta("veritrail_ledger_commits_total");
        let events = delta("veritrail_ingested_events_total");
        let commit_secs = delta("veritrail_ledger_commit_seconds_sum");
        let labels = format!("{{method=\"{method}\",route=\"{route}\"}}");
        let requests = delta(&format!(
            "veritrail_http_request_duration_seconds_count{labels}"
        ));
        let request_secs = delta(&format!(
            "veritrail_http_request_duration_seconds_sum{labels}"
        ));
        let mut text = String::new();
        if commits > 0.0 {
            let _ = write!(
                text,
                "server: {commits:.0} ledger commits, {:.1} events/commit, commit (write+fdatasync) mean {:.3} ms; ",
                events / commits,
                commit_secs / commits * 1000.0,
            );
        }
        if requests > 0.0 {
            let _ = write!(
                text,
                "server-side request time mean {:.3} ms",
                request_secs / requests * 1000.0
            );
        }
        text
    }
}

#[derive(Deserialize)]
struct Ready {
    search_lag_events: u64,
}

/// Waits until every acknowledged event is searchable; the time it took.
pub(crate) async fn wait_searchable(
    addr: SocketAddr,
    max_wait: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut conn = Conn::open(addr).await?;
    loop {
        let body = conn.ok(Method::GET, "/readyz", None, None).await?;
        let ready: Ready = serde_json::from_slice(&body)?;
        if ready.search_lag_events == 0 {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < max_wait,
            "search lag still {} events after {max_wait:?}",
            ready.search_lag_events
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn ingest_workers(
    addr: SocketAddr,
    key: &str,
    stream: &str,
    connections: usize,
    batch: u64,
) -> anyhow::Result<Vec<IngestWorker>> {
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        workers.push(IngestWorker {
            conn: Conn::open(addr).await?,
            key: key.to_owned(),
            stream: stream.to_owned(),
            batch,
            scratch: Event::default(),
            text: String::new(),
            body: Bytes::new(),
            n_events: 0,
        });
    }
    Ok(workers)
}

const SYSTEM: &str = "veritrail";

/// The whole veritrail run: set-up, preload, searches, exports, ingest; one result per
/// phase.
pub(crate) async fn run(
    addr: SocketAddr,
    admin_key: &str,
    workload: &Workload,
) -> anyhow::Result<Vec<PhaseResult>> {
    let mut results = Vec::new();
    let keys = set_up(
        addr,
        admin_key,
        &workload.tenant,
        workload.runs(Phase::Preload),
    )
    .await?;
    if workload.runs(Phase::Preload) {
        preload(addr, &keys, workload, &mut results).await?;
    }
    if workload.runs(Phase::Search) {
        search_phases(addr, &keys, workload, &mut results).await?;
    }
    if workload.runs(Phase::Activity) {
        crate::activity::phases(addr, &keys.admin, workload, &mut results).await?;
    }
    if workload.runs(Phase::Export) {
        crate::export::phases(addr, &keys.viewer, workload, &mut results).await?;
    }
    if workload.runs(Phase::Ingest) {
        ingest_phases(addr, &keys, workload, &mut results).await?;
    }
    Ok(results)
}

/// Preload: batches of `preload_batch`, part of the set-up.
async fn preload(
    addr: SocketAddr,
    keys: &Keys,
    workload: &Workload,
    results: &mut Vec<PhaseResult>,
) -> anyhow::Result<()> {
    let pid = workload.server_pid;
    let batch = workload.preload_batch;
    let workers = ingest_workers(
        addr,
        &keys.publisher,
        "pre",
        workload.preload_connections,
        batch,
    )
    .await?;
    let before = ServerMetrics::read(addr).await?;
    let mut preload = load::run_phase(
        SYSTEM,
        "preload",
        &format!("preload, batches of {batch} (set-up, not a bar)"),
        workers,
        Bounds {
            max_requests: workload.events / batch,
            max_time: Duration::from_secs(workload.max_preload_secs),
        },
        pid,
    )
    .await?;
    let after = ServerMetrics::read(addr).await?;
    let lag = wait_searchable(addr, Duration::from_secs(workload.max_preload_secs)).await?;
    preload.note = format!(
        "{}; searchable {:.1} s after the last ack",
        before.describe(&after, "POST", "/api/v1/events"),
        lag.as_secs_f64()
    );
    anyhow::ensure!(
        preload.errors == 0 && preload.events == workload.events / batch * batch,
        "preload incomplete: {} events, {} errors",
        preload.events,
        preload.errors
    );
    finish(workload.out.as_deref(), results, preload)?;
    tokio::time::sleep(Duration::from_secs(workload.settle_secs)).await;
    Ok(())
}

async fn search_phases(
    addr: SocketAddr,
    keys: &Keys,
    workload: &Workload,
    results: &mut Vec<PhaseResult>,
) -> anyhow::Result<()> {
    let pid = workload.server_pid;
    for kind in workload.query_kinds() {
        let mut workers = Vec::new();
        for _ in 0..workload.search_connections {
            workers.push(SearchWorker {
                conn: Conn::open(addr).await?,
                key: keys.viewer.clone(),
                kind,
                path: String::new(),
            });
        }
        // Warm-up (not measured): other query numbers than the measured ones.
        let warm = load::warm_up(workers, workload.warmup_secs).await?;
        let mut result = load::run_phase(
            SYSTEM,
            kind.key(),
            kind.name(),
            warm,
            workload.search_bounds(),
            pid,
        )
        .await?;
        result.note = format!(
            "{:.1} results/query",
            result.events as f64 / result.requests.max(1) as f64
        );
        finish(workload.out.as_deref(), results, result)?;
    }
    Ok(())
}

async fn ingest_phases(
    addr: SocketAddr,
    keys: &Keys,
    workload: &Workload,
    results: &mut Vec<PhaseResult>,
) -> anyhow::Result<()> {
    let pid = workload.server_pid;
    for (key, name, connections, batch) in workload.ingest_phases() {
        let workers = ingest_workers(addr, &keys.publisher, key, connections, batch).await?;
        let before = ServerMetrics::read(addr).await?;
        let mut result =
            load::run_phase(SYSTEM, key, &name, workers, workload.ingest_bounds(), pid).await?;
        let after = ServerMetrics::read(addr).await?;
        let lag = wait_searchable(addr, Duration::from_secs(workload.max_preload_secs)).await?;
        result.note = format!(
            "{}; searchable {:.1} s after the last ack",
            before.describe(&after, "POST", "/api/v1/events"),
            lag.as_secs_f64()
        );
        finish(workload.out.as_deref(), results, result)?;
        tokio::time::sleep(Duration::from_secs(workload.settle_secs)).await;
    }
    Ok(())
}
