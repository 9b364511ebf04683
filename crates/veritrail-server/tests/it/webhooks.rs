//! Webhook subscriptions over real HTTP, delivering to real HTTP receivers on loopback:
//! VGS's user-action notification envelopes field for field, Standard Webhooks signatures (checked by the
//! official library too, see `receiver::verify_all`), receivers that are down, answer 500,
//! 429 with Retry-After or 410, or never answer, secret rotation, grouping windows,
//! redelivery, pings, the SSRF guard and the management API with its audit events.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use veritrail_api::Role;
use veritrail_client::IngestOptions;
use veritrail_server::Config;

use crate::receiver::{Delivery, Receiver, Reply, check_all, verify_all, verify_all_under_each};
use crate::support::{TestServer, eventually};

/// Loopback receivers allowed, quick retries, short attempt timeout.
fn tune(config: &mut Config) {
    config.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
    config.webhooks.retry_initial_ms = 50;
    config.webhooks.retry_max_ms = 400;
    config.webhooks.attempt_timeout_ms = 1_000;
}

struct Tenant {
    owner: String,
    publisher: String,
    viewer: String,
}

async fn tenant(server: &TestServer, id: &str) -> Tenant {
    let owner = server.tenant(id).await;
    Tenant {
        owner,
        publisher: server.key(id, Role::Publisher).await,
        viewer: server.key(id, Role::Viewer).await,
    }
}

/// Creates a subscription; returns `(id, secret)`.
async fn subscribe(server: &TestServer, owner: &str, body: Value) -> (String, String) {
    let reply = server
        .post_json("/api/v1/webhooks", Some(owner), &body)
        .await;
    reply.expect(201, None);
    let created = reply.json();
    (
        created["webhook"]["id"].as_str().expect("id").to_owned(),
        created["secret"].as_str().expect("secret").to_owned(),
    )
}

async fn send(server: &TestServer, publisher: &str, events: Vec<Value>) -> Vec<u64> {
    let events: Vec<veritrail_api::EventInput> = events
        .into_iter()
        .map(|event| serde_json::from_value(event).expect("event"))
        .collect();
    server
        .client(publisher)
        .send(&events, IngestOptions::default())
        .await
        .expect("sent")
        .receipts
        .iter()
        .map(|receipt| receipt.seq)
        .collect()
}

fn numbered(prefix: &str, range: std::ops::Range<usize>, event_type: &str) -> Vec<Value> {
    range
        .map(|i| json!({"id": format!("{prefix}-{i}"), "type": event_type, "actor": {"id": format!("u{i}")}}))
        .collect()
}

/// The usual start: a server with [`tune`], tenant `acme`, a receiver, and a subscription
/// of `user.*` events to it.
struct Setup {
    server: TestServer,
    acme: Tenant,
    receiver: Receiver,
    id: String,
    secret: String,
}

async fn setup() -> Setup {
    let server = TestServer::start_with(tune).await;
    let acme = tenant(&server, "acme").await;
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("hook"), "filter": {"types": ["user.*"]}}),
    )
    .await;
    Setup {
        server,
        acme,
        receiver,
        id,
        secret,
    }
}

/// A subscription as `GET /api/v1/webhooks/{id}` shows it.
async fn show(server: &TestServer, owner: &str, id: &str) -> Value {
    let reply = server
        .get(&format!("/api/v1/webhooks/{id}"), Some(owner))
        .await;
    reply.expect(200, None);
    reply.json()
}

/// Waits until the subscription is disabled; returns it.
async fn until_disabled(server: &TestServer, owner: &str, id: &str) -> Value {
    eventually("the subscription is disabled", 10, || async {
        show(server, owner, id).await["enabled"] == json!(false)
    })
    .await;
    show(server, owner, id).await
}

/// The seq each `standard` delivery is about.
fn seq_of(delivery: &Delivery) -> u64 {
    delivery.json()["data"]["seq"].as_u64().expect("data.seq")
}

/// Every seq in `want` delivered; copies of a message are identical (same id, same body);
/// the first deliveries come in seq order.
fn assert_all_once_in_order(deliveries: &[Delivery], want: &[u64]) {
    let mut bodies: BTreeMap<u64, (&str, &[u8])> = BTreeMap::new();
    let mut first_order = Vec::new();
    for delivery in deliveries.iter().filter(|d| d.answered == Some(204)) {
        let seq = seq_of(delivery);
        match bodies.get(&seq) {
            Some((id, body)) => {
                assert_eq!(*id, delivery.webhook_id, "a copy keeps its webhook-id");
                assert_eq!(*body, delivery.body.as_slice(), "a copy keeps its body");
            }
            None => {
                bodies.insert(seq, (&delivery.webhook_id, &delivery.body));
                first_order.push(seq);
            }
        }
    }
    assert_eq!(first_order, want, "each event delivered, in seq order");
}

#[tokio::test(flavor = "multi_thread")]
async fn envelopes_match_the_vgs_examples_and_standard_payloads_carry_the_record() {
    let server = TestServer::start_with(tune).await;
    let acme = tenant(&server, "acme").await;
    server
        .send(
            server
                .request(Method::PUT, "/api/v1/catalog/settings", Some(&acme.owner))
                .header("content-type", "application/json")
                .body(r#"{"policy": "lenient", "adopted": ["vgs-user-actions"]}"#),
        )
        .await
        .expect(200, None);
    let receiver = Receiver::start().await;
    let (envelope_id, envelope_secret) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("envelope"), "format": "envelope", "filter": {"types": ["user.*"]}}),
    )
    .await;
    let (standard_id, standard_secret) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("standard"), "filter": {"outcomes": ["failure"]}}),
    )
    .await;

    let examples = vgs_examples();
    assert_eq!(examples.len(), 6, "VGS documents six examples");
    let mut events: Vec<Value> = examples
        .iter()
        .enumerate()
        .map(|(i, example)| {
            json!({
                "id": format!("vgs-{i}"),
                "type": example["event"],
                "occurred_at": example["timestamp"],
                "actor": {"email": example["producer"]["user_email"]},
                "details": example["details"],
            })
        })
        .collect();
    events.push(json!({"id": "other", "type": "doc.opened", "outcome": "failure"}));
    let seqs = send(&server, &acme.publisher, events).await;

    let deliveries = receiver
        .wait_for(
            |all| {
                all.iter().filter(|d| d.path == "/envelope").count() >= 6
                    && all.iter().any(|d| d.path == "/standard")
            },
            Duration::from_secs(15),
        )
        .await;
    let envelopes: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| d.path == "/envelope")
        .collect();
    assert_eq!(
        envelopes.len(),
        6,
        "one message per user.* event, none for doc.opened"
    );
    for (delivery, example) in envelopes.iter().zip(&examples) {
        let got = delivery.json();
        assert_eq!(
            top_level_keys(&delivery.body),
            vgs_key_order(),
            "the keys in VGS's order"
        );
        let (want, got) = (
            example.as_object().expect("object"),
            got.as_object().expect("object"),
        );
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>(),
            "VGS's keys, in its order"
        );
        for (key, value) in want {
            assert_eq!(
                std::mem::discriminant(value),
                std::mem::discriminant(&got[key]),
                "the JSON type of {key} in {}",
                example["event"]
            );
        }
        for key in [
            "event",
            "description",
            "details",
            "producer",
            "scope",
            "grouping",
            "occurrence",
            "timestamp",
        ] {
            assert_eq!(got[key], want[key], "{key} of {}", example["event"]);
        }
        // VGS's user.mfa_deleted example repeats the summary of the one before it.
        if example["event"] != "user.mfa_deleted" {
            assert_eq!(
                got["summary"], want["summary"],
                "summary of {}",
                example["event"]
            );
        }
        assert_eq!(
            got["id"],
            json!(delivery.webhook_id),
            "id is the webhook-id"
        );
        assert_eq!(got["integration_id"], json!(envelope_id));
        assert_eq!(got["tenant"], json!("acme"));
        assert_eq!(got["org_id"], json!("acme"));
        assert_eq!(delivery.content_type.as_deref(), Some("application/json"));
    }
    let ids: std::collections::HashSet<&str> =
        envelopes.iter().map(|d| d.webhook_id.as_str()).collect();
    assert_eq!(ids.len(), 6, "every message has its own id");
    verify_all(
        &envelopes.iter().map(|d| (*d).clone()).collect::<Vec<_>>(),
        &[&envelope_secret],
    );

    let standard: Vec<Delivery> = deliveries
        .iter()
        .filter(|d| d.path == "/standard")
        .cloned()
        .collect();
    assert_eq!(standard.len(), 1, "only the failure matches");
    let body = standard[0].json();
    assert_eq!(body["type"], json!("doc.opened"));
    assert_eq!(body["data"]["seq"], json!(seqs[6]));
    assert_eq!(body["data"]["id"], json!("other"));
    assert_eq!(body["data"]["tenant"], json!("acme"));
    assert!(
        body["timestamp"]
            .as_str()
            .expect("timestamp")
            .ends_with('Z')
    );
    verify_all(&standard, &[&standard_secret]);
    assert!(
        check_all(&standard, &[&envelope_secret]).is_err(),
        "another subscription's secret does not verify"
    );
    // The subscription shows its progress, never its secret.
    let shown = server
        .get(
            &format!("/api/v1/webhooks/{standard_id}"),
            Some(&acme.owner),
        )
        .await;
    shown.expect(200, None);
    assert!(!shown.text().contains(&standard_secret));
    eventually("progress reaches the log's end", 5, || async {
        let shown = server
            .get(
                &format!("/api/v1/webhooks/{standard_id}"),
                Some(&acme.owner),
            )
            .await
            .json();
        shown["next_seq"] == shown["log_size"]
    })
    .await;
}

/// The top-level keys of a JSON object, in the order written.
fn top_level_keys(json: &[u8]) -> Vec<String> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                keys.push(key);
            }
            Ok(keys)
        }
    }
    serde::Deserializer::deserialize_map(&mut serde_json::Deserializer::from_slice(json), Keys)
        .expect("a JSON object")
}

/// The keys of VGS's first example, in the document's order.
fn vgs_key_order() -> Vec<String> {
    let path = format!(
        "{}/../../testdata/seeds/003-webhook-notifications.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let block = text
        .split("```")
        .skip(1)
        .step_by(2)
        .find(|block| block.trim().starts_with('{'))
        .expect("an example");
    top_level_keys(block.trim().as_bytes())
}

/// The JSON examples of VGS's "Monitoring User Actions Programmatically", in order.
fn vgs_examples() -> Vec<Value> {
    let path = format!(
        "{}/../../testdata/seeds/003-webhook-notifications.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    text.split("```")
        .skip(1)
        .step_by(2)
        .filter_map(|block| serde_json::from_str(block.trim()).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_down_gets_everything_in_order_when_it_is_back() {
    let Setup {
        server,
        acme,
        receiver,
        id,
        secret,
    } = setup().await;
    let mut want = send(&server, &acme.publisher, numbered("a", 0..5, "user.login")).await;
    receiver
        .wait_for(|all| all.len() >= 5, Duration::from_secs(10))
        .await;
    receiver.stop().await;
    want.extend(send(&server, &acme.publisher, numbered("b", 0..20, "user.login")).await);
    // Attempts fail while it is down, and say why.
    eventually("failed attempts are logged", 10, || async {
        let attempts = server
            .get(
                &format!("/api/v1/webhooks/{id}/attempts"),
                Some(&acme.owner),
            )
            .await
            .json();
        attempts["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .any(|a| {
                a["status"].is_null() && a["error"].as_str().is_some_and(|e| e.contains("connect"))
            })
    })
    .await;
    let shown = show(&server, &acme.owner, &id).await;
    assert!(shown["failing_since"].is_string(), "{shown}");
    receiver.restart().await;
    let deliveries = receiver
        .wait_for(
            |all| all.iter().filter(|d| d.answered == Some(204)).count() >= 25,
            Duration::from_secs(20),
        )
        .await;
    assert_all_once_in_order(&deliveries, &want);
    verify_all(&deliveries, &[&secret]);
    // The metrics count both kinds of attempt.
    let metrics = server.get("/metrics", None).await.text();
    let counter = |result: &str| -> u64 {
        let prefix = format!("veritrail_webhook_attempts_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in the metrics"))
    };
    assert!(counter("failed") >= 1);
    assert!(counter("delivered") >= 25);
    assert!(metrics.contains("veritrail_webhook_subscriptions{state=\"enabled\"} 1"));
    eventually("failing_since clears after a success", 5, || async {
        show(&server, &acme.owner, &id).await["failing_since"].is_null()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_retried_retry_after_is_honoured_and_a_hung_receiver_times_out() {
    let server = TestServer::start_with(tune).await;
    let acme = tenant(&server, "acme").await;
    let receiver = Receiver::start().await;
    receiver.push_replies([
        Reply::Status(500),
        Reply::Status(503),
        Reply::Hang,
        Reply::StatusRetryAfter(429, 2),
    ]);
    let (id, secret) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("hook"), "filter": {"types": ["user.*"]}}),
    )
    .await;
    let want = send(&server, &acme.publisher, numbered("a", 0..3, "user.login")).await;
    let deliveries = receiver
        .wait_for(
            |all| all.iter().filter(|d| d.answered == Some(204)).count() >= 3,
            Duration::from_secs(20),
        )
        .await;
    // The first message took five attempts, with one id; the others one each.
    assert_eq!(
        deliveries.len(),
        7,
        "{:?}",
        deliveries.iter().map(|d| d.answered).collect::<Vec<_>>()
    );
    assert!(
        deliveries[..5]
            .iter()
            .all(|d| d.webhook_id == deliveries[0].webhook_id)
    );
    assert_eq!(
        deliveries.iter().map(|d| d.answered).collect::<Vec<_>>(),
        [
            Some(500),
            Some(503),
            None,
            Some(429),
            Some(204),
            Some(204),
            Some(204)
        ]
    );
    let waited = deliveries[4].at.duration_since(deliveries[3].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 honoured, waited {waited:?}"
    );
    assert_all_once_in_order(&deliveries, &want);
    verify_all(&deliveries, &[&secret]);
    // The attempt log tells the story, newest first.
    let log = server
        .get(
            &format!("/api/v1/webhooks/{id}/attempts"),
            Some(&acme.owner),
        )
        .await
        .json();
    let attempts = log["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 7, "{log}");
    let oldest_first: Vec<&Value> = attempts.iter().rev().collect();
    assert_eq!(oldest_first[0]["status"], json!(500));
    assert_eq!(oldest_first[2]["status"], Value::Null);
    assert!(
        oldest_first[2]["error"]
            .as_str()
            .expect("error")
            .contains("no answer"),
        "{}",
        oldest_first[2]
    );
    assert_eq!(oldest_first[4]["delivered"], json!(true));
    assert_eq!(
        oldest_first[4]["message_id"],
        json!(deliveries[0].webhook_id)
    );
    assert!(
        oldest_first
            .iter()
            .all(|a| a["latency_ms"].as_f64().is_some())
    );
    // Pages by `before`.
    let page = server
        .get(
            &format!("/api/v1/webhooks/{id}/attempts?limit=3"),
            Some(&acme.owner),
        )
        .await
        .json();
    assert_eq!(page["attempts"].as_array().expect("page").len(), 3);
    let before = page["next_before"].as_u64().expect("more");
    let next = server
        .get(
            &format!("/api/v1/webhooks/{id}/attempts?limit=10&before={before}"),
            Some(&acme.owner),
        )
        .await
        .json();
    assert_eq!(next["attempts"].as_array().expect("page").len(), 4);
    assert!(next["next_before"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_410_disables_the_subscription_with_an_audit_event() {
    let server = TestServer::start_with(tune).await;
    let acme = tenant(&server, "acme").await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::Status(410));
    let (id, _) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("gone"), "filter": {"types": ["user.*"]}}),
    )
    .await;
    send(&server, &acme.publisher, numbered("a", 0..3, "user.login")).await;
    let shown = until_disabled(&server, &acme.owner, &id).await;
    assert!(
        shown["disabled_reason"]
            .as_str()
            .expect("reason")
            .contains("410"),
        "{shown}"
    );
    assert_eq!(
        receiver.deliveries().len(),
        1,
        "nothing is sent after the 410"
    );
    let disabled = search(&server, &acme.viewer, "type=veritrail.webhook.disabled").await;
    assert_eq!(disabled.len(), 1, "one audit event");
    assert_eq!(disabled[0]["actor"]["id"], json!("veritrail"));
    assert_eq!(disabled[0]["details"]["subscription_id"], json!(id));
    // Enabled again, it resumes where it stopped: the first event again, then the rest.
    receiver.set_default(Reply::Status(204));
    server
        .send(
            server
                .request(
                    Method::PATCH,
                    &format!("/api/v1/webhooks/{id}"),
                    Some(&acme.owner),
                )
                .header("content-type", "application/json")
                .body(r#"{"enabled": true}"#),
        )
        .await
        .expect(200, None);
    let deliveries = receiver
        .wait_for(
            |all| all.iter().filter(|d| d.answered == Some(204)).count() >= 3,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        deliveries[0].webhook_id, deliveries[1].webhook_id,
        "the 410'd message is sent again"
    );
}

async fn search(server: &TestServer, viewer: &str, query: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = server
            .get(&format!("/api/v1/events?{query}"), Some(viewer))
            .await;
        reply.expect(200, None);
        let page = reply.json();
        if page["indexed_size"] == page["log_size"] {
            return page["events"].as_array().expect("events").clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn during_a_rotation_both_signatures_verify_and_after_it_only_the_new_one() {
    let server = TestServer::start_with(tune).await;
    let acme = tenant(&server, "acme").await;
    let receiver = Receiver::start().await;
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (id, secret) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("hook"), "secret": old, "filter": {"types": ["user.*"]}}),
    )
    .await;
    assert_eq!(secret, old, "a supplied secret is used");
    send(&server, &acme.publisher, numbered("a", 0..2, "user.login")).await;
    let before = receiver
        .wait_for(|all| all.len() >= 2, Duration::from_secs(10))
        .await;
    verify_all(&before, &[old]);

    let rotated = server
        .post_json(
            &format!("/api/v1/webhooks/{id}/rotate"),
            Some(&acme.owner),
            &json!({"overlap_seconds": 3600}),
        )
        .await;
    rotated.expect(200, None);
    let new = rotated.json()["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(
        rotated.json()["webhook"]["secrets"]
            .as_array()
            .expect("secrets")
            .len(),
        2
    );
    assert!(
        !rotated.json()["webhook"].to_string().contains(&new[6..]),
        "secrets are not shown"
    );
    send(&server, &acme.publisher, numbered("b", 0..3, "user.login")).await;
    let during = receiver
        .wait_for(|all| all.len() >= 5, Duration::from_secs(10))
        .await;
    let during = &during[2..];
    assert!(
        during
            .iter()
            .all(|d| d.webhook_signature.split(' ').count() == 2)
    );
    verify_all_under_each(during, &[old, &new]);

    // Ending the overlap: only the new secret signs.
    let ended = server
        .post_json(
            &format!("/api/v1/webhooks/{id}/rotate"),
            Some(&acme.owner),
            &json!({"overlap_seconds": 0}),
        )
        .await;
    ended.expect(200, None);
    let newest = ended.json()["secret"].as_str().expect("secret").to_owned();
    send(&server, &acme.publisher, numbered("c", 0..2, "user.login")).await;
    let after = receiver
        .wait_for(|all| all.len() >= 7, Duration::from_secs(10))
        .await;
    let after = &after[5..];
    verify_all(after, &[&newest]);
    assert!(
        check_all(after, &[&new]).is_err(),
        "an expired secret no longer signs"
    );
    let audit = search(
        &server,
        &acme.viewer,
        "type=veritrail.webhook.secret_rotated",
    )
    .await;
    assert_eq!(audit.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grouping_window_folds_events_of_one_type_and_actor() {
    let server = TestServer::start_with(tune).await;
    let acme = tenant(&server, "acme").await;
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("hook"), "format": "envelope", "grouping": "2s", "filter": {"types": ["user.*"]}}),
    )
    .await;
    // One request is one batch: its events share their received time, so one window.
    let actor = |id: &str| json!({"id": id, "email": format!("{id}@example.com")});
    let events = vec![
        json!({"id": "1", "type": "user.login", "actor": actor("ann")}),
        json!({"id": "2", "type": "user.login", "actor": actor("bob")}),
        json!({"id": "3", "type": "user.login", "actor": actor("ann")}),
        json!({"id": "4", "type": "user.logout", "actor": actor("ann")}),
        json!({"id": "5", "type": "user.login", "actor": actor("ann")}),
        json!({"id": "6", "type": "user.login", "actor": actor("bob")}),
    ];
    let sent_at = std::time::Instant::now();
    let seqs = send(&server, &acme.publisher, events).await;
    let deliveries = receiver
        .wait_for(|all| all.len() >= 3, Duration::from_secs(10))
        .await;
    assert!(sent_at.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deliveries = if receiver.deliveries().len() > deliveries.len() {
        receiver.deliveries()
    } else {
        deliveries
    };
    assert_eq!(deliveries.len(), 3, "one message per type and actor");
    let got: Vec<(String, String, u64, String)> = deliveries
        .iter()
        .map(|d| {
            let body = d.json();
            (
                body["event"].as_str().expect("event").to_owned(),
                body["producer"]["user_email"]
                    .as_str()
                    .expect("email")
                    .to_owned(),
                body["occurrence"].as_u64().expect("occurrence"),
                body["grouping"].as_str().expect("grouping").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "user.login".into(),
                "ann@example.com".into(),
                3,
                "2s".into()
            ),
            (
                "user.login".into(),
                "bob@example.com".into(),
                2,
                "2s".into()
            ),
            (
                "user.logout".into(),
                "ann@example.com".into(),
                1,
                "2s".into()
            ),
        ]
    );
    assert!(
        deliveries[0].webhook_id.ends_with(&format!("_{}", seqs[0])),
        "named by the first event"
    );
    verify_all(&deliveries, &[&secret]);
    // A grouped message sent again is the same message: the window is found again.
    let again = server
        .post_json(
            &format!("/api/v1/webhooks/{id}/redeliver"),
            Some(&acme.owner),
            &json!({"message_id": deliveries[1].webhook_id}),
        )
        .await;
    again.expect(202, None);
    let all = receiver
        .wait_for(|all| all.len() >= 4, Duration::from_secs(10))
        .await;
    assert_eq!(all[3].webhook_id, deliveries[1].webhook_id);
    assert_eq!(
        all[3].body, deliveries[1].body,
        "the same group, the same body"
    );
    let range = server
        .post_json(
            &format!("/api/v1/webhooks/{id}/redeliver"),
            Some(&acme.owner),
            &json!({"from_seq": seqs[0], "to_seq": seqs[5]}),
        )
        .await;
    range.expect(202, None);
    assert_eq!(range.json()["queued"], json!(3), "{}", range.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivery_resends_the_same_message_and_a_ping_reports_the_answer() {
    let Setup {
        server,
        acme,
        receiver,
        id,
        secret,
    } = setup().await;
    let seqs = send(&server, &acme.publisher, numbered("a", 0..4, "user.login")).await;
    let first = receiver
        .wait_for(|all| all.len() >= 4, Duration::from_secs(10))
        .await;

    let one = server
        .post_json(
            &format!("/api/v1/webhooks/{id}/redeliver"),
            Some(&acme.owner),
            &json!({"message_id": first[1].webhook_id}),
        )
        .await;
    one.expect(202, None);
    assert_eq!(one.json()["queued"], json!(1));
    let range = server
        .post_json(
            &format!("/api/v1/webhooks/{id}/redeliver"),
            Some(&acme.owner),
            &json!({"from_seq": seqs[2], "to_seq": seqs[3]}),
        )
        .await;
    range.expect(202, None);
    let all = receiver
        .wait_for(|all| all.len() >= 7, Duration::from_secs(10))
        .await;
    assert_eq!(all[4].webhook_id, first[1].webhook_id);
    assert_eq!(all[4].body, first[1].body, "the same message");
    assert_eq!(all[5].webhook_id, first[2].webhook_id);
    assert_eq!(all[6].webhook_id, first[3].webhook_id);
    verify_all(&all, &[&secret]);
    for (body, code) in [
        (json!({}), "invalid_webhook"),
        (json!({"from_seq": 3, "to_seq": 1}), "invalid_webhook"),
        (json!({"message_id": "msg_nope_1"}), "not_found"),
        (json!({"from_seq": 0, "to_seq": 99999}), "invalid_webhook"),
    ] {
        let reply = server
            .post_json(
                &format!("/api/v1/webhooks/{id}/redeliver"),
                Some(&acme.owner),
                &body,
            )
            .await;
        assert_eq!(
            reply.code().as_deref(),
            Some(code),
            "{body}: {}",
            reply.text()
        );
    }

    let ping = server
        .post_json(
            &format!("/api/v1/webhooks/{id}/ping"),
            Some(&acme.owner),
            &json!({}),
        )
        .await;
    ping.expect(200, None);
    let attempt = ping.json();
    assert_eq!(attempt["status"], json!(204));
    assert_eq!(attempt["kind"], json!("ping"));
    assert_eq!(attempt["delivered"], json!(true));
    let pinged = receiver
        .wait_for(|all| all.len() >= 8, Duration::from_secs(5))
        .await;
    assert_eq!(pinged[7].json()["type"], json!("veritrail.webhook.ping"));
    assert_eq!(
        pinged[7].webhook_id,
        attempt["message_id"].as_str().expect("id")
    );
    verify_all(&pinged[7..], &[&secret]);
    receiver.set_default(Reply::Status(500));
    let failed = server
        .post_json(
            &format!("/api/v1/webhooks/{id}/ping"),
            Some(&acme.owner),
            &json!({}),
        )
        .await
        .json();
    assert_eq!(failed["status"], json!(500));
    assert_eq!(failed["delivered"], json!(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_are_checked_managed_by_their_roles_and_audited() {
    // No allow list: loopback and internal targets are refused.
    let server = TestServer::start().await;
    let acme = tenant(&server, "acme").await;
    let other = tenant(&server, "other").await;
    for (url, code) in [
        ("http://127.0.0.1:9/hook", "forbidden_target"),
        ("http://localhost:9/hook", "forbidden_target"),
        ("http://169.254.169.254/latest", "forbidden_target"),
        ("http://[::1]:9/", "forbidden_target"),
        ("http://10.0.0.1/", "forbidden_target"),
        ("ftp://example.com/", "invalid_webhook"),
        ("not a url", "invalid_webhook"),
    ] {
        let reply = server
            .post_json("/api/v1/webhooks", Some(&acme.owner), &json!({"url": url}))
            .await;
        reply.expect(422, Some(code));
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .expect("message")
                .contains("url"),
            "{}",
            reply.text()
        );
    }
    let server = {
        drop(server);
        TestServer::start_with(tune).await
    };
    let acme = tenant(&server, "acme").await;
    let other = {
        let _ = other;
        tenant(&server, "other").await
    };
    let receiver = Receiver::start().await;
    let url = receiver.url("hook");
    for (body, code) in [
        (json!({"url": url, "format": "xml"}), "invalid_webhook"),
        (
            json!({"url": url, "grouping": "sometimes"}),
            "invalid_webhook",
        ),
        (
            json!({"url": url, "filter": {"types": ["user*"]}}),
            "invalid_webhook",
        ),
        (
            json!({"url": url, "filter": {"outcomes": ["maybe"]}}),
            "invalid_webhook",
        ),
        (
            json!({"url": url, "secret": "whsec_short"}),
            "invalid_webhook",
        ),
        (json!({"url": url, "colour": "red"}), "malformed_json"),
    ] {
        let reply = server
            .post_json("/api/v1/webhooks", Some(&acme.owner), &body)
            .await;
        assert_eq!(
            reply.code().as_deref(),
            Some(code),
            "{body}: {}",
            reply.text()
        );
    }
    for key in [&acme.viewer, &acme.publisher] {
        server
            .post_json("/api/v1/webhooks", Some(key), &json!({"url": url}))
            .await
            .expect(403, Some("forbidden"));
        server
            .get("/api/v1/webhooks", Some(key))
            .await
            .expect(403, Some("forbidden"));
    }
    server
        .get("/api/v1/webhooks", None)
        .await
        .expect(401, Some("unauthenticated"));
    let (id, secret) = subscribe(
        &server,
        &acme.owner,
        json!({"url": url, "description": "SIEM"}),
    )
    .await;
    let admin = server.key("acme", Role::Admin).await;
    let listed = server.get("/api/v1/webhooks", Some(&admin)).await;
    listed.expect(200, None);
    assert_eq!(listed.json()["webhooks"][0]["id"], json!(id));
    assert!(
        !listed.text().contains(&secret[6..]),
        "the secret is shown only at creation"
    );
    // Another tenant sees none of it.
    server
        .get(&format!("/api/v1/webhooks/{id}"), Some(&other.owner))
        .await
        .expect(404, Some("not_found"));
    assert_eq!(
        server
            .get("/api/v1/webhooks", Some(&other.owner))
            .await
            .json()["webhooks"],
        json!([])
    );
    server
        .send(server.request(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&other.owner),
        ))
        .await
        .expect(404, Some("not_found"));
    // Changes.
    let patched = server
        .send(
            server
                .request(
                    Method::PATCH,
                    &format!("/api/v1/webhooks/{id}"),
                    Some(&acme.owner),
                )
                .header("content-type", "application/json")
                .body(r#"{"filter": {"types": ["user.*"]}, "grouping": "1m"}"#),
        )
        .await;
    patched.expect(200, None);
    assert_eq!(patched.json()["grouping"], json!("1m"));
    assert_eq!(patched.json()["filter"]["types"], json!(["user.*"]));
    server
        .send(
            server
                .request(
                    Method::PATCH,
                    &format!("/api/v1/webhooks/{id}"),
                    Some(&acme.owner),
                )
                .header("content-type", "application/json")
                .body(r#"{"url": "http://169.254.169.254/"}"#),
        )
        .await
        .expect(422, Some("forbidden_target"));
    server
        .send(server.request(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&acme.owner),
        ))
        .await
        .expect(204, None);
    server
        .get(&format!("/api/v1/webhooks/{id}"), Some(&acme.owner))
        .await
        .expect(404, Some("not_found"));
    let audit = search(&server, &acme.viewer, "type=veritrail.webhook.*").await;
    let mut types: Vec<&str> = audit
        .iter()
        .map(|r| r["type"].as_str().expect("type"))
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "veritrail.webhook.created",
            "veritrail.webhook.deleted",
            "veritrail.webhook.updated"
        ]
    );
    assert!(
        audit
            .iter()
            .all(|r| r["details"]["subscription_id"] == json!(id))
    );
    assert!(audit.iter().all(|r| !r.to_string().contains(&secret[6..])));
    assert!(other.viewer.starts_with("vt_"));
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_survives_a_restart_and_the_guard_is_applied_when_connecting() {
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start_in(dir.path().to_owned(), tune).await;
    let acme = tenant(&server, "acme").await;
    let receiver = Receiver::start().await;
    let early = send(
        &server,
        &acme.publisher,
        numbered("early", 0..3, "user.login"),
    )
    .await;
    // From a given seq: the events stored before the subscription too.
    let (id, secret) = subscribe(&server, &acme.owner, json!({"url": receiver.url("hook"), "start_seq": early[0], "filter": {"types": ["user.*"]}})).await;
    // A name, not an address: the guard judges what it resolves to at each connection.
    let (named, _) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("named").replace("127.0.0.1", "localhost"), "filter": {"types": ["user.logout"]}}),
    )
    .await;
    receiver
        .wait_for(|all| all.len() >= 3, Duration::from_secs(10))
        .await;
    receiver.stop().await;
    let mut want = early.clone();
    want.extend(
        send(
            &server,
            &acme.publisher,
            numbered("during", 0..10, "user.login"),
        )
        .await,
    );
    server.stop().await;

    // Back with no allow list: the stored subscriptions stay, but nothing reaches loopback.
    receiver.restart().await;
    let server = TestServer::start_in(dir.path().to_owned(), |config| {
        tune(config);
        config.webhooks.allow_networks.clear();
    })
    .await;
    let bye = send(
        &server,
        &acme.publisher,
        vec![json!({"id": "bye", "type": "user.logout"})],
    )
    .await;
    eventually("refused attempts are logged", 10, || async {
        let log = server
            .get(
                &format!("/api/v1/webhooks/{named}/attempts"),
                Some(&acme.owner),
            )
            .await
            .json();
        log["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .any(|a| {
                a["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("forbidden target") && e.contains("loopback"))
            })
    })
    .await;
    assert_eq!(
        receiver.deliveries().len(),
        3,
        "nothing got through the guard"
    );
    server.stop().await;

    // Allowed again: everything stored while the receiver was away arrives, in order.
    let server = TestServer::start_in(dir.path().to_owned(), tune).await;
    let deliveries = receiver
        .wait_for(
            |all| {
                all.iter()
                    .filter(|d| d.path == "/hook")
                    .map(seq_of)
                    .collect::<std::collections::HashSet<_>>()
                    .len()
                    >= 14
            },
            Duration::from_secs(20),
        )
        .await;
    let hook: Vec<Delivery> = deliveries
        .iter()
        .filter(|d| d.path == "/hook")
        .cloned()
        .collect();
    want.extend(bye);
    assert_all_once_in_order(&hook, &want);
    verify_all(&hook, &[&secret]);
    receiver
        .wait_for(
            |all| all.iter().any(|d| d.path == "/named"),
            Duration::from_secs(10),
        )
        .await;
    let _ = (id, server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_failing_for_too_long_is_disabled_with_an_audit_event() {
    let server = TestServer::start_with(|config| {
        tune(config);
        config.webhooks.disable_after_secs = 1;
    })
    .await;
    let acme = tenant(&server, "acme").await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::Status(500));
    let (id, _) = subscribe(
        &server,
        &acme.owner,
        json!({"url": receiver.url("hook"), "filter": {"types": ["user.*"]}}),
    )
    .await;
    send(&server, &acme.publisher, numbered("a", 0..2, "user.login")).await;
    let shown = until_disabled(&server, &acme.owner, &id).await;
    let reason = shown["disabled_reason"].as_str().expect("reason");
    assert!(reason.contains("disable_after_secs"), "{reason}");
    let attempts = receiver.deliveries();
    assert!(attempts.len() >= 2, "it retried before giving up");
    assert!(
        attempts
            .iter()
            .all(|d| d.webhook_id == attempts[0].webhook_id),
        "the first message was retried, nothing after it was sent"
    );
    let disabled = search(&server, &acme.viewer, "type=veritrail.webhook.disabled").await;
    assert_eq!(disabled.len(), 1);
    assert!(
        disabled[0]["details"]["reason"]
            .as_str()
            .expect("reason")
            .contains("failed")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_never_answers_holds_up_only_its_own_subscription() {
    let server = TestServer::start_with(|config| {
        tune(config);
        config.webhooks.attempt_timeout_ms = 30_000;
    })
    .await;
    let acme = tenant(&server, "acme").await;
    let stuck = Receiver::start().await;
    stuck.set_default(Reply::Hang);
    let healthy = Receiver::start().await;
    let filter = json!({"types": ["user.*"]});
    subscribe(
        &server,
        &acme.owner,
        json!({"url": stuck.url("stuck"), "filter": filter}),
    )
    .await;
    let (_, secret) = subscribe(
        &server,
        &acme.owner,
        json!({"url": healthy.url("healthy"), "filter": filter}),
    )
    .await;
    // Ingest answers as usual, and the healthy receiver gets everything, while the stuck
    // one holds its first message for the whole 30 s attempt timeout.
    let started = std::time::Instant::now();
    let mut want = Vec::new();
    for batch in 0..10 {
        want.extend(
            send(
                &server,
                &acme.publisher,
                numbered(&format!("b{batch}"), 0..10, "user.login"),
            )
            .await,
        );
    }
    let deliveries = healthy
        .wait_for(|all| all.len() >= 100, Duration::from_secs(10))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ingest and the healthy subscription went on"
    );
    assert_all_once_in_order(&deliveries, &want);
    verify_all(&deliveries, &[&secret]);
    assert_eq!(
        stuck.deliveries().len(),
        1,
        "the stuck subscription waits on its first message"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_not_followed_and_counts_as_a_failure() {
    let Setup {
        server,
        acme,
        receiver,
        id,
        secret,
    } = setup().await;
    receiver.push_replies([Reply::Status(307), Reply::Status(302)]);
    let want = send(&server, &acme.publisher, numbered("a", 0..1, "user.login")).await;
    let deliveries = receiver
        .wait_for(|all| all.len() >= 3, Duration::from_secs(10))
        .await;
    assert_eq!(
        deliveries.iter().map(|d| d.answered).collect::<Vec<_>>(),
        [Some(307), Some(302), Some(204)],
        "each redirect is an answer that did not deliver, and the message is retried"
    );
    assert!(deliveries.iter().all(|d| d.path == "/hook"));
    assert_all_once_in_order(&deliveries, &want);
    verify_all(&deliveries, &[&secret]);
    // The receiver saw the third request before the server had its answer: the attempt
    // is logged a moment later.
    let attempts = || async {
        server
            .get(
                &format!("/api/v1/webhooks/{id}/attempts"),
                Some(&acme.owner),
            )
            .await
            .json()
    };
    crate::support::eventually("the three attempts are logged", 10, || async {
        attempts().await["attempts"]
            .as_array()
            .is_some_and(|all| all.len() == 3)
    })
    .await;
    let log = attempts().await;
    let oldest = &log["attempts"].as_array().expect("attempts")[2];
    assert_eq!(oldest["status"], json!(307));
    assert_eq!(oldest["delivered"], json!(false));
}
