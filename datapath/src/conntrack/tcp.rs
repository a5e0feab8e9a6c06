//! TCP window tracking: which segments belong to a connection, and its state.
//!
//! What: the sequence-tracking algorithm of Guido van Rooij's "Real Stateful TCP Packet
//! Filtering" as the BSD packet filter implements it and Open vSwitch's userspace tracker
//! inherits it (so verdicts agree with OVS's): each side (peer) keeps the highest sequence
//! number it sent (`seqlo`), the highest the other side may send (`seqhi`: its ack plus its
//! window), its largest window and its window scale. A segment is valid when its last octet
//! lies in the receiver's window, it does not go back more than one window, its ack is
//! within a window of what was sent, and a RST carries an exact sequence number. Anything
//! else is out of window (`+inv`), except the loose cases (a connection picked up midway, a
//! peer that shotguns SYNs, stragglers after close) which pass without refreshing the
//! timeout. States: per side `CLOSED`, `SYN_SENT`, `ESTABLISHED`, `CLOSING` (FIN sent),
//! `FIN_WAIT_2` (FIN acknowledged), `TIME_WAIT` (RST). `liberal` skips the window checks
//! (OVS's `ct-disable-tcp-seq-chk`; Linux's `nf_conntrack_tcp_be_liberal`).
//!
//! Thread-safety: plain values; the caller holds the connection's lock.

use super::tuple::{MAX_WSCALE, Segment, WSCALE_FLAG, WSCALE_MASK, WSCALE_UNKNOWN};

/// TCP flag bits.
pub(crate) mod flags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
}
use flags::*;

/// Per-side TCP states, numbered as OVS's `ct_dpif_tcp_state` (the order matters: states
/// are compared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// Nothing sent.
    Closed = 0,
    /// (unused by the tracker; kept for the numbering).
    Listen = 1,
    /// SYN (or a first segment) sent.
    SynSent = 2,
    /// (unused by the tracker; shown for `SYN_SENT` answered).
    SynRecv = 3,
    /// Handshake done.
    Established = 4,
    /// (unused).
    CloseWait = 5,
    /// (unused).
    FinWait1 = 6,
    /// FIN sent.
    Closing = 7,
    /// (unused).
    LastAck = 8,
    /// FIN sent and acknowledged.
    FinWait2 = 9,
    /// Reset.
    TimeWait = 10,
}

impl TcpState {
    /// From the stored byte (anything unknown reads as `TimeWait`).
    pub fn from_u8(v: u8) -> TcpState {
        use TcpState::*;
        [
            Closed,
            Listen,
            SynSent,
            SynRecv,
            Established,
            CloseWait,
            FinWait1,
            Closing,
            LastAck,
            FinWait2,
            TimeWait,
        ]
        .get(v as usize)
        .copied()
        .unwrap_or(TimeWait)
    }

    /// OVS's name (`dump-conntrack`).
    pub fn name(self) -> &'static str {
        use TcpState::*;
        match self {
            Closed => "CLOSED",
            Listen => "LISTEN",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            Established => "ESTABLISHED",
            CloseWait => "CLOSE_WAIT",
            FinWait1 => "FIN_WAIT_1",
            Closing => "CLOSING",
            LastAck => "LAST_ACK",
            FinWait2 => "FIN_WAIT_2",
            TimeWait => "TIME_WAIT",
        }
    }
}

/// One side of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Peer {
    /// Highest sequence number sent (the end of the last segment).
    pub seqlo: u32,
    /// Highest sequence number the other side has allowed (its ack plus its window).
    pub seqhi: u32,
    /// Largest window advertised (before scaling).
    pub max_win: u16,
    /// `WSCALE_FLAG | shift`, `WSCALE_UNKNOWN`, or 0.
    pub wscale: u8,
    /// [`TcpState`] as a byte.
    pub state: u8,
}

/// Both sides: `[0]` the originator, `[1]` the responder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tcp {
    pub peer: [Peer; 2],
}

/// Which timeout a connection's state calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TcpTimeout {
    /// First packet seen (`tcp_syn_sent`).
    First,
    /// Handshake under way (`tcp_syn_recv`).
    Opening,
    /// Both sides established (`tcp_established`).
    Established,
    /// One side closing (`tcp_fin_wait`).
    Closing,
    /// Both sides closing (`tcp_time_wait`).
    FinWait,
    /// Both FINs acknowledged or reset (`tcp_close`).
    Closed,
}

/// The tracker's verdict on one segment of a known connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// Belongs to the connection; refresh the timeout (if any).
    Valid(Option<TcpTimeout>),
    /// Belongs to it, but the connection is not established yet (`+new`).
    ValidNew(TcpTimeout),
    /// A SYN on a connection both sides closed: the old one ends, a new one starts.
    Reopen,
    /// Flags that make no sense.
    BadFlags,
    /// Outside the window.
    OutOfWindow,
}

/// Flag combinations no stack sends (as pf's normalizer and OVS refuse them).
pub(crate) fn invalid_flags(f: u16) -> bool {
    if f & SYN != 0 {
        if f & (RST | FIN) != 0 {
            return true;
        }
    } else if f & (ACK | RST) == 0 {
        return true;
    }
    f & ACK == 0 && f & (FIN | PSH | URG) != 0
}

/// May this segment start a connection? A SYN may, and so may a segment of a connection
/// already under way (picked up midway); a SYN+ACK may not.
pub(crate) fn valid_new(f: u16) -> bool {
    !invalid_flags(f) && f & (SYN | ACK) != (SYN | ACK)
}

#[inline]
fn seq_geq(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}

#[inline]
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Acks more than a fragment backwards or a window forward are out of window.
const MAX_ACK_WINDOW: i32 = 0xffff + 1500;

impl Tcp {
    /// The state for a connection whose first segment is `s`.
    pub(crate) fn new(s: &Segment) -> Tcp {
        let mut t = Tcp::default();
        let (src, dst) = t.peer.split_at_mut(1);
        let (src, dst) = (&mut src[0], &mut dst[0]);
        src.seqlo = s.seq;
        src.seqhi = s.seq.wrapping_add(s.len).wrapping_add(1);
        if s.flags & SYN != 0 {
            src.seqhi = src.seqhi.wrapping_add(1);
            src.wscale = s.wscale;
        } else {
            src.wscale = WSCALE_UNKNOWN;
            dst.wscale = WSCALE_UNKNOWN;
        }
        src.max_win = s.win.max(1);
        if src.wscale & WSCALE_MASK != 0 {
            let sws = src.wscale & WSCALE_MASK;
            src.max_win = (src.max_win as u32).div_ceil(1 << sws) as u16;
        }
        if s.flags & FIN != 0 {
            src.seqhi = src.seqhi.wrapping_add(1);
        }
        dst.seqhi = 1;
        dst.max_win = 1;
        src.state = TcpState::SynSent as u8;
        dst.state = TcpState::Closed as u8;
        t
    }

    /// Tracks segment `s` sent by the originator (`reply` false) or the responder.
    pub(crate) fn update(&mut self, s: &Segment, reply: bool, liberal: bool) -> Update {
        use TcpState as S;
        let f = s.flags;
        if invalid_flags(f) {
            return Update::BadFlags;
        }
        let (a, b) = self.peer.split_at_mut(1);
        let (src, dst) = if reply {
            (&mut b[0], &mut a[0])
        } else {
            (&mut a[0], &mut b[0])
        };
        if f & (SYN | ACK) == SYN {
            if dst.state >= S::FinWait2 as u8 && src.state >= S::FinWait2 as u8 {
                src.state = S::Closed as u8;
                dst.state = S::Closed as u8;
                return Update::Reopen;
            } else if src.state <= S::SynSent as u8 {
                src.state = S::SynSent as u8;
                return Update::ValidNew(TcpTimeout::First);
            }
        }
        let (mut sws, mut dws) = (0u8, 0u8);
        if src.wscale & WSCALE_FLAG != 0 && dst.wscale & WSCALE_FLAG != 0 && f & SYN == 0 {
            sws = src.wscale & WSCALE_MASK;
            dws = dst.wscale & WSCALE_MASK;
        } else if src.wscale & WSCALE_UNKNOWN != 0
            && dst.wscale & WSCALE_UNKNOWN != 0
            && f & SYN == 0
        {
            sws = MAX_WSCALE;
            dws = MAX_WSCALE;
        }
        let mut win = s.win as u32;
        let orig_seq = s.seq;
        let mut seq = s.seq;
        let mut ack = s.ack;
        let mut end = seq.wrapping_add(s.len);
        if f & SYN != 0 {
            end = end.wrapping_add(1);
        }
        if f & FIN != 0 {
            end = end.wrapping_add(1);
        }
        let mut check_ackskew = true;
        if src.state < S::SynSent as u8 {
            // The first segment from this side: learn its sequence space.
            if f & SYN != 0 && dst.wscale & WSCALE_FLAG != 0 {
                src.wscale = s.wscale;
                if src.wscale & WSCALE_FLAG != 0 {
                    sws = src.wscale & WSCALE_MASK;
                    win = win.div_ceil(1 << sws);
                    dws = dst.wscale & WSCALE_MASK;
                } else {
                    // The other side asked for scaling, this one did not: none for either.
                    dst.max_win = ((dst.max_win as u32) << (dst.wscale & WSCALE_MASK)) as u16;
                    dst.wscale = 0;
                }
            }
            src.seqlo = seq;
            src.state = S::SynSent as u8;
            let room = end.wrapping_add(((dst.max_win as u32) << dws).max(1));
            if src.seqhi == 1 || seq_geq(room, src.seqhi) {
                src.seqhi = room;
                check_ackskew = false;
            }
            if win > src.max_win as u32 {
                src.max_win = win as u16;
            }
        }
        if f & ACK == 0 || (ack == 0 && f & (ACK | RST) == (ACK | RST)) {
            // Nothing acknowledged (or a stack that acks 0 on a reset): skip the ack check.
            ack = dst.seqlo;
        }
        if seq == end {
            // No data: relax the sequence checks.
            seq = src.seqlo;
            end = seq;
        }
        let ackskew = if check_ackskew {
            dst.seqlo.wrapping_sub(ack) as i32
        } else {
            0
        };
        let scaled_win = win << sws;
        let in_window = seq_geq(src.seqhi, end)
            && seq_geq(seq, src.seqlo.wrapping_sub((dst.max_win as u32) << dws))
            && ackskew >= -MAX_ACK_WINDOW
            && ackskew <= MAX_ACK_WINDOW << sws
            && (f & RST == 0
                || orig_seq == src.seqlo
                || orig_seq == src.seqlo.wrapping_add(1)
                || orig_seq.wrapping_add(1) == src.seqlo);
        if in_window || liberal {
            if (src.max_win as u32) < win {
                src.max_win = win as u16;
            }
            if seq_gt(end, src.seqlo) {
                src.seqlo = end;
            }
            if seq_geq(ack.wrapping_add(scaled_win), dst.seqhi) {
                dst.seqhi = ack.wrapping_add(scaled_win.max(1));
            }
            if f & SYN != 0 && src.state < S::SynSent as u8 {
                src.state = S::SynSent as u8;
            }
            if f & FIN != 0 && src.state < S::Closing as u8 {
                src.state = S::Closing as u8;
            }
            if f & ACK != 0 {
                if dst.state == S::SynSent as u8 {
                    dst.state = S::Established as u8;
                } else if dst.state == S::Closing as u8 {
                    dst.state = S::FinWait2 as u8;
                }
            }
            if f & RST != 0 {
                src.state = S::TimeWait as u8;
                dst.state = S::TimeWait as u8;
            }
            let (ss, ds) = (src.state, dst.state);
            let t = if ss >= S::FinWait2 as u8 && ds >= S::FinWait2 as u8 {
                TcpTimeout::Closed
            } else if ss >= S::Closing as u8 && ds >= S::Closing as u8 {
                TcpTimeout::FinWait
            } else if ss < S::Established as u8 || ds < S::Established as u8 {
                TcpTimeout::Opening
            } else if ss >= S::Closing as u8 || ds >= S::Closing as u8 {
                TcpTimeout::Closing
            } else {
                TcpTimeout::Established
            };
            return Update::Valid(Some(t));
        }
        let loose_state = dst.state < S::SynSent as u8
            || dst.state >= S::FinWait2 as u8
            || src.state >= S::FinWait2 as u8;
        if loose_state
            && seq_geq(src.seqhi.wrapping_add(MAX_ACK_WINDOW as u32), end)
            && seq_geq(seq, src.seqlo.wrapping_sub(MAX_ACK_WINDOW as u32))
        {
            // Shotgunned SYNs, a connection picked up midway, stragglers after close: let it
            // through, learn what it says, but do not refresh the timeout (a flood must not
            // keep the entry alive).
            if (src.max_win as u32) < win {
                src.max_win = win as u16;
            }
            if seq_gt(end, src.seqlo) {
                src.seqlo = end;
            }
            if seq_geq(ack.wrapping_add(scaled_win), dst.seqhi) {
                dst.seqhi = ack.wrapping_add(scaled_win.max(1));
            }
            if f & FIN != 0 && src.state < S::Closing as u8 {
                src.state = S::Closing as u8;
            }
            if f & RST != 0 {
                src.state = S::TimeWait as u8;
                dst.state = S::TimeWait as u8;
            }
            return Update::Valid(None);
        }
        Update::OutOfWindow
    }

    /// The state `dump-conntrack` shows: the later of the two sides, with `FIN_WAIT_2`
    /// shown as `TIME_WAIT` and `SYN_RECV` as `ESTABLISHED` (as OVS prints it, to match the
    /// kernel's single state).
    pub(crate) fn shown_state(&self) -> TcpState {
        let s = TcpState::from_u8(self.peer[0].state.max(self.peer[1].state));
        match s {
            TcpState::FinWait2 => TcpState::TimeWait,
            TcpState::SynRecv => TcpState::Established,
            s => s,
        }
    }

    /// Packs into three words (for the connection slot).
    pub(crate) fn pack(&self) -> [u64; 3] {
        let p = |p: &Peer| (p.max_win as u64) << 16 | (p.wscale as u64) << 8 | p.state as u64;
        [
            (self.peer[0].seqlo as u64) << 32 | self.peer[0].seqhi as u64,
            (self.peer[1].seqlo as u64) << 32 | self.peer[1].seqhi as u64,
            p(&self.peer[0]) << 32 | p(&self.peer[1]),
        ]
    }

    /// Back from [`Tcp::pack`].
    pub(crate) fn unpack(w: [u64; 3]) -> Tcp {
        let peer = |sq: u64, m: u64| Peer {
            seqlo: (sq >> 32) as u32,
            seqhi: sq as u32,
            max_win: (m >> 16) as u16,
            wscale: (m >> 8) as u8,
            state: m as u8,
        };
        Tcp {
            peer: [peer(w[0], w[2] >> 32), peer(w[1], w[2] & 0xffff_ffff)],
        }
    }
}

#[cfg(test)]
#[path = "tcp_tests.rs"]
mod tests;
