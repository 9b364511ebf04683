//! `GET /api/v1/events/export`: the export equals paging through search for every filter
//! while events keep arriving; CSV read back by Python's `csv` module equals the JSON;
//! resuming after a cut connection; gzip; roles, bad parameters and the audit event; and
//! revoking the key ends an export in progress.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Map, Value, json};
use veritrail_api::{ExportParams, Role, SearchParams};
use veritrail_client::download::Progress;
use veritrail_client::{Client, IngestOptions};

use crate::receiver::tools_required;
use crate::search::{cases, seed, seeded};
use crate::support::{TestServer, event, wait_indexed};

const T: &str = "acme";

/// The export parameters of a search's filters.
fn export_params(search: &SearchParams, format: &str) -> ExportParams {
    ExportParams {
        event_type: search.event_type.clone(),
        category: search.category.clone(),
        code: search.code.clone(),
        name: search.name.clone(),
        actor: search.actor.clone(),
        target: search.target.clone(),
        outcome: search.outcome.clone(),
        correlation_id: search.correlation_id.clone(),
        id: search.id.clone(),
        from: search.from.clone(),
        to: search.to.clone(),
        q: search.q.clone(),
        format: Some(format.to_owned()),
        after_seq: None,
    }
}

/// The records of a JSON Lines export, and its bound.
async fn export_jsonl(viewer: &Client, params: &ExportParams) -> (Vec<Value>, u64) {
    let mut body = Vec::new();
    let mut progress = Progress::default();
    viewer
        .export_events(params, &mut body, &mut progress, |_| {})
        .await
        .expect("export");
    let records: Vec<Value> = std::str::from_utf8(&body)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(progress.events, records.len() as u64);
    (records, progress.indexed_size)
}

/// Every record search returns for `params` in seq order below `below`, page by page.
async fn search_below(viewer: &Client, params: &SearchParams, below: u64) -> Vec<Value> {
    let mut pager = viewer.search_all(SearchParams {
        order: Some("asc".into()),
        limit: Some("50".into()),
        ..params.clone()
    });
    let mut found = Vec::new();
    while let Some(record) = pager.next_event().await.expect("page") {
        if record["seq"].as_u64().expect("seq") >= below {
            break;
        }
        found.push(record);
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn the_export_equals_paging_through_search_for_every_filter_while_events_arrive() {
    let server = TestServer::start().await;
    let (viewer, all) = seed(&server, 80).await;
    let seeded_size = all.len() as u64;
    // Events keep arriving, matching the same filters, all through the comparisons (paced:
    // a few hundred a second, so that the pages to compare stay few).
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let ingest = tokio::spawn({
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        async move {
            let mut i = 1000;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (i..i + 5).map(seeded).collect();
                publisher
                    .send(&batch, IngestOptions::default())
                    .await
                    .expect("ingest");
                sent.fetch_add(5, Ordering::Relaxed);
                i += 5;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    });
    let s = |text: &str| Some(text.to_owned());
    let mut all_cases: Vec<SearchParams> = cases().into_iter().map(|(params, _)| params).collect();
    // The catalog's fields, on the service's own events (a key created is one).
    all_cases.extend([
        SearchParams {
            category: s("keys"),
            ..SearchParams::default()
        },
        SearchParams {
            code: s("9010"),
            ..SearchParams::default()
        },
        SearchParams {
            name: s("key CREATED"),
            ..SearchParams::default()
        },
        SearchParams::default(),
    ]);
    let mut bounds = Vec::new();
    let mut non_trivial = 0;
    for params in &all_cases {
        for format in ["jsonl", "csv"] {
            let export = export_params(params, format);
            if format == "csv" {
                // The CSV export lists the same seqs (its content is checked below).
                let mut body = Vec::new();
                let mut progress = Progress::default();
                viewer
                    .export_events(&export, &mut body, &mut progress, |_| {})
                    .await
                    .expect("csv export");
                let searched = search_below(&viewer, params, progress.indexed_size).await;
                assert_eq!(progress.events, searched.len() as u64, "{params:?} csv");
                assert_eq!(
                    progress.last_seq,
                    searched.last().map(|r| r["seq"].as_u64().expect("seq")),
                    "{params:?} csv"
                );
                continue;
            }
            let (exported, below) = export_jsonl(&viewer, &export).await;
            bounds.push(below);
            let seqs: Vec<u64> = exported
                .iter()
                .map(|r| r["seq"].as_u64().expect("seq"))
                .collect();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "{params:?}: seq order"
            );
            assert!(
                seqs.iter().all(|&seq| seq < below),
                "{params:?}: within its bound"
            );
            let searched = search_below(&viewer, params, below).await;
            assert_eq!(exported, searched, "{params:?}: the export is the search");
            if !exported.is_empty() && (exported.len() as u64) < below {
                non_trivial += 1;
            }
        }
    }
    // Checked against the test's own subsets too (not only search against itself).
    for (params, matches) in cases() {
        let want: Vec<&Value> = all.iter().filter(|r| matches(r)).collect();
        let (exported, _) = export_jsonl(&viewer, &export_params(&params, "jsonl")).await;
        let got: Vec<&Value> = exported
            .iter()
            .filter(|r| r["seq"].as_u64().expect("seq") < seeded_size)
            .collect();
        assert_eq!(got, want, "{params:?}");
    }
    stop.store(true, Ordering::Relaxed);
    ingest.await.expect("ingest task");
    assert!(
        non_trivial >= 20,
        "{non_trivial} exports were neither empty nor everything"
    );
    // Ingest ran through the comparisons: the bounds grew from export to export.
    assert!(sent.load(Ordering::Relaxed) >= 20, "events sent meanwhile");
    assert!(bounds.last() > bounds.first(), "{bounds:?}");
    server.stop().await;
}

/// A Python that has the standard library's `csv` module: `$VERITRAIL_TEST_PYTHON` (the
/// venv `scripts/test` makes), else `python3`; `None` (with a note) when there is none,
/// except in CI where it is an error.
fn python() -> Option<String> {
    let python = std::env::var("VERITRAIL_TEST_PYTHON")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "python3".to_owned());
    let works = Command::new(&python)
        .args(["-c", "import csv, json"])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if works {
        return Some(python);
    }
    assert!(
        !tools_required(),
        "{python} with the csv module is required (CI or VERITRAIL_REQUIRE_TOOLS)"
    );
    eprintln!("note: the CSV check with Python's csv module was skipped: no {python}");
    None
}

/// The rows of `csv`, read by Python's `csv.DictReader`, as JSON objects of strings.
fn python_reads_csv(python: &str, csv: &[u8]) -> Vec<Map<String, Value>> {
    let script = "import csv, io, json, sys\n\
                  text = io.TextIOWrapper(sys.stdin.buffer, encoding='utf-8', newline='')\n\
                  json.dump(list(csv.DictReader(text, strict=True)), sys.stdout)\n";
    let output = run_python(python, &["-c".as_ref(), script.as_ref()], csv);
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python's JSON")
}

/// Runs `python ARGS` with `input` on its standard input; what it printed and how it ended.
fn run_python(python: &str, args: &[&std::ffi::OsStr], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(python)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from another thread: python may print before it has read everything.
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().expect("python");
    writer.join().expect("writer").expect("write");
    output
}

/// The record JSON a CSV row stands for: the columns put back in their places, the
/// spreadsheet guard (a leading `'`) taken off, empty cells left out.
fn record_of_row(row: &Map<String, Value>) -> Value {
    let cell = |name: &str| -> Option<String> {
        let text = row.get(name)?.as_str().expect("a string cell");
        let text = text.strip_prefix('\'').unwrap_or(text);
        (!text.is_empty()).then(|| text.to_owned())
    };
    let object_of = |fields: &[(&str, &str)]| -> Option<Value> {
        let object: Map<String, Value> = fields
            .iter()
            .filter_map(|(key, column)| Some(((*key).to_owned(), json!(cell(column)?))))
            .collect();
        (!object.is_empty()).then_some(Value::Object(object))
    };
    let mut record = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            record.insert(key.to_owned(), value);
        }
    };
    let number = |text: String| json!(text.parse::<u64>().expect("a number"));
    let parsed = |text: String| serde_json::from_str::<Value>(&text).expect("JSON cell");
    put("seq", cell("seq").map(number));
    put("code", cell("code").map(number));
    for key in [
        "received_at",
        "occurred_at",
        "id",
        "type",
        "name",
        "category",
        "severity",
        "outcome",
        "summary",
        "correlation_id",
        "description",
        "published_by",
        "tenant",
    ] {
        put(key, cell(key).map(Value::String));
    }
    put(
        "actor",
        object_of(&[
            ("id", "actor_id"),
            ("type", "actor_type"),
            ("name", "actor_name"),
            ("email", "actor_email"),
            ("ip", "actor_ip"),
            ("user_agent", "actor_user_agent"),
        ]),
    );
    put(
        "source",
        object_of(&[
            ("service", "source_service"),
            ("component", "source_component"),
            ("version", "source_version"),
            ("ip", "source_ip"),
        ]),
    );
    let targets = cell("targets").map(parsed);
    let first = object_of(&[
        ("type", "target_type"),
        ("id", "target_id"),
        ("name", "target_name"),
    ]);
    assert_eq!(
        first.as_ref(),
        targets.as_ref().and_then(|targets| targets.get(0)),
        "the target columns are the first target"
    );
    put("targets", targets);
    put("details", cell("details").map(parsed));
    Value::Object(record)
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_read_back_by_pythons_csv_module_equals_the_json() {
    let Some(python) = python() else { return };
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let viewer = server.client(&server.key(T, Role::Viewer).await);
    let awkward = [
        event(
            "formula",
            "sheet.attack",
            json!({
                "summary": "=HYPERLINK(\"http://evil.example\",\"click\")",
                "actor": {"id": "-1+2", "name": "@admin, \"Bob\" Tables", "email": "bob@example.com",
                          "ip": "2001:db8::1", "user_agent": "Mozilla/5.0 (X11, Linux)"},
                "targets": [
                    {"type": "doc", "id": "d,1", "name": "Q3 \"final\" report"},
                    {"type": "folder", "id": "f'2"}
                ],
                "details": {"text": "line1\r\nline2", "n": [1, 2.5, -3], "q": "'quoted'", "nested": {"x": null}},
                "correlation_id": "+corr",
                "source": {"service": "billing", "component": "api", "version": "1.2.3", "ip": "10.0.0.1"},
                "outcome": "failure",
            }),
        ),
        event(
            "unicode",
            "user.renamed",
            json!({"summary": "Zoë → 日本 ✓", "actor": {"id": "u1"}, "occurred_at": "2024-05-01T10:00:00.5Z"}),
        ),
        event("bare", "ping", json!({})),
        event(
            "minus",
            "user.note",
            json!({"summary": "-indented; a, b", "details": {"a": "=1", "b": "x\r\ny"}}),
        ),
    ];
    publisher
        .send(&awkward, IngestOptions::default())
        .await
        .expect("events");
    wait_indexed(&viewer, 0).await;
    let (records, below) = export_jsonl(&viewer, &ExportParams::default()).await;
    let mut csv = Vec::new();
    let mut progress = Progress::default();
    viewer
        .export_events(
            &ExportParams {
                format: Some("csv".into()),
                ..ExportParams::default()
            },
            &mut csv,
            &mut progress,
            |_| {},
        )
        .await
        .expect("csv");
    let text = String::from_utf8(csv.clone()).expect("utf-8");
    assert!(
        text.starts_with(&(veritrail_core::csv::COLUMNS.join(",") + "\r\n")),
        "the header row names the documented columns"
    );
    // The formula is not a formula to a spreadsheet.
    assert!(text.contains(",\"'=HYPERLINK("), "{text}");
    let rows = python_reads_csv(&python, &csv);
    let from_csv: Vec<Value> = rows
        .iter()
        .map(record_of_row)
        .filter(|record| record["seq"].as_u64().expect("seq") < below)
        .collect();
    assert_eq!(from_csv.len(), records.len());
    for (csv_record, json_record) in from_csv.iter().zip(&records) {
        assert_eq!(csv_record, json_record);
    }
    // The awkward events are all there, and the check above saw them.
    assert!(
        records
            .iter()
            .filter(|r| r["id"] == "formula" || r["id"] == "unicode")
            .count()
            == 2
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_export_resumes_after_its_last_line_and_gzip_is_the_same_bytes() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let viewer_key = server.key(T, Role::Viewer).await;
    let viewer = server.client(&viewer_key);
    let padding = "p".repeat(400);
    for batch in 0..4 {
        let events: Vec<_> = (0..1000)
            .map(|i| {
                event(
                    &format!("r{batch}-{i}"),
                    "load.test",
                    json!({"summary": format!("{i} {padding}")}),
                )
            })
            .collect();
        publisher
            .send(&events, IngestOptions::default())
            .await
            .expect("events");
    }
    wait_indexed(&viewer, 0).await;
    // Only the loaded type: the exports' own audit events do not change the answer.
    let path = "/api/v1/events/export?type=load.*";
    let full = server.get(path, Some(&viewer_key)).await;
    full.expect(200, None);
    assert!(full.header("content-encoding").is_none());
    assert_eq!(full.body.iter().filter(|&&b| b == b'\n').count(), 4000);

    // Gzip when asked, the same bytes once decoded.
    let gzipped = server
        .send(
            server
                .request(reqwest::Method::GET, path, Some(&viewer_key))
                .header("accept-encoding", "br;q=1, gzip;q=0.8"),
        )
        .await;
    gzipped.expect(200, None);
    assert_eq!(gzipped.header("content-encoding").as_deref(), Some("gzip"));
    assert!(gzipped.body.len() * 4 < full.body.len(), "compressed");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gzipped.body[..])
        .read_to_end(&mut decoded)
        .expect("gzip");
    assert_eq!(decoded, full.body);

    // Cut after the first 300 KB: whole lines kept, then continued after the last seq.
    let mut response = server
        .request(reqwest::Method::GET, path, Some(&viewer_key))
        .send()
        .await
        .expect("export");
    let mut got = Vec::new();
    while got.len() < 300_000 {
        got.extend_from_slice(&response.chunk().await.expect("chunk").expect("more"));
    }
    drop(response);
    let whole = got.iter().rposition(|&b| b == b'\n').expect("a line") + 1;
    got.truncate(whole);
    let last: Value = serde_json::from_slice(
        got[..whole - 1]
            .rsplit(|&b| b == b'\n')
            .next()
            .expect("last line"),
    )
    .expect("json");
    let rest = server
        .get(
            &format!("{path}&after_seq={}", last["seq"]),
            Some(&viewer_key),
        )
        .await;
    rest.expect(200, None);
    got.extend_from_slice(&rest.body);
    assert_eq!(got, full.body, "the resumed export is the whole export");

    // The SDK asks for gzip and resumes the same way, in CSV too (no second header row).
    let params = ExportParams {
        event_type: Some("load.*".into()),
        format: Some("csv".into()),
        ..ExportParams::default()
    };
    let mut whole_csv = Vec::new();
    let mut progress = Progress::default();
    viewer
        .export_events(&params, &mut whole_csv, &mut progress, |_| {})
        .await
        .expect("csv");
    assert_eq!(progress.events, 4000);
    let split = progress.events / 2;
    let mut first_half = Vec::new();
    let mut first_progress = Progress::default();
    {
        let rows = whole_csv
            .split_inclusive(|&b| b == b'\n')
            .take(usize::try_from(split + 1).expect("small"));
        for row in rows {
            first_half.extend_from_slice(row);
        }
    }
    let mut rows =
        veritrail_client::download::Rows::new(veritrail_client::download::RowFormat::Csv);
    rows.feed(&first_half, &mut std::io::sink(), &mut first_progress)
        .expect("rows");
    let mut resumed = first_half.clone();
    let mut resumed_progress = first_progress.clone();
    viewer
        .export_events(
            &ExportParams {
                after_seq: first_progress.last_seq.map(|seq| seq.to_string()),
                ..params.clone()
            },
            &mut resumed,
            &mut resumed_progress,
            |_| {},
        )
        .await
        .expect("resumed csv");
    assert_eq!(resumed, whole_csv);
    assert_eq!(resumed_progress.events, 4000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_export_publishers_do_not_bad_parameters_are_named_and_each_export_is_an_event() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let viewer = server.key(T, Role::Viewer).await;
    let viewer_id = server.client(&viewer).me().await.expect("me").key_id;
    for role in [Role::Owner, Role::Admin, Role::Viewer] {
        let key = server.key(T, role).await;
        server
            .get("/api/v1/events/export?format=csv", Some(&key))
            .await
            .expect(200, None);
    }
    server
        .get("/api/v1/events/export", Some(&publisher))
        .await
        .expect(403, Some("forbidden"));
    server
        .get("/api/v1/events/export", Some(&server.admin_key))
        .await
        .expect(403, Some("forbidden"));
    server
        .get("/api/v1/events/export", None)
        .await
        .expect(401, Some("unauthenticated"));
    for (query, named) in [
        ("format=xlsx", "format"),
        ("after_seq=-1", "after_seq"),
        ("after_seq=x", "after_seq"),
        ("after_seq=9223372036854775808", "after_seq"),
        ("type=bad%20type", "type"),
        ("from=yesterday", "from"),
        ("outcome=maybe", "outcome"),
        ("order=asc", "order"),
    ] {
        let reply = server
            .get(&format!("/api/v1/events/export?{query}"), Some(&viewer))
            .await;
        reply.expect(400, Some("invalid_parameter"));
        assert!(reply.text().contains(named), "{query}: {}", reply.text());
    }
    let before = server.admin().tenant(T).await.expect("t").log_size;
    let reply = server
        .get(
            "/api/v1/events/export?format=csv&type=user.*&actor=a%26b&after_seq=0",
            Some(&viewer),
        )
        .await;
    reply.expect(200, None);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert!(
        reply.body.is_empty(),
        "no header row when continuing, no match"
    );
    wait_indexed(&server.client(&viewer), before + 1).await;
    let indexed: u64 = reply
        .header("veritrail-indexed-size")
        .expect("bound")
        .parse()
        .expect("number");
    let exported = server
        .get(
            "/api/v1/events?type=veritrail.events.exported&limit=1",
            Some(&viewer),
        )
        .await;
    let record = &exported.json()["events"][0];
    assert_eq!(record["seq"], before);
    assert_eq!(record["actor"]["id"], viewer_id.as_str());
    assert_eq!(
        record["details"],
        json!({"format": "csv", "filters": "type=user.*&actor=a%26b", "indexed_size": indexed, "after_seq": 0})
    );
    assert_eq!(record["code"], 9031);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_key_ends_its_export_in_progress() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    server.tenant(T).await;
    let publisher = server.key(T, Role::Publisher).await;
    let viewer = server
        .admin()
        .create_key(
            &veritrail_client::KeyScope::Tenant(T.into()),
            Role::Viewer,
            None,
        )
        .await
        .expect("key");
    // About 10 MB: more than the socket buffers hold.
    let summary = "x".repeat(400);
    for batch in 0..20 {
        let events: Vec<Value> = (0..1000)
            .map(|i| json!({"id": format!("e{batch}-{i}"), "type": "user.login", "summary": summary}))
            .collect();
        server
            .post_json("/api/v1/events", Some(&publisher), &json!(events))
            .await
            .expect(200, None);
    }
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!(
                "GET /api/v1/events/export HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\r\n",
                viewer.secret
            )
            .as_bytes(),
        )
        .await
        .expect("request");
    let mut head = vec![0u8; 4096];
    let n = stream.read(&mut head).await.expect("head");
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head[..n])
    );
    server
        .admin()
        .revoke_key(
            &veritrail_client::KeyScope::Tenant(T.into()),
            &viewer.key.id,
        )
        .await
        .expect("revoked");
    let mut rest = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut rest),
    )
    .await
    .expect("the export ends")
    .expect("read");
    let lines = rest.iter().filter(|&&b| b == b'\n').count();
    assert!(lines < 20_000, "{lines} lines after the key was revoked");
    assert!(
        !rest.ends_with(b"0\r\n\r\n"),
        "the body was cut, not ended as if complete"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bundles_carry_each_records_json_and_a_filtered_one_verifies_by_its_proofs() {
    use veritrail_client::export::{ExportVerifyOptions, verify_export};
    let server = TestServer::start().await;
    let (viewer, all) = seed(&server, 80).await;
    let viewer_key = server.key(T, Role::Viewer).await;
    let verifier = veritrail_core::note::NoteVerifier::parse(
        &viewer.log_key().await.expect("key").verifier_key,
    )
    .expect("vkey");
    let lines_of = |body: &[u8]| -> Vec<Value> {
        std::str::from_utf8(body)
            .expect("utf-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("line"))
            .collect()
    };
    // The whole bundle: each record's JSON beside its bytes, the JSON search returns.
    let whole = server.get("/api/v1/log/export", Some(&viewer_key)).await;
    whole.expect(200, None);
    let report = verify_export(&whole.body[..], &verifier, &ExportVerifyOptions::default());
    assert!(report.is_ok(), "{:?}", report.faults);
    let lines = lines_of(&whole.body);
    for (line, record) in lines[1..].iter().zip(&all) {
        assert_eq!(&line["json"], record);
    }

    // Filtered: only the matching records, each with its proof in the signed tree.
    let path = "/api/v1/log/export?type=user.*&outcome=failure";
    let filtered = server
        .send(
            server
                .request(reqwest::Method::GET, path, Some(&viewer_key))
                .header("accept-encoding", "gzip"),
        )
        .await;
    filtered.expect(200, None);
    assert_eq!(filtered.header("content-encoding").as_deref(), Some("gzip"));
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(&filtered.body[..])
        .read_to_end(&mut body)
        .expect("gzip");
    let report = verify_export(&body[..], &verifier, &ExportVerifyOptions::default());
    assert!(report.is_ok(), "{:?}", report.faults);
    assert_eq!(
        report.filters.as_deref(),
        Some("type=user.*&outcome=failure")
    );
    let lines = lines_of(&body);
    let want: Vec<&Value> = all
        .iter()
        .filter(|r| {
            r["type"].as_str().unwrap_or("").starts_with("user.") && r["outcome"] == "failure"
        })
        .collect();
    assert!(!want.is_empty() && want.len() < all.len());
    let got: Vec<&Value> = lines[1..].iter().map(|line| &line["json"]).collect();
    assert_eq!(got, want);
    assert!(
        lines[1..]
            .iter()
            .all(|line| !line["proof"].as_array().expect("proof").is_empty())
    );
    // Damage found: a record's JSON changed.
    let mut damaged = lines.clone();
    damaged[1]["json"]["summary"] = "edited".into();
    let text: String = damaged.iter().map(|line| line.to_string() + "\n").collect();
    let report = verify_export(text.as_bytes(), &verifier, &ExportVerifyOptions::default());
    assert!(!report.is_ok());
    // The filtered export is audited with its filters.
    wait_indexed(&viewer, 0).await;
    let audited = server
        .get(
            "/api/v1/events?type=veritrail.log.exported&limit=1",
            Some(&viewer_key),
        )
        .await;
    assert_eq!(
        audited.json()["events"][0]["details"]["filters"],
        "type=user.*&outcome=failure"
    );
    server.stop().await;
}

/// Runs tests/ocsf/validate.py on OCSF events: whether they all pass, and its report.
fn ocsf_check(python: &str, events: &[u8]) -> (bool, String) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocsf");
    let (script, schema) = (
        dir.join("validate.py"),
        dir.join("ocsf-schema-1.8.0.json.gz"),
    );
    let output = run_python(python, &[script.as_os_str(), schema.as_os_str()], events);
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), report)
}

/// A value of a `details` field's type, for an event that must carry it.
fn value_of_type(field_type: &str) -> Value {
    match field_type {
        "integer" => json!(7),
        "number" => json!(2.5),
        "boolean" => json!(true),
        "object" => json!({"k": "v"}),
        "array" => json!(["a"]),
        _ => json!("text"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_of_the_shared_catalogs_exports_as_an_ocsf_event_of_its_class() {
    let server = TestServer::start().await;
    server.tenant(T).await;
    let owner = server.client(&server.key(T, Role::Owner).await);
    let publisher = server.client(&server.key(T, Role::Publisher).await);
    let viewer = server.client(&server.key(T, Role::Viewer).await);
    let viewer_key = server.key(T, Role::Viewer).await;
    let shared: Vec<String> = owner
        .shared_catalogs()
        .await
        .expect("shared")
        .catalogs
        .into_iter()
        .map(|catalog| catalog.id)
        .filter(|id| id != "veritrail")
        .collect();
    assert_eq!(shared.len(), 5, "{shared:?}");
    owner
        .put_catalog_settings(&veritrail_api::CatalogSettingsBody {
            policy: "strict".into(),
            adopted: shared.clone(),
        })
        .await
        .expect("adopted");
    // One event of every type of the five catalogs, with what each entry requires.
    let mut events = Vec::new();
    let mut classes = std::collections::BTreeMap::new();
    for id in &shared {
        let document = server
            .get(&format!("/api/v1/catalog/shared/{id}"), Some(&viewer_key))
            .await
            .json();
        for entry in document["events"].as_array().expect("events") {
            let event_type = entry["type"].as_str().expect("type").to_owned();
            if classes.contains_key(&event_type) {
                continue;
            }
            let mut details = Map::new();
            for field in entry["details"].as_array().into_iter().flatten() {
                if field["required"] == true {
                    details.insert(
                        field["name"].as_str().expect("name").to_owned(),
                        value_of_type(field["type"].as_str().unwrap_or("string")),
                    );
                }
            }
            let ocsf = &entry["ocsf"];
            classes.insert(event_type.clone(), ocsf.clone());
            events.push(event(
                &format!("ocsf-{}", events.len()),
                &event_type,
                json!({
                    "actor": {"id": "u_1", "name": "Ada", "email": "ada@example.com", "ip": "203.0.113.9",
                              "user_agent": "curl/8"},
                    "targets": [{"type": "user", "id": "u_2", "name": "Grace"}, {"type": "group", "id": "g_1", "name": "Admins"}],
                    "source": {"service": "console"},
                    "details": details,
                }),
            ));
        }
    }
    assert!(events.len() >= 100, "{} types", events.len());
    for chunk in events.chunks(500) {
        publisher
            .send(chunk, IngestOptions::default())
            .await
            .expect("every type is accepted under the strict policy");
    }
    wait_indexed(&viewer, 0).await;
    let (records, _) = export_jsonl(
        &viewer,
        &ExportParams {
            q: None,
            id: None,
            ..ExportParams::default()
        },
    )
    .await;
    let mut body = Vec::new();
    let mut progress = Progress::default();
    viewer
        .export_events(
            &ExportParams {
                format: Some("ocsf".into()),
                ..ExportParams::default()
            },
            &mut body,
            &mut progress,
            |_| {},
        )
        .await
        .expect("ocsf");
    let ocsf: Vec<Value> = std::str::from_utf8(&body)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    let by_seq: std::collections::BTreeMap<u64, &Value> = records
        .iter()
        .map(|r| (r["seq"].as_u64().expect("seq"), r))
        .collect();
    let mut seen_classes = std::collections::BTreeSet::new();
    for event in &ocsf {
        let seq = event["metadata"]["sequence"].as_u64().expect("sequence");
        let record = by_seq[&seq];
        assert_eq!(&event["unmapped"], record, "the original event, whole");
        let class_uid = event["class_uid"].as_u64().expect("class_uid");
        let activity_id = event["activity_id"].as_u64().expect("activity_id");
        assert_eq!(event["type_uid"], class_uid * 100 + activity_id);
        assert_eq!(event["category_uid"], class_uid / 1000);
        assert!(event["time"].is_i64() && event["metadata"]["version"] == "1.8.0");
        assert_eq!(event["metadata"]["product"]["name"], "veritrail");
        let event_type = record["type"].as_str().expect("type");
        if let Some(mapping) = classes.get(event_type).filter(|m| !m.is_null()) {
            // The catalog's own mapping wins.
            assert_eq!(event["class_uid"], mapping["class_uid"], "{event_type}");
            assert_eq!(event["activity_id"], mapping["activity_id"], "{event_type}");
        }
        let ours = record["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ocsf-"));
        if ours {
            match class_uid {
                3001 | 3002 | 3005 => assert_eq!(event["user"]["uid"], "u_2", "{event_type}"),
                3006 => assert_eq!(event["group"]["uid"], "g_1", "{event_type}"),
                6003 => assert_eq!(event["api"]["operation"], event_type),
                _ => {}
            }
            assert_eq!(event["actor"]["user"]["uid"], "u_1");
            if class_uid / 1000 == 3 {
                assert_eq!(event["src_endpoint"]["ip"], "203.0.113.9");
            }
        }
        assert_eq!(
            event["status_id"],
            match record["outcome"].as_str() {
                Some("success") => 1,
                Some("failure") => 2,
                _ => 0,
            }
        );
        seen_classes.insert(class_uid);
    }
    assert_eq!(ocsf.len(), records.len());
    // The official schema, by a checker of its own (tests/ocsf/validate.py): every event
    // passes; one with a required attribute taken out does not (the check can fail).
    if let Some(python) = python() {
        let (ok, report) = ocsf_check(&python, &body);
        assert!(ok, "{report}");
        assert!(
            report.contains(&format!("\"events\": {}", ocsf.len())),
            "{report}"
        );
        let mut broken = ocsf.clone();
        let login = broken
            .iter_mut()
            .find(|event| event["class_uid"] == 3002)
            .expect("a login");
        login.as_object_mut().expect("object").remove("user");
        let text: String = broken.iter().map(|e| e.to_string() + "\n").collect();
        let (ok, report) = ocsf_check(&python, text.as_bytes());
        assert!(
            !ok && report.contains("user: required, missing"),
            "{report}"
        );
    }
    // The five catalogs reach the classes the defaults name, and others of their own.
    for class in [3001, 3002, 6003] {
        assert!(seen_classes.contains(&class), "{seen_classes:?}");
    }
    server.stop().await;
}
