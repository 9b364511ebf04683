//! The offline verifier: checks a data directory against a pinned verifier key, with no
//! server running and without trusting anything the directory says about itself.
//!
//! It reads the journal from the first byte (the source of truth), and for every tenant:
//! decodes each record, checks that seqs run 0, 1, 2, ... with no gap, repeat or swap,
//! recomputes each leaf hash and the tree over them, and checks every signed checkpoint in
//! the journal (one per commit) against the pinned key and against the root of the records
//! before it. Damage is pinned down as closely as the data allows: a record's tenant and
//! seq, else its journal position. The derived files (offsets, and every stored node hash,
//! inner nodes included, since proofs are built from them) and the index's sync marker are
//! cross-checked up to the marker, which is how a journal cut at a frame boundary is caught.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use redb::{Database, ReadOnlyDatabase};
use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::TenantId;
use veritrail_core::merkle::{self, Frontier, NodeId};
use veritrail_core::note::{self, NoteVerifier};
use veritrail_core::record::{self, Record};

use crate::embedded::{split_checkpoint_entry, split_compacted_entry, split_prefix_entry};
use crate::index::{Marker, read_marker_from, redb_err};
use crate::journal::{self, EntryKind, Journal, ScanStop};
use crate::store::postorder_index;
use crate::store::{Removal, Removed, StoreError};

/// What kind of damage a [`Fault`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A segment or frame cannot be read as one (bad header, magic, length).
    DamagedJournal,
    /// A record or checkpoint entry fails its CRC32C.
    ChecksumMismatch,
    /// A record's bytes are not a valid canonical record.
    UndecodableRecord,
    /// Seqs skip forward: records are missing.
    SeqGap,
    /// A seq at or below one already seen: records repeated, inserted or reordered.
    SeqOutOfOrder,
    /// A signed checkpoint whose signature does not verify with the pinned key.
    BadSignature,
    /// A checkpoint that does not parse, or names another log.
    BadCheckpoint,
    /// A signed checkpoint whose size or root differs from the records before it.
    CheckpointMismatch,
    /// Records after the last checkpoint of their log: not covered by any signature.
    Unsigned,
    /// The index recorded more than the journal holds: committed data is missing.
    MissingCommitted,
    /// A derived file (record offsets, stored node hashes) disagrees with the journal.
    DerivedMismatch,
    /// A removal entry that does not decode, or is not reported by a record of its log
    /// just before it.
    BadRemoval,
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub tenant: Option<TenantId>,
    pub seq: Option<u64>,
    /// Global journal position of the frame or entry.
    pub pos: Option<u64>,
    pub detail: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if let Some(tenant) = &self.tenant {
            write!(f, " tenant={tenant}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, " seq={seq}")?;
        }
        if let Some(pos) = self.pos {
            write!(f, " pos={pos}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What a tenant's log looked like to the verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSummary {
    pub tenant: TenantId,
    pub n_records: u64,
    /// Size of the last checkpoint that verified.
    pub checkpoint_size: Option<u64>,
    pub root: merkle::Hash,
    /// Records removed by retention or erasure: still in the tree as leaf hashes.
    pub n_removed: u64,
    /// The removals, each with the record that reports it.
    pub removals: Vec<Removal>,
    /// The log starts with a prefix entry of this many removed records (0: it does not):
    /// only the hashes of their complete subtrees are kept.
    pub start: u64,
}

/// The verifier's findings.
#[derive(Debug, Default)]
pub struct Report {
    pub faults: Vec<Fault>,
    /// Not faults: e.g. an unacknowledged torn tail after a crash, which the server cuts on
    /// its next start.
    pub warnings: Vec<String>,
    pub tenants: Vec<TenantSummary>,
    pub n_records: u64,
    pub n_checkpoints: u64,
    pub bytes: u64,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.faults.is_empty()
    }
}

/// How thorough a verification is.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Also decode every record fully, checking that it is a valid canonical record (not
    /// only that its bytes are the ones the tree and signatures commit to). About 2.5
    /// times slower.
    pub decode_records: bool,
    /// Signed checkpoints the user holds from elsewhere (receipts, an earlier
    /// verification): the log must contain each, at its size, with its root. This is what
    /// catches a log cut at its end together with its index.
    pub trusted_checkpoints: Vec<String>,
}

/// What a live store reports for a scrub: where its journal ended and how large each log
/// was at that moment. Everything before `journal_end` is immutable, and the derived files
/// hold the entries of every record below `sizes` (written, maybe not yet synced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveBounds {
    pub journal_end: u64,
    pub sizes: HashMap<TenantId, u64>,
}

/// A trusted checkpoint that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("trusted checkpoint {index}: {reason}")]
pub struct TrustedCheckpointError {
    pub index: usize,
    pub reason: String,
}

/// Opens the trusted checkpoints against the pinned key, by tenant.
fn open_trusted(
    notes: &[String],
    verifier: &NoteVerifier,
) -> Result<BTreeMap<TenantId, Vec<Checkpoint>>, TrustedCheckpointError> {
    let mut trusted: BTreeMap<TenantId, Vec<Checkpoint>> = BTreeMap::new();
    for (index, text) in notes.iter().enumerate() {
        let error = |reason: String| TrustedCheckpointError { index, reason };
        let opened = note::open(text, std::slice::from_ref(verifier))
            .map_err(|err| error(err.to_string()))?;
        let checkpoint = Checkpoint::parse(&opened.text).map_err(|err| error(err.to_string()))?;
        let tenant = checkpoint
            .origin()
            .strip_prefix(&format!("{}/", verifier.name()))
            .and_then(|tenant| TenantId::parse(tenant).ok())
            .ok_or_else(|| {
                error(format!(
                    "origin {:?} is not a log of this key",
                    checkpoint.origin()
                ))
            })?;
        trusted.entry(tenant).or_default().push(checkpoint);
    }
    Ok(trusted)
}

/// Verifies the ledger in `ledger_dir` (the store's directory) against `verifier`.
/// `progress` is told the journal bytes verified so far and the total.
///
/// `Err` only when the directory cannot be read at all; damage is reported in the
/// [`Report`].
pub fn verify_ledger_dir(
    ledger_dir: &Path,
    verifier: &NoteVerifier,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> io::Result<Report> {
    verify_dir(ledger_dir, verifier, options, None, &mut |done, total| {
        progress(done, total);
        true
    })
}

/// [`verify_ledger_dir`] on the directory of a store that is running: only the journal
/// before `bounds.journal_end` is read, and the derived files are compared with it for
/// every record below `bounds.sizes` (the index, which the store holds open, is not read).
/// This is the server's scrub: it checks the journal's checksums, every record's leaf
/// hash, every stored node hash, the record offsets and every signed checkpoint.
///
/// `progress` is told the journal bytes verified so far and the total after each frame;
/// answering `false` stops the verification with an [`io::ErrorKind::Interrupted`] error.
pub fn verify_live_ledger_dir(
    ledger_dir: &Path,
    verifier: &NoteVerifier,
    bounds: &LiveBounds,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> io::Result<Report> {
    verify_dir(
        ledger_dir,
        verifier,
        &VerifyOptions::default(),
        Some(bounds),
        progress,
    )
}

fn verify_dir(
    ledger_dir: &Path,
    verifier: &NoteVerifier,
    options: &VerifyOptions,
    live: Option<&LiveBounds>,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> io::Result<Report> {
    let trusted = open_trusted(&options.trusted_checkpoints, verifier)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    let mut report = Report::default();
    if !ledger_dir.join("journal").is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} holds no ledger journal", ledger_dir.display()),
        ));
    }
    let journal_dir = ledger_dir.join("journal");
    let opened = match live {
        Some(live) => Journal::open_read_only_until(&journal_dir, live.journal_end),
        None => Journal::open_read_only(&journal_dir),
    };
    let journal = match opened {
        Ok(journal) => journal,
        Err(err) if err.kind() == io::ErrorKind::InvalidData => {
            report.faults.push(fault(
                FaultKind::DamagedJournal,
                None,
                None,
                None,
                err.to_string(),
            ));
            return Ok(report);
        }
        Err(err) => return Err(err),
    };
    if let Some(path) = journal.torn_segment() {
        report.warnings.push(format!(
            "{} is a segment whose creation a crash cut short (no complete header, no data); \
             the server removes it on its next start",
            path.display()
        ));
    }
    let marker = match live {
        Some(live) => Some(Marker {
            applied_pos: live.journal_end,
            sizes: live.sizes.clone(),
            ..Marker::default()
        }),
        None => read_marker(ledger_dir, &mut report),
    };
    let mut checker = Checker {
        ledger_dir,
        verifier,
        decode_records: options.decode_records,
        trusted,
        marker_sizes: marker.as_ref().map(|m| m.sizes.clone()).unwrap_or_default(),
        tenants: BTreeMap::new(),
        frame_appended: BTreeMap::new(),
        frame_signed: HashSet::new(),
        report,
    };
    let total = journal.end();
    let durable_until = marker.as_ref().map_or(0, |marker| marker.applied_pos);
    let stop = journal.scan_lenient(
        journal.start(),
        durable_until,
        |frame_pos, payload, checksum_ok| {
            checker.frame(frame_pos, payload, checksum_ok);
            if progress(frame_pos, total) {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "the verification was stopped",
                ))
            }
        },
    )?;
    progress(total, total);
    let journal_end = match stop {
        ScanStop::End(pos) => pos,
        ScanStop::TornTail { pos, reason } => {
            checker.report.warnings.push(format!(
                "the journal ends in an incomplete write at position {pos} ({reason}); it was \
                 never acknowledged and the server removes it on its next start"
            ));
            pos
        }
        ScanStop::Corrupt { pos, reason } => {
            checker.report.faults.push(fault(
                FaultKind::DamagedJournal,
                None,
                None,
                Some(pos),
                reason,
            ));
            pos
        }
    };
    checker.report.bytes = journal_end;
    if let Some(marker) = &marker
        && journal_end < marker.applied_pos
    {
        checker.report.faults.push(fault(
            FaultKind::MissingCommitted,
            None,
            None,
            Some(journal_end),
            format!(
                "the journal ends at position {journal_end} but was synced up to {}",
                marker.applied_pos
            ),
        ));
    }
    Ok(checker.finish())
}

/// The index's sync marker, if the index is there and readable.
fn read_marker(ledger_dir: &Path, report: &mut Report) -> Option<Marker> {
    let path = ledger_dir.join("index.redb");
    if !path.exists() {
        report
            .warnings
            .push("no index.redb: cannot check that the journal is complete".into());
        return None;
    }
    // A server that did not close cleanly leaves an index that needs a repair redb will not
    // do read-only: read a repaired copy instead, leaving the original untouched.
    let marker = ReadOnlyDatabase::open(&path)
        .map_err(redb_err)
        .and_then(|db| read_marker_from(&db, 0))
        .or_else(|_| {
            static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let copy = std::env::temp_dir().join(format!(
                "veritrail-verify-{}-{}.redb",
                std::process::id(),
                COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let result = std::fs::copy(&path, &copy)
                .map_err(StoreError::Unavailable)
                .and_then(|_| Database::open(&copy).map_err(redb_err))
                .and_then(|db| read_marker_from(&db, 0));
            let _ = std::fs::remove_file(&copy);
            result
        });
    match marker {
        Ok(marker) => Some(marker),
        Err(err) => {
            report.warnings.push(format!(
                "cannot read index.redb ({err}): cannot check that the journal is complete"
            ));
            None
        }
    }
}

struct Checker<'a> {
    ledger_dir: &'a Path,
    verifier: &'a NoteVerifier,
    decode_records: bool,
    /// Checkpoints from outside the directory that the log must contain.
    trusted: BTreeMap<TenantId, Vec<Checkpoint>>,
    /// Tenant sizes at the sync marker: the derived files are durable up to these.
    marker_sizes: HashMap<TenantId, u64>,
    tenants: BTreeMap<TenantId, TenantCheck>,
    /// Tenants the current frame appends to (with their first seq), and those it signs.
    frame_appended: BTreeMap<TenantId, u64>,
    frame_signed: HashSet<TenantId>,
    report: Report,
}

struct TenantCheck {
    /// Records whose bodies compaction took out: each must be removed by a removal.
    compacted: Vec<u64>,
    next_seq: u64,
    frontier: Frontier,
    checkpoint_size: Option<u64>,
    derived: Option<Derived>,
    removed: Removed,
    removals: Vec<Removal>,
    /// The size of the log's prefix entry, if it starts with one.
    start: u64,
}

fn fault(
    kind: FaultKind,
    tenant: Option<&TenantId>,
    seq: Option<u64>,
    pos: Option<u64>,
    detail: impl Into<String>,
) -> Fault {
    Fault {
        kind,
        tenant: tenant.cloned(),
        seq,
        pos,
        detail: detail.into(),
    }
}

impl Checker<'_> {
    fn tenant(&mut self, tenant: &TenantId) -> &mut TenantCheck {
        if !self.tenants.contains_key(tenant) {
            let synced = self.marker_sizes.get(tenant).copied().unwrap_or(0);
            let derived = Derived::open(
                &self.ledger_dir.join("tenants").join(tenant.as_str()),
                synced,
            );
            self.tenants.insert(
                tenant.clone(),
                TenantCheck {
                    compacted: Vec::new(),
                    next_seq: 0,
                    frontier: Frontier::new(),
                    checkpoint_size: None,
                    derived,
                    removed: Removed::default(),
                    removals: Vec::new(),
                    start: 0,
                },
            );
        }
        self.tenants.get_mut(tenant).expect("inserted above")
    }

    fn frame(&mut self, frame_pos: u64, payload: &[u8], checksum_ok: bool) {
        let n_faults = self.report.faults.len();
        self.frame_appended.clear();
        self.frame_signed.clear();
        for entry in journal::parse_entries_lenient(frame_pos, payload) {
            match entry {
                Ok(entry) => match entry.kind {
                    EntryKind::Record => self.record(entry.pos, entry.body, entry.checksum_ok),
                    EntryKind::Checkpoint => {
                        self.checkpoint(entry.pos, entry.body, entry.checksum_ok);
                    }
                    EntryKind::Removal => self.removal(entry.pos, entry.body, entry.checksum_ok),
                    EntryKind::Compacted => {
                        self.compacted(entry.pos, entry.body, entry.checksum_ok);
                    }
                    EntryKind::Prefix => self.prefix(entry.pos, entry.body, entry.checksum_ok),
                },
                Err((pos, reason)) => {
                    self.report.faults.push(fault(
                        FaultKind::DamagedJournal,
                        None,
                        None,
                        Some(pos),
                        reason,
                    ));
                }
            }
        }
        if !checksum_ok && self.report.faults.len() == n_faults {
            self.report.faults.push(fault(
                FaultKind::DamagedJournal,
                None,
                None,
                Some(frame_pos),
                "frame checksum mismatch",
            ));
        }
        // Every commit signs a checkpoint for each tenant it appended to.
        for (tenant, first_seq) in std::mem::take(&mut self.frame_appended) {
            if !self.frame_signed.contains(&tenant) {
                self.report.faults.push(fault(
                    FaultKind::Unsigned,
                    Some(&tenant),
                    Some(first_seq),
                    Some(frame_pos),
                    format!("a commit appended records from seq {first_seq} without signing a checkpoint"),
                ));
            }
        }
    }

    fn record(&mut self, pos: u64, body: &[u8], checksum_ok: bool) {
        self.report.n_records += 1;
        let (tenant, seq) = match record::peek_header(body) {
            Ok(header) => header,
            Err(err) => {
                let kind = if checksum_ok {
                    FaultKind::UndecodableRecord
                } else {
                    FaultKind::ChecksumMismatch
                };
                self.report.faults.push(fault(
                    kind,
                    None,
                    None,
                    Some(pos),
                    format!("record: {err}"),
                ));
                return;
            }
        };
        if !checksum_ok {
            self.report.faults.push(fault(
                FaultKind::ChecksumMismatch,
                Some(&tenant),
                Some(seq),
                Some(pos),
                "record bytes do not match their checksum",
            ));
        }
        if self.is_left_over(&tenant, seq) {
            return;
        }
        if self.decode_records
            && let Err(err) = Record::decode(body)
        {
            self.report.faults.push(fault(
                FaultKind::UndecodableRecord,
                Some(&tenant),
                Some(seq),
                Some(pos),
                err.to_string(),
            ));
        }
        self.leaf(&tenant, seq, pos, body.len(), merkle::leaf_hash(body));
    }

    /// A record whose body compaction took out: its leaf hash stands in its place, and a
    /// removal must name it (checked at the end, since removals come after their records).
    fn compacted(&mut self, pos: u64, body: &[u8], checksum_ok: bool) {
        self.report.n_records += 1;
        let (tenant, seq, hash) = match split_compacted_entry(body) {
            Ok(parts) if checksum_ok => parts,
            Ok(_) | Err(_) => {
                self.report.faults.push(fault(
                    if checksum_ok {
                        FaultKind::DamagedJournal
                    } else {
                        FaultKind::ChecksumMismatch
                    },
                    None,
                    None,
                    Some(pos),
                    "a compacted record's entry is damaged",
                ));
                return;
            }
        };
        if self.is_left_over(&tenant, seq) {
            return;
        }
        self.tenant(&tenant).compacted.push(seq);
        self.leaf(&tenant, seq, pos, 0, hash);
    }

    /// An entry of seq (or checkpoint size) `seq` below the prefix its log starts with:
    /// left by a compaction cut short, which the next one drops; not part of the tree.
    fn is_left_over(&mut self, tenant: &TenantId, seq: u64) -> bool {
        seq < self.tenant(tenant).start
    }

    /// A log's first entry standing for its first records, all removed: the tree goes on
    /// from the hashes of their complete subtrees (which the next checkpoint's root
    /// covers); every record below it must be named by a recorded removal (checked at the
    /// end, as removals come later).
    fn prefix(&mut self, pos: u64, body: &[u8], checksum_ok: bool) {
        let (tenant, prefix) = match split_prefix_entry(body) {
            Ok(parts) if checksum_ok => parts,
            Ok(_) | Err(_) => {
                let kind = if checksum_ok {
                    FaultKind::DamagedJournal
                } else {
                    FaultKind::ChecksumMismatch
                };
                let detail = "a prefix entry is damaged";
                self.report
                    .faults
                    .push(fault(kind, None, None, Some(pos), detail));
                return;
            }
        };
        let check = self.tenant(&tenant);
        if check.next_seq != 0 || check.start != 0 {
            let detail = "a prefix entry after its log's first entry";
            self.report.faults.push(fault(
                FaultKind::BadRemoval,
                Some(&tenant),
                Some(prefix.size()),
                Some(pos),
                detail,
            ));
            return;
        }
        let derived = check
            .derived
            .as_mut()
            .map(|derived| derived.check_prefix(&prefix));
        check.next_seq = prefix.size();
        check.start = prefix.size();
        check.frontier = prefix;
        if let Some(Err(detail)) = derived {
            self.report.faults.push(fault(
                FaultKind::DerivedMismatch,
                Some(&tenant),
                None,
                Some(pos),
                detail,
            ));
        }
    }

    /// Leaf `seq` of `tenant`, at journal position `pos` with a body of `len` bytes: its
    /// frame, its place in the sequence, the tree, the trusted checkpoints and the derived
    /// files.
    fn leaf(&mut self, tenant: &TenantId, seq: u64, pos: u64, len: usize, leaf_hash: merkle::Hash) {
        let tenant = tenant.clone();
        self.frame_appended.entry(tenant.clone()).or_insert(seq);
        let trusted = self.trusted.remove(&tenant);
        let check = self.tenant(&tenant);
        let expected = check.next_seq;
        check.next_seq = check.next_seq.max(seq.saturating_add(1));
        // The nodes this leaf completes (itself first): every one is checked against the
        // stored `nodes` file, inner hashes included, since proofs are built from them.
        let mut completed: Vec<(NodeId, merkle::Hash)> = Vec::with_capacity(8);
        check
            .frontier
            .append(leaf_hash, |id, hash| completed.push((id, hash)));
        let size = check.frontier.size();
        // The root costs O(log n) hashes: only for sizes a trusted checkpoint names.
        let trusted_root = trusted
            .iter()
            .flatten()
            .find(|trusted| trusted.size() == size)
            .map(|trusted| (*trusted.root(), check.frontier.root()));
        let derived = check
            .derived
            .as_mut()
            .map(|derived| derived.check(seq, pos, len, &completed));
        let mut faults = Vec::new();
        if seq > expected {
            faults.push(fault(
                FaultKind::SeqGap,
                Some(&tenant),
                Some(seq),
                Some(pos),
                format!("records {expected}..{seq} are missing"),
            ));
        } else if seq < expected {
            faults.push(fault(
                FaultKind::SeqOutOfOrder,
                Some(&tenant),
                Some(seq),
                Some(pos),
                format!("seq {seq} comes after seq {}", expected - 1),
            ));
        }
        if let Some(trusted) = trusted {
            self.trusted.insert(tenant.clone(), trusted);
        }
        if let Some((trusted, root)) = trusted_root
            && trusted != root
        {
            faults.push(fault(
                FaultKind::CheckpointMismatch,
                Some(&tenant),
                Some(size),
                Some(pos),
                format!("the log's first {size} records do not match the trusted checkpoint"),
            ));
        }
        if let Some(Err(detail)) = derived {
            faults.push(fault(
                FaultKind::DerivedMismatch,
                Some(&tenant),
                Some(seq),
                Some(pos),
                detail,
            ));
        }
        self.report.faults.extend(faults);
    }

    fn checkpoint(&mut self, pos: u64, body: &[u8], checksum_ok: bool) {
        self.report.n_checkpoints += 1;
        let (tenant, note_text) = match split_checkpoint_entry(body) {
            Ok(parts) => parts,
            Err(reason) => {
                let kind = if checksum_ok {
                    FaultKind::BadCheckpoint
                } else {
                    FaultKind::ChecksumMismatch
                };
                self.report
                    .faults
                    .push(fault(kind, None, None, Some(pos), reason));
                return;
            }
        };
        if !checksum_ok {
            self.report.faults.push(fault(
                FaultKind::ChecksumMismatch,
                Some(&tenant),
                None,
                Some(pos),
                "checkpoint entry does not match its checksum",
            ));
        }
        let opened = match note::open(note_text, std::slice::from_ref(self.verifier)) {
            Ok(opened) => opened,
            Err(err) => {
                self.report.faults.push(fault(
                    FaultKind::BadSignature,
                    Some(&tenant),
                    None,
                    Some(pos),
                    format!("checkpoint: {err}"),
                ));
                return;
            }
        };
        let checkpoint = match Checkpoint::parse(&opened.text) {
            Ok(checkpoint) => checkpoint,
            Err(err) => {
                self.report.faults.push(fault(
                    FaultKind::BadCheckpoint,
                    Some(&tenant),
                    None,
                    Some(pos),
                    err.to_string(),
                ));
                return;
            }
        };
        let wanted_origin = format!("{}/{tenant}", self.verifier.name());
        if checkpoint.origin() != wanted_origin {
            self.report.faults.push(fault(
                FaultKind::BadCheckpoint,
                Some(&tenant),
                None,
                Some(pos),
                format!(
                    "checkpoint of log {:?} filed under tenant {tenant}",
                    checkpoint.origin()
                ),
            ));
            return;
        }
        if self.is_left_over(&tenant, checkpoint.size()) {
            return;
        }
        self.frame_signed.insert(tenant.clone());
        let check = self.tenant(&tenant);
        let size = check.frontier.size();
        let root = check.frontier.root();
        check.checkpoint_size = Some(checkpoint.size());
        if checkpoint.size() != size || *checkpoint.root() != root {
            let detail = if checkpoint.size() == size {
                format!("the signed root of size {size} differs from the root of the records")
            } else {
                format!(
                    "the checkpoint signs {} records but the journal holds {size} before it",
                    checkpoint.size()
                )
            };
            self.report.faults.push(fault(
                FaultKind::CheckpointMismatch,
                Some(&tenant),
                Some(checkpoint.size()),
                Some(pos),
                detail,
            ));
        }
    }

    /// A removal entry: well formed, and reported by a record of the same log in this
    /// frame (so, already seen).
    fn removal(&mut self, pos: u64, body: &[u8], checksum_ok: bool) {
        let (tenant, removal) = match crate::embedded::split_removal_entry(body) {
            Ok(parsed) if checksum_ok => parsed,
            Ok(_) => {
                let kind = FaultKind::ChecksumMismatch;
                let detail = "removal entry checksum mismatch";
                self.report
                    .faults
                    .push(fault(kind, None, None, Some(pos), detail));
                return;
            }
            Err(reason) => {
                let kind = FaultKind::BadRemoval;
                self.report
                    .faults
                    .push(fault(kind, None, None, Some(pos), reason));
                return;
            }
        };
        let reported_here = self
            .frame_appended
            .iter()
            .any(|(appended, first_seq)| appended == &tenant && *first_seq <= removal.by_seq);
        let check = self.tenant(&tenant);
        // A removal whose reporting record is below the log's prefix lost its record then.
        let reported_here = reported_here || removal.by_seq < check.start;
        if !reported_here || removal.by_seq >= check.next_seq {
            self.report.faults.push(fault(
                FaultKind::BadRemoval,
                Some(&tenant),
                Some(removal.by_seq),
                Some(pos),
                "a removal whose reporting record is not in its commit",
            ));
            return;
        }
        check.removed.add(&removal);
        check.removals.push(removal);
    }

    fn finish(mut self) -> Report {
        for (tenant, trusted) in &self.trusted {
            let size = self
                .tenants
                .get(tenant)
                .map_or(0, |check| check.frontier.size());
            for checkpoint in trusted.iter().filter(|c| c.size() > size) {
                self.report.faults.push(fault(
                    FaultKind::MissingCommitted,
                    Some(tenant),
                    Some(size),
                    None,
                    format!(
                        "the log holds {size} records but a trusted checkpoint signs {}",
                        checkpoint.size()
                    ),
                ));
            }
        }
        for (tenant, check) in &self.tenants {
            for &seq in &check.compacted {
                if check.removed.by(seq).is_none() {
                    self.report.faults.push(fault(
                        FaultKind::BadRemoval,
                        Some(tenant),
                        Some(seq),
                        None,
                        "the record's body is gone (compacted) but no recorded removal names it",
                    ));
                }
            }
            let first_kept = check.removed.next_kept(0);
            if first_kept < check.start {
                self.report.faults.push(fault(
                    FaultKind::BadRemoval,
                    Some(tenant),
                    Some(first_kept),
                    None,
                    format!(
                        "the log starts after {} removed records but no recorded removal names seq {first_kept}",
                        check.start
                    ),
                ));
            }
            let size = check.frontier.size();
            if check.checkpoint_size != Some(size) {
                let from = check.checkpoint_size.unwrap_or(0);
                self.report.faults.push(fault(
                    FaultKind::Unsigned,
                    Some(tenant),
                    Some(from),
                    None,
                    format!("records {from}..{size} are not covered by a signed checkpoint"),
                ));
            }
            self.report.tenants.push(TenantSummary {
                tenant: tenant.clone(),
                n_records: size,
                checkpoint_size: check.checkpoint_size,
                root: check.frontier.root(),
                n_removed: check.removed.count(),
                removals: check.removals.clone(),
                start: check.start,
            });
        }
        let mut marker_sizes: Vec<_> = self.marker_sizes.iter().collect();
        marker_sizes.sort();
        for (tenant, &synced) in marker_sizes {
            let found = self
                .tenants
                .get(tenant)
                .map_or(0, |check| check.frontier.size());
            if synced > found {
                self.report.faults.push(fault(
                    FaultKind::MissingCommitted,
                    Some(tenant),
                    Some(found),
                    None,
                    format!("the index recorded {synced} records, the journal holds {found}"),
                ));
            }
        }
        self.report
    }
}

/// Reads a tenant's derived files forward, a window at a time, to compare them with the
/// journal for the records that were synced (seq below the marker's size).
struct Derived {
    offsets: Window,
    nodes: Window,
    synced: u64,
}

impl Derived {
    fn open(dir: &Path, synced: u64) -> Option<Derived> {
        let offsets = File::open(dir.join("offsets")).ok()?;
        let nodes = File::open(dir.join("nodes")).ok()?;
        Some(Derived {
            offsets: Window::new(offsets),
            nodes: Window::new(nodes),
            synced,
        })
    }

    /// Checks record `seq`'s offset entry and the stored hash of every node its leaf
    /// completes (`completed`: the leaf first, then its new parents).
    fn check(
        &mut self,
        seq: u64,
        pos: u64,
        len: usize,
        completed: &[(NodeId, merkle::Hash)],
    ) -> Result<(), String> {
        if seq >= self.synced {
            return Ok(());
        }
        let offset = self
            .offsets
            .read(seq * 12, 12)
            .ok_or("offsets file is too short")?;
        let stored_pos = u64::from_be_bytes(offset[..8].try_into().expect("8 bytes"));
        let stored_len = u32::from_be_bytes(offset[8..].try_into().expect("4 bytes"));
        if stored_pos != pos || stored_len as usize != len {
            return Err(format!(
                "offsets file places the record at position {stored_pos} ({stored_len} bytes)"
            ));
        }
        for (id, hash) in completed {
            let node_pos = postorder_index(*id) * merkle::HASH_LEN as u64;
            let stored = self
                .nodes
                .read(node_pos, merkle::HASH_LEN)
                .ok_or("nodes file is too short")?;
            if stored != hash {
                return Err(if id.level == 0 {
                    "the stored leaf hash differs from the hash of the record".to_owned()
                } else {
                    format!(
                        "the stored hash of node (level {}, index {}) differs from the hash of the records under it: proofs through it would not verify",
                        id.level, id.index
                    )
                });
            }
        }
        Ok(())
    }
}

impl Derived {
    /// Checks the stored hashes of a prefix entry's subtrees.
    fn check_prefix(&mut self, prefix: &Frontier) -> Result<(), String> {
        if prefix.size() > self.synced {
            return Ok(());
        }
        for (id, hash) in Frontier::node_ids(prefix.size())
            .into_iter()
            .zip(prefix.hashes())
        {
            let node_pos = postorder_index(id) * merkle::HASH_LEN as u64;
            let stored = self
                .nodes
                .read(node_pos, merkle::HASH_LEN)
                .ok_or("nodes file is too short")?;
            if stored != hash {
                return Err(format!(
                    "the stored hash of node (level {}, index {}) differs from the log's prefix entry",
                    id.level, id.index
                ));
            }
        }
        Ok(())
    }
}

/// A forward-moving read window over a file.
struct Window {
    file: File,
    start: u64,
    buf: Vec<u8>,
}

const WINDOW_BYTES: usize = 1 << 20;

impl Window {
    fn new(file: File) -> Self {
        Self {
            file,
            start: 0,
            buf: Vec::new(),
        }
    }

    fn read(&mut self, pos: u64, len: usize) -> Option<&[u8]> {
        let end = pos + len as u64;
        if pos < self.start || end > self.start + self.buf.len() as u64 {
            self.buf.resize(WINDOW_BYTES.max(len), 0);
            let n_read = read_up_to(&self.file, &mut self.buf, pos).ok()?;
            self.buf.truncate(n_read);
            self.start = pos;
        }
        let at = usize::try_from(pos - self.start).ok()?;
        self.buf.get(at..at + len)
    }
}

fn read_up_to(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], pos + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
