//! docs/operators.md against the `deployment.toml` keys the server knows: each section's table
//! lists exactly the keys of that section, each with its real default — so adding, renaming or
//! re-defaulting a key without documenting it fails here.

use super::common::root;
use serde_json::Value;
use std::collections::BTreeMap;
use tollgate_host::config::deployment::Deployment;

/// section (`server.tls`) → key → default as written in TOML (`none` when absent).
type Keys = BTreeMap<String, BTreeMap<String, String>>;

/// Every key of `deployment.toml` with its default, from the server's own defaults.
fn known_keys() -> Keys {
    fn walk(section: &str, value: &Value, keys: &mut Keys) {
        let Some(map) = value.as_object() else { return };
        for (name, value) in map {
            if value.is_object() {
                let sub = if section.is_empty() {
                    name.clone()
                } else {
                    format!("{section}.{name}")
                };
                walk(&sub, value, keys);
            } else {
                let default = match value {
                    Value::Null => "none".to_owned(),
                    Value::String(s) => format!("\"{s}\""),
                    other => other.to_string(),
                };
                keys.entry(section.to_owned())
                    .or_default()
                    .insert(name.clone(), default);
            }
        }
    }
    let mut keys = Keys::new();
    let defaults = serde_json::to_value(Deployment::default()).expect("serializable");
    walk("", &defaults, &mut keys);
    keys
}

/// The tables of docs/operators.md under headings ``### `[section]` ``: key → default column.
fn documented_keys(text: &str) -> Keys {
    let mut keys = Keys::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        if line.starts_with('#') {
            section = line
                .strip_prefix("### `[")
                .and_then(|rest| rest.split_once("]`"))
                .map(|(name, _)| name.to_owned());
        } else if let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let key = cells[0].trim_end_matches('`').to_owned();
            let default = cells
                .get(1)
                .map_or("", |c| c.trim().trim_matches('`'))
                .to_owned();
            keys.entry(section.clone())
                .or_default()
                .insert(key, default);
        }
    }
    keys
}

#[test]
fn operators_guide_lists_every_deployment_key_with_its_default() {
    let guide =
        std::fs::read_to_string(root().join("docs/operators.md")).expect("docs/operators.md");
    let documented = documented_keys(&guide);
    let known = known_keys();
    assert!(
        known.len() >= 8 && known.contains_key("oauth.jwks_endpoint"),
        "{known:?}"
    );
    for (section, keys) in &known {
        let Some(doc) = documented.get(section) else {
            panic!("docs/operators.md has no ### `[{section}]` table");
        };
        for (key, default) in keys {
            assert_eq!(
                doc.get(key),
                Some(default),
                "docs/operators.md [{section}] {key}: the default column must be `{default}`"
            );
        }
        for key in doc.keys() {
            assert!(
                keys.contains_key(key),
                "docs/operators.md documents [{section}] {key}, which the server does not know"
            );
        }
    }
    for section in documented.keys() {
        assert!(
            known.contains_key(section),
            "docs/operators.md documents [{section}], which the server does not know"
        );
    }
}

#[test]
fn guide_tables_are_read_by_section() {
    let doc = documented_keys(
        "### `[server]`\n| key | default | what |\n|---|---|---|\n| `bind` | `\"127.0.0.1:9443\"` | x |\n\
         ## Other\n| `not_a_key` | 1 | y |\n### `[oauth.token]`\n| `signing_alg` | `\"RS256\"` | z |\n",
    );
    assert_eq!(doc["server"]["bind"], "\"127.0.0.1:9443\"");
    assert_eq!(doc["oauth.token"]["signing_alg"], "\"RS256\"");
    assert_eq!(doc.len(), 2);
    assert_eq!(known_keys()["server.tls"]["cert_file"], "none");
}
