//! The super admin's API: client registration (RFC 7591/7592) and identity providers (WSO2's
//! REST shape), per tenant. Every call needs the super admin's Basic credentials — a wrong
//! username costs as much as a wrong password, and an address that fails too often gets 429
//! for the rest of its minute ([`throttle`]); the first call under `/t/{tenant}/` brings that
//! tenant into being.

pub mod dcr;
pub mod idps;
mod super_admin;
mod throttle;

pub use super_admin::{bootstrap, Login, SuperAdmin};

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
    match oauth.admin.login(request.peer, &user, &password).await {
        Login::Granted => {}
        Login::Denied => return Err(unauthorized()),
        Login::Throttled(wait) => {
            oauth.metrics.logins_throttled.inc();
            let error = OAuthError::invalid_request("too many failed logins; retry later");
            return Err(Response::error_with_status(429, &error)
                .with_header("retry-after", wait.to_string()));
        }
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
