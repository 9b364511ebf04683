//! Counting: totals, groups and a histogram of the matches of a query, in one pass.
//!
//! `CountCollector` reads the group and time columns of every match, a block of doc ids
//! at a time, and keeps counts per column ordinal (strings are resolved once per segment,
//! not per document) and per time bucket (a `Tally`: an array over the run of buckets
//! where the matches are, a map for the rest).

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
    /// Per time bucket.
    buckets: Tally,
}

/// The bucket widths of a histogram: counting starts at the first width and moves to the
/// next whenever the buckets of the matches would span more than `max_buckets`. Each width
/// is a multiple of the one before, so buckets of a wider width are sums of narrower ones.
#[derive(Debug, Clone)]
pub(crate) struct Widths {
    widths: Vec<i64>,
    max_buckets: usize,
    /// `max_buckets` also bounds the buckets at the last width: past it the tally stops
    /// counting and says so ([`SegmentCounts::overflowed`]).
    hard: bool,
}

impl Widths {
    /// One width, with at most `max_buckets` non-empty buckets (more overflow).
    pub(crate) fn fixed(width: i64, max_buckets: usize) -> Result<Self, String> {
        let mut widths = Self::ladder(vec![width], max_buckets)?;
        widths.hard = true;
        Ok(widths)
    }

    /// `widths`: positive, ascending, each a multiple of the one before.
    pub(crate) fn ladder(widths: Vec<i64>, max_buckets: usize) -> Result<Self, String> {
        if widths.is_empty() || widths.iter().any(|&width| width <= 0) {
            return Err("the histogram interval must be positive".to_owned());
        }
        if widths
            .windows(2)
            .any(|pair| pair[1] <= pair[0] || pair[1] % pair[0] != 0)
        {
            return Err(
                "each histogram interval must be a multiple of the one before it".to_owned(),
            );
        }
        Ok(Self {
            widths,
            max_buckets: max_buckets.max(1),
            hard: false,
        })
    }
}

impl SegmentCounts {
    /// Whether the histogram passed its hard bucket limit (its counts are then incomplete).
    pub(crate) fn overflowed(&self) -> bool {
        let tally = &self.buckets;
        tally.overflowed
            || (tally.widths.hard
                && tally.dense.iter().filter(|counts| counts[0] > 0).count() + tally.sparse.len()
                    > tally.widths.max_buckets)
    }
}

/// Collects [`Counts`]; grouping and a histogram are optional.
#[derive(Debug)]
pub(crate) struct CountCollector {
    pub(crate) group_by: Option<GroupBy>,
    pub(crate) widths: Option<Widths>,
}

impl CountCollector {
    /// Merges per-segment counts into the sorted public form, with the histogram's width
    /// (0 without a histogram).
    pub(crate) fn finish(&self, merged: SegmentCounts) -> (i64, Counts) {
        let mut groups: Vec<(String, u64)> = merged.groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let interval = merged.buckets.width();
        let histogram: Vec<Bucket> = merged
            .buckets
            .into_sorted()
            .into_iter()
            .map(|(idx, [total, failures])| Bucket {
                start: Timestamp::from_unix_nanos(idx.saturating_mul(interval)),
                total,
                failures,
            })
            .collect();
        (
            interval,
            Counts {
                total: merged.total,
                groups,
                histogram,
            },
        )
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
    time: Option<Column<i64>>,
    outcome: Column<u64>,
    buckets: Tally,
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
        let time = match self.widths {
            Some(_) => Some(fast_fields.i64(names::TIME)?),
            None => None,
        };
        Ok(CountSegmentCollector {
            group_column,
            group_counts: vec![0; n_groups + 1],
            time,
            outcome: fast_fields.u64(names::OUTCOME)?,
            buckets: self.widths.clone().map(Tally::new).unwrap_or_default(),
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
        let mut merged = SegmentCounts {
            buckets: self.widths.clone().map(Tally::new).unwrap_or_default(),
            ..SegmentCounts::default()
        };
        for fruit in fruits {
            merged.total += fruit.total;
            for (key, count) in fruit.groups {
                *merged.groups.entry(key).or_default() += count;
            }
            merged.buckets.merge(fruit.buckets);
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
        if let Some(time_column) = &self.time {
            self.times.resize(docs.len(), None);
            time_column.first_vals(docs, &mut self.times);
            self.outcomes.resize(docs.len(), None);
            self.outcome.first_vals(docs, &mut self.outcomes);
            let failure = outcome_code(Some(Outcome::Failure));
            for (time, outcome) in self.times.iter().zip(&self.outcomes) {
                let Some(time) = time else { continue };
                self.buckets
                    .add_time(*time, [1, u64::from(*outcome == Some(failure))]);
            }
        }
    }

    fn harvest(self) -> SegmentCounts {
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

/// Most buckets a [`Tally`] keeps in its array (1 MiB); the rest go to its map.
const DENSE_MAX: i128 = 1 << 16;

/// `[total, failures]` per histogram bucket. The buckets of one count are mostly a run of
/// neighbours, whatever the order the matches come in: they are counted in an array over
/// that run (grown as matches reach out of it). When the run would pass the widths'
/// `max_buckets`, the tally moves to the next width, summing its buckets; at the last
/// width, buckets far from the run (such as events sent with odd times) go to a map.
#[derive(Debug)]
pub(crate) struct Tally {
    widths: Widths,
    /// Index in `widths.widths` of the width counted at.
    level: usize,
    /// Bucket index (time divided by the width, rounded down) of `dense[0]`.
    base: i64,
    dense: Vec<[u64; 2]>,
    sparse: HashMap<i64, [u64; 2]>,
    /// A hard bucket limit was passed: counting stopped.
    overflowed: bool,
    /// Times the array was made anew (the tests bound it: growth must be geometric).
    #[cfg(test)]
    regrown: usize,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new(Widths {
            widths: vec![1],
            max_buckets: usize::MAX,
            hard: false,
        })
    }
}

impl Tally {
    fn new(widths: Widths) -> Self {
        Self {
            widths,
            level: 0,
            base: 0,
            dense: Vec::new(),
            sparse: HashMap::new(),
            overflowed: false,
            #[cfg(test)]
            regrown: 0,
        }
    }

    /// The width counted at.
    fn width(&self) -> i64 {
        self.widths.widths[self.level]
    }

    /// Adds `counts` to the bucket of `time`.
    #[inline]
    fn add_time(&mut self, time: i64, counts: [u64; 2]) {
        loop {
            let idx = time.div_euclid(self.width());
            let slot = idx
                .checked_sub(self.base)
                .and_then(|offset| usize::try_from(offset).ok())
                .and_then(|offset| self.dense.get_mut(offset));
            if let Some(slot) = slot {
                slot[0] += counts[0];
                slot[1] += counts[1];
                return;
            }
            if self.add_outside(idx, counts) {
                return;
            }
            self.coarsen();
        }
    }

    /// Adds `counts` to bucket `idx`, outside the array: the array grows to reach it (with
    /// room to spare on that side). Before the last width, the run of buckets in use must
    /// stay within the limit, else this returns false (move to a wider width). At the last
    /// width, buckets the array cannot reach within its cap go to the map.
    #[cold]
    fn add_outside(&mut self, idx: i64, counts: [u64; 2]) -> bool {
        let idx_wide = i128::from(idx);
        let base = i128::from(self.base);
        let last_level = self.level + 1 == self.widths.widths.len();
        if last_level && self.widths.hard && !self.sparse.contains_key(&idx) {
            // A new bucket: within the hard limit, or counting stops. (The scan of the
            // array happens at most `max_buckets` times before the limit is passed.)
            let used = self.dense.iter().filter(|counts| counts[0] > 0).count();
            if self.overflowed || used + self.sparse.len() >= self.widths.max_buckets {
                self.overflowed = true;
                return true;
            }
        }
        // The run to keep in the array (with `idx`), and the part of the array to copy.
        let (low, high, keep, cap) = if last_level {
            // The whole array, without looking into it: this path also takes every
            // outlier, which must not cost a scan of the array each.
            let keep = (!self.dense.is_empty()).then(|| (0, self.dense.len() - 1));
            let (low, high) = match keep {
                Some(_) => (
                    base.min(idx_wide),
                    (base + self.dense.len() as i128).max(idx_wide + 1),
                ),
                None => (idx_wide, idx_wide + 1),
            };
            // Under a hard limit the array is no longer than the limit: the buckets in use,
            // in it and in the map, are then counted at the end in bounded memory.
            let cap = if self.widths.hard {
                i128::try_from(self.widths.max_buckets)
                    .unwrap_or(DENSE_MAX)
                    .min(DENSE_MAX)
            } else {
                DENSE_MAX
            };
            (low, high, keep, cap)
        } else {
            // The buckets in use: the array's slack does not count against the limit.
            let keep = self
                .dense
                .iter()
                .position(|counts| counts[0] > 0)
                .zip(self.dense.iter().rposition(|counts| counts[0] > 0));
            let (low, high) = match keep {
                Some((first, last)) => (
                    (base + first as i128).min(idx_wide),
                    (base + last as i128 + 1).max(idx_wide + 1),
                ),
                None => (idx_wide, idx_wide + 1),
            };
            let limit = i128::try_from(self.widths.max_buckets).unwrap_or(i128::MAX);
            if high - low > limit {
                return false;
            }
            (low, high, keep, limit.min(DENSE_MAX))
        };
        // Twice the run, extended on the side that `idx` is on; before the last width, at
        // most the limit, so that every bucket in the array keeps the run within it.
        let new_len = ((high - low) * 2)
            .clamp(16, DENSE_MAX)
            .min(cap)
            .max(high - low);
        // Below the kept run: the room goes below it; else above.
        let below = keep.is_some_and(|(first, _)| idx_wide < base + first as i128);
        let new_base = if below { high - new_len } else { low };
        let (true, Ok(new_base), Ok(_), Ok(new_len)) = (
            high - low <= DENSE_MAX,
            i64::try_from(new_base),
            i64::try_from(new_base + new_len - 1),
            usize::try_from(new_len),
        ) else {
            let slot = self.sparse.entry(idx).or_default();
            slot[0] += counts[0];
            slot[1] += counts[1];
            return true;
        };
        let mut dense = vec![[0u64; 2]; new_len];
        if let Some((first, last)) = keep {
            let shift = usize::try_from(base + first as i128 - i128::from(new_base)).unwrap_or(0);
            dense[shift..shift + (last - first + 1)].copy_from_slice(&self.dense[first..=last]);
        }
        self.base = new_base;
        self.dense = dense;
        #[cfg(test)]
        {
            self.regrown += 1;
        }
        let offset = usize::try_from(idx_wide - i128::from(new_base)).unwrap_or(0);
        let slot = &mut self.dense[offset];
        slot[0] += counts[0];
        slot[1] += counts[1];
        true
    }

    /// Moves to the next width, summing the buckets into the wider ones.
    fn coarsen(&mut self) {
        let narrow = self.width();
        let buckets = std::mem::take(self).into_sorted_parts();
        *self = Self::new(buckets.0);
        self.level = buckets.1 + 1;
        for (idx, counts) in buckets.2 {
            self.add_time(idx.saturating_mul(narrow), counts);
        }
    }

    /// Adds the counts of `other` (a tally of the same widths).
    fn merge(&mut self, other: Tally) {
        self.overflowed |= other.overflowed;
        while self.level < other.level && self.level + 1 < self.widths.widths.len() {
            self.coarsen();
        }
        let width = other.width();
        for (idx, counts) in other.into_sorted() {
            self.add_time(idx.saturating_mul(width), counts);
        }
    }

    /// The non-empty buckets, by index.
    fn into_sorted(self) -> Vec<(i64, [u64; 2])> {
        self.into_sorted_parts().2
    }

    /// The widths, the level, and the non-empty buckets by index.
    fn into_sorted_parts(self) -> (Widths, usize, Vec<(i64, [u64; 2])>) {
        let base = self.base;
        let mut out: Vec<(i64, [u64; 2])> = self
            .dense
            .into_iter()
            .enumerate()
            .filter(|(_, counts)| counts[0] > 0)
            // The array's last index fits in an i64 (checked when it grew).
            .map(|(offset, counts)| (base.saturating_add_unsigned(offset as u64), counts))
            .chain(self.sparse)
            .collect();
        out.sort_unstable_by_key(|(idx, _)| *idx);
        (self.widths, self.level, out)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The next number of a xorshift generator.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// The tally of `adds`, against a plain map.
    fn check(adds: &[(i64, [u64; 2])]) {
        let mut tally = Tally::default();
        let mut expected: BTreeMap<i64, [u64; 2]> = BTreeMap::new();
        for &(idx, counts) in adds {
            tally.add_time(idx, counts);
            let slot = expected.entry(idx).or_default();
            slot[0] += counts[0];
            slot[1] += counts[1];
        }
        let expected: Vec<(i64, [u64; 2])> = expected.into_iter().collect();
        let got = tally.into_sorted();
        let first_difference = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            got.len() == expected.len() && first_difference.is_none(),
            "{} buckets for {}; first difference at {first_difference:?}: {:?} for {:?}",
            got.len(),
            expected.len(),
            first_difference.map(|at| got[at]),
            first_difference.map(|at| expected[at]),
        );
    }

    #[test]
    fn tallies_match_a_map_in_any_order_and_range() {
        // Neighbours in time order, in reverse, and shuffled.
        let run: Vec<(i64, [u64; 2])> = (0..5000)
            .map(|i| (i / 3, [1, (i % 7 == 0).into()]))
            .collect();
        check(&run);
        let reversed: Vec<_> = run.iter().rev().copied().collect();
        check(&reversed);
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let shuffled: Vec<_> = (0..20_000)
            .map(|_| {
                let n = xorshift(&mut state);
                (i64::try_from(n % 3000).expect("small") - 1500, [1, n % 2])
            })
            .collect();
        check(&shuffled);
        // Outliers far from the run go to the map; negative and extreme indices too.
        let mut odd = run.clone();
        odd.extend([
            (i64::MIN, [1, 0]),
            (i64::MAX, [2, 1]),
            (-1, [1, 1]),
            (1 << 40, [1, 0]),
            (-(1 << 40), [1, 0]),
            (i64::MAX - 3, [1, 0]),
        ]);
        odd.extend(run.iter().map(|(idx, counts)| (idx + 20_000, *counts)));
        check(&odd);
        check(&[(i64::MAX, [1, 0]), (i64::MAX - 1, [1, 0])]);
        check(&[(i64::MIN, [1, 0]), (i64::MIN + 1, [1, 0])]);
        check(&[]);
    }

    #[test]
    fn the_array_grows_geometrically_in_either_direction() {
        for ladder in [vec![1], vec![1, 1_000_000]] {
            for descending in [false, true] {
                let mut tally = Tally::new(Widths::ladder(ladder.clone(), 100_000).expect("ok"));
                for i in 0..50_000 {
                    tally.add_time(if descending { -i } else { i }, [1, 0]);
                }
                assert!(
                    tally.regrown <= 16 && tally.sparse.is_empty(),
                    "{} regrowths, {} in the map, {ladder:?} descending {descending}",
                    tally.regrown,
                    tally.sparse.len()
                );
                assert_eq!(tally.into_sorted().len(), 50_000);
            }
        }
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::default();
        let mut b = Tally::default();
        for i in 0..100 {
            a.add_time(i, [1, 0]);
            b.add_time(i + 50, [2, 1]);
        }
        b.add_time(1 << 50, [1, 1]);
        a.merge(b);
        let sorted = a.into_sorted();
        assert_eq!(sorted.len(), 151);
        assert_eq!(sorted[0], (0, [1, 0]));
        assert_eq!(sorted[60], (60, [3, 1]));
        assert_eq!(sorted[149], (149, [2, 1]));
        assert_eq!(sorted[150], (1 << 50, [1, 1]));
    }

    /// A tally over `widths` (at most `max` buckets a run) of `times`, against a plain map
    /// at the width it ends at, which must be the narrowest whose run fits.
    fn check_ladder(widths: &[i64], max: usize, times: &[i64]) -> i64 {
        let ladder = Widths::ladder(widths.to_vec(), max).expect("a ladder");
        let mut tally = Tally::new(ladder.clone());
        for &time in times {
            tally.add_time(time, [1, u64::from(time % 3 == 0)]);
        }
        let width = tally.width();
        let run = |width: i64| {
            let min = times.iter().min().expect("times").div_euclid(width);
            let max = times.iter().max().expect("times").div_euclid(width);
            max - min + 1
        };
        let narrowest = widths
            .iter()
            .copied()
            .find(|&w| run(w) <= i64::try_from(max).unwrap_or(i64::MAX))
            .unwrap_or(*widths.last().expect("widths"));
        assert_eq!(width, narrowest, "{widths:?} max {max}");
        let mut expected: BTreeMap<i64, [u64; 2]> = BTreeMap::new();
        for &time in times {
            let slot = expected.entry(time.div_euclid(width)).or_default();
            slot[0] += 1;
            slot[1] += u64::from(time % 3 == 0);
        }
        let expected: Vec<(i64, [u64; 2])> = expected.into_iter().collect();
        assert_eq!(tally.into_sorted(), expected);
        // Split in two tallies (one may stay narrower) and merged: the same.
        let (left, right) = times.split_at(times.len() / 3);
        let mut a = Tally::new(ladder.clone());
        let mut b = Tally::new(ladder);
        for &time in left {
            a.add_time(time, [1, u64::from(time % 3 == 0)]);
        }
        for &time in right {
            b.add_time(time, [1, u64::from(time % 3 == 0)]);
        }
        a.merge(b);
        assert_eq!(a.width(), width);
        assert_eq!(a.into_sorted(), expected);
        width
    }

    #[test]
    fn a_ladder_moves_to_the_narrowest_width_that_fits() {
        let widths = [1, 2, 10, 60, 600];
        let ascending: Vec<i64> = (0..1000).collect();
        assert_eq!(check_ladder(&widths, 50, &ascending), 60);
        let descending: Vec<i64> = (0..1000).rev().collect();
        assert_eq!(check_ladder(&widths, 50, &descending), 60);
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let shuffled: Vec<i64> = (0..5000)
            .map(|_| i64::try_from(xorshift(&mut state) % 4000).expect("small") - 2000)
            .collect();
        assert_eq!(check_ladder(&widths, 400, &shuffled), 10);
        assert_eq!(check_ladder(&widths, 50, &[5, 6, 7]), 1);
        // An outlier takes the widest width, and past its limit the map.
        let mut outlier = ascending.clone();
        outlier.push(10_000_000);
        assert_eq!(check_ladder(&widths, 50, &outlier), 600);
        assert_eq!(check_ladder(&[1], usize::MAX, &outlier), 1);
    }

    #[test]
    fn ladders_must_divide() {
        assert!(Widths::ladder(vec![60, 300, 900], 10).is_ok());
        assert!(Widths::ladder(vec![7, 30], 10).is_err());
        assert!(Widths::ladder(vec![60, 60], 10).is_err());
        assert!(Widths::ladder(vec![0], 10).is_err());
        assert!(Widths::ladder(vec![], 10).is_err());
    }
}
