//! The measured phases of the HTTP benchmark: N concurrent connections, each sending
//! requests back to back until a request count or a deadline is reached, whichever is first;
//! latencies go to an HDR histogram, CPU time of the client and of the server is sampled
//! from `/proc` around the phase.

use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One connection's work: `prepare` builds request `i` (not timed), `call` sends it and
/// waits for the whole answer (timed); it returns the number of events the request carried
/// (ingest) or returned (search).
pub(crate) trait Worker {
    fn prepare(&mut self, i: u64) -> anyhow::Result<()>;
    async fn call(&mut self) -> anyhow::Result<u64>;
}

/// Set to end the phases under way at once: a phase that lasts as long as something the
/// benchmark waits for (`lifecycle`'s compaction).
pub(crate) static END_PHASES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// When a phase stops: after `max_requests` requests or `max_time`, whichever is first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) max_requests: u64,
    pub(crate) max_time: Duration,
}

/// What one phase measured; one JSON line of the results file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PhaseResult {
    pub(crate) system: String,
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) connections: usize,
    pub(crate) requests: u64,
    /// Events sent (ingest) or returned (search; for counts, the events counted).
    pub(crate) events: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) secs: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
    pub(crate) client_cpu_s: f64,
    pub(crate) server_cpu_s: f64,
    /// The server's own time (its `Server-Timing` header), p50 / p95 / p99 / max in ms,
    /// where the phase read it (the Activity page's).
    #[serde(default)]
    pub(crate) server_ms: Option<[f64; 4]>,
    /// Anything else worth printing (server metrics, catch-up time).
    #[serde(default)]
    pub(crate) note: String,
}

impl PhaseResult {
    pub(crate) fn events_per_s(&self) -> f64 {
        self.events as f64 / self.secs.max(1e-9)
    }

    pub(crate) fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }

    /// One human line, to stdout as the phase ends.
    pub(crate) fn print(&self) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "[{}] {}: {} req in {:.1} s over {} conn = {:.0} req/s, {:.0} events/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; cpu s client {:.1} server {:.1}; errors {}{}{}",
            self.system,
            self.name,
            self.requests,
            self.secs,
            self.connections,
            self.requests_per_s(),
            self.events_per_s(),
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.client_cpu_s,
            self.server_cpu_s,
            self.errors,
            self.first_error
                .as_deref()
                .map(|err| format!(" (first: {err})"))
                .unwrap_or_default(),
            if self.note.is_empty() {
                String::new()
            } else {
                format!("; {}", self.note)
            },
        );
    }

    /// Appends this result as one JSON line to `path`.
    pub(crate) fn append_to(&self, path: &Path) -> anyhow::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{}", serde_json::to_string(self)?)?;
        Ok(())
    }
}

/// CPU seconds of this process.
pub(crate) fn own_cpu_secs() -> f64 {
    proc_cpu_ticks(std::process::id(), false) as f64 / TICKS_PER_SEC
}

/// CPU seconds of process `pid` and its direct children (PostgreSQL's backends).
pub(crate) fn tree_cpu_secs(pid: Option<u32>) -> f64 {
    pid.map_or(0.0, |pid| proc_cpu_ticks(pid, true) as f64 / TICKS_PER_SEC)
}

/// `USER_HZ`, 100 on Linux.
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `pid` (all its threads), plus of its children when asked.
fn proc_cpu_ticks(pid: u32, with_children: bool) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let read = |path: &Path| -> Option<(u32, u64)> {
        let text = std::fs::read_to_string(path).ok()?;
        // The command name may hold spaces: fields count from after its closing paren.
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ppid = fields.get(1)?.parse().ok()?;
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((ppid, utime + stime))
    };
    if !with_children {
        return read(Path::new(&format!("/proc/{pid}/stat"))).map_or(0, |(_, ticks)| ticks);
    }
    for entry in entries.flatten() {
        let Some(this) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, ticks)) = read(&entry.path().join("stat"))
            && (this == pid || ppid == pid)
        {
            total += ticks;
        }
    }
    total
}

/// Runs `workers` concurrently (one task, polled together) within `bounds`.
pub(crate) async fn run_phase<W: Worker>(
    system: &str,
    key: &str,
    name: &str,
    workers: Vec<W>,
    bounds: Bounds,
    server_pid: Option<u32>,
) -> anyhow::Result<PhaseResult> {
    let connections = workers.len();
    let next = Cell::new(0u64);
    let client_cpu = own_cpu_secs();
    let server_cpu = tree_cpu_secs(server_pid);
    let started = Instant::now();
    let deadline = started + bounds.max_time;
    let next = &next;
    let outcomes =
        futures_util::future::join_all(workers.into_iter().map(|mut worker| async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
            let mut events = 0u64;
            let mut requests = 0u64;
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let i = next.get();
                if i >= bounds.max_requests
                    || Instant::now() >= deadline
                    || END_PHASES.load(std::sync::atomic::Ordering::Relaxed)
                {
                    break;
                }
                next.set(i + 1);
                worker.prepare(i)?;
                let sent = Instant::now();
                let result = worker.call().await;
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                requests += 1;
                match result {
                    Ok(n) => {
                        events += n;
                        histogram.saturating_record(micros.max(1));
                    }
                    Err(err) => {
                        errors += 1;
                        if first_error.is_none() {
                            first_error = Some(format!("{err:#}"));
                        }
                        if errors > 100 {
                            anyhow::bail!("more than 100 errors, the first: {err:#}");
                        }
                    }
                }
            }
            anyhow::Ok((histogram, events, requests, errors, first_error))
        }))
        .await;
    let secs = started.elapsed().as_secs_f64();
    let mut result = PhaseResult {
        system: system.to_owned(),
        key: key.to_owned(),
        name: name.to_owned(),
        connections,
        secs,
        client_cpu_s: own_cpu_secs() - client_cpu,
        server_cpu_s: tree_cpu_secs(server_pid) - server_cpu,
        ..PhaseResult::default()
    };
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    for outcome in outcomes {
        let (worker_histogram, events, requests, errors, first_error) = outcome?;
        histogram.add(&worker_histogram)?;
        result.events += events;
        result.requests += requests;
        result.errors += errors;
        if result.first_error.is_none() {
            result.first_error = first_error;
        }
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    result.p50_ms = ms(histogram.value_at_quantile(0.50));
    result.p90_ms = ms(histogram.value_at_quantile(0.90));
    result.p99_ms = ms(histogram.value_at_quantile(0.99));
    result.max_ms = ms(histogram.max());
    result.mean_ms = histogram.mean() / 1000.0;
    Ok(result)
}

/// Prints `result`, appends it to the results file when there is one, and keeps it.
pub(crate) fn finish(
    out: Option<&Path>,
    results: &mut Vec<PhaseResult>,
    result: PhaseResult,
) -> anyhow::Result<()> {
    result.print();
    if let Some(out) = out {
        result.append_to(out)?;
    }
    results.push(result);
    Ok(())
}

/// Runs each worker for `secs` on request numbers far from the measured ones (warm-up,
/// not measured).
pub(crate) async fn warm_up<W: Worker>(workers: Vec<W>, secs: u64) -> anyhow::Result<Vec<W>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let warmed = futures_util::future::join_all(workers.into_iter().enumerate().map(
        |(w, mut worker)| async move {
            let mut i = 1_000_000_000 + (w as u64) * 1_000_000;
            while Instant::now() < deadline {
                worker.prepare(i)?;
                worker.call().await?;
                i += 1;
            }
            anyhow::Ok(worker)
        },
    ))
    .await;
    warmed.into_iter().collect()
}
