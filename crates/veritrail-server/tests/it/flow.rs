//! The walkthrough as a test: a tenant, keys, events in, search, proofs checked against the
//! signed checkpoint, an export verified offline.

use serde_json::json;
use veritrail_api::{Role, SearchParams};
use veritrail_client::IngestOptions;
use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::note::{self, NoteVerifier};

use crate::support::{TestServer, event, verify_receipt};

#[tokio::test]
async fn events_go_in_are_found_and_are_provably_in_the_signed_log() {
    let server = TestServer::start().await;
    server.tenant("acme").await;
    let publisher = server.client(&server.key("acme", Role::Publisher).await);
    let viewer = server.client(&server.key("acme", Role::Viewer).await);

    let events: Vec<_> = (0..30)
        .map(|i| {
            event(
                &format!("e{i}"),
                if i % 3 == 0 { "user.login" } else { "document.viewed" },
                json!({"actor": {"id": format!("u{}", i % 4), "email": format!("u{}@example.com", i % 4)},
                       "outcome": if i % 5 == 0 {"failure"} else {"success"},
                       "summary": format!("event number {i}")}),
            )
        })
        .collect();
    let reply = publisher
        .send(
            &events,
            IngestOptions {
                wait: veritrail_client::Wait::Searchable,
                proof: true,
            },
        )
        .await
        .expect("ingest");
    assert_eq!(reply.receipts.len(), 30);

    // Every receipt's proof leads to the signed checkpoint, which the log key verifies.
    let key = viewer.log_key().await.expect("key");
    let verifier = NoteVerifier::parse(&key.verifier_key).expect("vkey");
    let opened =
        note::open(&reply.checkpoint, &[verifier]).expect("checkpoint signed by the log key");
    let checkpoint = Checkpoint::parse(&opened.text).expect("checkpoint");
    assert_eq!(checkpoint.origin(), key.origin);
    assert_eq!(checkpoint.size(), reply.tree_size);
    for receipt in &reply.receipts {
        verify_receipt(receipt, &checkpoint).expect("inclusion proof verifies");
    }

    // Searchable at once (wait=searchable), filtered, paged.
    let page = viewer
        .search(&SearchParams {
            event_type: Some("user.*".into()),
            limit: Some("4".into()),
            ..SearchParams::default()
        })
        .await
        .expect("search");
    assert_eq!(page.events.len(), 4);
    assert!(
        page.events
            .iter()
            .all(|record| record["type"] == "user.login")
    );
    assert!(page.next_cursor.is_some());
    let mut pager = viewer.search_all(SearchParams {
        outcome: Some("failure".into()),
        limit: Some("2".into()),
        ..SearchParams::default()
    });
    let mut ids = Vec::new();
    while let Some(record) = pager.next_event().await.expect("page") {
        ids.push(record["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids, ["e25", "e20", "e15", "e10", "e5", "e0"]);

    // A repeat is idempotent: same seq, flagged duplicate, nothing new stored.
    let again = publisher
        .send(&events[..2], IngestOptions::default())
        .await
        .expect("repeat");
    assert!(again.receipts.iter().all(|receipt| receipt.duplicate));
    assert_eq!(again.receipts[0].seq, reply.receipts[0].seq);
    assert_eq!(again.tree_size, reply.tree_size);

    // The export verifies offline against the pinned key.
    let mut bundle = Vec::new();
    viewer.export(&mut bundle).await.expect("export");
    let verifier = NoteVerifier::parse(&key.verifier_key).expect("vkey");
    let report = veritrail_client::export::verify_export(
        std::io::Cursor::new(&bundle),
        &verifier,
        &veritrail_client::export::ExportVerifyOptions::default(),
    );
    assert!(report.faults.is_empty(), "{:?}", report.faults);
    server.stop().await;
}
