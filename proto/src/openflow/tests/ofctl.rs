//! What `ovs-ofctl -O OpenFlow13` sends, captured live: a small switch built on this codec
//! listens on loopback, answers HELLO, FEATURES, multipart requests, barriers and bundles,
//! and records every message. Each captured message must decode, hold nothing opaque and
//! re-encode byte for byte; and ovs-ofctl must accept every reply (it exits non-zero when
//! it cannot decode one), which checks the codec's builders against Open vSwitch's parser.
//!
//! Needs `ovs-ofctl` (Debian package openvswitch-common, pulled in by openvswitch-switch).
//! With `OPENFLOW_SEEDS_DIR=dir` the captured messages are also written there (that is how
//! `fuzz/seeds/openflow/` was made).

use super::round_trip;
use crate::openflow::bundle::BundleControl;
use crate::openflow::fields::Field;
use crate::openflow::header::{MsgType, Version};
use crate::openflow::hello::{Hello, VersionSet};
use crate::openflow::ids::PortNo;
use crate::openflow::instructions::kind as it;
use crate::openflow::message::{Frames, Message, emit, parse};
use crate::openflow::multipart::{MultipartReply, ReplyBody, ReplyWriter, RequestBody, mp_type};
use crate::openflow::oxm::OxmId;
use crate::openflow::port::Port;
use crate::openflow::stats::{AggregateStats, Desc, GroupFeatures, MeterFeatures};
use crate::openflow::switch::{AsyncConfig, FeaturesReply, Role, SwitchConfig};
use crate::openflow::table_features::{TableFeaturesBuilder, TypeId};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const V: Version = Version::V1_3;

fn reply_to(msg: &[u8], cfg: &mut SwitchConfig, out: &mut Vec<u8>) {
    let Ok((h, m)) = parse(msg) else {
        return;
    };
    let x = h.xid;
    let r = match m {
        Message::Hello(_) => Ok(()),
        Message::EchoRequest(d) => Message::EchoReply(d).emit(V, x, out),
        Message::FeaturesRequest => emit(
            V,
            x,
            &FeaturesReply {
                datapath_id: 0x0000_0200_0000_0001,
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0x4f,
                reserved: 0,
            },
            out,
        ),
        Message::GetConfigRequest => Message::GetConfigReply(*cfg).emit(V, x, out),
        Message::SetConfig(c) => {
            *cfg = c;
            Ok(())
        }
        Message::BarrierRequest => Message::BarrierReply.emit(V, x, out),
        Message::RoleRequest(r) => Message::RoleReply(Role {
            role: r.role.max(1),
            ..r
        })
        .emit(V, x, out),
        Message::GetAsyncRequest => Message::GetAsyncReply(AsyncConfig::DEFAULT).emit(V, x, out),
        Message::BundleControl(b) => {
            Message::BundleControl(BundleControl::reply(&b)).emit(V, x, out)
        }
        Message::MultipartRequest(req) => multipart_reply(x, req.body, out),
        _ => Ok(()),
    };
    r.expect("reply fits");
}

fn multipart_reply(
    xid: u32,
    body: RequestBody<'_>,
    out: &mut Vec<u8>,
) -> Result<(), crate::openflow::OfpError> {
    let reply = |body| Message::MultipartReply(MultipartReply { flags: 0, body });
    match body {
        RequestBody::Desc => reply(ReplyBody::Desc(Desc {
            mfr_desc: b"vswitch",
            hw_desc: b"userspace",
            sw_desc: b"test",
            serial_num: b"1",
            dp_desc: b"br0",
        }))
        .emit(V, xid, out),
        RequestBody::PortDesc => {
            let mut w = ReplyWriter::new(out, V, xid, mp_type::PORT_DESC);
            w.push(&Port::new(PortNo(1), [2, 0, 0, 0, 0, 1], "p1"))?;
            w.push(&Port::new(PortNo(2), [2, 0, 0, 0, 0, 2], "p2"))?;
            w.push(&Port::new(PortNo::LOCAL, [2, 0, 0, 0, 0, 0], "br0"))?;
            w.finish().map(|_| ())
        }
        RequestBody::TableFeatures(_) => {
            let fields = [
                OxmId::of(Field::InPort),
                OxmId::of(Field::EthDst),
                OxmId::of(Field::Reg0),
            ];
            let acts = [TypeId::of(0), TypeId::of(25)];
            let next: Vec<u8> = (1..254).collect();
            let mut w = ReplyWriter::new(out, V, xid, mp_type::TABLE_FEATURES);
            for t in 0..4u8 {
                let b = TableFeaturesBuilder {
                    table_id: t,
                    name: "table",
                    metadata_match: u64::MAX,
                    metadata_write: u64::MAX,
                    max_entries: 1_000_000,
                    instructions: &[
                        it::GOTO_TABLE,
                        it::WRITE_METADATA,
                        it::WRITE_ACTIONS,
                        it::APPLY_ACTIONS,
                        it::CLEAR_ACTIONS,
                        it::METER,
                    ],
                    next_tables: &next[usize::from(t)..],
                    write_actions: &acts,
                    apply_actions: &acts,
                    match_fields: &fields,
                    wildcards: &fields,
                    write_setfield: &fields[1..],
                    apply_setfield: &fields[1..],
                };
                w.push_with(|o| b.emit(o))?;
            }
            w.finish().map(|_| ())
        }
        RequestBody::Aggregate(_) => {
            reply(ReplyBody::Aggregate(AggregateStats::default())).emit(V, xid, out)
        }
        RequestBody::GroupFeatures => reply(ReplyBody::GroupFeatures(GroupFeatures {
            types: 0xf,
            ..GroupFeatures::default()
        }))
        .emit(V, xid, out),
        RequestBody::MeterFeatures => reply(ReplyBody::MeterFeatures(MeterFeatures {
            max_meter: 100,
            band_types: 0x6,
            capabilities: 0xf,
            max_bands: 2,
            max_color: 0,
        }))
        .emit(V, xid, out),
        other => {
            // Every other statistic: an empty list of its type.
            ReplyWriter::new(out, V, xid, other.mp_type())
                .finish()
                .map(|_| ())
        }
    }
}

/// Runs `ovs-ofctl -O OpenFlow13 ARGS...` against a fresh listener (`{}` in an argument is
/// replaced by the target) and returns the messages it sent.
fn capture(args: &[&str]) -> Vec<Vec<u8>> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let target = format!("tcp:{}", listener.local_addr().expect("addr"));
    let args: Vec<String> = args.iter().map(|a| a.replace("{}", &target)).collect();
    let mut child = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--timeout=20"])
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running ovs-ofctl: {e}; install openvswitch-common"));
    let deadline = Instant::now() + Duration::from_secs(20);
    // ovs-ofctl opens one connection for the table names, one for the port names and one
    // for the command itself: serve them all until it exits.
    let mut conns: Vec<(TcpStream, Vec<u8>)> = Vec::new();
    let mut got = Vec::new();
    let mut cfg = SwitchConfig {
        flags: 0,
        miss_send_len: 128,
    };
    loop {
        assert!(Instant::now() < deadline, "ovs-ofctl {args:?} timed out");
        if let Ok((s, _)) = listener.accept() {
            s.set_read_timeout(Some(Duration::from_millis(5)))
                .expect("timeout");
            let mut hello = Vec::new();
            Hello::emit_ours(VersionSet::of(&[V]), 1, &mut hello).expect("hello");
            (&s).write_all(&hello).expect("send hello");
            conns.push((s, Vec::new()));
        }
        conns.retain_mut(|(s, buf)| serve(s, buf, &mut cfg, &mut got));
        if conns.is_empty() && child.try_wait().expect("wait").is_some() {
            break;
        }
    }
    let out = child.wait_with_output().expect("ovs-ofctl output");
    assert!(
        out.status.success(),
        "ovs-ofctl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(dir) = std::env::var_os("OPENFLOW_SEEDS_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("seeds dir");
        let tag: String = args
            .iter()
            .skip(1)
            .take(1)
            .flat_map(|a| a.chars())
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect();
        for (i, m) in got.iter().enumerate() {
            let name = format!("ofctl-{}-{tag}-{i:03}", args[0].trim_start_matches('-'));
            std::fs::write(dir.join(name), m).expect("write seed");
        }
    }
    got
}

/// Reads what is there, records and answers whole messages; false once the peer closed.
fn serve(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    cfg: &mut SwitchConfig,
    got: &mut Vec<Vec<u8>>,
) -> bool {
    let mut chunk = [0u8; 65536];
    let open = match s.read(&mut chunk) {
        Ok(0) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    let mut frames = Frames::new(buf);
    let mut out = Vec::new();
    for f in frames.by_ref() {
        let f = f.expect("ovs-ofctl framing");
        reply_to(f, cfg, &mut out);
        got.push(f.to_vec());
    }
    let used = buf.len() - frames.remainder().len();
    buf.drain(..used);
    open && (out.is_empty() || s.write_all(&out).is_ok())
}

fn types(msgs: &[Vec<u8>]) -> Vec<u8> {
    msgs.iter().map(|m| m[1]).collect()
}

fn all_round_trip(msgs: &[Vec<u8>]) {
    for m in msgs {
        assert_eq!(round_trip(m), Ok(Vec::new()), "{m:02x?}");
    }
}

fn flows_file(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("openflow-flows-{tag}-{}.txt", std::process::id()));
    std::fs::write(&p, include_str!("flows.txt")).expect("write flows");
    p
}

#[test]
fn add_flow_is_the_vector_the_unit_tests_use() {
    let msgs = capture(&["add-flow", "{}", "priority=100,in_port=1,actions=output:2"]);
    all_round_trip(&msgs);
    let fm = msgs
        .iter()
        .find(|m| m[1] == MsgType::FLOW_MOD.0)
        .expect("a flow_mod");
    let mut want = crate::openflow::flow::tests::ADD_FLOW.to_vec();
    want[4..8].copy_from_slice(&fm[4..8]);
    assert_eq!(*fm, want);
}

#[test]
fn add_flows_covers_the_extensions() {
    let file = flows_file("plain");
    let msgs = capture(&["add-flows", "{}", file.to_str().expect("utf-8")]);
    let _ = std::fs::remove_file(&file);
    all_round_trip(&msgs);
    let n = types(&msgs)
        .iter()
        .filter(|&&t| t == MsgType::FLOW_MOD.0)
        .count();
    assert_eq!(n, include_str!("flows.txt").lines().count());
}

#[test]
fn bundle_add_flows_uses_onf_bundles() {
    let file = flows_file("bundle");
    let msgs = capture(&["--bundle", "add-flows", "{}", file.to_str().expect("utf-8")]);
    let _ = std::fs::remove_file(&file);
    all_round_trip(&msgs);
    let adds = msgs
        .iter()
        .filter_map(|m| match parse(m) {
            Ok((_, Message::BundleAdd(a))) => Some(a.message.to_vec()),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(adds.len(), include_str!("flows.txt").lines().count());
    all_round_trip(&adds);
    let ctrl: Vec<u16> = msgs
        .iter()
        .filter_map(|m| match parse(m) {
            Ok((_, Message::BundleControl(c))) => Some(c.ctrl_type),
            _ => None,
        })
        .collect();
    assert!(
        ctrl.contains(&0) && ctrl.contains(&4),
        "open and commit: {ctrl:?}"
    );
}

#[test]
fn modifications_groups_meters_ports_and_packet_out() {
    let cases: &[&[&str]] = &[
        &["del-flows", "{}", "table=1,tcp"],
        &["--strict", "del-flows", "{}", "priority=100,in_port=1"],
        &["mod-flows", "{}", "in_port=1,actions=drop"],
        &[
            "--strict",
            "mod-flows",
            "{}",
            "priority=5,in_port=1,actions=output:2",
        ],
        &[
            "add-group",
            "{}",
            "group_id=1,type=select,bucket=weight:10,output:1,bucket=weight:20,output:2",
        ],
        &[
            "add-group",
            "{}",
            "group_id=2,type=ff,bucket=watch_port:1,output:1,bucket=watch_port:2,output:2",
        ],
        &[
            "add-group",
            "{}",
            "group_id=3,type=all,bucket=output:1,bucket=output:2",
        ],
        &[
            "add-group",
            "{}",
            "group_id=4,type=indirect,bucket=set_field:10.0.0.1->ip_dst,output:1",
        ],
        &["mod-group", "{}", "group_id=3,type=all,bucket=output:2"],
        &["del-groups", "{}", "group_id=3"],
        &[
            "add-meter",
            "{}",
            "meter=1,kbps,burst,stats,bands=type=drop,rate=1000,burst_size=100",
        ],
        &[
            "add-meter",
            "{}",
            "meter=2,pktps,bands=type=dscp_remark,rate=100,prec_level=1",
        ],
        &["del-meter", "{}", "meter=2"],
        &["mod-port", "{}", "p1", "down"],
        &["set-frags", "{}", "drop"],
        &[
            "packet-out",
            "{}",
            "in_port=controller packet=ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002 actions=output:1",
        ],
    ];
    for c in cases {
        let msgs = capture(c);
        all_round_trip(&msgs);
        assert!(msgs.len() >= 2, "{c:?} sent only {msgs:?}");
    }
}

#[test]
fn dumps_parse_our_replies() {
    let cases: &[&[&str]] = &[
        &["show", "{}"],
        &["dump-flows", "{}", "table=0"],
        &["dump-aggregate", "{}"],
        &["dump-ports", "{}"],
        &["dump-ports-desc", "{}"],
        &["dump-tables", "{}"],
        &["dump-table-features", "{}"],
        &["dump-groups", "{}"],
        &["dump-group-stats", "{}"],
        &["dump-group-features", "{}"],
        &["dump-meters", "{}"],
        &["meter-stats", "{}"],
        &["meter-features", "{}"],
        &["queue-stats", "{}"],
        &["get-frags", "{}"],
    ];
    for c in cases {
        let msgs = capture(c);
        all_round_trip(&msgs);
        assert!(
            types(&msgs)
                .iter()
                .any(|&t| t == MsgType::MULTIPART_REQUEST.0
                    || t == MsgType::FEATURES_REQUEST.0
                    || t == MsgType::GET_CONFIG_REQUEST.0),
            "{c:?}: {:?}",
            types(&msgs)
        );
    }
}
