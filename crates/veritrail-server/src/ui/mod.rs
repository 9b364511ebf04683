//! The web UI: server-rendered pages (askama templates, escaped by default) at `/` and
//! `/activity`, with every asset embedded in the binary and a Content-Security-Policy that
//! allows nothing from elsewhere.
//!
//! **Sessions.** A person signs in with an API key of their tenant; the key becomes a
//! session: a random 256-bit id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when
//! the request came over HTTPS through a proxy, `X-Forwarded-Proto: https`). The server
//! keeps, by the SHA-256 of the session id, the tenant, the role and the key's hash, never
//! the key; every request checks that the key is still active, so revoking it ends its
//! sessions. Sessions live in memory for 12 hours: a restart signs everyone out.
//!
//! **CSRF.** Every state change is a `POST` carrying a token: the sign-in form's token is
//! also in a cookie (double submit), the sign-out form's is the session's own; a request
//! without the matching token is refused (403) and changes nothing. `SameSite=Strict`
//! cookies already keep other sites' forms from carrying the session.
//!
//! **Who enters.** Owner, super_admin and admin keys (an Activity tab is an administrator's
//! view); viewer keys when the tenant admits them (`PUT /api/v1/activity/settings`, off by
//! default; turning it off ends their sessions). Publisher keys, and the server admin's, get
//! a page saying why not.
//!
//! # Layout
//!
//! - `session`: sign-in, cookies, CSRF, the [`Sessions`] store and the `Session` extractor.
//! - `page`: the security headers every page carries, and the problem pages.
//! - `activity`: the Activity page (filters, table, operations) and its live mode.
//! - `histogram`: the Activity page's histogram.
//! - `record`: a record with what the browser needs to check it.
//! - `embed`: the embedded view of a viewer token.
//! - `catalog`, `integrity`: the catalog and integrity pages.
//! - `assets`: the embedded styles, scripts and icon.

mod activity;
mod assets;
mod catalog;
mod embed;
mod histogram;
mod integrity;
mod page;
mod record;
mod session;

pub use activity::ActivityParams;
pub use session::Sessions;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Redirect;

use self::activity::{activity, live};
use self::assets::{ACTIVITY_JS, Asset, CSS, ICON, VERIFY_JS};
use self::catalog::catalog;
use self::embed::{embed, embed_record};
use self::integrity::integrity;
use self::record::record;
use self::session::{sign_in, sign_out};
use crate::AppState;
use crate::routes::Route;

/// The UI's routes, as a table (see [`crate::routes::Route`]): the pages, the forms, the
/// live stream, the embedded view and the assets.
pub fn table() -> Vec<Route> {
    use axum::http::Method as M;
    let mut routes = vec![
        Route::new(M::GET, "/", || async { Redirect::to("/activity") }),
        Route::new(M::GET, "/activity", activity),
        Route::new(M::POST, "/ui/sign-in", sign_in),
        Route::new(M::POST, "/ui/sign-out", sign_out),
        Route::new(M::GET, "/activity/events/{seq}", record),
        Route::new(M::GET, "/activity/catalog", catalog),
        Route::new(M::GET, "/embed", embed),
        Route::new(M::GET, "/embed/events/{seq}", embed_record),
        Route::new(M::GET, "/activity/stream", live),
        Route::new(M::GET, "/activity/integrity", integrity),
    ];
    // The assets, each served by its `Asset::serve`.
    let assets: [(&str, &'static Asset); 4] = [
        ("/ui/assets/app.css", &CSS),
        ("/ui/assets/icon.svg", &ICON),
        ("/ui/assets/verify.js", &VERIFY_JS),
        ("/ui/assets/activity.js", &ACTIVITY_JS),
    ];
    routes.extend(assets.into_iter().map(|(path, asset)| {
        Route::new(M::GET, path, move |headers: HeaderMap| async move {
            asset.serve(&headers)
        })
    }));
    routes
}

/// The UI's routes (merged into the app by [`crate::app`]).
pub fn router() -> Router<AppState> {
    Route::router(table())
}

/// `(method, path)` of every UI route, as [`table`] has them.
pub fn route_list() -> Vec<(axum::http::Method, &'static str)> {
    table()
        .into_iter()
        .map(|route| (route.method, route.path))
        .collect()
}
