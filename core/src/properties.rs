//! The `Property` elements of an identity.xml `EventListener`, as a component receives them.
//!
//! WSO2's documentation and code spell some names differently (`preventTokenReuse` and
//! `PreventTokenReuse`, `TokenEndPointAlias` and `TokenEndpointAlias`), so names match
//! case-insensitively.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A property that is present but does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyError {
    pub name: String,
    pub message: String,
}

impl fmt::Display for PropertyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "property {}: {}", self.name, self.message)
    }
}

impl std::error::Error for PropertyError {}

/// Name/value pairs, in document order. Names are unique ignoring case (the host checks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Properties(pub Vec<(String, String)>);

impl Properties {
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Properties(entries)
    }

    /// The value of `name`, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name` parsed as `T`, or `default` when absent.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, PropertyError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| PropertyError {
                name: name.to_string(),
                message: format!("{:?} is not valid: {e}", v.trim()),
            }),
        }
    }

    /// A boolean (`true`/`false`, any case), or `default` when absent.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, PropertyError> {
        match self.get(name).map(str::trim) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(PropertyError {
                name: name.to_string(),
                message: format!("{v:?} is not true or false"),
            }),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_either_wso2_spelling() {
        let p = Properties::new(vec![
            ("preventTokenReuse".into(), "false".into()),
            ("TokenEndpointAlias".into(), "https://a/token".into()),
            ("RejectBeforeInMinutes".into(), " 30 ".into()),
        ]);
        assert_eq!(p.bool_or("PreventTokenReuse", true), Ok(false));
        assert_eq!(p.get("TokenEndPointAlias"), Some("https://a/token"));
        assert_eq!(p.parse_or("rejectbeforeinminutes", 100u64), Ok(30));
        assert_eq!(p.parse_or("IATValidityPeriodInMinutes", 30u64), Ok(30));
        let bad = Properties::new(vec![("x".into(), "maybe".into())]);
        assert!(bad
            .bool_or("X", true)
            .unwrap_err()
            .to_string()
            .contains("maybe"));
        assert!(bad.parse_or("x", 1u32).is_err());
    }
}
