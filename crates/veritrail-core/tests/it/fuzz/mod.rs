//! Fuzz tests of veritrail-core's parsers: properties over millions of generated and
//! mutated inputs, not only "does not panic".
//!
//! Targets (one `#[test]` each, named `fuzz_<target>`):
//!
//! - `fuzz_event_json`: client events as JSON text (valid or near the rules, every JSON
//!   spelling, unknown and repeated fields, wrong types, huge numbers, deep `details`),
//!   sometimes mutated byte by byte, through serde into `EventInput` and `Event::parse`.
//!   serde must read what the text says; `Event::parse` must report exactly the errors the
//!   API's rules give (field path and stable code, in field order) or accept; an accepted
//!   event keeps its texts as sent, is within every limit, and survives its wire form and
//!   the record encoding.
//! - `fuzz_record_bytes`: encoded records, mutated field by field (repeated, dropped,
//!   swapped, re-tagged fields; wrong lengths; nested structs broken) and byte by byte:
//!   `Record::decode` either refuses them with an offset inside the input or accepts bytes
//!   that `encode` writes back exactly; `peek_header` agrees.
//! - `fuzz_canonical_json`: canonical JSON of random values reads back as the same value and
//!   text; mutated texts are refused or canonical; any JSON serde reads has a canonical form
//!   that reads back; `write_f64` is the shortest round trip.
//! - `fuzz_catalog_doc`: catalog documents: `Catalog::from_doc` reports exactly the errors
//!   of the rules, by path and code; accepted catalogs survive `to_doc`, JSON and YAML;
//!   templates render as the rules say; `Catalogs::apply` defaults, renders and refuses as
//!   the rules say.
//! - `fuzz_checkpoint_note`: checkpoints and their signed notes, mutated: a checkpoint body
//!   is accepted only if `to_body` gives it back; `note::open` accepts a note only with the
//!   text that was signed; key strings are accepted only in their own spelling.
//! - `fuzz_webhook_secret`: `whsec_` secrets: accepted only in their own spelling, 24 to 64
//!   bytes, and their signatures verify.
//!
//! `VERITRAIL_FUZZ_CASES` sets the cases per target (the default is CI's short run);
//! `scripts/fuzz` runs them all long in release mode. See `harness.rs` for seeds and replay.

#![allow(
    clippy::cast_possible_truncation,
    reason = "generators cut random numbers down to the width they need"
)]

mod catalogs;
mod harness;
mod inputs;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use veritrail_core::canonical_json::{self, parse_canonical, to_canonical_string, write_f64};
use veritrail_core::catalog::{Catalog, CatalogDoc, Catalogs, Policy, Template, UNCATALOGUED};
use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::{
    Category, Description, Details, Event, EventInput, Identifier, Name, Outcome, Severity,
    TenantId, Timestamp, codes, limits,
};
use veritrail_core::note::{self, NoteSigner, NoteVerifier};
use veritrail_core::record::{self, CatalogFields, MAX_RECORD_BYTES, Record};
use veritrail_core::webhook::WebhookSecret;

use self::harness::{Rng, Verdict, mutate, mutate_text, run};
use self::inputs::{J, JSON_TOKENS};

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/// One event case: the generated value, its JSON text, and whether the text was mutated
/// after writing (then the oracle of serde does not apply, only that of `Event::parse`).
struct EventCase {
    model: J,
    text: Vec<u8>,
    mutated: bool,
}

impl std::fmt::Debug for EventCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mutated: {}, text: {:?}",
            self.mutated,
            String::from_utf8_lossy(&self.text)
        )
    }
}

fn event_case(rng: &mut Rng) -> EventCase {
    let valid = rng.one_in(4);
    let model = inputs::event(rng, valid);
    let mut text = inputs::json_text(rng, &model).into_bytes();
    let mutated = rng.one_in(4);
    if mutated {
        mutate(rng, &mut text, JSON_TOKENS, 4);
    }
    EventCase {
        model,
        text,
        mutated,
    }
}

fn check_event_case(case: &EventCase) -> Verdict {
    let read = serde_json::from_slice::<EventInput>(&case.text);
    if !case.mutated {
        match inputs::expected_input(&case.model) {
            inputs::Serde::Reads(expected) => {
                assert_eq!(read.as_ref().ok(), Some(&*expected), "serde read {read:?}");
            }
            inputs::Serde::Fails => assert!(
                read.is_err(),
                "serde read {read:?}, but the JSON has an unknown or repeated field or a value of the wrong type: {:?}",
                case.model
            ),
            inputs::Serde::Unknown => {}
        }
    }
    match read {
        Ok(input) => inputs::check_wire_event(&input).is_some().into(),
        Err(_) => Verdict::Rejected,
    }
}

#[test]
fn fuzz_event_json() {
    run("event_json", 7000, event_case, check_event_case);
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

/// A valid event from the generator, as the client would send it.
fn valid_event(rng: &mut Rng) -> Event {
    let model = inputs::event(rng, true);
    let text = inputs::json_text(rng, &model);
    let input: EventInput = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("the valid generator made bad JSON ({err}): {text}"));
    Event::parse(input)
        .unwrap_or_else(|err| panic!("the valid generator made an invalid event ({err}): {text}"))
}

fn valid_catalog_fields(rng: &mut Rng) -> CatalogFields {
    let text = |rng: &mut Rng, limit| inputs::text(rng, limit, true);
    CatalogFields {
        code: rng.bool().then(|| {
            let any = rng.next_u64();
            *rng.pick(&[0, 1, u64::MAX, any])
        }),
        name: rng
            .bool()
            .then(|| Name::parse(&text(rng, limits::NAME_MAX_LEN)).expect("name")),
        category: rng
            .bool()
            .then(|| Category::parse(&text(rng, limits::CATEGORY_MAX_LEN)).expect("category")),
        severity: rng
            .bool()
            .then(|| Severity::parse(&text(rng, limits::SEVERITY_MAX_LEN)).expect("severity")),
        description: rng.bool().then(|| {
            Description::parse(&text(rng, limits::DESCRIPTION_MAX_LEN)).expect("description")
        }),
        published_by: rng
            .bool()
            .then(|| Identifier::parse(&text(rng, limits::ID_MAX_LEN)).expect("key id")),
    }
}

fn valid_record(rng: &mut Rng) -> Record {
    let tenant_len = if rng.one_in(4) {
        limits::TENANT_ID_MAX_LEN
    } else {
        rng.range(1, 12)
    };
    let tenant: String = (0..tenant_len)
        .enumerate()
        .map(|(i, _)| {
            let set: &[u8] = if i == 0 {
                b"abcdefghijklmnopqrstuvwxyz0123456789"
            } else {
                b"abcdefghijklmnopqrstuvwxyz0123456789_-"
            };
            char::from(*rng.pick(set))
        })
        .collect();
    let (any_seq, any_time) = (rng.next_u64(), rng.next_u64() as i64);
    let seq = *rng.pick(&[0, 1, u64::MAX, any_seq]);
    let received_at = *rng.pick(&[0, i64::MIN, i64::MAX, any_time]);
    Record::new(
        TenantId::parse(&tenant).expect("tenant"),
        seq,
        Timestamp::from_unix_nanos(received_at),
        valid_event(rng),
        valid_catalog_fields(rng),
    )
}

/// The `(tag, value)` fields of a well-framed level, or `None`.
fn split_fields(mut bytes: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
    let mut fields = Vec::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        let len = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
        let value = rest.get(4..4 + len)?;
        fields.push((tag, value.to_vec()));
        bytes = &rest[4 + len..];
    }
    Some(fields)
}

fn join_fields(fields: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, value) in fields {
        out.push(*tag);
        out.extend(u32::try_from(value.len()).expect("small").to_be_bytes());
        out.extend(value);
    }
    out
}

/// Tags of the nested structs: actor, target, source.
const NESTED: [u8; 3] = [0x07, 0x08, 0x0b];

/// One structural edit of a level's fields, recursing into a nested struct now and then.
fn mutate_fields(rng: &mut Rng, fields: &mut Vec<(u8, Vec<u8>)>, depth: usize) {
    let n = fields.len();
    if n == 0 {
        let (tag, len) = (rng.byte() % 0x14, rng.size(8));
        fields.push((tag, rng.bytes(len)));
        return;
    }
    let at = rng.below(n);
    match rng.below(10) {
        0 => {
            let copy = fields[at].clone();
            let to = if rng.bool() { at + 1 } else { rng.below(n + 1) };
            fields.insert(to, copy);
        }
        1 => {
            fields.remove(at);
        }
        2 if n > 1 => {
            let other = rng.below(n);
            fields.swap(at, other);
        }
        3 => {
            let tag = &mut fields[at].0;
            *tag = match rng.below(3) {
                0 => tag.wrapping_add(1),
                1 => tag.wrapping_sub(1),
                _ => rng.byte() % 0x16,
            };
        }
        4 => {
            let value = &mut fields[at].1;
            mutate(rng, value, JSON_TOKENS, 2);
        }
        5 => {
            // A value of another width: fixed-width fields get a byte more or less.
            let value = &mut fields[at].1;
            if rng.bool() {
                value.push(rng.byte());
            } else {
                value.pop();
            }
        }
        6 => {
            let other = rng.below(n);
            let value = fields[other].1.clone();
            fields[at].1 = value;
        }
        7 if depth == 0 && NESTED.contains(&fields[at].0) => {
            if let Some(mut nested) = split_fields(&fields[at].1) {
                mutate_fields(rng, &mut nested, depth + 1);
                fields[at].1 = join_fields(&nested);
            }
        }
        8 => {
            // An empty value (an empty string, an empty struct, a zero-width number).
            fields[at].1.clear();
        }
        _ => {
            let value = &mut fields[at].1;
            if !value.is_empty() {
                let i = rng.below(value.len());
                value[i] = *rng.pick(&[0x00, 0x7f, 0x20, 0x09, 0xc3, 0xff, b'{', b'"', b'\\']);
            }
        }
    }
}

#[derive(Debug)]
struct RecordCase {
    record: Option<Record>,
    bytes: Vec<u8>,
}

fn record_case(rng: &mut Rng) -> RecordCase {
    if rng.one_in(6) {
        // Random fields with valid framing.
        let mut fields: Vec<(u8, Vec<u8>)> = (0..rng.size(10))
            .map(|_| {
                let value = match rng.below(5) {
                    0 => vec![0; 8],
                    1 => b"acme".to_vec(),
                    2 => b"{}".to_vec(),
                    3 => vec![rng.byte() % 6],
                    _ => {
                        let len = rng.size(12);
                        rng.bytes(len)
                    }
                };
                (rng.byte() % 0x14, value)
            })
            .collect();
        fields.sort_by_key(|(tag, _)| *tag);
        let mut bytes = vec![record::FORMAT_VERSION];
        bytes.extend(join_fields(&fields));
        return RecordCase {
            record: None,
            bytes,
        };
    }
    let record = valid_record(rng);
    let mut bytes = record.encode();
    if rng.one_in(8) {
        return RecordCase {
            record: Some(record),
            bytes,
        };
    }
    if rng.one_in(3) {
        mutate(
            rng,
            &mut bytes,
            &[&[0, 0, 0, 0], &[0xff; 4], &[0x08, 0, 0, 0, 0]],
            3,
        );
    } else if let Some(mut fields) = split_fields(&bytes[1..]) {
        for _ in 0..rng.range(1, 3) {
            mutate_fields(rng, &mut fields, 0);
        }
        bytes.truncate(1);
        bytes.extend(join_fields(&fields));
    }
    RecordCase {
        record: None,
        bytes,
    }
}

fn check_record_case(case: &RecordCase) -> Verdict {
    let bytes = &case.bytes;
    let decoded = Record::decode(bytes);
    let peeked = record::peek_header(bytes);
    if let Some(record) = &case.record {
        assert_eq!(
            decoded.as_ref().ok(),
            Some(record),
            "a valid record decodes"
        );
    }
    match decoded {
        Ok(record) => {
            assert_eq!(
                &record.encode(),
                bytes,
                "accepted bytes are not what encode writes"
            );
            assert_eq!(record.encoded_len(), bytes.len());
            assert!(bytes.len() <= MAX_RECORD_BYTES);
            let (tenant, seq) = peeked.expect("peek_header reads an accepted record");
            assert_eq!((&tenant, seq), (record.tenant(), record.seq()));
            inputs::assert_within_limits(record.event());
            let mut written = Vec::new();
            record.write_json(&mut written);
            assert_eq!(
                written,
                serde_json::to_vec(&record.to_json()).expect("json"),
                "write_json is not serde_json's text of to_json"
            );
            Verdict::Accepted
        }
        Err(err) => {
            assert!(err.offset <= bytes.len(), "{err:?} is past the end");
            assert!(!err.field.is_empty());
            assert!(!err.to_string().is_empty());
            Verdict::Rejected
        }
    }
}

#[test]
fn fuzz_record_bytes() {
    run("record_bytes", 7000, record_case, check_record_case);
}

// ---------------------------------------------------------------------------------------
// Canonical JSON
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct CanonicalCase {
    /// JSON text, as a client might send it.
    text: String,
    /// Mutated canonical text, if any.
    mutated: Option<String>,
    /// A float, by its bits.
    float: f64,
}

fn canonical_case(rng: &mut Rng) -> CanonicalCase {
    let value = if rng.one_in(3) {
        inputs::details(rng)
    } else {
        let mut budget = rng.size(80);
        let depth = rng.range(0, 8);
        inputs::json_value(rng, depth, &mut budget)
    };
    let text = inputs::json_text(rng, &value);
    let mutated = match serde_json::from_str::<Value>(&text) {
        Ok(value) if rng.bool() => {
            let canonical = to_canonical_string(&value);
            Some(mutate_text(rng, &canonical, JSON_TOKENS, 3))
        }
        _ => None,
    };
    let float = loop {
        let float = match rng.below(4) {
            0 => f64::from(rng.below(1 << 20) as u32) / f64::from(1u32 << rng.below(20)),
            1 => (rng.next_u64() % 1_000_000) as f64 * 10f64.powi(rng.range(0, 60) as i32 - 30),
            _ => f64::from_bits(rng.next_u64()),
        };
        if float.is_finite() {
            break float;
        }
    };
    CanonicalCase {
        text,
        mutated,
        float,
    }
}

/// The canonical text of `value` reads back as `value`, and as the same text, at exactly
/// its depth; serde_json reads it as the same value too.
fn assert_canonical_round_trip(value: &Value) {
    let text = to_canonical_string(value);
    let depth = inputs::depth(value);
    let read = parse_canonical(&text, depth)
        .unwrap_or_else(|err| panic!("canonical text {text:?} does not read back: {err}"));
    assert_eq!(&read, value, "{text}");
    assert_eq!(to_canonical_string(&read), text);
    if depth > 0 {
        assert!(
            parse_canonical(&text, depth - 1).is_err(),
            "depth limit of {text}"
        );
    }
    let by_serde: Value = serde_json::from_str(&text).expect("serde_json reads canonical JSON");
    assert_eq!(&by_serde, value);
    assert_eq!(canonical_json::depth(value), depth);
}

fn check_canonical_case(case: &CanonicalCase) -> Verdict {
    let mut accepted = false;
    if let Ok(value) = serde_json::from_str::<Value>(&case.text) {
        if inputs::depth(&value) <= 128 {
            assert_canonical_round_trip(&value);
        }
        if value.is_object() {
            let details = Details::parse(&value);
            assert_eq!(
                details.as_ref().err().map(|err| err.code),
                inputs::details_error(&value),
                "details {}",
                case.text
            );
            if let Ok(details) = details {
                assert_eq!(
                    Details::parse_canonical(details.as_str()).expect("stored details read back"),
                    details
                );
                assert_eq!(details.to_value(), value);
            }
        }
        accepted = true;
    }
    if let Some(text) = &case.mutated {
        if let Ok(value) = parse_canonical(text, 32) {
            assert_eq!(
                &to_canonical_string(&value),
                text,
                "a non-canonical text was accepted"
            );
        }
        match Details::parse_canonical(text) {
            Ok(details) => {
                assert_eq!(details.as_str(), text);
                assert!(text.len() <= limits::MAX_DETAILS_BYTES);
                let value = details.to_value();
                assert!(value.is_object());
                assert!(inputs::depth(&value) <= limits::MAX_DETAILS_DEPTH);
                assert_eq!(&to_canonical_string(&value), text);
            }
            Err(err) => assert!(
                [codes::TOO_LARGE, codes::NOT_CANONICAL, codes::INVALID_TYPE].contains(&err.code),
                "{err:?}"
            ),
        }
    }
    // The float's text is the shortest that reads back as the same bits.
    let mut text = String::new();
    write_f64(case.float, &mut text);
    let back: f64 = text.parse().expect("a float's text parses");
    assert_eq!(back.to_bits(), case.float.to_bits(), "{text}");
    let digits = |t: &str| {
        let mantissa = t.split(['e', 'E']).next().unwrap_or("");
        mantissa
            .trim_start_matches('-')
            .trim_start_matches(['0', '.'])
            .trim_end_matches(['0', '.'])
            .chars()
            .filter(char::is_ascii_digit)
            .count()
    };
    let shortest = format!("{:e}", case.float);
    assert_eq!(
        digits(&text).max(1),
        digits(&shortest).max(1),
        "{text} vs {shortest}"
    );
    let number = Value::from(case.float);
    assert_canonical_round_trip(&number);
    accepted.into()
}

#[test]
fn fuzz_canonical_json() {
    run("canonical_json", 7000, canonical_case, check_canonical_case);
}

// ---------------------------------------------------------------------------------------
// Catalogs
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct CatalogCase {
    doc: CatalogDoc,
    strict: bool,
    events: Vec<EventInput>,
}

fn catalog_case(rng: &mut Rng) -> CatalogCase {
    let valid = rng.bool();
    let doc = catalogs::catalog_doc(rng, valid);
    let events = (0..rng.range(1, 3))
        .map(|_| {
            let model = inputs::event(rng, true);
            let mut input: EventInput =
                serde_json::from_str(&inputs::json_text(rng, &model)).expect("valid JSON");
            if !doc.events.is_empty() && !rng.one_in(4) {
                let entry = rng.pick(&doc.events);
                if veritrail_core::event::EventType::parse(&entry.event_type).is_ok() {
                    input.event_type.clone_from(&entry.event_type);
                }
                // Details with the catalog's fields, of the right type or not.
                let mut details = serde_json::Map::new();
                for field in &entry.details {
                    if rng.one_in(3) {
                        continue;
                    }
                    let value = match rng.below(7) {
                        0 => Value::Null,
                        1 => Value::from(rng.next_u64()),
                        2 => Value::from(0.5),
                        3 => Value::from(inputs::short_text(rng)),
                        4 => Value::Bool(rng.bool()),
                        5 => serde_json::json!({"a": [1]}),
                        _ => serde_json::json!([1, "x"]),
                    };
                    details.insert(field.name.clone(), value);
                }
                if !details.is_empty() || rng.bool() {
                    input.details = Some(Value::Object(details));
                }
            }
            if rng.bool() {
                input.summary = None;
            }
            if rng.bool() {
                input.outcome = None;
            }
            input
        })
        .collect();
    CatalogCase {
        doc,
        strict: rng.bool(),
        events,
    }
}

fn check_catalog_case(case: &CatalogCase) -> Verdict {
    let doc = &case.doc;
    let expected = catalogs::expected_errors(doc);
    let catalog = match Catalog::from_doc(doc) {
        Err(errors) => {
            let got: Vec<(String, &str)> = errors
                .iter()
                .map(|err| (err.field.clone(), err.code))
                .collect();
            assert_eq!(got, expected, "errors of {doc:?}");
            for err in &errors {
                assert!(!err.message.is_empty(), "{err:?}");
            }
            return Verdict::Rejected;
        }
        Ok(catalog) => catalog,
    };
    assert!(
        expected.is_empty(),
        "accepted, but the rules say {expected:?}"
    );
    // Every entry holds what its document said.
    assert_eq!(catalog.entries().len(), doc.events.len());
    for (entry, wire) in catalog.entries().iter().zip(&doc.events) {
        assert_eq!(entry.event_type.as_str(), wire.event_type);
        assert_eq!(entry.code, wire.code);
        assert_eq!(entry.name.as_str(), wire.name);
        assert_eq!(entry.category.as_str(), wire.category);
        assert_eq!(
            entry.description.as_ref().map(|d| d.as_str()),
            wire.description.as_deref()
        );
        assert_eq!(
            entry.severity.as_str(),
            wire.severity.as_deref().unwrap_or("info")
        );
        assert_eq!(
            entry.default_outcome.map(Outcome::as_str),
            wire.default_outcome.as_deref()
        );
        assert_eq!(
            entry.summary.as_ref().map(Template::as_str),
            wire.summary.as_deref()
        );
        assert_eq!(entry.details.len(), wire.details.len());
        assert_eq!(entry.deprecated, wire.deprecated);
        assert_eq!(entry.ocsf, wire.ocsf);
        assert_eq!(catalog.get(&wire.event_type), Some(entry));
    }
    // The document form, JSON and YAML all give the same catalog back.
    let exported = catalog.to_doc();
    assert_eq!(
        Catalog::from_doc(&exported).expect("to_doc is valid"),
        catalog
    );
    let json = serde_json::to_string(&exported).expect("json");
    let from_json: CatalogDoc = serde_json::from_str(&json).expect("read JSON back");
    assert_eq!(from_json, exported);
    let yaml = serde_yaml_ng::to_string(&exported).expect("yaml");
    let from_yaml: CatalogDoc = serde_yaml_ng::from_str(&yaml)
        .unwrap_or_else(|err| panic!("YAML does not read back ({err}):\n{yaml}"));
    assert_eq!(from_yaml, exported, "YAML:\n{yaml}");
    let doc_yaml: CatalogDoc =
        serde_yaml_ng::from_str(&serde_yaml_ng::to_string(doc).expect("yaml")).expect("read");
    assert_eq!(&doc_yaml, doc);
    // Templates render, and catalogs apply, as the rules say.
    let policy = if case.strict {
        Policy::Strict
    } else {
        Policy::Lenient
    };
    let catalogs = Catalogs {
        catalogs: vec![Arc::new(catalog.clone())],
        policy,
    };
    for input in &case.events {
        let event = Event::parse(input.clone()).expect("a valid event");
        for entry in catalog.entries() {
            if let Some(template) = &entry.summary {
                let parts = catalogs::template_parts(template.as_str()).expect("a valid template");
                assert_eq!(
                    template.render(&event).map(|s| s.as_str().to_owned()),
                    catalogs::render(&parts, &event),
                    "template {template:?}"
                );
            }
        }
        check_apply(&catalogs, &catalog, &event);
    }
    Verdict::Accepted
}

/// `Catalogs::apply` of one catalog against the rules.
fn check_apply(catalogs: &Catalogs, catalog: &Catalog, event: &Event) {
    let result = catalogs.apply(event.clone());
    let Some(entry) = catalog.get(event.event_type().as_str()) else {
        match catalogs.policy {
            Policy::Strict => {
                let errors = result.expect_err("strict refuses an unknown type");
                assert_eq!(errors.len(), 1);
                assert_eq!(
                    (errors[0].field.as_str(), errors[0].code),
                    ("type", codes::UNKNOWN_TYPE)
                );
            }
            Policy::Lenient => {
                let (applied, fields) = result.expect("lenient keeps an unknown type");
                assert_eq!(&applied, event);
                assert_eq!(
                    fields.category.as_ref().map(|c| c.as_str()),
                    Some(UNCATALOGUED)
                );
                assert_eq!(
                    (fields.code, &fields.name, &fields.severity),
                    (None, &None, &None)
                );
            }
        }
        return;
    };
    let details = event.details().map(Details::to_value);
    let mut expected_errors = Vec::new();
    if catalogs.policy == Policy::Strict {
        for field in &entry.details {
            let path = format!("details.{}", field.name);
            match details.as_ref().and_then(|d| d.get(&field.name)) {
                None | Some(Value::Null) if field.required => {
                    expected_errors.push((path, codes::REQUIRED));
                }
                Some(value) if !value.is_null() && !catalogs::admits(field.field_type, value) => {
                    expected_errors.push((path, codes::INVALID_TYPE));
                }
                _ => {}
            }
        }
    }
    match result {
        Err(errors) => {
            let got: Vec<_> = errors.iter().map(|e| (e.field.clone(), e.code)).collect();
            assert_eq!(got, expected_errors);
            assert!(!got.is_empty());
        }
        Ok((applied, fields)) => {
            assert!(
                expected_errors.is_empty(),
                "applied, but the rules say {expected_errors:?}"
            );
            assert_eq!(fields, entry.fields());
            let outcome = event.outcome().or(entry.default_outcome);
            assert_eq!(applied.outcome(), outcome);
            let summary = match event.summary() {
                Some(summary) => Some(summary.as_str().to_owned()),
                None => entry.summary.as_ref().and_then(|template| {
                    let parts = catalogs::template_parts(template.as_str()).expect("valid");
                    // The summary renders from the event with its default outcome.
                    let mut with_outcome = event.clone();
                    if let Some(outcome) = outcome {
                        with_outcome = with_outcome.with_outcome(outcome);
                    }
                    catalogs::render(&parts, &with_outcome)
                }),
            };
            assert_eq!(applied.summary().map(|s| s.as_str().to_owned()), summary);
            // Everything else is the event as sent; the record stores it.
            let mut rest = applied.clone();
            if let Some(outcome) = event.outcome() {
                rest = rest.with_outcome(outcome);
            }
            assert_eq!(rest.id(), event.id());
            assert_eq!(rest.details(), event.details());
            let record = Record::new(
                TenantId::parse("t").expect("tenant"),
                0,
                Timestamp::from_unix_nanos(0),
                applied,
                fields,
            );
            assert_eq!(Record::decode(&record.encode()).expect("decode"), record);
        }
    }
}

#[test]
fn fuzz_catalog_doc() {
    run("catalog_doc", 2500, catalog_case, check_catalog_case);
}

// ---------------------------------------------------------------------------------------
// Checkpoints and signed notes
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct NoteCase {
    checkpoint: Checkpoint,
    seed: [u8; 32],
    key_name: String,
    /// The signed note, mutated or not, and other notes and key strings to try.
    note: String,
    body: String,
    vkey: String,
    skey: String,
}

fn line_text(rng: &mut Rng) -> String {
    let n = rng.range(1, 20);
    (0..n)
        .map(|_| {
            loop {
                let c = inputs::any_char(rng);
                if (c as u32) >= 0x20 {
                    break c;
                }
            }
        })
        .collect()
}

fn note_case(rng: &mut Rng) -> NoteCase {
    let origin = match rng.below(3) {
        0 => format!("veritrail/{}", line_text(rng)),
        _ => line_text(rng),
    };
    let extensions: Vec<String> = (0..rng.size(3)).map(|_| line_text(rng)).collect();
    let mut root = [0u8; 32];
    root.iter_mut().for_each(|b| *b = rng.byte());
    let any = rng.next_u64();
    let size = *rng.pick(&[0, 1, u64::MAX, any]);
    let checkpoint = Checkpoint::new(origin, size, root)
        .expect("origin")
        .with_extensions(extensions)
        .expect("extensions");
    let key_name: String = line_text(rng)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '+' && (*c as u32) >= 0x20)
        .collect();
    let key_name = if key_name.is_empty() {
        "k".to_owned()
    } else {
        key_name
    };
    let mut seed = [0u8; 32];
    seed.iter_mut().for_each(|b| *b = rng.byte());
    let signer = NoteSigner::from_seed(&key_name, seed).expect("key name");
    let mut note = signer.sign(&checkpoint.to_body()).expect("sign");
    if rng.one_in(4) {
        // A cosignature by another key, which verifiers that do not know it ignore.
        let other = NoteSigner::from_seed("witness", [7; 32]).expect("name");
        let cosigned = other.sign(&checkpoint.to_body()).expect("sign");
        let line = cosigned.rsplit_once("\n\n").expect("signature").1;
        note.push_str(line);
    }
    let dictionary: &[&[u8]] = &[
        b"\n",
        b"\n\n",
        "\u{2014} ".as_bytes(),
        b"+",
        b"=",
        b"A",
        b" ",
        b"\x7f",
        b"\t",
    ];
    let mutated = |text: &str, rng: &mut Rng| {
        if rng.one_in(5) {
            text.to_owned()
        } else {
            mutate_text(rng, text, dictionary, 3)
        }
    };
    let body = mutated(&checkpoint.to_body(), rng);
    let note = mutated(&note, rng);
    let vkey = mutated(&signer.verifier().to_vkey_string(), rng);
    let skey = mutated(&signer.to_skey_string(), rng);
    NoteCase {
        checkpoint,
        seed,
        key_name,
        note,
        body,
        vkey,
        skey,
    }
}

fn check_note_case(case: &NoteCase) -> Verdict {
    let body = case.checkpoint.to_body();
    assert_eq!(Checkpoint::parse(&body).expect("own body"), case.checkpoint);
    let signer = NoteSigner::from_seed(&case.key_name, case.seed).expect("name");
    let verifier = signer.verifier();
    let mut accepted = false;
    if let Ok(parsed) = Checkpoint::parse(&case.body) {
        assert_eq!(
            parsed.to_body(),
            case.body,
            "a non-canonical body was accepted"
        );
        accepted = true;
    }
    if let Ok(opened) = note::open(&case.note, std::slice::from_ref(&verifier)) {
        assert_eq!(
            opened.text, body,
            "a note opened with other text than was signed"
        );
        assert_eq!(
            opened.verified_by,
            vec![(case.key_name.clone(), verifier.key_id())]
        );
        accepted = true;
    }
    if let Ok(parsed) = NoteVerifier::parse(&case.vkey) {
        assert_eq!(parsed.to_vkey_string(), case.vkey);
        accepted = true;
    }
    if let Ok(parsed) = NoteSigner::parse(&case.skey) {
        assert_eq!(parsed.to_skey_string(), case.skey);
        assert_eq!(
            parsed.verifier(),
            NoteVerifier::parse(&parsed.verifier().to_vkey_string()).expect("vkey")
        );
        accepted = true;
    }
    accepted.into()
}

#[test]
fn fuzz_checkpoint_note() {
    run("checkpoint_note", 5000, note_case, check_note_case);
}

// ---------------------------------------------------------------------------------------
// Webhook secrets
// ---------------------------------------------------------------------------------------

fn secret_case(rng: &mut Rng) -> String {
    let len = match rng.below(4) {
        0 => *rng.pick(&[0, 23, 24, 25, 63, 64, 65]),
        _ => rng.range(0, 80),
    };
    let text = format!("whsec_{}", BASE64.encode(rng.bytes(len)));
    match rng.below(6) {
        0 => text.replace('+', "-").replace('/', "_"),
        1 => text.trim_end_matches('=').to_owned(),
        2 => text.replace("whsec_", ""),
        3 => text,
        _ => mutate_text(
            rng,
            &text,
            &[b"=", b"+", b"/", b"-", b"_", b" ", b"\n", b"whsec_"],
            2,
        ),
    }
}

fn check_secret_case(text: &String) -> Verdict {
    match WebhookSecret::parse(text) {
        Ok(secret) => {
            assert_eq!(
                &secret.to_text(),
                text,
                "a non-canonical secret was accepted"
            );
            let bytes = BASE64.decode(&text["whsec_".len()..]).expect("base64");
            assert!((24..=64).contains(&bytes.len()), "{} bytes", bytes.len());
            let signature = secret.sign("msg_1", 1_700_000_000, b"{}");
            assert!(veritrail_core::webhook::verify(
                &secret,
                "msg_1",
                1_700_000_000,
                b"{}",
                &signature
            ));
            assert!(!veritrail_core::webhook::verify(
                &secret,
                "msg_2",
                1_700_000_000,
                b"{}",
                &signature
            ));
            Verdict::Accepted
        }
        Err(err) => {
            assert!(!err.to_string().is_empty());
            Verdict::Rejected
        }
    }
}

#[test]
fn fuzz_webhook_secret() {
    run("webhook_secret", 20_000, secret_case, check_secret_case);
}
