//! The daemon's logs: `tracing` to stderr, as text or as one JSON object per line, filtered
//! by `--log-level` and `RUST_LOG` together; and [`RateLimit`], which keeps an event that can
//! repeat (a refused request, a failed packet-out) from filling a disk.
//!
//! Filtering: `RUST_LOG`'s directives apply first, then `--log-level`'s, so the flag wins
//! where both name the same target (`--log-level warn` with `RUST_LOG=vswitchd::metrics=debug`
//! logs warnings, and that module's debug messages too). Neither given: `info`.
//!
//! Thread-safety: [`init`] runs once, before any thread starts; `RateLimit` is `Sync` and
//! takes a mutex, so it belongs on control paths, never on a poll thread.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`),
    /// and `span`/`spans` with the fields of the spans it happened in (an API request's
    /// `rpc` and `peer`).
    Json,
}

/// Checks a `--log-level` value: a level name, or filter directives (`TARGET=LEVEL,...`) as
/// `RUST_LOG` takes them.
pub fn check_filter(s: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let plain_level = LEVELS.contains(&s.to_ascii_lowercase().as_str());
    if !plain_level && !s.contains('=') {
        return Err(format!(
            "{s:?} is neither a level ({}) nor a filter such as `info,vswitchd=debug`",
            LEVELS.join(", ")
        ));
    }
    EnvFilter::try_new(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// The filter from `--log-level` (`flag`) and `RUST_LOG` (`env`), and a warning to log when
/// `RUST_LOG` did not parse (it is then ignored).
pub fn filter(flag: Option<&str>, env: Option<&str>) -> (EnvFilter, Option<String>) {
    let env = env.map(str::trim).filter(|v| !v.is_empty());
    let mut warning = None;
    let mut f = match env {
        Some(v) => EnvFilter::try_new(v).unwrap_or_else(|e| {
            warning = Some(format!("RUST_LOG={v:?} ignored: {e}"));
            EnvFilter::new("info")
        }),
        None if flag.is_some() => EnvFilter::new(""),
        None => EnvFilter::new("info"),
    };
    if let Some(flag) = flag {
        for d in flag.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            // `check_filter` accepted the whole string, so each directive parses.
            if let Ok(d) = d.parse::<Directive>() {
                f = f.add_directive(d);
            }
        }
    }
    (f, warning)
}

/// Logs to stderr through `tracing` in `format`, filtered as the module documentation says.
pub fn init(flag: Option<&str>, format: LogFormat) {
    let env = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let (f, warning) = filter(flag, env.as_deref());
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(f)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(f)
            .with_writer(std::io::stderr)
            .init(),
    }
    if let Some(msg) = warning {
        tracing::warn!("{msg}");
    }
}

/// Lets at most `burst` events through per `period`, and says how many it held back.
///
/// A repeating event (a client sending bad requests in a loop) then costs `burst` lines a
/// period, not one line per event; the first line after a quiet stretch carries the count of
/// those held back. The same idea as [`datapath::log::RateLimit`] (one event per period),
/// with a burst: API errors from several clients in one second are each different, and all
/// of them are seen.
#[derive(Debug)]
pub struct RateLimit {
    period: Duration,
    burst: u32,
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    start: Option<Instant>,
    passed: u32,
    held: u64,
}

impl RateLimit {
    /// At most `burst` events per `period`.
    pub const fn new(period: Duration, burst: u32) -> RateLimit {
        RateLimit {
            period,
            burst,
            state: Mutex::new(Window {
                start: None,
                passed: 0,
                held: 0,
            }),
        }
    }

    /// `Some(n)` when this event may be logged (`n`: events held back since the last one
    /// logged), `None` when it is held back.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut w = self.state.lock();
        match w.start {
            Some(s) if now.duration_since(s) < self.period => {
                if w.passed < self.burst {
                    w.passed += 1;
                    Some(std::mem::take(&mut w.held))
                } else {
                    w.held += 1;
                    None
                }
            }
            _ => {
                w.start = Some(now);
                w.passed = 1;
                Some(std::mem::take(&mut w.held))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_period_then_a_count_of_the_rest() {
        let r = RateLimit::new(Duration::from_secs(1), 2);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(r.allow_at(t0), Some(0));
        assert_eq!(r.allow_at(ms(10)), Some(0));
        assert_eq!(r.allow_at(ms(20)), None);
        assert_eq!(r.allow_at(ms(999)), None);
        assert_eq!(r.allow_at(ms(1000)), Some(2));
        assert_eq!(r.allow_at(ms(1001)), Some(0));
        assert_eq!(r.allow_at(ms(1002)), None);
        assert_eq!(r.allow_at(ms(5000)), Some(1));
    }

    #[test]
    fn flag_and_environment_combine_and_the_flag_wins_on_the_same_target() {
        let show = |flag, env| filter(flag, env).0.to_string();
        assert_eq!(show(None, None), "info");
        assert_eq!(show(Some("warn"), None), "warn");
        let both = show(Some("warn"), Some("vswitchd::metrics=debug"));
        assert!(both.contains("vswitchd::metrics=debug"), "{both}");
        assert!(both.contains("warn"), "{both}");
        // Same target (the default level): the flag's.
        let same = show(Some("error"), Some("debug"));
        assert!(same.contains("error") && !same.contains("debug"), "{same}");
        let (f, warning) = filter(None, Some("=bad=,"));
        assert_eq!(f.to_string(), "info");
        assert!(warning.is_some_and(|w| w.contains("RUST_LOG")));
        assert!(check_filter("verbose").is_err());
        assert!(check_filter("info,vswitchd=debug").is_ok());
    }
}
