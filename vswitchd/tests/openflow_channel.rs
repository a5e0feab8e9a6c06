//! The OpenFlow channel's connection rules, from the controller's side of a real TCP
//! socket (the controller here is the test, speaking through the codec that
//! `openflow_ofctl.rs` checks against ovs-ofctl): the inactivity probe and reconnection of
//! an active target; roles with generation ids (a slave may not write and gets no
//! packet-ins, a new master demotes the old); the per-connection packet-in rate limit,
//! what it drops counted in the target's status.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::openflow::error::{bad_request, role_request_failed};
use proto::openflow::flow::{Command, FlowMod};
use proto::openflow::header::{self, MsgType, Version};
use proto::openflow::hello::{Hello, VersionSet};
use proto::openflow::ids::{BufferId, GroupId, PortNo, TableId};
use proto::openflow::instructions::Instructions;
use proto::openflow::message::{self, Message};
use proto::openflow::oxm::Match;
use proto::openflow::switch::{Role, role};
use proto::v1;
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

/// The test's end of one controller connection.
struct Peer {
    s: TcpStream,
    buf: Vec<u8>,
    xid: u32,
}

impl Peer {
    /// The switch's next connection to `l`, with HELLOs exchanged.
    fn accept(l: &TcpListener) -> Peer {
        l.set_nonblocking(false).expect("blocking");
        let (s, _) = l.accept().expect("the switch connects");
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut p = Peer {
            s,
            buf: Vec::new(),
            xid: 100,
        };
        let mut hello = Vec::new();
        Hello::emit_ours(VersionSet::of(&[Version::V1_3]), 1, &mut hello).expect("hello");
        p.s.write_all(&hello).expect("send hello");
        let m = p.recv(Duration::from_secs(5)).expect("the switch's HELLO");
        assert_eq!(m[1], MsgType::HELLO.0);
        p
    }

    fn send(&mut self, m: &Message<'_>) -> u32 {
        self.xid += 1;
        let mut out = Vec::new();
        m.emit(Version::V1_3, self.xid, &mut out).expect("emit");
        self.s.write_all(&out).expect("send");
        self.xid
    }

    /// The next message within `wait`; `None` if none came; panics if the switch closed.
    fn recv(&mut self, wait: Duration) -> Option<Vec<u8>> {
        self.recv_or_eof(wait)
            .expect("the switch closed the connection")
    }

    /// Like `recv`, `Err` when the switch closed the connection.
    fn recv_or_eof(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, ()> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(len)) = header::frame_len(&self.buf) {
                return Ok(Some(self.buf.drain(..len).collect()));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Err(()),
            }
        }
    }

    /// The next message of type `t` within `wait` (answering echo requests meanwhile).
    fn expect(&mut self, t: MsgType, wait: Duration) -> Vec<u8> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let Some(m) = self.recv(deadline - Instant::now()) else {
                break;
            };
            if m[1] == t.0 {
                return m;
            }
            if m[1] == MsgType::ECHO_REQUEST.0 {
                let mut r = m.clone();
                r[1] = MsgType::ECHO_REPLY.0;
                self.s.write_all(&r).expect("echo reply");
            }
        }
        panic!("no {t:?} within {wait:?}");
    }

    /// Every message that arrives within `wait`, by type.
    fn drain(&mut self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(m) = self.recv(deadline.saturating_duration_since(Instant::now())) {
            out.push(m);
        }
        out
    }
}

fn start() -> (
    tempfile::TempDir,
    Arc<Switch>,
    tokio::runtime::Runtime,
    tokio::sync::watch::Sender<bool>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("conf.db")).expect("store");
    let sw = Switch::start(store, SwitchConfig::default()).expect("switch");
    sw.add_bridge(v1::AddBridgeRequest {
        name: "br".into(),
        fail_mode: v1::FailMode::Secure as i32,
        ..Default::default()
    })
    .expect("bridge");
    for (i, p) in ["p1", "p2"].iter().enumerate() {
        sw.add_port(v1::AddPortRequest {
            bridge: "br".into(),
            port: Some(v1::PortConfig {
                name: p.to_string(),
                r#type: "memory".into(),
                requested_ofport: Some(i as u32 + 1),
                ..Default::default()
            }),
        })
        .expect("port");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    rt.spawn(vswitchd::openflow::serve(Arc::clone(&sw), None, stop_rx));
    (dir, sw, rt, stop_tx)
}

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("listen");
    let t = format!("tcp:{}", l.local_addr().expect("addr"));
    (l, t)
}

fn status(sw: &Switch, target: &str) -> v1::ControllerStatus {
    sw.get_bridge("br")
        .expect("bridge")
        .controller_status
        .into_iter()
        .find(|s| s.target == target)
        .expect("status of the target")
}

fn error_of(m: &[u8]) -> proto::openflow::error::OfpError {
    match message::parse(m).expect("parses") {
        (_, Message::Error(e)) => e.error,
        (_, other) => panic!("not an error: {other:?}"),
    }
}

fn role_of(m: &[u8]) -> Role {
    match message::parse(m).expect("parses") {
        (_, Message::RoleReply(r)) => r,
        (_, other) => panic!("not a role reply: {other:?}"),
    }
}

fn flow_mod() -> FlowMod<'static> {
    FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id: TableId(0),
        command: Command::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 5,
        buffer_id: BufferId::NO_BUFFER,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        flags: 0,
        importance: 0,
        match_: Match::all(),
        instructions: Instructions::default(),
    }
}

#[test]
fn a_silent_controller_is_probed_dropped_and_reconnected() {
    let (_dir, sw, _rt, _stop) = start();
    let (l, target) = listener();
    sw.set_controller(v1::SetControllerRequest {
        bridge: "br".into(),
        controllers: vec![v1::Controller {
            target: target.clone(),
            inactivity_probe_ms: 1000,
            max_backoff_ms: 1000,
            ..Default::default()
        }],
    })
    .expect("set controller");
    let mut p = Peer::accept(&l);
    let quiet = Instant::now();
    let echo = p.recv(Duration::from_secs(3)).expect("an echo request");
    assert_eq!(echo[1], MsgType::ECHO_REQUEST.0);
    let probed = quiet.elapsed();
    assert!(
        probed >= Duration::from_millis(900) && probed < Duration::from_millis(1800),
        "probed after {probed:?}, not after the 1 s inactivity probe"
    );
    // Unanswered: dropped one probe interval later.
    let deadline = Instant::now() + Duration::from_secs(3);
    while p.recv_or_eof(Duration::from_millis(100)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "an unanswered probe did not drop the connection"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let st = status(&sw, &target);
        if st.last_error.contains("inactivity probe timeout") {
            break;
        }
        assert!(Instant::now() < deadline, "{st:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The switch comes back by itself; answered probes keep the connection.
    let mut p = Peer::accept(&l);
    let kept = Instant::now();
    while kept.elapsed() < Duration::from_secs(3) {
        let _ = p.expect(MsgType::ECHO_REQUEST, Duration::from_secs(2));
        let mut r = echo.clone();
        r[1] = MsgType::ECHO_REPLY.0;
        p.s.write_all(&r).expect("echo reply");
    }
    assert!(status(&sw, &target).is_connected);
}

#[test]
fn roles_and_the_packet_in_rate_limit() {
    let (_dir, sw, _rt, _stop) = start();
    let miss = proto::flow_text::parse_flow("priority=0,actions=CONTROLLER").expect("flow");
    sw.write(v1::WriteRequest {
        bridge: "br".into(),
        updates: vec![v1::Update {
            r#type: v1::update::Type::Insert as i32,
            entity: Some(v1::Entity {
                entity: Some(v1::entity::Entity::Flow(miss)),
            }),
        }],
        atomicity: v1::Atomicity::AllOrNone as i32,
    })
    .expect("table-miss flow");
    let (la, ta) = listener();
    let (lb, tb) = listener();
    sw.set_controller(v1::SetControllerRequest {
        bridge: "br".into(),
        controllers: vec![
            v1::Controller {
                target: ta.clone(),
                controller_rate_limit: 100,
                controller_burst_limit: 25,
                ..Default::default()
            },
            v1::Controller {
                target: tb.clone(),
                ..Default::default()
            },
        ],
    })
    .expect("set controller");
    let mut a = Peer::accept(&la);
    let mut b = Peer::accept(&lb);

    // A becomes master (generation 1); B's older generation is stale; B becomes slave.
    let want = |r, g| {
        Message::RoleRequest(Role {
            role: r,
            generation_id: g,
        })
    };
    a.send(&want(role::MASTER, 1));
    let r = role_of(&a.expect(MsgType::ROLE_REPLY, Duration::from_secs(2)));
    assert_eq!((r.role, r.generation_id), (role::MASTER, 1));
    b.send(&want(role::MASTER, 0));
    assert_eq!(
        error_of(&b.expect(MsgType::ERROR, Duration::from_secs(2))),
        role_request_failed::STALE
    );
    b.send(&want(role::SLAVE, 1));
    assert_eq!(
        role_of(&b.expect(MsgType::ROLE_REPLY, Duration::from_secs(2))).role,
        role::SLAVE
    );
    // A slave may not change the switch.
    b.send(&Message::FlowMod(flow_mod()));
    assert_eq!(
        error_of(&b.expect(MsgType::ERROR, Duration::from_secs(2))),
        bad_request::IS_SLAVE
    );
    let st = status(&sw, &tb);
    assert_eq!(st.role, v1::Role::Secondary as i32, "{st:?}");

    // 400 misses at once: A gets its burst and its rate, the rest is counted as dropped;
    // B, a slave, gets none.
    let p1 = sw.memory_port("br", "p1").expect("p1");
    let frame = {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        f
    };
    let began = Instant::now();
    for _ in 0..10 {
        p1.inject(std::iter::repeat_n(frame.clone(), 40));
        std::thread::sleep(Duration::from_millis(20));
    }
    let got_a = a.drain(Duration::from_millis(1500));
    let elapsed = began.elapsed();
    let ins = got_a
        .iter()
        .filter(|m| m[1] == MsgType::PACKET_IN.0)
        .count() as u64;
    let bound = 25 + 100 * elapsed.as_millis() as u64 / 1000 + 1;
    assert!(
        ins >= 25 && ins <= bound,
        "{ins} packet-ins in {elapsed:?} (at most {bound})"
    );
    assert!(
        b.drain(Duration::from_millis(200))
            .iter()
            .all(|m| m[1] != MsgType::PACKET_IN.0),
        "a slave got packet-ins"
    );
    let st = status(&sw, &ta);
    assert_eq!(st.packet_in_sent, ins, "{st:?}");
    assert!(st.packet_in_sent + st.packet_in_dropped >= 390, "{st:?}");
    assert_eq!(st.role, v1::Role::Primary as i32, "{st:?}");

    // B takes over as master (generation 2): A is demoted and may no longer write.
    b.send(&want(role::MASTER, 2));
    assert_eq!(
        role_of(&b.expect(MsgType::ROLE_REPLY, Duration::from_secs(2))).role,
        role::MASTER
    );
    a.send(&Message::FlowMod(flow_mod()));
    assert_eq!(
        error_of(&a.expect(MsgType::ERROR, Duration::from_secs(2))),
        bad_request::IS_SLAVE
    );
    assert_eq!(status(&sw, &ta).role, v1::Role::Secondary as i32);
}

/// Open vSwitch's fail modes: a standalone bridge whose active controller has been away for
/// three inactivity probes forwards every packet with NORMAL (its flows kept), until the
/// controller is back; a secure one never does.
#[test]
fn standalone_fails_open_without_its_controller_and_secure_does_not() {
    let (_dir, sw, _rt, _stop) = start();
    let p1 = sw.memory_port("br", "p1").expect("p1");
    let p2 = sw.memory_port("br", "p2").expect("p2");
    let frame = {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        f
    };
    let forwarded = |wait_ms: u64| {
        p1.inject([frame.clone()]);
        std::thread::sleep(Duration::from_millis(wait_ms));
        !p2.drain().is_empty()
    };
    // A controller that is not there yet.
    let (l, target) = listener();
    let addr = l.local_addr().expect("addr");
    drop(l);
    sw.set_fail_mode(v1::SetFailModeRequest {
        bridge: "br".into(),
        fail_mode: v1::FailMode::Standalone as i32,
    })
    .expect("standalone");
    let began = Instant::now();
    sw.set_controller(v1::SetControllerRequest {
        bridge: "br".into(),
        controllers: vec![v1::Controller {
            target,
            inactivity_probe_ms: 1000,
            max_backoff_ms: 1000,
            ..Default::default()
        }],
    })
    .expect("set controller");
    assert!(
        !forwarded(200),
        "the empty table forwarded before failing open"
    );
    while !sw.get_bridge("br").expect("bridge").fail_open {
        assert!(
            began.elapsed() < Duration::from_secs(6),
            "never failed open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        began.elapsed() >= Duration::from_millis(2900),
        "failed open after {:?}, before three 1 s probes",
        began.elapsed()
    );
    assert!(
        forwarded(200),
        "failing open, NORMAL did not flood the frame"
    );

    // The controller comes back: the bridge follows its (empty) table again.
    let l = TcpListener::bind(addr).expect("the controller's port again");
    let peer = Peer::accept(&l);
    let deadline = Instant::now() + Duration::from_secs(3);
    while sw.get_bridge("br").expect("bridge").fail_open {
        assert!(
            Instant::now() < deadline,
            "still failing open with a controller"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !forwarded(200),
        "forwarded with the controller back and no flow"
    );

    // Secure: the controller goes and nothing changes.
    sw.set_fail_mode(v1::SetFailModeRequest {
        bridge: "br".into(),
        fail_mode: v1::FailMode::Secure as i32,
    })
    .expect("secure");
    drop(peer);
    drop(l);
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!sw.get_bridge("br").expect("bridge").fail_open);
    assert!(
        !forwarded(200),
        "a secure bridge forwarded without a controller"
    );
}
