//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592) under
//! `/api/identity/oauth2/dcr/v1.1/register`, authorised by the super admin's Basic credentials
//! rather than by registration access tokens.
//!
//! The handlers are thin: [`parse`] turns a request body into validated [`Metadata`] against
//! what the server can do right now (the active grant handlers and client authenticators, the
//! JWKS fetch settings), and [`Metadata::to_json`] is the one shape the metadata is returned in
//! and stored as. A client secret is issued exactly for `client_secret_basic` and
//! `client_secret_post`; it is shown once (in the 201, or in a 200 of a PUT that switches to a
//! secret method) and stored only as its `ServerSecret::hash`.
//!
//! Errors are RFC 7591 §3.2.2 bodies (`invalid_client_metadata`, 400); an unknown client is 404.

use super::idps::check_jwks_uri;
use crate::keys::jwk::check_jwks;
use crate::oauth::exchange::{Request, Response};
use crate::oauth::{OAuth, Settings};
use crate::secret::{random_bytes, random_token};
use crate::store::ClientRecord;
use crate::store::StoreError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use tollgate_core::OAuthError;

/// The methods for which a client secret is issued.
const SECRET_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];
const PRIVATE_KEY_JWT: &str = "private_key_jwt";
const DEFAULT_GRANT_TYPE: &str = "client_credentials";
const DEFAULT_AUTH_METHOD: &str = "client_secret_basic";

/// What registered metadata is checked against: what the server supports right now.
pub struct Policy<'a> {
    /// `grant_type`s with an active handler.
    pub grant_types: Vec<&'a str>,
    /// `token_endpoint_auth_method`s of the active client authenticators.
    pub auth_methods: &'a [String],
    pub settings: &'a Settings,
}

impl<'a> Policy<'a> {
    pub fn of(oauth: &'a OAuth) -> Policy<'a> {
        Policy {
            grant_types: oauth
                .components
                .grant_handlers
                .keys()
                .map(String::as_str)
                .collect(),
            auth_methods: &oauth.components.auth_methods,
            settings: &oauth.settings,
        }
    }
}

/// Validated client metadata (RFC 7591 §2 and Tollgate's extensions).
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub client_name: String,
    pub grant_types: Vec<String>,
    pub auth_method: String,
    /// Normalised: single spaces, no duplicates.
    pub scope: Option<String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<Value>,
    /// `"opaque"` or `"jwt"`.
    pub access_token_format: Option<String>,
}

/// A parsed registration request: the metadata and the identifiers it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub metadata: Metadata,
    /// `ext_param_client_id`: the client_id the registrant chose.
    pub ext_client_id: Option<String>,
    /// `client_id` (RFC 7592 §2.2 PUT bodies carry it).
    pub client_id: Option<String>,
    /// `client_secret` (RFC 7592 §2.2: if sent, it must be the current one).
    pub client_secret: Option<String>,
}

/// An RFC 7591 §3.2.2 `invalid_client_metadata` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMetadata(pub String);

impl InvalidMetadata {
    fn response(&self) -> Response {
        Response::json(
            400,
            json!({"error": "invalid_client_metadata", "error_description": self.0}),
        )
    }
}

impl From<String> for InvalidMetadata {
    fn from(description: String) -> Self {
        InvalidMetadata(description)
    }
}

impl From<&str> for InvalidMetadata {
    fn from(description: &str) -> Self {
        InvalidMetadata(description.into())
    }
}

/// Whether a client secret is issued for `method`.
pub fn issues_secret(method: &str) -> bool {
    SECRET_METHODS.contains(&method)
}

/// A new client_id: 128 random bits, base64url (22 characters).
pub fn new_client_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// Parses and validates a registration request body. Unknown members are ignored (RFC 7591
/// §2); a member whose value is JSON `null` counts as absent.
pub fn parse(body: &[u8], policy: &Policy) -> Result<Submitted, InvalidMetadata> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body must be a JSON object".into());
    };
    let client_name = string(&fields, "client_name")?
        .filter(|n| !n.trim().is_empty())
        .ok_or("client_name is required")?
        .to_owned();
    let grant_types = grant_types(&fields, policy)?;
    let auth_method = string(&fields, "token_endpoint_auth_method")?
        .unwrap_or(DEFAULT_AUTH_METHOD)
        .to_owned();
    if !policy.auth_methods.contains(&auth_method) {
        return Err(format!(
            "token_endpoint_auth_method {auth_method:?} is not supported (supported: {})",
            policy.auth_methods.join(", ")
        )
        .into());
    }
    let jwks_uri = string(&fields, "jwks_uri")?.map(str::to_owned);
    let jwks = fields.get("jwks").filter(|v| !v.is_null()).cloned();
    match (&jwks_uri, &jwks) {
        (Some(_), Some(_)) => return Err("jwks_uri and jwks must not both be present".into()),
        (Some(uri), None) => check_jwks_uri(uri, policy.settings)?,
        (None, Some(jwks)) => check_jwks(jwks)?,
        (None, None) if auth_method == PRIVATE_KEY_JWT => {
            return Err("private_key_jwt needs jwks_uri or jwks".into())
        }
        (None, None) => {}
    }
    let scope = string(&fields, "scope")?.map(normalise_scope).transpose()?;
    let ext_client_id = string(&fields, "ext_param_client_id")?
        .map(|id| check_client_id(id).map(|()| id.to_owned()))
        .transpose()?;
    let access_token_format = match string(&fields, "access_token_format")? {
        None => None,
        Some(f @ ("opaque" | "jwt")) => Some(f.to_owned()),
        Some(other) => {
            return Err(
                format!("access_token_format must be \"opaque\" or \"jwt\", not {other:?}").into(),
            )
        }
    };
    Ok(Submitted {
        metadata: Metadata {
            client_name,
            grant_types,
            auth_method,
            scope,
            jwks_uri,
            jwks,
            access_token_format,
        },
        ext_client_id,
        client_id: string(&fields, "client_id")?.map(str::to_owned),
        client_secret: string(&fields, "client_secret")?.map(str::to_owned),
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

/// `grant_types`: default `["client_credentials"]`; each must have an active handler.
fn grant_types(fields: &Map<String, Value>, policy: &Policy) -> Result<Vec<String>, String> {
    let requested: Vec<&str> = match fields.get("grant_types") {
        None | Some(Value::Null) => vec![DEFAULT_GRANT_TYPE],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or("grant_types must be an array of strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("grant_types must be an array of strings".into()),
    };
    if requested.is_empty() {
        return Err("grant_types must not be empty".into());
    }
    let mut out: Vec<String> = Vec::with_capacity(requested.len());
    for grant in requested {
        if !policy.grant_types.contains(&grant) {
            return Err(format!(
                "grant type {grant:?} is not supported (supported: {})",
                policy.grant_types.join(", ")
            ));
        }
        if !out.iter().any(|g| g == grant) {
            out.push(grant.to_owned());
        }
    }
    Ok(out)
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, separated by spaces.
/// Returns the tokens joined by single spaces, duplicates dropped.
fn normalise_scope(scope: &str) -> Result<String, String> {
    let mut tokens: Vec<&str> = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        if !token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        {
            return Err(format!(
                "scope {token:?} has a character RFC 6749 §3.3 does not allow"
            ));
        }
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    if tokens.is_empty() {
        // An empty list would read as "no scope" but be stored as "any scope": refuse it.
        return Err("scope must name at least one scope (omit it to allow any)".into());
    }
    Ok(tokens.join(" "))
}

/// `ext_param_client_id`: 1–128 characters of `[A-Za-z0-9._~-]` (URL- and Basic-safe).
fn check_client_id(id: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("ext_param_client_id must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ -".into())
    }
}

impl Metadata {
    /// The metadata as DCR returns and the store keeps it (never with the secret).
    pub fn to_json(&self, client_id: &str, issued_at: i64) -> Value {
        let mut out = json!({
            "client_id": client_id,
            "client_id_issued_at": issued_at,
            "client_name": self.client_name,
            "grant_types": self.grant_types,
            "token_endpoint_auth_method": self.auth_method,
        });
        let fields = out.as_object_mut().expect("a JSON object");
        if issues_secret(&self.auth_method) {
            fields.insert("client_secret_expires_at".into(), 0.into());
        }
        let optional = [
            ("scope", self.scope.clone().map(Value::from)),
            ("jwks_uri", self.jwks_uri.clone().map(Value::from)),
            ("jwks", self.jwks.clone()),
            (
                "access_token_format",
                self.access_token_format.clone().map(Value::from),
            ),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                fields.insert(name.into(), value);
            }
        }
        out
    }

    /// The stored record of the client `client_id` of `tenant`.
    pub fn into_record(
        self,
        tenant: &str,
        client_id: &str,
        secret_hash: Option<String>,
        created_at: i64,
        updated_at: i64,
    ) -> ClientRecord {
        ClientRecord {
            metadata: self.to_json(client_id, created_at),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_name: self.client_name,
            secret_hash,
            auth_method: self.auth_method,
            grant_types: self.grant_types,
            scope: self.scope,
            jwks_uri: self.jwks_uri,
            jwks: self.jwks,
            access_token_format: self.access_token_format,
            created_at,
            updated_at,
        }
    }
}

/// `metadata` plus the secret, for the one answer that shows it.
fn with_secret(mut metadata: Value, secret: Option<String>) -> Value {
    if let (Some(secret), Some(fields)) = (secret, metadata.as_object_mut()) {
        fields.insert("client_secret".into(), secret.into());
    }
    metadata
}

fn unknown_client() -> Response {
    Response::json(
        404,
        json!({"error": "invalid_client", "error_description": "unknown client"}),
    )
}

fn storage_error(operation: &str, e: StoreError) -> Response {
    tracing::error!("{operation}: {e}");
    Response::error(&OAuthError::server_error("storage unavailable"), false)
}

/// `POST …/register`: 201 with the metadata, the client_id and (secret methods) the secret.
pub async fn register(oauth: &OAuth, request: &Request) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let submitted = match parse(&request.body, &Policy::of(oauth)) {
        Ok(submitted) => submitted,
        Err(e) => return e.response(),
    };
    let client_id = submitted.ext_client_id.unwrap_or_else(new_client_id);
    let secret = issues_secret(&submitted.metadata.auth_method).then(random_token);
    let now = oauth.clock.now();
    let record = submitted.metadata.into_record(
        &tenant,
        &client_id,
        secret.as_deref().map(|s| oauth.secret.hash(s)),
        now,
        now,
    );
    match oauth.store.insert_client(&record).await {
        Ok(true) => {
            tracing::info!(tenant, client_id, "client registered");
            Response::json(201, with_secret(record.metadata, secret))
        }
        Ok(false) => InvalidMetadata::from("client_id already exists").response(),
        Err(e) => storage_error("insert_client", e),
    }
}

/// `GET …/register/{client_id}`: 200 with the registered metadata.
pub async fn get(oauth: &OAuth, request: &Request, client_id: &str) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match oauth.store.client(&tenant, client_id).await {
        Ok(Some(record)) => Response::json(200, record.metadata.clone()),
        Ok(None) => unknown_client(),
        Err(e) => storage_error("client", e),
    }
}

/// `PUT …/register/{client_id}` (RFC 7592 §2.2): replaces the metadata. The secret is kept;
/// one is issued (and shown) if the client moves to a secret method without having one, and
/// it is dropped if the client moves to a method that uses none.
pub async fn update(oauth: &OAuth, request: &Request, client_id: &str) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let existing = match oauth.store.client(&tenant, client_id).await {
        Ok(Some(record)) => record,
        Ok(None) => return unknown_client(),
        Err(e) => return storage_error("client", e),
    };
    let submitted = match parse(&request.body, &Policy::of(oauth)) {
        Ok(submitted) => submitted,
        Err(e) => return e.response(),
    };
    let named = [&submitted.client_id, &submitted.ext_client_id];
    if named.into_iter().flatten().any(|id| id != client_id) {
        return InvalidMetadata::from("client_id in the body does not match the client").response();
    }
    if let Some(sent) = &submitted.client_secret {
        let matches = existing
            .secret_hash
            .as_deref()
            .is_some_and(|stored| oauth.secret.verify(sent, stored));
        if !matches {
            return InvalidMetadata::from("client_secret is not the client's current secret")
                .response();
        }
    }
    let (secret_hash, new_secret) = match (
        issues_secret(&submitted.metadata.auth_method),
        existing.secret_hash.clone(),
    ) {
        (false, _) => (None, None),
        (true, Some(hash)) => (Some(hash), None),
        (true, None) => {
            let secret = random_token();
            (Some(oauth.secret.hash(&secret)), Some(secret))
        }
    };
    let record = submitted.metadata.into_record(
        &tenant,
        client_id,
        secret_hash,
        existing.created_at,
        oauth.clock.now(),
    );
    match oauth.store.update_client(&record).await {
        Ok(true) => {
            tracing::info!(tenant, client_id, "client updated");
            Response::json(200, with_secret(record.metadata, new_secret))
        }
        Ok(false) => unknown_client(),
        Err(e) => storage_error("update_client", e),
    }
}

/// `DELETE …/register/{client_id}`: 204; the client's tokens are revoked with it.
pub async fn delete(oauth: &OAuth, request: &Request, client_id: &str) -> Response {
    let tenant = match super::authorize(oauth, request).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match oauth.store.delete_client(&tenant, client_id).await {
        Ok(true) => {
            tracing::info!(tenant, client_id, "client deleted");
            Response::empty(204)
        }
        Ok(false) => unknown_client(),
        Err(e) => storage_error("delete_client", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::deployment::TokenFormat;

    fn settings(fetch: bool) -> Settings {
        Settings {
            base_url: "https://localhost:9443".into(),
            default_format: TokenFormat::Opaque,
            jwks_fetch_enabled: fetch,
            allow_insecure_http: false,
        }
    }

    fn methods() -> Vec<String> {
        [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ]
        .map(String::from)
        .to_vec()
    }

    const GRANTS: [&str; 3] = [
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ];

    fn parse_with(body: Value, fetch: bool) -> Result<Submitted, String> {
        let settings = settings(fetch);
        let methods = methods();
        let policy = Policy {
            grant_types: GRANTS.to_vec(),
            auth_methods: &methods,
            settings: &settings,
        };
        parse(body.to_string().as_bytes(), &policy).map_err(|e| e.0)
    }

    fn ok(body: Value) -> Submitted {
        parse_with(body, true).unwrap()
    }

    fn err(body: Value) -> String {
        parse_with(body, true).unwrap_err()
    }

    /// A base64url modulus of `bits` bits.
    fn modulus(bits: usize) -> String {
        let mut n = vec![0xffu8; bits / 8];
        n[0] = 0x80 | 0x45;
        URL_SAFE_NO_PAD.encode(n)
    }

    fn rsa_jwk(bits: usize) -> Value {
        json!({"kty": "RSA", "n": modulus(bits), "e": "AQAB", "alg": "RS256", "kid": "k1"})
    }

    #[test]
    fn defaults_apply_to_a_minimal_registration() {
        let s = ok(json!({"client_name": "app"}));
        assert_eq!(
            s.metadata,
            Metadata {
                client_name: "app".into(),
                grant_types: vec!["client_credentials".into()],
                auth_method: "client_secret_basic".into(),
                scope: None,
                jwks_uri: None,
                jwks: None,
                access_token_format: None,
            }
        );
        assert_eq!(s.ext_client_id, None);
    }

    #[test]
    fn every_field_is_read_and_unknown_ones_ignored() {
        let s = ok(json!({
            "client_name": "svc",
            "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [rsa_jwk(2048)]},
            "scope": " read  write read ",
            "ext_param_client_id": "my-app_1.0~x",
            "access_token_format": "jwt",
            "redirect_uris": ["https://example.com/cb"],
            "software_id": null,
        }));
        let m = &s.metadata;
        assert_eq!(
            m.grant_types,
            [
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "refresh_token"
            ]
        );
        assert_eq!(m.auth_method, "private_key_jwt");
        assert_eq!(m.scope.as_deref(), Some("read write"));
        assert_eq!(m.access_token_format.as_deref(), Some("jwt"));
        assert_eq!(s.ext_client_id.as_deref(), Some("my-app_1.0~x"));
        assert!(m.jwks.is_some());
    }

    #[test]
    fn malformed_bodies_and_names_are_refused() {
        for body in ["not json", "[1]", "\"x\"", ""] {
            let settings = settings(true);
            let policy = Policy {
                grant_types: GRANTS.to_vec(),
                auth_methods: &[],
                settings: &settings,
            };
            assert!(parse(body.as_bytes(), &policy).is_err());
        }
        assert!(err(json!({})).contains("client_name is required"));
        assert!(err(json!({"client_name": "  "})).contains("client_name is required"));
        assert!(err(json!({"client_name": 7})).contains("client_name must be a string"));
    }

    #[test]
    fn grant_types_must_be_supported() {
        assert!(
            err(json!({"client_name": "a", "grant_types": ["password"]}))
                .contains("\"password\" is not supported")
        );
        assert!(err(json!({"client_name": "a", "grant_types": []})).contains("must not be empty"));
        assert!(
            err(json!({"client_name": "a", "grant_types": "client_credentials"}))
                .contains("array of strings")
        );
        assert!(err(json!({"client_name": "a", "grant_types": [1]})).contains("array of strings"));
    }

    #[test]
    fn the_default_grant_must_be_active_too() {
        let settings = settings(true);
        let methods = methods();
        let policy = Policy {
            grant_types: vec!["refresh_token"],
            auth_methods: &methods,
            settings: &settings,
        };
        let e = parse(br#"{"client_name":"a"}"#, &policy).unwrap_err();
        assert!(e.0.contains("client_credentials"), "{}", e.0);
    }

    #[test]
    fn auth_methods_must_be_provided_by_an_active_authenticator() {
        assert!(
            err(json!({"client_name": "a", "token_endpoint_auth_method": "none"}))
                .contains("not supported")
        );
        assert!(
            err(json!({"client_name": "a", "token_endpoint_auth_method": "private_key_jwt"}))
                .contains("needs jwks_uri or jwks")
        );
    }

    #[test]
    fn jwks_uri_and_jwks_are_exclusive_and_checked() {
        let both = json!({"client_name": "a", "jwks_uri": "https://c.example/jwks", "jwks": {"keys": [rsa_jwk(2048)]}});
        assert!(err(both).contains("both"));
        let uri = json!({"client_name": "a", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://c.example/jwks"});
        assert_eq!(
            ok(uri.clone()).metadata.jwks_uri.as_deref(),
            Some("https://c.example/jwks")
        );
        assert!(parse_with(uri, false).unwrap_err().contains("disabled"));
        assert!(
            err(json!({"client_name": "a", "jwks_uri": "http://c.example/jwks"})).contains("https")
        );
        assert!(err(json!({"client_name": "a", "jwks_uri": 5})).contains("must be a string"));
    }

    #[test]
    fn inline_jwks_hold_usable_public_keys_only() {
        let with = |jwks: Value| err(json!({"client_name": "a", "jwks": jwks}));
        assert!(with(json!([])).contains("\"keys\" array"));
        assert!(with(json!({"keys": []})).contains("must not be empty"));
        assert!(with(json!({"keys": ["x"]})).contains("JSON object"));
        assert!(with(json!({"keys": [{"n": "x"}]})).contains("kty is required"));
        assert!(with(json!({"keys": [rsa_jwk(1024)]})).contains("1024 bits"));
        assert!(with(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).contains("private"));
        assert!(with(json!({"keys": [{"kty": "oct"}]})).contains("asymmetric"));
        let mut private = rsa_jwk(2048);
        private["d"] = "AQAB".into();
        assert!(with(json!({"keys": [private]})).contains("private key material"));
        let mut hmac = rsa_jwk(2048);
        hmac["alg"] = "HS256".into();
        assert!(with(json!({"keys": [hmac]})).contains("does not fit"));
        assert!(
            with(json!({"keys": [{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}]}))
                .contains("P-521")
        );
        let (c32, c48) = (
            URL_SAFE_NO_PAD.encode([7u8; 32]),
            URL_SAFE_NO_PAD.encode([7u8; 48]),
        );
        assert!(with(json!({"keys": [{"kty": "EC", "crv": "P-256", "x": c32}]})).contains("\"y\""));
        assert!(
            with(json!({"keys": [{"kty": "EC", "crv": "P-256", "x": c32, "y": "AA"}]}))
                .contains("32 bytes")
        );
        assert!(
            with(json!({"keys": [{"kty": "OKP", "crv": "X25519", "x": c32}]})).contains("Ed25519")
        );
        assert!(with(
            json!({"keys": [{"kty": "RSA", "n": rsa_jwk(2048)["n"], "e": "AQAB", "use": "enc"}]})
        )
        .contains("\"sig\""));

        let good = json!({"keys": [
            rsa_jwk(2048),
            rsa_jwk(4096),
            {"kty": "EC", "crv": "P-256", "x": c32, "y": c32, "alg": "ES256"},
            {"kty": "EC", "crv": "P-384", "x": c48, "y": c48},
            {"kty": "OKP", "crv": "Ed25519", "x": c32, "alg": "EdDSA", "use": "sig"},
        ]});
        assert!(check_jwks(&good).is_ok());
    }

    #[test]
    fn scopes_follow_rfc_6749() {
        let with = |scope: &str| parse_with(json!({"client_name": "a", "scope": scope}), true);
        assert_eq!(
            with("a:b c/d e-f").unwrap().metadata.scope.as_deref(),
            Some("a:b c/d e-f")
        );
        assert!(with("").unwrap_err().contains("at least one"));
        assert!(with("   ").unwrap_err().contains("at least one"));
        assert!(with("a\"b").is_err());
        assert!(with("a\\b").is_err());
        assert!(with("a\tb").is_err());
        assert!(with("caf\u{e9}").is_err());
    }

    #[test]
    fn chosen_client_ids_are_checked() {
        let with =
            |id: &str| parse_with(json!({"client_name": "a", "ext_param_client_id": id}), true);
        assert!(with("A-z_0.9~").is_ok());
        assert!(with(&"x".repeat(128)).is_ok());
        assert!(with(&"x".repeat(129)).is_err());
        assert!(with("").is_err());
        assert!(with("a:b").is_err());
        assert!(with("a b").is_err());
        assert!(with("a/b").is_err());
    }

    #[test]
    fn token_formats_are_opaque_or_jwt() {
        assert!(
            err(json!({"client_name": "a", "access_token_format": "JWT"}))
                .contains("\"opaque\" or \"jwt\"")
        );
        assert_eq!(
            ok(json!({"client_name": "a", "access_token_format": "opaque"}))
                .metadata
                .access_token_format
                .as_deref(),
            Some("opaque")
        );
    }

    #[test]
    fn put_bodies_may_name_the_client_and_its_secret() {
        let s = ok(json!({"client_name": "a", "client_id": "c1", "client_secret": "s"}));
        assert_eq!(s.client_id.as_deref(), Some("c1"));
        assert_eq!(s.client_secret.as_deref(), Some("s"));
    }

    #[test]
    fn the_returned_and_stored_shape() {
        let m = ok(json!({"client_name": "a", "scope": "x"})).metadata;
        assert_eq!(
            m.to_json("cid", 1700),
            json!({
                "client_id": "cid", "client_id_issued_at": 1700, "client_name": "a",
                "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic",
                "client_secret_expires_at": 0, "scope": "x",
            })
        );
        let jwt = ok(json!({
            "client_name": "b", "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://c.example/jwks", "access_token_format": "jwt",
        }))
        .metadata;
        let shown = jwt.to_json("cid", 5);
        assert_eq!(shown.get("client_secret_expires_at"), None);
        assert_eq!(shown["jwks_uri"], "https://c.example/jwks");
        assert_eq!(shown["access_token_format"], "jwt");

        let record = jwt.into_record("acme", "cid", None, 5, 9);
        assert_eq!(record.metadata, shown);
        assert_eq!(
            (record.tenant.as_str(), record.created_at, record.updated_at),
            ("acme", 5, 9)
        );
        assert_eq!(record.auth_method, "private_key_jwt");
        let body = with_secret(shown, Some("s3cret".into()));
        assert_eq!(body["client_secret"], "s3cret");
    }

    #[test]
    fn secrets_only_for_secret_methods_and_ids_are_random() {
        assert!(issues_secret("client_secret_basic"));
        assert!(issues_secret("client_secret_post"));
        assert!(!issues_secret("private_key_jwt"));
        assert!(!issues_secret("api_key"));
        let id = new_client_id();
        assert_eq!(id.len(), 22);
        assert!(check_client_id(&id).is_ok());
        assert_ne!(id, new_client_id());
    }
}
