//! The index schema and how a [`Record`] becomes a tantivy document.
//!
//! One document per record. Nothing is stored in the doc store: the server reads records
//! from the ledger by seq. Every field is either indexed for filtering or a fast field
//! (column) for paging, grouping and block statistics:
//!
//! | field | how | what |
//! | --- | --- | --- |
//! | `tenant` | term + fast | tenant id, exact |
//! | `seq` | term + fast | the record's seq |
//! | `pos` | fast | apply order across all tenants (see below) |
//! | `time` | fast (i64) | event time: `occurred_at`, else `received_at`, Unix nanos |
//! | `type` | term + fast | event type, exact |
//! | `type_prefix` | term | every dotted prefix of the type: `a.`, `a.b.` for `a.b.c` |
//! | `category` | term + fast | catalog category, lowercased |
//! | `code` | term | catalog code |
//! | `name` | term | catalog name, lowercased |
//! | `actor_id`, `actor_email` | term | actor id exact, email lowercased |
//! | `actor_key` | fast | grouping key: actor id, else email, else nothing |
//! | `target_id`, `target_name` | term | every target's id exact, name lowercased |
//! | `outcome` | term + fast (u64) | [`Outcome::code`], 0 when absent |
//! | `correlation_id`, `event_id` | term | exact |
//! | `text` | words | free text, see below |
//! | `catalog_key` | term | `tenant NUL category NUL type` (category empty when none): the catalog's drop-downs count events per category and type from these terms' document frequencies, without visiting a document |
//!
//! `pos` numbers documents in the order [`crate::SearchIndex::apply`] added them. Each
//! tenant's records are applied in seq order, so within one tenant `pos` order is seq order;
//! unlike seq, `pos` is comparable across tenants, which is what makes per-block bounds
//! (`crate::blocks`) meaningful in a shared index.
//!
//! # Free text
//!
//! The `text` field holds the summary, catalog name and description, event type, actor name
//! and email, target names and every string value of `details` (keys and non-string values
//! are not indexed). It is split by tantivy's `SimpleTokenizer` (maximal runs of
//! alphanumeric characters, as `char::is_alphanumeric` says) and lowercased by `LowerCaser`;
//! so `user.password_updated` is the words `user`, `password`, `updated`, and
//! `Bob@Example.com` is `bob`, `example`, `com`. Only which documents hold a word is
//! indexed (no frequencies, no positions): there is no scoring and no phrase search.

use serde_json::Value;
use tantivy::TantivyDocument;
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, NumericOptions, STRING, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};
use veritrail_core::event::Outcome;
use veritrail_core::record::Record;

/// Version of the schema and payload layout; bumped on any change, which makes old
/// directories [`crate::SearchError::IncompatibleFormat`] until rebuilt.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// Name under which the free-text analyzer is registered.
pub(crate) const WORDS_TOKENIZER: &str = "veritrail_words";

/// Field names, also the fast-field column names.
pub(crate) mod names {
    pub(crate) const TENANT: &str = "tenant";
    pub(crate) const SEQ: &str = "seq";
    pub(crate) const POS: &str = "pos";
    pub(crate) const TIME: &str = "time";
    pub(crate) const TYPE: &str = "type";
    pub(crate) const CATEGORY: &str = "category";
    pub(crate) const ACTOR_KEY: &str = "actor_key";
    pub(crate) const OUTCOME: &str = "outcome";
}

/// The schema's field handles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub(crate) tenant: Field,
    pub(crate) seq: Field,
    pub(crate) pos: Field,
    pub(crate) time: Field,
    pub(crate) event_type: Field,
    pub(crate) type_prefix: Field,
    pub(crate) category: Field,
    pub(crate) code: Field,
    pub(crate) name: Field,
    pub(crate) actor_id: Field,
    pub(crate) actor_email: Field,
    pub(crate) actor_key: Field,
    pub(crate) target_id: Field,
    pub(crate) target_name: Field,
    pub(crate) outcome: Field,
    pub(crate) correlation_id: Field,
    pub(crate) event_id: Field,
    pub(crate) text: Field,
    pub(crate) catalog_key: Field,
}

impl Fields {
    /// Builds the schema and its field handles.
    pub(crate) fn schema() -> (Schema, Self) {
        let mut builder = Schema::builder();
        let exact_fast = STRING | TextOptions::default().set_fast("raw");
        let fast_only = TextOptions::default().set_fast("raw");
        let fast = NumericOptions::default().set_fast();
        let indexed_fast = NumericOptions::from(INDEXED).set_fast();
        let words = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(WORDS_TOKENIZER)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        );
        let fields = Self {
            tenant: builder.add_text_field(names::TENANT, exact_fast.clone()),
            seq: builder.add_u64_field(names::SEQ, indexed_fast.clone()),
            pos: builder.add_u64_field(names::POS, fast.clone()),
            time: builder.add_i64_field(names::TIME, fast),
            event_type: builder.add_text_field(names::TYPE, exact_fast.clone()),
            type_prefix: builder.add_text_field("type_prefix", STRING),
            category: builder.add_text_field(names::CATEGORY, exact_fast),
            code: builder.add_u64_field("code", INDEXED),
            name: builder.add_text_field("name", STRING),
            actor_id: builder.add_text_field("actor_id", STRING),
            actor_email: builder.add_text_field("actor_email", STRING),
            actor_key: builder.add_text_field(names::ACTOR_KEY, fast_only),
            target_id: builder.add_text_field("target_id", STRING),
            target_name: builder.add_text_field("target_name", STRING),
            outcome: builder.add_u64_field(names::OUTCOME, indexed_fast),
            correlation_id: builder.add_text_field("correlation_id", STRING),
            event_id: builder.add_text_field("event_id", STRING),
            text: builder.add_text_field("text", words),
            catalog_key: builder.add_text_field("catalog_key", STRING),
        };
        (builder.build(), fields)
    }

    /// The document for `record`, numbered `pos` in apply order.
    pub(crate) fn document(&self, record: &Record, pos: u64, text: &mut String) -> TantivyDocument {
        let event = record.event();
        let catalog = record.catalog();
        let mut doc = TantivyDocument::new();
        doc.add_text(self.tenant, record.tenant().as_str());
        doc.add_u64(self.seq, record.seq());
        doc.add_u64(self.pos, pos);
        doc.add_i64(self.time, event_time(record));
        let event_type = event.event_type().as_str();
        doc.add_text(self.event_type, event_type);
        for (idx, byte) in event_type.bytes().enumerate() {
            if byte == b'.' {
                doc.add_text(self.type_prefix, &event_type[..=idx]);
            }
        }
        if let Some(category) = &catalog.category {
            doc.add_text(self.category, category.as_str().to_lowercase());
        }
        if let Some(code) = catalog.code {
            doc.add_u64(self.code, code);
        }
        if let Some(name) = &catalog.name {
            doc.add_text(self.name, name.as_str().to_lowercase());
        }
        if let Some(actor) = event.actor() {
            if let Some(id) = actor.id() {
                doc.add_text(self.actor_id, id.as_str());
                doc.add_text(self.actor_key, id.as_str());
            }
            if let Some(email) = actor.email() {
                doc.add_text(self.actor_email, email.as_str().to_lowercase());
                if actor.id().is_none() {
                    doc.add_text(self.actor_key, email.as_str());
                }
            }
        }
        for target in event.targets() {
            if let Some(id) = target.id() {
                doc.add_text(self.target_id, id.as_str());
            }
            if let Some(name) = target.name() {
                doc.add_text(self.target_name, name.as_str().to_lowercase());
            }
        }
        doc.add_u64(self.outcome, outcome_code(event.outcome()));
        if let Some(correlation_id) = event.correlation_id() {
            doc.add_text(self.correlation_id, correlation_id.as_str());
        }
        if let Some(event_id) = event.id() {
            doc.add_text(self.event_id, event_id.as_str());
        }
        free_text(record, text);
        doc.add_text(self.text, text.as_str());
        text.clear();
        catalog_key(
            record.tenant().as_str(),
            catalog.category.as_ref().map_or("", |c| c.as_str()),
            event_type,
            text,
        );
        doc.add_text(self.catalog_key, text.as_str());
        doc
    }
}

/// The `catalog_key` term of a record: `tenant NUL category NUL type`.
pub(crate) fn catalog_key(tenant: &str, category: &str, event_type: &str, out: &mut String) {
    out.push_str(tenant);
    out.push('\0');
    out.push_str(category);
    out.push('\0');
    out.push_str(event_type);
}

/// The analyzer of the `text` field, also applied to query words.
pub(crate) fn words_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .build()
}

/// The event time: `occurred_at` if the client sent one, else `received_at`; Unix nanos.
pub fn event_time(record: &Record) -> i64 {
    record
        .event()
        .occurred_at()
        .unwrap_or_else(|| record.received_at())
        .unix_nanos()
}

/// The `outcome` column value: [`Outcome::code`], or 0 when the event has none.
pub(crate) fn outcome_code(outcome: Option<Outcome>) -> u64 {
    outcome.map_or(0, |outcome| u64::from(outcome.code()))
}

/// Writes the free-text sources of `record` into `out`, one per line.
fn free_text(record: &Record, out: &mut String) {
    out.clear();
    let event = record.event();
    let catalog = record.catalog();
    let mut push = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    if let Some(summary) = event.summary() {
        push(summary.as_str());
    }
    if let Some(name) = &catalog.name {
        push(name.as_str());
    }
    if let Some(description) = &catalog.description {
        push(description.as_str());
    }
    push(event.event_type().as_str());
    if let Some(actor) = event.actor() {
        if let Some(name) = actor.name() {
            push(name.as_str());
        }
        if let Some(email) = actor.email() {
            push(email.as_str());
        }
    }
    for target in event.targets() {
        if let Some(name) = target.name() {
            push(name.as_str());
        }
    }
    if let Some(details) = event.details() {
        // Canonical JSON always parses; a failure would only lose the details' words.
        if let Ok(value) = serde_json::from_str::<Value>(details.as_str()) {
            push_strings(&value, out);
        }
    }
}

/// Appends every string value inside `value` (not object keys), one per line.
pub(crate) fn push_strings(value: &Value, out: &mut String) {
    match value {
        Value::String(text) => {
            out.push_str(text);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|item| push_strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| push_strings(item, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
