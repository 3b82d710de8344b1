//! Recently read records, so that a token request does not go to the database for the same
//! client twice (authentication, then its registration), nor for every request of a busy client
//! or identity provider.
//!
//! Bounded in size (least recently used go first) and in age (`StoreOptions::cache_ttl`): a
//! change made through this store is seen at once — it forgets the record — and a change made
//! by another host sharing the database within `cache_ttl`. Unknown records are not cached, so
//! a client registered on another host is usable there at once.

use cached::{Cached, TimedSizedCache};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ClientRecord, IdpRecord};

/// Records kept per kind.
const CAPACITY: usize = 10_000;

/// The store's record caches. They hold each record behind an `Arc`, and a hit hands out
/// another reference to it: a copy of a client record (its strings and properties) per lookup
/// was 2 % of the CPU of a client_credentials grant.
#[derive(Debug)]
pub(super) struct Caches {
    /// By (tenant, client_id).
    pub clients: RecordCache<(String, String), ClientRecord>,
    /// By (tenant, name).
    pub idps: RecordCache<(String, String), IdpRecord>,
}

impl Caches {
    pub fn new(ttl: Duration) -> Caches {
        Caches {
            clients: RecordCache::new(ttl),
            idps: RecordCache::new(ttl),
        }
    }
}

/// One kind of record; a zero TTL turns it off.
pub(super) struct RecordCache<K, V> {
    map: Option<Mutex<TimedSizedCache<K, Arc<V>>>>,
}

impl<K, V> std::fmt::Debug for RecordCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordCache")
    }
}

impl<K: Hash + Eq + Clone, V> RecordCache<K, V> {
    fn new(ttl: Duration) -> Self {
        RecordCache {
            map: (!ttl.is_zero())
                .then(|| Mutex::new(TimedSizedCache::with_size_and_lifespan(CAPACITY, ttl))),
        }
    }

    /// Runs `f` on the map, if the cache is on.
    fn with<R>(&self, f: impl FnOnce(&mut TimedSizedCache<K, Arc<V>>) -> R) -> Option<R> {
        let map = self.map.as_ref()?;
        Some(f(&mut map.lock().unwrap_or_else(|e| e.into_inner())))
    }

    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.with(|m| m.cache_get(key).cloned()).flatten()
    }

    pub fn put(&self, key: K, value: Arc<V>) {
        self.with(|m| m.cache_set(key, value));
    }

    pub fn forget(&self, key: &K) {
        self.with(|m| m.cache_remove(key));
    }

    pub fn forget_all(&self) {
        self.with(|m| m.cache_clear());
    }
}
