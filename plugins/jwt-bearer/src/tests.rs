//! The grant's claim rules, each with a passing and a failing case. Signatures are the
//! validator's business (its own tests, and the end-to-end tests with the real plugin): here a
//! stand-in validator accepts any JWT from a known IdP, so every case isolates one claim rule.

use super::*;
use serde_json::{json, Map, Value};
use tollgate_core::sdk::TestHost;
use tollgate_core::{peek_claims, ErrorCode, JwtError, JwtValidator, Properties, VerifiedJwt};

const NOW: i64 = 1_800_000_000;
const ALIAS: &str = "https://tollgate.example/oauth2/token";
const ISS: &str = "https://idp.example";

/// Accepts JWTs whose `iss` is a known IdP, as the real validator would after a good signature.
struct StandIn;

#[async_trait]
impl JwtValidator for StandIn {
    async fn validate(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        match source {
            TrustSource::IdentityProvider { tenant, name } if tenant == "t" && name == ISS => {
                Ok(VerifiedJwt {
                    header: Map::new(),
                    claims: peek_claims(jwt).expect("a JWT"),
                    party: TrustedParty::IdentityProvider {
                        id: "1".into(),
                        name: ISS.into(),
                        alias: ALIAS.into(),
                    },
                })
            }
            TrustSource::IdentityProvider { name, .. } if name == "down" => {
                Err(JwtError::Unavailable("database down".into()))
            }
            _ => Err(JwtError::Rejected("no enabled identity provider".into())),
        }
    }
}

fn handler(properties: &[(&str, &str)]) -> (JwtBearer, Arc<TestHost>) {
    let host = TestHost::new(NOW);
    host.set_validator(Arc::new(StandIn));
    let ctx = ComponentContext {
        properties: Properties::new(
            properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        settings: Default::default(),
        host: host.clone(),
    };
    (JwtBearer::new(&ctx).expect("builds"), host)
}

/// An unsigned-looking JWT (the stand-in does not check signatures) with these claims.
fn jwt(claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!("{}.{}.c2ln", b64(&json!({"alg": "RS256"})), b64(claims))
}

fn good() -> Value {
    json!({"iss": ISS, "sub": "alice", "aud": ALIAS, "exp": NOW + 300, "iat": NOW - 10,
           "nbf": NOW - 10, "jti": "j-1"})
}

fn request(assertion: &str) -> TokenRequest {
    TokenRequest::new("t", ALIAS).with_params([
        ("grant_type", GRANT_TYPE),
        ("assertion", assertion),
        ("scope", "read write"),
    ])
}

fn client() -> AuthenticatedClient {
    AuthenticatedClient {
        client_id: "c".into(),
        auth_method: "client_secret_basic".into(),
        jti: None,
    }
}

async fn run(h: &JwtBearer, claims: &Value) -> Result<Grant, OAuthError> {
    h.handle(&request(&jwt(claims)), &client()).await
}

/// The claims of `good()` with `changes` applied (`null` removes a claim).
fn with(changes: Value) -> Value {
    let mut claims = good();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

async fn refused(h: &JwtBearer, claims: Value, expected: &str) {
    let e = run(h, &claims).await.expect_err(expected);
    assert_eq!(e.code, ErrorCode::InvalidGrant, "{expected}: {e:?}");
    let description = e.description.clone();
    assert!(description.contains(expected), "{expected}: {description}");
}

#[tokio::test]
async fn a_good_assertion_grants_sub_the_requested_scopes_and_a_refresh_token() {
    let (h, _) = handler(&[]);
    let grant = run(&h, &good()).await.unwrap();
    assert_eq!(grant.subject, "alice");
    assert_eq!(grant.scopes, ["read", "write"]);
    assert!(grant.refresh_token);
    assert_eq!(grant.claims["idp"], ISS);
}

#[tokio::test]
async fn the_assertion_parameter_is_required_before_anything_else() {
    let (h, _) = handler(&[]);
    let mut r = request("");
    assert_eq!(
        h.validate_request(&r).unwrap_err().code,
        ErrorCode::InvalidRequest
    );
    r.remove_param("assertion");
    assert_eq!(
        h.validate_request(&r).unwrap_err().code,
        ErrorCode::InvalidRequest
    );
    assert!(h.validate_request(&request("x")).is_ok());
}

#[tokio::test]
async fn each_rule_refuses_with_invalid_grant_naming_it() {
    let (h, _) = handler(&[]);
    refused(&h, with(json!({"iss": null})), "no iss").await;
    refused(
        &h,
        with(json!({"iss": "https://other.example"})),
        "no enabled identity provider",
    )
    .await;
    refused(&h, with(json!({"sub": null})), "no sub").await;
    refused(&h, with(json!({"sub": ""})), "no sub").await;
    refused(&h, with(json!({"aud": null})), "aud is required").await;
    refused(&h, with(json!({"aud": "https://elsewhere"})), "alias").await;
    refused(&h, with(json!({"aud": ["a", "b"]})), "alias").await;
    refused(&h, with(json!({"aud": 5})), "aud must be").await;
    refused(&h, with(json!({"aud": [ALIAS, 5]})), "aud must be").await;
    refused(&h, with(json!({"exp": null})), "no exp").await;
    refused(&h, with(json!({"exp": NOW - 61})), "expired").await;
    refused(&h, with(json!({"exp": "tomorrow"})), "exp must be a number").await;
    refused(
        &h,
        with(json!({"exp": NOW + 86_400 + 61})),
        "max_assertion_lifetime_secs",
    )
    .await;
    refused(
        &h,
        with(json!({"exp": 1e300})),
        "max_assertion_lifetime_secs",
    )
    .await;
    refused(&h, with(json!({"nbf": NOW + 61})), "not valid yet").await;
    refused(&h, with(json!({"iat": NOW + 61})), "future").await;
    refused(&h, with(json!({"iat": NOW - 30 * 60 - 61})), "30 minutes").await;
    refused(&h, with(json!({"jti": 7})), "jti must be").await;
    let e = h
        .handle(&request("not-a-jwt"), &client())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidGrant);
    let huge = with(json!({"pad": "x".repeat(20_000)}));
    refused(&h, huge, "16 KiB").await;
}

#[tokio::test]
async fn the_skew_widens_acceptance_and_never_narrows_it() {
    let (h, _) = handler(&[]);
    let cases = [
        json!({"exp": NOW - 60, "jti": "a"}),
        json!({"nbf": NOW + 60, "jti": "b"}),
        json!({"iat": NOW + 60, "jti": "c"}),
        json!({"iat": NOW - 30 * 60 - 60, "jti": "d"}),
        json!({"aud": ["x", ALIAS], "jti": "e"}),
        json!({"exp": NOW + 86_400 + 60, "jti": "f"}),
        json!({"exp": (NOW + 300) as f64 + 0.5, "jti": "g"}),
        json!({"iat": null, "nbf": null, "jti": "h"}),
    ];
    for claims in cases {
        run(&h, &with(claims.clone()))
            .await
            .unwrap_or_else(|e| panic!("{claims}: {e:?}"));
    }
}

#[tokio::test]
async fn the_jti_is_left_to_the_host_per_issuer_and_only_with_prevent_token_reuse() {
    // The host records it with the tokens and refuses a replay (the end-to-end tests replay
    // assertions against the real store); keyed by tenant and issuer, so two IdPs' jtis never
    // collide, and kept until exp + skew.
    let (h, _) = handler(&[]);
    let expected = Some(SingleUse {
        scope: format!("jwt-bearer\nt\n{ISS}"),
        jti: "j-1".into(),
        expires_at: NOW + 300 + 60,
    });
    assert_eq!(run(&h, &good()).await.unwrap().jti, expected);
    // No jti: nothing to remember.
    assert_eq!(
        run(&h, &with(json!({"jti": null}))).await.unwrap().jti,
        None
    );

    let (lenient, _) = handler(&[("preventTokenReuse", "false")]);
    assert_eq!(run(&lenient, &good()).await.unwrap().jti, None);
    let odd = with(json!({"jti": 7}));
    assert_eq!(run(&lenient, &odd).await.unwrap().jti, None);
}

#[tokio::test]
async fn iat_validity_is_a_property() {
    let (h, _) = handler(&[("IATValidityPeriodInMinutes", "5")]);
    refused(&h, with(json!({"iat": NOW - 5 * 60 - 61})), "5 minutes").await;
    run(&h, &with(json!({"iat": NOW - 5 * 60 - 60})))
        .await
        .unwrap();
    let host = TestHost::new(NOW);
    for bad in ["0", "-1", "soon"] {
        let ctx = ComponentContext {
            properties: Properties::new(vec![("IATValidityPeriodInMinutes".into(), bad.into())]),
            settings: Default::default(),
            host: host.clone(),
        };
        assert!(JwtBearer::new(&ctx).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_host_that_cannot_decide_is_a_server_error() {
    let (h, _) = handler(&[]);
    let e = run(&h, &with(json!({"iss": "down"}))).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerError);
}

#[tokio::test]
async fn descriptions_never_echo_the_assertion() {
    let (h, _) = handler(&[]);
    for claims in [with(json!({"aud": "x"})), with(json!({"exp": NOW - 1000}))] {
        let assertion = jwt(&claims);
        let e = h.handle(&request(&assertion), &client()).await.unwrap_err();
        let text = format!("{e:?}");
        assert!(!text.contains(&assertion[..40]));
    }
}

#[test]
fn the_plugin_registers_its_name_alias_and_grant_type() {
    let plugin = plugin();
    let info = &plugin.registrations()[0].info;
    assert_eq!(info.name, "jwt-bearer");
    assert!(info.answers_to("org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler"));
    assert_eq!(info.provides, [GRANT_TYPE]);
}
