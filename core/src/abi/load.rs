//! Loading a plugin file (host side): open it, check it, and turn its factories into
//! [`Registration`]s that build plain trait objects.

use super::root::{ContextWire, FfiComponent, PluginMod_Ref};
use super::{client_authenticator, grant_handler, host_services, jwt_validator, ABI_VERSION};
use crate::sdk::Registration;
use crate::{Component, ComponentContext, ComponentInfo};
use abi_stable::library::{lib_header_from_path, LibraryError, RootModuleError};
use abi_stable::std_types::RResult;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a file was not loaded. Each names the reason in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The file could not be read.
    Io(String),
    /// Zero bytes.
    Empty,
    /// Not an ELF / Mach-O / PE shared library at all.
    NotSharedLibrary,
    /// The dynamic loader refused it (truncated, wrong architecture, missing dependency, …).
    Open(String),
    /// A shared library, but it exports no Tollgate root module.
    NotAPlugin,
    /// Built against another plugin ABI major version.
    AbiVersion { found: u32, expected: u32 },
    /// Same ABI version, but the types it was built with have another layout (another
    /// `abi_stable`, or a modified `tollgate-core`).
    Layout(String),
    /// Built with `panic = "abort"`: its panics could not be contained.
    PanicAbort,
    /// The plugin's own initialisation failed or panicked.
    Init(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read the file: {e}"),
            LoadError::Empty => f.write_str("empty file (0 bytes), not a shared library"),
            LoadError::NotSharedLibrary => f.write_str("not a shared library (no ELF header)"),
            LoadError::Open(e) => write!(f, "the dynamic loader refused it (truncated or damaged file?): {e}"),
            LoadError::NotAPlugin => f.write_str(
                "a shared library, but not a Tollgate plugin (it exports no Tollgate root module; was it built with tollgate_core::export_plugin!?)",
            ),
            LoadError::AbiVersion { found, expected } => write!(
                f,
                "built against Tollgate plugin ABI v{found}, but this server speaks ABI v{expected}: rebuild the plugin against a matching tollgate-core"
            ),
            LoadError::Layout(e) => write!(
                f,
                "incompatible type layouts (built against a different tollgate-core or abi_stable): {e}"
            ),
            LoadError::PanicAbort => f.write_str(
                "built with panic = \"abort\": its panics could not be contained; build it with panic = \"unwind\" (the default)",
            ),
            LoadError::Init(e) => write!(f, "the plugin failed to initialise: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A plugin file that passed every check.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub abi_version: u32,
    /// The `tollgate-core` version it was built with.
    pub core_version: String,
    pub registrations: Vec<Registration>,
}

/// Loads a plugin. The library is never unloaded, also when it is refused after opening.
pub fn load_plugin(path: &Path) -> Result<LoadedPlugin, LoadError> {
    precheck(path)?;
    let header = lib_header_from_path(path).map_err(|e| match e {
        LibraryError::OpenError { err, .. } => LoadError::Open(err.to_string()),
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin,
        other => LoadError::Layout(one_line(&other.to_string())),
    })?;
    let module = header
        .init_root_module::<PluginMod_Ref>()
        .map_err(|e| match e {
            LibraryError::IncompatibleVersionNumber { actual_version, .. } => {
                LoadError::AbiVersion {
                    found: actual_version.major,
                    expected: ABI_VERSION,
                }
            }
            LibraryError::RootModule {
                err: RootModuleError::Unwound,
                ..
            } => LoadError::Init("panicked while loading".into()),
            other => LoadError::Layout(one_line(&other.to_string())),
        })?;
    if module.abi_version() != ABI_VERSION {
        return Err(LoadError::AbiVersion {
            found: module.abi_version(),
            expected: ABI_VERSION,
        });
    }
    if !module.panic_unwind() {
        return Err(LoadError::PanicAbort);
    }
    let registrations = import_factories((module.factories())())?;
    Ok(LoadedPlugin {
        path: path.to_path_buf(),
        abi_version: module.abi_version(),
        core_version: module.core_version().as_str().to_string(),
        registrations,
    })
}

/// Cheap checks that turn the commonest mistakes into clear messages before `dlopen` — and
/// catch a truncated file, which `dlopen` may accept (it maps segments past the end lazily, and
/// the first access would then crash the server).
fn precheck(path: &Path) -> Result<(), LoadError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| LoadError::Io(e.to_string()))?;
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if bytes.starts_with(b"\x7fELF") {
        return check_elf(&bytes).map_err(|e| LoadError::Open(format!("damaged ELF file: {e}")));
    }
    // Mach-O (32/64, both byte orders, fat) and PE are left to the platform's loader.
    let mach_o = bytes.len() >= 4
        && matches!(
            u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            0xfeedface | 0xfeedfacf | 0xcefaedfe | 0xcffaedfe | 0xcafebabe
        );
    if mach_o || bytes.starts_with(b"MZ") {
        return Ok(());
    }
    Err(LoadError::NotSharedLibrary)
}

/// Checks that an ELF file is a shared object whose program headers, loadable segments and
/// section header table all lie inside the file.
fn check_elf(b: &[u8]) -> Result<(), String> {
    let truncated = || "truncated (a header or segment lies past the end of the file)".to_string();
    let wide = match b.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class".into()),
    };
    let big_endian = match b.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF byte order".into()),
    };
    let read = |at: usize, len: usize| -> Result<u64, String> {
        let field = b.get(at..at + len).ok_or_else(truncated)?;
        let mut v: u64 = 0;
        for i in 0..len {
            let byte = if big_endian {
                field[i]
            } else {
                field[len - 1 - i]
            };
            v = (v << 8) | u64::from(byte);
        }
        Ok(v)
    };
    let word = if wide { 8 } else { 4 };
    if read(16, 2)? != 3 {
        return Err("not a shared object (ELF type is not ET_DYN)".into());
    }
    let (phoff, shoff) = (read(24 + word, word)?, read(24 + 2 * word, word)?);
    let at = 24 + 3 * word + 4 + 2; // after e_flags and e_ehsize
    let (phentsize, phnum) = (read(at, 2)?, read(at + 2, 2)?);
    let (shentsize, shnum) = (read(at + 4, 2)?, read(at + 6, 2)?);
    let len = b.len() as u64;
    let within = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= len);
    if !within(phoff, phentsize * phnum) || (shoff != 0 && !within(shoff, shentsize * shnum)) {
        return Err(truncated());
    }
    for i in 0..phnum {
        let ph = (phoff + i * phentsize) as usize;
        const PT_LOAD: u64 = 1;
        if read(ph, 4)? != PT_LOAD {
            continue;
        }
        let (offset, filesz) = if wide {
            (read(ph + 8, 8)?, read(ph + 32, 8)?)
        } else {
            (read(ph + 4, 4)?, read(ph + 16, 4)?)
        };
        if !within(offset, filesz) {
            return Err(truncated());
        }
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The registrations of `plugin` as a host would get them from its `.so`: every call goes through
/// the FFI vtables and the JSON wire, without `dlopen`. For tests and benchmarks.
pub fn through_abi(plugin: crate::sdk::Plugin) -> Result<Vec<Registration>, LoadError> {
    import_factories(super::root::export_factories(move || plugin))
}

fn import_factories(
    factories: RResult<
        abi_stable::std_types::RVec<super::FfiFactory>,
        abi_stable::std_types::RString,
    >,
) -> Result<Vec<Registration>, LoadError> {
    let factories = match factories {
        RResult::ROk(f) => f,
        RResult::RErr(e) => return Err(LoadError::Init(e.into())),
    };
    factories
        .into_iter()
        .map(|factory| {
            let info: ComponentInfo = serde_json::from_str(&factory.info())
                .map_err(|e| LoadError::Init(format!("malformed component description: {e}")))?;
            Ok(imported_registration(info, Arc::new(factory)))
        })
        .collect()
}

fn imported_registration(info: ComponentInfo, factory: Arc<super::FfiFactory>) -> Registration {
    let kind = info.kind;
    Registration {
        info,
        construct: Arc::new(move |context: ComponentContext| {
            let wire = ContextWire {
                properties: context.properties,
                settings: context.settings,
            };
            let host = host_services::export(context.host);
            let built = match factory.construct(super::wire::to_json(&wire), host) {
                RResult::ROk(c) => c,
                RResult::RErr(e) => return Err(String::from(e).into()),
            };
            let component = match built {
                FfiComponent::GrantHandler(c) => {
                    Component::GrantHandler(Arc::new(grant_handler::Imported(c)))
                }
                FfiComponent::ClientAuthenticator(c) => {
                    Component::ClientAuthenticator(Arc::new(client_authenticator::Imported(c)))
                }
                FfiComponent::JwtValidator(c) => {
                    Component::JwtValidator(Arc::new(jwt_validator::Imported(c)))
                }
            };
            if component.kind() != kind {
                return Err(format!("declared a {kind} but built a {}", component.kind()).into());
            }
            Ok(component)
        }),
    }
}
