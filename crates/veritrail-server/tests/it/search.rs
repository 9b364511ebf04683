//! `GET /api/v1/events` and `/events/count`: every filter against the subset the test
//! computes itself, both orders, limit bounds, unknown and bad parameters, foreign
//! cursors, paging that stays exact while events keep arriving, and counts grouped and
//! as a histogram.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use veritrail_api::{CountParams, Role, SearchParams};
use veritrail_client::{Client, IngestOptions, Wait};

use crate::support::{TestServer, event, wait_indexed};

const T: &str = "acme";
const TYPES: [&str; 6] = [
    "user.login",
    "user.logout",
    "user.session.ended",
    "doc.viewed",
    "doc.deleted",
    "username.set",
];
const OUTCOMES: [&str; 4] = ["success", "failure", "pending", "unknown"];

pub(crate) fn seeded(i: usize) -> veritrail_api::EventInput {
    let mut actor = json!({"email": format!("User{}@Example.com", i % 5)});
    if !i.is_multiple_of(7) {
        actor["id"] = json!(format!("u{}", i % 5));
    }
    let mut words = vec![format!("w{i}")];
    if !i.is_multiple_of(2) {
        words.push("alpha".into());
    }
    if i.is_multiple_of(3) {
        words.push("bravo".into());
    }
    let occurred = OffsetDateTime::parse("2024-03-01T00:00:00Z", &Rfc3339).expect("time")
        + time::Duration::minutes(17 * i64::try_from(i).expect("small"));
    let mut extra = json!({
        "occurred_at": occurred.format(&Rfc3339).expect("format"),
        "actor": actor,
        "targets": [{"id": format!("t{}", i % 4), "name": format!("Target Name {}", i % 3)}],
        "correlation_id": format!("c{}", i % 6),
        "summary": words.join(" "),
    });
    if !i.is_multiple_of(9) {
        extra["outcome"] = json!(OUTCOMES[i % 4]);
    }
    if i.is_multiple_of(10) {
        extra["details"] = json!({"note": "zulu"});
    }
    event(&format!("e{i}"), TYPES[i % TYPES.len()], extra)
}

/// A tenant with 80 varied events, searchable; returns the viewer and every record
/// (audit events included) in seq order.
pub(crate) async fn seed(server: &TestServer, n: usize) -> (Client, Vec<Value>) {
    server.tenant(T).await;
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let viewer = server.client(&server.key(T, Role::Viewer).await);
    let events: Vec<_> = (0..n).map(seeded).collect();
    publisher
        .send(
            &events,
            IngestOptions {
                wait: Wait::Searchable,
                proof: false,
            },
        )
        .await
        .expect("seed");
    let size = wait_indexed(&viewer, 0).await;
    let all = viewer
        .search(&SearchParams {
            order: Some("asc".into()),
            limit: Some("1000".into()),
            ..SearchParams::default()
        })
        .await
        .expect("everything");
    let seqs: Vec<u64> = all
        .events
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (0..size).collect::<Vec<_>>(),
        "an unfiltered search is the log"
    );
    // Search pages write records straight into the body; they are the records of the log.
    for record in all.events.iter().step_by(9) {
        let seq = record["seq"].as_u64().expect("seq");
        let single = viewer.record(seq).await.expect("record");
        assert_eq!(&single.record, record, "seq {seq}");
    }
    (viewer, all.events)
}

fn time_of(record: &Value) -> OffsetDateTime {
    let text = record["occurred_at"]
        .as_str()
        .or_else(|| record["received_at"].as_str())
        .expect("a time");
    OffsetDateTime::parse(text, &Rfc3339).expect("rfc3339")
}

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).expect("rfc3339")
}

fn words(record: &Value) -> Vec<String> {
    record["summary"]
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_lowercase)
        .collect()
}

pub(crate) type Predicate = Box<dyn Fn(&Value) -> bool>;

pub(crate) fn cases() -> Vec<(SearchParams, Predicate)> {
    let p = SearchParams::default;
    let s = |text: &str| Some(text.to_owned());
    let ty = |record: &Value| record["type"].as_str().unwrap_or("").to_owned();
    vec![
        (
            SearchParams {
                event_type: s("user.login"),
                ..p()
            },
            Box::new(move |r| ty(r) == "user.login"),
        ),
        (
            SearchParams {
                event_type: s("user.*"),
                ..p()
            },
            Box::new(move |r| ty(r).starts_with("user.")),
        ),
        (
            SearchParams {
                event_type: s("veritrail.*"),
                ..p()
            },
            Box::new(move |r| ty(r).starts_with("veritrail.")),
        ),
        (
            SearchParams {
                event_type: s("user.logout,doc.*, username.set"),
                ..p()
            },
            Box::new(move |r| {
                ty(r) == "user.logout" || ty(r).starts_with("doc.") || ty(r) == "username.set"
            }),
        ),
        (
            SearchParams {
                actor: s("u2"),
                ..p()
            },
            Box::new(|r| r["actor"]["id"] == "u2"),
        ),
        (
            SearchParams {
                actor: s("user3@example.COM"),
                ..p()
            },
            Box::new(|r| {
                r["actor"]["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case("user3@example.com"))
            }),
        ),
        (
            SearchParams {
                target: s("t1"),
                ..p()
            },
            Box::new(|r| {
                r["targets"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["id"] == "t1"))
            }),
        ),
        (
            SearchParams {
                target: s("target name 2"),
                ..p()
            },
            Box::new(|r| {
                r["targets"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["name"] == "Target Name 2"))
            }),
        ),
        (
            SearchParams {
                outcome: s("failure"),
                ..p()
            },
            Box::new(|r| r["outcome"] == "failure"),
        ),
        (
            SearchParams {
                outcome: s("success"),
                ..p()
            },
            Box::new(|r| r["outcome"] == "success"),
        ),
        (
            SearchParams {
                correlation_id: s("c4"),
                ..p()
            },
            Box::new(|r| r["correlation_id"] == "c4"),
        ),
        (
            SearchParams {
                id: s("e17"),
                ..p()
            },
            Box::new(|r| r["id"] == "e17"),
        ),
        (
            SearchParams {
                id: s("nope"),
                ..p()
            },
            Box::new(|_| false),
        ),
        (
            SearchParams {
                from: s("2024-03-01T05:00:00Z"),
                to: s("2024-03-01T11:03:00Z"),
                ..p()
            },
            Box::new(|r| {
                (at("2024-03-01T05:00:00Z")..at("2024-03-01T11:03:00Z")).contains(&time_of(r))
            }),
        ),
        (
            SearchParams {
                from: s("2024-03-01T20:00:00Z"),
                ..p()
            },
            Box::new(|r| time_of(r) >= at("2024-03-01T20:00:00Z")),
        ),
        (
            SearchParams {
                to: s("2024-03-01T01:08:00Z"),
                ..p()
            },
            Box::new(|r| time_of(r) < at("2024-03-01T01:08:00Z")),
        ),
        (
            SearchParams {
                q: s("bravo"),
                ..p()
            },
            Box::new(|r| words(r).contains(&"bravo".to_owned())),
        ),
        (
            SearchParams {
                q: s("BRAV*"),
                ..p()
            },
            Box::new(|r| words(r).contains(&"bravo".to_owned())),
        ),
        (
            SearchParams {
                q: s("alpha bravo"),
                ..p()
            },
            Box::new(|r| {
                words(r).contains(&"alpha".to_owned()) && words(r).contains(&"bravo".to_owned())
            }),
        ),
        (
            SearchParams {
                q: s("zulu"),
                ..p()
            },
            Box::new(|r| r["details"]["note"] == "zulu"),
        ),
        (
            SearchParams {
                event_type: s("user.*"),
                outcome: s("failure"),
                actor: s("u1"),
                ..p()
            },
            Box::new(move |r| {
                ty(r).starts_with("user.") && r["outcome"] == "failure" && r["actor"]["id"] == "u1"
            }),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_filter_finds_exactly_its_subset_in_both_orders() {
    let server = TestServer::start().await;
    let (viewer, all) = seed(&server, 80).await;
    for (params, matches) in cases() {
        let want: Vec<u64> = all
            .iter()
            .filter(|record| matches(record))
            .map(|record| record["seq"].as_u64().expect("seq"))
            .collect();
        for order in ["asc", "desc"] {
            // Small pages, so that cursors are exercised with every filter.
            let mut pager = viewer.search_all(SearchParams {
                order: Some(order.into()),
                limit: Some("7".into()),
                ..params.clone()
            });
            let mut got = Vec::new();
            while let Some(record) = pager.next_event().await.expect("page") {
                got.push(record["seq"].as_u64().expect("seq"));
            }
            let mut want = want.clone();
            if order == "desc" {
                want.reverse();
            }
            assert_eq!(got, want, "{params:?} {order}");
        }
        // The default order is desc.
        let page = viewer.search(&params).await.expect("search");
        let got: Vec<u64> = page
            .events
            .iter()
            .map(|r| r["seq"].as_u64().expect("seq"))
            .collect();
        let mut newest: Vec<u64> = want.iter().rev().copied().collect();
        newest.truncate(50);
        assert_eq!(got, newest, "{params:?} default");
    }
    // Sanity: the cases are not trivially empty or everything.
    let counts: Vec<usize> = cases()
        .iter()
        .map(|(_, matches)| all.iter().filter(|r| matches(r)).count())
        .collect();
    assert!(
        counts.iter().filter(|&&n| n > 0 && n < all.len()).count() >= 18,
        "{counts:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_parameters_limits_and_cursors_have_stable_codes() {
    let server = TestServer::start().await;
    let (viewer, _) = seed(&server, 30).await;
    let key = server.key(T, Role::Viewer).await;
    let cases: &[(&str, u16, &str)] = &[
        ("limit=0", 400, "invalid_parameter"),
        ("limit=1001", 400, "invalid_parameter"),
        ("limit=-1", 400, "invalid_parameter"),
        ("limit=ten", 400, "invalid_parameter"),
        ("order=sideways", 400, "invalid_parameter"),
        ("outcome=great", 400, "invalid_parameter"),
        ("type=Not%20A%20Type", 400, "invalid_parameter"),
        ("from=yesterday", 400, "invalid_parameter"),
        ("code=abc", 400, "invalid_parameter"),
        ("colour=red", 400, "invalid_parameter"),
        ("limit=5&limit=6", 400, "invalid_parameter"),
        ("cursor=garbage!!", 400, "invalid_cursor"),
        ("cursor=djEuNS5hYmM", 400, "invalid_cursor"),
    ];
    for (query, status, code) in cases {
        for path in ["/api/v1/events", "/api/v1/events/count"] {
            if path.ends_with("count")
                && (query.starts_with("limit")
                    || query.starts_with("order")
                    || query.starts_with("cursor"))
            {
                // Paging parameters are not count parameters: unknown there.
                let reply = server.get(&format!("{path}?{query}"), Some(&key)).await;
                reply.expect(400, Some("invalid_parameter"));
                continue;
            }
            let reply = server.get(&format!("{path}?{query}"), Some(&key)).await;
            assert_eq!(
                (reply.status, reply.code().as_deref()),
                (*status, Some(*code)),
                "{path}?{query}: {}",
                reply.text()
            );
        }
    }
    let reply = server.get("/api/v1/events?limit=1000", Some(&key)).await;
    reply.expect(200, None);
    let reply = server.get("/api/v1/events?limit=1", Some(&key)).await;
    reply.expect(200, None);
    assert_eq!(reply.json()["events"].as_array().expect("events").len(), 1);
    for (query, status, code) in [
        ("group_by=colour", 400, "invalid_parameter"),
        ("interval=0h", 400, "invalid_parameter"),
        ("interval=1w", 400, "invalid_parameter"),
    ] {
        let reply = server
            .get(&format!("/api/v1/events/count?{query}"), Some(&key))
            .await;
        reply.expect(status, Some(code));
    }

    // A cursor works only with the filters and order it was issued for.
    let first = viewer
        .search(&SearchParams {
            event_type: Some("user.*".into()),
            limit: Some("2".into()),
            ..SearchParams::default()
        })
        .await
        .expect("page");
    let cursor = first.next_cursor.expect("more pages");
    let encoded: String = cursor
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    for query in [
        format!("type=user.*&limit=2&cursor={encoded}"),
        format!("type=user.*&limit=9&cursor={encoded}"),
    ] {
        let reply = server
            .get(&format!("/api/v1/events?{query}"), Some(&key))
            .await;
        reply.expect(200, None);
    }
    for query in [
        format!("type=doc.*&limit=2&cursor={encoded}"),
        format!("limit=2&cursor={encoded}"),
        format!("type=user.*&order=asc&limit=2&cursor={encoded}"),
        format!("type=user.*&q=bravo&limit=2&cursor={encoded}"),
        format!("type=user.*&limit=2&cursor={encoded}x"),
    ] {
        let reply = server
            .get(&format!("/api/v1/events?{query}"), Some(&key))
            .await;
        reply.expect(400, Some("invalid_cursor"));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_is_exact_while_events_keep_arriving() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let viewer = server.client(&server.key(T, Role::Viewer).await);
    let initial: Vec<_> = (0..400)
        .map(|i| {
            event(
                &format!("init-{i}"),
                if i % 2 == 0 {
                    "page.item"
                } else {
                    "other.thing"
                },
                json!({}),
            )
        })
        .collect();
    let sent = publisher
        .send(
            &initial,
            IngestOptions {
                wait: Wait::Searchable,
                proof: false,
            },
        )
        .await
        .expect("seed");
    let initial_items: BTreeSet<u64> = sent
        .receipts
        .iter()
        .step_by(2)
        .map(|receipt| receipt.seq)
        .collect();
    let last_initial = *initial_items.last().expect("some");

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<_> = (0..3)
                    .map(|j| {
                        event(
                            &format!("live-{n}-{j}"),
                            if j == 1 { "other.thing" } else { "page.item" },
                            json!({}),
                        )
                    })
                    .collect();
                publisher
                    .send(&batch, IngestOptions::default())
                    .await
                    .expect("live ingest");
                n += 1;
            }
            n
        })
    };

    let mut readers = Vec::new();
    for order in ["desc", "asc"] {
        let viewer = viewer.clone();
        readers.push(tokio::spawn(async move {
            let mut pager = viewer.search_all(SearchParams {
                event_type: Some("page.*".into()),
                order: Some(order.into()),
                limit: Some("9".into()),
                ..SearchParams::default()
            });
            let mut seen = Vec::new();
            while let Some(page) = pager.next_page().await.expect("page") {
                for record in &page.events {
                    assert_eq!(record["type"], "page.item");
                    seen.push(record["seq"].as_u64().expect("seq"));
                }
                // Ascending, new events would keep it going: stop past the initial ones.
                if order == "asc" && seen.last().is_some_and(|&seq| seq > last_initial) {
                    break;
                }
            }
            (order, seen)
        }));
    }
    let mut results = BTreeMap::new();
    for reader in readers {
        let (order, seen) = reader.await.expect("reader");
        results.insert(order, seen);
    }
    stop.store(true, Ordering::SeqCst);
    let batches = writer.await.expect("writer");
    assert!(batches > 0, "the writer ran while paging");

    for (order, seen) in &results {
        let monotonic = seen.windows(2).all(|pair| {
            if *order == "asc" {
                pair[0] < pair[1]
            } else {
                pair[0] > pair[1]
            }
        });
        assert!(monotonic, "{order}: not strictly monotonic: {seen:?}");
        let set: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(set.len(), seen.len(), "{order}: duplicates");
        let missing: Vec<_> = initial_items.difference(&set).collect();
        assert!(missing.is_empty(), "{order}: missed {missing:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn counts_group_and_bucket_as_the_records_say() {
    let server = TestServer::start().await;
    let (viewer, all) = seed(&server, 80).await;
    let mine: Vec<&Value> = all
        .iter()
        .filter(|r| !r["type"].as_str().expect("type").starts_with("veritrail."))
        .collect();

    let total = viewer.count(&CountParams::default()).await.expect("count");
    assert_eq!(total.total, all.len() as u64);
    assert!(total.groups.is_none() && total.histogram.is_none());

    type Key = Box<dyn Fn(&Value) -> String>;
    let by: [(&str, Key); 4] = [
        (
            "type",
            Box::new(|r| r["type"].as_str().unwrap_or("").to_owned()),
        ),
        (
            "category",
            Box::new(|r| r["category"].as_str().unwrap_or("").to_lowercase()),
        ),
        (
            "outcome",
            Box::new(|r| r["outcome"].as_str().unwrap_or("").to_owned()),
        ),
        (
            "actor",
            Box::new(|r| {
                r["actor"]["id"]
                    .as_str()
                    .or_else(|| r["actor"]["email"].as_str())
                    .unwrap_or("")
                    .to_owned()
            }),
        ),
    ];
    for (group_by, key) in by {
        for filter in [None, Some("user.*")] {
            let mut want: BTreeMap<String, u64> = BTreeMap::new();
            for record in &all {
                if filter.is_none() || record["type"].as_str().expect("type").starts_with("user.") {
                    *want.entry(key(record)).or_default() += 1;
                }
            }
            let reply = viewer
                .count(&CountParams {
                    group_by: Some(group_by.into()),
                    event_type: filter.map(str::to_owned),
                    ..CountParams::default()
                })
                .await
                .expect("count");
            let groups = reply.groups.expect("groups");
            let counts: Vec<u64> = groups.iter().map(|g| g.count).collect();
            assert!(
                counts.windows(2).all(|w| w[0] >= w[1]),
                "largest first: {counts:?}"
            );
            let got: BTreeMap<String, u64> = groups.into_iter().map(|g| (g.key, g.count)).collect();
            assert_eq!(got, want, "group_by={group_by} type={filter:?}");
            assert_eq!(reply.total, want.values().sum::<u64>());
        }
    }

    // A histogram of my events (the audit events are outside the time range), with
    // failures.
    for (interval, seconds) in [("1h", 3600i64), ("45m", 2700), ("1d", 86_400)] {
        let mut want: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        for record in &mine {
            let t = time_of(record).unix_timestamp();
            let bucket = t.div_euclid(seconds) * seconds;
            let entry = want.entry(bucket).or_default();
            entry.0 += 1;
            if record["outcome"] == "failure" {
                entry.1 += 1;
            }
        }
        let reply = viewer
            .count(&CountParams {
                interval: Some(interval.into()),
                from: Some("2024-01-01T00:00:00Z".into()),
                to: Some("2025-01-01T00:00:00Z".into()),
                ..CountParams::default()
            })
            .await
            .expect("histogram");
        let got: BTreeMap<i64, (u64, u64)> = reply
            .histogram
            .expect("histogram")
            .into_iter()
            .map(|b| (at(&b.start).unix_timestamp(), (b.count, b.failures)))
            .collect();
        assert_eq!(got, want, "interval {interval}");
        assert_eq!(reply.total, mine.len() as u64);
    }
    server.stop().await;
}
