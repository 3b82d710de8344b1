//! Open connections per client address, bounded (`[server] max_connections_per_ip`).
//!
//! One address holding thousands of idle or slow connections would exhaust file descriptors
//! and memory for everyone else; a connection beyond the bound is closed as soon as it is
//! accepted, before any byte of it is read. The count is per IP address (not per port), and an
//! address's entry is removed when its last connection closes, so the map holds only the
//! addresses connected right now.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The client address of a request, as the connection loop saw it (a request extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub IpAddr);

/// Counts open connections per address.
#[derive(Clone)]
pub struct Peers {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_ip: usize,
}

/// One admitted connection; dropping it (when the connection ends) frees its place.
pub struct Admitted {
    peers: Peers,
    ip: IpAddr,
}

impl Peers {
    pub fn new(max_per_ip: usize) -> Peers {
        Peers {
            open: Arc::default(),
            max_per_ip,
        }
    }

    /// A place for a new connection from `ip`, unless it holds the most it may already.
    pub fn admit(&self, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(Admitted {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_each_address_and_frees_places_on_drop() {
        let peers = Peers::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = peers.admit(a).expect("first");
        let _second = peers.admit(a).expect("second");
        assert!(peers.admit(a).is_none(), "a third from one address");
        assert!(peers.admit(b).is_some(), "another address is not affected");
        drop(first);
        assert!(peers.admit(a).is_some(), "a place was freed");
    }

    #[test]
    fn forgets_addresses_without_connections() {
        let peers = Peers::new(1);
        let a: IpAddr = "::1".parse().unwrap();
        drop(peers.admit(a));
        assert!(peers.open.lock().unwrap().is_empty());
    }
}
