//! `overload`: what the server does when it is offered more than it can take, against a
//! running `veritrail serve` (see `scripts/bench-overload`).
//!
//! 1. **Sustainable rate:** batched ingest, closed loop (each connection sends its next
//!    batch when the last is answered), for `--measure-secs`: the events/s acknowledged.
//! 2. **Overload:** open loop at `--factor` times that rate for `--overload-secs`: batches
//!    are sent on schedule whatever the answers, over as many connections as that takes (up
//!    to `--max-connections`). Every answer's latency is measured from when its request was
//!    due (so a slow client cannot hide a slow server), and sorted by status.
//! 3. **After:** the load drops to `--after-factor` times the rate for `--after-secs`; the
//!    recovery time is how long after the drop the first whole second starts whose answers
//!    are 99% 200s within the latency bar (refusals after it are counted apart).
//!
//! The server's memory (VmRSS) is sampled every 100 ms throughout. With `--acks FILE`, the
//! server is killed with SIGKILL at the end (requests in flight) and every acknowledged
//! batch is written to FILE; `overload-check` then reads each back, by its receipt's seq,
//! from the restarted server.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use hyper::Method;
use serde_json::{Value, json};

use crate::http::Conn;

/// The bars a run must meet.
const P99_BAR_MS: f64 = 100.0;
const RSS_BAR_MIB: f64 = 1024.0;
const RECOVERY_BAR_SECS: f64 = 1.0;
/// Width of the windows the recovery is judged in.
const WINDOW: Duration = Duration::from_millis(100);

/// `overload`: the options.
#[derive(Debug, Clone, Args)]
pub(crate) struct Options {
    /// The server's address, like 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// A server-admin key (to create the tenant and its publisher key).
    #[arg(long, env = "VERITRAIL_BENCH_ADMIN_KEY")]
    admin_key: String,
    /// The server's PID: its memory is sampled, and it is killed at the end with `--acks`.
    #[arg(long)]
    server_pid: u32,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Seconds of the closed-loop phase that finds the sustainable rate.
    #[arg(long, default_value_t = 10)]
    measure_secs: u64,
    /// Connections of that phase.
    #[arg(long, default_value_t = 8)]
    measure_connections: usize,
    /// The overload, as a multiple of the sustainable rate.
    #[arg(long, default_value_t = 3.0)]
    factor: f64,
    #[arg(long, default_value_t = 60)]
    overload_secs: u64,
    /// The load after the overload, as a multiple of the sustainable rate.
    #[arg(long, default_value_t = 0.5)]
    after_factor: f64,
    #[arg(long, default_value_t = 10)]
    after_secs: u64,
    /// Most connections open at once (a request due when all are busy is counted as not
    /// sent: the client could not keep up).
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Kill the server (SIGKILL) at the end, requests in flight, and write every
    /// acknowledged batch (`number first_seq`) to this file, for `overload-check`.
    #[arg(long)]
    acks: Option<PathBuf>,
    /// Append each measurement to this file, one JSON object a line.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `overload-check`: reads every acknowledged batch back after a restart.
#[derive(Debug, Clone, Args)]
pub(crate) struct CheckOptions {
    #[arg(long)]
    addr: SocketAddr,
    /// A viewer key of the tenant (`overload` wrote it next to the acknowledgements).
    #[arg(long)]
    key: Option<String>,
    /// The file `overload --acks` wrote.
    #[arg(long)]
    acks: PathBuf,
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What one phase saw.
struct PhaseStats {
    name: &'static str,
    started: Instant,
    /// Latency of 200s, and of every answer, from when the request was due, in µs.
    accepted: Mutex<Histogram<u64>>,
    answered: Mutex<Histogram<u64>>,
    ok: AtomicU64,
    overloaded: AtomicU64,
    other_status: AtomicU64,
    errors: AtomicU64,
    /// Refusals (429 or 503) that carried `Retry-After`.
    with_retry_after: AtomicU64,
    /// Due but not sent: every connection was busy.
    not_sent: AtomicU64,
    /// Requests in flight when the server was killed (their connection errors).
    cut_by_kill: AtomicU64,
    events_ok: AtomicU64,
    /// Per 100 ms window (by due time): 200s, answers of any status, the slowest answer's
    /// latency in µs, and 200s answered within the latency bar.
    windows: Mutex<Vec<[u64; 4]>>,
    first_error: Mutex<Option<String>>,
}

impl PhaseStats {
    fn new(name: &'static str) -> Arc<Self> {
        let histogram = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
        Arc::new(Self {
            name,
            started: Instant::now(),
            accepted: Mutex::new(histogram()),
            answered: Mutex::new(histogram()),
            ok: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            other_status: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            with_retry_after: AtomicU64::new(0),
            not_sent: AtomicU64::new(0),
            cut_by_kill: AtomicU64::new(0),
            events_ok: AtomicU64::new(0),
            windows: Mutex::new(Vec::new()),
            first_error: Mutex::new(None),
        })
    }

    fn record(&self, due: Instant, status: Option<u16>, retry_after: bool, events: u64) {
        let latency = u64::try_from(due.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let window = usize::try_from(
            due.saturating_duration_since(self.started).as_millis() / WINDOW.as_millis(),
        )
        .unwrap_or(usize::MAX);
        // Windows count answers (a connection error, as at the kill, is not one).
        if status.is_some() {
            let mut windows = self.windows.lock().expect("windows");
            if windows.len() <= window {
                windows.resize(window + 1, [0; 4]);
            }
            windows[window][1] += 1;
            windows[window][2] = windows[window][2].max(latency);
            if status == Some(200) {
                windows[window][0] += 1;
                if (latency as f64) < P99_BAR_MS * 1000.0 {
                    windows[window][3] += 1;
                }
            }
        }
        let _ = self.answered.lock().expect("histogram").record(latency);
        match status {
            Some(200) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.events_ok.fetch_add(events, Ordering::Relaxed);
                let _ = self.accepted.lock().expect("histogram").record(latency);
            }
            Some(429 | 503) => {
                self.overloaded.fetch_add(1, Ordering::Relaxed);
                if retry_after {
                    self.with_retry_after.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(_) => {
                self.other_status.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn json(&self, secs: f64, offered: f64) -> Value {
        let quantiles = |histogram: &Histogram<u64>| {
            json!({
                "count": histogram.len(),
                "p50_ms": histogram.value_at_quantile(0.50) as f64 / 1000.0,
                "p99_ms": histogram.value_at_quantile(0.99) as f64 / 1000.0,
                "p999_ms": histogram.value_at_quantile(0.999) as f64 / 1000.0,
                "max_ms": histogram.max() as f64 / 1000.0,
            })
        };
        json!({
            "phase": self.name,
            "secs": secs,
            "offered_events_per_s": offered,
            "acknowledged_events_per_s": self.events_ok.load(Ordering::Relaxed) as f64 / secs.max(1e-9),
            "ok": self.ok.load(Ordering::Relaxed),
            "refused": self.overloaded.load(Ordering::Relaxed),
            "refused_with_retry_after": self.with_retry_after.load(Ordering::Relaxed),
            "other_status": self.other_status.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
            "not_sent": self.not_sent.load(Ordering::Relaxed),
            "cut_by_kill": self.cut_by_kill.load(Ordering::Relaxed),
            "accepted_latency": quantiles(&self.accepted.lock().expect("histogram")),
            "all_latency": quantiles(&self.answered.lock().expect("histogram")),
            "first_error": *self.first_error.lock().expect("error"),
            "slowest_answer_per_second_ms": self
                .windows
                .lock()
                .expect("windows")
                .chunks(10)
                .map(|second| second.iter().map(|w| w[2]).max().unwrap_or(0) / 1000)
                .collect::<Vec<_>>(),
        })
    }
}

/// The batches' bodies: `batch` events of about 500 bytes, ids `ov-{n}-{i}`.
fn body(n: u64, batch: u64) -> Bytes {
    let mut out = String::with_capacity(520 * usize::try_from(batch).unwrap_or(0));
    out.push('[');
    for i in 0..batch {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":"ov-{n}-{i}","type":"user.login","outcome":"success","actor":{{"id":"u{i}","email":"user{i}@example.com","ip":"198.51.100.7","user_agent":"Mozilla/5.0 (X11; Linux x86_64) overload-bench"}},"targets":[{{"id":"app-{i}","type":"application","name":"Overload test application"}}],"source":{{"service":"bench","component":"overload","version":"1.0.0"}},"summary":"user{i}@example.com signed in to the overload test application from 198.51.100.7","details":{{"method":"password","mfa":true,"attempt":{i},"session":"s-{n}-{i}"}}}}"#
        ));
    }
    out.push(']');
    Bytes::from(out)
}

/// The first receipt's seq in an ingest reply.
fn first_seq(reply: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(reply).ok()?;
    let at = text.find("\"seq\":")? + 6;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

struct Shared {
    addr: SocketAddr,
    key: String,
    batch: u64,
    idle: Mutex<Vec<Conn>>,
    open: AtomicU64,
    max_connections: u64,
    next: AtomicU64,
    acks: Mutex<Vec<(u64, u64)>>,
    stop: AtomicBool,
}

/// One request on a connection of the pool (a new one if none is idle).
async fn send_one(shared: Arc<Shared>, stats: Arc<PhaseStats>, due: Instant) {
    let n = shared.next.fetch_add(1, Ordering::Relaxed);
    let conn = shared.idle.lock().expect("idle").pop();
    let mut conn = match conn {
        Some(conn) => conn,
        None => match Conn::open(shared.addr).await {
            Ok(conn) => conn,
            Err(err) => {
                shared.open.fetch_sub(1, Ordering::Relaxed);
                stats.record(due, None, false, 0);
                stats
                    .first_error
                    .lock()
                    .expect("error")
                    .get_or_insert_with(|| err.to_string());
                return;
            }
        },
    };
    let auth = format!("Bearer {}", shared.key);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let body = body(n, shared.batch);
    let mut answer = conn
        .exchange(Method::POST, "/api/v1/events", &headers, Some(body.clone()))
        .await;
    if let Err(first) = &answer {
        // A kept-alive connection the server closed meanwhile (its idle timeout): once
        // more on a new one, as HTTP clients do (the event ids make it safe).
        let first = format!("{first:#}");
        answer = match Conn::open(shared.addr).await {
            Ok(fresh) => {
                conn = fresh;
                conn.exchange(Method::POST, "/api/v1/events", &headers, Some(body))
                    .await
            }
            Err(err) => Err(err),
        }
        .map_err(|err| anyhow::anyhow!("{first}; once more on a new connection: {err:#}"));
    }
    match answer {
        Ok((status, headers, reply)) => {
            let retry_after = headers.contains_key(hyper::header::RETRY_AFTER);
            // A server that closes the connection says so.
            let closing = headers
                .get(hyper::header::CONNECTION)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
            stats.record(due, Some(status.as_u16()), retry_after, shared.batch);
            if status.as_u16() == 200 {
                if let Some(seq) = first_seq(&reply) {
                    shared.acks.lock().expect("acks").push((n, seq));
                }
            } else if status.as_u16() != 503 && status.as_u16() != 429 {
                stats
                    .first_error
                    .lock()
                    .expect("error")
                    .get_or_insert_with(|| {
                        format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&reply[..reply.len().min(200)])
                        )
                    });
            }
            if closing {
                shared.open.fetch_sub(1, Ordering::Relaxed);
            } else {
                shared.idle.lock().expect("idle").push(conn);
            }
        }
        Err(err) => {
            // The server closed it, or was killed: a new one next time.
            shared.open.fetch_sub(1, Ordering::Relaxed);
            if shared.stop.load(Ordering::Relaxed) {
                stats.cut_by_kill.fetch_add(1, Ordering::Relaxed);
                return;
            }
            stats.record(due, None, false, 0);
            stats
                .first_error
                .lock()
                .expect("error")
                .get_or_insert_with(|| err.to_string());
        }
    }
}

/// Sends `rate` requests a second, on schedule, for `secs`.
async fn open_loop(shared: &Arc<Shared>, stats: &Arc<PhaseStats>, rate: f64, secs: u64) -> f64 {
    let started = stats.started;
    let end = started + Duration::from_secs(secs);
    let mut sent: u64 = 0;
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < end && !shared.stop.load(Ordering::Relaxed) {
        let elapsed = started.elapsed().as_secs_f64();
        #[allow(
            clippy::cast_possible_truncation,
            reason = "a count of requests, far below 2^53"
        )]
        let due_count = (elapsed * rate) as u64;
        while sent < due_count {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            sent += 1;
            let has_idle = !shared.idle.lock().expect("idle").is_empty();
            if !has_idle {
                if shared.open.load(Ordering::Relaxed) >= shared.max_connections {
                    stats.not_sent.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                shared.open.fetch_add(1, Ordering::Relaxed);
            }
            tasks.spawn(send_one(Arc::clone(shared), Arc::clone(stats), due));
        }
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    while tasks.join_next().await.is_some() {}
    secs
}

/// The closed-loop phase: `connections` senders, each waiting for its answer.
async fn closed_loop(
    shared: &Arc<Shared>,
    stats: &Arc<PhaseStats>,
    connections: usize,
    secs: u64,
) -> f64 {
    let end = stats.started + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (shared, stats) = (Arc::clone(shared), Arc::clone(stats));
        shared.open.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            while Instant::now() < end {
                send_one(Arc::clone(&shared), Arc::clone(&stats), Instant::now()).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    stats.started.elapsed().as_secs_f64()
}

/// The resident memory (VmRSS) of `pid`, in KiB.
pub(crate) fn read_rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Recovery after the load drops: how long after the start of `stats`' phase until the
/// first full second (ten 100 ms windows, before `until`, the kill) in which 99% of the
/// answers were 200s within the latency bar (`None`: never); and how many refusals came
/// after that second.
fn recovery(stats: &PhaseStats, until: Duration) -> (Option<f64>, u64) {
    let windows = stats.windows.lock().expect("windows");
    // The last window may be partly empty: judge the complete ones before `until`.
    let before_until = usize::try_from(until.as_millis() / WINDOW.as_millis()).unwrap_or(0);
    let complete = windows.len().saturating_sub(1).min(before_until);
    let span = usize::try_from(1000 / WINDOW.as_millis()).unwrap_or(10);
    let recovered = (0..complete.saturating_sub(span - 1)).find(|&start| {
        let (ok, all) = windows[start..start + span]
            .iter()
            .fold((0, 0), |(ok, all), window| {
                (ok + window[3], all + window[1])
            });
        all > 0 && ok as f64 >= 0.99 * all as f64
    });
    let later_refusals = recovered.map_or(0, |start| {
        windows[start + span..complete]
            .iter()
            .map(|window| window[1] - window[0])
            .sum()
    });
    (
        recovered.map(|window| window as f64 * WINDOW.as_secs_f64()),
        later_refusals,
    )
}

pub(crate) fn main(options: &Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: &Options) -> anyhow::Result<()> {
    let mut admin = Conn::open(options.addr).await?;
    let tenant = format!("overload-{}", std::process::id());
    let created: Value = serde_json::from_slice(
        &admin
            .ok_json(
                Method::POST,
                "/api/v1/tenants",
                &options.admin_key,
                json!({"id": tenant}),
            )
            .await?,
    )?;
    let _ = created;
    let key_of = |role: &str| json!({"role": role});
    let publisher: Value = serde_json::from_slice(
        &admin
            .ok_json(
                Method::POST,
                &format!("/api/v1/tenants/{tenant}/keys"),
                &options.admin_key,
                key_of("publisher"),
            )
            .await?,
    )?;
    let viewer: Value = serde_json::from_slice(
        &admin
            .ok_json(
                Method::POST,
                &format!("/api/v1/tenants/{tenant}/keys"),
                &options.admin_key,
                key_of("viewer"),
            )
            .await?,
    )?;
    let key = publisher["secret"]
        .as_str()
        .context("publisher key")?
        .to_owned();
    let viewer = viewer["secret"].as_str().context("viewer key")?.to_owned();
    let shared = Arc::new(Shared {
        addr: options.addr,
        key,
        batch: options.batch,
        idle: Mutex::new(Vec::new()),
        open: AtomicU64::new(0),
        max_connections: options.max_connections as u64,
        next: AtomicU64::new(0),
        acks: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });

    // The server's memory, every 100 ms, throughout.
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak_rss, sampling, pid) = (
            Arc::clone(&peak_rss),
            Arc::clone(&sampling),
            options.server_pid,
        );
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(kib) = read_rss_kib(pid) {
                    peak_rss.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let measure = PhaseStats::new("sustainable (closed loop)");
    let secs = closed_loop(
        &shared,
        &measure,
        options.measure_connections,
        options.measure_secs,
    )
    .await;
    let sustainable = measure.events_ok.load(Ordering::Relaxed) as f64 / secs;
    anyhow::ensure!(
        sustainable > 0.0,
        "nothing was acknowledged: {:?}",
        measure.first_error.lock().expect("e")
    );
    let mut results = vec![measure.json(secs, sustainable)];
    print_phase(&results[0]);
    // Idle connections of the closed loop are reused by the next phases.

    let overload_rate = options.factor * sustainable / options.batch as f64;
    let overload = PhaseStats::new("overload (open loop)");
    let secs = open_loop(&shared, &overload, overload_rate, options.overload_secs).await;
    results.push(overload.json(secs, overload_rate * options.batch as f64));
    print_phase(&results[1]);

    let after_rate = options.after_factor * sustainable / options.batch as f64;
    let after = PhaseStats::new("after the overload (open loop)");
    let kill_at = options
        .acks
        .as_ref()
        .map(|_| Duration::from_secs(options.after_secs));
    let killer = kill_at.map(|delay| {
        let (pid, shared) = (options.server_pid, Arc::clone(&shared));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Set first: connection errors from now on are the kill's, counted apart.
            shared.stop.store(true, Ordering::Relaxed);
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        })
    });
    let secs = open_loop(&shared, &after, after_rate, options.after_secs + 1).await;
    if let Some(killer) = killer {
        killer.await?;
    }
    let mut after_json = after.json(secs, after_rate * options.batch as f64);
    let (recovery, later_refusals) = recovery(&after, Duration::from_secs(options.after_secs));
    after_json["recovery_secs"] = json!(recovery);
    after_json["refusals_after_recovery"] = json!(later_refusals);
    results.push(after_json);
    print_phase(&results[2]);
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;

    let peak_mib = peak_rss.load(Ordering::Relaxed) as f64 / 1024.0;
    let p99 = results[1]["all_latency"]["p99_ms"]
        .as_f64()
        .unwrap_or(f64::MAX);
    let refused = results[1]["refused"].as_u64().unwrap_or(0);
    let refused_with_retry = results[1]["refused_with_retry_after"].as_u64().unwrap_or(0);
    let summary = json!({
        "phase": "summary",
        "sustainable_events_per_s": sustainable,
        "factor": options.factor,
        "peak_rss_mib": peak_mib,
        "bar_p99_under_100ms": p99 < P99_BAR_MS,
        "bar_refusals_carry_retry_after": refused > 0 && refused == refused_with_retry,
        "bar_rss_under_1gib": peak_mib < RSS_BAR_MIB,
        "bar_recovery_within_1s": recovery.is_some_and(|secs| secs <= RECOVERY_BAR_SECS),
    });
    println!(
        "[overload] sustainable {:.0} events/s; offered {:.0}x; answers p99 {:.1} ms (bar < {P99_BAR_MS}): {}; refusals {refused}, with Retry-After {refused_with_retry}: {}; server VmRSS peak {peak_mib:.0} MiB (bar < {RSS_BAR_MIB}): {}; recovery {} (bar <= {RECOVERY_BAR_SECS} s): {}",
        sustainable,
        options.factor,
        p99,
        pass(summary["bar_p99_under_100ms"].as_bool()),
        pass(summary["bar_refusals_carry_retry_after"].as_bool()),
        pass(summary["bar_rss_under_1gib"].as_bool()),
        recovery.map_or_else(|| "never".to_owned(), |secs| format!("{secs:.1} s")),
        pass(summary["bar_recovery_within_1s"].as_bool()),
    );
    results.push(summary);

    if let Some(path) = &options.acks {
        let acks = shared.acks.lock().expect("acks").clone();
        let mut file = std::fs::File::create(path)?;
        writeln!(file, "key {viewer}")?;
        writeln!(file, "batch {}", options.batch)?;
        for (n, seq) in &acks {
            writeln!(file, "{n} {seq}")?;
        }
        println!(
            "[overload] killed the server (SIGKILL) with requests in flight; {} acknowledged batches written to {}",
            acks.len(),
            path.display()
        );
    }
    if let Some(out) = &options.out {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)?;
        for result in &results {
            writeln!(file, "{result}")?;
        }
    }
    Ok(())
}

fn pass(ok: Option<bool>) -> &'static str {
    if ok == Some(true) { "PASS" } else { "FAIL" }
}

fn print_phase(result: &Value) {
    println!(
        "[overload] {}: {:.1} s, offered {:.0} events/s, acknowledged {:.0} events/s; {} ok, {} refused ({} with Retry-After), {} other, {} errors, {} not sent, {} cut by the kill; latency from due time, ms: ok p50 {} p99 {} max {}; all answers p50 {} p99 {} p99.9 {} max {}{}; slowest answer per second, ms: {}{}",
        result["phase"].as_str().unwrap_or(""),
        result["secs"].as_f64().unwrap_or(0.0),
        result["offered_events_per_s"].as_f64().unwrap_or(0.0),
        result["acknowledged_events_per_s"].as_f64().unwrap_or(0.0),
        result["ok"],
        result["refused"],
        result["refused_with_retry_after"],
        result["other_status"],
        result["errors"],
        result["not_sent"],
        result["cut_by_kill"],
        result["accepted_latency"]["p50_ms"],
        result["accepted_latency"]["p99_ms"],
        result["accepted_latency"]["max_ms"],
        result["all_latency"]["p50_ms"],
        result["all_latency"]["p99_ms"],
        result["all_latency"]["p999_ms"],
        result["all_latency"]["max_ms"],
        result
            .get("recovery_secs")
            .map_or_else(String::new, |secs| format!(
                "; recovered (a second of 99% 200s in {P99_BAR_MS} ms) after {secs} s, {} refusals later",
                result["refusals_after_recovery"]
            )),
        result["slowest_answer_per_second_ms"],
        result["first_error"]
            .as_str()
            .map_or_else(String::new, |err| format!("; first error: {err}")),
    );
}

pub(crate) fn check(options: &CheckOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let text = std::fs::read_to_string(&options.acks)?;
        let mut lines = text.lines();
        let key = match &options.key {
            Some(key) => key.clone(),
            None => lines
                .next()
                .and_then(|line| line.strip_prefix("key "))
                .context("no key in the acknowledgements")?
                .to_owned(),
        };
        let batch: u64 = lines
            .next()
            .and_then(|line| line.strip_prefix("batch "))
            .context("no batch size")?
            .parse()?;
        let acks: Vec<(u64, u64)> = lines
            .filter_map(|line| {
                let (n, seq) = line.split_once(' ')?;
                Some((n.parse().ok()?, seq.parse().ok()?))
            })
            .collect();
        let mut conn = Conn::open(options.addr).await?;
        let started = Instant::now();
        let mut lost = Vec::new();
        // The first and the last event of every acknowledged batch, at their receipts' seqs.
        for (n, seq) in &acks {
            for (i, at) in [(0, *seq), (batch - 1, seq + batch - 1)] {
                let (status, body) = conn
                    .send(Method::GET, &format!("/api/v1/events/{at}"), Some(&key), None)
                    .await?;
                let want = format!("\"id\":\"ov-{n}-{i}\"");
                if !status.is_success() || !String::from_utf8_lossy(&body).contains(&want) {
                    lost.push(format!("ov-{n}-{i} at seq {at}: {status}"));
                }
            }
        }
        let result = json!({
            "phase": "durability after kill -9",
            "acknowledged_batches": acks.len(),
            "acknowledged_events": acks.len() as u64 * batch,
            "checked_events": acks.len() * 2,
            "lost": lost.len(),
            "first_lost": lost.first(),
            "secs": started.elapsed().as_secs_f64(),
        });
        println!(
            "[overload] durability: {} acknowledged batches ({} events); the first and last event of each read back at its receipt's seq after the restart: {} lost{}: {}",
            acks.len(),
            acks.len() as u64 * batch,
            lost.len(),
            lost.first().map_or_else(String::new, |first| format!(" (like {first})")),
            if lost.is_empty() && !acks.is_empty() { "PASS" } else { "FAIL" },
        );
        if let Some(out) = &options.out {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(out)?;
            writeln!(file, "{result}")?;
        }
        anyhow::ensure!(lost.is_empty(), "acknowledged events were lost");
        Ok(())
    })
}
