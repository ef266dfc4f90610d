//! Capabilities: forged, stale and foreign tokens, the escalating delay,
//! delegation with fewer rights, rights, no ambient authority, fuzzing.

use alloc::vec::Vec;

use abi::{cap_id, CapKind, Error, Syscall, SyscallClass};
use runtime::ipc::{Channel, Window};
use runtime::process::{Exit, Process};

use crate::ensure;
use crate::harness::{expect_err, expect_exit, spawn, spawn_with, Context, Outcome, Rng, Suite, CHAN};
use alloc::format;
use alloc::string::{String, ToString};
use runtime::init_cap;

pub fn run() -> i32 {
    let mut s = Suite::new("caps");
    s.case("forged tokens are refused", forged);
    s.case("stale tokens are refused", stale);
    s.case("another process's tokens are worthless here", foreign);
    s.case("the delay after bad tokens escalates and decays", escalation);
    s.case("honest processes are not slowed by another's bad tokens", honest_unaffected);
    s.case("the null syscall's short path: Priority and Uptime answer right, bad tokens refused and delayed", short_path);
    s.case("capability delegated through IPC with fewer rights", delegation);
    s.case("rights are enforced and cannot grow", rights_enforced);
    s.case("granting needs the DELEGATE right", grant_needs_delegate);
    s.case("no ambient authority", no_ambient_authority);
    s.case("tokens are unique and never zero", unique_tokens);
    s.case("names: register, find (send-only), deregister", names);
    s.case("names: forced SDBM collision keeps two names apart", sdbm_collision);
    s.case("names die with their channel", names_die_with_channel);
    s.case("random syscalls from a fuzzer leave the kernel working", fuzz);
    s.case("I/O ports: COM1's range only, byte-wide, with the right", io_ports);
    s.case("IRQ lines: one holder per line, the kernel's and bad lines refused, death frees", irq_lines);
    s.case("IRQ lines: COM1's interrupt (UART loopback) as an event, masked until the ack, one binder", com1_irq);
    s.finish()
}

fn forged() -> Outcome {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..3 {
        expect_err(Channel::from_token(rng.next()).send(1, &[]), Error::Incapable, "random token")?;
    }
    expect_err(Channel::from_token(0).send(1, &[]), Error::Incapable, "zero token")
}

fn stale() -> Outcome {
    let c = Channel::create().ctx("channel")?;
    let t = c.token();
    c.destroy().ctx("destroy")?;
    expect_err(Channel::from_token(t).send(1, &[]), Error::Incapable, "destroyed channel")?;
    let c = Channel::create().ctx("channel")?;
    let copy = runtime::caps::derive(c.token(), abi::RightsMask::ALL).ctx("derive")?;
    runtime::caps::drop_cap(copy).ctx("drop")?;
    expect_err(Channel::from_token(copy).send(1, &[]), Error::Incapable, "dropped token")?;
    c.destroy().ctx("destroy")
}

fn foreign() -> Outcome {
    let ours = Channel::create().ctx("channel")?;
    let child = spawn("foreign", &[], &[(CHAN, ours.token(), abi::ChannelRights::SEND.into())], 8)?;
    let mut w = Window::new().ctx("window")?;
    let m = ours.receive(&mut w, 5_000_000_000).ctx("receive")?;
    ensure!(m.size == 8, "child sent {} bytes", m.size);
    let theirs = u64::from_le_bytes(m.data().try_into().unwrap());
    m.reply(0, 0).ctx("reply")?;
    ensure!(theirs != 0, "child sent no token");
    // Timeout 0: were the token wrongly accepted, the send would end in
    // `Timeout` (nobody receives there) instead of blocking the suite.
    expect_err(Channel::from_token(theirs).send_timeout(1, &[], 0), Error::Incapable, "foreign token")?;
    child.kill().ctx("kill")?;
    expect_exit(&child, Exit::Killed, "foreign child")?;
    ours.destroy().ctx("destroy")
}

fn escalation() -> Outcome {
    let p = spawn("strikes", &[], &[], 8)?;
    let e = p.wait().ctx("wait")?;
    ensure!(e == Exit::Code(0), "delays did not escalate and decay (code {e:?}, see the delays line)");
    Ok(())
}

fn short_path() -> Outcome {
    let p = spawn("short-path", &[], &[], 8)?;
    match p.wait().ctx("wait")? {
        Exit::Code(0) => Ok(()),
        Exit::Code(c) => {
            let mut why = Vec::new();
            for (bit, what) in [(1, "wrong priorities"), (2, "uptime did not advance over a 20 ms sleep"), (4, "a bad token not refused with Incapable"), (8, "bad tokens not delayed, or the delays did not escalate (see the delays line)"), (16, "wrong priorities after the refusals"), (64, "derive failed")] {
                if c & bit != 0 {
                    why.push(what);
                }
            }
            Err(format!("short-path child: {}", why.join("; ")))
        }
        e => Err(format!("short-path child ended {e:?}")),
    }
}

fn honest_unaffected() -> Outcome {
    let bad = spawn("strikes", &[], &[], 8)?;
    let good = spawn("honest", &["200"], &[], 8)?;
    let e = good.wait().ctx("honest")?;
    let Exit::Code(ms) = e else { return Err(alloc::format!("honest child ended {e:?}")) };
    // Each refused call costs the offender at least a tick; if the penalty
    // leaked to others, 200 calls would take 200 ms or more. Honest calls
    // take well under one.
    ensure!(ms < 200, "200 honest calls took {ms} ms while another process was penalised");
    let _ = bad.kill();
    let _ = bad.wait();
    Ok(())
}

fn delegation() -> Outcome {
    let ours = Channel::create().ctx("channel")?;
    let target = Channel::create().ctx("target channel")?;
    let child = spawn("delegate", &[], &[(CHAN, ours.token(), abi::ChannelRights::RECEIVE.into())], 8)?;
    let r = ours.send_cap(0, &[], target.token(), abi::ChannelRights::SEND).ctx("send_cap")?.result;
    let got_rights = (r & 0xffff) as u32;
    ensure!(got_rights == abi::ChannelRights::SEND.bits(), "child got rights {got_rights:#x}");
    ensure!(r >> 16 & 1 == 1, "child could receive with a send-only capability");
    ensure!(r >> 17 & 1 == 1, "child could not send with its capability");
    expect_exit(&child, Exit::Code(0), "delegate child")?;
    ours.destroy().ctx("destroy")?;
    target.destroy().ctx("destroy")
}

fn rights_enforced() -> Outcome {
    let c = Channel::create().ctx("channel")?;
    let send_only = Channel::from_token(runtime::caps::derive(c.token(), abi::ChannelRights::SEND).ctx("derive")?);
    let (kind, r, _, _) = runtime::caps::inspect(send_only.token()).ctx("inspect")?;
    ensure!(kind == CapKind::Channel && r == abi::ChannelRights::SEND.bits(), "derived {kind:?} {r:#x}");
    let mut w = Window::new().ctx("window")?;
    expect_err(send_only.receive(&mut w, 0), Error::Incapable, "receive with send-only")?;
    let again = runtime::caps::derive(send_only.token(), abi::RightsMask::ALL).ctx("derive again")?;
    let (_, r2, _, _) = runtime::caps::inspect(again).ctx("inspect")?;
    ensure!(r2 == abi::ChannelRights::SEND.bits(), "rights grew to {r2:#x}");
    expect_err(Channel::from_token(again).destroy(), Error::Incapable, "destroy with send-only")?;
    c.destroy().ctx("destroy")
}

fn grant_needs_delegate() -> Outcome {
    let c = Channel::create().ctx("channel")?;
    let no_delegate = runtime::caps::derive(c.token(), abi::ChannelRights::SEND | abi::ChannelRights::RECEIVE).ctx("derive")?;
    let p = Process::create("ktest-empty").ctx("process")?;
    expect_err(p.grant(no_delegate, abi::ChannelRights::SEND), Error::Incapable, "grant without DELEGATE")?;
    let t = p.grant(c.token(), abi::ChannelRights::SEND).ctx("grant with DELEGATE")?;
    ensure!(t != 0 && t != c.token(), "granted token {t:#x}");
    p.kill().ctx("kill")?;
    c.destroy().ctx("destroy")
}

fn no_ambient_authority() -> Outcome {
    let thread_cap = runtime::class_token(SyscallClass::Thread);
    let p = spawn_with("noauth", &[], &[(cap_id::class(SyscallClass::Thread), thread_cap, abi::ClassRights::USE.into())], 8, false)?;
    expect_exit(&p, Exit::Code(0), "child with only the Thread capability (bits = calls that wrongly worked)")
}

fn unique_tokens() -> Outcome {
    let mut chans = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..20 {
        let c = Channel::create().ctx("channel")?;
        tokens.push(c.token());
        tokens.push(runtime::caps::derive(c.token(), abi::ChannelRights::SEND).ctx("derive")?);
        chans.push(c);
    }
    let p = Process::create("ktest-empty").ctx("process")?;
    tokens.push(p.token());
    tokens.push(p.grant(chans[0].token(), abi::ChannelRights::SEND).ctx("grant")?);
    tokens.push(p.grant(chans[0].token(), abi::ChannelRights::SEND).ctx("grant")?);
    let mut sorted = tokens.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(sorted.len() == tokens.len(), "{} duplicate tokens", tokens.len() - sorted.len());
    ensure!(!tokens.contains(&0), "a zero token");
    p.kill().ctx("kill")?;
    for c in chans {
        c.destroy().ctx("destroy")?;
    }
    Ok(())
}

fn names() -> Outcome {
    let c = Channel::create().ctx("channel")?;
    c.register("KTEST::ECHO").ctx("register")?;
    expect_err(c.register("KTEST::ECHO"), Error::AlreadyExists, "second registration")?;
    expect_err(c.register("no-separator"), Error::InvalidArgument, "malformed name")?;
    let found = Channel::find("KTEST::ECHO").ctx("find")?;
    let (kind, r, id, _) = runtime::caps::inspect(found.token()).ctx("inspect")?;
    let (_, _, own_id, _) = runtime::caps::inspect(c.token()).ctx("inspect own")?;
    ensure!(kind == CapKind::Channel && r == abi::ChannelRights::SEND.bits() && id == own_id, "found {kind:?} rights {r:#x} id {id:#x}");
    expect_err(Channel::find("KTEST::NOPE"), Error::NotFound, "unknown name")?;
    c.deregister("KTEST::ECHO").ctx("deregister")?;
    expect_err(Channel::find("KTEST::ECHO"), Error::NotFound, "after deregister")?;
    c.destroy().ctx("destroy")
}

fn sdbm_collision() -> Outcome {
    let (a, b) = ("TEST::eagaeaieeabgea", "TEST::aeaqacaaagaaap");
    ensure!(abi::sdbm(a.as_bytes()) == abi::sdbm(b.as_bytes()), "names do not collide");
    let ca = Channel::create().ctx("channel a")?;
    let cb = Channel::create().ctx("channel b")?;
    ca.register(a).ctx("register a")?;
    expect_err(Channel::find(b), Error::NotFound, "b before registration")?;
    cb.register(b).ctx("register b")?;
    let id = |c: &Channel| runtime::caps::inspect(c.token()).map(|x| x.2).unwrap_or(0);
    ensure!(id(&Channel::find(a).ctx("find a")?) == id(&ca), "a resolves to the wrong channel");
    ensure!(id(&Channel::find(b).ctx("find b")?) == id(&cb), "b resolves to the wrong channel");
    ca.deregister(a).ctx("deregister a")?;
    ensure!(id(&Channel::find(b).ctx("find b after a left")?) == id(&cb), "b lost");
    ca.destroy().ctx("destroy")?;
    cb.destroy().ctx("destroy")
}

fn names_die_with_channel() -> Outcome {
    let c = Channel::create().ctx("channel")?;
    c.register("KTEST::GONE").ctx("register")?;
    c.destroy().ctx("destroy")?;
    expect_err(Channel::find("KTEST::GONE"), Error::NotFound, "name of a destroyed channel")
}

fn fuzz() -> Outcome {
    // The `fuzz` suite's campaign, short: two seeds, two workers each.
    for seed in [1u64, 0xfeed] {
        crate::suites::fuzz::campaign(seed, 10_000, 2, 0)?;
    }
    crate::suites::hostile::goes_on()
}

/// COM1's capability (which `system` hands on to us): the scratch register
/// (0x3ff, harmless) written and read back; ports outside the range, wide
/// values and a read-only copy refused.
fn io_ports() -> Outcome {
    use abi::ioport::COM1;
    let com1 = runtime::caps::init_cap(cap_id::COM1).ok_or("no COM1 capability")?;
    let io = |nr: Syscall, token: u64, port: u64, value: u64| match nr {
        Syscall::IoPortIn => runtime::sys::calls::IO_PORT_IN.call(token, abi::call::PortInArgs { port }).map(|r| r.value),
        _ => runtime::sys::calls::IO_PORT_OUT.call(token, abi::call::PortOutArgs { port, value }).map(|_| 0),
    };
    let scratch = COM1.base as u64 + 7;
    for v in [0x5a, 0xa5] {
        io(Syscall::IoPortOut, com1, scratch, v).ctx("write the scratch register")?;
        let got = io(Syscall::IoPortIn, com1, scratch, 0).ctx("read the scratch register")?;
        ensure!(got == v, "scratch register read {got:#x} after writing {v:#x}");
    }
    let lsr = io(Syscall::IoPortIn, com1, abi::ioport::COM1_LSR as u64, 0).ctx("read LSR")?;
    ensure!(lsr & 0x60 != 0, "LSR {lsr:#x}: transmitter never idle?");
    for port in [COM1.base as u64 - 1, COM1.base as u64 + 8, 0x20, 0xcf8, 0x64, 1 << 16 | 0x3f8] {
        expect_err(io(Syscall::IoPortIn, com1, port, 0), Error::InvalidArgument, "in outside the range")?;
        expect_err(io(Syscall::IoPortOut, com1, port, 0), Error::InvalidArgument, "out outside the range")?;
    }
    expect_err(io(Syscall::IoPortOut, com1, scratch, 0x100), Error::InvalidArgument, "a value wider than a byte")?;
    let read_only = runtime::caps::derive(com1, abi::IoPortRights::READ).ctx("derive")?;
    ensure!(io(Syscall::IoPortIn, read_only, scratch, 0) == Ok(0xa5), "read-only copy cannot read");
    expect_err(io(Syscall::IoPortOut, read_only, scratch, 0), Error::Incapable, "write through a read-only copy")?;
    runtime::caps::drop_cap(read_only).ctx("drop")
}

/// A GSI nothing on q35 uses (ISA IRQ 7, the printer port's).
const FREE_GSI: u64 = 7;

/// Time a child at a lower priority gets to claim or bind a line while we
/// sleep (it runs at once: we are the only other busy program).
const CHILD_SETTLE_MS: u64 = 300;

/// `IrqLine`: the kernel's line (ISA IRQ 0), COM1's (held by `system`) and
/// a line a child holds are `Busy`; lines the I/O APIC lacks and bad kinds
/// `InvalidArgument`; the holder's death frees its line.
fn irq_lines() -> Outcome {
    use abi::irq::{LINE_GSI, LINE_ISA};
    use runtime::irq::Irq;
    expect_err(Irq::line(0, LINE_ISA), Error::Busy, "ISA IRQ 0 (the kernel's timer line)")?;
    expect_err(Irq::line(4, LINE_ISA), Error::Busy, "ISA IRQ 4 (COM1's, system holds it)")?;
    for (line, kind) in [(24, LINE_GSI), (9999, LINE_GSI), (u64::MAX, LINE_GSI), (16, LINE_ISA), (3, 2), (3, u64::MAX)] {
        expect_err(Irq::line(line, kind), Error::InvalidArgument, &format!("line {line} kind {kind}"))?;
    }
    // Not the Irq class.
    let thread = runtime::class_token(SyscallClass::Thread);
    // SAFETY: IrqLine touches no memory of ours.
    let r = unsafe { runtime::sys::call(Syscall::IrqLine, thread, [FREE_GSI, 0, 0, 0, 0]) };
    expect_err(r, Error::Incapable, "IrqLine with the Thread class")?;
    let holder = spawn("irq-hold", &[&FREE_GSI.to_string()], &[], 8)?;
    let _ = runtime::time::sleep_ms(CHILD_SETTLE_MS);
    expect_err(Irq::line(FREE_GSI, LINE_GSI), Error::Busy, "a line a child holds")?;
    expect_err(Irq::line(FREE_GSI, LINE_ISA), Error::Busy, "the same line as an ISA IRQ")?;
    ensure!(holder.wait_timeout(0) == Err(Error::Timeout), "the holder ended early: {:?}", holder.wait_timeout(0));
    holder.kill().ctx("kill the holder")?;
    expect_exit(&holder, Exit::Killed, "holder")?;
    let (irq, gsi, vector) = Irq::line(FREE_GSI, LINE_GSI).ctx("the dead holder's line")?;
    ensure!(gsi == FREE_GSI as u32, "GSI {gsi}");
    ensure!((0x40..0x50).contains(&vector), "vector {vector:#x} outside the shared pool");
    let (kind, _, id, _) = runtime::caps::inspect(irq.0).ctx("inspect")?;
    ensure!(kind == CapKind::Irq && id == vector as u64, "inspect: {kind:?} id {id}");
    Ok(())
}

/// COM1's registers, for the loopback.
mod uart {
    pub const DATA: u64 = 0x3f8;
    pub const MCR: u64 = 0x3fc;
    pub const LSR: u64 = 0x3fd;
    /// DTR, RTS, OUT2 (the kernel's setting) and LOOP.
    pub const MCR_NORMAL: u64 = 0x0b;
    pub const MCR_LOOP: u64 = 0x1b;
}

fn port(nr: Syscall, token: u64, port: u64, value: u64) -> Result<u64, Error> {
    // SAFETY: I/O-port syscalls touch no memory of ours.
    unsafe { runtime::sys::call(nr, token, [port, value, 0, 0, 0]) }.map(|r| r[0])
}

/// Every byte waiting in COM1's receive FIFO.
fn drain(com1: u64) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    while port(Syscall::IoPortIn, com1, uart::LSR, 0).ctx("LSR")? & 1 != 0 {
        got.push(port(Syscall::IoPortIn, com1, uart::DATA, 0).ctx("RBR")? as u8);
        ensure!(got.len() <= 64, "COM1 never empties");
    }
    Ok(got)
}

/// Send `b` to ourselves through the UART's loopback (MCR LOOP), then
/// back to normal: the kernel's output goes out again.
fn loopback(com1: u64, b: u8) -> Outcome {
    port(Syscall::IoPortOut, com1, uart::MCR, uart::MCR_LOOP).ctx("MCR loop")?;
    let sent = port(Syscall::IoPortOut, com1, uart::DATA, b as u64);
    let mut ready = false;
    for _ in 0..10_000 {
        if port(Syscall::IoPortIn, com1, uart::LSR, 0).ctx("LSR")? & 1 != 0 {
            ready = true;
            break;
        }
    }
    port(Syscall::IoPortOut, com1, uart::MCR, uart::MCR_NORMAL).ctx("MCR normal")?;
    sent.ctx("THR")?;
    ensure!(ready, "the looped-back byte never arrived");
    Ok(())
}

/// The next event (or message) on `chan` within `ms`.
fn event(chan: &Channel, window: &mut Window, ms: u64) -> Result<Option<u64>, Error> {
    match chan.receive(window, ms * 1_000_000) {
        Ok(r) => Ok(runtime::irq::event_badge(&r)),
        Err(e) => Err(e),
    }
}

/// The UART raises IRQ 4 for a byte it looped back to itself: the event
/// arrives on our channel, the line stays masked until the ack (a second
/// byte brings no event), the ack lets the next one through; a second
/// binder is `Busy` while the first lives, and its death frees the line.
fn com1_irq() -> Outcome {
    let com1 = init_cap(cap_id::COM1).ok_or("no COM1 capability")?;
    let irq = runtime::irq::Irq(init_cap(cap_id::COM1_IRQ).ok_or("no COM1 IRQ capability")?);
    // A child binds it first: ours is refused until the child dies.
    let binder = spawn("irq-bind", &[], &[], 8)?;
    let chan = Channel::create().ctx("channel")?;
    let _ = runtime::time::sleep_ms(CHILD_SETTLE_MS);
    expect_err(irq.bind(&chan, 0x44), Error::Busy, "binding while the child holds it")?;
    ensure!(binder.wait_timeout(0) == Err(Error::Timeout), "the binder ended: {:?}", binder.wait_timeout(0));
    binder.kill().ctx("kill the binder")?;
    expect_exit(&binder, Exit::Killed, "binder")?;
    irq.bind(&chan, 0x44).ctx("bind after the binder died")?;
    let mut window = Window::new().ctx("window")?;
    drain(com1)?;
    loopback(com1, b'A')?;
    ensure!(event(&chan, &mut window, 2000) == Ok(Some(0x44)), "no event for a received byte");
    ensure!(drain(com1)? == b"A", "read back something else than A");
    // Masked until the ack: the next byte brings no event.
    loopback(com1, b'B')?;
    expect_err(event(&chan, &mut window, 100), Error::Timeout, "an event while masked")?;
    ensure!(drain(com1)? == b"B", "read back something else than B");
    irq.ack().ctx("ack")?;
    loopback(com1, b'C')?;
    ensure!(event(&chan, &mut window, 2000) == Ok(Some(0x44)), "no event after the ack");
    ensure!(drain(com1)? == b"C", "read back something else than C");
    irq.ack().ctx("ack")?;
    chan.destroy().ctx("destroy")
}
