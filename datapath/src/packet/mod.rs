//! Packet buffers and zero-copy header views, one file per protocol.
//!
//! Each protocol module follows one shape (after smoltcp's `wire`): a `Packet<T: AsRef<[u8]>>`
//! view with field accessors over borrowed bytes, a `new_checked` constructor that validates
//! lengths so accessors never panic on untrusted bytes, and a small `Copy` `Repr` with
//! `parse`, `emit` and `buffer_len`.
//!
//! The no-panic contract: `Packet::new_unchecked` may panic on access if the buffer is
//! short; `Packet::new_checked` returns [`Error`] instead, and after it succeeds every
//! accessor is in bounds. `Repr::parse` never panics on any input.
//!
//! One vocabulary for header bytes: tunnel header templates and their per-packet patches,
//! decapsulation, the tunnel endpoint's ARP and the benchmarks' frames all read and write
//! through these views (with a length check of their own first where the drop reason
//! depends on which check fails, then `new_unchecked`). The one parser that keeps raw
//! offsets is `flow::extract`, the per-packet key extraction: it reads each header through
//! one fixed-size window (one length check, then loads at constant offsets), which a view's
//! per-accessor bounds checks would cost. What the views cost elsewhere, counted with
//! `bench/instructions` (bench/README.md): VXLAN encapsulation and output the same
//! (660.5 instructions per packet before, 660.6 after); decapsulation 7 more (197.7 before,
//! 204.8 after, `bench/instructions tunnel '^tunnel/vxlan_decap' decap_burst`), kept for the
//! one vocabulary. The hot accessors are `#[inline(always)]`: left to the compiler, the
//! IPv4 payload and the VXLAN checks stayed calls and cost decapsulation 46.

/// Declares a protocol's zero-copy view, `Packet<T>`, with `new_unchecked`, `new_checked`
/// (which runs the protocol's own `check_len`) and `into_inner`. Field accessors, setters and
/// `check_len` stay in each protocol's module.
macro_rules! view {
    ($doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct Packet<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> Packet<T> {
            /// Wraps without checking; accessors may panic on a short buffer.
            pub const fn new_unchecked(buffer: T) -> Packet<T> {
                Packet { buffer }
            }

            /// Wraps after `check_len`, so every accessor is in bounds.
            pub fn new_checked(buffer: T) -> super::Result<Packet<T>> {
                let p = Self::new_unchecked(buffer);
                p.check_len()?;
                Ok(p)
            }

            /// The underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}
use view;

/// The big-endian readers every parser of the datapath uses (views, `flow::extract`,
/// rewrites): the value at byte `at` of `b`. The caller has checked the length (a view after
/// `new_checked`, `extract` through a fixed-size window); past the end they panic. The wider
/// ones copy into an array first, so they compile to one load.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// See [`be16`].
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

/// See [`be16`].
#[inline(always)]
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// See [`be16`].
#[inline(always)]
pub(crate) fn be128(b: &[u8], at: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    u128::from_be_bytes(a)
}

/// The 48-bit MAC address at `at` as an integer (see [`be16`]).
#[inline(always)]
pub(crate) fn mac48(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes([
        0,
        0,
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
    ])
}

pub mod arp;
pub mod buf;
#[cfg(test)]
mod captured;
pub mod checksum;
pub mod ethernet;
pub mod gre;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

#[cfg(test)]
mod testdata;

pub use buf::{BUF_SIZE, BURST, Batch, BufPool, HEADROOM, MAX_FRAME, PacketBuf};

/// A frame or header could not be parsed. Zero-size on purpose: the datapath counts drops by
/// reason at the call site, and the control plane never needs more detail than "malformed".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed packet")
    }
}

impl std::error::Error for Error {}

/// Result of parsing.
pub type Result<T> = core::result::Result<T, Error>;

/// Ethertypes the datapath knows.
pub mod ethertype {
    /// IPv4
    pub const IPV4: u16 = 0x0800;
    /// ARP
    pub const ARP: u16 = 0x0806;
    /// 802.1Q customer VLAN tag
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer)
    pub const QINQ: u16 = 0x88a8;
    /// IPv6
    pub const IPV6: u16 = 0x86dd;
    /// Transparent Ethernet bridging (GRE payload type)
    pub const TEB: u16 = 0x6558;
    /// MPLS unicast
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast
    pub const MPLS_MCAST: u16 = 0x8848;

    /// True for an MPLS ethertype.
    #[inline]
    pub const fn is_mpls(t: u16) -> bool {
        t == MPLS || t == MPLS_MCAST
    }
}

/// IP protocol numbers the datapath knows.
pub mod ip_proto {
    /// ICMP
    pub const ICMP: u8 = 1;
    /// TCP
    pub const TCP: u8 = 6;
    /// UDP
    pub const UDP: u8 = 17;
    /// GRE
    pub const GRE: u8 = 47;
    /// ICMPv6
    pub const ICMPV6: u8 = 58;
    /// SCTP
    pub const SCTP: u8 = 132;
}
