//! Configuration: `conf/deployment.toml`, `conf/identity.xml` and `TOLLGATE_*` overrides.
//!
//! Two files because Tollgate's users come from WSO2 Identity Server, which splits its settings
//! the same way: `deployment.toml` for the server itself (see [`deployment`]) and
//! `identity.xml` for which components run, in what order, with what properties (see
//! [`identity`]) — so WSO2 documentation snippets paste in unchanged.
//!
//! Loading is all-or-nothing and strict: the server must not start on a config it misread, so
//! every problem is a [`ConfigError`] naming the file (or environment variable), the line where
//! known, and the key or element. Relative paths in the config are relative to the conf dir's
//! parent (the installation directory), not to the working directory, so `tollgate serve
//! --conf /opt/tollgate/conf` behaves the same from anywhere.

pub mod deployment;
mod env;
mod error;
pub mod identity;
mod xml;

use std::path::{Path, PathBuf};

pub use deployment::{
    Database, Deployment, JwksEndpoint, OAuth, Plugins, Server, SigningAlg, SuperAdmin, Tls,
    TokenFormat, TokenSettings,
};
pub use error::ConfigError;
pub use identity::{CacheConfig, EventListener, Identity, SupportedGrantType};

/// Everything read from the conf dir.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory given (e.g. `conf`), as given.
    pub conf_dir: PathBuf,
    /// The conf dir's parent, absolute; relative paths in the config are relative to it.
    pub base_dir: PathBuf,
    pub deployment: Deployment,
    pub identity: Identity,
}

impl Config {
    /// Loads `conf_dir/deployment.toml` and `conf_dir/identity.xml` and applies the `TOLLGATE_*`
    /// overrides of the process environment.
    pub fn load(conf_dir: &Path) -> Result<Config, ConfigError> {
        // `std::env::vars()` would panic on a non-UTF-8 variable anywhere in the environment.
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())));
        Config::load_with_env(conf_dir, env)
    }

    /// [`Config::load`] with the environment given explicitly.
    pub fn load_with_env(
        conf_dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let toml_file = conf_dir.join("deployment.toml");
        let text = read(&toml_file)?;
        let deployment = Deployment::from_toml_with_env(
            text.strip_prefix('\u{feff}').unwrap_or(&text),
            &toml_file,
            env,
        )?;
        let identity = Identity::load(&conf_dir.join("identity.xml"))?;
        let canonical = std::fs::canonicalize(conf_dir).map_err(|source| ConfigError::Io {
            path: conf_dir.to_owned(),
            source,
        })?;
        let base_dir = canonical
            .parent()
            .map_or(canonical.clone(), Path::to_path_buf);
        Ok(Config {
            conf_dir: conf_dir.to_owned(),
            base_dir,
            deployment,
            identity,
        })
    }

    /// `server.data_dir`, resolved.
    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.deployment.server.data_dir)
    }

    /// `plugins.dropins_dir`, resolved.
    pub fn dropins_dir(&self) -> PathBuf {
        self.resolve(&self.deployment.plugins.dropins_dir)
    }

    /// `server.tls.cert_file`, resolved.
    pub fn tls_cert_file(&self) -> Option<PathBuf> {
        self.deployment
            .server
            .tls
            .cert_file
            .as_deref()
            .map(|p| self.resolve(p))
    }

    /// `server.tls.key_file`, resolved.
    pub fn tls_key_file(&self) -> Option<PathBuf> {
        self.deployment
            .server
            .tls
            .key_file
            .as_deref()
            .map(|p| self.resolve(p))
    }

    /// `database.url` with a relative SQLite path made absolute against `base_dir`
    /// (`sqlite://data/t.db` → `sqlite:///<base_dir>/data/t.db`, query kept). Absolute SQLite
    /// paths, `:memory:` and PostgreSQL URLs are returned unchanged.
    pub fn database_url(&self) -> String {
        let url = &self.deployment.database.url;
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return url.clone();
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
        if path.is_empty() || path.starts_with(':') || Path::new(path).is_absolute() {
            return url.clone();
        }
        format!("sqlite://{}{query}", self.base_dir.join(path).display())
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        // `join` keeps an absolute `path` as it is.
        self.base_dir.join(path)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: &str = "<Server/>";

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    /// A temp install dir with `conf/` holding the two files; returns (dir, canonical base).
    fn install(toml: &str, xml: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).unwrap();
        std::fs::write(conf.join("deployment.toml"), toml).unwrap();
        std::fs::write(conf.join("identity.xml"), xml).unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        (dir, base)
    }

    fn load(toml: &str) -> (Config, PathBuf, tempfile::TempDir) {
        let (dir, base) = install(toml, IDENTITY);
        let config = Config::load_with_env(&dir.path().join("conf"), no_env()).unwrap();
        (config, base, dir)
    }

    #[test]
    fn shipped_conf_is_the_defaults() {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
        let config = Config::load_with_env(&conf, no_env()).unwrap();
        assert_eq!(config.deployment, Deployment::default());
        assert_eq!(config.conf_dir, conf);
        assert_eq!(
            config.base_dir,
            std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
        );
        let id = &config.identity;
        assert!(id.warnings.is_empty(), "{:?}", id.warnings);
        assert_eq!(id.grant_types.len(), 1);
        assert_eq!(id.listeners.len(), 3);
        let props: Vec<usize> = id.listeners.iter().map(|l| l.properties.len()).collect();
        assert_eq!(props, [2, 3, 0]);
        // The bundled plugins are all on.
        assert!(id.listeners.iter().all(|l| l.enable));
        assert_eq!(id.caches.len(), 1);
        assert_eq!(
            id.cache("PrivateKeyJWT").and_then(|c| c.timeout_minutes),
            Some(10)
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_conf_dirs_parent() {
        let (config, base, _dir) =
            load("[server.tls]\ncert_file = \"certs/c.pem\"\nkey_file = \"/etc/k.pem\"\n");
        assert_eq!(config.base_dir, base);
        assert_eq!(config.data_dir(), base.join("data"));
        assert_eq!(config.dropins_dir(), base.join("dropins"));
        assert_eq!(config.tls_cert_file(), Some(base.join("certs/c.pem")));
        assert_eq!(config.tls_key_file(), Some(PathBuf::from("/etc/k.pem")));
        assert_eq!(
            config.database_url(),
            format!("sqlite://{}/data/tollgate.db", base.display())
        );
        assert!(config.database_url().starts_with("sqlite:///"));
    }

    #[test]
    fn absolute_paths_stay() {
        let (config, _, _dir) = load(
            "[server]\ndata_dir = \"/var/lib/tollgate\"\n[plugins]\ndropins_dir = \"/opt/d\"\n",
        );
        assert_eq!(config.data_dir(), PathBuf::from("/var/lib/tollgate"));
        assert_eq!(config.dropins_dir(), PathBuf::from("/opt/d"));
        assert_eq!(config.tls_cert_file(), None);
    }

    #[test]
    fn database_urls() {
        let (mut config, base, _dir) = load("");
        let mut url = |u: &str| {
            config.deployment.database.url = u.into();
            config.database_url()
        };
        let b = base.display();
        assert_eq!(url("sqlite:///abs/x.db"), "sqlite:///abs/x.db");
        assert_eq!(
            url("sqlite://data/x.db?mode=rwc"),
            format!("sqlite://{b}/data/x.db?mode=rwc")
        );
        assert_eq!(url("sqlite:x.db"), format!("sqlite://{b}/x.db"));
        assert_eq!(url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            url("postgres://u@h/db?sslmode=require"),
            "postgres://u@h/db?sslmode=require"
        );
        assert_eq!(url("postgresql://u@h/db"), "postgresql://u@h/db");
    }

    #[test]
    fn env_overrides_apply() {
        let (dir, _) = install("", IDENTITY);
        let env = [
            ("TOLLGATE_DATABASE__URL", "postgres://u@db/t"),
            ("TOLLGATE_TEST_POSTGRES_URL", "ignored"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let config = Config::load_with_env(&dir.path().join("conf"), env).unwrap();
        assert_eq!(config.database_url(), "postgres://u@db/t");
        let env = [("TOLLGATE_SERVER__NOPE".to_string(), "1".to_string())];
        let e = Config::load_with_env(&dir.path().join("conf"), env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable TOLLGATE_SERVER__NOPE: unknown key server.nope"
        );
    }

    #[test]
    fn missing_files_are_errors_naming_them() {
        let (dir, _) = install("", IDENTITY);
        let conf = dir.path().join("conf");
        std::fs::remove_file(conf.join("identity.xml")).unwrap();
        let e = Config::load_with_env(&conf, no_env())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}: ", conf.join("identity.xml").display())),
            "{e}"
        );
        std::fs::remove_file(conf.join("deployment.toml")).unwrap();
        let e = Config::load_with_env(&conf, no_env())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}: ", conf.join("deployment.toml").display())),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_path_as_given() {
        let (dir, _) = install("[server]\nnope = 1\n", IDENTITY);
        let e = Config::load_with_env(&dir.path().join("conf"), no_env()).unwrap_err();
        let file = dir.path().join("conf/deployment.toml");
        assert!(
            e.to_string().starts_with(&format!(
                "{}: line 2, column 1: unknown field `nope`",
                file.display()
            )),
            "{e}"
        );
        let (dir, _) = install(
            "",
            "<Server>\n<EventListeners>\n<EventListener/>\n</EventListeners></Server>",
        );
        let e = Config::load_with_env(&dir.path().join("conf"), no_env()).unwrap_err();
        let file = dir.path().join("conf/identity.xml");
        assert_eq!(
            e.to_string(),
            format!(
                "{}: line 3: EventListener: the name attribute is required",
                file.display()
            )
        );
    }
}
