//! `POST /api/v1/events`: one event or many, whole-request validation with every invalid
//! field named, stable codes for bad bodies, the size limits, idempotent retries by id,
//! `wait=searchable`, and receipts whose proofs verify against the signed checkpoint.

use crate::support::{TestServer, open_checkpoint, verify_receipt};
use serde_json::{Value, json};
use veritrail_api::{IngestResponse, Role, SearchParams};

const T: &str = "acme";

async fn log_size(server: &TestServer, tenant: &str) -> u64 {
    server
        .admin()
        .tenant(tenant)
        .await
        .expect("tenant")
        .log_size
}

fn receipts(reply: &Value) -> IngestResponse {
    serde_json::from_value(reply.clone()).expect("an ingest response")
}

#[tokio::test]
async fn one_object_or_an_array_is_stored_with_one_receipt_per_event_in_order() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let viewer = server.client(&server.key(T, Role::Viewer).await);
    let start = log_size(&server, T).await;

    let one = server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!({"type": "user.login", "summary": "single"}),
        )
        .await;
    one.expect(200, None);
    let one = receipts(&one.json());
    assert_eq!(one.receipts.len(), 1);
    assert_eq!(one.receipts[0].seq, start);
    assert!(!one.receipts[0].duplicate);
    assert_eq!(one.receipts[0].id, None);
    assert_eq!(one.tree_size, start + 1);

    let many = server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!([
                {"id": "m0", "type": "a.one"},
                {"type": "a.two"},
                {"id": "m2", "type": "a.three", "outcome": "failure"},
            ]),
        )
        .await;
    many.expect(200, None);
    let many = receipts(&many.json());
    let seqs: Vec<u64> = many.receipts.iter().map(|receipt| receipt.seq).collect();
    assert_eq!(seqs, [start + 1, start + 2, start + 3]);
    let ids: Vec<Option<&str>> = many
        .receipts
        .iter()
        .map(|receipt| receipt.id.as_deref())
        .collect();
    assert_eq!(ids, [Some("m0"), None, Some("m2")]);
    assert_eq!(many.tree_size, start + 4);

    // Each receipt names the record at its seq, with its leaf hash.
    for (receipt, want_type) in many.receipts.iter().zip(["a.one", "a.two", "a.three"]) {
        let record = viewer.record(receipt.seq).await.expect("record");
        assert_eq!(record.record["type"], want_type);
        assert_eq!(record.record["seq"], receipt.seq);
        assert_eq!(record.record["tenant"], T);
        assert_eq!(record.leaf_hash, receipt.leaf_hash);
    }
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_event_rejects_the_whole_request_and_every_bad_field_is_named() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let before = log_size(&server, T).await;

    let reply = server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!([
                {"id": "ok-0", "type": "user.login"},
                {"id": "bad-1", "type": "user.login", "actor": {"email": "not-an-email"}, "outcome": "maybe"},
                {"id": "ok-2", "type": "user.logout"},
                {"id": "bad-3", "summary": "no type"},
                42,
                {"type": "user.login", "colour": "red"},
                {"type": "user.login", "occurred_at": "yesterday", "details": [1, 2]},
            ]),
        )
        .await;
    reply.expect(400, Some("invalid_events"));
    let body = reply.json();
    let mut found: Vec<(u64, String, String)> = Vec::new();
    for event in body["error"]["events"].as_array().expect("events") {
        for error in event["errors"].as_array().expect("errors") {
            found.push((
                event["index"].as_u64().expect("index"),
                error["field"].as_str().expect("field").to_owned(),
                error["code"].as_str().expect("code").to_owned(),
            ));
            assert!(
                !error["message"].as_str().expect("message").is_empty(),
                "{error}"
            );
        }
    }
    found.sort();
    let want: Vec<(u64, String, String)> = [
        (1, "actor.email", "invalid_email"),
        (1, "outcome", "invalid_outcome"),
        (3, "type", "required"),
        (4, "", "invalid_type"),
        (5, "colour", "unknown_field"),
        (6, "details", "invalid_type"),
        (6, "occurred_at", "invalid_timestamp"),
    ]
    .into_iter()
    .map(|(index, field, code)| (index, field.to_owned(), code.to_owned()))
    .collect();
    assert_eq!(found, want, "{body}");
    // The unknown field is named in the message.
    let unknown = &body["error"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|event| event["index"] == 5)
        .expect("index 5")["errors"][0]["message"];
    assert!(
        unknown.as_str().expect("text").contains("colour"),
        "{unknown}"
    );
    assert_eq!(log_size(&server, T).await, before, "nothing was stored");

    // A single invalid object is index 0.
    let reply = server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!({"type": "Not A Type!"}),
        )
        .await;
    reply.expect(400, Some("invalid_events"));
    assert_eq!(reply.json()["error"]["events"][0]["index"], 0);
    assert_eq!(
        reply.json()["error"]["events"][0]["errors"][0]["field"],
        "type"
    );
    assert_eq!(log_size(&server, T).await, before, "nothing was stored");
    server.stop().await;
}

#[tokio::test]
async fn bad_bodies_and_parameters_have_stable_codes_and_store_nothing() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let before = log_size(&server, T).await;
    let valid = r#"{"type": "user.login"}"#;
    // (query, content type, body, status, code)
    let cases: &[(&str, Option<&str>, &str, u16, &str)] = &[
        (
            "",
            Some("application/json"),
            r#"{"type": "#,
            400,
            "malformed_json",
        ),
        ("", Some("application/json"), "nope", 400, "malformed_json"),
        ("", Some("application/json"), "null", 400, "malformed_json"),
        (
            "",
            Some("application/json"),
            r#""user.login""#,
            400,
            "malformed_json",
        ),
        (
            "",
            Some("application/json"),
            r#"[{"type": "a.b"}"#,
            400,
            "malformed_json",
        ),
        (
            "",
            Some("application/json"),
            r#"{"type": "a.b"} {"type": "a.c"}"#,
            400,
            "malformed_json",
        ),
        ("", Some("application/json"), "", 400, "empty_body"),
        ("", Some("application/json"), "  \n ", 400, "empty_body"),
        ("", Some("application/json"), "[]", 400, "empty_body"),
        (
            "",
            Some("application/json"),
            "[1, \"x\", null]",
            400,
            "invalid_events",
        ),
        ("", Some("text/plain"), valid, 415, "unsupported_media_type"),
        (
            "",
            Some("application/x-www-form-urlencoded"),
            valid,
            415,
            "unsupported_media_type",
        ),
        (
            "?wait=soon",
            Some("application/json"),
            valid,
            400,
            "invalid_parameter",
        ),
        (
            "?proof=maybe",
            Some("application/json"),
            valid,
            400,
            "invalid_parameter",
        ),
        (
            "?colour=red",
            Some("application/json"),
            valid,
            400,
            "invalid_parameter",
        ),
    ];
    for (query, content_type, body, status, code) in cases {
        let mut request = server.request(
            reqwest::Method::POST,
            &format!("/api/v1/events{query}"),
            Some(&publisher),
        );
        if let Some(content_type) = content_type {
            request = request.header("content-type", *content_type);
        }
        let reply = server.send(request.body(body.to_string())).await;
        assert_eq!(
            (reply.status, reply.code().as_deref()),
            (*status, Some(*code)),
            "{query} {content_type:?} {body:?}: {}",
            reply.text()
        );
    }
    assert_eq!(log_size(&server, T).await, before, "nothing was stored");

    // `application/json; charset=utf-8` and `+json` types are JSON.
    for content_type in [
        "application/json; charset=utf-8",
        "application/vnd.veritrail+json",
    ] {
        let reply = server
            .send(
                server
                    .request(reqwest::Method::POST, "/api/v1/events", Some(&publisher))
                    .header("content-type", content_type)
                    .body(valid),
            )
            .await;
        reply.expect(200, None);
    }
    server.stop().await;
}

#[tokio::test]
async fn bodies_and_batches_over_the_limits_are_refused_whole() {
    let server = TestServer::start_with(|config| {
        config.limits.max_body_bytes = 2048;
        config.limits.max_batch_events = 5;
    })
    .await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let before = log_size(&server, T).await;

    // One event whose details make the body larger than the limit.
    let big = json!({"type": "a.big", "details": {"blob": "x".repeat(3000)}});
    let reply = server
        .post_json("/api/v1/events", Some(&publisher), &big)
        .await;
    reply.expect(413, Some("too_large"));
    // Many small events adding up to more than the limit.
    let many: Vec<Value> = (0..5)
        .map(|i| json!({"id": format!("big-{i}"), "type": "a.b", "summary": "y".repeat(500)}))
        .collect();
    let reply = server
        .post_json("/api/v1/events", Some(&publisher), &json!(many))
        .await;
    reply.expect(413, Some("too_large"));
    // More events than the batch limit, in a small body.
    let six: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("s{i}"), "type": "a.b"}))
        .collect();
    let reply = server
        .post_json("/api/v1/events", Some(&publisher), &json!(six))
        .await;
    reply.expect(413, Some("too_large"));
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .expect("message")
            .contains('5')
    );
    assert_eq!(log_size(&server, T).await, before, "nothing was stored");

    // At the limits is fine.
    let reply = server
        .post_json("/api/v1/events", Some(&publisher), &json!(six[..5]))
        .await;
    reply.expect(200, None);
    assert_eq!(log_size(&server, T).await, before + 5);
    server.stop().await;
}

#[tokio::test]
async fn a_retry_by_id_returns_the_original_receipt_and_stores_nothing() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let batch = json!([
        {"id": "r0", "type": "a.b"},
        {"id": "r1", "type": "a.b"},
        {"id": "r2", "type": "a.b"},
    ]);
    let first = server
        .post_json("/api/v1/events", Some(&publisher), &batch)
        .await;
    let first = receipts(&first.json());
    assert!(first.receipts.iter().all(|receipt| !receipt.duplicate));

    let again = server
        .post_json("/api/v1/events", Some(&publisher), &batch)
        .await;
    again.expect(200, None);
    let again = receipts(&again.json());
    assert!(again.receipts.iter().all(|receipt| receipt.duplicate));
    for (a, b) in first.receipts.iter().zip(&again.receipts) {
        assert_eq!((a.seq, &a.leaf_hash, &a.id), (b.seq, &b.leaf_hash, &b.id));
    }
    assert_eq!(again.tree_size, first.tree_size);
    assert_eq!(log_size(&server, T).await, first.tree_size);

    // Mixed: old ids keep their seq, the new one is stored once, after them.
    let mixed = server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!([{"id": "r1", "type": "a.b"}, {"id": "r3", "type": "a.b"}]),
        )
        .await;
    let mixed = receipts(&mixed.json());
    assert_eq!(mixed.receipts[0].seq, first.receipts[1].seq);
    assert!(mixed.receipts[0].duplicate);
    assert_eq!(mixed.receipts[1].seq, first.tree_size);
    assert!(!mixed.receipts[1].duplicate);
    assert_eq!(mixed.tree_size, first.tree_size + 1);

    // The same id twice in one request: stored once, both receipts name it.
    let twice = server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!([
                {"id": "dup", "type": "a.b", "summary": "first"},
                {"id": "other", "type": "a.b"},
                {"id": "dup", "type": "a.b", "summary": "second"},
            ]),
        )
        .await;
    twice.expect(200, None);
    let twice = receipts(&twice.json());
    let size = first.tree_size + 1;
    assert_eq!(twice.receipts[0].seq, size);
    assert!(!twice.receipts[0].duplicate);
    assert_eq!(twice.receipts[1].seq, size + 1);
    assert_eq!(twice.receipts[2].seq, size);
    assert_eq!(twice.receipts[2].leaf_hash, twice.receipts[0].leaf_hash);
    assert!(twice.receipts[2].duplicate);
    assert_eq!(twice.tree_size, size + 2);
    assert_eq!(log_size(&server, T).await, size + 2);
    // The first one of the request is what was stored.
    let viewer = server.client(&server.key(T, Role::Viewer).await);
    assert_eq!(
        viewer.record(size).await.expect("record").record["summary"],
        "first"
    );
    server.stop().await;
}

#[tokio::test]
async fn wait_searchable_returns_once_search_finds_the_events() {
    // A search commit interval far longer than the test: only the ingest's own wait can
    // make the events searchable in time.
    let server = TestServer::start_with(|config| config.search.commit_interval_ms = 60_000).await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let viewer = server.client(&server.key(T, Role::Viewer).await);
    for round in 0..3 {
        let events: Vec<Value> = (0..20)
            .map(|i| json!({"id": format!("w{round}-{i}"), "type": "wait.test", "correlation_id": format!("round-{round}")}))
            .collect();
        let reply = server
            .send(
                server
                    .request(
                        reqwest::Method::POST,
                        "/api/v1/events?wait=searchable",
                        Some(&publisher),
                    )
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&events).expect("json")),
            )
            .await;
        reply.expect(200, None);
        let tree_size = receipts(&reply.json()).tree_size;
        let page = viewer
            .search(&SearchParams {
                correlation_id: Some(format!("round-{round}")),
                limit: Some("100".into()),
                ..SearchParams::default()
            })
            .await
            .expect("search");
        assert_eq!(page.events.len(), 20, "round {round}");
        assert!(page.indexed_size >= tree_size);
    }
    server.stop().await;
}

#[tokio::test]
async fn receipt_proofs_verify_against_the_checkpoint_signed_by_the_log_key() {
    let server = TestServer::start_with(|config| config.origin = "audit.example.test".into()).await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let viewer = server.client(&server.key(T, Role::Viewer).await);
    let key = viewer.log_key().await.expect("log key");
    assert_eq!(key.origin, format!("audit.example.test/{T}"));

    let mut all = Vec::new();
    for round in 0..4 {
        // Sizes that exercise different tree shapes; the last round repeats ids.
        let n = [1, 6, 13, 3][round];
        let events: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("p{}-{i}", if round == 3 { 1 } else { round }), "type": "proof.test"}))
            .collect();
        let reply = server
            .post_json(
                "/api/v1/events?proof=true",
                Some(&publisher),
                &json!(events),
            )
            .await;
        reply.expect(200, None);
        let reply = receipts(&reply.json());
        let checkpoint = open_checkpoint(&reply.checkpoint, &key.verifier_key);
        assert_eq!(checkpoint.origin(), key.origin);
        assert_eq!(checkpoint.size(), reply.tree_size);
        for receipt in &reply.receipts {
            verify_receipt(receipt, &checkpoint)
                .unwrap_or_else(|err| panic!("round {round} seq {}: {err}", receipt.seq));
            // A wrong leaf does not verify: the check is real.
            let mut forged = receipt.clone();
            forged.leaf_hash =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
            assert!(verify_receipt(&forged, &checkpoint).is_err());
        }
        all.extend(reply.receipts);
    }
    // Without proof=true, no proofs.
    let reply = server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!({"type": "proof.none"}),
        )
        .await;
    assert!(
        receipts(&reply.json()).receipts[0]
            .inclusion_proof
            .is_none()
    );
    assert!(all.iter().filter(|receipt| receipt.duplicate).count() == 3);
    server.stop().await;
}
