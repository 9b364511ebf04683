//! The live tail over real HTTP: Server-Sent Events whose ids are seqs, filters as search's,
//! and a reconnect with `Last-Event-ID` that gets exactly what was missed.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use veritrail_api::Role;
use veritrail_client::IngestOptions;

use crate::support::{TestServer, event};

/// An open stream and what it has received so far.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(server: &TestServer, key: &str, query: &str, last_id: Option<u64>) -> Sse {
        let mut request = server.request(
            Method::GET,
            &format!("/api/v1/events/stream{query}"),
            Some(key),
        );
        if let Some(id) = last_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.expect("stream");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("type")
                .starts_with("text/event-stream")
        );
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next `n` events as `(id, record)`, failing after 10 s.
    async fn take(&mut self, n: usize) -> Vec<(u64, Value)> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while events.len() < n {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().parse::<u64>().expect("id is a seq"));
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if let Some(id) = id {
                    events.push((id, serde_json::from_str(&data).expect("data is JSON")));
                }
            }
            if events.len() >= n {
                break;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} events in 10 s", events.len()))
                .expect("read")
                .expect("the stream ended");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
        events
    }

    /// Nothing but heartbeats for `wait`.
    async fn quiet_for(&mut self, wait: Duration) {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(wait, self.response.chunk()).await {
            let text = String::from_utf8_lossy(&chunk).into_owned();
            assert!(!text.contains("data:"), "unexpected event: {text}");
        }
    }
}

async fn send(server: &TestServer, key: &str, ids: std::ops::Range<usize>, event_type: &str) {
    let events: Vec<_> = ids
        .map(|i| {
            event(
                &format!("e-{i}"),
                event_type,
                json!({"actor": {"id": format!("u{i}")}}),
            )
        })
        .collect();
    server
        .client(key)
        .send(&events, IngestOptions::default())
        .await
        .expect("sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tail_sends_new_matching_records_and_resumes_exactly() {
    let server = TestServer::start().await;
    server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let viewer = server.key("acme", Role::Viewer).await;
    send(&server, &publisher, 0..3, "doc.old").await;

    // Without Last-Event-ID: only what comes after the request.
    let mut all = Sse::open(&server, &viewer, "", None).await;
    let mut users = Sse::open(&server, &viewer, "?type=user.*", None).await;
    send(&server, &publisher, 3..8, "user.login").await;
    send(&server, &publisher, 8..10, "doc.shared").await;
    let first = all.take(7).await;
    let ids: Vec<u64> = first.iter().map(|(id, _)| *id).collect();
    let seqs: Vec<u64> = first
        .iter()
        .map(|(_, r)| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(ids, seqs, "each event's id is its record's seq");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in seq order: {ids:?}");
    let types: Vec<&str> = first
        .iter()
        .map(|(_, r)| r["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [["user.login"; 5].as_slice(), &["doc.shared"; 2]].concat()
    );
    // The filtered stream gets the five logins and then nothing else.
    let logins = users.take(5).await;
    assert!(logins.iter().all(|(_, r)| r["type"] == "user.login"));
    users.quiet_for(Duration::from_millis(1500)).await;
    drop(users);

    // Disconnect, miss some, reconnect with the last id: exactly the missed ones.
    let last = *ids.last().expect("last");
    drop(all);
    send(&server, &publisher, 10..14, "doc.shared").await;
    let mut again = Sse::open(&server, &viewer, "", Some(last)).await;
    let missed = again.take(4).await;
    let missed_ids: Vec<u64> = missed.iter().map(|(id, _)| *id).collect();
    assert_eq!(missed_ids, ((last + 1)..=(last + 4)).collect::<Vec<_>>());
    // And it goes on live.
    send(&server, &publisher, 14..15, "doc.shared").await;
    assert_eq!(again.take(1).await[0].0, last + 5);
    // From early in the log: the matching records from before the stream existed.
    let mut replay = Sse::open(&server, &viewer, "?type=doc.old", Some(0)).await;
    let old = replay.take(3).await;
    assert!(old.iter().all(|(_, r)| r["type"] == "doc.old"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tail_refuses_what_a_stream_cannot_mean_and_other_roles() {
    let server = TestServer::start().await;
    server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let viewer = server.key("acme", Role::Viewer).await;
    for query in ["?cursor=abc", "?order=desc", "?limit=5", "?outcome=maybe"] {
        server
            .get(&format!("/api/v1/events/stream{query}"), Some(&viewer))
            .await
            .expect(400, Some("invalid_parameter"));
    }
    let bad_id = server
        .send(
            server
                .request(Method::GET, "/api/v1/events/stream", Some(&viewer))
                .header("last-event-id", "yesterday"),
        )
        .await;
    bad_id.expect(400, Some("invalid_parameter"));
    server
        .get("/api/v1/events/stream", Some(&publisher))
        .await
        .expect(403, Some("forbidden"));
    server
        .get("/api/v1/events/stream", None)
        .await
        .expect(401, Some("unauthenticated"));
    server
        .get("/api/v1/events/stream", Some(&server.admin_key))
        .await
        .expect(403, Some("forbidden"));
    server.stop().await;
}
