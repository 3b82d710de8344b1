//! The stable plugin ABI: the only place in Tollgate that knows a component may live in another
//! `.so`, built by another compiler with other versions of serde or tokio.
//!
//! Why it is built this way (see `shared/spec/PLUGIN-ABI.md` for the spike behind it):
//!
//! - **One exported symbol.** A plugin exports one `abi_stable` root module ([`PluginMod`]): the
//!   ABI version, whether it can unwind, and its component factories. `abi_stable` checks the
//!   layout of every type reachable from it when the host loads the file, so a plugin whose
//!   types differ is refused, never misread.
//! - **Versioning.** [`ABI_VERSION`] must match exactly. The v1 vtables are frozen: later
//!   capabilities arrive as new modules or through [`crate::HostServices::call`], never by
//!   growing a v1 vtable (abi_stable refuses plugins with fewer vtable entries).
//! - **Async.** Futures cross as [`async_ffi::FfiFuture`]s. A plugin's tokio has no reactor, so
//!   plugins never do I/O themselves: everything that waits is a host service.
//! - **Data.** Requests, results and errors cross as JSON of the [`crate`] domain types, so the
//!   vtables stay few and plain. That is 1.5–2.5 µs a call (`benches/abi_call.rs`; what each
//!   value costs to encode and decode: `benches/wire.rs`), small against one signature check —
//!   but a JWT bearer grant makes about nine calls (client authenticator, grant handler, host
//!   services, validator). Under load they cost more than the sum of their parts: the same bundled
//!   plugins linked into the server instead of loaded took 24–31 % less server CPU per grant over
//!   loopback (private_key_jwt 73 against 96 µs, JWT bearer 76 against 110, medians of 3; `INPROC=1
//!   bench/load.sh` runs that comparison), and ~150 fewer heap allocations of ~335 (each side of
//!   each call builds and frees owned copies; `ALLOCS=1` counts them). Only borrowed, non-JSON
//!   values would remove that, which changes the component traits: a new versioned module, not a
//!   change to v1's JSON (swapping JSON for MessagePack alone saves nothing: decoding is bound by
//!   allocation).
//! - **Panics.** A panic must never unwind through `extern "C"` (that aborts the process). Every
//!   exported method and every poll of an exported future runs under `catch_unwind` and turns a
//!   panic into `server_error`; the importer guards once more. A plugin built with
//!   `panic = "abort"` cannot be guarded and is refused.
//! - **Lifetime.** Libraries are never unloaded (thread-locals and leaked statics make `dlclose`
//!   unsafe for Rust code).
//!
//! Each trait file holds both sides, as `datafusion-ffi` does: the *exporter* (a plugin's
//! component behind an FFI trait object) and the *importer* (an FFI trait object behind the
//! plain [`crate`] trait, for the host).

mod client_authenticator;
mod grant_handler;
mod host_services;
mod jwt_validator;
mod load;
mod root;
mod wire;

pub use client_authenticator::FfiClientAuthenticator;
pub use grant_handler::FfiGrantHandler;
pub use host_services::FfiHostServices;
pub use jwt_validator::FfiJwtValidator;
pub use load::{load_plugin, through_abi, LoadError, LoadedPlugin};
pub use root::{FfiComponent, FfiFactory, PluginMod, PluginMod_Ref};

/// The plugin ABI major version. A plugin built against another one is refused.
pub const ABI_VERSION: u32 = 1;

/// [`ABI_VERSION`] as the version string `abi_stable` checks before any layout (major.0.0).
const ABI_VERSION_STRING: &str = "1.0.0";

/// The symbol a plugin exports (the `abi_stable` root-module header). Checked against
/// `abi_stable::library::ROOT_MODULE_LOADER_NAME` by a test.
#[doc(hidden)]
#[macro_export]
macro_rules! __tollgate_root_symbol {
    () => {
        "_1as_0lib_1header_0root_bmodule_bloader"
    };
}

/// Used by [`crate::export_plugin!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use super::root::{export_factories, export_root};
    /// What a plugin's factory list function returns.
    pub type FactoriesResult = abi_stable::std_types::RResult<
        abi_stable::std_types::RVec<super::FfiFactory>,
        abi_stable::std_types::RString,
    >;
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}

const _: () = assert!(ABI_VERSION == 1 && ABI_VERSION_STRING.as_bytes()[0] == b'1');

#[cfg(test)]
mod tests;
