//! veritrail's search index: a tantivy index derived from the ledger, answering filtered,
//! paged searches and counts per tenant.
//!
//! The index is never the source of truth. It can be deleted and rebuilt from the ledger at
//! any time, and it knows per tenant exactly how many records it holds
//! ([`SearchIndex::applied`]), committed atomically with the documents, so a follower of the
//! ledger resumes where the index stops. Search results are seqs; the caller reads the
//! records from the ledger.
//!
//! # Layout
//!
//! - [`index`] holds [`SearchIndex`] (open, apply, commit, search, count, clear) and
//!   [`SearchOptions`], and says how the per-tenant counts are committed with the documents.
//! - [`query`] holds [`Query`], [`TypeFilter`], [`Order`], [`GroupBy`] and their translation
//!   into a tantivy query scoped by tenant.
//! - `schema` holds the fields, the free-text analyzer, and a record's document.
//! - `blocks` holds the per-segment block bounds (apply order, event time) that make first
//!   pages fast.
//! - [`page`] holds [`Page`] and the early-stopping top-k walk over blocks.
//! - [`count`] holds [`Counts`], [`Bucket`] and the one-pass counting collector.
//! - [`error`] holds [`SearchError`].

mod blocks;
pub mod count;
pub mod error;
pub mod index;
pub mod page;
pub mod query;
mod schema;

pub use count::{Bucket, Counts};
pub use error::SearchError;
pub use index::{Deletion, IndexStats, QueryLimits, SearchIndex, SearchOptions};
pub use page::Page;
pub use query::{GroupBy, Order, Query, TypeFilter};
pub use schema::event_time;
