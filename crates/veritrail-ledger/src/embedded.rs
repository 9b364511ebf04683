//! The embedded store: a journal as the source of truth, with derived files and an index.
//!
//! Layout of `<dir>` (specified in `docs/format.md`):
//!
//! - `journal/*.seg`: the [`Journal`]; one synced frame per commit. Nothing else is
//!   synced on the commit path, so a commit costs one `fdatasync`.
//! - `tenants/<tenant>/offsets`: 12 bytes per record (journal position, body length), so a
//!   record is found by seq with one read.
//! - `tenants/<tenant>/nodes`: the hashes of the tenant's complete Merkle nodes, 32 bytes
//!   each, in the order they complete (post-order), so a proof reads O(log n) hashes.
//! - `index.redb`: event id -> seq per tenant, and the *sync marker*: the journal position
//!   up to which the files above and the index were last made durable, with every tenant's
//!   size and checkpoint at that position.
//!
//! Everything but the journal is derived. Opening the store replays the journal from the
//! sync marker onwards, rewriting the derived entries in place (replay is idempotent), and
//! cuts a torn tail. Why not keep everything in redb: measured on the 2-core machine, a
//! durable redb commit per batch of 100 with records, nodes and ids reached ~42k events/s;
//! the journal design does the same work at several times that (see ARCHITECTURE.md).

use std::collections::{HashMap, HashSet};
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use veritrail_core::event::{EventId, TenantId};
use veritrail_core::merkle::{self, Frontier, Hash, NodeId};
use veritrail_core::record::Record;

use crate::index::{IdIndex, Marker};
use crate::journal::{self, EntryKind, FrameBuilder, Journal, ScanStop};
use crate::store::{
    CommitBatch, CompactStats, LedgerStore, Removal, Removed, StoreError, TenantState, node_count,
    postorder_index,
};
use crate::verify::LiveBounds;
use crate::vfs::{self, OpenMode, RealFs, Vfs, VfsFile};

const OFFSET_ENTRY_BYTES: usize = 12;
const OFFSET_ENTRY_LEN: u64 = OFFSET_ENTRY_BYTES as u64;
const NODE_LEN: u64 = merkle::HASH_LEN as u64;
/// Ids compaction deletes from the index per transaction.
const FORGET_SLICE: usize = 10_000;

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// A journal segment is closed once it reaches this size.
    pub segment_max_bytes: u64,
    /// The derived files and index are synced (and the replay window closed) after this
    /// much journal...
    pub sync_every_bytes: u64,
    /// ...or this much time, whichever comes first.
    pub sync_every: Duration,
    /// Journal bytes compaction reads per second at most (0: as fast as the disk goes), so
    /// that it leaves the disk to ingest and reads.
    pub compact_bytes_per_second: u64,
    /// The event-id index file is compacted when the store opens once compaction has
    /// forgotten this many ids since the last time.
    pub index_compact_after_forgotten: u64,
    /// Memory the event-id index (`index.redb`) may keep as its cache. redb's own default
    /// (1 GiB) would let the server's memory grow with the log; the operating system's page
    /// cache still holds the file.
    pub index_cache_bytes: usize,
    /// Tenants whose derived files may be open at once (two descriptors each); the least
    /// recently used close when more are needed.
    pub max_open_tenants: usize,
    /// Above this many tenants written since the last sync marker, the marker makes their
    /// files durable with one sync of the whole file system (`syncfs`) instead of two per
    /// tenant.
    pub sync_file_system_above: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            segment_max_bytes: 1 << 30,
            sync_every_bytes: 64 << 20,
            sync_every: Duration::from_secs(2),
            compact_bytes_per_second: 64 << 20,
            index_compact_after_forgotten: 1_000_000,
            index_cache_bytes: 64 << 20,
            max_open_tenants: 1024,
            sync_file_system_above: 16,
        }
    }
}

/// The embedded, crash-safe [`LedgerStore`].
#[derive(Debug)]
pub struct EmbeddedStore {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    options: EmbeddedOptions,
    journal: Journal,
    index: IdIndex,
    /// Committed state, as readers see it. Written by the writer after each commit.
    tenants: RwLock<HashMap<TenantId, Arc<TenantLog>>>,
    /// Whose derived files are open.
    open_files: Arc<OpenFiles>,
    /// Syncs the whole file system in one call, where it can.
    fs_syncer: Option<Box<dyn crate::vfs::FsSyncer>>,
    /// Serialises commits, syncs and recovery.
    writer: Mutex<WriterState>,
    /// Held to read a record (its offset, then its entry); held exclusively while
    /// compaction puts a rewritten segment in place and moves its entries' offsets.
    moving: RwLock<()>,
    /// One compaction at a time.
    compactor: Mutex<()>,
}

/// One tenant's log: its derived files (opened when used, and closed again when other
/// tenants' files need the room: see [`OpenFiles`]) and its committed state.
#[derive(Debug)]
struct TenantLog {
    dir: PathBuf,
    open_files: Arc<OpenFiles>,
    files: Mutex<Option<Arc<TenantFiles>>>,
    /// Used since the open-files clock last passed it: it keeps its files one more round.
    used: AtomicBool,
    committed: RwLock<Committed>,
}

/// A tenant's derived files, open. A reader holding them keeps them open after the log
/// let them go.
#[derive(Debug)]
struct TenantFiles {
    offsets: Box<dyn VfsFile>,
    nodes: Box<dyn VfsFile>,
}

impl TenantLog {
    fn new(dir: PathBuf, open_files: &Arc<OpenFiles>) -> Self {
        Self {
            dir,
            open_files: Arc::clone(open_files),
            files: Mutex::new(None),
            used: AtomicBool::new(false),
            committed: RwLock::new(Committed::default()),
        }
    }

    /// The log's files, opened (and created) if they are not.
    fn files(self: &Arc<Self>) -> io::Result<Arc<TenantFiles>> {
        let mut slot = self.files.lock().expect("files lock poisoned");
        if let Some(files) = &*slot {
            self.used.store(true, Ordering::Relaxed);
            return Ok(Arc::clone(files));
        }
        let vfs = &self.open_files.vfs;
        let open = |name: &str| vfs.open(&self.dir.join(name), OpenMode::Create);
        let files = Arc::new(TenantFiles {
            offsets: open("offsets")?,
            nodes: open("nodes")?,
        });
        *slot = Some(Arc::clone(&files));
        drop(slot);
        self.open_files.opened(self);
        Ok(files)
    }
}

/// The tenants whose files are open, at most `limit` of them (two descriptors each), so
/// that the descriptors a store holds do not grow with its tenants. When one more opens,
/// a CLOCK (second chance) picks whose files close: a tenant used since the clock last
/// passed it keeps them one more round. Files close without a sync: the sync marker
/// reopens and syncs the files of every tenant written since the last one.
#[derive(Debug)]
struct OpenFiles {
    vfs: Arc<dyn Vfs>,
    limit: usize,
    clock: Mutex<std::collections::VecDeque<std::sync::Weak<TenantLog>>>,
}

impl OpenFiles {
    fn new(vfs: Arc<dyn Vfs>, limit: usize) -> Self {
        Self {
            vfs,
            limit: limit.max(1),
            clock: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// `log` opened its files: closes others' while more than `limit` are open.
    fn opened(&self, log: &Arc<TenantLog>) {
        let mut clock = self.clock.lock().expect("open files lock poisoned");
        clock.push_back(Arc::downgrade(log));
        // Each entry is passed at most twice (once to clear its mark): bounded.
        let mut steps = 2 * clock.len();
        while clock.len() > self.limit && steps > 0 {
            steps -= 1;
            let Some(weak) = clock.pop_front() else {
                break;
            };
            // A log that is gone closed its files with it.
            let Some(other) = weak.upgrade() else {
                continue;
            };
            if Arc::ptr_eq(&other, log) || other.used.swap(false, Ordering::Relaxed) {
                clock.push_back(weak);
                continue;
            }
            other.files.lock().expect("files lock poisoned").take();
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Committed {
    size: u64,
    checkpoint: Option<Arc<str>>,
    removals: Vec<Removal>,
}

#[derive(Debug)]
struct WriterState {
    /// Tenants whose derived files were written since the last sync.
    dirty: HashSet<TenantId>,
    last_sync: Instant,
    /// Journal position of the last sync marker.
    synced_pos: u64,
    /// A commit failed part way: state must be rebuilt before the next commit.
    poisoned: bool,
    /// A segment rewrite is under way: sync markers ask the next open to replay the whole
    /// journal, so that a crash at any step rebuilds the derived files from what the
    /// journal then holds.
    compacting: bool,
}

impl EmbeddedStore {
    /// Opens the store in `dir` (created if missing), replaying the journal past the last
    /// sync marker and cutting a torn tail left by a crash.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        Self::open_with(Arc::new(RealFs), dir, options)
    }

    /// [`EmbeddedStore::open`] on the file system `vfs` (tests run it on a simulated disk).
    pub fn open_with(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        options: EmbeddedOptions,
    ) -> Result<Self, StoreError> {
        let new_dirs = vfs::missing_dirs(&*vfs, dir);
        vfs.create_private_dir(dir)?;
        vfs.create_dir_all(&dir.join("tenants"))?;
        let journal = Journal::open_with(
            Arc::clone(&vfs),
            &dir.join("journal"),
            options.segment_max_bytes,
        )?;
        let index = IdIndex::open(
            &*vfs,
            &dir.join("index.redb"),
            options.index_cache_bytes,
            options.index_compact_after_forgotten,
        )?;
        // A name is durable only once its directory is synced, whatever was synced inside
        // it: without these, a power cut could take `journal/` (or the whole directory, on
        // the first open) with every frame acknowledged in it.
        vfs.sync_dir(dir)?;
        for new_dir in &new_dirs {
            vfs.sync_dir(&vfs::parent_dir(new_dir))?;
        }
        let open_files = Arc::new(OpenFiles::new(Arc::clone(&vfs), options.max_open_tenants));
        let fs_syncer = vfs.file_system_syncer(dir)?;
        let store = EmbeddedStore {
            fs_syncer,
            vfs,
            dir: dir.to_owned(),
            options,
            journal,
            index,
            tenants: RwLock::new(HashMap::new()),
            open_files,
            writer: Mutex::new(WriterState {
                dirty: HashSet::new(),
                last_sync: Instant::now(),
                synced_pos: 0,
                poisoned: true,
                compacting: false,
            }),
            moving: RwLock::new(()),
            compactor: Mutex::new(()),
        };
        let mut writer = store.lock_writer();
        store.recover(&mut writer)?;
        drop(writer);
        Ok(store)
    }

    /// Makes the derived files and index durable and moves the sync marker to the end of
    /// the journal, so that the next open replays nothing. Called on clean shutdown.
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut writer = self.lock_writer();
        self.sync_locked(&mut writer)
    }

    fn lock_writer(&self) -> MutexGuard<'_, WriterState> {
        self.writer.lock().expect("writer lock poisoned")
    }

    fn tenant_dir(&self, tenant: &TenantId) -> PathBuf {
        self.dir.join("tenants").join(tenant.as_str())
    }

    fn tenant_log(&self, tenant: &TenantId) -> Option<Arc<TenantLog>> {
        let tenants = self.tenants.read().expect("tenants lock poisoned");
        tenants.get(tenant).cloned()
    }

    /// The log of `tenant`, opening (and creating) its files on first use.
    fn open_tenant_log(&self, tenant: &TenantId) -> io::Result<Arc<TenantLog>> {
        if let Some(log) = self.tenant_log(tenant) {
            return Ok(log);
        }
        let log = self.open_tenant_files(tenant)?;
        let mut tenants = self.tenants.write().expect("tenants lock poisoned");
        tenants.insert(tenant.clone(), Arc::clone(&log));
        Ok(log)
    }

    /// Opens (creating if needed) `tenant`'s derived files, with nothing committed yet.
    fn open_tenant_files(&self, tenant: &TenantId) -> io::Result<Arc<TenantLog>> {
        let dir = self.tenant_dir(tenant);
        let created = !self.vfs.is_dir(&dir);
        self.vfs.create_dir_all(&dir)?;
        let log = Arc::new(TenantLog::new(dir.clone(), &self.open_files));
        if created {
            // The files exist before their names are made durable.
            log.files()?;
            self.vfs.sync_dir(&dir)?;
            self.vfs.sync_dir(&self.dir.join("tenants"))?;
        }
        Ok(log)
    }

    /// Rebuilds the committed state: the sync marker from the index, then a replay of the
    /// journal after it. Used on open and after a failed commit. The new state is built
    /// aside and swapped in at the end, so readers never see it half-made.
    fn recover(&self, writer: &mut WriterState) -> Result<(), StoreError> {
        self.journal.refresh_lengths()?;
        // A failed index write is repaired by the replay; queued ids go in first. After an
        // I/O error redb refuses everything until the database is opened again.
        self.index.take_failure();
        if self.index.needs_reopen() || self.index.flush().is_err() {
            self.index.take_failure();
            self.index.reopen(&*self.vfs)?;
            if let Err(err) = self.index.flush() {
                self.index.take_failure();
                return Err(err);
            }
        }
        let start = self.journal.start();
        let mut marker = self.index.read_marker(start)?;
        if marker.applied_pos <= start {
            // A marker at the journal's start (written while a segment was rewritten, or on
            // a first open) replays everything: whatever sizes it names are not trusted.
            marker = Marker {
                applied_pos: start,
                ..Marker::default()
            };
        }
        if marker.applied_pos > self.journal.end() {
            return Err(StoreError::Corrupt(format!(
                "the journal ends at position {} but was synced up to {}: committed frames \
                 are missing",
                self.journal.end(),
                marker.applied_pos
            )));
        }
        let mut staged = HashMap::new();
        for (tenant, size) in &marker.sizes {
            let log = self.open_tenant_files(tenant)?;
            let files = log.files()?;
            if files.offsets.len()? < size * OFFSET_ENTRY_LEN
                || files.nodes.len()? < node_count(*size) * NODE_LEN
            {
                // Derived files lost or cut: rebuild every log from the whole journal.
                tracing::warn!(%tenant, "derived files are shorter than the sync marker; replaying the whole journal");
                staged.clear();
                marker = Marker {
                    applied_pos: start,
                    ..Marker::default()
                };
                break;
            }
            *log.committed.write().expect("committed lock poisoned") = Committed {
                size: *size,
                checkpoint: marker.checkpoints.get(tenant).cloned(),
                removals: marker.removals.get(tenant).cloned().unwrap_or_default(),
            };
            staged.insert(tenant.clone(), log);
        }

        let mut replay = Replay {
            store: self,
            logs: staged,
            frontiers: HashMap::new(),
            event_ids: Vec::new(),
            removals: Vec::new(),
            touched: HashSet::new(),
            starts: HashMap::new(),
        };
        let stop = self.journal.scan(
            marker.applied_pos,
            marker.applied_pos,
            |frame_pos, payload| replay.frame(frame_pos, payload),
        )?;
        let Replay {
            logs,
            event_ids,
            removals,
            touched,
            ..
        } = replay;
        match stop {
            ScanStop::End(_) => {}
            ScanStop::TornTail { pos, reason } => {
                tracing::warn!(
                    pos,
                    reason,
                    "cutting the torn tail of the journal left by a crash"
                );
                self.journal.truncate(pos)?;
            }
            ScanStop::Corrupt { pos, reason } => return Err(corrupt_at(pos, reason)),
        }
        for tenant in &touched {
            let log = &logs[tenant];
            let size = log.committed.read().expect("committed lock poisoned").size;
            let files = log.files()?;
            files.offsets.set_len(size * OFFSET_ENTRY_LEN)?;
            files.nodes.set_len(node_count(size) * NODE_LEN)?;
        }
        self.index.add(event_ids)?;
        self.index.add_removals(removals)?;
        self.index.flush()?;
        *self.tenants.write().expect("tenants lock poisoned") = logs;
        writer.dirty.extend(touched);
        writer.poisoned = false;
        self.sync_locked(writer)
    }

    /// Syncs derived files, then records the sync marker durably.
    fn sync_locked(&self, writer: &mut WriterState) -> Result<(), StoreError> {
        match &self.fs_syncer {
            // Two syncs per tenant written (and a reopen per tenant whose files closed)
            // cost more than one of the whole file system once there are a few.
            Some(syncer) if writer.dirty.len() > self.options.sync_file_system_above => {
                syncer.sync()?;
            }
            _ => {
                for tenant in &writer.dirty {
                    if let Some(log) = self.tenant_log(tenant) {
                        let files = log.files()?;
                        files.offsets.sync_data()?;
                        files.nodes.sync_data()?;
                    }
                }
            }
        }
        if writer.compacting {
            self.index.write_marker(Marker {
                applied_pos: self.journal.start(),
                ..Marker::default()
            })?;
            writer.dirty.clear();
            writer.last_sync = Instant::now();
            writer.synced_pos = self.journal.end();
            return Ok(());
        }
        let end = self.journal.end();
        let mut marker = Marker {
            applied_pos: end,
            ..Marker::default()
        };
        for (tenant, log) in self.tenants.read().expect("tenants lock poisoned").iter() {
            let committed = log.committed.read().expect("committed lock poisoned");
            marker.sizes.insert(tenant.clone(), committed.size);
            if let Some(note) = &committed.checkpoint {
                marker.checkpoints.insert(tenant.clone(), Arc::clone(note));
            }
        }
        self.index.write_marker(marker)?;
        writer.dirty.clear();
        writer.last_sync = Instant::now();
        writer.synced_pos = end;
        Ok(())
    }

    fn commit_locked(
        &self,
        writer: &mut WriterState,
        batch: &CommitBatch,
    ) -> Result<(), StoreError> {
        // 1. Refuse anything that does not extend a log where it ends, before writing.
        let mut seen = HashSet::new();
        for append in &batch.tenants {
            let size = self.tenant_log(&append.tenant).map_or(0, |log| {
                log.committed.read().expect("committed lock poisoned").size
            });
            if append.first_seq != size || !seen.insert(&append.tenant) {
                return Err(StoreError::Conflict {
                    tenant: append.tenant.clone(),
                    first_seq: append.first_seq,
                    size,
                });
            }
            let end = size + append.records.len() as u64;
            for removal in &append.removals {
                removal.check(size, end).map_err(|reason| {
                    StoreError::Corrupt(format!("append to {}: {reason}", append.tenant))
                })?;
            }
            if append.nodes.len() as u64 != node_count(end) - node_count(size) {
                return Err(StoreError::Corrupt(format!(
                    "append to {} brings {} nodes for {} records",
                    append.tenant,
                    append.nodes.len(),
                    append.records.len()
                )));
            }
        }

        // 2. The journal frame: durable when `append_frame` returns.
        let capacity = batch
            .tenants
            .iter()
            .map(|t| {
                t.checkpoint.len() + t.records.iter().map(|r| r.bytes.len() + 16).sum::<usize>()
            })
            .sum();
        let mut frame = FrameBuilder::with_capacity(capacity);
        let mut record_offsets: Vec<Vec<usize>> = Vec::with_capacity(batch.tenants.len());
        for append in &batch.tenants {
            let offsets = append
                .records
                .iter()
                .map(|record| frame.push(EntryKind::Record, &[&record.bytes]))
                .collect();
            record_offsets.push(offsets);
            let tenant = append.tenant.as_str().as_bytes();
            let tenant_len = [u8::try_from(tenant.len()).expect("tenant ids are short")];
            for removal in &append.removals {
                let mut scope = Vec::new();
                removal.encode_scope(&mut scope);
                frame.push(
                    EntryKind::Removal,
                    &[&tenant_len, tenant, &removal.by_seq.to_be_bytes(), &scope],
                );
            }
            frame.push(
                EntryKind::Checkpoint,
                &[&tenant_len, tenant, append.checkpoint.as_bytes()],
            );
        }
        let frame = frame.finish();
        if frame.len() > journal::MAX_FRAME_BYTES {
            return Err(StoreError::Unavailable(io::Error::other(
                "commit batch larger than a journal frame",
            )));
        }
        writer.poisoned = true;
        let frame_pos = self.journal.append_frame(&frame)?;

        // 3. Derived files and the id index; not synced here (the journal has it all).
        for (append, offsets) in batch.tenants.iter().zip(&record_offsets) {
            let files = self.open_tenant_log(&append.tenant)?.files()?;
            let mut offset_bytes = Vec::with_capacity(offsets.len() * OFFSET_ENTRY_BYTES);
            for (record, offset) in append.records.iter().zip(offsets) {
                offset_bytes.extend_from_slice(&(frame_pos + *offset as u64).to_be_bytes());
                offset_bytes.extend_from_slice(&len_u32(record.bytes.len()).to_be_bytes());
            }
            files
                .offsets
                .write_all_at(&offset_bytes, append.first_seq * OFFSET_ENTRY_LEN)?;
            let mut node_bytes = Vec::with_capacity(append.nodes.len() * merkle::HASH_LEN);
            for (_, hash) in &append.nodes {
                node_bytes.extend_from_slice(hash);
            }
            files
                .nodes
                .write_all_at(&node_bytes, node_count(append.first_seq) * NODE_LEN)?;
            writer.dirty.insert(append.tenant.clone());
        }
        let ids = batch
            .tenants
            .iter()
            .flat_map(|append| {
                (append.first_seq..)
                    .zip(&append.records)
                    .filter_map(|(seq, record)| {
                        let id = record.event_id.clone()?;
                        Some((append.tenant.clone(), id, seq))
                    })
            })
            .collect();
        self.index.add(ids)?;
        self.index.add_removals(
            batch
                .tenants
                .iter()
                .flat_map(|append| {
                    let tenant = &append.tenant;
                    append.removals.iter().map(|r| (tenant.clone(), r.clone()))
                })
                .collect(),
        )?;

        // 4. Publish to readers.
        for append in &batch.tenants {
            let log = self.tenant_log(&append.tenant).expect("opened above");
            let mut committed = log.committed.write().expect("committed lock poisoned");
            committed.size = append.first_seq + append.records.len() as u64;
            committed.checkpoint = Some(Arc::clone(&append.checkpoint));
            committed.removals.extend(append.removals.iter().cloned());
        }
        writer.poisoned = false;

        let since_sync = self.journal.end() - writer.synced_pos;
        if since_sync >= self.options.sync_every_bytes
            || writer.last_sync.elapsed() >= self.options.sync_every
        {
            self.sync_locked(writer)?;
        }
        Ok(())
    }
}

impl EmbeddedStore {
    /// Rewrites sealed segment `base` (of `len` bytes) without the bodies of the removed
    /// records it holds, when that is worth it: always for an erased record (its data must
    /// go), else when it saves an eighth of the segment. Each taken-out record leaves a
    /// compacted entry (its seq and leaf hash) in its place, so the journal still proves
    /// every checkpoint.
    ///
    /// The steps, and what a crash after each leaves: (1) the rewrite is written aside and
    /// synced (a stray file, removed on open); (2) the sync marker is set to replay the whole
    /// journal on the next open; (3) the rewrite replaces the segment by a rename, synced,
    /// and the moved entries' offsets are rewritten, readers held off meanwhile; (4) the
    /// offsets are synced and the taken-out ids forgotten; (5) the marker is moved back to
    /// the journal's end. A crash between (2) and (5) costs a full replay, which rebuilds
    /// the derived files from whichever segment the rename left.
    fn compact_segment(
        &self,
        base: u64,
        len: u64,
        pass: &mut Pass,
        stats: &mut CompactStats,
    ) -> Result<(), StoreError> {
        let end = base + len;
        // Is it worth it? (Planned on a copy of what the pass has met: the rewrite plans
        // every entry again, the same way.)
        let met = pass.starts.clone();
        let (mut saved, mut must) = (0u64, false);
        self.scan_segment(base, end, |_, entries| {
            for entry in entries {
                match pass.plan(entry)? {
                    Plan::Keep(_) => {}
                    Plan::Compact { erased, .. } => {
                        saved += entry.body.len() as u64;
                        must |= erased;
                    }
                    Plan::Drop => saved += (journal::ENTRY_HEADER_LEN + entry.body.len()) as u64,
                    Plan::Prefix(_) => must = true,
                }
            }
            Ok(())
        })?;
        if !must && (saved == 0 || saved * 8 < len) {
            return Ok(());
        }
        pass.starts = met;
        // (1) The rewrite, aside.
        let mut writer = self.journal.compact_writer(base)?;
        let mut moved: HashMap<TenantId, Vec<(u64, u64, u32)>> = HashMap::new();
        let mut forget = Vec::new();
        let mut n_records = 0;
        self.scan_segment(base, end, |_, entries| {
            let mut frame = FrameBuilder::with_capacity(4096);
            let mut placed = Vec::with_capacity(entries.len());
            for entry in entries {
                let plan = pass.plan(entry)?;
                if entry.kind == EntryKind::Record && !matches!(plan, Plan::Keep(_)) {
                    // The body leaves the journal: so does its id.
                    let corrupt = |err: veritrail_core::record::DecodeError| {
                        corrupt_at(entry.pos, err.to_string())
                    };
                    let id = veritrail_core::record::peek_event_id(entry.body).map_err(corrupt)?;
                    if let Some(id) = id {
                        let (tenant, _) =
                            veritrail_core::record::peek_header(entry.body).map_err(corrupt)?;
                        forget.push((tenant, id));
                    }
                    n_records += 1;
                }
                match plan {
                    Plan::Keep(place) => {
                        let at = frame.push(entry.kind, &[entry.body]);
                        if let Some((tenant, seq, body_len)) = place {
                            placed.push((tenant, seq, at, body_len));
                        }
                    }
                    Plan::Compact { tenant, seq, .. } => {
                        let body = compacted_body(&tenant, seq, &merkle::leaf_hash(entry.body));
                        let at = frame.push(EntryKind::Compacted, &[&body]);
                        placed.push((tenant, seq, at, 0));
                    }
                    Plan::Drop => {}
                    Plan::Prefix(tenant) => {
                        let prefix = &pass.targets[&tenant];
                        frame.push(EntryKind::Prefix, &[&prefix_body(&tenant, prefix)]);
                    }
                }
            }
            if frame.is_empty() {
                return Ok(());
            }
            let frame_at = writer.push(&frame.finish())?;
            for (tenant, seq, at, body_len) in placed {
                moved
                    .entry(tenant)
                    .or_default()
                    .push((seq, base + frame_at + at as u64, body_len));
            }
            Ok(())
        })?;
        writer.sync()?;
        let new_len = writer.len();
        // (2) A crash from here on replays the whole journal.
        {
            let mut state = self.lock_writer();
            if state.poisoned {
                return Err(StoreError::Unavailable(io::Error::other(
                    "an earlier commit failed; load() must run first",
                )));
            }
            state.compacting = true;
            self.sync_locked(&mut state)?;
        }
        let result = self.put_in_place(base, writer, &moved, &forget);
        let mut state = self.lock_writer();
        if let Err(err) = result {
            // The running state may be half moved: rebuilt from the journal by the next
            // load(), as after a failed commit; the marker still says "replay everything".
            state.poisoned = true;
            return Err(err);
        }
        // (5) Back to normal.
        state.compacting = false;
        self.sync_locked(&mut state)?;
        stats.rewritten += 1;
        stats.records += n_records;
        stats.bytes_before += len;
        stats.bytes_after += new_len;
        if new_len <= journal::SEGMENT_HEADER_LEN {
            stats.deleted += 1;
        }
        tracing::info!(
            base,
            before = len,
            after = new_len,
            records = n_records,
            "compacted a journal segment"
        );
        Ok(())
    }

    /// Gives back the disk blocks of the derived entries below `tenant`'s prefix of
    /// `size` records, which nothing reads: its offsets, and its node hashes but the
    /// prefix's subtree hashes. Holes read as zeros; a file system without them gets zeros.
    fn punch_prefix(&self, tenant: &TenantId, size: u64) -> Result<(), StoreError> {
        let Some(log) = self.tenant_log(tenant) else {
            return Ok(());
        };
        let files = log.files()?;
        files.offsets.punch_hole(0, size * OFFSET_ENTRY_LEN)?;
        let mut first_leaf = 0;
        for node in Frontier::node_ids(size) {
            // A complete subtree's nodes are consecutive in post-order, its root last.
            let from = node_count(first_leaf) * NODE_LEN;
            let root = postorder_index(node) * NODE_LEN;
            files.nodes.punch_hole(from, root - from)?;
            first_leaf += 1 << node.level;
        }
        Ok(())
    }

    /// Steps (3) and (4) of [`EmbeddedStore::compact_segment`].
    fn put_in_place(
        &self,
        base: u64,
        writer: journal::CompactWriter,
        moved: &HashMap<TenantId, Vec<(u64, u64, u32)>>,
        forget: &[(TenantId, EventId)],
    ) -> Result<(), StoreError> {
        let retired;
        {
            // Readers wait until the offsets match the new segment. Commits wait only for
            // the rename: they append to the last segment and write the offsets of seqs
            // past every moved one. (A recovery meanwhile, after a failed commit, replays
            // the whole journal, as the marker says, and writes the same offsets.)
            let _readers_wait = self.moving.write().expect("moving lock poisoned");
            retired = {
                let state = self.lock_writer();
                if state.poisoned {
                    return Err(StoreError::Unavailable(io::Error::other(
                        "an earlier commit failed; load() must run first",
                    )));
                }
                self.journal.replace_segment(base, writer)?
            };
            for (tenant, entries) in moved {
                let log = self
                    .tenant_log(tenant)
                    .ok_or_else(|| StoreError::Corrupt(format!("no log for tenant {tenant}")))?;
                // A tenant's records in one segment have consecutive seqs: one write each.
                let first = entries.iter().map(|(seq, _, _)| *seq).min().unwrap_or(0);
                let mut bytes = vec![0u8; entries.len() * OFFSET_ENTRY_BYTES];
                for &(seq, pos, len) in entries {
                    let at = usize::try_from(seq - first).expect("in memory") * OFFSET_ENTRY_BYTES;
                    let slot = bytes.get_mut(at..at + OFFSET_ENTRY_BYTES).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "tenant {tenant}: seqs of a segment not consecutive"
                        ))
                    })?;
                    slot.copy_from_slice(&offset_entry(pos, len));
                }
                log.files()?
                    .offsets
                    .write_all_at(&bytes, first * OFFSET_ENTRY_LEN)?;
            }
        }
        // The old segment's file closes here, with no lock held.
        drop(retired);
        for tenant in moved.keys() {
            if let Some(log) = self.tenant_log(tenant) {
                log.files()?.offsets.sync_data()?;
            }
        }
        // In slices, each flushed before the next is queued: the sync markers that commits
        // write meanwhile wait behind one slice, not behind millions of deletions.
        for slice in forget.chunks(FORGET_SLICE) {
            self.index.forget(slice.to_vec())?;
            self.index.flush()?;
        }
        Ok(())
    }

    /// Visits the frames from `from` (a frame boundary, or a segment's base) up to `end`,
    /// each parsed into its entries, until `visit` breaks. `paced`: at most
    /// `compact_bytes_per_second` (compaction's reads).
    fn scan_frames(
        &self,
        from: u64,
        end: u64,
        paced: bool,
        mut visit: impl FnMut(u64, &[journal::Entry<'_>]) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let rate = if paced {
            self.options.compact_bytes_per_second
        } else {
            0
        };
        let stop = self.journal.scan(from, u64::MAX, |frame_pos, payload| {
            if frame_pos >= end {
                return Err(None);
            }
            if rate > 0 {
                // Sleep until the bytes read so far are within the budget.
                let due = Duration::from_secs_f64((frame_pos - from) as f64 / rate as f64);
                if let Some(ahead) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(ahead);
                }
            }
            let entries = journal::parse_entries(frame_pos, payload)
                .map_err(|(pos, reason)| Some(corrupt_at(pos, reason)))?;
            match visit(frame_pos, &entries).map_err(Some)? {
                ControlFlow::Continue(()) => Ok(()),
                ControlFlow::Break(()) => Err(None),
            }
        });
        match stop {
            Ok(ScanStop::End(_)) | Err(None) => Ok(()),
            Ok(ScanStop::TornTail { pos, reason } | ScanStop::Corrupt { pos, reason }) => {
                Err(corrupt_at(pos, reason))
            }
            Err(Some(err)) => Err(err),
        }
    }

    /// [`EmbeddedStore::scan_frames`] over segment `base..end`, paced, to its end.
    fn scan_segment(
        &self,
        base: u64,
        end: u64,
        mut visit: impl FnMut(u64, &[journal::Entry<'_>]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.scan_frames(base, end, true, |frame_pos, entries| {
            visit(frame_pos, entries).map(|()| ControlFlow::Continue(()))
        })
    }
}

/// What one compaction pass knows: each log's removals, where each log with removed
/// records at its start is to start, and where the logs met so far start.
#[derive(Default)]
struct Pass {
    removed: HashMap<TenantId, Removed>,
    /// The removed records before each log's first kept one, as the subtree hashes a
    /// prefix entry keeps of them.
    targets: HashMap<TenantId, Frontier>,
    /// Logs whose first entry the pass has met, with the size they start at after it.
    starts: HashMap<TenantId, u64>,
}

/// What a segment's rewrite does with one entry.
enum Plan {
    /// Copied as it is; a record or compacted record says where it goes in the offsets
    /// (tenant, seq, body length: 0 for a compacted one).
    Keep(Option<(TenantId, u64, u32)>),
    /// A removed record: a compacted entry (seq and leaf hash) in its place.
    Compact {
        tenant: TenantId,
        seq: u64,
        erased: bool,
    },
    /// Below where its log starts: left out.
    Drop,
    /// The log's first entry, replaced by the prefix entry its log now starts with.
    Prefix(TenantId),
}

impl Pass {
    /// What to do with `entry`, the next of the journal in this pass.
    fn plan(&mut self, entry: &journal::Entry<'_>) -> Result<Plan, StoreError> {
        let corrupt = |reason: String| corrupt_at(entry.pos, reason);
        let (tenant, seq) = match entry.kind {
            EntryKind::Record => veritrail_core::record::peek_header(entry.body)
                .map_err(|err| corrupt(err.to_string()))?,
            EntryKind::Compacted => {
                let (tenant, seq, _) = split_compacted_entry(entry.body).map_err(corrupt)?;
                (tenant, seq)
            }
            EntryKind::Prefix => {
                let (tenant, prefix) = split_prefix_entry(entry.body).map_err(corrupt)?;
                (tenant, prefix.size())
            }
            EntryKind::Checkpoint => {
                let (tenant, note) = split_checkpoint_entry(entry.body).map_err(corrupt)?;
                let size = checkpoint_note_size(note)
                    .ok_or_else(|| corrupt("a checkpoint without a size".into()))?;
                (tenant, size)
            }
            EntryKind::Removal => return Ok(Plan::Keep(None)),
        };
        let start = match self.starts.get(&tenant) {
            Some(&start) => start,
            None => {
                // The log's first entry: where a prefix entry goes.
                let start = if entry.kind == EntryKind::Prefix {
                    seq
                } else {
                    0
                };
                if let Some(target) = self.targets.get(&tenant)
                    && target.size() > start
                    && entry.kind != EntryKind::Checkpoint
                {
                    self.starts.insert(tenant.clone(), target.size());
                    return Ok(Plan::Prefix(tenant));
                }
                self.starts.insert(tenant.clone(), start);
                if entry.kind == EntryKind::Prefix {
                    return Ok(Plan::Keep(None));
                }
                start
            }
        };
        Ok(match entry.kind {
            EntryKind::Prefix => {
                return Err(corrupt(format!(
                    "a prefix entry of tenant {tenant} after its log's first entry"
                )));
            }
            // A checkpoint of a tree smaller than the prefix cannot be checked any more.
            EntryKind::Record | EntryKind::Compacted | EntryKind::Checkpoint if seq < start => {
                Plan::Drop
            }
            EntryKind::Record => match self.removed.get(&tenant) {
                Some(removed) if removed.by(seq).is_some() => Plan::Compact {
                    erased: removed.is_erased(seq),
                    tenant,
                    seq,
                },
                _ => Plan::Keep(Some((tenant, seq, len_u32(entry.body.len())))),
            },
            EntryKind::Compacted => Plan::Keep(Some((tenant, seq, 0))),
            _ => Plan::Keep(None),
        })
    }
}

/// Damage found at journal position `pos`.
fn corrupt_at(pos: u64, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("journal position {pos}: {reason}"))
}

/// Re-applies journal frames to the derived files and the index.
struct Replay<'a> {
    store: &'a EmbeddedStore,
    /// The state being rebuilt; swapped in when the replay is done.
    logs: HashMap<TenantId, Arc<TenantLog>>,
    frontiers: HashMap<TenantId, Frontier>,
    event_ids: Vec<(TenantId, EventId, u64)>,
    removals: Vec<(TenantId, Removal)>,
    touched: HashSet<TenantId>,
    /// Logs that start with a prefix entry, and its size: their entries below it, which
    /// a compaction cut short may have left, are skipped.
    starts: HashMap<TenantId, u64>,
}

impl Replay<'_> {
    fn log(&mut self, tenant: &TenantId) -> io::Result<Arc<TenantLog>> {
        if let Some(log) = self.logs.get(tenant) {
            return Ok(Arc::clone(log));
        }
        let log = self.store.open_tenant_files(tenant)?;
        self.logs.insert(tenant.clone(), Arc::clone(&log));
        Ok(log)
    }

    fn frame(&mut self, frame_pos: u64, payload: &[u8]) -> Result<(), StoreError> {
        let entries = journal::parse_entries(frame_pos, payload)
            .map_err(|(pos, reason)| corrupt_at(pos, reason))?;
        for entry in entries {
            match entry.kind {
                EntryKind::Record => self.record(entry.pos, entry.body)?,
                EntryKind::Compacted => self.compacted(entry.pos, entry.body)?,
                EntryKind::Prefix => self.prefix(entry.pos, entry.body)?,
                EntryKind::Checkpoint => {
                    let (tenant, note) = split_checkpoint_entry(entry.body)
                        .map_err(|reason| corrupt_at(entry.pos, reason))?;
                    if checkpoint_note_size(note).unwrap_or(0) < self.start(&tenant) {
                        continue;
                    }
                    let log = self.log(&tenant)?;
                    log.committed
                        .write()
                        .expect("committed lock poisoned")
                        .checkpoint = Some(Arc::from(note));
                }
                EntryKind::Removal => {
                    let (tenant, removal) = split_removal_entry(entry.body)
                        .map_err(|reason| corrupt_at(entry.pos, reason))?;
                    let log = self.log(&tenant)?;
                    let mut committed = log.committed.write().expect("committed lock poisoned");
                    // The reporting record comes first in its frame, so it is replayed.
                    if removal.by_seq >= committed.size {
                        return Err(corrupt_at(
                            entry.pos,
                            format!(
                                "a removal reported by seq {} of a log of {}",
                                removal.by_seq, committed.size
                            ),
                        ));
                    }
                    if !committed
                        .removals
                        .iter()
                        .any(|r| r.by_seq == removal.by_seq)
                    {
                        committed.removals.push(removal.clone());
                        self.removals.push((tenant, removal));
                    }
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, pos: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let record = Record::decode(bytes).map_err(|err| corrupt_at(pos, err))?;
        let tenant = record.tenant().clone();
        let seq = record.seq();
        if seq < self.start(&tenant) {
            return Ok(());
        }
        self.leaf(
            &tenant,
            seq,
            pos,
            len_u32(bytes.len()),
            merkle::leaf_hash(bytes),
        )?;
        if let Some(id) = record.event().id() {
            self.event_ids.push((tenant, id.clone(), seq));
        }
        Ok(())
    }

    /// A record whose body compaction took out: its leaf hash, and an offset entry of no
    /// length (nothing reads a removed record).
    fn compacted(&mut self, pos: u64, body: &[u8]) -> Result<(), StoreError> {
        let (tenant, seq, hash) =
            split_compacted_entry(body).map_err(|reason| corrupt_at(pos, reason))?;
        if seq < self.start(&tenant) {
            return Ok(());
        }
        self.leaf(&tenant, seq, pos, 0, hash)
    }

    /// Where `tenant`'s log starts: its prefix entry's size, or 0.
    fn start(&self, tenant: &TenantId) -> u64 {
        self.starts.get(tenant).copied().unwrap_or(0)
    }

    /// A log's first entry, standing for its removed first records: the log starts at the
    /// prefix's size, with its subtree hashes as the nodes proofs need of them.
    fn prefix(&mut self, pos: u64, body: &[u8]) -> Result<(), StoreError> {
        let (tenant, prefix) =
            split_prefix_entry(body).map_err(|reason| corrupt_at(pos, reason))?;
        let log = self.log(&tenant)?;
        let mut committed = log.committed.write().expect("committed lock poisoned");
        if committed.size != 0 || self.starts.contains_key(&tenant) {
            return Err(corrupt_at(
                pos,
                format!("a prefix entry of tenant {tenant} after its log's first entry"),
            ));
        }
        write_prefix(&log, &prefix)?;
        committed.size = prefix.size();
        self.starts.insert(tenant.clone(), prefix.size());
        self.frontiers.insert(tenant.clone(), prefix);
        self.touched.insert(tenant);
        Ok(())
    }

    /// Appends leaf `seq` of `tenant` (the log's next): its nodes and its offset entry.
    fn leaf(
        &mut self,
        tenant: &TenantId,
        seq: u64,
        pos: u64,
        len: u32,
        hash: Hash,
    ) -> Result<(), StoreError> {
        let corrupt = |reason: String| corrupt_at(pos, reason);
        let log = self.log(tenant)?;
        let size = log.committed.read().expect("committed lock poisoned").size;
        if seq != size {
            return Err(corrupt(format!(
                "record of tenant {tenant} has seq {seq} where seq {size} was expected"
            )));
        }
        if !self.frontiers.contains_key(tenant) {
            let ids = Frontier::node_ids(size);
            let hashes = read_node_hashes(&log, size, &ids)?;
            let frontier =
                Frontier::from_parts(size, hashes).map_err(|err| corrupt(err.to_string()))?;
            self.frontiers.insert(tenant.clone(), frontier);
        }
        let frontier = self.frontiers.get_mut(tenant).expect("inserted above");
        write_leaf(&log, frontier, pos, len, hash)?;
        log.committed.write().expect("committed lock poisoned").size = seq + 1;
        self.touched.insert(tenant.clone());
        Ok(())
    }
}

/// Appends leaf `hash` (the next seq, `frontier.size()`) to `frontier` and writes its
/// derived entries: the nodes it completes, and its offset entry (`pos`, `len`).
fn write_leaf(
    log: &Arc<TenantLog>,
    frontier: &mut Frontier,
    pos: u64,
    len: u32,
    hash: Hash,
) -> io::Result<()> {
    let seq = frontier.size();
    let mut node_bytes = Vec::with_capacity(2 * merkle::HASH_LEN);
    frontier.append(hash, |_, hash| {
        node_bytes.extend_from_slice(&hash);
    });
    let files = log.files()?;
    files
        .nodes
        .write_all_at(&node_bytes, node_count(seq) * NODE_LEN)?;
    files
        .offsets
        .write_all_at(&offset_entry(pos, len), seq * OFFSET_ENTRY_LEN)
}

/// An offset file entry: the entry's journal position and its body length.
fn offset_entry(pos: u64, len: u32) -> [u8; OFFSET_ENTRY_BYTES] {
    let mut offset = [0u8; OFFSET_ENTRY_BYTES];
    offset[..8].copy_from_slice(&pos.to_be_bytes());
    offset[8..].copy_from_slice(&len.to_be_bytes());
    offset
}

/// The body of a compacted entry: tenant length, tenant, seq, leaf hash.
fn compacted_body(tenant: &TenantId, seq: u64, hash: &Hash) -> Vec<u8> {
    let tenant = tenant.as_str().as_bytes();
    let mut body = Vec::with_capacity(1 + tenant.len() + 8 + merkle::HASH_LEN);
    body.push(u8::try_from(tenant.len()).expect("tenant ids are short"));
    body.extend_from_slice(tenant);
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(hash);
    body
}

/// The body of a prefix entry: tenant length, tenant, size, the subtree hashes.
fn prefix_body(tenant: &TenantId, prefix: &Frontier) -> Vec<u8> {
    let tenant = tenant.as_str().as_bytes();
    let mut body = Vec::with_capacity(1 + tenant.len() + 8 + 64 * merkle::HASH_LEN);
    body.push(u8::try_from(tenant.len()).expect("tenant ids are short"));
    body.extend_from_slice(tenant);
    body.extend_from_slice(&prefix.size().to_be_bytes());
    for hash in prefix.hashes() {
        body.extend_from_slice(hash);
    }
    body
}

/// Splits a prefix entry's body into its tenant and the frontier its log starts with.
pub(crate) fn split_prefix_entry(body: &[u8]) -> Result<(TenantId, Frontier), String> {
    let (tenant, rest) = split_tenant(body, "prefix")?;
    let (size, hashes) = rest.split_at_checked(8).ok_or("prefix entry cut short")?;
    let size = u64::from_be_bytes(size.try_into().expect("8 bytes"));
    if size == 0 || hashes.len() != size.count_ones() as usize * merkle::HASH_LEN {
        return Err(format!(
            "prefix entry of size {size} with {} hash bytes",
            hashes.len()
        ));
    }
    let hashes = hashes
        .chunks_exact(merkle::HASH_LEN)
        .map(|hash| hash.try_into().expect("32 bytes"))
        .collect();
    let prefix = Frontier::from_parts(size, hashes).map_err(|err| err.to_string())?;
    Ok((tenant, prefix))
}

/// The tree size a signed checkpoint note names (its body's second line).
pub(crate) fn checkpoint_note_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.parse().ok()
}

/// Writes the subtree hashes of a log's prefix in their places in its `nodes` file.
fn write_prefix(log: &Arc<TenantLog>, prefix: &Frontier) -> io::Result<()> {
    let files = log.files()?;
    for (node, hash) in Frontier::node_ids(prefix.size())
        .into_iter()
        .zip(prefix.hashes())
    {
        files
            .nodes
            .write_all_at(hash, postorder_index(node) * NODE_LEN)?;
    }
    Ok(())
}

/// Splits a compacted entry's body into its tenant, seq and leaf hash.
pub(crate) fn split_compacted_entry(body: &[u8]) -> Result<(TenantId, u64, Hash), String> {
    let (tenant, rest) = split_tenant(body, "compacted")?;
    if rest.len() != 8 + merkle::HASH_LEN {
        return Err("compacted entry of the wrong length".into());
    }
    let seq = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
    let hash: Hash = rest[8..].try_into().expect("32 bytes");
    Ok((tenant, seq, hash))
}

/// Splits a checkpoint entry's body into its tenant and note.
pub(crate) fn split_checkpoint_entry(body: &[u8]) -> Result<(TenantId, &str), String> {
    let (tenant, note) = split_tenant(body, "checkpoint")?;
    let note = std::str::from_utf8(note).map_err(|_| "checkpoint note is not UTF-8")?;
    Ok((tenant, note))
}

/// Splits a removal entry's body into its tenant and removal.
pub(crate) fn split_removal_entry(body: &[u8]) -> Result<(TenantId, Removal), String> {
    let (tenant, rest) = split_tenant(body, "removal")?;
    let (by_seq, scope) = rest.split_at_checked(8).ok_or("removal entry cut short")?;
    let by_seq = u64::from_be_bytes(by_seq.try_into().expect("8 bytes"));
    Ok((tenant, Removal::decode_scope(by_seq, scope)?))
}

/// The tenant every entry but a record's begins with (its length in one byte, then the
/// id), and the rest of the body; `kind` names the entry in the errors.
fn split_tenant<'a>(body: &'a [u8], kind: &str) -> Result<(TenantId, &'a [u8]), String> {
    let (&tenant_len, rest) = body
        .split_first()
        .ok_or_else(|| format!("empty {kind} entry"))?;
    let (tenant, rest) = rest
        .split_at_checked(usize::from(tenant_len))
        .ok_or_else(|| format!("{kind} entry cut short"))?;
    let tenant = std::str::from_utf8(tenant)
        .ok()
        .and_then(|t| TenantId::parse(t).ok())
        .ok_or_else(|| format!("{kind} entry names a bad tenant"))?;
    Ok((tenant, rest))
}

fn read_node_hashes(
    log: &Arc<TenantLog>,
    size: u64,
    ids: &[NodeId],
) -> Result<Vec<Hash>, StoreError> {
    let files = log.files()?;
    ids.iter()
        .map(|&node| {
            if !node.is_complete_in(size) {
                return Err(StoreError::NotFound(format!(
                    "node {node:?} is not complete in a tree of {size}"
                )));
            }
            let mut hash = [0u8; merkle::HASH_LEN];
            files
                .nodes
                .read_exact_at(&mut hash, postorder_index(node) * NODE_LEN)?;
            Ok(hash)
        })
        .collect()
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("record sizes are bounded by record::MAX_RECORD_BYTES")
}

impl Drop for EmbeddedStore {
    /// A clean close moves the sync marker to the end, so the next open replays nothing.
    fn drop(&mut self) {
        let mut writer = self.lock_writer();
        if !writer.poisoned
            && let Err(err) = self.sync_locked(&mut writer)
        {
            tracing::warn!(%err, "could not sync the ledger on close; the next open replays");
        }
    }
}

impl LedgerStore for EmbeddedStore {
    fn load(&self) -> Result<Vec<TenantState>, StoreError> {
        let mut writer = self.lock_writer();
        // A failed index transaction may not have reached a commit yet (the failure is
        // then seen by the next id lookup): recovery opens the index again either way.
        if writer.poisoned || self.index.needs_reopen() {
            self.recover(&mut writer)?;
        }
        let tenants = self.tenants.read().expect("tenants lock poisoned");
        tenants
            .iter()
            .map(|(tenant, log)| {
                let committed = log
                    .committed
                    .read()
                    .expect("committed lock poisoned")
                    .clone();
                Ok(TenantState {
                    tenant: tenant.clone(),
                    size: committed.size,
                    frontier: read_node_hashes(
                        log,
                        committed.size,
                        &Frontier::node_ids(committed.size),
                    )?,
                    checkpoint: committed.checkpoint,
                    removals: committed.removals,
                })
            })
            .collect()
    }

    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let mut writer = self.lock_writer();
        if writer.poisoned {
            return Err(StoreError::Unavailable(io::Error::other(
                "an earlier commit failed; load() must run first",
            )));
        }
        if let Some(failure) = self.index.take_failure() {
            writer.poisoned = true;
            return Err(failure.to_store_error("the event id index failed: "));
        }
        self.commit_locked(&mut writer, batch)
    }

    fn find_event_ids(
        &self,
        tenant: &TenantId,
        ids: &[&EventId],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        self.index.lookup(tenant, ids)
    }

    fn read_records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(log) = self.tenant_log(tenant) else {
            return Ok(Vec::new());
        };
        let size = log.committed.read().expect("committed lock poisoned").size;
        if from_seq >= size {
            return Ok(Vec::new());
        }
        let n_records = usize::try_from(size - from_seq)
            .unwrap_or(usize::MAX)
            .min(limit);
        let _not_moving = self.moving.read().expect("moving lock poisoned");
        let mut offsets = vec![0u8; n_records * OFFSET_ENTRY_BYTES];
        log.files()?
            .offsets
            .read_exact_at(&mut offsets, from_seq * OFFSET_ENTRY_LEN)?;
        let entries: Vec<(u64, usize)> = offsets
            .chunks_exact(OFFSET_ENTRY_BYTES)
            .map(|entry| {
                let pos = u64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
                let len = u32::from_be_bytes(entry[8..].try_into().expect("4 bytes"));
                (pos, len as usize)
            })
            .collect();
        self.journal
            .read_entries(&entries, EntryKind::Record)
            .map_err(StoreError::from)
    }

    fn read_nodes(&self, tenant: &TenantId, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let Some(log) = self.tenant_log(tenant) else {
            return Err(StoreError::NotFound(format!("no log for tenant {tenant}")));
        };
        let size = log.committed.read().expect("committed lock poisoned").size;
        read_node_hashes(&log, size, ids)
    }

    fn size(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        Ok(self.tenant_log(tenant).map_or(0, |log| {
            log.committed.read().expect("committed lock poisoned").size
        }))
    }

    fn checkpoint(&self, tenant: &TenantId) -> Result<Option<Arc<str>>, StoreError> {
        Ok(self.tenant_log(tenant).and_then(|log| {
            log.committed
                .read()
                .expect("committed lock poisoned")
                .checkpoint
                .clone()
        }))
    }

    fn live_bounds(&self) -> Option<(PathBuf, LiveBounds)> {
        // Between two commits, the journal's end and every log's size agree, and the
        // derived entries of every record below those sizes are written.
        let writer = self.lock_writer();
        if writer.poisoned {
            return None;
        }
        let journal_end = self.journal.end();
        let sizes = self
            .tenants
            .read()
            .expect("tenants lock poisoned")
            .iter()
            .map(|(tenant, log)| {
                let size = log.committed.read().expect("committed lock poisoned").size;
                (tenant.clone(), size)
            })
            .collect();
        drop(writer);
        Some((self.dir.clone(), LiveBounds { journal_end, sizes }))
    }

    fn compact(&self) -> Result<CompactStats, StoreError> {
        let _one_at_a_time = self.compactor.lock().expect("compactor lock poisoned");
        let mut pass = Pass::default();
        for (tenant, log) in self.tenants.read().expect("tenants lock poisoned").iter() {
            let committed = log.committed.read().expect("committed lock poisoned");
            if committed.removals.is_empty() {
                continue;
            }
            let mut removed = Removed::default();
            for removal in &committed.removals {
                removed.add(removal);
            }
            // The removed records before the first kept one: the log can start after them.
            let kept = removed.next_kept(0).min(committed.size);
            if kept > 0 {
                let hashes = read_node_hashes(log, committed.size, &Frontier::node_ids(kept))?;
                let prefix = Frontier::from_parts(kept, hashes)
                    .map_err(|err| StoreError::Corrupt(err.to_string()))?;
                pass.targets.insert(tenant.clone(), prefix);
            }
            pass.removed.insert(tenant.clone(), removed);
        }
        let mut stats = CompactStats::default();
        if pass.removed.is_empty() {
            return Ok(stats);
        }
        // An erased record's data must go even from the segment appended to: seal it. (Only
        // logs with erasures make reading that segment worth it.)
        let (last_base, last_len) = self.journal.last_segment_range();
        let mut erased_in_last = false;
        if pass.removed.values().any(Removed::has_erasures) {
            self.scan_segment(last_base, last_base + last_len, |_, entries| {
                for entry in entries.iter().filter(|e| e.kind == EntryKind::Record) {
                    let (tenant, seq) = veritrail_core::record::peek_header(entry.body)
                        .map_err(|err| StoreError::Corrupt(err.to_string()))?;
                    erased_in_last |= pass.removed.get(&tenant).is_some_and(|r| r.is_erased(seq));
                }
                Ok(())
            })?;
        }
        if erased_in_last {
            let state = self.lock_writer();
            if !state.poisoned {
                self.journal.seal()?;
            }
        }
        for (base, len) in self.journal.sealed_segments() {
            self.compact_segment(base, len, &mut pass, &mut stats)?;
        }
        for (tenant, &start) in &pass.starts {
            if start > 0 {
                self.punch_prefix(tenant, start)?;
            }
        }
        Ok(stats)
    }

    fn rewrite_derived(&self, tenant: &TenantId, bounds: &LiveBounds) -> Result<(), StoreError> {
        let size = bounds.sizes.get(tenant).copied().unwrap_or(0);
        let Some(log) = self.tenant_log(tenant) else {
            return Err(StoreError::NotFound(format!("no log for tenant {tenant}")));
        };
        // Commits only write entries of seqs at or past `size` (and the nodes those
        // complete, which come after every node of the first `size` leaves), so this
        // rewrite of the entries below `size` needs no lock.
        let mut frontier = Frontier::new();
        let mut start = 0;
        self.scan_frames(
            self.journal.start(),
            bounds.journal_end,
            false,
            |_, entries| {
                for entry in entries {
                    let (record_tenant, seq, hash, len) = match entry.kind {
                        EntryKind::Prefix => {
                            let (prefix_tenant, prefix) = split_prefix_entry(entry.body)
                                .map_err(|reason| corrupt_at(entry.pos, reason))?;
                            if prefix_tenant == *tenant && frontier.size() == 0 {
                                write_prefix(&log, &prefix)?;
                                start = prefix.size();
                                frontier = prefix;
                            }
                            continue;
                        }
                        EntryKind::Record => {
                            let (record_tenant, seq) =
                                veritrail_core::record::peek_header(entry.body)
                                    .map_err(|err| corrupt_at(entry.pos, err.to_string()))?;
                            let len = len_u32(entry.body.len());
                            (record_tenant, seq, merkle::leaf_hash(entry.body), len)
                        }
                        EntryKind::Compacted => {
                            let (record_tenant, seq, hash) = split_compacted_entry(entry.body)
                                .map_err(|reason| corrupt_at(entry.pos, reason))?;
                            (record_tenant, seq, hash, 0)
                        }
                        EntryKind::Checkpoint | EntryKind::Removal => continue,
                    };
                    if record_tenant != *tenant || seq >= size || seq < start {
                        continue;
                    }
                    if seq != frontier.size() {
                        return Err(corrupt_at(
                            entry.pos,
                            format!(
                                "record {seq} of tenant {tenant} where {} was expected",
                                frontier.size()
                            ),
                        ));
                    }
                    write_leaf(&log, &mut frontier, entry.pos, len, hash)?;
                }
                // Every record below `size` rewritten: stop reading.
                Ok(if frontier.size() >= size {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )?;
        if frontier.size() != size {
            return Err(StoreError::Corrupt(format!(
                "the journal holds {} records of tenant {tenant}, not {size}",
                frontier.size()
            )));
        }
        let files = log.files()?;
        files.offsets.sync_data()?;
        files.nodes.sync_data()?;
        tracing::warn!(%tenant, size, "rewrote the tenant's derived files from the journal");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postorder_matches_the_order_nodes_complete() {
        let mut frontier = Frontier::new();
        let mut completed = Vec::new();
        for leaf in 0..1000u64 {
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&leaf.to_be_bytes());
            frontier.append(hash, |node, _| completed.push(node));
            assert_eq!(node_count(leaf + 1), completed.len() as u64);
        }
        for (position, node) in completed.iter().enumerate() {
            assert_eq!(postorder_index(*node), position as u64, "{node:?}");
        }
    }
}
