//! [`Batcher`]: groups events pushed one by one into ingest requests, for high-volume
//! senders.
//!
//! A batch is sent when it reaches `max_events` or `max_bytes` (the serialized JSON array,
//! measured exactly), or when its oldest event has waited `max_delay`. Every event without an
//! `id` gets a random one before it is buffered, so every request is idempotent and
//! [`Client::send`]'s retries can never store an event twice.
//!
//! Events are numbered in push order from 0 (their *index*). Receipts and rejections are
//! reported by that index, so a caller can match them with its own events however the
//! batches were cut.

use std::time::{Duration, Instant};

use veritrail_api::{EventInput, FieldErrorBody, IngestReply, ReceiptBody, error_codes};

use crate::client::{Client, IngestOptions, MAX_EVENTS_PER_REQUEST, MAX_REQUEST_BYTES};
use crate::error::ClientError;

/// When a [`Batcher`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherOptions {
    /// Send once this many events wait; at most [`MAX_EVENTS_PER_REQUEST`] (larger values
    /// are lowered to it). Default 500.
    pub max_events: usize,
    /// Send before the JSON body would exceed this many bytes; at most 4.5 MiB (the server
    /// takes 5 MiB). Default 4 MiB. A single event larger than this is sent alone.
    pub max_bytes: usize,
    /// Send once the oldest waiting event has waited this long. Checked by
    /// [`Batcher::push`] and [`Batcher::flush_if_due`]; a caller whose pushes may pause
    /// should sleep until [`Batcher::deadline`] and then call `flush_if_due`. Default 1 s.
    pub max_delay: Duration,
    /// Options of every request.
    pub ingest: IngestOptions,
}

/// The largest `max_bytes` a [`Batcher`] accepts.
const MAX_BATCH_BYTES: usize = MAX_REQUEST_BYTES - MAX_REQUEST_BYTES / 10;

impl Default for BatcherOptions {
    fn default() -> Self {
        Self {
            max_events: 500,
            max_bytes: 4 * 1024 * 1024,
            max_delay: Duration::from_secs(1),
            ingest: IngestOptions::default(),
        }
    }
}

/// The receipt of the event pushed as number `index`.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// Push order, from 0.
    pub index: u64,
    pub receipt: ReceiptBody,
}

/// An event the server refused as invalid; it was not stored (the other events of its
/// batch were sent again without it).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Push order, from 0.
    pub index: u64,
    /// Its id (the one it had or the one the batcher gave it).
    pub id: String,
    /// What is wrong with it.
    pub errors: Vec<FieldErrorBody>,
}

/// What the batches sent since the last report came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    /// Receipts of the stored events, in push order.
    pub receipts: Vec<Receipt>,
    /// Refused events, in push order.
    pub rejected: Vec<Rejected>,
    /// The signed checkpoint of the last batch: its tree holds every receipt above (none
    /// for a mixed batch of a service key, whose receipts each name their tenant).
    pub checkpoint: Option<String>,
    /// That checkpoint's tree size.
    pub tree_size: Option<u64>,
}

/// A batch could not be sent. Its events stay buffered: calling [`Batcher::flush`] again
/// sends them again, which is safe because they all have ids.
#[derive(Debug, thiserror::Error)]
#[error("events {first_index} to {last_index} were not stored")]
pub struct BatchError {
    /// Push index of the batch's first event.
    pub first_index: u64,
    /// Push index of its last event.
    pub last_index: u64,
    #[source]
    pub source: ClientError,
}

/// One buffered event, already serialized.
#[derive(Debug)]
struct Pending {
    index: u64,
    id: String,
    json: Vec<u8>,
    pushed_at: Instant,
}

/// Groups events into requests; see the module documentation.
#[derive(Debug)]
pub struct Batcher {
    client: Client,
    options: BatcherOptions,
    /// Events pushed and not yet stored, in push order. Longer than one batch only after a
    /// failed send.
    buffer: Vec<Pending>,
    next_index: u64,
    /// Results of sent batches not yet handed out.
    report: BatchReport,
}

impl Batcher {
    /// A batcher sending through `client`.
    #[must_use]
    pub fn new(client: Client, options: BatcherOptions) -> Self {
        let options = BatcherOptions {
            max_events: options.max_events.clamp(1, MAX_EVENTS_PER_REQUEST),
            max_bytes: options.max_bytes.min(MAX_BATCH_BYTES),
            ..options
        };
        Self {
            client,
            options,
            buffer: Vec::new(),
            next_index: 0,
            report: BatchReport::default(),
        }
    }

    /// Adds an event, giving it a random `id` if it has none, and sends what is due: every
    /// full batch, and everything once the oldest event has waited `max_delay`. Returns the
    /// event's push index.
    ///
    /// # Errors
    ///
    /// A [`BatchError`] when a due batch could not be sent; the event is buffered all the
    /// same, and the next push or flush sends it again. If no id could be generated
    /// ([`ClientError::Random`]) or the event does not serialize, it was not buffered.
    pub async fn push(&mut self, mut event: EventInput) -> Result<u64, BatchError> {
        let index = self.next_index;
        let refuse = |source| BatchError {
            first_index: index,
            last_index: index,
            source,
        };
        let id = match &event.id {
            Some(id) => id.clone(),
            None => {
                let id = random_event_id().map_err(refuse)?;
                event.id = Some(id.clone());
                id
            }
        };
        let json = serde_json::to_vec(&event).map_err(|err| {
            refuse(ClientError::InvalidRequest(format!(
                "event does not serialize: {err}"
            )))
        })?;
        self.next_index += 1;
        self.buffer.push(Pending {
            index,
            id,
            json,
            pushed_at: Instant::now(),
        });
        let send_all = self.is_due();
        self.send_buffer(send_all).await?;
        Ok(index)
    }

    /// When the buffered events must be sent by, if any are buffered.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.buffer
            .first()
            .map(|oldest| oldest.pushed_at + self.options.max_delay)
    }

    /// Sends the buffered events if the oldest has waited `max_delay`.
    ///
    /// # Errors
    ///
    /// As [`Batcher::flush`].
    pub async fn flush_if_due(&mut self) -> Result<(), BatchError> {
        if self.is_due() {
            self.send_buffer(true).await?;
        }
        Ok(())
    }

    /// Sends the buffered events and returns everything sent since the last report: the
    /// receipts in push order and the rejected events.
    ///
    /// # Errors
    ///
    /// A [`BatchError`] when a batch could not be sent; its events and those after it stay
    /// buffered, and the results of earlier batches stay for the next report.
    pub async fn flush(&mut self) -> Result<BatchReport, BatchError> {
        self.send_buffer(true).await?;
        Ok(std::mem::take(&mut self.report))
    }

    /// The results of the batches sent since the last report, without sending anything:
    /// lets a caller hand out receipts as batches complete.
    pub fn take_report(&mut self) -> BatchReport {
        std::mem::take(&mut self.report)
    }

    /// [`Batcher::flush`], consuming the batcher.
    ///
    /// # Errors
    ///
    /// As [`Batcher::flush`].
    pub async fn finish(mut self) -> Result<BatchReport, BatchError> {
        self.flush().await
    }

    /// Events pushed and not yet stored.
    #[must_use]
    pub fn n_buffered(&self) -> usize {
        self.buffer.len()
    }

    fn is_due(&self) -> bool {
        self.deadline()
            .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// How many events from the front of the buffer make the next request: as many as fit
    /// `max_events` and `max_bytes` (at least one), and whether that is a full batch (more
    /// would not fit).
    fn next_batch(&self) -> (usize, bool) {
        let mut array_bytes = 1; // '['
        for (n_events, pending) in self.buffer.iter().enumerate() {
            // A comma or the closing ']' follows each event.
            let grown = array_bytes + pending.json.len() + 1;
            if n_events == self.options.max_events
                || (n_events > 0 && grown > self.options.max_bytes)
            {
                return (n_events, true);
            }
            array_bytes = grown;
        }
        let n_events = self.buffer.len();
        (n_events, n_events == self.options.max_events)
    }

    /// Sends full batches from the front of the buffer, and with `all` the rest too. On
    /// `invalid_events` the refused events are recorded and dropped, and the others sent
    /// again.
    async fn send_buffer(&mut self, all: bool) -> Result<(), BatchError> {
        loop {
            let (n_events, full) = self.next_batch();
            if n_events == 0 || !(full || all) {
                break;
            }
            let batch = &self.buffer[..n_events];
            let body_len: usize = batch.iter().map(|pending| pending.json.len() + 1).sum();
            let mut body = Vec::with_capacity(body_len + 1);
            body.push(b'[');
            for (position, pending) in batch.iter().enumerate() {
                if position > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&pending.json);
            }
            body.push(b']');
            let first_index = batch.first().map_or(0, |pending| pending.index);
            let last_index = batch.last().map_or(0, |pending| pending.index);
            let error = |source| BatchError {
                first_index,
                last_index,
                source,
            };
            match self
                .client
                .send_json_array(body, true, self.options.ingest)
                .await
            {
                Ok(reply) => {
                    let (receipts, checkpoint) = match reply {
                        IngestReply::Tenant(response) => (
                            response.receipts,
                            Some((response.checkpoint, response.tree_size)),
                        ),
                        IngestReply::Mixed(response) => (response.receipts, None),
                    };
                    if receipts.len() != n_events {
                        return Err(error(ClientError::InvalidRequest(format!(
                            "the server returned {} receipts for {n_events} events",
                            receipts.len(),
                        ))));
                    }
                    let receipts = self.buffer.drain(..n_events).zip(receipts);
                    self.report
                        .receipts
                        .extend(receipts.map(|(pending, receipt)| Receipt {
                            index: pending.index,
                            receipt,
                        }));
                    let (checkpoint, tree_size) = checkpoint.unzip();
                    self.report.checkpoint = checkpoint;
                    self.report.tree_size = tree_size;
                }
                Err(ClientError::Api { code, events, .. })
                    if (code == error_codes::INVALID_EVENTS
                        || code == error_codes::REJECTED_BY_CATALOG)
                        && !events.is_empty()
                        && events.iter().all(|event| event.index < n_events) =>
                {
                    let mut refused = vec![false; self.buffer.len()];
                    let mut rejected: Vec<Rejected> = events
                        .into_iter()
                        .map(|event| {
                            refused[event.index] = true;
                            let pending = &self.buffer[event.index];
                            Rejected {
                                index: pending.index,
                                id: pending.id.clone(),
                                errors: event.errors,
                            }
                        })
                        .collect();
                    rejected.sort_by_key(|rejected| rejected.index);
                    rejected.dedup_by_key(|rejected| rejected.index);
                    self.report.rejected.extend(rejected);
                    let mut refused = refused.into_iter();
                    self.buffer.retain(|_| !refused.next().unwrap_or(false));
                }
                Err(source) => return Err(error(source)),
            }
        }
        Ok(())
    }
}

/// A random UUID (version 4) as event id: 122 random bits make a collision with another
/// event of the tenant's log practically impossible.
fn random_event_id() -> Result<String, ClientError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(ClientError::Random)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_valid_event_ids_and_differ() {
        let first = random_event_id().expect("random");
        let second = random_event_id().expect("random");
        assert_ne!(first, second);
        assert_eq!(first.len(), 36);
        assert_eq!(&first[14..15], "4");
        veritrail_core::event::EventId::parse(&first).expect("a valid event id");
    }
}
