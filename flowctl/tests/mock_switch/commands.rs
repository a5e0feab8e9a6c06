//! Exit codes and server errors, where the server comes from, read commands in text and
//! JSON, monitor, packet-out, and mutual TLS.

use super::*;

#[test]
fn server_errors_exit_1_with_code_and_message() {
    let h = Harness::start();
    let o = h.flowctl(&["add-br", "br0"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "flowctl: ALREADY_EXISTS: bridge br0 already exists\n"
    );
    let o = h.flowctl(&["add-br", "br2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = h.flowctl(&["del-br", "br9"]);
    assert_eq!(o.status.code(), Some(1));
    let o = h.flowctl(&["--if-exists", "del-br", "br9"]);
    assert_eq!(o.status.code(), Some(0));
    let o = h.flowctl(&["add-flow", "br0", "cookie=0xbad,actions=drop"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "flowctl: INVALID_ARGUMENT: updates[0].flow.cookie: bad cookie\n"
    );
}

#[test]
fn unreachable_switch_is_exit_1() {
    let o = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["--server", "unix:/nonexistent/flowctl-test.sock", "list-br"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("flowctl: cannot connect to unix:/nonexistent/flowctl-test.sock")
    );
}

#[test]
fn server_from_environment() {
    let h = Harness::start();
    let o = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .env("FLOWCTL_SERVER", h.server())
        .arg("list-br")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "br0\nbr1\n");
}

#[test]
fn read_commands_text_and_json() {
    let h = Harness::start();
    let o = h.flowctl(&["show", "br0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("bridge br0: dpid:0000000000000001\n"));
    assert!(stdout(&o).contains(" 1(p1):\n     type: memory\n"));

    let o = h.flowctl(&["show", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bridges"][0]["name"], "br0");
    assert_eq!(v["bridges"][1]["name"], "br1");
    assert_eq!(v["bridges"][0]["ports"][0]["name"], "p1");

    let o = h.flowctl(&["dump-tables", "br0"]);
    assert_eq!(
        stdout(&o),
        "  table 0:\n    active=2, lookup=5, matched=4\n"
    );
    let o = h.flowctl(&["dump-ports", "br0", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stats"][0]["rx_packets"], 10);

    let o = h.flowctl(&["add-flow", "br0", "priority=5,in_port=p1,actions=NORMAL"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = h.flowctl(&["dump-flows", "br0", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["flows"][0]["priority"], 5);
    assert_eq!(v["flows"][0]["match"][0]["port_name"], "p1");
    assert_eq!(
        v["flows"][0]["text"],
        "priority=5,in_port=p1 actions=NORMAL"
    );
    let o = h.flowctl(&["dump-flows", "br0", "--no-stats"]);
    assert_eq!(stdout(&o), "priority=5,in_port=p1 actions=NORMAL\n");

    let o = h.flowctl(&["fdb-show", "br0"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "flowctl: UNIMPLEMENTED: get_mac_table\n");
}

#[test]
fn monitor_prints_count_events() {
    let h = Harness::start();
    let o = h.flowctl(&["monitor", "br0", "--count", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "packet_in reason=no_match table_id=0 cookie=0x0 in_port=1 total_len=60 data_len=60 match=in_port=1\n\
         mac_learned vlan=0 mac=02:00:00:00:00:01 port=1 port_name=p1\n"
    );
    assert_eq!(h.state.lock().unwrap().arbitrations, ["br0"]);

    let o = h.flowctl(&["monitor", "br0", "--count", "3", "--format", "json"]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["event"], "packet_in");
    assert_eq!(lines[1]["event"], "mac_learned");
    assert_eq!(lines[2]["event"], "port_status");
    assert_eq!(lines[2]["reason"], "delete");

    let o = h.flowctl(&["monitor", "br7", "--count", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "flowctl: NOT_FOUND: no bridge br7\n");
}

#[test]
fn packet_out_goes_on_the_stream() {
    let h = Harness::start();
    let o = h.flowctl(&[
        "packet-out",
        "br0",
        "in_port=1",
        "actions=output:2",
        "ffffffffffff0200000000010800",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st = h.state.lock().unwrap();
    assert_eq!(st.packet_outs.len(), 1);
    assert_eq!(st.packet_outs[0].data.len(), 14);
}

#[test]
fn mutual_tls() {
    let h = Harness::start_tls();
    let ca = tls_file("ca.pem").display().to_string();
    let cert = tls_file("client.pem").display().to_string();
    let key = tls_file("client.key").display().to_string();
    let o = h.flowctl(&[
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "list-br",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "br0\nbr1\n");

    // No client certificate: the switch refuses the handshake.
    let o = h.flowctl(&["--tls-ca", &ca, "list-br"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("flowctl: "), "{}", stderr(&o));

    // A CA that did not sign the switch's certificate.
    let o = h.flowctl(&[
        "--tls-ca",
        &cert,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "list-br",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("flowctl: cannot connect to https://localhost:"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("certificate"), "{}", stderr(&o));
}
