//! The ledger store: the one trait every storage backend implements.
//!
//! The sequencer inside [`Ledger`](crate::Ledger) is the only writer. It decides sequence numbers,
//! computes leaf and node hashes and signs checkpoints; a store only keeps what it is
//! given, durably and atomically, and serves it back. That split keeps every backend small
//! and lets one conformance suite (`conformance`, feature `testing`) hold them all to the
//! same contract: the embedded [`EmbeddedStore`](crate::EmbeddedStore), the in-memory
//! `MemoryStore` of the tests (feature `testing`) and, later, PostgreSQL.

use std::sync::Arc;

use veritrail_core::event::{EventId, TenantId};
use veritrail_core::merkle::{Hash, NodeId};

/// One group commit: appends to any number of tenants' logs, made durable together.
#[derive(Debug, Default)]
pub struct CommitBatch {
    pub tenants: Vec<TenantAppend>,
}

/// The part of a [`CommitBatch`] that extends one tenant's log.
#[derive(Debug)]
pub struct TenantAppend {
    pub tenant: TenantId,
    /// Size of the tenant's log before this append; the first record gets this seq.
    pub first_seq: u64,
    pub records: Vec<AppendedRecord>,
    /// The Merkle nodes this append completes, in the order they complete (post-order:
    /// each leaf, then the parents it completes). Exactly what `Frontier::append` reports.
    pub nodes: Vec<(NodeId, Hash)>,
    /// The signed checkpoint (a signed note) of the log after this append.
    pub checkpoint: Arc<str>,
}

/// A record as the sequencer hands it to the store.
#[derive(Debug)]
pub struct AppendedRecord {
    /// Canonical record bytes (`veritrail_core::record`), the leaf input.
    pub bytes: Vec<u8>,
    /// The client's idempotency id, indexed so that a repeat is found.
    pub event_id: Option<EventId>,
}

/// What a store knows about one tenant's log when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantState {
    pub tenant: TenantId,
    pub size: u64,
    /// Hashes of `Frontier::node_ids(size)`, largest subtree first.
    pub frontier: Vec<Hash>,
    /// The latest signed checkpoint; `None` only for a log that never committed.
    pub checkpoint: Option<Arc<str>>,
}

/// Errors of a store. `Unavailable` is retryable, the others are not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O failure (disk full, permission, device gone). The operation may be retried.
    #[error("ledger storage unavailable: {0}")]
    Unavailable(#[from] std::io::Error),
    /// A commit that does not extend the log where the store says it ends: a second
    /// writer, or a sequencer whose state is stale. Nothing was written.
    #[error("append to tenant {tenant} at seq {first_seq} but its log has {size} records")]
    Conflict {
        tenant: TenantId,
        first_seq: u64,
        size: u64,
    },
    /// Stored data fails its checksums or does not decode: the store refuses to guess.
    #[error("ledger data is corrupt: {0}")]
    Corrupt(String),
    /// A read beyond the end of a log, or of an unknown tenant.
    #[error("{0}")]
    NotFound(String),
    /// A fault injected by a test (`MemoryStore`, feature `testing`, only; no shipped store
    /// returns it). The variant exists without the feature too, so that a `match` on
    /// `StoreError` compiles the same with and without it.
    #[error("injected fault")]
    Injected,
}

/// Storage of the per-tenant logs.
///
/// # Contract
///
/// - **Durable on return.** When [`commit`](Self::commit) returns `Ok`, every record, node,
///   event id and checkpoint of the batch survives a crash or power loss.
/// - **Atomic.** After a crash, or a `commit` that returned `Err`, either the whole batch is
///   stored or none of it is. A failed `commit` may have persisted the batch ("fail but
///   persist"): the caller must [`load`](Self::load) again before it commits anything else.
/// - **Append-only.** `commit` only extends logs: a `TenantAppend` whose `first_seq` is not
///   the log's current size is refused with [`StoreError::Conflict`] and nothing of the
///   batch is written. No method rewrites or deletes a record.
/// - **Read your commits.** Once `commit` returned `Ok`, every read method sees the batch.
///   Reads never see part of a batch that is still being committed.
/// - Reads are served concurrently with a commit in progress (`&self` everywhere).
///
/// The conformance suite (`conformance::run_all`, feature `testing`) checks these rules and
/// the methods' promises below, one test named after each; its docs say which rules it
/// cannot reach through a restart and where those are tested.
pub trait LedgerStore: Send + Sync + std::fmt::Debug + 'static {
    /// Every tenant log with its size, frontier and latest checkpoint.
    fn load(&self) -> Result<Vec<TenantState>, StoreError>;

    /// Make the batch durable; see the contract above.
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError>;

    /// The seq of each committed event id, `None` where the tenant has no such id.
    fn find_event_ids(
        &self,
        tenant: &TenantId,
        ids: &[&EventId],
    ) -> Result<Vec<Option<u64>>, StoreError>;

    /// Up to `limit` canonical records of `tenant` starting at `from_seq`, in seq order.
    /// Fewer (or none) when the log ends earlier.
    fn read_records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Hashes of complete nodes of `tenant`'s tree, in the order asked.
    /// `NotFound` for a node that is not complete yet.
    fn read_nodes(&self, tenant: &TenantId, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;

    /// The committed size of `tenant`'s log (0 for an unknown tenant).
    fn size(&self, tenant: &TenantId) -> Result<u64, StoreError>;

    /// The latest signed checkpoint of `tenant`, `None` for an unknown tenant.
    fn checkpoint(&self, tenant: &TenantId) -> Result<Option<Arc<str>>, StoreError>;
}

/// Number of complete nodes in a tree of `size` leaves: each leaf, plus one parent per
/// carry when counting to `size` in binary.
pub fn node_count(size: u64) -> u64 {
    2 * size - u64::from(size.count_ones())
}

/// Position of a complete node in post-order, the order in which nodes complete: the nodes
/// completed before leaf `m - 1`'s append, plus the node's level within that append.
pub fn postorder_index(node: NodeId) -> u64 {
    let m = (node.index + 1) << node.level;
    node_count(m - 1) + u64::from(node.level)
}
