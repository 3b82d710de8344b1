//! # tollgate-core
//!
//! Everything a Tollgate component and the host agree on, and nothing of the host itself:
//!
//! - the domain types a token request is made of ([`TokenRequest`], [`AuthenticatedClient`],
//!   [`Grant`]) and the RFC 6749 error they can end in ([`OAuthError`]);
//! - the three component traits — [`GrantHandler`], [`ClientAuthenticator`], [`JwtValidator`] —
//!   each small in the manner of Ory fosite's handlers: *can you handle this request?*, then
//!   *handle it*;
//! - [`HostServices`], everything a component may ask of the host (JWT validation against a
//!   trust source, shared JWKS, the atomic jti store, the clock, logging);
//! - the stable plugin ABI ([`abi`]) and the SDK a plugin author uses ([`export_plugin!`]).
//!
//! A plugin author depends on this crate only and writes ordinary async Rust:
//!
//! ```ignore
//! use tollgate_core::{async_trait, export_plugin, sdk::Plugin, ClientAuthenticator, ComponentInfo};
//!
//! struct MyAuth;
//! #[async_trait]
//! impl ClientAuthenticator for MyAuth { /* … */ }
//!
//! export_plugin!(Plugin::new().client_authenticator(ComponentInfo::client_authenticator("my-auth"), |_ctx| Ok(MyAuth)));
//! ```
//!
//! Built-in components of the host implement the same traits in-process; components loaded from
//! a `.so` reach the host through [`abi`]. Nothing outside `abi` knows the difference.

// abi_stable's derives name types `PluginMod_Ref` and put impls inside consts.
#[allow(non_camel_case_types, non_local_definitions)]
pub mod abi;
mod client;
mod component;
mod error;
mod grant;
mod host;
mod jwt;
mod properties;
mod request;
pub mod sdk;

pub use async_trait::async_trait;
pub use client::{AuthenticatedClient, SingleUse};
pub use component::{
    CacheSettings, ClientAuthenticator, Component, ComponentContext, ComponentInfo, ComponentKind,
    GrantHandler, HostSettings, JwtValidator, PropertySpec,
};
pub use error::{ErrorCode, OAuthError};
pub use grant::Grant;
pub use host::{HostError, HostServices, LogLevel};
pub use jwt::{
    audience_contains, decode_segment, jws_segments, numeric_date, peek_claims, peek_issuer,
    Issuer, Jwks, JwtError, SegmentError, TimeRules, TrustMaterial, TrustSource, TrustedParty,
    VerifiedJwt, MAX_JWT_BYTES, MAX_REASON_BYTES,
};
pub use properties::{Properties, PropertyError};
pub use request::TokenRequest;

/// Re-exported so that components can name JSON values without their own `serde_json`.
pub use serde_json;
