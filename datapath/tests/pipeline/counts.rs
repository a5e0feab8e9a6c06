//! Table and group counters at every burst size.

use super::*;

/// Table counts: every packet is a lookup in each table it reaches, matched or not, whether
/// the slow path or a cache answered it (OVS attributes cached hits back to the tables).
#[test]
fn table_lookups_and_matches_are_counted_at_every_burst_size() {
    for n in [1usize, 2, 31, 32, 33, 257] {
        let mut br = Bridge::new(2);
        let goto = Instructions {
            goto_table: Some(TableId(1)),
            ..Instructions::default()
        };
        br.add(0, 10, &[exact(Field::InPort, 1)], goto);
        br.add(1, 10, &[exact(Field::TpSrc, 1)], out(&[2]));
        // Even packets match in table 1 (source port 1), odd ones miss there.
        let frames: Vec<_> = (0..n).map(|i| udp(1, 2, 1 + (i % 2) as u16)).collect();
        let hits = n.div_ceil(2) as u64;
        for round in 1..=2u64 {
            // The second round is answered by the caches.
            br.send(1, &frames);
            assert_eq!(br.port(2).drain().len() as u64, hits, "burst size {n}");
            let t = br.dp.table_counts();
            let n = n as u64;
            assert_eq!(
                (t[0].lookup, t[0].matched),
                (round * n, round * n),
                "table 0, {n}"
            );
            assert_eq!(
                (t[1].lookup, t[1].matched),
                (round * n, round * hits),
                "table 1, burst size {n}"
            );
            assert_eq!(t[2].lookup, 0);
            assert_eq!(br.drops(DropReason::TableMiss), round * (n - hits));
        }
        // Counts of a poll thread that stopped stay in the totals.
        let before = br.dp.table_counts();
        br.dp.remove_pmd(&br.counters);
        assert_eq!(br.dp.table_counts(), before);
    }
}

fn two_buckets(id: u32, kind: GroupKind) -> Group {
    Group {
        id: GroupId(id),
        kind,
        selection: Selection::Default,
        buckets: vec![
            Bucket::new(1, vec![Action::Output(PortNo(2))]),
            Bucket::new(1, vec![Action::Output(PortNo(3))]),
        ],
    }
}

/// Group counts: packets and bytes per group, and per bucket as each bucket saw them.
#[test]
fn group_packets_and_bytes_are_counted_at_every_burst_size() {
    for n in [1usize, 2, 31, 32, 33, 257] {
        let mut br = Bridge::new(4);
        br.dp.set_group(two_buckets(1, GroupKind::All)).unwrap();
        br.dp.set_group(two_buckets(2, GroupKind::Select)).unwrap();
        br.add(
            0,
            10,
            &[exact(Field::InPort, 1)],
            Instructions::actions(vec![Action::Group(GroupId(1))]),
        );
        br.add(
            0,
            10,
            &[exact(Field::InPort, 4)],
            Instructions::actions(vec![Action::Group(GroupId(2))]),
        );
        let frames: Vec<_> = (0..n).map(|i| udp(1, 2, i as u16)).collect();
        let len = frames[0].len() as u64;
        let n = n as u64;
        br.send(1, &frames);
        let all = br.dp.group_counts(GroupId(1)).unwrap();
        assert_eq!((all.packets, all.bytes), (n, n * len), "all group, {n}");
        assert_eq!(
            all.buckets,
            vec![(n, n * len); 2],
            "every bucket sees every packet"
        );
        assert_eq!(br.port(2).drain().len() as u64, n);
        assert_eq!(br.port(3).drain().len() as u64, n);
        br.send(4, &frames);
        let sel = br.dp.group_counts(GroupId(2)).unwrap();
        assert_eq!((sel.packets, sel.bytes), (n, n * len), "select group, {n}");
        let (b0, b1) = (sel.buckets[0], sel.buckets[1]);
        assert_eq!(b0.0 + b1.0, n, "each packet in one bucket");
        assert_eq!(b0.1 + b1.1, n * len);
        let out = (br.port(2).drain().len(), br.port(3).drain().len());
        assert_eq!(
            (out.0 as u64, out.1 as u64),
            (b0.0, b1.0),
            "buckets count what they sent"
        );
        assert_eq!(br.dp.group_counts(GroupId(9)), None);
    }
}

/// A modified group and a change in the number of poll threads keep the group's counts.
#[test]
fn group_counts_survive_a_modify_and_more_poll_threads() {
    let mut br = Bridge::new(4);
    br.dp.set_group(two_buckets(1, GroupKind::All)).unwrap();
    br.add(
        0,
        10,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![Action::Group(GroupId(1))]),
    );
    let frames: Vec<_> = (0..40).map(|i| udp(1, 2, i)).collect();
    br.send(1, &frames);
    let before = br.dp.group_counts(GroupId(1)).unwrap();
    assert_eq!(before.packets, 40);
    let mut g = two_buckets(1, GroupKind::All);
    g.buckets[1].actions = vec![Action::Output(PortNo(4))].into();
    br.dp.set_group(g).unwrap();
    assert_eq!(br.dp.group_counts(GroupId(1)).unwrap(), before);
    br.dp
        .transaction(|t| -> Result<(), ()> {
            t.set_pmd_count(2);
            Ok(())
        })
        .unwrap();
    assert_eq!(br.dp.group_counts(GroupId(1)).unwrap(), before);
    // A group that loses a bucket keeps its totals and the remaining bucket's counts.
    let mut g = two_buckets(1, GroupKind::All);
    g.buckets.pop();
    br.dp.set_group(g).unwrap();
    let after = br.dp.group_counts(GroupId(1)).unwrap();
    assert_eq!((after.packets, after.buckets.len()), (40, 1));
    assert_eq!(after.buckets[0], before.buckets[0]);
    br.send(1, &frames[..5]);
    assert_eq!(br.dp.group_counts(GroupId(1)).unwrap().packets, 45);
}
