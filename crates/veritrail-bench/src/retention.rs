//! `retention`: what removing most of a large log costs and gives back, on the ledger
//! alone. Fills one tenant with `--events` events (about 500 bytes each, with ids), then:
//! a retention cut of the oldest `--remove-percent`, an erasure of `--erase` scattered kept
//! records, and the compaction that follows (paced at `--compact-mib-per-second`), while
//! an appender keeps adding batches of 100.
//! Prints the disk per component before and after, the time of each step, the ingest rate
//! and worst append during compaction, the restart time, and a full offline verification.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use veritrail_core::event::{Event, EventInput, TenantId};
use veritrail_core::record::CatalogFields;
use veritrail_ledger::verify::{self, VerifyOptions};
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, Ledger, LedgerConfig, RemovalScope};

use crate::{run_appenders, sample_event, signer};

/// Bytes of each part of the ledger directory.
struct Disk {
    journal: u64,
    offsets: u64,
    nodes: u64,
    index: u64,
}

impl Disk {
    fn of(ledger_dir: &Path) -> anyhow::Result<Disk> {
        let size_of = |dir: &Path| -> anyhow::Result<u64> {
            let mut total = 0;
            for entry in std::fs::read_dir(dir)? {
                total += entry?.metadata()?.len();
            }
            Ok(total)
        };
        let tenant = ledger_dir.join("tenants/tenant-0");
        Ok(Disk {
            journal: size_of(&ledger_dir.join("journal"))?,
            offsets: std::fs::metadata(tenant.join("offsets"))?.len(),
            nodes: std::fs::metadata(tenant.join("nodes"))?.len(),
            index: std::fs::metadata(ledger_dir.join("index.redb"))?.len(),
        })
    }

    fn total(&self) -> u64 {
        self.journal + self.offsets + self.nodes + self.index
    }

    fn line(&self, what: &str, events: u64) -> String {
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        format!(
            "{what}: {:.0} MiB in all ({:.0} B per event of the log): journal {:.0} MiB, offsets {:.1} MiB, nodes {:.1} MiB, id index {:.0} MiB",
            mib(self.total()),
            self.total() as f64 / events as f64,
            mib(self.journal),
            mib(self.offsets),
            mib(self.nodes),
            mib(self.index),
        )
    }
}

fn service_event(event_type: &str) -> anyhow::Result<(Event, CatalogFields)> {
    let input: EventInput = serde_json::from_value(serde_json::json!({
        "type": event_type,
        "actor": {"id": "veritrail", "type": "service"},
        "details": {"reason": "benchmark"},
    }))?;
    let event = Event::parse(input).map_err(|err| anyhow::anyhow!("{err:?}"))?;
    Ok((event, CatalogFields::default()))
}

pub(crate) fn run(
    dir: &Path,
    events: u64,
    remove_percent: u64,
    erase: u64,
    compact_mib_per_second: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(remove_percent < 100, "--remove-percent must be below 100");
    let filled = run_appenders(dir, 4, events, 1000, 1, true)?;
    let ledger_dir = dir.join("ledger");
    let before = Disk::of(&ledger_dir)?;
    println!(
        "retention: {events} events of {} bytes filled at {:.0} events/s",
        filled.record_bytes,
        events as f64 / filled.elapsed.as_secs_f64()
    );
    println!("{}", before.line("before", events));

    let started = Instant::now();
    let store = Arc::new(EmbeddedStore::open(
        &ledger_dir,
        EmbeddedOptions::default(),
    )?);
    let ledger = Arc::new(Ledger::start(
        store.clone(),
        signer()?,
        LedgerConfig::default(),
    )?);
    println!(
        "open after a clean stop: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let tenant = TenantId::parse("tenant-0").map_err(|err| anyhow::anyhow!("{err}"))?;
    let runtime = crate::runtime()?;
    let below = events * remove_percent / 100;
    let started = Instant::now();
    runtime
        .block_on(ledger.append_removal(
            tenant.clone(),
            service_event("veritrail.retention.deleted")?,
            RemovalScope::Below {
                below,
                except: Vec::new(),
            },
        ))
        .context("retention cut")?;
    println!(
        "retention cut of the oldest {below} records: committed in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let step = (events - below) / erase.max(1);
    let seqs: Vec<u64> = (0..erase).map(|i| below + i * step.max(1)).collect();
    let started = Instant::now();
    runtime
        .block_on(ledger.append_removal(
            tenant.clone(),
            service_event("veritrail.event.erased")?,
            RemovalScope::Seqs(seqs),
        ))
        .context("erasure")?;
    println!(
        "erasure of {erase} scattered records: committed in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    // Compaction, with an appender adding batches of 100 meanwhile; the same appender
    // alone first, for comparison.
    let spawn_appender = |stop: Arc<AtomicBool>, first: u64| {
        let (ledger, tenant) = (Arc::clone(&ledger), tenant.clone());
        std::thread::spawn(move || -> anyhow::Result<(u64, Duration, Duration)> {
            let started = Instant::now();
            let (mut n, mut worst) = (0u64, Duration::ZERO);
            while !stop.load(Ordering::SeqCst) {
                let batch = (0..100)
                    .map(|i| sample_event(9, first + n + i, true))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let sent = Instant::now();
                ledger.append_blocking(tenant.clone(), batch)?;
                worst = worst.max(sent.elapsed());
                n += 100;
            }
            Ok((n, started.elapsed(), worst))
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let alone = spawn_appender(Arc::clone(&stop), 0);
    std::thread::sleep(Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    let (alone_n, alone_time, alone_worst) = alone
        .join()
        .map_err(|_| anyhow::anyhow!("the appender panicked"))??;
    println!(
        "the appender alone (it builds its events as it goes): {:.0} events/s, worst append {:.0} ms",
        alone_n as f64 / alone_time.as_secs_f64(),
        alone_worst.as_secs_f64() * 1e3
    );
    let stop = Arc::new(AtomicBool::new(false));
    let appender = spawn_appender(Arc::clone(&stop), alone_n);
    let started = Instant::now();
    let stats = ledger.compact()?;
    let compact_time = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (appended, appending, worst) = appender
        .join()
        .map_err(|_| anyhow::anyhow!("the appender panicked"))??;
    println!(
        "compaction (paced at {compact_mib_per_second} MiB/s): {} segments rewritten, {} record bodies taken out, {:.0} -> {:.0} MiB in {:.1} s ({:.0} MiB/s read); meanwhile {appended} events appended in batches of 100 at {:.0} events/s, worst append {:.0} ms",
        stats.rewritten,
        stats.records,
        stats.bytes_before as f64 / f64::from(1 << 20),
        stats.bytes_after as f64 / f64::from(1 << 20),
        compact_time.as_secs_f64(),
        stats.bytes_before as f64 / f64::from(1 << 20) / compact_time.as_secs_f64(),
        appended as f64 / appending.as_secs_f64(),
        worst.as_secs_f64() * 1e3,
    );
    ledger.shutdown();
    drop(ledger);
    store.sync()?;
    drop(store);
    let size = events + 2 + alone_n + appended;
    println!("{}", Disk::of(&ledger_dir)?.line("after", size));

    let started = Instant::now();
    let store = EmbeddedStore::open(&ledger_dir, EmbeddedOptions::default())?;
    println!(
        "open after compaction (compacting the id index once enough ids were forgotten): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(store);
    println!("{}", Disk::of(&ledger_dir)?.line("after reopening", size));
    let started = Instant::now();
    let report = verify::verify_ledger_dir(
        &ledger_dir,
        &signer()?.verifier(),
        &VerifyOptions::default(),
        &mut |_, _| {},
    )?;
    anyhow::ensure!(
        report.is_ok(),
        "verification failed: {:?}",
        report.faults.first()
    );
    let removed: u64 = report.tenants.iter().map(|t| t.n_removed).sum();
    println!(
        "verify after compaction: {} records ({removed} removed) verified in {:.1} s",
        report.n_records,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
