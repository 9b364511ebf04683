//! A real full disk: the data directory on a small tmpfs that the test mounts (as root; it
//! says why and returns where it cannot mount), filled by a ballast file and then by ingest.

use serde_json::{Value, json};
use veritrail_api::Role;

use crate::small_disk::{SmallDisk, fill};
use crate::support::{TestServer, all_records};

fn batch(round: usize, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({
                    "id": format!("full-{round}-{i}"),
                    "type": "disk.test",
                    "details": {"padding": "x".repeat(400)},
                })
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_ingest_with_507_keeps_what_was_acknowledged_and_recovers() {
    let disk = match SmallDisk::mount(64) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("note: disk-full test skipped: {why}");
            return;
        }
    };
    let data_dir = disk.path().join("data");
    let server = TestServer::start_in(data_dir.clone(), |_| {}).await;
    server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let viewer = server.key("acme", Role::Viewer).await;
    server
        .post_json("/api/v1/events", Some(&publisher), &batch(0, 10))
        .await
        .expect(200, None);

    // Leave a little room, then ingest until the disk refuses.
    let ballast = disk.path().join("ballast");
    fill(&ballast, 2 * 1024 * 1024);
    let mut acknowledged: Vec<String> = (0..10).map(|i| format!("full-0-{i}")).collect();
    let mut refusal = None;
    for round in 1..2000 {
        let reply = server
            .post_json("/api/v1/events", Some(&publisher), &batch(round, 50))
            .await;
        match reply.status {
            200 => acknowledged.extend((0..50).map(|i| format!("full-{round}-{i}"))),
            _ => {
                refusal = Some(reply);
                break;
            }
        }
    }
    let refusal = refusal.expect("the disk never filled");
    refusal.expect(507, Some("storage_full"));
    assert!(
        refusal.header("retry-after").is_some(),
        "507 without Retry-After"
    );
    let message = refusal.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("disk is full"), "{message}");
    // Refused again while full, never half-stored.
    server
        .post_json("/api/v1/events", Some(&publisher), &batch(9_999, 50))
        .await
        .expect(507, Some("storage_full"));

    // Reads keep working on a full disk: records, search, proofs. (An export is also an
    // audit event, a write: it waits for space like any other.)
    let found = server
        .get("/api/v1/events?id=full-0-0", Some(&viewer))
        .await;
    found.expect(200, None);
    let seq = found.json()["events"][0]["seq"]
        .as_u64()
        .expect("found by id");
    let first = server
        .get(&format!("/api/v1/events/{seq}?proof=true"), Some(&viewer))
        .await;
    first.expect(200, None);
    assert_eq!(first.json()["record"]["id"], json!("full-0-0"));
    let page = server
        .get("/api/v1/events?type=disk.test&limit=10", Some(&viewer))
        .await;
    page.expect(200, None);
    assert_eq!(page.json()["events"].as_array().map(Vec::len), Some(10));
    server
        .get("/api/v1/log/proof/consistency?from=1", Some(&viewer))
        .await
        .expect(200, None);

    // Space comes back: ingest resumes by itself (the first request may meet the store's
    // recovery), and the batches refused while full can be sent again.
    std::fs::remove_file(&ballast).expect("remove the ballast");
    let mut last = String::new();
    let mut resumed = false;
    for _ in 0..50 {
        let reply = server
            .post_json("/api/v1/events", Some(&publisher), &batch(9_999, 50))
            .await;
        if reply.status == 200 {
            resumed = true;
            break;
        }
        last = format!("{} {}", reply.status, reply.text());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(resumed, "ingest did not resume once space was back: {last}");
    acknowledged.extend((0..50).map(|i| format!("full-9999-{i}")));
    // The search index catches up too (its writer is opened again after the failure).
    crate::support::eventually("the resumed events are searchable", 20, || async {
        server
            .get("/api/v1/events?id=full-9999-49", Some(&viewer))
            .await
            .json()["events"]
            .as_array()
            .is_some_and(|events| events.len() == 1)
    })
    .await;

    // The episode is one `veritrail.disk.full` event in the tenant's log, written once
    // space was back, with the refusals counted; later ingests add no other.
    let disk_full_events = || async {
        server
            .get("/api/v1/events?type=veritrail.disk.full", Some(&viewer))
            .await
            .json()["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    crate::support::eventually("the disk-full event is written", 20, || async {
        !disk_full_events().await.is_empty()
    })
    .await;
    server
        .post_json("/api/v1/events", Some(&publisher), &batch(10_000, 5))
        .await
        .expect(200, None);
    acknowledged.extend((0..5).map(|i| format!("full-10000-{i}")));
    let events = disk_full_events().await;
    assert_eq!(events.len(), 1, "one event per episode: {events:?}");
    let event = &events[0];
    assert_eq!(event["outcome"], json!("failure"));
    assert_eq!(event["code"], json!(9091));
    let refused = event["details"]["refused"].as_u64().expect("refused");
    assert!(refused >= 2, "{event}");
    assert!(event["details"]["since"].is_string() && event["details"]["until"].is_string());

    // Nothing acknowledged is lost, nothing refused was stored twice, across a restart.
    let dir = data_dir.clone();
    server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let stored = all_records(&server.client(&viewer)).await;
    let mut ids: Vec<&str> = stored.iter().filter_map(|r| r["id"].as_str()).collect();
    for id in &acknowledged {
        assert!(ids.contains(&id.as_str()), "acknowledged {id} lost");
    }
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "a record is stored twice");
    server.stop().await;
    drop(disk);
}
