//! Identifiers shared by every part of the datapath.
//!
//! Each identifier is a newtype so a port number can never be passed where a table id is
//! expected. Reserved values follow OpenFlow 1.3 where OpenFlow defines one.

use std::fmt;

/// An OpenFlow port number. Ports of a datapath are numbered `1..=PortNo::MAX`; the values
/// from `0xffff_fff8` up are the OpenFlow reserved ports, which the datapath expresses as
/// actions (`Action::InPort`, `Action::Flood`, ...) rather than as port numbers. These are
/// the one definition of both for the datapath and the daemon (`proto` keeps its own copy
/// for the flow text syntax, which cannot depend on the datapath).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortNo(pub u32);

impl PortNo {
    /// The highest number a port of a datapath may have. OpenFlow allows up to
    /// `0xffff_ff00` (OFPP_MAX); the datapath finds a port through a direct index by number,
    /// so its ports stay below `0xff00`.
    pub const MAX: PortNo = PortNo(0xfeff);
    /// Back out of the ingress port (OFPP_IN_PORT).
    pub const IN_PORT: PortNo = PortNo(0xffff_fff8);
    /// Through the flow tables, in a packet-out (OFPP_TABLE).
    pub const TABLE: PortNo = PortNo(0xffff_fff9);
    /// The L2 learning switch (OFPP_NORMAL).
    pub const NORMAL: PortNo = PortNo(0xffff_fffa);
    /// Every port with flooding enabled but the ingress one (OFPP_FLOOD).
    pub const FLOOD: PortNo = PortNo(0xffff_fffb);
    /// Every port but the ingress one (OFPP_ALL).
    pub const ALL: PortNo = PortNo(0xffff_fffc);
    /// The controller; also the ingress port of a packet-out it sent (OFPP_CONTROLLER).
    pub const CONTROLLER: PortNo = PortNo(0xffff_fffd);
    /// The bridge's own port (OFPP_LOCAL).
    pub const LOCAL: PortNo = PortNo(0xffff_fffe);
    /// "No port": used where OpenFlow uses OFPP_ANY (for example an out_port filter).
    pub const ANY: PortNo = PortNo(0xffff_ffff);

    /// True for numbers a port of a datapath may carry (`1..=PortNo::MAX`).
    pub fn is_valid(self) -> bool {
        self.0 != 0 && self <= Self::MAX
    }
}

impl fmt::Display for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::LOCAL {
            f.write_str("LOCAL")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// An OpenFlow table number. Tables `0..=253` hold flows (OpenFlow 1.3 reserves 254/255).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub u8);

impl TableId {
    /// Number of flow tables a bridge has.
    pub const COUNT: usize = 254;
    /// Highest valid table.
    pub const MAX: TableId = TableId(253);

    /// True for tables that can hold flows.
    pub fn is_valid(self) -> bool {
        self <= Self::MAX
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An OpenFlow meter id (`1..=0xffff0000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MeterId(pub u32);

/// An OpenFlow group id (`0..=0xffffff00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

/// A flow's controller-chosen cookie.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cookie(pub u64);

/// A VLAN id (12 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VlanId(pub u16);

impl VlanId {
    /// Largest VLAN id that may appear on the wire.
    pub const MAX: VlanId = VlanId(4095);
}

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The address as the low 48 bits of an integer, first octet most significant.
    pub fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Inverse of [`MacAddr::to_u64`]; the top 16 bits are ignored.
    pub fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Group (multicast or broadcast) address.
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
