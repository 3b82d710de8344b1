//! Every component factory the server knows, built in or loaded, by name and alias.

use super::PluginError;
use std::path::PathBuf;
use tollgate_core::sdk::Registration;

/// Where a factory comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the server: active unless a listener disables it.
    BuiltIn,
    /// Loaded from a `.so`: active only when an enabled listener names it.
    Plugin(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built in"),
            Origin::Plugin(p) => write!(f, "{}", p.display()),
        }
    }
}

pub struct Entry {
    pub registration: Registration,
    pub origin: Origin,
}

/// Factories by name and alias. A name or alias claimed twice is refused.
#[derive(Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, registration: Registration, origin: Origin) -> Result<(), PluginError> {
        let info = &registration.info;
        for name in std::iter::once(&info.name).chain(&info.aliases) {
            if let Some(existing) = self.find(name) {
                return Err(PluginError::DuplicateName {
                    name: name.clone(),
                    first: format!("{} ({})", existing.registration.info.name, existing.origin),
                    second: format!("{} ({origin})", info.name),
                });
            }
        }
        self.entries.push(Entry {
            registration,
            origin,
        });
        Ok(())
    }

    /// The factory answering to `name` (its name or an alias).
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.registration.info.answers_to(name))
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}
