//! One OpenFlow message: parse by type, emit with its header.
//!
//! [`parse`] takes one framed message (see [`super::header::frame_len`]) and returns its
//! header and a [`Message`]. Messages that differ between versions are parsed with the
//! OpenFlow 1.3 layouts; under OpenFlow 1.4 only the messages whose layouts did not change
//! and the native bundle messages are accepted, others are `BAD_TYPE` (a channel that
//! offers 1.3 only never sees them).

pub use super::body::MessageBody;
use super::bundle::{BundleAdd, BundleControl, ONF_ET_BUNDLE_ADD, ONF_ET_BUNDLE_CONTROL};
use super::error::{ONF_VENDOR_ID, OfpError, bad_request};
use super::error_msg::ErrorMsg;
use super::flow::{FlowMod, FlowRemoved};
use super::group::GroupMod;
use super::header::{self, Header, MsgType, Repr, Version};
use super::hello::{Experimenter, Hello};
use super::meter::MeterMod;
use super::multipart::{MultipartReply, MultipartRequest};
use super::packet::{PacketIn, PacketOut};
use super::port::{PortMod, PortStatus, QueueGetConfigReply, QueueGetConfigRequest};
use super::switch::{AsyncConfig, FeaturesReply, Role, SwitchConfig, TableMod};
use super::wire::Put;

/// Writes a whole message (header and body) into `out`.
pub fn emit<'a, B: MessageBody<'a>>(
    version: Version,
    xid: u32,
    body: &B,
    out: &mut Vec<u8>,
) -> Result<(), OfpError> {
    let start = header::begin(out, version, B::TYPE, xid);
    body.emit_body(out);
    header::finish(out, start)
}

/// Any OpenFlow message this codec understands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Message<'a> {
    Hello(Hello<'a>),
    Error(ErrorMsg<'a>),
    EchoRequest(&'a [u8]),
    EchoReply(&'a [u8]),
    /// An experimenter message other than the ONF bundle extension.
    Experimenter(Experimenter<'a>),
    FeaturesRequest,
    FeaturesReply(FeaturesReply),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn<'a>),
    FlowRemoved(FlowRemoved<'a>),
    PortStatus(PortStatus),
    PacketOut(PacketOut<'a>),
    FlowMod(FlowMod<'a>),
    GroupMod(GroupMod<'a>),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest(MultipartRequest<'a>),
    MultipartReply(MultipartReply<'a>),
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest(QueueGetConfigRequest),
    QueueGetConfigReply(QueueGetConfigReply<'a>),
    RoleRequest(Role),
    RoleReply(Role),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod<'a>),
    /// OFPT_BUNDLE_CONTROL (1.4) or the ONF EXT-230 experimenter message (1.3).
    BundleControl(BundleControl<'a>),
    /// OFPT_BUNDLE_ADD_MESSAGE (1.4) or the ONF EXT-230 experimenter message (1.3).
    BundleAdd(BundleAdd<'a>),
}

fn empty(body: &[u8]) -> Result<(), OfpError> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(bad_request::BAD_LEN)
    }
}

/// Message types whose OpenFlow 1.4 layout is the 1.3 one.
fn same_in_1_4(t: MsgType) -> bool {
    matches!(
        t.0,
        0..=11 | 13..=15 | 18..=21 | 24..=27 | 29 | 33 | 34
    )
}

/// Parses one framed message (exactly one: `msg.len()` equals its length field).
pub fn parse(msg: &[u8]) -> Result<(Repr, Message<'_>), OfpError> {
    let h = Header::new_checked(msg)?;
    if usize::from(h.length()) != msg.len() {
        return Err(bad_request::BAD_LEN);
    }
    let repr = Repr::parse(&h);
    let body = &msg[header::HEADER_LEN..];
    Ok((repr, Message::parse(repr.version, repr.msg_type, body)?))
}

impl<'a> Message<'a> {
    /// Parses a body of type `t` under `version`. HELLO parses under any version (it is how
    /// versions are negotiated); other messages need 1.3, or 1.4 for the types whose layout
    /// did not change and the bundle messages.
    pub fn parse(version: Version, t: MsgType, body: &'a [u8]) -> Result<Self, OfpError> {
        if t == MsgType::HELLO {
            return Ok(Message::Hello(Hello::parse(body)?));
        }
        match version {
            Version::V1_3 if t.0 <= 29 => {}
            Version::V1_4 if same_in_1_4(t) => {}
            Version::V1_3 | Version::V1_4 => return Err(bad_request::BAD_TYPE),
            _ => return Err(bad_request::BAD_VERSION),
        }
        Ok(match t {
            MsgType::ERROR => Message::Error(ErrorMsg::parse(body)?),
            MsgType::ECHO_REQUEST => Message::EchoRequest(body),
            MsgType::ECHO_REPLY => Message::EchoReply(body),
            MsgType::EXPERIMENTER => {
                let e = Experimenter::parse(body)?;
                match (e.experimenter, e.exp_type) {
                    (ONF_VENDOR_ID, ONF_ET_BUNDLE_CONTROL) => {
                        Message::BundleControl(BundleControl::parse(e.data)?)
                    }
                    (ONF_VENDOR_ID, ONF_ET_BUNDLE_ADD) => {
                        Message::BundleAdd(BundleAdd::parse(e.data)?)
                    }
                    _ => Message::Experimenter(e),
                }
            }
            MsgType::FEATURES_REQUEST => empty(body).map(|_| Message::FeaturesRequest)?,
            MsgType::FEATURES_REPLY => Message::FeaturesReply(FeaturesReply::parse(body)?),
            MsgType::GET_CONFIG_REQUEST => empty(body).map(|_| Message::GetConfigRequest)?,
            MsgType::GET_CONFIG_REPLY => Message::GetConfigReply(SwitchConfig::parse(body)?),
            MsgType::SET_CONFIG => Message::SetConfig(SwitchConfig::parse(body)?),
            MsgType::PACKET_IN => Message::PacketIn(PacketIn::parse(body)?),
            MsgType::FLOW_REMOVED => Message::FlowRemoved(FlowRemoved::parse(body)?),
            MsgType::PORT_STATUS => Message::PortStatus(PortStatus::parse(body)?),
            MsgType::PACKET_OUT => Message::PacketOut(PacketOut::parse(body)?),
            MsgType::FLOW_MOD => Message::FlowMod(FlowMod::parse(body)?),
            MsgType::GROUP_MOD => Message::GroupMod(GroupMod::parse(body)?),
            MsgType::PORT_MOD => Message::PortMod(PortMod::parse(body)?),
            MsgType::TABLE_MOD => Message::TableMod(TableMod::parse(body)?),
            MsgType::MULTIPART_REQUEST => Message::MultipartRequest(MultipartRequest::parse(body)?),
            MsgType::MULTIPART_REPLY => Message::MultipartReply(MultipartReply::parse(body)?),
            MsgType::BARRIER_REQUEST => empty(body).map(|_| Message::BarrierRequest)?,
            MsgType::BARRIER_REPLY => empty(body).map(|_| Message::BarrierReply)?,
            MsgType::QUEUE_GET_CONFIG_REQUEST => {
                Message::QueueGetConfigRequest(QueueGetConfigRequest::parse(body)?)
            }
            MsgType::QUEUE_GET_CONFIG_REPLY => {
                Message::QueueGetConfigReply(QueueGetConfigReply::parse(body)?)
            }
            MsgType::ROLE_REQUEST => Message::RoleRequest(Role::parse(body)?),
            MsgType::ROLE_REPLY => Message::RoleReply(Role::parse(body)?),
            MsgType::GET_ASYNC_REQUEST => empty(body).map(|_| Message::GetAsyncRequest)?,
            MsgType::GET_ASYNC_REPLY => Message::GetAsyncReply(AsyncConfig::parse(body)?),
            MsgType::SET_ASYNC => Message::SetAsync(AsyncConfig::parse(body)?),
            MsgType::METER_MOD => Message::MeterMod(MeterMod::parse(body)?),
            MsgType::BUNDLE_CONTROL => Message::BundleControl(BundleControl::parse(body)?),
            MsgType::BUNDLE_ADD_MESSAGE => Message::BundleAdd(BundleAdd::parse(body)?),
            _ => return Err(bad_request::BAD_TYPE),
        })
    }

    /// The message type this message is sent as under `version` (bundles are experimenter
    /// messages before 1.4).
    pub fn msg_type(&self, version: Version) -> MsgType {
        use Message as M;
        match self {
            M::Hello(_) => MsgType::HELLO,
            M::Error(_) => MsgType::ERROR,
            M::EchoRequest(_) => MsgType::ECHO_REQUEST,
            M::EchoReply(_) => MsgType::ECHO_REPLY,
            M::Experimenter(_) => MsgType::EXPERIMENTER,
            M::FeaturesRequest => MsgType::FEATURES_REQUEST,
            M::FeaturesReply(_) => MsgType::FEATURES_REPLY,
            M::GetConfigRequest => MsgType::GET_CONFIG_REQUEST,
            M::GetConfigReply(_) => MsgType::GET_CONFIG_REPLY,
            M::SetConfig(_) => MsgType::SET_CONFIG,
            M::PacketIn(_) => MsgType::PACKET_IN,
            M::FlowRemoved(_) => MsgType::FLOW_REMOVED,
            M::PortStatus(_) => MsgType::PORT_STATUS,
            M::PacketOut(_) => MsgType::PACKET_OUT,
            M::FlowMod(_) => MsgType::FLOW_MOD,
            M::GroupMod(_) => MsgType::GROUP_MOD,
            M::PortMod(_) => MsgType::PORT_MOD,
            M::TableMod(_) => MsgType::TABLE_MOD,
            M::MultipartRequest(_) => MsgType::MULTIPART_REQUEST,
            M::MultipartReply(_) => MsgType::MULTIPART_REPLY,
            M::BarrierRequest => MsgType::BARRIER_REQUEST,
            M::BarrierReply => MsgType::BARRIER_REPLY,
            M::QueueGetConfigRequest(_) => MsgType::QUEUE_GET_CONFIG_REQUEST,
            M::QueueGetConfigReply(_) => MsgType::QUEUE_GET_CONFIG_REPLY,
            M::RoleRequest(_) => MsgType::ROLE_REQUEST,
            M::RoleReply(_) => MsgType::ROLE_REPLY,
            M::GetAsyncRequest => MsgType::GET_ASYNC_REQUEST,
            M::GetAsyncReply(_) => MsgType::GET_ASYNC_REPLY,
            M::SetAsync(_) => MsgType::SET_ASYNC,
            M::MeterMod(_) => MsgType::METER_MOD,
            M::BundleControl(_) | M::BundleAdd(_) if version < Version::V1_4 => {
                MsgType::EXPERIMENTER
            }
            M::BundleControl(_) => MsgType::BUNDLE_CONTROL,
            M::BundleAdd(_) => MsgType::BUNDLE_ADD_MESSAGE,
        }
    }

    /// Writes the message with a header of `version` and `xid` into `out`.
    pub fn emit(&self, version: Version, xid: u32, out: &mut Vec<u8>) -> Result<(), OfpError> {
        let start = header::begin(out, version, self.msg_type(version), xid);
        self.emit_body(version, out);
        header::finish(out, start)
    }

    fn emit_body(&self, version: Version, out: &mut Vec<u8>) {
        use Message as M;
        let onf = |out: &mut Vec<u8>, exp_type: u32| {
            if version < Version::V1_4 {
                out.put_u32(ONF_VENDOR_ID);
                out.put_u32(exp_type);
            }
        };
        match self {
            M::Hello(m) => m.emit_body(out),
            M::Error(m) => m.emit_body(out),
            M::EchoRequest(d) | M::EchoReply(d) => out.extend_from_slice(d),
            M::Experimenter(m) => m.emit_body(out),
            M::FeaturesRequest
            | M::GetConfigRequest
            | M::BarrierRequest
            | M::BarrierReply
            | M::GetAsyncRequest => {}
            M::FeaturesReply(m) => m.emit_body(out),
            M::GetConfigReply(m) | M::SetConfig(m) => m.emit_body(out),
            M::PacketIn(m) => m.emit_body(out),
            M::FlowRemoved(m) => m.emit_body(out),
            M::PortStatus(m) => m.emit_body(out),
            M::PacketOut(m) => m.emit_body(out),
            M::FlowMod(m) => m.emit_body(out),
            M::GroupMod(m) => m.emit_body(out),
            M::PortMod(m) => m.emit_body(out),
            M::TableMod(m) => m.emit_body(out),
            M::MultipartRequest(m) => m.emit_body(out),
            M::MultipartReply(m) => m.emit_body(out),
            M::QueueGetConfigRequest(m) => m.emit_body(out),
            M::QueueGetConfigReply(m) => m.emit_body(out),
            M::RoleRequest(m) | M::RoleReply(m) => m.emit_body(out),
            M::GetAsyncReply(m) | M::SetAsync(m) => m.emit_body(out),
            M::MeterMod(m) => m.emit_body(out),
            M::BundleControl(m) => {
                onf(out, ONF_ET_BUNDLE_CONTROL);
                m.emit_body(out);
            }
            M::BundleAdd(m) => {
                onf(out, ONF_ET_BUNDLE_ADD);
                m.emit_body(out);
            }
        }
    }
}

/// Splits a byte stream into whole messages; stops at the first incomplete one. A framing
/// error (length below 8) is returned as the last item and ends the iteration.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Frames<'a> {
    /// Messages in `stream`.
    pub fn new(stream: &'a [u8]) -> Self {
        Frames {
            rest: stream,
            failed: false,
        }
    }

    /// The bytes not yet returned (an incomplete last message).
    pub fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8], OfpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match header::frame_len(self.rest) {
            Ok(Some(n)) => {
                let (m, rest) = self.rest.split_at(n);
                self.rest = rest;
                Some(Ok(m))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
