//! Ports: API port descriptions and counters as OpenFlow ports and port stats, packet-ins
//! and packet-outs.
//!
//! Port numbers cross unchanged, except that the caller may name one port the bridge's
//! local port: it is `OFPP_LOCAL` on the wire, as Open vSwitch numbers a bridge's internal
//! port ([`LocalPort`]).

use crate::openflow::error::{OfpError, bad_request};
use crate::openflow::ids::{BufferId, PortNo};
use crate::openflow::packet::{PacketOut, reason};
use crate::openflow::port::{Port, config, features, state};
use crate::openflow::wire::Put;
use crate::v1::{self, port_ref};

use super::actions::{self, Place};
use super::matches;

/// The port a bridge shows as `OFPP_LOCAL` (its internal port, named like the bridge), by
/// its number in the API, if it has one.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalPort(pub Option<u32>);

impl LocalPort {
    /// The wire number of an API port number.
    pub fn to_wire(self, n: u32) -> PortNo {
        if self.0 == Some(n) {
            PortNo::LOCAL
        } else {
            PortNo(n)
        }
    }

    /// The API number of a wire port number (LOCAL stays LOCAL when there is no such port).
    pub fn from_wire(self, p: PortNo) -> u32 {
        match (p, self.0) {
            (PortNo::LOCAL, Some(n)) => n,
            (p, _) => p.0,
        }
    }
}

/// The OFPPF_* bits and kbps of a speed in Mbit/s (0: unknown, reported as 10G copper as
/// Open vSwitch reports virtual ports).
fn speed_bits(mbps: u64) -> (u32, u32) {
    let f = match mbps {
        0 | 10_000 => features::F_10GB_FD,
        10 => features::F_10MB_FD,
        100 => features::F_100MB_FD,
        1_000 => features::F_1GB_FD,
        40_000 => features::F_40GB_FD,
        100_000 => features::F_100GB_FD,
        1_000_000 => features::F_1TB_FD,
        _ => features::OTHER,
    };
    let kbps = if mbps == 0 {
        10_000_000
    } else {
        mbps.saturating_mul(1000)
    };
    (f | features::COPPER, kbps.min(u64::from(u32::MAX)) as u32)
}

/// The ofp_port of an API port description.
pub fn port(d: &v1::PortDesc, local: LocalPort) -> Port {
    let mut hw = [0u8; 6];
    if d.hw_addr.len() == 6 {
        hw.copy_from_slice(&d.hw_addr);
    }
    let mut p = Port::new(local.to_wire(d.port_no), hw, &d.name);
    p.config = d.openflow_config & config::ALL;
    if !d.admin_up {
        p.config |= config::PORT_DOWN;
    }
    p.state = if d.link_up {
        state::LIVE
    } else {
        state::LINK_DOWN
    };
    let (curr, kbps) = speed_bits(d.speed_mbps);
    p.curr = curr;
    p.curr_speed = kbps;
    p.max_speed = 0;
    p
}

/// Writes one OFPMP_PORT_STATS reply entry.
pub fn put_port_stats(s: &v1::PortStats, local: LocalPort, out: &mut Vec<u8>) {
    out.put_u32(local.to_wire(s.port_no).0);
    out.put_zeros(4);
    for v in [
        s.rx_packets,
        s.tx_packets,
        s.rx_bytes,
        s.tx_bytes,
        s.rx_dropped,
        s.tx_dropped,
        s.rx_errors,
        s.tx_errors,
        0,
        0,
        0,
        0,
    ] {
        out.put_u64(v);
    }
    out.put_u32((s.duration_ns / 1_000_000_000) as u32);
    out.put_u32((s.duration_ns % 1_000_000_000) as u32);
}

/// The OFPR_* reason of a packet-in.
pub fn packet_in_reason(r: i32) -> u8 {
    match v1::PacketInReason::try_from(r) {
        Ok(v1::PacketInReason::NoMatch) => reason::NO_MATCH,
        Ok(v1::PacketInReason::InvalidTtl) => reason::INVALID_TTL,
        // OpenFlow 1.4's reasons go to an OpenFlow 1.3 controller as ACTION, as Open
        // vSwitch sends them.
        Ok(
            v1::PacketInReason::Action
            | v1::PacketInReason::ActionSet
            | v1::PacketInReason::Group
            | v1::PacketInReason::PacketOut,
        )
        | Err(_) => reason::ACTION,
    }
}

/// Writes the body of a PACKET_IN (after the header) for a packet-in event, its data cut
/// to `max_len` bytes. The match's in_port is shown through `local`.
pub fn put_packet_in(p: &v1::PacketIn, max_len: usize, local: LocalPort, out: &mut Vec<u8>) {
    let data = &p.data[..p.data.len().min(max_len)];
    out.put_u32(BufferId::NO_BUFFER.0);
    out.put_u16(p.total_len.min(0xffff) as u16);
    out.put_u8(packet_in_reason(p.reason));
    out.put_u8(p.table_id as u8);
    out.put_u64(p.cookie);
    let mut m = p.r#match.clone().unwrap_or_default();
    for f in &mut m.fields {
        if f.field == v1::Field::InPort as i32 && f.value.len() == 4 {
            let n = u32::from_be_bytes([f.value[0], f.value[1], f.value[2], f.value[3]]);
            f.value = local.to_wire(n).0.to_be_bytes().to_vec();
        }
    }
    matches::emit(&m, out);
    out.put_zeros(2);
    out.extend_from_slice(data);
}

/// The API packet-out of a PACKET_OUT for `bridge`. A buffered packet is
/// `BUFFER_UNKNOWN` (the switch buffers none); an in_port that is neither a port nor
/// CONTROLLER (or LOCAL) is `BAD_PORT`; data too short for an Ethernet header is
/// `BAD_PACKET`.
pub fn packet_out(
    po: &PacketOut<'_>,
    bridge: &str,
    local: LocalPort,
) -> Result<v1::PacketOut, OfpError> {
    if po.buffer_id != BufferId::NO_BUFFER {
        return Err(bad_request::BUFFER_UNKNOWN);
    }
    let in_port = match po.in_port {
        PortNo::CONTROLLER | PortNo::ANY => None,
        PortNo::LOCAL if local.0.is_none() => None,
        PortNo::LOCAL => Some(port_ref::Port::Number(local.from_wire(PortNo::LOCAL))),
        PortNo(n) if n == 0 || n > PortNo::MAX.0 => return Err(bad_request::BAD_PORT),
        PortNo(n) => Some(port_ref::Port::Number(n)),
    };
    let mut acts = actions::to_api(&po.actions, Place::PacketOut)?;
    for a in &mut acts {
        if let Some(v1::action::Action::Output(o)) = &mut a.action
            && let Some(v1::PortRef {
                port: Some(port_ref::Port::Reserved(r)),
            }) = &o.port
            && *r == v1::ReservedPort::Local as i32
            && let Some(n) = local.0
        {
            o.port = Some(v1::PortRef {
                port: Some(port_ref::Port::Number(n)),
            });
        }
    }
    if po.data.len() < 14 {
        return Err(bad_request::BAD_PACKET);
    }
    Ok(v1::PacketOut {
        bridge: bridge.to_string(),
        in_port: in_port.map(|p| v1::PortRef { port: Some(p) }),
        actions: acts,
        data: po.data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::actions::{Action, Actions};
    use crate::openflow::body::MessageBody;
    use crate::openflow::list::encode;
    use crate::openflow::packet::PacketIn;

    #[test]
    fn local_port_shows_as_ofpp_local() {
        let l = LocalPort(Some(7));
        assert_eq!(l.to_wire(7), PortNo::LOCAL);
        assert_eq!(l.to_wire(3), PortNo(3));
        assert_eq!(l.from_wire(PortNo::LOCAL), 7);
        let d = v1::PortDesc {
            port_no: 7,
            name: "br0".into(),
            hw_addr: vec![2, 0, 0, 0, 0, 1],
            link_up: true,
            admin_up: true,
            ..Default::default()
        };
        let p = port(&d, l);
        assert_eq!(
            (p.port_no, p.name(), p.state),
            (PortNo::LOCAL, &b"br0"[..], state::LIVE)
        );
        assert_eq!(p.config, 0);
    }

    #[test]
    fn port_config_shows_its_bits_and_admin_down() {
        let d = v1::PortDesc {
            port_no: 3,
            openflow_config: config::NO_FWD | config::NO_PACKET_IN | 1 << 20,
            admin_up: true,
            ..Default::default()
        };
        assert_eq!(
            port(&d, LocalPort(None)).config,
            config::NO_FWD | config::NO_PACKET_IN
        );
        let d = v1::PortDesc {
            admin_up: false,
            ..d
        };
        assert_eq!(
            port(&d, LocalPort(None)).config,
            config::PORT_DOWN | config::NO_FWD | config::NO_PACKET_IN
        );
    }

    #[test]
    fn packet_in_is_cut_and_parses_back() {
        let p = v1::PacketIn {
            reason: v1::PacketInReason::NoMatch as i32,
            table_id: 1,
            cookie: 9,
            r#match: Some(v1::Match {
                fields: vec![v1::FieldMatch {
                    field: v1::Field::InPort as i32,
                    value: vec![0, 0, 0, 3],
                    ..Default::default()
                }],
            }),
            in_port: 3,
            data: vec![0xaa; 100],
            total_len: 100,
            ..Default::default()
        };
        let mut out = Vec::new();
        put_packet_in(&p, 64, LocalPort::default(), &mut out);
        let pi = PacketIn::parse(&out).expect("parses");
        assert_eq!(
            (pi.reason, pi.total_len, pi.data.len()),
            (reason::NO_MATCH, 100, 64)
        );
        assert_eq!(pi.in_port(), Some(PortNo(3)));
    }

    #[test]
    fn packet_out_refusals() {
        let acts = encode(&[Action::Output {
            port: PortNo::FLOOD,
            max_len: 0,
        }]);
        let frame = [0u8; 60];
        let mut po = PacketOut {
            buffer_id: BufferId::NO_BUFFER,
            in_port: PortNo::CONTROLLER,
            actions: Actions::new_checked(&acts).expect("actions"),
            data: &frame,
        };
        assert!(packet_out(&po, "br0", LocalPort::default()).is_ok());
        po.buffer_id = BufferId(1);
        assert_eq!(
            packet_out(&po, "br0", LocalPort::default()),
            Err(bad_request::BUFFER_UNKNOWN)
        );
        po.buffer_id = BufferId::NO_BUFFER;
        po.in_port = PortNo(0xffff_ff10);
        assert_eq!(
            packet_out(&po, "br0", LocalPort::default()),
            Err(bad_request::BAD_PORT)
        );
        po.in_port = PortNo(1);
        po.data = &frame[..10];
        assert_eq!(
            packet_out(&po, "br0", LocalPort::default()),
            Err(bad_request::BAD_PACKET)
        );
    }
}
