//! The ABI's own tests: every call through the FFI vtables and the JSON wire, in one process.
//! (Loading real `.so` files is tested by the host's tests.)

use super::*;
use crate::sdk::Plugin;
use crate::*;
use serde_json::Value;
use std::sync::Arc;

#[test]
fn the_exported_symbol_is_abi_stables_root_module_loader() {
    assert_eq!(
        crate::__tollgate_root_symbol!(),
        abi_stable::library::ROOT_MODULE_LOADER_NAME
    );
}

struct FakeHost;

#[async_trait]
impl HostServices for FakeHost {
    async fn validate_jwt(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        if jwt == "good" {
            Ok(VerifiedJwt {
                header: Default::default(),
                claims: serde_json::json!({"sub": "alice"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                party: TrustedParty::IdentityProvider {
                    id: "1".into(),
                    name: format!("{source:?}"),
                    alias: "aud".into(),
                },
            })
        } else {
            Err(JwtError::Rejected("bad signature".into()))
        }
    }
    async fn trust_material(&self, _: &TrustSource) -> Result<TrustMaterial, JwtError> {
        Err(JwtError::Unavailable("none".into()))
    }
    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, JwtError> {
        Ok(Jwks {
            keys: vec![serde_json::json!({"uri": uri, "kid": kid})],
        })
    }
    async fn check_and_store_jti(
        &self,
        scope: &str,
        jti: &str,
        exp: i64,
    ) -> Result<bool, HostError> {
        Ok(scope == "s" && jti == "fresh" && exp == 7)
    }
    fn now(&self) -> i64 {
        1234
    }
    fn log(&self, _: LogLevel, _: &str) {}
    async fn call(&self, name: &str, input: Value) -> Result<Value, HostError> {
        if name == "echo" {
            Ok(input)
        } else {
            Err(HostError(format!("unknown call {name}")))
        }
    }
}

/// A grant handler that exercises every host service and panics on request.
struct Probe {
    host: Arc<dyn HostServices>,
    label: String,
}

#[async_trait]
impl GrantHandler for Probe {
    fn validate_request(&self, request: &TokenRequest) -> Result<(), OAuthError> {
        match request.param("assertion") {
            Some("panic-sync") => panic!("sync boom"),
            Some(_) => Ok(()),
            None => Err(OAuthError::invalid_request("assertion is missing")),
        }
    }

    async fn handle(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
    ) -> Result<Grant, OAuthError> {
        let assertion = request.param("assertion").unwrap_or_default();
        if assertion == "panic" {
            panic!("async boom");
        }
        let source = TrustSource::IdentityProvider {
            tenant: request.tenant().to_string(),
            name: "idp".into(),
        };
        let verified = self
            .host
            .validate_jwt(assertion, &source)
            .await
            .map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
        let fresh = self
            .host
            .check_and_store_jti("s", "fresh", 7)
            .await
            .map_err(|e| OAuthError::server_error(e.0))?;
        let jwks = self
            .host
            .jwks("https://idp/jwks", Some("k1"))
            .await
            .map_err(|e| OAuthError::server_error(e.to_string()))?;
        let echo = self
            .host
            .call("echo", serde_json::json!({"x": 1}))
            .await
            .map_err(|e| OAuthError::server_error(e.0))?;
        let unknown = self.host.call("nope", Value::Null).await;
        let mut claims = serde_json::Map::new();
        claims.insert("now".into(), self.host.now().into());
        claims.insert("fresh".into(), fresh.into());
        claims.insert(
            "jwks".into(),
            serde_json::to_value(jwks).unwrap_or_default(),
        );
        claims.insert("echo".into(), echo);
        claims.insert(
            "unknown".into(),
            unknown.map_err(|e| e.0).unwrap_err().into(),
        );
        claims.insert("label".into(), self.label.clone().into());
        Ok(Grant {
            subject: format!(
                "{}@{}",
                verified.claims["sub"].as_str().unwrap_or_default(),
                client.client_id
            ),
            scopes: request.scopes().into_iter().map(String::from).collect(),
            refresh_token: true,
            redeems: None,
            jti: None,
            claims,
        })
    }
}

fn probe_plugin() -> Plugin {
    Plugin::new().grant_handler(
        ComponentInfo::grant_handler("probe")
            .alias("org.example.Probe")
            .property("Label", Some("x"), "a label"),
        |ctx| {
            if ctx.properties.get("label") == Some("fail") {
                return Err("label must not be fail".into());
            }
            Ok(Probe {
                host: ctx.host.clone(),
                label: ctx.properties.get("LABEL").unwrap_or("none").to_string(),
            })
        },
    )
}

fn context(label: &str) -> ComponentContext {
    ComponentContext {
        properties: Properties::new(vec![("Label".into(), label.into())]),
        settings: HostSettings::default(),
        host: Arc::new(FakeHost),
    }
}

fn request(assertion: Option<&str>) -> TokenRequest {
    let mut r = TokenRequest::new("carbon.super", "");
    r.set_param("grant_type", "urn:x");
    r.set_param("scope", "a b");
    if let Some(a) = assertion {
        r.set_param("assertion", a);
    }
    r
}

fn grant_handler(label: &str) -> Arc<dyn GrantHandler> {
    let regs = through_abi(probe_plugin()).expect("exports");
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].info.name, "probe");
    assert_eq!(regs[0].info.kind, ComponentKind::GrantHandler);
    assert!(regs[0].info.answers_to("org.example.Probe"));
    match (regs[0].construct)(context(label)).expect("constructs") {
        Component::GrantHandler(h) => h,
        _ => panic!("wrong kind"),
    }
}

#[tokio::test]
async fn every_call_and_host_service_crosses_the_abi() {
    let h = grant_handler("L");
    let client = AuthenticatedClient {
        client_id: "c1".into(),
        auth_method: "client_secret_basic".into(),
        jti: None,
    };
    assert_eq!(h.validate_request(&request(Some("good"))), Ok(()));
    assert_eq!(
        h.validate_request(&request(None)).unwrap_err().code,
        ErrorCode::InvalidRequest
    );
    let grant = h
        .handle(&request(Some("good")), &client)
        .await
        .expect("granted");
    assert_eq!(grant.subject, "alice@c1");
    assert_eq!(grant.scopes, vec!["a", "b"]);
    assert!(grant.refresh_token);
    assert_eq!(grant.claims["now"], 1234);
    assert_eq!(grant.claims["fresh"], true);
    assert_eq!(grant.claims["jwks"]["keys"][0]["kid"], "k1");
    assert_eq!(grant.claims["echo"]["x"], 1);
    assert_eq!(grant.claims["unknown"], "unknown call nope");
    assert_eq!(grant.claims["label"], "L");
    let err = h.handle(&request(Some("bad")), &client).await.unwrap_err();
    assert_eq!(err, OAuthError::invalid_grant("rejected: bad signature"));
}

#[tokio::test]
async fn a_panic_becomes_server_error_and_the_next_call_works() {
    let h = grant_handler("L");
    let client = AuthenticatedClient {
        client_id: "c1".into(),
        auth_method: "m".into(),
        jti: None,
    };
    let err = h
        .handle(&request(Some("panic")), &client)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ServerError);
    assert!(err.description.contains("async boom"), "{err}");
    let err = h
        .validate_request(&request(Some("panic-sync")))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ServerError);
    assert!(h.handle(&request(Some("good")), &client).await.is_ok());
}

#[test]
fn a_constructor_error_reaches_the_host() {
    let regs = through_abi(probe_plugin()).expect("exports");
    let err = (regs[0].construct)(context("fail")).err().expect("refused");
    assert_eq!(err.to_string(), "label must not be fail");
}

#[test]
fn a_panicking_plugin_description_is_an_init_error() {
    let err = super::root::export_factories(|| -> Plugin { panic!("no components today") });
    match err {
        abi_stable::std_types::RResult::RErr(e) => assert!(e.contains("no components today")),
        _ => panic!("expected an error"),
    }
}

#[tokio::test]
async fn the_test_host_keeps_jtis_like_the_server() {
    let host = crate::sdk::TestHost::new(100);
    assert_eq!(host.check_and_store_jti("s", "j", 150).await, Ok(true));
    assert_eq!(host.check_and_store_jti("s", "j", 150).await, Ok(false));
    assert_eq!(host.check_and_store_jti("other", "j", 150).await, Ok(true));
    host.set_now(151);
    assert_eq!(host.check_and_store_jti("s", "j", 300).await, Ok(true));
}

/// A validator plugin that answers like [`FakeHost::validate_jwt`] and panics on
/// "validator-panic".
struct FakeValidator;

#[async_trait]
impl JwtValidator for FakeValidator {
    async fn validate(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        if jwt == "validator-panic" {
            panic!("validator boom");
        }
        FakeHost.validate_jwt(jwt, source).await
    }
}

/// A host that passes a loaded validator's answer on as it came, as the server does, and
/// cannot decode one itself.
struct PassingHost(Arc<dyn JwtValidator>);

#[async_trait]
impl HostServices for PassingHost {
    async fn validate_jwt(&self, _: &str, _: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        unreachable!("a loaded component's call takes validate_jwt_encoded")
    }
    async fn validate_jwt_encoded(&self, jwt: &str, source: &TrustSource) -> Encoded {
        if jwt == "host-panic" {
            panic!("host boom");
        }
        self.0.validate_encoded(jwt, source).await
    }
    async fn trust_material(&self, s: &TrustSource) -> Result<TrustMaterial, JwtError> {
        FakeHost.trust_material(s).await
    }
    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, JwtError> {
        FakeHost.jwks(uri, kid).await
    }
    async fn check_and_store_jti(&self, s: &str, j: &str, e: i64) -> Result<bool, HostError> {
        FakeHost.check_and_store_jti(s, j, e).await
    }
    fn now(&self) -> i64 {
        FakeHost.now()
    }
    fn log(&self, _: LogLevel, _: &str) {}
    async fn call(&self, name: &str, input: Value) -> Result<Value, HostError> {
        FakeHost.call(name, input).await
    }
}

#[tokio::test]
async fn a_loaded_validators_answer_reaches_a_loaded_component_as_it_came() {
    let regs = through_abi(
        Plugin::new().jwt_validator(ComponentInfo::jwt_validator("fake"), |_| Ok(FakeValidator)),
    )
    .expect("exports");
    let Ok(Component::JwtValidator(validator)) = (regs[0].construct)(context("L")) else {
        panic!("a validator");
    };
    let regs = through_abi(probe_plugin()).expect("exports");
    let mut ctx = context("L");
    ctx.host = Arc::new(PassingHost(validator));
    let Ok(Component::GrantHandler(h)) = (regs[0].construct)(ctx) else {
        panic!("a grant handler");
    };
    let client = AuthenticatedClient {
        client_id: "c1".into(),
        auth_method: "m".into(),
        jti: None,
    };
    let grant = h.handle(&request(Some("good")), &client).await;
    assert_eq!(grant.expect("granted").subject, "alice@c1");
    let err = h.handle(&request(Some("bad")), &client).await.unwrap_err();
    assert_eq!(err, OAuthError::invalid_grant("rejected: bad signature"));
    // A panic on either side is the validation's `Unavailable`, not a lost call.
    for (jwt, boom) in [
        ("validator-panic", "validator boom"),
        ("host-panic", "host boom"),
    ] {
        let err = h.handle(&request(Some(jwt)), &client).await.unwrap_err();
        assert!(err.description.contains(boom), "{err}");
    }
}
