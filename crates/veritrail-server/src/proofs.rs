//! The verifiable log's read side as the API and the UI give it: the latest signed
//! checkpoint and its size, and inclusion and consistency proofs, each checked against the
//! signed root before it is answered.

use veritrail_api::{ConsistencyProofBody, InclusionProofBody};
use veritrail_core::event::TenantId;

use crate::AppState;
use crate::error::ApiError;

/// The tree size of a signed checkpoint the ledger made. Its signature is not checked
/// again: the note comes from the ledger, which signed it (verifying costs ~50 µs, which
/// at tens of thousands of ingests per second is a core).
pub fn checkpoint_size(note: &str) -> Result<u64, ApiError> {
    let text = note
        .split_once("\n\n")
        .map(|(text, _signatures)| format!("{text}\n"))
        .ok_or_else(|| ApiError::internal("a checkpoint note without signatures"))?;
    let checkpoint =
        veritrail_core::checkpoint::Checkpoint::parse(&text).map_err(ApiError::internal)?;
    Ok(checkpoint.size())
}

/// The latest signed checkpoint and its tree size.
pub fn latest_checkpoint_sized(
    state: &AppState,
    tenant: &TenantId,
) -> Result<(String, u64), ApiError> {
    let note = latest_checkpoint(state, tenant)?;
    let size = checkpoint_size(&note)?;
    Ok((note, size))
}

/// The latest signed checkpoint of `tenant`'s log.
///
/// # Errors
///
/// `not_found` while the log is empty.
pub fn latest_checkpoint(state: &AppState, tenant: &TenantId) -> Result<String, ApiError> {
    state
        .ledger()
        .checkpoint(tenant)?
        .map(|note| note.to_string())
        .ok_or_else(|| ApiError::not_found("the log is empty: there is no checkpoint yet"))
}

/// The inclusion proof of `seq` in the tree of `tree_size` (default: the latest
/// checkpoint's), with the latest checkpoint; checked against the signed root before it is
/// answered ([`veritrail_ledger::Ledger::checked_inclusion`]).
pub fn inclusion_body(
    state: &AppState,
    tenant: &TenantId,
    seq: u64,
    tree_size: Option<u64>,
) -> Result<InclusionProofBody, ApiError> {
    let (_, latest_size) = latest_checkpoint_sized(state, tenant)?;
    if seq >= latest_size {
        return Err(ApiError::not_found(format!(
            "the log has no record at seq {seq} (its size is {latest_size})"
        )));
    }
    if let Some(tree_size) = tree_size
        && (tree_size > latest_size || tree_size <= seq)
    {
        return Err(ApiError::invalid_parameter(
            "tree_size",
            format!("must be more than the seq ({seq}) and at most the log's size ({latest_size})"),
        ));
    }
    let checked = state
        .ledger()
        .checked_inclusion(tenant, seq, tree_size)
        .map_err(|err| crate::records::read_error(state.ledger(), tenant, err))?;
    Ok(InclusionProofBody {
        seq,
        tree_size: checked.tree_size,
        leaf_hash: b64(&checked.leaf_hash),
        proof: checked.proof.iter().map(|hash| b64(hash)).collect(),
        checkpoint: checked.checkpoint.to_string(),
    })
}

/// Standard base64 of a hash.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The consistency proof from the tree of `from` records to the tree of `to` (default: the
/// latest checkpoint's), with the latest checkpoint; checked against the signed root before
/// it is answered.
///
/// # Errors
///
/// `invalid_parameter` unless `1 <= from <= to <= ` the log's size; `not_found` while the
/// log is empty.
pub fn consistency_body(
    state: &AppState,
    tenant: &TenantId,
    from: u64,
    to: Option<u64>,
) -> Result<ConsistencyProofBody, ApiError> {
    let (_, latest_size) = latest_checkpoint_sized(state, tenant)?;
    let to = to.unwrap_or(latest_size);
    if from == 0 || from > to || to > latest_size {
        return Err(ApiError::invalid_parameter(
            "from",
            format!(
                "need 1 <= from <= to <= {latest_size} (the log's size); got from={from} to={to}"
            ),
        ));
    }
    let checked = state.ledger().checked_consistency(tenant, from, Some(to))?;
    Ok(ConsistencyProofBody {
        from_size: checked.from,
        to_size: checked.to,
        proof: checked.proof.iter().map(|hash| b64(hash)).collect(),
        checkpoint: checked.checkpoint.to_string(),
    })
}
