//! Offline verification of an export bundle ([`verify_export`]): with no server and trusting
//! nothing but the pinned verifier key, checks that a bundle is exactly the first
//! `tree_size` records of one tenant's log as its signed checkpoint commits to them.
//!
//! A bundle (`application/x-ndjson`) is an [`ExportHeader`] line, then one [`ExportLine`]
//! per record, seq 0 to `tree_size - 1`. The checks:
//!
//! - the header parses and has the format this version reads;
//! - its verifier key is the pinned one, its origin is `<key name>/<tenant>`;
//! - its checkpoint is signed by the pinned key, names the header's origin, and has the
//!   header's tree size;
//! - every line parses, seqs run 0, 1, 2, ... with no gap, repeat or swap (a first
//!   *prefix line* stands for the removed records at the start of the log, with the hashes
//!   of their complete subtrees in place of their leaf hashes);
//! - every record decodes strictly, belongs to the header's tenant and carries its line's
//!   seq, and the line's leaf hash is the hash of the record's bytes;
//! - the Merkle root over the records, in file order, is the checkpoint's root, and the
//!   number of records is the checkpoint's size;
//! - a line's `json`, when it has one, is exactly the JSON of its record's bytes.
//!
//! A filtered bundle (the header names its `filters`) holds only some kept records: each
//! line's seqs rise and lie inside the checkpoint's tree, its record is checked as above,
//! and its inclusion proof must lead from its leaf hash to the signed root. It proves every
//! record it holds is in the log, unaltered, at its seq; not that no other record matches.
//!
//! Damage is reported as [`ExportFault`]s with the seq (and line) where it was found, in
//! the style of `veritrail_ledger::verify`, and verification goes on past a fault where the
//! data allows.

use std::fmt;
use std::io::{BufRead, Read};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use veritrail_api::{ExportHeader, ExportLine};
use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::TenantId;
use veritrail_core::merkle::{self, Frontier};
use veritrail_core::note::{self, NoteVerifier};
use veritrail_core::record::{MAX_RECORD_BYTES, Record};

/// Longest line read: a record of the largest size in base64 and JSON, or a header with a
/// checkpoint note of the largest size, with room to spare. Longer lines are faults, and
/// are not held in memory whole.
const MAX_LINE_BYTES: usize = 2 * MAX_RECORD_BYTES + 2 * note::MAX_NOTE_SIZE + 4096;

/// What kind of damage an [`ExportFault`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExportFaultKind {
    /// The file cannot be read.
    Unreadable,
    /// The first line is missing, not a header, or of another format version.
    BadHeader,
    /// The header's verifier key is not the pinned key.
    KeyMismatch,
    /// The checkpoint's signature does not verify with the pinned key.
    BadSignature,
    /// The checkpoint does not parse, names another log than the header, or has another
    /// size than the header says.
    BadCheckpoint,
    /// A record line is not an [`ExportLine`] (JSON, base64), or is too long.
    MalformedLine,
    /// Seqs skip forward: records are missing.
    SeqGap,
    /// A seq at or below one already seen: records repeated, inserted or reordered.
    SeqOutOfOrder,
    /// A record's bytes are not a valid canonical record.
    UndecodableRecord,
    /// A record belongs to another tenant, or its seq is not its line's.
    RecordMismatch,
    /// A line's leaf hash is not the hash of its record.
    LeafHashMismatch,
    /// The Merkle root over the records is not the checkpoint's.
    RootMismatch,
    /// The bundle holds fewer or more records than the checkpoint's size: cut short, or
    /// extended.
    CountMismatch,
    /// A line's `json` is not the JSON of its record.
    JsonMismatch,
    /// A filtered bundle's line whose inclusion proof does not lead to the signed root, or
    /// whose seq lies outside the signed tree.
    BadProof,
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFault {
    pub kind: ExportFaultKind,
    /// The record's seq: the line's, else the one expected at that line.
    pub seq: Option<u64>,
    /// 1-based line number in the file (the header is line 1).
    pub line: Option<u64>,
    pub detail: String,
}

impl fmt::Display for ExportFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if let Some(seq) = self.seq {
            write!(f, " seq={seq}")?;
        }
        if let Some(line) = self.line {
            write!(f, " line={line}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// How [`verify_export`] checks.
#[derive(Debug, Clone)]
pub struct ExportVerifyOptions {
    /// The tenant the bundle must be of; `None` accepts the header's.
    pub tenant: Option<TenantId>,
    /// Decode every record strictly (else only the hashes are checked, about twice as
    /// fast). Default true.
    pub decode_records: bool,
    /// Stop recording faults after this many (the count goes on in
    /// [`ExportReport::n_faults_dropped`]). Default 1000.
    pub max_faults: usize,
}

impl Default for ExportVerifyOptions {
    fn default() -> Self {
        Self {
            tenant: None,
            decode_records: true,
            max_faults: 1000,
        }
    }
}

/// What [`verify_export`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub faults: Vec<ExportFault>,
    /// Faults past [`ExportVerifyOptions::max_faults`], counted but not kept.
    pub n_faults_dropped: u64,
    /// The header's tenant.
    pub tenant: Option<String>,
    /// The header's origin.
    pub origin: Option<String>,
    /// The filters of a filtered bundle.
    pub filters: Option<String>,
    /// The size of the checkpoint, when it verified.
    pub checkpoint_size: Option<u64>,
    /// Record lines read.
    pub n_records: u64,
    /// Of those, removed records (a leaf hash without its record).
    pub n_removed: u64,
    /// The Merkle root over the records read, in file order.
    pub root: Option<merkle::Hash>,
    /// The checkpoint note of the header, when it verified with the pinned key: keep it as
    /// a trusted checkpoint of the log.
    pub checkpoint: Option<String>,
}

impl ExportReport {
    /// Whether the bundle verified: no fault, and a checkpoint signed by the pinned key.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.faults.is_empty() && self.n_faults_dropped == 0 && self.checkpoint.is_some()
    }
}

/// Verifies the export bundle read from `reader` against the pinned `verifier`; see the
/// module documentation for what is checked. Never fails: everything wrong, unreadable
/// input included, is a fault in the report.
pub fn verify_export(
    reader: impl BufRead,
    verifier: &NoteVerifier,
    options: &ExportVerifyOptions,
) -> ExportReport {
    let mut checker = Checker {
        options,
        report: ExportReport::default(),
    };
    checker.run(reader, verifier);
    checker.report
}

/// The header's facts once checked: what every record must agree with.
#[derive(Debug)]
struct Expected {
    tenant: Option<TenantId>,
    tree_size: u64,
    /// A filtered bundle: some kept records, each with its inclusion proof.
    filtered: bool,
    /// The verified checkpoint, if it verified.
    checkpoint: Option<Checkpoint>,
}

struct Checker<'a> {
    options: &'a ExportVerifyOptions,
    report: ExportReport,
}

impl Checker<'_> {
    fn fault(
        &mut self,
        kind: ExportFaultKind,
        seq: Option<u64>,
        line: Option<u64>,
        detail: String,
    ) {
        if self.report.faults.len() < self.options.max_faults {
            self.report.faults.push(ExportFault {
                kind,
                seq,
                line,
                detail,
            });
        } else {
            self.report.n_faults_dropped += 1;
        }
    }

    fn run(&mut self, mut reader: impl BufRead, verifier: &NoteVerifier) {
        let mut buf = Vec::new();
        let header = match read_line(&mut reader, &mut buf) {
            Ok(Line::Complete | Line::Unterminated) => self.header(&buf, verifier),
            Ok(Line::End) => {
                self.fault(
                    ExportFaultKind::BadHeader,
                    None,
                    Some(1),
                    "the file is empty".into(),
                );
                return;
            }
            Ok(Line::TooLong) => {
                self.fault(
                    ExportFaultKind::BadHeader,
                    None,
                    Some(1),
                    format!("the header line is longer than {MAX_LINE_BYTES} bytes"),
                );
                return;
            }
            Err(err) => {
                self.fault(ExportFaultKind::Unreadable, None, Some(1), err.to_string());
                return;
            }
        };
        let Some(expected) = header else {
            return;
        };
        if expected.filtered {
            self.filtered_records(reader, &mut buf, &expected);
        } else {
            self.records(reader, &mut buf, &expected);
        }
    }

    /// Checks the header line; `None` when it is too broken to check records against.
    fn header(&mut self, line: &[u8], verifier: &NoteVerifier) -> Option<Expected> {
        let header: ExportHeader = match serde_json::from_slice(line) {
            Ok(header) => header,
            Err(err) => {
                self.fault(
                    ExportFaultKind::BadHeader,
                    None,
                    Some(1),
                    format!("the first line is not an export header: {err}"),
                );
                return None;
            }
        };
        if header.format != ExportHeader::FORMAT {
            self.fault(
                ExportFaultKind::BadHeader,
                None,
                Some(1),
                format!(
                    "format {:?} is not {:?}, the one this verifier reads",
                    header.format,
                    ExportHeader::FORMAT
                ),
            );
            return None;
        }
        self.report.tenant = Some(header.tenant.clone());
        self.report.origin = Some(header.origin.clone());
        self.report.filters.clone_from(&header.filters);
        let tenant = match TenantId::parse(&header.tenant) {
            Ok(tenant) => Some(tenant),
            Err(err) => {
                self.fault(
                    ExportFaultKind::BadHeader,
                    None,
                    Some(1),
                    format!("tenant {:?} is not a tenant id: {err}", header.tenant),
                );
                None
            }
        };
        if let (Some(wanted), Some(found)) = (&self.options.tenant, &tenant)
            && wanted != found
        {
            self.fault(
                ExportFaultKind::BadHeader,
                None,
                Some(1),
                format!("the bundle is of tenant {found}, not {wanted}"),
            );
        }
        let expected_origin = format!("{}/{}", verifier.name(), header.tenant);
        if header.origin != expected_origin {
            self.fault(
                ExportFaultKind::BadHeader,
                None,
                Some(1),
                format!(
                    "origin {:?} is not {expected_origin:?}, the log of tenant {:?} under the pinned key",
                    header.origin, header.tenant
                ),
            );
        }
        let pinned = verifier.to_vkey_string();
        if header.verifier_key != pinned {
            self.fault(
                ExportFaultKind::KeyMismatch,
                None,
                Some(1),
                format!(
                    "the bundle says its key is {:?}, the pinned key is {pinned:?}",
                    header.verifier_key
                ),
            );
        }
        let checkpoint = self.checkpoint(&header, verifier);
        Some(Expected {
            tenant,
            tree_size: header.tree_size,
            filtered: header.filters.is_some(),
            checkpoint,
        })
    }

    /// Opens the header's checkpoint with the pinned key and checks it names this log at
    /// the header's size.
    fn checkpoint(&mut self, header: &ExportHeader, verifier: &NoteVerifier) -> Option<Checkpoint> {
        let opened = match note::open(&header.checkpoint, std::slice::from_ref(verifier)) {
            Ok(opened) => opened,
            Err(err) => {
                self.fault(
                    ExportFaultKind::BadSignature,
                    None,
                    Some(1),
                    format!("the checkpoint does not verify with the pinned key: {err}"),
                );
                return None;
            }
        };
        let checkpoint = match Checkpoint::parse(&opened.text) {
            Ok(checkpoint) => checkpoint,
            Err(err) => {
                self.fault(
                    ExportFaultKind::BadCheckpoint,
                    None,
                    Some(1),
                    format!("the signed checkpoint does not parse: {err}"),
                );
                return None;
            }
        };
        let mut usable = true;
        if checkpoint.origin() != header.origin {
            self.fault(
                ExportFaultKind::BadCheckpoint,
                None,
                Some(1),
                format!(
                    "the checkpoint is of log {:?}, the header of {:?}",
                    checkpoint.origin(),
                    header.origin
                ),
            );
            usable = false;
        }
        if checkpoint.size() != header.tree_size {
            self.fault(
                ExportFaultKind::BadCheckpoint,
                None,
                Some(1),
                format!(
                    "the checkpoint's tree size is {}, the header says {}",
                    checkpoint.size(),
                    header.tree_size
                ),
            );
        }
        if usable {
            self.report.checkpoint_size = Some(checkpoint.size());
            self.report.checkpoint = Some(header.checkpoint.clone());
            Some(checkpoint)
        } else {
            None
        }
    }

    /// Checks every record line, then the root and the count.
    fn records(&mut self, mut reader: impl BufRead, buf: &mut Vec<u8>, expected: &Expected) {
        let mut frontier = Frontier::new();
        // False once a line could not be hashed: the root over the file is then unknown.
        let mut tree_complete = true;
        let mut next_seq = 0u64;
        let mut line_no = 1u64;
        loop {
            line_no += 1;
            let line = match read_line(&mut reader, buf) {
                Ok(Line::End) => break,
                Ok(line) => line,
                Err(err) => {
                    self.fault(
                        ExportFaultKind::Unreadable,
                        Some(next_seq),
                        Some(line_no),
                        err.to_string(),
                    );
                    tree_complete = false;
                    break;
                }
            };
            self.report.n_records += 1;
            if line == Line::TooLong {
                self.fault(
                    ExportFaultKind::MalformedLine,
                    Some(next_seq),
                    Some(line_no),
                    format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                );
                tree_complete = false;
                next_seq += 1;
                continue;
            }
            let unterminated = line == Line::Unterminated;
            match self.record(buf, line_no, next_seq, expected, unterminated) {
                Some(Step::Leaf(seq, leaf)) => {
                    frontier.append(leaf, |_, _| {});
                    // A seq below the expected one (a repeat or swap) does not move the
                    // expectation back, so one swap is two faults, not a cascade.
                    next_seq = next_seq.max(seq.saturating_add(1));
                }
                Some(Step::Prefix(prefix)) => {
                    self.report.n_records += prefix.size() - 1;
                    next_seq = prefix.size();
                    frontier = prefix;
                }
                Some(Step::Unhashed(below)) => {
                    self.report.n_records += below - 1;
                    next_seq = below;
                    tree_complete = false;
                }
                None => {
                    tree_complete = false;
                    next_seq += 1;
                }
            }
        }
        let n_records = self.report.n_records;
        if tree_complete {
            self.report.root = Some(frontier.root());
        }
        if n_records != expected.tree_size {
            let detail = if n_records < expected.tree_size {
                format!(
                    "the bundle holds {n_records} records, the header promises {}: {} missing",
                    expected.tree_size,
                    expected.tree_size - n_records
                )
            } else {
                format!(
                    "the bundle holds {n_records} records, the header promises {}: {} too many",
                    expected.tree_size,
                    n_records - expected.tree_size
                )
            };
            self.fault(
                ExportFaultKind::CountMismatch,
                Some(n_records.min(expected.tree_size)),
                None,
                detail,
            );
        }
        let Some(checkpoint) = &expected.checkpoint else {
            return;
        };
        if checkpoint.size() != n_records && checkpoint.size() != expected.tree_size {
            self.fault(
                ExportFaultKind::CountMismatch,
                Some(n_records.min(checkpoint.size())),
                None,
                format!(
                    "the bundle holds {n_records} records, the signed checkpoint {}",
                    checkpoint.size()
                ),
            );
        }
        if tree_complete && n_records == checkpoint.size() && frontier.root() != *checkpoint.root()
        {
            self.fault(
                ExportFaultKind::RootMismatch,
                None,
                None,
                format!(
                    "the Merkle root over the {n_records} records is {}, the signed checkpoint's is {}",
                    BASE64.encode(frontier.root()),
                    BASE64.encode(checkpoint.root())
                ),
            );
        }
    }

    /// A prefix line: the first line, standing for records `0..removed_below`, all removed,
    /// with the hashes of their complete subtrees (the root check covers them); it must
    /// name the record that removed the last of them, later in the log.
    fn prefix_line(
        &mut self,
        parsed: &ExportLine,
        below: u64,
        first: bool,
        at: (Option<u64>, Option<u64>),
    ) -> Option<Step> {
        let hashes = decode_hashes(&parsed.subtree_hashes);
        let prefix = hashes.and_then(|hashes| Frontier::from_parts(below, hashes).ok());
        if !first || parsed.seq != 0 || below == 0 {
            let problem = "a prefix line is the first line, seq 0, and stands for records";
            self.fault(
                ExportFaultKind::MalformedLine,
                at.0,
                at.1,
                problem.to_owned(),
            );
            return None;
        }
        if parsed.removed_by.is_none_or(|by| by < below) {
            let problem = format!(
                "the prefix line's records 0..{below} must be removed by a record after them"
            );
            self.fault(ExportFaultKind::MalformedLine, at.0, at.1, problem);
        }
        self.report.n_removed += below;
        let Some(prefix) = prefix else {
            let problem = format!(
                "a prefix line of {below} records holds {} base64 subtree hashes, not {}",
                parsed.subtree_hashes.len(),
                below.count_ones()
            );
            self.fault(ExportFaultKind::MalformedLine, at.0, at.1, problem);
            return Some(Step::Unhashed(below));
        };
        Some(Step::Prefix(prefix))
    }

    /// A line of a removed record: its leaf hash stands for it in the tree (the root check
    /// covers it), and it must name the record that removed it, later in the log.
    fn removed_line(
        &mut self,
        parsed: &ExportLine,
        at: (Option<u64>, Option<u64>),
    ) -> Option<Step> {
        let leaf = BASE64
            .decode(parsed.leaf_hash.as_bytes())
            .ok()
            .and_then(|hash| merkle::Hash::try_from(hash.as_slice()).ok());
        let (Some(leaf), Some(by)) = (leaf, parsed.removed_by) else {
            self.fault(
                ExportFaultKind::MalformedLine,
                at.0,
                at.1,
                "a line without its record must be a removed record: a base64 leaf hash and \
                 removed_by"
                    .to_owned(),
            );
            return None;
        };
        if by <= parsed.seq {
            self.fault(
                ExportFaultKind::MalformedLine,
                at.0,
                at.1,
                format!(
                    "record {} cannot be removed by record {by}, before it",
                    parsed.seq
                ),
            );
        }
        self.report.n_removed += 1;
        Some(Step::Leaf(parsed.seq, leaf))
    }

    /// Checks one record line; returns its seq and the leaf hash of its record bytes (or
    /// the subtrees of a prefix line), or `None` when the line is too broken to hash.
    fn record(
        &mut self,
        line: &[u8],
        line_no: u64,
        expected_seq: u64,
        expected: &Expected,
        unterminated: bool,
    ) -> Option<Step> {
        let parsed: ExportLine = match serde_json::from_slice(line) {
            Ok(parsed) => parsed,
            Err(err) => {
                let cut = if unterminated {
                    " (the file ends in the middle of this line)"
                } else {
                    ""
                };
                self.fault(
                    ExportFaultKind::MalformedLine,
                    Some(expected_seq),
                    Some(line_no),
                    format!("not an export line{cut}: {err}"),
                );
                return None;
            }
        };
        let seq = parsed.seq;
        let at = (Some(seq), Some(line_no));
        if seq > expected_seq {
            self.fault(
                ExportFaultKind::SeqGap,
                at.0,
                at.1,
                if seq - expected_seq == 1 {
                    format!("seq {seq} comes where seq {expected_seq} was expected: it is missing")
                } else {
                    format!(
                        "seq {seq} comes where seq {expected_seq} was expected: seqs \
                         {expected_seq} to {} are missing",
                        seq - 1
                    )
                },
            );
        } else if seq < expected_seq {
            self.fault(
                ExportFaultKind::SeqOutOfOrder,
                at.0,
                at.1,
                format!("seq {seq} comes where seq {expected_seq} was expected"),
            );
        }
        if let Some(below) = parsed.removed_below {
            return self.prefix_line(&parsed, below, expected_seq == 0, at);
        }
        let Some(record) = &parsed.record else {
            return self.removed_line(&parsed, at);
        };
        let bytes = match BASE64.decode(record.as_bytes()) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.fault(
                    ExportFaultKind::MalformedLine,
                    at.0,
                    at.1,
                    format!("the record is not base64: {err}"),
                );
                return None;
            }
        };
        let leaf = self.check_record(&bytes, &parsed, expected, at);
        Some(Step::Leaf(seq, leaf))
    }

    /// Checks a record's bytes against its line: its leaf hash, its tenant, its seq, and the
    /// line's JSON (the record is decoded strictly when asked, or when there is JSON to
    /// compare). Returns the leaf hash of the bytes.
    fn check_record(
        &mut self,
        bytes: &[u8],
        parsed: &ExportLine,
        expected: &Expected,
        at: (Option<u64>, Option<u64>),
    ) -> merkle::Hash {
        let leaf = merkle::leaf_hash(bytes);
        if BASE64.encode(leaf) != parsed.leaf_hash {
            self.fault(
                ExportFaultKind::LeafHashMismatch,
                at.0,
                at.1,
                format!(
                    "the line's leaf hash is {:?}, the record's bytes hash to {:?}",
                    parsed.leaf_hash,
                    BASE64.encode(leaf)
                ),
            );
        }
        let header = if self.options.decode_records || parsed.json.is_some() {
            Record::decode(bytes).map(|record| {
                let json_matches = parsed
                    .json
                    .as_ref()
                    .is_none_or(|json| *json == record.to_json());
                (record.tenant().clone(), record.seq(), json_matches)
            })
        } else {
            veritrail_core::record::peek_header(bytes).map(|(tenant, seq)| (tenant, seq, true))
        };
        match header {
            Ok((tenant, record_seq, json_matches)) => {
                if let Some(expected_tenant) = &expected.tenant
                    && tenant != *expected_tenant
                {
                    self.fault(
                        ExportFaultKind::RecordMismatch,
                        at.0,
                        at.1,
                        format!(
                            "the record is of tenant {tenant}, the bundle of {expected_tenant}"
                        ),
                    );
                }
                if record_seq != parsed.seq {
                    self.fault(
                        ExportFaultKind::RecordMismatch,
                        at.0,
                        at.1,
                        format!("the record says seq {record_seq}, its line {}", parsed.seq),
                    );
                }
                if !json_matches {
                    self.fault(
                        ExportFaultKind::JsonMismatch,
                        at.0,
                        at.1,
                        "the line's json is not what its record's bytes say".to_owned(),
                    );
                }
            }
            Err(err) => self.fault(
                ExportFaultKind::UndecodableRecord,
                at.0,
                at.1,
                err.to_string(),
            ),
        }
        leaf
    }

    /// Checks every line of a filtered bundle: rising seqs inside the signed tree, each
    /// record checked, each inclusion proof leading to the signed root.
    fn filtered_records(
        &mut self,
        mut reader: impl BufRead,
        buf: &mut Vec<u8>,
        expected: &Expected,
    ) {
        let mut last_seq: Option<u64> = None;
        let mut line_no = 1u64;
        loop {
            line_no += 1;
            let line = match read_line(&mut reader, buf) {
                Ok(Line::End) => break,
                Ok(line) => line,
                Err(err) => {
                    self.fault(
                        ExportFaultKind::Unreadable,
                        None,
                        Some(line_no),
                        err.to_string(),
                    );
                    break;
                }
            };
            self.report.n_records += 1;
            if line == Line::TooLong {
                self.fault(
                    ExportFaultKind::MalformedLine,
                    None,
                    Some(line_no),
                    format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                );
                continue;
            }
            let parsed: ExportLine = match serde_json::from_slice(buf) {
                Ok(parsed) => parsed,
                Err(err) => {
                    self.fault(
                        ExportFaultKind::MalformedLine,
                        None,
                        Some(line_no),
                        format!("not an export line: {err}"),
                    );
                    continue;
                }
            };
            let seq = parsed.seq;
            let at = (Some(seq), Some(line_no));
            if let Some(last) = last_seq
                && seq <= last
            {
                self.fault(
                    ExportFaultKind::SeqOutOfOrder,
                    at.0,
                    at.1,
                    format!("seq {seq} comes after seq {last}"),
                );
            }
            last_seq = Some(last_seq.map_or(seq, |last| last.max(seq)));
            let Some(record) = &parsed.record else {
                self.fault(
                    ExportFaultKind::MalformedLine,
                    at.0,
                    at.1,
                    "a filtered bundle holds kept records only, each with its bytes".to_owned(),
                );
                continue;
            };
            let Ok(bytes) = BASE64.decode(record.as_bytes()) else {
                self.fault(
                    ExportFaultKind::MalformedLine,
                    at.0,
                    at.1,
                    "the record is not base64".to_owned(),
                );
                continue;
            };
            let leaf = self.check_record(&bytes, &parsed, expected, at);
            let Some(checkpoint) = &expected.checkpoint else {
                continue;
            };
            let verified = decode_hashes(&parsed.proof)
                .ok_or_else(|| "a proof hash is not base64 of 32 bytes".to_owned())
                .and_then(|proof| {
                    merkle::verify_inclusion(
                        &leaf,
                        seq,
                        checkpoint.size(),
                        &proof,
                        checkpoint.root(),
                    )
                    .map_err(|err| err.to_string())
                });
            if let Err(err) = verified {
                self.fault(
                    ExportFaultKind::BadProof,
                    at.0,
                    at.1,
                    format!(
                        "the record's inclusion proof in the signed tree of {} records does not verify: {err}",
                        checkpoint.size()
                    ),
                );
            }
        }
    }
}

/// Hashes given as base64 text; `None` when one is not base64 of 32 bytes.
fn decode_hashes(hashes: &[String]) -> Option<Vec<merkle::Hash>> {
    hashes
        .iter()
        .map(|hash| {
            let hash = BASE64.decode(hash.as_bytes()).ok()?;
            merkle::Hash::try_from(hash.as_slice()).ok()
        })
        .collect()
}

/// What a line adds to the tree.
enum Step {
    /// One leaf: its seq and hash.
    Leaf(u64, merkle::Hash),
    /// The removed records at the start of the log, as the frontier of their subtrees.
    Prefix(Frontier),
    /// A prefix line of so many records whose hashes are unusable: the root is unknown.
    Unhashed(u64),
}

/// How a line read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// A line ended by `\n` (not kept in the buffer).
    Complete,
    /// The last line of a file that does not end in `\n`.
    Unterminated,
    /// Longer than [`MAX_LINE_BYTES`]: the rest of it was skipped.
    TooLong,
    /// Nothing left.
    End,
}

/// Reads one line into `buf` without its `\n`, holding at most [`MAX_LINE_BYTES`] of it.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let n_read = reader.by_ref().take(limit).read_until(b'\n', buf)?;
    if n_read == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Complete);
    }
    if buf.len() > MAX_LINE_BYTES {
        // Skip the rest of the line without holding it.
        loop {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            match available.iter().position(|&byte| byte == b'\n') {
                Some(end) => {
                    reader.consume(end + 1);
                    break;
                }
                None => {
                    let n = available.len();
                    reader.consume(n);
                }
            }
        }
        return Ok(Line::TooLong);
    }
    Ok(Line::Unterminated)
}
