//! [`ClientAuthenticator`] across the boundary.

use super::wire::{decode, encode, from_json, guard, guard_async, to_json};
use crate::{AuthenticatedClient, ClientAuthenticator, OAuthError, TokenRequest};
use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString},
};
use async_ffi::{FfiFuture, FutureExt as _};
use async_trait::async_trait;
use std::sync::Arc;

/// The frozen v1 vtable of a client authenticator. Values are JSON: a [`TokenRequest`]; `Ok` is
/// an [`AuthenticatedClient`], `Err` an [`OAuthError`].
#[sabi_trait]
pub trait FfiClientAuthenticatorV1: Send + Sync {
    fn can_authenticate(&self, request: RStr<'_>) -> bool;
    fn authenticate(&self, request: RString) -> FfiFuture<RResult<RString, RString>>;
}

/// A client authenticator as an FFI trait object.
pub type FfiClientAuthenticator = FfiClientAuthenticatorV1_TO<'static, RBox<()>>;

/// Exporter: a plugin's authenticator behind the FFI vtable.
struct Exported(Arc<dyn ClientAuthenticator>);

impl FfiClientAuthenticatorV1 for Exported {
    fn can_authenticate(&self, request: RStr<'_>) -> bool {
        // A panic or garbage here means "not mine": the request then falls to the next
        // authenticator, or to `invalid_client` when none takes it.
        guard::<_, OAuthError>("client authenticator", || {
            let request: TokenRequest = from_json(request.as_str())?;
            Ok(self.0.can_authenticate(&request))
        })
        .unwrap_or(false)
    }

    fn authenticate(&self, request: RString) -> FfiFuture<RResult<RString, RString>> {
        let inner = self.0.clone();
        async move {
            encode(
                guard_async("client authenticator", async {
                    let request: TokenRequest = from_json(&request)?;
                    inner.authenticate(&request).await
                })
                .await,
            )
        }
        .into_ffi()
    }
}

pub(super) fn export(authenticator: Arc<dyn ClientAuthenticator>) -> FfiClientAuthenticator {
    FfiClientAuthenticatorV1_TO::from_value(
        Exported(authenticator),
        abi_stable::sabi_trait::TD_Opaque,
    )
}

/// Importer: an FFI client authenticator behind the plain trait, for the host.
pub(super) struct Imported(pub(super) FfiClientAuthenticator);

#[async_trait]
impl ClientAuthenticator for Imported {
    fn can_authenticate(&self, request: &TokenRequest) -> bool {
        let request = to_json(request);
        self.0.can_authenticate(request.as_rstr())
    }

    async fn authenticate(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let call = self.0.authenticate(to_json(request));
        guard_async("client authenticator", async { decode(call.await) }).await
    }
}
