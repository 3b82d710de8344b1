//! The connection loop: accept (at most `max_connections_per_ip` open per client address), TLS
//! handshake and request headers bounded in time (slow-loris), HTTP/1.1 or HTTP/2, the body
//! bound, each request bounded in time (a body that never ends gets 408), graceful shutdown.

use super::peers::{Peer, Peers};
use super::reply;
use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tollgate_core::OAuthError;
use warp::Filter;

/// At most this many request headers: HTTP/1.1 answers 431 beyond. This is hyper's own bound,
/// which holds when `max_headers` is left unset; setting it, even to the same 100, makes hyper
/// fill two 100-entry arrays on every request (~1.7k instructions, 2 % of a client_credentials
/// grant) where its default uses them uninitialised. `tests/limits.rs` pins the bound.
pub const MAX_HEADERS: usize = 100;
/// At most this many bytes of request headers.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Limits of the connection loop.
#[derive(Clone)]
pub struct ServeOptions {
    /// `[server] max_body_bytes`: larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long a client may take to send its request headers (and its TLS handshake).
    pub header_timeout: Duration,
    /// How long a request may take, its body included, before it is answered 408.
    pub request_timeout: Duration,
    /// Open connections one client address may hold.
    pub max_connections_per_ip: usize,
    /// How long open connections get to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_body_bytes: 65536,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections_per_ip: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `routes` on `listener` until `shutdown` completes, then lets open connections finish
/// (up to `shutdown_grace`).
pub async fn serve<F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    routes: F,
    metrics: Arc<Metrics>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter<Extract = (warp::reply::Response,), Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let service = warp::service(routes);
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    // Header bounds for both protocols: 100 headers (hyper's default, [`MAX_HEADERS`]) and
    // 64 KiB of them at most.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(100);
    let builder = Arc::new(builder);
    let peers = Peers::new(options.max_connections_per_ip);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(admitted) = peers.admit(peer.ip()) else {
            tracing::debug!(peer = %peer.ip(), "too many connections from one address; closed");
            metrics.connections_refused.inc();
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let metrics = metrics.clone();
        let max = options.max_body_bytes;
        let request_timeout = options.request_timeout;
        let hyper_service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut service = service.clone();
            let metrics = metrics.clone();
            async move {
                let route = route_label(request.uri().path());
                let response = if declared_length(&request).is_some_and(|n| n > max as u64) {
                    closing(413, "request body too large")
                } else {
                    let mut request = request.map(|body| Limited::new(body, max));
                    request.extensions_mut().insert(Peer(peer.ip()));
                    let call = tower_service::Service::call(&mut service, request);
                    match tokio::time::timeout(request_timeout, call).await {
                        Ok(Ok(r)) => {
                            r.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync())
                        }
                        Ok(Err(never)) => match never {},
                        Err(_) => closing(408, "the request took too long"),
                    }
                };
                metrics.count_request(route, response.status().as_u16());
                Ok::<_, Infallible>(response)
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = options.header_timeout;
        match &tls {
            None => {
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), hyper_service)
                    .into_owned();
                tokio::spawn(async move {
                    let _ = watcher.watch(connection).await;
                    drop(admitted);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!("TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake timed out");
                                return;
                            }
                        };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), hyper_service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                    drop(admitted);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}

/// The `Content-Length` a request declares, if any.
fn declared_length<B>(request: &hyper::Request<B>) -> Option<u64> {
    request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An `invalid_request` answer with `status` after which the connection closes: 413 (the body
/// is left unread) and 408 (the body may never end).
fn closing(
    status: u16,
    description: &'static str,
) -> hyper::Response<http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>> {
    let error = OAuthError::invalid_request(description);
    let mut response = reply::oauth_error_with_status(status, &error);
    // The body is left unread, so hyper closes the connection after this response: say so, or
    // a client that pools connections would send its next request into a closed one.
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response.map(|b| {
        http_body_util::Full::new(b)
            .map_err(|never| match never {})
            .boxed_unsync()
    })
}

/// A bounded label for metrics: the route, never the raw path (tenants and ids would make the
/// label set unbounded).
fn route_label(path: &str) -> &'static str {
    let path = match path.strip_prefix("/t/") {
        Some(rest) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => path,
    };
    match path {
        "/health" => "health",
        "/metrics" => "metrics",
        "/oauth2/token" => "token",
        "/oauth2/introspect" => "introspect",
        "/oauth2/revoke" => "revoke",
        "/oauth2/jwks" => "jwks",
        p if p.contains("/.well-known/") => "discovery",
        p if p.starts_with("/api/identity/oauth2/dcr/") => "dcr",
        p if p.starts_with("/api/server/v1/identity-providers") => "identity_providers",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(super::route_label("/t/acme/oauth2/token"), "token");
        assert_eq!(super::route_label("/oauth2/token"), "token");
        assert_eq!(super::route_label("/health"), "health");
        assert_eq!(super::route_label("/t/acme"), "other");
        assert_eq!(super::route_label("/anything/else"), "other");
    }
}
