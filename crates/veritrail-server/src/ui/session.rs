//! Sessions: sign-in with an API key, the session cookie and its CSRF token, sign-out, and
//! the [`Session`] extractor (the UI's [`crate::auth::Auth`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use veritrail_api::Role;
use veritrail_core::event::TenantId;

use super::page::{REFUSED, page, problem_page};
use crate::AppState;
use crate::control::{Principal, hex};

pub(super) const SESSION_COOKIE: &str = "vt_session";

pub(super) const SIGN_IN_COOKIE: &str = "vt_sign_in";

pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Sessions one key may have open at once (the memory of sign-ins stays bounded).
pub(super) const SESSIONS_PER_KEY: usize = 32;

/// Signed-in browsers.
#[derive(Debug, Default)]
pub struct Sessions {
    /// By SHA-256 of the session id.
    map: Mutex<HashMap<[u8; 32], SessionRow>>,
}

#[derive(Debug, Clone)]
pub(super) struct SessionRow {
    pub(super) tenant: TenantId,
    pub(super) role: Role,
    /// SHA-256 of the key it was opened with.
    pub(super) key_hash: [u8; 32],
    /// The token of this session's forms.
    pub(super) csrf: String,
    pub(super) expires: Instant,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], SessionRow>> {
        self.map.lock().expect("sessions lock poisoned")
    }

    /// A new session; returns its id (for the cookie). A key has at most
    /// [`SESSIONS_PER_KEY`] sessions: a new one ends its oldest.
    fn open(&self, tenant: TenantId, role: Role, key_hash: [u8; 32]) -> Option<String> {
        let id = random_token()?;
        let session = SessionRow {
            tenant,
            role,
            key_hash,
            csrf: random_token()?,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, session| session.expires > now);
        let mut of_key: Vec<([u8; 32], Instant)> = map
            .iter()
            .filter(|(_, other)| other.key_hash == key_hash)
            .map(|(id, other)| (*id, other.expires))
            .collect();
        if of_key.len() >= SESSIONS_PER_KEY {
            of_key.sort_by_key(|(_, expires)| *expires);
            for (oldest, _) in &of_key[..=of_key.len() - SESSIONS_PER_KEY] {
                map.remove(oldest);
            }
        }
        map.insert(digest(&id), session);
        Some(id)
    }

    fn get(&self, id: &str) -> Option<SessionRow> {
        let key = digest(id);
        let mut map = self.lock();
        match map.get(&key) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    fn close(&self, id: &str) {
        self.lock().remove(&digest(id));
    }
}

pub(super) fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

pub(super) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex(&bytes))
}

/// The value of cookie `name` in the request.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

pub(super) fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub(super) struct SignInPage<'a> {
    csrf: &'a str,
    problem: Option<&'a str>,
}

/// The sign-in page, with a fresh token in its form and in a cookie.
pub(super) fn sign_in_page(
    headers: &HeaderMap,
    status: StatusCode,
    problem: Option<&str>,
) -> Response {
    let Some(token) = random_token() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response();
    };
    let cookie = set_cookie(headers, SIGN_IN_COOKIE, &token, Some(3600));
    page(
        status,
        SignInPage {
            csrf: &token,
            problem,
        }
        .render(),
        &[cookie],
    )
}

/// The request's session: open, unexpired, its key still active (and, for a viewer key, its
/// tenant still admitting viewers). The UI's [`crate::auth::Auth`]: a page that needs one
/// takes a `Session`, and a request without one gets the sign-in page; `Option<Session>`
/// for the routes that answer otherwise.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// The session id (from the cookie).
    pub(super) id: String,
    pub(super) tenant: TenantId,
    pub(super) role: Role,
    /// The token of this session's forms.
    pub(super) csrf: String,
    /// SHA-256 of the key it was opened with.
    pub(super) key_hash: [u8; 32],
    pub(super) expires: Instant,
}

impl Session {
    fn of_request(parts: &Parts, state: &AppState) -> Option<Self> {
        let id = cookie(&parts.headers, SESSION_COOKIE)?;
        let row = open_session_by_id(state, id)?;
        Some(Self {
            id: id.to_owned(),
            tenant: row.tenant,
            role: row.role,
            csrf: row.csrf,
            key_hash: row.key_hash,
            expires: row.expires,
        })
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        Self::of_request(parts, state)
            .ok_or_else(|| sign_in_page(&parts.headers, StatusCode::OK, None))
    }
}

impl OptionalFromRequestParts<AppState> for Session {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Infallible> {
        Ok(Self::of_request(parts, state))
    }
}

/// Session `id`, if it is open, unexpired, its key still active and (for a viewer key) its
/// tenant still admitting viewers; else it is closed and `None`.
pub(super) fn open_session_by_id(state: &AppState, id: &str) -> Option<SessionRow> {
    let session = state.inner_sessions().get(id)?;
    match state.control().principal_by_hash(&session.key_hash) {
        Some(Principal::Tenant(key))
            if key.tenant == session.tenant
                && (key.role != Role::Viewer || viewers_admitted(state, &key.tenant)) =>
        {
            Some(session)
        }
        _ => {
            // The key was revoked: the session ends with it.
            state.inner_sessions().close(id);
            None
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    pub(super) key: String,
    #[serde(default)]
    pub(super) csrf: String,
}

pub(super) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return sign_in_page(
            &headers,
            StatusCode::BAD_REQUEST,
            Some("The form was not sent as a form; try again."),
        );
    };
    if form.csrf.is_empty() || cookie(&headers, SIGN_IN_COOKIE) != Some(form.csrf.as_str()) {
        return sign_in_page(
            &headers,
            StatusCode::FORBIDDEN,
            Some("This sign-in form has expired or did not come from this page; try again."),
        );
    }
    let key = form.key.trim();
    let refused = |reason: &str| {
        problem_page(
            StatusCode::FORBIDDEN,
            REFUSED,
            reason,
            Some(("/activity", "Sign in with another key")),
            false,
        )
    };
    let principal = state.control().authenticate(key);
    // Sign-ins count against the key's rate limit, as its API requests do.
    if let Some(principal) = &principal
        && let Err(err) = state.limiter().check(principal.id())
    {
        return err.into_response();
    }
    match principal {
        None => sign_in_page(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("That key is not recognised, or it was revoked."),
        ),
        Some(Principal::ServerAdmin) => refused(
            "The server-admin key manages tenants and keys and reads no events. Sign in with a key of a tenant.",
        ),
        Some(Principal::Service(_)) => refused(
            "A service key acts for many tenants through the API and reads no events here. Embed a tenant's Activity view with a viewer token it mints, or sign in with a key of a tenant.",
        ),
        Some(Principal::Tenant(tenant_key)) => match tenant_key.role {
            Role::Owner | Role::SuperAdmin | Role::Admin => {
                open_session(&state, &headers, &tenant_key.tenant, tenant_key.role, key)
            }
            Role::Viewer if viewers_admitted(&state, &tenant_key.tenant) => {
                open_session(&state, &headers, &tenant_key.tenant, tenant_key.role, key)
            }
            Role::Viewer => refused(
                "This tenant does not admit viewer keys to the Activity page (its owner can change that: PUT /api/v1/activity/settings). Owner, super admin and admin keys may enter.",
            ),
            Role::Publisher => refused(
                "A publisher key only sends events: it cannot read them. Sign in with an owner, super admin or admin key.",
            ),
        },
    }
}

/// Whether `tenant` admits viewer keys to the Activity page.
pub(super) fn viewers_admitted(state: &AppState, tenant: &TenantId) -> bool {
    state
        .control()
        .activity_settings(tenant)
        .is_ok_and(|settings| settings.admit_viewers)
}

/// A new session for `key`, and the redirect to the Activity page that sets its cookie.
pub(super) fn open_session(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &TenantId,
    role: Role,
    key: &str,
) -> Response {
    let Some(id) = state
        .inner_sessions()
        .open(tenant.clone(), role, digest(key))
    else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response();
    };
    let mut response = Redirect::to("/activity").into_response();
    let session_cookie = set_cookie(headers, SESSION_COOKIE, &id, None);
    let clear = set_cookie(headers, SIGN_IN_COOKIE, "", Some(0));
    for cookie in [session_cookie, clear] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
pub(super) struct SignOutForm {
    #[serde(default)]
    pub(super) csrf: String,
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Option<Session>,
    form: Result<Form<SignOutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let token = form.map(|Form(form)| form.csrf).unwrap_or_default();
    match session {
        Some(session) if !token.is_empty() && token == session.csrf => {
            state.inner_sessions().close(&session.id);
            // Its live stream ends too.
            state.control().access_changed();
            let mut response = Redirect::to("/activity").into_response();
            if let Ok(value) =
                HeaderValue::from_str(&set_cookie(&headers, SESSION_COOKIE, "", Some(0)))
            {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Some(_) => (
            StatusCode::FORBIDDEN,
            "this sign-out did not come from a page of this session; nothing changed",
        )
            .into_response(),
        None => Redirect::to("/activity").into_response(),
    }
}
