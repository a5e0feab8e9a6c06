//! The window tracker against a model of two well-behaved TCP endpoints.

use proptest::prelude::*;

use super::*;

fn seg(flags: u16, seq: u32, ack: u32, win: u16, len: u32, wscale: u8) -> Segment {
    Segment {
        flags,
        seq,
        ack,
        win,
        len,
        wscale,
    }
}

#[test]
fn flag_combinations() {
    assert!(invalid_flags(SYN | RST));
    assert!(invalid_flags(SYN | FIN));
    assert!(invalid_flags(0));
    assert!(invalid_flags(FIN));
    assert!(invalid_flags(PSH | RST));
    assert!(!invalid_flags(SYN));
    assert!(!invalid_flags(RST));
    assert!(!invalid_flags(ACK | FIN | PSH));
    assert!(valid_new(SYN));
    assert!(valid_new(ACK));
    assert!(!valid_new(SYN | ACK));
}

#[test]
fn pack_round_trips() {
    let t = Tcp::new(&seg(SYN, 0xdead_beef, 0, 29200, 0, WSCALE_FLAG | 7));
    assert_eq!(Tcp::unpack(t.pack()), t);
    assert_eq!(t.peer[0].wscale, WSCALE_FLAG | 7);
}

/// One endpoint of the model.
#[derive(Clone, Copy, Debug)]
struct End {
    /// Next sequence number to send.
    nxt: u32,
    /// Next sequence number expected from the peer (what it acknowledges).
    rcv: u32,
    /// The peer's last acknowledgement: it may receive up to `peer_ack + window`.
    peer_ack: u32,
    /// Start and length of the last data segment (for retransmission).
    last: (u32, u32),
    fin_sent: bool,
}

#[derive(Clone, Debug)]
enum Act {
    Data(bool, u32),
    Ack(bool),
    Retransmit(bool),
    Fin(bool),
    /// A segment far past the receiver's window: the tracker must refuse it and forget it.
    Garbage(bool, u32),
    /// A reset with a wrong sequence number.
    BadRst(bool),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (any::<bool>(), 0u32..3000).prop_map(|(s, n)| Act::Data(s, n)),
        2 => any::<bool>().prop_map(Act::Ack),
        1 => any::<bool>().prop_map(Act::Retransmit),
        1 => any::<bool>().prop_map(Act::Fin),
        1 => (any::<bool>(), 0u32..1_000_000).prop_map(|(s, n)| Act::Garbage(s, n)),
        1 => any::<bool>().prop_map(Act::BadRst),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever two correct endpoints send is valid; anything far out of window is
    /// refused without disturbing the connection; the shown state follows the model.
    #[test]
    fn tracker_agrees_with_two_correct_endpoints(
        isn_c in any::<u32>(),
        isn_s in any::<u32>(),
        scale in proptest::option::of(0u8..=14),
        acts in proptest::collection::vec(act(), 1..80),
    ) {
        let ws = scale.map_or(0, |s| WSCALE_FLAG | s);
        let shift = scale.unwrap_or(0);
        let window = 65535u32 << shift;
        let mut t = Tcp::new(&seg(SYN, isn_c, 0, 65535, 0, ws));
        let u = t.update(&seg(SYN | ACK, isn_s, isn_c.wrapping_add(1), 65535, 0, ws), true, false);
        prop_assert!(matches!(u, Update::Valid(_)), "syn-ack {:?}", u);
        let u = t.update(&seg(ACK, isn_c.wrapping_add(1), isn_s.wrapping_add(1), 65535, 0, 0), false, false);
        prop_assert_eq!(u, Update::Valid(Some(TcpTimeout::Established)));
        prop_assert_eq!(t.shown_state(), TcpState::Established);
        // ends[0] the client (originator), ends[1] the server.
        let mut ends = [
            End { nxt: isn_c.wrapping_add(1), rcv: isn_s.wrapping_add(1), peer_ack: isn_c.wrapping_add(1), last: (isn_c.wrapping_add(1), 0), fin_sent: false },
            End { nxt: isn_s.wrapping_add(1), rcv: isn_c.wrapping_add(1), peer_ack: isn_s.wrapping_add(1), last: (isn_s.wrapping_add(1), 0), fin_sent: false },
        ];
        let mut closed = [false, false];
        for a in acts {
            let (side, s, expect_valid) = match a {
                Act::Data(r, n) => {
                    let e = ends[r as usize];
                    if e.fin_sent { continue; }
                    let room = e.peer_ack.wrapping_add(window).wrapping_sub(e.nxt);
                    let n = n.min(room);
                    let s = seg(ACK, e.nxt, e.rcv, 65535, n, 0);
                    let e = &mut ends[r as usize];
                    e.last = (e.nxt, n);
                    e.nxt = e.nxt.wrapping_add(n);
                    (r, s, true)
                }
                Act::Ack(r) => {
                    let e = ends[r as usize];
                    (r, seg(ACK, e.nxt, e.rcv, 65535, 0, 0), true)
                }
                Act::Retransmit(r) => {
                    let e = ends[r as usize];
                    (r, seg(ACK, e.last.0, e.rcv, 65535, e.last.1, 0), true)
                }
                Act::Fin(r) => {
                    let e = ends[r as usize];
                    if e.fin_sent { continue; }
                    let s = seg(FIN | ACK, e.nxt, e.rcv, 65535, 0, 0);
                    let e = &mut ends[r as usize];
                    e.nxt = e.nxt.wrapping_add(1);
                    e.fin_sent = true;
                    (r, s, true)
                }
                Act::Garbage(r, n) => {
                    let e = ends[r as usize];
                    let far = e.peer_ack.wrapping_add(window).wrapping_add(70_000 + n);
                    (r, seg(ACK, far, e.rcv, 65535, 100, 0), false)
                }
                Act::BadRst(r) => {
                    let e = ends[r as usize];
                    (r, seg(RST | ACK, e.nxt.wrapping_add(5000), e.rcv, 0, 0, 0), false)
                }
            };
            let before = t;
            let u = t.update(&s, side, false);
            if expect_valid {
                prop_assert!(matches!(u, Update::Valid(Some(_))), "{:?} -> {:?} (state {:?})", s, u, before);
                // The receiver takes it in: acknowledges up to its end.
                let end = s.seq.wrapping_add(s.len).wrapping_add((s.flags & FIN != 0) as u32);
                let peer = &mut ends[!side as usize];
                if end.wrapping_sub(peer.rcv) as i32 > 0 {
                    peer.rcv = end;
                }
                if s.ack.wrapping_sub(peer.peer_ack) as i32 > 0 {
                    peer.peer_ack = s.ack;
                }
                // A FIN is done once the peer acknowledges past it.
                for k in 0..2 {
                    if ends[k].fin_sent && ends[1 - k].rcv == ends[k].nxt {
                        closed[k] = true;
                    }
                }
            } else if closed.iter().any(|&c| c) {
                // Once a FIN is acknowledged, stragglers near the window pass (loosely:
                // without refreshing the timeout), as in OVS.
                prop_assert!(matches!(u, Update::OutOfWindow | Update::Valid(None)), "{:?} -> {:?}", s, u);
            } else {
                prop_assert_eq!(u, Update::OutOfWindow, "{:?} in state {:?}", s, before);
            }
            let shown = t.shown_state();
            let expect = if ends.iter().any(|e| e.fin_sent) {
                vec![TcpState::Closing, TcpState::TimeWait]
            } else {
                vec![TcpState::Established]
            };
            prop_assert!(expect.contains(&shown), "shown {:?}, model {:?} closed {:?}", shown, ends, closed);
        }
    }

    /// Sequence arithmetic wraps: a connection starting just below 2^32 behaves as one
    /// starting at 0.
    #[test]
    fn wrapping_is_invisible(base in any::<u32>(), n in 1u32..60_000) {
        let mut t = Tcp::new(&seg(SYN, base, 0, 65535, 0, 0));
        prop_assert!(matches!(t.update(&seg(SYN | ACK, 7, base.wrapping_add(1), 65535, 0, 0), true, false), Update::Valid(_)));
        let data = seg(ACK, base.wrapping_add(1), 8, 65535, n, 0);
        prop_assert!(matches!(t.update(&data, false, false), Update::Valid(Some(_))));
    }
}
