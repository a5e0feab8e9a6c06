//! Reading the table: entries in `ovs-appctl dpctl/dump-conntrack` form, filters for dumps
//! and flushes, and statistics.
//!
//! What: [`Conntrack::dump`] snapshots each live connection under its lock into a
//! [`CtEntry`], whose `Display` is OVS's line (`tcp,orig=(src=...,dst=...,sport=...,
//! dport=...),reply=(...),zone=N,mark=M,labels=0x...,protoinfo=(state=ESTABLISHED)`;
//! [`CtEntry::format`] with `stats` adds `timeout=` as `-s` does). [`CtFilter`] selects by
//! zone and by fields of either tuple. [`Conntrack::stats`] counts entries per zone and
//! protocol and sums every counter.
//!
//! Thread-safety: control-plane calls; each takes one connection lock at a time.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;

use crate::packet::ip_proto;

use super::Conntrack;
use super::counters::{CtInvalid, CtRefusal};
use super::slot::{LIVE, decode, flag};
use super::tcp::{Tcp, TcpState};
use super::tuple::Tuple;

/// One connection, as dumped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtEntry {
    /// Original-direction tuple.
    pub orig: Tuple,
    /// Reply-direction tuple.
    pub reply: Tuple,
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label`.
    pub label: u128,
    /// TCP state as OVS shows it (TCP only).
    pub tcp_state: Option<TcpState>,
    /// Seconds until it expires.
    pub timeout_s: u32,
    /// It has source NAT.
    pub snat: bool,
    /// It has destination NAT.
    pub dnat: bool,
}

fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        ip_proto::ICMP => "icmp",
        ip_proto::ICMPV6 => "icmpv6",
        ip_proto::TCP => "tcp",
        ip_proto::UDP => "udp",
        132 => "sctp",
        136 => "udplite",
        33 => "dccp",
        2 => "igmp",
        _ => return None,
    })
}

fn write_tuple(s: &mut String, t: &Tuple) {
    if t.v6 {
        let _ = write!(
            s,
            "src={},dst={}",
            Ipv6Addr::from(t.src),
            Ipv6Addr::from(t.dst)
        );
    } else {
        let _ = write!(
            s,
            "src={},dst={}",
            Ipv4Addr::from(t.src as u32),
            Ipv4Addr::from(t.dst as u32)
        );
    }
    if t.is_icmp() {
        let _ = write!(s, ",id={},type={},code=0", t.sport, t.icmp_type());
    } else {
        let _ = write!(s, ",sport={},dport={}", t.sport, t.dport);
    }
}

impl CtEntry {
    /// OVS's line; with `stats`, also `timeout=` (as `dump-conntrack -s`).
    pub fn format(&self, stats: bool) -> String {
        let mut s = String::with_capacity(160);
        match proto_name(self.orig.proto) {
            Some(n) => s.push_str(n),
            None => {
                let _ = write!(s, "{}", self.orig.proto);
            }
        }
        s.push_str(",orig=(");
        write_tuple(&mut s, &self.orig);
        s.push_str("),reply=(");
        write_tuple(&mut s, &self.reply);
        s.push(')');
        if self.orig.zone != 0 {
            let _ = write!(s, ",zone={}", self.orig.zone);
        }
        if stats {
            let _ = write!(s, ",timeout={}", self.timeout_s);
        }
        if self.mark != 0 {
            let _ = write!(s, ",mark={}", self.mark);
        }
        if self.label != 0 {
            let _ = write!(s, ",labels={:#x}", self.label);
        }
        if let Some(st) = self.tcp_state {
            let _ = write!(s, ",protoinfo=(state={})", st.name());
        }
        s
    }
}

impl fmt::Display for CtEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(false))
    }
}

/// Fields of a tuple to match; `None` matches anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TupleMatch {
    /// Source address.
    pub src: Option<u128>,
    /// Destination address.
    pub dst: Option<u128>,
    /// Source port (ICMP: identifier).
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
}

impl TupleMatch {
    fn matches(&self, t: &Tuple) -> bool {
        self.src.is_none_or(|v| v == t.src)
            && self.dst.is_none_or(|v| v == t.dst)
            && self.sport.is_none_or(|v| v == t.sport)
            && self.dport.is_none_or(|v| v == t.dport)
    }
}

/// Which connections a dump or flush selects (`CtFilter::default()`: all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtFilter {
    /// Only this zone.
    pub zone: Option<u16>,
    /// Only this IP protocol.
    pub proto: Option<u8>,
    /// Only IPv6 (`Some(true)`) or IPv4.
    pub v6: Option<bool>,
    /// Fields of the original tuple.
    pub orig: TupleMatch,
    /// Fields of the reply tuple.
    pub reply: TupleMatch,
}

impl CtFilter {
    /// True when connection (`orig`, `reply`) is selected.
    pub fn matches(&self, orig: &Tuple, reply: &Tuple) -> bool {
        self.zone.is_none_or(|z| z == orig.zone)
            && self.proto.is_none_or(|p| p == orig.proto)
            && self.v6.is_none_or(|v| v == orig.v6)
            && self.orig.matches(orig)
            && self.reply.matches(reply)
    }

    /// Exactly one connection, by its original tuple (a five-tuple flush).
    pub fn tuple(t: &Tuple) -> CtFilter {
        CtFilter {
            zone: Some(t.zone),
            proto: Some(t.proto),
            v6: Some(t.v6),
            orig: TupleMatch {
                src: Some(t.src),
                dst: Some(t.dst),
                sport: Some(t.sport),
                dport: Some(t.dport),
            },
            reply: TupleMatch::default(),
        }
    }
}

/// The tracker's numbers (`ct-stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CtStats {
    /// Connections now.
    pub entries: u64,
    /// The maximum.
    pub max_conns: u64,
    /// Connections per (zone, protocol name).
    pub per_zone_proto: BTreeMap<(u16, String), u64>,
    /// Packets tracked.
    pub packets: u64,
    /// Connections created.
    pub created: u64,
    /// Connections expired.
    pub expired: u64,
    /// Connections evicted (oldest unanswered first).
    pub evicted: u64,
    /// Connections removed by flushes.
    pub flushed: u64,
    /// Connections ended by the tracker (TCP reopened, `force`).
    pub replaced: u64,
    /// Packets NAT rewrote.
    pub nat_rewritten: u64,
    /// Invalid verdicts by reason name.
    pub invalid: Vec<(&'static str, u64)>,
    /// Refused commits by reason name.
    pub refused: Vec<(&'static str, u64)>,
    /// Fragment counters: accepted, reassembled, expired, table full, held now.
    pub frags: Vec<(&'static str, u64)>,
    /// Bytes held for connections.
    pub memory_bytes: u64,
}

impl Conntrack {
    /// Every live connection `filter` selects, at `now_ms`.
    pub fn dump(&self, filter: &CtFilter, now_ms: u64) -> Vec<CtEntry> {
        let mut out = Vec::new();
        for i in 0..self.table.high_water() as u32 {
            let Some(s) = self.table.slot(i) else {
                continue;
            };
            let (inc, st) = decode(s.word());
            if st != LIVE || !s.lock(inc) {
                continue;
            }
            let (orig, reply, state) = (s.key(), s.rkey(), s.load());
            s.unlock(inc);
            if state.expires_ms <= now_ms || !filter.matches(&orig, &reply) {
                continue;
            }
            out.push(CtEntry {
                orig,
                reply,
                mark: state.mark,
                label: state.label,
                tcp_state: (orig.proto == ip_proto::TCP)
                    .then(|| Tcp::unpack(state.tcp).shown_state()),
                timeout_s: ((state.expires_ms - now_ms) / 1000).min(u32::MAX as u64) as u32,
                snat: state.flags & flag::SNAT != 0,
                dnat: state.flags & flag::DNAT != 0,
            });
        }
        out
    }

    /// Statistics, counting entries by walking the table. Takes no lock a poll thread
    /// takes (slots are read without their lock; the thread list is copied on write; the
    /// fragments held are a published count), so a metrics scrape never holds up packets.
    pub fn stats(&self) -> CtStats {
        let mut s = CtStats {
            entries: self.len() as u64,
            max_conns: self.max_conns() as u64,
            memory_bytes: self.memory_bytes() as u64,
            ..CtStats::default()
        };
        for i in 0..self.table.high_water() as u32 {
            let Some(slot) = self.table.slot(i) else {
                continue;
            };
            if decode(slot.word()).1 != LIVE {
                continue;
            }
            let k = slot.key();
            let name = proto_name(k.proto).map_or_else(|| k.proto.to_string(), str::to_string);
            *s.per_zone_proto.entry((k.zone, name)).or_default() += 1;
        }
        let mut invalid = [0u64; CtInvalid::COUNT];
        let mut refused = [0u64; CtRefusal::COUNT];
        for t in self.threads.load().iter() {
            s.packets += t.packets.get();
            s.created += t.created.get();
            s.evicted += t.evicted.get();
            s.nat_rewritten += t.nat_rewritten.get();
            for (a, c) in invalid.iter_mut().zip(&t.invalid) {
                *a += c.get();
            }
            for (a, c) in refused.iter_mut().zip(&t.refused) {
                *a += c.get();
            }
        }
        s.invalid = CtInvalid::ALL
            .iter()
            .map(|r| (r.name(), invalid[*r as usize]))
            .collect();
        s.refused = CtRefusal::ALL
            .iter()
            .map(|r| (r.name(), refused[*r as usize]))
            .collect();
        let sh = &self.shared;
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        s.expired = ld(&sh.expired);
        s.flushed = ld(&sh.flushed);
        s.replaced = ld(&sh.replaced);
        s.frags = vec![
            ("frag_accepted", ld(&sh.frag_accepted)),
            ("frag_reassembled", ld(&sh.frag_reassembled)),
            ("frag_expired", ld(&sh.frag_expired)),
            ("frag_table_full", ld(&sh.frag_table_full)),
            ("frag_held", ld(&sh.frag_held)),
        ];
        s
    }
}
