//! `tenants`: a SaaS deployment's shape, against a running `veritrail serve`: one service
//! publisher key writing for `--tenants` customers (tenants created on first write).
//! Phases: the first write to every tenant (creating them), mixed batches of `--batch`
//! events whose tenants are drawn uniformly, the same with a Zipf mix (s = 1: a few large
//! customers, a long tail), and single events to `/api/v1/tenants/{t}/events` over
//! `--single-connections`. After each phase: the server's open file descriptors and memory.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hyper::Method;
use serde::Deserialize;

use crate::http::{Conn, ServerMetrics, wait_searchable};
use crate::load::{self, Bounds, PhaseResult, Worker, finish};
use crate::synth::{Event, Rng};

/// Options of `veritrail-bench tenants`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// The server's address, like 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// A server-admin key (to create the service key).
    #[arg(long, env = "VERITRAIL_BENCH_ADMIN_KEY")]
    admin_key: String,
    /// The server's pid: its CPU time, open files and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Tenants (customers), `t-00000` on.
    #[arg(long, default_value_t = 10_000)]
    tenants: u64,
    /// Events per mixed batch.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Connections sending mixed batches.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Connections sending single events.
    #[arg(long, default_value_t = 64)]
    single_connections: usize,
    /// Length of each measured phase.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// Results file (JSON lines), appended to.
    #[arg(long)]
    out: Option<PathBuf>,
}

const SYSTEM: &str = "veritrail";

/// How a request's tenants are drawn.
#[derive(Debug, Clone)]
enum Mix {
    Uniform(u64),
    /// Cumulative weights of tenant ranks (Zipf, s = 1).
    Zipf(Vec<f64>),
}

impl Mix {
    fn zipf(tenants: u64) -> Self {
        let mut total = 0.0;
        let cdf = (1..=tenants)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect::<Vec<_>>();
        Mix::Zipf(cdf.into_iter().map(|c| c / total).collect())
    }

    fn draw(&self, rng: &mut Rng) -> u64 {
        match self {
            Mix::Uniform(n) => rng.below(*n),
            Mix::Zipf(cdf) => {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                cdf.partition_point(|&c| c < u) as u64
            }
        }
    }
}

fn tenant_name(n: u64) -> String {
    format!("t-{n:05}")
}

/// Sends mixed batches (`batch > 0`) or single events to the tenant's route.
struct TenantsWorker {
    conn: Conn,
    key: String,
    mix: Mix,
    /// Request `i` covers tenants `i * batch ..` in order instead of drawing them (the
    /// first writes).
    sweep: bool,
    batch: u64,
    stream: String,
    scratch: Event,
    one: String,
    path: String,
    body: Bytes,
}

impl Worker for TenantsWorker {
    fn prepare(&mut self, i: u64) -> anyhow::Result<()> {
        let mut rng = Rng::new(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x7e4a_4175);
        let mut text = String::with_capacity(600 * usize::try_from(self.batch.max(1)).unwrap_or(1));
        if self.batch == 0 {
            let tenant = tenant_name(self.mix.draw(&mut rng));
            self.path = format!("/api/v1/tenants/{tenant}/events");
            self.scratch.fill(&self.stream, i);
            self.scratch.write_json(&mut text);
        } else {
            self.path = "/api/v1/events".to_owned();
            text.push('[');
            for k in 0..self.batch {
                let tenant = if self.sweep {
                    i * self.batch + k
                } else {
                    self.mix.draw(&mut rng)
                };
                if k > 0 {
                    text.push(',');
                }
                self.one.clear();
                self.scratch.fill(&self.stream, i * self.batch + k);
                self.scratch.write_json(&mut self.one);
                // `{"tenant":"t-…",` and the event's own members.
                let _ = write!(text, "{{\"tenant\":\"{}\",", tenant_name(tenant));
                text.push_str(self.one.get(1..).unwrap_or_default());
            }
            text.push(']');
        }
        self.body = Bytes::from(text);
        Ok(())
    }

    /// Sends the request until it is stored: a 503 `overloaded` (the server's overload
    /// control, before anything is stored) is retried after a pause, as a client would,
    /// so the phase measures what the server takes in. The latency includes the retries.
    async fn call(&mut self) -> anyhow::Result<u64> {
        loop {
            let body = self.body.clone();
            let (status, answer) = self
                .conn
                .send(Method::POST, &self.path, Some(&self.key), Some(body))
                .await?;
            if status == hyper::StatusCode::SERVICE_UNAVAILABLE {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            anyhow::ensure!(
                status.is_success(),
                "{}: {status}: {}",
                self.path,
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            );
            return Ok(self.batch.max(1));
        }
    }
}

#[derive(Deserialize)]
struct Created {
    secret: String,
}

/// Open file descriptors and resident memory (MiB) of `pid`.
fn server_footprint(pid: Option<u32>) -> String {
    let Some(pid) = pid else {
        return String::new();
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let rss_kib = crate::overload::read_rss_kib(pid).unwrap_or(0);
    format!(
        "server: {fds} open files, VmRSS {:.0} MiB",
        rss_kib as f64 / 1024.0
    )
}

pub(crate) fn main(options: &Options) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(options.clone()))
}

async fn run(options: Options) -> anyhow::Result<()> {
    let addr = options.addr;
    let mut conn = Conn::open(addr).await?;
    let created = conn
        .ok_json(
            Method::POST,
            "/api/v1/service-keys",
            &options.admin_key,
            serde_json::json!({"role": "service_publisher", "tenant_prefix": "t-", "create_tenants": true, "name": "bench"}),
        )
        .await?;
    let key = serde_json::from_slice::<Created>(&created)
        .context("service key")?
        .secret;
    let batch = options.batch.max(1);
    let workers = |connections: usize, mix: Mix, sweep: bool, batch: u64, stream: &str| {
        let key = key.clone();
        let stream = stream.to_owned();
        async move {
            let mut workers = Vec::with_capacity(connections);
            for _ in 0..connections {
                workers.push(TenantsWorker {
                    conn: Conn::open(addr).await?,
                    key: key.clone(),
                    mix: mix.clone(),
                    sweep,
                    batch,
                    stream: stream.clone(),
                    scratch: Event::default(),
                    one: String::new(),
                    path: String::new(),
                    body: Bytes::new(),
                });
            }
            anyhow::Ok(workers)
        }
    };
    let mut results: Vec<PhaseResult> = Vec::new();
    let uniform = Mix::Uniform(options.tenants);
    let long = Duration::from_secs(3600);
    let phases: [(&str, String, usize, Mix, bool, u64, Bounds); 4] = [
        (
            "tenants-create",
            format!(
                "first writes: {} tenants created, {batch} per request",
                options.tenants
            ),
            1,
            uniform.clone(),
            true,
            batch,
            Bounds {
                max_requests: options.tenants.div_ceil(batch),
                max_time: long,
            },
        ),
        (
            "tenants-uniform",
            format!(
                "mixed batches of {batch} over {} tenants, uniform, {} conn",
                options.tenants, options.connections
            ),
            options.connections,
            uniform.clone(),
            false,
            batch,
            Bounds {
                max_requests: u64::MAX,
                max_time: Duration::from_secs(options.secs),
            },
        ),
        (
            "tenants-zipf",
            format!(
                "mixed batches of {batch} over {} tenants, Zipf (s = 1), {} conn",
                options.tenants, options.connections
            ),
            options.connections,
            Mix::zipf(options.tenants),
            false,
            batch,
            Bounds {
                max_requests: u64::MAX,
                max_time: Duration::from_secs(options.secs),
            },
        ),
        (
            "tenants-single",
            format!(
                "single events to /tenants/{{t}}/events over {} tenants, uniform, {} conn",
                options.tenants, options.single_connections
            ),
            options.single_connections,
            uniform,
            false,
            0,
            Bounds {
                max_requests: u64::MAX,
                max_time: Duration::from_secs(options.secs),
            },
        ),
    ];
    for (key, name, connections, mix, sweep, batch, bounds) in phases {
        let workers = workers(connections, mix, sweep, batch, key).await?;
        let before = ServerMetrics::read(addr).await?;
        let started = Instant::now();
        let mut result =
            load::run_phase(SYSTEM, key, &name, workers, bounds, options.server_pid).await?;
        let after = ServerMetrics::read(addr).await?;
        let footprint = server_footprint(options.server_pid);
        let lag = wait_searchable(addr, long).await?;
        result.note = format!(
            "{}; {footprint}; searchable {:.1} s after the last ack",
            before.describe(&after, "POST", "/api/v1/events"),
            lag.as_secs_f64()
        );
        anyhow::ensure!(
            result.errors == 0,
            "{key}: {} errors (first: {:?}) after {:.1} s",
            result.errors,
            result.first_error,
            started.elapsed().as_secs_f64()
        );
        finish(options.out.as_deref(), &mut results, result)?;
    }
    Ok(())
}
