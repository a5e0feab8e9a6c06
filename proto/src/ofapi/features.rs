//! What the switch tells a controller it can do, derived from the tables of this module so
//! that it never claims more than the mapping accepts: TABLE_FEATURES (the eight required
//! properties per table), GROUP_FEATURES, METER_FEATURES.

use crate::openflow::actions::kind as at;
use crate::openflow::fields::Field as Of;
use crate::openflow::instructions::kind as it;
use crate::openflow::oxm::OxmId;
use crate::openflow::stats::{GroupFeatures, MeterFeatures};
use crate::openflow::table_features::{TableFeaturesBuilder, TypeId};
use crate::v1;

use super::fields::FIELDS;
use super::meters::MAX_BANDS;

/// Instructions a flow may carry.
pub const INSTRUCTIONS: &[u16] = &[
    it::GOTO_TABLE,
    it::WRITE_METADATA,
    it::WRITE_ACTIONS,
    it::APPLY_ACTIONS,
    it::CLEAR_ACTIONS,
    it::METER,
];

/// Actions an apply-actions instruction may carry.
pub const APPLY_ACTIONS: &[TypeId<'static>] = &[
    TypeId::of(at::OUTPUT),
    TypeId::of(at::PUSH_VLAN),
    TypeId::of(at::POP_VLAN),
    TypeId::of(at::SET_QUEUE),
    TypeId::of(at::GROUP),
    TypeId::of(at::DEC_NW_TTL),
    TypeId::of(at::SET_FIELD),
];

/// Fields that are not written by set-field.
fn read_only(f: v1::Field) -> bool {
    matches!(
        f,
        v1::Field::InPort | v1::Field::EthType | v1::Field::IpProto | v1::Field::TcpFlags
    )
}

/// The OXM ids of the preferred wire form of every API field (`settable`: only those
/// set-field may write; `maskable`: only those that take a mask).
pub fn oxm_ids(settable: bool, maskable: bool) -> Vec<OxmId> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for r in FIELDS {
        if seen.contains(&r.api) {
            continue;
        }
        seen.push(r.api);
        if settable && read_only(r.api) {
            continue;
        }
        if maskable && !r.of.def().maskable {
            continue;
        }
        if r.of == Of::NxmVlanTci && settable {
            continue;
        }
        out.push(OxmId::of(r.of));
    }
    out
}

/// The table features of every table `0..n_tables`, each written by `push` (a multipart
/// reply writer's `push_with`); stops at the first error `push` returns.
pub fn table_features<E>(
    n_tables: u8,
    max_entries: u32,
    mut push: impl FnMut(&dyn Fn(&mut Vec<u8>)) -> Result<(), E>,
) -> Result<(), E> {
    let all = oxm_ids(false, false);
    let wild = oxm_ids(false, true);
    let set = oxm_ids(true, false);
    for t in 0..n_tables {
        let next: Vec<u8> = (t + 1..n_tables).collect();
        // No name, as Open vSwitch leaves a table it was not told to name (ovs-ofctl then
        // prints the identical tables as one "ditto" line).
        let b = TableFeaturesBuilder {
            table_id: t,
            name: "",
            metadata_match: u64::MAX,
            metadata_write: u64::MAX,
            max_entries,
            instructions: INSTRUCTIONS,
            next_tables: &next,
            write_actions: APPLY_ACTIONS,
            apply_actions: APPLY_ACTIONS,
            match_fields: &all,
            wildcards: &wild,
            write_setfield: &set,
            apply_setfield: &set,
        };
        push(&|out: &mut Vec<u8>| b.emit(out))?;
    }
    Ok(())
}

/// GROUP_FEATURES: all four group types, with select weights, bucket liveness (watch_port,
/// watch_group) and chaining, as Open vSwitch claims them; no CHAINING_CHECKS (a bucket may
/// chain to a group that does not exist yet, as in Open vSwitch). The apply actions above
/// in each.
pub fn group_features(max_groups: u32) -> GroupFeatures {
    let actions = APPLY_ACTIONS
        .iter()
        .filter(|a| a.kind < 32)
        .fold(0u32, |m, a| m | (1 << a.kind));
    GroupFeatures {
        types: 0b1111,
        // SELECT_WEIGHT, SELECT_LIVENESS, CHAINING.
        capabilities: 0b0111,
        max_groups: [max_groups; 4],
        actions: [actions; 4],
    }
}

/// METER_FEATURES: drop and DSCP-remark bands, kbps and pktps, bursts and statistics.
pub fn meter_features(max_meters: u32) -> MeterFeatures {
    MeterFeatures {
        max_meter: max_meters,
        band_types: (1 << 1) | (1 << 2),
        capabilities: 0b1111,
        max_bands: MAX_BANDS,
        max_color: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::list::{Item, List};
    use crate::openflow::table_features::TableFeatures;

    #[test]
    fn every_table_reports_what_the_mapping_takes() {
        let mut out = Vec::new();
        table_features::<()>(3, 1000, |f| {
            f(&mut out);
            Ok(())
        })
        .expect("written");
        let l: List<'_, TableFeatures<'_>> = List::new_checked(&out).expect("parses");
        assert_eq!(l.count(), 3);
        let first = l.iter().next().expect("table 0");
        assert_eq!(first.table_id, 0);
        let (_, n) = TableFeatures::parse_item(&out).expect("entry");
        assert!(n < out.len());
        assert!(
            oxm_ids(true, false)
                .iter()
                .all(|o| o.field() != Some(Of::InPort))
        );
    }
}
