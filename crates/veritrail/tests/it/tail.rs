//! `veritrail tail` against a running server: records printed as they are stored, in seq
//! order, each once, across a restart of the server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use veritrail_api::{EventInput, Role};
use veritrail_client::{Client, IngestOptions, KeyScope};

use crate::serve::ServeProcess;

/// A running `veritrail tail`, its standard output read line by line; killed when
/// dropped.
struct TailProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl TailProcess {
    fn start(url: &str, key: &str, args: &[&str]) -> TailProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_veritrail"))
            .arg("tail")
            .args(args)
            .args(["--url", url, "--key", key])
            .env("VERITRAIL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("veritrail tail starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        TailProcess { child, lines }
    }

    /// The next line printed, within `seconds`.
    fn line(&self, seconds: u64) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(seconds))
            .expect("tail printed a line in time")
    }

    /// The next `n` lines, as records.
    fn records(&self, n: usize, seconds: u64) -> Vec<serde_json::Value> {
        (0..n)
            .map(|_| serde_json::from_str(&self.line(seconds)).expect("a JSON record"))
            .collect()
    }

    /// Whether the tail is still running (it runs until killed).
    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for TailProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free right now, for a server that must come back on the same address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn event(id: &str, event_type: &str) -> EventInput {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "type": event_type,
        "actor": {"id": "u_1", "email": "ann@example.com"},
        "outcome": "success",
        "summary": format!("tail test event {id}"),
    }))
    .expect("an event")
}

/// Sends `prefix-1..=3` of type `user.login`, and one `order.paid` the tails' filter
/// leaves out; returns the log's size after them.
async fn send_batch(publisher: &Client, prefix: &str) -> u64 {
    let mut events: Vec<EventInput> = (1..=3)
        .map(|n| event(&format!("{prefix}-{n}"), "user.login"))
        .collect();
    events.insert(1, event(&format!("{prefix}-order"), "order.paid"));
    publisher
        .send(&events, IngestOptions::default())
        .await
        .expect("sent")
        .tree_size
}

fn ids(records: &[serde_json::Value]) -> Vec<&str> {
    records
        .iter()
        .map(|record| record["id"].as_str().expect("an id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_new_records_in_order_once_across_a_server_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let server = ServeProcess::start_with_env(&data, &[("VERITRAIL_LISTEN", &listen)]);
    let admin = server.client(server.admin_key.as_deref().expect("first start"));
    admin.create_tenant("acme", None).await.expect("tenant");
    let scope = KeyScope::Tenant("acme".into());
    let key = |role| {
        let admin = admin.clone();
        let scope = scope.clone();
        async move {
            admin
                .create_key(&scope, role, None)
                .await
                .expect("key")
                .secret
        }
    };
    let viewer = key(Role::Viewer).await;
    let publisher_key = key(Role::Publisher).await;
    let publisher = server.client(&publisher_key);

    // Stored before the tail starts: `--from-seq 0` prints them too.
    let log_size = send_batch(&publisher, "a").await;
    let mut json_tail = TailProcess::start(
        &server.url,
        &viewer,
        &["--json", "--type", "user.*", "--from-seq", "0"],
    );
    let from = log_size.to_string();
    let text_tail = TailProcess::start(
        &server.url,
        &viewer,
        &["--type", "user.*", "--from-seq", &from],
    );
    let first = json_tail.records(3, 30);
    assert_eq!(ids(&first), ["a-1", "a-2", "a-3"]);

    send_batch(&publisher, "b").await;
    let second = json_tail.records(3, 30);
    assert_eq!(ids(&second), ["b-1", "b-2", "b-3"]);
    let header = text_tail.line(30);
    assert!(
        header.contains("SEQ") && header.contains("SUMMARY"),
        "{header}"
    );
    for n in 1..=3 {
        let line = text_tail.line(30);
        assert!(
            line.contains("user.login")
                && line.contains("ann@example.com")
                && line.contains(&format!("tail test event b-{n}")),
            "{line}"
        );
    }

    // The server goes away and comes back on the same address: the tail connects again
    // and carries on after the last record it printed.
    server.terminate();
    std::thread::sleep(Duration::from_millis(500));
    assert!(json_tail.is_running(), "the tail waits for the server");
    let server = ServeProcess::start_with_env(&data, &[("VERITRAIL_LISTEN", &listen)]);
    let publisher = server.client(&publisher_key);
    send_batch(&publisher, "c").await;
    let third = json_tail.records(3, 60);
    assert_eq!(ids(&third), ["c-1", "c-2", "c-3"]);

    let seqs: Vec<u64> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|record| record["seq"].as_u64().expect("a seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "in seq order: {seqs:?}"
    );
    assert!(
        json_tail
            .lines
            .recv_timeout(Duration::from_secs(1))
            .is_err(),
        "nothing more, nothing twice"
    );
    assert!(json_tail.is_running());
    drop(json_tail);
    drop(text_tail);
    server.terminate();
}

#[test]
fn tail_stops_at_a_refusal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", free_port());
    let server =
        ServeProcess::start_with_env(&dir.path().join("data"), &[("VERITRAIL_LISTEN", &listen)]);
    let admin_key = server.admin_key.clone().expect("first start");
    // The server-admin key reads no tenant's log: the server refuses, the tail exits 1.
    let out = crate::veritrail(
        dir.path(),
        &["tail", "--url", &server.url, "--key", &admin_key],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", crate::text(&out.stderr));
    assert!(
        crate::text(&out.stderr).contains("forbidden"),
        "{}",
        crate::text(&out.stderr)
    );
    server.terminate();
}
