//! How DPDK's environment (EAL) is to be started: plain configuration, compiled in every
//! build so the daemon can hold and parse it whether or not the `dpdk` feature is on
//! (`port::dpdk::eal_init` uses it).

/// How the daemon starts DPDK's environment (EAL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalConfig {
    /// EAL's `-l`: the cores EAL itself may use (its service threads; the poll threads are
    /// the switch's own). Default `0`.
    pub lcores: String,
    /// `--socket-mem` in MiB per NUMA node (e.g. `512`), or none for DPDK's default.
    pub socket_mem: Option<String>,
    /// `--in-memory`: no shared files under `/dev/hugepages`, no secondary processes
    /// (default on).
    pub in_memory: bool,
    /// `--file-prefix` (default `vswitchd-PID`).
    pub file_prefix: Option<String>,
    /// More EAL arguments, as given.
    pub extra: Vec<String>,
    /// Mbufs in the shared mempool (0: the default, 16384).
    pub n_mbufs: u32,
}

impl Default for EalConfig {
    fn default() -> Self {
        EalConfig {
            lcores: "0".into(),
            socket_mem: None,
            in_memory: true,
            file_prefix: None,
            extra: Vec::new(),
            n_mbufs: 0,
        }
    }
}

impl EalConfig {
    /// The EAL command line (program name first).
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["vswitchd".to_string(), "-l".into(), self.lcores.clone()];
        if let Some(m) = &self.socket_mem {
            a.push("--socket-mem".into());
            a.push(m.clone());
        }
        if self.in_memory {
            a.push("--in-memory".into());
        }
        a.push("--file-prefix".into());
        a.push(
            self.file_prefix
                .clone()
                .unwrap_or_else(|| format!("vswitchd-{}", std::process::id())),
        );
        a.extend(self.extra.iter().cloned());
        a
    }
}
