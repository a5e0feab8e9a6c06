//! IPv6 neighbour discovery as the flow key sees it: the target address of a neighbour
//! solicitation (ICMPv6 type 135) or advertisement (136), and its link-layer address option
//! (the source's on a solicitation, the target's on an advertisement), read as Open vSwitch
//! reads them: code 0 only; the options are walked in order, one of zero length or running
//! past the message ends the walk (what was read so far counts), and a second source or
//! second target link-layer address option makes the message invalid (target and address
//! read as zero). Also where those bytes are, for rewrites.
//!
//! Thread-safety: pure functions.

/// ICMPv6 neighbour solicitation.
pub const SOLICIT: u8 = 135;
/// ICMPv6 neighbour advertisement.
pub const ADVERT: u8 = 136;

/// Offset of the target address in the ICMPv6 message.
pub const TARGET_AT: usize = 8;
/// Where the options start.
const OPTIONS_AT: usize = 24;
/// Source and target link-layer address option types.
const OPT_SLL: u8 = 1;
const OPT_TLL: u8 = 2;

/// Whether `icmp` (an ICMPv6 message) is neighbour discovery with a whole target.
#[inline]
pub fn is_nd(icmp: &[u8]) -> bool {
    icmp.len() >= OPTIONS_AT && (icmp[0] == SOLICIT || icmp[0] == ADVERT) && icmp[1] == 0
}

/// The offsets of the source and target link-layer addresses (six bytes each) of a
/// neighbour discovery message, `None` for an absent option; `Err` when an option is given
/// twice.
fn lladdrs(icmp: &[u8]) -> Result<[Option<usize>; 2], ()> {
    let mut found = [None, None];
    let mut at = OPTIONS_AT;
    while at + 8 <= icmp.len() {
        let (t, len) = (icmp[at], icmp[at + 1] as usize * 8);
        if len == 0 || at + len > icmp.len() {
            break;
        }
        if (t == OPT_SLL || t == OPT_TLL) && len == 8 {
            let slot = &mut found[(t - OPT_SLL) as usize];
            if slot.is_some() {
                return Err(());
            }
            *slot = Some(at + 2);
        }
        at += len;
    }
    Ok(found)
}

/// The offset in `icmp` of the link-layer address a message of its type carries (a
/// solicitation's source, an advertisement's target), if it has one.
pub fn lladdr_at(icmp: &[u8]) -> Option<usize> {
    if !is_nd(icmp) {
        return None;
    }
    lladdrs(icmp).ok()?[(icmp[0] == ADVERT) as usize]
}

/// The target and the link-layer address (48 bits, 0 without the option) of a neighbour
/// discovery message; `None` for any other ICMPv6 message.
#[inline]
pub fn fields(icmp: &[u8]) -> Option<(u128, u64)> {
    if !is_nd(icmp) {
        return None;
    }
    let Ok(found) = lladdrs(icmp) else {
        return Some((0, 0));
    };
    let mut t = [0u8; 16];
    t.copy_from_slice(&icmp[TARGET_AT..TARGET_AT + 16]);
    let ll = found[(icmp[0] == ADVERT) as usize].map_or(0, |at| {
        let mut a = [0u8; 8];
        a[2..].copy_from_slice(&icmp[at..at + 6]);
        u64::from_be_bytes(a)
    });
    Some((u128::from_be_bytes(t), ll))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(options: &[u8]) -> Vec<u8> {
        let mut m = vec![SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        m.extend_from_slice(options);
        m
    }

    const SLL: [u8; 8] = [OPT_SLL, 1, 2, 0, 0, 0, 0, 9];
    const TLL: [u8; 8] = [OPT_TLL, 1, 2, 0, 0, 0, 0, 7];

    #[test]
    fn target_and_option() {
        let (t, ll) = fields(&ns(&SLL)).unwrap();
        assert_eq!(t, 0xfe80 << 112 | 1);
        assert_eq!(ll, 0x0200_0000_0009);
        // A TLL on a solicitation is not its address; an unknown option is skipped.
        assert_eq!(fields(&ns(&TLL)).unwrap().1, 0);
        let mut skip = vec![14, 1, 0, 0, 0, 0, 0, 0];
        skip.extend_from_slice(&SLL);
        assert_eq!(fields(&ns(&skip)).unwrap().1, 0x0200_0000_0009);
        assert_eq!(lladdr_at(&ns(&skip)), Some(OPTIONS_AT + 8 + 2));
        // An advertisement carries the target's.
        let mut na = ns(&[SLL, TLL].concat());
        na[0] = ADVERT;
        assert_eq!(fields(&na).unwrap().1, 0x0200_0000_0007);
        assert_eq!(lladdr_at(&na), Some(OPTIONS_AT + 8 + 2));
    }

    #[test]
    fn malformed_options() {
        // A zero-length option ends the walk; a cut option is not read; what came before
        // still counts.
        assert_eq!(fields(&ns(&[OPT_SLL, 0, 1, 2, 3, 4, 5, 6])).unwrap().1, 0);
        assert_eq!(fields(&ns(&[OPT_SLL, 1, 1, 2])).unwrap().1, 0);
        let before = [SLL.as_slice(), &[OPT_TLL, 0, 0, 0, 0, 0, 0, 0]].concat();
        assert_eq!(fields(&ns(&before)).unwrap().1, 0x0200_0000_0009);
        let past = [SLL.as_slice(), &[OPT_TLL, 2, 0, 0, 0, 0, 0, 0]].concat();
        assert_eq!(fields(&ns(&past)).unwrap().1, 0x0200_0000_0009);
        // The same option twice: the message reads as all zero, as Open vSwitch reads it.
        assert_eq!(fields(&ns(&[SLL, SLL].concat())), Some((0, 0)));
        assert_eq!(fields(&ns(&[SLL, TLL, TLL].concat())), Some((0, 0)));
        assert_eq!(lladdr_at(&ns(&[SLL, SLL].concat())), None);
    }

    #[test]
    fn not_neighbour_discovery() {
        let mut echo = ns(&[]);
        echo[0] = 128;
        assert_eq!(fields(&echo), None);
        assert_eq!(fields(&ns(&[])[..20]), None);
        let mut code = ns(&SLL);
        code[1] = 1;
        assert_eq!(fields(&code), None);
        assert_eq!(lladdr_at(&code), None);
    }
}
