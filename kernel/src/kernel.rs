//! The kernel's state: one [`Kernel`] value that composes the subsystems.
//!
//! Each concern keeps its own state and its own module, and `Kernel` only
//! holds them side by side and offers the small accessors they share
//! (which process a thread is in, an address space, a page-table entry):
//!
//! | concern | state | module |
//! |---|---|---|
//! | scheduling | [`Scheduler`] (run queues), `current` | [`crate::sched`], [`crate::sched::run`] |
//! | time | [`Timers`] (clock, timer list) | [`crate::sched::timer`] |
//! | process lifecycle | the process and thread tables | [`crate::proc::lifecycle`] |
//! | bad-token penalties | [`Penalties`], each process's strikes | [`crate::cap::penalty`] |
//! | DMA accounting | [`DmaTable`] | [`crate::mem::dma`] |
//! | IPC | channels, names, counters | [`crate::ipc`] |
//! | device interrupts | [`crate::irq::IrqTable`] | [`crate::irq`] |
//!
//! Operations take the calling thread from `current` and leave results in
//! thread control blocks; a syscall handler returns its outcome (done,
//! blocked, or a [`crate::cap::SysError`], whose `BadToken` carries the
//! penalty) and the thread to run next follows from the run queues
//! ([`Kernel::reschedule`]). Nothing here switches stacks or touches
//! hardware beyond the `arch` boundary, which is why the same code is
//! exercised by host tests.

use alloc::boxed::Box;
use alloc::vec::Vec;

use x86_64::VirtAddr;

use crate::cap::penalty::Penalties;
use crate::cap::TokenGen;
use crate::ipc::channel::ChannelTable;
use crate::ipc::named::NameTable;
use crate::mem::dma::DmaTable;
use crate::mem::paging::LeafAt;
use crate::mem::pcid::Pcid;
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
    /// `Send`s and `ReplyRecv`s the general path handled (the fast path
    /// declined them, or the entry stub did not route them there).
    pub general_sends: u64,
    pub general_replies: u64,
    /// IPC calls the assembly fast path (`arch::x86_64::fastpath`) passed
    /// on to the Rust dispatchers, which counts them on its way there, off
    /// its fast line (none on the host, which has no such path).
    pub declined: u64,
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
    /// The address space loaded in the MMU (whose TLB entries may be live):
    /// its CR3 word (as a thread's `root`), or [`NO_ROOT`].
    pub active_root: u64,
    /// Whether TLB entries are tagged per process (see [`crate::mem::pcid`]).
    pub pcid: Pcid,
    pub ipc: IpcCounters,
    /// Per process: messages delivered to its threads and not answered yet
    /// (while there are none, a delivery cannot displace one from its
    /// window). Here rather than in [`Process`], so that the IPC fast path
    /// reaches it with one instruction.
    pub unanswered: [u16; PROCESS_SLOTS],
    /// The bad-token delay policy.
    pub penalties: Penalties,
    /// The client a server took the CPU from by a direct switch (a `Send`
    /// to a waiting receiver), or [`NO_THREAD`]: while the server works on
    /// that client's request, ticks are charged to the client's slice (see
    /// [`Kernel::tick`]).
    pub(crate) on_behalf: Tid,
}

/// `active_root` before any address space is known to be loaded: never a
/// table's (page-aligned) address.
pub const NO_ROOT: u64 = u64::MAX;

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
            active_root: NO_ROOT,
            pcid: Pcid::Off,
            ipc: IpcCounters::default(),
            unanswered: [0; PROCESS_SLOTS],
            penalties: Penalties::new(seed),
            on_behalf: NO_THREAD,
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

    /// The CR3 word of process `p`'s address space.
    #[inline(always)]
    pub fn space_word(&self, p: usize) -> u64 {
        crate::mem::pcid::cr3_word(self.pcid, self.space(p).root().start_address().as_u64(), p)
    }

    /// Tag TLB entries per process from now on (`pcid`, as the CPU was
    /// set up at boot, before any process exists): the kernel's own space
    /// (the idle thread's, and the loaded one) gets its word.
    pub fn set_pcid(&mut self, pcid: Pcid) {
        debug_assert!(self.procs[1..].iter().all(|p| p.state == crate::proc::ProcState::Free), "PCID set after processes exist");
        self.pcid = pcid;
        let word = self.space_word(KERNEL_PROCESS);
        self.threads[IDLE_THREAD as usize].root = word;
        self.active_root = word;
    }

    /// Drop any TLB entry for `va` of process `p`'s space after a change
    /// of its entry: `invlpg` if the space is the loaded one; with PCID,
    /// also in a space that is not loaded, whose tagged entries the next
    /// switch to it keeps (see [`crate::mem::pcid`]: every site that
    /// changes a present entry comes here).
    pub fn flush_page_of(&self, p: usize, va: u64) {
        self.flush_page_in(self.space_word(p), va);
    }

    /// [`Self::flush_page_of`] for the space of CR3 word `word` (a
    /// thread's `root`, which the IPC paths have at hand).
    #[inline(always)]
    pub fn flush_page_in(&self, word: u64, va: u64) {
        if self.active_root == word {
            crate::arch::flush_page(VirtAddr::new(va));
        } else if crate::mem::pcid::tagged(word) {
            // (PCID is on. No memory read on this path.)
            // SAFETY: both are the kernel's address spaces, which share the
            // kernel half.
            unsafe { crate::arch::flush_unloaded(word, self.active_root, Some(VirtAddr::new(va))) };
        }
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
