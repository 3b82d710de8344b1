//! Failed super admin logins per client address, bounded per minute
//! (`[super_admin] max_failed_logins_per_minute`).
//!
//! The super admin's password is checked with argon2, which is slow on purpose: unthrottled,
//! one address could both guess passwords and burn the server's CPU. After the limit, an
//! address's logins are refused without checking the password until its minute is over, so a
//! guesser gets a handful of tries per minute and costs a handful of hashes. The limit is per
//! address (behind a proxy: the proxy's), so one guesser does not lock out the operator
//! elsewhere. The table holds only addresses that failed within the last minute and is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; beyond (a distributed guesser), new addresses are not tracked.
const MAX_ADDRESSES: usize = 100_000;

pub struct LoginThrottle {
    /// Failures allowed per address per window; 0 = no limit.
    limit: u32,
    /// Per address: when its window began, and its failures in it.
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl LoginThrottle {
    pub fn new(limit: u32) -> LoginThrottle {
        LoginThrottle {
            limit,
            failures: Mutex::default(),
        }
    }

    /// `Some(seconds to wait)` when `peer` has used up its failures for now.
    pub fn blocked(&self, peer: Option<IpAddr>, now: Instant) -> Option<u64> {
        let peer = peer.filter(|_| self.limit > 0)?;
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = failures.get(&peer)?;
        let left = WINDOW
            .checked_sub(now.duration_since(*start))
            .filter(|left| !left.is_zero())?;
        (*count >= self.limit).then(|| left.as_secs().max(1))
    }

    /// Counts a failed login from `peer`.
    pub fn failed(&self, peer: Option<IpAddr>, now: Instant) {
        let Some(peer) = peer.filter(|_| self.limit > 0) else {
            return;
        };
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&peer) {
            failures.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if failures.len() >= MAX_ADDRESSES {
                return;
            }
        }
        let entry = failures.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// A successful login from `peer` clears its failures.
    pub fn succeeded(&self, peer: Option<IpAddr>) {
        if let Some(peer) = peer {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            failures.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn blocks_an_address_after_its_limit_until_the_minute_is_over() {
        let throttle = LoginThrottle::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.blocked(ip("10.0.0.1"), t0), None);
            throttle.failed(ip("10.0.0.1"), t0);
        }
        assert_eq!(throttle.blocked(ip("10.0.0.1"), t0), Some(60));
        assert_eq!(
            throttle.blocked(ip("10.0.0.1"), t0 + Duration::from_secs(45)),
            Some(15)
        );
        assert_eq!(throttle.blocked(ip("10.0.0.2"), t0), None, "per address");
        let later = t0 + WINDOW;
        assert_eq!(throttle.blocked(ip("10.0.0.1"), later), None);
        throttle.failed(ip("10.0.0.1"), later);
        assert_eq!(
            throttle.blocked(ip("10.0.0.1"), later),
            None,
            "a new window"
        );
    }

    #[test]
    fn success_clears_and_zero_means_no_limit() {
        let throttle = LoginThrottle::new(1);
        let now = Instant::now();
        throttle.failed(ip("::1"), now);
        assert!(throttle.blocked(ip("::1"), now).is_some());
        throttle.succeeded(ip("::1"));
        assert_eq!(throttle.blocked(ip("::1"), now), None);

        let off = LoginThrottle::new(0);
        for _ in 0..100 {
            off.failed(ip("::1"), now);
        }
        assert_eq!(off.blocked(ip("::1"), now), None);
    }
}
