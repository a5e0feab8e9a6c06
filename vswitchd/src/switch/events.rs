//! Events for stream subscribers: the [`Event`] type and the messages built from the
//! datapath's packet-ins.

use datapath::flow::FlowKey;
use datapath::pipeline::{Datapath, PacketIn, PacketInReason};
use proto::v1::{self, stream_message_response as smr};

use crate::convert;

/// One event for stream subscribers.
#[derive(Debug, Clone)]
pub struct Event {
    /// The bridge it happened on.
    pub bridge: String,
    /// The message as sent on the stream.
    pub msg: v1::StreamMessageResponse,
}

pub(super) fn packet_in_msg(bridge: &str, dp: &Datapath, p: PacketIn) -> v1::StreamMessageResponse {
    // A packet-in from a table-miss flow (priority 0, empty match) is reported as NO_MATCH,
    // as OpenFlow 1.3 defines it.
    let snap = dp.snapshot();
    let miss = snap
        .pipeline
        .table(p.table)
        .find_strict(&FlowKey::ZERO, &FlowKey::ZERO, 0)
        .is_some_and(|r| r.cookie == p.cookie);
    let reason = match p.reason {
        PacketInReason::Action if miss => v1::PacketInReason::NoMatch,
        _ => v1::PacketInReason::Action,
    };
    v1::StreamMessageResponse {
        update: Some(smr::Update::PacketIn(v1::PacketIn {
            bridge: bridge.to_string(),
            reason: reason as i32,
            table_id: p.table.0 as u32,
            cookie: p.cookie,
            r#match: Some(convert::packet_in_match(&p.key)),
            in_port: p.in_port.0,
            data: p.data,
            total_len: p.total_len as u32,
        })),
    }
}
