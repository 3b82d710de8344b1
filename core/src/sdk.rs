//! The plugin author's side: describe components with [`Plugin`], export them with
//! [`export_plugin!`](crate::export_plugin). Nothing here mentions FFI.
//!
//! ```ignore
//! use tollgate_core::{export_plugin, sdk::Plugin, ComponentInfo};
//!
//! export_plugin!(Plugin::new().client_authenticator(
//!     ComponentInfo::client_authenticator("api-key")
//!         .alias("com.example.ApiKeyAuthenticator")
//!         .property("ApiKeys", None, "client_id=sha256hex pairs, comma-separated")
//!         .provides("api_key"),
//!     |ctx| ApiKeyAuthenticator::new(&ctx.properties),
//! ));
//! ```
//!
//! The host uses the same [`Registration`]s for its built-in components, so a component behaves
//! the same whether it is compiled in or loaded from `dropins/`.

use crate::{
    ClientAuthenticator, Component, ComponentContext, ComponentInfo, ComponentKind, GrantHandler,
    JwtValidator,
};
use std::sync::Arc;

/// What a constructor may fail with: any error (`?` works on property errors), or a message
/// (`Err("…".into())`). The host refuses to start and names the component and this error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds a component from its context.
pub type Constructor = Arc<dyn Fn(ComponentContext) -> Result<Component, BoxError> + Send + Sync>;

/// A component factory: how the component is known, and how it is built.
#[derive(Clone)]
pub struct Registration {
    pub info: ComponentInfo,
    pub construct: Constructor,
}

/// The components a plugin provides.
#[derive(Clone, Default)]
pub struct Plugin {
    registrations: Vec<Registration>,
}

impl Plugin {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a grant handler. `info.kind` is set to [`ComponentKind::GrantHandler`].
    pub fn grant_handler<T, F>(self, info: ComponentInfo, construct: F) -> Self
    where
        T: GrantHandler + 'static,
        F: Fn(ComponentContext) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        self.add(ComponentKind::GrantHandler, info, move |ctx| {
            Ok(Component::GrantHandler(Arc::new(construct(ctx)?)))
        })
    }

    /// Adds a client authenticator. `info.kind` is set to
    /// [`ComponentKind::ClientAuthenticator`].
    pub fn client_authenticator<T, F>(self, info: ComponentInfo, construct: F) -> Self
    where
        T: ClientAuthenticator + 'static,
        F: Fn(ComponentContext) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        self.add(ComponentKind::ClientAuthenticator, info, move |ctx| {
            Ok(Component::ClientAuthenticator(Arc::new(construct(ctx)?)))
        })
    }

    /// Adds a JWT validator. `info.kind` is set to [`ComponentKind::JwtValidator`].
    pub fn jwt_validator<T, F>(self, info: ComponentInfo, construct: F) -> Self
    where
        T: JwtValidator + 'static,
        F: Fn(ComponentContext) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        self.add(ComponentKind::JwtValidator, info, move |ctx| {
            Ok(Component::JwtValidator(Arc::new(construct(ctx)?)))
        })
    }

    fn add(
        mut self,
        kind: ComponentKind,
        mut info: ComponentInfo,
        construct: impl Fn(ComponentContext) -> Result<Component, BoxError> + Send + Sync + 'static,
    ) -> Self {
        info.kind = kind;
        self.registrations.push(Registration {
            info,
            construct: Arc::new(construct),
        });
        self
    }

    pub fn registrations(&self) -> &[Registration] {
        &self.registrations
    }

    pub fn into_registrations(self) -> Vec<Registration> {
        self.registrations
    }
}

/// Exports a plugin's components from a `cdylib`: `export_plugin!(Plugin::new()…)`.
///
/// Use it once per crate, at module level. The crate must be built as a `cdylib` with
/// `panic = "unwind"` (the default); the host refuses anything else with a clear message.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:expr) => {
        const _: () = {
            extern "C" fn __tollgate_factories() -> $crate::abi::__private::FactoriesResult {
                $crate::abi::__private::export_factories(|| $plugin)
            }

            fn __tollgate_root() -> $crate::abi::PluginMod_Ref {
                $crate::abi::__private::export_root(cfg!(panic = "unwind"), __tollgate_factories)
            }

            extern "C" fn __tollgate_root_erased() -> $crate::abi::__private::RootModuleResult {
                $crate::abi::__private::__call_root_module_loader(__tollgate_root)
            }

            #[export_name = $crate::__tollgate_root_symbol!()]
            static __TOLLGATE_ROOT_MODULE: $crate::abi::__private::LibHeader = unsafe {
                $crate::abi::__private::LibHeader::from_constructor::<$crate::abi::PluginMod_Ref>(
                    __tollgate_root_erased,
                    $crate::abi::__private::CheckTypeLayout::Yes,
                )
            };
        };
    };
}

/// A [`HostServices`](crate::HostServices) for plugin authors' unit tests: a settable clock, an
/// in-memory jti store with the host's semantics, the trust sources and JWKS a test registers
/// ([`TestHost::add_trust`], [`TestHost::set_jwks`]; others are rejected as unknown), and a JWT
/// validator a test may install ([`TestHost::set_validator`]; without one, `validate_jwt`
/// answers [`JwtError::Unavailable`](crate::JwtError)). It counts JWKS calls, as tests of a
/// validator want to see re-fetches.
#[derive(Default)]
pub struct TestHost {
    now: std::sync::atomic::AtomicI64,
    jtis: std::sync::Mutex<std::collections::HashMap<(String, String), i64>>,
    trust: std::sync::Mutex<std::collections::HashMap<crate::TrustSource, crate::TrustMaterial>>,
    jwks: std::sync::Mutex<std::collections::HashMap<String, crate::Jwks>>,
    /// `(uri, kid)` of every `jwks` call, in order.
    jwks_calls: std::sync::Mutex<Vec<(String, Option<String>)>>,
    validator: std::sync::Mutex<Option<Arc<dyn crate::JwtValidator>>>,
}

impl TestHost {
    pub fn new(now: i64) -> Arc<TestHost> {
        let host = TestHost::default();
        host.set_now(now);
        Arc::new(host)
    }

    pub fn set_now(&self, now: i64) {
        self.now.store(now, std::sync::atomic::Ordering::SeqCst)
    }

    /// Registers `source` with its party and keys.
    pub fn add_trust(&self, source: crate::TrustSource, material: crate::TrustMaterial) {
        lock(&self.trust).insert(source, material);
    }

    /// Makes `uri` serve `jwks` (replacing what it served: a key rotation).
    pub fn set_jwks(&self, uri: &str, jwks: crate::Jwks) {
        lock(&self.jwks).insert(uri.to_string(), jwks);
    }

    /// The `jwks` calls so far: `(uri, kid)`.
    pub fn jwks_calls(&self) -> Vec<(String, Option<String>)> {
        lock(&self.jwks_calls).clone()
    }

    /// Makes `validate_jwt` use `validator` (e.g. the bundled JWKS validator).
    pub fn set_validator(&self, validator: Arc<dyn crate::JwtValidator>) {
        *lock(&self.validator) = Some(validator);
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl crate::HostServices for TestHost {
    async fn validate_jwt(
        &self,
        jwt: &str,
        source: &crate::TrustSource,
    ) -> Result<crate::VerifiedJwt, crate::JwtError> {
        let validator = lock(&self.validator).clone();
        match validator {
            Some(v) => v.validate(jwt, source).await,
            None => Err(crate::JwtError::Unavailable(
                "TestHost has no JWT validator; install one with set_validator".into(),
            )),
        }
    }

    async fn trust_material(
        &self,
        source: &crate::TrustSource,
    ) -> Result<crate::TrustMaterial, crate::JwtError> {
        lock(&self.trust).get(source).cloned().ok_or_else(|| {
            crate::JwtError::Rejected(format!("TestHost: unknown trust source {source:?}"))
        })
    }

    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<crate::Jwks, crate::JwtError> {
        lock(&self.jwks_calls).push((uri.to_string(), kid.map(str::to_string)));
        let set = lock(&self.jwks).get(uri).cloned().ok_or_else(|| {
            crate::JwtError::Rejected(format!("TestHost: nothing served at {uri}"))
        })?;
        Ok(set.for_kid(kid))
    }

    async fn check_and_store_jti(
        &self,
        scope: &str,
        jti: &str,
        exp: i64,
    ) -> Result<bool, crate::HostError> {
        let now = crate::HostServices::now(self);
        let mut jtis = self
            .jtis
            .lock()
            .map_err(|_| crate::HostError("jti store poisoned".into()))?;
        match jtis.get(&(scope.to_string(), jti.to_string())) {
            Some(&until) if until >= now => Ok(false),
            _ => {
                jtis.insert((scope.to_string(), jti.to_string()), exp);
                Ok(true)
            }
        }
    }

    fn now(&self) -> i64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn log(&self, _: crate::LogLevel, _: &str) {}

    async fn call(
        &self,
        name: &str,
        _: serde_json::Value,
    ) -> Result<serde_json::Value, crate::HostError> {
        Err(crate::HostError(format!(
            "TestHost offers no call named {name:?}"
        )))
    }
}
