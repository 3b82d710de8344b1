//! `deployment.toml`: the operator's settings (CONTRACT §3), as typed structs.
//!
//! Every key has a default, so an empty file is a valid one and the shipped `conf/deployment.toml`
//! only documents them. Every struct denies unknown fields: a misspelt key silently falling back
//! to its default (e.g. `acess_token_ttl_secs`) is worse than refusing to start.
//!
//! The file text is deserialized directly (not via a `toml::Value`) so that TOML's errors carry
//! the line and column; `TOLLGATE_*` overrides are applied afterwards (see `env.rs`). Values
//! that parse but make no sense (a TTL of 0, a `ftp://` base URL) are refused by [`validate`]
//! after the overrides, naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::env;
use super::error::{line_column, ConfigError};

/// The whole of `deployment.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Deployment {
    pub server: Server,
    pub super_admin: SuperAdmin,
    pub database: Database,
    pub plugins: Plugins,
    pub oauth: OAuth,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// The issuer and the base of every advertised URL; stored without a trailing `/`.
    pub base_url: String,
    pub bind: SocketAddr,
    /// Relative to the conf dir's parent (see `Config::data_dir`).
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    /// Open connections one client address may hold; more are closed at once.
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a request's headers (and its TLS handshake):
    /// slow-loris connections are closed after it.
    pub header_timeout_secs: u64,
    /// How long a request may take from its headers to the answer, its body included: a
    /// body that never ends gets 408 after it.
    pub request_timeout_secs: u64,
    pub tls: Tls,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            base_url: "https://localhost:9443".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 9443)),
            data_dir: "data".into(),
            max_body_bytes: 65536,
            max_connections_per_ip: 256,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            tls: Tls::default(),
        }
    }
}

/// `[server.tls]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    pub enabled: bool,
    /// PEM; when TLS is enabled and both are absent, a self-signed certificate is made.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            enabled: true,
            cert_file: None,
            key_file: None,
        }
    }
}

/// `[super_admin]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuperAdmin {
    pub username: String,
    /// When absent, one is generated at first start.
    pub password: Option<String>,
    /// Failed super admin logins one client address may make per minute; beyond, it gets 429
    /// until the minute is over (and no password is checked). 0 turns the limit off.
    pub max_failed_logins_per_minute: u32,
}

impl Default for SuperAdmin {
    fn default() -> Self {
        SuperAdmin {
            username: "admin".into(),
            password: None,
            max_failed_logins_per_minute: 10,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// `sqlite:…` or `postgres://…`; use `Config::database_url` for the resolved form.
    pub url: String,
    /// How long a host may serve a client record from memory: the longest a change made on
    /// another host sharing the database goes unseen here. 0 turns the cache off.
    pub cache_ttl_secs: u64,
    /// Connections this host keeps at most. Several hosts on one PostgreSQL together need
    /// `hosts × max_connections` below the server's `max_connections`.
    pub max_connections: u32,
    /// How long a request waits for a connection (ms) before it fails with `server_error`:
    /// when the database is gone, requests fail after this long instead of piling up.
    pub acquire_timeout_ms: u64,
    /// PostgreSQL `statement_timeout` of every pooled connection (ms); 0 turns it off.
    pub statement_timeout_ms: u64,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: "sqlite://data/tollgate.db".into(),
            cache_ttl_secs: 5,
            max_connections: 16,
            acquire_timeout_ms: 2000,
            statement_timeout_ms: 5000,
        }
    }
}

/// `[plugins]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Plugins {
    pub dropins_dir: PathBuf,
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins {
            dropins_dir: "dropins".into(),
        }
    }
}

/// `[oauth]`, with its sub-tables `[oauth.token]` and `[oauth.jwks_endpoint]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth {
    pub token: TokenSettings,
    /// Clock skew allowed on `exp` / `nbf` / `iat`.
    pub timestamp_skew_secs: u64,
    /// An assertion whose `exp` is further ahead is refused (bounds the jti store).
    pub max_assertion_lifetime_secs: u64,
    pub jwks_endpoint: JwksEndpoint,
}

impl Default for OAuth {
    fn default() -> Self {
        OAuth {
            token: TokenSettings::default(),
            timestamp_skew_secs: 60,
            max_assertion_lifetime_secs: 86400,
            jwks_endpoint: JwksEndpoint::default(),
        }
    }
}

/// `[oauth.token]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub default_access_token_format: TokenFormat,
    /// The algorithm of the server's own signing key.
    pub signing_alg: SigningAlg,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 86400,
            default_access_token_format: TokenFormat::Opaque,
            signing_alg: SigningAlg::RS256,
        }
    }
}

/// `default_access_token_format`: `"opaque"` or `"jwt"` (RFC 9068).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    Opaque,
    Jwt,
}

/// `signing_alg`, spelt as in JOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

/// `[oauth.jwks_endpoint]`: WSO2's HTTP settings for fetching a `jwks_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwksEndpoint {
    /// `false`: nothing is fetched; only static certificates / inline `jwks` are used.
    pub enable: bool,
    /// Milliseconds.
    pub connection_timeout: u64,
    /// Milliseconds.
    pub read_timeout: u64,
    pub size_limit_bytes: u64,
    /// At most one re-fetch of one URI per cooldown on unknown `kid`s.
    pub refetch_cooldown_secs: u64,
    /// Freshness of a set whose response has no `Cache-Control: max-age`.
    pub default_max_age_secs: u64,
    /// Plain `http` `jwks_uri`s only on loopback unless true.
    pub allow_insecure_http: bool,
    /// How many `jwks_uri`s the key service keeps (least recently used go first).
    pub max_cached_uris: u64,
}

impl Default for JwksEndpoint {
    fn default() -> Self {
        JwksEndpoint {
            enable: true,
            connection_timeout: 1000,
            read_timeout: 1000,
            size_limit_bytes: 51200,
            refetch_cooldown_secs: 10,
            default_max_age_secs: 300,
            allow_insecure_http: false,
            max_cached_uris: 10_000,
        }
    }
}

impl Deployment {
    /// Parses `deployment.toml` text with no environment overrides. `file` only names it in errors.
    pub fn from_toml(text: &str, file: &Path) -> Result<Deployment, ConfigError> {
        Deployment::from_toml_with_env(text, file, [])
    }

    /// Parses `deployment.toml` text, then applies the `TOLLGATE_*` overrides found in `env`
    /// and validates the result.
    pub fn from_toml_with_env(
        text: &str,
        file: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Deployment, ConfigError> {
        let from_file: Deployment = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
        let overrides = env::overrides(env);
        let mut deployment = if overrides.is_empty() {
            from_file
        } else {
            // Cannot fail: the same text just deserialized.
            let table: toml::Table =
                toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
            env::apply(table, from_file, &overrides)?
        };
        if let Err((key, message)) = validate(&mut deployment) {
            let names_key = |o: &&env::Override| {
                let k = o.key();
                k == key || k.starts_with(&format!("{key}."))
            };
            return Err(match overrides.iter().rev().find(names_key) {
                Some(o) => ConfigError::Env {
                    var: o.var.clone(),
                    message: format!("{key}: {message}"),
                },
                None => ConfigError::Invalid {
                    file: file.to_owned(),
                    key,
                    message,
                },
            });
        }
        Ok(deployment)
    }
}

fn toml_error(text: &str, file: &Path, e: &toml::de::Error) -> ConfigError {
    let (line, column) = match e.span() {
        Some(span) => {
            let (l, c) = line_column(text, span.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    ConfigError::Toml {
        file: file.to_owned(),
        line,
        column,
        message: e.message().trim_end().replace('\n', "; "),
    }
}

/// Checks what types cannot say and normalizes `base_url`; `Err((key, reason))`.
fn validate(d: &mut Deployment) -> Result<(), (String, String)> {
    fn check(ok: bool, key: &str, message: &str) -> Result<(), (String, String)> {
        if ok {
            Ok(())
        } else {
            Err((key.to_owned(), message.to_owned()))
        }
    }
    let s = &d.server;
    check(
        has_http_host(&s.base_url),
        "server.base_url",
        &format!(
            "{:?} must be an http:// or https:// URL with a host",
            s.base_url
        ),
    )?;
    check(
        (1024..=16 << 20).contains(&s.max_body_bytes),
        "server.max_body_bytes",
        &format!(
            "{} is not between 1024 and 16777216 (16 MiB)",
            s.max_body_bytes
        ),
    )?;
    check(
        s.max_connections_per_ip > 0,
        "server.max_connections_per_ip",
        "must be greater than 0",
    )?;
    check(
        s.header_timeout_secs > 0,
        "server.header_timeout_secs",
        "must be greater than 0",
    )?;
    check(
        s.request_timeout_secs > 0,
        "server.request_timeout_secs",
        "must be greater than 0",
    )?;
    check(
        !s.tls.enabled || s.tls.cert_file.is_some() == s.tls.key_file.is_some(),
        "server.tls",
        "cert_file and key_file must be set together (or both left out for a self-signed certificate)",
    )?;
    let url = &d.database.url;
    check(
        ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| url.starts_with(p)),
        "database.url",
        &format!("{url:?} is neither a sqlite: nor a postgres:// URL"),
    )?;
    check(
        d.database.max_connections > 0,
        "database.max_connections",
        "must be greater than 0",
    )?;
    check(
        d.database.acquire_timeout_ms > 0,
        "database.acquire_timeout_ms",
        "must be greater than 0",
    )?;
    let t = &d.oauth.token;
    check(
        t.access_token_ttl_secs > 0,
        "oauth.token.access_token_ttl_secs",
        "must be greater than 0",
    )?;
    check(
        t.refresh_token_ttl_secs > 0,
        "oauth.token.refresh_token_ttl_secs",
        "must be greater than 0",
    )?;
    let j = &d.oauth.jwks_endpoint;
    check(
        j.connection_timeout > 0,
        "oauth.jwks_endpoint.connection_timeout",
        "must be greater than 0",
    )?;
    check(
        j.read_timeout > 0,
        "oauth.jwks_endpoint.read_timeout",
        "must be greater than 0",
    )?;
    check(
        j.size_limit_bytes > 0,
        "oauth.jwks_endpoint.size_limit_bytes",
        "must be greater than 0",
    )?;
    check(
        j.max_cached_uris > 0,
        "oauth.jwks_endpoint.max_cached_uris",
        "must be greater than 0",
    )?;

    let trimmed = d.server.base_url.trim_end_matches('/').len();
    d.server.base_url.truncate(trimmed);
    Ok(())
}

/// `http(s)://` followed by a non-empty host (user info and port allowed, no whitespace).
fn has_http_host(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    !host.is_empty() && host != "[" && !url.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "conf/deployment.toml";

    fn parse(text: &str) -> Result<Deployment, ConfigError> {
        Deployment::from_toml(text, Path::new(FILE))
    }

    fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Deployment, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Deployment::from_toml_with_env(text, Path::new(FILE), env)
    }

    fn err(text: &str) -> String {
        parse(text).expect_err("should fail").to_string()
    }

    #[test]
    fn empty_file_gives_every_default() {
        let d = parse("").unwrap();
        assert_eq!(d, Deployment::default());
        assert_eq!(d.server.base_url, "https://localhost:9443");
        assert_eq!(d.server.bind, "127.0.0.1:9443".parse().unwrap());
        assert_eq!(d.server.data_dir, PathBuf::from("data"));
        assert_eq!(d.server.max_body_bytes, 65536);
        assert_eq!(d.server.max_connections_per_ip, 256);
        assert_eq!(d.server.header_timeout_secs, 10);
        assert_eq!(d.server.request_timeout_secs, 30);
        assert_eq!(d.super_admin.max_failed_logins_per_minute, 10);
        assert!(d.server.tls.enabled);
        assert_eq!(d.server.tls.cert_file, None);
        assert_eq!(d.server.tls.key_file, None);
        assert_eq!(d.super_admin.username, "admin");
        assert_eq!(d.super_admin.password, None);
        assert_eq!(d.database.url, "sqlite://data/tollgate.db");
        assert_eq!(d.database.cache_ttl_secs, 5);
        assert_eq!(d.database.max_connections, 16);
        assert_eq!(d.database.acquire_timeout_ms, 2000);
        assert_eq!(d.database.statement_timeout_ms, 5000);
        assert_eq!(d.plugins.dropins_dir, PathBuf::from("dropins"));
        let o = &d.oauth;
        assert_eq!(o.token.access_token_ttl_secs, 3600);
        assert_eq!(o.token.refresh_token_ttl_secs, 86400);
        assert_eq!(o.token.default_access_token_format, TokenFormat::Opaque);
        assert_eq!(o.token.signing_alg, SigningAlg::RS256);
        assert_eq!(o.timestamp_skew_secs, 60);
        assert_eq!(o.max_assertion_lifetime_secs, 86400);
        let j = &o.jwks_endpoint;
        assert!(j.enable);
        assert_eq!(j.connection_timeout, 1000);
        assert_eq!(j.read_timeout, 1000);
        assert_eq!(j.size_limit_bytes, 51200);
        assert_eq!(j.refetch_cooldown_secs, 10);
        assert_eq!(j.default_max_age_secs, 300);
        assert!(!j.allow_insecure_http);
        assert_eq!(j.max_cached_uris, 10_000);
    }

    #[test]
    fn every_key_takes_a_non_default_value() {
        let d = parse(
            r#"
            [server]
            base_url = "https://id.example.com/"
            bind = "0.0.0.0:8443"
            data_dir = "/var/lib/tollgate"
            max_body_bytes = 1024
            max_connections_per_ip = 8
            header_timeout_secs = 2
            request_timeout_secs = 3
            [server.tls]
            enabled = true
            cert_file = "certs/server.pem"
            key_file = "certs/server.key"
            [super_admin]
            username = "root"
            password = "s3cret"
            max_failed_logins_per_minute = 0
            [database]
            url = "postgres://tollgate@db/tollgate"
            cache_ttl_secs = 0
            max_connections = 4
            acquire_timeout_ms = 250
            statement_timeout_ms = 0
            [plugins]
            dropins_dir = "/opt/dropins"
            [oauth]
            timestamp_skew_secs = 5
            max_assertion_lifetime_secs = 600
            [oauth.token]
            access_token_ttl_secs = 60
            refresh_token_ttl_secs = 120
            default_access_token_format = "jwt"
            signing_alg = "EdDSA"
            [oauth.jwks_endpoint]
            enable = false
            connection_timeout = 2000
            read_timeout = 3000
            size_limit_bytes = 4096
            refetch_cooldown_secs = 0
            default_max_age_secs = 60
            allow_insecure_http = true
            "#,
        )
        .unwrap();
        let expected = Deployment {
            server: Server {
                base_url: "https://id.example.com".into(),
                bind: "0.0.0.0:8443".parse().unwrap(),
                data_dir: "/var/lib/tollgate".into(),
                max_body_bytes: 1024,
                max_connections_per_ip: 8,
                header_timeout_secs: 2,
                request_timeout_secs: 3,
                tls: Tls {
                    enabled: true,
                    cert_file: Some("certs/server.pem".into()),
                    key_file: Some("certs/server.key".into()),
                },
            },
            super_admin: SuperAdmin {
                username: "root".into(),
                password: Some("s3cret".into()),
                max_failed_logins_per_minute: 0,
            },
            database: Database {
                url: "postgres://tollgate@db/tollgate".into(),
                cache_ttl_secs: 0,
                max_connections: 4,
                acquire_timeout_ms: 250,
                statement_timeout_ms: 0,
            },
            plugins: Plugins {
                dropins_dir: "/opt/dropins".into(),
            },
            oauth: OAuth {
                token: TokenSettings {
                    access_token_ttl_secs: 60,
                    refresh_token_ttl_secs: 120,
                    default_access_token_format: TokenFormat::Jwt,
                    signing_alg: SigningAlg::EdDSA,
                },
                timestamp_skew_secs: 5,
                max_assertion_lifetime_secs: 600,
                jwks_endpoint: JwksEndpoint {
                    enable: false,
                    connection_timeout: 2000,
                    read_timeout: 3000,
                    size_limit_bytes: 4096,
                    refetch_cooldown_secs: 0,
                    default_max_age_secs: 60,
                    allow_insecure_http: true,
                    max_cached_uris: 10_000,
                },
            },
        };
        assert_eq!(d, expected);
    }

    #[test]
    fn signing_algs_use_jose_names() {
        for (name, alg) in [
            ("RS256", SigningAlg::RS256),
            ("PS256", SigningAlg::PS256),
            ("ES256", SigningAlg::ES256),
            ("EdDSA", SigningAlg::EdDSA),
        ] {
            let d = parse(&format!("[oauth.token]\nsigning_alg = \"{name}\"")).unwrap();
            assert_eq!(d.oauth.token.signing_alg, alg);
        }
        assert!(err("[oauth.token]\nsigning_alg = \"rs256\"").contains("line 2"));
    }

    #[test]
    fn unknown_key_in_a_section_names_file_line_and_key() {
        let e = err("[server]\nbind = \"127.0.0.1:1\"\nfoo = 1\n");
        assert!(
            e.starts_with("conf/deployment.toml: line 3, column 1: unknown field `foo`"),
            "{e}"
        );
        let e = err("[oauth.jwks_endpoint]\n\nenable = true\nenabled = false\n");
        assert!(
            e.contains("line 4") && e.contains("unknown field `enabled`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_section_names_file_line_and_key() {
        let e = err("[server]\n[sever.tls]\nenabled = false\n");
        assert!(
            e.starts_with("conf/deployment.toml: line 2") && e.contains("unknown field `sever`"),
            "{e}"
        );
    }

    #[test]
    fn syntax_and_type_errors_name_the_line() {
        let e = err("[server]\nbase_url = \n");
        assert!(e.starts_with("conf/deployment.toml: line 2, column"), "{e}");
        let e = err("[server]\nmax_body_bytes = \"big\"\n");
        assert!(e.starts_with("conf/deployment.toml: line 2, column"), "{e}");
        let e = err("[server]\nbind = \"localhost\"\n");
        assert!(e.starts_with("conf/deployment.toml: line 2, column"), "{e}");
    }

    #[test]
    fn invalid_values_name_file_and_key() {
        for (text, key) in [
            ("[server]\nbase_url = \"ftp://x\"", "server.base_url"),
            ("[server]\nbase_url = \"https://\"", "server.base_url"),
            ("[server]\nbase_url = \"https:///path\"", "server.base_url"),
            ("[server]\nmax_body_bytes = 1023", "server.max_body_bytes"),
            (
                "[server]\nmax_connections_per_ip = 0",
                "server.max_connections_per_ip",
            ),
            (
                "[server]\nheader_timeout_secs = 0",
                "server.header_timeout_secs",
            ),
            (
                "[server]\nrequest_timeout_secs = 0",
                "server.request_timeout_secs",
            ),
            (
                "[server]\nmax_body_bytes = 16777217",
                "server.max_body_bytes",
            ),
            ("[database]\nurl = \"mysql://x/y\"", "database.url"),
            (
                "[database]\nmax_connections = 0",
                "database.max_connections",
            ),
            (
                "[database]\nacquire_timeout_ms = 0",
                "database.acquire_timeout_ms",
            ),
            (
                "[oauth.token]\naccess_token_ttl_secs = 0",
                "oauth.token.access_token_ttl_secs",
            ),
            (
                "[oauth.token]\nrefresh_token_ttl_secs = 0",
                "oauth.token.refresh_token_ttl_secs",
            ),
            (
                "[oauth.jwks_endpoint]\nconnection_timeout = 0",
                "oauth.jwks_endpoint.connection_timeout",
            ),
            (
                "[oauth.jwks_endpoint]\nread_timeout = 0",
                "oauth.jwks_endpoint.read_timeout",
            ),
            (
                "[oauth.jwks_endpoint]\nsize_limit_bytes = 0",
                "oauth.jwks_endpoint.size_limit_bytes",
            ),
            ("[server.tls]\ncert_file = \"c.pem\"", "server.tls"),
        ] {
            let e = err(text);
            assert!(e.starts_with(&format!("{FILE}: {key}: ")), "{text}: {e}");
        }
    }

    #[test]
    fn accepted_edge_values() {
        assert!(parse("[server]\nmax_body_bytes = 16777216").is_ok());
        assert!(parse("[server]\nbase_url = \"http://[::1]:8080/tollgate\"").is_ok());
        assert!(parse("[database]\nurl = \"postgresql://u@h/db\"").is_ok());
        assert!(parse("[database]\nurl = \"sqlite::memory:\"").is_ok());
        // Without TLS the certificate settings are irrelevant.
        assert!(parse("[server.tls]\nenabled = false\nkey_file = \"k.pem\"").is_ok());
    }

    #[test]
    fn env_overrides_each_kind_of_value() {
        let d = parse_env(
            "[database]\nurl = \"sqlite://x.db\"\n",
            &[
                ("TOLLGATE_DATABASE__URL", "postgres://u@db/t"),
                ("TOLLGATE_SERVER__TLS__ENABLED", "false"),
                ("TOLLGATE_SERVER__MAX_BODY_BYTES", "2048"),
                ("TOLLGATE_OAUTH__JWKS_ENDPOINT__ENABLE", "FALSE"),
                ("TOLLGATE_OAUTH__TOKEN__SIGNING_ALG", "ES256"),
                ("TOLLGATE_OAUTH__TIMESTAMP_SKEW_SECS", "5"),
                // Digits for a string key stay a string.
                ("TOLLGATE_SUPER_ADMIN__PASSWORD", "123456"),
                ("TOLLGATE_SERVER__BASE_URL", "https://id.example.com/"),
            ],
        )
        .unwrap();
        assert_eq!(d.database.url, "postgres://u@db/t");
        assert!(!d.server.tls.enabled);
        assert_eq!(d.server.max_body_bytes, 2048);
        assert!(!d.oauth.jwks_endpoint.enable);
        assert_eq!(d.oauth.token.signing_alg, SigningAlg::ES256);
        assert_eq!(d.oauth.timestamp_skew_secs, 5);
        assert_eq!(d.super_admin.password.as_deref(), Some("123456"));
        assert_eq!(d.server.base_url, "https://id.example.com");
    }

    #[test]
    fn non_config_tollgate_variables_are_ignored() {
        let d = parse_env(
            "",
            &[
                ("TOLLGATE_TEST_POSTGRES_URL", "postgres://x/y"),
                ("TOLLGATE_LOG", "debug"),
                ("PATH", "/bin"),
                ("tollgate_database__url", "nope"),
            ],
        )
        .unwrap();
        assert_eq!(d, Deployment::default());
    }

    #[test]
    fn bad_env_overrides_name_the_variable() {
        for (var, value, expect) in [
            ("TOLLGATE_SERVER__NOPE", "1", "unknown key server.nope"),
            ("TOLLGATE_NOPE__URL", "x", "unknown key nope.url"),
            ("TOLLGATE_SERVER__TLS", "x", "server.tls is a section"),
            ("TOLLGATE_SERVER__MAX_BODY_BYTES", "lots", "integer"),
            ("TOLLGATE_SERVER__TLS__ENABLED", "yes", "true or false"),
            ("TOLLGATE_SERVER__BIND", "localhost", ""),
            ("TOLLGATE_OAUTH__TOKEN__ACCESS_TOKEN_TTL_SECS", "-1", ""),
            (
                "TOLLGATE_OAUTH__TOKEN__ACCESS_TOKEN_TTL_SECS",
                "0",
                "greater than 0",
            ),
            ("TOLLGATE_DATABASE__URL", "mysql://x", "database.url"),
        ] {
            let e = parse_env("", &[(var, value)]).expect_err(var).to_string();
            assert!(
                e.starts_with(&format!("environment variable {var}: ")) && e.contains(expect),
                "{var}={value}: {e}"
            );
        }
    }

    #[test]
    fn file_errors_come_first_and_keep_their_line() {
        let e = parse_env("foo = 1\n", &[("TOLLGATE_DATABASE__URL", "sqlite://x")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("conf/deployment.toml: line 1"), "{e}");
    }

    #[test]
    fn env_can_fix_what_the_file_gets_wrong() {
        let d = parse_env(
            "[oauth.token]\naccess_token_ttl_secs = 0\n",
            &[("TOLLGATE_OAUTH__TOKEN__ACCESS_TOKEN_TTL_SECS", "10")],
        )
        .unwrap();
        assert_eq!(d.oauth.token.access_token_ttl_secs, 10);
    }

    mod props {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::select;

        const SHIPPED: &str = include_str!("../../../conf/deployment.toml");

        /// Values that stress the schema: wrong types, bounds, odd strings.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                select(vec![
                    "0",
                    "-1",
                    "1",
                    "18446744073709551616",
                    "9223372036854775807",
                    "1e400",
                    "nan",
                    "inf",
                    "true",
                    "false",
                    "[]",
                    "{}",
                    "\"\"",
                    "\"x\"",
                    "\"sqlite::memory:\"",
                    "\"postgres://u@h/db\"",
                    "\"[::1]:0\"",
                    "\"jwt\"",
                    "\"none\"",
                    "\"HS256\"",
                    "\"EdDSA\"",
                    "\"/\"",
                ])
                .prop_map(str::to_owned),
                "(?s).{0,12}",
            ]
        }

        /// The shipped file's lines, some dropped, some with another value, some shuffled.
        fn toml_like() -> impl Strategy<Value = String> {
            let lines: Vec<&str> = SHIPPED.lines().collect();
            vec(
                (select(lines), proptest::option::weighted(0.3, value())),
                0..40,
            )
            .prop_map(|lines| {
                lines
                    .into_iter()
                    .map(|(line, value)| match (line.split_once('='), value) {
                        (Some((key, _)), Some(value)) => format!("{key}= {value}\n"),
                        _ => format!("{line}\n"),
                    })
                    .collect()
            })
        }

        fn env() -> impl Strategy<Value = Vec<(String, String)>> {
            let var = prop_oneof![
                select(vec![
                    "SERVER__BIND",
                    "SERVER__BASE_URL",
                    "SERVER__MAX_BODY_BYTES",
                    "SERVER__TLS__ENABLED",
                    "DATABASE__URL",
                    "OAUTH__TOKEN__SIGNING_ALG",
                    "OAUTH__JWKS_ENDPOINT__ENABLE",
                    "OAUTH__TIMESTAMP_SKEW_SECS",
                    "SERVER__NOPE",
                    "SERVER",
                    "__",
                    "SERVER__TLS",
                ])
                .prop_map(str::to_owned),
                "[A-Z_]{0,12}",
            ];
            let value = prop_oneof![value(), "[a-z0-9:/.]{0,12}"];
            vec((var.prop_map(|v| format!("TOLLGATE_{v}")), value), 0..4)
        }

        /// The error names the file, or the variable the bad value came from.
        fn names_its_source(
            result: Result<Deployment, ConfigError>,
            env: &[(String, String)],
        ) -> Result<(), TestCaseError> {
            match result {
                Ok(_) => {}
                Err(ConfigError::Env { var, .. }) => {
                    prop_assert!(env.iter().any(|(k, _)| *k == var), "{var}");
                }
                Err(e) => {
                    let message = e.to_string();
                    prop_assert!(message.starts_with(&format!("{FILE}: ")), "{message}");
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn any_text_loads_or_names_the_file(text in "(?s).{0,256}") {
                names_its_source(parse(&text), &[])?;
            }

            #[test]
            fn shipped_lines_mutated_load_or_name_their_source(text in toml_like(), env in env()) {
                let result = Deployment::from_toml_with_env(&text, Path::new(FILE), env.clone());
                names_its_source(result, &env)?;
            }
        }
    }
}
