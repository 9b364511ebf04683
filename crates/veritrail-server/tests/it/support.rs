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
