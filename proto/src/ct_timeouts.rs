//! The connection tracker's timeout attributes by Open vSwitch's names
//! (`ovs-vsctl add-zone-tp`'s `tcp_established=SECS`...), over [`v1::ConntrackTimeouts`].

use crate::v1::ConntrackTimeouts;

/// The attribute names, in the order of [`ConntrackTimeouts::attrs`].
pub const NAMES: [&str; 11] = [
    "tcp_syn_sent",
    "tcp_syn_recv",
    "tcp_established",
    "tcp_fin_wait",
    "tcp_time_wait",
    "tcp_close",
    "udp_first",
    "udp_single",
    "udp_multiple",
    "icmp_first",
    "icmp_reply",
];

impl ConntrackTimeouts {
    /// The attributes in [`NAMES`]'s order.
    pub fn attrs(&self) -> [Option<u32>; 11] {
        [
            self.tcp_syn_sent,
            self.tcp_syn_recv,
            self.tcp_established,
            self.tcp_fin_wait,
            self.tcp_time_wait,
            self.tcp_close,
            self.udp_first,
            self.udp_single,
            self.udp_multiple,
            self.icmp_first,
            self.icmp_reply,
        ]
    }

    /// Timeouts from attributes in [`NAMES`]'s order.
    pub fn from_attrs(a: [Option<u32>; 11]) -> ConntrackTimeouts {
        ConntrackTimeouts {
            tcp_syn_sent: a[0],
            tcp_syn_recv: a[1],
            tcp_established: a[2],
            tcp_fin_wait: a[3],
            tcp_time_wait: a[4],
            tcp_close: a[5],
            udp_first: a[6],
            udp_single: a[7],
            udp_multiple: a[8],
            icmp_first: a[9],
            icmp_reply: a[10],
        }
    }

    /// True when no attribute is set.
    pub fn is_empty(&self) -> bool {
        self.attrs().iter().all(Option::is_none)
    }

    /// Sets attribute `name`; false when there is no such attribute.
    pub fn set(&mut self, name: &str, secs: u32) -> bool {
        let Some(i) = NAMES.iter().position(|n| *n == name) else {
            return false;
        };
        let mut a = self.attrs();
        a[i] = Some(secs);
        *self = ConntrackTimeouts::from_attrs(a);
        true
    }

    /// `self` with `over`'s set attributes laid over it.
    pub fn overlaid(&self, over: &ConntrackTimeouts) -> ConntrackTimeouts {
        let (mut a, o) = (self.attrs(), over.attrs());
        for (a, o) in a.iter_mut().zip(o) {
            if o.is_some() {
                *a = o;
            }
        }
        ConntrackTimeouts::from_attrs(a)
    }

    /// The set attributes as `name=SECS` separated by spaces, in [`NAMES`]'s order.
    pub fn to_text(&self) -> String {
        NAMES
            .iter()
            .zip(self.attrs())
            .filter_map(|(n, v)| v.map(|v| format!("{n}={v}")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reach_every_attribute_once() {
        let mut t = ConntrackTimeouts::default();
        assert!(t.is_empty());
        for (i, n) in NAMES.iter().enumerate() {
            assert!(t.set(n, i as u32 + 1));
        }
        assert_eq!(t.attrs(), std::array::from_fn(|i| Some(i as u32 + 1)));
        assert!(!t.set("tcp_unack", 3));
        let over = ConntrackTimeouts {
            udp_single: Some(2),
            ..Default::default()
        };
        assert_eq!(t.overlaid(&over).udp_single, Some(2));
        assert_eq!(over.to_text(), "udp_single=2");
    }
}
