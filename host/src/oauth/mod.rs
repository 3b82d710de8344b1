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
pub mod parties;
mod revocation;
mod token;

use crate::admin::SuperAdmin;
use crate::clock::Clock;
use crate::config::deployment::TokenFormat;
pub use crate::keys::acceptable_jwks_uri;
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
        token_endpoint_url(&self.settings.base_url, tenant)
    }

    /// A URL of the tenant's (`{base_url}/t/T/…`, or `{base_url}/…` for the super tenant).
    pub fn tenant_url(&self, tenant: &str, path: &str) -> String {
        format!("{}{}{path}", self.settings.base_url, tenant_prefix(tenant))
    }
}

/// The token endpoint URL of `tenant` on a server at `base_url` (no trailing slash).
pub fn token_endpoint_url(base_url: &str, tenant: &str) -> String {
    format!("{base_url}{}/oauth2/token", tenant_prefix(tenant))
}

fn tenant_prefix(tenant: &str) -> String {
    if tenant == SUPER_TENANT {
        String::new()
    } else {
        format!("/t/{tenant}")
    }
}
