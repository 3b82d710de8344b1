//! The host's side of [`HostServices`]: what every component, built in or loaded, may ask.
//!
//! One [`Host`] per server; each component gets a handle carrying its own name for the log.
//! JWT validation runs the active validators in `orderId` order; the jti store is the
//! database's (atomic across every host on it); time comes from the server's one [`Clock`].
//! Who the registered identity providers and clients are ([`TrustResolver`]) and where JWKS
//! come from ([`KeySource`]) are seams the token service and the key service fill.

use crate::clock::Clock;
use crate::store::Store;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tollgate_core::abi::Encoded;
use tollgate_core::{
    HostError, HostServices, Jwks, JwtError, JwtValidator, LogLevel, TrustMaterial, TrustSource,
    VerifiedJwt,
};

/// Resolves a trust source to the registered party and its keys.
#[async_trait]
pub trait TrustResolver: Send + Sync {
    async fn resolve(&self, source: &TrustSource) -> Result<TrustMaterial, JwtError>;
}

/// Fetches (and caches) a JWKS.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The keys at `uri` for `kid`, as [`HostServices::jwks`] describes.
    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, JwtError>;
}

/// A registry with no identity providers and no clients: every source is unknown.
pub struct NoTrustSources;

#[async_trait]
impl TrustResolver for NoTrustSources {
    async fn resolve(&self, source: &TrustSource) -> Result<TrustMaterial, JwtError> {
        Err(JwtError::Rejected(match source {
            TrustSource::IdentityProvider { tenant, name } => {
                format!("no enabled identity provider named {name:?} in tenant {tenant}")
            }
            TrustSource::Client { tenant, client_id } => {
                format!("no client {client_id:?} in tenant {tenant}")
            }
        }))
    }
}

/// No JWKS fetching (`[oauth.jwks_endpoint] enable = false`).
pub struct NoKeySource;

#[async_trait]
impl KeySource for NoKeySource {
    async fn jwks(&self, uri: &str, _: Option<&str>) -> Result<Jwks, JwtError> {
        Err(JwtError::Rejected(format!(
            "JWKS fetching is disabled; {uri} is not consulted"
        )))
    }
}

/// The server's host services.
pub struct Host {
    store: Store,
    clock: Arc<dyn Clock>,
    trust: Arc<dyn TrustResolver>,
    keys: Arc<dyn KeySource>,
    /// Set once the validators are built (they receive host services themselves).
    validators: OnceLock<Vec<(String, Arc<dyn JwtValidator>)>>,
}

impl Host {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        trust: Arc<dyn TrustResolver>,
        keys: Arc<dyn KeySource>,
    ) -> Arc<Host> {
        Arc::new(Host {
            store,
            clock,
            trust,
            keys,
            validators: OnceLock::new(),
        })
    }

    /// The handle a component named `component` is given.
    pub fn for_component(self: &Arc<Self>, component: &str) -> Arc<dyn HostServices> {
        Arc::new(ComponentHost {
            host: self.clone(),
            component: component.to_string(),
        })
    }

    /// The first active validator, by `orderId`, that can validate `source`.
    fn validator(&self, source: &TrustSource) -> Result<&Arc<dyn JwtValidator>, JwtError> {
        let validators = self.validators.get().map(Vec::as_slice).unwrap_or(&[]);
        match validators.iter().find(|(_, v)| v.can_validate(source)) {
            Some((_, validator)) => Ok(validator),
            None => Err(JwtError::Unavailable(
                "no active JWT validator can validate this source; enable one in identity.xml"
                    .into(),
            )),
        }
    }

    /// Installs the active validators, in `orderId` order. Later calls are ignored.
    pub fn set_validators(&self, validators: Vec<(String, Arc<dyn JwtValidator>)>) {
        let _ = self.validators.set(validators);
    }
}

struct ComponentHost {
    host: Arc<Host>,
    component: String,
}

#[async_trait]
impl HostServices for ComponentHost {
    async fn validate_jwt(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        self.host.validator(source)?.validate(jwt, source).await
    }

    async fn validate_jwt_encoded(&self, jwt: &str, source: &TrustSource) -> Encoded {
        match self.host.validator(source) {
            Ok(validator) => validator.validate_encoded(jwt, source).await,
            Err(e) => Encoded::of::<VerifiedJwt, _>(Err(e)),
        }
    }

    async fn trust_material(&self, source: &TrustSource) -> Result<TrustMaterial, JwtError> {
        self.host.trust.resolve(source).await
    }

    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, JwtError> {
        self.host.keys.jwks(uri, kid).await
    }

    async fn check_and_store_jti(
        &self,
        scope: &str,
        jti: &str,
        exp: i64,
    ) -> Result<bool, HostError> {
        let now = self.host.clock.now();
        self.host
            .store
            .check_and_store_jti(scope, jti, exp, now)
            .await
            .map_err(|e| HostError(format!("jti store: {e}")))
    }

    fn now(&self) -> i64 {
        self.host.clock.now()
    }

    fn log(&self, level: LogLevel, message: &str) {
        let component = self.component.as_str();
        match level {
            LogLevel::Error => tracing::error!(component, "{message}"),
            LogLevel::Warn => tracing::warn!(component, "{message}"),
            LogLevel::Info => tracing::info!(component, "{message}"),
            LogLevel::Debug => tracing::debug!(component, "{message}"),
            LogLevel::Trace => tracing::trace!(component, "{message}"),
        }
    }

    async fn call(&self, name: &str, _input: Value) -> Result<Value, HostError> {
        Err(HostError(format!(
            "this server offers no host call named {name:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::StoreOptions;
    use serde_json::Map;
    use tollgate_core::TrustedParty;

    /// Answers for the sources it claims, with its own name in the reason.
    struct Named(&'static str, bool);

    #[async_trait]
    impl JwtValidator for Named {
        fn can_validate(&self, source: &TrustSource) -> bool {
            // `.1`: claims only identity providers.
            !self.1 || matches!(source, TrustSource::IdentityProvider { .. })
        }

        async fn validate(&self, _: &str, _: &TrustSource) -> Result<VerifiedJwt, JwtError> {
            if self.0 == "accepts" {
                return Ok(VerifiedJwt {
                    header: Map::new(),
                    claims: Map::new(),
                    party: TrustedParty::Client {
                        client_id: "c".into(),
                        auth_method: "private_key_jwt".into(),
                    },
                });
            }
            Err(JwtError::Rejected(self.0.into()))
        }
    }

    #[tokio::test]
    async fn the_first_validator_in_order_that_can_validate_decides() {
        let store = Store::open("sqlite::memory:", &StoreOptions::default())
            .await
            .unwrap();
        let host = Host::new(
            store,
            Arc::new(ManualClock::new(0)),
            Arc::new(NoTrustSources),
            Arc::new(NoKeySource),
        );
        let services = host.for_component("test");
        let idp = TrustSource::IdentityProvider {
            tenant: "t".into(),
            name: "i".into(),
        };
        let client = TrustSource::Client {
            tenant: "t".into(),
            client_id: "c".into(),
        };
        // No validator at all: the host cannot decide.
        assert!(matches!(
            services.validate_jwt("x", &idp).await,
            Err(JwtError::Unavailable(_))
        ));
        host.set_validators(vec![
            ("idp-only".into(), Arc::new(Named("operator's own", true))),
            ("bundled".into(), Arc::new(Named("accepts", false))),
        ]);
        assert_eq!(
            services.validate_jwt("x", &idp).await.unwrap_err(),
            JwtError::Rejected("operator's own".into())
        );
        assert!(services.validate_jwt("x", &client).await.is_ok());
    }
}
