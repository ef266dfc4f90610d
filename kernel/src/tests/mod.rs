//! Host tests of the kernel logic: IPC, capabilities, scheduling, processes
//! and memory, driven the way user threads drive them, through
//! [`Kernel::syscall`], over fake RAM.
//!
//! The harness ([`World`]) plays the part of the architecture glue: it makes
//! a chosen thread `current` (as a context switch would), issues a syscall,
//! and reads the result from the thread's `ret` when the thread did not block.
//! After every syscall it checks the kernel's bookkeeping invariants
//! ([`World::check`]), so every test also checks those.

mod caps;
mod fastpath;
mod fuzz;
mod ioport;
mod ipc;
mod irq;
mod pcid;
mod procmem;
mod quota;
mod sched;
mod short;

extern crate std;

use std::ops::Range;
use std::vec;
use std::vec::Vec;

use abi::{CapKind, Error, Syscall, SyscallClass};
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use crate::cap::Cap;
use crate::kernel::{Kernel, IDLE_THREAD};
use crate::mem::testing::{FakeRam, FakeRamMemory};
use crate::mem::{user, PageTables, PAGE_SIZE};
use crate::proc::{ProcState, State, Thread, Tid, NO_THREAD};

std::thread_local! {
    /// Set by [`World::sys_raw`] for a world whose kernel must not take the
    /// IPC fast path (read by `Kernel::syscall`).
    static GENERAL_ONLY: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    /// Syscalls the fast path finished on this test thread.
    static FAST_TAKEN: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// Whether the current syscall must skip the fast path.
pub(crate) fn general_only() -> bool {
    GENERAL_ONLY.with(|g| g.get())
}

/// Note whether the fast path finished a syscall.
pub(crate) fn count_fast(taken: bool) {
    FAST_TAKEN.with(|n| n.set(n.get() + taken as u64));
}

/// Syscalls the fast path has finished on this test thread so far.
pub fn fast_taken() -> u64 {
    FAST_TAKEN.with(|n| n.get())
}

pub const PAGE: u64 = PAGE_SIZE;
/// Frames of fake RAM in a default world (16 MiB, all of it RAM).
pub const FRAMES: usize = 4096;
/// Read-write data pages every spawned process has.
pub const BUF: u64 = 0x40_0000;
pub const BUF_PAGES: u64 = 8;
/// Read-write receive windows every spawned process has.
pub const WIN: u64 = abi::layout::IPC_WINDOWS;
pub const WIN_PAGES: u64 = 4;
/// A user address that nothing maps.
pub const UNMAPPED: u64 = 0x7000_0000;
pub const FOREVER: u64 = abi::FOREVER;
/// One tick in nanoseconds (timeouts are given in nanoseconds).
pub const MS: u64 = abi::limits::TICK_NS;
pub const RW: abi::MapFlags = abi::MapFlags::READ.union(abi::MapFlags::WRITE);
/// A small quota for children made through `ProcessCreate` in tests.
pub const SMALL: abi::quota::Quota = abi::quota::Quota { threads: 4, pages: 64, channels: 4, caps: 16, processes: 0 };
/// A token no process holds.
pub const BOGUS: u64 = 0x5eed_0bad_c0de_f00d;

/// What a syscall did, as seen by the calling thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum R {
    /// Finished with these values.
    Ok([u64; 4]),
    /// Finished with this error.
    Err(Error),
    /// The thread is not ready to run: it waits in this state.
    Blocked(State),
}

impl R {
    /// The values of a successful call.
    #[track_caller]
    pub fn ok(self) -> [u64; 4] {
        match self {
            R::Ok(v) => v,
            other => panic!("expected success, got {other:?}"),
        }
    }
}

/// A call that left the thread waiting in state `s`.
pub fn blocked(s: State) -> R {
    R::Blocked(s)
}

/// Decode a thread's `ret` registers; the error code must be a valid one.
#[track_caller]
pub fn decode(ret: [u64; 5]) -> R {
    if ret[0] == 0 {
        R::Ok([ret[1], ret[2], ret[3], ret[4]])
    } else {
        R::Err(Error::from_raw(ret[0]).unwrap_or_else(|| panic!("invalid error code {:#x}", ret[0])))
    }
}

/// The tokens a process made by [`World::spawn`] starts with.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps {
    pub print: u64,
    pub thread: u64,
    pub chan: u64,
    pub names: u64,
    pub dma: u64,
    pub spawn: u64,
    pub debug_ipc: u64,
    pub power: u64,
    pub irq: u64,
    /// Its own process, every right.
    pub me: u64,
}

/// A client and a server process, one thread each, and a channel the server
/// owns (`chan`, every right) for which the client holds a send-only token.
#[derive(Clone, Copy, Debug)]
pub struct Rig {
    pub sp: usize,
    pub cp: usize,
    pub s: Tid,
    pub c: Tid,
    pub chan: u64,
    pub send: u64,
}

/// A kernel over fake RAM, and the tokens of the processes the test made.
pub struct World {
    pub k: Kernel,
    pub caps: Vec<Option<Caps>>,
    /// Run every syscall through the general path only (no IPC fast path).
    pub general_only: bool,
    /// Declared after `k`, so the memory outlives the kernel that uses it.
    _ram: FakeRamMemory,
}

impl World {
    /// 16 MiB of fake RAM, all of it RAM as far as the kernel knows.
    pub fn new() -> World {
        World::build(FRAMES, &[(0, FRAMES as u64 * PAGE)], None)
    }

    /// `frames` frames of fake RAM; the kernel is told `ram` is RAM, and the
    /// frames in `reserve` are kept from the allocator (stand-ins for a boot
    /// image or device memory that the host can still safely access).
    pub fn build(frames: usize, ram: &[(u64, u64)], reserve: Option<Range<u64>>) -> World {
        let (mem, phys, mut fa) = FakeRam::new(frames).split();
        if let Some(r) = reserve {
            fa.reserve(r);
        }
        let mut kpt = PageTables::new_empty(&phys, &mut fa).expect("kernel tables");
        kpt.populate_kernel_half(&phys, &mut fa).expect("kernel half");
        let k = Kernel::new(phys, fa, kpt, ram, &[1, 2, 3]).expect("kernel");
        World { k, caps: vec![None; crate::proc::PROCESS_SLOTS], general_only: false, _ram: mem }
    }

    // ----- processes and threads -------------------------------------------

    /// A process with a token for every syscall class, one for itself, and
    /// [`BUF`] and [`WIN`] mapped read-write.
    pub fn spawn(&mut self, name: &str) -> usize {
        self.try_spawn(name).expect("spawn")
    }

    /// [`Self::spawn`], failing as the kernel does when tables or memory run out.
    pub fn try_spawn(&mut self, name: &str) -> Result<usize, Error> {
        let (p, gen) = self.k.create_process(name.as_bytes())?;
        let k = &mut self.k;
        let mut class = |c| k.mint(p, Cap::class(c, abi::ClassRights::USE | abi::ClassRights::DELEGATE)).unwrap();
        let mut caps = Caps {
            print: class(SyscallClass::DebugPrint),
            thread: class(SyscallClass::Thread),
            chan: class(SyscallClass::ChannelCreate),
            names: class(SyscallClass::Names),
            dma: class(SyscallClass::Dma),
            spawn: class(SyscallClass::ProcessCreate),
            debug_ipc: class(SyscallClass::DebugIpc),
            power: class(SyscallClass::Power),
            irq: class(SyscallClass::Irq),
            me: 0,
        };
        caps.me = self.k.mint(p, Cap::object(CapKind::Process, p as u32, gen, abi::RightsMask::ALL)).unwrap();
        let mapped = self.k.map_anon(p, BUF, BUF_PAGES * PAGE, RW).and_then(|()| self.k.map_anon(p, WIN, WIN_PAGES * PAGE, RW));
        if let Err(e) = mapped {
            self.k.end_process(p, abi::exit::KILLED, 0);
            return Err(e);
        }
        self.caps[p] = Some(caps);
        Ok(p)
    }

    /// A process with no capabilities and no memory.
    pub fn bare(&mut self, name: &str) -> usize {
        self.k.create_process(name.as_bytes()).expect("create_process").0
    }

    /// The tokens of process `p`.
    pub fn c(&self, p: usize) -> Caps {
        self.caps[p].expect("process made without capabilities")
    }

    /// The tokens of the process of thread `t`.
    pub fn ct(&self, t: Tid) -> Caps {
        self.c(self.k.proc_of(t))
    }

    /// A new thread of `p` (ready, not running).
    pub fn thread(&mut self, p: usize, prio: u8) -> Tid {
        self.k.create_thread(p, 0x1000, 0x2000, [0, 0], prio).expect("create_thread")
    }

    pub fn th(&self, t: Tid) -> &Thread {
        &self.k.threads[t as usize]
    }

    pub fn state(&self, t: Tid) -> State {
        self.th(t).state
    }

    /// Give `to` a copy of `from`'s capability `token` with at most `mask`
    /// rights (test setup, bypassing the syscalls); returns the new token.
    pub fn give(&mut self, from: usize, token: u64, to: usize, mask: impl Into<abi::RightsMask>) -> u64 {
        let cap = *self.k.procs[from].caps.as_ref().unwrap().get(token).expect("no such token");
        self.k.mint(to, cap.reduced(mask.into())).unwrap()
    }

    /// A process capability for `target` in `holder`.
    pub fn proc_cap(&mut self, holder: usize, target: usize, mask: impl Into<abi::RightsMask>) -> u64 {
        let gen = self.k.procs[target].gen;
        self.k.mint(holder, Cap::object(CapKind::Process, target as u32, gen, mask)).unwrap()
    }

    /// End process `p` from outside (as a fault or the kernel would), then
    /// let the scheduler pick.
    pub fn kill(&mut self, p: usize, how: u64, code: u64) {
        self.k.end_process(p, how, code);
        self.k.reschedule();
        self.check();
    }

    // ----- running threads ---------------------------------------------------

    /// Make `t` the running thread, as a context switch would. A running
    /// thread it displaces goes back to its run queue.
    #[track_caller]
    pub fn run_as(&mut self, t: Tid) {
        let k = &mut self.k;
        if k.current != t {
            let st = k.threads[t as usize].state;
            assert_eq!(st, State::Runnable, "thread {t} cannot be run");
            k.sched.remove(&mut k.threads, t);
            let cur = k.current;
            if k.threads[cur as usize].state == State::Running {
                k.threads[cur as usize].state = State::Runnable;
                if cur != IDLE_THREAD {
                    k.sched.enqueue(&mut k.threads, cur);
                }
            }
            k.threads[t as usize].state = State::Running;
            k.current = t;
        }
        assert_eq!(k.threads[t as usize].state, State::Running);
        // SAFETY: the fake machine's CR3.
        unsafe { k.activate(t) };
    }

    /// Syscall `nr` (possibly not a valid number) by thread `t`.
    #[track_caller]
    pub fn sys_raw(&mut self, t: Tid, nr: u64, args: [u64; 6]) -> R {
        self.run_as(t);
        GENERAL_ONLY.with(|g| g.set(self.general_only));
        self.k.syscall(nr, &args);
        GENERAL_ONLY.with(|g| g.set(false));
        // The thread that runs now returns to its program: its exit loads
        // the message words (a fast path may have lent it another thread's,
        // see `WordsAt`), which are its own from then on.
        let cur = self.k.current as usize;
        let seen = self.k.threads[cur].visible_words();
        self.k.threads[cur].mr = seen;
        self.k.threads[cur].words = crate::proc::thread::WordsAt(&raw const self.k.threads[cur].mr);
        self.check();
        self.status(t)
    }

    #[track_caller]
    pub fn sys(&mut self, t: Tid, call: Syscall, args: [u64; 6]) -> R {
        self.sys_raw(t, call as u64, args)
    }

    /// The outcome of `t`'s last syscall, if it is ready to run again.
    #[track_caller]
    pub fn status(&self, t: Tid) -> R {
        let th = self.th(t);
        match th.state {
            State::Running | State::Runnable => decode(th.ret),
            s => R::Blocked(s),
        }
    }

    /// A call that must fail with a capability error: the caller is put to
    /// sleep (the bad-token delay), then woken with `Incapable`. Returns the
    /// delay in ticks.
    #[track_caller]
    pub fn rejected(&mut self, t: Tid, call: Syscall, args: [u64; 6]) -> u64 {
        let now = self.k.timers.now;
        let r = self.sys(t, call, args);
        assert_eq!(r, R::Blocked(State::Sleeping), "{call:?} with a bad capability was not delayed");
        assert_eq!(self.th(t).ret[0], Error::Incapable as u64, "{call:?}: wrong error");
        let deadline = self.th(t).deadline;
        assert!(deadline > now && deadline != u64::MAX, "penalty without a future deadline");
        let waited = self.tick_until_ready(t);
        assert_eq!(waited, deadline - now, "woken before or after the deadline");
        assert_eq!(self.status(t), R::Err(Error::Incapable));
        deadline - now
    }

    /// Let the scheduler pick a thread (as the return path of an interrupt
    /// would after threads were made ready outside a syscall).
    pub fn settle(&mut self) {
        self.k.reschedule();
        self.check();
    }

    pub fn tick(&mut self, n: u64) {
        for _ in 0..n {
            self.k.tick();
        }
        self.check();
    }

    /// Tick until `t` is ready to run; returns the ticks it took.
    #[track_caller]
    pub fn tick_until_ready(&mut self, t: Tid) -> u64 {
        let mut n = 0;
        while !matches!(self.state(t), State::Runnable | State::Running) {
            assert!(n < 200_000, "thread {t} never woke ({:?})", self.state(t));
            self.k.tick();
            n += 1;
        }
        self.check();
        n
    }

    // ----- IPC -----------------------------------------------------------------

    /// A new channel made by thread `t`; returns its token (every right).
    #[track_caller]
    pub fn channel(&mut self, t: Tid) -> u64 {
        let class = self.ct(t).chan;
        self.sys(t, Syscall::ChannelCreate, [class, 0, 0, 0, 0, 0]).ok()[0]
    }

    #[track_caller]
    pub fn send(&mut self, t: Tid, token: u64, tag: u64, size: u64, buf: u64, timeout: u64) -> R {
        self.sys(t, Syscall::Send, [token, tag, size, buf, timeout, 0])
    }

    #[track_caller]
    pub fn recv(&mut self, t: Tid, token: u64, window: u64, timeout: u64) -> R {
        self.sys(t, Syscall::Receive, [token, window, timeout, 0, 0, 0])
    }

    /// `Reply` with `len` bytes from the window [`WIN`].
    #[track_caller]
    pub fn reply(&mut self, t: Tid, cookie: u64, result: u64, len: u64) -> R {
        self.reply_from(t, cookie, result, WIN, len)
    }

    /// `Reply` with `len` bytes from the server's `buf`.
    #[track_caller]
    pub fn reply_from(&mut self, t: Tid, cookie: u64, result: u64, buf: u64, len: u64) -> R {
        self.sys(t, Syscall::Reply, [cookie, result, buf, len, 0, 0])
    }

    /// Server thread `s` takes the next message from `chan` into [`WIN`]
    /// (someone must already be sending); returns (cookie, tag, size, cap).
    #[track_caller]
    pub fn take(&mut self, s: Tid, chan: u64) -> [u64; 4] {
        self.recv(s, chan, WIN, 0).ok()
    }

    /// See [`Rig`].
    pub fn rig(&mut self, server_prio: u8, client_prio: u8) -> Rig {
        let sp = self.spawn("server");
        let cp = self.spawn("client");
        let s = self.thread(sp, server_prio);
        let c = self.thread(cp, client_prio);
        let chan = self.channel(s);
        let send = self.give(sp, chan, cp, abi::ChannelRights::SEND);
        Rig { sp, cp, s, c, chan, send }
    }

    // ----- memory ----------------------------------------------------------------

    #[track_caller]
    pub fn write(&self, p: usize, va: u64, data: &[u8]) {
        user::write(&self.k.phys, &self.k.space(p), va, data, user::Access::Write).expect("test write to user memory");
    }

    pub fn try_read(&self, p: usize, va: u64, len: usize) -> Option<Vec<u8>> {
        let mut v = vec![0; len];
        user::read(&self.k.phys, &self.k.space(p), va, &mut v).ok().map(|()| v)
    }

    #[track_caller]
    pub fn read(&self, p: usize, va: u64, len: usize) -> Vec<u8> {
        self.try_read(p, va, len).expect("test read of user memory")
    }

    /// Physical address of the page mapped at `va` in `p`.
    pub fn frame(&self, p: usize, va: u64) -> Option<u64> {
        self.k.space(p).translate(&self.k.phys, VirtAddr::new(va)).map(|(pa, _)| pa.as_u64() & !(PAGE - 1))
    }

    pub fn flags(&self, p: usize, va: u64) -> Option<Flags> {
        self.k.space(p).translate(&self.k.phys, VirtAddr::new(va)).map(|(_, f)| f)
    }

    /// Whether the frame at physical address `pa` is allocated.
    pub fn used(&self, pa: u64) -> bool {
        self.k.frames.is_used(PhysFrame::containing_address(PhysAddr::new(pa)))
    }

    pub fn free(&self) -> usize {
        self.k.frames.free_frames()
    }

    // ----- invariants --------------------------------------------------------

    /// The kernel's bookkeeping agrees with itself. One pass over the
    /// threads, so that the fuzzer can afford it after every call.
    #[track_caller]
    pub fn check(&mut self) {
        use crate::ipc::channel::CHANNEL_SLOTS as CHANNELS;
        use crate::proc::PROCESS_SLOTS as PROCESSES;
        let k = &mut self.k;
        let cur = k.current as usize;
        assert_eq!(k.threads[cur].state, State::Running, "current thread {cur} is not running");
        let (mut senders, mut receivers, mut in_flight) = (vec![0usize; CHANNELS], vec![0usize; CHANNELS], vec![0usize; CHANNELS]);
        let mut threads = vec![0usize; PROCESSES];
        let mut unanswered = vec![0usize; PROCESSES];
        let (mut messages, mut timed) = (0u64, 0usize);
        let mut ready: Option<u8> = None;
        for (i, th) in k.threads.iter().enumerate() {
            assert!(i == cur || th.state != State::Running, "thread {i} is running but not current");
            match th.state {
                State::SendBlocked => {
                    messages += 1;
                    senders[th.wait_obj as usize] += 1;
                }
                State::AwaitingReply => {
                    messages += 1;
                    if th.msg.server != NO_THREAD {
                        unanswered[k.threads[th.msg.server as usize].process as usize] += 1;
                    }
                    if th.msg.lent {
                        // Send isolation: the lender cannot reach its page.
                        let space = k.procs[th.process as usize].space.unwrap();
                        let e = space.leaf_raw(&k.phys, th.msg.buf);
                        assert!(e != 0 && e & Flags::PRESENT.bits() == 0, "thread {i}: lent page present for its sender");
                    }
                    if th.msg.chan != crate::ipc::NO_CHANNEL {
                        in_flight[th.msg.chan as usize] += 1;
                    }
                }
                State::RecvBlocked => receivers[th.wait_obj as usize] += 1,
                State::Runnable if i != IDLE_THREAD as usize => ready = ready.max(Some(th.prio)),
                _ => {}
            }
            if !matches!(th.state, State::Free | State::Dead) {
                threads[th.process as usize] += 1;
                // A switch loads exactly its process's word (PCID and all).
                assert_eq!(th.root, k.space_word(th.process as usize), "thread {i}: CR3 word is not its process's");
            }
            if th.deadline != u64::MAX {
                timed += 1;
            }
        }
        assert_eq!(k.ipc.in_flight, messages, "IPC in-flight count drifted");
        assert_eq!(k.sched.highest(), ready, "run queues disagree with thread states");
        let mut owned = vec![0usize; PROCESSES];
        let live: Vec<u16> = k.channels.live_indices().collect();
        for c in live {
            let ch = k.channels.slot(c);
            let i = c as usize;
            assert_eq!(ch.senders.len(), senders[i], "channel {c}: sender queue");
            assert_eq!(ch.receivers.len(), receivers[i], "channel {c}: receiver queue");
            assert_eq!(ch.in_flight as usize, in_flight[i], "channel {c}: messages in flight");
            owned[ch.owner as usize] += 1;
            (senders[i], receivers[i], in_flight[i]) = (0, 0, 0);
        }
        assert!(senders.iter().chain(&receivers).chain(&in_flight).all(|&n| n == 0), "threads wait on a dead channel");
        // The timer list is sorted and holds exactly the timed threads.
        let (mut n, mut at, mut last) = (0, k.timers.first(), 0);
        while at != NO_THREAD {
            let th = &k.threads[at as usize];
            assert!(th.deadline >= last && th.deadline != u64::MAX, "timer list out of order");
            assert!(
                matches!(th.state, State::Sleeping | State::SendBlocked | State::RecvBlocked | State::Waiting),
                "thread {at} on the timer list while {:?}",
                th.state
            );
            last = th.deadline;
            at = th.timer_next;
            n += 1;
            assert!(n <= k.threads.len(), "timer list loops");
        }
        assert_eq!(n, timed, "timed threads missing from the timer list");
        for (p, pr) in k.procs.iter().enumerate().skip(1) {
            match pr.state {
                ProcState::Alive => {
                    assert_eq!(pr.threads as usize, threads[p], "process {p}: thread count");
                    assert_eq!(pr.channels as usize, owned[p], "process {p}: channel count");
                    assert_eq!(k.unanswered[p] as usize, unanswered[p], "process {p}: unanswered messages");
                }
                _ => {
                    assert_eq!(threads[p], 0, "process {p} is gone but has threads");
                    assert_eq!(owned[p], 0, "process {p} is gone but owns channels");
                    assert_eq!(unanswered[p], 0, "process {p} is gone but holds messages");
                    assert_eq!(k.unanswered[p], 0, "process {p} is gone but counts messages");
                }
            }
        }
    }
}

/// Recognisable bytes.
pub fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A server process with one thread, a channel and its receive window
/// (`WIN`, holding `fill` if given), and the free frames after all that.
pub struct Server {
    pub sp: usize,
    pub s: Tid,
    pub chan: u64,
    pub window_frame: Option<u64>,
    pub before: usize,
}

pub fn server(w: &mut World, fill: Option<&[u8]>) -> Server {
    let sp = w.spawn("server");
    let s = w.thread(sp, 5);
    let chan = w.channel(s);
    if let Some(bytes) = fill {
        w.write(sp, WIN, bytes);
    }
    let window_frame = w.frame(sp, WIN);
    Server { sp, s, chan, window_frame, before: w.free() }
}
