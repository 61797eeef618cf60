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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

pub use ferry_node::config::ConnectionLimits;

/// A connection may be taken to make room only after this much quiet: one in the middle of
/// an exchange is not.
const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// The open connections: when each last moved a byte, and how to close it.
struct Open {
    started: Instant,
    next_id: u64,
    connections: HashMap<u64, Connection>,
}

/// What the accept loop knows of an open connection.
struct Connection {
    /// When it last moved a byte (milliseconds on [`Open::started`]'s clock).
    active: Arc<AtomicU64>,
    /// Requests it has in flight: a connection whose handler is at work is never closed for
    /// quiet (a `sync now` may take minutes before it answers).
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

impl Connection {
    /// How long it has been quiet, if it is idle (no request in flight).
    fn quiet_for(&self, now: u64) -> Option<u64> {
        (self.busy.load(Ordering::Relaxed) == 0)
            .then(|| now.saturating_sub(self.active.load(Ordering::Relaxed)))
    }
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
            .filter_map(|(id, c)| Some((*id, c.quiet_for(now)?)))
            .filter(|(_, quiet)| *quiet >= at_least.as_millis() as u64)
            .max_by_key(|(_, quiet)| *quiet);
        match quietest.and_then(|(id, _)| self.connections.remove(&id)) {
            Some(connection) => {
                connection.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes every connection quiet for `at_least`.
    fn close_idle(&mut self, at_least: Duration) {
        let now = self.now_ms();
        self.connections.retain(|_, connection| {
            let idle = connection
                .quiet_for(now)
                .is_some_and(|quiet| quiet >= at_least.as_millis() as u64);
            if idle {
                connection.close.notify_one();
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
    tls: Option<Arc<ferry_node::tls::ServerTls>>,
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
        let Some((id, active, busy, close)) = admit(&open, limits.max_connections) else {
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
                busy,
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
    busy: Arc<AtomicUsize>,
    /// Closes the connection at once (it was quiet longest, or idle too long).
    close: Arc<Notify>,
    stop: watch::Receiver<bool>,
}

impl Served {
    async fn run<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (app, remote, busy) = (self.app.clone(), self.remote, self.busy.clone());
        let service = hyper::service::service_fn(move |mut request| {
            request.extensions_mut().insert(ConnectInfo(remote));
            let working = InFlight::start(&busy);
            let answered = tower::ServiceExt::oneshot(app.clone(), request);
            async move {
                let answer = answered.await;
                drop(working);
                answer
            }
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

/// A request in flight on a connection, counted until it is answered (or dropped).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(busy: &Arc<AtomicUsize>) -> InFlight {
        busy.fetch_add(1, Ordering::Relaxed);
        InFlight(busy.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A new connection's id and handles: when it last moved a byte, its requests in flight, and
/// what closes it.
type Admitted = (u64, Arc<AtomicU64>, Arc<AtomicUsize>, Arc<Notify>);

/// Registers a new connection, making room by closing the quietest one when at the cap.
fn admit(open: &Mutex<Open>, max: usize) -> Option<Admitted> {
    let mut open = open_connections(open);
    if open.connections.len() >= max.max(1) && !open.evict_quietest(EVICTABLE_AFTER) {
        return None;
    }
    let id = open.next_id;
    open.next_id += 1;
    let connection = Connection {
        active: Arc::new(AtomicU64::new(open.now_ms())),
        busy: Arc::default(),
        close: Arc::new(Notify::new()),
    };
    let admitted = (
        id,
        connection.active.clone(),
        connection.busy.clone(),
        connection.close.clone(),
    );
    open.connections.insert(id, connection);
    Some(admitted)
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
