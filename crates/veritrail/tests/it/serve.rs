//! `veritrail serve` as a process: acknowledged events survive `kill -9` of the server, and
//! the search index catches up with the ledger after the restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use veritrail_api::{EventInput, Role};
use veritrail_client::{Client, ClientOptions, IngestOptions, KeyScope, RetryPolicy};

/// A running `veritrail serve`.
pub(crate) struct ServeProcess {
    child: Child,
    pub(crate) url: String,
    /// The server-admin key, printed at the first start only.
    pub(crate) admin_key: Option<String>,
    /// What the server printed on stdout up to its address.
    pub(crate) printed: Vec<String>,
}

impl ServeProcess {
    fn start(data_dir: &Path) -> ServeProcess {
        Self::start_with_env(data_dir, &[])
    }

    /// [`ServeProcess::start`] with more `VERITRAIL_*` settings (which win over its own,
    /// `VERITRAIL_LISTEN` included: a server that must come back on the same address).
    pub(crate) fn start_with_env(data_dir: &Path, env: &[(&str, &str)]) -> ServeProcess {
        Self::start_with_args(data_dir, &[], env)
    }

    /// `veritrail serve ARGS` (`--demo`, say), as [`ServeProcess::start_with_env`].
    pub(crate) fn start_with_args(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_veritrail"))
            .arg("serve")
            .args(args)
            .env("VERITRAIL_DATA_DIR", data_dir)
            .env("VERITRAIL_LISTEN", "127.0.0.1:0")
            .env("VERITRAIL_RATE_LIMIT_RPS", "0")
            .env("VERITRAIL_LOG", "warn")
            .env_remove("VERITRAIL_CONFIG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut admin_key = None;
        let mut printed = Vec::new();
        let url = loop {
            let line = lines
                .next()
                .expect("the server printed its address before exiting")
                .unwrap();
            printed.push(line.clone());
            let trimmed = line.trim();
            if trimmed.starts_with("vt_") {
                admin_key = Some(trimmed.to_owned());
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Nothing more is printed on stdout; keep the pipe drained anyway.
        std::thread::spawn(move || lines.for_each(drop));
        ServeProcess {
            child,
            url,
            admin_key,
            printed,
        }
    }

    /// Creates `tenant` with the first start's admin key; its owner key's secret.
    pub(crate) async fn new_tenant(&self, tenant: &str) -> String {
        self.client(self.admin_key.as_deref().expect("first start"))
            .create_tenant(tenant, None)
            .await
            .expect("tenant")
            .owner_key
            .secret
    }

    pub(crate) fn client(&self, key: &str) -> Client {
        Client::with_options(
            &self.url,
            key,
            &ClientOptions {
                retry: RetryPolicy::never(),
                ..ClientOptions::default()
            },
        )
        .unwrap()
    }

    /// SIGKILL: no shutdown, no flush.
    pub(crate) fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the server exits 0 on SIGTERM: {status}");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // After `kill_9` or `terminate` the process is gone already; after a panic, stop it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(id: &str) -> EventInput {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "type": "user.login",
        "actor": {"id": "u_1", "email": "ann@example.com"},
        "outcome": "success",
        "summary": format!("crash test event {id}"),
    }))
    .unwrap()
}

/// Every event id in the tenant's log, from a verified export.
async fn logged_ids(viewer: &Client) -> Vec<String> {
    let key = viewer.log_key().await.unwrap();
    let mut bundle = Vec::new();
    viewer.export(&mut bundle).await.unwrap();
    let verifier = veritrail_core::note::NoteVerifier::parse(&key.verifier_key).unwrap();
    let report = veritrail_client::export::verify_export(
        std::io::Cursor::new(&bundle),
        &verifier,
        &veritrail_client::export::ExportVerifyOptions::default(),
    );
    assert!(report.faults.is_empty(), "{:?}", report.faults);
    bundle
        .split(|byte| *byte == b'\n')
        .skip(1)
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            let line: veritrail_api::ExportLine = serde_json::from_slice(line).unwrap();
            let bytes = base64_decode(line.record.as_deref().expect("kept"));
            let record = veritrail_core::record::Record::decode(&bytes).unwrap();
            record.event().id().map(|id| id.as_str().to_owned())
        })
        .collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_of_the_server() {
    let rounds: usize = std::env::var("VERITRAIL_SERVE_CRASH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start(&data);
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    admin.create_tenant("acme", None).await.unwrap();
    let scope = KeyScope::Tenant("acme".into());
    let publisher_key = admin
        .create_key(&scope, Role::Publisher, None)
        .await
        .unwrap()
        .secret;
    let viewer_key = admin
        .create_key(&scope, Role::Viewer, None)
        .await
        .unwrap()
        .secret;
    let mut server = server;
    // Every event acknowledged so far, over all rounds: each must be in the log after every
    // later restart too.
    let mut all_acknowledged: Vec<String> = Vec::new();
    for round in 0..rounds {
        // This round's acknowledgements alone: a restarted server that refused every ingest
        // would acknowledge nothing, and the round fails.
        let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
        // Eight senders, each sending small batches back to back until the server dies.
        let mut senders = Vec::new();
        for sender in 0..8 {
            let client = server.client(&publisher_key);
            let acknowledged = Arc::clone(&acknowledged);
            senders.push(tokio::spawn(async move {
                for batch in 0.. {
                    let events: Vec<EventInput> = (0..20)
                        .map(|i| event(&format!("r{round}-s{sender}-b{batch}-{i}")))
                        .collect();
                    match client.send(&events, IngestOptions::default()).await {
                        Ok(reply) => {
                            assert_eq!(reply.receipts.len(), events.len());
                            let mut acknowledged = acknowledged.lock().unwrap();
                            acknowledged.extend(events.iter().filter_map(|e| e.id.clone()));
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        let delay = 150 + (round * 97) % 400;
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        server.kill_9();
        for sender in senders {
            sender.await.unwrap();
        }
        server = ServeProcess::start(&data);
        let viewer = server.client(&viewer_key);
        let logged: std::collections::HashSet<String> =
            logged_ids(&viewer).await.into_iter().collect();
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            !acknowledged.is_empty(),
            "round {round} acknowledged nothing"
        );
        all_acknowledged.extend(acknowledged);
        let lost: Vec<_> = all_acknowledged
            .iter()
            .filter(|id| !logged.contains(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged events lost, like {:?}",
            lost.len(),
            all_acknowledged.len(),
            lost.first()
        );
    }
    // After the restarts the search index holds everything the ledger does.
    let viewer = server.client(&viewer_key);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = viewer
            .count(&veritrail_api::CountParams::default())
            .await
            .unwrap();
        if page.indexed_size == page.log_size {
            assert_eq!(page.total, page.log_size);
            break;
        }
        assert!(Instant::now() < deadline, "the index did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.terminate();
}

/// The catalog commands against a running server, as the README shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_commands_import_set_policy_list_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start(&data);
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    let owner = server.new_tenant("acme").await;
    let scope = KeyScope::Tenant("acme".into());
    let publisher = admin
        .create_key(&scope, Role::Publisher, None)
        .await
        .unwrap()
        .secret;
    let run = |key: &str, args: &[&str], stdin: Option<&str>| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", server.url.as_str(), "--key", key]);
        crate::veritrail(&data, &all, stdin)
    };
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../catalogs/vgs-user-actions.yaml"
    );
    let imported = run(&owner, &["catalog", "import", file], None);
    assert!(
        imported.status.success(),
        "{}",
        crate::text(&imported.stderr)
    );
    assert!(
        crate::text(&imported.stdout).contains("version 1, 6 event types"),
        "{}",
        crate::text(&imported.stdout)
    );
    let strict = run(&owner, &["catalog", "settings", "--policy", "strict"], None);
    assert!(strict.status.success(), "{}", crate::text(&strict.stderr));
    assert!(crate::text(&strict.stdout).contains("policy strict"));

    // A type the catalog lacks is refused, with the event and the field named.
    let refused = run(
        &publisher,
        &["send", "--searchable"],
        Some(r#"{"type": "user.vanished"}"#),
    );
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        crate::text(&refused.stdout)
    );
    let said = format!(
        "{}{}",
        crate::text(&refused.stdout),
        crate::text(&refused.stderr)
    );
    assert!(said.contains("unknown_type"), "{said}");
    let sent = run(
        &publisher,
        &["send", "--searchable"],
        Some(
            r#"{"type": "user.logged_in", "actor": {"email": "ann@example.com"}, "details": {"user_email": "ann@example.com", "user_ip": "192.0.2.1"}}"#,
        ),
    );
    assert!(sent.status.success(), "{}", crate::text(&sent.stderr));

    // list: the category with its count; export: the document back, as YAML.
    let listed = run(&owner, &["catalog", "list", "--json"], None);
    assert!(listed.status.success(), "{}", crate::text(&listed.stderr));
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let users = list["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "User Management")
        .expect("the catalog's category");
    assert_eq!(users["count"], 1);
    assert_eq!(users["types"].as_array().unwrap().len(), 6);
    let exported = run(&owner, &["catalog", "export"], None);
    assert!(
        exported.status.success(),
        "{}",
        crate::text(&exported.stderr)
    );
    let yaml = crate::text(&exported.stdout);
    assert!(yaml.contains("format: veritrail-catalog/v1"), "{yaml}");
    assert!(yaml.contains("user.mfa_deleted"), "{yaml}");

    // A bad file is refused with every problem named, and nothing changes.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"format": "veritrail-catalog/v1", "id": "x", "events": [{"type": "a.b", "name": "A", "category": "C", "severity": "urgent"}]}"#,
    )
    .unwrap();
    let rejected = run(&owner, &["catalog", "import", bad.to_str().unwrap()], None);
    assert_eq!(rejected.status.code(), Some(1));
    let said = crate::text(&rejected.stderr);
    assert!(
        said.contains("events[0].severity") && said.contains("invalid_catalog"),
        "{said}"
    );
    server.terminate();
}

/// `serve --listen ADDR --data-dir DIR`, as `verify`, `key` and `init` take `--data-dir`:
/// the flags win over the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_listen_and_data_dir_flags_over_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let flagged = dir.path().join("flagged");
    let from_env = dir.path().join("from-env");
    let server = ServeProcess::start_with_args(
        &from_env,
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            flagged.to_str().unwrap(),
        ],
        &[("VERITRAIL_LISTEN", "127.0.0.1:1")],
    );
    assert!(
        !server.url.ends_with(":1"),
        "--listen wins over VERITRAIL_LISTEN: {}",
        server.url
    );
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    admin.create_tenant("acme", None).await.unwrap();
    assert!(
        flagged.join("log-key").exists(),
        "the data went to --data-dir"
    );
    assert!(!from_env.exists(), "nothing went to VERITRAIL_DATA_DIR");
    server.terminate();
    let key = crate::veritrail(
        &flagged,
        &["key", "--data-dir", flagged.to_str().unwrap()],
        None,
    );
    assert!(key.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn service_key_commands_create_send_for_many_tenants_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start(&data);
    let admin_key = server.admin_key.clone().expect("first start");
    let run = |key: &str, args: &[&str], stdin: Option<&str>| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", server.url.as_str(), "--key", key]);
        crate::veritrail(&data, &all, stdin)
    };
    let created = run(
        &admin_key,
        &[
            "service-keys",
            "create",
            "--role",
            "service_publisher",
            "--tenant-prefix",
            "org-",
            "--create-tenants",
            "--json",
        ],
        None,
    );
    assert!(created.status.success(), "{}", crate::text(&created.stderr));
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let key_id = created["key"]["id"].as_str().unwrap().to_owned();

    // Events naming their tenants, as JSON lines: each goes to its own tenant.
    let mixed = "{\"tenant\": \"org-a\", \"type\": \"user.login\"}\n{\"tenant\": \"org-b\", \"type\": \"user.login\"}\n";
    let sent = run(&secret, &["send", "--json"], Some(mixed));
    assert!(sent.status.success(), "{}", crate::text(&sent.stderr));
    let tenants: Vec<String> = crate::text(&sent.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["tenant"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tenants, ["org-a", "org-b"]);
    // --tenant: one tenant's log, the events naming none.
    let one = run(
        &secret,
        &["send", "--tenant", "org-c"],
        Some(r#"{"type": "user.login"}"#),
    );
    assert!(one.status.success(), "{}", crate::text(&one.stderr));
    assert!(
        crate::text(&one.stdout).contains("the log now holds 2"),
        "{}",
        crate::text(&one.stdout)
    );
    // Outside its prefix: refused, exit 1.
    let refused = run(
        &secret,
        &["send", "--tenant", "acme"],
        Some(r#"{"type": "user.login"}"#),
    );
    assert_eq!(refused.status.code(), Some(1));
    let me = run(&secret, &["me"], None);
    assert!(
        crate::text(&me.stdout).contains("(service_publisher) for tenants org-*"),
        "{}",
        crate::text(&me.stdout)
    );
    let listed = run(&admin_key, &["service-keys", "list"], None);
    assert!(crate::text(&listed.stdout).contains(&key_id));
    let revoked = run(&admin_key, &["service-keys", "revoke", &key_id], None);
    assert!(revoked.status.success(), "{}", crate::text(&revoked.stderr));
    let after = run(&secret, &["me"], None);
    assert_eq!(after.status.code(), Some(1), "a revoked key is refused");
    // The server admin's `keys --tenant` still names the tenant whose keys to manage.
    let keys = run(&admin_key, &["keys", "list", "--tenant", "org-a"], None);
    assert!(keys.status.success(), "{}", crate::text(&keys.stderr));
    server.terminate();
}
