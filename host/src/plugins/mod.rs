//! Components: where they come from (built in, or a `.so` in `dropins/`), which are active
//! (identity.xml), in what order, and the host services they are given.
//!
//! This module and `tollgate_core::abi` are the only places that know a component may be
//! loaded: what leaves here are plain trait objects in `orderId` order ([`Components`]).
//!
//! Start-up refuses, naming the file and the reason: a library in `dropins/` that is not a
//! compatible plugin, two plugins claiming one component name, an enabled listener that no
//! plugin provides, a property a component does not declare, two handlers for one grant type.

mod activate;
mod dropins;
mod error;
mod host_services;
mod registry;

pub use activate::{activate, Active, Components};
pub use dropins::{scan, warn_if_writable_by_others, Dropins, Refused};
pub use error::PluginError;
pub use host_services::{Host, KeySource, NoKeySource, NoTrustSources, TrustResolver};
pub use registry::{Origin, Registry};
