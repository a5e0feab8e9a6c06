//! Identifier newtypes: ports, tables, groups, meters, buffers, with their reserved values.

/// An OpenFlow 1.3 port number (32 bits).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortNo(pub u32);

impl PortNo {
    /// Largest physical port number.
    pub const MAX: PortNo = PortNo(0xffff_ff00);
    /// OFPP_IN_PORT: send back out of the input port.
    pub const IN_PORT: PortNo = PortNo(0xffff_fff8);
    /// OFPP_TABLE: submit to the first table (packet-out only).
    pub const TABLE: PortNo = PortNo(0xffff_fff9);
    /// OFPP_NORMAL: L2 learning switch processing.
    pub const NORMAL: PortNo = PortNo(0xffff_fffa);
    /// OFPP_FLOOD: all ports but the input and blocked ones.
    pub const FLOOD: PortNo = PortNo(0xffff_fffb);
    /// OFPP_ALL: all ports but the input port.
    pub const ALL: PortNo = PortNo(0xffff_fffc);
    /// OFPP_CONTROLLER: to the controller as a packet-in.
    pub const CONTROLLER: PortNo = PortNo(0xffff_fffd);
    /// OFPP_LOCAL: the bridge's internal port.
    pub const LOCAL: PortNo = PortNo(0xffff_fffe);
    /// OFPP_ANY: wildcard port (filters), no port.
    pub const ANY: PortNo = PortNo(0xffff_ffff);
}

/// A flow table id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId(pub u8);

impl TableId {
    /// Largest real table id.
    pub const MAX: TableId = TableId(0xfe);
    /// OFPTT_ALL: every table (deletes, stats).
    pub const ALL: TableId = TableId(0xff);
}

/// A group id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u32);

impl GroupId {
    /// Largest real group id.
    pub const MAX: GroupId = GroupId(0xffff_ff00);
    /// OFPG_ALL: every group (delete, stats).
    pub const ALL: GroupId = GroupId(0xffff_fffc);
    /// OFPG_ANY: wildcard group (filters), no group.
    pub const ANY: GroupId = GroupId(0xffff_ffff);
}

/// A meter id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterId(pub u32);

impl MeterId {
    /// Largest real meter id.
    pub const MAX: MeterId = MeterId(0xffff_0000);
    /// OFPM_SLOWPATH: the meter for datapath-to-slow-path traffic.
    pub const SLOWPATH: MeterId = MeterId(0xffff_fffd);
    /// OFPM_CONTROLLER: the meter for packet-ins.
    pub const CONTROLLER: MeterId = MeterId(0xffff_fffe);
    /// OFPM_ALL: every meter (delete, stats).
    pub const ALL: MeterId = MeterId(0xffff_ffff);
}

/// A packet buffer id on the switch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct BufferId(pub u32);

impl BufferId {
    /// OFP_NO_BUFFER: the packet is in the message, not buffered.
    pub const NO_BUFFER: BufferId = BufferId(0xffff_ffff);
}
