//! Generators of the fuzz tests, and the oracles that say what the parsers must make of
//! what they generate.
//!
//! - Text around every limit of [`limits`]: empty, blank, at the limit, one byte over, with
//!   multi-byte characters across the limit, with control characters.
//! - [`J`]: a JSON value as generated, written by [`write_json`] with every spelling JSON
//!   allows (escapes for any character, surrogate pairs, whitespace), so the oracle knows the
//!   meaning of text whose spelling varies.
//! - Audit events as clients send them ([`event`]), valid or not, with unknown and repeated
//!   fields, wrong JSON types, huge numbers and deep `details`.
//! - [`expected_input`]: what serde must read from an event's JSON; [`expected_errors`]: the
//!   field errors `Event::parse` must report for a wire event, restated from the API's rules
//!   (`docs`, the `codes` and `limits`), not from the implementation.
//!
//! Shared with the server's fuzz tests (included with `#[path]`).
#![allow(
    clippy::cast_possible_truncation,
    reason = "generators cut random numbers down to the width they need"
)]

use std::fmt::Write as _;

use serde_json::Value;
use veritrail_core::event::{
    ActorInput, Category, Description, Event, EventInput, Identifier, Name, Severity, SourceInput,
    TargetInput, TenantId, Timestamp, codes, limits,
};
use veritrail_core::record::{CatalogFields, MAX_RECORD_BYTES, Record};

use super::harness::Rng;

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

const WORD: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";

/// Characters outside ASCII worth having: multi-byte of every width, invisible ones, the
/// byte-order mark, a combining mark, the last code point.
const UNICODE: &[char] = &[
    'é',
    'ß',
    'Ω',
    'я',
    '例',
    '😀',
    '𝄞',
    '\u{200b}',
    '\u{200d}',
    '\u{2028}',
    '\u{feff}',
    '\u{301}',
    '\u{fffd}',
    '\u{10ffff}',
    '\u{a0}',
    '\u{3000}',
    '\u{e000}',
    '\u{7ff}',
    '\u{800}',
    '\u{ffff}',
    '\u{10000}',
];

/// Whitespace of every kind (`str::trim` removes all of them); U+0085 is also a control
/// character.
const BLANK: &[char] = &[
    ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}',
    '\u{2028}', '\u{2029}', '\u{202f}', '\u{3000}',
];

/// A control character (general category Cc).
pub(crate) fn control_char(rng: &mut Rng) -> char {
    match rng.below(3) {
        0 => char::from(rng.byte() & 0x1f),
        1 => '\u{7f}',
        _ => char::from_u32(0x80 + rng.below(0x20) as u32).unwrap_or('\u{80}'),
    }
}

/// Any character, biased towards the interesting ones.
pub(crate) fn any_char(rng: &mut Rng) -> char {
    match rng.below(8) {
        0 => control_char(rng),
        1 => *rng.pick(BLANK),
        2 | 3 => *rng.pick(UNICODE),
        4 => loop {
            if let Some(c) = char::from_u32(rng.below(0x11_0000) as u32) {
                break c;
            }
        },
        5 => char::from(0x20 + rng.below(0x5f) as u8),
        _ => char::from(*rng.pick(WORD)),
    }
}

/// A visible character: never blank, never a control character.
fn visible_char(rng: &mut Rng) -> char {
    match rng.below(6) {
        0 => *rng.pick(
            UNICODE
                .iter()
                .filter(|c| !c.is_whitespace())
                .copied()
                .collect::<Vec<_>>()
                .as_slice(),
        ),
        1 => char::from(0x21 + rng.below(0x5e) as u8),
        _ => char::from(*rng.pick(WORD)),
    }
}

/// A length to aim for, given a limit: around the limit, small, or anywhere up to twice it.
pub(crate) fn length_near(rng: &mut Rng, limit: usize) -> usize {
    match rng.below(10) {
        0 => 0,
        1 => limit,
        2 => limit + 1,
        3 => limit.saturating_sub(1),
        4 => limit + rng.range(2, 4),
        5 => rng.range(0, 2 * limit + 2),
        6 => limit.saturating_sub(rng.range(1, 3)),
        _ => rng.range(1, 12),
    }
}

/// Text of about `len` bytes (multi-byte characters may pass it by up to 3 bytes).
fn fill(rng: &mut Rng, len: usize, mut next: impl FnMut(&mut Rng) -> char) -> String {
    let mut out = String::with_capacity(len + 4);
    while out.len() < len {
        out.push(next(rng));
    }
    out
}

/// Free text for a field of at most `limit` bytes: valid when `valid` (never blank, no
/// control character, at most `limit` bytes), otherwise anything near the rules.
pub(crate) fn text(rng: &mut Rng, limit: usize, valid: bool) -> String {
    if valid {
        let len = rng.range(1, limit);
        let len = if rng.one_in(4) {
            limit
        } else {
            len.min(rng.size(limit).max(1))
        };
        let mut out = String::new();
        out.push(visible_char(rng));
        while out.len() < len {
            let c = if rng.one_in(6) {
                ' '
            } else {
                visible_char(rng)
            };
            if out.len() + c.len_utf8() > len {
                break;
            }
            out.push(c);
        }
        return out;
    }
    let len = length_near(rng, limit);
    match rng.below(10) {
        0 => fill(rng, len.max(1), |rng| *rng.pick(BLANK)),
        1 => {
            let mut out = fill(rng, len, visible_char);
            let at = (0..=out.len())
                .filter(|&i| out.is_char_boundary(i))
                .collect::<Vec<_>>();
            out.insert(*rng.pick(&at), control_char(rng));
            out
        }
        2 => fill(rng, len, any_char),
        3 => format!(" {} ", fill(rng, len.saturating_sub(2), visible_char)),
        _ => fill(rng, len, |rng| {
            if rng.one_in(8) {
                ' '
            } else {
                visible_char(rng)
            }
        }),
    }
}

/// An event id (visible ASCII), valid or not.
pub(crate) fn event_id(rng: &mut Rng, valid: bool) -> String {
    let limit = limits::EVENT_ID_MAX_LEN;
    let len = if valid {
        rng.range(1, limit)
    } else {
        length_near(rng, limit)
    };
    let mut out = fill(rng, len, |rng| char::from(0x21 + rng.below(0x5e) as u8));
    if !valid && rng.one_in(3) && !out.is_empty() {
        let at = rng.below(out.len());
        let c = if rng.bool() { ' ' } else { any_char(rng) };
        out.replace_range(at..=at, &c.to_string());
    }
    out
}

/// An event type: dotted segments of `[A-Za-z0-9_-]`, valid or not.
pub(crate) fn event_type(rng: &mut Rng, valid: bool) -> String {
    let limit = limits::EVENT_TYPE_MAX_LEN;
    let target = if valid {
        rng.range(1, limit)
    } else {
        length_near(rng, limit)
    };
    let target = if rng.bool() {
        target.min(rng.range(1, 24))
    } else {
        target
    };
    let seg = |rng: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| {
                char::from(
                    *rng.pick(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"),
                )
            })
            .collect()
    };
    let first = rng.range(1, 8).min(target.max(1));
    let mut out = seg(rng, first);
    while out.len() + 2 <= target {
        let n = rng.range(1, 8).min(target - out.len() - 1);
        out.push('.');
        out.push_str(&seg(rng, n));
    }
    if !valid {
        match rng.below(8) {
            0 => out.push('.'),
            1 => out.insert(0, '.'),
            2 => out.push_str("..x"),
            3 => out.push_str(".*"),
            4 => {
                let at = (0..=out.len())
                    .filter(|&i| out.is_char_boundary(i))
                    .collect::<Vec<_>>();
                out.insert(*rng.pick(&at), any_char(rng));
            }
            5 => out = format!(" {out}"),
            6 => out = String::new(),
            _ => {}
        }
    }
    out
}

/// An email address, valid-looking or not.
pub(crate) fn email(rng: &mut Rng, valid: bool) -> String {
    let limit = limits::EMAIL_MAX_LEN;
    let part = |rng: &mut Rng, n: usize| fill(rng, n, visible_char).replace('@', "a");
    if valid {
        let (local_len, domain_len) = (rng.range(1, 30), rng.range(1, 30));
        let local = part(rng, local_len);
        let domain = part(rng, domain_len);
        let mut out = format!("{local}@{domain}");
        if rng.one_in(4) {
            let pad = limit.saturating_sub(out.len());
            out.push_str(&"d".repeat(pad));
        }
        while out.len() > limit {
            out.pop();
        }
        return out;
    }
    match rng.below(9) {
        0 => format!("@{}", part(rng, 5)),
        1 => format!("{}@", part(rng, 5)),
        2 => format!("{}@{}@{}", part(rng, 2), part(rng, 2), part(rng, 2)),
        3 => format!("{} {}@x", part(rng, 2), part(rng, 2)),
        4 => format!(
            "a@{}",
            "b".repeat(length_near(rng, limit).saturating_sub(2))
        ),
        5 => format!("a@b{}", *rng.pick(BLANK)),
        6 => format!("a{}@b", control_char(rng)),
        7 => part(rng, 6),
        _ => text(rng, limit, false),
    }
}

/// IP address text in many forms: valid ones in every spelling `std` accepts, and near
/// misses.
pub(crate) fn ip(rng: &mut Rng) -> String {
    let v4 = |rng: &mut Rng| std::net::Ipv4Addr::from(rng.next_u64() as u32);
    let group = |rng: &mut Rng| -> u16 { if rng.bool() { 0 } else { rng.next_u64() as u16 } };
    match rng.below(16) {
        0 => v4(rng).to_string(),
        1 => {
            let groups: [u16; 8] = std::array::from_fn(|_| group(rng));
            std::net::Ipv6Addr::from(groups).to_string()
        }
        2 => {
            let groups: Vec<String> = (0..8).map(|_| format!("{:X}", group(rng))).collect();
            groups.join(":")
        }
        3 => {
            let groups: Vec<String> = (0..8).map(|_| format!("{:04x}", group(rng))).collect();
            groups.join(":")
        }
        4 => format!("::ffff:{}", v4(rng)),
        5 => format!("::{}", v4(rng)),
        6 => format!("64:ff9b::{}", v4(rng)),
        7 => "::".to_owned(),
        8 => "::1".to_owned(),
        9 => format!("{}%eth0", std::net::Ipv6Addr::from(rng.next_u64() as u128)),
        10 => format!("[{}]", std::net::Ipv6Addr::from(rng.next_u64() as u128)),
        11 => format!("0{}", v4(rng)),
        12 => format!("{}.1", v4(rng)),
        13 => "1:2:3:4:5:6:7:8:9".to_owned(),
        14 => format!("{} ", v4(rng)),
        _ => text(rng, 40, false),
    }
}

/// An outcome, valid or near.
pub(crate) fn outcome(rng: &mut Rng) -> String {
    rng.pick(&[
        "success", "failure", "pending", "unknown", "Success", "FAILURE", "", " success", "succes",
        "ok",
    ])
    .to_string()
}

/// `Timestamp::to_rfc3339` of a nanosecond count near the interesting places.
fn nanos(rng: &mut Rng) -> i64 {
    match rng.below(8) {
        0 => i64::MIN + rng.below(3) as i64,
        1 => i64::MAX - rng.below(3) as i64,
        2 => 0,
        3 => rng.range(0, 2_000_000_000) as i64 * 1_000_000_000,
        _ => rng.next_u64() as i64,
    }
}

/// An RFC 3339 timestamp in one of the spellings the API accepts, or a near miss.
pub(crate) fn timestamp(rng: &mut Rng) -> String {
    let canonical = Timestamp::from_unix_nanos(nanos(rng)).to_rfc3339();
    match rng.below(14) {
        0 => canonical.replace('T', "t").replace('Z', "z"),
        1 => canonical.replace('T', " "),
        2 => canonical.replace('Z', "+00:00"),
        3 => canonical.replace('Z', "000Z"),
        4 => canonical.replace('Z', "123456Z"),
        5 => {
            let (hour, minute) = (rng.below(24), rng.below(60));
            let sign = if rng.bool() { '+' } else { '-' };
            canonical.replace('Z', &format!("{sign}{hour:02}:{minute:02}"))
        }
        6 => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}Z",
            rng.range(0, 9999),
            rng.range(0, 13),
            rng.range(0, 32),
            rng.range(0, 25),
            rng.range(0, 61),
            rng.range(0, 61),
            if rng.bool() {
                format!(".{}", rng.range(0, 999_999))
            } else {
                String::new()
            }
        ),
        7 => {
            // One nanosecond outside the range, either end.
            let beyond = i128::from(if rng.bool() { i64::MIN } else { i64::MAX })
                + if rng.bool() { -1 } else { 1 };
            i64::try_from(beyond).map_or_else(
                |_| "2262-04-11T23:47:16.854775808Z".to_owned(),
                |n| Timestamp::from_unix_nanos(n).to_rfc3339(),
            )
        }
        8 => canonical.replace(':', ""),
        9 => canonical[..rng.below(canonical.len())].to_owned(),
        10 => canonical.replace("Z", ""),
        11 => "2016-12-31T23:59:60Z".to_owned(),
        12 => text(rng, 30, false),
        _ => canonical,
    }
}

// ---------------------------------------------------------------------------------------
// JSON with every spelling
// ---------------------------------------------------------------------------------------

/// Tokens worth inserting into JSON.
pub(crate) const JSON_TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00",
    b"\\u00",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\"type\":",
    b"\"id\":\"x\",",
    b"\"details\":{",
    b"\"targets\":[",
    b"{\"a\":",
    b"\n",
    b"\"\":",
    b"\xef\xbb\xbf",
    b"\xed\xa0\x80",
];

/// A JSON value as generated: strings and structure known to the oracle, anything else
/// (numbers, booleans, values of the wrong type) as raw text written as it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J {
    Null,
    Str(String),
    /// JSON text written as is: a number, `true`, a value standing where another type is
    /// expected, or a whole `details` object.
    Raw(String),
    Arr(Vec<J>),
    /// Members in the order written; keys may repeat.
    Obj(Vec<(String, J)>),
}

fn whitespace(rng: &mut Rng, out: &mut String) {
    if rng.one_in(6) {
        out.push_str(rng.pick::<&str>(&[" ", "\n", "\t", "\r\n", "  ", " \t\n "]));
    }
}

fn hex4(rng: &mut Rng, unit: u32, out: &mut String) {
    if rng.bool() {
        let _ = write!(out, "\\u{unit:04x}");
    } else {
        let _ = write!(out, "\\u{unit:04X}");
    }
}

/// A JSON string literal for `text`, each character spelled in one of the ways JSON allows.
pub(crate) fn write_string(rng: &mut Rng, text: &str, out: &mut String) {
    out.push('"');
    let fancy = rng.one_in(4);
    for c in text.chars() {
        let escape = fancy && rng.one_in(3);
        match c {
            '"' | '\\' if !escape => {
                out.push('\\');
                out.push(c);
            }
            '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' if !escape => {
                out.push('\\');
                out.push(match c {
                    '\u{8}' => 'b',
                    '\u{c}' => 'f',
                    '\n' => 'n',
                    '\r' => 'r',
                    _ => 't',
                });
            }
            '/' if escape => out.push_str("\\/"),
            c if (c as u32) < 0x20 || c == '"' || c == '\\' || escape => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    hex4(rng, u32::from(*unit), out);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes `value` as JSON text, with random whitespace and string spellings.
pub(crate) fn write_json(rng: &mut Rng, value: &J, out: &mut String) {
    match value {
        J::Null => out.push_str("null"),
        J::Str(text) => write_string(rng, text, out),
        J::Raw(text) => out.push_str(text),
        J::Arr(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                whitespace(rng, out);
                write_json(rng, item, out);
                whitespace(rng, out);
            }
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (idx, (key, item)) in members.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                whitespace(rng, out);
                write_string(rng, key, out);
                whitespace(rng, out);
                out.push(':');
                whitespace(rng, out);
                write_json(rng, item, out);
                whitespace(rng, out);
            }
            out.push('}');
        }
    }
}

/// JSON text of a number, in a spelling that is sometimes odd: huge, tiny, negative zero,
/// exponents of every form, out of `f64` range.
pub(crate) fn number(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => rng
            .pick(&[
                "0",
                "-0",
                "-0.0",
                "0.0",
                "1e2",
                "1E+2",
                "1.0",
                "1.5e-7",
                "0.1",
                "1e16",
                "1e-5",
                "123456789012345678901234567890",
                "-9223372036854775808",
                "-9223372036854775809",
                "18446744073709551615",
                "18446744073709551616",
                "1e400",
                "-1e400",
                "1e-400",
                "4.9e-324",
                "5e-324",
                "2.2250738585072014e-308",
                "1.7976931348623157e308",
                "581340081208420.25",
                "9007199254740993",
                "0.30000000000000004",
            ])
            .to_string(),
        1 => (rng.next_u64() as i64).to_string(),
        2 => rng.next_u64().to_string(),
        3 | 4 => {
            let float = f64::from_bits(rng.next_u64());
            if !float.is_finite() {
                return "1.5".to_owned();
            }
            match rng.below(3) {
                0 => format!("{float:e}"),
                1 => format!("{float:?}"),
                _ => format!("{float}"),
            }
        }
        5 => format!("{}.{}", rng.range(0, 1000), rng.range(0, 1000)),
        6 => format!(
            "{}e{}",
            rng.range(1, 9),
            rng.range(0, 330) as i64 - 330 + rng.range(0, 330) as i64
        ),
        _ => (rng.range(0, 2000) as i64 - 1000).to_string(),
    }
}

/// A random JSON value nested up to `depth` levels (containers), keys and strings from
/// every alphabet, numbers from [`number`].
pub(crate) fn json_value(rng: &mut Rng, depth: usize, budget: &mut usize) -> J {
    if *budget == 0 || depth == 0 || rng.one_in(3) {
        return match rng.below(7) {
            0 => J::Null,
            1 => J::Raw(rng.pick(&["true", "false"]).to_string()),
            2 | 3 => J::Raw(number(rng)),
            _ => J::Str(short_text(rng)),
        };
    }
    let n = rng.size(6).min(*budget);
    *budget -= n;
    if rng.bool() {
        J::Arr((0..n).map(|_| json_value(rng, depth - 1, budget)).collect())
    } else {
        J::Obj(
            (0..n)
                .map(|_| (short_text(rng), json_value(rng, depth - 1, budget)))
                .collect(),
        )
    }
}

/// Text for keys and values: short, from every alphabet, sometimes empty.
pub(crate) fn short_text(rng: &mut Rng) -> String {
    let len = rng.size(10);
    fill(rng, len, any_char)
}

/// A value nested exactly `depth` containers deep (the deepest path alternates objects and
/// arrays).
pub(crate) fn nested(rng: &mut Rng, depth: usize) -> J {
    let mut value = if rng.bool() {
        J::Raw(number(rng))
    } else {
        J::Str(short_text(rng))
    };
    for level in 0..depth {
        value = if level % 2 == 0 || rng.one_in(4) {
            J::Obj(vec![(short_text(rng), value)])
        } else {
            J::Arr(vec![value])
        };
    }
    value
}

/// `details` as a client might send it: usually an object, sometimes nested right at the
/// depth limit or past it, sized right at the size limit, or not an object at all.
pub(crate) fn details(rng: &mut Rng) -> J {
    match rng.below(12) {
        0 => {
            // {"k":"xxx…"} is 8 + n bytes of canonical JSON: aim at the limit ± 2.
            let n = limits::MAX_DETAILS_BYTES - 8 + rng.range(0, 4) - 2;
            J::Obj(vec![("k".to_owned(), J::Str("x".repeat(n)))])
        }
        1 => {
            let depth = *rng.pick(&[
                limits::MAX_DETAILS_DEPTH - 1,
                limits::MAX_DETAILS_DEPTH,
                limits::MAX_DETAILS_DEPTH + 1,
                limits::MAX_DETAILS_DEPTH + 2,
                40,
                126,
                127,
                128,
                129,
                300,
            ]);
            let inner = nested(rng, depth - 1);
            J::Obj(vec![("a".to_owned(), inner)])
        }
        2 => match rng.below(4) {
            0 => J::Raw(number(rng)),
            1 => J::Str(short_text(rng)),
            2 => J::Arr(vec![J::Raw("1".to_owned())]),
            _ => J::Raw("true".to_owned()),
        },
        3 => {
            // Repeated keys: the last one wins in a JSON object read by serde_json.
            let key = short_text(rng);
            J::Obj(vec![
                (key.clone(), J::Raw(number(rng))),
                (key, J::Str(short_text(rng))),
            ])
        }
        _ => {
            let mut budget = rng.size(60);
            let n = rng.size(6);
            J::Obj(
                (0..n)
                    .map(|_| (short_text(rng), json_value(rng, 5, &mut budget)))
                    .collect(),
            )
        }
    }
}

/// The text of `value` as JSON.
pub(crate) fn json_text(rng: &mut Rng, value: &J) -> String {
    let mut out = String::new();
    write_json(rng, value, &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/// A value standing where a string or an object is expected: the wrong JSON type.
fn wrong_type(rng: &mut Rng) -> J {
    J::Raw(
        rng.pick(&[
            "1",
            "true",
            "false",
            "{}",
            "[]",
            "0.5",
            "-1",
            "{\"a\":1}",
            "[\"a\"]",
        ])
        .to_string(),
    )
}

/// A member value for an optional string field.
fn optional_text(rng: &mut Rng, valid: bool, make: impl FnOnce(&mut Rng, bool) -> String) -> J {
    if !valid {
        match rng.below(24) {
            0 => return J::Null,
            1 => return wrong_type(rng),
            _ => {}
        }
    }
    J::Str(make(rng, valid))
}

fn text_field(limit: usize) -> impl Fn(&mut Rng, bool) -> String {
    move |rng, valid| text(rng, limit, valid)
}

/// A member of a generated object: its name and how to make its value (valid or not).
type Member<'a> = (&'a str, &'a dyn Fn(&mut Rng, bool) -> J);

/// An object of some of `fields`, in random order, each from its generator; sometimes an
/// unknown or a repeated member.
fn object(rng: &mut Rng, valid: bool, fields: &[Member<'_>], keep: usize) -> J {
    let mut members: Vec<(String, J)> = Vec::new();
    for (name, make) in fields {
        if rng.below(keep.max(1)) == 0 {
            members.push(((*name).to_owned(), make(rng, valid)));
        }
    }
    shuffle(rng, &mut members);
    if !valid && rng.one_in(30) && !members.is_empty() {
        let copy = members[rng.below(members.len())].clone();
        let at = rng.below(members.len() + 1);
        members.insert(at, copy);
    }
    if !valid && rng.one_in(30) {
        let name = rng
            .pick(&[
                "extra",
                "Type",
                "ID",
                "",
                " id",
                "actor.id",
                "targets[0]",
                "\u{0}",
            ])
            .to_string();
        let at = rng.below(members.len() + 1);
        members.insert(at, (name, J::Str("x".to_owned())));
    }
    J::Obj(members)
}

pub(crate) fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i + 1);
        items.swap(i, j);
    }
}

fn actor(rng: &mut Rng, valid: bool) -> J {
    if !valid && rng.one_in(24) {
        return if rng.bool() { J::Null } else { wrong_type(rng) };
    }
    let fields: [Member<'_>; 6] = [
        ("id", &|rng, v| {
            optional_text(rng, v, text_field(limits::ID_MAX_LEN))
        }),
        ("type", &|rng, v| {
            optional_text(rng, v, text_field(limits::KIND_MAX_LEN))
        }),
        ("name", &|rng, v| {
            optional_text(rng, v, text_field(limits::NAME_MAX_LEN))
        }),
        ("email", &|rng, v| optional_text(rng, v, email)),
        ("ip", &|rng, v| {
            optional_text(rng, v, |rng, v| if v { random_ip(rng) } else { ip(rng) })
        }),
        ("user_agent", &|rng, v| {
            optional_text(rng, v, text_field(limits::USER_AGENT_MAX_LEN))
        }),
    ];
    object(rng, valid, &fields, 2)
}

/// A valid IP address in `std`'s spelling.
fn random_ip(rng: &mut Rng) -> String {
    if rng.bool() {
        std::net::Ipv4Addr::from(rng.next_u64() as u32).to_string()
    } else {
        let groups: [u16; 8] =
            std::array::from_fn(|_| if rng.bool() { 0 } else { rng.next_u64() as u16 });
        std::net::Ipv6Addr::from(groups).to_string()
    }
}

fn target(rng: &mut Rng, valid: bool) -> J {
    if !valid && rng.one_in(40) {
        return if rng.bool() { J::Null } else { wrong_type(rng) };
    }
    let fields: [Member<'_>; 3] = [
        ("id", &|rng, v| {
            optional_text(rng, v, text_field(limits::ID_MAX_LEN))
        }),
        ("type", &|rng, v| {
            optional_text(rng, v, text_field(limits::KIND_MAX_LEN))
        }),
        ("name", &|rng, v| {
            optional_text(rng, v, text_field(limits::NAME_MAX_LEN))
        }),
    ];
    let object = object(rng, valid, &fields, 2);
    match object {
        J::Obj(members) if valid && members.is_empty() => J::Obj(vec![(
            "id".to_owned(),
            J::Str(text(rng, limits::ID_MAX_LEN, true)),
        )]),
        other => other,
    }
}

fn source(rng: &mut Rng, valid: bool) -> J {
    if !valid && rng.one_in(24) {
        return if rng.bool() { J::Null } else { wrong_type(rng) };
    }
    let fields: [Member<'_>; 4] = [
        ("service", &|rng, v| {
            optional_text(rng, v, text_field(limits::SERVICE_MAX_LEN))
        }),
        ("component", &|rng, v| {
            optional_text(rng, v, text_field(limits::COMPONENT_MAX_LEN))
        }),
        ("version", &|rng, v| {
            optional_text(rng, v, text_field(limits::VERSION_MAX_LEN))
        }),
        ("ip", &|rng, v| {
            optional_text(rng, v, |rng, v| if v { random_ip(rng) } else { ip(rng) })
        }),
    ];
    object(rng, valid, &fields, 2)
}

fn targets(rng: &mut Rng, valid: bool) -> J {
    if !valid && rng.one_in(24) {
        return if rng.bool() { J::Null } else { wrong_type(rng) };
    }
    let n = match rng.below(10) {
        0 => limits::MAX_TARGETS,
        1 if !valid => limits::MAX_TARGETS + rng.range(1, 2),
        2 if !valid => limits::MAX_TARGETS - 1,
        _ => rng.size(4),
    };
    J::Arr((0..n).map(|_| target(rng, valid)).collect())
}

/// A client's event as JSON: valid (every field within the rules) when `valid`, otherwise
/// each field valid most of the time and anything near the rules otherwise.
pub(crate) fn event(rng: &mut Rng, valid: bool) -> J {
    // Each field is invalid with a small chance, so that events with one or two bad fields
    // (and many good ones) are common.
    let bad = |rng: &mut Rng| valid || !rng.one_in(6);
    let mut members: Vec<(String, J)> = Vec::new();
    let mut add = |rng: &mut Rng, name: &str, value: J, present_one_in: usize| {
        if rng.below(present_one_in) == 0 {
            members.push((name.to_owned(), value));
        }
    };
    let v = bad(rng);
    let value = optional_text(rng, v, event_id);
    add(rng, "id", value, 2);
    let v = bad(rng);
    let value = if v {
        J::Str(event_type(rng, true))
    } else if rng.one_in(6) {
        wrong_type(rng)
    } else {
        J::Str(event_type(rng, false))
    };
    let always = if valid || !rng.one_in(10) { 1 } else { 2 };
    add(rng, "type", value, always);
    let v = bad(rng);
    let value = if v {
        J::Str(Timestamp::from_unix_nanos(nanos(rng)).to_rfc3339())
    } else {
        optional_text(rng, false, |rng, _| timestamp(rng))
    };
    add(rng, "occurred_at", value, 2);
    let v = bad(rng);
    let value = actor(rng, v);
    add(rng, "actor", value, 2);
    let v = bad(rng);
    let value = targets(rng, v);
    add(rng, "targets", value, 2);
    let v = bad(rng);
    let value = if v {
        J::Str(
            rng.pick(&["success", "failure", "pending", "unknown"])
                .to_string(),
        )
    } else {
        optional_text(rng, false, |rng, _| outcome(rng))
    };
    add(rng, "outcome", value, 3);
    let v = bad(rng);
    let value = optional_text(rng, v, text_field(limits::ID_MAX_LEN));
    add(rng, "correlation_id", value, 3);
    let v = bad(rng);
    let value = source(rng, v);
    add(rng, "source", value, 3);
    let v = bad(rng);
    let value = optional_text(rng, v, text_field(limits::SUMMARY_MAX_LEN));
    add(rng, "summary", value, 3);
    let v = bad(rng);
    let value = if v { valid_details(rng) } else { details(rng) };
    add(rng, "details", value, 2);
    shuffle(rng, &mut members);
    if !valid && rng.one_in(40) && !members.is_empty() {
        let copy = members[rng.below(members.len())].clone();
        members.push(copy);
    }
    if !valid && rng.one_in(40) {
        let name = rng
            .pick(&["extra", "Type", "seq", "", "details "])
            .to_string();
        members.push((name, J::Str("x".to_owned())));
    }
    J::Obj(members)
}

/// `details` that are always valid: an object, shallow enough, small enough.
pub(crate) fn valid_details(rng: &mut Rng) -> J {
    let mut budget = rng.size(40);
    let n = rng.size(6);
    let members = (0..n)
        .map(|_| (short_text(rng), json_value(rng, 4, &mut budget)))
        .collect::<Vec<_>>();
    let value = J::Obj(members);
    if contains_out_of_range(&value) {
        J::Obj(Vec::new())
    } else {
        value
    }
}

/// Whether serde_json refuses a number of `value` (out of the range of `f64`).
fn contains_out_of_range(value: &J) -> bool {
    to_value(value).is_err()
}

// ---------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------

/// What serde must read from an event's JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Serde {
    /// Exactly this wire event.
    Reads(Box<EventInput>),
    /// An error: an unknown or repeated field, or a value of the wrong JSON type.
    Fails,
    /// The oracle does not model it (a struct written as an array, nesting at serde_json's
    /// recursion limit).
    Unknown,
}

/// The JSON text of a generated value, as `serde_json` reads it (for `details`).
fn to_value(value: &J) -> Result<Value, ()> {
    Ok(match value {
        J::Null => Value::Null,
        J::Str(text) => Value::String(text.clone()),
        J::Raw(text) => serde_json::from_str(text).map_err(|_| ())?,
        J::Arr(items) => Value::Array(items.iter().map(to_value).collect::<Result<_, _>>()?),
        J::Obj(members) => {
            let mut map = serde_json::Map::new();
            for (key, item) in members {
                // The last of repeated keys wins, as when serde_json reads the text.
                map.insert(key.clone(), to_value(item)?);
            }
            Value::Object(map)
        }
    })
}

/// Nesting depth counted as `canonical_json::depth` does, restated.
pub(crate) fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn j_depth(value: &J) -> usize {
    match value {
        J::Arr(items) => 1 + items.iter().map(j_depth).max().unwrap_or(0),
        J::Obj(members) => 1 + members.iter().map(|(_, v)| j_depth(v)).max().unwrap_or(0),
        J::Raw(text) => text.bytes().filter(|b| matches!(b, b'[' | b'{')).count(),
        _ => 0,
    }
}

/// A fold of the per-field verdicts: any failure fails, else anything unknown is unknown.
#[derive(Default)]
struct Reading {
    fails: bool,
    unknown: bool,
}

impl Reading {
    fn opt_string(&mut self, value: &J) -> Option<String> {
        match value {
            J::Null => None,
            J::Str(text) => Some(text.clone()),
            J::Raw(text) if text.starts_with('"') => {
                serde_json::from_str::<String>(text).map_or_else(|_| self.fail(), Some)
            }
            _ => self.fail(),
        }
    }

    fn fail<T>(&mut self) -> Option<T> {
        self.fails = true;
        None
    }

    /// The members of a struct, once each, known ones only; `None` when it is not an
    /// object.
    fn members<'a>(&mut self, value: &'a J, known: &[&str]) -> Option<Vec<(&'a str, &'a J)>> {
        let members = match value {
            J::Obj(members) => members,
            J::Raw(text) if text == "{}" => return Some(Vec::new()),
            J::Raw(text) if text.starts_with('{') => {
                // Only `{"a":1}` stands there: an unknown field.
                return self.fail();
            }
            J::Raw(text) if text.starts_with('[') => {
                // serde reads a struct from an array too (by position); not modelled.
                self.unknown = true;
                return None;
            }
            J::Arr(_) => {
                self.unknown = true;
                return None;
            }
            _ => return self.fail(),
        };
        let mut seen = Vec::new();
        for (key, _) in members {
            if !known.contains(&key.as_str()) || seen.contains(&key.as_str()) {
                self.fails = true;
            }
            seen.push(key.as_str());
        }
        Some(members.iter().map(|(k, v)| (k.as_str(), v)).collect())
    }

    fn actor(&mut self, value: &J) -> Option<ActorInput> {
        if *value == J::Null {
            return None;
        }
        let members = self.members(value, &["id", "type", "name", "email", "ip", "user_agent"])?;
        let mut actor = ActorInput::default();
        for (key, item) in members {
            let text = self.opt_string(item);
            match key {
                "id" => actor.id = text,
                "type" => actor.actor_type = text,
                "name" => actor.name = text,
                "email" => actor.email = text,
                "ip" => actor.ip = text,
                "user_agent" => actor.user_agent = text,
                _ => {}
            }
        }
        Some(actor)
    }

    fn target(&mut self, value: &J) -> TargetInput {
        let mut target = TargetInput::default();
        let Some(members) = self.members(value, &["id", "type", "name"]) else {
            return target;
        };
        for (key, item) in members {
            let text = self.opt_string(item);
            match key {
                "id" => target.id = text,
                "type" => target.target_type = text,
                "name" => target.name = text,
                _ => {}
            }
        }
        target
    }

    fn source(&mut self, value: &J) -> Option<SourceInput> {
        if *value == J::Null {
            return None;
        }
        let members = self.members(value, &["service", "component", "version", "ip"])?;
        let mut source = SourceInput::default();
        for (key, item) in members {
            let text = self.opt_string(item);
            match key {
                "service" => source.service = text,
                "component" => source.component = text,
                "version" => source.version = text,
                "ip" => source.ip = text,
                _ => {}
            }
        }
        Some(source)
    }
}

/// What serde must read from the JSON of `event` (as [`write_json`] spells it, any way).
pub(crate) fn expected_input(event: &J) -> Serde {
    let mut reading = Reading::default();
    let known = [
        "id",
        "type",
        "occurred_at",
        "actor",
        "targets",
        "outcome",
        "correlation_id",
        "source",
        "summary",
        "details",
    ];
    let Some(members) = reading.members(event, &known) else {
        return if reading.unknown {
            Serde::Unknown
        } else {
            Serde::Fails
        };
    };
    let mut input = EventInput::default();
    for (key, value) in members {
        match key {
            "id" => input.id = reading.opt_string(value),
            "type" => match value {
                J::Str(text) => input.event_type.clone_from(text),
                _ => reading.fails = true,
            },
            "occurred_at" => input.occurred_at = reading.opt_string(value),
            "actor" => input.actor = reading.actor(value),
            "targets" => match value {
                J::Null => input.targets = Vec::new(),
                J::Raw(text) if text == "[]" => input.targets = Vec::new(),
                J::Arr(items) => {
                    input.targets = items.iter().map(|item| reading.target(item)).collect();
                }
                _ => reading.fails = true,
            },
            "outcome" => input.outcome = reading.opt_string(value),
            "correlation_id" => input.correlation_id = reading.opt_string(value),
            "source" => input.source = reading.source(value),
            "summary" => input.summary = reading.opt_string(value),
            "details" => {
                // serde_json stops at 128 levels for the whole event: near it, not modelled.
                if j_depth(value) >= 120 {
                    reading.unknown = true;
                }
                match to_value(value) {
                    Ok(Value::Null) => input.details = None,
                    Ok(details) => input.details = Some(details),
                    Err(()) => reading.fails = true,
                }
            }
            _ => {}
        }
    }
    if reading.fails {
        Serde::Fails
    } else if reading.unknown {
        Serde::Unknown
    } else {
        Serde::Reads(Box::new(input))
    }
}

/// Control characters: general category Cc.
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// The error code of free text of at most `max` bytes, if any.
pub(crate) fn text_error(value: &str, max: usize) -> Option<&'static str> {
    if value.len() > max {
        Some("too_long")
    } else if value.chars().all(char::is_whitespace) {
        Some("empty")
    } else if value.chars().any(is_control) {
        Some("invalid_characters")
    } else {
        None
    }
}

pub(crate) fn event_id_error(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("empty")
    } else if value.len() > limits::EVENT_ID_MAX_LEN {
        Some("too_long")
    } else if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Some("invalid_format")
    } else {
        None
    }
}

/// The error of a non-blank event type, if any.
pub(crate) fn event_type_error(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("empty")
    } else if value.len() > limits::EVENT_TYPE_MAX_LEN {
        Some("too_long")
    } else if value.split('.').any(|segment| {
        segment.is_empty()
            || !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }) {
        Some("invalid_format")
    } else {
        None
    }
}

fn email_error(value: &str) -> Option<&'static str> {
    text_error(value, limits::EMAIL_MAX_LEN).or_else(|| {
        let shaped = value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        }) && !value.chars().any(char::is_whitespace);
        (!shaped).then_some("invalid_email")
    })
}

fn ip_error(value: &str) -> Option<&'static str> {
    value
        .parse::<std::net::IpAddr>()
        .is_err()
        .then_some("invalid_ip")
}

/// What an RFC 3339 timestamp means: `Some(Ok(nanos))`, `Some(Err(()))` for a text that
/// breaks the rules or is outside the range, `None` for spellings not modelled (leap
/// seconds, `-00:00`, anything not shaped like a date-time).
pub(crate) fn timestamp_meaning(text: &str) -> Option<Result<i64, ()>> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let shaped = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !shaped {
        return None;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return None;
    };
    let mut rest = &text[19..];
    let mut fraction = 0i64;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let n = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Some(Err(()));
        }
        let digits9: String = after_dot[..n]
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        fraction = digits9.parse().ok()?;
        rest = &after_dot[n..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        "-00:00" => return None,
        _ => {
            let o = rest.as_bytes();
            if o.len() != 6 || !matches!(o[0], b'+' | b'-') || o[3] != b':' {
                return None;
            }
            let (Some(oh), Some(om)) = (
                rest.get(1..3).and_then(|t| t.parse::<i64>().ok()),
                rest.get(4..6).and_then(|t| t.parse::<i64>().ok()),
            ) else {
                return None;
            };
            if oh > 23 || om > 59 {
                return Some(Err(()));
            }
            let secs = oh * 3600 + om * 60;
            if o[0] == b'-' { -secs } else { secs }
        }
    };
    if second == 60 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[usize::try_from(month - 1).unwrap_or(0)]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Some(Err(()));
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = i128::from(days) * 86_400 + i128::from(hour * 3600 + minute * 60 + second)
        - i128::from(offset_secs);
    let nanos = secs * 1_000_000_000 + i128::from(fraction);
    Some(i64::try_from(nanos).map_err(|_| ()))
}

/// The field errors `Event::parse` must report for `input`, in field order, as
/// `(path, code)`; `None` for an `occurred_at` whose meaning is not modelled (its error is
/// then checked apart).
pub(crate) fn expected_errors(input: &EventInput) -> Option<Vec<(String, &'static str)>> {
    let mut errors = Vec::new();
    let mut push = |field: &str, code: Option<&'static str>| {
        if let Some(code) = code {
            errors.push((field.to_owned(), code));
        }
    };
    push("id", input.id.as_deref().and_then(event_id_error));
    if input.event_type.chars().all(char::is_whitespace) {
        push("type", Some("required"));
    } else {
        push("type", event_type_error(&input.event_type));
    }
    let mut modelled = true;
    if let Some(text) = &input.occurred_at {
        match timestamp_meaning(text) {
            Some(Ok(_)) => {}
            Some(Err(())) => push("occurred_at", Some("invalid_timestamp")),
            None => modelled = false,
        }
    }
    if let Some(actor) = &input.actor {
        push(
            "actor.id",
            actor
                .id
                .as_deref()
                .and_then(|t| text_error(t, limits::ID_MAX_LEN)),
        );
        push(
            "actor.type",
            actor
                .actor_type
                .as_deref()
                .and_then(|t| text_error(t, limits::KIND_MAX_LEN)),
        );
        push(
            "actor.name",
            actor
                .name
                .as_deref()
                .and_then(|t| text_error(t, limits::NAME_MAX_LEN)),
        );
        push("actor.email", actor.email.as_deref().and_then(email_error));
        push("actor.ip", actor.ip.as_deref().and_then(ip_error));
        push(
            "actor.user_agent",
            actor
                .user_agent
                .as_deref()
                .and_then(|t| text_error(t, limits::USER_AGENT_MAX_LEN)),
        );
    }
    if input.targets.len() > limits::MAX_TARGETS {
        push("targets", Some("too_many"));
    } else {
        for (idx, target) in input.targets.iter().enumerate() {
            let id = target
                .id
                .as_deref()
                .and_then(|t| text_error(t, limits::ID_MAX_LEN));
            let kind = target
                .target_type
                .as_deref()
                .and_then(|t| text_error(t, limits::KIND_MAX_LEN));
            let name = target
                .name
                .as_deref()
                .and_then(|t| text_error(t, limits::NAME_MAX_LEN));
            push(&format!("targets[{idx}].id"), id);
            push(&format!("targets[{idx}].type"), kind);
            push(&format!("targets[{idx}].name"), name);
            let has_field = [
                target.id.is_some(),
                target.target_type.is_some(),
                target.name.is_some(),
            ];
            if !has_field.contains(&true) {
                push(&format!("targets[{idx}]"), Some("empty"));
            }
        }
    }
    push(
        "outcome",
        input.outcome.as_deref().and_then(|t| {
            (!["success", "failure", "pending", "unknown"].contains(&t))
                .then_some("invalid_outcome")
        }),
    );
    push(
        "correlation_id",
        input
            .correlation_id
            .as_deref()
            .and_then(|t| text_error(t, limits::ID_MAX_LEN)),
    );
    if let Some(source) = &input.source {
        push(
            "source.service",
            source
                .service
                .as_deref()
                .and_then(|t| text_error(t, limits::SERVICE_MAX_LEN)),
        );
        push(
            "source.component",
            source
                .component
                .as_deref()
                .and_then(|t| text_error(t, limits::COMPONENT_MAX_LEN)),
        );
        push(
            "source.version",
            source
                .version
                .as_deref()
                .and_then(|t| text_error(t, limits::VERSION_MAX_LEN)),
        );
        push("source.ip", source.ip.as_deref().and_then(ip_error));
    }
    push(
        "summary",
        input
            .summary
            .as_deref()
            .and_then(|t| text_error(t, limits::SUMMARY_MAX_LEN)),
    );
    push("details", input.details.as_ref().and_then(details_error));
    modelled.then_some(errors)
}

/// The error of `details` sent as `value`, if any.
pub(crate) fn details_error(value: &Value) -> Option<&'static str> {
    if !value.is_object() {
        Some("invalid_type")
    } else if depth(value) > limits::MAX_DETAILS_DEPTH {
        Some("too_deep")
    } else if veritrail_core::canonical_json::to_canonical_string(value).len()
        > limits::MAX_DETAILS_BYTES
    {
        Some("too_large")
    } else {
        None
    }
}

/// Asserts that `event` holds exactly what `input` said (texts kept as sent, IP addresses
/// as their addresses, `details` as the same JSON value).
pub(crate) fn assert_event_is_input(event: &Event, input: &EventInput) {
    let text = |value: Option<&str>| value.map(str::to_owned);
    assert_eq!(text(event.id().map(|id| id.as_str())), input.id, "id");
    assert_eq!(event.event_type().as_str(), input.event_type, "type");
    if let Some(ts) = &input.occurred_at
        && let Some(Ok(nanos)) = timestamp_meaning(ts)
    {
        assert_eq!(
            event.occurred_at().map(Timestamp::unix_nanos),
            Some(nanos),
            "occurred_at {ts:?}"
        );
    }
    assert_eq!(event.occurred_at().is_some(), input.occurred_at.is_some());
    let ip_of =
        |text: Option<&String>| text.map(|t| t.parse::<std::net::IpAddr>().expect("a valid IP"));
    let actor_present = input
        .actor
        .as_ref()
        .is_some_and(|a| *a != ActorInput::default());
    assert_eq!(event.actor().is_some(), actor_present, "actor");
    if let (Some(actor), Some(wire)) = (event.actor(), &input.actor) {
        assert_eq!(text(actor.id().map(AsRef::as_ref)), wire.id);
        assert_eq!(text(actor.actor_type().map(AsRef::as_ref)), wire.actor_type);
        assert_eq!(text(actor.name().map(AsRef::as_ref)), wire.name);
        assert_eq!(text(actor.email().map(|e| e.as_str())), wire.email);
        assert_eq!(actor.ip().map(|ip| ip.addr()), ip_of(wire.ip.as_ref()));
        assert_eq!(text(actor.user_agent().map(AsRef::as_ref)), wire.user_agent);
    }
    assert_eq!(event.targets().len(), input.targets.len(), "targets");
    for (target, wire) in event.targets().iter().zip(&input.targets) {
        assert_eq!(text(target.id().map(AsRef::as_ref)), wire.id);
        assert_eq!(
            text(target.target_type().map(AsRef::as_ref)),
            wire.target_type
        );
        assert_eq!(text(target.name().map(AsRef::as_ref)), wire.name);
    }
    assert_eq!(
        text(event.outcome().map(|o| o.as_str())),
        input.outcome,
        "outcome"
    );
    assert_eq!(
        text(event.correlation_id().map(AsRef::as_ref)),
        input.correlation_id
    );
    let source_present = input
        .source
        .as_ref()
        .is_some_and(|s| *s != SourceInput::default());
    assert_eq!(event.source().is_some(), source_present, "source");
    if let (Some(source), Some(wire)) = (event.source(), &input.source) {
        assert_eq!(text(source.service().map(AsRef::as_ref)), wire.service);
        assert_eq!(text(source.component().map(AsRef::as_ref)), wire.component);
        assert_eq!(text(source.version().map(AsRef::as_ref)), wire.version);
        assert_eq!(source.ip().map(|ip| ip.addr()), ip_of(wire.ip.as_ref()));
    }
    assert_eq!(
        text(event.summary().map(AsRef::as_ref)),
        input.summary,
        "summary"
    );
    assert_eq!(
        event.details().map(|d| d.to_value()),
        input.details,
        "details"
    );
    if let (Some(details), Some(value)) = (event.details(), &input.details) {
        assert_eq!(
            details.as_str(),
            veritrail_core::canonical_json::to_canonical_string(value)
        );
    }
}

/// Asserts that every part of `event` is within its limit in [`limits`].
pub(crate) fn assert_within_limits(event: &Event) {
    let at_most = |what: &str, len: usize, max: usize| {
        assert!(len <= max, "{what} is {len} bytes, over its limit of {max}");
    };
    if let Some(id) = event.id() {
        at_most("id", id.as_str().len(), limits::EVENT_ID_MAX_LEN);
    }
    at_most(
        "type",
        event.event_type().as_str().len(),
        limits::EVENT_TYPE_MAX_LEN,
    );
    if let Some(actor) = event.actor() {
        for (what, value, max) in [
            (
                "actor.id",
                actor.id().map(|v| v.as_str()),
                limits::ID_MAX_LEN,
            ),
            (
                "actor.type",
                actor.actor_type().map(|v| v.as_str()),
                limits::KIND_MAX_LEN,
            ),
            (
                "actor.name",
                actor.name().map(|v| v.as_str()),
                limits::NAME_MAX_LEN,
            ),
            (
                "actor.email",
                actor.email().map(|v| v.as_str()),
                limits::EMAIL_MAX_LEN,
            ),
            (
                "actor.ip",
                actor.ip().map(|v| v.as_str()),
                limits::IP_MAX_LEN,
            ),
            (
                "actor.user_agent",
                actor.user_agent().map(|v| v.as_str()),
                limits::USER_AGENT_MAX_LEN,
            ),
        ] {
            at_most(what, value.map_or(0, str::len), max);
        }
    }
    at_most("targets", event.targets().len(), limits::MAX_TARGETS);
    for target in event.targets() {
        at_most(
            "target.id",
            target.id().map_or(0, |v| v.as_str().len()),
            limits::ID_MAX_LEN,
        );
        at_most(
            "target.type",
            target.target_type().map_or(0, |v| v.as_str().len()),
            limits::KIND_MAX_LEN,
        );
        at_most(
            "target.name",
            target.name().map_or(0, |v| v.as_str().len()),
            limits::NAME_MAX_LEN,
        );
    }
    if let Some(id) = event.correlation_id() {
        at_most("correlation_id", id.as_str().len(), limits::ID_MAX_LEN);
    }
    if let Some(source) = event.source() {
        for (what, value, max) in [
            (
                "source.service",
                source.service().map(|v| v.as_str()),
                limits::SERVICE_MAX_LEN,
            ),
            (
                "source.component",
                source.component().map(|v| v.as_str()),
                limits::COMPONENT_MAX_LEN,
            ),
            (
                "source.version",
                source.version().map(|v| v.as_str()),
                limits::VERSION_MAX_LEN,
            ),
            (
                "source.ip",
                source.ip().map(|v| v.as_str()),
                limits::IP_MAX_LEN,
            ),
        ] {
            at_most(what, value.map_or(0, str::len), max);
        }
    }
    if let Some(summary) = event.summary() {
        at_most("summary", summary.as_str().len(), limits::SUMMARY_MAX_LEN);
    }
    if let Some(details) = event.details() {
        at_most("details", details.as_str().len(), limits::MAX_DETAILS_BYTES);
        at_most(
            "details depth",
            depth(&details.to_value()),
            limits::MAX_DETAILS_DEPTH,
        );
    }
}

// ---------------------------------------------------------------------------------------
// The properties of a wire event
// ---------------------------------------------------------------------------------------

/// Every stable code an event field error may carry.
const EVENT_CODES: &[&str] = &[
    codes::REQUIRED,
    codes::EMPTY,
    codes::TOO_LONG,
    codes::INVALID_CHARACTERS,
    codes::INVALID_FORMAT,
    codes::INVALID_TYPE,
    codes::TOO_MANY,
    codes::TOO_LARGE,
    codes::TOO_DEEP,
    codes::INVALID_TIMESTAMP,
    codes::INVALID_IP,
    codes::INVALID_EMAIL,
    codes::INVALID_OUTCOME,
];

/// Validates a wire event and checks the result against the rules: exactly the expected
/// errors, or an event that holds what was sent, within every limit, that survives its
/// wire form and a record. Returns the event when accepted.
pub(crate) fn check_wire_event(input: &EventInput) -> Option<Event> {
    let expected = expected_errors(input);
    let result = Event::parse(input.clone());
    let got: Vec<(String, &'static str)> = match &result {
        Ok(_) => Vec::new(),
        Err(invalid) => {
            assert!(!invalid.errors.is_empty(), "an InvalidEvent without errors");
            for err in &invalid.errors {
                assert!(EVENT_CODES.contains(&err.code), "unknown code {err:?}");
                assert!(!err.message.is_empty(), "{err:?} has no message");
            }
            invalid
                .errors
                .iter()
                .map(|err| (err.field.clone(), err.code))
                .collect()
        }
    };
    match expected {
        Some(expected) => assert_eq!(got, expected, "errors of {input:?}"),
        None => {
            // The timestamp is outside the oracle's model: its error, if any, is the only
            // one that may differ.
            let without: Vec<_> = got
                .iter()
                .filter(|(field, _)| field != "occurred_at")
                .cloned()
                .collect();
            let mut probe = input.clone();
            probe.occurred_at = None;
            assert_eq!(
                without,
                expected_errors(&probe).expect("modelled"),
                "errors of {input:?}"
            );
            if let Some((_, code)) = got.iter().find(|(field, _)| field == "occurred_at") {
                assert_eq!(*code, codes::INVALID_TIMESTAMP);
            }
        }
    }
    let event = result.ok()?;
    assert_event_is_input(&event, input);
    assert_within_limits(&event);
    // The wire form, as JSON, gives the same event back.
    let wire = serde_json::to_vec(&EventInput::from(&event)).expect("serialise");
    let again: EventInput = serde_json::from_slice(&wire).expect("read the wire form back");
    assert_eq!(Event::parse(again).expect("valid again"), event);
    // So does a record, byte for byte, even with every catalog field at its limit.
    for catalog in [CatalogFields::default(), largest_catalog_fields()] {
        let record = Record::new(
            TenantId::parse("t").expect("tenant"),
            u64::MAX,
            Timestamp::from_unix_nanos(i64::MIN),
            event.clone(),
            catalog,
        );
        let bytes = record.encode();
        assert!(bytes.len() <= MAX_RECORD_BYTES);
        assert_eq!(bytes.len(), record.encoded_len());
        assert_eq!(Record::decode(&bytes).expect("decode"), record);
    }
    Some(event)
}

fn largest_catalog_fields() -> CatalogFields {
    CatalogFields {
        code: Some(u64::MAX),
        name: Some(Name::parse(&"n".repeat(limits::NAME_MAX_LEN)).expect("name")),
        category: Some(Category::parse(&"c".repeat(limits::CATEGORY_MAX_LEN)).expect("category")),
        severity: Some(Severity::parse(&"s".repeat(limits::SEVERITY_MAX_LEN)).expect("severity")),
        description: Some(
            Description::parse(&"d".repeat(limits::DESCRIPTION_MAX_LEN)).expect("description"),
        ),
        published_by: Some(Identifier::parse(&"p".repeat(limits::ID_MAX_LEN)).expect("key id")),
    }
}
