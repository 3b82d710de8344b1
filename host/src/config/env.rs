//! `TOLLGATE_*` environment variables that override `deployment.toml` keys.
//!
//! `TOLLGATE_<SECTION>__<KEY>`: a double underscore separates the path segments and the name is
//! lower-cased, so `TOLLGATE_OAUTH__JWKS_ENDPOINT__ENABLE` sets `oauth.jwks_endpoint.enable`.
//! `TOLLGATE_` variables without `__` (`TOLLGATE_LOG`, `TOLLGATE_TEST_POSTGRES_URL`) belong to
//! other parts of the system and are ignored here.
//!
//! The value is converted to the type the key has (so `TOLLGATE_SUPER_ADMIN__PASSWORD=123456`
//! stays a string while `TOLLGATE_SERVER__MAX_BODY_BYTES=2048` is an integer). Overrides are
//! applied in name order onto the file's `toml::Table`, deserializing after each one so that an
//! error names the variable that caused it.

use std::path::PathBuf;

use toml::{Table, Value};

use super::deployment::Deployment;
use super::error::ConfigError;

const PREFIX: &str = "TOLLGATE_";

/// One `TOLLGATE_A__B=value` variable.
#[derive(Debug)]
pub(super) struct Override {
    pub var: String,
    /// Lower-cased segments: `["a", "b"]`.
    pub path: Vec<String>,
    pub value: String,
}

impl Override {
    /// The dotted key, `a.b`.
    pub fn key(&self) -> String {
        self.path.join(".")
    }
}

/// The config overrides among `env`, sorted by variable name.
pub(super) fn overrides(env: impl IntoIterator<Item = (String, String)>) -> Vec<Override> {
    let mut found: Vec<Override> = env
        .into_iter()
        .filter_map(|(var, value)| {
            let rest = var.strip_prefix(PREFIX)?;
            if !rest.contains("__") {
                return None;
            }
            let path = rest.split("__").map(str::to_ascii_lowercase).collect();
            Some(Override { var, path, value })
        })
        .collect();
    found.sort_by(|a, b| a.var.cmp(&b.var));
    found
}

/// Applies `overrides` onto `file` (the parsed file, which deserialized to `from_file`).
pub(super) fn apply(
    mut file: Table,
    from_file: Deployment,
    overrides: &[Override],
) -> Result<Deployment, ConfigError> {
    let keys = key_tree();
    let mut deployment = from_file;
    for o in overrides {
        let key = o.key();
        let err = |message: String| ConfigError::Env {
            var: o.var.clone(),
            message,
        };
        let like = o
            .path
            .iter()
            .try_fold(&keys, |v, seg| v.get(seg))
            .ok_or_else(|| err(format!("unknown key {key}")))?;
        if like.is_table() {
            return Err(err(format!("{key} is a section, not a key")));
        }
        let value = convert(&o.value, like).map_err(|m| err(format!("{key}: {m}")))?;
        set(&mut file, &o.path, value).map_err(|m| err(format!("{key}: {m}")))?;
        deployment = Value::Table(file.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                err(format!(
                    "{key}: {}",
                    e.message().trim_end().replace('\n', "; ")
                ))
            })?;
    }
    Ok(deployment)
}

/// Every key of `deployment.toml`, with a value of its type (optional keys included).
fn key_tree() -> Value {
    let mut all = Deployment::default();
    all.server.tls.cert_file = Some(PathBuf::new());
    all.server.tls.key_file = Some(PathBuf::new());
    all.super_admin.password = Some(String::new());
    Value::try_from(all).expect("Deployment serializes to TOML")
}

/// `raw` as a value of the same type as `like`.
fn convert(raw: &str, like: &Value) -> Result<Value, String> {
    let trimmed = raw.trim();
    Ok(match like {
        Value::String(_) => Value::String(raw.to_owned()),
        Value::Boolean(_) => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(format!("{raw:?} is not true or false")),
        },
        Value::Integer(_) => trimmed
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("{raw:?} is not an integer"))?,
        Value::Float(_) => trimmed
            .parse()
            .map(Value::Float)
            .map_err(|_| format!("{raw:?} is not a number"))?,
        other => {
            return Err(format!(
                "a {} cannot be set from the environment",
                other.type_str()
            ))
        }
    })
}

/// Sets `path` in `table`, creating the tables on the way.
fn set(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut table = table;
    for seg in parents {
        table = table
            .entry(seg.as_str())
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{seg} is not a table in the file"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_map_to_lower_cased_paths() {
        let found = overrides(env(&[
            ("TOLLGATE_SERVER__TLS__ENABLED", "false"),
            ("TOLLGATE_DATABASE__URL", "x"),
            ("TOLLGATE_OAUTH__JWKS_ENDPOINT__ENABLE", "true"),
            ("TOLLGATE_LOG", "debug"),
            ("TOLLGATE_TEST_POSTGRES_URL", "postgres://x"),
            ("OTHER__X", "1"),
        ]));
        let keys: Vec<String> = found.iter().map(Override::key).collect();
        assert_eq!(
            keys,
            [
                "database.url",
                "oauth.jwks_endpoint.enable",
                "server.tls.enabled"
            ]
        );
    }

    #[test]
    fn key_tree_has_the_optional_keys() {
        let keys = key_tree();
        for path in [
            ["server", "tls", "cert_file"],
            ["server", "tls", "key_file"],
            ["oauth", "jwks_endpoint", "enable"],
        ] {
            assert!(path.iter().try_fold(&keys, |v, s| v.get(s)).is_some());
        }
        assert!(keys["super_admin"].get("password").is_some());
    }

    #[test]
    fn values_take_the_keys_type() {
        let s = Value::String(String::new());
        assert_eq!(convert("42", &s), Ok(Value::String("42".into())));
        assert_eq!(
            convert(" True ", &Value::Boolean(false)),
            Ok(Value::Boolean(true))
        );
        assert_eq!(convert("7", &Value::Integer(0)), Ok(Value::Integer(7)));
        assert!(convert("7s", &Value::Integer(0)).is_err());
        assert!(convert("on", &Value::Boolean(false)).is_err());
    }
}
