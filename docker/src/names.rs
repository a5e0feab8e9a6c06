//! Deterministic interface and port names, from Docker's ids.
//!
//! Every interface and switch port the plugin makes is named `{prefix}...` (prefix 1 to 4
//! characters, default `vd`), so after a crash of the plugin or the switch it finds them
//! again by name, and reconciliation may remove any name with the prefix that its state
//! does not list. Kernel interface names have at most 15 bytes:
//! - an endpoint's switch port (the veth's host end): prefix, endpoint id digits, `p`;
//! - the container end before Docker moves it: the same with `c`;
//! - a network's gateway port: prefix, `g`, network id digits (ids are hexadecimal, so
//!   `g` never appears in an endpoint's name).

use crate::api::Id;

/// Longest kernel interface name.
const IFNAMSIZ: usize = 15;

/// A validated name prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl std::str::FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Prefix, String> {
        if (1..=4).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            Ok(Prefix(s.to_string()))
        } else {
            Err(format!(
                "{s:?}: an interface name prefix is 1-4 characters of a-z 0-9"
            ))
        }
    }
}

impl Prefix {
    /// The prefix itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn digits(&self) -> usize {
        IFNAMSIZ - self.0.len() - 1
    }

    /// An endpoint's switch port (host end of its veth pair).
    pub fn port(&self, endpoint: &Id) -> String {
        format!("{}{}p", self.0, endpoint.short(self.digits()))
    }

    /// An endpoint's container-side interface, before Docker moves it.
    pub fn inner(&self, endpoint: &Id) -> String {
        format!("{}{}c", self.0, endpoint.short(self.digits()))
    }

    /// A network's gateway port.
    pub fn gateway(&self, network: &Id) -> String {
        format!("{}g{}", self.0, network.short(self.digits()))
    }

    /// True for a name this prefix owns.
    pub fn owns(&self, name: &str) -> bool {
        name.starts_with(&self.0)
            && name.len() > self.0.len()
            && name[self.0.len()..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b'p' | b'c' | b'g'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_differ() {
        let p: Prefix = "vd".parse().unwrap();
        let id: Id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .parse()
            .unwrap();
        assert_eq!(p.port(&id), "vd0123456789abp");
        assert_eq!(p.inner(&id), "vd0123456789abc");
        assert_eq!(p.gateway(&id), "vdg0123456789ab");
        for n in [p.port(&id), p.inner(&id), p.gateway(&id)] {
            assert!(n.len() <= 15);
            assert!(p.owns(&n));
        }
        let long: Prefix = "t123".parse().unwrap();
        assert_eq!(long.port(&id).len(), 15);
        assert!(!p.owns("vdx"));
        assert!(!p.owns("eth0"));
        assert!("toolong".parse::<Prefix>().is_err());
        assert!("V".parse::<Prefix>().is_err());
    }
}
