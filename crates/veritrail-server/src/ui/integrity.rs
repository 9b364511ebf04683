//! The integrity page: the latest checkpoint, the server's last scrub of the stored log,
//! the verifier key, and the command that verifies an export.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::page::{page, unreadable};
use super::session::Session;
use crate::AppState;
use crate::proofs::checkpoint_size;

#[derive(Template)]
#[template(path = "integrity.html")]
pub(super) struct IntegrityPage<'a> {
    tenant: &'a str,
    role: &'a str,
    csrf: &'a str,
    tree_size: u64,
    checkpoint: String,
    verifier_key: String,
    origin: String,
    scrub: Option<veritrail_api::ScrubBody>,
    scrub_interval: u64,
}

/// The latest checkpoint, the verifier key, and the command that verifies an export.
pub(super) async fn integrity(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let checkpoint = match state.ledger().checkpoint(&session.tenant) {
        Ok(note) => note.map_or_else(String::new, |note| note.to_string()),
        Err(err) => {
            tracing::error!(error = %err, "the integrity page could not read the checkpoint");
            return unreadable();
        }
    };
    let tree_size = checkpoint_size(&checkpoint).unwrap_or(0);
    let integrity = match crate::scrub::integrity(&state, &session.tenant).await {
        Ok(integrity) => integrity,
        Err(mut err) => {
            err.report();
            return unreadable();
        }
    };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    page(
        StatusCode::OK,
        IntegrityPage {
            tenant: session.tenant.as_str(),
            role: session.role.as_str(),
            csrf: &session.csrf,
            tree_size,
            checkpoint,
            verifier_key: state.ledger().verifier().to_vkey_string(),
            origin: format!("http://{host}"),
            scrub: integrity.last_scrub,
            scrub_interval: integrity.interval_seconds,
        }
        .render(),
        &[],
    )
}
