//! The one place tests start servers: a real `Server` on a loopback port in this process,
//! over a temporary data directory, and SDK clients for it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Value, json};
use tempfile::TempDir;
use veritrail_api::{EventInput, Role};
use veritrail_client::{Client, ClientOptions, KeyScope, RetryPolicy};
use veritrail_server::{Config, Server};

/// A running server; dropping it shuts it down.
pub(crate) struct TestServer {
    pub(crate) url: String,
    pub(crate) admin_key: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<TempDir>,
}

impl TestServer {
    /// A server with the default configuration but a temporary data directory.
    pub(crate) async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `tune` may change.
    pub(crate) async fn start_with(tune: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = Self::start_in(dir.path().to_owned(), tune).await;
        server._dir = Some(dir);
        server
    }

    /// A server over `data_dir` (which outlives it, for restart tests).
    pub(crate) async fn start_in(data_dir: PathBuf, tune: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_prepared(data_dir, tune, |_| {}).await
    }

    /// A server over `data_dir` on which `prepare` acts before it serves: for states the
    /// API cannot make (a tenant without even its creation event).
    pub(crate) async fn start_prepared(
        data_dir: PathBuf,
        tune: impl FnOnce(&mut Config),
        prepare: impl FnOnce(&Server),
    ) -> TestServer {
        let mut config = Config {
            data_dir: data_dir.clone(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        };
        config.search.commit_interval_ms = 50;
        tune(&mut config);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let admin_key = config.admin_key.clone();
        let mut server = Server::open(config).expect("server opens");
        let admin_key = server
            .take_new_admin_key()
            .or(admin_key)
            .unwrap_or_default();
        prepare(&server);
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async move {
            let _ = signal.await;
        }));
        TestServer {
            url: format!("http://{addr}"),
            admin_key,
            shutdown: Some(shutdown),
            task: Some(task),
            _dir: None,
        }
    }

    /// Stops taking connections, finishes in-flight requests, and waits for the end.
    pub(crate) async fn stop(mut self) {
        self.stop_now().await;
    }

    async fn stop_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
    }

    /// An SDK client with `key` that never retries (tests see every answer).
    pub(crate) fn client(&self, key: &str) -> Client {
        Client::with_options(
            &self.url,
            key,
            &ClientOptions {
                retry: RetryPolicy::never(),
                ..ClientOptions::default()
            },
        )
        .expect("client")
    }

    pub(crate) fn admin(&self) -> Client {
        self.client(&self.admin_key)
    }

    /// Creates a tenant; returns its owner key's secret.
    pub(crate) async fn tenant(&self, id: &str) -> String {
        self.admin()
            .create_tenant(id, None)
            .await
            .expect("tenant created")
            .owner_key
            .secret
    }

    /// A key of `role` in `tenant`, made by the server admin.
    pub(crate) async fn key(&self, tenant: &str, role: Role) -> String {
        self.admin()
            .create_key(&KeyScope::Tenant(tenant.to_owned()), role, None)
            .await
            .expect("key created")
            .secret
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// An event of `event_type` with the id `id`, built from JSON.
pub(crate) fn event(id: &str, event_type: &str, extra: Value) -> EventInput {
    let mut value = json!({"id": id, "type": event_type});
    if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), extra) {
        object.extend(extra);
    }
    serde_json::from_value(value).expect("a valid event input")
}

/// A raw HTTP answer: status, headers and body bytes.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the body when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.text()))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `error.code` of an error body, if the body is one.
    pub(crate) fn code(&self) -> Option<String> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()?
            .pointer("/error/code")?
            .as_str()
            .map(str::to_owned)
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts the status and, for an error, the stable code; returns self for more checks.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16, code: Option<&str>) -> &Self {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        if let Some(code) = code {
            assert_eq!(
                self.code().as_deref(),
                Some(code),
                "code; body: {}",
                self.text()
            );
        }
        self
    }
}

impl TestServer {
    /// A plain HTTP client, for requests the SDK would not send.
    pub(crate) fn http(&self) -> reqwest::Client {
        // reqwest is built without a default TLS provider; loopback HTTP needs none, but the
        // builder wants one installed.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client")
    }

    /// A request to `path` (with its query) with `key` as the bearer key, if any.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.http().request(method, format!("{}{path}", self.url));
        match key {
            Some(key) => builder.header("authorization", format!("Bearer {key}")),
            None => builder,
        }
    }

    /// Sends a raw request and reads the whole answer.
    pub(crate) async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.expect("request sent");
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.expect("body read").to_vec(),
        }
    }

    pub(crate) async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        self.send(self.request(reqwest::Method::GET, path, key))
            .await
    }

    /// `POST` of a JSON body.
    pub(crate) async fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        self.send(
            self.request(reqwest::Method::POST, path, key)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).expect("json")),
        )
        .await
    }

    /// Stops the server but keeps its data directory (for restart tests over `start_with`).
    pub(crate) async fn stop_keep_dir(mut self) -> Option<TempDir> {
        let dir = self._dir.take();
        self.stop_now().await;
        dir
    }
}

/// Polls `done` every few milliseconds until it is true, failing after `seconds`.
pub(crate) async fn eventually<F, Fut>(what: &str, seconds: u64, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if done().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {seconds}s waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Waits until the search index of `viewer`'s tenant holds its whole log, and the log at
/// least `size` records; returns the log size.
pub(crate) async fn wait_indexed(viewer: &Client, size: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = viewer
            .search(&veritrail_api::SearchParams {
                limit: Some("1".into()),
                ..veritrail_api::SearchParams::default()
            })
            .await
            .expect("search");
        if page.log_size >= size && page.indexed_size >= page.log_size {
            return page.log_size;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the search index did not catch up: {} of {} (want {size})",
            page.indexed_size,
            page.log_size
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Every kept record of `viewer`'s tenant's log, read through the export (seq order), as
/// JSON records decoded from the canonical bytes. The export itself appends one
/// `veritrail.log.exported` event after the records it returns.
pub(crate) async fn all_records(viewer: &Client) -> Vec<Value> {
    let mut bundle = Vec::new();
    viewer.export(&mut bundle).await.expect("export");
    let text = String::from_utf8(bundle).expect("utf-8 export");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let line: veritrail_api::ExportLine = serde_json::from_str(line).expect("export line");
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(line.record?)
                .expect("base64 record");
            Some(
                veritrail_core::record::Record::decode(&bytes)
                    .expect("record decodes")
                    .to_json(),
            )
        })
        .collect()
}

/// Base64 of a hash into the hash.
pub(crate) fn hash(text: &str) -> veritrail_core::merkle::Hash {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}

/// Opens a signed checkpoint note with the verifier key string from `/log/key`.
pub(crate) fn open_checkpoint(note: &str, vkey: &str) -> veritrail_core::checkpoint::Checkpoint {
    let verifier = veritrail_core::note::NoteVerifier::parse(vkey).expect("vkey");
    let opened = veritrail_core::note::open(note, &[verifier]).expect("signed by the log key");
    veritrail_core::checkpoint::Checkpoint::parse(&opened.text).expect("checkpoint")
}

/// Checks a receipt's inclusion proof against a checkpoint.
pub(crate) fn verify_receipt(
    receipt: &veritrail_api::ReceiptBody,
    checkpoint: &veritrail_core::checkpoint::Checkpoint,
) -> Result<(), veritrail_core::merkle::VerifyError> {
    let proof: Vec<veritrail_core::merkle::Hash> = receipt
        .inclusion_proof
        .as_ref()
        .expect("proof asked for")
        .iter()
        .map(|node| hash(node))
        .collect();
    veritrail_core::merkle::verify_inclusion(
        &hash(&receipt.leaf_hash),
        receipt.seq,
        checkpoint.size(),
        &proof,
        checkpoint.root(),
    )
}
