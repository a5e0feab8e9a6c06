//! Port mirror requests as a hostile client could send them, handled in process by a real
//! switch (its store in a temporary directory, four memory ports): the first byte picks
//! AddMirror (0), DelMirror (1) or the removal and return of a port (2, which the mirrors
//! must forget), the rest is the request. Nothing may panic; a refused request changes
//! nothing; after every request the stored mirrors and the datapath's agree (same names,
//! same order), name only ports that exist, are at most 32, and no mirror selects an
//! output.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::v1;
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

const PORTS: [&str; 4] = ["p1", "p2", "p3", "p4"];

fn add_port(sw: &Switch, name: &str) {
    sw.add_port(v1::AddPortRequest {
        bridge: "br0".into(),
        port: Some(v1::PortConfig {
            name: name.into(),
            r#type: "memory".into(),
            ..Default::default()
        }),
    })
    .expect("port");
}

fn switch() -> &'static Arc<Switch> {
    static SW: OnceLock<(std::path::PathBuf, Arc<Switch>)> = OnceLock::new();
    &SW.get_or_init(|| {
        // tmpfs when there is one: every accepted request commits with fsync.
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("vswitchd-fuzz-mirrors-")
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = base.join(format!("vswitchd-fuzz-mirrors-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sw = Switch::start(
            Store::open(&dir.join("conf.db")).expect("store"),
            SwitchConfig::default(),
        )
        .expect("switch");
        for p in PORTS {
            add_port(&sw, p);
        }
        (dir, sw)
    })
    .1
}

/// The stored mirrors without their counters.
fn stored(sw: &Switch) -> Vec<v1::Mirror> {
    let mut l = sw.list_mirrors("br0").expect("list");
    for m in &mut l {
        m.tx_packets = 0;
        m.tx_bytes = 0;
    }
    l
}

fn check(sw: &Switch) {
    let list = stored(sw);
    assert!(list.len() <= 32);
    let snap = sw.datapath("br0").expect("br0").snapshot();
    let names: Vec<&str> = (snap.mirrors.entries().iter())
        .map(|e| e.mirror.name.as_str())
        .collect();
    let want: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, want, "the datapath and the store disagree");
    let ports = sw.list_ports("br0").expect("ports");
    let exists = |p: &String| ports.iter().any(|d| &d.name == p);
    for m in &list {
        assert!(exists(&m.output_port), "{m:?}");
        for p in m.select_src_port.iter().chain(&m.select_dst_port) {
            assert!(exists(p), "{m:?}");
            assert!(!list.iter().any(|o| &o.output_port == p), "{list:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let sw = switch();
    let before = stored(sw);
    let refused = match kind % 3 {
        0 => {
            let Ok(req) = v1::AddMirrorRequest::decode(rest) else {
                return;
            };
            sw.add_mirror(&req).is_err()
        }
        1 => {
            let Ok(req) = v1::DelMirrorRequest::decode(rest) else {
                return;
            };
            sw.del_mirror(&req).is_err()
        }
        _ => {
            let p = PORTS[rest.first().map_or(0, |b| *b as usize % PORTS.len())];
            sw.del_port(v1::DelPortRequest {
                bridge: "br0".into(),
                name: p.into(),
                if_exists: false,
            })
            .expect("del-port");
            add_port(sw, p);
            false
        }
    };
    if refused {
        assert_eq!(stored(sw), before, "a refused request changed the mirrors");
    }
    check(sw);
});
