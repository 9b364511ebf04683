//! Findings of the hardening review, each reproduced over real HTTP or on real files: what a
//! hostile key, a damaged file or a careless umask could do before, refused now.

use std::os::unix::fs::PermissionsExt;

use crate::support::TestServer;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory is 0700 and the files holding secrets 0600 from their first byte,
/// whatever the umask; looser modes found at start are named.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_on_disk_are_private_whatever_the_umask() {
    // The usual umask, which left control.redb (the viewer-token signing key) at 0644.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = TestServer::start_in(data.clone(), |_| {}).await;
    server.tenant("acme").await;
    server.stop().await;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for file in ["log-key", "control.redb", "webhooks.redb"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert!(veritrail_server::private_mode_warnings(&data).is_empty());

    // An operator's looser modes are named at start (and left as they are).
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(
        data.join("control.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let warnings = veritrail_server::private_mode_warnings(&data);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("chmod 700"), "{warnings:?}");
    assert!(
        warnings[1].contains("control.redb") && warnings[1].contains("644"),
        "{warnings:?}"
    );
    let server = TestServer::start_in(data.clone(), |_| {}).await;
    server.stop().await;
    assert_eq!(mode(&data), 0o755, "the operator's choice is not changed");
}

/// Finding 7: IPv6 forms that carry an IPv4 address, and deprecated or special-purpose
/// ranges, were accepted as webhook targets. Each is refused at creation, with the address
/// it really is named.
#[tokio::test(flavor = "multi_thread")]
async fn webhook_targets_in_every_ipv6_form_of_an_internal_address_are_refused() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    for (url, says) in [
        (
            "http://[::127.0.0.2]/",
            "IPv4-compatible form of 127.0.0.2, a loopback",
        ),
        (
            "http://[::ffff:0:127.0.0.2]/",
            "SIIT) form of 127.0.0.2, a loopback",
        ),
        (
            "http://[2002:7f00:2::]/",
            "6to4 form of 127.0.0.2, a loopback",
        ),
        (
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffd]/",
            "Teredo form of 127.0.0.2, a loopback",
        ),
        ("http://[fec0::1]/", "site-local"),
        (
            "http://[::ffff:a9fe:a9fe]/",
            "169.254.169.254, a link-local",
        ),
        ("http://[2001:db8::1]/", "documentation"),
        ("http://192.0.2.1/", "documentation"),
        ("http://2130706433/", "loopback"),
    ] {
        let reply = server
            .post_json(
                "/api/v1/webhooks",
                Some(&owner),
                &serde_json::json!({"url": url}),
            )
            .await;
        reply.expect(422, Some("forbidden_target"));
        let message = reply.json()["error"]["message"]
            .as_str()
            .expect("message")
            .to_owned();
        assert!(message.contains(says), "{url}: {message}");
    }
    server.stop().await;
}

/// Finding 9: one flipped byte in an inner hash of a tenant's `nodes` file made the server
/// serve inclusion proofs that do not verify against its own signed checkpoint, and the
/// offline verifier said OK. Now the verifier names the node, and the server answers 500
/// `integrity_error` for every proof that would pass through it (counting it), while proofs
/// that do not touch it are still served, and verify.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_node_hash_is_found_by_verify_and_never_served() {
    use veritrail_core::merkle::NodeId;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = TestServer::start_in(data.clone(), |_| {}).await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", veritrail_api::Role::Publisher).await;
    let events: Vec<serde_json::Value> = (0..20)
        .map(|i| serde_json::json!({"id": format!("e{i}"), "type": "user.login"}))
        .collect();
    server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &serde_json::json!(events),
        )
        .await
        .expect(200, None);
    let vkey = server.get("/api/v1/log/key", Some(&owner)).await.json()["verifier_key"]
        .as_str()
        .expect("key")
        .to_owned();
    server.stop().await;

    // Node (level 1, index 0) = H(leaf 0, leaf 1): on the proof path of seqs 2 and 3, not 0.
    let nodes = data.join("ledger/tenants/acme/nodes");
    let mut bytes = std::fs::read(&nodes).expect("nodes file");
    let at = usize::try_from(veritrail_ledger::store::postorder_index(NodeId::new(1, 0)))
        .expect("small")
        * 32;
    bytes[at + 7] ^= 0x01;
    std::fs::write(&nodes, bytes).expect("write");

    let verifier = veritrail_core::note::NoteVerifier::parse(&vkey).expect("vkey");
    let report = veritrail_ledger::verify::verify_ledger_dir(
        &data.join("ledger"),
        &verifier,
        &veritrail_ledger::verify::VerifyOptions::default(),
        &mut |_, _| {},
    )
    .expect("verify runs");
    assert!(!report.is_ok(), "the damaged node is found");
    assert!(
        report.faults.iter().any(|fault| {
            fault.kind == veritrail_ledger::verify::FaultKind::DerivedMismatch
                && fault.detail.contains("level 1, index 0")
        }),
        "{:?}",
        report.faults
    );

    let server = TestServer::start_in(data.clone(), |_| {}).await;
    let integrity_before = integrity_failures(&server).await;
    for path in [
        "/api/v1/log/proof/inclusion?seq=2",
        "/api/v1/log/proof/inclusion?seq=3&tree_size=10",
        "/api/v1/log/proof/consistency?from=2",
        "/api/v1/events/3?proof=true",
    ] {
        let reply = server.get(path, Some(&owner)).await;
        reply.expect(500, Some("integrity_error"));
        assert!(
            !reply.text().contains("proof\""),
            "{path}: {}",
            reply.text()
        );
    }
    assert!(
        integrity_failures(&server).await >= integrity_before + 4,
        "each refusal is counted"
    );
    // A proof that does not pass through the damaged node is served, and verifies.
    let reply = server
        .get("/api/v1/log/proof/inclusion?seq=0", Some(&owner))
        .await;
    reply.expect(200, None);
    let body: veritrail_api::InclusionProofBody =
        serde_json::from_slice(&reply.body).expect("proof body");
    let checkpoint = crate::support::open_checkpoint(&body.checkpoint, &vkey);
    let proof: Vec<_> = body.proof.iter().map(|h| crate::support::hash(h)).collect();
    veritrail_core::merkle::verify_inclusion(
        &crate::support::hash(&body.leaf_hash),
        0,
        body.tree_size,
        &proof,
        checkpoint.root(),
    )
    .expect("the served proof verifies");
    server.stop().await;
}

async fn integrity_failures(server: &TestServer) -> u64 {
    let text = server.get("/metrics", None).await.text();
    text.lines()
        .find_map(|line| line.strip_prefix("veritrail_integrity_failures_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the metric")
}

/// Finding 9, second half: a record that fails its checksum was answered 503 "retry later"
/// (storage unavailable), which no retry mends. It is a 500 `integrity_error` now, and
/// counted as corrupt storage.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_failing_its_checksum_is_a_500_not_a_retry_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = TestServer::start_in(data.clone(), |_| {}).await;
    let owner = server.tenant("acme").await;
    // Later commits, so that the damaged one is not the log's last (whose checkpoint the
    // server reads when it opens).
    server.key("acme", veritrail_api::Role::Viewer).await;
    server.key("acme", veritrail_api::Role::Viewer).await;
    server.stop().await;
    // The tenant's first record (its creation event) is the journal's first entry.
    let segment = data.join("ledger/journal/00000000000000000000.seg");
    let mut bytes = std::fs::read(&segment).expect("segment");
    bytes[16 + 12 + 9 + 40] ^= 0x20;
    std::fs::write(&segment, bytes).expect("write");

    let server = TestServer::start_in(data.clone(), |_| {}).await;
    let reply = server.get("/api/v1/events/0", Some(&owner)).await;
    reply.expect(500, Some("integrity_error"));
    assert_eq!(reply.header("retry-after"), None, "not worth retrying");
    let metrics = server.get("/metrics", None).await.text();
    assert!(
        !metrics.contains("veritrail_storage_errors_total{kind=\"corrupt\"} 0"),
        "{metrics}"
    );
    server.stop().await;
}

/// Finding 3: redeliveries of a disabled subscription queued without bound (20 calls grew
/// the server by 400 MiB). A disabled subscription refuses them (409), and an enabled one
/// keeps at most 16 waiting (429 with Retry-After beyond), each a range, not its messages.
#[tokio::test(flavor = "multi_thread")]
async fn redeliveries_wait_in_a_bounded_queue_and_never_for_a_disabled_subscription() {
    use crate::receiver::{Receiver, Reply};
    use serde_json::json;
    let server = TestServer::start_with(|config| {
        config.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
        config.webhooks.attempt_timeout_ms = 60_000;
    })
    .await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", veritrail_api::Role::Publisher).await;
    let receiver = Receiver::start().await;
    // The first delivery hangs: the subscription's task takes nothing from its queue.
    receiver.set_default(Reply::Hang);
    let created = server
        .post_json(
            "/api/v1/webhooks",
            Some(&owner),
            &json!({"url": receiver.url("hook")}),
        )
        .await;
    created.expect(201, None);
    let id = created.json()["webhook"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let sent = server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!([{"type": "user.login"}, {"type": "user.logout"}]),
        )
        .await;
    sent.expect(200, None);
    let last = sent.json()["receipts"][1]["seq"].as_u64().expect("seq");
    receiver
        .wait_for(
            |deliveries| !deliveries.is_empty(),
            std::time::Duration::from_secs(10),
        )
        .await;
    let path = format!("/api/v1/webhooks/{id}/redeliver");
    let range = json!({"from_seq": last - 1, "to_seq": last});
    for call in 0..16 {
        let reply = server.post_json(&path, Some(&owner), &range).await;
        assert_eq!(reply.status, 202, "call {call}: {}", reply.text());
    }
    let refused = server.post_json(&path, Some(&owner), &range).await;
    refused.expect(429, Some("rate_limited"));
    assert!(refused.header("retry-after").is_some());

    let patched = server
        .send(
            server
                .request(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/webhooks/{id}"),
                    Some(&owner),
                )
                .header("content-type", "application/json")
                .body(r#"{"enabled": false}"#),
        )
        .await;
    patched.expect(200, None);
    let reply = server.post_json(&path, Some(&owner), &range).await;
    reply.expect(409, Some("conflict"));
    assert!(reply.text().contains("enable it first"), "{}", reply.text());
    receiver.stop().await;
    server.stop().await;
}
