//! OpenFlow port configuration (`ofp_port_config`, set by PORT_MOD): a port can be taken
//! down, stop receiving, stop forwarding, or stop sending packet-ins for what it receives.
//!
//! What it costs: nothing when no bit is set. Receiving reads the ingress port's word once
//! per burst; sending folds the check into the word the staging path already reads for
//! send mirrors (`mirror_tx | config & TX`), so a port with neither takes the same branch
//! as before; packet-ins read it once per `controller` operation.
//!
//! Thread-safety: the bits live in the published snapshot's port entries, read-only for
//! poll threads.

use super::burst::Cx;
use crate::packet::{BufPool, PacketBuf};
use crate::port::Batch;
use crate::stats::{DropReason, PmdCounters};

/// OpenFlow port configuration bits, as on the wire (OpenFlow 1.3 `ofp_port_config`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortConfig(pub u32);

impl PortConfig {
    /// `OFPPC_PORT_DOWN`: administratively down; neither receives nor sends.
    pub const PORT_DOWN: u32 = 1 << 0;
    /// `OFPPC_NO_RECV`: drops every received frame.
    pub const NO_RECV: u32 = 1 << 2;
    /// `OFPPC_NO_FWD`: drops every frame output to the port.
    pub const NO_FWD: u32 = 1 << 5;
    /// `OFPPC_NO_PACKET_IN`: no packet-ins for frames received on the port.
    pub const NO_PACKET_IN: u32 = 1 << 6;
    /// Every bit the datapath acts on.
    pub const ALL: u32 = Self::PORT_DOWN | Self::NO_RECV | Self::NO_FWD | Self::NO_PACKET_IN;
    /// The bits that stop receiving.
    pub const RX: u32 = Self::PORT_DOWN | Self::NO_RECV;
    /// The bits that stop sending.
    pub const TX: u32 = Self::PORT_DOWN | Self::NO_FWD;

    /// True when any of `bits` is set.
    #[inline]
    pub fn has(self, bits: u32) -> bool {
        self.0 & bits != 0
    }
}

/// Drops a received burst of `n` packets on a port whose configuration refuses receiving
/// (`config` has an [`PortConfig::RX`] bit), counting them by reason.
#[cold]
#[inline(never)]
pub(super) fn drop_rx(config: PortConfig, rx: &mut Batch, pool: &mut BufPool, c: &PmdCounters) {
    let reason = if config.has(PortConfig::PORT_DOWN) {
        DropReason::PortDown
    } else {
        DropReason::PortNoRecv
    };
    c.rx_packets.add(rx.len() as u64);
    c.count_drop(reason, rx.len() as u64);
    pool.put_batch(rx);
}

/// The send check's slow side, for a port mirrored on send or configured not to send:
/// `p` back when the port in `slot` sends, else `None` (`p` dropped and counted).
#[cold]
#[inline(never)]
pub(super) fn tx_allowed(cx: &mut Cx<'_>, slot: usize, p: PacketBuf) -> Option<PacketBuf> {
    let config = cx.snap.ports[slot].config;
    if !config.has(PortConfig::TX) {
        return Some(p);
    }
    let reason = if config.has(PortConfig::PORT_DOWN) {
        DropReason::PortDown
    } else {
        DropReason::PortNoFwd
    };
    cx.counters.count_drop(reason, 1);
    cx.pool.put(p);
    None
}

/// True when packet-ins for what the ingress port received are off (counted as a drop of
/// the packet-in, once per packet).
#[inline]
pub(super) fn no_packet_in(cx: &Cx<'_>, n: usize) -> bool {
    let off =
        (cx.snap.ports.get(cx.in_slot)).is_some_and(|e| e.config.has(PortConfig::NO_PACKET_IN));
    if off {
        cx.counters.count_drop(DropReason::PortNoPacketIn, n as u64);
    }
    off
}
