//! What a search asks for ([`Query`], [`Order`], [`GroupBy`]) and its translation into one
//! tantivy query, always scoped by the tenant term.
//!
//! Every set filter must hold (AND). Within [`Query::types`] any one filter may match (OR).
//! Matching rules per field are on [`Query`]; text fields compared case-insensitively are
//! indexed lowercased (`crate::schema`) and the query value is lowercased the same way.

use std::ops::Bound;

use tantivy::Searcher;
use tantivy::Term;
use tantivy::query::{
    BooleanQuery, EmptyQuery, Occur, Query as TantivyQuery, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use veritrail_core::event::{EventType, Outcome, TenantId, Timestamp};

use crate::schema::{Fields, outcome_code};
use crate::{QueryLimits, SearchError};

/// A prefix that expands to more terms than this becomes a `TermSetQuery` (a bit set built
/// per segment) instead of a union of term queries.
const MAX_PREFIX_TERMS_AS_UNION: usize = 64;

/// One alternative of [`Query::types`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeFilter {
    /// Exactly this event type.
    Exact(EventType),
    /// Every type that starts with this text, like `user.` (from `user.*`): matches
    /// `user.login` and `user.session.ended`, not `user` or `username.set`.
    Prefix(String),
}

impl TypeFilter {
    /// Parses `user.login` as [`TypeFilter::Exact`] and `user.*` as a
    /// [`TypeFilter::Prefix`] of `user.`.
    ///
    /// # Errors
    ///
    /// [`SearchError::InvalidQuery`] when the text (without `.*`) is not an event type.
    pub fn parse(text: &str) -> Result<Self, SearchError> {
        let invalid = |err| SearchError::InvalidQuery(format!("type filter {text:?}: {err}"));
        match text.strip_suffix(".*") {
            Some(stem) => {
                EventType::parse(stem).map_err(invalid)?;
                Ok(Self::Prefix(format!("{stem}.")))
            }
            None => EventType::parse(text).map(Self::Exact).map_err(invalid),
        }
    }
}

/// Filters of a search; the default matches every record of the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Any of these types (empty: any type).
    pub types: Vec<TypeFilter>,
    /// The catalog category, case-insensitive.
    pub category: Option<String>,
    /// The catalog code.
    pub code: Option<u64>,
    /// The catalog event name, exact but case-insensitive.
    pub name: Option<String>,
    /// `actor.id` exactly, or `actor.email` case-insensitively.
    pub actor: Option<String>,
    /// Any `targets[].id` exactly, or any `targets[].name` case-insensitively.
    pub target: Option<String>,
    /// The outcome.
    pub outcome: Option<Outcome>,
    /// The correlation id, exact.
    pub correlation_id: Option<String>,
    /// The client's idempotency id, exact.
    pub event_id: Option<String>,
    /// Event time at or after this (event time: `occurred_at`, else `received_at`).
    pub from: Option<Timestamp>,
    /// Event time before this.
    pub to: Option<Timestamp>,
    /// Free text: whitespace-separated words, every one of which must occur in the record's
    /// text (see `crate::schema` for what is indexed and how it is split). A word ending in
    /// `*` is a prefix. Each word is split like the indexed text, so `user.log*` asks for
    /// the word `user` and a word starting with `log`; a word with no letters or digits is
    /// ignored.
    pub text: Option<String>,
}

/// Order of a page, by seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// What [`crate::SearchIndex::count`] groups by. Records without the value form the group
/// `""`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The event type.
    Type,
    /// The catalog category, lowercased.
    Category,
    /// The outcome (`success`, `failure`, ...).
    Outcome,
    /// The actor id, else the actor email as given.
    Actor,
}

/// The event times a query accepts as an inclusive range `(first, last)` of Unix nanos;
/// `None` when no time can match (`from >= to`).
pub(crate) fn time_range(query: &Query) -> Option<(i64, i64)> {
    let first = query.from.map_or(i64::MIN, Timestamp::unix_nanos);
    match query.to.map(Timestamp::unix_nanos) {
        Some(to) if to <= first => None,
        Some(to) => Some((first, to - 1)),
        None => Some((first, i64::MAX)),
    }
}

/// Whether [`build`] puts the event-time range into the tantivy query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeFilter {
    /// As a fast-field range query (for counts, which visit every match anyway).
    InQuery,
    /// Left to the caller, which checks the time column itself: tantivy's fast-field range
    /// scorer scans the column from doc 0 to its first match when it is created, which the
    /// windowed page walk (`crate::page`) would pay for every window.
    ByCaller,
}

/// Builds the tantivy query for `query` in `tenant`. `searcher` is needed to expand prefix
/// words into the terms present in the index.
pub(crate) fn build(
    fields: &Fields,
    analyzer: &mut TextAnalyzer,
    searcher: &Searcher,
    tenant: &TenantId,
    query: &Query,
    time_filter: TimeFilter,
    limits: &QueryLimits,
) -> Result<Box<dyn TantivyQuery>, SearchError> {
    let mut must: Vec<Box<dyn TantivyQuery>> = vec![term_text(fields.tenant, tenant.as_str())];
    if query.types.len() > limits.max_filter_values {
        return Err(SearchError::TooCostly(format!(
            "the type filter has {} values; a search takes at most {}",
            query.types.len(),
            limits.max_filter_values
        )));
    }
    if !query.types.is_empty() {
        let mut any = Vec::new();
        for filter in &query.types {
            match filter {
                TypeFilter::Exact(event_type) => {
                    any.push(term_text(fields.event_type, event_type.as_str()));
                }
                TypeFilter::Prefix(prefix) if prefix.ends_with('.') => {
                    any.push(term_text(fields.type_prefix, prefix));
                }
                TypeFilter::Prefix(prefix) => {
                    any.push(prefix_query(searcher, fields.event_type, prefix, limits)?);
                }
            }
        }
        must.push(should(any));
    }
    if let Some(category) = &query.category {
        must.push(term_text(fields.category, &category.to_lowercase()));
    }
    if let Some(code) = query.code {
        must.push(term(Term::from_field_u64(fields.code, code)));
    }
    if let Some(name) = &query.name {
        must.push(term_text(fields.name, &name.to_lowercase()));
    }
    if let Some(actor) = &query.actor {
        must.push(should(vec![
            term_text(fields.actor_id, actor),
            term_text(fields.actor_email, &actor.to_lowercase()),
        ]));
    }
    if let Some(target) = &query.target {
        must.push(should(vec![
            term_text(fields.target_id, target),
            term_text(fields.target_name, &target.to_lowercase()),
        ]));
    }
    if let Some(outcome) = query.outcome {
        must.push(term(Term::from_field_u64(
            fields.outcome,
            outcome_code(Some(outcome)),
        )));
    }
    if let Some(correlation_id) = &query.correlation_id {
        must.push(term_text(fields.correlation_id, correlation_id));
    }
    if let Some(event_id) = &query.event_id {
        must.push(term_text(fields.event_id, event_id));
    }
    if time_filter == TimeFilter::InQuery && (query.from.is_some() || query.to.is_some()) {
        match time_range(query) {
            None => return Ok(Box::new(EmptyQuery)),
            Some((first, last)) => must.push(Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_i64(fields.time, first)),
                Bound::Included(Term::from_field_i64(fields.time, last)),
            ))),
        }
    }
    if let Some(text) = &query.text {
        let words = words(analyzer, text);
        if words.len() > limits.max_words {
            return Err(SearchError::TooCostly(format!(
                "the free text q has {} words; a search takes at most {}",
                words.len(),
                limits.max_words
            )));
        }
        let n_prefixes = words
            .iter()
            .filter(|word| matches!(word, Word::Prefix(_)))
            .count();
        if n_prefixes > limits.max_prefix_words {
            return Err(SearchError::TooCostly(format!(
                "the free text q has {n_prefixes} prefix words (ending in *); a search takes at most {}",
                limits.max_prefix_words
            )));
        }
        for word in words {
            must.push(match word {
                Word::Exact(word) => term_text(fields.text, &word),
                Word::Prefix(prefix) => prefix_query(searcher, fields.text, &prefix, limits)?,
            });
        }
    }
    Ok(Box::new(BooleanQuery::new(
        must.into_iter().map(|query| (Occur::Must, query)).collect(),
    )))
}

/// One word of [`Query::text`] after analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Word {
    Exact(String),
    Prefix(String),
}

/// Splits free text into words as documented on [`Query::text`].
pub(crate) fn words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    for chunk in text.split_whitespace() {
        let stem = chunk.trim_end_matches('*');
        let is_prefix = stem.len() < chunk.len();
        let mut tokens = Vec::new();
        let mut stream = analyzer.token_stream(stem);
        while let Some(token) = stream.next() {
            tokens.push(token.text.clone());
        }
        let n_tokens = tokens.len();
        for (idx, token) in tokens.into_iter().enumerate() {
            out.push(if is_prefix && idx + 1 == n_tokens {
                Word::Prefix(token)
            } else {
                Word::Exact(token)
            });
        }
    }
    out
}

fn term(term: Term) -> Box<dyn TantivyQuery> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn term_text(field: Field, text: &str) -> Box<dyn TantivyQuery> {
    term(Term::from_field_text(field, text))
}

fn should(queries: Vec<Box<dyn TantivyQuery>>) -> Box<dyn TantivyQuery> {
    Box::new(BooleanQuery::new(
        queries
            .into_iter()
            .map(|query| (Occur::Should, query))
            .collect(),
    ))
}

/// Documents with a term of `field` that starts with `prefix`: the terms are looked up in
/// every segment's dictionary now, so the query matches exactly what `searcher` holds. A
/// prefix of more than `limits.max_prefix_terms` terms is refused (the scan stops there).
fn prefix_query(
    searcher: &Searcher,
    field: Field,
    prefix: &str,
    limits: &QueryLimits,
) -> Result<Box<dyn TantivyQuery>, SearchError> {
    let mut terms = std::collections::BTreeSet::new();
    let too_many = || {
        SearchError::TooCostly(format!(
            "the prefix {prefix:?}* matches more than {} words; make it longer",
            limits.max_prefix_terms
        ))
    };
    for segment in searcher.segment_readers() {
        let inverted_index = segment.inverted_index(field)?;
        let mut stream = inverted_index
            .terms()
            .range()
            .ge(prefix.as_bytes())
            .into_stream()?;
        while stream.advance() {
            let key = stream.key();
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            terms.insert(key.to_vec());
            if terms.len() > limits.max_prefix_terms {
                return Err(too_many());
            }
        }
    }
    let terms: Vec<Term> = terms
        .iter()
        .filter_map(|key| std::str::from_utf8(key).ok())
        .map(|text| Term::from_field_text(field, text))
        .collect();
    Ok(match terms.len() {
        0 => Box::new(EmptyQuery),
        n if n <= MAX_PREFIX_TERMS_AS_UNION => should(terms.into_iter().map(term).collect()),
        _ => Box::new(TermSetQuery::new(terms)),
    })
}
