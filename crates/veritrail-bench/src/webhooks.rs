//! `veritrail-bench webhooks`: webhook delivery and live-tail lag against a running
//! `veritrail serve` (see `scripts/bench-webhooks`).
//!
//! The run makes a fresh tenant with one subscription per type family `bench.t{i}.*`, all
//! pointing at an in-process receiver (one path per subscription) that verifies every
//! delivery's signature, and opens one live-tail stream. Then it sends events at a steady
//! rate (batches on a fixed schedule over a few keep-alive connections, the types round-robin
//! over the families, every event with its own client id), notes when each batch was
//! acknowledged, and, after `--secs`, waits up to `--drain-secs` for every acknowledged event
//! to be delivered and tailed. Lag is acknowledgement to receipt (below zero counts as 0),
//! measured after the warm-up; loss, duplicates and bad signatures count over everything.
//! The server's memory (`/proc/PID/status`) is sampled every 10 s.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use veritrail_core::webhook::{WebhookSecret, verify};

use crate::http::Conn;
use crate::load;

/// The bars a run must meet.
const LAG_P99_BAR_US: u64 = 1_000_000;
/// RSS is flat when, over the second half of the sending, the mean of its last third of
/// samples is at most this fraction above the mean of its first third (means, because one
/// sample swings by ±10% with the allocator and the index's merges).
const RSS_GROWTH_BAR: f64 = 0.10;
/// Width of the timeline's windows and the RSS sampling period.
const WINDOW: Duration = Duration::from_secs(10);
/// Largest lag the histograms hold (longer ones saturate).
const MAX_LAG_US: u64 = 3_600_000_000;

/// `webhooks`: the options.
#[derive(Debug, Clone, Args)]
pub(crate) struct Options {
    /// The server's address, like 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// A server-admin key (to create the tenant and its keys).
    #[arg(long, env = "VERITRAIL_BENCH_ADMIN_KEY")]
    admin_key: String,
    /// The server's PID: its memory (VmRSS) is sampled every 10 s, its CPU time reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Events per second sent, in total.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Subscriptions, each to one type family `bench.t{i}.*` (the events go round-robin
    /// over the families).
    #[arg(long, default_value_t = 10)]
    subscriptions: usize,
    /// How long events are sent.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Events per ingest request.
    #[arg(long, default_value_t = 10)]
    batch: u64,
    /// Keep-alive ingest connections the batches are spread over (each has at most one
    /// request in flight; a batch whose time has come waits for a free one).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Longest wait, after the sending, for every acknowledged event to arrive.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    /// Events acknowledged in the first seconds are left out of the lag histograms (they
    /// still count for loss).
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Append each measurement to this file, one JSON object a line.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A point in time as microseconds since the run's origin, plus one: 0 means "not yet".
type Micros = u64;

/// What happened to one event.
#[derive(Debug, Default)]
struct Slot {
    /// When its ingest reply arrived.
    ack: AtomicU64,
    /// When its subscription first received it.
    delivered: AtomicU64,
    /// When the live tail first received it.
    tailed: AtomicU64,
    deliveries: AtomicU32,
    tails: AtomicU32,
}

/// Everything the sender, the receiver and the tail record, shared.
#[derive(Debug)]
struct Tracker {
    origin: Instant,
    /// Every event id is this and its number.
    id_prefix: String,
    subscriptions: usize,
    slots: Vec<Slot>,
    acked: AtomicU64,
    ingest_errors: AtomicU64,
    first_ingest_error: std::sync::Mutex<Option<String>>,
    /// The sender's lateness against its schedule.
    late_max_us: AtomicU64,
    late_10ms: AtomicU64,
    /// Every POST the receiver got.
    received: AtomicU64,
    unsigned: AtomicU64,
    invalid: AtomicU64,
    /// A delivery on the wrong subscription's path.
    misrouted: AtomicU64,
    /// A `webhook-id` that is not `msg_<subscription>_<seq>`.
    bad_message_id: AtomicU64,
    /// A delivery whose body names no event of this run.
    foreign: AtomicU64,
    tailed: AtomicU64,
    tail_other: AtomicU64,
    tail_reconnects: AtomicU64,
}

impl Tracker {
    fn now(&self) -> Micros {
        micros(self.origin.elapsed()) + 1
    }

    fn at(&self, instant: Instant) -> Micros {
        micros(instant.saturating_duration_since(self.origin)) + 1
    }

    /// The event number of a client id of this run.
    fn index(&self, id: &str) -> Option<usize> {
        let n: usize = id.strip_prefix(&self.id_prefix)?.parse().ok()?;
        (n < self.slots.len()).then_some(n)
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn first_time(cell: &AtomicU64, at: Micros) {
    let _ = cell.compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
}

/// The receiver's view of the subscriptions.
#[derive(Debug)]
struct Receiver {
    tracker: Arc<Tracker>,
    /// By path index: the subscription's id digits (after `wh_`) and secret.
    subscriptions: Vec<(String, WebhookSecret)>,
}

#[derive(Deserialize)]
struct Delivery {
    data: DeliveredRecord,
}

#[derive(Deserialize)]
struct DeliveredRecord {
    id: Option<String>,
    seq: Option<u64>,
}

/// One delivery: note it, check it, answer 204 at once.
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    UrlPath(sub): UrlPath<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    let tracker = &receiver.tracker;
    let at = tracker.now();
    tracker.received.fetch_add(1, Ordering::Relaxed);
    let Some((sub_digits, secret)) = receiver.subscriptions.get(sub) else {
        tracker.misrouted.fetch_add(1, Ordering::Relaxed);
        return AxumStatus::NO_CONTENT;
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let message_id = header("webhook-id");
    match (
        message_id,
        header("webhook-timestamp").and_then(|text| text.parse::<i64>().ok()),
        header("webhook-signature"),
    ) {
        (Some(id), Some(timestamp), Some(signature)) => {
            if !verify(secret, id, timestamp, &body, signature) {
                tracker.invalid.fetch_add(1, Ordering::Relaxed);
            }
        }
        _ => {
            tracker.unsigned.fetch_add(1, Ordering::Relaxed);
        }
    }
    let Ok(delivery) = serde_json::from_slice::<Delivery>(&body) else {
        tracker.foreign.fetch_add(1, Ordering::Relaxed);
        return AxumStatus::NO_CONTENT;
    };
    let expected_id = delivery
        .data
        .seq
        .map(|seq| format!("msg_{sub_digits}_{seq}"));
    if message_id.is_none() || message_id != expected_id.as_deref() {
        tracker.bad_message_id.fetch_add(1, Ordering::Relaxed);
    }
    let Some(n) = delivery.data.id.as_deref().and_then(|id| tracker.index(id)) else {
        tracker.foreign.fetch_add(1, Ordering::Relaxed);
        return AxumStatus::NO_CONTENT;
    };
    if n % tracker.subscriptions != sub {
        tracker.misrouted.fetch_add(1, Ordering::Relaxed);
        return AxumStatus::NO_CONTENT;
    }
    let slot = &tracker.slots[n];
    first_time(&slot.delivered, at);
    slot.deliveries.fetch_add(1, Ordering::Relaxed);
    AxumStatus::NO_CONTENT
}

#[derive(Deserialize)]
struct TenantCreated {
    owner_key: KeyCreated,
}

#[derive(Deserialize)]
struct KeyCreated {
    secret: String,
}

#[derive(Deserialize)]
struct WebhookCreated {
    webhook: WebhookId,
    secret: String,
}

#[derive(Deserialize)]
struct WebhookId {
    id: String,
}

#[derive(Deserialize)]
struct AttemptList {
    attempts: Vec<Attempt>,
}

#[derive(Deserialize)]
struct Attempt {
    delivered: bool,
    error: Option<String>,
    latency_ms: f64,
}

/// Sends a request that must answer 2xx; its body.
async fn expect_ok(
    conn: &mut Conn,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> anyhow::Result<Bytes> {
    let (status, reply) = conn
        .send(
            method,
            path,
            Some(key),
            body.map(|body| Bytes::from(body.to_string())),
        )
        .await?;
    anyhow::ensure!(
        status.is_success(),
        "{path}: {status}: {}",
        String::from_utf8_lossy(&reply[..reply.len().min(300)])
    );
    Ok(reply)
}

/// The keys and subscriptions of the run.
struct SetUp {
    owner: String,
    publisher: String,
    viewer: String,
    /// `(id, secret)` per family.
    subscriptions: Vec<(String, String)>,
}

async fn set_up(options: &Options, tenant: &str, receiver: SocketAddr) -> anyhow::Result<SetUp> {
    let mut conn = Conn::open(options.addr).await?;
    let admin = options.admin_key.as_str();
    let reply = expect_ok(
        &mut conn,
        Method::POST,
        "/api/v1/tenants",
        admin,
        Some(json!({"id": tenant})),
    )
    .await
    .context("creating the tenant")?;
    let owner = serde_json::from_slice::<TenantCreated>(&reply)?
        .owner_key
        .secret;
    let mut keys = Vec::new();
    for role in ["publisher", "viewer"] {
        let reply = expect_ok(
            &mut conn,
            Method::POST,
            &format!("/api/v1/tenants/{tenant}/keys"),
            admin,
            Some(json!({"role": role, "name": "veritrail-bench webhooks"})),
        )
        .await
        .with_context(|| format!("creating a {role} key"))?;
        keys.push(serde_json::from_slice::<KeyCreated>(&reply)?.secret);
    }
    let mut subscriptions = Vec::new();
    for family in 0..options.subscriptions {
        let reply = expect_ok(
            &mut conn,
            Method::POST,
            "/api/v1/webhooks",
            &owner,
            Some(json!({
                "url": format!("http://{receiver}/hook/{family}"),
                "description": format!("veritrail-bench webhooks, family {family}"),
                "filter": {"types": [format!("bench.t{family}.*")]},
            })),
        )
        .await
        .with_context(|| format!("subscribing family {family}"))?;
        let created: WebhookCreated = serde_json::from_slice(&reply)?;
        subscriptions.push((created.webhook.id, created.secret));
    }
    let viewer = keys.pop().context("no viewer key")?;
    let publisher = keys.pop().context("no publisher key")?;
    Ok(SetUp {
        owner,
        publisher,
        viewer,
        subscriptions,
    })
}

/// Starts the receiver on a listener already bound.
fn start_receiver(
    listener: tokio::net::TcpListener,
    receiver: Receiver,
) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .route("/hook/{sub}", axum::routing::post(receive))
        .with_state(Arc::new(receiver));
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("webhooks: the receiver stopped: {err}");
        }
    })
}

#[derive(Deserialize)]
struct TailedRecord {
    id: Option<String>,
}

/// A Server-Sent Events reader: `id` and `data` lines, an event at each blank line.
#[derive(Default)]
struct SseParser {
    pending: Vec<u8>,
    id: Option<u64>,
    data: String,
}

impl SseParser {
    /// Feeds bytes; calls `event(id, data)` for each complete event.
    fn feed(&mut self, bytes: &[u8], mut event: impl FnMut(Option<u64>, &str)) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line);
            start += end + 1;
            if line.is_empty() {
                if !self.data.is_empty() {
                    event(self.id, &self.data);
                    self.data.clear();
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.id = value.parse().ok(),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
                _ => {}
            }
        }
        self.pending.drain(..start);
    }
}

/// The live tail: reads the stream, reconnecting after the last seq seen if it ends.
/// `connected` fires once the first stream has answered.
async fn tail(
    addr: SocketAddr,
    key: String,
    tracker: Arc<Tracker>,
    connected: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
) {
    let mut connected = Some(connected);
    let mut last_seq = None;
    loop {
        let result = tail_once(addr, &key, &tracker, &mut last_seq, &mut connected).await;
        if let Some(connected) = connected.take() {
            let _ = connected.send(result);
            return;
        }
        if let Err(err) = result {
            eprintln!("webhooks: the live tail failed ({err:#}); reconnecting");
        }
        tracker.tail_reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn tail_once(
    addr: SocketAddr,
    key: &str,
    tracker: &Tracker,
    last_seq: &mut Option<u64>,
    connected: &mut Option<tokio::sync::oneshot::Sender<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = Request::get("/api/v1/events/stream")
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::AUTHORIZATION, format!("Bearer {key}"))
        .header(hyper::header::ACCEPT, "text/event-stream");
    if let Some(seq) = *last_seq {
        request = request.header("last-event-id", seq.to_string());
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::new()))?)
        .await?;
    let status = response.status();
    if !status.is_success() {
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::bail!(
            "live tail: {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    if let Some(connected) = connected.take() {
        let _ = connected.send(Ok(()));
    }
    let mut body = response.into_body();
    let mut parser = SseParser::default();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let at = tracker.now();
        parser.feed(&data, |seq, json| {
            if seq.is_some() {
                *last_seq = seq;
            }
            let id = serde_json::from_str::<TailedRecord>(json)
                .ok()
                .and_then(|record| record.id);
            match id.as_deref().and_then(|id| tracker.index(id)) {
                Some(n) => {
                    let slot = &tracker.slots[n];
                    first_time(&slot.tailed, at);
                    slot.tails.fetch_add(1, Ordering::Relaxed);
                    tracker.tailed.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    tracker.tail_other.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    anyhow::bail!("the stream ended")
}

/// The event kinds within a family.
const KINDS: [&str; 4] = ["created", "updated", "deleted", "viewed"];

/// The body of batch `k`: events `k * batch ..`.
fn batch_body(tracker: &Tracker, k: u64, batch: u64, text: &mut String) {
    text.clear();
    text.push('[');
    let subscriptions = tracker.subscriptions as u64;
    for n in k * batch..(k + 1) * batch {
        if n > k * batch {
            text.push(',');
        }
        let family = n % subscriptions;
        let kind = KINDS[usize::try_from(n / subscriptions % 4).unwrap_or(0)];
        let actor = n % 1000;
        let target = n % 9973;
        let _ = write!(
            text,
            "{{\"id\":\"{prefix}{n}\",\"type\":\"bench.t{family}.{kind}\",\"outcome\":\"success\",\
             \"actor\":{{\"id\":\"u_{actor}\",\"type\":\"user\",\"email\":\"user{actor}@example.com\"}},\
             \"targets\":[{{\"id\":\"doc_{target}\",\"type\":\"document\"}}],\
             \"source\":{{\"service\":\"bench\",\"component\":\"webhooks\"}},\
             \"summary\":\"user{actor}@example.com {kind} doc_{target}\",\
             \"details\":{{\"n\":{n},\"batch\":{k}}}}}",
            prefix = tracker.id_prefix,
        );
    }
    text.push(']');
}

/// What every ingest connection shares: the schedule and where to note acknowledgements.
struct Schedule {
    addr: SocketAddr,
    key: String,
    tracker: Arc<Tracker>,
    /// The next batch to send.
    next: AtomicU64,
    started: Instant,
    /// No batch starts after this.
    end: Instant,
    interval: Duration,
    n_batches: u64,
    batch: u64,
}

/// One ingest connection: takes the next batch, waits for its time, sends it, notes the
/// acknowledgement of its events.
async fn send_batches(mut conn: Conn, schedule: Arc<Schedule>) {
    let tracker = &schedule.tracker;
    let batch = schedule.batch;
    let mut text = String::new();
    loop {
        let k = schedule.next.fetch_add(1, Ordering::Relaxed);
        if k >= schedule.n_batches {
            return;
        }
        let due = schedule.started + schedule.interval.mul_f64(k as f64);
        let now = Instant::now();
        if now >= schedule.end {
            return;
        }
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        } else {
            let late = micros(now - due);
            tracker.late_max_us.fetch_max(late, Ordering::Relaxed);
            if late > 10_000 {
                tracker.late_10ms.fetch_add(1, Ordering::Relaxed);
            }
        }
        batch_body(tracker, k, batch, &mut text);
        let body = Bytes::from(text.clone());
        let result = conn
            .send(
                Method::POST,
                "/api/v1/events",
                Some(&schedule.key),
                Some(body),
            )
            .await;
        let at = tracker.now();
        let error = match result {
            Ok((status, _)) if status.is_success() => {
                for n in k * batch..(k + 1) * batch {
                    if let Some(slot) = usize::try_from(n).ok().and_then(|n| tracker.slots.get(n)) {
                        slot.ack.store(at, Ordering::Relaxed);
                    }
                }
                tracker.acked.fetch_add(batch, Ordering::Relaxed);
                continue;
            }
            Ok((status, reply)) => format!(
                "{status}: {}",
                String::from_utf8_lossy(&reply[..reply.len().min(200)])
            ),
            Err(err) => {
                // The connection is broken: open another (or give this one up).
                match Conn::open(schedule.addr).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => return,
                }
                format!("{err:#}")
            }
        };
        tracker.ingest_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = tracker.first_ingest_error.lock() {
            first.get_or_insert(error);
        }
    }
}

/// Memory of a process, from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Rss {
    /// Seconds since the sending started.
    at_secs: f64,
    vm: u64,
    anon: u64,
    file: u64,
}

fn read_rss(pid: u32, at_secs: f64) -> Option<Rss> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Rss {
        at_secs,
        vm: field("VmRSS:")?,
        anon: field("RssAnon:").unwrap_or(0),
        file: field("RssFile:").unwrap_or(0),
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Lag statistics of one histogram, in microseconds.
fn lag_json(histogram: &Histogram<u64>) -> Value {
    json!({
        "count": histogram.len(),
        "p50_us": histogram.value_at_quantile(0.50),
        "p90_us": histogram.value_at_quantile(0.90),
        "p99_us": histogram.value_at_quantile(0.99),
        "max_us": histogram.max(),
        "mean_us": histogram.mean(),
    })
}

fn lag_text(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "no samples".to_owned();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} (mean {:.1}, {} events)",
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.90)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max()),
        histogram.mean() / 1000.0,
        histogram.len(),
    )
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, MAX_LAG_US, 3)?)
}

/// Where results go: stdout lines, and JSON lines to `--out`.
struct Output<'a> {
    options: &'a Options,
    common: Value,
}

impl Output<'_> {
    fn line(&self, text: &str) {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }

    fn json(&self, key: &str, mut value: Value) -> anyhow::Result<()> {
        let Some(path) = &self.options.out else {
            return Ok(());
        };
        if let (Value::Object(map), Value::Object(common)) = (&mut value, &self.common) {
            map.insert("key".to_owned(), Value::from(key));
            for (name, field) in common {
                map.entry(name.clone()).or_insert_with(|| field.clone());
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(file, "{value}")?;
        Ok(())
    }
}

/// Counts over every acknowledged event, and the lag histograms (after the warm-up).
struct Outcome {
    acked: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    tailed: u64,
    tail_missing: u64,
    tail_duplicates: u64,
    /// Unacknowledged events (failed ingest requests) that arrived anyway.
    unacked_delivered: u64,
    delivery: Histogram<u64>,
    tail: Histogram<u64>,
    /// Per window of the sending (by acknowledgement time): delivery and tail lag.
    windows: Vec<(u64, Histogram<u64>, Histogram<u64>)>,
}

fn tally(tracker: &Tracker, send_start: Micros, warmup: Duration) -> anyhow::Result<Outcome> {
    let warm_from = send_start + micros(warmup);
    let mut outcome = Outcome {
        acked: 0,
        delivered: 0,
        lost: 0,
        duplicates: 0,
        tailed: 0,
        tail_missing: 0,
        tail_duplicates: 0,
        unacked_delivered: 0,
        delivery: histogram()?,
        tail: histogram()?,
        windows: Vec::new(),
    };
    let window_us = micros(WINDOW);
    for slot in &tracker.slots {
        let ack = slot.ack.load(Ordering::Relaxed);
        let delivered = slot.delivered.load(Ordering::Relaxed);
        let tailed = slot.tailed.load(Ordering::Relaxed);
        let deliveries = u64::from(slot.deliveries.load(Ordering::Relaxed));
        let tails = u64::from(slot.tails.load(Ordering::Relaxed));
        outcome.duplicates += deliveries.saturating_sub(1);
        outcome.tail_duplicates += tails.saturating_sub(1);
        if ack == 0 {
            outcome.unacked_delivered += u64::from(delivered != 0);
            continue;
        }
        outcome.acked += 1;
        let window = usize::try_from(ack.saturating_sub(send_start) / window_us).unwrap_or(0);
        while outcome.windows.len() <= window {
            let start = outcome.windows.len() as u64 * WINDOW.as_secs();
            outcome.windows.push((start, histogram()?, histogram()?));
        }
        let measured = ack >= warm_from;
        if delivered == 0 {
            outcome.lost += 1;
        } else {
            outcome.delivered += 1;
            let lag = delivered.saturating_sub(ack).min(MAX_LAG_US);
            outcome.windows[window].1.record(lag)?;
            if measured {
                outcome.delivery.record(lag)?;
            }
        }
        if tailed == 0 {
            outcome.tail_missing += 1;
        } else {
            outcome.tailed += 1;
            let lag = tailed.saturating_sub(ack).min(MAX_LAG_US);
            outcome.windows[window].2.record(lag)?;
            if measured {
                outcome.tail.record(lag)?;
            }
        }
    }
    Ok(outcome)
}

/// Acknowledged events not yet delivered, and not yet tailed.
fn pending(tracker: &Tracker) -> (u64, u64) {
    let mut undelivered = 0;
    let mut untailed = 0;
    for slot in &tracker.slots {
        if slot.ack.load(Ordering::Relaxed) != 0 {
            undelivered += u64::from(slot.delivered.load(Ordering::Relaxed) == 0);
            untailed += u64::from(slot.tailed.load(Ordering::Relaxed) == 0);
        }
    }
    (undelivered, untailed)
}

/// The whole run, on its own runtime (two threads: the receiver must answer at once while
/// the sender works).
pub(crate) fn main(options: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(options.rate > 0, "--rate must be positive");
    anyhow::ensure!(options.batch > 0, "--batch must be positive");
    anyhow::ensure!(
        options.subscriptions > 0,
        "--subscriptions must be positive"
    );
    anyhow::ensure!(options.connections > 0, "--connections must be positive");
    anyhow::ensure!(options.secs > 0, "--secs must be positive");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(options))
}

async fn run(options: &Options) -> anyhow::Result<()> {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let tenant = format!("whbench-{unix}-{}", std::process::id());
    let n_batches = (options.rate * options.secs).div_ceil(options.batch);
    let n_events = usize::try_from(n_batches * options.batch)?;
    let output = Output {
        options,
        common: json!({
            "system": "veritrail",
            "bench": "webhooks",
            "rate": options.rate,
            "subscriptions": options.subscriptions,
            "secs": options.secs,
            "batch": options.batch,
            "connections": options.connections,
        }),
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_addr = listener.local_addr()?;
    let set_up = set_up(options, &tenant, receiver_addr).await?;
    let tracker = Arc::new(Tracker {
        origin: Instant::now(),
        id_prefix: format!("{tenant}-"),
        subscriptions: options.subscriptions,
        slots: (0..n_events).map(|_| Slot::default()).collect(),
        acked: AtomicU64::new(0),
        ingest_errors: AtomicU64::new(0),
        first_ingest_error: std::sync::Mutex::new(None),
        late_max_us: AtomicU64::new(0),
        late_10ms: AtomicU64::new(0),
        received: AtomicU64::new(0),
        unsigned: AtomicU64::new(0),
        invalid: AtomicU64::new(0),
        misrouted: AtomicU64::new(0),
        bad_message_id: AtomicU64::new(0),
        foreign: AtomicU64::new(0),
        tailed: AtomicU64::new(0),
        tail_other: AtomicU64::new(0),
        tail_reconnects: AtomicU64::new(0),
    });
    let subscriptions = set_up
        .subscriptions
        .iter()
        .map(|(id, secret)| {
            let secret = WebhookSecret::parse(secret)
                .map_err(|err| anyhow::anyhow!("the server's secret {id}: {err}"))?;
            Ok((id.trim_start_matches("wh_").to_owned(), secret))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let receiver_task = start_receiver(
        listener,
        Receiver {
            tracker: Arc::clone(&tracker),
            subscriptions,
        },
    );
    let (connected, tail_ready) = tokio::sync::oneshot::channel();
    let tail_task = tokio::spawn(tail(
        options.addr,
        set_up.viewer.clone(),
        Arc::clone(&tracker),
        connected,
    ));
    tail_ready
        .await
        .context("the live tail task stopped")?
        .context("opening the live tail")?;
    let mut conns = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        conns.push(Conn::open(options.addr).await?);
    }
    output.line(&format!(
        "[webhooks] tenant {tenant}: {} subscriptions to http://{receiver_addr}/hook/N, live tail open; sending {} events/s in batches of {} over {} connections for {} s (warm-up {} s, drain up to {} s)",
        set_up.subscriptions.len(),
        options.rate,
        options.batch,
        options.connections,
        options.secs,
        options.warmup_secs,
        options.drain_secs,
    ));

    let sent = send(options, &output, &tracker, &set_up.publisher, conns).await?;

    // Drain.
    let drain_started = Instant::now();
    let drain_deadline = drain_started + Duration::from_secs(options.drain_secs);
    let (mut undelivered, mut untailed) = pending(&tracker);
    while (undelivered > 0 || untailed > 0) && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (undelivered, untailed) = pending(&tracker);
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let after_drain = options
        .server_pid
        .and_then(|pid| read_rss(pid, sent.started.elapsed().as_secs_f64()));
    tail_task.abort();
    let attempts = server_attempts(options.addr, &set_up).await?;
    receiver_task.abort();

    let outcome = tally(
        &tracker,
        tracker.at(sent.started),
        Duration::from_secs(options.warmup_secs),
    )?;
    report_counts(
        options, &output, &tracker, &sent, &outcome, drain_secs, &attempts,
    )?;
    report_timeline(&output, &outcome, &sent.rss)?;
    let rss_flat = report_rss(&output, &sent, after_drain)?;
    report_bars(options, &output, &tracker, &sent, &outcome, rss_flat)
}

/// What the sending did.
struct Sent {
    started: Instant,
    secs: f64,
    acked: u64,
    client_cpu: f64,
    server_cpu: f64,
    /// The server's memory every 10 s, and at the end.
    rss: Vec<Rss>,
}

/// Sends for `--secs`, with a progress line and an RSS sample every 10 s; returns once the
/// requests in flight have their answers.
async fn send(
    options: &Options,
    output: &Output<'_>,
    tracker: &Arc<Tracker>,
    publisher: &str,
    conns: Vec<Conn>,
) -> anyhow::Result<Sent> {
    let n_batches = (options.rate * options.secs).div_ceil(options.batch);
    let interval = Duration::from_secs_f64(options.batch as f64 / options.rate as f64);
    let pid = options.server_pid;
    let client_cpu = load::own_cpu_secs();
    let server_cpu = load::tree_cpu_secs(pid);
    let started = Instant::now();
    let send_end = started + Duration::from_secs(options.secs);
    let schedule = Arc::new(Schedule {
        addr: options.addr,
        key: publisher.to_owned(),
        tracker: Arc::clone(tracker),
        next: AtomicU64::new(0),
        started,
        end: send_end,
        interval,
        n_batches,
        batch: options.batch,
    });
    let senders: Vec<_> = conns
        .into_iter()
        .map(|conn| tokio::spawn(send_batches(conn, Arc::clone(&schedule))))
        .collect();
    let mut rss = Vec::new();
    if let Some(sample) = pid.and_then(|pid| read_rss(pid, 0.0)) {
        rss.push(sample);
    }
    let mut tick = 1u32;
    loop {
        let at = (started + WINDOW * tick).min(send_end);
        tokio::time::sleep_until(at.into()).await;
        let secs = started.elapsed().as_secs_f64();
        let sample = pid.and_then(|pid| read_rss(pid, secs));
        rss.extend(sample);
        output.line(&format!(
            "[webhooks] t={secs:.0} s: {} acknowledged, {} deliveries, {} tailed{}",
            tracker.acked.load(Ordering::Relaxed),
            tracker.received.load(Ordering::Relaxed),
            tracker.tailed.load(Ordering::Relaxed),
            sample.map_or_else(String::new, |rss| format!(
                "; server VmRSS {:.1} MiB (anon {:.1}, file {:.1})",
                mib(rss.vm),
                mib(rss.anon),
                mib(rss.file)
            )),
        ));
        if at >= send_end {
            break;
        }
        tick += 1;
    }
    // Requests still in flight finish (their events count); no new ones start.
    for sender in senders {
        sender.await?;
    }
    let send_secs = started.elapsed().as_secs_f64();
    let acked = tracker.acked.load(Ordering::Relaxed);
    let server_cpu = load::tree_cpu_secs(pid) - server_cpu;
    let client_cpu = load::own_cpu_secs() - client_cpu;
    Ok(Sent {
        started,
        secs: send_secs,
        acked,
        client_cpu,
        server_cpu,
        rss,
    })
}

/// The server's attempt log (the last 1,000 attempts per subscription it keeps).
struct Attempts {
    count: u64,
    failed: u64,
    slowest_ms: f64,
    first_error: Option<String>,
}

async fn server_attempts(addr: SocketAddr, set_up: &SetUp) -> anyhow::Result<Attempts> {
    let mut conn = Conn::open(addr).await?;
    let mut attempts = Attempts {
        count: 0,
        failed: 0,
        slowest_ms: 0.0,
        first_error: None,
    };
    for (id, _) in &set_up.subscriptions {
        let reply = expect_ok(
            &mut conn,
            Method::GET,
            &format!("/api/v1/webhooks/{id}/attempts?limit=1000"),
            &set_up.owner,
            None,
        )
        .await?;
        let list: AttemptList = serde_json::from_slice(&reply)?;
        for attempt in list.attempts {
            attempts.count += 1;
            attempts.slowest_ms = attempts.slowest_ms.max(attempt.latency_ms);
            if !attempt.delivered {
                attempts.failed += 1;
                if attempts.first_error.is_none() {
                    attempts.first_error = attempt.error;
                }
            }
        }
    }
    Ok(attempts)
}

/// Sending, delivery and tail: counts and lag.
fn report_counts(
    options: &Options,
    output: &Output<'_>,
    tracker: &Tracker,
    sent: &Sent,
    outcome: &Outcome,
    drain_secs: f64,
    attempts: &Attempts,
) -> anyhow::Result<()> {
    let count = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
    let ingest_errors = count(&tracker.ingest_errors);
    let first_ingest_error = tracker
        .first_ingest_error
        .lock()
        .ok()
        .and_then(|first| first.clone());
    let achieved = sent.acked as f64 / sent.secs.max(1e-9);
    let late_max_ms = count(&tracker.late_max_us) as f64 / 1000.0;
    output.line(&format!(
        "[webhooks] sending: {} events acknowledged in {:.1} s = {achieved:.0} events/s (asked {}); {ingest_errors} failed requests{}; sender behind schedule by at most {late_max_ms:.1} ms ({} batches > 10 ms late); cpu s client {:.1} server {:.1} ({:.2} cores)",
        sent.acked,
        sent.secs,
        options.rate,
        first_ingest_error
            .as_deref()
            .map(|err| format!(" (first: {err})"))
            .unwrap_or_default(),
        count(&tracker.late_10ms),
        sent.client_cpu,
        sent.server_cpu,
        sent.server_cpu / sent.secs.max(1e-9),
    ));
    output.json(
        "webhooks_send",
        json!({
            "acknowledged": sent.acked,
            "send_secs": sent.secs,
            "events_per_s": achieved,
            "ingest_errors": ingest_errors,
            "first_error": first_ingest_error,
            "late_max_ms": late_max_ms,
            "late_10ms_batches": count(&tracker.late_10ms),
            "client_cpu_s": sent.client_cpu,
            "server_cpu_s": sent.server_cpu,
        }),
    )?;
    let invalid = count(&tracker.invalid);
    let unsigned = count(&tracker.unsigned);
    let misrouted = count(&tracker.misrouted);
    let bad_message_id = count(&tracker.bad_message_id);
    let foreign = count(&tracker.foreign);
    let received = count(&tracker.received);
    output.line(&format!(
        "[webhooks] delivery: {received} deliveries received; {} of {} acknowledged events delivered, {} lost (not delivered within the {:.1} s drain), {} duplicates; {invalid} invalid and {unsigned} unsigned signatures; {misrouted} on the wrong subscription, {bad_message_id} unexpected webhook-ids, {foreign} not of this run; {} unacknowledged events delivered",
        outcome.delivered,
        outcome.acked,
        outcome.lost,
        drain_secs,
        outcome.duplicates,
        outcome.unacked_delivered,
    ));
    output.line(&format!(
        "[webhooks] delivery lag, acknowledgement to receipt, after the {} s warm-up: {}",
        options.warmup_secs,
        lag_text(&outcome.delivery)
    ));
    output.line(&format!(
        "[webhooks] server attempt log (last 1,000 per subscription): {} attempts, {} failed{}, slowest {:.1} ms",
        attempts.count,
        attempts.failed,
        attempts.first_error
            .as_deref()
            .map(|err| format!(" (first: {err})"))
            .unwrap_or_default(),
        attempts.slowest_ms,
    ));
    let mut delivery = lag_json(&outcome.delivery);
    if let Value::Object(map) = &mut delivery {
        for (name, value) in [
            ("received", json!(received)),
            ("acknowledged", json!(outcome.acked)),
            ("delivered", json!(outcome.delivered)),
            ("lost", json!(outcome.lost)),
            ("duplicates", json!(outcome.duplicates)),
            ("invalid_signatures", json!(invalid)),
            ("unsigned", json!(unsigned)),
            ("misrouted", json!(misrouted)),
            ("unexpected_webhook_ids", json!(bad_message_id)),
            ("foreign", json!(foreign)),
            ("drain_secs", json!(drain_secs)),
            ("server_attempts", json!(attempts.count)),
            ("server_failed_attempts", json!(attempts.failed)),
            ("server_slowest_attempt_ms", json!(attempts.slowest_ms)),
        ] {
            map.insert(name.to_owned(), value);
        }
    }
    output.json("webhooks_delivery", delivery)?;
    output.line(&format!(
        "[webhooks] live tail: {} of {} acknowledged events received, {} missing, {} duplicates, {} reconnects; lag after the warm-up: {}",
        outcome.tailed,
        outcome.acked,
        outcome.tail_missing,
        outcome.tail_duplicates,
        count(&tracker.tail_reconnects),
        lag_text(&outcome.tail)
    ));
    let mut tail_json = lag_json(&outcome.tail);
    if let Value::Object(map) = &mut tail_json {
        for (name, value) in [
            ("acknowledged", json!(outcome.acked)),
            ("tailed", json!(outcome.tailed)),
            ("missing", json!(outcome.tail_missing)),
            ("duplicates", json!(outcome.tail_duplicates)),
            ("reconnects", json!(count(&tracker.tail_reconnects))),
            ("other_records", json!(count(&tracker.tail_other))),
        ] {
            map.insert(name.to_owned(), value);
        }
    }
    output.json("webhooks_tail", tail_json)?;

    Ok(())
}

/// Lag by acknowledgement time, window by window, with the RSS samples.
fn report_timeline(output: &Output<'_>, outcome: &Outcome, rss: &[Rss]) -> anyhow::Result<()> {
    output.line("[webhooks] timeline (by acknowledgement time, warm-up included):");
    let mut timeline = Vec::new();
    for (start, delivery, tail) in &outcome.windows {
        let p = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let rss_then = rss
            .iter()
            .find(|sample| sample.at_secs >= *start as f64 + WINDOW.as_secs_f64() - 0.5);
        output.line(&format!(
            "  {start:>5}-{:<5} s  {:>7} events  delivery ms p50 {:>7.1} p99 {:>7.1} max {:>7.1}  tail ms p50 {:>7.1} p99 {:>7.1} max {:>7.1}{}",
            start + WINDOW.as_secs(),
            delivery.len().max(tail.len()),
            p(delivery, 0.5),
            p(delivery, 0.99),
            delivery.max() as f64 / 1000.0,
            p(tail, 0.5),
            p(tail, 0.99),
            tail.max() as f64 / 1000.0,
            rss_then.map_or_else(String::new, |rss| format!(
                "  VmRSS {:.1} MiB",
                mib(rss.vm)
            )),
        ));
        timeline.push(json!({
            "from_s": start,
            "delivery": lag_json(delivery),
            "tail": lag_json(tail),
        }));
    }
    output.json("webhooks_timeline", json!({ "windows": timeline }))?;

    Ok(())
}

/// The server's memory; whether it stayed flat over the second half of the sending (`None`:
/// not measured).
fn report_rss(
    output: &Output<'_>,
    sent: &Sent,
    after_drain: Option<Rss>,
) -> anyhow::Result<Option<bool>> {
    let mut rss_flat = None;
    if let (Some(first), Some(last)) = (sent.rss.first(), sent.rss.last()) {
        let series = sent
            .rss
            .iter()
            .map(|sample| format!("{:.0}s {:.1}", sample.at_secs, mib(sample.vm)))
            .collect::<Vec<_>>()
            .join(", ");
        let min = sent.rss.iter().map(|sample| sample.vm).min().unwrap_or(0);
        let max = sent.rss.iter().map(|sample| sample.vm).max().unwrap_or(0);
        // The second half: from the first sample at or after half the sending to the last.
        let half = sent.secs / 2.0;
        let mid = sent
            .rss
            .iter()
            .find(|sample| sample.at_secs >= half - 0.5)
            .unwrap_or(first);
        let growth = last.vm as f64 - mid.vm as f64;
        let relative = growth / (mid.vm.max(1) as f64);
        let anon_growth = last.anon as f64 - mid.anon as f64;
        let file_growth = last.file as f64 - mid.file as f64;
        let events_second_half = sent.acked as f64 * (last.at_secs - mid.at_secs) / sent.secs;
        // The judged measure: the mean of the second half's last third of samples against
        // the mean of its first third, and the least-squares slope over the second half.
        let second: Vec<&Rss> = sent
            .rss
            .iter()
            .filter(|sample| sample.at_secs >= half - 0.5)
            .collect();
        let third = (second.len() / 3).max(1);
        let mean = |samples: &[&Rss]| {
            samples.iter().map(|sample| sample.vm as f64).sum::<f64>() / samples.len().max(1) as f64
        };
        let early = mean(&second[..third.min(second.len())]);
        let late = mean(&second[second.len().saturating_sub(third)..]);
        let mean_growth = (late - early) / early.max(1.0);
        let slope_kib_per_s = {
            let n = second.len() as f64;
            let mean_t = second.iter().map(|s| s.at_secs).sum::<f64>() / n.max(1.0);
            let mean_v = mean(&second);
            let (num, den) = second.iter().fold((0.0, 0.0), |(num, den), s| {
                let dt = s.at_secs - mean_t;
                (num + dt * (s.vm as f64 - mean_v), den + dt * dt)
            });
            if den > 0.0 { num / den } else { 0.0 }
        };
        // Three samples over at least 20 s, else there is no second half to judge.
        rss_flat = (second.len() >= 3
            && last.at_secs - mid.at_secs >= 2.0 * WINDOW.as_secs_f64() - 0.5)
            .then_some(mean_growth <= RSS_GROWTH_BAR);
        output.line(&format!(
            "[webhooks] server VmRSS over the second half: mean of the first third {:.1} MiB, of the last third {:.1} MiB ({:+.1}%); slope {:+.1} KiB/s ({:.0} bytes per event)",
            early / 1024.0,
            late / 1024.0,
            mean_growth * 100.0,
            slope_kib_per_s,
            slope_kib_per_s * 1024.0 * sent.secs / (sent.acked.max(1) as f64),
        ));
        output.line(&format!(
            "[webhooks] server VmRSS, MiB, every 10 s of the sending: {series}"
        ));
        output.line(&format!(
            "[webhooks] server VmRSS: first {:.1} min {:.1} max {:.1} last {:.1} MiB{}; second half ({:.0} s -> {:.0} s): {:+.1} MiB ({:+.1}%; anon {:+.1} MiB, file-backed {:+.1} MiB; {:.0} bytes per event sent then)",
            mib(first.vm),
            mib(min),
            mib(max),
            mib(last.vm),
            after_drain.map_or_else(String::new, |rss| format!(
                ", after the drain {:.1}",
                mib(rss.vm)
            )),
            mid.at_secs,
            last.at_secs,
            growth / 1024.0,
            relative * 100.0,
            anon_growth / 1024.0,
            file_growth / 1024.0,
            growth * 1024.0 / events_second_half.max(1.0),
        ));
        output.json(
            "webhooks_rss",
            json!({
                "samples": sent.rss.iter().map(|sample| json!({
                    "at_s": sample.at_secs,
                    "vm_rss_kib": sample.vm,
                    "rss_anon_kib": sample.anon,
                    "rss_file_kib": sample.file,
                })).collect::<Vec<_>>(),
                "first_kib": first.vm,
                "min_kib": min,
                "max_kib": max,
                "last_kib": last.vm,
                "after_drain_kib": after_drain.map(|rss| rss.vm),
                "mid_at_s": mid.at_secs,
                "mid_kib": mid.vm,
                "second_half_growth_kib": growth,
                "second_half_growth_ratio": relative,
                "second_half_anon_growth_kib": anon_growth,
                "second_half_file_growth_kib": file_growth,
                "second_half_mean_growth_ratio": mean_growth,
                "second_half_slope_kib_per_s": slope_kib_per_s,
            }),
        )?;
    }

    Ok(rss_flat)
}

/// The bars a run must meet, met or not.
fn report_bars(
    options: &Options,
    output: &Output<'_>,
    tracker: &Tracker,
    sent: &Sent,
    outcome: &Outcome,
    rss_flat: Option<bool>,
) -> anyhow::Result<()> {
    let count = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
    let (invalid, unsigned, misrouted) = (
        count(&tracker.invalid),
        count(&tracker.unsigned),
        count(&tracker.misrouted),
    );
    let p99 = |h: &Histogram<u64>| (!h.is_empty()).then(|| h.value_at_quantile(0.99));
    let delivery_ok = p99(&outcome.delivery).is_some_and(|p| p < LAG_P99_BAR_US);
    let tail_ok = p99(&outcome.tail).is_some_and(|p| p < LAG_P99_BAR_US);
    let complete_ok = outcome.lost == 0 && misrouted == 0 && outcome.acked > 0;
    let signed_ok = invalid == 0 && unsigned == 0;
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    output.line(&format!(
        "[webhooks] bar: delivery lag p99 < 1 s: {}",
        verdict(delivery_ok)
    ));
    output.line(&format!(
        "[webhooks] bar: live-tail lag p99 < 1 s: {}",
        verdict(tail_ok)
    ));
    output.line(&format!(
        "[webhooks] bar: no lost delivery ({} lost, {misrouted} misrouted): {}",
        outcome.lost,
        verdict(complete_ok)
    ));
    output.line(&format!(
        "[webhooks] bar: every delivery signed and valid ({invalid} invalid, {unsigned} unsigned): {}",
        verdict(signed_ok)
    ));
    match (rss_flat, options.server_pid) {
        (Some(flat), _) => output.line(&format!(
            "[webhooks] bar: server RSS flat (over the second half of the sending, the mean VmRSS of its last third of samples within {:.0}% of that of its first third): {}",
            RSS_GROWTH_BAR * 100.0,
            verdict(flat)
        )),
        (None, Some(_)) => output.line(
            "[webhooks] bar: server RSS flat: not judged (the sending was too short for a second half of 10 s or more)",
        ),
        (None, None) => output.line("[webhooks] bar: server RSS flat: not measured (no --server-pid)"),
    }
    let achieved = sent.acked as f64 / sent.secs.max(1e-9);
    if achieved < options.rate as f64 * 0.95 {
        output.line(&format!(
            "[webhooks] note: the sending reached {achieved:.0} events/s, below the {} asked: the bars hold for that rate only",
            options.rate
        ));
    }
    output.json(
        "webhooks_bars",
        json!({
            "delivery_p99_under_1s": delivery_ok,
            "tail_p99_under_1s": tail_ok,
            "no_lost_delivery": complete_ok,
            "all_signed_valid": signed_ok,
            "rss_flat": rss_flat,
            "achieved_events_per_s": achieved,
        }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_across_chunks() {
        let mut parser = SseParser::default();
        let mut seen = Vec::new();
        for chunk in [
            &b"id: 4\ndata: {\"id\":\"a\"}\n\n: heartbeat\n\nid: 5\nda"[..],
            b"ta: {\"id\":\"b\"}\r\n\r\n",
        ] {
            parser.feed(chunk, |id, data| seen.push((id, data.to_owned())));
        }
        assert_eq!(
            seen,
            vec![
                (Some(4), "{\"id\":\"a\"}".to_owned()),
                (Some(5), "{\"id\":\"b\"}".to_owned())
            ]
        );
    }
}
