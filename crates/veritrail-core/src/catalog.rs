//! Event catalogs: a product's typed definitions of its event types (code, name, category,
//! description, severity, default outcome, summary template, the fields `details` must
//! carry, deprecation, OCSF class), and what applying one to an event means.
//!
//! [`CatalogDoc`] is the file and wire form (YAML or JSON, format `veritrail-catalog/v1`);
//! [`Catalog::from_doc`] checks it whole and reports every problem by path, as event
//! validation does. [`Catalogs`] is what a tenant's ingest consults: its own catalog, the
//! shared ones it adopted, then veritrail's built-in one, first match wins.
//! [`Catalogs::apply`] turns an event into the event and [`CatalogFields`] that a record
//! stores, or the errors of strict mode.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::limits::SUMMARY_MAX_LEN;
use crate::event::{
    Category, Description, Event, EventType, FieldError, Name, Outcome, Severity, Summary,
    ValueError, codes,
};
use crate::record::CatalogFields;

/// The `format` of every catalog document.
pub const FORMAT: &str = "veritrail-catalog/v1";

/// Category given to events a lenient tenant's catalogs do not define. No catalog may use it.
pub const UNCATALOGUED: &str = "Uncatalogued";

/// Most entries one catalog may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// Longest catalog id.
pub const ID_MAX_LEN: usize = 64;

/// What a placeholder renders as when the event has no value for it.
pub const MISSING_VALUE: &str = "unknown";

/// The severities an entry may have, least severe first.
pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// A catalog as written in a file or sent to the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDoc {
    /// Always [`FORMAT`].
    pub format: String,
    /// `[a-z0-9-]`, 1 to 64 characters, like `perimeter81-monitor-activity`.
    pub id: String,
    /// Set by veritrail when it stores the catalog (each change adds one); ignored on input.
    #[serde(default)]
    pub version: u64,
    /// A short human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the catalog covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The event types.
    #[serde(default)]
    pub events: Vec<EntryDoc>,
}

/// One event type of a [`CatalogDoc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDoc {
    /// The dotted type key, like `user.logged_in`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Numeric code, unique within the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u64>,
    /// Display name.
    pub name: String,
    /// Category, like `Authentication`.
    pub category: String,
    /// What the event means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// One of [`SEVERITIES`]; `info` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The outcome of an event that gives none: `success`, `failure`, `pending`, `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_outcome: Option<String>,
    /// Summary template, like `User "{actor.email}" logged in` (see [`Template`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Fields of `details`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldDoc>,
    /// Still accepted, but should no longer be sent.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// The OCSF class and activity the event maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsf: Option<Ocsf>,
}

#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's signature")]
fn is_false(value: &bool) -> bool {
    !*value
}

/// One field of `details` that an entry describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDoc {
    /// A top-level key of `details`.
    pub name: String,
    /// Its JSON type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Whether every event of the type must carry it.
    #[serde(default)]
    pub required: bool,
}

/// The JSON type of a `details` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// A JSON string.
    String,
    /// A JSON number without fraction or exponent.
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
}

impl FieldType {
    fn admits(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Object => value.is_object(),
            Self::Array => value.is_array(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
        }
    }
}

/// An OCSF (Open Cybersecurity Schema Framework) class and activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ocsf {
    /// Like 3002 (Authentication).
    pub class_uid: u32,
    /// Like `Authentication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Like 1 (Logon).
    pub activity_id: u32,
    /// Like `Logon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_name: Option<String>,
}

/// The OCSF class and activity common event families map to, from the words of the type
/// key (split at `.`, `_` and `-`): log in / log out (Authentication 3002), password, MFA
/// and account lifecycle of a `user` or `account` (Account Change 3001), group membership
/// and lifecycle (Group Management 3006), and create / read / update / delete under `api`
/// (API Activity 6003). `None` when no rule applies; an entry's own `ocsf` always wins
/// ([`Entry::effective_ocsf`]). Activity ids are those of OCSF 1.x.
#[must_use]
pub fn default_ocsf(event_type: &str) -> Option<Ocsf> {
    let words: Vec<String> = event_type
        .split(['.', '_', '-'])
        .map(str::to_ascii_lowercase)
        .collect();
    let has = |options: &[&str]| words.iter().any(|word| options.contains(&word.as_str()));
    let pair = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    let ocsf = |class_uid, class_name: &str, activity_id, activity_name: &str| {
        Some(Ocsf {
            class_uid,
            class_name: Some(class_name.to_owned()),
            activity_id,
            activity_name: Some(activity_name.to_owned()),
        })
    };
    const AUTHENTICATION: (u32, &str) = (3002, "Authentication");
    const ACCOUNT: (u32, &str) = (3001, "Account Change");
    const GROUP: (u32, &str) = (3006, "Group Management");
    const API: (u32, &str) = (6003, "API Activity");
    let created = [
        "create",
        "created",
        "add",
        "added",
        "invite",
        "invited",
        "provisioned",
    ];
    let deleted = ["delete", "deleted", "remove", "removed", "deprovisioned"];
    let first = words.first().map_or("", String::as_str);
    if has(&["login", "logon", "signin"]) || pair("logged", "in") || pair("sign", "in") {
        return ocsf(AUTHENTICATION.0, AUTHENTICATION.1, 1, "Logon");
    }
    if has(&["logout", "logoff", "signout"]) || pair("logged", "out") || pair("sign", "out") {
        return ocsf(AUTHENTICATION.0, AUTHENTICATION.1, 2, "Logoff");
    }
    if has(&["mfa", "2fa", "totp"]) {
        if has(&["enable", "enabled", "created", "enrolled", "added"]) {
            return ocsf(ACCOUNT.0, ACCOUNT.1, 10, "MFA Factor Enable");
        }
        if has(&["disable", "disabled", "deleted", "removed", "unenrolled"]) {
            return ocsf(ACCOUNT.0, ACCOUNT.1, 11, "MFA Factor Disable");
        }
    }
    if has(&["password"]) {
        return if has(&["reset", "forgot", "forgotten"]) {
            ocsf(ACCOUNT.0, ACCOUNT.1, 4, "Password Reset")
        } else {
            ocsf(ACCOUNT.0, ACCOUNT.1, 3, "Password Change")
        };
    }
    if first == "group" || first == "groups" {
        return if has(&["member", "user"]) && has(&created) {
            ocsf(GROUP.0, GROUP.1, 3, "Add User")
        } else if has(&["member", "user"]) && has(&deleted) {
            ocsf(GROUP.0, GROUP.1, 4, "Remove User")
        } else if has(&created) {
            ocsf(GROUP.0, GROUP.1, 6, "Create")
        } else if has(&deleted) {
            ocsf(GROUP.0, GROUP.1, 5, "Delete")
        } else {
            ocsf(GROUP.0, GROUP.1, 99, "Other")
        };
    }
    if first == "user" || first == "account" || first == "users" {
        let activity = if has(&created) {
            (1, "Create")
        } else if has(&deleted) {
            (6, "Delete")
        } else if has(&["enable", "enabled", "activated", "reactivated"]) {
            (2, "Enable")
        } else if has(&["disable", "disabled", "suspended", "deactivated"]) {
            (5, "Disable")
        } else if has(&["lock", "locked", "lockout"]) {
            (9, "Lock")
        } else {
            return None;
        };
        return ocsf(ACCOUNT.0, ACCOUNT.1, activity.0, activity.1);
    }
    if first == "api" {
        let activity = if has(&["create", "created", "post"]) {
            (1, "Create")
        } else if has(&["read", "get", "list", "viewed", "view"]) {
            (2, "Read")
        } else if has(&["update", "updated", "change", "changed", "put", "patch"]) {
            (3, "Update")
        } else if has(&["delete", "deleted"]) {
            (4, "Delete")
        } else {
            (99, "Other")
        };
        return ocsf(API.0, API.1, activity.0, activity.1);
    }
    None
}

/// A summary template: text with `{path}` placeholders, `{{` and `}}` for literal braces.
///
/// Paths: `type`, `outcome`, `actor.id`, `actor.email`, `actor.name`, `actor.type`,
/// `target.id`, `target.name`, `target.type` (the first target), `source.ip`, and
/// `details.<key>` (a top-level key of `details`; strings render as they are, other values as
/// JSON). A value the event lacks renders as [`MISSING_VALUE`]. Nothing else is evaluated:
/// no expressions, no filters, no loops, so a template cannot run code or read anything but
/// the event. Control characters in values become spaces, and the result is cut to the
/// summary's length limit.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Path),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    Type,
    Outcome,
    ActorId,
    ActorEmail,
    ActorName,
    ActorType,
    TargetId,
    TargetName,
    TargetType,
    SourceIp,
    Details(String),
}

impl Path {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "type" => Self::Type,
            "outcome" => Self::Outcome,
            "actor.id" => Self::ActorId,
            "actor.email" => Self::ActorEmail,
            "actor.name" => Self::ActorName,
            "actor.type" => Self::ActorType,
            "target.id" => Self::TargetId,
            "target.name" => Self::TargetName,
            "target.type" => Self::TargetType,
            "source.ip" => Self::SourceIp,
            _ => {
                let key = text.strip_prefix("details.")?;
                if key.is_empty() || !key.chars().all(is_key_char) {
                    return None;
                }
                Self::Details(key.to_owned())
            }
        })
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    ///
    /// A sentence naming the problem: an unclosed `{`, a lone `}`, or an unknown path.
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, next)| next == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, next)| next == '}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("the `{{` at byte {at} is never closed"));
                    };
                    let path_text = rest[..end].trim();
                    let path = Path::parse(path_text).ok_or_else(|| {
                        format!(
                            "`{{{path_text}}}` is not a known placeholder (type, outcome, \
                             actor.id, actor.email, actor.name, actor.type, target.id, \
                             target.name, target.type, source.ip, details.<key>)"
                        )
                    })?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Value(path));
                    // Skip the path and its `}`.
                    while chars.next_if(|&(idx, _)| idx <= at + 1 + end).is_some() {}
                }
                '}' => {
                    return Err(format!(
                        "the `}}` at byte {at} closes nothing (write `}}}}`)"
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The `details` keys the template reads.
    pub fn details_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Value(Path::Details(key)) => Some(key.as_str()),
            _ => None,
        })
    }

    /// Renders the template for `event`; `None` if the result is blank.
    #[must_use]
    pub fn render(&self, event: &Event) -> Option<Summary> {
        let details = event.details().map(crate::event::Details::to_value);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(path) => {
                    let value = value_of(event, details.as_ref(), path);
                    out.push_str(value.as_deref().unwrap_or(MISSING_VALUE));
                }
            }
        }
        let mut out: String = out
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if out.len() > SUMMARY_MAX_LEN {
            let mut cut = SUMMARY_MAX_LEN;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
        Summary::parse_owned(out).ok()
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

fn value_of(event: &Event, details: Option<&Value>, path: &Path) -> Option<String> {
    let actor = event.actor();
    let target = event.targets().first();
    let text = |value: Option<&str>| value.map(str::to_owned);
    match path {
        Path::Type => Some(event.event_type().as_str().to_owned()),
        Path::Outcome => event.outcome().map(|outcome| outcome.as_str().to_owned()),
        Path::ActorId => text(actor.and_then(|a| a.id()).map(AsRef::as_ref)),
        Path::ActorEmail => text(actor.and_then(|a| a.email()).map(|e| e.as_str())),
        Path::ActorName => text(actor.and_then(|a| a.name()).map(AsRef::as_ref)),
        Path::ActorType => text(actor.and_then(|a| a.actor_type()).map(AsRef::as_ref)),
        Path::TargetId => text(target.and_then(|t| t.id()).map(AsRef::as_ref)),
        Path::TargetName => text(target.and_then(|t| t.name()).map(AsRef::as_ref)),
        Path::TargetType => text(target.and_then(|t| t.target_type()).map(AsRef::as_ref)),
        Path::SourceIp => text(event.source().and_then(|s| s.ip()).map(|ip| ip.as_str())),
        Path::Details(key) => match details?.get(key)? {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        },
    }
}

/// A `details` field an entry requires or describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// The key.
    pub name: String,
    /// Its JSON type.
    pub field_type: FieldType,
    /// Whether it must be present.
    pub required: bool,
}

/// One checked catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The type key.
    pub event_type: EventType,
    /// Numeric code.
    pub code: Option<u64>,
    /// Display name.
    pub name: Name,
    /// Category.
    pub category: Category,
    /// What the event means.
    pub description: Option<Description>,
    /// One of [`SEVERITIES`].
    pub severity: Severity,
    /// The outcome of an event that gives none.
    pub default_outcome: Option<Outcome>,
    /// Summary template.
    pub summary: Option<Template>,
    /// `details` fields.
    pub details: Vec<FieldSpec>,
    /// Still accepted, but should no longer be sent.
    pub deprecated: bool,
    /// OCSF class and activity.
    pub ocsf: Option<Ocsf>,
}

impl Entry {
    /// The entry's OCSF class and activity, else the default of its family
    /// ([`default_ocsf`]).
    #[must_use]
    pub fn effective_ocsf(&self) -> Option<Ocsf> {
        self.ocsf
            .clone()
            .or_else(|| default_ocsf(self.event_type.as_str()))
    }

    /// The catalog fields a record of this type stores.
    #[must_use]
    pub fn fields(&self) -> CatalogFields {
        CatalogFields {
            code: self.code,
            name: Some(self.name.clone()),
            category: Some(self.category.clone()),
            severity: Some(self.severity.clone()),
            description: self.description.clone(),
            published_by: None,
        }
    }

    fn to_doc(&self) -> EntryDoc {
        EntryDoc {
            event_type: self.event_type.as_str().to_owned(),
            code: self.code,
            name: self.name.as_str().to_owned(),
            category: self.category.as_str().to_owned(),
            description: self.description.as_ref().map(|d| d.as_str().to_owned()),
            severity: Some(self.severity.as_str().to_owned()),
            default_outcome: self.default_outcome.map(|o| o.as_str().to_owned()),
            summary: self.summary.as_ref().map(|t| t.as_str().to_owned()),
            details: self
                .details
                .iter()
                .map(|field| FieldDoc {
                    name: field.name.clone(),
                    field_type: field.field_type,
                    required: field.required,
                })
                .collect(),
            deprecated: self.deprecated,
            ocsf: self.ocsf.clone(),
        }
    }

    /// Checks `event`'s `details` against the entry: every problem, by path.
    fn check_details(&self, event: &Event) -> Vec<FieldError> {
        if self.details.is_empty() {
            return Vec::new();
        }
        let details = event.details().map(crate::event::Details::to_value);
        let mut errors = Vec::new();
        for field in &self.details {
            let path = format!("details.{}", field.name);
            match details.as_ref().and_then(|d| d.get(&field.name)) {
                None | Some(Value::Null) if field.required => errors.push(FieldError {
                    field: path,
                    code: codes::REQUIRED,
                    message: format!(
                        "is required by the catalog for `{}` ({})",
                        self.event_type,
                        field.field_type.as_str()
                    ),
                }),
                Some(value) if !value.is_null() && !field.field_type.admits(value) => {
                    errors.push(FieldError {
                        field: path,
                        code: codes::INVALID_TYPE,
                        message: format!(
                            "must be {} {} for `{}`, as the catalog says",
                            article(field.field_type.as_str()),
                            field.field_type.as_str(),
                            self.event_type
                        ),
                    });
                }
                _ => {}
            }
        }
        errors
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A checked catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    id: String,
    version: u64,
    title: Option<String>,
    description: Option<String>,
    entries: Vec<Entry>,
    by_type: HashMap<String, usize>,
}

impl Catalog {
    /// Checks a catalog document whole.
    ///
    /// # Errors
    ///
    /// Every problem, each with its path (`events[3].code`), a stable code and a sentence:
    /// a wrong `format`, an invalid `id`, an invalid or repeated type, a repeated code, an
    /// invalid name, category (or the reserved [`UNCATALOGUED`]), description or severity,
    /// an unknown outcome, a template that does not parse, a repeated or invalid `details`
    /// field, more than [`MAX_ENTRIES`] entries.
    pub fn from_doc(doc: &CatalogDoc) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut error = |field: String, code: &'static str, message: String| {
            errors.push(FieldError {
                field,
                code,
                message,
            });
        };
        if doc.format != FORMAT {
            error(
                "format".into(),
                codes::INVALID_FORMAT,
                format!("must be {FORMAT:?} (is {:?})", doc.format),
            );
        }
        if let Err(message) = check_id(&doc.id) {
            error("id".into(), codes::INVALID_FORMAT, message);
        }
        if doc.events.len() > MAX_ENTRIES {
            error(
                "events".into(),
                codes::TOO_MANY,
                format!(
                    "must hold at most {MAX_ENTRIES} entries (holds {})",
                    doc.events.len()
                ),
            );
        }
        let mut entries = Vec::with_capacity(doc.events.len());
        let mut by_type = HashMap::new();
        let mut codes_seen = HashMap::new();
        for (idx, entry) in doc.events.iter().enumerate() {
            let at = |field: &str| format!("events[{idx}].{field}");
            let mut field_errors = Vec::new();
            let mut take = |field: &str, result: Result<(), ValueError>| {
                if let Err(err) = result {
                    field_errors.push((at(field), err.code, err.message));
                }
            };
            let event_type = EventType::parse(&entry.event_type);
            take(
                "type",
                event_type.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            if let Ok(event_type) = &event_type
                && let Some(first) = by_type.insert(event_type.as_str().to_owned(), idx)
            {
                take(
                    "type",
                    Err(ValueError::new(
                        codes::DUPLICATE,
                        format!("repeats the type of events[{first}]"),
                    )),
                );
            }
            if let Some(code) = entry.code
                && let Some(first) = codes_seen.insert(code, idx)
            {
                take(
                    "code",
                    Err(ValueError::new(
                        codes::DUPLICATE,
                        format!("repeats the code of events[{first}]"),
                    )),
                );
            }
            let name = Name::parse(&entry.name);
            take("name", name.as_ref().map(|_| ()).map_err(Clone::clone));
            let category = Category::parse(&entry.category);
            take(
                "category",
                category.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            if entry.category.trim().eq_ignore_ascii_case(UNCATALOGUED) {
                take(
                    "category",
                    Err(ValueError::new(
                        codes::INVALID_FORMAT,
                        format!("`{UNCATALOGUED}` is reserved for events no catalog defines"),
                    )),
                );
            }
            let description = entry
                .description
                .as_deref()
                .map(Description::parse)
                .transpose();
            take(
                "description",
                description.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            let severity_text = entry.severity.as_deref().unwrap_or("info");
            let severity = if SEVERITIES.contains(&severity_text) {
                Severity::parse(severity_text)
            } else {
                Err(ValueError::new(
                    codes::INVALID_FORMAT,
                    format!(
                        "must be one of {} (is {severity_text:?})",
                        SEVERITIES.join(", ")
                    ),
                ))
            };
            take(
                "severity",
                severity.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            let default_outcome = entry
                .default_outcome
                .as_deref()
                .map(Outcome::parse)
                .transpose();
            take(
                "default_outcome",
                default_outcome.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            let summary = entry.summary.as_deref().map(Template::parse).transpose();
            if let Err(message) = &summary {
                take(
                    "summary",
                    Err(ValueError::new(codes::INVALID_FORMAT, message.clone())),
                );
            }
            let mut names = HashSet::new();
            for (field_idx, field) in entry.details.iter().enumerate() {
                let path = format!("details[{field_idx}].name");
                if field.name.is_empty() || !field.name.chars().all(is_key_char) {
                    field_errors.push((
                        at(&path),
                        codes::INVALID_FORMAT,
                        "must be letters, digits, '_' or '-'".into(),
                    ));
                } else if !names.insert(field.name.as_str()) {
                    field_errors.push((
                        at(&path),
                        codes::DUPLICATE,
                        format!("repeats the field {:?}", field.name),
                    ));
                }
            }
            for (field, code, message) in field_errors {
                error(field, code, message);
            }
            if let (Ok(event_type), Ok(name), Ok(category), Ok(description), Ok(severity)) =
                (event_type, name, category, description, severity)
                && let (Ok(default_outcome), Ok(summary)) = (default_outcome, summary)
            {
                entries.push(Entry {
                    event_type,
                    code: entry.code,
                    name,
                    category,
                    description,
                    severity,
                    default_outcome,
                    summary,
                    details: entry
                        .details
                        .iter()
                        .map(|field| FieldSpec {
                            name: field.name.clone(),
                            field_type: field.field_type,
                            required: field.required,
                        })
                        .collect(),
                    deprecated: entry.deprecated,
                    ocsf: entry.ocsf.clone(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            id: doc.id.clone(),
            version: doc.version,
            title: doc.title.clone(),
            description: doc.description.clone(),
            entries,
            by_type,
        })
    }

    /// The document form (for export), with this catalog's version.
    #[must_use]
    pub fn to_doc(&self) -> CatalogDoc {
        CatalogDoc {
            format: FORMAT.to_owned(),
            id: self.id.clone(),
            version: self.version,
            title: self.title.clone(),
            description: self.description.clone(),
            events: self.entries.iter().map(Entry::to_doc).collect(),
        }
    }

    /// The catalog's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stored version (0 for a catalog never stored).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The same catalog with another version.
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// The title.
    #[must_use]
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// Every entry, in document order.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry of `event_type`.
    #[must_use]
    pub fn get(&self, event_type: &str) -> Option<&Entry> {
        self.by_type.get(event_type).map(|&idx| &self.entries[idx])
    }
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > ID_MAX_LEN {
        return Err(format!("must be 1 to {ID_MAX_LEN} characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("must be lowercase letters, digits and '-'".into());
    }
    Ok(())
}

/// What a tenant does with an event its catalogs do not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Refuse it (422), and refuse an event that lacks a required `details` field.
    Strict,
    /// Store it with the category [`UNCATALOGUED`].
    #[default]
    Lenient,
}

impl Policy {
    /// `strict` or `lenient`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Lenient => "lenient",
        }
    }
}

/// The catalogs a tenant's events are checked against, in order, and its policy.
#[derive(Debug, Clone, Default)]
pub struct Catalogs {
    /// First match wins.
    pub catalogs: Vec<Arc<Catalog>>,
    /// What happens to an event none of them defines.
    pub policy: Policy,
}

impl Catalogs {
    /// The first entry of `event_type`, and the catalog that holds it.
    #[must_use]
    pub fn lookup(&self, event_type: &str) -> Option<(&Catalog, &Entry)> {
        self.catalogs.iter().find_map(|catalog| {
            catalog
                .get(event_type)
                .map(|entry| (catalog.as_ref(), entry))
        })
    }

    /// Applies the catalogs to `event`: the event (with the entry's default outcome and
    /// rendered summary where it gave none) and the fields its record stores.
    ///
    /// # Errors
    ///
    /// Strict policy only: `unknown_type` at `type` for a type no catalog defines;
    /// `required` or `invalid_type` at `details.<key>` for details the entry requires.
    /// Under the lenient policy nothing is refused: an undefined type is stored with the
    /// category [`UNCATALOGUED`], and `details` are stored as sent.
    pub fn apply(&self, event: Event) -> Result<(Event, CatalogFields), Vec<FieldError>> {
        let Some((_, entry)) = self.lookup(event.event_type().as_str()) else {
            return match self.policy {
                Policy::Strict => Err(vec![FieldError {
                    field: "type".into(),
                    code: codes::UNKNOWN_TYPE,
                    message: format!(
                        "`{}` is not in the tenant's catalog, and its policy is strict",
                        event.event_type()
                    ),
                }]),
                Policy::Lenient => Ok((
                    event,
                    CatalogFields {
                        category: Category::parse(UNCATALOGUED).ok(),
                        ..CatalogFields::default()
                    },
                )),
            };
        };
        if self.policy == Policy::Strict {
            let errors = entry.check_details(&event);
            if !errors.is_empty() {
                return Err(errors);
            }
        }
        let mut event = event;
        if event.outcome().is_none()
            && let Some(outcome) = entry.default_outcome
        {
            event = event.with_outcome(outcome);
        }
        if event.summary().is_none()
            && let Some(summary) = entry.summary.as_ref().and_then(|t| t.render(&event))
        {
            event = event.with_summary(summary);
        }
        Ok((event, entry.fields()))
    }
}
