//! Hostile input, by topic: each case checks the exact error (or the exact
//! fault report) a misbehaving program gets, and that the system goes on
//! afterwards (a well-behaved child still spawns, maps memory and makes an
//! IPC call). One topic file per area, each with its cases (and child roles).

pub mod arch;
mod base;
mod ipc;
mod irq;
mod names;
pub mod quota;


use runtime::process::Exit;

use crate::child::tag;
use crate::ensure;
use crate::harness::{expect_exit, serve, spawn, Context, Outcome, Suite, CHAN};

pub fn run() -> i32 {
    let mut s = Suite::new("hostile");
    base::cases(&mut s);
    ipc::cases(&mut s);
    arch::cases(&mut s);
    irq::cases(&mut s);
    names::cases(&mut s);
    quota::cases(&mut s);
    s.finish()
}

/// Child roles of the hostile topics (`ktest child hostile-<role>`); `None`
/// if no topic has that role.
pub fn child(role: &str, args: &runtime::Args) -> Option<i32> {
    match role {
        "hostile-well-behaved" => Some(well_behaved()),
        _ => arch::child(role, args).or_else(|| quota::child(role, args)).or_else(|| irq::child(role, args)).or_else(|| names::child(role, args)),
    }
}

/// The system goes on: a new, well-behaved child still spawns, maps memory
/// and makes an IPC call to another child.
pub fn goes_on() -> Outcome {
    let server = serve("server", &[])?;
    let child = spawn("hostile-well-behaved", &[], &[(CHAN, server.chan.token(), abi::ChannelRights::SEND.into())], 8)?;
    let ended = expect_exit(&child, Exit::Code(0), "a well-behaved child afterwards");
    // Every case ends here: keep no token of the dead child.
    let _ = runtime::caps::drop_cap(child.token());
    ended
}

/// Map a page, send 64 bytes of it to the echo server on `CHAN`, check the
/// answer: 0 if all worked.
fn well_behaved() -> i32 {
    let run = || -> Outcome {
        let va = runtime::mem::reserve(4096);
        runtime::mem::map_anon(va, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map")?;
        // SAFETY: mapped just above, ours alone.
        let page = unsafe { core::slice::from_raw_parts_mut(va as *mut u8, 4096) };
        page[..64].iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        let chan = runtime::ipc::Channel::from_token(runtime::init_cap(CHAN).ctx("channel")?);
        let r = chan.call(tag::ECHO, &mut page[..64], 64).ctx("call")?;
        ensure!(r.result == (0..64u64).sum::<u64>() && r.len == 64, "echo sum {}, length {}", r.result, r.len);
        ensure!(page[..64].iter().enumerate().all(|(i, &b)| b == !(i as u8)), "echo reply wrong");
        Ok(())
    };
    match run() {
        Ok(()) => 0,
        Err(why) => {
            runtime::println!("well-behaved child: {why}");
            1
        }
    }
}
