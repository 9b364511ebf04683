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

// ---------------------------------------------------------------------------------------
// Raw connections, as an attacker opens them.
// ---------------------------------------------------------------------------------------

/// Opens a TCP connection to the server and sends `request` (a whole HTTP/1.1 head).
async fn raw(server: &TestServer, request: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    stream
}

/// The status line's code of what `stream` starts with (reads up to 64 bytes).
async fn status_of(stream: &mut tokio::net::TcpStream) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut head))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&head[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

/// Whether the server closed `stream` within `seconds` (reading everything it sends).
async fn closed_within(stream: &mut tokio::net::TcpStream, seconds: u64) -> bool {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// Finding 1: 520 connections of one viewer key that ask for the export and never read took
/// 475 threads and 4.3 GiB, and every other tenant's requests answered 504. Now a key has at
/// most 8 exports or tails open (the rest get 429 at once), an export holds no thread while
/// its client does not read, every other tenant is answered promptly meanwhile, and the
/// stalled connections are dropped after the write timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_readers_that_never_read_are_bounded_and_dropped() {
    let server = TestServer::start_with(|config| {
        config.limits.write_timeout_secs = 2;
        config.rate_limit.requests_per_second = 0;
    })
    .await;
    server.tenant("acme").await;
    server.tenant("other").await;
    let publisher = server.key("acme", veritrail_api::Role::Publisher).await;
    let viewer = server.key("acme", veritrail_api::Role::Viewer).await;
    let other = server.key("other", veritrail_api::Role::Viewer).await;
    // About 10 MB of export: more than the socket buffers hold.
    let summary = "x".repeat(300);
    for batch in 0..20 {
        let events: Vec<serde_json::Value> = (0..1000)
            .map(|i| {
                serde_json::json!({"id": format!("e{batch}-{i}"), "type": "user.login", "summary": summary})
            })
            .collect();
        server
            .post_json(
                "/api/v1/events",
                Some(&publisher),
                &serde_json::json!(events),
            )
            .await
            .expect(200, None);
    }
    let request = format!(
        "GET /api/v1/log/export HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {viewer}\r\n\r\n"
    );
    let mut connections = Vec::new();
    for _ in 0..100 {
        connections.push(raw(&server, &request).await);
    }
    let mut statuses = std::collections::BTreeMap::new();
    for stream in &mut connections {
        *statuses.entry(status_of(stream).await).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        [(200, 8), (429, 92)].into_iter().collect(),
        "8 exports per key, the rest refused at once"
    );
    let metrics = server.get("/metrics", None).await.text();
    assert_eq!(metric(&metrics, "veritrail_streams_open"), 8);

    // Meanwhile another tenant is answered promptly, many times over.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        server
            .get("/api/v1/events?limit=5", Some(&other))
            .await
            .expect(200, None);
        server
            .get("/api/v1/events/count", Some(&other))
            .await
            .expect(200, None);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "40 requests of another tenant took {:?}",
        started.elapsed()
    );

    // The exports nobody reads are dropped after the write timeout, and give their places
    // back.
    crate::support::eventually("the stalled exports are dropped", 20, || async {
        let metrics = server.get("/metrics", None).await.text();
        metric(&metrics, "veritrail_streams_open") == 0
            && metric(&metrics, "veritrail_connections_stalled_total") >= 8
    })
    .await;
    let mut again = raw(&server, &request).await;
    assert_eq!(status_of(&mut again).await, 200, "the key may export again");
    drop(again);
    drop(connections);
    server.stop().await;
}

/// Slow or idle clients are dropped: a request head that does not arrive in time, and an
/// idle connection; past `max_connections`, one more connection gets a 503 and is closed.
#[tokio::test(flavor = "multi_thread")]
async fn slow_idle_and_surplus_connections_are_dropped() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|config| {
        config.limits.header_read_timeout_secs = 1;
        config.limits.max_connections = 4;
    })
    .await;
    // Half a request head, and then nothing (slowloris).
    let mut slow = raw(&server, "GET /healthz HTTP/1.1\r\nhost: x\r\n").await;
    // Nothing at all.
    let mut idle = raw(&server, "").await;
    // A keep-alive connection after its first answer.
    let mut kept = raw(&server, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(status_of(&mut kept).await, 200);
    let mut fourth = raw(&server, "").await;
    let mut surplus = raw(&server, "").await;
    assert_eq!(status_of(&mut surplus).await, 503, "over max_connections");
    for (what, stream) in [
        ("a slow head", &mut slow),
        ("an idle connection", &mut idle),
        ("an idle keep-alive connection", &mut kept),
        ("another idle connection", &mut fourth),
    ] {
        assert!(closed_within(stream, 5).await, "{what} was not dropped");
    }
    // Places are free again.
    let mut next = raw(&server, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(status_of(&mut next).await, 200);
    let _ = next.shutdown().await;
    server.stop().await;
}

/// URI and header sizes over the limits get the API's error body, with a stable code.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_targets_and_headers_get_clear_errors() {
    let server = TestServer::start().await;
    let viewer = {
        let owner = server.tenant("acme").await;
        drop(owner);
        server.key("acme", veritrail_api::Role::Viewer).await
    };
    let long = format!("/api/v1/events?q={}", "a".repeat(9000));
    server
        .get(&long, Some(&viewer))
        .await
        .expect(414, Some("uri_too_long"));
    let reply = server
        .send(
            server
                .request(reqwest::Method::GET, "/api/v1/events", Some(&viewer))
                .header("x-padding", "p".repeat(70_000)),
        )
        .await;
    reply.expect(431, Some("headers_too_large"));
    server.stop().await;
}

/// A key of `role` in `tenant` made by the server admin: `(id, secret)`.
async fn key_with_id(
    server: &TestServer,
    tenant: &str,
    role: veritrail_api::Role,
) -> (String, String) {
    let created = server
        .admin()
        .create_key(
            &veritrail_client::KeyScope::Tenant(tenant.to_owned()),
            role,
            None,
        )
        .await
        .expect("key created");
    (created.key.id, created.secret)
}

/// Reads `response`'s body until `needle` arrives (within 10 s).
async fn read_until(response: &mut reqwest::Response, needle: &str) {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("{needle:?} did not arrive; got {seen:?}"))
            .expect("the stream goes on")
            .expect("the stream goes on");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// Whether `response`'s body ends within `limit` (what arrives before is skipped).
async fn ends_within(response: &mut reqwest::Response, limit: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => return false,
            Ok(Ok(None) | Err(_)) => return true,
            Ok(Ok(Some(_))) => {}
        }
    }
}

/// Finding 2: after a key was revoked, its open live tail and an admin's open
/// `/activity/stream` kept receiving events, and viewer tokens stayed valid and could not be
/// revoked. Now revoking a key ends its tails, its sessions and their streams, and the viewer
/// tokens it minted, within a second; viewer tokens are listed, and revocable by id.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_ends_every_stream_session_and_token_derived_from_a_key() {
    use reqwest::Method;
    use serde_json::json;
    use veritrail_api::Role;
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let (viewer_id, viewer) = key_with_id(&server, "acme", Role::Viewer).await;
    let (admin_id, admin) = key_with_id(&server, "acme", Role::Admin).await;

    let mut tail = server
        .request(Method::GET, "/api/v1/events/stream", Some(&viewer))
        .send()
        .await
        .expect("tail");
    assert_eq!(tail.status(), 200);
    let signed_in = crate::ui::sign_in(&server, &admin).await;
    let (session, _) = crate::ui::set_cookie(&signed_in, "vt_session").expect("a session");
    let mut live = server
        .request(Method::GET, "/activity/stream", None)
        .header("cookie", format!("vt_session={session}"))
        .send()
        .await
        .expect("activity stream");
    assert_eq!(live.status(), 200);
    let mint = |key: String| {
        let server = &server;
        async move {
            let reply = server
                .post_json(
                    "/api/v1/viewer-tokens",
                    Some(&key),
                    &json!({"ttl_seconds": 600}),
                )
                .await;
            reply.expect(201, None);
            let body = reply.json();
            (
                body["token_id"].as_str().expect("id").to_owned(),
                body["embed_path"].as_str().expect("path").to_owned(),
            )
        }
    };
    let (admins_token, admins_view) = mint(admin.clone()).await;
    let (owners_token, owners_view) = mint(owner.clone()).await;
    server.get(&admins_view, None).await.expect(200, None);

    server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &json!({"id": "before", "type": "user.login"}),
        )
        .await
        .expect(200, None);
    read_until(&mut tail, "before").await;
    read_until(&mut live, "before").await;

    // The viewer key is revoked: its tail ends at once.
    server
        .send(server.request(
            Method::DELETE,
            &format!("/api/v1/keys/{viewer_id}"),
            Some(&owner),
        ))
        .await
        .expect(200, None);
    assert!(
        ends_within(&mut tail, std::time::Duration::from_secs(1)).await,
        "the revoked key's tail ended within a second"
    );

    // The admin key is revoked: its session's stream ends at once, its session is over,
    // and the viewer token it minted opens nothing; the owner's token still works.
    server
        .send(server.request(
            Method::DELETE,
            &format!("/api/v1/keys/{admin_id}"),
            Some(&owner),
        ))
        .await
        .expect(200, None);
    assert!(
        ends_within(&mut live, std::time::Duration::from_secs(1)).await,
        "the revoked key's activity stream ended within a second"
    );
    let page = server
        .send(
            server
                .request(Method::GET, "/activity", None)
                .header("cookie", format!("vt_session={session}")),
        )
        .await;
    assert!(
        page.text().contains("name=\"csrf\""),
        "back at the sign-in page"
    );
    let refused = server.get(&admins_view, None).await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused.text().contains("revoked"), "{}", refused.text());
    server.get(&owners_view, None).await.expect(200, None);

    // Tokens are listed with their state, and revocable by id (an audit event).
    let listed = server.get("/api/v1/viewer-tokens", Some(&owner)).await;
    listed.expect(200, None);
    let listed = listed.json();
    let state_of = |id: &str| {
        listed["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .find(|token| token["token_id"] == id)
            .map(|token| token["state"].as_str().expect("state").to_owned())
    };
    assert_eq!(state_of(&admins_token).as_deref(), Some("minter_revoked"));
    assert_eq!(state_of(&owners_token).as_deref(), Some("live"));
    assert!(
        !listed.to_string().contains("vtv_"),
        "never the token itself"
    );
    server
        .send(server.request(
            Method::DELETE,
            &format!("/api/v1/viewer-tokens/{owners_token}"),
            Some(&owner),
        ))
        .await
        .expect(204, None);
    assert_eq!(server.get(&owners_view, None).await.status, 401);
    let listed = server
        .get("/api/v1/viewer-tokens", Some(&owner))
        .await
        .json();
    assert!(
        listed.to_string().contains("\"state\":\"revoked\""),
        "{listed}"
    );
    server
        .send(server.request(
            Method::DELETE,
            "/api/v1/viewer-tokens/vtk_nosuchtoken",
            Some(&owner),
        ))
        .await
        .expect(404, Some("not_found"));
    let viewer2 = server.key("acme", Role::Viewer).await;
    server
        .get("/api/v1/viewer-tokens", Some(&viewer2))
        .await
        .expect(403, Some("forbidden"));
    crate::support::wait_indexed(&server.client(&viewer2), 1).await;
    let revoked = server
        .get(
            "/api/v1/events?type=veritrail.viewer_token.revoked",
            Some(&viewer2),
        )
        .await
        .json();
    assert_eq!(
        revoked["events"].as_array().expect("events").len(),
        1,
        "{revoked}"
    );
    server.stop().await;
}

/// Finding 5: every embedded-view request appended a record (200 requests of a 404 page:
/// 200 records). Uses are now recorded by token and minute, and a token's requests are
/// rate limited (429 past `rate_limit.embed_per_minute`).
#[tokio::test(flavor = "multi_thread")]
async fn embedded_views_are_rate_limited_and_audited_by_token_and_minute() {
    use serde_json::json;
    let server = TestServer::start_with(|config| config.rate_limit.embed_per_minute = 50).await;
    let owner = server.tenant("acme").await;
    let viewer = server.key("acme", veritrail_api::Role::Viewer).await;
    let minted = server
        .post_json("/api/v1/viewer-tokens", Some(&owner), &json!({}))
        .await;
    minted.expect(201, None);
    let token_id = minted.json()["token_id"].as_str().expect("id").to_owned();
    let token = minted.json()["token"].as_str().expect("token").to_owned();
    let size = |server: &TestServer| {
        let admin = server.admin();
        async move { admin.tenant("acme").await.expect("tenant").log_size }
    };
    let before = size(&server).await;
    let started = veritrail_server::clock::now()
        .unix_nanos()
        .div_euclid(60_000_000_000);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..200 {
        let reply = server
            .get(&format!("/embed/events/999999?token={token}"), None)
            .await;
        *statuses.entry(reply.status).or_insert(0) += 1;
        if reply.status == 429 {
            assert!(reply.header("retry-after").is_some());
        }
    }
    // 50 at once, and the bucket refills at 50 a minute while the loop runs.
    let served = statuses.get(&404).copied().unwrap_or(0);
    assert!((50..=60).contains(&served), "{statuses:?}");
    assert_eq!(
        statuses.get(&429).copied().unwrap_or(0),
        200 - served,
        "{statuses:?}"
    );
    let ended = veritrail_server::clock::now()
        .unix_nanos()
        .div_euclid(60_000_000_000);
    let minutes = u64::try_from(ended - started + 1).expect("minutes");
    let added = size(&server).await - before;
    assert!(
        (1..=minutes).contains(&added),
        "one record per token and minute, not per request: {added}"
    );
    crate::support::wait_indexed(&server.client(&viewer), 1).await;
    let used = server
        .get(
            "/api/v1/events?type=veritrail.viewer_token.used",
            Some(&viewer),
        )
        .await
        .json();
    let first = &used["events"][0];
    assert_eq!(first["details"]["token_id"], json!(token_id));
    assert!(first["details"]["minute"].is_string(), "{first}");
    server.stop().await;
}

/// Finding 4: a free text of 20,000 `a*` words cost 11.8 s of CPU, through the API or the
/// embedded view. Words, prefix words, prefix expansions, list filter values and histogram
/// buckets are bounded now, each refused at once with `query_too_costly` saying what to
/// change.
#[tokio::test(flavor = "multi_thread")]
async fn costly_queries_are_refused_at_once_with_what_to_change() {
    use serde_json::json;
    let server = TestServer::start_with(|config| {
        config.limits.max_prefix_terms = 50;
        config.limits.max_histogram_buckets = 50;
    })
    .await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", veritrail_api::Role::Publisher).await;
    let viewer = server.key("acme", veritrail_api::Role::Viewer).await;
    // 100 words starting with `zz`, an hour apart over about four days.
    let events: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            json!({"type": "user.login", "summary": format!("zz{i:03} signed in"),
                   "occurred_at": format!("2026-01-{:02}T{:02}:00:00Z", 1 + i / 24, i % 24)})
        })
        .collect();
    server
        .post_json(
            "/api/v1/events?wait=searchable",
            Some(&publisher),
            &json!(events),
        )
        .await
        .expect(200, None);
    let costly = |path: String| {
        let (server, viewer) = (&server, &viewer);
        async move {
            let started = std::time::Instant::now();
            let reply = server.get(&path, Some(viewer)).await;
            reply.expect(400, Some("query_too_costly"));
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{path} took {:?}",
                started.elapsed()
            );
            reply.json()["error"]["message"]
                .as_str()
                .expect("message")
                .to_owned()
        }
    };
    // The finding's 20,000 words do not even fit the request line (nor do 10,000).
    let finding = vec!["a*"; 10_000].join("%20");
    server
        .get(&format!("/api/v1/events?q={finding}"), Some(&viewer))
        .await
        .expect(414, Some("uri_too_long"));
    let many_prefixes = vec!["a*"; 1000].join("%20");
    let said = costly(format!("/api/v1/events?q={many_prefixes}")).await;
    assert!(
        said.contains("1000 words") && said.contains("at most 32"),
        "{said}"
    );
    let said = costly(format!("/api/v1/events?q={}", ["a*"; 5].join("%20"))).await;
    assert!(said.contains("5 prefix words"), "{said}");
    let said = costly("/api/v1/events?q=zz*".to_owned()).await;
    assert!(
        said.contains("\"zz\"*") && said.contains("make it longer"),
        "{said}"
    );
    server
        .get("/api/v1/events?q=zz01*", Some(&viewer))
        .await
        .expect(200, None);
    let types: Vec<String> = (0..33).map(|i| format!("t.x{i}")).collect();
    let said = costly(format!("/api/v1/events?type={}", types.join(","))).await;
    assert!(said.contains("33 values"), "{said}");
    // 100 events an hour apart: at one-hour buckets there are 100 (over the limit of 50
    // here), at one-day buckets 5.
    let said = costly("/api/v1/events/count?interval=1h".to_owned()).await;
    assert!(
        said.contains("more than 50 buckets") && said.contains("wider interval"),
        "{said}"
    );
    server
        .get("/api/v1/events/count?interval=1d", Some(&viewer))
        .await
        .expect(200, None);

    // The embedded view, with only a viewer token, is held to the same limits.
    let minted = server
        .post_json("/api/v1/viewer-tokens", Some(&owner), &json!({}))
        .await;
    let token = minted.json()["token"].as_str().expect("token").to_owned();
    let started = std::time::Instant::now();
    let page = server
        .get(&format!("/embed?token={token}&q={many_prefixes}"), None)
        .await;
    assert_eq!(page.status, 400, "{}", page.text());
    assert!(page.text().contains("at most 32"), "the page says why");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    server.stop().await;
}

/// Overload: ingest bodies in flight are bounded by their declared size, before a byte of
/// the body is read. One more is a 503 `overloaded` at once, with Retry-After, and stores
/// nothing; once the one in flight is answered, the same request goes through.
#[tokio::test(flavor = "multi_thread")]
async fn ingests_past_the_bodies_in_flight_are_refused_at_once_and_store_nothing() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|config| {
        config.limits.max_ingest_bytes_in_flight = 64 * 1024;
    })
    .await;
    server.tenant("acme").await;
    let publisher = server.key("acme", veritrail_api::Role::Publisher).await;
    let size = |server: &TestServer| {
        let admin = server.admin();
        async move { admin.tenant("acme").await.expect("tenant").log_size }
    };
    let before = size(&server).await;
    // A slow upload holds 60 KiB of the 64: its body is still coming.
    let body = format!("{:<61440}", r#"{"id": "slow", "type": "user.login"}"#);
    let mut slow = raw(
        &server,
        &format!(
            "POST /api/v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {publisher}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        ),
    )
    .await;
    slow.write_all(&body.as_bytes()[..1000])
        .await
        .expect("part");
    // The slow upload's permit is taken before its body is read: wait until it is.
    crate::support::eventually("the slow upload is in flight", 10, || async {
        let metrics = server.get("/metrics", None).await.text();
        metric(&metrics, "veritrail_ingest_bytes_in_flight") >= 60 * 1024
    })
    .await;
    let event = serde_json::json!({"id": "fast", "type": "user.login", "details": {"pad": "x".repeat(8000)}});
    let refused = server
        .post_json("/api/v1/events", Some(&publisher), &event)
        .await;
    refused.expect(503, Some("overloaded"));
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    assert_eq!(size(&server).await, before, "nothing of it was stored");
    slow.write_all(&body.as_bytes()[1000..])
        .await
        .expect("rest");
    assert_eq!(status_of(&mut slow).await, 200);
    server
        .post_json("/api/v1/events", Some(&publisher), &event)
        .await
        .expect(200, None);
    assert_eq!(size(&server).await, before + 2);
    let metrics = server.get("/metrics", None).await.text();
    assert!(metric(&metrics, "veritrail_ingest_refused_total") >= 1);
    server.stop().await;
}

/// An event and its actor, targets and source are JSON objects: serde's derived structs
/// would also take arrays of their fields in order, which the API does not promise, and
/// such events are refused with the field named.
#[tokio::test(flavor = "multi_thread")]
async fn events_given_as_arrays_of_their_fields_are_refused() {
    let server = TestServer::start().await;
    server.tenant("acme").await;
    let publisher = server.key("acme", veritrail_api::Role::Publisher).await;
    for (body, field) in [
        (r#"[["evt-1", "user.login"]]"#, ""),
        (r#"{"type": "user.login", "actor": ["u_1"]}"#, "actor"),
        (r#"{"type": "user.login", "source": ["svc"]}"#, "source"),
        (
            r#"{"type": "user.login", "targets": [["t_1", "user"]]}"#,
            "targets[0]",
        ),
    ] {
        let reply = server
            .send(
                server
                    .request(reqwest::Method::POST, "/api/v1/events", Some(&publisher))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        reply.expect(400, Some("invalid_events"));
        let error = &reply.json()["error"]["events"][0]["errors"][0];
        assert_eq!(error["field"], serde_json::json!(field), "{body}: {error}");
        assert_eq!(
            error["code"],
            serde_json::json!("invalid_type"),
            "{body}: {error}"
        );
    }
    server
        .post_json(
            "/api/v1/events",
            Some(&publisher),
            &serde_json::json!({"type": "user.login", "actor": {"id": "u_1"}, "targets": null, "source": null}),
        )
        .await
        .expect(200, None);
    server.stop().await;
}
