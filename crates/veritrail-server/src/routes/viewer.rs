//! `/api/v1/viewer-tokens`: mints viewer tokens (see [`crate::viewer`]), lists them and
//! revokes them by id. Minting and revoking are audit events
//! (`veritrail.viewer_token.minted`, `.revoked`), written before the reply. A token works
//! while it is stored, unexpired and unrevoked, and while the key that minted it is active.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use veritrail_api::{
    ErrorBody, ViewerTokenBody, ViewerTokenInfo, ViewerTokenInput, ViewerTokenList, error_codes,
};
use veritrail_core::event::{TenantId, Timestamp};

use crate::AppState;
use crate::audit;
use crate::auth::{Act, Acting, Auth};
use crate::clock;
use crate::control::ViewerTokenRow;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
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
        (status = 429, description = "The tenant has as many viewer tokens alive as it may (`rate_limited`): revoke some.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn mint(
    State(state): State<AppState>,
    auth: Auth,
    input: Result<ApiJson<ViewerTokenInput>, ApiError>,
) -> Result<(StatusCode, Json<ViewerTokenBody>), ApiError> {
    let acting = Acting::of_tenant_key(auth.token_minter()?);
    mint_as(state, &auth, acting, input).await
}

/// Mint a viewer token for the embeddable Activity view of the named tenant (a service
/// embedder key: one key embeds every customer's view).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/viewer-tokens",
    tag = "activity",
    params(("tenant" = String, Path, description = "The tenant whose Activity view the token opens.")),
    request_body = ViewerTokenInput,
    responses(
        (status = 201, description = "The token and the path to embed.", body = ViewerTokenBody),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not a service embedder key allowed this tenant (or the tenant's own owner, super_admin or admin key).", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
        (status = 422, description = "A lifetime out of range, or an empty filter (`invalid_parameter`).", body = ErrorBody),
        (status = 429, description = "Rate limited, or the tenant has as many viewer tokens alive as it may (`rate_limited`).", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn mint_for_tenant(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(tenant): ApiPath<String>,
    input: Result<ApiJson<ViewerTokenInput>, ApiError>,
) -> Result<(StatusCode, Json<ViewerTokenBody>), ApiError> {
    let acting = auth.acting_on_named(&state, &tenant, Act::Embed)?;
    mint_as(state, &auth, acting, input).await
}

async fn mint_as(
    state: AppState,
    auth: &Auth,
    acting: Acting,
    input: Result<ApiJson<ViewerTokenInput>, ApiError>,
) -> Result<(StatusCode, Json<ViewerTokenBody>), ApiError> {
    let tenant = acting.tenant.clone();
    let ApiJson(input) = input?;
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
    let minter = &acting;
    let row = ViewerTokenRow {
        id: claims.id.clone(),
        tenant: tenant.to_string(),
        actor: claims.actor.clone(),
        target: claims.target.clone(),
        expires: claims.expires,
        created_at: clock::now_rfc3339(),
        created_by: minter.key_id.clone(),
        created_by_sha256: crate::control::hex(&minter.key_hash),
        revoked_at: None,
    };
    let max_live = state.config().limits.max_viewer_tokens_per_tenant;
    let (work_state, work_row) = (state.clone(), row.clone());
    state
        .blocking(&tenant, move || {
            Ok(work_state
                .control()
                .put_viewer_token(&work_row, max_live, now)?)
        })
        .await?;
    let token = viewer::mint(state.control().viewer_token_key(), &claims);
    let event = audit::viewer_token(Some(&auth.0), audit::types::VIEWER_TOKEN_MINTED, &claims.id)?;
    if let Err(err) = audit::record(&state, &tenant, event).await {
        // No token works without its audit event.
        let _ = state.control().revoke_viewer_token(&tenant, &claims.id);
        return Err(err);
    }
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

/// The tenant's viewer tokens that have not expired, revoked ones included, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/viewer-tokens",
    tag = "activity",
    responses(
        (status = 200, description = "The tokens (never the token texts).", body = ViewerTokenList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<ViewerTokenList>, ApiError> {
    let tenant = auth.token_minter()?.tenant.clone();
    list_of(state, tenant).await
}

/// The named tenant's viewer tokens that have not expired, revoked ones included, newest
/// first (a service embedder key).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/viewer-tokens",
    tag = "activity",
    params(("tenant" = String, Path, description = "The tenant.")),
    responses(
        (status = 200, description = "The tokens (never the token texts).", body = ViewerTokenList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not a service embedder key allowed this tenant (or the tenant's own owner, super_admin or admin key).", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_for_tenant(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<ViewerTokenList>, ApiError> {
    let acting = auth.acting_on_named(&state, &tenant, Act::Embed)?;
    audit::service_read(&state, &acting, "viewer_tokens").await?;
    list_of(state, acting.tenant).await
}

async fn list_of(state: AppState, tenant: TenantId) -> Result<Json<ViewerTokenList>, ApiError> {
    let now = clock::now().unix_nanos().div_euclid(1_000_000_000);
    let work_state = state.clone();
    let work_tenant = tenant.clone();
    let rows = state
        .blocking(&tenant, move || {
            Ok(work_state.control().viewer_tokens(&work_tenant, now)?)
        })
        .await?;
    let tokens = rows
        .into_iter()
        .map(|row| {
            let token_state = if row.revoked_at.is_some() {
                "revoked"
            } else if state
                .control()
                .live_viewer_token(&row.tenant, &row.id, now)
                .is_none()
            {
                "minter_revoked"
            } else {
                "live"
            };
            ViewerTokenInfo {
                state: token_state.to_owned(),
                expires_at: Timestamp::from_unix_nanos(row.expires.saturating_mul(1_000_000_000))
                    .to_rfc3339(),
                token_id: row.id,
                actor: row.actor,
                target: row.target,
                created_at: row.created_at,
                created_by: row.created_by,
                revoked_at: row.revoked_at,
            }
        })
        .collect();
    Ok(Json(ViewerTokenList { tokens }))
}

/// Revoke a viewer token: every page and record it opens is refused from now on.
#[utoipa::path(
    delete,
    path = "/api/v1/viewer-tokens/{token_id}",
    tag = "activity",
    params(("token_id" = String, Path, description = "The token's id, like vtk_3f9a0c2e71b4d6a8.")),
    responses(
        (status = 204, description = "Revoked (revoking a revoked token changes nothing)."),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "No such token in the tenant (or it expired).", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(token_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = auth.token_minter()?.tenant.clone();
    revoke_of(state, &auth, tenant, token_id).await
}

/// Revoke a viewer token of the named tenant (a service embedder key).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/viewer-tokens/{token_id}",
    tag = "activity",
    params(
        ("tenant" = String, Path, description = "The tenant."),
        ("token_id" = String, Path, description = "The token's id, like vtk_3f9a0c2e71b4d6a8."),
    ),
    responses(
        (status = 204, description = "Revoked (revoking a revoked token changes nothing)."),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not a service embedder key allowed this tenant (or the tenant's own owner, super_admin or admin key).", body = ErrorBody),
        (status = 404, description = "No such tenant, or no such token in it (or it expired).", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn revoke_for_tenant(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((tenant, token_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let acting = auth.acting_on_named(&state, &tenant, Act::Embed)?;
    revoke_of(state, &auth, acting.tenant, token_id).await
}

async fn revoke_of(
    state: AppState,
    auth: &Auth,
    tenant: TenantId,
    token_id: String,
) -> Result<StatusCode, ApiError> {
    let (work_state, work_tenant, work_id) = (state.clone(), tenant.clone(), token_id.clone());
    let (_, changed) = state
        .blocking(&tenant, move || {
            Ok(work_state
                .control()
                .revoke_viewer_token(&work_tenant, &work_id)?)
        })
        .await?;
    if changed {
        let event =
            audit::viewer_token(Some(&auth.0), audit::types::VIEWER_TOKEN_REVOKED, &token_id)?;
        audit::record(&state, &tenant, event).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
