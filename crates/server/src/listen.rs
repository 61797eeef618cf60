//! The accept loop: HTTP/1 connections with a time limit on reading a request's head, an idle
//! limit, and a cap on open connections.
//!
//! A server that waits forever on a client that opened a connection and sends nothing (or a
//! byte now and then) gives every such client a file descriptor for free: enough of them and
//! nobody else gets in, `/healthz` included. So a request's head must arrive within
//! [`ConnectionLimits::header_read`], a connection that moves no byte for
//! [`ConnectionLimits::idle`] is closed, and when [`ConnectionLimits::max_connections`] are
//! open (or the process runs out of descriptors) the connection that has been quiet longest
//! makes room for the new one, as a busy web server recycles its idle keep-alive connections.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// How long connections may take and how many may be open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time to send a request's head (the request line and headers).
    pub header_read: Duration,
    /// A connection that sends and receives nothing for this long is closed.
    pub idle: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header_read: Duration::from_secs(10),
            // Longer than a sync stream's own silence limit (60 s), so a slow but live
            // stream is the receiver's to give up, not this server's.
            idle: Duration::from_secs(120),
        }
    }
}

/// A connection may be taken to make room only after this much quiet: one in the middle of
/// an exchange is not.
const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// The open connections: when each last moved a byte, and how to close it.
struct Open {
    started: Instant,
    next_id: u64,
    connections: HashMap<u64, (Arc<AtomicU64>, Arc<Notify>)>,
}

impl Open {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Closes the connection quiet longest, if one has been quiet for `at_least`.
    fn evict_quietest(&mut self, at_least: Duration) -> bool {
        let now = self.now_ms();
        let quietest = self
            .connections
            .iter()
            .map(|(id, (active, _))| (*id, now.saturating_sub(active.load(Ordering::Relaxed))))
            .filter(|(_, quiet)| *quiet >= at_least.as_millis() as u64)
            .max_by_key(|(_, quiet)| *quiet);
        match quietest.and_then(|(id, _)| self.connections.remove(&id)) {
            Some((_, close)) => {
                close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes every connection quiet for `at_least`.
    fn close_idle(&mut self, at_least: Duration) {
        let now = self.now_ms();
        self.connections.retain(|_, (active, close)| {
            let idle =
                now.saturating_sub(active.load(Ordering::Relaxed)) >= at_least.as_millis() as u64;
            if idle {
                close.notify_one();
            }
            !idle
        });
    }
}

fn open_connections(open: &Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
    open.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting, lets requests in flight
/// finish, and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<crate::tls::ServerTls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(Mutex::new(Open {
        started: Instant::now(),
        next_id: 0,
        connections: HashMap::new(),
    }));
    let (stopping, stop) = watch::channel(false);
    let sweeper = tokio::spawn(close_idle(open.clone(), limits.idle));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: the quietest connection makes room.
                tracing::warn!(error = %e, "could not accept a connection");
                if !open_connections(&open).evict_quietest(Duration::ZERO) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        // Small answers and stream chunks go out at once: without TCP_NODELAY, Nagle's
        // algorithm and the peer's delayed ACK hold each exchange for tens of milliseconds.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
        let Some((id, active, close)) = admit(&open, limits.max_connections) else {
            tracing::warn!(%remote, "too many connections, none quiet: a new one is refused");
            continue;
        };
        let io = Tracked {
            inner: tcp,
            active,
            started: open_connections(&open).started,
        };
        let app = app.clone();
        let (open, stop, http) = (open.clone(), stop.clone(), http.clone());
        let acceptor = tls.as_ref().map(|tls| tls.acceptor());
        tasks.spawn(async move {
            let served = Served {
                app,
                remote,
                http,
                close,
                stop,
            };
            match acceptor {
                None => served.run(io).await,
                // The handshake counts as reading the request's head.
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(limits.header_read, acceptor.accept(io));
                    tokio::select! {
                        handshake = handshake => match handshake {
                            Ok(Ok(tls)) => served.run(tls).await,
                            Ok(Err(e)) => tracing::debug!(%remote, error = %e, "a TLS handshake failed"),
                            Err(_) => tracing::debug!(%remote, "a TLS handshake took too long"),
                        },
                        () = served.close.notified() => {}
                    }
                }
            }
            open_connections(&open).connections.remove(&id);
        });
        // Reap finished connection tasks as we go.
        while tasks.try_join_next().is_some() {}
    }
    let _ = stopping.send(true);
    drop(listener);
    while tasks.join_next().await.is_some() {}
    sweeper.abort();
    Ok(())
}

/// One connection's HTTP, over TCP or TLS.
struct Served {
    app: Router,
    remote: std::net::SocketAddr,
    http: hyper::server::conn::http1::Builder,
    /// Closes the connection at once (it was quiet longest, or idle too long).
    close: Arc<Notify>,
    stop: watch::Receiver<bool>,
}

impl Served {
    async fn run<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (app, remote) = (self.app.clone(), self.remote);
        let service = hyper::service::service_fn(move |mut request| {
            request.extensions_mut().insert(ConnectInfo(remote));
            tower::ServiceExt::oneshot(app.clone(), request)
        });
        let connection = self.http.serve_connection(TokioIo::new(io), service);
        let mut connection = std::pin::pin!(connection);
        let stopping = tokio::select! {
            _ = connection.as_mut() => false,
            () = self.close.notified() => false,
            stopped = self.stop.wait_for(|stopping| *stopping) => stopped.is_ok(),
        };
        if stopping {
            // Finish the request in flight, take no other.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Registers a new connection, making room by closing the quietest one when at the cap.
fn admit(open: &Mutex<Open>, max: usize) -> Option<(u64, Arc<AtomicU64>, Arc<Notify>)> {
    let mut open = open_connections(open);
    if open.connections.len() >= max.max(1) && !open.evict_quietest(EVICTABLE_AFTER) {
        return None;
    }
    let id = open.next_id;
    open.next_id += 1;
    let active = Arc::new(AtomicU64::new(open.now_ms()));
    let close = Arc::new(Notify::new());
    open.connections.insert(id, (active.clone(), close.clone()));
    Some((id, active, close))
}

/// Closes connections idle for `idle`, checking a few times per `idle`.
async fn close_idle(open: Arc<Mutex<Open>>, idle: Duration) {
    let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        open_connections(&open).close_idle(idle);
    }
}

/// A connection's socket that notes when it last moved a byte (milliseconds since `started`,
/// the clock of [`Open`]).
struct Tracked {
    inner: TcpStream,
    active: Arc<AtomicU64>,
    started: Instant,
}

impl Tracked {
    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.active.store(now, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, bytes);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
