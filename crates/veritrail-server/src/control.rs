//! The control plane: tenants, API keys and viewer tokens, in `control.redb` in the data
//! directory.
//!
//! Key secrets are `vt_` and 43 base64url characters (256 random bits). Only their SHA-256
//! is stored; a plain hash is enough because the secrets are random, not chosen by people.
//! Active keys are also held in memory, by hash, so authenticating a request is one hash and
//! one map lookup. Every change is a durable redb transaction; the in-memory map changes
//! only after it commits, under the same lock, so it never runs ahead of the disk.
//!
//! **Access changes.** Whatever takes access away (a key revoked, a viewer token revoked, a
//! tenant's viewers no longer admitted, a session signed out) bumps one watch channel,
//! [`ControlPlane::access_changes`]: every open stream re-checks its right to go on when it
//! changes, so revocation reaches streams at once, not at their next request.
//!
//! **Viewer tokens** are stored too (id, tenant, scope, expiry, the key that minted them):
//! a token works only while its row is live, neither revoked nor expired, and while the key
//! that minted it is active.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use veritrail_api::{Role, ServiceKeyBody, ServiceRole};
use veritrail_core::event::TenantId;

use crate::clock;

const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// Service keys by id ([`ServiceKeyRow`], as JSON).
const SERVICE_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("service_keys");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Every version of every tenant's own catalog: `(tenant, version)` -> the catalog's JSON.
const CATALOGS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("catalogs");
/// Each tenant's catalog settings (policy, adopted shared catalogs), as JSON.
const CATALOG_SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("catalog_settings");
/// Each tenant's Activity page settings ([`ActivitySettings`]), as JSON.
const ACTIVITY_SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("activity_settings");
/// Each tenant's data lifecycle settings ([`DataSettings`]: retention policy, legal holds),
/// as JSON.
const DATA_SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("data_settings");
/// Each tenant's last complete scrub ([`veritrail_api::ScrubBody`]), as JSON.
const SCRUBS: TableDefinition<&str, &[u8]> = TableDefinition::new("scrubs");
/// Viewer tokens by `(tenant, id)` ([`ViewerTokenRow`], as JSON); a tenant's expired rows
/// are removed as it mints new ones.
const VIEWER_TOKENS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("viewer_tokens");
/// redb's cache for `control.redb` (its default is 1 GiB).
const CACHE_BYTES: usize = 16 << 20;
/// The key that signs viewer tokens (32 random bytes, made at the first start).
const VIEWER_TOKEN_KEY: &str = "viewer_token_key";
const ADMIN_KEY_HASH: &str = "server_admin_key_sha256";

/// Active keys one tenant may have (they are held in memory): revoke some to make more.
pub const MAX_ACTIVE_KEYS_PER_TENANT: usize = 1_000;

/// Active service keys the deployment may have (they are held in memory).
pub const MAX_ACTIVE_SERVICE_KEYS: usize = 1_000;

/// Most tenant ids a service key's list may hold.
pub const MAX_SERVICE_KEY_TENANTS: usize = 1_000;

/// The id that names the server admin in key lists and audit events.
pub const SERVER_ADMIN: &str = "server_admin";

/// Who presented a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The server admin: manages tenants and their keys, reads no events.
    ServerAdmin,
    /// A tenant's key.
    Tenant(TenantKey),
    /// A deployment-level service key, acting on the tenants its scope allows.
    Service(ServiceKey),
}

/// An active service key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    pub key_id: String,
    pub role: ServiceRole,
    pub scope: TenantScope,
    /// May create a tenant it is allowed by writing to it first.
    pub create_tenants: bool,
    /// SHA-256 of its secret.
    pub key_hash: [u8; 32],
}

/// The tenants a service key may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    All,
    List(std::collections::BTreeSet<String>),
    Prefix(String),
}

impl TenantScope {
    /// Whether the key may act on `tenant`.
    pub fn allows(&self, tenant: &TenantId) -> bool {
        match self {
            TenantScope::All => true,
            TenantScope::List(tenants) => tenants.contains(tenant.as_str()),
            TenantScope::Prefix(prefix) => tenant.as_str().starts_with(prefix.as_str()),
        }
    }
}

/// A service key as stored (its secret's hash, never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceKeyRow {
    pub id: String,
    pub role: ServiceRole,
    pub name: Option<String>,
    pub tenants: Option<Vec<String>>,
    pub tenant_prefix: Option<String>,
    pub create_tenants: bool,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
}

impl ServiceKeyRow {
    pub fn to_body(&self) -> ServiceKeyBody {
        ServiceKeyBody {
            id: self.id.clone(),
            role: self.role,
            name: self.name.clone(),
            tenants: self.tenants.clone(),
            tenant_prefix: self.tenant_prefix.clone(),
            create_tenants: self.create_tenants,
            created_at: self.created_at.clone(),
            created_by: self.created_by.clone(),
            revoked_at: self.revoked_at.clone(),
        }
    }

    fn principal(&self) -> Result<Principal, ControlError> {
        let scope = match (&self.tenants, &self.tenant_prefix) {
            (Some(tenants), None) => TenantScope::List(tenants.iter().cloned().collect()),
            (None, Some(prefix)) => TenantScope::Prefix(prefix.clone()),
            (None, None) => TenantScope::All,
            (Some(_), Some(_)) => {
                return Err(ControlError::Corrupt(format!(
                    "service key {} has both a tenant list and a prefix",
                    self.id
                )));
            }
        };
        Ok(Principal::Service(ServiceKey {
            key_id: self.id.clone(),
            role: self.role,
            scope,
            create_tenants: self.create_tenants,
            key_hash: parse_hash(&self.secret_sha256)?,
        }))
    }
}

/// An active tenant key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantKey {
    pub tenant: TenantId,
    pub role: Role,
    pub key_id: String,
    /// SHA-256 of its secret: what [`ControlPlane::principal_by_hash`] looks up, to ask
    /// whether the key is still active.
    pub key_hash: [u8; 32],
}

impl Principal {
    /// The id audit events and logs name: a key id or `server_admin`.
    pub fn id(&self) -> &str {
        match self {
            Principal::ServerAdmin => SERVER_ADMIN,
            Principal::Tenant(key) => &key.key_id,
            Principal::Service(key) => &key.key_id,
        }
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRow {
    pub id: String,
    pub name: Option<String>,
    pub created_at: String,
}

/// A key as stored (its secret's hash, never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    pub id: String,
    pub tenant: String,
    pub role: Role,
    pub name: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
}

impl KeyRow {
    pub fn to_body(&self) -> veritrail_api::KeyBody {
        veritrail_api::KeyBody {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            role: self.role,
            name: self.name.clone(),
            created_at: self.created_at.clone(),
            created_by: self.created_by.clone(),
            revoked_at: self.revoked_at.clone(),
        }
    }
}

/// A viewer token as stored: who minted it, what it shows, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerTokenRow {
    pub id: String,
    pub tenant: String,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// Unix seconds after which it no longer works.
    pub expires: i64,
    pub created_at: String,
    /// The key that minted it, and its secret's hash: the token ends with that key.
    pub created_by: String,
    pub created_by_sha256: String,
    pub revoked_at: Option<String>,
}

/// Control-plane failures.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("tenant {0} already exists")]
    TenantExists(String),
    #[error("no tenant {0}")]
    NoTenant(String),
    #[error("tenant {tenant} has no key {key_id}")]
    NoKey { tenant: String, key_id: String },
    #[error("tenant {tenant} has no viewer token {token_id}")]
    NoViewerToken { tenant: String, token_id: String },
    #[error("tenant {tenant} has {live} viewer tokens alive, its limit")]
    TooManyViewerTokens { tenant: String, live: usize },
    #[error("service key {0} does not exist")]
    NoServiceKey(String),
    #[error("the deployment has {0} active service keys, its limit")]
    TooManyServiceKeys(usize),
    #[error("tenant {tenant} has {active} active keys, its limit")]
    TooManyKeys { tenant: String, active: usize },
    #[error("the control plane store failed: {0}")]
    Store(String),
    #[error("the control plane store holds invalid data: {0}")]
    Corrupt(String),
}

fn store_err(err: impl std::fmt::Display) -> ControlError {
    ControlError::Store(err.to_string())
}

/// Tenants and keys.
pub struct ControlPlane {
    db: Database,
    /// Active keys by secret hash. Written only after the transaction that made the change
    /// has committed, while holding the write lock.
    active: RwLock<HashMap<[u8; 32], Principal>>,
    /// Signs viewer tokens.
    viewer_token_key: [u8; 32],
    /// Live viewer tokens (neither revoked nor known to be expired), by tenant and id.
    /// Changed only after the transaction that changed the row has committed, under this
    /// lock.
    viewer_tokens: RwLock<HashMap<String, HashMap<String, ViewerTokenRow>>>,
    /// Bumped whenever access is taken away (see the module doc).
    access: tokio::sync::watch::Sender<u64>,
    /// The ids of every tenant, so that a batch naming many is checked without a read
    /// transaction per tenant. Changed after the transaction that changed them commits.
    known_tenants: RwLock<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Opens (or creates) `control.redb` in `dir`. On first open it makes the server-admin
    /// key and returns its secret, which is stored only as a hash: show it once.
    pub fn open(dir: &Path) -> Result<(ControlPlane, Option<String>), ControlError> {
        // Tenants, keys and catalogs are small: a small cache keeps memory flat.
        // It holds the viewer-token signing key: private from its first byte.
        let path = dir.join("control.redb");
        veritrail_ledger::keys::create_private_file(&path).map_err(store_err)?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(store_err)?;
        let tx = db.begin_write().map_err(store_err)?;
        let mut new_admin_secret = None;
        {
            tx.open_table(TENANTS).map_err(store_err)?;
            tx.open_table(KEYS).map_err(store_err)?;
            tx.open_table(SERVICE_KEYS).map_err(store_err)?;
            tx.open_table(CATALOGS).map_err(store_err)?;
            tx.open_table(CATALOG_SETTINGS).map_err(store_err)?;
            tx.open_table(VIEWER_TOKENS).map_err(store_err)?;
            let mut meta = tx.open_table(META).map_err(store_err)?;
            if meta.get(ADMIN_KEY_HASH).map_err(store_err)?.is_none() {
                let secret = new_secret()?;
                meta.insert(ADMIN_KEY_HASH, hash_secret(&secret).as_slice())
                    .map_err(store_err)?;
                new_admin_secret = Some(secret);
            }
            if meta.get(VIEWER_TOKEN_KEY).map_err(store_err)?.is_none() {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(store_err)?;
                meta.insert(VIEWER_TOKEN_KEY, key.as_slice())
                    .map_err(store_err)?;
            }
        }
        tx.commit().map_err(store_err)?;
        let viewer_token_key = {
            let tx = db.begin_read().map_err(store_err)?;
            let meta = tx.open_table(META).map_err(store_err)?;
            let key = meta
                .get(VIEWER_TOKEN_KEY)
                .map_err(store_err)?
                .ok_or_else(|| ControlError::Corrupt("no viewer token key".into()))?;
            <[u8; 32]>::try_from(key.value())
                .map_err(|_| ControlError::Corrupt("viewer token key".into()))?
        };
        let control = ControlPlane {
            db,
            active: RwLock::new(HashMap::new()),
            viewer_token_key,
            viewer_tokens: RwLock::new(HashMap::new()),
            access: tokio::sync::watch::Sender::new(0),
            known_tenants: RwLock::new(std::collections::HashSet::new()),
        };
        control.load_active()?;
        control.load_viewer_tokens()?;
        Ok((control, new_admin_secret))
    }

    fn load_active(&self) -> Result<(), ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let mut active = HashMap::new();
        let meta = tx.open_table(META).map_err(store_err)?;
        if let Some(hash) = meta.get(ADMIN_KEY_HASH).map_err(store_err)? {
            let hash: [u8; 32] = hash
                .value()
                .try_into()
                .map_err(|_| ControlError::Corrupt("server admin key hash".into()))?;
            active.insert(hash, Principal::ServerAdmin);
        }
        let keys = tx.open_table(KEYS).map_err(store_err)?;
        for entry in keys.iter().map_err(store_err)? {
            let (_, value) = entry.map_err(store_err)?;
            let row: KeyRow = decode(value.value())?;
            if row.revoked_at.is_none() {
                active.insert(parse_hash(&row.secret_sha256)?, principal_of(&row)?);
            }
        }
        let service_keys = tx.open_table(SERVICE_KEYS).map_err(store_err)?;
        for entry in service_keys.iter().map_err(store_err)? {
            let (_, value) = entry.map_err(store_err)?;
            let row: ServiceKeyRow = decode(value.value())?;
            if row.revoked_at.is_none() {
                active.insert(parse_hash(&row.secret_sha256)?, row.principal()?);
            }
        }
        let tenants = tx.open_table(TENANTS).map_err(store_err)?;
        let mut known = std::collections::HashSet::new();
        for entry in tenants.iter().map_err(store_err)? {
            let (id, _) = entry.map_err(store_err)?;
            known.insert(id.value().to_owned());
        }
        *self.known_tenants.write().expect("tenants lock poisoned") = known;
        *self.active.write().expect("active keys lock poisoned") = active;
        Ok(())
    }

    /// Accepts `secret` as the server admin besides the stored key (from configuration).
    pub fn add_configured_admin_key(&self, secret: &str) {
        self.active
            .write()
            .expect("active keys lock poisoned")
            .insert(hash_secret(secret), Principal::ServerAdmin);
    }

    /// The key that signs viewer tokens.
    pub fn viewer_token_key(&self) -> &[u8; 32] {
        &self.viewer_token_key
    }

    /// Who the key whose secret has SHA-256 `hash` belongs to, if it is still active.
    pub fn principal_by_hash(&self, hash: &[u8; 32]) -> Option<Principal> {
        self.active
            .read()
            .expect("active keys lock poisoned")
            .get(hash)
            .cloned()
    }

    /// Who `secret` belongs to, if it is an active key.
    pub fn authenticate(&self, secret: &str) -> Option<Principal> {
        let hash = hash_secret(secret);
        self.active
            .read()
            .expect("active keys lock poisoned")
            .get(&hash)
            .cloned()
    }

    /// Creates a tenant and its first owner key, in one transaction.
    pub fn create_tenant(
        &self,
        tenant: &TenantId,
        name: Option<String>,
        settings: &CatalogSettings,
    ) -> Result<(TenantRow, KeyRow, String), ControlError> {
        let mut active = self.active.write().expect("active keys lock poisoned");
        let tx = self.db.begin_write().map_err(store_err)?;
        let row = TenantRow {
            id: tenant.to_string(),
            name,
            created_at: clock::now_rfc3339(),
        };
        let (key, secret) = new_key(
            tenant,
            Role::Owner,
            Some("first owner key".into()),
            SERVER_ADMIN,
        )?;
        {
            let mut tenants = tx.open_table(TENANTS).map_err(store_err)?;
            if tenants.get(tenant.as_str()).map_err(store_err)?.is_some() {
                return Err(ControlError::TenantExists(tenant.to_string()));
            }
            tenants
                .insert(tenant.as_str(), encode(&row).as_slice())
                .map_err(store_err)?;
            let mut keys = tx.open_table(KEYS).map_err(store_err)?;
            keys.insert(key.id.as_str(), encode(&key).as_slice())
                .map_err(store_err)?;
            if *settings != CatalogSettings::default() {
                tx.open_table(CATALOG_SETTINGS)
                    .map_err(store_err)?
                    .insert(
                        tenant.as_str(),
                        encode(&settings.clone().with_current_ids()).as_slice(),
                    )
                    .map_err(store_err)?;
            }
        }
        tx.commit().map_err(store_err)?;
        active.insert(hash_secret(&secret), principal_of(&key)?);
        self.known_tenants
            .write()
            .expect("tenants lock poisoned")
            .insert(tenant.to_string());
        Ok((row, key, secret))
    }

    /// Whether `tenant` exists (from memory).
    pub fn tenant_exists(&self, tenant: &TenantId) -> bool {
        self.known_tenants
            .read()
            .expect("tenants lock poisoned")
            .contains(tenant.as_str())
    }

    /// Creates each of `tenants` that does not exist yet, without keys (a service key
    /// writes to them), each with `settings`, in one transaction; returns the rows of those
    /// it created. Creating a tenant that exists changes nothing, so concurrent first writes
    /// create it once. [`ControlPlane::tenant_exists`] says yes only after
    /// [`ControlPlane::confirm_tenants`] (once the tenants' creation events are stored).
    pub fn create_tenants_without_keys(
        &self,
        tenants: &[TenantId],
        settings: &CatalogSettings,
    ) -> Result<Vec<TenantRow>, ControlError> {
        let tx = self.db.begin_write().map_err(store_err)?;
        let mut created = Vec::new();
        {
            let mut table = tx.open_table(TENANTS).map_err(store_err)?;
            let mut catalog_settings = tx.open_table(CATALOG_SETTINGS).map_err(store_err)?;
            let settings = encode(&settings.clone().with_current_ids());
            for tenant in tenants {
                if table.get(tenant.as_str()).map_err(store_err)?.is_some()
                    || created
                        .iter()
                        .any(|row: &TenantRow| row.id == tenant.as_str())
                {
                    continue;
                }
                let row = TenantRow {
                    id: tenant.to_string(),
                    name: None,
                    created_at: clock::now_rfc3339(),
                };
                table
                    .insert(tenant.as_str(), encode(&row).as_slice())
                    .map_err(store_err)?;
                catalog_settings
                    .insert(tenant.as_str(), settings.as_slice())
                    .map_err(store_err)?;
                created.push(row);
            }
        }
        if created.is_empty() {
            return Ok(created);
        }
        tx.commit().map_err(store_err)?;
        Ok(created)
    }

    /// Tenants made by [`ControlPlane::create_tenants_without_keys`] whose creation events
    /// are stored: from now on they exist for every request.
    pub fn confirm_tenants(&self, tenants: &[TenantRow]) {
        self.known_tenants
            .write()
            .expect("tenants lock poisoned")
            .extend(tenants.iter().map(|row| row.id.clone()));
    }

    /// Removes tenants made by [`ControlPlane::create_tenants_without_keys`] whose audit
    /// events could not be stored.
    pub fn undo_create_tenants(&self, tenants: &[TenantRow]) -> Result<(), ControlError> {
        let mut known = self.known_tenants.write().expect("tenants lock poisoned");
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(TENANTS).map_err(store_err)?;
            let mut catalog_settings = tx.open_table(CATALOG_SETTINGS).map_err(store_err)?;
            for row in tenants {
                table.remove(row.id.as_str()).map_err(store_err)?;
                catalog_settings
                    .remove(row.id.as_str())
                    .map_err(store_err)?;
            }
        }
        tx.commit().map_err(store_err)?;
        for row in tenants {
            known.remove(&row.id);
        }
        Ok(())
    }

    /// Removes a tenant created by [`ControlPlane::create_tenant`] whose first audit event
    /// could not be stored, so that no tenant exists without its audit trail.
    pub fn undo_create_tenant(
        &self,
        tenant: &TenantId,
        owner_key: &KeyRow,
    ) -> Result<(), ControlError> {
        let mut active = self.active.write().expect("active keys lock poisoned");
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            tx.open_table(TENANTS)
                .map_err(store_err)?
                .remove(tenant.as_str())
                .map_err(store_err)?;
            tx.open_table(KEYS)
                .map_err(store_err)?
                .remove(owner_key.id.as_str())
                .map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        active.retain(|_, principal| principal.id() != owner_key.id);
        drop(active);
        self.known_tenants
            .write()
            .expect("tenants lock poisoned")
            .remove(tenant.as_str());
        self.access_changed();
        Ok(())
    }

    pub fn tenant(&self, tenant: &str) -> Result<Option<TenantRow>, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let tenants = tx.open_table(TENANTS).map_err(store_err)?;
        tenants
            .get(tenant)
            .map_err(store_err)?
            .map(|value| decode(value.value()))
            .transpose()
    }

    pub fn tenants(&self) -> Result<Vec<TenantRow>, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let tenants = tx.open_table(TENANTS).map_err(store_err)?;
        tenants
            .iter()
            .map_err(store_err)?
            .map(|entry| decode(entry.map_err(store_err)?.1.value()))
            .collect()
    }

    /// Creates a key; returns it with its secret (the only time the secret exists).
    pub fn create_key(
        &self,
        tenant: &TenantId,
        role: Role,
        name: Option<String>,
        created_by: &str,
    ) -> Result<(KeyRow, String), ControlError> {
        let mut active = self.active.write().expect("active keys lock poisoned");
        let of_tenant = active
            .values()
            .filter(
                |principal| matches!(principal, Principal::Tenant(key) if key.tenant == *tenant),
            )
            .count();
        if of_tenant >= MAX_ACTIVE_KEYS_PER_TENANT {
            return Err(ControlError::TooManyKeys {
                tenant: tenant.to_string(),
                active: of_tenant,
            });
        }
        let (key, secret) = new_key(tenant, role, name, created_by)?;
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let tenants = tx.open_table(TENANTS).map_err(store_err)?;
            if tenants.get(tenant.as_str()).map_err(store_err)?.is_none() {
                return Err(ControlError::NoTenant(tenant.to_string()));
            }
            let mut keys = tx.open_table(KEYS).map_err(store_err)?;
            keys.insert(key.id.as_str(), encode(&key).as_slice())
                .map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        active.insert(hash_secret(&secret), principal_of(&key)?);
        Ok((key, secret))
    }

    /// Deletes a key made by [`ControlPlane::create_key`] whose audit event could not be
    /// stored.
    pub fn undo_create_key(&self, key: &KeyRow) -> Result<(), ControlError> {
        let mut active = self.active.write().expect("active keys lock poisoned");
        let tx = self.db.begin_write().map_err(store_err)?;
        tx.open_table(KEYS)
            .map_err(store_err)?
            .remove(key.id.as_str())
            .map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        active.retain(|_, principal| principal.id() != key.id);
        drop(active);
        self.access_changed();
        Ok(())
    }

    /// A tenant's keys, active and revoked, oldest first.
    pub fn keys(&self, tenant: &TenantId) -> Result<Vec<KeyRow>, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let keys = tx.open_table(KEYS).map_err(store_err)?;
        let mut rows = Vec::new();
        for entry in keys.iter().map_err(store_err)? {
            let row: KeyRow = decode(entry.map_err(store_err)?.1.value())?;
            if row.tenant == tenant.as_str() {
                rows.push(row);
            }
        }
        rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(rows)
    }

    /// One key of `tenant`.
    pub fn key(&self, tenant: &TenantId, key_id: &str) -> Result<KeyRow, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let keys = tx.open_table(KEYS).map_err(store_err)?;
        let no_key = || ControlError::NoKey {
            tenant: tenant.to_string(),
            key_id: key_id.to_owned(),
        };
        let row: KeyRow = decode(
            keys.get(key_id)
                .map_err(store_err)?
                .ok_or_else(no_key)?
                .value(),
        )?;
        if row.tenant != tenant.as_str() {
            return Err(no_key());
        }
        Ok(row)
    }

    /// Revokes a key of `tenant`: from now on it authenticates nothing. Revoking a revoked
    /// key changes nothing and returns it; the flag says whether this call revoked it.
    pub fn revoke_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
    ) -> Result<(KeyRow, bool), ControlError> {
        let mut active = self.active.write().expect("active keys lock poisoned");
        let mut row = self.key(tenant, key_id)?;
        if row.revoked_at.is_some() {
            return Ok((row, false));
        }
        row.revoked_at = Some(clock::now_rfc3339());
        let tx = self.db.begin_write().map_err(store_err)?;
        tx.open_table(KEYS)
            .map_err(store_err)?
            .insert(row.id.as_str(), encode(&row).as_slice())
            .map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        active.retain(|_, principal| principal.id() != row.id);
        drop(active);
        self.access_changed();
        Ok((row, true))
    }

    /// Creates a service key; returns it with its secret (the only time the secret exists).
    pub fn create_service_key(
        &self,
        mut row: ServiceKeyRow,
    ) -> Result<(ServiceKeyRow, String), ControlError> {
        let mut active = self.active.write().expect("active keys lock poisoned");
        let services = active
            .values()
            .filter(|principal| matches!(principal, Principal::Service(_)))
            .count();
        if services >= MAX_ACTIVE_SERVICE_KEYS {
            return Err(ControlError::TooManyServiceKeys(services));
        }
        let secret = new_secret()?;
        let mut id_bytes = [0u8; 8];
        getrandom::fill(&mut id_bytes).map_err(store_err)?;
        row.id = format!("svc_{}", hex(&id_bytes));
        row.created_at = clock::now_rfc3339();
        row.revoked_at = None;
        row.secret_sha256 = hex(&hash_secret(&secret));
        let principal = row.principal()?;
        let tx = self.db.begin_write().map_err(store_err)?;
        tx.open_table(SERVICE_KEYS)
            .map_err(store_err)?
            .insert(row.id.as_str(), encode(&row).as_slice())
            .map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        active.insert(hash_secret(&secret), principal);
        Ok((row, secret))
    }

    /// One service key.
    pub fn service_key(&self, key_id: &str) -> Result<ServiceKeyRow, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(SERVICE_KEYS).map_err(store_err)?;
        let row = table
            .get(key_id)
            .map_err(store_err)?
            .ok_or_else(|| ControlError::NoServiceKey(key_id.to_owned()))?;
        decode(row.value())
    }

    /// Every service key, active and revoked, oldest first.
    pub fn service_keys(&self) -> Result<Vec<ServiceKeyRow>, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(SERVICE_KEYS).map_err(store_err)?;
        let mut rows = table
            .iter()
            .map_err(store_err)?
            .map(|entry| decode::<ServiceKeyRow>(entry.map_err(store_err)?.1.value()))
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(rows)
    }

    /// Revokes a service key: from now on it authenticates nothing, and what it made
    /// (viewer tokens) stops working. Revoking a revoked key changes nothing; the flag says
    /// whether this call revoked it.
    pub fn revoke_service_key(&self, key_id: &str) -> Result<(ServiceKeyRow, bool), ControlError> {
        let mut active = self.active.write().expect("active keys lock poisoned");
        let tx = self.db.begin_write().map_err(store_err)?;
        let row = {
            let mut table = tx.open_table(SERVICE_KEYS).map_err(store_err)?;
            let mut row: ServiceKeyRow = decode(
                table
                    .get(key_id)
                    .map_err(store_err)?
                    .ok_or_else(|| ControlError::NoServiceKey(key_id.to_owned()))?
                    .value(),
            )?;
            if row.revoked_at.is_some() {
                return Ok((row, false));
            }
            row.revoked_at = Some(clock::now_rfc3339());
            table
                .insert(row.id.as_str(), encode(&row).as_slice())
                .map_err(store_err)?;
            row
        };
        tx.commit().map_err(store_err)?;
        active.retain(|_, principal| principal.id() != row.id);
        drop(active);
        self.access_changed();
        Ok((row, true))
    }

    /// Changes whenever access is taken away: a key or a viewer token revoked, viewers no
    /// longer admitted, a session signed out. Streams re-check their right to go on.
    pub fn access_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.access.subscribe()
    }

    /// Says that access was taken away (see [`ControlPlane::access_changes`]).
    pub fn access_changed(&self) {
        self.access
            .send_modify(|epoch| *epoch = epoch.wrapping_add(1));
    }

    /// Whether the key whose secret has SHA-256 `hash` is active.
    pub fn is_active(&self, hash: &[u8; 32]) -> bool {
        self.active
            .read()
            .expect("active keys lock poisoned")
            .contains_key(hash)
    }

    fn load_viewer_tokens(&self) -> Result<(), ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(VIEWER_TOKENS).map_err(store_err)?;
        let mut live: HashMap<String, HashMap<String, ViewerTokenRow>> = HashMap::new();
        for entry in table.iter().map_err(store_err)? {
            let row: ViewerTokenRow = decode(entry.map_err(store_err)?.1.value())?;
            if row.revoked_at.is_none() {
                live.entry(row.tenant.clone())
                    .or_default()
                    .insert(row.id.clone(), row);
            }
        }
        *self
            .viewer_tokens
            .write()
            .expect("viewer tokens lock poisoned") = live;
        Ok(())
    }

    /// Stores a newly minted viewer token, durably, unless its tenant has `max_live` tokens
    /// alive already. Rows of the tenant's tokens that expired before `now` (Unix seconds)
    /// are removed in the same transaction, so the table holds about what is alive.
    pub fn put_viewer_token(
        &self,
        row: &ViewerTokenRow,
        max_live: usize,
        now: i64,
    ) -> Result<(), ControlError> {
        let mut live = self
            .viewer_tokens
            .write()
            .expect("viewer tokens lock poisoned");
        let of_tenant = live.entry(row.tenant.clone()).or_default();
        of_tenant.retain(|_, token| token.expires > now);
        let alive = of_tenant.len();
        if alive >= max_live {
            return Err(ControlError::TooManyViewerTokens {
                tenant: row.tenant.clone(),
                live: alive,
            });
        }
        let tx = self.db.begin_write().map_err(store_err)?;
        let mut removed = Vec::new();
        {
            let mut table = tx.open_table(VIEWER_TOKENS).map_err(store_err)?;
            // The tenant's expired rows, revoked ones included (they stay listed until
            // they would have expired).
            for entry in table
                .range((row.tenant.as_str(), "")..)
                .map_err(store_err)?
            {
                let (key, value) = entry.map_err(store_err)?;
                if key.value().0 != row.tenant {
                    break;
                }
                let token: ViewerTokenRow = decode(value.value())?;
                if token.expires <= now {
                    removed.push(token.id);
                }
            }
            for id in &removed {
                table
                    .remove((row.tenant.as_str(), id.as_str()))
                    .map_err(store_err)?;
            }
            table
                .insert(
                    (row.tenant.as_str(), row.id.as_str()),
                    encode(row).as_slice(),
                )
                .map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        live.entry(row.tenant.clone())
            .or_default()
            .insert(row.id.clone(), row.clone());
        Ok(())
    }

    /// `tenant`'s viewer token `id` if it works at `now` (Unix seconds): stored, not
    /// revoked, not expired, and the key that minted it still active.
    pub fn live_viewer_token(&self, tenant: &str, id: &str, now: i64) -> Option<ViewerTokenRow> {
        let row = self
            .viewer_tokens
            .read()
            .expect("viewer tokens lock poisoned")
            .get(tenant)
            .and_then(|tokens| tokens.get(id))
            .filter(|row| row.expires > now)
            .cloned()?;
        let minted_by = parse_hash(&row.created_by_sha256).ok()?;
        self.is_active(&minted_by).then_some(row)
    }

    /// `tenant`'s viewer tokens that have not expired, revoked ones included, newest first.
    pub fn viewer_tokens(
        &self,
        tenant: &TenantId,
        now: i64,
    ) -> Result<Vec<ViewerTokenRow>, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(VIEWER_TOKENS).map_err(store_err)?;
        let mut rows = Vec::new();
        for entry in table.range((tenant.as_str(), "")..).map_err(store_err)? {
            let (key, value) = entry.map_err(store_err)?;
            if key.value().0 != tenant.as_str() {
                break;
            }
            let row: ViewerTokenRow = decode(value.value())?;
            if row.expires > now {
                rows.push(row);
            }
        }
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(rows)
    }

    /// Revokes a viewer token of `tenant`: it opens nothing from now on. Revoking a revoked
    /// token changes nothing; the flag says whether this call revoked it.
    pub fn revoke_viewer_token(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<(ViewerTokenRow, bool), ControlError> {
        let mut live = self
            .viewer_tokens
            .write()
            .expect("viewer tokens lock poisoned");
        let no_token = || ControlError::NoViewerToken {
            tenant: tenant.to_string(),
            token_id: id.to_owned(),
        };
        let tx = self.db.begin_write().map_err(store_err)?;
        let row = {
            let mut table = tx.open_table(VIEWER_TOKENS).map_err(store_err)?;
            let mut row: ViewerTokenRow = decode(
                table
                    .get((tenant.as_str(), id))
                    .map_err(store_err)?
                    .ok_or_else(no_token)?
                    .value(),
            )?;
            if row.revoked_at.is_some() {
                return Ok((row, false));
            }
            row.revoked_at = Some(clock::now_rfc3339());
            table
                .insert((tenant.as_str(), id), encode(&row).as_slice())
                .map_err(store_err)?;
            row
        };
        tx.commit().map_err(store_err)?;
        if let Some(tokens) = live.get_mut(tenant.as_str()) {
            tokens.remove(id);
        }
        drop(live);
        self.access_changed();
        Ok((row, true))
    }
}

fn new_key(
    tenant: &TenantId,
    role: Role,
    name: Option<String>,
    created_by: &str,
) -> Result<(KeyRow, String), ControlError> {
    let secret = new_secret()?;
    let mut id_bytes = [0u8; 8];
    getrandom::fill(&mut id_bytes).map_err(store_err)?;
    let key = KeyRow {
        id: format!("key_{}", hex(&id_bytes)),
        tenant: tenant.to_string(),
        role,
        name,
        created_at: clock::now_rfc3339(),
        created_by: created_by.to_owned(),
        revoked_at: None,
        secret_sha256: hex(&hash_secret(&secret)),
    };
    Ok((key, secret))
}

fn principal_of(row: &KeyRow) -> Result<Principal, ControlError> {
    Ok(Principal::Tenant(TenantKey {
        tenant: TenantId::parse(&row.tenant)
            .map_err(|err| ControlError::Corrupt(format!("key {}: {err}", row.id)))?,
        role: row.role,
        key_id: row.id.clone(),
        key_hash: parse_hash(&row.secret_sha256)?,
    }))
}

/// A new random secret: `vt_` and 256 bits in base64url.
fn new_secret() -> Result<String, ControlError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(store_err)?;
    Ok(format!("vt_{}", URL_SAFE_NO_PAD.encode(bytes)))
}

fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn parse_hash(text: &str) -> Result<[u8; 32], ControlError> {
    let corrupt = || ControlError::Corrupt(format!("key hash {text:?}"));
    if text.len() != 64 {
        return Err(corrupt());
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(corrupt)?, 16)
            .map_err(|_| corrupt())?;
    }
    Ok(hash)
}

/// A tenant's catalog settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSettings {
    /// What happens to events no catalog defines.
    pub policy: veritrail_core::catalog::Policy,
    /// Shared catalogs the tenant adopted, consulted in this order after its own.
    pub adopted: Vec<String>,
}

impl CatalogSettings {
    /// What a new tenant starts with (`[tenants]` in the configuration).
    #[must_use]
    pub fn for_new_tenants(config: &crate::config::Tenants) -> Self {
        Self {
            policy: config.default_policy,
            adopted: config.default_catalogs.clone(),
        }
    }

    /// These settings with each adopted catalog named by its current id, once (a tenant
    /// may have adopted a shared catalog under an id it has since been renamed from).
    #[must_use]
    pub fn with_current_ids(mut self) -> Self {
        self.adopted = crate::catalogs::current_ids(&self.adopted);
        self
    }
}

impl ControlPlane {
    /// The latest version of `tenant`'s own catalog, as `(version, JSON)`.
    pub fn catalog(&self, tenant: &TenantId) -> Result<Option<(u64, Vec<u8>)>, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(CATALOGS).map_err(store_err)?;
        let mut range = table
            .range((tenant.as_str(), 0)..=(tenant.as_str(), u64::MAX))
            .map_err(store_err)?;
        range
            .next_back()
            .transpose()
            .map_err(store_err)
            .map(|entry| entry.map(|(key, value)| (key.value().1, value.value().to_vec())))
    }

    /// Version `version` of `tenant`'s own catalog, as JSON.
    pub fn catalog_version(
        &self,
        tenant: &TenantId,
        version: u64,
    ) -> Result<Option<Vec<u8>>, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(CATALOGS).map_err(store_err)?;
        Ok(table
            .get((tenant.as_str(), version))
            .map_err(store_err)?
            .map(|value| value.value().to_vec()))
    }

    /// Stores a new version of `tenant`'s own catalog, made by `make` from the latest one
    /// (`None` if there is none) and the new version number, in one transaction; returns
    /// what `make` returned.
    pub fn put_catalog<T, E: From<ControlError>>(
        &self,
        tenant: &TenantId,
        make: impl FnOnce(Option<&[u8]>, u64) -> Result<(Vec<u8>, T), E>,
    ) -> Result<T, E> {
        let tx = self.db.begin_write().map_err(store_err)?;
        let made = {
            let mut table = tx.open_table(CATALOGS).map_err(store_err)?;
            let latest = table
                .range((tenant.as_str(), 0)..=(tenant.as_str(), u64::MAX))
                .map_err(store_err)?
                .next_back()
                .transpose()
                .map_err(store_err)?
                .map(|(key, value)| (key.value().1, value.value().to_vec()));
            let version = latest.as_ref().map_or(1, |(version, _)| version + 1);
            let (json, made) = make(latest.as_ref().map(|(_, json)| json.as_slice()), version)?;
            table
                .insert((tenant.as_str(), version), json.as_slice())
                .map_err(store_err)?;
            made
        };
        tx.commit().map_err(store_err)?;
        Ok(made)
    }

    /// Removes a version stored by [`ControlPlane::put_catalog`] whose audit event could not
    /// be written.
    pub fn undo_put_catalog(&self, tenant: &TenantId, version: u64) -> Result<(), ControlError> {
        let tx = self.db.begin_write().map_err(store_err)?;
        tx.open_table(CATALOGS)
            .map_err(store_err)?
            .remove((tenant.as_str(), version))
            .map_err(store_err)?;
        tx.commit().map_err(store_err)
    }

    /// `tenant`'s catalog settings (the defaults when never set). Shared catalogs adopted
    /// under an old id are given by their current one.
    pub fn catalog_settings(&self, tenant: &TenantId) -> Result<CatalogSettings, ControlError> {
        self.setting(CATALOG_SETTINGS, tenant)
            .map(CatalogSettings::with_current_ids)
    }

    /// Replaces `tenant`'s catalog settings (stored with the current ids of the shared
    /// catalogs); returns the previous ones.
    pub fn put_catalog_settings(
        &self,
        tenant: &TenantId,
        settings: &CatalogSettings,
    ) -> Result<CatalogSettings, ControlError> {
        let settings = settings.clone().with_current_ids();
        self.put_setting(CATALOG_SETTINGS, tenant, &settings)
            .map(CatalogSettings::with_current_ids)
    }

    /// `tenant`'s Activity page settings (the defaults when never set).
    pub fn activity_settings(&self, tenant: &TenantId) -> Result<ActivitySettings, ControlError> {
        self.setting(ACTIVITY_SETTINGS, tenant)
    }

    /// Replaces `tenant`'s Activity page settings; returns the previous ones.
    pub fn put_activity_settings(
        &self,
        tenant: &TenantId,
        settings: &ActivitySettings,
    ) -> Result<ActivitySettings, ControlError> {
        let previous = self.put_setting(ACTIVITY_SETTINGS, tenant, settings)?;
        if previous.admit_viewers && !settings.admit_viewers {
            // Viewers' sessions and their live streams end.
            self.access_changed();
        }
        Ok(previous)
    }

    fn setting<T: Default + for<'de> Deserialize<'de>>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        tenant: &TenantId,
    ) -> Result<T, ControlError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = match tx.open_table(table) {
            Ok(table) => table,
            // Made at the first write.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(T::default()),
            Err(err) => return Err(store_err(err)),
        };
        table
            .get(tenant.as_str())
            .map_err(store_err)?
            .map_or(Ok(T::default()), |value| decode(value.value()))
    }

    fn put_setting<T: Default + Serialize + for<'de> Deserialize<'de>>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        tenant: &TenantId,
        settings: &T,
    ) -> Result<T, ControlError> {
        let tx = self.db.begin_write().map_err(store_err)?;
        let previous = {
            let mut table = tx.open_table(table).map_err(store_err)?;
            let previous = table
                .get(tenant.as_str())
                .map_err(store_err)?
                .map_or(Ok(T::default()), |value| decode(value.value()))?;
            table
                .insert(tenant.as_str(), encode(settings).as_slice())
                .map_err(store_err)?;
            previous
        };
        tx.commit().map_err(store_err)?;
        Ok(previous)
    }
}

/// A tenant's data lifecycle settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSettings {
    /// The tenant's own retention policy; `None`: the server's default applies.
    #[serde(default)]
    pub retention: Option<veritrail_api::RetentionPolicy>,
    /// Legal holds in force.
    #[serde(default)]
    pub holds: Vec<veritrail_api::HoldBody>,
}

impl ControlPlane {
    /// `tenant`'s data lifecycle settings (the defaults when never set).
    pub fn data_settings(&self, tenant: &TenantId) -> Result<DataSettings, ControlError> {
        self.setting(DATA_SETTINGS, tenant)
    }

    /// Replaces `tenant`'s data lifecycle settings; returns the previous ones.
    pub fn put_data_settings(
        &self,
        tenant: &TenantId,
        settings: &DataSettings,
    ) -> Result<DataSettings, ControlError> {
        self.put_setting(DATA_SETTINGS, tenant, settings)
    }

    /// `tenant`'s last complete scrub, if one ran.
    pub fn scrub(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<veritrail_api::ScrubBody>, ControlError> {
        self.setting(SCRUBS, tenant)
    }

    /// Records the scrub of each tenant of a pass, in one transaction.
    pub fn put_scrubs(
        &self,
        scrubs: &[(TenantId, veritrail_api::ScrubBody)],
    ) -> Result<(), ControlError> {
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(SCRUBS).map_err(store_err)?;
            for (tenant, scrub) in scrubs {
                table
                    .insert(tenant.as_str(), encode(&Some(scrub)).as_slice())
                    .map_err(store_err)?;
            }
        }
        tx.commit().map_err(store_err)
    }
}

/// A tenant's Activity page settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySettings {
    /// Viewer keys may open the Activity page too (owner, super_admin and admin always can).
    pub admit_viewers: bool,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("control rows serialise")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(bytes).map_err(|err| ControlError::Corrupt(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authenticate_until_revoked_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (control, admin) = ControlPlane::open(dir.path()).expect("open");
        let admin = admin.expect("first open makes an admin key");
        assert_eq!(control.authenticate(&admin), Some(Principal::ServerAdmin));
        let tenant = TenantId::parse("acme").expect("tenant");
        let (_, owner, owner_secret) = control
            .create_tenant(&tenant, None, &CatalogSettings::default())
            .expect("tenant");
        assert!(matches!(
            control.create_tenant(&tenant, None, &CatalogSettings::default()),
            Err(ControlError::TenantExists(_))
        ));
        let (viewer, viewer_secret) = control
            .create_key(&tenant, Role::Viewer, None, &owner.id)
            .expect("key");
        assert_eq!(viewer_secret.len(), 46);
        drop(control);

        let (control, again) = ControlPlane::open(dir.path()).expect("reopen");
        assert!(again.is_none(), "the admin key is made once");
        assert_eq!(control.authenticate(&admin), Some(Principal::ServerAdmin));
        let Some(Principal::Tenant(key)) = control.authenticate(&viewer_secret) else {
            panic!("the viewer key authenticates");
        };
        assert_eq!(
            (key.role, key.key_id.as_str()),
            (Role::Viewer, viewer.id.as_str())
        );
        let (revoked, changed) = control.revoke_key(&tenant, &viewer.id).expect("revoke");
        assert!(changed && revoked.revoked_at.is_some());
        assert_eq!(control.authenticate(&viewer_secret), None);
        assert!(control.authenticate(&owner_secret).is_some());
        drop(control);
        let (control, _) = ControlPlane::open(dir.path()).expect("reopen");
        assert_eq!(
            control.authenticate(&viewer_secret),
            None,
            "revocation is durable"
        );
        assert!(!control.revoke_key(&tenant, &viewer.id).expect("again").1);
        assert!(control.authenticate("vt_guess").is_none());
    }

    #[test]
    fn a_tenant_has_a_bounded_number_of_active_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (control, _) = ControlPlane::open(dir.path()).expect("open");
        let tenant = TenantId::parse("acme").expect("tenant");
        let (_, owner, _) = control
            .create_tenant(&tenant, None, &CatalogSettings::default())
            .expect("tenant");
        let mut last = None;
        for _ in 1..MAX_ACTIVE_KEYS_PER_TENANT {
            last = Some(
                control
                    .create_key(&tenant, Role::Viewer, None, &owner.id)
                    .expect("key")
                    .0,
            );
        }
        assert!(matches!(
            control.create_key(&tenant, Role::Viewer, None, &owner.id),
            Err(ControlError::TooManyKeys { active, .. }) if active == MAX_ACTIVE_KEYS_PER_TENANT
        ));
        let other = TenantId::parse("other").expect("tenant");
        control
            .create_tenant(&other, None, &CatalogSettings::default())
            .expect("another tenant has its own");
        control
            .revoke_key(&tenant, &last.expect("a key").id)
            .expect("revoke");
        control
            .create_key(&tenant, Role::Viewer, None, &owner.id)
            .expect("room again after a revocation");
    }
}
