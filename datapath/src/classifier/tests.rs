//! Classifier tests: flow-mod semantics, versioning, and agreement with a linear reference.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::actions::{Action, Instructions};
use crate::flow::Field;

fn m(fields: &[(Field, u128, u128)]) -> (FlowKey, FlowMask) {
    let mut k = FlowKey::ZERO;
    let mut mk = FlowKey::ZERO;
    for &(f, v, msk) in fields {
        k.set(f, v);
        mk.set(f, msk);
    }
    (k.masked(&mk), mk)
}

fn spec(
    table: u8,
    priority: u16,
    fields: &[(Field, u128, u128)],
    cookie: u64,
    out: u32,
) -> FlowSpec {
    let (key, mask) = m(fields);
    FlowSpec {
        table: TableId(table),
        priority,
        key,
        mask,
        cookie,
        idle_timeout_s: 0,
        hard_timeout_s: 0,
        send_flow_removed: false,
        instructions: Instructions::actions(vec![Action::Output(PortNo(out))]),
    }
}

fn add(p: &Pipeline, s: FlowSpec) -> Pipeline {
    p.apply(
        &[FlowMod::Add {
            spec: s,
            check_overlap: false,
        }],
        0,
    )
    .unwrap()
    .0
}

fn delete(
    table: Option<u8>,
    strict: bool,
    fields: &[(Field, u128, u128)],
    priority: u16,
    cookie: u64,
    cookie_mask: u64,
    out_port: Option<u32>,
) -> FlowMod {
    let (key, mask) = m(fields);
    FlowMod::Delete(Selector {
        table: table.map(TableId),
        strict,
        key,
        mask,
        priority,
        cookie,
        cookie_mask,
        out_port: out_port.map(PortNo),
        out_group: None,
    })
}

const IP: (Field, u128, u128) = (Field::EthType, 0x0800, 0xffff);

fn pkt(dst: u32) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::EthType, 0x0800);
    k.set(Field::Ipv4Dst, dst as u128);
    k
}

fn out_of(r: Option<&Arc<Rule>>) -> Option<u32> {
    r.and_then(|r| match r.spec.instructions.apply.first() {
        Some(Action::Output(p)) => Some(p.0),
        _ => None,
    })
}

#[test]
fn highest_priority_wins_and_prefixes_work() {
    let mut p = Pipeline::new();
    p = add(
        &p,
        spec(
            0,
            10,
            &[IP, (Field::Ipv4Dst, 0x0a00_0000, 0xff00_0000)],
            0,
            1,
        ),
    );
    p = add(
        &p,
        spec(
            0,
            20,
            &[IP, (Field::Ipv4Dst, 0x0a01_0000, 0xffff_0000)],
            0,
            2,
        ),
    );
    p = add(&p, spec(0, 0, &[], 0, 3));
    let t = p.table(TableId(0));
    let mut wc = FlowMask::ZERO;
    assert_eq!(out_of(t.lookup(&pkt(0x0a01_0203), &mut wc)), Some(2));
    assert_eq!(out_of(t.lookup(&pkt(0x0a02_0203), &mut wc)), Some(1));
    assert_eq!(out_of(t.lookup(&pkt(0x0b00_0001), &mut wc)), Some(3));
    assert_eq!(p.rule_count(), 3);
    assert_eq!(t.n_masks(), 3);
}

#[test]
fn add_identical_replaces_and_check_overlap_refuses() {
    let p = add(&Pipeline::new(), spec(0, 10, &[IP], 1, 1));
    let (p2, cs) = p
        .apply(
            &[FlowMod::Add {
                spec: spec(0, 10, &[IP], 2, 2),
                check_overlap: false,
            }],
            5,
        )
        .unwrap();
    assert_eq!(p2.rule_count(), 1);
    assert_eq!(cs.removed.len(), 1);
    assert_eq!(cs.removed[0].1, RemovedReason::Replaced);
    assert_eq!(p2.rules(None).next().unwrap().spec.cookie, 2);
    // Same priority, overlapping (more specific) match: refused with check_overlap.
    let err = p2
        .apply(
            &[FlowMod::Add {
                spec: spec(0, 10, &[IP, (Field::Ipv4Dst, 1, u32::MAX as u128)], 3, 3),
                check_overlap: true,
            }],
            0,
        )
        .unwrap_err();
    assert_eq!(
        err,
        BundleError {
            index: 0,
            error: FlowModError::Overlap { cookie: 2 }
        }
    );
    // Different priority: fine.
    assert!(
        p2.apply(
            &[FlowMod::Add {
                spec: spec(0, 11, &[IP, (Field::Ipv4Dst, 1, u32::MAX as u128)], 3, 3),
                check_overlap: true
            }],
            0
        )
        .is_ok()
    );
}

#[test]
fn strict_and_non_strict_delete_with_cookies_and_out_port() {
    let mut p = Pipeline::new();
    p = add(&p, spec(0, 10, &[IP], 0x11, 1));
    p = add(
        &p,
        spec(0, 20, &[IP, (Field::Ipv4Dst, 1, u32::MAX as u128)], 0x12, 2),
    );
    p = add(
        &p,
        spec(1, 20, &[IP, (Field::Ipv4Dst, 2, u32::MAX as u128)], 0x21, 1),
    );
    p = add(&p, spec(1, 5, &[(Field::EthType, 0x0806, 0xffff)], 0x22, 1));
    // Non-strict on `ip` selects the ip flows and the more specific ones, all tables.
    let (key, mask) = m(&[IP]);
    let sel = p.select(&Selector {
        key,
        mask,
        ..Selector::default()
    });
    assert_eq!(sel.len(), 3);
    // Strict needs the priority too.
    let (q, cs) = p
        .apply(&[delete(Some(0), true, &[IP], 20, 0, 0, None)], 0)
        .unwrap();
    assert!(cs.is_empty());
    assert_eq!(q.rule_count(), 4);
    let (q, cs) = p
        .apply(&[delete(Some(0), true, &[IP], 10, 0, 0, None)], 0)
        .unwrap();
    assert_eq!(cs.removed.len(), 1);
    assert_eq!(q.rule_count(), 3);
    // Cookie mask: delete cookies 0x2? everywhere.
    let (q, cs) = p
        .apply(&[delete(None, false, &[], 0, 0x20, 0xf0, None)], 0)
        .unwrap();
    assert_eq!(cs.removed.len(), 2);
    assert!(q.rules(None).all(|r| r.spec.cookie & 0xf0 == 0x10));
    // out_port filter.
    let (q, cs) = p
        .apply(&[delete(None, false, &[], 0, 0, 0, Some(2))], 0)
        .unwrap();
    assert_eq!(cs.removed.len(), 1);
    assert_eq!(q.rule_count(), 3);
    // Delete everything.
    let (q, _) = p
        .apply(&[delete(None, false, &[], 0, 0, 0, None)], 0)
        .unwrap();
    assert_eq!(q.rule_count(), 0);
    assert_eq!(q.table(TableId(0)).n_masks(), 0);
}

#[test]
fn modify_keeps_counters_unless_reset() {
    let p = add(&Pipeline::new(), spec(0, 10, &[IP], 7, 1));
    p.rules(None).next().unwrap().stats.record(3, 300, 1);
    let modify = |reset| FlowMod::Modify {
        selector: Selector {
            cookie: 7,
            cookie_mask: u64::MAX,
            ..Selector::default()
        },
        instructions: Instructions::actions(vec![Action::Output(PortNo(9))]),
        reset_counts: reset,
    };
    let (q, cs) = p.apply(&[modify(false)], 0).unwrap();
    assert_eq!(cs.modified.len(), 1);
    let r = q.rules(None).next().unwrap();
    assert_eq!(r.stats.read().packets, 3);
    assert_eq!(out_of(Some(r)), Some(9));
    let (q, _) = p.apply(&[modify(true)], 0).unwrap();
    assert_eq!(q.rules(None).next().unwrap().stats.read().packets, 0);
    // The old version is untouched.
    assert_eq!(out_of(p.rules(None).next()), Some(1));
}

#[test]
fn bad_goto_fails_the_whole_bundle() {
    let p = add(&Pipeline::new(), spec(0, 1, &[], 0, 1));
    let mut bad = spec(3, 1, &[], 0, 1);
    bad.instructions.goto_table = Some(TableId(2));
    let err = p
        .apply(
            &[
                FlowMod::Add {
                    spec: spec(0, 5, &[IP], 0, 2),
                    check_overlap: false,
                },
                FlowMod::Add {
                    spec: bad,
                    check_overlap: false,
                },
            ],
            0,
        )
        .unwrap_err();
    assert_eq!(err.index, 1);
    assert!(matches!(err.error, FlowModError::BadGoto { .. }));
    assert_eq!(p.rule_count(), 1, "the old pipeline is untouched");
    assert_eq!(p.version(), 1);
    let mut bad = spec(254, 1, &[], 0, 1);
    bad.table = TableId(254);
    assert!(matches!(
        p.apply(
            &[FlowMod::Add {
                spec: bad,
                check_overlap: false
            }],
            0
        )
        .unwrap_err()
        .error,
        FlowModError::BadTable(_)
    ));
}

#[test]
fn old_versions_keep_answering() {
    let v1 = add(&Pipeline::new(), spec(0, 10, &[IP], 0, 1));
    let v2 = add(&v1, spec(0, 20, &[IP], 0, 2));
    let mut wc = FlowMask::ZERO;
    assert_eq!(
        out_of(v1.table(TableId(0)).lookup(&pkt(1), &mut wc)),
        Some(1)
    );
    assert_eq!(
        out_of(v2.table(TableId(0)).lookup(&pkt(1), &mut wc)),
        Some(2)
    );
    assert_eq!(v2.version(), v1.version() + 1);
}

#[test]
fn timeouts() {
    let mut s = spec(0, 10, &[IP], 0, 1);
    s.hard_timeout_s = 10;
    let mut s2 = spec(0, 11, &[IP], 0, 1);
    s2.idle_timeout_s = 2;
    let (p, _) = Pipeline::new()
        .apply(
            &[
                FlowMod::Add {
                    spec: s,
                    check_overlap: false,
                },
                FlowMod::Add {
                    spec: s2,
                    check_overlap: false,
                },
            ],
            0,
        )
        .unwrap();
    const S: u64 = 1_000_000_000;
    assert!(p.expire(S).is_none());
    // The idle flow is used at 1.5 s, so it lives until 3.5 s.
    p.rules(None)
        .find(|r| r.spec.priority == 11)
        .unwrap()
        .stats
        .record(1, 60, 3 * S / 2);
    assert!(p.expire(3 * S).is_none());
    let (p2, cs) = p.expire(4 * S).unwrap();
    assert_eq!(cs.removed[0].1, RemovedReason::IdleTimeout);
    assert_eq!(p2.rule_count(), 1);
    let (p3, cs) = p2.expire(10 * S).unwrap();
    assert_eq!(cs.removed[0].1, RemovedReason::HardTimeout);
    assert_eq!(p3.rule_count(), 0);
}

#[test]
fn builds_100k_rules_over_16_masks() {
    let mut mods = Vec::new();
    for i in 0..100_000u32 {
        let prefix = 17 + (i % 16);
        let dst = i.wrapping_mul(2_654_435_761);
        mods.push(FlowMod::Add {
            spec: spec(
                0,
                (i % 16) as u16,
                &[
                    IP,
                    (
                        Field::Ipv4Dst,
                        dst as u128,
                        (u32::MAX << (32 - prefix)) as u128,
                    ),
                ],
                i as u64,
                1,
            ),
            check_overlap: false,
        });
    }
    let (p, _) = Pipeline::new().apply(&mods, 0).unwrap();
    assert!(p.rule_count() > 90_000, "{}", p.rule_count());
    assert_eq!(p.table(TableId(0)).n_masks(), 16);
}

/// The reference: scan every rule, highest priority wins, ties to the oldest.
fn linear<'a>(rules: &'a [Arc<Rule>], key: &FlowKey) -> Option<&'a Arc<Rule>> {
    rules
        .iter()
        .filter(|r| key.matches(&r.spec.key, &r.spec.mask))
        .min_by_key(|r| (std::cmp::Reverse(r.spec.priority), r.id))
}

fn arb_match() -> impl Strategy<Value = Vec<(Field, u128, u128)>> {
    let field = prop_oneof![
        (0u128..4).prop_map(|v| (Field::InPort, v, 0xffff_ffff)),
        (0u128..3).prop_map(|v| (Field::EthType, 0x0800 + v, 0xffff)),
        (0u128..4, 0u32..=32).prop_map(|(v, p)| (
            Field::Ipv4Dst,
            v << 30 | v,
            (u32::MAX.checked_shl(32 - p).unwrap_or(0)) as u128
        )),
        (0u128..4, 28u32..=32).prop_map(|(v, p)| (
            Field::Ipv4Src,
            v,
            (u32::MAX.checked_shl(32 - p).unwrap_or(0)) as u128
        )),
        (0u128..4).prop_map(|v| (Field::TpDst, v, 0xffff)),
        (0u128..4, 0u128..4).prop_map(|(v, msk)| (Field::Reg(1), v, msk)),
    ];
    proptest::collection::vec(field, 0..4)
}

fn arb_key() -> impl Strategy<Value = FlowKey> {
    (0u128..4, 0u128..3, 0u128..4, 0u128..4, 0u128..4, 0u128..4).prop_map(
        |(port, ty, dst, src, tp, reg)| {
            let mut k = FlowKey::ZERO;
            k.set(Field::InPort, port);
            k.set(Field::EthType, 0x0800 + ty);
            k.set(Field::Ipv4Dst, dst << 30 | dst);
            k.set(Field::Ipv4Src, src);
            k.set(Field::TpDst, tp);
            k.set(Field::Reg(1), reg);
            k
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Tuple-space search agrees with the linear reference, and any key that agrees with
    /// the looked-up key on the returned wildcards gets the same rule (the megaflow rule).
    #[test]
    fn agrees_with_linear_reference(
        rules in proptest::collection::vec((arb_match(), 0u16..6), 1..40),
        keys in proptest::collection::vec((arb_key(), arb_key()), 1..40),
        deletes in proptest::collection::vec(0usize..40, 0..5),
    ) {
        let mods: Vec<_> = rules.iter().enumerate().map(|(i, (fields, prio))| FlowMod::Add { spec: spec(0, *prio, fields, i as u64, i as u32), check_overlap: false }).collect();
        let (mut p, _) = Pipeline::new().apply(&mods, 0).unwrap();
        for d in deletes {
            let victim = p.rules(None).nth(d).cloned();
            if let Some(r) = victim {
                p = p.apply(&[FlowMod::Delete(Selector::exact(&r.spec))], 0).unwrap().0;
            }
        }
        let all: Vec<_> = p.rules(None).cloned().collect();
        let t = p.table(TableId(0));
        for (k, other) in keys {
            let mut wc = FlowMask::ZERO;
            let got = t.lookup(&k, &mut wc).map(|r| r.id);
            prop_assert_eq!(got, linear(&all, &k).map(|r| r.id));
            // Any key agreeing with k on wc must classify the same way.
            let mut k2 = other;
            for i in 0..crate::flow::KEY_WORDS {
                k2.w[i] = (k.w[i] & wc.w[i]) | (other.w[i] & !wc.w[i]);
            }
            let mut wc2 = FlowMask::ZERO;
            prop_assert_eq!(t.lookup(&k2, &mut wc2).map(|r| r.id), got);
        }
    }
}
