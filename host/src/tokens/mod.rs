//! Token issuing: access tokens (opaque or RFC 9068 JWT), refresh tokens, their rotation,
//! introspection (RFC 7662) and revocation (RFC 7009).
//!
//! **Tokens are stored only as HMACs.** An opaque token is 256 random bits after a sequence that
//! keeps new rows at the end of the index ([`opaque`]); the database keeps the sequence and
//! `ServerSecret::hash` of the token (HMAC-SHA-256 under a key derived from the server secret),
//! never the token. Whoever reads the database — a backup, a replica, an SQL injection elsewhere — gets
//! nothing they can present, and without the server secret cannot even test a guess. A keyed
//! fast hash suffices because the token has full entropy: no password-hash work factor is needed,
//! and lookups stay one indexed equality. JWT access tokens are stored the same way (hash of the
//! compact JWT), which makes them introspectable and revocable like opaque ones.
//!
//! **Refresh tokens rotate, and reuse revokes the grant** (RFC 9700 §4.14.2). Each grant starts a
//! *family*; every refresh hands out a new refresh token in the same family and revokes the one
//! presented, in one conditional `UPDATE`, so of any number of concurrent redemptions — on any
//! host sharing the database — exactly one wins. A revoked refresh token presented again means
//! two parties hold it (the client and a thief, and the server cannot tell which is which), so
//! the whole family — every refresh token and every access token issued along it — is revoked,
//! including tokens a racing rotation stores after the revocation (see [`crate::store`]'s
//! `revoked_families`). Revoking a refresh token (RFC 7009) revokes its family the same way.

pub mod keys;
pub mod opaque;
mod service;

pub use crate::config::TokenFormat;
pub use service::{
    AccessTokenSigner, ActiveToken, Introspection, Issue, Issued, JtiCheck, TokenError,
    TokenService, TokenSettings,
};
