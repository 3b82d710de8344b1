//! The built-in components: `client_secret_basic`, `client_secret_post`, `client_credentials`
//! and `refresh_token`. They implement the same traits as plugins and register in the same
//! registry; identity.xml can disable or reorder them like any other.

use super::basic;
use crate::secret::ServerSecret;
use crate::store::Store;
use crate::tokens::TokenService;
use std::sync::Arc;
use tollgate_core::sdk::{Plugin, Registration};
use tollgate_core::{
    async_trait, AuthenticatedClient, ClientAuthenticator, ComponentInfo, Grant, GrantHandler,
    OAuthError, TokenRequest,
};

pub const CLIENT_SECRET_BASIC: &str = "client_secret_basic";
pub const CLIENT_SECRET_POST: &str = "client_secret_post";
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
pub const REFRESH_TOKEN: &str = "refresh_token";

/// The built-in registrations.
pub fn registrations(
    store: Store,
    secret: Arc<ServerSecret>,
    tokens: Arc<TokenService>,
) -> Vec<Registration> {
    let (s1, k1, s2, k2) = (store.clone(), secret.clone(), store, secret);
    Plugin::new()
        .client_authenticator(
            ComponentInfo::client_authenticator(CLIENT_SECRET_BASIC)
                .alias("org.wso2.carbon.identity.oauth2.client.authentication.BasicAuthClientAuthenticator")
                .provides(CLIENT_SECRET_BASIC)
                .description("client_id and client_secret in an HTTP Basic header (RFC 6749 §2.3.1)"),
            move |_| Ok(SecretAuthenticator { store: s1.clone(), secret: k1.clone(), basic: true }),
        )
        .client_authenticator(
            ComponentInfo::client_authenticator(CLIENT_SECRET_POST)
                .provides(CLIENT_SECRET_POST)
                .description("client_id and client_secret in the form body (RFC 6749 §2.3.1)"),
            move |_| Ok(SecretAuthenticator { store: s2.clone(), secret: k2.clone(), basic: false }),
        )
        .grant_handler(
            ComponentInfo::grant_handler(CLIENT_CREDENTIALS)
                .alias("org.wso2.carbon.identity.oauth2.token.handlers.grant.ClientCredentialsGrantHandler")
                .provides(CLIENT_CREDENTIALS)
                .description("RFC 6749 §4.4"),
            |_| Ok(ClientCredentials),
        )
        .grant_handler(
            ComponentInfo::grant_handler(REFRESH_TOKEN)
                .alias("org.wso2.carbon.identity.oauth2.token.handlers.grant.RefreshGrantHandler")
                .provides(REFRESH_TOKEN)
                .description("RFC 6749 §6, with rotation and reuse detection"),
            move |_| Ok(RefreshToken { tokens: tokens.clone() }),
        )
        .into_registrations()
}

/// A hash no secret has: compared against when the client is unknown, so that an unknown
/// client takes as long to refuse as a wrong secret.
const NO_SUCH_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `client_secret_basic` (`basic`) or `client_secret_post`.
struct SecretAuthenticator {
    store: Store,
    secret: Arc<ServerSecret>,
    basic: bool,
}

impl SecretAuthenticator {
    fn method(&self) -> &'static str {
        if self.basic {
            CLIENT_SECRET_BASIC
        } else {
            CLIENT_SECRET_POST
        }
    }
}

#[async_trait]
impl ClientAuthenticator for SecretAuthenticator {
    fn can_authenticate(&self, request: &TokenRequest) -> bool {
        if self.basic {
            basic::is_basic(request.header("authorization"))
        } else {
            request.param("client_secret").is_some()
        }
    }

    async fn authenticate(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let (client_id, secret) = if self.basic {
            let (id, secret) = basic::credentials(request.header("authorization"))
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            if request
                .param("client_id")
                .is_some_and(|form_id| form_id != id)
            {
                return Err(OAuthError::invalid_client(
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, secret)
        } else {
            let id = request
                .param("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client_secret without client_id"))?;
            (
                id.to_string(),
                request
                    .param("client_secret")
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        let client = self
            .store
            .client(request.tenant(), &client_id)
            .await
            .map_err(|e| {
                tracing::error!("client lookup: {e}");
                OAuthError::server_error("storage unavailable")
            })?;
        let stored = client.as_ref().and_then(|c| c.secret_hash.as_deref());
        let matches = self.secret.verify(&secret, stored.unwrap_or(NO_SUCH_HASH));
        match client {
            Some(_) if matches && stored.is_some() => Ok(AuthenticatedClient {
                client_id,
                auth_method: self.method().to_string(),
                jti: None,
            }),
            _ => Err(OAuthError::invalid_client("client authentication failed")),
        }
    }
}

/// RFC 6749 §4.4: the client acts for itself; no refresh token (§4.4.3).
struct ClientCredentials;

#[async_trait]
impl GrantHandler for ClientCredentials {
    async fn handle(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
    ) -> Result<Grant, OAuthError> {
        Ok(Grant {
            subject: client.client_id.clone(),
            scopes: request.scopes().into_iter().map(String::from).collect(),
            ..Grant::default()
        })
    }
}

/// RFC 6749 §6: redeems a refresh token (rotating it atomically) and re-grants its scopes, or a
/// subset of them when `scope` narrows them.
struct RefreshToken {
    tokens: Arc<TokenService>,
}

#[async_trait]
impl GrantHandler for RefreshToken {
    fn validate_request(&self, request: &TokenRequest) -> Result<(), OAuthError> {
        match request.param("refresh_token") {
            Some(t) if !t.is_empty() => Ok(()),
            _ => Err(OAuthError::invalid_request("refresh_token is missing")),
        }
    }

    async fn handle(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
    ) -> Result<Grant, OAuthError> {
        let token = request.param("refresh_token").unwrap_or_default();
        let requested = request.scopes();
        let narrow_to = request.param("scope").map(|_| requested.as_slice());
        let old = self
            .tokens
            .redeem_refresh(request.tenant(), &client.client_id, token, narrow_to)
            .await?;
        let scopes: Vec<String> = match narrow_to {
            Some(requested) => requested.iter().map(|s| s.to_string()).collect(),
            None => old
                .scope
                .as_deref()
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        };
        let claims = match old.claims {
            serde_json::Value::Object(map) => map,
            _ => Default::default(),
        };
        Ok(Grant {
            subject: old.subject,
            scopes,
            refresh_token: true,
            redeems: Some(old.hash),
            claims,
            jti: None,
        })
    }
}
