//! The switch against hostile and careless clients, damaged stores and silent drops
//! (issue 19): each probe that once broke it, kept as a regression test whose numbers are
//! the assertions.
//!
//! Runs as root (it starts the daemon under other users' eyes, limits its descriptors and
//! creates veths). Needs `cc` (the unprivileged attacker is a small C program), `setpriv`
//! and `prlimit` (util-linux), and `/usr/bin/python3` (raw frames in a namespace). About 50 s.
// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged attacker, in C so that it reacts within microseconds: as `nobody`, it
/// watches DIR (inotify) and connects to whatever appears there (a socket, a temporary
/// name, a private directory and what is in it) at once and repeatedly, and to DIR/s in
/// between, until DIR/stop appears; prints `tries hits`.
const ATTACKER: &str = r#"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
static unsigned long tries, hits;
static void attempt(const char *p) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    tries++;
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
        hits++;
        fprintf(stderr, "connected to %s\n", p);
    }
    close(s);
}
int main(int argc, char **argv) {
    const char *d = argv[1];
    char target[4096], stop[4096], p[4096], q[8192];
    snprintf(target, sizeof target, "%s/s", d);
    snprintf(stop, sizeof stop, "%s/stop", d);
    int fd = inotify_init1(IN_NONBLOCK);
    if (fd < 0 || inotify_add_watch(fd, d, IN_CREATE | IN_MOVED_TO) < 0) return 2;
    printf("ready\n");
    fflush(stdout);
    char buf[4096] __attribute__((aligned(8)));
    for (unsigned long n = 1;; n++) {
        if (n % 256 == 0 && access(stop, F_OK) == 0) break;
        ssize_t len = read(fd, buf, sizeof buf);
        for (ssize_t i = 0; i < len;) {
            struct inotify_event *e = (struct inotify_event *)(buf + i);
            i += sizeof *e + e->len;
            if (!e->len) continue;
            snprintf(p, sizeof p, "%s/%s", d, e->name);
            for (int k = 0; k < 50; k++) attempt(p);
            DIR *dd = opendir(p);
            if (dd) {
                struct dirent *de;
                while ((de = readdir(dd))) {
                    snprintf(q, sizeof q, "%s/%s", p, de->d_name);
                    attempt(q);
                }
                closedir(dd);
            }
        }
        attempt(target);
    }
    printf("%lu %lu\n", tries, hits);
    return 0;
}
"#;

fn need(cmd: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{cmd} is missing: apt-get install {package}");
}

/// Started under `umask 000`, 60 times, with an unprivileged user connecting to anything in
/// the socket's directory as fast as it can (the API socket and the metrics socket): the
/// user never gets in, the API socket and the store are 0600, the metrics socket 0660.
#[test]
fn the_api_socket_is_never_reachable_by_another_user() {
    need("setpriv", "util-linux");
    need("cc", "gcc");
    let dir = tempfile::tempdir().unwrap();
    // Let others in to the directory (as /run/vswitch is), so only the socket's own
    // permissions stand between them and the API.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tools = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tools.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = tools.path().join("attacker.c");
    let bin = tools.path().join("attacker");
    std::fs::write(&src, ATTACKER).unwrap();
    let cc = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let mut attacker = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the attacker");
    let mut out = std::io::BufReader::new(attacker.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    if line.trim() != "ready" {
        let o = attacker.wait_with_output().unwrap();
        panic!(
            "the attacker did not start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let sock = dir.path().join("s");
    let db = dir.path().join("conf.db");
    let metrics = dir.path().join("m");
    const STARTS: usize = 60;
    for i in 0..STARTS {
        let mut child = Command::new("sh")
            .args(["-c", "umask 000; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--db")
            .arg(&db)
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .arg("--metrics")
            .arg(format!("unix:{}", metrics.display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "start {i}: never listened");
            std::thread::sleep(Duration::from_millis(2));
        }
        for f in [&sock, &db] {
            let m = std::fs::symlink_metadata(f).unwrap();
            assert_eq!(m.mode() & 0o777, 0o600, "start {i}: {}", f.display());
        }
        // The metrics socket, bound just after the API's, is 0600 until checked and then
        // the group's too (a scraper's proxy), never others'.
        loop {
            match std::fs::symlink_metadata(&metrics).map(|m| m.mode() & 0o777) {
                Ok(0o660) => break,
                Ok(0o600) | Err(_) => {}
                Ok(mode) => panic!("start {i}: {} is mode {mode:o}", metrics.display()),
            }
            assert!(
                Instant::now() < deadline,
                "start {i}: {} never became 0660",
                metrics.display()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Alternate clean stops (the socket is removed) and kills (a stale socket stays).
        if i % 2 == 0 {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
        } else {
            child.kill().unwrap();
        }
        child.wait().unwrap();
    }
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    let o = attacker.wait_with_output().unwrap();
    let mut last = String::new();
    std::io::Read::read_to_string(&mut out, &mut last).unwrap();
    let nums: Vec<u64> = last
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "attacker output {last:?}");
    let (tries, hits) = (nums[0], nums[1]);
    eprintln!("{tries} connection attempts as another user in {STARTS} starts, {hits} got in");
    assert!(
        tries > 10_000,
        "the attacker only tried {tries} times: too slow to prove anything"
    );
    assert_eq!(
        hits,
        0,
        "another user connected {hits} times in {STARTS} starts: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// A daemon of our own: its stderr kept, started through a wrapper when asked (prlimit).
// ---------------------------------------------------------------------------------------

struct Vswitchd {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Vswitchd {
    /// Starts `wrapper... vswitchd --db DIR/conf.db --listen unix:DIR/s extra...` and waits
    /// until the socket answers.
    fn start(dir: &std::path::Path, wrapper: &[&str], extra: &[&str]) -> Vswitchd {
        let sock = dir.join("s");
        let log = std::fs::File::create(dir.join("stderr")).unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(env!("CARGO_BIN_EXE_vswitchd"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_vswitchd")),
        };
        let child = cmd
            .arg("--db")
            .arg(dir.join("conf.db"))
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .args(extra)
            .stderr(log)
            .spawn()
            .expect("spawn vswitchd");
        let d = Vswitchd {
            child,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while d.fc(&["list-br"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "vswitchd never served: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn sock(&self) -> std::path::PathBuf {
        self.dir.join("s")
    }

    fn fc(&self, args: &[&str]) -> std::process::Output {
        Command::new(common::flowctl_binary())
            .arg("--server")
            .arg(format!("unix:{}", self.sock().display()))
            .args(args)
            .output()
            .expect("run flowctl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.fc(args);
        assert!(
            o.status.success(),
            "flowctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        // Used by the AF_XDP test.
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("json")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// CPU time the daemon used so far (user + system).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which may hold spaces) start at field 3.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let ticks = f[11] + f[12]; // utime, stime
        Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
    }

    /// Resident memory of the daemon, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }
}

impl Drop for Vswitchd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_file(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flowctl/tests/tls")
        .join(name)
        .display()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// How many of `conns` the server has not closed (a read that would block).
fn still_open<S: std::io::Read>(conns: &mut [S], set_timeout: impl Fn(&S)) -> usize {
    let mut open = 0;
    for c in conns.iter_mut() {
        set_timeout(c);
        let mut b = [0u8; 4096];
        // What the server sent first (its HTTP/2 settings), then end of file or nothing.
        loop {
            match c.read(&mut b) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    open += 1;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    open
}

// ---------------------------------------------------------------------------------------
// Connection floods and descriptor exhaustion (issue 19, items 3 and 4).
// ---------------------------------------------------------------------------------------

/// With 1,024 descriptors allowed, 1,100 silent TCP connections and then 1,200 idle unix
/// connections: the operator's `list-br` on the unix socket answers within a second each
/// time, the daemon does not spin, the TCP listener holds no more than its share, every
/// silent connection is closed after the handshake timeout, a TLS client gets in again,
/// and the refusals were logged.
#[test]
fn floods_never_lock_out_the_operator() {
    vswitchd::server::raise_nofile();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tcp = format!("tcp:127.0.0.1:{port}");
    let (ca, cert, key) = (
        tls_file("ca.pem"),
        tls_file("server.pem"),
        tls_file("server.key"),
    );
    let d = Vswitchd::start(
        dir.path(),
        &["prlimit", "--nofile=1024:1024", "--"],
        &[
            "--listen",
            &tcp,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
            "--max-connections",
            "64",
            "--reserved-unix-connections",
            "8",
            "--handshake-timeout-s",
            "2",
        ],
    );
    let operator = |what: &str| {
        let t = Instant::now();
        d.ok(&["list-br"]);
        let took = t.elapsed();
        eprintln!("{what}: list-br took {took:?}");
        assert!(
            took < Duration::from_secs(1),
            "{what}: the operator waited {took:?}"
        );
    };
    let cpu0 = d.cpu();
    let mut tcp_flood: Vec<std::net::TcpStream> = (0..1100)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(tcp_flood.len() > 1000, "only {} connected", tcp_flood.len());
    operator("1,100 silent TCP connections");
    std::thread::sleep(Duration::from_millis(300));
    let held = still_open(&mut tcp_flood, |c| {
        c.set_read_timeout(Some(Duration::from_millis(1))).unwrap()
    });
    eprintln!("the TCP listener holds {held} of 1,100 connections (at most 56)");
    assert!(held <= 56, "the TCP listener holds {held} of at most 56");

    let mut unix_flood: Vec<std::os::unix::net::UnixStream> = (0..1200)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(d.sock()).ok())
        .collect();
    assert_eq!(unix_flood.len(), 1200);
    operator("1,200 idle unix connections");
    std::thread::sleep(Duration::from_secs(1));
    operator("after a second of both floods");
    let cpu = d.cpu() - cpu0;
    eprintln!("the daemon used {cpu:?} of CPU in the floods");
    assert!(
        cpu < Duration::from_millis(1500),
        "the daemon used {cpu:?} of CPU in the floods (spinning?)"
    );

    // The handshake timeout (2 s) closes every silent connection.
    std::thread::sleep(Duration::from_millis(2500));
    let tcp_open = still_open(&mut tcp_flood, |c| {
        c.set_read_timeout(Some(Duration::from_millis(1))).unwrap()
    });
    let unix_open = still_open(&mut unix_flood, |c| {
        c.set_read_timeout(Some(Duration::from_millis(1))).unwrap()
    });
    assert_eq!(
        (tcp_open, unix_open),
        (0, 0),
        "silent connections left open"
    );
    let o = Command::new(common::flowctl_binary())
        .args(["--server", &format!("https://127.0.0.1:{port}")])
        .args(["--tls-ca", &ca])
        .args(["--tls-cert", &tls_file("client.pem")])
        .args(["--tls-key", &tls_file("client.key"), "list-br"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Logged at once, then at most every 5 s: wait for the next line.
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let log = d.log();
        if log.contains("refused at the connection limit")
            && log.contains("closed before their handshake")
        {
            break;
        }
        assert!(Instant::now() < deadline, "not logged: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = d.log();
    assert!(
        log.lines()
            .filter(|l| l.contains("API connections"))
            .count()
            <= 3,
        "the log is not rate-limited: {log}"
    );
}

/// A request declaring more than `--max-message-bytes` is refused as soon as its length
/// prefix arrives; 8 requests that stop half-way hold at most what they sent and are cut
/// off after `--request-timeout-s`; an idle connection is closed after `--idle-timeout-s`.
#[test]
fn oversized_stalled_and_idle_requests_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(
        dir.path(),
        &[],
        &[
            "--request-timeout-s",
            "2",
            "--idle-timeout-s",
            "3",
            "--max-message-bytes",
            "16777216",
        ],
    );
    let rss0 = d.rss();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 60 MiB declared: refused at once, nothing buffered.
        let t = Instant::now();
        let (resp, _stream, _conn) = partial_write(&d.sock(), 60 << 20, 1 << 20).await;
        let status = grpc_status(resp).await;
        assert_eq!(
            status,
            Some(11),
            "OUT_OF_RANGE (tonic's refusal by size) expected"
        );
        assert!(t.elapsed() < Duration::from_secs(1));

        // 8 requests of 15 MiB that stop after 7 MiB.
        let mut stalled = Vec::new();
        for _ in 0..8 {
            stalled.push(partial_write(&d.sock(), 15 << 20, 7 << 20).await);
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let held = d.rss().saturating_sub(rss0);
        eprintln!(
            "8 requests stalled after 7 of 15 MiB hold {} MiB",
            held >> 20
        );
        assert!(
            held < 200 << 20,
            "8 stalled requests hold {} MiB",
            held >> 20
        );
        // Cut off after the request timeout (2 s), well before 4 s.
        let t = Instant::now();
        for (_, _stream, conn) in stalled {
            let r = tokio::time::timeout(Duration::from_secs(4), conn).await;
            assert!(r.is_ok(), "a stalled request's connection was never closed");
        }
        eprintln!("stalled requests cut off within {:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(4));

        // An idle connection (handshake done, no request) is closed after 3 s.
        let io = tokio::net::UnixStream::connect(d.sock()).await.unwrap();
        let (_client, conn) = h2::client::handshake(io).await.unwrap();
        let conn = tokio::spawn(conn);
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(6), conn).await;
        assert!(r.is_ok(), "an idle connection was never closed");
        assert!(t.elapsed() > Duration::from_secs(2), "closed too early");
    });
    d.ok(&["list-br"]);
    let deadline = Instant::now() + Duration::from_secs(7);
    while !d.log().contains("closed with a stalled request") {
        assert!(Instant::now() < deadline, "not logged: {}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

type Conn = tokio::task::JoinHandle<Result<(), h2::Error>>;

/// Opens an HTTP/2 connection to `sock` and starts a `Write` whose gRPC length prefix says
/// `declared` bytes, of which only `send` are sent.
async fn partial_write(
    sock: &std::path::Path,
    declared: u32,
    send: usize,
) -> (
    h2::client::ResponseFuture,
    h2::SendStream<bytes::Bytes>,
    Conn,
) {
    let io = tokio::net::UnixStream::connect(sock).await.unwrap();
    let (client, conn) = h2::client::handshake(io).await.unwrap();
    let conn = tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let req = http::Request::post("http://localhost/vswitch.v1.Switch/Write")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (resp, mut stream) = client.send_request(req, false).unwrap();
    let mut msg = vec![0u8];
    msg.extend_from_slice(&declared.to_be_bytes());
    msg.resize(5 + send, 0x0a);
    stream.send_data(msg.into(), false).unwrap();
    (resp, stream, conn)
}

/// The `grpc-status` of a response (headers, or trailers).
async fn grpc_status(resp: h2::client::ResponseFuture) -> Option<u32> {
    let resp = tokio::time::timeout(Duration::from_secs(2), resp)
        .await
        .ok()?
        .ok()?;
    let get = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    if let Some(s) = get(resp.headers()) {
        return Some(s);
    }
    let mut body = resp.into_body();
    while let Some(Ok(_)) = body.data().await {}
    let trailers = body.trailers().await.ok()??;
    get(&trailers)
}

// ---------------------------------------------------------------------------------------
// Errors quote a bounded prefix of their input (item 7).
// ---------------------------------------------------------------------------------------

/// An 8 MiB name (under the message limit) comes back as INVALID_ARGUMENT or NOT_FOUND
/// with a message of at most about a kilobyte, wherever it is put; a 60 MiB one is refused
/// by size with a short message.
#[test]
fn errors_quote_a_bounded_prefix_of_the_input() {
    use proto::v1::{self, entity, update};
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &[], &[]);
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    let huge = "x".repeat(8 << 20);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = vswitchd::client::connect_unix(&d.sock()).await.unwrap();
        let check = |what: &str, r: Result<tonic::Status, ()>, codes: &[tonic::Code]| {
            let s = r.unwrap_or_else(|_| panic!("{what}: accepted"));
            eprintln!("{what}: {:?}, {} bytes", s.code(), s.message().len());
            assert!(codes.contains(&s.code()), "{what}: {:?}", s.code());
            assert!(
                s.message().len() <= 1400,
                "{what}: a {} byte error",
                s.message().len()
            );
        };
        let r = c
            .add_bridge(v1::AddBridgeRequest {
                name: huge.clone(),
                ..Default::default()
            })
            .await;
        check(
            "bridge name",
            r.err().ok_or(()),
            &[tonic::Code::InvalidArgument],
        );
        let r = c
            .add_port(v1::AddPortRequest {
                bridge: "br0".into(),
                port: Some(v1::PortConfig {
                    name: huge.clone(),
                    r#type: "memory".into(),
                    ..Default::default()
                }),
            })
            .await;
        check(
            "port name",
            r.err().ok_or(()),
            &[tonic::Code::InvalidArgument],
        );
        let r = c
            .set_port_options(v1::SetPortOptionsRequest {
                bridge: "br0".into(),
                name: "p1".into(),
                options: [(huge.clone(), "1".to_string())].into(),
                ..Default::default()
            })
            .await;
        check(
            "option name",
            r.err().ok_or(()),
            &[tonic::Code::InvalidArgument],
        );
        let mut flow = proto::flow_text::parse_flow("priority=1,actions=output:p1").unwrap();
        if let Some(v1::instruction::Instruction::ApplyActions(a)) =
            flow.instructions[0].instruction.as_mut()
            && let Some(v1::action::Action::Output(o)) = a.actions[0].action.as_mut()
        {
            o.port = Some(v1::PortRef {
                port: Some(v1::port_ref::Port::Name(huge.clone())),
            });
        }
        let r = c
            .write(v1::WriteRequest {
                bridge: "br0".into(),
                updates: vec![v1::Update {
                    r#type: update::Type::Insert as i32,
                    entity: Some(v1::Entity {
                        entity: Some(entity::Entity::Flow(flow)),
                    }),
                }],
                atomicity: v1::Atomicity::AllOrNone as i32,
            })
            .await;
        check(
            "output port name",
            r.err().ok_or(()),
            &[tonic::Code::NotFound],
        );
        let r = c
            .add_bridge(v1::AddBridgeRequest {
                name: "y".repeat(60 << 20),
                ..Default::default()
            })
            .await;
        // tonic refuses a message over the limit with OUT_OF_RANGE.
        check(
            "60 MiB",
            r.err().ok_or(()),
            &[tonic::Code::OutOfRange, tonic::Code::ResourceExhausted],
        );
    });
    // The flow text parser (flowctl's) quotes a bounded token too.
    let e = proto::flow_text::parse_flow(&format!("priority={},actions=drop", "9".repeat(1 << 20)))
        .unwrap_err();
    assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
}

// ---------------------------------------------------------------------------------------
// Damaged stores (item 6).
// ---------------------------------------------------------------------------------------

/// A small deterministic generator for offsets and bits (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A store as the daemon writes it: bridges, ports, 2,000 flows, meters and groups, after
/// a clean stop (`clean`) or a kill -9.
fn daemon_store(dir: &std::path::Path, clean: bool) -> Vec<u8> {
    let d = Vswitchd::start(dir, &[], &[]);
    d.ok(&["add-br", "br1"]);
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    d.ok(&["add-port", "br1", "q1", "type=memory"]);
    d.ok(&[
        "add-meter",
        "br0",
        "meter=1,kbps,burst,bands=type=drop,rate=1000,burst_size=100",
    ]);
    d.ok(&["add-group", "br0", "group_id=5,type=all,bucket=output:p1"]);
    let flows: String = (0..2000)
        .map(|i| {
            format!(
                "priority={},ip,nw_dst=10.{}.{}.0/24,actions=output:p1\n",
                100 + i % 7,
                i / 256,
                i % 256
            )
        })
        .collect();
    let f = dir.join("flows.txt");
    std::fs::write(&f, flows).unwrap();
    d.ok(&["add-flows", "br0", f.to_str().unwrap()]);
    d.ok(&["add-flow", "br1", "priority=9,arp,actions=flood"]);
    let mut d = d;
    if clean {
        Command::new("kill")
            .args(["-TERM", &d.child.id().to_string()])
            .status()
            .unwrap();
        assert!(d.child.wait().unwrap().success());
    } else {
        d.child.kill().unwrap();
        d.child.wait().unwrap();
    }
    std::fs::read(dir.join("conf.db")).unwrap()
}

/// Opens `bytes` as a store in process (then writes to it and closes it): a clear error
/// naming the file, or exactly `original`, or, when the store said the newest commit was
/// incomplete (after a kill -9 redb cannot tell a commit cut short from a damaged one) and
/// fell back, exactly `previous`. Returns true for an error.
fn judge(
    path: &std::path::Path,
    bytes: &[u8],
    original: &vswitchd::store::Records,
    previous: &vswitchd::store::Records,
    what: &str,
) -> bool {
    std::fs::write(path, bytes).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    // Opened, it must also take a write and close (both allocate pages: a damaged record of
    // which pages are free once made redb panic there).
    let r = std::panic::catch_unwind(|| {
        vswitchd::store::Store::open(path).and_then(|s| {
            let loaded = (s.rolled_back(), s.load()?);
            let mut tx = s.begin()?;
            tx.put_bridge(&proto::v1::Bridge {
                name: "br9".into(),
                ..Default::default()
            })?;
            tx.commit()?;
            Ok(loaded)
        })
    });
    match r {
        Err(_) => panic!("{what}: a panic escaped Store::open, a write or the close"),
        Ok(Ok((rolled_back, records))) => {
            assert!(
                &records == original || (rolled_back && &records == previous),
                "{what}: opened with different contents (rolled back: {rolled_back})"
            );
            false
        }
        Ok(Err(e)) => {
            let m = e.to_string();
            assert!(
                m.contains(name),
                "{what}: the error does not name the file: {m}"
            );
            assert!(m.len() < 2048, "{what}: a {} byte error", m.len());
            true
        }
    }
}

/// Every way a store can be damaged is a clear error naming the file, or the store opens
/// with exactly what it held: zero length, truncated anywhere, zeroed pages, one bit
/// flipped at 400 random offsets (half of them in non-zero bytes), 64 bits flipped over 60
/// seeds, both after a clean stop and after kill -9. Never a panic, never a silent change.
/// Then through the binary: exit status 1 (not a panic's 101) with the file named, and
/// `--repair` / `--reset-store` keep a copy and start.
#[test]
fn damaged_stores_are_clear_errors_never_panics_or_silent_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut damaged = 0;
    let mut trials = 0;
    for clean in [true, false] {
        let sub = dir.path().join(if clean { "clean" } else { "killed" });
        std::fs::create_dir_all(&sub).unwrap();
        let bytes = daemon_store(&sub, clean);
        let original = vswitchd::store::Store::open(&sub.join("conf.db"))
            .and_then(|s| s.load())
            .unwrap();
        assert_eq!(original["br0"].flows.len(), 2001); // and the default normal flow
        // The last write was br1's ARP flow (next to its default NORMAL flow): the commit
        // before it lacks just that.
        let mut previous = original.clone();
        let br1 = &mut previous.get_mut("br1").unwrap().flows;
        assert_eq!(br1.len(), 2);
        br1.retain(|(_, f)| f.priority != 9);
        assert_eq!(br1.len(), 1);
        let path = sub.join("copy.db");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(clean));
        let mut case = |b: Vec<u8>, what: String| {
            trials += 1;
            damaged += usize::from(judge(&path, &b, &original, &previous, &what));
        };
        case(Vec::new(), "empty".into());
        for cut in [
            1,
            100,
            4096,
            4097,
            bytes.len() / 4,
            bytes.len() / 2,
            bytes.len() - 4096,
            bytes.len() - 1,
        ] {
            case(bytes[..cut].to_vec(), format!("truncated to {cut}"));
        }
        for _ in 0..20 {
            let page = rng.below(bytes.len() / 4096) * 4096;
            let mut b = bytes.clone();
            b[page..page + 4096].fill(0);
            case(b, format!("page at {page} zeroed"));
        }
        let nonzero: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != 0).collect();
        for i in 0..400 {
            let at = if i % 2 == 0 {
                rng.below(bytes.len())
            } else {
                nonzero[rng.below(nonzero.len())]
            };
            let bit = rng.below(8);
            let mut b = bytes.clone();
            b[at] ^= 1 << bit;
            case(
                b,
                format!("bit {bit} of byte {at} flipped (clean stop: {clean})"),
            );
        }
        for seed in 0..60u64 {
            let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut b = bytes.clone();
            for _ in 0..64 {
                let at = nonzero[r.below(nonzero.len())];
                b[at] ^= 1 << r.below(8);
            }
            case(
                b,
                format!("64 bits flipped, seed {seed} (clean stop: {clean})"),
            );
        }
    }
    eprintln!("{damaged} of {trials} damaged copies were refused; the rest opened unchanged");
    assert!(
        damaged > trials / 4,
        "too few damaged copies noticed: {damaged} of {trials}"
    );

    // Through the binary.
    let sub = dir.path().join("clean");
    let bytes = std::fs::read(sub.join("conf.db")).unwrap();
    let nonzero: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != 0).collect();
    let run = |db: &std::path::Path, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--db")
            .arg(db)
            .arg("--listen")
            .arg(format!("unix:{}", dir.path().join("bin.sock").display()))
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A damaged store stops it at once; a sound one serves (then we stop it).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(c.stderr.as_mut().unwrap(), &mut err).unwrap();
                return (st.code(), err);
            }
            if std::os::unix::net::UnixStream::connect(dir.path().join("bin.sock")).is_ok() {
                Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status()
                    .unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "vswitchd neither failed nor served"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let db = dir.path().join("bin.db");
    let mut rng = Rng(42);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("truncated".into(), bytes[..bytes.len() / 2].to_vec()),
    ];
    for s in 0..6 {
        let mut b = bytes.clone();
        for _ in 0..64 {
            let at = nonzero[rng.below(nonzero.len())];
            b[at] ^= 1 << rng.below(8);
        }
        cases.push((format!("64 flips #{s}"), b));
    }
    for (what, b) in &cases {
        std::fs::write(&db, b).unwrap();
        let (code, err) = run(&db, &[]);
        assert_ne!(code, Some(101), "{what}: vswitchd panicked: {err}");
        if code != Some(0) {
            assert_eq!(code, Some(1), "{what}: {err}");
            assert!(
                err.contains("bin.db") && !err.contains("panicked"),
                "{what}: {err}"
            );
            assert!(!err.contains("serving on"), "{what}: {err}");
        }
    }
    // The explicit ways out, each keeping the damaged file.
    let copies = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("bin.db.damaged-")
            })
            .count()
    };
    std::fs::write(&db, b"").unwrap();
    let (code, err) = run(&db, &["--reset-store"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("moved") && err.contains("damaged-"), "{err}");
    assert_eq!(copies(dir.path()), 1);
    // A sound store: the flag changes nothing.
    let (code, err) = run(&db, &["--repair"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("sound"), "{err}");
    assert_eq!(copies(dir.path()), 1);
    // A record lost behind the store's back: --repair keeps the rest.
    std::fs::write(&db, &bytes).unwrap();
    {
        let rdb = redb::Database::open(&db).unwrap();
        let w = rdb.begin_write().unwrap();
        {
            let mut t = w
                .open_table(redb::TableDefinition::<(&str, &[u8]), &[u8]>::new("flows"))
                .unwrap();
            let first = redb::ReadableTable::first(&t).unwrap().map(|(k, _)| {
                let (b, id) = k.value();
                (b.to_string(), id.to_vec())
            });
            let (b, id) = first.unwrap();
            t.remove((b.as_str(), id.as_slice())).unwrap();
        }
        w.commit().unwrap();
    }
    let (code, err) = run(&db, &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("table flows holds 2002 records where the last commit left 2003"),
        "{err}"
    );
    let (code, err) = run(&db, &["--repair"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("repaired") && err.contains("2002 flows"),
        "{err}"
    );
    assert_eq!(copies(dir.path()), 2);
    let (code, _) = run(&db, &[]);
    assert_eq!(code, Some(0));
}

// ---------------------------------------------------------------------------------------
// Frames lost below the switch are counted (item 8).
// ---------------------------------------------------------------------------------------

/// Sends `count` raw frames of `size` bytes (broadcast, an unknown EtherType) out of
/// interface `dev` in namespace `ns`, as fast as a Python loop goes; returns how many the
/// kernel took (the interface's tx_packets delta).
fn blast(h: &common::Hosts, i: usize, size: usize, count: usize) -> u64 {
    let dev = h.inner(i).to_string();
    let tx = || -> u64 {
        h.exec(
            i,
            &[
                "cat",
                &format!("/sys/class/net/{dev}/statistics/tx_packets"),
            ],
        )
        .trim()
        .parse()
        .unwrap()
    };
    let before = tx();
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(({dev:?}, 0))\n\
         f = b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x01' + b'\\x88\\xb5' + bytes({})\n\
         for _ in range({count}):\n    \
             try:\n        s.send(f)\n    \
             except OSError:\n        pass\n",
        size - 14
    );
    h.exec(i, &["/usr/bin/python3", "-c", &script]);
    tx() - before
}

fn counters(d: &Vswitchd, port: &str) -> serde_json::Value {
    d.json(&["dump-ports", "br0", port])["stats"][0].clone()
}

/// Waits until the port's received + dropped stop changing, and returns them.
fn settled(d: &Vswitchd, port: &str) -> (u64, u64, serde_json::Value) {
    let mut last = (u64::MAX, u64::MAX);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let c = counters(d, port);
        let now = (
            c["rx_packets"].as_u64().unwrap(),
            c["rx_dropped"].as_u64().unwrap(),
        );
        if now == last {
            return (now.0, now.1, c);
        }
        last = now;
    }
}

/// Every frame the kernel hands towards an AF_XDP or AF_PACKET port is either received or
/// counted as dropped: 9,000-byte frames on a generic-mode AF_XDP port (larger than a UMEM
/// frame: the kernel drops them, `XDP_STATISTICS` says so) and on an AF_PACKET port
/// (larger than a buffer), and a 200,000-frame burst on a native-mode port, whatever part
/// of it the switch could not keep up with.
#[test]
fn frames_lost_below_the_switch_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &[], &[]);
    let h = common::Hosts::new("hx", 19, 3);
    for i in 1..=3 {
        h.exec(i, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    }
    for (i, mtu) in [(1, "9000"), (2, "9000")] {
        common::run("ip", &["link", "set", &h.ports[i - 1], "mtu", mtu]);
        h.exec(i, &["ip", "link", "set", h.inner(i), "mtu", mtu]);
    }
    d.ok(&[
        "add-port",
        "br0",
        &h.ports[0],
        "type=afxdp",
        "xdp-mode=generic",
    ]);
    d.ok(&["add-port", "br0", &h.ports[1], "type=afpacket"]);
    d.ok(&[
        "add-port",
        "br0",
        &h.ports[2],
        "type=afxdp",
        "xdp-mode=native",
    ]);
    // Nothing forwarded: only what arrives matters.
    d.ok(&["del-flows", "br0"]);
    std::thread::sleep(Duration::from_millis(500));

    for (i, size, kind) in [(1, 9000, "afxdp"), (2, 9000, "afpacket")] {
        let port = &h.ports[i - 1];
        let (rx0, drop0, _) = settled(&d, port);
        let sent = blast(&h, i, size, 100);
        assert_eq!(sent, 100, "{kind}: the kernel did not take all 100 frames");
        let (rx, dropped, c) = settled(&d, port);
        assert_eq!(
            (rx - rx0, dropped - drop0),
            (0, 100),
            "{kind}: 100 jumbo frames not all counted as dropped: {c}"
        );
        let named = if kind == "afxdp" {
            c["counters"]["xdp_rx_dropped"].as_u64().unwrap()
        } else {
            c["counters"]["rx_too_big"].as_u64().unwrap()
        };
        assert!(named >= 100, "{kind}: the reason is not named: {c}");
    }

    let port = &h.ports[2];
    let (rx0, drop0, _) = settled(&d, port);
    let sent = blast(&h, 3, 60, 200_000);
    let (rx, dropped, c) = settled(&d, port);
    eprintln!(
        "burst: {sent} sent, {} received, {} dropped: {c}",
        rx - rx0,
        dropped - drop0
    );
    assert_eq!(
        (rx - rx0) + (dropped - drop0),
        sent,
        "frames went missing without a counter: {c}"
    );
}

// ---------------------------------------------------------------------------------------
// What one flow, group or meter may hold (item 5, the part outside the switch's write path).
// ---------------------------------------------------------------------------------------

/// A flow with 100,000 outputs, a group with 100,000 buckets and a meter with 1,000,000
/// bands were accepted (10 packets through the flow became a million frames): each is
/// INVALID_ARGUMENT naming its field, and nothing changed.
#[test]
fn oversized_actions_buckets_and_bands_are_refused() {
    use proto::v1::{self, entity, update};
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &[], &[]);
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    let before = d.ok(&["dump-flows", "--no-stats", "br0"]);
    let insert = |e: entity::Entity| v1::WriteRequest {
        bridge: "br0".into(),
        updates: vec![v1::Update {
            r#type: update::Type::Insert as i32,
            entity: Some(v1::Entity { entity: Some(e) }),
        }],
        atomicity: v1::Atomicity::AllOrNone as i32,
    };
    let mut flow = proto::flow_text::parse_flow("priority=7,actions=output:p1").unwrap();
    if let Some(v1::instruction::Instruction::ApplyActions(a)) =
        flow.instructions[0].instruction.as_mut()
    {
        a.actions = vec![a.actions[0].clone(); 100_000];
    }
    let mut group = proto::flow_text::parse_group("group_id=1,type=all,bucket=output:p1").unwrap();
    group.buckets = vec![group.buckets[0].clone(); 100_000];
    let mut meter = proto::flow_text::parse_meter("meter=1,pktps,bands=type=drop,rate=10").unwrap();
    meter.bands = vec![meter.bands[0]; 1_000_000];
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = vswitchd::client::connect_unix(&d.sock()).await.unwrap();
        for (what, e, field) in [
            // A flow meets the OpenFlow size check first ("input too big", proto's
            // flow_text::check_flow_size), before the action count.
            (
                "flow",
                entity::Entity::Flow(flow),
                "flow.instructions: input too big",
            ),
            ("group", entity::Entity::Group(group), "group.buckets"),
            ("meter", entity::Entity::Meter(meter), "meter.bands"),
        ] {
            let t = Instant::now();
            let s = c.write(insert(e)).await.unwrap_err();
            assert_eq!(s.code(), tonic::Code::InvalidArgument, "{what}: {s:?}");
            assert!(s.message().contains(field), "{what}: {}", s.message());
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{what}: {:?}",
                t.elapsed()
            );
        }
    });
    assert_eq!(d.ok(&["dump-flows", "--no-stats", "br0"]), before);
    assert!(d.ok(&["dump-groups", "br0"]).lines().count() <= 1);
}

/// Copies of one packet the poll threads shed for `--max-copies-per-packet` (pmd-stats).
fn copies_shed(d: &Vswitchd) -> u64 {
    let pmd = d.json(&["pmd-stats"]);
    pmd["pmds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["drops"]["drop_copies_over_limit"].as_u64().unwrap_or(0))
        .sum()
}

/// Frames port `port` sent or dropped on send (dump-ports), once they stop changing.
fn tx_settled(d: &Vswitchd, port: &str) -> u64 {
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let c = counters(d, port);
        let now = c["tx_packets"].as_u64().unwrap() + c["tx_dropped"].as_u64().unwrap();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// What one packet may turn into (the rest of item 5): with `--max-copies-per-packet 100`,
/// 10 frames into an `all` group of 1,000 buckets, and 10 into a flow that resubmits 64
/// times to a 1,000-output flow (64,000 outputs asked for; the walk stops past 8,192
/// operations, at 9,000), leave as exactly 10 * 101 frames each (before the bound, 10
/// packets through a 100,000-output flow were 1,000,300 frames), and the copies not made
/// are counted to the copy: 10 * 899 and 10 * 8,899.
#[test]
fn one_packet_makes_a_bounded_number_of_copies() {
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &[], &["--max-copies-per-packet", "100"]);
    let h = common::Hosts::new_quiet("hc", 20, 2);
    let (p1, p2) = (h.ports[0].as_str(), h.ports[1].as_str());
    d.ok(&["add-port", "br0", p1, "type=afpacket"]);
    d.ok(&["add-port", "br0", p2, "type=afpacket"]);
    d.ok(&["del-flows", "br0"]);
    let buckets = vec![format!("bucket=output:{p2}"); 1000].join(",");
    d.ok(&[
        "add-group",
        "br0",
        &format!("group_id=1,type=all,{buckets}"),
    ]);
    d.ok(&["add-flow", "br0", &format!("in_port={p1},actions=group:1")]);
    std::thread::sleep(Duration::from_millis(500));
    let resubmits = vec!["resubmit(,1)"; 64].join(",");
    let outputs = vec![format!("output:{p2}"); 1000].join(",");
    for (what, want_shed) in [("group", 10 * 899), ("resubmit", 10 * 8899)] {
        if what == "resubmit" {
            d.ok(&["del-flows", "br0"]);
            d.ok(&[
                "add-flow",
                "br0",
                &format!("table=0,in_port={p1},actions={resubmits}"),
            ]);
            d.ok(&["add-flow", "br0", &format!("table=1,actions={outputs}")]);
        }
        let (rx0, _, _) = settled(&d, p1);
        let (tx0, shed0) = (tx_settled(&d, p2), copies_shed(&d));
        let t = Instant::now();
        assert_eq!(
            blast(&h, 1, 60, 10),
            10,
            "{what}: the kernel took fewer than 10"
        );
        let (rx, _, _) = settled(&d, p1);
        let tx = tx_settled(&d, p2);
        let shed = copies_shed(&d);
        eprintln!(
            "{what}: {} in, {} out, {} copies shed, {:?}",
            rx - rx0,
            tx - tx0,
            shed - shed0,
            t.elapsed()
        );
        assert_eq!(
            rx - rx0,
            10,
            "{what}: the switch did not receive the 10 frames"
        );
        assert_eq!(tx - tx0, 10 * 101, "{what}: frames out of {p2}");
        assert_eq!(shed - shed0, want_shed, "{what}: copies counted as shed");
    }
    assert!(d.ok(&["pmd-stats"]).contains("drop_copies_over_limit"));
}

// ---------------------------------------------------------------------------------------
// Reads cost a bounded amount (item 2) and bridges hold a bounded amount (item 5).
// ---------------------------------------------------------------------------------------

/// Peak resident memory of process `pid` while `f` runs (sampled every 2 ms), in bytes.
fn peak_rss_during<T>(pid: u32, f: impl FnOnce() -> T) -> (T, u64) {
    let rss = move || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss());
                std::thread::sleep(Duration::from_millis(2));
            }
            peak.max(rss())
        })
    };
    let out = f();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    (out, sampler.join().unwrap())
}

/// Adds one flow to br0 every 20 ms until `until` (ports from `first`); returns the
/// slowest Write and how many were made.
async fn writes_for(sock: &std::path::Path, until: Instant, first: u32) -> (Duration, u32) {
    use proto::v1::{self, entity, update};
    let mut w = vswitchd::client::connect_unix(sock).await.unwrap();
    let mut worst = Duration::ZERO;
    let mut i = 0;
    while Instant::now() < until {
        let flow = proto::flow_text::parse_flow(&format!(
            "priority=9,tcp,tp_dst={},actions=drop",
            first + i
        ))
        .unwrap();
        let t = Instant::now();
        w.write(v1::WriteRequest {
            bridge: "br0".into(),
            updates: vec![v1::Update {
                r#type: update::Type::Insert as i32,
                entity: Some(v1::Entity {
                    entity: Some(entity::Entity::Flow(flow)),
                }),
            }],
            atomicity: v1::Atomicity::AllOrNone as i32,
        })
        .await
        .unwrap();
        worst = worst.max(t.elapsed());
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (worst, i)
}

/// Starts a Read of br0 (every flow) on its own HTTP/2 connection whose client never
/// reads the response and allows the server 64 KiB in flight.
async fn stalled_read(sock: &std::path::Path) -> (h2::client::ResponseFuture, Conn) {
    use prost::Message as _;
    let io = tokio::net::UnixStream::connect(sock).await.unwrap();
    let (client, conn) = h2::client::Builder::new()
        .initial_window_size(65_535)
        .initial_connection_window_size(65_535)
        .handshake(io)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let req = http::Request::post("http://localhost/vswitch.v1.Switch/Read")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (resp, mut stream) = client.send_request(req, false).unwrap();
    let body = proto::v1::ReadRequest {
        bridge: "br0".into(),
        filters: Vec::new(),
    }
    .encode_to_vec();
    let mut msg = vec![0u8];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes());
    msg.extend_from_slice(&body);
    stream.send_data(bytes::Bytes::from(msg), true).unwrap();
    (resp, conn)
}

/// The probe: with 2,001 flows, a 2 KB Read of 500 filters took the daemon to 1.0 GB, a
/// 4 KB one stalled a concurrent add-flow 1.24 s, a 16 KB one got it OOM-killed. Now: more
/// than 64 filters are refused at once; 64 overlapping filters return each flow once; 32
/// clients reading 64 filters each, over and over for 3 s, raise the daemon's memory by
/// under 64 MiB and never hold up a Write for 300 ms (or three times the slowest Write
/// without readers, on a machine slow to fsync); 8 clients that stop reading hold
/// their places only until the read stall time (2 s here), then the operator reads.
#[test]
fn reads_are_bounded_and_never_hold_up_writers() {
    use proto::v1::{self, entity, read_filter};
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &[], &["--request-timeout-s", "2"]);
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    let flows: String = (0..2000)
        .map(|i| {
            format!(
                "priority={},ip,nw_dst=10.{}.{}.0/24,actions=output:p1\n",
                100 + i % 7,
                i / 256,
                i % 256
            )
        })
        .collect();
    let f = dir.path().join("flows.txt");
    std::fs::write(&f, flows).unwrap();
    d.ok(&["add-flows", "br0", f.to_str().unwrap()]);
    let all = || v1::ReadFilter {
        filter: Some(read_filter::Filter::Flows(v1::FlowFilter::default())),
    };
    let ip = || v1::ReadFilter {
        filter: Some(read_filter::Filter::Flows(
            proto::flow_text::parse_match("ip").unwrap(),
        )),
    };
    let read = |n: usize| v1::ReadRequest {
        bridge: "br0".into(),
        filters: (0..n)
            .map(|i| if i % 2 == 0 { all() } else { ip() })
            .collect(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sock = d.sock();
    rt.block_on(async {
        let mut c = vswitchd::client::connect_unix(&sock).await.unwrap();
        let t = Instant::now();
        let e = c.read(read(500)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("at most 64"), "{}", e.message());
        assert!(t.elapsed() < Duration::from_millis(500));
        let mut s = c.read(read(64)).await.unwrap().into_inner();
        let mut n = 0;
        let mut seen = std::collections::HashSet::new();
        while let Some(r) = s.message().await.unwrap() {
            for e in r.entities {
                let Some(entity::Entity::Flow(mut f)) = e.entity else {
                    panic!("not a flow")
                };
                f.stats = None;
                assert!(seen.insert(proto::flow_text::format_flow(&f)));
                n += 1;
            }
        }
        assert_eq!(n, 2001);
    });

    // The same writes without readers, to compare with (a write waits for fsync).
    let (alone, _) = rt.block_on(writes_for(
        &sock,
        Instant::now() + Duration::from_secs(1),
        0,
    ));
    let rss0 = d.rss();
    let (worst, peak) = peak_rss_during(d.child.id(), || {
        rt.block_on(async {
            let until = Instant::now() + Duration::from_secs(3);
            let mut readers = Vec::new();
            for _ in 0..32 {
                let sock = sock.clone();
                let req = read(64);
                readers.push(tokio::spawn(async move {
                    let mut c = vswitchd::client::connect_unix(&sock).await.unwrap();
                    let mut reads = 0;
                    while Instant::now() < until {
                        let mut s = c.read(req.clone()).await.unwrap().into_inner();
                        while s.message().await.unwrap().is_some() {}
                        reads += 1;
                    }
                    reads
                }));
            }
            let (worst, i) = writes_for(&sock, until, 1000).await;
            let mut reads = 0;
            for r in readers {
                reads += r.await.unwrap();
            }
            eprintln!("{reads} reads of 64 filters and {i} writes in 3 s; slowest write {worst:?}");
            assert!(reads >= 32, "only {reads} reads finished");
            worst
        })
    });
    let grew = peak.saturating_sub(rss0);
    eprintln!(
        "memory: {} MiB before, {} MiB more at the peak",
        rss0 >> 20,
        grew >> 20
    );
    assert!(grew < 64 << 20, "the reads took {} MiB", grew >> 20);
    eprintln!("slowest write without readers: {alone:?}");
    assert!(
        worst < (alone * 3).max(Duration::from_millis(300)),
        "a write waited {worst:?} (without readers: {alone:?})"
    );

    // 8 clients that stop reading fill every place; the operator's Read waits for the
    // stall time (2 s), not forever; the stalled Reads end with DEADLINE_EXCEEDED. (With
    // 20,000 more flows: what HTTP/2 buffers for a client, about 400 KiB, does not hold a
    // whole answer.)
    let more: String = (0..20_000)
        .map(|i| format!("table=1,priority=5,tcp,tp_dst={i},actions=drop\n"))
        .collect();
    std::fs::write(&f, more).unwrap();
    d.ok(&["add-flows", "br0", f.to_str().unwrap()]);
    rt.block_on(async {
        let started = Instant::now();
        let mut stalled = Vec::new();
        for _ in 0..8 {
            stalled.push(stalled_read(&sock).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = Instant::now();
        let mut c = vswitchd::client::connect_unix(&sock).await.unwrap();
        let mut s = c.read(read(1)).await.unwrap().into_inner();
        let mut n = 0;
        while let Some(r) = s.message().await.unwrap() {
            n += r.entities.len();
        }
        assert!(n > 22_000);
        let waited = t.elapsed();
        eprintln!("with 8 stalled Reads, the operator's Read took {waited:?}");
        assert!(
            waited > Duration::from_millis(1500) && waited < Duration::from_secs(4),
            "{waited:?}"
        );
        // Every stalled Read was ended by now (the first one to end let the operator in).
        tokio::time::sleep(Duration::from_secs(3).saturating_sub(started.elapsed())).await;
        for (resp, _conn) in stalled {
            let resp = resp.await.unwrap();
            let mut body = resp.into_body();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            let trailers = body.trailers().await.unwrap().unwrap();
            assert_eq!(
                trailers.get("grpc-status").unwrap(),
                "4",
                "{:?}",
                trailers.get("grpc-message")
            );
        }
    });
}

/// A bridge full of flows, meters or groups refuses the next one with RESOURCE_EXHAUSTED
/// naming the limit, and a refused bulk load changes nothing (flowctl add-flows sends
/// all-or-none batches); a daemon restarted with lower limits keeps what its store holds.
#[test]
fn full_bridges_refuse_more_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(
        dir.path(),
        &[],
        &[
            "--max-flows-per-bridge",
            "1000",
            "--max-flows-per-table",
            "800",
            "--max-meters-per-bridge",
            "4",
        ],
    );
    let file = |n: usize, table: u32| {
        let text: String = (0..n)
            .map(|i| format!("table={table},priority=5,tcp,tp_dst={i},actions=drop\n"))
            .collect();
        let f = dir.path().join(format!("flows-{n}-{table}.txt"));
        std::fs::write(&f, text).unwrap();
        f.to_str().unwrap().to_string()
    };
    let before = d.ok(&["dump-flows", "--no-stats", "br0"]);
    let o = d.fc(&["add-flows", "br0", &file(900, 1)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("table 1 is full") && err.contains("--max-flows-per-table"),
        "{err}"
    );
    assert_eq!(d.ok(&["dump-flows", "--no-stats", "br0"]), before);
    d.ok(&["add-flows", "br0", &file(800, 1)]);
    let o = d.fc(&["add-flows", "br0", &file(300, 2)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--max-flows-per-bridge"), "{err}");
    d.ok(&["add-flows", "br0", &file(199, 2)]);
    // Full: 1 + 800 + 199. A new flow is refused; replacing one is not adding one.
    let o = d.fc(&["add-flow", "br0", "table=3,priority=1,actions=drop"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("RESOURCE_EXHAUSTED")
            || String::from_utf8_lossy(&o.stderr).contains("full")
    );
    d.ok(&[
        "add-flow",
        "br0",
        "table=2,priority=5,tcp,tp_dst=3,actions=output:1",
    ]);
    for id in 1..=4 {
        d.ok(&[
            "add-meter",
            "br0",
            &format!("meter={id},pktps,bands=type=drop,rate=10"),
        ]);
    }
    let o = d.fc(&["add-meter", "br0", "meter=5,pktps,bands=type=drop,rate=10"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--max-meters-per-bridge"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let count = |d: &Vswitchd| d.ok(&["dump-flows", "--no-stats", "br0"]).lines().count();
    assert_eq!(count(&d), 1000);
    let mut d = d;
    Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(d.child.wait().unwrap().success());
    drop(d);
    let d = Vswitchd::start(dir.path(), &[], &["--max-flows-per-bridge", "10"]);
    assert_eq!(count(&d), 1000);
    assert!(
        d.log()
            .contains("the store holds 1000 flows, more than --max-flows-per-bridge (10)"),
        "{}",
        d.log()
    );
}

/// Memory comes back after a large delete (item 9: it did not): 50,000 flows added then
/// deleted leave the daemon within a quarter of what they took. With
/// `MIMALLOC_PURGE_DELAY=0` the allocator returns freed memory at once, so this checks
/// that nothing of the switch's own keeps the deleted flows (the flow-change history once
/// did until 64 more changes came).
#[test]
fn memory_comes_back_after_a_large_delete() {
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &["env", "MIMALLOC_PURGE_DELAY=0"], &[]);
    let flows: String = (0..50_000)
        .map(|i| {
            format!(
                "priority={},ip,nw_dst=10.{}.{}.{},actions=drop\n",
                100 + i % 7,
                i / 65536,
                (i / 256) % 256,
                i % 256
            )
        })
        .collect();
    let f = dir.path().join("flows.txt");
    std::fs::write(&f, flows).unwrap();
    let base = d.rss();
    d.ok(&["add-flows", "br0", f.to_str().unwrap()]);
    let full = d.rss();
    d.ok(&["del-flows", "br0"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = d.rss();
        let kept = now.saturating_sub(base);
        if kept < full.saturating_sub(base) / 4 {
            eprintln!(
                "{} MiB at start, {} MiB with 50,000 flows, {} MiB after deleting them",
                base >> 20,
                full >> 20,
                now >> 20
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} MiB at start, {} MiB with 50,000 flows, still {} MiB after deleting them",
            base >> 20,
            full >> 20,
            now >> 20
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
