//! The `dropins/` directory: every `.so` in it is loaded once, at start-up, and never unloaded.

use super::PluginError;
use std::path::{Path, PathBuf};
use tollgate_core::abi::{load_plugin, LoadError, LoadedPlugin};

/// A file that was not loaded, and why.
#[derive(Debug)]
pub struct Refused {
    pub path: PathBuf,
    pub reason: LoadError,
}

/// What a scan of `dropins/` found.
#[derive(Default)]
pub struct Dropins {
    pub loaded: Vec<LoadedPlugin>,
    pub refused: Vec<Refused>,
}

/// The shared-library suffix of this platform.
const SUFFIX: &str = std::env::consts::DLL_SUFFIX;

/// Loads every plugin file in `dir`, in name order. A missing directory holds no plugins.
pub fn scan(dir: &Path) -> Result<Dropins, PluginError> {
    let mut found = Dropins::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => {
            return Err(PluginError::Dropins {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(SUFFIX))
        .collect();
    paths.sort();
    for path in paths {
        match load_plugin(&path) {
            Ok(plugin) => found.loaded.push(plugin),
            Err(reason) => found.refused.push(Refused { path, reason }),
        }
    }
    Ok(found)
}

/// A native plugin runs with the server's rights, so `dropins/` must be writable by the
/// operator only. Returns the warning to log when it is not.
pub fn warn_if_writable_by_others(dir: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir).ok()?.permissions().mode();
        if mode & 0o022 != 0 {
            return Some(format!(
                "{} is writable by {} (mode {:o}): anyone who can write there can run code as this server; chmod go-w it",
                dir.display(),
                if mode & 0o002 != 0 { "everyone" } else { "its group" },
                mode & 0o777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    None
}
