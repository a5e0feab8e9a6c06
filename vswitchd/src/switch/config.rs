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
    /// How much each bridge may hold.
    pub capacity: Capacity,
}

/// How many bridges the switch, and how many flows, meters, groups and ports each bridge,
/// may hold (`--max-*`). Every change is checked against them in its transaction: a write
/// that would pass one is refused (`RESOURCE_EXHAUSTED`, naming the limit) and changes
/// nothing. What the store already holds is restored whatever these say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Flows in one table.
    pub flows_per_table: usize,
    /// Flows in all tables of one bridge.
    pub flows_per_bridge: usize,
    /// Meters per bridge.
    pub meters_per_bridge: usize,
    /// Groups per bridge.
    pub groups_per_bridge: usize,
    /// Ports per bridge.
    pub ports_per_bridge: usize,
    /// Bridges (each has its own poll and housekeeping threads).
    pub bridges: usize,
}

impl Default for Capacity {
    /// A million flows (about 2 GiB: the classifier keeps about 2 KiB per flow), 65,536
    /// meters and groups (as many as Open vSwitch's userspace datapath takes meters),
    /// 4,096 ports, 256 bridges.
    fn default() -> Self {
        Capacity {
            flows_per_table: 1_000_000,
            flows_per_bridge: 1_000_000,
            meters_per_bridge: 65_536,
            groups_per_bridge: 65_536,
            ports_per_bridge: 4_096,
            bridges: 256,
        }
    }
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
            capacity: Capacity::default(),
            group_commit: Duration::from_millis(20),
        }
    }
}
