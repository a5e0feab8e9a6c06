//! Connection floods, descriptor exhaustion, and oversized, stalled and idle requests.

use std::process::Command;
use std::time::{Duration, Instant};

use super::common::{self, free_port, tls_file};
use super::{Conn, Vswitchd};

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
