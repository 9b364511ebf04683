//! Counting: totals, groups and a histogram of the matches of a query, in one pass.
//!
//! `CountCollector` reads the group and time columns of every match, a block of doc ids
//! at a time, and keeps counts per column ordinal (strings are resolved once per segment,
//! not per document).

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};
use veritrail_core::event::{Outcome, Timestamp};

use crate::query::GroupBy;
use crate::schema::{names, outcome_code};

/// Counts of the matches of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Number of matching records.
    pub total: u64,
    /// `(key, count)` per group when grouping was asked for, sorted by count descending,
    /// then key; records without the value count under `""`.
    pub groups: Vec<(String, u64)>,
    /// Non-empty time buckets in ascending order, when an interval was asked for.
    pub histogram: Vec<Bucket>,
}

/// One histogram bucket: records whose event time is in `[start, start + interval)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Start of the bucket, a multiple of the interval since the Unix epoch.
    pub start: Timestamp,
    /// Records in the bucket.
    pub total: u64,
    /// Records in the bucket whose outcome is `failure`.
    pub failures: u64,
}

/// The counts of one segment, keyed by resolved strings.
#[derive(Debug, Default)]
pub(crate) struct SegmentCounts {
    total: u64,
    groups: HashMap<String, u64>,
    /// Bucket index (event time divided by the interval, rounded down) -> (total, failures).
    buckets: HashMap<i64, (u64, u64)>,
}

/// Collects [`Counts`]; `group_by` and `interval_nanos` (positive) are optional.
#[derive(Debug)]
pub(crate) struct CountCollector {
    pub(crate) group_by: Option<GroupBy>,
    pub(crate) interval_nanos: Option<i64>,
}

impl CountCollector {
    /// Merges per-segment counts into the sorted public form.
    pub(crate) fn finish(&self, merged: SegmentCounts) -> Counts {
        let mut groups: Vec<(String, u64)> = merged.groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let interval = self.interval_nanos.unwrap_or(1);
        let mut histogram: Vec<Bucket> = merged
            .buckets
            .into_iter()
            .map(|(idx, (total, failures))| Bucket {
                start: Timestamp::from_unix_nanos(idx.saturating_mul(interval)),
                total,
                failures,
            })
            .collect();
        histogram.sort_by_key(|bucket| bucket.start);
        Counts {
            total: merged.total,
            groups,
            histogram,
        }
    }
}

/// The column a segment groups by.
enum GroupColumn {
    None,
    Strings(Option<StrColumn>),
    Outcome(Column<u64>),
}

pub(crate) struct CountSegmentCollector {
    group_column: GroupColumn,
    /// Count per group ordinal; the last slot counts documents without a value.
    group_counts: Vec<u64>,
    time: Option<(Column<i64>, i64)>,
    outcome: Column<u64>,
    buckets: HashMap<i64, (u64, u64)>,
    /// The bucket being counted: (index, total, failures), not yet in `buckets`.
    current: (i64, u64, u64),
    total: u64,
    ords: Vec<Option<u64>>,
    times: Vec<Option<i64>>,
    outcomes: Vec<Option<u64>>,
}

impl std::fmt::Debug for CountSegmentCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountSegmentCollector")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Collector for CountCollector {
    type Fruit = SegmentCounts;
    type Child = CountSegmentCollector;

    fn for_segment(
        &self,
        _segment_local_id: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<CountSegmentCollector> {
        let fast_fields = segment.fast_fields();
        let group_column = match self.group_by {
            None => GroupColumn::None,
            Some(GroupBy::Type) => GroupColumn::Strings(fast_fields.str(names::TYPE)?),
            Some(GroupBy::Category) => GroupColumn::Strings(fast_fields.str(names::CATEGORY)?),
            Some(GroupBy::Actor) => GroupColumn::Strings(fast_fields.str(names::ACTOR_KEY)?),
            Some(GroupBy::Outcome) => GroupColumn::Outcome(fast_fields.u64(names::OUTCOME)?),
        };
        let n_groups = match &group_column {
            GroupColumn::None => 0,
            GroupColumn::Strings(column) => column.as_ref().map_or(0, |column| column.num_terms()),
            GroupColumn::Outcome(_) => Outcome::ALL.len() + 1,
        };
        let time = match self.interval_nanos {
            Some(interval) => Some((fast_fields.i64(names::TIME)?, interval)),
            None => None,
        };
        Ok(CountSegmentCollector {
            group_column,
            group_counts: vec![0; n_groups + 1],
            time,
            outcome: fast_fields.u64(names::OUTCOME)?,
            buckets: HashMap::new(),
            current: (0, 0, 0),
            total: 0,
            ords: Vec::new(),
            times: Vec::new(),
            outcomes: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<SegmentCounts>) -> tantivy::Result<SegmentCounts> {
        let mut merged = SegmentCounts::default();
        for fruit in fruits {
            merged.total += fruit.total;
            for (key, count) in fruit.groups {
                *merged.groups.entry(key).or_default() += count;
            }
            for (idx, (total, failures)) in fruit.buckets {
                let bucket = merged.buckets.entry(idx).or_default();
                bucket.0 += total;
                bucket.1 += failures;
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for CountSegmentCollector {
    type Fruit = SegmentCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.collect_block(&[doc]);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.total += docs.len() as u64;
        let missing = self.group_counts.len() - 1;
        match &self.group_column {
            GroupColumn::None => {}
            GroupColumn::Strings(None) => self.group_counts[missing] += docs.len() as u64,
            GroupColumn::Strings(Some(column)) => {
                count_ords(column.ords(), docs, &mut self.ords, &mut self.group_counts);
            }
            GroupColumn::Outcome(column) => {
                count_ords(column, docs, &mut self.ords, &mut self.group_counts);
            }
        }
        if let Some((time_column, interval)) = &self.time {
            self.times.resize(docs.len(), None);
            time_column.first_vals(docs, &mut self.times);
            self.outcomes.resize(docs.len(), None);
            self.outcome.first_vals(docs, &mut self.outcomes);
            let failure = outcome_code(Some(Outcome::Failure));
            for (time, outcome) in self.times.iter().zip(&self.outcomes) {
                let Some(time) = time else { continue };
                let idx = time.div_euclid(*interval);
                // Matches mostly come in time order: count into the current bucket and
                // touch the map only when the bucket changes.
                if self.current.0 != idx {
                    flush(&mut self.buckets, self.current);
                    self.current = (idx, 0, 0);
                }
                self.current.1 += 1;
                self.current.2 += u64::from(*outcome == Some(failure));
            }
        }
    }

    fn harvest(mut self) -> SegmentCounts {
        flush(&mut self.buckets, self.current);
        let missing = self.group_counts.len() - 1;
        let mut groups = HashMap::new();
        if self.group_counts[missing] > 0 {
            groups.insert(String::new(), self.group_counts[missing]);
        }
        let ords: Vec<u64> = (0..missing)
            .filter(|&ord| self.group_counts[ord] > 0)
            .map(|ord| ord as u64)
            .collect();
        let mut add = |ord: u64, key: String| {
            let count = usize::try_from(ord).map_or(0, |ord| self.group_counts[ord]);
            *groups.entry(key).or_default() += count;
        };
        match &self.group_column {
            GroupColumn::None | GroupColumn::Strings(None) => {}
            GroupColumn::Strings(Some(column)) => {
                // One walk over the dictionary for all ordinals (a lookup per ordinal costs a
                // block decode each). Ordinals come from the column, so all are found; an
                // I/O error would only lose labels, and their counts go to "".
                let mut keys = Vec::with_capacity(ords.len());
                let found = column.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
                    keys.push(String::from_utf8_lossy(bytes).into_owned());
                });
                if matches!(found, Ok(true)) && keys.len() == ords.len() {
                    for (&ord, key) in ords.iter().zip(keys) {
                        add(ord, key);
                    }
                } else {
                    for &ord in &ords {
                        add(ord, String::new());
                    }
                }
            }
            GroupColumn::Outcome(_) => {
                for &ord in &ords {
                    let outcome = u8::try_from(ord).ok().and_then(Outcome::from_code);
                    add(ord, outcome.map_or("", Outcome::as_str).to_owned());
                }
            }
        }
        SegmentCounts {
            total: self.total,
            groups,
            buckets: self.buckets,
        }
    }
}

/// Adds a (bucket index, total, failures) tally to `buckets`.
fn flush(buckets: &mut HashMap<i64, (u64, u64)>, (idx, total, failures): (i64, u64, u64)) {
    if total > 0 {
        let bucket = buckets.entry(idx).or_default();
        bucket.0 += total;
        bucket.1 += failures;
    }
}

/// Adds one to `counts[ord]` per document (the last slot when it has no value).
fn count_ords(
    column: &Column<u64>,
    docs: &[DocId],
    ords: &mut Vec<Option<u64>>,
    counts: &mut [u64],
) {
    let missing = counts.len() - 1;
    ords.resize(docs.len(), None);
    column.first_vals(docs, ords);
    for ord in ords.iter() {
        let slot = ord
            .and_then(|ord| usize::try_from(ord).ok())
            .filter(|&ord| ord < missing)
            .unwrap_or(missing);
        counts[slot] += 1;
    }
}
