//! Hostile use of the IRQ syscalls: acks with nothing bound, binds without
//! the right to receive, twice, after the channel died, with a capability
//! lacking BIND, and a program taking every MSI vector (the limit, and all
//! of them back when it ends). No device fires here; the `disk` suites
//! deliver real MSIs.

use abi::{cap_id, Error, SyscallClass};
use runtime::ipc::{Channel, Window};
use runtime::irq::Irq;
use runtime::process::Exit;

use super::goes_on;
use crate::harness::{expect_err, expect_exit, spawn_with, Context, Outcome, Suite};

pub fn cases(s: &mut Suite) {
    s.case("irq: acks unbound or after the channel died, binds without RECEIVE or twice, tokens without BIND: typed errors", bad_binds);
    s.case("irq: a program taking every MSI vector gets LimitReached; all come back when it ends", vector_hog);
}

/// Roles of this topic's children.
pub fn child(role: &str, _args: &runtime::Args) -> Option<i32> {
    Some(match role {
        "hostile-irq-hog" => hog(),
        _ => return None,
    })
}

fn bad_binds() -> Outcome {
    let (irq, _) = Irq::msi().ctx("IrqMsi")?;
    expect_err(irq.ack(), Error::InvalidArgument, "ack before any bind")?;
    let chan = Channel::create().ctx("channel")?;
    let send_only = Channel::from_token(runtime::caps::derive(chan.token(), abi::ChannelRights::SEND).ctx("derive")?);
    expect_err(irq.bind(&send_only, 1), Error::Incapable, "bind to a channel we may not receive on")?;
    irq.bind(&chan, 7).ctx("bind")?;
    expect_err(irq.bind(&chan, 8), Error::Busy, "the same IRQ bound twice")?;
    // An ack with no interrupt: unmasks, delivers nothing.
    irq.ack().ctx("ack without an interrupt")?;
    let mut w = Window::new().ctx("window")?;
    expect_err(chan.receive(&mut w, 0).map(|_| ()), Error::Timeout, "receive after an ack without an interrupt")?;
    let weak = Irq(runtime::caps::derive(irq.0, abi::RightsMask::DELEGATE).ctx("derive without BIND")?);
    expect_err(weak.ack(), Error::Incapable, "ack with a token without BIND")?;
    expect_err(weak.bind(&chan, 9), Error::Incapable, "bind with a token without BIND")?;
    chan.destroy().ctx("destroy")?;
    expect_err(irq.ack(), Error::InvalidArgument, "ack after the bound channel was destroyed")?;
    let again = Channel::create().ctx("channel")?;
    irq.bind(&again, 10).ctx("bind again after the channel died")?;
    irq.ack().ctx("ack on the new binding")?;
    again.destroy().ctx("destroy")?;
    goes_on()
}

/// Allocate MSI vectors until refused: exit `100 * count + error`.
fn hog() -> i32 {
    let mut n = 0;
    loop {
        match Irq::msi() {
            Ok(_) => n += 1,
            Err(e) => return (n * 100 + e as u64) as i32,
        }
    }
}

fn vector_hog() -> Outcome {
    let class = |c: SyscallClass| (cap_id::class(c), runtime::class_token(c), abi::ClassRights::USE.into());
    // (The Thread class to exit with.)
    let caps = [class(SyscallClass::Irq), class(SyscallClass::Thread)];
    let first = spawn_with("hostile-irq-hog", &[], &caps, 8, false)?;
    let got = first.wait_timeout(10_000_000_000).ctx("the first hog")?;
    let Exit::Code(code) = got else { return Err(alloc::format!("the first hog ended {got:?}")) };
    let (n, e) = (code / 100, code % 100);
    crate::ensure!(e == Error::LimitReached as i64 && n >= 1 && n <= abi::irq::VECTORS as i64, "the hog got {n} vectors, then error {e}");
    // Its vectors were freed with it: a second one gets as many.
    let second = spawn_with("hostile-irq-hog", &[], &caps, 8, false)?;
    expect_exit(&second, Exit::Code(code), "a second hog after the first ended")?;
    goes_on()
}
