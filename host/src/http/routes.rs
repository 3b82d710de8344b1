//! The endpoints, each under its bare path (tenant `carbon.super`) and under `/t/{tenant}/`.
//! Routes only route: they build an [`exchange::Request`] and render what the OAuth or admin
//! code answers.

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
use warp::http::StatusCode;
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
        .and(warp::body::stream().and_then(|s| async move { read_body(Box::pin(s)).await }))
        .map(
            |query: Option<String>, headers: warp::http::HeaderMap, body: Bytes| {
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
                    body,
                }
            },
        )
}

/// Every route, with JSON errors for whatever no route takes.
pub fn routes(
    oauth: Arc<OAuth>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with = move || {
        let oauth = oauth.clone();
        warp::any().map(move || oauth.clone())
    };
    macro_rules! endpoint {
        ($method:expr, $path:expr, |$o:ident, $r:ident $(, $p:ident: $t:ty)*| $body:expr) => {
            tenant()
                .and($path)
                .and($method)
                .and(with())
                .and(exchange())
                .then(
                    move |(tenant, in_path): (String, bool), $($p: $t,)* $o: Arc<OAuth>, mut $r: Request| async move {
                        $r.path_tenant = tenant;
                        $r.tenant_in_path = in_path;
                        render($body).into_response()
                    },
                )
        };
    }
    let token = endpoint!(warp::post(), warp::path!("oauth2" / "token"), |o, r| o
        .token(&r)
        .await);
    let introspect = endpoint!(
        warp::post(),
        warp::path!("oauth2" / "introspect"),
        |o, r| o.introspect(&r).await
    );
    let revoke = endpoint!(warp::post(), warp::path!("oauth2" / "revoke"), |o, r| o
        .revoke(&r)
        .await);
    let jwks = endpoint!(warp::get(), warp::path!("oauth2" / "jwks"), |o, r| o
        .jwks(&r)
        .await);
    let discovery = endpoint!(
        warp::get(),
        warp::path!(".well-known" / "openid-configuration")
            .or(warp::path!(".well-known" / "oauth-authorization-server"))
            .unify()
            .or(warp::path!(
                "oauth2" / "token" / ".well-known" / "openid-configuration"
            ))
            .unify(),
        |o, r| o.discovery(&r)
    );
    let dcr = warp::path!("api" / "identity" / "oauth2" / "dcr" / "v1.1" / "register");
    let dcr_one =
        || warp::path!("api" / "identity" / "oauth2" / "dcr" / "v1.1" / "register" / String);
    let register = endpoint!(warp::post(), dcr, |o, r| admin::dcr::register(&o, &r).await);
    let dcr_get = endpoint!(warp::get(), dcr_one(), |o, r, id: String| admin::dcr::get(
        &o, &r, &id
    )
    .await);
    let dcr_put = endpoint!(warp::put(), dcr_one(), |o, r, id: String| {
        admin::dcr::update(&o, &r, &id).await
    });
    let dcr_delete = endpoint!(warp::delete(), dcr_one(), |o, r, id: String| {
        admin::dcr::delete(&o, &r, &id).await
    });
    let idps = || warp::path!("api" / "server" / "v1" / "identity-providers");
    let idp_one = || warp::path!("api" / "server" / "v1" / "identity-providers" / String);
    let idp_create = endpoint!(warp::post(), idps(), |o, r| admin::idps::create(&o, &r)
        .await);
    let idp_list = endpoint!(warp::get(), idps(), |o, r| admin::idps::list(&o, &r).await);
    let idp_get = endpoint!(warp::get(), idp_one(), |o, r, id: String| admin::idps::get(
        &o, &r, &id
    )
    .await);
    let idp_put = endpoint!(warp::put(), idp_one(), |o, r, id: String| {
        admin::idps::replace(&o, &r, &id).await
    });
    let idp_delete = endpoint!(warp::delete(), idp_one(), |o, r, id: String| {
        admin::idps::delete(&o, &r, &id).await
    });
    let health = tenant()
        .and(warp::path!("health"))
        .and(warp::get())
        .and(with())
        .then(|_: (String, bool), o: Arc<OAuth>| health(o));
    let metrics = tenant()
        .and(warp::path!("metrics"))
        .and(warp::get())
        .and(with())
        .map(|_: (String, bool), o: Arc<OAuth>| {
            warp::reply::with_header(
                o.metrics.render(),
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .into_response()
        });

    token
        .or(introspect)
        .unify()
        .or(revoke)
        .unify()
        .or(jwks)
        .unify()
        .or(discovery)
        .unify()
        .or(register)
        .unify()
        .or(dcr_get)
        .unify()
        .or(dcr_put)
        .unify()
        .or(dcr_delete)
        .unify()
        .or(idp_create)
        .unify()
        .or(idp_list)
        .unify()
        .or(idp_get)
        .unify()
        .or(idp_put)
        .unify()
        .or(idp_delete)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .recover(rejection)
        .unify()
}

/// `{"status":"ok"}` while the database answers; 503 naming the failure otherwise.
async fn health(oauth: Arc<OAuth>) -> warp::reply::Response {
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
