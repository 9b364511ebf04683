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
