//! PACKET_IN and PACKET_OUT.

use super::actions::{Actions, parse_actions};
use super::body::MessageBody;
use super::error::{OfpError, bad_request};
use super::header::MsgType;
use super::ids::{BufferId, PortNo, TableId};
use super::oxm::Match;
use super::wire::{Put, Reader};

/// OFPR_* packet-in reasons.
#[allow(missing_docs)]
pub mod reason {
    /// Table miss (OFPR_NO_MATCH).
    pub const NO_MATCH: u8 = 0;
    /// An output:CONTROLLER action (OFPR_ACTION).
    pub const ACTION: u8 = 1;
    /// Invalid TTL (OFPR_INVALID_TTL).
    pub const INVALID_TTL: u8 = 2;
}

/// OFPT_PACKET_IN.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PacketIn<'a> {
    /// Buffer holding the packet, or NO_BUFFER.
    pub buffer_id: BufferId,
    /// Length of the whole frame (data may be truncated to max_len).
    pub total_len: u16,
    /// OFPR_*.
    pub reason: u8,
    /// Table that sent it.
    pub table_id: TableId,
    /// Cookie of the flow that sent it (all ones for a miss).
    pub cookie: u64,
    /// Pipeline fields: in_port always, metadata, tunnel fields, registers ...
    pub match_: Match<'a>,
    /// The frame (or its first max_len bytes).
    pub data: &'a [u8],
}

impl<'a> PacketIn<'a> {
    /// The in_port from the match (OpenFlow 1.3 requires it), if present.
    pub fn in_port(&self) -> Option<PortNo> {
        let o = self.match_.get(super::fields::Field::InPort)?;
        Some(PortNo(o.value_u128() as u32))
    }
}

impl<'a> MessageBody<'a> for PacketIn<'a> {
    const TYPE: MsgType = MsgType::PACKET_IN;

    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let buffer_id = BufferId(r.u32()?);
        let total_len = r.u16()?;
        let reason = r.u8()?;
        let table_id = TableId(r.u8()?);
        let cookie = r.u64()?;
        let match_ = Match::parse(&mut r)?;
        r.skip(2)?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            match_,
            data: r.rest(),
        })
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.buffer_id.0);
        out.put_u16(self.total_len);
        out.put_u8(self.reason);
        out.put_u8(self.table_id.0);
        out.put_u64(self.cookie);
        self.match_.emit(out);
        out.put_zeros(2);
        out.extend_from_slice(self.data);
    }
}

/// OFPT_PACKET_OUT.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PacketOut<'a> {
    /// Buffered packet to send, or NO_BUFFER (then `data` is the frame).
    pub buffer_id: BufferId,
    /// Input port for the actions (CONTROLLER or a port).
    pub in_port: PortNo,
    /// Actions to apply.
    pub actions: Actions<'a>,
    /// The frame.
    pub data: &'a [u8],
}

impl<'a> MessageBody<'a> for PacketOut<'a> {
    const TYPE: MsgType = MsgType::PACKET_OUT;

    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let buffer_id = BufferId(r.u32()?);
        let in_port = PortNo(r.u32()?);
        let actions_len = usize::from(r.u16()?);
        r.skip(6)?;
        if actions_len > r.remaining() {
            return Err(bad_request::BAD_LEN);
        }
        let actions = parse_actions(&mut r, actions_len)?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.rest(),
        })
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.buffer_id.0);
        out.put_u32(self.in_port.0);
        let len_at = out.len();
        out.put_u16(0);
        out.put_zeros(6);
        let start = out.len();
        self.actions.emit(out);
        let n = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        out.patch_u16(len_at, n);
        out.extend_from_slice(self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::actions::Action;
    use crate::openflow::error::bad_action;
    use crate::openflow::fields::Field;
    use crate::openflow::header::Version;
    use crate::openflow::list::encode;
    use crate::openflow::message::{Message, emit, parse};
    use crate::openflow::oxm::MatchBuilder;

    #[test]
    fn packet_in_build_parse_emit() {
        let mut mb = Vec::new();
        let mut b = MatchBuilder::new(&mut mb);
        b.value(Field::InPort, 7);
        b.finish();
        let mut r = Reader::new(&mb, bad_request::BAD_LEN);
        let frame = [0xffu8; 60];
        let pi = PacketIn {
            buffer_id: BufferId::NO_BUFFER,
            total_len: 60,
            reason: reason::NO_MATCH,
            table_id: TableId(0),
            cookie: u64::MAX,
            match_: Match::parse(&mut r).expect("match"),
            data: &frame,
        };
        let mut out = Vec::new();
        emit(Version::V1_3, 0, &pi, &mut out).expect("fits");
        assert_eq!(out.len(), 8 + 16 + 16 + 2 + 60);
        let (_, m) = parse(&out).expect("parses");
        let Message::PacketIn(back) = m else {
            panic!("{m:?}")
        };
        assert_eq!(back, pi);
        assert_eq!(back.in_port(), Some(PortNo(7)));
    }

    #[test]
    fn packet_out_build_parse_emit() {
        let acts = encode(&[Action::Output {
            port: PortNo::FLOOD,
            max_len: 0,
        }]);
        let po = PacketOut {
            buffer_id: BufferId::NO_BUFFER,
            in_port: PortNo::CONTROLLER,
            actions: Actions::new_checked(&acts).expect("actions"),
            data: &[1, 2, 3, 4],
        };
        let mut out = Vec::new();
        emit(Version::V1_3, 5, &po, &mut out).expect("fits");
        assert_eq!(&out[16..18], [0, 16]);
        let (_, m) = parse(&out).expect("parses");
        assert_eq!(m, Message::PacketOut(po));
        let mut bad = out.clone();
        bad[17] = 12;
        assert_eq!(parse(&bad).err(), Some(bad_action::BAD_LEN));
        bad[16] = 0xff;
        assert_eq!(parse(&bad).err(), Some(bad_request::BAD_LEN));
    }
}
