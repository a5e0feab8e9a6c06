//! Link watching: kernel ports whose interface went away or came back, tunnel ports whose
//! endpoint went or appeared, and ports that know their own link state.
//!
//! A lost port is swapped for a placeholder that drops what is sent to it (counted as its
//! `tx_dropped`) and reported down; a returning one is reopened from its specification and
//! reported up. The configuration does not change, so the store is not touched.

use std::collections::BTreeMap;
use std::sync::Arc;

use datapath::pipeline::Datapath;
use datapath::port::{MemPort, Port};
use datapath::types::PortNo;
use proto::v1::{self, stream_message_response as smr};

use super::Switch;
use super::config::SwitchConfig;
use super::model::{Bridge, PortState, add_stats};
use super::ports::open_port;

impl Switch {
    /// Notices kernel ports whose interface disappeared (or was re-created: a new index),
    /// tunnel ports whose endpoint was removed, ports that are down while an interface of
    /// their name (or an endpoint) exists again, and ports that report their own link
    /// (vhost-user). Appends a port-status event for each change to `events`.
    pub(super) fn watch_links(
        &self,
        bridge: &str,
        b: &mut Bridge,
        events: &mut Vec<(String, smr::Update)>,
    ) {
        let mut changed = Vec::new();
        for (pname, p) in b.ports.iter_mut() {
            if p.is_kernel() {
                check_kernel_port(&self.config, bridge, pname, p, &b.dp, &mut changed);
            } else if follow_own_link(bridge, pname, p) {
                changed.push(p.desc.clone());
            }
        }
        for desc in changed {
            events.push((
                bridge.to_string(),
                smr::Update::PortStatus(v1::PortStatus {
                    bridge: bridge.to_string(),
                    reason: v1::PortStatusReason::Modify as i32,
                    port: Some(desc),
                }),
            ));
        }
    }

    /// Brings every bridge's tunnel ports in line with the endpoints at once (an endpoint was
    /// added or removed) rather than at the next housekeeping check; returns the port-status
    /// events to send.
    pub(super) fn follow_endpoints(
        &self,
        bridges: &mut BTreeMap<String, Bridge>,
    ) -> Vec<(String, smr::Update)> {
        let mut events = Vec::new();
        for (name, b) in bridges.iter_mut() {
            self.watch_links(name, b, &mut events);
        }
        events
    }
}

/// A port that knows its own link (a vhost-user port: a frontend connected, its queues
/// running) is reported as it says; true when that changed.
fn follow_own_link(bridge: &str, pname: &str, p: &mut PortState) -> bool {
    match p.port.link_up() {
        Some(up) if up != p.desc.link_up => {
            p.desc.link_up = up;
            // vhost-user: a frontend connected and its first queue pair running; dpdk: the
            // device's link.
            let ty = &p.desc.r#type;
            if up {
                tracing::info!(bridge, port = pname, "port is up: its {ty} link came up");
            } else {
                tracing::warn!(
                    bridge,
                    port = pname,
                    "port is down: its {ty} link went down"
                );
            }
            true
        }
        _ => false,
    }
}

/// Checks a kernel or tunnel port: down when its interface (or endpoint) is gone, reopened
/// when it is back. Pushes its description to `changed` at each change.
fn check_kernel_port(
    cfg: &SwitchConfig,
    bridge: &str,
    pname: &str,
    p: &mut PortState,
    dp: &Datapath,
    changed: &mut Vec<v1::PortDesc>,
) {
    let Some(kind) = p.kind() else { return };
    let ours = kind.is_own_device();
    // A tunnel port is down only while no endpoint exists for it (restored before its
    // endpoint's bridge); it comes up as soon as one does.
    let virt = kind.is_tunnel();
    // TAP devices the switch created may live in other namespaces: they are judged by
    // their descriptor; interfaces the switch attached to, by their index here.
    let now = if ours || virt {
        None
    } else {
        datapath::port::ifindex_of(pname)
    };
    // A tunnel port is lost when its endpoint's port was removed.
    let lost = if ours || virt {
        p.port.link_lost()
    } else {
        now.is_none() || now != p.port.ifindex()
    };
    if p.desc.link_up && lost && take_down(cfg, bridge, pname, p, dp, virt) {
        changed.push(p.desc.clone());
    }
    if !p.desc.link_up && (now.is_some() || ours || virt) && reopen(cfg, bridge, pname, p, dp) {
        changed.push(p.desc.clone());
    }
}

/// Swaps a lost port for a placeholder; true when done.
fn take_down(
    cfg: &SwitchConfig,
    bridge: &str,
    pname: &str,
    p: &mut PortState,
    dp: &Datapath,
    tunnel: bool,
) -> bool {
    let no = PortNo(p.desc.port_no);
    let placeholder = if tunnel {
        cfg.tunnels.placeholder(pname) as Arc<dyn Port>
    } else {
        Arc::new(MemPort::new(pname, 0)) as Arc<dyn Port>
    };
    if dp
        .transaction(|t| t.replace_port(no, Arc::clone(&placeholder)))
        .is_err()
    {
        return false;
    }
    let s = p.port.stats();
    add_stats(&mut p.stats_base, &s);
    p.port = placeholder;
    p.desc.link_up = false;
    p.link_resets += 1;
    // Stations behind it are unreachable now; they are learned again when they speak (a
    // re-created interface usually has a new address).
    dp.mac_table().flush_port(no);
    if tunnel {
        tracing::warn!(
            bridge,
            port = pname,
            "port is down: its tunnel endpoint is gone"
        );
    } else {
        tracing::warn!(bridge, port = pname, "port is down: its interface is gone");
    }
    true
}

/// Reopens a port that is down from its specification; true when it is up again.
fn reopen(cfg: &SwitchConfig, bridge: &str, pname: &str, p: &mut PortState, dp: &Datapath) -> bool {
    let Some(spec) = &p.spec else { return false };
    match open_port(pname, &spec.kind, cfg) {
        // A tunnel port still without an endpoint stays as it is.
        Ok((port, _)) if port.link_up() == Some(false) => false,
        Ok((port, _)) => {
            let no = PortNo(p.desc.port_no);
            if dp
                .transaction(|t| t.replace_port(no, Arc::clone(&port)))
                .is_err()
            {
                return false;
            }
            let s = p.port.stats();
            add_stats(&mut p.stats_base, &s);
            p.port = port;
            p.desc.link_up = true;
            p.reopen_failures = 0;
            tracing::info!(bridge, port = pname, "port is up again");
            true
        }
        Err(e) => {
            // Retried on every check; said less and less often.
            p.reopen_failures = p.reopen_failures.saturating_add(1);
            if p.reopen_failures.is_power_of_two() {
                tracing::warn!(
                    bridge,
                    port = pname,
                    attempts = p.reopen_failures,
                    "reopening the port failed: {e}"
                );
            }
            false
        }
    }
}
