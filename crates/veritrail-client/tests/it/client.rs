//! [`Client`] against the stub: paths, queries, authentication, error mapping, and which
//! failures are retried.

use std::time::{Duration, Instant};

use veritrail_api::{EventInput, Role, SearchParams};
use veritrail_client::{
    Client, ClientError, ClientOptions, IngestOptions, KeyScope, LeafRef, RetryPolicy, Wait,
};

use crate::stub::{Reply, Stub, receipts};

const KEY: &str = "vt_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

/// A client with quick retries, so tests do not wait long.
fn client(stub: &Stub) -> Client {
    let options = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        },
        ..ClientOptions::default()
    };
    Client::with_options(&stub.url, KEY, &options).expect("client")
}

fn event(id: Option<&str>) -> EventInput {
    EventInput {
        id: id.map(str::to_owned),
        event_type: "user.login".into(),
        ..EventInput::default()
    }
}

#[tokio::test]
async fn requests_carry_the_key_and_decode_the_reply() {
    let stub = Stub::start(|_, _| {
        Reply::json(
            200,
            &serde_json::json!({"key_id": "key_1", "tenant": "acme", "role": "admin"}),
        )
    })
    .await;
    let me = client(&stub).me().await.expect("me");
    assert_eq!(me.tenant.as_deref(), Some("acme"));
    assert_eq!(me.role, Some(Role::Admin));
    let requests = stub.requests();
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path(), "/api/v1/me");
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn errors_carry_the_servers_code_message_and_request_id() {
    let stub =
        Stub::start(|_, _| Reply::error(403, "forbidden", "viewer keys cannot create keys")).await;
    let err = client(&stub)
        .create_key(&KeyScope::Own, Role::Admin, Some("ci"))
        .await
        .expect_err("refused");
    assert_eq!(err.to_string(), "viewer keys cannot create keys");
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.code(), Some("forbidden"));
    assert!(err.is_client_error());
    assert!(matches!(&err, ClientError::Api { request_id: Some(id), .. } if &**id == "req-1"));
    assert_eq!(stub.requests().len(), 1, "a 4xx is not retried");
    assert_eq!(
        stub.requests()[0].json(),
        serde_json::json!({"role": "admin", "name": "ci"})
    );
}

#[tokio::test]
async fn a_proxy_error_page_becomes_an_api_error_and_reads_are_retried() {
    let stub = Stub::start(|number, _| {
        if number < 2 {
            Reply::Response {
                status: 502,
                headers: vec![("content-type", "text/html".into())],
                body: b"<html>Bad Gateway</html>".to_vec(),
            }
        } else {
            Reply::Response {
                status: 200,
                headers: vec![],
                body: b"origin\n1\nroot\n\nsig\n".to_vec(),
            }
        }
    })
    .await;
    let checkpoint = client(&stub)
        .checkpoint()
        .await
        .expect("retried to success");
    assert!(checkpoint.starts_with("origin\n"));
    assert_eq!(stub.requests().len(), 3);

    let stub = Stub::start(|_, _| Reply::Response {
        status: 502,
        headers: vec![],
        body: b"<html>Bad Gateway</html>".to_vec(),
    })
    .await;
    let err = client(&stub).checkpoint().await.expect_err("502");
    assert_eq!(err.code(), Some("http_502"));
    assert!(err.to_string().contains("Bad Gateway"), "{err}");
    assert_eq!(stub.requests().len(), 4, "max_attempts");
}

#[tokio::test]
async fn send_with_ids_retries_429_after_retry_after_then_503_and_hangups() {
    let stub = Stub::start(|number, request| match number {
        0 => Reply::error(429, "rate_limited", "slow down").with_header("retry-after", "1"),
        1 => Reply::error(503, "unavailable", "ledger busy"),
        2 => Reply::Hangup,
        _ => receipts(request, 10),
    })
    .await;
    let started = Instant::now();
    let reply = client(&stub)
        .send(
            &[event(Some("a")), event(Some("b"))],
            IngestOptions::default(),
        )
        .await
        .expect("sent");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited Retry-After"
    );
    assert_eq!(reply.receipts.len(), 2);
    assert_eq!(reply.receipts[1].seq, 11);
    let requests = stub.requests();
    assert_eq!(requests.len(), 4);
    assert!(
        requests
            .iter()
            .all(|request| request.body == requests[0].body)
    );
    assert_eq!(requests[0].path(), "/api/v1/events");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn send_without_ids_retries_only_what_the_server_did_not_act_on() {
    // 429: the server refused before reading; retried.
    let stub = Stub::start(|number, request| match number {
        0 => Reply::error(429, "rate_limited", "slow down").with_header("retry-after", "0"),
        _ => receipts(request, 0),
    })
    .await;
    client(&stub)
        .send(&[event(None)], IngestOptions::default())
        .await
        .expect("sent after a 429");
    assert_eq!(stub.requests().len(), 2);

    // 503 and a cut connection may come after the events were stored: not retried.
    let stub = Stub::start(|_, _| Reply::error(503, "unavailable", "ledger busy")).await;
    let err = client(&stub)
        .send(&[event(None), event(Some("x"))], IngestOptions::default())
        .await
        .expect_err("503");
    assert_eq!(err.status(), Some(503));
    assert_eq!(stub.requests().len(), 1);

    let stub = Stub::start(|_, _| Reply::Hangup).await;
    let err = client(&stub)
        .send(&[event(None)], IngestOptions::default())
        .await
        .expect_err("hangup");
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert!(!err.is_unsent());
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_unsent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let options = ClientOptions {
        retry: RetryPolicy::never(),
        ..ClientOptions::default()
    };
    let client = Client::with_options(&url, KEY, &options).expect("client");
    let err = client
        .send(&[event(None)], IngestOptions::default())
        .await
        .expect_err("refused");
    assert!(err.is_unsent(), "{err:?}");
}

#[tokio::test]
async fn send_refuses_empty_and_oversized_batches_locally() {
    let stub = Stub::start(|_, request| receipts(request, 0)).await;
    let client = client(&stub);
    let err = client
        .send(&[], IngestOptions::default())
        .await
        .expect_err("empty");
    assert!(matches!(err, ClientError::InvalidRequest(_)));
    let many = vec![event(Some("a")); 1001];
    let err = client
        .send(&many, IngestOptions::default())
        .await
        .expect_err("too many");
    assert!(matches!(err, ClientError::InvalidRequest(_)));
    assert!(stub.requests().is_empty());
}

#[tokio::test]
async fn ingest_options_become_query_parameters() {
    let stub = Stub::start(|_, request| receipts(request, 0)).await;
    let options = IngestOptions {
        wait: Wait::Searchable,
        proof: true,
    };
    client(&stub)
        .send(&[event(Some("a"))], options)
        .await
        .expect("sent");
    let request = &stub.requests()[0];
    assert_eq!(request.query("wait").as_deref(), Some("searchable"));
    assert_eq!(request.query("proof").as_deref(), Some("true"));
}

#[tokio::test]
async fn search_all_follows_cursors_to_the_last_page() {
    let stub = Stub::start(|_, request| {
        let page: u64 = request.query("cursor").map_or(0, |cursor| {
            cursor.trim_start_matches('c').parse().expect("cursor")
        });
        let events: Vec<_> = (page * 2..page * 2 + 2)
            .map(|seq| serde_json::json!({"seq": seq}))
            .collect();
        let mut body = serde_json::json!({"events": events, "indexed_size": 6, "log_size": 6});
        if page < 2 {
            body["next_cursor"] = format!("c{}", page + 1).into();
        }
        Reply::json(200, &body)
    })
    .await;
    let params = SearchParams {
        event_type: Some("user.*".into()),
        order: Some("asc".into()),
        limit: Some("2".into()),
        ..SearchParams::default()
    };
    let mut pager = client(&stub).search_all(params);
    let mut seqs = Vec::new();
    while let Some(event) = pager.next_event().await.expect("page") {
        seqs.push(event["seq"].as_u64().expect("seq"));
    }
    assert_eq!(seqs, [0, 1, 2, 3, 4, 5]);
    let requests = stub.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].query("type").as_deref(), Some("user.*"));
    assert_eq!(requests[0].query("cursor"), None);
    assert_eq!(requests[2].query("cursor").as_deref(), Some("c2"));
    assert_eq!(requests[2].query("limit").as_deref(), Some("2"));
    assert_eq!(pager.next_page().await.expect("done"), None);
}

#[tokio::test]
async fn routes_with_parameters() {
    let stub = Stub::start(|_, request| {
        let body = match request.path() {
            "/api/v1/tenants/acme/keys/key_9" | "/api/v1/keys/key_9" => serde_json::json!({
                "id": "key_9", "tenant": "acme", "role": "viewer",
                "created_at": "2025-01-01T00:00:00.000Z", "created_by": "server_admin",
                "revoked_at": "2025-01-02T00:00:00.000Z"
            }),
            "/api/v1/tenants/acme/keys" => serde_json::json!({"keys": []}),
            "/api/v1/log/proof/inclusion" => serde_json::json!({
                "seq": 3, "tree_size": 8, "leaf_hash": "x", "proof": [], "checkpoint": "c"
            }),
            "/api/v1/log/proof/consistency" => serde_json::json!({
                "from_size": 2, "to_size": 8, "proof": [], "checkpoint": "c"
            }),
            "/api/v1/events/42" => serde_json::json!({"record": {}, "leaf_hash": "x"}),
            other => panic!("unexpected path {other}"),
        };
        Reply::json(200, &body)
    })
    .await;
    let client = client(&stub);
    let acme = KeyScope::Tenant("acme".into());
    client.revoke_key(&acme, "key_9").await.expect("revoke");
    client
        .revoke_key(&KeyScope::Own, "key_9")
        .await
        .expect("revoke");
    client.list_keys(&acme).await.expect("list");
    client
        .inclusion_proof(&LeafRef::Id("order-1".into()), Some(8))
        .await
        .expect("inclusion");
    client.consistency_proof(2, 8).await.expect("consistency");
    client.record_with_proof(42).await.expect("record");
    let requests = stub.requests();
    assert_eq!(requests[0].method, "DELETE");
    assert_eq!(requests[3].query("id").as_deref(), Some("order-1"));
    assert_eq!(requests[3].query("tree_size").as_deref(), Some("8"));
    assert_eq!(requests[4].query("from").as_deref(), Some("2"));
    assert_eq!(requests[5].query("proof").as_deref(), Some("true"));
}

#[tokio::test]
async fn export_streams_the_body_to_a_writer() {
    let body: Vec<u8> = (0..3_000_000u32).map(|n| b'a' + (n % 26) as u8).collect();
    let served = body.clone();
    let stub = Stub::start(move |_, _| Reply::Response {
        status: 200,
        headers: vec![("content-type", "application/x-ndjson".into())],
        body: served.clone(),
    })
    .await;
    let client = client(&stub);
    let mut out = Vec::new();
    let n_bytes = client.export(&mut out).await.expect("export");
    assert_eq!(n_bytes, body.len() as u64);
    assert!(out == body);
    let mut out = Vec::new();
    client.export_async(&mut out).await.expect("export");
    assert!(out == body);
    assert_eq!(stub.requests()[0].path(), "/api/v1/log/export");
}
