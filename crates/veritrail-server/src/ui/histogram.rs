//! The Activity page's histogram: the bucket width for a range, one count over a ladder of
//! widths, and the rebucketing of what was counted into the bars shown.

use veritrail_core::event::TenantId;
use veritrail_search::{Bucket, Query};

use super::activity::{ActivityParams, Bar};
use crate::AppState;
use crate::error::ApiError;

/// Bars of the histogram, about.
pub(super) const BARS: i64 = 48;

/// The histogram's height, in SVG units.
pub(super) const CHART_HEIGHT: u64 = 80;

/// Bucket widths the histogram chooses from, with their names.
pub(super) const INTERVALS: [(i64, &str); 10] = [
    (60, "1m"),
    (300, "5m"),
    (900, "15m"),
    (3600, "1h"),
    (3 * 3600, "3h"),
    (6 * 3600, "6h"),
    (12 * 3600, "12h"),
    (86_400, "1d"),
    (7 * 86_400, "7d"),
    (28 * 86_400, "28d"),
];

/// The bucket width for a histogram over `span_nanos`: the narrowest of [`INTERVALS`]
/// that needs at most [`BARS`] bars.
pub(super) fn interval_for(span_nanos: i64) -> (i64, &'static str) {
    let span_secs = span_nanos.saturating_add(999_999_999) / 1_000_000_000;
    INTERVALS
        .iter()
        .copied()
        .find(|(width, _)| span_secs / width <= BARS)
        .unwrap_or(INTERVALS[INTERVALS.len() - 1])
}

/// Most buckets the histogram's count keeps before it moves to a wider bucket width (well
/// above [`BARS`], so the width shown is never narrower than the width counted).
pub(super) const COUNTED_BUCKETS: usize = 1024;

/// The histogram of the events matching `query`: its bars, the bucket width's name and the
/// number of bucket slots. It spans the filters' dates; what they leave open is the time
/// the matching events span.
///
/// One count does it. With both dates it counts at the width they need; otherwise over
/// the ladder of [`INTERVALS`] (each a multiple of the one before): the count moves to a
/// wider width whenever the matches' buckets would pass [`COUNTED_BUCKETS`], so it ends at
/// a width no wider than the one shown, whose buckets are then sums of the counted ones.
pub(super) fn histogram(
    state: &AppState,
    tenant: &TenantId,
    query: &Query,
    filters: &ActivityParams,
) -> Result<(Vec<Bar>, String, u64), ApiError> {
    const NANOS: i64 = 1_000_000_000;
    let none = (Vec::new(), String::new(), 0);
    let search = state.search();
    let (from, to) = (
        query.from.map(|t| t.unix_nanos()),
        query.to.map(|t| t.unix_nanos()),
    );
    let ladder: Vec<i64> = match (from, to) {
        // Spans saturate: events may lie anywhere in the 584 years of `Timestamp`.
        (Some(from), Some(to)) if to > from => {
            vec![interval_for(to.saturating_sub(from)).0 * NANOS]
        }
        (Some(_), Some(_)) => return Ok(none),
        _ => INTERVALS.iter().map(|(width, _)| width * NANOS).collect(),
    };
    let (counted_nanos, counts) = search.histogram(tenant, query, &ladder, COUNTED_BUCKETS)?;
    let counts = counts.histogram;
    let (Some(first), Some(last)) = (counts.first(), counts.last()) else {
        return Ok(none);
    };
    // The range: the filters' dates, else the counted buckets'.
    let start = from.unwrap_or_else(|| first.start.unix_nanos());
    let end = to.unwrap_or_else(|| last.start.unix_nanos().saturating_add(counted_nanos));
    if end <= start {
        return Ok(none);
    }
    let (width, name) = interval_for(end.saturating_sub(start));
    let width_nanos = width * NANOS;
    let buckets = if width_nanos == counted_nanos {
        counts
    } else if width_nanos > counted_nanos && width_nanos % counted_nanos == 0 {
        rebucket(&counts, width_nanos)
    } else {
        search
            .count(tenant, query, None, Some(width_nanos))?
            .histogram
    };
    let tallest = buckets
        .iter()
        .map(|bucket| bucket.total)
        .max()
        .unwrap_or(1)
        .max(1);
    let first_slot = start.div_euclid(width_nanos);
    let last_slot = (end - 1).div_euclid(width_nanos);
    let slots = u64::try_from(last_slot - first_slot + 1).unwrap_or(0);
    let mut bars = Vec::with_capacity(buckets.len());
    for bucket in &buckets {
        let slot = bucket.start.unix_nanos().div_euclid(width_nanos);
        let Ok(offset) = u64::try_from(slot - first_slot) else {
            continue;
        };
        if offset >= slots {
            continue;
        }
        let from = bucket.start.to_rfc3339();
        let to = veritrail_core::event::Timestamp::from_unix_nanos(
            bucket.start.unix_nanos().saturating_add(width_nanos),
        )
        .to_rfc3339();
        bars.push(Bar {
            x: offset * 10,
            total_height: bucket.total * CHART_HEIGHT / tallest,
            failure_height: bucket.failures * CHART_HEIGHT / tallest,
            total: bucket.total,
            failures: bucket.failures,
            href: filters.url(&from, &to, None),
            from,
            to,
        });
    }
    Ok((bars, name.to_owned(), slots))
}

/// `buckets` (ascending, of a width that divides `width_nanos`) summed into buckets of
/// `width_nanos`.
pub(super) fn rebucket(buckets: &[Bucket], width_nanos: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for bucket in buckets {
        let start = bucket
            .start
            .unix_nanos()
            .div_euclid(width_nanos)
            .saturating_mul(width_nanos);
        match out.last_mut() {
            Some(last) if last.start.unix_nanos() == start => {
                last.total += bucket.total;
                last.failures += bucket.failures;
            }
            _ => out.push(Bucket {
                start: veritrail_core::event::Timestamp::from_unix_nanos(start),
                total: bucket.total,
                failures: bucket.failures,
            }),
        }
    }
    out
}
