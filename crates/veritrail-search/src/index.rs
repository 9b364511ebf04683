//! [`SearchIndex`]: the handle that applies records, commits, searches and counts.
//!
//! # Progress bookkeeping
//!
//! The index knows per tenant how many records it holds: the *pending* counts (what
//! [`SearchIndex::apply`] has added, guarded by the writer lock) and the *committed* counts
//! (what [`SearchIndex::applied`] reports). A commit writes the pending counts as tantivy's
//! commit payload, which tantivy stores in `meta.json` together with the list of segments;
//! `meta.json` is replaced atomically after the segments are synced. So after a crash the
//! counts read on open describe exactly the documents on disk, and the caller re-applies from
//! [`SearchIndex::applied`] onwards.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use std::ops::Bound;
use tantivy::collector::DocSetCollector;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;

use tantivy::query::{
    BooleanQuery, EnableScoring, Occur, Query as TantivyQuery, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};
use veritrail_core::event::TenantId;
use veritrail_core::record::Record;

use crate::blocks::BlockStatsCache;
use crate::count::{CountCollector, Widths};
use crate::page::{Bounds, top_page};
use crate::query::{self, GroupBy, Order, Query, TimeFilter};
use crate::schema::{FORMAT_VERSION, Fields, WORDS_TOKENIZER, names, words_analyzer};
use crate::{Counts, Page, SearchError};

/// How to open a [`SearchIndex`].
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions {
    /// Memory the writer buffers before it writes a segment (at least 15 MB per indexing
    /// thread); default 64 MiB.
    pub writer_memory_bytes: usize,
    /// Indexing threads; default 1. Documents are built on the caller's thread and
    /// indexed on these.
    pub indexing_threads: usize,
    /// Threads that merge segments in the background; default 1.
    pub merge_threads: usize,
    /// A segment holding more documents than this is not merged again (tantivy's
    /// `LogMergePolicy::max_docs_before_merge`); default 250,000. Merges of eight such
    /// segments make the largest, about 2 million documents: that bounds the CPU one merge
    /// takes away from ingest, at the cost of a few more segments to search.
    pub merge_max_segment_docs: usize,
    /// Threads one [`SearchIndex::count`] spreads its segments over; default 1. More cut
    /// the latency of a count over a big tenant, not the throughput of many.
    pub count_threads: usize,
    /// Tuning of [`SearchIndex::search`]: a segment where the query's driving posting list
    /// has at most this many documents is read in one pass rather than walked block by
    /// block (see [`crate::page`]); default 8,192. Results never depend on it.
    pub one_pass_max_docs: u64,
    /// What one query may cost; beyond, it is refused with [`SearchError::TooCostly`].
    pub limits: QueryLimits,
}

/// Bounds on the cost of one query, whoever asks: a query past any of them is refused with
/// [`SearchError::TooCostly`] before (or, for buckets, while) it runs, so that no request
/// can buy unbounded CPU or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Words (after splitting, see [`Query::text`]) in the free text; default 32.
    pub max_words: usize,
    /// Terms one prefix word (`pass*`) or type prefix may expand to in the term
    /// dictionary; default 10,000. The dictionary is shared by all tenants, so a prefix of
    /// one letter can expand to much of it.
    pub max_prefix_terms: usize,
    /// Prefix words in the free text; default 4.
    pub max_prefix_words: usize,
    /// Buckets of a count's histogram at a fixed interval; default 10,000.
    pub max_buckets: usize,
    /// Alternatives of a list filter ([`Query::types`]); default 32.
    pub max_filter_values: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_words: 32,
            max_prefix_terms: 10_000,
            max_prefix_words: 4,
            max_buckets: 10_000,
            max_filter_values: 32,
        }
    }
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            writer_memory_bytes: 64 << 20,
            indexing_threads: 1,
            merge_threads: 1,
            merge_max_segment_docs: 250_000,
            count_threads: 1,
            one_pass_max_docs: 8 * 1024,
            limits: QueryLimits::default(),
        }
    }
}

/// Size of the searchable index (the last commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    /// Documents (records of every tenant).
    pub documents: u64,
    /// Segments; each search visits every one.
    pub segments: usize,
    /// Deleted documents (removed records) their segments still hold until a merge.
    pub deleted: u64,
}

/// What a commit stores in `meta.json` beside the segment list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Payload {
    format: u32,
    /// The `pos` the next applied record gets.
    next_pos: u64,
    /// Records per tenant in the committed documents.
    applied: BTreeMap<TenantId, u64>,
}

/// Records of one tenant to delete from the index: they were removed from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Every record below `below` but those in `except`.
    Below { below: u64, except: Vec<u64> },
    /// These records.
    Seqs(Vec<u64>),
}

/// The writer and what has been added since the last commit; behind one lock.
struct WriterState {
    writer: IndexWriter,
    /// A rollback failed (a full disk, say): tantivy's writer is then unusable (another
    /// rollback would panic), and a new one is opened before the next use.
    broken: bool,
    /// Counts including uncommitted applies.
    pending: BTreeMap<TenantId, u64>,
    next_pos: u64,
    /// Whether anything was added or deleted since the last commit.
    dirty: bool,
    /// Reused buffer for a record's free text.
    text: String,
}

/// The search index of a ledger: one tantivy index shared by every tenant, each query scoped
/// by the tenant term. Cheap to share behind an `Arc`; searches run concurrently with
/// applies and commits (they see the last commit).
pub struct SearchIndex {
    fields: Fields,
    reader: IndexReader,
    /// Owned by apply, commit and clear; they serialize on it.
    writer: Mutex<WriterState>,
    /// The counts of the last commit, published after the reader was reloaded on it.
    committed: RwLock<Payload>,
    blocks: BlockStatsCache,
    analyzer: TextAnalyzer,
    one_pass_max_docs: u64,
    limits: QueryLimits,
    /// To open a new writer when the current one is broken.
    index: Index,
    options: SearchOptions,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("n_tenants", &self.read_committed().applied.len())
            .finish_non_exhaustive()
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if missing.
    ///
    /// # Errors
    ///
    /// [`SearchError::IncompatibleFormat`] for an index of another version or schema,
    /// [`SearchError::Corrupt`] when the commit payload does not parse, and engine or I/O
    /// errors (among them a lock held by another writer on the directory).
    pub fn open(dir: &Path, options: SearchOptions) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = Fields::schema();
        let directory = MmapDirectory::open(dir).map_err(tantivy::TantivyError::from)?;
        let mut index = if Index::exists(&directory).map_err(tantivy::TantivyError::from)? {
            let index = Index::open(directory)?;
            if index.schema() != schema {
                return Err(SearchError::IncompatibleFormat(
                    "the schema differs from this version's".to_owned(),
                ));
            }
            index
        } else {
            Index::create(directory, schema, tantivy::IndexSettings::default())?
        };
        index
            .tokenizers()
            .register(WORDS_TOKENIZER, words_analyzer());
        if options.count_threads > 1 {
            index.set_multithread_executor(options.count_threads)?;
        }
        let metas = index.load_metas()?;
        let committed = match &metas.payload {
            Some(text) => {
                let payload: Payload = serde_json::from_str(text)
                    .map_err(|err| SearchError::Corrupt(format!("commit payload: {err}")))?;
                if payload.format != FORMAT_VERSION {
                    return Err(SearchError::IncompatibleFormat(format!(
                        "format {} (this version reads {FORMAT_VERSION})",
                        payload.format
                    )));
                }
                payload
            }
            None if metas.segments.is_empty() => Payload {
                format: FORMAT_VERSION,
                ..Payload::default()
            },
            None => {
                return Err(SearchError::IncompatibleFormat(
                    "documents without veritrail's commit payload".to_owned(),
                ));
            }
        };
        let writer = open_writer(&index, &options)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let blocks = BlockStatsCache::default();
        blocks.refresh(&reader.searcher())?;
        Ok(Self {
            analyzer: words_analyzer(),
            writer: Mutex::new(WriterState {
                writer,
                broken: false,
                pending: committed.applied.clone(),
                next_pos: committed.next_pos,
                dirty: false,
                text: String::new(),
            }),
            committed: RwLock::new(committed),
            fields,
            reader,
            blocks,
            one_pass_max_docs: options.one_pass_max_docs,
            limits: options.limits,
            index: index.clone(),
            options,
        })
    }

    /// How many records of `tenant` are applied and committed, hence searchable: the next
    /// seq to apply.
    #[must_use]
    pub fn applied(&self, tenant: &TenantId) -> u64 {
        self.read_committed()
            .applied
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }

    /// Every tenant's [`SearchIndex::applied`] count (tenants with none are absent).
    #[must_use]
    pub fn applied_all(&self) -> BTreeMap<TenantId, u64> {
        self.read_committed().applied.clone()
    }

    /// Adds records of any tenants, each tenant's in seq order. A record whose seq is below
    /// its tenant's count so far (committed or not) is skipped, so re-applying is harmless.
    /// Searchable after the next [`SearchIndex::commit`].
    ///
    /// # Errors
    ///
    /// [`SearchError::Gap`] when a record's seq is past the next expected one; nothing of
    /// the call is applied. An engine error drops everything since the last commit.
    pub fn apply(&self, records: &[Record]) -> Result<(), SearchError> {
        self.apply_inner(records, None)
    }

    /// Applies `tenant`'s seqs from its next one up to `end`, of which `records` are the
    /// ones kept (in seq order; removed records left out, so seqs may skip): afterwards
    /// [`SearchIndex::applied`] is `end` once committed.
    ///
    /// # Errors
    ///
    /// As [`SearchIndex::apply`]; a record of another tenant or at or past `end` is a
    /// [`SearchError::Gap`].
    pub fn apply_kept(
        &self,
        tenant: &TenantId,
        records: &[Record],
        end: u64,
    ) -> Result<(), SearchError> {
        self.apply_inner(records, Some((tenant, end)))
    }

    fn apply_inner(
        &self,
        records: &[Record],
        kept_until: Option<(&TenantId, u64)>,
    ) -> Result<(), SearchError> {
        let mut state = self.lock_writer();
        self.mend_writer(&mut state)?;
        let mut expected: HashMap<&TenantId, u64> = HashMap::new();
        for record in records {
            let next = expected
                .entry(record.tenant())
                .or_insert_with(|| state.pending.get(record.tenant()).copied().unwrap_or(0));
            let gap = match kept_until {
                None => record.seq() > *next,
                Some((tenant, end)) => record.tenant() != tenant || record.seq() >= end,
            };
            if gap {
                return Err(SearchError::Gap {
                    tenant: record.tenant().clone(),
                    expected: *next,
                    got: record.seq(),
                });
            }
            if record.seq() >= *next {
                *next = record.seq() + 1;
            }
        }
        let state = &mut *state;
        for record in records {
            let next = match state.pending.get_mut(record.tenant()) {
                Some(next) => next,
                None => state.pending.entry(record.tenant().clone()).or_insert(0),
            };
            if record.seq() < *next {
                continue;
            }
            *next = record.seq() + 1;
            let doc = self
                .fields
                .document(record, state.next_pos, &mut state.text);
            state.next_pos += 1;
            state.dirty = true;
            if let Err(err) = state.writer.add_document(doc) {
                self.reset_to_committed(state);
                return Err(err.into());
            }
        }
        if let Some((tenant, end)) = kept_until {
            let next = state.pending.entry(tenant.clone()).or_insert(0);
            if end > *next {
                *next = end;
                state.dirty = true;
            }
        }
        Ok(())
    }

    /// Deletes `tenant`'s documents of the records `removed` names (removed from the
    /// ledger by retention or erasure); gone from searches and counts after the next
    /// [`SearchIndex::commit`].
    ///
    /// # Errors
    ///
    /// Engine errors; everything since the last commit is then dropped.
    pub fn delete(&self, tenant: &TenantId, removed: &Deletion) -> Result<(), SearchError> {
        let tenant_term: Box<dyn TantivyQuery> = Box::new(TermQuery::new(
            Term::from_field_text(self.fields.tenant, tenant.as_str()),
            IndexRecordOption::Basic,
        ));
        let seq_set = |seqs: &[u64]| -> Box<dyn TantivyQuery> {
            Box::new(TermSetQuery::new(
                seqs.iter()
                    .map(|seq| Term::from_field_u64(self.fields.seq, *seq)),
            ))
        };
        let mut clauses = vec![(Occur::Must, tenant_term)];
        match removed {
            Deletion::Below { below, except } => {
                clauses.push((
                    Occur::Must,
                    Box::new(RangeQuery::new(
                        Bound::Included(Term::from_field_u64(self.fields.seq, 0)),
                        Bound::Excluded(Term::from_field_u64(self.fields.seq, *below)),
                    )),
                ));
                if !except.is_empty() {
                    clauses.push((Occur::MustNot, seq_set(except)));
                }
            }
            Deletion::Seqs(seqs) => clauses.push((Occur::Must, seq_set(seqs))),
        }
        let query = BooleanQuery::new(clauses);
        let mut state = self.lock_writer();
        self.mend_writer(&mut state)?;
        if let Err(err) = state.writer.delete_query(Box::new(query)) {
            self.reset_to_committed(&mut state);
            return Err(err.into());
        }
        state.dirty = true;
        Ok(())
    }

    /// Makes what [`SearchIndex::apply`] added durable and searchable, with the per-tenant
    /// counts in the same atomic commit. Does nothing when nothing was added.
    ///
    /// # Errors
    ///
    /// Engine or I/O errors; everything since the last commit is then dropped (apply it
    /// again from [`SearchIndex::applied`]).
    pub fn commit(&self) -> Result<(), SearchError> {
        let mut state = self.lock_writer();
        self.mend_writer(&mut state)?;
        if !state.dirty {
            return Ok(());
        }
        let payload = Payload {
            format: FORMAT_VERSION,
            next_pos: state.next_pos,
            applied: state.pending.clone(),
        };
        self.commit_and_publish(&mut state, payload)
    }

    /// Commits `payload` with the pending documents and publishes it as the committed
    /// state; on failure, drops everything since the last commit.
    fn commit_and_publish(
        &self,
        state: &mut WriterState,
        payload: Payload,
    ) -> Result<(), SearchError> {
        if let Err(err) = self.commit_payload(state, &payload) {
            self.reset_to_committed(state);
            return Err(err);
        }
        state.dirty = false;
        *self
            .committed
            .write()
            .unwrap_or_else(PoisonError::into_inner) = payload;
        Ok(())
    }

    fn commit_payload(
        &self,
        state: &mut WriterState,
        payload: &Payload,
    ) -> Result<(), SearchError> {
        let text = serde_json::to_string(payload)
            .map_err(|err| SearchError::Corrupt(format!("commit payload: {err}")))?;
        let mut prepared = state.writer.prepare_commit()?;
        prepared.set_payload(&text);
        prepared.commit()?;
        self.reader.reload()?;
        self.blocks.refresh(&self.reader.searcher())?;
        Ok(())
    }

    /// Drops what was added since the last commit (after a failure, when the writer's
    /// state is unknown).
    fn reset_to_committed(&self, state: &mut WriterState) {
        // If the rollback fails too, the writer is dead: the next use opens a new one.
        if state.writer.rollback().is_err() {
            state.broken = true;
        }
        let committed = self.read_committed();
        state.pending = committed.applied.clone();
        state.next_pos = committed.next_pos;
        state.dirty = false;
    }

    /// Removes every document and commits: [`SearchIndex::applied`] is then 0 for every
    /// tenant (for a rebuild from the ledger).
    ///
    /// # Errors
    ///
    /// Engine or I/O errors.
    pub fn clear(&self) -> Result<(), SearchError> {
        let mut state = self.lock_writer();
        self.mend_writer(&mut state)?;
        // `delete_all_documents` drops committed segments only; documents still queued for
        // the indexing threads would land in the next commit, so roll those back first.
        if let Err(err) = state.writer.rollback() {
            state.broken = true;
            return Err(err.into());
        }
        state.writer.delete_all_documents()?;
        state.pending.clear();
        state.next_pos = 0;
        let payload = Payload {
            format: FORMAT_VERSION,
            ..Payload::default()
        };
        self.commit_and_publish(&mut state, payload)
    }

    /// One page of the seqs of `tenant`'s records matching `query`, ordered by seq. With
    /// `after`, only seqs greater (for [`Order::Asc`]) or smaller ([`Order::Desc`]) than it:
    /// pass [`Page::next_after`] to get the next page. Seqs only grow, so paging this way
    /// neither repeats nor skips a record while new ones are committed.
    ///
    /// # Errors
    ///
    /// Engine errors.
    pub fn search(
        &self,
        tenant: &TenantId,
        query: &Query,
        order: Order,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Page, SearchError> {
        let empty = Page {
            seqs: Vec::new(),
            next_after: None,
        };
        let Some(time) = query::time_range(query) else {
            return Ok(empty);
        };
        let searcher = self.reader.searcher();
        let mut analyzer = self.analyzer.clone();
        let tantivy_query = query::build(
            &self.fields,
            &mut analyzer,
            &searcher,
            tenant,
            query,
            TimeFilter::ByCaller,
            &self.limits,
        )?;
        let weight = tantivy_query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        let after_pos = match after {
            Some(seq) => self.pos_of(&searcher, tenant, seq)?,
            None => None,
        };
        let bounds = Bounds {
            order,
            limit,
            after_seq: after,
            after_pos,
            time,
            one_pass_max_docs: self.one_pass_max_docs,
        };
        top_page(&searcher, weight.as_ref(), &self.blocks, &bounds)
    }

    /// How many of `tenant`'s searchable records there are per category and type, as
    /// `(category, type, count)` sorted by category then type (`category` is `None` for
    /// records without one). Read from term document frequencies, so it costs a few term
    /// dictionary lookups per segment whatever the tenant's size.
    ///
    /// # Errors
    ///
    /// Engine errors.
    pub fn catalog_counts(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(Option<String>, String, u64)>, SearchError> {
        let searcher = self.reader.searcher();
        let mut prefix = String::with_capacity(tenant.as_str().len() + 1);
        prefix.push_str(tenant.as_str());
        prefix.push('\0');
        // Every key of the tenant: `tenant NUL` up to (not including) `tenant \x01`.
        let mut end = prefix.clone().into_bytes();
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.catalog_key)?;
            let alive = segment.alive_bitset();
            let mut stream = inverted
                .terms()
                .range()
                .ge(prefix.as_bytes())
                .lt(&end)
                .into_stream()?;
            while stream.advance() {
                let n = match alive {
                    // Nothing deleted in the segment: the term's document frequency.
                    None => u64::from(stream.value().doc_freq),
                    // Deleted documents (removed records) stay in the frequency until the
                    // segment is merged: count the live ones.
                    Some(alive) => {
                        let mut postings = inverted.read_postings_from_terminfo(
                            stream.value(),
                            tantivy::schema::IndexRecordOption::Basic,
                        )?;
                        let mut n = 0;
                        let mut doc = tantivy::DocSet::doc(&postings);
                        while doc != tantivy::TERMINATED {
                            n += u64::from(alive.is_alive(doc));
                            doc = tantivy::DocSet::advance(&mut postings);
                        }
                        n
                    }
                };
                if n > 0 {
                    *counts.entry(stream.key().to_vec()).or_default() += n;
                }
            }
        }
        Ok(counts
            .into_iter()
            .filter_map(|(key, count)| {
                let key = String::from_utf8(key).ok()?;
                let rest = key.strip_prefix(prefix.as_str())?;
                let (category, event_type) = rest.split_once('\0')?;
                let category = (!category.is_empty()).then(|| category.to_owned());
                Some((category, event_type.to_owned(), count))
            })
            .collect())
    }

    /// Counts `tenant`'s records matching `query`: the total, per group with `group_by`,
    /// and per time bucket of `interval_nanos` (aligned to multiples of it since the Unix
    /// epoch) on the event time.
    ///
    /// # Errors
    ///
    /// [`SearchError::InvalidQuery`] for an interval that is not positive; engine errors.
    pub fn count(
        &self,
        tenant: &TenantId,
        query: &Query,
        group_by: Option<GroupBy>,
        interval_nanos: Option<i64>,
    ) -> Result<Counts, SearchError> {
        let widths = interval_nanos
            .map(|width| Widths::fixed(width, self.limits.max_buckets))
            .transpose()
            .map_err(SearchError::InvalidQuery)?;
        Ok(self.count_with(tenant, query, group_by, widths)?.1)
    }

    /// The histogram of the matches of `query` at the narrowest of `widths` (in nanos;
    /// ascending, each a multiple of the one before) at which their buckets span at most
    /// `max_buckets`, in one pass: counting starts at the first width and moves to a wider
    /// one, summing its buckets, whenever the matches reach further. Returns the width
    /// used and the counts (bucket starts are multiples of it since the Unix epoch).
    ///
    /// # Errors
    ///
    /// [`SearchError::InvalidQuery`] for widths that are not as above; index errors.
    pub fn histogram(
        &self,
        tenant: &TenantId,
        query: &Query,
        widths: &[i64],
        max_buckets: usize,
    ) -> Result<(i64, Counts), SearchError> {
        let widths =
            Widths::ladder(widths.to_vec(), max_buckets).map_err(SearchError::InvalidQuery)?;
        self.count_with(tenant, query, None, Some(widths))
    }

    fn count_with(
        &self,
        tenant: &TenantId,
        query: &Query,
        group_by: Option<GroupBy>,
        widths: Option<Widths>,
    ) -> Result<(i64, Counts), SearchError> {
        let searcher = self.reader.searcher();
        let mut analyzer = self.analyzer.clone();
        let tantivy_query = query::build(
            &self.fields,
            &mut analyzer,
            &searcher,
            tenant,
            query,
            TimeFilter::InQuery,
            &self.limits,
        )?;
        let collector = CountCollector { group_by, widths };
        let merged = searcher.search(tantivy_query.as_ref(), &collector)?;
        if merged.overflowed() {
            return Err(SearchError::TooCostly(format!(
                "the histogram would have more than {} buckets; give a narrower from/to or a wider interval",
                self.limits.max_buckets
            )));
        }
        Ok(collector.finish(merged))
    }

    /// Size of the searchable index, for operators and benchmarks.
    #[must_use]
    pub fn stats(&self) -> IndexStats {
        let searcher = self.reader.searcher();
        IndexStats {
            documents: searcher.num_docs(),
            segments: searcher.segment_readers().len(),
            deleted: searcher
                .segment_readers()
                .iter()
                .map(|segment| u64::from(segment.num_deleted_docs()))
                .sum(),
        }
    }

    /// The `pos` of `tenant`'s record `seq`, if the searched index holds it.
    fn pos_of(
        &self,
        searcher: &tantivy::Searcher,
        tenant: &TenantId,
        seq: u64,
    ) -> Result<Option<u64>, SearchError> {
        let lookup = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.tenant, tenant.as_str()),
                    IndexRecordOption::Basic,
                )),
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(self.fields.seq, seq),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let found = searcher.search(&lookup, &DocSetCollector)?;
        for address in found {
            let segment = searcher.segment_reader(address.segment_ord);
            let pos = segment.fast_fields().u64(names::POS)?.first(address.doc_id);
            if pos.is_some() {
                return Ok(pos);
            }
        }
        Ok(None)
    }

    /// Opens a new writer in place of a broken one (its failed rollback released the
    /// directory lock): what was added since the last commit is gone already.
    fn mend_writer(&self, state: &mut WriterState) -> Result<(), SearchError> {
        if state.broken {
            state.writer = open_writer(&self.index, &self.options)?;
            state.broken = false;
        }
        Ok(())
    }

    fn lock_writer(&self) -> MutexGuard<'_, WriterState> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_committed(&self) -> std::sync::RwLockReadGuard<'_, Payload> {
        self.committed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A writer of `index` as `options` say, with veritrail's merge policy.
fn open_writer(index: &Index, options: &SearchOptions) -> tantivy::Result<IndexWriter> {
    let n_threads = options.indexing_threads.max(1);
    let writer = index.writer_with_options(
        IndexWriterOptions::builder()
            .memory_budget_per_thread(options.writer_memory_bytes / n_threads)
            .num_worker_threads(n_threads)
            .num_merge_threads(options.merge_threads.max(1))
            .build(),
    )?;
    let mut merge_policy = tantivy::indexer::LogMergePolicy::default();
    merge_policy.set_max_docs_before_merge(options.merge_max_segment_docs);
    // A segment most of whose documents were deleted (removed records) is merged, which
    // gives the disk back and keeps the counts, which must skip deleted documents, cheap.
    merge_policy.set_del_docs_ratio_before_merge(0.5);
    writer.set_merge_policy(Box::new(merge_policy));
    Ok(writer)
}
