//! Meter text against Open vSwitch 3.1 itself: a private `ovs-vswitchd` (the dummy
//! datapath: no kernel devices, no root networking, files in a temporary directory) takes
//! each meter with `ovs-ofctl add-meter`, and what it reports with `dump-meters` must be
//! what `parse_meter` reads from the same text. Needs `openvswitch-switch`.

mod common;

use common::Ovs;
use proto::flow_text::parse_meter;
use proto::v1::Meter;

/// The meters of a `dump-meters` reply, each block read back with `parse_meter`.
fn dumped_meters(dump: &str) -> Vec<Meter> {
    let body = dump.split_once('\n').map_or("", |(_, rest)| rest);
    body.split("\n\n")
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| parse_meter(b).unwrap_or_else(|e| panic!("dump-meters block {b:?}: {e}")))
        .collect()
}

#[test]
fn band_and_bands_read_as_open_vswitch_reads_them() {
    let ovs = Ovs::start("meter");
    let accepted = [
        "meter=1,kbps,band=type=drop,rate=10000",
        "meter=2,kbps,bands=type=drop,rate=10000",
        "meter=3 pktps band=type=drop rate=100",
        "meter=4,kbps,burst,band=,type=drop,rate=5,burst_size=9",
        "meter=5,pktps,stats,band=type=drop,rate=7,type=drop,rate=70",
    ];
    for text in accepted {
        ovs.ok("ovs-ofctl", &["-O", "OpenFlow13", "add-meter", "br0", text]);
    }
    let mut theirs =
        dumped_meters(&ovs.ok("ovs-ofctl", &["-O", "OpenFlow13", "dump-meters", "br0"]));
    theirs.sort_by_key(|m| m.id);
    let ours: Vec<Meter> = accepted
        .iter()
        .map(|t| parse_meter(t).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect();
    assert_eq!(ours, theirs);

    // Refused by both: a band must start with its type and have a rate.
    for text in [
        "meter=6,kbps,band=rate=5",
        "meter=7,kbps,band=type=drop",
        "meter=8,kbps,band=type=drop,rate=1,color=red",
    ] {
        let out = ovs.run("ovs-ofctl", &["-O", "OpenFlow13", "add-meter", "br0", text]);
        assert!(!out.status.success(), "Open vSwitch took {text}");
        assert!(parse_meter(text).is_err(), "we took {text}");
    }
}
