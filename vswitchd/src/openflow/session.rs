//! One OpenFlow connection's protocol state, without I/O: messages in, replies out.
//!
//! What: [`Session`] negotiates the version (HELLO; OpenFlow 1.3 is offered), answers
//! every request, keeps the connection's role, async configuration and miss length, and
//! queues flow changes ([`super::writes`]) so that a stream of FLOW_MODs becomes few
//! store transactions. Replies and errors are appended to an output buffer the caller
//! sends; the caller also calls [`Session::flush`] whenever its input is drained, and
//! [`Session::event`] with the switch's events.
//!
//! Errors are Open vSwitch's: a malformed or unsupported message gets the OpenFlow ERROR
//! for it with the message's first 64 bytes, and the connection stays up; only broken
//! framing (a length below 8) or a failed HELLO closes it. Nothing is half-applied: each
//! FLOW_MOD, GROUP_MOD and METER_MOD is one update applied whole or refused whole, a bundle
//! is one all-or-nothing transaction.
//!
//! Thread-safety: a session belongs to its connection's thread; it reaches the switch
//! through the same methods the gRPC service uses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::ofapi::ports::LocalPort;
use proto::openflow::error::{OfpError, bad_request, hello_failed};
use proto::openflow::error_msg::ErrorMsg;
use proto::openflow::header::Version;
use proto::openflow::hello::{Hello, VersionSet};
use proto::openflow::message::{self, Message};
use proto::openflow::switch::{AsyncConfig, SwitchConfig, role};

use super::bundles::Bundle;
use super::limiter::Limiter;
use super::roles::Roles;
use super::writes::Batch;
use crate::switch::Switch;

/// OFP_DEFAULT_MISS_SEND_LEN: bytes of a packet-in a primary connection gets by default.
const DEFAULT_MISS_SEND_LEN: u16 = 128;

/// The versions this switch speaks.
pub const VERSIONS: VersionSet = VersionSet(1 << 4);

/// Counters of one connection, shared with its target's status.
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Packet-ins sent.
    pub packet_in_sent: AtomicU64,
    /// Packet-ins dropped: rate limit, or the connection lagging behind the switch.
    pub packet_in_dropped: AtomicU64,
}

/// What the caller does after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Keep going.
    Continue,
    /// Send what is in the output buffer, then close, for this reason.
    Close(String),
}

/// The per-connection settings from the controller's target.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Packet-ins per second (0: none).
    pub rate: u32,
    /// Packet-ins at once above the rate.
    pub burst: u32,
    /// A service connection (accepted on a passive target: `ovs-ofctl`), as Open vSwitch
    /// treats it: `miss_send_len` starts at 0 and no asynchronous message is sent while it
    /// stays 0 (SET_CONFIG or SET_ASYNC turns them on). Connections to active targets are
    /// primary: every asynchronous message the async configuration allows, from the start.
    pub service: bool,
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct Session {
    pub(super) sw: Arc<Switch>,
    pub(super) bridge: String,
    pub(super) roles: Arc<Roles>,
    pub(super) id: u64,
    pub(super) version: Option<Version>,
    pub(super) async_cfg: AsyncConfig,
    pub(super) miss_send_len: u16,
    /// A service connection ([`Settings::service`]).
    pub(super) service: bool,
    pub(super) batch: Batch,
    pub(super) bundles: BTreeMap<u32, Bundle>,
    pub(super) counters: Arc<ConnCounters>,
    pub(super) limiter: Option<Limiter>,
    /// The bridge's local port, as last looked up ([`Session::refresh`]).
    local_port: LocalPort,
}

/// The xid of a framed message.
pub(super) fn xid_of(msg: &[u8]) -> u32 {
    msg.get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl Session {
    /// A session on `bridge` (not negotiated yet).
    pub fn new(
        sw: Arc<Switch>,
        bridge: &str,
        roles: Arc<Roles>,
        settings: Settings,
        counters: Arc<ConnCounters>,
    ) -> Session {
        let id = roles.join();
        let mut s = Session {
            sw,
            bridge: bridge.to_string(),
            roles,
            id,
            version: None,
            async_cfg: AsyncConfig::DEFAULT,
            miss_send_len: if settings.service {
                0
            } else {
                DEFAULT_MISS_SEND_LEN
            },
            service: settings.service,
            batch: Batch::default(),
            bundles: BTreeMap::new(),
            counters,
            limiter: (settings.rate > 0).then(|| Limiter::new(settings.rate, settings.burst)),
            local_port: LocalPort::default(),
        };
        s.refresh();
        s
    }

    /// Looks up again what the session caches about its bridge (the local port); the
    /// connection calls it on port changes and now and then.
    pub fn refresh(&mut self) {
        self.local_port = LocalPort(
            self.sw
                .list_ports(&self.bridge)
                .ok()
                .and_then(|ps| ps.into_iter().find(|p| p.name == self.bridge))
                .map(|p| p.port_no),
        );
    }

    /// Writes our HELLO (sent first, before anything is received).
    pub fn hello(&self, out: &mut Vec<u8>) {
        let _ = Hello::emit_ours(VERSIONS, 0, out);
    }

    /// The negotiated version, once HELLO is done.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The connection's role (OFPCR_ROLE_*).
    pub fn role(&self) -> u32 {
        self.roles.role(self.id)
    }

    /// True for a slave connection, which may not change the switch.
    pub(super) fn is_slave(&self) -> bool {
        self.role() == role::SLAVE
    }

    /// The version replies are sent with.
    pub(super) fn v(&self) -> Version {
        self.version.unwrap_or(Version::V1_3)
    }

    /// The bridge's local port (its internal port named like the bridge), for `OFPP_LOCAL`.
    pub(super) fn local(&self) -> LocalPort {
        self.local_port
    }

    /// Appends an ERROR answering `req`.
    pub(super) fn error(&self, e: OfpError, req: &[u8], out: &mut Vec<u8>) {
        let m = Message::Error(ErrorMsg::reply(e.for_version(self.v()), req));
        let _ = m.emit(self.v(), xid_of(req), out);
    }

    /// Appends a reply.
    pub(super) fn send(&self, m: &Message<'_>, xid: u32, out: &mut Vec<u8>) {
        if let Err(e) = m.emit(self.v(), xid, out) {
            tracing::warn!(bridge = %self.bridge, "OpenFlow reply not sent: {e}");
        }
    }

    /// Handles one framed message (`msg.len()` is its length field).
    pub fn handle(&mut self, msg: &[u8], out: &mut Vec<u8>) -> Next {
        let Some(v) = self.version else {
            return self.negotiate(msg, out);
        };
        if msg.first() != Some(&v.0) {
            self.error(bad_request::BAD_VERSION, msg, out);
            return Next::Continue;
        }
        match message::parse(msg) {
            Ok((h, m)) => self.dispatch(m, msg, h.xid, out),
            Err(e) => {
                self.error(e, msg, out);
                Next::Continue
            }
        }
    }

    /// The first message must be a HELLO we share a version with.
    fn negotiate(&mut self, msg: &[u8], out: &mut Vec<u8>) -> Next {
        let hello = match message::parse(msg) {
            Ok((h, Message::Hello(hello))) => hello.negotiate(h.version, VERSIONS),
            _ => {
                self.hello_failed(msg, b"expected a HELLO", out);
                return Next::Close("the peer did not start with a HELLO".into());
            }
        };
        match hello {
            Ok(v) => {
                self.version = Some(v);
                Next::Continue
            }
            Err(_) => {
                self.hello_failed(
                    msg,
                    b"no common OpenFlow version (this switch speaks 1.3)",
                    out,
                );
                Next::Close("no common OpenFlow version".into())
            }
        }
    }

    fn hello_failed(&self, msg: &[u8], text: &[u8], out: &mut Vec<u8>) {
        let m = Message::Error(ErrorMsg {
            error: hello_failed::INCOMPATIBLE,
            data: text,
        });
        let _ = m.emit(Version::V1_3, xid_of(msg), out);
    }

    fn dispatch(&mut self, m: Message<'_>, msg: &[u8], xid: u32, out: &mut Vec<u8>) -> Next {
        use Message as M;
        match m {
            M::FlowMod(fm) => self.flow_mod(&fm, msg, out),
            M::EchoRequest(d) => self.send(&M::EchoReply(d), xid, out),
            M::Hello(_) | M::EchoReply(_) => {}
            M::Error(e) => {
                tracing::debug!(bridge = %self.bridge, "controller sent error {}", e.error);
            }
            M::BarrierRequest => {
                self.flush(out);
                self.send(&M::BarrierReply, xid, out);
            }
            other => {
                if sees_flows(&other) {
                    self.flush(out);
                }
                self.other(other, msg, xid, out);
            }
        }
        Next::Continue
    }

    fn other(&mut self, m: Message<'_>, msg: &[u8], xid: u32, out: &mut Vec<u8>) {
        use Message as M;
        let r = match m {
            M::FeaturesRequest => {
                self.features(xid, out);
                Ok(())
            }
            M::GetConfigRequest => {
                let c = SwitchConfig {
                    flags: 0,
                    miss_send_len: self.miss_send_len,
                };
                self.send(&M::GetConfigReply(c), xid, out);
                Ok(())
            }
            M::SetConfig(c) => {
                self.miss_send_len = c.miss_send_len;
                Ok(())
            }
            M::MultipartRequest(req) => self.multipart(&req, msg, xid, out),
            M::PacketOut(po) => self.packet_out(&po),
            M::GroupMod(gm) => self.group_mod(&gm, msg, out),
            M::MeterMod(mm) => self.meter_mod(&mm, msg, out),
            M::PortMod(pm) => self.port_mod(&pm),
            M::TableMod(tm) => self.table_mod(&tm),
            M::RoleRequest(r) => self.role_request(r, xid, out),
            M::GetAsyncRequest => {
                self.send(&M::GetAsyncReply(self.async_cfg), xid, out);
                Ok(())
            }
            M::SetAsync(c) => {
                self.async_cfg = c;
                if self.service && self.miss_send_len == 0 {
                    self.miss_send_len = DEFAULT_MISS_SEND_LEN;
                }
                Ok(())
            }
            M::QueueGetConfigRequest(q) => self.queue_config(q.port, xid, out),
            M::BundleControl(b) => self.bundle_control(&b, msg, xid, out),
            M::BundleAdd(b) => self.bundle_add(&b, msg, out),
            M::Experimenter(e) => Err(experimenter_error(e.experimenter)),
            _ => Err(bad_request::BAD_TYPE),
        };
        if let Err(e) = r {
            self.error(e, msg, out);
        }
    }

    fn features(&self, xid: u32, out: &mut Vec<u8>) {
        use proto::openflow::switch::{FeaturesReply, capabilities as c};
        let (dpid, n_tables) = self
            .sw
            .get_bridge(&self.bridge)
            .map_or((0, 0), |b| (b.datapath_id, b.n_tables));
        let f = FeaturesReply {
            datapath_id: dpid,
            n_buffers: 0,
            n_tables: n_tables.min(255) as u8,
            auxiliary_id: 0,
            capabilities: c::FLOW_STATS
                | c::TABLE_STATS
                | c::PORT_STATS
                | c::GROUP_STATS
                | c::QUEUE_STATS,
            reserved: 0,
        };
        let start = out.len();
        if message::emit(self.v(), xid, &f, out).is_err() {
            out.truncate(start);
        }
    }

    fn role_request(
        &self,
        r: proto::openflow::switch::Role,
        xid: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), OfpError> {
        let (role, generation_id) = self.roles.request(self.id, r.role, r.generation_id)?;
        let reply = proto::openflow::switch::Role {
            role,
            generation_id,
        };
        self.send(&Message::RoleReply(reply), xid, out);
        Ok(())
    }

    /// Counts a packet-in dropped.
    pub(super) fn drop_packet_in(&self, n: u64) {
        self.counters
            .packet_in_dropped
            .fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for Session {
    /// The connection's last FLOW_MODs are applied even when it ends before they were (its
    /// errors have nowhere to go).
    fn drop(&mut self) {
        let mut lost = Vec::new();
        self.flush(&mut lost);
        self.roles.leave(self.id);
    }
}

/// Whether a request's answer or effect depends on the FLOW_MODs before it (then they are
/// applied first): statistics, packet-outs, group, meter, port, table and bundle changes.
/// Configuration, features, roles and async settings do not, so they leave a held batch
/// held (Faucet sends SET_ASYNC between emptying its tables and filling them).
fn sees_flows(m: &Message<'_>) -> bool {
    use Message as M;
    !matches!(
        m,
        M::FeaturesRequest
            | M::GetConfigRequest
            | M::SetConfig(_)
            | M::GetAsyncRequest
            | M::SetAsync(_)
            | M::RoleRequest(_)
            | M::QueueGetConfigRequest(_)
    )
}

/// The error for an experimenter message this switch does not know.
fn experimenter_error(experimenter: u32) -> OfpError {
    use proto::openflow::error::{NX_VENDOR_ID, ONF_VENDOR_ID};
    if experimenter == NX_VENDOR_ID || experimenter == ONF_VENDOR_ID {
        bad_request::BAD_EXP_TYPE
    } else {
        bad_request::BAD_EXPERIMENTER
    }
}
