//! One JWKS fetch over HTTP(S), within the operator's limits (CONTRACT §3, `[oauth.jwks_endpoint]`).
//!
//! Built on reqwest (hyper and rustls underneath, which the server already uses): connection and
//! read timeouts, and a deadline for the whole fetch, so that an IdP that never answers costs at
//! most `connection_timeout + read_timeout`. The body is counted while it streams and abandoned
//! at `size_limit_bytes`. Redirects are followed only within the same scheme, host and port
//! (at most three), and every URL — the first and each redirect — must pass the same policy as
//! registration: https, or http on loopback unless `allow_insecure_http`.
//! No system proxy is used: the JWKS URI is contacted directly.

use crate::oauth::acceptable_jwks_uri;
use std::time::Duration;

/// The limits of a fetch.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub connection_timeout: Duration,
    pub read_timeout: Duration,
    pub size_limit_bytes: usize,
    pub allow_insecure_http: bool,
}

/// A fetched JWKS document and the freshness its response declared.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, or 0 for `no-cache`/`no-store`; `None` when absent.
    pub max_age: Option<u64>,
}

/// Why a fetch failed; the text names the URI's problem, never a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError(pub String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An HTTP client for JWKS URIs.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    settings: FetchSettings,
}

const MAX_REDIRECTS: usize = 3;

impl Fetcher {
    pub fn new(settings: FetchSettings) -> Fetcher {
        let insecure = settings.allow_insecure_http;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let first = &attempt.previous()[0];
            let next = attempt.url();
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if next.scheme() != first.scheme()
                || next.host_str() != first.host_str()
                || next.port_or_known_default() != first.port_or_known_default()
            {
                attempt.error("redirect to another host")
            } else if let Err(e) = acceptable_jwks_uri(next.as_str(), insecure) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connection_timeout)
            .read_timeout(settings.read_timeout)
            .redirect(policy)
            .no_proxy()
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with static settings builds");
        Fetcher { client, settings }
    }

    /// GETs `uri`, within the limits.
    pub async fn fetch(&self, uri: &str) -> Result<Fetched, FetchError> {
        acceptable_jwks_uri(uri, self.settings.allow_insecure_http).map_err(FetchError)?;
        let deadline = self.settings.connection_timeout + self.settings.read_timeout;
        match tokio::time::timeout(deadline, self.get(uri)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError(format!(
                "no complete answer within {} ms",
                deadline.as_millis()
            ))),
        }
    }

    async fn get(&self, uri: &str) -> Result<Fetched, FetchError> {
        let limit = self.settings.size_limit_bytes;
        let mut response = self
            .client
            .get(uri)
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .send()
            .await
            .map_err(|e| FetchError(describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError(format!("answered HTTP {}", status.as_u16())));
        }
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(FetchError(format!(
                "the JWKS is larger than size_limit_bytes ({limit})"
            )));
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError(describe(&e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(FetchError(format!(
                    "the JWKS is larger than size_limit_bytes ({limit})"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }
}

/// A reqwest error in a few words (its `Display` can embed the whole URL chain).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_redirect() {
        use std::error::Error as _;
        match e.source() {
            Some(cause) => format!("redirect refused: {cause}"),
            None => "redirect refused".into(),
        }
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read".into()
    } else {
        "the request failed".into()
    }
}

/// The freshness a response declares: `max-age` (`s-maxage` is for shared caches, which we are
/// not), 0 for `no-cache`/`no-store`, `None` without either.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let mut found = None;
    for value in headers.get_all(reqwest::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(0);
            }
            if name.eq_ignore_ascii_case("max-age") {
                if let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok()) {
                    found = Some(found.map_or(secs, |f: u64| f.min(secs)));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::max_age;
    use reqwest::header::{HeaderMap, HeaderValue, CACHE_CONTROL};

    fn of(values: &[&str]) -> Option<u64> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        max_age(&h)
    }

    #[test]
    fn cache_control_is_read_like_a_private_cache() {
        assert_eq!(of(&[]), None);
        assert_eq!(of(&["public, max-age=600"]), Some(600));
        assert_eq!(of(&["MAX-AGE=\"60\""]), Some(60));
        assert_eq!(of(&["max-age=600", "max-age=30"]), Some(30));
        assert_eq!(of(&["max-age=600, no-cache"]), Some(0));
        assert_eq!(of(&["no-store"]), Some(0));
        assert_eq!(of(&["max-age=-1"]), None);
        assert_eq!(of(&["s-maxage=5"]), None);
        assert_eq!(of(&["max-age=99999999999999999999999"]), None);
    }
}
