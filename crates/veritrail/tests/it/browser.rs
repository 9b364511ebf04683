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

/// Whether the browser checks can run: in CI and under `scripts/test` they must (it panics
/// when something is missing); elsewhere a missing piece skips them with a note.
fn can_run() -> bool {
    let Some(why) = missing() else {
        return true;
    };
    assert!(
        !crate::receiver::tools_required(),
        "the browser test must run (CI or VERITRAIL_REQUIRE_TOOLS): {why}"
    );
    eprintln!("note: the browser test was skipped: {why} (scripts/test installs what it needs)");
    false
}

/// Runs `script` (in `tests/browser/`) under Node with `env`, stopped by its PID after two
/// minutes; panics unless it exits 0.
async fn run_script(script: &str, env: &[(&str, &str)]) {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(browser_dir())
        .env("CHROMIUM", CHROMIUM)
        .env("ARTIFACTS", artifacts())
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser checks of {script} did not finish within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status.success(),
        "the browser checks of {script} failed (see the output above)"
    );
}

/// Where the screenshots go.
fn artifacts() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/browser-artifacts"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_page_works_in_a_real_browser() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start_with_env(&dir.path().join("data"), &[]);
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    let owner = server.new_tenant("acme").await;
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
        .body(r#"{"policy": "lenient", "adopted": ["vgs-user-actions"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(adopted.status(), 200);
    // Two days of events: VGS-style user actions by two people, and documents.
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

    run_script(
        "activity.mjs",
        &[
            ("URL", &server.url),
            ("OWNER", &owner),
            ("PUBLISHER", &publisher),
        ],
    )
    .await;
    let artifacts = artifacts();
    for shot in [
        "activity-1280.png",
        "activity-390.png",
        "drawer-1280.png",
        "drawer-390.png",
        "embedded-drawer.png",
    ] {
        assert!(artifacts.join(shot).exists(), "{shot}");
    }
    server.terminate();
}

/// The README's first steps: `veritrail serve --demo`, open the printed address, sign in
/// with the printed key; the Activity page shows events with catalog names and codes and a
/// histogram, a filter works, and a record opens verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_works_as_the_readme_says() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start_with_args(&dir.path().join("data"), &["--demo"], &[]);
    let printed = |label: &str| {
        server
            .printed
            .iter()
            .find_map(|line| line.strip_prefix(label))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
            .unwrap_or_else(|| panic!("the server printed no {label:?}: {:?}", server.printed))
    };
    let page = printed("Activity page: ");
    let key = printed("Viewer key (reads): ");
    assert!(
        page.starts_with(&server.url) && page.ends_with("/activity"),
        "{page}"
    );
    assert!(key.starts_with("vt_"), "{key}");
    run_script("demo.mjs", &[("PAGE", &page), ("KEY", &key)]).await;
    server.terminate();
}
