//! An HTTP exchange as the OAuth endpoints see it: no warp, no hyper. The HTTP layer fills a
//! [`Request`] and renders a [`Response`]; this is also the one place an [`OAuthError`]
//! becomes a status, a body and headers.

use bytes::Bytes;
use std::collections::BTreeMap;
use tollgate_core::OAuthError;

/// A request to an endpoint, after routing.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The tenant of the path (`/t/{tenant}/…`, else `carbon.super`).
    pub path_tenant: String,
    /// Whether the path carried a `/t/{tenant}/` prefix.
    pub tenant_in_path: bool,
    /// The raw query string (for `?tenantDomain=`).
    pub query: Option<String>,
    /// Header names lower-cased; a header sent twice keeps its values joined by ", ".
    pub headers: BTreeMap<String, String>,
    /// The client's address (of the connection: a proxy's, behind one).
    pub peer: Option<std::net::IpAddr>,
    pub body: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The tenant the request addresses: the path's, or `?tenantDomain=` (CONTRACT §5). Both
    /// present and different is `invalid_request`.
    pub fn tenant(&self) -> Result<String, OAuthError> {
        let from_query = self.query.as_deref().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "tenantDomain")
                .map(|(_, v)| v.into_owned())
        });
        match from_query {
            None => Ok(self.path_tenant.clone()),
            Some(t) if !crate::http::routes::valid_tenant(&t) => Err(OAuthError::invalid_request(
                "tenantDomain is not a valid tenant name",
            )),
            Some(t) if self.tenant_in_path && t != self.path_tenant => Err(
                OAuthError::invalid_request("tenantDomain differs from the tenant in the path"),
            ),
            Some(t) => Ok(t),
        }
    }
}

/// A response: status, headers, JSON body (or none).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// JSON text, serialized when the response is made: straight from the answer's own type,
    /// not through a `serde_json::Value` (whose map cost a token answer ~9 allocations).
    pub body: Option<Vec<u8>>,
}

impl Response {
    /// A JSON answer. Every JSON answer carries `Cache-Control: no-store` and `Pragma: no-cache`
    /// (RFC 6749 §5.1): none of them may be cached.
    pub fn json(status: u16, body: impl serde::Serialize) -> Response {
        Response {
            status,
            headers: Vec::new(),
            // Our answers are plain data (no maps with non-string keys): this cannot fail.
            body: serde_json::to_vec(&body).ok(),
        }
    }

    /// An empty answer (e.g. 204 for DELETE).
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// An RFC 6749 §5.2 error with the status its code prescribes. A 401 answers a request
    /// that sent Basic credentials with `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    pub fn error(error: &OAuthError, basic_sent: bool) -> Response {
        let response = Response::error_with_status(error.http_status(), error);
        if error.http_status() == 401 && basic_sent {
            response.with_header("www-authenticate", "Basic realm=\"tollgate\"")
        } else {
            response
        }
    }

    /// An RFC 6749 error body under another status (404, 405, 413, …).
    pub fn error_with_status(status: u16, error: &OAuthError) -> Response {
        Response::json(status, error)
    }
}
