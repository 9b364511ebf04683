//! The offline verifier against a mutated data directory: every kind of damage an attacker
//! or a bad disk can do to the journal is reported, with its tenant and seq where the data
//! names them.

use std::fs;
use std::path::{Path, PathBuf};

use veritrail_core::event::TenantId;
use veritrail_core::note::NoteSigner;
use veritrail_core::record;
use veritrail_ledger::conformance::{BatchBuilder, test_signer};
use veritrail_ledger::journal::{self, EntryKind, FrameBuilder, Journal};
use veritrail_ledger::store::CommitBatch;
use veritrail_ledger::verify::{FaultKind, Report, VerifyOptions, verify_ledger_dir};
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, LedgerStore};

use crate::support::tenant;

/// A small ledger: acme gets 5 + 3 + 2 records in three commits, globex 2 + 1.
fn build_ledger(dir: &Path) -> PathBuf {
    let ledger_dir = dir.join("ledger");
    let store = EmbeddedStore::open(&ledger_dir, EmbeddedOptions::default()).unwrap();
    let mut builder = BatchBuilder::new();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    for (n_acme, n_globex) in [(5, 2), (3, 0), (2, 1)] {
        let mut batch = CommitBatch::default();
        batch.tenants.push(builder.append(&acme, n_acme, true));
        if n_globex > 0 {
            batch.tenants.push(builder.append(&globex, n_globex, false));
        }
        store.commit(&batch).unwrap();
        builder.accept(&batch);
    }
    store.sync().unwrap();
    ledger_dir
}

fn verify(ledger_dir: &Path) -> Report {
    crate::support::verify_decoding(ledger_dir)
}

fn segment(ledger_dir: &Path) -> PathBuf {
    let paths = Journal::open_read_only(&ledger_dir.join("journal"))
        .unwrap()
        .segment_paths();
    assert_eq!(paths.len(), 1);
    paths[0].clone()
}

#[track_caller]
fn assert_fault(report: &Report, kind: FaultKind, tenant: &str, seq: Option<u64>) {
    assert!(
        has(report, kind, tenant, seq),
        "expected {kind:?} for {tenant} {seq:?} in {:#?}",
        report.faults
    );
}

fn has(report: &Report, kind: FaultKind, tenant: &str, seq: Option<u64>) -> bool {
    report.faults.iter().any(|f| {
        f.kind == kind
            && f.tenant.as_ref().map(TenantId::as_str) == Some(tenant)
            && (seq.is_none() || f.seq == seq)
    })
}

#[test]
fn an_untouched_ledger_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    let report = verify(&ledger_dir);
    assert!(report.is_ok(), "{:?}", report.faults);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.n_records, 13);
    assert_eq!(report.n_checkpoints, 5);
    let sizes: Vec<_> = report
        .tenants
        .iter()
        .map(|t| (t.tenant.as_str().to_owned(), t.n_records, t.checkpoint_size))
        .collect();
    assert_eq!(
        sizes,
        vec![("acme".into(), 10, Some(10)), ("globex".into(), 3, Some(3))]
    );
}

#[test]
fn another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    let other = NoteSigner::from_seed("test.veritrail.local", [9; 32]).unwrap();
    let report = verify_ledger_dir(
        &ledger_dir,
        &other.verifier(),
        &VerifyOptions {
            decode_records: true,
            ..VerifyOptions::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(
        report
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::BadSignature)
            .count(),
        5,
        "every checkpoint fails against a key that did not sign it"
    );
}

/// Where each record's body lies in the segment file, by (tenant, seq).
fn record_spans(segment: &Path) -> Vec<(String, u64, std::ops::Range<usize>)> {
    let bytes = fs::read(segment).unwrap();
    frames(&bytes)
        .into_iter()
        .flat_map(|(pos, payload)| {
            journal::parse_entries(pos as u64, &bytes[payload])
                .unwrap()
                .into_iter()
                .filter(|e| e.kind == EntryKind::Record)
                .map(|e| {
                    let (tenant, seq) = record::peek_header(e.body).unwrap();
                    let start = usize::try_from(e.pos).unwrap() + 9;
                    (tenant.as_str().to_owned(), seq, start..start + e.body.len())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// (frame position, payload range) of every frame of a single-segment journal file.
fn frames(bytes: &[u8]) -> Vec<(usize, std::ops::Range<usize>)> {
    let mut at = 16;
    let mut frames = Vec::new();
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        frames.push((at, at + 12..at + 12 + len));
        at += 12 + len;
    }
    frames
}

#[test]
fn flipping_any_byte_of_the_journal_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    let segment = segment(&ledger_dir);
    let original = fs::read(&segment).unwrap();
    let spans = record_spans(&segment);
    for idx in 0..original.len() {
        let mut mutated = original.clone();
        mutated[idx] ^= 1 << (idx % 8);
        fs::write(&segment, &mutated).unwrap();
        let report = verify(&ledger_dir);
        assert!(
            !report.is_ok(),
            "flipping byte {idx} of the journal went unnoticed"
        );
        // Inside a record past its tenant and seq fields, the fault names that record.
        if let Some((tenant, seq, span)) = spans.iter().find(|(_, _, span)| span.contains(&idx))
            && idx >= span.start + 32
        {
            assert!(
                has(&report, FaultKind::ChecksumMismatch, tenant, Some(*seq)),
                "byte {idx} (record {tenant} {seq}): {:?}",
                report.faults
            );
        }
    }
    fs::write(&segment, &original).unwrap();
    assert!(verify(&ledger_dir).is_ok());
}

/// Rewrites the journal entry by entry, recomputing every checksum: what a forger who
/// knows the format can do. Only the Merkle tree and signatures stand in the way.
fn forge(ledger_dir: &Path, edit: impl FnOnce(&mut Vec<Vec<(EntryKind, Vec<u8>)>>)) {
    let segment = segment(ledger_dir);
    let bytes = fs::read(&segment).unwrap();
    let mut parsed: Vec<Vec<(EntryKind, Vec<u8>)>> = frames(&bytes)
        .into_iter()
        .map(|(pos, payload)| {
            journal::parse_entries(pos as u64, &bytes[payload])
                .unwrap()
                .into_iter()
                .map(|e| (e.kind, e.body.to_vec()))
                .collect()
        })
        .collect();
    edit(&mut parsed);
    let mut out = bytes[..16].to_vec();
    for frame in parsed {
        let mut builder = FrameBuilder::with_capacity(1024);
        for (kind, body) in &frame {
            builder.push(*kind, &[body]);
        }
        out.extend_from_slice(&builder.finish());
    }
    fs::write(&segment, out).unwrap();
}

fn record_index(frame: &[(EntryKind, Vec<u8>)], tenant: &str, seq: u64) -> usize {
    frame
        .iter()
        .position(|(kind, body)| {
            *kind == EntryKind::Record && {
                let (t, s) = record::peek_header(body).unwrap();
                t.as_str() == tenant && s == seq
            }
        })
        .unwrap()
}

#[test]
fn a_forged_record_with_valid_checksums_breaks_the_signed_root() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    forge(&ledger_dir, |frames| {
        let idx = record_index(&frames[0], "acme", 0);
        let body = &mut frames[0][idx].1;
        // Turn the failure into a success: still a valid, canonical record.
        let at = body
            .windows(6)
            .position(|w| w == [0x09, 0, 0, 0, 1, 2])
            .unwrap();
        body[at + 5] = 1;
    });
    let report = verify(&ledger_dir);
    assert_fault(&report, FaultKind::CheckpointMismatch, "acme", Some(5));
    assert_fault(&report, FaultKind::DerivedMismatch, "acme", Some(0));
    assert!(
        !has(&report, FaultKind::CheckpointMismatch, "globex", None),
        "{:?}",
        report.faults
    );
}

#[test]
fn a_dropped_record_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    forge(&ledger_dir, |frames| {
        let idx = record_index(&frames[0], "acme", 2);
        frames[0].remove(idx);
    });
    let report = verify(&ledger_dir);
    assert_fault(&report, FaultKind::SeqGap, "acme", Some(3));
    assert_fault(&report, FaultKind::CheckpointMismatch, "acme", Some(5));
}

#[test]
fn reordered_records_are_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    forge(&ledger_dir, |frames| {
        let (a, b) = (
            record_index(&frames[0], "acme", 1),
            record_index(&frames[0], "acme", 2),
        );
        frames[0].swap(a, b);
    });
    let report = verify(&ledger_dir);
    assert_fault(&report, FaultKind::SeqGap, "acme", Some(2));
    assert_fault(&report, FaultKind::SeqOutOfOrder, "acme", Some(1));
    assert_fault(&report, FaultKind::CheckpointMismatch, "acme", Some(5));
}

#[test]
fn an_inserted_record_is_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    forge(&ledger_dir, |frames| {
        let idx = record_index(&frames[1], "acme", 6);
        let copy = frames[1][idx].clone();
        frames[1].insert(idx + 1, copy);
    });
    let report = verify(&ledger_dir);
    assert_fault(&report, FaultKind::SeqOutOfOrder, "acme", Some(6));
    assert_fault(&report, FaultKind::CheckpointMismatch, "acme", None);
}

#[test]
fn a_removed_checkpoint_leaves_records_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    forge(&ledger_dir, |frames| {
        let last = frames.last_mut().unwrap();
        last.retain(|(kind, body)| {
            !(*kind == EntryKind::Checkpoint && body[1..].starts_with(b"acme"))
        });
    });
    let report = verify(&ledger_dir);
    assert_fault(&report, FaultKind::Unsigned, "acme", Some(8));
}

#[test]
fn a_journal_cut_at_a_frame_boundary_is_missing_committed_data() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    forge(&ledger_dir, |frames| {
        frames.pop();
    });
    let report = verify(&ledger_dir);
    assert_fault(&report, FaultKind::MissingCommitted, "acme", Some(8));
    assert_fault(&report, FaultKind::MissingCommitted, "globex", Some(2));
}

#[test]
fn a_journal_cut_inside_a_frame_is_missing_committed_data() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    let segment = segment(&ledger_dir);
    let len = fs::metadata(&segment).unwrap().len();
    for cut in [1, 10, 100] {
        let file = fs::OpenOptions::new().write(true).open(&segment).unwrap();
        file.set_len(len - cut).unwrap();
        let report = verify(&ledger_dir);
        assert!(
            report
                .faults
                .iter()
                .any(|f| f.kind == FaultKind::MissingCommitted),
            "cut {cut}: {:?}",
            report.faults
        );
    }
}

#[test]
fn a_segment_whose_creation_a_crash_cut_short_is_a_warning_and_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    let segment = segment(&ledger_dir);
    let len = fs::metadata(&segment).unwrap().len();
    let torn = ledger_dir.join("journal").join(format!("{len:020}.seg"));
    fs::write(&torn, b"VTLJ").unwrap();
    let report = verify(&ledger_dir);
    assert!(report.is_ok(), "{:?}", report.faults);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);

    let store = EmbeddedStore::open(&ledger_dir, EmbeddedOptions::default()).unwrap();
    assert!(!torn.exists(), "the torn segment is removed");
    assert_eq!(store.size(&tenant("acme")).unwrap(), 10);
    drop(store);
    let report = verify(&ledger_dir);
    assert!(report.is_ok() && report.warnings.is_empty(), "{report:?}");
}

#[test]
fn trusted_checkpoints_must_be_contained_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = build_ledger(dir.path());
    // The same key signed a different history of acme (another first batch).
    let mut other = BatchBuilder::new();
    let forked = other
        .append(&tenant("acme"), 5, false)
        .checkpoint
        .to_string();
    let mut longer = BatchBuilder::new();
    let beyond = longer
        .append(&tenant("acme"), 12, true)
        .checkpoint
        .to_string();
    let check = |trusted: Vec<String>| {
        let options = VerifyOptions {
            trusted_checkpoints: trusted,
            ..VerifyOptions::default()
        };
        verify_ledger_dir(
            &ledger_dir,
            &test_signer().verifier(),
            &options,
            &mut |_, _| {},
        )
        .unwrap()
    };
    assert_fault(
        &check(vec![forked]),
        FaultKind::CheckpointMismatch,
        "acme",
        Some(5),
    );
    assert_fault(
        &check(vec![beyond]),
        FaultKind::MissingCommitted,
        "acme",
        Some(10),
    );

    let mut same = BatchBuilder::new();
    let genuine = same.append(&tenant("acme"), 5, true).checkpoint.to_string();
    let report = check(vec![genuine]);
    assert!(report.is_ok(), "{:?}", report.faults);
}

/// The scrub's view of a store that stays open: what was committed before `live_bounds`
/// verifies while more is committed, a damaged stored node is found, and rewriting the
/// tenant's derived files from the journal repairs it under the running store.
#[test]
fn a_live_store_is_verified_to_its_bounds_and_a_damaged_node_is_rewritten() {
    use std::os::unix::fs::FileExt;
    use veritrail_ledger::verify::verify_live_ledger_dir;

    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let store = EmbeddedStore::open(&ledger_dir, EmbeddedOptions::default()).unwrap();
    let mut builder = BatchBuilder::new();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut commit = |n_acme: usize, n_globex: usize| {
        let mut batch = CommitBatch::default();
        batch.tenants.push(builder.append(&acme, n_acme, true));
        if n_globex > 0 {
            batch.tenants.push(builder.append(&globex, n_globex, false));
        }
        store.commit(&batch).unwrap();
        builder.accept(&batch);
    };
    commit(7, 3);
    commit(4, 1);
    let (path, bounds) = store.live_bounds().expect("an embedded store has files");
    assert_eq!(path, ledger_dir);
    assert_eq!(bounds.sizes[&acme], 11);
    // Committed after the bounds, not synced: not read, and not a fault.
    commit(5, 0);
    let live = |bounds| {
        verify_live_ledger_dir(
            &ledger_dir,
            &test_signer().verifier(),
            bounds,
            &mut |_, _| true,
        )
        .unwrap()
    };
    let report = live(&bounds);
    assert!(report.is_ok(), "{:?}", report.faults);
    assert_eq!(report.n_records, 15);

    // A bad disk flips a byte of acme's stored node (level 1, index 2): leaves 4 and 5.
    let nodes = ledger_dir.join("tenants/acme/nodes");
    let file = fs::OpenOptions::new().write(true).open(&nodes).unwrap();
    let at = 32 * (2 * (6 - 1) - u64::from(5u64.count_ones()) + 1);
    file.write_all_at(&[0xff; 4], at).unwrap();
    let report = live(&bounds);
    assert_fault(&report, FaultKind::DerivedMismatch, "acme", Some(5));
    assert!(!has(&report, FaultKind::DerivedMismatch, "globex", None));

    store.rewrite_derived(&acme, &bounds).unwrap();
    let (_, bounds) = store.live_bounds().unwrap();
    assert_eq!(bounds.sizes[&acme], 16);
    let report = live(&bounds);
    assert!(report.is_ok(), "{:?}", report.faults);
    // Proofs read the repaired node.
    let proof_nodes = store
        .read_nodes(
            &acme,
            &[veritrail_core::merkle::NodeId { level: 1, index: 2 }],
        )
        .unwrap();
    let mut stored = [0u8; 32];
    fs::File::open(&nodes)
        .unwrap()
        .read_exact_at(&mut stored, at)
        .unwrap();
    assert_eq!(proof_nodes[0], stored);
    assert_ne!(&stored[..4], &[0xff; 4]);
}
