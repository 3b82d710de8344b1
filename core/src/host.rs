//! What a component may ask of the host.
//!
//! A plugin's copy of tokio has no reactor, so a plugin never does I/O, spawns or sleeps on its
//! own: everything that waits is a host service. Built-in components receive the host's own
//! implementation; loaded ones receive it through the ABI (`crate::abi::host_services`), which
//! is invisible to them.

use crate::jwt::{Jwks, JwtError, TrustMaterial, TrustSource, VerifiedJwt};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A failure of a host service itself (database down, unknown call, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostError(pub String);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

/// Log levels of [`HostServices::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
    pub fn from_u8(v: u8) -> LogLevel {
        match v {
            1 => LogLevel::Error,
            2 => LogLevel::Warn,
            3 => LogLevel::Info,
            4 => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// Services the host offers every component.
#[async_trait]
pub trait HostServices: Send + Sync {
    /// Verifies `jwt` against the keys of `source`, by the enabled JWT validators in `orderId`
    /// order. Claim checks remain the caller's.
    async fn validate_jwt(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError>;

    /// The registered party behind `source` and the keys it is trusted with (for validators).
    async fn trust_material(&self, source: &TrustSource) -> Result<TrustMaterial, JwtError>;

    /// The keys at `uri` (the shared, cached key service) that may have signed a JWT naming
    /// `kid`: those with that `kid`, and those without one. A set with no key of that `kid` is
    /// re-fetched once (rate-limited per URI), which is how an unannounced key rotation is
    /// followed. With `kid` `None`, the whole set.
    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, JwtError>;

    /// Records `jti` in `scope` until `exp` (unix seconds). `Ok(true)`: first use; `Ok(false)`: a
    /// replay of an unexpired one. Atomic across every host on the database. It is a write of
    /// its own, committed before it answers; a component that only needs the answer to decide
    /// the request returns a [`crate::SingleUse`] instead, which the host records with the
    /// request's tokens.
    async fn check_and_store_jti(
        &self,
        scope: &str,
        jti: &str,
        exp: i64,
    ) -> Result<bool, HostError>;

    /// Now, in unix seconds, from the host's one clock (tests set it).
    fn now(&self) -> i64;

    /// Writes a line to the host's log under the component's name. Never log secrets,
    /// assertions or tokens.
    fn log(&self, level: LogLevel, message: &str);

    /// A generic, named host call for what this version did not foresee.
    async fn call(&self, name: &str, input: Value) -> Result<Value, HostError>;

    /// Not part of the API: [`Self::validate_jwt`]'s answer in its wire form, for a loaded
    /// component's call (`crate::abi`), which the server passes on from a loaded validator as
    /// it came. Do not implement it.
    #[doc(hidden)]
    async fn validate_jwt_encoded(&self, jwt: &str, source: &TrustSource) -> crate::abi::Encoded {
        crate::abi::Encoded::of(self.validate_jwt(jwt, source).await)
    }
}
