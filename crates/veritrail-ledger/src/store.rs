//! The ledger store: the one trait every storage backend implements.
//!
//! The sequencer inside [`Ledger`](crate::Ledger) is the only writer. It decides sequence numbers,
//! computes leaf and node hashes and signs checkpoints; a store only keeps what it is
//! given, durably and atomically, and serves it back. That split keeps every backend small
//! and lets one conformance suite (`conformance`, feature `testing`) hold them all to the
//! same contract: the embedded [`EmbeddedStore`](crate::EmbeddedStore), the in-memory
//! `MemoryStore` of the tests (feature `testing`) and, later, PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use veritrail_core::event::{EventId, TenantId};
use veritrail_core::merkle::{Hash, NodeId};

/// One group commit: appends to any number of tenants' logs, made durable together.
#[derive(Debug, Default)]
pub struct CommitBatch {
    pub tenants: Vec<TenantAppend>,
}

/// The part of a [`CommitBatch`] that extends one tenant's log.
#[derive(Debug)]
pub struct TenantAppend {
    pub tenant: TenantId,
    /// Size of the tenant's log before this append; the first record gets this seq.
    pub first_seq: u64,
    pub records: Vec<AppendedRecord>,
    /// The Merkle nodes this append completes, in the order they complete (post-order:
    /// each leaf, then the parents it completes). Exactly what `Frontier::append` reports.
    pub nodes: Vec<(NodeId, Hash)>,
    /// The signed checkpoint (a signed note) of the log after this append.
    pub checkpoint: Arc<str>,
    /// Records this append removes, each reported by one of its records.
    pub removals: Vec<Removal>,
}

/// Records taken out of a tenant's log by a retention run or an erasure. The removal is
/// reported by a record of the same append (`by_seq`), so the log says who removed what
/// and why, and the removed records' leaf hashes stay in the tree: every proof of a kept
/// record, and every checkpoint, still verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The record that reports the removal; it is part of the same append.
    pub by_seq: u64,
    pub scope: RemovalScope,
}

/// What a [`Removal`] takes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovalScope {
    /// Every record below `below` but those in `except` (ascending, each below `below`):
    /// the oldest part of the log (retention), less what a legal hold keeps. Records an
    /// earlier cut kept are removed now unless `except` names them again.
    Below { below: u64, except: Vec<u64> },
    /// These records, ascending and without repeats (an erasure).
    Seqs(Vec<u64>),
}

/// Most seqs one removal names (its `except` or `Seqs` list).
pub const MAX_REMOVAL_SEQS: usize = 1 << 20;

fn ascending_below(seqs: &[u64], bound: u64) -> bool {
    seqs.windows(2).all(|w| w[0] < w[1]) && seqs.last().is_none_or(|last| *last < bound)
}

impl Removal {
    /// Whether the removal is well formed for the append of `first_seq..end`: reported by a
    /// record of the append, removing only records before that record.
    pub fn check(&self, first_seq: u64, end: u64) -> Result<(), String> {
        if !(first_seq..end).contains(&self.by_seq) {
            return Err(format!(
                "a removal reported by seq {} outside its append {first_seq}..{end}",
                self.by_seq
            ));
        }
        let (seqs, bound) = match &self.scope {
            RemovalScope::Below { below, except } => {
                if *below > self.by_seq {
                    return Err(format!(
                        "a removal below seq {below} reported by seq {}",
                        self.by_seq
                    ));
                }
                (except, *below)
            }
            RemovalScope::Seqs(seqs) => (seqs, self.by_seq),
        };
        if seqs.len() > MAX_REMOVAL_SEQS || !ascending_below(seqs, bound) {
            return Err(format!(
                "a removal reported by seq {} lists seqs not ascending, repeated, out of \
                 range or more than {MAX_REMOVAL_SEQS}",
                self.by_seq
            ));
        }
        Ok(())
    }

    /// The removal's scope as stored (journal entry and index, `docs/format.md`): `1`, the
    /// bound, and the kept seqs; or `2` and the removed seqs. Lists are a u32 count and
    /// the u64 seqs.
    pub fn encode_scope(&self, out: &mut Vec<u8>) {
        let seqs = match &self.scope {
            RemovalScope::Below { below, except } => {
                out.push(1);
                out.extend_from_slice(&below.to_be_bytes());
                except
            }
            RemovalScope::Seqs(seqs) => {
                out.push(2);
                seqs
            }
        };
        let count = u32::try_from(seqs.len()).expect("removals are bounded");
        out.extend_from_slice(&count.to_be_bytes());
        for seq in seqs {
            out.extend_from_slice(&seq.to_be_bytes());
        }
    }

    /// Reads what [`Removal::encode_scope`] wrote, exactly, and checks it.
    pub fn decode_scope(by_seq: u64, bytes: &[u8]) -> Result<Removal, String> {
        let cut_short = || "a removal's scope is cut short".to_owned();
        let (&tag, mut rest) = bytes.split_first().ok_or_else(cut_short)?;
        let take_u64 = |rest: &mut &[u8]| -> Result<u64, String> {
            let (value, tail) = rest.split_at_checked(8).ok_or_else(cut_short)?;
            *rest = tail;
            Ok(u64::from_be_bytes(value.try_into().expect("8 bytes")))
        };
        let below = match tag {
            1 => Some(take_u64(&mut rest)?),
            2 => None,
            _ => return Err("a removal's scope is neither 1 (below) nor 2 (seqs)".into()),
        };
        let (count, mut rest) = rest.split_at_checked(4).ok_or_else(cut_short)?;
        let count = u32::from_be_bytes(count.try_into().expect("4 bytes")) as usize;
        if rest.len() != 8 * count {
            return Err("a removal's seq list has the wrong length".into());
        }
        let seqs = (0..count)
            .map(|_| take_u64(&mut rest))
            .collect::<Result<Vec<_>, _>>()?;
        let scope = match below {
            Some(below) => RemovalScope::Below {
                below,
                except: seqs,
            },
            None => RemovalScope::Seqs(seqs),
        };
        let removal = Removal { by_seq, scope };
        removal.check(by_seq, by_seq + 1)?;
        Ok(removal)
    }
}

/// Which records of one log are removed, and by which record: built from its removals in
/// the order they were committed.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// Prefix cuts, ascending by `below`: `(below, by_seq, except)`.
    cuts: Vec<(u64, u64, BTreeSet<u64>)>,
    /// Erased records: seq -> by_seq.
    erased: BTreeMap<u64, u64>,
    count: u64,
    removals: Vec<Removal>,
}

impl Removed {
    pub fn add(&mut self, removal: &Removal) {
        self.removals.push(removal.clone());
        match &removal.scope {
            RemovalScope::Below { below, except } => {
                let (old_below, old_kept) = self
                    .cuts
                    .last()
                    .map_or((0, BTreeSet::new()), |(below, _, kept)| {
                        (*below, kept.clone())
                    });
                // A cut keeps only what is still there: never a record removed before.
                let except: BTreeSet<u64> = except
                    .iter()
                    .copied()
                    .filter(|seq| *seq >= old_below || old_kept.contains(seq))
                    .collect();
                let below = (*below).max(old_below);
                // Records kept before, below the new cut, that it does not keep again...
                let now_removed = old_kept
                    .iter()
                    .filter(|seq| !except.contains(seq) && !self.erased.contains_key(seq))
                    .count() as u64;
                // ...and the new stretch, less what it keeps and what was erased already.
                let stretch = below - old_below;
                let kept_in_stretch = except.range(old_below..below).count() as u64;
                let erased_in_stretch = self
                    .erased
                    .range(old_below..below)
                    .filter(|(seq, _)| !except.contains(seq))
                    .count() as u64;
                self.count += now_removed + stretch - kept_in_stretch - erased_in_stretch;
                self.cuts.push((below, removal.by_seq, except));
            }
            RemovalScope::Seqs(seqs) => {
                for &seq in seqs {
                    if self.by(seq).is_none() {
                        self.erased.insert(seq, removal.by_seq);
                        self.count += 1;
                    }
                }
            }
        }
    }

    /// Every record below this seq is removed, but those the last cut kept.
    pub fn below(&self) -> u64 {
        self.cuts.last().map_or(0, |(below, _, _)| *below)
    }

    /// The records below [`Removed::below`] that the last cut kept (a legal hold's).
    pub fn kept_below(&self) -> impl Iterator<Item = u64> + '_ {
        self.cuts
            .last()
            .into_iter()
            .flat_map(|(_, _, kept)| kept.iter().copied())
    }

    /// The seq of the record that reports the removal of `seq`, if it is removed.
    pub fn by(&self, seq: u64) -> Option<u64> {
        if let Some(by) = self.erased.get(&seq) {
            return Some(*by);
        }
        // The first cut above `seq` that did not keep it removed it; cuts after it cover it
        // too, and only the last one's kept records are kept now.
        let first = self.cuts.partition_point(|(below, _, _)| *below <= seq);
        let kept_now = self
            .cuts
            .last()
            .is_some_and(|(below, _, kept)| seq < *below && kept.contains(&seq));
        if kept_now {
            return None;
        }
        self.cuts[first..]
            .iter()
            .find(|(_, _, kept)| !kept.contains(&seq))
            .map(|(_, by, _)| *by)
    }

    /// The first seq at or after `seq` that is not removed.
    pub fn next_kept(&self, mut seq: u64) -> u64 {
        let below = self.below();
        if seq < below {
            let kept = self.cuts.last().map(|(_, _, kept)| kept);
            match kept.and_then(|kept| {
                kept.range(seq..)
                    .find(|kept| !self.erased.contains_key(kept))
                    .copied()
            }) {
                Some(kept) => return kept,
                None => seq = below,
            }
        }
        while self.erased.contains_key(&seq) {
            seq += 1;
        }
        seq
    }

    /// The first seq at or after `seq` that is removed (`u64::MAX` if none is).
    pub fn next_removed(&self, mut seq: u64) -> u64 {
        let below = self.below();
        if seq < below {
            let kept = self.cuts.last().map(|(_, _, kept)| kept);
            while seq < below
                && kept.is_some_and(|kept| kept.contains(&seq))
                && !self.erased.contains_key(&seq)
            {
                seq += 1;
            }
            if seq < below {
                return seq;
            }
        }
        self.erased
            .range(seq..)
            .next()
            .map_or(u64::MAX, |(erased, _)| *erased)
    }

    /// Whether any record was removed by an erasure.
    pub fn has_erasures(&self) -> bool {
        !self.erased.is_empty()
    }

    /// How many of `seqs` were removed by an erasure.
    pub fn erased_in(&self, seqs: std::ops::Range<u64>) -> u64 {
        self.erased.range(seqs).count() as u64
    }

    /// Whether `seq` was removed by an erasure (not by a retention cut alone).
    pub fn is_erased(&self, seq: u64) -> bool {
        self.erased.contains_key(&seq)
    }

    /// How many records are removed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Every removal, in the order they were committed (`by_seq` ascending).
    pub fn removals(&self) -> &[Removal] {
        &self.removals
    }
}

/// What one [`LedgerStore::compact`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Storage units (journal segments) rewritten.
    pub rewritten: u64,
    /// Record bodies taken out.
    pub records: u64,
    /// Of the rewritten units, those left empty and deleted.
    pub deleted: u64,
    /// Bytes the rewritten units took before, and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// A record as the sequencer hands it to the store.
#[derive(Debug)]
pub struct AppendedRecord {
    /// Canonical record bytes (`veritrail_core::record`), the leaf input.
    pub bytes: Vec<u8>,
    /// The client's idempotency id, indexed so that a repeat is found.
    pub event_id: Option<EventId>,
}

/// What a store knows about one tenant's log when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantState {
    pub tenant: TenantId,
    pub size: u64,
    /// Hashes of `Frontier::node_ids(size)`, largest subtree first.
    pub frontier: Vec<Hash>,
    /// The latest signed checkpoint; `None` only for a log that never committed.
    pub checkpoint: Option<Arc<str>>,
    /// Every removal committed to the log, in `by_seq` order.
    pub removals: Vec<Removal>,
}

/// Errors of a store. `Unavailable` is retryable, the others are not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O failure (disk full, permission, device gone). The operation may be retried.
    #[error("ledger storage unavailable: {0}")]
    Unavailable(#[from] std::io::Error),
    /// A commit that does not extend the log where the store says it ends: a second
    /// writer, or a sequencer whose state is stale. Nothing was written.
    #[error("append to tenant {tenant} at seq {first_seq} but its log has {size} records")]
    Conflict {
        tenant: TenantId,
        first_seq: u64,
        size: u64,
    },
    /// Stored data fails its checksums or does not decode: the store refuses to guess.
    #[error("ledger data is corrupt: {0}")]
    Corrupt(String),
    /// A read beyond the end of a log, or of an unknown tenant.
    #[error("{0}")]
    NotFound(String),
    /// A fault injected by a test (`MemoryStore`, feature `testing`, only; no shipped store
    /// returns it). The variant exists without the feature too, so that a `match` on
    /// `StoreError` compiles the same with and without it.
    #[error("injected fault")]
    Injected,
}

/// Storage of the per-tenant logs.
///
/// # Contract
///
/// - **Durable on return.** When [`commit`](Self::commit) returns `Ok`, every record, node,
///   event id and checkpoint of the batch survives a crash or power loss.
/// - **Atomic.** After a crash, or a `commit` that returned `Err`, either the whole batch is
///   stored or none of it is. A failed `commit` may have persisted the batch ("fail but
///   persist"): the caller must [`load`](Self::load) again before it commits anything else.
/// - **Append-only.** `commit` only extends logs: a `TenantAppend` whose `first_seq` is not
///   the log's current size is refused with [`StoreError::Conflict`] and nothing of the
///   batch is written. No method rewrites or deletes a record.
/// - **Removals.** A `TenantAppend` may carry removals, each reported by one of its own
///   records: they are stored with the append (durable and atomic with it) and `load`
///   returns them in the order committed. A removal changes no node: every checkpoint and
///   every proof verifies as before. A malformed removal ([`Removal::check`]) refuses the
///   whole commit. `read_records` may still return a removed record's bytes: the
///   [`Ledger`](crate::Ledger) never hands them out.
/// - **Compaction.** [`LedgerStore::compact`] may take removed records' bodies out of
///   storage (reading one is then an error), and must leave every kept record, every node
///   (removed leaves included) and every removal as they were, through restarts and a
///   crash at any point of it; commits and reads go on meanwhile. The one exception: the
///   removed records before the log's first kept one (its removed *prefix*) may keep only
///   the hashes of the complete subtrees they form, which is all that proofs from the
///   first kept record's tree on need; their other nodes may then read as anything.
/// - **Read your commits.** Once `commit` returned `Ok`, every read method sees the batch.
///   Reads never see part of a batch that is still being committed.
/// - Reads are served concurrently with a commit in progress (`&self` everywhere).
///
/// The conformance suite (`conformance::run_all`, feature `testing`) checks these rules and
/// the methods' promises below, one test named after each; its docs say which rules it
/// cannot reach through a restart and where those are tested.
pub trait LedgerStore: Send + Sync + std::fmt::Debug + 'static {
    /// Every tenant log with its size, frontier and latest checkpoint.
    fn load(&self) -> Result<Vec<TenantState>, StoreError>;

    /// Make the batch durable; see the contract above.
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError>;

    /// The seq of each committed event id, `None` where the tenant has no such id.
    fn find_event_ids(
        &self,
        tenant: &TenantId,
        ids: &[&EventId],
    ) -> Result<Vec<Option<u64>>, StoreError>;

    /// Up to `limit` canonical records of `tenant` starting at `from_seq`, in seq order.
    /// Fewer (or none) when the log ends earlier. A removed record whose body compaction
    /// took out cannot be read (an error): callers skip removed records.
    fn read_records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Hashes of complete nodes of `tenant`'s tree, in the order asked.
    /// `NotFound` for a node that is not complete yet. Under a removed prefix only its
    /// subtrees' hashes are sure to be kept (see the contract above).
    fn read_nodes(&self, tenant: &TenantId, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;

    /// The committed size of `tenant`'s log (0 for an unknown tenant).
    fn size(&self, tenant: &TenantId) -> Result<u64, StoreError>;

    /// The latest signed checkpoint of `tenant`, `None` for an unknown tenant.
    fn checkpoint(&self, tenant: &TenantId) -> Result<Option<Arc<str>>, StoreError>;

    /// For a store kept in files the offline verifier reads: its directory, and where its
    /// journal ends and how large each log is, taken between two commits, so that a scrub
    /// can verify the files while the store runs (`verify::verify_live_ledger_dir`).
    /// `None` for a store that has no such files.
    fn live_bounds(&self) -> Option<(std::path::PathBuf, crate::verify::LiveBounds)> {
        None
    }

    /// Takes the bodies of removed records out of storage, keeping their leaf hashes (or,
    /// for a removed prefix, its subtree hashes), so every proof of a kept record still
    /// verifies, and the removals that name them; see the store's docs for when it is worth
    /// it. Reads, commits and proofs go on meanwhile; a crash at any point
    /// loses nothing kept and brings nothing removed back.
    fn compact(&self) -> Result<CompactStats, StoreError> {
        Ok(CompactStats::default())
    }

    /// Writes `tenant`'s derived data (record offsets, node hashes) again from the source
    /// of truth, for every record below its size in `bounds`, and makes it durable: the
    /// repair of derived data a scrub found damaged. Runs beside commits and reads.
    fn rewrite_derived(
        &self,
        tenant: &TenantId,
        bounds: &crate::verify::LiveBounds,
    ) -> Result<(), StoreError> {
        let _ = (tenant, bounds);
        Err(StoreError::Unavailable(std::io::Error::other(
            "this store has no derived files to rewrite",
        )))
    }
}

/// Number of complete nodes in a tree of `size` leaves: each leaf, plus one parent per
/// carry when counting to `size` in binary.
pub fn node_count(size: u64) -> u64 {
    2 * size - u64::from(size.count_ones())
}

/// Position of a complete node in post-order, the order in which nodes complete: the nodes
/// completed before leaf `m - 1`'s append, plus the node's level within that append.
pub fn postorder_index(node: NodeId) -> u64 {
    let m = (node.index + 1) << node.level;
    node_count(m - 1) + u64::from(node.level)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(by_seq: u64, below: u64, except: &[u64]) -> Removal {
        Removal {
            by_seq,
            scope: RemovalScope::Below {
                below,
                except: except.to_vec(),
            },
        }
    }

    fn erase(by_seq: u64, seqs: &[u64]) -> Removal {
        Removal {
            by_seq,
            scope: RemovalScope::Seqs(seqs.to_vec()),
        }
    }

    /// The removed records, one by one, from `Removed::by`.
    fn removed_by(removed: &Removed, size: u64) -> Vec<(u64, u64)> {
        (0..size)
            .filter_map(|seq| removed.by(seq).map(|by| (seq, by)))
            .collect()
    }

    #[test]
    fn cuts_erasures_and_kept_records_say_who_removed_each_record() {
        let mut removed = Removed::default();
        removed.add(&erase(20, &[3, 12]));
        removed.add(&cut(30, 10, &[5, 6]));
        assert_eq!(removed.below(), 10);
        assert_eq!(removed.kept_below().collect::<Vec<_>>(), vec![5, 6]);
        let mut expected: Vec<(u64, u64)> = (0..10)
            .filter(|seq| ![3, 5, 6].contains(seq))
            .map(|seq| (seq, 30))
            .collect();
        expected.insert(3, (3, 20));
        expected.push((12, 20));
        assert_eq!(removed_by(&removed, 40), expected);
        assert_eq!(removed.count(), expected.len() as u64);

        // The hold on 6 is released: the next cut takes it, 5 stays kept.
        removed.add(&cut(40, 15, &[5, 14]));
        assert_eq!(removed.by(6), Some(40));
        assert_eq!(removed.by(5), None);
        assert_eq!(removed.by(14), None);
        assert_eq!(removed.by(13), Some(40));
        assert_eq!(removed.by(12), Some(20), "erased before the cut");
        assert_eq!(removed.by(2), Some(30), "the first cut removed it");
        assert_eq!(removed.count(), removed_by(&removed, 50).len() as u64);

        // A cut may not keep what an earlier one removed, and erasing twice counts once.
        removed.add(&cut(41, 15, &[2, 5]));
        assert_eq!(removed.by(2), Some(30));
        assert_eq!(removed.by(14), Some(41));
        removed.add(&erase(42, &[5, 12, 20]));
        assert_eq!(removed.by(5), Some(42));
        assert_eq!(removed.count(), removed_by(&removed, 50).len() as u64);
        assert_eq!(removed.removals().len(), 5);
    }

    /// `next_kept` and `next_removed` agree with `by`, seq by seq, after every removal.
    #[test]
    fn the_next_kept_and_next_removed_seqs_agree_with_by() {
        let mut removed = Removed::default();
        let check = |removed: &Removed| {
            for seq in 0..60 {
                let kept = (seq..)
                    .find(|s| removed.by(*s).is_none())
                    .expect("a kept seq");
                assert_eq!(removed.next_kept(seq), kept, "next kept from {seq}");
                let gone = (seq..70).find(|s| removed.by(*s).is_some());
                assert_eq!(
                    removed.next_removed(seq),
                    gone.unwrap_or(u64::MAX),
                    "next removed from {seq}"
                );
            }
        };
        check(&removed);
        for removal in [
            erase(20, &[3, 12, 13, 19]),
            cut(30, 10, &[5, 6, 9]),
            erase(31, &[6, 25]),
            cut(40, 15, &[5, 6, 14]),
            cut(50, 45, &[]),
        ] {
            removed.add(&removal);
            check(&removed);
        }
    }

    #[test]
    fn a_removal_scope_reads_back_exactly_and_bad_bytes_are_refused() {
        for removal in [
            cut(9, 9, &[]),
            cut(30, 10, &[0, 4, 9]),
            erase(7, &[1, 2, 6]),
        ] {
            let mut bytes = Vec::new();
            removal.encode_scope(&mut bytes);
            assert_eq!(
                Removal::decode_scope(removal.by_seq, &bytes),
                Ok(removal.clone())
            );
            assert!(Removal::decode_scope(removal.by_seq, &bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Removal::decode_scope(removal.by_seq, &longer).is_err());
        }
        assert!(
            Removal::decode_scope(3, &[3, 0, 0, 0, 0]).is_err(),
            "unknown scope"
        );
        let mut bytes = Vec::new();
        erase(7, &[1, 2, 6]).encode_scope(&mut bytes);
        assert!(
            Removal::decode_scope(6, &bytes).is_err(),
            "a seq not before its reporter"
        );
    }
}
