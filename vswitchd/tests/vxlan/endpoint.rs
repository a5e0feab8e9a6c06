//! Tunnel ports following their endpoint's port and bridge.

use super::*;

/// Whether `show BR` reports port `name` up.
fn link_up(d: &Daemon, bridge: &str, name: &str) -> bool {
    fn find(v: &serde_json::Value, name: &str) -> Option<bool> {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("name").and_then(|n| n.as_str()) == Some(name)
                    && let Some(up) = m.get("link_up").and_then(|u| u.as_bool())
                {
                    return Some(up);
                }
                m.values().find_map(|x| find(x, name))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|x| find(x, name)),
            _ => None,
        }
    }
    let j = d.json(&["show", bridge]);
    find(&j, name).unwrap_or_else(|| panic!("no port {name} in {j}"))
}

/// Waits up to 3 s for port `name` to be reported up (or down).
fn wait_link(d: &Daemon, bridge: &str, name: &str, up: bool) {
    for _ in 0..30 {
        if link_up(d, bridge, name) == up {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "port {name} is not {}: {}",
        if up { "up" } else { "down" },
        d.ok(&["show", bridge])
    );
}

/// A tunnel port configured before its endpoint exists comes up when `set-tunnel-ip`
/// creates it; removing the endpoint's port takes it down (its traffic counted as
/// tunnel_no_endpoint), re-adding brings it back; so does removing and re-creating the
/// endpoint's bridge. The daemon is never restarted; a restart restores it all.
#[test]
fn tunnel_ports_follow_their_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (_ns, [remote, local, hu, uv, hl, lv]) = remote_and_local("ep");
    kernel_peer(&remote, &uv, "172.34.0.2", "172.34.0.1", "42", "10.34.0.2");
    run(
        "ip",
        &["-n", &local, "addr", "add", "10.34.0.1/24", "dev", &lv],
    );
    run("ip", &["-n", &local, "link", "set", &lv, "mtu", "1450"]);
    let vx = format!("ve{id}");
    // The tunnel port first: accepted, down.
    d.ok(&[
        "add-port",
        "br0",
        &vx,
        "type=vxlan",
        "remote_ip=172.34.0.2",
        "key=42",
    ]);
    assert!(!link_up(&d, "br0", &vx), "up without an endpoint");
    d.ok(&["add-port", "br0", &hl, "type=afxdp"]);
    d.ok(&["add-flow", "br0", "priority=0,actions=normal"]);
    // A bad option is still refused, endpoint or not.
    let bad = d.fc(&[
        "add-port",
        "br0",
        "vbad",
        "type=vxlan",
        "remote_ip=flow",
        "key=flowy",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("port.options.key"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let setup_underlay = |d: &Daemon| {
        d.ok(&["add-br", "br1"]);
        d.ok(&["set-pmd-cpus", "br1", "0"]);
        d.ok(&["add-port", "br1", &hu, "type=afxdp"]);
    };
    setup_underlay(&d);
    d.ok(&["set-tunnel-ip", "br1", "172.34.0.1/24"]);
    wait_link(&d, "br0", &vx, true);
    ping_from(&local, "10.34.0.2", &d);

    // The endpoint's port goes: the tunnel port is down at once, its traffic counted.
    d.ok(&["del-port", "br1", "br1-tep"]);
    assert!(!link_up(&d, "br0", &vx), "still up without its endpoint");
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &local,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "10.34.0.2",
        ])
        .output()
        .expect("ping");
    assert!(
        !o.status.success(),
        "ping crossed a tunnel with no endpoint"
    );
    let j = d.json(&["tnl-neigh-show"]);
    assert!(
        j["no_endpoint_drops"].as_u64().unwrap_or(0) >= 1,
        "tunnel_no_endpoint not counted: {j}"
    );
    assert!(d.ok(&["tnl-neigh-show"]).contains("tunnel_no_endpoint="));
    // Back again.
    d.ok(&["set-tunnel-ip", "br1", "172.34.0.1/24"]);
    wait_link(&d, "br0", &vx, true);
    ping_from(&local, "10.34.0.2", &d);

    // The whole underlay bridge goes, then comes back.
    d.ok(&["del-br", "br1"]);
    assert!(!link_up(&d, "br0", &vx));
    setup_underlay(&d);
    d.ok(&["set-tunnel-ip", "br1", "172.34.0.1/24"]);
    wait_link(&d, "br0", &vx, true);
    ping_from(&local, "10.34.0.2", &d);

    // A restart restores both bridges (br0, holding the tunnel port, comes first).
    d.kill9();
    let d = Daemon::start(dir.path());
    wait_link(&d, "br0", &vx, true);
    ping_from(&local, "10.34.0.2", &d);
}
