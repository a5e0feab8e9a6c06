//! The numeric ranges of the flow language that are not about ports (those are in
//! `ports`): flow priorities, table, meter and group ids.

/// Priority of a flow whose text gives none (OFP_DEFAULT_PRIORITY).
pub const DEFAULT_PRIORITY: u32 = 32768;
/// Highest flow table id (255 means "all tables" in OpenFlow and is not a table).
pub const MAX_TABLE_ID: u32 = 254;
/// Highest meter id (OFPM_MAX).
pub const MAX_METER_ID: u32 = 0xffff_0000;
/// Highest group id (OFPG_MAX).
pub const MAX_GROUP_ID: u32 = 0xffff_ff00;
