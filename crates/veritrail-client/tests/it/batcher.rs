//! [`Batcher`] against the stub: batch limits, ids, push-order receipts, rejected events,
//! failed batches kept for the next flush.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use veritrail_api::EventInput;
use veritrail_client::{Batcher, BatcherOptions, Client, ClientOptions, RetryPolicy};

use crate::stub::{Reply, Request, Stub, receipts};

/// A stub that stores every event it is sent, numbering them like a log.
async fn log_stub(reject: impl Fn(&serde_json::Value) -> bool + Send + Sync + 'static) -> Stub {
    let size = Arc::new(AtomicU64::new(0));
    Stub::start(move |_, request: &Request| {
        let events = request.json();
        let events = events.as_array().expect("array");
        let invalid: Vec<serde_json::Value> = events
            .iter()
            .enumerate()
            .filter(|(_, event)| reject(event))
            .map(|(index, _)| {
                serde_json::json!({"index": index, "errors": [
                    {"field": "type", "code": "invalid_format", "message": "bad type"}
                ]})
            })
            .collect();
        if !invalid.is_empty() {
            return Reply::json(
                400,
                &serde_json::json!({"error": {
                    "code": "invalid_events", "message": "invalid events", "events": invalid
                }}),
            );
        }
        let first_seq = size.fetch_add(events.len() as u64, Ordering::SeqCst);
        receipts(request, first_seq)
    })
    .await
}

fn client(stub: &Stub) -> Client {
    let options = ClientOptions {
        retry: RetryPolicy::never(),
        ..ClientOptions::default()
    };
    Client::with_options(&stub.url, "vt_test", &options).expect("client")
}

fn event(n: usize) -> EventInput {
    EventInput {
        event_type: "user.login".into(),
        summary: Some(format!("event {n}")),
        ..EventInput::default()
    }
}

fn body_events(request: &Request) -> Vec<serde_json::Value> {
    request.json().as_array().expect("array").clone()
}

#[tokio::test]
async fn batches_are_cut_at_max_events_and_receipts_come_in_push_order() {
    let stub = log_stub(|_| false).await;
    let mut batcher = Batcher::new(
        client(&stub),
        BatcherOptions {
            max_events: 500,
            max_delay: Duration::from_secs(3600),
            ..BatcherOptions::default()
        },
    );
    for n in 0..1200 {
        assert_eq!(batcher.push(event(n)).await.expect("push"), n as u64);
    }
    assert_eq!(batcher.n_buffered(), 200);
    let report = batcher.finish().await.expect("finish");
    let sizes: Vec<usize> = stub
        .requests()
        .iter()
        .map(|r| body_events(r).len())
        .collect();
    assert_eq!(sizes, [500, 500, 200]);
    assert_eq!(report.receipts.len(), 1200);
    for (n, receipt) in report.receipts.iter().enumerate() {
        assert_eq!(receipt.index, n as u64);
        assert_eq!(receipt.receipt.seq, n as u64);
    }
    assert_eq!(report.tree_size, Some(1200));
    // Every event got a distinct id, sent with it.
    let mut ids: Vec<String> = stub
        .requests()
        .iter()
        .flat_map(body_events)
        .map(|event| event["id"].as_str().expect("an id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1200);
}

#[tokio::test]
async fn max_events_is_never_above_the_api_limit() {
    let stub = log_stub(|_| false).await;
    let mut batcher = Batcher::new(
        client(&stub),
        BatcherOptions {
            max_events: 5000,
            ..BatcherOptions::default()
        },
    );
    for n in 0..1001 {
        batcher.push(event(n)).await.expect("push");
    }
    assert_eq!(batcher.n_buffered(), 1);
    assert_eq!(body_events(&stub.requests()[0]).len(), 1000);
}

#[tokio::test]
async fn batches_are_cut_before_max_bytes() {
    let stub = log_stub(|_| false).await;
    let max_bytes = 10_000;
    let mut batcher = Batcher::new(
        client(&stub),
        BatcherOptions {
            max_bytes,
            ..BatcherOptions::default()
        },
    );
    for n in 0..50 {
        let mut big = event(n);
        big.summary = Some("x".repeat(900 + n * 7));
        batcher.push(big).await.expect("push");
    }
    let report = batcher.finish().await.expect("finish");
    assert_eq!(report.receipts.len(), 50);
    let requests = stub.requests();
    assert!(requests.len() > 4);
    for request in &requests {
        assert!(request.body.len() <= max_bytes, "{}", request.body.len());
    }
    // Cut as late as possible: adding the next event would have crossed the limit.
    for pair in requests.windows(2) {
        let next_event = serde_json::to_vec(&body_events(&pair[1])[0]).expect("json");
        assert!(pair[0].body.len() + 1 + next_event.len() > max_bytes);
    }
}

#[tokio::test]
async fn ids_given_by_the_caller_are_kept() {
    let stub = log_stub(|_| false).await;
    let mut batcher = Batcher::new(client(&stub), BatcherOptions::default());
    let mut mine = event(0);
    mine.id = Some("order-42".into());
    batcher.push(mine).await.expect("push");
    let report = batcher.finish().await.expect("finish");
    assert_eq!(report.receipts[0].receipt.id.as_deref(), Some("order-42"));
}

#[tokio::test]
async fn rejected_events_are_reported_by_push_index_and_the_rest_stored() {
    let stub = log_stub(|event| event["summary"].as_str().is_some_and(|s| s.ends_with('7'))).await;
    let mut batcher = Batcher::new(
        client(&stub),
        BatcherOptions {
            max_events: 10,
            ..BatcherOptions::default()
        },
    );
    for n in 0..30 {
        batcher.push(event(n)).await.expect("push");
    }
    let report = batcher.finish().await.expect("finish");
    let rejected: Vec<u64> = report.rejected.iter().map(|r| r.index).collect();
    assert_eq!(rejected, [7, 17, 27]);
    assert_eq!(report.rejected[0].errors[0].code, "invalid_format");
    let stored: Vec<u64> = report.receipts.iter().map(|r| r.index).collect();
    let expected: Vec<u64> = (0..30).filter(|n| n % 10 != 7).collect();
    assert_eq!(stored, expected);
    // The rejected event's id is the one that was sent.
    let sent_ids: Vec<String> = stub
        .requests()
        .iter()
        .flat_map(body_events)
        .map(|event| event["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(sent_ids.contains(&report.rejected[0].id));
}

#[tokio::test]
async fn a_failed_batch_stays_buffered_and_is_sent_again_with_the_same_ids() {
    let stub = Stub::start(|number, request| {
        if number == 0 {
            Reply::error(503, "unavailable", "ledger busy")
        } else {
            receipts(request, 0)
        }
    })
    .await;
    let mut batcher = Batcher::new(client(&stub), BatcherOptions::default());
    for n in 0..3 {
        batcher.push(event(n)).await.expect("push");
    }
    let err = batcher.flush().await.expect_err("503");
    assert_eq!((err.first_index, err.last_index), (0, 2));
    assert_eq!(err.source.status(), Some(503));
    assert_eq!(batcher.n_buffered(), 3);
    let report = batcher.flush().await.expect("second flush");
    assert_eq!(report.receipts.len(), 3);
    let requests = stub.requests();
    assert_eq!(requests[0].body, requests[1].body, "same events, same ids");
}

#[tokio::test]
async fn a_due_batch_is_sent_on_push_and_on_flush_if_due() {
    let stub = log_stub(|_| false).await;
    let mut batcher = Batcher::new(
        client(&stub),
        BatcherOptions {
            max_delay: Duration::ZERO,
            ..BatcherOptions::default()
        },
    );
    batcher.push(event(0)).await.expect("push");
    assert_eq!(batcher.n_buffered(), 0, "sent at once with max_delay 0");
    assert_eq!(batcher.deadline(), None);

    let mut batcher = Batcher::new(
        client(&stub),
        BatcherOptions {
            max_delay: Duration::from_millis(20),
            ..BatcherOptions::default()
        },
    );
    batcher.push(event(1)).await.expect("push");
    assert_eq!(batcher.n_buffered(), 1);
    let deadline = batcher.deadline().expect("a deadline");
    tokio::time::sleep_until(deadline.into()).await;
    batcher.flush_if_due().await.expect("flush");
    assert_eq!(batcher.n_buffered(), 0);
}
