use super::*;

#[test]
fn program_is_six_instructions_with_the_map_in_r1() {
    let p = program(7);
    assert_eq!(p.len(), 6);
    assert_eq!(p[1].code, 0x18);
    assert_eq!(p[1].regs, 0x11);
    assert_eq!(p[1].imm, 7);
    assert_eq!(std::mem::size_of::<Insn>(), 8);
}

#[test]
fn modes_parse() {
    assert_eq!("native".parse::<XdpMode>(), Ok(XdpMode::Native));
    assert!("turbo".parse::<XdpMode>().is_err());
}

#[test]
fn a_missing_interface_is_named() {
    assert!(matches!(
        AfXdpPort::open("no-such-if0", 1, XdpMode::Auto),
        Err(AfXdpError::NoSuchInterface(_))
    ));
}
