//! Asynchronous messages: the switch's packet-in, flow-removed and port-status events as
//! PACKET_IN, FLOW_REMOVED and PORT_STATUS, for the connections that asked for them.
//!
//! Who gets what (OpenFlow 1.3 async configuration, as Open vSwitch applies it): each
//! connection's masks, the master/equal masks unless it is a slave; the defaults send
//! packet-ins (every reason) and flow-removed (every reason) to masters and equals, port
//! status to everyone. A packet-in also passes the connection's rate limit
//! (`controller_rate_limit`); what it refuses is counted as dropped, as are events the
//! connection fell behind on. A flow-removed is only ever sent for a flow that asked for it
//! (`send_flow_rem`): the switch emits no other.
//!
//! Packet data: the datapath already cut it to the controller action's `max_len`;
//! `miss_send_len` applies to packet-ins that no output action sent (invalid TTL), as
//! OpenFlow 1.3 defines it.

use std::sync::atomic::Ordering;
use std::time::Instant;

use proto::ofapi::{flows, ports};
use proto::openflow::header::{self, MsgType};
use proto::openflow::message::Message;
use proto::openflow::packet::reason;
use proto::openflow::port::PortStatus;
use proto::openflow::switch::role;
use proto::v1::{self, stream_message_response as smr};

use super::session::Session;
use crate::switch::Event;

impl Session {
    /// Whether the connection's async configuration lets a message of `reason` through.
    fn wants(&self, masks: [u32; 2], reason: u8) -> bool {
        let i = usize::from(self.role() == role::SLAVE);
        reason < 32 && masks[i] & (1 << reason) != 0
    }

    /// Appends what an event means for this connection.
    pub fn event(&mut self, ev: &Event, out: &mut Vec<u8>) {
        if ev.bridge != self.bridge || self.version.is_none() {
            return;
        }
        if self.service && self.miss_send_len == 0 {
            return;
        }
        match &ev.msg.update {
            Some(smr::Update::PacketIn(p)) => self.packet_in(p, out),
            Some(smr::Update::FlowRemoved(f)) => self.flow_removed(f, out),
            Some(smr::Update::PortStatus(p)) => {
                self.refresh();
                self.port_status(p, out);
            }
            _ => {}
        }
    }

    /// Events the connection fell behind on (counted as packet-ins dropped: those are
    /// what a flood consists of).
    pub fn lagged(&self, n: u64) {
        self.drop_packet_in(n);
    }

    fn packet_in(&mut self, p: &v1::PacketIn, out: &mut Vec<u8>) {
        // A `controller(id=N)` packet-in goes to the connections with id N, as in Open
        // vSwitch; every connection here has the default id 0 (no NXT_SET_CONTROLLER_ID).
        if p.controller_id != 0 {
            return;
        }
        let r = ports::packet_in_reason(p.reason);
        if !self.wants(self.async_cfg.packet_in_mask, r) {
            return;
        }
        if let Some(l) = &mut self.limiter
            && !l.allow(Instant::now())
        {
            self.drop_packet_in(1);
            return;
        }
        let max = if r == reason::INVALID_TTL {
            usize::from(self.miss_send_len)
        } else {
            usize::MAX
        };
        let start = header::begin(out, self.v(), MsgType::PACKET_IN, 0);
        ports::put_packet_in(p, max, self.local(), out);
        if header::finish(out, start).is_ok() {
            self.counters.packet_in_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flow_removed(&self, f: &v1::FlowRemoved, out: &mut Vec<u8>) {
        if !self.wants(
            self.async_cfg.flow_removed_mask,
            flows::removed_reason(f.reason),
        ) {
            return;
        }
        let start = header::begin(out, self.v(), MsgType::FLOW_REMOVED, 0);
        flows::put_flow_removed(f, out);
        let _ = header::finish(out, start);
    }

    fn port_status(&self, p: &v1::PortStatus, out: &mut Vec<u8>) {
        let r = match v1::PortStatusReason::try_from(p.reason) {
            Ok(v1::PortStatusReason::Add) => 0,
            Ok(v1::PortStatusReason::Delete) => 1,
            _ => 2,
        };
        if !self.wants(self.async_cfg.port_status_mask, r) {
            return;
        }
        let Some(d) = &p.port else { return };
        let ps = PortStatus {
            reason: r,
            port: ports::port(d, self.local()),
        };
        self.send(&Message::PortStatus(ps), 0, out);
    }
}
