//! The [`Ledger`]: appends through one sequencer with group commit, reads and proofs from
//! the store.
//!
//! The sequencer is a single thread that owns every tenant's Merkle frontier. It takes all
//! append requests waiting in its queue (up to a cap), assigns seqs, encodes and hashes
//! the records, extends the trees, signs one checkpoint per tenant touched and hands the
//! whole batch to [`LedgerStore::commit`] — one durable commit, however many requests and
//! tenants. Only when that returns does any request get its receipts. While a commit is
//! syncing, new requests queue up and form the next batch: that is group commit, and it is
//! how throughput goes past the disk's sync rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::{Event, EventId, TenantId, Timestamp};
use veritrail_core::merkle::{self, Frontier, Hash, NodeId, NodeReader};
use veritrail_core::note::{NoteSigner, NoteVerifier};
use veritrail_core::record::{CatalogFields, Record};

use crate::histogram::{self, Histogram};
use crate::store::{
    AppendedRecord, CommitBatch, LedgerStore, Removal, RemovalScope, Removed, StoreError,
    TenantAppend,
};

/// Most events in one request, and in one commit (requests that do not fit wait for the
/// next). With records of at most `MAX_RECORD_BYTES` (58,074) a commit stays under
/// `journal::MAX_FRAME_BYTES`.
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 10_000;

/// Tuning of the ledger. The deployment's name is the signing key's name: every
/// checkpoint origin is `<key name>/<tenant>`, so a verifier holding the key knows the
/// origins to expect.
#[derive(Debug, Clone, Copy)]
pub struct LedgerConfig {
    /// Most events in one request, and in one commit.
    pub max_batch_events: usize,
    /// Most events waiting for the sequencer: an append that would queue more is refused
    /// at once ([`AppendError::Overloaded`]) rather than waiting behind them. Bounds the
    /// queue's memory and the wait of every acknowledged append.
    pub max_queued_events: usize,
}

/// The default of [`LedgerConfig::max_queued_events`]: about half a second of the
/// sequencer's batched throughput on a small machine.
pub const DEFAULT_MAX_QUEUED_EVENTS: usize = 100_000;

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            max_batch_events: DEFAULT_MAX_BATCH_EVENTS,
            max_queued_events: DEFAULT_MAX_QUEUED_EVENTS,
        }
    }
}

/// What an append returns for each event, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Position of the record in its tenant's log.
    pub seq: u64,
    /// `SHA-256(0x00 || canonical record)`, the leaf the tree commits to.
    pub leaf_hash: Hash,
    /// The event id was already in the log: this is the original record's receipt and
    /// nothing was stored.
    pub duplicate: bool,
    /// A signed checkpoint (signed note) whose tree contains the record.
    pub checkpoint: Arc<str>,
}

/// Why an append failed. Nothing of a failed request is acknowledged; whether it was stored
/// is unknown only for [`AppendError::Unavailable`] and [`AppendError::StorageFull`], and a
/// retry with the same event ids is then safe.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("the ledger could not store the batch: {0}")]
    Unavailable(String),
    /// The disk is full: retry once space is back.
    #[error("the ledger could not store the batch, the disk is full: {0}")]
    StorageFull(String),
    #[error("the ledger is shut down")]
    Closed,
    #[error("a request may carry at most {max} events, this one has {n_events}")]
    TooManyEvents { n_events: usize, max: usize },
    /// The sequencer's queue holds as many events as it may: nothing was queued; retrying
    /// later is safe.
    #[error("the ledger's queue is full ({queued} events waiting); retry later")]
    Overloaded { queued: usize },
}

impl AppendError {
    /// The failure of a commit (or of the reload after one) as every request of the batch
    /// gets it: a full disk stays a full disk.
    fn of_store(err: &StoreError) -> Self {
        match err {
            StoreError::Unavailable(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                AppendError::StorageFull(err.to_string())
            }
            _ => AppendError::Unavailable(err.to_string()),
        }
    }
}

/// Errors of reads and proofs.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("tenant {tenant} has {size} records; {what} is out of range")]
    OutOfRange {
        tenant: TenantId,
        size: u64,
        what: String,
    },
    /// A proof built from stored hashes does not fold to the root of the signed checkpoint
    /// (or the checkpoint itself does not verify): stored data is damaged, and the proof is
    /// not handed out.
    #[error("integrity failure in tenant {tenant}'s log: {what}")]
    Integrity { tenant: TenantId, what: String },
    /// The record was removed (retention or erasure); `by_seq` is the record that reports
    /// the removal.
    #[error("record {seq} of tenant {tenant} was removed, as record {by_seq} reports")]
    Removed {
        tenant: TenantId,
        seq: u64,
        by_seq: u64,
    },
    /// A tree smaller than the log's first kept record: the records before that one were
    /// removed, and only the hashes of their complete subtrees are kept, which prove the
    /// trees from `first_kept` records on but not the smaller ones.
    #[error(
        "the tree of {size} records of tenant {tenant}'s log cannot be proved any more: its \
         records 0..{first_kept} were removed (the last by record {by_seq}), and proofs start \
         at the tree of {first_kept} records"
    )]
    SizeRemoved {
        tenant: TenantId,
        size: u64,
        first_kept: u64,
        by_seq: u64,
    },
}

/// Records read from a log: the kept ones of a range, and where the range ended.
#[derive(Debug, Default)]
pub struct Records {
    /// The kept records of the range, in seq order; removed records are left out.
    pub records: Vec<Record>,
    /// The seq after the last one read, kept or removed: where the next read starts.
    /// Equal to the start when the log ends there.
    pub end: u64,
}

/// An inclusion proof that was checked against a signed checkpoint before it was handed out.
#[derive(Debug, Clone)]
pub struct CheckedInclusion {
    pub seq: u64,
    pub tree_size: u64,
    /// The stored leaf hash of the record.
    pub leaf_hash: Hash,
    pub proof: Vec<Hash>,
    /// The signed checkpoint the proof was checked against (through a consistency proof
    /// when `tree_size` is smaller than its size).
    pub checkpoint: Arc<str>,
    pub checkpoint_size: u64,
}

/// A consistency proof checked against a signed checkpoint before it was handed out.
#[derive(Debug, Clone)]
pub struct CheckedConsistency {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<Hash>,
    pub checkpoint: Arc<str>,
    pub checkpoint_size: u64,
}

/// Running totals of the sequencer, for metrics and benchmarks.
#[derive(Debug)]
pub struct LedgerStats {
    /// Durable commits made.
    pub commits: AtomicU64,
    /// Records stored by those commits.
    pub records: AtomicU64,
    /// Time spent in `LedgerStore::commit`, in nanoseconds.
    pub commit_nanos: AtomicU64,
    /// Requests waiting for the sequencer to take them.
    pub queued: AtomicU64,
    /// Events in those requests and in the batch being committed.
    pub queued_events: AtomicU64,
    /// Appends refused because the queue was full.
    pub refused: AtomicU64,
    /// Records per commit.
    pub commit_records: Histogram,
    /// Seconds per `LedgerStore::commit` (for the embedded store: the write and the
    /// fdatasync).
    pub commit_seconds: Histogram,
}

impl Default for LedgerStats {
    fn default() -> Self {
        Self {
            commits: AtomicU64::new(0),
            records: AtomicU64::new(0),
            commit_nanos: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            queued_events: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            commit_records: Histogram::new(histogram::BATCH_EVENTS),
            commit_seconds: Histogram::new(histogram::LATENCY_SECONDS),
        }
    }
}

/// What the sequencer publishes after every commit: each tenant's committed size. Readers
/// (the search indexer, live tails) wait on [`Ledger::subscribe`] and then read it.
#[derive(Debug, Default)]
struct Published {
    sizes: RwLock<HashMap<TenantId, u64>>,
    /// Every log's removals, as of the last commit.
    removed: RwLock<HashMap<TenantId, Arc<Removed>>>,
}

/// One request to the sequencer: appends to one or more logs, committed together (in one
/// batch, so all or none of them are durable) and answered together.
struct Request {
    parts: Vec<Part>,
    /// The receipts of each part, in order.
    reply: tokio::sync::oneshot::Sender<Answer>,
}

impl Request {
    fn n_events(&self) -> usize {
        self.parts.iter().map(|part| part.events.len()).sum()
    }
}

/// What a request is answered: the receipts of each part, or why none was stored.
type Answer = Result<Vec<Vec<Receipt>>, AppendError>;

/// A request's events for one tenant's log.
struct Part {
    tenant: TenantId,
    /// Each event with the catalog fields its record stores.
    events: Vec<(Event, CatalogFields)>,
    /// Records the (single) event of the part removes.
    removal: Option<RemovalScope>,
}

fn uncatalogued(events: Vec<Event>) -> Vec<(Event, CatalogFields)> {
    events
        .into_iter()
        .map(|event| (event, CatalogFields::default()))
        .collect()
}

/// The ledger: the sequencer thread and the store it writes to.
///
/// Dropping it (or [`Ledger::shutdown`]) stops taking requests, lets the sequencer finish
/// every request already queued, and waits for it.
pub struct Ledger {
    store: Arc<dyn LedgerStore>,
    verifier: NoteVerifier,
    origin_prefix: String,
    max_batch_events: usize,
    max_queued_events: usize,
    queue: Mutex<Option<mpsc::Sender<Request>>>,
    sequencer: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<LedgerStats>,
    published: Arc<Published>,
    commits: tokio::sync::watch::Receiver<u64>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("store", &self.store)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Loads the store's state and starts the sequencer.
    pub fn start(
        store: Arc<dyn LedgerStore>,
        signer: NoteSigner,
        config: LedgerConfig,
    ) -> Result<Ledger, StoreError> {
        let stats = Arc::new(LedgerStats::default());
        let published = Arc::new(Published::default());
        let (commit_sender, commits) = tokio::sync::watch::channel(0);
        let signer_name = signer.name().to_owned();
        let mut sequencer = Sequencer {
            published: Arc::clone(&published),
            commit_sender,
            store: Arc::clone(&store),
            stats: Arc::clone(&stats),
            tenants: HashMap::new(),
            needs_reload: true,
            last_received_at: 0,
            origin_prefix: signer_name.clone(),
            max_batch_events: config.max_batch_events,
            verifier: signer.verifier(),
            signer,
        };
        sequencer.reload()?;
        let verifier = sequencer.verifier.clone();
        let (queue, requests) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("veritrail-sequencer".into())
            .spawn(move || sequencer.run(&requests))
            .map_err(StoreError::Unavailable)?;
        Ok(Ledger {
            store,
            verifier,
            origin_prefix: signer_name,
            max_batch_events: config.max_batch_events,
            max_queued_events: config.max_queued_events,
            queue: Mutex::new(Some(queue)),
            sequencer: Mutex::new(Some(thread)),
            stats,
            published,
            commits,
        })
    }

    /// Appends `events` to `tenant`'s log, with no catalog fields; returns one receipt per
    /// event once the batch holding them is durable.
    pub async fn append(
        &self,
        tenant: TenantId,
        events: Vec<Event>,
    ) -> Result<Vec<Receipt>, AppendError> {
        self.append_catalogued(tenant, uncatalogued(events)).await
    }

    /// [`Ledger::append`] with the catalog fields each event's record stores (a retried
    /// event id keeps the record it was first given).
    pub async fn append_catalogued(
        &self,
        tenant: TenantId,
        events: Vec<(Event, CatalogFields)>,
    ) -> Result<Vec<Receipt>, AppendError> {
        let mut receipts = self.append_parts(vec![(tenant, events)]).await?;
        receipts.pop().ok_or(AppendError::Closed)
    }

    /// Appends each tenant's events to its own log, all in one commit: every part is durable
    /// or none is. Returns the receipts of each part, in order. A tenant may appear in
    /// several parts; its events then follow in part order.
    pub async fn append_parts(
        &self,
        parts: Vec<(TenantId, Vec<(Event, CatalogFields)>)>,
    ) -> Result<Vec<Vec<Receipt>>, AppendError> {
        let parts = parts
            .into_iter()
            .map(|(tenant, events)| Part {
                tenant,
                events,
                removal: None,
            })
            .collect();
        let reply = self.enqueue(parts)?;
        reply.await.map_err(|_| AppendError::Closed)?
    }

    /// Appends one event that reports a removal, and removes `scope` from `tenant`'s log in
    /// the same commit. The removed records stay in the tree as leaf hashes: every
    /// checkpoint and every proof of a kept record still verify. A repeat of the event's id
    /// removes nothing. `scope` must name records already in the log.
    pub async fn append_removal(
        &self,
        tenant: TenantId,
        event: (Event, CatalogFields),
        scope: RemovalScope,
    ) -> Result<Receipt, AppendError> {
        let size = self
            .size(&tenant)
            .map_err(|err| AppendError::of_store(&err))?;
        let removal = Removal {
            by_seq: size,
            scope: scope.clone(),
        };
        if let Err(reason) = removal.check(size, size + 1) {
            return Err(AppendError::Unavailable(format!(
                "a removal out of range: {reason}"
            )));
        }
        let reply = self.enqueue(vec![Part {
            tenant,
            events: vec![event],
            removal: Some(scope),
        }])?;
        let mut receipts = reply.await.map_err(|_| AppendError::Closed)??;
        receipts
            .pop()
            .and_then(|mut part| part.pop())
            .ok_or(AppendError::Closed)
    }

    /// [`Ledger::append`] for threads outside an async runtime.
    pub fn append_blocking(
        &self,
        tenant: TenantId,
        events: Vec<Event>,
    ) -> Result<Vec<Receipt>, AppendError> {
        let reply = self.enqueue(vec![Part {
            tenant,
            events: uncatalogued(events),
            removal: None,
        }])?;
        let mut receipts = reply.blocking_recv().map_err(|_| AppendError::Closed)??;
        receipts.pop().ok_or(AppendError::Closed)
    }

    fn enqueue(
        &self,
        parts: Vec<Part>,
    ) -> Result<tokio::sync::oneshot::Receiver<Answer>, AppendError> {
        let n_events: usize = parts.iter().map(|part| part.events.len()).sum();
        if n_events > self.max_batch_events {
            return Err(AppendError::TooManyEvents {
                n_events,
                max: self.max_batch_events,
            });
        }
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let queue = self.queue.lock().expect("queue lock poisoned");
        let queue = queue.as_ref().ok_or(AppendError::Closed)?;
        let n_events = n_events as u64;
        // An append always goes in when nothing waits, whatever its size.
        let queued = self
            .stats
            .queued_events
            .fetch_add(n_events, Ordering::Relaxed);
        if queued > 0 && queued + n_events > self.max_queued_events as u64 {
            self.stats
                .queued_events
                .fetch_sub(n_events, Ordering::Relaxed);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::Overloaded {
                queued: usize::try_from(queued).unwrap_or(usize::MAX),
            });
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        let sent = queue.send(Request { parts, reply });
        if sent.is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats
                .queued_events
                .fetch_sub(n_events, Ordering::Relaxed);
            return Err(AppendError::Closed);
        }
        Ok(receiver)
    }

    /// Stops taking requests and waits until every queued one is answered.
    pub fn shutdown(&self) {
        self.queue.lock().expect("queue lock poisoned").take();
        let thread = self
            .sequencer
            .lock()
            .expect("sequencer lock poisoned")
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the sequencer thread panicked");
        }
    }

    /// Running totals of commits.
    pub fn stats(&self) -> &LedgerStats {
        &self.stats
    }

    /// A receiver that changes after every commit (its value counts commits). Read
    /// [`Ledger::committed_sizes`] after it changes to see what grew.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.clone()
    }

    /// Every tenant's committed size, as of the last commit.
    pub fn committed_sizes(&self) -> Vec<(TenantId, u64)> {
        let sizes = self.published.sizes.read().expect("sizes lock poisoned");
        let mut sizes: Vec<(TenantId, u64)> = sizes
            .iter()
            .map(|(tenant, size)| (tenant.clone(), *size))
            .collect();
        sizes.sort_unstable();
        sizes
    }

    pub fn store(&self) -> &Arc<dyn LedgerStore> {
        &self.store
    }

    /// The key that verifies this ledger's checkpoints.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// The checkpoint origin of `tenant`'s log.
    pub fn origin(&self, tenant: &TenantId) -> String {
        origin(&self.origin_prefix, tenant)
    }

    /// Committed size of `tenant`'s log.
    pub fn size(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.store.size(tenant)
    }

    /// The latest signed checkpoint of `tenant`'s log.
    pub fn checkpoint(&self, tenant: &TenantId) -> Result<Option<Arc<str>>, StoreError> {
        self.store.checkpoint(tenant)
    }

    /// Up to `limit` seqs of `tenant`'s log from the first kept one at or after `from_seq`:
    /// their kept records, decoded, and where the read ended (continue from there). The
    /// bodies of removed records are never read, and a removed stretch is skipped at once.
    pub fn records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Records, StoreError> {
        let size = self.store.size(tenant)?;
        let Some(removed) = self.removed_of(tenant) else {
            let stored = self.store.read_records(tenant, from_seq, limit)?;
            let end = from_seq + stored.len() as u64;
            let records = stored
                .iter()
                .map(|bytes| decode_stored(bytes))
                .collect::<Result<_, _>>()?;
            return Ok(Records { records, end });
        };
        let start = removed.next_kept(from_seq);
        if start >= size {
            return Ok(Records {
                records: Vec::new(),
                end: size.max(from_seq),
            });
        }
        let end = start.saturating_add(limit as u64).min(size);
        let mut records = Vec::new();
        let mut seq = start;
        while seq < end {
            let run_end = removed.next_removed(seq).min(end);
            let want = usize::try_from(run_end - seq).expect("at most limit");
            let stored = self.store.read_records(tenant, seq, want)?;
            for bytes in &stored {
                records.push(decode_stored(bytes)?);
            }
            if stored.len() < want {
                return Ok(Records {
                    records,
                    end: seq + stored.len() as u64,
                });
            }
            seq = removed.next_kept(run_end);
        }
        Ok(Records { records, end })
    }

    /// Record `seq` of `tenant` if it is kept: `None` past the log's end and for a removed
    /// record.
    pub fn kept_record(&self, tenant: &TenantId, seq: u64) -> Result<Option<Record>, StoreError> {
        if self.removed_by(tenant, seq).is_some() {
            return Ok(None);
        }
        self.store
            .read_records(tenant, seq, 1)?
            .first()
            .map(|bytes| decode_stored(bytes))
            .transpose()
    }

    /// Record `seq` of `tenant`, decoded; `None` past the log's end,
    /// [`ReadError::Removed`] for a removed record.
    pub fn record(&self, tenant: &TenantId, seq: u64) -> Result<Option<Record>, ReadError> {
        self.check_kept(tenant, seq)?;
        Ok(self.kept_record(tenant, seq)?)
    }

    /// Takes the bodies of removed records out of storage ([`LedgerStore::compact`]): leaf
    /// hashes stay, every proof still verifies. Blocking; run it off the async threads.
    pub fn compact(&self) -> Result<crate::store::CompactStats, StoreError> {
        self.store.compact()
    }

    /// The record that reports the removal of `tenant`'s record `seq`, if it was removed.
    pub fn removed_by(&self, tenant: &TenantId, seq: u64) -> Option<u64> {
        self.removed_of(tenant)?.by(seq)
    }

    /// The removals of `tenant`'s log reported by records in `seqs`.
    pub fn removals_reported_in(
        &self,
        tenant: &TenantId,
        seqs: std::ops::Range<u64>,
    ) -> Vec<Removal> {
        self.removed_of(tenant).map_or_else(Vec::new, |removed| {
            removed
                .removals()
                .iter()
                .filter(|removal| seqs.contains(&removal.by_seq))
                .cloned()
                .collect()
        })
    }

    /// What is removed from `tenant`'s log (shared, as of the last commit).
    pub fn removed(&self, tenant: &TenantId) -> Arc<Removed> {
        self.removed_of(tenant).unwrap_or_default()
    }

    /// `tenant`'s removals as of the last commit, if it has any.
    fn removed_of(&self, tenant: &TenantId) -> Option<Arc<Removed>> {
        self.published
            .removed
            .read()
            .expect("removed lock poisoned")
            .get(tenant)
            .cloned()
    }

    fn check_kept(&self, tenant: &TenantId, seq: u64) -> Result<(), ReadError> {
        match self.removed_by(tenant, seq) {
            Some(by_seq) => Err(ReadError::Removed {
                tenant: tenant.clone(),
                seq,
                by_seq,
            }),
            None => Ok(()),
        }
    }

    /// Inclusion proof of record `seq` in the tree of `tree_size` records.
    pub fn inclusion_proof(
        &self,
        tenant: &TenantId,
        seq: u64,
        tree_size: u64,
    ) -> Result<Vec<Hash>, ReadError> {
        self.check_size(tenant, tree_size)?;
        merkle::inclusion_proof(&self.node_reader(tenant), seq, tree_size).map_err(|err| {
            proof_error(
                err,
                tenant,
                tree_size,
                format!("seq {seq} in a tree of {tree_size}"),
            )
        })
    }

    /// Consistency proof between the trees of `size1` and `size2` records.
    pub fn consistency_proof(
        &self,
        tenant: &TenantId,
        size1: u64,
        size2: u64,
    ) -> Result<Vec<Hash>, ReadError> {
        self.check_size(tenant, size2)?;
        if size1 == 0 {
            return Err(ReadError::OutOfRange {
                tenant: tenant.clone(),
                size: size2,
                what: "size 0 (every log extends the empty one: there is nothing to prove)".into(),
            });
        }
        self.check_size_kept(tenant, size1)?;
        merkle::consistency_proof(&self.node_reader(tenant), size1, size2)
            .map_err(|err| proof_error(err, tenant, size2, format!("size {size1} to size {size2}")))
    }

    /// Refuses a tree of `size` records (at least 1) that ends inside the removed records
    /// at the start of `tenant`'s log: [`ReadError::SizeRemoved`].
    fn check_size_kept(&self, tenant: &TenantId, size: u64) -> Result<(), ReadError> {
        let Some(removed) = self.removed_of(tenant) else {
            return Ok(());
        };
        let first_kept = removed.next_kept(0);
        match removed.by(size.saturating_sub(1)) {
            Some(by_seq) if size < first_kept => Err(ReadError::SizeRemoved {
                tenant: tenant.clone(),
                size,
                first_kept,
                by_seq,
            }),
            _ => Ok(()),
        }
    }

    /// The latest signed checkpoint of `tenant`, opened with this ledger's key: its note,
    /// its size and its root. `None` for an empty log.
    pub fn signed_checkpoint(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<(Arc<str>, Checkpoint)>, ReadError> {
        let Some(note) = self.store.checkpoint(tenant)? else {
            return Ok(None);
        };
        let checkpoint = self.open_checkpoint(tenant, &note)?;
        Ok(Some((note, checkpoint)))
    }

    /// `note` opened with this ledger's key and parsed as `tenant`'s checkpoint.
    fn open_checkpoint(&self, tenant: &TenantId, note: &str) -> Result<Checkpoint, ReadError> {
        let integrity = |what: String| ReadError::Integrity {
            tenant: tenant.clone(),
            what,
        };
        let opened = veritrail_core::note::open(note, std::slice::from_ref(&self.verifier))
            .map_err(|err| integrity(format!("the stored checkpoint does not verify: {err}")))?;
        let checkpoint = Checkpoint::parse(&opened.text)
            .map_err(|err| integrity(format!("the stored checkpoint does not parse: {err}")))?;
        if checkpoint.origin() != self.origin(tenant) {
            return Err(integrity(format!(
                "the stored checkpoint names the log {:?}",
                checkpoint.origin()
            )));
        }
        Ok(checkpoint)
    }

    /// The canonical bytes of record `seq` and its stored leaf hash, checked to agree (the
    /// leaf hash is what proofs and signatures commit to); `None` past the log's end.
    pub fn checked_record(
        &self,
        tenant: &TenantId,
        seq: u64,
    ) -> Result<Option<(Vec<u8>, Hash)>, ReadError> {
        self.check_kept(tenant, seq)?;
        let Some(bytes) = self.store.read_records(tenant, seq, 1)?.pop() else {
            return Ok(None);
        };
        let stored = self
            .store
            .read_nodes(tenant, &[NodeId::new(0, seq)])?
            .pop()
            .ok_or_else(|| ReadError::Integrity {
                tenant: tenant.clone(),
                what: format!("no leaf hash for seq {seq}"),
            })?;
        if merkle::leaf_hash(&bytes) != stored {
            return Err(ReadError::Integrity {
                tenant: tenant.clone(),
                what: format!("the record at seq {seq} does not hash to its stored leaf hash"),
            });
        }
        Ok(Some((bytes, stored)))
    }

    /// The inclusion proof of record `seq` in the tree of `tree_size` records (default: the
    /// latest checkpoint's), checked before it is returned: it must fold the stored leaf
    /// hash to the signed root of the latest checkpoint, or, for an older tree, to the root
    /// of that tree, which a consistency proof must tie to the signed root. Stored hashes
    /// that were damaged give [`ReadError::Integrity`], never a proof that does not verify.
    pub fn checked_inclusion(
        &self,
        tenant: &TenantId,
        seq: u64,
        tree_size: Option<u64>,
    ) -> Result<CheckedInclusion, ReadError> {
        let (note, checkpoint) =
            self.signed_checkpoint(tenant)?
                .ok_or_else(|| ReadError::OutOfRange {
                    tenant: tenant.clone(),
                    size: 0,
                    what: format!("seq {seq}"),
                })?;
        self.checked_inclusion_against(tenant, seq, tree_size, note, &checkpoint)
    }

    /// [`Ledger::checked_inclusion`] against the signed checkpoint `note` (a receipt's),
    /// which must be of `tenant`'s log and no larger than it.
    pub fn checked_inclusion_in(
        &self,
        tenant: &TenantId,
        seq: u64,
        note: Arc<str>,
    ) -> Result<CheckedInclusion, ReadError> {
        let checkpoint = self.open_checkpoint(tenant, &note)?;
        self.checked_inclusion_against(tenant, seq, None, note, &checkpoint)
    }

    fn checked_inclusion_against(
        &self,
        tenant: &TenantId,
        seq: u64,
        tree_size: Option<u64>,
        note: Arc<str>,
        checkpoint: &Checkpoint,
    ) -> Result<CheckedInclusion, ReadError> {
        let signed_size = checkpoint.size();
        let tree_size = tree_size.unwrap_or(signed_size);
        if seq >= tree_size || tree_size > signed_size {
            return Err(ReadError::OutOfRange {
                tenant: tenant.clone(),
                size: signed_size,
                what: format!("seq {seq} in a tree of {tree_size}"),
            });
        }
        self.check_kept(tenant, seq)?;
        let integrity = |what: String| ReadError::Integrity {
            tenant: tenant.clone(),
            what,
        };
        let leaf_hash = self
            .store
            .read_nodes(tenant, &[NodeId::new(0, seq)])?
            .pop()
            .ok_or_else(|| integrity(format!("no leaf hash for seq {seq}")))?;
        let proof = self.inclusion_proof(tenant, seq, tree_size)?;
        let root = self.root_tied_to(tenant, tree_size, checkpoint)?;
        merkle::verify_inclusion(&leaf_hash, seq, tree_size, &proof, &root).map_err(|err| {
            integrity(format!(
                "the inclusion proof of seq {seq} in a tree of {tree_size} does not verify against the signed checkpoint: {err}"
            ))
        })?;
        Ok(CheckedInclusion {
            seq,
            tree_size,
            leaf_hash,
            proof,
            checkpoint: note,
            checkpoint_size: signed_size,
        })
    }

    /// The consistency proof from the tree of `from` records to the tree of `to` (default:
    /// the latest checkpoint's), checked against the latest signed checkpoint before it is
    /// returned, as [`Ledger::checked_inclusion`] is.
    pub fn checked_consistency(
        &self,
        tenant: &TenantId,
        from: u64,
        to: Option<u64>,
    ) -> Result<CheckedConsistency, ReadError> {
        let (note, checkpoint) =
            self.signed_checkpoint(tenant)?
                .ok_or_else(|| ReadError::OutOfRange {
                    tenant: tenant.clone(),
                    size: 0,
                    what: format!("size {from}"),
                })?;
        let signed_size = checkpoint.size();
        let to = to.unwrap_or(signed_size);
        if from == 0 || from > to || to > signed_size {
            return Err(ReadError::OutOfRange {
                tenant: tenant.clone(),
                size: signed_size,
                what: format!("size {from} to size {to}"),
            });
        }
        let proof = self.consistency_proof(tenant, from, to)?;
        let to_root = self.root_tied_to(tenant, to, &checkpoint)?;
        let from_root = merkle::root_at(&self.node_reader(tenant), from)
            .map_err(|err| proof_error(err, tenant, to, format!("size {from}")))?;
        merkle::verify_consistency(from, to, &proof, &from_root, &to_root).map_err(|err| {
            ReadError::Integrity {
                tenant: tenant.clone(),
                what: format!(
                    "the consistency proof from {from} to {to} does not verify against the signed checkpoint: {err}"
                ),
            }
        })?;
        Ok(CheckedConsistency {
            from,
            to,
            proof,
            checkpoint: note,
            checkpoint_size: signed_size,
        })
    }

    /// The root of the tree of `size` records: the signed root itself, or the root computed
    /// from stored hashes once a consistency proof from it verifies against the signed root.
    fn root_tied_to(
        &self,
        tenant: &TenantId,
        size: u64,
        checkpoint: &Checkpoint,
    ) -> Result<Hash, ReadError> {
        if size == checkpoint.size() {
            return Ok(*checkpoint.root());
        }
        let root = merkle::root_at(&self.node_reader(tenant), size)
            .map_err(|err| proof_error(err, tenant, checkpoint.size(), format!("size {size}")))?;
        let proof = self.consistency_proof(tenant, size, checkpoint.size())?;
        merkle::verify_consistency(size, checkpoint.size(), &proof, &root, checkpoint.root())
            .map_err(|err| ReadError::Integrity {
                tenant: tenant.clone(),
                what: format!(
                    "the tree of {size} records computed from stored hashes is not a prefix of the signed checkpoint of {}: {err}",
                    checkpoint.size()
                ),
            })?;
        Ok(root)
    }

    fn check_size(&self, tenant: &TenantId, tree_size: u64) -> Result<(), ReadError> {
        let size = self.store.size(tenant)?;
        if tree_size > size {
            return Err(ReadError::OutOfRange {
                tenant: tenant.clone(),
                size,
                what: format!("tree size {tree_size}"),
            });
        }
        Ok(())
    }

    fn node_reader<'a>(&'a self, tenant: &'a TenantId) -> StoreNodes<'a> {
        StoreNodes {
            store: &*self.store,
            tenant,
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn proof_error(
    err: merkle::ProofError<StoreError>,
    tenant: &TenantId,
    size: u64,
    what: String,
) -> ReadError {
    match err {
        merkle::ProofError::Read(err) => ReadError::Store(err),
        _ => ReadError::OutOfRange {
            tenant: tenant.clone(),
            size,
            what,
        },
    }
}

/// Adapts a store to the proof code's [`NodeReader`].
struct StoreNodes<'a> {
    store: &'a dyn LedgerStore,
    tenant: &'a TenantId,
}

impl NodeReader for StoreNodes<'_> {
    type Error = StoreError;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.store.read_nodes(self.tenant, ids)
    }
}

/// The checkpoint origin of a tenant's log.
pub fn origin(origin_prefix: &str, tenant: &TenantId) -> String {
    format!("{origin_prefix}/{tenant}")
}

/// The sequencer's view of one tenant's log: owned by the sequencer thread alone.
#[derive(Debug, Clone)]
struct TenantLog {
    frontier: Frontier,
    checkpoint: Option<Arc<str>>,
}

/// The single writer. Everything here is owned by the sequencer thread.
struct Sequencer {
    store: Arc<dyn LedgerStore>,
    stats: Arc<LedgerStats>,
    tenants: HashMap<TenantId, TenantLog>,
    /// A commit failed: the store may or may not hold it, so the state must be reloaded
    /// from the store before the next commit.
    needs_reload: bool,
    /// Unix nanoseconds given to the last batch; `received_at` never goes backwards.
    last_received_at: i64,
    origin_prefix: String,
    max_batch_events: usize,
    signer: NoteSigner,
    verifier: NoteVerifier,
    published: Arc<Published>,
    commit_sender: tokio::sync::watch::Sender<u64>,
}

/// One request's plan for each of its events.
enum Planned {
    /// A record of this batch (new, or a repeat of an id given a seq earlier in the batch).
    InBatch {
        seq: u64,
        leaf_hash: Hash,
        duplicate: bool,
    },
    /// Repeat of an id committed before this batch.
    Committed { seq: u64 },
}

/// The batch's work on one tenant.
struct TenantWork {
    tenant: TenantId,
    first_seq: u64,
    frontier: Frontier,
    records: Vec<AppendedRecord>,
    nodes: Vec<(NodeId, Hash)>,
    /// Ids given a seq in this batch, so a repeat inside the batch finds them.
    batch_ids: HashMap<EventId, (u64, Hash)>,
    removals: Vec<Removal>,
    checkpoint: Option<Arc<str>>,
}

impl Sequencer {
    fn run(mut self, requests: &mpsc::Receiver<Request>) {
        // A request that did not fit in the last batch opens the next one.
        let mut carried: Option<Request> = None;
        while let Some(first) = carried.take().or_else(|| requests.recv().ok()) {
            let mut n_events = first.n_events();
            let mut batch = vec![first];
            while let Ok(request) = requests.try_recv() {
                if n_events + request.n_events() > self.max_batch_events {
                    carried = Some(request);
                    break;
                }
                n_events += request.n_events();
                batch.push(request);
            }
            self.stats
                .queued
                .fetch_sub(batch.len() as u64, Ordering::Relaxed);
            self.process(batch);
            // Out of the queue once answered.
            self.stats
                .queued_events
                .fetch_sub(n_events as u64, Ordering::Relaxed);
        }
        tracing::debug!("sequencer stopped: queue closed and drained");
    }

    fn reload(&mut self) -> Result<(), StoreError> {
        let states = self.store.load()?;
        // received_at never goes backwards, across restarts too.
        for state in &states {
            if state.size > 0
                && let Some(bytes) = self
                    .store
                    .read_records(&state.tenant, state.size - 1, 1)?
                    .pop()
            {
                let record = decode_stored(&bytes)?;
                self.last_received_at =
                    self.last_received_at.max(record.received_at().unix_nanos());
            }
        }
        let mut removed: HashMap<TenantId, Arc<Removed>> = HashMap::new();
        for state in &states {
            add_removals(&mut removed, &state.tenant, &state.removals);
        }
        self.tenants = states
            .into_iter()
            .map(|state| {
                let frontier = Frontier::from_parts(state.size, state.frontier)
                    .map_err(|err| StoreError::Corrupt(err.to_string()))?;
                Ok((
                    state.tenant,
                    TenantLog {
                        frontier,
                        checkpoint: state.checkpoint,
                    },
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        *self
            .published
            .removed
            .write()
            .expect("removed lock poisoned") = removed;
        self.needs_reload = false;
        self.publish(self.tenants.keys());
        Ok(())
    }

    fn process(&mut self, mut batch: Vec<Request>) {
        if self.needs_reload
            && let Err(err) = self.reload()
        {
            tracing::error!(%err, "ledger store still unavailable");
            let err = AppendError::of_store(&err);
            for request in batch {
                let _ = request.reply.send(Err(err.clone()));
            }
            return;
        }
        match self.plan_and_commit(&mut batch) {
            Ok(plans) => {
                for (request, plans) in batch.into_iter().zip(plans) {
                    let receipts = request
                        .parts
                        .iter()
                        .zip(plans)
                        .map(|(part, plan)| self.receipts(&part.tenant, plan))
                        .collect();
                    let _ = request.reply.send(receipts);
                }
            }
            Err(err) => {
                tracing::error!(%err, "ledger commit failed");
                self.needs_reload = true;
                let err = AppendError::of_store(&err);
                for request in batch {
                    let _ = request.reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// Assigns seqs, builds and commits the batch (taking the requests' events); on success
    /// the sequencer's state moves to the new trees.
    fn plan_and_commit(
        &mut self,
        batch: &mut [Request],
    ) -> Result<Vec<Vec<Vec<Planned>>>, StoreError> {
        let received_at = self.next_received_at();
        let mut works: HashMap<TenantId, TenantWork> = HashMap::new();
        let mut plans = Vec::with_capacity(batch.len());
        for request in batch.iter_mut() {
            let mut request_plans = Vec::with_capacity(request.parts.len());
            for part in &mut request.parts {
                request_plans.push(self.plan_part(&mut works, part, received_at)?);
            }
            plans.push(request_plans);
        }
        self.commit_works(works)?;
        Ok(plans)
    }

    /// Plans one part: a seq, record and leaf for each new event, the seq of each repeat.
    fn plan_part(
        &self,
        works: &mut HashMap<TenantId, TenantWork>,
        part: &mut Part,
        received_at: Timestamp,
    ) -> Result<Vec<Planned>, StoreError> {
        let work = works.entry(part.tenant.clone()).or_insert_with(|| {
            let frontier = self
                .tenants
                .get(&part.tenant)
                .map(|log| log.frontier.clone())
                .unwrap_or_default();
            TenantWork {
                tenant: part.tenant.clone(),
                first_seq: frontier.size(),
                frontier,
                records: Vec::new(),
                nodes: Vec::new(),
                batch_ids: HashMap::new(),
                removals: Vec::new(),
                checkpoint: None,
            }
        });
        let events = std::mem::take(&mut part.events);
        let ids: Vec<&EventId> = events.iter().filter_map(|(event, _)| event.id()).collect();
        let mut committed = if ids.is_empty() {
            Vec::new()
        } else {
            self.store.find_event_ids(&part.tenant, &ids)?
        }
        .into_iter();
        let mut plan = Vec::with_capacity(events.len());
        for (event, catalog) in events {
            let event_id = event.id().cloned();
            if let Some(id) = &event_id {
                let committed_seq = committed.next().flatten();
                if let Some(seq) = committed_seq {
                    plan.push(Planned::Committed { seq });
                    continue;
                }
                if let Some(&(seq, leaf_hash)) = work.batch_ids.get(id) {
                    plan.push(Planned::InBatch {
                        seq,
                        leaf_hash,
                        duplicate: true,
                    });
                    continue;
                }
            }
            let seq = work.frontier.size();
            let record = Record::new(part.tenant.clone(), seq, received_at, event, catalog);
            let bytes = record.encode();
            let leaf_hash = merkle::leaf_hash(&bytes);
            let nodes = &mut work.nodes;
            work.frontier
                .append(leaf_hash, |node, hash| nodes.push((node, hash)));
            if let Some(id) = &event_id {
                work.batch_ids.insert(id.clone(), (seq, leaf_hash));
            }
            work.records.push(AppendedRecord { bytes, event_id });
            plan.push(Planned::InBatch {
                seq,
                leaf_hash,
                duplicate: false,
            });
            if let Some(scope) = part.removal.take() {
                work.removals.push(Removal { by_seq: seq, scope });
            }
        }
        Ok(plan)
    }

    /// Signs a checkpoint for every log the batch extends and commits the batch; on success
    /// the sequencer's state moves to the new trees.
    fn commit_works(&mut self, mut works: HashMap<TenantId, TenantWork>) -> Result<(), StoreError> {
        let mut commit = CommitBatch::default();
        for work in works.values_mut() {
            if work.records.is_empty() {
                continue;
            }
            let checkpoint = Checkpoint::new(
                origin(&self.origin_prefix, &work.tenant),
                work.frontier.size(),
                work.frontier.root(),
            )
            .map_err(|err| err.to_string())
            .and_then(|checkpoint| {
                self.signer
                    .sign(&checkpoint.to_body())
                    .map_err(|err| err.to_string())
            })
            .map_err(|err| StoreError::Corrupt(format!("cannot sign a checkpoint: {err}")))?;
            let checkpoint: Arc<str> = Arc::from(checkpoint);
            work.checkpoint = Some(Arc::clone(&checkpoint));
            commit.tenants.push(TenantAppend {
                tenant: work.tenant.clone(),
                first_seq: work.first_seq,
                records: std::mem::take(&mut work.records),
                nodes: std::mem::take(&mut work.nodes),
                checkpoint,
                removals: work.removals.clone(),
            });
        }
        if !commit.tenants.is_empty() {
            // Removals are published before the commit, so that no reader sees a removed
            // record once the record reporting its removal is readable; a failed commit
            // puts the previous state back.
            let before = self.publish_removals(&commit);
            let started = Instant::now();
            if let Err(err) = self.store.commit(&commit) {
                if let Some(before) = before {
                    *self
                        .published
                        .removed
                        .write()
                        .expect("removed lock poisoned") = before;
                }
                return Err(err);
            }
            let n_records: usize = commit.tenants.iter().map(|t| t.records.len()).sum();
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .records
                .fetch_add(n_records as u64, Ordering::Relaxed);
            self.stats.commit_nanos.fetch_add(nanos, Ordering::Relaxed);
            self.stats.commit_records.observe(n_records as f64);
            self.stats
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        for work in works.values() {
            if let Some(checkpoint) = &work.checkpoint {
                self.tenants.insert(
                    work.tenant.clone(),
                    TenantLog {
                        frontier: work.frontier.clone(),
                        checkpoint: Some(Arc::clone(checkpoint)),
                    },
                );
            }
        }
        if !commit.tenants.is_empty() {
            self.publish(commit.tenants.iter().map(|append| &append.tenant));
        }
        Ok(())
    }

    /// Adds the batch's removals to the published ones; returns the state before, if any
    /// changed.
    fn publish_removals(&self, commit: &CommitBatch) -> Option<HashMap<TenantId, Arc<Removed>>> {
        if commit
            .tenants
            .iter()
            .all(|append| append.removals.is_empty())
        {
            return None;
        }
        let mut removed = self
            .published
            .removed
            .write()
            .expect("removed lock poisoned");
        let before = removed.clone();
        for append in &commit.tenants {
            add_removals(&mut removed, &append.tenant, &append.removals);
        }
        Some(before)
    }

    fn receipts(&self, tenant: &TenantId, plan: Vec<Planned>) -> Result<Vec<Receipt>, AppendError> {
        let checkpoint = self
            .tenants
            .get(tenant)
            .and_then(|log| log.checkpoint.clone());
        plan.into_iter()
            .map(|planned| {
                let checkpoint = checkpoint
                    .clone()
                    .ok_or_else(|| AppendError::Unavailable("no checkpoint for the log".into()))?;
                match planned {
                    Planned::InBatch {
                        seq,
                        leaf_hash,
                        duplicate,
                    } => Ok(Receipt {
                        seq,
                        leaf_hash,
                        duplicate,
                        checkpoint,
                    }),
                    Planned::Committed { seq } => {
                        let leaf_hash = self
                            .store
                            .read_nodes(tenant, &[NodeId::new(0, seq)])
                            .map_err(|err| AppendError::Unavailable(err.to_string()))?
                            .pop()
                            .ok_or_else(|| AppendError::Unavailable("missing leaf hash".into()))?;
                        Ok(Receipt {
                            seq,
                            leaf_hash,
                            duplicate: true,
                            checkpoint,
                        })
                    }
                }
            })
            .collect()
    }

    /// Publishes the committed sizes of `tenants` and wakes subscribers.
    fn publish<'a>(&self, tenants: impl Iterator<Item = &'a TenantId>) {
        {
            let mut sizes = self.published.sizes.write().expect("sizes lock poisoned");
            for tenant in tenants {
                if let Some(log) = self.tenants.get(tenant) {
                    sizes.insert(tenant.clone(), log.frontier.size());
                }
            }
        }
        self.commit_sender.send_modify(|commits| *commits += 1);
    }

    fn next_received_at(&mut self) -> Timestamp {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.last_received_at = now.max(self.last_received_at);
        Timestamp::from_unix_nanos(self.last_received_at)
    }
}

/// Adds `tenant`'s `removals` to `removed` (copying its entry first if a reader shares it).
fn add_removals(
    removed: &mut HashMap<TenantId, Arc<Removed>>,
    tenant: &TenantId,
    removals: &[Removal],
) {
    if removals.is_empty() {
        return;
    }
    let entry = Arc::make_mut(removed.entry(tenant.clone()).or_default());
    for removal in removals {
        entry.add(removal);
    }
}

fn decode_stored(bytes: &[u8]) -> Result<Record, StoreError> {
    Record::decode(bytes).map_err(|err| StoreError::Corrupt(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritrail_core::event::limits::MAX_RECORD_BYTES;

    #[test]
    fn the_largest_commit_fits_in_a_journal_frame() {
        // Records plus 9 bytes of entry header each, plus a checkpoint entry per tenant.
        let worst = DEFAULT_MAX_BATCH_EVENTS * (MAX_RECORD_BYTES + 9 + 1024);
        assert!(worst < crate::journal::MAX_FRAME_BYTES);
    }
}
