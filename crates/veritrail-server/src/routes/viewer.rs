//! `POST /api/v1/viewer-tokens`: mints a viewer token (see [`crate::viewer`]); an audit
//! event (`veritrail.viewer_token.minted`) is written before the reply.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use veritrail_api::{ErrorBody, ViewerTokenBody, ViewerTokenInput, error_codes};
use veritrail_core::event::Timestamp;

use super::admin::json_rejection;
use crate::AppState;
use crate::audit;
use crate::auth::Auth;
use crate::clock;
use crate::error::ApiError;
use crate::viewer::{self, Claims};

/// Default and longest life of a token, in seconds.
const DEFAULT_TTL: u64 = 900;
const MAX_TTL: u64 = 86_400;

/// Mint a viewer token for the embeddable Activity view.
#[utoipa::path(
    post,
    path = "/api/v1/viewer-tokens",
    tag = "activity",
    request_body = ViewerTokenInput,
    responses(
        (status = 201, description = "The token and the path to embed.", body = ViewerTokenBody),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 422, description = "A lifetime out of range, or an empty filter (`invalid_parameter`).", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn mint(
    State(state): State<AppState>,
    auth: Auth,
    input: Result<Json<ViewerTokenInput>, JsonRejection>,
) -> Result<(StatusCode, Json<ViewerTokenBody>), ApiError> {
    let tenant = auth.token_minter()?.tenant.clone();
    let Json(input) = input.map_err(|rejection| json_rejection(&rejection))?;
    let unprocessable = |message: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_codes::INVALID_PARAMETER,
            message,
        )
    };
    let ttl = input.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if ttl == 0 || ttl > MAX_TTL {
        return Err(unprocessable("ttl_seconds: 1 to 86,400"));
    }
    for (name, value) in [("actor", &input.actor), ("target", &input.target)] {
        if value
            .as_deref()
            .is_some_and(|v| v.trim().is_empty() || v.len() > 256)
        {
            return Err(unprocessable(&format!("{name}: 1 to 256 characters")));
        }
    }
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(ApiError::internal)?;
    let now = clock::now().unix_nanos().div_euclid(1_000_000_000);
    let claims = Claims {
        id: format!("vtk_{}", crate::control::hex(&id)),
        tenant: tenant.to_string(),
        actor: input.actor.map(|actor| actor.trim().to_owned()),
        target: input.target.map(|target| target.trim().to_owned()),
        expires: now + i64::try_from(ttl).unwrap_or(900),
    };
    let token = viewer::mint(state.control().viewer_token_key(), &claims);
    let event = audit::viewer_token(Some(&auth.0), audit::types::VIEWER_TOKEN_MINTED, &claims.id)?;
    audit::record(&state, &tenant, event).await?;
    Ok((
        StatusCode::CREATED,
        Json(ViewerTokenBody {
            embed_path: format!("/embed?token={token}"),
            token,
            token_id: claims.id,
            expires_at: Timestamp::from_unix_nanos(claims.expires.saturating_mul(1_000_000_000))
                .to_rfc3339(),
        }),
    ))
}
