//! `POST /oauth2/revoke` (RFC 7009). A client revokes only its own tokens; for another client's
//! token, or an unknown one, the answer is the same 200 (§2.2), and the token stays as it was.
//! Revoking a refresh token revokes the access tokens issued with it.

use super::exchange::{Request, Response};
use super::{basic, OAuth};
use tollgate_core::OAuthError;

impl OAuth {
    pub async fn revoke(&self, request: &Request) -> Response {
        let basic_sent = basic::is_basic(request.header("authorization"));
        match self.revocation(request).await {
            Ok(()) => Response::empty(200),
            Err(error) => Response::error(&error, basic_sent),
        }
    }

    async fn revocation(&self, request: &Request) -> Result<(), OAuthError> {
        let token_request = self.token_request(request)?;
        let token = token_request
            .param("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let client = self.authenticate_client(&token_request).await?;
        self.tokens
            .revoke(token_request.tenant(), &client.client_id, token)
            .await
            .map_err(|e| {
                tracing::error!("revocation: {e}");
                OAuthError::server_error("storage unavailable")
            })
    }
}
