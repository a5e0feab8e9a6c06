//! The OpenFlow codec: parsing and building a FLOW_MOD, reported as flow_mods per second
//! on one core. The flow is a typical controller flow:
//! `table=1,priority=10,tcp,in_port=1,nw_dst=10.0.0.0/24,tp_dst=80,
//!  actions=set_field:10.0.0.2->ip_dst,dec_ttl,output:2,goto_table:2`.
//! Parsing walks every OXM, instruction and action as the channel will.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proto::openflow::Version;
use proto::openflow::actions::{Action, Actions};
use proto::openflow::error::bad_match;
use proto::openflow::fields::Field;
use proto::openflow::flow::{Command, FlowMod};
use proto::openflow::ids::{BufferId, GroupId, PortNo, TableId};
use proto::openflow::instructions::{Instruction, Instructions};
use proto::openflow::list::Item;
use proto::openflow::message::{Message, emit, parse};
use proto::openflow::oxm::{Match, MatchBuilder, Oxm};
use proto::openflow::wire::Reader;
use std::hint::black_box;

/// Builds the benchmark flow_mod into `out`, reusing the scratch buffers.
fn build(out: &mut Vec<u8>, m: &mut Vec<u8>, a: &mut Vec<u8>, i: &mut Vec<u8>, xid: u32) {
    m.clear();
    a.clear();
    i.clear();
    let mut b = MatchBuilder::new(m);
    b.value(Field::InPort, 1)
        .value(Field::EthType, 0x0800)
        .value(Field::IpProto, 6)
        .value_masked(Field::Ipv4Dst, 0x0a00_0000, 0xffff_ff00)
        .value(Field::TcpDst, 80);
    b.finish();
    let ip = [10, 0, 0, 2];
    for act in [
        Action::SetField(Oxm::new(Field::Ipv4Dst, &ip)),
        Action::DecNwTtl,
        Action::Output {
            port: PortNo(2),
            max_len: 0,
        },
    ] {
        act.emit_item(a);
    }
    let acts = Actions::new_checked(a).expect("actions");
    Instruction::ApplyActions(acts).emit_item(i);
    Instruction::GotoTable(TableId(2)).emit_item(i);
    let mut r = Reader::new(m, bad_match::BAD_LEN);
    let fm = FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id: TableId(1),
        command: Command::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 10,
        buffer_id: BufferId::NO_BUFFER,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        flags: 0,
        importance: 0,
        match_: Match::parse(&mut r).expect("match"),
        instructions: Instructions::new_checked(i).expect("instructions"),
    };
    emit(Version::V1_3, xid, &fm, out).expect("fits");
}

/// Parses one flow_mod and touches everything in it; returns a checksum.
fn parse_and_walk(msg: &[u8]) -> u64 {
    let Ok((_, Message::FlowMod(fm))) = parse(msg) else {
        return 0;
    };
    let mut sum = u64::from(fm.priority);
    for o in fm.match_.iter() {
        sum = sum.wrapping_add(o.value_u128() as u64);
    }
    for ins in fm.instructions.iter() {
        if let Instruction::ApplyActions(acts) = ins {
            sum += acts.iter().count() as u64;
        }
    }
    sum
}

fn flow_mod(c: &mut Criterion) {
    let (mut m, mut a, mut i) = (Vec::new(), Vec::new(), Vec::new());
    let mut msg = Vec::new();
    build(&mut msg, &mut m, &mut a, &mut i, 1);
    let mut g = c.benchmark_group("openflow");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("flow_mod/parse/{}B", msg.len()), |b| {
        b.iter(|| black_box(parse_and_walk(black_box(&msg))))
    });
    let mut out = Vec::with_capacity(256);
    g.bench_function(format!("flow_mod/build/{}B", msg.len()), |b| {
        b.iter(|| {
            out.clear();
            build(&mut out, &mut m, &mut a, &mut i, black_box(7));
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, flow_mod);
criterion_main!(benches);
