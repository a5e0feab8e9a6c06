//! From API messages to datapath configuration: matches, actions, instructions (meters and
//! groups are in [`crate::meter_group`]). Every refusal is an [`ApiError`] naming the field
//! at fault.
//!
//! The reverse direction is not needed for flows: the daemon keeps the canonical message it
//! accepted next to each rule (see `switch/`), so reads return exactly what was written,
//! with counters. Only packet-in needs a match built from a datapath key ([`packet_in_match`]).
//!
//! Field mapping (API field -> datapath field, bits): `vlan_vid` is the low 13 bits of the
//! TCI (OpenFlow 1.3: 0x1000 marks "tagged"), `vlan_pcp` the top 3; `ip_dscp` the top 6 bits
//! of the TOS byte, `ip_ecn` the low 2; TCP/UDP/SCTP ports and ICMP type/code share the
//! transport source/destination words; ARP SPA/TPA share the IPv4 address words.
//!
//! Thread-safety: pure functions.

use datapath::actions::Action;
use datapath::flow::{Field as DpField, FlowKey, FlowMask, Subfield as DpSubfield};
use datapath::types::{GroupId, PortNo, TableId};
use proto::flow_text::{self, field_name};
use proto::v1::{self, Field, FieldMatch, Match, ReservedPort, action, port_ref};

use crate::error::{ApiError, quote};

pub use crate::convert_ins::convert_instructions;

/// Most actions in one action list, and in all of a group's buckets together: what one
/// 64 KiB OpenFlow message carries (an output action is 16 bytes), as Open vSwitch bounds
/// them ("input too big"). A flow with 100,000 outputs turned 10 packets into a million
/// frames.
pub const MAX_ACTIONS: usize = 4096;

// One table range for every client (`flowctl`'s parser uses the same constant) and the
// datapath: they must agree.
const _: () = assert!(flow_text::MAX_TABLE_ID == TableId::MAX.0 as u32);

/// Resolves port names to numbers (the bridge's current ports).
pub trait PortNames {
    /// The number of the port called `name`.
    fn number(&self, name: &str) -> Option<u32>;
}

impl<F: Fn(&str) -> Option<u32>> PortNames for F {
    fn number(&self, name: &str) -> Option<u32> {
        self(name)
    }
}

/// Where an API field lives in the datapath key: `bits` bits at `shift` of `field`.
pub(crate) fn place(f: Field) -> Option<(DpField, u32)> {
    use DpField as D;
    Some(match f {
        Field::InPort => (D::InPort, 0),
        Field::EthSrc => (D::EthSrc, 0),
        Field::EthDst => (D::EthDst, 0),
        Field::EthType => (D::EthType, 0),
        Field::VlanVid => (D::VlanTci, 0),
        Field::VlanPcp => (D::VlanTci, 13),
        Field::VlanTci => (D::VlanTci, 0),
        Field::IpDscp => (D::IpTos, 2),
        Field::IpEcn => (D::IpTos, 0),
        Field::IpProto => (D::IpProto, 0),
        Field::IpTtl => (D::IpTtl, 0),
        Field::Ipv4Src | Field::ArpSpa => (D::Ipv4Src, 0),
        Field::Ipv4Dst | Field::ArpTpa => (D::Ipv4Dst, 0),
        Field::Ipv6Src => (D::Ipv6Src, 0),
        Field::Ipv6Dst => (D::Ipv6Dst, 0),
        Field::TcpSrc | Field::UdpSrc | Field::SctpSrc => (D::TpSrc, 0),
        Field::TcpDst | Field::UdpDst | Field::SctpDst => (D::TpDst, 0),
        Field::TcpFlags => (D::TcpFlags, 0),
        Field::Icmpv4Type | Field::Icmpv6Type => (D::TpSrc, 0),
        Field::Icmpv4Code | Field::Icmpv6Code => (D::TpDst, 0),
        Field::ArpOp => (D::ArpOp, 0),
        Field::ArpSha => (D::ArpSha, 0),
        Field::ArpTha => (D::ArpTha, 0),
        Field::TunId => (D::TunId, 0),
        Field::TunSrc => (D::TunSrc, 0),
        Field::TunDst => (D::TunDst, 0),
        Field::Metadata => (D::Metadata, 0),
        Field::Reg0 => (D::Reg(0), 0),
        Field::Reg1 => (D::Reg(1), 0),
        Field::Reg2 => (D::Reg(2), 0),
        Field::Reg3 => (D::Reg(3), 0),
        Field::Reg4 => (D::Reg(4), 0),
        Field::Reg5 => (D::Reg(5), 0),
        Field::Reg6 => (D::Reg(6), 0),
        Field::Reg7 => (D::Reg(7), 0),
        Field::MplsLabel => (D::MplsLabel, 0),
        Field::MplsTc => (D::MplsTc, 0),
        Field::MplsBos => (D::MplsBos, 0),
        Field::MplsTtl => (D::MplsTtl, 0),
        Field::Ipv6Label => (D::Ipv6Label, 0),
        Field::NdTarget => (D::NdTarget, 0),
        // A solicitation's source and an advertisement's target link-layer address share
        // the datapath's ArpSha (a packet has at most one of them).
        Field::NdSll | Field::NdTll => (D::ArpSha, 0),
        Field::IpFrag => (D::IpFrag, 0),
        Field::PktMark => (D::PktMark, 0),
        Field::TunFlags => (D::TunFlags, 0),
        Field::CtState => (D::CtState, 0),
        Field::CtZone => (D::CtZone, 0),
        Field::CtMark => (D::CtMark, 0),
        Field::CtLabel => (D::CtLabel, 0),
        Field::CtNwSrc => (D::CtNwSrc, 0),
        Field::CtNwDst => (D::CtNwDst, 0),
        Field::CtIpv6Src => (D::CtIpv6Src, 0),
        Field::CtIpv6Dst => (D::CtIpv6Dst, 0),
        Field::CtNwProto => (D::CtNwProto, 0),
        Field::CtTpSrc => (D::CtTpSrc, 0),
        Field::CtTpDst => (D::CtTpDst, 0),
        // Registers (Nicira extensions).
        Field::Reg8 => (D::Reg(8), 0),
        Field::Reg9 => (D::Reg(9), 0),
        Field::Reg10 => (D::Reg(10), 0),
        Field::Reg11 => (D::Reg(11), 0),
        Field::Reg12 => (D::Reg(12), 0),
        Field::Reg13 => (D::Reg(13), 0),
        Field::Reg14 => (D::Reg(14), 0),
        Field::Reg15 => (D::Reg(15), 0),
        Field::Xreg0 => (D::Xreg(0), 0),
        Field::Xreg1 => (D::Xreg(1), 0),
        Field::Xreg2 => (D::Xreg(2), 0),
        Field::Xreg3 => (D::Xreg(3), 0),
        Field::Xreg4 => (D::Xreg(4), 0),
        Field::Xreg5 => (D::Xreg(5), 0),
        Field::Xreg6 => (D::Xreg(6), 0),
        Field::Xreg7 => (D::Xreg(7), 0),
        Field::Xxreg0 => (D::Xxreg(0), 0),
        Field::Xxreg1 => (D::Xxreg(1), 0),
        Field::Xxreg2 => (D::Xxreg(2), 0),
        Field::Xxreg3 => (D::Xxreg(3), 0),
        Field::ActsetOutput => (D::ActsetOutput, 0),
        Field::ConjId => (D::ConjId, 0),
        Field::Unspecified => return None,
    })
}

pub(crate) fn be(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0u128, |acc, &b| (acc << 8) | b as u128)
}

pub(crate) fn width_mask(bytes: usize, f: Field) -> u128 {
    // The value bits the API field carries (vlan_vid: 13, vlan_pcp: 3, dscp: 6, ...).
    match f {
        Field::VlanVid => 0x1fff,
        Field::VlanPcp => 0x7,
        Field::IpDscp => 0x3f,
        Field::IpEcn => 0x3,
        Field::TcpFlags => 0xfff,
        Field::Icmpv4Type | Field::Icmpv6Type | Field::Icmpv4Code | Field::Icmpv6Code => 0xff,
        Field::MplsLabel | Field::Ipv6Label => 0xf_ffff,
        Field::MplsTc => 0x7,
        Field::MplsBos | Field::TunFlags => 0x1,
        Field::IpFrag => 0x3,
        _ if bytes >= 16 => u128::MAX,
        _ => (1u128 << (bytes * 8)) - 1,
    }
}

/// A validated, canonical match (port names resolved) and its datapath key and mask.
#[derive(Debug, Clone)]
pub struct DpMatch {
    /// The canonical message (what reads return).
    pub canonical: Match,
    /// Datapath key (masked).
    pub key: FlowKey,
    /// Datapath mask.
    pub mask: FlowMask,
}

/// Validates and converts a match. Errors name `match.<field>`.
pub fn convert_match(m: &Match, ports: &dyn PortNames) -> Result<DpMatch, ApiError> {
    let mut canonical = flow_text::check_match(m)
        .map_err(|e| ApiError::invalid(format!("match.{}", e.field), e.message))?;
    for fm in &mut canonical.fields {
        if !fm.port_name.is_empty() {
            let n = ports.number(&fm.port_name).ok_or_else(|| {
                ApiError::not_found(
                    "match.in_port",
                    format!("no port named {}", quote(&fm.port_name)),
                )
            })?;
            fm.value = n.to_be_bytes().to_vec();
            fm.port_name.clear();
        }
    }
    let mut key = FlowKey::ZERO;
    let mut mask = FlowKey::ZERO;
    for fm in &canonical.fields {
        let f = Field::try_from(fm.field)
            .map_err(|_| ApiError::invalid("match", format!("unknown field {}", fm.field)))?;
        let (df, shift) = place(f).ok_or_else(|| {
            ApiError::invalid(
                format!("match.{}", field_name(f)),
                "not supported by this datapath yet",
            )
        })?;
        let bits = width_mask(fm.value.len(), f);
        let mut v = be(&fm.value) & bits;
        if f == Field::ActsetOutput && v == u128::from(flow_text::OFPP_UNSET) {
            v = 0; // the datapath's "no output in the action set"
        }
        let mut mk = if fm.mask.is_empty() {
            bits
        } else {
            be(&fm.mask) & bits
        };
        if f == Field::VlanVid && fm.mask.is_empty() && v == 0 {
            // OFPVID_NONE: untagged, i.e. the whole TCI is zero.
            mk = 0xffff;
            v = 0;
        }
        if f == Field::VlanPcp {
            // A PCP match only makes sense on tagged frames: also require the CFI bit
            // unless vlan_vid already pins it.
            if !canonical
                .fields
                .iter()
                .any(|x| x.field == Field::VlanVid as i32)
            {
                key.set_masked(df, 0x1000, 0x1000);
                mask.set_masked(df, 0x1000, 0x1000);
            }
        }
        key.set_masked(df, v << shift, mk << shift);
        mask.set_masked(df, mk << shift, mk << shift);
    }
    Ok(DpMatch {
        canonical,
        key: key.masked(&mask),
        mask,
    })
}

pub(crate) fn port_of(
    r: Option<&v1::PortRef>,
    ports: &dyn PortNames,
    field: &str,
) -> Result<PortNo, ApiError> {
    let r = r
        .and_then(|r| r.port.as_ref())
        .ok_or_else(|| ApiError::invalid(field, "port is required"))?;
    Ok(match r {
        port_ref::Port::Number(n) => PortNo(*n),
        port_ref::Port::Name(name) => {
            PortNo(ports.number(name).ok_or_else(|| {
                ApiError::not_found(field, format!("no port named {}", quote(name)))
            })?)
        }
        port_ref::Port::Reserved(r) => match ReservedPort::try_from(*r) {
            Ok(ReservedPort::InPort) => PortNo::IN_PORT,
            Ok(ReservedPort::Table) => PortNo::TABLE,
            Ok(ReservedPort::Normal) => PortNo::NORMAL,
            Ok(ReservedPort::Flood) => PortNo::FLOOD,
            Ok(ReservedPort::All) => PortNo::ALL,
            Ok(ReservedPort::Controller) => PortNo::CONTROLLER,
            Ok(ReservedPort::Local) => PortNo::LOCAL,
            _ => {
                return Err(ApiError::invalid(
                    field,
                    format!("unknown reserved port {r}"),
                ));
            }
        },
    })
}

/// Resolves a port reference used as a filter (`out_port`); `None` for "any".
pub fn filter_port(
    r: Option<&v1::PortRef>,
    ports: &dyn PortNames,
) -> Result<Option<PortNo>, ApiError> {
    if r.and_then(|r| r.port.as_ref()).is_none() {
        return Ok(None);
    }
    let n = port_of(r, ports, "out_port")?;
    Ok((n != PortNo::ANY).then_some(n))
}

/// Where a list of actions runs: in a flow (with its match, for set-field prerequisites),
/// a group bucket, or a packet-out (which alone may output to TABLE).
#[derive(Debug, Clone, Copy)]
pub enum Context<'a> {
    /// A flow with this canonical match.
    Flow(&'a Match),
    /// A group bucket.
    Bucket,
    /// A packet-out.
    PacketOut,
}

/// Converts one action. `Ok(None)` is OFPP_TABLE in a packet-out (the caller handles it).
/// A set-field's prerequisites are [`convert_actions`]'s to check.
fn convert_action(
    a: &v1::Action,
    ports: &dyn PortNames,
    cx: Context<'_>,
) -> Result<Option<Action>, ApiError> {
    let a = a
        .action
        .as_ref()
        .ok_or_else(|| ApiError::invalid("", "empty action"))?;
    Ok(Some(match a {
        action::Action::Output(o) => {
            let n = port_of(o.port.as_ref(), ports, "output.port")?;
            match n {
                PortNo::IN_PORT => Action::InPort,
                PortNo::NORMAL => Action::Normal,
                PortNo::FLOOD => Action::Flood,
                PortNo::ALL => Action::All,
                PortNo::CONTROLLER => Action::Controller {
                    max_len: o
                        .max_len
                        .map_or(u16::MAX, |l| l.min(u16::MAX as u32) as u16),
                },
                PortNo::TABLE if matches!(cx, Context::PacketOut) => return Ok(None),
                PortNo::TABLE => {
                    return Err(ApiError::invalid(
                        "output.port",
                        "output to TABLE is only valid in a packet-out",
                    ));
                }
                // The bridge's local port; none exists until one is added (then this
                // output, like one to any absent port, drops the packet as NoSuchPort).
                PortNo::LOCAL => Action::Output(PortNo::LOCAL),
                // Port 0 is no port, as in Open vSwitch: nothing is sent.
                PortNo(0) => Action::Output(PortNo(0)),
                PortNo(n) if n > PortNo::MAX.0 => {
                    return Err(ApiError::invalid(
                        "output.port",
                        format!("port {n} is out of range (1..={})", PortNo::MAX.0),
                    ));
                }
                n => Action::Output(n),
            }
        }
        action::Action::Group(g) => Action::Group(GroupId(*g)),
        action::Action::SetField(sf) => {
            // In a flow, convert_actions has checked the prerequisites too, each against
            // the match as the actions before change it. Buckets and packet-outs have no
            // match: the datapath skips a rewrite the packet has no header for.
            flow_text::check_set_field_value(sf)
                .map_err(|e| ApiError::invalid(format!("set_field.{}", e.field), e.message))?;
            let f = Field::try_from(sf.field)
                .map_err(|_| ApiError::invalid("set_field.field", "unknown field"))?;
            let (df, shift) =
                place(f).ok_or_else(|| ApiError::invalid("set_field.field", "unspecified"))?;
            if df.is_read_only() {
                return Err(ApiError::invalid(
                    format!("set_field.{}", field_name(f)),
                    "this field cannot be set",
                ));
            }
            let bits = width_mask(sf.value.len(), f);
            let v = be(&sf.value) & bits;
            let mk = if sf.mask.is_empty() {
                bits
            } else {
                be(&sf.mask) & bits
            };
            // `vlan_vid` sets the VID only (the CFI bit stays as the tag has it).
            let (v, mk) = if f == Field::VlanVid {
                (v & 0xfff, mk & 0xfff)
            } else {
                (v, mk)
            };
            if mk << shift == df.full_mask() {
                Action::SetField {
                    field: df,
                    value: v << shift,
                }
            } else {
                Action::SetFieldMasked {
                    field: df,
                    value: v << shift,
                    mask: mk << shift,
                }
            }
        }
        action::Action::PushVlan(p) => {
            if p.ethertype != 0x8100 && p.ethertype != 0x88a8 {
                return Err(ApiError::invalid(
                    "push_vlan.ethertype",
                    format!("{:#06x} is not 0x8100 or 0x88a8", p.ethertype),
                ));
            }
            Action::PushVlan {
                tpid: p.ethertype as u16,
            }
        }
        action::Action::PopVlan(_) => Action::PopVlan,
        // The controller ids say where an INVALID_TTL packet-in would go; none is sent.
        action::Action::DecTtl(d) => {
            if d.controller_ids.iter().any(|&id| id > 0xffff) {
                return Err(ApiError::invalid(
                    "dec_ttl.controller_ids",
                    "controller ids are 0..=65535",
                ));
            }
            Action::DecTtl
        }
        action::Action::SetQueue(q) => Action::SetQueue(*q),
        action::Action::PopQueue(_) => Action::PopQueue,
        action::Action::Enqueue(e) => {
            let port = match port_of(e.port.as_ref(), ports, "enqueue.port")? {
                p @ (PortNo::IN_PORT | PortNo::LOCAL) => p,
                PortNo(n) if n == 0 || n > PortNo::MAX.0 => {
                    return Err(ApiError::invalid(
                        "enqueue.port",
                        format!("{n:#x} is not a port packets can be queued on"),
                    ));
                }
                p => p,
            };
            Action::Enqueue {
                port,
                queue: e.queue_id,
            }
        }
        action::Action::PushMpls(p) => Action::PushMpls {
            ethertype: mpls_ethertype(p.ethertype, "push_mpls.ethertype")?,
        },
        action::Action::PopMpls(p) => Action::PopMpls {
            ethertype: u16::try_from(p.ethertype)
                .map_err(|_| ApiError::invalid("pop_mpls.ethertype", "an ethertype is 16 bits"))?,
        },
        action::Action::DecMplsTtl(_) => Action::DecMplsTtl,
        action::Action::SetVlanVid(v) => {
            if v.vid > 0xfff {
                return Err(ApiError::invalid("set_vlan_vid.vid", "must be 0..=4095"));
            }
            Action::SetVlan {
                value: v.vid as u16,
                mask: 0x0fff,
                push: true,
            }
        }
        action::Action::Ct(c) if c.zone_src.is_some() && !matches!(cx, Context::Flow(_)) => {
            return Err(ApiError::invalid(
                "ct.zone_src",
                "a zone read from a field is read in a flow's actions only",
            ));
        }
        action::Action::Ct(c) => crate::convert_ct::ct_action(c)?,
        action::Action::CtClear(_) => Action::CtClear,
        action::Action::SetVlanPcp(v) => {
            if v.pcp > 7 {
                return Err(ApiError::invalid("set_vlan_pcp.pcp", "must be 0..=7"));
            }
            Action::SetVlan {
                value: (v.pcp as u16) << 13,
                mask: 0xe000,
                push: true,
            }
        }
        action::Action::Conjunction(c) => crate::convert_ins::conjunction(c, cx)?,
        action::Action::Controller(c) => crate::convert_ins::controller(c, cx)?,
        nx => return nicira_action(nx, ports, cx),
    }))
}

/// The Nicira extension actions: run by the flow table walk, so only in flows (notes are
/// left out before: nothing runs).
fn nicira_action(
    a: &action::Action,
    ports: &dyn PortNames,
    cx: Context<'_>,
) -> Result<Option<Action>, ApiError> {
    if !matches!(cx, Context::Flow(_)) {
        return Err(ApiError::invalid(
            "",
            "move, resubmit, exit, push, pop, multipath and output to a field run in a flow's actions only (not in group buckets or packet-outs here)",
        ));
    }
    flow_text::check_subfields(&v1::Action {
        action: Some(a.clone()),
    })
    .map_err(|e| ApiError::invalid(e.field, e.message))?;
    Ok(Some(match a {
        action::Action::Move(m) => Action::Move {
            src: subfield(m.src.as_ref(), "move.src")?,
            dst: subfield(m.dst.as_ref(), "move.dst")?,
        },
        action::Action::Resubmit(r) => {
            let in_port = match &r.in_port {
                None => None,
                Some(p) => Some(port_of(Some(p), ports, "resubmit.in_port")?),
            };
            let table = match r.table {
                None => None,
                Some(t) if t <= TableId::MAX.0 as u32 => Some(TableId(t as u8)),
                Some(t) => {
                    return Err(ApiError::invalid(
                        "resubmit.table",
                        format!("table {t} out of range 0..=253"),
                    ));
                }
            };
            Action::Resubmit { in_port, table }
        }
        action::Action::Exit(_) => Action::Exit,
        action::Action::Multipath(m) => {
            use datapath::actions::multipath::{Algorithm as A, HashFields as H};
            let fields = match v1::HashFields::try_from(m.fields) {
                Ok(v1::HashFields::EthSrc) => H::EthSrc,
                Ok(v1::HashFields::SymmetricL4) => H::SymmetricL4,
                Ok(v1::HashFields::SymmetricL3l4) => H::SymmetricL3l4,
                Ok(v1::HashFields::SymmetricL3l4Udp) => H::SymmetricL3l4Udp,
                Ok(v1::HashFields::NwSrc) => H::NwSrc,
                Ok(v1::HashFields::NwDst) => H::NwDst,
                Ok(v1::HashFields::SymmetricL3) => H::SymmetricL3,
                _ => {
                    return Err(ApiError::invalid(
                        "multipath.fields",
                        "unknown or unspecified",
                    ));
                }
            };
            let algorithm = match v1::MultipathAlgorithm::try_from(m.algorithm) {
                Ok(v1::MultipathAlgorithm::ModuloN) => A::ModuloN,
                Ok(v1::MultipathAlgorithm::HashThreshold) => A::HashThreshold,
                Ok(v1::MultipathAlgorithm::Hrw) => A::Hrw,
                Ok(v1::MultipathAlgorithm::IterHash) => A::IterHash,
                _ => {
                    return Err(ApiError::invalid(
                        "multipath.algorithm",
                        "unknown or unspecified",
                    ));
                }
            };
            Action::Multipath {
                fields,
                basis: m.basis as u16,
                algorithm,
                n_links: m.n_links,
                dst: subfield(m.dst.as_ref(), "multipath.dst")?,
            }
        }
        action::Action::OutputField(o) => {
            Action::OutputField(subfield(o.src.as_ref(), "output_field.src")?)
        }
        action::Action::StackPush(p) => {
            Action::StackPush(subfield(p.src.as_ref(), "stack_push.src")?)
        }
        action::Action::StackPop(p) => {
            let dst = subfield(p.dst.as_ref(), "stack_pop.dst")?;
            read_only(dst, "stack_pop.dst")?;
            Action::StackPop(dst)
        }
        _ => return Err(ApiError::invalid("", "not an action of this kind")),
    }))
}

/// Actions whose result depends on the packet's fields as the walk of the tables knows
/// them (see [`convert_list`]).
fn reads_after_pop(a: &v1::Action) -> bool {
    matches!(
        a.action,
        Some(
            action::Action::Move(_)
                | action::Action::StackPush(_)
                | action::Action::OutputField(_)
                | action::Action::Multipath(_)
                | action::Action::Resubmit(_)
                | action::Action::Clone(_)
        )
    )
}

/// An API subfield in datapath terms.
pub(crate) fn subfield(s: Option<&v1::Subfield>, at: &str) -> Result<DpSubfield, ApiError> {
    let s = s.ok_or_else(|| ApiError::invalid(at, "missing"))?;
    let f = Field::try_from(s.field).map_err(|_| ApiError::invalid(at, "unknown field"))?;
    let (df, shift) = place(f).ok_or_else(|| ApiError::invalid(at, "unspecified field"))?;
    let dst = at.ends_with("dst");
    let sf = DpSubfield::new(df, shift + s.offset, s.n_bits).ok_or_else(|| {
        ApiError::invalid(
            at,
            format!(
                "bits {}+{} are not inside {}",
                s.offset,
                s.n_bits,
                field_name(f)
            ),
        )
    })?;
    if dst {
        read_only(sf, at)?;
    }
    Ok(sf)
}

fn read_only(s: DpSubfield, at: &str) -> Result<(), ApiError> {
    if s.field.is_read_only() {
        return Err(ApiError::invalid(at, "this field cannot be written"));
    }
    Ok(())
}

/// An MPLS ethertype (0x8847 or 0x8848), or the refusal naming `field`.
fn mpls_ethertype(t: u32, field: &str) -> Result<u16, ApiError> {
    match t {
        0x8847 | 0x8848 => Ok(t as u16),
        _ => Err(ApiError::invalid(
            field,
            format!("{t:#06x} is not 0x8847 or 0x8848"),
        )),
    }
}

/// Converts an action list; errors name `actions[i]...`.
pub fn convert_actions(
    list: &[v1::Action],
    ports: &dyn PortNames,
    cx: Context<'_>,
) -> Result<(Vec<Action>, bool), ApiError> {
    if list.len() > MAX_ACTIONS {
        return Err(ApiError::invalid(
            "actions",
            format!(
                "{} actions; at most {MAX_ACTIONS} (what one OpenFlow message carries)",
                list.len()
            ),
        ));
    }
    if let Context::Flow(m) = cx {
        flow_text::check_actions(list, m).map_err(|(i, e)| {
            let at = match list.get(i).and_then(|a| a.action.as_ref()) {
                Some(action::Action::Ct(_)) => format!("actions[{i}].ct"),
                _ => format!("actions[{i}].set_field.{}", e.field),
            };
            ApiError::invalid(at, e.message)
        })?;
    }
    let mut out = Vec::with_capacity(list.len());
    let table = convert_list(list, ports, cx, &mut out)?;
    Ok((out, table))
}

/// [`convert_actions`] without the prerequisite check, into `out`; a clone is
/// `Action::Clone` followed by its actions.
fn convert_list(
    list: &[v1::Action],
    ports: &dyn PortNames,
    cx: Context<'_>,
    out: &mut Vec<Action>,
) -> Result<bool, ApiError> {
    let mut table = false;
    let mut popped = false;
    for (i, a) in list.iter().enumerate() {
        // A note is a comment: nothing runs.
        if matches!(a.action, Some(action::Action::Note(_))) {
            continue;
        }
        // The walk of the tables reads the headers under a popped MPLS label only when the
        // packet is looked up again: what reads fields or looks up cannot follow a pop.
        popped |= matches!(a.action, Some(action::Action::PopMpls(_)));
        if popped && reads_after_pop(a) {
            return Err(ApiError::invalid(
                format!("actions[{i}]"),
                "move, push, output to a field, multipath, resubmit and clone cannot follow pop_mpls in one flow here (the inner headers are read when the packet is looked up again: use goto_table)",
            ));
        }
        if let Some(action::Action::Clone(c)) = &a.action {
            let at = format!("actions[{i}].clone");
            if !matches!(cx, Context::Flow(_)) {
                return Err(ApiError::invalid(
                    at,
                    "clone runs in a flow's actions only here",
                ));
            }
            flow_text::check_subfields(a).map_err(|e| ApiError::invalid(&at, e.message))?;
            let start = out.len();
            out.push(Action::Clone { len: 0 });
            convert_list(&c.actions, ports, cx, out).map_err(|e| e.under(&at))?;
            let len = u16::try_from(out.len() - start - 1)
                .map_err(|_| ApiError::invalid(&at, "too many actions"))?;
            out[start] = Action::Clone { len };
            continue;
        }
        match convert_action(a, ports, cx).map_err(|e| e.under(&format!("actions[{i}]")))? {
            Some(a) => out.push(a),
            None => table = true,
        }
    }
    Ok(table)
}

/// The match a packet-in carries: the pipeline fields OpenFlow 1.3 puts there (in_port,
/// metadata, tunnel id and addresses, registers) when set.
pub fn packet_in_match(key: &FlowKey) -> Match {
    let mut fields = Vec::new();
    let mut put = |f: Field, v: u128, width: usize| {
        if v != 0 || f == Field::InPort {
            fields.push(FieldMatch {
                field: f as i32,
                value: v.to_be_bytes()[16 - width..].to_vec(),
                mask: Vec::new(),
                port_name: String::new(),
            });
        }
    };
    put(Field::InPort, key.get(DpField::InPort), 4);
    put(Field::TunId, key.get(DpField::TunId), 8);
    put(Field::TunSrc, key.get(DpField::TunSrc), 4);
    put(Field::TunDst, key.get(DpField::TunDst), 4);
    put(Field::Metadata, key.get(DpField::Metadata), 8);
    let regs = [
        Field::Reg0,
        Field::Reg1,
        Field::Reg2,
        Field::Reg3,
        Field::Reg4,
        Field::Reg5,
        Field::Reg6,
        Field::Reg7,
        Field::Reg8,
        Field::Reg9,
        Field::Reg10,
        Field::Reg11,
        Field::Reg12,
        Field::Reg13,
        Field::Reg14,
        Field::Reg15,
    ];
    for (i, f) in regs.into_iter().enumerate() {
        put(f, key.get(DpField::Reg(i as u8)), 4);
    }
    Match { fields }
}

/// The identity of a flow in its table: table, priority and masked match, as bytes (the
/// store key and the daemon's index). Compact: a bitmap of the key words the mask touches,
/// then (mask, value) for each of those words only.
pub fn flow_ident(table: TableId, priority: u16, key: &FlowKey, mask: &FlowMask) -> Vec<u8> {
    let mut used: u32 = 0;
    for (i, m) in mask.w.iter().enumerate() {
        if *m != 0 {
            used |= 1 << i;
        }
    }
    let mut out = Vec::with_capacity(7 + 16 * used.count_ones() as usize);
    out.push(table.0);
    out.extend_from_slice(&priority.to_be_bytes());
    out.extend_from_slice(&used.to_be_bytes());
    for (w, m) in key.w.iter().zip(mask.w.iter()) {
        if *m != 0 {
            out.extend_from_slice(&m.to_be_bytes());
            out.extend_from_slice(&(w & m).to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
