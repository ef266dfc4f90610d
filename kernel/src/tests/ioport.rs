//! I/O-port capabilities: in and out only inside the range, only with the
//! right, only through a token of the caller's own table.

use super::*;
use crate::arch::host::take_port_writes;

/// A COM1 capability like the one `system` gets, in process `p`.
fn com1(w: &mut World, p: usize) -> u64 {
    w.k.mint(p, Cap::io_ports(abi::ioport::COM1, abi::IoPortRights::READ | abi::IoPortRights::WRITE | abi::IoPortRights::DELEGATE)).unwrap()
}

#[test]
fn in_and_out_reach_exactly_the_ports_of_the_range() {
    let mut w = World::new();
    let p = w.spawn("shell");
    let t = w.thread(p, 5);
    let cap = com1(&mut w, p);
    take_port_writes();
    // The host's fake port returns the port's low byte plus one.
    assert_eq!(w.sys(t, Syscall::IoPortIn, [cap, 0x3fd, 0, 0, 0, 0]), R::Ok([0xfe, 0, 0, 0]));
    assert_eq!(w.sys(t, Syscall::IoPortIn, [cap, 0x3f8, 0, 0, 0, 0]), R::Ok([0xf9, 0, 0, 0]));
    assert_eq!(w.sys(t, Syscall::IoPortOut, [cap, 0x3f8, b'x' as u64, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.sys(t, Syscall::IoPortOut, [cap, 0x3ff, 7, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(take_port_writes(), [(0x3f8, b'x'), (0x3ff, 7)]);
    // One port either side of the range, far away, and past 16 bits.
    for port in [0x3f7u64, 0x400, 0x20, 0xcf8, 0x1_03f8, u64::MAX] {
        assert_eq!(w.sys(t, Syscall::IoPortIn, [cap, port, 0, 0, 0, 0]), R::Err(Error::InvalidArgument), "{port:#x}");
        assert_eq!(w.sys(t, Syscall::IoPortOut, [cap, port, 0, 0, 0, 0]), R::Err(Error::InvalidArgument), "{port:#x}");
    }
    // A value wider than a byte is refused, not truncated.
    assert_eq!(w.sys(t, Syscall::IoPortOut, [cap, 0x3f8, 0x141, 0, 0, 0]), R::Err(Error::InvalidArgument));
    assert!(take_port_writes().is_empty(), "a refused call wrote a port");
}

#[test]
fn rights_and_kinds_are_checked() {
    let mut w = World::new();
    let p = w.spawn("shell");
    let t = w.thread(p, 5);
    let cap = com1(&mut w, p);
    take_port_writes();
    let read_only = w.sys(t, Syscall::CapDerive, [cap, abi::IoPortRights::READ.bits() as u64, 0, 0, 0, 0]).ok()[0];
    assert_eq!(w.sys(t, Syscall::IoPortIn, [read_only, 0x3fd, 0, 0, 0, 0]), R::Ok([0xfe, 0, 0, 0]));
    w.rejected(t, Syscall::IoPortOut, [read_only, 0x3f8, 0, 0, 0, 0]);
    let write_only = w.sys(t, Syscall::CapDerive, [cap, abi::IoPortRights::WRITE.bits() as u64, 0, 0, 0, 0]).ok()[0];
    w.rejected(t, Syscall::IoPortIn, [write_only, 0x3f8, 0, 0, 0, 0]);
    // Other kinds of capability, and no capability, are no way in.
    let me = w.c(p).me;
    let print = w.c(p).print;
    w.rejected(t, Syscall::IoPortIn, [me, 0x3f8, 0, 0, 0, 0]);
    w.rejected(t, Syscall::IoPortOut, [print, 0x3f8, 0, 0, 0, 0]);
    w.rejected(t, Syscall::IoPortOut, [BOGUS, 0x3f8, 0, 0, 0, 0]);
    assert!(take_port_writes().is_empty());
    // CapInspect names the kind and the first port.
    let r = w.sys(t, Syscall::CapInspect, [cap, 0, 0, 0, 0, 0]).ok();
    assert_eq!((r[0], r[2]), (CapKind::IoPort as u64, 0x3f8));
}

#[test]
fn a_token_copied_into_another_process_reaches_nothing() {
    let mut w = World::new();
    let a = w.spawn("shell");
    let b = w.spawn("thief");
    let tb = w.thread(b, 5);
    let cap = com1(&mut w, a);
    w.rejected(tb, Syscall::IoPortIn, [cap, 0x3f8, 0, 0, 0, 0]);
    // Granted with read only, the other process can read and not write.
    let granted = w.give(a, cap, b, abi::IoPortRights::READ);
    assert_eq!(w.sys(tb, Syscall::IoPortIn, [granted, 0x3f8, 0, 0, 0, 0]), R::Ok([0xf9, 0, 0, 0]));
    w.rejected(tb, Syscall::IoPortOut, [granted, 0x3f8, 0, 0, 0, 0]);
}
