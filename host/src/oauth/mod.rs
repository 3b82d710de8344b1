//! The OAuth endpoints: token (RFC 6749), introspection (RFC 7662), revocation (RFC 7009),
//! discovery (RFC 8414) and the server's JWKS. They speak [`exchange::Request`] /
//! [`exchange::Response`], never warp: the HTTP layer routes and renders.
//!
//! A token request goes: form (bounded, no repeats) → grant handler's own checks → client
//! authentication (the active authenticators in `orderId` order; the first that can, does) →
//! the client's registration (grant allowed? scopes allowed?) → the grant handler → the token
//! service mints and stores hashes. Built-in components (`client_secret_basic`,
//! `client_secret_post`, `client_credentials`, `refresh_token`, in [`builtin`]) go through the
//! same traits as loaded ones.

pub mod basic;
pub mod builtin;
mod discovery;
pub mod exchange;
pub mod form;
mod introspection;
mod revocation;
mod token;

use crate::admin::SuperAdmin;
use crate::clock::Clock;
use crate::config::deployment::TokenFormat;
use crate::metrics::Metrics;
use crate::plugins::Components;
use crate::secret::ServerSecret;
use crate::store::Store;
use crate::tokens::keys::SigningKeys;
use crate::tokens::TokenService;
use std::sync::Arc;

/// Settings the endpoints need from deployment.toml.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[server] base_url`, without a trailing `/`.
    pub base_url: String,
    /// `[oauth.token] default_access_token_format`.
    pub default_format: TokenFormat,
    /// `[oauth.jwks_endpoint] enable`: without it, no `jwks_uri` may be registered.
    pub jwks_fetch_enabled: bool,
    /// `[oauth.jwks_endpoint] allow_insecure_http`: plain-http `jwks_uri`s beyond loopback.
    pub allow_insecure_http: bool,
}

/// Everything the OAuth and admin endpoints share.
pub struct OAuth {
    pub store: Store,
    pub secret: Arc<ServerSecret>,
    pub tokens: Arc<TokenService>,
    pub keys: Arc<SigningKeys>,
    pub components: Components,
    pub admin: SuperAdmin,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
}

/// The super tenant: the bare paths.
pub const SUPER_TENANT: &str = "carbon.super";

impl OAuth {
    /// The tenant's token endpoint URL, which is also its issuer (WSO2's convention).
    pub fn endpoint_url(&self, tenant: &str) -> String {
        format!(
            "{}{}/oauth2/token",
            self.settings.base_url,
            tenant_prefix(tenant)
        )
    }

    /// A URL of the tenant's (`{base_url}/t/T/…`, or `{base_url}/…` for the super tenant).
    pub fn tenant_url(&self, tenant: &str, path: &str) -> String {
        format!("{}{}{path}", self.settings.base_url, tenant_prefix(tenant))
    }
}

fn tenant_prefix(tenant: &str) -> String {
    if tenant == SUPER_TENANT {
        String::new()
    } else {
        format!("/t/{tenant}")
    }
}

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
