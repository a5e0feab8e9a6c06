//! A pipelined FLOW_MOD stream from one OpenFlow 1.3 connection, for bench/README.md:
//!
//! ```sh
//! cargo run --release -p bench --example flowmod_stream -- unix:/path/br0.ofp 100000
//! cargo run --release -p bench --example flowmod_stream -- tcp:127.0.0.1:6653 100000
//! ```
//!
//! N distinct flows (`priority=1..100,ip,nw_src=10.A.B.C,nw_dst=192.168.X.0/24,
//! actions=output:1..4`, the flows of `bench/flow-install`) are encoded before the clock
//! starts, then written back to back with one BARRIER_REQUEST at the end; the clock stops at
//! the BARRIER_REPLY, which the switch sends once everything before it is applied. Prints
//! flow_mods per second, the errors received and the flow count an AGGREGATE request finds.
//! Works against any switch that listens (ours, Open vSwitch's `punix:`/`ptcp:`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use proto::flow_text::parse_flow;
use proto::ofapi::{instructions, matches};
use proto::openflow::flow::{Command, FlowMod};
use proto::openflow::header::{self, MsgType, Version};
use proto::openflow::hello::{Hello, VersionSet};
use proto::openflow::ids::{BufferId, GroupId, PortNo, TableId};
use proto::openflow::list::List;
use proto::openflow::message::{self, Message};
use proto::openflow::multipart::{MultipartReply, MultipartRequest, ReplyBody, RequestBody};
use proto::openflow::oxm::Match;
use proto::openflow::stats::FlowStatsRequest;
use proto::openflow::wire::Reader;

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

fn connect(target: &str) -> Box<dyn Conn> {
    if let Some(p) = target.strip_prefix("unix:") {
        Box::new(UnixStream::connect(p).unwrap_or_else(|e| panic!("{target}: {e}")))
    } else if let Some(a) = target.strip_prefix("tcp:") {
        let s = TcpStream::connect(a).unwrap_or_else(|e| panic!("{target}: {e}"));
        let _ = s.set_nodelay(true);
        Box::new(s)
    } else {
        panic!("target {target:?}: expected unix:PATH or tcp:IP:PORT");
    }
}

/// Reads one whole message.
fn read_msg(c: &mut dyn Conn, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Ok(Some(len)) = header::frame_len(buf) {
            return buf.drain(..len).collect();
        }
        let mut chunk = [0u8; 1 << 16];
        let n = c.read(&mut chunk).expect("read");
        assert!(n > 0, "the switch closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Appends the FLOW_MOD that adds flow `i` of the benchmark's set.
fn put_flow_mod(i: u32, out: &mut Vec<u8>) {
    let text = format!(
        "priority={},ip,nw_src=10.{}.{}.{},nw_dst=192.168.{}.0/24,actions=output:{}",
        1 + i % 100,
        (i / 65536) % 256,
        (i / 256) % 256,
        i % 256,
        i % 200,
        1 + i % 4
    );
    let f = parse_flow(&text).expect("benchmark flow");
    let mut m = Vec::new();
    matches::emit(f.r#match.as_ref().expect("match"), &mut m);
    let mut ins = Vec::new();
    instructions::emit(&f.instructions, &mut ins);
    let mut r = Reader::new(&m, proto::openflow::error::bad_match::BAD_LEN);
    let fm = FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id: TableId(0),
        command: Command::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: f.priority as u16,
        buffer_id: BufferId::NO_BUFFER,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        flags: 0,
        importance: 0,
        match_: Match::parse(&mut r).expect("match parses"),
        instructions: List::new_checked(&ins).expect("instructions parse"),
    };
    message::emit(Version::V1_3, i + 1000, &fm, out).expect("flow_mod fits");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .expect("usage: flowmod_stream unix:PATH|tcp:IP:PORT [N]");
    let n: u32 = args.next().map_or(100_000, |s| s.parse().expect("N"));
    let mut c = connect(&target);
    let mut buf = Vec::new();
    let mut hello = Vec::new();
    Hello::emit_ours(VersionSet::of(&[Version::V1_3]), 1, &mut hello).expect("hello");
    c.write_all(&hello).expect("hello");
    let theirs = read_msg(&mut *c, &mut buf);
    assert_eq!(
        theirs[1],
        MsgType::HELLO.0,
        "the switch did not start with HELLO"
    );

    let mut stream = Vec::with_capacity(n as usize * 96);
    for i in 0..n {
        put_flow_mod(i, &mut stream);
    }
    let barrier_xid = 7;
    Message::BarrierRequest
        .emit(Version::V1_3, barrier_xid, &mut stream)
        .expect("barrier");

    let t0 = Instant::now();
    c.write_all(&stream).expect("writing the stream");
    let mut errors = 0u64;
    loop {
        let m = read_msg(&mut *c, &mut buf);
        let xid = u32::from_be_bytes([m[4], m[5], m[6], m[7]]);
        match m[1] {
            t if t == MsgType::ERROR.0 => errors += 1,
            t if t == MsgType::BARRIER_REPLY.0 && xid == barrier_xid => break,
            _ => {}
        }
    }
    let secs = t0.elapsed().as_secs_f64();

    let req = MultipartRequest {
        flags: 0,
        body: RequestBody::Aggregate(FlowStatsRequest {
            table_id: TableId::ALL,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            cookie: 0,
            cookie_mask: 0,
            match_: Match::all(),
        }),
    };
    let mut out = Vec::new();
    Message::MultipartRequest(req)
        .emit(Version::V1_3, 9, &mut out)
        .expect("aggregate");
    c.write_all(&out).expect("aggregate");
    let flows = loop {
        let m = read_msg(&mut *c, &mut buf);
        if let Ok((
            _,
            Message::MultipartReply(MultipartReply {
                body: ReplyBody::Aggregate(a),
                ..
            }),
        )) = message::parse(&m)
        {
            break a.flow_count;
        }
    };
    println!(
        "flow_mods={n} seconds={secs:.3} rate={:.0} flow_mods/s errors={errors} flows_in_switch={flows}",
        f64::from(n) / secs
    );
}
