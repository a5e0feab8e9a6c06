//! A real Prometheus (Debian's `prometheus`) for the metrics tests: one per test binary, on
//! loopback at a free port, with its own data directory, scraping every second whatever
//! targets the tests register (file-based discovery), queried through its HTTP API.
//!
//! It is started by the first test that asks for it and stopped when the test binary exits:
//! a watchdog shell kills it (and removes its directory) once the test process is gone, so
//! no Prometheus outlives its tests even when one panics.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running Prometheus.
pub struct Prometheus {
    /// Its HTTP address.
    pub addr: SocketAddr,
    dir: PathBuf,
    /// The watchdog shell (it outlives this process by design: it is what stops
    /// Prometheus once the tests are gone).
    _watchdog: Child,
}

static PROMETHEUS: OnceLock<Prometheus> = OnceLock::new();

/// This test binary's Prometheus, started on first use.
pub fn prometheus() -> &'static Prometheus {
    PROMETHEUS.get_or_init(Prometheus::start)
}

impl Prometheus {
    fn start() -> Prometheus {
        for tool in ["prometheus", "promtool"] {
            let found = Command::new(tool).arg("--version").output().is_ok();
            assert!(found, "{tool} is missing: apt-get install prometheus");
        }
        let dir = std::env::temp_dir().join(format!("vswitch-prom-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("targets")).expect("prometheus directory");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: vswitchd\n    file_sd_configs:\n\
             \x20     - files: ['{}/targets/*.json']\n        refresh_interval: 1s\n",
            dir.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", super::free_port())
            .parse()
            .expect("address");
        let cmd = format!(
            "prometheus --config.file={d}/prometheus.yml --storage.tsdb.path={d}/data \
             --web.listen-address={addr} --log.level=warn >{d}/prometheus.log 2>&1 &\n\
             p=$!\n\
             while kill -0 {test} 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 1; done\n\
             kill $p 2>/dev/null; wait $p; rm -rf {d}\n",
            d = dir.display(),
            test = std::process::id(),
        );
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            addr,
            dir,
            _watchdog: watchdog,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while p.get("/-/ready").map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "prometheus never became ready: {}",
                std::fs::read_to_string(p.dir.join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// Makes Prometheus scrape `target` (HOST:PORT), its series labelled `test=NAME`.
    pub fn scrape(&self, name: &str, target: &str) {
        let body = format!("[{{\"targets\":[\"{target}\"],\"labels\":{{\"test\":\"{name}\"}}}}]");
        let tmp = self.dir.join(format!("{name}.json.tmp"));
        std::fs::write(&tmp, body).expect("write the target file");
        std::fs::rename(&tmp, self.dir.join("targets").join(format!("{name}.json")))
            .expect("publish the target file");
    }

    /// The value of the single series `expr` selects now, if there is one.
    pub fn value(&self, expr: &str) -> Option<f64> {
        let (status, body) = self.get(&format!("/api/v1/query?query={}", encode(expr)))?;
        assert_eq!(status, 200, "query {expr}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("query answer is JSON");
        let result = v["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{expr} selects several series: {body}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `expr` has a value that `ok` accepts; returns it. Fails after `secs`.
    pub fn wait_for(&self, expr: &str, secs: u64, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.value(expr);
            if let Some(v) = v.filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{expr} is {v:?} after {secs} s (targets: {})",
                self.get("/api/v1/targets")
                    .map(|(_, b)| b)
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `GET path` on Prometheus: status and body.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr, path)
    }
}

/// A plain HTTP/1.0 GET: status and body (`None` when the connection fails).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `promtool check metrics` on `text`: it must accept it without a remark.
pub fn promtool_accepts(text: &str) {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let o = c.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
}
