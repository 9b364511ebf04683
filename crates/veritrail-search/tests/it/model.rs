//! Shared helpers: a seeded record generator, a brute-force model of every filter, and
//! `all_pages` that pages through a search.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use veritrail_core::event::{
    Category, Description, Event, EventInput, Name, Outcome, TenantId, Timestamp,
};
use veritrail_core::record::{CatalogFields, Record};
use veritrail_search::{Counts, GroupBy, Order, Query, SearchIndex, SearchOptions, TypeFilter};

/// splitmix64, seeded.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }
    pub(crate) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub(crate) const TYPES: [&str; 8] = [
    "user.login",
    "user.logout",
    "user.session.ended",
    "users.imported",
    "invoice.paid",
    "invoice.Created",
    "api_key.revoked",
    "login",
];
pub(crate) const CATEGORIES: [&str; 4] = ["Auth", "auth", "billing", "Data-Access"];
pub(crate) const NAMES: [&str; 3] = ["Password Updated", "password updated", "Invoice paid"];
pub(crate) const ACTOR_IDS: [&str; 4] = ["usr_1", "USR_1", "usr_2", "svc-9"];
pub(crate) const EMAILS: [&str; 4] = ["Ada@Example.com", "ada@example.com", "bob@corp.io", "x@y"];
pub(crate) const TARGET_IDS: [&str; 3] = ["obj_1", "obj_2", "Obj_1"];
pub(crate) const TARGET_NAMES: [&str; 3] = ["Quarterly Report", "quarterly report", "Widget"];
pub(crate) const WORDS: [&str; 10] = [
    "alpha",
    "alphabet",
    "beta",
    "Gamma",
    "délta",
    "report",
    "reporting",
    "x1",
    "granite",
    "ünïcode",
];
pub(crate) const CORRELATIONS: [&str; 3] = ["c-1", "c-2", "C-1"];
pub(crate) const DAY: i64 = 86_400 * 1_000_000_000;
pub(crate) const START: i64 = 1_700_000_000 * 1_000_000_000;

/// A tenant id from text.
pub(crate) fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("tenant id")
}

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| *rng.pick(&WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A varied event whose fields come from small vocabularies, so filters often match.
pub(crate) fn random_record(rng: &mut Rng, tenant: &TenantId, seq: u64) -> Record {
    let mut input = serde_json::Map::new();
    input.insert("type".into(), json!(rng.pick(&TYPES)));
    if rng.chance(70) {
        input.insert("id".into(), json!(format!("ev-{}-{seq}", tenant.as_str())));
    }
    let received_at = START + i64::try_from(seq).expect("small") * DAY / 10;
    if rng.chance(50) {
        // Client clocks disagree with the server's: event time is not in seq order.
        let skew = i64::try_from(rng.below(20)).expect("small") * DAY / 7 - DAY;
        input.insert(
            "occurred_at".into(),
            json!(Timestamp::from_unix_nanos(received_at + skew).to_rfc3339()),
        );
    }
    if rng.chance(85) {
        let mut actor = serde_json::Map::new();
        if rng.chance(70) {
            actor.insert("id".into(), json!(rng.pick(&ACTOR_IDS)));
        }
        if rng.chance(60) {
            actor.insert("email".into(), json!(rng.pick(&EMAILS)));
        }
        if rng.chance(50) {
            actor.insert("name".into(), json!(words(rng, 2)));
        }
        actor.insert("type".into(), json!("user"));
        input.insert("actor".into(), Value::Object(actor));
    }
    let targets: Vec<Value> = (0..rng.below(3))
        .map(|_| {
            let mut target = serde_json::Map::new();
            if rng.chance(70) {
                target.insert("id".into(), json!(rng.pick(&TARGET_IDS)));
            }
            if rng.chance(60) {
                target.insert("name".into(), json!(rng.pick(&TARGET_NAMES)));
            }
            target.insert("type".into(), json!("doc"));
            Value::Object(target)
        })
        .collect();
    input.insert("targets".into(), Value::Array(targets));
    if rng.chance(80) {
        let outcome = *rng.pick(&["success", "success", "failure", "pending", "unknown"]);
        input.insert("outcome".into(), json!(outcome));
    }
    if rng.chance(50) {
        input.insert("correlation_id".into(), json!(rng.pick(&CORRELATIONS)));
    }
    if rng.chance(70) {
        let n = 1 + rng.below(3);
        input.insert("summary".into(), json!(words(rng, n)));
    }
    if rng.chance(60) {
        input.insert(
            "details".into(),
            json!({
                "note": words(rng, 1),
                "nested": {"list": [words(rng, 1), 7, {"deep": words(rng, 1)}], "n": 12},
                "betakey": 1,
            }),
        );
    }
    let input: EventInput = serde_json::from_value(Value::Object(input)).expect("input");
    let event = Event::parse(input).expect("valid event");
    let catalog = CatalogFields {
        code: rng.chance(60).then(|| 100 + rng.below(3) as u64),
        name: rng
            .chance(60)
            .then(|| Name::parse(rng.pick::<&str>(&NAMES)).expect("name")),
        category: rng
            .chance(75)
            .then(|| Category::parse(rng.pick::<&str>(&CATEGORIES)).expect("category")),
        severity: None,
        description: rng
            .chance(40)
            .then(|| Description::parse(&words(rng, 2)).expect("description")),
        published_by: None,
    };
    Record::new(
        tenant.clone(),
        seq,
        Timestamp::from_unix_nanos(received_at),
        event,
        catalog,
    )
}

/// `n` records of `tenant` from seq `first`.
pub(crate) fn records(rng: &mut Rng, tenant: &TenantId, first: u64, n: u64) -> Vec<Record> {
    (first..first + n)
        .map(|seq| random_record(rng, tenant, seq))
        .collect()
}

/// A random query over the vocabularies (most fields unset).
pub(crate) fn random_query(rng: &mut Rng) -> Query {
    let mut query = Query::default();
    let set_one = |rng: &mut Rng, query: &mut Query| match rng.below(12) {
        0 => {
            query.types = (0..1 + rng.below(2))
                .map(|_| {
                    let text = *rng.pick(&[
                        "user.login",
                        "user.*",
                        "user.session.*",
                        "invoice.*",
                        "invoice.Created",
                        "login",
                        "users.*",
                    ]);
                    TypeFilter::parse(text).expect("type filter")
                })
                .collect();
        }
        1 => {
            query.category =
                Some((*rng.pick(&["auth", "AUTH", "billing", "data-access", "nope"])).to_owned());
        }
        2 => query.code = Some(100 + rng.below(4) as u64),
        3 => query.name = Some((*rng.pick(&["PASSWORD UPDATED", "invoice paid", "x"])).to_owned()),
        4 => {
            query.actor = Some(
                (*rng.pick(&["usr_1", "USR_1", "ADA@example.COM", "bob@corp.io", "usr_3"]))
                    .to_owned(),
            );
        }
        5 => {
            query.target =
                Some((*rng.pick(&["obj_1", "OBJ_1", "QUARTERLY report", "widget"])).to_owned());
        }
        6 => query.outcome = Some(*rng.pick(&Outcome::ALL)),
        7 => query.correlation_id = Some((*rng.pick(&CORRELATIONS)).to_owned()),
        8 => {
            query.event_id = Some(format!(
                "ev-{}-{}",
                rng.pick(&["t-a", "t-b"]),
                rng.below(300)
            ));
        }
        9 => {
            let from = START + i64::try_from(rng.below(40)).expect("small") * DAY;
            query.from = Some(Timestamp::from_unix_nanos(from));
            if rng.chance(70) {
                let len = i64::try_from(rng.below(15)).expect("small") * DAY / 3;
                query.to = Some(Timestamp::from_unix_nanos(from + len));
            }
        }
        10 => {
            query.to = Some(Timestamp::from_unix_nanos(
                START + i64::try_from(rng.below(30)).expect("small") * DAY,
            ));
        }
        _ => {
            let text = *rng.pick(&[
                "alpha",
                "ALPHA",
                "alph*",
                "report*",
                "Gamma beta",
                "délta",
                "DÉLTA",
                "ünïcode",
                "user",
                "session.end*",
                "ada@example.com",
                "quarterly",
                "x1",
                "x*",
                "deep",
                "betakey",
                "12",
                "paid",
                "emitted",
                "nope",
                "a*",
                "--",
                "beta,*",
                "granite report",
            ]);
            query.text = Some(text.to_owned());
        }
    };
    for _ in 0..rng.below(4) {
        set_one(rng, &mut query);
    }
    query
}

/// The words of `text` as the index splits them: runs of alphanumerics, lowercased.
pub(crate) fn split_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn strings_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| strings_of(item, out)),
        Value::Object(map) => map.values().for_each(|item| strings_of(item, out)),
        _ => {}
    }
}

/// Every word of the free text of `record`.
fn record_words(record: &Record) -> Vec<String> {
    let event = record.event();
    let catalog = record.catalog();
    let mut texts: Vec<String> = Vec::new();
    texts.extend(event.summary().map(|text| text.as_str().to_owned()));
    texts.extend(catalog.name.as_ref().map(|text| text.as_str().to_owned()));
    texts.extend(
        catalog
            .description
            .as_ref()
            .map(|text| text.as_str().to_owned()),
    );
    texts.push(event.event_type().as_str().to_owned());
    if let Some(actor) = event.actor() {
        texts.extend(actor.name().map(|text| text.as_str().to_owned()));
        texts.extend(actor.email().map(|text| text.as_str().to_owned()));
    }
    for target in event.targets() {
        texts.extend(target.name().map(|text| text.as_str().to_owned()));
    }
    if let Some(details) = event.details() {
        strings_of(&details.to_value(), &mut texts);
    }
    texts.iter().flat_map(|text| split_words(text)).collect()
}

/// Event time of `record`.
pub(crate) fn event_time(record: &Record) -> i64 {
    record
        .event()
        .occurred_at()
        .unwrap_or(record.received_at())
        .unix_nanos()
}

/// The brute-force model of [`Query`].
pub(crate) fn matches(record: &Record, query: &Query) -> bool {
    let event = record.event();
    let catalog = record.catalog();
    let lower = |text: &str| text.to_lowercase();
    if !query.types.is_empty()
        && !query.types.iter().any(|filter| match filter {
            TypeFilter::Exact(event_type) => event.event_type() == event_type,
            TypeFilter::Prefix(prefix) => event.event_type().as_str().starts_with(prefix.as_str()),
        })
    {
        return false;
    }
    if let Some(category) = &query.category
        && catalog.category.as_ref().map(|c| lower(c.as_str())) != Some(lower(category))
    {
        return false;
    }
    if query.code.is_some() && catalog.code != query.code {
        return false;
    }
    if let Some(name) = &query.name
        && catalog.name.as_ref().map(|n| lower(n.as_str())) != Some(lower(name))
    {
        return false;
    }
    if let Some(actor_query) = &query.actor {
        let Some(actor) = event.actor() else {
            return false;
        };
        let by_id = actor.id().is_some_and(|id| id.as_str() == actor_query);
        let by_email = actor
            .email()
            .is_some_and(|email| lower(email.as_str()) == lower(actor_query));
        if !by_id && !by_email {
            return false;
        }
    }
    if let Some(target_query) = &query.target
        && !event.targets().iter().any(|target| {
            target.id().is_some_and(|id| id.as_str() == target_query)
                || target
                    .name()
                    .is_some_and(|name| lower(name.as_str()) == lower(target_query))
        })
    {
        return false;
    }
    if query.outcome.is_some() && event.outcome() != query.outcome {
        return false;
    }
    if let Some(correlation_id) = &query.correlation_id
        && event.correlation_id().map(|id| id.as_str()) != Some(correlation_id.as_str())
    {
        return false;
    }
    if let Some(event_id) = &query.event_id
        && event.id().map(|id| id.as_str()) != Some(event_id.as_str())
    {
        return false;
    }
    let time = event_time(record);
    if query.from.is_some_and(|from| time < from.unix_nanos()) {
        return false;
    }
    if query.to.is_some_and(|to| time >= to.unix_nanos()) {
        return false;
    }
    if let Some(text) = &query.text {
        let words = record_words(record);
        for chunk in text.split_whitespace() {
            let stem = chunk.trim_end_matches('*');
            let is_prefix = stem.len() < chunk.len();
            let tokens = split_words(stem);
            for (idx, token) in tokens.iter().enumerate() {
                let found = if is_prefix && idx + 1 == tokens.len() {
                    words.iter().any(|word| word.starts_with(token.as_str()))
                } else {
                    words.contains(token)
                };
                if !found {
                    return false;
                }
            }
        }
    }
    true
}

/// The seqs of `tenant`'s records in `all` matching `query`, ascending.
pub(crate) fn expected(all: &[Record], tenant: &TenantId, query: &Query) -> Vec<u64> {
    let mut seqs: Vec<u64> = all
        .iter()
        .filter(|record| record.tenant() == tenant && matches(record, query))
        .map(Record::seq)
        .collect();
    seqs.sort_unstable();
    seqs
}

/// Every page of a search, checking each page's order and `next_after`.
pub(crate) fn all_pages(
    index: &SearchIndex,
    tenant: &TenantId,
    query: &Query,
    order: Order,
    limit: usize,
) -> Vec<u64> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = index
            .search(tenant, query, order, limit, after)
            .expect("search");
        assert!(page.seqs.len() <= limit);
        check_order(&page.seqs, order);
        if let (Some(last), Some(first)) = (out.last(), page.seqs.first()) {
            check_order(&[*last, *first], order);
        }
        out.extend(&page.seqs);
        match page.next_after {
            Some(next) => {
                assert_eq!(page.seqs.len(), limit, "a short page says more follow");
                assert_eq!(Some(&next), page.seqs.last());
                after = Some(next);
            }
            None => return out,
        }
    }
}

fn check_order(seqs: &[u64], order: Order) {
    for pair in seqs.windows(2) {
        match order {
            Order::Asc => assert!(pair[0] < pair[1], "{seqs:?} not ascending"),
            Order::Desc => assert!(pair[0] > pair[1], "{seqs:?} not descending"),
        }
    }
}

/// Counts computed from the model.
pub(crate) fn expected_counts(
    all: &[Record],
    tenant: &TenantId,
    query: &Query,
    group_by: Option<GroupBy>,
    interval: Option<i64>,
) -> Counts {
    let matching: Vec<&Record> = all
        .iter()
        .filter(|record| record.tenant() == tenant && matches(record, query))
        .collect();
    let mut groups: BTreeMap<String, u64> = BTreeMap::new();
    let mut buckets: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for record in &matching {
        let event = record.event();
        if let Some(group_by) = group_by {
            let key = match group_by {
                GroupBy::Type => event.event_type().as_str().to_owned(),
                GroupBy::Category => record
                    .catalog()
                    .category
                    .as_ref()
                    .map_or(String::new(), |c| c.as_str().to_lowercase()),
                GroupBy::Outcome => event.outcome().map_or("", Outcome::as_str).to_owned(),
                GroupBy::Actor => event.actor().map_or(String::new(), |actor| {
                    actor
                        .id()
                        .map(|id| id.as_str().to_owned())
                        .or_else(|| actor.email().map(|email| email.as_str().to_owned()))
                        .unwrap_or_default()
                }),
            };
            *groups.entry(key).or_default() += 1;
        }
        if let Some(interval) = interval {
            let bucket = buckets
                .entry(event_time(record).div_euclid(interval) * interval)
                .or_default();
            bucket.0 += 1;
            bucket.1 += u64::from(event.outcome() == Some(Outcome::Failure));
        }
    }
    let mut groups: Vec<(String, u64)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Counts {
        total: matching.len() as u64,
        groups,
        histogram: buckets
            .into_iter()
            .map(|(start, (total, failures))| veritrail_search::Bucket {
                start: Timestamp::from_unix_nanos(start),
                total,
                failures,
            })
            .collect(),
    }
}

/// A fresh index in a new temporary directory (kept alive by the returned guard).
pub(crate) fn fresh() -> (tempfile::TempDir, SearchIndex) {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), small_options()).expect("open");
    (dir, index)
}

/// Options for tests: every search walks blocks (test segments are small, and the default
/// would read them in one pass).
pub(crate) fn small_options() -> SearchOptions {
    SearchOptions {
        writer_memory_bytes: 15_000_000,
        one_pass_max_docs: 0,
        ..SearchOptions::default()
    }
}
