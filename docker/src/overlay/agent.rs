//! The agent: the loops that keep this host registered in etcd and its switch matching the
//! cluster. They run in the plugin's process and share [`Overlay`] with the driver.
//!
//! - **lease**: one etcd lease per host (`--lease-ttl`), renewed every third of its TTL;
//!   this host's registrations live under it, so a host that dies or is cut off has its
//!   endpoints expire everywhere within the TTL. Lost (expired) leases are replaced.
//! - **register**: makes etcd hold exactly this host's record and endpoints under the
//!   current lease, comparing what it wants with the watched view (so it notices its keys
//!   expiring, a new lease, a new tunnel address) and retrying what etcd refused.
//! - **watch**: reads `P/view/` at one revision, then watches from the next one; a broken
//!   stream is resumed from the last revision seen (no event missed); a compacted
//!   revision means a full read again.
//! - **program**: computes the flows the view implies ([`flows::desired`]) and writes the
//!   difference to the switch through its gRPC API; what is still right is never touched,
//!   so a restarted agent (reconciliation) causes no gap in traffic.
//! - **vtep**, **health**, **reclaim**: this host's tunnel address (from the switch's
//!   tunnel endpoint on `--vtep-bridge`), etcd's health for `overlay-status`, addresses of
//!   hosts gone longer than `--reclaim-after` given back to the pools.
//!
//! None of these loops is on the data path: when etcd is down the switch keeps its flows
//! and containers keep talking; the loops retry and resync when it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use etcd_client::{EventType, WatchOptions};
use proto::v1;

use crate::overlay::cluster::{ClusterError, host_record};
use crate::overlay::etcd::{CALL_TIMEOUT, EtcdError, Kv};
use crate::overlay::flows::{self, LocalEp, LocalNet};
use crate::overlay::schema::{EndpointRecord, FORMAT};
use crate::overlay::view::Change;
use crate::overlay::{Overlay, nd};
use crate::vswitch::Switch;

/// How often the registrations are compared with the view without being woken.
const REGISTER_PERIOD: Duration = Duration::from_secs(1);
/// How often the flows are recomputed without being woken.
const PROGRAM_PERIOD: Duration = Duration::from_secs(2);
/// How often the flows are read back from the switch (not only from the agent's memory).
const FULL_READ_PERIOD: Duration = Duration::from_secs(30);
/// How many updates go in one write to the switch.
const WRITE_CHUNK: usize = 5000;
/// Pause before retrying after etcd or the switch failed.
const RETRY: Duration = Duration::from_millis(500);

/// Starts every loop of the agent on the current tokio runtime.
pub fn spawn(ov: &Overlay, server: &str) -> Result<(), String> {
    tokio::spawn(lease_loop(ov.clone()));
    tokio::spawn(health_loop(ov.clone()));
    tokio::spawn(register_loop(ov.clone()));
    tokio::spawn(watch_loop(ov.clone()));
    tokio::spawn(program_loop(ov.clone(), Switch::new(server)?));
    tokio::spawn(vtep_loop(ov.clone(), Switch::new(server)?));
    tokio::spawn(reclaim_loop(ov.clone()));
    tokio::spawn(nd::responder_loop(ov.clone(), server.to_string()));
    Ok(())
}

impl Overlay {
    fn etcd_failed(&self, e: &EtcdError) {
        let mut h = self.shared.health.lock();
        if h.etcd_ok {
            tracing::warn!("{e}");
        }
        h.etcd_ok = false;
        h.last_error = Some(e.to_string());
    }

    fn etcd_answered(&self, revision: i64) {
        let mut h = self.shared.health.lock();
        if !h.etcd_ok {
            tracing::info!(revision, "etcd answers");
        }
        h.etcd_ok = true;
        h.last_error = None;
        h.etcd_revision = h.etcd_revision.max(revision);
    }
}

async fn health_loop(ov: Overlay) {
    let probe = format!("{}/health", ov.cluster.keys.prefix());
    loop {
        match ov.cluster.etcd.revision(&probe).await {
            Ok(r) => ov.etcd_answered(r),
            Err(e) => ov.etcd_failed(&e),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn lease_loop(ov: Overlay) {
    let ttl_s = i64::try_from(ov.cfg.lease_ttl.as_secs().max(2)).unwrap_or(10);
    loop {
        let id = match ov.cluster.etcd.grant(ttl_s).await {
            Ok(id) => id,
            Err(e) => {
                ov.etcd_failed(&e);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        tracing::info!(lease = format!("{id:x}"), ttl_s, "lease granted");
        ov.shared.lease.store(id, Ordering::Release);
        ov.shared.republish.notify_one();
        keep_alive(&ov, id, Duration::from_secs(ttl_s.unsigned_abs())).await;
        ov.shared.lease.store(0, Ordering::Release);
        tracing::warn!(
            lease = format!("{id:x}"),
            "lease expired; asking for a new one"
        );
    }
}

/// Renews lease `id` until it is gone: etcd says so, or it could not be renewed for its
/// whole TTL.
async fn keep_alive(ov: &Overlay, id: i64, ttl: Duration) {
    let period = ttl / 3;
    let mut renewed = Instant::now();
    loop {
        let mut lc = ov.cluster.etcd.client().lease_client();
        if let Ok(Ok((mut keeper, mut stream))) =
            tokio::time::timeout(CALL_TIMEOUT, lc.keep_alive(id)).await
        {
            loop {
                let sent = tokio::time::timeout(CALL_TIMEOUT, keeper.keep_alive()).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
                match tokio::time::timeout(CALL_TIMEOUT, stream.message()).await {
                    Ok(Ok(Some(r))) if r.ttl() > 0 => renewed = Instant::now(),
                    Ok(Ok(Some(_))) => return, // etcd says: expired
                    _ => break,
                }
                tokio::time::sleep(period).await;
            }
        }
        if renewed.elapsed() >= ttl {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn register_loop(ov: Overlay) {
    let mut last_lease = 0;
    loop {
        tokio::select! {
            () = ov.shared.republish.notified() => {}
            () = tokio::time::sleep(REGISTER_PERIOD) => {}
        }
        let lease = ov.shared.lease.load(Ordering::Acquire);
        let Ok(vtep) = ov.vtep() else { continue };
        if lease == 0 || ov.shared.health.lock().resyncs == 0 {
            continue;
        }
        match sync_registrations(&ov, lease, vtep, lease != last_lease).await {
            Ok(()) => last_lease = lease,
            Err(e) => {
                tracing::warn!("registering this host's endpoints: {e}");
                ov.shared.health.lock().register_error = Some(e.to_string());
            }
        }
    }
}

/// Makes etcd hold this host's record and exactly its endpoints, under `lease`. With
/// `all`, everything is written again (a new lease).
async fn sync_registrations(
    ov: &Overlay,
    lease: i64,
    vtep: Ipv4Addr,
    all: bool,
) -> Result<(), ClusterError> {
    let me = ov.host().clone();
    let local = ov.shared.local.lock().clone();
    let want_host = host_record(vtep);
    let (have_host, have_eps) = {
        let v = ov.shared.view.lock();
        let eps: BTreeMap<_, _> = v
            .endpoints
            .iter()
            .filter(|((_, h, _), _)| h == &me)
            .map(|((n, _, e), r)| ((n.clone(), e.clone()), r.clone()))
            .collect();
        (v.hosts.get(&me).cloned(), eps)
    };
    if all || have_host.as_ref() != Some(&want_host) {
        ov.cluster.register_host(&want_host, lease).await?;
    }
    let mut wanted = BTreeSet::new();
    let mut first_error = None;
    for (eid, e) in &local.eps {
        let rec = EndpointRecord {
            format: FORMAT,
            mac: e.mac,
            ipv4: e.ipv4,
            ipv6: e.ipv6,
            vtep,
        };
        let k = (e.nkey.clone(), eid.clone());
        if all || have_eps.get(&k) != Some(&rec) {
            // One endpoint refused (its address or MAC address taken meanwhile) does not
            // hold up the others.
            let mut r = Ok(());
            for (pool, ip) in &e.addresses {
                if let Err(e) = ov.ipam.reclaim_own(pool, *ip).await {
                    r = Err(e);
                }
            }
            if r.is_ok() {
                r = ov
                    .cluster
                    .register_endpoint(&e.nkey, eid, &rec, lease)
                    .await;
            }
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        wanted.insert(k);
    }
    for ((nkey, eid), rec) in &have_eps {
        if !wanted.contains(&(nkey.clone(), eid.clone())) {
            ov.cluster.deregister_endpoint(nkey, eid, &rec.mac).await?;
        }
    }
    let pending: Vec<String> = ov.shared.pending_detach.lock().iter().cloned().collect();
    for nkey in pending {
        if local.nets.contains_key(&nkey) {
            ov.shared.pending_detach.lock().remove(&nkey);
            continue;
        }
        ov.cluster.detach(&nkey).await?;
        ov.shared.pending_detach.lock().remove(&nkey);
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    ov.shared.health.lock().register_error = None;
    Ok(())
}

/// Keeps `ov`'s view of the cluster current until the process ends: a full read, then a
/// watch from the next revision, resumed where it broke, read again after a compaction.
/// Public for tests that watch without a switch.
pub async fn watch_loop(ov: Overlay) {
    loop {
        let rev = match resync(&ov).await {
            Ok(r) => r,
            Err(e) => {
                ov.etcd_failed(&e);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut from = rev + 1;
        loop {
            match follow(&ov, from).await {
                Ok(next) => from = next,
                Err(Follow::Compacted) => {
                    tracing::warn!(from, "watch revision compacted: reading everything again");
                    break;
                }
                Err(Follow::Broken(next, why)) => {
                    from = next;
                    ov.shared.health.lock().resumes += 1;
                    tracing::debug!(from, "watch broken ({why}); resuming");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// Reads the whole view at one revision; returns the revision.
async fn resync(ov: &Overlay) -> Result<i64, EtcdError> {
    let prefix = ov.cluster.keys.view();
    let (kvs, rev) = ov.cluster.etcd.range(&prefix, 0, false).await?;
    ov.shared.view.lock().load(&ov.cluster.keys, &kvs, rev);
    ov.shared.health.lock().resyncs += 1;
    ov.etcd_answered(rev);
    tracing::info!(keys = kvs.len(), revision = rev, "cluster view read");
    ov.shared.dirty.notify_one();
    ov.shared.republish.notify_one();
    Ok(rev)
}

/// Why a watch stopped.
enum Follow {
    /// The revision asked for is gone: read everything again.
    Compacted,
    /// The stream broke; resume from this revision.
    Broken(i64, String),
}

/// Watches the view from revision `from`, applying events, until the stream ends.
async fn follow(ov: &Overlay, from: i64) -> Result<i64, Follow> {
    let prefix = ov.cluster.keys.view();
    let mut wc = ov.cluster.etcd.client().watch_client();
    let opts = WatchOptions::new()
        .with_prefix()
        .with_start_revision(from)
        .with_progress_notify();
    let mut stream = match tokio::time::timeout(CALL_TIMEOUT, wc.watch(prefix, Some(opts))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Follow::Broken(from, e.to_string())),
        Err(_) => return Err(Follow::Broken(from, "no answer".into())),
    };
    let mut next = from;
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(Follow::Broken(next, "stream ended".into())),
            Err(e) => return Err(Follow::Broken(next, e.to_string())),
        };
        if msg.compact_revision() > 0 {
            return Err(Follow::Compacted);
        }
        if msg.canceled() {
            return Err(Follow::Broken(next, msg.cancel_reason().to_string()));
        }
        let rev = msg.header().map_or(0, |h| h.revision());
        let changes: Vec<Change> = msg
            .events()
            .iter()
            .filter_map(|ev| {
                let kv = ev.kv()?;
                Some(match ev.event_type() {
                    EventType::Put => Change::Put(Kv::from(kv)),
                    EventType::Delete => Change::Delete(kv.key().to_vec()),
                })
            })
            .collect();
        if !changes.is_empty() {
            let mut v = ov.shared.view.lock();
            for c in &changes {
                v.apply(&ov.cluster.keys, c, rev);
            }
            drop(v);
            ov.shared
                .events
                .fetch_add(changes.len() as u64, Ordering::Relaxed);
            ov.shared.dirty.notify_one();
            ov.shared.republish.notify_one();
        } else if rev > 0 {
            ov.shared.view.lock().revision = rev.max(next - 1);
        }
        next = next.max(rev + 1);
        ov.etcd_answered(rev);
    }
}

async fn program_loop(ov: Overlay, mut sw: Switch) {
    let mut installed: Option<Vec<v1::Flow>> = None;
    let mut last_full = Instant::now();
    loop {
        tokio::select! {
            () = ov.shared.dirty.notified() => {}
            () = tokio::time::sleep(PROGRAM_PERIOD) => {}
        }
        // Events come in bursts: take them together.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if last_full.elapsed() >= FULL_READ_PERIOD {
            installed = None;
        }
        if ov.shared.health.lock().resyncs == 0 {
            continue;
        }
        let full = installed.is_none();
        match program(&ov, &mut sw, installed.take()).await {
            Ok((now, changed)) => {
                installed = Some(now);
                if full {
                    last_full = Instant::now();
                }
                let mut h = ov.shared.health.lock();
                h.program_error = None;
                if changed > 0 {
                    h.programs += 1;
                    tracing::debug!(changed, flows = h.flows, "flows programmed");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let mut h = ov.shared.health.lock();
                if h.program_error.as_deref() != Some(&msg) {
                    tracing::warn!("programming the switch: {msg}");
                }
                h.program_error = Some(msg);
            }
        }
    }
}

/// The switch ports of this host's endpoints and the VXLAN port (made if missing).
async fn port_numbers(
    ov: &Overlay,
    sw: &mut Switch,
    need_vx: bool,
) -> Result<(HashMap<String, u32>, Option<u32>), crate::vswitch::SwitchError> {
    let bridge = &ov.cfg.bridge;
    let mut ports = sw.ports(bridge).await?;
    if need_vx && !ports.iter().any(|p| p.name == ov.cfg.vx_port) {
        let opts = HashMap::from([
            ("remote_ip".to_string(), "flow".to_string()),
            ("key".to_string(), "flow".to_string()),
        ]);
        sw.add_port(bridge, &ov.cfg.vx_port, "vxlan", opts).await?;
        tracing::info!(port = %ov.cfg.vx_port, bridge = %bridge, "VXLAN port added");
        ports = sw.ports(bridge).await?;
    }
    let vx = ports
        .iter()
        .find(|p| p.name == ov.cfg.vx_port)
        .map(|p| p.port_no);
    Ok((ports.into_iter().map(|p| (p.name, p.port_no)).collect(), vx))
}

/// One pass: the flows wanted, against `installed` (`None`: read from the switch).
/// Returns the flows now installed and how many updates were written.
async fn program(
    ov: &Overlay,
    sw: &mut Switch,
    installed: Option<Vec<v1::Flow>>,
) -> Result<(Vec<v1::Flow>, usize), crate::vswitch::SwitchError> {
    let local = ov.shared.local.lock().clone();
    let (ports, vx) = port_numbers(ov, sw, !local.nets.is_empty()).await?;
    let nets: Vec<LocalNet> = local
        .nets
        .iter()
        .map(|(k, n)| LocalNet {
            nkey: k.clone(),
            vni: n.vni,
            gateway: n.gateway,
            queue: n.queue,
        })
        .collect();
    let eps: Vec<LocalEp> = local
        .eps
        .values()
        .filter_map(|e| {
            Some(LocalEp {
                nkey: e.nkey.clone(),
                port: *ports.get(&e.port)?,
                mac: e.mac,
                ipv4: e.ipv4,
            })
        })
        .collect();
    *ov.shared.port_nets.lock() = eps.iter().map(|e| (e.port, e.nkey.clone())).collect();
    let want = match vx {
        Some(vx) => {
            let v = ov.shared.view.lock();
            flows::desired(flows::Inputs {
                vx,
                nets: &nets,
                eps: &eps,
                view: &v,
                me: ov.host(),
            })
        }
        None => Vec::new(),
    };
    let have = match installed {
        Some(h) => h,
        None => sw
            .read_flows(&ov.cfg.bridge, crate::vswitch::COOKIE_BASE, 0xffff << 48)
            .await?
            .into_iter()
            .filter(|f| flows::is_agent_cookie(f.cookie))
            .collect(),
    };
    let (inserts, deletes) = flows::diff(&want, &have);
    let mut updates: Vec<v1::Update> = inserts.iter().map(flows::insert_of).collect();
    updates.extend(deletes.iter().map(flows::delete_of));
    let n = updates.len();
    for chunk in updates.chunks(WRITE_CHUNK) {
        sw.write(&ov.cfg.bridge, chunk.to_vec()).await?;
    }
    ov.shared.health.lock().flows = want.len();
    Ok((want, n))
}

async fn vtep_loop(ov: Overlay, mut sw: Switch) {
    loop {
        let b = &ov.cfg.vtep_bridge;
        let found = match sw.ports(b).await {
            Ok(ports) => ports
                .iter()
                .find(|p| p.r#type == "tunnel-endpoint")
                .and_then(|p| p.options.get("ip"))
                .and_then(|ip| ip.split('/').next()?.parse::<Ipv4Addr>().ok())
                .ok_or_else(|| {
                    format!(
                        "bridge {b} has no tunnel endpoint: give it one with \
                         `flowctl set-tunnel-ip {b} ADDRESS/LEN` (--vtep-bridge)"
                    )
                }),
            Err(e) if e.is_not_found() => Err(format!(
                "--vtep-bridge {b}: no such bridge in the switch (make it, with an underlay \
                 port and `flowctl set-tunnel-ip {b} ADDRESS/LEN`)"
            )),
            Err(e) => Err(e.to_string()),
        };
        let changed = {
            let mut h = ov.shared.health.lock();
            let before = h.vtep;
            match found {
                Ok(ip) => {
                    h.vtep = Some(ip);
                    h.vtep_error = None;
                }
                // A switch that is down keeps the address it had.
                Err(e) if h.vtep.is_some() && e.contains("not reachable") => {}
                Err(e) => {
                    if h.vtep_error.as_deref() != Some(&e) {
                        tracing::warn!("{e}");
                    }
                    h.vtep = None;
                    h.vtep_error = Some(e);
                }
            }
            before != h.vtep
        };
        if changed {
            tracing::info!(vtep = ?ov.shared.health.lock().vtep, "this host's tunnel endpoint");
            ov.shared.republish.notify_one();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn reclaim_loop(ov: Overlay) {
    let period = (ov.cfg.reclaim_after / 4).max(Duration::from_secs(1));
    let mut absent_since: BTreeMap<crate::overlay::schema::HostId, Instant> = BTreeMap::new();
    loop {
        tokio::time::sleep(period).await;
        if ov.shared.health.lock().resyncs == 0 {
            continue;
        }
        let holders = match ov.ipam.holders().await {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!("reclaim: {e}");
                continue;
            }
        };
        {
            let v = ov.shared.view.lock();
            absent_since.retain(|h, _| holders.contains(h) && !v.hosts.contains_key(h));
            for h in holders {
                if &h != ov.host() && !v.hosts.contains_key(&h) {
                    absent_since.entry(h).or_insert_with(Instant::now);
                }
            }
        }
        let dead: BTreeSet<_> = absent_since
            .iter()
            .filter(|(_, t)| t.elapsed() >= ov.cfg.reclaim_after)
            .map(|(h, _)| h.clone())
            .collect();
        if dead.is_empty() {
            continue;
        }
        match ov.ipam.reclaim(|h| dead.contains(h)).await {
            Ok(n) if n > 0 => {
                tracing::info!(addresses = n, hosts = ?dead, "addresses of dead hosts reclaimed");
                ov.shared.health.lock().reclaimed += n as u64;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("reclaim: {e}"),
        }
    }
}
