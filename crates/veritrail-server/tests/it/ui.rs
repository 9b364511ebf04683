//! The web UI over real HTTP: sign-in with a key that becomes a session cookie, CSRF on
//! every state change, the security headers, who may enter, and the Activity table.

use reqwest::Method;
use serde_json::json;
use veritrail_api::Role;
use veritrail_client::{IngestOptions, KeyScope};

use crate::support::{Reply, TestServer, event};

/// `name=value` of a `Set-Cookie` of `reply`, with the whole header.
pub(crate) fn set_cookie(reply: &Reply, name: &str) -> Option<(String, String)> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(|header| {
            let value = header
                .split(';')
                .next()
                .and_then(|pair| pair.split_once('='))
                .map(|(_, value)| value.to_owned())
                .unwrap_or_default();
            (value, header.to_owned())
        })
}

/// The sign-in form's token (from the hidden input) and its cookie.
async fn sign_in_form(server: &TestServer) -> (String, String) {
    let page = server.get("/activity", None).await;
    page.expect(200, None);
    let html = page.text();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a token in the form")
        .to_owned();
    let (cookie, header) = set_cookie(&page, "vt_sign_in").expect("the sign-in cookie");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    (token, cookie)
}

async fn post_form(server: &TestServer, path: &str, cookie: &str, form: &str) -> Reply {
    server
        .send(
            server
                .request(Method::POST, path, None)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie)
                .body(form.to_owned()),
        )
        .await
}

fn form_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Signs in with `key`; the answer.
pub(crate) async fn sign_in(server: &TestServer, key: &str) -> Reply {
    let (token, cookie) = sign_in_form(server).await;
    post_form(
        server,
        "/ui/sign-in",
        &format!("vt_sign_in={cookie}"),
        &format!("key={}&csrf={token}", form_value(key)),
    )
    .await
}

async fn page_with(server: &TestServer, session: &str) -> Reply {
    server
        .send(
            server
                .request(Method::GET, "/activity", None)
                .header("cookie", format!("vt_session={session}")),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_a_policy_that_allows_nothing_from_elsewhere() {
    let server = TestServer::start().await;
    let root = server.get("/", None).await;
    assert_eq!(root.status, 303);
    assert_eq!(root.header("location").as_deref(), Some("/activity"));
    let page = server.get("/activity", None).await;
    page.expect(200, None);
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("http"), "nothing external: {csp}");
    assert_eq!(
        page.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(
        page.header("content-type")
            .expect("type")
            .starts_with("text/html")
    );
    let html = page.text();
    assert!(html.contains("<form method=\"post\" action=\"/ui/sign-in\">"));
    assert!(
        html.contains("<label for=\"key\">"),
        "the field has a label"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external asset"
    );
    // Live mode's stream needs a session.
    server.get("/activity/stream", None).await.expect(401, None);
    // Every asset the pages use is in the binary, revalidated by its ETag (so that after
    // an upgrade no page runs an older script than its own).
    for (path, kind) in [
        ("/ui/assets/app.css", "text/css"),
        ("/ui/assets/activity.js", "text/javascript"),
        ("/ui/assets/verify.js", "text/javascript"),
        ("/ui/assets/icon.svg", "image/svg+xml"),
    ] {
        let asset = server.get(path, None).await;
        asset.expect(200, None);
        assert!(
            asset
                .header("content-type")
                .expect("type")
                .starts_with(kind)
        );
        assert_eq!(asset.header("cache-control").as_deref(), Some("no-cache"));
        let etag = asset.header("etag").expect("an ETag");
        let again = |tag: String| {
            let server = &server;
            async move {
                server
                    .send(
                        server
                            .request(Method::GET, path, None)
                            .header("if-none-match", tag),
                    )
                    .await
            }
        };
        for tag in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"0000\", {etag}"),
            "*".into(),
        ] {
            let same = again(tag.clone()).await;
            assert_eq!(same.status, 304, "{path} {tag}");
            assert!(same.text().is_empty());
        }
        again("\"0000\"".into()).await.expect(200, None);
    }
    assert!(html.contains("<link rel=\"icon\" href=\"/ui/assets/icon.svg\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_owner_super_admin_and_admin_keys_enter_and_forged_forms_change_nothing() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    // A form without the sign-in cookie's token: refused, no session.
    let (token, _) = sign_in_form(&server).await;
    let forged = post_form(
        &server,
        "/ui/sign-in",
        "vt_sign_in=someone-elses",
        &format!("key={}&csrf={token}", form_value(&owner)),
    )
    .await;
    forged.expect(403, None);
    assert!(set_cookie(&forged, "vt_session").is_none());
    // Unknown key.
    let unknown = sign_in(&server, "vt_not-a-key").await;
    unknown.expect(401, None);
    assert!(unknown.text().contains("not recognised"));
    assert!(set_cookie(&unknown, "vt_session").is_none());
    // Roles that may not enter, and the server admin.
    for (key, says) in [
        (
            server.key("acme", Role::Publisher).await,
            "publisher key only sends events",
        ),
        (server.key("acme", Role::Viewer).await, "viewer key"),
        (server.admin_key.clone(), "server-admin key"),
    ] {
        let refused = sign_in(&server, &key).await;
        refused.expect(403, None);
        assert!(refused.text().contains(says), "{}", refused.text());
        assert!(set_cookie(&refused, "vt_session").is_none());
    }
    // Those that may: a session cookie, HttpOnly and SameSite=Strict.
    for role in [Role::SuperAdmin, Role::Admin] {
        let key = server.key("acme", role).await;
        let entered = sign_in(&server, &key).await;
        assert_eq!(entered.status, 303, "{}", entered.text());
        let (session, header) = set_cookie(&entered, "vt_session").expect("a session");
        assert_eq!(session.len(), 64);
        assert!(
            header.contains("HttpOnly") && header.contains("SameSite=Strict"),
            "{header}"
        );
        assert!(!header.contains("Secure"), "plain HTTP: {header}");
        page_with(&server, &session).await.expect(200, None);
    }
    // Behind a TLS-terminating proxy the cookie is Secure.
    let (token, cookie) = sign_in_form(&server).await;
    let secure = server
        .send(
            server
                .request(Method::POST, "/ui/sign-in", None)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", format!("vt_sign_in={cookie}"))
                .header("x-forwarded-proto", "https")
                .body(format!("key={}&csrf={token}", form_value(&owner))),
        )
        .await;
    let (_, header) = set_cookie(&secure, "vt_session").expect("a session");
    assert!(header.contains("; Secure"), "{header}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_activity_page_shows_the_newest_events_escaped_and_sessions_end_on_sign_out_or_revocation()
 {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let events = vec![
        event(
            "e1",
            "user.login",
            json!({"outcome": "failure", "actor": {"id": "u1", "email": "ann@example.com"}}),
        ),
        event(
            "e2",
            "doc.shared",
            json!({"actor": {"id": "u2"}, "targets": [{"id": "d1", "type": "doc", "name": "<script>alert(1)</script>"}]}),
        ),
    ];
    server
        .client(&publisher)
        .send(
            &events,
            IngestOptions {
                wait: veritrail_client::Wait::Searchable,
                ..IngestOptions::default()
            },
        )
        .await
        .expect("sent");
    let entered = sign_in(&server, &owner).await;
    let (session, _) = set_cookie(&entered, "vt_session").expect("a session");
    let page = page_with(&server, &session).await;
    page.expect(200, None);
    let html = page.text();
    assert!(
        html.contains("ann@example.com") && html.contains("user.login"),
        "{html}"
    );
    assert!(html.contains("class=\"outcome failure\""));
    assert!(!html.contains("<script>alert(1)</script>"), "escaped");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    // Newest first: doc.shared was stored after user.login.
    assert!(html.find("doc.shared") < html.find("user.login"));
    // The tenant's own service events are there too (its creation, the keys).
    assert!(html.contains("veritrail.key.created"));

    // Sign-out needs the session's token.
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-out token")
        .to_owned();
    let forged = post_form(
        &server,
        "/ui/sign-out",
        &format!("vt_session={session}"),
        "csrf=guess",
    )
    .await;
    forged.expect(403, None);
    page_with(&server, &session).await.expect(200, None);
    assert!(
        page_with(&server, &session)
            .await
            .text()
            .contains("Sign out"),
        "still signed in"
    );
    let out = post_form(
        &server,
        "/ui/sign-out",
        &format!("vt_session={session}"),
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(out.status, 303);
    let (cleared, header) = set_cookie(&out, "vt_session").expect("the cookie is cleared");
    assert!(
        cleared.is_empty() && header.contains("Max-Age=0"),
        "{header}"
    );
    assert!(
        page_with(&server, &session)
            .await
            .text()
            .contains("Sign in"),
        "signed out"
    );

    // Revoking the key ends its sessions.
    let admin_key = server
        .admin()
        .create_key(&KeyScope::Tenant("acme".into()), Role::Admin, None)
        .await
        .expect("key");
    let entered = sign_in(&server, &admin_key.secret).await;
    let (session, _) = set_cookie(&entered, "vt_session").expect("a session");
    assert!(
        page_with(&server, &session)
            .await
            .text()
            .contains("Sign out")
    );
    server
        .admin()
        .revoke_key(&KeyScope::Tenant("acme".into()), &admin_key.key.id)
        .await
        .expect("revoked");
    assert!(
        page_with(&server, &session)
            .await
            .text()
            .contains("Sign in"),
        "the session ended with its key"
    );
}

/// The `href`s of the histogram's bars, and the text of the table's rows.
fn bars(html: &str) -> Vec<String> {
    let histogram = html
        .split("<figure class=\"histogram\">")
        .nth(1)
        .and_then(|rest| rest.split("</figure>").next())
        .unwrap_or("");
    histogram
        .split("<a href=\"")
        .skip(1)
        .map(|rest| {
            rest.split('"')
                .next()
                .unwrap_or("")
                .replace("&#38;", "&")
                .replace("&amp;", "&")
        })
        .filter(|href| href.starts_with("/activity?") && href.contains("from="))
        .collect()
}

fn row_count(html: &str) -> usize {
    html.split("<tbody>")
        .nth(1)
        .map_or(0, |body| body.matches("<tr>").count())
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_live_in_the_url_bars_narrow_the_dates_and_pages_follow_by_cursor() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    // 120 logins over 10 hours, every third one failed; and some other events.
    let events: Vec<_> = (0..120)
        .map(|i| {
            let at = veritrail_core::event::Timestamp::from_unix_nanos(
                1_790_000_000_000_000_000 + i64::from(i) * 300 * 1_000_000_000,
            );
            event(
                &format!("login-{i}"),
                "user.login",
                json!({"occurred_at": at.to_rfc3339(), "outcome": if i % 3 == 0 { "failure" } else { "success" }, "actor": {"id": format!("user-{}", i % 4)}}),
            )
        })
        .chain((0..5).map(|i| event(&format!("doc-{i}"), "doc.opened", json!({}))))
        .collect();
    server
        .client(&publisher)
        .send(
            &events,
            IngestOptions {
                wait: veritrail_client::Wait::Searchable,
                ..IngestOptions::default()
            },
        )
        .await
        .expect("sent");
    let (session, _) =
        set_cookie(&sign_in(&server, &owner).await, "vt_session").expect("a session");
    let get = |path: String| {
        let server = &server;
        let session = session.clone();
        async move {
            server
                .send(
                    server
                        .request(Method::GET, &path, None)
                        .header("cookie", format!("vt_session={session}")),
                )
                .await
        }
    };

    // Filtered by outcome and type: only failed logins, and the form shows the filters.
    let failed = get("/activity?type=user.*&outcome=failure".into()).await;
    failed.expect(200, None);
    let html = failed.text();
    assert_eq!(row_count(&html), 40, "every third of 120");
    assert!(!html.contains("class=\"outcome success\""));
    assert!(
        html.contains("<option value=\"failure\" selected>"),
        "the form keeps the filter"
    );
    assert!(html.contains("value=\"user.*\""));
    // The histogram: bars over the 10 hours, each a link keeping the filters.
    let hrefs = bars(&html);
    assert!(hrefs.len() >= 10, "{hrefs:?}");
    assert!(
        hrefs
            .iter()
            .all(|href| href.contains("outcome=failure") && href.contains("type=user.*")),
        "{hrefs:?}"
    );
    assert!(
        html.contains("class=\"failed\""),
        "failures have their own bars"
    );
    // Bars stand at their time. The failures span 14:13 to 23:58 (the range the filters
    // leave open is the matches' span): 15-minute slots from 14:00 to 23:45, one failure
    // in each.
    let view_box = html
        .split("viewBox=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("");
    assert_eq!(view_box, "0 0 400 82", "40 slots of 15 minutes");
    assert_eq!(hrefs.len(), 40, "{hrefs:?}");
    assert!(
        hrefs[0].ends_with("from=2026-09-21T14:00:00.000Z&to=2026-09-21T14:15:00.000Z"),
        "the first bar is 14:00 to 14:15: {}",
        hrefs[0]
    );
    assert!(
        html.contains("<rect class=\"slot\" x=\"390\""),
        "the 23:45 bar is the last slot"
    );
    assert!(
        html.contains("aria-label=\"1 events, 1 failed"),
        "one failure per slot"
    );

    // A bar narrows the dates to its bucket: fewer rows, all inside it.
    let all = get("/activity?type=user.*".into()).await.text();
    let bar = bars(&all).into_iter().next().expect("a bar");
    let narrowed = get(bar.clone()).await;
    narrowed.expect(200, None);
    let narrowed = narrowed.text();
    let rows = row_count(&narrowed);
    assert!(rows > 0 && rows < 50, "{rows} rows in {bar}");
    let from = bar
        .split("from=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("from")
        .replace("%3A", ":");
    assert!(
        narrowed.contains(&format!("value=\"{from}\"")),
        "the form shows the range {from}"
    );

    // Paging: 50 rows, then an older page after the last seq, no row twice.
    let first = get("/activity?type=user.*".into()).await.text();
    assert_eq!(row_count(&first), 50);
    let older = first
        .split("<a href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.contains("after="))
        .expect("an older page")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let second = get(older).await.text();
    assert_eq!(row_count(&second), 50);
    let times = |html: &str| -> Vec<String> {
        html.split("<time datetime=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (times(&first), times(&second));
    assert!(a.last() > b.first(), "the second page is older");
    assert!(a.iter().all(|time| !b.contains(time)), "no row twice");

    // A filter the log cannot take is said, not shown as an empty page.
    let bad = get("/activity?from=yesterday".into()).await;
    bad.expect(400, None);
    assert!(bad.text().contains("from"), "{}", bad.text());
    assert!(bad.text().contains("role=\"alert\""));
    // ... and the category the address asked for stays in the form.
    let bad = get("/activity?from=yesterday&category=Keys".into()).await;
    assert!(bad.text().contains("name=\"category\" value=\"Keys\""));

    // The category drop-down lists the tenant's categories with their counts (the events
    // sent here have no catalog: 125 uncatalogued; the service's own are catalogued), in
    // any case; the type field suggests the tenant's types.
    let listed = get("/activity?category=uncatalogued".into()).await.text();
    assert!(
        listed.contains("<option value=\"Uncatalogued\" selected>Uncatalogued (125)</option>"),
        "{listed}"
    );
    assert!(listed.contains("<option value=\"Keys\">Keys ("), "{listed}");
    assert_eq!(row_count(&listed), 50);
    assert!(listed.contains("<option value=\"user.login\" label=\"120 events\"></option>"));
    assert!(listed.contains("<option value=\"doc.opened\" label=\"5 events\"></option>"));
    // A category with no events (an old bookmark, say) is kept, selected.
    let none = get("/activity?category=Billing".into()).await.text();
    assert!(none.contains("<option value=\"Billing\" selected>Billing (no events)</option>"));
    assert!(none.contains("No events match"));

    // Quick ranges: the last hour, day, week and month, ending now, with the other filters.
    let quick: Vec<String> = listed
        .split("<p class=\"ranges\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .expect("quick ranges")
        .split("<a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&#38;", "&").replace("&amp;", "&"))
        .collect();
    assert_eq!(quick.len(), 4, "{quick:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for (href, secs) in quick.iter().zip([3600, 86_400, 7 * 86_400, 30 * 86_400]) {
        assert!(
            href.starts_with("/activity?category=uncatalogued&from="),
            "{href}"
        );
        assert!(!href.contains("to="), "open-ended: {href}");
        let from = href
            .split("from=")
            .nth(1)
            .expect("from")
            .replace("%3A", ":");
        let from = veritrail_core::event::Timestamp::parse_rfc3339(&from).expect("RFC 3339");
        let ago = i64::try_from(now).expect("now") - from.unix_nanos() / 1_000_000_000;
        assert!(
            (secs..secs + 60).contains(&ago),
            "{href}: {ago} s ago, not {secs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn viewer_keys_enter_only_while_the_tenant_admits_them() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let viewer = server.key("acme", Role::Viewer).await;
    sign_in(&server, &viewer).await.expect(403, None);
    let settings = server.get("/api/v1/activity/settings", Some(&owner)).await;
    settings.expect(200, None);
    assert_eq!(settings.json(), json!({"admit_viewers": false}));
    let put = |admit: bool| {
        let server = &server;
        let owner = owner.clone();
        async move {
            server
                .send(
                    server
                        .request(Method::PUT, "/api/v1/activity/settings", Some(&owner))
                        .header("content-type", "application/json")
                        .body(json!({"admit_viewers": admit}).to_string()),
                )
                .await
        }
    };
    put(true).await.expect(200, None);
    let entered = sign_in(&server, &viewer).await;
    assert_eq!(entered.status, 303);
    let (session, _) = set_cookie(&entered, "vt_session").expect("a session");
    assert!(
        page_with(&server, &session)
            .await
            .text()
            .contains("Sign out")
    );
    // Turning it off ends the viewer's session at its next page.
    put(false).await.expect(200, None);
    assert!(
        page_with(&server, &session)
            .await
            .text()
            .contains("Sign in")
    );
    // Both changes are audit events in the tenant's log.
    crate::support::eventually("both setting changes are searchable", 10, || async {
        let log = server
            .get(
                "/api/v1/events?type=veritrail.tenant.settings_changed",
                Some(&owner),
            )
            .await
            .json();
        let values: Vec<String> = log["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|record| record["details"]["value"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        values.iter().any(|v| v == "admit_viewers=true")
            && values.iter().any(|v| v == "admit_viewers=false")
    })
    .await;
    // A viewer cannot change the setting.
    server
        .send(
            server
                .request(Method::PUT, "/api/v1/activity/settings", Some(&viewer))
                .header("content-type", "application/json")
                .body(r#"{"admit_viewers": true}"#),
        )
        .await
        .expect(403, Some("forbidden"));
}

/// The value of `data-{name}` on the record page, unescaped.
fn data_attr(html: &str, name: &str) -> String {
    html.split(&format!("data-{name}=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no data-{name}"))
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#43;", "+")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_page_carries_what_the_browser_needs_to_check_the_proof_and_the_check_holds() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let other = server.tenant("other").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let events: Vec<_> = (0..13)
        .map(|i| {
            event(
                &format!("e{i}"),
                "user.login",
                json!({"actor": {"id": format!("u{i}")}}),
            )
        })
        .collect();
    let receipts = server
        .client(&publisher)
        .send(
            &events,
            IngestOptions {
                wait: veritrail_client::Wait::Searchable,
                ..IngestOptions::default()
            },
        )
        .await
        .expect("sent")
        .receipts;
    let seq = receipts[6].seq;
    let (session, _) =
        set_cookie(&sign_in(&server, &owner).await, "vt_session").expect("a session");
    let get = |path: String, session: String| {
        let server = &server;
        async move {
            server
                .send(
                    server
                        .request(Method::GET, &path, None)
                        .header("cookie", format!("vt_session={session}")),
                )
                .await
        }
    };
    // The table links each row to its record page.
    let list = get("/activity".into(), session.clone()).await.text();
    assert!(list.contains(&format!("href=\"/activity/events/{seq}\"")));
    let page = get(format!("/activity/events/{seq}"), session.clone()).await;
    page.expect(200, None);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let html = page.text();
    assert!(html.contains("<script src=\"/ui/assets/verify.js\"></script>"));
    assert!(
        html.contains("not checked"),
        "the badge says nothing until the script has checked"
    );
    assert!(
        html.contains("&#34;id&#34;: &#34;e6&#34;"),
        "the whole record is shown (escaped)"
    );
    let js = server.get("/ui/assets/verify.js", None).await;
    js.expect(200, None);
    assert!(
        js.header("content-type")
            .expect("type")
            .starts_with("text/javascript")
    );
    // Other tenants' records and seqs past the log are not found.
    let (other_session, _) =
        set_cookie(&sign_in(&server, &other).await, "vt_session").expect("a session");
    get(format!("/activity/events/{seq}"), other_session)
        .await
        .expect(404, None);
    let missing = get("/activity/events/999999".into(), session.clone()).await;
    missing.expect(404, None);
    let missing = missing.text();
    assert!(
        missing.contains("<h1 id=\"problem-title\">No such event</h1>")
            && missing.contains("no event with that seq")
            && missing.contains("<a href=\"/activity\">Back to the Activity page</a>"),
        "{missing}"
    );
    get("/activity/events/nope".into(), session.clone())
        .await
        .expect(404, None);

    // The page's own check, run by Node on the page's data: the genuine record verifies,
    // every tampered variant fails; for the first record, one inside, and the newest (the
    // tree's last leaf, whose proof climbs its right edge). The checkpoint's signature is
    // checked under the page's key: a changed checkpoint, a changed signature, another key
    // (a valid one, of another deployment) or a key other than the one pinned fail.
    let vkey = server.get("/api/v1/log/key", Some(&owner)).await.json()["verifier_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let other_vkey = veritrail_core::note::NoteSigner::from_seed("veritrail.local", [7; 32])
        .expect("a key")
        .verifier()
        .to_vkey_string();
    for seq in [0, seq, receipts[12].seq] {
        let html = get(format!("/activity/events/{seq}"), session.clone())
            .await
            .text();
        assert_eq!(
            data_attr(&html, "key"),
            vkey,
            "the page names the log's verifier key"
        );
        assert_eq!(data_attr(&html, "tenant"), "acme", "and whose log it is");
        let input = json!({
            "key": data_attr(&html, "key"),
            "tenant": data_attr(&html, "tenant"),
            "other_key": other_vkey,
            "record": data_attr(&html, "record"),
            "seq": data_attr(&html, "seq").parse::<u64>().expect("seq"),
            "tree_size": data_attr(&html, "tree-size").parse::<u64>().expect("size"),
            "proof": serde_json::from_str::<serde_json::Value>(&data_attr(&html, "proof")).expect("proof JSON"),
            "checkpoint": html
                .split("data-checkpoint>")
                .nth(1)
                .and_then(|rest| rest.split("</pre>").next())
                .expect("the checkpoint")
                .replace("&#43;", "+")
                .replace("&#47;", "/")
                .replace("&#61;", "=")
                .replace("&#8212;", "\u{2014}"),
        });
        let Some(verdicts) = run_node(&input) else {
            return;
        };
        assert_eq!(
            verdicts,
            json!({"genuine": true, "tampered_record": false, "tampered_proof": false, "other_seq": false,
                   "other_root": false, "short_proof": false, "size_matches": true,
                   "signature": true, "page": "verified", "page_pinned": "verified",
                   "tampered_signature": "failed", "tampered_checkpoint": "failed",
                   "other_key": "failed", "other_pinned": "failed", "other_size": "failed",
                   "other_tenant": "failed"}),
            "seq {seq}: {input}"
        );
    }
}

/// Runs `tests/js/verify_inclusion.cjs` with Node on `input`; `None` (with a note) when
/// Node is not installed, outside CI.
fn run_node(input: &serde_json::Value) -> Option<serde_json::Value> {
    use std::io::Write as _;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/verify_inclusion.cjs");
    let child = std::process::Command::new("node")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if !crate::receiver::tools_required() => {
            eprintln!(
                "note: Node.js is not installed ({err}); the in-browser proof check was not run"
            );
            return None;
        }
        Err(err) => {
            panic!("Node.js is required for the proof check (CI or VERITRAIL_REQUIRE_TOOLS): {err}")
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("node ran");
    assert!(
        output.status.success(),
        "node: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("node printed JSON"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_and_integrity_views_show_the_tenants_catalogs_checkpoint_and_key() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    server
        .send(
            server
                .request(Method::PUT, "/api/v1/catalog/settings", Some(&owner))
                .header("content-type", "application/json")
                .body(r#"{"policy": "lenient", "adopted": ["vgs-user-actions"]}"#),
        )
        .await
        .expect(200, None);
    let (session, _) =
        set_cookie(&sign_in(&server, &owner).await, "vt_session").expect("a session");
    let get = |path: &'static str| {
        let server = &server;
        let session = session.clone();
        async move {
            server
                .send(
                    server
                        .request(Method::GET, path, None)
                        .header("cookie", format!("vt_session={session}")),
                )
                .await
        }
    };
    let catalog = get("/activity/catalog").await;
    catalog.expect(200, None);
    let html = catalog.text();
    let adopted = html.find("vgs-user-actions").expect("the adopted catalog");
    let builtin = html.find(">veritrail <").expect("veritrail's own catalog");
    assert!(adopted < builtin, "in lookup order");
    assert!(html.contains("user.logged_in") && html.contains("veritrail.webhook.created"));
    assert!(html.contains("<td>9040</td>"), "codes are shown");
    assert!(
        html.contains("href=\"/activity?type=user.logged_in\""),
        "a type links to its events"
    );

    let integrity = get("/activity/integrity").await;
    integrity.expect(200, None);
    let html = integrity.text();
    let key = server.get("/api/v1/log/key", Some(&owner)).await.json();
    let vkey = key["verifier_key"].as_str().expect("key");
    assert!(
        html.contains(&vkey.replace('+', "&#43;")) || html.contains(vkey),
        "the pinned key is shown"
    );
    let checkpoint = server
        .get("/api/v1/log/checkpoint", Some(&owner))
        .await
        .text();
    let origin_line = checkpoint.lines().next().expect("origin");
    assert!(html.contains(origin_line), "the latest checkpoint is shown");
    assert!(
        html.contains("veritrail verify --export acme.ndjson --key"),
        "the offline command"
    );
    // Signed out, the views are the sign-in page.
    assert!(
        server
            .get("/activity/integrity", None)
            .await
            .text()
            .contains("Sign in")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_token_shows_only_its_scope_cannot_be_widened_expires_and_is_audited() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let events: Vec<_> = (0..6)
        .map(|i| {
            event(
                &format!("e{i}"),
                "user.login",
                json!({"actor": {"id": format!("u{}", i % 2)}}),
            )
        })
        .collect();
    server
        .client(&publisher)
        .send(
            &events,
            IngestOptions {
                wait: veritrail_client::Wait::Searchable,
                ..IngestOptions::default()
            },
        )
        .await
        .expect("sent");
    for key in [server.key("acme", Role::Viewer).await, publisher.clone()] {
        server
            .post_json("/api/v1/viewer-tokens", Some(&key), &json!({"actor": "u1"}))
            .await
            .expect(403, Some("forbidden"));
    }
    server
        .post_json(
            "/api/v1/viewer-tokens",
            Some(&owner),
            &json!({"ttl_seconds": 0}),
        )
        .await
        .expect(422, None);
    let minted = server
        .post_json(
            "/api/v1/viewer-tokens",
            Some(&owner),
            &json!({"actor": "u1", "ttl_seconds": 60}),
        )
        .await;
    minted.expect(201, None);
    let body = minted.json();
    let path = body["embed_path"].as_str().expect("path").to_owned();
    let token = body["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("vtv_") && path == format!("/embed?token={token}"));

    let page = server.get(&path, None).await;
    page.expect(200, None);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("frame-ancestors *"), "embeddable: {csp}");
    assert!(page.header("x-frame-options").is_none());
    let html = page.text();
    assert_eq!(row_count(&html), 3, "only u1's three events");
    assert!(html.contains("<td>u1</td>") && !html.contains("<td>u0</td>"));
    // Its histogram counts only that scope, and its bars stay in the embedded view.
    let bar_links: Vec<String> = html
        .split("<a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&#38;", "&").replace("&amp;", "&"))
        .filter(|href| href.contains("from="))
        .collect();
    assert!(!bar_links.is_empty(), "a histogram");
    assert!(
        bar_links
            .iter()
            .all(|href| href.starts_with("/embed?") && href.contains(&format!("token={token}"))),
        "{bar_links:?}"
    );
    assert!(
        html.contains("aria-label=\"3 events, 0 failed"),
        "u1's three events in one bar"
    );
    let narrowed = server.get(&bar_links[0], None).await;
    narrowed.expect(200, None);
    assert_eq!(row_count(&narrowed.text()), 3);
    assert!(!narrowed.text().contains("<td>u0</td>"));
    // The URL cannot widen it: another actor, or the API, with the token.
    let widened = server.get(&format!("{path}&actor=u0"), None).await;
    widened.expect(200, None);
    assert!(
        !widened.text().contains("<td>u0</td>"),
        "the token's actor wins"
    );
    assert_eq!(row_count(&widened.text()), 3);
    server
        .get("/api/v1/events", Some(&token))
        .await
        .expect(401, None);
    // Its rows open their records (the drawer shows these pages), inside the token's scope
    // only: u0's record is the same 404 as a seq past the log, whatever the URL says.
    let records: Vec<String> = html
        .split("<a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/embed/events/"))
        .map(str::to_owned)
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(
        records
            .iter()
            .all(|href| href.ends_with(&format!("?token={token}"))),
        "{records:?}"
    );
    let record = server.get(&records[0], None).await;
    record.expect(200, None);
    let csp = record.header("content-security-policy").expect("CSP");
    assert!(csp.contains("frame-ancestors *"), "embeddable: {csp}");
    let shown = record.text();
    assert!(shown.contains("data-proof=\"") && shown.contains("data-key=\""));
    assert!(shown.contains("&#34;id&#34;: &#34;u1&#34;"), "u1's record");
    assert!(shown.contains(&format!("<a href=\"/embed?token={token}\">")));
    let u0 = server
        .get("/api/v1/events?actor=u0&limit=1", Some(&owner))
        .await
        .json()["events"][0]["seq"]
        .as_u64()
        .expect("a seq of u0");
    let outside = server
        .get(&format!("/embed/events/{u0}?token={token}&actor=u0"), None)
        .await;
    outside.expect(404, None);
    let past = server
        .get(&format!("/embed/events/999999?token={token}"), None)
        .await;
    past.expect(404, None);
    assert_eq!(outside.text(), past.text(), "nothing told of other records");
    assert!(past.text().contains("no event with that number"));
    server
        .get(&format!("/embed/events/{u0}"), None)
        .await
        .expect(401, None);
    // A changed token is refused.
    let (payload, mac) = token.rsplit_once('.').expect("mac");
    let mut tampered = payload.to_owned();
    tampered.pop();
    tampered.push(if payload.ends_with('A') { 'B' } else { 'A' });
    let forged = server
        .get(&format!("/embed?token={tampered}.{mac}"), None)
        .await;
    forged.expect(401, None);
    assert!(forged.text().contains("not valid"));
    // It expires.
    let short = server
        .post_json(
            "/api/v1/viewer-tokens",
            Some(&owner),
            &json!({"target": "x", "ttl_seconds": 1}),
        )
        .await
        .json();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let expired = server
        .get(short["embed_path"].as_str().expect("path"), None)
        .await;
    expired.expect(401, None);
    assert!(expired.text().contains("expired"));
    // Minting is an audit event, and the uses (the page, the widened URL, the bar and the
    // three records, all within seconds) are recorded by token and minute: one event, or
    // two if a minute ended in between.
    crate::support::eventually("the token's events are searchable", 10, || async {
        let log = server
            .get("/api/v1/events?type=veritrail.viewer_token.*", Some(&owner))
            .await
            .json();
        let types: Vec<String> = log["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|r| r["type"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        types
            .iter()
            .filter(|t| *t == "veritrail.viewer_token.minted")
            .count()
            == 2
            && (1..=2).contains(
                &types
                    .iter()
                    .filter(|t| *t == "veritrail.viewer_token.used")
                    .count(),
            )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_events_sharing_a_correlation_id_show_as_one_operation_with_its_steps() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let step = |id: &str, event_type: &str, outcome: &str| {
        event(
            id,
            event_type,
            json!({"correlation_id": "op_7", "outcome": outcome, "targets": [{"id": "int-1", "type": "integration"}]}),
        )
    };
    let events = vec![
        step("s1", "integration.connection.requested", "pending"),
        event("other", "doc.opened", json!({})),
        step("s2", "integration.connection.in_progress", "pending"),
        step("s3", "integration.connection.failed", "failure"),
    ];
    server
        .client(&publisher)
        .send(
            &events,
            IngestOptions {
                wait: veritrail_client::Wait::Searchable,
                ..IngestOptions::default()
            },
        )
        .await
        .expect("sent");
    let (session, _) =
        set_cookie(&sign_in(&server, &owner).await, "vt_session").expect("a session");
    let html = server
        .send(
            server
                .request(Method::GET, "/activity?target=int-1", None)
                .header("cookie", format!("vt_session={session}")),
        )
        .await
        .text();
    assert_eq!(
        row_count(&html),
        1,
        "one operation for the integration's three steps"
    );
    assert!(html.contains("Operation op_7: 3 steps"), "{html}");
    let steps = html
        .split("<ol reversed>")
        .nth(1)
        .and_then(|rest| rest.split("</ol>").next())
        .expect("the steps");
    let order: Vec<usize> = [
        "connection.failed",
        "connection.in_progress",
        "connection.requested",
    ]
    .iter()
    .map(|name| {
        steps
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {steps}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "newest first: {steps}"
    );
    // Unscoped, the other event is its own row.
    let all = server
        .send(
            server
                .request(Method::GET, "/activity", None)
                .header("cookie", format!("vt_session={session}")),
        )
        .await
        .text();
    assert!(all.contains("doc.opened") && all.contains("Operation op_7: 3 steps"));
}

/// Found by `fuzz_http_queries`: with events at both ends of the timestamp range (a client
/// may date its events anywhere in it), the histogram overflowed an `i64` measuring its
/// span: a panic in a debug build (the page answered 503), a wrapped span in a release
/// one. With no filter, as with both dates given.
#[tokio::test(flavor = "multi_thread")]
async fn the_activity_page_spans_the_whole_timestamp_range() {
    let server = TestServer::start().await;
    let owner = server.tenant("acme").await;
    let publisher = server.key("acme", Role::Publisher).await;
    let events: Vec<_> = [
        "1677-09-21T00:12:43.145224192Z",
        "2025-10-23T16:31:39.680Z",
        "2262-04-11T23:47:16.854775807Z",
    ]
    .iter()
    .enumerate()
    .map(|(i, time)| event(&format!("e{i}"), "user.login", json!({"occurred_at": time})))
    .collect();
    server
        .client(&publisher)
        .send(
            &events,
            IngestOptions {
                wait: veritrail_client::Wait::Searchable,
                ..IngestOptions::default()
            },
        )
        .await
        .expect("sent");
    let entered = sign_in(&server, &owner).await;
    let (session, _) = set_cookie(&entered, "vt_session").expect("a session");
    for query in [
        "",
        "?from=1677-09-21T00:12:43.145224192Z&to=2262-04-11T23:47:16.854775807Z",
        "?from=1677-09-21T00:12:43.145224192Z",
        "?to=2262-04-11T23:47:16.854775807Z",
        "?from=2262-04-01T00:00:00Z",
    ] {
        let page = server
            .send(
                server
                    .request(Method::GET, &format!("/activity{query}"), None)
                    .header("cookie", format!("vt_session={session}")),
            )
            .await;
        page.expect(200, None);
        assert!(!bars(&page.text()).is_empty(), "{query}: a histogram");
    }
}
