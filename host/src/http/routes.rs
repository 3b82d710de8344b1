//! The endpoints, each under its bare path (tenant `carbon.super`) and under `/t/{tenant}/`.
//! Routes only route: they build an [`exchange::Request`] and render what the OAuth or admin
//! code answers.

use super::peers::Peer;
use super::reply::{self, render};
use crate::admin;
use crate::oauth::exchange::{Request, Response};
use crate::oauth::OAuth;
use bytes::{Buf, Bytes};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use tollgate_core::OAuthError;
use warp::http::{Method, StatusCode};
use warp::reject::Rejection;
use warp::{Filter, Reply};

pub use crate::oauth::SUPER_TENANT;

/// A tenant name that does not match `[a-z0-9][a-z0-9.-]{0,62}`.
#[derive(Debug)]
struct InvalidTenant;
impl warp::reject::Reject for InvalidTenant {}

/// A body larger than `[server] max_body_bytes` (sent without a Content-Length).
#[derive(Debug)]
struct TooLarge;
impl warp::reject::Reject for TooLarge {}

/// A body that could not be read.
#[derive(Debug)]
struct BadBody;
impl warp::reject::Reject for BadBody {}

/// Whether `name` is a valid tenant name (CONTRACT §5).
pub fn valid_tenant(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
}

/// `/t/{tenant}/…` extracts the tenant (and that it was in the path); any other path is
/// `carbon.super`. A path under `/t/` whose tenant name is invalid is rejected as such.
fn tenant() -> impl Filter<Extract = ((String, bool),), Error = Rejection> + Clone {
    let prefixed =
        warp::path("t")
            .and(warp::path::param::<String>())
            .and_then(|name: String| async move {
                if valid_tenant(&name) {
                    Ok((name, true))
                } else {
                    Err(warp::reject::custom(InvalidTenant))
                }
            });
    let bare = warp::path::peek().and_then(|rest: warp::path::Peek| async move {
        if rest.as_str() == "t" || rest.as_str().starts_with("t/") {
            Err(warp::reject::custom(InvalidTenant))
        } else {
            Ok((SUPER_TENANT.to_string(), false))
        }
    });
    prefixed.or(bare).unify()
}

/// The body, read whole. The connection loop bounds it already (`Limited`); a body cut off by
/// that bound is rejected as too large.
async fn read_body(
    mut stream: impl futures::Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
) -> Result<Bytes, Rejection> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(mut buf) => {
                while buf.has_remaining() {
                    let part = buf.chunk();
                    body.extend_from_slice(part);
                    let n = part.len();
                    buf.advance(n);
                }
            }
            Err(e) => {
                let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
                while let Some(err) = source {
                    if err.is::<http_body_util::LengthLimitError>() {
                        return Err(warp::reject::custom(TooLarge));
                    }
                    source = err.source();
                }
                return Err(warp::reject::custom(BadBody));
            }
        }
    }
    Ok(body.freeze())
}

/// The request as the endpoints see it (the tenant is filled in by the route).
fn exchange() -> impl Filter<Extract = (Request,), Error = Rejection> + Clone {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    query
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(warp::body::stream().and_then(|s| async move { read_body(Box::pin(s)).await }))
        .map(
            |query: Option<String>,
             headers: warp::http::HeaderMap,
             peer: Option<Peer>,
             body: Bytes| {
                let mut map: BTreeMap<String, String> = BTreeMap::new();
                for (name, value) in &headers {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    map.entry(name.as_str().to_string())
                        .and_modify(|v| {
                            v.push_str(", ");
                            v.push_str(&value)
                        })
                        .or_insert(value);
                }
                Request {
                    path_tenant: SUPER_TENANT.to_string(),
                    tenant_in_path: false,
                    query,
                    headers: map,
                    peer: peer.map(|Peer(ip)| ip),
                    body,
                }
            },
        )
}

/// Every route, with JSON errors for whatever no route takes.
///
/// One filter extracts what every endpoint needs (tenant, method, path, request) and
/// [`dispatch`] picks the endpoint with a plain `match`: a chain of a few dozen warp filters
/// costs minutes of type checking and reads no better.
pub fn routes(
    oauth: Arc<OAuth>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    tenant()
        .and(warp::method())
        .and(warp::path::tail())
        .and(warp::any().map(move || oauth.clone()))
        .and(exchange())
        .then(
            |(tenant, in_path): (String, bool),
             method: Method,
             tail: warp::path::Tail,
             oauth: Arc<OAuth>,
             mut request: Request| async move {
                request.path_tenant = tenant;
                request.tenant_in_path = in_path;
                dispatch(&oauth, &method, tail.as_str(), request).await
            },
        )
        .recover(rejection)
        .unify()
}

const DCR: [&str; 6] = ["api", "identity", "oauth2", "dcr", "v1.1", "register"];
const IDPS: [&str; 4] = ["api", "server", "v1", "identity-providers"];

/// The endpoint at `path` (below the tenant prefix) for `method`.
async fn dispatch(o: &OAuth, method: &Method, path: &str, r: Request) -> warp::reply::Response {
    let segments: Vec<&str> = path.split('/').collect();
    let (get, post, put, delete) = (
        method == Method::GET,
        method == Method::POST,
        method == Method::PUT,
        method == Method::DELETE,
    );
    let response = match segments.as_slice() {
        ["oauth2", "token"] if post => o.token(&r).await,
        ["oauth2", "introspect"] if post => o.introspect(&r).await,
        ["oauth2", "revoke"] if post => o.revoke(&r).await,
        ["oauth2", "jwks"] if get => o.jwks(&r).await,
        [".well-known", "openid-configuration" | "oauth-authorization-server"]
        | ["oauth2", "token", ".well-known", "openid-configuration"]
            if get =>
        {
            o.discovery(&r)
        }
        s if s == DCR && post => admin::dcr::register(o, &r).await,
        [s @ .., id] if *s == DCR && get => admin::dcr::get(o, &r, id).await,
        [s @ .., id] if *s == DCR && put => admin::dcr::update(o, &r, id).await,
        [s @ .., id] if *s == DCR && delete => admin::dcr::delete(o, &r, id).await,
        s if s == IDPS && post => admin::idps::create(o, &r).await,
        s if s == IDPS && get => admin::idps::list(o, &r).await,
        [s @ .., id] if *s == IDPS && get => admin::idps::get(o, &r, id).await,
        [s @ .., id] if *s == IDPS && put => admin::idps::replace(o, &r, id).await,
        [s @ .., id] if *s == IDPS && delete => admin::idps::delete(o, &r, id).await,
        ["health"] if get => return health(o).await,
        ["metrics"] if get => {
            return warp::reply::with_header(
                o.metrics.render(),
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .into_response()
        }
        s if is_endpoint(s) => return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => return error(StatusCode::NOT_FOUND, "no endpoint at this path"),
    };
    render(response).into_response()
}

/// Whether `segments` name an endpoint (for 405 rather than 404).
fn is_endpoint(segments: &[&str]) -> bool {
    let item_of = |base: &[&str]| {
        segments.len() == base.len() + 1
            && segments[..base.len()] == *base
            && !segments[base.len()].is_empty()
    };
    matches!(
        segments,
        ["oauth2", "token" | "introspect" | "revoke" | "jwks"]
            | [
                ".well-known",
                "openid-configuration" | "oauth-authorization-server"
            ]
            | ["oauth2", "token", ".well-known", "openid-configuration"]
            | ["health"]
            | ["metrics"]
    ) || segments == DCR
        || segments == IDPS
        || item_of(&DCR)
        || item_of(&IDPS)
}

fn error(status: StatusCode, description: &str) -> warp::reply::Response {
    reply::oauth_error_with_status(status.as_u16(), &OAuthError::invalid_request(description))
        .into_response()
}

/// `{"status":"ok"}` while the database answers; 503 naming the failure otherwise.
async fn health(oauth: &OAuth) -> warp::reply::Response {
    match oauth.store.ping().await {
        Ok(()) => render(Response::json(200, serde_json::json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::warn!("health: database unavailable: {e}");
            render(Response::json(
                503,
                serde_json::json!({"status": "unavailable", "database": "unreachable"}),
            ))
            .into_response()
        }
    }
}

/// Rejections as RFC 6749-shaped JSON.
async fn rejection(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let (status, description) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "no endpoint at this path")
    } else if rejection.find::<InvalidTenant>().is_some() {
        (
            StatusCode::BAD_REQUEST,
            "invalid tenant name (expected [a-z0-9][a-z0-9.-]{0,62})",
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else if rejection.find::<TooLarge>().is_some()
        || rejection.find::<warp::reject::PayloadTooLarge>().is_some()
    {
        (StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
    } else {
        (StatusCode::BAD_REQUEST, "malformed request")
    };
    let error = OAuthError::invalid_request(description);
    Ok(reply::oauth_error_with_status(status.as_u16(), &error).into_response())
}
