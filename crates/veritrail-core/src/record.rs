//! The stored record and its canonical, versioned byte encoding (version 1).
//!
//! A [`Record`] is an [`Event`] plus what the server adds: the tenant, the record's `seq`
//! (its 0-based position in the tenant's log), the time it was received, and the catalog's
//! fields. [`Record::encode`] writes the bytes the ledger stores and the Merkle tree commits
//! to, as the leaf hash `SHA-256(0x00 || bytes)` ([`crate::merkle::leaf_hash`]).
//!
//! The layout, specified for independent verifiers in `docs/format.md`: a version byte
//! `0x01`, then fields as `tag (1 byte) || length (u32, big-endian) || value` in strictly
//! ascending tag order, absent fields omitted, with `0x08` (a target) the only tag that
//! repeats. Actor, target and source nest the same scheme with their own tags.
//!
//! [`Record::decode`] is strict and total: it accepts exactly the byte strings `encode` can
//! produce, so `encode(decode(bytes)) == bytes` for every accepted input, and it returns a
//! [`DecodeError`] (never panics) on anything else.

use serde_json::{Map, Value};

pub use crate::event::limits::MAX_RECORD_BYTES;
use crate::event::limits::MAX_TARGETS;
use crate::event::{
    Actor, Category, ComponentName, Description, Details, Email, Event, EventId, EventType,
    Identifier, IpAddress, Kind, Name, Outcome, ServiceName, Severity, Source, Summary, Target,
    TenantId, Timestamp, UserAgent, ValueError, Version,
};
use crate::json_out::ObjectWriter;

/// The first byte of every version 1 record.
pub const FORMAT_VERSION: u8 = 0x01;

/// Bytes of tag and length before every value.
const FIELD_HEADER: usize = 1 + 4;

/// Top-level tags, in the order they must appear.
mod tag {
    pub(super) const TENANT: u8 = 0x01;
    pub(super) const SEQ: u8 = 0x02;
    pub(super) const RECEIVED_AT: u8 = 0x03;
    pub(super) const EVENT_ID: u8 = 0x04;
    pub(super) const TYPE: u8 = 0x05;
    pub(super) const OCCURRED_AT: u8 = 0x06;
    pub(super) const ACTOR: u8 = 0x07;
    pub(super) const TARGET: u8 = 0x08;
    pub(super) const OUTCOME: u8 = 0x09;
    pub(super) const CORRELATION_ID: u8 = 0x0a;
    pub(super) const SOURCE: u8 = 0x0b;
    pub(super) const SUMMARY: u8 = 0x0c;
    pub(super) const DETAILS: u8 = 0x0d;
    pub(super) const CODE: u8 = 0x0e;
    pub(super) const NAME: u8 = 0x0f;
    pub(super) const CATEGORY: u8 = 0x10;
    pub(super) const SEVERITY: u8 = 0x11;
    pub(super) const DESCRIPTION: u8 = 0x12;
    pub(super) const PUBLISHED_BY: u8 = 0x13;
}

/// Tags inside an actor (0x07).
mod actor_tag {
    pub(super) const ID: u8 = 0x01;
    pub(super) const TYPE: u8 = 0x02;
    pub(super) const NAME: u8 = 0x03;
    pub(super) const EMAIL: u8 = 0x04;
    pub(super) const IP: u8 = 0x05;
    pub(super) const USER_AGENT: u8 = 0x06;
}

/// Tags inside a target (0x08).
mod target_tag {
    pub(super) const ID: u8 = 0x01;
    pub(super) const TYPE: u8 = 0x02;
    pub(super) const NAME: u8 = 0x03;
}

/// Tags inside a source (0x0B).
mod source_tag {
    pub(super) const SERVICE: u8 = 0x01;
    pub(super) const COMPONENT: u8 = 0x02;
    pub(super) const VERSION: u8 = 0x03;
    pub(super) const IP: u8 = 0x04;
}

/// One tag space: `names[tag]` names each valid tag; `names[0]` names the space itself.
struct TagSpace {
    names: &'static [&'static str],
    /// The one tag that may repeat (consecutively), if any.
    repeatable: Option<u8>,
}

const RECORD_TAGS: TagSpace = TagSpace {
    names: &[
        "record",
        "tenant",
        "seq",
        "received_at",
        "id",
        "type",
        "occurred_at",
        "actor",
        "target",
        "outcome",
        "correlation_id",
        "source",
        "summary",
        "details",
        "code",
        "name",
        "category",
        "severity",
        "description",
        "published_by",
    ],
    repeatable: Some(tag::TARGET),
};

const ACTOR_TAGS: TagSpace = TagSpace {
    names: &[
        "actor",
        "actor.id",
        "actor.type",
        "actor.name",
        "actor.email",
        "actor.ip",
        "actor.user_agent",
    ],
    repeatable: None,
};

const TARGET_TAGS: TagSpace = TagSpace {
    names: &["target", "target.id", "target.type", "target.name"],
    repeatable: None,
};

const SOURCE_TAGS: TagSpace = TagSpace {
    names: &[
        "source",
        "source.service",
        "source.component",
        "source.version",
        "source.ip",
    ],
    repeatable: None,
};

/// What the server adds to a record beside the event: the event catalog's fields, and the
/// service key that published it; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogFields {
    /// Numeric event code.
    pub code: Option<u64>,
    /// Event name, like "Password updated".
    pub name: Option<Name>,
    /// Category, like "authentication".
    pub category: Option<Category>,
    /// Severity, like "info" or "high".
    pub severity: Option<Severity>,
    /// What the event means.
    pub description: Option<Description>,
    /// The id of the deployment-level service key that published the event into this
    /// tenant's log (none for a tenant's own keys and for the service's own events).
    pub published_by: Option<Identifier>,
}

impl CatalogFields {
    /// Whether no field is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.code.is_none()
            && self.name.is_none()
            && self.category.is_none()
            && self.severity.is_none()
            && self.description.is_none()
            && self.published_by.is_none()
    }
}

/// One stored entry of a tenant's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    tenant: TenantId,
    seq: u64,
    received_at: Timestamp,
    event: Event,
    catalog: CatalogFields,
}

impl Record {
    /// Assembles a record; every part is already valid, so this cannot fail.
    #[must_use]
    pub fn new(
        tenant: TenantId,
        seq: u64,
        received_at: Timestamp,
        event: Event,
        catalog: CatalogFields,
    ) -> Self {
        Self {
            tenant,
            seq,
            received_at,
            event,
            catalog,
        }
    }

    /// The tenant whose log holds the record.
    #[must_use]
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// 0-based position in the tenant's log.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When the server received the event.
    #[must_use]
    pub fn received_at(&self) -> Timestamp {
        self.received_at
    }

    /// The event.
    #[must_use]
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The catalog's fields.
    #[must_use]
    pub fn catalog(&self) -> &CatalogFields {
        &self.catalog
    }

    /// Takes the record apart into its event and catalog fields.
    #[must_use]
    pub fn into_parts(self) -> (Event, CatalogFields) {
        (self.event, self.catalog)
    }

    /// Length in bytes of [`Record::encode`]'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let mut counter = Counter(0);
        self.emit(&mut counter);
        counter.0
    }

    /// The canonical bytes (version 1): what the ledger stores and the leaf hash covers.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.emit(&mut out);
        out
    }

    /// Appends the canonical bytes to `out` (to reuse one buffer for many records).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        self.emit(out);
    }

    /// Writes every field in tag order; the one place that defines the layout.
    fn emit(&self, sink: &mut impl Sink) {
        let event = &self.event;
        sink.put(&[FORMAT_VERSION]);
        put_text(sink, tag::TENANT, Some(self.tenant.as_str()));
        put_value(sink, tag::SEQ, &self.seq.to_be_bytes());
        put_value(
            sink,
            tag::RECEIVED_AT,
            &self.received_at.unix_nanos().to_be_bytes(),
        );
        put_text(sink, tag::EVENT_ID, event.id.as_ref().map(EventId::as_str));
        put_text(sink, tag::TYPE, Some(event.event_type.as_str()));
        if let Some(occurred_at) = event.occurred_at {
            put_value(
                sink,
                tag::OCCURRED_AT,
                &occurred_at.unix_nanos().to_be_bytes(),
            );
        }
        if let Some(actor) = &event.actor {
            put_struct(sink, tag::ACTOR, &actor_fields(actor));
        }
        for target in &event.targets {
            put_struct(sink, tag::TARGET, &target_fields(target));
        }
        if let Some(outcome) = event.outcome {
            put_value(sink, tag::OUTCOME, &[outcome.code()]);
        }
        put_text(
            sink,
            tag::CORRELATION_ID,
            text(event.correlation_id.as_ref()),
        );
        if let Some(source) = &event.source {
            put_struct(sink, tag::SOURCE, &source_fields(source));
        }
        put_text(sink, tag::SUMMARY, text(event.summary.as_ref()));
        put_text(
            sink,
            tag::DETAILS,
            event.details.as_ref().map(Details::as_str),
        );
        if let Some(code) = self.catalog.code {
            put_value(sink, tag::CODE, &code.to_be_bytes());
        }
        put_text(sink, tag::NAME, text(self.catalog.name.as_ref()));
        put_text(sink, tag::CATEGORY, text(self.catalog.category.as_ref()));
        put_text(sink, tag::SEVERITY, text(self.catalog.severity.as_ref()));
        put_text(
            sink,
            tag::DESCRIPTION,
            text(self.catalog.description.as_ref()),
        );
        put_text(
            sink,
            tag::PUBLISHED_BY,
            text(self.catalog.published_by.as_ref()),
        );
    }

    /// Reads a record, accepting only the exact bytes [`Record::encode`] would write.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] with the byte offset and field of the first problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(DecodeError::new(
                0,
                "record",
                DecodeErrorKind::TooLarge(bytes.len()),
            ));
        }
        let mut fields = open(bytes)?;
        let mut tenant = None;
        let mut seq = None;
        let mut received_at = None;
        let mut id = None;
        let mut event_type = None;
        let mut occurred_at = None;
        let mut actor = None;
        let mut targets = Vec::new();
        let mut outcome = None;
        let mut correlation_id = None;
        let mut source = None;
        let mut summary = None;
        let mut details = None;
        let mut catalog = CatalogFields::default();
        while let Some(field) = fields.next()? {
            match field.tag {
                tag::TENANT => tenant = Some(field.parse(TenantId::parse)?),
                tag::SEQ => seq = Some(u64::from_be_bytes(field.fixed()?)),
                tag::RECEIVED_AT => received_at = Some(field.timestamp()?),
                tag::EVENT_ID => id = Some(field.parse(EventId::parse)?),
                tag::TYPE => event_type = Some(field.parse(EventType::parse)?),
                tag::OCCURRED_AT => occurred_at = Some(field.timestamp()?),
                tag::ACTOR => actor = Some(decode_actor(&field)?),
                tag::TARGET => {
                    if targets.len() == MAX_TARGETS {
                        return Err(field.error(DecodeErrorKind::TooManyTargets));
                    }
                    targets.push(decode_target(&field)?);
                }
                tag::OUTCOME => {
                    let [code] = field.fixed()?;
                    let decoded = Outcome::from_code(code)
                        .ok_or_else(|| field.error(DecodeErrorKind::InvalidOutcome(code)))?;
                    outcome = Some(decoded);
                }
                tag::CORRELATION_ID => correlation_id = Some(field.parse(Identifier::parse)?),
                tag::SOURCE => source = Some(decode_source(&field)?),
                tag::SUMMARY => summary = Some(field.parse(Summary::parse)?),
                tag::DETAILS => details = Some(field.parse(Details::parse_canonical)?),
                tag::CODE => catalog.code = Some(u64::from_be_bytes(field.fixed()?)),
                tag::NAME => catalog.name = Some(field.parse(Name::parse)?),
                tag::CATEGORY => catalog.category = Some(field.parse(Category::parse)?),
                tag::SEVERITY => catalog.severity = Some(field.parse(Severity::parse)?),
                tag::DESCRIPTION => catalog.description = Some(field.parse(Description::parse)?),
                tag::PUBLISHED_BY => {
                    catalog.published_by = Some(field.parse(Identifier::parse)?);
                }
                other => return Err(field.error(DecodeErrorKind::UnknownTag(other))),
            }
        }
        let missing = |field| DecodeError::new(bytes.len(), field, DecodeErrorKind::Missing);
        Ok(Self {
            tenant: tenant.ok_or_else(|| missing("tenant"))?,
            seq: seq.ok_or_else(|| missing("seq"))?,
            received_at: received_at.ok_or_else(|| missing("received_at"))?,
            event: Event {
                id,
                event_type: event_type.ok_or_else(|| missing("type"))?,
                occurred_at,
                actor,
                targets,
                outcome,
                correlation_id,
                source,
                summary,
                details,
            },
            catalog,
        })
    }

    /// The record as people and APIs see it: `tenant`, `seq`, `received_at` (RFC 3339), the
    /// event's fields (`details` as a JSON object), then the catalog's `code`, `name`,
    /// `category`, `severity`, `description`, and `published_by` (the service key that sent
    /// it); absent fields are omitted. The same object as
    /// [`Record::write_json`] writes.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut out = Vec::with_capacity(1024);
        self.write_json(&mut out);
        // The writer's output is JSON; the fallback is unreachable.
        serde_json::from_slice(&out).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// Appends the JSON view of [`Record::to_json`] to `out`, keys in ascending order (as
    /// `serde_json` writes a `Value`), `details` as its stored canonical text.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let event = &self.event;
        let catalog = &self.catalog;
        let mut object = ObjectWriter::open(out);
        if let Some(actor) = &event.actor {
            object.object("actor", |o| {
                o.str("email", text(actor.email.as_ref()));
                o.str("id", text(actor.id.as_ref()));
                o.str("ip", actor.ip.as_ref().map(IpAddress::as_str));
                o.str("name", text(actor.name.as_ref()));
                o.str("type", text(actor.actor_type.as_ref()));
                o.str("user_agent", text(actor.user_agent.as_ref()));
            });
        }
        object.str("category", text(catalog.category.as_ref()));
        object.u64("code", catalog.code);
        object.str("correlation_id", text(event.correlation_id.as_ref()));
        object.str("description", text(catalog.description.as_ref()));
        if let Some(details) = &event.details {
            object.raw("details", details.as_str());
        }
        object.str("id", text(event.id.as_ref()));
        object.str("name", text(catalog.name.as_ref()));
        object.str(
            "occurred_at",
            event.occurred_at.map(Timestamp::to_rfc3339).as_deref(),
        );
        object.str("outcome", event.outcome.map(Outcome::as_str));
        object.str("published_by", text(catalog.published_by.as_ref()));
        object.str("received_at", Some(&self.received_at.to_rfc3339()));
        object.u64("seq", Some(self.seq));
        object.str("severity", text(catalog.severity.as_ref()));
        if let Some(source) = &event.source {
            object.object("source", |o| {
                o.str("component", text(source.component.as_ref()));
                o.str("ip", source.ip.as_ref().map(IpAddress::as_str));
                o.str("service", text(source.service.as_ref()));
                o.str("version", text(source.version.as_ref()));
            });
        }
        object.str("summary", text(event.summary.as_ref()));
        if !event.targets.is_empty() {
            object.array("targets", &event.targets, |o, target| {
                o.str("id", text(target.id.as_ref()));
                o.str("name", text(target.name.as_ref()));
                o.str("type", text(target.target_type.as_ref()));
            });
        }
        object.str("tenant", Some(self.tenant.as_str()));
        object.str("type", Some(event.event_type.as_str()));
        object.finish();
    }
}

/// Reads only the version, tenant and seq of an encoded record, without checking the rest:
/// enough for a verifier's fast contiguity checks.
///
/// # Errors
///
/// A [`DecodeError`] if the version is wrong or the record does not start with a valid
/// tenant (tag 0x01) followed by a seq (tag 0x02).
pub fn peek_header(bytes: &[u8]) -> Result<(TenantId, u64), DecodeError> {
    let mut fields = open(bytes)?;
    let tenant = match fields.next()? {
        Some(field) if field.tag == tag::TENANT => field.parse(TenantId::parse)?,
        Some(field) => {
            return Err(DecodeError::new(
                field.offset,
                "tenant",
                DecodeErrorKind::Missing,
            ));
        }
        None => {
            return Err(DecodeError::new(
                bytes.len(),
                "tenant",
                DecodeErrorKind::Missing,
            ));
        }
    };
    let seq = match fields.next()? {
        Some(field) if field.tag == tag::SEQ => u64::from_be_bytes(field.fixed()?),
        Some(field) => {
            return Err(DecodeError::new(
                field.offset,
                "seq",
                DecodeErrorKind::Missing,
            ));
        }
        None => {
            return Err(DecodeError::new(
                bytes.len(),
                "seq",
                DecodeErrorKind::Missing,
            ));
        }
    };
    Ok((tenant, seq))
}

/// The client's event id of a record, read from its first fields only (tenant, seq,
/// `received_at`, then the id if it has one), without decoding the rest: for a reader that
/// needs the id of many records it does not otherwise look at.
///
/// # Errors
///
/// A [`DecodeError`] if the fields before the id, or the id, do not read.
pub fn peek_event_id(bytes: &[u8]) -> Result<Option<EventId>, DecodeError> {
    let mut fields = open(bytes)?;
    while let Some(field) = fields.next()? {
        if field.tag == tag::EVENT_ID {
            return field.parse(EventId::parse).map(Some);
        }
        if field.tag > tag::EVENT_ID {
            break;
        }
    }
    Ok(None)
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record byte {offset} ({field}): {kind}")]
pub struct DecodeError {
    /// Byte offset of the problem: the tag byte of the offending field, or the end of the
    /// input for a missing field.
    pub offset: usize,
    /// The field, like `actor.email` or `target.id`; `record` for the record as a whole.
    pub field: &'static str,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    fn new(offset: usize, field: &'static str, kind: DecodeErrorKind) -> Self {
        Self {
            offset,
            field,
            kind,
        }
    }
}

/// What is wrong in a [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input is empty.
    #[error("empty input")]
    Empty,
    /// The first byte is not a known format version.
    #[error("format version {0:#04x} is not supported (expected 0x01)")]
    UnsupportedVersion(u8),
    /// Longer than [`MAX_RECORD_BYTES`].
    #[error("{0} bytes is more than the maximum record size {MAX_RECORD_BYTES}")]
    TooLarge(usize),
    /// A tag this version does not define at this level.
    #[error("unknown tag {0:#04x}")]
    UnknownTag(u8),
    /// A tag not greater than the previous one (only 0x08 may repeat).
    #[error("tag {tag:#04x} after tag {previous:#04x}: tags must be strictly ascending")]
    OutOfOrder {
        /// The offending tag.
        tag: u8,
        /// The tag before it.
        previous: u8,
    },
    /// The input ends inside a field header or value.
    #[error("truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header or value needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A fixed-width value (seq, timestamps, code, outcome) of the wrong length.
    #[error("value is {found} bytes, expected {expected}")]
    WrongWidth {
        /// The width the tag requires.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A text value that is not UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// An actor, target or source with no fields.
    #[error("nested struct has no fields")]
    EmptyStruct,
    /// A required field (tenant, seq, received_at, type) is absent.
    #[error("required field is missing")]
    Missing,
    /// An outcome byte other than 1..=4.
    #[error("outcome code {0} is not 1..=4")]
    InvalidOutcome(u8),
    /// More than [`MAX_TARGETS`] targets.
    #[error("more than {MAX_TARGETS} targets")]
    TooManyTargets,
    /// A value the event model rejects, or one not in canonical form.
    #[error("{} ({})", .0.message, .0.code)]
    Invalid(ValueError),
}

/// Where [`Record::emit`] writes: a byte buffer, or a counter for the length.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct Counter(usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

fn put_header(sink: &mut impl Sink, tag: u8, len: usize) {
    let len = u32::try_from(len).expect("field lengths are bounded by limits::MAX_RECORD_BYTES");
    sink.put(&[tag]);
    sink.put(&len.to_be_bytes());
}

fn put_value(sink: &mut impl Sink, tag: u8, value: &[u8]) {
    put_header(sink, tag, value.len());
    sink.put(value);
}

fn put_text(sink: &mut impl Sink, tag: u8, value: Option<&str>) {
    if let Some(value) = value {
        put_value(sink, tag, value.as_bytes());
    }
}

/// A nested struct: its present fields, in tag order, inside one field.
fn put_struct(sink: &mut impl Sink, tag: u8, fields: &[(u8, Option<&str>)]) {
    let len = fields
        .iter()
        .filter_map(|(_, value)| value.map(|value| FIELD_HEADER + value.len()))
        .sum();
    put_header(sink, tag, len);
    for &(tag, value) in fields {
        put_text(sink, tag, value);
    }
}

fn text<T: AsRef<str>>(value: Option<&T>) -> Option<&str> {
    value.map(AsRef::as_ref)
}

fn actor_fields(actor: &Actor) -> [(u8, Option<&str>); 6] {
    [
        (actor_tag::ID, text(actor.id.as_ref())),
        (actor_tag::TYPE, text(actor.actor_type.as_ref())),
        (actor_tag::NAME, text(actor.name.as_ref())),
        (actor_tag::EMAIL, text(actor.email.as_ref())),
        (actor_tag::IP, actor.ip.as_ref().map(IpAddress::as_str)),
        (actor_tag::USER_AGENT, text(actor.user_agent.as_ref())),
    ]
}

fn target_fields(target: &Target) -> [(u8, Option<&str>); 3] {
    [
        (target_tag::ID, text(target.id.as_ref())),
        (target_tag::TYPE, text(target.target_type.as_ref())),
        (target_tag::NAME, text(target.name.as_ref())),
    ]
}

fn source_fields(source: &Source) -> [(u8, Option<&str>); 4] {
    [
        (source_tag::SERVICE, text(source.service.as_ref())),
        (source_tag::COMPONENT, text(source.component.as_ref())),
        (source_tag::VERSION, text(source.version.as_ref())),
        (source_tag::IP, source.ip.as_ref().map(IpAddress::as_str)),
    ]
}

/// Checks the version byte and returns a reader over the top-level fields.
fn open(bytes: &[u8]) -> Result<Fields<'_>, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::new(0, "record", DecodeErrorKind::Empty)),
        Some(&FORMAT_VERSION) => Ok(Fields {
            bytes: &bytes[1..],
            pos: 0,
            base: 1,
            space: &RECORD_TAGS,
            last_tag: 0,
        }),
        Some(&version) => Err(DecodeError::new(
            0,
            "record",
            DecodeErrorKind::UnsupportedVersion(version),
        )),
    }
}

/// Reads the fields of one level (the record, or one nested struct) in order, checking tags
/// and lengths.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes[0]` in the whole record, for error offsets.
    base: usize,
    space: &'static TagSpace,
    last_tag: u8,
}

/// One field: its tag, where it starts in the record, and its value.
struct Field<'a> {
    tag: u8,
    name: &'static str,
    offset: usize,
    value: &'a [u8],
}

impl<'a> Fields<'a> {
    fn next(&mut self) -> Result<Option<Field<'a>>, DecodeError> {
        let rest = &self.bytes[self.pos..];
        let Some(&tag) = rest.first() else {
            return Ok(None);
        };
        let offset = self.base + self.pos;
        let level_name = self.space.names[0];
        let error = |kind| DecodeError::new(offset, level_name, kind);
        let name = match self.space.names.get(usize::from(tag)) {
            Some(name) if tag != 0 => *name,
            _ => return Err(error(DecodeErrorKind::UnknownTag(tag))),
        };
        if tag < self.last_tag || (tag == self.last_tag && self.space.repeatable != Some(tag)) {
            return Err(DecodeError::new(
                offset,
                name,
                DecodeErrorKind::OutOfOrder {
                    tag,
                    previous: self.last_tag,
                },
            ));
        }
        let Some(&[a, b, c, d]) = rest.get(1..FIELD_HEADER) else {
            return Err(DecodeError::new(
                offset,
                name,
                DecodeErrorKind::Truncated {
                    needed: FIELD_HEADER,
                    available: rest.len(),
                },
            ));
        };
        let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
        let value = FIELD_HEADER
            .checked_add(len)
            .and_then(|end| rest.get(FIELD_HEADER..end))
            .ok_or_else(|| {
                DecodeError::new(
                    offset,
                    name,
                    DecodeErrorKind::Truncated {
                        needed: len,
                        available: rest.len() - FIELD_HEADER,
                    },
                )
            })?;
        self.pos += FIELD_HEADER + len;
        self.last_tag = tag;
        Ok(Some(Field {
            tag,
            name,
            offset,
            value,
        }))
    }
}

impl<'a> Field<'a> {
    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(self.offset, self.name, kind)
    }

    fn text(&self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.value).map_err(|_| self.error(DecodeErrorKind::InvalidUtf8))
    }

    /// The value as text, through one of the event model's parsers.
    fn parse<T>(
        &self,
        parse: impl FnOnce(&str) -> Result<T, ValueError>,
    ) -> Result<T, DecodeError> {
        parse(self.text()?).map_err(|err| self.error(DecodeErrorKind::Invalid(err)))
    }

    fn fixed<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        <[u8; N]>::try_from(self.value).map_err(|_| {
            self.error(DecodeErrorKind::WrongWidth {
                expected: N,
                found: self.value.len(),
            })
        })
    }

    fn timestamp(&self) -> Result<Timestamp, DecodeError> {
        Ok(Timestamp::from_unix_nanos(i64::from_be_bytes(
            self.fixed()?,
        )))
    }

    /// A reader over the fields nested in this one.
    fn nested(&self, space: &'static TagSpace) -> Fields<'a> {
        Fields {
            bytes: self.value,
            pos: 0,
            base: self.offset + FIELD_HEADER,
            space,
            last_tag: 0,
        }
    }
}

fn decode_actor(field: &Field<'_>) -> Result<Actor, DecodeError> {
    let mut actor = Actor {
        id: None,
        actor_type: None,
        name: None,
        email: None,
        ip: None,
        user_agent: None,
    };
    let mut fields = field.nested(&ACTOR_TAGS);
    while let Some(sub) = fields.next()? {
        match sub.tag {
            actor_tag::ID => actor.id = Some(sub.parse(Identifier::parse)?),
            actor_tag::TYPE => actor.actor_type = Some(sub.parse(Kind::parse)?),
            actor_tag::NAME => actor.name = Some(sub.parse(Name::parse)?),
            actor_tag::EMAIL => actor.email = Some(sub.parse(Email::parse)?),
            actor_tag::IP => actor.ip = Some(sub.parse(IpAddress::parse_canonical)?),
            actor_tag::USER_AGENT => actor.user_agent = Some(sub.parse(UserAgent::parse)?),
            other => return Err(sub.error(DecodeErrorKind::UnknownTag(other))),
        }
    }
    if actor.is_empty() {
        return Err(field.error(DecodeErrorKind::EmptyStruct));
    }
    Ok(actor)
}

fn decode_target(field: &Field<'_>) -> Result<Target, DecodeError> {
    let mut target = Target {
        id: None,
        target_type: None,
        name: None,
    };
    let mut fields = field.nested(&TARGET_TAGS);
    while let Some(sub) = fields.next()? {
        match sub.tag {
            target_tag::ID => target.id = Some(sub.parse(Identifier::parse)?),
            target_tag::TYPE => target.target_type = Some(sub.parse(Kind::parse)?),
            target_tag::NAME => target.name = Some(sub.parse(Name::parse)?),
            other => return Err(sub.error(DecodeErrorKind::UnknownTag(other))),
        }
    }
    if target.is_empty() {
        return Err(field.error(DecodeErrorKind::EmptyStruct));
    }
    Ok(target)
}

fn decode_source(field: &Field<'_>) -> Result<Source, DecodeError> {
    let mut source = Source {
        service: None,
        component: None,
        version: None,
        ip: None,
    };
    let mut fields = field.nested(&SOURCE_TAGS);
    while let Some(sub) = fields.next()? {
        match sub.tag {
            source_tag::SERVICE => source.service = Some(sub.parse(ServiceName::parse)?),
            source_tag::COMPONENT => source.component = Some(sub.parse(ComponentName::parse)?),
            source_tag::VERSION => source.version = Some(sub.parse(Version::parse)?),
            source_tag::IP => source.ip = Some(sub.parse(IpAddress::parse_canonical)?),
            other => return Err(sub.error(DecodeErrorKind::UnknownTag(other))),
        }
    }
    if source.is_empty() {
        return Err(field.error(DecodeErrorKind::EmptyStruct));
    }
    Ok(source)
}
