//! Recovery from the states a crash, power loss or lost files leave, and the verifier's
//! view of them. A child process commits and exits without closing the store (no final
//! sync, like a crash); the parent then damages or removes files and reopens.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use veritrail_ledger::conformance::{BatchBuilder, test_signer};
use veritrail_ledger::journal::Journal;
use veritrail_ledger::store::CommitBatch;
use veritrail_ledger::verify::{FaultKind, Report, VerifyOptions, verify_ledger_dir};
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, LedgerStore, StoreError};

use crate::support::tenant;

const CHILD_ENV: &str = "VERITRAIL_RECOVERY_CHILD_DIR";

/// Never syncs on its own: only `sync()` moves the marker.
fn manual_sync() -> EmbeddedOptions {
    EmbeddedOptions {
        sync_every_bytes: u64::MAX,
        sync_every: Duration::from_secs(3600),
        ..EmbeddedOptions::default()
    }
}

/// The child: commits `VERITRAIL_SYNCED` batches of 3 records to acme and syncs, then
/// `VERITRAIL_UNSYNCED` more, then exits at once, skipping every destructor.
#[test]
fn child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let count = |name: &str| -> usize { std::env::var(name).unwrap().parse().unwrap() };
    let store = EmbeddedStore::open(Path::new(&dir), manual_sync()).unwrap();
    let mut builder = BatchBuilder::new();
    for round in 0..count("VERITRAIL_SYNCED") + count("VERITRAIL_UNSYNCED") {
        let mut batch = CommitBatch::default();
        batch.tenants.push(builder.append(&tenant("acme"), 3, true));
        store.commit(&batch).unwrap();
        builder.accept(&batch);
        if round + 1 == count("VERITRAIL_SYNCED") {
            store.sync().unwrap();
        }
    }
    std::process::exit(0);
}

/// A ledger directory left by a crash after `synced` synced and `unsynced` later batches.
fn crashed_ledger(synced: usize, unsynced: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "recovery::child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &ledger_dir)
        .env("VERITRAIL_SYNCED", synced.to_string())
        .env("VERITRAIL_UNSYNCED", unsynced.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (dir, ledger_dir)
}

fn verify(ledger_dir: &Path) -> Report {
    let options = VerifyOptions {
        decode_records: true,
        ..VerifyOptions::default()
    };
    verify_ledger_dir(
        ledger_dir,
        &test_signer().verifier(),
        &options,
        &mut |_, _| {},
    )
    .unwrap()
}

fn segment(ledger_dir: &Path) -> PathBuf {
    Journal::open_read_only(&ledger_dir.join("journal"))
        .unwrap()
        .segment_paths()
        .remove(0)
}

/// Start positions of the frames of a single-segment journal file.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = 16;
    let mut starts = Vec::new();
    while at + 12 <= bytes.len() {
        starts.push(at);
        at += 12 + u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    starts
}

#[test]
fn a_crash_loses_nothing_committed_and_the_unsynced_tail_is_replayed() {
    let (_dir, ledger_dir) = crashed_ledger(2, 3);
    let report = verify(&ledger_dir);
    assert!(report.is_ok() && report.warnings.is_empty(), "{report:?}");
    let store = EmbeddedStore::open(&ledger_dir, manual_sync()).unwrap();
    assert_eq!(store.size(&tenant("acme")).unwrap(), 15);
    let checkpoint = store.checkpoint(&tenant("acme")).unwrap().unwrap();
    let opened = veritrail_core::note::open(&checkpoint, &[test_signer().verifier()]).unwrap();
    let checkpoint = veritrail_core::checkpoint::Checkpoint::parse(&opened.text).unwrap();
    assert_eq!(
        checkpoint.size(),
        15,
        "the replayed checkpoint is the latest one"
    );
}

#[test]
fn a_damaged_frame_with_frames_after_it_is_corruption_not_a_torn_tail() {
    let (_dir, ledger_dir) = crashed_ledger(1, 4);
    let segment = segment(&ledger_dir);
    let mut bytes = fs::read(&segment).unwrap();
    let len = bytes.len() as u64;
    let second = frame_starts(&bytes)[2];
    bytes[second] ^= 1; // its magic
    fs::write(&segment, &bytes).unwrap();

    let report = verify(&ledger_dir);
    assert!(
        report
            .faults
            .iter()
            .any(|f| f.kind == FaultKind::DamagedJournal),
        "{report:?}"
    );
    match EmbeddedStore::open(&ledger_dir, manual_sync()) {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("the store must refuse to open, not cut acknowledged frames: {other:?}"),
    }
    assert_eq!(
        fs::metadata(&segment).unwrap().len(),
        len,
        "nothing was cut"
    );
}

#[test]
fn a_torn_last_write_after_the_marker_is_a_warning_and_is_cut() {
    let (_dir, ledger_dir) = crashed_ledger(2, 1);
    let segment = segment(&ledger_dir);
    let mut bytes = fs::read(&segment).unwrap();
    let last = *frame_starts(&bytes).last().unwrap();
    // Power loss: the header reached the disk, the payload did not.
    bytes[last + 12..].fill(0);
    fs::write(&segment, &bytes).unwrap();

    let report = verify(&ledger_dir);
    assert!(report.is_ok(), "{:?}", report.faults);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let store = EmbeddedStore::open(&ledger_dir, manual_sync()).unwrap();
    assert_eq!(
        store.size(&tenant("acme")).unwrap(),
        6,
        "the torn batch is cut"
    );
    drop(store);
    let report = verify(&ledger_dir);
    assert!(report.is_ok() && report.warnings.is_empty(), "{report:?}");
}

#[test]
fn a_journal_shorter_than_the_marker_refuses_to_open() {
    let (_dir, ledger_dir) = crashed_ledger(3, 0);
    let segment = segment(&ledger_dir);
    let bytes = fs::read(&segment).unwrap();
    let last = *frame_starts(&bytes).last().unwrap();
    fs::write(&segment, &bytes[..last]).unwrap();
    match EmbeddedStore::open(&ledger_dir, manual_sync()) {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("missing"), "{message}"),
        other => panic!("a journal cut below the sync marker must not open: {other:?}"),
    }
}

#[test]
fn deleted_derived_files_are_rebuilt_from_the_journal() {
    let (_dir, ledger_dir) = crashed_ledger(2, 2);
    fs::remove_dir_all(ledger_dir.join("tenants")).unwrap();
    let store = EmbeddedStore::open(&ledger_dir, manual_sync()).unwrap();
    let acme = tenant("acme");
    assert_eq!(store.size(&acme).unwrap(), 12);
    assert_eq!(store.read_records(&acme, 0, 100).unwrap().len(), 12);
    assert_eq!(store.load().unwrap()[0].size, 12);
    drop(store);

    fs::remove_file(ledger_dir.join("index.redb")).unwrap();
    let store = EmbeddedStore::open(&ledger_dir, manual_sync()).unwrap();
    let id = veritrail_core::event::EventId::parse("evt-4").unwrap();
    assert_eq!(store.find_event_ids(&acme, &[&id]).unwrap(), vec![Some(4)]);
    drop(store);
    assert!(verify(&ledger_dir).is_ok());
}

#[test]
fn the_verifier_survives_a_journal_whose_only_segment_was_cut_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("ledger").join("journal");
    fs::create_dir_all(&journal).unwrap();
    fs::write(journal.join("00000000000000000000.seg"), b"").unwrap();
    let report = verify(&dir.path().join("ledger"));
    assert!(report.is_ok(), "{:?}", report.faults);
    assert_eq!(report.n_records, 0);
    let store = EmbeddedStore::open(&dir.path().join("ledger"), manual_sync()).unwrap();
    assert!(store.load().unwrap().is_empty());
}
