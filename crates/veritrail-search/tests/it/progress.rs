//! Progress bookkeeping: applied counts across reopen, gaps, idempotent re-apply, clear.

use std::collections::BTreeMap;

use veritrail_search::{Order, Query, SearchError, SearchIndex};

use crate::model::{Rng, fresh, records, small_options, tenant};
use crate::small_disk::{SmallDisk, fill};

#[test]
fn applied_after_reopen_is_what_was_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(21);
    let a = tenant("a");
    let b = tenant("b");
    {
        let index = SearchIndex::open(dir.path(), small_options()).expect("open");
        index.apply(&records(&mut rng, &a, 0, 30)).expect("apply");
        index.apply(&records(&mut rng, &b, 0, 5)).expect("apply");
        assert_eq!(index.applied(&a), 0, "not committed yet");
        index.commit().expect("commit");
        assert_eq!(index.applied(&a), 30);
        // Applied but never committed: lost on close, as after a crash.
        index.apply(&records(&mut rng, &a, 30, 20)).expect("apply");
        index
            .apply(&records(&mut rng, &tenant("c"), 0, 3))
            .expect("apply");
    }
    let index = SearchIndex::open(dir.path(), small_options()).expect("reopen");
    assert_eq!(index.applied(&a), 30);
    assert_eq!(index.applied(&b), 5);
    assert_eq!(index.applied(&tenant("c")), 0);
    assert_eq!(
        index.applied_all(),
        BTreeMap::from([(a.clone(), 30), (b.clone(), 5)])
    );
    let everything = Query::default();
    assert_eq!(
        index
            .count(&a, &everything, None, None)
            .expect("count")
            .total,
        30
    );
    // Resuming from applied() continues without a gap.
    index.apply(&records(&mut rng, &a, 30, 20)).expect("apply");
    index.commit().expect("commit");
    let page = index
        .search(&a, &everything, Order::Desc, 100, None)
        .expect("search");
    assert_eq!(page.seqs, (0..50).rev().collect::<Vec<_>>());
    drop(index);
    let index = SearchIndex::open(dir.path(), small_options()).expect("reopen");
    assert_eq!(index.applied(&a), 50);
}

#[test]
fn a_gap_applies_nothing_of_the_call() {
    let (_dir, index) = fresh();
    let mut rng = Rng(22);
    let a = tenant("a");
    let b = tenant("b");
    index.apply(&records(&mut rng, &a, 0, 5)).expect("apply");
    let mut call = records(&mut rng, &a, 5, 3);
    call.extend(records(&mut rng, &b, 1, 2));
    match index.apply(&call) {
        Err(SearchError::Gap {
            tenant,
            expected,
            got,
        }) => {
            assert_eq!((tenant, expected, got), (b.clone(), 0, 1));
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    let skip = [records(&mut rng, &a, 5, 1), records(&mut rng, &a, 7, 1)].concat();
    assert!(matches!(
        index.apply(&skip),
        Err(SearchError::Gap {
            expected: 6,
            got: 7,
            ..
        })
    ));
    index.commit().expect("commit");
    assert_eq!(
        index.applied(&a),
        5,
        "records 5.. of the failed calls are not applied"
    );
    assert_eq!(index.applied(&b), 0);
    assert_eq!(
        index
            .count(&a, &Query::default(), None, None)
            .expect("count")
            .total,
        5
    );
}

#[test]
fn reapplying_is_idempotent() {
    let (_dir, index) = fresh();
    let mut rng = Rng(23);
    let a = tenant("a");
    let first = records(&mut rng, &a, 0, 10);
    index.apply(&first).expect("apply");
    index.commit().expect("commit");
    let more = records(&mut rng, &a, 0, 15);
    index.apply(&more).expect("re-apply of committed records");
    index
        .apply(&more[8..])
        .expect("re-apply of uncommitted records");
    index
        .apply(&[more[3].clone(), more[3].clone()])
        .expect("duplicates in a call");
    index.commit().expect("commit");
    assert_eq!(index.applied(&a), 15);
    let everything = Query::default();
    assert_eq!(
        index
            .count(&a, &everything, None, None)
            .expect("count")
            .total,
        15
    );
    let page = index
        .search(&a, &everything, Order::Asc, 100, None)
        .expect("search");
    assert_eq!(page.seqs, (0..15).collect::<Vec<_>>());
    // A commit with nothing new is a no-op.
    index.commit().expect("commit");
    assert_eq!(index.applied(&a), 15);
}

#[test]
fn clear_removes_everything_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(24);
    let a = tenant("a");
    {
        let index = SearchIndex::open(dir.path(), small_options()).expect("open");
        index.apply(&records(&mut rng, &a, 0, 40)).expect("apply");
        index.commit().expect("commit");
        index.apply(&records(&mut rng, &a, 40, 5)).expect("apply");
        index.clear().expect("clear");
        assert!(index.applied_all().is_empty());
        assert_eq!(index.applied(&a), 0);
        let everything = Query::default();
        assert_eq!(
            index
                .count(&a, &everything, None, None)
                .expect("count")
                .total,
            0
        );
        // Rebuilding starts at seq 0.
        index.apply(&records(&mut rng, &a, 0, 3)).expect("apply");
        index.commit().expect("commit");
        assert_eq!(index.applied(&a), 3);
        index.clear().expect("clear");
    }
    let index = SearchIndex::open(dir.path(), small_options()).expect("reopen");
    assert!(index.applied_all().is_empty());
    assert_eq!(index.stats().documents, 0);
}

#[test]
fn a_second_writer_on_the_directory_is_refused() {
    let (dir, _index) = fresh();
    assert!(SearchIndex::open(dir.path(), small_options()).is_err());
}

#[test]
fn search_index_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SearchIndex>();
}

/// A real full disk (a small tmpfs the test mounts as root; it says why and returns where it
/// cannot): failed commits drop what was added, a second failure does not kill the writer
/// (tantivy's writer panics on a second rollback after a failed one), and once space is back
/// the index takes the same records again from `applied()`.
#[test]
fn a_full_disk_fails_commits_cleanly_and_the_index_resumes_when_space_is_back() {
    let disk = match SmallDisk::mount(24) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("note: full-disk test skipped: {why}");
            return;
        }
    };
    let mount = disk.path();

    let mut rng = Rng(31);
    let a = tenant("a");
    let index = SearchIndex::open(&mount.join("index"), small_options()).expect("open");
    index.apply(&records(&mut rng, &a, 0, 100)).expect("apply");
    index.commit().expect("commit");

    // Fill the disk but for a few KiB.
    let ballast = mount.join("ballast");
    fill(&ballast, 8 * 1024);
    let mut failures = 0;
    for _ in 0..3 {
        // Always from what is committed: a failed commit drops what was added.
        let from = index.applied(&a);
        let applied = index.apply(&records(&mut rng, &a, from, 2_000));
        if applied.is_err() || index.commit().is_err() {
            failures += 1;
        }
    }
    assert!(
        failures >= 2,
        "the disk never refused a commit ({failures} failures)"
    );
    assert_eq!(
        index.applied(&a),
        100,
        "a failed commit changed what is applied"
    );
    // Searches keep answering from the last commit.
    let page = index
        .search(&a, &Query::default(), Order::Desc, 10, None)
        .expect("search on a full disk");
    assert_eq!(page.seqs.first(), Some(&99));

    std::fs::remove_file(&ballast).expect("remove the ballast");
    index
        .apply(&records(&mut rng, &a, 100, 50))
        .expect("apply once space is back");
    index.commit().expect("commit once space is back");
    assert_eq!(index.applied(&a), 150);
}
