//! The endpoint's neighbour table (its ARP cache): next-hop address to MAC, aged, and when
//! to ask again for one that is missing.
//!
//! Thread-safety: behind mutexes taken once per burst (by tunnel ports resolving a header)
//! or per ARP frame.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use parking_lot::Mutex;

/// How long a resolved neighbour is trusted, nanoseconds (as the kernel's default-ish).
pub const NEIGH_AGING_NS: u64 = 300_000_000_000;
/// Least time between two ARP requests for the same next hop.
const ARP_RETRY_NS: u64 = 100_000_000;

/// One resolved neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// When it was last confirmed (datapath nanoseconds).
    pub seen_ns: u64,
}

/// The endpoint's ARP cache: next-hop address to MAC, aged.
#[derive(Debug, Default)]
pub struct NeighTable {
    map: Mutex<HashMap<Ipv4Addr, Neighbour>>,
    asked: Mutex<HashMap<Ipv4Addr, u64>>,
}

impl NeighTable {
    /// The MAC of `ip` if resolved and fresh at `now_ns`.
    pub fn lookup(&self, ip: Ipv4Addr, now_ns: u64) -> Option<[u8; 6]> {
        self.map
            .lock()
            .get(&ip)
            .filter(|n| now_ns.saturating_sub(n.seen_ns) < NEIGH_AGING_NS)
            .map(|n| n.mac)
    }

    /// Records `ip` at `mac`.
    pub fn learn(&self, ip: Ipv4Addr, mac: [u8; 6], now_ns: u64) {
        self.map.lock().insert(
            ip,
            Neighbour {
                ip,
                mac,
                seen_ns: now_ns,
            },
        );
        self.asked.lock().remove(&ip);
    }

    /// True when an ARP request for `ip` should go out now (none in the last 100 ms).
    pub(super) fn should_ask(&self, ip: Ipv4Addr, now_ns: u64) -> bool {
        let mut asked = self.asked.lock();
        match asked.get(&ip) {
            Some(&t) if now_ns.saturating_sub(t) < ARP_RETRY_NS => false,
            _ => {
                asked.insert(ip, now_ns);
                true
            }
        }
    }

    /// Forgets entries older than the aging time.
    pub fn age(&self, now_ns: u64) {
        self.map
            .lock()
            .retain(|_, n| now_ns.saturating_sub(n.seen_ns) < NEIGH_AGING_NS);
    }

    /// Every entry, by address.
    pub fn entries(&self) -> Vec<Neighbour> {
        let mut v: Vec<Neighbour> = self.map.lock().values().copied().collect();
        v.sort_by_key(|n| n.ip);
        v
    }
}
