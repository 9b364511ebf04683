//! Fuzz tests of the server's readers of untrusted input: properties over millions of
//! generated and mutated inputs, not only "does not panic". The harness, the event and
//! catalog generators and their oracles are veritrail-core's (`tests/it/fuzz/`), included
//! here by path.
//!
//! Targets (one `#[test]` each, named `fuzz_<target>`):
//!
//! - `fuzz_ingest_body`: request bodies of `POST /api/v1/events` (one event, arrays of
//!   events and of other JSON, whitespace JSON does not know, mutated bytes) through
//!   `parse_events`: a body is accepted only as the events each element is on its own,
//!   otherwise refused with the stable code of its first problem; `invalid_events` names
//!   exactly the invalid elements by index, each with the errors the API's rules give.
//! - `fuzz_search_query`, `fuzz_count_query`: query strings of search, count and the live
//!   tail, read as axum's `Query` reads them: every parameter arrives as written (however it
//!   is percent-encoded), unknown and repeated ones are refused; `Filters::to_query` gives
//!   the query the rules give, or `invalid_parameter` naming the first bad filter; cursors
//!   round-trip and are accepted only in the spelling the server issues and only with their
//!   own query and order; `interval` reads as the rules say.
//! - `fuzz_activity_params`: the Activity page's filters: read from the URL, their
//!   `search()` is the trimmed filters, and the page's own links (`url`) read back as the
//!   same filters.
//! - `fuzz_catalog_text`: catalog documents as sent to `PUT /api/v1/catalog`, in JSON and
//!   YAML (flow and block styles, anchors and aliases, escapes, mutated bytes), through
//!   `DocFormat::of`, `parse_body` and `check_own`: a document written from a value reads
//!   back as that value, refusals carry `invalid_catalog` and the path of every problem,
//!   accepted catalogs survive storage (JSON) and export (YAML), and reading costs at most a
//!   few times the document's size (no alias bomb).
//! - `fuzz_http_queries` (in `http.rs`): query strings sent to a running server's search,
//!   count and Activity page: nothing answers 5xx.
//!
//! `VERITRAIL_FUZZ_CASES` sets the cases per target; `scripts/fuzz` runs them all long in
//! release mode. See `harness.rs` for seeds and replay.

#[path = "../../../../veritrail-core/tests/it/fuzz/catalogs.rs"]
#[allow(
    dead_code,
    reason = "shared with veritrail-core's fuzz tests, which use all of it"
)]
mod catalogs;
#[path = "../../../../veritrail-core/tests/it/fuzz/harness.rs"]
#[allow(
    dead_code,
    reason = "shared with veritrail-core's fuzz tests, which use all of it"
)]
mod harness;
mod http;
#[path = "../../../../veritrail-core/tests/it/fuzz/inputs.rs"]
#[allow(
    dead_code,
    reason = "shared with veritrail-core's fuzz tests, which use all of it"
)]
mod inputs;

use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use serde_json::Value;
use serde_json::value::RawValue;
use veritrail_api::{CountParams, SearchParams, error_codes};
use veritrail_core::catalog::CatalogDoc;
use veritrail_core::event::{EventInput, Outcome, TenantId, Timestamp};
use veritrail_search::{Order, Query as SearchQuery, TypeFilter};
use veritrail_server::catalogs::{self as service_catalogs, DocFormat};
use veritrail_server::error::ApiError;
use veritrail_server::ingest::parse_events;
use veritrail_server::params::{Cursor, Filters, parse_interval};
use veritrail_server::ui::ActivityParams;

use self::harness::{Rng, Verdict, mutate, mutate_text, run};
use self::inputs::JSON_TOKENS;

// ---------------------------------------------------------------------------------------
// Ingest bodies
// ---------------------------------------------------------------------------------------

struct BodyCase {
    body: Vec<u8>,
    max_events: usize,
}

impl std::fmt::Debug for BodyCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max_events: {}, body: {:?}",
            self.max_events,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// Whitespace before, between and after values: JSON's own, and bytes that only look like
/// it (form feed, no-break space, a byte-order mark).
fn body_space(rng: &mut Rng) -> &'static str {
    if rng.one_in(3) {
        rng.pick::<&str>(&[
            " ", "\n", "\t", "\r\n", "\x0c", "\u{a0}", "\u{feff}", " \n ",
        ])
    } else {
        ""
    }
}

fn body_element(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => rng
            .pick(&[
                "1",
                "\"x\"",
                "null",
                "[]",
                "{}",
                "true",
                "[{}]",
                "[\"id\",\"a.b\"]",
            ])
            .to_string(),
        _ => {
            let valid = rng.one_in(3);
            let event = inputs::event(rng, valid);
            inputs::json_text(rng, &event)
        }
    }
}

fn body_case(rng: &mut Rng) -> BodyCase {
    let mut body = String::new();
    body.push_str(body_space(rng));
    if rng.one_in(4) {
        body.push_str(&body_element(rng));
    } else {
        body.push('[');
        let n = match rng.below(8) {
            0 => 0,
            1 => rng.range(4, 12),
            _ => rng.range(1, 3),
        };
        for idx in 0..n {
            if idx > 0 {
                body.push(',');
            }
            body.push_str(body_space(rng));
            body.push_str(&body_element(rng));
            body.push_str(body_space(rng));
        }
        body.push(']');
    }
    body.push_str(body_space(rng));
    let mut body = body.into_bytes();
    if rng.one_in(4) {
        mutate(rng, &mut body, JSON_TOKENS, 3);
    }
    if rng.one_in(50) {
        body = rng
            .pick(&[
                &b""[..],
                b"   ",
                b"\x0c",
                b"x",
                b"[",
                b"{",
                b"[]",
                b" [ ] ",
                b"\xef\xbb\xbf{}",
            ])
            .to_vec();
    }
    BodyCase {
        body,
        max_events: *rng.pick(&[1, 2, 3, 1000]),
    }
}

/// The codes a serde error of one event may carry.
const SERDE_CODES: &[&str] = &["unknown_field", "invalid_type", error_codes::MALFORMED_JSON];

/// What one element of a body must give: the event, or its errors.
fn element_result(raw: &str) -> Result<veritrail_core::event::Event, Vec<(String, String)>> {
    // An event is a JSON object (not an array of its fields).
    match serde_json::from_str::<veritrail_core::event::ObjectOnly<EventInput>>(raw) {
        Ok(veritrail_core::event::ObjectOnly(mut input)) => {
            // The tenant it names is checked first, beside the event.
            let tenant = input.tenant.take().and_then(|tenant| {
                veritrail_core::event::TenantId::parse(&tenant)
                    .err()
                    .map(|err| ("tenant".to_owned(), err.code.to_owned()))
            });
            let event = inputs::check_wire_event(&input).ok_or_else(|| {
                let invalid = veritrail_core::event::Event::parse(input).expect_err("invalid");
                invalid
                    .errors
                    .into_iter()
                    .map(|err| (err.field, err.code.to_owned()))
                    .collect::<Vec<_>>()
            });
            match (tenant, event) {
                (None, event) => event,
                (Some(tenant), event) => {
                    let mut errors = vec![tenant];
                    errors.extend(event.err().unwrap_or_default());
                    Err(errors)
                }
            }
        }
        // The serde error: its path and code are checked against the message below.
        Err(_) => Err(Vec::new()),
    }
}

fn assert_error(err: &ApiError, status: StatusCode, code: &str) {
    assert_eq!((err.status, err.code), (status, code), "{err:?}");
    assert!(!err.message.is_empty());
}

fn check_body_case(case: &BodyCase) -> Verdict {
    let result = parse_events(&case.body, case.max_events);
    let first = case.body.iter().find(|byte| !byte.is_ascii_whitespace());
    let raws: Vec<&RawValue> = match first {
        None => {
            assert_error(
                &result.expect_err("empty"),
                StatusCode::BAD_REQUEST,
                error_codes::EMPTY_BODY,
            );
            return Verdict::Rejected;
        }
        Some(b'[') => match serde_json::from_slice(&case.body) {
            Ok(raws) => raws,
            Err(_) => {
                assert_error(
                    &result.expect_err("not JSON"),
                    StatusCode::BAD_REQUEST,
                    error_codes::MALFORMED_JSON,
                );
                return Verdict::Rejected;
            }
        },
        Some(b'{') => match serde_json::from_slice(&case.body) {
            Ok(raw) => vec![raw],
            Err(_) => {
                assert_error(
                    &result.expect_err("not JSON"),
                    StatusCode::BAD_REQUEST,
                    error_codes::MALFORMED_JSON,
                );
                return Verdict::Rejected;
            }
        },
        Some(_) => {
            assert_error(
                &result.expect_err("not an object or array"),
                StatusCode::BAD_REQUEST,
                error_codes::MALFORMED_JSON,
            );
            return Verdict::Rejected;
        }
    };
    if raws.is_empty() {
        assert_error(
            &result.expect_err("empty array"),
            StatusCode::BAD_REQUEST,
            error_codes::EMPTY_BODY,
        );
        return Verdict::Rejected;
    }
    if raws.len() > case.max_events {
        assert_error(
            &result.expect_err("too many"),
            StatusCode::PAYLOAD_TOO_LARGE,
            error_codes::TOO_LARGE,
        );
        return Verdict::Rejected;
    }
    let expected: Vec<_> = raws.iter().map(|raw| element_result(raw.get())).collect();
    match result {
        Ok(events) => {
            assert_eq!(events.len(), raws.len());
            for (parsed, expected) in events.iter().zip(&expected) {
                assert_eq!(
                    Some(&parsed.event),
                    expected.as_ref().ok(),
                    "an event the rules refuse was accepted"
                );
            }
            Verdict::Accepted
        }
        Err(err) => {
            assert_error(&err, StatusCode::BAD_REQUEST, error_codes::INVALID_EVENTS);
            let invalid: Vec<usize> = (0..raws.len()).filter(|&i| expected[i].is_err()).collect();
            let named: Vec<usize> = err.events.iter().map(|e| e.index).collect();
            assert_eq!(named, invalid, "the invalid events, by index");
            for event_errors in &err.events {
                let index = event_errors.index;
                assert!(!event_errors.errors.is_empty());
                for error in &event_errors.errors {
                    assert!(!error.message.is_empty(), "{error:?}");
                    assert!(!error.message.contains(" at line "), "{error:?}");
                }
                match &expected[index] {
                    Err(fields) if !fields.is_empty() => {
                        let got: Vec<(String, String)> = event_errors
                            .errors
                            .iter()
                            .map(|e| (e.field.clone(), e.code.clone()))
                            .collect();
                        assert_eq!(&got, fields, "errors of event {index}");
                    }
                    _ => {
                        // A serde error: one, with a code that says what serde said.
                        assert_eq!(event_errors.errors.len(), 1);
                        let error = &event_errors.errors[0];
                        assert!(SERDE_CODES.contains(&error.code.as_str()), "{error:?}");
                        let said = if error.message.starts_with("unknown field") {
                            "unknown_field"
                        } else if error.message.starts_with("invalid type") {
                            "invalid_type"
                        } else {
                            error_codes::MALFORMED_JSON
                        };
                        assert_eq!(error.code, said, "{error:?}");
                    }
                }
            }
            Verdict::Rejected
        }
    }
}

#[test]
fn fuzz_ingest_body() {
    run("ingest_body", 5000, body_case, check_body_case);
}

// ---------------------------------------------------------------------------------------
// Query strings
// ---------------------------------------------------------------------------------------

/// Percent-encodes `text` for a query string, each byte in one of the spellings a client
/// may use: unreserved characters as they are or escaped, hex digits in either case, a
/// space as `+` or `%20`.
fn encode_query_part(rng: &mut Rng, text: &str, out: &mut String) {
    let fancy = rng.one_in(3);
    for &byte in text.as_bytes() {
        let literal = byte.is_ascii_alphanumeric() || b"-._~!$'()*,;:@/?".contains(&byte);
        if literal && !(fancy && rng.one_in(3)) {
            out.push(char::from(byte));
        } else if byte == b' ' && rng.bool() {
            out.push('+');
        } else if rng.bool() {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
}

/// Writes `pairs` as a query string; `spelling_only` keeps its meaning, otherwise one of
/// the things servers must refuse (or not) is slipped in: an unknown or repeated
/// parameter, a broken escape, an empty pair.
fn write_query(rng: &mut Rng, pairs: &[(String, String)], spelling_only: bool) -> (String, bool) {
    let mut parts = Vec::new();
    for (key, value) in pairs {
        let mut part = String::new();
        encode_query_part(rng, key, &mut part);
        if !(value.is_empty() && rng.one_in(3)) {
            part.push('=');
            encode_query_part(rng, value, &mut part);
        }
        parts.push(part);
    }
    let mut changed = false;
    if !spelling_only {
        changed = true;
        match rng.below(6) {
            0 if !pairs.is_empty() => {
                let (key, _) = rng.pick(pairs);
                parts.push(format!("{key}=again"));
            }
            1 => parts.push(
                rng.pick(&["Type=x", "limit2=1", "x", "=x", "tenant=acme"])
                    .to_string(),
            ),
            2 => parts.push(
                rng.pick(&["q=%", "q=%G1", "q=%FF", "q=a%2", "q=%C3"])
                    .to_string(),
            ),
            3 => parts.push(String::new()),
            _ => changed = false,
        }
    }
    if rng.one_in(10) && !parts.is_empty() {
        let at = rng.below(parts.len());
        parts.insert(at, String::new());
    }
    (parts.join("&"), changed)
}

fn type_filter(rng: &mut Rng) -> String {
    let n = rng.range(1, 3);
    let items: Vec<String> = (0..n)
        .map(|_| match rng.below(6) {
            0 => format!("{}.*", inputs::event_type(rng, true)),
            1 => rng
                .pick(&[
                    "",
                    " ",
                    "*",
                    ".*",
                    "a..b",
                    "a.*.*",
                    "ü",
                    "user.*",
                    "user.",
                    "veritrail.*",
                ])
                .to_string(),
            2 => inputs::event_type(rng, false),
            3 => format!(" {} ", inputs::event_type(rng, true)),
            _ => inputs::event_type(rng, true),
        })
        .collect();
    items.join(",")
}

fn free_text(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => String::new(),
        1 => inputs::text(rng, 40, false),
        _ => inputs::short_text(rng),
    }
}

fn code_text(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => rng.next_u64().to_string(),
        _ => rng
            .pick(&[
                "0",
                "42",
                " 7 ",
                "+5",
                "-1",
                "18446744073709551615",
                "18446744073709551616",
                "x",
                "",
                "1e3",
                "0x10",
                "٣",
            ])
            .to_string(),
    }
}

/// The filters shared by search and count, each present or not.
fn filter_pairs(rng: &mut Rng) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut maybe = |rng: &mut Rng, name: &str, make: &dyn Fn(&mut Rng) -> String| {
        if rng.one_in(3) {
            pairs.push((name.to_owned(), make(rng)));
        }
    };
    maybe(rng, "type", &type_filter);
    maybe(rng, "category", &free_text);
    maybe(rng, "code", &code_text);
    maybe(rng, "name", &free_text);
    maybe(rng, "actor", &free_text);
    maybe(rng, "target", &free_text);
    maybe(rng, "outcome", &inputs::outcome);
    maybe(rng, "correlation_id", &free_text);
    maybe(rng, "id", &free_text);
    maybe(rng, "from", &inputs::timestamp);
    maybe(rng, "to", &inputs::timestamp);
    maybe(rng, "q", &free_text);
    pairs
}

/// What `to_query` must make of the filters: the query, or the name of the first invalid
/// filter.
fn expected_query(get: impl Fn(&str) -> Option<String>) -> Result<SearchQuery, &'static str> {
    let text = |name: &str| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut types = Vec::new();
    for item in get("type").unwrap_or_default().split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let filter = match item.strip_suffix(".*") {
            Some(stem) if inputs::event_type_error(stem).is_none() => {
                TypeFilter::Prefix(format!("{stem}."))
            }
            Some(_) => return Err("type"),
            None if inputs::event_type_error(item).is_none() => {
                TypeFilter::Exact(veritrail_core::event::EventType::parse(item).expect("valid"))
            }
            None => return Err("type"),
        };
        types.push(filter);
    }
    let code = match get("code") {
        None => None,
        // Digits only, as the spec's pattern says: no sign, no blanks.
        Some(digits) => {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err("code");
            }
            Some(digits.parse::<u64>().map_err(|_| "code")?)
        }
    };
    let outcome = match get("outcome") {
        None => None,
        Some(text) => Some(
            Outcome::ALL
                .into_iter()
                .find(|o| o.as_str() == text)
                .ok_or("outcome")?,
        ),
    };
    let time = |name: &'static str| -> Result<Option<Timestamp>, &'static str> {
        match get(name) {
            None => Ok(None),
            Some(text) => match inputs::timestamp_meaning(&text) {
                Some(Ok(nanos)) => Ok(Some(Timestamp::from_unix_nanos(nanos))),
                Some(Err(())) => Err(name),
                // Not modelled: take the parser's word for it.
                None => Timestamp::parse_rfc3339(&text).map(Some).map_err(|_| name),
            },
        }
    };
    let from = time("from")?;
    let to = time("to")?;
    Ok(SearchQuery {
        types,
        category: text("category"),
        code,
        name: text("name"),
        actor: text("actor"),
        target: text("target"),
        outcome,
        correlation_id: text("correlation_id"),
        event_id: text("id"),
        from,
        to,
        text: text("q"),
    })
}

/// Checks `to_query` against [`expected_query`].
fn check_filters(filters: &Filters<'_>, get: impl Fn(&str) -> Option<String>) -> bool {
    let got = filters.to_query();
    match expected_query(get) {
        Ok(query) => {
            assert_eq!(got.expect("the rules accept these filters"), query);
            true
        }
        Err(name) => {
            let err = got.expect_err("the rules refuse these filters");
            assert_error(
                &err,
                StatusCode::BAD_REQUEST,
                error_codes::INVALID_PARAMETER,
            );
            assert!(
                err.message
                    .starts_with(&format!("query parameter {name}: ")),
                "{name}: {}",
                err.message
            );
            false
        }
    }
}

/// The parameters the server reads from `query` on `path` (`None`: it refuses them), with
/// their JSON form; they must equal `expected` when the case left the pairs as made.
fn read_params<T>(path: &str, query: &str, expected: Option<T>) -> Option<(T, Value)>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let read = Query::<T>::try_from_uri(&uri(path, query)?);
    if let Some(expected) = expected {
        assert_eq!(
            read.as_ref().map(|Query(params)| params).ok(),
            Some(&expected),
            "{read:?}"
        );
    }
    let Query(params) = read.ok()?;
    let json = serde_json::to_value(&params).expect("json");
    Some((params, json))
}

/// The text of parameter `name` in a parameters' JSON form.
fn text_of(json: &Value, name: &str) -> Option<String> {
    json.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn uri(path: &str, query: &str) -> Option<Uri> {
    format!("http://localhost{path}?{query}").parse().ok()
}

fn tenant() -> TenantId {
    TenantId::parse("acme").expect("tenant")
}

#[derive(Debug)]
struct SearchCase {
    pairs: Vec<(String, String)>,
    query: String,
    changed: bool,
    /// A cursor of the query, mutated or not, and the seq it was made for.
    cursor: String,
    after: u64,
}

fn search_case(rng: &mut Rng) -> SearchCase {
    let mut pairs = filter_pairs(rng);
    if rng.one_in(3) {
        pairs.push((
            "order".to_owned(),
            rng.pick(&["asc", "desc", "ASC", "", "x"]).to_string(),
        ));
    }
    if rng.one_in(3) {
        pairs.push((
            "limit".to_owned(),
            rng.pick(&["0", "1", "50", "1000", "1001", "+5", "-1", "abc", ""])
                .to_string(),
        ));
    }
    let any = rng.below(1_000_000) as u64;
    let after = *rng.pick(&[0, 1, u64::MAX, any]);
    // A cursor for these filters; sometimes the page asks with it.
    let params = search_params(&pairs);
    let fingerprint = Filters::of_search(&params).fingerprint(&tenant(), Order::Desc);
    let issued = Cursor {
        after,
        fingerprint: fingerprint.clone(),
    }
    .encode();
    let cursor = match rng.below(8) {
        0 => issued,
        1 => {
            use base64::Engine as _;
            let after_text = rng
                .pick(&[
                    "+5",
                    "05",
                    "5 ",
                    " 5",
                    "",
                    "-1",
                    "18446744073709551616",
                    "0x5",
                    "5.0",
                ])
                .to_string();
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("v1.{after_text}.{fingerprint}"))
        }
        2 => inputs::short_text(rng),
        _ => mutate_text(rng, &issued, &[b"=", b"+", b"/", b".", b"-", b"_"], 2),
    };
    if rng.one_in(4) {
        pairs.push(("cursor".to_owned(), cursor.clone()));
    }
    shuffle_pairs(rng, &mut pairs);
    let spelling_only = !rng.one_in(8);
    let (query, changed) = write_query(rng, &pairs, spelling_only);
    SearchCase {
        pairs,
        query,
        changed,
        cursor,
        after,
    }
}

fn shuffle_pairs(rng: &mut Rng, pairs: &mut [(String, String)]) {
    inputs::shuffle(rng, pairs);
}

fn search_params(pairs: &[(String, String)]) -> SearchParams {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    SearchParams {
        event_type: get("type"),
        category: get("category"),
        code: get("code"),
        name: get("name"),
        actor: get("actor"),
        target: get("target"),
        outcome: get("outcome"),
        correlation_id: get("correlation_id"),
        id: get("id"),
        from: get("from"),
        to: get("to"),
        q: get("q"),
        order: get("order"),
        limit: get("limit"),
        cursor: get("cursor"),
    }
}

fn check_search_case(case: &SearchCase) -> Verdict {
    let expected = (!case.changed).then(|| search_params(&case.pairs));
    let Some((params, json)) = read_params::<SearchParams>("/api/v1/events", &case.query, expected)
    else {
        return Verdict::Rejected;
    };
    let get = |name: &str| text_of(&json, name);
    let accepted = check_filters(&Filters::of_search(&params), get);
    // Cursors: issued ones decode, only with their own query and order, and only in the
    // spelling the server issues.
    let filters = Filters::of_search(&params);
    let (desc, asc) = (
        filters.fingerprint(&tenant(), Order::Desc),
        filters.fingerprint(&tenant(), Order::Asc),
    );
    assert_ne!(desc, asc);
    let issued = Cursor {
        after: case.after,
        fingerprint: desc.clone(),
    }
    .encode();
    assert_eq!(
        Cursor::decode(&issued, &desc).expect("own cursor"),
        case.after
    );
    let other = Cursor::decode(&issued, &asc).expect_err("another order");
    assert_error(&other, StatusCode::BAD_REQUEST, error_codes::INVALID_CURSOR);
    for text in [Some(case.cursor.as_str()), params.cursor.as_deref()]
        .into_iter()
        .flatten()
    {
        match Cursor::decode(text, &desc) {
            Ok(after) => assert_eq!(
                Cursor {
                    after,
                    fingerprint: desc.clone()
                }
                .encode(),
                text,
                "a cursor the server never issued was accepted"
            ),
            Err(err) => assert_error(&err, StatusCode::BAD_REQUEST, error_codes::INVALID_CURSOR),
        }
    }
    accepted.into()
}

#[test]
fn fuzz_search_query() {
    run("search_query", 12_000, search_case, check_search_case);
}

#[derive(Debug)]
struct CountCase {
    pairs: Vec<(String, String)>,
    query: String,
    changed: bool,
}

fn interval_text(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!(
            "{}{}",
            rng.range(0, 40_000) as i64 - 10,
            rng.pick(&["s", "m", "h", "d"])
        ),
        _ => rng
            .pick(&[
                "15m",
                "1h",
                "1s",
                "0s",
                "366d",
                "367d",
                "31622400s",
                "31622401s",
                "527040m",
                "1.5h",
                "9999999999999999999d",
                "-1m",
                "+5m",
                "m",
                "",
                "5w",
                "1é",
                "é",
                "1H",
                " 1h",
                "1h ",
                "1\u{300}",
                "٣h",
            ])
            .to_string(),
    }
}

fn count_case(rng: &mut Rng) -> CountCase {
    let mut pairs = filter_pairs(rng);
    if rng.one_in(2) {
        pairs.push((
            "group_by".to_owned(),
            rng.pick(&["type", "category", "outcome", "actor", "", "Type", "x"])
                .to_string(),
        ));
    }
    if rng.one_in(2) {
        pairs.push(("interval".to_owned(), interval_text(rng)));
    }
    shuffle_pairs(rng, &mut pairs);
    let spelling_only = !rng.one_in(8);
    let (query, changed) = write_query(rng, &pairs, spelling_only);
    CountCase {
        pairs,
        query,
        changed,
    }
}

fn count_params(pairs: &[(String, String)]) -> CountParams {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    CountParams {
        event_type: get("type"),
        category: get("category"),
        code: get("code"),
        name: get("name"),
        actor: get("actor"),
        target: get("target"),
        outcome: get("outcome"),
        correlation_id: get("correlation_id"),
        id: get("id"),
        from: get("from"),
        to: get("to"),
        q: get("q"),
        group_by: get("group_by"),
        interval: get("interval"),
    }
}

/// The nanoseconds of an `interval`: a decimal number (an optional sign) and a unit `s`,
/// `m`, `h` or `d`, from 1 s to 366 days.
fn expected_interval(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let number = &text[..text.len() - unit.len_utf8()];
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let digits = number.strip_prefix(['+', '-']).unwrap_or(number);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = number.parse().ok()?;
    (n >= 1 && n * seconds <= 366 * 86_400).then(|| n * seconds * 1_000_000_000)
}

fn check_count_case(case: &CountCase) -> Verdict {
    let expected = (!case.changed).then(|| count_params(&case.pairs));
    let Some((params, json)) =
        read_params::<CountParams>("/api/v1/events/count", &case.query, expected)
    else {
        return Verdict::Rejected;
    };
    let get = |name: &str| text_of(&json, name);
    let mut accepted = check_filters(&Filters::of_count(&params), get);
    if let Some(interval) = &params.interval {
        match (parse_interval(interval), expected_interval(interval)) {
            (Ok(nanos), Some(expected)) => assert_eq!(nanos, expected, "{interval:?}"),
            (Err(err), None) => {
                assert_error(
                    &err,
                    StatusCode::BAD_REQUEST,
                    error_codes::INVALID_PARAMETER,
                );
                assert!(
                    err.message.starts_with("query parameter interval: "),
                    "{}",
                    err.message
                );
                accepted = false;
            }
            (got, expected) => panic!("interval {interval:?}: {got:?}, the rules say {expected:?}"),
        }
    }
    accepted.into()
}

#[test]
fn fuzz_count_query() {
    run("count_query", 12_000, count_case, check_count_case);
}

// ---------------------------------------------------------------------------------------
// The Activity page's filters
// ---------------------------------------------------------------------------------------

const ACTIVITY_FIELDS: [&str; 8] = [
    "type", "category", "actor", "target", "outcome", "q", "from", "to",
];

#[derive(Debug)]
struct ActivityCase {
    pairs: Vec<(String, String)>,
    query: String,
    changed: bool,
    /// Dates and paging for the page's own links.
    link_from: String,
    link_to: String,
    link_after: Option<u64>,
}

fn activity_case(rng: &mut Rng) -> ActivityCase {
    let mut pairs = Vec::new();
    for name in ACTIVITY_FIELDS {
        if rng.one_in(3) {
            let value = match name {
                "type" => type_filter(rng),
                "outcome" => inputs::outcome(rng),
                "from" | "to" => inputs::timestamp(rng),
                _ => free_text(rng),
            };
            pairs.push((name.to_owned(), value));
        }
    }
    if rng.one_in(3) {
        pairs.push((
            "after".to_owned(),
            rng.pick(&["0", "17", "18446744073709551615"]).to_string(),
        ));
    }
    if rng.one_in(4) {
        pairs.push((
            "token".to_owned(),
            rng.pick(&["vtv_abc.def", " ", "x y&z=1"]).to_string(),
        ));
    }
    shuffle_pairs(rng, &mut pairs);
    let spelling_only = !rng.one_in(8);
    let (query, changed) = write_query(rng, &pairs, spelling_only);
    ActivityCase {
        pairs,
        query,
        changed,
        link_from: if rng.bool() {
            inputs::timestamp(rng)
        } else {
            String::new()
        },
        link_to: if rng.bool() {
            inputs::timestamp(rng)
        } else {
            String::new()
        },
        link_after: rng.bool().then(|| rng.next_u64()),
    }
}

/// The search of Activity filters: each trimmed, blank ones left out.
fn activity_search(get: impl Fn(&str) -> String) -> SearchParams {
    let some = |name: &str| {
        let value = get(name).trim().to_owned();
        (!value.is_empty()).then_some(value)
    };
    SearchParams {
        event_type: some("type"),
        category: some("category"),
        actor: some("actor"),
        target: some("target"),
        outcome: some("outcome"),
        q: some("q"),
        from: some("from"),
        to: some("to"),
        ..SearchParams::default()
    }
}

fn read_activity(uri: &Uri) -> Option<ActivityParams> {
    Query::<ActivityParams>::try_from_uri(uri)
        .ok()
        .map(|Query(params)| params)
}

fn check_activity_case(case: &ActivityCase) -> Verdict {
    let Some(uri) = uri("/activity", &case.query) else {
        return Verdict::Rejected;
    };
    let read = read_activity(&uri);
    let get = |name: &str| {
        case.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let after_ok = case
        .pairs
        .iter()
        .all(|(k, v)| k != "after" || v.parse::<u64>().is_ok());
    if !case.changed && after_ok {
        let params = read.as_ref().expect("the page reads its filters");
        assert_eq!(params.search(), activity_search(get));
    }
    let Some(params) = read else {
        return Verdict::Rejected;
    };
    let search = params.search();
    let get = |name: &str| {
        serde_json::to_value(&search)
            .expect("json")
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let accepted = check_filters(&Filters::of_search(&search), get);
    // The page's links read back as the same filters, with their dates and paging.
    let link = params.url(&case.link_from, &case.link_to, case.link_after);
    let (path, query) = link.split_once('?').unwrap_or((&link, ""));
    assert!(path == "/activity" || path == "/embed", "{link}");
    let linked = read_activity(&uri_of(path, query)).expect("the page reads its own links");
    let mut expected = search.clone();
    expected.from = Some(case.link_from.trim().to_owned()).filter(|v| !v.is_empty());
    expected.to = Some(case.link_to.trim().to_owned()).filter(|v| !v.is_empty());
    assert_eq!(linked.search(), expected, "{link}");
    assert_eq!(
        linked.url(&case.link_from, &case.link_to, case.link_after),
        link,
        "a link of a link is not the link"
    );
    assert_eq!(
        linked.url("", "", None),
        params.url("", "", None),
        "the link lost a filter or the token: {link}"
    );
    accepted.into()
}

fn uri_of(path: &str, query: &str) -> Uri {
    uri(path, query).unwrap_or_else(|| panic!("the page's link {path}?{query} is not a URI"))
}

#[test]
fn fuzz_activity_params() {
    run(
        "activity_params",
        12_000,
        activity_case,
        check_activity_case,
    );
}

// ---------------------------------------------------------------------------------------
// Catalog documents
// ---------------------------------------------------------------------------------------

/// How a catalog case's body was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Json,
    Yaml,
    /// By hand, with anchors and aliases.
    YamlAliases,
}

#[derive(Debug)]
struct CatalogTextCase {
    doc: CatalogDoc,
    written: Written,
    mutated: bool,
    content_type: Option<&'static str>,
    body: String,
}

/// A YAML double-quoted scalar: every character that could mean something escaped.
fn yaml_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control()
                || c == '\u{feff}'
                || c == '\u{2028}'
                || c == '\u{2029}'
                || (c as u32) >= 0xd800 && (c as u32) < 0xe000 =>
            {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A catalog in YAML written by hand: the first entry's `details` (and sometimes its name)
/// anchored, and later entries made of aliases to it, many of them now and then.
fn yaml_with_aliases(rng: &mut Rng, doc: &CatalogDoc) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "format: {}\nid: {}\n",
        yaml_quoted(&doc.format),
        yaml_quoted(&doc.id)
    ));
    if let Some(title) = &doc.title {
        out.push_str(&format!(
            "title: &t {}\ndescription: *t\n",
            yaml_quoted(title)
        ));
    }
    out.push_str("events:\n");
    let fields = if rng.one_in(4) {
        rng.size(600)
    } else {
        rng.size(8)
    };
    let copies = if rng.one_in(4) {
        rng.size(600)
    } else {
        rng.size(8)
    };
    out.push_str("- {type: fuzz.anchor, name: &n \"Anchored\", category: &c C, details: &d [");
    for i in 0..fields {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("{{name: f{i}, type: string, required: true}}"));
    }
    out.push_str("]}\n");
    for i in 0..copies {
        out.push_str(&format!(
            "- {{type: fuzz.copy{i}, name: *n, category: *c, details: *d}}\n"
        ));
    }
    for entry in &doc.events {
        out.push_str(&format!(
            "- type: {}\n  name: {}\n  category: {}\n",
            yaml_quoted(&entry.event_type),
            yaml_quoted(&entry.name),
            yaml_quoted(&entry.category)
        ));
        if let Some(code) = entry.code {
            out.push_str(&format!("  code: {code}\n"));
        }
        if let Some(summary) = &entry.summary {
            out.push_str(&format!(
                "  summary: {}  # a comment\n",
                yaml_quoted(summary)
            ));
        }
    }
    out
}

fn catalog_text_case(rng: &mut Rng) -> CatalogTextCase {
    let valid = rng.bool();
    let doc = catalogs::catalog_doc(rng, valid);
    let written = *rng.pick(&[
        Written::Json,
        Written::Yaml,
        Written::Yaml,
        Written::YamlAliases,
    ]);
    let mut body = match written {
        Written::Json if rng.bool() => serde_json::to_string_pretty(&doc).expect("json"),
        Written::Json => serde_json::to_string(&doc).expect("json"),
        Written::Yaml => serde_yaml_ng::to_string(&doc).expect("yaml"),
        Written::YamlAliases => yaml_with_aliases(rng, &doc),
    };
    let mutated = rng.one_in(4);
    if mutated {
        body = mutate_text(
            rng,
            &body,
            &[
                b": ", b"- ", b"&a ", b"*a", b"{", b"[", b"\"", b"'", b"#", b"\n  ", b"!!str ",
                b"~", b"---\n", b"\t",
            ],
            3,
        );
    }
    let content_type = *rng.pick(&[
        None,
        None,
        Some("application/json"),
        Some("application/yaml"),
        Some("text/yaml; charset=utf-8"),
        Some("Application/JSON"),
        Some("text/plain"),
    ]);
    CatalogTextCase {
        doc,
        written,
        mutated,
        content_type,
        body,
    }
}

/// The size of a value as a reader must build it: one per node, plus the bytes of every
/// string and key.
fn units(value: &Value) -> usize {
    match value {
        Value::String(text) => 1 + text.len(),
        Value::Array(items) => 1 + items.iter().map(units).sum::<usize>(),
        Value::Object(map) => 1 + map.iter().map(|(k, v)| k.len() + units(v)).sum::<usize>(),
        _ => 1,
    }
}

fn check_catalog_text_case(case: &CatalogTextCase) -> Verdict {
    let body = case.body.as_bytes();
    let format = match DocFormat::of(case.content_type, body) {
        Ok(format) => format,
        Err(err) => {
            assert_error(
                &err,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                error_codes::UNSUPPORTED_MEDIA_TYPE,
            );
            assert_eq!(case.content_type, Some("text/plain"));
            return Verdict::Rejected;
        }
    };
    let parsed = service_catalogs::parse_body::<CatalogDoc>(body, format);
    // (JSON read as YAML need not mean the same: YAML refuses some characters JSON allows
    // unescaped, like U+0080.)
    let as_written = match case.written {
        Written::Json => format == DocFormat::Json,
        Written::Yaml | Written::YamlAliases => format == DocFormat::Yaml,
    };
    let doc = match parsed {
        Err(err) => {
            assert_error(
                &err,
                StatusCode::UNPROCESSABLE_ENTITY,
                error_codes::INVALID_CATALOG,
            );
            assert_eq!(err.errors.len(), 1, "{err:?}");
            assert!(!err.errors[0].message.is_empty());
            if !case.mutated && as_written && case.written != Written::YamlAliases {
                panic!("a document written from a value does not read back: {err:?}");
            }
            return Verdict::Rejected;
        }
        Ok(doc) => doc,
    };
    if !case.mutated && as_written && case.written != Written::YamlAliases {
        assert_eq!(doc, case.doc, "the document read is not the one written");
    }
    // Reading costs at most a few times the document's size: no alias bomb.
    let size = units(&serde_json::to_value(&doc).expect("json"));
    assert!(
        size <= 8 * body.len() + 32 * 1024,
        "a {}-byte document read as {size} units",
        body.len()
    );
    match service_catalogs::check_own(&doc) {
        Err(err) => {
            assert_error(
                &err,
                StatusCode::UNPROCESSABLE_ENTITY,
                error_codes::INVALID_CATALOG,
            );
            let mut expected: Vec<(String, String)> = catalogs::expected_errors(&doc)
                .into_iter()
                .map(|(field, code)| (field, code.to_owned()))
                .collect();
            for (idx, entry) in doc.events.iter().enumerate() {
                if veritrail_core::event::is_reserved_type(&entry.event_type) {
                    expected.push((format!("events[{idx}].type"), "reserved".to_owned()));
                }
            }
            let got: Vec<(String, String)> = err
                .errors
                .iter()
                .map(|e| (e.field.clone(), e.code.clone()))
                .collect();
            assert_eq!(got, expected);
            Verdict::Rejected
        }
        Ok(catalog) => {
            assert!(catalogs::expected_errors(&doc).is_empty());
            // Stored as JSON, read back.
            let stored = serde_json::to_vec(&catalog.to_doc()).expect("json");
            assert_eq!(
                service_catalogs::stored_catalog(&stored, 7).expect("stored catalog reads back"),
                catalog.clone().with_version(7)
            );
            // Exported as YAML, sent again.
            let yaml = service_catalogs::to_yaml(&catalog.to_doc()).expect("yaml");
            let again: CatalogDoc = service_catalogs::parse_body(yaml.as_bytes(), DocFormat::Yaml)
                .unwrap_or_else(|err| panic!("the export does not read back: {err:?}\n{yaml}"));
            assert_eq!(
                service_catalogs::check_own(&again).expect("valid again"),
                catalog
            );
            Verdict::Accepted
        }
    }
}

#[test]
fn fuzz_catalog_text() {
    run(
        "catalog_text",
        1500,
        catalog_text_case,
        check_catalog_text_case,
    );
}
