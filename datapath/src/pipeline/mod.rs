//! The datapath: its shared state, the snapshot poll threads read, and the control API.
//!
//! What: [`Datapath`] owns everything poll threads share: the current [`Snapshot`] behind an
//! atomic pointer, the MAC table, the packet-in queue. Control-plane changes (ports, flow
//! bundles, groups, meters) build a new snapshot and publish it with one atomic store; poll
//! threads load it once per burst and never take a lock. Flow bundles are atomic: the new
//! pipeline version carries all of a bundle's changes or none.
//!
//! Caches are per poll thread ([`Pmd`]); each snapshot carries the recent history of flow
//! changes, and a poll thread that sees a newer pipeline version removes just the megaflows
//! those changes affect (or flushes everything if it fell behind the history).
//!
//! Files, from the control plane down to the packets:
//! - `datapath`: the [`Datapath`] handle, its control API and counter reads;
//! - `txn`: a draft of the next snapshot ([`Txn`]) and why a change is refused;
//! - `snapshot`: what a poll thread reads ([`Snapshot`]: tables, ports, groups, meters);
//! - `shared`: what poll threads share with the control plane (settings, clock, the
//!   packet-in and packet-out queues);
//! - `thread`: the poll loop ([`PmdThread`]: spin, back-off, pinning, cycle accounting);
//! - `pmd`: one poll thread's state and its poll ([`Pmd`]);
//! - `lookup`: the lookup stages of a burst (parse, exact-match cache, megaflow cache,
//!   slow path) and the caches' upkeep;
//! - `xlate`: the slow path's walk through the tables (also what `trace` runs), with its
//!   observer hook in `tracer`;
//! - `trace`: what the switch would do with one packet, told step by step (OVS's
//!   `ofproto/trace`), through the same walk and the executor's own choices;
//! - `execute`: the action executor (output, flood, controller, rewrites, meter, group);
//! - `ct`: the `ct` action over a group of packets, and `ct(table=T)`'s recirculation;
//! - `normal`: the L2 learning switch;
//! - `port_config`: OpenFlow port configuration (down, no receive, no forward, no
//!   packet-in) and its checks;
//! - `mirror`: port mirrors (copies of what selected ports receive and send);
//! - `burst`: what the executor works on (a burst's packets, keys, layouts and context);
//! - `output`: per-port staging so each port sends whole bursts;
//! - `capture`: copies of a port's frames for a reader (`flowctl capture`), with the poll
//!   loop's two hooks (`on_rx`, `on_tx`).
//!
//! Thread-safety: `Datapath` is `Clone + Send + Sync`; writers serialise on one mutex (never
//! touched by poll threads); readers load the snapshot lock-free.

mod actset;
mod burst;
pub mod capture;
pub(crate) mod ct;
mod datapath;
mod dp_action;
mod execute;
mod lookup;
pub mod mirror;
mod normal;
mod output;
pub mod pmd;
pub mod port_config;
mod shared;
mod snapshot;
pub mod thread;
pub mod trace;
mod trace_ops;
mod trace_text;
pub mod tracer;
mod txn;
pub mod xlate;

pub use capture::{CAPTURE_SLOTS, Capture, CaptureOptions, CapturedFrame, Direction};
pub use datapath::Datapath;
pub use mirror::{MAX_MIRRORS, Mirror, MirrorError};
pub use pmd::Pmd;
pub use port_config::PortConfig;
pub use shared::{DatapathConfig, MAX_COPIES_PER_PACKET, ManualClock, PacketIn, PacketOut};
pub use snapshot::{CompiledGroup, IdHasher, IdMap, PortEntry, Snapshot};
pub use thread::{PmdThread, usable_cpus};
pub use tracer::{NoTrace, Tracer};
pub use txn::{DatapathError, Txn};
pub use xlate::{DpAction, PacketInReason, Translation, translate};
