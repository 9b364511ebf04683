//! The Activity page in a real headless Chromium (Debian's `chromium`), driven by
//! `playwright-core` and checked by `axe-core` (`tests/browser/activity.mjs`; `scripts/test`
//! installs Chromium and the pinned npm packages). Without them this test says so and
//! passes, except in CI, where it fails.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use veritrail_api::{EventInput, Role};
use veritrail_client::{IngestOptions, KeyScope, Wait};

use crate::serve::ServeProcess;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
}

/// Whether Chromium, Node and the npm packages are here; the reason when not.
fn missing() -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is not installed"));
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some(
            "the npm packages are not installed (npm ci in crates/veritrail/tests/browser)".into(),
        );
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_page_works_in_a_real_browser() {
    if let Some(why) = missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser test must run in CI: {why}"
        );
        eprintln!(
            "note: the browser test was skipped: {why} (scripts/test installs what it needs)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start_with_env(&dir.path().join("data"), &[]);
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    let owner = admin
        .create_tenant("acme", None)
        .await
        .unwrap()
        .owner_key
        .secret;
    let scope = KeyScope::Tenant("acme".into());
    let publisher = admin
        .create_key(&scope, Role::Publisher, None)
        .await
        .unwrap()
        .secret;
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let adopted = reqwest::Client::new()
        .put(format!("{}/api/v1/catalog/settings", server.url))
        .bearer_auth(&owner)
        .header("content-type", "application/json")
        .body(r#"{"policy": "lenient", "adopted": ["seed-003-user-actions"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(adopted.status(), 200);
    // Two days of events: seed 003's user actions by two people, and documents.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let types = [
        "user.logged_in",
        "user.permissions_updated",
        "user.mfa_enabled",
    ];
    let events: Vec<EventInput> = (0..60u64)
        .map(|i| {
            let at = now - 2 * 86_400 + i * 2_800;
            let at = veritrail_core::event::Timestamp::from_unix_nanos(
                i64::try_from(at).unwrap() * 1_000_000_000,
            );
            let (event_type, actor) = if i % 4 == 3 {
                ("doc.opened", "carol@example.com")
            } else {
                (
                    types[(i % 3) as usize],
                    if i % 2 == 0 {
                        "ann@example.com"
                    } else {
                        "bob@example.com"
                    },
                )
            };
            serde_json::from_value(json!({
                "id": format!("e{i}"), "type": event_type, "occurred_at": at.to_rfc3339(),
                "outcome": if i % 5 == 0 { "failure" } else { "success" },
                "actor": {"id": actor, "email": actor},
            }))
            .unwrap()
        })
        .collect();
    server
        .client(&publisher)
        .send(
            &events,
            IngestOptions {
                wait: Wait::Searchable,
                ..IngestOptions::default()
            },
        )
        .await
        .unwrap();

    let artifacts = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/browser-artifacts"
    ));
    let mut child = Command::new("node")
        .arg("activity.mjs")
        .current_dir(browser_dir())
        .env("URL", &server.url)
        .env("OWNER", &owner)
        .env("PUBLISHER", &publisher)
        .env("ARTIFACTS", artifacts)
        .env("CHROMIUM", CHROMIUM)
        .spawn()
        .unwrap();
    // Bounded: stopped by its PID after two minutes.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser checks did not finish within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status.success(),
        "the browser checks failed (see the output above)"
    );
    assert!(
        artifacts.join("activity-1280.png").exists() && artifacts.join("activity-390.png").exists()
    );
    server.terminate();
}
