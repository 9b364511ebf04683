//! Counts, groups and histograms against the brute-force model.

use veritrail_search::{GroupBy, Query, SearchError};

use crate::model::{self, DAY, Rng, expected_counts, fresh, records, tenant};

#[test]
fn counts_match_the_model() {
    let (_dir, index) = fresh();
    let mut rng = Rng(31);
    let tenants = [tenant("a"), tenant("b")];
    let mut all = Vec::new();
    let mut next = [0_u64; 2];
    for _ in 0..8 {
        for (idx, tenant) in tenants.iter().enumerate() {
            let n = 20 + rng.below(80) as u64;
            let batch = records(&mut rng, tenant, next[idx], n);
            next[idx] += n;
            index.apply(&batch).expect("apply");
            all.extend(batch);
        }
        index.commit().expect("commit");
    }
    let group_bys = [
        None,
        Some(GroupBy::Type),
        Some(GroupBy::Category),
        Some(GroupBy::Outcome),
        Some(GroupBy::Actor),
    ];
    let intervals = [
        None,
        Some(DAY),
        Some(DAY / 3),
        Some(7 * DAY),
        Some(1),
        Some(i64::MAX),
    ];
    for round in 0..300 {
        let query = if round < 30 {
            Query::default()
        } else {
            model::random_query(&mut rng)
        };
        let tenant = rng.pick(&tenants);
        let group_by = *rng.pick(&group_bys);
        let interval = *rng.pick(&intervals);
        let got = index
            .count(tenant, &query, group_by, interval)
            .expect("count");
        let want = expected_counts(&all, tenant, &query, group_by, interval);
        assert_eq!(
            got, want,
            "round {round}: {query:?} {group_by:?} {interval:?}"
        );
    }
}

#[test]
fn adaptive_histograms_match_the_model_at_the_narrowest_width_that_fits() {
    let (_dir, index) = fresh();
    let mut rng = Rng(47);
    let t = tenant("a");
    let mut all = Vec::new();
    let mut next = 0;
    for _ in 0..6 {
        let n = 50 + rng.below(100) as u64;
        let batch = records(&mut rng, &t, next, n);
        next += n;
        index.apply(&batch).expect("apply");
        all.extend(batch);
        index.commit().expect("commit");
    }
    let hour = DAY / 24;
    let ladder = [hour / 4, hour, 6 * hour, DAY, 7 * DAY, 28 * DAY];
    for round in 0..200 {
        let query = if round < 20 {
            Query::default()
        } else {
            model::random_query(&mut rng)
        };
        let max_buckets = *rng.pick(&[4, 16, 48, 1024]);
        let (width, got) = index
            .histogram(&t, &query, &ladder, max_buckets)
            .expect("histogram");
        let want = expected_counts(&all, &t, &query, None, Some(width));
        assert_eq!(got, want, "round {round}: {query:?}");
        // The narrowest width whose buckets span at most max_buckets (else the widest),
        // judged on the buckets of the narrowest width, which every width is a multiple of.
        let starts: Vec<i64> = expected_counts(&all, &t, &query, None, Some(ladder[0]))
            .histogram
            .iter()
            .map(|bucket| bucket.start.unix_nanos())
            .collect();
        let fits = |w: i64| match (starts.first(), starts.last()) {
            (Some(first), Some(last)) => {
                last.div_euclid(w) - first.div_euclid(w)
                    < i64::try_from(max_buckets).expect("small")
            }
            _ => true,
        };
        let narrowest = ladder
            .iter()
            .copied()
            .find(|&w| fits(w))
            .unwrap_or(ladder[ladder.len() - 1]);
        assert_eq!(
            width, narrowest,
            "round {round}: {query:?} max {max_buckets}"
        );
    }
    assert!(matches!(
        index.histogram(&t, &Query::default(), &[DAY, 3 * DAY / 2], 10),
        Err(SearchError::InvalidQuery(_))
    ));
}

#[test]
fn histogram_buckets_are_aligned_to_the_epoch_including_before_it() {
    let (_dir, index) = fresh();
    let t = tenant("t");
    let event = |occurred_at: &str, outcome: &str| {
        veritrail_core::event::Event::parse(
            serde_json::from_value(serde_json::json!({
                "type": "a.b", "occurred_at": occurred_at, "outcome": outcome,
            }))
            .expect("input"),
        )
        .expect("event")
    };
    let records: Vec<_> = [
        ("1969-12-31T23:00:00Z", "failure"),
        ("1970-01-01T00:30:00Z", "success"),
        ("1970-01-01T00:59:59Z", "failure"),
        ("1970-01-01T03:00:00Z", "success"),
    ]
    .iter()
    .enumerate()
    .map(|(seq, (time, outcome))| {
        veritrail_core::record::Record::new(
            t.clone(),
            seq as u64,
            veritrail_core::event::Timestamp::from_unix_nanos(0),
            event(time, outcome),
            veritrail_core::record::CatalogFields::default(),
        )
    })
    .collect();
    index.apply(&records).expect("apply");
    index.commit().expect("commit");
    let hour = 3_600 * 1_000_000_000;
    let counts = index
        .count(&t, &Query::default(), None, Some(hour))
        .expect("count");
    let got: Vec<(i64, u64, u64)> = counts
        .histogram
        .iter()
        .map(|bucket| (bucket.start.unix_nanos(), bucket.total, bucket.failures))
        .collect();
    assert_eq!(got, vec![(-hour, 1, 1), (0, 2, 1), (3 * hour, 1, 0)]);
    assert!(counts.groups.is_empty());
    assert!(matches!(
        index.count(&t, &Query::default(), None, Some(0)),
        Err(SearchError::InvalidQuery(_))
    ));
}

/// Deleted documents (removed records) leave the catalog counts and the counts at the
/// next commit, although tantivy keeps them in its segments until a merge.
#[test]
fn deleted_records_leave_the_catalog_counts_and_the_counts() {
    use std::collections::BTreeMap;
    use veritrail_search::Deletion;

    let (_dir, index) = fresh();
    let mut rng = Rng(7);
    let tenant = tenant("a");
    let all = records(&mut rng, &tenant, 0, 300);
    index.apply(&all).expect("apply");
    index.commit().expect("commit");
    let erased: Vec<u64> = (250..300).filter(|seq| seq % 7 == 0).collect();
    index
        .delete(
            &tenant,
            &Deletion::Below {
                below: 250,
                except: vec![3, 50],
            },
        )
        .expect("delete");
    index
        .delete(&tenant, &Deletion::Seqs(erased.clone()))
        .expect("delete");
    index.commit().expect("commit");
    let kept: Vec<_> = all
        .iter()
        .filter(|record| {
            let seq = record.seq();
            (seq >= 250 || seq == 3 || seq == 50) && !erased.contains(&seq)
        })
        .cloned()
        .collect();
    let mut want: BTreeMap<(Option<String>, String), u64> = BTreeMap::new();
    for record in &kept {
        let category = record
            .catalog()
            .category
            .as_ref()
            .map(|c| c.as_str().to_owned());
        let event_type = record.event().event_type().as_str().to_owned();
        *want.entry((category, event_type)).or_default() += 1;
    }
    let got: BTreeMap<(Option<String>, String), u64> = index
        .catalog_counts(&tenant)
        .expect("catalog counts")
        .into_iter()
        .map(|(category, event_type, n)| ((category, event_type), n))
        .collect();
    assert_eq!(got, want);
    let counts = index
        .count(&tenant, &Query::default(), Some(GroupBy::Type), None)
        .expect("count");
    assert_eq!(
        counts,
        expected_counts(&kept, &tenant, &Query::default(), Some(GroupBy::Type), None)
    );
    // The segment, mostly deleted, is merged in the background for that alone: the deleted
    // documents leave the disk, and the counts stay. (Another tenant's records make the
    // commits that reload the reader; fewer than the eight segments that would make a
    // merge anyway.)
    let other = model::tenant("b");
    let mut next = 0;
    while index.stats().deleted > 0 {
        assert!(next < 6, "not merged: {:?}", index.stats());
        std::thread::sleep(std::time::Duration::from_millis(250));
        index
            .apply(&records(&mut rng, &other, next, 1))
            .expect("apply");
        next += 1;
        index.commit().expect("commit");
    }
    let got_after: BTreeMap<(Option<String>, String), u64> = index
        .catalog_counts(&tenant)
        .expect("catalog counts")
        .into_iter()
        .map(|(category, event_type, n)| ((category, event_type), n))
        .collect();
    assert_eq!(got_after, want);
}
