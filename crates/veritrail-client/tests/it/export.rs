//! [`verify_export`] on bundles built from real records, checkpoints and signatures, then
//! damaged one way at a time: each damage must be found with its kind and seq, and the
//! untouched bundle must pass.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use veritrail_api::{EventInput, ExportHeader, ExportLine};
use veritrail_client::export::{ExportFaultKind, ExportReport, ExportVerifyOptions, verify_export};
use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::{Event, TenantId, Timestamp};
use veritrail_core::merkle::{self, MemoryTree};
use veritrail_core::note::{NoteSigner, NoteVerifier};
use veritrail_core::record::{CatalogFields, Record};

const KEY_NAME: &str = "audit.example";
const N_RECORDS: u64 = 7;

fn signer() -> NoteSigner {
    NoteSigner::from_seed(KEY_NAME, [7; 32]).expect("signer")
}

fn other_signer() -> NoteSigner {
    NoteSigner::from_seed(KEY_NAME, [8; 32]).expect("signer")
}

fn record(tenant: &str, seq: u64) -> Record {
    let event = Event::parse(EventInput {
        id: Some(format!("event-{seq}")),
        event_type: "user.login".into(),
        summary: Some(format!("login number {seq}")),
        ..EventInput::default()
    })
    .expect("valid event");
    Record::new(
        TenantId::parse(tenant).expect("tenant"),
        seq,
        Timestamp::from_unix_nanos(1_760_000_000_000_000_000 + i64::try_from(seq).expect("seq")),
        event,
        CatalogFields::default(),
    )
}

/// A record's line, with its JSON beside its bytes as the server writes it.
fn line(record_bytes: &[u8], seq: u64) -> String {
    serde_json::to_string(&ExportLine {
        seq,
        leaf_hash: BASE64.encode(merkle::leaf_hash(record_bytes)),
        record: Some(BASE64.encode(record_bytes)),
        json: Some(Record::decode(record_bytes).expect("record").to_json()),
        proof: Vec::new(),
        removed_by: None,
        removed_below: None,
        subtree_hashes: Vec::new(),
    })
    .expect("json")
}

fn sign_checkpoint(signer: &NoteSigner, origin: &str, size: u64, root: merkle::Hash) -> String {
    let checkpoint = Checkpoint::new(origin, size, root).expect("checkpoint");
    signer.sign(&checkpoint.to_body()).expect("signed")
}

/// A bundle as its lines: the header, then one line per record of tenant `acme`, signed as
/// the ledger signs (origin `<key name>/<tenant>`).
fn bundle(n_records: u64) -> Vec<String> {
    let signer = signer();
    let mut tree = MemoryTree::new();
    let mut lines = vec![String::new()];
    for seq in 0..n_records {
        let bytes = record("acme", seq).encode();
        tree.append(merkle::leaf_hash(&bytes));
        lines.push(line(&bytes, seq));
    }
    let origin = format!("{KEY_NAME}/acme");
    lines[0] = header_line(&ExportHeader {
        format: ExportHeader::FORMAT.into(),
        tenant: "acme".into(),
        origin: origin.clone(),
        verifier_key: signer.verifier().to_vkey_string(),
        tree_size: n_records,
        checkpoint: sign_checkpoint(&signer, &origin, n_records, tree.root()),
        filters: None,
    });
    lines
}

fn header_line(header: &ExportHeader) -> String {
    serde_json::to_string(header).expect("json")
}

fn header(lines: &[String]) -> ExportHeader {
    serde_json::from_str(&lines[0]).expect("header")
}

fn text(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn verify_with(text: &str, verifier: &NoteVerifier) -> ExportReport {
    verify_export(text.as_bytes(), verifier, &ExportVerifyOptions::default())
}

/// Verifies `text` with the pinned key and checks that every `(kind, seq)` of `expected` is
/// among the faults and nothing else is, except the kinds in `also_allowed`.
#[track_caller]
fn check(
    text: &str,
    expected: &[(ExportFaultKind, Option<u64>)],
    also_allowed: &[ExportFaultKind],
) {
    let report = verify_with(text, &signer().verifier());
    let found: Vec<(ExportFaultKind, Option<u64>)> = report
        .faults
        .iter()
        .map(|fault| (fault.kind, fault.seq))
        .collect();
    for wanted in expected {
        assert!(
            found.contains(wanted),
            "expected {wanted:?} among the faults:\n{}",
            describe(&report)
        );
    }
    for fault in &report.faults {
        assert!(
            expected.contains(&(fault.kind, fault.seq)) || also_allowed.contains(&fault.kind),
            "unexpected fault {fault}:\n{}",
            describe(&report)
        );
    }
    assert_eq!(report.is_ok(), expected.is_empty(), "{}", describe(&report));
}

fn describe(report: &ExportReport) -> String {
    report
        .faults
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces line `idx`'s record bytes by `mutate(bytes)`, keeping or recomputing its leaf
/// hash.
fn rewrite_record(
    lines: &mut [String],
    idx: usize,
    rehash: bool,
    mutate: impl FnOnce(&mut Vec<u8>),
) {
    let mut parsed: ExportLine = serde_json::from_str(&lines[idx]).expect("line");
    let mut bytes = BASE64
        .decode(parsed.record.as_deref().expect("kept"))
        .expect("base64");
    mutate(&mut bytes);
    parsed.record = Some(BASE64.encode(&bytes));
    // The readable JSON follows the bytes (its own check has its own test).
    parsed.json = Record::decode(&bytes).ok().map(|record| record.to_json());
    if rehash {
        parsed.leaf_hash = BASE64.encode(merkle::leaf_hash(&bytes));
    }
    lines[idx] = serde_json::to_string(&parsed).expect("json");
}

use ExportFaultKind::*;

#[test]
fn an_untouched_bundle_verifies() {
    let lines = bundle(N_RECORDS);
    let report = verify_with(&text(&lines), &signer().verifier());
    assert!(report.is_ok(), "{}", describe(&report));
    assert_eq!(report.n_records, N_RECORDS);
    assert_eq!(report.tenant.as_deref(), Some("acme"));
    assert_eq!(report.checkpoint_size, Some(N_RECORDS));
    assert_eq!(
        report.checkpoint.as_deref(),
        Some(header(&lines).checkpoint.as_str())
    );
}

#[test]
fn bundles_of_every_small_size_verify() {
    for n_records in [0, 1, 2, 3, 4, 5, 8, 9, 16, 33] {
        let report = verify_with(&text(&bundle(n_records)), &signer().verifier());
        assert!(report.is_ok(), "{n_records}: {}", describe(&report));
        assert_eq!(report.n_records, n_records);
    }
}

#[test]
fn a_missing_final_newline_is_not_a_fault() {
    let lines = bundle(N_RECORDS);
    check(&lines.join("\n"), &[], &[]);
}

#[test]
fn a_flipped_byte_in_a_record_is_a_leaf_hash_mismatch_at_its_seq() {
    for seq in [0, 3, N_RECORDS - 1] {
        let mut lines = bundle(N_RECORDS);
        let idx = usize::try_from(seq).expect("seq") + 1;
        rewrite_record(&mut lines, idx, false, |bytes| {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
        });
        // The flip lands in the summary's text, which may or may not still decode.
        check(
            &text(&lines),
            &[(LeafHashMismatch, Some(seq)), (RootMismatch, None)],
            &[UndecodableRecord],
        );
    }
}

#[test]
fn a_rewritten_record_with_a_matching_leaf_hash_breaks_the_root() {
    let mut lines = bundle(N_RECORDS);
    let forged = record("acme", 2);
    let forged = Record::new(
        forged.tenant().clone(),
        2,
        Timestamp::from_unix_nanos(0),
        forged.event().clone(),
        CatalogFields::default(),
    );
    lines[3] = line(&forged.encode(), 2);
    check(&text(&lines), &[(RootMismatch, None)], &[]);
}

#[test]
fn bytes_that_are_no_record_are_undecodable() {
    let mut lines = bundle(N_RECORDS);
    rewrite_record(&mut lines, 5, true, |bytes| bytes[0] = 0x02);
    check(
        &text(&lines),
        &[(UndecodableRecord, Some(4)), (RootMismatch, None)],
        &[],
    );
}

#[test]
fn a_dropped_line_is_a_gap_at_the_next_seq_and_a_short_count() {
    let mut lines = bundle(N_RECORDS);
    lines.remove(5); // seq 4
    check(
        &text(&lines),
        &[(SeqGap, Some(5)), (CountMismatch, Some(N_RECORDS - 1))],
        &[],
    );
}

#[test]
fn two_swapped_lines_are_a_gap_and_an_out_of_order_seq() {
    let mut lines = bundle(N_RECORDS);
    lines.swap(3, 4); // seqs 2 and 3
    check(
        &text(&lines),
        &[
            (SeqGap, Some(3)),
            (SeqOutOfOrder, Some(2)),
            (RootMismatch, None),
        ],
        &[],
    );
}

#[test]
fn a_repeated_line_is_out_of_order_and_one_too_many() {
    let mut lines = bundle(N_RECORDS);
    let copy = lines[3].clone();
    lines.insert(4, copy);
    check(
        &text(&lines),
        &[(SeqOutOfOrder, Some(2)), (CountMismatch, Some(N_RECORDS))],
        &[],
    );
}

#[test]
fn a_changed_tree_size_disagrees_with_the_checkpoint_and_the_records() {
    for tree_size in [N_RECORDS - 2, N_RECORDS + 1] {
        let mut lines = bundle(N_RECORDS);
        let mut changed = header(&lines);
        changed.tree_size = tree_size;
        lines[0] = header_line(&changed);
        check(
            &text(&lines),
            &[
                (BadCheckpoint, None),
                (CountMismatch, Some(N_RECORDS.min(tree_size))),
            ],
            &[],
        );
    }
}

#[test]
fn a_bundle_cut_short_is_a_short_count_from_the_first_missing_seq() {
    let lines = bundle(N_RECORDS);
    check(
        &text(&lines[..lines.len() - 2]),
        &[(CountMismatch, Some(N_RECORDS - 2))],
        &[],
    );
    // Cut in the middle of the line of seq 5.
    let full = text(&lines);
    let cut_at = full.len() - lines[7].len() - 1 - lines[6].len() / 2;
    check(
        &full[..cut_at],
        &[(MalformedLine, Some(5)), (CountMismatch, Some(6))],
        &[],
    );
}

#[test]
fn records_cut_off_together_with_a_matching_header_need_the_checkpoint() {
    // Header tree size lowered to match a cut, checkpoint kept: caught by the checkpoint.
    let mut lines = bundle(N_RECORDS);
    lines.truncate(5);
    let mut changed = header(&lines);
    changed.tree_size = 4;
    lines[0] = header_line(&changed);
    check(
        &text(&lines),
        &[(BadCheckpoint, None), (CountMismatch, Some(4))],
        &[],
    );
}

#[test]
fn another_pinned_key_is_a_key_mismatch_and_a_bad_signature() {
    let lines = bundle(N_RECORDS);
    let report = verify_with(&text(&lines), &other_signer().verifier());
    let kinds: Vec<_> = report.faults.iter().map(|fault| fault.kind).collect();
    assert_eq!(kinds, [KeyMismatch, BadSignature], "{}", describe(&report));
    assert!(!report.is_ok());
    assert_eq!(report.checkpoint, None);
}

#[test]
fn a_bundle_re_signed_by_another_key_does_not_pass_the_pinned_key() {
    // An attacker rewrites a record and signs a new checkpoint with their own key, and
    // names that key in the header.
    let mut lines = bundle(N_RECORDS);
    rewrite_record(&mut lines, 2, true, |bytes| {
        let last = bytes.len() - 1;
        bytes[last] = b'X';
    });
    let mut tree = MemoryTree::new();
    for line in &lines[1..] {
        let parsed: ExportLine = serde_json::from_str(line).expect("line");
        tree.append(merkle::leaf_hash(
            &BASE64.decode(parsed.record.expect("kept")).expect("b64"),
        ));
    }
    let mut forged = header(&lines);
    forged.verifier_key = other_signer().verifier().to_vkey_string();
    forged.checkpoint = sign_checkpoint(&other_signer(), &forged.origin, N_RECORDS, tree.root());
    lines[0] = header_line(&forged);
    check(
        &text(&lines),
        &[(KeyMismatch, None), (BadSignature, None)],
        &[UndecodableRecord],
    );
}

#[test]
fn a_checkpoint_of_another_log_is_a_bad_checkpoint() {
    let lines = bundle(N_RECORDS);
    let mut changed = header(&lines);
    let root = Checkpoint::parse(
        &veritrail_core::note::open(&changed.checkpoint, &[signer().verifier()])
            .expect("opens")
            .text,
    )
    .expect("parses")
    .root()
    .to_owned();
    changed.checkpoint = sign_checkpoint(&signer(), &format!("{KEY_NAME}/other"), N_RECORDS, root);
    let mut lines = lines;
    lines[0] = header_line(&changed);
    check(&text(&lines), &[(BadCheckpoint, None)], &[]);
}

#[test]
fn a_header_of_another_origin_is_a_bad_header() {
    // Both header and checkpoint name a log that is not `<key name>/<tenant>`.
    let mut lines = bundle(N_RECORDS);
    let mut changed = header(&lines);
    let opened =
        veritrail_core::note::open(&changed.checkpoint, &[signer().verifier()]).expect("opens");
    let root = *Checkpoint::parse(&opened.text).expect("parses").root();
    changed.origin = "elsewhere/acme".into();
    changed.checkpoint = sign_checkpoint(&signer(), "elsewhere/acme", N_RECORDS, root);
    lines[0] = header_line(&changed);
    check(&text(&lines), &[(BadHeader, None)], &[]);
}

#[test]
fn a_record_of_another_tenant_or_seq_is_a_record_mismatch() {
    let mut lines = bundle(N_RECORDS);
    lines[3] = line(&record("other", 2).encode(), 2);
    check(
        &text(&lines),
        &[(RecordMismatch, Some(2)), (RootMismatch, None)],
        &[],
    );
    let mut lines = bundle(N_RECORDS);
    // The line says seq 2 but the record is seq 5's.
    lines[3] = line(&record("acme", 5).encode(), 2);
    check(
        &text(&lines),
        &[(RecordMismatch, Some(2)), (RootMismatch, None)],
        &[],
    );
}

#[test]
fn the_expected_tenant_is_enforced() {
    let lines = bundle(N_RECORDS);
    let options = ExportVerifyOptions {
        tenant: Some(TenantId::parse("globex").expect("tenant")),
        ..ExportVerifyOptions::default()
    };
    let report = verify_export(text(&lines).as_bytes(), &signer().verifier(), &options);
    assert_eq!(report.faults.len(), 1, "{}", describe(&report));
    assert_eq!(report.faults[0].kind, BadHeader);
}

#[test]
fn broken_headers_and_lines_are_reported() {
    check("", &[(BadHeader, None)], &[]);
    check("not json\n", &[(BadHeader, None)], &[]);
    let mut lines = bundle(N_RECORDS);
    let mut changed = header(&lines);
    changed.format = "veritrail-export/v2".into();
    lines[0] = header_line(&changed);
    check(&text(&lines), &[(BadHeader, None)], &[]);

    let mut lines = bundle(N_RECORDS);
    lines[2] = "{\"seq\": 1}".into();
    check(&text(&lines), &[(MalformedLine, Some(1))], &[]);
    let mut lines = bundle(N_RECORDS);
    lines.insert(3, String::new());
    check(
        &text(&lines),
        &[
            (MalformedLine, Some(2)),
            (SeqOutOfOrder, Some(2)),
            (CountMismatch, Some(N_RECORDS)),
        ],
        &[],
    );
}

#[test]
fn faults_are_capped() {
    let mut lines = bundle(40);
    for line in &mut lines[1..] {
        *line = "garbage".into();
    }
    let options = ExportVerifyOptions {
        max_faults: 10,
        ..ExportVerifyOptions::default()
    };
    let report = verify_export(text(&lines).as_bytes(), &signer().verifier(), &options);
    assert_eq!(report.faults.len(), 10);
    assert_eq!(report.n_faults_dropped, 30);
    assert!(!report.is_ok());
}

#[test]
fn hash_only_mode_still_checks_tenant_and_seq() {
    let mut lines = bundle(N_RECORDS);
    lines[3] = line(&record("other", 2).encode(), 2);
    let options = ExportVerifyOptions {
        decode_records: false,
        ..ExportVerifyOptions::default()
    };
    let report = verify_export(text(&lines).as_bytes(), &signer().verifier(), &options);
    assert!(
        report
            .faults
            .iter()
            .any(|fault| fault.kind == RecordMismatch && fault.seq == Some(2)),
        "{}",
        describe(&report)
    );
}

/// [`bundle`] with its first `below` records replaced by a prefix line: the hashes of their
/// complete subtrees, removed by record `by`.
fn bundle_with_prefix(n_records: u64, below: u64, by: u64) -> Vec<String> {
    let mut lines = bundle(n_records);
    let tree: MemoryTree = (0..below)
        .map(|seq| merkle::leaf_hash(&record("acme", seq).encode()))
        .collect();
    let prefix = serde_json::to_string(&ExportLine {
        seq: 0,
        leaf_hash: String::new(),
        record: None,
        json: None,
        proof: Vec::new(),
        removed_by: Some(by),
        removed_below: Some(below),
        subtree_hashes: tree
            .frontier()
            .hashes()
            .iter()
            .map(|hash| BASE64.encode(hash))
            .collect(),
    })
    .expect("json");
    let below = usize::try_from(below).expect("small");
    lines.splice(1..=below, [prefix]);
    lines
}

#[test]
fn a_prefix_line_stands_for_the_removed_records_at_the_start() {
    for below in 1..N_RECORDS {
        let report = verify_with(
            &text(&bundle_with_prefix(N_RECORDS, below, N_RECORDS - 1)),
            &signer().verifier(),
        );
        assert!(report.is_ok(), "prefix of {below}: {}", describe(&report));
        assert_eq!(report.n_records, N_RECORDS);
        assert_eq!(report.n_removed, below);
    }
}

#[test]
fn a_damaged_or_misplaced_prefix_line_is_found() {
    // A subtree hash changed: the root no longer matches.
    let mut lines = bundle_with_prefix(N_RECORDS, 6, N_RECORDS - 1);
    let mut prefix: ExportLine = serde_json::from_str(&lines[1]).expect("line");
    prefix.subtree_hashes[1] = BASE64.encode([9u8; 32]);
    lines[1] = serde_json::to_string(&prefix).expect("json");
    check(&text(&lines), &[(ExportFaultKind::RootMismatch, None)], &[]);
    // One hash too few for 6 records (4 + 2).
    prefix.subtree_hashes.pop();
    lines[1] = serde_json::to_string(&prefix).expect("json");
    check(
        &text(&lines),
        &[(ExportFaultKind::MalformedLine, Some(0))],
        &[],
    );
    // Removed by a record inside the prefix.
    let lines = bundle_with_prefix(N_RECORDS, 6, 3);
    check(
        &text(&lines),
        &[(ExportFaultKind::MalformedLine, Some(0))],
        &[],
    );
    // Not the first line.
    let mut lines = bundle(N_RECORDS);
    let prefix = bundle_with_prefix(N_RECORDS, 2, N_RECORDS - 1).remove(1);
    lines[3] = prefix;
    check(
        &text(&lines),
        &[(ExportFaultKind::MalformedLine, Some(0))],
        &[
            ExportFaultKind::SeqOutOfOrder,
            ExportFaultKind::RootMismatch,
        ],
    );
}

#[test]
fn a_line_whose_json_says_otherwise_than_its_record_is_a_json_mismatch() {
    let mut lines = bundle(N_RECORDS);
    let mut line: serde_json::Value = serde_json::from_str(&lines[3]).expect("line");
    line["json"]["summary"] = "nothing to see here".into();
    lines[3] = line.to_string();
    let report = verify_with(&text(&lines), &signer().verifier());
    assert_eq!(kinds(&report), [(ExportFaultKind::JsonMismatch, Some(2))]);
    // A line without JSON (a bundle written before lines had it) still verifies.
    let mut lines = bundle(N_RECORDS);
    let mut line: serde_json::Value = serde_json::from_str(&lines[3]).expect("line");
    line.as_object_mut().expect("object").remove("json");
    lines[3] = line.to_string();
    assert!(verify_with(&text(&lines), &signer().verifier()).is_ok());
}

/// A filtered bundle of the records at `seqs` of a log of `n_records`: each line with its
/// inclusion proof in the signed tree.
fn filtered_bundle(n_records: u64, seqs: &[u64]) -> Vec<String> {
    let full = bundle(n_records);
    let tree: MemoryTree = (0..n_records)
        .map(|seq| merkle::leaf_hash(&record("acme", seq).encode()))
        .collect();
    let mut header = header(&full);
    header.filters = Some("type=user.login".into());
    let mut lines = vec![header_line(&header)];
    for &seq in seqs {
        let mut line: ExportLine =
            serde_json::from_str(&full[usize::try_from(seq).expect("seq") + 1]).expect("line");
        line.proof = merkle::inclusion_proof(&tree, seq, n_records)
            .expect("proof")
            .iter()
            .map(|hash| BASE64.encode(hash))
            .collect();
        lines.push(serde_json::to_string(&line).expect("json"));
    }
    lines
}

fn kinds(report: &ExportReport) -> Vec<(ExportFaultKind, Option<u64>)> {
    report
        .faults
        .iter()
        .map(|fault| (fault.kind, fault.seq))
        .collect()
}

#[test]
fn a_filtered_bundle_verifies_as_inclusion_proofs_against_one_checkpoint() {
    let lines = filtered_bundle(13, &[0, 4, 5, 11, 12]);
    let report = verify_with(&text(&lines), &signer().verifier());
    assert!(report.is_ok(), "{}", describe(&report));
    assert_eq!(report.n_records, 5);
    assert_eq!(report.filters.as_deref(), Some("type=user.login"));
    assert_eq!(report.checkpoint_size, Some(13));
    // No line at all is a filter that matched nothing: still a signed, valid answer.
    assert!(verify_with(&text(&filtered_bundle(13, &[])), &signer().verifier()).is_ok());
}

#[test]
fn a_filtered_bundle_with_a_wrong_proof_a_swap_or_a_forged_record_fails() {
    let verifier = signer().verifier();
    // A proof hash changed.
    let mut lines = filtered_bundle(13, &[2, 7, 9]);
    let mut line: ExportLine = serde_json::from_str(&lines[2]).expect("line");
    line.proof[0] = BASE64.encode([7u8; 32]);
    lines[2] = serde_json::to_string(&line).expect("json");
    assert_eq!(
        kinds(&verify_with(&text(&lines), &verifier)),
        [(ExportFaultKind::BadProof, Some(7))]
    );
    // Two lines swapped: out of order (their proofs still hold).
    let mut lines = filtered_bundle(13, &[2, 7, 9]);
    lines.swap(1, 2);
    assert_eq!(
        kinds(&verify_with(&text(&lines), &verifier)),
        [(ExportFaultKind::SeqOutOfOrder, Some(2))]
    );
    // A record rewritten with its leaf hash (and JSON) to match: the proof no longer leads
    // to the signed root.
    let mut lines = filtered_bundle(13, &[2, 7, 9]);
    let mut line: ExportLine = serde_json::from_str(&lines[3]).expect("line");
    let mut forged = record("acme", 9);
    forged = Record::new(
        forged.tenant().clone(),
        9,
        forged.received_at(),
        Event::parse(EventInput {
            event_type: "user.logout".into(),
            ..EventInput::default()
        })
        .expect("event"),
        CatalogFields::default(),
    );
    let bytes = forged.encode();
    line.record = Some(BASE64.encode(&bytes));
    line.leaf_hash = BASE64.encode(merkle::leaf_hash(&bytes));
    line.json = Some(forged.to_json());
    lines[3] = serde_json::to_string(&line).expect("json");
    assert_eq!(
        kinds(&verify_with(&text(&lines), &verifier)),
        [(ExportFaultKind::BadProof, Some(9))]
    );
    // A line moved outside the signed tree.
    let mut lines = filtered_bundle(13, &[2]);
    let mut line: ExportLine = serde_json::from_str(&lines[1]).expect("line");
    line.seq = 13;
    lines[1] = serde_json::to_string(&line).expect("json");
    let report = verify_with(&text(&lines), &verifier);
    assert!(
        kinds(&report).contains(&(ExportFaultKind::BadProof, Some(13))),
        "{}",
        describe(&report)
    );
    // Another key's checkpoint is refused as for a whole bundle.
    let lines = filtered_bundle(13, &[2]);
    assert!(!verify_with(&text(&lines), &other_signer().verifier()).is_ok());
}

#[test]
fn a_damaged_field_name_is_a_malformed_line_not_an_unchecked_part() {
    // A byte changed in the name of `json` would otherwise leave a readable field that no
    // check covers.
    let mut lines = bundle(N_RECORDS);
    lines[2] = lines[2].replacen("\"json\"", "\"jAon\"", 1);
    let report = verify_with(&text(&lines), &signer().verifier());
    assert_eq!(kinds(&report)[0], (ExportFaultKind::MalformedLine, Some(1)));
}
