//! What JWT validation talks about: whom a JWT claims to come from (a [`TrustSource`]), the keys
//! that party is trusted with ([`TrustMaterial`]), and what validation yields ([`VerifiedJwt`]).
//!
//! Grant handlers and client authenticators never verify signatures themselves: they name a trust
//! source and ask the host ([`crate::HostServices::validate_jwt`]), which resolves the party in
//! its registry and hands the JWT to the enabled [`crate::JwtValidator`]s. Keys therefore come
//! only from what an operator registered — never from the token itself.

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cell::Cell;

/// Whom a JWT is to be validated against, in a tenant.
///
/// Both enums here cross the plugin ABI as JSON in serde's default (externally tagged) form,
/// which decodes as it reads; an internally tagged one (`"kind": …`) is buffered first, and that
/// cost a JWT grant ~15,000 instructions in its five decodes of these two.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustSource {
    /// A registered identity provider, by its name (which equals the `iss` of its assertions).
    IdentityProvider { tenant: String, name: String },
    /// A registered client, by `client_id` (which equals `iss` and `sub` of its assertions).
    Client { tenant: String, client_id: String },
}

impl TrustSource {
    pub fn tenant(&self) -> &str {
        match self {
            TrustSource::IdentityProvider { tenant, .. } | TrustSource::Client { tenant, .. } => {
                tenant
            }
        }
    }
}

/// The registered party a trust source resolved to, as far as claim checks need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustedParty {
    IdentityProvider {
        id: String,
        name: String,
        /// The audience the IdP puts in `aud` (default: the tenant's token endpoint URL).
        alias: String,
    },
    Client {
        client_id: String,
        /// The client's registered `token_endpoint_auth_method`.
        auth_method: String,
    },
}

/// The keys a party is trusted with: a `jwks_uri` (served by the shared key service) and/or
/// static keys (PEM certificates or an inline `jwks`, converted to JWKs at registration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustMaterial {
    pub party: TrustedParty,
    pub jwks_uri: Option<String>,
    pub keys: Vec<Value>,
}

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Value>,
}

impl Jwks {
    /// Whether a key of the set has `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
    }

    /// The keys that may have signed a JWT naming `kid`: those with that `kid` and those
    /// without one (all of them for `None`).
    pub fn for_kid(&self, kid: Option<&str>) -> Jwks {
        let Some(kid) = kid else {
            return self.clone();
        };
        Jwks {
            keys: self
                .keys
                .iter()
                .filter(|k| match k.get("kid") {
                    None => true,
                    Some(k) => k.as_str() == Some(kid),
                })
                .cloned()
                .collect(),
        }
    }
}

/// A JWT whose signature verified against a trust source. Claim rules (`aud`, `exp`, `jti`, …)
/// are the caller's: they differ between the JWT bearer grant and client authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedJwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub party: TrustedParty,
}

/// Why a JWT was not verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "reason", rename_all = "snake_case")]
pub enum JwtError {
    /// The JWT is not acceptable (bad signature, unknown party, disallowed algorithm, keys that
    /// cannot be fetched and none cached, …): the caller answers `invalid_grant` or
    /// `invalid_client`.
    Rejected(String),
    /// The host could not decide (the database is down, no validator is active): the caller
    /// answers `server_error`.
    Unavailable(String),
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Rejected(r) => write!(f, "rejected: {r}"),
            JwtError::Unavailable(r) => write!(f, "unavailable: {r}"),
        }
    }
}

impl std::error::Error for JwtError {}

impl JwtError {
    /// The OAuth error a component answers with: a rejection through `rejected`
    /// (`invalid_grant`, `invalid_client`); a host that could not decide as `server_error`,
    /// whose reason goes to the log through `host`, not to the client.
    pub fn into_oauth(
        self,
        host: &dyn crate::HostServices,
        rejected: impl FnOnce(String) -> crate::OAuthError,
    ) -> crate::OAuthError {
        match self {
            JwtError::Rejected(reason) => rejected(bounded(reason)),
            JwtError::Unavailable(reason) => {
                host.log(
                    crate::LogLevel::Error,
                    &format!("JWT not validated: {reason}"),
                );
                crate::OAuthError::server_error("the JWT could not be validated now")
            }
        }
    }
}

/// At most this many bytes of a rejection's reason reach the client as its description.
/// Reasons may quote the token (a `kid`, an `iss`), and a description is no place to reflect
/// kilobytes of what an attacker sent.
pub const MAX_REASON_BYTES: usize = 200;

/// `reason`, cut to [`MAX_REASON_BYTES`] (at a character boundary, marked `...`).
fn bounded(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut at = MAX_REASON_BYTES;
        while !reason.is_char_boundary(at) {
            at -= 1;
        }
        reason.truncate(at);
        reason.push_str("...");
    }
    reason
}

/// A JWT longer than this is rejected unread (CONTRACT §6).
pub const MAX_JWT_BYTES: usize = 16 * 1024;

/// The three segments (header, payload, signature) of a compact JWS, any of them possibly
/// empty; `None` for any other number of segments.
pub fn jws_segments(jwt: &str) -> Option<[&str; 3]> {
    let mut segments = jwt.split('.');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(payload), Some(signature), None) => Some([header, payload, signature]),
        _ => None,
    }
}

/// Why a JWS segment is not what a header or claims segment must be (see [`decode_segment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentError {
    /// Not unpadded base64url (RFC 7515 §2): padding, `+` or `/`, whitespace, stray bits.
    Base64,
    /// Not UTF-8 JSON text that is one object.
    NotObject,
    /// An object with a member name twice.
    DuplicateMember,
}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SegmentError::Base64 => "is not base64url",
            SegmentError::NotObject => "is not a JSON object",
            SegmentError::DuplicateMember => "names a member twice",
        })
    }
}

/// The JSON object a JOSE header or JWT claims segment holds: base64url without padding, then
/// one JSON object whose member names are unique.
///
/// Duplicate names are refused, one of the two choices RFC 7515 §4 and RFC 7519 §4 leave (the
/// other, "the last one wins", is what serde_json does on its own). Parsers disagree on which
/// duplicate counts, so a token with two `alg`s or two `iss`s can mean one thing to whoever
/// signed or screened it and another here; refusing it removes the ambiguity. The check is
/// made while the object is read (one pass, no second parse) and only at the top level, where
/// every member that validation reads lives.
pub fn decode_segment(segment: &str) -> Result<Map<String, Value>, SegmentError> {
    let bytes = segment_bytes(segment)?;
    let duplicate = Cell::new(false);
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    UniqueObject(&duplicate)
        .deserialize(&mut json)
        .and_then(|object| json.end().map(|()| object))
        .map_err(|_| {
            if duplicate.get() {
                SegmentError::DuplicateMember
            } else {
                SegmentError::NotObject
            }
        })
}

/// A segment's bytes: unpadded base64url (RFC 7515 §2).
fn segment_bytes(segment: &str) -> Result<Vec<u8>, SegmentError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| SegmentError::Base64)
}

/// Reads one JSON object like `Map`'s own `Deserialize`, but fails on a repeated member name
/// (and says so through the flag, since a serde error cannot carry its kind out).
struct UniqueObject<'a>(&'a Cell<bool>);

impl<'de> DeserializeSeed<'de> for UniqueObject<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UniqueObject<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            let value = access.next_value::<Value>()?;
            if object.insert(name, value).is_some() {
                self.0.set(true);
                return Err(A::Error::custom("a member name is repeated"));
            }
        }
        Ok(object)
    }
}

/// The claims of a compact JWS, **not verified**: only for finding whom to verify it against
/// (`iss`, `sub`). `None` when the JWT is oversized or not three segments with a JSON object
/// (of unique member names, see [`decode_segment`]) in the middle.
pub fn peek_claims(jwt: &str) -> Option<Map<String, Value>> {
    decode_segment(payload_of(jwt)?).ok()
}

/// The middle segment of a compact JWS of at most [`MAX_JWT_BYTES`].
fn payload_of(jwt: &str) -> Option<&str> {
    if jwt.len() > MAX_JWT_BYTES {
        return None;
    }
    jws_segments(jwt).map(|[_, payload, _]| payload)
}

/// Who a compact JWS says it comes from, **not verified**: its `iss` and `sub` claims as
/// [`peek_issuer`] read them, to find whom to verify the JWT against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Issuer {
    pub iss: Option<Value>,
    pub sub: Option<Value>,
}

impl Issuer {
    /// `iss`, if it is a non-empty string.
    pub fn iss(&self) -> Option<&str> {
        non_empty(self.iss.as_ref())
    }

    /// `sub`, if it is a non-empty string.
    pub fn sub(&self) -> Option<&str> {
        non_empty(self.sub.as_ref())
    }
}

fn non_empty(claim: Option<&Value>) -> Option<&str> {
    claim.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The [`Issuer`] of a compact JWS, **not verified**: `None` where [`peek_claims`] is `None`,
/// except for a repeated member other than `iss` and `sub`, which is left to the validator (its
/// [`decode_segment`] refuses it before any claim is trusted). Cheaper than [`peek_claims`]
/// because it builds no map: the other members are read and dropped, not allocated.
pub fn peek_issuer(jwt: &str) -> Option<Issuer> {
    let bytes = segment_bytes(payload_of(jwt)?).ok()?;
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    let issuer = serde::Deserializer::deserialize_map(&mut json, IssuerVisitor).ok()?;
    json.end().ok().map(|()| issuer)
}

/// Reads `iss` and `sub` out of one JSON object, refusing either twice.
struct IssuerVisitor;

impl<'de> Visitor<'de> for IssuerVisitor {
    type Value = Issuer;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Issuer, A::Error> {
        let mut issuer = Issuer::default();
        while let Some(member) = access.next_key::<Member>()? {
            let slot = match member {
                Member::Iss => &mut issuer.iss,
                Member::Sub => &mut issuer.sub,
                Member::Other => {
                    access.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.replace(access.next_value()?).is_some() {
                return Err(A::Error::custom("a member name is repeated"));
            }
        }
        Ok(issuer)
    }
}

/// A member name as [`IssuerVisitor`] tells them apart, read without allocating (escapes and
/// all, like any other name).
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Member {
    Iss,
    Sub,
    #[serde(other)]
    Other,
}

/// A NumericDate claim (RFC 7519 §2) in whole seconds: `Ok(None)` when absent, an error naming
/// the claim when it is not a finite number. Fractions are truncated; numbers beyond `i64`
/// saturate.
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.is_finite() => Ok(Some(f as i64)),
            _ => Err(format!("{name} is not a valid NumericDate")),
        },
        Some(_) => Err(format!("{name} must be a number of seconds")),
    }
}

/// Whether `aud` (a string or an array of strings, RFC 7519 §4.1.3) names `audience`; an error
/// when `aud` is absent or of another type.
pub fn audience_contains(claims: &Map<String, Value>, audience: &str) -> Result<bool, String> {
    match claims.get("aud") {
        None => Err("aud is required".into()),
        Some(Value::String(a)) => Ok(a == audience),
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            Ok(list.iter().any(|a| a == audience))
        }
        Some(_) => Err("aud must be a string or an array of strings".into()),
    }
}

/// The time rules every assertion obeys (CONTRACT §6): `exp` present and not past, and not
/// more than `max_lifetime` ahead; `nbf` and `iat` not in the future; `iat`, when present, not
/// older than `max_age`. Every bound allows `skew`, which only ever widens what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRules {
    pub skew: i64,
    pub max_lifetime: i64,
    pub max_age: i64,
    /// The property that sets `max_age`, for the message that cites it.
    pub max_age_property: &'static str,
}

impl TimeRules {
    /// The host's skew and lifetime bound, and a maximum age set by `property` in minutes.
    pub fn new(
        settings: &crate::HostSettings,
        max_age_minutes: i64,
        property: &'static str,
    ) -> Self {
        let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        TimeRules {
            skew: secs(settings.timestamp_skew_secs),
            max_lifetime: secs(settings.max_assertion_lifetime_secs),
            max_age: max_age_minutes.saturating_mul(60),
            max_age_property: property,
        }
    }

    /// Checks `claims` at `now`; the `exp` on success, else the rule that failed.
    pub fn check(&self, claims: &Map<String, Value>, now: i64) -> Result<i64, String> {
        let exp = numeric_date(claims, "exp")?.ok_or("the JWT has no exp")?;
        if now > exp.saturating_add(self.skew) {
            return Err("the JWT has expired (exp)".into());
        }
        if exp
            > now
                .saturating_add(self.max_lifetime)
                .saturating_add(self.skew)
        {
            return Err(format!(
                "exp is more than {} s ahead (max_assertion_lifetime_secs)",
                self.max_lifetime
            ));
        }
        if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(self.skew)) {
            return Err("the JWT is not valid yet (nbf)".into());
        }
        if let Some(iat) = numeric_date(claims, "iat")? {
            if iat > now.saturating_add(self.skew) {
                return Err("the JWT was issued in the future (iat)".into());
            }
            if iat < now.saturating_sub(self.max_age).saturating_sub(self.skew) {
                return Err(format!(
                    "the JWT was issued more than {} minutes ago (iat, {})",
                    self.max_age / 60,
                    self.max_age_property
                ));
            }
        }
        Ok(exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn segment(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn a_segment_is_one_json_object_of_unique_members() {
        let object = decode_segment(&segment(r#"{"alg":"RS256","x":{"a":1,"a":2}}"#)).unwrap();
        assert_eq!(object["alg"], "RS256");
        // Only the top level is checked: nested objects are data, read as serde_json reads them.
        assert_eq!(object["x"]["a"], 2);
        assert_eq!(decode_segment(&segment("{}")), Ok(Map::new()));
        for json in [
            r#"{"alg":"none","alg":"RS256"}"#,
            r#"{"iss":"a","sub":"b","iss":"a"}"#,
            // The same name spelt with an escape is the same name.
            r#"{"alg":"none","a\u006cg":"RS256"}"#,
        ] {
            assert_eq!(
                decode_segment(&segment(json)),
                Err(SegmentError::DuplicateMember),
                "{json}"
            );
        }
        for json in ["[]", "null", "\"x\"", "{", r#"{"a":1}{}"#, r#"{"a":1} x"#] {
            assert_eq!(
                decode_segment(&segment(json)),
                Err(SegmentError::NotObject),
                "{json}"
            );
        }
        let not_utf8 = URL_SAFE_NO_PAD.encode(b"{\"a\":\"\xff\"}");
        assert_eq!(decode_segment(&not_utf8), Err(SegmentError::NotObject));
        for bad in ["e30=", "e30 ", "e3+", "e31"] {
            assert_eq!(decode_segment(bad), Err(SegmentError::Base64), "{bad}");
        }
    }

    #[test]
    fn peek_claims_refuses_duplicate_claims() {
        let jwt =
            |claims: &str| format!("{}.{}.sig", segment(r#"{"alg":"RS256"}"#), segment(claims));
        assert!(peek_claims(&jwt(r#"{"iss":"a","sub":"b"}"#)).is_some());
        assert!(peek_claims(&jwt(r#"{"iss":"a","iss":"b"}"#)).is_none());
        assert_eq!(jws_segments("a.b.c"), Some(["a", "b", "c"]));
        assert_eq!(jws_segments("a..").map(|s| s[1]), Some(""));
        for not_three in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e"] {
            assert_eq!(jws_segments(not_three), None, "{not_three}");
        }
    }

    #[test]
    fn peek_issuer_reads_iss_and_sub_as_peek_claims_does() {
        let jwt =
            |claims: &str| format!("{}.{}.sig", segment(r#"{"alg":"RS256"}"#), segment(claims));
        let issuer = |claims: &str| peek_issuer(&jwt(claims));
        let read = issuer(r#"{"aud":["x",{"y":[1]}],"iss":"a","exp":1e3,"s\u0075b":"b"}"#)
            .expect("an object");
        assert_eq!((read.iss(), read.sub()), (Some("a"), Some("b")));
        let peeked = peek_claims(&jwt(r#"{"iss":"a","sub":"b","x":null}"#)).unwrap();
        assert_eq!(
            Some(Issuer {
                iss: peeked.get("iss").cloned(),
                sub: peeked.get("sub").cloned(),
            }),
            issuer(r#"{"iss":"a","sub":"b","x":null}"#)
        );
        // Present but not a non-empty string: read, and not an issuer.
        let odd = issuer(r#"{"iss":"","sub":7}"#).expect("an object");
        assert_eq!((odd.iss(), odd.sub()), (None, None));
        assert_eq!(issuer("{}"), Some(Issuer::default()));
        for refused in [
            r#"{"iss":"a","iss":"b"}"#,
            r#"{"sub":null,"sub":"b"}"#,
            r#"{"iss":"a","i\u0073s":"b"}"#,
            r#"["a","b"]"#,
            r#"{"iss":"a"} x"#,
            r#"{"iss":"a""#,
        ] {
            assert_eq!(issuer(refused), None, "{refused}");
            assert!(peek_claims(&jwt(refused)).is_none(), "{refused}");
        }
        // Another member twice is the validator's to refuse (decode_segment).
        assert!(issuer(r#"{"iss":"a","exp":1,"exp":2}"#).is_some());
        for not_a_jws in ["a.b", "e30.e3+.sig", "a.b.c.d"] {
            assert_eq!(peek_issuer(not_a_jws), None, "{not_a_jws}");
        }
        let oversized = jwt(&format!(
            r#"{{"iss":"a","x":"{}"}}"#,
            "x".repeat(MAX_JWT_BYTES)
        ));
        assert_eq!(peek_issuer(&oversized), None);
    }

    #[test]
    fn rejection_reasons_are_bounded() {
        let short = "no RS256 key with kid \"r\"".to_string();
        assert_eq!(bounded(short.clone()), short);
        let cut = bounded(format!("no key with kid {:?}", "é".repeat(10_000)));
        assert!(cut.len() <= MAX_REASON_BYTES + 3, "{}", cut.len());
        assert!(
            cut.starts_with("no key with kid \"éé") && cut.ends_with("é..."),
            "{cut}"
        );
    }
}
