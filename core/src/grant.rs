//! What a grant handler decides.

use serde::{Deserialize, Serialize};

/// The authorization a [`crate::GrantHandler`] grants. The host turns it into tokens: it
/// intersects `scopes` with what the client may have, mints, stores and answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// Who the tokens speak for (`sub` of a JWT access token): the client itself for
    /// `client_credentials`, the assertion's subject for the JWT bearer grant.
    pub subject: String,
    /// The scopes granted (usually those requested).
    pub scopes: Vec<String>,
    /// Whether a refresh token is issued alongside the access token.
    pub refresh_token: bool,
    /// The refresh token this grant redeems, by the reference the host stored it under: set
    /// by the `refresh_token` grant. The host rotates that token in the transaction that stores
    /// the new tokens, which join its family (revoking or replaying one revokes them all,
    /// RFC 9700 §4.14). `None` starts a new family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeems: Option<String>,
    /// The assertion's `jti`, for the host to record with the tokens (see
    /// [`crate::SingleUse`]); if it was already used, the request fails with `invalid_grant`
    /// "the assertion was already used (jti)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<crate::SingleUse>,
    /// Extra claims for a JWT access token (e.g. the identity provider that vouched for `sub`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, serde_json::Value>,
}
