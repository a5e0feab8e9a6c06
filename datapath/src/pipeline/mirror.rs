//! Port mirrors, as Open vSwitch's Mirror table (`vswitch.conf.db(5)`): a copy of what
//! selected ports receive (as received) and send (as it leaves) goes to a mirror's output
//! port.
//!
//! What: a [`Mirror`] selects packets by the port they arrive on (`select_src`), the port
//! they leave by (`select_dst`), or every port (`select_all`), optionally only those of some
//! VLANs (`select_vlans`: the VLAN the packet belongs to on that port, as `normal` reads
//! it); the copy goes to `output`. [`Mirrors`] is the snapshot's compiled form: per mirror
//! its output's slot, its VLAN set and the mirrors sharing its output (`dup`); per port
//! (in [`super::PortEntry`]) the mirrors selecting it on receive and on send and whether it
//! is a mirror's output. A packet goes to each output at most once, however many mirrors
//! and ports select it (Open vSwitch's `dup_mirrors`): each packet of a burst carries the
//! mirrors it went to ([`super::burst::Cx::mirrored`], kept through `ct(table=T)`).
//!
//! Cost: with no mirror, the poll loop reads one word per burst (`Mirrors::is_empty`), the
//! executor one per-port word per staged output ([`super::PortEntry::mirror_tx`], next to
//! the tunnel flag it reads anyway). The two hooks, [`rx_burst`] and [`tx_packet`], are
//! the only places the poll loop mirrors. Copies come from the executor's copy path (held
//! to `max_copies_per_packet`, shed copies counted by reason) and count against the packet
//! they copy.
//!
//! A mirror's output port takes no part in normal switching (Open vSwitch's rules):
//! `normal` drops what it receives and what would go to it as a learned destination
//! (`drop_mirror_port`), and leaves it out of its floods. It cannot be selected by any
//! mirror (`select_all` leaves the outputs out).
//!
//! Thread-safety: the configuration is part of the immutable snapshot; the counters are
//! per poll thread (single-writer cells, summed by readers).

use std::sync::Arc;

use super::burst::Cx;
use super::snapshot::Snapshot;
use crate::l2::{VlanSet, ingress_vlan};
use crate::packet::PacketBuf;
use crate::port::BURST;
use crate::stats::GroupCounters;
use crate::types::{PortNo, VlanId};

/// Most mirrors per datapath (bridge): Open vSwitch's `MAX_MIRRORS`, one bit each in a
/// packet's and a port's mirror masks.
pub const MAX_MIRRORS: usize = 32;

/// A mirror as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirror {
    /// Its name (unique in its datapath).
    pub name: String,
    /// Ports whose received packets are mirrored.
    pub select_src: Vec<PortNo>,
    /// Ports whose sent packets are mirrored.
    pub select_dst: Vec<PortNo>,
    /// Every port, both ways (but mirror outputs).
    pub select_all: bool,
    /// Only packets in these VLANs; empty: every VLAN.
    pub select_vlans: Vec<VlanId>,
    /// Where the copies go.
    pub output: PortNo,
}

/// Why a mirror configuration was refused (nothing of it applies).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MirrorError {
    /// More than [`MAX_MIRRORS`] mirrors.
    #[error("{0} mirrors: a bridge has at most {MAX_MIRRORS}")]
    TooMany(usize),
    /// Two mirrors with one name.
    #[error("two mirrors are named {0:?}")]
    DuplicateName(String),
    /// An empty name.
    #[error("a mirror needs a name")]
    NoName,
    /// A port that does not exist.
    #[error("mirror {0:?}: no port {1}")]
    NoSuchPort(String, PortNo),
    /// The output port is selected too, by this mirror or another.
    #[error("mirror {0:?}: port {1} is a mirror output and cannot also be selected")]
    OutputSelected(String, PortNo),
    /// Nothing selected.
    #[error("mirror {0:?} selects nothing (give source ports, destination ports or all)")]
    NothingSelected(String),
    /// A VLAN id above 4095.
    #[error("mirror {0:?}: VLAN {1} is not in 0..=4095")]
    BadVlan(String, u16),
}

/// One compiled mirror.
#[derive(Clone, Debug)]
pub struct MirrorEntry {
    /// The mirror as configured.
    pub mirror: Arc<Mirror>,
    /// Copies sent and their bytes, per poll thread (a group's counters without buckets).
    pub counters: Arc<GroupCounters>,
    /// `select_vlans` as a set; `None`: every VLAN.
    vlans: Option<Arc<VlanSet>>,
    /// The output's slot.
    out_slot: usize,
    /// This mirror and those with the same output (bits).
    dup: u32,
}

/// The compiled mirrors of a snapshot (bit `i` of a mask is `entries[i]`).
#[derive(Clone, Debug, Default)]
pub struct Mirrors {
    entries: Vec<MirrorEntry>,
}

/// A mirror's copies as counted: (name, packets, bytes).
pub type MirrorCounts = (String, u64, u64);

impl Mirrors {
    /// True when no mirror is configured: the poll loop then does no mirror work.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The mirrors, in bit order.
    pub fn entries(&self) -> &[MirrorEntry] {
        &self.entries
    }

    /// Forgets port `no` (it is being removed), as Open vSwitch's weak references do: it is
    /// no longer selected, and a mirror whose output it was, or that now selects nothing,
    /// goes.
    pub fn forget_port(&mut self, no: PortNo) {
        self.entries.retain_mut(|e| {
            if e.mirror.output == no {
                return false;
            }
            if e.mirror.select_src.contains(&no) || e.mirror.select_dst.contains(&no) {
                let m = Arc::make_mut(&mut e.mirror);
                m.select_src.retain(|&p| p != no);
                m.select_dst.retain(|&p| p != no);
            }
            e.mirror.select_all
                || !e.mirror.select_src.is_empty()
                || !e.mirror.select_dst.is_empty()
        });
    }

    /// Copies each mirror sent, summed over the poll threads.
    pub fn counts(&self) -> Vec<MirrorCounts> {
        self.entries
            .iter()
            .map(|e| {
                let c = e.counters.read();
                (e.mirror.name.clone(), c.packets, c.bytes)
            })
            .collect()
    }
}

/// Checks `list` against the ports of `snap` and compiles it, keeping the counters of
/// mirrors that keep their name.
pub(super) fn compile(snap: &Snapshot, list: Vec<Mirror>) -> Result<Mirrors, MirrorError> {
    if list.len() > MAX_MIRRORS {
        return Err(MirrorError::TooMany(list.len()));
    }
    let outputs: Vec<PortNo> = list.iter().map(|m| m.output).collect();
    for (i, m) in list.iter().enumerate() {
        if m.name.is_empty() {
            return Err(MirrorError::NoName);
        }
        if list[..i].iter().any(|o| o.name == m.name) {
            return Err(MirrorError::DuplicateName(m.name.clone()));
        }
        let ports = m.select_src.iter().chain(&m.select_dst);
        for &p in ports.clone().chain(std::iter::once(&m.output)) {
            if snap.slot(p).is_none() {
                return Err(MirrorError::NoSuchPort(m.name.clone(), p));
            }
        }
        if let Some(&p) = ports.clone().find(|p| outputs.contains(p)) {
            return Err(MirrorError::OutputSelected(m.name.clone(), p));
        }
        if !m.select_all && m.select_src.is_empty() && m.select_dst.is_empty() {
            return Err(MirrorError::NothingSelected(m.name.clone()));
        }
        if let Some(v) = m.select_vlans.iter().find(|v| v.0 > 0xfff) {
            return Err(MirrorError::BadVlan(m.name.clone(), v.0));
        }
    }
    let threads = snap.n_pmds;
    let entries = list
        .into_iter()
        .map(|m| {
            let counters = match snap
                .mirrors
                .entries
                .iter()
                .find(|e| e.mirror.name == m.name)
            {
                Some(old) if old.counters.threads() >= threads => Arc::clone(&old.counters),
                Some(old) => Arc::new(old.counters.carried(threads, 0)),
                None => Arc::new(GroupCounters::new(threads, 0)),
            };
            let vlans = (!m.select_vlans.is_empty()).then(|| {
                let mut s = VlanSet::default();
                m.select_vlans.iter().for_each(|&v| s.insert(v));
                Arc::new(s)
            });
            MirrorEntry {
                mirror: Arc::new(m),
                counters,
                vlans,
                out_slot: usize::MAX,
                dup: 0,
            }
        })
        .collect();
    Ok(Mirrors { entries })
}

impl Snapshot {
    /// Recomputes the ports' mirror masks and the mirrors' output slots (after the ports or
    /// the mirrors changed). A port that is gone is no longer selected; a mirror whose
    /// output is gone sends nothing.
    pub(super) fn mark_mirrors(&mut self) {
        for p in &mut self.ports {
            p.mirror_rx = 0;
            p.mirror_tx = 0;
            p.mirror_out = false;
        }
        let slots: Vec<Option<usize>> = (self.mirrors.entries.iter())
            .map(|e| self.slot(e.mirror.output))
            .collect();
        for (i, e) in self.mirrors.entries.iter_mut().enumerate() {
            e.out_slot = slots[i].unwrap_or(usize::MAX);
            e.dup = (0..slots.len())
                .filter(|&j| slots[j].is_some() && slots[j] == slots[i])
                .fold(0, |d, j| d | 1 << j);
            if let Some(s) = slots[i] {
                self.ports[s].mirror_out = true;
            }
        }
        for (i, e) in self.mirrors.entries.iter().enumerate() {
            if e.out_slot == usize::MAX {
                continue;
            }
            let bit = 1u32 << i;
            let m = &e.mirror;
            for p in self.ports.iter_mut().filter(|p| !p.mirror_out) {
                if m.select_all || m.select_src.contains(&p.no) {
                    p.mirror_rx |= bit;
                }
                if m.select_all || m.select_dst.contains(&p.no) {
                    p.mirror_tx |= bit;
                }
            }
        }
    }
}

/// The VLAN tag a frame carries (802.1Q or 802.1ad outer tag), if any.
#[inline]
fn frame_tag(data: &[u8]) -> Option<VlanId> {
    match data.get(12..16)? {
        [0x81, 0x00, hi, lo] | [0x88, 0xa8, hi, lo] => {
            Some(VlanId(u16::from_be_bytes([*hi, *lo]) & 0x0fff))
        }
        _ => None,
    }
}

/// The receive hook, once per burst before its flows run (`fresh`: a burst from a port or
/// a packet-out, not a recirculated one whose packets keep the mirrors they went to):
/// nothing at all when no mirror is configured; else the packets' mirror masks start
/// empty and, when the ingress port is selected, each packet goes to its mirrors as
/// received.
/// `pkts`: the burst's packets (the first `n`).
#[inline]
pub(super) fn rx_burst(cx: &mut Cx<'_>, pkts: &[Option<PacketBuf>], n: usize, fresh: bool) {
    if cx.snap.mirrors.is_empty() {
        return;
    }
    rx_burst_slow(cx, pkts, n, fresh);
}

#[cold]
#[inline(never)]
fn rx_burst_slow(cx: &mut Cx<'_>, pkts: &[Option<PacketBuf>], n: usize, fresh: bool) {
    if !fresh {
        return;
    }
    let n = n.min(pkts.len()).min(BURST);
    cx.mirrored[..n].fill(0);
    let Some(mask) = cx.snap.ports.get(cx.in_slot).map(|p| p.mirror_rx) else {
        return;
    };
    if mask == 0 {
        return;
    }
    for (m, p) in pkts.iter().enumerate().take(n) {
        if let Some(p) = p {
            mirror_packet(cx, p, m, cx.in_slot, mask);
        }
    }
}

/// The send hook, for every packet staged on a port by the executor (`p`, copy or
/// original of packet `m` of the running actions, about to be staged on `slot`): when the
/// port is selected on send, the frame goes to its mirrors as it leaves.
#[inline]
pub(super) fn tx_packet(cx: &mut Cx<'_>, p: &PacketBuf, m: usize, slot: usize) {
    let mask = cx.snap.ports[slot].mirror_tx;
    if mask != 0 {
        tx_packet_slow(cx, p, m, slot, mask);
    }
}

#[cold]
#[inline(never)]
fn tx_packet_slow(cx: &mut Cx<'_>, p: &PacketBuf, m: usize, slot: usize, mask: u32) {
    mirror_packet(cx, p, m, slot, mask);
}

/// Sends a copy of `p` (packet `m`, seen on the port in `slot`) to each mirror of `mask`
/// that selects its VLAN and whose output it has not gone to yet.
fn mirror_packet(cx: &mut Cx<'_>, p: &PacketBuf, m: usize, slot: usize, mask: u32) {
    let o = cx.origin_of(m) % BURST;
    let mut cands = mask & !cx.mirrored[o];
    if cands == 0 {
        return;
    }
    // As Open vSwitch: a frame the port does not accept is in no VLAN and not mirrored.
    let Some(vlan) = ingress_vlan(&cx.snap.ports[slot].vlan, frame_tag(p.data())) else {
        return;
    };
    let snap = cx.snap;
    while cands != 0 {
        let i = cands.trailing_zeros() as usize;
        cands &= cands - 1;
        let Some(e) = snap.mirrors.entries.get(i) else {
            break;
        };
        if e.vlans.as_ref().is_some_and(|v| !v.contains(vlan)) {
            continue;
        }
        cx.mirrored[o] |= e.dup;
        cands &= !e.dup;
        let Some(copy) = cx.copy_of(p, o) else {
            continue;
        };
        e.counters.add(cx.pmd, 1, copy.len() as u64);
        cx.tx.stage(snap, e.out_slot, copy, cx.pool, cx.counters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_tags() {
        let mut f = [0u8; 18];
        assert_eq!(frame_tag(&f), None);
        f[12..16].copy_from_slice(&[0x81, 0x00, 0x20, 0x0a]);
        assert_eq!(frame_tag(&f), Some(VlanId(10)));
        f[12..16].copy_from_slice(&[0x88, 0xa8, 0x0f, 0xff]);
        assert_eq!(frame_tag(&f), Some(VlanId(4095)));
        assert_eq!(frame_tag(&f[..14]), None);
    }
}
