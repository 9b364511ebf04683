//! `veritrail-bench`: bounded load generators for the ledger. Each run makes its own data
//! directory (a temporary one unless `--dir` is given), stops by itself, and prints one
//! result line per measurement, for BENCHMARKS.md.
//!
//! - `batch`: `--appenders` threads, each appending batches of `--batch` events, durably.
//! - `concurrent`: `--appenders` threads, each appending one event at a time.
//! - `verify`: fills a log, then times the offline verifier over it.
//! - `retention`: fills a log, then times a retention cut, an erasure and the compaction
//!   that follows (with ingest going on), and the disk before and after.
//! - `http`: end to end, against a running `veritrail serve` (see `scripts/bench-http`):
//!   preload (until every event is searchable), then the four search phases on the
//!   preloaded tenant, then batched and single-event ingest, over keep-alive HTTP/1.1.
//!   With `activity` among its phases, it also signs in to the Activity page and measures
//!   its first response, each kind of filter change, paging and record pages. With
//!   `export`, it exports the whole tenant as JSON Lines and as CSV, and times a 1% slice's
//!   first record.
//! - `pg`: the same workload against PostgreSQL, the baseline.
//! - `report`: the Markdown tables of `http` and `pg` results, with the ratios and bars.
//! - `webhooks`: against a running `veritrail serve` (see `scripts/bench-webhooks`): events
//!   at a steady rate, with webhook subscriptions to an in-process receiver and a live tail;
//!   delivery and tail lag, loss, duplicates, signatures and the server's memory.
//! - `overload` (and `overload-check`): batched ingest at three times what the server
//!   sustains, against a running `veritrail serve` (see `scripts/bench-overload`): answer
//!   latencies, refusals, memory, recovery, and durability across a kill -9.
//! - `lifecycle`: against a running `veritrail serve` (see `scripts/bench-lifecycle`):
//!   retention runs on a large log, with searches and then ingest going on; the disk
//!   before and after, and proofs of kept records.
//! - `tenants`: against a running `veritrail serve` (see `scripts/bench-tenants`): one
//!   service key writing for 10,000 tenants, in mixed batches (uniform and Zipf) and single
//!   events; the server's open files and memory.
//!
//! # Layout
//!
//! - This file: the flags, and the ledger's own runs (`batch`, `concurrent`, `verify`).
//! - `synth`: the events and queries, the same for veritrail and PostgreSQL.
//! - `http`: the veritrail side of `http` (a lean keep-alive client, set-up, phases).
//! - `load`: the measured phases: N connections, requests back to back, bounded.
//! - `activity`: the Activity page's requests, as a signed-in browser makes them.
//! - `export`: the whole log exported as JSON Lines and CSV, and a 1% slice's first record.
//! - `pg`: the PostgreSQL baseline. `report`: the Markdown tables.
//! - `webhooks`: webhook delivery and live-tail lag.
//! - `overload`: three times the sustainable load, and what the server does with it.
//! - `retention`: removal and compaction on a large log.
//! - `lifecycle`: the same over HTTP.
//! - `tenants`: many tenants through one service key.

#![allow(
    clippy::print_stdout,
    reason = "the result lines on stdout are this tool's output"
)]

mod activity;
mod export;
mod http;
mod lifecycle;
mod load;
mod overload;
mod pg;
mod report;
mod retention;
mod synth;
mod tenants;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use veritrail_core::event::Timestamp;
use veritrail_core::event::{Event, EventInput, TenantId};
use veritrail_core::note::NoteSigner;
use veritrail_core::record::{CatalogFields, Record};
use veritrail_ledger::verify::VerifyOptions;
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, Ledger, LedgerConfig, verify};

#[derive(Debug, Parser)]
#[command(about = "Bounded load generators for the veritrail ledger")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    /// Data directory to use (must not exist); a temporary one by default.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Durable appends in batches, from several appender threads.
    Batch {
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 4)]
        appenders: usize,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Spread the events over this many tenants.
        #[arg(long, default_value_t = 1)]
        tenants: usize,
        /// Give every event a client id (idempotency key).
        #[arg(long)]
        ids: bool,
    },
    /// Durable single-event appends from many concurrent appenders.
    Concurrent {
        #[arg(long, default_value_t = 64)]
        appenders: usize,
        #[arg(long, default_value_t = 300_000)]
        events: u64,
        #[arg(long)]
        ids: bool,
    },
    /// The rejected design, for comparison: records, Merkle nodes and ids all in redb,
    /// one durable redb commit per batch (what ARCHITECTURE.md measured against).
    RedbOnly {
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        #[arg(long)]
        ids: bool,
    },
    /// End to end against a running `veritrail serve`: creates the tenant and keys, preloads,
    /// then measures searches and ingest over HTTP.
    Http {
        /// The server's address, like 127.0.0.1:8080.
        #[arg(long)]
        addr: SocketAddr,
        /// A server-admin key (to create the tenant and its keys).
        #[arg(long, env = "VERITRAIL_BENCH_ADMIN_KEY")]
        admin_key: String,
        #[command(flatten)]
        workload: Workload,
    },
    /// The same workload against PostgreSQL (the table is dropped and made anew).
    Pg {
        /// A tokio-postgres connection string, like `host=/tmp/pg port=5432 user=postgres`.
        #[arg(long)]
        url: String,
        #[command(flatten)]
        workload: Workload,
    },
    /// Markdown tables of `http` and `pg` results files (JSON lines), with ratios and bars.
    Report { files: Vec<PathBuf> },
    /// Webhook delivery and live-tail lag against a running `veritrail serve`: a fresh
    /// tenant, subscriptions to an in-process receiver, events at a steady rate; lag, loss,
    /// duplicates, signatures and the server's memory.
    Webhooks(webhooks::Options),
    /// Retention over HTTP on a large log, against a running `veritrail serve`: the disk
    /// before and after, ingest and searches before and while the run and its compaction
    /// go on, and inclusion proofs of kept records checked after (see
    /// `scripts/bench-lifecycle`).
    Lifecycle(lifecycle::Options),
    /// Many tenants through one service key, against a running `veritrail serve`: tenants
    /// created on first write, mixed batches (uniform and Zipf), single events; the
    /// server's open files and memory (see `scripts/bench-tenants`).
    Tenants(tenants::Options),
    /// Batched ingest at a multiple of what a running `veritrail serve` sustains: answer
    /// latencies, refusals, memory, recovery when the load drops (see
    /// `scripts/bench-overload`).
    Overload(overload::Options),
    /// After `overload --acks FILE` killed the server and it was restarted: reads every
    /// acknowledged batch back at its receipts' seqs.
    OverloadCheck(overload::CheckOptions),
    /// A retention cut, an erasure and the compaction that follows, on a large log.
    Retention {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// The oldest part of the log the retention cut removes, in percent.
        #[arg(long, default_value_t = 90)]
        remove_percent: u64,
        /// Scattered kept records the erasure removes.
        #[arg(long, default_value_t = 1000)]
        erase: u64,
        /// Compaction's read pace in MiB/s (0: as fast as the disk goes).
        #[arg(long, default_value_t = 64)]
        compact_mib_per_second: u64,
    },
    /// Offline verification of a log of this many events.
    Verify {
        #[arg(long, default_value_t = 2_000_000)]
        events: u64,
        /// Also decode every record (`veritrail verify --deep`).
        #[arg(long)]
        decode: bool,
    },
}

/// The HTTP benchmark's workload, the same for veritrail and PostgreSQL. Every phase stops
/// at its request count or its time, whichever comes first.
#[derive(Debug, Clone, Args)]
struct Workload {
    /// Events preloaded into the tenant before anything is measured.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// The tenant the benchmark makes and fills (it must not exist yet).
    #[arg(long, default_value = "bench")]
    tenant: String,
    /// Events per preload request (veritrail).
    #[arg(long, default_value_t = 1000)]
    preload_batch: u64,
    /// Preload connections (veritrail; PostgreSQL uses at most 2 COPY streams).
    #[arg(long, default_value_t = 4)]
    preload_connections: usize,
    /// Longest the preload, and any wait for the search index to catch up, may take.
    #[arg(long, default_value_t = 3600)]
    max_preload_secs: u64,
    /// Pause after the preload and after each ingest phase.
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Unmeasured queries before each search phase.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Longest one search phase may take (four phases: filtered, one word, two words,
    /// count).
    #[arg(long, default_value_t = 20)]
    search_secs: u64,
    /// Most queries of one search phase.
    #[arg(long, default_value_t = 1_000_000)]
    search_queries: u64,
    /// Concurrent connections of each search phase.
    #[arg(long, default_value_t = 2)]
    search_connections: usize,
    /// Longest one ingest phase may take (two phases: batched, single events).
    #[arg(long, default_value_t = 20)]
    ingest_secs: u64,
    /// Most requests of one ingest phase.
    #[arg(long, default_value_t = 10_000_000)]
    ingest_requests: u64,
    /// Events per request of the batched ingest phase.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Connections of the batched ingest phase.
    #[arg(long, default_value_t = 8)]
    batch_connections: usize,
    /// Connections of the single-event ingest phase.
    #[arg(long, default_value_t = 64)]
    single_connections: usize,
    /// Longest one Activity page phase may take (eleven phases: the first response, each
    /// kind of filter change, the next page, a record page).
    #[arg(long, default_value_t = 10)]
    activity_secs: u64,
    /// Most requests of one Activity page phase.
    #[arg(long, default_value_t = 100_000)]
    activity_requests: u64,
    /// Concurrent connections (signed-in browsers) of each Activity page phase.
    #[arg(long, default_value_t = 1)]
    activity_connections: usize,
    /// The server's PID, to report its CPU time (PostgreSQL: the postmaster's).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Append each phase's result to this file, one JSON object a line.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The phases to run (veritrail): `preload` creates and fills the tenant; without it
    /// the tenant must exist already (say, a server kept with `KEEP=1`) and only keys are
    /// made. `activity` is the Activity page's, `export` the event exports' (veritrail
    /// only).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "preload,search,activity,export,ingest"
    )]
    phases: Vec<Phase>,
}

/// A part of the HTTP benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Preload,
    Search,
    Activity,
    Export,
    Ingest,
}

impl Workload {
    fn query_kinds(&self) -> [synth::QueryKind; 5] {
        [
            synth::QueryKind::Filtered,
            synth::QueryKind::TextOne,
            synth::QueryKind::TextTwo,
            synth::QueryKind::Count,
            synth::QueryKind::Categories,
        ]
    }

    fn runs(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }

    fn search_bounds(&self) -> load::Bounds {
        load::Bounds {
            max_requests: self.search_queries,
            max_time: Duration::from_secs(self.search_secs),
        }
    }

    fn activity_bounds(&self) -> load::Bounds {
        load::Bounds {
            max_requests: self.activity_requests,
            max_time: Duration::from_secs(self.activity_secs),
        }
    }

    fn ingest_bounds(&self) -> load::Bounds {
        load::Bounds {
            max_requests: self.ingest_requests,
            max_time: Duration::from_secs(self.ingest_secs),
        }
    }

    /// `(key, name, connections, events per request)`; 0 events per request: one event
    /// object per request.
    fn ingest_phases(&self) -> Vec<(&'static str, String, usize, u64)> {
        vec![
            (
                "ingest_batch",
                format!("ingest, batches of {}", self.batch),
                self.batch_connections,
                self.batch,
            ),
            (
                "ingest_single",
                "ingest, single events".to_owned(),
                self.single_connections,
                0,
            ),
        ]
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread: the load generator should take as little of the machine as it can.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.mode {
        Mode::Http {
            addr,
            admin_key,
            workload,
        } => {
            runtime()?.block_on(http::run(*addr, admin_key, workload))?;
            return Ok(());
        }
        Mode::Pg { url, workload } => {
            runtime()?.block_on(pg::run(url, workload))?;
            return Ok(());
        }
        Mode::Report { files } => return report::print(files),
        Mode::Webhooks(options) => return webhooks::main(options),
        Mode::Lifecycle(options) => return lifecycle::main(options),
        Mode::Tenants(options) => return tenants::main(options),
        Mode::Overload(options) => return overload::main(options),
        Mode::OverloadCheck(options) => return overload::check(options),
        _ => {}
    }
    let temp = tempfile::tempdir_in(std::env::current_dir()?)?;
    let dir = cli.dir.clone().unwrap_or_else(|| temp.path().join("bench"));
    match cli.mode {
        Mode::Batch {
            batch,
            appenders,
            events,
            tenants,
            ids,
        } => {
            let result = run_appenders(&dir, appenders, events, batch, tenants, ids)?;
            let what = format!(
                "batch: {events} events of {} bytes in batches of {batch} from {appenders} appenders over {tenants} tenant(s)",
                result.record_bytes
            );
            result.print(&what, ids);
        }
        Mode::Http { .. }
        | Mode::Pg { .. }
        | Mode::Report { .. }
        | Mode::Webhooks(_)
        | Mode::Lifecycle(_)
        | Mode::Tenants(_)
        | Mode::Overload(_)
        | Mode::OverloadCheck(_) => {}
        Mode::Concurrent {
            appenders,
            events,
            ids,
        } => {
            let result = run_appenders(&dir, appenders, events, 1, 1, ids)?;
            let what = format!(
                "concurrent: {events} single-event appends of {} bytes from {appenders} appenders",
                result.record_bytes
            );
            result.print(&what, ids);
        }
        Mode::Retention {
            events,
            remove_percent,
            erase,
            compact_mib_per_second,
        } => retention::run(&dir, events, remove_percent, erase, compact_mib_per_second)?,
        Mode::RedbOnly { batch, events, ids } => {
            let (elapsed, record_bytes) = redb_only(&dir, batch, events, ids)?;
            println!(
                "redb-only: {events} events of {record_bytes} bytes in durable redb commits of {batch}{}: {:.0} events/s ({:.2} s)",
                if ids { " with ids" } else { "" },
                events as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64(),
            );
        }
        Mode::Verify { events, decode } => {
            let result = run_appenders(&dir, 4, events, 1000, 1, true)?;
            let signer = signer()?;
            let started = Instant::now();
            let report = verify::verify_ledger_dir(
                &dir.join("ledger"),
                &signer.verifier(),
                &VerifyOptions {
                    decode_records: decode,
                    ..VerifyOptions::default()
                },
                &mut |_, _| {},
            )?;
            let elapsed = started.elapsed();
            anyhow::ensure!(
                report.is_ok(),
                "verification failed: {:?}",
                report.faults.first()
            );
            anyhow::ensure!(
                report.n_records == events,
                "verified {} records",
                report.n_records
            );
            println!(
                "verify{}: {events} events of {} bytes ({:.0} MiB of journal) verified in {:.2} s on one thread: {:.0} events/s",
                if decode { " --decode" } else { "" },
                result.record_bytes,
                report.bytes as f64 / f64::from(1 << 20),
                elapsed.as_secs_f64(),
                events as f64 / elapsed.as_secs_f64(),
            );
        }
    }
    Ok(())
}

struct RunResult {
    elapsed: Duration,
    events: u64,
    n_commits: u64,
    record_bytes: usize,
}

impl RunResult {
    fn print(&self, what: &str, ids: bool) {
        println!(
            "{what}{}: {:.0} events/s durable ({:.2} s, {} commits, {:.1} events/commit)",
            if ids { " with ids" } else { "" },
            self.events as f64 / self.elapsed.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.n_commits,
            self.events as f64 / self.n_commits.max(1) as f64,
        );
    }
}

fn signer() -> anyhow::Result<NoteSigner> {
    NoteSigner::from_seed("bench.veritrail.local", [7; 32]).context("bench signer")
}

/// A realistic event: about 500 bytes once stored.
fn sample_event(appender: usize, n: u64, with_id: bool) -> anyhow::Result<Event> {
    let input: EventInput = serde_json::from_value(serde_json::json!({
        "id": with_id.then(|| format!("evt-{appender:03}-{n:012}-{:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15))),
        "type": "user.password_updated",
        "occurred_at": "2025-10-23T16:31:39.680Z",
        "actor": {"id": format!("u_{}", n % 10_000), "type": "user", "name": "Test User",
                  "email": "test.user@example.com", "ip": "100.151.54.26",
                  "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
        "targets": [{"id": format!("u_{}", n % 977), "type": "user", "name": "target@example.com"}],
        "outcome": "success",
        "correlation_id": format!("req-{appender}-{n}"),
        "source": {"service": "accounts", "component": "api", "version": "1.2.0"},
        "summary": "User \"test.user@example.com\" updated the password of \"target@example.com\"",
        "details": {"method": "password", "mfa": true, "session": format!("s-{n:016}"), "attempt": n % 3,
                    "reason": "scheduled rotation", "policy": "corp-default-2025"},
    }))?;
    Event::parse(input).map_err(|err| anyhow::anyhow!("sample event is invalid: {err:?}"))
}

fn run_appenders(
    dir: &std::path::Path,
    appenders: usize,
    events: u64,
    batch: usize,
    n_tenants: usize,
    ids: bool,
) -> anyhow::Result<RunResult> {
    let store = Arc::new(EmbeddedStore::open(
        &dir.join("ledger"),
        EmbeddedOptions::default(),
    )?);
    let ledger = Arc::new(Ledger::start(
        store.clone(),
        signer()?,
        LedgerConfig {
            ..LedgerConfig::default()
        },
    )?);
    let tenants: Vec<TenantId> = (0..n_tenants)
        .map(|i| TenantId::parse(&format!("tenant-{i}")))
        .collect::<Result<_, _>>()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let record_bytes = Record::new(
        tenants[0].clone(),
        0,
        Timestamp::from_unix_nanos(1_761_237_099_680_000_000),
        sample_event(0, 0, ids)?,
        CatalogFields::default(),
    )
    .encode()
    .len();
    let per_appender = events / appenders as u64;
    // The events are made before the clock starts: this measures the ledger, not JSON.
    let mut batches_per_appender = Vec::with_capacity(appenders);
    for appender in 0..appenders {
        let count = per_appender + u64::from((appender as u64) < events % appenders as u64);
        let mut batches = Vec::new();
        let mut n = 0u64;
        while n < count {
            let n_batch = (batch as u64).min(count - n);
            let tenant = tenants[(appender + batches.len()) % tenants.len()].clone();
            let events = (n..n + n_batch)
                .map(|i| sample_event(appender, i, ids))
                .collect::<anyhow::Result<Vec<_>>>()?;
            batches.push((tenant, events));
            n += n_batch;
        }
        batches_per_appender.push(batches);
    }
    let started = Instant::now();
    let handles: Vec<_> = batches_per_appender
        .into_iter()
        .map(|batches| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || -> anyhow::Result<()> {
                for (tenant, events) in batches {
                    let n_events = events.len();
                    let receipts = ledger.append_blocking(tenant, events)?;
                    anyhow::ensure!(receipts.len() == n_events, "missing receipts");
                }
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("appender panicked"))??;
    }
    let elapsed = started.elapsed();
    ledger.shutdown();
    store.sync()?;
    Ok(RunResult {
        elapsed,
        events,
        n_commits: ledger.stats().commits.load(Ordering::Relaxed),
        record_bytes,
    })
}

/// Records, nodes and ids in three redb tables, one `Durability::Immediate` commit per batch.
fn redb_only(
    dir: &std::path::Path,
    batch: usize,
    events: u64,
    ids: bool,
) -> anyhow::Result<(Duration, usize)> {
    use redb::TableDefinition;
    const RECORDS: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("records");
    const NODES: TableDefinition<(u32, u8, u64), &[u8; 32]> = TableDefinition::new("nodes");
    const IDS: TableDefinition<(u32, &str), u64> = TableDefinition::new("ids");
    std::fs::create_dir_all(dir)?;
    let db = redb::Database::create(dir.join("redb-only.redb"))?;
    let tenant = TenantId::parse("tenant-0").map_err(|err| anyhow::anyhow!("{err}"))?;
    let received_at = Timestamp::from_unix_nanos(1_761_237_099_680_000_000);
    let all: Vec<Event> = (0..events)
        .map(|n| sample_event(0, n, ids))
        .collect::<anyhow::Result<_>>()?;
    let mut frontier = veritrail_core::merkle::Frontier::new();
    let mut record_bytes = 0;
    let started = Instant::now();
    let mut events_left = all.into_iter();
    let mut seq = 0u64;
    while seq < events {
        let txn = db.begin_write()?;
        {
            let mut records = txn.open_table(RECORDS)?;
            let mut nodes = txn.open_table(NODES)?;
            let mut id_table = txn.open_table(IDS)?;
            for event in events_left.by_ref().take(batch) {
                let id = event.id().map(|id| id.as_str().to_owned());
                let bytes = Record::new(
                    tenant.clone(),
                    seq,
                    received_at,
                    event,
                    CatalogFields::default(),
                )
                .encode();
                record_bytes = bytes.len();
                records.insert((0, seq), bytes.as_slice())?;
                let mut completed = Vec::new();
                frontier.append(veritrail_core::merkle::leaf_hash(&bytes), |node, hash| {
                    completed.push((node, hash));
                });
                for (node, hash) in &completed {
                    nodes.insert((0, node.level, node.index), hash)?;
                }
                if let Some(id) = id {
                    id_table.insert((0, id.as_str()), seq)?;
                }
                seq += 1;
            }
        }
        txn.commit()?;
    }
    Ok((started.elapsed(), record_bytes))
}
