//! The kernel's state and the operations its subsystems share.
//!
//! Everything the kernel knows lives in one [`Kernel`] value: the thread,
//! process and channel tables, the run queues, the timer list, physical
//! memory. Operations are methods that take the calling thread from
//! `current` and leave their results in thread control blocks; none of them
//! switches stacks or touches hardware beyond the `arch` boundary. The
//! architecture glue runs a syscall or interrupt through these methods and
//! then switches to whatever `current` has become, which is why the same
//! code is exercised by host tests.

use alloc::boxed::Box;
use alloc::vec::Vec;

use abi::Error;
use x86_64::VirtAddr;

use crate::cap::penalty::Penalties;
use crate::cap::TokenGen;
use crate::ipc::channel::ChannelTable;
use crate::ipc::named::NameTable;
use crate::mem::dma::DmaTable;
use crate::mem::paging::LeafAt;
use crate::mem::{FrameAllocator, PageTables, PhysMem, PAGE_SIZE};
use crate::proc::{ProcState, Process, State, Thread, Tid, NO_THREAD, PROCESS_SLOTS, THREAD_SLOTS};
use crate::sched::timer::Timers;
use crate::sched::{Scheduler, SLICE_TICKS};

/// Physical RAM ranges (device capabilities may never map these).
pub const MAX_RAM_REGIONS: usize = 32;

/// Process index of the kernel itself (owner of the idle thread).
pub const KERNEL_PROCESS: usize = 0;
/// Thread index of the idle thread.
pub const IDLE_THREAD: Tid = 0;

/// Pages a long syscall handles between two tick windows
/// ([`crate::arch::tick_window`]): well under a millisecond of work,
/// so no tick waits long and none is lost.
pub const WINDOW_PAGES: u64 = 64;

/// System-wide IPC counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct IpcCounters {
    /// Messages sent and not yet answered (queued or delivered).
    pub in_flight: u64,
    /// Messages delivered since boot.
    pub delivered: u64,
    /// Log every IPC operation.
    pub trace: bool,
}

/// Everything the kernel knows.
pub struct Kernel {
    pub phys: PhysMem,
    pub frames: FrameAllocator,
    pub kernel_pt: PageTables,
    pub threads: Box<[Thread; THREAD_SLOTS]>,
    pub procs: Box<[Process; PROCESS_SLOTS]>,
    pub channels: ChannelTable,
    pub names: NameTable,
    pub sched: Scheduler,
    /// The clock and the timer list.
    pub timers: Timers,
    pub tokens: TokenGen,
    pub dma: DmaTable,
    /// Interrupts delivered to user space.
    pub irqs: crate::irq::IrqTable,
    pub ram: [(u64, u64); MAX_RAM_REGIONS],
    /// Device registers the kernel itself drives (the local APIC, the I/O
    /// APIC): device capabilities never map these.
    pub kernel_mmio: [(u64, u64); 2],
    /// The thread that runs when the kernel returns.
    pub current: Tid,
    /// The address space loaded in the MMU (whose TLB entries may be live).
    pub active_root: Option<u64>,
    pub ipc: IpcCounters,
    /// Per process: messages delivered to its threads and not answered yet
    /// (while there are none, a delivery cannot displace one from its
    /// window). Here rather than in [`Process`], so that the IPC fast path
    /// reaches it with one instruction.
    pub unanswered: [u16; PROCESS_SLOTS],
    /// The bad-token delay policy.
    pub penalties: Penalties,
}

/// Why the kernel could not be set up.
#[derive(Clone, Copy, Debug)]
pub struct OutOfMemory;

impl Kernel {
    /// Build the tables. `ram` lists usable RAM; `seed` is entropy for tokens.
    pub fn new(
        phys: PhysMem,
        frames: FrameAllocator,
        kernel_pt: PageTables,
        ram: &[(u64, u64)],
        seed: &[u64],
    ) -> Result<Kernel, OutOfMemory> {
        use abi::limits;
        let mut threads: Box<[Thread; THREAD_SLOTS]> = boxed_array(Thread::default)?;
        for t in threads.iter_mut() {
            t.next = NO_THREAD;
            t.prev = NO_THREAD;
            t.timer_next = NO_THREAD;
            t.deadline = u64::MAX;
        }
        let procs: Box<[Process; PROCESS_SLOTS]> = boxed_array(Process::default)?;
        let mut ram_regions = [(0, 0); MAX_RAM_REGIONS];
        for (slot, r) in ram_regions.iter_mut().zip(ram) {
            *slot = *r;
        }
        let mut k = Kernel {
            phys,
            frames,
            kernel_pt,
            threads,
            procs,
            channels: ChannelTable::new(limits::CHANNELS).ok_or(OutOfMemory)?,
            names: NameTable::new().ok_or(OutOfMemory)?,
            sched: Scheduler::default(),
            timers: Timers::default(),
            tokens: TokenGen::new(seed, 0),
            dma: DmaTable::new()?,
            irqs: Default::default(),
            ram: ram_regions,
            kernel_mmio: [(0, 0); 2],
            current: IDLE_THREAD,
            active_root: None,
            ipc: IpcCounters::default(),
            unanswered: [0; PROCESS_SLOTS],
            penalties: Penalties::new(seed),
        };
        // The kernel "process" owns the idle thread and uses the kernel tables.
        let kp = &mut k.procs[KERNEL_PROCESS];
        kp.state = ProcState::Alive;
        kp.gen = 1;
        kp.set_name(b"kernel");
        kp.space = Some(kernel_pt);
        kp.threads = 1;
        let idle = &mut k.threads[IDLE_THREAD as usize];
        idle.state = State::Running;
        idle.process = KERNEL_PROCESS as u8;
        idle.root = kernel_pt.root().start_address().as_u64();
        idle.slice = SLICE_TICKS;
        Ok(k)
    }

    // ----- small accessors -------------------------------------------------

    /// Process index of thread `t`.
    #[inline(always)]
    pub fn proc_of(&self, t: Tid) -> usize {
        self.threads[t as usize].process as usize
    }

    /// The page tables of process `p`.
    #[inline(always)]
    pub fn space(&self, p: usize) -> PageTables {
        debug_assert!(p == KERNEL_PROCESS || self.procs[p].space.is_some(), "process {p} has no address space");
        self.procs[p].space.unwrap_or(self.kernel_pt)
    }

    /// Whether `[start, end)` touches RAM, device registers the kernel
    /// drives, or an address range that delivers interrupts
    /// ([`abi::phys_flavor::INTERRUPT_WINDOWS`]): what a device capability
    /// may never map.
    pub fn off_limits_to_devices(&self, start: u64, end: u64) -> bool {
        let windows = &abi::phys_flavor::INTERRUPT_WINDOWS;
        self.ram.iter().chain(&self.kernel_mmio).chain(windows).any(|&(s, e)| s < e && start < e && s < end)
    }

    /// Physical address of the leaf entry for page `va` of thread `t`'s
    /// address space (`None` if no table holds it yet), remembered in the
    /// thread's window cache (`window`) or buffer cache (see
    /// [`crate::proc::LeafCache`]; page 0 is never user memory, so an empty
    /// cache never matches).
    #[inline(always)]
    pub fn leaf_of(&mut self, t: Tid, va: u64, window: bool) -> Option<LeafAt> {
        let page = va & !(PAGE_SIZE - 1);
        let th = &self.threads[t as usize];
        let c = if window { &th.window } else { &th.buffer };
        // (Page 0 marks an empty cache; it is never user memory either.)
        if c.page == page && page != 0 {
            // SAFETY: a filled cache holds a walk's result for this
            // thread's tables, which live as long as it (see `LeafCache`).
            return Some(unsafe { LeafAt::remembered(c.at) });
        }
        self.leaf_of_slow(t, page, window)
    }

    /// The current leaf entry for page `va` of thread `t`'s space (0 if no
    /// table holds one), through the thread's cache like [`Self::leaf_of`].
    #[inline(always)]
    pub fn entry_of(&mut self, t: Tid, va: u64, window: bool) -> u64 {
        match self.leaf_of(t, va, window) {
            Some(at) => self.entry(at),
            None => 0,
        }
    }

    #[inline(never)]
    fn leaf_of_slow(&mut self, t: Tid, page: u64, window: bool) -> Option<LeafAt> {
        let at = self.space(self.proc_of(t)).leaf_entry(&self.phys, page)?;
        let th = &mut self.threads[t as usize];
        let c = if window { &mut th.window } else { &mut th.buffer };
        *c = crate::proc::LeafCache { page, at: at.addr().as_u64() };
        Some(at)
    }

    /// The page-table entry at `at` (from [`Self::leaf_of`]).
    #[inline(always)]
    pub fn entry(&self, at: LeafAt) -> u64 {
        at.read(&self.phys)
    }

    /// Set the page-table entry at `at`.
    #[inline(always)]
    pub fn set_entry(&mut self, at: LeafAt, value: u64) {
        at.write(&self.phys, value)
    }

    /// Invalidate the TLB entry for `va` if `space` is the one loaded.
    pub fn flush_if_active(&self, space: PageTables, va: u64) {
        if self.active_root == Some(space.root().start_address().as_u64()) {
            crate::arch::flush_page(VirtAddr::new_truncate(va));
        }
    }

    // ----- time --------------------------------------------------------------

    /// Ticks to wait for `ns` nanoseconds (see [`Timers::ticks_for`]).
    pub fn ticks_for(ns: u64) -> u64 {
        Timers::ticks_for(ns)
    }

    /// Deadline for a timeout argument, `None` for [`abi::FOREVER`].
    pub fn deadline(&self, timeout_ns: u64) -> Option<u64> {
        self.timers.deadline(timeout_ns)
    }

    /// Wake `t` at tick `deadline`.
    pub fn timer_arm(&mut self, t: Tid, deadline: u64) {
        self.timers.arm(&mut self.threads, t, deadline)
    }

    /// Take `t` off the timer list if it is on it.
    pub fn timer_cancel(&mut self, t: Tid) {
        self.timers.cancel(&mut self.threads, t)
    }

    /// One timer tick: wake expired timers, charge the time slice.
    pub fn tick(&mut self) {
        self.catch_up_ticks();
        self.timers.now += 1;
        while let Some(t) = self.timers.pop_expired(&mut self.threads) {
            self.expire(t);
        }
        let cur = self.current;
        if cur != IDLE_THREAD {
            let th = &mut self.threads[cur as usize];
            th.slice = th.slice.saturating_sub(1);
            if th.slice == 0 {
                th.slice = SLICE_TICKS;
                if self.sched.highest().is_some_and(|p| p >= th.prio) {
                    self.schedule();
                }
            }
        }
        self.reschedule();
    }

    /// Run the timer ticks that arrived while a long syscall let interrupts
    /// in at a safe point ([`crate::arch::tick_window`]): there they
    /// are only counted, and here, with the kernel's state whole again,
    /// they take effect, so the clock loses none. Called at the end of
    /// every general-path syscall (the only ones that open windows) and at
    /// each tick (for windows opened while ending a faulting process).
    #[inline(always)]
    pub(crate) fn catch_up_ticks(&mut self) {
        let late = crate::arch::take_late_ticks();
        if late != 0 {
            self.run_late_ticks(late);
        }
    }

    #[cold]
    #[inline(never)]
    fn run_late_ticks(&mut self, late: u64) {
        let irqs = late >> crate::irq::LATE_SHIFT;
        for s in 0..crate::irq::SLOTS {
            if irqs & (1 << s) == 0 {
            } else if self.irqs.slots[s].live {
                self.irq_fire(s);
            } else {
                // Acknowledged in the window; nobody holds the vector.
                crate::warn!("unexpected interrupt {}", abi::irq::FIRST_VECTOR as usize + s);
            }
        }
        for _ in 0..late & ((1 << crate::irq::LATE_SHIFT) - 1) {
            self.tick();
        }
    }

    /// A timed wait of `t` ran out.
    fn expire(&mut self, t: Tid) {
        let th = &self.threads[t as usize];
        let obj = th.wait_obj;
        match th.state {
            // Sleep, or the delay after a bad token: the result is already set.
            State::Sleeping => self.make_runnable(t),
            State::SendBlocked => {
                let c = self.channels.slot(obj);
                c.senders.remove(&mut self.threads, t);
                c.errors += 1;
                self.ipc.in_flight -= 1;
                self.complete(t, Err(Error::Timeout));
                self.sender_left(obj);
            }
            State::RecvBlocked => {
                let c = self.channels.slot(obj);
                c.receivers.remove(&mut self.threads, t);
                c.errors += 1;
                self.complete(t, Err(Error::Timeout));
            }
            State::Waiting => {
                self.procs[obj as usize].waiters.remove(&mut self.threads, t);
                self.complete(t, Err(Error::Timeout));
            }
            _ => {}
        }
    }

    /// Put `current` to sleep until tick `deadline`; its result is `Ok`.
    pub fn sleep_current(&mut self, deadline: u64) {
        let t = self.current;
        self.threads[t as usize].ret = [0; 5];
        self.threads[t as usize].state = State::Sleeping;
        self.timer_arm(t, deadline);
    }

    /// Delay the caller after a bad token ([`crate::cap::penalty`]): its
    /// result is `Incapable` when it wakes.
    pub fn penalize_current(&mut self) {
        let t = self.current;
        let p = self.proc_of(t);
        let now = self.timers.now;
        let delay = self.penalties.strike(&mut self.procs[p].strikes, now);
        self.threads[t as usize].ret = [Error::Incapable as u64, 0, 0, 0, 0];
        self.threads[t as usize].state = State::Sleeping;
        self.timer_arm(t, now + delay);
    }

    /// Free DMA regions nobody owns or maps any more.
    pub fn free_unused_dma(&mut self) {
        self.dma.free_unused(&mut self.frames);
    }
}

/// A boxed array built on the heap (a `Box::new([..])` would build it on
/// the small boot stack first).
fn boxed_array<T, const N: usize>(f: impl FnMut() -> T) -> Result<Box<[T; N]>, OutOfMemory> {
    let mut v = Vec::new();
    v.try_reserve_exact(N).map_err(|_| OutOfMemory)?;
    v.resize_with(N, f);
    v.into_boxed_slice().try_into().map_err(|_| OutOfMemory)
}
