//! The stable plugin ABI: the only place in Tollgate that knows a component may live in another
//! `.so`, built by another compiler with other versions of serde or tokio.
//!
//! Why it is built this way (see `shared/spec/PLUGIN-ABI.md` for the spike behind it):
//!
//! - **One exported symbol.** A plugin exports one `abi_stable` root module ([`PluginMod`]): the
//!   ABI version, whether it can unwind, and its component factories. `abi_stable` checks the
//!   layout of every type reachable from it when the host loads the file, so a plugin whose
//!   types differ is refused, never misread.
//! - **Versioning.** [`ABI_VERSION`] must match exactly. Within a version the vtables are
//!   frozen: later capabilities arrive as new modules or through [`crate::HostServices::call`],
//!   never by growing a vtable (abi_stable refuses plugins with fewer vtable entries). Version 2
//!   changed how the token request crosses (below); a v1 plugin is refused and must be rebuilt.
//! - **Async.** Futures cross as [`async_ffi::FfiFuture`]s. A plugin's tokio has no reactor, so
//!   plugins never do I/O themselves: everything that waits is a host service.
//! - **Data.** The [`crate::TokenRequest`], which three calls of a grant take, is not copied: it
//!   is an `abi_stable` type behind a reference count, checked by layout at load, and every
//!   component reads the host's memory. Results, errors and the other values cross as JSON of
//!   the [`crate`] domain types, so the vtables stay few and plain. A client authenticator's call
//!   costs 0.5 µs against 0.09 in-process (`benches/abi_call.rs`; 1.5–2.5 µs in ABI 1; each
//!   value's encoding and decoding: `benches/wire.rs`), small against one signature check, but a
//!   JWT bearer grant makes about nine calls.
//!
//!   Measured end to end over loopback (`bench/load.sh`; `INPROC=1` links the bundled plugins
//!   into the server instead, `INSTRUCTIONS=1` counts instructions, `ALLOCS=1` allocations), a
//!   grant executed, per request:
//!
//!   | | loaded | linked in | loaded, ABI 1 |
//!   |---|---|---|---|
//!   | private_key_jwt, instructions | 537k | 466k | 626k |
//!   | JWT bearer, instructions | 607k | 523k | 713k |
//!   | private_key_jwt, allocations | 294 | 185 | 338 |
//!
//!   (ABI 1 sent the request as JSON, and the trust source and party in serde's buffered
//!   internally tagged form; its column also predates a faster form parser, ~20k instructions.)
//!
//!   In time the crossings cost more than in instructions (ABI 1 took 24–31 % more server CPU
//!   than linked in, ABI 2 ~20 %): each side of each call builds and frees owned copies, in two
//!   allocators. A [`crate::VerifiedJwt`] goes from a loaded validator to a loaded component
//!   through the host in its wire form ([`Encoded`], hidden trait methods with defaults that
//!   plugins never see): decoding and encoding it there again cost ~21k instructions a grant.
//!   What is left is mostly the keys and the trust material (~30k instructions a grant);
//!   removing that means borrowed values in the traits themselves.
//!   Swapping JSON for MessagePack alone saves nothing: decoding is bound by allocation.
//!
//!   Where the ~20 % goes (2026-12-05, private_key_jwt, perf samples times CPU per request,
//!   loaded against linked in: 107 against 85 µs): serde 4.8 µs, allocation 5.2 µs (the
//!   plugins allocated with glibc's malloc then, the server with mimalloc), memcpy and the
//!   like 1.5 µs, the ABI shims 1.8 µs, the rest spread thin. Every value's JSON, hot and
//!   alone, is ~5 µs a grant (`benches/wire.rs`): borrowed values would win back at most a
//!   quarter of the gap.
//! - **Allocator.** A plugin's Rust code allocates with the system allocator, `malloc`, and so
//!   does the C code it carries. The `tollgate` binary makes mimalloc that `malloc` (the
//!   server's `main.rs`), so plugins allocate as fast as the server without building anything
//!   in (a private_key_jwt grant's plugins: ~124 allocations). mimalloc built into a plugin
//!   instead gained nothing measurable with `local_dynamic_tls`; without it, each such plugin
//!   takes a share of glibc's static TLS reserve (flag `STATIC_TLS`), which a few more plugins
//!   would exhaust at load. Either way, what crosses the ABI is freed by the side that made it
//!   (abi_stable's types carry their own deallocation), so no plugin depends on which
//!   allocator the host has.
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
#[doc(hidden)]
pub use wire::Encoded;

/// The plugin ABI major version. A plugin built against another one is refused.
pub const ABI_VERSION: u32 = 2;

/// [`ABI_VERSION`] as the version string `abi_stable` checks before any layout (major.0.0).
const ABI_VERSION_STRING: &str = "2.0.0";

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

const _: () = assert!(ABI_VERSION == 2 && ABI_VERSION_STRING.as_bytes()[0] == b'2');

#[cfg(test)]
mod tests;
