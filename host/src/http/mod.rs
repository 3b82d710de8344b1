//! HTTP: warp routes over a hyper-util connection loop of our own.
//!
//! warp 0.4 no longer terminates TLS, so the loop ([`server`]) owns the socket: TLS with rustls,
//! header-read and request timeouts, connections per client address ([`peers`]), graceful
//! shutdown, and the request body bound — applied below warp so that no route can forget it. [`routes`] holds the endpoints and the tenant prefix; [`reply`]
//! is the one place an [`tollgate_core::OAuthError`] becomes a status, a body and headers.
//! Nothing below this module knows about warp.

pub mod peers;
pub mod reply;
pub mod routes;
pub mod server;
pub mod tls;

pub use routes::routes;
pub use server::{serve, ServeOptions};
