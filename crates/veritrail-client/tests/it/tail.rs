//! [`Client::tail`] against the stub: Server-Sent Events cut anywhere, reconnection with
//! `Last-Event-ID`, every record once, and where a tail without a seq starts.

use std::time::Duration;

use veritrail_api::SearchParams;
use veritrail_client::{Client, ClientError, ClientOptions, RetryPolicy, TailEvent};

use crate::stub::{Reply, Request, Stub};

fn client(stub: &Stub) -> Client {
    let options = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        },
        ..ClientOptions::default()
    };
    Client::with_options(&stub.url, "vt_test", &options).expect("client")
}

fn sse(body: &str) -> Reply {
    Reply::Response {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn record(seq: u64) -> String {
    serde_json::json!({"seq": seq, "type": "user.login", "summary": format!("event {seq}")})
        .to_string()
}

fn frame(seq: u64) -> String {
    format!("id: {seq}\ndata: {}\n\n", record(seq))
}

/// Nothing more to say: a stream with only a heartbeat, closed at once.
fn idle() -> Reply {
    sse(": heartbeat\n\n")
}

async fn next(tail: &mut veritrail_client::Tail) -> TailEvent {
    tokio::time::timeout(Duration::from_secs(10), tail.next())
        .await
        .expect("a record in time")
        .expect("a record")
}

fn stream_requests(stub: &Stub) -> Vec<Request> {
    stub.requests()
        .into_iter()
        .filter(|request| request.path() == "/api/v1/events/stream")
        .collect()
}

#[tokio::test]
async fn a_dropped_stream_resumes_after_the_last_record_with_none_twice() {
    let stub = Stub::start(|number, _| match number {
        // A heartbeat, two records, and a third cut off by the dropped connection.
        0 => sse(&format!(
            ": heartbeat\n\n{}{}id: 7\ndata: {{\"se",
            frame(5),
            frame(6)
        )),
        // The server sends 6 again (it must not come out twice), then 7 and 8, CRLF lines.
        1 => sse(&format!("{}{}{}", frame(6), frame(7), frame(8)).replace('\n', "\r\n")),
        _ => idle(),
    })
    .await;
    let params = SearchParams {
        event_type: Some("user.*".into()),
        // A stream has no pages: these are not sent.
        order: Some("desc".into()),
        limit: Some("10".into()),
        cursor: Some("c1".into()),
        ..SearchParams::default()
    };
    let mut tail = client(&stub).tail(params, Some(4));
    assert_eq!(tail.last_seq(), None);
    let mut seqs = Vec::new();
    for _ in 0..4 {
        let event = next(&mut tail).await;
        assert_eq!(event.record["seq"], event.seq);
        seqs.push(event.seq);
    }
    assert_eq!(seqs, [5, 6, 7, 8]);
    assert_eq!(tail.last_seq(), Some(8));
    let requests = stream_requests(&stub);
    assert_eq!(requests[0].header("last-event-id"), Some("4"));
    assert_eq!(requests[0].header("accept"), Some("text/event-stream"));
    assert_eq!(requests[0].query("type").as_deref(), Some("user.*"));
    for name in ["order", "limit", "cursor"] {
        assert_eq!(requests[0].query(name), None, "{name}");
    }
    assert_eq!(requests[1].header("last-event-id"), Some("6"));
}

#[tokio::test]
async fn a_tail_from_now_starts_after_the_last_record_of_the_log() {
    let stub = Stub::start(|_, request| match request.path() {
        "/api/v1/events" => {
            assert_eq!(request.query("order").as_deref(), Some("asc"));
            assert_eq!(request.query("limit").as_deref(), Some("1"));
            Reply::json(
                200,
                &serde_json::json!({"events": [{"seq": 3}], "indexed_size": 12, "log_size": 12}),
            )
        }
        _ => match request.header("last-event-id") {
            Some("11") => sse(&frame(12)),
            _ => idle(),
        },
    })
    .await;
    let mut tail = client(&stub).tail(SearchParams::default(), None);
    assert_eq!(next(&mut tail).await.seq, 12);
    assert_eq!(
        stream_requests(&stub)[0].header("last-event-id"),
        Some("11")
    );
}

#[tokio::test]
async fn a_tail_from_seq_0_waits_for_an_empty_log_and_takes_seq_0_from_search() {
    let stub = Stub::start(|number, request| match request.path() {
        "/api/v1/events" if number == 0 => Reply::json(
            200,
            &serde_json::json!({"events": [], "indexed_size": 0, "log_size": 0}),
        ),
        "/api/v1/events" => Reply::json(
            200,
            &serde_json::json!({"events": [{"seq": 0}], "indexed_size": 1, "log_size": 2}),
        ),
        _ => match request.header("last-event-id") {
            Some("0") => sse(&frame(1)),
            _ => idle(),
        },
    })
    .await;
    let mut tail = client(&stub).tail_from(SearchParams::default(), 0);
    assert_eq!(next(&mut tail).await.seq, 0);
    assert_eq!(next(&mut tail).await.seq, 1);

    // From a later seq no search is needed.
    let stub = Stub::start(|_, _| sse(&frame(7))).await;
    let mut tail = client(&stub).tail_from(SearchParams::default(), 7);
    assert_eq!(next(&mut tail).await.seq, 7);
    assert_eq!(stub.requests()[0].header("last-event-id"), Some("6"));
}

#[tokio::test]
async fn a_tail_from_seq_0_skips_what_search_says_does_not_match() {
    let stub = Stub::start(|_, request| match request.path() {
        "/api/v1/events" => Reply::json(
            200,
            &serde_json::json!({"events": [{"seq": 4}], "indexed_size": 9, "log_size": 9}),
        ),
        _ => match request.header("last-event-id") {
            Some("3") => sse(&frame(4)),
            _ => idle(),
        },
    })
    .await;
    let mut tail = client(&stub).tail_from(SearchParams::default(), 0);
    assert_eq!(next(&mut tail).await.seq, 4);
}

#[tokio::test]
async fn a_refusal_is_an_error_and_the_tail_can_be_asked_again() {
    let stub = Stub::start(|number, _| match number {
        0 => Reply::error(400, "invalid_parameter", "outcome: unknown value"),
        1 => Reply::Response {
            status: 200,
            headers: vec![("content-type", "text/html".into())],
            body: b"<html>login</html>".to_vec(),
        },
        _ => sse(&format!("id: 2\ndata: not json\n\n{}", frame(3))),
    })
    .await;
    let mut tail = client(&stub).tail(SearchParams::default(), Some(1));
    let err = tail.next().await.expect_err("refused");
    assert_eq!(err.code(), Some("invalid_parameter"));
    let err = tail.next().await.expect_err("not an event stream");
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    // A record that does not decode is reported and skipped; the next one comes.
    let err = tail.next().await.expect_err("bad record");
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    assert_eq!(next(&mut tail).await.seq, 3);
    assert_eq!(stub.requests().len(), 3, "a 400 is not retried");
}

#[tokio::test]
async fn a_stream_that_keeps_failing_is_an_error_after_max_attempts() {
    let stub = Stub::start(|_, _| Reply::Hangup).await;
    let mut tail = client(&stub).tail(SearchParams::default(), Some(0));
    let err = tokio::time::timeout(Duration::from_secs(10), tail.next())
        .await
        .expect("gives up in time")
        .expect_err("the server hangs up");
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert_eq!(stub.requests().len(), 3, "max_attempts");
}
