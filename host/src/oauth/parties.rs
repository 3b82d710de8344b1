//! Who a JWT may come from: the registered identity providers and clients of a tenant, with the
//! keys each is trusted with ([`TrustResolver`], asked by the JWT validators through host
//! services).
//!
//! An IdP is trusted with its `jwksUri` (served by the shared key service) or its certificates;
//! a client with its `jwks_uri` or inline `jwks`. Certificates become JWKs through the same key
//! policy as every other key ([`crate::keys::jwk`]), parsed once per process and remembered by
//! their PEM text; a certificate outside its validity period is left out, and an IdP whose
//! certificates have all expired is refused with that reason. Inline `jwks` were checked when
//! the client registered.

use crate::clock::Clock;
use crate::keys::jwk::{self, CertificateKey};
use crate::plugins::TrustResolver;
use crate::store::Store;
use async_trait::async_trait;
use cached::{Cached, SizedCache};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tollgate_core::{JwtError, TrustMaterial, TrustSource, TrustedParty};

/// The one client authentication method whose clients are trusted with keys.
const PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// Parsed certificates remembered (by PEM text).
const CERTIFICATE_MEMO: usize = 10_000;

/// The registered parties of every tenant, from the store.
pub struct Parties {
    store: Store,
    clock: Arc<dyn Clock>,
    /// The default IdP alias of a tenant: its token endpoint URL.
    default_alias: Box<dyn Fn(&str) -> String + Send + Sync>,
    certificates: Mutex<SizedCache<String, Result<CertificateKey, String>>>,
}

impl Parties {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        default_alias: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Parties {
        Parties {
            store,
            clock,
            default_alias: Box::new(default_alias),
            certificates: Mutex::new(SizedCache::with_size(CERTIFICATE_MEMO)),
        }
    }

    fn certificate(&self, pem: &str) -> Result<CertificateKey, String> {
        let mut memo = self.certificates.lock().unwrap_or_else(|e| e.into_inner());
        memo.cache_get_or_set_with(pem.to_owned(), || jwk::certificate(pem).map(|(_, k)| k))
            .clone()
    }

    /// The keys of the certificates valid now; an error when there were some and none is.
    fn certificate_keys(&self, idp: &str, pems: &[String]) -> Result<Vec<Value>, JwtError> {
        let now = self.clock.now();
        let mut keys = Vec::with_capacity(pems.len());
        for pem in pems {
            match self.certificate(pem) {
                Ok(c) if c.not_before <= now && now <= c.not_after => keys.push(c.jwk),
                Ok(_) => {}
                Err(e) => tracing::warn!(idp, "a stored certificate is unusable: {e}"),
            }
        }
        if keys.is_empty() && !pems.is_empty() {
            return Err(JwtError::Rejected(format!(
                "no certificate of identity provider {idp:?} is within its validity period"
            )));
        }
        Ok(keys)
    }
}

fn store_down(e: impl std::fmt::Display) -> JwtError {
    JwtError::Unavailable(format!("the registry could not be read: {e}"))
}

#[async_trait]
impl TrustResolver for Parties {
    async fn resolve(&self, source: &TrustSource) -> Result<TrustMaterial, JwtError> {
        match source {
            TrustSource::IdentityProvider { tenant, name } => {
                let idp = self
                    .store
                    .idp_by_name(tenant, name)
                    .await
                    .map_err(store_down)?
                    .filter(|idp| idp.enabled)
                    .ok_or_else(|| {
                        JwtError::Rejected(format!(
                            "no enabled identity provider named {name:?} in tenant {tenant}"
                        ))
                    })?;
                let keys = self.certificate_keys(&idp.name, &idp.certificates)?;
                Ok(TrustMaterial {
                    party: TrustedParty::IdentityProvider {
                        alias: idp
                            .alias
                            .clone()
                            .unwrap_or_else(|| (self.default_alias)(tenant)),
                        id: idp.id.clone(),
                        name: idp.name.clone(),
                    },
                    jwks_uri: idp.jwks_uri.clone(),
                    keys,
                })
            }
            TrustSource::Client { tenant, client_id } => {
                let client = self
                    .store
                    .client(tenant, client_id)
                    .await
                    .map_err(store_down)?
                    .ok_or_else(|| {
                        JwtError::Rejected(format!("no client {client_id:?} in tenant {tenant}"))
                    })?;
                // Only a client that authenticates with JWTs is trusted with keys at all.
                if client.auth_method != PRIVATE_KEY_JWT {
                    return Err(JwtError::Rejected(format!(
                        "the client is registered for {}, not {PRIVATE_KEY_JWT}",
                        client.auth_method
                    )));
                }
                let keys = match client.jwks.as_ref().and_then(|jwks| jwks.get("keys")) {
                    Some(Value::Array(keys)) => keys.clone(),
                    _ => Vec::new(),
                };
                Ok(TrustMaterial {
                    party: TrustedParty::Client {
                        client_id: client.client_id.clone(),
                        auth_method: client.auth_method.clone(),
                    },
                    jwks_uri: client.jwks_uri.clone(),
                    keys,
                })
            }
        }
    }
}
