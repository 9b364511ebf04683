//! The log endpoints: the checkpoint verifies with the published key and names
//! `<origin>/<tenant>`; inclusion proofs by seq and by id, at the latest and at an older
//! size, and consistency proofs between checkpoints taken at different times, verify;
//! out-of-range requests have stable codes; the export verifies offline, holds exactly
//! `tree_size` records and is itself audited.

use serde_json::{Value, json};
use veritrail_api::{InclusionProofBody, Role};
use veritrail_client::export::{ExportVerifyOptions, verify_export};
use veritrail_client::{IngestOptions, LeafRef};
use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::merkle;
use veritrail_core::note::NoteVerifier;

use crate::support::{TestServer, all_records, event, hash, open_checkpoint};

const T: &str = "acme";

fn verify_inclusion(proof: &InclusionProofBody, checkpoint: &Checkpoint) {
    assert_eq!(proof.tree_size, checkpoint.size());
    let path: Vec<merkle::Hash> = proof.proof.iter().map(|node| hash(node)).collect();
    merkle::verify_inclusion(
        &hash(&proof.leaf_hash),
        proof.seq,
        proof.tree_size,
        &path,
        checkpoint.root(),
    )
    .unwrap_or_else(|err| panic!("seq {} in {}: {err}", proof.seq, proof.tree_size));
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_and_proofs_verify_with_the_published_key() {
    let server = TestServer::start_with(|config| config.origin = "audit.example.test".into()).await;
    server.tenant(T).await;
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let viewer_key = server.key(T, Role::Viewer).await;
    let viewer = server.client(&viewer_key);
    let key = viewer.log_key().await.expect("key");
    assert_eq!(key.origin, format!("audit.example.test/{T}"));

    // The checkpoint endpoint: text, signed by the key, of the log's size.
    let reply = server
        .get("/api/v1/log/checkpoint", Some(&viewer_key))
        .await;
    reply.expect(200, None);
    assert!(
        reply
            .header("content-type")
            .expect("type")
            .starts_with("text/plain")
    );
    let first = open_checkpoint(&reply.text(), &key.verifier_key);
    assert_eq!(first.origin(), key.origin);
    let size_1 = first.size();
    assert_eq!(size_1, server.admin().tenant(T).await.expect("t").log_size);
    // Another key does not open it.
    let other = veritrail_core::note::NoteSigner::from_seed("audit.example.test", [9; 32])
        .expect("signer")
        .verifier();
    assert!(veritrail_core::note::open(&reply.text(), &[other]).is_err());

    let events: Vec<_> = (0..37)
        .map(|i| event(&format!("x{i}"), "log.test", json!({})))
        .collect();
    let sent = publisher
        .send(&events, IngestOptions::default())
        .await
        .expect("events");
    let second = open_checkpoint(
        &viewer.checkpoint().await.expect("checkpoint"),
        &key.verifier_key,
    );
    let size_2 = second.size();
    assert_eq!(size_2, size_1 + 37);
    assert_eq!(sent.tree_size, size_2);

    // Inclusion, by seq and by id, in the latest tree and in the first one.
    for seq in [0, 1, size_1 - 1, size_1, size_2 - 1] {
        let proof = viewer
            .inclusion_proof(&LeafRef::Seq(seq), None)
            .await
            .expect("proof");
        assert_eq!(proof.seq, seq);
        verify_inclusion(&proof, &second);
        assert_eq!(proof.checkpoint, viewer.checkpoint().await.expect("latest"));
        if seq < size_1 {
            let old = viewer
                .inclusion_proof(&LeafRef::Seq(seq), Some(size_1))
                .await
                .expect("proof");
            verify_inclusion(&old, &first);
            // The proof for the old tree does not verify against the new root.
            let path: Vec<_> = old.proof.iter().map(|n| hash(n)).collect();
            assert!(
                merkle::verify_inclusion(&hash(&old.leaf_hash), seq, size_2, &path, second.root())
                    .is_err()
            );
        }
    }
    for (i, receipt) in sent.receipts.iter().enumerate().step_by(9) {
        let proof = viewer
            .inclusion_proof(&LeafRef::Id(format!("x{i}")), None)
            .await
            .expect("proof by id");
        assert_eq!(proof.seq, receipt.seq);
        assert_eq!(proof.leaf_hash, receipt.leaf_hash);
        verify_inclusion(&proof, &second);
        let proof = viewer
            .inclusion_proof(&LeafRef::Id(format!("x{i}")), Some(receipt.seq + 1))
            .await
            .expect("proof by id at a size");
        assert_eq!(proof.tree_size, receipt.seq + 1);
    }
    // A record with its proof.
    let record = viewer.record_with_proof(size_1 + 3).await.expect("record");
    assert_eq!(record.record["id"], "x3");
    verify_inclusion(&record.proof.expect("proof"), &second);

    // Consistency between the two checkpoints, and with `to` left out.
    for to in [Some(size_2), None] {
        let mut query = vec![("from", size_1.to_string())];
        if let Some(to) = to {
            query.push(("to", to.to_string()));
        }
        let reply = server
            .send(
                server
                    .request(
                        reqwest::Method::GET,
                        "/api/v1/log/proof/consistency",
                        Some(&viewer_key),
                    )
                    .query(&query),
            )
            .await;
        reply.expect(200, None);
        let body: veritrail_api::ConsistencyProofBody =
            serde_json::from_value(reply.json()).expect("consistency body");
        assert_eq!((body.from_size, body.to_size), (size_1, size_2));
        let path: Vec<_> = body.proof.iter().map(|n| hash(n)).collect();
        merkle::verify_consistency(size_1, size_2, &path, first.root(), second.root())
            .expect("consistent");
        assert!(
            merkle::verify_consistency(size_1, size_2, &path, second.root(), second.root())
                .is_err()
        );
    }
    let same = viewer
        .consistency_proof(size_2, size_2)
        .await
        .expect("same size");
    assert!(same.proof.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn out_of_range_requests_have_stable_codes() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let viewer = server.key(T, Role::Viewer).await;
    publisher
        .send(&[event("only", "a.b", json!({}))], IngestOptions::default())
        .await
        .expect("event");
    let size = server.admin().tenant(T).await.expect("t").log_size;
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("/api/v1/log/proof/inclusion?seq={size}"),
            404,
            "not_found",
        ),
        (
            format!("/api/v1/log/proof/inclusion?seq={}", u64::MAX),
            404,
            "not_found",
        ),
        (
            "/api/v1/log/proof/inclusion?id=never-sent".into(),
            404,
            "not_found",
        ),
        (
            "/api/v1/log/proof/inclusion".into(),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/inclusion?seq=0&id=only".into(),
            400,
            "invalid_parameter",
        ),
        (
            format!("/api/v1/log/proof/inclusion?seq=0&tree_size={}", size + 1),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/inclusion?seq=1&tree_size=1".into(),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/inclusion?seq=0&tree_size=0".into(),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/inclusion?seq=-1".into(),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/inclusion?id=Bad%20Id%0A".into(),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/consistency".into(),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/consistency?from=0".into(),
            400,
            "invalid_parameter",
        ),
        (
            format!("/api/v1/log/proof/consistency?from={}", size + 1),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/consistency?from=2&to=1".into(),
            400,
            "invalid_parameter",
        ),
        (
            format!("/api/v1/log/proof/consistency?from=1&to={}", size + 1),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/log/proof/consistency?from=1&colour=red".into(),
            400,
            "invalid_parameter",
        ),
        (format!("/api/v1/events/{size}"), 404, "not_found"),
        ("/api/v1/events/abc".into(), 400, "invalid_parameter"),
        ("/api/v1/events/-1".into(), 400, "invalid_parameter"),
        (
            "/api/v1/events/0?proof=maybe".into(),
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/events/0?colour=red".into(),
            400,
            "invalid_parameter",
        ),
    ];
    for (path, status, code) in cases {
        let reply = server.get(&path, Some(&viewer)).await;
        assert_eq!(
            (reply.status, reply.code().as_deref()),
            (status, Some(code)),
            "{path}: {}",
            reply.text()
        );
    }
    assert_eq!(server.admin().tenant(T).await.expect("t").log_size, size);
    server.stop().await;
}

#[tokio::test]
async fn an_export_verifies_offline_has_exactly_its_records_and_is_audited() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let viewer_key = server.key(T, Role::Viewer).await;
    let viewer = server.client(&viewer_key);
    let viewer_id = viewer.me().await.expect("me").key_id;
    let events: Vec<_> = (0..1234)
        .map(|i| {
            event(
                &format!("ex{i}"),
                "export.test",
                json!({"summary": format!("n{i}")}),
            )
        })
        .collect();
    for chunk in events.chunks(1000) {
        publisher
            .send(chunk, IngestOptions::default())
            .await
            .expect("events");
    }
    let size = server.admin().tenant(T).await.expect("t").log_size;

    let reply = server.get("/api/v1/log/export", Some(&viewer_key)).await;
    reply.expect(200, None);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    let key = viewer.log_key().await.expect("key");
    let verifier = NoteVerifier::parse(&key.verifier_key).expect("vkey");
    let report = verify_export(
        std::io::Cursor::new(&reply.body),
        &verifier,
        &ExportVerifyOptions {
            tenant: Some(veritrail_core::event::TenantId::parse(T).expect("tenant")),
            ..ExportVerifyOptions::default()
        },
    );
    assert!(report.is_ok(), "{:?}", report.faults);
    assert_eq!(report.n_records, size);
    assert_eq!(report.checkpoint_size, Some(size));
    let lines: Vec<&str> = std::str::from_utf8(&reply.body)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(lines.len() as u64, size + 1);
    let header: Value = serde_json::from_str(lines[0]).expect("header");
    assert_eq!(header["tree_size"], size);
    assert_eq!(header["tenant"], T);

    // A damaged export does not verify, wherever the damage is: a byte changed at 61
    // places through the file (header, records, leaf hashes, JSON, field names).
    for part in 0..61 {
        let mut damaged = reply.body.clone();
        let at = damaged.len() * part / 61;
        if damaged[at] == b'\n' {
            continue;
        }
        damaged[at] = if damaged[at] == b'A' { b'B' } else { b'A' };
        assert!(
            !verify_export(
                std::io::Cursor::new(&damaged),
                &verifier,
                &ExportVerifyOptions::default()
            )
            .is_ok(),
            "a byte changed at {at} went unnoticed"
        );
    }

    // The export is now an event of the log, by the viewer's key, naming the size.
    let records = all_records(&viewer).await;
    let exported = &records[usize::try_from(size).expect("size")];
    assert_eq!(exported["type"], "veritrail.log.exported");
    assert_eq!(exported["actor"]["id"], viewer_id.as_str());
    assert_eq!(exported["details"]["tree_size"], size);
    server.stop().await;
}

#[tokio::test]
async fn an_empty_log_has_no_checkpoint_proof_or_export() {
    // The API always writes `veritrail.tenant.created` first; a tenant made in the control
    // plane directly is the only way to see an empty log.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut owner = String::new();
    let server = TestServer::start_prepared(
        dir.path().to_owned(),
        |_| {},
        |server| {
            let tenant = veritrail_core::event::TenantId::parse("empty").expect("id");
            owner = server
                .state()
                .control()
                .create_tenant(&tenant, None, &Default::default())
                .expect("tenant")
                .2;
        },
    )
    .await;
    for path in [
        "/api/v1/log/checkpoint",
        "/api/v1/log/export",
        "/api/v1/log/proof/inclusion?seq=0",
        "/api/v1/events/0",
    ] {
        server
            .get(path, Some(&owner))
            .await
            .expect(404, Some("not_found"));
    }
    // As documented: 404 for the empty log, before the sizes are looked at.
    server
        .get("/api/v1/log/proof/consistency?from=1", Some(&owner))
        .await
        .expect(404, Some("not_found"));
    let page = server.get("/api/v1/events", Some(&owner)).await;
    page.expect(200, None);
    assert_eq!(page.json()["events"], json!([]));
    assert_eq!(page.json()["log_size"], 0);
    // The log key is there before any checkpoint.
    server
        .get("/api/v1/log/key", Some(&owner))
        .await
        .expect(200, None);
    // No export event was written by the refused export.
    assert_eq!(server.admin().tenant("empty").await.expect("t").log_size, 0);
    server.stop().await;
}
