//! The numeric ranges of the flow language that are not about ports (those are in
//! `ports`): flow priorities, table, meter and group ids.

/// Priority of a flow whose text gives none (OFP_DEFAULT_PRIORITY).
pub const DEFAULT_PRIORITY: u32 = 32768;
/// Highest flow table id: tables are 0..=253 (OpenFlow 1.3 reserves 254; 255 means "all
/// tables" and is not a table). The one definition clients share; the daemon checks at
/// compile time that its datapath agrees.
pub const MAX_TABLE_ID: u32 = 253;
/// Highest meter id (OFPM_MAX).
pub const MAX_METER_ID: u32 = 0xffff_0000;
/// Highest group id (OFPG_MAX).
pub const MAX_GROUP_ID: u32 = 0xffff_ff00;
/// The virtual meter that limits packets sent to the controller (OFPM_CONTROLLER,
/// ovs-ofctl `meter=controller`).
pub const METER_CONTROLLER: u32 = 0xffff_fffe;
/// The virtual meter that limits packets the poll threads translate in their slow path
/// (OFPM_SLOWPATH, ovs-ofctl `meter=slowpath`).
pub const METER_SLOWPATH: u32 = 0xffff_fffd;
/// The largest OpenFlow message (its 16-bit length field). A flow whose OpenFlow 1.3
/// flow_mod would be longer cannot travel in one message, so it is refused wherever it
/// enters, as Open vSwitch refuses it ("input too big"); see `size`.
pub const MAX_OPENFLOW_MESSAGE_BYTES: usize = 65535;
