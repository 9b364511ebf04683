//! The embedded store's index (`index.redb`): event id -> seq per tenant, and the sync
//! marker. Written by its own thread, off the commit path.
//!
//! Why a thread: a redb write transaction costs about half a millisecond even without a
//! sync, which on the sequencer's path halved the throughput of events that carry ids
//! (measured, see ARCHITECTURE.md). So a commit only hands its ids to the indexer and
//! records them in `pending`; the indexer folds everything queued into one transaction.
//! An id is always findable: it stays in `pending` until the transaction holding it has
//! committed, and lookups consult `pending` first.
//!
//! Everything here is derived from the journal. The marker (journal position, every
//! tenant's size and checkpoint at that position) is written durably, in order after the
//! ids before it, and tells recovery where to start replaying.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use veritrail_core::event::{EventId, TenantId};

use crate::store::{Removal, StoreError};
use crate::vfs::Vfs;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const TENANT_SIZES: TableDefinition<&str, u64> = TableDefinition::new("tenant_sizes");
const CHECKPOINTS: TableDefinition<&str, &str> = TableDefinition::new("checkpoints");
const EVENT_IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("event_ids");
const REMOVALS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("removals");
const META_APPLIED_POS: &str = "applied_pos";
const META_FORMAT: &str = "format";
/// Ids forgotten (compaction) since the file was last compacted.
const META_FORGOTTEN: &str = "forgotten";
const INDEX_FORMAT: u64 = 1;

/// The durable starting point of recovery.
#[derive(Debug, Clone, Default)]
pub(crate) struct Marker {
    /// Journal position up to which the derived files and index are durable.
    pub(crate) applied_pos: u64,
    pub(crate) sizes: HashMap<TenantId, u64>,
    pub(crate) checkpoints: HashMap<TenantId, Arc<str>>,
    /// Every removal the index holds (written before the marker that covers it), by tenant
    /// in `by_seq` order.
    pub(crate) removals: HashMap<TenantId, Vec<Removal>>,
}

/// Pending ids by tenant, then id text (so lookups borrow instead of allocating).
type Pending = HashMap<TenantId, HashMap<String, u64>>;

enum Job {
    Ids(Vec<(TenantId, EventId, u64)>),
    Removals(Vec<(TenantId, Removal)>),
    /// Ids of removed records whose bodies compaction took out: forgotten.
    Forget(Vec<(TenantId, EventId)>),
    Marker(Marker, mpsc::Sender<Result<(), IndexFailure>>),
    Flush(mpsc::Sender<Result<(), IndexFailure>>),
}

/// The database, shared with the writer thread; `None` while it is being opened again.
type Slot = RwLock<Option<Arc<Database>>>;

/// The id index and its writer thread.
#[derive(Debug)]
pub(crate) struct IdIndex {
    /// After an I/O error redb refuses everything until the database is opened again
    /// ([`IdIndex::reopen`], from the store's recovery).
    db: Arc<Slot>,
    path: PathBuf,
    cache_bytes: usize,
    /// Ids handed to the indexer whose transaction has not committed yet.
    pending: Arc<Mutex<Pending>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set by the indexer when a transaction failed; the store then recovers.
    failure: Arc<Mutex<Option<IndexFailure>>>,
    /// A transaction failed since the database was last opened: redb refuses everything
    /// after an I/O error, so recovery opens it again.
    needs_reopen: Arc<std::sync::atomic::AtomicBool>,
}

impl IdIndex {
    /// Opens the index at `path`. When at least `compact_after` ids were forgotten since
    /// the file was last compacted, it is compacted first: redb reuses the pages of deleted
    /// entries but never gives them back to the disk by itself.
    pub(crate) fn open(
        vfs: &dyn Vfs,
        path: &Path,
        cache_bytes: usize,
        compact_after: u64,
    ) -> Result<Self, StoreError> {
        let mut builder = Database::builder();
        builder.set_cache_size(cache_bytes);
        let mut database = vfs.create_redb(path, &builder).map_err(redb_err)?;
        compact_if_worth_it(&mut database, compact_after)?;
        let db = Arc::new(RwLock::new(Some(Arc::new(database))));
        let pending = Arc::new(Mutex::new(HashMap::new()));
        let failure = Arc::new(Mutex::new(None));
        let needs_reopen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (jobs, receiver) = mpsc::channel();
        let thread = {
            let (db, pending, failure, needs_reopen) = (
                Arc::clone(&db),
                Arc::clone(&pending),
                Arc::clone(&failure),
                Arc::clone(&needs_reopen),
            );
            std::thread::Builder::new()
                .name("veritrail-indexer".into())
                .spawn(move || run_indexer(&db, &pending, &failure, &needs_reopen, &receiver))
                .map_err(StoreError::Unavailable)?
        };
        Ok(Self {
            db,
            path: path.to_owned(),
            cache_bytes,
            pending,
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
            failure,
            needs_reopen,
        })
    }

    /// Queues ids of a committed batch; findable at once.
    pub(crate) fn add(&self, ids: Vec<(TenantId, EventId, u64)>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        {
            let mut pending = self.pending.lock().expect("pending lock poisoned");
            for (tenant, id, seq) in &ids {
                pending
                    .entry(tenant.clone())
                    .or_default()
                    .insert(id.as_str().to_owned(), *seq);
            }
        }
        self.send(Job::Ids(ids))
    }

    pub(crate) fn lookup(
        &self,
        tenant: &TenantId,
        ids: &[&EventId],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let mut found: Vec<Option<u64>> = {
            let pending = self.pending.lock().expect("pending lock poisoned");
            match pending.get(tenant) {
                None => vec![None; ids.len()],
                Some(pending) => ids
                    .iter()
                    .map(|id| pending.get(id.as_str()).copied())
                    .collect(),
            }
        };
        if found.iter().all(Option::is_some) {
            return Ok(found);
        }
        let txn = current(&self.db)?.begin_read().map_err(redb_err)?;
        let table = match txn.open_table(EVENT_IDS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(found),
            Err(err) => return Err(redb_err(err)),
        };
        for (slot, id) in found.iter_mut().zip(ids) {
            if slot.is_none() {
                *slot = table
                    .get((tenant.as_str(), id.as_str()))
                    .map_err(redb_err)?
                    .map(|seq| seq.value());
            }
        }
        Ok(found)
    }

    /// Queues removals of a committed batch; durable with the next marker.
    pub(crate) fn add_removals(
        &self,
        removals: Vec<(TenantId, Removal)>,
    ) -> Result<(), StoreError> {
        if removals.is_empty() {
            return Ok(());
        }
        self.send(Job::Removals(removals))
    }

    /// Queues ids to forget (records whose bodies compaction took out); durable with the
    /// next marker.
    pub(crate) fn forget(&self, ids: Vec<(TenantId, EventId)>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        {
            let mut pending = self.pending.lock().expect("pending lock poisoned");
            for (tenant, id) in &ids {
                if let Some(ids) = pending.get_mut(tenant) {
                    ids.remove(id.as_str());
                }
            }
        }
        self.send(Job::Forget(ids))
    }

    /// Writes the marker durably after every id queued before it; waits for it.
    pub(crate) fn write_marker(&self, marker: Marker) -> Result<(), StoreError> {
        let (done, wait) = mpsc::channel();
        self.send(Job::Marker(marker, done))?;
        wait_for(&wait)
    }

    /// Waits until every queued id is in a committed transaction.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = mpsc::channel();
        self.send(Job::Flush(done))?;
        wait_for(&wait)
    }

    /// A failure of the indexer since the last call, if any.
    pub(crate) fn take_failure(&self) -> Option<IndexFailure> {
        self.failure.lock().expect("failure lock poisoned").take()
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.jobs.lock().expect("jobs lock poisoned");
        jobs.as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| {
                StoreError::Unavailable(std::io::Error::other("the indexer has stopped"))
            })
    }

    /// The marker as last written durably (or by this process).
    pub(crate) fn read_marker(&self, journal_start: u64) -> Result<Marker, StoreError> {
        read_marker_from(&*current(&self.db)?, journal_start)
    }

    /// Whether a transaction failed since the database was last opened, or opening it
    /// again failed.
    pub(crate) fn needs_reopen(&self) -> bool {
        self.needs_reopen.load(std::sync::atomic::Ordering::Acquire)
            || self.db.read().expect("index slot lock poisoned").is_none()
    }

    /// Opens the database again, after a failure (redb refuses everything after an I/O
    /// error until then). What it lost is replayed from the journal by the caller.
    pub(crate) fn reopen(&self, vfs: &dyn Vfs) -> Result<(), StoreError> {
        let mut slot = self.db.write().expect("index slot lock poisoned");
        drop(slot.take());
        let mut builder = Database::builder();
        builder.set_cache_size(self.cache_bytes);
        // A reader or the writer thread may hold the old database a moment longer, and
        // with it the file's lock.
        let mut attempts = 0;
        loop {
            match vfs.create_redb(&self.path, &builder) {
                Ok(db) => {
                    *slot = Some(Arc::new(db));
                    self.needs_reopen
                        .store(false, std::sync::atomic::Ordering::Release);
                    tracing::info!("the event id index was opened again after a failure");
                    return Ok(());
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if attempts < 200 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(err) => return Err(redb_err(err)),
            }
        }
    }
}

/// The marker stored in an index database (the store's own, or the verifier's read-only
/// view); one that was never written is `journal_start` with no tenants.
pub(crate) fn read_marker_from(
    db: &impl ReadableDatabase,
    journal_start: u64,
) -> Result<Marker, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let mut marker = Marker {
        applied_pos: journal_start,
        ..Marker::default()
    };
    let parse_tenant = |name: &str| {
        TenantId::parse(name)
            .map_err(|_| StoreError::Corrupt(format!("index names a bad tenant {name:?}")))
    };
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(marker),
        Err(err) => return Err(redb_err(err)),
    };
    if let Some(format) = meta.get(META_FORMAT).map_err(redb_err)?
        && format.value() != INDEX_FORMAT
    {
        return Err(StoreError::Corrupt(format!(
            "index format {} is not {INDEX_FORMAT}",
            format.value()
        )));
    }
    if let Some(pos) = meta.get(META_APPLIED_POS).map_err(redb_err)? {
        marker.applied_pos = pos.value();
    }
    for row in txn
        .open_table(TENANT_SIZES)
        .map_err(redb_err)?
        .iter()
        .map_err(redb_err)?
    {
        let (tenant, size) = row.map_err(redb_err)?;
        marker
            .sizes
            .insert(parse_tenant(tenant.value())?, size.value());
    }
    for row in txn
        .open_table(CHECKPOINTS)
        .map_err(redb_err)?
        .iter()
        .map_err(redb_err)?
    {
        let (tenant, note) = row.map_err(redb_err)?;
        marker
            .checkpoints
            .insert(parse_tenant(tenant.value())?, Arc::from(note.value()));
    }
    let removals = match txn.open_table(REMOVALS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(marker),
        Err(err) => return Err(redb_err(err)),
    };
    for row in removals.iter().map_err(redb_err)? {
        let (key, scope) = row.map_err(redb_err)?;
        let (tenant, by_seq) = key.value();
        let removal = Removal::decode_scope(by_seq, scope.value())
            .map_err(|err| StoreError::Corrupt(format!("index: {err}")))?;
        marker
            .removals
            .entry(parse_tenant(tenant)?)
            .or_default()
            .push(removal);
    }
    Ok(marker)
}

impl Drop for IdIndex {
    fn drop(&mut self) {
        self.jobs.lock().expect("jobs lock poisoned").take();
        let thread = self.thread.lock().expect("thread lock poisoned").take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the indexer thread panicked");
        }
    }
}

/// A failure of the index thread, kept for every later caller: its message, and the kind
/// of I/O error behind it, so that a full disk is still a full disk to whoever waits.
#[derive(Debug, Clone)]
pub(crate) struct IndexFailure {
    kind: std::io::ErrorKind,
    message: String,
}

impl IndexFailure {
    fn of(err: &StoreError) -> Self {
        let kind = match err {
            StoreError::Unavailable(io) => io.kind(),
            _ => std::io::ErrorKind::Other,
        };
        Self {
            kind,
            message: err.to_string(),
        }
    }

    /// The failure as a store error: the index is derived, so its failure is storage
    /// unavailable (recovery replays what it lost), of the same kind.
    pub(crate) fn to_store_error(&self, context: &str) -> StoreError {
        StoreError::Unavailable(std::io::Error::new(
            self.kind,
            format!("{context}{}", self.message),
        ))
    }
}

impl std::fmt::Display for IndexFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn wait_for(wait: &mpsc::Receiver<Result<(), IndexFailure>>) -> Result<(), StoreError> {
    match wait.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(failure)) => Err(failure.to_store_error("")),
        Err(_) => Err(StoreError::Unavailable(std::io::Error::other(
            "the indexer has stopped",
        ))),
    }
}

/// The indexer thread: each round takes every queued job and applies them in one
/// The database in `slot`, or "unavailable" while it is being opened again.
fn current(slot: &Slot) -> Result<Arc<Database>, StoreError> {
    slot.read()
        .expect("index slot lock poisoned")
        .clone()
        .ok_or_else(|| {
            StoreError::Unavailable(std::io::Error::other(
                "the event id index is being opened again",
            ))
        })
}

/// transaction, durable when a marker is among them.
fn run_indexer(
    db: &Slot,
    pending: &Mutex<Pending>,
    failure: &Mutex<Option<IndexFailure>>,
    needs_reopen: &std::sync::atomic::AtomicBool,
    jobs: &mpsc::Receiver<Job>,
) {
    while let Ok(first) = jobs.recv() {
        let mut round = vec![first];
        round.extend(jobs.try_iter().take(10_000));
        // After a failure nothing more is written, a marker least of all (it would claim
        // ids that never reached the index), until recovery clears the failure.
        let earlier_failure = failure.lock().expect("failure lock poisoned").clone();
        let result = match earlier_failure {
            Some(failure) => Err(IndexFailure {
                kind: failure.kind,
                message: format!("the index failed earlier: {}", failure.message),
            }),
            None => current(db)
                .and_then(|db| apply(&db, &round))
                .map_err(|err| IndexFailure::of(&err)),
        };
        if let Err(err) = &result {
            needs_reopen.store(true, std::sync::atomic::Ordering::Release);
            tracing::error!(%err, "the event id index could not be written");
            failure
                .lock()
                .expect("failure lock poisoned")
                .get_or_insert_with(|| err.clone());
        }
        for job in round {
            match job {
                // On failure the ids stay pending (still findable) until recovery.
                Job::Ids(ids) if result.is_ok() => {
                    let mut pending = pending.lock().expect("pending lock poisoned");
                    for (tenant, id, seq) in ids {
                        if let Some(ids) = pending.get_mut(&tenant) {
                            if ids.get(id.as_str()) == Some(&seq) {
                                ids.remove(id.as_str());
                            }
                            if ids.is_empty() {
                                pending.remove(&tenant);
                            }
                        }
                    }
                }
                Job::Ids(_) | Job::Removals(_) | Job::Forget(_) => {}
                Job::Marker(_, done) | Job::Flush(done) => {
                    let _ = done.send(result.clone());
                }
            }
        }
    }
}

fn apply(db: &Database, round: &[Job]) -> Result<(), StoreError> {
    let durable = round.iter().any(|job| matches!(job, Job::Marker(..)));
    let mut txn = db.begin_write().map_err(redb_err)?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })
    .map_err(redb_err)?;
    {
        let mut event_ids = txn.open_table(EVENT_IDS).map_err(redb_err)?;
        for job in round {
            match job {
                Job::Ids(ids) => {
                    for (tenant, id, seq) in ids {
                        event_ids
                            .insert((tenant.as_str(), id.as_str()), seq)
                            .map_err(redb_err)?;
                    }
                }
                Job::Forget(ids) => {
                    for (tenant, id) in ids {
                        event_ids
                            .remove((tenant.as_str(), id.as_str()))
                            .map_err(redb_err)?;
                    }
                    let mut meta = txn.open_table(META).map_err(redb_err)?;
                    let forgotten = meta
                        .get(META_FORGOTTEN)
                        .map_err(redb_err)?
                        .map_or(0, |n| n.value());
                    meta.insert(META_FORGOTTEN, forgotten + ids.len() as u64)
                        .map_err(redb_err)?;
                }
                Job::Removals(removals) => {
                    let mut table = txn.open_table(REMOVALS).map_err(redb_err)?;
                    let mut scope = Vec::new();
                    for (tenant, removal) in removals {
                        scope.clear();
                        removal.encode_scope(&mut scope);
                        table
                            .insert((tenant.as_str(), removal.by_seq), scope.as_slice())
                            .map_err(redb_err)?;
                    }
                }
                Job::Marker(marker, _) => {
                    let mut meta = txn.open_table(META).map_err(redb_err)?;
                    meta.insert(META_FORMAT, INDEX_FORMAT).map_err(redb_err)?;
                    meta.insert(META_APPLIED_POS, marker.applied_pos)
                        .map_err(redb_err)?;
                    let mut sizes = txn.open_table(TENANT_SIZES).map_err(redb_err)?;
                    for (tenant, size) in &marker.sizes {
                        sizes.insert(tenant.as_str(), size).map_err(redb_err)?;
                    }
                    let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(redb_err)?;
                    for (tenant, note) in &marker.checkpoints {
                        checkpoints
                            .insert(tenant.as_str(), &**note)
                            .map_err(redb_err)?;
                    }
                }
                Job::Flush(_) => {}
            }
        }
    }
    txn.commit().map_err(redb_err)
}

/// Compacts the index file when `compact_after` or more ids were forgotten since the last
/// time, and resets the count (durably).
fn compact_if_worth_it(db: &mut Database, compact_after: u64) -> Result<(), StoreError> {
    let forgotten = {
        let txn = db.begin_read().map_err(redb_err)?;
        match txn.open_table(META) {
            Ok(meta) => meta
                .get(META_FORGOTTEN)
                .map_err(redb_err)?
                .map_or(0, |n| n.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(err) => return Err(redb_err(err)),
        }
    };
    if forgotten == 0 || forgotten < compact_after {
        return Ok(());
    }
    let started = std::time::Instant::now();
    db.compact()
        .map_err(|err| StoreError::Unavailable(std::io::Error::other(err)))?;
    let txn = db.begin_write().map_err(redb_err)?;
    txn.open_table(META)
        .map_err(redb_err)?
        .insert(META_FORGOTTEN, 0)
        .map_err(redb_err)?;
    txn.commit().map_err(redb_err)?;
    tracing::info!(
        forgotten,
        seconds = started.elapsed().as_secs_f64(),
        "compacted the event id index"
    );
    Ok(())
}

pub(crate) fn redb_err(err: impl Into<redb::Error>) -> StoreError {
    match err.into() {
        redb::Error::Io(err) => StoreError::Unavailable(err),
        redb::Error::Corrupted(msg) => StoreError::Corrupt(format!("index: {msg}")),
        other => StoreError::Unavailable(std::io::Error::other(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_failure_keeps_its_kind_for_every_later_caller() {
        let full = StoreError::Unavailable(std::io::Error::from(std::io::ErrorKind::StorageFull));
        let failure = IndexFailure::of(&full);
        let StoreError::Unavailable(io) = failure.to_store_error("the index failed: ") else {
            panic!("an index failure is storage unavailable");
        };
        // A full disk stays a full disk (507, not 503, at the API).
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        assert!(io.to_string().starts_with("the index failed: "), "{io}");
        let corrupt = IndexFailure::of(&StoreError::Corrupt("crc".into()));
        let StoreError::Unavailable(io) = corrupt.to_store_error("") else {
            panic!("an index failure is storage unavailable");
        };
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
    }
}
