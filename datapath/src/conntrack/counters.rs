//! Why packets are `+inv`, why commits are refused, and the counters of both.
//!
//! What: every invalid verdict is counted under one [`CtInvalid`] reason and every refused
//! commit under one [`CtRefusal`]. Each poll thread's [`CtThread`](super::CtThread) owns a
//! [`ThreadCounters`] (single writer, plain load and store); events of the control plane and
//! the background thread (expiry, eviction, flushes, fragments) are [`SharedCounters`]
//! atomics. [`Conntrack::stats`](super::Conntrack::stats) sums them.
//!
//! Thread-safety: `ThreadCounters` has one writer; everything is readable from anywhere.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::stats::Counter;

/// Why a packet was marked invalid (`+trk+inv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CtInvalid {
    /// Not IPv4 or IPv6 (or the Ethernet header is cut short).
    NotIp,
    /// IP header malformed (version, length, extension headers).
    BadIpHeader,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// Transport header cut short or malformed.
    BadL4Header,
    /// Transport checksum wrong.
    BadL4Checksum,
    /// TCP or UDP port 0.
    PortZero,
    /// An ICMP type the tracker does not follow (neither echo-like nor an error).
    IcmpUnsupported,
    /// An ICMP reply, or another type that cannot start a connection, without one.
    IcmpNotNew,
    /// An ICMP error whose quoted packet is malformed or not addressed from its receiver.
    IcmpErrorBadInner,
    /// An ICMP error quoting no known connection.
    IcmpErrorNoConn,
    /// TCP flags no stack sends together.
    TcpBadFlags,
    /// A TCP segment that cannot start a connection (SYN+ACK, or flags invalid) without one.
    TcpNotNew,
    /// A TCP segment outside the connection's window.
    TcpOutOfWindow,
    /// A fragment that could not be reassembled (reassembly off, or its table full).
    Fragment,
    /// A fragment overlapping one already held.
    FragOverlap,
    /// A fragment (not the last) smaller than the minimum fragment size.
    FragTooSmall,
    /// A fragment malformed (length, offset, too many for one datagram, too large).
    FragMalformed,
}

impl CtInvalid {
    /// Number of reasons.
    pub const COUNT: usize = 17;

    /// Every reason, in counter order.
    pub const ALL: [CtInvalid; Self::COUNT] = [
        CtInvalid::NotIp,
        CtInvalid::BadIpHeader,
        CtInvalid::BadIpChecksum,
        CtInvalid::BadL4Header,
        CtInvalid::BadL4Checksum,
        CtInvalid::PortZero,
        CtInvalid::IcmpUnsupported,
        CtInvalid::IcmpNotNew,
        CtInvalid::IcmpErrorBadInner,
        CtInvalid::IcmpErrorNoConn,
        CtInvalid::TcpBadFlags,
        CtInvalid::TcpNotNew,
        CtInvalid::TcpOutOfWindow,
        CtInvalid::Fragment,
        CtInvalid::FragOverlap,
        CtInvalid::FragTooSmall,
        CtInvalid::FragMalformed,
    ];

    /// The counter's name.
    pub const fn name(self) -> &'static str {
        match self {
            CtInvalid::NotIp => "ct_invalid_not_ip",
            CtInvalid::BadIpHeader => "ct_invalid_bad_ip_header",
            CtInvalid::BadIpChecksum => "ct_invalid_bad_ip_checksum",
            CtInvalid::BadL4Header => "ct_invalid_bad_l4_header",
            CtInvalid::BadL4Checksum => "ct_invalid_bad_l4_checksum",
            CtInvalid::PortZero => "ct_invalid_port_zero",
            CtInvalid::IcmpUnsupported => "ct_invalid_icmp_unsupported",
            CtInvalid::IcmpNotNew => "ct_invalid_icmp_not_new",
            CtInvalid::IcmpErrorBadInner => "ct_invalid_icmp_error_bad_inner",
            CtInvalid::IcmpErrorNoConn => "ct_invalid_icmp_error_no_conn",
            CtInvalid::TcpBadFlags => "ct_invalid_tcp_bad_flags",
            CtInvalid::TcpNotNew => "ct_invalid_tcp_not_new",
            CtInvalid::TcpOutOfWindow => "ct_invalid_tcp_out_of_window",
            CtInvalid::Fragment => "ct_invalid_fragment",
            CtInvalid::FragOverlap => "ct_invalid_frag_overlap",
            CtInvalid::FragTooSmall => "ct_invalid_frag_too_small",
            CtInvalid::FragMalformed => "ct_invalid_frag_malformed",
        }
    }
}

/// Why a `commit` created no connection (the packet stays `+trk+new`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CtRefusal {
    /// The zone holds its limit of connections.
    ZoneLimit,
    /// The table holds its maximum and no unanswered connection could be evicted.
    TableFull,
    /// No free translated tuple in the NAT range.
    NatExhausted,
    /// The reply tuple is another connection's (a clash Linux refuses too).
    TupleClash,
}

impl CtRefusal {
    /// Number of reasons.
    pub const COUNT: usize = 4;

    /// Every reason, in counter order.
    pub const ALL: [CtRefusal; Self::COUNT] = [
        CtRefusal::ZoneLimit,
        CtRefusal::TableFull,
        CtRefusal::NatExhausted,
        CtRefusal::TupleClash,
    ];

    /// The counter's name.
    pub const fn name(self) -> &'static str {
        match self {
            CtRefusal::ZoneLimit => "ct_refused_zone_limit",
            CtRefusal::TableFull => "ct_refused_table_full",
            CtRefusal::NatExhausted => "ct_refused_nat_exhausted",
            CtRefusal::TupleClash => "ct_refused_tuple_clash",
        }
    }
}

/// One poll thread's counters (it is their only writer).
#[derive(Debug, Default)]
pub struct ThreadCounters {
    /// Packets tracked (including invalid ones).
    pub packets: Counter,
    /// Connections created.
    pub created: Counter,
    /// Packets whose headers NAT rewrote.
    pub nat_rewritten: Counter,
    /// Connections evicted to make room (oldest unanswered first).
    pub evicted: Counter,
    /// Invalid verdicts, by `CtInvalid as usize`.
    pub invalid: [Counter; CtInvalid::COUNT],
    /// Refused commits, by `CtRefusal as usize`.
    pub refused: [Counter; CtRefusal::COUNT],
}

/// Events outside the poll threads' packet path.
#[derive(Debug, Default)]
pub struct SharedCounters {
    /// Connections removed on expiry.
    pub expired: AtomicU64,
    /// Connections removed by flushes.
    pub flushed: AtomicU64,
    /// Connections ended by the tracker (TCP reopened, `force`).
    pub replaced: AtomicU64,
    /// Fragments taken for reassembly.
    pub frag_accepted: AtomicU64,
    /// Datagrams reassembled.
    pub frag_reassembled: AtomicU64,
    /// Fragments dropped because their datagram timed out.
    pub frag_expired: AtomicU64,
    /// Fragments not taken because the reassembler held its maximum.
    pub frag_table_full: AtomicU64,
    /// Fragments held now, published by whoever changed it under the reassembler's lock
    /// (so reading it takes no lock).
    pub frag_held: AtomicU64,
}

impl SharedCounters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
