//! Rendering an [`exchange::Response`](crate::oauth::exchange::Response) as HTTP.

use crate::oauth::exchange::Response as Exchange;
use bytes::Bytes;
use tollgate_core::OAuthError;
use warp::http::{header, HeaderName, HeaderValue, Response, StatusCode};

/// The response as HTTP. JSON answers are `application/json` and, unless they set their own
/// `Cache-Control`, `no-store` with `Pragma: no-cache` (RFC 6749 §5.1).
pub fn render(exchange: Exchange) -> Response<Bytes> {
    let json = exchange.body.is_some();
    let mut response = Response::new(exchange.body.map(Bytes::from).unwrap_or_default());
    *response.status_mut() =
        StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if json {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if !exchange.headers.iter().any(|(n, _)| *n == "cache-control") {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    for (name, value) in exchange.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// An RFC 6749 error body under the given status.
pub fn oauth_error_with_status(status: u16, error: &OAuthError) -> Response<Bytes> {
    render(Exchange::error_with_status(status, error))
}
