//! The host's side of an endpoint: veth pairs, the gateway's addresses, and (until the
//! switch has its own NAT) the kernel's masquerade rules.
//!
//! How: iproute2's `ip`, `ethtool` and `iptables`, run as commands, and `/sys/class/net`
//! for reading. Each operation is idempotent (re-running it after a crash is harmless) and
//! its error names the command and what the command said. Interfaces are found by the
//! deterministic names of [`crate::names`].

use std::path::Path;

use tokio::process::Command;

use crate::api::{Cidr, Mac};

/// A host command that failed.
#[derive(Debug, thiserror::Error)]
#[error("{command}: {message}")]
pub struct HostError {
    /// The command line.
    pub command: String,
    /// Its error output, or why it could not run.
    pub message: String,
}

async fn run(cmd: &str, args: &[&str]) -> Result<String, HostError> {
    let line = format!("{cmd} {}", args.join(" "));
    let out = Command::new(cmd)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| HostError {
            command: line.clone(),
            message: format!("{e} (the plugin needs iproute2, ethtool and iptables on PATH)"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HostError {
            command: line,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// True if interface `name` exists in the host's namespace.
pub fn exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The interface's index, `None` when it does not exist.
pub fn ifindex(name: &str) -> Option<u32> {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Every interface of the host's namespace whose name satisfies `owned`.
pub fn links(owned: impl Fn(&str) -> bool) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| owned(n))
        .collect()
}

/// Creates the veth pair `outer` (stays in the host, becomes the switch's port) and
/// `inner` (Docker moves it into the container) with the container's MAC address, both up
/// to `mtu`. A leftover pair of the same names is replaced.
///
/// The inner end's transmit checksum offload is turned off: a veth leaves TCP/UDP
/// checksums to be completed by whoever receives the frame, and a userspace switch that
/// reads frames from the outer end forwards them as they are.
pub async fn create_veth(
    outer: &str,
    inner: &str,
    mac: Mac,
    mtu: Option<u32>,
) -> Result<(), HostError> {
    delete_link(outer).await?;
    delete_link(inner).await?;
    let mac = mac.to_string();
    let mtu = mtu.map(|m| m.to_string());
    let mut args = vec!["link", "add", outer];
    if let Some(m) = &mtu {
        args.extend(["mtu", m]);
    }
    args.extend(["type", "veth", "peer", "name", inner, "address", &mac]);
    if let Some(m) = &mtu {
        args.extend(["mtu", m]);
    }
    run("ip", &args).await?;
    let rest = async {
        run("ethtool", &["-K", inner, "tx", "off"]).await?;
        keep_out_of_host_stack(outer)?;
        run("ip", &["link", "set", outer, "up"]).await?;
        Ok(())
    };
    if let Err(e) = rest.await {
        let _ = delete_link(outer).await;
        return Err(e);
    }
    Ok(())
}

/// Keeps the host's IP stack off the outer end of a veth. A packet socket only reads
/// copies: the kernel still receives every frame the container sends, so without this the
/// host would answer the container's ARP for the gateway with the veth's own MAC address
/// and then route the container's traffic itself, from an interface no isolation rule
/// names. Off: ARP replies (`arp_ignore=8`), IPv4 forwarding of what arrives on it, IPv6
/// altogether (no link-local address, no neighbour discovery).
fn keep_out_of_host_stack(outer: &str) -> Result<(), HostError> {
    for (path, value) in [
        (format!("/proc/sys/net/ipv4/conf/{outer}/arp_ignore"), "8"),
        (format!("/proc/sys/net/ipv4/conf/{outer}/forwarding"), "0"),
        (format!("/proc/sys/net/ipv6/conf/{outer}/disable_ipv6"), "1"),
    ] {
        std::fs::write(&path, value).map_err(|e| HostError {
            command: format!("echo {value} > {path}"),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// Deletes interface `name` (with its veth peer); a missing interface is not an error.
pub async fn delete_link(name: &str) -> Result<(), HostError> {
    if !exists(name) {
        return Ok(());
    }
    match run("ip", &["link", "del", name]).await {
        Ok(_) => Ok(()),
        Err(_) if !exists(name) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Configures the gateway interface: MAC address, MTU, addresses, up. The MAC address is
/// fixed, so containers' neighbour entries for the gateway stay right when a restarted
/// switch re-creates the device.
pub async fn configure_gateway(
    name: &str,
    mac: Mac,
    addrs: &[Cidr],
    mtu: Option<u32>,
) -> Result<(), HostError> {
    run("ip", &["link", "set", name, "address", &mac.to_string()]).await?;
    if let Some(m) = mtu {
        run("ip", &["link", "set", name, "mtu", &m.to_string()]).await?;
    }
    for a in addrs {
        let a = a.to_string();
        if a.contains(':') {
            run("ip", &["-6", "addr", "replace", &a, "dev", name, "nodad"]).await?;
        } else {
            run("ip", &["addr", "replace", &a, "dev", name]).await?;
        }
    }
    run("ip", &["link", "set", name, "up"]).await?;
    Ok(())
}

/// Routes the host's traffic for a network's external address `a` through its gateway
/// interface, to `mac` (the switch's address for it), so the host reaches the network's
/// published ports through the switch's hairpin NAT. Goes with the interface.
pub async fn route_external(gw: &str, a: std::net::Ipv4Addr, mac: Mac) -> Result<(), HostError> {
    let a = a.to_string();
    run("ip", &["route", "replace", &format!("{a}/32"), "dev", gw]).await?;
    run(
        "ip",
        &[
            "neigh",
            "replace",
            &a,
            "lladdr",
            &mac.to_string(),
            "dev",
            gw,
            "nud",
            "permanent",
        ],
    )
    .await?;
    Ok(())
}

/// The comment marking the masquerade rules of one network.
fn comment(tag: &str, network: &str) -> String {
    format!("vswitch-docker:{tag}:{network}")
}

/// The kernel's rules for a network with a gateway: MASQUERADE of its pools when leaving
/// by another interface than its gateway; FORWARD accepts for traffic from and back to it
/// (dockerd may have set the FORWARD policy to DROP); and, topmost, a DROP of whatever it
/// sends towards another network's gateway (`{tag}g+`), since the host routes between
/// gateways and networks must stay isolated. In insertion order: FORWARD rules are
/// inserted at the top, so the DROP, inserted last, is checked first. Temporary: the
/// switch's own conntrack/NAT takes the NAT part over once the datapath has it.
fn masquerade_rules(tag: &str, network: &str, gw: &str, pools: &[Cidr]) -> Vec<Vec<String>> {
    let c = comment(tag, network);
    let others = format!("{tag}g+");
    let mut rules = Vec::new();
    for p in pools {
        let p = p.to_string();
        rules.push(
            [
                "-t",
                "nat",
                "POSTROUTING",
                "-s",
                &p,
                "!",
                "-o",
                gw,
                "-m",
                "comment",
                "--comment",
                &c,
                "-j",
                "MASQUERADE",
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    rules.push(
        [
            "-t",
            "filter",
            "FORWARD",
            "-i",
            gw,
            "-m",
            "comment",
            "--comment",
            &c,
            "-j",
            "ACCEPT",
        ]
        .map(String::from)
        .to_vec(),
    );
    rules.push(
        [
            "-t",
            "filter",
            "FORWARD",
            "-o",
            gw,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-m",
            "comment",
            "--comment",
            &c,
            "-j",
            "ACCEPT",
        ]
        .map(String::from)
        .to_vec(),
    );
    rules.push(
        [
            "-t",
            "filter",
            "FORWARD",
            "-i",
            gw,
            "-o",
            &others,
            "-m",
            "comment",
            "--comment",
            &c,
            "-j",
            "DROP",
        ]
        .map(String::from)
        .to_vec(),
    );
    rules
}

/// Installs the rules of a network (all again, in order, if any is missing) and turns
/// IPv4 forwarding on.
pub async fn masquerade_on(
    tag: &str,
    network: &str,
    gw: &str,
    pools: &[Cidr],
) -> Result<(), HostError> {
    let rules = masquerade_rules(tag, network, gw, pools);
    let mut complete = true;
    for r in &rules {
        let (table, rest) = r.split_at(2);
        let mut check: Vec<&str> = table.iter().map(String::as_str).collect();
        check.push("-C");
        check.extend(rest.iter().map(String::as_str));
        if run("iptables", &check).await.is_err() {
            complete = false;
            break;
        }
    }
    if !complete {
        masquerade_prune(tag, |n| n != network).await?;
        for r in &rules {
            let (table, rest) = r.split_at(2);
            let mut add: Vec<&str> = table.iter().map(String::as_str).collect();
            add.push(if rest[0] == "FORWARD" { "-I" } else { "-A" });
            add.extend(rest.iter().map(String::as_str));
            run("iptables", &add).await?;
        }
    }
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| HostError {
        command: "echo 1 > /proc/sys/net/ipv4/ip_forward".into(),
        message: e.to_string(),
    })
}

/// Removes every masquerade rule of this plugin (`tag`) whose network `keep` rejects.
pub async fn masquerade_prune(tag: &str, keep: impl Fn(&str) -> bool) -> Result<(), HostError> {
    let marker = format!("vswitch-docker:{tag}:");
    for (table, chain) in [("nat", "POSTROUTING"), ("filter", "FORWARD")] {
        let listing = run("iptables", &["-t", table, "-S", chain]).await?;
        for line in listing.lines() {
            let Some(pos) = line.find(&marker) else {
                continue;
            };
            let network: String = line[pos + marker.len()..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            if keep(&network) {
                continue;
            }
            // `-A CHAIN spec...` becomes `-D CHAIN spec...`; the comment is one word.
            let Some(spec) = line.strip_prefix("-A ") else {
                continue;
            };
            let mut args = vec!["-t", table, "-D"];
            args.extend(spec.split_whitespace().map(|w| w.trim_matches('"')));
            run("iptables", &args).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masquerade_rules_are_tagged_per_network() {
        let pools = ["172.30.0.0/16".parse().unwrap()];
        let r = masquerade_rules("vd", "ab12", "vdgab12", &pools);
        assert_eq!(r.len(), 4);
        assert!(r[3].contains(&"vdg+".to_string()) && r[3].contains(&"DROP".to_string()));
        for rule in &r {
            assert!(
                rule.contains(&"vswitch-docker:vd:ab12".to_string()),
                "{rule:?}"
            );
        }
        assert!(r[0].contains(&"MASQUERADE".to_string()));
        assert!(r[0].contains(&"172.30.0.0/16".to_string()));
    }
}
