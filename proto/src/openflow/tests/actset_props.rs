//! Property tests of the action-set instructions between the API and the wire: any flow
//! the text syntax writes with `clear_actions`, `write_actions(...)` and `write_metadata`
//! (beside apply-actions, a meter and a goto) goes to OpenFlow instructions and comes back
//! as the same API instructions, and what comes back encodes to the same bytes.

use proptest::prelude::*;

use crate::flow_text::parse_flow;
use crate::ofapi::instructions::{emit, to_api};
use crate::openflow::instructions::Instructions;

/// An action the action set may hold, as text.
fn set_action() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..100).prop_map(|p| format!("output:{p}")),
        (1u32..100).prop_map(|g| format!("group:{g}")),
        any::<u32>().prop_map(|v| format!("set_field:{v}->reg3")),
        (0u16..4096).prop_map(|v| format!("push_vlan:0x8100,set_field:{}->vlan_vid", v | 0x1000)),
        Just("pop_vlan".to_string()),
        Just("dec_ttl".to_string()),
        (0u32..8).prop_map(|q| format!("set_queue:{q}")),
        (1u8..255).prop_map(|t| format!("resubmit(,{t})")),
    ]
}

/// A flow's `actions=` using the action set, in OpenFlow's instruction order.
fn actions_text() -> impl Strategy<Value = String> {
    (
        proptest::option::of(1u32..64),
        proptest::option::of(1u32..64),
        any::<bool>(),
        proptest::collection::vec(set_action(), 0..4),
        proptest::option::of((any::<u64>(), any::<u64>())),
        proptest::option::of(1u8..200),
    )
        .prop_map(|(meter, apply, clear, write, md, goto)| {
            let mut parts = Vec::new();
            if let Some(m) = meter {
                parts.push(format!("meter:{m}"));
            }
            if let Some(p) = apply {
                parts.push(format!("output:{p}"));
            }
            if clear {
                parts.push("clear_actions".into());
            }
            if !write.is_empty() {
                parts.push(format!("write_actions({})", write.join(",")));
            }
            if let Some((v, m)) = md {
                parts.push(format!("write_metadata:{:#x}/{:#x}", v & m, m));
            }
            if let Some(t) = goto {
                parts.push(format!("goto_table:{t}"));
            }
            if parts.is_empty() {
                parts.push("clear_actions".into());
            }
            format!("ip,actions={}", parts.join(","))
        })
}

proptest! {
    #[test]
    fn action_set_instructions_round_trip(text in actions_text()) {
        let flow = parse_flow(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let m = flow.r#match.clone().unwrap_or_default();
        let mut wire = Vec::new();
        emit(&flow.instructions, &mut wire);
        let list = Instructions::new_checked(&wire).expect("emitted instructions are framed");
        let back = to_api(&list, 0, &m).map_err(|e| TestCaseError::fail(format!("{text}: {e:?}")))?;
        prop_assert_eq!(&back, &flow.instructions, "{}", text);
        let mut again = Vec::new();
        emit(&back, &mut again);
        prop_assert_eq!(again, wire);
    }
}
