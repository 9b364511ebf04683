//! `lifecycle`: the data lifecycle end to end, against a running `veritrail serve`. Fills a
//! tenant with `--events` events; measures batched ingest alone, then first-page searches
//! alone, for a window each; then run 1: a retention policy that keeps `--keep-percent` of
//! the log, run, with searches going on until the compaction that follows has ended (the
//! disk before and after, allocated blocks of every file; the time; search latency); then
//! run 2: the same over what run 1 kept, with batched ingest at full speed meanwhile (its
//! rate); last, `--proofs` inclusion proofs of kept records checked against the signed
//! checkpoint and the pinned verifier key, as a client would.
//!
//! Each bar is measured under its own load, so that the disk comparison holds no events
//! ingested meanwhile. The server stamps `received_at`, so a log cannot be filled with two
//! years of events in minutes: the runs use a count policy (`max_events`), which makes the
//! cut a one-year age policy makes on a log of evenly spread events (an age policy differs
//! only in how the cut's seq is found: a binary search of `received_at`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hyper::Method;
use serde::Deserialize;
use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::merkle;
use veritrail_core::note::{self, NoteVerifier};

use crate::http::{self, Conn, SearchWorker, ServerMetrics};
use crate::load::{self, Bounds, END_PHASES, PhaseResult};
use crate::synth::QueryKind;

/// Options of `veritrail-bench lifecycle`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// The server's address, like 127.0.0.1:8080.
    #[arg(long)]
    addr: std::net::SocketAddr,
    /// A server-admin key (to create the tenant and its keys).
    #[arg(long, env = "VERITRAIL_BENCH_ADMIN_KEY")]
    admin_key: String,
    /// The server's data directory, whose disk use is measured.
    #[arg(long)]
    data_dir: PathBuf,
    /// The server's pid, for its CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Events the tenant is filled with first.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// The tenant made and filled (it must not exist yet).
    #[arg(long, default_value = "lifecycle")]
    tenant: String,
    /// The part of the log the retention policy keeps, in percent.
    #[arg(long, default_value_t = 50)]
    keep_percent: u64,
    /// Ingest connections of the measured windows (batches of `--batch`).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Length of the window measured before the run.
    #[arg(long, default_value_t = 30)]
    window_secs: u64,
    /// Inclusion proofs of kept records checked after the compaction.
    #[arg(long, default_value_t = 1000)]
    proofs: u64,
    /// Longest the fill, a wait or the compaction may take.
    #[arg(long, default_value_t = 3600)]
    max_secs: u64,
}

/// Disk use of a data directory, by part.
struct Disk {
    journal: u64,
    derived: u64,
    id_index: u64,
    search: u64,
    rest: u64,
}

impl Disk {
    fn of(dir: &Path) -> anyhow::Result<Disk> {
        let ledger = dir.join("ledger");
        let journal = allocated(&ledger.join("journal"))?;
        let derived = allocated(&ledger.join("tenants"))?;
        let id_index = allocated(&ledger.join("index.redb"))?;
        let search = allocated(&dir.join("search"))?;
        let all = allocated(dir)?;
        Ok(Disk {
            journal,
            derived,
            id_index,
            search,
            rest: all - journal - derived - id_index - search,
        })
    }

    fn total(&self) -> u64 {
        self.journal + self.derived + self.id_index + self.search + self.rest
    }

    fn describe(&self) -> String {
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        format!(
            "{:.0} MiB: journal {:.0}, offsets and nodes {:.0}, id index {:.0}, search index {:.0}, the rest {:.0}",
            mib(self.total()),
            mib(self.journal),
            mib(self.derived),
            mib(self.id_index),
            mib(self.search),
            mib(self.rest),
        )
    }
}

/// Bytes of disk blocks held by `path` and everything under it (holes do not count).
fn allocated(path: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(0);
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            total += allocated(&entry?.path())?;
        }
    }
    Ok(total)
}

#[derive(Deserialize)]
struct Created {
    secret: String,
}

#[derive(Deserialize)]
struct RetentionRun {
    removed: u64,
    below_seq: u64,
}

#[derive(Deserialize)]
struct LogKey {
    verifier_key: String,
}

#[derive(Deserialize)]
struct InclusionProof {
    leaf_hash: String,
    proof: Vec<String>,
    checkpoint: String,
}

fn b64(text: &str) -> anyhow::Result<merkle::Hash> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    merkle::Hash::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("not a hash"))
}

/// Batched ingest (`connections` x batches of `batch`) until `max_time` or [`END_PHASES`].
async fn ingest(
    options: &Options,
    publisher: &str,
    stream: &str,
    max_time: Duration,
) -> anyhow::Result<PhaseResult> {
    let workers = http::ingest_workers(
        options.addr,
        publisher,
        stream,
        options.connections,
        options.batch,
    )
    .await?;
    let name = format!("ingest, batches of {}", options.batch);
    let bounds = Bounds {
        max_requests: u64::MAX,
        max_time,
    };
    load::run_phase(
        "veritrail",
        stream,
        &name,
        workers,
        bounds,
        options.server_pid,
    )
    .await
}

/// First-page searches, one connection, until `max_time` or [`END_PHASES`].
async fn search(
    options: &Options,
    viewer: &str,
    max_time: Duration,
) -> anyhow::Result<PhaseResult> {
    let workers = vec![SearchWorker {
        conn: Conn::open(options.addr).await?,
        key: viewer.to_owned(),
        kind: QueryKind::Filtered,
        path: String::new(),
    }];
    let bounds = Bounds {
        max_requests: u64::MAX,
        max_time,
    };
    let name = QueryKind::Filtered.name();
    load::run_phase(
        "veritrail",
        "search",
        name,
        workers,
        bounds,
        options.server_pid,
    )
    .await
}

/// A retention run that keeps `--keep-percent` of the records from `kept_from` on (those
/// an earlier run kept): the run, the log's size before it, and the compaction passes
/// counted before it.
async fn retention_run(
    options: &Options,
    owner: &str,
    viewer: &str,
    kept_from: u64,
) -> anyhow::Result<(RetentionRun, u64, f64)> {
    let mut conn = Conn::open(options.addr).await?;
    let note = conn
        .ok(Method::GET, "/api/v1/log/checkpoint", Some(viewer), None)
        .await?;
    let size = checkpoint_size(&note)?;
    let keep = (size - kept_from) * options.keep_percent / 100;
    conn.ok(
        Method::PUT,
        "/api/v1/retention",
        Some(owner),
        Some(Bytes::from(format!("{{\"max_events\":{keep}}}"))),
    )
    .await
    .context("setting the policy")?;
    let passes = ServerMetrics::read(options.addr)
        .await?
        .get("veritrail_compaction_passes_total");
    let started = Instant::now();
    let body = conn
        .ok(Method::POST, "/api/v1/retention/run", Some(owner), None)
        .await
        .context("running retention")?;
    let run: RetentionRun = serde_json::from_slice(&body)?;
    anyhow::ensure!(run.removed > 0, "the retention run removed nothing");
    println!(
        "retention run: {} of {size} records removed (below seq {}), answered in {:.0} ms",
        run.removed,
        run.below_seq,
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok((run, size, passes))
}

/// Runs `work` until the compaction after a retention run has ended (a pass more than
/// `passes`, none running); `work`'s result and the time since `started`.
async fn until_compacted(
    addr: std::net::SocketAddr,
    passes: f64,
    started: Instant,
    max: Duration,
    work: impl std::future::Future<Output = anyhow::Result<PhaseResult>>,
) -> anyhow::Result<(PhaseResult, Duration)> {
    END_PHASES.store(false, Ordering::SeqCst);
    let watch = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let metrics = ServerMetrics::read(addr).await?;
            if metrics.get("veritrail_compaction_running") == 0.0
                && metrics.get("veritrail_compaction_passes_total") > passes
            {
                END_PHASES.store(true, Ordering::SeqCst);
                return anyhow::Ok(started.elapsed());
            }
            anyhow::ensure!(
                started.elapsed() < max,
                "compaction still running after {max:?}"
            );
        }
    };
    let (result, took) = tokio::join!(work, watch);
    END_PHASES.store(false, Ordering::SeqCst);
    Ok((result?, took?))
}

pub(crate) fn main(options: &Options) -> anyhow::Result<()> {
    crate::runtime()?.block_on(run(options))
}

async fn run(options: &Options) -> anyhow::Result<()> {
    let addr = options.addr;
    let max = Duration::from_secs(options.max_secs);
    let keys = http::set_up(addr, &options.admin_key, &options.tenant, true).await?;
    // A fresh connection for each step: the server drops idle ones.
    let owner = Conn::open(addr)
        .await?
        .ok(
            Method::POST,
            &format!("/api/v1/tenants/{}/keys", options.tenant),
            Some(&options.admin_key),
            Some(Bytes::from_static(b"{\"role\":\"owner\"}")),
        )
        .await
        .context("creating an owner key")?;
    let owner = serde_json::from_slice::<Created>(&owner)?.secret;

    // The log.
    let fill_batch = 1000;
    let workers = http::ingest_workers(addr, &keys.publisher, "fill", 4, fill_batch).await?;
    let fill = load::run_phase(
        "veritrail",
        "fill",
        "fill, batches of 1000",
        workers,
        Bounds {
            max_requests: options.events / fill_batch,
            max_time: max,
        },
        options.server_pid,
    )
    .await?;
    anyhow::ensure!(fill.errors == 0, "the fill failed: {:?}", fill.first_error);
    fill.print();
    let lag = http::wait_searchable(addr, max).await?;
    println!(
        "searchable {:.1} s after the fill's last ack",
        lag.as_secs_f64()
    );

    // Normal: batched ingest alone, then searches alone.
    let window = Duration::from_secs(options.window_secs);
    println!("-- normal, {} s each:", options.window_secs);
    let normal_ingest = ingest(options, &keys.publisher, "normal", window).await?;
    normal_ingest.print();
    let lag = http::wait_searchable(addr, max).await?;
    println!("searchable {:.1} s after the last ack", lag.as_secs_f64());
    let normal_search = search(options, &keys.viewer, window).await?;
    normal_search.print();

    // Run 1, with searches going on: the disk it gives back and the time it takes.
    let before = Disk::of(&options.data_dir)?;
    let started = Instant::now();
    let (run, size, passes) = retention_run(options, &owner, &keys.viewer, 0).await?;
    println!("disk before it ({size} events): {}", before.describe());
    let search_during = search(options, &keys.viewer, max);
    let (search_during, took) = until_compacted(addr, passes, started, max, search_during).await?;
    println!(
        "-- searches during run 1 and its compaction ({:.1} s):",
        took.as_secs_f64()
    );
    search_during.print();
    let after = Disk::of(&options.data_dir)?;
    println!("disk after it: {}", after.describe());

    // Run 2 (half of what is left), with batched ingest at full speed.
    let started = Instant::now();
    let (run, _, passes) = retention_run(options, &owner, &keys.viewer, run.below_seq).await?;
    let ingest_during = ingest(options, &keys.publisher, "during", max);
    let (ingest_during, took2) = until_compacted(addr, passes, started, max, ingest_during).await?;
    println!(
        "-- ingest during run 2 and its compaction ({:.1} s):",
        took2.as_secs_f64()
    );
    ingest_during.print();
    let lag = http::wait_searchable(addr, max).await?;
    println!("searchable {:.1} s after the last ack", lag.as_secs_f64());
    println!(
        "disk after run 2: {}",
        Disk::of(&options.data_dir)?.describe()
    );

    // Proofs of kept records, checked as a client would.
    let mut conn = Conn::open(addr).await?;
    let body = conn
        .ok(Method::GET, "/api/v1/log/key", Some(&keys.viewer), None)
        .await?;
    let verifier = NoteVerifier::parse(&serde_json::from_slice::<LogKey>(&body)?.verifier_key)?;
    let now = checkpoint_size(
        &conn
            .ok(
                Method::GET,
                "/api/v1/log/checkpoint",
                Some(&keys.viewer),
                None,
            )
            .await?,
    )?;
    let started = Instant::now();
    let kept = now - run.below_seq;
    for i in 0..options.proofs {
        let seq = run.below_seq + i * kept / options.proofs.max(1);
        let body = conn
            .ok(
                Method::GET,
                &format!("/api/v1/log/proof/inclusion?seq={seq}"),
                Some(&keys.viewer),
                None,
            )
            .await
            .with_context(|| format!("the proof of seq {seq}"))?;
        let proof: InclusionProof = serde_json::from_slice(&body)?;
        let opened = note::open(&proof.checkpoint, std::slice::from_ref(&verifier))?;
        let checkpoint = Checkpoint::parse(&opened.text)?;
        let path = proof
            .proof
            .iter()
            .map(|hash| b64(hash))
            .collect::<anyhow::Result<Vec<_>>>()?;
        merkle::verify_inclusion(
            &b64(&proof.leaf_hash)?,
            seq,
            checkpoint.size(),
            &path,
            checkpoint.root(),
        )
        .with_context(|| format!("the proof of seq {seq} does not verify"))?;
    }
    println!(
        "{} inclusion proofs of kept records verified against the signed checkpoint in {:.1} s",
        options.proofs,
        started.elapsed().as_secs_f64()
    );

    let share = |after: f64, before: f64| after / before.max(1e-9) * 100.0;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    println!("-- bars:");
    println!(
        "disk of the data directory, run 1: {:.0} -> {:.0} MiB, -{:.1}% (bar: at least -45%)",
        mib(before.total()),
        mib(after.total()),
        100.0 - share(after.total() as f64, before.total() as f64)
    );
    println!(
        "run 1 and its compaction: {:.1} s; run 2 with ingest: {:.1} s (bar: at most 300 s)",
        took.as_secs_f64(),
        took2.as_secs_f64()
    );
    println!(
        "batched ingest during run 2: {:.0} events/s, {:.0}% of the {:.0} events/s before (bar: at least 80%)",
        ingest_during.events_per_s(),
        share(ingest_during.events_per_s(), normal_ingest.events_per_s()),
        normal_ingest.events_per_s()
    );
    println!(
        "search p99 during run 1: {:.2} ms (before: {:.2} ms; bar: under 10 ms)",
        search_during.p99_ms, normal_search.p99_ms
    );
    Ok(())
}

/// The size of a signed checkpoint note (its second line).
fn checkpoint_size(note: &[u8]) -> anyhow::Result<u64> {
    let text = std::str::from_utf8(note)?;
    text.lines()
        .nth(1)
        .and_then(|line| line.parse().ok())
        .context("a checkpoint without a size")
}
