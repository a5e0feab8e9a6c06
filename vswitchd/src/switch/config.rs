//! The daemon's tunables: what `vswitchd`'s flags set ([`SwitchConfig`], [`DpdkSettings`]).
//!
//! What: plain data, cloned into every bridge; nothing here refers to the rest of the switch.

use std::time::Duration;

use datapath::pipeline::DatapathConfig;

/// Tunables of the daemon.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// Datapath settings for every bridge.
    pub datapath: DatapathConfig,
    /// Longest a poll thread sleeps when idle (0: busy polling).
    pub pmd_max_sleep: Duration,
    /// CPUs poll threads are pinned to, round-robin over bridges (empty: not pinned).
    pub pmd_cpus: Vec<usize>,
    /// How often timeouts, MAC aging and MAC events are processed.
    pub housekeeping_period: Duration,
    /// Capacity of in-memory ports' rings.
    pub memory_port_capacity: usize,
    /// The tunnel endpoints of the whole switch (shared by clones of this configuration).
    pub tunnels: crate::tunnel::Registry,
    /// How DPDK's environment starts (at the first `dpdk` port, or at start-up).
    pub dpdk: DpdkSettings,
    /// Longest a deferred store commit (OpenFlow flow changes) waits before the group
    /// commit that makes it durable starts.
    pub group_commit: Duration,
}

/// The daemon's DPDK settings (`--dpdk-*`); used only by builds with the `dpdk` feature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DpdkSettings {
    /// How the EAL starts.
    pub eal: datapath::port::EalConfig,
    /// Start DPDK when the daemon starts rather than at the first `dpdk` port.
    pub init_at_start: bool,
}

impl DpdkSettings {
    /// Starts DPDK's environment (once per process; later calls return the first outcome).
    #[cfg(feature = "dpdk")]
    pub fn init(&self) -> Result<(), datapath::port::DpdkError> {
        datapath::port::dpdk::eal_init(&self.eal)
    }
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            datapath: DatapathConfig::default(),
            pmd_max_sleep: Duration::from_micros(1000),
            pmd_cpus: Vec::new(),
            housekeeping_period: Duration::from_millis(100),
            memory_port_capacity: 4096,
            tunnels: crate::tunnel::Registry::default(),
            dpdk: DpdkSettings::default(),
            group_commit: Duration::from_millis(20),
        }
    }
}
