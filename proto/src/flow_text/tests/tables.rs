//! The field tables are data: a row added for a new field must keep them consistent.

use super::*;

#[test]
fn the_field_table_has_one_row_per_field_in_field_order() {
    let numbers: Vec<i32> = FIELDS.iter().map(|d| d.field as i32).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "FIELDS must be sorted by Field number (the canonical match order): {numbers:?}"
    );
    for n in 1..1024 {
        if let Ok(f) = Field::try_from(n) {
            assert!(field_def(f).is_some(), "{f:?} has no row in FIELDS");
            let printed = printed_fields().filter(|p| *p == f).count();
            let by_part = matches!(
                f,
                Field::VlanVid | Field::VlanPcp | Field::VlanTci | Field::EthType | Field::IpProto
            );
            assert_eq!(
                printed,
                usize::from(!by_part),
                "{f:?} must be printed exactly once"
            );
        }
    }
}

#[test]
fn every_field_name_means_one_field() {
    let mut seen: BTreeMap<&str, Field> = BTreeMap::new();
    for d in FIELDS {
        for &name in std::iter::once(&d.name).chain(d.aliases) {
            if let Some(other) = seen.insert(name, d.field) {
                panic!("`{name}` names both {other:?} and {:?}", d.field);
            }
            // Outside any protocol context each name resolves to its own row.
            match resolve_name(name, Ctx::default()) {
                Ok(Named::Field(f)) => assert_eq!(f, d.field, "{name}"),
                _ => panic!("`{name}` does not resolve to {:?}", d.field),
            }
        }
    }
    for (name, when, field) in CONTEXTUAL {
        assert!(
            seen.contains_key(name),
            "contextual `{name}` is not a field name"
        );
        let ctx = [ETH_ARP, ETH_IPV6]
            .into_iter()
            .map(|e| Ctx {
                eth_type: Some(e),
                ..Ctx::default()
            })
            .find(|c| when(*c))
            .expect("a context where the contextual name applies");
        assert!(
            matches!(resolve_name(name, ctx), Ok(Named::Field(f)) if f == *field),
            "{name}"
        );
    }
    for (nxm, text) in NXM_NAMES {
        assert!(seen.contains_key(text), "{nxm} stands for unknown `{text}`");
        assert!(resolve_name(nxm, Ctx::default()).is_ok(), "{nxm}");
    }
}
