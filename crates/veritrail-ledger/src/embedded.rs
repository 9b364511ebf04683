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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use veritrail_core::event::{EventId, TenantId};
use veritrail_core::merkle::{self, Frontier, Hash, NodeId};
use veritrail_core::record::Record;

use crate::index::{IdIndex, Marker};
use crate::journal::{self, EntryKind, FrameBuilder, Journal, ScanStop};
use crate::store::{
    CommitBatch, LedgerStore, Removal, StoreError, TenantState, node_count, postorder_index,
};
use crate::verify::LiveBounds;
use crate::vfs::{self, OpenMode, RealFs, Vfs, VfsFile};

const OFFSET_ENTRY_BYTES: usize = 12;
const OFFSET_ENTRY_LEN: u64 = OFFSET_ENTRY_BYTES as u64;
const NODE_LEN: u64 = merkle::HASH_LEN as u64;

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
    /// Memory the event-id index (`index.redb`) may keep as its cache. redb's own default
    /// (1 GiB) would let the server's memory grow with the log; the operating system's page
    /// cache still holds the file.
    pub index_cache_bytes: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            segment_max_bytes: 1 << 30,
            sync_every_bytes: 64 << 20,
            sync_every: Duration::from_secs(2),
            index_cache_bytes: 64 << 20,
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
    /// Serialises commits, syncs and recovery.
    writer: Mutex<WriterState>,
}

#[derive(Debug)]
struct TenantLog {
    offsets: Box<dyn VfsFile>,
    nodes: Box<dyn VfsFile>,
    committed: RwLock<Committed>,
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
        let index = IdIndex::open(&*vfs, &dir.join("index.redb"), options.index_cache_bytes)?;
        // A name is durable only once its directory is synced, whatever was synced inside
        // it: without these, a power cut could take `journal/` (or the whole directory, on
        // the first open) with every frame acknowledged in it.
        vfs.sync_dir(dir)?;
        for new_dir in &new_dirs {
            vfs.sync_dir(&vfs::parent_dir(new_dir))?;
        }
        let store = EmbeddedStore {
            vfs,
            dir: dir.to_owned(),
            options,
            journal,
            index,
            tenants: RwLock::new(HashMap::new()),
            writer: Mutex::new(WriterState {
                dirty: HashSet::new(),
                last_sync: Instant::now(),
                synced_pos: 0,
                poisoned: true,
            }),
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
        let open = |name: &str| self.vfs.open(&dir.join(name), OpenMode::Create);
        let log = Arc::new(TenantLog {
            offsets: open("offsets")?,
            nodes: open("nodes")?,
            committed: RwLock::new(Committed::default()),
        });
        if created {
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
            if log.offsets.len()? < size * OFFSET_ENTRY_LEN
                || log.nodes.len()? < node_count(*size) * NODE_LEN
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
            ScanStop::Corrupt { pos, reason } => {
                return Err(StoreError::Corrupt(format!(
                    "journal position {pos}: {reason}"
                )));
            }
        }
        for tenant in &touched {
            let log = &logs[tenant];
            let size = log.committed.read().expect("committed lock poisoned").size;
            log.offsets.set_len(size * OFFSET_ENTRY_LEN)?;
            log.nodes.set_len(node_count(size) * NODE_LEN)?;
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
        for tenant in &writer.dirty {
            if let Some(log) = self.tenant_log(tenant) {
                log.offsets.sync_data()?;
                log.nodes.sync_data()?;
            }
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
            let log = self.open_tenant_log(&append.tenant)?;
            let mut offset_bytes = Vec::with_capacity(offsets.len() * OFFSET_ENTRY_BYTES);
            for (record, offset) in append.records.iter().zip(offsets) {
                offset_bytes.extend_from_slice(&(frame_pos + *offset as u64).to_be_bytes());
                offset_bytes.extend_from_slice(&len_u32(record.bytes.len()).to_be_bytes());
            }
            log.offsets
                .write_all_at(&offset_bytes, append.first_seq * OFFSET_ENTRY_LEN)?;
            let mut node_bytes = Vec::with_capacity(append.nodes.len() * merkle::HASH_LEN);
            for (_, hash) in &append.nodes {
                node_bytes.extend_from_slice(hash);
            }
            log.nodes
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

/// Re-applies journal frames to the derived files and the index.
struct Replay<'a> {
    store: &'a EmbeddedStore,
    /// The state being rebuilt; swapped in when the replay is done.
    logs: HashMap<TenantId, Arc<TenantLog>>,
    frontiers: HashMap<TenantId, Frontier>,
    event_ids: Vec<(TenantId, EventId, u64)>,
    removals: Vec<(TenantId, Removal)>,
    touched: HashSet<TenantId>,
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
        let entries = journal::parse_entries(frame_pos, payload).map_err(|(pos, reason)| {
            StoreError::Corrupt(format!("journal position {pos}: {reason}"))
        })?;
        for entry in entries {
            match entry.kind {
                EntryKind::Record => self.record(entry.pos, entry.body)?,
                EntryKind::Checkpoint => {
                    let (tenant, note) = split_checkpoint_entry(entry.body).map_err(|reason| {
                        StoreError::Corrupt(format!("journal position {}: {reason}", entry.pos))
                    })?;
                    let log = self.log(&tenant)?;
                    log.committed
                        .write()
                        .expect("committed lock poisoned")
                        .checkpoint = Some(Arc::from(note));
                }
                EntryKind::Removal => {
                    let (tenant, removal) = split_removal_entry(entry.body).map_err(|reason| {
                        StoreError::Corrupt(format!("journal position {}: {reason}", entry.pos))
                    })?;
                    let log = self.log(&tenant)?;
                    let mut committed = log.committed.write().expect("committed lock poisoned");
                    // The reporting record comes first in its frame, so it is replayed.
                    if removal.by_seq >= committed.size {
                        return Err(StoreError::Corrupt(format!(
                            "journal position {}: a removal reported by seq {} of a log of {}",
                            entry.pos, removal.by_seq, committed.size
                        )));
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
        let corrupt =
            |reason: String| StoreError::Corrupt(format!("journal position {pos}: {reason}"));
        let record = Record::decode(bytes).map_err(|err| corrupt(err.to_string()))?;
        let tenant = record.tenant().clone();
        let seq = record.seq();
        let log = self.log(&tenant)?;
        let size = log.committed.read().expect("committed lock poisoned").size;
        if seq != size {
            return Err(corrupt(format!(
                "record of tenant {tenant} has seq {seq} where seq {size} was expected"
            )));
        }
        if !self.frontiers.contains_key(&tenant) {
            let ids = Frontier::node_ids(size);
            let hashes = read_node_hashes(&log, size, &ids)?;
            let frontier =
                Frontier::from_parts(size, hashes).map_err(|err| corrupt(err.to_string()))?;
            self.frontiers.insert(tenant.clone(), frontier);
        }
        let frontier = self.frontiers.get_mut(&tenant).expect("inserted above");
        let mut node_bytes = Vec::with_capacity(2 * merkle::HASH_LEN);
        frontier.append(merkle::leaf_hash(bytes), |_, hash| {
            node_bytes.extend_from_slice(&hash);
        });
        log.nodes
            .write_all_at(&node_bytes, node_count(seq) * NODE_LEN)?;
        let mut offset = [0u8; OFFSET_ENTRY_BYTES];
        offset[..8].copy_from_slice(&pos.to_be_bytes());
        offset[8..].copy_from_slice(&len_u32(bytes.len()).to_be_bytes());
        log.offsets.write_all_at(&offset, seq * OFFSET_ENTRY_LEN)?;
        if let Some(id) = record.event().id() {
            self.event_ids.push((tenant.clone(), id.clone(), seq));
        }
        log.committed.write().expect("committed lock poisoned").size = seq + 1;
        self.touched.insert(tenant);
        Ok(())
    }
}

/// Splits a checkpoint entry's body into its tenant and note.
pub(crate) fn split_checkpoint_entry(body: &[u8]) -> Result<(TenantId, &str), String> {
    let (&tenant_len, rest) = body.split_first().ok_or("empty checkpoint entry")?;
    let (tenant, note) = rest
        .split_at_checked(usize::from(tenant_len))
        .ok_or("checkpoint entry cut short")?;
    let tenant = std::str::from_utf8(tenant)
        .ok()
        .and_then(|t| TenantId::parse(t).ok())
        .ok_or("checkpoint entry names a bad tenant")?;
    let note = std::str::from_utf8(note).map_err(|_| "checkpoint note is not UTF-8")?;
    Ok((tenant, note))
}

/// Splits a removal entry's body into its tenant and removal.
pub(crate) fn split_removal_entry(body: &[u8]) -> Result<(TenantId, Removal), String> {
    let (&tenant_len, rest) = body.split_first().ok_or("empty removal entry")?;
    let (tenant, rest) = rest
        .split_at_checked(usize::from(tenant_len))
        .ok_or("removal entry cut short")?;
    let tenant = std::str::from_utf8(tenant)
        .ok()
        .and_then(|t| TenantId::parse(t).ok())
        .ok_or("removal entry names a bad tenant")?;
    let (by_seq, scope) = rest.split_at_checked(8).ok_or("removal entry cut short")?;
    let by_seq = u64::from_be_bytes(by_seq.try_into().expect("8 bytes"));
    Ok((tenant, Removal::decode_scope(by_seq, scope)?))
}

fn read_node_hashes(log: &TenantLog, size: u64, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
    ids.iter()
        .map(|&node| {
            if !node.is_complete_in(size) {
                return Err(StoreError::NotFound(format!(
                    "node {node:?} is not complete in a tree of {size}"
                )));
            }
            let mut hash = [0u8; merkle::HASH_LEN];
            log.nodes
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
        let mut offsets = vec![0u8; n_records * OFFSET_ENTRY_BYTES];
        log.offsets
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

    fn rewrite_derived(&self, tenant: &TenantId, bounds: &LiveBounds) -> Result<(), StoreError> {
        let size = bounds.sizes.get(tenant).copied().unwrap_or(0);
        let Some(log) = self.tenant_log(tenant) else {
            return Err(StoreError::NotFound(format!("no log for tenant {tenant}")));
        };
        // Commits only write entries of seqs at or past `size` (and the nodes those
        // complete, which come after every node of the first `size` leaves), so this
        // rewrite of the entries below `size` needs no lock.
        let mut frontier = Frontier::new();
        let mut node_bytes = Vec::new();
        let stop = self.journal.scan(
            self.journal.start(),
            bounds.journal_end,
            |frame_pos, payload| -> Result<(), Option<StoreError>> {
                if frame_pos >= bounds.journal_end || frontier.size() >= size {
                    // Every record below `size` is rewritten: stop reading.
                    return Err(None);
                }
                let corrupt = |pos: u64, reason: String| {
                    Some(StoreError::Corrupt(format!(
                        "journal position {pos}: {reason}"
                    )))
                };
                let entries = journal::parse_entries(frame_pos, payload)
                    .map_err(|(pos, reason)| corrupt(pos, reason))?;
                for entry in entries.iter().filter(|e| e.kind == EntryKind::Record) {
                    let (record_tenant, seq) = veritrail_core::record::peek_header(entry.body)
                        .map_err(|err| corrupt(entry.pos, err.to_string()))?;
                    if record_tenant != *tenant || seq >= size {
                        continue;
                    }
                    if seq != frontier.size() {
                        return Err(Some(StoreError::Corrupt(format!(
                            "journal position {}: record {seq} of tenant {tenant} where {} \
                             was expected",
                            entry.pos,
                            frontier.size()
                        ))));
                    }
                    node_bytes.clear();
                    frontier.append(merkle::leaf_hash(entry.body), |_, hash| {
                        node_bytes.extend_from_slice(&hash);
                    });
                    let mut offset = [0u8; OFFSET_ENTRY_BYTES];
                    offset[..8].copy_from_slice(&entry.pos.to_be_bytes());
                    offset[8..].copy_from_slice(&len_u32(entry.body.len()).to_be_bytes());
                    log.nodes
                        .write_all_at(&node_bytes, node_count(seq) * NODE_LEN)
                        .and_then(|()| log.offsets.write_all_at(&offset, seq * OFFSET_ENTRY_LEN))
                        .map_err(|err| Some(StoreError::from(err)))?;
                }
                Ok(())
            },
        );
        match stop {
            Ok(ScanStop::End(_)) | Err(None) => {}
            Ok(ScanStop::TornTail { pos, reason } | ScanStop::Corrupt { pos, reason }) => {
                return Err(StoreError::Corrupt(format!(
                    "journal position {pos}: {reason}"
                )));
            }
            Err(Some(err)) => return Err(err),
        }
        if frontier.size() != size {
            return Err(StoreError::Corrupt(format!(
                "the journal holds {} records of tenant {tenant}, not {size}",
                frontier.size()
            )));
        }
        log.offsets.sync_data()?;
        log.nodes.sync_data()?;
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
