//! Encoding of Nicira actions (the layouts are described with the parser in
//! [`super::nx_actions`]).

use super::error::NX_VENDOR_ID;
use super::list::Item;
use super::nx_actions::{NxAction, subtype};
use super::nx_ct::emit_nat;
use super::wire::Put;

impl NxAction<'_> {
    /// Writes the action from its type field on; the caller pads it and patches its length.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0xffff);
        out.put_u16(0);
        out.put_u32(NX_VENDOR_ID);
        out.put_u16(self.subtype());
        match *self {
            NxAction::Resubmit { in_port } => {
                out.put_u16(in_port);
                out.put_zeros(4);
            }
            NxAction::ResubmitTable { in_port, table, .. } => {
                out.put_u16(in_port);
                out.put_u8(table);
                out.put_zeros(3);
            }
            NxAction::SetTunnel(t) => {
                out.put_zeros(2);
                out.put_u32(t);
            }
            NxAction::SetTunnel64(t) => {
                out.put_zeros(6);
                out.put_u64(t);
            }
            NxAction::PopQueue | NxAction::Exit | NxAction::CtClear | NxAction::DecNshTtl => {
                out.put_zeros(6)
            }
            NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            } => {
                out.put_u16(ofs_nbits);
                out.put_u32(dst);
                out.put_u64(value);
            }
            NxAction::RegLoad2(ref o) => o.emit_item(out),
            NxAction::RegMove {
                n_bits,
                src_ofs,
                dst_ofs,
                src,
                dst,
            } => {
                out.put_u16(n_bits);
                out.put_u16(src_ofs);
                out.put_u16(dst_ofs);
                src.emit(out);
                dst.emit(out);
            }
            NxAction::Note(n) => out.extend_from_slice(n),
            NxAction::Multipath {
                fields,
                basis,
                algorithm,
                max_link,
                arg,
                ofs_nbits,
                dst,
            } => {
                out.put_u16(fields);
                out.put_u16(basis);
                out.put_zeros(2);
                out.put_u16(algorithm);
                out.put_u16(max_link);
                out.put_u32(arg);
                out.put_zeros(2);
                out.put_u16(ofs_nbits);
                out.put_u32(dst);
            }
            NxAction::Bundle {
                algorithm,
                fields,
                basis,
                member_type,
                ofs_nbits,
                dst,
                members,
                ..
            } => {
                out.put_u16(algorithm);
                out.put_u16(fields);
                out.put_u16(basis);
                out.put_u32(member_type);
                out.put_u16((members.len() / 2) as u16);
                out.put_u16(ofs_nbits);
                out.put_u32(dst);
                out.put_zeros(4);
                out.extend_from_slice(members);
            }
            NxAction::OutputReg {
                ofs_nbits,
                src,
                max_len,
            } => {
                out.put_u16(ofs_nbits);
                out.put_u32(src);
                out.put_u16(max_len);
                out.put_zeros(6);
            }
            NxAction::OutputReg2 {
                ofs_nbits,
                max_len,
                src,
            } => {
                out.put_u16(ofs_nbits);
                out.put_u16(max_len);
                src.emit(out);
                pad_to(out, start, 24);
            }
            NxAction::Learn(ref l) => l.emit_body(out),
            NxAction::DecTtlCntIds(ids) => {
                out.put_u16((ids.len() / 2) as u16);
                out.put_zeros(4);
                out.extend_from_slice(ids);
            }
            NxAction::FinTimeout {
                idle_timeout,
                hard_timeout,
            } => {
                out.put_u16(idle_timeout);
                out.put_u16(hard_timeout);
                out.put_zeros(2);
            }
            NxAction::Controller {
                max_len,
                controller_id,
                reason,
            } => {
                out.put_u16(max_len);
                out.put_u16(controller_id);
                out.put_u8(reason);
                out.put_u8(0);
            }
            NxAction::Controller2(props) => {
                out.put_zeros(6);
                props.emit(out);
            }
            NxAction::WriteMetadata { metadata, mask } => {
                out.put_zeros(6);
                out.put_u64(metadata);
                out.put_u64(mask);
            }
            NxAction::Stack {
                offset,
                field,
                n_bits,
                ..
            } => {
                out.put_u16(offset);
                field.emit(out);
                out.put_u16(n_bits);
                pad_to(out, start, 24);
            }
            NxAction::Sample(s) => {
                out.put_u16(s.probability);
                out.put_u32(s.collector_set_id);
                out.put_u32(s.obs_domain_id);
                out.put_u32(s.obs_point_id);
                if s.subtype != subtype::SAMPLE {
                    out.put_u16(s.sampling_port);
                    out.put_u8(s.direction);
                    out.put_zeros(5);
                }
            }
            NxAction::Conjunction {
                clause,
                n_clauses,
                id,
            } => {
                out.put_u8(clause);
                out.put_u8(n_clauses);
                out.put_u32(id);
            }
            NxAction::Ct(ref ct) => {
                out.put_u16(ct.flags);
                out.put_u32(ct.zone_src);
                out.put_u16(ct.zone);
                out.put_u8(ct.recirc_table);
                out.put_zeros(3);
                out.put_u16(ct.alg);
                ct.actions.emit(out);
            }
            NxAction::Nat(ref n) => emit_nat(n, out),
            NxAction::OutputTrunc { port, max_len } => {
                out.put_u16(port);
                out.put_u32(max_len);
            }
            NxAction::Clone(acts) => {
                out.put_zeros(6);
                acts.emit(out);
            }
            NxAction::CheckPktLarger {
                pkt_len,
                offset,
                dst,
            } => {
                out.put_u16(pkt_len);
                out.put_u16(offset);
                dst.emit(out);
                pad_to(out, start, 24);
            }
            NxAction::DeleteField(f) => {
                f.emit(out);
                pad_to(out, start, 24);
            }
        }
    }
}

fn pad_to(out: &mut Vec<u8>, start: usize, len: usize) {
    let n = (start + len).saturating_sub(out.len());
    out.put_zeros(n);
}
