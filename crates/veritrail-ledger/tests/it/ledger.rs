//! The sequencer: receipts, idempotency, group commit, faults and shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::{EventId, TenantId};
use veritrail_core::merkle::{self, Hash, NodeId};
use veritrail_core::note;
use veritrail_core::record::Record;
use veritrail_ledger::conformance::{test_event, test_signer};
use veritrail_ledger::store::{CommitBatch, TenantState};
use veritrail_ledger::{
    AppendError, InjectedFault, Ledger, LedgerConfig, LedgerStore, MemoryStore, Receipt, StoreError,
};

use crate::support::{open_embedded, start, tenant};

fn events(from: u64, n: u64, with_ids: bool) -> Vec<veritrail_core::event::Event> {
    (from..from + n).map(|i| test_event(i, with_ids)).collect()
}

/// Checks a receipt the way a client would: the checkpoint is signed by the log key, and
/// the record stored at `seq` hashes to the receipt's leaf, which the checkpoint includes.
fn check_receipt(ledger: &Ledger, tenant: &TenantId, receipt: &Receipt) {
    let opened = note::open(&receipt.checkpoint, &[test_signer().verifier()]).unwrap();
    let checkpoint = Checkpoint::parse(&opened.text).unwrap();
    assert_eq!(
        checkpoint.origin(),
        format!("test.veritrail.local/{tenant}")
    );
    assert_eq!(checkpoint.origin(), ledger.origin(tenant));
    assert!(receipt.seq < checkpoint.size());
    let record = ledger
        .store()
        .read_records(tenant, receipt.seq, 1)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(merkle::leaf_hash(&record), receipt.leaf_hash);
    assert_eq!(Record::decode(&record).unwrap().seq(), receipt.seq);
    let proof = ledger
        .inclusion_proof(tenant, receipt.seq, checkpoint.size())
        .unwrap();
    merkle::verify_inclusion(
        &receipt.leaf_hash,
        receipt.seq,
        checkpoint.size(),
        &proof,
        checkpoint.root(),
    )
    .unwrap();
}

#[test]
fn receipts_name_seq_and_leaf_and_are_covered_by_a_signed_checkpoint() {
    let ledger = start(Arc::new(MemoryStore::new()));
    let acme = tenant("acme");
    let first = ledger
        .append_blocking(acme.clone(), events(0, 5, false))
        .unwrap();
    let second = ledger
        .append_blocking(acme.clone(), events(5, 3, false))
        .unwrap();
    let seqs: Vec<u64> = first.iter().chain(&second).map(|r| r.seq).collect();
    assert_eq!(seqs, (0..8).collect::<Vec<_>>());
    for receipt in first.iter().chain(&second) {
        assert!(!receipt.duplicate);
        check_receipt(&ledger, &acme, receipt);
    }
    let other = ledger
        .append_blocking(tenant("globex"), events(0, 2, false))
        .unwrap();
    assert_eq!(other[0].seq, 0, "each tenant has its own log");
    assert_eq!(ledger.size(&acme).unwrap(), 8);
}

#[test]
fn repeated_event_ids_return_the_original_receipt_and_store_nothing() {
    let store = Arc::new(MemoryStore::new());
    let ledger = start(store.clone());
    let acme = tenant("acme");
    let original = ledger
        .append_blocking(acme.clone(), events(0, 4, true))
        .unwrap();
    let repeat = ledger
        .append_blocking(acme.clone(), events(2, 4, true))
        .unwrap();
    assert_eq!(
        ledger.size(&acme).unwrap(),
        6,
        "only evt-4 and evt-5 are new"
    );
    for (repeat, original) in repeat[..2].iter().zip(&original[2..]) {
        assert!(repeat.duplicate);
        assert_eq!(
            (repeat.seq, repeat.leaf_hash),
            (original.seq, original.leaf_hash)
        );
    }
    assert!(!repeat[2].duplicate && !repeat[3].duplicate);
    assert_eq!((repeat[2].seq, repeat[3].seq), (4, 5));

    // A repeat inside one request, and the same id in another tenant.
    let mut twice = events(100, 1, true);
    twice.extend(events(100, 1, true));
    let receipts = ledger.append_blocking(acme.clone(), twice).unwrap();
    assert_eq!((receipts[0].seq, receipts[1].seq), (6, 6));
    assert!(!receipts[0].duplicate && receipts[1].duplicate);
    assert_eq!(ledger.size(&acme).unwrap(), 7);
    let globex = ledger
        .append_blocking(tenant("globex"), events(0, 1, true))
        .unwrap();
    assert!(!globex[0].duplicate, "ids are scoped to a tenant");
}

/// A store whose commits wait at a gate, so a test can line requests up behind one.
#[derive(Debug)]
struct GatedStore {
    inner: MemoryStore,
    open: Mutex<bool>,
    opened: Condvar,
    /// A commit is waiting at the gate.
    entered: AtomicBool,
}

impl GatedStore {
    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl LedgerStore for GatedStore {
    fn load(&self) -> Result<Vec<TenantState>, StoreError> {
        self.inner.load()
    }
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let mut open = self.open.lock().unwrap();
        self.entered.store(true, Ordering::SeqCst);
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        self.inner.commit(batch)
    }
    fn find_event_ids(
        &self,
        t: &TenantId,
        ids: &[&EventId],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        self.inner.find_event_ids(t, ids)
    }
    fn read_records(
        &self,
        t: &TenantId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.read_records(t, from, limit)
    }
    fn read_nodes(&self, t: &TenantId, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.inner.read_nodes(t, ids)
    }
    fn size(&self, t: &TenantId) -> Result<u64, StoreError> {
        self.inner.size(t)
    }
    fn checkpoint(&self, t: &TenantId) -> Result<Option<Arc<str>>, StoreError> {
        self.inner.checkpoint(t)
    }
}

#[test]
fn requests_waiting_during_a_commit_share_the_next_one_across_tenants() {
    let store = Arc::new(GatedStore {
        inner: MemoryStore::new(),
        open: Mutex::new(false),
        opened: Condvar::new(),
        entered: AtomicBool::new(false),
    });
    let ledger = Arc::new(start(store.clone()));
    let n_appenders = 40u64;
    let spawn = |i: u64| {
        let ledger = Arc::clone(&ledger);
        std::thread::spawn(move || {
            let tenant = tenant(["acme", "globex", "initech"][(i % 3) as usize]);
            ledger.append_blocking(tenant, events(i, 1, true)).unwrap()
        })
    };
    // The first request goes into a commit that waits at the gate...
    let mut handles = vec![spawn(0)];
    while !store.entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // ...and all the others queue up behind it.
    handles.extend((1..n_appenders).map(spawn));
    while ledger.stats().queued.load(Ordering::Relaxed) < n_appenders - 1 {
        std::thread::yield_now();
    }
    store.release();
    for handle in handles {
        let receipts = handle.join().unwrap();
        assert_eq!(receipts.len(), 1);
    }
    let stats = ledger.stats();
    assert_eq!(stats.records.load(Ordering::Relaxed), n_appenders);
    assert_eq!(
        stats.commits.load(Ordering::Relaxed),
        2,
        "the first request's commit, then one commit for all 39 that waited"
    );
    let sizes: u64 = ["acme", "globex", "initech"]
        .iter()
        .map(|t| ledger.size(&tenant(t)).unwrap())
        .sum();
    assert_eq!(sizes, n_appenders);
}

#[test]
fn a_failed_commit_that_stored_nothing_is_an_error_and_the_log_goes_on() {
    let store = Arc::new(MemoryStore::new());
    let ledger = start(store.clone());
    let acme = tenant("acme");
    ledger
        .append_blocking(acme.clone(), events(0, 3, true))
        .unwrap();
    store.inject(InjectedFault::FailNotPersist);
    let err = ledger
        .append_blocking(acme.clone(), events(3, 2, true))
        .unwrap_err();
    assert!(matches!(err, AppendError::Unavailable(_)), "{err:?}");
    assert_eq!(
        ledger.size(&acme).unwrap(),
        3,
        "nothing of the failed batch is stored"
    );
    let retry = ledger
        .append_blocking(acme.clone(), events(3, 2, true))
        .unwrap();
    assert_eq!((retry[0].seq, retry[1].seq), (3, 4));
    assert!(!retry[0].duplicate);
    for receipt in &retry {
        check_receipt(&ledger, &acme, receipt);
    }
}

#[test]
fn a_failed_commit_that_was_stored_is_found_again_by_a_retry_with_the_same_ids() {
    let store = Arc::new(MemoryStore::new());
    let ledger = start(store.clone());
    let acme = tenant("acme");
    ledger
        .append_blocking(acme.clone(), events(0, 3, true))
        .unwrap();
    store.inject(InjectedFault::FailButPersist);
    let err = ledger
        .append_blocking(acme.clone(), events(3, 2, true))
        .unwrap_err();
    assert!(matches!(err, AppendError::Unavailable(_)), "{err:?}");
    assert_eq!(
        ledger.size(&acme).unwrap(),
        5,
        "the batch did reach the store"
    );
    let retry = ledger
        .append_blocking(acme.clone(), events(3, 3, true))
        .unwrap();
    assert!(
        retry[0].duplicate && retry[1].duplicate,
        "the retry finds the stored events"
    );
    assert_eq!((retry[0].seq, retry[1].seq, retry[2].seq), (3, 4, 5));
    assert!(!retry[2].duplicate);
    assert_eq!(ledger.size(&acme).unwrap(), 6, "stored once, not twice");
    for receipt in &retry {
        check_receipt(&ledger, &acme, receipt);
    }
}

#[test]
fn shutdown_answers_every_queued_request() {
    let ledger = Arc::new(start(Arc::new(MemoryStore::new())));
    let handles: Vec<_> = (0..16u64)
        .map(|i| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                ledger.append_blocking(tenant("acme"), events(i * 10, 10, false))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ledger.shutdown();
    for result in results {
        assert_eq!(result.unwrap().len(), 10);
    }
    assert_eq!(ledger.size(&tenant("acme")).unwrap(), 160);
    let err = ledger
        .append_blocking(tenant("acme"), events(0, 1, false))
        .unwrap_err();
    assert!(matches!(err, AppendError::Closed));
}

#[test]
fn oversized_requests_are_refused_whole() {
    let ledger = Ledger::start(
        Arc::new(MemoryStore::new()),
        test_signer(),
        LedgerConfig {
            max_batch_events: 10,
            ..LedgerConfig::default()
        },
    )
    .unwrap();
    let err = ledger
        .append_blocking(tenant("acme"), events(0, 11, false))
        .unwrap_err();
    assert!(matches!(
        err,
        AppendError::TooManyEvents {
            n_events: 11,
            max: 10
        }
    ));
    assert_eq!(ledger.size(&tenant("acme")).unwrap(), 0);
}

#[test]
fn acknowledged_events_survive_a_restart_of_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    let receipts = {
        let ledger = start(open_embedded(dir.path()));
        let mut receipts = Vec::new();
        for round in 0..20 {
            receipts.extend(
                ledger
                    .append_blocking(acme.clone(), events(round * 7, 7, true))
                    .unwrap(),
            );
        }
        receipts
    };
    let ledger = start(open_embedded(dir.path()));
    assert_eq!(ledger.size(&acme).unwrap(), 140);
    let records = ledger.records(&acme, 135, 100).unwrap().records;
    let seqs: Vec<u64> = records.iter().map(Record::seq).collect();
    assert_eq!(seqs, vec![135, 136, 137, 138, 139]);
    assert_eq!(records[0].event().id().unwrap().as_str(), "evt-135");
    for receipt in &receipts {
        check_receipt(&ledger, &acme, receipt);
    }
    let repeat = ledger
        .append_blocking(acme.clone(), events(0, 1, true))
        .unwrap();
    assert!(repeat[0].duplicate, "ids are still known after a restart");
    let consistency = ledger.consistency_proof(&acme, 7, 140).unwrap();
    assert!(!consistency.is_empty());
    assert!(matches!(
        ledger.consistency_proof(&acme, 0, 140),
        Err(veritrail_ledger::ReadError::OutOfRange { .. })
    ));
}

/// The sequencer's queue is bounded: past `max_queued_events` an append is refused at
/// once (`Overloaded`), nothing of it stored, while every acknowledged one is in the log.
#[test]
fn a_full_queue_refuses_appends_at_once_and_keeps_every_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(
        Ledger::start(
            crate::support::open_embedded(dir.path()),
            test_signer(),
            LedgerConfig {
                max_queued_events: 4,
                ..LedgerConfig::default()
            },
        )
        .unwrap(),
    );
    let appenders: Vec<_> = (0..8)
        .map(|thread| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                let (mut acknowledged, mut refused) = (Vec::new(), 0);
                for i in 0..100 {
                    match ledger
                        .append_blocking(tenant("acme"), events(thread * 1000 + i, 2, false))
                    {
                        Ok(receipts) => acknowledged.extend(receipts),
                        Err(AppendError::Overloaded { queued }) => {
                            assert!(queued > 0 && queued <= 4, "{queued}");
                            refused += 1;
                        }
                        Err(err) => panic!("{err}"),
                    }
                }
                (acknowledged, refused)
            })
        })
        .collect();
    let (mut acknowledged, mut refused) = (Vec::new(), 0);
    for appender in appenders {
        let (receipts, n) = appender.join().unwrap();
        acknowledged.extend(receipts);
        refused += n;
    }
    assert!(
        refused > 0,
        "eight appenders of two events each overflow a queue of four"
    );
    assert_eq!(
        ledger.size(&tenant("acme")).unwrap(),
        acknowledged.len() as u64,
        "the log holds exactly the acknowledged events"
    );
    assert_eq!(
        ledger
            .stats()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        refused
    );
}

/// The store's open descriptors do not grow with its tenants: past `max_open_tenants`, the
/// least recently used tenants' files close, and reopen when read or written again; a
/// restart finds every log whole (the sync marker synced the files that had closed).
#[test]
fn open_files_stay_bounded_with_many_tenants_and_every_log_reads_back() {
    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
    }
    let dir = tempfile::tempdir().unwrap();
    let tenants: Vec<TenantId> = (0..300).map(|i| tenant(&format!("t{i:03}"))).collect();
    let options = veritrail_ledger::EmbeddedOptions {
        max_open_tenants: 8,
        ..crate::support::small_options()
    };
    let open = || {
        Arc::new(
            veritrail_ledger::EmbeddedStore::open(&dir.path().join("ledger"), options.clone())
                .unwrap(),
        )
    };
    let before = open_fds();
    {
        let ledger = start(open());
        for round in 0..3 {
            for tenant in &tenants {
                ledger
                    .append_blocking(tenant.clone(), events(round * 2, 2, true))
                    .unwrap();
            }
        }
        let held = open_fds().saturating_sub(before);
        // Two per open tenant, plus the journal, the id index and the sequencer's own.
        assert!(
            held <= 2 * 8 + 16,
            "{held} descriptors held for 300 tenants"
        );
        for tenant in &tenants {
            assert_eq!(ledger.records(tenant, 0, 10).unwrap().records.len(), 6);
        }
    }
    let ledger = start(open());
    for tenant in &tenants {
        assert_eq!(ledger.size(tenant).unwrap(), 6, "{tenant}");
        let records = ledger.records(tenant, 4, 10).unwrap().records;
        assert_eq!(records[1].event().id().unwrap().as_str(), "evt-5");
    }
    assert!(open_fds().saturating_sub(before) <= 2 * 8 + 16);
}
