//! The client a client authenticator vouches for.

use serde::{Deserialize, Serialize};

/// A client that a [`crate::ClientAuthenticator`] has authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatedClient {
    pub client_id: String,
    /// The `token_endpoint_auth_method` that authenticated it (`client_secret_basic`,
    /// `private_key_jwt`, or a plugin's own name).
    pub auth_method: String,
}
