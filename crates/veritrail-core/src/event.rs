//! The audit event: its wire form ([`EventInput`]) and the validated [`Event`].
//!
//! Raw input and validated values are different types. [`EventInput`] is whatever a client
//! sent (strings, a JSON value); [`Event::parse`] turns it into an [`Event`] made of validated
//! parts, or reports every invalid field at once as an [`InvalidEvent`]. Each part
//! ([`TenantId`], [`EventType`], [`EventId`], [`BoundedText`], [`Email`], [`IpAddress`],
//! [`Timestamp`], [`Outcome`], [`Details`]) is built only by parsing, so a function that takes
//! one never re-checks it.
//!
//! Parsers never rewrite what they accept, with two exceptions: IP addresses are kept in
//! their canonical text ([`IpAddress`]) and `details` in canonical JSON ([`Details`]). That is
//! what lets the record decoder apply the same parsers and still guarantee one encoding per
//! record.
//!
//! Every size limit is a constant in [`limits`]; lengths are counted in bytes of UTF-8.
//! Field errors carry a stable machine code from [`codes`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::canonical_json;

/// Every size limit of events and records. Lengths are in bytes of UTF-8.
pub mod limits {
    /// [`TenantId`](super::TenantId): at most 64 bytes.
    pub const TENANT_ID_MAX_LEN: usize = 64;
    /// [`EventType`](super::EventType): at most 128 bytes.
    pub const EVENT_TYPE_MAX_LEN: usize = 128;
    /// [`EventId`](super::EventId) (the client's idempotency id): at most 128 bytes.
    pub const EVENT_ID_MAX_LEN: usize = 128;
    /// `actor.id`, `targets[].id` and `correlation_id`.
    pub const ID_MAX_LEN: usize = 256;
    /// `actor.type` and `targets[].type`.
    pub const KIND_MAX_LEN: usize = 64;
    /// `actor.name`, `targets[].name` and the catalog's event `name`.
    pub const NAME_MAX_LEN: usize = 256;
    /// `actor.email` (the RFC 5321 path limit).
    pub const EMAIL_MAX_LEN: usize = 254;
    /// Longest canonical IP address text (`ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff`); not a
    /// limit a client can hit, since every address fits, but part of [`MAX_RECORD_BYTES`].
    pub const IP_MAX_LEN: usize = 39;
    /// `actor.user_agent`.
    pub const USER_AGENT_MAX_LEN: usize = 512;
    /// `source.service`.
    pub const SERVICE_MAX_LEN: usize = 128;
    /// `source.component`.
    pub const COMPONENT_MAX_LEN: usize = 128;
    /// `source.version`.
    pub const VERSION_MAX_LEN: usize = 64;
    /// `summary`.
    pub const SUMMARY_MAX_LEN: usize = 1024;
    /// The catalog's `category`.
    pub const CATEGORY_MAX_LEN: usize = 128;
    /// The catalog's `severity`.
    pub const SEVERITY_MAX_LEN: usize = 32;
    /// The catalog's `description`.
    pub const DESCRIPTION_MAX_LEN: usize = 2048;
    /// Most targets one event may name.
    pub const MAX_TARGETS: usize = 32;
    /// Largest `details`, measured as its canonical JSON text.
    pub const MAX_DETAILS_BYTES: usize = 32 * 1024;
    /// Deepest `details` nesting, counted as in [`crate::canonical_json::depth`]: the
    /// top-level object is level 1.
    pub const MAX_DETAILS_DEPTH: usize = 16;

    /// Tag and length before every field of an encoded record.
    const FIELD_HEADER: usize = 1 + 4;
    /// A text field of at most `max` bytes.
    const fn text(max: usize) -> usize {
        FIELD_HEADER + max
    }
    /// A fixed 8-byte integer field.
    const INT64: usize = FIELD_HEADER + 8;
    const ACTOR: usize = FIELD_HEADER
        + text(ID_MAX_LEN)
        + text(KIND_MAX_LEN)
        + text(NAME_MAX_LEN)
        + text(EMAIL_MAX_LEN)
        + text(IP_MAX_LEN)
        + text(USER_AGENT_MAX_LEN);
    const TARGET: usize = FIELD_HEADER + text(ID_MAX_LEN) + text(KIND_MAX_LEN) + text(NAME_MAX_LEN);
    const SOURCE: usize = FIELD_HEADER
        + text(SERVICE_MAX_LEN)
        + text(COMPONENT_MAX_LEN)
        + text(VERSION_MAX_LEN)
        + text(IP_MAX_LEN);

    /// Largest encoded record: every field present at its maximum size (58,074 bytes).
    ///
    /// Derived from the limits above and the version 1 layout, so every record
    /// [`Record::encode`](crate::record::Record::encode) writes fits, and
    /// [`Record::decode`](crate::record::Record::decode) rejects anything larger up front.
    pub const MAX_RECORD_BYTES: usize = 1 // format version
        + text(TENANT_ID_MAX_LEN)
        + INT64 // seq
        + INT64 // received_at
        + text(EVENT_ID_MAX_LEN)
        + text(EVENT_TYPE_MAX_LEN)
        + INT64 // occurred_at
        + ACTOR
        + MAX_TARGETS * TARGET
        + FIELD_HEADER + 1 // outcome
        + text(ID_MAX_LEN) // correlation_id
        + SOURCE
        + text(SUMMARY_MAX_LEN)
        + text(MAX_DETAILS_BYTES)
        + INT64 // code
        + text(NAME_MAX_LEN)
        + text(CATEGORY_MAX_LEN)
        + text(SEVERITY_MAX_LEN)
        + text(DESCRIPTION_MAX_LEN)
        + text(ID_MAX_LEN); // published_by
}

/// The stable machine codes of [`ValueError`] and [`FieldError`].
pub mod codes {
    /// A required field is missing or blank.
    pub const REQUIRED: &str = "required";
    /// An optional text field is present but empty or only whitespace, or an object (a
    /// target) has no fields.
    pub const EMPTY: &str = "empty";
    /// Longer than its limit in [`super::limits`].
    pub const TOO_LONG: &str = "too_long";
    /// Contains a control character (U+0000..=U+001F, U+007F..=U+009F).
    pub const INVALID_CHARACTERS: &str = "invalid_characters";
    /// Does not match the syntax of an identifier ([`super::TenantId`],
    /// [`super::EventType`], [`super::EventId`]).
    pub const INVALID_FORMAT: &str = "invalid_format";
    /// JSON of the wrong type (`details` that is not an object).
    pub const INVALID_TYPE: &str = "invalid_type";
    /// More targets than [`super::limits::MAX_TARGETS`].
    pub const TOO_MANY: &str = "too_many";
    /// `details` larger than [`super::limits::MAX_DETAILS_BYTES`].
    pub const TOO_LARGE: &str = "too_large";
    /// `details` nested deeper than [`super::limits::MAX_DETAILS_DEPTH`].
    pub const TOO_DEEP: &str = "too_deep";
    /// Not an RFC 3339 date-time, or outside the range of [`super::Timestamp`].
    pub const INVALID_TIMESTAMP: &str = "invalid_timestamp";
    /// Not an IPv4 or IPv6 address.
    pub const INVALID_IP: &str = "invalid_ip";
    /// Not shaped like an email address.
    pub const INVALID_EMAIL: &str = "invalid_email";
    /// Not one of `success`, `failure`, `pending`, `unknown`.
    pub const INVALID_OUTCOME: &str = "invalid_outcome";
    /// Only from the record decoder: a value in a stored record that is valid but not in its
    /// canonical form (IP address text, `details` JSON).
    pub const NOT_CANONICAL: &str = "not_canonical";
    /// A type the tenant's catalogs do not define, under the strict policy.
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// A catalog's repeated type, code or `details` field.
    pub const DUPLICATE: &str = "duplicate";
}

/// Why one value was rejected: a stable machine `code` (one of [`codes`]) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    /// Stable machine-readable code, one of [`codes`].
    pub code: &'static str,
    /// Human-readable sentence, without the field name.
    pub message: String,
}

impl ValueError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn empty() -> Self {
        Self::new(codes::EMPTY, "must not be empty or only whitespace")
    }

    fn too_long(max: usize, len: usize) -> Self {
        Self::new(
            codes::TOO_LONG,
            format!("must be at most {max} bytes long (is {len})"),
        )
    }
}

/// One invalid field of an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// JSON path of the field, like `actor.email` or `targets[3].id`.
    pub field: String,
    /// Stable machine-readable code, one of [`codes`].
    pub code: &'static str,
    /// Human-readable sentence.
    pub message: String,
}

/// Every reason an [`EventInput`] was rejected, in field order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: {}", join_errors(.errors))]
pub struct InvalidEvent {
    /// One entry per invalid field; never empty.
    pub errors: Vec<FieldError>,
}

fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Rejects empty or whitespace-only text, text over `max` bytes and control characters.
fn check_text(value: &str, max: usize) -> Result<(), ValueError> {
    if value.len() > max {
        return Err(ValueError::too_long(max, value.len()));
    }
    if value.trim().is_empty() {
        return Err(ValueError::empty());
    }
    if value.chars().any(char::is_control) {
        return Err(ValueError::new(
            codes::INVALID_CHARACTERS,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Implements the parsing constructors, accessors and conversions of a `String` newtype whose
/// value is accepted as is by `$check`.
macro_rules! text_newtype {
    ($name:ident, $check:path) => {
        impl $name {
            /// Parses `value`, keeping it exactly as given.
            ///
            /// # Errors
            ///
            /// A [`ValueError`] saying which rule `value` breaks.
            pub fn parse(value: &str) -> Result<Self, ValueError> {
                $check(value)?;
                Ok(Self(value.to_owned()))
            }

            /// Parses `value` without copying it.
            ///
            /// # Errors
            ///
            /// A [`ValueError`] saying which rule `value` breaks.
            pub fn parse_owned(value: String) -> Result<Self, ValueError> {
                $check(&value)?;
                Ok(Self(value))
            }

            /// The value as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ValueError;
            fn try_from(value: &str) -> Result<Self, ValueError> {
                Self::parse(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, ValueError> {
                Self::parse_owned(value)
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(value: &str) -> Result<Self, ValueError> {
                Self::parse(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::parse_owned(String::deserialize(deserializer)?)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A tenant's id: 1 to [`limits::TENANT_ID_MAX_LEN`] bytes of `[a-z0-9][a-z0-9_-]*`.
///
/// Safe in URLs, file names and checkpoint origins without escaping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

fn check_tenant_id(value: &str) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::empty());
    }
    if value.len() > limits::TENANT_ID_MAX_LEN {
        return Err(ValueError::too_long(limits::TENANT_ID_MAX_LEN, value.len()));
    }
    let bytes = value.as_bytes();
    let first_ok = bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit();
    let rest_ok = bytes[1..]
        .iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !(first_ok && rest_ok) {
        return Err(ValueError::new(
            codes::INVALID_FORMAT,
            "must be lowercase letters, digits, '_' and '-', starting with a letter or digit",
        ));
    }
    Ok(())
}

text_newtype!(TenantId, check_tenant_id);

/// An event type: 1 to [`limits::EVENT_TYPE_MAX_LEN`] bytes of non-empty, dot-separated
/// segments of `[A-Za-z0-9_-]`, like `user.password_updated` or
/// `api.activity.login.success`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(String);

fn check_event_type(value: &str) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::empty());
    }
    if value.len() > limits::EVENT_TYPE_MAX_LEN {
        return Err(ValueError::too_long(
            limits::EVENT_TYPE_MAX_LEN,
            value.len(),
        ));
    }
    let valid = value.split('.').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if !valid {
        return Err(ValueError::new(
            codes::INVALID_FORMAT,
            "must be non-empty segments of letters, digits, '_' and '-' separated by '.'",
        ));
    }
    Ok(())
}

text_newtype!(EventType, check_event_type);

/// The prefix of the types only veritrail itself writes (`veritrail.key.created`), in any
/// case: `Veritrail.key.created` is as reserved as the lower-case type.
pub const RESERVED_TYPE_PREFIX: &str = "veritrail.";

/// Whether `event_type` is under [`RESERVED_TYPE_PREFIX`], in any case.
pub fn is_reserved_type(event_type: &str) -> bool {
    event_type
        .get(..RESERVED_TYPE_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(RESERVED_TYPE_PREFIX))
}

impl EventType {
    /// Whether this type is one only veritrail writes ([`is_reserved_type`]).
    pub fn is_reserved(&self) -> bool {
        is_reserved_type(&self.0)
    }
}

/// A client-chosen idempotency id: 1 to [`limits::EVENT_ID_MAX_LEN`] bytes of visible ASCII
/// (0x21..=0x7E). A tenant's log stores an id at most once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);

fn check_event_id(value: &str) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::empty());
    }
    if value.len() > limits::EVENT_ID_MAX_LEN {
        return Err(ValueError::too_long(limits::EVENT_ID_MAX_LEN, value.len()));
    }
    if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ValueError::new(
            codes::INVALID_FORMAT,
            "must be visible ASCII characters (no spaces)",
        ));
    }
    Ok(())
}

text_newtype!(EventId, check_event_id);

/// Free text of at most `MAX` bytes: not empty or only whitespace, no control characters.
/// Kept exactly as given (not trimmed).
///
/// The aliases below name its uses; aliases with the same limit are the same type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedText<const MAX: usize>(String);

impl<const MAX: usize> BoundedText<MAX> {
    /// The most bytes a value may have.
    pub const MAX_LEN: usize = MAX;

    /// Parses `value`, keeping it exactly as given.
    ///
    /// # Errors
    ///
    /// A [`ValueError`]: `empty`, `too_long` or `invalid_characters`.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        check_text(value, MAX)?;
        Ok(Self(value.to_owned()))
    }

    /// Parses `value` without copying it.
    ///
    /// # Errors
    ///
    /// As [`BoundedText::parse`].
    pub fn parse_owned(value: String) -> Result<Self, ValueError> {
        check_text(&value, MAX)?;
        Ok(Self(value))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Display for BoundedText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> AsRef<str> for BoundedText<MAX> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> TryFrom<&str> for BoundedText<MAX> {
    type Error = ValueError;
    fn try_from(value: &str) -> Result<Self, ValueError> {
        Self::parse(value)
    }
}

impl<const MAX: usize> TryFrom<String> for BoundedText<MAX> {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        Self::parse_owned(value)
    }
}

impl<const MAX: usize> FromStr for BoundedText<MAX> {
    type Err = ValueError;
    fn from_str(value: &str) -> Result<Self, ValueError> {
        Self::parse(value)
    }
}

impl<const MAX: usize> Serialize for BoundedText<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedText<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse_owned(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// `actor.id`, `targets[].id`, `correlation_id`.
pub type Identifier = BoundedText<{ limits::ID_MAX_LEN }>;
/// `actor.type`, `targets[].type`.
pub type Kind = BoundedText<{ limits::KIND_MAX_LEN }>;
/// `actor.name`, `targets[].name`, the catalog's event `name`.
pub type Name = BoundedText<{ limits::NAME_MAX_LEN }>;
/// `actor.user_agent`.
pub type UserAgent = BoundedText<{ limits::USER_AGENT_MAX_LEN }>;
/// `source.service`.
pub type ServiceName = BoundedText<{ limits::SERVICE_MAX_LEN }>;
/// `source.component`.
pub type ComponentName = BoundedText<{ limits::COMPONENT_MAX_LEN }>;
/// `source.version`.
pub type Version = BoundedText<{ limits::VERSION_MAX_LEN }>;
/// `summary`.
pub type Summary = BoundedText<{ limits::SUMMARY_MAX_LEN }>;
/// The catalog's `category`.
pub type Category = BoundedText<{ limits::CATEGORY_MAX_LEN }>;
/// The catalog's `severity`.
pub type Severity = BoundedText<{ limits::SEVERITY_MAX_LEN }>;
/// The catalog's `description`.
pub type Description = BoundedText<{ limits::DESCRIPTION_MAX_LEN }>;

/// An email address, as far as its shape goes: at most [`limits::EMAIL_MAX_LEN`] bytes, no
/// whitespace or control characters, exactly one `@` with text on both sides. Kept as given
/// (case included): whether it reaches anyone is not the audit log's business.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

fn check_email(value: &str) -> Result<(), ValueError> {
    check_text(value, limits::EMAIL_MAX_LEN)?;
    let shaped = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !shaped {
        return Err(ValueError::new(
            codes::INVALID_EMAIL,
            "must look like an email address: local@domain, without spaces",
        ));
    }
    Ok(())
}

text_newtype!(Email, check_email);

/// An IPv4 or IPv6 address, kept with its canonical text.
///
/// Canonical text: IPv4 dotted decimal; IPv6 per RFC 5952 (lowercase hex, no leading zeros,
/// the longest run of two or more zero groups as `::`, the first such run on a tie), except
/// that IPv4-mapped addresses (`::ffff:0:0/96`) are written `::ffff:a.b.c.d`. The text is
/// computed here rather than by `std`'s `Display`, whose output has changed between Rust
/// releases; stored records must not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpAddress {
    addr: IpAddr,
    text: String,
}

impl IpAddress {
    /// Parses any address text `std::net::IpAddr` accepts (no zone id, no brackets) and keeps
    /// its canonical form.
    ///
    /// # Errors
    ///
    /// `invalid_ip`.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let addr = IpAddr::from_str(value)
            .map_err(|_| ValueError::new(codes::INVALID_IP, "must be an IPv4 or IPv6 address"))?;
        Ok(Self::from(addr))
    }

    /// Parses `value` and requires it to be canonical already (for stored records).
    pub(crate) fn parse_canonical(value: &str) -> Result<Self, ValueError> {
        let ip = Self::parse(value)?;
        if ip.text != value {
            return Err(ValueError::new(
                codes::NOT_CANONICAL,
                format!("IP address is not in canonical form {:?}", ip.text),
            ));
        }
        Ok(ip)
    }

    /// The address.
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The canonical text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<IpAddr> for IpAddress {
    fn from(addr: IpAddr) -> Self {
        Self {
            addr,
            text: canonical_ip_text(addr),
        }
    }
}

impl fmt::Display for IpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn canonical_ip_text(addr: IpAddr) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(limits::IP_MAX_LEN);
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let _ = write!(out, "{a}.{b}.{c}.{d}");
        }
        IpAddr::V6(v6) => {
            let groups = v6.segments();
            if groups[..5] == [0; 5] && groups[5] == 0xffff {
                let [.., a, b, c, d] = v6.octets();
                let _ = write!(out, "::ffff:{a}.{b}.{c}.{d}");
                return out;
            }
            // The longest run of zero groups (first on a tie), compressed only if >= 2.
            let (mut best_start, mut best_len) = (0, 0);
            let mut idx = 0;
            while idx < groups.len() {
                if groups[idx] == 0 {
                    let start = idx;
                    while idx < groups.len() && groups[idx] == 0 {
                        idx += 1;
                    }
                    if idx - start > best_len {
                        (best_start, best_len) = (start, idx - start);
                    }
                } else {
                    idx += 1;
                }
            }
            let write_groups = |out: &mut String, groups: &[u16]| {
                for (idx, group) in groups.iter().enumerate() {
                    if idx > 0 {
                        out.push(':');
                    }
                    let _ = write!(out, "{group:x}");
                }
            };
            if best_len >= 2 {
                write_groups(&mut out, &groups[..best_start]);
                out.push_str("::");
                write_groups(&mut out, &groups[best_start + best_len..]);
            } else {
                write_groups(&mut out, &groups);
            }
        }
    }
    out
}

/// An instant: nanoseconds since the Unix epoch, UTC.
///
/// Every `i64` is a valid timestamp (1677-09-21T00:12:43.145224192Z to
/// 2262-04-11T23:47:16.854775807Z).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `nanos` nanoseconds after 1970-01-01T00:00:00Z.
    #[must_use]
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since 1970-01-01T00:00:00Z.
    #[must_use]
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time (`2025-10-23T16:31:39.680Z`,
    /// `2025-10-23T18:31:39+02:00`), normalising its offset to UTC.
    ///
    /// Lowercase `t`/`z` and a space instead of `T` are accepted; digits beyond nanoseconds
    /// are truncated; a leap second (`:60`) reads as the last nanosecond of its minute.
    ///
    /// # Errors
    ///
    /// `invalid_timestamp`, when the text is not RFC 3339 or the instant is outside the range
    /// of an `i64` of nanoseconds.
    pub fn parse_rfc3339(value: &str) -> Result<Self, ValueError> {
        let parsed = OffsetDateTime::parse(value, &Rfc3339).map_err(|err| {
            ValueError::new(
                codes::INVALID_TIMESTAMP,
                format!("must be an RFC 3339 date-time like 2025-10-23T16:31:39.680Z ({err})"),
            )
        })?;
        i64::try_from(parsed.unix_timestamp_nanos())
            .map(Self)
            .map_err(|_| {
                ValueError::new(
                    codes::INVALID_TIMESTAMP,
                    "must be between 1677-09-21T00:12:43.145224192Z and \
                     2262-04-11T23:47:16.854775807Z",
                )
            })
    }

    /// RFC 3339 in UTC with `Z`, fractional seconds trimmed of trailing zeros but with at
    /// least milliseconds: `2025-10-23T16:31:39.680Z`, `2025-10-23T16:31:39.000001Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        use std::fmt::Write as _;
        const NANOS_PER_SEC: i64 = 1_000_000_000;
        const SECS_PER_DAY: i64 = 86_400;
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let nanos = self.0.rem_euclid(NANOS_PER_SEC);
        let days = secs.div_euclid(SECS_PER_DAY);
        let secs_of_day = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let mut out = String::with_capacity(30);
        let _ = write!(
            out,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
            secs_of_day / 3600,
            secs_of_day / 60 % 60,
            secs_of_day % 60
        );
        let mut fraction = nanos;
        let mut n_digits = 9;
        while n_digits > 3 && fraction % 10 == 0 {
            fraction /= 10;
            n_digits -= 1;
        }
        let _ = write!(out, "{fraction:0n_digits$}Z");
        out
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl FromStr for Timestamp {
    type Err = ValueError;
    fn from_str(value: &str) -> Result<Self, ValueError> {
        Self::parse_rfc3339(value)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// `success`.
    Success,
    /// `failure`.
    Failure,
    /// `pending` (requested or in progress).
    Pending,
    /// `unknown`.
    Unknown,
}

impl Outcome {
    /// Every outcome, in code order.
    pub const ALL: [Self; 4] = [Self::Success, Self::Failure, Self::Pending, Self::Unknown];

    /// The wire string: `success`, `failure`, `pending` or `unknown`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Pending => "pending",
            Self::Unknown => "unknown",
        }
    }

    /// Parses a wire string (lowercase only).
    ///
    /// # Errors
    ///
    /// `invalid_outcome`.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == value)
            .ok_or_else(|| {
                ValueError::new(
                    codes::INVALID_OUTCOME,
                    "must be one of success, failure, pending, unknown",
                )
            })
    }

    /// The byte stored in records (version 1): 1 success, 2 failure, 3 pending, 4 unknown.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Success => 1,
            Self::Failure => 2,
            Self::Pending => 3,
            Self::Unknown => 4,
        }
    }

    /// The outcome stored as `code`, if any.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|outcome| outcome.code() == code)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = ValueError;
    fn from_str(value: &str) -> Result<Self, ValueError> {
        Self::parse(value)
    }
}

/// Free-form structured data: a JSON object of at most [`limits::MAX_DETAILS_BYTES`] (as
/// canonical text) nested at most [`limits::MAX_DETAILS_DEPTH`] levels.
///
/// Held as its canonical JSON text ([`crate::canonical_json`]), which is what records store
/// and hash; two `Details` are equal when their texts are.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Details(String);

impl Details {
    /// Checks and canonicalises `value`.
    ///
    /// # Errors
    ///
    /// `invalid_type` (not an object), `too_deep`, `too_large`.
    pub fn parse(value: &Value) -> Result<Self, ValueError> {
        if !value.is_object() {
            return Err(ValueError::new(
                codes::INVALID_TYPE,
                "must be a JSON object",
            ));
        }
        if canonical_json::exceeds_depth(value, limits::MAX_DETAILS_DEPTH) {
            return Err(ValueError::new(
                codes::TOO_DEEP,
                format!(
                    "must be nested at most {} levels deep",
                    limits::MAX_DETAILS_DEPTH
                ),
            ));
        }
        let text = canonical_json::to_canonical_string(value);
        Self::check_size(&text)?;
        Ok(Self(text))
    }

    /// Accepts `text` only if it is the canonical JSON of an object within the limits (for
    /// stored records).
    ///
    /// # Errors
    ///
    /// `too_large`, `not_canonical` (including too deep) or `invalid_type`.
    pub fn parse_canonical(text: &str) -> Result<Self, ValueError> {
        Self::check_size(text)?;
        if !text.starts_with('{') {
            return Err(ValueError::new(
                codes::INVALID_TYPE,
                "must be a JSON object",
            ));
        }
        canonical_json::parse_canonical(text, limits::MAX_DETAILS_DEPTH).map_err(|err| {
            ValueError::new(codes::NOT_CANONICAL, format!("not canonical JSON: {err}"))
        })?;
        Ok(Self(text.to_owned()))
    }

    fn check_size(text: &str) -> Result<(), ValueError> {
        if text.len() > limits::MAX_DETAILS_BYTES {
            return Err(ValueError::new(
                codes::TOO_LARGE,
                format!(
                    "must be at most {} bytes as canonical JSON (is {})",
                    limits::MAX_DETAILS_BYTES,
                    text.len()
                ),
            ));
        }
        Ok(())
    }

    /// The canonical JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON object, read from the canonical text (numbers exactly as stored).
    #[must_use]
    pub fn to_value(&self) -> Value {
        // Every constructor checked that the text parses; the fallback is unreachable.
        canonical_json::parse_canonical(&self.0, limits::MAX_DETAILS_DEPTH)
            .unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

impl fmt::Debug for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Details({})", self.0)
    }
}

impl fmt::Display for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who acted. At least one field is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub(crate) id: Option<Identifier>,
    pub(crate) actor_type: Option<Kind>,
    pub(crate) name: Option<Name>,
    pub(crate) email: Option<Email>,
    pub(crate) ip: Option<IpAddress>,
    pub(crate) user_agent: Option<UserAgent>,
}

impl Actor {
    /// `actor.id`.
    #[must_use]
    pub fn id(&self) -> Option<&Identifier> {
        self.id.as_ref()
    }
    /// `actor.type`, like `user` or `api_key`.
    #[must_use]
    pub fn actor_type(&self) -> Option<&Kind> {
        self.actor_type.as_ref()
    }
    /// `actor.name`.
    #[must_use]
    pub fn name(&self) -> Option<&Name> {
        self.name.as_ref()
    }
    /// `actor.email`.
    #[must_use]
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }
    /// `actor.ip`.
    #[must_use]
    pub fn ip(&self) -> Option<&IpAddress> {
        self.ip.as_ref()
    }
    /// `actor.user_agent`.
    #[must_use]
    pub fn user_agent(&self) -> Option<&UserAgent> {
        self.user_agent.as_ref()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.actor_type.is_none()
            && self.name.is_none()
            && self.email.is_none()
            && self.ip.is_none()
            && self.user_agent.is_none()
    }
}

/// What was acted on. At least one field is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub(crate) id: Option<Identifier>,
    pub(crate) target_type: Option<Kind>,
    pub(crate) name: Option<Name>,
}

impl Target {
    /// `targets[].id`.
    #[must_use]
    pub fn id(&self) -> Option<&Identifier> {
        self.id.as_ref()
    }
    /// `targets[].type`.
    #[must_use]
    pub fn target_type(&self) -> Option<&Kind> {
        self.target_type.as_ref()
    }
    /// `targets[].name`.
    #[must_use]
    pub fn name(&self) -> Option<&Name> {
        self.name.as_ref()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.id.is_none() && self.target_type.is_none() && self.name.is_none()
    }
}

/// Which system emitted the event. At least one field is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub(crate) service: Option<ServiceName>,
    pub(crate) component: Option<ComponentName>,
    pub(crate) version: Option<Version>,
    pub(crate) ip: Option<IpAddress>,
}

impl Source {
    /// `source.service`.
    #[must_use]
    pub fn service(&self) -> Option<&ServiceName> {
        self.service.as_ref()
    }
    /// `source.component`.
    #[must_use]
    pub fn component(&self) -> Option<&ComponentName> {
        self.component.as_ref()
    }
    /// `source.version`.
    #[must_use]
    pub fn version(&self) -> Option<&Version> {
        self.version.as_ref()
    }
    /// `source.ip`.
    #[must_use]
    pub fn ip(&self) -> Option<&IpAddress> {
        self.ip.as_ref()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.service.is_none()
            && self.component.is_none()
            && self.version.is_none()
            && self.ip.is_none()
    }
}

/// A validated audit event, as a client described it (the server adds tenant, seq and
/// received time in [`crate::record::Record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub(crate) id: Option<EventId>,
    pub(crate) event_type: EventType,
    pub(crate) occurred_at: Option<Timestamp>,
    pub(crate) actor: Option<Actor>,
    pub(crate) targets: Vec<Target>,
    pub(crate) outcome: Option<Outcome>,
    pub(crate) correlation_id: Option<Identifier>,
    pub(crate) source: Option<Source>,
    pub(crate) summary: Option<Summary>,
    pub(crate) details: Option<Details>,
}

impl Event {
    /// Validates a wire event, reporting every invalid field.
    ///
    /// Besides each field's own rules: a missing or blank `type` is `required`; an `actor` or
    /// `source` object with no fields counts as absent; a target with no fields is `empty`;
    /// more than [`limits::MAX_TARGETS`] targets is `too_many` (at `targets`, and the targets
    /// themselves are then not checked).
    ///
    /// # Errors
    ///
    /// [`InvalidEvent`] listing one [`FieldError`] per invalid field, in field order.
    pub fn parse(input: EventInput) -> Result<Self, InvalidEvent> {
        let mut errors = Vec::new();
        let id = check(&mut errors, "id", input.id, EventId::parse_owned);
        let event_type = if input.event_type.trim().is_empty() {
            errors.push(FieldError {
                field: "type".to_owned(),
                code: codes::REQUIRED,
                message: "an event type is required".to_owned(),
            });
            None
        } else {
            check(
                &mut errors,
                "type",
                Some(input.event_type),
                EventType::parse_owned,
            )
        };
        let occurred_at = check(&mut errors, "occurred_at", input.occurred_at, |text| {
            Timestamp::parse_rfc3339(&text)
        });
        let actor = input
            .actor
            .and_then(|actor| parse_actor(&mut errors, actor));
        let targets = parse_targets(&mut errors, input.targets);
        let outcome = check(&mut errors, "outcome", input.outcome, |text| {
            Outcome::parse(&text)
        });
        let correlation_id = check(
            &mut errors,
            "correlation_id",
            input.correlation_id,
            Identifier::parse_owned,
        );
        let source = input
            .source
            .and_then(|source| parse_source(&mut errors, source));
        let summary = check(&mut errors, "summary", input.summary, Summary::parse_owned);
        let details = check(&mut errors, "details", input.details, |value| {
            Details::parse(&value)
        });
        match event_type {
            Some(event_type) if errors.is_empty() => Ok(Self {
                id,
                event_type,
                occurred_at,
                actor,
                targets,
                outcome,
                correlation_id,
                source,
                summary,
                details,
            }),
            _ => Err(InvalidEvent { errors }),
        }
    }

    /// The client's idempotency id.
    #[must_use]
    pub fn id(&self) -> Option<&EventId> {
        self.id.as_ref()
    }
    /// The event type.
    #[must_use]
    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }
    /// When it happened, by the client's clock.
    #[must_use]
    pub fn occurred_at(&self) -> Option<Timestamp> {
        self.occurred_at
    }
    /// Who acted.
    #[must_use]
    pub fn actor(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }
    /// What was acted on, in the client's order.
    #[must_use]
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }
    /// How it ended.
    #[must_use]
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }
    /// Links the events of one operation.
    #[must_use]
    pub fn correlation_id(&self) -> Option<&Identifier> {
        self.correlation_id.as_ref()
    }
    /// Which system emitted it.
    #[must_use]
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }
    /// One line for people.
    #[must_use]
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }
    /// Free-form structured data.
    #[must_use]
    pub fn details(&self) -> Option<&Details> {
        self.details.as_ref()
    }

    /// The event with `summary` set, for a summary rendered from the catalog's template when
    /// the client sent none.
    #[must_use]
    pub fn with_summary(mut self, summary: Summary) -> Self {
        self.summary = Some(summary);
        self
    }

    /// The event with `outcome` set, for the catalog's default outcome when the client sent
    /// none.
    #[must_use]
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }
}

/// Parses an optional raw field, recording its error under `field`.
fn check<R, T>(
    errors: &mut Vec<FieldError>,
    field: &str,
    raw: Option<R>,
    parse: impl FnOnce(R) -> Result<T, ValueError>,
) -> Option<T> {
    match parse(raw?) {
        Ok(value) => Some(value),
        Err(err) => {
            errors.push(FieldError {
                field: field.to_owned(),
                code: err.code,
                message: err.message,
            });
            None
        }
    }
}

fn parse_actor(errors: &mut Vec<FieldError>, input: ActorInput) -> Option<Actor> {
    let actor = Actor {
        id: check(errors, "actor.id", input.id, Identifier::parse_owned),
        actor_type: check(errors, "actor.type", input.actor_type, Kind::parse_owned),
        name: check(errors, "actor.name", input.name, Name::parse_owned),
        email: check(errors, "actor.email", input.email, Email::parse_owned),
        ip: check(errors, "actor.ip", input.ip, |text| IpAddress::parse(&text)),
        user_agent: check(
            errors,
            "actor.user_agent",
            input.user_agent,
            UserAgent::parse_owned,
        ),
    };
    (!actor.is_empty()).then_some(actor)
}

fn parse_targets(errors: &mut Vec<FieldError>, inputs: Vec<TargetInput>) -> Vec<Target> {
    if inputs.len() > limits::MAX_TARGETS {
        errors.push(FieldError {
            field: "targets".to_owned(),
            code: codes::TOO_MANY,
            message: format!(
                "must have at most {} targets (has {})",
                limits::MAX_TARGETS,
                inputs.len()
            ),
        });
        return Vec::new();
    }
    let mut targets = Vec::with_capacity(inputs.len());
    for (idx, input) in inputs.into_iter().enumerate() {
        let path = |field: &str| format!("targets[{idx}].{field}");
        let n_errors = errors.len();
        let target = Target {
            id: check(errors, &path("id"), input.id, Identifier::parse_owned),
            target_type: check(errors, &path("type"), input.target_type, Kind::parse_owned),
            name: check(errors, &path("name"), input.name, Name::parse_owned),
        };
        if target.is_empty() && errors.len() == n_errors {
            errors.push(FieldError {
                field: format!("targets[{idx}]"),
                code: codes::EMPTY,
                message: "a target needs at least one of id, type, name".to_owned(),
            });
        }
        targets.push(target);
    }
    targets
}

fn parse_source(errors: &mut Vec<FieldError>, input: SourceInput) -> Option<Source> {
    let source = Source {
        service: check(
            errors,
            "source.service",
            input.service,
            ServiceName::parse_owned,
        ),
        component: check(
            errors,
            "source.component",
            input.component,
            ComponentName::parse_owned,
        ),
        version: check(
            errors,
            "source.version",
            input.version,
            Version::parse_owned,
        ),
        ip: check(errors, "source.ip", input.ip, |text| {
            IpAddress::parse(&text)
        }),
    };
    (!source.is_empty()).then_some(source)
}

/// An event as a client sends it (the JSON wire form); unchecked until [`Event::parse`].
///
/// Unknown fields are rejected when deserialising. Serialising omits absent fields, so
/// clients can build and send one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// The tenant whose log the event goes to, in a batch sent with a service key (which
    /// writes to many tenants); not part of the event ([`Event::parse`] ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Client-chosen idempotency id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The event type, like `user.password_updated`; required (a missing one is reported by
    /// [`Event::parse`] with the other field errors).
    #[serde(rename = "type", default)]
    pub event_type: String,
    /// RFC 3339 date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// Who acted.
    #[serde(
        default,
        deserialize_with = "object_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub actor: Option<ActorInput>,
    /// What was acted on; `null` reads as none.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub targets: Vec<TargetInput>,
    /// `success`, `failure`, `pending` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Links the events of one operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Which system emitted the event.
    #[serde(
        default,
        deserialize_with = "object_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<SourceInput>,
    /// One line for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// A JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// `actor` in an [`EventInput`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorInput {
    /// `actor.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `actor.type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub actor_type: Option<String>,
    /// `actor.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `actor.email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `actor.ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// `actor.user_agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// One of `targets` in an [`EventInput`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// `targets[].id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `targets[].type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    /// `targets[].name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `source` in an [`EventInput`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// `source.service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `source.component`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// `source.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `source.ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// `targets`: a list of objects; `null` reads as none.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<ObjectOnly<T>>>::deserialize(deserializer).map(|targets| {
        targets
            .unwrap_or_default()
            .into_iter()
            .map(|ObjectOnly(t)| t)
            .collect()
    })
}

/// An optional field that must be a JSON object (`actor`, `source`).
fn object_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<ObjectOnly<T>>::deserialize(deserializer).map(|value| value.map(|ObjectOnly(t)| t))
}

/// A struct read only from a JSON object: serde's derived structs also read an array of
/// their fields in order (`["evt-1", "user.login"]`), which the wire form does not allow.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Object(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

fn text_of<const MAX: usize>(text: Option<&BoundedText<MAX>>) -> Option<String> {
    text.map(|text| text.as_str().to_owned())
}

impl From<&Event> for EventInput {
    /// The wire form of a valid event; [`Event::parse`] of it gives the event back.
    fn from(event: &Event) -> Self {
        Self {
            tenant: None,
            id: event.id.as_ref().map(|id| id.as_str().to_owned()),
            event_type: event.event_type.as_str().to_owned(),
            occurred_at: event.occurred_at.map(Timestamp::to_rfc3339),
            actor: event.actor.as_ref().map(|actor| ActorInput {
                id: text_of(actor.id.as_ref()),
                actor_type: text_of(actor.actor_type.as_ref()),
                name: text_of(actor.name.as_ref()),
                email: actor.email.as_ref().map(|email| email.as_str().to_owned()),
                ip: actor.ip.as_ref().map(|ip| ip.as_str().to_owned()),
                user_agent: text_of(actor.user_agent.as_ref()),
            }),
            targets: event
                .targets
                .iter()
                .map(|target| TargetInput {
                    id: text_of(target.id.as_ref()),
                    target_type: text_of(target.target_type.as_ref()),
                    name: text_of(target.name.as_ref()),
                })
                .collect(),
            outcome: event.outcome.map(|outcome| outcome.as_str().to_owned()),
            correlation_id: text_of(event.correlation_id.as_ref()),
            source: event.source.as_ref().map(|source| SourceInput {
                service: text_of(source.service.as_ref()),
                component: text_of(source.component.as_ref()),
                version: text_of(source.version.as_ref()),
                ip: source.ip.as_ref().map(|ip| ip.as_str().to_owned()),
            }),
            summary: text_of(event.summary.as_ref()),
            details: event.details.as_ref().map(Details::to_value),
        }
    }
}
