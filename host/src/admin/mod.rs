//! The super admin's API: client registration (RFC 7591/7592) and identity providers (WSO2's
//! REST shape), per tenant. Every call needs the super admin's Basic credentials; the first one
//! under `/t/{tenant}/` brings that tenant into being.

pub mod dcr;
pub mod idps;
mod super_admin;

pub use super_admin::{bootstrap, SuperAdmin};

use crate::oauth::exchange::{Request, Response};
use crate::oauth::{basic, OAuth};
use tollgate_core::OAuthError;

/// Checks the super admin's Basic credentials and makes sure the tenant exists. `Err` is the
/// response to send (401 with `WWW-Authenticate: Basic`, or 500).
pub async fn authorize(oauth: &OAuth, request: &Request) -> Result<String, Response> {
    let unauthorized = || {
        Response::error(
            &OAuthError::invalid_client("super admin credentials required"),
            true,
        )
    };
    let Some((user, password)) = basic::credentials(request.header("authorization")) else {
        return Err(unauthorized());
    };
    if !oauth.admin.verify(&user, &password).await {
        return Err(unauthorized());
    }
    let tenant = request.tenant().map_err(|e| Response::error(&e, false))?;
    oauth
        .store
        .ensure_tenant(&tenant, oauth.clock.now())
        .await
        .map_err(|e| {
            tracing::error!("ensure_tenant: {e}");
            Response::error(&OAuthError::server_error("storage unavailable"), false)
        })?;
    Ok(tenant)
}
