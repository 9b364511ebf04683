//! `veritrail retention ...`, `veritrail erase` and `veritrail holds ...` against a running
//! server, then `veritrail verify` on its stopped data directory: removals are reported as
//! removals (with the record that made each), not as faults.

use serde_json::Value;
use veritrail_api::{EventInput, RetentionBody, Role};
use veritrail_client::{IngestOptions, KeyScope, Wait};

use crate::serve::ServeProcess;
use crate::{json, succeeded, text};

fn event(id: &str, email: &str) -> EventInput {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "type": "user.login",
        "actor": {"id": format!("u_{id}"), "email": email},
    }))
    .expect("an event")
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erasure_and_holds_from_the_command_line_then_verify_reports_removals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = ServeProcess::start_with_env(&data, &[]);
    let owner = server.new_tenant("acme").await;
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    let publisher = admin
        .create_key(&KeyScope::Tenant("acme".into()), Role::Publisher, None)
        .await
        .expect("key")
        .secret;
    let client = server.client(&publisher);
    let events: Vec<EventInput> = (0..10)
        .map(|i| {
            let email = if i % 3 == 0 {
                "Bob@Example.com"
            } else {
                "ann@example.com"
            };
            event(&format!("e{i}"), email)
        })
        .collect();
    client
        .send(
            &events,
            IngestOptions {
                wait: Wait::Searchable,
                ..IngestOptions::default()
            },
        )
        .await
        .expect("sent");
    let verifier_key = server
        .client(&owner)
        .log_key()
        .await
        .expect("key")
        .verifier_key;
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", server.url.as_str(), "--key", owner.as_str()]);
        crate::veritrail(&data, &all, None)
    };

    // No policy yet: nothing to remove.
    let shown = succeeded(&run(&["retention", "show"]));
    assert!(shown.contains("keep everything"), "{shown}");
    let missing = run(&["retention", "set"]);
    assert_eq!(missing.status.code(), Some(2), "clap refuses no limit");

    // Keep the newest 4: the run removes the oldest of the log (the tenant's own
    // audit events included) and says so.
    let set = succeeded(&run(&["retention", "set", "--max-events", "4"]));
    assert!(set.contains("keep the newest 4 events (tenant)"), "{set}");
    let ran = json(&run(&["retention", "run", "--json"]));
    let removed = ran["removed"].as_u64().expect("removed");
    let below = ran["below_seq"].as_u64().expect("below");
    assert!(removed > 0 && removed == below, "{ran}");
    let recorded = ran["recorded_as"].as_u64().expect("recorded");
    let body: RetentionBody =
        serde_json::from_value(json(&run(&["retention", "show", "--json"]))).expect("body");
    assert_eq!(body.removed_below, below);
    assert_eq!(body.last_run.expect("run").recorded_as, Some(recorded));
    let refused = run(&["get", "0"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("record_removed, HTTP 410"),
        "{}",
        text(&refused.stderr)
    );
    succeeded(&run(&["retention", "clear"]));

    // A hold on Bob stops his erasure, naming the hold; released, the erasure goes.
    let hold = json(&run(&[
        "holds",
        "create",
        "--actor-email",
        "bob@example.com",
        "--reason",
        "case 7",
        "--json",
    ]));
    let hold_id = hold["hold_id"].as_str().expect("id").to_owned();
    let listed = succeeded(&run(&["holds", "list"]));
    assert!(
        listed.contains(&hold_id) && listed.contains("actor email bob@example.com"),
        "{listed}"
    );
    let held = run(&[
        "erase",
        "--actor-email",
        "bob@example.com",
        "--reason",
        "GDPR art. 17",
    ]);
    assert_eq!(held.status.code(), Some(1));
    let stderr = text(&held.stderr);
    assert!(
        stderr.contains("held, HTTP 409") && stderr.contains(&hold_id),
        "{stderr}"
    );
    succeeded(&run(&["holds", "release", &hold_id]));

    let dry = json(&run(&[
        "erase",
        "--actor-email",
        "bob@example.com",
        "--reason",
        "GDPR art. 17",
        "--dry-run",
        "--json",
    ]));
    assert_eq!(dry["dry_run"], true);
    // What the count cut kept of Bob's events (seqs 0, 3, 6 and 9) is what goes.
    let would: Vec<u64> = serde_json::from_value(dry["seqs"].clone()).expect("seqs");
    assert!(
        !would.is_empty() && would.iter().all(|seq| *seq >= below),
        "{dry}"
    );
    let erased = succeeded(&run(&[
        "erase",
        "--actor-email",
        "bob@example.com",
        "--reason",
        "GDPR art. 17",
    ]));
    assert!(
        erased.starts_with(&format!("erased {} event", would.len())),
        "{erased}"
    );
    let again = json(&run(&[
        "erase",
        "--actor-email",
        "bob@example.com",
        "--reason",
        "GDPR art. 17",
        "--json",
    ]));
    assert_eq!(again["count"], 0, "an erasure is idempotent: {again}");
    server.terminate();

    // Offline: the stored log verifies, and names both removals.
    let verify = crate::veritrail(&data, &["verify", "--key", &verifier_key], None);
    let out = text(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "removed by record {recorded}: every record below seq {below} (retention)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(": {} (erasure)", plural(would.len(), "record")))
            && out.contains(&format!(
                "{} removed, each by a recorded removal",
                plural(
                    usize::try_from(below).expect("small") + would.len(),
                    "record"
                )
            )),
        "{out}"
    );
    let report: Value = serde_json::from_slice(
        &crate::veritrail(&data, &["verify", "--key", &verifier_key, "--json"], None).stdout,
    )
    .expect("JSON");
    let acme = report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|tenant| tenant["tenant"] == "acme")
        .expect("acme");
    assert_eq!(acme["removals"].as_array().expect("removals").len(), 2);
    assert_eq!(report["ok"], true);
}
