//! Recently read records, so that a token request does not go to the database for the same
//! client twice (authentication, then its registration) nor for every request of a busy client.
//!
//! Bounded in size (least recently used go first) and in age (`StoreOptions::cache_ttl`): a
//! change made through this store is seen at once — it forgets the record — and a change made
//! by another host sharing the database within `cache_ttl`. Unknown records are not cached, so
//! a client registered on another host is usable there at once.

use cached::{Cached, TimedSizedCache};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use super::ClientRecord;

/// Records kept per kind.
const CAPACITY: usize = 10_000;

/// The store's record caches.
#[derive(Debug)]
pub(super) struct Caches {
    pub clients: RecordCache<(String, String), ClientRecord>,
}

impl Caches {
    pub fn new(ttl: Duration) -> Caches {
        Caches {
            clients: RecordCache::new(ttl),
        }
    }
}

/// One kind of record; a zero TTL turns it off.
pub(super) struct RecordCache<K, V> {
    map: Option<Mutex<TimedSizedCache<K, V>>>,
}

impl<K, V> std::fmt::Debug for RecordCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordCache")
    }
}

impl<K: Hash + Eq + Clone, V: Clone> RecordCache<K, V> {
    fn new(ttl: Duration) -> Self {
        RecordCache {
            map: (!ttl.is_zero())
                .then(|| Mutex::new(TimedSizedCache::with_size_and_lifespan(CAPACITY, ttl))),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.as_ref()?;
        map.lock()
            .unwrap_or_else(|e| e.into_inner())
            .cache_get(key)
            .cloned()
    }

    pub fn put(&self, key: K, value: V) {
        if let Some(map) = &self.map {
            map.lock()
                .unwrap_or_else(|e| e.into_inner())
                .cache_set(key, value);
        }
    }

    pub fn forget(&self, key: &K) {
        if let Some(map) = &self.map {
            map.lock()
                .unwrap_or_else(|e| e.into_inner())
                .cache_remove(key);
        }
    }
}
