//! First pages fast: the top `limit` seqs of a query without visiting every match.
//!
//! A plain top-k over a fast field visits every matching document, millions for a broad
//! filter on a big tenant. Instead the search walks *windows* of blocks (`crate::blocks`)
//! in the order of their `pos` bounds (newest first for [`Order::Desc`]), keeps the best
//! `limit + 1` hits, and stops as soon as the worst kept hit is better than any bound left:
//! within a tenant `pos` order is seq order, so no unvisited document can enter the page.
//!
//! Every run of every segment is a cursor; a priority queue hands out the cursor whose next
//! block has the best bound. A cursor's window starts at one block and doubles each time
//! the cursor is picked again, so a query that matches little costs a few scorers per run
//! on top of one pass over its matches. Blocks that cannot match are skipped without being
//! read: their time range misses the query's, or (paging with `after`) their `pos` range is
//! on the wrong side of the `after` record's `pos`.
//!
//! A segment where the query is selective (its driving posting list is short) is read in
//! one pass instead: there, the seeks of many windows would cost more than the matches. It
//! waits in the same queue, keyed by its best block, so an old segment is not read at all
//! once the page is final.
//!
//! Correctness never depends on doc ids following `pos`: the bounds only decide when to stop
//! early, and the collector filters every hit by seq against `after`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;
use std::sync::Arc;

use tantivy::columnar::Column;
use tantivy::query::{Scorer, Weight};
use tantivy::{DocId, DocSet, Searcher, SegmentReader, TERMINATED};

use crate::SearchError;
use crate::blocks::{Block, BlockStatsCache, SegmentStats};
use crate::query::Order;
use crate::schema::names;

/// Largest window, in blocks.
const MAX_WINDOW_BLOCKS: usize = 256;

/// A page of seqs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The matching seqs, in the requested order.
    pub seqs: Vec<u64>,
    /// The last seq of `seqs` when more matches follow (pass it as `after` for the next
    /// page), else `None`.
    pub next_after: Option<u64>,
}

/// What restricts the walk besides the query itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) order: Order,
    pub(crate) limit: usize,
    /// Only seqs past this (in `order`).
    pub(crate) after_seq: Option<u64>,
    /// The `pos` of the `after` record, when it is in the index: blocks entirely on its
    /// wrong side are skipped.
    pub(crate) after_pos: Option<u64>,
    /// Event times the query accepts, `(first, last)` inclusive.
    pub(crate) time: (i64, i64),
    /// A segment whose query scorer expects to step through at most this many documents
    /// (tantivy's `cost`: the size of the docset driving the intersection) is read in one
    /// pass instead of windows: each window's new scorer seeks its posting lists to the
    /// window start, and for a selective query those seeks cost more than reading every
    /// match.
    pub(crate) one_pass_max_docs: u64,
}

impl Bounds {
    fn block_may_match(&self, block: &Block) -> bool {
        let (first, last) = self.time;
        if block.max_time < first || block.min_time > last {
            return false;
        }
        match (self.order, self.after_pos) {
            (Order::Desc, Some(after_pos)) => block.min_pos < after_pos,
            (Order::Asc, Some(after_pos)) => block.max_pos > after_pos,
            (_, None) => true,
        }
    }

    /// The best `pos` any document of `block` may have: a lower key is better.
    fn block_key(&self, block: &Block) -> u64 {
        match self.order {
            Order::Desc => u64::MAX - block.max_pos,
            Order::Asc => block.min_pos,
        }
    }

    fn doc_key(&self, pos: u64) -> u64 {
        match self.order {
            Order::Desc => u64::MAX - pos,
            Order::Asc => pos,
        }
    }

    fn seq_passes(&self, seq: u64) -> bool {
        match (self.order, self.after_seq) {
            (Order::Desc, Some(after)) => seq < after,
            (Order::Asc, Some(after)) => seq > after,
            (_, None) => true,
        }
    }
}

/// One run of one segment, walked from its best end; or a whole segment read in one pass.
struct Cursor {
    segment_ord: usize,
    stats: Arc<SegmentStats>,
    /// Blocks not visited yet.
    remaining: Range<usize>,
    window_blocks: usize,
    /// Read every document of the segment at the first turn, with this scorer (a selective
    /// query).
    whole: Option<Box<dyn Scorer>>,
}

impl Cursor {
    /// Drops blocks at the walking end that cannot match; false when none is left.
    fn skip_unmatchable(&mut self, bounds: &Bounds) -> bool {
        while let Some(idx) = self.next_block(bounds.order) {
            if bounds.block_may_match(&self.stats.blocks[idx]) {
                return true;
            }
            self.take_one(bounds.order);
        }
        false
    }

    fn next_block(&self, order: Order) -> Option<usize> {
        if self.remaining.is_empty() {
            return None;
        }
        Some(match order {
            Order::Desc => self.remaining.end - 1,
            Order::Asc => self.remaining.start,
        })
    }

    fn take_one(&mut self, order: Order) {
        match order {
            Order::Desc => self.remaining.end -= 1,
            Order::Asc => self.remaining.start += 1,
        }
    }

    /// Takes up to `window_blocks` consecutive matchable blocks from the walking end.
    fn take_window(&mut self, bounds: &Bounds) -> Range<usize> {
        let mut window = match self.next_block(bounds.order) {
            Some(idx) => idx..idx + 1,
            None => return 0..0,
        };
        self.take_one(bounds.order);
        while window.len() < self.window_blocks {
            let Some(idx) = self.next_block(bounds.order) else {
                break;
            };
            if !bounds.block_may_match(&self.stats.blocks[idx]) {
                break;
            }
            self.take_one(bounds.order);
            match bounds.order {
                Order::Desc => window.start = idx,
                Order::Asc => window.end = idx + 1,
            }
        }
        self.window_blocks = (self.window_blocks * 2).min(MAX_WINDOW_BLOCKS);
        window
    }
}

/// The best `limit + 1` hits seen, as `(key, seq)` with the key of [`Bounds::doc_key`].
#[derive(Debug)]
struct TopHits {
    capacity: usize,
    /// Max-heap on key: the top is the worst kept hit.
    heap: BinaryHeap<(u64, u64)>,
}

impl TopHits {
    fn offer(&mut self, key: u64, seq: u64) {
        if self.heap.len() < self.capacity {
            self.heap.push((key, seq));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && key < worst.0
        {
            *worst = (key, seq);
        }
    }

    /// Whether no document whose key is at least `best_remaining` can enter.
    fn is_final(&self, best_remaining: u64) -> bool {
        self.heap.len() == self.capacity
            && self
                .heap
                .peek()
                .is_some_and(|worst| worst.0 < best_remaining)
    }
}

/// Runs `weight` over `searcher` and returns the page described by `bounds`.
pub(crate) fn top_page(
    searcher: &Searcher,
    weight: &dyn Weight,
    cache: &BlockStatsCache,
    bounds: &Bounds,
) -> Result<Page, SearchError> {
    if bounds.limit == 0 {
        return Ok(Page {
            seqs: Vec::new(),
            next_after: None,
        });
    }
    let mut queue = BinaryHeap::new();
    let mut cursors = Vec::new();
    let mut columns: Vec<Option<Columns>> = vec![None; searcher.segment_readers().len()];
    let mut top = TopHits {
        capacity: bounds.limit.saturating_add(1),
        heap: BinaryHeap::new(),
    };
    for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
        let stats = cache.get(segment)?;
        let scorer = weight.scorer(segment, 1.0)?;
        if scorer.cost() <= bounds.one_pass_max_docs {
            // One pass, but only when its best block can still enter the page: old
            // segments wait in the queue and are skipped once the page is final.
            let best = stats
                .blocks
                .iter()
                .filter(|block| bounds.block_may_match(block))
                .map(|block| bounds.block_key(block))
                .min();
            if let Some(key) = best {
                queue.push(Reverse((key, cursors.len())));
                cursors.push(Cursor {
                    segment_ord,
                    remaining: 0..stats.blocks.len(),
                    stats,
                    window_blocks: 1,
                    whole: Some(scorer),
                });
            }
            continue;
        }
        for run in &stats.runs {
            let mut cursor = Cursor {
                segment_ord,
                stats: Arc::clone(&stats),
                remaining: run.clone(),
                window_blocks: 1,
                whole: None,
            };
            if cursor.skip_unmatchable(bounds) {
                push(&mut queue, &mut cursors, cursor, bounds);
            }
        }
    }
    while let Some(Reverse((best_key, cursor_idx))) = queue.pop() {
        if top.is_final(best_key) {
            break;
        }
        let cursor = &mut cursors[cursor_idx];
        if let Some(scorer) = cursor.whole.take() {
            let segment_ord = cursor.segment_ord;
            let segment = searcher.segment_reader(u32::try_from(segment_ord).unwrap_or(u32::MAX));
            let segment_columns = match &columns[segment_ord] {
                Some(segment_columns) => segment_columns,
                None => columns[segment_ord].insert(Columns::open(segment)?),
            };
            collect(
                scorer,
                segment,
                0..segment.max_doc(),
                segment_columns,
                bounds,
                &mut top,
            );
            continue;
        }
        let window = cursor.take_window(bounds);
        let segment_ord = cursor.segment_ord;
        let docs = cursor.stats.doc_range(&window);
        let more = cursor.skip_unmatchable(bounds);
        let segment = searcher.segment_reader(u32::try_from(segment_ord).unwrap_or(u32::MAX));
        let segment_columns = match &columns[segment_ord] {
            Some(segment_columns) => segment_columns,
            None => columns[segment_ord].insert(Columns::open(segment)?),
        };
        let scorer = weight.scorer(segment, 1.0)?;
        collect(scorer, segment, docs, segment_columns, bounds, &mut top);
        if more {
            let cursor = &cursors[cursor_idx];
            if let Some(idx) = cursor.next_block(bounds.order) {
                let key = bounds.block_key(&cursor.stats.blocks[idx]);
                queue.push(Reverse((key, cursor_idx)));
            }
        }
    }
    let mut hits = top.heap.into_sorted_vec();
    let more_follow = hits.len() > bounds.limit;
    hits.truncate(bounds.limit);
    let seqs: Vec<u64> = hits.into_iter().map(|(_, seq)| seq).collect();
    let next_after = if more_follow {
        seqs.last().copied()
    } else {
        None
    };
    Ok(Page { seqs, next_after })
}

fn push(
    queue: &mut BinaryHeap<Reverse<(u64, usize)>>,
    cursors: &mut Vec<Cursor>,
    cursor: Cursor,
    bounds: &Bounds,
) {
    if let Some(idx) = cursor.next_block(bounds.order) {
        let key = bounds.block_key(&cursor.stats.blocks[idx]);
        queue.push(Reverse((key, cursors.len())));
        cursors.push(cursor);
    }
}

/// The columns a page walk reads, of one segment.
#[derive(Clone)]
struct Columns {
    seq: Column<u64>,
    pos: Column<u64>,
    time: Column<i64>,
}

impl Columns {
    fn open(segment: &SegmentReader) -> Result<Self, SearchError> {
        Ok(Self {
            seq: segment.fast_fields().u64(names::SEQ)?,
            pos: segment.fast_fields().u64(names::POS)?,
            time: segment.fast_fields().i64(names::TIME)?,
        })
    }
}

/// Offers every live match of a fresh `scorer` in `docs` of `segment` whose event time is
/// in range to `top`.
fn collect(
    mut scorer: Box<dyn Scorer>,
    segment: &SegmentReader,
    docs: Range<DocId>,
    columns: &Columns,
    bounds: &Bounds,
    top: &mut TopHits,
) {
    let (first, last) = bounds.time;
    let mut doc = scorer.doc();
    if doc < docs.start {
        doc = scorer.seek(docs.start);
    }
    let alive = segment.alive_bitset();
    while doc != TERMINATED && doc < docs.end {
        if alive.is_none_or(|alive| alive.is_alive(doc))
            && let Some(time) = columns.time.first(doc)
            && (first..=last).contains(&time)
            && let (Some(seq), Some(pos)) = (columns.seq.first(doc), columns.pos.first(doc))
            && bounds.seq_passes(seq)
        {
            top.offer(bounds.doc_key(pos), seq);
        }
        doc = scorer.advance();
    }
}
