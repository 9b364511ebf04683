//! The conformance suite of [`LedgerStore`]: the contract written on the trait, as tests
//! (feature `testing`).
//!
//! Every backend runs [`run_all`] from its own tests with a [`Harness`] that can open the
//! store again over the same data (a "restart"). The embedded and in-memory stores do; a
//! PostgreSQL store must pass it unchanged. Failures panic with a message naming the rule.

use std::collections::HashMap;
use std::sync::Arc;

use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::{Event, EventId, EventInput, TenantId, Timestamp};
use veritrail_core::merkle::{self, Frontier, MemoryTree, NodeId, NodeReader};
use veritrail_core::note::{self, NoteSigner};
use veritrail_core::record::{CatalogFields, Record};

use crate::store::{AppendedRecord, CommitBatch, LedgerStore, StoreError, TenantAppend};

/// Opens a backend, and opens it again over the same data.
pub trait Harness {
    type Store: LedgerStore;
    /// Opens the store; called again after the previous store was dropped, it must see
    /// the same data (a restart).
    fn open(&mut self) -> Self::Store;
}

/// Runs every rule against fresh harnesses from `new_harness`.
pub fn run_all<H: Harness>(mut new_harness: impl FnMut() -> H) {
    empty_store_has_nothing(&mut new_harness());
    commits_are_read_back_and_survive_a_restart(&mut new_harness());
    conflicting_appends_store_nothing(&mut new_harness());
    proofs_from_stored_nodes_verify(&mut new_harness());
}

/// Builds commit batches the way the sequencer does, and remembers what it built.
#[derive(Debug)]
pub struct BatchBuilder {
    signer: NoteSigner,
    trees: HashMap<TenantId, MemoryTree>,
    records: HashMap<TenantId, Vec<Vec<u8>>>,
    checkpoints: HashMap<TenantId, Arc<str>>,
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
            assert_eq!(store.size(&state.tenant).expect("size"), tree.size());
            let records = store
                .read_records(&state.tenant, 0, usize::MAX)
                .expect("read_records");
            assert_eq!(
                &records, &self.records[&state.tenant],
                "records of {}",
                state.tenant
            );
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

fn empty_store_has_nothing<H: Harness>(harness: &mut H) {
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
    assert!(
        store.read_nodes(&acme, &[NodeId::new(0, 0)]).is_err(),
        "no node of an empty log"
    );
}

fn commits_are_read_back_and_survive_a_restart<H: Harness>(harness: &mut H) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut builder = BatchBuilder::new();
    {
        let store = harness.open();
        for round in 0..6 {
            let mut batch = CommitBatch::default();
            batch
                .tenants
                .push(builder.append(&acme, 1 + round * 3, true));
            if round % 2 == 0 {
                batch.tenants.push(builder.append(&globex, 2, false));
            }
            store.commit(&batch).expect("commit");
            builder.accept(&batch);
            builder.assert_matches(&store);
        }
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
        let tail = store.read_records(&acme, 10, 3).expect("read");
        assert_eq!(tail.len(), 3, "read_records honours from and limit");
        assert_eq!(tail[0], builder.records[&acme][10]);
    }
    let store = harness.open();
    builder.assert_matches(&store);
    let mut batch = CommitBatch::default();
    batch.tenants.push(builder.append(&acme, 4, true));
    store.commit(&batch).expect("commit after restart");
    builder.accept(&batch);
    builder.assert_matches(&store);
}

fn conflicting_appends_store_nothing<H: Harness>(harness: &mut H) {
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

fn proofs_from_stored_nodes_verify<H: Harness>(harness: &mut H) {
    let acme = tenant("acme");
    let mut builder = BatchBuilder::new();
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
    let store = harness.open();
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
    let checkpoint = store.checkpoint(&acme).expect("checkpoint").expect("some");
    let opened = note::open(&checkpoint, &[test_signer().verifier()]).expect("signed");
    let checkpoint = Checkpoint::parse(&opened.text).expect("checkpoint body");
    assert_eq!((checkpoint.size(), *checkpoint.root()), (size, tree.root()));
    assert!(
        store.read_nodes(&acme, &[NodeId::new(0, size)]).is_err(),
        "a node past the end is not served"
    );
}

struct StoreReader<'a, S>(&'a S, &'a TenantId);

impl<S: LedgerStore> NodeReader for StoreReader<'_, S> {
    type Error = StoreError;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<merkle::Hash>, StoreError> {
        self.0.read_nodes(self.1, ids)
    }
}
