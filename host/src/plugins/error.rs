//! Why the components could not be set up. Every message names the file (and line) to fix.

use std::path::PathBuf;
use tollgate_core::abi::LoadError;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{}: refused: {reason}", path.display())]
    Refused { path: PathBuf, reason: LoadError },
    #[error("cannot read the dropins directory {}: {reason}", path.display())]
    Dropins { path: PathBuf, reason: String },
    #[error("component name {name:?} is claimed twice: by {first} and by {second}")]
    DuplicateName {
        name: String,
        first: String,
        second: String,
    },
    #[error("{}: line {line}: EventListener {name:?} is enabled but no plugin provides it{hint}", file.display())]
    NotProvided {
        file: PathBuf,
        line: usize,
        name: String,
        hint: String,
    },
    #[error("{}: line {line}: EventListener {name:?} names the same component as line {other_line}", file.display())]
    DuplicateListener {
        file: PathBuf,
        line: usize,
        other_line: usize,
        name: String,
    },
    #[error("{}: line {line}: EventListener {name:?}: unknown property {property:?} (known: {known})", file.display())]
    UnknownProperty {
        file: PathBuf,
        line: usize,
        name: String,
        property: String,
        known: String,
    },
    #[error("{}: line {line}: EventListener {name:?} ({origin}): {reason}", file.display())]
    Construct {
        file: PathBuf,
        line: usize,
        name: String,
        origin: String,
        reason: String,
    },
    #[error("{}: grant type {grant_type:?} is handled by both {first:?} and {second:?}", file.display())]
    GrantTypeTwice {
        file: PathBuf,
        grant_type: String,
        first: String,
        second: String,
    },
    #[error("{}: line {line}: SupportedGrantType {grant_type:?} names {handler:?}, which is a {kind}, not a grant handler", file.display())]
    NotAGrantHandler {
        file: PathBuf,
        line: usize,
        grant_type: String,
        handler: String,
        kind: String,
    },
}

impl PluginError {
    /// Several refused files at once.
    pub fn refused_all(refused: &[super::Refused]) -> String {
        refused
            .iter()
            .map(|r| format!("{}: refused: {}", r.path.display(), r.reason))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
