//! [`SearchError`], the one error type of the crate.

use veritrail_core::event::TenantId;

/// Why a search-index operation failed.
///
/// [`SearchError::Gap`] and [`SearchError::InvalidQuery`] are the caller's mistakes and leave
/// the index untouched. [`SearchError::IncompatibleFormat`] and [`SearchError::Corrupt`] mean
/// the directory cannot be used as it is: the index is derived from the ledger, so the cure is
/// to delete the directory and rebuild (`veritrail reindex`). [`SearchError::Tantivy`] and
/// [`SearchError::Io`] are failures of the engine or the disk; after one from
/// [`SearchIndex::commit`](crate::SearchIndex::commit) or
/// [`SearchIndex::apply`](crate::SearchIndex::apply), everything applied since the last
/// successful commit is dropped and must be applied again from
/// [`SearchIndex::applied`](crate::SearchIndex::applied).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// A record's seq is past the next one the index expects for its tenant; nothing of the
    /// call was applied.
    #[error("gap in tenant {tenant}: expected seq {expected}, got {got}")]
    Gap {
        /// The tenant of the record.
        tenant: TenantId,
        /// The next seq the index can take for that tenant.
        expected: u64,
        /// The record's seq.
        got: u64,
    },
    /// A query the index cannot run, like a histogram interval that is not positive.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A query past one of the [`crate::QueryLimits`]: too many words, a prefix that
    /// expands to too many terms, too many histogram buckets. The message says which.
    #[error("{0}")]
    TooCostly(String),
    /// The directory holds an index of another format version, or something that is not a
    /// veritrail search index.
    #[error("incompatible search index: {0}; delete the directory and reindex")]
    IncompatibleFormat(String),
    /// The index's own bookkeeping (the commit payload) does not parse.
    #[error("corrupt search index: {0}")]
    Corrupt(String),
    /// The search engine failed (includes tantivy's own checksum and corruption errors).
    #[error("search engine: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A file-system operation outside tantivy failed.
    #[error("search index I/O: {0}")]
    Io(#[from] std::io::Error),
}
