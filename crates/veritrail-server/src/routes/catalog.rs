//! The catalog API: the tenant's own catalog (whole, or one type at a time), its settings,
//! the shared catalogs, and categories with event counts for filter drop-downs.
//!
//! Reading needs a reader key (owner, super_admin, admin, viewer); changing needs an
//! owner, super_admin or admin key. Every change stores a new version and writes an audit
//! event in the tenant's log before the reply (`veritrail.catalog.changed`,
//! `veritrail.tenant.settings_changed`); if the event cannot be written, the change is
//! undone. Changes of one server are serialised, so versions follow each other.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use veritrail_api::{
    CatalogBody, CatalogChanged, CatalogEntryBody, CatalogSettingsBody, CategoryBody, CategoryList,
    ErrorBody, SharedCatalogList, SharedCatalogSummary, TypeCount, error_codes,
};
use veritrail_core::catalog::{Catalog, CatalogDoc, EntryDoc, FORMAT, Policy};
use veritrail_core::event::TenantId;

use crate::AppState;
use crate::audit;
use crate::auth::{Act, Auth};
use crate::catalogs::{self, BUILTIN, DocFormat};
use crate::control::CatalogSettings;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, body_or_error};

/// Query parameters of `GET /api/v1/catalog` and `GET /api/v1/catalog/shared/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogParams {
    /// `json` (default) or `yaml`: `yaml` answers with the catalog document alone.
    pub format: Option<String>,
    /// A stored version of the tenant's catalog (default: the latest).
    pub version: Option<String>,
}

fn wants_yaml(params: &CatalogParams) -> Result<bool, ApiError> {
    match params.format.as_deref() {
        None | Some("json") => Ok(false),
        Some("yaml") => Ok(true),
        Some(other) => Err(ApiError::invalid_parameter(
            "format",
            format!("{other:?} is not `json` or `yaml`"),
        )),
    }
}

fn yaml_response(doc: &CatalogDoc) -> Result<Response, ApiError> {
    Ok((
        [(header::CONTENT_TYPE, "application/yaml")],
        catalogs::to_yaml(doc)?,
    )
        .into_response())
}

/// An empty catalog for a tenant that has none yet.
fn empty_doc(tenant: &TenantId) -> CatalogDoc {
    CatalogDoc {
        format: FORMAT.to_owned(),
        id: tenant.as_str().to_ascii_lowercase().replace('_', "-"),
        version: 0,
        title: None,
        description: None,
        events: Vec::new(),
    }
}

/// The tenant's own catalog and its settings.
#[utoipa::path(
    get,
    path = "/api/v1/catalog",
    tag = "catalog",
    params(
        ("format" = Option<String>, Query, description = "`json` (default): the catalog with the tenant's settings; `yaml`: the catalog document alone, as YAML."),
        ("version" = Option<String>, Query, description = "A stored version (default: the latest)."),
    ),
    responses(
        (status = 200, description = "The tenant's catalog (version 0 and no events when it has none yet).", body = CatalogBody),
        (status = 400, description = "An invalid parameter.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 404, description = "No such version.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_catalog(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<CatalogParams>,
) -> Result<Response, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    catalog_of(state, tenant, params).await
}

/// The named tenant's own catalog and its settings (a service embedder key, which builds
/// each customer's filters from it).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/catalog",
    tag = "catalog",
    params(
        ("tenant" = String, Path, description = "The tenant."),
        ("format" = Option<String>, Query, description = "`json` (default): the catalog with the tenant's settings; `yaml`: the catalog document alone, as YAML."),
        ("version" = Option<String>, Query, description = "A stored version (default: the latest)."),
    ),
    responses(
        (status = 200, description = "The tenant's catalog (version 0 and no events when it has none yet).", body = CatalogBody),
        (status = 400, description = "An invalid parameter.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not a service embedder key allowed this tenant (or the tenant's own owner, super_admin or admin key).", body = ErrorBody),
        (status = 404, description = "No such tenant, or no such version.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_tenant_catalog(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(params): ApiQuery<CatalogParams>,
) -> Result<Response, ApiError> {
    let acting = auth.acting_on_named(&state, &tenant, Act::Embed)?;
    crate::audit::service_read(&state, &acting, "catalog").await?;
    catalog_of(state, acting.tenant, params).await
}

async fn catalog_of(
    state: AppState,
    tenant: TenantId,
    params: CatalogParams,
) -> Result<Response, ApiError> {
    let yaml = wants_yaml(&params)?;
    let version = params
        .version
        .as_deref()
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                ApiError::invalid_parameter("version", format!("{text:?} is not a version number"))
            })
        })
        .transpose()?;
    let (catalog, settings) = state
        .clone()
        .blocking(&tenant.clone(), move || {
            let control = state.control();
            let catalog = match version {
                None => catalogs::own_catalog(control, &tenant)?,
                Some(version) => {
                    let json = control.catalog_version(&tenant, version)?.ok_or_else(|| {
                        ApiError::not_found(format!("the catalog has no version {version}"))
                    })?;
                    Some(catalogs::stored_catalog(&json, version)?)
                }
            };
            let doc = catalog.map_or_else(|| empty_doc(&tenant), |catalog| catalog.to_doc());
            let settings = control.catalog_settings(&tenant)?;
            Ok(((tenant, doc), settings))
        })
        .await?;
    let (tenant, doc) = catalog;
    if yaml {
        return yaml_response(&doc);
    }
    Ok(Json(CatalogBody {
        tenant: tenant.to_string(),
        version: doc.version,
        policy: settings.policy.as_str().to_owned(),
        adopted: settings.adopted,
        catalog: doc,
    })
    .into_response())
}

/// Replace the tenant's own catalog (import).
#[utoipa::path(
    put,
    path = "/api/v1/catalog",
    tag = "catalog",
    request_body(content = Object, description = "A `veritrail-catalog/v1` document, as `application/json` or `application/yaml` (see `catalogs/` in the repository).", content_type = "application/yaml"),
    responses(
        (status = 200, description = "Stored as a new version.", body = CatalogChanged),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 413, description = "The body is larger than the limit.", body = ErrorBody),
        (status = 415, description = "Neither JSON nor YAML.", body = ErrorBody),
        (status = 422, description = "`invalid_catalog`: every problem by path in `errors`; nothing changed.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn put_catalog(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CatalogChanged>, ApiError> {
    let tenant = auth.catalog_editor()?.tenant.clone();
    let body = body_or_error(&state, body, "")?;
    let format = DocFormat::of(content_type(&headers), &body)?;
    let doc: CatalogDoc = catalogs::parse_body(&body, format)?;
    let catalog = catalogs::check_own(&doc)?;
    change(&state, &auth, tenant, "imported", move |_| Ok(catalog)).await
}

/// One type's entry, from whichever of the tenant's catalogs defines it.
#[utoipa::path(
    get,
    path = "/api/v1/catalog/types/{event_type}",
    tag = "catalog",
    params(("event_type" = String, Path, description = "The type key, like `user.logged_in`.")),
    responses(
        (status = 200, description = "The entry and the catalog that defines it.", body = CatalogEntryBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 404, description = "No catalog of the tenant defines the type.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_type(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(event_type): ApiPath<String>,
) -> Result<Json<CatalogEntryBody>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    let effective = state
        .clone()
        .blocking(&tenant.clone(), move || {
            state.catalogs().effective(state.control(), &tenant)
        })
        .await?;
    let (catalog, found) = effective.lookup(&event_type).ok_or_else(|| {
        ApiError::not_found(format!("no catalog of the tenant defines `{event_type}`"))
    })?;
    let ocsf = found.effective_ocsf();
    let entry = catalog
        .to_doc()
        .events
        .into_iter()
        .find(|entry| entry.event_type == event_type)
        .ok_or_else(|| ApiError::internal("a looked-up entry is missing"))?;
    Ok(Json(CatalogEntryBody {
        catalog: catalog.id().to_owned(),
        entry,
        ocsf,
    }))
}

/// Add or change one type in the tenant's own catalog.
#[utoipa::path(
    put,
    path = "/api/v1/catalog/types/{event_type}",
    tag = "catalog",
    params(("event_type" = String, Path, description = "The type key; the body's `type` must match it.")),
    request_body(content = Object, description = "One catalog entry (`type`, `name`, `category`, ...), as JSON or YAML."),
    responses(
        (status = 200, description = "Stored as a new version of the tenant's catalog.", body = CatalogChanged),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 415, description = "Neither JSON nor YAML.", body = ErrorBody),
        (status = 422, description = "`invalid_catalog`: the entry, or the catalog with it, has problems; nothing changed.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn put_type(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(event_type): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CatalogChanged>, ApiError> {
    let tenant = auth.catalog_editor()?.tenant.clone();
    let body = body_or_error(&state, body, "")?;
    let format = DocFormat::of(content_type(&headers), &body)?;
    let entry: EntryDoc = catalogs::parse_body(&body, format)?;
    if entry.event_type != event_type {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_codes::INVALID_CATALOG,
            format!(
                "the entry's type {:?} is not the path's {event_type:?}",
                entry.event_type
            ),
        ));
    }
    let change_tenant = tenant.clone();
    change(&state, &auth, tenant, "entry_updated", move |own| {
        let mut doc = own.map_or_else(|| empty_doc(&change_tenant), Catalog::to_doc);
        match doc
            .events
            .iter_mut()
            .find(|existing| existing.event_type == entry.event_type)
        {
            Some(existing) => *existing = entry,
            None => doc.events.push(entry),
        }
        catalogs::check_own(&doc)
    })
    .await
}

/// Remove one type from the tenant's own catalog.
#[utoipa::path(
    delete,
    path = "/api/v1/catalog/types/{event_type}",
    tag = "catalog",
    params(("event_type" = String, Path, description = "The type key.")),
    responses(
        (status = 200, description = "Stored as a new version of the tenant's catalog; events already stored keep their catalog fields.", body = CatalogChanged),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 404, description = "The tenant's own catalog does not define the type.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_type(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(event_type): ApiPath<String>,
) -> Result<Json<CatalogChanged>, ApiError> {
    let tenant = auth.catalog_editor()?.tenant.clone();
    change(&state, &auth, tenant, "entry_deleted", move |own| {
        let mut doc = own.map(Catalog::to_doc).ok_or_else(|| {
            ApiError::not_found("the tenant has no catalog of its own".to_owned())
        })?;
        let before = doc.events.len();
        doc.events.retain(|entry| entry.event_type != event_type);
        if doc.events.len() == before {
            return Err(ApiError::not_found(format!(
                "the tenant's catalog does not define `{event_type}`"
            )));
        }
        catalogs::check_own(&doc)
    })
    .await
}

/// Stores the catalog `make` builds from the latest one as a new version, writes the audit
/// event, and undoes the version if the event cannot be written.
async fn change(
    state: &AppState,
    auth: &Auth,
    tenant: TenantId,
    what: &'static str,
    make: impl FnOnce(Option<&Catalog>) -> Result<Catalog, ApiError> + Send + 'static,
) -> Result<Json<CatalogChanged>, ApiError> {
    let _serial = state.catalogs().change_lock().await;
    let work_state = state.clone();
    let work_tenant = tenant.clone();
    let (version, id, entries) = state
        .clone()
        .blocking(&tenant.clone(), move || {
            let control = work_state.control();
            control.put_catalog(&work_tenant, |latest, version| {
                let own = latest
                    .map(|json| catalogs::stored_catalog(json, version - 1))
                    .transpose()?;
                let catalog = make(own.as_ref())?.with_version(version);
                let json = serde_json::to_vec(&catalog.to_doc()).map_err(ApiError::internal)?;
                Ok((
                    json,
                    (version, catalog.id().to_owned(), catalog.entries().len()),
                ))
            })
        })
        .await?;
    state.catalogs().invalidate(&tenant);
    let event = audit::catalog_changed(&auth.0, &tenant, &id, version, what)?;
    if let Err(err) = audit::record(state, &tenant, event).await {
        let undo_state = state.clone();
        let undo_tenant = tenant.clone();
        state
            .clone()
            .blocking(&tenant.clone(), move || {
                Ok(undo_state
                    .control()
                    .undo_put_catalog(&undo_tenant, version)?)
            })
            .await?;
        state.catalogs().invalidate(&tenant);
        return Err(err);
    }
    Ok(Json(CatalogChanged { version, entries }))
}

/// The tenant's catalog policy and adopted shared catalogs.
#[utoipa::path(
    get,
    path = "/api/v1/catalog/settings",
    tag = "catalog",
    responses(
        (status = 200, description = "The settings (`lenient` and none adopted until changed).", body = CatalogSettingsBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<CatalogSettingsBody>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    let settings = state
        .clone()
        .blocking(&tenant.clone(), move || {
            Ok(state.control().catalog_settings(&tenant)?)
        })
        .await?;
    Ok(Json(settings_body(&settings)))
}

fn settings_body(settings: &CatalogSettings) -> CatalogSettingsBody {
    CatalogSettingsBody {
        policy: settings.policy.as_str().to_owned(),
        adopted: settings.adopted.clone(),
    }
}

/// Change the tenant's catalog policy and adopted shared catalogs.
#[utoipa::path(
    put,
    path = "/api/v1/catalog/settings",
    tag = "catalog",
    request_body = CatalogSettingsBody,
    responses(
        (status = 200, description = "The settings now in force.", body = CatalogSettingsBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not an owner, super_admin or admin key.", body = ErrorBody),
        (status = 422, description = "`invalid_catalog`: an unknown policy or shared catalog; nothing changed.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Auth,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CatalogSettingsBody>, ApiError> {
    let tenant = auth.catalog_editor()?.tenant.clone();
    let body = body_or_error(&state, body, "")?;
    let wanted: CatalogSettingsBody = catalogs::parse_body(&body, DocFormat::Json)?;
    let policy = match wanted.policy.as_str() {
        "strict" => Policy::Strict,
        "lenient" => Policy::Lenient,
        other => {
            return Err(settings_error(format!(
                "the policy {other:?} is not `strict` or `lenient`"
            )));
        }
    };
    let mut adopted: Vec<String> = Vec::new();
    for id in wanted.adopted {
        // A catalog's former id is accepted, and stored and answered as its current one.
        let id = catalogs::current_id(&id).to_owned();
        if id == BUILTIN {
            return Err(settings_error(format!(
                "`{BUILTIN}` is always in force; adopt only the other shared catalogs"
            )));
        }
        if !state.catalogs().shared().contains_key(&id) {
            return Err(settings_error(format!(
                "there is no shared catalog {id:?} (see GET /api/v1/catalog/shared)"
            )));
        }
        if !adopted.contains(&id) {
            adopted.push(id);
        }
    }
    let settings = CatalogSettings { policy, adopted };
    let _serial = state.catalogs().change_lock().await;
    let work_state = state.clone();
    let work_tenant = tenant.clone();
    let work_settings = settings.clone();
    let previous = state
        .clone()
        .blocking(&tenant.clone(), move || {
            Ok(work_state
                .control()
                .put_catalog_settings(&work_tenant, &work_settings)?)
        })
        .await?;
    state.catalogs().invalidate(&tenant);
    let value = format!(
        "policy={}; adopted={}",
        settings.policy.as_str(),
        settings.adopted.join(",")
    );
    let event = audit::settings_changed(&auth.0, &tenant, "catalog", &value)?;
    if let Err(err) = audit::record(&state, &tenant, event).await {
        let undo_state = state.clone();
        let undo_tenant = tenant.clone();
        state
            .clone()
            .blocking(&tenant.clone(), move || {
                Ok(undo_state
                    .control()
                    .put_catalog_settings(&undo_tenant, &previous)?)
            })
            .await?;
        state.catalogs().invalidate(&tenant);
        return Err(err);
    }
    Ok(Json(settings_body(&settings)))
}

fn settings_error(message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        error_codes::INVALID_CATALOG,
        message,
    )
}

/// The shared catalogs a tenant can adopt.
#[utoipa::path(
    get,
    path = "/api/v1/catalog/shared",
    tag = "catalog",
    responses(
        (status = 200, description = "Every shared catalog (those modelled on other products' audit documentation, and veritrail's own).", body = SharedCatalogList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_shared(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<SharedCatalogList>, ApiError> {
    auth.reader()?;
    Ok(Json(SharedCatalogList {
        catalogs: state
            .catalogs()
            .shared()
            .values()
            .map(|catalog| SharedCatalogSummary {
                id: catalog.id().to_owned(),
                title: catalog.title().map(str::to_owned),
                entries: catalog.entries().len(),
            })
            .collect(),
    }))
}

/// One shared catalog.
#[utoipa::path(
    get,
    path = "/api/v1/catalog/shared/{catalog_id}",
    tag = "catalog",
    params(
        ("catalog_id" = String, Path, description = "The shared catalog's id."),
        ("format" = Option<String>, Query, description = "`json` (default) or `yaml`."),
    ),
    responses(
        (status = 200, description = "The catalog document.", body = Object),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 404, description = "No such shared catalog.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_shared(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<CatalogParams>,
) -> Result<Response, ApiError> {
    auth.reader()?;
    if params.version.is_some() {
        return Err(ApiError::invalid_parameter(
            "version",
            "shared catalogs have one version",
        ));
    }
    let yaml = wants_yaml(&params)?;
    let doc = state
        .catalogs()
        .shared()
        .get(&id)
        .map(|catalog| catalog.to_doc())
        .ok_or_else(|| ApiError::not_found(format!("there is no shared catalog {id:?}")))?;
    if yaml {
        yaml_response(&doc)
    } else {
        Ok(Json(doc).into_response())
    }
}

/// A category's display name and its types by key.
type NamedTypes = (Option<String>, BTreeMap<String, TypeCount>);

/// Categories with their event counts and types, for filter drop-downs.
#[utoipa::path(
    get,
    path = "/api/v1/catalog/categories",
    tag = "catalog",
    responses(
        (status = 200, description = "Every category of the tenant's catalogs or stored events, with searchable event counts (read from the search index's term statistics: fast whatever the log's size).", body = CategoryList),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn categories(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<CategoryList>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            let indexed_size = state.search().applied(&tenant);
            let counts = state
                .search()
                .catalog_counts(&tenant)
                .map_err(ApiError::internal)?;
            let effective = state.catalogs().effective(state.control(), &tenant)?;
            // Category (case-folded) -> (display name, types by key).
            let mut categories: BTreeMap<Option<String>, NamedTypes> = BTreeMap::new();
            let mut add = |category: Option<&str>, event_type: &str, count: u64| {
                let (_, types) = categories
                    .entry(category.map(str::to_lowercase))
                    .or_insert_with(|| (category.map(str::to_owned), BTreeMap::new()));
                let found = types.entry(event_type.to_owned()).or_insert_with(|| {
                    let entry = effective.lookup(event_type).map(|(_, entry)| entry);
                    TypeCount {
                        event_type: event_type.to_owned(),
                        name: entry.map(|entry| entry.name.as_str().to_owned()),
                        code: entry.and_then(|entry| entry.code),
                        count: 0,
                    }
                });
                found.count += count;
            };
            for (category, event_type, count) in &counts {
                add(category.as_deref(), event_type, *count);
            }
            for catalog in &effective.catalogs {
                // veritrail's own types appear once the tenant's log holds them.
                if catalog.id() == BUILTIN {
                    continue;
                }
                for entry in catalog.entries() {
                    add(Some(entry.category.as_str()), entry.event_type.as_str(), 0);
                }
            }
            let mut list: Vec<CategoryBody> = categories
                .into_values()
                .map(|(category, types)| CategoryBody {
                    count: types.values().map(|t| t.count).sum(),
                    category,
                    types: types.into_values().collect(),
                })
                .collect();
            // Named categories first, by name; events without a category last.
            list.sort_by(|a, b| {
                (
                    a.category.is_none(),
                    a.category.as_ref().map(|c| c.to_lowercase()),
                )
                    .cmp(&(
                        b.category.is_none(),
                        b.category.as_ref().map(|c| c.to_lowercase()),
                    ))
            });
            Ok(Json(CategoryList {
                categories: list,
                indexed_size,
            }))
        })
        .await
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
}
