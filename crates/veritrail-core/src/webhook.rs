//! Webhook notifications, the pure parts: Standard Webhooks signatures
//! (<https://www.standardwebhooks.com>) and the `envelope` format, user-action notifications
//! as VGS sends them ("Monitoring User Actions Programmatically"). The delivery machinery
//! builds on these; nothing here does I/O or reads the clock.
//!
//! A signature is `v1,` and the standard base64 of HMAC-SHA256, keyed with the secret's
//! bytes, over `msg_id.timestamp.body` (the `webhook-id` and `webhook-timestamp` headers and
//! the raw body). During a secret rotation a delivery carries one signature per secret,
//! separated by spaces, in `webhook-signature`; a receiver accepts it if any one verifies.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::Timestamp;
use crate::record::Record;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// Shortest and longest secret, in bytes (Standard Webhooks asks for 24 to 64).
pub const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A signing secret: `whsec_` and the standard base64 of 24 to 64 bytes. Its `Debug` does
/// not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

/// Why a secret's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(String);

impl WebhookSecret {
    /// Parses `whsec_<base64>`.
    ///
    /// # Errors
    ///
    /// A missing prefix, text that is not standard base64, or a key outside
    /// [`SECRET_BYTES`].
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| SecretError(format!("a secret starts with `{SECRET_PREFIX}`")))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError(format!("after `{SECRET_PREFIX}` a secret is base64")))?;
        Self::from_bytes(bytes)
    }

    /// A secret of these key bytes (say, fresh random ones).
    ///
    /// # Errors
    ///
    /// A key outside [`SECRET_BYTES`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SecretError> {
        if !SECRET_BYTES.contains(&bytes.len()) {
            return Err(SecretError(format!(
                "a secret is {} to {} bytes (this one is {})",
                SECRET_BYTES.start(),
                SECRET_BYTES.end(),
                bytes.len()
            )));
        }
        Ok(Self(bytes))
    }

    /// The text form, `whsec_<base64>`.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The signature of one message: `v1,<base64>`.
    #[must_use]
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mac = hmac_sha256(
            &self.0,
            &[
                msg_id.as_bytes(),
                b".",
                timestamp.to_string().as_bytes(),
                b".",
                body,
            ],
        );
        format!("v1,{}", STANDARD.encode(mac))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// The `webhook-signature` header: one signature per secret (two during a rotation),
/// separated by spaces.
#[must_use]
pub fn signature_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1` signature of `header` is `secret`'s for the message (compared in
/// constant time). The timestamp's freshness is the receiver's to check.
#[must_use]
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let expected = secret.sign(msg_id, timestamp, body);
    header
        .split(' ')
        .filter(|signature| signature.starts_with("v1,"))
        .any(|signature| constant_time_eq(signature.as_bytes(), expected.as_bytes()))
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts`.
#[must_use]
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|byte| byte ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|byte| byte ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// What a notification adds to the record it is about.
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a> {
    /// The notification's id: unique, and the same on every retry (`webhook-id` too).
    pub id: &'a str,
    /// The subscription that sends it.
    pub integration_id: &'a str,
    /// `every_single`, or the grouping window's name.
    pub grouping: &'a str,
    /// How many events the notification stands for (1 unless grouped).
    pub occurrence: u64,
}

/// The VGS-style envelope of a notification about `record`: `id`, `event` (the type),
/// `description` and `summary` (the catalog's description and the record's summary, `""`
/// when absent), `details` (`{}` when absent), `producer` (`user_agent` and `user_email` of
/// the actor, `""` when absent), `scope` (the type's first segment, as VGS has
/// `user` for `user.logged_in`), `tenant` and `org_id` (the tenant), `integration_id`,
/// `grouping`, `occurrence`, and `timestamp` (the event's time, RFC 3339 with milliseconds
/// in UTC).
#[must_use]
pub fn envelope(record: &Record, notification: &Notification<'_>) -> Value {
    serde_json::to_value(Envelope::of(record, notification)).unwrap_or(Value::Null)
}

/// [`envelope`] as JSON text, with the keys in VGS's order (alphabetical, `description`
/// to `timestamp`): the body a webhook delivery sends.
#[must_use]
pub fn envelope_json(record: &Record, notification: &Notification<'_>) -> Vec<u8> {
    serde_json::to_vec(&Envelope::of(record, notification)).unwrap_or_default()
}

/// The envelope's fields, in VGS's order (which is alphabetical).
#[derive(serde::Serialize)]
struct Envelope<'a> {
    description: &'a str,
    details: Value,
    event: &'a str,
    grouping: &'a str,
    id: &'a str,
    integration_id: &'a str,
    occurrence: u64,
    org_id: &'a str,
    producer: Producer<'a>,
    scope: &'a str,
    summary: &'a str,
    tenant: &'a str,
    timestamp: String,
}

#[derive(serde::Serialize)]
struct Producer<'a> {
    user_agent: &'a str,
    user_email: &'a str,
}

impl<'a> Envelope<'a> {
    fn of(record: &'a Record, notification: &Notification<'a>) -> Envelope<'a> {
        let event = record.event();
        let actor = event.actor();
        let event_type = event.event_type().as_str();
        let time = event.occurred_at().unwrap_or_else(|| record.received_at());
        Envelope {
            id: notification.id,
            event: event_type,
            description: record
                .catalog()
                .description
                .as_ref()
                .map_or("", |d| d.as_str()),
            summary: event.summary().map_or("", |s| s.as_str()),
            details: event.details().map_or_else(
                || Value::Object(Map::new()),
                crate::event::Details::to_value,
            ),
            producer: Producer {
                user_agent: actor
                    .and_then(|a| a.user_agent())
                    .map_or("", |u| u.as_str()),
                user_email: actor.and_then(|a| a.email()).map_or("", |e| e.as_str()),
            },
            scope: event_type.split('.').next().unwrap_or(event_type),
            tenant: record.tenant().as_str(),
            org_id: record.tenant().as_str(),
            integration_id: notification.integration_id,
            grouping: notification.grouping,
            occurrence: notification.occurrence,
            timestamp: rfc3339_millis(time),
        }
    }
}

/// RFC 3339 in UTC with exactly three fraction digits, like `2025-10-23T16:31:39.680Z`.
#[must_use]
pub fn rfc3339_millis(time: Timestamp) -> String {
    let millis = time.unix_nanos().div_euclid(1_000_000);
    let full = Timestamp::from_unix_nanos(millis * 1_000_000).to_rfc3339();
    // `to_rfc3339` writes nine fraction digits: keep three.
    match full.split_once('.') {
        Some((seconds, _)) => format!("{seconds}.{:03}Z", millis.rem_euclid(1000)),
        None => full,
    }
}
