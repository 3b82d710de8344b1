//! [`HostServices`] across the boundary, the other way round: the host exports, the plugin
//! imports. One object is made per component, carrying its name for the log.

use super::wire::{decode, encode, from_json, guard_async, to_json};
use crate::{
    HostError, HostServices, Jwks, JwtError, LogLevel, TrustMaterial, TrustSource, VerifiedJwt,
};
use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RStr, RString},
};
use async_ffi::{FfiFuture, FutureExt as _};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// The frozen v2 vtable of the host services. Values are JSON of the [`HostServices`] types.
#[sabi_trait]
pub trait FfiHostServicesV2: Send + Sync {
    fn validate_jwt(&self, jwt: RString, source: RString) -> FfiFuture<RResult<RString, RString>>;
    fn trust_material(&self, source: RString) -> FfiFuture<RResult<RString, RString>>;
    fn jwks(&self, uri: RString, kid: ROption<RString>) -> FfiFuture<RResult<RString, RString>>;
    fn check_and_store_jti(
        &self,
        scope: RString,
        jti: RString,
        exp: i64,
    ) -> FfiFuture<RResult<RString, RString>>;
    fn now(&self) -> i64;
    fn log(&self, level: u8, message: RStr<'_>);
    fn call(&self, name: RString, input: RString) -> FfiFuture<RResult<RString, RString>>;
}

/// The host services as an FFI trait object.
pub type FfiHostServices = FfiHostServicesV2_TO<'static, RBox<()>>;

/// Exporter (host side).
struct Exported {
    host: Arc<dyn HostServices>,
}

impl FfiHostServicesV2 for Exported {
    fn validate_jwt(&self, jwt: RString, source: RString) -> FfiFuture<RResult<RString, RString>> {
        let host = self.host.clone();
        async move {
            // Passed on in its wire form: a loaded validator's answer is not decoded here only
            // to be encoded again for the caller.
            let answer = guard_async("host validate_jwt", async {
                let source: TrustSource = from_json(&source)?;
                Ok::<_, JwtError>(host.validate_jwt_encoded(&jwt, &source).await)
            })
            .await;
            match answer {
                Ok(encoded) => encoded.0,
                Err(e) => encode::<VerifiedJwt, _>(Err(e)),
            }
        }
        .into_ffi()
    }

    fn trust_material(&self, source: RString) -> FfiFuture<RResult<RString, RString>> {
        let host = self.host.clone();
        async move {
            encode(
                guard_async("host trust_material", async {
                    let source: TrustSource = from_json(&source)?;
                    host.trust_material(&source).await
                })
                .await,
            )
        }
        .into_ffi()
    }

    fn jwks(&self, uri: RString, kid: ROption<RString>) -> FfiFuture<RResult<RString, RString>> {
        let host = self.host.clone();
        async move {
            let kid = kid.into_option();
            encode(
                guard_async(
                    "host jwks",
                    host.jwks(&uri, kid.as_ref().map(RString::as_str)),
                )
                .await,
            )
        }
        .into_ffi()
    }

    fn check_and_store_jti(
        &self,
        scope: RString,
        jti: RString,
        exp: i64,
    ) -> FfiFuture<RResult<RString, RString>> {
        let host = self.host.clone();
        async move {
            encode(
                guard_async(
                    "host check_and_store_jti",
                    host.check_and_store_jti(&scope, &jti, exp),
                )
                .await,
            )
        }
        .into_ffi()
    }

    fn now(&self) -> i64 {
        self.host.now()
    }

    fn log(&self, level: u8, message: RStr<'_>) {
        self.host.log(LogLevel::from_u8(level), message.as_str())
    }

    fn call(&self, name: RString, input: RString) -> FfiFuture<RResult<RString, RString>> {
        let host = self.host.clone();
        async move {
            encode(
                guard_async("host call", async {
                    let input: Value = from_json(&input)?;
                    host.call(&name, input).await
                })
                .await,
            )
        }
        .into_ffi()
    }
}

/// Wraps the host's services for one component.
pub(super) fn export(host: Arc<dyn HostServices>) -> FfiHostServices {
    FfiHostServicesV2_TO::from_value(Exported { host }, abi_stable::sabi_trait::TD_Opaque)
}

/// Importer (plugin side): what a loaded component sees as `Arc<dyn HostServices>`.
pub(super) struct Imported(pub(super) FfiHostServices);

#[async_trait]
impl HostServices for Imported {
    async fn validate_jwt(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        decode(self.0.validate_jwt(jwt.into(), to_json(source)).await)
    }

    async fn trust_material(&self, source: &TrustSource) -> Result<TrustMaterial, JwtError> {
        decode(self.0.trust_material(to_json(source)).await)
    }

    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, JwtError> {
        let kid = ROption::from(kid.map(RString::from));
        decode(self.0.jwks(uri.into(), kid).await)
    }

    async fn check_and_store_jti(
        &self,
        scope: &str,
        jti: &str,
        exp: i64,
    ) -> Result<bool, HostError> {
        decode(
            self.0
                .check_and_store_jti(scope.into(), jti.into(), exp)
                .await,
        )
    }

    fn now(&self) -> i64 {
        self.0.now()
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.0.log(level as u8, message.into())
    }

    async fn call(&self, name: &str, input: Value) -> Result<Value, HostError> {
        decode(self.0.call(name.into(), to_json(&input)).await)
    }
}
