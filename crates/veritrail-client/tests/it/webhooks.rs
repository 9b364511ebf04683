//! The webhook methods of [`Client`] against the stub: method, path, body and reply.

use std::time::Duration;

use veritrail_api::{
    WebhookAttemptParams, WebhookFilter, WebhookInput, WebhookPatch, WebhookRedeliverInput,
    WebhookRotateInput,
};
use veritrail_client::{Client, ClientOptions, RetryPolicy};

use crate::stub::{Reply, Stub};

fn webhook() -> serde_json::Value {
    serde_json::json!({
        "id": "wh_0123456789abcdef", "tenant": "acme", "url": "https://hooks.example.com/a",
        "description": null, "filter": {"types": ["user.*"], "categories": [], "outcomes": []},
        "format": "standard", "grouping": "every_single", "enabled": true,
        "disabled_reason": null, "created_at": "2025-01-01T00:00:00.000Z",
        "updated_at": "2025-01-01T00:00:00.000Z",
        "secrets": [{"created_at": "2025-01-01T00:00:00.000Z", "expires_at": null}],
        "next_seq": 4, "log_size": 9, "failing_since": null
    })
}

fn attempt() -> serde_json::Value {
    serde_json::json!({
        "id": 3, "message_id": "msg_1", "kind": "ping", "seq": null, "occurrence": 0,
        "attempted_at": "2025-01-01T00:00:00.000Z", "status": 204, "latency_ms": 1.5,
        "error": null, "delivered": true
    })
}

#[tokio::test]
async fn webhook_routes_methods_and_bodies() {
    let stub = Stub::start(|_, request| {
        let id = "/api/v1/webhooks/wh_0123456789abcdef";
        match (request.method.as_str(), request.path()) {
            ("POST", "/api/v1/webhooks") => Reply::json(
                201,
                &serde_json::json!({"webhook": webhook(), "secret": "whsec_abc"}),
            ),
            ("GET", "/api/v1/webhooks") => {
                Reply::json(200, &serde_json::json!({"webhooks": [webhook()]}))
            }
            ("GET" | "PATCH", path) if path == id => Reply::json(200, &webhook()),
            ("DELETE", path) if path == id => Reply::Response {
                status: 204,
                headers: vec![],
                body: Vec::new(),
            },
            ("POST", path) if path == format!("{id}/rotate") => Reply::json(
                200,
                &serde_json::json!({"webhook": webhook(), "secret": "whsec_new"}),
            ),
            ("GET", path) if path == format!("{id}/attempts") => Reply::json(
                200,
                &serde_json::json!({"attempts": [attempt()], "next_before": 3}),
            ),
            ("POST", path) if path == format!("{id}/redeliver") => Reply::json(
                202,
                &serde_json::json!({"queued": 2, "message_ids": ["msg_a", "msg_b"]}),
            ),
            ("POST", path) if path == format!("{id}/ping") => Reply::json(200, &attempt()),
            (method, path) => panic!("unexpected {method} {path}"),
        }
    })
    .await;
    let options = ClientOptions {
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let client = Client::with_options(&stub.url, "vt_test", &options).expect("client");
    let id = "wh_0123456789abcdef";

    let created = client
        .create_webhook(&WebhookInput {
            url: "https://hooks.example.com/a".into(),
            description: None,
            filter: WebhookFilter {
                types: vec!["user.*".into()],
                ..WebhookFilter::default()
            },
            format: None,
            grouping: Some("60s".into()),
            secret: None,
            start_seq: Some(0),
            enabled: None,
        })
        .await
        .expect("create");
    assert_eq!(created.secret, "whsec_abc");
    assert_eq!(created.webhook.id, id);
    assert_eq!(client.webhooks().await.expect("list").webhooks.len(), 1);
    assert_eq!(client.webhook(id).await.expect("get").next_seq, 4);
    let patch = WebhookPatch {
        enabled: Some(false),
        ..WebhookPatch::default()
    };
    client.update_webhook(id, &patch).await.expect("update");
    client.delete_webhook(id).await.expect("delete");
    let rotated = client
        .rotate_webhook_secret(
            id,
            &WebhookRotateInput {
                secret: None,
                overlap_seconds: Some(0),
            },
        )
        .await
        .expect("rotate");
    assert_eq!(rotated.secret, "whsec_new");
    let attempts = client
        .webhook_attempts(
            id,
            &WebhookAttemptParams {
                before: Some(10),
                limit: Some(1),
            },
        )
        .await
        .expect("attempts");
    assert_eq!(attempts.next_before, Some(3));
    assert_eq!(attempts.attempts[0].status, Some(204));
    let queued = client
        .redeliver_webhook(
            id,
            &WebhookRedeliverInput {
                from_seq: Some(2),
                to_seq: Some(5),
                ..WebhookRedeliverInput::default()
            },
        )
        .await
        .expect("redeliver");
    assert_eq!(queued.queued, 2);
    assert!(client.ping_webhook(id).await.expect("ping").delivered);

    let requests = stub.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "POST", "GET", "GET", "PATCH", "DELETE", "POST", "GET", "POST", "POST"
        ]
    );
    assert_eq!(
        requests[0].json(),
        serde_json::json!({
            "url": "https://hooks.example.com/a",
            "filter": {"types": ["user.*"], "categories": [], "outcomes": []},
            "grouping": "60s", "start_seq": 0
        })
    );
    assert_eq!(requests[3].json(), serde_json::json!({"enabled": false}));
    assert_eq!(
        requests[5].json(),
        serde_json::json!({"overlap_seconds": 0})
    );
    assert_eq!(requests[6].query("before").as_deref(), Some("10"));
    assert_eq!(requests[6].query("limit").as_deref(), Some("1"));
    assert_eq!(
        requests[7].json(),
        serde_json::json!({"from_seq": 2, "to_seq": 5})
    );
    assert!(requests[8].body.is_empty());
}

#[tokio::test]
async fn a_webhook_id_stays_one_path_segment() {
    let stub = Stub::start(|_, _| Reply::error(404, "not_found", "no such subscription")).await;
    let client = Client::new(&stub.url, "vt_test").expect("client");
    let err = client.webhook("wh_1/../x").await.expect_err("404");
    assert_eq!(err.code(), Some("not_found"));
    assert_eq!(stub.requests()[0].path(), "/api/v1/webhooks/wh_1%2F..%2Fx");
    let err = client.delete_webhook("wh_2").await.expect_err("404");
    assert_eq!(err.status(), Some(404));
}
