//! `POST /oauth2/introspect` (RFC 7662). The caller is a client of the tenant (any active client
//! authentication method) or the super admin (Basic). Unknown, expired, revoked and other
//! tenants' tokens are all just `{"active": false}`.

use super::exchange::{Request, Response};
use super::{basic, OAuth};
use crate::admin::Login;
use tollgate_core::OAuthError;

impl OAuth {
    pub async fn introspect(&self, request: &Request) -> Response {
        let basic_sent = basic::is_basic(request.header("authorization"));
        match self.introspection(request).await {
            Ok(body) => Response::json(200, body),
            Err(error) => Response::error(&error, basic_sent),
        }
    }

    async fn introspection(&self, request: &Request) -> Result<serde_json::Value, OAuthError> {
        let token_request = self.token_request(request)?;
        let token = token_request
            .param("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        // Only Basic credentials naming the super admin pay for the password hash; a client's
        // go to client authentication.
        let super_admin = match basic::credentials(request.header("authorization")) {
            Some((user, password)) if self.admin.is_named(&user) => {
                self.admin.login(request.peer, &user, &password).await == Login::Granted
            }
            _ => false,
        };
        if !super_admin {
            self.authenticate_client(&token_request).await?;
        }
        let result = self
            .tokens
            .introspect(token_request.tenant(), token)
            .await
            .map_err(|e| {
                tracing::error!("introspection: {e}");
                OAuthError::server_error("storage unavailable")
            })?;
        Ok(serde_json::to_value(result).unwrap_or_default())
    }
}
