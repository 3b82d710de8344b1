//! What JWT validation talks about: whom a JWT claims to come from (a [`TrustSource`]), the keys
//! that party is trusted with ([`TrustMaterial`]), and what validation yields ([`VerifiedJwt`]).
//!
//! Grant handlers and client authenticators never verify signatures themselves: they name a trust
//! source and ask the host ([`crate::HostServices::validate_jwt`]), which resolves the party in
//! its registry and hands the JWT to the enabled [`crate::JwtValidator`]s. Keys therefore come
//! only from what an operator registered — never from the token itself.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Whom a JWT is to be validated against, in a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrustSource {
    /// A registered identity provider, by its name (which equals the `iss` of its assertions).
    IdentityProvider { tenant: String, name: String },
    /// A registered client, by `client_id` (which equals `iss` and `sub` of its assertions).
    Client { tenant: String, client_id: String },
}

impl TrustSource {
    pub fn tenant(&self) -> &str {
        match self {
            TrustSource::IdentityProvider { tenant, .. } | TrustSource::Client { tenant, .. } => {
                tenant
            }
        }
    }
}

/// The registered party a trust source resolved to, as far as claim checks need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrustedParty {
    IdentityProvider {
        id: String,
        name: String,
        /// The audience the IdP puts in `aud` (default: the tenant's token endpoint URL).
        alias: String,
    },
    Client {
        client_id: String,
        /// The client's registered `token_endpoint_auth_method`.
        auth_method: String,
    },
}

/// The keys a party is trusted with: a `jwks_uri` (served by the shared key service) and/or
/// static keys (PEM certificates or an inline `jwks`, converted to JWKs at registration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustMaterial {
    pub party: TrustedParty,
    pub jwks_uri: Option<String>,
    pub keys: Vec<Value>,
}

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Value>,
}

/// A JWT whose signature verified against a trust source. Claim rules (`aud`, `exp`, `jti`, …)
/// are the caller's: they differ between the JWT bearer grant and client authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedJwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub party: TrustedParty,
}

/// Why a JWT was not verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "reason", rename_all = "snake_case")]
pub enum JwtError {
    /// The JWT is not acceptable (bad signature, unknown party, disallowed algorithm, …): the
    /// caller answers `invalid_grant` or `invalid_client`.
    Rejected(String),
    /// The host could not decide (the JWKS could not be fetched and none is cached, the database
    /// is down): the caller answers `server_error` / `temporarily_unavailable`.
    Unavailable(String),
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Rejected(r) => write!(f, "rejected: {r}"),
            JwtError::Unavailable(r) => write!(f, "unavailable: {r}"),
        }
    }
}

impl std::error::Error for JwtError {}
