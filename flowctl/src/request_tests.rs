use super::*;
use clap::Parser;
use proto::v1::{FlowFilter, FlowModify};

fn prep(args: &[&str]) -> Result<Request> {
    let cli = Cli::try_parse_from(std::iter::once("flowctl").chain(args.iter().copied()))
        .expect("clap accepts the command line");
    prepare(&cli)
}

fn only_update(r: Request) -> (String, Update) {
    match r {
        Request::Write(w) => {
            assert_eq!(w.atomicity, Atomicity::AllOrNone as i32);
            assert_eq!(w.updates.len(), 1);
            (w.bridge, w.updates.into_iter().next().unwrap())
        }
        r => panic!("{r:?}"),
    }
}

fn entity_of(u: &Update) -> &entity::Entity {
    u.entity.as_ref().unwrap().entity.as_ref().unwrap()
}

#[test]
fn add_br_settings() {
    let Request::AddBridge(r) = prep(&["add-br", "br1"]).unwrap() else {
        panic!("add-br");
    };
    assert_eq!(
        (r.fail_mode, r.datapath_id),
        (FailMode::Standalone as i32, None)
    );
    let Request::AddBridge(r) =
        prep(&["add-br", "br1", "fail_mode=secure", "datapath_id=0x1f"]).unwrap()
    else {
        panic!("add-br");
    };
    assert_eq!(
        (r.fail_mode, r.datapath_id),
        (FailMode::Secure as i32, Some(0x1f))
    );
    let Request::AddBridge(r) =
        prep(&["add-br", "br1", "other_config:datapath-id=0000000000000010"]).unwrap()
    else {
        panic!("add-br");
    };
    assert_eq!(r.datapath_id, Some(16));
    assert!(prep(&["add-br", "br1", "fail_mode=open"]).is_err());
    assert!(prep(&["add-br", "br1", "datapath_id=x"]).is_err());
}

#[test]
fn add_flow_is_one_insert() {
    let (br, u) =
        only_update(prep(&["add-flow", "br0", "priority=7,in_port=p1,actions=output:2"]).unwrap());
    assert_eq!(br, "br0");
    assert_eq!(u.r#type, update::Type::Insert as i32);
    match entity_of(&u) {
        entity::Entity::Flow(f) => {
            assert_eq!(f.priority, 7);
            // Named ports stay names.
            assert_eq!(f.r#match.as_ref().unwrap().fields[0].port_name, "p1");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn bad_flow_is_a_parse_error_with_caret() {
    let e = prep(&["add-flow", "br0", "in_port=1,nw_dst=10.0.0.1,actions=drop"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[1], "in_port=1,nw_dst=10.0.0.1,actions=drop");
    let col = lines[2].find('^').unwrap();
    assert!(lines[1][col..].starts_with("nw_dst"), "{text}");
}

#[test]
fn del_flows_strict_and_empty() {
    let (_, u) = only_update(prep(&["--strict", "del-flows", "br0", "priority=5,ip"]).unwrap());
    assert_eq!(u.r#type, update::Type::Delete as i32);
    match entity_of(&u) {
        entity::Entity::FlowFilter(f) => {
            assert!(f.strict);
            assert_eq!(f.priority, Some(5));
        }
        e => panic!("{e:?}"),
    }
    let (_, u) = only_update(prep(&["del-flows", "br0"]).unwrap());
    match entity_of(&u) {
        entity::Entity::FlowFilter(f) => {
            assert!(!f.strict);
            assert_eq!(
                f,
                &FlowFilter {
                    r#match: Some(Default::default()),
                    ..FlowFilter::default()
                }
            );
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn mod_flows_sets_strict_in_the_filter() {
    let (_, u) = only_update(
        prep(&[
            "mod-flows",
            "br0",
            "--strict",
            "priority=9,in_port=1,actions=output:3",
        ])
        .unwrap(),
    );
    assert_eq!(u.r#type, update::Type::Modify as i32);
    match entity_of(&u) {
        entity::Entity::FlowModify(FlowModify {
            filter: Some(f),
            instructions,
            ..
        }) => {
            assert!(f.strict);
            assert_eq!(f.priority, Some(9));
            assert_eq!(instructions.len(), 1);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn dump_flows_reads_flows() {
    match prep(&["dump-flows", "br0", "table=1", "--no-stats"]).unwrap() {
        Request::DumpFlows { read, no_stats } => {
            assert!(no_stats);
            assert_eq!(read.bridge, "br0");
            match &read.filters[0].filter {
                Some(read_filter::Filter::Flows(f)) => assert_eq!(f.table_id, Some(1)),
                f => panic!("{f:?}"),
            }
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn meters() {
    let (_, u) =
        only_update(prep(&["add-meter", "br0", "meter=1,kbps,bands=type=drop,rate=1000"]).unwrap());
    assert_eq!(u.r#type, update::Type::Insert as i32);
    // `band=` as Open vSwitch (and most guides) write it: the same meter.
    let (_, band) =
        only_update(prep(&["add-meter", "br0", "meter=1,kbps,band=type=drop,rate=1000"]).unwrap());
    assert_eq!(band, u);
    let (_, u) =
        only_update(prep(&["mod-meter", "br0", "meter=1,kbps,bands=type=drop,rate=2000"]).unwrap());
    assert_eq!(u.r#type, update::Type::Modify as i32);
    for id in ["3", "meter=3", "0x3"] {
        let (_, u) = only_update(prep(&["del-meter", "br0", id]).unwrap());
        assert_eq!(u.r#type, update::Type::Delete as i32);
        match entity_of(&u) {
            entity::Entity::Meter(m) => assert_eq!(m.id, 3),
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(
        prep(&["del-meter", "br0", "group_id=3"])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!(prep(&["del-meter", "br0", "x"]).unwrap_err().exit_code(), 2);
    match prep(&["meter-stats", "br0", "meter=2"]).unwrap() {
        Request::MeterStats(r) => assert_eq!(r.meter_id, Some(2)),
        r => panic!("{r:?}"),
    }
    assert_eq!(
        prep(&["add-meter", "br0", "meter=1,bands=type=bogus"])
            .unwrap_err()
            .exit_code(),
        2
    );
}

#[test]
fn groups() {
    let (_, u) = only_update(
        prep(&[
            "add-group",
            "br0",
            "group_id=1,type=all,bucket=output:1,bucket=output:2",
        ])
        .unwrap(),
    );
    match entity_of(&u) {
        entity::Entity::Group(g) => assert_eq!(g.buckets.len(), 2),
        e => panic!("{e:?}"),
    }
    let (_, u) = only_update(prep(&["del-groups", "br0", "group_id=1"]).unwrap());
    assert_eq!(u.r#type, update::Type::Delete as i32);
    assert!(matches!(
        prep(&["del-groups", "br0"]).unwrap(),
        Request::DelAllGroups { .. }
    ));
}

#[test]
fn add_port_settings() {
    match prep(&[
        "add-port",
        "br0",
        "vx0",
        "type=vxlan",
        "remote_ip=192.0.2.1",
        "options:key=42",
        "ofport_request=10",
    ])
    .unwrap()
    {
        Request::AddPort(r) => {
            let p = r.port.unwrap();
            assert_eq!(p.name, "vx0");
            assert_eq!(p.r#type, "vxlan");
            assert_eq!(p.requested_ofport, Some(10));
            assert_eq!(p.options.len(), 2);
            assert_eq!(p.options["remote_ip"], "192.0.2.1");
            assert_eq!(p.options["key"], "42");
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(
        prep(&["add-port", "br0", "p", "novalue"])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!(
        prep(&["add-port", "br0", "p", "ofport_request=0"])
            .unwrap_err()
            .exit_code(),
        2
    );
}

#[test]
fn set_port_and_if_exists() {
    match prep(&["set-port", "br0", "p1", "n_rxq=2", "--remove", "old"]).unwrap() {
        Request::SetPort(r) => {
            assert_eq!(r.options["n_rxq"], "2");
            assert_eq!(r.remove, ["old"]);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(prep(&["set-port", "br0", "p1"]).unwrap_err().exit_code(), 2);
    match prep(&["--if-exists", "del-port", "br0", "p1"]).unwrap() {
        Request::DelPort(r) => assert!(r.if_exists),
        r => panic!("{r:?}"),
    }
    match prep(&["del-br", "br0"]).unwrap() {
        Request::DelBridge(r) => assert!(!r.if_exists),
        r => panic!("{r:?}"),
    }
}

#[test]
fn ports_by_number_name_or_reserved() {
    assert_eq!(port_arg("3").unwrap().port, Some(port_ref::Port::Number(3)));
    assert_eq!(
        port_arg("LOCAL").unwrap().port,
        Some(port_ref::Port::Reserved(ReservedPort::Local as i32))
    );
    assert_eq!(
        port_arg("vm1").unwrap().port,
        Some(port_ref::Port::Name("vm1".into()))
    );
    assert!(port_arg("0").is_err());
    assert!(port_arg("3x").is_err());
}

#[test]
fn packet_out() {
    match prep(&[
        "packet-out",
        "br0",
        "in_port=1",
        "actions=output:2",
        "ffffffffffff 020000000001 0800",
    ])
    .unwrap()
    {
        Request::PacketOut(p) => {
            assert_eq!(p.in_port.unwrap().port, Some(port_ref::Port::Number(1)));
            assert_eq!(p.actions.len(), 1);
            assert_eq!(p.data.len(), 14);
            assert_eq!(&p.data[12..], &[8, 0]);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(
        prep(&["packet-out", "br0", "in_port=1", "actions=output:2", "abc"])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!(
        prep(&["packet-out", "br0", "1", "actions=output:2", "abcd"])
            .unwrap_err()
            .exit_code(),
        2
    );
}

#[test]
fn add_flows_missing_file_is_usage_error() {
    let e = prep(&["add-flows", "br0", "/nonexistent/flows.txt"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn mod_port_words_are_ovs_ofctls() {
    for (word, config, mask) in [
        ("up", 0, 1),
        ("down", 1, 1),
        ("receive", 0, 4),
        ("no-receive", 4, 4),
        ("forward", 0, 0x20),
        ("no-forward", 0x20, 0x20),
        ("packet-in", 0, 0x40),
        ("no-packet-in", 0x40, 0x40),
    ] {
        match prep(&["mod-port", "br0", "p1", word]).unwrap() {
            Request::ModPort(r) => {
                assert_eq!(
                    (r.name.as_str(), r.config, r.mask),
                    ("p1", config, mask),
                    "{word}"
                );
            }
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(
        prep(&["mod-port", "br0", "p1", "flood"])
            .unwrap_err()
            .exit_code(),
        2
    );
}
