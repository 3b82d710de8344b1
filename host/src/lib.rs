//! # tollgate-host
//!
//! The Tollgate server: configuration, the plugin loader, storage, HTTP, the shared key service
//! and token issuing. `main.rs` is only the command line; everything it runs lives here so that
//! tests and benchmarks can drive the same code.
pub mod admin;
pub mod app;
pub mod assertion;
pub mod clock;
pub mod config;
mod fsutil;
pub mod http;
pub mod jwks;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod plugins;
pub mod secret;
pub mod store;
pub mod tokens;
