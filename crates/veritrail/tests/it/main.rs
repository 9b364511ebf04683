//! The `veritrail` command as a user runs it: a real binary, a real data directory.

#![allow(
    clippy::unwrap_used,
    reason = "tests fail loudly on the first surprise"
)]

mod browser;
mod export_cli;
mod lifecycle_cli;
#[path = "../../../veritrail-server/tests/it/receiver.rs"]
mod receiver;
mod schemathesis;
mod serve;
mod tail;
mod tidy;
mod webhooks;
mod webhooks_cli;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn veritrail(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veritrail"));
    command
        .args(args)
        .env("VERITRAIL_DATA_DIR", data_dir)
        .env_remove("VERITRAIL_VERIFIER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        // The command may exit before reading its input (a bad flag, say): not a failure.
        if let Err(err) = input.write_all(stdin.unwrap_or("").as_bytes()) {
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
        }
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a command printed, checking that it succeeded.
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// What a command that succeeded printed, as JSON.
fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", text(&output.stdout)))
}

/// A temporary data directory whose tenant `acme` holds `EVENTS`.
fn data_dir_with_events() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let append = veritrail(&data, &["append", "--tenant", "acme"], Some(EVENTS));
    assert!(append.status.success(), "{}", text(&append.stderr));
    (dir, data)
}

/// What `veritrail key` prints for `data_dir`.
fn verifier_key(data_dir: &Path) -> String {
    text(&veritrail(data_dir, &["key"], None).stdout)
        .trim()
        .to_owned()
}

const EVENTS: &str = r#"{"id": "evt-1", "type": "user.login", "actor": {"id": "u_42", "email": "ann@example.com", "ip": "100.151.54.26"}, "outcome": "success"}
{"id": "evt-2", "type": "user.password_updated", "actor": {"id": "u_42", "email": "ann@example.com"}, "targets": [{"id": "u_42", "type": "user"}], "details": {"method": "reset_link"}}
"#;

#[test]
fn init_append_and_verify_as_in_the_readme() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = veritrail(&data, &["init"], None);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let mode = std::fs::metadata(data.join("log-key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the signing key is readable by its owner only"
    );

    let key = veritrail(&data, &["key"], None);
    assert!(key.status.success());
    let vkey = text(&key.stdout).trim().to_owned();
    assert!(vkey.starts_with("veritrail.local+"), "{vkey}");
    assert!(
        text(&init.stdout).contains(&vkey),
        "init prints the same verifier key"
    );

    let append = veritrail(&data, &["append", "--tenant", "acme"], Some(EVENTS));
    assert!(append.status.success(), "{}", text(&append.stderr));
    let out = text(&append.stdout);
    assert!(
        out.contains("seq        0") && out.contains("seq        1"),
        "{out}"
    );
    assert!(
        out.contains("veritrail.local/acme\n2\n"),
        "the checkpoint signs 2 records: {out}"
    );

    let again = veritrail(
        &data,
        &["append", "--tenant", "acme", "--json"],
        Some(EVENTS),
    );
    assert!(again.status.success());
    let receipts: Vec<serde_json::Value> = text(&again.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(receipts.len(), 2);
    assert!(
        receipts.iter().all(|r| r["duplicate"] == true),
        "{receipts:?}"
    );

    let verify = veritrail(&data, &["verify", "--key", &vkey], None);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    let out = text(&verify.stdout);
    assert!(
        out.contains("tenant acme: 2 records, signed up to 2"),
        "{out}"
    );
    assert!(
        out.contains("OK: 2 records in 1 tenant log and 1 signed checkpoint verify"),
        "{out}"
    );
    assert!(
        text(&verify.stderr).is_empty(),
        "no progress bar when piped: {:?}",
        text(&verify.stderr)
    );

    let json = veritrail(&data, &["verify", "--key", &vkey, "--json", "--deep"], None);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"], 2);
}

#[test]
fn invalid_events_are_refused_whole_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = r#"[{"type": "user.login"}, {"type": "user login", "actor": {"email": "nope"}}]"#;
    let append = veritrail(&data, &["append", "--tenant", "acme"], Some(input));
    assert_eq!(append.status.code(), Some(2));
    let err = text(&append.stderr);
    assert!(err.contains("nothing was appended"), "{err}");
    assert!(err.contains("event 1: type:"), "{err}");
    assert!(
        err.contains("event 1: actor.email:") && err.contains("(invalid_email)"),
        "{err}"
    );
    assert!(
        !err.contains("event 0"),
        "the valid event has no complaint: {err}"
    );

    let bad_tenant = veritrail(&data, &["append", "--tenant", "Not A Tenant"], Some(EVENTS));
    assert_eq!(bad_tenant.status.code(), Some(2));
    assert!(text(&bad_tenant.stderr).contains("bad tenant id"));
}

#[test]
fn verify_names_damage_and_a_wrong_key_and_needs_a_key() {
    let (dir, data) = data_dir_with_events();
    let vkey = verifier_key(&data);

    let no_key = veritrail(&data, &["verify"], None);
    assert_eq!(no_key.status.code(), Some(2));
    assert!(
        text(&no_key.stderr).contains("--key"),
        "{}",
        text(&no_key.stderr)
    );

    let other = veritrail(&dir.path().join("other"), &["init"], None);
    assert!(other.status.success());
    let other_key = verifier_key(&dir.path().join("other"));
    let wrong = veritrail(&data, &["verify", "--key", &other_key], None);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stdout).contains("FAULT BadSignature tenant=acme"),
        "{}",
        text(&wrong.stdout)
    );

    // Flip one byte in the middle of the journal's first record.
    let segment = data.join("ledger/journal/00000000000000000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[16 + 12 + 9 + 60] ^= 0x20;
    std::fs::write(&segment, bytes).unwrap();
    let damaged = veritrail(&data, &["verify", "--key", &vkey], None);
    assert_eq!(damaged.status.code(), Some(1));
    let out = text(&damaged.stdout);
    assert!(
        out.contains("FAULT ChecksumMismatch tenant=acme seq=0"),
        "{out}"
    );
    assert!(out.contains("FAILED"), "{out}");
}

#[test]
fn a_trusted_checkpoint_catches_a_log_cut_at_its_end_with_its_index() {
    let (dir, data) = data_dir_with_events();
    let more = r#"{"id": "evt-3", "type": "user.logout"}"#;
    let append = veritrail(&data, &["append", "--tenant", "acme", "--json"], Some(more));
    let receipt: serde_json::Value = serde_json::from_slice(&append.stdout).unwrap();
    let trusted = dir.path().join("trusted.checkpoint");
    std::fs::write(&trusted, receipt["checkpoint"].as_str().unwrap()).unwrap();
    let vkey = verifier_key(&data);
    let with_trusted = [
        "verify",
        "--key",
        &vkey,
        "--checkpoint",
        trusted.to_str().unwrap(),
    ];
    assert_eq!(veritrail(&data, &with_trusted, None).status.code(), Some(0));

    // Cut the last frame (the second append) and remove the index that would notice.
    let segment = data.join("ledger/journal/00000000000000000000.seg");
    let bytes = std::fs::read(&segment).unwrap();
    let first_frame_len = u32::from_be_bytes(bytes[20..24].try_into().unwrap()) as usize;
    std::fs::write(&segment, &bytes[..16 + 12 + first_frame_len]).unwrap();
    std::fs::remove_file(data.join("ledger/index.redb")).unwrap();

    let alone = veritrail(&data, &["verify", "--key", &vkey], None);
    assert_eq!(
        alone.status.code(),
        Some(0),
        "a clean cut with no index cannot be seen alone"
    );
    let cut = veritrail(&data, &with_trusted, None);
    assert_eq!(cut.status.code(), Some(1), "{}", text(&cut.stdout));
    assert!(
        text(&cut.stdout).contains("FAULT MissingCommitted tenant=acme seq=2"),
        "{}",
        text(&cut.stdout)
    );
}
