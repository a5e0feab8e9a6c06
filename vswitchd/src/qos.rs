//! Port rate control from port options: the ingress policer and the egress queues.
//!
//! What: parses the options `ingress_policing_rate`, `ingress_policing_burst`,
//! `qos-max-rate`, `qos-burst` and `queue.N` into a [`RateSpec`], with errors that name the
//! option at fault, and builds the datapath's [`datapath::qos`] objects from it.

use std::collections::HashMap;

use datapath::qos::{QosConfig, QueueConfig};

use crate::error::{ApiError, quote};

/// Port options that configure rate control (see [`RateSpec::parse`]).
pub const RATE_CONTROL_OPTIONS: &[&str] = &[
    "ingress_policing_rate",
    "ingress_policing_burst",
    "qos-max-rate",
    "qos-burst",
];

/// True for an option key [`RateSpec::parse`] reads (`queue.N` included).
pub fn is_rate_control_option(key: &str) -> bool {
    RATE_CONTROL_OPTIONS.contains(&key) || key.starts_with("queue.")
}

/// A port's ingress policer and egress queues.
pub type RateControl = (
    Option<std::sync::Arc<datapath::qos::Policer>>,
    Option<std::sync::Arc<datapath::qos::EgressQos>>,
);

/// A port's rate control, parsed from its options and checked ([`RateSpec::parse`]);
/// [`RateSpec::build`] makes the datapath's objects from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateSpec {
    /// The ingress policer: rate in kbit/s and burst in kb (0: the default).
    pub policer: Option<(u64, u64)>,
    /// Egress shaping and queues.
    pub qos: Option<QosConfig>,
}

impl RateSpec {
    /// Parses a port's rate-control options:
    /// - `ingress_policing_rate=KBPS` (0 or absent: none), `ingress_policing_burst=KB`
    ///   (default 8000), as OVS;
    /// - `qos-max-rate=KBPS`: the port sends at most this rate and queues the rest;
    ///   `qos-burst=KB`; `queue.N=priority:P,weight:W,limit:L` (each part optional; defaults
    ///   priority 0, weight 1, limit 512 packets) configures queue N (0..=63) for
    ///   `set_queue:N`.
    pub fn parse(options: &HashMap<String, String>) -> Result<RateSpec, ApiError> {
        let spec = RateSpec {
            policer: policer(options)?,
            qos: egress(options)?,
        };
        // What the datapath checks (weights, limits, duplicate queues), checked now.
        spec.build(0)?;
        Ok(spec)
    }

    /// The datapath's policer and egress queues, their token buckets starting at `now_ns`.
    pub fn build(&self, now_ns: u64) -> Result<RateControl, ApiError> {
        use datapath::qos::{EgressQos, Policer};
        let policer = match self.policer {
            None => None,
            Some((rate, burst)) => Some(std::sync::Arc::new(
                Policer::new(rate, burst, now_ns).map_err(|e| {
                    ApiError::invalid("port.options.ingress_policing_rate", e.to_string())
                })?,
            )),
        };
        let qos = match &self.qos {
            None => None,
            Some(c) => Some(std::sync::Arc::new(
                EgressQos::new(c.clone(), now_ns).map_err(qos_error)?,
            )),
        };
        Ok((policer, qos))
    }
}

fn num(options: &HashMap<String, String>, k: &str) -> Result<Option<u64>, ApiError> {
    options
        .get(k)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                ApiError::invalid(
                    format!("port.options.{k}"),
                    format!("{} is not a whole number", quote(v)),
                )
            })
        })
        .transpose()
}

fn policer(options: &HashMap<String, String>) -> Result<Option<(u64, u64)>, ApiError> {
    match num(options, "ingress_policing_rate")? {
        None | Some(0) => {
            if options.contains_key("ingress_policing_burst")
                && num(options, "ingress_policing_rate")?.is_none()
            {
                return Err(ApiError::invalid(
                    "port.options.ingress_policing_burst",
                    "needs ingress_policing_rate",
                ));
            }
            Ok(None)
        }
        Some(rate) => Ok(Some((
            rate,
            num(options, "ingress_policing_burst")?.unwrap_or(0),
        ))),
    }
}

fn egress(options: &HashMap<String, String>) -> Result<Option<QosConfig>, ApiError> {
    let mut queues = Vec::new();
    let mut keys: Vec<&String> = options.keys().filter(|k| k.starts_with("queue.")).collect();
    keys.sort();
    for k in keys {
        queues.push(queue(k, &options[k])?);
    }
    match num(options, "qos-max-rate")? {
        None => {
            if let Some(k) = ["qos-burst"]
                .iter()
                .copied()
                .find(|k| options.contains_key(*k))
                .or_else(|| (!queues.is_empty()).then_some("queue.N"))
            {
                return Err(ApiError::invalid(
                    format!("port.options.{k}"),
                    "egress queues need qos-max-rate (the rate the port sends at)",
                ));
            }
            Ok(None)
        }
        Some(rate) => Ok(Some(QosConfig {
            max_rate_kbps: rate,
            burst_kb: num(options, "qos-burst")?.unwrap_or(0),
            queues,
        })),
    }
}

/// One `queue.N=priority:P,weight:W,limit:L` option.
fn queue(k: &str, value: &str) -> Result<QueueConfig, ApiError> {
    let field = format!("port.options.{k}");
    let id = k["queue.".len()..]
        .parse::<u32>()
        .ok()
        .filter(|id| *id <= datapath::qos::MAX_QUEUE_ID)
        .ok_or_else(|| {
            ApiError::invalid(
                &field,
                format!(
                    "queue id must be 0..={} (queue.N=priority:P,weight:W,limit:L)",
                    datapath::qos::MAX_QUEUE_ID
                ),
            )
        })?;
    let mut q = QueueConfig::new(id);
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once(':').ok_or_else(|| {
            ApiError::invalid(&field, format!("{}: expected NAME:VALUE", quote(part)))
        })?;
        let bad = || ApiError::invalid(&field, format!("{}: bad value", quote(part)));
        match name.trim() {
            "priority" => q.priority = value.trim().parse().map_err(|_| bad())?,
            "weight" => q.weight = value.trim().parse().map_err(|_| bad())?,
            "limit" => q.limit = value.trim().parse().map_err(|_| bad())?,
            other => {
                return Err(ApiError::invalid(
                    &field,
                    format!(
                        "unknown queue setting {} (priority, weight, limit)",
                        quote(other)
                    ),
                ));
            }
        }
    }
    Ok(q)
}

fn qos_error(e: datapath::qos::QosError) -> ApiError {
    use datapath::qos::QosError as E;
    let field = match e {
        E::BadWeight(id) | E::BadLimit(id) | E::DuplicateQueue(id) | E::BadQueueId(id) => {
            format!("port.options.queue.{id}")
        }
        E::ZeroRate(_) => "port.options.qos-max-rate".to_string(),
    };
    ApiError::invalid(field, e.to_string())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn port_rate_control(
        options: &HashMap<String, String>,
        now_ns: u64,
    ) -> Result<RateControl, ApiError> {
        RateSpec::parse(options)?.build(now_ns)
    }

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_build_policer_and_queues() {
        let (p, q) = port_rate_control(
            &opts(&[
                ("ingress_policing_rate", "1000"),
                ("qos-max-rate", "20000"),
                ("queue.1", "priority:7"),
                ("queue.2", "weight:3, limit:64"),
            ]),
            0,
        )
        .expect("valid");
        let p = p.expect("policer");
        assert_eq!((p.rate_kbps, p.burst_kb), (1000, 8000));
        let q = q.expect("qos");
        let ids: Vec<_> = q
            .config()
            .queues
            .iter()
            .map(|q| (q.id, q.priority, q.weight, q.limit))
            .collect();
        assert_eq!(ids, vec![(0, 0, 1, 512), (1, 7, 1, 512), (2, 0, 3, 64)]);
        let (p, q) = port_rate_control(&opts(&[("ingress_policing_rate", "0")]), 0).expect("ok");
        assert!(p.is_none() && q.is_none());
    }

    #[test]
    fn errors_name_the_option() {
        for (kv, field) in [
            (vec![("queue.1", "priority:7")], "port.options.queue.N"),
            (
                vec![("qos-max-rate", "1"), ("queue.x", "")],
                "port.options.queue.x",
            ),
            (
                vec![("qos-max-rate", "1"), ("queue.1", "priority:300")],
                "port.options.queue.1",
            ),
            (
                vec![("qos-max-rate", "1"), ("queue.1", "weight:0")],
                "port.options.queue.1",
            ),
            (vec![("qos-max-rate", "0")], "port.options.qos-max-rate"),
            (
                vec![("ingress_policing_burst", "5")],
                "port.options.ingress_policing_burst",
            ),
            (
                vec![("ingress_policing_rate", "-1")],
                "port.options.ingress_policing_rate",
            ),
        ] {
            let e = port_rate_control(&opts(&kv), 0).expect_err("refused");
            assert_eq!(e.field, field, "{kv:?}: {e}");
        }
    }

    proptest! {
        /// Any option map is accepted or refused with an error, never a panic.
        #[test]
        fn never_panics(kv in proptest::collection::vec((
            prop_oneof![
                Just("ingress_policing_rate".to_string()),
                Just("ingress_policing_burst".to_string()),
                Just("qos-max-rate".to_string()),
                Just("qos-burst".to_string()),
                "queue\\.[0-9x]{0,3}",
            ],
            prop_oneof!["[0-9]{0,20}", "[a-z:,0-9 ]{0,30}", "(priority|weight|limit):[0-9]{0,12}(,(priority|weight|limit):[0-9]{0,6})?"],
        ), 0..6)) {
            let m: HashMap<String, String> = kv.into_iter().collect();
            let _ = port_rate_control(&m, 0);
        }
    }
}
