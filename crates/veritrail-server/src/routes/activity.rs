//! `/api/v1/activity/settings`: who may open the tenant's Activity page (the web UI). A
//! change is an audit event (`veritrail.tenant.settings_changed`), written before the
//! reply and undone if it cannot be.

use axum::Json;
use axum::extract::State;
use veritrail_api::{ActivitySettingsBody, ErrorBody};

use crate::AppState;
use crate::audit;
use crate::auth::Auth;
use crate::control::ActivitySettings;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// The tenant's Activity page settings.
#[utoipa::path(
    get,
    path = "/api/v1/activity/settings",
    tag = "activity",
    responses(
        (status = 200, description = "The settings (viewer keys not admitted until changed).", body = ActivitySettingsBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<ActivitySettingsBody>, ApiError> {
    let tenant = auth.settings_manager()?.tenant.clone();
    let settings = state
        .clone()
        .blocking(&tenant.clone(), move || {
            Ok(state.control().activity_settings(&tenant)?)
        })
        .await?;
    Ok(Json(ActivitySettingsBody {
        admit_viewers: settings.admit_viewers,
    }))
}

/// Change the tenant's Activity page settings.
#[utoipa::path(
    put,
    path = "/api/v1/activity/settings",
    tag = "activity",
    request_body = ActivitySettingsBody,
    responses(
        (status = 200, description = "The settings now.", body = ActivitySettingsBody),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<ApiJson<ActivitySettingsBody>, ApiError>,
) -> Result<Json<ActivitySettingsBody>, ApiError> {
    let tenant = auth.settings_manager()?.tenant.clone();
    let ApiJson(body) = body?;
    let settings = ActivitySettings {
        admit_viewers: body.admit_viewers,
    };
    let (work_state, work_tenant) = (state.clone(), tenant.clone());
    let previous = state
        .clone()
        .blocking(&tenant.clone(), move || {
            Ok(work_state
                .control()
                .put_activity_settings(&work_tenant, &settings)?)
        })
        .await?;
    let value = format!("admit_viewers={}", settings.admit_viewers);
    let event = audit::settings_changed(&auth.0, &tenant, "activity", &value)?;
    if let Err(err) = audit::record(&state, &tenant, event).await {
        let (undo_state, undo_tenant) = (state.clone(), tenant.clone());
        state
            .clone()
            .blocking(&tenant.clone(), move || {
                Ok(undo_state
                    .control()
                    .put_activity_settings(&undo_tenant, &previous)?)
            })
            .await?;
        return Err(err);
    }
    Ok(Json(body))
}
