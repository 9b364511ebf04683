//! The scrubber against a bad disk, under a running server: a damaged stored node is found,
//! reported in the tenant's own log, in `/metrics`, by `GET /api/v1/log/integrity` and on
//! the integrity page, and rewritten from the journal so that proofs through it work
//! again; a damaged journal record is found and reported to its tenant only; the
//! background job runs by itself.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};
use veritrail_api::{IntegrityBody, Role};
use veritrail_server::AppState;

use crate::support::{TestServer, eventually};
use crate::ui::{set_cookie, sign_in};

/// A server over `dir` whose state the test holds, to run scrub passes itself.
async fn start(
    dir: &Path,
    tune: impl FnOnce(&mut veritrail_server::Config),
) -> (TestServer, AppState) {
    let mut state = None;
    let server = TestServer::start_prepared(dir.to_owned(), tune, |server| {
        state = Some(server.state().clone());
    })
    .await;
    (server, state.expect("prepared"))
}

async fn send(server: &TestServer, publisher: &str, prefix: &str, n: usize) {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("{prefix}-{i}"), "type": "user.login", "actor": {"id": format!("{prefix}-user-{i}")}}))
        .collect();
    server
        .post_json("/api/v1/events", Some(publisher), &json!(events))
        .await
        .expect(200, None);
}

async fn integrity(server: &TestServer, key: &str) -> IntegrityBody {
    let reply = server.get("/api/v1/log/integrity", Some(key)).await;
    reply.expect(200, None);
    serde_json::from_value(reply.json()).expect("an integrity body")
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

fn segment(dir: &Path) -> PathBuf {
    dir.join("ledger/journal/00000000000000000000.seg")
}

#[tokio::test(flavor = "multi_thread")]
async fn damage_is_found_reported_to_its_tenant_and_derived_files_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, state) = start(dir.path(), |_| {}).await;
    let acme = server.tenant("acme").await;
    let globex = server.tenant("globex").await;
    let acme_viewer = server.key("acme", Role::Viewer).await;
    send(
        &server,
        &server.key("acme", Role::Publisher).await,
        "ac",
        40,
    )
    .await;
    send(
        &server,
        &server.key("globex", Role::Publisher).await,
        "gx",
        5,
    )
    .await;

    // Nothing has run yet; a clean pass finds nothing.
    assert_eq!(integrity(&server, &acme_viewer).await.last_scrub, None);
    assert_eq!(
        veritrail_server::scrub::run_pass(&state)
            .await
            .expect("pass"),
        0
    );
    let clean = integrity(&server, &acme_viewer).await;
    let scrub = clean.last_scrub.expect("a scrub");
    assert!(scrub.ok && scrub.failures.is_empty(), "{scrub:?}");
    assert!(
        scrub.tree_size >= 41,
        "the tenant event and 40 sent: {}",
        scrub.tree_size
    );
    assert_eq!(clean.interval_seconds, 21_600);

    // A bad disk: acme's stored node (level 1, index 3), over leaves 6 and 7, which the
    // proof of seq 4 reads. The server refuses to serve what no longer verifies.
    let nodes = dir.path().join("ledger/tenants/acme/nodes");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&nodes)
        .expect("nodes");
    file.write_all_at(&[0xee; 8], 32 * 12).expect("damaged");
    let proof = server
        .get("/api/v1/log/proof/inclusion?seq=4", Some(&acme_viewer))
        .await;
    assert_eq!(proof.status, 500, "{}", proof.text());

    let found = veritrail_server::scrub::run_pass(&state)
        .await
        .expect("pass");
    assert!(found >= 1);
    let report = integrity(&server, &acme_viewer)
        .await
        .last_scrub
        .expect("a scrub");
    assert!(!report.ok);
    let failure = &report.failures[0];
    assert_eq!(
        (failure.check.as_str(), failure.seq, failure.repaired),
        ("derived", Some(7), true),
        "{report:?}"
    );
    // The tenant's own log says so, with the service as the actor.
    let seq = report.recorded_as.expect("recorded");
    let event = server
        .get(&format!("/api/v1/events/{seq}"), Some(&acme_viewer))
        .await;
    event.expect(200, None);
    let event = event.json()["record"].clone();
    assert_eq!(event["type"], json!("veritrail.integrity.check_failed"));
    assert_eq!(event["code"], json!(9090));
    assert_eq!(event["actor"]["id"], json!("veritrail"));
    assert_eq!(event["details"]["checks"], json!(["derived"]));
    assert_eq!(event["details"]["repaired"], json!(true));
    assert_eq!(event["details"]["failures"], json!(report.n_failures));
    // Globex's log was not touched and says so.
    assert!(
        integrity(&server, &globex)
            .await
            .last_scrub
            .expect("scrub")
            .ok
    );
    let metrics = server.get("/metrics", None).await.text();
    assert!(metric(&metrics, "veritrail_integrity_failures_total") >= 1);
    assert_eq!(metric(&metrics, "veritrail_scrub_passes_total"), 2);
    assert!(metric(&metrics, "veritrail_scrub_last_finished_timestamp_seconds") > 0);
    // The page shows it.
    let (session, _) = set_cookie(&sign_in(&server, &acme).await, "vt_session").expect("session");
    let page = server
        .send(
            server
                .request(Method::GET, "/activity/integrity", None)
                .header("cookie", format!("vt_session={session}")),
        )
        .await;
    page.expect(200, None);
    let html = page.text();
    assert!(html.contains("data-scrub=\"failed\""), "{html}");
    assert!(html.contains("rebuilt from the journal"));
    assert!(html.contains(&format!("href=\"/activity/events/{seq}\"")));

    // Rebuilt: the proof is served again, and the next pass is clean.
    server
        .get("/api/v1/log/proof/inclusion?seq=4", Some(&acme_viewer))
        .await
        .expect(200, None);
    assert_eq!(
        veritrail_server::scrub::run_pass(&state)
            .await
            .expect("pass"),
        0
    );
    assert!(
        integrity(&server, &acme_viewer)
            .await
            .last_scrub
            .expect("scrub")
            .ok
    );

    // A journal record of globex's flipped: found, reported to globex only, not repaired.
    let segment = segment(dir.path());
    let bytes = std::fs::read(&segment).expect("segment");
    let at = bytes
        .windows(6)
        .position(|window| window == b"gx-2\"}".as_slice() || window == b"gx-2\x00\x00".as_slice())
        .or_else(|| bytes.windows(4).position(|window| window == b"gx-2"))
        .expect("globex's event id in the journal");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("segment");
    file.write_all_at(b"GX", at as u64).expect("flipped");
    assert!(
        veritrail_server::scrub::run_pass(&state)
            .await
            .expect("pass")
            >= 1
    );
    let report = integrity(&server, &globex).await.last_scrub.expect("scrub");
    assert!(!report.ok);
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.check == "checksum" && !f.repaired),
        "{report:?}"
    );
    assert!(
        report.recorded_as.is_some(),
        "the check_failed event is appended"
    );
    assert!(
        integrity(&server, &acme_viewer)
            .await
            .last_scrub
            .expect("scrub")
            .ok
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_background_job_scrubs_by_itself_and_its_result_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path().to_owned(), |config| {
        config.scrub.interval_secs = 1;
    })
    .await;
    let owner = server.tenant("acme").await;
    send(&server, &server.key("acme", Role::Publisher).await, "ac", 3).await;
    eventually("a scrub ran", 20, || async {
        integrity(&server, &owner).await.last_scrub.is_some()
    })
    .await;
    let admin_key = server.admin_key.clone();
    server.stop().await;
    let server = TestServer::start_in(dir.path().to_owned(), |config| {
        config.admin_key = Some(admin_key);
    })
    .await;
    let after = integrity(&server, &owner).await;
    assert!(after.last_scrub.expect("kept").ok);
    server.stop().await;
}
