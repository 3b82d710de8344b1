//! [`GrantHandler`] across the boundary.

use super::wire::{decode, encode, from_json, guard, guard_async, to_json};
use crate::{AuthenticatedClient, Grant, GrantHandler, OAuthError, TokenRequest};
use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString},
};
use async_ffi::{FfiFuture, FutureExt as _};
use async_trait::async_trait;
use std::sync::Arc;

/// The frozen v1 vtable of a grant handler. Values are JSON: a [`TokenRequest`], an
/// [`AuthenticatedClient`]; `Ok` is a [`Grant`] (or `null`), `Err` an [`OAuthError`].
#[sabi_trait]
pub trait FfiGrantHandlerV1: Send + Sync {
    fn validate_request(&self, request: RStr<'_>) -> RResult<RString, RString>;
    fn handle(&self, request: RString, client: RString) -> FfiFuture<RResult<RString, RString>>;
}

/// A grant handler as an FFI trait object.
pub type FfiGrantHandler = FfiGrantHandlerV1_TO<'static, RBox<()>>;

/// Exporter: a plugin's handler behind the FFI vtable.
struct Exported(Arc<dyn GrantHandler>);

impl FfiGrantHandlerV1 for Exported {
    fn validate_request(&self, request: RStr<'_>) -> RResult<RString, RString> {
        encode(guard("grant handler", || {
            let request: TokenRequest = from_json(request.as_str())?;
            self.0.validate_request(&request)
        }))
    }

    fn handle(&self, request: RString, client: RString) -> FfiFuture<RResult<RString, RString>> {
        let inner = self.0.clone();
        async move {
            encode(
                guard_async("grant handler", async {
                    let request: TokenRequest = from_json(&request)?;
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
    FfiGrantHandlerV1_TO::from_value(Exported(handler), abi_stable::sabi_trait::TD_Opaque)
}

/// Importer: an FFI grant handler behind the plain trait, for the host.
pub(super) struct Imported(pub(super) FfiGrantHandler);

#[async_trait]
impl GrantHandler for Imported {
    fn validate_request(&self, request: &TokenRequest) -> Result<(), OAuthError> {
        let request = to_json(request);
        guard("grant handler", || {
            decode(self.0.validate_request(request.as_rstr()))
        })
    }

    async fn handle(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
    ) -> Result<Grant, OAuthError> {
        let call = self.0.handle(to_json(request), to_json(client));
        guard_async("grant handler", async { decode(call.await) }).await
    }
}
