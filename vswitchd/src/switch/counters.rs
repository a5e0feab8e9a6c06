//! Counter reads for the metrics collector that skip the entry lists: the MAC table's
//! counters without its entries, and the tunnel endpoints' drop counters without their
//! neighbour tables.
//!
//! Why not [`Switch::mac_table`] and [`Switch::tunnel_neighbours`]: the first copies and
//! sorts every entry (too much work every scrape), the second reads each endpoint's
//! neighbour table under the mutex its tunnel ports take when they re-resolve a next hop.
//! Everything read here is an atomic counter.
//!
//! Thread-safety: takes the switch lock (never taken by a poll thread) and the tunnel
//! registry's list lock (daemon-only), nothing else.

use datapath::tunnel::TunnelDrop;
use proto::v1;

use super::Switch;
use crate::error::ApiError;

/// One tunnel endpoint's drops, by reason (every reason, zeros included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelDrops {
    /// The endpoint's name.
    pub endpoint: String,
    /// `(reason, packets)` for every [`TunnelDrop`] reason.
    pub drops: Vec<(&'static str, u64)>,
}

impl Switch {
    /// The MAC table's counters and size (`entries` counts slots in use, including entries
    /// past their age that the next sweep, within a second, removes).
    pub fn mac_table_stats(&self, bridge: &str) -> Result<v1::MacTableStats, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let t = b.dp.mac_table();
        let c = t.counts();
        Ok(v1::MacTableStats {
            entries: t.len() as u64,
            capacity: t.capacity() as u64,
            learned: c.learned,
            moved: c.moved,
            evicted: c.evicted,
            aged: c.aged,
            tunnel_sources_full: c.tun_sources_full,
        })
    }

    /// Drop counters of every live tunnel endpoint, by name.
    pub fn tunnel_drops(&self) -> Vec<TunnelDrops> {
        let mut out: Vec<TunnelDrops> = self
            .config
            .tunnels
            .live()
            .iter()
            .map(|ep| TunnelDrops {
                endpoint: ep.name.clone(),
                drops: TunnelDrop::ALL
                    .iter()
                    .map(|r| (r.name(), ep.drops.get(*r)))
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        out
    }
}
