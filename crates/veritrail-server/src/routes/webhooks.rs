//! `/api/v1/webhooks`: a tenant's webhook subscriptions, their attempts, redelivery and
//! pings. Owner, super_admin and admin keys manage them; every change is an audit event in
//! the tenant's log, written before the reply (the change is undone if it cannot be).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use veritrail_api::{
    ErrorBody, WebhookAttempt, WebhookAttemptList, WebhookAttemptParams, WebhookBody,
    WebhookCreated, WebhookInput, WebhookList, WebhookPatch, WebhookRedeliverInput,
    WebhookRedeliverQueued, WebhookRotateInput, WebhookRotated, WebhookSecretInfo, error_codes,
};
use veritrail_core::event::TenantId;
use veritrail_core::webhook::WebhookSecret;

use crate::AppState;
use crate::audit::{self, types};
use crate::auth::Auth;
use crate::clock;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::webhooks::message::{self, FORMATS, Grouping, Matcher, Message};
use crate::webhooks::net::UrlError;
use crate::webhooks::store::{Progress, SecretRow, SubscriptionRow};
use crate::webhooks::worker;

/// Default overlap of a rotated-out secret.
const DEFAULT_OVERLAP_SECS: u64 = 86_400;
/// Most messages one redelivery request may queue.
const MAX_REDELIVER: u64 = 10_000;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        error_codes::INVALID_WEBHOOK,
        message,
    )
}

fn no_such(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "this tenant has no webhook subscription {id:?} (see GET /api/v1/webhooks)"
    ))
}

/// Checks a target URL: its form, and where it resolves now.
async fn check_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    match state.webhooks().guard().check_url(url).await {
        Ok(url) => Ok(url.to_string()),
        Err(UrlError::Invalid(why)) => Err(invalid(format!("url: {why}"))),
        Err(UrlError::Forbidden(why)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_codes::FORBIDDEN_TARGET,
            format!("url: {why}"),
        )),
    }
}

fn check_format(format: &str) -> Result<(), ApiError> {
    if FORMATS.contains(&format) {
        Ok(())
    } else {
        Err(invalid(format!(
            "format: {format:?} is not `standard` (Standard Webhooks) or `envelope` (user-action notifications as VGS sends them)"
        )))
    }
}

fn check_description(description: Option<String>) -> Result<Option<String>, ApiError> {
    match description {
        Some(text) if text.chars().count() > 500 || text.chars().any(char::is_control) => Err(
            invalid("description: at most 500 characters, without control characters"),
        ),
        other => Ok(other),
    }
}

fn secret_or_new(given: Option<String>) -> Result<String, ApiError> {
    match given {
        Some(text) => WebhookSecret::parse(&text)
            .map(|_| text)
            .map_err(|err| invalid(format!("secret: {err}"))),
        None => {
            let mut bytes = vec![0u8; 32];
            getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
            Ok(WebhookSecret::from_bytes(bytes)
                .map_err(ApiError::internal)?
                .to_text())
        }
    }
}

fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(format!("wh_{}", crate::control::hex(&bytes)))
}

/// The subscription as the API shows it (never its secrets).
fn body(state: &AppState, row: &SubscriptionRow, progress: &Progress) -> WebhookBody {
    let log_size = TenantId::parse(&row.tenant)
        .ok()
        .and_then(|tenant| state.ledger().size(&tenant).ok())
        .unwrap_or(0);
    WebhookBody {
        id: row.id.clone(),
        tenant: row.tenant.clone(),
        url: row.url.clone(),
        description: row.description.clone(),
        filter: row.filter.clone(),
        format: row.format.clone(),
        grouping: row.grouping.clone(),
        enabled: row.enabled,
        disabled_reason: row.disabled_reason.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        secrets: row
            .secrets
            .iter()
            .map(|secret| WebhookSecretInfo {
                created_at: secret.created_at.clone(),
                expires_at: secret.expires_at.map(|at| {
                    veritrail_core::event::Timestamp::from_unix_nanos(
                        at.saturating_mul(1_000_000_000),
                    )
                    .to_rfc3339()
                }),
            })
            .collect(),
        next_seq: progress.unit_start,
        log_size,
        failing_since: progress
            .failing_since
            .map(|at| veritrail_core::event::Timestamp::from_unix_nanos(at).to_rfc3339()),
    }
}

fn found(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
) -> Result<(Arc<SubscriptionRow>, Progress), ApiError> {
    state
        .webhooks()
        .get(tenant.as_str(), id)
        .ok_or_else(|| no_such(id))
}

/// Writes a webhook audit event; `undo` runs if it cannot be written.
async fn audited(
    state: &AppState,
    auth: &Auth,
    tenant: &TenantId,
    event_type: &str,
    id: &str,
    reason: Option<&str>,
    undo: impl FnOnce() -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let event = audit::webhook_changed(Some(&auth.0), event_type, id, reason)?;
    if let Err(err) = audit::record(state, tenant, event).await {
        undo()?;
        return Err(err);
    }
    Ok(())
}

/// Create a webhook subscription.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = WebhookInput,
    responses(
        (status = 201, description = "The subscription and its signing secret (shown only now).", body = WebhookCreated),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 409, description = "The tenant has the most subscriptions allowed (`webhooks.max_per_tenant`).", body = ErrorBody),
        (status = 422, description = "An invalid field (`invalid_webhook`), or a URL that is or resolves to an internal address (`forbidden_target`).", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    input: Result<ApiJson<WebhookInput>, ApiError>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    let ApiJson(input) = input?;
    let url = check_url(&state, &input.url).await?;
    Matcher::new(&input.filter).map_err(invalid)?;
    let format = input.format.unwrap_or_else(|| "standard".to_owned());
    check_format(&format)?;
    let grouping = input
        .grouping
        .unwrap_or_else(|| message::EVERY_SINGLE.to_owned());
    Grouping::parse(&grouping).map_err(invalid)?;
    let description = check_description(input.description)?;
    let secret = secret_or_new(input.secret)?;
    let max = state.config().webhooks.max_per_tenant;
    if state.webhooks().list(tenant.as_str()).len() >= max {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            error_codes::CONFLICT,
            format!(
                "this tenant has {max} webhook subscriptions, the most allowed (webhooks.max_per_tenant); delete one first"
            ),
        ));
    }
    let log_size = state.ledger().size(&tenant)?;
    let start = input.start_seq.unwrap_or(log_size);
    let now = clock::now_rfc3339();
    let row = SubscriptionRow {
        id: new_id()?,
        tenant: tenant.to_string(),
        url,
        description,
        filter: input.filter,
        format,
        grouping,
        enabled: input.enabled.unwrap_or(true),
        disabled_reason: None,
        created_at: now.clone(),
        updated_at: now.clone(),
        secrets: vec![SecretRow {
            secret: secret.clone(),
            created_at: now,
            expires_at: None,
        }],
    };
    let progress = Progress {
        unit_start: start,
        ..Progress::default()
    };
    let work_state = state.clone();
    let work_row = row.clone();
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            work_state
                .webhooks()
                .create(&work_state, work_row, progress)
        })
        .await?;
    let undo_state = state.clone();
    let (undo_tenant, undo_id) = (row.tenant.clone(), row.id.clone());
    audited(
        &state,
        &auth,
        &tenant,
        types::WEBHOOK_CREATED,
        &row.id,
        None,
        move || undo_state.webhooks().delete(&undo_tenant, &undo_id),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            webhook: body(&state, &row, &progress),
            secret,
        }),
    ))
}

/// List the tenant's webhook subscriptions.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "The subscriptions, by id, without secrets.", body = WebhookList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<WebhookList>, ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    let webhooks = state
        .webhooks()
        .list(tenant.as_str())
        .iter()
        .map(|(row, progress)| body(&state, row, progress))
        .collect();
    Ok(Json(WebhookList { webhooks }))
}

/// One webhook subscription, with its delivery progress.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "The subscription's id.")),
    responses(
        (status = 200, description = "The subscription, without secrets.", body = WebhookBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "No such subscription in the caller's tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookBody>, ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    let (row, progress) = found(&state, &tenant, &id)?;
    Ok(Json(body(&state, &row, &progress)))
}

/// Change a webhook subscription.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "The subscription's id.")),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "The changed subscription.", body = WebhookBody),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "No such subscription in the caller's tenant.", body = ErrorBody),
        (status = 422, description = "An invalid field, or a forbidden target.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    patch: Result<ApiJson<WebhookPatch>, ApiError>,
) -> Result<Json<WebhookBody>, ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    let ApiJson(patch) = patch?;
    let (before, _) = found(&state, &tenant, &id)?;
    let mut row = (*before).clone();
    let mut changed = Vec::new();
    if let Some(url) = patch.url {
        row.url = check_url(&state, &url).await?;
        changed.push("url");
    }
    if let Some(description) = patch.description {
        row.description = check_description(Some(description))?;
        changed.push("description");
    }
    if let Some(filter) = patch.filter {
        Matcher::new(&filter).map_err(invalid)?;
        row.filter = filter;
        changed.push("filter");
    }
    if let Some(format) = patch.format {
        check_format(&format)?;
        row.format = format;
        changed.push("format");
    }
    if let Some(grouping) = patch.grouping {
        Grouping::parse(&grouping).map_err(invalid)?;
        row.grouping = grouping;
        changed.push("grouping");
    }
    if let Some(enabled) = patch.enabled {
        if enabled != row.enabled {
            changed.push(if enabled { "enabled" } else { "disabled" });
        }
        row.enabled = enabled;
        row.disabled_reason = (!enabled).then(|| format!("disabled by {}", auth.0.id()));
    }
    if changed.is_empty() {
        let progress = found(&state, &tenant, &id)?.1;
        return Ok(Json(body(&state, &row, &progress)));
    }
    row.updated_at = clock::now_rfc3339();
    let work_state = state.clone();
    let work_row = row.clone();
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            work_state.webhooks().update(work_row)
        })
        .await?;
    let event_type = if patch.enabled == Some(false) && changed == ["disabled"] {
        types::WEBHOOK_DISABLED
    } else {
        types::WEBHOOK_UPDATED
    };
    let reason = format!("changed: {}", changed.join(", "));
    let undo_state = state.clone();
    let undo_row = (*before).clone();
    audited(
        &state,
        &auth,
        &tenant,
        event_type,
        &id,
        Some(&reason),
        move || undo_state.webhooks().update(undo_row),
    )
    .await?;
    let progress = found(&state, &tenant, &id)?.1;
    Ok(Json(body(&state, &row, &progress)))
}

/// Delete a webhook subscription, with its progress and attempt log.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "The subscription's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "No such subscription in the caller's tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    let (row, progress) = found(&state, &tenant, &id)?;
    let work_state = state.clone();
    let (work_tenant, work_id) = (tenant.to_string(), id.clone());
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            work_state.webhooks().delete(&work_tenant, &work_id)
        })
        .await?;
    let undo_state = state.clone();
    let undo_row = (*row).clone();
    audited(
        &state,
        &auth,
        &tenant,
        types::WEBHOOK_DELETED,
        &id,
        None,
        move || {
            undo_state
                .webhooks()
                .create(&undo_state, undo_row, progress)
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate the signing secret. The previous one keeps signing for the overlap: each
/// delivery then carries both signatures, so receivers can switch at any moment.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhook_id}/rotate",
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "The subscription's id.")),
    request_body = WebhookRotateInput,
    responses(
        (status = 200, description = "The new secret (shown only now).", body = WebhookRotated),
        (status = 400, description = "A body that is not valid JSON or has an unknown field (`malformed_json`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "No such subscription in the caller's tenant.", body = ErrorBody),
        (status = 422, description = "An invalid secret or overlap.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn rotate(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    input: Result<Option<ApiJson<WebhookRotateInput>>, ApiError>,
) -> Result<Json<WebhookRotated>, ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    // The body is optional: without one, the defaults.
    let input = input?.map(|ApiJson(input)| input).unwrap_or_default();
    let (before, _) = found(&state, &tenant, &id)?;
    let overlap = input.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > 30 * 86_400 {
        return Err(invalid("overlap_seconds: at most 2,592,000 (30 days)"));
    }
    let secret = secret_or_new(input.secret)?;
    if before.secrets.iter().any(|old| old.secret == secret) {
        return Err(invalid("secret: the subscription already has this secret"));
    }
    let now_secs = clock::now().unix_nanos().div_euclid(1_000_000_000);
    let expires = now_secs + i64::try_from(overlap).unwrap_or(i64::MAX);
    let mut row = (*before).clone();
    let mut secrets = vec![SecretRow {
        secret: secret.clone(),
        created_at: clock::now_rfc3339(),
        expires_at: None,
    }];
    // The previous current secret gets the overlap; older ones keep theirs; expired go.
    for (at, old) in row.secrets.iter().enumerate() {
        let expires_at = if at == 0 {
            Some(expires)
        } else {
            old.expires_at.map(|e| e.min(expires))
        };
        if expires_at.is_some_and(|e| e > now_secs) {
            secrets.push(SecretRow {
                expires_at,
                ..old.clone()
            });
        }
    }
    row.secrets = secrets;
    row.updated_at = clock::now_rfc3339();
    let work_state = state.clone();
    let work_row = row.clone();
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            work_state.webhooks().update(work_row)
        })
        .await?;
    let undo_state = state.clone();
    let undo_row = (*before).clone();
    let reason = format!("previous secret signs for {overlap} more seconds");
    audited(
        &state,
        &auth,
        &tenant,
        types::WEBHOOK_SECRET_ROTATED,
        &id,
        Some(&reason),
        move || undo_state.webhooks().update(undo_row),
    )
    .await?;
    let progress = found(&state, &tenant, &id)?.1;
    Ok(Json(WebhookRotated {
        webhook: body(&state, &row, &progress),
        secret,
    }))
}

/// The subscription's delivery attempts, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook_id}/attempts",
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "The subscription's id."), WebhookAttemptParams),
    responses(
        (status = 200, description = "Attempts with time, status, latency and error.", body = WebhookAttemptList),
        (status = 400, description = "An invalid parameter.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "No such subscription in the caller's tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn attempts(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<WebhookAttemptParams>,
) -> Result<Json<WebhookAttemptList>, ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    found(&state, &tenant, &id)?;
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::invalid_parameter("limit", "must be 1 to 1000"));
    }
    let before = params.before.unwrap_or(u64::MAX);
    let work_state = state.clone();
    let rows = state
        .clone()
        .blocking(&tenant.clone(), move || {
            work_state
                .webhooks()
                .attempts(tenant.as_str(), &id, before, limit + 1)
        })
        .await?;
    let more = rows.len() > limit;
    let attempts: Vec<WebhookAttempt> = rows.iter().take(limit).map(|row| row.to_body()).collect();
    let next_before = if more {
        attempts.last().map(|a| a.id)
    } else {
        None
    };
    Ok(Json(WebhookAttemptList {
        attempts,
        next_before,
    }))
}

/// Send one message again (by `message_id`), or the messages whose (first) event is in
/// `from_seq..=to_seq`, each with its usual id and body (a grouped message is computed again
/// from its window). They are sent after the message being delivered now; a restart of the
/// server forgets redeliveries not yet sent. At most 16 redeliveries wait per subscription.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhook_id}/redeliver",
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "The subscription's id.")),
    request_body = WebhookRedeliverInput,
    responses(
        (status = 202, description = "The messages are queued.", body = WebhookRedeliverQueued),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "No such subscription, or no such message or seq.", body = ErrorBody),
        (status = 409, description = "The subscription is disabled (`conflict`): enable it first.", body = ErrorBody),
        (status = 422, description = "Neither or both of a message and a range, or a range of more than 10,000 seqs.", body = ErrorBody),
        (status = 429, description = "16 redeliveries of this subscription are waiting already (`rate_limited`); see Retry-After.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn redeliver(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    input: Result<ApiJson<WebhookRedeliverInput>, ApiError>,
) -> Result<(StatusCode, Json<WebhookRedeliverQueued>), ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    let ApiJson(input) = input?;
    let (row, _) = found(&state, &tenant, &id)?;
    let size = state.ledger().size(&tenant)?;
    let (from, to, only) = match (&input.message_id, input.from_seq, input.to_seq) {
        (Some(message_id), None, None) => {
            let seq = message::message_seq(&row.id, message_id).ok_or_else(|| {
                ApiError::not_found(format!(
                    "{message_id:?} is not a message of this subscription"
                ))
            })?;
            (seq, seq, Some(message_id.clone()))
        }
        (None, Some(from), Some(to)) if from <= to => {
            if to - from >= MAX_REDELIVER {
                return Err(invalid(
                    "a redelivery covers at most 10,000 seqs; split the range",
                ));
            }
            (from, to, None)
        }
        _ => {
            return Err(invalid(
                "give either message_id, or from_seq and to_seq with from_seq <= to_seq",
            ));
        }
    };
    if to >= size {
        return Err(ApiError::not_found(format!(
            "seq {to} is not in the log yet (its size is {size})"
        )));
    }
    if !row.enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            error_codes::CONFLICT,
            "the subscription is disabled: nothing is delivered, redeliveries included; enable it first (PATCH with {\"enabled\": true})",
        ));
    }
    let redelivery = worker::Redelivery { from, to, only };
    let (work_state, work_tenant, work_row, work_redelivery) = (
        state.clone(),
        tenant.clone(),
        row.clone(),
        redelivery.clone(),
    );
    let messages = state
        .clone()
        .blocking(&tenant.clone(), move || {
            worker::redelivery_messages(&work_state, &work_tenant, &work_row, &work_redelivery)
        })
        .await?;
    if messages.is_empty() {
        return Err(ApiError::not_found(
            "no message of this subscription covers that (its filter matches no event there)",
        ));
    }
    let message_ids: Vec<String> = messages.into_iter().map(|m| m.id).collect();
    // Only the request is queued (the task computes its messages again when it sends
    // them), in a bounded queue.
    state
        .webhooks()
        .redeliver(tenant.as_str(), &id, redelivery)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookRedeliverQueued {
            queued: message_ids.len() as u64,
            message_ids,
        }),
    ))
}

/// Send a test message now, once, and see what the receiver answered. Its type is
/// `veritrail.webhook.ping`; it is signed like every delivery.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhook_id}/ping",
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "The subscription's id.")),
    responses(
        (status = 200, description = "The attempt: status, latency, error.", body = WebhookAttempt),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "No such subscription in the caller's tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn ping(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookAttempt>, ApiError> {
    let tenant = auth.webhook_manager()?.tenant.clone();
    found(&state, &tenant, &id)?;
    let mut nonce = [0u8; 6];
    getrandom::fill(&mut nonce).map_err(ApiError::internal)?;
    let message_id = format!(
        "msg_{}_ping_{}",
        id.trim_start_matches("wh_"),
        crate::control::hex(&nonce)
    );
    let now = clock::now();
    let body = serde_json::json!({
        "type": "veritrail.webhook.ping",
        "timestamp": veritrail_core::webhook::rfc3339_millis(now),
        "data": {"subscription_id": id, "tenant": tenant.as_str()},
    });
    let message = Message {
        id: message_id,
        seq: 0,
        occurrence: 0,
        body: body.to_string().into_bytes(),
    };
    let attempt = state
        .webhooks()
        .ping(&state, tenant.as_str(), &id, &message)
        .await?;
    Ok(Json(attempt.to_body()))
}
