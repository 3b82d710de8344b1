//! [`ClientAuthenticator`] across the boundary.

use super::wire::{decode, encode, guard, guard_async};
use crate::request::Fields;
use crate::{AuthenticatedClient, ClientAuthenticator, OAuthError, TokenRequest};
use abi_stable::{
    sabi_trait,
    std_types::{RArc, RBox, RResult, RString},
};
use async_ffi::{FfiFuture, FutureExt as _};
use async_trait::async_trait;
use std::sync::Arc;

/// The frozen v2 vtable of a client authenticator. The [`TokenRequest`] is shared, not copied;
/// results are JSON: `Ok` is an [`AuthenticatedClient`], `Err` an [`OAuthError`].
#[sabi_trait]
pub trait FfiClientAuthenticatorV2: Send + Sync {
    fn can_authenticate(&self, request: RArc<Fields>) -> bool;
    fn authenticate(&self, request: RArc<Fields>) -> FfiFuture<RResult<RString, RString>>;
}

/// A client authenticator as an FFI trait object.
pub type FfiClientAuthenticator = FfiClientAuthenticatorV2_TO<'static, RBox<()>>;

/// Exporter: a plugin's authenticator behind the FFI vtable.
struct Exported(Arc<dyn ClientAuthenticator>);

impl FfiClientAuthenticatorV2 for Exported {
    fn can_authenticate(&self, request: RArc<Fields>) -> bool {
        // A panic here means "not mine": the request then falls to the next authenticator, or
        // to `invalid_client` when none takes it.
        let request = TokenRequest::from_shared(request);
        guard::<_, OAuthError>("client authenticator", || {
            Ok(self.0.can_authenticate(&request))
        })
        .unwrap_or(false)
    }

    fn authenticate(&self, request: RArc<Fields>) -> FfiFuture<RResult<RString, RString>> {
        let inner = self.0.clone();
        let request = TokenRequest::from_shared(request);
        async move {
            encode(
                guard_async("client authenticator", async {
                    inner.authenticate(&request).await
                })
                .await,
            )
        }
        .into_ffi()
    }
}

pub(super) fn export(authenticator: Arc<dyn ClientAuthenticator>) -> FfiClientAuthenticator {
    FfiClientAuthenticatorV2_TO::from_value(
        Exported(authenticator),
        abi_stable::sabi_trait::TD_Opaque,
    )
}

/// Importer: an FFI client authenticator behind the plain trait, for the host.
pub(super) struct Imported(pub(super) FfiClientAuthenticator);

#[async_trait]
impl ClientAuthenticator for Imported {
    fn can_authenticate(&self, request: &TokenRequest) -> bool {
        self.0.can_authenticate(request.shared())
    }

    async fn authenticate(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let call = self.0.authenticate(request.shared());
        guard_async("client authenticator", async { decode(call.await) }).await
    }
}
