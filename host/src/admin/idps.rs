//! Identity providers under `/api/server/v1/identity-providers`, in the shape of WSO2's REST API
//! (CONTRACT §5): the IdPs whose assertions a tenant accepts for the JWT bearer grant.
//!
//! ```json
//! { "name": "https://idp.example.com", "alias": "https://localhost:9443/oauth2/token",
//!   "isEnabled": true, "description": "…",
//!   "certificate": { "jwksUri": "https://idp.example.com/jwks" } }
//! ```
//! `certificate` holds exactly one of `jwksUri` or `certificates` (PEM, or base64 of PEM as
//! WSO2's console sends it, or base64 of DER). Each certificate is parsed as X.509 and its key
//! must be one the validators will use — RSA of at least 2048 bits, EC P-256/P-384 or Ed25519
//! (CONTRACT §6) — so that a useless trust source is refused at registration, not at the first
//! assertion. Certificates are stored (and shown) as normalised PEM. An absent `alias` is stored
//! as such and shown as the tenant's token endpoint URL, its default.
//!
//! Errors use WSO2's `{"code", "message", "description"}`: `IDP-60003` (invalid create request)
//! and `IDP-60006` (invalid update request) with 400, `IDP-60001` name taken (409), `IDP-60002`
//! unknown id (404), `IDP-65001` storage failure (500).
//!
//! The key policy is [`crate::keys::jwk`]'s, shared with client registration and the key
//! service; [`check_jwks_uri`] is shared with client registration.

use crate::keys::jwk;
use crate::oauth::exchange::{Request, Response};
use crate::oauth::{acceptable_jwks_uri, OAuth, Settings};
use crate::secret::random_bytes;
use crate::store::StoreError;
use crate::store::{IdpRecord, UpdateOutcome};
use serde_json::{json, Map, Value};

/// Whether a `jwks_uri` may be registered: fetching must be on (CONTRACT §3) and the URI
/// acceptable ([`acceptable_jwks_uri`]).
pub fn check_jwks_uri(uri: &str, settings: &Settings) -> Result<(), String> {
    if !settings.jwks_fetch_enabled {
        return Err(
            "a JWKS URI cannot be registered: fetching is disabled \
                    ([oauth.jwks_endpoint] enable = false); register keys or certificates instead"
                .into(),
        );
    }
    acceptable_jwks_uri(uri, settings.allow_insecure_http)
}

/// How an IdP's signatures are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    JwksUri(String),
    /// Normalised PEM, one certificate each.
    Certificates(Vec<String>),
}

/// A validated IdP record, as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpInput {
    pub name: String,
    pub alias: Option<String>,
    pub enabled: bool,
    pub description: Option<String>,
    pub trust: Trust,
}

/// Parses and validates a create or replace body. Unknown members (WSO2's federated
/// authenticators, claims, …) are ignored; `null` counts as absent.
pub fn parse(body: &[u8], settings: &Settings) -> Result<IdpInput, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body must be a JSON object".into());
    };
    let name = string(&fields, "name")?
        .filter(|n| !n.trim().is_empty())
        .ok_or("name is required (the issuer, iss, of the IdP's assertions)")?
        .to_owned();
    let alias = match string(&fields, "alias")? {
        Some(a) if a.trim().is_empty() => return Err("alias must not be empty".into()),
        alias => alias.map(str::to_owned),
    };
    let enabled = match fields.get("isEnabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("isEnabled must be true or false".into()),
    };
    let description = string(&fields, "description")?.map(str::to_owned);
    let certificate = match fields.get("certificate") {
        Some(Value::Object(c)) => c,
        None | Some(Value::Null) => {
            return Err(
                "certificate is required: {\"jwksUri\": …} or {\"certificates\": [PEM, …]}".into(),
            )
        }
        Some(_) => return Err("certificate must be an object".into()),
    };
    // An empty jwksUri or certificates list (as forms send them) counts as absent.
    let jwks_uri = string(certificate, "jwksUri")?.filter(|u| !u.is_empty());
    let certificates = match certificate.get("certificates") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or("certificate.certificates must be an array of strings")
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("certificate.certificates must be an array of strings".into()),
    };
    let trust = match (jwks_uri, certificates.is_empty()) {
        (Some(_), false) => {
            return Err("certificate must hold jwksUri or certificates, not both".into())
        }
        (None, true) => {
            return Err("certificate needs jwksUri or a non-empty certificates list".into())
        }
        (Some(uri), true) => {
            check_jwks_uri(uri, settings)?;
            Trust::JwksUri(uri.to_owned())
        }
        (None, false) => Trust::Certificates(
            certificates
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    normalise_certificate(c).map_err(|e| format!("certificates[{i}]: {e}"))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(IdpInput {
        name,
        alias,
        enabled,
        description,
        trust,
    })
}

/// A string member; `Ok(None)` when absent or `null`.
fn string<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name} must be a string")),
    }
}

/// One certificate — PEM, base64 of PEM, or base64 of DER — checked and returned as PEM.
pub fn normalise_certificate(text: &str) -> Result<String, String> {
    jwk::certificate(text).map(|(pem, _)| pem)
}

/// A new id: 128 random bits as a version 4 UUID.
pub fn new_id() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl IdpInput {
    /// The stored record with id `id` of `tenant`.
    pub fn into_record(
        self,
        tenant: &str,
        id: &str,
        created_at: i64,
        updated_at: i64,
    ) -> IdpRecord {
        let (jwks_uri, certificates) = match self.trust {
            Trust::JwksUri(uri) => (Some(uri), Vec::new()),
            Trust::Certificates(pems) => (None, pems),
        };
        let mut record = IdpRecord {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            name: self.name,
            alias: self.alias,
            enabled: self.enabled,
            jwks_uri,
            certificates,
            record: Value::Null,
            created_at,
            updated_at,
        };
        record.record = shape(
            &record,
            record.alias.as_deref(),
            self.description.as_deref(),
        );
        record
    }
}

/// The WSO2-shaped record; `alias` omitted when `None`.
fn shape(r: &IdpRecord, alias: Option<&str>, description: Option<&str>) -> Value {
    let certificate = match &r.jwks_uri {
        Some(uri) => json!({ "jwksUri": uri }),
        None => json!({ "certificates": r.certificates }),
    };
    let mut out = json!({
        "id": r.id,
        "name": r.name,
        "isEnabled": r.enabled,
        "certificate": certificate,
    });
    let fields = out.as_object_mut().expect("a JSON object");
    if let Some(alias) = alias {
        fields.insert("alias".into(), alias.into());
    }
    if let Some(description) = description {
        fields.insert("description".into(), description.into());
    }
    out
}

/// The record as the API shows it: with the default alias when none was set.
pub fn view(r: &IdpRecord, default_alias: &str) -> Value {
    let description = r.record.get("description").and_then(Value::as_str);
    shape(
        r,
        Some(r.alias.as_deref().unwrap_or(default_alias)),
        description,
    )
}

/// A WSO2 REST API error.
fn api_error(status: u16, code: &str, message: impl Into<String>, description: &str) -> Response {
    let message = message.into();
    let description = if description.is_empty() {
        message.as_str()
    } else {
        description
    };
    Response::json(
        status,
        json!({"code": code, "message": message, "description": description}),
    )
}

fn invalid(code: &str, detail: String) -> Response {
    api_error(
        400,
        code,
        format!("Invalid identity provider: {detail}"),
        "",
    )
}

fn not_found(id: &str) -> Response {
    api_error(
        404,
        "IDP-60002",
        "Identity provider not found",
        &format!("Identity provider with resource ID: {id} does not exist"),
    )
}

fn name_taken(name: &str) -> Response {
    api_error(
        409,
        "IDP-60001",
        format!("Identity provider with the name {name} already exists"),
        "",
    )
}

fn storage_error(operation: &str, e: StoreError) -> Response {
    tracing::error!("{operation}: {e}");
    api_error(500, "IDP-65001", "Unexpected error", "storage unavailable")
}

/// `POST`: 201 with the record, its `id` and a `Location`.
pub async fn create(oauth: &OAuth, request: &Request) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let input = match parse(&request.body, &oauth.settings) {
        Ok(input) => input,
        Err(e) => return invalid("IDP-60003", e),
    };
    let now = oauth.clock.now();
    let record = input.into_record(&tenant, &new_id(), now, now);
    match oauth.store.insert_idp(&record).await {
        Ok(true) => {
            tracing::info!(
                tenant,
                id = record.id,
                name = record.name,
                "identity provider added"
            );
            let location = oauth.tenant_url(
                &tenant,
                &format!("/api/server/v1/identity-providers/{}", record.id),
            );
            Response::json(201, view(&record, &oauth.endpoint_url(&tenant)))
                .with_header("location", location)
        }
        Ok(false) => name_taken(&record.name),
        Err(e) => storage_error("insert_idp", e),
    }
}

/// `GET`: every IdP of the tenant.
pub async fn list(oauth: &OAuth, request: &Request) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match oauth.store.list_idps(&tenant).await {
        Ok(idps) => {
            let alias = oauth.endpoint_url(&tenant);
            let shown: Vec<Value> = idps.iter().map(|r| view(r, &alias)).collect();
            Response::json(
                200,
                json!({"totalResults": shown.len(), "identityProviders": shown}),
            )
        }
        Err(e) => storage_error("list_idps", e),
    }
}

/// `GET …/{id}`.
pub async fn get(oauth: &OAuth, request: &Request, id: &str) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match oauth.store.idp(&tenant, id).await {
        Ok(Some(record)) => Response::json(200, view(&record, &oauth.endpoint_url(&tenant))),
        Ok(None) => not_found(id),
        Err(e) => storage_error("idp", e),
    }
}

/// `PUT …/{id}`: replaces the whole record (an `id` in the body, if any, must be this one).
pub async fn replace(oauth: &OAuth, request: &Request, id: &str) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let existing = match oauth.store.idp(&tenant, id).await {
        Ok(Some(record)) => record,
        Ok(None) => return not_found(id),
        Err(e) => return storage_error("idp", e),
    };
    let input = match parse(&request.body, &oauth.settings) {
        Ok(input) => input,
        Err(e) => return invalid("IDP-60006", e),
    };
    let body_id = serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
    if body_id.is_some_and(|b| b != id) {
        return invalid(
            "IDP-60006",
            "id in the body differs from the id in the path".into(),
        );
    }
    let record = input.into_record(&tenant, id, existing.created_at, oauth.clock.now());
    match oauth.store.update_idp(&record).await {
        Ok(UpdateOutcome::Updated) => {
            tracing::info!(tenant, id, name = record.name, "identity provider replaced");
            Response::json(200, view(&record, &oauth.endpoint_url(&tenant)))
        }
        Ok(UpdateOutcome::NotFound) => not_found(id),
        Ok(UpdateOutcome::NameTaken) => name_taken(&record.name),
        Err(e) => storage_error("update_idp", e),
    }
}

/// `DELETE …/{id}`: 204.
pub async fn delete(oauth: &OAuth, request: &Request, id: &str) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match oauth.store.delete_idp(&tenant, id).await {
        Ok(true) => {
            tracing::info!(tenant, id, "identity provider deleted");
            Response::empty(204)
        }
        Ok(false) => not_found(id),
        Err(e) => storage_error("delete_idp", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::deployment::TokenFormat;
    use crate::keys::jwk::{modulus_bits, pem_to_der, PEM_BEGIN, PEM_END};
    use base64::{engine::general_purpose::STANDARD, Engine};
    use rcgen::{
        CertificateParams, KeyPair, PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
        PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
    };
    use rsa::pkcs1::EncodeRsaPublicKey;

    /// An EC P-521 certificate (openssl req -x509 -newkey ec -pkeyopt
    /// ec_paramgen_curve:P-521): a key type the validators do not use.
    const P521_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIB/DCCAV6gAwIBAgIUdRQkGkyc6P9BvFNOKvDsxASKvtYwCgYIKoZIzj0EAwIw
DzENMAsGA1UEAwwEcDUyMTAgFw0yNjExMjMxNDE5NDdaGA8yMTI2MTAzMDE0MTk0
N1owDzENMAsGA1UEAwwEcDUyMTCBmzAQBgcqhkjOPQIBBgUrgQQAIwOBhgAEAaZL
np/ivvjR5vXmO7LYpsX1Na8nvLv877PYLBHkuWqIGN8VLF8pSQhEUatIEH/wZkCs
4Q3kY75F6kM2ZHPpVAp8AXGs/YMrJJbLgntYhtVF0G4vWebzo8y26JJDcE0Ea58U
VXcFvFbeusYmhdkvhAqa9yYzyuHQAb9Um27y8lGmR9Beo1MwUTAdBgNVHQ4EFgQU
+TPs/IKXW/cWyDO1HtS2SCi+7xUwHwYDVR0jBBgwFoAU+TPs/IKXW/cWyDO1HtS2
SCi+7xUwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgOBiwAwgYcCQU6/amfP
hj4iygP/sxgNAWx3u1mgrHMeGEZcrZkzkv/DoSsU5QePEBbMnkoRQwppxFv1atCx
fd8imcC1VQ57Zta/AkIBzlZGgtU7Nwh3xZKhAh3knpw8UzBlcvquBQjsBRrjIfU1
4nikEP9nyK9G3PIj2ghuKCOgFJNszgNAyoYRDjjcFvA=
-----END CERTIFICATE-----
";

    fn settings(fetch: bool) -> Settings {
        Settings {
            base_url: "https://localhost:9443".into(),
            default_format: TokenFormat::Opaque,
            jwks_fetch_enabled: fetch,
            allow_insecure_http: false,
        }
    }

    /// An RSA public key (PKCS#1) as the subject key of an rcgen certificate.
    struct RsaSubject(Vec<u8>);
    impl PublicKeyData for RsaSubject {
        fn der_bytes(&self) -> &[u8] {
            &self.0
        }
        fn algorithm(&self) -> &SignatureAlgorithm {
            &PKCS_RSA_SHA256
        }
    }

    fn params() -> CertificateParams {
        CertificateParams::new(vec!["idp.example.com".into()]).unwrap()
    }

    /// A certificate for a fresh RSA key of `bits` bits, issued by an EC CA (ring signs RSA
    /// but cannot generate RSA keys; the rsa crate makes the key).
    fn rsa_cert(bits: usize) -> String {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
        let subject = RsaSubject(
            key.to_public_key()
                .to_pkcs1_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
        );
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let ca = CertificateParams::new(vec!["ca.example.com".into()])
            .unwrap()
            .self_signed(&ca_key)
            .unwrap();
        params().signed_by(&subject, &ca, &ca_key).unwrap().pem()
    }

    fn self_signed(alg: &'static SignatureAlgorithm) -> String {
        let key = KeyPair::generate_for(alg).unwrap();
        params().self_signed(&key).unwrap().pem()
    }

    fn body(certificate: Value) -> Vec<u8> {
        json!({"name": "https://idp.example.com", "certificate": certificate})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn modulus_bits_ignore_leading_zeros() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(modulus_bits(&[1]), 1);
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x7f; 256]), 2047);
        assert_eq!(modulus_bits(&[0xff; 256]), 2048);
    }

    #[test]
    fn rsa_certificates_need_2048_bits() {
        let good = rsa_cert(2048);
        let pem = normalise_certificate(&good).unwrap();
        assert_eq!(pem, good);
        let e = normalise_certificate(&rsa_cert(1024)).unwrap_err();
        assert!(e.contains("1024 bits"), "{e}");
    }

    #[test]
    fn ec_and_ed25519_certificates_are_accepted_p521_is_not() {
        for alg in [
            &PKCS_ECDSA_P256_SHA256,
            &PKCS_ECDSA_P384_SHA384,
            &PKCS_ED25519,
        ] {
            let pem = self_signed(alg);
            assert_eq!(normalise_certificate(&pem).unwrap(), pem);
        }
        let e = normalise_certificate(P521_CERT).unwrap_err();
        assert!(e.contains("P-256 or P-384"), "{e}");
    }

    #[test]
    fn base64_of_pem_and_of_der_are_normalised_to_pem() {
        let pem = self_signed(&PKCS_ECDSA_P256_SHA256);
        assert_eq!(normalise_certificate(&STANDARD.encode(&pem)).unwrap(), pem);
        let der = pem_to_der(pem.trim()).unwrap();
        assert_eq!(normalise_certificate(&STANDARD.encode(&der)).unwrap(), pem);
        // PEM pasted onto one line, or with CRLF line ends.
        let one_line = pem.replace('\n', " ");
        assert_eq!(normalise_certificate(&one_line).unwrap(), pem);
        assert_eq!(
            normalise_certificate(&pem.replace('\n', "\r\n")).unwrap(),
            pem
        );
    }

    #[test]
    fn malformed_certificates_are_refused() {
        let pem = self_signed(&PKCS_ECDSA_P256_SHA256);
        let two = format!("{pem}{pem}");
        assert!(normalise_certificate(&two)
            .unwrap_err()
            .contains("exactly one"));
        assert!(normalise_certificate("hello").is_err());
        assert!(normalise_certificate(&STANDARD.encode("hello"))
            .unwrap_err()
            .contains("X.509"));
        let truncated = format!("{PEM_BEGIN}\nMIIB/DCCAV6gAwIBAgIU\n{PEM_END}\n");
        assert!(normalise_certificate(&truncated).is_err());
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem();
        assert!(normalise_certificate(&key)
            .unwrap_err()
            .contains("not a CERTIFICATE"));
        let no_end = pem.replace(PEM_END, "");
        assert!(normalise_certificate(&no_end).unwrap_err().contains("END"));
        let mut der = pem_to_der(pem.trim()).unwrap();
        der.push(0);
        assert!(normalise_certificate(&STANDARD.encode(&der))
            .unwrap_err()
            .contains("trailing"));
    }

    #[test]
    fn a_minimal_record_gets_its_defaults() {
        let input = parse(
            &body(json!({"jwksUri": "https://idp.example.com/jwks"})),
            &settings(true),
        )
        .unwrap();
        assert_eq!(
            input,
            IdpInput {
                name: "https://idp.example.com".into(),
                alias: None,
                enabled: true,
                description: None,
                trust: Trust::JwksUri("https://idp.example.com/jwks".into()),
            }
        );
    }

    #[test]
    fn every_field_is_read() {
        let pem = self_signed(&PKCS_ED25519);
        let b = json!({
            "name": "iss-1", "alias": "https://as.example/token", "isEnabled": false,
            "description": "partner", "certificate": {"certificates": [STANDARD.encode(&pem)], "jwksUri": ""},
            "federatedAuthenticators": {"authenticators": []},
        });
        let input = parse(b.to_string().as_bytes(), &settings(false)).unwrap();
        assert_eq!(input.alias.as_deref(), Some("https://as.example/token"));
        assert!(!input.enabled);
        assert_eq!(input.description.as_deref(), Some("partner"));
        assert_eq!(input.trust, Trust::Certificates(vec![pem]));
    }

    #[test]
    fn invalid_records_are_refused() {
        let s = settings(true);
        let e = |b: Value| parse(b.to_string().as_bytes(), &s).unwrap_err();
        let jwks = json!({"jwksUri": "https://idp.example.com/jwks"});
        assert!(parse(b"nope", &s).is_err());
        assert!(e(json!({"certificate": jwks})).contains("name is required"));
        assert!(e(json!({"name": "", "certificate": jwks})).contains("name is required"));
        assert!(e(json!({"name": 1, "certificate": jwks})).contains("name must be a string"));
        assert!(e(json!({"name": "i", "alias": "", "certificate": jwks})).contains("alias"));
        assert!(
            e(json!({"name": "i", "isEnabled": "yes", "certificate": jwks})).contains("isEnabled")
        );
        assert!(e(json!({"name": "i"})).contains("certificate is required"));
        assert!(e(json!({"name": "i", "certificate": "x"})).contains("must be an object"));
        assert!(e(json!({"name": "i", "certificate": {}})).contains("needs jwksUri"));
        assert!(
            e(json!({"name": "i", "certificate": {"certificates": []}})).contains("needs jwksUri")
        );
        assert!(
            e(json!({"name": "i", "certificate": {"certificates": [1]}}))
                .contains("array of strings")
        );
        let both =
            json!({"jwksUri": "https://i/jwks", "certificates": [self_signed(&PKCS_ED25519)]});
        assert!(e(json!({"name": "i", "certificate": both})).contains("not both"));
        let bad = json!({"certificates": [self_signed(&PKCS_ED25519), "junk"]});
        assert!(e(json!({"name": "i", "certificate": bad})).starts_with("certificates[1]"));
        let http = json!({"jwksUri": "http://idp.example.com/jwks"});
        assert!(e(json!({"name": "i", "certificate": http})).contains("https"));
        let disabled = parse(&body(jwks), &settings(false)).unwrap_err();
        assert!(disabled.contains("disabled"), "{disabled}");
    }

    #[test]
    fn records_are_stored_and_shown_in_wso2_shape() {
        let input = IdpInput {
            name: "iss".into(),
            alias: None,
            enabled: true,
            description: Some("d".into()),
            trust: Trust::JwksUri("https://i/jwks".into()),
        };
        let record = input.into_record("acme", "id-1", 10, 20);
        assert_eq!(
            (record.jwks_uri.as_deref(), record.certificates.len()),
            (Some("https://i/jwks"), 0)
        );
        assert_eq!(record.record.get("alias"), None);
        assert_eq!(
            view(&record, "https://h/t/acme/oauth2/token"),
            json!({
                "id": "id-1", "name": "iss", "alias": "https://h/t/acme/oauth2/token",
                "isEnabled": true, "description": "d", "certificate": {"jwksUri": "https://i/jwks"},
            })
        );
        let pem = self_signed(&PKCS_ECDSA_P256_SHA256);
        let with_alias = IdpInput {
            name: "iss".into(),
            alias: Some("aud".into()),
            enabled: false,
            description: None,
            trust: Trust::Certificates(vec![pem.clone()]),
        }
        .into_record("acme", "id-2", 1, 1);
        let shown = view(&with_alias, "unused");
        assert_eq!(shown["alias"], "aud");
        assert_eq!(shown["certificate"], json!({"certificates": [pem]}));
        assert_eq!(shown.get("description"), None);
        assert_eq!(shown, with_alias.record);
    }

    #[test]
    fn ids_are_uuid_v4_shaped() {
        let id = new_id();
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]));
        assert_ne!(id, new_id());
    }

    #[test]
    fn jwks_uris_need_fetching_enabled() {
        assert!(check_jwks_uri("https://i/jwks", &settings(true)).is_ok());
        assert!(check_jwks_uri("https://i/jwks", &settings(false)).is_err());
        assert!(check_jwks_uri("http://127.0.0.1:1/jwks", &settings(true)).is_ok());
    }
}
