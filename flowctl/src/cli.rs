//! The command line: global options and one subcommand per ovs-vsctl / ovs-ofctl command,
//! with the same names and argument order (`add-flow BR FLOW`, `del-port BR PORT`, ...).
//!
//! Clap rejects malformed command lines with exit code 2 before anything is sent; the
//! flow, match, meter and group arguments are parsed later, by the commands, with the
//! shared `proto::flow_text` parsers (also exit code 2 on error).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Default control socket of vswitchd.
pub const DEFAULT_SERVER: &str = "unix:/run/vswitch/vswitchd.sock";

/// Environment variable naming the server when `--server` is absent.
pub const SERVER_ENV: &str = "FLOWCTL_SERVER";

/// Updates per Write request of `add-flows` unless `--batch` says otherwise.
pub const FLOWS_PER_WRITE: usize = 5000;

/// flowctl: configure and inspect the userspace virtual switch (ovs-vsctl and ovs-ofctl
/// commands over the vswitch.v1 gRPC API).
#[derive(Debug, Parser)]
#[command(name = "flowctl", version, about, long_about = None)]
pub struct Cli {
    /// Switch to talk to: `unix:PATH` or `https://HOST:PORT` [env: FLOWCTL_SERVER]
    /// [default: unix:/run/vswitch/vswitchd.sock].
    #[arg(long, global = true, value_name = "ADDR")]
    pub server: Option<String>,

    /// PEM file of the CA that signed the switch's certificate (https only). Without it
    /// the system roots are used.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate for mutual TLS (with --tls-key).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Output format of read commands.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// del-br, del-port: succeed when the bridge or port does not exist.
    #[arg(long, global = true)]
    pub if_exists: bool,

    /// mod-flows, del-flows: select flows by exact match and priority.
    #[arg(long, global = true)]
    pub strict: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ovs-vsctl / ovs-ofctl style text.
    Text,
    /// One JSON document (for `monitor`, one JSON object per line).
    Json,
}

/// Which frames `capture` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptureDirection {
    /// Frames the port received.
    Rx,
    /// Frames the switch sent to the port.
    Tx,
    /// Both.
    Both,
}

/// One command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a bridge: `add-br BR [fail_mode=standalone|secure] [datapath_id=N]`
    /// (`other_config:datapath-id=HEX`, as ovs-vsctl spells it, works too). Standalone (the
    /// default) starts with `priority=0,actions=NORMAL`; secure starts empty, for a
    /// controller.
    AddBr {
        /// Bridge name.
        bridge: String,
        /// Settings.
        settings: Vec<String>,
    },
    /// Delete a bridge with its ports, flows, meters and groups.
    DelBr {
        /// Bridge name.
        bridge: String,
    },
    /// List the bridges, one name per line.
    ListBr,
    /// Add a port: `add-port BR PORT [type=T] [ofport_request=N] [KEY=VALUE...]`.
    AddPort {
        /// Bridge name.
        bridge: String,
        /// Port (interface) name.
        port: String,
        /// `type=T`, `ofport_request=N` and type-specific options `KEY=VALUE`
        /// (`options:KEY=VALUE` is accepted too).
        settings: Vec<String>,
    },
    /// Remove a port.
    DelPort {
        /// Bridge name.
        bridge: String,
        /// Port name.
        port: String,
    },
    /// Set (or with --remove, delete) port options: `set-port BR PORT KEY=VALUE...`.
    SetPort {
        /// Bridge name.
        bridge: String,
        /// Port name.
        port: String,
        /// Options to add or overwrite (`options:KEY=VALUE` is accepted too).
        options: Vec<String>,
        /// Option keys to remove (repeatable).
        #[arg(long = "remove", value_name = "KEY")]
        remove: Vec<String>,
    },
    /// Change a port's OpenFlow configuration, as `ovs-ofctl mod-port`: `mod-port BR PORT
    /// up|down|receive|no-receive|forward|no-forward|packet-in|no-packet-in`. Lasts while
    /// the switch runs.
    ModPort {
        /// Bridge name.
        bridge: String,
        /// Port name.
        port: String,
        /// What to change.
        action: String,
    },
    /// Describe one bridge, or every bridge, with its ports.
    Show {
        /// Bridge name; every bridge when absent.
        bridge: Option<String>,
    },

    /// Add one flow.
    AddFlow {
        /// Bridge name.
        bridge: String,
        /// Flow in ovs-ofctl syntax, e.g. `priority=100,ip,nw_dst=10.0.0.0/24,actions=output:2`.
        flow: String,
    },
    /// Add the flows of a file (`-` = stdin), one per line, atomically per batch.
    AddFlows {
        /// Bridge name.
        bridge: String,
        /// File of flows; blank lines and `#` comments are ignored.
        file: String,
        /// Flows per Write (each batch is all-or-nothing and acknowledged once durable).
        #[arg(long, default_value_t = FLOWS_PER_WRITE,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        batch: usize,
    },
    /// Change the actions of the flows a flow string selects.
    ModFlows {
        /// Bridge name.
        bridge: String,
        /// Match (with `table=`, `cookie=X/MASK`, `priority=` for --strict) and new actions.
        flow: String,
    },
    /// Delete the flows a match selects (all flows when absent).
    DelFlows {
        /// Bridge name.
        bridge: String,
        /// Match; empty = every flow.
        #[arg(default_value = "")]
        r#match: String,
    },
    /// Print flows with their counters, one per line (re-readable by add-flows).
    DumpFlows {
        /// Bridge name.
        bridge: String,
        /// Match; empty = every flow.
        #[arg(default_value = "")]
        r#match: String,
        /// Print without counters (`format_flow` form).
        #[arg(long)]
        no_stats: bool,
    },

    /// Add a meter: `meter=1,kbps,bands=type=drop,rate=1000`.
    AddMeter {
        /// Bridge name.
        bridge: String,
        /// Meter in ovs-ofctl syntax.
        meter: String,
    },
    /// Replace a meter.
    ModMeter {
        /// Bridge name.
        bridge: String,
        /// Meter in ovs-ofctl syntax.
        meter: String,
    },
    /// Delete a meter by id (`N` or `meter=N`).
    DelMeter {
        /// Bridge name.
        bridge: String,
        /// Meter id.
        id: String,
    },
    /// Print the meters.
    DumpMeters {
        /// Bridge name.
        bridge: String,
    },
    /// Print meter counters.
    MeterStats {
        /// Bridge name.
        bridge: String,
        /// Meter id (`N` or `meter=N`); every meter when absent.
        id: Option<String>,
    },

    /// Add a group: `group_id=1,type=all,bucket=output:1,bucket=output:2`.
    AddGroup {
        /// Bridge name.
        bridge: String,
        /// Group in ovs-ofctl syntax.
        group: String,
    },
    /// Replace a group.
    ModGroup {
        /// Bridge name.
        bridge: String,
        /// Group in ovs-ofctl syntax.
        group: String,
    },
    /// Delete one group (`group_id=ID`) or every group.
    DelGroups {
        /// Bridge name.
        bridge: String,
        /// `group_id=ID` (or `ID`).
        group: Option<String>,
    },
    /// Print the groups.
    DumpGroups {
        /// Bridge name.
        bridge: String,
    },
    /// Print group counters.
    #[command(alias = "dump-group-stats")]
    GroupStats {
        /// Bridge name.
        bridge: String,
        /// `group_id=ID` (or `ID`); every group when absent.
        group: Option<String>,
    },

    /// Print port counters.
    DumpPorts {
        /// Bridge name.
        bridge: String,
        /// Port number, name or LOCAL; every port when absent.
        port: Option<String>,
    },
    /// Give bridge BR the switch's tunnel endpoint address on the underlay (adds, or
    /// replaces, its `BR-tep` port of type tunnel-endpoint): `IP/PREFIX [gw=IP] [mtu=N]`.
    SetTunnelIp {
        /// Bridge name (the one whose ports reach the underlay).
        bridge: String,
        /// A.B.C.D/PREFIX.
        ip: String,
        /// `gw=IP`, `mtu=N`.
        settings: Vec<String>,
    },
    /// Print the tunnel endpoints, their resolved next hops and tunnel drops.
    TnlNeighShow,
    /// Print egress queue counters (ports with `qos-max-rate` and `queue.N` options).
    QueueStats {
        /// Bridge name.
        bridge: String,
        /// Port number or name; every port with queues when absent.
        port: Option<String>,
        /// Queue id; every queue when absent.
        queue: Option<u32>,
    },
    /// Print the counters of the tables that have flows or lookups.
    DumpTables {
        /// Bridge name.
        bridge: String,
    },
    /// Print the learned MAC table.
    FdbShow {
        /// Bridge name.
        bridge: String,
    },
    /// Print the MAC table's counters: entries, learned, moved, evicted, aged.
    FdbStatsShow {
        /// Bridge name.
        bridge: String,
    },
    /// Print the connections of a bridge's tracker (all bridges without BR), as
    /// `ovs-appctl dpctl/dump-conntrack`: `dump-conntrack [BR] [zone=N]`.
    DumpConntrack {
        /// `BR` and/or `zone=N`.
        args: Vec<String>,
        /// Show each connection's timeout too.
        #[arg(short = 's', long)]
        stats: bool,
    },
    /// Remove connections: `flush-conntrack [BR] [zone=N]`.
    FlushConntrack {
        /// `BR` and/or `zone=N`.
        args: Vec<String>,
    },
    /// Print the connection tracker's counters (entries per zone and protocol, creations,
    /// expirations, invalid packets and refusals by reason): `ct-stats [BR]`.
    CtStats {
        /// Bridge name (all bridges without it).
        bridge: Option<String>,
    },
    /// Set the most connections a bridge's tracker holds at once (all bridges without BR):
    /// `ct-set-maxconns [BR] N`.
    CtSetMaxconns {
        /// `[BR] N`.
        args: Vec<String>,
    },
    /// Print the most connections the tracker holds at once: `ct-get-maxconns [BR]`.
    CtGetMaxconns {
        /// Bridge name (all bridges without it).
        bridge: Option<String>,
    },
    /// Set connection limits, for zones without their own and per zone (0: unlimited):
    /// `ct-set-limits [BR] [default=N] [zone=Z,limit=N]...`.
    CtSetLimits {
        /// `[BR]`, `default=N`, `zone=Z,limit=N`.
        args: Vec<String>,
    },
    /// Print the default limit and the zones' limits with their connections:
    /// `ct-get-limits [BR] [zone=Z[,Z]...]`.
    CtGetLimits {
        /// `[BR]`, `zone=Z[,Z]...`.
        args: Vec<String>,
    },
    /// Remove zones' own limits (the default applies again): `ct-del-limits [BR] zone=Z[,Z]...`.
    CtDelLimits {
        /// `[BR]`, `zone=Z[,Z]...`.
        args: Vec<String>,
    },
    /// Set connection timeouts in seconds by Open vSwitch's names, the bridge's or a zone's
    /// own (all bridges without BR): `ct-set-timeouts [BR] [zone=N] tcp_established=SECS
    /// udp_first=SECS...`.
    CtSetTimeouts {
        /// `[BR]`, `zone=N`, `NAME=SECS`.
        args: Vec<String>,
    },
    /// Print the timeouts in effect, the bridge's and each zone's own:
    /// `ct-get-timeouts [BR] [zone=N]`.
    CtGetTimeouts {
        /// `[BR]`, `zone=N`.
        args: Vec<String>,
    },
    /// Remove a zone's own timeouts (it takes the bridge's again) or, without a zone,
    /// return the bridge's to the defaults: `ct-del-timeouts [BR] [zone=N]`.
    CtDelTimeouts {
        /// `[BR]`, `zone=N`.
        args: Vec<String>,
    },
    /// Add a port mirror (Open vSwitch's Mirror table): copies of what the selected ports
    /// receive and send go to the output port, which then takes no part in `NORMAL`:
    /// `add-mirror BR NAME [select-src-port=P[,P]...] [select-dst-port=P[,P]...]
    /// [select-all] [select-vlan=V[,V]...] output-port=P`.
    AddMirror {
        /// Bridge name.
        bridge: String,
        /// Mirror name (unique in the bridge).
        name: String,
        /// `select-src-port=P[,P]...`, `select-dst-port=P[,P]...`, `select-all`,
        /// `select-vlan=V[,V]...`, `output-port=P`.
        args: Vec<String>,
    },
    /// Remove a port mirror: `del-mirror BR NAME`.
    DelMirror {
        /// Bridge name.
        bridge: String,
        /// Mirror name.
        name: String,
    },
    /// Print the port mirrors with the copies each sent (tx_packets, tx_bytes):
    /// `list-mirrors [BR]`.
    ListMirrors {
        /// Bridge name (all bridges without it).
        bridge: Option<String>,
    },
    /// Print the poll-mode thread counters.
    PmdStats,
    /// Reset the poll-mode thread counters.
    PmdStatsClear,
    /// Set the CPUs of a bridge's poll threads, one thread per CPU (`1`, `0,1`, `0-3`;
    /// `default` for the daemon's default); the bridge's rx queues are spread over them.
    SetPmdCpus {
        /// Bridge name.
        bridge: String,
        /// CPU list.
        cpus: String,
    },

    /// Set a bridge's OpenFlow controllers (replacing them): targets `tcp:IP[:PORT]`,
    /// `ssl:IP[:PORT]`, `unix:PATH` (the switch connects), `ptcp:[PORT][:IP]`,
    /// `pssl:[PORT][:IP]`, `punix:PATH` (it listens); then settings for all of them:
    /// `controller_rate_limit=N`, `controller_burst_limit=N`, `inactivity_probe=MS`,
    /// `max_backoff=MS`.
    SetController {
        /// Bridge name.
        bridge: String,
        /// Targets, then settings.
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Remove a bridge's OpenFlow controllers.
    DelController {
        /// Bridge name.
        bridge: String,
    },
    /// Print a bridge's OpenFlow controller targets.
    GetController {
        /// Bridge name.
        bridge: String,
    },
    /// Set what a bridge does without a controller: standalone (NORMAL after the active
    /// controllers are lost) or secure (keep the flows, drop misses).
    SetFailMode {
        /// Bridge name.
        bridge: String,
        /// standalone or secure.
        mode: String,
    },
    /// Print a bridge's fail mode.
    GetFailMode {
        /// Bridge name.
        bridge: String,
    },
    /// Set a bridge's fail mode back to standalone.
    DelFailMode {
        /// Bridge name.
        bridge: String,
    },

    /// Print the bridge's events (packet-in, flow-removed, port-status, MAC learning).
    Monitor {
        /// Bridge name.
        bridge: String,
        /// Exit after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Inject a packet: `packet-out BR in_port=P actions=ACTIONS HEXDATA`.
    PacketOut {
        /// Bridge name.
        bridge: String,
        /// `in_port=P` (number, name, LOCAL, CONTROLLER or TABLE); `in_port=CONTROLLER` when
        /// given as `-`.
        in_port: String,
        /// `actions=ACTIONS` (ovs-ofctl action list).
        actions: String,
        /// The Ethernet frame in hex (spaces, `:` and `.` are ignored).
        data: String,
    },
    /// Capture a port's frames into a pcapng file, as tcpdump would on a kernel interface:
    /// `capture BR PORT -w FILE.pcapng` (`-w -`: standard output, for `tshark -r -`). The
    /// frames come from the switch's poll threads with their time and direction (pcapng
    /// packet flags: inbound for what the port received, outbound for what the switch sent
    /// it). Ends after --count frames, after --duration, or on Ctrl-C, and then says how many
    /// frames were captured and how many the switch dropped because flowctl read too slowly.
    Capture {
        /// Bridge name.
        bridge: String,
        /// Port name.
        port: String,
        /// rx: frames the port received; tx: frames the switch sent to it.
        #[arg(long, value_enum, default_value_t = CaptureDirection::Both)]
        direction: CaptureDirection,
        /// Stop after this many frames.
        #[arg(long, short = 'c', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Keep at most this many bytes of each frame (1..=262144; the original length is
        /// kept). Default: whole frames.
        #[arg(long, short = 's', value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=262_144))]
        snaplen: Option<u32>,
        /// Stop after this many seconds (fractions allowed, at most 7 days).
        #[arg(long, value_name = "SECS")]
        duration: Option<f64>,
        /// The pcapng file to write (`-`: standard output).
        #[arg(short = 'w', long = "write", value_name = "FILE")]
        write: String,
    },

    /// What the bridge would do with a packet, table by table, as `ovs-appctl
    /// ofproto/trace`: `trace BR FLOW [--packet HEX] [--generate]`. Changes nothing unless
    /// `--generate`.
    Trace {
        /// Bridge name.
        bridge: String,
        /// The packet as a flow (`in_port=p1,tcp,nw_dst=10.0.0.2,tp_dst=80`; `in_port`
        /// required): a frame is built from it.
        flow: String,
        /// Trace this Ethernet frame (hex; spaces, `:` and `.` ignored) instead; FLOW then
        /// gives its `in_port` (and tunnel fields).
        #[arg(long)]
        packet: Option<String>,
        /// Also send the packet for real (packet-out through the tables) and report which
        /// ports sent it and what was dropped.
        #[arg(long)]
        generate: bool,
    },
}

impl Cli {
    /// The server address: `--server`, else `$FLOWCTL_SERVER`, else the default socket.
    pub fn server_addr(&self, env: Option<String>) -> String {
        self.server
            .clone()
            .or(env.filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_SERVER.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("flowctl").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn add_flow_args() {
        let cli = parse(&["add-flow", "br0", "in_port=1,actions=drop"]).unwrap();
        match cli.command {
            Command::AddFlow { bridge, flow } => {
                assert_eq!(bridge, "br0");
                assert_eq!(flow, "in_port=1,actions=drop");
            }
            c => panic!("{c:?}"),
        }
        assert_eq!(cli.format, Format::Text);
        assert!(!cli.strict);
    }

    #[test]
    fn global_options_before_and_after_the_command() {
        let a = parse(&["--strict", "del-flows", "br0", "priority=5,ip"]).unwrap();
        let b = parse(&["del-flows", "br0", "priority=5,ip", "--strict"]).unwrap();
        assert!(a.strict && b.strict);
        let c = parse(&["--if-exists", "del-br", "br9"]).unwrap();
        assert!(c.if_exists);
        let d = parse(&["dump-flows", "br0", "--format", "json"]).unwrap();
        assert_eq!(d.format, Format::Json);
    }

    #[test]
    fn optional_match_defaults_to_empty() {
        match parse(&["del-flows", "br0"]).unwrap().command {
            Command::DelFlows { r#match, .. } => assert_eq!(r#match, ""),
            c => panic!("{c:?}"),
        }
        match parse(&["dump-flows", "br0", "--no-stats"]).unwrap().command {
            Command::DumpFlows {
                r#match, no_stats, ..
            } => {
                assert_eq!(r#match, "");
                assert!(no_stats);
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn add_port_settings() {
        match parse(&[
            "add-port",
            "br0",
            "vx0",
            "type=vxlan",
            "remote_ip=192.0.2.1",
        ])
        .unwrap()
        .command
        {
            Command::AddPort {
                bridge,
                port,
                settings,
            } => {
                assert_eq!((bridge.as_str(), port.as_str()), ("br0", "vx0"));
                assert_eq!(settings, ["type=vxlan", "remote_ip=192.0.2.1"]);
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        for args in [
            &["add-flow", "br0"][..],
            &["bogus-command"],
            &["list-br", "extra"],
            &["--format", "yaml", "list-br"],
            &["monitor", "br0", "--count", "x"],
            &["--tls-cert", "c.pem", "list-br"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn server_address_precedence() {
        let cli = parse(&["list-br"]).unwrap();
        assert_eq!(cli.server_addr(None), DEFAULT_SERVER);
        assert_eq!(
            cli.server_addr(Some("unix:/tmp/s.sock".into())),
            "unix:/tmp/s.sock"
        );
        assert_eq!(cli.server_addr(Some(String::new())), DEFAULT_SERVER);
        let cli = parse(&["--server", "https://sw:9443", "list-br"]).unwrap();
        assert_eq!(
            cli.server_addr(Some("unix:/tmp/s.sock".into())),
            "https://sw:9443"
        );
    }
}
