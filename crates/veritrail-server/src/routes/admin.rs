//! Tenants (server admin) and API keys (tenant owners and admins, or the server admin for
//! any tenant). Each change is written to the tenant's own log as an audit event before the
//! reply; if that event cannot be stored, the change is undone and the reply is a 503.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use veritrail_api::{
    CreateKey, CreateServiceKey, CreateTenant, ErrorBody, KeyBody, KeyCreated, KeyList,
    ServiceKeyBody, ServiceKeyCreated, ServiceKeyList, ServiceRole, TenantBody, TenantCreated,
    TenantList, WhoAmI, error_codes,
};
use veritrail_core::event::TenantId;

use crate::AppState;
use crate::audit;
use crate::auth::Auth;
use crate::control::{Principal, ServiceKeyRow, TenantRow};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};

/// Longest key or tenant display name.
const MAX_NAME_LEN: usize = 256;

/// Who the presented key is.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "keys",
    responses(
        (status = 200, description = "The key's id, tenant and role.", body = WhoAmI),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn me(State(state): State<AppState>, auth: Auth) -> Result<Json<WhoAmI>, ApiError> {
    Ok(Json(match &auth.0 {
        Principal::ServerAdmin => WhoAmI {
            key_id: crate::control::SERVER_ADMIN.to_owned(),
            tenant: None,
            role: None,
            service: None,
        },
        Principal::Tenant(key) => WhoAmI {
            key_id: key.key_id.clone(),
            tenant: Some(key.tenant.to_string()),
            role: Some(key.role),
            service: None,
        },
        Principal::Service(key) => {
            let key_id = key.key_id.clone();
            let row = state
                .clone()
                .blocking_untenanted(move || Ok(state.control().service_key(&key_id)?))
                .await?;
            WhoAmI {
                key_id: row.id.clone(),
                tenant: None,
                role: None,
                service: Some(row.to_body()),
            }
        }
    }))
}

/// Create a service key: a deployment-level key that writes events to, or embeds the
/// Activity view of, the tenants it may (every tenant, a list, or a prefix).
#[utoipa::path(
    post,
    path = "/api/v1/service-keys",
    tag = "keys",
    request_body = CreateServiceKey,
    responses(
        (status = 201, description = "The key, with its secret (the only time it is shown).", body = ServiceKeyCreated),
        (status = 400, description = "Malformed body, both a list and a prefix, an invalid tenant id, or `create_tenants` on an embedder key.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
        (status = 409, description = "As many active service keys as the deployment may have.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_service_key(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<ApiJson<CreateServiceKey>, ApiError>,
) -> Result<(StatusCode, Json<ServiceKeyCreated>), ApiError> {
    auth.server_admin()?;
    let ApiJson(body) = body?;
    let invalid = |message: String| ApiError::bad_request(error_codes::INVALID_PARAMETER, message);
    if body.tenants.is_some() && body.tenant_prefix.is_some() {
        return Err(invalid(
            "give `tenants` (a list) or `tenant_prefix`, not both; neither lets the key act on every tenant".into(),
        ));
    }
    if let Some(tenants) = &body.tenants {
        if tenants.is_empty() || tenants.len() > crate::control::MAX_SERVICE_KEY_TENANTS {
            return Err(invalid(format!(
                "tenants: 1 to {} tenant ids",
                crate::control::MAX_SERVICE_KEY_TENANTS
            )));
        }
        for tenant in tenants {
            TenantId::parse(tenant)
                .map_err(|err| invalid(format!("tenants: {tenant:?}: {err}")))?;
        }
    }
    if let Some(prefix) = &body.tenant_prefix
        && (prefix.is_empty()
            || prefix.len() >= veritrail_core::event::limits::TENANT_ID_MAX_LEN
            || TenantId::parse(&format!("{prefix}x")).is_err())
    {
        return Err(invalid(format!(
            "tenant_prefix: {prefix:?} does not begin any valid tenant id ([a-z0-9][a-z0-9_-]*)"
        )));
    }
    if body.create_tenants && body.role != ServiceRole::ServicePublisher {
        return Err(invalid(
            "create_tenants: only a service_publisher key creates tenants (on first write)".into(),
        ));
    }
    let name = check_name(body.name)?;
    let row = ServiceKeyRow {
        id: String::new(),
        role: body.role,
        name,
        tenants: body.tenants,
        tenant_prefix: body.tenant_prefix,
        create_tenants: body.create_tenants,
        created_at: String::new(),
        created_by: crate::control::SERVER_ADMIN.to_owned(),
        revoked_at: None,
        secret_sha256: String::new(),
    };
    let (row, secret) = state
        .clone()
        .blocking_untenanted(move || Ok(state.control().create_service_key(row)?))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ServiceKeyCreated {
            key: row.to_body(),
            secret,
        }),
    ))
}

/// List service keys, active and revoked.
#[utoipa::path(
    get,
    path = "/api/v1/service-keys",
    tag = "keys",
    responses(
        (status = 200, description = "Every service key, oldest first (never a secret).", body = ServiceKeyList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_service_keys(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<ServiceKeyList>, ApiError> {
    auth.server_admin()?;
    let rows = state
        .clone()
        .blocking_untenanted(move || Ok(state.control().service_keys()?))
        .await?;
    Ok(Json(ServiceKeyList {
        keys: rows.iter().map(ServiceKeyRow::to_body).collect(),
    }))
}

/// Revoke a service key: it authenticates nothing from now on, its open streams end and
/// the viewer tokens it minted stop working.
#[utoipa::path(
    delete,
    path = "/api/v1/service-keys/{key_id}",
    tag = "keys",
    params(("key_id" = String, Path, description = "The key's id, like svc_3f9a0c2e71b4d6a8.")),
    responses(
        (status = 200, description = "The revoked key (revoking a revoked key changes nothing).", body = ServiceKeyBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
        (status = 404, description = "No such service key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn revoke_service_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key_id): ApiPath<String>,
) -> Result<Json<ServiceKeyBody>, ApiError> {
    auth.server_admin()?;
    let (row, _) = state
        .clone()
        .blocking_untenanted(move || Ok(state.control().revoke_service_key(&key_id)?))
        .await?;
    Ok(Json(row.to_body()))
}

/// Create a tenant and its first owner key.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "The tenant, and its owner key (the only time the secret is shown).", body = TenantCreated),
        (status = 400, description = "Malformed body or invalid tenant id.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
        (status = 409, description = "The tenant exists.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<ApiJson<CreateTenant>, ApiError>,
) -> Result<(StatusCode, Json<TenantCreated>), ApiError> {
    auth.server_admin()?;
    let ApiJson(body) = body?;
    let tenant = TenantId::parse(&body.id).map_err(|err| {
        ApiError::bad_request(error_codes::INVALID_PARAMETER, format!("tenant id: {err}"))
    })?;
    let name = check_name(body.name)?;
    let (row, owner, secret) = {
        let state = state.clone();
        let tenant = tenant.clone();
        state
            .clone()
            .blocking(&tenant.clone(), move || {
                let settings =
                    crate::control::CatalogSettings::for_new_tenants(&state.config().tenants);
                Ok(state.control().create_tenant(&tenant, name, &settings)?)
            })
            .await?
    };
    let event = audit::tenant_created(&auth.0, &tenant, &owner)?;
    if let Err(err) = audit::record(&state, &tenant, event).await {
        let control_state = state.clone();
        let undo_tenant = tenant.clone();
        state
            .clone()
            .blocking(&tenant.clone(), move || {
                Ok(control_state
                    .control()
                    .undo_create_tenant(&undo_tenant, &owner)?)
            })
            .await?;
        return Err(err);
    }
    let log_size = state.ledger().size(&tenant)?;
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            tenant: tenant_body(row, log_size),
            owner_key: KeyCreated {
                key: owner.to_body(),
                secret,
            },
        }),
    ))
}

/// List tenants.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenants",
    responses(
        (status = 200, description = "Every tenant.", body = TenantList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<TenantList>, ApiError> {
    auth.server_admin()?;
    state
        .clone()
        .blocking_untenanted(move || {
            let tenants = state
                .control()
                .tenants()?
                .into_iter()
                .map(|row| {
                    let size = TenantId::parse(&row.id)
                        .ok()
                        .map(|tenant| state.ledger().size(&tenant))
                        .transpose()?
                        .unwrap_or(0);
                    Ok(tenant_body(row, size))
                })
                .collect::<Result<_, ApiError>>()?;
            Ok(Json(TenantList { tenants }))
        })
        .await
}

/// One tenant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id.")),
    responses(
        (status = 200, description = "The tenant.", body = TenantBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<TenantBody>, ApiError> {
    auth.server_admin()?;
    let tenant = existing_tenant(&state, &tenant)?;
    let row = state
        .control()
        .tenant(tenant.as_str())?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {tenant}")))?;
    let size = state.ledger().size(&tenant)?;
    Ok(Json(tenant_body(row, size)))
}

/// List the caller's tenant's keys.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    responses(
        (status = 200, description = "Every key of the tenant, active and revoked, without secrets.", body = KeyList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "The key's role may not manage keys.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<KeyList>, ApiError> {
    let tenant = own_tenant(&auth)?;
    auth.may_manage_keys(None)?;
    keys_of(&state, &tenant)
}

/// List a tenant's keys (server admin).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/keys",
    tag = "keys",
    params(("tenant" = String, Path, description = "Tenant id.")),
    responses(
        (status = 200, description = "Every key of the tenant, without secrets.", body = KeyList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_tenant_keys(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<KeyList>, ApiError> {
    auth.server_admin()?;
    let tenant = existing_tenant(&state, &tenant)?;
    keys_of(&state, &tenant)
}

fn keys_of(state: &AppState, tenant: &TenantId) -> Result<Json<KeyList>, ApiError> {
    let keys = state
        .control()
        .keys(tenant)?
        .iter()
        .map(crate::control::KeyRow::to_body)
        .collect();
    Ok(Json(KeyList { keys }))
}

/// Create a key in the caller's tenant.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key and its secret (shown only now).", body = KeyCreated),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "The key's role may not create keys of that role.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<ApiJson<CreateKey>, ApiError>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    let tenant = own_tenant(&auth)?;
    let ApiJson(body) = body?;
    new_key(&state, &auth, &tenant, body).await
}

/// Create a key in a tenant (server admin).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/keys",
    tag = "keys",
    params(("tenant" = String, Path, description = "Tenant id.")),
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key and its secret (shown only now).", body = KeyCreated),
        (status = 400, description = "Malformed body.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_tenant_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(tenant): ApiPath<String>,
    body: Result<ApiJson<CreateKey>, ApiError>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    auth.server_admin()?;
    let tenant = existing_tenant(&state, &tenant)?;
    let ApiJson(body) = body?;
    new_key(&state, &auth, &tenant, body).await
}

async fn new_key(
    state: &AppState,
    auth: &Auth,
    tenant: &TenantId,
    body: CreateKey,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    auth.may_manage_keys(Some(body.role))?;
    let name = check_name(body.name)?;
    let (key, secret) = {
        let state = state.clone();
        let tenant = tenant.clone();
        let created_by = auth.0.id().to_owned();
        state
            .clone()
            .blocking(&tenant.clone(), move || {
                Ok(state
                    .control()
                    .create_key(&tenant, body.role, name, &created_by)?)
            })
            .await?
    };
    let event = audit::key_created(&auth.0, &key)?;
    if let Err(err) = audit::record(state, tenant, event).await {
        let undo_state = state.clone();
        let undo_key = key.clone();
        state
            .clone()
            .blocking(&tenant.clone(), move || {
                Ok(undo_state.control().undo_create_key(&undo_key)?)
            })
            .await?;
        return Err(err);
    }
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            key: key.to_body(),
            secret,
        }),
    ))
}

/// Revoke a key of the caller's tenant.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{key_id}",
    tag = "keys",
    params(("key_id" = String, Path, description = "The key's id, like key_3f9a0c2e71b4d6a8.")),
    responses(
        (status = 200, description = "The key, now revoked (revoking a revoked key changes nothing).", body = KeyBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "The key's role may not revoke keys of that role.", body = ErrorBody),
        (status = 404, description = "No such key in the tenant.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key_id): ApiPath<String>,
) -> Result<Json<KeyBody>, ApiError> {
    let tenant = own_tenant(&auth)?;
    // Roles that manage no keys learn nothing, not even which key ids exist.
    auth.may_manage_keys(None)?;
    revoke(&state, &auth, &tenant, &key_id).await
}

/// Revoke a key of a tenant (server admin).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/keys/{key_id}",
    tag = "keys",
    params(
        ("tenant" = String, Path, description = "Tenant id."),
        ("key_id" = String, Path, description = "The key's id."),
    ),
    responses(
        (status = 200, description = "The key, now revoked.", body = KeyBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not the server admin key.", body = ErrorBody),
        (status = 404, description = "No such tenant or key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn revoke_tenant_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((tenant, key_id)): ApiPath<(String, String)>,
) -> Result<Json<KeyBody>, ApiError> {
    auth.server_admin()?;
    let tenant = existing_tenant(&state, &tenant)?;
    revoke(&state, &auth, &tenant, &key_id).await
}

async fn revoke(
    state: &AppState,
    auth: &Auth,
    tenant: &TenantId,
    key_id: &str,
) -> Result<Json<KeyBody>, ApiError> {
    let existing = state.control().key(tenant, key_id)?;
    auth.may_manage_keys(Some(existing.role))?;
    // The event goes first: a revocation is never without its audit record. If the event
    // is stored and the revocation then fails, the reply is an error and a retry revokes.
    if existing.revoked_at.is_some() {
        return Ok(Json(existing.to_body()));
    }
    audit::record(state, tenant, audit::key_revoked(&auth.0, &existing)?).await?;
    let (row, _) = state.control().revoke_key(tenant, key_id)?;
    Ok(Json(row.to_body()))
}

fn own_tenant(auth: &Auth) -> Result<TenantId, ApiError> {
    match &auth.0 {
        Principal::Tenant(key) => Ok(key.tenant.clone()),
        Principal::ServerAdmin => Err(ApiError::forbidden(
            "the server admin manages keys under /api/v1/tenants/{tenant}/keys",
        )),
        Principal::Service(_) => Err(ApiError::forbidden(
            "a service key manages no keys; the server admin does (/api/v1/service-keys)",
        )),
    }
}

fn existing_tenant(state: &AppState, tenant: &str) -> Result<TenantId, ApiError> {
    let not_found = || ApiError::not_found(format!("no tenant {tenant:?}"));
    let id = TenantId::parse(tenant).map_err(|_| not_found())?;
    state.control().tenant(id.as_str())?.ok_or_else(not_found)?;
    Ok(id)
}

fn tenant_body(row: TenantRow, log_size: u64) -> TenantBody {
    TenantBody {
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        log_size,
    }
}

fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    match name {
        Some(name) if name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                error_codes::INVALID_PARAMETER,
                format!(
                    "name must be at most {MAX_NAME_LEN} bytes of text without control characters"
                ),
            ))
        }
        Some(name) if name.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}
