//! The conformance suite of [`LedgerStore`]: the contract written on the trait, as tests
//! (feature `testing`).
//!
//! Every backend runs [`run_all`] from its own tests with a [`Harness`] that can open the
//! store again over the same data (a "restart"), and, where it can, kill the store at any
//! change to its storage (as `kill -9` would). The embedded and in-memory stores do (the
//! embedded one also on a simulated disk that can be killed); a PostgreSQL store must pass
//! it unchanged. Each test is named after the rule it checks
//! and quotes it; `run_all` prints the name before it runs the test, so a failure's output
//! names the rule.
//!
//! # The contract's rules and their tests
//!
//! The rules listed under "Contract" on [`LedgerStore`]:
//!
//! | Rule | Test |
//! |---|---|
//! | **Durable on return** | `commits_are_durable_when_they_return` (across a restart) |
//! | **Atomic** | `a_commit_that_does_not_extend_its_log_is_a_conflict_and_stores_nothing` (a refused commit) |
//! | **Append-only** | `a_commit_that_does_not_extend_its_log_is_a_conflict_and_stores_nothing` |
//! | **Read your commits** | `every_read_sees_a_commit_once_it_returns` |
//! | **Removals** (kept with their append, in order, nodes untouched) | `removals_are_kept_with_their_append_and_every_proof_still_verifies` |
//! | **Removals** (a malformed one refuses the whole commit) | `a_malformed_removal_refuses_the_commit_and_stores_nothing` |
//! | **Compaction** (kept records, nodes and removals as they were, across restarts) | `compaction_keeps_every_kept_record_leaf_and_proof` |
//! | **Compaction** (a removed prefix: proofs from the first kept record's tree on) | `a_removed_prefix_keeps_every_proof_from_the_first_kept_record` |
//! | **Compaction** (a crash at any point of it) | `a_compaction_killed_at_any_point_loses_nothing_kept`, with a harness that can kill the store ([`Harness::kill_after`]; others skip it) |
//! | Reads are served concurrently with a commit in progress | not here (see below) |
//!
//! The promises of the trait's methods:
//!
//! | Method | Test |
//! |---|---|
//! | `load`, `size`, `checkpoint`, `find_event_ids`, `read_records` of a tenant with no log | `an_unknown_tenant_reads_as_an_empty_log` |
//! | `find_event_ids`: the seq of each committed id, `None` where the tenant has no such id | `event_ids_are_found_at_their_seq_within_their_tenant` |
//! | `read_records`: up to `limit` records from `from_seq`, in seq order | `read_records_returns_up_to_limit_records_from_from_seq` |
//! | `read_nodes`: hashes of complete nodes, in the order asked | `stored_nodes_prove_inclusion_and_consistency` |
//! | `read_nodes`: `NotFound` for a node that is not complete yet | `a_node_not_complete_yet_is_not_found` |
//! | `checkpoint`: the latest signed checkpoint | `the_checkpoint_is_the_latest_signed_one` |
//!
//! What a [`Harness`] cannot reach is tested elsewhere, for the embedded store: atomicity
//! and durability across a crash and a power cut (`tests/it/crash.rs`,
//! `tests/it/powercut.rs`), and a commit that fails but persists (`tests/it/ledger.rs`,
//! with [`MemoryStore`](crate::MemoryStore)'s injected faults). Reads concurrent with a
//! commit, and reads that never see part of a batch, are not tested by the suite.

use std::collections::HashMap;
use std::sync::Arc;

use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::{Event, EventId, EventInput, TenantId, Timestamp};
use veritrail_core::merkle::{self, Frontier, MemoryTree, NodeId, NodeReader};
use veritrail_core::note::{self, NoteSigner};
use veritrail_core::record::{CatalogFields, Record};

use crate::store::{
    AppendedRecord, CommitBatch, LedgerStore, Removal, RemovalScope, StoreError, TenantAppend,
};

/// Opens a backend, and opens it again over the same data.
pub trait Harness {
    type Store: LedgerStore;
    /// Opens the store; called again after the previous store was dropped, it must see
    /// the same data (a restart), or after it was killed, what the kill left.
    fn open(&mut self) -> Self::Store;

    /// Kills the store opened last (as `kill -9` would) at its `changes`-th change to
    /// storage from now. `false` when this harness cannot: the rules that need it are then
    /// not run.
    fn kill_after(&mut self, _changes: u64) -> bool {
        false
    }

    /// Whether the store opened last was killed.
    fn was_killed(&self) -> bool {
        false
    }
}

/// Runs every rule's test, each against a fresh harness from `new_harness`.
pub fn run_all<H: Harness>(mut new_harness: impl FnMut() -> H) {
    // Each rule's name goes to stderr before its test runs: a failure's output names it.
    macro_rules! run {
        ($($rule:ident),+ $(,)?) => {$(
            eprintln!("conformance rule: {}", stringify!($rule));
            $rule(&mut new_harness());
        )+};
    }
    run!(
        // The contract's rules.
        commits_are_durable_when_they_return,
        a_commit_that_does_not_extend_its_log_is_a_conflict_and_stores_nothing,
        every_read_sees_a_commit_once_it_returns,
        removals_are_kept_with_their_append_and_every_proof_still_verifies,
        a_malformed_removal_refuses_the_commit_and_stores_nothing,
        compaction_keeps_every_kept_record_leaf_and_proof,
        a_removed_prefix_keeps_every_proof_from_the_first_kept_record,
        a_compaction_killed_at_any_point_loses_nothing_kept,
        // The methods' promises.
        an_unknown_tenant_reads_as_an_empty_log,
        event_ids_are_found_at_their_seq_within_their_tenant,
        read_records_returns_up_to_limit_records_from_from_seq,
        stored_nodes_prove_inclusion_and_consistency,
        a_node_not_complete_yet_is_not_found,
        the_checkpoint_is_the_latest_signed_one,
    );
}

/// Builds commit batches the way the sequencer does, and remembers what it built.
#[derive(Debug)]
pub struct BatchBuilder {
    signer: NoteSigner,
    trees: HashMap<TenantId, MemoryTree>,
    records: HashMap<TenantId, Vec<Vec<u8>>>,
    checkpoints: HashMap<TenantId, Arc<str>>,
    removals: HashMap<TenantId, Vec<Removal>>,
    n_events: u64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self {
            signer: test_signer(),
            trees: HashMap::new(),
            records: HashMap::new(),
            checkpoints: HashMap::new(),
            removals: HashMap::new(),
            n_events: 0,
        }
    }

    /// A `TenantAppend` of `n` new events (with ids `evt-<k>` when `with_ids`). The
    /// builder's own view moves on only when `accept` is called.
    pub fn append(&mut self, tenant: &TenantId, n: usize, with_ids: bool) -> TenantAppend {
        let mut frontier = self
            .trees
            .get(tenant)
            .map(|tree| tree.frontier().clone())
            .unwrap_or_default();
        let first_seq = frontier.size();
        let mut nodes = Vec::new();
        let mut records = Vec::new();
        for i in 0..n {
            let seq = first_seq + i as u64;
            let event = test_event(self.n_events + i as u64, with_ids);
            let record = Record::new(
                tenant.clone(),
                seq,
                Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + seq as i64),
                event,
                CatalogFields::default(),
            );
            let bytes = record.encode();
            frontier.append(merkle::leaf_hash(&bytes), |node, hash| {
                nodes.push((node, hash));
            });
            records.push(AppendedRecord {
                event_id: record.event().id().cloned(),
                bytes,
            });
        }
        let body = Checkpoint::new(
            format!("test.veritrail.local/{tenant}"),
            frontier.size(),
            frontier.root(),
        )
        .expect("valid checkpoint")
        .to_body();
        let checkpoint: Arc<str> = Arc::from(self.signer.sign(&body).expect("signable"));
        TenantAppend {
            removals: Vec::new(),
            tenant: tenant.clone(),
            first_seq,
            records,
            nodes,
            checkpoint,
        }
    }

    /// Records that the batch was committed.
    pub fn accept(&mut self, batch: &CommitBatch) {
        for append in &batch.tenants {
            let tree = self.trees.entry(append.tenant.clone()).or_default();
            let records = self.records.entry(append.tenant.clone()).or_default();
            for record in &append.records {
                tree.append(merkle::leaf_hash(&record.bytes));
                records.push(record.bytes.clone());
            }
            self.n_events += append.records.len() as u64;
            self.checkpoints
                .insert(append.tenant.clone(), Arc::clone(&append.checkpoint));
            self.removals
                .entry(append.tenant.clone())
                .or_default()
                .extend(append.removals.iter().cloned());
        }
    }

    pub fn tree(&self, tenant: &TenantId) -> Option<&MemoryTree> {
        self.trees.get(tenant)
    }

    /// Checks that `store` holds exactly what was accepted.
    pub fn assert_matches(&self, store: &dyn LedgerStore) {
        let mut loaded: Vec<_> = store.load().expect("load").into_iter().collect();
        loaded.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        let mut tenants: Vec<_> = self.trees.keys().cloned().collect();
        tenants.sort();
        let loaded_tenants: Vec<_> = loaded.iter().map(|state| state.tenant.clone()).collect();
        assert_eq!(
            loaded_tenants, tenants,
            "load() lists every tenant with a commit"
        );
        for state in &loaded {
            let tree = &self.trees[&state.tenant];
            assert_eq!(state.size, tree.size(), "size of {}", state.tenant);
            let frontier =
                Frontier::from_parts(state.size, state.frontier.clone()).expect("frontier");
            assert_eq!(
                frontier.root(),
                tree.root(),
                "frontier root of {}",
                state.tenant
            );
            assert_eq!(
                state.checkpoint.as_deref(),
                self.checkpoints.get(&state.tenant).map(|c| &**c),
                "latest checkpoint of {}",
                state.tenant
            );
            assert_eq!(
                state.removals,
                self.removals
                    .get(&state.tenant)
                    .cloned()
                    .unwrap_or_default(),
                "removals of {}, in the order committed",
                state.tenant
            );
            assert_eq!(store.size(&state.tenant).expect("size"), tree.size());
            // Every kept record, read in runs: a removed one may have left storage.
            let mut removed = crate::store::Removed::default();
            for removal in self.removals.get(&state.tenant).into_iter().flatten() {
                removed.add(removal);
            }
            let expected = &self.records[&state.tenant];
            let mut seq = removed.next_kept(0);
            while seq < tree.size() {
                let end = removed.next_removed(seq).min(tree.size());
                let run = usize::try_from(end - seq).expect("in memory");
                let records = store
                    .read_records(&state.tenant, seq, run)
                    .expect("read_records");
                let from = usize::try_from(seq).expect("in memory");
                assert_eq!(
                    records.as_slice(),
                    &expected[from..from + run],
                    "records {seq}..{end} of {}",
                    state.tenant
                );
                seq = removed.next_kept(end);
            }
            // Every leaf from the first kept record on, removed or not (before it, a store
            // may keep only the subtrees the frontier above checks).
            let first_kept = removed.next_kept(0).min(tree.size());
            let leaves: Vec<NodeId> = (first_kept..tree.size())
                .map(|seq| NodeId::new(0, seq))
                .collect();
            let stored = store.read_nodes(&state.tenant, &leaves).expect("leaves");
            for (seq, leaf) in (first_kept..).zip(&stored) {
                assert_eq!(
                    Some(leaf),
                    tree.node(NodeId::new(0, seq)),
                    "leaf {seq} of {}, removed or not",
                    state.tenant
                );
            }
        }
    }
}

/// The signer the suite signs checkpoints with.
pub fn test_signer() -> NoteSigner {
    NoteSigner::from_seed("test.veritrail.local", [42; 32]).expect("valid test key")
}

/// A small valid event; `n` makes it distinct.
pub fn test_event(n: u64, with_id: bool) -> Event {
    let input: EventInput = serde_json::from_value(serde_json::json!({
        "id": with_id.then(|| format!("evt-{n}")),
        "type": "user.login",
        "actor": {"id": format!("u_{}", n % 7), "email": "someone@example.com"},
        "outcome": if n.is_multiple_of(5) { "failure" } else { "success" },
        "details": {"n": n},
    }))
    .expect("event JSON");
    Event::parse(input).expect("valid test event")
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid tenant id")
}

/// The `round`th of six commits the suite makes to a store: `acme` grows by
/// `1 + 3 * round` events with ids, `globex` by 2 events without ids every other round.
fn round_batch(builder: &mut BatchBuilder, round: usize) -> CommitBatch {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut batch = CommitBatch::default();
    batch
        .tenants
        .push(builder.append(&acme, 1 + round * 3, true));
    if round.is_multiple_of(2) {
        batch.tenants.push(builder.append(&globex, 2, false));
    }
    batch
}

/// Commits the six rounds of [`round_batch`].
/// Removals, then `compact` (twice, and across a restart, with commits between): every
/// kept record reads back as committed, every leaf hash (removed or not) and every proof is
/// as before, and the removals are the same. What a store takes out is its own business.
fn compaction_keeps_every_kept_record_leaf_and_proof<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
    {
        let store = harness.open();
        commit_rounds(&store, &mut builder);
        let size = builder.tree(&acme).expect("tree").size();
        for scope in [
            RemovalScope::Below {
                below: size / 2,
                except: vec![1],
            },
            RemovalScope::Seqs(vec![size / 2, size - 1]),
        ] {
            commit_removal(&store, &mut builder, &acme, scope);
        }
        store.compact().expect("compact");
        builder.assert_matches(&store);
        commit_rounds(&store, &mut builder);
        store.compact().expect("compact again");
        builder.assert_matches(&store);
    }
    let store = harness.open();
    builder.assert_matches(&store);
    store.compact().expect("compact after a restart");
    builder.assert_matches(&store);
    let tree = builder.tree(&acme).expect("tree");
    let size = tree.size();
    let reader = StoreReader(&store, &acme);
    for seq in [1, size / 2 + 1, size - 2] {
        let proof = merkle::inclusion_proof(&reader, seq, size).expect("inclusion proof");
        let leaf = *tree.node(NodeId::new(0, seq)).expect("leaf");
        merkle::verify_inclusion(&leaf, seq, size, &proof, &tree.root())
            .expect("compaction leaves every node as it was");
    }
}

/// A retention cut with no exception removes the log's first records: a store may then
/// keep only the hashes of their complete subtrees (the embedded store does, once their
/// segments are compacted), but every kept record, the root of every tree from the first
/// kept record's on, its inclusion proofs and the consistency proofs from that tree must
/// be as before, also after more appends, another cut and a restart.
fn a_removed_prefix_keeps_every_proof_from_the_first_kept_record<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
    let check = |store: &dyn LedgerStore, builder: &BatchBuilder, first_kept: u64| {
        builder.assert_matches(store);
        let tree = builder.tree(&acme).expect("tree");
        let size = tree.size();
        let reader = StoreReader(store, &acme);
        assert_eq!(merkle::root_at(&reader, size).expect("root"), tree.root());
        for from in [first_kept, first_kept + 1, size - 1] {
            let old_root = merkle::root_at(tree, from).expect("old root");
            let proof = merkle::consistency_proof(&reader, from, size).expect("consistency");
            merkle::verify_consistency(from, size, &proof, &old_root, &tree.root())
                .expect("a consistency proof from a tree past the removed prefix");
        }
        for seq in [first_kept, size - 1] {
            let proof = merkle::inclusion_proof(&reader, seq, size).expect("inclusion");
            let leaf = *tree.node(NodeId::new(0, seq)).expect("leaf");
            merkle::verify_inclusion(&leaf, seq, size, &proof, &tree.root())
                .expect("an inclusion proof of a kept record");
        }
    };
    let cut = |store: &dyn LedgerStore, builder: &mut BatchBuilder, below: u64| {
        let scope = RemovalScope::Below {
            below,
            except: Vec::new(),
        };
        commit_removal(store, builder, &acme, scope);
    };
    let (first, second);
    {
        let store = harness.open();
        commit_rounds(&store, &mut builder);
        first = builder.tree(&acme).expect("tree").size() * 2 / 3 - 1;
        cut(&store, &mut builder, first);
        commit_rounds(&store, &mut builder);
        store.compact().expect("compact");
        check(&store, &builder, first);
        second = builder.tree(&acme).expect("tree").size() - 5;
        cut(&store, &mut builder, second);
        store.compact().expect("compact again");
        check(&store, &builder, second);
    }
    let store = harness.open();
    check(&store, &builder, second);
    commit_rounds(&store, &mut builder);
    store.compact().expect("compact after a restart");
    check(&store, &builder, second);
}

/// Compaction killed at its first change, then (after a restart) at its second, and so on
/// until one finishes: after every kill the store opens with every kept record, leaf and
/// proof, and every removal, as before; nothing removed comes back.
fn a_compaction_killed_at_any_point_loses_nothing_kept<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
    let store = harness.open();
    commit_rounds(&store, &mut builder);
    let size = builder.tree(&acme).expect("tree").size();
    for scope in [
        RemovalScope::Below {
            below: size / 2,
            except: vec![size / 3],
        },
        RemovalScope::Seqs(vec![size / 3 + 1, size - 2]),
    ] {
        commit_removal(&store, &mut builder, &acme, scope);
    }
    commit_rounds(&store, &mut builder);
    drop(store);
    let mut kills = 0;
    loop {
        let store = harness.open();
        builder.assert_matches(&store);
        if !harness.kill_after(kills + 1) {
            return;
        }
        let compacted = store.compact();
        if !harness.was_killed() {
            compacted.expect("a compaction that was not killed");
            break;
        }
        kills += 1;
        assert!(
            kills < 10_000,
            "a compaction makes a bounded number of changes"
        );
    }
    let store = harness.open();
    builder.assert_matches(&store);
    let tree = builder.tree(&acme).expect("tree");
    let size = tree.size();
    let reader = StoreReader(&store, &acme);
    for seq in [size / 3, size / 2, size - 1] {
        let proof = merkle::inclusion_proof(&reader, seq, size).expect("inclusion proof");
        let leaf = *tree.node(NodeId::new(0, seq)).expect("leaf");
        merkle::verify_inclusion(&leaf, seq, size, &proof, &tree.root())
            .expect("an inclusion proof of a kept record after the kills");
    }
    assert!(kills > 0, "the compaction was killed at least once");
}

/// Commits one event of `tenant` whose record reports the removal `scope` (its seq is
/// the removal's `by_seq`).
fn commit_removal(
    store: &dyn LedgerStore,
    builder: &mut BatchBuilder,
    tenant: &TenantId,
    scope: RemovalScope,
) {
    let by_seq = builder.tree(tenant).map_or(0, MemoryTree::size);
    let mut batch = CommitBatch::default();
    let mut append = builder.append(tenant, 1, true);
    append.removals.push(Removal { by_seq, scope });
    batch.tenants.push(append);
    store.commit(&batch).expect("commit with a removal");
    builder.accept(&batch);
}

fn commit_rounds(store: &dyn LedgerStore, builder: &mut BatchBuilder) {
    for round in 0..6 {
        let batch = round_batch(builder, round);
        store.commit(&batch).expect("commit");
        builder.accept(&batch);
    }
}

/// Grows `acme`'s log by commits of many sizes (1, 2, 5, 1, 13, 64, 7, 100), then opens
/// the store again. Returns the reopened store and the sizes the log had (0 first).
fn commit_many_sizes_and_restart<H: Harness>(
    harness: &mut H,
    builder: &mut BatchBuilder,
) -> (H::Store, Vec<u64>) {
    let acme = tenant("acme");
    let store = harness.open();
    let mut sizes = vec![0];
    for n in [1, 2, 5, 1, 13, 64, 7, 100] {
        let mut batch = CommitBatch::default();
        batch.tenants.push(builder.append(&acme, n, false));
        store.commit(&batch).expect("commit");
        builder.accept(&batch);
        sizes.push(builder.tree(&acme).expect("tree").size());
    }
    drop(store);
    (harness.open(), sizes)
}

/// **Durable on return.** "When `commit` returns `Ok`, every record, node, event id and
/// checkpoint of the batch survives a crash or power loss."
///
/// Through a [`Harness`] the suite checks it across a restart: the store is dropped and
/// opened again over the same data, which then holds every committed batch, and the logs
/// go on from there.
fn commits_are_durable_when_they_return<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
    {
        let store = harness.open();
        commit_rounds(&store, &mut builder);
    }
    let store = harness.open();
    builder.assert_matches(&store);
    let mut batch = CommitBatch::default();
    batch.tenants.push(builder.append(&acme, 4, true));
    store.commit(&batch).expect("commit after restart");
    builder.accept(&batch);
    builder.assert_matches(&store);
}

/// **Append-only.** "`commit` only extends logs: a `TenantAppend` whose `first_seq` is not
/// the log's current size is refused with [`StoreError::Conflict`] and nothing of the
/// batch is written."
///
/// Also **Atomic** for a `commit` that returned `Err`: the batch's valid append to another
/// tenant is not stored either, and still is not after a restart.
fn a_commit_that_does_not_extend_its_log_is_a_conflict_and_stores_nothing<H: Harness>(
    harness: &mut H,
) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut builder = BatchBuilder::new();
    let store = harness.open();
    let mut batch = CommitBatch::default();
    batch.tenants.push(builder.append(&acme, 3, true));
    store.commit(&batch).expect("commit");
    builder.accept(&batch);

    // A stale writer appends at seq 0 again, alongside a valid append to another tenant.
    let mut stale = BatchBuilder::new();
    let mut batch = CommitBatch::default();
    batch.tenants.push(builder.append(&globex, 2, false));
    batch.tenants.push(stale.append(&acme, 2, false));
    match store.commit(&batch) {
        Err(StoreError::Conflict {
            first_seq: 0,
            size: 3,
            ..
        }) => {}
        other => panic!("a commit at the wrong seq must be a Conflict, got {other:?}"),
    }
    builder.assert_matches(&store);
    drop(store);
    let store = harness.open();
    builder.assert_matches(&store);
}

/// **Read your commits.** "Once `commit` returned `Ok`, every read method sees the batch."
///
/// After each commit: `load` (tenants, sizes, frontiers, checkpoints), `size`,
/// `checkpoint` and `read_records` give exactly what was committed so far.
fn every_read_sees_a_commit_once_it_returns<H: Harness>(harness: &mut H) {
    let mut builder = BatchBuilder::new();
    let store = harness.open();
    for round in 0..6 {
        let batch = round_batch(&mut builder, round);
        store.commit(&batch).expect("commit");
        builder.accept(&batch);
        builder.assert_matches(&store);
    }
}

/// **Removals.** "A `TenantAppend` may carry removals, each reported by one of its own
/// records: they are stored with the append (durable and atomic with it) and `load`
/// returns them in the order committed. A removal changes no node: every checkpoint and
/// every proof verifies as before."
fn removals_are_kept_with_their_append_and_every_proof_still_verifies<H: Harness>(harness: &mut H) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut builder = BatchBuilder::new();
    {
        let store = harness.open();
        commit_rounds(&store, &mut builder);
        let acme_size = builder.tree(&acme).expect("tree").size();
        // A retention cut keeping seq 2 (a hold), with another tenant in the same commit.
        let mut batch = CommitBatch::default();
        let mut append = builder.append(&acme, 2, true);
        append.removals.push(Removal {
            by_seq: acme_size + 1,
            scope: RemovalScope::Below {
                below: 10,
                except: vec![2],
            },
        });
        batch.tenants.push(append);
        batch.tenants.push(builder.append(&globex, 1, false));
        store.commit(&batch).expect("commit with a removal");
        builder.accept(&batch);
        // An erasure.
        let mut batch = CommitBatch::default();
        let mut append = builder.append(&acme, 1, false);
        append.removals.push(Removal {
            by_seq: acme_size + 2,
            scope: RemovalScope::Seqs(vec![2, 11, 20]),
        });
        batch.tenants.push(append);
        store.commit(&batch).expect("commit with an erasure");
        builder.accept(&batch);
        builder.assert_matches(&store);
    }
    let store = harness.open();
    builder.assert_matches(&store);
    let tree = builder.tree(&acme).expect("tree");
    let size = tree.size();
    let reader = StoreReader(&store, &acme);
    for seq in [0, 2, 11, size - 1] {
        let proof = merkle::inclusion_proof(&reader, seq, size).expect("inclusion proof");
        let leaf = *tree.node(NodeId::new(0, seq)).expect("leaf");
        merkle::verify_inclusion(&leaf, seq, size, &proof, &tree.root())
            .expect("a removal leaves every node as it was");
    }
}

/// **Removals.** A removal that is not reported by a record of its append, or that
/// removes records at or after the one reporting it, or whose seqs are not ascending,
/// refuses the whole commit: nothing of the batch is stored.
fn a_malformed_removal_refuses_the_commit_and_stores_nothing<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
    let store = harness.open();
    commit_rounds(&store, &mut builder);
    let size = builder.tree(&acme).expect("tree").size();
    for (by_seq, scope) in [
        (size + 5, RemovalScope::Seqs(vec![1])),
        (size - 1, RemovalScope::Seqs(vec![1])),
        (size, RemovalScope::Seqs(vec![3, 1])),
        (size, RemovalScope::Seqs(vec![size])),
        (
            size,
            RemovalScope::Below {
                below: size + 1,
                except: Vec::new(),
            },
        ),
    ] {
        let mut batch = CommitBatch::default();
        let mut append = builder.append(&acme, 1, false);
        append.removals.push(Removal { by_seq, scope });
        batch.tenants.push(append);
        assert!(
            store.commit(&batch).is_err(),
            "a malformed removal is refused: {:?}",
            batch.tenants[0].removals
        );
        builder.assert_matches(&store);
    }
    drop(store);
    builder.assert_matches(&harness.open());
}

/// The methods' promises for a tenant with no log, in a new store: `load` lists "every
/// tenant log" (none); `size` is "0 for an unknown tenant"; `checkpoint` is "`None` for an
/// unknown tenant"; `find_event_ids` is "`None` where the tenant has no such id";
/// `read_records` gives "none when the log ends earlier".
fn an_unknown_tenant_reads_as_an_empty_log<H: Harness>(harness: &mut H) {
    let store = harness.open();
    let acme = tenant("acme");
    assert!(
        store.load().expect("load").is_empty(),
        "a new store has no logs"
    );
    assert_eq!(store.size(&acme).expect("size"), 0);
    assert!(store.checkpoint(&acme).expect("checkpoint").is_none());
    assert!(store.read_records(&acme, 0, 10).expect("read").is_empty());
    let id = EventId::parse("evt-1").expect("id");
    assert_eq!(
        store.find_event_ids(&acme, &[&id]).expect("find"),
        vec![None]
    );
}

/// `find_event_ids`: "The seq of each committed event id, `None` where the tenant has no
/// such id." Ids are per tenant: another tenant's id is not found.
fn event_ids_are_found_at_their_seq_within_their_tenant<H: Harness>(harness: &mut H) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut builder = BatchBuilder::new();
    let store = harness.open();
    commit_rounds(&store, &mut builder);
    let ids: Vec<EventId> = ["evt-0", "evt-5", "evt-999999"]
        .iter()
        .map(|id| EventId::parse(id).expect("id"))
        .collect();
    let id_refs: Vec<&EventId> = ids.iter().collect();
    assert_eq!(
        store.find_event_ids(&acme, &id_refs).expect("find"),
        vec![Some(0), Some(3), None],
        "event ids map to their seqs (evt-1 and evt-2 went to globex, without ids)"
    );
    assert_eq!(
        store.find_event_ids(&globex, &id_refs).expect("find"),
        vec![None, None, None],
        "event ids are per tenant"
    );
}

/// `read_records`: "Up to `limit` canonical records of `tenant` starting at `from_seq`, in
/// seq order."
fn read_records_returns_up_to_limit_records_from_from_seq<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
    let store = harness.open();
    commit_rounds(&store, &mut builder);
    let tail = store.read_records(&acme, 10, 3).expect("read");
    assert_eq!(tail.len(), 3, "read_records honours from and limit");
    assert_eq!(tail[0], builder.records[&acme][10]);
}

/// `read_nodes`: "Hashes of complete nodes of `tenant`'s tree, in the order asked." Read
/// back after a restart, they give inclusion proofs and consistency proofs (from each size
/// the log had after a commit) that verify against the tree the commits built.
fn stored_nodes_prove_inclusion_and_consistency<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
    let (store, sizes) = commit_many_sizes_and_restart(harness, &mut builder);
    let reader = StoreReader(&store, &acme);
    let tree = builder.tree(&acme).expect("tree");
    let size = tree.size();
    for leaf_idx in [0, 1, size / 2, size - 1] {
        let proof = merkle::inclusion_proof(&reader, leaf_idx, size).expect("inclusion proof");
        let leaf = *tree.node(NodeId::new(0, leaf_idx)).expect("leaf");
        merkle::verify_inclusion(&leaf, leaf_idx, size, &proof, &tree.root())
            .expect("inclusion proof from stored nodes verifies");
    }
    for window in sizes.windows(2).skip(1) {
        let old_root = merkle::root_at(&reader, window[0]).expect("old root");
        let proof = merkle::consistency_proof(&reader, window[0], size).expect("consistency");
        merkle::verify_consistency(window[0], size, &proof, &old_root, &tree.root())
            .expect("consistency proof from stored nodes verifies");
    }
}

/// `read_nodes`: "`NotFound` for a node that is not complete yet": the first leaf of a
/// tenant with no log, and the leaf just past the end of a log.
fn a_node_not_complete_yet_is_not_found<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    {
        let store = harness.open();
        assert!(
            matches!(
                store.read_nodes(&acme, &[NodeId::new(0, 0)]),
                Err(StoreError::NotFound(_))
            ),
            "no node of an empty log"
        );
    }
    let mut builder = BatchBuilder::new();
    let (store, _) = commit_many_sizes_and_restart(harness, &mut builder);
    let size = builder.tree(&acme).expect("tree").size();
    assert!(
        matches!(
            store.read_nodes(&acme, &[NodeId::new(0, size)]),
            Err(StoreError::NotFound(_))
        ),
        "a node past the end is not served"
    );
}

/// `checkpoint`: "The latest signed checkpoint of `tenant`": after a restart, the note
/// opens with the log key and names the log's size and root.
fn the_checkpoint_is_the_latest_signed_one<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
    let (store, _) = commit_many_sizes_and_restart(harness, &mut builder);
    let tree = builder.tree(&acme).expect("tree");
    let checkpoint = store.checkpoint(&acme).expect("checkpoint").expect("some");
    let opened = note::open(&checkpoint, &[test_signer().verifier()]).expect("signed");
    let checkpoint = Checkpoint::parse(&opened.text).expect("checkpoint body");
    assert_eq!(
        (checkpoint.size(), *checkpoint.root()),
        (tree.size(), tree.root())
    );
}

struct StoreReader<'a, S: ?Sized>(&'a S, &'a TenantId);

impl<S: LedgerStore + ?Sized> NodeReader for StoreReader<'_, S> {
    type Error = StoreError;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<merkle::Hash>, StoreError> {
        self.0.read_nodes(self.1, ids)
    }
}
