//! Quotas, orphaned processes and long syscalls: a child that takes every
//! thread or all the RAM it can, one that leaves processes behind, and
//! syscalls that work through a hundred megabytes while the clock must keep
//! ticking.

use abi::debug::{KernelAccounting, QuotaUse};
use abi::quota::Quota;
use abi::{cap_id, Error, SyscallClass};
use runtime::ipc::debug::{accounting, quota_use};
use runtime::ipc::{Channel, Window};
use runtime::process::{spawn_thread, Exit, Process};
use runtime::time::{rdtsc, sleep_ms, uptime_ms};
use runtime::Args;

use super::goes_on;
use crate::ensure;
use crate::harness::{expect_err, expect_exit, spawn_quota, Context, Outcome, Suite, CHAN};

pub fn cases(s: &mut Suite) {
    s.case(
        "quota: a thread bomb stops at its thread quota with LimitReached",
        thread_bomb,
    );
    s.case(
        "quota: a map bomb stops at its page quota, RAM stays for others",
        map_bomb,
    );
    s.case(
        "quota: ProcessCreate refuses quotas above the creator's and bad pointers",
        bad_quotas,
    );
    s.case(
        "quota: twenty never-started orphans come back when their creator exits",
        orphans,
    );
    s.case("quota: edges: no process quota, exactly the threads left, nested carving", quota_edges);
    s.case("quota: kernel stacks are bounded by the thread slots (every slot filled twice: the second costs no frame)", kernel_stacks);
}

/// The `ticks` suite (run under `-icount`, where the timer and the TSC
/// both count guest instructions, so no host hiccup can lose a tick).
pub fn ticks() -> i32 {
    let mut s = Suite::new("ticks");
    s.case("long syscalls: mapping 1 GiB into a child, copying 64 MiB into it and tearing it down lose no timer tick", long_syscalls);
    s.finish()
}

/// Roles (`ktest child hostile-quota-...`); `None` for others.
pub fn child(role: &str, args: &Args) -> Option<i32> {
    match role {
        "hostile-quota-threads" => Some(threads_child()),
        "hostile-quota-map" => Some(map_child()),
        "hostile-quota-orphans" => Some(orphans_child(crate::harness::num(args.get(3)))),
        "hostile-quota-nested" => Some(nested_child()),
        _ => None,
    }
}

/// Only the Thread class (the spawner adds our own process).
fn thread_class() -> [(u64, u64, abi::RightsMask); 1] {
    let c = SyscallClass::Thread;
    [(cap_id::class(c), runtime::class_token(c), abi::ClassRights::USE.into())]
}

/// Exit code for "stopped by `e` after `n`".
fn code(e: Error, n: u64) -> i32 {
    (n * 100 + e as u64) as i32
}

fn park(_: u64) {
    loop {
        let _ = sleep_ms(1_000_000);
    }
}

fn threads_child() -> i32 {
    let mut n = 0;
    loop {
        match spawn_thread(park, 0, 1) {
            Ok(_) => n += 1,
            Err(e) => return code(e, n),
        }
    }
}

fn thread_bomb() -> Outcome {
    let before = accounting().ctx("accounting")?;
    let q = Quota {
        threads: 5,
        ..Quota::DEFAULT
    };
    let p = spawn_quota("hostile-quota-threads", &[], &thread_class(), 8, false, q)?;
    // Its own thread and four more.
    expect_exit(
        &p,
        Exit::Code(code(Error::LimitReached, 4) as i64),
        "thread bomb",
    )?;
    let after = accounting().ctx("accounting")?;
    ensure!(
        after.free_threads == before.free_threads,
        "threads free: {} before, {} after",
        before.free_threads,
        after.free_threads
    );
    goes_on()
}

/// Pages the map bomb maps per call.
const CHUNK: u64 = 16;

fn map_child() -> i32 {
    let chan = Channel::from_token(runtime::init_cap(CHAN).unwrap_or(0));
    let base = runtime::mem::reserve(1 << 30);
    let mut n = 0;
    let err = loop {
        match runtime::mem::map_anon(
            base + n * CHUNK * 4096,
            CHUNK * 4096,
            abi::MapFlags::READ | abi::MapFlags::WRITE,
        ) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    // Tell the parent while we still hold everything, then go.
    let _ = chan.send(err as u64, &n.to_le_bytes());
    0
}

fn map_bomb() -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let q = Quota {
        pages: 2048,
        ..Quota::DEFAULT
    };
    let mut caps = alloc::vec![(CHAN, chan.token(), abi::ChannelRights::SEND.into())];
    caps.extend_from_slice(&thread_class());
    let p = spawn_quota("hostile-quota-map", &[], &caps, 8, false, q)?;
    let mut w = Window::new().ctx("window")?;
    let m = chan
        .receive(&mut w, 10_000_000_000)
        .ctx("the bomb's report")?;
    let (err, chunks) = (
        m.tag,
        u64::from_le_bytes(m.data()[..8].try_into().unwrap_or([0; 8])),
    );
    let checked = (|| {
        ensure!(
            err == Error::LimitReached as u64,
            "stopped by error {err}, expected LimitReached"
        );
        ensure!(
            chunks * CHUNK <= 2048 && chunks * CHUNK >= 1024,
            "mapped {} pages under a 2048-page quota",
            chunks * CHUNK
        );
        // The rest of the RAM is there for others: 64 MiB for us now.
        let len = 64 << 20;
        let va = runtime::mem::reserve(len);
        runtime::mem::map_anon(va, len, abi::MapFlags::READ | abi::MapFlags::WRITE)
            .ctx("64 MiB while the bomb holds its quota")?;
        // SAFETY: mapped just above, used by nothing.
        unsafe { runtime::mem::unmap(va, len) }.ctx("unmap")
    })();
    m.reply(0, 0).ctx("reply")?;
    checked?;
    expect_exit(&p, Exit::Code(0), "map bomb")?;
    chan.destroy().ctx("destroy")?;
    goes_on()
}

fn bad_quotas() -> Outcome {
    let mine = quota_use().ctx("quota")?;
    let too_many = Quota {
        threads: mine.limit.threads + 1,
        ..Quota::DEFAULT
    };
    expect_err(
        Process::create_with("greedy", &too_many),
        Error::LimitReached,
        "more threads than we have",
    )?;
    let too_many = Quota {
        caps: mine.limit.caps + 1,
        ..Quota::DEFAULT
    };
    expect_err(
        Process::create_with("greedy", &too_many),
        Error::LimitReached,
        "more capabilities than ours",
    )?;
    let empty = Quota {
        pages: 1,
        ..Quota::DEFAULT
    };
    expect_err(
        Process::create_with("tiny", &empty),
        Error::LimitReached,
        "no room for its own tables",
    )?;
    let name = "bad";
    // The kernel reads the name and fails on the quota pointer.
    let args = abi::call::ProcessCreateArgs { name_ptr: name.as_ptr() as u64, name_len: 3, quota_ptr: 0xffff_8000_0000_0000 };
    let r = runtime::sys::calls::PROCESS_CREATE.call(runtime::class_token(SyscallClass::ProcessCreate), args);
    expect_err(r, Error::BadAddress, "quota in kernel memory")?;
    let after = quota_use().ctx("quota")?;
    ensure!(
        after.used == mine.used,
        "refused creations changed our use: {:?} -> {:?}",
        mine.used,
        after.used
    );
    goes_on()
}

/// A process's worth and nothing more.
const TINY: Quota = Quota {
    threads: 0,
    pages: 4,
    channels: 0,
    caps: 4,
    processes: 0,
};

fn orphans_child(n: u64) -> i32 {
    let mut made = alloc::vec::Vec::new();
    for _ in 0..n {
        match Process::create_with("orphan", &TINY) {
            Ok(p) => made.push(p),
            Err(e) => return code(e, made.len() as u64),
        }
    }
    // One more is over the quota.
    match Process::create_with("orphan", &TINY) {
        Err(Error::LimitReached) => {}
        _ => return 1,
    }
    // Exit and leave them all behind, never started.
    core::mem::forget(made);
    0
}

/// The kernel's books and our quota use after a run of the orphan maker.
fn orphan_run() -> Result<(KernelAccounting, QuotaUse), alloc::string::String> {
    let q = Quota { processes: 20, ..Quota::DEFAULT };
    let pc = SyscallClass::ProcessCreate;
    let mut all = alloc::vec![(cap_id::class(pc), runtime::class_token(pc), abi::ClassRights::USE.into())];
    all.extend_from_slice(&thread_class());
    let p = spawn_quota("hostile-quota-orphans", &["20"], &all, 8, false, q)?;
    expect_exit(&p, Exit::Code(0), "orphan maker")?;
    // Measured while we still hold the maker's token: its exit alone must
    // have freed the orphans.
    let books = accounting().ctx("accounting")?;
    let mut mine = quota_use().ctx("quota")?;
    runtime::caps::drop_cap(p.token()).ctx("drop")?;
    mine.used.caps -= 1;
    Ok((books, mine))
}

fn orphans() -> Outcome {
    // A first run warms up our own heap; the second must leave the kernel's
    // books exactly as they were (but for the maker's token we hold).
    orphan_run()?;
    let before = (accounting().ctx("accounting")?, quota_use().ctx("quota")?);
    let after = orphan_run()?;
    ensure!(after.0 == before.0, "kernel books: {:?} before, {:?} after", before.0, after.0);
    ensure!(after.1 == before.1, "our quota use: {:?} before, {:?} after", before.1, after.1);
    goes_on()
}

/// The TSC and the uptime just after a tick.
fn tick_edge() -> (u64, u64) {
    let u = uptime_ms();
    loop {
        let (t, v) = (rdtsc(), uptime_ms());
        if v != u {
            return (t, v);
        }
    }
}

/// TSC cycles per timer tick (1 ms), measured from tick to tick over a sleep.
fn tsc_per_tick() -> u64 {
    let (t0, u0) = tick_edge();
    let _ = sleep_ms(100);
    let (t1, u1) = tick_edge();
    (t1 - t0) / (u1 - u0).max(1)
}

/// One round: a child with a quota that large gets 1 GiB mapped, 64 MiB
/// written, and is torn down. Four long syscalls.
fn big_round(src: u64) -> Outcome {
    let q = Quota {
        pages: BIG / 4096 + 1024,
        ..Quota::DEFAULT
    };
    let p = Process::create_with("big", &q).ctx("create")?;
    p.map_anon(0x1000_0000, BIG, abi::MapFlags::READ | abi::MapFlags::WRITE)
        .ctx("map 1 GiB")?;
    // SAFETY: `p` runs nothing; the source is our own mapped memory.
    unsafe {
        p.write(
            0x1000_0000,
            core::slice::from_raw_parts(src as *const u8, COPY as usize),
        )
    }
    .ctx("write 64 MiB")?;
    p.kill().ctx("kill (tears down 1 GiB)")?;
    runtime::caps::drop_cap(p.token()).ctx("drop")
}

const BIG: u64 = 1 << 30;
const COPY: u64 = 64 << 20;

/// Timer ticks against the TSC while long syscalls run. Without tick
/// windows a syscall lets at most one tick in however long it runs (the
/// LAPIC keeps one pending); with them, every tick counts. Exact under
/// `-icount`; under plain TCG the host loses ticks of its own (a periodic
/// LAPIC timer skips the periods QEMU did not run for).
fn long_syscalls() -> Outcome {
    let per_tick = tsc_per_tick();
    let src = runtime::mem::reserve(COPY);
    runtime::mem::map_anon(src, COPY, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("copy source")?;
    let (t0, u0) = tick_edge();
    let rounds = 2;
    for _ in 0..rounds {
        big_round(src)?;
    }
    let (t1, u1) = tick_edge();
    // SAFETY: mapped above, used by nothing now.
    unsafe { runtime::mem::unmap(src, COPY) }.ctx("unmap")?;
    let expected = (t1 - t0) / per_tick;
    let seen = u1 - u0;
    runtime::println!("ktest: {seen} ticks in {expected} ms (by the TSC) of {} long syscalls", 4 * rounds);
    // Long enough that one tick per syscall would show as lost ticks.
    ensure!(expected >= 4 * 4 * rounds, "the syscalls took only {expected} ms: too short to tell");
    // Measured from tick to tick: one either way for rounding.
    ensure!(seen + 1 >= expected, "{seen} ticks in {expected} ms: ticks lost");
    goes_on()
}

/// A process with room for `threads` threads and little else.
fn threads_only(threads: u64) -> Quota {
    Quota { threads, pages: 64, channels: 0, caps: 8, processes: 0 }
}

fn quota_edges() -> Outcome {
    // A running child with no process quota cannot create one.
    let pc = SyscallClass::ProcessCreate;
    let mut all = alloc::vec![(cap_id::class(pc), runtime::class_token(pc), abi::ClassRights::USE.into())];
    all.extend_from_slice(&thread_class());
    let p = spawn_quota("hostile-quota-orphans", &["0"], &all, 8, false, Quota { processes: 0, ..Quota::DEFAULT })?;
    expect_exit(&p, Exit::Code(0), "a child with no process quota creating one (LimitReached)")?;
    let _ = runtime::caps::drop_cap(p.token());
    // Exactly the threads we have left: taken; then not one more, until
    // that child is gone.
    let mine = quota_use().ctx("quota")?;
    let left = mine.limit.threads - mine.used.threads;
    let all_left = Process::create_with("all-left", &threads_only(left)).ctx("a child with exactly our threads left")?;
    expect_err(Process::create_with("one-more", &threads_only(1)), Error::LimitReached, "one thread more than we have left")?;
    // Nested: the child asks for everything it has (REST) for a grandchild,
    // then the grandchild for one thread more than that.
    let q = Quota { threads: 3, channels: 2, processes: 2, ..Quota::DEFAULT };
    all_left.kill().ctx("kill")?;
    runtime::caps::drop_cap(all_left.token()).ctx("drop")?;
    let zero = Process::create_with("zero", &Quota { threads: 0, pages: 8, channels: 0, caps: 4, processes: 0 }).ctx("a zero quota")?;
    // SAFETY: the thread would run in `zero`, which has no memory: it is refused first.
    let r = unsafe { zero.start_thread(0x1000, 0x2000, [0, 0], 1) };
    expect_err(r, Error::LimitReached, "a thread in a process with a zero thread quota")?;
    zero.kill().ctx("kill zero")?;
    runtime::caps::drop_cap(zero.token()).ctx("drop zero")?;
    // (It reads its own quota through DebugIpc, and says why it failed.)
    for c in [SyscallClass::DebugIpc, SyscallClass::DebugPrint] {
        all.push((cap_id::class(c), runtime::class_token(c), abi::ClassRights::USE.into()));
    }
    let p = spawn_quota("hostile-quota-nested", &[], &all, 8, false, q)?;
    expect_exit(&p, Exit::Code(0), "nested carving (see the child's log line on failure)")?;
    let _ = runtime::caps::drop_cap(p.token());
    let after = quota_use().ctx("quota")?;
    ensure!(after.used == mine.used, "our quota use: {:?} before, {:?} after", mine.used, after.used);
    goes_on()
}

/// A child (3 threads, 2 processes): a grandchild with `REST` takes all
/// the child has left (threads, pages, channels and processes: nothing
/// more fits), and gives it back when it ends.
fn nested_child() -> i32 {
    let run = || -> Outcome {
        let mine = quota_use().ctx("quota")?;
        let left = mine.limit.threads - mine.used.threads;
        ensure!(left == 2, "{left} threads left, expected 2 (3 less our own)");
        let g = Process::create_with("grandchild", &Quota::REST).ctx("REST")?;
        let after = quota_use().ctx("quota")?;
        let (l, u) = (after.limit, after.used);
        let room = [l.threads - u.threads, l.pages.saturating_sub(u.pages), l.channels - u.channels, l.processes - u.processes];
        expect_err(Process::create_with("more", &threads_only(1)), Error::LimitReached, "a thread beyond REST")?;
        g.kill().ctx("kill")?;
        ensure!(room == [0; 4], "room left after REST (threads, pages, channels, processes): {room:?}");
        let again = Process::create_with("again", &threads_only(left)).ctx("what REST took, back")?;
        again.kill().ctx("kill again")
    };
    match run() {
        Ok(()) => 0,
        Err(why) => {
            runtime::println!("nested child: {why}");
            1
        }
    }
}

/// Start threads (that never run) in a fresh process until it is refused;
/// kill it: how many started, and the free frames before and after.
fn fill_slots(threads: u64) -> Result<(u64, u64, u64), alloc::string::String> {
    let before = accounting().ctx("accounting")?.free_frames;
    let p = Process::create_with("stacks", &threads_only(threads)).ctx("process")?;
    let mut n = 0;
    // Priority 1: none of them runs before the process is killed.
    // SAFETY: the threads are in another process, which runs nothing.
    while unsafe { p.start_thread(0x1000, 0x2000, [0, 0], 1) }.is_ok() {
        n += 1;
    }
    p.kill().ctx("kill")?;
    runtime::caps::drop_cap(p.token()).ctx("drop")?;
    Ok((n, before, accounting().ctx("accounting")?.free_frames))
}

fn kernel_stacks() -> Outcome {
    // As many threads as the kernel has free slots (and our quota allows).
    let mine = quota_use().ctx("quota")?;
    let slots = accounting().ctx("accounting")?.free_threads;
    let want = slots.min(mine.limit.threads - mine.used.threads);
    let (n1, before1, after1) = fill_slots(want)?;
    let (n2, before2, after2) = fill_slots(want)?;
    ensure!(n1 == want && n2 == want, "started {n1} then {n2} threads of {want}");
    // A slot's stack: 16 KiB; the first round may give stacks to slots that
    // had none (and a page table or two), never more.
    let kept = before1.saturating_sub(after1);
    ensure!(kept <= 4 * n1 + 4, "the first round kept {kept} frames for {n1} threads");
    ensure!(after2 == before2, "the second round changed the free frames: {before2} -> {after2}");
    ensure!(want >= 16, "only {want} thread slots to fill");
    goes_on()
}
