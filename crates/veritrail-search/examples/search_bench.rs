//! Load generator for the search index: indexing throughput, then first-page and count
//! latencies on a big tenant (default 10 million events) beside a smaller one.
//!
//! ```text
//! cargo run --release -p veritrail-search --example search_bench -- [--events N]
//!     [--dir PATH] [--queries N] [--throughput-events N] [--count-threads N]
//! ```
//!
//! With `--dir` the built index is kept and reused by the next run (the build is skipped
//! when the directory already holds the events); without it a temporary directory is used.
//! Events are varied: 20 types in 5 categories, 10,000 actors, outcomes about 88% success,
//! 10% failure, 2% pending, event times spread over 90 days in seq order, summaries and
//! details of a few words from a 200-word vocabulary.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use veritrail_core::event::{Category, Description, Event, EventInput, Name, TenantId, Timestamp};
use veritrail_core::record::{CatalogFields, Record};
use veritrail_search::{GroupBy, Order, Query, SearchIndex, SearchOptions, TypeFilter};

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;
const START_NANOS: i64 = 1_750_000_000 * 1_000_000_000;
const SPAN_DAYS: i64 = 90;
const BATCH: usize = 10_000;

const TYPES: [(&str, &str); 20] = [
    ("user.login", "authentication"),
    ("user.logout", "authentication"),
    ("user.mfa_challenge", "authentication"),
    ("session.revoked", "authentication"),
    ("user.created", "user_management"),
    ("user.deleted", "user_management"),
    ("user.password_updated", "user_management"),
    ("role.assigned", "user_management"),
    ("invoice.created", "billing"),
    ("invoice.paid", "billing"),
    ("payment.failed", "billing"),
    ("subscription.updated", "billing"),
    ("document.viewed", "data_access"),
    ("document.downloaded", "data_access"),
    ("export.created", "data_access"),
    ("report.generated", "data_access"),
    ("api_key.created", "security"),
    ("api_key.revoked", "security"),
    ("firewall.rule_changed", "security"),
    ("alert.triggered", "security"),
];
const CATEGORIES: [&str; 5] = [
    "authentication",
    "user_management",
    "billing",
    "data_access",
    "security",
];

/// splitmix64: small, seeded, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

fn vocabulary() -> Vec<String> {
    let stems = [
        "alpha", "bravo", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "indigo",
        "juniper", "krypton", "lumen", "meridian", "nimbus", "onyx", "polaris", "quartz", "raven",
        "sierra", "tundra",
    ];
    let suffixes = ["", "s", "ing", "ed", "er", "ly", "ness", "ion", "al", "ive"];
    stems
        .iter()
        .flat_map(|stem| suffixes.iter().map(move |suffix| format!("{stem}{suffix}")))
        .collect()
}

/// A pool of parsed events (without `occurred_at`: the event time is then the record's
/// `received_at`, set per record) and each one's catalog fields.
fn event_pool(rng: &mut Rng, words: &[String], n: usize) -> Vec<(Event, CatalogFields)> {
    let first = [
        "ada", "bob", "chen", "dana", "eve", "farid", "gita", "hugo", "ines", "jon",
    ];
    (0..n)
        .map(|_| {
            let type_idx = rng.below(TYPES.len());
            let (event_type, category) = TYPES[type_idx];
            let actor = rng.below(10_000);
            let outcome = match rng.below(100) {
                0..=87 => "success",
                88..=97 => "failure",
                _ => "pending",
            };
            let word = |rng: &mut Rng| words[rng.below(words.len())].clone();
            let summary = format!(
                "{} {} {} {}",
                first[actor % first.len()],
                event_type.replace(['.', '_'], " "),
                word(rng),
                word(rng)
            );
            let input: EventInput = serde_json::from_value(json!({
                "type": event_type,
                "actor": {
                    "id": format!("usr_{actor}"),
                    "type": "user",
                    "name": format!("{} {}", first[actor % first.len()], word(rng)),
                    "email": format!("user{actor}@example{}.com", actor % 50),
                },
                "targets": [{"id": format!("obj_{}", rng.below(100_000)), "type": "resource",
                             "name": word(rng)}],
                "outcome": outcome,
                "correlation_id": format!("corr_{}", rng.next() % 1_000_000),
                "summary": summary,
                "details": {"reason": format!("{} {}", word(rng), word(rng)),
                            "region": word(rng), "attempt": rng.below(5)},
            }))
            .expect("valid event input");
            let event = Event::parse(input).expect("valid event");
            let catalog = CatalogFields {
                code: Some(1000 + type_idx as u64),
                name: Some(Name::parse(&event_type.replace(['.', '_'], " ")).expect("name")),
                category: Some(Category::parse(category).expect("category")),
                severity: None,
                description: Some(
                    Description::parse(&format!("Emitted on {}", event_type.replace('.', " ")))
                        .expect("description"),
                ),
                published_by: None,
            };
            (event, catalog)
        })
        .collect()
}

/// Generates a tenant's records in seq order, event times spread over [`SPAN_DAYS`].
struct Generator<'a> {
    tenant: TenantId,
    n_total: u64,
    next_seq: u64,
    pool: &'a [(Event, CatalogFields)],
    rng: Rng,
}

impl Generator<'_> {
    fn batch(&mut self, n: usize) -> Vec<Record> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n && self.next_seq < self.n_total {
            let seq = self.next_seq;
            self.next_seq += 1;
            let span = i128::from(SPAN_DAYS * DAY_NANOS);
            let offset = i128::from(seq) * span / i128::from(self.n_total.max(1));
            let time = START_NANOS + i64::try_from(offset).unwrap_or(0);
            let (event, catalog) = &self.pool[self.rng.below(self.pool.len())];
            out.push(Record::new(
                self.tenant.clone(),
                seq,
                Timestamp::from_unix_nanos(time),
                event.clone(),
                catalog.clone(),
            ));
        }
        out
    }
    fn done(&self) -> bool {
        self.next_seq >= self.n_total
    }
}

/// A query, its order and `after`.
type Search = (Query, Order, Option<u64>);

struct Args {
    events: u64,
    dir: Option<PathBuf>,
    queries: usize,
    throughput_events: usize,
    count_threads: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        events: 10_000_000,
        dir: None,
        queries: 300,
        throughput_events: 300_000,
        count_threads: 1,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => args.events = value.parse().expect("--events N"),
            "--dir" => args.dir = Some(PathBuf::from(value)),
            "--queries" => args.queries = value.parse().expect("--queries N"),
            "--throughput-events" => {
                args.throughput_events = value.parse().expect("--throughput-events N");
            }
            "--count-threads" => args.count_threads = value.parse().expect("--count-threads N"),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    // Nearest-rank percentile; p is a fraction in (0, 1].
    let n = sorted.len();
    let rank = (1..=n)
        .find(|&rank| rank as f64 >= n as f64 * p)
        .unwrap_or(n);
    sorted[rank.max(1) - 1]
}

fn report(out: &mut impl Write, name: &str, mut times: Vec<Duration>, detail: &str) {
    times.sort();
    writeln!(
        out,
        "{name:<44} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  (n={}; {detail})",
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        times.len()
    )
    .expect("stdout");
}

fn main() {
    let args = parse_args();
    // A benchmark reports on stdout: through a locked handle and `writeln!`, so the
    // workspace's `print_stdout` lint (which is about stray `println!`) does not apply.
    let mut out = std::io::stdout().lock();
    let words = vocabulary();
    let mut rng = Rng(42);
    let pool = event_pool(&mut rng, &words, 50_000);
    let big = TenantId::parse("acme").expect("tenant");
    let small = TenantId::parse("globex").expect("tenant");
    let n_small = args.events / 20;

    // Indexing throughput: pre-generated records into a fresh index, one indexing thread.
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = SearchIndex::open(dir.path(), SearchOptions::default()).expect("open");
        let mut generator = Generator {
            tenant: big.clone(),
            n_total: args.throughput_events as u64,
            next_seq: 0,
            pool: &pool,
            rng: Rng(7),
        };
        let batches: Vec<Vec<Record>> = (0..args.throughput_events.div_ceil(1000))
            .map(|_| generator.batch(1000))
            .collect();
        let bytes: usize = batches.iter().flatten().map(Record::encoded_len).sum();
        let started = Instant::now();
        for (idx, batch) in batches.iter().enumerate() {
            index.apply(batch).expect("apply");
            if idx % 100 == 99 {
                index.commit().expect("commit");
            }
        }
        index.commit().expect("commit");
        let elapsed = started.elapsed();
        writeln!(
            out,
            "indexing: {} records (avg {} bytes encoded) in {:.2} s = {:.0} records/s \
             (batches of 1000, commit every 100k)",
            args.throughput_events,
            bytes / args.throughput_events.max(1),
            elapsed.as_secs_f64(),
            args.throughput_events as f64 / elapsed.as_secs_f64()
        )
        .expect("stdout");
    }

    let temp = tempfile::tempdir().expect("tempdir");
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let options = SearchOptions {
        count_threads: args.count_threads,
        ..SearchOptions::default()
    };
    let index = SearchIndex::open(&dir, options).expect("open");
    if index.applied(&big) < args.events || index.applied(&small) < n_small {
        index.clear().expect("clear");
        let started = Instant::now();
        let mut big_gen = Generator {
            tenant: big.clone(),
            n_total: args.events,
            next_seq: 0,
            pool: &pool,
            rng: Rng(1),
        };
        let mut small_gen = Generator {
            tenant: small.clone(),
            n_total: n_small,
            next_seq: 0,
            pool: &pool,
            rng: Rng(2),
        };
        let mut n_batches = 0_u64;
        while !big_gen.done() || !small_gen.done() {
            index.apply(&big_gen.batch(BATCH)).expect("apply");
            if n_batches.is_multiple_of(20) {
                index.apply(&small_gen.batch(BATCH)).expect("apply");
            }
            n_batches += 1;
            if n_batches.is_multiple_of(100) {
                index.commit().expect("commit");
                writeln!(
                    out,
                    "  built {} records in {:.0} s",
                    big_gen.next_seq + small_gen.next_seq,
                    started.elapsed().as_secs_f64()
                )
                .expect("stdout");
            }
        }
        index.commit().expect("commit");
        writeln!(
            out,
            "build: {} + {} records in {:.1} s (generation included)",
            args.events,
            n_small,
            started.elapsed().as_secs_f64()
        )
        .expect("stdout");
    }
    let stats = index.stats();
    writeln!(
        out,
        "index: {} documents in {} segments; tenant {big}: {}, tenant {small}: {}",
        stats.documents,
        stats.segments,
        index.applied(&big),
        index.applied(&small)
    )
    .expect("stdout");

    let n = args.queries;
    let mut rng = Rng(99);
    let random_range = |rng: &mut Rng| {
        let days = 1 + i64::try_from(rng.below(30)).unwrap_or(0);
        let start_day =
            i64::try_from(rng.below(usize::try_from(SPAN_DAYS - days).unwrap_or(1))).unwrap_or(0);
        let from = START_NANOS + start_day * DAY_NANOS;
        (
            Timestamp::from_unix_nanos(from),
            Timestamp::from_unix_nanos(from + days * DAY_NANOS),
        )
    };

    let run = |name: &str,
               out: &mut std::io::StdoutLock<'_>,
               rng: &mut Rng,
               tenant: &TenantId,
               make: &mut dyn FnMut(&mut Rng) -> Search| {
        let mut times = Vec::with_capacity(n);
        let mut n_hits = 0;
        for _ in 0..n {
            let (query, order, after) = make(rng);
            let started = Instant::now();
            let page = index
                .search(tenant, &query, order, 50, after)
                .expect("search");
            times.push(started.elapsed());
            n_hits += page.seqs.len();
        }
        report(out, name, times, &format!("avg {} hits", n_hits / n.max(1)));
    };

    run(
        "desc, category + date range (1-30 days)",
        &mut out,
        &mut rng,
        &big,
        &mut |rng| {
            let (from, to) = random_range(rng);
            let query = Query {
                category: Some(CATEGORIES[rng.below(5)].to_owned()),
                from: Some(from),
                to: Some(to),
                ..Query::default()
            };
            (query, Order::Desc, None)
        },
    );
    run(
        "asc, category + date range (1-30 days)",
        &mut out,
        &mut rng,
        &big,
        &mut |rng| {
            let (from, to) = random_range(rng);
            let query = Query {
                category: Some(CATEGORIES[rng.below(5)].to_owned()),
                from: Some(from),
                to: Some(to),
                ..Query::default()
            };
            (query, Order::Asc, None)
        },
    );
    let text_words = words.clone();
    run(
        "desc, free text (1 or 2 words)",
        &mut out,
        &mut rng,
        &big,
        &mut |rng| {
            let mut text = text_words[rng.below(text_words.len())].clone();
            if rng.below(2) == 0 {
                text.push(' ');
                text.push_str(&text_words[rng.below(text_words.len())]);
            }
            let query = Query {
                text: Some(text),
                ..Query::default()
            };
            (query, Order::Desc, None)
        },
    );
    run(
        "desc, free text prefix (`stem*`)",
        &mut out,
        &mut rng,
        &big,
        &mut |rng| {
            let word = &text_words[rng.below(text_words.len())];
            let query = Query {
                text: Some(format!("{}*", &word[..3])),
                ..Query::default()
            };
            (query, Order::Desc, None)
        },
    );
    run(
        "desc, actor + type prefix",
        &mut out,
        &mut rng,
        &big,
        &mut |rng| {
            let query = Query {
                actor: Some(format!("usr_{}", rng.below(10_000))),
                types: vec![TypeFilter::parse("user.*").expect("type filter")],
                ..Query::default()
            };
            (query, Order::Desc, None)
        },
    );
    let big_size = index.applied(&big);
    run(
        "desc, category, page at random depth (after)",
        &mut out,
        &mut rng,
        &big,
        &mut |rng| {
            let query = Query {
                category: Some(CATEGORIES[rng.below(5)].to_owned()),
                ..Query::default()
            };
            (query, Order::Desc, Some(rng.next() % big_size.max(1)))
        },
    );
    run(
        "desc, other tenant, category + date range",
        &mut out,
        &mut rng,
        &small,
        &mut |rng| {
            let (from, to) = random_range(rng);
            let query = Query {
                category: Some(CATEGORIES[rng.below(5)].to_owned()),
                from: Some(from),
                to: Some(to),
                ..Query::default()
            };
            (query, Order::Desc, None)
        },
    );

    let n_counts = 20;
    for (name, group_by, interval) in [
        (
            "count, group by category, whole tenant",
            Some(GroupBy::Category),
            None,
        ),
        (
            "count, group by actor, whole tenant",
            Some(GroupBy::Actor),
            None,
        ),
        (
            "count, daily histogram, whole tenant",
            None,
            Some(DAY_NANOS),
        ),
    ] {
        let mut times = Vec::with_capacity(n_counts);
        let mut total = 0;
        for _ in 0..n_counts {
            let started = Instant::now();
            let counts = index
                .count(&big, &Query::default(), group_by, interval)
                .expect("count");
            times.push(started.elapsed());
            total = counts.total;
        }
        report(&mut out, name, times, &format!("total {total}"));
    }
    let mut times = Vec::with_capacity(n_counts);
    for _ in 0..n_counts {
        let (from, to) = random_range(&mut rng);
        let query = Query {
            category: Some(CATEGORIES[rng.below(5)].to_owned()),
            from: Some(from),
            to: Some(to),
            ..Query::default()
        };
        let started = Instant::now();
        index
            .count(&big, &query, Some(GroupBy::Outcome), Some(DAY_NANOS))
            .expect("count");
        times.push(started.elapsed());
    }
    report(
        &mut out,
        "count, category + range, by outcome, daily",
        times,
        "",
    );
}
