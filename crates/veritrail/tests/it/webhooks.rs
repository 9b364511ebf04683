//! Webhook deliveries across `kill -9` of `veritrail serve`: nothing acknowledged is lost,
//! copies are what at-least-once allows (the same `webhook-id` and body), and every
//! delivery is signed (checked by the official Standard Webhooks library too).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use veritrail_api::{EventInput, Role, WebhookFilter, WebhookInput};
use veritrail_client::{IngestOptions, KeyScope};

use crate::receiver::{Receiver, Reply, verify_all};
use crate::serve::ServeProcess;

const ENV: &[(&str, &str)] = &[("VERITRAIL_WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_kill_9_of_the_server_in_the_middle_of_sending() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start_with_env(&data, ENV);
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    let owner_key = server.new_tenant("acme").await;
    let publisher_key = admin
        .create_key(&KeyScope::Tenant("acme".into()), Role::Publisher, None)
        .await
        .unwrap()
        .secret;
    let receiver = Receiver::start().await;
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v1/webhooks", server.url))
        .bearer_auth(&owner_key)
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&WebhookInput {
                url: receiver.url("hook"),
                description: None,
                filter: WebhookFilter {
                    types: vec!["user.*".into()],
                    ..WebhookFilter::default()
                },
                format: None,
                grouping: None,
                secret: None,
                start_seq: None,
                enabled: None,
            })
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|body| serde_json::from_slice(&body).unwrap())
        .unwrap();
    let secret = created["secret"].as_str().expect("the secret").to_owned();

    // Round 1: killed at a random point while it delivers. Round 2: killed while the
    // receiver holds a delivery (it never answers), long after the messages before it were
    // delivered: those must not be sent again, the progress having been written.
    let mut server = server;
    let mut seqs = Vec::new();
    let mut sent_again = Vec::new();
    for round in 0..2 {
        let publisher = server.client(&publisher_key);
        let before = receiver.deliveries().len();
        let mut round_seqs = Vec::new();
        if round == 1 {
            receiver.push_replies((0..300).map(|_| Reply::Status(204)).chain([Reply::Hang]));
        }
        for batch in 0..40 {
            let events: Vec<EventInput> = (0..25)
                .map(|i| {
                    serde_json::from_value(
                        json!({"id": format!("r{round}-b{batch}-{i}"), "type": "user.login"}),
                    )
                    .unwrap()
                })
                .collect();
            let reply = publisher
                .send(&events, IngestOptions::default())
                .await
                .unwrap();
            round_seqs.extend(reply.receipts.iter().map(|receipt| receipt.seq));
        }
        if round == 0 {
            receiver
                .wait_for(|all| all.len() >= before + 150, Duration::from_secs(20))
                .await;
        } else {
            receiver
                .wait_for(|all| all.len() > before + 300, Duration::from_secs(20))
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        server.kill_9();
        let at_kill = receiver.deliveries().len() - before;
        assert!(
            at_kill < round_seqs.len(),
            "round {round}: the kill came after everything was delivered"
        );
        seqs.extend(round_seqs);
        server = ServeProcess::start_with_env(&data, ENV);
        let deliveries = receiver
            .wait_for(
                |all| {
                    let seen: std::collections::HashSet<_> = all
                        .iter()
                        .map(|d| d.json()["data"]["seq"].as_u64())
                        .collect();
                    seen.len() >= seqs.len()
                },
                Duration::from_secs(60),
            )
            .await;
        let this_round = &deliveries[before..];
        let distinct: std::collections::HashSet<_> =
            this_round.iter().map(|d| d.webhook_id.as_str()).collect();
        let again = this_round.len() - distinct.len();
        sent_again.push(again);
        eprintln!("round {round}: kill -9 after {at_kill} deliveries of 1000; {again} sent again");
    }
    let deliveries = receiver.deliveries();
    // Every acknowledged event delivered; copies identical; first deliveries in seq order.
    let mut first: BTreeMap<u64, (String, Vec<u8>)> = BTreeMap::new();
    let mut order = Vec::new();
    for delivery in &deliveries {
        let seq = delivery.json()["data"]["seq"].as_u64().expect("seq");
        match first.get(&seq) {
            Some((id, body)) => {
                assert_eq!(
                    id, &delivery.webhook_id,
                    "a copy of seq {seq} has its own id"
                );
                assert_eq!(body, &delivery.body, "a copy of seq {seq} differs");
            }
            None => {
                first.insert(seq, (delivery.webhook_id.clone(), delivery.body.clone()));
                order.push(seq);
            }
        }
    }
    assert_eq!(order, seqs, "every acknowledged event, in seq order");
    // In round 2 only the held message (and those after it) go again, not the 300 before.
    assert!(
        sent_again[1] <= 5,
        "round 2 sent {} again: the progress was not kept",
        sent_again[1]
    );
    verify_all(&deliveries, &[&secret]);
    server.terminate();
}
