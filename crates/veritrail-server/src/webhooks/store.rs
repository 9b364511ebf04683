//! `webhooks.redb` in the data directory: subscriptions (with their signing secrets, which
//! must be kept to sign), each subscription's delivery progress, and its recent attempts.
//!
//! Subscription changes are durable before the reply. Progress and attempts are written in
//! batches by [`super::WebhookService`]'s flusher, a few times a second, in one durable
//! transaction: a crash loses at most the last moments of progress, so some messages are
//! delivered again, with the same `webhook-id` (at-least-once).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use veritrail_api::WebhookFilter;

/// `(tenant, subscription id)` -> [`SubscriptionRow`] as JSON.
const SUBSCRIPTIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("subscriptions");
/// `(tenant, subscription id)` -> [`Progress`] as JSON.
const PROGRESS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("progress");
/// `(tenant, subscription id, attempt id)` -> [`AttemptRow`] as JSON.
const ATTEMPTS: TableDefinition<(&str, &str, u64), &[u8]> = TableDefinition::new("attempts");

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub description: Option<String>,
    pub filter: WebhookFilter,
    /// `standard` or `envelope`.
    pub format: String,
    /// `every_single` or a window like `60s`.
    pub grouping: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The current secret first, then rotated-out ones until they expire.
    pub secrets: Vec<SecretRow>,
}

/// A signing secret as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRow {
    /// `whsec_...`.
    pub secret: String,
    pub created_at: String,
    /// Unix seconds after which a rotated-out secret no longer signs.
    pub expires_at: Option<i64>,
}

/// How far a subscription has delivered.
///
/// Deliveries are made in units: a run of seqs `unit_start..` whose messages are computed
/// from the ledger the same way every time (one per matching event, or one per group of a
/// closed grouping window). `skip` messages of the unit are delivered. After a restart the
/// unit is computed again and its first `skip` messages are not sent again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub unit_start: u64,
    pub skip: u64,
    /// Unix nanoseconds of the first failed attempt since the last success.
    pub failing_since: Option<i64>,
    /// The id the next attempt gets.
    pub next_attempt: u64,
}

/// One delivery attempt as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRow {
    pub id: u64,
    pub message_id: String,
    pub kind: String,
    pub seq: Option<u64>,
    pub occurrence: u64,
    pub attempted_at: String,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub error: Option<String>,
    pub delivered: bool,
}

impl AttemptRow {
    pub fn to_body(&self) -> veritrail_api::WebhookAttempt {
        veritrail_api::WebhookAttempt {
            id: self.id,
            message_id: self.message_id.clone(),
            kind: self.kind.clone(),
            seq: self.seq,
            occurrence: self.occurrence,
            attempted_at: self.attempted_at.clone(),
            status: self.status,
            latency_ms: self.latency_ms,
            error: self.error.clone(),
            delivered: self.delivered,
        }
    }
}

/// Store failures, as text (they become 503s or log lines).
#[derive(Debug, thiserror::Error)]
#[error("the webhook store failed: {0}")]
pub struct StoreError(String);

fn err(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(err)
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError(format!("invalid stored data: {e}")))
}

/// The webhook store.
pub struct Store {
    db: Database,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) `webhooks.redb` in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("webhooks.redb");
        // It holds signing secrets: private from its first byte.
        veritrail_ledger::keys::create_private_file(&path).map_err(err)?;
        // The store is small (the newest attempts only): a small cache keeps memory flat
        // (redb's default is 1 GiB).
        let db = Database::builder()
            .set_cache_size(16 << 20)
            .create(&path)
            .map_err(err)?;
        let tx = db.begin_write().map_err(err)?;
        tx.open_table(SUBSCRIPTIONS).map_err(err)?;
        tx.open_table(PROGRESS).map_err(err)?;
        tx.open_table(ATTEMPTS).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Store { db })
    }

    /// Every subscription of every tenant, with its progress.
    pub fn all(&self) -> Result<Vec<(SubscriptionRow, Progress)>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let subs = tx.open_table(SUBSCRIPTIONS).map_err(err)?;
        let progress = tx.open_table(PROGRESS).map_err(err)?;
        let mut all = Vec::new();
        for entry in subs.iter().map_err(err)? {
            let (key, value) = entry.map_err(err)?;
            let row: SubscriptionRow = from_json(value.value())?;
            let at = match progress.get(key.value()).map_err(err)? {
                Some(bytes) => from_json(bytes.value())?,
                None => Progress::default(),
            };
            all.push((row, at));
        }
        Ok(all)
    }

    /// Writes a subscription (new or changed), and its progress when given; durable on
    /// return.
    pub fn put(
        &self,
        row: &SubscriptionRow,
        progress: Option<&Progress>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let key = (row.tenant.as_str(), row.id.as_str());
            tx.open_table(SUBSCRIPTIONS)
                .map_err(err)?
                .insert(key, to_json(row)?.as_slice())
                .map_err(err)?;
            if let Some(progress) = progress {
                tx.open_table(PROGRESS)
                    .map_err(err)?
                    .insert(key, to_json(progress)?.as_slice())
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Removes a subscription with its progress and attempts.
    pub fn delete(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            tx.open_table(SUBSCRIPTIONS)
                .map_err(err)?
                .remove((tenant, id))
                .map_err(err)?;
            tx.open_table(PROGRESS)
                .map_err(err)?
                .remove((tenant, id))
                .map_err(err)?;
            tx.open_table(ATTEMPTS)
                .map_err(err)?
                .retain_in((tenant, id, 0)..=(tenant, id, u64::MAX), |_, _| false)
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Writes progress and new attempts of several subscriptions in one durable transaction,
    /// keeping the newest `keep` attempts of each. Subscriptions deleted meanwhile are
    /// skipped.
    pub fn flush(
        &self,
        progress: &[((String, String), Progress)],
        attempts: &[((String, String), AttemptRow)],
        keep: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let subs = tx.open_table(SUBSCRIPTIONS).map_err(err)?;
            let mut table = tx.open_table(PROGRESS).map_err(err)?;
            for ((tenant, id), at) in progress {
                if subs
                    .get((tenant.as_str(), id.as_str()))
                    .map_err(err)?
                    .is_some()
                {
                    table
                        .insert((tenant.as_str(), id.as_str()), to_json(at)?.as_slice())
                        .map_err(err)?;
                }
            }
            let mut table = tx.open_table(ATTEMPTS).map_err(err)?;
            let mut newest: std::collections::HashMap<(&str, &str), u64> =
                std::collections::HashMap::new();
            for ((tenant, id), attempt) in attempts {
                if subs
                    .get((tenant.as_str(), id.as_str()))
                    .map_err(err)?
                    .is_none()
                {
                    continue;
                }
                table
                    .insert(
                        (tenant.as_str(), id.as_str(), attempt.id),
                        to_json(attempt)?.as_slice(),
                    )
                    .map_err(err)?;
                let top = newest.entry((tenant, id)).or_default();
                *top = (*top).max(attempt.id);
            }
            for ((tenant, id), top) in newest {
                if let Some(floor) = top.checked_sub(keep) {
                    table
                        .retain_in((tenant, id, 0)..=(tenant, id, floor), |_, _| false)
                        .map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }

    /// Attempts of a subscription with ids below `before`, newest first, at most `limit`.
    pub fn attempts(
        &self,
        tenant: &str,
        id: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(ATTEMPTS).map_err(err)?;
        let mut rows = Vec::new();
        if before == 0 {
            return Ok(rows);
        }
        for entry in table
            .range((tenant, id, 0)..(tenant, id, before))
            .map_err(err)?
            .rev()
            .take(limit)
        {
            rows.push(from_json(entry.map_err(err)?.1.value())?);
        }
        Ok(rows)
    }
}
