//! Data lifecycle over real HTTP: retention by count and by age, erasure of one subject,
//! legal holds blocking both, 410 for removed records, proofs and exports across a
//! removal, the audit events with their catalog codes, and all of it after a restart and
//! under the offline verifier.

use serde_json::{Value, json};
use veritrail_api::{ErasureInput, HoldInput, RetentionPolicy, Role, SearchParams};
use veritrail_client::export::{ExportVerifyOptions, verify_export};
use veritrail_client::{Client, IngestOptions, LeafRef};
use veritrail_core::merkle;

use crate::support::{
    TestServer, all_records, event, hash, open_checkpoint, verify_receipt, wait_indexed,
};

const T: &str = "acme";

/// A tenant with an owner and a viewer client, and a publisher that has sent `n` events
/// (`evt-<i>`, actor `u<i % 3>` with email `U<i % 3>@Example.com`, target `doc-<i % 4>`).
struct Tenant {
    owner_key: String,
    owner: Client,
    viewer: Client,
    publisher: Client,
    vkey: String,
}

impl Tenant {
    async fn new(server: &TestServer) -> Tenant {
        let owner_key = server.tenant(T).await;
        let owner = server.client(&owner_key);
        let viewer = server.client(&server.key(T, Role::Viewer).await);
        let publisher = server.client(&server.key(T, Role::Publisher).await);
        let vkey = viewer.log_key().await.expect("log key").verifier_key;
        Tenant {
            owner_key,
            owner,
            viewer,
            publisher,
            vkey,
        }
    }

    /// Sends events `from..to`; returns the last receipt's checkpoint note.
    async fn send(&self, from: u64, to: u64) -> veritrail_api::IngestResponse {
        let events: Vec<_> = (from..to)
            .map(|i| {
                event(
                    &format!("evt-{i}"),
                    "document.viewed",
                    json!({
                        "actor": {"id": format!("u{}", i % 3), "email": format!("U{}@Example.com", i % 3)},
                        "targets": [{"id": format!("doc-{}", i % 4), "type": "document"}],
                        "details": {"i": i},
                    }),
                )
            })
            .collect();
        self.publisher
            .send(
                &events,
                IngestOptions {
                    proof: true,
                    ..IngestOptions::default()
                },
            )
            .await
            .expect("events sent")
    }

    /// Every record of the log as JSON, kept ones only (through the export).
    async fn records(&self) -> Vec<Value> {
        all_records(&self.viewer).await
    }

    /// The latest checkpoint, opened.
    async fn checkpoint(&self) -> veritrail_core::checkpoint::Checkpoint {
        open_checkpoint(
            &self.viewer.checkpoint().await.expect("checkpoint"),
            &self.vkey,
        )
    }

    /// Checks that record `seq` is served and its inclusion proof verifies against the
    /// latest checkpoint.
    async fn assert_kept(&self, seq: u64) {
        let proof = self
            .viewer
            .inclusion_proof(&LeafRef::Seq(seq), None)
            .await
            .unwrap_or_else(|err| panic!("inclusion proof of kept seq {seq}: {err}"));
        let checkpoint = open_checkpoint(&proof.checkpoint, &self.vkey);
        let path: Vec<merkle::Hash> = proof.proof.iter().map(|node| hash(node)).collect();
        merkle::verify_inclusion(
            &hash(&proof.leaf_hash),
            seq,
            proof.tree_size,
            &path,
            checkpoint.root(),
        )
        .unwrap_or_else(|err| panic!("seq {seq} does not verify: {err}"));
        let record = self.viewer.record(seq).await.expect("kept record");
        assert_eq!(record.record["seq"], json!(seq));
    }

    /// Checks that record `seq` answers 410 `record_removed` naming `by` as its remover;
    /// returns the error's `removed` object.
    async fn assert_removed(&self, server: &TestServer, key: &str, seq: u64, by: u64) -> Value {
        let reply = server
            .get(&format!("/api/v1/events/{seq}"), Some(key))
            .await;
        reply.expect(410, Some("record_removed"));
        let removed = reply.json()["error"]["removed"].clone();
        assert_eq!(removed["seq"], json!(seq));
        assert_eq!(removed["removed_by"], json!(by), "{removed}");
        server
            .get(&format!("/api/v1/log/proof/inclusion?seq={seq}"), Some(key))
            .await
            .expect(410, Some("record_removed"));
        removed
    }
}

/// The seqs of the events of `sent` whose index in the request passes `keep`.
fn seqs_where(sent: &veritrail_api::IngestResponse, keep: impl Fn(usize) -> bool) -> Vec<u64> {
    sent.receipts
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, receipt)| receipt.seq)
        .collect()
}

fn seq_of(record: &Value) -> u64 {
    record["seq"].as_u64().expect("seq")
}

/// The record at `seq`, among `records` (JSON of kept records).
fn find(records: &[Value], seq: u64) -> &Value {
    records
        .iter()
        .find(|record| seq_of(record) == seq)
        .unwrap_or_else(|| panic!("no kept record {seq}"))
}

#[tokio::test]
async fn retention_by_count_removes_the_oldest_and_every_later_proof_still_verifies() {
    let server = TestServer::start().await;
    let tenant = Tenant::new(&server).await;
    let viewer_key = server.key(T, Role::Viewer).await;
    let before = tenant.send(0, 30).await;
    let old = open_checkpoint(&before.checkpoint, &tenant.vkey);

    // Only owner and super_admin keys change retention; a viewer reads it.
    let admin = server.client(&server.key(T, Role::Admin).await);
    let policy = RetentionPolicy {
        max_events: Some(10),
        max_age_days: None,
    };
    let refused = admin.set_retention(&policy).await.expect_err("admin");
    assert_eq!(refused.code(), Some("forbidden"));
    let bad = tenant
        .owner
        .set_retention(&RetentionPolicy {
            max_events: Some(0),
            max_age_days: None,
        })
        .await
        .expect_err("zero");
    assert_eq!(bad.code(), Some("invalid_parameter"));
    let past_the_spec = tenant
        .owner
        .set_retention(&RetentionPolicy {
            max_events: Some(1 << 63),
            max_age_days: None,
        })
        .await
        .expect_err("past an int64");
    assert_eq!(past_the_spec.code(), Some("invalid_parameter"));
    let set = tenant.owner.set_retention(&policy).await.expect("set");
    assert_eq!((set.policy, set.source.as_str()), (policy, "tenant"));
    assert_eq!(
        tenant.viewer.retention().await.expect("read").policy,
        policy
    );

    let size = tenant.checkpoint().await.size();
    let run = tenant.owner.run_retention().await.expect("run");
    let by = run
        .recorded_as
        .expect("a run that removes writes its event");
    assert_eq!(by, size, "the run's event comes right after the log it cut");
    assert_eq!(run.below_seq, size - 10);
    assert_eq!(run.removed, size - 10);
    // The run's own event does not call for another run.
    let again = tenant.owner.run_retention().await.expect("run again");
    assert_eq!((again.removed, again.recorded_as), (0, None));

    // Removed records are 410 with when and why; kept ones verify against the new root.
    let removed = tenant.assert_removed(&server, &viewer_key, 0, by).await;
    assert_eq!(
        removed["removed_by_type"],
        json!("veritrail.retention.deleted")
    );
    assert_eq!(removed["reason"], json!("max_events=10"));
    tenant
        .assert_removed(&server, &viewer_key, size - 11, by)
        .await;
    for seq in [size - 10, size - 1, by] {
        tenant.assert_kept(seq).await;
    }
    // The checkpoint signed before the removal still verifies, and the log still extends
    // it: a consistency proof from its size (past the cut) to now.
    let now = tenant.checkpoint().await;
    let proof = tenant
        .viewer
        .consistency_proof(old.size(), now.size())
        .await
        .expect("consistency across the removal");
    let path: Vec<merkle::Hash> = proof.proof.iter().map(|node| hash(node)).collect();
    merkle::verify_consistency(old.size(), now.size(), &path, old.root(), now.root())
        .expect("the old checkpoint is a prefix of the new one");
    // Receipts given before the removal still verify against their checkpoint.
    for receipt in &before.receipts {
        verify_receipt(receipt, &old).expect("an old receipt still verifies");
    }

    // The run's event, with its catalog code; search and export leave the removed out.
    let records = tenant.records().await;
    let event = find(&records, by);
    assert_eq!(event["type"], json!("veritrail.retention.deleted"));
    assert_eq!(event["code"], json!(9092));
    assert_eq!(event["details"]["count"], json!(size - 10));
    assert_eq!(event["details"]["below_seq"], json!(size - 10));
    assert_eq!(event["details"]["policy"], json!("max_events=10"));
    assert!(records.iter().all(|record| seq_of(record) >= size - 10));
    let log_size = wait_indexed(&tenant.viewer, by + 1).await;
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = tenant
            .viewer
            .search(&SearchParams {
                cursor: cursor.clone(),
                limit: Some("1000".into()),
                ..SearchParams::default()
            })
            .await
            .expect("search");
        all.extend(page.events.iter().map(seq_of));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.sort_unstable();
    let kept: Vec<u64> = (size - 10..log_size).collect();
    assert_eq!(all, kept, "search finds exactly the kept records");
    let mut bundle = Vec::new();
    tenant.viewer.export(&mut bundle).await.expect("export");
    let verifier = veritrail_core::note::NoteVerifier::parse(&tenant.vkey).expect("vkey");
    let report = verify_export(
        bundle.as_slice(),
        &verifier,
        &ExportVerifyOptions::default(),
    );
    assert!(report.is_ok(), "the export verifies: {:?}", report.faults);
    assert_eq!(report.n_removed, size - 10);
    server.stop().await;
}

#[tokio::test]
async fn retention_by_age_removes_what_was_received_before_the_cut_off() {
    let server = TestServer::start().await;
    let tenant = Tenant::new(&server).await;
    let viewer_key = server.key(T, Role::Viewer).await;
    let old = tenant.send(0, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mid = std::time::SystemTime::now();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let new = tenant.send(10, 20).await;
    tenant
        .owner
        .set_retention(&RetentionPolicy {
            max_age_days: Some(1),
            max_events: None,
        })
        .await
        .expect("set");
    // Nothing is a day old yet.
    let run = tenant.owner.run_retention().await.expect("run");
    assert_eq!(run.removed, 0);
    // A day later, as far as the server knows, from `mid`: the first ten are past it.
    let since_mid = i64::try_from(mid.elapsed().expect("clock").as_nanos()).expect("ns");
    veritrail_server::clock::advance_for_tests(86_400_000_000_000 - since_mid);
    let run = tenant.owner.run_retention().await.expect("run");
    let first_new = new.receipts[0].seq;
    assert_eq!(run.below_seq, first_new);
    let by = run.recorded_as.expect("recorded");
    for receipt in &old.receipts {
        tenant
            .assert_removed(&server, &viewer_key, receipt.seq, by)
            .await;
    }
    for receipt in &new.receipts {
        tenant.assert_kept(receipt.seq).await;
    }
    let records = tenant.records().await;
    let event = find(&records, by);
    assert_eq!(event["details"]["policy"], json!("max_age_days=1"));
    assert_eq!(
        event["actor"]["id"],
        json!(tenant.owner.me().await.expect("me").key_id)
    );
    veritrail_server::clock::advance_for_tests(0);
    server.stop().await;
}

#[tokio::test]
async fn erasure_removes_one_subjects_records_everywhere_and_keeps_every_other_proof() {
    let server = TestServer::start().await;
    let tenant = Tenant::new(&server).await;
    let viewer_key = server.key(T, Role::Viewer).await;
    let sent = tenant.send(0, 30).await;
    let u1: Vec<u64> = seqs_where(&sent, |i| i % 3 == 1);

    // A dry run lists, removes nothing; the email matches whatever its case.
    let input = ErasureInput {
        actor_email: Some("u1@example.COM".into()),
        reason: "GDPR art. 17 request #4711".into(),
        dry_run: true,
        ..ErasureInput::default()
    };
    let dry = tenant.owner.erase(&input).await.expect("dry run");
    assert_eq!((dry.seqs.clone(), dry.recorded_as), (u1.clone(), None));
    tenant.assert_kept(u1[0]).await;
    // An admin may not erase; a reason is required.
    let admin = server.client(&server.key(T, Role::Admin).await);
    let refused = admin.erase(&input).await.expect_err("admin");
    assert_eq!(refused.code(), Some("forbidden"));
    let no_reason = tenant
        .owner
        .erase(&ErasureInput {
            reason: " ".into(),
            ..input.clone()
        })
        .await
        .expect_err("no reason");
    assert_eq!(no_reason.code(), Some("invalid_parameter"));

    let erased = tenant
        .owner
        .erase(&ErasureInput {
            dry_run: false,
            ..input.clone()
        })
        .await
        .expect("erased");
    assert_eq!(erased.seqs, u1);
    let by = erased.recorded_as.expect("recorded");
    for &seq in &u1 {
        let removed = tenant.assert_removed(&server, &viewer_key, seq, by).await;
        assert_eq!(removed["reason"], json!("GDPR art. 17 request #4711"));
    }
    for receipt in sent.receipts.iter().filter(|r| !u1.contains(&r.seq)) {
        tenant.assert_kept(receipt.seq).await;
    }
    // Repeating it erases nothing more and writes nothing.
    let again = tenant
        .owner
        .erase(&ErasureInput {
            dry_run: false,
            ..input.clone()
        })
        .await
        .expect("again");
    assert_eq!((again.count, again.recorded_as), (0, None));

    // The event names who, why, how many and which seqs, never the erased data.
    let records = tenant.records().await;
    let event = find(&records, by);
    assert_eq!(event["type"], json!("veritrail.event.erased"));
    assert_eq!(event["code"], json!(9061));
    assert_eq!(event["details"]["count"], json!(u1.len()));
    assert_eq!(event["details"]["filter"], json!("actor_email"));
    let ranges: Vec<u64> = event["details"]["seqs"]
        .as_array()
        .expect("ranges")
        .iter()
        .flat_map(|range| range[0].as_u64().expect("from")..=range[1].as_u64().expect("to"))
        .collect();
    assert_eq!(ranges, u1);
    let text = serde_json::to_string(&records)
        .expect("json")
        .to_lowercase();
    assert!(
        !text.contains("u1@example.com"),
        "no kept record holds the erased email"
    );
    assert!(!text.contains("\"u1\""), "nor the erased actor id");

    // Search finds none of them, by actor or by text.
    wait_indexed(&tenant.viewer, by + 1).await;
    let found = tenant
        .viewer
        .search(&SearchParams {
            actor: Some("u1".into()),
            ..SearchParams::default()
        })
        .await
        .expect("search");
    assert!(found.events.is_empty(), "{:?}", found.events);
    // Explicit seqs, with one already erased: only the new one goes.
    let kept = sent.receipts[0].seq;
    let by_seq = tenant
        .owner
        .erase(&ErasureInput {
            seqs: vec![u1[0], kept],
            reason: "wrong tenant".into(),
            ..ErasureInput::default()
        })
        .await
        .expect("by seq");
    assert_eq!(by_seq.seqs, vec![kept]);
    let past = tenant
        .owner
        .erase(&ErasureInput {
            seqs: vec![10_000],
            reason: "x".into(),
            ..ErasureInput::default()
        })
        .await
        .expect_err("past the log");
    assert_eq!(past.code(), Some("invalid_parameter"));
    // The Activity page's record view says it was removed, when and why.
    let (session, _) = crate::ui::set_cookie(
        &crate::ui::sign_in(&server, &tenant.owner_key).await,
        "vt_session",
    )
    .expect("a session");
    let page = server
        .send(
            server
                .request(
                    reqwest::Method::GET,
                    &format!("/activity/events/{}", u1[0]),
                    None,
                )
                .header("cookie", format!("vt_session={session}")),
        )
        .await;
    assert_eq!(page.status, 410);
    let html = page.text();
    assert!(
        html.contains("Event removed") && html.contains("GDPR art. 17 request #4711"),
        "{html}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_legal_hold_keeps_its_records_from_retention_and_erasure_until_released() {
    let server = TestServer::start().await;
    let tenant = Tenant::new(&server).await;
    let viewer_key = server.key(T, Role::Viewer).await;
    let sent = tenant.send(0, 24).await;
    let doc2: Vec<u64> = seqs_where(&sent, |i| i % 4 == 2);
    let hold = tenant
        .owner
        .create_hold(&HoldInput {
            target_id: Some("doc-2".into()),
            reason: "Matter 2026-17".into(),
            ..HoldInput::default()
        })
        .await
        .expect("hold");
    assert_eq!(
        tenant.viewer.holds().await.expect("holds").holds,
        vec![hold.clone()]
    );

    // An erasure touching a held record is refused, naming the hold.
    let refused = tenant
        .owner
        .erase(&ErasureInput {
            actor_id: Some("u2".into()),
            reason: "request".into(),
            ..ErasureInput::default()
        })
        .await
        .expect_err("held");
    assert_eq!(refused.code(), Some("held"));
    assert!(refused.to_string().contains(&hold.hold_id), "{refused}");
    tenant.assert_kept(sent.receipts[2].seq).await;

    // Retention takes everything but the held records.
    tenant
        .owner
        .set_retention(&RetentionPolicy {
            max_events: Some(1),
            max_age_days: None,
        })
        .await
        .expect("set");
    let size = tenant.checkpoint().await.size();
    let run = tenant.owner.run_retention().await.expect("run");
    let by = run.recorded_as.expect("recorded");
    assert_eq!(run.skipped_held, doc2.len() as u64);
    assert_eq!(run.removed, size - 1 - doc2.len() as u64);
    for &seq in &doc2 {
        tenant.assert_kept(seq).await;
    }
    tenant
        .assert_removed(&server, &viewer_key, sent.receipts[0].seq, by)
        .await;

    // A hold on the whole log stops retention altogether.
    let whole = tenant
        .owner
        .create_hold(&HoldInput {
            reason: "Litigation".into(),
            ..HoldInput::default()
        })
        .await
        .expect("whole-log hold");
    let run = tenant.owner.run_retention().await.expect("run");
    assert_eq!(run.removed, 0);
    assert!(run.skipped_held > 0);

    // Released, retention takes what the holds kept.
    tenant
        .owner
        .release_hold(&whole.hold_id)
        .await
        .expect("release");
    tenant
        .owner
        .release_hold(&hold.hold_id)
        .await
        .expect("release");
    let missing = tenant
        .owner
        .release_hold(&hold.hold_id)
        .await
        .expect_err("gone");
    assert_eq!(missing.code(), Some("not_found"));
    let run = tenant.owner.run_retention().await.expect("run");
    let by = run.recorded_as.expect("recorded");
    for &seq in &doc2 {
        tenant.assert_removed(&server, &viewer_key, seq, by).await;
    }
    let records = tenant.records().await;
    let types: Vec<(&str, u64)> = records
        .iter()
        .filter(|r| {
            r["type"]
                .as_str()
                .unwrap_or("")
                .starts_with("veritrail.hold.")
        })
        .map(|r| {
            (
                r["type"].as_str().expect("type"),
                r["code"].as_u64().expect("code"),
            )
        })
        .collect();
    // The hold events older than the last cut went with it; the releases are newer.
    assert!(
        types.contains(&("veritrail.hold.released", 9063)),
        "{types:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn removals_survive_a_restart_and_the_offline_verifier_reports_them() {
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start_in(dir.path().to_owned(), |_| {}).await;
    let tenant = Tenant::new(&server).await;
    let owner_key = server.key(T, Role::Owner).await;
    tenant.send(0, 20).await;
    tenant
        .owner
        .set_retention(&RetentionPolicy {
            max_events: Some(12),
            max_age_days: None,
        })
        .await
        .expect("set");
    let run = tenant.owner.run_retention().await.expect("run");
    let erased = tenant
        .owner
        .erase(&ErasureInput {
            target_id: Some("doc-3".into()),
            reason: "customer request".into(),
            ..ErasureInput::default()
        })
        .await
        .expect("erase");
    let admin_key = server.admin_key.clone();
    server.stop().await;

    // The offline verifier: every removal is reported with the record that made it, and is
    // no fault.
    let key = std::fs::read_to_string(dir.path().join("log-key")).expect("key");
    let signer = veritrail_core::note::NoteSigner::parse(key.trim()).expect("signer");
    let report = veritrail_ledger::verify::verify_ledger_dir(
        &dir.path().join("ledger"),
        &signer.verifier(),
        &veritrail_ledger::verify::VerifyOptions::default(),
        &mut |_, _| {},
    )
    .expect("verify runs");
    assert!(report.is_ok(), "{:?}", report.faults);
    let summary = report
        .tenants
        .iter()
        .find(|t| t.tenant.as_str() == T)
        .expect("tenant");
    let by: Vec<u64> = summary.removals.iter().map(|r| r.by_seq).collect();
    assert_eq!(
        by,
        vec![
            run.recorded_as.expect("recorded"),
            erased.recorded_as.expect("recorded"),
        ]
    );
    assert_eq!(summary.n_removed, run.removed + erased.count);

    // After a restart the same records are gone, the others still verify.
    let server = TestServer::start_in(dir.path().to_owned(), |config| {
        config.admin_key = Some(admin_key);
    })
    .await;
    let tenant = Tenant {
        owner_key: owner_key.clone(),
        owner: server.client(&owner_key),
        viewer: server.client(&owner_key),
        publisher: server.client(&owner_key),
        vkey: tenant.vkey,
    };
    tenant
        .assert_removed(&server, &owner_key, 0, run.recorded_as.expect("recorded"))
        .await;
    tenant
        .assert_removed(
            &server,
            &owner_key,
            erased.seqs[0],
            erased.recorded_as.expect("recorded"),
        )
        .await;
    tenant.assert_kept(run.below_seq).await;
    let retention = tenant.viewer.retention().await.expect("retention");
    assert_eq!(retention.removed_below, run.below_seq);
    assert_eq!(retention.removed_count, run.removed + erased.count);
    server.stop().await;
}

#[tokio::test]
async fn erased_records_are_never_delivered_by_webhooks_or_tails() {
    let server = TestServer::start_with(|config| {
        config.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
    })
    .await;
    let tenant = Tenant::new(&server).await;
    let receiver = crate::receiver::Receiver::start().await;
    // Paused subscriptions from seq 0: one message per event, and one per window.
    let subscribe = |path: &str, grouping: &str| {
        json!({
            "url": receiver.url(path),
            "filter": {"types": ["document.*"]},
            "grouping": grouping,
            "format": "envelope",
            "start_seq": 0,
            "enabled": false,
        })
    };
    let mut ids = Vec::new();
    for body in [
        subscribe("single", "every_single"),
        subscribe("window", "2s"),
    ] {
        let reply = server
            .post_json("/api/v1/webhooks", Some(&tenant.owner_key), &body)
            .await;
        reply.expect(201, None);
        ids.push(
            reply.json()["webhook"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let sent = tenant.send(0, 12).await;
    let erased: Vec<u64> = seqs_where(&sent, |i| i % 3 == 1);
    let input = ErasureInput {
        actor_id: Some("u1".into()),
        reason: "request 12".into(),
        ..ErasureInput::default()
    };
    assert_eq!(
        tenant.owner.erase(&input).await.expect("erased").seqs,
        erased
    );

    let owner_key = &tenant.owner_key;
    for id in &ids {
        server
            .send(
                server
                    .request(
                        reqwest::Method::PATCH,
                        &format!("/api/v1/webhooks/{id}"),
                        Some(owner_key),
                    )
                    .header("content-type", "application/json")
                    .body(r#"{"enabled": true}"#),
            )
            .await
            .expect(200, None);
    }
    // Every kept event, once; no erased one. The window folds u0's and u2's events.
    let deliveries = receiver
        .wait_for(
            |all| {
                all.iter().filter(|d| d.path == "/single").count() >= 8
                    && all.iter().any(|d| d.path == "/window")
            },
            std::time::Duration::from_secs(20),
        )
        .await;
    let single: Vec<u64> = deliveries
        .iter()
        .filter(|d| d.path == "/single")
        .map(|d| {
            let seq = d.webhook_id.rsplit('_').next().expect("msg_<id>_<seq>");
            seq.parse::<u64>().expect("a seq")
        })
        .collect();
    let kept: Vec<u64> = sent
        .receipts
        .iter()
        .map(|receipt| receipt.seq)
        .filter(|seq| !erased.contains(seq))
        .collect();
    assert_eq!(single, kept);
    let windows: Vec<Value> = deliveries
        .iter()
        .filter(|d| d.path == "/window")
        .map(crate::receiver::Delivery::json)
        .collect();
    assert!(
        windows
            .iter()
            .all(|body| body["producer"]["user_email"] != json!("U1@Example.com")),
        "{windows:?}"
    );
    let window_id = deliveries
        .iter()
        .find(|d| d.path == "/window")
        .expect("a window")
        .webhook_id
        .clone();
    // A window is found again across erased records.
    server
        .post_json(
            &format!("/api/v1/webhooks/{}/redeliver", ids[1]),
            Some(owner_key),
            &json!({"message_id": window_id}),
        )
        .await
        .expect(202, None);
    receiver
        .wait_for(
            |all| all.iter().filter(|d| d.webhook_id == window_id).count() >= 2,
            std::time::Duration::from_secs(20),
        )
        .await;

    // A tail from the start of the log shows every kept event and none erased.
    let mut tail = tenant.viewer.tail_from(
        SearchParams {
            event_type: Some("document.*".into()),
            ..SearchParams::default()
        },
        0,
    );
    let mut tailed = Vec::new();
    while tailed.len() < kept.len() {
        let event = tokio::time::timeout(std::time::Duration::from_secs(20), tail.next())
            .await
            .expect("in time")
            .expect("an event");
        tailed.push(event.seq);
    }
    assert_eq!(tailed, kept);
}

/// After retention and an erasure, Go's `sumdb/tlog` and `sumdb/note` (an implementation
/// independent of veritrail's) accept every signed checkpoint, the inclusion proof of every
/// kept record, and the consistency proof from every earlier signed tree from the first
/// kept record's on (a smaller one is 410); and refuse a proof with one hash changed.
#[tokio::test]
async fn gos_tlog_accepts_every_proof_after_retention_and_erasure() {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let server = TestServer::start().await;
    let tenant = Tenant::new(&server).await;
    let mut signed = Vec::new();
    for round in 0..4 {
        signed.push(tenant.send(round * 10, round * 10 + 10).await.checkpoint);
    }
    tenant
        .owner
        .set_retention(&RetentionPolicy {
            max_events: Some(15),
            ..RetentionPolicy::default()
        })
        .await
        .expect("policy");
    let run = tenant.owner.run_retention().await.expect("run");
    assert!(run.removed > 0);
    let erased = tenant
        .owner
        .erase(&ErasureInput {
            actor_id: Some("u1".into()),
            reason: "request 9".into(),
            ..ErasureInput::default()
        })
        .await
        .expect("erased");
    assert!(!erased.seqs.is_empty());
    signed.push(tenant.viewer.checkpoint().await.expect("checkpoint"));
    let latest = open_checkpoint(signed.last().expect("latest"), &tenant.vkey);

    let mut cases = Vec::new();
    for note in &signed {
        cases.push(json!({"kind": "checkpoint", "note": note, "vkey": tenant.vkey}));
    }
    let mut kept = 0;
    for seq in 0..latest.size() {
        if seq < run.below_seq || erased.seqs.contains(&seq) {
            continue;
        }
        let proof = tenant
            .viewer
            .inclusion_proof(&LeafRef::Seq(seq), Some(latest.size()))
            .await
            .expect("a kept record's proof");
        cases.push(json!({
            "kind": "inclusion", "index": seq, "leaf_hash": proof.leaf_hash,
            "tree_size": latest.size(), "root": b64(latest.root()), "proof": proof.proof,
        }));
        kept += 1;
    }
    assert!(kept >= 10);
    // Proofs start at the tree of the first kept record: the removed records before it keep
    // only the hashes of their complete subtrees. A smaller tree is 410 tree_size_removed.
    let first_kept = (run.below_seq..)
        .find(|seq| !erased.seqs.contains(seq))
        .expect("a kept record");
    let mut refused = 0;
    for note in &signed[..signed.len() - 1] {
        let old = open_checkpoint(note, &tenant.vkey);
        let answer = tenant
            .viewer
            .consistency_proof(old.size(), latest.size())
            .await;
        if old.size() < first_kept {
            let err = answer.expect_err("a tree inside the removed prefix");
            assert_eq!(err.status(), Some(410), "{err}");
            assert_eq!(err.code(), Some("tree_size_removed"), "{err}");
            refused += 1;
            continue;
        }
        let proof = answer.expect("consistency");
        cases.push(json!({
            "kind": "consistency", "old_size": old.size(), "old_root": b64(old.root()),
            "tree_size": latest.size(), "root": b64(latest.root()), "proof": proof.proof,
        }));
    }
    assert!(refused > 0 && refused < signed.len() - 1, "{refused}");
    let n_good = cases.len();
    // Controls: the oracle does refuse a bad proof and a checkpoint under another key.
    let mut bad = cases[signed.len()].clone();
    bad["leaf_hash"] = json!(b64(&[7u8; 32]));
    cases.push(bad);
    let mut bad = cases[n_good - 1].clone();
    bad["old_root"] = json!(b64(&[7u8; 32]));
    cases.push(bad);

    let Some(answers) = crate::gotlog::check(&cases) else {
        return;
    };
    for (case, answer) in cases.iter().zip(&answers).take(n_good) {
        assert!(answer.starts_with("ok"), "Go refused {case}: {answer}");
    }
    for (note, answer) in signed.iter().zip(&answers) {
        let checkpoint = open_checkpoint(note, &tenant.vkey);
        assert_eq!(
            answer,
            &format!(
                "ok {} {} {}",
                checkpoint.origin(),
                checkpoint.size(),
                b64(checkpoint.root())
            )
        );
    }
    for answer in &answers[n_good..] {
        assert!(answer.starts_with("fail"), "{answer}");
    }
}

/// The disk really comes back: an erasure seals the journal's segment and compaction takes
/// the erased bodies out of it (and the retention cut's with them), while ingest and proofs
/// go on; the data is gone from every journal file, and after a restart everything kept
/// is there and the offline verifier passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_gives_the_disk_back_while_ingest_and_proofs_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path().to_owned(), |_| {}).await;
    let tenant = Tenant::new(&server).await;
    tenant.send(0, 300).await;
    let journal_bytes = || -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir.path().join("ledger/journal")).expect("journal") {
            all.extend(std::fs::read(entry.expect("entry").path()).expect("segment"));
        }
        all
    };

    // Ingest and proofs run beside the removals and the compaction.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = {
        let (publisher, viewer, stop) = (
            tenant.publisher.clone(),
            tenant.viewer.clone(),
            std::sync::Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || rounds < 5 {
                let events = vec![event(
                    &format!("bg-{rounds}"),
                    "document.viewed",
                    json!({"actor": {"id": "u9"}}),
                )];
                publisher
                    .send(&events, IngestOptions::default())
                    .await
                    .expect("ingest goes on");
                viewer
                    .inclusion_proof(&LeafRef::Seq(298), None)
                    .await
                    .expect("proofs go on");
                rounds += 1;
            }
            rounds
        })
    };
    tenant
        .owner
        .set_retention(&RetentionPolicy {
            max_events: Some(100),
            ..RetentionPolicy::default()
        })
        .await
        .expect("policy");
    let run = tenant.owner.run_retention().await.expect("run");
    assert!(run.removed >= 200);
    let erased = tenant
        .owner
        .erase(&ErasureInput {
            actor_email: Some("u2@example.com".into()),
            reason: "request 31".into(),
            ..ErasureInput::default()
        })
        .await
        .expect("erased");
    assert!(!erased.seqs.is_empty());
    crate::support::eventually("compaction took the bodies out", 20, || async {
        let metrics = server.get("/metrics", None).await.text();
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("veritrail_compacted_records_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n >= run.removed + erased.count)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(background.await.expect("background") >= 5);

    // Each removed record here is a body of over 160 bytes, replaced by a 63-byte entry
    // (its seq and leaf hash): the rewritten segments shrank by that much (the journal as a
    // whole grows with the ingest that goes on meanwhile).
    let metrics = server.get("/metrics", None).await.text();
    let saved: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("veritrail_compacted_bytes_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the metric");
    assert!(saved >= (run.removed + erased.count) * 100, "{saved}");
    let journal = journal_bytes();
    // Erased: u2's events (seqs 2, 5, 8, ... among the kept 200..300) carry details.i.
    let holds = |needle: &str| {
        journal
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    for seq in &erased.seqs {
        assert!(
            !holds(&format!("evt-{seq}\"")) && !holds(&format!("evt-{seq}")),
            "seq {seq}"
        );
    }
    assert!(holds("evt-298"), "a kept event is there");
    for seq in [run.below_seq, run.below_seq + 1, 250, 298] {
        if !erased.seqs.contains(&seq) {
            tenant.assert_kept(seq).await;
        }
    }
    tenant
        .assert_removed(&server, &tenant.owner_key, 0, run.recorded_as.expect("run"))
        .await;
    // The export carries the removed records as the subtree hashes of the removed prefix
    // and the leaf hashes of the others (no body is read for them), and verifies offline.
    let mut bundle = Vec::new();
    tenant.viewer.export(&mut bundle).await.expect("export");
    let verifier = veritrail_core::note::NoteVerifier::parse(&tenant.vkey).expect("vkey");
    let report = verify_export(
        bundle.as_slice(),
        &verifier,
        &ExportVerifyOptions::default(),
    );
    assert!(report.is_ok(), "the export verifies: {:?}", report.faults);
    assert_eq!(report.n_removed, run.removed + erased.count);
    let admin_key = server.admin_key.clone();
    server.stop().await;

    let key = std::fs::read_to_string(dir.path().join("log-key")).expect("key");
    let signer = veritrail_core::note::NoteSigner::parse(key.trim()).expect("signer");
    let report = veritrail_ledger::verify::verify_ledger_dir(
        &dir.path().join("ledger"),
        &signer.verifier(),
        &veritrail_ledger::verify::VerifyOptions {
            decode_records: true,
            ..Default::default()
        },
        &mut |_, _| {},
    )
    .expect("verify runs");
    assert!(report.is_ok(), "{:?}", report.faults);
    let server = TestServer::start_in(dir.path().to_owned(), |config| {
        config.admin_key = Some(admin_key);
    })
    .await;
    let viewer = server.client(&tenant.owner_key);
    let restarted = Tenant {
        owner_key: tenant.owner_key.clone(),
        owner: server.client(&tenant.owner_key),
        viewer: viewer.clone(),
        publisher: viewer,
        vkey: tenant.vkey.clone(),
    };
    restarted.assert_kept(298).await;
    server.stop().await;
}

/// A retention cut over records an erasure already took counts only what it removes itself.
#[tokio::test]
async fn a_cut_over_erased_records_counts_only_what_it_removes() {
    let server = TestServer::start().await;
    let tenant = Tenant::new(&server).await;
    let sent = tenant.send(0, 30).await;
    let erased = tenant
        .owner
        .erase(&ErasureInput {
            seqs: vec![sent.receipts[3].seq, sent.receipts[4].seq],
            reason: "request 5".into(),
            ..ErasureInput::default()
        })
        .await
        .expect("erased");
    assert_eq!(erased.count, 2);
    tenant
        .owner
        .set_retention(&RetentionPolicy {
            max_events: Some(5),
            ..RetentionPolicy::default()
        })
        .await
        .expect("policy");
    let run = tenant.owner.run_retention().await.expect("run");
    assert!(run.below_seq > sent.receipts[4].seq);
    assert_eq!(run.removed, run.below_seq - 2);
    let body = tenant.owner.retention().await.expect("retention");
    assert_eq!(body.removed_count, run.below_seq);
    server.stop().await;
}
