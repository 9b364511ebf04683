//! The record page: one record with what the browser needs to check its inclusion (its
//! bytes, its proof, the signed checkpoint and the verifier key).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use veritrail_core::event::TenantId;

use super::page::{BACK, damaged, page, problem_page, unreadable};
use super::session::Session;
use crate::AppState;
use crate::error::ApiError;

#[derive(Template)]
#[template(path = "record.html")]
pub(super) struct RecordPage<'a> {
    tenant: &'a str,
    role: &'a str,
    csrf: &'a str,
    back: &'a str,
    r: Shown,
}

/// What a record page shows (`record_sections.html`): the whole record, and what the
/// browser needs to check it: its stored bytes, its inclusion proof, the signed checkpoint
/// and the log's verifier key.
pub(super) struct Shown {
    pub(super) tenant: String,
    pub(super) seq: u64,
    pub(super) title: String,
    pub(super) tree_size: u64,
    pub(super) checkpoint: String,
    pub(super) record_b64: String,
    pub(super) proof_json: String,
    pub(super) proof_len: usize,
    pub(super) record_json: String,
    pub(super) verifier_key: String,
    /// Whether the page's reader can pin the key (signed in: the Integrity page).
    pub(super) pinnable: bool,
}

/// One record with what the browser needs to check its inclusion.
pub(super) async fn record(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(seq): axum::extract::Path<String>,
) -> Response {
    let refused = |status: StatusCode, reason: &str| {
        problem_page(status, "No such event", reason, BACK, false)
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return refused(
            StatusCode::NOT_FOUND,
            "There is no such event: its number is not a seq.",
        );
    };
    let tenant = session.tenant.clone();
    let work = state.clone();
    let found = state
        .blocking(&session.tenant, move || record_view(&work, &tenant, seq))
        .await;
    let shown = match found {
        Ok(Some(shown)) => shown,
        Ok(None) => {
            return refused(
                StatusCode::NOT_FOUND,
                "This tenant's log has no event with that seq.",
            );
        }
        Err(mut err) if err.code == veritrail_api::error_codes::INTEGRITY_ERROR => {
            err.report();
            return damaged(false);
        }
        // Removed by retention or an erasure: when, by which event and why.
        Err(err) if err.code == veritrail_api::error_codes::RECORD_REMOVED => {
            return problem_page(StatusCode::GONE, "Event removed", &err.message, BACK, false);
        }
        Err(mut err) => {
            err.report();
            return unreadable();
        }
    };
    page(
        StatusCode::OK,
        RecordPage {
            tenant: session.tenant.as_str(),
            role: session.role.as_str(),
            csrf: &session.csrf,
            back: "/activity",
            r: Shown {
                pinnable: true,
                ..shown
            },
        }
        .render(),
        &[],
    )
}

/// The record `seq`, its inclusion proof in the latest checkpoint's tree, and that
/// checkpoint; `None` when the log has no such record. The bytes are checked against their
/// leaf hash and the proof against the signed root first: a page never carries a proof
/// that does not verify (`integrity_error` instead).
pub(super) fn record_view(
    state: &AppState,
    tenant: &TenantId,
    seq: u64,
) -> Result<Option<Shown>, ApiError> {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let ledger = state.ledger();
    let Some(size) = ledger.signed_checkpoint(tenant)?.map(|(_, c)| c.size()) else {
        return Ok(None);
    };
    if seq >= size {
        return Ok(None);
    }
    let Some((bytes, _)) = ledger
        .checked_record(tenant, seq)
        .map_err(|err| crate::records::read_error(ledger, tenant, err))?
    else {
        return Ok(None);
    };
    let record = veritrail_core::record::Record::decode(&bytes)
        .map_err(|err| ApiError::integrity(format!("record {seq} does not decode: {err}")))?;
    let checked = ledger.checked_inclusion(tenant, seq, None)?;
    let catalog_name = record
        .catalog()
        .name
        .as_ref()
        .map(|name| name.as_str().to_owned());
    let proof: Vec<String> = checked.proof.iter().map(|hash| b64(hash)).collect();
    Ok(Some(Shown {
        tenant: tenant.as_str().to_owned(),
        seq,
        title: catalog_name.unwrap_or_else(|| record.event().event_type().as_str().to_owned()),
        tree_size: checked.tree_size,
        checkpoint: checked.checkpoint.to_string(),
        record_b64: b64(&bytes),
        proof_len: proof.len(),
        proof_json: serde_json::to_string(&proof).unwrap_or_default(),
        record_json: serde_json::to_string_pretty(&record.to_json()).unwrap_or_default(),
        verifier_key: ledger.verifier().to_vkey_string(),
        pinnable: false,
    }))
}
