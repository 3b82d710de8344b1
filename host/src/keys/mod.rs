//! The shared key service (CONTRACT §7) and the one key policy.
//!
//! - [`jwk`]: what a usable signing key is, for fetched sets, inline `jwks` and certificates;
//! - [`fetch`]: one HTTP fetch of a `jwks_uri`, within the operator's limits;
//! - [`service`]: the per-process cache every component shares through host services —
//!   freshness, single flight, re-fetch cooldown, stale-if-error, bounded LRU.

pub mod fetch;
pub mod jwk;
pub mod service;

pub use fetch::{FetchSettings, Fetcher};
pub use service::{KeyMetrics, KeyService, KeyServiceSettings};

/// Whether `uri` may be registered as a `jwks_uri`: https, or http on a loopback host, or any
/// http when the operator allows it (CONTRACT §3, §5).
pub fn acceptable_jwks_uri(uri: &str, allow_insecure_http: bool) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("jwks_uri is not a valid URL: {e}"))?;
    // The WHATWG parser repairs `https:///x` into `https://x/`; a URI must name its host itself.
    let authority = uri.get(url.scheme().len()..).unwrap_or_default();
    if !authority.starts_with("://") || authority[3..].starts_with(['/', '\\']) {
        return Err("jwks_uri must be an absolute URL naming its host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("jwks_uri must not carry credentials".into());
    }
    let loopback = match url.host() {
        None => return Err("jwks_uri has no host".into()),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http || loopback => Ok(()),
        "http" => Err("jwks_uri must be https (plain http only on loopback, unless [oauth.jwks_endpoint] allow_insecure_http = true)".into()),
        _ => Err("jwks_uri must be an https URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable_jwks_uri as ok;

    #[test]
    fn jwks_uris_must_be_https_unless_loopback() {
        assert!(ok("https://idp.example.com/jwks", false).is_ok());
        assert!(ok("http://127.0.0.1:8080/jwks", false).is_ok());
        assert!(ok("http://localhost/jwks", false).is_ok());
        assert!(ok("http://[::1]:9/jwks", false).is_ok());
        assert!(ok("http://idp.example.com/jwks", false).is_err());
        assert!(ok("http://127.0.0.1.evil.com/jwks", false).is_err());
        assert!(ok("http://user@evil.com/jwks", false).is_err());
        assert!(ok("http://idp.example.com/jwks", true).is_ok());
        assert!(ok("ftp://idp.example.com/jwks", true).is_err());
        assert!(ok("idp.example.com/jwks", false).is_err());
        assert!(ok("https:///jwks", false).is_err());
        assert!(ok("https:/idp.example.com/jwks", false).is_err());
        assert!(ok("https://user:pw@idp.example.com/jwks", false).is_err());
    }
}
