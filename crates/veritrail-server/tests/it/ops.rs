//! Operations and the edges of the HTTP surface: `/healthz`, `/readyz`, `/metrics` (the
//! documented names, values that move with traffic), per-key rate limits, unknown routes
//! and methods, and the error body with its request id on every error.

use std::collections::BTreeMap;

use serde_json::json;
use veritrail_api::Role;
use veritrail_client::{IngestOptions, KeyScope};

use crate::support::{Reply, TestServer, event};

const T: &str = "acme";

/// Sample lines of a Prometheus text exposition, by `name{labels}`.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect("name and value");
            (name.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_and_metrics_move_with_traffic() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.client(&server.key(T, Role::Publisher).await);

    let health = server.get("/healthz", None).await;
    health.expect(200, None);
    assert_eq!(health.json()["status"], "ok");
    let ready = server.get("/readyz", None).await;
    ready.expect(200, None);
    assert_eq!(ready.json()["status"], "ready");
    assert!(
        ready.json()["search_lag_events"].is_u64(),
        "{}",
        ready.text()
    );

    let before = server.get("/metrics", None).await;
    before.expect(200, None);
    assert!(
        before
            .header("content-type")
            .expect("type")
            .starts_with("text/plain")
    );
    for name in [
        "veritrail_http_requests_total",
        "veritrail_http_request_duration_seconds",
        "veritrail_ingested_events_total",
        "veritrail_ledger_commits_total",
        "veritrail_ledger_commit_records",
        "veritrail_ledger_commit_seconds",
        "veritrail_ledger_queued_requests",
        "veritrail_search_lag_events",
        "veritrail_search_commits_total",
    ] {
        assert!(
            before.text().contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{}",
            before.text()
        );
    }
    let before = samples(&before.text());

    let events: Vec<_> = (0..25)
        .map(|i| event(&format!("m{i}"), "metrics.test", json!({})))
        .collect();
    publisher
        .send(&events, IngestOptions::default())
        .await
        .expect("ingest");
    publisher
        .send(&events[..5], IngestOptions::default())
        .await
        .expect("repeat");
    let posts =
        "veritrail_http_requests_total{method=\"POST\",route=\"/api/v1/events\",status=\"200\"}";
    let ingested = "veritrail_ingested_events_total";
    let commits = "veritrail_ledger_commits_total";
    let search_commits = "veritrail_search_commits_total";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let after = loop {
        let after = samples(&server.get("/metrics", None).await.text());
        if after[search_commits] > before[search_commits]
            && after["veritrail_search_lag_events"] == 0.0
        {
            break after;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the search index did not commit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(
        after[posts] - before.get(posts).copied().unwrap_or(0.0),
        2.0
    );
    assert_eq!(
        after[ingested] - before[ingested],
        25.0,
        "repeats are not stored"
    );
    assert!(after[commits] > before[commits]);
    let count =
        "veritrail_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/events\"}";
    assert_eq!(after[count], 2.0);
    // Routes are labelled by template, not by path.
    publisher
        .record(0)
        .await
        .expect_err("a publisher cannot read");
    let text = server.get("/metrics", None).await.text();
    assert!(
        text.contains("route=\"/api/v1/events/{seq}\",status=\"403\""),
        "{text}"
    );
    assert!(!text.contains("route=\"/api/v1/events/0\""));
    server.stop().await;
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_keys_do_not_share_buckets() {
    let server = TestServer::start_with(|config| {
        config.rate_limit.requests_per_second = 1;
        config.rate_limit.burst = 3;
    })
    .await;
    let owner = server.client(&server.tenant(T).await);
    let first = owner
        .create_key(&KeyScope::Own, Role::Viewer, None)
        .await
        .expect("viewer 1")
        .secret;
    let second = owner
        .create_key(&KeyScope::Own, Role::Viewer, None)
        .await
        .expect("viewer 2")
        .secret;
    let mut statuses = Vec::new();
    let mut limited: Option<Reply> = None;
    for _ in 0..4 {
        let reply = server.get("/api/v1/me", Some(&first)).await;
        statuses.push(reply.status);
        if reply.status == 429 {
            limited = Some(reply);
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let limited = limited.expect("limited");
    limited.expect(429, Some("rate_limited"));
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // The other key has its own bucket.
    for _ in 0..3 {
        server
            .get("/api/v1/me", Some(&second))
            .await
            .expect(200, None);
    }
    // And the first one gets a token back after a second; poll rather than sleep.
    crate::support::eventually("a token comes back", 5, || {
        let server = &server;
        let first = first.clone();
        async move { server.get("/api/v1/me", Some(&first)).await.status == 200 }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let server = TestServer::start().await;
    let owner = server.tenant(T).await;
    for path in [
        "/api/v1/nope",
        "/nope",
        "/api/v2/events",
        "/api/v1/events/0/extra",
    ] {
        let reply = server.get(path, Some(&owner)).await;
        reply.expect(404, Some("not_found"));
        assert_eq!(
            reply.json()["error"]["request_id"].as_str(),
            reply.header("x-request-id").as_deref()
        );
    }
    for (method, path) in [
        ("DELETE", "/api/v1/events"),
        ("PUT", "/api/v1/me"),
        ("POST", "/api/v1/log/checkpoint"),
        ("GET", "/api/v1/keys/key_0000000000000000"),
        ("PATCH", "/api/v1/tenants"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let reply = server
            .send(server.request(method.clone(), path, Some(&owner)))
            .await;
        assert_eq!(
            (reply.status, reply.code().as_deref()),
            (405, Some("method_not_allowed")),
            "{method} {path}: {}",
            reply.text()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_405_names_the_allowed_methods() {
    let server = TestServer::start().await;
    let reply = server
        .send(server.request(reqwest::Method::DELETE, "/api/v1/events", None))
        .await;
    reply.expect(405, Some("method_not_allowed"));
    let allow = reply.header("allow").expect("an Allow header");
    let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
    allowed.sort_unstable();
    assert!(
        allowed.contains(&"GET") && allowed.contains(&"POST"),
        "{allow}"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_error_has_code_message_and_the_request_id_of_its_header() {
    let server = TestServer::start_with(|config| {
        config.limits.max_body_bytes = 1024;
        config.rate_limit.requests_per_second = 1;
        config.rate_limit.burst = 1000;
    })
    .await;
    let owner = server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let big = json!({"type": "a.b", "details": {"x": "y".repeat(2000)}});
    let requests: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (
            server.request(reqwest::Method::GET, "/api/v1/me", None),
            401,
        ),
        (
            server.request(reqwest::Method::GET, "/api/v1/events", Some(&publisher)),
            403,
        ),
        (
            server.request(
                reqwest::Method::GET,
                "/api/v1/tenants/none",
                Some(&server.admin_key),
            ),
            404,
        ),
        (server.request(reqwest::Method::GET, "/nowhere", None), 404),
        (
            server.request(reqwest::Method::PUT, "/api/v1/events", None),
            405,
        ),
        (
            server.request(reqwest::Method::GET, "/api/v1/events?limit=0", Some(&owner)),
            400,
        ),
        (
            server
                .request(reqwest::Method::POST, "/api/v1/events", Some(&publisher))
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&big).expect("json")),
            413,
        ),
        (
            server
                .request(reqwest::Method::POST, "/api/v1/events", Some(&publisher))
                .header("content-type", "text/csv")
                .body("a,b"),
            415,
        ),
        (
            server
                .request(
                    reqwest::Method::POST,
                    "/api/v1/tenants",
                    Some(&server.admin_key),
                )
                .header("content-type", "application/json")
                .body(format!(r#"{{"id": "{T}"}}"#)),
            409,
        ),
        (
            server
                .request(
                    reqwest::Method::POST,
                    "/api/v1/tenants",
                    Some(&server.admin_key),
                )
                .header("content-type", "application/json")
                .body(r#"{"id": "Bad Tenant!"}"#),
            400,
        ),
        (
            server
                .request(reqwest::Method::POST, "/api/v1/keys", Some(&owner))
                .header("content-type", "application/json")
                .body(r#"{"role": "emperor"}"#),
            400,
        ),
    ];
    for (request, status) in requests {
        let reply = server.send(request).await;
        assert_eq!(reply.status, status, "{}", reply.text());
        let body = reply.json();
        let error = &body["error"];
        assert!(
            error["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{body}"
        );
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        let header = reply.header("x-request-id").expect("x-request-id");
        let timing = reply.header("server-timing").expect("server-timing");
        let millis: f64 = timing
            .strip_prefix("app;dur=")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("Server-Timing {timing:?}"));
        assert!(
            (0.0..10_000.0).contains(&millis),
            "Server-Timing {timing:?}"
        );
        assert_eq!(
            error["request_id"].as_str(),
            Some(header.as_str()),
            "{body}"
        );
        assert!(
            reply
                .header("content-type")
                .expect("type")
                .starts_with("application/json")
        );
    }

    // A request id the client sends is used; one that is not printable ASCII is replaced.
    let reply = server
        .send(
            server
                .request(reqwest::Method::GET, "/api/v1/events?limit=0", Some(&owner))
                .header("x-request-id", "trace-abc-123"),
        )
        .await;
    assert_eq!(
        reply.header("x-request-id").as_deref(),
        Some("trace-abc-123")
    );
    assert_eq!(reply.json()["error"]["request_id"], "trace-abc-123");
    let ok = server
        .send(
            server
                .request(reqwest::Method::GET, "/api/v1/me", Some(&owner))
                .header("x-request-id", "ok-request-7"),
        )
        .await;
    ok.expect(200, None);
    assert_eq!(ok.header("x-request-id").as_deref(), Some("ok-request-7"));
    for bad in ["has space".to_owned(), "x".repeat(129)] {
        let reply = server
            .send(
                server
                    .request(reqwest::Method::GET, "/nowhere", None)
                    .header("x-request-id", bad.clone()),
            )
            .await;
        let id = reply.header("x-request-id").expect("an id");
        assert_ne!(id, bad);
        assert!(!id.is_empty() && id.len() <= 128);
        assert_eq!(
            reply.json()["error"]["request_id"].as_str(),
            Some(id.as_str())
        );
    }
    server.stop().await;
}
