//! The one error type of configuration loading.
//!
//! An operator who gets this message must be able to fix the config without reading code, so
//! every variant names the file (as given on the command line) or the environment variable the
//! bad value came from, and — where known — the line and the key or element.

use std::fmt;
use std::path::PathBuf;

/// Why the configuration could not be loaded. `Display` is the message printed at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file is missing or unreadable (also: not UTF-8).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `deployment.toml` is not valid TOML or does not fit the schema (unknown key, wrong type).
    #[error("{}: {}{message}", file.display(), Location(*line, *column))]
    Toml {
        file: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },

    /// A `deployment.toml` value parsed but is not acceptable (e.g. a TTL of 0).
    #[error("{}: {key}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },

    /// A `TOLLGATE_*` override names an unknown key or carries an unacceptable value.
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },

    /// `identity.xml` is not well-formed XML.
    #[error("{}: line {line}: {message}", file.display())]
    Xml {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// `identity.xml` is well-formed but an element Tollgate reads is wrong.
    #[error("{}: line {line}: {message}", file.display())]
    Identity {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

/// Formats `line L, column C: ` (or only the parts that are known).
struct Location(Option<usize>, Option<usize>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: "),
            (Some(line), None) => write!(f, "line {line}: "),
            _ => Ok(()),
        }
    }
}

/// 1-based line and column of byte offset `pos` in `text` (clamped to the end).
pub(super) fn line_column(text: &str, pos: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..pos.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_is_one_based_and_clamped() {
        let text = "ab\ncd\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (2, 2));
        assert_eq!(line_column(text, 100), (3, 1));
    }

    #[test]
    fn toml_error_shows_known_location_parts() {
        let err = |line, column| ConfigError::Toml {
            file: "conf/deployment.toml".into(),
            line,
            column,
            message: "bad".into(),
        };
        assert_eq!(
            err(Some(3), Some(1)).to_string(),
            "conf/deployment.toml: line 3, column 1: bad"
        );
        assert_eq!(err(None, None).to_string(), "conf/deployment.toml: bad");
    }
}
