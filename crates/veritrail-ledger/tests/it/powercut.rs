//! Power cuts: the store runs on `simfs::SimFs`, a simulated disk that keeps only what was
//! synced (and, adversarially, a random part of the rest, torn pages included), so that a
//! missing or misplaced `fdatasync`, `fsync` or directory sync loses acknowledged events
//! here. The SIGKILL test (`crash.rs`) cannot see those: a killed process leaves the page
//! cache behind.
//!
//! Each round: open the store (which recovers from the last cut), check everything
//! acknowledged so far, run concurrent appenders until the power goes at a random change
//! (a write, sync, creation... anywhere in a commit, a marker sync or the indexer's
//! transaction), then take the disk as the cut left it. Some rounds also cut while the store
//! opens (recovery, or a first open). A disk lives for a few rounds (its log grows), then a
//! fresh one starts, so first opens are cut too. `VERITRAIL_POWERCUT_ROUNDS` (default 30) for more rounds,
//! `VERITRAIL_POWERCUT_SEED` to replay a seed's choices (the threads' interleaving is not
//! replayed).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::{Event, EventId, TenantId};
use veritrail_core::merkle::{self, Frontier, Hash};
use veritrail_core::note;
use veritrail_core::record::Record;
use veritrail_ledger::conformance::{test_event, test_signer};
use veritrail_ledger::simfs::{Loss, SimFs};
use veritrail_ledger::verify::{Report, VerifyOptions, verify_ledger_dir};
use veritrail_ledger::{
    AppendError, EmbeddedOptions, EmbeddedStore, Ledger, LedgerConfig, LedgerStore, Receipt,
    StoreError,
};

use crate::support::{Rng, rounds_and_seed, tenant};

/// Where the store lives on the simulated disk: two levels of directories the first open
/// creates.
const LEDGER_DIR: &str = "/data/ledger";
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const APPENDERS: u64 = 4;
/// Batches per appender in a round the cut does not end first.
const MAX_BATCHES: u64 = 25;
/// Rounds on one disk before a fresh one.
const ROUNDS_PER_DISK: u64 = 5;

/// Small segments and a sync marker every few commits, so that cuts land in segment
/// rollovers and marker syncs often.
fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        segment_max_bytes: 12 << 10,
        sync_every_bytes: 6 << 10,
        sync_every: Duration::from_millis(10),
        compact_bytes_per_second: 0,
        index_compact_after_forgotten: 10,
        index_cache_bytes: 64 << 10,
        // One tenant's files open at a time: cuts land after files closed unsynced.
        max_open_tenants: 1,
        // Every sync marker syncs the whole (simulated) file system at once.
        sync_file_system_above: 0,
    }
}

/// An acknowledged event: what was sent, and the receipt it got.
#[derive(Debug, Clone)]
struct Ack {
    tenant: TenantId,
    event: Event,
    receipt: Receipt,
}

#[derive(Debug, Default)]
struct Tally {
    rounds: u64,
    cuts_in_open: u64,
    cuts_idle: u64,
    adversarial: u64,
    /// Cut states on which the verifier warned (a torn tail, a segment cut at creation, an
    /// index it could not read).
    verifier_warnings: u64,
    /// Acknowledged events checked after a cut, summed over the checks.
    acks_checked: u64,
    retries: u64,
}

#[test]
fn acknowledged_events_survive_power_cuts() {
    let (rounds, seed) = rounds_and_seed("VERITRAIL_POWERCUT", 30);
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let mut disk = SimFs::new();
    let mut acked: Vec<Ack> = Vec::new();
    // Changes of the last open that went through: where a cut during recovery can land.
    let mut open_changes = 50;
    for round in 0..rounds {
        if round % ROUNDS_PER_DISK == 0 {
            disk = SimFs::new();
            acked.clear();
        }
        let context = format!("round {round} (VERITRAIL_POWERCUT_SEED={seed})");
        if round % ROUNDS_PER_DISK != 0 {
            check_verifier(&disk, &context, &mut tally);
        }
        // Now and then the power goes (again) while the store opens: a first open, or a
        // recovery.
        if rng.below(4) == 0 {
            disk.schedule_cut(rng.below(open_changes));
            match EmbeddedStore::open_with(Arc::new(disk.clone()), Path::new(LEDGER_DIR), options())
            {
                Ok(_) => {}
                Err(StoreError::Unavailable(_)) if disk.is_dead() => {}
                Err(err) => panic!("{context}: opening failed: {err}"),
            }
            disk = cut(&disk, &mut rng, &mut tally);
            tally.cuts_in_open += 1;
            check_verifier(&disk, &context, &mut tally);
        }

        let before_open = disk.changes();
        let store = Arc::new(
            EmbeddedStore::open_with(Arc::new(disk.clone()), Path::new(LEDGER_DIR), options())
                .unwrap_or_else(|err| panic!("{context}: reopening failed: {err}")),
        );
        open_changes = disk.changes() - before_open;
        check_store(&*store, &acked, &context);
        let ledger = Arc::new(
            Ledger::start(store, test_signer(), LedgerConfig::default())
                .unwrap_or_else(|err| panic!("{context}: the ledger cannot start: {err}")),
        );

        // Under load until the power goes at a random change (or, rarely, after the load).
        disk.schedule_cut(rng.below(400));
        let shared = Arc::new(Mutex::new(std::mem::take(&mut acked)));
        let appenders: Vec<_> = (0..APPENDERS)
            .map(|thread| {
                let (ledger, shared) = (Arc::clone(&ledger), Arc::clone(&shared));
                let thread_seed = rng.next();
                std::thread::spawn(move || {
                    append_until_cut(&ledger, &shared, round, thread, thread_seed)
                })
            })
            .collect();
        for appender in appenders {
            tally.retries += appender.join().unwrap();
        }
        acked = std::mem::take(&mut *shared.lock().unwrap());
        if !disk.is_dead() {
            tally.cuts_idle += 1;
        }
        let after = cut(&disk, &mut rng, &mut tally);
        drop(ledger);
        disk = after;
        tally.rounds += 1;
        tally.acks_checked += acked.len() as u64;

        if round % ROUNDS_PER_DISK == ROUNDS_PER_DISK - 1 || round + 1 == rounds {
            // The disk's last round: recover, check, close cleanly; then nothing is left to
            // replay or cut, and the verifier agrees.
            check_verifier(&disk, &context, &mut tally);
            let store =
                EmbeddedStore::open_with(Arc::new(disk.clone()), Path::new(LEDGER_DIR), options())
                    .unwrap_or_else(|err| panic!("{context}: reopening failed: {err}"));
            check_store(&store, &acked, &context);
            drop(store);
            let report = verify(&disk);
            assert!(
                report.is_ok() && report.warnings.is_empty(),
                "{context}: after a clean close: {report:?}"
            );
        }
    }
    eprintln!(
        "power-cut test: {tally:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Cuts the power (if the scheduled cut did not already) and returns the disk as it then
/// is: all unsynced data lost, or an adversarial part of it kept.
fn cut(disk: &SimFs, rng: &mut Rng, tally: &mut Tally) -> SimFs {
    if rng.below(3) == 0 {
        disk.power_cut(Loss::Unsynced)
    } else {
        tally.adversarial += 1;
        disk.power_cut(Loss::Adversarial(rng.next()))
    }
}

/// One appender: batches of 1 to 9 events to a rotating tenant, some with event ids and some
/// without, and now and then a retry of an event already acknowledged (which must come back
/// as a duplicate with its first receipt). Stops at the first failure: the power is gone.
/// Returns the number of retries.
fn append_until_cut(
    ledger: &Ledger,
    acked: &Mutex<Vec<Ack>>,
    round: u64,
    thread: u64,
    seed: u64,
) -> u64 {
    let mut rng = Rng(seed | 1);
    let mut retries = 0;
    let mut n = 0u64;
    for batch_no in 0..MAX_BATCHES {
        let tenant = tenant(TENANTS[((thread + batch_no) % 3) as usize]);
        let retry = if rng.below(8) == 0 {
            let acked = acked.lock().unwrap();
            let with_ids: Vec<&Ack> = acked
                .iter()
                .filter(|ack| ack.tenant == tenant && ack.event.id().is_some())
                .collect();
            let pick = rng.below(with_ids.len() as u64);
            at(&with_ids, pick).map(|ack| (*ack).clone())
        } else {
            None
        };
        let events = match &retry {
            Some(ack) => vec![ack.event.clone()],
            None => {
                let with_ids = rng.below(3) != 0;
                let batch = 1 + rng.below(9);
                let events = (0..batch)
                    .map(|i| test_event((round << 40) | (thread << 32) | (n + i), with_ids))
                    .collect();
                n += batch;
                events
            }
        };
        let Ok(receipts) = ledger.append_blocking(tenant.clone(), events.clone()) else {
            return retries;
        };
        if let Some(first) = &retry {
            retries += 1;
            let receipt = &receipts[0];
            assert!(
                receipt.duplicate && receipt.seq == first.receipt.seq,
                "a retried event id is found at its first seq: {receipt:?} vs {:?}",
                first.receipt
            );
            assert_eq!(receipt.leaf_hash, first.receipt.leaf_hash);
            continue;
        }
        let mut acked = acked.lock().unwrap();
        for (event, receipt) in events.into_iter().zip(receipts) {
            assert!(!receipt.duplicate);
            acked.push(Ack {
                tenant: tenant.clone(),
                event,
                receipt,
            });
        }
    }
    retries
}

/// The offline verifier on a copy of the disk: a cut leaves no fault, at most a torn tail.
fn check_verifier(disk: &SimFs, context: &str, tally: &mut Tally) {
    let report = verify(disk);
    assert!(
        report.is_ok(),
        "{context}: after the cut: {:?}",
        report.faults
    );
    tally.verifier_warnings += u64::from(!report.warnings.is_empty());
}

fn verify(disk: &SimFs) -> Report {
    let copy = tempfile::tempdir().unwrap();
    let ledger_dir = copy.path().join("ledger");
    if disk
        .materialize(Path::new(LEDGER_DIR), &ledger_dir)
        .is_err()
    {
        // The cut took the whole directory: there is nothing to verify, and the store
        // checks say whether that lost anything acknowledged.
        return Report::default();
    }
    if !ledger_dir.join("journal").is_dir() {
        return Report::default();
    }
    // Not `decode_records`: `check_store` decodes every record after each reopen.
    verify_ledger_dir(
        &ledger_dir,
        &test_signer().verifier(),
        &VerifyOptions::default(),
        &mut |_, _| {},
    )
    .unwrap()
}

/// Everything acknowledged is there, as acknowledged; every log is whole (seqs in order, no
/// record twice) and its latest checkpoint, and every receipt's, is signed and commits to
/// the stored records.
fn check_store(store: &dyn LedgerStore, acked: &[Ack], context: &str) {
    let verifier = test_signer().verifier();
    let mut logs: HashMap<TenantId, Log> = HashMap::new();
    for name in TENANTS {
        let tenant = tenant(name);
        let size = store.size(&tenant).unwrap();
        let records = store.read_records(&tenant, 0, usize::MAX).unwrap();
        assert_eq!(records.len() as u64, size, "{context}: {name}");
        // Roots after each record, to check checkpoints of any size against.
        let mut frontier = Frontier::new();
        let mut roots = vec![frontier.root()];
        let mut seen = HashSet::new();
        let mut decoded = Vec::with_capacity(records.len());
        for (seq, bytes) in (0..).zip(&records) {
            let record = Record::decode(bytes).unwrap();
            assert_eq!(
                (record.tenant(), record.seq()),
                (&tenant, seq),
                "{context}: records in seq order"
            );
            assert!(
                seen.insert(format!("{:?}", record.event())),
                "{context}: {name} holds event {:?} twice (seq {seq})",
                record.event()
            );
            let leaf_hash = merkle::leaf_hash(bytes);
            frontier.append(leaf_hash, |_, _| {});
            roots.push(frontier.root());
            decoded.push((record, leaf_hash));
        }
        let checkpoint = store.checkpoint(&tenant).unwrap();
        assert_eq!(checkpoint.is_some(), size > 0, "{context}: {name}");
        if let Some(checkpoint) = checkpoint {
            let checkpoint = open_checkpoint(&checkpoint, &verifier);
            assert_eq!(checkpoint.origin(), format!("test.veritrail.local/{name}"));
            assert_eq!(checkpoint.size(), size, "{context}: {name}'s checkpoint");
            assert_eq!(checkpoint.root(), &frontier.root(), "{context}: {name}");
        }
        logs.insert(
            tenant,
            Log {
                records: decoded,
                roots,
            },
        );
    }
    for state in store.load().unwrap() {
        let frontier = Frontier::from_parts(state.size, state.frontier).unwrap();
        assert_eq!(
            frontier.root(),
            *at(&logs[&state.tenant].roots, state.size).unwrap(),
            "{context}: the stored frontier of {}",
            state.tenant
        );
    }

    // A receipt's checkpoint is shared by its batch: open each once.
    let mut receipt_checkpoints: HashMap<&str, Checkpoint> = HashMap::new();
    let mut ids: HashMap<&TenantId, Vec<(&EventId, u64)>> = HashMap::new();
    for ack in acked {
        let (name, seq) = (ack.tenant.as_str(), ack.receipt.seq);
        let log = &logs[&ack.tenant];
        let (record, leaf_hash) = at(&log.records, seq)
            .unwrap_or_else(|| panic!("{context}: {name} lost acknowledged seq {seq}"));
        assert_eq!(
            leaf_hash, &ack.receipt.leaf_hash,
            "{context}: {name} seq {seq} holds other bytes than acknowledged"
        );
        assert_eq!(record.event(), &ack.event);
        let checkpoint = receipt_checkpoints
            .entry(&ack.receipt.checkpoint)
            .or_insert_with(|| open_checkpoint(&ack.receipt.checkpoint, &verifier));
        assert_eq!(
            at(&log.roots, checkpoint.size()),
            Some(checkpoint.root()),
            "{context}: {name}'s log no longer holds the tree of a receipt's checkpoint"
        );
        if let Some(id) = ack.event.id() {
            ids.entry(&ack.tenant).or_default().push((id, seq));
        }
    }
    for (tenant, ids) in ids {
        let asked: Vec<&EventId> = ids.iter().map(|(id, _)| *id).collect();
        let found = store.find_event_ids(tenant, &asked).unwrap();
        for ((id, seq), found) in ids.iter().zip(found) {
            assert_eq!(
                found,
                Some(*seq),
                "{context}: {tenant} lost the id {id} of seq {seq}"
            );
        }
    }
}

/// A tenant's log as stored: its records, decoded, with their leaf hashes, and the tree's
/// root after each record (`roots[0]` is the empty tree's).
struct Log {
    records: Vec<(Record, Hash)>,
    roots: Vec<Hash>,
}

fn at<T>(items: &[T], index: u64) -> Option<&T> {
    items.get(usize::try_from(index).ok()?)
}

fn open_checkpoint(note_text: &str, verifier: &note::NoteVerifier) -> Checkpoint {
    let opened = note::open(note_text, std::slice::from_ref(verifier)).unwrap();
    Checkpoint::parse(&opened.text).unwrap()
}

/// A full disk at every change of the store's work: the disk fills at the n-th change from
/// some point (n over every position of a few commits, a segment rollover, a marker sync and
/// the indexer's transaction), appends are refused with `StorageFull` (never another error,
/// never a wrong acknowledgement), what was acknowledged stays readable, and once space is
/// back the store resumes by itself: the refused batch goes in with its ids once, and after
/// a reopen everything acknowledged is there and the verifier finds no fault.
/// `VERITRAIL_DISKFULL_ROUNDS` (default 60) for more positions.
#[test]
fn a_full_disk_at_any_change_refuses_cleanly_and_the_store_resumes() {
    let (rounds, seed) = rounds_and_seed("VERITRAIL_DISKFULL", 60);
    let mut rng = Rng(seed);
    let mut refusals = 0;
    for round in 0..rounds {
        let context = format!("round {round} (VERITRAIL_DISKFULL_SEED={seed})");
        let disk = SimFs::new();
        let store = Arc::new(
            EmbeddedStore::open_with(Arc::new(disk.clone()), Path::new(LEDGER_DIR), options())
                .unwrap_or_else(|err| panic!("{context}: open: {err}")),
        );
        let ledger = Ledger::start(store.clone(), test_signer(), LedgerConfig::default())
            .unwrap_or_else(|err| panic!("{context}: start: {err}"));
        let mut acked: Vec<Ack> = Vec::new();
        let mut n = 0u64;
        let mut batch = |rng: &mut Rng| {
            let size = 1 + rng.below(9);
            let events: Vec<Event> = (0..size)
                .map(|i| test_event((round << 40) | (n + i), true))
                .collect();
            n += size;
            events
        };
        let tenant = tenant(TENANTS[(round % 3) as usize]);
        for _ in 0..3 {
            let events = batch(&mut rng);
            let receipts = ledger
                .append_blocking(tenant.clone(), events.clone())
                .unwrap_or_else(|err| panic!("{context}: before the disk fills: {err}"));
            acked.extend(acks(&tenant, events, receipts));
        }

        // Every position over the rounds, each a few commits' worth of changes.
        disk.schedule_full(round % 40 + rng.below(3) * 40);
        let mut refused = None;
        for _ in 0..40 {
            let events = batch(&mut rng);
            match ledger.append_blocking(tenant.clone(), events.clone()) {
                Ok(receipts) => acked.extend(acks(&tenant, events, receipts)),
                Err(err) => {
                    refused = Some((err, events));
                    break;
                }
            }
        }
        let Some((err, events)) = refused else {
            panic!("{context}: the disk never refused an append");
        };
        refusals += 1;
        assert!(
            matches!(err, AppendError::StorageFull(_)),
            "{context}: a full disk is `StorageFull`, not {err:?}"
        );
        // Refused again while full, unless the refused batch was stored after all (a
        // refusal says "unknown"): then the retry finds every id and writes nothing.
        match ledger.append_blocking(tenant.clone(), events.clone()) {
            Err(AppendError::StorageFull(_) | AppendError::Unavailable(_)) => {}
            Ok(receipts) => assert!(
                receipts.iter().all(|receipt| receipt.duplicate),
                "{context}: a new write went through on a full disk"
            ),
            Err(other) => panic!("{context}: {other:?}"),
        }
        // What was acknowledged stays readable.
        for ack in &acked {
            let bytes = store
                .read_records(&ack.tenant, ack.receipt.seq, 1)
                .unwrap_or_else(|err| panic!("{context}: a read on a full disk: {err}"));
            assert_eq!(
                merkle::leaf_hash(&bytes[0]),
                ack.receipt.leaf_hash,
                "{context}: seq {}",
                ack.receipt.seq
            );
        }

        disk.space_back();
        let receipts = ledger
            .append_blocking(tenant.clone(), events.clone())
            .unwrap_or_else(|err| panic!("{context}: once space is back: {err}"));
        acked.extend(acks(&tenant, events, receipts).filter(|ack| !ack.receipt.duplicate));
        drop(ledger);
        drop(store);
        let store =
            EmbeddedStore::open_with(Arc::new(disk.clone()), Path::new(LEDGER_DIR), options())
                .unwrap_or_else(|err| panic!("{context}: reopening: {err}"));
        check_store(&store, &acked, &context);
        drop(store);
        let report = verify(&disk);
        assert!(report.is_ok(), "{context}: {:?}", report.faults);
    }
    eprintln!("disk-full test: {refusals} refusals over {rounds} positions");
}

/// The acknowledgements of `events` appended to `tenant` with `receipts`.
fn acks(
    tenant: &TenantId,
    events: Vec<Event>,
    receipts: Vec<Receipt>,
) -> impl Iterator<Item = Ack> + '_ {
    events
        .into_iter()
        .zip(receipts)
        .map(move |(event, receipt)| Ack {
            tenant: tenant.clone(),
            event,
            receipt,
        })
}
