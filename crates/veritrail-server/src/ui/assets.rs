//! The embedded assets (styles, scripts, icon), served with an `ETag` of their bytes.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::session::digest;
use crate::control::hex;

pub(super) static CSS: Asset = Asset::new(
    "text/css; charset=utf-8",
    include_str!("../../assets/app.css"),
);

/// The in-browser check of a record's proof and checkpoint.
pub(super) static VERIFY_JS: Asset = Asset::new(JS, include_str!("../../assets/verify.js"));

/// Local times, live mode, the record drawer and loading states of the Activity page.
pub(super) static ACTIVITY_JS: Asset = Asset::new(JS, include_str!("../../assets/activity.js"));

pub(super) const JS: &str = "text/javascript; charset=utf-8";

/// The pages' icon.
pub(super) static ICON: Asset = Asset::new("image/svg+xml", include_str!("../../assets/icon.svg"));

/// An embedded asset. Browsers keep it but ask again each time (`no-cache`) with its
/// `ETag`, a hash of its bytes, and get a 304 while it is unchanged: after an upgrade,
/// pages never run an older script than their own.
pub(super) struct Asset {
    pub(super) content_type: &'static str,
    pub(super) body: &'static str,
    pub(super) etag: std::sync::OnceLock<String>,
}

impl Asset {
    pub(super) const fn new(content_type: &'static str, body: &'static str) -> Self {
        Self {
            content_type,
            body,
            etag: std::sync::OnceLock::new(),
        }
    }

    pub(super) fn serve(&self, headers: &HeaderMap) -> Response {
        let etag = self
            .etag
            .get_or_init(|| format!("\"{}\"", &hex(&digest(self.body))[..16]));
        // `*`, or the tag, also as a weak one (as compressing proxies hand it on).
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .map(str::trim)
                    .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag.as_str())
            });
        let status = if fresh {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        };
        (
            status,
            [
                (header::CONTENT_TYPE, self.content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::ETAG, etag.as_str()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            if fresh { "" } else { self.body },
        )
            .into_response()
    }
}
