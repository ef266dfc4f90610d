//! The syscall fuzzer: several processes make random syscalls
//! ([`crate::fuzzgen`]) with valid and invalid tokens, pointers, sizes and
//! flags, as many as asked (`fuzz_calls=N`, default 100 000; the seed is
//! `fuzz_seed=S` or drawn from the TSC, and printed either way). Workers
//! that fault or hang are killed and replaced. At the end the kernel's
//! accounting (free frames; free process, thread, channel, name and DMA
//! slots) must be what it was before, and a well-behaved program must still
//! spawn, map memory and call a server.
//!
//! Workers hold only what a program may: the Thread, ChannelCreate, Names,
//! Dma, ProcessCreate, DebugPrint, DebugIpc and Irq classes, their own
//! process, the RAMFS and COM1's ports read-only, an empty scratch process
//! to start threads in, and a counter page where they count their calls (so
//! calls of a worker that faults or exits still count). Workers now and
//! then end themselves (`Exit`, `ThreadExit`) and are replaced; what waits
//! on the hub when no worker receives there (a `SendCap` waits for ever) is
//! answered by the campaign.

use core::sync::atomic::{AtomicU64, Ordering};

use alloc::format;
use alloc::vec::Vec;

use abi::quota::Quota;
use abi::debug::KernelAccounting;
use abi::{cap_id, Error, Syscall, SyscallClass};
use runtime::ipc::{debug, Channel, Window};
use runtime::process::{Exit, Process};

use crate::ensure;
use crate::fuzzgen::{Fuzzer, Setup, SANDBOX_LEN, STATUSES};
use crate::harness::{num, spawn_with, Context, Outcome, Suite, SHARED};

/// Capability id of the worker's scratch process.
const SCRATCH: u64 = cap_id::USER + 3;
/// Capability id of the channel the workers share.
const HUB: u64 = cap_id::USER + 4;
/// Capability id of COM1's ports (read-only).
const PORTS: u64 = cap_id::USER + 5;
/// Calls one worker makes before a fresh one takes over (each process's
/// bad-token delays start again from 1 ms).
const CHUNK: u64 = 5000;
/// One worker in this many faults on purpose midway.
const FAULT_EVERY: u64 = 5;
/// The vector of the fault they make (#UD).
const UD: u64 = 6;
/// Workers at once.
pub const WORKERS: usize = 4;
/// A worker still alive after this long is stuck: kill it.
const HUNG_MS: u64 = 60_000;
/// Worker exit code: a syscall answered a status that is no `Error`;
/// its number and status are in the counter page.
const EXIT_UNKNOWN_STATUS: i32 = 5;
/// Counter page layout: calls per worker slot, then bad tokens per slot,
/// the unknown-status report, "done" flags per slot, and the calls by
/// status (all workers).
const BAD: usize = 64;
const REPORT: usize = 128;
const DONE: usize = 192;
const BY_STATUS: usize = 256;
/// Successful calls by syscall number (below [`SYSCALL_SLOTS`]).
const BY_SYSCALL: usize = 320;
const SYSCALL_SLOTS: u64 = 80;
/// Syscalls a long run (100 000 calls or more) must have made succeed at
/// least once: those the fuzzer once left out, and the newer ones.
const MUST_SUCCEED: [Syscall; 7] =
    [Syscall::SendCap, Syscall::DebugPrint, Syscall::DebugIpc, Syscall::IrqMsi, Syscall::IrqBind, Syscall::IrqAck, Syscall::IoPortIn];
/// Counter slot of the warm-up worker (not counted).
const WARM_UP_SLOT: usize = 63;
const PRIORITY: u8 = 8;

pub fn run(args: runtime::Args) -> i32 {
    let mut s = Suite::new("fuzz");
    // The last of repeated arguments wins (`ci boot fuzz fuzz_calls=..`
    // adds to the check's own command line).
    let last = |key: &str| args.iter().filter_map(|a| a.strip_prefix(key)?.strip_prefix('=')).last();
    let calls = last("fuzz_calls").map_or(100_000, |v| num(Some(v)));
    let seed = last("fuzz_seed").map_or_else(|| runtime::time::rdtsc() | 1, |v| num(Some(v)));
    runtime::println!("fuzz: seed {seed}, {calls} calls (repeat with `fuzz_seed={seed} fuzz_calls={calls}`)");
    let name = format!("{calls} random syscalls from {WORKERS} processes; kernel accounting returns");
    // 100 000 calls deliver about a hundred messages; none would mean
    // the workers' real sends and replies never reach the kernel's IPC.
    let min_delivered = u64::from(calls >= 100_000);
    s.case(&name, || campaign(seed, calls, WORKERS, min_delivered));
    s.case("the system goes on after fuzzing", crate::suites::hostile::goes_on);
    s.finish()
}

/// The counter page: shared with every worker as `SHARED`.
struct Counters {
    range: runtime::mem::PhysRange,
    page: &'static [AtomicU64; 512],
}

impl Counters {
    fn new() -> Result<Counters, alloc::string::String> {
        let (range, _) = runtime::mem::dma_alloc(1).ctx("counter page")?;
        let va = runtime::mem::reserve(4096);
        range.map(va, 0, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map counter page")?;
        // SAFETY: the page is mapped read-write at `va` for the rest of the
        // program and nothing else here uses it; atomics make the sharing
        // with the workers sound.
        let page = unsafe { &*(va as *const [AtomicU64; 512]) };
        Ok(Counters { range, page })
    }

    /// The first syscall a worker saw answer a status that is no `Error`.
    fn unknown(&self) -> Option<(u64, u64)> {
        let p = &self.page[REPORT..];
        let (nr, st) = (p[0].load(Ordering::Acquire), p[1].load(Ordering::Acquire));
        (st != 0).then_some((nr, st))
    }

    fn sum(&self, from: usize, n: usize) -> u64 {
        self.page[from..from + n].iter().map(|c| c.load(Ordering::Acquire)).sum()
    }
}

/// How a worker ended.
#[derive(Clone, Copy)]
enum Ended {
    /// Made its calls and said so (then we ended it).
    Done,
    /// Killed by the fault it was told to make (#UD).
    PlannedFault,
    /// Killed by a fault.
    Faulted,
    /// Ended itself early (`Exit`, `ThreadExit`).
    Exited,
    /// Told to fault, but ended itself before it came to that.
    ExitedFirst,
    /// Still running after `HUNG_MS`: killed.
    Hung,
    /// Ended on its own and its process slot was reused before we looked:
    /// our token went stale.
    Unseen,
}

#[derive(Default)]
struct Tally {
    started: u64,
    /// Workers told to fault, and those that did.
    planned: u64,
    planned_faulted: u64,
    faulted: u64,
    exited: u64,
    planned_exited: u64,
    hung: u64,
    unseen: u64,
}

impl Tally {
    fn count(&mut self, how: Ended) {
        match how {
            Ended::Done => {}
            Ended::PlannedFault => self.planned_faulted += 1,
            Ended::Faulted => self.faulted += 1,
            Ended::Exited => self.exited += 1,
            Ended::ExitedFirst => {
                self.exited += 1;
                self.planned_exited += 1;
            }
            Ended::Hung => self.hung += 1,
            Ended::Unseen => self.unseen += 1,
        }
    }
}

/// Whether worker `w` in slot `i` has ended; end it if it is done or hung.
///
/// A worker that finishes says so in the counter page and waits to be
/// killed (killing, then waiting at once, gets its end before anyone can
/// reuse its process slot, which would make our token stale); it has
/// killed its scratch process itself, as have workers that fault on
/// purpose. Only after another end do we kill the scratch process.
fn reap(w: &Worker, i: usize, c: &Counters) -> Option<Ended> {
    let done = c.page[DONE + i].swap(0, Ordering::AcqRel) != 0;
    let hung = runtime::time::uptime_ms() - w.started > HUNG_MS;
    if done || hung {
        let _ = w.proc.kill();
    }
    let how = match w.proc.wait_timeout(0) {
        Err(Error::Timeout) => return None,
        Ok(Exit::Killed) if done => Ended::Done,
        Ok(Exit::Killed) if hung => Ended::Hung,
        Ok(Exit::Fault(UD)) if w.fault_after != 0 => Ended::PlannedFault,
        Err(_) => Ended::Unseen,
        Ok(Exit::Code(_)) if w.fault_after != 0 => Ended::ExitedFirst,
        Ok(Exit::Code(_)) => Ended::Exited,
        Ok(_) => Ended::Faulted,
    };
    if !matches!(how, Ended::Done | Ended::PlannedFault) {
        let _ = w.scratch.kill();
    }
    Some(how)
}

/// A running worker.
struct Worker {
    proc: Process,
    scratch: Process,
    started: u64,
    quota: u64,
    /// Its slot's counter when it started.
    base: u64,
    /// It faults on purpose after this many calls (0: never).
    fault_after: u64,
}

impl Worker {
    /// Drop our tokens for the ended worker and its scratch process (a
    /// long run starts more workers than our capability table holds).
    fn forget(self) {
        let _ = runtime::caps::drop_cap(self.proc.token());
        let _ = runtime::caps::drop_cap(self.scratch.token());
    }
}

/// Run `calls` random syscalls from `workers` processes at once; check the
/// kernel's accounting before and after, and that at least `min_delivered`
/// messages passed between the workers. Whether two workers meet on the hub
/// is chance: a long run always has some, a short one (10 000 calls from
/// two workers) sometimes none, so short runs ask for 0.
pub fn campaign(seed: u64, calls: u64, workers: usize, min_delivered: u64) -> Outcome {
    let counters = Counters::new()?;
    // Another process's token for the workers to try (worthless to them).
    let foreign = Channel::create().ctx("channel")?;
    // Where the workers' messages meet.
    let hub = Channel::create().ctx("hub channel")?;
    warm_up(&counters, hub.token())?;
    // (Made before the books are read: its page and tables stay ours.)
    let mut window = Window::new().ctx("window")?;
    let before = debug::accounting().ctx("accounting")?;
    let messages = debug::totals().ctx("IPC totals")?.messages_total;
    let start = runtime::time::uptime_ms();
    let mut slots: Vec<Option<Worker>> = (0..workers).map(|_| None).collect();
    let mut tally = Tally::default();
    let mut assigned = 0u64;
    let result = loop {
        let mut failure = None;
        for (i, slot) in slots.iter_mut().enumerate() {
            if let Some(w) = slot {
                if let Some(how) = reap(w, i, &counters) {
                    let did = counters.page[i].load(Ordering::Acquire) - w.base;
                    assigned -= w.quota.saturating_sub(did);
                    tally.count(how);
                    if let Some(w) = slot.take() {
                        w.forget();
                    }
                }
            }
            if slot.is_none() && assigned < calls && counters.unknown().is_none() {
                let quota = CHUNK.min(calls - assigned);
                let worker_seed = seed ^ tally.started.wrapping_mul(0x2545_f491_4f6c_dd1d);
                // Some workers fault on purpose midway, holding whatever
                // they hold: the kernel must clean up after them too.
                let fault_after = if tally.started % FAULT_EVERY == FAULT_EVERY - 1 && quota > 1 {
                    tally.planned += 1;
                    1 + worker_seed % (quota - 1)
                } else {
                    0
                };
                let mut w = match spawn_worker(&counters, worker_seed, quota, i, foreign.token(), hub.token(), fault_after) {
                    Ok(w) => w,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                (w.base, w.quota) = (counters.page[i].load(Ordering::Acquire), quota);
                *slot = Some(w);
                assigned += quota;
                tally.started += 1;
            }
        }
        if let Some((nr, st)) = counters.unknown() {
            break Err(format!("syscall {nr} answered unknown status {st:#x}"));
        }
        if let Some(f) = failure {
            break Err(f);
        }
        // Workers that die without making their calls would be replaced
        // for ever.
        if tally.started > 2 * calls.div_ceil(CHUNK) + 2 * workers as u64 {
            break Err(format!("{} workers started for {calls} calls: they keep dying early", tally.started));
        }
        if slots.iter().all(Option::is_none) {
            break Ok(());
        }
        drain(&hub, &mut window);
        let _ = runtime::time::sleep_ms(5);
    };
    for w in slots.into_iter().flatten() {
        let _ = w.proc.kill();
        let _ = w.scratch.kill();
        w.forget();
    }
    let done = counters.sum(0, workers);
    let delivered = debug::totals().ctx("IPC totals")?.messages_total - messages;
    runtime::println!(
        "fuzz: {done} calls by {} workers in {} ms ({} with a bad token on purpose, {delivered} messages delivered); workers that faulted as told {} of {}, faulted otherwise {}, exited {}, hung {}, ended unseen {}",
        tally.started,
        runtime::time::uptime_ms() - start,
        counters.sum(BAD, workers),
        tally.planned_faulted,
        tally.planned,
        tally.faulted,
        tally.exited,
        tally.hung,
        tally.unseen,
    );
    let mut line = runtime::print::LineWriter::new();
    {
        use core::fmt::Write;
        let _ = write!(line, "fuzz: answers:");
        for st in 0..STATUSES {
            let n = counters.page[BY_STATUS + st].swap(0, Ordering::AcqRel);
            match Error::from_raw(st as u64) {
                _ if n == 0 => {}
                Some(e) => {
                    let _ = write!(line, " {e:?} {n}");
                }
                None => {
                    let _ = write!(line, " ok {n}");
                }
            }
        }
        let _ = writeln!(line);
    }
    line.flush();
    let mut line = runtime::print::LineWriter::new();
    let mut missing = Vec::new();
    {
        use core::fmt::Write;
        let _ = write!(line, "fuzz: succeeded:");
        for nr in 0..SYSCALL_SLOTS {
            let n = counters.page[BY_SYSCALL + nr as usize].swap(0, Ordering::AcqRel);
            if let Some(s) = Syscall::from_raw(nr) {
                let _ = write!(line, " {s:?} {n}");
                if n == 0 && MUST_SUCCEED.contains(&s) {
                    missing.push(s);
                }
            }
        }
        let _ = writeln!(line);
    }
    line.flush();
    result?;
    ensure!(calls < 100_000 || missing.is_empty(), "{calls} calls and never a success of {missing:?}");
    ensure!(done >= calls, "only {done} of {calls} calls made");
    ensure!(tally.hung == 0, "{} workers hung", tally.hung);
    // (A worker whose end we did not see may have been one of them.)
    ensure!(
        tally.planned_faulted + tally.unseen + tally.planned_exited >= tally.planned,
        "{} of {} workers faulted as told ({} ended themselves first)",
        tally.planned_faulted,
        tally.planned,
        tally.planned_exited
    );
    ensure!(delivered >= min_delivered, "the workers got only {delivered} messages to each other (at least {min_delivered} expected)");
    let after = debug::accounting().ctx("accounting")?;
    ensure!(after == before, "kernel accounting changed: before {}; after {}", show(&before), show(&after));
    runtime::println!("fuzz: kernel accounting before and after: {}", show(&after));
    foreign.destroy().ctx("destroy")?;
    hub.destroy().ctx("destroy hub")?;
    Ok(())
}

/// Answer what waits on the hub (a worker's `SendCap` waits for ever,
/// and the last workers may have no one left to receive it), dropping
/// any capability it brought.
fn drain(hub: &Channel, window: &mut Window) {
    while let Ok(m) = hub.receive(window, 0) {
        let cap = m.cap;
        let _ = m.reply(0, 0);
        if cap != 0 {
            let _ = runtime::caps::drop_cap(cap);
        }
    }
}

fn show(a: &KernelAccounting) -> alloc::string::String {
    format!(
        "{} frames, {} process, {} thread, {} channel, {} name, {} DMA slots free",
        a.free_frames, a.free_processes, a.free_threads, a.free_channels, a.free_names, a.free_dma
    )
}

/// Give every free thread slot its kernel stack (the kernel keeps a dead
/// thread's stack for the next thread in the slot), and grow our heap for
/// spawning, so that what the fuzz run leaves in those caches does not
/// count as a leak.
fn warm_up(counters: &Counters, hub: u64) -> Outcome {
    let p = Process::create("warm-up").ctx("process")?;
    let mut n = 0;
    // Priority 1: none of them runs before the process is killed.
    // SAFETY: the threads are in another process, which runs nothing.
    while unsafe { p.start_thread(0x1000, 0x2000, [0, 0], 1) }.is_ok() {
        n += 1;
    }
    p.kill().ctx("kill warm-up")?;
    ensure!(n > 0, "no thread slots free");
    let w = spawn_worker(counters, 1, 1, WARM_UP_SLOT, 0, hub, 0)?;
    crate::harness::wait_until("the warm-up worker", || reap(&w, WARM_UP_SLOT, counters).is_some())?;
    w.forget();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn spawn_worker(
    c: &Counters,
    seed: u64,
    quota: u64,
    slot: usize,
    foreign: u64,
    hub: u64,
    fault_after: u64,
) -> Result<Worker, alloc::string::String> {
    // The scratch process never runs: it needs no room for processes of its
    // own, and pages only for what the fuzzer maps into it (a sandbox's
    // worth, with page tables), so four workers fit next to the boot's
    // servers and device drivers.
    let scratch_quota = Quota { processes: 0, pages: 2 * (SANDBOX_LEN / abi::PAGE_SIZE as u64), ..Quota::DEFAULT };
    let scratch = Process::create_with("fuzz-scratch", &scratch_quota).ctx("scratch process")?;
    let class = |c: SyscallClass| (cap_id::class(c), runtime::class_token(c), abi::ClassRights::USE.into());
    let caps = [
        class(SyscallClass::Thread),
        class(SyscallClass::ChannelCreate),
        // DELEGATE too: NamesScope narrows it (without, every call would
        // be a bad token and cost a delay).
        (cap_id::class(SyscallClass::Names), runtime::class_token(SyscallClass::Names), (abi::ClassRights::USE | abi::ClassRights::DELEGATE).into()),
        class(SyscallClass::Dma),
        class(SyscallClass::ProcessCreate),
        class(SyscallClass::DebugPrint),
        class(SyscallClass::DebugIpc),
        class(SyscallClass::Irq),
        (cap_id::RAMFS, runtime::init_cap(cap_id::RAMFS).unwrap_or(0), (abi::PhysRights::READ | abi::PhysRights::DELEGATE).into()),
        (SHARED, c.range.0, (abi::PhysRights::READ | abi::PhysRights::WRITE).into()),
        (SCRATCH, scratch.token(), abi::RightsMask::ALL),
        (HUB, hub, (abi::ChannelRights::SEND | abi::ChannelRights::RECEIVE).into()),
    ];
    let mut caps = caps.to_vec();
    if let Some(com1) = runtime::init_cap(cap_id::COM1) {
        caps.push((PORTS, com1, abi::IoPortRights::READ.into()));
    }
    let args = [seed, quota, slot as u64, foreign, fault_after].map(|v| format!("{v}"));
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    match spawn_with("fuzz", &args, &caps, PRIORITY, false) {
        Ok(proc) => Ok(Worker { proc, scratch, started: runtime::time::uptime_ms(), quota: 0, base: 0, fault_after }),
        Err(e) => {
            let _ = scratch.kill();
            Err(e)
        }
    }
}

fn end_scratch(f: &Fuzzer) {
    if f.scratch() != 0 {
        let _ = Process::from_token(f.scratch()).kill();
    }
}

/// The worker (`ktest child fuzz <seed> <calls> <slot> <foreign token>
/// <fault after>`).
pub fn worker(args: runtime::Args) -> i32 {
    let (seed, calls, slot, foreign) = (num(args.get(3)), num(args.get(4)), num(args.get(5)) as usize, num(args.get(6)));
    let fault_after = num(args.get(7));
    let Some(page) = crate::child::shared() else { return 3 };
    let Ok(own) = Channel::create() else { return 4 };
    let Ok(w) = Window::new() else { return 6 };
    let Ok(gone) = Channel::create() else { return 7 };
    let stale = gone.token();
    if gone.destroy().is_err() {
        return 8;
    }
    let setup = Setup {
        channel: own.token(),
        window: w.addr(),
        sandbox: runtime::mem::reserve(SANDBOX_LEN),
        me: runtime::caps::self_process(),
        scratch: runtime::init_cap(SCRATCH).unwrap_or(0),
        phys: runtime::init_cap(cap_id::RAMFS).unwrap_or(0),
        stale,
        foreign,
        hub: runtime::init_cap(HUB).unwrap_or(0),
        ports: runtime::init_cap(PORTS).unwrap_or(0),
    };
    let mut f = Fuzzer::new(seed, setup);
    let mut bad = 0;
    while f.calls < calls {
        if fault_after != 0 && f.calls == fault_after {
            // (The scratch process first, as at a normal end: the parent's
            // token for it may be stale by the time it looks.)
            end_scratch(&f);
            // SAFETY: `ud2` raises #UD, which ends this process.
            unsafe { core::arch::asm!("ud2") };
        }
        let before = f.calls;
        if let Err(u) = f.step() {
            page[REPORT].store(u.nr, Ordering::Release);
            page[REPORT + 1].store(u.status, Ordering::Release);
            return EXIT_UNKNOWN_STATUS;
        }
        if f.calls > before {
            page[slot].fetch_add(1, Ordering::AcqRel);
            page[BY_STATUS + f.last_status].fetch_add(1, Ordering::Relaxed);
            if f.last_status == 0 && f.last_nr < SYSCALL_SLOTS {
                page[BY_SYSCALL + f.last_nr as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
        page[BAD + slot].fetch_add(f.bad_tokens - bad, Ordering::Relaxed);
        bad = f.bad_tokens;
    }
    end_scratch(&f);
    // Done: the parent kills us (see `reap`).
    page[DONE + slot].store(1, Ordering::Release);
    loop {
        let _ = runtime::time::sleep_ms(1000);
    }
}
