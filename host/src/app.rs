//! Start-up, in the order an operator would check things by hand: configuration, database,
//! super admin, plugins, TLS, socket. Each failure stops start-up with a message naming the
//! file, line or plugin and the reason.

use crate::clock::Clock;
use crate::config::deployment::JwksEndpoint;
use crate::config::{Config, ConfigError};
use crate::http::{self, ServeOptions};
use crate::keys::{FetchSettings, Fetcher, KeyService, KeyServiceSettings};
use crate::metrics::Metrics;
use crate::oauth::parties::Parties;
use crate::oauth::{self, OAuth, SUPER_TENANT};
use crate::plugins::{self, Components, Host, KeySource, NoKeySource, Origin, Registry};
use crate::secret::ServerSecret;
use crate::store::{Store, StoreOptions};
use crate::tokens::keys::SigningKeys;
use crate::tokens::{AccessTokenSigner, TokenService, TokenSettings};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate_core::sdk::Registration;
use tollgate_core::{CacheSettings, HostSettings};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Database(String),
    #[error("super admin: {0}")]
    Admin(String),
    #[error("server secret: {0}")]
    Secret(String),
    #[error("{0}")]
    Plugins(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
}

/// The server settings components receive.
pub fn host_settings(config: &Config) -> HostSettings {
    let caches: BTreeMap<String, CacheSettings> = config
        .identity
        .caches
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                CacheSettings {
                    enable: c.enable,
                    timeout_secs: c.timeout_minutes.unwrap_or(10).saturating_mul(60),
                    capacity: c.capacity.unwrap_or(5000),
                },
            )
        })
        .collect();
    HostSettings {
        timestamp_skew_secs: config.deployment.oauth.timestamp_skew_secs,
        max_assertion_lifetime_secs: config.deployment.oauth.max_assertion_lifetime_secs,
        caches,
    }
}

/// Every factory: the built-in ones given and those of every plugin in dropins. Any refused
/// file is an error naming each one.
pub fn registry(
    config: &Config,
    builtins: Vec<Registration>,
) -> Result<(Registry, usize), StartError> {
    let dir = config.dropins_dir();
    if let Some(warning) = plugins::warn_if_writable_by_others(&dir) {
        tracing::warn!("{warning}");
    }
    let dropins = plugins::scan(&dir).map_err(|e| StartError::Plugins(e.to_string()))?;
    if !dropins.refused.is_empty() {
        return Err(StartError::Plugins(plugins::PluginError::refused_all(
            &dropins.refused,
        )));
    }
    let mut registry = Registry::new();
    let add = |registry: &mut Registry, r, o| {
        registry
            .add(r, o)
            .map_err(|e| StartError::Plugins(e.to_string()))
    };
    for registration in builtins {
        add(&mut registry, registration, Origin::BuiltIn)?;
    }
    let count = dropins.loaded.len();
    for plugin in dropins.loaded {
        tracing::info!(plugin = %plugin.path.display(), abi = plugin.abi_version, "loaded plugin");
        for registration in plugin.registrations {
            add(
                &mut registry,
                registration,
                Origin::Plugin(plugin.path.clone()),
            )?;
        }
    }
    Ok((registry, count))
}

/// A running server.
pub struct Running {
    /// The address it listens on (the real port when `bind` asked for port 0).
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    pub components: Components,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// The base URL to reach it at.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops accepting, lets open requests finish, closes the database.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }

    /// Runs until `signal` completes, then stops.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.stop().await
    }
}

/// The shared key service, or none when `[oauth.jwks_endpoint] enable = false`.
fn key_source(
    settings: &JwksEndpoint,
    clock: &Arc<dyn Clock>,
    metrics: &Metrics,
) -> Arc<dyn KeySource> {
    if !settings.enable {
        return Arc::new(NoKeySource);
    }
    let fetcher = Fetcher::new(FetchSettings {
        connection_timeout: Duration::from_millis(settings.connection_timeout),
        read_timeout: Duration::from_millis(settings.read_timeout),
        size_limit_bytes: usize::try_from(settings.size_limit_bytes).unwrap_or(usize::MAX),
        allow_insecure_http: settings.allow_insecure_http,
    });
    Arc::new(KeyService::new(
        Arc::new(fetcher),
        clock.clone(),
        KeyServiceSettings {
            refetch_cooldown_secs: settings.refetch_cooldown_secs,
            default_max_age_secs: settings.default_max_age_secs,
            max_cached_uris: usize::try_from(settings.max_cached_uris).unwrap_or(usize::MAX),
        },
        metrics.keys.clone(),
    ))
}

/// Starts the server described by `config`.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
    start_with(config, clock, Vec::new()).await
}

/// Starts the server with `linked` component factories besides the built-in ones: components
/// compiled into the binary that runs it rather than loaded from dropins/ (`bench/inproc` links
/// the bundled plugins in, to measure what the plugin ABI costs them).
pub async fn start_with(
    config: Config,
    clock: Arc<dyn Clock>,
    linked: Vec<Registration>,
) -> Result<Running, StartError> {
    for warning in &config.identity.warnings {
        tracing::warn!("{warning}");
    }
    let deployment = &config.deployment;
    let db = &deployment.database;
    let options = StoreOptions {
        max_connections: db.max_connections,
        acquire_timeout: Duration::from_millis(db.acquire_timeout_ms),
        statement_timeout: Duration::from_millis(db.statement_timeout_ms),
        cache_ttl: Duration::from_secs(db.cache_ttl_secs),
    };
    let store = Store::open(&config.database_url(), &options)
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    store
        .ensure_tenant(SUPER_TENANT, clock.now())
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let secret =
        Arc::new(ServerSecret::load_or_create(&config.data_dir()).map_err(StartError::Secret)?);
    secret
        .check_shared(&store, &config.data_dir())
        .await
        .map_err(StartError::Secret)?;
    let admin = crate::admin::bootstrap(
        &deployment.super_admin.username,
        deployment.super_admin.password.as_deref(),
        &store,
        &config.data_dir(),
    )
    .await
    .map_err(StartError::Admin)?
    .with_login_limit(deployment.super_admin.max_failed_logins_per_minute);
    let token_settings = &deployment.oauth.token;
    let access_ttl = token_settings.access_token_ttl_secs as i64;
    // A retired signing key stays published as long as an access token it signed may live.
    let keys = Arc::new(SigningKeys::new(
        store.clone(),
        secret.clone(),
        token_settings.signing_alg,
        access_ttl,
    ));
    let tokens = Arc::new(TokenService::new(
        store.clone(),
        secret.clone(),
        Some(keys.clone() as Arc<dyn AccessTokenSigner>),
        clock.clone(),
        TokenSettings {
            access_ttl,
            refresh_ttl: token_settings.refresh_token_ttl_secs as i64,
        },
    ));

    let mut builtins = oauth::builtin::registrations(store.clone(), secret.clone(), tokens.clone());
    builtins.extend(linked);
    let (registry, plugin_count) = registry(&config, builtins)?;
    let mut metrics = Metrics::default();
    if let Some(commits) = store.commit_metrics() {
        metrics.register_commits(commits);
    }
    let metrics = Arc::new(metrics);
    let base_url = deployment.server.base_url.trim_end_matches('/').to_string();
    let parties = {
        let base_url = base_url.clone();
        Parties::new(store.clone(), clock.clone(), move |tenant| {
            oauth::token_endpoint_url(&base_url, tenant)
        })
    };
    let host = Host::new(
        store.clone(),
        clock.clone(),
        Arc::new(parties),
        key_source(&deployment.oauth.jwks_endpoint, &clock, &metrics),
    );
    let components = plugins::activate(&registry, &config.identity, &host_settings(&config), &host)
        .map_err(|e| StartError::Plugins(e.to_string()))?;

    let tls = if deployment.server.tls.enabled {
        let configured = config.tls_cert_file().zip(config.tls_key_file());
        let hosts = certificate_hosts(&deployment.server.base_url, deployment.server.bind);
        let (cert, key) = http::tls::ensure_files(configured, &config.data_dir(), &hosts)
            .map_err(StartError::Tls)?;
        Some(tokio_rustls::TlsAcceptor::from(
            http::tls::server_config(&cert, &key).map_err(StartError::Tls)?,
        ))
    } else {
        None
    };

    let bind = deployment.server.bind;
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| StartError::Bind {
            addr: bind,
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind {
        addr: bind,
        reason: e.to_string(),
    })?;

    metrics.plugins_loaded.set(plugin_count as i64);
    metrics.components_active.set(
        (components.grant_handlers.len()
            + components.client_authenticators.len()
            + components.jwt_validators.len()) as i64,
    );
    let state = Arc::new(OAuth {
        store: store.clone(),
        secret,
        tokens: tokens.clone(),
        keys,
        components: components.clone(),
        admin,
        clock: clock.clone(),
        metrics: metrics.clone(),
        settings: oauth::Settings {
            base_url,
            default_format: token_settings.default_access_token_format,
            jwks_fetch_enabled: deployment.oauth.jwks_endpoint.enable,
            allow_insecure_http: deployment.oauth.jwks_endpoint.allow_insecure_http,
        },
    });
    let cleaner = tokio::spawn(clean_up(store.clone(), tokens, clock));
    let server = &deployment.server;
    let options = ServeOptions {
        max_body_bytes: server.max_body_bytes,
        header_timeout: Duration::from_secs(server.header_timeout_secs),
        request_timeout: Duration::from_secs(server.request_timeout_secs),
        max_connections_per_ip: server.max_connections_per_ip,
        ..ServeOptions::default()
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        http::serve(
            listener,
            tls,
            http::routes(state),
            metrics,
            options,
            async {
                let _ = shutdown_rx.await;
            },
        )
        .await;
        cleaner.abort();
        store.close().await;
    });
    Ok(Running {
        addr,
        scheme,
        components,
        shutdown,
        task,
    })
}

/// Deletes expired tokens and jti entries, every few minutes, so that neither table grows for
/// ever (WSO2's IDN_OIDC_JTI does).
async fn clean_up(store: Store, tokens: Arc<TokenService>, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        match tokens.purge_expired().await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired tokens"),
            Ok(_) => {}
            Err(e) => tracing::warn!("purging expired tokens: {e}"),
        }
        match store.purge_expired_jti(clock.now()).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired jti entries"),
            Ok(_) => {}
            Err(e) => tracing::warn!("purging expired jti entries: {e}"),
        }
    }
}

/// Names the self-signed certificate is made for: localhost, the bind address, the base URL's
/// host.
fn certificate_hosts(base_url: &str, bind: SocketAddr) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = bind.ip();
    if !ip.is_unspecified() {
        hosts.push(ip.to_string());
    }
    if let Some(host) = base_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|h| !h.is_empty())
    {
        hosts.push(host.to_string());
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// What `tollgate plugins` prints: each file in dropins with its ABI version and components,
/// whether identity.xml enables each, and every file that would be refused. `Err` holds the
/// whole report when anything would be refused.
pub fn plugins_report(config: &Config) -> Result<String, String> {
    use std::fmt::Write;
    let dir = config.dropins_dir();
    let mut out = String::new();
    let mut ok = true;
    let _ = writeln!(out, "dropins: {}", dir.display());
    if let Some(warning) = plugins::warn_if_writable_by_others(&dir) {
        let _ = writeln!(out, "warning: {warning}");
    }
    let dropins = plugins::scan(&dir).map_err(|e| e.to_string())?;
    if dropins.loaded.is_empty() && dropins.refused.is_empty() {
        let _ = writeln!(out, "(no plugin files)");
    }
    let mut registry = Registry::new();
    for plugin in dropins.loaded {
        let _ = writeln!(
            out,
            "{}: ABI v{} (tollgate-core {})",
            plugin.path.display(),
            plugin.abi_version,
            plugin.core_version
        );
        for registration in plugin.registrations {
            let info = &registration.info;
            let _ = writeln!(out, "  {} {}", info.kind, info.name);
            if !info.aliases.is_empty() {
                let _ = writeln!(out, "    aliases: {}", info.aliases.join(", "));
            }
            if !info.provides.is_empty() {
                let _ = writeln!(out, "    provides: {}", info.provides.join(", "));
            }
            let listener = config
                .identity
                .listeners
                .iter()
                .find(|l| info.answers_to(&l.name));
            let _ = match listener {
                Some(l) if l.enable => writeln!(
                    out,
                    "    enabled by {} line {} (orderId {})",
                    config.identity.file.display(),
                    l.line,
                    l.order_id
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "unset".into())
                ),
                Some(l) => writeln!(
                    out,
                    "    disabled by {} line {}",
                    config.identity.file.display(),
                    l.line
                ),
                None => writeln!(out, "    not enabled (no EventListener names it)"),
            };
            if let Err(e) = registry.add(registration, Origin::Plugin(plugin.path.clone())) {
                ok = false;
                let _ = writeln!(out, "  error: {e}");
            }
        }
    }
    for refused in &dropins.refused {
        ok = false;
        let _ = writeln!(
            out,
            "{}: refused: {}",
            refused.path.display(),
            refused.reason
        );
    }
    if ok {
        Ok(out)
    } else {
        Err(out)
    }
}

/// Logs to stderr at the level `TOLLGATE_LOG` sets (default `info`), in colour only on a
/// terminal: a log piped to a file or a collector is plain text.
pub fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// `tollgate serve`: loads the configuration in `conf`, starts the server (with `linked`, as
/// [`start_with`]), prints "Tollgate listening on URL" once ready and runs until SIGTERM or
/// SIGINT. The error is the message to exit with.
pub fn serve(conf: &std::path::Path, linked: Vec<Registration>) -> Result<(), String> {
    let config = Config::load(conf).map_err(|e| e.to_string())?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let running = start_with(config, Arc::new(crate::clock::SystemClock), linked)
            .await
            .map_err(|e| e.to_string())?;
        // Install the signal handlers before announcing readiness: a SIGTERM sent right after
        // the announcement must stop the server cleanly, not kill it.
        let signal =
            shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
        println!("Tollgate listening on {}", running.url());
        running.run_until(signal).await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
