//! The handler's rules, against `TestHost` (the SDK's stand-in for the server). Signature
//! verification is the host's business, not this handler's: the stand-in validator below treats
//! the "token" as its claims, so each test states the claims it is about.

use super::*;
use std::sync::Arc;
use tollgate_core::serde_json::{json, Map};
use tollgate_core::{
    sdk::TestHost, ErrorCode, HostSettings, JwtError, JwtValidator, Properties, TrustMaterial,
    VerifiedJwt,
};

const NOW: i64 = 1_700_000_000;
const ALIAS: &str = "https://tollgate.example.com";

/// Verifies nothing: the claims are the token; the party is what the host has registered.
struct ClaimsAreTheToken(Arc<TestHost>);

#[async_trait]
impl JwtValidator for ClaimsAreTheToken {
    async fn validate(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        let party = self.0.trust_material(source).await?.party;
        let claims: Map<String, Value> = tollgate_core::serde_json::from_str(jwt)
            .map_err(|_| JwtError::Rejected("not JSON".into()))?;
        Ok(VerifiedJwt {
            header: Map::new(),
            claims,
            party,
        })
    }
}

fn host() -> Arc<TestHost> {
    let host = TestHost::new(NOW);
    host.add_trust(
        TrustSource::IdentityProvider {
            tenant: "carbon.super".into(),
            name: GITHUB_ISSUER.into(),
        },
        TrustMaterial {
            party: TrustedParty::IdentityProvider {
                id: "1".into(),
                name: GITHUB_ISSUER.into(),
                alias: ALIAS.into(),
            },
            jwks_uri: None,
            keys: vec![],
        },
    );
    host.set_validator(Arc::new(ClaimsAreTheToken(host.clone())));
    host
}

fn handler(
    host: &Arc<TestHost>,
    properties: &[(&str, &str)],
) -> Result<GithubActionsGrant, BoxError> {
    GithubActionsGrant::new(&ComponentContext {
        properties: Properties::new(
            properties
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        ),
        settings: HostSettings::default(),
        host: host.clone(),
    })
}

/// A job's token for `repository` on `git_ref`, with `jti`.
fn token(repository: &str, git_ref: &str, jti: &str) -> Value {
    json!({
        "iss": GITHUB_ISSUER, "aud": ALIAS, "iat": NOW - 5, "nbf": NOW - 5, "exp": NOW + 300,
        "jti": jti, "sub": format!("repo:{repository}:ref:{git_ref}"),
        "repository": repository, "ref": git_ref,
    })
}

fn request(assertion: &Value) -> TokenRequest {
    TokenRequest::new("carbon.super", "").with_params([
        ("grant_type", GRANT_TYPE),
        ("assertion", &assertion.to_string()),
        ("scope", "deploy"),
    ])
}

fn client() -> AuthenticatedClient {
    AuthenticatedClient {
        client_id: "ci".into(),
        auth_method: "client_secret_basic".into(),
        jti: None,
    }
}

async fn refused(handler: &GithubActionsGrant, assertion: Value) -> String {
    let e = handler
        .handle(&request(&assertion), &client())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidGrant, "{e:?}");
    e.description
}

#[tokio::test]
async fn an_allowed_repository_gets_a_grant_for_its_job_once() {
    let host = host();
    let h = handler(&host, &[("AllowedRepositories", "acme/infra-*, acme/app")]).unwrap();
    let t = token("acme/infra-dns", "refs/heads/main", "j1");
    let grant = h.handle(&request(&t), &client()).await.unwrap();
    assert_eq!(grant.subject, "repo:acme/infra-dns:ref:refs/heads/main");
    assert_eq!(grant.scopes, ["deploy"]);
    assert!(!grant.refresh_token);
    assert_eq!(grant.claims["repository"], "acme/infra-dns");
    assert!(refused(&h, t).await.contains("already used"));
}

#[tokio::test]
async fn the_policy_and_the_claims_are_enforced() {
    let host = host();
    let h = handler(
        &host,
        &[
            ("AllowedRepositories", "acme/app"),
            ("AllowedRefs", "refs/heads/main"),
        ],
    )
    .unwrap();
    assert!(refused(&h, token("evil/app", "refs/heads/main", "a"))
        .await
        .contains("AllowedRepositories"));
    assert!(refused(&h, token("acme/app-2", "refs/heads/main", "b"))
        .await
        .contains("AllowedRepositories"));
    assert!(refused(&h, token("acme/app", "refs/heads/dev", "c"))
        .await
        .contains("AllowedRefs"));
    let mut t = token("acme/app", "refs/heads/main", "d");
    t["aud"] = "https://elsewhere".into();
    assert!(refused(&h, t).await.contains("alias"));
    let mut t = token("acme/app", "refs/heads/main", "e");
    t["exp"] = (NOW - 3600).into();
    assert!(refused(&h, t).await.contains("expired"));
    let mut t = token("acme/app", "refs/heads/main", "f");
    t["iat"] = (NOW - 3600).into();
    assert!(refused(&h, t).await.contains("MaxAgeInMinutes"));
    let mut t = token("acme/app", "refs/heads/main", "g");
    t.as_object_mut().unwrap().remove("jti");
    assert!(refused(&h, t).await.contains("jti"));
}

#[tokio::test]
async fn only_the_configured_issuer_is_asked() {
    let host = host();
    let h = handler(
        &host,
        &[
            ("AllowedRepositories", "acme/*"),
            ("Issuer", "https://other"),
        ],
    )
    .unwrap();
    // The host knows no IdP "https://other": the validator's rejection becomes invalid_grant.
    assert!(refused(&h, token("acme/app", "refs/heads/main", "a"))
        .await
        .contains("unknown trust source"));
}

#[test]
fn requests_without_an_assertion_are_invalid_requests() {
    let h = handler(&host(), &[("AllowedRepositories", "acme/app")]).unwrap();
    let mut r = request(&json!({}));
    r.remove_param("assertion");
    assert_eq!(
        h.validate_request(&r).unwrap_err().code,
        ErrorCode::InvalidRequest
    );
}

#[test]
fn a_policy_that_lets_everyone_in_is_refused_at_start_up() {
    let host = host();
    for bad in [
        vec![],
        vec![("AllowedRepositories", "*")],
        vec![("AllowedRepositories", "/x*")],
        vec![
            ("AllowedRepositories", "acme/app"),
            ("MaxAgeInMinutes", "0"),
        ],
    ] {
        assert!(handler(&host, &bad).is_err(), "{bad:?}");
    }
    assert!(
        handler(&host, &[("allowedrepositories", "acme/*")]).is_ok(),
        "names match in any case"
    );
}
