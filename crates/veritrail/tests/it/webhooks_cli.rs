//! `veritrail webhooks ...` against a running server that may deliver to loopback, with
//! the shared test receiver: create (the secret printed once, and it is the one that
//! signs), list, show, deliveries and their attempts, ping, redeliver, update, rotate,
//! delete.

use std::time::{Duration, Instant};

use serde_json::Value;
use veritrail_api::{EventInput, Role, WebhookAttemptList, WebhookBody, WebhookCreated};
use veritrail_client::{IngestOptions, KeyScope};

use crate::receiver::{Delivery, Receiver, Reply, check_all, verify_all};
use crate::serve::ServeProcess;
use crate::{json, succeeded, text};

const WAIT: Duration = Duration::from_secs(30);

/// Waits until the receiver got `n` requests; returns them all.
async fn received(receiver: &Receiver, n: usize) -> Vec<Delivery> {
    receiver
        .wait_for(|deliveries| deliveries.len() >= n, WAIT)
        .await
}

fn event(id: &str, event_type: &str, outcome: &str) -> EventInput {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "type": event_type,
        "actor": {"id": "u_1", "email": "ann@example.com"},
        "outcome": outcome,
    }))
    .expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_commands_create_deliver_inspect_redeliver_rotate_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = ServeProcess::start_with_env(
        &data,
        &[("VERITRAIL_WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8")],
    );
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    let owner = server.new_tenant("acme").await;
    let publisher = admin
        .create_key(&KeyScope::Tenant("acme".into()), Role::Publisher, None)
        .await
        .expect("key")
        .secret;
    let publisher = server.client(&publisher);
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", server.url.as_str(), "--key", owner.as_str()]);
        crate::veritrail(&data, &all, None)
    };
    let receiver = Receiver::start().await;
    let hook_url = receiver.url("hook");

    // create, --json: the subscription and its secret.
    let created: WebhookCreated = serde_json::from_value(json(&run(&[
        "webhooks",
        "create",
        "--endpoint",
        &hook_url,
        "--type",
        "user.*",
        "--outcome",
        "success",
        "--description",
        "CLI test",
        "--json",
    ])))
    .expect("the reply decodes");
    let hook = created.webhook.clone();
    let id = hook.id.as_str();
    assert!(created.secret.starts_with("whsec_"), "{}", created.secret);
    assert_eq!(hook.url, hook_url);
    assert_eq!(hook.filter.types, ["user.*"]);
    assert_eq!(hook.filter.outcomes, ["success"]);
    assert!(hook.filter.categories.is_empty());
    assert_eq!(hook.description.as_deref(), Some("CLI test"));
    assert!(hook.enabled);

    // create, for people: the id and the secret, said to be shown only now.
    let said = succeeded(&run(&[
        "webhooks",
        "create",
        "--endpoint",
        &hook_url,
        "--disabled",
        "--format",
        "envelope",
        "--grouping",
        "60s",
    ]));
    assert!(said.contains("created webhook wh_"), "{said}");
    assert!(said.contains("(disabled; every event)"), "{said}");
    assert!(said.contains("secret (shown only now): whsec_"), "{said}");
    let other = said
        .split_whitespace()
        .find(|word| word.starts_with("wh_"))
        .expect("the new id")
        .to_owned();

    // A private network the server does not allow is refused, exit 1.
    let refused = run(&["webhooks", "create", "--endpoint", "http://10.1.2.3/hook"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("forbidden_target"),
        "{}",
        text(&refused.stderr)
    );

    // list and show.
    let listed = succeeded(&run(&["webhooks", "list"]));
    assert!(
        listed.starts_with("ID") && listed.contains(id) && listed.contains(&other),
        "{listed}"
    );
    assert!(
        listed.contains("types user.*; outcomes success"),
        "{listed}"
    );
    let list: veritrail_api::WebhookList =
        serde_json::from_value(json(&run(&["webhooks", "list", "--json"])))
            .expect("the reply decodes");
    assert_eq!(list.webhooks.len(), 2);
    let shown = succeeded(&run(&["webhooks", "show", id]));
    for expected in [
        hook_url.as_str(),
        "enabled",
        "CLI test",
        "types user.*; outcomes success",
        "standard",
        "every_single",
        "current since",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }

    // Matching events are delivered, signed with the secret create printed.
    let events = [
        event("e-1", "user.login", "success"),
        event("e-2", "user.login", "failure"),
        event("e-3", "order.paid", "success"),
        event("e-4", "user.logout", "success"),
    ];
    let receipts = publisher
        .send(&events, IngestOptions::default())
        .await
        .expect("sent")
        .receipts;
    let (seq_1, seq_4) = (receipts[0].seq, receipts[3].seq);
    let delivered = received(&receiver, 2).await;
    let record_ids: Vec<Value> = delivered
        .iter()
        .map(|request| request.json()["data"]["id"].clone())
        .collect();
    assert_eq!(record_ids, ["e-1", "e-4"]);
    verify_all(&delivered, &[&created.secret]);

    // attempts: a table, and the JSON with message ids.
    let deadline = Instant::now() + Duration::from_secs(30);
    let attempts = loop {
        let list: WebhookAttemptList =
            serde_json::from_value(json(&run(&["webhooks", "attempts", id, "--json"])))
                .expect("the reply decodes");
        if list.attempts.len() >= 2 || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempts.attempts.len(), 2, "{attempts:?}");
    assert!(attempts.attempts.iter().all(|attempt| attempt.delivered));
    assert_eq!(attempts.attempts[0].seq, Some(seq_4), "newest first");
    let table = succeeded(&run(&["webhooks", "attempts", id]));
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    for column in [
        "ID",
        "TIME",
        "MESSAGE ID",
        "SEQ",
        "STATUS",
        "LATENCY",
        "ERROR",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = lines.next().expect("a row");
    assert!(
        row.contains(&attempts.attempts[0].message_id)
            && row.contains("204")
            && row.contains(" ms"),
        "{row}"
    );
    let paged = run(&["webhooks", "attempts", id, "--limit", "1"]);
    assert!(succeeded(&paged).lines().count() == 2);
    assert!(
        text(&paged.stderr).contains("more: --before"),
        "{}",
        text(&paged.stderr)
    );

    // ping: sent now, what the receiver answered; exit 1 when it fails.
    let pinged = succeeded(&run(&["webhooks", "ping", id]));
    assert!(pinged.starts_with("ping delivered: HTTP 204"), "{pinged}");
    let ping = received(&receiver, 3).await.pop().expect("the ping");
    assert_eq!(ping.json()["type"], "veritrail.webhook.ping");
    receiver.set_default(Reply::Status(500));
    let failed = run(&["webhooks", "ping", id, "--json"]);
    assert_eq!(failed.status.code(), Some(1));
    let attempt: Value = serde_json::from_slice(&failed.stdout).expect("the attempt");
    assert_eq!(attempt["status"], 500);
    assert_eq!(attempt["delivered"], false);
    receiver.set_default(Reply::Status(204));

    // redeliver: one message by id, or the messages of a seq range.
    let message_id = attempts.attempts[1].message_id.clone();
    let again = succeeded(&run(&[
        "webhooks",
        "redeliver",
        id,
        "--message-id",
        &message_id,
    ]));
    assert!(again.contains("queued 1 message for redelivery"), "{again}");
    let redelivered = received(&receiver, 5).await.pop().expect("redelivered");
    assert_eq!(redelivered.webhook_id, message_id);
    let range: Value = json(&run(&[
        "webhooks",
        "redeliver",
        id,
        "--from-seq",
        &seq_1.to_string(),
        "--to-seq",
        &seq_4.to_string(),
        "--json",
    ]));
    assert_eq!(range["queued"], 2, "{range}");
    received(&receiver, 7).await;
    let neither = run(&["webhooks", "redeliver", id]);
    assert_eq!(neither.status.code(), Some(2));

    // update: only what is given changes; the filter's other lists are kept.
    let updated: WebhookBody = serde_json::from_value(json(&run(&[
        "webhooks",
        "update",
        id,
        "--disable",
        "--type",
        "user.login",
        "--json",
    ])))
    .expect("the reply decodes");
    assert!(!updated.enabled);
    assert_eq!(updated.filter.types, ["user.login"]);
    assert_eq!(updated.filter.outcomes, ["success"]);
    assert_eq!(updated.description.as_deref(), Some("CLI test"));
    let enabled = succeeded(&run(&[
        "webhooks",
        "update",
        id,
        "--enable",
        "--outcome",
        "",
        "--description",
        "changed",
    ]));
    assert!(
        enabled.contains(&format!("updated webhook {id}")),
        "{enabled}"
    );
    assert!(
        enabled.contains("enabled") && enabled.contains("changed"),
        "{enabled}"
    );
    let hook: WebhookBody = serde_json::from_value(json(&run(&["webhooks", "show", id, "--json"])))
        .expect("the reply decodes");
    assert!(hook.enabled);
    assert!(hook.filter.outcomes.is_empty());
    let nothing = run(&["webhooks", "update", id]);
    assert_eq!(nothing.status.code(), Some(2));

    // rotate: a new secret, shown once; with no overlap only it signs.
    let rotated = succeeded(&run(&["webhooks", "rotate", id, "--overlap", "0"]));
    assert!(
        rotated.contains("the previous one no longer signs"),
        "{rotated}"
    );
    let new_secret = rotated
        .split("secret (shown only now): ")
        .nth(1)
        .expect("the new secret")
        .trim()
        .to_owned();
    assert_ne!(new_secret, created.secret);
    let before = receiver.deliveries().len();
    succeeded(&run(&["webhooks", "ping", id]));
    let ping = received(&receiver, before + 1).await.split_off(before);
    verify_all(&ping, &[&new_secret]);
    assert!(check_all(&ping, &[&created.secret]).is_err());
    let overlapping: Value = json(&run(&[
        "webhooks",
        "rotate",
        id,
        "--overlap",
        "3600",
        "--json",
    ]));
    assert_eq!(
        overlapping["webhook"]["secrets"].as_array().map(Vec::len),
        Some(2),
        "{overlapping}"
    );

    // delete: gone; showing it is a refusal (exit 1).
    let deleted = succeeded(&run(&["webhooks", "delete", &other]));
    assert_eq!(deleted.trim(), format!("deleted webhook {other}"));
    let gone = run(&["webhooks", "show", &other]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        text(&gone.stderr).contains("not_found"),
        "{}",
        text(&gone.stderr)
    );
    let deleted: Value = json(&run(&["webhooks", "delete", id, "--json"]));
    assert_eq!(deleted["deleted"], true);
    let list: veritrail_api::WebhookList =
        serde_json::from_value(json(&run(&["webhooks", "list", "--json"])))
            .expect("the reply decodes");
    assert!(list.webhooks.is_empty());
    server.terminate();
}
