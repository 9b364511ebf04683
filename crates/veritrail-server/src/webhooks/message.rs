//! What a subscription sends: which records match, how they group, and each message's id
//! and body. Everything here is a function of the records, so a message computed again
//! after a restart is the same message, with the same `webhook-id`.

use serde_json::{Value, json};
use veritrail_api::WebhookFilter;
use veritrail_core::event::Outcome;
use veritrail_core::record::Record;
use veritrail_core::webhook::{Notification, envelope_json, rfc3339_millis};

/// The payload formats.
pub const FORMATS: [&str; 2] = ["standard", "envelope"];
/// The grouping that sends one message per event.
pub const EVERY_SINGLE: &str = "every_single";

/// A subscription's filter, checked.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// `(pattern, is_prefix)`: `user.*` is the prefix `user.`.
    types: Vec<(String, bool)>,
    /// Lowercase.
    categories: Vec<String>,
    outcomes: Vec<Outcome>,
}

impl Matcher {
    /// Checks a filter; the error names the bad entry.
    pub fn new(filter: &WebhookFilter) -> Result<Matcher, String> {
        let mut types = Vec::new();
        for pattern in &filter.types {
            let (stem, prefix) = match pattern.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (pattern.as_str(), false),
            };
            let valid = !stem.is_empty()
                && stem.len() <= 128
                && stem.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/')
                })
                && (!prefix || stem.ends_with('.'));
            if !valid {
                return Err(format!(
                    "filter.types: {pattern:?} is not an event type or a prefix like user.*"
                ));
            }
            types.push((stem.to_owned(), prefix));
        }
        let mut categories = Vec::new();
        for category in &filter.categories {
            if category.trim().is_empty() || category.len() > 128 {
                return Err(format!("filter.categories: {category:?} is not a category"));
            }
            categories.push(category.trim().to_lowercase());
        }
        let mut outcomes = Vec::new();
        for outcome in &filter.outcomes {
            outcomes.push(Outcome::parse(outcome).map_err(|_| {
                format!(
                    "filter.outcomes: {outcome:?} is not an outcome (success, failure, pending, unknown)"
                )
            })?);
        }
        Ok(Matcher {
            types,
            categories,
            outcomes,
        })
    }

    /// Whether the subscription sends `record`.
    pub fn matches(&self, record: &Record) -> bool {
        let event = record.event();
        let event_type = event.event_type().as_str();
        let type_ok = self.types.is_empty()
            || self.types.iter().any(|(stem, prefix)| {
                if *prefix {
                    event_type.starts_with(stem.as_str())
                } else {
                    event_type == stem
                }
            });
        let category_ok = self.categories.is_empty()
            || record.catalog().category.as_ref().is_some_and(|category| {
                let category = category.as_str().to_lowercase();
                self.categories.contains(&category)
            });
        let outcome = event.outcome().unwrap_or(Outcome::Unknown);
        let outcome_ok = self.outcomes.is_empty() || self.outcomes.contains(&outcome);
        type_ok && category_ok && outcome_ok
    }
}

/// How events become messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One message per event.
    EverySingle,
    /// One message per event type and actor per window of this many seconds (windows
    /// are aligned to the Unix epoch and apply to the time the server received the events).
    Window(u64),
}

impl Grouping {
    /// `every_single`, or a window of 1 second to 1 day written `90s`, `5m` or `1h`.
    pub fn parse(text: &str) -> Result<Grouping, String> {
        if text == EVERY_SINGLE {
            return Ok(Grouping::EverySingle);
        }
        let bad = || {
            format!(
                "grouping: {text:?} is not every_single or a window like 60s, 5m or 1h (1 second to 1 day)"
            )
        };
        let split = text.len().checked_sub(1).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "s" => number,
            "m" => number.checked_mul(60).ok_or_else(bad)?,
            "h" => number.checked_mul(3600).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        if seconds == 0 || seconds > 86_400 {
            return Err(bad());
        }
        Ok(Grouping::Window(seconds))
    }

    /// The window `received_at` falls in, as `(start, end)` Unix nanoseconds.
    pub fn window_of(self, record: &Record) -> Option<(i64, i64)> {
        match self {
            Grouping::EverySingle => None,
            Grouping::Window(seconds) => {
                let width = i64::try_from(seconds).unwrap_or(86_400) * 1_000_000_000;
                let start = record.received_at().unix_nanos().div_euclid(width) * width;
                Some((start, start + width))
            }
        }
    }
}

/// One message to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The `webhook-id`: `msg_`, the subscription's id digits, and the (first) event's seq.
    pub id: String,
    /// The seq of the (first) event.
    pub seq: u64,
    /// Events it stands for.
    pub occurrence: u64,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// The message id of the message whose (first) event is `seq`.
pub fn message_id(subscription: &str, seq: u64) -> String {
    format!("msg_{}_{seq}", subscription.trim_start_matches("wh_"))
}

/// The seq a message id names, if it is one of `subscription`'s.
pub fn message_seq(subscription: &str, message_id: &str) -> Option<u64> {
    message_id
        .strip_prefix("msg_")?
        .strip_prefix(subscription.trim_start_matches("wh_"))?
        .strip_prefix('_')?
        .parse()
        .ok()
}

/// What a subscription's messages are made from.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    pub subscription: &'a str,
    /// `standard` or `envelope`.
    pub format: &'a str,
    /// As the subscription names it (the envelope's `grouping`).
    pub grouping_name: &'a str,
}

impl<'a> Shape<'a> {
    /// The shape of `row`'s messages.
    pub fn of(row: &'a super::store::SubscriptionRow) -> Shape<'a> {
        Shape {
            subscription: &row.id,
            format: &row.format,
            grouping_name: &row.grouping,
        }
    }

    /// The message about `first` standing for `occurrence` events (`seqs` of them all when
    /// grouped).
    pub fn message(&self, first: &Record, occurrence: u64, seqs: Option<&[u64]>) -> Message {
        let id = message_id(self.subscription, first.seq());
        let body = if self.format == "envelope" {
            envelope_json(
                first,
                &Notification {
                    id: &id,
                    integration_id: self.subscription,
                    grouping: self.grouping_name,
                    occurrence,
                },
            )
        } else {
            let timestamp = rfc3339_millis(first.received_at());
            let mut record = Vec::with_capacity(768);
            first.write_json(&mut record);
            let record = String::from_utf8_lossy(&record);
            let data = match seqs {
                None => record.into_owned(),
                Some(seqs) => json!({
                    "grouping": self.grouping_name,
                    "occurrence": occurrence,
                    "seqs": seqs,
                    "first": serde_json::from_str::<Value>(&record).unwrap_or(Value::Null),
                })
                .to_string(),
            };
            format!(
                "{{\"type\":{},\"timestamp\":{},\"data\":{data}}}",
                Value::from(first.event().event_type().as_str()),
                Value::from(timestamp),
            )
            .into_bytes()
        };
        Message {
            id,
            seq: first.seq(),
            occurrence,
            body,
        }
    }
}

/// Seqs listed in a grouped `standard` message.
const MAX_GROUP_SEQS: usize = 1000;

/// The groups of one window, in the order of their first events: each holds the records of
/// one event type and actor (the first record, the count, the first 1,000 seqs).
#[derive(Debug, Default)]
pub struct Groups {
    groups: Vec<(Record, u64, Vec<u64>)>,
    index: std::collections::HashMap<(String, String), usize>,
}

impl Groups {
    /// Adds a matching record of the window (in seq order).
    pub fn add(&mut self, record: Record) {
        let event = record.event();
        let key = (
            event.event_type().as_str().to_owned(),
            event
                .actor()
                .and_then(|actor| actor.id())
                .map_or_else(String::new, |id| id.as_str().to_owned()),
        );
        let seq = record.seq();
        match self.index.get(&key) {
            Some(&group) => {
                let (_, count, seqs) = &mut self.groups[group];
                *count += 1;
                if seqs.len() < MAX_GROUP_SEQS {
                    seqs.push(seq);
                }
            }
            None => {
                self.index.insert(key, self.groups.len());
                self.groups.push((record, 1, vec![seq]));
            }
        }
    }

    /// One message per group, in the order of their first events.
    pub fn messages(self, shape: &Shape<'_>) -> Vec<Message> {
        self.groups
            .into_iter()
            .map(|(first, count, seqs)| shape.message(&first, count, Some(&seqs)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groupings_parse_and_refuse_what_they_must() {
        assert_eq!(Grouping::parse("every_single"), Ok(Grouping::EverySingle));
        assert_eq!(Grouping::parse("60s"), Ok(Grouping::Window(60)));
        assert_eq!(Grouping::parse("5m"), Ok(Grouping::Window(300)));
        assert_eq!(Grouping::parse("1h"), Ok(Grouping::Window(3600)));
        for bad in ["", "s", "0s", "25h", "10x", "-1s", "every"] {
            assert!(Grouping::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_ids_name_their_seq() {
        let id = message_id("wh_0123abcd", 42);
        assert_eq!(id, "msg_0123abcd_42");
        assert_eq!(message_seq("wh_0123abcd", &id), Some(42));
        assert_eq!(message_seq("wh_ffff", &id), None);
    }

    #[test]
    fn filters_are_checked() {
        let filter = |types: &[&str]| WebhookFilter {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            ..WebhookFilter::default()
        };
        assert!(Matcher::new(&filter(&["user.*", "user.login"])).is_ok());
        for bad in ["user*", "*", "", "a b"] {
            assert!(Matcher::new(&filter(&[bad])).is_err(), "{bad:?}");
        }
        let outcomes = WebhookFilter {
            outcomes: vec!["maybe".into()],
            ..WebhookFilter::default()
        };
        assert!(Matcher::new(&outcomes).is_err());
    }
}
