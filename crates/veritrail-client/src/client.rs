//! [`Client`]: one async method per route of the API, with authentication, error mapping and
//! retries.
//!
//! Retries follow one rule: a request is sent again only when doing so cannot store
//! anything twice. Reads are always safe to repeat. An ingest is safe when every event
//! carries an `id`, because the server stores an id at most once and answers a repeat with
//! the original receipt (`duplicate: true`). An ingest with an event without an id is
//! retried only when the server certainly did not act on it (see [`Client::send`]).

use std::fmt;
use std::io::Write;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use veritrail_api::{
    BundleParams, CatalogBody, CatalogChanged, CatalogSettingsBody, CategoryList,
    ConsistencyProofBody, CountParams, CountResponse, CreateKey, CreateTenant, ErasureBody,
    ErasureInput, ErrorBody, EventInput, HoldBody, HoldInput, HoldList, InclusionProofBody,
    IngestParams, IngestReply, IngestResponse, IntegrityBody, KeyBody, KeyCreated, KeyList,
    LogKeyBody, RecordResponse, RetentionBody, RetentionPolicy, RetentionRun, Role, SearchParams,
    SearchResponse, SharedCatalogList, TenantBody, TenantCreated, TenantList, WebhookAttempt,
    WebhookAttemptList, WebhookAttemptParams, WebhookBody, WebhookCreated, WebhookInput,
    WebhookList, WebhookPatch, WebhookRedeliverInput, WebhookRedeliverQueued, WebhookRotateInput,
    WebhookRotated, WhoAmI, paths,
};

use crate::error::ClientError;
use crate::tail::{Tail, TailStart};

/// Most events one `POST /api/v1/events` may carry (the server's limit).
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// Largest request body the server accepts for an ingest (5 MiB).
pub const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;

/// How long a request may take by default, connection to last byte; exports are exempt
/// (they stream for as long as the log is long).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How [`Client`] retries requests that failed for a reason that may pass.
///
/// Waits grow as `initial_backoff * 2^n` up to `max_backoff`, each with random jitter
/// between half and all of it; a `Retry-After` from the server replaces the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the error goes to the caller.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    #[must_use]
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (0 for the first), with jitter.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let mut byte = [0u8; 1];
        // Jitter only spreads clients out; without randomness the full wait is still right.
        let jitter = if getrandom::fill(&mut byte).is_ok() {
            f64::from(byte[0]) / 255.0
        } else {
            1.0
        };
        full.mul_f64(0.5 + jitter / 2.0)
    }
}

/// Settings of a [`Client`] beyond its URL and key.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// How long the client waits for the server to send more of a response before it
    /// gives up on the attempt (a stalled connection); there is no limit on a whole
    /// response, so a long export is not cut.
    pub timeout: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            user_agent: format!("veritrail-client/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// When `POST /api/v1/events` replies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Wait {
    /// Once the events are durable (the server's default).
    #[default]
    Durable,
    /// Once search also finds them.
    Searchable,
}

/// Options of an ingest ([`Client::send`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOptions {
    /// When the server replies.
    pub wait: Wait,
    /// Ask for each receipt's inclusion proof in the returned checkpoint.
    pub proof: bool,
}

impl IngestOptions {
    pub(crate) fn params(self) -> IngestParams {
        IngestParams {
            wait: match self.wait {
                Wait::Durable => None,
                Wait::Searchable => Some("searchable".to_owned()),
            },
            proof: self.proof.then(|| "true".to_owned()),
        }
    }
}

/// The record an inclusion proof is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafRef {
    /// By its position in the log.
    Seq(u64),
    /// By the event's client-chosen id.
    Id(String),
}

/// Whose keys a key operation acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    /// The tenant of the key the client presents (`/api/v1/keys`).
    Own,
    /// A named tenant; only the server-admin key may do this
    /// (`/api/v1/tenants/{tenant}/keys`).
    Tenant(String),
}

/// Which failures of a request may be retried; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryMode {
    /// Repeating the request has no further effect: retry transport errors, 429, 502, 503
    /// and 504.
    Idempotent,
    /// Repeating could store events twice: retry only failures where the server certainly
    /// did not act, i.e. a connection that was never established and a 429 (the rate limit
    /// is checked before anything is read). A timeout, a cut connection or a 503 may come
    /// after the events were stored, so they go to the caller.
    UnactedOnly,
}

/// A typed client of one veritrail server, authenticated by one API key.
///
/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    /// The base URL without a trailing slash; API paths are appended to it, so a server
    /// behind a proxy under a path prefix works.
    base: String,
    auth: HeaderValue,
    retry: RetryPolicy,
    /// The tenant a service key acts on ([`Client::for_tenant`]).
    pub(crate) tenant: Option<String>,
}

impl fmt::Debug for Client {
    // Never the key: Debug output ends up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("retry", &self.retry)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base_url` (`http://` or `https://`, optionally with a path
    /// prefix) presenting `key` as `Authorization: Bearer <key>`.
    ///
    /// HTTPS uses rustls with the `ring` provider and the platform's trusted roots. If the
    /// process has no default rustls provider yet, this installs `ring` as the default.
    ///
    /// # Errors
    ///
    /// [`ClientError::Config`] for a URL that is not absolute http(s), a key that cannot be
    /// a header value, or a TLS set-up that fails.
    pub fn new(base_url: &str, key: &str) -> Result<Self, ClientError> {
        Self::with_options(base_url, key, &ClientOptions::default())
    }

    /// [`Client::new`] with explicit options.
    ///
    /// # Errors
    ///
    /// As [`Client::new`].
    pub fn with_options(
        base_url: &str,
        key: &str,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let url = Url::parse(base_url)
            .map_err(|err| ClientError::Config(format!("base URL {base_url:?}: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::Config(format!(
                "base URL {base_url:?} must start with http:// or https://"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ClientError::Config(format!(
                "base URL {base_url:?} must not have a query or fragment"
            )));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", key.trim())).map_err(|_| {
            ClientError::Config("the API key contains characters a header cannot carry".into())
        })?;
        auth.set_sensitive(true);
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Fails only if another thread installed one meanwhile, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(options.timeout)
            .build()
            .map_err(|err| ClientError::Config(format!("cannot set up HTTP: {err}")))?;
        Ok(Self {
            http,
            base: url.as_str().trim_end_matches('/').to_owned(),
            auth,
            retry: options.retry,
            tenant: None,
        })
    }

    /// The base URL, without a trailing slash.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends events (`POST /api/v1/events`; for a client [`Client::for_tenant`], `POST
    /// /api/v1/tenants/{tenant}/events`) and returns their receipts, in order, once the
    /// server has stored them.
    ///
    /// Retries transport errors, 429 (waiting `Retry-After`), 502, 503 and 504 with
    /// bounded exponential backoff when **every event has an `id`**: the server stores an id
    /// once and answers a repeat with the original receipt, so a retry cannot duplicate.
    /// When some event has no id, a failure after the request was sent is ambiguous (the
    /// server may have stored the events before the connection broke, or the ledger may
    /// have persisted a batch whose commit reported an error), and a retry could store
    /// them twice; so only a connection that was never made and a 429 are retried, and
    /// anything else is returned. [`crate::Batcher`] gives every event an id to avoid this.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRequest`] for no events or more than
    /// [`MAX_EVENTS_PER_REQUEST`]; otherwise as the request ends. An `invalid_events` error
    /// lists each bad event by index in `events`.
    pub async fn send(
        &self,
        events: &[EventInput],
        options: IngestOptions,
    ) -> Result<IngestResponse, ClientError> {
        match self.send_events(events, options).await? {
            IngestReply::Tenant(reply) => Ok(reply),
            IngestReply::Mixed(_) => Err(ClientError::InvalidRequest(
                "the events named their tenants and went to several logs: use send_mixed for a service key's mixed batch (or for_tenant)".into(),
            )),
        }
    }

    /// [`Client::send`]'s checks and request, whatever the reply: one tenant's, or a mixed
    /// batch's.
    pub(crate) async fn send_events(
        &self,
        events: &[EventInput],
        options: IngestOptions,
    ) -> Result<IngestReply, ClientError> {
        if events.is_empty() {
            return Err(ClientError::InvalidRequest("no events to send".into()));
        }
        if events.len() > MAX_EVENTS_PER_REQUEST {
            return Err(ClientError::InvalidRequest(format!(
                "{} events in one request; the limit is {MAX_EVENTS_PER_REQUEST}",
                events.len()
            )));
        }
        let body = serde_json::to_vec(events).map_err(|err| {
            ClientError::InvalidRequest(format!("events do not serialize: {err}"))
        })?;
        let all_have_ids = events.iter().all(|event| event.id.is_some());
        self.send_json_array(body, all_have_ids, options).await
    }

    /// Sends an already serialized JSON array of events: to one tenant's log, or (events
    /// naming their tenants, with a service key) to each one's.
    pub(crate) async fn send_json_array(
        &self,
        body: Vec<u8>,
        all_have_ids: bool,
        options: IngestOptions,
    ) -> Result<IngestReply, ClientError> {
        let mode = if all_have_ids {
            RetryMode::Idempotent
        } else {
            RetryMode::UnactedOnly
        };
        let path = self.tenant_path(paths::EVENTS, paths::TENANT_EVENTS);
        let url = self.url(&path);
        let params = options.params();
        let response = self
            .execute(mode, || {
                self.http
                    .post(&url)
                    .query(&params)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        decode(response, &format!("POST {path}")).await
    }

    /// One page of a search (`GET /api/v1/events`).
    ///
    /// # Errors
    ///
    /// As the request ends; a bad filter is an `invalid_parameter` [`ClientError::Api`].
    pub async fn search(&self, params: &SearchParams) -> Result<SearchResponse, ClientError> {
        self.get_query(paths::EVENTS, params).await
    }

    /// Every page of a search, following `next_cursor`; `params.cursor` is where to start.
    #[must_use]
    pub fn search_all(&self, params: SearchParams) -> Pager {
        Pager {
            client: self.clone(),
            params,
            done: false,
            buffered: std::collections::VecDeque::new(),
        }
    }

    /// Counts, optionally grouped or as a histogram (`GET /api/v1/events/count`).
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn count(&self, params: &CountParams) -> Result<CountResponse, ClientError> {
        self.get_query(paths::EVENTS_COUNT, params).await
    }

    /// One record by its seq (`GET /api/v1/events/{seq}`).
    ///
    /// # Errors
    ///
    /// A `not_found` [`ClientError::Api`] past the end of the log; otherwise as the request
    /// ends.
    pub async fn record(&self, seq: u64) -> Result<RecordResponse, ClientError> {
        let path = fill(paths::EVENT_BY_SEQ, &[("seq", &seq.to_string())]);
        self.get_json(&path, &[]).await
    }

    /// One record by its seq, with its inclusion proof in the latest checkpoint.
    ///
    /// # Errors
    ///
    /// As [`Client::record`].
    pub async fn record_with_proof(&self, seq: u64) -> Result<RecordResponse, ClientError> {
        let path = fill(paths::EVENT_BY_SEQ, &[("seq", &seq.to_string())]);
        self.get_json(&path, &[("proof", "true".to_owned())]).await
    }

    /// The latest signed checkpoint of the caller's log, a C2SP signed note.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn checkpoint(&self) -> Result<String, ClientError> {
        let url = self.url(paths::LOG_CHECKPOINT);
        let response = self
            .execute(RetryMode::Idempotent, || self.http.get(&url))
            .await?;
        response.text().await.map_err(ClientError::Transport)
    }

    /// The verifier key of the deployment and the origin of the caller's log.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn log_key(&self) -> Result<LogKeyBody, ClientError> {
        self.get_json(paths::LOG_KEY, &[]).await
    }

    /// How the server's scrubber last found the caller's stored log.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn integrity(&self) -> Result<IntegrityBody, ClientError> {
        self.get_json(paths::LOG_INTEGRITY, &[]).await
    }

    /// The inclusion proof of a record in the tree of `tree_size` records (the latest
    /// checkpoint's when `None`).
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn inclusion_proof(
        &self,
        leaf: &LeafRef,
        tree_size: Option<u64>,
    ) -> Result<InclusionProofBody, ClientError> {
        let mut query = vec![match leaf {
            LeafRef::Seq(seq) => ("seq", seq.to_string()),
            LeafRef::Id(id) => ("id", id.clone()),
        }];
        if let Some(tree_size) = tree_size {
            query.push(("tree_size", tree_size.to_string()));
        }
        self.get_json(paths::LOG_INCLUSION, &query).await
    }

    /// The consistency proof from the tree of `from` records to the tree of `to`.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<ConsistencyProofBody, ClientError> {
        let query = [("from", from.to_string()), ("to", to.to_string())];
        self.get_json(paths::LOG_CONSISTENCY, &query).await
    }

    /// Downloads the export bundle of the caller's log into `out`, chunk by chunk (never
    /// the whole body in memory), and returns the bytes written. Check it with
    /// [`crate::export::verify_export`].
    ///
    /// `out` is written from the async task; give a buffered file or similar, not
    /// something that blocks for long. [`Client::export_async`] takes an `AsyncWrite`.
    ///
    /// # Errors
    ///
    /// As the request ends, or [`ClientError::Write`]. On an error `out` may hold part of
    /// the bundle.
    pub async fn export(&self, out: &mut impl Write) -> Result<u64, ClientError> {
        self.export_bundle(&BundleParams::default(), out).await
    }

    /// [`Client::export`] of the records matching `params`' filters (all of them when it has
    /// none): a filtered bundle holds each matching record with its inclusion proof.
    ///
    /// # Errors
    ///
    /// As [`Client::export`]; a bad filter is an `invalid_parameter` [`ClientError::Api`].
    pub async fn export_bundle(
        &self,
        params: &BundleParams,
        out: &mut impl Write,
    ) -> Result<u64, ClientError> {
        let mut response = self.start_export(params).await?;
        let mut n_bytes = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(ClientError::Transport)? {
            out.write_all(&chunk).map_err(ClientError::Write)?;
            n_bytes += chunk.len() as u64;
        }
        out.flush().map_err(ClientError::Write)?;
        Ok(n_bytes)
    }

    /// [`Client::export`] into an [`AsyncWrite`].
    ///
    /// # Errors
    ///
    /// As [`Client::export`].
    pub async fn export_async<W: AsyncWrite + Unpin>(
        &self,
        out: &mut W,
    ) -> Result<u64, ClientError> {
        let mut response = self.start_export(&BundleParams::default()).await?;
        let mut n_bytes = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(ClientError::Transport)? {
            out.write_all(&chunk).await.map_err(ClientError::Write)?;
            n_bytes += chunk.len() as u64;
        }
        out.flush().await.map_err(ClientError::Write)?;
        Ok(n_bytes)
    }

    async fn start_export(&self, params: &BundleParams) -> Result<Response, ClientError> {
        let url = self.url(paths::LOG_EXPORT);
        // No overall timeout: a large log takes as long as it takes. The read timeout
        // still catches a stalled connection.
        self.execute(RetryMode::Idempotent, || self.http.get(&url).query(params))
            .await
    }

    /// Who the presented key is.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn me(&self) -> Result<WhoAmI, ClientError> {
        self.get_json(paths::ME, &[]).await
    }

    /// Creates a tenant and its first owner key (server admin only).
    ///
    /// Not retried after it may have reached the server: a repeat after a lost reply
    /// would fail with `conflict` and the owner key's secret would be lost.
    ///
    /// # Errors
    ///
    /// `conflict` when the tenant exists; otherwise as the request ends.
    pub async fn create_tenant(
        &self,
        id: &str,
        name: Option<&str>,
    ) -> Result<TenantCreated, ClientError> {
        let body = CreateTenant {
            id: id.to_owned(),
            name: name.map(str::to_owned),
        };
        self.send_body(Method::POST, paths::TENANTS, &body).await
    }

    /// Every tenant (server admin only).
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn list_tenants(&self) -> Result<TenantList, ClientError> {
        self.get_json(paths::TENANTS, &[]).await
    }

    /// One tenant (server admin only).
    ///
    /// # Errors
    ///
    /// `not_found`; otherwise as the request ends.
    pub async fn tenant(&self, id: &str) -> Result<TenantBody, ClientError> {
        self.get_json(&fill(paths::TENANT, &[("tenant", id)]), &[])
            .await
    }

    /// The keys of a tenant, revoked ones included.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn list_keys(&self, scope: &KeyScope) -> Result<KeyList, ClientError> {
        self.get_json(&keys_path(scope), &[]).await
    }

    /// Creates a key; the reply holds its secret, shown only this once. Not retried once
    /// it may have reached the server (a repeat would create a second key).
    ///
    /// # Errors
    ///
    /// `forbidden` when the caller's role may not create a key of `role`; otherwise as
    /// the request ends.
    pub async fn create_key(
        &self,
        scope: &KeyScope,
        role: Role,
        name: Option<&str>,
    ) -> Result<KeyCreated, ClientError> {
        let body = CreateKey {
            role,
            name: name.map(str::to_owned),
        };
        self.send_body(Method::POST, &keys_path(scope), &body).await
    }

    /// Revokes a key and returns it with `revoked_at` set.
    ///
    /// # Errors
    ///
    /// `not_found`, `forbidden`; otherwise as the request ends.
    pub async fn revoke_key(&self, scope: &KeyScope, key_id: &str) -> Result<KeyBody, ClientError> {
        let path = match scope {
            KeyScope::Own => fill(paths::KEY, &[("key_id", key_id)]),
            KeyScope::Tenant(tenant) => fill(
                paths::TENANT_KEY,
                &[("tenant", tenant.as_str()), ("key_id", key_id)],
            ),
        };
        let url = self.url(&path);
        // Revoking twice revokes once.
        let response = self
            .execute(RetryMode::Idempotent, || self.http.delete(&url))
            .await?;
        decode(response, &format!("DELETE {path}")).await
    }

    /// The tenant's own catalog and its settings (`version` 0: none yet); `version` picks
    /// a stored version. For a client [`Client::for_tenant`], the named tenant's.
    ///
    /// # Errors
    ///
    /// `not_found` for a version that does not exist; otherwise as the request ends.
    pub async fn catalog(&self, version: Option<u64>) -> Result<CatalogBody, ClientError> {
        let query: Vec<(&str, String)> = version
            .map(|version| ("version", version.to_string()))
            .into_iter()
            .collect();
        let path = self.tenant_path(paths::CATALOG, paths::TENANT_CATALOG);
        self.get_json(&path, &query).await
    }

    /// The tenant's own catalog document as YAML.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn catalog_yaml(&self, version: Option<u64>) -> Result<String, ClientError> {
        let mut query = vec![("format", "yaml".to_owned())];
        if let Some(version) = version {
            query.push(("version", version.to_string()));
        }
        let url = self.url(paths::CATALOG);
        let response = self
            .execute(RetryMode::Idempotent, || self.http.get(&url).query(&query))
            .await?;
        response.text().await.map_err(ClientError::Transport)
    }

    /// Replaces the tenant's own catalog with `document` (`veritrail-catalog/v1`, YAML or
    /// JSON as `content_type` says); the reply has the new version. Replacing is
    /// idempotent in effect, so it is retried like a read.
    ///
    /// # Errors
    ///
    /// `invalid_catalog` with every problem in the error's details; otherwise as the
    /// request ends.
    pub async fn put_catalog(
        &self,
        document: Vec<u8>,
        content_type: &str,
    ) -> Result<CatalogChanged, ClientError> {
        let url = self.url(paths::CATALOG);
        let response = self
            .execute(RetryMode::Idempotent, || {
                self.http
                    .put(&url)
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(document.clone())
            })
            .await?;
        decode(response, &format!("PUT {}", paths::CATALOG)).await
    }

    /// The tenant's catalog policy and adopted shared catalogs.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn catalog_settings(&self) -> Result<CatalogSettingsBody, ClientError> {
        self.get_json(paths::CATALOG_SETTINGS, &[]).await
    }

    /// Sets the tenant's catalog policy and adopted shared catalogs.
    ///
    /// # Errors
    ///
    /// `invalid_catalog` for an unknown policy or shared catalog; otherwise as the request
    /// ends.
    pub async fn put_catalog_settings(
        &self,
        settings: &CatalogSettingsBody,
    ) -> Result<CatalogSettingsBody, ClientError> {
        self.send_body(Method::PUT, paths::CATALOG_SETTINGS, settings)
            .await
    }

    /// Categories with event counts and their types.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn catalog_categories(&self) -> Result<CategoryList, ClientError> {
        self.get_json(paths::CATALOG_CATEGORIES, &[]).await
    }

    /// The shared catalogs a tenant can adopt.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn shared_catalogs(&self) -> Result<SharedCatalogList, ClientError> {
        self.get_json(paths::CATALOG_SHARED, &[]).await
    }

    /// Creates a webhook subscription; the reply holds its signing secret, shown only this
    /// once. Not retried once it may have reached the server (a repeat would create a
    /// second subscription).
    ///
    /// # Errors
    ///
    /// `invalid_webhook` naming the bad field, `forbidden_target` for a URL deliveries may
    /// not go to (loopback, private networks, unless the server allows them), `forbidden`
    /// for a key that is not owner, super_admin or admin; otherwise as the request ends.
    pub async fn create_webhook(
        &self,
        input: &WebhookInput,
    ) -> Result<WebhookCreated, ClientError> {
        self.send_body(Method::POST, paths::WEBHOOKS, input).await
    }

    /// The tenant's webhook subscriptions.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn webhooks(&self) -> Result<WebhookList, ClientError> {
        self.get_json(paths::WEBHOOKS, &[]).await
    }

    /// One webhook subscription.
    ///
    /// # Errors
    ///
    /// `not_found`; otherwise as the request ends.
    pub async fn webhook(&self, id: &str) -> Result<WebhookBody, ClientError> {
        self.get_json(&webhook_path(paths::WEBHOOK, id), &[]).await
    }

    /// Changes the fields of a subscription that `patch` sets. Setting fields is
    /// idempotent in effect, so it is retried like a read.
    ///
    /// # Errors
    ///
    /// `not_found`, `invalid_webhook`, `forbidden_target`; otherwise as the request ends.
    pub async fn update_webhook(
        &self,
        id: &str,
        patch: &WebhookPatch,
    ) -> Result<WebhookBody, ClientError> {
        let path = webhook_path(paths::WEBHOOK, id);
        self.send_json(RetryMode::Idempotent, Method::PATCH, &path, patch)
            .await
    }

    /// Deletes a subscription. Not retried once it may have reached the server: a repeat
    /// after a lost reply would answer `not_found`.
    ///
    /// # Errors
    ///
    /// `not_found`; otherwise as the request ends.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), ClientError> {
        let url = self.url(&webhook_path(paths::WEBHOOK, id));
        self.execute(RetryMode::UnactedOnly, || self.http.delete(&url))
            .await?;
        Ok(())
    }

    /// Replaces a subscription's signing secret; the previous one keeps signing for
    /// `overlap_seconds` (default one day). The reply holds the new secret, shown only this
    /// once; not retried once it may have reached the server.
    ///
    /// # Errors
    ///
    /// `not_found`, `invalid_webhook` (a bad secret or overlap); otherwise as the request
    /// ends.
    pub async fn rotate_webhook_secret(
        &self,
        id: &str,
        input: &WebhookRotateInput,
    ) -> Result<WebhookRotated, ClientError> {
        self.send_body(
            Method::POST,
            &webhook_path(paths::WEBHOOK_ROTATE, id),
            input,
        )
        .await
    }

    /// A page of a subscription's delivery attempts, newest first; pass `next_before` as
    /// `params.before` for the next (older) page.
    ///
    /// # Errors
    ///
    /// `not_found`, `invalid_parameter`; otherwise as the request ends.
    pub async fn webhook_attempts(
        &self,
        id: &str,
        params: &WebhookAttemptParams,
    ) -> Result<WebhookAttemptList, ClientError> {
        self.get_query(&webhook_path(paths::WEBHOOK_ATTEMPTS, id), params)
            .await
    }

    /// Queues one message (`message_id`) or the messages of the events
    /// `from_seq..=to_seq` for delivery again. Not retried once it may have reached the
    /// server (a repeat would queue them twice).
    ///
    /// # Errors
    ///
    /// `not_found`, `invalid_webhook`; otherwise as the request ends.
    pub async fn redeliver_webhook(
        &self,
        id: &str,
        input: &WebhookRedeliverInput,
    ) -> Result<WebhookRedeliverQueued, ClientError> {
        self.send_body(
            Method::POST,
            &webhook_path(paths::WEBHOOK_REDELIVER, id),
            input,
        )
        .await
    }

    /// Sends a test message to the subscription's URL now and returns the attempt: whether
    /// it was delivered, the receiver's status, the latency, the error. Not retried once
    /// it may have reached the server.
    ///
    /// # Errors
    ///
    /// `not_found`; otherwise as the request ends. A receiver that fails is not an error:
    /// see the attempt's `delivered` and `error`.
    pub async fn ping_webhook(&self, id: &str) -> Result<WebhookAttempt, ClientError> {
        self.post_empty(&webhook_path(paths::WEBHOOK_PING, id))
            .await
    }

    /// The retention policy in force, where it comes from, and the last run.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn retention(&self) -> Result<RetentionBody, ClientError> {
        self.get_json(paths::RETENTION, &[]).await
    }

    /// Sets the tenant's own retention policy (owner and super_admin keys).
    ///
    /// # Errors
    ///
    /// `invalid_parameter` for a limit out of range, `forbidden` for another role;
    /// otherwise as the request ends.
    pub async fn set_retention(
        &self,
        policy: &RetentionPolicy,
    ) -> Result<RetentionBody, ClientError> {
        self.send_body(Method::PUT, paths::RETENTION, policy).await
    }

    /// Drops the tenant's own retention policy: the server's default applies again.
    ///
    /// # Errors
    ///
    /// `forbidden` for a key that is not owner or super_admin; otherwise as the request
    /// ends.
    pub async fn clear_retention(&self) -> Result<RetentionBody, ClientError> {
        let url = self.url(paths::RETENTION);
        let response = self
            .execute(RetryMode::UnactedOnly, || self.http.delete(&url))
            .await?;
        decode(response, &format!("DELETE {}", paths::RETENTION)).await
    }

    /// Applies the retention policy now.
    ///
    /// # Errors
    ///
    /// `forbidden` for a key that is not owner or super_admin; otherwise as the request
    /// ends.
    pub async fn run_retention(&self) -> Result<RetentionRun, ClientError> {
        self.post_empty(paths::RETENTION_RUN).await
    }

    /// Erases the records about a subject, or given seqs (or, with `dry_run`, lists them).
    ///
    /// # Errors
    ///
    /// `held` when a legal hold covers one of them, `invalid_parameter` without a reason
    /// or subject; otherwise as the request ends.
    pub async fn erase(&self, input: &ErasureInput) -> Result<ErasureBody, ClientError> {
        self.send_body(Method::POST, paths::ERASURES, input).await
    }

    /// The legal holds in force.
    ///
    /// # Errors
    ///
    /// As the request ends.
    pub async fn holds(&self) -> Result<HoldList, ClientError> {
        self.get_json(paths::HOLDS, &[]).await
    }

    /// Places a legal hold.
    ///
    /// # Errors
    ///
    /// `invalid_parameter` without a reason, `forbidden` for a key that is not owner or
    /// super_admin; otherwise as the request ends.
    pub async fn create_hold(&self, input: &HoldInput) -> Result<HoldBody, ClientError> {
        self.send_body(Method::POST, paths::HOLDS, input).await
    }

    /// Releases a legal hold.
    ///
    /// # Errors
    ///
    /// `not_found`; otherwise as the request ends.
    pub async fn release_hold(&self, hold_id: &str) -> Result<HoldBody, ClientError> {
        let path = fill(paths::HOLD, &[("hold_id", hold_id)]);
        let url = self.url(&path);
        let response = self
            .execute(RetryMode::UnactedOnly, || self.http.delete(&url))
            .await?;
        decode(response, &format!("DELETE {path}")).await
    }

    /// `POST` without a body, not retried once it may have reached the server.
    async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let response = self
            .execute(RetryMode::UnactedOnly, || self.http.post(&url))
            .await?;
        decode(response, &format!("POST {path}")).await
    }

    /// The live tail (`GET /api/v1/events/stream`): the records matching `params`' filters
    /// as they become searchable, in seq order, each once; read them with [`Tail::next`].
    /// `params`' `cursor`, `order` and `limit` are ignored (a stream has none).
    ///
    /// `last_event_id` is the seq to continue after (like [`Tail::last_seq`] of an earlier
    /// tail); `None` starts with the records appended from now on. Nothing is sent until
    /// the first [`Tail::next`].
    ///
    /// The connection is kept open by the server's heartbeats every 15 s; a
    /// [`ClientOptions::timeout`] shorter than that makes the tail reconnect needlessly
    /// (it still misses nothing).
    #[must_use]
    pub fn tail(&self, params: SearchParams, last_event_id: Option<u64>) -> Tail {
        let start = last_event_id.map_or(TailStart::Now, TailStart::After);
        Tail::new(self.clone(), params, start)
    }

    /// [`Client::tail`] starting at the record of seq `first_seq` (0: the whole log, then
    /// the new records).
    #[must_use]
    pub fn tail_from(&self, params: SearchParams, first_seq: u64) -> Tail {
        Tail::new(self.clone(), params, TailStart::From(first_seq))
    }

    /// Opens the live tail after seq `after` (`Last-Event-ID`), retried like a read.
    pub(crate) async fn open_event_stream(
        &self,
        params: &SearchParams,
        after: Option<u64>,
    ) -> Result<Response, ClientError> {
        let url = self.url(paths::EVENTS_STREAM);
        let after = after.map(|seq| seq.to_string());
        self.execute(RetryMode::Idempotent, || {
            let request = self
                .http
                .get(&url)
                .query(params)
                .header(reqwest::header::ACCEPT, "text/event-stream");
            match &after {
                Some(after) => request.header("last-event-id", after.as_str()),
                None => request,
            }
        })
        .await
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    async fn get_query<Q: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let response = self
            .execute(RetryMode::Idempotent, || self.http.get(&url).query(query))
            .await?;
        decode(response, &format!("GET {path}")).await
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        self.get_query(path, &query).await
    }

    pub(crate) async fn send_body<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json(RetryMode::UnactedOnly, method, path, body)
            .await
    }

    pub(crate) async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        mode: RetryMode,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|err| {
            ClientError::InvalidRequest(format!("body does not serialize: {err}"))
        })?;
        let url = self.url(path);
        let response = self
            .execute(mode, || {
                self.http
                    .request(method.clone(), &url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        decode(response, &format!("{method} {path}")).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends the request `build` makes, again per `mode` and the retry policy, and returns
    /// the first 2xx response or the last error.
    pub(crate) async fn execute(
        &self,
        mode: RetryMode,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let mut attempt = 1u32;
        loop {
            let result = build()
                .header(AUTHORIZATION, self.auth.clone())
                .send()
                .await;
            let (error, wait) = match result {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let retryable = retryable_status(response.status(), mode);
                    let error = api_error(response).await;
                    let wait = match &error {
                        ClientError::Api {
                            retry_after: Some(after),
                            ..
                        } if retryable => (*after <= self.retry.max_retry_after).then_some(*after),
                        _ if retryable => Some(self.retry.backoff(attempt - 1)),
                        _ => None,
                    };
                    (error, wait)
                }
                Err(err) => {
                    let wait =
                        retryable_transport(&err, mode).then(|| self.retry.backoff(attempt - 1));
                    (ClientError::Transport(err), wait)
                }
            };
            match wait {
                Some(wait) if attempt < self.retry.max_attempts => {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return Err(error),
            }
        }
    }
}

/// A search that follows `next_cursor` across pages ([`Client::search_all`]).
#[derive(Debug)]
pub struct Pager {
    client: Client,
    /// The parameters of the next page (its `cursor` included).
    params: SearchParams,
    done: bool,
    /// Records of the current page not yet handed out by [`Pager::next_event`].
    buffered: std::collections::VecDeque<serde_json::Value>,
}

impl Pager {
    /// The next page, or `None` after the last one.
    ///
    /// # Errors
    ///
    /// As [`Client::search`]; the pager can be asked again, which repeats the failed page.
    pub async fn next_page(&mut self) -> Result<Option<SearchResponse>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let page = self.client.search(&self.params).await?;
        match &page.next_cursor {
            Some(cursor) => self.params.cursor = Some(cursor.clone()),
            None => self.done = true,
        }
        Ok(Some(page))
    }

    /// The next matching record, fetching pages as needed; `None` after the last.
    ///
    /// # Errors
    ///
    /// As [`Pager::next_page`].
    pub async fn next_event(&mut self) -> Result<Option<serde_json::Value>, ClientError> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Ok(Some(event));
            }
            match self.next_page().await? {
                Some(page) => self.buffered.extend(page.events),
                None => return Ok(None),
            }
        }
    }
}

/// A webhook route with its `{webhook_id}`.
fn webhook_path(template: &str, id: &str) -> String {
    fill(template, &[("webhook_id", id)])
}

fn keys_path(scope: &KeyScope) -> String {
    match scope {
        KeyScope::Own => paths::KEYS.to_owned(),
        KeyScope::Tenant(tenant) => fill(paths::TENANT_KEYS, &[("tenant", tenant.as_str())]),
    }
}

/// Replaces each `{name}` of a route template with its percent-encoded value.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |path, (name, value)| {
            path.replace(&format!("{{{name}}}"), &percent_encode_segment(value))
        })
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value stays one path
/// segment whatever it holds.
fn percent_encode_segment(value: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn retryable_status(status: StatusCode, mode: RetryMode) -> bool {
    match mode {
        RetryMode::Idempotent => matches!(status.as_u16(), 429 | 502 | 503 | 504),
        RetryMode::UnactedOnly => status == StatusCode::TOO_MANY_REQUESTS,
    }
}

fn retryable_transport(error: &reqwest::Error, mode: RetryMode) -> bool {
    match mode {
        RetryMode::Idempotent => error.is_connect() || error.is_timeout() || error.is_request(),
        RetryMode::UnactedOnly => error.is_connect(),
    }
}

/// Reads a 2xx body as JSON.
pub(crate) async fn decode<T: DeserializeOwned>(
    response: Response,
    what: &str,
) -> Result<T, ClientError> {
    let bytes = response.bytes().await.map_err(ClientError::Transport)?;
    serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
        what: what.to_owned(),
        source,
    })
}

/// Turns an error response into [`ClientError::Api`], whether or not it holds an
/// [`ErrorBody`].
async fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => return ClientError::Transport(err),
    };
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { error }) => ClientError::Api {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
            events: error.events,
            errors: error.errors.into(),
            request_id: error.request_id.or(request_id).map(String::into_boxed_str),
            retry_after,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.trim().chars().take(200).collect();
            let reason = status.canonical_reason().unwrap_or("error");
            let message = if text.is_empty() {
                format!("HTTP {} {reason}", status.as_u16())
            } else {
                format!("HTTP {} {reason}: {text}", status.as_u16())
            };
            ClientError::Api {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message,
                events: Vec::new(),
                errors: Box::default(),
                request_id: request_id.map(String::into_boxed_str),
                retry_after,
            }
        }
    }
}

/// `Retry-After` in seconds; the HTTP-date form is not used by veritrail and is ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_encodes_each_value_as_one_segment() {
        assert_eq!(
            fill(
                paths::TENANT_KEY,
                &[("tenant", "acme"), ("key_id", "key_1")]
            ),
            "/api/v1/tenants/acme/keys/key_1"
        );
        assert_eq!(
            fill(paths::TENANT, &[("tenant", "a/b c")]),
            "/api/v1/tenants/a%2Fb%20c"
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let policy = RetryPolicy::default();
        for retry in 0..40 {
            let wait = policy.backoff(retry);
            assert!(wait <= policy.max_backoff, "{retry}: {wait:?}");
            assert!(wait >= policy.initial_backoff / 2, "{retry}: {wait:?}");
        }
        assert!(policy.backoff(10) >= policy.max_backoff / 2);
    }

    #[test]
    fn base_url_keeps_its_prefix_and_refuses_other_schemes() {
        let client = Client::new("https://audit.example.com/veritrail/", "vt_x").expect("client");
        assert_eq!(
            client.url(paths::ME),
            "https://audit.example.com/veritrail/api/v1/me"
        );
        assert!(matches!(
            Client::new("ftp://example.com", "vt_x"),
            Err(ClientError::Config(_))
        ));
        assert!(format!("{client:?}").contains("audit.example.com"));
        assert!(!format!("{client:?}").contains("vt_x"));
    }
}
