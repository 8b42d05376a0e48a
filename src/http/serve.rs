//! The connection loop: accepts TCP connections and serves each with hyper's
//! HTTP/1.1, within bounds an idle or slow client cannot stretch.
//!
//! - **Header reading is bounded** ([`Limits::header_timeout`]): a client must
//!   send a whole request head within it, and a kept-alive connection must start
//!   its next request within it, or the connection is closed. (hyper starts the
//!   timer when it begins reading a head, i.e. at connect and after each answer.)
//! - **A request is bounded** ([`Limits::request_timeout`]): a handler that has
//!   not answered within it (a body that trickles in, say) gets a 408.
//! - **Connections are capped** ([`Limits::max_connections`]). At the cap, a new
//!   connection takes the place of the connection that has waited longest
//!   without a request in flight, preferring one that never sent a request: a
//!   crowd of sockets that send nothing cannot lock out `/healthz`, and the
//!   process stays well under the usual limit of 1,024 open files. Only when
//!   every connection is busy is the newcomer closed at once.
//! - **Shutdown is bounded** ([`Limits::shutdown_grace`]): on stop the listener
//!   closes, idle connections close, requests in flight may finish within the
//!   grace, and whatever is still open then (a half-sent request) is dropped.
//!
//! axum's own `serve` has none of the first three and waits forever for the
//! last one; this loop is what it does, plus the bounds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tower::ServiceExt;

/// The bounds of the connection loop (`traguardo serve` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once at most.
    pub max_connections: usize,
    /// Time to send a whole request head, and to start the next request on a
    /// kept-alive connection.
    pub header_timeout: Duration,
    /// Time for a request to be answered (its body read and its handler run).
    pub request_timeout: Duration,
    /// On stop, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Request heads up to this size reach the router, which answers an over-long
/// URI (414) or oversized headers (431) as problem+json; hyper's own answers to
/// those have empty bodies.
const MAX_HEAD_BYTES: usize = 1024 * 1024;
/// Header lines hyper parses at most (the router refuses more than
/// [`super::limits::MAX_HEADERS`]).
const MAX_HEADER_LINES: usize = 1000;

/// What the loop knows of one open connection.
struct Conn {
    /// Requests in flight: from the head read until the answer's body is sent.
    in_flight: AtomicUsize,
    /// Requests begun on it.
    requests: AtomicU64,
    /// When it last finished a request (or was accepted), in ms since `epoch`.
    idle_since_ms: AtomicU64,
}

/// The open connections, to pick one to close at the cap.
#[derive(Default)]
struct Open {
    conns: HashMap<u64, (Arc<Conn>, Option<AbortHandle>)>,
}

impl Open {
    /// The connection to close to make room: no request in flight; one that
    /// never sent a request before one that did; the longest idle first.
    fn victim(&mut self) -> Option<AbortHandle> {
        let id = self
            .conns
            .iter()
            .filter(|(_, (c, _))| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, (c, _))| {
                (
                    c.requests.load(Ordering::Acquire) > 0,
                    c.idle_since_ms.load(Ordering::Acquire),
                )
            })
            .map(|(id, _)| *id)?;
        self.conns.remove(&id).and_then(|(_, abort)| abort)
    }
}

/// Removes a connection from [`Open`] when its task ends, however it ends.
struct Registered {
    id: u64,
    open: Arc<Mutex<Open>>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .conns
            .remove(&self.id);
    }
}

/// One request in flight on a connection, until its answer's body is dropped.
struct InFlight {
    conn: Arc<Conn>,
    epoch: Instant,
}

impl InFlight {
    fn enter(conn: Arc<Conn>, epoch: Instant) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.requests.fetch_add(1, Ordering::AcqRel);
        InFlight { conn, epoch }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn
            .idle_since_ms
            .store(millis(self.epoch), Ordering::Release);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// An answer's body that keeps its request counted as in flight until sent
/// (a live feed is a request in flight for as long as it streams).
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` until `stop` turns true, then shuts down within
/// [`Limits::shutdown_grace`].
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    // Around the router as a whole, not each route (see `super::router_with`).
    let service = tower::ServiceBuilder::new()
        // The 408 of the timeout is problem+json too.
        .layer(axum::middleware::from_fn(super::problem::problems_only))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .service(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADER_LINES);
    let epoch = Instant::now();
    let open: Arc<Mutex<Open>> = Arc::default();
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        let (stream, remote) = tokio::select! {
            () = stopped(&mut stop) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it
                    // was taken: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let at_cap = {
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            if open.conns.len() >= limits.max_connections {
                match open.victim() {
                    Some(victim) => {
                        victim.abort();
                        false
                    }
                    None => true,
                }
            } else {
                false
            }
        };
        if at_cap {
            tracing::warn!(%remote, limit = limits.max_connections, "every connection is busy: refused one");
            drop(stream);
            continue;
        }
        next_id += 1;
        let id = next_id;
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(millis(epoch)),
        });
        open.lock()
            .unwrap_or_else(|e| e.into_inner())
            .conns
            .insert(id, (conn.clone(), None));
        let registered = Registered {
            id,
            open: open.clone(),
        };
        let abort = tasks.spawn(serve_connection(
            stream,
            remote,
            service.clone(),
            http.clone(),
            conn,
            epoch,
            stop.clone(),
            registered,
        ));
        if let Some(entry) = open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .conns
            .get_mut(&id)
        {
            entry.1 = Some(abort);
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "shutdown grace is over: closing the connections still open"
        );
        tasks.shutdown().await;
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection<S>(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    service: S,
    http: hyper::server::conn::http1::Builder,
    conn: Arc<Conn>,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
    _registered: Registered,
) where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let per_request = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = InFlight::enter(conn.clone(), epoch);
        request.extensions_mut().insert(ConnectInfo(remote));
        let answer = service.clone().oneshot(request.map(Body::new));
        async move {
            let response = answer.await?;
            Ok::<_, std::convert::Infallible>(response.map(|inner| {
                Body::new(Tracked {
                    inner,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    let connection = http.serve_connection(TokioIo::new(stream), per_request);
    tokio::pin!(connection);
    let stopping = tokio::select! {
        served = connection.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(error = %e, %remote, "connection ended");
            }
            false
        }
        () = stopped(&mut stop) => true,
    };
    if stopping {
        // Idle connections close now; a request in flight may finish (the
        // loop drops it when the grace is over).
        connection.as_mut().graceful_shutdown();
        let _ = connection.as_mut().await;
    }
}
