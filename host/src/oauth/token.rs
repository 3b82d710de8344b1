//! `POST /oauth2/token` (RFC 6749 §3.2, §5).
//!
//! The order of checks is part of the contract: the form (repeats, bounds) and the grant's own
//! parameters are checked before the client is authenticated, so a malformed request is
//! `invalid_request` whoever sends it; then client authentication (`invalid_client`, 401); then
//! what the client's registration allows (`unauthorized_client`, `invalid_scope`); then the
//! grant (`invalid_grant`); then minting.

use super::exchange::{Request, Response};
use super::{basic, builtin, form, OAuth};
use crate::config::deployment::TokenFormat;
use crate::plugins::Active;
use crate::store::ClientRecord;
use crate::tokens::{Issue, Issued, JtiCheck, TokenError};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tollgate_core::{
    AuthenticatedClient, ClientAuthenticator, OAuthError, SingleUse, TokenRequest,
};

/// Headers a component may see: everything but cookies and hop-by-hop headers.
const HIDDEN_HEADERS: [&str; 6] = [
    "cookie",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

impl OAuth {
    /// The token endpoint.
    pub async fn token(&self, request: &Request) -> Response {
        let basic_sent = basic::is_basic(request.header("authorization"));
        let started = std::time::Instant::now();
        let (grant_type, result) = self.token_flow(request).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        self.metrics
            .count_grant(&grant_type, outcome, started.elapsed());
        match result {
            Ok(issued) => Response::json(200, issued),
            Err(error) => Response::error(&error, basic_sent),
        }
    }

    /// Builds the request components see from an exchange carrying a form body.
    pub(super) fn token_request(&self, request: &Request) -> Result<TokenRequest, OAuthError> {
        let tenant = request.tenant()?;
        if !form::is_form(request.header("content-type")) {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let params = form::parse(&request.body)?;
        let headers = request
            .headers
            .iter()
            .filter(|(name, _)| !HIDDEN_HEADERS.contains(&name.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_str()));
        let endpoint_url = self.endpoint_url(&tenant);
        Ok(TokenRequest::new(tenant, endpoint_url)
            .with_params(params)
            .with_headers(headers))
    }

    /// The whole flow; returns the grant type (for metrics, bounded to known ones) and the
    /// outcome.
    async fn token_flow(&self, request: &Request) -> (String, Result<Issued, OAuthError>) {
        let token_request = match self.token_request(request) {
            Ok(r) => r,
            Err(e) => return ("none".into(), Err(e)),
        };
        let Some(grant_type) = token_request.grant_type().map(str::to_string) else {
            return (
                "none".into(),
                Err(OAuthError::invalid_request("grant_type is missing")),
            );
        };
        let Some(handler) = self.components.grant_handlers.get(&grant_type) else {
            return (
                "unsupported".into(),
                Err(OAuthError::unsupported_grant_type(
                    "this grant type is not supported here",
                )),
            );
        };
        let result = self.grant(&token_request, &grant_type, handler).await;
        (grant_type, result)
    }

    async fn grant(
        &self,
        request: &TokenRequest,
        grant_type: &str,
        handler: &Active<dyn tollgate_core::GrantHandler>,
    ) -> Result<Issued, OAuthError> {
        guard(&handler.name, async {
            handler.component.validate_request(request)
        })
        .await?;
        let mut client = self.authenticate(request).await?;
        // The jtis to record with the tokens. The client's rides along only into the built-in
        // client_credentials grant, which decides nothing beyond the registration: any other
        // handler may act before it returns (a reused refresh token revokes its family; a
        // plugin may write), which a replayed client assertion must not reach.
        let mut jtis: Vec<JtiCheck> = client.jti.take().map(client_jti).into_iter().collect();
        if handler.name != builtin::CLIENT_CREDENTIALS {
            self.check_jtis(std::mem::take(&mut jtis)).await?;
        }
        let decided = self
            .decide(request, grant_type, handler, client, &mut jtis)
            .await;
        match decided {
            Ok(issue) => self
                .tokens
                .issue(issue)
                .await
                .map_err(TokenError::into_oauth),
            // A presented jti is spent whatever else is wrong with the request, and a replay is
            // the answer, as if it had been checked where its component returned it.
            Err(refusal) => {
                self.check_jtis(jtis).await?;
                Err(refusal)
            }
        }
    }

    /// What the client may have of the grant its handler decides; the jti the grant leaves to
    /// the host joins `jtis`, and all of them ride in the returned [`Issue`].
    async fn decide(
        &self,
        request: &TokenRequest,
        grant_type: &str,
        handler: &Active<dyn tollgate_core::GrantHandler>,
        client: AuthenticatedClient,
        jtis: &mut Vec<JtiCheck>,
    ) -> Result<Issue, OAuthError> {
        let record = self.registered_client(request.tenant(), &client).await?;
        if !record.grant_types.iter().any(|g| g == grant_type) {
            return Err(OAuthError::unauthorized_client(format!(
                "the client may not use the {grant_type} grant"
            )));
        }
        check_scopes(&record, request.scopes())?;
        let mut grant = guard(&handler.name, handler.component.handle(request, &client)).await?;
        jtis.extend(grant.jti.take().map(|jti| JtiCheck {
            jti,
            if_used: OAuthError::invalid_grant("the assertion was already used (jti)"),
        }));
        // A handler may not grant more than the registration allows, whatever it returns.
        check_scopes(&record, grant.scopes.iter().map(String::as_str).collect())?;
        let format = match record.access_token_format.as_deref() {
            Some("jwt") => TokenFormat::Jwt,
            Some("opaque") => TokenFormat::Opaque,
            _ => self.settings.default_format,
        };
        Ok(Issue {
            tenant: request.tenant().to_string(),
            issuer: request.endpoint_url().to_string(),
            client_id: client.client_id,
            subject: grant.subject,
            scopes: grant.scopes,
            refresh_token: grant.refresh_token,
            format,
            claims: grant.claims,
            redeems: grant.redeems,
            jtis: std::mem::take(jtis),
        })
    }

    /// Records `jtis` now; a replay is its refusal.
    async fn check_jtis(&self, jtis: Vec<JtiCheck>) -> Result<(), OAuthError> {
        if jtis.is_empty() {
            return Ok(());
        }
        self.tokens
            .check_jtis(&jtis)
            .await
            .map_err(TokenError::into_oauth)
    }

    /// Client authentication for the endpoints that issue nothing (introspection, revocation):
    /// [`OAuth::authenticate`], with the client assertion's jti recorded before the answer.
    pub(super) async fn authenticate_client(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let mut client = self.authenticate(request).await?;
        self.check_jtis(client.jti.take().map(client_jti).into_iter().collect())
            .await?;
        Ok(client)
    }

    /// Client authentication: the active authenticators in `orderId` order; the first that can
    /// authenticate the request does. Presenting two kinds of client credentials at once — a
    /// Basic header, a `client_secret` parameter, a `client_assertion` — is `invalid_request`
    /// (RFC 6749 §2.3), whoever would take them. The jti the authenticator leaves to the host
    /// is not recorded yet.
    async fn authenticate(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let presented = [
            request
                .header("authorization")
                .and_then(|h| h.get(..6))
                .is_some_and(|p| p.eq_ignore_ascii_case("basic ")),
            request.param("client_secret").is_some(),
            request.param("client_assertion").is_some()
                || request.param("client_assertion_type").is_some(),
        ];
        if presented.iter().filter(|p| **p).count() > 1 {
            return Err(OAuthError::invalid_request(
                "more than one client authentication method was used",
            ));
        }
        let Some(first) = self
            .components
            .client_authenticators
            .iter()
            .find(|a| can_authenticate(&a.component, request))
        else {
            return Err(OAuthError::invalid_client(
                "client authentication is required",
            ));
        };
        guard(&first.name, first.component.authenticate(request)).await
    }

    /// The registration of an authenticated client, which must use the method it registered
    /// (the two secret methods count as one, as in WSO2).
    async fn registered_client(
        &self,
        tenant: &str,
        client: &AuthenticatedClient,
    ) -> Result<std::sync::Arc<ClientRecord>, OAuthError> {
        let record = self
            .store
            .client(tenant, &client.client_id)
            .await
            .map_err(|e| {
                tracing::error!("client lookup: {e}");
                OAuthError::server_error("storage unavailable")
            })?
            .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
        let secret_method = |m: &str| m == "client_secret_basic" || m == "client_secret_post";
        let same = record.auth_method == client.auth_method
            || (secret_method(&record.auth_method) && secret_method(&client.auth_method));
        if !same {
            return Err(OAuthError::invalid_client(format!(
                "the client is registered for {}",
                record.auth_method
            )));
        }
        Ok(record)
    }
}

/// The check of a client assertion's jti.
fn client_jti(jti: SingleUse) -> JtiCheck {
    JtiCheck {
        jti,
        if_used: OAuthError::invalid_client("the client assertion was already used (jti)"),
    }
}

/// `can_authenticate`, with a panic meaning "not mine".
fn can_authenticate(
    authenticator: &std::sync::Arc<dyn ClientAuthenticator>,
    request: &TokenRequest,
) -> bool {
    std::panic::catch_unwind(AssertUnwindSafe(|| authenticator.can_authenticate(request)))
        .unwrap_or(false)
}

/// Runs a component's call; a panic becomes `server_error` and the server keeps serving.
/// (Loaded components are guarded by the ABI already; this covers built-in ones.)
async fn guard<T>(
    component: &str,
    call: impl std::future::Future<Output = Result<T, OAuthError>>,
) -> Result<T, OAuthError> {
    AssertUnwindSafe(call)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!(component, "component panicked");
            Err(OAuthError::server_error("internal error in a component"))
        })
}

/// Every scope must be one the registration allows (`scope` absent = any).
fn check_scopes(record: &ClientRecord, requested: Vec<&str>) -> Result<(), OAuthError> {
    let Some(allowed) = record.scope.as_deref() else {
        return Ok(());
    };
    match requested
        .into_iter()
        .find(|s| !allowed.split(' ').any(|a| a == *s))
    {
        Some(scope) => Err(OAuthError::invalid_scope(format!(
            "the client may not request scope {scope}"
        ))),
        None => Ok(()),
    }
}
