//! Records as the API and the UI show them: one record checked against its leaf hash before
//! it is served, and search pages written as JSON straight from the stored records.

use veritrail_api::RecordResponse;
use veritrail_core::event::TenantId;
use veritrail_search::{Order, Query};

use crate::AppState;
use crate::error::ApiError;
use crate::params::Cursor;
use crate::proofs::{self, b64};

/// One page of a search: the query, its order and size, where it starts, and the
/// fingerprint its cursors are bound to.
#[derive(Debug)]
pub struct PageRequest {
    pub query: Query,
    pub order: Order,
    pub limit: usize,
    /// The last seq of the previous page.
    pub after: Option<u64>,
    /// [`crate::params::Filters::fingerprint`] of the query and order.
    pub fingerprint: String,
}

/// The body of a `SearchResponse` for `page` of `tenant`'s records (blocking: it reads the
/// index and the records), written straight from the records: a page is up to 1,000 of
/// them, and a `Value` tree per record cost more than the search.
///
/// # Errors
///
/// The index's or the ledger's, by what the caller should do.
pub fn search_page(
    state: &AppState,
    tenant: &TenantId,
    page: &PageRequest,
) -> Result<Vec<u8>, ApiError> {
    let (ledger, search) = (state.ledger(), state.search());
    // Read the log size first: everything the index holds is then within it.
    let log_size = ledger.size(tenant)?;
    let indexed_size = search.applied(tenant);
    let found = search.search(tenant, &page.query, page.order, page.limit, page.after)?;
    let mut body = Vec::with_capacity(found.seqs.len() * 768 + 256);
    body.extend_from_slice(b"{\"events\":[");
    let mut written = 0;
    for seq in &found.seqs {
        let mark = body.len();
        if written > 0 {
            body.push(b',');
        }
        if write_indexed_record(ledger, tenant, *seq, &mut body)? {
            written += 1;
        } else {
            body.truncate(mark);
        }
    }
    body.push(b']');
    if let Some(after) = found.next_after {
        let cursor = Cursor {
            after,
            fingerprint: page.fingerprint.clone(),
        }
        .encode();
        body.extend_from_slice(b",\"next_cursor\":");
        serde_json::to_writer(&mut body, &cursor)
            .map_err(|err| ApiError::internal(err.to_string()))?;
    }
    let log_size = log_size.max(indexed_size);
    body.extend_from_slice(
        format!(",\"indexed_size\":{indexed_size},\"log_size\":{log_size}}}").as_bytes(),
    );
    Ok(body)
}

/// Appends the JSON of the record at `seq`, which the search index returned, to `out`;
/// `false`, with nothing written, when the record was removed since it was indexed (the
/// index drops it soon after).
pub fn write_indexed_record(
    ledger: &veritrail_ledger::Ledger,
    tenant: &TenantId,
    seq: u64,
    out: &mut Vec<u8>,
) -> Result<bool, ApiError> {
    let Some(record) = kept_indexed_record(ledger, tenant, seq)? else {
        return Ok(false);
    };
    record.write_json(out);
    Ok(true)
}

/// The record at `seq`, which the search index returned; `None` when it was removed since
/// it was indexed (the index drops it soon after), as search pages leave it out.
///
/// # Errors
///
/// The ledger's; `internal` when the index has a seq the log does not.
pub fn kept_indexed_record(
    ledger: &veritrail_ledger::Ledger,
    tenant: &TenantId,
    seq: u64,
) -> Result<Option<veritrail_core::record::Record>, ApiError> {
    match ledger.kept_record(tenant, seq)? {
        Some(record) => Ok(Some(record)),
        None if ledger.removed_by(tenant, seq).is_some() => Ok(None),
        None => Err(ApiError::internal(format!(
            "seq {seq} is indexed but not in the log"
        ))),
    }
}

/// A read's failure as the API answers it: a removed record is 410 with when and why, read
/// from the record that reports its removal.
pub fn read_error(
    ledger: &veritrail_ledger::Ledger,
    tenant: &TenantId,
    err: veritrail_ledger::ReadError,
) -> ApiError {
    let veritrail_ledger::ReadError::Removed { seq, by_seq, .. } = err else {
        return err.into();
    };
    let mut removed = veritrail_api::RemovedBody {
        seq,
        removed_by: by_seq,
        removed_by_type: None,
        removed_at: None,
        reason: None,
    };
    if let Ok(Some(record)) = ledger.record(tenant, by_seq) {
        let event = record.event();
        removed.removed_by_type = Some(event.event_type().as_str().to_owned());
        removed.removed_at = Some(record.received_at().to_rfc3339());
        let details = event.details().and_then(|details| {
            serde_json::from_str::<serde_json::Value>(&details.to_string()).ok()
        });
        removed.reason = details.and_then(|details| {
            ["reason", "policy"]
                .iter()
                .find_map(|key| details.get(key)?.as_str().map(str::to_owned))
        });
    }
    ApiError::removed(removed)
}

/// The record at `seq` of `tenant`'s log, with its inclusion proof in the latest checkpoint
/// when `with_proof` (blocking). The bytes are checked against their leaf hash, and a proof
/// against the signed root: damaged data is refused, never served.
///
/// # Errors
///
/// `not_found` when the log has no such record; `integrity_error` when it does not verify.
pub fn record(
    state: &AppState,
    tenant: &TenantId,
    seq: u64,
    with_proof: bool,
) -> Result<RecordResponse, ApiError> {
    let (bytes, leaf_hash) = state
        .ledger()
        .checked_record(tenant, seq)
        .map_err(|err| read_error(state.ledger(), tenant, err))?
        .ok_or_else(|| ApiError::not_found(format!("the log has no record at seq {seq}")))?;
    let record = veritrail_core::record::Record::decode(&bytes)
        .map_err(|err| ApiError::integrity(format!("record {seq} does not decode: {err}")))?;
    let proof = with_proof
        .then(|| proofs::inclusion_body(state, tenant, seq, None))
        .transpose()?;
    Ok(RecordResponse {
        record: record.to_json(),
        leaf_hash: b64(&leaf_hash),
        proof,
    })
}
