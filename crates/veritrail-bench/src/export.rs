//! The export phases of the HTTP benchmark: the whole preloaded tenant streamed as JSON
//! Lines and as CSV over one connection (events/s, MiB/s, and the server's memory sampled
//! every 100 ms: an export must not grow it), then a filtered 1% slice (one type of the 20,
//! over 18 of the 90 days), each request timed to its first record and to its end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::Workload;
use crate::http::Conn;
use crate::load::{self, PhaseResult, finish};
use crate::overload::read_rss_kib;
use crate::synth;

const SYSTEM: &str = "veritrail";

/// Requests of the 1% slice phase.
const SLICE_REQUESTS: u64 = 20;

/// Every export phase, with the viewer's key.
pub(crate) async fn phases(
    addr: std::net::SocketAddr,
    viewer: &str,
    workload: &Workload,
    results: &mut Vec<PhaseResult>,
) -> anyhow::Result<()> {
    for format in ["jsonl", "csv"] {
        let result = whole(addr, viewer, workload, format).await?;
        finish(workload.out.as_deref(), results, result)?;
    }
    let result = slice(addr, viewer, workload).await?;
    finish(workload.out.as_deref(), results, result)
}

/// The server's peak resident memory while a phase runs, sampled every 100 ms.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    before_kib: u64,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: Option<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let before_kib = pid.and_then(read_rss_kib).unwrap_or(0);
        let task = tokio::spawn({
            let (stop, peak_kib) = (Arc::clone(&stop), Arc::clone(&peak_kib));
            async move {
                let Some(pid) = pid else { return };
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = read_rss_kib(pid) {
                        peak_kib.fetch_max(rss, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self {
            stop,
            peak_kib,
            before_kib,
            task,
        }
    }

    /// `(before, peak)` in MiB.
    async fn finish(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let mib = |kib: u64| kib as f64 / 1024.0;
        (
            mib(self.before_kib),
            mib(self.peak_kib.load(Ordering::Relaxed).max(self.before_kib)),
        )
    }
}

/// The whole tenant as `format`, over one connection.
async fn whole(
    addr: std::net::SocketAddr,
    viewer: &str,
    workload: &Workload,
    format: &str,
) -> anyhow::Result<PhaseResult> {
    let mut conn = Conn::open(addr).await?;
    let rss = RssSampler::start(workload.server_pid);
    let (client_cpu, server_cpu) = (
        load::own_cpu_secs(),
        load::tree_cpu_secs(workload.server_pid),
    );
    let started = Instant::now();
    let (mut lines, mut bytes) = (0u64, 0u64);
    let path = format!("/api/v1/events/export?format={format}");
    let (status, headers) = conn
        .stream(&path, viewer, |data| {
            bytes += data.len() as u64;
            lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
        })
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let (client_cpu, server_cpu) = (
        load::own_cpu_secs() - client_cpu,
        load::tree_cpu_secs(workload.server_pid) - server_cpu,
    );
    let (before_mib, peak_mib) = rss.finish().await;
    anyhow::ensure!(status.is_success(), "{path}: {status}");
    // The CSV's header row is no event (no cell holds a line break: details are JSON).
    let events = if format == "csv" {
        lines.saturating_sub(1)
    } else {
        lines
    };
    let bound: u64 = headers
        .get("veritrail-indexed-size")
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(
        events + 10 >= bound && events >= workload.events,
        "{path}: {events} events, the bound {bound}"
    );
    let ms = secs * 1000.0;
    Ok(PhaseResult {
        system: SYSTEM.into(),
        key: format!("export_{format}"),
        name: format!("export, every event as {format}, one connection"),
        connections: 1,
        requests: 1,
        events,
        errors: 0,
        first_error: None,
        secs,
        p50_ms: ms,
        p90_ms: ms,
        p99_ms: ms,
        max_ms: ms,
        mean_ms: ms,
        client_cpu_s: client_cpu,
        server_cpu_s: server_cpu,
        server_ms: None,
        note: format!(
            "{:.0} MiB at {:.0} MiB/s ({:.0} B/event); server VmRSS {before_mib:.0} MiB before, peak {peak_mib:.0} MiB",
            bytes as f64 / 1_048_576.0,
            bytes as f64 / 1_048_576.0 / secs.max(1e-9),
            bytes as f64 / events.max(1) as f64,
        ),
    })
}

/// A 1% slice (`auth.login`, the first 18 of the 90 days) as JSON Lines, `SLICE_REQUESTS`
/// times: each timed to its first record (the bar) and to its end.
async fn slice(
    addr: std::net::SocketAddr,
    viewer: &str,
    workload: &Workload,
) -> anyhow::Result<PhaseResult> {
    let from_ms = (synth::END_UNIX - synth::SPAN_SECS) * 1000;
    let to_ms = from_ms + 18 * 86_400_000;
    let path = format!(
        "/api/v1/events/export?type={}.{}&from={}&to={}",
        synth::FAMILIES[0],
        synth::TYPES[0][0],
        rfc3339(from_ms),
        rfc3339(to_ms)
    );
    let mut first = Histogram::<u64>::new(3)?;
    let mut whole_ms = Histogram::<u64>::new(3)?;
    let mut events = 0u64;
    let (client_cpu, server_cpu) = (
        load::own_cpu_secs(),
        load::tree_cpu_secs(workload.server_pid),
    );
    let started = Instant::now();
    let mut conn = Conn::open(addr).await?;
    for _ in 0..SLICE_REQUESTS {
        let sent = Instant::now();
        let mut first_line: Option<Duration> = None;
        let mut lines = 0u64;
        let (status, _) = conn
            .stream(&path, viewer, |data| {
                let n = data.iter().filter(|&&b| b == b'\n').count() as u64;
                if n > 0 && first_line.is_none() {
                    first_line = Some(sent.elapsed());
                }
                lines += n;
            })
            .await?;
        anyhow::ensure!(status.is_success(), "{path}: {status}");
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        first.record(micros(first_line.unwrap_or_else(|| sent.elapsed())))?;
        whole_ms.record(micros(sent.elapsed()))?;
        events += lines;
    }
    let secs = started.elapsed().as_secs_f64();
    let per = events / SLICE_REQUESTS;
    anyhow::ensure!(
        per * 200 >= workload.events && per * 50 <= workload.events,
        "{path}: {per} events a request, not about 1% of {}",
        workload.events
    );
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(PhaseResult {
        system: SYSTEM.into(),
        key: "export_slice_first".into(),
        name: "export, a 1% slice (one type, 18 days): time to the first record".into(),
        connections: 1,
        requests: SLICE_REQUESTS,
        events,
        errors: 0,
        first_error: None,
        secs,
        p50_ms: ms(first.value_at_quantile(0.5)),
        p90_ms: ms(first.value_at_quantile(0.9)),
        p99_ms: ms(first.value_at_quantile(0.99)),
        max_ms: ms(first.max()),
        mean_ms: first.mean() / 1000.0,
        client_cpu_s: load::own_cpu_secs() - client_cpu,
        server_cpu_s: load::tree_cpu_secs(workload.server_pid) - server_cpu,
        server_ms: None,
        note: format!(
            "{per} events a request; whole slice p50 {:.0} ms, p99 {:.0} ms",
            ms(whole_ms.value_at_quantile(0.5)),
            ms(whole_ms.value_at_quantile(0.99)),
        ),
    })
}

fn rfc3339(ms: i64) -> String {
    let mut text = String::new();
    synth::rfc3339_ms(ms, &mut text);
    text
}
