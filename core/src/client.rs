//! The client a client authenticator vouches for, and the assertion identifier it may leave for
//! the host to record.

use serde::{Deserialize, Serialize};

/// A client that a [`crate::ClientAuthenticator`] has authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatedClient {
    pub client_id: String,
    /// The `token_endpoint_auth_method` that authenticated it (`client_secret_basic`,
    /// `private_key_jwt`, or a plugin's own name).
    pub auth_method: String,
    /// The client assertion's `jti`, for the host to record (see [`SingleUse`]); if it was
    /// already used, the request fails with `invalid_client` "the client assertion was already
    /// used (jti)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<SingleUse>,
}

/// An assertion's `jti` (RFC 7519 §4.1.7) that may be used once, for the host to record — the
/// alternative to [`crate::HostServices::check_and_store_jti`] that costs no write of its own.
///
/// A component that returns one ([`AuthenticatedClient::jti`], [`crate::Grant::jti`]) leaves
/// the replay check to the host, which records the jti in the same transaction as the
/// request's tokens: one commit per request instead of two, which is what a grant costs under
/// load. The request is answered only after that commit; of two requests presenting the same
/// jti, on any host sharing the database, exactly one gets tokens. The host records the jti
/// even when the request fails later (and then answers the replay first, as if it had been
/// checked where the component returned it), so a presented assertion is spent either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SingleUse {
    /// Whose jtis these are (e.g. `jwt-bearer\n{tenant}\n{issuer}`): jtis of different scopes
    /// never collide.
    pub scope: String,
    pub jti: String,
    /// Unix seconds until which the jti is kept (the assertion's `exp` plus the allowed skew).
    pub expires_at: i64,
}
