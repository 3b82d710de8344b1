//! How values cross the boundary: JSON of the domain types in an `RString`, and panics turned
//! into the error each call can return.

use crate::{HostError, JwtError, OAuthError};
use abi_stable::std_types::{RResult, RString};
use futures::FutureExt;
use serde::{de::DeserializeOwned, Serialize};
use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An error type a call across the boundary can end in, made from a panic or garbage.
pub(crate) trait WireError: Serialize + DeserializeOwned {
    fn from_failure(what: String) -> Self;
}

impl WireError for OAuthError {
    fn from_failure(what: String) -> Self {
        OAuthError::server_error(what)
    }
}

impl WireError for JwtError {
    fn from_failure(what: String) -> Self {
        JwtError::Unavailable(what)
    }
}

impl WireError for HostError {
    fn from_failure(what: String) -> Self {
        HostError(what)
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> RString {
    // Serializing our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_string(value)
        .unwrap_or_else(|e| format!("\"unserializable: {e}\""))
        .into()
}

pub(crate) fn from_json<T: DeserializeOwned, E: WireError>(json: &str) -> Result<T, E> {
    serde_json::from_str(json)
        .map_err(|e| E::from_failure(format!("malformed value across the plugin ABI: {e}")))
}

/// A result as it crosses: `ROk(json of T)` or `RErr(json of E)`.
pub(crate) fn encode<T: Serialize, E: Serialize>(
    result: Result<T, E>,
) -> RResult<RString, RString> {
    match result {
        Ok(v) => RResult::ROk(to_json(&v)),
        Err(e) => RResult::RErr(to_json(&e)),
    }
}

/// A result already in its wire form, JSON of `T` or of `E`: what a loaded component's call
/// answered, kept as it came so that the host can hand it on to another loaded component
/// without decoding and encoding it again (for a [`crate::VerifiedJwt`], the header and claims
/// of a JWT, the two cost ~21k instructions a grant). Not part of the API.
#[doc(hidden)]
pub struct Encoded(pub(crate) RResult<RString, RString>);

impl Encoded {
    /// `result` in its wire form.
    pub fn of<T: Serialize, E: Serialize>(result: Result<T, E>) -> Encoded {
        Encoded(encode(result))
    }
}

pub(crate) fn decode<T: DeserializeOwned, E: WireError>(
    result: RResult<RString, RString>,
) -> Result<T, E> {
    match result {
        RResult::ROk(v) => from_json(&v),
        RResult::RErr(e) => Err(from_json::<E, E>(&e)?),
    }
}

/// Runs `f`, turning a panic into `E`.
pub(crate) fn guard<T, E: WireError>(what: &str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        Err(E::from_failure(format!(
            "{what} panicked: {}",
            panic_message(&*p)
        )))
    })
}

/// Awaits `fut`, turning a panic into `E`.
pub(crate) async fn guard_async<T, E: WireError>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| {
            Err(E::from_failure(format!(
                "{what} panicked: {}",
                panic_message(&*p)
            )))
        })
}
