//! The `deployment.toml` loader (host/src/config/deployment.rs) with `TOLLGATE_*` overrides
//! (config/env.rs): any text either loads or is an error naming the file or the variable.
//!
//! Input: the file's text, then optionally a NUL byte and `NAME=VALUE` lines, the environment
//! (names get the `TOLLGATE_` prefix). Not UTF-8 is skipped (the loader refuses it as I/O).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tollgate_host::config::{ConfigError, Deployment};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env) = text.split_once('\0').unwrap_or((text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (format!("TOLLGATE_{k}"), v.to_string()))
        .collect();
    let file = Path::new("conf/deployment.toml");
    match Deployment::from_toml_with_env(toml, file, env.clone()) {
        Ok(_) => {}
        Err(ConfigError::Env { var, .. }) => {
            assert!(env.iter().any(|(k, _)| *k == var), "{var}");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("conf/deployment.toml: "), "{message}");
        }
    }
});
