//! Reconciliation: the plugin's state against the switch's ports and the host's
//! interfaces, on start and then continuously.
//!
//! On start (and every [`FULL_PERIOD`]), for every network and endpoint in the state the
//! switch gets its ports back (if it lost them) and the host its veth pairs and gateway
//! addresses; every switch port and host interface named with the plugin's prefix that
//! the state does not list is removed (what a crash between two steps left behind), and so
//! are masquerade rules of networks that are gone; the publishing flows (`crate::publish`)
//! are made to match the state.
//!
//! Between full passes, every [`QUICK_PERIOD`] the gateway interfaces are checked: a
//! restarted switch re-creates its `internal` ports as new devices without addresses, and
//! the host must reach its containers again within a second or two.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::driver::{Driver, DriverError};
use crate::host;

/// How often gateway interfaces are checked.
pub const QUICK_PERIOD: Duration = Duration::from_millis(250);
/// How often everything is reconciled.
pub const FULL_PERIOD: Duration = Duration::from_secs(5);

/// What one full pass did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Networks' gateway ports and endpoints' ports that could not be made to match the
    /// state (each is logged; the next pass tries again).
    pub failed: Vec<String>,
    /// Switch ports and host interfaces removed as leftovers.
    pub removed: Vec<String>,
}

impl Driver {
    /// The names every network and endpoint of the state uses.
    fn expected_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for n in self.state.networks.values() {
            names.extend(n.gateway_port.clone());
        }
        for e in self.state.endpoints.values() {
            names.insert(e.port.clone());
            names.insert(e.inner.clone());
        }
        names
    }

    /// One full pass. Stops at the first switch error (the switch is down: nothing else
    /// can be checked) but goes on past a single network or endpoint that fails.
    pub async fn reconcile(&mut self) -> Result<Report, DriverError> {
        let mut report = Report::default();
        self.switch.ping().await?;
        let mut bridges: BTreeSet<String> = BTreeSet::from([self.cfg.bridge.clone()]);
        // The default bridge exists from the start, so `flowctl show` finds it.
        self.switch.ensure_bridge(&self.cfg.bridge).await?;
        let networks: Vec<_> = self
            .state
            .networks
            .iter()
            .map(|(i, n)| (i.clone(), n.clone()))
            .collect();
        for (id, net) in &networks {
            bridges.insert(net.options.bridge.clone());
            self.switch.ensure_bridge(&net.options.bridge).await?;
            if let Err(e) = self.apply_network(id, net).await {
                tracing::warn!(network = %id, "reconcile: {e}");
                report.failed.extend(net.gateway_port.clone());
            }
        }
        let endpoints: Vec<_> = self
            .state
            .endpoints
            .iter()
            .map(|(i, e)| (i.clone(), e.clone()))
            .collect();
        for (eid, ep) in &endpoints {
            let Some(net) = self.state.networks.get(&ep.network).cloned() else {
                continue;
            };
            if let Err(e) = self.apply_endpoint(&net, ep, false).await {
                tracing::warn!(endpoint = %eid, "reconcile: {e}");
                report.failed.push(ep.port.clone());
            }
        }
        for b in &bridges {
            if let Err(e) = self.sync_published(b).await {
                tracing::warn!(bridge = %b, "reconcile: publishing flows: {e}");
            }
        }
        match self.prune_uplinks().await {
            Ok(r) => report.removed.extend(r),
            Err(e) => tracing::warn!("reconcile: uplinks: {e}"),
        }
        let expected = self.expected_names();
        for b in &bridges {
            let ports = match self.switch.ports(b).await {
                Ok(p) => p,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            for p in ports {
                if self.cfg.prefix.owns(&p.name) && !expected.contains(&p.name) {
                    self.switch.del_port(b, &p.name).await?;
                    report.removed.push(p.name);
                }
            }
        }
        for name in host::links(|n| self.cfg.prefix.owns(n) && !expected.contains(n)) {
            if let Err(e) = host::delete_link(&name).await {
                tracing::warn!("reconcile: {e}");
            } else {
                report.removed.push(name);
            }
        }
        if self.cfg.iptables {
            let keep: BTreeSet<String> = self
                .state
                .networks
                .iter()
                .filter(|(_, n)| n.gateway_port.is_some())
                .map(|(i, _)| i.to_string())
                .collect();
            if let Err(e) =
                host::masquerade_prune(self.cfg.prefix.as_str(), |n| keep.contains(n)).await
            {
                tracing::warn!("reconcile: {e}");
            }
        }
        if !report.removed.is_empty() {
            tracing::info!(removed = ?report.removed, "reconcile removed leftovers");
        }
        Ok(report)
    }

    /// The quick check: re-applies every network whose gateway interface is missing or
    /// is a new device.
    pub async fn check_gateways(&mut self) -> Result<(), DriverError> {
        let stale: Vec<_> = self
            .state
            .networks
            .iter()
            .filter(|(_, n)| {
                n.gateway_port.as_ref().is_some_and(|gw| {
                    let now = host::ifindex(gw);
                    now.is_none() || now != self.gw_ifindex.get(gw).copied()
                })
            })
            .map(|(i, n)| (i.clone(), n.clone()))
            .collect();
        for (id, net) in stale {
            self.apply_network(&id, &net).await?;
            tracing::info!(network = %id, "gateway interface restored");
        }
        Ok(())
    }
}

/// Runs the periodic reconciliation until the process ends.
pub async fn watch(driver: Arc<Mutex<Driver>>) {
    let mut last_full = Instant::now();
    let mut switch_down = false;
    loop {
        tokio::time::sleep(QUICK_PERIOD).await;
        let mut d = driver.lock().await;
        let full = last_full.elapsed() >= FULL_PERIOD;
        let r = if full {
            last_full = Instant::now();
            d.reconcile().await.map(|_| ())
        } else {
            d.check_gateways().await
        };
        drop(d);
        match r {
            Ok(()) if switch_down => {
                switch_down = false;
                tracing::info!("the switch answers again");
            }
            Ok(()) => {}
            Err(e) if !switch_down => {
                switch_down = true;
                tracing::warn!("reconcile: {e}");
            }
            Err(_) => {}
        }
    }
}
