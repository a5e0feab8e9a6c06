//! MULTIPART_REQUEST and MULTIPART_REPLY: the type/flags framing, typed bodies, and the
//! [`ReplyWriter`] that splits a long reply into messages under 64 KiB chained with
//! OFPMPF_REPLY_MORE.
//!
//! Bodies are in [`super::stats`] (flow, aggregate, table, port, queue, group and meter
//! statistics, descriptions, features) and [`super::table_features`].

use super::body::MessageBody;
use super::error::{OfpError, bad_request};
use super::header::{self, MAX_MESSAGE_LEN, MsgType, Version};
use super::hello::Experimenter;
use super::ids::{GroupId, MeterId, PortNo};
use super::list::{Item, List};
use super::port::Port;
use super::stats::{
    AggregateStats, Desc, FlowStats, FlowStatsRequest, GroupDesc, GroupFeatures, GroupStats,
    MeterConfig, MeterFeatures, MeterStats, PortStats, QueueStats, TableStats,
};
use super::table_features::TableFeatures;
use super::wire::{Put, Reader};

/// Multipart types (ofp_multipart_type).
#[allow(missing_docs)]
pub mod mp_type {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const GROUP_FEATURES: u16 = 8;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const METER_FEATURES: u16 = 11;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// OFPMPF_REQ_MORE / OFPMPF_REPLY_MORE: more messages of this request or reply follow.
pub const MORE: u16 = 1;

/// Bytes before the first entry of a multipart message (header, type, flags, padding).
pub const MULTIPART_HEADER_LEN: usize = 16;

fn empty(r: &mut Reader<'_>) -> Result<(), OfpError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(bad_request::BAD_LEN)
    }
}

/// A multipart request body, by type.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RequestBody<'a> {
    Desc,
    Flow(FlowStatsRequest<'a>),
    Aggregate(FlowStatsRequest<'a>),
    Table,
    PortStats(PortNo),
    Queue {
        port_no: PortNo,
        queue_id: u32,
    },
    Group(GroupId),
    GroupDesc,
    GroupFeatures,
    Meter(MeterId),
    MeterConfig(MeterId),
    MeterFeatures,
    /// Empty to read the features; entries to set them.
    TableFeatures(List<'a, TableFeatures<'a>>),
    PortDesc,
    Experimenter(Experimenter<'a>),
}

impl RequestBody<'_> {
    /// Its multipart type.
    pub fn mp_type(&self) -> u16 {
        use RequestBody as B;
        match self {
            B::Desc => mp_type::DESC,
            B::Flow(_) => mp_type::FLOW,
            B::Aggregate(_) => mp_type::AGGREGATE,
            B::Table => mp_type::TABLE,
            B::PortStats(_) => mp_type::PORT_STATS,
            B::Queue { .. } => mp_type::QUEUE,
            B::Group(_) => mp_type::GROUP,
            B::GroupDesc => mp_type::GROUP_DESC,
            B::GroupFeatures => mp_type::GROUP_FEATURES,
            B::Meter(_) => mp_type::METER,
            B::MeterConfig(_) => mp_type::METER_CONFIG,
            B::MeterFeatures => mp_type::METER_FEATURES,
            B::TableFeatures(_) => mp_type::TABLE_FEATURES,
            B::PortDesc => mp_type::PORT_DESC,
            B::Experimenter(_) => mp_type::EXPERIMENTER,
        }
    }
}

/// OFPT_MULTIPART_REQUEST.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MultipartRequest<'a> {
    /// OFPMPF_REQ_MORE.
    pub flags: u16,
    /// The body.
    pub body: RequestBody<'a>,
}

impl<'a> MessageBody<'a> for MultipartRequest<'a> {
    const TYPE: MsgType = MsgType::MULTIPART_REQUEST;

    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        use RequestBody as B;
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let t = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let b = match t {
            mp_type::DESC => empty(&mut r).map(|_| B::Desc)?,
            mp_type::FLOW => B::Flow(FlowStatsRequest::parse(&mut r)?),
            mp_type::AGGREGATE => B::Aggregate(FlowStatsRequest::parse(&mut r)?),
            mp_type::TABLE => empty(&mut r).map(|_| B::Table)?,
            mp_type::PORT_STATS => {
                let p = PortNo(r.u32()?);
                r.skip(4)?;
                B::PortStats(p)
            }
            mp_type::QUEUE => B::Queue {
                port_no: PortNo(r.u32()?),
                queue_id: r.u32()?,
            },
            mp_type::GROUP => {
                let g = GroupId(r.u32()?);
                r.skip(4)?;
                B::Group(g)
            }
            mp_type::GROUP_DESC => empty(&mut r).map(|_| B::GroupDesc)?,
            mp_type::GROUP_FEATURES => empty(&mut r).map(|_| B::GroupFeatures)?,
            mp_type::METER | mp_type::METER_CONFIG => {
                let m = MeterId(r.u32()?);
                r.skip(4)?;
                if t == mp_type::METER {
                    B::Meter(m)
                } else {
                    B::MeterConfig(m)
                }
            }
            mp_type::METER_FEATURES => empty(&mut r).map(|_| B::MeterFeatures)?,
            mp_type::TABLE_FEATURES => B::TableFeatures(List::new_checked(r.rest())?),
            mp_type::PORT_DESC => empty(&mut r).map(|_| B::PortDesc)?,
            mp_type::EXPERIMENTER => B::Experimenter(Experimenter::parse(r.rest())?),
            _ => return Err(bad_request::BAD_MULTIPART),
        };
        empty(&mut r)?;
        Ok(MultipartRequest { flags, body: b })
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        use RequestBody as B;
        out.put_u16(self.body.mp_type());
        out.put_u16(self.flags);
        out.put_zeros(4);
        match self.body {
            B::Desc
            | B::Table
            | B::GroupDesc
            | B::GroupFeatures
            | B::MeterFeatures
            | B::PortDesc => {}
            B::Flow(f) | B::Aggregate(f) => f.emit(out),
            B::PortStats(p) => {
                out.put_u32(p.0);
                out.put_zeros(4);
            }
            B::Queue { port_no, queue_id } => {
                out.put_u32(port_no.0);
                out.put_u32(queue_id);
            }
            B::Group(g) => {
                out.put_u32(g.0);
                out.put_zeros(4);
            }
            B::Meter(m) | B::MeterConfig(m) => {
                out.put_u32(m.0);
                out.put_zeros(4);
            }
            B::TableFeatures(l) => l.emit(out),
            B::Experimenter(e) => e.emit_body(out),
        }
    }
}

/// A multipart reply body, by type.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ReplyBody<'a> {
    Desc(Desc<'a>),
    Flow(List<'a, FlowStats<'a>>),
    Aggregate(AggregateStats),
    Table(List<'a, TableStats>),
    PortStats(List<'a, PortStats>),
    Queue(List<'a, QueueStats>),
    Group(List<'a, GroupStats<'a>>),
    GroupDesc(List<'a, GroupDesc<'a>>),
    GroupFeatures(GroupFeatures),
    Meter(List<'a, MeterStats<'a>>),
    MeterConfig(List<'a, MeterConfig<'a>>),
    MeterFeatures(MeterFeatures),
    TableFeatures(List<'a, TableFeatures<'a>>),
    PortDesc(List<'a, Port>),
    Experimenter(Experimenter<'a>),
}

impl ReplyBody<'_> {
    /// Its multipart type.
    pub fn mp_type(&self) -> u16 {
        use ReplyBody as B;
        match self {
            B::Desc(_) => mp_type::DESC,
            B::Flow(_) => mp_type::FLOW,
            B::Aggregate(_) => mp_type::AGGREGATE,
            B::Table(_) => mp_type::TABLE,
            B::PortStats(_) => mp_type::PORT_STATS,
            B::Queue(_) => mp_type::QUEUE,
            B::Group(_) => mp_type::GROUP,
            B::GroupDesc(_) => mp_type::GROUP_DESC,
            B::GroupFeatures(_) => mp_type::GROUP_FEATURES,
            B::Meter(_) => mp_type::METER,
            B::MeterConfig(_) => mp_type::METER_CONFIG,
            B::MeterFeatures(_) => mp_type::METER_FEATURES,
            B::TableFeatures(_) => mp_type::TABLE_FEATURES,
            B::PortDesc(_) => mp_type::PORT_DESC,
            B::Experimenter(_) => mp_type::EXPERIMENTER,
        }
    }
}

/// OFPT_MULTIPART_REPLY.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MultipartReply<'a> {
    /// OFPMPF_REPLY_MORE.
    pub flags: u16,
    /// The body.
    pub body: ReplyBody<'a>,
}

impl<'a> MessageBody<'a> for MultipartReply<'a> {
    const TYPE: MsgType = MsgType::MULTIPART_REPLY;

    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        use ReplyBody as B;
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let t = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let rest = r.rest();
        let b = match t {
            mp_type::DESC => B::Desc(Desc::parse(rest)?),
            mp_type::FLOW => B::Flow(List::new_checked(rest)?),
            mp_type::AGGREGATE => B::Aggregate(AggregateStats::parse(rest)?),
            mp_type::TABLE => B::Table(List::new_checked(rest)?),
            mp_type::PORT_STATS => B::PortStats(List::new_checked(rest)?),
            mp_type::QUEUE => B::Queue(List::new_checked(rest)?),
            mp_type::GROUP => B::Group(List::new_checked(rest)?),
            mp_type::GROUP_DESC => B::GroupDesc(List::new_checked(rest)?),
            mp_type::GROUP_FEATURES => B::GroupFeatures(GroupFeatures::parse(rest)?),
            mp_type::METER => B::Meter(List::new_checked(rest)?),
            mp_type::METER_CONFIG => B::MeterConfig(List::new_checked(rest)?),
            mp_type::METER_FEATURES => B::MeterFeatures(MeterFeatures::parse(rest)?),
            mp_type::TABLE_FEATURES => B::TableFeatures(List::new_checked(rest)?),
            mp_type::PORT_DESC => B::PortDesc(List::new_checked(rest)?),
            mp_type::EXPERIMENTER => B::Experimenter(Experimenter::parse(rest)?),
            _ => return Err(bad_request::BAD_MULTIPART),
        };
        Ok(MultipartReply { flags, body: b })
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        use ReplyBody as B;
        out.put_u16(self.body.mp_type());
        out.put_u16(self.flags);
        out.put_zeros(4);
        match self.body {
            B::Desc(d) => d.emit(out),
            B::Flow(l) => l.emit(out),
            B::Aggregate(a) => a.emit(out),
            B::Table(l) => l.emit(out),
            B::PortStats(l) => l.emit(out),
            B::Queue(l) => l.emit(out),
            B::Group(l) => l.emit(out),
            B::GroupDesc(l) => l.emit(out),
            B::GroupFeatures(g) => g.emit(out),
            B::Meter(l) => l.emit(out),
            B::MeterConfig(l) => l.emit(out),
            B::MeterFeatures(m) => m.emit(out),
            B::TableFeatures(l) => l.emit(out),
            B::PortDesc(l) => l.emit(out),
            B::Experimenter(e) => e.emit_body(out),
        }
    }
}

/// Writes a multipart reply of one type whose entries may not fit one message: entries go
/// into the current message until the next would push it past the limit (65535 bytes),
/// then that message is closed with OFPMPF_REPLY_MORE and a new one (same xid) begun. The
/// messages are written back to back into `out`, ready to send.
#[derive(Debug)]
pub struct ReplyWriter<'o> {
    out: &'o mut Vec<u8>,
    version: Version,
    xid: u32,
    mp_type: u16,
    start: usize,
    limit: usize,
    messages: usize,
}

impl<'o> ReplyWriter<'o> {
    /// Begins a reply of `mp_type` to request `xid`.
    pub fn new(out: &'o mut Vec<u8>, version: Version, xid: u32, mp_type: u16) -> Self {
        Self::with_limit(out, version, xid, mp_type, MAX_MESSAGE_LEN)
    }

    /// As `new` with a smaller message size limit (at least 16 + the largest entry).
    pub fn with_limit(
        out: &'o mut Vec<u8>,
        version: Version,
        xid: u32,
        mp_type: u16,
        limit: usize,
    ) -> Self {
        let limit = limit.clamp(MULTIPART_HEADER_LEN + 8, MAX_MESSAGE_LEN);
        let start = Self::begin(out, version, xid, mp_type);
        ReplyWriter {
            out,
            version,
            xid,
            mp_type,
            start,
            limit,
            messages: 1,
        }
    }

    fn begin(out: &mut Vec<u8>, version: Version, xid: u32, mp_type: u16) -> usize {
        let start = header::begin(out, version, MsgType::MULTIPART_REPLY, xid);
        out.put_u16(mp_type);
        out.put_u16(0);
        out.put_zeros(4);
        start
    }

    /// Appends one entry.
    pub fn push<'a, T: Item<'a>>(&mut self, entry: &T) -> Result<(), OfpError> {
        self.push_with(|out| entry.emit_item(out))
    }

    /// Appends one entry written by `emit` (for builders such as the table features one).
    /// An entry that cannot fit even an empty message is refused with `BAD_LEN` and nothing
    /// of it stays in the output.
    pub fn push_with(&mut self, emit: impl FnOnce(&mut Vec<u8>)) -> Result<(), OfpError> {
        let entry_start = self.out.len();
        emit(self.out);
        if self.out.len() - self.start <= self.limit {
            return Ok(());
        }
        if entry_start == self.start + MULTIPART_HEADER_LEN {
            self.out.truncate(entry_start);
            return Err(bad_request::BAD_LEN);
        }
        let entry = self.out.split_off(entry_start);
        self.out.patch_u16(self.start + 10, MORE);
        header::finish(self.out, self.start)?;
        self.start = Self::begin(self.out, self.version, self.xid, self.mp_type);
        self.messages += 1;
        self.out.extend_from_slice(&entry);
        if self.out.len() - self.start > self.limit {
            self.out.truncate(entry_start);
            return Err(bad_request::BAD_LEN);
        }
        Ok(())
    }

    /// Closes the last message; returns how many messages were written.
    pub fn finish(self) -> Result<usize, OfpError> {
        header::finish(self.out, self.start)?;
        Ok(self.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::message::{Frames, Message, parse};
    use crate::openflow::port::Port;

    #[test]
    fn port_desc_request_and_reply() {
        let req = MultipartRequest {
            flags: 0,
            body: RequestBody::PortDesc,
        };
        let mut out = Vec::new();
        crate::openflow::message::emit(Version::V1_3, 3, &req, &mut out).expect("fits");
        assert_eq!(out, [4, 18, 0, 16, 0, 0, 0, 3, 0, 13, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            parse(&out).expect("parses").1,
            Message::MultipartRequest(req)
        );
        let mut bad = out.clone();
        bad[9] = 99;
        assert_eq!(parse(&bad).err(), Some(bad_request::BAD_MULTIPART));
    }

    #[test]
    fn reply_writer_splits_under_the_limit() {
        let mut out = Vec::new();
        let mut w = ReplyWriter::with_limit(&mut out, Version::V1_3, 9, mp_type::PORT_DESC, 300);
        for i in 0..10 {
            let p = Port::new(PortNo(i), [0, 0, 0, 0, 0, i as u8], "p");
            w.push(&p).expect("fits");
        }
        let n = w.finish().expect("fits");
        // 16 + 4 * 64 = 272 <= 300: four ports per message.
        assert_eq!(n, 3);
        let mut ports = 0;
        let msgs: Vec<_> = Frames::new(&out).collect::<Result<_, _>>().expect("frames");
        assert_eq!(msgs.len(), 3);
        for (i, m) in msgs.iter().enumerate() {
            assert!(m.len() <= 300);
            let (h, body) = parse(m).expect("parses");
            assert_eq!(h.xid, 9);
            let Message::MultipartReply(r) = body else {
                panic!()
            };
            assert_eq!(r.flags == MORE, i < 2);
            let ReplyBody::PortDesc(l) = r.body else {
                panic!()
            };
            ports += l.count();
        }
        assert_eq!(ports, 10);
    }

    #[test]
    fn reply_writer_refuses_an_entry_too_big_for_any_message() {
        let mut out = Vec::new();
        let mut w = ReplyWriter::with_limit(&mut out, Version::V1_3, 1, mp_type::PORT_DESC, 40);
        let p = Port::new(PortNo(1), [0; 6], "p");
        assert_eq!(w.push(&p), Err(bad_request::BAD_LEN));
        assert_eq!(w.finish(), Ok(1));
        assert_eq!(out.len(), 16);
    }
}
