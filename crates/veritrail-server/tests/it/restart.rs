//! Stopping and reopening a data directory: events, keys and revocations survive, the log
//! goes on where it stopped, the search index catches up (even from nothing); and a
//! graceful shutdown in the middle of many ingests loses no acknowledged event and answers
//! no 5xx but a clean 503 `shutting_down`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use veritrail_api::{Role, SearchParams};
use veritrail_client::{ClientError, IngestOptions, KeyScope};

use crate::support::{TestServer, all_records, event, open_checkpoint, wait_indexed};

const T: &str = "acme";

#[tokio::test(flavor = "multi_thread")]
async fn events_and_keys_survive_a_restart_and_search_catches_up() {
    let server = TestServer::start().await;
    let owner_secret = server.tenant(T).await;
    let publisher_secret = server.key(T, Role::Publisher).await;
    let viewer_secret = server.key(T, Role::Viewer).await;
    let owner = server.client(&owner_secret);
    let gone = owner
        .create_key(&KeyScope::Own, Role::Viewer, None)
        .await
        .expect("key");
    owner
        .revoke_key(&KeyScope::Own, &gone.key.id)
        .await
        .expect("revoked");
    let events: Vec<_> = (0..300)
        .map(|i| {
            event(
                &format!("r{i}"),
                "restart.test",
                json!({"summary": format!("before {i}")}),
            )
        })
        .collect();
    server
        .client(&publisher_secret)
        .send(&events, IngestOptions::default())
        .await
        .expect("events");
    let viewer = server.client(&viewer_secret);
    let key = viewer.log_key().await.expect("key");
    let checkpoint_before = viewer.checkpoint().await.expect("checkpoint");
    let size_before = open_checkpoint(&checkpoint_before, &key.verifier_key).size();
    let admin_key = server.admin_key.clone();
    let dir = server.stop_keep_dir().await.expect("a data directory");

    for round in 0u8..2 {
        if round == 1 {
            // The index is derived: without it, the server rebuilds it from the ledger.
            std::fs::remove_dir_all(dir.path().join("search")).expect("remove the index");
        }
        let mut server = TestServer::start_in(dir.path().to_owned(), |_| {}).await;
        server.admin_key = admin_key.clone();
        let viewer = server.client(&viewer_secret);
        // Same key, same log, same checkpoint.
        assert_eq!(viewer.log_key().await.expect("key"), key);
        let checkpoint =
            open_checkpoint(&viewer.checkpoint().await.expect("cp"), &key.verifier_key);
        assert!(checkpoint.size() >= size_before);
        let proof = viewer
            .consistency_proof(size_before, checkpoint.size())
            .await
            .expect("consistency");
        let path: Vec<_> = proof
            .proof
            .iter()
            .map(|n| crate::support::hash(n))
            .collect();
        veritrail_core::merkle::verify_consistency(
            size_before,
            checkpoint.size(),
            &path,
            open_checkpoint(&checkpoint_before, &key.verifier_key).root(),
            checkpoint.root(),
        )
        .expect("the log after the restart extends the one before");
        // Keys: active ones work, the revoked one stays revoked, the admin key works.
        server.client(&owner_secret).me().await.expect("owner");
        let err = server.client(&gone.secret).me().await.expect_err("revoked");
        assert_eq!(err.status(), Some(401));
        assert_eq!(server.admin().tenant(T).await.expect("tenant").id, T);
        // The search index holds every record.
        let size = wait_indexed(&viewer, checkpoint.size()).await;
        let found = viewer
            .count(&veritrail_api::CountParams {
                event_type: Some("restart.test".into()),
                ..veritrail_api::CountParams::default()
            })
            .await
            .expect("count");
        assert_eq!(found.total, 300 + u64::from(round), "round {round}");
        let hit = viewer
            .search(&SearchParams {
                id: Some("r123".into()),
                ..SearchParams::default()
            })
            .await
            .expect("search");
        assert_eq!(hit.events.len(), 1);
        // The log goes on where it stopped; ids stay deduplicated across the restart.
        let reply = server
            .client(&publisher_secret)
            .send(
                &[
                    event("r5", "restart.test", json!({})),
                    event(&format!("after-{round}"), "restart.test", json!({})),
                ],
                IngestOptions::default(),
            )
            .await
            .expect("ingest after restart");
        assert!(reply.receipts[0].duplicate);
        assert_eq!(reply.receipts[1].seq, size);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_shutdown_keeps_every_acknowledged_event() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher_secret = server.key(T, Role::Publisher).await;
    let viewer_secret = server.key(T, Role::Viewer).await;
    let admin_key = server.admin_key.clone();
    let acked = Arc::new(AtomicUsize::new(0));

    let mut writers = Vec::new();
    for writer in 0..16 {
        let publisher = server.client(&publisher_secret);
        let acked = Arc::clone(&acked);
        writers.push(tokio::spawn(async move {
            let mut ok_ids = Vec::new();
            let mut bad = Vec::new();
            'rounds: for round in 0.. {
                let batch: Vec<_> = (0..10)
                    .map(|i| {
                        event(
                            &format!("g{writer}-{round}-{i}"),
                            "shutdown.test",
                            json!({}),
                        )
                    })
                    .collect();
                loop {
                    match publisher.send(&batch, IngestOptions::default()).await {
                        Ok(reply) => {
                            assert_eq!(reply.receipts.len(), 10);
                            ok_ids.extend(batch.into_iter().map(|e| e.id.expect("id")));
                            acked.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        // Sixteen writers on a busy machine can be more than the server
                        // takes in at once: nothing was stored, retry the same batch.
                        Err(ClientError::Api {
                            status: 503, code, ..
                        }) if code == "overloaded" => {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                        // The server is going away: a clean refusal ends this writer.
                        Err(ClientError::Api {
                            status: 503, code, ..
                        }) if code == "shutting_down" => break 'rounds,
                        Err(ClientError::Api {
                            status,
                            code,
                            message,
                            ..
                        }) => {
                            bad.push(format!("{status} {code}: {message}"));
                            break 'rounds;
                        }
                        Err(ClientError::Transport(_)) => break 'rounds,
                        Err(other) => {
                            bad.push(other.to_string());
                            break 'rounds;
                        }
                    }
                }
            }
            (ok_ids, bad)
        }));
    }
    // Stop while requests are in flight: after some have been acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while acked.load(Ordering::SeqCst) < 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "ingests are not getting through"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let dir = server.stop_keep_dir().await.expect("dir");

    let mut ok_ids = BTreeSet::new();
    let mut bad = Vec::new();
    for writer in writers {
        let (ids, errors) = writer.await.expect("writer");
        ok_ids.extend(ids);
        bad.extend(errors);
    }
    assert!(bad.is_empty(), "unexpected answers: {bad:?}");
    assert!(ok_ids.len() >= 500);

    let mut server = TestServer::start_in(dir.path().to_owned(), |_| {}).await;
    server.admin_key = admin_key;
    let viewer = server.client(&viewer_secret);
    let stored: BTreeSet<String> = all_records(&viewer)
        .await
        .iter()
        .filter_map(|record| record["id"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<_> = ok_ids.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost: {} ({:?}...)",
        lost.len(),
        lost.first()
    );
    // Everything stored is searchable after the restart too.
    wait_indexed(&viewer, 0).await;
    let count = viewer
        .count(&veritrail_api::CountParams {
            event_type: Some("shutdown.test".into()),
            ..veritrail_api::CountParams::default()
        })
        .await
        .expect("count");
    assert_eq!(
        count.total,
        stored.iter().filter(|id| id.starts_with('g')).count() as u64
    );
    server.stop().await;
}
