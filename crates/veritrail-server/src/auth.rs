//! Who may do what. The API key in `Authorization: Bearer <secret>` names a
//! [`Principal`]; handlers ask this module for the permission they need, and this module is
//! the only place the role rules live:
//!
//! | role        | read events, proofs, catalog | ingest | manage keys          | change catalog |
//! |-------------|------------------------------|--------|----------------------|----------------|
//! | owner       | yes                          | no     | every role           | yes            |
//! | super_admin | yes                          | no     | every role but owner | yes            |
//! | admin       | yes                          | no     | viewer and publisher | yes            |
//! | viewer      | yes                          | no     | no                   | no             |
//! | publisher   | no                           | yes    | no                   | no             |
//!
//! Data lifecycle (the retention policy, erasures, legal holds) is for owner and
//! super_admin keys only: it removes audit data or stops its removal. Viewers and admins may
//! read the retention policy and the holds.
//!
//! The server admin manages tenants and their keys (any role) and service keys, and reads no
//! events. Keys held by people cannot write events: only publisher keys, held by services,
//! can.
//!
//! **Service keys** belong to the deployment, not to a tenant, and act on the tenants their
//! scope allows (every tenant, a list, or a prefix), always naming the tenant in the request
//! (`/api/v1/tenants/{tenant}/...`, or `tenant` in each event of a batch):
//!
//! | role              | ingest | mint, list, revoke viewer tokens; read the catalog | read events |
//! |-------------------|--------|----------------------------------------------------|-------------|
//! | service_publisher | yes    | no                                                 | no          |
//! | service_embedder  | no     | yes                                                | no          |
//!
//! A tenant key may name its own tenant on those routes, with its role's rights there; it
//! never acts on another tenant. [`Auth::acting_on`] is the one check of both.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use veritrail_api::{Role, ServiceRole};
use veritrail_core::event::TenantId;

use crate::AppState;
use crate::control::{Principal, ServiceKey, TenantKey};
use crate::error::ApiError;

/// The authenticated caller, after the rate limit let the request through.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthenticated(
                    "this endpoint needs an API key: send the header `Authorization: Bearer <key>`",
                )
            })?
            .to_str()
            .map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
        // The scheme is case-insensitive (RFC 9110).
        let secret = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, secret)| secret.trim())
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header must be `Bearer <key>`")
            })?;
        let principal = state
            .control()
            .authenticate(secret)
            .ok_or_else(|| ApiError::unauthenticated("the API key is unknown or revoked"))?;
        state.limiter().check(principal.id())?;
        Ok(Auth(principal))
    }
}

/// What a key does to a tenant it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Send events.
    Publish,
    /// Mint, list and revoke viewer tokens; read the catalog.
    Embed,
}

impl Act {
    fn service_role(self) -> ServiceRole {
        match self {
            Act::Publish => ServiceRole::ServicePublisher,
            Act::Embed => ServiceRole::ServiceEmbedder,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Act::Publish => "send events",
            Act::Embed => "manage viewer tokens or read the catalog",
        }
    }
}

/// A key acting on one tenant, after [`Auth::acting_on`] allowed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acting {
    pub tenant: TenantId,
    pub key_id: String,
    /// SHA-256 of the key's secret (what a viewer token it mints depends on).
    pub key_hash: [u8; 32],
    /// The service key, when one acts (its id goes into what it publishes).
    pub service: Option<ServiceKey>,
}

impl Acting {
    /// A tenant key acting on its own tenant.
    pub fn of_tenant_key(key: &TenantKey) -> Self {
        Self {
            tenant: key.tenant.clone(),
            key_id: key.key_id.clone(),
            key_hash: key.key_hash,
            service: None,
        }
    }
}

impl Auth {
    /// The caller acting on `tenant`, a tenant it names: a service key of the role that
    /// does `act`, whose scope allows `tenant`; or a key of `tenant` itself whose role does
    /// `act` there (publisher; owner, super_admin or admin to embed).
    pub fn acting_on(&self, tenant: &TenantId, act: Act) -> Result<Acting, ApiError> {
        match &self.0 {
            Principal::ServerAdmin => Err(server_admin_acts_on_no_tenant()),
            Principal::Tenant(key) => {
                if key.tenant != *tenant {
                    return Err(not_its_tenant(key, tenant));
                }
                match act {
                    Act::Publish => self.publisher(),
                    Act::Embed => self.token_minter(),
                }
                .map(Acting::of_tenant_key)
            }
            Principal::Service(key) => {
                service_may(key, act)?;
                if !key.scope.allows(tenant) {
                    return Err(ApiError::forbidden(format!(
                        "service key {} may not act on tenant {tenant}",
                        key.key_id
                    )));
                }
                Ok(Acting {
                    tenant: tenant.clone(),
                    key_id: key.key_id.clone(),
                    key_hash: key.key_hash,
                    service: Some(key.clone()),
                })
            }
        }
    }

    /// [`Auth::acting_on`] the tenant a request's path names: a malformed id reads as a
    /// tenant that does not exist, and one the caller may act on must exist to embed
    /// (a publisher may create it on first write). Refusals come before existence, so a key
    /// learns nothing of tenants it may not act on.
    pub fn acting_on_named(
        &self,
        state: &AppState,
        tenant: &str,
        act: Act,
    ) -> Result<Acting, ApiError> {
        let no_tenant = || ApiError::not_found(format!("there is no tenant {tenant:?}"));
        let Ok(id) = TenantId::parse(tenant) else {
            // A malformed id names no tenant; what the caller may never do is refused first.
            return Err(match &self.0 {
                Principal::ServerAdmin => server_admin_acts_on_no_tenant(),
                Principal::Tenant(key) => not_its_tenant(key, &format!("{tenant:?}")),
                Principal::Service(key) => service_may(key, act).err().unwrap_or_else(no_tenant),
            });
        };
        let acting = self.acting_on(&id, act)?;
        if act == Act::Embed && !state.control().tenant_exists(&id) {
            return Err(no_tenant());
        }
        Ok(acting)
    }

    /// A tenant key that may read its tenant's events, proofs and exports.
    pub fn reader(&self) -> Result<&TenantKey, ApiError> {
        let key = self.tenant_key()?;
        match key.role {
            Role::Owner | Role::SuperAdmin | Role::Admin | Role::Viewer => Ok(key),
            Role::Publisher => Err(ApiError::forbidden(
                "a publisher key can send events but not read them; use a viewer or admin key",
            )),
        }
    }

    /// A tenant key that may send events.
    pub fn publisher(&self) -> Result<&TenantKey, ApiError> {
        let key = self.tenant_key()?;
        if key.role == Role::Publisher {
            Ok(key)
        } else {
            Err(ApiError::forbidden(format!(
                "only publisher keys send events; this key is {}",
                key.role
            )))
        }
    }

    /// May list and create or revoke keys of `role` in the caller's tenant (or any tenant,
    /// for the server admin).
    pub fn may_manage_keys(&self, role: Option<Role>) -> Result<(), ApiError> {
        let key = match &self.0 {
            Principal::ServerAdmin => return Ok(()),
            Principal::Tenant(key) => key,
            Principal::Service(_) => return Err(service_refused()),
        };
        let allowed = match (key.role, role) {
            (Role::Owner, _) => true,
            (Role::SuperAdmin, Some(role)) => role != Role::Owner,
            (Role::SuperAdmin | Role::Admin, None) => true,
            (Role::Admin, Some(role)) => matches!(role, Role::Viewer | Role::Publisher),
            (Role::Viewer | Role::Publisher, _) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(match role {
                Some(role) => format!("a {} key cannot manage {role} keys", key.role),
                None => format!("a {} key cannot manage keys", key.role),
            }))
        }
    }

    /// A tenant key that may change its tenant's catalog and catalog settings: owner,
    /// super_admin, admin (the roles that manage the tenant).
    pub fn catalog_editor(&self) -> Result<&TenantKey, ApiError> {
        self.manager("change the catalog")
    }

    /// A tenant key that may manage its tenant's webhook subscriptions: owner, super_admin,
    /// admin (subscriptions hold target URLs and signing secrets).
    pub fn webhook_manager(&self) -> Result<&TenantKey, ApiError> {
        self.manager("manage webhooks")
    }

    /// A tenant key that may change its tenant's Activity page settings.
    pub fn settings_manager(&self) -> Result<&TenantKey, ApiError> {
        self.manager("change the tenant's settings")
    }

    /// A tenant key that may mint viewer tokens for its tenant's Activity view.
    pub fn token_minter(&self) -> Result<&TenantKey, ApiError> {
        self.manager("mint viewer tokens")
    }

    /// A tenant key that may set the retention policy, erase records and place or release
    /// legal holds: owner and super_admin.
    pub fn data_steward(&self) -> Result<&TenantKey, ApiError> {
        let key = self.tenant_key()?;
        match key.role {
            Role::Owner | Role::SuperAdmin => Ok(key),
            Role::Admin | Role::Viewer | Role::Publisher => Err(ApiError::forbidden(format!(
                "a {} key cannot change retention, erase records or manage legal holds; use \
                 an owner or super_admin key",
                key.role
            ))),
        }
    }

    /// A tenant key of a role that manages the tenant (owner, super_admin, admin); the
    /// refusal says it cannot `what`.
    fn manager(&self, what: &str) -> Result<&TenantKey, ApiError> {
        let key = self.tenant_key()?;
        match key.role {
            Role::Owner | Role::SuperAdmin | Role::Admin => Ok(key),
            Role::Viewer | Role::Publisher => Err(ApiError::forbidden(format!(
                "a {} key cannot {what}; use an owner, super_admin or admin key",
                key.role
            ))),
        }
    }

    /// The server admin.
    pub fn server_admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Principal::ServerAdmin => Ok(()),
            Principal::Tenant(_) | Principal::Service(_) => Err(ApiError::forbidden(
                "only the server admin key manages tenants and service keys",
            )),
        }
    }

    fn tenant_key(&self) -> Result<&TenantKey, ApiError> {
        match &self.0 {
            Principal::Tenant(key) => Ok(key),
            Principal::ServerAdmin => Err(ApiError::forbidden(
                "the server admin key manages tenants and keys; it reads and writes no events (use a tenant key)",
            )),
            Principal::Service(_) => Err(service_refused()),
        }
    }
}

fn server_admin_acts_on_no_tenant() -> ApiError {
    ApiError::forbidden(
        "the server admin key manages tenants and keys; it reads and writes no events (use a tenant or service key)",
    )
}

/// A tenant key naming `tenant`, which is not its own.
fn not_its_tenant(key: &TenantKey, tenant: &dyn std::fmt::Display) -> ApiError {
    ApiError::forbidden(format!(
        "a tenant key acts only on its own tenant ({}), not on {tenant}",
        key.tenant
    ))
}

/// Whether `key`'s role does `act` (on a tenant of its scope).
fn service_may(key: &ServiceKey, act: Act) -> Result<(), ApiError> {
    let role = act.service_role();
    if key.role == role {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {} key cannot {}; that takes a {role} key",
            key.role,
            act.what()
        )))
    }
}

/// A service key on a route of one tenant's own keys.
fn service_refused() -> ApiError {
    ApiError::forbidden(
        "a service key acts on the tenant a request names: POST /api/v1/tenants/{tenant}/events or `tenant` in each event (service_publisher), /api/v1/tenants/{tenant}/viewer-tokens and /catalog (service_embedder)",
    )
}
