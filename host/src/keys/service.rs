//! The shared key service: one cache of fetched JWKS per process, keyed by `jwks_uri`
//! (CONTRACT §7).
//!
//! Each URI has an [`Entry`]: the last good key set, when it stops being fresh, when the last
//! re-fetch for an unknown `kid` happened (the cooldown), and the failure backoff. The entries
//! live in a `cached::SizedCache` (an LRU of at most `max_cached_uris`), so registrations cannot
//! grow memory without bound; an evicted URI is simply fetched again on its next use.
//!
//! What happens on a request for a URI's keys (with the `kid` the JWT names, if any):
//! - fresh set, `kid` known (or none asked): served from memory — a cache hit;
//! - no set yet, or the set went stale: fetch;
//! - fresh set without the `kid`: one re-fetch, unless one happened within the cooldown
//!   (counted from the last re-fetch; the first fetch does not start it), in which case the
//!   set is served as it is and the suppression counted;
//! - a fetch fails: the keys already held keep being served (stale-if-error) and the fetch is
//!   retried on demand with exponential backoff (1 s doubling up to [`MAX_BACKOFF_SECS`]); with
//!   nothing held, the caller gets a rejection at once, and until the backoff ends later callers
//!   get it without a new fetch.
//!
//! Single flight: fetches of one URI are serialised by the entry's async mutex. A caller that
//! waited for it looks at the entry again before fetching — the fetch it waited for usually
//! answered its question — so a hundred concurrent first uses cost one fetch.

use super::fetch::{FetchError, Fetched, Fetcher};
use super::jwk;
use crate::clock::Clock;
use crate::plugins::KeySource;
use async_trait::async_trait;
use cached::{Cached, SizedCache};
use prometheus_client::metrics::counter::Counter;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tollgate_core::{Jwks, JwtError};

/// A failing URI is retried after 1, 2, 4 … seconds, at most this many.
pub const MAX_BACKOFF_SECS: i64 = 300;
/// `Cache-Control: max-age` is honoured up to a day…
pub const MAX_FRESHNESS_SECS: u64 = 86_400;
/// …and at least a second (`no-store` included), so a busy server fetches at most once a second.
pub const MIN_FRESHNESS_SECS: u64 = 1;

/// The service's settings, from `[oauth.jwks_endpoint]`.
#[derive(Debug, Clone)]
pub struct KeyServiceSettings {
    pub refetch_cooldown_secs: u64,
    pub default_max_age_secs: u64,
    pub max_cached_uris: usize,
}

/// The service's counters (registered in [`crate::metrics::Metrics`]).
#[derive(Debug, Clone, Default)]
pub struct KeyMetrics {
    pub fetches: Counter,
    pub fetch_failures: Counter,
    pub cache_hits: Counter,
    pub refetches_suppressed: Counter,
}

/// Where the bytes come from: HTTP in the server, a script in unit tests.
#[async_trait]
pub trait Source: Send + Sync {
    async fn fetch(&self, uri: &str) -> Result<Fetched, FetchError>;
}

#[async_trait]
impl Source for Fetcher {
    async fn fetch(&self, uri: &str) -> Result<Fetched, FetchError> {
        Fetcher::fetch(self, uri).await
    }
}

/// The shared key service.
pub struct KeyService {
    source: Arc<dyn Source>,
    clock: Arc<dyn Clock>,
    settings: KeyServiceSettings,
    metrics: KeyMetrics,
    entries: Mutex<SizedCache<String, Arc<Entry>>>,
}

/// One URI's state. `flight` serialises fetches; `state` is only held for reads and writes.
#[derive(Default)]
struct Entry {
    flight: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    /// The last good set, parsed and filtered once.
    keys: Option<Arc<Jwks>>,
    fresh_until: i64,
    /// When the last re-fetch for an unknown `kid` ran (the cooldown starts there).
    last_refetch: Option<i64>,
    /// Consecutive failures, the time before which no new fetch is tried, and why the last failed.
    failures: u32,
    retry_after: i64,
    last_error: Option<String>,
    /// Bumped by every fetch, good or bad: a waiter sees whether a fetch ran while it waited.
    generation: u64,
}

/// What a look at the state decided.
enum Decision {
    Serve(Arc<Jwks>),
    Fail(String),
    /// Fetch; `true` when it is a re-fetch for an unknown `kid` (it starts the cooldown).
    Fetch {
        refetch: bool,
    },
}

impl KeyService {
    pub fn new(
        source: Arc<dyn Source>,
        clock: Arc<dyn Clock>,
        settings: KeyServiceSettings,
        metrics: KeyMetrics,
    ) -> KeyService {
        let capacity = settings.max_cached_uris.max(1);
        KeyService {
            source,
            clock,
            settings,
            metrics,
            entries: Mutex::new(SizedCache::with_size(capacity)),
        }
    }

    fn entry(&self, uri: &str) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .cache_get_or_set_with(uri.to_owned(), || Arc::new(Entry::default()))
            .clone()
    }

    /// The keys of `uri`; with `kid`, a set lacking it is re-fetched once per cooldown.
    pub async fn keys(&self, uri: &str, kid: Option<&str>) -> Result<Arc<Jwks>, JwtError> {
        let entry = self.entry(uri);
        let seen = {
            let state = entry.state.lock().unwrap_or_else(|e| e.into_inner());
            match self.decide(&state, kid, None) {
                Decision::Serve(keys) => {
                    self.metrics.cache_hits.inc();
                    return Ok(keys);
                }
                Decision::Fail(reason) => return Err(unavailable(uri, &reason)),
                Decision::Fetch { .. } => state.generation,
            }
        };
        let _flight = entry.flight.lock().await;
        let refetch = {
            let state = entry.state.lock().unwrap_or_else(|e| e.into_inner());
            match self.decide(&state, kid, Some(seen)) {
                Decision::Serve(keys) => return Ok(keys),
                Decision::Fail(reason) => return Err(unavailable(uri, &reason)),
                Decision::Fetch { refetch } => refetch,
            }
        };
        let outcome = self.source.fetch(uri).await;
        let now = self.clock.now();
        self.metrics.fetches.inc();
        let parsed = outcome.map_err(|e| e.0).and_then(|fetched| {
            let freshness = fetched
                .max_age
                .unwrap_or(self.settings.default_max_age_secs)
                .clamp(MIN_FRESHNESS_SECS, MAX_FRESHNESS_SECS);
            parse(&fetched.body).map(|keys| (keys, freshness))
        });
        let mut state = entry.state.lock().unwrap_or_else(|e| e.into_inner());
        state.generation += 1;
        if refetch {
            state.last_refetch = Some(now);
        }
        match parsed {
            Ok((keys, freshness)) => {
                let keys = Arc::new(keys);
                state.keys = Some(keys.clone());
                state.fresh_until = now.saturating_add(freshness as i64);
                state.failures = 0;
                state.retry_after = 0;
                state.last_error = None;
                Ok(keys)
            }
            Err(reason) => {
                self.metrics.fetch_failures.inc();
                state.failures = state.failures.saturating_add(1);
                let backoff = 1i64 << (state.failures - 1).min(9);
                state.retry_after = now + backoff.min(MAX_BACKOFF_SECS);
                state.last_error = Some(reason.clone());
                match &state.keys {
                    Some(keys) => {
                        tracing::warn!(
                            jwks_uri = uri,
                            "JWKS fetch failed ({reason}); serving the keys already held"
                        );
                        Ok(keys.clone())
                    }
                    None => {
                        tracing::warn!(jwks_uri = uri, "JWKS fetch failed ({reason})");
                        Err(unavailable(uri, &reason))
                    }
                }
            }
        }
    }

    /// What to do for a request asking for `kid`, given `state`. `waited_since` is the generation
    /// a caller saw before it waited for the flight: if a fetch ran meanwhile, its result is the
    /// answer unless the set is still missing what the caller needs and a new fetch is allowed.
    fn decide(&self, state: &State, kid: Option<&str>, waited_since: Option<u64>) -> Decision {
        let now = self.clock.now();
        let fetched_meanwhile = waited_since.is_some_and(|g| g != state.generation);
        let backing_off = state.failures > 0 && now < state.retry_after;
        let Some(keys) = &state.keys else {
            if backing_off || fetched_meanwhile {
                let reason = state.last_error.as_deref().unwrap_or("no keys");
                return Decision::Fail(reason.to_owned());
            }
            return Decision::Fetch { refetch: false };
        };
        if now >= state.fresh_until {
            // Stale: refresh, unless the last attempt failed recently (stale-if-error).
            if backing_off || fetched_meanwhile {
                return Decision::Serve(keys.clone());
            }
            return Decision::Fetch { refetch: false };
        }
        let Some(kid) = kid else {
            return Decision::Serve(keys.clone());
        };
        if keys.has_kid(kid) || fetched_meanwhile || backing_off {
            return Decision::Serve(keys.clone());
        }
        let cooling = state
            .last_refetch
            .is_some_and(|t| now < t.saturating_add(self.settings.refetch_cooldown_secs as i64));
        if cooling {
            if waited_since.is_none() {
                self.metrics.refetches_suppressed.inc();
            }
            return Decision::Serve(keys.clone());
        }
        Decision::Fetch { refetch: true }
    }
}

#[async_trait]
impl KeySource for KeyService {
    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, JwtError> {
        self.keys(uri, kid).await.map(|keys| keys.for_kid(kid))
    }
}

/// A fetch that yields no keys is a rejection of the JWT (`invalid_grant` / `invalid_client`),
/// not a server error: the IdP's keys are not available, so the JWT cannot be trusted.
fn unavailable(uri: &str, reason: &str) -> JwtError {
    JwtError::Rejected(format!("the keys at {uri} are not available: {reason}"))
}

/// A fetched document's usable signing keys (others are ignored, each logged once here).
fn parse(body: &[u8]) -> Result<Jwks, String> {
    let document: Value =
        serde_json::from_slice(body).map_err(|_| "the response is not a JSON document")?;
    let (keys, ignored) = jwk::signing_keys(&document)?;
    for reason in ignored {
        tracing::info!("JWKS key ignored: {reason}");
    }
    Ok(Jwks { keys })
}
