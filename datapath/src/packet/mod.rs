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

/// The big-endian `u16` at the start of `b` (callers have checked the length).
#[inline]
pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// The big-endian `u32` at the start of `b` (callers have checked the length).
#[inline]
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
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

pub use buf::{BUF_SIZE, BufPool, HEADROOM, MAX_FRAME, PacketBuf};

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
}
