//! An in-memory [`LedgerStore`] for tests (feature `testing`), with injectable faults.
//!
//! It keeps the same contract as the embedded store, and so passes the same conformance
//! suite, but nothing survives the process. A test can make the next commits fail in the
//! two ways a real disk fails (Sunlight's memory backend does the same):
//! [`InjectedFault::FailNotPersist`] (the write never happened) and
//! [`InjectedFault::FailButPersist`] (the write happened, but the caller was told it
//! failed).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use veritrail_core::event::{EventId, TenantId};
use veritrail_core::merkle::{Frontier, Hash, NodeId};

use crate::store::{
    CommitBatch, LedgerStore, Removal, StoreError, TenantState, node_count, postorder_index,
};

/// A failure to inject into a coming commit (not to be confused with
/// [`verify::Fault`](crate::verify::Fault), damage the verifier found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// The commit returns an error and stores nothing.
    FailNotPersist,
    /// The commit stores the whole batch, then returns an error.
    FailButPersist,
}

/// The in-memory store. Cloning shares the same state, which is how a test "reopens" it.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    logs: HashMap<TenantId, TenantLog>,
    faults: VecDeque<InjectedFault>,
}

#[derive(Debug, Default)]
struct TenantLog {
    records: Vec<Vec<u8>>,
    /// Complete nodes in post-order, as the embedded store keeps them.
    nodes: Vec<Hash>,
    event_ids: HashMap<EventId, u64>,
    checkpoint: Option<Arc<str>>,
    removals: Vec<Removal>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next commit (after any already queued faults) fail this way.
    pub fn inject(&self, fault: InjectedFault) {
        self.lock().faults.push_back(fault);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("memory store lock poisoned")
    }
}

impl LedgerStore for MemoryStore {
    fn load(&self) -> Result<Vec<TenantState>, StoreError> {
        let inner = self.lock();
        inner
            .logs
            .iter()
            .map(|(tenant, log)| {
                let size = log.records.len() as u64;
                Ok(TenantState {
                    tenant: tenant.clone(),
                    size,
                    frontier: read_nodes(log, &Frontier::node_ids(size))?,
                    checkpoint: log.checkpoint.clone(),
                    removals: log.removals.clone(),
                })
            })
            .collect()
    }

    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let fault = inner.faults.pop_front();
        if fault == Some(InjectedFault::FailNotPersist) {
            return Err(StoreError::Injected);
        }
        for append in &batch.tenants {
            let size = inner
                .logs
                .get(&append.tenant)
                .map_or(0, |log| log.records.len() as u64);
            let n_new = append.records.len() as u64;
            let duplicate_tenant = batch
                .tenants
                .iter()
                .filter(|other| other.tenant == append.tenant)
                .count()
                > 1;
            if append.first_seq != size || duplicate_tenant {
                return Err(StoreError::Conflict {
                    tenant: append.tenant.clone(),
                    first_seq: append.first_seq,
                    size,
                });
            }
            for removal in &append.removals {
                removal.check(size, size + n_new).map_err(|reason| {
                    StoreError::Corrupt(format!("append to {}: {reason}", append.tenant))
                })?;
            }
            if append.nodes.len() as u64 != node_count(size + n_new) - node_count(size) {
                return Err(StoreError::Corrupt(format!(
                    "append to {} brings {} nodes for {n_new} records",
                    append.tenant,
                    append.nodes.len()
                )));
            }
        }
        for append in &batch.tenants {
            let log = inner.logs.entry(append.tenant.clone()).or_default();
            for (seq, record) in (append.first_seq..).zip(&append.records) {
                if let Some(id) = &record.event_id {
                    log.event_ids.insert(id.clone(), seq);
                }
                log.records.push(record.bytes.clone());
            }
            log.nodes.extend(append.nodes.iter().map(|(_, hash)| *hash));
            log.checkpoint = Some(Arc::clone(&append.checkpoint));
            log.removals.extend(append.removals.iter().cloned());
        }
        match fault {
            Some(InjectedFault::FailButPersist) => Err(StoreError::Injected),
            _ => Ok(()),
        }
    }

    fn find_event_ids(
        &self,
        tenant: &TenantId,
        ids: &[&EventId],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let inner = self.lock();
        let log = inner.logs.get(tenant);
        Ok(ids
            .iter()
            .map(|id| log.and_then(|log| log.event_ids.get(*id).copied()))
            .collect())
    }

    fn read_records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let inner = self.lock();
        let Some(log) = inner.logs.get(tenant) else {
            return Ok(Vec::new());
        };
        let from = usize::try_from(from_seq).unwrap_or(usize::MAX);
        Ok(log.records.iter().skip(from).take(limit).cloned().collect())
    }

    fn read_nodes(&self, tenant: &TenantId, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let inner = self.lock();
        let log = inner
            .logs
            .get(tenant)
            .ok_or_else(|| StoreError::NotFound(format!("no log for tenant {tenant}")))?;
        read_nodes(log, ids)
    }

    fn size(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .logs
            .get(tenant)
            .map_or(0, |log| log.records.len() as u64))
    }

    fn checkpoint(&self, tenant: &TenantId) -> Result<Option<Arc<str>>, StoreError> {
        Ok(self
            .lock()
            .logs
            .get(tenant)
            .and_then(|log| log.checkpoint.clone()))
    }
}

fn read_nodes(log: &TenantLog, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
    let size = log.records.len() as u64;
    ids.iter()
        .map(|&node| {
            let hash = node
                .is_complete_in(size)
                .then(|| usize::try_from(postorder_index(node)).ok())
                .flatten()
                .and_then(|idx| log.nodes.get(idx));
            hash.copied().ok_or_else(|| {
                StoreError::NotFound(format!("node {node:?} is not complete in a tree of {size}"))
            })
        })
        .collect()
}
