//! The fake machine for host tests: records TLB flushes and power-off
//! requests, prints the console to stderr, and keeps a thread's initial
//! registers instead of building a kernel stack.

extern crate std;
use std::cell::{Cell, RefCell};
use std::vec::Vec;

use x86_64::{PhysAddr, VirtAddr};

use crate::arch::{Machine, UserThread};
use crate::kernel::OutOfMemory;
use crate::mem::user::BadAddress;
use crate::mem::{FrameAllocator, PageTables, PhysMem};
use crate::proc::Tid;

std::thread_local! {
    static FLUSHES: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    static POWER_OFF: RefCell<Option<u64>> = const { RefCell::new(None) };
    static WINDOWS: Cell<u64> = const { Cell::new(0) };
    static TICK_PER_WINDOW: Cell<bool> = const { Cell::new(false) };
    static LATE_TICKS: Cell<u64> = const { Cell::new(0) };
    static PORTS: RefCell<Vec<(u16, u8)>> = const { RefCell::new(Vec::new()) };
    static IOAPIC: RefCell<[u64; 256]> = const { RefCell::new([0; 256]) };
    static CR3: Cell<u64> = const { Cell::new(0) };
    static UNLOADED_FLUSHES: RefCell<Vec<UnloadedFlush>> = const { RefCell::new(Vec::new()) };
}

/// A [`Machine::flush_unloaded`] request: the space's CR3 word, the loaded
/// one's, and the page (`None`: the whole PCID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnloadedFlush {
    pub cr3: u64,
    pub active: u64,
    pub va: Option<u64>,
}

/// The fake machine (see [`Machine`]).
pub struct Host;

impl Machine for Host {
    type ThreadContext = ThreadContext;

    fn console_write(bytes: &[u8]) {
        std::eprint!("{}", std::string::String::from_utf8_lossy(bytes));
    }

    /// Recorded (see [`take_flushes`]).
    fn flush_page(va: VirtAddr) {
        FLUSHES.with(|f| f.borrow_mut().push(va.as_u64()));
    }

    /// Recorded (see [`Machine::read_cr3`]); nothing else to load on the
    /// host (the contract is the bare-metal one).
    unsafe fn load_address_space(cr3: u64) {
        // (Bit 63 is not kept in CR3, as on the machine.)
        CR3.with(|c| c.set(cr3 & !crate::mem::pcid::NO_FLUSH));
    }

    /// Recorded (see [`take_unloaded_flushes`]).
    unsafe fn flush_unloaded(cr3: u64, active: u64, va: Option<VirtAddr>) {
        UNLOADED_FLUSHES.with(|f| f.borrow_mut().push(UnloadedFlush { cr3, active, va: va.map(VirtAddr::as_u64) }));
    }

    /// The last word [`Machine::load_address_space`] loaded on this test
    /// thread.
    fn read_cr3() -> u64 {
        CR3.with(|c| c.get())
    }

    /// Recorded (see [`powered_off`]).
    fn power_off(code: u64) {
        POWER_OFF.with(|p| *p.borrow_mut() = Some(code));
    }

    /// A fake I/O port: reads return the low byte of the port number plus
    /// one (so a test sees which port was read).
    fn port_in(port: u16) -> u8 {
        (port as u8).wrapping_add(1)
    }

    /// Recorded (see [`take_port_writes`]).
    fn port_out(port: u16, value: u8) {
        PORTS.with(|p| p.borrow_mut().push((port, value)));
    }

    /// Recorded (see [`ioapic_entry`]).
    fn ioapic_set(pin: u8, entry: u64) {
        IOAPIC.with(|a| a.borrow_mut()[pin as usize] = entry);
    }

    /// The host has no MMU for user addresses: walk `active`'s tables.
    unsafe fn read_user(phys: &PhysMem, active: &PageTables, va: u64, dst: PhysAddr, len: usize) -> Result<(), BadAddress> {
        // SAFETY: the same contract.
        unsafe { crate::mem::user::read_phys(phys, active, va, dst, len) }
    }

    /// Counted, and (if a test asked for it with [`tick_in_windows`]) a
    /// timer tick arrives in each.
    fn tick_window() {
        WINDOWS.with(|w| w.set(w.get() + 1));
        if TICK_PER_WINDOW.with(|t| t.get()) {
            LATE_TICKS.with(|l| l.set(l.get() + 1));
        }
    }

    fn take_late_ticks() -> u64 {
        LATE_TICKS.with(|l| l.take())
    }
}

/// Make every tick window see one timer tick (or none).
pub fn tick_in_windows(on: bool) {
    TICK_PER_WINDOW.with(|t| t.set(on));
}

/// Tick windows opened on this test thread since the last call.
pub fn take_windows() -> u64 {
    WINDOWS.with(|w| w.take())
}

/// Port writes on this test thread since the last call.
pub fn take_port_writes() -> Vec<(u16, u8)> {
    PORTS.with(|p| core::mem::take(&mut *p.borrow_mut()))
}

/// TLB flushes requested on this test thread since the last call.
pub fn take_flushes() -> Vec<u64> {
    FLUSHES.with(|f| core::mem::take(&mut *f.borrow_mut()))
}

/// Flushes of spaces that were not loaded, requested on this test thread
/// since the last call.
pub fn take_unloaded_flushes() -> Vec<UnloadedFlush> {
    UNLOADED_FLUSHES.with(|f| core::mem::take(&mut *f.borrow_mut()))
}

/// The last power-off code requested on this test thread.
pub fn powered_off() -> Option<u64> {
    POWER_OFF.with(|p| *p.borrow())
}

/// What a new user thread would start with.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadContext {
    pub entry: u64,
    pub stack: u64,
    pub args: [u64; 2],
}

impl UserThread for ThreadContext {
    fn prepare_user(
        &mut self,
        _tid: Tid,
        _phys: &PhysMem,
        _frames: &mut FrameAllocator,
        _kernel: &mut PageTables,
        entry: u64,
        stack: u64,
        args: [u64; 2],
    ) -> Result<(), OutOfMemory> {
        *self = ThreadContext { entry, stack, args };
        Ok(())
    }
}

/// Pin `pin`'s redirection entry as last written on this test thread.
pub fn ioapic_entry(pin: u8) -> u64 {
    IOAPIC.with(|a| a.borrow()[pin as usize])
}
