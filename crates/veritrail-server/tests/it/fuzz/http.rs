//! The fuzz target that goes through HTTP: generated query strings (those of the search,
//! count and Activity targets) sent to a running server's `GET /api/v1/events`,
//! `GET /api/v1/events/count`, `GET /api/v1/events/stream` (with a `Last-Event-ID` or
//! not) and `/activity` (signed in), over a log whose events span the whole range of
//! timestamps, so that every date filter and histogram finds something.
//!
//! Properties: no answer is a 5xx (a panic in a handler answers 500); an API refusal is a
//! JSON error with `invalid_parameter` or `invalid_cursor`; an Activity page is 200 or 400.
//! Slower than the other targets (one request per case): `VERITRAIL_FUZZ_CASES` counts
//! requests.

use serde_json::json;
use veritrail_api::Role;
use veritrail_client::{IngestOptions, Wait};

use super::harness::{Rng, Verdict, run};
use super::{activity_case, count_case, search_case};
use crate::support::{Reply, TestServer, event};

/// A running server with a tenant, its events, a reader key and a signed-in session.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    server: TestServer,
    http: reqwest::Client,
    reader: String,
    session: String,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fixture")
    }
}

fn cookie_value(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|header| {
            let pair = header.split(';').next()?;
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}

fn form_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn sign_in(server: &TestServer, key: &str) -> String {
    let form = server.get("/activity", None).await;
    let html = form.text();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a token in the sign-in form")
        .to_owned();
    let cookie = cookie_value(&form, "vt_sign_in").expect("the sign-in cookie");
    let entered = server
        .send(
            server
                .request(reqwest::Method::POST, "/ui/sign-in", None)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", format!("vt_sign_in={cookie}"))
                .body(format!("key={}&csrf={csrf}", form_value(key))),
        )
        .await;
    cookie_value(&entered, "vt_session").expect("a session")
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, reader, session) = runtime.block_on(async {
        let server = TestServer::start().await;
        let owner = server.tenant("acme").await;
        let publisher = server.key("acme", Role::Publisher).await;
        let reader = server.key("acme", Role::Admin).await;
        // Events at both ends of the timestamp range and in between, so that date filters
        // and histograms span centuries.
        let times = [
            "1677-09-21T00:12:43.145224192Z",
            "1677-09-21T00:13:00Z",
            "1970-01-01T00:00:00Z",
            "2025-10-23T16:31:39.680Z",
            "2262-04-11T23:47:16.854775807Z",
        ];
        let events: Vec<_> = times
            .iter()
            .enumerate()
            .map(|(i, time)| {
                let outcome = if i % 2 == 0 { "success" } else { "failure" };
                event(
                    &format!("e{i}"),
                    ["user.login", "doc.shared", "api.key.created"][i % 3],
                    json!({
                        "occurred_at": time,
                        "actor": {"id": format!("u{i}"), "email": "ann@example.com"},
                        "targets": [{"id": "d1", "name": "Doc"}],
                                "outcome": outcome,
                        "correlation_id": "op-1",
                        "details": {"n": i}
                    }),
                )
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
            .expect("sent");
        let session = sign_in(&server, &owner).await;
        (server, reader, session)
    });
    Fixture {
        http: server.http(),
        runtime,
        server,
        reader,
        session,
    }
}

#[derive(Debug)]
struct HttpCase {
    path: &'static str,
    query: String,
    /// The live tail's `Last-Event-ID`, if sent.
    last_event_id: Option<&'static str>,
}

fn http_case(rng: &mut Rng) -> HttpCase {
    let (path, query) = match rng.below(4) {
        0 => ("/api/v1/events", search_case(rng).query),
        1 => ("/api/v1/events/count", count_case(rng).query),
        2 => ("/api/v1/events/stream", search_case(rng).query),
        _ => ("/activity", activity_case(rng).query),
    };
    let last_event_id = (path == "/api/v1/events/stream" && rng.bool()).then(|| {
        *rng.pick(&[
            "0",
            "3",
            " 2 ",
            "18446744073709551615",
            "18446744073709551616",
            "-1",
            "x",
            "",
        ])
    });
    HttpCase {
        path,
        query,
        last_event_id,
    }
}

fn check_http_case(fixture: &Fixture, case: &HttpCase) -> Verdict {
    let url = format!("{}{}?{}", fixture.server.url, case.path, case.query);
    let Ok(url) = reqwest::Url::parse(&url) else {
        return Verdict::Rejected;
    };
    let mut request = if case.path == "/activity" {
        fixture
            .http
            .get(url)
            .header("cookie", format!("vt_session={}", fixture.session))
    } else {
        fixture
            .http
            .get(url)
            .header("authorization", format!("Bearer {}", fixture.reader))
    };
    if let Some(id) = case.last_event_id {
        request = request.header("last-event-id", id);
    }
    let stream = case.path == "/api/v1/events/stream";
    let reply = fixture.runtime.block_on(async {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        if stream && status == 200 {
            // A live tail never ends: its headers say enough, and dropping it hangs up.
            let kind = response.headers().get("content-type").cloned();
            assert_eq!(
                kind.as_ref().and_then(|v| v.to_str().ok()),
                Some("text/event-stream")
            );
            return (status, b"{}".to_vec());
        }
        let body = response.bytes().await.expect("body").to_vec();
        (status, body)
    });
    let (status, body) = reply;
    let text = String::from_utf8_lossy(&body);
    assert!(status < 500, "{} answered {status}: {text}", case.path);
    if case.path == "/activity" {
        assert!(matches!(status, 200 | 400), "{status}: {text}");
        return (status == 200).into();
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"));
    match status {
        200 => Verdict::Accepted,
        400 => {
            let code = json.pointer("/error/code").and_then(|c| c.as_str());
            assert!(
                matches!(code, Some("invalid_parameter" | "invalid_cursor")),
                "{text}"
            );
            Verdict::Rejected
        }
        other => panic!("{other}: {text}"),
    }
}

#[test]
fn fuzz_http_queries() {
    let fixture = fixture();
    run("http_queries", 2000, http_case, move |case| {
        check_http_case(&fixture, case)
    });
}
