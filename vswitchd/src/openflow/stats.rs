//! MULTIPART requests: descriptions, flow and aggregate statistics, tables, ports, queues,
//! groups, meters and the features of each, answered from the switch's statistics calls
//! (the same the gRPC API serves) and split under 64 KiB with `OFPMPF_REPLY_MORE`.

use proto::ofapi::{features, flows, groups, meters, ports};
use proto::openflow::error::{OfpError, bad_request, queue_op_failed, table_features_failed};
use proto::openflow::ids::{GroupId, MeterId, PortNo};
use proto::openflow::list::{Item, List};
use proto::openflow::message::Message;
use proto::openflow::multipart::{
    MultipartReply, MultipartRequest, ReplyBody, ReplyWriter, RequestBody, mp_type,
};
use proto::openflow::port::{PacketQueue, QueueGetConfigReply};
use proto::openflow::stats::{AggregateStats, Desc, FlowStatsRequest};
use proto::openflow::wire::Put;
use proto::v1::{self, entity, port_ref};

use super::session::Session;

/// Most flows a switch table holds, as TABLE_FEATURES reports it.
const MAX_ENTRIES: u32 = 1_000_000;
/// Most groups and meters, as their features report it.
const MAX_GROUPS: u32 = 65_536;

fn port_ref_of(n: u32) -> v1::PortRef {
    v1::PortRef {
        port: Some(port_ref::Port::Number(n)),
    }
}

impl Session {
    /// Answers a MULTIPART_REQUEST.
    pub(super) fn multipart(
        &mut self,
        req: &MultipartRequest<'_>,
        _msg: &[u8],
        xid: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), OfpError> {
        use RequestBody as B;
        let single = |s: &Self, out: &mut Vec<u8>, body: ReplyBody<'_>| {
            s.send(
                &Message::MultipartReply(MultipartReply { flags: 0, body }),
                xid,
                out,
            );
        };
        match req.body {
            B::Desc => {
                let sw = format!("vswitchd {}", env!("CARGO_PKG_VERSION"));
                let d = Desc {
                    mfr_desc: b"The vswitch authors",
                    hw_desc: b"vswitchd userspace switch",
                    sw_desc: sw.as_bytes(),
                    serial_num: b"None",
                    dp_desc: b"None",
                };
                single(self, out, ReplyBody::Desc(d));
            }
            B::Flow(f) => self.flow_stats(&f, xid, out)?,
            B::Aggregate(f) => {
                let a = self.aggregate(&f)?;
                single(self, out, ReplyBody::Aggregate(a));
            }
            B::Table => self.table_stats(xid, out),
            B::PortStats(p) => self.port_stats(p, xid, out)?,
            B::Queue { port_no, queue_id } => self.queue_stats(port_no, queue_id, xid, out)?,
            B::Group(g) => self.group_stats(g, xid, out)?,
            B::GroupDesc => self.group_desc(xid, out),
            B::GroupFeatures => {
                single(
                    self,
                    out,
                    ReplyBody::GroupFeatures(features::group_features(MAX_GROUPS)),
                );
            }
            B::Meter(m) => self.meter_stats(m, xid, out)?,
            B::MeterConfig(m) => self.meter_config(m, xid, out)?,
            B::MeterFeatures => {
                single(
                    self,
                    out,
                    ReplyBody::MeterFeatures(features::meter_features(MAX_GROUPS)),
                );
            }
            B::TableFeatures(l) if l.is_empty() => self.table_features(xid, out),
            B::TableFeatures(_) => return Err(table_features_failed::EPERM),
            B::PortDesc => self.port_desc(xid, out),
            B::Experimenter(_) => return Err(bad_request::BAD_MULTIPART),
        }
        Ok(())
    }

    /// A reply written entry by entry.
    fn writer<'o>(&self, out: &'o mut Vec<u8>, xid: u32, t: u16) -> ReplyWriter<'o> {
        ReplyWriter::new(out, self.v(), xid, t)
    }

    fn flows(&self, f: &FlowStatsRequest<'_>) -> Result<Vec<v1::Flow>, OfpError> {
        let ff = flows::stats_filter(
            f.table_id,
            f.cookie,
            f.cookie_mask,
            f.out_port,
            f.out_group,
            &f.match_,
        )?;
        Ok(self
            .read_entities(v1::read_filter::Filter::Flows(ff))
            .into_iter()
            .filter_map(|e| match e {
                entity::Entity::Flow(f) => Some(f),
                _ => None,
            })
            .collect())
    }

    fn flow_stats(
        &self,
        f: &FlowStatsRequest<'_>,
        xid: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), OfpError> {
        let list = self.flows(f)?;
        let mut w = self.writer(out, xid, mp_type::FLOW);
        for fl in &list {
            let _ = w.push_with(|o| flows::put_flow_stats(fl, o));
        }
        let _ = w.finish();
        Ok(())
    }

    fn aggregate(&self, f: &FlowStatsRequest<'_>) -> Result<AggregateStats, OfpError> {
        let list = self.flows(f)?;
        let mut a = AggregateStats::default();
        for fl in &list {
            let s = fl.stats.unwrap_or_default();
            a.packet_count += s.packet_count;
            a.byte_count += s.byte_count;
            a.flow_count += 1;
        }
        Ok(a)
    }

    fn table_stats(&self, xid: u32, out: &mut Vec<u8>) {
        let n = self.sw.get_bridge(&self.bridge).map_or(0, |b| b.n_tables);
        let have = self.sw.table_stats(&self.bridge).unwrap_or_default();
        let mut w = self.writer(out, xid, mp_type::TABLE);
        for t in 0..n {
            let s = have
                .iter()
                .find(|s| s.table_id == t)
                .copied()
                .unwrap_or_default();
            let _ = w.push_with(|o| {
                o.put_u8(t as u8);
                o.put_zeros(3);
                o.put_u32(s.active_count);
                o.put_u64(s.lookup_count);
                o.put_u64(s.matched_count);
            });
        }
        let _ = w.finish();
    }

    fn port_stats(&self, p: PortNo, xid: u32, out: &mut Vec<u8>) -> Result<(), OfpError> {
        let local = self.local();
        let want = (p != PortNo::ANY).then(|| port_ref_of(local.from_wire(p)));
        let stats = self
            .sw
            .port_stats(&self.bridge, want.as_ref())
            .map_err(|_| bad_request::BAD_PORT)?;
        let mut w = self.writer(out, xid, mp_type::PORT_STATS);
        for s in &stats {
            let _ = w.push_with(|o| ports::put_port_stats(s, local, o));
        }
        let _ = w.finish();
        Ok(())
    }

    fn queue_stats(&self, p: PortNo, q: u32, xid: u32, out: &mut Vec<u8>) -> Result<(), OfpError> {
        let local = self.local();
        let want = (p != PortNo::ANY).then(|| port_ref_of(local.from_wire(p)));
        let queue = (q != 0xffff_ffff).then_some(q);
        let stats = self
            .sw
            .queue_stats(&self.bridge, want.as_ref(), queue)
            .map_err(|e| {
                if e.field.contains("queue") {
                    queue_op_failed::BAD_QUEUE
                } else {
                    queue_op_failed::BAD_PORT
                }
            })?;
        let mut w = self.writer(out, xid, mp_type::QUEUE);
        for s in &stats {
            let _ = w.push_with(|o| {
                o.put_u32(local.to_wire(s.port_no).0);
                o.put_u32(s.queue_id);
                o.put_u64(s.tx_bytes);
                o.put_u64(s.tx_packets);
                o.put_u64(s.tx_dropped);
                o.put_u32(0);
                o.put_u32(0);
            });
        }
        let _ = w.finish();
        Ok(())
    }

    fn group_stats(&self, g: GroupId, xid: u32, out: &mut Vec<u8>) -> Result<(), OfpError> {
        use proto::openflow::error::group_mod_failed;
        let id = (g != GroupId::ALL).then_some(g.0);
        let stats = self
            .sw
            .group_stats(&self.bridge, id)
            .map_err(|_| group_mod_failed::UNKNOWN_GROUP)?;
        let mut w = self.writer(out, xid, mp_type::GROUP);
        for s in &stats {
            let _ = w.push_with(|o| groups::put_group_stats(s, s.buckets.len(), o));
        }
        let _ = w.finish();
        Ok(())
    }

    fn group_desc(&self, xid: u32, out: &mut Vec<u8>) {
        let list = self.read_entities(v1::read_filter::Filter::Groups(v1::GroupFilter::default()));
        let mut w = self.writer(out, xid, mp_type::GROUP_DESC);
        for e in &list {
            if let entity::Entity::Group(g) = e {
                let _ = w.push_with(|o| groups::put_group_desc(g, o));
            }
        }
        let _ = w.finish();
    }

    fn meter_stats(&self, m: MeterId, xid: u32, out: &mut Vec<u8>) -> Result<(), OfpError> {
        use proto::openflow::error::meter_mod_failed;
        let id = (m != MeterId::ALL).then_some(m.0);
        let stats = self
            .sw
            .meter_stats(&self.bridge, id)
            .map_err(|_| meter_mod_failed::UNKNOWN_METER)?;
        let mut w = self.writer(out, xid, mp_type::METER);
        for s in &stats {
            let _ = w.push_with(|o| meters::put_meter_stats(s, o));
        }
        let _ = w.finish();
        Ok(())
    }

    fn meter_config(&self, m: MeterId, xid: u32, out: &mut Vec<u8>) -> Result<(), OfpError> {
        use proto::openflow::error::meter_mod_failed;
        let filter = v1::MeterFilter {
            id: (m != MeterId::ALL).then_some(m.0),
        };
        let list = self.read_entities(v1::read_filter::Filter::Meters(filter));
        if m != MeterId::ALL && list.is_empty() {
            return Err(meter_mod_failed::UNKNOWN_METER);
        }
        let mut w = self.writer(out, xid, mp_type::METER_CONFIG);
        for e in &list {
            if let entity::Entity::Meter(mt) = e {
                let _ = w.push_with(|o| meters::put_meter_config(mt, o));
            }
        }
        let _ = w.finish();
        Ok(())
    }

    fn table_features(&self, xid: u32, out: &mut Vec<u8>) {
        let n = self.sw.get_bridge(&self.bridge).map_or(0, |b| b.n_tables);
        let mut w = self.writer(out, xid, mp_type::TABLE_FEATURES);
        let _ = features::table_features(n.min(255) as u8, MAX_ENTRIES, |f| w.push_with(f));
        let _ = w.finish();
    }

    fn port_desc(&self, xid: u32, out: &mut Vec<u8>) {
        let local = self.local();
        let list = self.sw.list_ports(&self.bridge).unwrap_or_default();
        let mut w = self.writer(out, xid, mp_type::PORT_DESC);
        for d in &list {
            let p = ports::port(d, local);
            let _ = w.push(&p);
        }
        let _ = w.finish();
    }

    /// QUEUE_GET_CONFIG: the queues of a port (or of every port), without properties.
    pub(super) fn queue_config(
        &self,
        p: PortNo,
        xid: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), OfpError> {
        let local = self.local();
        let want = (p != PortNo::ANY).then(|| port_ref_of(local.from_wire(p)));
        let stats = self
            .sw
            .queue_stats(&self.bridge, want.as_ref(), None)
            .map_err(|_| queue_op_failed::BAD_PORT)?;
        let mut queues = Vec::new();
        for s in &stats {
            PacketQueue {
                queue_id: s.queue_id,
                port: local.to_wire(s.port_no),
                properties: List::default(),
            }
            .emit_item(&mut queues);
        }
        let list = List::new_checked(&queues).unwrap_or_default();
        let r = QueueGetConfigReply {
            port: p,
            queues: list,
        };
        self.send(&Message::QueueGetConfigReply(r), xid, out);
        Ok(())
    }
}
