//! `veritrail export --format jsonl|csv`: the matching events to a file, the summary it
//! prints, `--resume` of an interrupted download giving the same file, and the flags a
//! bundle refuses.

use veritrail_api::{EventInput, Role};
use veritrail_client::{IngestOptions, KeyScope, Wait};

use crate::serve::ServeProcess;

#[tokio::test(flavor = "multi_thread")]
async fn export_writes_the_matching_events_and_resumes_an_interrupted_download() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start_with_env(&data, &[]);
    server.new_tenant("acme").await;
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    let scope = KeyScope::Tenant("acme".into());
    let publisher = admin
        .create_key(&scope, Role::Publisher, None)
        .await
        .unwrap();
    let viewer = admin.create_key(&scope, Role::Viewer, None).await.unwrap();
    let events: Vec<EventInput> = (0..2400)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "id": format!("e{i}"),
                "type": if i % 2 == 0 { "user.login" } else { "doc.viewed" },
                "summary": format!("event {i}, with a comma and \"quotes\""),
                "actor": {"id": format!("u{}", i % 7)},
            }))
            .unwrap()
        })
        .collect();
    let sender = server.client(&publisher.secret);
    for chunk in events.chunks(800) {
        sender
            .send(
                chunk,
                IngestOptions {
                    wait: Wait::Searchable,
                    proof: false,
                },
            )
            .await
            .unwrap();
    }
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--url",
            server.url.as_str(),
            "--key",
            viewer.secret.as_str(),
        ]);
        crate::veritrail(&data, &all, None)
    };
    let csv_path = dir.path().join("logins.csv");
    let csv_arg = csv_path.to_str().unwrap();
    let printed = crate::succeeded(&run(&[
        "export", "--format", "csv", "--type", "user.*", "--out", csv_arg,
    ]));
    assert!(printed.starts_with("wrote 1200 events"), "{printed}");
    let csv = std::fs::read(&csv_path).unwrap();
    assert!(csv.starts_with(b"seq,received_at,"));
    let rows: Vec<&[u8]> = csv.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(rows.len(), 1201, "a header row and one row per login");
    assert!(
        rows[1..]
            .iter()
            .all(|row| { std::str::from_utf8(row).unwrap().contains(",user.login,") })
    );
    assert!(!dir.path().join("logins.csv.partial").exists());

    // An interrupted download: the partial file ends inside a row. --resume keeps the
    // whole rows, continues after the last one, and gives the same file.
    let partial = dir.path().join("again.csv.partial");
    std::fs::write(&partial, &csv[..csv.len() * 2 / 5]).unwrap();
    let again = dir.path().join("again.csv");
    let resumed = run(&[
        "export",
        "--format",
        "csv",
        "--type",
        "user.*",
        "--resume",
        "--out",
        again.to_str().unwrap(),
    ]);
    let printed = crate::succeeded(&resumed);
    assert!(
        crate::text(&resumed.stderr).contains("continuing"),
        "{}",
        crate::text(&resumed.stderr)
    );
    assert!(
        printed.contains(&format!("to {}", again.display())),
        "{printed}"
    );
    assert_eq!(
        std::fs::read(&again).unwrap(),
        csv,
        "the resumed file is the same"
    );
    assert!(!partial.exists());

    // JSON Lines, with a summary as JSON.
    let jsonl_path = dir.path().join("u3.jsonl");
    let summary = crate::json(&run(&[
        "export",
        "--format",
        "jsonl",
        "--actor",
        "u3",
        "--json",
        "--out",
        jsonl_path.to_str().unwrap(),
    ]));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl_path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let want = (0..2400).filter(|i| i % 7 == 3).count();
    assert_eq!(lines.len(), want);
    assert!(lines.iter().all(|record| record["actor"]["id"] == "u3"));
    assert_eq!(summary["events"], want);
    assert_eq!(summary["last_seq"], lines.last().unwrap()["seq"]);

    // OCSF: one event a line, its seq in metadata.sequence; logins are Authentication.
    let ocsf_path = dir.path().join("logins.ocsf.jsonl");
    crate::succeeded(&run(&[
        "export",
        "--format",
        "ocsf",
        "--type",
        "user.login",
        "--out",
        ocsf_path.to_str().unwrap(),
    ]));
    let ocsf: Vec<serde_json::Value> = std::fs::read_to_string(&ocsf_path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(ocsf.len(), 1200);
    assert!(ocsf.iter().all(|event| event["class_uid"] == 3002
        && event["unmapped"]["type"] == "user.login"
        && event["metadata"]["sequence"] == event["unmapped"]["seq"]));

    // A filtered bundle: the matching records, each proven in the signed tree, verified
    // against the pinned key.
    let key = server
        .client(&viewer.secret)
        .log_key()
        .await
        .unwrap()
        .verifier_key;
    let bundle_path = dir.path().join("u3.ndjson");
    let verified = crate::succeeded(&run(&[
        "export",
        "--actor",
        "u3",
        "--verify",
        "--verifier-key",
        &key,
        "--out",
        bundle_path.to_str().unwrap(),
    ]));
    assert!(
        verified.contains(&format!(
            "holds {want} records of tenant acme matching actor=u3"
        )),
        "{verified}"
    );
    // --resume is for JSON Lines and CSV; --verify for bundles: refused before anything is
    // sent.
    let refused = run(&["export", "--resume", "--out", csv_arg]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        crate::text(&refused.stderr).contains("--resume applies to --format jsonl or csv"),
        "{}",
        crate::text(&refused.stderr)
    );
    let refused = run(&[
        "export",
        "--format",
        "csv",
        "--verify",
        "--verifier-key",
        "k",
        "--out",
        csv_arg,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    server.terminate();
}
