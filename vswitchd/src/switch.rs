//! The switch: bridges, their datapaths and poll threads, and every control operation the
//! API offers, made durable in the [`Store`] before it becomes visible.
//!
//! What: [`Switch`] holds one [`Bridge`] per bridge name. A bridge owns a
//! [`Datapath`], its ports, one poll thread, a packet-in forwarder, and the canonical API
//! message of every flow, meter and group it holds (what reads return, what the store keeps).
//!
//! How a change is made (`write`, `add_port`, ...): under the switch lock, the change is
//! staged on a draft datapath snapshot ([`Datapath::transaction`]), every resulting flow,
//! meter, group or port record is written in one store transaction, the store commits
//! (fsync), and only then is the draft published to the poll threads and the reply sent. A
//! refused or failed change leaves the datapath, the store and the daemon's maps untouched.
//!
//! Events (packet-in, flow-removed, port-status, MAC learned/aged) go to every stream
//! subscriber through one broadcast channel; a slow subscriber loses events (counted by the
//! channel) instead of slowing the switch.
//!
//! Thread-safety: `Switch` is `Send + Sync`; control operations serialise on one mutex that
//! poll threads never touch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use datapath::classifier::{BundleError, ChangeSet, FlowMod, FlowSpec, RemovedReason};
use datapath::flow::FlowKey;
use datapath::l2::{VlanMode, VlanSet};
use datapath::pipeline::{Datapath, DatapathConfig, PacketIn, PacketInReason, PacketOut};
use datapath::port::{MemPort, Port, PortStats};
use datapath::stats::DropReason;
use datapath::types::{GroupId, MeterId, PortNo, TableId, VlanId};
use parking_lot::Mutex;
use proto::flow_text;
use proto::v1::{self, entity, port_ref, stream_message_response as smr, update};
use tokio::sync::broadcast;

use crate::convert::{self, Context, DpMatch, PortNames, flow_ident};
use crate::error::ApiError;
use crate::store::{BridgeRecord, Store, StoreTxn};

/// Port types this build can create.
pub const PORT_TYPES: &[&str] = &[
    "memory",
    "tap",
    "internal",
    "afpacket",
    "afxdp",
    "tunnel-endpoint",
    "vxlan",
    "gre",
    "vhost-user",
    #[cfg(feature = "dpdk")]
    "dpdk",
];

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
        }
    }
}

/// One event for stream subscribers.
#[derive(Debug, Clone)]
pub struct Event {
    /// The bridge it happened on.
    pub bridge: String,
    /// The message as sent on the stream.
    pub msg: v1::StreamMessageResponse,
}

/// An opened port: the implementation, and the in-memory handle when it is one.
type Opened = (Arc<dyn Port>, Option<Arc<MemPort>>);

/// A port as the daemon holds it.
#[derive(Debug)]
struct PortState {
    desc: v1::PortDesc,
    port: Arc<dyn Port>,
    mem: Option<Arc<MemPort>>,
    added: Instant,
    /// Counters of the implementations this port had before the current one (its
    /// interface went away and came back): what the port reports adds them.
    stats_base: PortStats,
    /// Times the port lost its interface.
    link_resets: u64,
    /// Failed reopen attempts since the port went down (logged at 1, 2, 4, 8, ...).
    reopen_failures: u32,
}

impl PortState {
    fn stats(&self) -> PortStats {
        let s = self.port.stats();
        let b = &self.stats_base;
        PortStats {
            rx_packets: s.rx_packets + b.rx_packets,
            rx_bytes: s.rx_bytes + b.rx_bytes,
            rx_dropped: s.rx_dropped + b.rx_dropped,
            tx_packets: s.tx_packets + b.tx_packets,
            tx_bytes: s.tx_bytes + b.tx_bytes,
            tx_dropped: s.tx_dropped + b.tx_dropped,
            rx_errors: s.rx_errors + b.rx_errors,
            tx_errors: s.tx_errors + b.tx_errors,
        }
    }

    /// True for ports on kernel interfaces, which can disappear under the switch.
    fn is_kernel(&self) -> bool {
        matches!(
            self.desc.r#type.as_str(),
            "tap" | "internal" | "afpacket" | "afxdp" | "vxlan" | "gre"
        )
    }
}

/// A running bridge.
#[derive(Debug)]
struct Bridge {
    rec: v1::Bridge,
    dp: Datapath,
    ports: BTreeMap<String, PortState>,
    /// Canonical flow messages by identity (see [`flow_ident`]).
    flows: IdMap<v1::Flow>,
    meters: BTreeMap<u32, v1::Meter>,
    groups: BTreeMap<u32, v1::Group>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Poll threads, by index.
    pmds: Vec<PmdThread>,
    macs_seen: HashSet<(u16, [u8; 6], u32)>,
    meter_added: HashMap<u32, Instant>,
    group_added: HashMap<u32, Instant>,
}

impl Bridge {
    fn names(&self) -> impl Fn(&str) -> Option<u32> + '_ {
        |n: &str| self.ports.get(n).map(|p| p.desc.port_no)
    }

    fn port_name(&self, no: u32) -> String {
        self.ports
            .values()
            .find(|p| p.desc.port_no == no)
            .map(|p| p.desc.name.clone())
            .unwrap_or_default()
    }

    fn shutdown(&mut self) {
        for p in self.pmds.drain(..) {
            p.stop(&self.dp);
        }
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// One poll thread of a bridge.
#[derive(Debug)]
struct PmdThread {
    cpu: Option<usize>,
    stop: Arc<AtomicBool>,
    counters: Arc<datapath::stats::PmdCounters>,
    handle: JoinHandle<()>,
}

impl PmdThread {
    /// Starts poll thread `index` of `dp`, pinned to `cpu`.
    fn spawn(
        dp: &Datapath,
        bridge: &str,
        index: usize,
        cpu: Option<usize>,
        max_sleep: Duration,
    ) -> Result<PmdThread, ApiError> {
        let mut pmd = dp.new_pmd_at(index);
        let counters = pmd.counters();
        let stop = Arc::new(AtomicBool::new(false));
        let name = bridge.to_string();
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(format!("pmd{index}-{bridge}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    let mut set = nix::sched::CpuSet::new();
                    let pinned = set.set(cpu).and_then(|()| {
                        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
                    });
                    if let Err(e) = pinned {
                        eprintln!("vswitchd: poll thread of {name}: cannot pin to cpu {cpu}: {e}");
                    }
                }
                let counters = pmd.counters();
                let mut idle: u32 = 0;
                // Cycles, not the clock: reading the TSC costs a few nanoseconds per poll.
                let mut last = datapath::stats::cycles();
                while !stop2.load(Ordering::Relaxed) {
                    let got = pmd.poll_once();
                    let now = datapath::stats::cycles();
                    let spent = now.wrapping_sub(last);
                    last = now;
                    if got > 0 {
                        counters.busy_cycles.add(spent);
                        idle = 0;
                        continue;
                    }
                    counters.idle_cycles.add(spent);
                    idle = idle.saturating_add(1);
                    if idle <= 256 || max_sleep.is_zero() {
                        std::hint::spin_loop();
                        continue;
                    }
                    // A backing-off thread holds no snapshot: ports removed meanwhile are
                    // freed at once.
                    pmd.release_snapshot();
                    if pmd.rxqs_empty() {
                        // Nothing to poll: a thread without rx queues barely wakes.
                        std::thread::park_timeout(Duration::from_millis(20));
                    } else {
                        // Back off: 1 us doubling up to the maximum sleep, waiting on the
                        // ports' descriptors where they have them (traffic wakes the
                        // thread at once), else sleeping. Counted as idle time next round.
                        let exp = (idle - 256).min(20);
                        let d = Duration::from_micros(1u64 << exp).min(max_sleep);
                        if !pmd.wait_rx(d) {
                            std::thread::park_timeout(d);
                        }
                        // The wait is idle time, not part of the next (busy) poll.
                        let now = datapath::stats::cycles();
                        counters.idle_cycles.add(now.wrapping_sub(last));
                        last = now;
                    }
                }
            })
            .map_err(|e| ApiError::internal(format!("spawning poll thread: {e}")))?;
        Ok(PmdThread {
            cpu,
            stop,
            counters,
            handle,
        })
    }

    /// Stops the thread, waits for it, and forgets its counters.
    fn stop(self, dp: &Datapath) {
        self.stop.store(true, Ordering::Release);
        self.handle.thread().unpark();
        let _ = self.handle.join();
        dp.remove_pmd(&self.counters);
    }
}

/// Baseline of a poll thread's counters at the last `pmd-stats-clear`.
#[derive(Debug, Clone, Default)]
struct PmdBaseline {
    rx: u64,
    emc: u64,
    mf: u64,
    slow: u64,
    installed: u64,
    tx: u64,
    /// Cycles.
    busy: u64,
    idle: u64,
    batches: u64,
    drops: Vec<u64>,
}

/// The switch.
#[derive(Debug)]
pub struct Switch {
    store: Store,
    config: SwitchConfig,
    bridges: Mutex<BTreeMap<String, Bridge>>,
    events: broadcast::Sender<Arc<Event>>,
    pmd_baseline: Mutex<HashMap<(String, usize), PmdBaseline>>,
    stop: Arc<AtomicBool>,
    housekeeper: Mutex<Option<JoinHandle<()>>>,
    ticks: std::sync::atomic::AtomicU64,
    pmd_spawned: std::sync::atomic::AtomicU64,
}

/// Maps keyed by flow identity: a fast hash (the keys are not attacker-chosen per se, and
/// the table sizes are bounded by what the operator installs).
type IdMap<V> = HashMap<Vec<u8>, V, foldhash::fast::RandomState>;

/// Staged changes of one transaction, applied to the daemon's maps after the commit.
#[derive(Default)]
struct Overlay {
    flows: IdMap<Option<v1::Flow>>,
    meters: BTreeMap<u32, Option<v1::Meter>>,
    groups: BTreeMap<u32, Option<v1::Group>>,
    ports_added: Vec<(v1::PortDesc, Opened)>,
    ports_removed: Vec<String>,
    events: Vec<v1::StreamMessageResponse>,
}

impl Overlay {
    fn flow<'a>(&'a self, base: &'a IdMap<v1::Flow>, id: &[u8]) -> Option<&'a v1::Flow> {
        match self.flows.get(id) {
            Some(f) => f.as_ref(),
            None => base.get(id),
        }
    }

    fn is_empty(&self) -> bool {
        self.flows.is_empty()
            && self.meters.is_empty()
            && self.groups.is_empty()
            && self.ports_added.is_empty()
            && self.ports_removed.is_empty()
    }
}

fn rule_ident(r: &datapath::classifier::Rule) -> Vec<u8> {
    flow_ident(r.table, r.priority, &r.key, &r.mask)
}

fn removed_reason(r: RemovedReason) -> v1::FlowRemovedReason {
    match r {
        RemovedReason::IdleTimeout => v1::FlowRemovedReason::IdleTimeout,
        RemovedReason::HardTimeout => v1::FlowRemovedReason::HardTimeout,
        RemovedReason::Delete | RemovedReason::Replaced => v1::FlowRemovedReason::Delete,
    }
}

/// Replaces port names in instructions by numbers, so stored flows survive renames.
fn resolve_names(ins: &mut [v1::Instruction], names: &dyn PortNames) {
    for i in ins {
        if let Some(v1::instruction::Instruction::ApplyActions(a)) = &mut i.instruction {
            resolve_action_names(&mut a.actions, names);
        }
    }
}

fn resolve_action_names(actions: &mut [v1::Action], names: &dyn PortNames) {
    for a in actions {
        if let Some(v1::action::Action::Output(o)) = &mut a.action
            && let Some(v1::PortRef {
                port: Some(port_ref::Port::Name(n)),
            }) = &o.port
            && let Some(no) = names.number(n)
        {
            o.port = Some(v1::PortRef {
                port: Some(port_ref::Port::Number(no)),
            });
        }
    }
}

fn table_of(t: Option<u32>, field: &str) -> Result<Option<TableId>, ApiError> {
    match t {
        None | Some(255) => Ok(None),
        Some(t) if t <= TableId::MAX.0 as u32 => Ok(Some(TableId(t as u8))),
        Some(t) => Err(ApiError::invalid(
            field,
            format!("table {t} out of range 0..=253 (255: all)"),
        )),
    }
}

fn priority_of(p: u32, field: &str) -> Result<u16, ApiError> {
    u16::try_from(p)
        .map_err(|_| ApiError::invalid(field, format!("priority {p} out of range 0..=65535")))
}

/// What one update turned into.
enum Prepared {
    /// A flow add, ready for a bundle.
    Insert(Box<(FlowMod, v1::Flow)>),
    /// Anything else, applied on its own.
    Other,
}

impl Switch {
    /// Opens the switch on `store`: rebuilds every stored bridge, or writes the default
    /// configuration (bridge `br0`, table 0 = `actions=normal`) into a new store.
    pub fn start(store: Store, config: SwitchConfig) -> Result<Arc<Switch>, ApiError> {
        let (events, _) = broadcast::channel(4096);
        let created = store.created();
        let records = store.load()?;
        let sw = Arc::new(Switch {
            store,
            config,
            bridges: Mutex::new(BTreeMap::new()),
            events,
            pmd_baseline: Mutex::new(HashMap::new()),
            stop: Arc::new(AtomicBool::new(false)),
            housekeeper: Mutex::new(None),
            ticks: std::sync::atomic::AtomicU64::new(0),
            pmd_spawned: std::sync::atomic::AtomicU64::new(0),
        });
        for (name, rec) in records {
            sw.restore_bridge(rec).map_err(|e| {
                ApiError::internal(format!("restoring bridge {name} from the store: {e}"))
            })?;
        }
        if created {
            sw.add_bridge(v1::AddBridgeRequest {
                name: "br0".into(),
                ..Default::default()
            })?;
            let flow = flow_text::parse_flow("priority=0,actions=normal")
                .map_err(|e| ApiError::internal(e.to_string()))?;
            sw.write(v1::WriteRequest {
                bridge: "br0".into(),
                updates: vec![v1::Update {
                    r#type: update::Type::Insert as i32,
                    entity: Some(v1::Entity {
                        entity: Some(entity::Entity::Flow(flow)),
                    }),
                }],
                atomicity: v1::Atomicity::AllOrNone as i32,
            })?;
        }
        let weak = Arc::downgrade(&sw);
        let stop = Arc::clone(&sw.stop);
        let period = sw.config.housekeeping_period;
        let h = std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(period);
                    match weak.upgrade() {
                        Some(sw) => sw.housekeeping(),
                        None => return,
                    }
                }
            })
            .map_err(|e| ApiError::internal(format!("spawning housekeeping thread: {e}")))?;
        *sw.housekeeper.lock() = Some(h);
        Ok(sw)
    }

    /// Stops every thread (poll threads, housekeeping). The store stays consistent: every
    /// acknowledged change is already on disk.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.housekeeper.lock().take() {
            h.thread().unpark();
            let _ = h.join();
        }
        for b in self.bridges.lock().values_mut() {
            b.shutdown();
        }
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// The store's file.
    pub fn store_path(&self) -> std::path::PathBuf {
        self.store.path().to_path_buf()
    }

    fn emit(&self, bridge: &str, update: smr::Update) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(Arc::new(Event {
                bridge: bridge.to_string(),
                msg: v1::StreamMessageResponse {
                    update: Some(update),
                },
            }));
        }
    }

    /// The in-memory port `port` of `bridge` (tests and examples inject and collect frames
    /// through it).
    pub fn memory_port(&self, bridge: &str, port: &str) -> Option<Arc<MemPort>> {
        self.bridges
            .lock()
            .get(bridge)?
            .ports
            .get(port)?
            .mem
            .clone()
    }

    /// The datapath of `bridge` (tests inspect counters through it).
    pub fn datapath(&self, bridge: &str) -> Option<Datapath> {
        self.bridges.lock().get(bridge).map(|b| b.dp.clone())
    }

    // ---------------------------------------------------------------- bridges

    fn spawn_bridge(&self, rec: v1::Bridge) -> Result<Bridge, ApiError> {
        let (dp, packet_in) = Datapath::new(self.config.datapath.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let cpus = self.pmd_cpus_for(&rec);
        let mut pmds = Vec::new();
        dp.transaction(|t| -> Result<(), ApiError> {
            t.set_pmd_count(cpus.len());
            Ok(())
        })?;
        for (i, cpu) in cpus.iter().enumerate() {
            pmds.push(PmdThread::spawn(
                &dp,
                &rec.name,
                i,
                *cpu,
                self.config.pmd_max_sleep,
            )?);
        }
        {
            let events = self.events.clone();
            let name = rec.name.clone();
            let dp2 = dp.clone();
            let stop = Arc::clone(&stop);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("pktin-{}", rec.name))
                    .spawn(move || {
                        while !stop.load(Ordering::Acquire) {
                            match packet_in.recv_timeout(Duration::from_millis(50)) {
                                Ok(p) => {
                                    if events.receiver_count() > 0 {
                                        let msg = packet_in_msg(&name, &dp2, p);
                                        let _ = events.send(Arc::new(Event {
                                            bridge: name.clone(),
                                            msg,
                                        }));
                                    }
                                }
                                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                                Err(_) => return,
                            }
                        }
                    })
                    .map_err(|e| ApiError::internal(format!("spawning packet-in thread: {e}")))?,
            );
        }
        Ok(Bridge {
            rec,
            dp,
            ports: BTreeMap::new(),
            flows: IdMap::default(),
            meters: BTreeMap::new(),
            groups: BTreeMap::new(),
            stop,
            threads,
            pmds,
            macs_seen: HashSet::new(),
            meter_added: HashMap::new(),
            group_added: HashMap::new(),
        })
    }

    /// The CPUs of a bridge's poll threads, one thread each: its own `pmd_cpus`, else one
    /// thread on the daemon's default CPUs (taken in turn by successive bridges).
    fn pmd_cpus_for(&self, rec: &v1::Bridge) -> Vec<Option<usize>> {
        if !rec.pmd_cpus.is_empty() {
            return rec.pmd_cpus.iter().map(|c| Some(*c as usize)).collect();
        }
        let cpu = (!self.config.pmd_cpus.is_empty()).then(|| {
            let n = self.pmd_spawned.fetch_add(1, Ordering::Relaxed) as usize;
            self.config.pmd_cpus[n % self.config.pmd_cpus.len()]
        });
        vec![cpu]
    }

    /// Notices kernel ports whose interface disappeared (or was re-created: a new index)
    /// and ports that are down while an interface of their name exists again. A lost port
    /// is swapped for a placeholder that drops what is sent to it (counted as its
    /// `tx_dropped`) and reported down; a returning one is reopened with its stored options
    /// and reported up. The configuration does not change, so the store is not touched.
    fn watch_links(&self, bridge: &str, b: &mut Bridge, events: &mut Vec<(String, smr::Update)>) {
        let mut changed = Vec::new();
        for (pname, p) in b.ports.iter_mut() {
            if !p.is_kernel() {
                // Ports that know their own link (a vhost-user port: a frontend connected,
                // its queues running) are reported as they say.
                if let Some(up) = p.port.link_up()
                    && up != p.desc.link_up
                {
                    p.desc.link_up = up;
                    eprintln!(
                        "vswitchd: bridge {bridge}: port {pname} is {}",
                        if up { "up" } else { "down" }
                    );
                    changed.push(p.desc.clone());
                }
                continue;
            }
            let ours = matches!(p.desc.r#type.as_str(), "tap" | "internal");
            // A VXLAN port is down only while no endpoint exists for it (restored before
            // its endpoint's bridge); it comes up as soon as one does.
            let virt = matches!(p.desc.r#type.as_str(), "vxlan" | "gre");
            let no = PortNo(p.desc.port_no);
            // TAP devices the switch created may live in other namespaces: they are judged
            // by their descriptor; interfaces the switch attached to, by their index here.
            let now = if ours || virt {
                None
            } else {
                datapath::port::ifindex_of(pname)
            };
            let lost = if ours {
                p.port.link_lost()
            } else if virt {
                // Its endpoint's port was removed.
                p.port
                    .as_tunnel()
                    .is_some_and(|t| t.endpoint().is_retired())
            } else {
                now.is_none() || now != p.port.ifindex()
            };
            if p.desc.link_up && lost {
                let placeholder = if virt {
                    self.config.tunnels.placeholder(pname) as Arc<dyn Port>
                } else {
                    Arc::new(MemPort::new(pname, 0)) as Arc<dyn Port>
                };
                if b.dp
                    .transaction(|t| t.replace_port(no, Arc::clone(&placeholder)))
                    .is_ok()
                {
                    let s = p.port.stats();
                    add_stats(&mut p.stats_base, &s);
                    p.port = placeholder;
                    p.desc.link_up = false;
                    p.link_resets += 1;
                    // Stations behind it are unreachable now; they are learned again when
                    // they speak (a re-created interface usually has a new address).
                    b.dp.mac_table().flush_port(no);
                    if virt {
                        eprintln!(
                            "vswitchd: bridge {bridge}: port {pname} is down: its tunnel endpoint is gone"
                        );
                    } else {
                        eprintln!(
                            "vswitchd: bridge {bridge}: port {pname} is down: its interface is gone"
                        );
                    }
                    changed.push(p.desc.clone());
                }
            }
            if !p.desc.link_up && (now.is_some() || ours || virt) {
                match open_port(pname, &p.desc.r#type, &p.desc.options, &self.config) {
                    // A tunnel port still without an endpoint stays as it is.
                    Ok((port, _)) if port.link_up() == Some(false) => {}
                    Ok((port, _)) => {
                        if b.dp
                            .transaction(|t| t.replace_port(no, Arc::clone(&port)))
                            .is_ok()
                        {
                            let s = p.port.stats();
                            add_stats(&mut p.stats_base, &s);
                            p.port = port;
                            p.desc.link_up = true;
                            p.reopen_failures = 0;
                            eprintln!("vswitchd: bridge {bridge}: port {pname} is up again");
                            changed.push(p.desc.clone());
                        }
                    }
                    Err(e) => {
                        // Retried on every check; said less and less often.
                        p.reopen_failures = p.reopen_failures.saturating_add(1);
                        if p.reopen_failures.is_power_of_two() {
                            eprintln!(
                                "vswitchd: bridge {bridge}: port {pname}: reopening failed: {e}"
                            );
                        }
                    }
                }
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
    fn follow_endpoints(
        &self,
        bridges: &mut BTreeMap<String, Bridge>,
    ) -> Vec<(String, smr::Update)> {
        let mut events = Vec::new();
        for (name, b) in bridges.iter_mut() {
            self.watch_links(name, b, &mut events);
        }
        events
    }

    /// Sets a bridge's poll-thread CPUs (one thread per CPU; empty: the default) and spreads
    /// its rx queues over them. Threads whose CPU is unchanged keep running; the others
    /// start after (growing) or stop after (shrinking) the new assignment is published, so
    /// every rx queue always has a poller.
    pub fn set_pmd_cpus(&self, req: v1::SetPmdCpusRequest) -> Result<v1::Bridge, ApiError> {
        let usable = usable_cpus()?;
        for (i, c) in req.cpus.iter().enumerate() {
            if !usable.contains(&(*c as usize)) {
                return Err(ApiError::invalid(
                    format!("cpus[{i}]"),
                    format!("cpu {c} is not available to the daemon (usable: {usable:?})"),
                ));
            }
            if req.cpus[..i].contains(c) {
                return Err(ApiError::invalid(
                    format!("cpus[{i}]"),
                    format!("cpu {c} is listed twice"),
                ));
            }
        }
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let mut rec = b.rec.clone();
        rec.pmd_cpus = req.cpus.clone();
        let mut tx = self.store.begin()?;
        tx.put_bridge(&rec)?;
        tx.commit()?;
        let cpus = self.pmd_cpus_for(&rec);
        b.rec = rec;
        // Threads whose CPU changes are restarted: stop them first (their queues wait in
        // their rings for a moment), then publish, then start what is missing; threads
        // beyond the new count stop after the publish has moved their queues away.
        let mut slots: Vec<Option<PmdThread>> =
            std::mem::take(&mut b.pmds).into_iter().map(Some).collect();
        for (i, cpu) in cpus.iter().enumerate() {
            if let Some(slot) = slots.get_mut(i)
                && slot.as_ref().is_some_and(|p| p.cpu != *cpu)
                && let Some(p) = slot.take()
            {
                p.stop(&b.dp);
                self.pmd_baseline.lock().remove(&(req.bridge.clone(), i));
            }
        }
        b.dp.transaction(|t| -> Result<(), ApiError> {
            t.set_pmd_count(cpus.len());
            Ok(())
        })?;
        let mut pmds = Vec::new();
        for (i, cpu) in cpus.iter().enumerate() {
            match slots.get_mut(i).and_then(Option::take) {
                Some(p) => pmds.push(p),
                None => pmds.push(PmdThread::spawn(
                    &b.dp,
                    &req.bridge,
                    i,
                    *cpu,
                    self.config.pmd_max_sleep,
                )?),
            }
        }
        for (i, p) in slots.into_iter().enumerate() {
            if let Some(p) = p {
                p.stop(&b.dp);
                self.pmd_baseline.lock().remove(&(req.bridge.clone(), i));
            }
        }
        b.pmds = pmds;
        let mut r = b.rec.clone();
        r.ports = port_descs(b);
        Ok(r)
    }

    fn restore_bridge(&self, rec: BridgeRecord) -> Result<(), ApiError> {
        let mut b = self.spawn_bridge(rec.bridge.clone())?;
        let name = rec.bridge.name.clone();
        let cfg = &self.config;
        let now = Instant::now();
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            for p in rec.ports.values() {
                let mut desc = p.clone();
                let (port, mem) = match open_port(&p.name, &p.r#type, &p.options, cfg) {
                    Ok(x) => {
                        desc.link_up = x.0.link_up().unwrap_or(true);
                        if !desc.link_up && matches!(p.r#type.as_str(), "vxlan" | "gre") {
                            eprintln!(
                                "vswitchd: bridge {name}: port {} is down until its tunnel endpoint exists",
                                p.name
                            );
                        }
                        x
                    }
                    Err(e) => {
                        // The port stays configured (and in the store) but down: its
                        // interface may come back. Its traffic is dropped and counted.
                        eprintln!("vswitchd: bridge {name}: port {} is down: {e}", p.name);
                        desc.link_up = false;
                        let m = Arc::new(MemPort::new(&p.name, 0));
                        (m as Arc<dyn Port>, None)
                    }
                };
                let vlan = vlan_mode(&p.options)?;
                txn.add_port(PortNo(p.port_no), Arc::clone(&port), vlan)
                    .map_err(|e| ApiError::internal(format!("port {}: {e}", p.name)))?;
                let (policer, qos) = crate::qos::port_rate_control(&p.options, txn.now_ns())?;
                txn.set_port_qos(PortNo(p.port_no), policer, qos)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                b.ports.insert(
                    p.name.clone(),
                    PortState {
                        desc,
                        port,
                        mem,
                        added: now,
                        stats_base: PortStats::default(),
                        link_resets: 0,
                        reopen_failures: 0,
                    },
                );
            }
            let names = |n: &str| b.ports.get(n).map(|p| p.desc.port_no);
            for m in rec.meters.values() {
                txn.set_meter(convert::convert_meter(m, txn.now_ns())?)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            // Groups may chain: insert in id order, checking references only at the end.
            for g in rec.groups.values() {
                txn.set_group(convert::convert_group(g, &names)?)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            let mut mods = Vec::with_capacity(rec.flows.len());
            for (_, f) in &rec.flows {
                let (fm, _) = prepare_flow(f, &names, false)?;
                mods.push(fm);
            }
            txn.flow_mods(&mods)
                .map_err(|e| ApiError::internal(format!("stored flow {}: {}", e.index, e.error)))?;
            Ok(())
        })
        .inspect_err(|_| b.shutdown())?;
        for (id, f) in rec.flows {
            b.flows.insert(id, f);
        }
        for (id, m) in rec.meters {
            b.meter_added.insert(id, now);
            b.meters.insert(id, m);
        }
        for (id, g) in rec.groups {
            b.group_added.insert(id, now);
            b.groups.insert(id, g);
        }
        self.bridges.lock().insert(name, b);
        Ok(())
    }

    /// Adds a bridge.
    pub fn add_bridge(&self, req: v1::AddBridgeRequest) -> Result<v1::Bridge, ApiError> {
        if !flow_text::is_valid_port_name(&req.name) {
            return Err(ApiError::invalid(
                "name",
                format!(
                    "{:?} is not a valid bridge name (1-15 chars: letters, digits, - _ .)",
                    req.name
                ),
            ));
        }
        let mut bridges = self.bridges.lock();
        if bridges.contains_key(&req.name) {
            return Err(ApiError::exists(
                "name",
                format!("bridge {} already exists", req.name),
            ));
        }
        if v1::FailMode::try_from(req.fail_mode).is_err() {
            return Err(ApiError::invalid("fail_mode", "unknown fail mode"));
        }
        let rec = v1::Bridge {
            name: req.name.clone(),
            datapath_id: req.datapath_id.unwrap_or_else(|| default_dpid(&req.name)),
            fail_mode: req.fail_mode,
            n_tables: TableId::COUNT as u32,
            ports: Vec::new(),
            pmd_cpus: Vec::new(),
        };
        let mut tx = self.store.begin()?;
        tx.put_bridge(&rec)?;
        tx.commit()?;
        let b = self.spawn_bridge(rec.clone())?;
        bridges.insert(req.name, b);
        Ok(rec)
    }

    /// Removes a bridge with everything on it.
    pub fn del_bridge(&self, req: v1::DelBridgeRequest) -> Result<(), ApiError> {
        let mut bridges = self.bridges.lock();
        if !bridges.contains_key(&req.name) {
            if req.if_exists {
                return Ok(());
            }
            return Err(ApiError::not_found(
                "name",
                format!("no bridge {}", req.name),
            ));
        }
        let mut tx = self.store.begin()?;
        tx.del_bridge(&req.name)?;
        tx.commit()?;
        let mut events = Vec::new();
        if let Some(mut b) = bridges.remove(&req.name) {
            b.shutdown();
            if retire_endpoints(b.ports.values()) {
                events = self.follow_endpoints(&mut bridges);
            }
        }
        drop(bridges);
        for (name, u) in events {
            self.emit(&name, u);
        }
        Ok(())
    }

    /// Every bridge with its ports.
    pub fn list_bridges(&self) -> Vec<v1::Bridge> {
        self.bridges
            .lock()
            .values()
            .map(|b| {
                let mut r = b.rec.clone();
                r.ports = port_descs(b);
                r
            })
            .collect()
    }

    /// One bridge with its ports.
    pub fn get_bridge(&self, name: &str) -> Result<v1::Bridge, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(name)
            .ok_or_else(|| ApiError::not_found("name", format!("no bridge {name}")))?;
        let mut r = b.rec.clone();
        r.ports = port_descs(b);
        Ok(r)
    }

    // ---------------------------------------------------------------- ports

    /// Adds a port.
    pub fn add_port(&self, req: v1::AddPortRequest) -> Result<v1::PortDesc, ApiError> {
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let cfg = req
            .port
            .ok_or_else(|| ApiError::invalid("port", "port is required"))?;
        let mut ov = Overlay::default();
        let desc = b.dp.transaction(|txn| -> Result<v1::PortDesc, ApiError> {
            let desc = stage_add_port(txn, b, &cfg, &self.config, &mut ov)?;
            let mut tx = self.store.begin()?;
            tx.put_port(&req.bridge, &desc)?;
            tx.commit()?;
            Ok(desc)
        })?;
        let name = b.rec.name.clone();
        apply_overlay(b, ov);
        // A new endpoint brings up the tunnel ports waiting for one.
        let events = if desc.r#type == "tunnel-endpoint" {
            self.follow_endpoints(&mut bridges)
        } else {
            Vec::new()
        };
        drop(bridges);
        self.emit(
            &name,
            smr::Update::PortStatus(v1::PortStatus {
                bridge: name.clone(),
                reason: v1::PortStatusReason::Add as i32,
                port: Some(desc.clone()),
            }),
        );
        for (name, u) in events {
            self.emit(&name, u);
        }
        Ok(desc)
    }

    /// Removes a port (flows that name it stay, as in OpenFlow).
    pub fn del_port(&self, req: v1::DelPortRequest) -> Result<(), ApiError> {
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let Some(p) = b.ports.get(&req.name) else {
            if req.if_exists {
                return Ok(());
            }
            return Err(ApiError::not_found(
                "name",
                format!("bridge {} has no port {}", req.bridge, req.name),
            ));
        };
        let desc = p.desc.clone();
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            txn.del_port(PortNo(desc.port_no))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let mut tx = self.store.begin()?;
            tx.del_port(&req.bridge, &req.name)?;
            tx.commit()?;
            Ok(())
        })?;
        let mut events = Vec::new();
        if let Some(p) = b.ports.remove(&req.name)
            && retire_endpoints(std::iter::once(&p))
        {
            events = self.follow_endpoints(&mut bridges);
        }
        drop(bridges);
        self.emit(
            &req.bridge,
            smr::Update::PortStatus(v1::PortStatus {
                bridge: req.bridge.clone(),
                reason: v1::PortStatusReason::Delete as i32,
                port: Some(desc),
            }),
        );
        for (name, u) in events {
            self.emit(&name, u);
        }
        Ok(())
    }

    /// Every port of a bridge.
    pub fn list_ports(&self, bridge: &str) -> Result<Vec<v1::PortDesc>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        Ok(port_descs(b))
    }

    /// Sets or removes port options (VLAN `tag`/`trunks`).
    pub fn set_port_options(
        &self,
        req: v1::SetPortOptionsRequest,
    ) -> Result<v1::PortDesc, ApiError> {
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let p = b.ports.get(&req.name).ok_or_else(|| {
            ApiError::not_found(
                "name",
                format!("bridge {} has no port {}", req.bridge, req.name),
            )
        })?;
        let mut desc = p.desc.clone();
        for k in &req.remove {
            desc.options.remove(k);
        }
        for (k, v) in &req.options {
            desc.options.insert(k.clone(), v.clone());
        }
        let vlan = vlan_mode(&desc.options)?;
        check_options(&desc.r#type, &desc.options)?;
        // Rebuilt only when its options change: queued packets and bucket state survive
        // unrelated changes.
        let rate_control = if crate::qos::rate_control_options(&desc.options)
            != crate::qos::rate_control_options(&p.desc.options)
        {
            Some(crate::qos::port_rate_control(&desc.options, b.dp.now_ns())?)
        } else {
            None
        };
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            txn.set_port_vlan(PortNo(desc.port_no), vlan, true)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if let Some((policer, qos)) = rate_control {
                txn.set_port_qos(PortNo(desc.port_no), policer, qos)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            let mut tx = self.store.begin()?;
            tx.put_port(&req.bridge, &desc)?;
            tx.commit()?;
            Ok(())
        })?;
        if let Some(p) = b.ports.get_mut(&req.name) {
            p.desc = desc.clone();
        }
        drop(bridges);
        self.emit(
            &req.bridge,
            smr::Update::PortStatus(v1::PortStatus {
                bridge: req.bridge.clone(),
                reason: v1::PortStatusReason::Modify as i32,
                port: Some(desc.clone()),
            }),
        );
        Ok(desc)
    }

    // ---------------------------------------------------------------- write

    /// Applies a batch of updates. `ATOMICITY_ALL_OR_NONE`: the first refused update fails
    /// the whole request (error naming `updates[i]`) and nothing changes. Otherwise each
    /// refused update gets a status and the rest are applied. Either way the accepted
    /// changes become durable, then visible, together.
    pub fn write(&self, req: v1::WriteRequest) -> Result<v1::WriteResponse, ApiError> {
        let atomic = req.atomicity == v1::Atomicity::AllOrNone as i32;
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let mut statuses: Vec<v1::UpdateStatus> = Vec::new();
        let mut ov = Overlay::default();
        let bridge_name = req.bridge.clone();
        let result = b.dp.transaction(|txn| -> Result<(), ApiError> {
            let fail = |statuses: &mut Vec<v1::UpdateStatus>, i: usize, e: ApiError| {
                let e = e.under(&format!("updates[{i}]"));
                statuses.push(v1::UpdateStatus {
                    index: i as u32,
                    code: e.code as i32,
                    message: e.message.clone(),
                    field: e.field.clone(),
                });
                if atomic { Err(e) } else { Ok(()) }
            };
            let n = req.updates.len();
            let mut i = 0;
            while i < n {
                // Gather a run of flow inserts into one bundle.
                let mut run = Run::default();
                while i < n {
                    match prepare_update(&req.updates[i], b, txn, &ov) {
                        Ok(Prepared::Insert(x)) => {
                            let (fm, f) = *x;
                            run.push(i, fm, f);
                        }
                        Ok(Prepared::Other) if run.mods.is_empty() => {
                            if let Err(e) =
                                apply_update(&req.updates[i], b, txn, &mut ov, &self.config)
                            {
                                fail(&mut statuses, i, e)?;
                            }
                            i += 1;
                            break;
                        }
                        Ok(Prepared::Other) => break,
                        Err(e) => {
                            if run.mods.is_empty() {
                                fail(&mut statuses, i, e)?;
                                i += 1;
                            }
                            break;
                        }
                    }
                    i += 1;
                }
                let mut start = 0;
                while start < run.mods.len() {
                    match txn.flow_mods(&run.mods[start..]) {
                        Ok(cs) => {
                            run.absorb(&mut ov, &cs, start);
                            break;
                        }
                        Err(BundleError { index, error }) => {
                            let e = flow_mod_error(error);
                            fail(&mut statuses, run.index[start + index], e)?;
                            if index > 0 {
                                let cs = txn
                                    .flow_mods(&run.mods[start..start + index])
                                    .map_err(|e| ApiError::internal(e.to_string()))?;
                                run.absorb(&mut ov, &cs, start);
                            }
                            start += index + 1;
                        }
                    }
                }
            }
            if !ov.is_empty() {
                let mut tx = self.store.begin()?;
                write_overlay(&mut tx, &bridge_name, &ov)?;
                tx.commit()?;
            }
            Ok(())
        });
        result?;
        let events = std::mem::take(&mut ov.events);
        apply_overlay(b, ov);
        drop(bridges);
        for e in events {
            if let Some(u) = e.update {
                self.emit(&bridge_name, u);
            }
        }
        Ok(v1::WriteResponse { statuses })
    }

    // ---------------------------------------------------------------- read

    /// Reads flows, meters, groups or ports under the filters (none: every flow).
    pub fn read(&self, req: &v1::ReadRequest) -> Result<Vec<v1::ReadResponse>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(&req.bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {}", req.bridge)))?;
        let mut entities = Vec::new();
        let mut ports = Vec::new();
        let all = [v1::ReadFilter {
            filter: Some(v1::read_filter::Filter::Flows(v1::FlowFilter::default())),
        }];
        let filters = if req.filters.is_empty() {
            &all[..]
        } else {
            &req.filters[..]
        };
        let snap = b.dp.snapshot();
        let now = b.dp.now_ns();
        for (fi, f) in filters.iter().enumerate() {
            let at = format!("filters[{fi}]");
            match &f.filter {
                Some(v1::read_filter::Filter::Flows(ff)) => {
                    let sel = select_rules(b, &snap.pipeline, ff).map_err(|e| e.under(&at))?;
                    for r in sel {
                        let Some(stored) = b.flows.get(&rule_ident(&r)) else {
                            continue;
                        };
                        let mut f = stored.clone();
                        let c = r.stats.read();
                        f.stats = Some(v1::FlowStats {
                            duration_ns: now.saturating_sub(r.created_ns),
                            packet_count: c.packets,
                            byte_count: c.bytes,
                            idle_ns: now.saturating_sub(c.last_used_ns.max(r.created_ns)),
                        });
                        entities.push(v1::Entity {
                            entity: Some(entity::Entity::Flow(f)),
                        });
                    }
                }
                Some(v1::read_filter::Filter::Meters(mf)) => {
                    for m in b
                        .meters
                        .values()
                        .filter(|m| mf.id.is_none_or(|id| id == m.id))
                    {
                        entities.push(v1::Entity {
                            entity: Some(entity::Entity::Meter(m.clone())),
                        });
                    }
                }
                Some(v1::read_filter::Filter::Groups(gf)) => {
                    for g in b
                        .groups
                        .values()
                        .filter(|g| gf.id.is_none_or(|id| id == g.id))
                    {
                        entities.push(v1::Entity {
                            entity: Some(entity::Entity::Group(g.clone())),
                        });
                    }
                }
                Some(v1::read_filter::Filter::Ports(pf)) => {
                    let want = match pf.port.as_ref().and_then(|p| p.port.as_ref()) {
                        None => None,
                        Some(port_ref::Port::Number(n)) => Some(*n),
                        Some(port_ref::Port::Name(n)) => Some(b.names()(n).ok_or_else(|| {
                            ApiError::not_found(
                                format!("{at}.port"),
                                format!("no port named {n:?}"),
                            )
                        })?),
                        Some(port_ref::Port::Reserved(_)) => {
                            return Err(ApiError::invalid(
                                format!("{at}.port"),
                                "a reserved port has no description",
                            ));
                        }
                    };
                    ports.extend(
                        port_descs(b)
                            .into_iter()
                            .filter(|p| want.is_none_or(|w| w == p.port_no)),
                    );
                }
                None => return Err(ApiError::invalid(at, "empty filter")),
            }
        }
        // Stream in chunks so a large table does not make one huge message.
        let mut out: Vec<v1::ReadResponse> = entities
            .chunks(1024)
            .map(|c| v1::ReadResponse {
                entities: c.to_vec(),
                ports: Vec::new(),
            })
            .collect();
        if !ports.is_empty() || out.is_empty() {
            out.push(v1::ReadResponse {
                entities: Vec::new(),
                ports,
            });
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- packet-out

    /// Sends a controller's packet.
    pub fn packet_out(&self, po: &v1::PacketOut) -> Result<(), ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(&po.bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {}", po.bridge)))?;
        let names = b.names();
        let in_port = match po.in_port.as_ref().and_then(|p| p.port.as_ref()) {
            None => None,
            Some(port_ref::Port::Number(n)) if *n == convert::ofpp::CONTROLLER => None,
            Some(port_ref::Port::Reserved(r)) if *r == v1::ReservedPort::Controller as i32 => None,
            Some(port_ref::Port::Number(n)) => Some(PortNo(*n)),
            Some(port_ref::Port::Name(n)) => {
                Some(PortNo(names(n).ok_or_else(|| {
                    ApiError::not_found("in_port", format!("no port named {n:?}"))
                })?))
            }
            Some(port_ref::Port::Reserved(_)) => {
                return Err(ApiError::invalid("in_port", "must be a port or CONTROLLER"));
            }
        };
        if po.data.len() < 14 {
            return Err(ApiError::invalid(
                "data",
                "a packet-out needs at least an Ethernet header (14 bytes)",
            ));
        }
        let (actions, table) = convert::convert_actions(&po.actions, &names, Context::PacketOut)?;
        b.dp.packet_out(PacketOut {
            in_port,
            table,
            actions,
            frame: po.data.clone(),
        })
        .map_err(|e| match e {
            datapath::pipeline::DatapathError::FrameTooLong(_) => {
                ApiError::invalid("data", e.to_string())
            }
            e => ApiError::unavailable(e.to_string()),
        })
    }

    // ---------------------------------------------------------------- stats

    /// Port counters (all ports, or one).
    pub fn port_stats(
        &self,
        bridge: &str,
        port: Option<&v1::PortRef>,
    ) -> Result<Vec<v1::PortStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let want = stats_port(b, port, "counters")?;
        if let Some(w) = want
            && !b.ports.values().any(|p| p.desc.port_no == w)
        {
            return Err(ApiError::not_found("port", format!("no port {w}")));
        }
        let snap = b.dp.snapshot();
        let mut out: Vec<v1::PortStats> = b
            .ports
            .values()
            .filter(|p| want.is_none_or(|w| w == p.desc.port_no))
            .map(|p| {
                let mut s = p.stats();
                // Packets the ingress policer dropped never reached the pipeline: they
                // count as the port's receive drops, as in OVS.
                if let Some(pol) = snap
                    .port(PortNo(p.desc.port_no))
                    .and_then(|e| e.policer.as_ref())
                {
                    s.rx_dropped += pol.dropped.load(Ordering::Relaxed);
                }
                v1::PortStats {
                    port_no: p.desc.port_no,
                    name: p.desc.name.clone(),
                    rx_packets: s.rx_packets,
                    rx_bytes: s.rx_bytes,
                    rx_dropped: s.rx_dropped,
                    rx_errors: s.rx_errors,
                    tx_packets: s.tx_packets,
                    tx_bytes: s.tx_bytes,
                    tx_dropped: s.tx_dropped,
                    tx_errors: s.tx_errors,
                    duration_ns: p.added.elapsed().as_nanos() as u64,
                    link_resets: p.link_resets,
                    counters: {
                        let mut extra = Vec::new();
                        p.port.extra_stats(&mut extra);
                        extra.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                    },
                }
            })
            .collect();
        out.sort_by_key(|p| p.port_no);
        Ok(out)
    }

    /// Packets sent to tunnel ports without an endpoint, switch-wide.
    pub fn tunnel_no_endpoint_drops(&self) -> u64 {
        self.config
            .tunnels
            .no_endpoint
            .get(datapath::tunnel::TunnelDrop::NoEndpoint)
    }

    /// The tunnel endpoints with their neighbours and drop counters.
    pub fn tunnel_neighbours(&self) -> Vec<v1::TunnelEndpointInfo> {
        let mut out: Vec<v1::TunnelEndpointInfo> = self
            .config
            .tunnels
            .live()
            .iter()
            .map(|ep| v1::TunnelEndpointInfo {
                name: ep.name.clone(),
                ip: format!("{}/{}", ep.ip, ep.prefix),
                gw: ep.gw.map(|g| g.to_string()).unwrap_or_default(),
                mac: ep.mac.to_vec(),
                neighbours: ep
                    .neigh
                    .entries()
                    .iter()
                    .map(|n| v1::TunnelNeighbour {
                        ip: n.ip.to_string(),
                        mac: n.mac.to_vec(),
                        age_ms: ep.age_of(n) / 1_000_000,
                    })
                    .collect(),
                drops: datapath::tunnel::TunnelDrop::ALL
                    .iter()
                    .map(|r| (r.name().to_string(), ep.drops.get(*r)))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Egress queue counters of the ports with queues (`port` and `queue` narrow it).
    pub fn queue_stats(
        &self,
        bridge: &str,
        port: Option<&v1::PortRef>,
        queue: Option<u32>,
    ) -> Result<Vec<v1::QueueStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let want = stats_port(b, port, "queues")?;
        let snap = b.dp.snapshot();
        if let Some(w) = want
            && snap.port(PortNo(w)).is_none()
        {
            return Err(ApiError::not_found("port", format!("no port {w}")));
        }
        let mut out = Vec::new();
        for e in &snap.ports {
            if want.is_some_and(|w| w != e.no.0) {
                continue;
            }
            let Some(q) = &e.qos else { continue };
            for s in q.stats() {
                if queue.is_some_and(|id| id != s.id) {
                    continue;
                }
                out.push(v1::QueueStats {
                    port_no: e.no.0,
                    port_name: b.port_name(e.no.0),
                    queue_id: s.id,
                    tx_packets: s.tx_packets,
                    tx_bytes: s.tx_bytes,
                    tx_dropped: s.dropped,
                    backlog_packets: s.backlog,
                });
            }
        }
        if let Some(id) = queue
            && out.is_empty()
        {
            return Err(ApiError::not_found(
                "queue_id",
                format!("no port here has queue {id}"),
            ));
        }
        out.sort_by_key(|s| (s.port_no, s.queue_id));
        Ok(out)
    }

    /// Flow counts per table (tables holding flows).
    pub fn table_stats(&self, bridge: &str) -> Result<Vec<v1::TableStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let snap = b.dp.snapshot();
        Ok((0..TableId::COUNT as u8)
            .map(TableId)
            .filter_map(|t| {
                let n = snap.pipeline.table(t).len();
                (n > 0).then_some(v1::TableStats {
                    table_id: t.0 as u32,
                    active_count: n as u32,
                    lookup_count: 0,
                    matched_count: 0,
                })
            })
            .collect())
    }

    /// Meter counters.
    pub fn meter_stats(
        &self,
        bridge: &str,
        id: Option<u32>,
    ) -> Result<Vec<v1::MeterStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        if let Some(id) = id
            && !b.meters.contains_key(&id)
        {
            return Err(ApiError::not_found("meter_id", format!("no meter {id}")));
        }
        let snap = b.dp.snapshot();
        let mut out = Vec::new();
        for m in b.meters.keys().filter(|m| id.is_none_or(|i| i == **m)) {
            let Some(dm) = snap.meters.get(&MeterId(*m)) else {
                continue;
            };
            let flows = snap
                .pipeline
                .rules(None)
                .filter(|r| r.instructions.meter == Some(MeterId(*m)))
                .count();
            out.push(v1::MeterStats {
                meter_id: *m,
                flow_count: flows as u32,
                packet_in_count: dm.input.packets.load(Ordering::Relaxed),
                byte_in_count: dm.input.bytes.load(Ordering::Relaxed),
                duration_ns: b
                    .meter_added
                    .get(m)
                    .map_or(0, |t| t.elapsed().as_nanos() as u64),
                bands: dm
                    .band_counts
                    .iter()
                    .map(|c| v1::BandStats {
                        packet_count: c.packets.load(Ordering::Relaxed),
                        byte_count: c.bytes.load(Ordering::Relaxed),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Group reference counts (packet counters per group are not kept yet).
    pub fn group_stats(
        &self,
        bridge: &str,
        id: Option<u32>,
    ) -> Result<Vec<v1::GroupStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        if let Some(id) = id
            && !b.groups.contains_key(&id)
        {
            return Err(ApiError::not_found("group_id", format!("no group {id}")));
        }
        let snap = b.dp.snapshot();
        Ok(b.groups
            .values()
            .filter(|g| id.is_none_or(|i| i == g.id))
            .map(|g| v1::GroupStats {
                group_id: g.id,
                ref_count: snap
                    .pipeline
                    .rules(None)
                    .filter(|r| r.instructions.uses_group(GroupId(g.id)))
                    .count() as u32,
                packet_count: 0,
                byte_count: 0,
                duration_ns: b
                    .group_added
                    .get(&g.id)
                    .map_or(0, |t| t.elapsed().as_nanos() as u64),
                buckets: g
                    .buckets
                    .iter()
                    .map(|_| v1::BucketStats::default())
                    .collect(),
            })
            .collect())
    }

    /// The learned MAC table.
    pub fn mac_table(&self, bridge: &str) -> Result<Vec<v1::MacEntry>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let now_s = (b.dp.now_ns() / 1_000_000_000) as u32;
        let mut out: Vec<v1::MacEntry> =
            b.dp.mac_table()
                .entries(now_s)
                .into_iter()
                .map(|e| v1::MacEntry {
                    port: e.port.0,
                    port_name: b.port_name(e.port.0),
                    vlan: e.vlan.0 as u32,
                    mac: e.mac.0.to_vec(),
                    age_sec: e.age_s,
                    remote_ip: e.tun.map(|(ip, _)| ip.to_string()).unwrap_or_default(),
                    tun_id: e.tun.map_or(0, |(_, id)| id),
                })
                .collect();
        out.sort_by(|a, b| (a.port, a.vlan, &a.mac).cmp(&(b.port, b.vlan, &b.mac)));
        Ok(out)
    }

    /// Poll-thread counters (since the last clear).
    pub fn pmd_stats(&self) -> Vec<v1::PmdStats> {
        let bridges = self.bridges.lock();
        let base = self.pmd_baseline.lock();
        let mut out = Vec::new();
        for (name, b) in bridges.iter() {
            let snap = b.dp.snapshot();
            for (i, p) in b.pmds.iter().enumerate() {
                let c = &p.counters;
                let rxqs = snap
                    .rxqs
                    .get(i)
                    .map(|l| {
                        l.iter()
                            .map(|&(slot, q)| {
                                let no = snap.ports[slot as usize].no.0;
                                v1::PmdRxq {
                                    port_no: no,
                                    port_name: b.port_name(no),
                                    queue: q as u32,
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let z = PmdBaseline::default();
                let bl = base.get(&(name.clone(), i)).unwrap_or(&z);
                let mut drops = std::collections::HashMap::new();
                for r in DropReason::ALL {
                    let v = c
                        .drops_for(r)
                        .saturating_sub(bl.drops.get(r as usize).copied().unwrap_or(0));
                    if v > 0 {
                        drops.insert(r.name().to_string(), v);
                    }
                }
                let busy = c.busy_cycles.get().saturating_sub(bl.busy);
                let idle = c.idle_cycles.get().saturating_sub(bl.idle);
                out.push(v1::PmdStats {
                    pmd_id: out.len() as u32,
                    core_id: p.cpu.map(|c| c as u32),
                    bridge: name.clone(),
                    rxqs,
                    rx_packets: c.rx_packets.get().saturating_sub(bl.rx),
                    emc_hit: c.emc_hit.get().saturating_sub(bl.emc),
                    megaflow_hit: c.megaflow_hit.get().saturating_sub(bl.mf),
                    slow_path: c.slow_path.get().saturating_sub(bl.slow),
                    megaflow_installed: c.megaflow_installed.get().saturating_sub(bl.installed),
                    tx_packets: c.tx_packets.get().saturating_sub(bl.tx),
                    drops,
                    busy_ns: datapath::stats::cycles_to_ns(busy),
                    idle_ns: datapath::stats::cycles_to_ns(idle),
                    busy_cycles: busy,
                    idle_cycles: idle,
                    rx_batches: c.rx_batches.get().saturating_sub(bl.batches),
                });
            }
        }
        out
    }

    /// Resets what [`Switch::pmd_stats`] reports (the poll threads' own counters are never
    /// written by another thread: the daemon keeps a baseline instead).
    pub fn clear_pmd_stats(&self) {
        let bridges = self.bridges.lock();
        let mut base = self.pmd_baseline.lock();
        for (name, b) in bridges.iter() {
            for (i, p) in b.pmds.iter().enumerate() {
                let c = &p.counters;
                base.insert(
                    (name.clone(), i),
                    PmdBaseline {
                        rx: c.rx_packets.get(),
                        emc: c.emc_hit.get(),
                        mf: c.megaflow_hit.get(),
                        slow: c.slow_path.get(),
                        installed: c.megaflow_installed.get(),
                        tx: c.tx_packets.get(),
                        busy: c.busy_cycles.get(),
                        idle: c.idle_cycles.get(),
                        batches: c.rx_batches.get(),
                        drops: DropReason::ALL.iter().map(|r| c.drops_for(*r)).collect(),
                    },
                );
            }
        }
    }

    // ---------------------------------------------------------------- housekeeping

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
                let mut tx = self.store.begin()?;
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

impl Drop for Switch {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Retires the tunnel endpoints among `ports` (their ports were removed); true if any.
fn retire_endpoints<'a>(ports: impl IntoIterator<Item = &'a PortState>) -> bool {
    let mut any = false;
    for p in ports {
        if let Some(ep) = p.port.as_endpoint() {
            ep.retire();
            any = true;
        }
    }
    any
}

/// The port number a stats request names (`None`: every port); `what` says what reserved
/// ports lack, for the error.
fn stats_port(b: &Bridge, port: Option<&v1::PortRef>, what: &str) -> Result<Option<u32>, ApiError> {
    Ok(match port.and_then(|p| p.port.as_ref()) {
        None => None,
        Some(port_ref::Port::Number(n)) => Some(*n),
        Some(port_ref::Port::Name(n)) => Some(
            b.names()(n)
                .ok_or_else(|| ApiError::not_found("port", format!("no port named {n:?}")))?,
        ),
        Some(port_ref::Port::Reserved(_)) => {
            return Err(ApiError::invalid(
                "port",
                format!("reserved ports have no {what}"),
            ));
        }
    })
}

fn add_stats(base: &mut PortStats, s: &PortStats) {
    base.rx_packets += s.rx_packets;
    base.rx_bytes += s.rx_bytes;
    base.rx_dropped += s.rx_dropped;
    base.tx_packets += s.tx_packets;
    base.tx_bytes += s.tx_bytes;
    base.tx_dropped += s.tx_dropped;
    base.rx_errors += s.rx_errors;
    base.tx_errors += s.tx_errors;
}

/// The CPUs this process may run on.
fn usable_cpus() -> Result<Vec<usize>, ApiError> {
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(|e| ApiError::internal(format!("reading the CPU affinity: {e}")))?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect())
}

fn default_dpid(name: &str) -> u64 {
    // FNV-1a of the name, in the 48 bits a MAC-derived datapath id would use.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h & 0xffff_ffff_ffff
}

fn bridge_mut<'a>(
    bridges: &'a mut BTreeMap<String, Bridge>,
    name: &str,
) -> Result<&'a mut Bridge, ApiError> {
    bridges
        .get_mut(name)
        .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {name}")))
}

fn port_descs(b: &Bridge) -> Vec<v1::PortDesc> {
    let mut v: Vec<v1::PortDesc> = b.ports.values().map(|p| p.desc.clone()).collect();
    v.sort_by_key(|p| p.port_no);
    v
}

fn open_port(
    name: &str,
    ty: &str,
    options: &std::collections::HashMap<String, String>,
    cfg: &SwitchConfig,
) -> Result<Opened, ApiError> {
    match ty {
        "memory" => {
            let m = Arc::new(MemPort::new(name, cfg.memory_port_capacity));
            Ok((Arc::clone(&m) as Arc<dyn Port>, Some(m)))
        }
        // `internal`: the bridge's own interface in the host stack, as in OVS; here a TAP
        // device named after the port.
        "tap" | "internal" => {
            let t = datapath::port::TapPort::create(name).map_err(|e| match e {
                datapath::port::TapError::BadName(_) => {
                    ApiError::invalid("port.name", e.to_string())
                }
                e => ApiError::precondition("port", e.to_string()),
            })?;
            Ok((Arc::new(t) as Arc<dyn Port>, None))
        }
        "afpacket" => {
            let p = datapath::port::AfPacketPort::open(name).map_err(|e| match e {
                datapath::port::AfPacketError::NoSuchInterface(_) => {
                    ApiError::precondition("port.name", e.to_string())
                }
                e => ApiError::precondition("port", e.to_string()),
            })?;
            Ok((Arc::new(p) as Arc<dyn Port>, None))
        }
        "tunnel-endpoint" => {
            let ep = crate::tunnel::open_endpoint(name, options, &cfg.tunnels)?;
            Ok((
                Arc::new(datapath::tunnel::EndpointPort(ep)) as Arc<dyn Port>,
                None,
            ))
        }
        "vxlan" | "gre" => {
            let kind = if ty == "gre" {
                datapath::tunnel::TunnelKind::Gre
            } else {
                datapath::tunnel::TunnelKind::Vxlan
            };
            // Without an endpoint it can use, the port is configured but down (its
            // placeholder says so and counts `tunnel_no_endpoint`); it comes up when one
            // appears (`follow_endpoints`, housekeeping).
            match crate::tunnel::tunnel_config(kind, options, &cfg.tunnels) {
                Ok((config, ep)) => Ok((
                    Arc::new(datapath::tunnel::TunnelPort::new(name, config, ep)) as Arc<dyn Port>,
                    None,
                )),
                Err(crate::tunnel::OpenError::NoEndpoint(_)) => {
                    Ok((cfg.tunnels.placeholder(name) as Arc<dyn Port>, None))
                }
                Err(crate::tunnel::OpenError::Bad(e)) => Err(e),
            }
        }
        "afxdp" => {
            let mode = match options.get("xdp-mode") {
                Some(m) => m
                    .parse::<datapath::port::XdpMode>()
                    .map_err(|e| ApiError::invalid("port.options.xdp-mode", e))?,
                None => datapath::port::XdpMode::Auto,
            };
            let n_rxq = match options.get("n-rxq") {
                Some(n) => n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| ApiError::invalid("port.options.n-rxq", "must be 1..=64"))?,
                None => 1,
            };
            let p = datapath::port::AfXdpPort::open(name, n_rxq, mode).map_err(|e| match e {
                datapath::port::AfXdpError::NoSuchInterface(_) => {
                    ApiError::precondition("port.name", e.to_string())
                }
                e => ApiError::precondition("port", e.to_string()),
            })?;
            Ok((Arc::new(p) as Arc<dyn Port>, None))
        }
        "vhost-user" => {
            let path = options
                .get("path")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "port.options.path",
                        "a vhost-user port needs path=SOCKET (and mode=client|server)",
                    )
                })?;
            let mode = match options.get("mode") {
                Some(m) => m
                    .parse::<datapath::port::VhostMode>()
                    .map_err(|e| ApiError::invalid("port.options.mode", e))?,
                None => datapath::port::VhostMode::Client,
            };
            let n_rxq = n_rxq_option(options, datapath::port::vhost::MAX_QUEUE_PAIRS)?;
            let p =
                datapath::port::VhostUserPort::new(name, std::path::Path::new(path), mode, n_rxq)
                    .map_err(|e| match e {
                    datapath::port::VhostError::NoDirectory(_)
                    | datapath::port::VhostError::NotASocket(_) => {
                        ApiError::precondition("port.options.path", e.to_string())
                    }
                    e => ApiError::precondition("port", e.to_string()),
                })?;
            Ok((Arc::new(p) as Arc<dyn Port>, None))
        }
        #[cfg(feature = "dpdk")]
        "dpdk" => {
            let devargs = options
                .get("devargs")
                .map(|d| d.trim())
                .filter(|d| !d.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "port.options.devargs",
                        "a dpdk port needs devargs=PCI-ADDRESS or a virtual device (net_tap0,iface=NAME; net_af_xdp0,iface=NAME; net_ring0; net_null0; net_pcap0,...)",
                    )
                })?;
            let n_rxq = n_rxq_option(options, datapath::port::dpdk::MAX_RXQ)?;
            cfg.dpdk
                .init()
                .map_err(|e| ApiError::precondition("port", e.to_string()))?;
            let p = datapath::port::DpdkPort::new(name, devargs, n_rxq)
                .map_err(|e| ApiError::precondition("port.options.devargs", e.to_string()))?;
            Ok((Arc::new(p) as Arc<dyn Port>, None))
        }
        #[cfg(not(feature = "dpdk"))]
        "dpdk" => Err(ApiError::invalid(
            "port.type",
            "this vswitchd was built without DPDK: build it with `--features dpdk`",
        )),
        "" => Err(ApiError::invalid(
            "port.type",
            format!(
                "type is required; this build supports: {}",
                PORT_TYPES.join(", ")
            ),
        )),
        other => Err(ApiError::invalid(
            "port.type",
            format!(
                "unsupported port type {other:?}; this build supports: {}",
                PORT_TYPES.join(", ")
            ),
        )),
    }
}

/// The `n-rxq` option: 1 to `max`, default 1.
fn n_rxq_option(
    options: &std::collections::HashMap<String, String>,
    max: usize,
) -> Result<usize, ApiError> {
    match options.get("n-rxq") {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid("port.options.n-rxq", format!("must be 1..={max}"))),
        None => Ok(1),
    }
}

/// Options every port type accepts.
const COMMON_OPTIONS: &[&str] = &["tag", "trunks"];

fn check_options(
    ty: &str,
    options: &std::collections::HashMap<String, String>,
) -> Result<(), ApiError> {
    let own: &[&str] = match ty {
        "afxdp" => &["xdp-mode", "n-rxq"],
        "vhost-user" => &["path", "mode", "n-rxq"],
        "dpdk" => &["devargs", "n-rxq"],
        "tunnel-endpoint" => crate::tunnel::ENDPOINT_OPTIONS,
        "vxlan" => crate::tunnel::VXLAN_OPTIONS,
        "gre" => crate::tunnel::GRE_OPTIONS,
        _ => &[],
    };
    for k in options.keys() {
        if !COMMON_OPTIONS.contains(&k.as_str())
            && !own.contains(&k.as_str())
            && !crate::qos::is_rate_control_option(k)
        {
            return Err(ApiError::invalid(
                format!("port.options.{k}"),
                format!(
                    "unknown option for a {ty} port (known: {})",
                    COMMON_OPTIONS
                        .iter()
                        .chain(own)
                        .chain(crate::qos::RATE_CONTROL_OPTIONS)
                        .chain(&["queue.N"])
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn vlan_mode(options: &std::collections::HashMap<String, String>) -> Result<VlanMode, ApiError> {
    let vid = |s: &str, field: &str| -> Result<VlanId, ApiError> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|v| *v <= VlanId::MAX.0)
            .map(VlanId)
            .ok_or_else(|| ApiError::invalid(field, format!("{s:?} is not a VLAN id 0..=4095")))
    };
    match (options.get("tag"), options.get("trunks")) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "port.options.trunks",
            "a port is either an access port (tag) or a trunk (trunks), not both",
        )),
        (Some(t), None) => Ok(VlanMode::Access(vid(t, "port.options.tag")?)),
        (None, Some(list)) => {
            let mut allowed = VlanSet::default();
            for v in list.split(',').filter(|s| !s.trim().is_empty()) {
                allowed.insert(vid(v, "port.options.trunks")?);
            }
            Ok(VlanMode::Trunk {
                allowed,
                native: None,
            })
        }
        (None, None) => Ok(VlanMode::default()),
    }
}

fn stage_add_port(
    txn: &mut datapath::pipeline::Txn<'_>,
    b: &Bridge,
    cfg: &v1::PortConfig,
    scfg: &SwitchConfig,
    ov: &mut Overlay,
) -> Result<v1::PortDesc, ApiError> {
    if !flow_text::is_valid_port_name(&cfg.name) {
        return Err(ApiError::invalid(
            "port.name",
            format!(
                "{:?} is not a valid port name (1-15 chars: letters, digits, - _ .)",
                cfg.name
            ),
        ));
    }
    if b.ports.contains_key(&cfg.name) || ov.ports_added.iter().any(|p| p.0.name == cfg.name) {
        return Err(ApiError::exists(
            "port.name",
            format!("bridge {} already has a port {}", b.rec.name, cfg.name),
        ));
    }
    check_options(&cfg.r#type, &cfg.options)?;
    let vlan = vlan_mode(&cfg.options)?;
    let (policer, qos) = crate::qos::port_rate_control(&cfg.options, txn.now_ns())?;
    let snap = txn.snapshot();
    let no = match cfg.requested_ofport {
        Some(n) => {
            if n == 0 || n >= datapath::pipeline::MAX_PORT_NO {
                return Err(ApiError::invalid(
                    "port.requested_ofport",
                    format!("{n} out of range 1..{}", datapath::pipeline::MAX_PORT_NO),
                ));
            }
            if snap.port(PortNo(n)).is_some() {
                return Err(ApiError::exists(
                    "port.requested_ofport",
                    format!("port number {n} is in use"),
                ));
            }
            n
        }
        None => (1..datapath::pipeline::MAX_PORT_NO)
            .find(|n| snap.port(PortNo(*n)).is_none())
            .ok_or_else(|| ApiError::precondition("port", "no free port number"))?,
    };
    let (port, mem) = open_port(&cfg.name, &cfg.r#type, &cfg.options, scfg)?;
    txn.add_port(PortNo(no), Arc::clone(&port), vlan)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    txn.set_port_qos(PortNo(no), policer, qos)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let desc = v1::PortDesc {
        port_no: no,
        name: cfg.name.clone(),
        r#type: cfg.r#type.clone(),
        options: cfg.options.clone(),
        hw_addr: Vec::new(),
        mtu: 1500,
        admin_up: true,
        link_up: port.link_up().unwrap_or(true),
        speed_mbps: 0,
    };
    ov.ports_added.push((desc.clone(), (port, mem)));
    Ok(desc)
}

/// Converts a flow message into a datapath add; returns it with the canonical message.
fn prepare_flow(
    f: &v1::Flow,
    names: &dyn PortNames,
    check_overlap: bool,
) -> Result<(FlowMod, v1::Flow), ApiError> {
    let table = table_of(Some(f.table_id), "flow.table_id")?
        .ok_or_else(|| ApiError::invalid("flow.table_id", "255 (all tables) is not a table"))?;
    let priority = priority_of(f.priority, "flow.priority")?;
    let idle = u16::try_from(f.idle_timeout)
        .map_err(|_| ApiError::invalid("flow.idle_timeout", "must be 0..=65535 seconds"))?;
    let hard = u16::try_from(f.hard_timeout)
        .map_err(|_| ApiError::invalid("flow.hard_timeout", "must be 0..=65535 seconds"))?;
    let empty = v1::Match::default();
    let DpMatch {
        canonical,
        key,
        mask,
    } = convert::convert_match(f.r#match.as_ref().unwrap_or(&empty), names)
        .map_err(|e| e.under("flow"))?;
    let instructions = convert::convert_instructions(&f.instructions, names, &canonical)
        .map_err(|e| e.under("flow"))?;
    let flags = f.flags.unwrap_or_default();
    let mut ins_msg = f.instructions.clone();
    resolve_names(&mut ins_msg, names);
    let canonical_flow = v1::Flow {
        table_id: f.table_id,
        priority: f.priority,
        cookie: f.cookie,
        idle_timeout: f.idle_timeout,
        hard_timeout: f.hard_timeout,
        flags: Some(v1::FlowFlags {
            send_flow_rem: flags.send_flow_rem,
            check_overlap: false,
            reset_counts: false,
        }),
        r#match: Some(canonical),
        instructions: ins_msg,
        stats: None,
    };
    let spec = FlowSpec {
        table,
        priority,
        key,
        mask,
        cookie: f.cookie,
        idle_timeout_s: idle,
        hard_timeout_s: hard,
        send_flow_removed: flags.send_flow_rem,
        instructions,
    };
    Ok((
        FlowMod::Add {
            spec,
            check_overlap: check_overlap || flags.check_overlap,
        },
        canonical_flow,
    ))
}

/// Checks that meters and groups a flow uses exist (in the draft).
fn check_refs(fm: &FlowMod, txn: &datapath::pipeline::Txn<'_>) -> Result<(), ApiError> {
    let ins = match fm {
        FlowMod::Add { spec, .. } => &spec.instructions,
        FlowMod::Modify { instructions, .. } => instructions,
        FlowMod::Delete { .. } => return Ok(()),
    };
    let snap = txn.snapshot();
    if let Some(m) = ins.meter
        && !snap.meters.contains_key(&m)
    {
        return Err(ApiError::not_found(
            "flow.instructions.meter",
            format!("no meter {}", m.0),
        ));
    }
    for a in ins.apply.iter() {
        if let datapath::actions::Action::Group(g) = a
            && !snap.groups.contains_key(g)
        {
            return Err(ApiError::not_found(
                "flow.instructions.apply_actions.group",
                format!("no group {}", g.0),
            ));
        }
    }
    Ok(())
}

fn entity_of(u: &v1::Update) -> Result<&entity::Entity, ApiError> {
    u.entity
        .as_ref()
        .and_then(|e| e.entity.as_ref())
        .ok_or_else(|| ApiError::invalid("entity", "entity is required"))
}

fn prepare_update(
    u: &v1::Update,
    b: &Bridge,
    txn: &datapath::pipeline::Txn<'_>,
    ov: &Overlay,
) -> Result<Prepared, ApiError> {
    let ty = update::Type::try_from(u.r#type).unwrap_or(update::Type::Unspecified);
    match (ty, entity_of(u)?) {
        (update::Type::Insert, entity::Entity::Flow(f)) => {
            let names = |n: &str| {
                b.ports.get(n).map(|p| p.desc.port_no).or_else(|| {
                    ov.ports_added
                        .iter()
                        .find(|p| p.0.name == n)
                        .map(|p| p.0.port_no)
                })
            };
            let (fm, canon) = prepare_flow(f, &names, false)?;
            check_refs(&fm, txn)?;
            Ok(Prepared::Insert(Box::new((fm, canon))))
        }
        _ => Ok(Prepared::Other),
    }
}

fn flow_mod_error(e: datapath::classifier::FlowModError) -> ApiError {
    use datapath::classifier::FlowModError as E;
    match e {
        E::BadTable(_) => ApiError::invalid("flow.table_id", e.to_string()),
        E::BadGoto { .. } => ApiError::invalid("flow.instructions.goto_table", e.to_string()),
        E::Overlap { .. } => ApiError::exists("flow.match", e.to_string()),
    }
}

/// A run of flow inserts applied as one bundle: the datapath mods, and for each the update
/// index it came from, its canonical message and its identity (computed once).
#[derive(Default)]
struct Run {
    mods: Vec<FlowMod>,
    index: Vec<usize>,
    flows: Vec<Option<v1::Flow>>,
    ids: Vec<Vec<u8>>,
}

impl Run {
    fn push(&mut self, index: usize, fm: FlowMod, f: v1::Flow) {
        if let FlowMod::Add { spec, .. } = &fm {
            self.ids
                .push(flow_ident(spec.table, spec.priority, &spec.key, &spec.mask));
        }
        self.mods.push(fm);
        self.index.push(index);
        self.flows.push(Some(f));
    }

    /// Records what the bundle `mods[start..]` (or a prefix of it) did: each add produced
    /// exactly one rule, in order (see `ChangeSet::added`), and may have replaced one.
    fn absorb(&mut self, ov: &mut Overlay, cs: &ChangeSet, start: usize) {
        for (r, _) in &cs.removed {
            ov.flows.insert(rule_ident(r), None);
        }
        for k in start..start + cs.added.len() {
            if let Some(f) = self.flows[k].take() {
                ov.flows.insert(std::mem::take(&mut self.ids[k]), Some(f));
            }
        }
    }
}

/// Records removed rules and queues flow-removed events for those that asked for them.
fn absorb_removals(ov: &mut Overlay, cs: &ChangeSet, base: &IdMap<v1::Flow>, bridge: &str) {
    absorb_removals_as(ov, cs, base, bridge, None)
}

fn absorb_removals_as(
    ov: &mut Overlay,
    cs: &ChangeSet,
    base: &IdMap<v1::Flow>,
    bridge: &str,
    reason: Option<v1::FlowRemovedReason>,
) {
    for (r, why) in &cs.removed {
        let id = rule_ident(r);
        if r.send_flow_removed && *why != RemovedReason::Replaced {
            let m = ov.flow(base, &id).and_then(|f| f.r#match.clone());
            let c = r.stats.read();
            ov.events.push(v1::StreamMessageResponse {
                update: Some(smr::Update::FlowRemoved(v1::FlowRemoved {
                    bridge: bridge.to_string(),
                    reason: reason.unwrap_or(removed_reason(*why)) as i32,
                    cookie: r.cookie,
                    priority: r.priority as u32,
                    table_id: r.table.0 as u32,
                    r#match: m,
                    duration_ns: 0,
                    idle_timeout: r.idle_timeout_s as u32,
                    hard_timeout: r.hard_timeout_s as u32,
                    packet_count: c.packets,
                    byte_count: c.bytes,
                })),
            });
        }
        ov.flows.insert(id, None);
    }
}

/// Builds the datapath modify/delete selector from an API filter.
struct Selector {
    table: Option<TableId>,
    strict: bool,
    key: FlowKey,
    mask: FlowKey,
    priority: u16,
    cookie: u64,
    cookie_mask: u64,
    out_port: Option<PortNo>,
    out_group: Option<GroupId>,
    canonical: v1::Match,
}

fn selector(ff: &v1::FlowFilter, names: &dyn PortNames) -> Result<Selector, ApiError> {
    let empty = v1::Match::default();
    let m = convert::convert_match(ff.r#match.as_ref().unwrap_or(&empty), names)?;
    let priority = match ff.priority {
        Some(p) => priority_of(p, "priority")?,
        None if ff.strict => flow_text::DEFAULT_PRIORITY as u16,
        None => 0,
    };
    Ok(Selector {
        table: table_of(ff.table_id, "table_id")?,
        strict: ff.strict,
        key: m.key,
        mask: m.mask,
        priority,
        cookie: ff.cookie,
        cookie_mask: ff.cookie_mask,
        out_port: convert::filter_port(ff.out_port.as_ref(), names)?,
        out_group: ff.out_group.filter(|g| *g != 0xffff_ffff).map(GroupId),
        canonical: m.canonical,
    })
}

fn select_rules(
    b: &Bridge,
    p: &datapath::classifier::Pipeline,
    ff: &v1::FlowFilter,
) -> Result<Vec<Arc<datapath::classifier::Rule>>, ApiError> {
    let names = b.names();
    let s = selector(ff, &names)?;
    let mut v = p.select(
        s.table,
        s.strict,
        &s.key,
        &s.mask,
        s.priority,
        s.cookie,
        s.cookie_mask,
        s.out_port,
        s.out_group,
    );
    v.sort_by(|a, b| {
        (a.table, std::cmp::Reverse(a.priority), a.id.0).cmp(&(
            b.table,
            std::cmp::Reverse(b.priority),
            b.id.0,
        ))
    });
    Ok(v)
}

/// Applies one non-insert update on the draft.
fn apply_update(
    u: &v1::Update,
    b: &Bridge,
    txn: &mut datapath::pipeline::Txn<'_>,
    ov: &mut Overlay,
    scfg: &SwitchConfig,
) -> Result<(), ApiError> {
    let ty = update::Type::try_from(u.r#type).unwrap_or(update::Type::Unspecified);
    let bridge = b.rec.name.as_str();
    let name_map: HashMap<String, u32> = b
        .ports
        .iter()
        .map(|(n, p)| (n.clone(), p.desc.port_no))
        .chain(
            ov.ports_added
                .iter()
                .map(|p| (p.0.name.clone(), p.0.port_no)),
        )
        .collect();
    let names = |n: &str| name_map.get(n).copied();
    match (ty, entity_of(u)?) {
        (update::Type::Unspecified, _) => Err(ApiError::invalid("type", "update type is required")),
        (update::Type::Insert, entity::Entity::Flow(_)) => {
            Err(ApiError::internal("flow insert not batched"))
        }
        (update::Type::Modify, entity::Entity::FlowModify(fm)) => {
            let ff = fm.filter.clone().unwrap_or_default();
            let s = selector(&ff, &names).map_err(|e| e.under("flow_modify.filter"))?;
            modify_flows(
                txn,
                ov,
                b,
                &names,
                s,
                &fm.instructions,
                fm.reset_counts,
                fm.new_cookie,
            )
            .map_err(|e| e.under("flow_modify"))
        }
        (update::Type::Modify, entity::Entity::Flow(f)) => {
            // Strict modify of exactly this flow.
            let ff = v1::FlowFilter {
                table_id: Some(f.table_id),
                r#match: f.r#match.clone(),
                strict: true,
                priority: Some(f.priority),
                ..Default::default()
            };
            let s = selector(&ff, &names).map_err(|e| e.under("flow"))?;
            let reset = f.flags.is_some_and(|x| x.reset_counts);
            modify_flows(txn, ov, b, &names, s, &f.instructions, reset, None)
                .map_err(|e| e.under("flow"))
        }
        (update::Type::Delete, entity::Entity::FlowFilter(ff)) => {
            let s = selector(ff, &names).map_err(|e| e.under("flow_filter"))?;
            delete_flows(txn, ov, b, s, None)
        }
        (update::Type::Delete, entity::Entity::Flow(f)) => {
            let ff = v1::FlowFilter {
                table_id: Some(f.table_id),
                r#match: f.r#match.clone(),
                strict: true,
                priority: Some(f.priority),
                ..Default::default()
            };
            let s = selector(&ff, &names).map_err(|e| e.under("flow"))?;
            delete_flows(txn, ov, b, s, None)
        }
        (ty, entity::Entity::Meter(m)) => {
            let exists = match ov.meters.get(&m.id) {
                Some(x) => x.is_some(),
                None => b.meters.contains_key(&m.id),
            };
            match ty {
                update::Type::Insert | update::Type::Modify => {
                    if ty == update::Type::Insert && exists {
                        return Err(ApiError::exists(
                            "meter.id",
                            format!("meter {} exists", m.id),
                        ));
                    }
                    if ty == update::Type::Modify && !exists {
                        return Err(ApiError::not_found(
                            "meter.id",
                            format!("no meter {}", m.id),
                        ));
                    }
                    let dm = convert::convert_meter(m, txn.now_ns())?;
                    txn.set_meter(dm)
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    ov.meters.insert(m.id, Some(m.clone()));
                    Ok(())
                }
                _ => {
                    if !exists {
                        return Err(ApiError::not_found(
                            "meter.id",
                            format!("no meter {}", m.id),
                        ));
                    }
                    // OpenFlow 1.3: deleting a meter removes the flows that use it.
                    let users: Vec<FlowMod> = txn
                        .snapshot()
                        .pipeline
                        .rules(None)
                        .filter(|r| r.instructions.meter == Some(MeterId(m.id)))
                        .map(|r| strict_delete(r))
                        .collect();
                    if !users.is_empty() {
                        let cs = txn
                            .flow_mods(&users)
                            .map_err(|e| ApiError::internal(e.to_string()))?;
                        absorb_removals_as(
                            ov,
                            &cs,
                            &b.flows,
                            bridge,
                            Some(v1::FlowRemovedReason::MeterDelete),
                        );
                    }
                    txn.del_meter(MeterId(m.id))
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    ov.meters.insert(m.id, None);
                    Ok(())
                }
            }
        }
        (ty, entity::Entity::Group(g)) => {
            let exists = match ov.groups.get(&g.id) {
                Some(x) => x.is_some(),
                None => b.groups.contains_key(&g.id),
            };
            match ty {
                update::Type::Insert | update::Type::Modify => {
                    if ty == update::Type::Insert && exists {
                        return Err(ApiError::exists(
                            "group.id",
                            format!("group {} exists", g.id),
                        ));
                    }
                    if ty == update::Type::Modify && !exists {
                        return Err(ApiError::not_found(
                            "group.id",
                            format!("no group {}", g.id),
                        ));
                    }
                    let dg = convert::convert_group(g, &names)?;
                    for (i, bk) in dg.buckets.iter().enumerate() {
                        for a in bk.actions.iter() {
                            if let datapath::actions::Action::Group(r) = a
                                && (*r == dg.id || !txn.snapshot().groups.contains_key(r))
                            {
                                return Err(ApiError::not_found(
                                    format!("group.buckets[{i}].actions.group"),
                                    format!("no group {} (or a group that refers to itself)", r.0),
                                ));
                            }
                        }
                    }
                    txn.set_group(dg)
                        .map_err(|e| ApiError::invalid("group", e.to_string()))?;
                    let mut canon = g.clone();
                    for bk in &mut canon.buckets {
                        resolve_action_names(&mut bk.actions, &names);
                    }
                    ov.groups.insert(g.id, Some(canon));
                    Ok(())
                }
                _ => {
                    if !exists {
                        return Err(ApiError::not_found(
                            "group.id",
                            format!("no group {}", g.id),
                        ));
                    }
                    let s = Selector {
                        table: None,
                        strict: false,
                        key: FlowKey::ZERO,
                        mask: FlowKey::ZERO,
                        priority: 0,
                        cookie: 0,
                        cookie_mask: 0,
                        out_port: None,
                        out_group: Some(GroupId(g.id)),
                        canonical: v1::Match::default(),
                    };
                    delete_flows(txn, ov, b, s, Some(v1::FlowRemovedReason::GroupDelete))?;
                    txn.del_group(GroupId(g.id))
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    ov.groups.insert(g.id, None);
                    Ok(())
                }
            }
        }
        (update::Type::Insert, entity::Entity::Port(p)) => {
            let desc = stage_add_port(txn, b, p, scfg, ov)?;
            ov.events.push(v1::StreamMessageResponse {
                update: Some(smr::Update::PortStatus(v1::PortStatus {
                    bridge: bridge.to_string(),
                    reason: v1::PortStatusReason::Add as i32,
                    port: Some(desc),
                })),
            });
            Ok(())
        }
        (update::Type::Delete, entity::Entity::Port(p)) => {
            let st = b
                .ports
                .get(&p.name)
                .filter(|_| !ov.ports_removed.contains(&p.name))
                .ok_or_else(|| ApiError::not_found("port.name", format!("no port {}", p.name)))?;
            txn.del_port(PortNo(st.desc.port_no))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            ov.ports_removed.push(p.name.clone());
            ov.events.push(v1::StreamMessageResponse {
                update: Some(smr::Update::PortStatus(v1::PortStatus {
                    bridge: bridge.to_string(),
                    reason: v1::PortStatusReason::Delete as i32,
                    port: Some(st.desc.clone()),
                })),
            });
            Ok(())
        }
        (ty, e) => Err(ApiError::invalid(
            "type",
            format!(
                "{} is not valid for a {} entity",
                ty.as_str_name(),
                entity_name(e)
            ),
        )),
    }
}

fn entity_name(e: &entity::Entity) -> &'static str {
    match e {
        entity::Entity::Flow(_) => "flow",
        entity::Entity::Meter(_) => "meter",
        entity::Entity::Group(_) => "group",
        entity::Entity::Port(_) => "port",
        entity::Entity::FlowFilter(_) => "flow_filter",
        entity::Entity::FlowModify(_) => "flow_modify",
    }
}

fn strict_delete(r: &datapath::classifier::Rule) -> FlowMod {
    FlowMod::Delete {
        table: Some(r.table),
        strict: true,
        key: r.key,
        mask: r.mask,
        priority: r.priority,
        cookie: 0,
        cookie_mask: 0,
        out_port: None,
        out_group: None,
    }
}

fn delete_flows(
    txn: &mut datapath::pipeline::Txn<'_>,
    ov: &mut Overlay,
    b: &Bridge,
    s: Selector,
    reason: Option<v1::FlowRemovedReason>,
) -> Result<(), ApiError> {
    let cs = txn
        .flow_mods(&[FlowMod::Delete {
            table: s.table,
            strict: s.strict,
            key: s.key,
            mask: s.mask,
            priority: s.priority,
            cookie: s.cookie,
            cookie_mask: s.cookie_mask,
            out_port: s.out_port,
            out_group: s.out_group,
        }])
        .map_err(|e| flow_mod_error(e.error))?;
    absorb_removals_as(ov, &cs, &b.flows, &b.rec.name, reason);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn modify_flows(
    txn: &mut datapath::pipeline::Txn<'_>,
    ov: &mut Overlay,
    b: &Bridge,
    names: &dyn PortNames,
    s: Selector,
    instructions: &[v1::Instruction],
    reset_counts: bool,
    new_cookie: Option<u64>,
) -> Result<(), ApiError> {
    let ins = convert::convert_instructions(instructions, names, &s.canonical)?;
    let mut ins_msg = instructions.to_vec();
    resolve_names(&mut ins_msg, names);
    let probe = FlowMod::Modify {
        table: s.table,
        strict: s.strict,
        key: s.key,
        mask: s.mask,
        priority: s.priority,
        cookie: s.cookie,
        cookie_mask: s.cookie_mask,
        instructions: ins.clone(),
        reset_counts,
    };
    check_refs(&probe, txn)?;
    if let Some(cookie) = new_cookie {
        // Changing the cookie re-adds each selected flow with the new cookie and
        // instructions (its counters restart).
        let sel = txn.snapshot().pipeline.select(
            s.table,
            s.strict,
            &s.key,
            &s.mask,
            s.priority,
            s.cookie,
            s.cookie_mask,
            None,
            None,
        );
        let mut run = Run::default();
        for r in sel {
            let id = rule_ident(&r);
            let Some(mut f) = ov.flow(&b.flows, &id).cloned() else {
                continue;
            };
            f.cookie = cookie;
            f.instructions = ins_msg.clone();
            let mut spec = r.spec();
            spec.cookie = cookie;
            spec.instructions = ins.clone();
            run.push(
                0,
                FlowMod::Add {
                    spec,
                    check_overlap: false,
                },
                f,
            );
        }
        let cs = txn
            .flow_mods(&run.mods)
            .map_err(|e| flow_mod_error(e.error))?;
        run.absorb(ov, &cs, 0);
        return Ok(());
    }
    let cs = txn
        .flow_mods(&[probe])
        .map_err(|e| flow_mod_error(e.error))?;
    for r in &cs.modified {
        let id = rule_ident(r);
        if let Some(mut f) = ov.flow(&b.flows, &id).cloned() {
            f.instructions = ins_msg.clone();
            ov.flows.insert(id, Some(f));
        }
    }
    Ok(())
}

fn write_overlay(tx: &mut StoreTxn, bridge: &str, ov: &Overlay) -> Result<(), ApiError> {
    tx.put_flows(
        bridge,
        ov.flows.iter().map(|(k, v)| (k.as_slice(), v.as_ref())),
    )?;
    for (id, m) in &ov.meters {
        match m {
            Some(m) => tx.put_meter(bridge, m)?,
            None => tx.del_meter(bridge, *id)?,
        }
    }
    for (id, g) in &ov.groups {
        match g {
            Some(g) => tx.put_group(bridge, g)?,
            None => tx.del_group(bridge, *id)?,
        }
    }
    for (p, _) in &ov.ports_added {
        tx.put_port(bridge, p)?;
    }
    for p in &ov.ports_removed {
        tx.del_port(bridge, p)?;
    }
    Ok(())
}

fn apply_overlay(b: &mut Bridge, ov: Overlay) {
    for (id, f) in ov.flows {
        match f {
            Some(f) => {
                b.flows.insert(id, f);
            }
            None => {
                b.flows.remove(&id);
            }
        }
    }
    let now = Instant::now();
    for (id, m) in ov.meters {
        match m {
            Some(m) => {
                b.meter_added.entry(id).or_insert(now);
                b.meters.insert(id, m);
            }
            None => {
                b.meter_added.remove(&id);
                b.meters.remove(&id);
            }
        }
    }
    for (id, g) in ov.groups {
        match g {
            Some(g) => {
                b.group_added.entry(id).or_insert(now);
                b.groups.insert(id, g);
            }
            None => {
                b.group_added.remove(&id);
                b.groups.remove(&id);
            }
        }
    }
    for name in ov.ports_removed {
        b.ports.remove(&name);
    }
    for (desc, (port, mem)) in ov.ports_added {
        b.ports.insert(
            desc.name.clone(),
            PortState {
                desc,
                port,
                mem,
                added: now,
                stats_base: PortStats::default(),
                link_resets: 0,
                reopen_failures: 0,
            },
        );
    }
}

fn packet_in_msg(bridge: &str, dp: &Datapath, p: PacketIn) -> v1::StreamMessageResponse {
    // A packet-in from a table-miss flow (priority 0, empty match) is reported as NO_MATCH,
    // as OpenFlow 1.3 defines it.
    let snap = dp.snapshot();
    let miss = snap
        .pipeline
        .table(p.table)
        .find_strict(&FlowKey::ZERO, &FlowKey::ZERO, 0)
        .is_some_and(|r| r.cookie == p.cookie);
    let reason = match p.reason {
        PacketInReason::Action if miss => v1::PacketInReason::NoMatch,
        _ => v1::PacketInReason::Action,
    };
    v1::StreamMessageResponse {
        update: Some(smr::Update::PacketIn(v1::PacketIn {
            bridge: bridge.to_string(),
            reason: reason as i32,
            table_id: p.table.0 as u32,
            cookie: p.cookie,
            r#match: Some(convert::packet_in_match(&p.key)),
            in_port: p.in_port.0,
            data: p.data,
            total_len: p.total_len as u32,
        })),
    }
}
