//! The RPC server's accept loop, with the connection limits that jsonrpsee alone does not give.
//!
//! jsonrpsee counts HTTP requests and WebSocket sessions against one limit, so idle WebSocket
//! connections could hold every permit and have every HTTP request refused (HTTP 429). Here:
//! - HTTP requests and WebSocket sessions are served by two jsonrpsee services, each with a
//!   limit of its own ([`Limits::max_http_requests`], [`Limits::max_ws_sessions`]), so HTTP is
//!   served while every WebSocket slot is taken;
//! - the server holds at most [`Limits::max_connections`] TCP connections, and one IP address
//!   at most [`Limits::max_connections_per_ip`]: a connection past either is closed at once (a
//!   WebSocket session keeps its connection's place for its whole life, since the place goes with
//!   the socket);
//! - a connection that sends no request headers within [`Limits::idle_timeout`] (on arrival or
//!   between keep-alive requests) is closed, and a WebSocket that answers no ping for the
//!   inactivity limit is closed by jsonrpsee. Connections speak HTTP/1.1 (and WebSocket).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use jsonrpsee::server::{HttpBody, HttpResponse, StopHandle};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

const TARGET: &str = "altan::rpc";

/// The connection limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// TCP connections at once, of every kind.
    pub max_connections: usize,
    /// TCP connections at once from one IP address.
    pub max_connections_per_ip: usize,
    /// HTTP requests served at once (more are answered 429).
    pub max_http_requests: u32,
    /// WebSocket sessions at once (more are answered 429).
    pub max_ws_sessions: u32,
    /// How long a connection may go without sending request headers.
    pub idle_timeout: Duration,
}

/// Counts connections, in all and by IP address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A connection's place in the counts, given back when it is dropped.
#[derive(Debug)]
struct Place {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Place {
    /// Takes a place for a connection from `ip`, if the limits leave one.
    fn take(counts: &Arc<Mutex<Counts>>, ip: IpAddr, limits: &Limits) -> Option<Place> {
        let mut guard = counts.lock().unwrap_or_else(|p| p.into_inner());
        let from_ip = guard.by_ip.get(&ip).copied().unwrap_or(0);
        if guard.total >= limits.max_connections || from_ip >= limits.max_connections_per_ip {
            return None;
        }
        guard.total = guard.total.saturating_add(1);
        guard.by_ip.insert(ip, from_ip.saturating_add(1));
        Some(Place { counts: Arc::clone(counts), ip })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        guard.total = guard.total.saturating_sub(1);
        if let Some(count) = guard.by_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                guard.by_ip.remove(&self.ip);
            }
        }
    }
}

/// A TCP stream that holds its connection's [`Place`] for as long as it lives, also after
/// hyper hands it to a WebSocket session.
struct Counted {
    stream: TcpStream,
    _place: Place,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// What serves the requests of one connection: a jsonrpsee tower service.
pub trait RequestService:
    Service<
        hyper::Request<Incoming>,
        Response = HttpResponse<HttpBody>,
        Future: Send + 'static,
        Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    > + Clone
    + Send
    + 'static
{
}

impl<S> RequestService for S where
    S: Service<
            hyper::Request<Incoming>,
            Response = HttpResponse<HttpBody>,
            Future: Send + 'static,
            Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        > + Clone
        + Send
        + 'static
{
}

/// Whether a request asks to become a WebSocket.
fn is_websocket(request: &hyper::Request<Incoming>) -> bool {
    let has = |name: hyper::header::HeaderName, token: &str| {
        request.headers().get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(hyper::header::UPGRADE, "websocket") && has(hyper::header::CONNECTION, "upgrade")
}

/// Accepts connections until `stop` resolves, serving each with `http` for plain requests and
/// `ws` for WebSocket upgrades (`make` builds the two services of one connection).
pub async fn serve<S, F>(listener: TcpListener, limits: Limits, make: F, stop: StopHandle)
where
    F: Fn() -> (S, S) + Send + 'static,
    S: RequestService,
{
    let counts = Arc::new(Mutex::new(Counts::default()));
    let stopped = stop.clone().shutdown();
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(target: TARGET, %error, "cannot accept an RPC connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(place) = Place::take(&counts, remote.ip(), &limits) else {
            tracing::debug!(target: TARGET, %remote, "connection refused: the connection limits are reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (http, ws) = make();
        let io = Counted { stream, _place: place };
        tokio::spawn(serve_connection(io, remote, http, ws, limits, stop.clone()));
    }
}

async fn serve_connection<S: RequestService>(
    io: Counted,
    remote: SocketAddr,
    http: S,
    ws: S,
    limits: Limits,
    stop: StopHandle,
) {
    let route = tower::service_fn(move |request: hyper::Request<Incoming>| {
        let mut service = if is_websocket(&request) { ws.clone() } else { http.clone() };
        async move { service.call(request).await }
    });
    // HTTP/1.1 only: its header read timeout runs from the connection's start and between
    // keep-alive requests, so a connection that sends nothing is closed (HTTP/2 detection would
    // first wait for bytes without a bound).
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout);
    let connection =
        builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(route)).with_upgrades();
    tokio::pin!(connection);
    let stopped = stop.shutdown();
    tokio::pin!(stopped);
    let result = tokio::select! {
        result = &mut connection => result,
        _ = &mut stopped => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(target: TARGET, %remote, %error, "RPC connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            max_http_requests: 1,
            max_ws_sessions: 1,
            idle_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn places_are_bounded_per_ip_and_in_all_and_given_back() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap());
        let limits = limits(3, 2);
        let a1 = Place::take(&counts, a, &limits).unwrap();
        let _a2 = Place::take(&counts, a, &limits).unwrap();
        assert!(Place::take(&counts, a, &limits).is_none(), "two per address");
        let _b1 = Place::take(&counts, b, &limits).unwrap();
        assert!(Place::take(&counts, c, &limits).is_none(), "three in all");
        drop(a1);
        let _c1 = Place::take(&counts, c, &limits).expect("a dropped place is given back");
        let guard = counts.lock().unwrap();
        assert_eq!(guard.total, 3);
        assert_eq!(guard.by_ip.get(&a), Some(&1));
    }
}
