//! The OpenFlow connection state machine on arbitrary input: a session on a real switch
//! (store in a temporary directory, a bridge with two in-memory ports) gets a HELLO and
//! then the input cut into messages as a connection would cut it, as a hostile controller
//! could send them. Nothing may panic; everything the session answers is a well-framed
//! OpenFlow 1.3 message; the session closes only on a broken frame; afterwards the bridge
//! is emptied again so inputs do not depend on each other.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use proto::openflow::header;
use proto::v1::{self, entity, update};
use vswitchd::openflow::{ConnCounters, Next, Roles, Session, Settings};
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

const BRIDGE: &str = "fz";
/// HELLO, OpenFlow 1.3.
const HELLO: [u8; 8] = [4, 0, 0, 8, 0, 0, 0, 1];

fn switch() -> &'static Arc<Switch> {
    static SW: OnceLock<(Arc<Switch>, std::path::PathBuf)> = OnceLock::new();
    &SW.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("of-session-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("fuzz directory");
        let store = Store::open(&dir.join("conf.db")).expect("store");
        let sw = Switch::start(store, SwitchConfig::default()).expect("switch");
        sw.add_bridge(v1::AddBridgeRequest {
            name: BRIDGE.into(),
            fail_mode: v1::FailMode::Secure as i32,
            ..Default::default()
        })
        .expect("bridge");
        for (i, p) in ["p1", "p2"].iter().enumerate() {
            sw.add_port(v1::AddPortRequest {
                bridge: BRIDGE.into(),
                port: Some(v1::PortConfig {
                    name: p.to_string(),
                    r#type: "memory".into(),
                    requested_ofport: Some(i as u32 + 1),
                    ..Default::default()
                }),
            })
            .expect("port");
        }
        (sw, dir)
    })
    .0
}

/// Deletes every flow, group and meter of the bridge.
fn reset(sw: &Switch) {
    let del = |e| v1::Update {
        r#type: update::Type::Delete as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    };
    let mut updates = vec![del(entity::Entity::FlowFilter(v1::FlowFilter::default()))];
    let read = sw
        .read(&v1::ReadRequest {
            bridge: BRIDGE.into(),
            filters: vec![],
        })
        .expect("read");
    for e in read.into_iter().flat_map(|r| r.entities).filter_map(|e| e.entity) {
        match e {
            entity::Entity::Group(g) => updates.push(del(entity::Entity::Group(v1::Group {
                id: g.id,
                ..Default::default()
            }))),
            entity::Entity::Meter(m) => updates.push(del(entity::Entity::Meter(v1::Meter {
                id: m.id,
                ..Default::default()
            }))),
            _ => {}
        }
    }
    sw.write(v1::WriteRequest {
        bridge: BRIDGE.into(),
        updates,
        atomicity: v1::Atomicity::ContinueOnError as i32,
    })
    .expect("reset");
}

/// Every message in `out` is framed and speaks OpenFlow 1.3.
fn well_framed(out: &[u8]) {
    let mut pos = 0;
    while pos < out.len() {
        let len = header::frame_len(&out[pos..])
            .expect("a reply with a length below 8")
            .expect("a truncated reply");
        assert_eq!(out[pos], 4, "a reply not in OpenFlow 1.3");
        pos += len;
    }
}

fuzz_target!(|data: &[u8]| {
    let sw = switch();
    let settings = Settings {
        rate: 0,
        burst: 0,
        service: false,
    };
    let mut s = Session::new(
        Arc::clone(sw),
        BRIDGE,
        Arc::new(Roles::default()),
        settings,
        Arc::new(ConnCounters::default()),
    );
    let mut out = Vec::new();
    s.hello(&mut out);
    assert_eq!(s.handle(&HELLO, &mut out), Next::Continue);
    let mut pos = 0;
    while pos < data.len() {
        match header::frame_len(&data[pos..]) {
            Ok(Some(len)) => {
                if let Next::Close(_) = s.handle(&data[pos..pos + len], &mut out) {
                    break;
                }
                pos += len;
            }
            // Incomplete: a connection would wait for more.
            Ok(None) => break,
            // Broken framing closes the connection.
            Err(_) => break,
        }
    }
    s.flush(&mut out);
    well_framed(&out);
    drop(s);
    reset(sw);
});
