//! The request parameters the API and the UI share, parsed the same way everywhere: the
//! search filters ([`Filters`]) and the query they become, the paging [`Cursor`], a count's
//! interval and boolean flags.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use veritrail_api::{BundleParams, CountParams, ExportParams, SearchParams, error_codes};
use veritrail_core::event::{Outcome, TenantId, Timestamp};
use veritrail_search::{Order, Query, TypeFilter};

use crate::error::ApiError;

/// A boolean flag: absent, `false` or `0` is false; `true`, `1` or empty (`?proof`) is true.
///
/// # Errors
///
/// `invalid_parameter` naming `name`.
pub fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(other) => Err(ApiError::invalid_parameter(
            name,
            format!("{other:?} is not true or false"),
        )),
    }
}

/// Parses `15m`, `1h`, `30s`, `1d` into nanoseconds: the count's `interval` (public for the
/// fuzz tests).
///
/// # Errors
///
/// `invalid_parameter` naming `interval`.
pub fn parse_interval(text: &str) -> Result<i64, ApiError> {
    let invalid = || {
        ApiError::invalid_parameter(
            "interval",
            format!("{text:?} is not a number and a unit s, m, h or d (like 15m)"),
        )
    };
    // The unit is the last character, whatever its width (a multi-byte one is no unit).
    let unit_at = text.char_indices().last().ok_or_else(invalid)?.0;
    let (number, unit) = text.split_at(unit_at);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    if number <= 0 || number > 366 * 86_400 / seconds {
        return Err(ApiError::invalid_parameter(
            "interval",
            format!("{text:?} must be between 1s and 366d"),
        ));
    }
    Ok(number * seconds * 1_000_000_000)
}

/// The filter parameters shared by search, count and the live tail, as given (public for
/// the fuzz tests).
#[derive(Debug, Serialize)]
pub struct Filters<'a> {
    event_type: Option<&'a str>,
    category: Option<&'a str>,
    code: Option<&'a str>,
    name: Option<&'a str>,
    actor: Option<&'a str>,
    target: Option<&'a str>,
    outcome: Option<&'a str>,
    correlation_id: Option<&'a str>,
    id: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    q: Option<&'a str>,
}

/// The [`Filters`] of parameters that carry the filter fields under their names (a search's,
/// a count's).
macro_rules! filters_of {
    ($params:expr) => {
        Filters {
            event_type: $params.event_type.as_deref(),
            category: $params.category.as_deref(),
            code: $params.code.as_deref(),
            name: $params.name.as_deref(),
            actor: $params.actor.as_deref(),
            target: $params.target.as_deref(),
            outcome: $params.outcome.as_deref(),
            correlation_id: $params.correlation_id.as_deref(),
            id: $params.id.as_deref(),
            from: $params.from.as_deref(),
            to: $params.to.as_deref(),
            q: $params.q.as_deref(),
        }
    };
}

impl<'a> Filters<'a> {
    /// The filters of a search (or of the live tail, which takes the same parameters).
    pub fn of_search(params: &'a SearchParams) -> Self {
        filters_of!(params)
    }

    /// The filters of a count.
    pub fn of_count(params: &'a CountParams) -> Self {
        filters_of!(params)
    }

    /// The filters of an export.
    pub fn of_export(params: &'a ExportParams) -> Self {
        filters_of!(params)
    }

    /// The filters of a verification bundle.
    pub fn of_bundle(params: &'a BundleParams) -> Self {
        filters_of!(params)
    }

    /// The filters given, as a query string (`type=user.*&outcome=failure`), in a fixed
    /// order: what an audit event says was asked for.
    pub fn to_query_string(&self) -> String {
        let pairs = [
            ("type", self.event_type),
            ("category", self.category),
            ("code", self.code),
            ("name", self.name),
            ("actor", self.actor),
            ("target", self.target),
            ("outcome", self.outcome),
            ("correlation_id", self.correlation_id),
            ("id", self.id),
            ("from", self.from),
            ("to", self.to),
            ("q", self.q),
        ];
        let mut out = String::new();
        for (name, value) in pairs {
            let Some(value) = value else { continue };
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(name);
            out.push('=');
            push_url_escaped(&mut out, value);
        }
        out
    }

    /// The search index's query.
    ///
    /// # Errors
    ///
    /// `invalid_parameter` naming the first invalid filter: `type`, `code`, `outcome`,
    /// `from`, `to`.
    pub fn to_query(&self) -> Result<Query, ApiError> {
        let text = |value: Option<&str>| {
            value
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let types = match self.event_type {
            None => Vec::new(),
            Some(types) => types
                .split(',')
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(|text| {
                    TypeFilter::parse(text).map_err(|err| ApiError::invalid_parameter("type", err))
                })
                .collect::<Result<_, _>>()?,
        };
        let code = self
            .code
            .map(|code| {
                // Digits only, as the spec's pattern says (`parse` would take a `+`).
                Some(code)
                    .filter(|code| code.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|code| code.parse::<u64>().ok())
                    .ok_or_else(|| {
                        ApiError::invalid_parameter("code", format!("{code:?} is not a number"))
                    })
            })
            .transpose()?;
        let outcome = self
            .outcome
            .map(|outcome| {
                Outcome::parse(outcome).map_err(|err| ApiError::invalid_parameter("outcome", err))
            })
            .transpose()?;
        let time = |name: &str, value: Option<&str>| {
            value
                .map(|value| {
                    Timestamp::parse_rfc3339(value)
                        .map_err(|err| ApiError::invalid_parameter(name, err))
                })
                .transpose()
        };
        Ok(Query {
            types,
            category: text(self.category),
            code,
            name: text(self.name),
            actor: text(self.actor),
            target: text(self.target),
            outcome,
            correlation_id: text(self.correlation_id),
            event_id: text(self.id),
            from: time("from", self.from)?,
            to: time("to", self.to)?,
            text: text(self.q),
        })
    }

    /// Names the query and order, so a cursor cannot be used with another.
    pub fn fingerprint(&self, tenant: &TenantId, order: Order) -> String {
        let mut hasher = Sha256::new();
        hasher.update(tenant.as_str().as_bytes());
        hasher.update(b"\0");
        hasher.update(serde_json::to_vec(self).unwrap_or_default());
        hasher.update(match order {
            Order::Asc => b"asc".as_slice(),
            Order::Desc => b"desc".as_slice(),
        });
        URL_SAFE_NO_PAD.encode(&hasher.finalize()[..9])
    }
}

/// Appends `value` to `out` with `%`, `&`, `=`, `+`, `#` and controls percent-escaped, so a
/// query string of several values reads back unambiguously.
fn push_url_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        if matches!(c, '%' | '&' | '=' | '+' | '#') || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
}

/// The opaque paging cursor: the last seq returned, bound to its query and order (public
/// for the fuzz tests).
#[derive(Debug)]
pub struct Cursor {
    /// The last seq of the page.
    pub after: u64,
    /// [`Filters::fingerprint`] of the page's query and order.
    pub fingerprint: String,
}

impl Cursor {
    /// The cursor's text: base64url of `v1.<after>.<fingerprint>`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1.{}.{}", self.after, self.fingerprint))
    }

    /// The `after` of a cursor's text, if it was issued for `fingerprint`.
    ///
    /// # Errors
    ///
    /// `invalid_cursor`: not a cursor this server issued, or one of another query or order.
    pub fn decode(text: &str, fingerprint: &str) -> Result<u64, ApiError> {
        let invalid = |why: &str| {
            ApiError::bad_request(
                error_codes::INVALID_CURSOR,
                format!(
                    "the cursor {why}; pass next_cursor from the previous page unchanged, with the same filters and order, or start again without a cursor"
                ),
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid("is not one this server issued"))?;
        let text =
            String::from_utf8(bytes).map_err(|_| invalid("is not one this server issued"))?;
        let mut parts = text.splitn(3, '.');
        let (Some("v1"), Some(after), Some(bound_to)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("is not one this server issued"));
        };
        // Only the spelling `encode` writes (no sign, no leading zeros).
        let after = after
            .parse::<u64>()
            .ok()
            .filter(|seq| seq.to_string() == after)
            .ok_or_else(|| invalid("is not one this server issued"))?;
        if bound_to != fingerprint {
            return Err(invalid("belongs to a different query or order"));
        }
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_bad_ones_are_named() {
        assert_eq!(parse_interval("15m").expect("valid"), 900 * 1_000_000_000);
        assert_eq!(parse_interval("1d").expect("valid"), 86_400 * 1_000_000_000);
        for bad in ["", "m", "0h", "-1h", "1w", "1.5h", "9999999d"] {
            let err = parse_interval(bad).expect_err(bad);
            assert_eq!(err.code, error_codes::INVALID_PARAMETER, "{bad}");
        }
    }

    #[test]
    fn an_interval_ending_in_a_multibyte_character_is_refused() {
        // Found by fuzz_count_query: these panicked (a split inside a character), and the
        // count answered 500.
        for bad in ["1é", "é", "1\u{300}", "15\u{1F600}"] {
            let err = parse_interval(bad).expect_err(bad);
            assert_eq!(err.code, error_codes::INVALID_PARAMETER, "{bad}");
        }
    }

    #[test]
    fn only_the_cursor_spelling_the_server_issues_is_accepted() {
        // Found by fuzz_search_query: `after` with a sign or leading zeros was accepted, so
        // one page had several cursors.
        let fingerprint = "fp";
        let issued = Cursor {
            after: 5,
            fingerprint: fingerprint.to_owned(),
        }
        .encode();
        assert_eq!(Cursor::decode(&issued, fingerprint).expect("issued"), 5);
        for after in ["+5", "05", "005", " 5", "5 "] {
            let text = URL_SAFE_NO_PAD.encode(format!("v1.{after}.{fingerprint}"));
            let err = Cursor::decode(&text, fingerprint).expect_err(after);
            assert_eq!(err.code, error_codes::INVALID_CURSOR, "{after}");
        }
        let zero = Cursor {
            after: 0,
            fingerprint: fingerprint.to_owned(),
        }
        .encode();
        assert_eq!(Cursor::decode(&zero, fingerprint).expect("zero"), 0);
    }

    #[test]
    fn a_cursor_works_only_with_its_own_query() {
        let params = SearchParams {
            category: Some("auth".into()),
            ..SearchParams::default()
        };
        let filters = Filters::of_search(&params);
        let tenant = TenantId::parse("acme").expect("tenant");
        let fingerprint = filters.fingerprint(&tenant, Order::Desc);
        let cursor = Cursor {
            after: 42,
            fingerprint: fingerprint.clone(),
        }
        .encode();
        assert_eq!(Cursor::decode(&cursor, &fingerprint).expect("valid"), 42);
        assert!(Cursor::decode(&cursor, &filters.fingerprint(&tenant, Order::Asc)).is_err());
        let other_tenant = TenantId::parse("globex").expect("tenant");
        assert!(Cursor::decode(&cursor, &filters.fingerprint(&other_tenant, Order::Desc)).is_err());
        let other = SearchParams::default();
        assert!(
            Cursor::decode(
                &cursor,
                &Filters::of_search(&other).fingerprint(&tenant, Order::Desc)
            )
            .is_err()
        );
        for bad in ["", "!!", "djE", &URL_SAFE_NO_PAD.encode("v1.x.y")] {
            let err = Cursor::decode(bad, &fingerprint).expect_err(bad);
            assert_eq!(err.code, error_codes::INVALID_CURSOR);
        }
    }
}
