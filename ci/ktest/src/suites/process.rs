//! `SYSTEM::PROCESS`, from a client's side: spawning through `system` with
//! arguments and delegated capabilities, every refusal with its typed error
//! and nothing left behind, bad frames, and supervision (a killed or
//! crashed restartable server comes back under its name; one that keeps
//! crashing is held).

use alloc::string::String;
use alloc::vec::Vec;

use abi::{cap_id, Error, SyscallClass};
use runtime::ipc::{Channel, Window};
use runtime::rpc::wire::split_result;
use runtime::rpc::{CallError, WireError};
use system::client::{Cap, ProcessClient, SpawnArgs, SpawnError};
use system::protocol::{Origin, ProcessError, RunState, Status};

use crate::child::tag;
use crate::ensure;
use crate::harness::{expect_exit, wait_until, Context, Outcome, Suite, CHAN};

pub fn run() -> i32 {
    let mut s = Suite::new("process");
    let client = match ProcessClient::find() {
        Ok(c) => c,
        Err(e) => {
            s.case("SYSTEM::PROCESS is registered", || Err(alloc::format!("{e:?}")));
            return s.finish();
        }
    };
    let c = &client;
    s.case("spawn passes arguments and delegated capabilities", || spawn_reports(c));
    s.case("spawn errors are exact", || spawn_errors(c));
    s.case("failed spawns leave nothing behind", || nothing_left(c));
    s.case("bad frames get error replies and serving goes on", || bad_frames(c));
    s.case("a killed or crashed restartable server comes back by name", || restarts(c));
    s.case("a crash-looping server is held", || held(c));
    s.case("List shows a spawned program; a kill without the admin key is refused", || list_and_kill(c));
    s.case("an end whose process slot is reused before system looks still restarts it", || slot_reused(c));
    s.finish()
}

fn class(c: SyscallClass, r: abi::ClassRights) -> Cap {
    Cap { id: cap_id::class(c), token: runtime::class_token(c), rights: r.into() }
}

fn args<'a>(path: &'a str, argv: &'a [&'a str], caps: &'a [Cap]) -> SpawnArgs<'a> {
    SpawnArgs { path, args: argv, caps, stack_size: 0, priority: 16, restart: false }
}

fn server_err(r: Result<system::client::Spawned, SpawnError>, want: ProcessError, what: &str) -> Outcome {
    match r {
        Err(SpawnError::Call(CallError::Server(e))) if e == want => Ok(()),
        other => Err(alloc::format!("{what}: got {other:?}, expected {want:?}")),
    }
}

/// Messages the RAMFS driver behind `boot:` has received, and the size of
/// `boot:/ktest`: a spawn of it must cost at least one message per page.
fn ramfs_receives() -> Result<(u64, u64), String> {
    let vfs = vfs::VfsClient::connect().ctx("vfs")?;
    let (driver, rest) = vfs.find("boot:/ktest").ctx("find")?;
    let size = ramfs::RamfsClient::new(Channel::from_token(driver.token())).stat(&rest).ctx("stat")?.size;
    let stats = runtime::ipc::debug::channel_stats(crate::harness::channel_id(driver.token())).ctx("stats")?;
    let _ = runtime::caps::drop_cap(driver.token());
    let _ = runtime::caps::drop_cap(vfs.client().channel().token());
    Ok((stats.receives, size))
}

fn spawn_reports(c: &ProcessClient) -> Outcome {
    let (before, size) = ramfs_receives()?;
    let chan = Channel::create().ctx("channel")?;
    let caps = [Cap { id: CHAN, token: chan.token(), rights: abi::ChannelRights::SEND.into() }, class(SyscallClass::Thread, abi::ClassRights::USE)];
    let argv = ["reporter", "child", "report", "hello", "two words"];
    let sp = c.spawn(&SpawnArgs { stack_size: 64 * 1024, priority: 12, ..args("boot:/ktest", &argv, &caps) }).ctx("spawn")?;
    ensure!(sp.pid != 0, "pid 0");
    // Loaded through VFS -> RAMFS, not from `system`'s view of the boot module.
    let (after, _) = ramfs_receives()?;
    ensure!(after - before > size / 4096, "RAMFS served {} messages for a {size}-byte program", after - before);
    let mut w = Window::new().ctx("window")?;
    let m = chan.receive(&mut w, 5_000_000_000).ctx("report")?;
    let text = String::from_utf8_lossy(m.data()).into_owned();
    m.reply(0, 0).ctx("reply")?;
    ensure!(text.starts_with("args=reporter|child|report|hello|two words;"), "arguments: {text}");
    // Its own process first, then exactly what we delegated, with exactly the rights asked.
    ensure!(text.contains(";caps=100:Process:1e,1000:Channel:2,2:Class:2,"), "capabilities: {text}");
    ensure!(text.matches(':').count() == 6, "more capabilities than delegated: {text}");
    expect_exit(&sp.process, runtime::process::Exit::Code(0), "reporter")?;
    let _ = chan.destroy();
    Ok(())
}

fn spawn_errors(c: &ProcessClient) -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let send_only = runtime::caps::derive(chan.token(), abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE).ctx("derive")?;
    let p = ["p"];
    server_err(c.spawn(&args("boot:/no-such-program", &p, &[])), ProcessError::NotFound, "not found")?;
    server_err(c.spawn(&args("boot:/etc/motd", &p, &[])), ProcessError::NotElf, "not an ELF")?;
    server_err(c.spawn(&args("boot:/test/stack-clash", &p, &[])), ProcessError::BadSegment, "segment over the stack")?;
    server_err(c.spawn(&args("boot:/../ktest", &p, &[])), ProcessError::BadPath, "dot-dot path")?;
    server_err(c.spawn(&args("boot:/", &p, &[])), ProcessError::BadPath, "a root, not a file")?;
    server_err(c.spawn(&args("ktest", &p, &[])), ProcessError::BadPath, "no prefix")?;
    server_err(c.spawn(&args("nofs:/ktest", &p, &[])), ProcessError::NotFound, "no such file system")?;
    // A capability we do not hold: the kernel refuses to send it.
    let forged = [Cap { id: CHAN, token: 0x1234_5678_9abc, rights: abi::ChannelRights::SEND.into() }];
    match c.spawn(&args("boot:/ktest", &p, &forged)) {
        Err(SpawnError::NotHeld(0)) => {}
        other => return Err(alloc::format!("forged capability: {other:?}")),
    }
    // More rights than we hold.
    let above = [Cap { id: CHAN, token: send_only, rights: (abi::ChannelRights::SEND | abi::ChannelRights::RECEIVE).into() }];
    server_err(c.spawn(&args("boot:/ktest", &p, &above)), ProcessError::RightsAboveCaller, "rights above ours")?;
    // A priority above ours (16).
    server_err(c.spawn(&SpawnArgs { priority: 17, ..args("boot:/ktest", &p, &[]) }), ProcessError::PriorityAboveCaller, "priority 17")?;
    let many = ["x"; 65];
    server_err(c.spawn(&args("boot:/ktest", &many, &[])), ProcessError::TooManyArgs, "65 arguments")?;
    let caps = [Cap { id: CHAN, token: send_only, rights: abi::ChannelRights::SEND.into() }; 33];
    server_err(c.spawn(&args("boot:/ktest", &p, &caps)), ProcessError::TooManyCaps, "33 capabilities")?;
    let _ = runtime::caps::drop_cap(send_only);
    let _ = chan.destroy();
    Ok(())
}

/// Refusals that happen after the process exists (a segment where the
/// stack goes) and refusals that use up staged capabilities, each more
/// often than the kernel has process slots and `system` staging room: the
/// kernel's accounting must not move, and a spawn after them must work.
fn nothing_left(c: &ProcessClient) -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let one = [Cap { id: CHAN, token: chan.token(), rights: abi::ChannelRights::SEND.into() }];
    let clash = || c.spawn(&args("boot:/test/stack-clash", &["clash"], &one));
    let above = || c.spawn(&SpawnArgs { priority: 17, ..args("boot:/ktest", &["p"], &one) });
    // Once each first, so that buffers `system` keeps are in place.
    server_err(clash(), ProcessError::BadSegment, "first clash")?;
    server_err(above(), ProcessError::PriorityAboveCaller, "first priority")?;
    let before = runtime::ipc::debug::accounting().ctx("accounting")?;
    for i in 0..abi::limits::PROCESSES + 6 {
        server_err(clash(), ProcessError::BadSegment, &alloc::format!("clash {i}"))?;
    }
    for i in 0..system::protocol::MAX_STAGED + 6 {
        server_err(above(), ProcessError::PriorityAboveCaller, &alloc::format!("priority {i}"))?;
    }
    // The kernel has exactly what it had: frames, process, thread,
    // channel and name slots.
    let after = runtime::ipc::debug::accounting().ctx("accounting")?;
    ensure!(after == before, "kernel accounting before {before:?}, after {after:?}");
    let caps = [one[0], class(SyscallClass::Thread, abi::ClassRights::USE)];
    let sp = c.spawn(&args("boot:/ktest", &["reporter", "child", "report"], &caps)).ctx("spawn after the refusals")?;
    let mut w = Window::new().ctx("window")?;
    let m = chan.receive(&mut w, 5_000_000_000).ctx("report")?;
    m.reply(0, 0).ctx("reply")?;
    expect_exit(&sp.process, runtime::process::Exit::Code(0), "reporter")?;
    let _ = runtime::caps::drop_cap(sp.process.token());
    let _ = chan.destroy();
    Ok(())
}

fn bad_frames(c: &ProcessClient) -> Outcome {
    let chan = c.client().channel();
    let raw = |tag: u64, bytes: &[u8]| -> Result<u32, String> { chan.send(tag, bytes).map(|r| split_result(r).0).ctx("send") };
    let expect = |got: u32, want: WireError, what: &str| -> Outcome {
        ensure!(got == want.status(), "{what}: status {got:#x}, expected {want:?}");
        Ok(())
    };
    expect(raw(99, b"")?, WireError::UnknownOperation, "unknown operation")?;
    expect(raw(3, &[2, 0xff, 0xfe])?, WireError::Malformed, "bad UTF-8")?;
    expect(raw(2, b"\x0bboot:/kte")?, WireError::Truncated, "truncated spawn")?;
    expect(raw(3, &[1; 1000])?, WireError::Oversized, "oversized status")?;
    expect(raw(2, &[])?, WireError::Truncated, "empty spawn")?;
    let mut junk = crate::harness::Rng(0x5eed);
    for _ in 0..200 {
        let len = (junk.next() % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| junk.next() as u8).collect();
        raw(junk.next() % 6, &bytes)?;
    }
    match c.status("nobody") {
        Err(CallError::Server(ProcessError::NotSupervised)) => Ok(()),
        other => Err(alloc::format!("still serving: {other:?}")),
    }
}

const NAMED: &str = "TEST::NAMED";

/// Find `NAMED` and call it.
fn call_named() -> Result<u64, Error> {
    let ch = Channel::find(NAMED)?;
    let r = ch.send(11, b"");
    let _ = runtime::caps::drop_cap(ch.token());
    r
}

fn wait_running(c: &ProcessClient, name: &str, restarts: u32) -> Outcome {
    wait_until("the restart", || matches!(c.status(name), Ok(Status::Running { restarts: r, .. }) if r == restarts))?;
    wait_until("the name", || call_named() == Ok(22))
}

fn restarts(c: &ProcessClient) -> Outcome {
    let caps = [
        class(SyscallClass::Thread, abi::ClassRights::USE),
        class(SyscallClass::ChannelCreate, abi::ClassRights::USE),
        class(SyscallClass::Names, abi::ClassRights::USE),
    ];
    let argv = ["named", "child", "named", NAMED];
    let sp = c.spawn(&SpawnArgs { restart: true, ..args("boot:/ktest", &argv, &caps) }).ctx("spawn")?;
    wait_running(c, "named", 0)?;
    ensure!(matches!(c.status("named"), Ok(Status::Running { pid, .. }) if pid == sp.pid), "status names another pid");
    // Killed: back, under the same name, on a new channel.
    sp.process.kill().ctx("kill")?;
    wait_running(c, "named", 1)?;
    // Crashed while serving us: we get PeerDied, and it comes back again.
    let ch = Channel::find(NAMED).ctx("find")?;
    let r = ch.send(tag::CRASH, b"");
    ensure!(r == Err(Error::PeerDied), "call in flight when it crashed: {r:?}");
    wait_running(c, "named", 2)
}

fn held(c: &ProcessClient) -> Outcome {
    let caps = [class(SyscallClass::Thread, abi::ClassRights::USE)];
    let argv = ["crasher", "child", "fault", "null"];
    c.spawn(&SpawnArgs { restart: true, ..args("boot:/ktest", &argv, &caps) }).ctx("spawn")?;
    wait_until("held", || matches!(c.status("crasher"), Ok(Status::Held { .. })))?;
    let s = c.status("crasher").ctx("status")?;
    let max = system::policy::Policy::DEFAULT.max_restarts as u32;
    ensure!(s == Status::Held { restarts: max }, "{s:?}, expected held after {max} restarts");
    // And it stays held.
    let _ = runtime::time::sleep_ms(300);
    ensure!(c.status("crasher") == Ok(s), "changed after being held");
    Ok(())
}

/// `List` names a program `SYSTEM::PROCESS` started; `Kill` without the
/// admin key, or with another capability in its place, is `NotAllowed`
/// and the program runs on; with the key it ends and leaves the list.
fn list_and_kill(c: &ProcessClient) -> Outcome {
    let thread = [class(SyscallClass::Thread, abi::ClassRights::USE)];
    let sp = c.spawn(&args("boot:/ktest", &["listed", "child", "sleeper", "600000", "0"], &thread)).ctx("spawn")?;
    let list = c.list().ctx("list")?.processes;
    let me = list.iter().find(|p| p.pid == sp.pid).ok_or_else(|| alloc::format!("pid {} not in {list:?}", sp.pid))?;
    ensure!(me.name == "listed" && me.state == RunState::Running && !me.supervised && me.origin == Origin::Request, "listed as {me:?}");
    ensure!(list.iter().any(|p| p.name == "vfs" && p.origin == Origin::Boot), "no boot server vfs in {list:?}");
    let refused = |r: Result<(), CallError<ProcessError>>, what: &str| match r {
        Err(CallError::Server(ProcessError::NotAllowed)) => Ok(()),
        other => Err(alloc::format!("kill {what}: {other:?}, expected NotAllowed")),
    };
    refused(c.kill_with(sp.pid, None), "without a key")?;
    let fake = Channel::create().ctx("channel")?;
    refused(c.kill_with(sp.pid, Some(fake.token())), "with another capability")?;
    fake.destroy().ctx("destroy")?;
    ensure!(sp.process.wait_timeout(0) == Err(Error::Timeout), "the program died from a refused kill");
    c.kill(sp.pid).ctx("kill with the admin key")?;
    expect_exit(&sp.process, runtime::process::Exit::Killed, "killed")?;
    let list = c.list().ctx("list")?.processes;
    ensure!(list.iter().all(|p| p.pid != sp.pid), "still listed after the kill: {list:?}");
    match c.kill(sp.pid) {
        Err(CallError::Server(ProcessError::NoSuchProcess)) => Ok(()),
        other => Err(alloc::format!("second kill: {other:?}, expected NoSuchProcess")),
    }
}

/// The supervisor bug of old: a supervised program ends and the kernel
/// gives its process slot to a new process before `system` polls; the
/// end must still be noticed (and the program restarted). Every process
/// slot is filled first, so that the next process takes exactly the
/// dead one's slot (the case checks it did).
fn slot_reused(c: &ProcessClient) -> Outcome {
    use runtime::process::{Builder, Kernel};
    let sleeper = |name: &'static str| [name, "child", "sleeper", "600000", "0"];
    let argv = sleeper("reused");
    let thread = [class(SyscallClass::Thread, abi::ClassRights::USE)];
    let sp = c.spawn(&SpawnArgs { restart: true, ..args("boot:/ktest", &argv, &thread) }).ctx("spawn")?;
    // system's room for the tests' spawns, then ours, until no slot is left.
    let mut spawned = Vec::new();
    let fill = sleeper("filler");
    while let Ok(f) = c.spawn(&args("boot:/ktest", &fill, &thread)) {
        spawned.push(f);
    }
    let q = abi::quota::Quota { threads: 0, pages: 16, channels: 0, caps: 8, processes: 0 };
    let mut made = Vec::new();
    let end = loop {
        match Kernel.create("filler", &q) {
            Ok(p) => made.push(p),
            Err(e) => break e,
        }
    };
    let free = runtime::ipc::debug::accounting().ctx("accounting")?.free_processes;
    let result = (|| {
        let quota = runtime::ipc::debug::quota_use();
        ensure!(free == 0, "{free} process slots still free after {} spawns and {} made ({end:?}; our quota {quota:?})", spawned.len(), made.len());
        // Ended, and its slot taken at once (system, at priority 1, cannot
        // run in between).
        sp.process.kill().ctx("kill")?;
        let p = Kernel.create("reuser", &q).ctx("create after the end")?;
        let slot = runtime::caps::inspect(p.token()).ctx("inspect")?.2 & 0xffff_ffff;
        made.push(p);
        ensure!(slot == sp.pid, "the new process took slot {slot}, not the dead one's ({})", sp.pid);
        Ok(())
    })();
    for p in made {
        Kernel.discard(p);
    }
    for f in spawned {
        let _ = f.process.kill();
    }
    result?;
    wait_until("the restart", || matches!(c.status("reused"), Ok(Status::Running { restarts: 1, pid }) if pid != 0))?;
    let list = c.list().ctx("list")?.processes;
    ensure!(list.iter().any(|p| p.name == "reused" && p.restarts == 1 && p.state == RunState::Running), "not listed as restarted: {list:?}");
    Ok(())
}
