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
