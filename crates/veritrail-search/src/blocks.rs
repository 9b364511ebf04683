//! Per-segment block statistics (zone maps) that let a first page stop early.
//!
//! A segment's documents are cut into blocks of [`BLOCK_DOCS`] doc ids. For each block we
//! keep the smallest and largest `pos` (apply order, see `crate::schema`) and event time of
//! its documents. Consecutive blocks whose `pos` ranges strictly increase form a *run*: every
//! document of a later block of the run was applied after every document of an earlier one.
//! A segment written by one indexing thread is one run; a merged segment is a few runs, one
//! per source segment (plus one-block runs where two sources meet inside a block).
//!
//! Segments are immutable, so statistics are computed once per segment (reading two
//! columns) and cached by segment id; [`BlockStatsCache::refresh`] drops the entries of
//! segments no longer searched. Deleted documents stay in the bounds, which keeps them valid
//! (only wider).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use tantivy::columnar::Cardinality;
use tantivy::index::SegmentId;
use tantivy::{DocId, Searcher, SegmentReader};

use crate::SearchError;
use crate::schema::names;

/// Documents per block.
pub(crate) const BLOCK_DOCS: u32 = 1024;

/// Bounds of one block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    pub(crate) min_pos: u64,
    pub(crate) max_pos: u64,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
}

/// The blocks and runs of one segment.
#[derive(Debug)]
pub(crate) struct SegmentStats {
    pub(crate) blocks: Vec<Block>,
    /// Block index ranges; together they cover every block once, in order.
    pub(crate) runs: Vec<Range<usize>>,
    pub(crate) max_doc: DocId,
}

impl SegmentStats {
    /// Reads the `pos` and `time` columns of `segment`.
    fn compute(segment: &SegmentReader) -> Result<Self, SearchError> {
        let max_doc = segment.max_doc();
        let pos_column = segment.fast_fields().u64(names::POS)?;
        let time_column = segment.fast_fields().i64(names::TIME)?;
        let mut blocks = Vec::with_capacity(max_doc.div_ceil(BLOCK_DOCS) as usize);
        let dense = pos_column.get_cardinality() == Cardinality::Full
            && time_column.get_cardinality() == Cardinality::Full;
        let mut positions = Vec::with_capacity(BLOCK_DOCS as usize);
        let mut times = Vec::with_capacity(BLOCK_DOCS as usize);
        let mut start = 0;
        while start < max_doc {
            let end = max_doc.min(start + BLOCK_DOCS);
            positions.clear();
            times.clear();
            if dense {
                let len = (end - start) as usize;
                positions.resize(len, 0);
                times.resize(len, 0);
                pos_column
                    .values
                    .get_range(u64::from(start), &mut positions);
                time_column.values.get_range(u64::from(start), &mut times);
            } else {
                // Every document has both values, so the columns are dense; this path only
                // keeps the bounds right for an index that somehow is not.
                for doc in start..end {
                    positions.extend(pos_column.values_for_doc(doc));
                    times.extend(time_column.values_for_doc(doc));
                }
            }
            blocks.push(Block {
                min_pos: positions.iter().copied().min().unwrap_or(u64::MAX),
                max_pos: positions.iter().copied().max().unwrap_or(0),
                min_time: times.iter().copied().min().unwrap_or(i64::MAX),
                max_time: times.iter().copied().max().unwrap_or(i64::MIN),
            });
            start = end;
        }
        let mut runs = Vec::new();
        let mut run_start = 0;
        for idx in 1..blocks.len() {
            if blocks[idx].min_pos <= blocks[idx - 1].max_pos {
                runs.push(run_start..idx);
                run_start = idx;
            }
        }
        if !blocks.is_empty() {
            runs.push(run_start..blocks.len());
        }
        Ok(Self {
            blocks,
            runs,
            max_doc,
        })
    }

    /// The doc ids of blocks `blocks`.
    pub(crate) fn doc_range(&self, blocks: &Range<usize>) -> Range<DocId> {
        let to_doc = |block: usize| {
            u32::try_from(block)
                .unwrap_or(u32::MAX)
                .saturating_mul(BLOCK_DOCS)
                .min(self.max_doc)
        };
        to_doc(blocks.start)..to_doc(blocks.end)
    }
}

/// [`SegmentStats`] by segment id; shared by every search.
#[derive(Debug, Default)]
pub(crate) struct BlockStatsCache {
    /// Guards only the map; computing happens outside the lock (two searches may compute
    /// the same segment once each, which is harmless).
    by_segment: Mutex<HashMap<SegmentId, Arc<SegmentStats>>>,
}

impl BlockStatsCache {
    /// The statistics of `segment`, computed on first use.
    pub(crate) fn get(&self, segment: &SegmentReader) -> Result<Arc<SegmentStats>, SearchError> {
        let id = segment.segment_id();
        if let Some(stats) = self.lock().get(&id) {
            return Ok(Arc::clone(stats));
        }
        let stats = Arc::new(SegmentStats::compute(segment)?);
        self.lock().insert(id, Arc::clone(&stats));
        Ok(stats)
    }

    /// Computes what `searcher` lacks and forgets segments it no longer has.
    pub(crate) fn refresh(&self, searcher: &Searcher) -> Result<(), SearchError> {
        let live: HashSet<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .collect();
        self.lock().retain(|id, _| live.contains(id));
        for segment in searcher.segment_readers() {
            self.get(segment)?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<SegmentStats>>> {
        self.by_segment
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
