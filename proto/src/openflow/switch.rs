//! Switch-level messages: FEATURES_REPLY, GET/SET_CONFIG, ROLE_REQUEST/REPLY,
//! GET_ASYNC_REPLY/SET_ASYNC and TABLE_MOD.

use super::body::MessageBody;
use super::error::{OfpError, bad_request};
use super::header::MsgType;
use super::ids::TableId;
use super::wire::{Put, Reader};

fn exact(body: &[u8], len: usize) -> Result<Reader<'_>, OfpError> {
    if body.len() != len {
        return Err(bad_request::BAD_LEN);
    }
    Ok(Reader::new(body, bad_request::BAD_LEN))
}

/// Switch capability bits (ofp_capabilities).
#[allow(missing_docs)]
pub mod capabilities {
    pub const FLOW_STATS: u32 = 1 << 0;
    pub const TABLE_STATS: u32 = 1 << 1;
    pub const PORT_STATS: u32 = 1 << 2;
    pub const GROUP_STATS: u32 = 1 << 3;
    pub const IP_REASM: u32 = 1 << 5;
    pub const QUEUE_STATS: u32 = 1 << 6;
    pub const PORT_BLOCKED: u32 = 1 << 8;
}

/// OFPT_FEATURES_REPLY.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FeaturesReply {
    /// Datapath id (low 48 bits: a MAC address by convention).
    pub datapath_id: u64,
    /// Packets the switch can buffer for packet-in (0: none).
    pub n_buffers: u32,
    /// Number of flow tables.
    pub n_tables: u8,
    /// Auxiliary connection id (0: main connection).
    pub auxiliary_id: u8,
    /// OFPC_* bits.
    pub capabilities: u32,
    /// Reserved.
    pub reserved: u32,
}

impl<'a> MessageBody<'a> for FeaturesReply {
    const TYPE: MsgType = MsgType::FEATURES_REPLY;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = exact(body, 24)?;
        let datapath_id = r.u64()?;
        let n_buffers = r.u32()?;
        let n_tables = r.u8()?;
        let auxiliary_id = r.u8()?;
        r.skip(2)?;
        Ok(FeaturesReply {
            datapath_id,
            n_buffers,
            n_tables,
            auxiliary_id,
            capabilities: r.u32()?,
            reserved: r.u32()?,
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u64(self.datapath_id);
        out.put_u32(self.n_buffers);
        out.put_u8(self.n_tables);
        out.put_u8(self.auxiliary_id);
        out.put_zeros(2);
        out.put_u32(self.capabilities);
        out.put_u32(self.reserved);
    }
}

/// OFPC_FRAG_* flags of the switch configuration.
#[allow(missing_docs)]
pub mod config_flags {
    pub const FRAG_NORMAL: u16 = 0;
    pub const FRAG_DROP: u16 = 1;
    pub const FRAG_REASM: u16 = 2;
    pub const FRAG_MASK: u16 = 3;
}

/// GET_CONFIG_REPLY and SET_CONFIG body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// OFPC_* flags (fragment handling).
    pub flags: u16,
    /// Bytes of a table-miss packet sent to the controller (0xffff: all).
    pub miss_send_len: u16,
}

impl SwitchConfig {
    /// Parses a GET_CONFIG_REPLY or SET_CONFIG body.
    pub fn parse(body: &[u8]) -> Result<Self, OfpError> {
        let mut r = exact(body, 4)?;
        Ok(SwitchConfig {
            flags: r.u16()?,
            miss_send_len: r.u16()?,
        })
    }
    /// Writes the body.
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u16(self.flags);
        out.put_u16(self.miss_send_len);
    }
}

/// Controller roles (ofp_controller_role).
#[allow(missing_docs)]
pub mod role {
    pub const NOCHANGE: u32 = 0;
    pub const EQUAL: u32 = 1;
    pub const MASTER: u32 = 2;
    pub const SLAVE: u32 = 3;
}

/// ROLE_REQUEST and ROLE_REPLY body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// OFPCR_ROLE_*.
    pub role: u32,
    /// Master election generation id (for MASTER and SLAVE requests).
    pub generation_id: u64,
}

impl Role {
    /// Parses the body.
    pub fn parse(body: &[u8]) -> Result<Self, OfpError> {
        let mut r = exact(body, 16)?;
        let role = r.u32()?;
        r.skip(4)?;
        Ok(Role {
            role,
            generation_id: r.u64()?,
        })
    }
    /// Writes the body.
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.role);
        out.put_zeros(4);
        out.put_u64(self.generation_id);
    }
}

/// GET_ASYNC_REPLY and SET_ASYNC body (OpenFlow 1.3): for each kind of asynchronous
/// message, a bitmap of reasons, index 0 for master/equal and 1 for slave connections.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct AsyncConfig {
    /// Packet-in reasons (bit = 1 << OFPR_*).
    pub packet_in_mask: [u32; 2],
    /// Port-status reasons.
    pub port_status_mask: [u32; 2],
    /// Flow-removed reasons.
    pub flow_removed_mask: [u32; 2],
}

impl AsyncConfig {
    /// What a new connection starts with, as OpenFlow 1.3 and Open vSwitch start it:
    /// packet-ins for table misses and actions (not for an invalid TTL) to a master or
    /// equal, none to a slave; port status to all; flow-removed to a master or equal.
    pub const DEFAULT: AsyncConfig = AsyncConfig {
        packet_in_mask: [0x3, 0x0],
        port_status_mask: [0x7, 0x7],
        flow_removed_mask: [0xf, 0x0],
    };

    /// Parses the body.
    pub fn parse(body: &[u8]) -> Result<Self, OfpError> {
        let mut r = exact(body, 24)?;
        let mut pair = || -> Result<[u32; 2], OfpError> { Ok([r.u32()?, r.u32()?]) };
        Ok(AsyncConfig {
            packet_in_mask: pair()?,
            port_status_mask: pair()?,
            flow_removed_mask: pair()?,
        })
    }
    /// Writes the body.
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        for m in [
            self.packet_in_mask,
            self.port_status_mask,
            self.flow_removed_mask,
        ] {
            out.put_u32(m[0]);
            out.put_u32(m[1]);
        }
    }
}

/// OFPT_TABLE_MOD.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TableMod {
    /// Table, or ALL.
    pub table_id: TableId,
    /// OFPTC_* (deprecated in 1.3: must be 0 or 3).
    pub config: u32,
}

impl<'a> MessageBody<'a> for TableMod {
    const TYPE: MsgType = MsgType::TABLE_MOD;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = exact(body, 8)?;
        let table_id = TableId(r.u8()?);
        r.skip(3)?;
        Ok(TableMod {
            table_id,
            config: r.u32()?,
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u8(self.table_id.0);
        out.put_zeros(3);
        out.put_u32(self.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::header::Version;
    use crate::openflow::message::{Message, emit, parse};

    #[test]
    fn features_reply_read_build_parse_emit() {
        let f = FeaturesReply {
            datapath_id: 0x0000_0a0b_0c0d_0e0f,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: capabilities::FLOW_STATS | capabilities::PORT_STATS,
            reserved: 0,
        };
        let mut out = Vec::new();
        emit(Version::V1_3, 9, &f, &mut out).expect("fits");
        assert_eq!(out.len(), 32);
        assert_eq!(&out[..8], [4, 6, 0, 32, 0, 0, 0, 9]);
        let (_, m) = parse(&out).expect("parses");
        assert_eq!(m, Message::FeaturesReply(f));
        assert_eq!(FeaturesReply::parse(&out[8..31]), Err(bad_request::BAD_LEN));
    }

    #[test]
    fn role_and_async() {
        let r = Role {
            role: role::MASTER,
            generation_id: 42,
        };
        let mut out = Vec::new();
        r.emit_body(&mut out);
        assert_eq!(Role::parse(&out), Ok(r));
        let mut out = Vec::new();
        AsyncConfig::DEFAULT.emit_body(&mut out);
        assert_eq!(AsyncConfig::parse(&out), Ok(AsyncConfig::DEFAULT));
    }
}
