//! [`JwtValidator`] across the boundary.

use super::wire::{decode, encode, from_json, guard, guard_async, to_json, Encoded};
use crate::{JwtError, JwtValidator, TrustSource, VerifiedJwt};
use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString},
};
use async_ffi::{FfiFuture, FutureExt as _};
use async_trait::async_trait;
use std::sync::Arc;

/// The frozen v2 vtable of a JWT validator. Values are JSON: a [`TrustSource`]; `Ok` is a
/// [`VerifiedJwt`], `Err` a [`JwtError`]. The JWT itself crosses as it is.
#[sabi_trait]
pub trait FfiJwtValidatorV2: Send + Sync {
    fn can_validate(&self, source: RStr<'_>) -> bool;
    fn validate(&self, jwt: RString, source: RString) -> FfiFuture<RResult<RString, RString>>;
}

/// A JWT validator as an FFI trait object.
pub type FfiJwtValidator = FfiJwtValidatorV2_TO<'static, RBox<()>>;

/// Exporter: a plugin's validator behind the FFI vtable.
struct Exported(Arc<dyn JwtValidator>);

impl FfiJwtValidatorV2 for Exported {
    fn can_validate(&self, source: RStr<'_>) -> bool {
        guard::<_, JwtError>("JWT validator", || {
            let source: TrustSource = from_json(source.as_str())?;
            Ok(self.0.can_validate(&source))
        })
        .unwrap_or(false)
    }

    fn validate(&self, jwt: RString, source: RString) -> FfiFuture<RResult<RString, RString>> {
        let inner = self.0.clone();
        async move {
            encode(
                guard_async("JWT validator", async {
                    let source: TrustSource = from_json(&source)?;
                    inner.validate(&jwt, &source).await
                })
                .await,
            )
        }
        .into_ffi()
    }
}

pub(super) fn export(validator: Arc<dyn JwtValidator>) -> FfiJwtValidator {
    FfiJwtValidatorV2_TO::from_value(Exported(validator), abi_stable::sabi_trait::TD_Opaque)
}

/// Importer: an FFI validator behind the plain trait, for the host.
pub(super) struct Imported(pub(super) FfiJwtValidator);

#[async_trait]
impl JwtValidator for Imported {
    fn can_validate(&self, source: &TrustSource) -> bool {
        let source = to_json(source);
        self.0.can_validate(source.as_rstr())
    }

    async fn validate(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        let call = self.0.validate(jwt.into(), to_json(source));
        guard_async("JWT validator", async { decode(call.await) }).await
    }

    /// The answer as it came: the exporter's future is guarded already, and whoever receives
    /// it decodes it as they would have here.
    async fn validate_encoded(&self, jwt: &str, source: &TrustSource) -> Encoded {
        Encoded(self.0.validate(jwt.into(), to_json(source)).await)
    }
}
