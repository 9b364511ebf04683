//! Data lifecycle: `/api/v1/retention`, `/api/v1/erasures`, `/api/v1/holds`. Changes are
//! for owner and super_admin keys; each is an event in the tenant's own log
//! ([`crate::lifecycle`] does the work).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use veritrail_api::{
    ErasureBody, ErasureInput, ErrorBody, HoldBody, HoldInput, HoldList, RetentionBody,
    RetentionPolicy, RetentionRun,
};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::lifecycle;

/// The retention policy in force, where it comes from, and the last run.
#[utoipa::path(
    get,
    path = "/api/v1/retention",
    tag = "lifecycle",
    responses(
        (status = 200, description = "The policy in force.", body = RetentionBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_retention(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<RetentionBody>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    Ok(Json(lifecycle::retention(&state, &tenant).await?))
}

/// Set the tenant's retention policy: records past either limit are removed by the
/// background job (or `POST /api/v1/retention/run`). An empty policy keeps everything.
#[utoipa::path(
    put,
    path = "/api/v1/retention",
    tag = "lifecycle",
    request_body = RetentionPolicy,
    responses(
        (status = 200, description = "The policy in force now.", body = RetentionBody),
        (status = 400, description = "Malformed body, or a limit out of range.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner or super_admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn put_retention(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<ApiJson<RetentionPolicy>, ApiError>,
) -> Result<Json<RetentionBody>, ApiError> {
    let tenant = auth.data_steward()?.tenant.clone();
    let ApiJson(policy) = body?;
    Ok(Json(
        lifecycle::set_retention(&state, &auth.0, &tenant, Some(policy)).await?,
    ))
}

/// Drop the tenant's own policy: the server's default applies again.
#[utoipa::path(
    delete,
    path = "/api/v1/retention",
    tag = "lifecycle",
    responses(
        (status = 200, description = "The policy in force now.", body = RetentionBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner or super_admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_retention(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<RetentionBody>, ApiError> {
    let tenant = auth.data_steward()?.tenant.clone();
    Ok(Json(
        lifecycle::set_retention(&state, &auth.0, &tenant, None).await?,
    ))
}

/// Apply the retention policy now. What is removed is recorded as one
/// `veritrail.retention.deleted` event; records a legal hold covers are kept.
#[utoipa::path(
    post,
    path = "/api/v1/retention/run",
    tag = "lifecycle",
    responses(
        (status = 200, description = "What the run removed.", body = RetentionRun),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner or super_admin key.", body = ErrorBody),
        (status = 503, description = "The search index is catching up (with a legal hold to honour); retry later.", body = ErrorBody),
        (status = 507, description = "The disk is full.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn run_retention(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<RetentionRun>, ApiError> {
    let tenant = auth.data_steward()?.tenant.clone();
    Ok(Json(
        lifecycle::run_retention(&state, &tenant, Some(&auth.0)).await?,
    ))
}

/// Erase the records about one subject (an actor's id or email, a target's id) or given
/// seqs: their bodies leave the log, search, exports and webhooks; their leaf hashes stay,
/// so every proof of the other records still verifies. Recorded as one
/// `veritrail.event.erased` event naming the seqs, never the erased data. Repeating it
/// erases nothing more; `dry_run` only lists the records.
#[utoipa::path(
    post,
    path = "/api/v1/erasures",
    tag = "lifecycle",
    request_body = ErasureInput,
    responses(
        (status = 200, description = "What was (or would be) erased.", body = ErasureBody),
        (status = 400, description = "No reason, nothing to erase, or seqs past the log.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner or super_admin key.", body = ErrorBody),
        (status = 409, description = "A legal hold covers a record it would erase (`held`, naming the hold).", body = ErrorBody),
        (status = 503, description = "The search index is catching up; retry later.", body = ErrorBody),
        (status = 507, description = "The disk is full.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn erase(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<ApiJson<ErasureInput>, ApiError>,
) -> Result<Json<ErasureBody>, ApiError> {
    let tenant = auth.data_steward()?.tenant.clone();
    let ApiJson(input) = body?;
    Ok(Json(
        lifecycle::erase(&state, &auth.0, &tenant, input).await?,
    ))
}

/// The legal holds in force.
#[utoipa::path(
    get,
    path = "/api/v1/holds",
    tag = "lifecycle",
    responses(
        (status = 200, description = "The holds, oldest first.", body = HoldList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_holds(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<HoldList>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    Ok(Json(HoldList {
        holds: lifecycle::holds(&state, &tenant).await?,
    }))
}

/// Place a legal hold on the records about one subject, or (with no subject field) on the
/// whole log: retention keeps them and erasures touching them are refused until it is
/// released.
#[utoipa::path(
    post,
    path = "/api/v1/holds",
    tag = "lifecycle",
    request_body = HoldInput,
    responses(
        (status = 201, description = "The hold.", body = HoldBody),
        (status = 400, description = "Malformed body or no reason.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner or super_admin key.", body = ErrorBody),
        (status = 409, description = "The tenant has as many holds as it may.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_hold(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<ApiJson<HoldInput>, ApiError>,
) -> Result<(StatusCode, Json<HoldBody>), ApiError> {
    let tenant = auth.data_steward()?.tenant.clone();
    let ApiJson(input) = body?;
    let hold = lifecycle::create_hold(&state, &auth.0, &tenant, input).await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

/// Release a legal hold.
#[utoipa::path(
    delete,
    path = "/api/v1/holds/{hold_id}",
    tag = "lifecycle",
    params(("hold_id" = String, Path, description = "The hold's id, like hold_3f9a0c2e71b4d6a8.")),
    responses(
        (status = 200, description = "The released hold.", body = HoldBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner or super_admin key.", body = ErrorBody),
        (status = 404, description = "No such hold.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn release_hold(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(hold_id): ApiPath<String>,
) -> Result<Json<HoldBody>, ApiError> {
    let tenant = auth.data_steward()?.tenant.clone();
    Ok(Json(
        lifecycle::release_hold(&state, &auth.0, &tenant, &hold_id).await?,
    ))
}
