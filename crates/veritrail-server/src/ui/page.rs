//! What every page carries: the security headers (a Content-Security-Policy that allows
//! nothing from elsewhere), and the pages that say what went wrong.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Nothing from elsewhere: styles and scripts from this server only (no inline script), no
/// frames, no other connections.
pub(super) const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The embedded view's: the same (its drawer fetches records from this server), but any
/// site may frame it (the token is the permission).
pub(super) const EMBED_CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors *; base-uri 'none'";

/// A page with the security headers every page carries.
pub(super) fn page(
    status: StatusCode,
    html: Result<String, askama::Error>,
    cookies: &[String],
) -> Response {
    framed_page(status, html, cookies, false)
}

/// [`page`]; `embeddable` pages may be shown in another site's frame (the embedded view).
pub(super) fn framed_page(
    status: StatusCode,
    html: Result<String, askama::Error>,
    cookies: &[String],
    embeddable: bool,
) -> Response {
    let html = match html {
        Ok(html) => html,
        Err(err) => {
            tracing::error!(error = %err, "a page did not render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response();
        }
    };
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if embeddable { EMBED_CSP } else { CSP }),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !embeddable {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Template)]
#[template(path = "problem.html")]
pub(super) struct ProblemPage<'a> {
    heading: &'a str,
    reason: &'a str,
    /// A way on: `(href, text)`.
    link: Option<(&'a str, &'a str)>,
}

/// The heading of a refused sign-in.
pub(super) const REFUSED: &str = "This key cannot open the Activity page";

/// The heading of a page that failed for the server's reasons.
pub(super) const UNAVAILABLE: &str = "This page cannot be shown right now";

/// The way back to the Activity page.
pub(super) const BACK: Option<(&str, &str)> = Some(("/activity", "Back to the Activity page"));

/// The page of a session's page whose log could not be read (503; the cause is logged).
pub(super) fn unreadable() -> Response {
    problem_page(
        StatusCode::SERVICE_UNAVAILABLE,
        UNAVAILABLE,
        UNREADABLE,
        BACK,
        false,
    )
}

/// The page of a record whose stored data failed its integrity check (500; the detail is
/// logged as an integrity error): it is not shown, rather than shown unverifiable.
pub(super) fn damaged(embeddable: bool) -> Response {
    problem_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "This event failed its integrity check",
        "Its stored data does not verify against the log's signed checkpoint, so it is not shown. The server's log names the damage; the operator can check the whole log with `veritrail verify`.",
        if embeddable { None } else { BACK },
        embeddable,
    )
}

/// A page that says what went wrong: a refused key or token, a missing record, a log that
/// cannot be read. `embeddable`: for the embedded view, which other sites frame.
pub(super) fn problem_page(
    status: StatusCode,
    heading: &str,
    reason: &str,
    link: Option<(&str, &str)>,
    embeddable: bool,
) -> Response {
    let html = ProblemPage {
        heading,
        reason,
        link,
    }
    .render();
    framed_page(status, html, &[], embeddable)
}

/// What the Activity pages say when the log cannot be read.
pub(super) const UNREADABLE: &str = "The log cannot be read right now. Nothing is lost; try again in a moment, and if this persists, the server's log says why.";
