//! The overlay's cluster state against a real etcd (one member on loopback, started once
//! for this binary): hosts racing to define one network get one VNI; hosts racing for
//! addresses never get the same one (many rounds); a conflicting definition is refused
//! naming the difference; registrations expire with their lease; the agent's watch
//! resumes after a cut without missing an event and reads everything again after a
//! compaction; addresses of dead hosts are reclaimed and nobody else's.
//!
//! Needs `etcd-server` and `etcd-client`. About 20 s.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use vswitch_docker::api::{Cidr, IpamData};
use vswitch_docker::overlay::cluster::{Cluster, ClusterError};
use vswitch_docker::overlay::etcd::{Etcd, EtcdConfig};
use vswitch_docker::overlay::ipam::Ipam;
use vswitch_docker::overlay::schema::{EndpointRecord, FORMAT, Keys, NetworkDef};
use vswitch_docker::overlay::{Overlay, OverlayConfig, agent};

async fn host(endpoints: &[String], prefix: &str, name: &str) -> Cluster {
    let etcd = Etcd::connect(&EtcdConfig {
        endpoints: endpoints.to_vec(),
        ..EtcdConfig::default()
    })
    .await
    .unwrap();
    Cluster {
        etcd,
        keys: Keys::new(prefix).unwrap(),
        host: name.parse().unwrap(),
    }
}

fn ipam(c: &Cluster) -> Ipam {
    Ipam {
        cluster: c.clone(),
        range: "10.192.0.0/12".parse().unwrap(),
    }
}

fn def(pool: &str, mtu: u32) -> NetworkDef {
    let pool: Cidr = pool.parse().unwrap();
    let gw = Cidr {
        addr: match pool.addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 1).into()),
            a => a,
        },
        prefix: pool.prefix,
    };
    NetworkDef {
        format: FORMAT,
        vni: 0,
        ipv4: vec![IpamData {
            pool,
            gateway: Some(gw),
            aux: Default::default(),
        }],
        ipv6_data: Vec::new(),
        ipv6: false,
        internal: false,
        mtu,
        created_by: "x".parse().unwrap(),
    }
}

/// Two hosts define the same network at once, twenty times over: one VNI each time, a
/// different one per network.
async fn define_races(ep: &[String]) {
    let (a, b) = (host(ep, "/t1", "a").await, host(ep, "/t1", "b").await);
    let mut vnis = BTreeSet::new();
    for round in 0..20 {
        let d = def(&format!("10.{round}.0.0/16"), 1450);
        let (ra, rb) = tokio::join!(a.define_network(&d), b.define_network(&d));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.vni, rb.vni, "round {round}: one VNI");
        assert_eq!(ra.created_by, rb.created_by);
        assert!(vnis.insert(ra.vni), "round {round}: VNI {} reused", ra.vni);
    }
    // The same network with another MTU: refused, naming the difference.
    let e = b
        .define_network(&def("10.3.0.0/16", 1400))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ClusterError::Conflict(_)), "{msg}");
    assert!(
        msg.contains("vswitch.mtu=1450 (this request: 1400)"),
        "{msg}"
    );
    // Overlapping another network's pool: refused.
    let e = a
        .define_network(&def("10.3.128.0/17", 1450))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("overlaps 10.3.0.0/16"), "{e}");
    // The last host to leave removes the definition and frees the VNI.
    a.attach("10.3.0.0_16").await.unwrap();
    b.attach("10.3.0.0_16").await.unwrap();
    assert!(!a.detach("10.3.0.0_16").await.unwrap());
    assert!(b.detach("10.3.0.0_16").await.unwrap());
    assert!(
        a.etcd
            .get(&a.keys.network("10.3.0.0_16"))
            .await
            .unwrap()
            .is_none()
    );
}

/// Two hosts take 30 addresses each from one pool at the same time, five rounds: no
/// address twice; one gateway.
async fn address_races(ep: &[String]) {
    let (a, b) = (host(ep, "/t2", "a").await, host(ep, "/t2", "b").await);
    let (ia, ib) = (Arc::new(ipam(&a)), Arc::new(ipam(&b)));
    // Both hosts ask for the same new pool at once, twenty times: both get it.
    for round in 0..20 {
        let p: Cidr = format!("10.240.{round}.0/24").parse().unwrap();
        let (x, y) = tokio::join!(
            ia.request_pool(Some(p), None, false),
            ib.request_pool(Some(p), None, false)
        );
        assert_eq!((x.unwrap(), y.unwrap()), (p, p), "round {round}");
        ia.release_pool(&p).await.unwrap();
        ib.release_pool(&p).await.unwrap();
    }
    let pool: Cidr = "10.250.0.0/24".parse().unwrap();
    let (pa, pb) = tokio::join!(
        ia.request_pool(Some(pool), None, false),
        ib.request_pool(Some(pool), None, false)
    );
    assert_eq!((pa.unwrap(), pb.unwrap()), (pool, pool));
    let (ga, gb) = tokio::join!(
        ia.request_gateway(&pool, None),
        ib.request_gateway(&pool, None)
    );
    assert_eq!(ga.unwrap(), gb.unwrap());
    for round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..60 {
            let ipam = if i % 2 == 0 {
                Arc::clone(&ia)
            } else {
                Arc::clone(&ib)
            };
            tasks.push(tokio::spawn(async move {
                ipam.request_address(&pool, None, None).await
            }));
        }
        let mut got = BTreeSet::new();
        for t in tasks {
            let a = t.await.unwrap().unwrap();
            assert!(
                got.insert(a.addr),
                "round {round}: {} handed out twice",
                a.addr
            );
        }
        assert_eq!(got.len(), 60);
        for ip in got {
            ia.release_address(&pool, ip).await.unwrap();
            ib.release_address(&pool, ip).await.unwrap();
        }
    }
    // Named pools: the second host gets the first one's.
    let n1 = ia.request_pool(None, Some("web"), false).await.unwrap();
    let n2 = ib.request_pool(None, Some("web"), false).await.unwrap();
    assert_eq!(n1, n2);
    assert_eq!(n1.prefix, 24);
    ia.release_pool(&pool).await.unwrap();
    ib.release_pool(&pool).await.unwrap();
    assert!(
        a.etcd.get(&a.keys.pool(&pool)).await.unwrap().is_none(),
        "last release removes it"
    );
}

/// A host's registrations go with its lease.
async fn lease_expiry(ep: &[String]) {
    let c = host(ep, "/t3", "c").await;
    let lease = c.etcd.grant(2).await.unwrap();
    let rec = EndpointRecord {
        format: FORMAT,
        mac: "02:42:0a:00:00:05".parse().unwrap(),
        ipv4: Some("10.0.0.5".parse().unwrap()),
        ipv6: None,
        vtep: "172.16.0.3".parse().unwrap(),
    };
    let eid = "abcd".parse().unwrap();
    c.register_endpoint("10.0.0.0_24", &eid, &rec, lease)
        .await
        .unwrap();
    let key = c.keys.endpoint("10.0.0.0_24", &c.host, &eid);
    assert!(c.etcd.get(&key).await.unwrap().is_some());
    // Another endpoint with the same MAC on the same network is refused.
    let e = c
        .register_endpoint("10.0.0.0_24", &"beef".parse().unwrap(), &rec, lease)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is used by endpoint abcd"), "{e}");
    let t = Instant::now();
    while c.etcd.get(&key).await.unwrap().is_some() {
        assert!(t.elapsed() < Duration::from_secs(5), "not expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "registration expired {:?} after the last renewal (TTL 2 s)",
        t.elapsed()
    );
    assert!(
        c.etcd
            .get(&c.keys.mac("10.0.0.0_24", &rec.mac))
            .await
            .unwrap()
            .is_none()
    );
}

/// A TCP forwarder to etcd that the test can cut (every connection dropped, new ones
/// refused) and restore.
async fn proxy(to: String) -> (String, watch::Sender<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = l.accept().await else {
                continue;
            };
            if *rx.borrow() {
                continue;
            }
            let to = to.clone();
            let mut cut = rx.clone();
            tokio::spawn(async move {
                let Ok(mut out) = TcpStream::connect(to.trim_start_matches("http://")).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                    _ = cut.wait_for(|c| *c) => {}
                }
            });
        }
    });
    (addr, tx)
}

fn overlay(c: Cluster) -> Overlay {
    Overlay {
        ipam: ipam(&c),
        cluster: c,
        cfg: OverlayConfig {
            vtep_bridge: "none".into(),
            bridge: "none".into(),
            vx_port: "none".into(),
            lease_ttl: Duration::from_secs(10),
            reclaim_after: Duration::from_secs(60),
        },
        shared: Arc::default(),
    }
}

async fn wait_view(ov: &Overlay, truth: &Cluster, what: &str) {
    let t = Instant::now();
    loop {
        let (kvs, _) = truth
            .etcd
            .range(&truth.keys.view(), 0, false)
            .await
            .unwrap();
        let mut want = vswitch_docker::overlay::view::View::default();
        want.load(&truth.keys, &kvs, 0);
        if ov.shared.view.lock().endpoints == want.endpoints {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{what}: the view never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put_endpoints(c: &Cluster, from: u8, n: u8) {
    for i in from..from + n {
        let rec = EndpointRecord {
            format: FORMAT,
            mac: format!("02:42:0a:00:01:{i:02x}").parse().unwrap(),
            ipv4: Some(format!("10.0.1.{i}").parse().unwrap()),
            ipv6: None,
            vtep: "172.16.0.9".parse().unwrap(),
        };
        let eid = format!("{i:02x}").parse().unwrap();
        c.register_endpoint("10.0.0.0_16", &eid, &rec, 0)
            .await
            .unwrap();
    }
}

/// The agent's watch: no event missed across a cut, a full read after a compaction.
async fn watch_resumes_and_resyncs(ep: &[String]) {
    let (url, cut) = proxy(ep[0].clone()).await;
    let writer = host(ep, "/t4", "w").await;
    let ov = overlay(host(&[url], "/t4", "me").await);
    tokio::spawn(agent::watch_loop(ov.clone()));
    put_endpoints(&writer, 1, 5).await;
    wait_view(&ov, &writer, "first events").await;
    assert_eq!(ov.shared.health.lock().resyncs, 1);
    // Cut: changes meanwhile arrive when the watch resumes.
    cut.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    put_endpoints(&writer, 10, 5).await;
    writer
        .deregister_endpoint(
            "10.0.0.0_16",
            &"01".parse().unwrap(),
            &"02:42:0a:00:01:01".parse().unwrap(),
        )
        .await
        .unwrap();
    cut.send(false).unwrap();
    wait_view(&ov, &writer, "after a cut").await;
    let h = ov.shared.health.lock().clone();
    assert!(
        h.resumes >= 1 && h.resyncs == 1,
        "resumed, not re-read: {h:?}"
    );
    // Cut, change, compact: the revision to resume from is gone, everything is read again.
    cut.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    put_endpoints(&writer, 20, 5).await;
    let rev = writer.etcd.revision("/t4/x").await.unwrap();
    writer.etcd.client().compact(rev, None).await.unwrap();
    cut.send(false).unwrap();
    wait_view(&ov, &writer, "after a compaction").await;
    let t = Instant::now();
    while ov.shared.health.lock().resyncs < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no full read after the compaction"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Addresses of a host gone (no host record) are freed; a live host's are kept.
async fn reclaim(ep: &[String]) {
    let (live, dead) = (host(ep, "/t5", "live").await, host(ep, "/t5", "dead").await);
    let pool: Cidr = "10.251.0.0/24".parse().unwrap();
    let (il, id) = (ipam(&live), ipam(&dead));
    il.request_pool(Some(pool), None, false).await.unwrap();
    id.request_pool(Some(pool), None, false).await.unwrap();
    let lease = live.etcd.grant(30).await.unwrap();
    live.register_host(
        &vswitch_docker::overlay::cluster::host_record("172.16.0.1".parse().unwrap()),
        lease,
    )
    .await
    .unwrap();
    for _ in 0..3 {
        il.request_address(&pool, None, None).await.unwrap();
        id.request_address(&pool, None, None).await.unwrap();
    }
    let holders = il.holders().await.unwrap();
    assert_eq!(holders.len(), 2);
    // Called with every host dead, only the one without a host record loses its addresses.
    assert_eq!(il.reclaim(|_| true).await.unwrap(), 3);
    let (left, _) = live
        .etcd
        .range(&live.keys.addrs(Some(&pool)), 0, false)
        .await
        .unwrap();
    assert_eq!(left.len(), 3);
    assert_eq!(il.holders().await.unwrap().len(), 1);
}

#[test]
fn cluster_state_in_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = common::etcd::Cluster::loopback(dir.path());
    let ep = etcd.endpoints();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (name, t) in [
        (
            "define races",
            Box::pin(define_races(&ep)) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
        ),
        ("address races", Box::pin(address_races(&ep))),
        ("lease expiry", Box::pin(lease_expiry(&ep))),
        ("watch", Box::pin(watch_resumes_and_resyncs(&ep))),
        ("reclaim", Box::pin(reclaim(&ep))),
    ] {
        let start = Instant::now();
        rt.block_on(t);
        eprintln!("{name}: {:?}", start.elapsed());
    }
}
