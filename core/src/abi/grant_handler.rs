//! [`GrantHandler`] across the boundary.

use super::wire::{decode, encode, from_json, guard, guard_async, to_json};
use crate::request::Fields;
use crate::{AuthenticatedClient, Grant, GrantHandler, OAuthError, TokenRequest};
use abi_stable::{
    sabi_trait,
    std_types::{RArc, RBox, RResult, RString},
};
use async_ffi::{FfiFuture, FutureExt as _};
use async_trait::async_trait;
use std::sync::Arc;

/// The frozen v2 vtable of a grant handler. The [`TokenRequest`] is shared, not copied; the
/// other values are JSON: an [`AuthenticatedClient`]; `Ok` is a [`Grant`] (or `null`), `Err` an
/// [`OAuthError`].
#[sabi_trait]
pub trait FfiGrantHandlerV2: Send + Sync {
    fn validate_request(&self, request: RArc<Fields>) -> RResult<RString, RString>;
    fn handle(
        &self,
        request: RArc<Fields>,
        client: RString,
    ) -> FfiFuture<RResult<RString, RString>>;
}

/// A grant handler as an FFI trait object.
pub type FfiGrantHandler = FfiGrantHandlerV2_TO<'static, RBox<()>>;

/// Exporter: a plugin's handler behind the FFI vtable.
struct Exported(Arc<dyn GrantHandler>);

impl FfiGrantHandlerV2 for Exported {
    fn validate_request(&self, request: RArc<Fields>) -> RResult<RString, RString> {
        let request = TokenRequest::from_shared(request);
        encode(guard("grant handler", || self.0.validate_request(&request)))
    }

    fn handle(
        &self,
        request: RArc<Fields>,
        client: RString,
    ) -> FfiFuture<RResult<RString, RString>> {
        let inner = self.0.clone();
        let request = TokenRequest::from_shared(request);
        async move {
            encode(
                guard_async("grant handler", async {
                    let client: AuthenticatedClient = from_json(&client)?;
                    inner.handle(&request, &client).await
                })
                .await,
            )
        }
        .into_ffi()
    }
}

pub(super) fn export(handler: Arc<dyn GrantHandler>) -> FfiGrantHandler {
    FfiGrantHandlerV2_TO::from_value(Exported(handler), abi_stable::sabi_trait::TD_Opaque)
}

/// Importer: an FFI grant handler behind the plain trait, for the host.
pub(super) struct Imported(pub(super) FfiGrantHandler);

#[async_trait]
impl GrantHandler for Imported {
    fn validate_request(&self, request: &TokenRequest) -> Result<(), OAuthError> {
        guard("grant handler", || {
            decode(self.0.validate_request(request.shared()))
        })
    }

    async fn handle(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
    ) -> Result<Grant, OAuthError> {
        let call = self.0.handle(request.shared(), to_json(client));
        guard_async("grant handler", async { decode(call.await) }).await
    }
}
