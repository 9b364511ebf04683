//! The Activity page's benchmark: a signed-in browser's requests against the preloaded
//! tenant, one page kind per phase (the first response, each kind of filter change, the
//! next page, a record page). Each request is timed by the client, and the server's own
//! time is read from its `Server-Timing` header; the bar is on the server's p95.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};

use crate::Workload;
use crate::http::Conn;
use crate::load::{self, PhaseResult, Worker, finish};
use crate::synth::{self, Rng};

/// One kind of Activity page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageKind {
    /// `/activity`, no filters: what a user sees after signing in.
    First,
    Category,
    Type,
    Actor,
    Target,
    Outcome,
    Text,
    /// A date range of 1 to 7 days, as a click on a histogram bar gives.
    Range,
    /// Category, outcome and a 30-day range together.
    Combined,
    /// The next page of a category's rows (a cursor at a random depth).
    NextPage,
    /// A record page, with its inclusion proof and checkpoint.
    Record,
}

impl PageKind {
    pub(crate) const ALL: [PageKind; 11] = [
        PageKind::First,
        PageKind::Category,
        PageKind::Type,
        PageKind::Actor,
        PageKind::Target,
        PageKind::Outcome,
        PageKind::Text,
        PageKind::Range,
        PageKind::Combined,
        PageKind::NextPage,
        PageKind::Record,
    ];

    /// The results file's key of this kind's phase.
    pub(crate) fn key(self) -> &'static str {
        match self {
            PageKind::First => "activity_first",
            PageKind::Category => "activity_category",
            PageKind::Type => "activity_type",
            PageKind::Actor => "activity_actor",
            PageKind::Target => "activity_target",
            PageKind::Outcome => "activity_outcome",
            PageKind::Text => "activity_text",
            PageKind::Range => "activity_range",
            PageKind::Combined => "activity_combined",
            PageKind::NextPage => "activity_next_page",
            PageKind::Record => "activity_record",
        }
    }

    fn name(self) -> &'static str {
        match self {
            PageKind::First => "Activity: first response, no filters",
            PageKind::Category => "Activity: category",
            PageKind::Type => "Activity: event type",
            PageKind::Actor => "Activity: actor",
            PageKind::Target => "Activity: target",
            PageKind::Outcome => "Activity: outcome failure",
            PageKind::Text => "Activity: free text, one word",
            PageKind::Range => "Activity: date range of 1-7 days (a histogram bar)",
            PageKind::Combined => "Activity: category + failure + 30 days",
            PageKind::NextPage => "Activity: category, next page (cursor)",
            PageKind::Record => "Activity: record page with its proof",
        }
    }

    /// The path of request `i` of this kind on a log of `size` records.
    fn path(self, i: u64, size: u64) -> String {
        let mut rng = Rng::new(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self as u64));
        let f = usize::try_from(rng.below(5)).unwrap_or(0);
        let family = synth::FAMILIES[f];
        let mut path = String::from("/activity");
        match self {
            PageKind::First => {}
            PageKind::Category => {
                let _ = write!(path, "?category={family}");
            }
            PageKind::Type => {
                let kind = synth::TYPES[f][usize::try_from(rng.below(4)).unwrap_or(0)];
                let _ = write!(path, "?type={family}.{kind}");
            }
            PageKind::Actor => {
                let _ = write!(path, "?actor=u_{:05}", rng.below(10_000));
            }
            PageKind::Target => {
                let kind = &synth::TARGET_KINDS[f][..3];
                let _ = write!(path, "?target={kind}_{:05}", rng.below(50_000));
            }
            PageKind::Outcome => path.push_str("?outcome=failure"),
            PageKind::Text => {
                path.push_str("?q=");
                synth::word(rng.below(1024), &mut path);
            }
            PageKind::Range => {
                path.push('?');
                let days = 1 + rng.below(7);
                push_range(&mut rng, days, &mut path);
            }
            PageKind::Combined => {
                let _ = write!(path, "?category={family}&outcome=failure&");
                push_range(&mut rng, 30, &mut path);
            }
            PageKind::NextPage => {
                let after = 1 + rng.below(size.max(2) - 1);
                let _ = write!(path, "?category={family}&after={after}");
            }
            PageKind::Record => {
                let _ = write!(path, "/events/{}", rng.below(size.max(1)));
            }
        }
        path
    }
}

/// Appends `from=...&to=...`: a range of `days` days inside the events' 90 days.
fn push_range(rng: &mut Rng, days: u64, path: &mut String) {
    let span_ms = synth::SPAN_SECS * 1000;
    let length_ms = i64::try_from(days * 86_400_000)
        .unwrap_or(span_ms)
        .min(span_ms);
    let room = u64::try_from(span_ms - length_ms).unwrap_or(0).max(1);
    let start = synth::END_UNIX * 1000 - span_ms + i64::try_from(rng.below(room)).unwrap_or(0);
    path.push_str("from=");
    synth::rfc3339_ms(start, path);
    path.push_str("&to=");
    synth::rfc3339_ms(start + length_ms, path);
}

/// Signs in with `key` as a browser does: the sign-in form's CSRF cookie and field, then
/// the form; returns the session cookie (`vt_session=...`).
async fn sign_in(conn: &mut Conn, key: &str) -> anyhow::Result<String> {
    let (_, headers, _) = conn.exchange(Method::GET, "/activity", &[], None).await?;
    let csrf = set_cookie(&headers, "vt_sign_in").context("no sign-in cookie")?;
    let form = format!("key={key}&csrf={csrf}");
    let cookie = format!("vt_sign_in={csrf}");
    let (status, headers, _) = conn
        .exchange(
            Method::POST,
            "/ui/sign-in",
            &[
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(Bytes::from(form)),
        )
        .await?;
    anyhow::ensure!(status == StatusCode::SEE_OTHER, "sign-in answered {status}");
    let session = set_cookie(&headers, "vt_session").context("no session cookie")?;
    Ok(format!("vt_session={session}"))
}

/// The value that `headers` set for cookie `name`.
fn set_cookie(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next()?.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The server's time in microseconds, from `Server-Timing: app;dur=<ms>`.
fn server_micros(headers: &hyper::HeaderMap) -> Option<u64> {
    let millis: f64 = headers
        .get("server-timing")?
        .to_str()
        .ok()?
        .strip_prefix("app;dur=")?
        .parse()
        .ok()?;
    let time = std::time::Duration::try_from_secs_f64(millis / 1000.0).ok()?;
    u64::try_from(time.as_micros()).ok()
}

/// Asks page `i` of its kind, as a signed-in browser.
struct PageWorker {
    conn: Conn,
    cookie: String,
    kind: PageKind,
    size: u64,
    path: String,
    /// The server's time of every answered request (shared by the phase's workers).
    server: Rc<RefCell<Histogram<u64>>>,
}

impl Worker for PageWorker {
    fn prepare(&mut self, i: u64) -> anyhow::Result<()> {
        self.path = self.kind.path(i, self.size);
        Ok(())
    }

    async fn call(&mut self) -> anyhow::Result<u64> {
        let (status, headers, body) = self
            .conn
            .exchange(Method::GET, &self.path, &[("cookie", &self.cookie)], None)
            .await?;
        let text = String::from_utf8_lossy(&body);
        anyhow::ensure!(
            status == StatusCode::OK,
            "{}: {status}: {}",
            self.path,
            &text[..text.len().min(300)]
        );
        let micros = server_micros(&headers).context("no Server-Timing header")?;
        self.server.borrow_mut().saturating_record(micros.max(1));
        if self.kind == PageKind::Record {
            anyhow::ensure!(text.contains("data-proof="), "{}: no proof", self.path);
            return Ok(1);
        }
        anyhow::ensure!(
            text.contains("<table class=\"events"),
            "{}: no table",
            self.path
        );
        // Rows shown: one <time> each.
        Ok(text.matches("<time datetime=").count() as u64)
    }
}

/// The number of records in the tenant's log, from its latest checkpoint.
async fn log_size(conn: &mut Conn, key: &str) -> anyhow::Result<u64> {
    let auth = format!("Bearer {key}");
    let (status, _, body) = conn
        .exchange(
            Method::GET,
            "/api/v1/log/checkpoint",
            &[("authorization", &auth)],
            None,
        )
        .await?;
    anyhow::ensure!(status.is_success(), "checkpoint: {status}");
    String::from_utf8_lossy(&body)
        .lines()
        .nth(1)
        .and_then(|line| line.parse().ok())
        .context("a checkpoint without a size")
}

/// The Activity phases: sign in with `admin_key` (a tenant admin's), then one phase per
/// page kind on `workload.activity_connections` connections.
pub(crate) async fn phases(
    addr: SocketAddr,
    admin_key: &str,
    workload: &Workload,
    results: &mut Vec<PhaseResult>,
) -> anyhow::Result<()> {
    let mut conn = Conn::open(addr).await?;
    let cookie = sign_in(&mut conn, admin_key).await?;
    let size = log_size(&mut conn, admin_key).await?;
    for kind in PageKind::ALL {
        let server = Rc::new(RefCell::new(Histogram::<u64>::new_with_bounds(
            1,
            120_000_000,
            3,
        )?));
        let mut workers = Vec::new();
        for _ in 0..workload.activity_connections {
            workers.push(PageWorker {
                conn: Conn::open(addr).await?,
                cookie: cookie.clone(),
                kind,
                size,
                path: String::new(),
                server: server.clone(),
            });
        }
        let workers = load::warm_up(workers, workload.warmup_secs).await?;
        server.borrow_mut().reset();
        let mut result = load::run_phase(
            "veritrail",
            kind.key(),
            kind.name(),
            workers,
            workload.activity_bounds(),
            workload.server_pid,
        )
        .await?;
        let server = server.borrow();
        let ms = |quantile: f64| server.value_at_quantile(quantile) as f64 / 1000.0;
        result.server_ms = Some([ms(0.50), ms(0.95), ms(0.99), server.max() as f64 / 1000.0]);
        result.note = format!(
            "{:.1} rows/page; server time p50 / p95 / p99 / max {:.2} / {:.2} / {:.2} / {:.2} ms",
            result.events as f64 / result.requests.max(1) as f64,
            ms(0.50),
            ms(0.95),
            ms(0.99),
            server.max() as f64 / 1000.0,
        );
        finish(workload.out.as_deref(), results, result)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_valid_and_vary() {
        for kind in PageKind::ALL {
            let paths: std::collections::BTreeSet<String> =
                (0..200).map(|i| kind.path(i, 1000)).collect();
            for path in &paths {
                assert!(path.starts_with("/activity"), "{path}");
                assert!(!path.contains(' '), "{path}");
            }
            let least = match kind {
                PageKind::First | PageKind::Outcome => 1,
                // One page per family of events.
                PageKind::Category => synth::FAMILIES.len(),
                // One page per type of event.
                PageKind::Type => synth::TYPES.iter().map(|types| types.len()).sum(),
                _ => 100,
            };
            assert!(paths.len() >= least, "{kind:?}: {} paths", paths.len());
            if least == 1 {
                assert_eq!(paths.len(), 1, "{kind:?}");
            }
        }
        let range = PageKind::Range.path(7, 1000);
        assert!(
            range.contains("from=2026-") && range.contains("&to=2026-"),
            "{range}"
        );
    }

    #[test]
    fn server_timing_is_read() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("server-timing", "app;dur=12.345".parse().expect("a header"));
        assert_eq!(server_micros(&headers), Some(12_345));
        headers.insert("server-timing", "db;dur=1".parse().expect("a header"));
        assert_eq!(server_micros(&headers), None);
    }
}
