//! API messages as a hostile controller could send them: arbitrary bytes decoded as a
//! `WriteRequest`, every flow, meter and group converted the way the daemon converts them,
//! every port's type and options parsed into its typed specification,
//! and the accepted flows applied to a classifier. Nothing may panic; an accepted match
//! converts again to the same datapath key and mask.
#![no_main]

use datapath::classifier::{FlowMod, FlowSpec, Pipeline};
use datapath::types::TableId;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::v1::{self, entity};
use vswitchd::{convert, meter_group};
use vswitchd::switch::PortSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = v1::WriteRequest::decode(data) else {
        return;
    };
    let names = |n: &str| (n == "p1").then_some(1u32);
    let mut mods = Vec::new();
    for u in &req.updates {
        match u.entity.as_ref().and_then(|e| e.entity.as_ref()) {
            Some(entity::Entity::Flow(f)) => {
                let m = f.r#match.clone().unwrap_or_default();
                let Ok(dm) = convert::convert_match(&m, &names) else { continue };
                let again = convert::convert_match(&dm.canonical, &names).expect("canonical match");
                assert_eq!((again.key, again.mask), (dm.key, dm.mask));
                let Ok(ins) = convert::convert_instructions(&f.instructions, &names, &dm.canonical)
                else {
                    continue;
                };
                if f.table_id > proto::flow_text::MAX_TABLE_ID || f.priority > 0xffff {
                    continue;
                }
                mods.push(FlowMod::Add {
                    spec: FlowSpec {
                        table: TableId(f.table_id as u8),
                        priority: f.priority as u16,
                        key: dm.key,
                        mask: dm.mask,
                        cookie: f.cookie,
                        idle_timeout_s: 0,
                        hard_timeout_s: 0,
                        send_flow_removed: false,
                        instructions: ins,
                    },
                    check_overlap: f.flags.is_some_and(|x| x.check_overlap),
                });
            }
            Some(entity::Entity::Meter(m)) => {
                let _ = meter_group::convert_meter(m, 0);
            }
            Some(entity::Entity::Group(g)) => {
                let _ = meter_group::convert_group(g, &names);
            }
            Some(entity::Entity::FlowFilter(ff)) => {
                let m = ff.r#match.clone().unwrap_or_default();
                let _ = convert::convert_match(&m, &names);
                let _ = convert::filter_port(ff.out_port.as_ref(), &names);
            }
            Some(entity::Entity::Port(p)) => {
                if let Ok(spec) = PortSpec::parse(&p.r#type, &p.options) {
                    assert_eq!(spec.kind.type_name(), p.r#type);
                }
            }
            _ => {}
        }
    }
    let _ = Pipeline::new().apply(&mods, 0);
});
