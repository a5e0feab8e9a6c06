use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn mac(n: u64) -> MacAddr {
    MacAddr::from_u64(0x0200_0000_0000 | n)
}

#[test]
fn learn_lookup_move_age() {
    let t = MacTable::new(64);
    t.set_aging_s(10);
    assert_eq!(t.learn(VlanId(1), mac(1), PortNo(3), 100), Learned::New);
    assert_eq!(t.lookup(VlanId(1), mac(1), 100), Some(PortNo(3)));
    assert_eq!(t.lookup(VlanId(2), mac(1), 100), None, "per VLAN");
    assert_eq!(
        t.learn(VlanId(1), mac(1), PortNo(3), 100),
        Learned::Unchanged
    );
    assert_eq!(
        t.learn(VlanId(1), mac(1), PortNo(3), 105),
        Learned::Refreshed
    );
    assert_eq!(
        t.learn(VlanId(1), mac(1), PortNo(4), 106),
        Learned::Moved { from: PortNo(3) }
    );
    assert_eq!(t.lookup(VlanId(1), mac(1), 115), Some(PortNo(4)));
    assert_eq!(t.lookup(VlanId(1), mac(1), 116), None, "aged");
    let mut aged = Vec::new();
    assert_eq!(t.sweep(116, |e| aged.push(e)), 1);
    assert_eq!(aged[0].mac, mac(1));
    assert_eq!(t.len(), 0);
    assert_eq!(
        t.learn(VlanId(1), MacAddr::BROADCAST, PortNo(1), 1),
        Learned::Ignored
    );
}

#[test]
fn flush_port() {
    let t = MacTable::new(64);
    t.learn(VlanId(0), mac(1), PortNo(1), 0);
    t.learn(VlanId(0), mac(2), PortNo(2), 0);
    t.flush_port(PortNo(1));
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(VlanId(0), mac(1), 0), None);
    assert_eq!(t.entries(0).len(), 1);
}

#[test]
fn mac_flood_never_grows_the_table() {
    let t = MacTable::new(4096);
    let cap = t.capacity();
    for i in 0..1_000_000u64 {
        t.learn(
            VlanId(0),
            mac(i * 2 + 0x100000),
            PortNo(1),
            (i / 1000) as u32,
        );
        // A busy station keeps refreshing and so survives the flood.
        if i % 100 == 0 {
            t.learn(VlanId(0), mac(1), PortNo(2), (i / 1000) as u32);
        }
    }
    assert!(t.len() <= cap, "{} > {cap}", t.len());
    assert!(t.evicted.load(Ordering::Relaxed) > 900_000);
    assert_eq!(t.lookup(VlanId(0), mac(1), 999), Some(PortNo(2)));
}

#[test]
fn concurrent_readers_never_see_a_foreign_port() {
    let t = std::sync::Arc::new(MacTable::new(256));
    let threads: Vec<_> = (0..3)
        .map(|th| {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..200_000u64 {
                    let m = i % 512;
                    // MAC m is only ever learned on port m % 7 + 1 or m % 7 + 2.
                    let port = PortNo((m % 7) as u32 + 1 + ((i / 512 + th) % 2) as u32);
                    t.learn(VlanId(0), mac(m), port, (i / 10_000) as u32);
                    if let Some(p) = t.lookup(VlanId(0), mac((m * 31) % 512), (i / 10_000) as u32) {
                        let mm = (m * 31) % 512;
                        assert!(
                            p.0 == (mm % 7) as u32 + 1 || p.0 == (mm % 7) as u32 + 2,
                            "mac {mm} on {p:?}"
                        );
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert!(t.len() <= t.capacity());
    // Clocks in this test run to 20 s, well inside the aging time: every entry is live.
    let mut seen = std::collections::HashSet::new();
    for e in t.entries(20) {
        assert!(seen.insert((e.vlan, e.mac)), "{} stored twice", e.mac);
    }
    assert_eq!(
        t.len(),
        seen.len(),
        "len counts exactly the entries present"
    );
}

#[test]
fn vlan_modes() {
    let access = VlanMode::Access(VlanId(10));
    assert_eq!(ingress_vlan(&access, None), Some(VlanId(10)));
    assert_eq!(
        ingress_vlan(&access, Some(VlanId(0))),
        Some(VlanId(10)),
        "priority tag"
    );
    assert_eq!(ingress_vlan(&access, Some(VlanId(10))), None);
    assert_eq!(egress_tag(&access, VlanId(10)), Some(None));
    assert_eq!(egress_tag(&access, VlanId(11)), None);
    let mut allowed = VlanSet::default();
    allowed.insert(VlanId(10));
    let trunk = VlanMode::Trunk {
        allowed,
        native: None,
    };
    assert_eq!(ingress_vlan(&trunk, None), None);
    assert_eq!(ingress_vlan(&trunk, Some(VlanId(10))), Some(VlanId(10)));
    assert_eq!(ingress_vlan(&trunk, Some(VlanId(11))), None);
    assert_eq!(egress_tag(&trunk, VlanId(10)), Some(Some(VlanId(10))));
    let dflt = VlanMode::default();
    assert_eq!(ingress_vlan(&dflt, None), Some(VlanId(0)));
    assert_eq!(egress_tag(&dflt, VlanId(0)), Some(None));
}

proptest! {
    /// With room for everything, the table agrees with a HashMap.
    #[test]
    fn agrees_with_hashmap(ops in proptest::collection::vec((0u16..4, 0u64..200, 1u32..6), 1..500)) {
        let t = MacTable::new(1 << 16);
        let mut reference = HashMap::new();
        for (vlan, m, port) in ops {
            t.learn(VlanId(vlan), mac(m), PortNo(port), 0);
            reference.insert((vlan, m), port);
        }
        for vlan in 0..4 {
            for m in 0..200 {
                prop_assert_eq!(t.lookup(VlanId(vlan), mac(m), 0), reference.get(&(vlan, m)).map(|&p| PortNo(p)));
            }
        }
        prop_assert_eq!(t.len(), reference.len());
    }
}
