//! A webhook receiver for the tests: a real HTTP server on a loopback port that records every
//! request, answers as a test tells it (a status, a status with `Retry-After`, or never), can
//! be stopped (the port refuses, open connections are dropped) and started again on the same
//! port; and the check of the deliveries' Standard Webhooks signatures, both with veritrail's
//! own verifier and with the official `standardwebhooks` Python library
//! (`tests/standardwebhooks/verify.py`, installed by `scripts/test`).

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use veritrail_core::webhook::{self, WebhookSecret};

/// How long a [`Reply::Hang`] waits: longer than any timeout of a test.
const HANG: Duration = Duration::from_secs(3600);

/// How long [`Receiver::stop`] waits for the open connections to close.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// `POST` for a webhook.
    pub(crate) method: String,
    /// The request's path: `/` and the `path` given to [`Receiver::url`] (`"/hook"`).
    pub(crate) path: String,
    /// The `webhook-id` header (`""` when absent, as for the two below).
    pub(crate) webhook_id: String,
    pub(crate) webhook_timestamp: String,
    pub(crate) webhook_signature: String,
    pub(crate) content_type: Option<String>,
    /// The raw body, exactly as received.
    pub(crate) body: Vec<u8>,
    /// The status the receiver answered; `None` if it never answered ([`Reply::Hang`]).
    pub(crate) answered: Option<u16>,
    /// When the request arrived.
    pub(crate) at: Instant,
}

impl Delivery {
    /// The body as JSON (panics with the body when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "the body of delivery {} is not JSON ({err}): {}",
                self.webhook_id,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// One line about the delivery, for failure messages.
    fn describe(&self) -> String {
        let answered = self.answered.map_or_else(
            || "never answered".to_owned(),
            |status| format!("answered {status}"),
        );
        format!(
            "{} {} webhook-id {:?} webhook-timestamp {:?}, {answered}",
            self.method, self.path, self.webhook_id, self.webhook_timestamp
        )
    }
}

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// This status, with an empty body.
    Status(u16),
    /// This status with `Retry-After: <seconds>`.
    StatusRetryAfter(u16, u64),
    /// No answer at all, until the client gives up or [`Receiver::stop`] drops the connection.
    Hang,
}

impl Reply {
    /// Panics (at the test's call) on a status a server cannot send as a final answer.
    #[track_caller]
    fn checked(self) -> Self {
        if let Reply::Status(status) | Reply::StatusRetryAfter(status, _) = self {
            assert!(
                (200..=599).contains(&status),
                "a receiver replies with a status in 200..=599, not {status}"
            );
        }
        self
    }

    fn status(self) -> Option<u16> {
        match self {
            Reply::Status(status) | Reply::StatusRetryAfter(status, _) => Some(status),
            Reply::Hang => None,
        }
    }
}

/// What the receiver got and how it is to answer, under one lock so that the queued replies
/// go to the requests in their recorded order.
#[derive(Debug)]
struct Inner {
    deliveries: Vec<Delivery>,
    default: Reply,
    queue: VecDeque<Reply>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A test that panicked while holding the lock left consistent data: go on with it.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A webhook receiver on `127.0.0.1`; it answers `204` unless told otherwise. Dropping it
/// stops it.
#[derive(Debug)]
pub(crate) struct Receiver {
    addr: SocketAddr,
    shared: Shared,
    running: tokio::sync::Mutex<Option<Running>>,
}

/// A serving period between a start and a stop.
#[derive(Debug)]
struct Running {
    /// `true` stops the accept loop and fails every open connection's I/O.
    stop: watch::Sender<bool>,
    task: JoinHandle<io::Result<()>>,
}

impl Receiver {
    /// A receiver on a fresh loopback port.
    pub(crate) async fn start() -> Receiver {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind the receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let shared = Arc::new(Mutex::new(Inner {
            deliveries: Vec::new(),
            default: Reply::Status(204),
            queue: VecDeque::new(),
        }));
        let running = serve(listener, Arc::clone(&shared));
        Receiver {
            addr,
            shared,
            running: tokio::sync::Mutex::new(Some(running)),
        }
    }

    /// `http://127.0.0.1:PORT/<path>` (a leading `/` of `path` is optional).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The address it listens on (the same after a restart).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The reply to every request from now on, once the queued ones are used.
    #[track_caller]
    pub(crate) fn set_default(&self, reply: Reply) {
        let reply = reply.checked();
        lock(&self.shared).default = reply;
    }

    /// Queues one-shot replies, used in order before the default.
    #[track_caller]
    pub(crate) fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        let replies: Vec<Reply> = replies.into_iter().map(Reply::checked).collect();
        lock(&self.shared).queue.extend(replies);
    }

    /// Stops listening (connecting is then refused) and drops every open connection, idle
    /// or in the middle of a request; keeps what was recorded. Returns once they are closed.
    pub(crate) async fn stop(&self) {
        let Some(running) = self.running.lock().await.take() else {
            return;
        };
        running.stop.send_replace(true);
        let mut task = running.task;
        match tokio::time::timeout(STOP_TIMEOUT, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => panic!("the receiver at {} failed: {err}", self.addr),
            Ok(Err(err)) => panic!("the receiver's task at {} failed: {err}", self.addr),
            Err(_) => {
                task.abort();
                panic!(
                    "the receiver at {} did not close its connections within {STOP_TIMEOUT:?}",
                    self.addr
                );
            }
        }
    }

    /// Listens again, on the same port (a no-op while it runs).
    pub(crate) async fn restart(&self) {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return;
        }
        // The port was ours a moment ago; retry briefly in case the kernel lags.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match bind(self.addr) {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("the receiver cannot listen on {} again: {err}", self.addr),
            }
        };
        *running = Some(serve(listener, Arc::clone(&self.shared)));
    }

    /// Every request received so far (answered with an error too), in arrival order.
    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared).deliveries.clone()
    }

    /// Polls the deliveries until `pred` holds of them and returns them; panics after
    /// `timeout` with what was received.
    pub(crate) async fn wait_for(
        &self,
        pred: impl Fn(&[Delivery]) -> bool,
        timeout: Duration,
    ) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let deliveries = self.deliveries();
            if pred(&deliveries) {
                return deliveries;
            }
            if Instant::now() >= deadline {
                let list: String = deliveries
                    .iter()
                    .enumerate()
                    .map(|(i, delivery)| format!("\n  #{i}: {}", delivery.describe()))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for webhook deliveries to {}: {} received{}{list}",
                    self.addr,
                    deliveries.len(),
                    if deliveries.is_empty() { "" } else { ":" },
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(running) = self.running.get_mut().take() {
            running.stop.send_replace(true);
            running.task.abort();
        }
    }
}

/// A listener on `addr` with `SO_REUSEADDR`, so that a restart can take the port back while
/// the connections of the last run are in `TIME_WAIT`.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn serve(listener: TcpListener, shared: Shared) -> Running {
    let (stop, stopped) = watch::channel(false);
    let app = Router::new()
        .fallback(record)
        .layer(DefaultBodyLimit::disable())
        .with_state(shared);
    let listener = GuardedListener {
        listener,
        stopped: stopped.clone(),
    };
    // Graceful shutdown drops the listener, then waits for the connections, which the
    // guards end at once: the task ends when everything is closed.
    let task = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop_signal(stopped))
            .into_future(),
    );
    Running { stop, task }
}

/// Resolves when `stopped` turns true (or its sender is gone).
async fn stop_signal(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn record(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let reply = {
        let mut state = lock(&shared);
        let reply = state.queue.pop_front().unwrap_or(state.default);
        let delivery = Delivery {
            method: method.to_string(),
            path: uri.path().to_owned(),
            webhook_id: text("webhook-id").unwrap_or_default(),
            webhook_timestamp: text("webhook-timestamp").unwrap_or_default(),
            webhook_signature: text("webhook-signature").unwrap_or_default(),
            content_type: text("content-type"),
            body: body.to_vec(),
            answered: reply.status(),
            at: Instant::now(),
        };
        state.deliveries.push(delivery);
        reply
    };
    let code = |status: u16| StatusCode::from_u16(status).expect("a checked status");
    match reply {
        Reply::Status(status) => code(status).into_response(),
        Reply::StatusRetryAfter(status, seconds) => {
            (code(status), [(header::RETRY_AFTER, seconds.to_string())]).into_response()
        }
        Reply::Hang => {
            // Until the connection is dropped, which drops this future.
            tokio::time::sleep(HANG).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// Accepts connections wrapped in [`Guarded`].
struct GuardedListener {
    listener: TcpListener,
    stopped: watch::Receiver<bool>,
}

impl axum::serve::Listener for GuardedListener {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let stopped = Box::pin(stop_signal(self.stopped.clone()));
                    return (
                        Guarded {
                            stream,
                            stopped: Some(stopped),
                        },
                        addr,
                    );
                }
                // Say, too many open files: wait as axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection whose every read and write fails once the receiver stops. hyper reads
/// even while a request is being handled (to notice the client going away), so the error
/// ends the connection in any state, and the stop signal's waker makes it read.
struct Guarded {
    stream: TcpStream,
    /// `None` once the stop signal came.
    stopped: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Guarded {
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(stopped) = &mut self.stopped
            && stopped.as_mut().poll(cx).is_ready()
        {
            self.stopped = None;
        }
        match self.stopped {
            Some(_) => Ok(()),
            None => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the receiver stopped",
            )),
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

// ---- Verification ------------------------------------------------------------------------

/// Checks every delivery's signature against `secrets` (a delivery passes if it verifies
/// under any one of them) with veritrail's verifier, then with the official
/// `standardwebhooks` library; panics naming every delivery that fails either.
pub(crate) fn verify_all(deliveries: &[Delivery], secrets: &[&str]) {
    if let Err(err) = check_all(deliveries, secrets) {
        panic!("{err}");
    }
}

/// [`verify_all`], but each delivery must verify under every one of `secrets` (during a
/// rotation, when a delivery carries a signature per secret).
pub(crate) fn verify_all_under_each(deliveries: &[Delivery], secrets: &[&str]) {
    if let Err(err) = check_all_under_each(deliveries, secrets) {
        panic!("{err}");
    }
}

/// [`verify_all`]'s check: `Err` says which deliveries failed which verifier, and why.
pub(crate) fn check_all(deliveries: &[Delivery], secrets: &[&str]) -> Result<(), String> {
    check(deliveries, secrets, Rule::Any)
}

/// [`verify_all_under_each`]'s check.
pub(crate) fn check_all_under_each(
    deliveries: &[Delivery],
    secrets: &[&str],
) -> Result<(), String> {
    check(deliveries, secrets, Rule::Each)
}

/// Whether a delivery needs one good signature among the secrets, or one per secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Any,
    Each,
}

/// For each delivery, for each secret: whether it verifies, or why not.
type Verdicts = Vec<Vec<Result<(), String>>>;

fn check(deliveries: &[Delivery], secrets: &[&str], rule: Rule) -> Result<(), String> {
    if deliveries.is_empty() {
        return Err("no webhook deliveries to verify (wait for them first)".to_owned());
    }
    if secrets.is_empty() {
        return Err("no secrets to verify webhook deliveries with".to_owned());
    }
    let ours = veritrail_verdicts(deliveries, secrets)?;
    let official = match official_python()? {
        Some(python) => Some((
            python.version,
            official_verdicts(&python.path, deliveries, secrets)?,
        )),
        None => None,
    };
    let mut failures = Vec::new();
    for (i, delivery) in deliveries.iter().enumerate() {
        let mut reasons = Vec::new();
        if let Some(why) = judge(&ours[i], rule) {
            reasons.push(format!("veritrail's verifier: {why}"));
        }
        if let Some((version, verdicts)) = &official
            && let Some(why) = judge(&verdicts[i], rule)
        {
            reasons.push(format!("standardwebhooks {version}: {why}"));
        }
        if !reasons.is_empty() {
            failures.push(format!(
                "  delivery #{i} ({}):\n    {}",
                delivery.describe(),
                reasons.join("\n    ")
            ));
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let rule = match rule {
        Rule::Any => "any of",
        Rule::Each => "each of",
    };
    Err(format!(
        "{} of {} webhook deliveries do not verify under {rule} the {} secret(s):\n{}",
        failures.len(),
        deliveries.len(),
        secrets.len(),
        failures.join("\n")
    ))
}

/// Why a delivery with these per-secret verdicts fails `rule`, if it does.
fn judge(verdicts: &[Result<(), String>], rule: Rule) -> Option<String> {
    let failed: Vec<String> = verdicts
        .iter()
        .enumerate()
        .filter_map(|(k, verdict)| {
            verdict
                .as_ref()
                .err()
                .map(|why| format!("secret #{k}: {why}"))
        })
        .collect();
    let fails = match rule {
        Rule::Any => failed.len() == verdicts.len(),
        Rule::Each => !failed.is_empty(),
    };
    fails.then(|| failed.join("; "))
}

/// veritrail's own verdicts (`veritrail_core::webhook::verify`, which leaves the
/// timestamp's freshness to the caller: none is checked here). The headers must be there and
/// the timestamp an integer written as veritrail signs it.
fn veritrail_verdicts(deliveries: &[Delivery], secrets: &[&str]) -> Result<Verdicts, String> {
    let secrets = secrets
        .iter()
        .enumerate()
        .map(|(k, text)| {
            WebhookSecret::parse(text).map_err(|err| format!("secret #{k} does not parse: {err}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(deliveries
        .iter()
        .map(|delivery| {
            let timestamp = headers_problem(delivery);
            secrets
                .iter()
                .map(|secret| {
                    let timestamp = timestamp.clone()?;
                    if webhook::verify(
                        secret,
                        &delivery.webhook_id,
                        timestamp,
                        &delivery.body,
                        &delivery.webhook_signature,
                    ) {
                        Ok(())
                    } else {
                        Err("no signature of the header verifies".to_owned())
                    }
                })
                .collect()
        })
        .collect())
}

/// The delivery's timestamp, or what is wrong with its headers.
fn headers_problem(delivery: &Delivery) -> Result<i64, String> {
    if delivery.webhook_id.is_empty() {
        return Err("no webhook-id header".to_owned());
    }
    if delivery.webhook_signature.is_empty() {
        return Err("no webhook-signature header".to_owned());
    }
    let text = &delivery.webhook_timestamp;
    match text.parse::<i64>() {
        Ok(timestamp) if timestamp.to_string() == *text => Ok(timestamp),
        _ => Err(format!(
            "webhook-timestamp {text:?} is not an integer number of seconds"
        )),
    }
}

/// The Python that runs `verify.py`, and the library's version.
#[derive(Debug, Clone)]
struct OfficialPython {
    path: PathBuf,
    version: String,
}

/// Where the official library is: `$VERITRAIL_TEST_PYTHON`, else the venv `scripts/test`
/// makes; `None` (with a note) when neither is there, except in CI where it is an error.
fn official_python() -> Result<Option<OfficialPython>, String> {
    static FOUND: OnceLock<Result<Option<OfficialPython>, String>> = OnceLock::new();
    FOUND.get_or_init(find_official_python).clone()
}

fn find_official_python() -> Result<Option<OfficialPython>, String> {
    if let Some(path) = std::env::var_os("VERITRAIL_TEST_PYTHON").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return match library_version(&path) {
            Ok(version) => Ok(Some(OfficialPython { path, version })),
            Err(err) => Err(format!("VERITRAIL_TEST_PYTHON={}: {err}", path.display())),
        };
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    if let Ok(version) = library_version(&venv) {
        return Ok(Some(OfficialPython {
            path: venv,
            version,
        }));
    }
    if tools_required() {
        return Err(
            "the official standardwebhooks library is required (CI or VERITRAIL_REQUIRE_TOOLS); \
                    scripts/test installs it (or set VERITRAIL_TEST_PYTHON to a Python that has it)"
                .to_owned(),
        );
    }
    eprintln!(
        "note: the check with the official standardwebhooks library was skipped, only \
         veritrail's verifier checked the webhook signatures: the library is not installed \
         (scripts/test installs it into target/test-venv; or set VERITRAIL_TEST_PYTHON)"
    );
    Ok(None)
}

/// `verify.py`, from this crate or from another crate of the workspace that includes this
/// file (the `veritrail` command's kill -9 test does).
fn verify_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../veritrail-server/tests/standardwebhooks/verify.py")
}

/// `verify.py --version` with `python`: the library's version, or why it does not run.
fn library_version(python: &Path) -> Result<String, String> {
    let output = Command::new(python)
        .arg(verify_script())
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run it: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "verify.py --version failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The official library's verdicts, from one run of `verify.py` over every (delivery,
/// secret) pair.
fn official_verdicts(
    python: &Path,
    deliveries: &[Delivery],
    secrets: &[&str],
) -> Result<Verdicts, String> {
    let mut input = String::new();
    for delivery in deliveries {
        for secret in secrets {
            let line = json!({
                "secret": secret,
                "id": delivery.webhook_id,
                "timestamp": delivery.webhook_timestamp,
                "signature": delivery.webhook_signature,
                "body_b64": STANDARD.encode(&delivery.body),
            });
            input.push_str(&line.to_string());
            input.push('\n');
        }
    }
    let mut child = Command::new(python)
        .arg(verify_script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run {}: {err}", python.display()))?;
    let mut stdin = child.stdin.take().expect("a piped stdin");
    // A thread writes while this one reads, so that neither pipe can fill up and block.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|err| format!("verify.py: {err}"))?;
    let written = writer.join().expect("the writer thread");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "verify.py failed ({}): {}",
            output.status,
            stderr.trim()
        ));
    }
    written.map_err(|err| format!("writing to verify.py: {err}"))?;
    let mut lines = std::str::from_utf8(&output.stdout)
        .map_err(|err| format!("verify.py wrote no UTF-8: {err}"))?
        .lines();
    let mut verdicts = Vec::with_capacity(deliveries.len());
    for _ in deliveries {
        let mut row = Vec::with_capacity(secrets.len());
        for _ in secrets {
            let line = lines
                .next()
                .ok_or_else(|| format!("verify.py answered too few lines; stderr: {stderr}"))?;
            let answer: Value = serde_json::from_str(line)
                .map_err(|err| format!("verify.py wrote {line:?}: {err}"))?;
            row.push(match answer["ok"].as_bool() {
                Some(true) => Ok(()),
                Some(false) => Err(answer["error"].as_str().unwrap_or("(no reason)").to_owned()),
                None => return Err(format!("verify.py wrote {line:?}")),
            });
        }
        verdicts.push(row);
    }
    if lines.next().is_some() {
        return Err("verify.py answered too many lines".to_owned());
    }
    Ok(verdicts)
}

// ---- Tests of the receiver and of the verification -------------------------------------

mod tests {
    use std::io::Read as _;
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    /// A plain HTTP client (as support.rs's).
    fn http() -> reqwest::Client {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client")
    }

    fn secret(byte: u8) -> WebhookSecret {
        WebhookSecret::from_bytes(vec![byte; 32]).expect("a secret")
    }

    fn now() -> i64 {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        i64::try_from(seconds).expect("seconds fit")
    }

    /// Posts `body` as a webhook with these headers.
    async fn post(
        client: &reqwest::Client,
        url: &str,
        id: &str,
        timestamp: i64,
        signature: &str,
        body: &[u8],
    ) -> reqwest::Response {
        client
            .post(url)
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("delivered")
    }

    fn body(n: usize) -> Vec<u8> {
        // Non-ASCII text too, so that both verifiers see the same UTF-8 bytes.
        serde_json::to_vec(&json!({"id": format!("n-{n}"), "summary": "Zoë signed in ✓"}))
            .expect("json")
    }

    fn texts(secrets: &[&WebhookSecret]) -> Vec<String> {
        secrets.iter().map(|secret| secret.to_text()).collect()
    }

    fn refs(texts: &[String]) -> Vec<&str> {
        texts.iter().map(String::as_str).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn signed_deliveries_pass_both_verifiers() {
        let receiver = Receiver::start().await;
        let client = http();
        let (a, b) = (secret(1), secret(2));
        let timestamp = now();
        for n in 0..3 {
            let id = format!("msg_{n}");
            let body = body(n);
            let signature = webhook::signature_header(&[&a], &id, timestamp, &body);
            let url = receiver.url(&format!("/hooks/{n}"));
            let response = post(&client, &url, &id, timestamp, &signature, &body).await;
            assert_eq!(response.status(), 204);
        }
        let deliveries = receiver
            .wait_for(|d| d.len() == 3, Duration::from_secs(5))
            .await;
        for (n, delivery) in deliveries.iter().enumerate() {
            assert_eq!(delivery.method, "POST");
            assert_eq!(delivery.path, format!("/hooks/{n}"));
            assert_eq!(delivery.webhook_id, format!("msg_{n}"));
            assert_eq!(delivery.webhook_timestamp, timestamp.to_string());
            assert!(delivery.webhook_signature.starts_with("v1,"));
            assert_eq!(delivery.content_type.as_deref(), Some("application/json"));
            assert_eq!(delivery.json()["id"], format!("n-{n}"));
            assert_eq!(delivery.answered, Some(204));
        }
        assert!(deliveries.windows(2).all(|w| w[0].at <= w[1].at));

        let (a_text, b_text) = (a.to_text(), b.to_text());
        verify_all(&deliveries, &[&a_text]);
        // Any one of the secrets is enough...
        verify_all(&deliveries, &[&b_text, &a_text]);
        // ...but not when each one must verify.
        let err = check_all_under_each(&deliveries, &[&a_text, &b_text]).expect_err("not by b");
        assert!(err.starts_with("3 of 3 webhook deliveries"), "{err}");
        assert!(err.contains("secret #1"), "{err}");
        assert!(!err.contains("secret #0"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rotation_signatures_verify_under_each_secret() {
        let receiver = Receiver::start().await;
        let client = http();
        let (old, new) = (secret(3), secret(4));
        let timestamp = now();
        let body = body(0);
        let signature = webhook::signature_header(&[&new, &old], "msg_r", timestamp, &body);
        assert_eq!(signature.split(' ').count(), 2);
        post(
            &client,
            &receiver.url("r"),
            "msg_r",
            timestamp,
            &signature,
            &body,
        )
        .await;
        let deliveries = receiver
            .wait_for(|d| !d.is_empty(), Duration::from_secs(5))
            .await;
        let secrets = texts(&[&old, &new]);
        verify_all_under_each(&deliveries, &refs(&secrets));
        verify_all(&deliveries, &refs(&secrets[1..]));
        verify_all(&deliveries, &refs(&secrets[..1]));
        let third = secret(5).to_text();
        assert!(check_all_under_each(&deliveries, &[&secrets[0], &secrets[1], &third]).is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_tampered_body_a_wrong_secret_or_no_headers_fail_both_verifiers() {
        let receiver = Receiver::start().await;
        let client = http();
        let (good, wrong) = (secret(6), secret(7));
        let timestamp = now();
        let url = receiver.url("t");
        // #0: good.
        let body0 = body(0);
        let signature = good.sign("msg_0", timestamp, &body0);
        post(&client, &url, "msg_0", timestamp, &signature, &body0).await;
        // #1: the body changed after signing.
        let signature = good.sign("msg_1", timestamp, &body(1));
        post(&client, &url, "msg_1", timestamp, &signature, &body(2)).await;
        // #2: signed with another secret.
        let signature = wrong.sign("msg_2", timestamp, &body(3));
        post(&client, &url, "msg_2", timestamp, &signature, &body(3)).await;
        // #3: the signature of another timestamp.
        let signature = good.sign("msg_3", timestamp - 1, &body(4));
        post(&client, &url, "msg_3", timestamp, &signature, &body(4)).await;
        // #4: no webhook headers at all.
        client
            .post(&url)
            .body(body(5))
            .send()
            .await
            .expect("delivered");
        let deliveries = receiver
            .wait_for(|d| d.len() == 5, Duration::from_secs(5))
            .await;
        let good_text = good.to_text();

        check_all(&deliveries[..1], &[&good_text]).expect("the good one verifies");
        let err = check_all(&deliveries, &[&good_text]).expect_err("four do not");
        assert!(err.starts_with("4 of 5 webhook deliveries"), "{err}");
        for n in 1..5 {
            assert!(err.contains(&format!("delivery #{n} (")), "{err}");
        }
        assert!(!err.contains("delivery #0"), "{err}");
        assert!(err.contains("no webhook-id header"), "{err}");
        let panic = std::panic::catch_unwind(|| verify_all(&deliveries, &[&good_text]))
            .expect_err("verify_all panics");
        let message = panic
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert_eq!(*message, err);

        // Each verifier on its own accepts #0 and refuses the others.
        let secrets = [good_text.as_str()];
        let ours = veritrail_verdicts(&deliveries, &secrets).expect("verdicts");
        assert!(ours[0][0].is_ok());
        assert!(ours[1..].iter().all(|row| row[0].is_err()), "{ours:?}");
        match official_python().expect("the official library where it is required") {
            Some(python) => {
                assert!(err.contains(&format!("standardwebhooks {}:", python.version)));
                let official =
                    official_verdicts(&python.path, &deliveries, &secrets).expect("verdicts");
                assert_eq!(official[0][0], Ok(()));
                assert!(
                    official[1..].iter().all(|row| row[0].is_err()),
                    "{official:?}"
                );
                let why = |row: usize| official[row][0].as_ref().err().map(String::as_str);
                assert_eq!(why(1), Some("No matching signature found"));
                assert_eq!(why(4), Some("Missing required headers"));
            }
            None => eprintln!("(the official library's half of this test was skipped)"),
        }
    }

    /// The official library also refuses a timestamp more than 5 minutes from now (ours leaves
    /// freshness to the receiver): deliveries must be verified soon after they are sent.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_official_library_refuses_a_stale_timestamp() {
        let receiver = Receiver::start().await;
        let key = secret(8);
        let stale = now() - 3600;
        let body = body(0);
        let signature = key.sign("msg_s", stale, &body);
        post(
            &http(),
            &receiver.url("s"),
            "msg_s",
            stale,
            &signature,
            &body,
        )
        .await;
        let deliveries = receiver
            .wait_for(|d| d.len() == 1, Duration::from_secs(5))
            .await;
        let text = key.to_text();
        let ours = veritrail_verdicts(&deliveries, &[&text]).expect("verdicts");
        assert_eq!(ours[0][0], Ok(()));
        match official_python().expect("the official library where it is required") {
            Some(python) => {
                let official =
                    official_verdicts(&python.path, &deliveries, &[&text]).expect("verdicts");
                let why = official[0][0].as_ref().expect_err("too old");
                assert!(why.starts_with("Message timestamp too old"), "{why}");
                // Seconds go on while the test runs: 3600 or 3601.
                assert!(why.contains("(it is 360"), "{why}");
                assert!(why.contains(" s old; the library accepts 300 s"), "{why}");
                assert!(check_all(&deliveries, &[&text]).is_err());
            }
            None => eprintln!("(skipped: the official library is not installed)"),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn replies_follow_the_queue_then_the_default() {
        let receiver = Receiver::start().await;
        let client = http();
        let url = receiver.url("q");
        receiver.push_replies([Reply::StatusRetryAfter(429, 7), Reply::Status(500)]);
        let first = client.post(&url).send().await.expect("sent");
        assert_eq!(first.status(), 429);
        assert_eq!(first.headers()["retry-after"], "7");
        let second = client.post(&url).send().await.expect("sent");
        assert_eq!(second.status(), 500);
        assert!(second.headers().get("retry-after").is_none());
        let third = client.post(&url).send().await.expect("sent");
        assert_eq!(third.status(), 204);
        receiver.set_default(Reply::StatusRetryAfter(503, 120));
        receiver.push_replies([Reply::Status(200)]);
        let fourth = client.post(&url).send().await.expect("sent");
        assert_eq!(fourth.status(), 200);
        for _ in 0..2 {
            let later = client.post(&url).send().await.expect("sent");
            assert_eq!(later.status(), 503);
            assert_eq!(later.headers()["retry-after"], "120");
        }
        let answered: Vec<_> = receiver
            .deliveries()
            .iter()
            .map(|delivery| delivery.answered)
            .collect();
        let expected = [429, 500, 204, 200, 503, 503].map(Some);
        assert_eq!(answered, expected);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_hung_request_is_recorded_unanswered_and_stop_drops_it() {
        let receiver = Receiver::start().await;
        let client = http();
        receiver.push_replies([Reply::Hang, Reply::Hang]);
        // A client that gives up.
        let err = client
            .post(receiver.url("h"))
            .timeout(Duration::from_millis(300))
            .send()
            .await
            .expect_err("no answer");
        assert!(err.is_timeout(), "{err}");
        // A client that would wait forever: the stop ends its wait.
        let waiting = tokio::spawn({
            let request = client.post(receiver.url("h"));
            async move { request.send().await }
        });
        receiver
            .wait_for(|d| d.len() == 2, Duration::from_secs(5))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "a hung request got an answer");
        let started = Instant::now();
        receiver.stop().await;
        let result = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the stop ended the request")
            .expect("the request task");
        assert!(result.is_err(), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let deliveries = receiver.deliveries();
        assert_eq!(deliveries.len(), 2);
        assert!(
            deliveries
                .iter()
                .all(|delivery| delivery.answered.is_none())
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn stop_refuses_and_closes_keep_alive_connections_and_restart_takes_the_same_port() {
        let receiver = Receiver::start().await;
        let client = http();
        let addr = receiver.addr();
        let url = receiver.url("k");
        assert_eq!(url, format!("http://{addr}/k"));
        let response = client.post(&url).send().await.expect("sent");
        assert_eq!(response.status(), 204);

        // A raw keep-alive connection, left idle after one request.
        let mut raw = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            stream
                .write_all(b"POST /raw HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
                .expect("request");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                stream.read_exact(&mut byte).expect("the answer");
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 204"), "{head:?}");
            stream
        })
        .await
        .expect("raw request");

        receiver.stop().await;
        // The idle connection was closed by the receiver (not left to time out)...
        let closed = tokio::task::spawn_blocking(move || {
            let mut rest = [0u8; 64];
            match raw.read(&mut rest) {
                Ok(0) => Ok(()),
                Ok(n) => Err(format!("read {n} more bytes")),
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Ok(()),
                Err(err) => Err(format!("still open: {err}")),
            }
        })
        .await
        .expect("raw read");
        assert_eq!(closed, Ok(()));
        // ...new connections are refused...
        let refused = TcpStream::connect(addr).await.expect_err("refused");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        // ...and the client's pooled connection is gone too.
        client.post(&url).send().await.expect_err("stopped");
        assert_eq!(receiver.deliveries().len(), 2);
        receiver.stop().await;

        receiver.restart().await;
        receiver.restart().await;
        assert_eq!(receiver.url("k"), url);
        let response = client.post(&url).send().await.expect("sent again");
        assert_eq!(response.status(), 204);
        let paths: Vec<String> = receiver
            .deliveries()
            .into_iter()
            .map(|delivery| delivery.path)
            .collect();
        assert_eq!(paths, ["/k", "/raw", "/k"]);

        // A second stop and restart work the same.
        receiver.stop().await;
        TcpStream::connect(addr).await.expect_err("refused again");
        receiver.restart().await;
        TcpStream::connect(addr).await.expect("accepted again");
    }
}

/// Whether every test must run whatever tools it needs (Python with the official libraries,
/// Node, Chromium) instead of skipping itself with a note: in CI, and under `scripts/test`,
/// which installs them and sets `VERITRAIL_REQUIRE_TOOLS`.
pub(crate) fn tools_required() -> bool {
    ["CI", "VERITRAIL_REQUIRE_TOOLS"].iter().any(|name| {
        std::env::var(name).is_ok_and(|value| !value.is_empty() && value != "false" && value != "0")
    })
}
