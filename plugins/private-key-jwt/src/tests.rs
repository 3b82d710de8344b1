//! The authenticator's rules, one failing case each. Signatures are the validator's business
//! (its own tests, and the end-to-end tests with the real plugins): a stand-in validator here
//! accepts any JWT of a known client, so each case isolates one rule.

use super::*;
use serde_json::{json, Map};
use tollgate_core::sdk::TestHost;
use tollgate_core::{peek_claims, JwtError};
use tollgate_core::{
    CacheSettings, ErrorCode, HostSettings, JwtValidator, Properties, VerifiedJwt,
};

const NOW: i64 = 1_800_000_000;
const ENDPOINT: &str = "https://tollgate.example/oauth2/token";

/// Clients `pkj` (private_key_jwt) and `secret` (client_secret_basic) of tenant `t`.
struct StandIn;

#[async_trait]
impl JwtValidator for StandIn {
    async fn validate(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        let TrustSource::Client { tenant, client_id } = source else {
            return Err(JwtError::Rejected("not a client".into()));
        };
        let method = match (tenant.as_str(), client_id.as_str()) {
            ("t", "pkj") => METHOD,
            ("t", "secret") => "client_secret_basic",
            ("t", "down") => return Err(JwtError::Unavailable("database down".into())),
            _ => return Err(JwtError::Rejected(format!("no client {client_id:?}"))),
        };
        Ok(VerifiedJwt {
            header: Map::new(),
            claims: peek_claims(jwt).expect("a JWT"),
            party: TrustedParty::Client {
                client_id: client_id.clone(),
                auth_method: method.into(),
            },
        })
    }
}

fn authenticator(properties: &[(&str, &str)], cache: bool) -> (PrivateKeyJwt, Arc<TestHost>) {
    let host = TestHost::new(NOW);
    host.set_validator(Arc::new(StandIn));
    let mut settings = HostSettings::default();
    if cache {
        settings.caches.insert(
            CACHE.into(),
            CacheSettings {
                enable: true,
                timeout_secs: 600,
                capacity: 100,
            },
        );
    }
    let ctx = ComponentContext {
        properties: Properties::new(
            properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        settings,
        host: host.clone(),
    };
    (PrivateKeyJwt::new(&ctx).expect("builds"), host)
}

fn jwt(claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!("{}.{}.c2ln", b64(&json!({"alg": "ES256"})), b64(claims))
}

fn good() -> Value {
    json!({"iss": "pkj", "sub": "pkj", "aud": ENDPOINT, "exp": NOW + 300, "iat": NOW - 10,
           "jti": "j-1"})
}

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

fn request(params: &[(&str, &str)]) -> TokenRequest {
    TokenRequest::new("t", ENDPOINT)
        .with_params([("grant_type", "client_credentials")])
        .with_params(params.iter().copied())
}

fn assertion_request(claims: &Value) -> TokenRequest {
    request(&[
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &jwt(claims)),
    ])
}

async fn run(a: &PrivateKeyJwt, claims: &Value) -> Result<AuthenticatedClient, OAuthError> {
    a.authenticate(&assertion_request(claims)).await
}

async fn refused(a: &PrivateKeyJwt, claims: Value, expected: &str) {
    let e = run(a, &claims).await.expect_err(expected);
    assert_eq!(e.code, ErrorCode::InvalidClient, "{expected}: {e:?}");
    assert!(
        e.description.contains(expected),
        "{expected}: {}",
        e.description
    );
}

#[tokio::test]
async fn a_good_assertion_authenticates_its_client() {
    let (a, _) = authenticator(&[], false);
    assert!(a.can_authenticate(&assertion_request(&good())));
    assert!(!a.can_authenticate(&request(&[("client_id", "x")])));
    let client = run(&a, &good()).await.unwrap();
    assert_eq!(
        client,
        AuthenticatedClient {
            client_id: "pkj".into(),
            auth_method: METHOD.into(),
            jti: single_use("j-1"),
        }
    );
}

#[tokio::test]
async fn each_rule_refuses_with_invalid_client_naming_it() {
    let (a, _) = authenticator(&[], false);
    refused(&a, with(json!({"sub": "other"})), "iss and sub").await;
    refused(&a, with(json!({"iss": null})), "needs iss and sub").await;
    refused(
        &a,
        with(json!({"iss": "nobody", "sub": "nobody"})),
        "no client",
    )
    .await;
    refused(
        &a,
        with(json!({"iss": "secret", "sub": "secret"})),
        "registered for client_secret_basic",
    )
    .await;
    refused(
        &a,
        with(json!({"aud": "https://elsewhere"})),
        "aud must contain",
    )
    .await;
    refused(&a, with(json!({"aud": null})), "aud is required").await;
    refused(&a, with(json!({"aud": {"x": 1}})), "aud must be").await;
    refused(&a, with(json!({"exp": null})), "no exp").await;
    refused(&a, with(json!({"exp": NOW - 61})), "expired").await;
    refused(
        &a,
        with(json!({"exp": NOW + 86_400 + 61})),
        "max_assertion_lifetime_secs",
    )
    .await;
    refused(&a, with(json!({"nbf": NOW + 61})), "not valid yet").await;
    refused(&a, with(json!({"iat": NOW + 61})), "future").await;
    refused(
        &a,
        with(json!({"iat": NOW - 100 * 60 - 61})),
        "RejectBeforeInMinutes",
    )
    .await;
    refused(&a, with(json!({"jti": null})), "no jti").await;
    refused(&a, with(json!({"jti": ""})), "jti must be").await;

    let wrong_type = request(&[
        ("client_assertion_type", "urn:other"),
        ("client_assertion", &jwt(&good())),
    ]);
    assert_eq!(
        a.authenticate(&wrong_type).await.unwrap_err().code,
        ErrorCode::InvalidClient
    );
    let no_assertion = request(&[("client_assertion_type", ASSERTION_TYPE)]);
    assert!(a.can_authenticate(&no_assertion));
    assert_eq!(
        a.authenticate(&no_assertion).await.unwrap_err().code,
        ErrorCode::InvalidRequest
    );
    let other_id = request(&[
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &jwt(&good())),
        ("client_id", "someone-else"),
    ]);
    let e = a.authenticate(&other_id).await.unwrap_err();
    assert!(e.description.contains("client_id"), "{e:?}");
    let garbage = request(&[
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", "x"),
    ]);
    assert_eq!(
        a.authenticate(&garbage).await.unwrap_err().code,
        ErrorCode::InvalidClient
    );
}

#[tokio::test]
async fn every_accepted_audience_form_works() {
    let alias = "https://alias.example/token";
    let (a, _) = authenticator(&[("TokenEndpointAlias", alias)], false);
    let forms = [
        json!(ENDPOINT),
        json!(alias),
        json!(["x", ENDPOINT]),
        json!([alias]),
    ];
    for (i, aud) in forms.into_iter().enumerate() {
        run(&a, &with(json!({"aud": aud, "jti": format!("a{i}")})))
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
}

#[tokio::test]
async fn the_skew_widens_acceptance() {
    let (a, _) = authenticator(&[], false);
    for (i, change) in [
        json!({"exp": NOW - 60}),
        json!({"nbf": NOW + 60}),
        json!({"iat": NOW + 60}),
        json!({"iat": NOW - 100 * 60 - 60}),
        json!({"iat": null}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut change = change;
        change["jti"] = format!("s{i}").into();
        run(&a, &with(change.clone()))
            .await
            .unwrap_or_else(|e| panic!("{change}: {e:?}"));
    }
}

/// What the host is left to record: the jti, per tenant and client, until `exp` + skew.
fn single_use(jti: &str) -> Option<SingleUse> {
    Some(SingleUse {
        scope: "private-key-jwt\nt\npkj".into(),
        jti: jti.into(),
        expires_at: NOW + 300 + 60,
    })
}

#[tokio::test]
async fn the_jti_is_left_to_the_host_and_the_cache_only_shortcuts_rejections() {
    // Without the cache every presentation goes to the host, which decides (the end-to-end
    // tests replay assertions against the real store).
    let (a, _) = authenticator(&[], false);
    for _ in 0..2 {
        assert_eq!(run(&a, &good()).await.unwrap().jti, single_use("j-1"));
    }
    // With it, a jti this process already handed over is refused at once; any other goes to
    // the host, so the cache never accepts by itself.
    let (a, _) = authenticator(&[], true);
    assert_eq!(run(&a, &good()).await.unwrap().jti, single_use("j-1"));
    refused(&a, good(), "already used").await;
    let other = with(json!({"jti": "j-2"}));
    assert_eq!(run(&a, &other).await.unwrap().jti, single_use("j-2"));

    let (lenient, _) = authenticator(&[("PreventTokenReuse", "false")], true);
    for _ in 0..2 {
        assert_eq!(run(&lenient, &good()).await.unwrap().jti, None);
    }
}

#[tokio::test]
async fn properties_are_checked() {
    let host = TestHost::new(NOW);
    for (name, bad) in [
        ("RejectBeforeInMinutes", "0"),
        ("RejectBeforeInMinutes", "x"),
        ("preventTokenReuse", "maybe"),
    ] {
        let ctx = ComponentContext {
            properties: Properties::new(vec![(name.into(), bad.into())]),
            settings: Default::default(),
            host: host.clone(),
        };
        assert!(PrivateKeyJwt::new(&ctx).is_err(), "{name}={bad}");
    }
    let (a, _) = authenticator(&[("RejectBeforeInMinutes", "5")], false);
    refused(&a, with(json!({"iat": NOW - 5 * 60 - 61})), "5 minutes").await;
}

#[tokio::test]
async fn a_host_that_cannot_decide_is_a_server_error() {
    let (a, _) = authenticator(&[], false);
    let e = run(&a, &with(json!({"iss": "down", "sub": "down"})))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerError);
}

#[test]
fn the_plugin_registers_its_name_alias_and_method() {
    let plugin = plugin();
    let info = &plugin.registrations()[0].info;
    assert_eq!(info.name, "private-key-jwt");
    assert!(info.answers_to(
        "org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator"
    ));
    assert_eq!(info.provides, [METHOD]);
}
