//! Meters and groups.

use super::*;

#[test]
fn meters() {
    let m =
        parse_meter("meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000").unwrap();
    assert_eq!(m.id, 1);
    assert_eq!(m.unit, MeterUnit::Kbps as i32);
    assert!(m.burst && m.stats);
    assert_eq!(
        m.bands,
        vec![Band {
            r#type: BandType::Drop as i32,
            rate: 10000,
            burst_size: 2000,
            prec_level: 0
        }]
    );
    assert_eq!(
        format_meter(&m),
        "meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000"
    );
    assert_eq!(parse_meter(&format_meter(&m)).unwrap(), m);

    let m =
        parse_meter("meter=7,pktps,bands=type=drop,rate=100,type=dscp_remark,rate=50,prec_level=1")
            .unwrap();
    assert_eq!(m.bands.len(), 2);
    assert_eq!(m.unit, MeterUnit::Pktps as i32);
    assert_eq!(parse_meter(&format_meter(&m)).unwrap(), m);
    // dump-meters layout (spaces, newline).
    let m2 = parse_meter(
        "meter=7 pktps bands=\ntype=drop rate=100\ntype=dscp_remark rate=50 prec_level=1",
    )
    .unwrap();
    assert_eq!(m2, m);
    // `band=` as Open vSwitch reads it (and most guides write it), in each layout.
    for (band, bands) in [
        (
            "meter=1,kbps,band=type=drop,rate=10000",
            "meter=1,kbps,bands=type=drop,rate=10000",
        ),
        (
            "meter=7 pktps band=type=drop rate=100 type=dscp_remark rate=50 prec_level=1",
            "meter=7 pktps bands=type=drop rate=100 type=dscp_remark rate=50 prec_level=1",
        ),
        (
            "meter=3,kbps,burst,band=,type=drop,rate=5,burst_size=9",
            "meter=3,kbps,burst,bands=,type=drop,rate=5,burst_size=9",
        ),
    ] {
        let m = parse_meter(band).unwrap_or_else(|e| panic!("{band}: {e}"));
        assert_eq!(m, parse_meter(bands).unwrap(), "{band}");
        assert_eq!(parse_meter(&format_meter(&m)).unwrap(), m);
    }
    // Default unit.
    assert_eq!(
        parse_meter("meter=2,bands=type=drop,rate=1").unwrap().unit,
        MeterUnit::Kbps as i32
    );

    for (input, offset, token) in [
        ("meter=0,bands=type=drop,rate=1", 6, "0"),
        ("meter=1,kbps,pktps,bands=type=drop,rate=1", 13, "pktps"),
        ("meter=1,bands=type=police,rate=1", 19, "police"),
        ("meter=1,bands=type=drop", 14, "type=drop"),
        ("meter=1,bands=type=drop,rate=1,color=red", 31, "color=red"),
        (
            "meter=1,bands=type=drop,rate=1,prec_level=2",
            14,
            "type=drop",
        ),
        ("meter=1,kbps", 12, ""),
        ("meter=1,fast,bands=type=drop,rate=1", 8, "fast"),
        ("meter=1,band=type=drop", 13, "type=drop"),
        ("meter=1,band=rate=5", 13, "rate=5"),
        ("meter=1,band", 8, "band"),
        ("meter=1,kbps,band=", 13, "band="),
    ] {
        let e = parse_meter(input).unwrap_err();
        assert_eq!(
            (e.offset, e.token.as_str()),
            (offset, token),
            "{input}: {e}"
        );
    }
}

#[test]
fn groups() {
    let g = parse_group("group_id=1,type=select,bucket=weight:10,actions=output:1,bucket=weight:20,output:2,mod_vlan_vid:5").unwrap();
    assert_eq!(g.id, 1);
    assert_eq!(g.r#type, GroupType::Select as i32);
    assert_eq!(g.buckets.len(), 2);
    assert_eq!(g.buckets[0].weight, 10);
    assert_eq!(g.buckets[0].actions, vec![out_n(1)]);
    assert_eq!(g.buckets[1].actions.len(), 2);
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);
    assert_eq!(
        format_group(&g),
        "group_id=1,type=select,bucket=bucket_id:0,weight:10,actions=output:1,bucket=bucket_id:1,weight:20,actions=output:2,mod_vlan_vid:5"
    );
    // Open vSwitch's spellings: parameters after the actions, `=` for `:`, given ids kept
    // and the others the lowest free ones, a selection method with its fields.
    let g = parse_group("group_id=6,type=select,selection_method=hash,fields(ip_dst=255.255.255.0,nw_proto,tcp_src),bucket=output:10,weight=2000,bucket=bucket_id=0,watch_port:11,output:11").unwrap();
    assert_eq!(
        format_group(&g),
        "group_id=6,type=select,selection_method=hash,fields(ip_dst=255.255.255.0,nw_proto,tcp_src),bucket=bucket_id:1,weight:2000,actions=output:10,bucket=bucket_id:0,watch_port:11,actions=output:11"
    );
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);

    let g = parse_group("group_id=2,type=all,bucket=output:1,bucket=output:2,bucket=actions=drop")
        .unwrap();
    assert_eq!(g.buckets[2].actions, vec![]);
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);

    let g = parse_group("group_id=3,type=ff,bucket=watch_port:1,output:1,bucket=watch_port:eth2,watch_group:9,output:eth2").unwrap();
    assert_eq!(g.r#type, GroupType::FastFailover as i32);
    assert_eq!(g.buckets[1].watch_group, Some(9));
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);

    let g = parse_group("group_id=4,type=indirect,bucket=actions=set_field:0x1->reg0,output:1")
        .unwrap();
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);
    // Select buckets default to weight 1.
    let g = parse_group("group_id=5,type=select,bucket=output:1").unwrap();
    assert_eq!(g.buckets[0].weight, 1);

    for (input, offset, token) in [
        ("type=all,bucket=output:1", 0, ""),
        ("group_id=1,type=any", 16, "any"),
        (
            "group_id=1,type=all,bucket=weight:5,output:1",
            20,
            "bucket=weight:5",
        ),
        (
            "group_id=1,type=select,fields(eth_dst),bucket=output:1",
            23,
            "fields(eth_dst)",
        ),
        (
            "group_id=1,type=select,selection_method_param=1,bucket=output:1",
            23,
            "selection_method_param=1",
        ),
        ("group_id=1,type=ff,bucket=output:1", 19, "bucket=output:1"),
        (
            "group_id=1,type=indirect,bucket=output:1,bucket=output:2",
            11,
            "type=indirect",
        ),
        (
            "group_id=1,type=all,bucket=goto_table:1",
            27,
            "goto_table:1",
        ),
        ("group_id=1,type=all,bucket=output:1,bogus!", 36, "bogus!"),
        ("group_id=1,type=all,bucket=mod_tp_dst:80", 27, "mod_tp_dst"),
    ] {
        let e = parse_group(input).unwrap_err();
        assert_eq!(
            (e.offset, e.token.as_str()),
            (offset, token),
            "{input}: {e}"
        );
    }
}
