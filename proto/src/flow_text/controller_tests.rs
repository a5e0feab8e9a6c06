//! `controller(...)` with Open vSwitch's arguments in the flow text: read and printed as
//! Open vSwitch 3.1 prints them (`ovs-dump.tsv` of the corpus for the first ones), refused
//! where this switch cannot do what they ask, and a property test over the arguments.
#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

/// (input, what Open vSwitch prints for it with `dump-flows --no-stats`).
const PRINTED: &[(&str, &str)] = &[
    (
        "actions=controller(max_len=123,reason=invalid_ttl,id=555)",
        "actions=controller(reason=invalid_ttl,max_len=123,id=555)",
    ),
    (
        "actions=controller(reason=invalid_ttl,max_len=1234,id=5678,userdata=01.02.03.04.05)",
        "actions=controller(reason=invalid_ttl,max_len=1234,id=5678,userdata=01.02.03.04.05)",
    ),
    // Only max_len (or the default reason): the plain form.
    ("actions=controller(max_len=100)", "actions=CONTROLLER:100"),
    (
        "actions=controller(reason=action,max_len=100)",
        "actions=CONTROLLER:100",
    ),
    ("actions=controller(id=0)", "actions=CONTROLLER:65535"),
    (
        "actions=controller(userdata=0a0B)",
        "actions=controller(userdata=0a.0b)",
    ),
    (
        "actions=controller(reason=no_match,max_len=65535)",
        "actions=controller(reason=no_match)",
    ),
    // In the action set, without userdata.
    (
        "actions=write_actions(controller(reason=action_set,id=3))",
        "actions=write_actions(controller(reason=action_set,id=3))",
    ),
];

#[test]
fn controller_arguments_print_as_open_vswitch_prints_them() {
    for (input, want) in PRINTED {
        let f = parse_flow(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(format_flow(&f), *want, "{input}");
        let back = parse_flow(want).unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(back, f, "{want}");
    }
}

#[test]
fn what_this_switch_cannot_do_is_refused_with_the_reason() {
    for (input, why) in [
        ("actions=controller(pause)", "continuations"),
        ("actions=controller(meter_id=1)", "meter"),
        (
            "actions=controller(reason=bogus)",
            "unknown controller reason",
        ),
        ("actions=controller(id=65536)", "controller id"),
        ("actions=controller(userdata=abc)", "hex bytes"),
        ("actions=controller(userdata=zz)", "hex bytes"),
        ("actions=controller(max_len=70000)", "max_len"),
        (
            "actions=controller(speed=3)",
            "unsupported controller option",
        ),
        (
            "actions=write_actions(controller(userdata=01))",
            "apply-actions only",
        ),
    ] {
        let e = parse_flow(input).expect_err(input);
        assert!(e.to_string().contains(why), "{input}: {e}");
    }
}

const REASON_NAMES: [&str; 6] = [
    "no_match",
    "action",
    "invalid_ttl",
    "action_set",
    "group",
    "packet_out",
];

proptest! {
    /// Any arguments, in any order, print back to text that parses to the same flow, in
    /// Open vSwitch's order.
    #[test]
    fn controller_arguments_round_trip(
        max_len in prop::option::of(0u32..=65535),
        reason in prop::option::of(0usize..6),
        id in prop::option::of(0u32..=65535),
        userdata in prop::option::of(prop::collection::vec(any::<u8>(), 1..24)),
        rotate in 0usize..4,
    ) {
        let mut args: Vec<String> = Vec::new();
        if let Some(n) = max_len {
            args.push(format!("max_len={n}"));
        }
        if let Some(r) = reason {
            args.push(format!("reason={}", REASON_NAMES[r]));
        }
        if let Some(i) = id {
            args.push(format!("id={i}"));
        }
        if let Some(u) = &userdata {
            let b: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
            args.push(format!("userdata={}", b.join(".")));
        }
        let k = if args.is_empty() { 0 } else { rotate % args.len() };
        args.rotate_left(k);
        let text = format!("actions=controller({})", args.join(","));
        let f = parse_flow(&text).unwrap();
        let printed = format_flow(&f);
        prop_assert_eq!(parse_flow(&printed).unwrap(), f, "{} -> {}", text, printed);
        let plain = reason.is_none_or(|r| r == 1)
            && id.is_none_or(|i| i == 0)
            && userdata.is_none();
        prop_assert_eq!(printed.starts_with("actions=CONTROLLER:"), plain, "{}", printed);
    }
}
