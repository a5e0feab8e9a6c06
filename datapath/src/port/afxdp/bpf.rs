//! The BPF side of an AF_XDP port: the six-instruction redirect program, assembled here,
//! and the `bpf()` system call with its attribute images.
//!
//! Thread-safety: plain functions.

// The kernel interface: the bpf() system call. Every unsafe block says why.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub(super) const BPF_MAP_CREATE: libc::c_long = 0;
pub(super) const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
pub(super) const BPF_PROG_LOAD: libc::c_long = 5;
pub(super) const BPF_LINK_CREATE: libc::c_long = 28;
pub(super) const BPF_MAP_TYPE_XSKMAP: u32 = 17;
pub(super) const BPF_PROG_TYPE_XDP: u32 = 6;
pub(super) const BPF_XDP: u32 = 37;
pub(super) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(super) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

pub(super) fn last() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// One `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

/// The program: `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);`
pub(super) fn program(map_fd: RawFd) -> [Insn; 6] {
    [
        // r2 = *(u32 *)(r1 + offsetof(struct xdp_md, rx_queue_index))
        insn(0x61, 2, 1, 16, 0),
        // r1 = map (ld_imm64 with BPF_PSEUDO_MAP_FD), two slots
        insn(0x18, 1, 1, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // r3 = XDP_PASS: frames of queues without a socket go to the kernel stack
        insn(0xb7, 3, 0, 0, 2),
        // call bpf_redirect_map
        insn(0x85, 0, 0, 0, 51),
        // exit
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// `bpf(cmd, attr, size)` with `attr` a zero-padded byte image of the union member.
pub(super) fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> libc::c_long {
    // SAFETY: `attr` is a live 128-byte buffer, larger than every bpf_attr member used
    // here; the kernel reads (and for some commands writes) within that size.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
}

pub(super) fn put32(a: &mut [u8; 128], at: usize, v: u32) {
    a[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

pub(super) fn put64(a: &mut [u8; 128], at: usize, v: u64) {
    a[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

pub(super) fn owned(fd: libc::c_long) -> Option<OwnedFd> {
    // SAFETY: a non-negative return of bpf()/socket() is a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
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
}
