//! Prometheus metrics (`GET /metrics`), on the `prometheus-client` crate (the Prometheus
//! project's own Rust client: typed label sets, OpenMetrics text).
//!
//! The families are created here, once, so every module counts into the same names.

use crate::keys::KeyMetrics;
use crate::store::CommitMetrics;
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route, not the raw path (bounded cardinality): `health`, `metrics`, `other`, …
    /// Static strings, like `outcome` below: a label set is built for every count, and
    /// owned strings cost an allocation each time.
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    /// A grant type an active handler serves, or `none` / `unsupported`.
    pub grant_type: String,
    /// `ok`, or the RFC 6749 error code.
    pub outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered, by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Token requests, by grant type and outcome.
    pub grants: Family<GrantLabels, Counter>,
    /// Token request latency in seconds.
    pub grant_latency: Histogram,
    /// Loaded plugin files and active components.
    pub plugins_loaded: Gauge,
    pub components_active: Gauge,
    /// The shared key service's counters.
    pub keys: KeyMetrics,
    /// Connections closed at once: their address held `max_connections_per_ip` already.
    pub connections_refused: Counter,
    /// Super admin logins refused unchecked: their address failed too often.
    pub logins_throttled: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let grants = Family::<GrantLabels, Counter>::default();
        registry.register(
            "grants",
            "Token requests, by grant type and outcome (ok or the OAuth error code)",
            grants.clone(),
        );
        // 100 µs … ~3 s.
        let grant_latency = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "grant_latency_seconds",
            "Token request latency",
            grant_latency.clone(),
        );
        let plugins_loaded = Gauge::default();
        registry.register(
            "plugins_loaded",
            "Plugin files loaded from dropins",
            plugins_loaded.clone(),
        );
        let components_active = Gauge::default();
        registry.register(
            "components_active",
            "Active components (built in and loaded)",
            components_active.clone(),
        );
        let keys = KeyMetrics::default();
        for (name, help, counter) in [
            (
                "jwks_fetches",
                "JWKS fetches (each attempt, good or bad)",
                &keys.fetches,
            ),
            (
                "jwks_fetch_failures",
                "JWKS fetches that failed",
                &keys.fetch_failures,
            ),
            (
                "jwks_cache_hits",
                "Key lookups answered from the cache",
                &keys.cache_hits,
            ),
            (
                "jwks_refetches_suppressed",
                "Re-fetches for an unknown kid skipped by the cooldown",
                &keys.refetches_suppressed,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at once because their address had max_connections_per_ip open",
            connections_refused.clone(),
        );
        let logins_throttled = Counter::default();
        registry.register(
            "admin_logins_throttled",
            "Super admin logins refused unchecked after too many failures from one address",
            logins_throttled.clone(),
        );
        Metrics {
            connections_refused,
            logins_throttled,
            registry,
            keys,
            requests,
            grants,
            grant_latency,
            plugins_loaded,
            components_active,
        }
    }
}

impl Metrics {
    /// Adds the store's group-commit counters ([`CommitMetrics`]).
    pub fn register_commits(&mut self, commits: &CommitMetrics) {
        self.registry.register(
            "store_commit_calls",
            "Token writes (grants, refresh rotations) committed together, per commit",
            commits.calls.clone(),
        );
        self.registry.register(
            "store_commit_seconds",
            "How long each group commit took (every grant waits for one)",
            commits.seconds.clone(),
        );
        self.registry.register(
            "store_commit_failures",
            "Group commits that failed (a batch of several writes is then committed write by write)",
            commits.failures.clone(),
        );
    }

    pub fn count_request(&self, route: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }

    pub fn count_grant(&self, grant_type: &str, outcome: &'static str, took: Duration) {
        self.grants
            .get_or_create(&GrantLabels {
                grant_type: grant_type.to_string(),
                outcome,
            })
            .inc();
        self.grant_latency.observe(took.as_secs_f64());
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
