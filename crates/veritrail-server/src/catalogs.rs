//! Event catalogs in the service: each tenant's own catalog (every version kept in
//! `control.redb`), the shared catalogs built into the binary (those modelled on the public
//! documents of other products, and veritrail's own, from `catalogs/` in the repository),
//! each tenant's settings (policy and adopted shared catalogs), and the effective
//! [`Catalogs`] that ingest applies: the tenant's own, then the adopted ones in order, then
//! the built-in `veritrail` catalog.
//!
//! A shared catalog that was renamed keeps its old id as an alias ([`SHARED_ALIASES`]):
//! requests may name it, settings stored with it keep working, and both show the new id.
//!
//! Effective sets are cached per tenant and dropped whenever the tenant's catalog or
//! settings change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use axum::http::StatusCode;
use veritrail_api::{FieldErrorBody, error_codes};
use veritrail_core::catalog::{Catalog, CatalogDoc, Catalogs, Policy};
use veritrail_core::event::{FieldError, TenantId};

use crate::control::ControlPlane;
use crate::error::ApiError;

/// The id of veritrail's own catalog, which the service's audit events use.
pub const BUILTIN: &str = "veritrail";

/// Types under this prefix are the service's own: only it writes them, only its catalog
/// defines them.
pub use veritrail_core::event::RESERVED_TYPE_PREFIX as RESERVED_PREFIX;

/// The shared catalogs, as shipped in `catalogs/`.
const SHARED_SOURCES: [&str; 6] = [
    include_str!("../../../catalogs/veritrail.yaml"),
    include_str!("../../../catalogs/perimeter81-monitor-activity.yaml"),
    include_str!("../../../catalogs/privx-audit-events.yaml"),
    include_str!("../../../catalogs/thru-mft-audit-api.yaml"),
    include_str!("../../../catalogs/vgs-user-actions.yaml"),
    include_str!("../../../catalogs/cerby-integration-activity.yaml"),
];

/// Ids the shared catalogs were published under before, as `(old id, current id)`. An old
/// id is accepted wherever a shared catalog is named (adopting, `GET
/// /api/v1/catalog/shared/{id}`) and in the settings tenants stored with it; it resolves
/// to the current catalog and is never listed.
pub const SHARED_ALIASES: [(&str, &str); 5] = [
    ("seed-000-monitor-activity", "perimeter81-monitor-activity"),
    ("seed-001-audit-events-reference", "privx-audit-events"),
    ("seed-002-audit-api", "thru-mft-audit-api"),
    ("seed-003-user-actions", "vgs-user-actions"),
    (
        "seed-004-integration-activity",
        "cerby-integration-activity",
    ),
];

/// The current id of the shared catalog named `id`: the one it is an alias of, else `id`.
pub fn current_id(id: &str) -> &str {
    SHARED_ALIASES
        .iter()
        .find(|(old, _)| *old == id)
        .map_or(id, |(_, current)| current)
}

/// `ids` with every alias replaced by its current id, each id once, in the first one's
/// place.
pub fn current_ids(ids: &[String]) -> Vec<String> {
    let mut current: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = current_id(id);
        if !current.iter().any(|seen| seen == id) {
            current.push(id.to_owned());
        }
    }
    current
}

/// The shared catalogs by current id; looking one up by an old id ([`SHARED_ALIASES`])
/// finds it too.
#[derive(Debug)]
pub struct SharedCatalogs(BTreeMap<String, Arc<Catalog>>);

impl SharedCatalogs {
    /// The catalog named `id` (current or old).
    pub fn get(&self, id: &str) -> Option<&Arc<Catalog>> {
        self.0.get(current_id(id))
    }

    /// Whether `id` (current or old) names a shared catalog.
    pub fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Every shared catalog, by current id.
    pub fn iter(&self) -> std::collections::btree_map::Iter<'_, String, Arc<Catalog>> {
        self.0.iter()
    }

    /// Every shared catalog, in order of current id.
    pub fn values(&self) -> std::collections::btree_map::Values<'_, String, Arc<Catalog>> {
        self.0.values()
    }

    /// How many there are (aliases not counted).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a SharedCatalogs {
    type Item = (&'a String, &'a Arc<Catalog>);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Arc<Catalog>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Shared catalogs and the per-tenant effective sets.
#[derive(Debug)]
pub struct CatalogService {
    shared: SharedCatalogs,
    builtin: Arc<Catalogs>,
    effective: RwLock<HashMap<TenantId, Arc<Catalogs>>>,
    /// Held while a catalog or its settings change (store, audit event, maybe undo).
    change: tokio::sync::Mutex<()>,
}

impl CatalogService {
    /// Loads the shared catalogs.
    ///
    /// # Errors
    ///
    /// A shipped catalog that does not parse (a test keeps them valid).
    pub fn new() -> anyhow::Result<Self> {
        let mut shared = BTreeMap::new();
        for source in SHARED_SOURCES {
            let doc: CatalogDoc = serde_yaml_ng::from_str(source)?;
            let catalog = Catalog::from_doc(&doc).map_err(|errors| {
                anyhow::anyhow!("shipped catalog {} is invalid: {errors:?}", doc.id)
            })?;
            shared.insert(doc.id.clone(), Arc::new(catalog));
        }
        let builtin = shared
            .get(BUILTIN)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the built-in catalog is missing"))?;
        Ok(Self {
            shared: SharedCatalogs(shared),
            builtin: Arc::new(Catalogs {
                catalogs: vec![builtin],
                policy: Policy::Lenient,
            }),
            effective: RwLock::new(HashMap::new()),
            change: tokio::sync::Mutex::new(()),
        })
    }

    /// Serialises catalog changes.
    pub async fn change_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.change.lock().await
    }

    /// Every shared catalog, by id (old ids resolve to the current ones).
    pub fn shared(&self) -> &SharedCatalogs {
        &self.shared
    }

    /// The built-in catalog alone, for the service's own events.
    pub fn builtin(&self) -> &Catalogs {
        &self.builtin
    }

    /// `tenant`'s effective set if it is cached (no storage read).
    pub fn cached(&self, tenant: &TenantId) -> Option<Arc<Catalogs>> {
        self.lock_read().get(tenant).cloned()
    }

    /// What `tenant`'s ingest applies.
    pub fn effective(
        &self,
        control: &ControlPlane,
        tenant: &TenantId,
    ) -> Result<Arc<Catalogs>, ApiError> {
        if let Some(found) = self.lock_read().get(tenant) {
            return Ok(Arc::clone(found));
        }
        let settings = control.catalog_settings(tenant)?;
        let mut catalogs = Vec::new();
        if let Some(own) = own_catalog(control, tenant)? {
            catalogs.push(Arc::new(own));
        }
        for id in &settings.adopted {
            // Adopting is checked against the shared catalogs; one removed from a later
            // build is skipped rather than failing every ingest.
            if let Some(catalog) = self.shared.get(id)
                && id != BUILTIN
            {
                catalogs.push(Arc::clone(catalog));
            }
        }
        catalogs.push(Arc::clone(&self.builtin.catalogs[0]));
        let effective = Arc::new(Catalogs {
            catalogs,
            policy: settings.policy,
        });
        self.lock_write()
            .insert(tenant.clone(), Arc::clone(&effective));
        Ok(effective)
    }

    /// Drops `tenant`'s cached set after a change (the next ingest rebuilds it).
    pub fn invalidate(&self, tenant: &TenantId) {
        self.lock_write().remove(tenant);
    }

    fn lock_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TenantId, Arc<Catalogs>>> {
        self.effective.read().expect("catalog cache lock poisoned")
    }

    fn lock_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<TenantId, Arc<Catalogs>>> {
        self.effective.write().expect("catalog cache lock poisoned")
    }
}

/// The latest version of `tenant`'s own catalog.
pub fn own_catalog(control: &ControlPlane, tenant: &TenantId) -> Result<Option<Catalog>, ApiError> {
    control
        .catalog(tenant)?
        .map(|(version, json)| stored_catalog(&json, version))
        .transpose()
}

/// A stored catalog version, parsed back.
pub fn stored_catalog(json: &[u8], version: u64) -> Result<Catalog, ApiError> {
    let doc: CatalogDoc = serde_json::from_slice(json)
        .map_err(|err| ApiError::internal(format!("stored catalog: {err}")))?;
    Catalog::from_doc(&doc)
        .map(|catalog| catalog.with_version(version))
        .map_err(|errors| ApiError::internal(format!("stored catalog: {errors:?}")))
}

/// How a catalog document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Json,
    Yaml,
}

impl DocFormat {
    /// From a `Content-Type`; without one, from the first character of the body.
    pub fn of(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let media_type = crate::extract::media_type(content_type);
        match media_type.as_str() {
            "" => Ok(
                if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                    Self::Json
                } else {
                    Self::Yaml
                },
            ),
            "application/json" => Ok(Self::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
                Ok(Self::Yaml)
            }
            other => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                error_codes::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "send a catalog as `application/json` or `application/yaml`, not {other:?}"
                ),
            )),
        }
    }
}

/// Reads a catalog document (or any of its parts), naming the path of a misfit.
///
/// YAML is first measured by `yaml_expansion`: a document whose aliases (`*name`) would
/// make it expand to more than a few times its size is refused before it is read, so a
/// small body cannot make the server build a huge value (an alias bomb).
///
/// # Errors
///
/// `invalid_catalog` (422) with the path and serde's sentence, or with `too_large` for a
/// YAML document that expands too much.
pub fn parse_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    format: DocFormat,
) -> Result<T, ApiError> {
    if format == DocFormat::Yaml && yaml_expansion(body).is_err() {
        return Err(invalid_catalog(
            "the catalog document does not parse",
            vec![FieldErrorBody {
                field: String::new(),
                code: error_codes::TOO_LARGE.into(),
                message: format!(
                    "the YAML document expands through its aliases (*name) to more than {} values and bytes; write it without aliases",
                    yaml_budget(body)
                ),
            }],
        ));
    }
    let (path, message) = match format {
        DocFormat::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            match serde_path_to_error::deserialize(&mut deserializer) {
                Ok(value) => return Ok(value),
                Err(err) => (err.path().to_string(), err.into_inner().to_string()),
            }
        }
        DocFormat::Yaml => {
            let deserializer = serde_yaml_ng::Deserializer::from_slice(body);
            match serde_path_to_error::deserialize(deserializer) {
                Ok(value) => return Ok(value),
                Err(err) => (err.path().to_string(), err.into_inner().to_string()),
            }
        }
    };
    let field = if path == "." { String::new() } else { path };
    Err(invalid_catalog(
        "the catalog document does not parse",
        vec![FieldErrorBody {
            field,
            code: "malformed".into(),
            message,
        }],
    ))
}

/// Most a YAML body of `body.len()` bytes may expand to, counted as [`yaml_expansion`]
/// does: without aliases a document is at most about twice its size.
fn yaml_budget(body: &[u8]) -> usize {
    body.len().saturating_mul(4).saturating_add(16 * 1024)
}

/// Measures what a YAML document expands to with its aliases followed: one per value, plus
/// the bytes of every string (keys included). Stops as soon as that passes
/// [`yaml_budget`], so the work is bounded by the document's size; any other problem of
/// the document is left to the reading that follows.
///
/// # Errors
///
/// `Err(())` when the document expands past its budget.
fn yaml_expansion(body: &[u8]) -> Result<(), ()> {
    use serde::de::DeserializeSeed;
    let meter = Meter {
        left: std::cell::Cell::new(yaml_budget(body)),
        exceeded: std::cell::Cell::new(false),
    };
    let _ = Measure(&meter).deserialize(serde_yaml_ng::Deserializer::from_slice(body));
    if meter.exceeded.get() {
        Err(())
    } else {
        Ok(())
    }
}

/// What [`yaml_expansion`] has left to spend.
struct Meter {
    left: std::cell::Cell<usize>,
    exceeded: std::cell::Cell<bool>,
}

/// Reads any value, spending its size from the [`Meter`].
#[derive(Clone, Copy)]
struct Measure<'a>(&'a Meter);

impl Measure<'_> {
    fn spend<E: serde::de::Error>(self, units: usize) -> Result<(), E> {
        let left = self.0.left.get();
        if units > left {
            self.0.exceeded.set(true);
            return Err(E::custom("the document expands past its budget"));
        }
        self.0.left.set(left - units);
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Measure<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Measure<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<(), E> {
        self.spend(1 + text.len())
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<(), E> {
        self.spend(1 + bytes.len())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.spend(1)?;
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<(), D::Error> {
        self.spend(1)?;
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.spend(1)?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

/// The document as YAML.
pub fn to_yaml(doc: &CatalogDoc) -> Result<String, ApiError> {
    serde_yaml_ng::to_string(doc).map_err(ApiError::internal)
}

/// Checks a document a tenant sends as its own catalog.
///
/// # Errors
///
/// `invalid_catalog` with every problem: those of [`Catalog::from_doc`], and types under
/// the reserved `veritrail.` prefix.
pub fn check_own(doc: &CatalogDoc) -> Result<Catalog, ApiError> {
    let reserved: Vec<FieldError> = doc
        .events
        .iter()
        .enumerate()
        .filter(|(_, entry)| veritrail_core::event::is_reserved_type(&entry.event_type))
        .map(|(idx, _)| reserved_type(format!("events[{idx}].type")))
        .collect();
    match Catalog::from_doc(doc) {
        Ok(catalog) if reserved.is_empty() => Ok(catalog),
        result => {
            let mut errors = result.err().unwrap_or_default();
            errors.extend(reserved);
            Err(invalid_catalog(
                &format!(
                    "the catalog has {} problem(s) (see `errors`); nothing was changed",
                    errors.len()
                ),
                errors.into_iter().map(field_error_body).collect(),
            ))
        }
    }
}

/// The error of a type under the reserved prefix, at `field`.
pub fn reserved_type(field: String) -> FieldError {
    FieldError {
        field,
        code: "reserved",
        message: format!("types under `{RESERVED_PREFIX}` are reserved for veritrail's own events"),
    }
}

/// A core field error in the API's shape.
pub fn field_error_body(error: FieldError) -> FieldErrorBody {
    FieldErrorBody {
        field: error.field,
        code: error.code.to_owned(),
        message: error.message,
    }
}

fn invalid_catalog(message: &str, errors: Vec<FieldErrorBody>) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        error_codes::INVALID_CATALOG,
        message,
    );
    err.errors = errors;
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_catalog_loads_and_the_builtin_defines_the_service_events() {
        let service = CatalogService::new().expect("shipped catalogs");
        assert_eq!(service.shared().len(), SHARED_SOURCES.len());
        for event_type in [
            crate::audit::types::TENANT_CREATED,
            crate::audit::types::KEY_CREATED,
            crate::audit::types::KEY_REVOKED,
            crate::audit::types::LOG_EXPORTED,
            crate::audit::types::EVENTS_EXPORTED,
            crate::audit::types::CATALOG_CHANGED,
            crate::audit::types::SETTINGS_CHANGED,
        ] {
            assert!(
                service.builtin().lookup(event_type).is_some(),
                "{event_type} is not in the built-in catalog"
            );
        }
        // Only the built-in catalog uses the reserved prefix.
        for (id, catalog) in service.shared() {
            let reserved = catalog
                .entries()
                .iter()
                .filter(|entry| entry.event_type.as_str().starts_with(RESERVED_PREFIX))
                .count();
            if id == BUILTIN {
                assert_eq!(reserved, catalog.entries().len());
            } else {
                assert_eq!(reserved, 0, "{id}");
            }
        }
    }

    #[test]
    fn every_old_id_resolves_to_a_shipped_catalog_and_is_never_listed() {
        let service = CatalogService::new().expect("shipped catalogs");
        let shared = service.shared();
        for (old, current) in SHARED_ALIASES {
            assert_eq!(current_id(old), current);
            assert!(!shared.iter().any(|(id, _)| id == old), "{old} is listed");
            let catalog = shared.get(old).unwrap_or_else(|| panic!("{old} resolves"));
            assert_eq!(catalog.id(), current);
            assert!(Arc::ptr_eq(catalog, &shared.0[current]));
            assert!(shared.contains_key(old) && shared.contains_key(current));
            assert_ne!(current, BUILTIN);
            // An old id is never the current id of another catalog, nor an alias's target.
            assert!(SHARED_ALIASES.iter().all(|(_, to)| *to != old));
        }
        let olds: std::collections::HashSet<_> =
            SHARED_ALIASES.iter().map(|(old, _)| old).collect();
        assert_eq!(olds.len(), SHARED_ALIASES.len(), "each old id once");
        // Current and unknown ids are themselves.
        for id in ["thru-mft-audit-api", BUILTIN, "no-such", "seed-005"] {
            assert_eq!(current_id(id), id);
        }
        assert!(shared.get("no-such").is_none());
        assert_eq!(
            current_ids(&[
                "seed-003-user-actions".to_owned(),
                "thru-mft-audit-api".to_owned(),
                "vgs-user-actions".to_owned(),
                "seed-002-audit-api".to_owned(),
                "no-such".to_owned(),
            ]),
            ["vgs-user-actions", "thru-mft-audit-api", "no-such"]
        );
    }

    #[test]
    fn a_yaml_alias_bomb_is_refused_before_it_is_built() {
        // Found by fuzz_catalog_text: 2,000 entries that each alias one list of 2,000
        // fields, 170 kB of YAML, were read as 4 million fields (a 5 MiB body could have
        // asked for billions).
        let mut yaml = String::from(
            "format: veritrail-catalog/v1\nid: t\nevents:\n- type: a.a\n  name: A\n  category: C\n  details: &d\n",
        );
        for i in 0..2000 {
            yaml.push_str(&format!("  - {{name: f{i}, type: string}}\n"));
        }
        for i in 0..2000 {
            yaml.push_str(&format!(
                "- {{type: a.b{i}, name: A, category: C, details: *d}}\n"
            ));
        }
        let started = std::time::Instant::now();
        let err = parse_body::<CatalogDoc>(yaml.as_bytes(), DocFormat::Yaml).expect_err("a bomb");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(err.code, error_codes::INVALID_CATALOG);
        assert_eq!(err.errors[0].code, error_codes::TOO_LARGE);
        assert!(
            err.errors[0].message.contains("aliases"),
            "{:?}",
            err.errors
        );
        // Aliases that do not blow the document up are still read.
        let modest = b"format: veritrail-catalog/v1\nid: t\nevents:\n  - {type: a.b, name: &n A, category: &c C}\n  - {type: a.c, name: *n, category: *c}\n";
        let doc: CatalogDoc = parse_body(modest, DocFormat::Yaml).expect("modest aliases");
        assert_eq!(doc.events[1].name, "A");
    }

    #[test]
    fn documents_parse_as_json_or_yaml_and_misfits_name_their_path() {
        let yaml = b"format: veritrail-catalog/v1\nid: t\nevents:\n  - {type: a.b, name: A, category: C}\n";
        let doc: CatalogDoc =
            parse_body(yaml, DocFormat::of(None, yaml).expect("format")).expect("yaml");
        assert_eq!(doc.events[0].event_type, "a.b");
        let json = br#"{"format":"veritrail-catalog/v1","id":"t","events":[{"type":"a.b","name":"A","category":"C","colour":1}]}"#;
        assert_eq!(DocFormat::of(None, json).expect("format"), DocFormat::Json);
        let err = parse_body::<CatalogDoc>(json, DocFormat::Json).expect_err("unknown field");
        assert_eq!(err.code, error_codes::INVALID_CATALOG);
        assert_eq!(err.errors[0].field, "events[0].colour");
        assert!(err.errors[0].message.contains("colour"), "{:?}", err.errors);
        assert!(DocFormat::of(Some("text/plain"), json).is_err());
    }
}
