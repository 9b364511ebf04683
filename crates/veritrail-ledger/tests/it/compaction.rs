//! Compaction: the bodies of removed records leave the journal (their leaf hashes stay),
//! the disk comes back, every kept record and every proof is as before, the ids of what
//! was taken out are forgotten, and the offline verifier tells the compacted records (each
//! named by a removal) from damage. Then the same with the store killed (`kill -9`) or the
//! power cut at every change a compaction makes, with the disk as that left it (everything
//! written, what was synced, or an adversarial part of the rest): nothing kept is lost,
//! nothing removed comes back, the log verifies.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use veritrail_core::event::EventId;
use veritrail_core::merkle::{self, NodeId};
use veritrail_ledger::conformance::BatchBuilder;
use veritrail_ledger::simfs::{Loss, SimFs};
use veritrail_ledger::store::{CommitBatch, Removed};
use veritrail_ledger::verify::{FaultKind, Report};
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, LedgerStore, Removal, RemovalScope};

use crate::support::tenant;

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        segment_max_bytes: 8 << 10,
        sync_every_bytes: 4 << 10,
        sync_every: Duration::from_millis(10),
        compact_bytes_per_second: 0,
        index_compact_after_forgotten: 10,
        index_cache_bytes: 64 << 10,
        // One tenant's files open at a time: every switch closes and reopens them.
        max_open_tenants: 1,
        // Each tenant's files synced one by one.
        sync_file_system_above: usize::MAX,
    }
}

/// acme: 120 records over many segments, then a retention cut below 60 keeping 30 (a hold)
/// and an erasure of 70, 71 and 90; globex: 30 records, nothing removed. Compaction starts
/// acme's log with a prefix entry for its records 0..30.
fn fill(store: &dyn LedgerStore, builder: &mut BatchBuilder) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    for round in 0..12 {
        let mut batch = CommitBatch::default();
        batch.tenants.push(builder.append(&acme, 10, true));
        if round % 4 == 0 {
            batch.tenants.push(builder.append(&globex, 10, true));
        }
        store.commit(&batch).unwrap();
        builder.accept(&batch);
    }
    let mut batch = CommitBatch::default();
    let mut append = builder.append(&acme, 1, false);
    append.removals.push(Removal {
        by_seq: 120,
        scope: RemovalScope::Below {
            below: 60,
            except: vec![30],
        },
    });
    batch.tenants.push(append);
    store.commit(&batch).unwrap();
    builder.accept(&batch);
    let mut batch = CommitBatch::default();
    let mut append = builder.append(&acme, 1, false);
    append.removals.push(Removal {
        by_seq: 121,
        scope: RemovalScope::Seqs(vec![70, 71, 90]),
    });
    batch.tenants.push(append);
    store.commit(&batch).unwrap();
    builder.accept(&batch);
}

/// After [`fill`] and a compaction: acme's records 122..322 alone in their segments, then a
/// cut below 300 (which covers the earlier removals): the next compaction moves acme's
/// prefix to 300 and deletes the segments left with nothing.
fn fill_more(store: &dyn LedgerStore, builder: &mut BatchBuilder) {
    let acme = tenant("acme");
    for _ in 0..20 {
        let mut batch = CommitBatch::default();
        batch.tenants.push(builder.append(&acme, 10, true));
        store.commit(&batch).unwrap();
        builder.accept(&batch);
    }
    let mut batch = CommitBatch::default();
    let mut append = builder.append(&acme, 1, false);
    append.removals.push(Removal {
        by_seq: 322,
        scope: RemovalScope::Below {
            below: 300,
            except: vec![],
        },
    });
    batch.tenants.push(append);
    store.commit(&batch).unwrap();
    builder.accept(&batch);
}

/// Records [`fill`] removes, and [`fill`] then [`fill_more`].
const REMOVED: u64 = 59 + 3;
const REMOVED_MORE: u64 = 300;

fn removed_of(store: &dyn LedgerStore) -> Removed {
    let mut removed = Removed::default();
    let acme = store
        .load()
        .unwrap()
        .into_iter()
        .find(|state| state.tenant == tenant("acme"))
        .expect("acme");
    for removal in &acme.removals {
        removed.add(removal);
    }
    removed
}

/// Every kept record reads back as committed, every leaf from the first kept record on
/// (kept or removed), the root and the proofs are those of the builder's tree, and kept
/// ids are found; removed seqs are not read.
fn check_kept(store: &dyn LedgerStore, builder: &BatchBuilder, n_removed: u64, context: &str) {
    let removed = removed_of(store);
    assert_eq!(removed.count(), n_removed, "{context}: removed");
    for name in ["acme", "globex"] {
        let tenant = tenant(name);
        let tree = builder.tree(&tenant).expect("tree");
        let size = store.size(&tenant).unwrap();
        assert_eq!(size, tree.size(), "{context}: {name} size");
        let removed = if name == "acme" {
            removed.clone()
        } else {
            Removed::default()
        };
        let mut seq = 0;
        while seq < size {
            if removed.by(seq).is_some() {
                seq = removed.next_kept(seq);
                continue;
            }
            let run = removed.next_removed(seq).min(size) - seq;
            let records = store
                .read_records(&tenant, seq, usize::try_from(run).unwrap())
                .unwrap_or_else(|err| panic!("{context}: {name} {seq}+{run}: {err}"));
            assert_eq!(records.len() as u64, run);
            for (i, bytes) in records.iter().enumerate() {
                let leaf = tree.node(NodeId::new(0, seq + i as u64)).expect("leaf");
                assert_eq!(&merkle::leaf_hash(bytes), leaf, "{context}: {name} {seq}");
            }
            seq += run;
        }
        // Below the first kept record, only the prefix's subtree hashes are kept.
        let first_kept = removed.next_kept(0);
        let leaves: Vec<NodeId> = (first_kept..size).map(|seq| NodeId::new(0, seq)).collect();
        let stored = store.read_nodes(&tenant, &leaves).unwrap();
        for (seq, hash) in (first_kept..).zip(&stored) {
            assert_eq!(
                Some(hash),
                tree.node(NodeId::new(0, seq)),
                "{context}: leaf {seq}"
            );
        }
        let reader = Reader(store, &tenant);
        assert_eq!(
            merkle::root_at(&reader, size).unwrap(),
            tree.root(),
            "{context}"
        );
        // A consistency proof from the first kept record's size, through the prefix.
        if first_kept > 0 {
            let old_root = merkle::root_at(tree, first_kept).unwrap();
            let proof = merkle::consistency_proof(&reader, first_kept, size).unwrap();
            merkle::verify_consistency(first_kept, size, &proof, &old_root, &tree.root())
                .unwrap_or_else(|err| panic!("{context}: consistency from {first_kept}: {err}"));
        }
        // A proof through the removed prefix and the erased records.
        for seq in [30, 60, 72, size - 1] {
            if seq >= size || removed.by(seq).is_some() {
                continue;
            }
            let proof = merkle::inclusion_proof(&reader, seq, size).unwrap();
            merkle::verify_inclusion(
                tree.node(NodeId::new(0, seq)).unwrap(),
                seq,
                size,
                &proof,
                &tree.root(),
            )
            .unwrap_or_else(|err| panic!("{context}: {name} proof of {seq}: {err}"));
        }
    }
}

struct Reader<'a>(&'a dyn LedgerStore, &'a veritrail_core::event::TenantId);

impl merkle::NodeReader for Reader<'_> {
    type Error = veritrail_ledger::StoreError;
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<merkle::Hash>, Self::Error> {
        self.0.read_nodes(self.1, ids)
    }
}

fn id(n: u64) -> EventId {
    EventId::parse(&format!("evt-{n}")).unwrap()
}

fn verify(ledger_dir: &Path) -> Report {
    crate::support::verify_decoding(ledger_dir)
}

/// The index's count of ids forgotten since its file was last compacted.
fn forgotten_ids(ledger_dir: &Path) -> u64 {
    let meta = redb::TableDefinition::<&str, u64>::new("meta");
    let db = redb::ReadOnlyDatabase::open(ledger_dir.join("index.redb")).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let table = txn.open_table(meta).unwrap();
    table.get("forgotten").unwrap().map_or(0, |n| n.value())
}

fn journal_bytes(ledger_dir: &Path) -> u64 {
    std::fs::read_dir(ledger_dir.join("journal"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn compaction_takes_removed_bodies_out_and_keeps_every_proof() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let mut builder = BatchBuilder::new();
    let before;
    {
        let store = EmbeddedStore::open(&ledger_dir, options()).unwrap();
        fill(&store, &mut builder);
        store.sync().unwrap();
        before = journal_bytes(&ledger_dir);
        // Ids of the records about to go are known until compaction.
        assert!(store.find_event_ids(&tenant("acme"), &[&id(20)]).unwrap()[0].is_some());
        let stats = store.compact().unwrap();
        assert!(stats.rewritten >= 1 && stats.records == 62, "{stats:?}");
        assert!(stats.bytes_after < stats.bytes_before, "{stats:?}");
        check_kept(&store, &builder, REMOVED, "after compaction");
        // Nothing more to do.
        assert_eq!(store.compact().unwrap().records, 0);
        let found = store
            .find_event_ids(&tenant("acme"), &[&id(20), &id(100)])
            .unwrap();
        assert_eq!(found[0], None, "a compacted record's id is forgotten");
        assert_eq!(found[1], Some(80), "a kept record's id is still found");
    }
    let after = journal_bytes(&ledger_dir);
    // These test records are small (about 130 bytes, a compacted entry 54): each of the 62
    // saves more than 60 bytes.
    assert!(
        after + 62 * 60 <= before,
        "the disk comes back: {before} -> {after}"
    );
    // The erased records' data is gone from every file of the journal (acme's seqs 70, 71
    // and 90 are events 90, 91 and 120); a kept neighbour's is there.
    let journal: Vec<u8> = std::fs::read_dir(ledger_dir.join("journal"))
        .unwrap()
        .flat_map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    let holds = |needle: &[u8]| journal.windows(needle.len()).any(|w| w == needle);
    for erased in [b"evt-90".as_slice(), b"evt-91", b"evt-120"] {
        assert!(!holds(erased), "{}", String::from_utf8_lossy(erased));
    }
    assert!(holds(b"evt-92"));
    let report = verify(&ledger_dir);
    assert!(report.is_ok(), "{:?}", report.faults);
    let acme = report
        .tenants
        .iter()
        .find(|t| t.tenant == tenant("acme"))
        .unwrap();
    assert_eq!(acme.n_removed, 62);
    assert_eq!(acme.start, 30, "acme's log starts with a prefix entry");
    // Reopened, after a clean close (which compacts the id index: enough ids were
    // forgotten, and the count starts again) and after a full replay.
    assert_eq!(
        forgotten_ids(&ledger_dir),
        REMOVED,
        "every removed record had an id"
    );
    let store = EmbeddedStore::open(&ledger_dir, options()).unwrap();
    check_kept(&store, &builder, REMOVED, "reopened");
    let found = store
        .find_event_ids(&tenant("acme"), &[&id(20), &id(100)])
        .unwrap();
    assert_eq!(
        found,
        vec![None, Some(80)],
        "the compacted index answers as before"
    );
    drop(store);
    assert_eq!(
        forgotten_ids(&ledger_dir),
        0,
        "the index was compacted on open"
    );
    std::fs::remove_file(ledger_dir.join("tenants/acme/offsets")).unwrap();
    let store = EmbeddedStore::open(&ledger_dir, options()).unwrap();
    check_kept(&store, &builder, REMOVED, "derived files rebuilt");
}

#[test]
fn a_compacted_record_without_a_removal_is_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let mut builder = BatchBuilder::new();
    {
        let store = EmbeddedStore::open(&ledger_dir, options()).unwrap();
        fill(&store, &mut builder);
        store.compact().unwrap();
    }
    // Drop the erasure's removal entry from the journal: its records' bodies are gone with
    // nothing to say why. (The frame is rewritten with a valid checksum.)
    let report = {
        use veritrail_ledger::journal::{EntryKind, FrameBuilder, Journal};
        let journal = Journal::open_read_only(&ledger_dir.join("journal")).unwrap();
        let last = journal.segment_paths().last().unwrap().clone();
        drop(journal);
        let bytes = std::fs::read(&last).unwrap();
        let mut out = bytes[..16].to_vec();
        let mut at = 16;
        while at < bytes.len() {
            let len = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let payload = &bytes[at + 12..at + 12 + len];
            let mut frame = FrameBuilder::with_capacity(len);
            for entry in veritrail_ledger::journal::parse_entries(0, payload).unwrap() {
                let erasure = entry.kind == EntryKind::Removal && entry.body.len() < 60 && {
                    let scope = &entry.body[1 + 4 + 8..];
                    scope[0] == 2
                };
                if !erasure {
                    frame.push(entry.kind, &[entry.body]);
                }
            }
            out.extend_from_slice(&frame.finish());
            at += 12 + len;
        }
        std::fs::write(&last, out).unwrap();
        verify(&ledger_dir)
    };
    for seq in [70, 71, 90] {
        assert!(
            report.faults.iter().any(|f| f.kind == FaultKind::BadRemoval
                && f.seq == Some(seq)
                && f.tenant == Some(tenant("acme"))),
            "{seq}: {:?}",
            report.faults
        );
    }
}

const SIM_DIR: &str = "/data/ledger";

/// The store dies at each change a compaction makes, as by `kill -9` (the page cache
/// survives), by a power cut keeping only what was synced, and by one keeping an
/// adversarial part of the rest: the store opens, everything kept is there, what was
/// removed stays removed, and the journal verifies; a compaction run after the restart
/// finishes the work.
#[test]
fn a_kill_or_power_cut_at_every_step_of_a_compaction_loses_nothing_kept() {
    // The first compaction starts acme's log with a prefix entry; the second moves it and
    // deletes emptied segments.
    for (more, n_removed) in [(false, REMOVED), (true, REMOVED_MORE)] {
        cut_at_every_step(more, n_removed);
    }
}

fn cut_at_every_step(more: bool, n_removed: u64) {
    let mut cut = 1;
    let mut completed = false;
    let mut cuts = 0;
    while !completed {
        let disk = SimFs::new();
        let mut builder = BatchBuilder::new();
        let store = EmbeddedStore::open_with(Arc::new(disk.clone()), Path::new(SIM_DIR), options())
            .unwrap();
        fill(&store, &mut builder);
        if more {
            store.compact().unwrap();
            fill_more(&store, &mut builder);
        }
        store.sync().unwrap();
        disk.schedule_cut(cut);
        let result = store.compact();
        completed = !disk.is_dead();
        if completed {
            result.unwrap();
        }
        drop(store);
        for loss in [
            Loss::Nothing,
            Loss::Unsynced,
            Loss::Adversarial(cut * 7 + 1),
        ] {
            let context = format!("more: {more}, cut at change {cut}, {loss:?}");
            let after = disk.power_cut(loss);
            let store =
                EmbeddedStore::open_with(Arc::new(after.clone()), Path::new(SIM_DIR), options())
                    .unwrap_or_else(|err| panic!("{context}: the store opens: {err}"));
            check_kept(&store, &builder, n_removed, &context);
            let stats = store.compact().unwrap();
            check_kept(
                &store,
                &builder,
                n_removed,
                &format!("{context}, compacted again"),
            );
            assert!(stats.records <= n_removed);
            drop(store);
            let copy = tempfile::tempdir().unwrap();
            after
                .materialize(Path::new(SIM_DIR), &copy.path().join("ledger"))
                .unwrap();
            let report = verify(&copy.path().join("ledger"));
            assert!(report.is_ok(), "{context}: {:?}", report.faults);
        }
        cut += 1;
        cuts += 1;
        assert!(
            cuts < 10_000,
            "a compaction makes a bounded number of changes"
        );
    }
    assert!(cuts > 10, "the cuts covered the steps: {cuts}");
}

/// A later cut moves the prefix: the prefix entry is replaced by a larger one, the entries
/// below it leave the journal, segments left with nothing are deleted, and the log
/// verifies, reopens and proves as before.
#[test]
fn a_later_cut_moves_the_prefix_and_empty_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let mut builder = BatchBuilder::new();
    let acme = tenant("acme");
    let segments = || {
        std::fs::read_dir(ledger_dir.join("journal"))
            .unwrap()
            .count()
    };
    {
        let store = EmbeddedStore::open(&ledger_dir, options()).unwrap();
        fill(&store, &mut builder);
        store.compact().unwrap();
        fill_more(&store, &mut builder);
        let before = segments();
        let stats = store.compact().unwrap();
        assert!(stats.deleted > 0, "{stats:?}");
        assert!(segments() < before, "{before} -> {}", segments());
        // Asked again, nothing left to do.
        assert_eq!(store.compact().unwrap().rewritten, 0);
        check_kept(&store, &builder, REMOVED_MORE, "prefix moved");
    }
    let report = verify(&ledger_dir);
    assert!(report.is_ok(), "{:?}", report.faults);
    let summary = report.tenants.iter().find(|t| t.tenant == acme).unwrap();
    assert_eq!((summary.start, summary.n_records), (300, 323));
    // Rebuilt from the journal alone.
    std::fs::remove_dir_all(ledger_dir.join("tenants")).unwrap();
    std::fs::remove_file(ledger_dir.join("index.redb")).unwrap();
    let store = EmbeddedStore::open(&ledger_dir, options()).unwrap();
    assert_eq!(store.size(&acme).unwrap(), 323);
    let tree = builder.tree(&acme).unwrap();
    assert_eq!(
        merkle::root_at(&Reader(&store, &acme), 323).unwrap(),
        tree.root()
    );
    let kept = store.read_records(&acme, 300, 23).unwrap();
    assert_eq!(kept.len(), 23);
}
