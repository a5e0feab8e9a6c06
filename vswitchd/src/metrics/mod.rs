//! Prometheus metrics: `vswitchd --metrics tcp:HOST:PORT` (or `unix:PATH`) serves the
//! switch's counters at `/metrics` in the Prometheus text format. Off unless asked for.
//!
//! - `collector`: reads the switch's statistics calls at each scrape (nothing is copied
//!   between scrapes, and no poll thread waits for a scrape); `conntrack`: the trackers'
//!   families.
//! - `instruments`: process-wide latency histograms (store commits, API requests by RPC),
//!   recorded where the work happens.
//! - `http`: the endpoint.
//!
//! The families and their labels are listed in docs/operating.md.

mod collector;
mod conntrack;
mod http;
mod instruments;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use self::collector::SwitchCollector;
pub use self::http::{Endpoint, HEADER_TIMEOUT, MAX_CONNECTIONS};
pub use self::instruments::{Instruments, code_name, instruments};
use crate::switch::Switch;

/// Where to serve metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAddr {
    /// A TCP address (plain HTTP).
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

impl std::str::FromStr for MetricsAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<MetricsAddr, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a path".into());
            }
            Ok(MetricsAddr::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("tcp:") {
            a.parse()
                .map(MetricsAddr::Tcp)
                .map_err(|e| format!("tcp:{a}: {e} (expected tcp:HOST:PORT with a numeric host)"))
        } else {
            Err(format!(
                "{s:?}: expected tcp:HOST:PORT (e.g. tcp:127.0.0.1:9477) or unix:PATH"
            ))
        }
    }
}

impl std::fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsAddr::Tcp(a) => write!(f, "tcp:{a}"),
            MetricsAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The registry a metrics endpoint serves: the switch's counters (read at each scrape),
/// the process-wide latency instruments, and `vswitch_build_info`.
pub fn registry(sw: &Arc<Switch>) -> Registry {
    let mut r = Registry::default();
    let info: Gauge = Gauge::default();
    info.set(1);
    r.sub_registry_with_label(("version".into(), env!("CARGO_PKG_VERSION").into()))
        .register(
            "vswitch_build_info",
            "The daemon's version (always 1)",
            info,
        );
    instruments().register(&mut r);
    r.register_collector(Box::new(SwitchCollector::new(Arc::downgrade(sw))));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::switch::SwitchConfig;
    use proto::v1;
    use std::time::{Duration, Instant};

    fn scrape(r: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, r).expect("encode");
        out
    }

    /// Frames injected into an in-memory port show in the next scrape, exactly.
    #[test]
    fn a_scrape_reads_the_counters_the_poll_thread_moves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("conf.db")).expect("store");
        let sw = Switch::start(store, SwitchConfig::default()).expect("switch");
        for (name, no) in [("m1", 1), ("m2", 2)] {
            sw.add_port(v1::AddPortRequest {
                bridge: "br0".into(),
                port: Some(v1::PortConfig {
                    name: name.into(),
                    r#type: "memory".into(),
                    requested_ofport: Some(no),
                    ..Default::default()
                }),
            })
            .expect("port");
        }
        let r = registry(&sw);
        let rx = "vswitch_port_rx_packets_total{bridge=\"br0\",port=\"m1\",type=\"memory\"}";
        let tx = "vswitch_port_tx_packets_total{bridge=\"br0\",port=\"m2\",type=\"memory\"}";
        let text = scrape(&r);
        assert!(text.contains(&format!("{rx} 0\n")), "{text}");
        let mut frame = vec![0u8; 60];
        frame[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
        frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        let m1 = sw.memory_port("br0", "m1").expect("m1");
        m1.inject(std::iter::repeat_n(frame, 37));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = scrape(&r);
            if text.contains(&format!("{tx} 37\n")) {
                assert!(text.contains(&format!("{rx} 37\n")), "{text}");
                assert!(
                    text.contains("vswitch_pmd_rx_packets_total{bridge=\"br0\",pmd=\"0\"} 37\n")
                );
                // Table 0's `normal` flow looked up and matched each of them.
                for t in ["lookups", "matches"] {
                    let line =
                        format!("vswitch_table_{t}_total{{bridge=\"br0\",table=\"0\"}} 37\n");
                    assert!(text.contains(&line), "no {line} in {text}");
                }
                break;
            }
            assert!(Instant::now() < deadline, "{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
        sw.shutdown();
        drop(sw);
        // A switch gone: the scrape still answers, without its families.
        let text = scrape(&r);
        assert!(!text.contains("vswitch_port_rx_packets_total"), "{text}");
        assert!(text.contains("vswitch_build_info"), "{text}");
    }

    #[test]
    fn addresses_parse_and_print_back() {
        for s in [
            "tcp:127.0.0.1:9477",
            "tcp:[::1]:9477",
            "unix:/run/vswitch/metrics.sock",
        ] {
            let a: MetricsAddr = s.parse().expect(s);
            assert_eq!(a.to_string(), s);
        }
        for bad in ["127.0.0.1:9477", "tcp:localhost:9477", "unix:", "http://x"] {
            assert!(bad.parse::<MetricsAddr>().is_err(), "{bad}");
        }
    }
}
