//! Schemathesis (the property-based API tester, from PyPI) against a real `veritrail serve`,
//! driven by the OpenAPI document the server serves, with a key of every kind: no answer
//! may be a 5xx, and none may contradict the spec (status, content type, headers, body
//! schema, an answer to a request the spec does not allow, authentication ignored).
//!
//! The check that every request the schema allows is accepted (`positive_data_acceptance`)
//! is left out: the schema cannot say everything the API checks (an opaque cursor, a URL
//! that must resolve, a catalog document's rules), and those refusals are documented 400s
//! and 422s.
//!
//! `scripts/test` installs Schemathesis, pinned by hash in
//! `tests/schemathesis/requirements.txt`, into `target/schemathesis-venv`. The number of
//! examples per operation is `VERITRAIL_SCHEMATHESIS_EXAMPLES` (default 10 in CI; thousands
//! on demand), the seed `VERITRAIL_SCHEMATHESIS_SEED` (fixed by default, so a failure
//! reproduces).

use std::path::{Path, PathBuf};
use std::process::Command;

use veritrail_api::Role;
use veritrail_client::{IngestOptions, KeyScope};

use crate::serve::ServeProcess;

/// The `st` command, or why it cannot run.
fn schemathesis() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("VERITRAIL_TEST_SCHEMATHESIS") {
        return Ok(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis-venv/bin/st");
    match Command::new(&venv).arg("--version").output() {
        Ok(output) if output.status.success() => Ok(venv),
        _ => Err(format!(
            "{} is not installed (scripts/test installs it)",
            venv.display()
        )),
    }
}

/// One Schemathesis run against `url` with `key`; panics with its report unless it passes.
fn run(st: &Path, url: &str, who: &str, key: &str, extra: &[&str]) {
    let examples =
        std::env::var("VERITRAIL_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".to_owned());
    let seed =
        std::env::var("VERITRAIL_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261207".to_owned());
    let output = Command::new(st)
        .args([
            "run",
            &format!("{url}/api/audit/swagger/v1/swagger.json"),
            "--url",
            url,
            "--header",
            &format!("Authorization: Bearer {key}"),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--no-color",
        ])
        .args(extra)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "Schemathesis found problems with the {who} key ({extra:?}):\n{report}"
    );
    let summary = report
        .lines()
        .find(|line| line.contains(" generated, "))
        .unwrap_or("")
        .trim()
        .to_owned();
    eprintln!("schemathesis, {who} key {extra:?}: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_to_its_spec_for_every_kind_of_key() {
    let st = match schemathesis() {
        Ok(st) => st,
        Err(why) => {
            assert!(
                !crate::receiver::tools_required(),
                "the Schemathesis test must run (CI or VERITRAIL_REQUIRE_TOOLS): {why}"
            );
            eprintln!("note: the Schemathesis test was skipped: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start_with_env(&dir.path().join("data"), &[]);
    let admin_key = server.admin_key.clone().expect("first start");
    let admin = server.client(&admin_key);
    let owner = server.new_tenant("acme").await;
    let scope = KeyScope::Tenant("acme".into());
    let mut keys = vec![("server admin", admin_key.clone()), ("owner", owner)];
    for (who, role) in [
        ("super_admin", Role::SuperAdmin),
        ("admin", Role::Admin),
        ("viewer", Role::Viewer),
        ("publisher", Role::Publisher),
    ] {
        keys.push((
            who,
            admin.create_key(&scope, role, None).await.unwrap().secret,
        ));
    }
    // Events, so that reads, proofs and the live tail have something to answer with.
    let publisher = server.client(&keys[5].1);
    let events: Vec<veritrail_api::EventInput> = (0..20)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "id": format!("st-{i}"), "type": "user.login",
                "actor": {"id": format!("u{i}"), "email": "ann@example.com"},
                "outcome": if i % 3 == 0 { "failure" } else { "success" },
            }))
            .unwrap()
        })
        .collect();
    publisher
        .send(&events, IngestOptions::default())
        .await
        .unwrap();
    let url = server.url.clone();
    let task = tokio::task::spawn_blocking(move || {
        // Revoking keys would end the run's own key: those operations go last, per key.
        let revocations = "/keys/\\{key_id\\}$";
        for (who, key) in &keys {
            run(
                &st,
                &url,
                who,
                key,
                &[
                    "--exclude-path-regex",
                    revocations,
                    "--exclude-path",
                    "/api/v1/events/stream",
                ],
            );
            // The live tail never ends by itself: each request reads what comes in a
            // second (its events are checked against the schema too).
            run(
                &st,
                &url,
                who,
                key,
                &[
                    "--include-path",
                    "/api/v1/events/stream",
                    "--request-timeout",
                    "1",
                ],
            );
        }
        for (who, key) in &keys {
            run(&st, &url, who, key, &["--include-path-regex", revocations]);
        }
    });
    task.await.unwrap();
    server.terminate();
}
