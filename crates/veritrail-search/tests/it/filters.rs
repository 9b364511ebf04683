//! Every filter, alone and combined, against the brute-force model; tenant isolation; the
//! free-text rules.

use veritrail_core::event::Timestamp;
use veritrail_core::record::Record;
use veritrail_search::{Order, Query, SearchIndex, SearchOptions, TypeFilter};

use crate::model::{self, Rng, all_pages, expected, fresh, records, tenant};

/// Three tenants, applied in interleaved batches with commits in between (several
/// segments), and the records.
fn populated(rng: &mut Rng) -> (tempfile::TempDir, SearchIndex, Vec<Record>) {
    let (dir, index) = fresh();
    let tenants = [tenant("t-a"), tenant("t-b"), tenant("t-c")];
    let mut all = Vec::new();
    let mut next = [0_u64; 3];
    for round in 0..12 {
        let mut batch = Vec::new();
        for (idx, tenant) in tenants.iter().enumerate() {
            let n = 1 + rng.below(if idx == 2 { 10 } else { 60 }) as u64;
            batch.extend(records(rng, tenant, next[idx], n));
            next[idx] += n;
        }
        index.apply(&batch).expect("apply");
        all.extend(batch);
        if round % 3 == 2 {
            index.commit().expect("commit");
        }
    }
    index.commit().expect("commit");
    (dir, index, all)
}

#[test]
fn random_queries_match_the_model_in_both_orders() {
    let mut rng = Rng(1);
    let (dir, index, all) = populated(&mut rng);
    check_random_queries(&mut rng, &index, &all);
    // Again with one-pass reads of every segment (the default for small segments).
    drop(index);
    let index = SearchIndex::open(dir.path(), SearchOptions::default()).expect("reopen");
    check_random_queries(&mut rng, &index, &all);
}

fn check_random_queries(rng: &mut Rng, index: &SearchIndex, all: &[Record]) {
    let tenants = [
        tenant("t-a"),
        tenant("t-b"),
        tenant("t-c"),
        tenant("t-none"),
    ];
    let mut n_nonempty = 0;
    for round in 0..600 {
        let query = model::random_query(rng);
        let tenant = rng.pick(&tenants).clone();
        let want = expected(all, &tenant, &query);
        n_nonempty += usize::from(!want.is_empty());
        let limit = 1 + rng.below(40);
        let asc = all_pages(index, &tenant, &query, Order::Asc, limit);
        assert_eq!(asc, want, "round {round}: asc {query:?} in {tenant}");
        let mut desc = all_pages(index, &tenant, &query, Order::Desc, limit);
        desc.reverse();
        assert_eq!(desc, want, "round {round}: desc {query:?} in {tenant}");
        let counts = index.count(&tenant, &query, None, None).expect("count");
        assert_eq!(
            counts.total,
            want.len() as u64,
            "round {round}: count {query:?}"
        );
    }
    assert!(
        n_nonempty > 300,
        "the generator must produce matching queries ({n_nonempty})"
    );
}

#[test]
fn every_filter_alone_matches_the_model() {
    let mut rng = Rng(2);
    let (_dir, index, all) = populated(&mut rng);
    let t = tenant("t-a");
    let from = Timestamp::from_unix_nanos(model::START + 3 * model::DAY);
    let to = Timestamp::from_unix_nanos(model::START + 5 * model::DAY);
    let queries = [
        Query {
            types: vec![TypeFilter::parse("user.*").expect("filter")],
            ..Query::default()
        },
        Query {
            types: vec![TypeFilter::parse("user.login").expect("filter")],
            ..Query::default()
        },
        Query {
            types: vec![TypeFilter::Prefix("user".to_owned())],
            ..Query::default()
        },
        Query {
            category: Some("AUTH".to_owned()),
            ..Query::default()
        },
        Query {
            code: Some(101),
            ..Query::default()
        },
        Query {
            name: Some("password UPDATED".to_owned()),
            ..Query::default()
        },
        Query {
            actor: Some("usr_1".to_owned()),
            ..Query::default()
        },
        Query {
            actor: Some("ADA@EXAMPLE.COM".to_owned()),
            ..Query::default()
        },
        Query {
            target: Some("obj_1".to_owned()),
            ..Query::default()
        },
        Query {
            target: Some("widget".to_owned()),
            ..Query::default()
        },
        Query {
            outcome: Some(veritrail_core::event::Outcome::Failure),
            ..Query::default()
        },
        Query {
            correlation_id: Some("c-1".to_owned()),
            ..Query::default()
        },
        Query {
            event_id: Some("ev-t-a-5".to_owned()),
            ..Query::default()
        },
        Query {
            from: Some(from),
            ..Query::default()
        },
        Query {
            to: Some(to),
            ..Query::default()
        },
        Query {
            from: Some(from),
            to: Some(to),
            ..Query::default()
        },
        Query {
            from: Some(to),
            to: Some(from),
            ..Query::default()
        },
        Query {
            text: Some("alpha".to_owned()),
            ..Query::default()
        },
        Query {
            text: Some("alph*".to_owned()),
            ..Query::default()
        },
        Query {
            text: Some("user.sess*".to_owned()),
            ..Query::default()
        },
        Query {
            text: Some("DÉLTA".to_owned()),
            ..Query::default()
        },
        Query {
            text: Some("*".to_owned()),
            ..Query::default()
        },
        Query::default(),
    ];
    for query in &queries {
        let want = expected(&all, &t, query);
        let got = all_pages(&index, &t, query, Order::Asc, 1000);
        assert_eq!(got, want, "{query:?}");
    }
    // Every query above that names a value the data holds finds something.
    for idx in [0, 1, 3, 6, 7, 8, 13, 17, 18, 19] {
        assert!(
            !expected(&all, &t, &queries[idx]).is_empty(),
            "{:?}",
            queries[idx]
        );
    }
}

#[test]
fn tenants_never_see_each_other() {
    let (_dir, index) = fresh();
    let mut rng = Rng(3);
    let a = tenant("a");
    let b = tenant("b");
    // Same content, same seqs, in two tenants.
    let records_a = records(&mut Rng(9), &a, 0, 50);
    let records_b = records(&mut Rng(9), &b, 0, 20);
    index.apply(&records_a).expect("apply");
    index.apply(&records_b).expect("apply");
    index.commit().expect("commit");
    let everything = Query::default();
    assert_eq!(
        all_pages(&index, &a, &everything, Order::Asc, 7),
        (0..50).collect::<Vec<_>>()
    );
    assert_eq!(
        all_pages(&index, &b, &everything, Order::Desc, 7),
        (0..20).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        index
            .count(&b, &everything, None, None)
            .expect("count")
            .total,
        20
    );
    let mut all = records_a;
    all.extend(records_b);
    for _ in 0..100 {
        let query = model::random_query(&mut rng);
        assert_eq!(
            all_pages(&index, &b, &query, Order::Asc, 5),
            expected(&all, &b, &query)
        );
    }
    assert!(
        index
            .search(&tenant("c"), &everything, Order::Desc, 10, None)
            .expect("search")
            .seqs
            .is_empty()
    );
}

#[test]
fn free_text_rules() {
    let (_dir, index) = fresh();
    let t = tenant("t");
    let input = |json: serde_json::Value| {
        veritrail_core::event::Event::parse(serde_json::from_value(json).expect("input"))
            .expect("event")
    };
    let record = |seq, event| {
        veritrail_core::record::Record::new(
            t.clone(),
            seq,
            Timestamp::from_unix_nanos(0),
            event,
            veritrail_core::record::CatalogFields::default(),
        )
    };
    index
        .apply(&[
            record(0, input(serde_json::json!({
                "type": "user.password_updated",
                "actor": {"email": "Bob.Smith@Example.com", "id": "u-1"},
                "details": {"reason": "Forgot it", "n": 42, "list": ["Deep-Value"], "keyword": true},
            }))),
            record(1, input(serde_json::json!({"type": "billing.x", "summary": "Paid in full"}))),
        ])
        .expect("apply");
    index.commit().expect("commit");
    let find = |text: &str| {
        let query = Query {
            text: Some(text.to_owned()),
            ..Query::default()
        };
        index
            .search(&t, &query, Order::Asc, 10, None)
            .expect("search")
            .seqs
    };
    assert_eq!(find("password"), vec![0]);
    assert_eq!(find("USER UPDATED"), vec![0]);
    assert_eq!(find("user.password_updated"), vec![0]);
    assert_eq!(find("bob.smith@example.com"), vec![0]);
    assert_eq!(find("smith"), vec![0]);
    assert_eq!(find("forgot"), vec![0]);
    assert_eq!(find("deep"), vec![0]);
    assert_eq!(find("value"), vec![0]);
    assert_eq!(
        find("42"),
        Vec::<u64>::new(),
        "numbers in details are not text"
    );
    assert_eq!(find("keyword"), Vec::<u64>::new(), "keys are not text");
    assert_eq!(find("u"), Vec::<u64>::new(), "actor ids are not text");
    assert_eq!(find("pa*"), vec![0, 1]);
    assert_eq!(find("pa* full"), vec![1]);
    assert_eq!(find("paid forgot"), Vec::<u64>::new());
    assert_eq!(find("-- ,,"), vec![0, 1], "no words: no text filter");
}
