//! Paging by seq under concurrent ingest: every match exactly once, in order.

use veritrail_search::{Order, Query, SearchIndex, SearchOptions};

use crate::model::{Rng, expected, fresh, matches, records, tenant};

#[test]
fn asc_paging_sees_every_match_once_while_records_arrive() {
    let (_dir, index) = fresh();
    let mut rng = Rng(11);
    let t = tenant("t");
    let other = tenant("other");
    let mut all = records(&mut rng, &t, 0, 150);
    index.apply(&all).expect("apply");
    index.commit().expect("commit");
    let query = Query {
        category: Some("auth".to_owned()),
        ..Query::default()
    };
    let mut seen: Vec<u64> = Vec::new();
    let mut after = None;
    let mut next_seq = 150;
    let mut next_other = 0;
    loop {
        let page = index
            .search(&t, &query, Order::Asc, 4, after)
            .expect("search");
        seen.extend(&page.seqs);
        // Between pages, more records arrive (for this tenant and another one).
        if next_seq < 400 {
            let batch = records(&mut rng, &t, next_seq, 25);
            next_seq += 25;
            index.apply(&batch).expect("apply");
            index
                .apply(&records(&mut rng, &other, next_other, 25))
                .expect("apply");
            next_other += 25;
            index.commit().expect("commit");
            all.extend(batch);
        }
        match page.next_after {
            Some(next) => after = Some(next),
            // The last page came after the last commit, so nothing can be missing.
            None if next_seq >= 400 => break,
            None => after = page.seqs.last().copied().or(after),
        }
    }
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "ascending, no duplicates"
    );
    assert_eq!(seen, expected(&all, &t, &query));
    assert!(seen.len() > 50);
}

#[test]
fn desc_paging_covers_the_first_snapshot_exactly_while_records_arrive() {
    let (_dir, index) = fresh();
    let mut rng = Rng(12);
    let t = tenant("t");
    let first = records(&mut rng, &t, 0, 300);
    index.apply(&first).expect("apply");
    index.commit().expect("commit");
    let query = Query::default();
    let mut seen: Vec<u64> = Vec::new();
    let mut after = None;
    let mut next_seq = 300;
    loop {
        let page = index
            .search(&t, &query, Order::Desc, 9, after)
            .expect("search");
        seen.extend(&page.seqs);
        let batch = records(&mut rng, &t, next_seq, 10);
        next_seq += 10;
        index.apply(&batch).expect("apply");
        index.commit().expect("commit");
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, (0..300).rev().collect::<Vec<_>>());
}

#[test]
fn limit_zero_and_after_past_the_ends() {
    let (_dir, index) = fresh();
    let t = tenant("t");
    let all = records(&mut Rng(13), &t, 0, 40);
    index.apply(&all).expect("apply");
    index.commit().expect("commit");
    let query = Query::default();
    let page = index
        .search(&t, &query, Order::Desc, 0, None)
        .expect("search");
    assert!(page.seqs.is_empty() && page.next_after.is_none());
    let page = index
        .search(&t, &query, Order::Desc, 10, Some(1_000))
        .expect("search");
    assert_eq!(page.seqs, (30..40).rev().collect::<Vec<_>>());
    assert_eq!(page.next_after, Some(30));
    let page = index
        .search(&t, &query, Order::Asc, 10, Some(1_000))
        .expect("search");
    assert!(page.seqs.is_empty() && page.next_after.is_none());
    let page = index
        .search(&t, &query, Order::Desc, 10, Some(0))
        .expect("search");
    assert!(page.seqs.is_empty());
    let page = index
        .search(&t, &query, Order::Asc, 40, None)
        .expect("search");
    assert_eq!(page.seqs.len(), 40);
    assert_eq!(
        page.next_after, None,
        "exactly `limit` matches: nothing follows"
    );
    let page = index
        .search(&t, &query, Order::Desc, 10, Some(35))
        .expect("search");
    assert_eq!(page.seqs, (25..35).rev().collect::<Vec<_>>());
    let want: Vec<u64> = all
        .iter()
        .filter(|r| matches(r, &query))
        .map(|r| r.seq())
        .collect();
    assert_eq!(want.len(), 40);
}

#[test]
fn paging_is_exact_across_many_segments_and_time_filters() {
    // Every segment walked in windows, every segment read in one pass (each waiting in the
    // queue for its turn), and a mix decided by each query's selectivity.
    for one_pass_max_docs in [0, 40, u64::MAX] {
        paging_across_segments(one_pass_max_docs);
    }
}

fn paging_across_segments(one_pass_max_docs: u64) {
    // Small commits make many segments; event times are not in seq order (occurred_at
    // skew), which the block bounds must not trip over.
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SearchOptions {
        one_pass_max_docs,
        ..crate::model::small_options()
    };
    let index = SearchIndex::open(dir.path(), options).expect("open");
    let mut rng = Rng(14);
    let t = tenant("t");
    let u = tenant("u");
    let mut all = Vec::new();
    let mut next = (0, 0);
    for _ in 0..40 {
        let batch_t = records(&mut rng, &t, next.0, 60);
        let batch_u = records(&mut rng, &u, next.1, 30);
        next = (next.0 + 60, next.1 + 30);
        index.apply(&batch_u).expect("apply");
        index.apply(&batch_t).expect("apply");
        index.commit().expect("commit");
        all.extend(batch_t);
        all.extend(batch_u);
    }
    for round in 0..200 {
        let query = crate::model::random_query(&mut rng);
        let limit = 1 + rng.below(60);
        let tenant = if round % 2 == 0 { &t } else { &u };
        let want = expected(&all, tenant, &query);
        assert_eq!(
            crate::model::all_pages(&index, tenant, &query, Order::Asc, limit),
            want
        );
        let mut desc = crate::model::all_pages(&index, tenant, &query, Order::Desc, limit);
        desc.reverse();
        assert_eq!(
            desc, want,
            "{query:?} (one pass up to {one_pass_max_docs} docs)"
        );
    }
}
