//! Base attacks: bad pointers on every syscall that takes one, the SYSRET
//! edge, forged reply cookies, lent-page races, ring-0 instructions in
//! ring 3, forged, stale and foreign tokens. Each case checks the exact
//! error or fault, then that the system goes on.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use abi::debug::op;
use abi::{cap_id, Error, Syscall, SyscallClass, USER_TOP};
use runtime::ipc::{Channel, Window};
use runtime::process::{Exit, Process};

use crate::ensure;
use super::goes_on;
use crate::harness::{expect_err, expect_exit, serve, spawn, Context, Outcome, Suite, CHAN};

pub fn cases(s: &mut Suite) {
    s.case("base: bad pointers get BadAddress from every syscall that takes one", bad_pointers);
    s.case("base: read-only memory is refused where the kernel would write", read_only_writes);
    s.case("base: SYSRET edge: threads starting at or past the top of user space are refused", sysret_refused);
    s.case("base: SYSRET edge: a syscall ending at the last user byte returns into a fault", sysret_last_page);
    s.case("base: SYSRET edge: a non-canonical jump or stack pointer kills only the program", noncanonical);
    s.case("base: forged and off-by-one reply cookies are refused; double reply too", cookies);
    s.case("base: a receiver touching a lent page after its reply is killed", lent_after_reply);
    s.case("base: ring-0 instructions in ring 3 kill the program with #GP", ring0);
    s.case("base: forged, stale and foreign tokens are refused", tokens);
}

/// A syscall through the runtime's typed wrapper.
fn sys(nr: Syscall, token: u64, a: [u64; 5]) -> Result<[u64; 4], Error> {
    // SAFETY: the attacks below only pass addresses the kernel must refuse,
    // or buffers of ours that nothing else uses while the call runs.
    unsafe { runtime::sys::call(nr, token, a) }
}

/// Addresses no syscall may accept as a user buffer of `len` bytes
/// (page-aligned where the argument must be).
fn bad_addresses(unmapped: u64) -> [(&'static str, u64); 6] {
    [
        ("null", 0),
        ("kernel image", 0xffff_ffff_8010_0000),
        ("kernel view of RAM", 0xffff_8000_0010_0000),
        ("non-canonical", 0x0000_8000_0000_0000),
        ("straddling the top of user space", USER_TOP - 4096),
        ("unmapped", unmapped),
    ]
}

/// An attack: its name, the call with the bad address, and the address
/// kinds it skips (where an unmapped user page is a fine argument: a map
/// target, a receive window, a thread's entry).
type Attack<'a> = (&'static str, &'a dyn Fn(u64) -> Result<[u64; 4], Error>, &'static [&'static str]);

/// Skipped by calls that take any unmapped user page.
const UNMAPPED_OK: &[&str] = &["unmapped"];
/// Skipped by calls that take any user page, mapped or not.
const USER_PAGE_OK: &[&str] = &["unmapped", "straddling the top of user space"];

/// Run every attack with every bad address; collect the misses.
fn expect_bad(attacks: &[Attack], addresses: &[(&'static str, u64)], want: Error) -> Outcome {
    let mut wrong: Vec<String> = Vec::new();
    for (what, f, skip) in attacks {
        for &(kind, addr) in addresses {
            if skip.contains(&kind) {
                continue;
            }
            match f(addr) {
                Err(e) if e == want => {}
                other => wrong.push(format!("{what} with {kind} {addr:#x}: {other:?}")),
            }
        }
    }
    ensure!(wrong.is_empty(), "expected {want:?}: {}", wrong.join("; "));
    Ok(())
}

/// Where the target process of `bad_pointers` has a page.
const TARGET_PAGE: u64 = 0x10_0000;

fn bad_pointers() -> Outcome {
    let class = runtime::class_token;
    let chan = Channel::create().ctx("channel")?;
    let c = chan.token();
    let empty = Process::create("ktest-target").ctx("process")?;
    let e = empty.token();
    // A page the target has, so a ProcessWrite fails only by its source.
    empty.map_anon(TARGET_PAGE, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map in target")?;
    let me = runtime::caps::self_process();
    let ramfs = runtime::init_cap(cap_id::RAMFS).ctx("ramfs capability")?;
    let id = crate::harness::channel_id(c);
    // Its server waits in Receive, so a send is delivered at once (the
    // buffer is checked, not a queue or timeout).
    let sv = serve("server", &[])?;
    let to_server = sv.chan.token();
    let unmapped = runtime::mem::reserve(8192);
    let good = [0u8; 16];
    let src = good.as_ptr() as u64;
    let n = 16;
    let attacks: [Attack; 20] = [
        ("DebugPrint", &|p| sys(Syscall::DebugPrint, class(SyscallClass::DebugPrint), [p + 4090, n, 0, 0, 0]), &[]),
        ("NameRegister", &|p| sys(Syscall::NameRegister, c, [p + 4090, n, class(SyscallClass::Names), 0, 0]), &[]),
        ("NameFind", &|p| sys(Syscall::NameFind, class(SyscallClass::Names), [p + 4090, n, 0, 0, 0]), &[]),
        ("NameDeregister", &|p| sys(Syscall::NameDeregister, c, [p + 4090, n, 0, 0, 0]), &[]),
        ("ProcessCreate name", &|p| sys(Syscall::ProcessCreate, class(SyscallClass::ProcessCreate), [p + 4090, 12, 0, 0, 0]), &[]),
        ("ProcessWrite destination", &|p| sys(Syscall::ProcessWrite, e, [p + 4090, src, n, 0, 0]), &[]),
        ("ProcessWrite source", &|p| sys(Syscall::ProcessWrite, e, [TARGET_PAGE, p + 4090, n, 0, 0]), &[]),
        ("Send buffer", &|p| sys(Syscall::Send, to_server, [21, n, p + 4090, 1_000_000_000, 0]), &[]),
        ("Send page", &|p| sys(Syscall::Send, to_server, [21, 4096, p, 1_000_000_000, 0]), &[]),
        ("Receive window", &|p| sys(Syscall::Receive, c, [p, 0, 0, 0, 0]), USER_PAGE_OK),
        ("ReplyRecv window", &|p| sys(Syscall::ReplyRecv, c, [0, 0, 0, p, 0]), USER_PAGE_OK),
        // (Polling: a user page is a fine window, and gets `Timeout`.)
        ("ReplyWait window", &|p| sys(Syscall::ReplyWait, c, [0, 0, p | abi::call::POLL, 0, 0]), USER_PAGE_OK),
        ("DebugIpc list", &|p| sys(Syscall::DebugIpc, class(SyscallClass::DebugIpc), [op::LIST_CHANNELS, p + 4088, 4, 0, 0]), &[]),
        ("DebugIpc stats", &|p| sys(Syscall::DebugIpc, class(SyscallClass::DebugIpc), [op::CHANNEL_STATS, id, p + 4088, 0, 0]), &[]),
        ("DebugIpc totals", &|p| sys(Syscall::DebugIpc, class(SyscallClass::DebugIpc), [op::TOTALS, p + 4088, 0, 0, 0]), &[]),
        ("DebugIpc accounting", &|p| sys(Syscall::DebugIpc, class(SyscallClass::DebugIpc), [op::KERNEL_ACCOUNTING, p + 4088, 0, 0, 0]), &[]),
        ("MapAnon", &|p| sys(Syscall::MapAnon, me, [p, 8192, (abi::MapFlags::READ | abi::MapFlags::WRITE).bits(), 0, 0]), UNMAPPED_OK),
        ("Unmap", &|p| sys(Syscall::Unmap, me, [p, 8192, 0, 0, 0]), UNMAPPED_OK),
        ("MapPhys", &|p| sys(Syscall::MapPhys, ramfs, [p, 0, 8192, abi::MapFlags::READ.bits(), 0]), UNMAPPED_OK),
        ("ThreadCreate entry", &|p| sys(Syscall::ThreadCreate, e, [p + 4095, TARGET_PAGE, 0, 0, 1]), USER_PAGE_OK),
    ];
    let r = expect_bad(&attacks, &bad_addresses(unmapped), Error::BadAddress);
    empty.kill().ctx("kill target")?;
    chan.destroy().ctx("destroy")?;
    drop(sv);
    r?;
    goes_on()
}

fn read_only_writes() -> Outcome {
    let ro = runtime::mem::reserve(4096);
    runtime::mem::map_anon(ro, 4096, abi::MapFlags::READ).ctx("map read-only")?;
    let dbg = runtime::class_token(SyscallClass::DebugIpc);
    // A channel, so the list has an id to write.
    let some = Channel::create().ctx("channel")?;
    let attacks: [Attack; 3] = [
        ("DebugIpc totals", &|p| sys(Syscall::DebugIpc, dbg, [op::TOTALS, p, 0, 0, 0]), &[]),
        ("DebugIpc accounting", &|p| sys(Syscall::DebugIpc, dbg, [op::KERNEL_ACCOUNTING, p, 0, 0, 0]), &[]),
        ("DebugIpc list", &|p| sys(Syscall::DebugIpc, dbg, [op::LIST_CHANNELS, p, 4, 0, 0]), &[]),
    ];
    let r = expect_bad(&attacks, &[("read-only", ro)], Error::BadAddress).and_then(|()| receive_read_only(ro));
    some.destroy().ctx("destroy")?;
    // SAFETY: nothing refers to the page.
    unsafe { runtime::mem::unmap(ro, 4096) }.ctx("unmap")?;
    r?;
    goes_on()
}

/// A message waits; receiving it into the read-only page at `ro` is
/// refused, and the message is still there for a proper window.
fn receive_read_only(ro: u64) -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let child = spawn("foreign", &[], &[(CHAN, chan.token(), abi::ChannelRights::SEND.into())], 8)?;
    let id = crate::harness::channel_id(chan.token());
    crate::harness::wait_until("the message", || {
        runtime::ipc::debug::channel_stats(id).is_ok_and(|s| s.waiting_senders == 1)
    })?;
    let r = sys(Syscall::Receive, chan.token(), [ro, 0, 0, 0, 0]);
    let mut w = Window::new().ctx("window")?;
    let m = chan.receive(&mut w, 0).ctx("receive after the refusal")?;
    let size = m.size;
    m.reply(0, 0).ctx("reply")?;
    child.kill().ctx("kill")?;
    expect_exit(&child, Exit::Killed, "sender")?;
    chan.destroy().ctx("destroy")?;
    ensure!(r == Err(Error::BadAddress), "Receive into a read-only window: {r:?}");
    ensure!(size == 8, "the message shrank to {size} bytes");
    Ok(())
}

fn sysret_refused() -> Outcome {
    let p = Process::create("ktest-edge").ctx("process")?;
    let mut wrong = Vec::new();
    for (what, entry, stack) in [
        ("entry at the top of user space", USER_TOP, USER_TOP),
        ("entry at the first non-canonical address", 0x0000_8000_0000_0000, USER_TOP),
        ("entry at the last canonical user byte", 0x0000_7fff_ffff_ffff, USER_TOP),
        ("stack pointer past the top", USER_TOP - 4096, USER_TOP + 8),
        ("stack pointer non-canonical", USER_TOP - 4096, 0x0000_8000_0000_0000),
        ("stack pointer in the kernel", USER_TOP - 4096, 0xffff_ffff_8010_0000),
    ] {
        // SAFETY: the process is empty; the kernel must refuse the thread.
        let r = unsafe { p.start_thread(entry, stack, [0, 0], 1) };
        if r != Err(Error::BadAddress) {
            wrong.push(format!("{what} ({entry:#x}, rsp {stack:#x}): {r:?}"));
        }
    }
    // Nor may anything be mapped on the page below the non-canonical hole,
    // where a syscall's return address could fall off user space.
    for (what, r) in [
        ("MapAnon of the page at the top", p.map_anon(USER_TOP, 4096, abi::MapFlags::READ | abi::MapFlags::EXEC)),
        ("MapAnon across the top", p.map_anon(USER_TOP - 4096, 8192, abi::MapFlags::READ | abi::MapFlags::EXEC)),
    ] {
        if r != Err(Error::BadAddress) {
            wrong.push(format!("{what}: {r:?}"));
        }
    }
    p.kill().ctx("kill")?;
    ensure!(wrong.is_empty(), "expected BadAddress: {}", wrong.join("; "));
    goes_on()
}

/// Ways a program can put a non-canonical address where the CPU follows it.
fn noncanonical() -> Outcome {
    let mut wrong = Vec::new();
    // A non-canonical stack access is #SS (12) on hardware; QEMU's TCG
    // raises #GP (13) for it.
    let cases: [(&str, &[u64]); 2] = [("jump-noncanonical", &[13]), ("syscall-noncanonical-rsp", &[12, 13])];
    for (how, vectors) in cases {
        let p = spawn("fault", &[how], &[], 8)?;
        let got = p.wait_timeout(10_000_000_000);
        if !matches!(got, Ok(Exit::Fault(v)) if vectors.contains(&v)) {
            wrong.push(format!("{how}: {got:?}, expected a fault with vector {vectors:?}"));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("; "));
    goes_on()
}

/// `mov eax, 0xffff; syscall` ending at the last byte of user space: the
/// kernel returns (an unknown syscall) to `USER_TOP`, canonical but never
/// mapped, so the program faults there (#PF, vector 14) instead of the
/// kernel tripping over a non-canonical return address.
fn sysret_last_page() -> Outcome {
    const CODE: [u8; 7] = [0xb8, 0xff, 0xff, 0x00, 0x00, 0x0f, 0x05];
    let p = Process::create("ktest-edge").ctx("process")?;
    let page = USER_TOP - 4096;
    p.map_anon(page, 4096, abi::MapFlags::READ | abi::MapFlags::EXEC).ctx("map the last user page")?;
    let entry = USER_TOP - CODE.len() as u64;
    // SAFETY: `p` runs nothing yet; the loader write fills its own page.
    unsafe { p.write(entry, &CODE) }.ctx("write code")?;
    // The stack pointer sits at the very top too: nothing is pushed.
    // SAFETY: the thread runs the code above in its own process.
    unsafe { p.start_thread(entry, USER_TOP, [0, 0], 8) }.ctx("thread")?;
    expect_exit(&p, Exit::Fault(14), "thread returning to USER_TOP")?;
    goes_on()
}

fn cookies() -> Outcome {
    let ours = Channel::create().ctx("channel")?;
    // The child sends us one message and waits for the answer.
    let child = spawn("foreign", &[], &[(CHAN, ours.token(), abi::ChannelRights::SEND.into())], 8)?;
    let mut w = Window::new().ctx("window")?;
    let m = ours.receive(&mut w, 5_000_000_000).ctx("receive")?;
    let held = m.hold();
    let cookie = held.cookie();
    let mut wrong = Vec::new();
    let mut rng = crate::harness::Rng(cookie | 1);
    let forged = [cookie.wrapping_add(1), cookie.wrapping_sub(1), cookie ^ 1 << 63, cookie ^ 1 << 32, rng.next(), rng.next(), u64::MAX];
    for &f in &forged {
        if f == cookie {
            continue;
        }
        let r = sys(Syscall::Reply, f, [0; 5]);
        if r != Err(Error::Incapable) {
            wrong.push(format!("Reply {f:#x}: {r:?}"));
        }
        let r = sys(Syscall::ReplyRecv, ours.token(), [f, 0, 0, w.addr(), 0]);
        if r != Err(Error::Incapable) {
            wrong.push(format!("ReplyRecv {f:#x}: {r:?}"));
        }
    }
    if let Err(e) = held.reply(7, &[]) {
        wrong.push(format!("the real reply: {e:?} (a forged cookie was taken for it?)"));
    }
    let twice = sys(Syscall::Reply, cookie, [7, 0, 0, 0, 0]);
    if twice != Err(Error::Incapable) {
        wrong.push(format!("second reply: {twice:?}"));
    }
    child.kill().ctx("kill")?;
    expect_exit(&child, Exit::Killed, "client")?;
    ours.destroy().ctx("destroy")?;
    ensure!(wrong.is_empty(), "expected Incapable: {}", wrong.join("; "));
    goes_on()
}

fn lent_after_reply() -> Outcome {
    crate::suites::ipc::lent_page_revoked()?;
    goes_on()
}

fn ring0() -> Outcome {
    let mut wrong = Vec::new();
    for insn in ["cli", "hlt", "in", "out", "rdmsr", "wrmsr", "mov-cr3", "mov-cr0", "lgdt", "lidt", "invlpg", "wbinvd"] {
        let p = spawn("fault", &[insn], &[], 8)?;
        let got = p.wait_timeout(10_000_000_000);
        if got != Ok(Exit::Fault(13)) {
            wrong.push(format!("{insn}: {got:?}"));
        }
    }
    ensure!(wrong.is_empty(), "expected Fault(13) (#GP): {}", wrong.join("; "));
    goes_on()
}

fn tokens() -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let t = chan.token();
    let mut rng = crate::harness::Rng(runtime::time::rdtsc() | 1);
    let mut wrong = Vec::new();
    let mut check = |what: &str, r: Result<[u64; 4], Error>| {
        if r != Err(Error::Incapable) {
            wrong.push(format!("{what}: {r:?}"));
        }
    };
    // Forged: random, off by one, zero, a class token used for an object.
    check("Send with a random token", sys(Syscall::Send, rng.next(), [1, 0, 0, 0, 0]));
    check("Send with the token plus one", sys(Syscall::Send, t.wrapping_add(1), [1, 0, 0, 0, 0]));
    check("MapAnon with token zero", sys(Syscall::MapAnon, 0, [0x4000_0000_0000, 4096, abi::MapFlags::READ.bits(), 0, 0]));
    check("ProcessKill with a channel token", sys(Syscall::ProcessKill, t, [0; 5]));
    check("Send with a class token", sys(Syscall::Send, runtime::class_token(SyscallClass::Thread), [1, 0, 0, 0, 0]));
    // Stale: a destroyed channel's token.
    let gone = Channel::create().ctx("channel")?;
    let stale = gone.token();
    gone.destroy().ctx("destroy")?;
    check("Send on a destroyed channel", sys(Syscall::Send, stale, [1, 0, 0, 0, 0]));
    check("CapDerive of a dropped token", {
        let d = runtime::caps::derive(t, abi::ChannelRights::SEND).ctx("derive")?;
        runtime::caps::drop_cap(d).ctx("drop")?;
        sys(Syscall::CapDerive, d, [abi::ChannelRights::SEND.bits() as u64, 0, 0, 0, 0])
    });
    // Foreign: a token valid in another process only.
    let child = spawn("foreign", &[], &[(CHAN, t, abi::ChannelRights::SEND.into())], 8)?;
    let mut w = Window::new().ctx("window")?;
    let m = chan.receive(&mut w, 5_000_000_000).ctx("receive")?;
    let theirs = u64::from_le_bytes(m.data().try_into().map_err(|_| String::from("short message"))?);
    m.reply(0, 0).ctx("reply")?;
    check("Send with another process's token", sys(Syscall::Send, theirs, [1, 0, 0, 0, 0]));
    check("ChannelDestroy with another process's token", sys(Syscall::ChannelDestroy, theirs, [0; 5]));
    child.kill().ctx("kill")?;
    expect_exit(&child, Exit::Killed, "foreign child")?;
    expect_err(chan.send_timeout(1, &[], 0), Error::Timeout, "our own token still works")?;
    chan.destroy().ctx("destroy")?;
    ensure!(wrong.is_empty(), "expected Incapable: {}", wrong.join("; "));
    goes_on()
}
