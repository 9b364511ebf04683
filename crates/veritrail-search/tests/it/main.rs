//! Integration tests of `veritrail-search`: every query against a brute-force model over
//! the same records, paging under concurrent ingest, tenant isolation, progress bookkeeping
//! across reopen, gaps, idempotent re-apply, clear, and counts.

mod counts;
mod filters;
mod model;
mod paging;
mod progress;
mod small_disk;
