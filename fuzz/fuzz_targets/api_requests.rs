//! API requests as a hostile controller could send them, handled in process by a real
//! switch (its store in a temporary directory, small limits so they are reached): the
//! first byte picks Read (even) or Write (odd), the rest is the request. Nothing may panic;
//! a Read returns each entity once, in responses of bounded size; after any Write, what a
//! Read returns is exactly what the flow tables hold (a refused write changed nothing) and
//! no limit is passed.
//!
//! Port inserts other than `type=memory` are left out: the fuzzer must not attach the
//! switch to the host's interfaces or create devices.
#![no_main]

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::v1::{self, entity};
use vswitchd::store::Store;
use vswitchd::switch::{CHUNK_BYTES, CHUNK_ENTITIES, Capacity, Switch, SwitchConfig};

const CAPACITY: Capacity = Capacity {
    flows_per_table: 48,
    flows_per_bridge: 96,
    meters_per_bridge: 8,
    groups_per_bridge: 8,
    ports_per_bridge: 8,
    bridges: 4,
};

fn switch() -> &'static Arc<Switch> {
    static SW: OnceLock<(std::path::PathBuf, Arc<Switch>)> = OnceLock::new();
    &SW.get_or_init(|| {
        // tmpfs when there is one: every accepted Write commits with fsync.
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        // Stores of earlier runs that are gone (the fuzzer exits without cleaning up).
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("vswitchd-fuzz-")
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = base.join(format!("vswitchd-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = SwitchConfig {
            capacity: CAPACITY,
            ..SwitchConfig::default()
        };
        let sw =
            Switch::start(Store::open(&dir.join("conf.db")).expect("store"), cfg).expect("switch");
        for p in ["p1", "p2"] {
            sw.add_port(v1::AddPortRequest {
                bridge: "br0".into(),
                port: Some(v1::PortConfig {
                    name: p.into(),
                    r#type: "memory".into(),
                    ..Default::default()
                }),
            })
            .expect("port");
        }
        (dir, sw)
    })
    .1
}

/// Every entity of a Read (all its responses), checking each response's size.
fn read(sw: &Switch, req: &v1::ReadRequest) -> Option<Vec<v1::Entity>> {
    let out = sw.read(req).ok()?;
    let mut all = Vec::new();
    for r in out {
        assert!(r.entities.len() + r.ports.len() <= CHUNK_ENTITIES);
        let largest = r
            .entities
            .iter()
            .map(Message::encoded_len)
            .chain(r.ports.iter().map(Message::encoded_len))
            .max()
            .unwrap_or(0);
        assert!(r.encoded_len() <= CHUNK_BYTES + largest + 8);
        all.extend(r.entities);
    }
    Some(all)
}

fn memory_ports_only(req: &mut v1::WriteRequest) {
    req.updates.retain(|u| {
        !matches!(
            u.entity.as_ref().and_then(|e| e.entity.as_ref()),
            Some(entity::Entity::Port(p)) if p.r#type != "memory"
        )
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let sw = switch();
    if kind % 2 == 0 {
        let Ok(req) = v1::ReadRequest::decode(rest) else {
            return;
        };
        if let Some(ents) = read(sw, &req) {
            let mut seen = HashSet::new();
            for e in &ents {
                let mut e = e.clone();
                if let Some(entity::Entity::Flow(f)) = e.entity.as_mut() {
                    f.stats = None;
                }
                assert!(seen.insert(e.encode_to_vec()), "an entity twice: {e:?}");
            }
        }
        return;
    }
    let Ok(mut req) = v1::WriteRequest::decode(rest) else {
        return;
    };
    memory_ports_only(&mut req);
    let _ = sw.write(req);
    let all = v1::ReadRequest {
        bridge: "br0".into(),
        filters: Vec::new(),
    };
    let flows = read(sw, &all).expect("br0 reads").len();
    let dp = sw.datapath("br0").expect("br0");
    let snap = dp.snapshot();
    assert_eq!(
        flows,
        snap.pipeline.rule_count(),
        "Read and the tables disagree"
    );
    assert!(flows <= CAPACITY.flows_per_bridge);
    assert!(snap.meters.len() <= CAPACITY.meters_per_bridge);
    assert!(snap.groups.len() <= CAPACITY.groups_per_bridge);
});
