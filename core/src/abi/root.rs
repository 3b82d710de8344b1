//! The root module a plugin exports, and the factories in it (plugin side).

use super::wire::{panic_message, to_json};
use super::{
    client_authenticator, grant_handler, host_services, jwt_validator, FfiClientAuthenticator,
    FfiGrantHandler, FfiHostServices, FfiJwtValidator, ABI_VERSION, ABI_VERSION_STRING,
};
use crate::sdk::{Plugin, Registration};
use crate::{Component, ComponentContext, HostSettings, Properties};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    prefix_type::PrefixTypeTrait,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RStr, RString, RVec},
    StableAbi,
};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The root module: the one thing a plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginMod_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// [`ABI_VERSION`] of the `tollgate-core` the plugin was built with.
    pub abi_version: u32,
    /// Whether the plugin was built with `panic = "unwind"` (required).
    pub panic_unwind: bool,
    /// The `tollgate-core` package version the plugin was built with (informative).
    pub core_version: RStr<'static>,
    /// The plugin's component factories.
    #[sabi(last_prefix_field)]
    pub factories: extern "C" fn() -> RResult<RVec<FfiFactory>, RString>,
}

impl RootModule for PluginMod_Ref {
    declare_root_module_statics! {PluginMod_Ref}
    const BASE_NAME: &'static str = "tollgate_plugin";
    const NAME: &'static str = "tollgate_plugin";
    // Checked by abi_stable before any layout: the major is the ABI major.
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION_STRING);
}

/// A constructed component as it crosses.
#[repr(u8)]
#[derive(StableAbi)]
pub enum FfiComponent {
    GrantHandler(FfiGrantHandler),
    ClientAuthenticator(FfiClientAuthenticator),
    JwtValidator(FfiJwtValidator),
}

/// The frozen v2 vtable of a component factory: its [`crate::ComponentInfo`] as JSON, and a
/// constructor taking the context (JSON of [`ContextWire`]) and the host services. The error is
/// a plain message.
#[sabi_trait]
pub trait FfiFactoryV2: Send + Sync {
    fn info(&self) -> RString;
    fn construct(&self, context: RString, host: FfiHostServices) -> RResult<FfiComponent, RString>;
}

/// A component factory as an FFI trait object.
pub type FfiFactory = FfiFactoryV2_TO<'static, RBox<()>>;

/// The serializable part of a [`ComponentContext`].
#[derive(Serialize, Deserialize)]
pub(super) struct ContextWire {
    pub properties: Properties,
    pub settings: HostSettings,
}

struct ExportedFactory(Registration);

impl FfiFactoryV2 for ExportedFactory {
    fn info(&self) -> RString {
        to_json(&self.0.info)
    }

    fn construct(&self, context: RString, host: FfiHostServices) -> RResult<FfiComponent, RString> {
        let built = catch_unwind(AssertUnwindSafe(|| {
            let wire: ContextWire = serde_json::from_str(&context)
                .map_err(|e| format!("malformed component context: {e}"))?;
            let context = ComponentContext {
                properties: wire.properties,
                settings: wire.settings,
                host: Arc::new(host_services::Imported(host)),
            };
            (self.0.construct)(context).map_err(|e| e.to_string())
        }));
        match built {
            Ok(Ok(component)) => RResult::ROk(match component {
                Component::GrantHandler(c) => FfiComponent::GrantHandler(grant_handler::export(c)),
                Component::ClientAuthenticator(c) => {
                    FfiComponent::ClientAuthenticator(client_authenticator::export(c))
                }
                Component::JwtValidator(c) => FfiComponent::JwtValidator(jwt_validator::export(c)),
            }),
            Ok(Err(message)) => RResult::RErr(message.into()),
            Err(panic) => {
                RResult::RErr(format!("constructor panicked: {}", panic_message(&*panic)).into())
            }
        }
    }
}

/// Runs the author's plugin description under `catch_unwind` and exports its factories.
/// Called by the code [`crate::export_plugin!`] generates.
pub fn export_factories(plugin: impl FnOnce() -> Plugin) -> RResult<RVec<FfiFactory>, RString> {
    match catch_unwind(AssertUnwindSafe(plugin)) {
        Ok(plugin) => RResult::ROk(
            plugin
                .into_registrations()
                .into_iter()
                .map(|r| {
                    FfiFactoryV2_TO::from_value(
                        ExportedFactory(r),
                        abi_stable::sabi_trait::TD_Opaque,
                    )
                })
                .collect(),
        ),
        Err(panic) => RResult::RErr(
            format!(
                "the plugin description panicked: {}",
                panic_message(&*panic)
            )
            .into(),
        ),
    }
}

/// The root module of a plugin. Called by the code [`crate::export_plugin!`] generates.
pub fn export_root(
    panic_unwind: bool,
    factories: extern "C" fn() -> RResult<RVec<FfiFactory>, RString>,
) -> PluginMod_Ref {
    PluginMod {
        abi_version: ABI_VERSION,
        panic_unwind,
        core_version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        factories,
    }
    .leak_into_prefix()
}
