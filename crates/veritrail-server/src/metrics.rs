//! Prometheus metrics, rendered in the text exposition format at `/metrics`.
//!
//! - `veritrail_http_requests_total{method,route,status}` and
//!   `veritrail_http_request_duration_seconds{method,route}` (histogram), by matched route
//!   (the template, like `/api/v1/events/{seq}`, so label values stay few).
//! - `veritrail_ingested_events_total`, `veritrail_ledger_commits_total`,
//!   `veritrail_ledger_commit_records` (histogram: batch size) and
//!   `veritrail_ledger_commit_seconds` (histogram: write + fdatasync), from the ledger.
//! - `veritrail_ledger_queued_requests`, `veritrail_search_lag_events` (events acknowledged
//!   but not yet searchable, all tenants) and `veritrail_search_commits_total`.
//! - `veritrail_connections_open`, `veritrail_connections_refused_total`,
//!   `veritrail_connections_stalled_total`, `veritrail_streams_open` and
//!   `veritrail_blocking_waiting`: what clients hold ([`crate::conn`], [`crate::limits`]).
//! - `veritrail_storage_errors_total{kind}` and `veritrail_integrity_failures_total`
//!   ([`FAULTS`]); `veritrail_scrub_passes_total`, `veritrail_scrub_errors_total` and
//!   `veritrail_scrub_last_finished_timestamp_seconds` ([`crate::scrub`]);
//!   `veritrail_compacted_records_total`, `veritrail_compacted_bytes_total`,
//!   `veritrail_compaction_passes_total` and `veritrail_compaction_running`
//!   ([`crate::lifecycle`]).
//! - `veritrail_webhook_subscriptions{state}`, `veritrail_webhook_attempts_total{result}`
//!   and `veritrail_webhook_backlog_events` (records past the progress of enabled
//!   subscriptions).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use std::sync::atomic::AtomicU64;

use veritrail_ledger::histogram::{self, Histogram};

use crate::AppState;

/// Failures counted where they become answers ([`crate::error::ApiError`]'s constructors),
/// process-wide: `veritrail_storage_errors_total{kind}` and
/// `veritrail_integrity_failures_total`.
pub static FAULTS: Faults = Faults {
    storage_unavailable: AtomicU64::new(0),
    storage_full: AtomicU64::new(0),
    storage_corrupt: AtomicU64::new(0),
    storage_conflict: AtomicU64::new(0),
    integrity: AtomicU64::new(0),
    overloaded: AtomicU64::new(0),
};

/// See [`FAULTS`].
#[derive(Debug)]
pub struct Faults {
    pub storage_unavailable: AtomicU64,
    pub storage_full: AtomicU64,
    pub storage_corrupt: AtomicU64,
    pub storage_conflict: AtomicU64,
    /// Stored data that failed a check on its way out: never served.
    pub integrity: AtomicU64,
    /// Ingests refused because the server took in as much as it could
    /// (`veritrail_ingest_refused_total`).
    pub overloaded: AtomicU64,
}

/// Request metrics; the rest is read from the ledger and the indexer when rendering.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By route template, then method.
    requests: Mutex<HashMap<String, HashMap<&'static str, RouteMetrics>>>,
}

#[derive(Debug)]
struct RouteMetrics {
    duration: Histogram,
    by_status: HashMap<u16, u64>,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = match method {
            "GET" => "GET",
            "POST" => "POST",
            "DELETE" => "DELETE",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "HEAD" => "HEAD",
            _ => "OTHER",
        };
        let mut requests = self.requests.lock().expect("metrics lock poisoned");
        // The route is allocated once, not per request.
        if !requests.contains_key(route) {
            requests.insert(route.to_owned(), HashMap::new());
        }
        let Some(methods) = requests.get_mut(route) else {
            return;
        };
        let route = methods.entry(method).or_insert_with(|| RouteMetrics {
            duration: Histogram::new(histogram::LATENCY_SECONDS),
            by_status: HashMap::new(),
        });
        route.duration.observe(seconds);
        *route.by_status.entry(status).or_default() += 1;
    }

    /// The text exposition of every metric.
    pub fn render(&self, state: &AppState) -> String {
        let mut out = String::new();
        {
            let requests = self.requests.lock().expect("metrics lock poisoned");
            let mut routes: Vec<_> = requests
                .iter()
                .flat_map(|(route, methods)| {
                    methods
                        .iter()
                        .map(move |(method, metrics)| ((route, *method), metrics))
                })
                .collect();
            routes.sort_by(|a, b| a.0.cmp(&b.0));
            out.push_str("# HELP veritrail_http_requests_total HTTP requests answered.\n# TYPE veritrail_http_requests_total counter\n");
            for ((route, method), metrics) in &routes {
                let mut statuses: Vec<_> = metrics.by_status.iter().collect();
                statuses.sort();
                for (status, count) in statuses {
                    let _ = writeln!(
                        out,
                        "veritrail_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
                    );
                }
            }
            out.push_str("# HELP veritrail_http_request_duration_seconds Time to answer a request.\n# TYPE veritrail_http_request_duration_seconds histogram\n");
            for ((route, method), metrics) in &routes {
                write_histogram(
                    &mut out,
                    "veritrail_http_request_duration_seconds",
                    &format!("method=\"{method}\",route=\"{route}\""),
                    &metrics.duration,
                );
            }
        }
        let stats = state.ledger().stats();
        let _ = write!(
            out,
            "# HELP veritrail_ingested_events_total Events stored in the ledger.\n# TYPE veritrail_ingested_events_total counter\nveritrail_ingested_events_total {}\n\
             # HELP veritrail_ledger_commits_total Durable ledger commits (group commits).\n# TYPE veritrail_ledger_commits_total counter\nveritrail_ledger_commits_total {}\n\
             # HELP veritrail_ledger_queued_requests Append requests waiting for the sequencer.\n# TYPE veritrail_ledger_queued_requests gauge\nveritrail_ledger_queued_requests {}\n",
            stats.records.load(Ordering::Relaxed),
            stats.commits.load(Ordering::Relaxed),
            stats.queued.load(Ordering::Relaxed),
        );
        out.push_str("# HELP veritrail_ledger_commit_records Records per durable commit (batch size).\n# TYPE veritrail_ledger_commit_records histogram\n");
        write_histogram(
            &mut out,
            "veritrail_ledger_commit_records",
            "",
            &stats.commit_records,
        );
        out.push_str("# HELP veritrail_ledger_commit_seconds Time of one durable commit: write and fdatasync.\n# TYPE veritrail_ledger_commit_seconds histogram\n");
        write_histogram(
            &mut out,
            "veritrail_ledger_commit_seconds",
            "",
            &stats.commit_seconds,
        );
        let _ = write!(
            out,
            "# HELP veritrail_search_lag_events Events acknowledged but not yet searchable.\n# TYPE veritrail_search_lag_events gauge\nveritrail_search_lag_events {}\n\
             # HELP veritrail_search_commits_total Search index commits.\n# TYPE veritrail_search_commits_total counter\nveritrail_search_commits_total {}\n",
            state.search_lag(),
            state.indexer_commits(),
        );
        let _ = write!(
            out,
            "# HELP veritrail_storage_errors_total Storage failures answered, by kind (unavailable and full are retryable; corrupt and conflict are not).\n# TYPE veritrail_storage_errors_total counter\n\
             veritrail_storage_errors_total{{kind=\"unavailable\"}} {}\nveritrail_storage_errors_total{{kind=\"full\"}} {}\n\
             veritrail_storage_errors_total{{kind=\"corrupt\"}} {}\nveritrail_storage_errors_total{{kind=\"conflict\"}} {}\n\
             # HELP veritrail_integrity_failures_total Stored data that failed a check: when read (checksum, proof against the signed root; not served) or by the scrubber.\n# TYPE veritrail_integrity_failures_total counter\nveritrail_integrity_failures_total {}\n",
            FAULTS.storage_unavailable.load(Ordering::Relaxed),
            FAULTS.storage_full.load(Ordering::Relaxed),
            FAULTS.storage_corrupt.load(Ordering::Relaxed),
            FAULTS.storage_conflict.load(Ordering::Relaxed),
            FAULTS.integrity.load(Ordering::Relaxed),
        );
        let _ = write!(
            out,
            "# HELP veritrail_ingest_refused_total Ingests refused with 503 overloaded (the server took in as much as it could process in time).\n# TYPE veritrail_ingest_refused_total counter\nveritrail_ingest_refused_total {}\n\
             # HELP veritrail_ingest_bytes_in_flight Request bodies of ingests being read, parsed or committed.\n# TYPE veritrail_ingest_bytes_in_flight gauge\nveritrail_ingest_bytes_in_flight {}\n\
             # HELP veritrail_ingest_concurrency_limit Ingests the overload control admits in flight now.\n# TYPE veritrail_ingest_concurrency_limit gauge\nveritrail_ingest_concurrency_limit {}\n\
             # HELP veritrail_ledger_queued_events Events waiting for the sequencer or in the commit under way.\n# TYPE veritrail_ledger_queued_events gauge\nveritrail_ledger_queued_events {}\n",
            FAULTS.overloaded.load(Ordering::Relaxed),
            state.ingest_admission().in_flight_bytes(),
            state.ingest_admission().limit(),
            state.ledger().stats().queued_events.load(Ordering::Relaxed),
        );
        let connections = state.connections();
        let _ = write!(
            out,
            "# HELP veritrail_connections_open Client connections open.\n# TYPE veritrail_connections_open gauge\nveritrail_connections_open {}\n\
             # HELP veritrail_connections_refused_total Connections refused over limits.max_connections.\n# TYPE veritrail_connections_refused_total counter\nveritrail_connections_refused_total {}\n\
             # HELP veritrail_connections_stalled_total Connections closed because their client read nothing for limits.write_timeout_secs.\n# TYPE veritrail_connections_stalled_total counter\nveritrail_connections_stalled_total {}\n\
             # HELP veritrail_streams_open Exports and live tails open.\n# TYPE veritrail_streams_open gauge\nveritrail_streams_open {}\n\
             # HELP veritrail_blocking_waiting Storage and search jobs waiting for a blocking thread (theirs or their tenant's share is in use).\n# TYPE veritrail_blocking_waiting gauge\nveritrail_blocking_waiting {}\n",
            connections.open.load(Ordering::Relaxed),
            connections.refused.load(Ordering::Relaxed),
            connections.stalled.load(Ordering::Relaxed),
            state.streams().total(),
            state.blocking_pool().waiting(),
        );
        let (passes, compacted_records, compacted_bytes, compacting) =
            state.lifecycle().compaction_stats();
        let _ = write!(
            out,
            "# HELP veritrail_compacted_records_total Bodies of removed records that compaction took out of the journal (their leaf hashes stay).\n# TYPE veritrail_compacted_records_total counter\nveritrail_compacted_records_total {compacted_records}\n\
             # HELP veritrail_compacted_bytes_total Journal bytes compaction gave back.\n# TYPE veritrail_compacted_bytes_total counter\nveritrail_compacted_bytes_total {compacted_bytes}\n\
             # HELP veritrail_compaction_passes_total Compaction passes done (each over every sealed journal segment).\n# TYPE veritrail_compaction_passes_total counter\nveritrail_compaction_passes_total {passes}\n\
             # HELP veritrail_compaction_running 1 while a compaction pass runs.\n# TYPE veritrail_compaction_running gauge\nveritrail_compaction_running {}\n",
            u8::from(compacting),
        );
        let (passes, last_finished, scrub_errors) = state.scrubber().stats();
        let _ = write!(
            out,
            "# HELP veritrail_scrub_passes_total Complete passes of the scrubber over the stored ledger.\n# TYPE veritrail_scrub_passes_total counter\nveritrail_scrub_passes_total {passes}\n\
             # HELP veritrail_scrub_errors_total Scrubber passes that could not read the ledger.\n# TYPE veritrail_scrub_errors_total counter\nveritrail_scrub_errors_total {scrub_errors}\n\
             # HELP veritrail_scrub_last_finished_timestamp_seconds When the last scrubber pass finished (0: none yet).\n# TYPE veritrail_scrub_last_finished_timestamp_seconds gauge\nveritrail_scrub_last_finished_timestamp_seconds {last_finished}\n",
        );
        let hooks = state.webhooks().stats(state);
        let _ = write!(
            out,
            "# HELP veritrail_webhook_subscriptions Webhook subscriptions, enabled or disabled.\n# TYPE veritrail_webhook_subscriptions gauge\nveritrail_webhook_subscriptions{{state=\"enabled\"}} {}\nveritrail_webhook_subscriptions{{state=\"disabled\"}} {}\n\
             # HELP veritrail_webhook_attempts_total Webhook delivery attempts, by result (a 2xx is delivered).\n# TYPE veritrail_webhook_attempts_total counter\nveritrail_webhook_attempts_total{{result=\"delivered\"}} {}\nveritrail_webhook_attempts_total{{result=\"failed\"}} {}\n\
             # HELP veritrail_webhook_backlog_events Records past the progress of enabled subscriptions (an upper bound of waiting messages).\n# TYPE veritrail_webhook_backlog_events gauge\nveritrail_webhook_backlog_events {}\n",
            hooks.subscriptions - hooks.disabled,
            hooks.disabled,
            hooks.delivered,
            hooks.failed,
            hooks.backlog,
        );
        out
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, count) in histogram.cumulative() {
        let le = if bound.is_infinite() {
            "+Inf".to_owned()
        } else {
            bound.to_string()
        };
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {count}");
    }
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", histogram.sum());
    let _ = writeln!(out, "{name}_count{braces} {}", histogram.count());
}
