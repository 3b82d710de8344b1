//! The server's signing keys: one current key per tenant, made at first use, that signs JWT
//! access tokens (RFC 9068), and the JWKS (`/oauth2/jwks`) that lets anyone verify them.
//!
//! Why it is built this way:
//!
//! * **Keys live in the database**, not in a host's data dir, so that every host sharing the
//!   database signs with the same key and serves the same JWKS: a token issued by one host
//!   verifies against the JWKS fetched from any other. The first host to need a tenant's key
//!   makes it and inserts it with `ON CONFLICT DO NOTHING` on the "one current key per tenant"
//!   index; a host that loses that race throws its key away and uses the stored one.
//! * **The private key is sealed**: the PKCS#8 DER is encrypted (AES-256-GCM) with the
//!   key-encryption key derived from the server secret, bound to `signing-key:{tenant}:{kid}`,
//!   so a copy of the database alone cannot sign tokens, and a sealed key cannot be passed off
//!   as another tenant's or another kid's. On loading, the key must still have the `kid` (its
//!   RFC 7638 thumbprint) and public JWK stored with it.
//! * **A retired key stays published** after [`SigningKeys::rotate`] for as long as a token it
//!   signed can be live: the longest token lifetime plus [`CACHE_SECS`], because another host
//!   may keep signing with a cached key for that long after the rotation. Resource servers that
//!   cached the JWKS re-fetch it when they meet the new `kid`.
//! * **Generation runs on the blocking pool**: an RSA-2048 key takes a good fraction of a second.
//!   Per tenant, callers of one [`SigningKeys`] queue behind one lock, so a burst of first
//!   requests makes one key per host, not one per request.
//! * Each public JWK carries, besides the members the contract names, `x5c` (a self-signed
//!   certificate for the key, `CN=Tollgate {tenant}`) and `x5t#S256`, as WSO2's JWKS do, for
//!   clients that want a certificate rather than a bare key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::digest::{digest, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rsa::pkcs8::{EncodePrivateKey, PrivateKeyInfo};
use serde_json::{json, Map, Value};

use crate::clock::{Clock, SystemClock};
use crate::config::deployment::SigningAlg;
use crate::secret::ServerSecret;
use crate::store::{SigningKeyRecord, Store, StoreError};
use crate::tokens::AccessTokenSigner;

/// How long a host keeps using the current key it loaded before reading it again, and so how
/// long after a rotation on another host it may still sign with the retired key.
pub const CACHE_SECS: i64 = 60;

const RSA_BITS: usize = 2048;

/// An error of the key service. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored key cannot be decrypted with this host's server secret.
    #[error("signing key {kid} of tenant {tenant}: {reason}")]
    Sealed {
        tenant: String,
        kid: String,
        reason: String,
    },
    /// The stored key decrypts but is not a valid key matching its kid and public JWK.
    #[error("signing key {kid} of tenant {tenant} is damaged: {reason}")]
    Damaged {
        tenant: String,
        kid: String,
        reason: String,
    },
    #[error("cannot make a signing key: {0}")]
    Generate(String),
    /// Other hosts kept replacing the tenant's current key while this one tried to read it.
    #[error("no stable current signing key for tenant {0}")]
    Contended(String),
    #[error("cannot sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// A tenant's current key, ready to sign.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    pub public_jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Cached {
    key: Arc<SigningKey>,
    loaded_at: i64,
}

/// A tenant's cached current key; its lock also queues that tenant's key loading and making.
type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// The key service: makes, loads, rotates and publishes the tenants' signing keys.
#[derive(Debug)]
pub struct SigningKeys {
    store: Store,
    secret: Arc<ServerSecret>,
    alg: SigningAlg,
    max_token_ttl_secs: i64,
    slots: Mutex<HashMap<String, Slot>>,
}

impl SigningKeys {
    /// `alg` is the algorithm of keys made from now on; `max_token_ttl_secs` the longest
    /// lifetime of a token signed with a key, which is how long it stays published once retired
    /// (plus [`CACHE_SECS`]).
    pub fn new(
        store: Store,
        secret: Arc<ServerSecret>,
        alg: SigningAlg,
        max_token_ttl_secs: i64,
    ) -> Self {
        SigningKeys {
            store,
            secret,
            alg,
            max_token_ttl_secs,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's current key, made at first use (generate → seal → insert; if another host
    /// inserted one first, theirs). A key whose algorithm is no longer the configured one is
    /// retired and replaced.
    pub async fn current(&self, tenant: &str, now: i64) -> Result<Arc<SigningKey>, KeyError> {
        let slot = self.slot(tenant);
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref() {
            if (c.loaded_at..c.loaded_at + CACHE_SECS).contains(&now) {
                return Ok(c.key.clone());
            }
        }
        let key = self.load_or_make(tenant, now).await?;
        *cached = Some(Cached {
            key: key.clone(),
            loaded_at: now,
        });
        Ok(key)
    }

    /// `{"keys": […]}`: the current key and every retired key whose tokens may still be live.
    /// Makes no key: an unknown tenant has an empty set.
    pub async fn jwks(&self, tenant: &str, now: i64) -> Result<Value, KeyError> {
        let bound = now
            .saturating_sub(self.max_token_ttl_secs)
            .saturating_sub(CACHE_SECS);
        let published = self.store.published_keys(tenant, bound).await?;
        let keys: Vec<Value> = published.into_iter().map(|rec| rec.public_jwk).collect();
        Ok(json!({ "keys": keys }))
    }

    /// Retires the current key and makes a new one. Tokens signed by the old key keep verifying
    /// against the JWKS until they expire.
    pub async fn rotate(&self, tenant: &str, now: i64) -> Result<Arc<SigningKey>, KeyError> {
        let slot = self.slot(tenant);
        let mut cached = slot.lock().await;
        *cached = None;
        if self.store.retire_current_key(tenant, now).await? {
            tracing::info!(tenant, "retired the signing key");
        }
        let key = self.load_or_make(tenant, now).await?;
        *cached = Some(Cached {
            key: key.clone(),
            loaded_at: now,
        });
        Ok(key)
    }

    /// Signs `claims` as an RFC 9068 access token: header `{"alg", "kid", "typ": "at+jwt"}`.
    pub fn sign(&self, key: &SigningKey, claims: &Map<String, Value>) -> Result<String, KeyError> {
        let header = Header {
            typ: Some("at+jwt".into()),
            kid: Some(key.kid.clone()),
            ..Header::new(key.alg)
        };
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    fn slot(&self, tenant: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(tenant.to_owned()).or_default().clone()
    }

    /// Reads the tenant's current key, making one if there is none. Called under the slot's lock.
    async fn load_or_make(&self, tenant: &str, now: i64) -> Result<Arc<SigningKey>, KeyError> {
        // Each round ends with a key unless another host retired or replaced the current key
        // in between; three rounds in a row of that is not a race but a fight.
        for _ in 0..3 {
            match self.store.current_key(tenant).await? {
                Some(rec) if rec.alg == jose_name(self.alg) => return self.open(&rec),
                Some(rec) => {
                    let (kid, from, to) = (&rec.kid, &rec.alg, jose_name(self.alg));
                    tracing::warn!(
                        tenant,
                        kid,
                        from,
                        to,
                        "signing_alg changed: retiring the key"
                    );
                    self.store.retire_current_key(tenant, now).await?;
                }
                None => {}
            }
            let (rec, key) = self.make(tenant, now).await?;
            if self.store.insert_current_key(&rec).await? {
                tracing::info!(tenant, kid = %key.kid, alg = %rec.alg, "made a signing key");
                return Ok(key);
            }
            // Another host made the tenant's key first: the next round reads it.
        }
        Err(KeyError::Contended(tenant.to_owned()))
    }

    /// Decrypts a stored key of the configured algorithm and checks it against its kid and JWK.
    fn open(&self, rec: &SigningKeyRecord) -> Result<Arc<SigningKey>, KeyError> {
        let pkcs8 = self
            .secret
            .decrypt(&rec.private_key, &seal_context(&rec.tenant, &rec.kid))
            .map_err(|reason| KeyError::Sealed {
                tenant: rec.tenant.clone(),
                kid: rec.kid.clone(),
                reason,
            })?;
        let damaged = |reason: &str| KeyError::Damaged {
            tenant: rec.tenant.clone(),
            kid: rec.kid.clone(),
            reason: reason.to_owned(),
        };
        let (public, encoding) = parse_pkcs8(self.alg, &pkcs8).map_err(|e| damaged(&e))?;
        let jwk_matches = public
            .members()
            .iter()
            .chain(&[("kid", rec.kid.clone())])
            .all(|(name, value)| rec.public_jwk.get(name).and_then(Value::as_str) == Some(value));
        if public.thumbprint() != rec.kid || !jwk_matches {
            return Err(damaged("it does not match its kid and public JWK"));
        }
        Ok(Arc::new(SigningKey {
            kid: rec.kid.clone(),
            alg: jose_alg(self.alg),
            encoding,
            public_jwk: rec.public_jwk.clone(),
        }))
    }

    /// A new key of the configured algorithm, and its sealed row.
    async fn make(
        &self,
        tenant: &str,
        now: i64,
    ) -> Result<(SigningKeyRecord, Arc<SigningKey>), KeyError> {
        let (alg, owned) = (self.alg, tenant.to_owned());
        let (pkcs8, key) = tokio::task::spawn_blocking(move || new_key(alg, &owned, now))
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))?
            .map_err(KeyError::Generate)?;
        let rec = SigningKeyRecord {
            tenant: tenant.to_owned(),
            kid: key.kid.clone(),
            alg: jose_name(alg).to_owned(),
            private_key: self.secret.encrypt(&pkcs8, &seal_context(tenant, &key.kid)),
            public_jwk: key.public_jwk.clone(),
            created_at: now,
            retired_at: None,
        };
        Ok((rec, Arc::new(key)))
    }
}

#[async_trait]
impl AccessTokenSigner for SigningKeys {
    /// Signs with the tenant's current key as of the token's `iat` (or now, without one).
    async fn sign(&self, tenant: &str, claims: Map<String, Value>) -> Result<String, String> {
        let now = claims
            .get("iat")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| SystemClock.now());
        let key = self.current(tenant, now).await.map_err(|e| e.to_string())?;
        SigningKeys::sign(self, &key, &claims).map_err(|e| e.to_string())
    }
}

/// The AES-GCM associated data that binds a sealed key to its tenant and kid.
fn seal_context(tenant: &str, kid: &str) -> String {
    format!("signing-key:{tenant}:{kid}")
}

fn jose_name(alg: SigningAlg) -> &'static str {
    match alg {
        SigningAlg::RS256 => "RS256",
        SigningAlg::PS256 => "PS256",
        SigningAlg::ES256 => "ES256",
        SigningAlg::EdDSA => "EdDSA",
    }
}

fn jose_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::PS256 => Algorithm::PS256,
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// The public half of a key, in JWK terms.
enum PublicKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { x: Vec<u8>, y: Vec<u8> },
    Ed25519 { x: Vec<u8> },
}

impl PublicKey {
    /// The members RFC 7638 requires for the key type, in lexicographic order.
    fn members(&self) -> Vec<(&'static str, String)> {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            PublicKey::Rsa { n, e } => vec![("e", b64(e)), ("kty", "RSA".into()), ("n", b64(n))],
            PublicKey::P256 { x, y } => vec![
                ("crv", "P-256".into()),
                ("kty", "EC".into()),
                ("x", b64(x)),
                ("y", b64(y)),
            ],
            PublicKey::Ed25519 { x } => vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", b64(x)),
            ],
        }
    }

    /// The kid: base64url of the SHA-256 JWK thumbprint (RFC 7638). The members are ASCII
    /// names and base64url values, so they need no JSON escaping.
    fn thumbprint(&self) -> String {
        let members = self.members();
        let members: Vec<String> = members
            .iter()
            .map(|(name, value)| format!("\"{name}\":\"{value}\""))
            .collect();
        let canonical = format!("{{{}}}", members.join(","));
        URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
    }
}

/// The public key and jsonwebtoken's signing key from a PKCS#8 DER private key.
fn parse_pkcs8(alg: SigningAlg, pkcs8: &[u8]) -> Result<(PublicKey, EncodingKey), String> {
    match alg {
        SigningAlg::RS256 | SigningAlg::PS256 => {
            // jsonwebtoken (ring) wants the PKCS#1 RSAPrivateKey that PKCS#8 wraps.
            let info = PrivateKeyInfo::try_from(pkcs8).map_err(|e| e.to_string())?;
            if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
                return Err("not an RSA key".into());
            }
            let key =
                rsa::pkcs1::RsaPrivateKey::try_from(info.private_key).map_err(|e| e.to_string())?;
            let public = PublicKey::Rsa {
                n: key.modulus.as_bytes().to_vec(),
                e: key.public_exponent.as_bytes().to_vec(),
            };
            Ok((public, EncodingKey::from_rsa_der(info.private_key)))
        }
        SigningAlg::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8,
                &SystemRandom::new(),
            )
            .map_err(|e| e.to_string())?;
            // An uncompressed point: 0x04 ‖ x ‖ y.
            let (x, y) = pair.public_key().as_ref()[1..].split_at(32);
            let public = PublicKey::P256 {
                x: x.to_vec(),
                y: y.to_vec(),
            };
            Ok((public, EncodingKey::from_ec_der(pkcs8)))
        }
        SigningAlg::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| e.to_string())?;
            let public = PublicKey::Ed25519 {
                x: pair.public_key().as_ref().to_vec(),
            };
            Ok((public, EncodingKey::from_ed_der(pkcs8)))
        }
    }
}

/// Makes a key (blocking: RSA generation is slow): its PKCS#8 DER and the ready key.
fn new_key(alg: SigningAlg, tenant: &str, now: i64) -> Result<(Vec<u8>, SigningKey), String> {
    let rng = SystemRandom::new();
    let pkcs8 = match alg {
        SigningAlg::RS256 | SigningAlg::PS256 => {
            rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
                .map_err(|e| e.to_string())?
                .to_pkcs8_der()
                .map_err(|e| e.to_string())?
                .as_bytes()
                .to_vec()
        }
        SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "P-256 key generation failed")?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| "Ed25519 key generation failed")?
            .as_ref()
            .to_vec(),
    };
    let (public, encoding) = parse_pkcs8(alg, &pkcs8)?;
    let kid = public.thumbprint();
    let cert = certificate(alg, &pkcs8, tenant, now).map_err(|e| format!("certificate: {e}"))?;
    let mut jwk: Map<String, Value> = public
        .members()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Value::String(value)))
        .collect();
    jwk.insert("kid".into(), kid.clone().into());
    jwk.insert("alg".into(), jose_name(alg).into());
    jwk.insert("use".into(), "sig".into());
    jwk.insert("x5c".into(), json!([STANDARD.encode(&cert)]));
    jwk.insert(
        "x5t#S256".into(),
        URL_SAFE_NO_PAD.encode(digest(&SHA256, &cert)).into(),
    );
    let key = SigningKey {
        kid,
        alg: jose_alg(alg),
        encoding,
        public_jwk: Value::Object(jwk),
    };
    Ok((pkcs8, key))
}

/// A self-signed certificate (DER) for the key, `CN=Tollgate {tenant}`, valid from the day it
/// is made with no expiry (RFC 5280's 99991231235959Z): the key's lifetime is governed by
/// rotation, not by the certificate.
fn certificate(
    alg: SigningAlg,
    pkcs8: &[u8],
    tenant: &str,
    now: i64,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair as CertKey};
    use time::{Date, Month, OffsetDateTime, Time};
    // The certificate's own signature; PS256 keys are plain RSA keys, so PKCS#1 v1.5 serves
    // both RSA algorithms and is what every X.509 stack checks.
    let sign_alg = match alg {
        SigningAlg::RS256 | SigningAlg::PS256 => &rcgen::PKCS_RSA_SHA256,
        SigningAlg::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SigningAlg::EdDSA => &rcgen::PKCS_ED25519,
    };
    let key = CertKey::from_pkcs8_der_and_sign_algo(&pkcs8.into(), sign_alg)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Tollgate {tenant}"));
    params.not_before = OffsetDateTime::from_unix_timestamp(now)?.replace_time(Time::MIDNIGHT);
    params.not_after = Date::from_calendar_date(9999, Month::December, 31)?
        .with_hms(23, 59, 59)?
        .assume_utc();
    Ok(params.self_signed(&key)?.der().to_vec())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Validation};
    use tokio::task::JoinSet;

    use super::*;

    const T0: i64 = 1_700_000_000;
    const TTL: i64 = 3600;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, &Default::default()).await.unwrap();
        (dir, store)
    }

    fn host(store: &Store, alg: SigningAlg, secret: u8) -> SigningKeys {
        let secret = Arc::new(ServerSecret::from_bytes(&[secret; 32]));
        SigningKeys::new(store.clone(), secret, alg, TTL)
    }

    fn claims(iat: i64) -> Map<String, Value> {
        let exp = 4_000_000_000_i64;
        let claims = json!({"iss": "https://t/oauth2/token", "sub": "c1", "iat": iat, "exp": exp});
        claims.as_object().unwrap().clone()
    }

    fn entry(jwks: &Value, kid: &str) -> Option<Value> {
        let keys = jwks["keys"].as_array().unwrap();
        keys.iter().find(|k| k["kid"] == kid).cloned()
    }

    fn kids(jwks: &Value) -> Vec<&str> {
        let keys = jwks["keys"].as_array().unwrap();
        keys.iter().map(|k| k["kid"].as_str().unwrap()).collect()
    }

    /// Checks `token` against the JWKS entry for its kid; returns its header.
    fn verify(token: &str, jwks: &Value, alg: SigningAlg) -> Header {
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk: Jwk =
            serde_json::from_value(entry(jwks, header.kid.as_deref().unwrap()).unwrap()).unwrap();
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let data = jsonwebtoken::decode::<Value>(token, &decoding, &Validation::new(jose_alg(alg)))
            .unwrap();
        assert_eq!(data.claims["sub"], "c1");
        assert_eq!(header.alg, jose_alg(alg));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        header
    }

    /// The published JWK has the contract's members plus x5c / x5t#S256, and its certificate
    /// is for this very key.
    fn check_jwk(jwk: &Value, alg: SigningAlg, tenant: &str) {
        let mut names: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let want: &[&str] = match alg {
            SigningAlg::RS256 | SigningAlg::PS256 => {
                &["alg", "e", "kid", "kty", "n", "use", "x5c", "x5t#S256"]
            }
            SigningAlg::ES256 => &[
                "alg", "crv", "kid", "kty", "use", "x", "x5c", "x5t#S256", "y",
            ],
            SigningAlg::EdDSA => &["alg", "crv", "kid", "kty", "use", "x", "x5c", "x5t#S256"],
        };
        assert_eq!(names, want);
        assert_eq!(jwk["alg"], jose_name(alg));
        assert_eq!(jwk["use"], "sig");
        let x5c = jwk["x5c"].as_array().unwrap();
        assert_eq!(x5c.len(), 1);
        let cert = STANDARD.decode(x5c[0].as_str().unwrap()).unwrap();
        assert_eq!(
            jwk["x5t#S256"],
            URL_SAFE_NO_PAD.encode(digest(&SHA256, &cert))
        );

        let (_, cert) = x509_parser::parse_x509_certificate(&cert).unwrap();
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), format!("Tollgate {tenant}"));
        assert_eq!(cert.subject(), cert.issuer());
        let b64 = |s: &Value| URL_SAFE_NO_PAD.decode(s.as_str().unwrap()).unwrap();
        let raw = &cert.public_key().subject_public_key.data;
        match alg {
            SigningAlg::RS256 | SigningAlg::PS256 => {
                // RSAPublicKey ::= SEQUENCE { n, e }: the modulus is in there, whole.
                let n = b64(&jwk["n"]);
                assert!(raw.windows(n.len()).any(|w| w == n.as_slice()));
                assert_eq!(jwk["kty"], "RSA");
                assert_eq!(jwk["e"], "AQAB");
            }
            SigningAlg::ES256 => {
                let point = [&[4u8][..], &b64(&jwk["x"]), &b64(&jwk["y"])].concat();
                assert_eq!(raw.as_ref(), point.as_slice());
                assert_eq!(
                    (jwk["kty"].as_str(), jwk["crv"].as_str()),
                    (Some("EC"), Some("P-256"))
                );
            }
            SigningAlg::EdDSA => {
                assert_eq!(raw.as_ref(), b64(&jwk["x"]).as_slice());
                assert_eq!(
                    (jwk["kty"].as_str(), jwk["crv"].as_str()),
                    (Some("OKP"), Some("Ed25519"))
                );
            }
        }
        // Self-signed: the signature checks out against the key it certifies.
        use ring::signature as sig;
        let verifier: &dyn sig::VerificationAlgorithm = match alg {
            SigningAlg::RS256 | SigningAlg::PS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            SigningAlg::ES256 => &sig::ECDSA_P256_SHA256_ASN1,
            SigningAlg::EdDSA => &sig::ED25519,
        };
        sig::UnparsedPublicKey::new(verifier, raw.as_ref())
            .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
            .unwrap();
    }

    async fn lifecycle(alg: SigningAlg) {
        let (_dir, store) = store().await;
        let keys = host(&store, alg, 7);

        // Made at first use, then the same key: cached, and persisted for other hosts.
        let first = keys.current("acme", T0).await.unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &keys.current("acme", T0 + 1).await.unwrap()
        ));
        let other_host = host(&store, alg, 7);
        assert_eq!(other_host.current("acme", T0).await.unwrap().kid, first.kid);
        // A host with another server secret cannot use it.
        let wrong_secret = host(&store, alg, 8);
        let err = wrong_secret.current("acme", T0).await.unwrap_err();
        assert!(matches!(err, KeyError::Sealed { .. }), "{err}");
        // Tenants have keys of their own.
        assert_ne!(keys.current("other", T0).await.unwrap().kid, first.kid);

        // The stored private key is sealed.
        let rec = store.current_key("acme").await.unwrap().unwrap();
        assert_eq!(rec.alg, jose_name(alg));
        let der = ServerSecret::from_bytes(&[7; 32])
            .decrypt(&rec.private_key, &format!("signing-key:acme:{}", first.kid))
            .unwrap();
        for clear in [
            STANDARD.encode(&der),
            URL_SAFE_NO_PAD.encode(&der),
            hex::encode(&der),
        ] {
            assert!(!rec.private_key.contains(&clear[..32]));
        }
        assert!(!rec.private_key.contains("PRIVATE KEY"));
        assert_eq!(rec.public_jwk, first.public_jwk);

        // Signed tokens verify against the published key.
        let jwks = keys.jwks("acme", T0).await.unwrap();
        assert_eq!(kids(&jwks), [first.kid.as_str()]);
        check_jwk(&jwks["keys"][0], alg, "acme");
        let old_token = keys.sign(&first, &claims(T0)).unwrap();
        assert_eq!(
            verify(&old_token, &jwks, alg).kid.as_deref(),
            Some(first.kid.as_str())
        );
        let signer: &dyn AccessTokenSigner = &keys;
        let token = signer.sign("acme", claims(T0 + 2)).await.unwrap();
        assert_eq!(verify(&token, &jwks, alg).kid, Some(first.kid.clone()));

        // Rotation: a new key signs; the old one stays published while its tokens may live.
        let t1 = T0 + 30;
        let second = keys.rotate("acme", t1).await.unwrap();
        assert_ne!(second.kid, first.kid);
        assert_eq!(keys.current("acme", t1).await.unwrap().kid, second.kid);
        let token = signer.sign("acme", claims(t1)).await.unwrap();
        let jwks = keys.jwks("acme", t1).await.unwrap();
        assert_eq!(kids(&jwks), [second.kid.as_str(), first.kid.as_str()]);
        check_jwk(&jwks["keys"][0], alg, "acme");
        assert_eq!(verify(&token, &jwks, alg).kid, Some(second.kid.clone()));
        verify(&old_token, &jwks, alg);
        // Another host picks up the new key once its cache is stale.
        assert_eq!(
            other_host
                .current("acme", T0 + CACHE_SECS - 1)
                .await
                .unwrap()
                .kid,
            first.kid
        );
        assert_eq!(
            other_host
                .current("acme", T0 + CACHE_SECS)
                .await
                .unwrap()
                .kid,
            second.kid
        );

        let gone = t1 + TTL + CACHE_SECS;
        assert_eq!(kids(&keys.jwks("acme", gone).await.unwrap()).len(), 2);
        assert_eq!(
            kids(&keys.jwks("acme", gone + 1).await.unwrap()),
            [second.kid.as_str()]
        );
        // Nothing is made for a tenant just by looking.
        assert_eq!(keys.jwks("nobody", T0).await.unwrap(), json!({"keys": []}));
    }

    /// Two hosts, 20 concurrent first requests of a new tenant: one key.
    async fn race(alg: SigningAlg) {
        let (_dir, store) = store().await;
        let hosts = [
            Arc::new(host(&store, alg, 7)),
            Arc::new(host(&store, alg, 7)),
        ];
        let mut tasks = JoinSet::new();
        for i in 0..20 {
            let host = hosts[i % 2].clone();
            tasks.spawn(async move { host.current("fresh", T0).await.unwrap().kid.clone() });
        }
        let mut kids = tasks.join_all().await;
        kids.sort();
        kids.dedup();
        assert_eq!(kids.len(), 1, "{kids:?}");
        assert_eq!(store.published_keys("fresh", 0).await.unwrap().len(), 1);
    }

    /// A change of signing_alg retires the old key at the next load; it stays published.
    #[tokio::test]
    async fn a_new_alg_replaces_the_key() {
        let (_dir, store) = store().await;
        let es = host(&store, SigningAlg::ES256, 7)
            .current("acme", T0)
            .await
            .unwrap();
        let ed = host(&store, SigningAlg::EdDSA, 7)
            .current("acme", T0 + 1)
            .await
            .unwrap();
        assert_eq!(ed.alg, Algorithm::EdDSA);
        let jwks = host(&store, SigningAlg::EdDSA, 7)
            .jwks("acme", T0 + 1)
            .await
            .unwrap();
        assert_eq!(kids(&jwks), [ed.kid.as_str(), es.kid.as_str()]);
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let key = PublicKey::Rsa {
            n: URL_SAFE_NO_PAD.decode(n).unwrap(),
            e: vec![1, 0, 1],
        };
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn errors_carry_no_key_material() {
        let err = KeyError::Sealed {
            tenant: "acme".into(),
            kid: "k1".into(),
            reason: "cannot decrypt".into(),
        };
        assert_eq!(
            err.to_string(),
            "signing key k1 of tenant acme: cannot decrypt"
        );
        let key = format!("{:?}", new_key(SigningAlg::EdDSA, "acme", T0).unwrap().1);
        assert!(
            key.starts_with("SigningKey { kid:") && !key.contains("encoding"),
            "{key}"
        );
    }

    macro_rules! per_alg {
        ($($name:ident: $alg:ident),* $(,)?) => {
            $(
                mod $name {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn lifecycle() {
                        super::lifecycle(super::SigningAlg::$alg).await
                    }
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn race() {
                        super::race(super::SigningAlg::$alg).await
                    }
                }
            )*
        };
    }

    per_alg!(rs256: RS256, ps256: PS256, es256: ES256, eddsa: EdDSA);
}
