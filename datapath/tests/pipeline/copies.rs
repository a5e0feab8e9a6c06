//! How many copies one packet may make, and what is shed counted.

use super::*;

/// A bridge of `ports` ports whose packets may make at most `copies` copies each.
fn bounded(ports: usize, copies: usize) -> Bridge {
    let config = DatapathConfig {
        max_copies_per_packet: copies,
        pool_buffers: 1 << 16,
        ..DatapathConfig::default()
    };
    Bridge::with_config(&vec![None; ports], config)
}

/// Frames waiting on ports `from..=to`.
fn drained(br: &Bridge, from: u32, to: u32) -> u64 {
    (from..=to).map(|p| br.port(p).drain().len() as u64).sum()
}

/// One packet makes at most `max_copies_per_packet` copies in a pass, however it fans out
/// (a flow's outputs, an `all` group's buckets, a flood), and still takes its last output:
/// n packets leave as n * (bound + 1) frames, and every copy not made is counted.
#[test]
fn copies_per_packet_are_bounded_and_what_is_shed_is_counted() {
    for n in [1usize, 2, 31, 32, 33, 257] {
        let frames: Vec<_> = (0..n).map(|i| udp(1, 2, 1000 + i as u16)).collect();
        let n = n as u64;
        // A flow with 100 outputs: 99 copies wanted, 8 made.
        let mut br = bounded(3, 8);
        br.add(0, 1, &[exact(Field::InPort, 1)], out(&[2; 100]));
        br.send(1, &frames);
        assert_eq!(drained(&br, 2, 2), n * 9, "burst of {n}");
        assert_eq!(br.drops(DropReason::CopiesOverLimit), n * 91);
        assert_eq!(br.drops(DropReason::NoBuffer), 0);

        // An `all` group of 100 buckets: a bucket's copy is the copy.
        let mut br = bounded(3, 8);
        br.dp
            .set_group(Group {
                id: GroupId(1),
                kind: GroupKind::All,
                selection: Selection::Default,
                buckets: vec![Bucket::new(1, vec![Action::Output(PortNo(2))]); 100],
            })
            .unwrap();
        br.add(
            0,
            1,
            &[exact(Field::InPort, 1)],
            Instructions::actions(vec![Action::Group(GroupId(1))]),
        );
        br.send(1, &frames);
        assert_eq!(drained(&br, 2, 2), n * 9, "group, burst of {n}");
        assert_eq!(br.drops(DropReason::CopiesOverLimit), n * 91);
        let g = br.dp.group_counts(GroupId(1)).unwrap();
        assert_eq!(g.packets, n);
        assert_eq!(g.buckets.iter().map(|b| b.0).sum::<u64>(), n * 9);

        // A flood over 11 other ports: 10 copies wanted, 4 made.
        let mut br = bounded(12, 4);
        br.add(
            0,
            1,
            &[exact(Field::InPort, 1)],
            Instructions::actions(vec![Action::Flood]),
        );
        br.send(1, &frames);
        assert_eq!(drained(&br, 2, 12), n * 5, "flood, burst of {n}");
        assert_eq!(br.drops(DropReason::CopiesOverLimit), n * 6);
    }
}

/// The default bound sheds nothing a flow can ask for on its own (4,096 actions), and a
/// bucket's own copies count against the packet it copies (a group of buckets that each
/// output twice).
#[test]
fn the_default_bound_and_copies_made_inside_buckets() {
    let mut br = bounded(3, datapath::pipeline::MAX_COPIES_PER_PACKET);
    br.add(0, 1, &[exact(Field::InPort, 1)], out(&[2; 4000]));
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(drained(&br, 2, 2), 4000);
    assert_eq!(br.drops(DropReason::CopiesOverLimit), 0);

    // 10 buckets, each to ports 2 and 3, and 7 copies: buckets 0 to 2 make two each (the
    // bucket's copy and one inside it); bucket 3's copy is the 7th, so the copy inside it
    // is shed and its last output takes it; buckets 4 to 8 are shed; bucket 9 takes the
    // packet itself, whose copy inside is shed too. 8 frames, 7 copies shed.
    let mut br = bounded(3, 7);
    br.dp
        .set_group(Group {
            id: GroupId(1),
            kind: GroupKind::All,
            selection: Selection::Default,
            buckets: vec![
                Bucket::new(
                    1,
                    vec![Action::Output(PortNo(2)), Action::Output(PortNo(3))]
                );
                10
            ],
        })
        .unwrap();
    br.add(
        0,
        1,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![Action::Group(GroupId(1))]),
    );
    br.send(1, &[udp(1, 2, 1)]);
    let (two, three) = (drained(&br, 2, 2), drained(&br, 3, 3));
    assert_eq!(two + three, 8, "to port 2: {two}, to port 3: {three}");
    assert_eq!(br.drops(DropReason::CopiesOverLimit), 1 + 5 + 1);
}

/// `resubmit` fan-out: 64 resubmits of a 1,000-output flow would compile to 64,000
/// outputs; the walk stops once past 8,192 operations (9 resubmits, 9,000 outputs) and
/// the packet's copies are bounded at run time.
#[test]
fn resubmit_fan_out_is_bounded_in_the_walk_and_in_copies() {
    let mut br = bounded(3, 1000);
    let resubmit = Action::Resubmit {
        in_port: None,
        table: Some(TableId(1)),
    };
    br.add(
        0,
        1,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![resubmit; 64]),
    );
    br.add(1, 1, &[], out(&[2; 1000]));
    let mut key = FlowKey::ZERO;
    extract(&udp(1, 2, 1), PortNo(1), &mut key).unwrap();
    let (t, _) = datapath::pipeline::translate(&br.dp.snapshot().pipeline, &key);
    assert_eq!(t.ops.len(), 9000);
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(drained(&br, 2, 2), 1001);
    assert_eq!(br.drops(DropReason::CopiesOverLimit), 8999 - 1000);
}
