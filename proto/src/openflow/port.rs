//! Ports: ofp_port (PORT_DESC entries, PORT_STATUS), PORT_MOD, and the queue configuration
//! messages (QUEUE_GET_CONFIG_REQUEST/REPLY).

use super::body::MessageBody;
use super::error::{OfpError, bad_request};
use super::header::MsgType;
use super::ids::PortNo;
use super::list::{Item, List};
use super::wire::{Put, Reader, c_str};

/// Length of ofp_port in OpenFlow 1.3.
pub const PORT_LEN: usize = 64;
/// Bytes of a port name field (OFP_MAX_PORT_NAME_LEN).
pub const PORT_NAME_LEN: usize = 16;

/// OFPPC_* port config bits.
#[allow(missing_docs)]
pub mod config {
    pub const PORT_DOWN: u32 = 1 << 0;
    pub const NO_RECV: u32 = 1 << 2;
    pub const NO_FWD: u32 = 1 << 5;
    pub const NO_PACKET_IN: u32 = 1 << 6;
    /// Every bit OpenFlow 1.3 defines.
    pub const ALL: u32 = PORT_DOWN | NO_RECV | NO_FWD | NO_PACKET_IN;
}

/// OFPPS_* port state bits.
#[allow(missing_docs)]
pub mod state {
    pub const LINK_DOWN: u32 = 1 << 0;
    pub const BLOCKED: u32 = 1 << 1;
    pub const LIVE: u32 = 1 << 2;
}

/// OFPPF_* port feature bits.
#[allow(missing_docs)]
pub mod features {
    pub const F_10MB_HD: u32 = 1 << 0;
    pub const F_10MB_FD: u32 = 1 << 1;
    pub const F_100MB_HD: u32 = 1 << 2;
    pub const F_100MB_FD: u32 = 1 << 3;
    pub const F_1GB_HD: u32 = 1 << 4;
    pub const F_1GB_FD: u32 = 1 << 5;
    pub const F_10GB_FD: u32 = 1 << 6;
    pub const F_40GB_FD: u32 = 1 << 7;
    pub const F_100GB_FD: u32 = 1 << 8;
    pub const F_1TB_FD: u32 = 1 << 9;
    pub const OTHER: u32 = 1 << 10;
    pub const COPPER: u32 = 1 << 11;
    pub const FIBER: u32 = 1 << 12;
    pub const AUTONEG: u32 = 1 << 13;
    pub const PAUSE: u32 = 1 << 14;
    pub const PAUSE_ASYM: u32 = 1 << 15;
}

/// ofp_port (OpenFlow 1.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port number.
    pub port_no: PortNo,
    /// MAC address.
    pub hw_addr: [u8; 6],
    /// Name, NUL-padded.
    pub name: [u8; PORT_NAME_LEN],
    /// OFPPC_* bits.
    pub config: u32,
    /// OFPPS_* bits.
    pub state: u32,
    /// Current features (OFPPF_*).
    pub curr: u32,
    /// Advertised features.
    pub advertised: u32,
    /// Supported features.
    pub supported: u32,
    /// Features the peer advertises.
    pub peer: u32,
    /// Current speed in kbps.
    pub curr_speed: u32,
    /// Maximum speed in kbps.
    pub max_speed: u32,
}

impl Port {
    /// A port with this number, address and name (cut to 15 bytes), everything else 0.
    pub fn new(port_no: PortNo, hw_addr: [u8; 6], name: &str) -> Self {
        let mut n = [0u8; PORT_NAME_LEN];
        let b = name.as_bytes();
        let k = b.len().min(PORT_NAME_LEN - 1);
        n[..k].copy_from_slice(&b[..k]);
        Port {
            port_no,
            hw_addr,
            name: n,
            config: 0,
            state: 0,
            curr: 0,
            advertised: 0,
            supported: 0,
            peer: 0,
            curr_speed: 0,
            max_speed: 0,
        }
    }

    /// The name without its NUL padding.
    pub fn name(&self) -> &[u8] {
        c_str(&self.name)
    }

    /// Reads an ofp_port.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let port_no = PortNo(r.u32()?);
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        Ok(Port {
            port_no,
            hw_addr,
            name: r.array()?,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }

    /// Writes the ofp_port.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port_no.0);
        out.put_zeros(4);
        out.extend_from_slice(&self.hw_addr);
        out.put_zeros(2);
        out.extend_from_slice(&self.name);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            out.put_u32(v);
        }
    }
}

impl<'a> Item<'a> for Port {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        Ok((Port::parse(&mut r)?, PORT_LEN))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        self.emit(out);
    }
}

/// OFPPR_* port status reasons.
#[allow(missing_docs)]
pub mod reason {
    pub const ADD: u8 = 0;
    pub const DELETE: u8 = 1;
    pub const MODIFY: u8 = 2;
}

/// OFPT_PORT_STATUS.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// OFPPR_*.
    pub reason: u8,
    /// The port.
    pub port: Port,
}

impl<'a> MessageBody<'a> for PortStatus {
    const TYPE: MsgType = MsgType::PORT_STATUS;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        if body.len() != 8 + PORT_LEN {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let reason = r.u8()?;
        r.skip(7)?;
        Ok(PortStatus {
            reason,
            port: Port::parse(&mut r)?,
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u8(self.reason);
        out.put_zeros(7);
        self.port.emit(out);
    }
}

/// OFPT_PORT_MOD.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PortMod {
    /// Port.
    pub port_no: PortNo,
    /// Must match the port's address.
    pub hw_addr: [u8; 6],
    /// New OFPPC_* values.
    pub config: u32,
    /// OFPPC_* bits to change.
    pub mask: u32,
    /// Features to advertise (0: unchanged).
    pub advertise: u32,
}

impl<'a> MessageBody<'a> for PortMod {
    const TYPE: MsgType = MsgType::PORT_MOD;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        if body.len() != 32 {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let port_no = PortNo(r.u32()?);
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        Ok(PortMod {
            port_no,
            hw_addr,
            config: r.u32()?,
            mask: r.u32()?,
            advertise: r.u32()?,
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port_no.0);
        out.put_zeros(4);
        out.extend_from_slice(&self.hw_addr);
        out.put_zeros(2);
        out.put_u32(self.config);
        out.put_u32(self.mask);
        out.put_u32(self.advertise);
        out.put_zeros(4);
    }
}

/// OFPT_QUEUE_GET_CONFIG_REQUEST.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct QueueGetConfigRequest {
    /// Port (ANY: all ports).
    pub port: PortNo,
}

impl<'a> MessageBody<'a> for QueueGetConfigRequest {
    const TYPE: MsgType = MsgType::QUEUE_GET_CONFIG_REQUEST;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        if body.len() != 8 {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        Ok(QueueGetConfigRequest {
            port: PortNo(r.u32()?),
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port.0);
        out.put_zeros(4);
    }
}

/// A queue property (OFPQT_MIN_RATE 1, MAX_RATE 2: rate in 1/10 %; EXPERIMENTER 0xffff).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum QueueProp<'a> {
    /// Guaranteed minimum rate, 1/10 of a percent (>1000: disabled).
    MinRate(u16),
    /// Maximum rate, 1/10 of a percent.
    MaxRate(u16),
    /// Experimenter property.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Data after the id and its padding.
        data: &'a [u8],
    },
}

impl<'a> Item<'a> for QueueProp<'a> {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        let kind = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len > buf.len() {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(&buf[8..len], bad_request::BAD_LEN);
        let p = match kind {
            1 | 2 if len == 16 => {
                let rate = r.u16()?;
                if kind == 1 {
                    QueueProp::MinRate(rate)
                } else {
                    QueueProp::MaxRate(rate)
                }
            }
            0xffff => {
                let experimenter = r.u32()?;
                r.skip(4)?;
                QueueProp::Experimenter {
                    experimenter,
                    data: r.rest(),
                }
            }
            _ => return Err(bad_request::BAD_LEN),
        };
        Ok((p, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match *self {
            QueueProp::MinRate(r) | QueueProp::MaxRate(r) => {
                let kind = if matches!(self, QueueProp::MinRate(_)) {
                    1
                } else {
                    2
                };
                out.put_u16(kind);
                out.put_u16(16);
                out.put_zeros(4);
                out.put_u16(r);
                out.put_zeros(6);
            }
            QueueProp::Experimenter { experimenter, data } => {
                out.put_u16(0xffff);
                out.put_u16(0);
                out.put_zeros(4);
                out.put_u32(experimenter);
                out.put_zeros(4);
                out.extend_from_slice(data);
                out.finish_len(start, 2);
            }
        }
    }
}

/// ofp_packet_queue: one queue of a port.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PacketQueue<'a> {
    /// Queue id.
    pub queue_id: u32,
    /// Port it belongs to.
    pub port: PortNo,
    /// Properties.
    pub properties: List<'a, QueueProp<'a>>,
}

impl<'a> Item<'a> for PacketQueue<'a> {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        let queue_id = r.u32()?;
        let port = PortNo(r.u32()?);
        let len = usize::from(r.u16()?);
        r.skip(6)?;
        if len < 16 || len > buf.len() {
            return Err(bad_request::BAD_LEN);
        }
        let q = PacketQueue {
            queue_id,
            port,
            properties: List::new_checked(&buf[16..len])?,
        };
        Ok((q, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u32(self.queue_id);
        out.put_u32(self.port.0);
        out.put_u16(0);
        out.put_zeros(6);
        self.properties.emit(out);
        out.finish_len(start, 8);
    }
}

/// OFPT_QUEUE_GET_CONFIG_REPLY.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct QueueGetConfigReply<'a> {
    /// Port asked about.
    pub port: PortNo,
    /// Its queues.
    pub queues: List<'a, PacketQueue<'a>>,
}

impl<'a> MessageBody<'a> for QueueGetConfigReply<'a> {
    const TYPE: MsgType = MsgType::QUEUE_GET_CONFIG_REPLY;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let port = PortNo(r.u32()?);
        r.skip(4)?;
        Ok(QueueGetConfigReply {
            port,
            queues: List::new_checked(r.rest())?,
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port.0);
        out.put_zeros(4);
        self.queues.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_status_build_parse_emit() {
        let mut p = Port::new(PortNo(3), [2, 0, 0, 0, 0, 3], "veth3");
        p.state = state::LIVE;
        p.curr = features::F_10GB_FD | features::COPPER;
        p.curr_speed = 10_000_000;
        let s = PortStatus {
            reason: reason::ADD,
            port: p,
        };
        let mut out = Vec::new();
        s.emit_body(&mut out);
        assert_eq!(out.len(), 72);
        let back = PortStatus::parse(&out).expect("parses");
        assert_eq!(back, s);
        assert_eq!(back.port.name(), b"veth3");
        assert_eq!(PortStatus::parse(&out[..71]), Err(bad_request::BAD_LEN));
    }

    #[test]
    fn long_names_stay_nul_terminated() {
        let p = Port::new(PortNo(1), [0; 6], "a-very-long-port-name");
        assert_eq!(p.name().len(), 15);
    }
}
