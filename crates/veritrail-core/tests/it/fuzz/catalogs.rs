//! Generators and oracles of the catalog fuzz targets: `veritrail-catalog/v1` documents
//! (valid, or near the rules: bad ids and formats, repeated types and codes, the reserved
//! category, unknown severities and outcomes, broken templates, bad `details` fields),
//! summary templates, and what `Catalog::from_doc`, `Template::render` and
//! `Catalogs::apply` must make of them, restated from the rules in `catalog.rs`'s docs.
//!
//! Shared with the server's fuzz tests (included with `#[path]`).
#![allow(
    clippy::cast_possible_truncation,
    reason = "generators cut random numbers down to the width they need"
)]

use serde_json::Value;
use veritrail_core::catalog::{
    CatalogDoc, EntryDoc, FORMAT, FieldDoc, FieldType, ID_MAX_LEN, MISSING_VALUE, Ocsf, SEVERITIES,
    UNCATALOGUED,
};
use veritrail_core::event::{Event, limits};

use super::harness::Rng;
use super::inputs::{self, text_error};

const PLACEHOLDERS: &[&str] = &[
    "type",
    "outcome",
    "actor.id",
    "actor.email",
    "actor.name",
    "actor.type",
    "target.id",
    "target.name",
    "target.type",
    "source.ip",
];

const KEY_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";

fn key(rng: &mut Rng) -> String {
    let n = rng.range(1, 8);
    (0..n).map(|_| char::from(*rng.pick(KEY_CHARS))).collect()
}

/// A summary template: text (braces doubled), placeholders with spaces around their paths,
/// `details.<key>`; when not `valid`, also unknown paths, lone braces, unclosed ones.
pub(crate) fn template(rng: &mut Rng, valid: bool) -> String {
    let mut out = String::new();
    for _ in 0..rng.size(6) {
        match rng.below(if valid { 5 } else { 8 }) {
            0 => out.push_str(&format!("{{{}}}", rng.pick(PLACEHOLDERS))),
            1 => out.push_str(&format!("{{ details.{} }}", key(rng))),
            2 => out.push_str(rng.pick::<&str>(&["{{", "}}", "{{}}", "{{type}}"])),
            3 => out.push_str(&format!("{{\t{} }}", rng.pick(PLACEHOLDERS))),
            4 => {
                let text = inputs::short_text(rng)
                    .replace('{', "{{")
                    .replace('}', "}}");
                out.push_str(&text);
            }
            5 => out.push_str(rng.pick::<&str>(&[
                "{",
                "}",
                "{type",
                "{}",
                "{details.}",
                "{details.a b}",
                "{actor}",
                "{Type}",
                "{details.é}",
            ])),
            6 => out.push_str(&inputs::short_text(rng)),
            _ => out.push_str(&format!("{{{}}}", inputs::short_text(rng))),
        }
    }
    out
}

/// A `details` field of an entry.
fn field_doc(rng: &mut Rng, valid: bool) -> FieldDoc {
    let name = if valid || !rng.one_in(6) {
        key(rng)
    } else {
        rng.pick(&["", "a.b", "a b", "é", "-", "_"]).to_string()
    };
    FieldDoc {
        name,
        field_type: *rng.pick(&[
            FieldType::String,
            FieldType::Integer,
            FieldType::Number,
            FieldType::Boolean,
            FieldType::Object,
            FieldType::Array,
        ]),
        required: rng.bool(),
    }
}

/// An entry of a catalog; `types` and `codes` are the ones already used (to repeat one now
/// and then, or to avoid them when `valid`).
fn entry(rng: &mut Rng, valid: bool, types: &[String], codes: &[u64]) -> EntryDoc {
    let bad = |rng: &mut Rng| !valid && rng.one_in(5);
    let event_type = if !valid && !types.is_empty() && rng.one_in(12) {
        rng.pick(types).clone()
    } else if bad(rng) {
        inputs::event_type(rng, false)
    } else {
        loop {
            let candidate = inputs::event_type(rng, true);
            if !types.contains(&candidate) && !veritrail_core::event::is_reserved_type(&candidate) {
                break candidate;
            }
        }
    };
    let code = match rng.below(4) {
        0 => None,
        1 if !valid && !codes.is_empty() => Some(*rng.pick(codes)),
        _ => loop {
            let code = if rng.bool() {
                rng.below(1000) as u64
            } else {
                rng.next_u64()
            };
            if !codes.contains(&code) {
                break Some(code);
            }
        },
    };
    let category = if !valid && rng.one_in(15) {
        rng.pick(&[
            "Uncatalogued",
            "uncatalogued",
            " UNCATALOGUED ",
            "\tUncatalogued",
        ])
        .to_string()
    } else {
        let category_valid = !bad(rng);
        let category = inputs::text(rng, limits::CATEGORY_MAX_LEN, category_valid);
        if category.trim().eq_ignore_ascii_case(UNCATALOGUED) {
            "Other".to_owned()
        } else {
            category
        }
    };
    let mut names: Vec<String> = Vec::new();
    let details = (0..rng.size(4))
        .map(|_| {
            let field_valid = !bad(rng);
            let mut field = field_doc(rng, field_valid);
            if valid {
                while names.contains(&field.name) {
                    field.name.push('x');
                }
            }
            names.push(field.name.clone());
            field
        })
        .collect();
    let name_valid = !bad(rng);
    let name = inputs::text(rng, limits::NAME_MAX_LEN, name_valid);
    let description_valid = !bad(rng);
    let description = rng
        .bool()
        .then(|| inputs::text(rng, limits::DESCRIPTION_MAX_LEN, description_valid));
    let summary_valid = !bad(rng);
    let summary = rng.bool().then(|| template(rng, summary_valid));
    EntryDoc {
        event_type,
        code,
        name,
        category,
        description,
        severity: match rng.below(4) {
            0 => None,
            1 if bad(rng) => Some(
                rng.pick(&["Info", "", "warning", " low", "critical "])
                    .to_string(),
            ),
            _ => Some(rng.pick(&SEVERITIES).to_string()),
        },
        default_outcome: match rng.below(3) {
            0 => None,
            _ if bad(rng) => Some(inputs::outcome(rng)),
            _ => Some(
                rng.pick(&["success", "failure", "pending", "unknown"])
                    .to_string(),
            ),
        },
        summary,
        details,
        deprecated: rng.one_in(5),
        ocsf: rng.one_in(4).then(|| Ocsf {
            class_uid: rng.next_u64() as u32,
            class_name: rng.bool().then(|| inputs::short_text(rng)),
            activity_id: rng.below(100) as u32,
            activity_name: rng.bool().then(|| inputs::short_text(rng)),
        }),
    }
}

/// A catalog document, valid (all of the rules kept) or near them.
pub(crate) fn catalog_doc(rng: &mut Rng, valid: bool) -> CatalogDoc {
    let bad = |rng: &mut Rng| !valid && rng.one_in(8);
    let id = if bad(rng) {
        rng.pick(&["", "UPPER", "a_b", "é", "a.b", " a"])
            .to_string()
            + &"x".repeat(if rng.one_in(3) { ID_MAX_LEN } else { 0 })
    } else {
        let n = if rng.one_in(5) {
            ID_MAX_LEN
        } else {
            rng.range(1, 20)
        };
        (0..n)
            .map(|_| char::from(*rng.pick(b"abcdefghijklmnopqrstuvwxyz0123456789-")))
            .collect()
    };
    let mut types = Vec::new();
    let mut codes = Vec::new();
    let events = (0..rng.size(8))
        .map(|_| {
            let entry = entry(rng, valid, &types, &codes);
            types.push(entry.event_type.clone());
            codes.extend(entry.code);
            entry
        })
        .collect();
    let (title_valid, description_valid) = (rng.bool(), rng.bool());
    let title = rng.bool().then(|| inputs::text(rng, 64, title_valid));
    let description = rng
        .bool()
        .then(|| inputs::text(rng, 200, description_valid));
    CatalogDoc {
        format: if bad(rng) {
            rng.pick(&[
                "veritrail-catalog/v2",
                "",
                "Veritrail-catalog/v1",
                "veritrail-catalog/v1 ",
            ])
            .to_string()
        } else {
            FORMAT.to_owned()
        },
        id,
        version: if rng.bool() { 0 } else { rng.next_u64() },
        // Neither is checked: anything may stand there.
        title,
        description,
        events,
    }
}

// ---------------------------------------------------------------------------------------
// Oracles
// ---------------------------------------------------------------------------------------

fn valid_path(path: &str) -> bool {
    PLACEHOLDERS.contains(&path)
        || path
            .strip_prefix("details.")
            .is_some_and(|key| !key.is_empty() && key.bytes().all(|b| KEY_CHARS.contains(&b)))
}

/// One part of a template as the rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Text(String),
    Value(String),
}

/// The parts of a template: `{{` and `}}` are literal braces; `{` opens a placeholder that
/// the next `}` closes, whose trimmed path must be known; any other `}` is an error.
pub(crate) fn template_parts(source: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") {
            text.push('{');
            rest = &rest[2..];
        } else if rest.starts_with("}}") {
            text.push('}');
            rest = &rest[2..];
        } else if c == '{' {
            let end = rest.find('}')?;
            let path = rest[1..end].trim();
            if !valid_path(path) {
                return None;
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Value(path.to_owned()));
            rest = &rest[end + 1..];
        } else if c == '}' {
            return None;
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Some(parts)
}

/// What a placeholder shows for `event`, if the event has a value there.
fn value_of(event: &Event, path: &str) -> Option<String> {
    let actor = event.actor();
    let target = event.targets().first();
    let owned = |text: Option<&str>| text.map(str::to_owned);
    match path {
        "type" => Some(event.event_type().as_str().to_owned()),
        "outcome" => owned(event.outcome().map(|o| o.as_str())),
        "actor.id" => owned(actor.and_then(|a| a.id()).map(|v| v.as_str())),
        "actor.email" => owned(actor.and_then(|a| a.email()).map(|v| v.as_str())),
        "actor.name" => owned(actor.and_then(|a| a.name()).map(|v| v.as_str())),
        "actor.type" => owned(actor.and_then(|a| a.actor_type()).map(|v| v.as_str())),
        "target.id" => owned(target.and_then(|t| t.id()).map(|v| v.as_str())),
        "target.name" => owned(target.and_then(|t| t.name()).map(|v| v.as_str())),
        "target.type" => owned(target.and_then(|t| t.target_type()).map(|v| v.as_str())),
        "source.ip" => owned(event.source().and_then(|s| s.ip()).map(|v| v.as_str())),
        _ => {
            let key = path.strip_prefix("details.")?;
            match event.details()?.to_value().get(key)? {
                Value::Null => None,
                Value::String(text) => Some(text.clone()),
                other => Some(serde_json::to_string(other).expect("JSON")),
            }
        }
    }
}

/// The summary a template renders for `event`: placeholders filled (`unknown` when the
/// event has no value), control characters made spaces, cut at the summary limit on a
/// character boundary; `None` when blank.
pub(crate) fn render(parts: &[Part], event: &Event) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Value(path) => {
                out.push_str(value_of(event, path).as_deref().unwrap_or(MISSING_VALUE));
            }
        }
    }
    let mut out: String = out
        .chars()
        .map(|c| {
            if matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut cut = out.len().min(limits::SUMMARY_MAX_LEN);
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    (!out.chars().all(char::is_whitespace)).then_some(out)
}

/// The errors `Catalog::from_doc` must report for `doc`, in order, as `(path, code)`.
pub(crate) fn expected_errors(doc: &CatalogDoc) -> Vec<(String, &'static str)> {
    let mut errors: Vec<(String, &'static str)> = Vec::new();
    if doc.format != FORMAT {
        errors.push(("format".into(), "invalid_format"));
    }
    if doc.id.is_empty()
        || doc.id.len() > ID_MAX_LEN
        || !doc
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errors.push(("id".into(), "invalid_format"));
    }
    if doc.events.len() > veritrail_core::catalog::MAX_ENTRIES {
        errors.push(("events".into(), "too_many"));
    }
    let mut valid_types: Vec<&str> = Vec::new();
    let mut codes: Vec<u64> = Vec::new();
    for (idx, entry) in doc.events.iter().enumerate() {
        let at = |field: &str| format!("events[{idx}].{field}");
        let type_error = inputs::event_type_error(&entry.event_type);
        if let Some(code) = type_error {
            errors.push((at("type"), code));
        } else {
            if valid_types.contains(&entry.event_type.as_str()) {
                errors.push((at("type"), "duplicate"));
            }
            valid_types.push(&entry.event_type);
        }
        if let Some(code) = entry.code {
            if codes.contains(&code) {
                errors.push((at("code"), "duplicate"));
            }
            codes.push(code);
        }
        if let Some(code) = text_error(&entry.name, limits::NAME_MAX_LEN) {
            errors.push((at("name"), code));
        }
        if let Some(code) = text_error(&entry.category, limits::CATEGORY_MAX_LEN) {
            errors.push((at("category"), code));
        }
        if entry.category.trim().eq_ignore_ascii_case(UNCATALOGUED) {
            errors.push((at("category"), "invalid_format"));
        }
        if let Some(code) = entry
            .description
            .as_deref()
            .and_then(|d| text_error(d, limits::DESCRIPTION_MAX_LEN))
        {
            errors.push((at("description"), code));
        }
        if !SEVERITIES.contains(&entry.severity.as_deref().unwrap_or("info")) {
            errors.push((at("severity"), "invalid_format"));
        }
        if entry
            .default_outcome
            .as_deref()
            .is_some_and(|o| !["success", "failure", "pending", "unknown"].contains(&o))
        {
            errors.push((at("default_outcome"), "invalid_outcome"));
        }
        if entry
            .summary
            .as_deref()
            .is_some_and(|t| template_parts(t).is_none())
        {
            errors.push((at("summary"), "invalid_format"));
        }
        let mut names: Vec<&str> = Vec::new();
        for (field_idx, field) in entry.details.iter().enumerate() {
            let path = at(&format!("details[{field_idx}].name"));
            if field.name.is_empty() || !field.name.bytes().all(|b| KEY_CHARS.contains(&b)) {
                errors.push((path, "invalid_format"));
            } else if names.contains(&field.name.as_str()) {
                errors.push((path, "duplicate"));
            } else {
                names.push(&field.name);
            }
        }
    }
    errors
}

/// Whether a `details` value has the JSON type a catalog field names.
pub(crate) fn admits(field_type: FieldType, value: &Value) -> bool {
    match field_type {
        FieldType::String => value.is_string(),
        FieldType::Integer => value.is_u64() || value.is_i64(),
        FieldType::Number => value.is_number(),
        FieldType::Boolean => value.is_boolean(),
        FieldType::Object => value.is_object(),
        FieldType::Array => value.is_array(),
    }
}
