//! Connections: the accept loop the server runs (instead of `axum::serve`, which sets no
//! limits), and what every connection is held to, so that a client that is slow or idle on
//! purpose costs a bounded amount and then nothing.
//!
//! - **Headers:** a request's head must arrive within `limits.header_read_timeout_secs` of
//!   the connection becoming ready for it (an idle keep-alive connection included), in at
//!   most twice `limits.max_header_bytes` (hyper's read buffer; the router answers the API's
//!   431 above `limits.max_header_bytes`).
//! - **Writes:** a connection whose writes make no progress for `limits.write_timeout_secs`
//!   (the client stopped reading: the socket's buffer is full) is closed ([`StallGuard`]);
//!   the response it was sending, an export or a live tail, ends with it, and so does every
//!   resource the response held.
//! - **Connections:** at most `limits.max_connections` at once; one more gets a 503 and is
//!   closed.
//! - **Shutdown:** the listener closes, each connection finishes the request it is serving
//!   (live tails end), and `serve` returns when every connection has closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// What every connection is held to (from [`crate::config::Limits`]).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
}

impl ConnLimits {
    pub fn of(limits: &crate::config::Limits) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(limits.header_read_timeout_secs),
            write_timeout: Duration::from_secs(limits.write_timeout_secs),
            max_connections: limits.max_connections,
            max_header_bytes: limits.max_header_bytes,
        }
    }
}

/// Connections open now and refused since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub open: AtomicUsize,
    pub refused: AtomicUsize,
    /// Connections closed because their writes stalled.
    pub stalled: AtomicUsize,
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes gracefully.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    stats: Arc<ConnStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Every connection task holds a receiver; `closed()` resolves once all are gone.
    let (all_closed, close_rx) = tokio::sync::watch::channel(());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if stats.open.load(Ordering::Relaxed) >= limits.max_connections {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            refuse(&stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let io = TokioIo::new(StallGuard::new(stream, limits.write_timeout, &stats));
        let service = TowerToHyperService::new(router.clone());
        let (close_rx, mut stop_rx, stats) =
            (close_rx.clone(), stop_rx.clone(), Arc::clone(&stats));
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                // Heads over `max_header_bytes` get the API's 431 from the router; hyper
                // refuses those over twice that before reading further.
                .max_buf_size(limits.max_header_bytes * 2);
            let connection = builder.serve_connection(io, service);
            let mut connection = std::pin::pin!(connection);
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, "connection ended");
                        }
                        break;
                    }
                    _ = stop_rx.changed() => connection.as_mut().graceful_shutdown(),
                }
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(close_rx);
        });
    }
    drop(listener);
    stop.send_replace(true);
    drop(close_rx);
    all_closed.closed().await;
}

/// The answer to a connection over the limit: a 503 written at once (it fits the socket's
/// buffer, or is lost), then the connection closes.
fn refuse(stream: &TcpStream) {
    const BODY: &str = r#"{"error":{"code":"unavailable","message":"the server has as many connections open as it takes (limits.max_connections); retry in a moment"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// A connection whose writes fail once they have made no progress for `timeout`: a client
/// that stops reading fills the socket's buffer, every write then waits, and after
/// `timeout` the connection errors out and closes. Reads are passed through.
#[derive(Debug)]
pub struct StallGuard {
    inner: TcpStream,
    timeout: Duration,
    /// Armed when a write first waits, disarmed by any progress.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    stats: Arc<ConnStats>,
}

impl StallGuard {
    fn new(inner: TcpStream, timeout: Duration, stats: &Arc<ConnStats>) -> Self {
        Self {
            inner,
            timeout,
            deadline: None,
            stats: Arc::clone(stats),
        }
    }

    /// After a write or flush: progress disarms the deadline; waiting arms it, and waiting
    /// past it is an error.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.deadline = None;
            return result;
        }
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        // Polling the timer registers the waker: the task wakes when it fires.
        if deadline.as_mut().poll(cx).is_ready() {
            self.stats.stalled.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("closing a connection whose client stopped reading");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for the write timeout",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for StallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, result)
    }
}
