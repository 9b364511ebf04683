//! The journal: append-only segment files of checksummed frames, the embedded store's
//! source of truth.
//!
//! One frame holds one group commit (the records and checkpoints of every tenant it
//! touched) and is written with a single `write` followed by `fdatasync`, so a commit costs
//! one sync whatever the number of events or tenants. A frame carries its length and a
//! CRC32C of its payload; each entry inside carries its own CRC32C, so a record read at
//! random is checked without reading its frame. The byte layout is specified in
//! `docs/format.md` ("Journal segments").
//!
//! Positions are global: a segment named `{base:020}.seg` holds bytes `base..base + len`,
//! and the next segment's base is at least `base + len` (exactly, until compaction rewrites
//! the segment shorter). A position names at most one entry for the life of the data
//! directory: compaction moves the entries of a sealed segment within its range only.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::store::StoreError;
use crate::vfs::{OpenMode, RealFs, Vfs, VfsFile};

pub(crate) const SEGMENT_MAGIC: &[u8; 4] = b"VTLJ";
pub(crate) const SEGMENT_VERSION: u32 = 1;
pub(crate) const SEGMENT_HEADER_BYTES: usize = 16;
pub(crate) const SEGMENT_HEADER_LEN: u64 = SEGMENT_HEADER_BYTES as u64;
pub(crate) const FRAME_MAGIC: &[u8; 4] = b"VTF1";
pub(crate) const FRAME_HEADER_LEN: usize = 12;
pub(crate) const ENTRY_HEADER_LEN: usize = 9;
/// Frames larger than this are refused on write and treated as corrupt on read.
pub const MAX_FRAME_BYTES: usize = 1 << 30;

/// Kind byte of a journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Body: one canonical record.
    Record = 1,
    /// Body: tenant length (1 byte), tenant, signed checkpoint note.
    Checkpoint = 2,
    /// Body: tenant length (1 byte), tenant, the reporting record's seq (u64), the
    /// removal's scope (`Removal::encode_scope`).
    Removal = 3,
    /// Body: tenant length (1 byte), tenant, seq (u64), leaf hash (32 bytes): a removed
    /// record whose body compaction took out, in the record's place.
    Compacted = 4,
    /// Body: tenant length (1 byte), tenant, size `n` (u64), then the hashes of the
    /// complete subtrees `0..n` splits into (largest first, 32 bytes each): the start of a
    /// log whose first `n` records were all removed, as the tenant's first entry.
    Prefix = 5,
}

impl EntryKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Record),
            2 => Some(Self::Checkpoint),
            3 => Some(Self::Removal),
            4 => Some(Self::Compacted),
            5 => Some(Self::Prefix),
            _ => None,
        }
    }
}

/// Builds one frame's payload entry by entry.
#[derive(Debug, Default)]
pub struct FrameBuilder {
    buf: Vec<u8>,
}

impl FrameBuilder {
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + FRAME_HEADER_LEN);
        buf.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        Self { buf }
    }

    /// Appends an entry and returns its offset from the start of the frame.
    pub fn push(&mut self, kind: EntryKind, body_parts: &[&[u8]]) -> usize {
        let offset = self.buf.len();
        let body_len: usize = body_parts.iter().map(|part| part.len()).sum();
        let mut crc = 0;
        for part in body_parts {
            crc = crc32c::crc32c_append(crc, part);
        }
        self.buf.push(kind as u8);
        self.buf.extend_from_slice(&len_u32(body_len).to_be_bytes());
        self.buf.extend_from_slice(&crc.to_be_bytes());
        for part in body_parts {
            self.buf.extend_from_slice(part);
        }
        offset
    }

    /// No entry pushed yet.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= FRAME_HEADER_LEN
    }

    /// The finished frame, header included.
    pub fn finish(mut self) -> Vec<u8> {
        let payload_len = self.buf.len() - FRAME_HEADER_LEN;
        let crc = crc32c::crc32c(&self.buf[FRAME_HEADER_LEN..]);
        self.buf[..4].copy_from_slice(FRAME_MAGIC);
        self.buf[4..8].copy_from_slice(&len_u32(payload_len).to_be_bytes());
        self.buf[8..12].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }
}

/// Lengths inside the journal are u32; every producer is bounded far below that.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("journal lengths are bounded by MAX_FRAME_BYTES")
}

/// One entry of a frame, as read back.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Global position of the entry's first byte (its kind).
    pub pos: u64,
    pub kind: EntryKind,
    pub body: &'a [u8],
    /// Whether the body matches the entry's CRC32C.
    pub checksum_ok: bool,
}

/// Why a scan stopped before the end of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanStop {
    /// The journal ends cleanly at this position.
    End(u64),
    /// The last frame is incomplete or fails its checksum and nothing follows it: the
    /// trace of a write cut short by a crash. It was never acknowledged.
    TornTail { pos: u64, reason: String },
    /// A frame that is not the last one is damaged, or a segment is malformed.
    Corrupt { pos: u64, reason: String },
}

/// Entries of a frame; `Err` if an entry is malformed or fails its CRC.
pub fn parse_entries(frame_pos: u64, payload: &[u8]) -> Result<Vec<Entry<'_>>, (u64, String)> {
    let mut entries = Vec::new();
    for entry in parse_entries_lenient(frame_pos, payload) {
        let entry = entry?;
        if !entry.checksum_ok {
            return Err((entry.pos, "entry checksum mismatch".into()));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Entries of a frame, each with whether its CRC holds; stops at the first entry whose
/// header cannot be parsed (its length is then unknown).
pub fn parse_entries_lenient(
    frame_pos: u64,
    payload: &[u8],
) -> impl Iterator<Item = Result<Entry<'_>, (u64, String)>> {
    let mut at = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= payload.len() {
            return None;
        }
        let pos = frame_pos + (FRAME_HEADER_LEN + at) as u64;
        let parsed = parse_entry(payload, at, pos);
        match &parsed {
            Ok(entry) => at += ENTRY_HEADER_LEN + entry.body.len(),
            Err(_) => failed = true,
        }
        Some(parsed)
    })
}

fn parse_entry(payload: &[u8], at: usize, pos: u64) -> Result<Entry<'_>, (u64, String)> {
    let Some(header) = payload.get(at..at + ENTRY_HEADER_LEN) else {
        return Err((pos, "entry header cut short".into()));
    };
    let Some(kind) = EntryKind::from_byte(header[0]) else {
        return Err((pos, format!("unknown entry kind {}", header[0])));
    };
    let body_len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let crc = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
    let body_start = at + ENTRY_HEADER_LEN;
    let Some(body) = payload.get(body_start..body_start + body_len) else {
        return Err((pos, "entry body runs past its frame".into()));
    };
    Ok(Entry {
        pos,
        kind,
        body,
        checksum_ok: crc32c::crc32c(body) == crc,
    })
}

/// A journal directory: its segments, readable at any position, appendable at the end.
///
/// Readers and the one writer share it (`&self` everywhere). Appends and truncation must be
/// serialised by the caller (the store's writer lock); reads run concurrently with them and
/// only ever ask for bytes of frames that are already appended.
#[derive(Debug)]
pub struct Journal {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    /// Segments in position order; the last one is the one appended to. The lock is held
    /// for writing only to add or remove a segment.
    segments: RwLock<Vec<Arc<Segment>>>,
    segment_max_bytes: u64,
    /// A last segment found without a complete header when opened (see `open`).
    torn_segment: Option<PathBuf>,
}

#[derive(Debug)]
struct Segment {
    base: u64,
    /// Bytes of the segment that hold whole frames (or the header). Written by the writer
    /// after the frame is synced.
    len: AtomicU64,
    file: Box<dyn VfsFile>,
}

impl Segment {
    fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`. Does not validate frames: see
    /// [`Journal::scan`].
    pub fn open(dir: &Path, segment_max_bytes: u64) -> io::Result<Journal> {
        Self::open_with(Arc::new(RealFs), dir, segment_max_bytes)
    }

    /// [`Journal::open`] on the file system `vfs`.
    pub fn open_with(vfs: Arc<dyn Vfs>, dir: &Path, segment_max_bytes: u64) -> io::Result<Journal> {
        vfs.create_dir_all(dir)?;
        Self::open_inner(vfs, dir, segment_max_bytes, true)
    }

    /// Opens an existing journal for reading only (the offline verifier): creates nothing
    /// and never writes.
    pub fn open_read_only(dir: &Path) -> io::Result<Journal> {
        Self::open_inner(Arc::new(RealFs), dir, u64::MAX, false)
    }

    /// [`Journal::open_read_only`], seeing only the bytes before global position `end`: the
    /// journal as it was when a live store reported `end` (frames appended since are
    /// left out, whole segments included).
    pub fn open_read_only_until(dir: &Path, end: u64) -> io::Result<Journal> {
        let journal = Self::open_read_only(dir)?;
        {
            let mut segments = journal.segments.write().expect("journal lock poisoned");
            segments.retain(|segment| segment.base < end);
            for segment in segments.iter() {
                let cap = end - segment.base;
                if segment.len() > cap {
                    segment.len.store(cap, Ordering::Release);
                }
            }
        }
        Ok(journal)
    }

    fn open_inner(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        segment_max_bytes: u64,
        writable: bool,
    ) -> io::Result<Journal> {
        let mut bases = Vec::new();
        for name in vfs.read_dir(dir)? {
            let Some(name) = name.to_str() else { continue };
            if writable && name.ends_with(COMPACT_SUFFIX) {
                // A segment rewrite that a crash cut short before it replaced the segment.
                vfs.remove_file(&dir.join(name))?;
                continue;
            }
            if let Some(base) = name
                .strip_suffix(".seg")
                .and_then(|s| s.parse::<u64>().ok())
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len());
        let mut torn_segment = None;
        let n_segments = bases.len();
        for (idx, base) in bases.into_iter().enumerate() {
            let path = segment_path(dir, base);
            let mode = if writable {
                OpenMode::ReadWrite
            } else {
                OpenMode::Read
            };
            let file = vfs.open(&path, mode)?;
            let len = file.len()?;
            if let Err(reason) = check_segment_header(&*file, base, len) {
                // A crash while a segment was being created leaves a last segment with no
                // complete header and no frame: nothing in it was ever acknowledged.
                if idx + 1 == n_segments && len <= SEGMENT_HEADER_LEN {
                    if writable {
                        drop(file);
                        vfs.remove_file(&path)?;
                        vfs.sync_dir(dir)?;
                        tracing::warn!(path = %path.display(), "removed a journal segment whose creation a crash cut short");
                    }
                    torn_segment = Some(path);
                    continue;
                }
                return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
            }
            segments.push(Arc::new(Segment {
                base,
                len: AtomicU64::new(len),
                file,
            }));
        }
        let journal = Journal {
            vfs,
            dir: dir.to_owned(),
            segments: RwLock::new(segments),
            segment_max_bytes,
            torn_segment,
        };
        if writable && journal.segments().is_empty() {
            journal.new_segment(0)?;
        }
        Ok(journal)
    }

    /// The last segment file that a crash left without a complete header, if the journal
    /// was opened with one (removed when opened for writing, ignored when read-only).
    pub fn torn_segment(&self) -> Option<&Path> {
        self.torn_segment.as_deref()
    }

    fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments.read().expect("journal lock poisoned").clone()
    }

    fn last_segment(&self) -> Arc<Segment> {
        let segments = self.segments.read().expect("journal lock poisoned");
        Arc::clone(segments.last().expect("a journal always has a segment"))
    }

    /// Global position just past the last byte.
    pub fn end(&self) -> u64 {
        let segments = self.segments.read().expect("journal lock poisoned");
        segments
            .last()
            .map_or(SEGMENT_HEADER_LEN, |last| last.base + last.len())
    }

    /// Global position of the first frame of the journal.
    pub fn start(&self) -> u64 {
        let segments = self.segments.read().expect("journal lock poisoned");
        segments.first().map_or(0, |s| s.base) + SEGMENT_HEADER_LEN
    }

    /// Appends one frame built by [`FrameBuilder`] and syncs it; returns the frame's
    /// global position. Durable when this returns `Ok`.
    pub(crate) fn append_frame(&self, frame: &[u8]) -> io::Result<u64> {
        let frame_len = frame.len() as u64;
        let mut segment = self.last_segment();
        let len = segment.len();
        if len > SEGMENT_HEADER_LEN && len + frame_len > self.segment_max_bytes {
            self.new_segment(segment.base + len)?;
            segment = self.last_segment();
        }
        let len = segment.len();
        let written = segment
            .file
            .write_all_at(frame, len)
            .and_then(|()| segment.file.sync_data());
        if let Err(err) = written {
            // After a failed sync the page cache may say "clean" for pages the disk never
            // got: cut the frame so it is certainly not there ("fail and not persist"). If
            // even that fails, recovery finds whatever is left and keeps or cuts it.
            let _ = segment
                .file
                .set_len(len)
                .and_then(|()| segment.file.sync_data());
            return Err(err);
        }
        segment.len.store(len + frame_len, Ordering::Release);
        Ok(segment.base + len)
    }

    fn new_segment(&self, base: u64) -> io::Result<()> {
        let path = segment_path(&self.dir, base);
        let file = self.vfs.open(&path, OpenMode::CreateNew)?;
        let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
        header.extend_from_slice(SEGMENT_MAGIC);
        header.extend_from_slice(&SEGMENT_VERSION.to_be_bytes());
        header.extend_from_slice(&base.to_be_bytes());
        let written = file
            .write_all_at(&header, 0)
            .and_then(|()| file.sync_all())
            .and_then(|()| self.vfs.sync_dir(&self.dir));
        if let Err(err) = written {
            // Leave no half-made segment behind to block the next attempt.
            let _ = self.vfs.remove_file(&path);
            return Err(err);
        }
        let mut segments = self.segments.write().expect("journal lock poisoned");
        segments.push(Arc::new(Segment {
            base,
            len: AtomicU64::new(SEGMENT_HEADER_LEN),
            file,
        }));
        Ok(())
    }

    /// Cuts the journal at `pos` (the end of the last good frame) and syncs: how a torn
    /// tail is removed on open. Segments wholly after `pos` are deleted.
    pub(crate) fn truncate(&self, pos: u64) -> io::Result<()> {
        let mut segments = self.segments.write().expect("journal lock poisoned");
        while segments.len() > 1 && segments.last().is_some_and(|s| s.base >= pos) {
            let segment = segments.pop().expect("checked non-empty");
            self.vfs
                .remove_file(&segment_path(&self.dir, segment.base))?;
        }
        self.vfs.sync_dir(&self.dir)?;
        let segment = segments.last().expect("a journal always has a segment");
        let len = pos.saturating_sub(segment.base).max(SEGMENT_HEADER_LEN);
        segment.file.set_len(len)?;
        segment.file.sync_all()?;
        segment.len.store(len, Ordering::Release);
        Ok(())
    }

    /// Takes the segments' lengths from the files again (after a failed append, whose bytes
    /// may or may not have reached the disk).
    pub(crate) fn refresh_lengths(&self) -> io::Result<()> {
        for segment in self.segments() {
            segment.len.store(segment.file.len()?, Ordering::Release);
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at global position `pos`.
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        let segment = {
            let segments = self.segments.read().expect("journal lock poisoned");
            let idx = segments.partition_point(|s| s.base <= pos);
            idx.checked_sub(1)
                .and_then(|i| segments.get(i))
                .map(Arc::clone)
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "before the journal"))?
        };
        if pos + buf.len() as u64 > segment.base + segment.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read of {} bytes at {pos} runs past its segment", buf.len()),
            ));
        }
        segment.file.read_exact_at(buf, pos - segment.base)
    }

    /// Reads the body of the entry at `pos` whose body is `body_len` bytes, checking the
    /// entry's kind and CRC.
    ///
    /// # Errors
    ///
    /// [`EntryError::Io`] when the read fails, [`EntryError::Damaged`] when what is there
    /// is not the entry (outside the journal, another kind or length, a bad checksum).
    pub fn read_entry(
        &self,
        pos: u64,
        body_len: usize,
        kind: EntryKind,
    ) -> Result<Vec<u8>, EntryError> {
        let mut buf = vec![0; ENTRY_HEADER_LEN + body_len];
        self.read_at(pos, &mut buf)
            .map_err(|source| EntryError::of_read(pos, source))?;
        check_entry(&buf, pos, body_len, kind)?;
        Ok(buf.split_off(ENTRY_HEADER_LEN))
    }

    /// Reads the bodies of several entries, as [`Journal::read_entry`] each, in the order
    /// given; entries that follow each other in the journal are read with one system call
    /// per run (up to [`MAX_COALESCED_READ`] bytes).
    pub fn read_entries(
        &self,
        entries: &[(u64, usize)],
        kind: EntryKind,
    ) -> Result<Vec<Vec<u8>>, EntryError> {
        let mut bodies = Vec::with_capacity(entries.len());
        let mut start = 0;
        while start < entries.len() {
            // The run: entries[start..end], each starting where the previous one ends.
            let (run_pos, first_len) = entries[start];
            let mut run_end = run_pos + (ENTRY_HEADER_LEN + first_len) as u64;
            let mut end = start + 1;
            while let Some(&(pos, len)) = entries.get(end) {
                let next_end = pos + (ENTRY_HEADER_LEN + len) as u64;
                if pos != run_end || next_end - run_pos > MAX_COALESCED_READ {
                    break;
                }
                run_end = next_end;
                end += 1;
            }
            let run_len = usize::try_from(run_end - run_pos).map_err(|_| {
                EntryError::Damaged(format!("a run of entries at {run_pos} too long to read"))
            })?;
            let mut buf = vec![0; run_len];
            if self.read_at(run_pos, &mut buf).is_err() {
                // Not within one segment (or damaged): entry by entry, with their errors.
                for &(pos, len) in &entries[start..end] {
                    bodies.push(self.read_entry(pos, len, kind)?);
                }
            } else {
                let mut offset = 0;
                for &(pos, len) in &entries[start..end] {
                    let entry = &buf[offset..offset + ENTRY_HEADER_LEN + len];
                    bodies.push(check_entry(entry, pos, len, kind)?.to_vec());
                    offset += ENTRY_HEADER_LEN + len;
                }
            }
            start = end;
        }
        Ok(bodies)
    }

    /// Visits every frame from `from` (a frame boundary) to the end, in order, and tells
    /// how the scan stopped. `visit` gets the frame's position and its payload; a visit
    /// that returns `Err` stops the scan with that error. The first damaged frame stops
    /// the scan.
    ///
    /// `durable_until` is a position known to be durable (the sync marker): damage before
    /// it is never taken for a torn tail.
    pub fn scan<E>(
        &self,
        from: u64,
        durable_until: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<ScanStop, E> {
        self.scan_frames(from, durable_until, false, |pos, payload, _| {
            visit(pos, payload)
        })
    }

    /// Like [`Journal::scan`], but a frame whose checksum fails is still visited (with
    /// `checksum_ok == false`) and the scan goes on after it, so that the verifier can
    /// say which records of the frame are damaged. Only a frame whose length cannot be
    /// trusted stops the scan.
    pub fn scan_lenient<E>(
        &self,
        from: u64,
        durable_until: u64,
        visit: impl FnMut(u64, &[u8], bool) -> Result<(), E>,
    ) -> Result<ScanStop, E> {
        self.scan_frames(from, durable_until, true, visit)
    }

    fn scan_frames<E>(
        &self,
        from: u64,
        durable_until: u64,
        lenient: bool,
        mut visit: impl FnMut(u64, &[u8], bool) -> Result<(), E>,
    ) -> Result<ScanStop, E> {
        let mut pos = from.max(self.start());
        let mut payload = Vec::new();
        let segments = self.segments();
        for (seg_idx, segment) in segments.iter().enumerate() {
            let seg_end = segment.base + segment.len();
            if seg_end <= pos {
                continue;
            }
            let is_last_segment = seg_idx + 1 == segments.len();
            if pos < segment.base + SEGMENT_HEADER_LEN {
                pos = segment.base + SEGMENT_HEADER_LEN;
            }
            while pos < seg_end {
                // Only the last write can be torn: damage is a torn tail when it is in the
                // last segment and no whole frame follows it. Anything else is corruption,
                // and cutting there would drop acknowledged frames.
                let torn_or_corrupt = |reason: String| {
                    if is_last_segment
                        && pos >= durable_until
                        && !whole_frame_after(segment, pos + 1)
                    {
                        ScanStop::TornTail { pos, reason }
                    } else {
                        ScanStop::Corrupt { pos, reason }
                    }
                };
                let mut header = [0u8; FRAME_HEADER_LEN];
                if pos + FRAME_HEADER_LEN as u64 > seg_end {
                    return Ok(torn_or_corrupt("frame header cut short".into()));
                }
                if let Err(err) = segment.file.read_exact_at(&mut header, pos - segment.base) {
                    return Ok(ScanStop::Corrupt {
                        pos,
                        reason: err.to_string(),
                    });
                }
                if &header[..4] != FRAME_MAGIC {
                    return Ok(torn_or_corrupt("no frame magic".into()));
                }
                let payload_len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                let crc = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
                let frame_end = pos + FRAME_HEADER_LEN as u64 + u64::from(payload_len);
                if payload_len as usize > MAX_FRAME_BYTES || frame_end > seg_end {
                    return Ok(torn_or_corrupt(format!(
                        "frame of {payload_len} bytes runs past the end of its segment"
                    )));
                }
                payload.resize(payload_len as usize, 0);
                let read = segment
                    .file
                    .read_exact_at(&mut payload, pos - segment.base + FRAME_HEADER_LEN as u64);
                if let Err(err) = read {
                    return Ok(ScanStop::Corrupt {
                        pos,
                        reason: err.to_string(),
                    });
                }
                let checksum_ok = crc32c::crc32c(&payload) == crc;
                if !checksum_ok {
                    let stop = torn_or_corrupt("frame checksum mismatch".into());
                    if !lenient || matches!(stop, ScanStop::TornTail { .. }) {
                        return Ok(stop);
                    }
                }
                visit(pos, &payload, checksum_ok)?;
                pos = frame_end;
            }
        }
        Ok(ScanStop::End(pos))
    }

    /// Starts a new segment, so that the one appended to so far is sealed (compaction only
    /// rewrites sealed segments). Nothing is done to a segment that holds no frame yet. The
    /// caller holds off appends (the store's writer lock).
    pub(crate) fn seal(&self) -> io::Result<()> {
        let last = self.last_segment();
        if last.len() <= SEGMENT_HEADER_LEN {
            return Ok(());
        }
        self.new_segment(last.base + last.len())
    }

    /// Base and length of the last segment, the one appended to.
    pub(crate) fn last_segment_range(&self) -> (u64, u64) {
        let last = self.last_segment();
        (last.base, last.len())
    }

    /// Base and length of every segment but the last: those no append writes to again.
    pub(crate) fn sealed_segments(&self) -> Vec<(u64, u64)> {
        let segments = self.segments();
        segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .map(|segment| (segment.base, segment.len()))
            .collect()
    }

    /// Starts the rewrite of sealed segment `base` aside, under another name: its header is
    /// written; [`CompactWriter::push`] adds frames. The segment is untouched until
    /// [`Journal::replace_segment`].
    pub(crate) fn compact_writer(&self, base: u64) -> io::Result<CompactWriter> {
        let path = compact_path(&self.dir, base);
        if self.vfs.open(&path, OpenMode::Read).is_ok() {
            self.vfs.remove_file(&path)?;
        }
        let file = self.vfs.open(&path, OpenMode::CreateNew)?;
        let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
        header.extend_from_slice(SEGMENT_MAGIC);
        header.extend_from_slice(&SEGMENT_VERSION.to_be_bytes());
        header.extend_from_slice(&base.to_be_bytes());
        file.write_all_at(&header, 0)?;
        Ok(CompactWriter {
            file,
            len: SEGMENT_HEADER_LEN,
            unsynced: 0,
        })
    }

    /// Puts the rewrite written by [`Journal::compact_writer`] (and synced) in the place of
    /// sealed segment `base`, durably (a rename, then a sync of the directory); readers see the
    /// new segment from then on. The caller keeps readers of moved entries out meanwhile.
    /// A rewrite that kept no frame deletes the segment instead. The old segment is handed
    /// back: closing its file frees its blocks, which for a large file takes a while, so the
    /// caller drops it once it holds no lock.
    pub(crate) fn replace_segment(
        &self,
        base: u64,
        written: CompactWriter,
    ) -> io::Result<RetiredSegment> {
        let empty = written.len() <= SEGMENT_HEADER_LEN;
        drop(written);
        let from = compact_path(&self.dir, base);
        let to = segment_path(&self.dir, base);
        let mut segments = self.segments.write().expect("journal lock poisoned");
        let idx = segments
            .iter()
            .position(|segment| segment.base == base)
            .filter(|&idx| idx + 1 < segments.len())
            .ok_or_else(|| io::Error::other(format!("no sealed segment at {base}")))?;
        if empty {
            let old = segments.remove(idx);
            self.vfs.remove_file(&to)?;
            self.vfs.remove_file(&from)?;
            self.vfs.sync_dir(&self.dir)?;
            return Ok(RetiredSegment(old));
        }
        self.vfs.rename(&from, &to)?;
        self.vfs.sync_dir(&self.dir)?;
        let file = self.vfs.open(&to, OpenMode::ReadWrite)?;
        let len = file.len()?;
        let old = std::mem::replace(
            &mut segments[idx],
            Arc::new(Segment {
                base,
                len: AtomicU64::new(len),
                file,
            }),
        );
        Ok(RetiredSegment(old))
    }

    /// Paths of the segment files, in order (for tools and tests).
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments()
            .iter()
            .map(|s| segment_path(&self.dir, s.base))
            .collect()
    }
}

/// Whether a whole, checksummed frame starts anywhere in `segment` at or after global
/// position `from`. Reads the rest of the segment: only done when damage was found.
fn whole_frame_after(segment: &Segment, from: u64) -> bool {
    let start = from.saturating_sub(segment.base);
    let Some(rest_len) = segment.len().checked_sub(start) else {
        return false;
    };
    let Ok(rest_len) = usize::try_from(rest_len) else {
        return true;
    };
    let mut rest = vec![0; rest_len];
    if segment.file.read_exact_at(&mut rest, start).is_err() {
        return true;
    }
    let mut at = 0;
    while let Some(found) = rest[at..]
        .windows(FRAME_MAGIC.len())
        .position(|window| window == FRAME_MAGIC)
    {
        let frame = &rest[at + found..];
        if let Some(header) = frame.get(..FRAME_HEADER_LEN) {
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let crc = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
            if let Some(payload) = frame.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)
                && crc32c::crc32c(payload) == crc
            {
                return true;
            }
        }
        at += found + 1;
    }
    false
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// The rewrite of a segment, being written aside ([`Journal::compact_writer`]).
#[derive(Debug)]
pub(crate) struct CompactWriter {
    file: Box<dyn VfsFile>,
    len: u64,
    /// Bytes pushed since the last sync.
    unsynced: u64,
}

/// A rewrite is synced every this many bytes as it is written: a gigabyte of dirty pages
/// synced at once would hold the disk (and every commit's `fdatasync` queued behind it)
/// for seconds.
const COMPACT_SYNC_EVERY: u64 = 8 << 20;

impl CompactWriter {
    /// Appends a whole frame (header included); returns its offset in the segment.
    pub(crate) fn push(&mut self, frame: &[u8]) -> io::Result<u64> {
        let at = self.len;
        self.file.write_all_at(frame, at)?;
        self.len += frame.len() as u64;
        self.unsynced += frame.len() as u64;
        if self.unsynced >= COMPACT_SYNC_EVERY {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(at)
    }

    /// The rewrite's length so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Makes what was pushed durable (before the rewrite may replace its segment).
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// A segment [`Journal::replace_segment`] took out of the journal: its file closes (and
/// its blocks are freed) when this is dropped.
#[derive(Debug)]
#[must_use = "drop it where no lock is held: closing a large file takes a while"]
pub(crate) struct RetiredSegment(#[allow(dead_code, reason = "held for its drop")] Arc<Segment>);

/// What a segment being rewritten is named until it replaces the segment.
const COMPACT_SUFFIX: &str = ".seg.compact";

fn compact_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{COMPACT_SUFFIX}"))
}

fn check_segment_header(file: &dyn VfsFile, base: u64, len: u64) -> Result<(), String> {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    if len < SEGMENT_HEADER_LEN {
        return Err(format!("journal segment {base} is shorter than its header"));
    }
    file.read_exact_at(&mut header, 0)
        .map_err(|err| err.to_string())?;
    let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let stored_base = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
    if &header[..4] != SEGMENT_MAGIC || version != SEGMENT_VERSION || stored_base != base {
        return Err(format!(
            "journal segment {base} has a bad header (version {version}, base {stored_base})"
        ));
    }
    Ok(())
}

/// Largest single read of [`Journal::read_entries`].
pub const MAX_COALESCED_READ: u64 = 1 << 20;

/// Checks an entry (header and body) read from `pos` against the expected kind, body length
/// and CRC; its body.
fn check_entry(
    entry: &[u8],
    pos: u64,
    body_len: usize,
    kind: EntryKind,
) -> Result<&[u8], EntryError> {
    let stored_len = u32::from_be_bytes([entry[1], entry[2], entry[3], entry[4]]) as usize;
    let crc = u32::from_be_bytes([entry[5], entry[6], entry[7], entry[8]]);
    if entry[0] != kind as u8 || stored_len != body_len {
        return Err(EntryError::Damaged(format!(
            "no {kind:?} entry of {body_len} bytes at journal position {pos}"
        )));
    }
    let body = &entry[ENTRY_HEADER_LEN..];
    if crc32c::crc32c(body) != crc {
        return Err(EntryError::Damaged(format!(
            "entry checksum mismatch at journal position {pos}"
        )));
    }
    Ok(body)
}

/// Why an entry could not be read, by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The read failed (the disk, the file system): it may be retried.
    #[error("journal read at position {pos}: {source}")]
    Io {
        pos: u64,
        #[source]
        source: io::Error,
    },
    /// What is there is not the entry expected: the journal or what points into it is
    /// damaged, and no retry changes that.
    #[error("{0}")]
    Damaged(String),
}

impl EntryError {
    /// A failed read at `pos`: past the end of the journal or of a segment is damage (the
    /// position came from a damaged index); anything else is the disk's.
    fn of_read(pos: u64, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            EntryError::Damaged(format!("journal position {pos}: {source}"))
        } else {
            EntryError::Io { pos, source }
        }
    }
}

impl From<EntryError> for StoreError {
    fn from(err: EntryError) -> Self {
        match err {
            EntryError::Io { source, .. } => StoreError::Unavailable(source),
            EntryError::Damaged(what) => StoreError::Corrupt(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries as `(pos, body_len)`, and their bodies.
    type Entries = (Vec<(u64, usize)>, Vec<Vec<u8>>);

    /// Frames of three record entries each, in a journal whose small segments roll often.
    fn journal_with_entries() -> (tempfile::TempDir, Journal, Entries) {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path(), 4096).expect("open");
        let mut entries = Vec::new();
        let mut bodies = Vec::new();
        for frame_no in 0..40u8 {
            let mut frame = FrameBuilder::with_capacity(1024);
            let mut offsets = Vec::new();
            for k in 0..3u8 {
                let body = vec![frame_no ^ k; 50 + usize::from(frame_no) * 3 + usize::from(k)];
                offsets.push((frame.push(EntryKind::Record, &[&body]), body));
            }
            let frame_pos = journal.append_frame(&frame.finish()).expect("append");
            for (offset, body) in offsets {
                entries.push((frame_pos + offset as u64, body.len()));
                bodies.push(body);
            }
        }
        assert!(journal.segment_paths().len() > 3, "segments roll");
        (dir, journal, (entries, bodies))
    }

    #[test]
    fn read_entries_is_read_entry_for_every_mix_of_runs() {
        let (_dir, journal, (entries, bodies)) = journal_with_entries();
        // Everything (runs inside frames, breaks between frames and segments), every other
        // entry (no runs), and a reversed slice.
        assert_eq!(
            journal
                .read_entries(&entries, EntryKind::Record)
                .expect("all"),
            bodies
        );
        let odd: Vec<_> = entries.iter().copied().step_by(2).collect();
        let odd_bodies: Vec<_> = bodies.iter().cloned().step_by(2).collect();
        assert_eq!(
            journal.read_entries(&odd, EntryKind::Record).expect("odd"),
            odd_bodies
        );
        let reversed: Vec<_> = entries[10..20].iter().rev().copied().collect();
        let reversed_bodies: Vec<_> = bodies[10..20].iter().rev().cloned().collect();
        assert_eq!(
            journal
                .read_entries(&reversed, EntryKind::Record)
                .expect("reversed"),
            reversed_bodies
        );
        // A wrong kind or length is refused, as by read_entry.
        assert!(
            journal
                .read_entries(&entries[..3], EntryKind::Checkpoint)
                .is_err()
        );
        let (pos, len) = entries[4];
        assert!(
            journal
                .read_entries(&[entries[3], (pos, len + 1)], EntryKind::Record)
                .is_err()
        );
    }

    #[test]
    fn a_damaged_entry_inside_a_run_is_reported() {
        let (dir, journal, (entries, _bodies)) = journal_with_entries();
        let (pos, _) = entries[7];
        // Flip one body byte of entry 7 in its segment file.
        let (base, segment) = journal
            .segments()
            .iter()
            .filter(|segment| segment.base <= pos)
            .map(|segment| (segment.base, segment_path(dir.path(), segment.base)))
            .next_back()
            .expect("segment");
        let mut bytes = std::fs::read(&segment).expect("read");
        let at = usize::try_from(pos - base).expect("offset") + ENTRY_HEADER_LEN + 1;
        bytes[at] ^= 0xff;
        std::fs::write(&segment, bytes).expect("write");
        let err = journal
            .read_entries(&entries[6..9], EntryKind::Record)
            .expect_err("damaged");
        assert!(
            matches!(&err, EntryError::Damaged(what) if what.contains("checksum")),
            "{err}"
        );
        // Damage is corruption to the store's callers, a failed read is "retry later".
        assert!(matches!(StoreError::from(err), StoreError::Corrupt(_)));
        let io = EntryError::of_read(3, io::Error::other("the disk went away"));
        assert!(matches!(StoreError::from(io), StoreError::Unavailable(_)));
        let past_end = EntryError::of_read(3, io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(matches!(past_end, EntryError::Damaged(_)));
        assert!(
            journal
                .read_entries(&entries[8..9], EntryKind::Record)
                .is_ok()
        );
    }
}
