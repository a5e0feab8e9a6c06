//! Housekeeping, every `housekeeping_period`: flow timeouts (removed from the store too),
//! link checks, connection expiry, MAC aging, and learned/aged MAC events.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use proto::v1::{self, stream_message_response as smr};

use super::Switch;
use super::flows::absorb_removals;
use super::model::{Overlay, apply_overlay, write_overlay};
use crate::error::ApiError;

impl Switch {
    /// Expires flows (removing them from the store too), ages MAC entries, and reports
    /// learned and aged MACs.
    pub fn housekeeping(&self) {
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
        let mut bridges = self.bridges.lock();
        let mut events: Vec<(String, smr::Update)> = Vec::new();
        for (name, b) in bridges.iter_mut() {
            if tick.is_multiple_of(5) {
                self.watch_links(name, b, &mut events);
            }
            // Flow timeouts.
            let mut ov = Overlay::default();
            let res = b.dp.transaction(|txn| -> Result<(), ApiError> {
                let Some(cs) = txn.expire_flows() else {
                    return Err(ApiError::internal("nothing expired"));
                };
                absorb_removals(&mut ov, &cs, &b.flows, name);
                let mut tx = self.store_txn()?;
                write_overlay(&mut tx, name, &ov)?;
                tx.commit()?;
                Ok(())
            });
            if res.is_ok() {
                for e in std::mem::take(&mut ov.events) {
                    if let Some(u) = e.update {
                        events.push((name.clone(), u));
                    }
                }
                apply_overlay(b, ov);
            }
            // Connection expiry, in a bounded slice per period.
            b.dp.conntrack_maintain(16_384);
            // MAC aging and events.
            let now_s = (b.dp.now_ns() / 1_000_000_000) as u32;
            if tick.is_multiple_of(10) {
                // Aging has a resolution of seconds: sweeping once a second is enough.
                b.dp.mac_table().sweep(now_s, |_| {});
                for ep in self.config.tunnels.live() {
                    ep.age_neighbours();
                }
            }
            if self.events.receiver_count() == 0 {
                b.macs_seen.clear();
                continue;
            }
            let now: HashSet<(u16, [u8; 6], u32)> =
                b.dp.mac_table()
                    .entries(now_s)
                    .into_iter()
                    .map(|e| (e.vlan.0, e.mac.0, e.port.0))
                    .collect();
            for &(vlan, mac, port) in now.difference(&b.macs_seen) {
                events.push((
                    name.clone(),
                    smr::Update::MacLearned(v1::MacLearned {
                        bridge: name.clone(),
                        vlan: vlan as u32,
                        mac: mac.to_vec(),
                        port,
                        port_name: b.port_name(port),
                    }),
                ));
            }
            for &(vlan, mac, port) in b.macs_seen.difference(&now) {
                events.push((
                    name.clone(),
                    smr::Update::MacAged(v1::MacAged {
                        bridge: name.clone(),
                        vlan: vlan as u32,
                        mac: mac.to_vec(),
                        port,
                        port_name: b.port_name(port),
                    }),
                ));
            }
            b.macs_seen = now;
        }
        drop(bridges);
        for (name, u) in events {
            self.emit(&name, u);
        }
    }
}
