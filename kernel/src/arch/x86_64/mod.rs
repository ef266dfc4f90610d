//! x86-64: memory bring-up, descriptor tables, entry and exit paths,
//! context switches, the local APIC timer.
//!
//! The kernel is single-core for now: one global [`Kernel`], entered only
//! with interrupts disabled (syscalls mask IF; the idle loop is the only code
//! that runs with IF set), so no locks are needed. Entry paths reach it only
//! through [`with_kernel`], one scope at a time (a nested use panics; see
//! [`crate::global`]), and switch threads only after their scope ends.

pub(crate) mod cpu;
mod entry;
mod fastpath;
pub(crate) mod ioapic;
pub(crate) mod lapic;
pub(crate) mod memory;
pub(crate) mod pcid;
pub(crate) mod random;
pub mod serial;
pub(crate) mod trap;
mod window;

use core::cell::UnsafeCell;

use x86_64::{PhysAddr, VirtAddr};

use crate::arch::Machine;
use crate::global::KernelCell;
use crate::kernel::Kernel;
use crate::mem::user::BadAddress;
use crate::mem::{PageTables, PhysMem};
use crate::proc::Tid;

pub use entry::ThreadContext;

/// Where all physical memory is mapped (the direct map).
pub const DIRECT_MAP: u64 = 0xffff_8000_0000_0000;
/// Where the kernel image runs.
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
/// Kernel stacks, one slot per thread: a guard gap, then the stack.
pub const KSTACKS: u64 = 0xffff_ff80_0000_0000;
/// The local APIC's registers.
pub const LAPIC_VA: u64 = 0xffff_ff80_4000_0000;

/// The x86-64 machine (see [`Machine`]).
pub struct X86_64;

impl Machine for X86_64 {
    type ThreadContext = ThreadContext;

    fn console_write(bytes: &[u8]) {
        serial::write(bytes);
    }

    #[inline(always)]
    fn flush_page(va: VirtAddr) {
        x86_64::instructions::tlb::flush(va);
    }

    #[inline(always)]
    unsafe fn load_address_space(cr3: u64) {
        // SAFETY: the code and data running now stay mapped (the contract:
        // every address space the kernel makes maps the kernel half); a
        // word has PCID bits only with PCIDE on (`mem::pcid::cr3_word`).
        unsafe { pcid::write_cr3(cr3) };
    }

    unsafe fn flush_unloaded(cr3: u64, active: u64, va: Option<VirtAddr>) {
        // SAFETY: the caller keeps the contract, which is the same.
        unsafe { pcid::flush_unloaded(cr3, active, va) }
    }

    fn read_cr3() -> u64 {
        pcid::read_cr3()
    }

    /// QEMU's `isa-debug-exit` device exits with `code * 2 + 1`; on real
    /// hardware the CPU halts.
    fn power_off(code: u64) {
        crate::info!("power off (code {code})");
        // SAFETY: port 0xf4 is QEMU's debug-exit device; on a PC without it the
        // write goes nowhere.
        unsafe { x86_64::instructions::port::Port::<u32>::new(0xf4).write(code as u32) };
        halt_forever();
    }

    fn port_in(port: u16) -> u8 {
        // SAFETY: the only ports reached here are inside an I/O-port capability
        // the kernel minted (COM1's registers); reading them has no effect on
        // memory. RBR reads consume a received byte, which is the point.
        unsafe { x86_64::instructions::port::Port::<u8>::new(port).read() }
    }

    fn port_out(port: u16, value: u8) {
        // SAFETY: as for `port_in`: a UART register write cannot touch memory.
        unsafe { x86_64::instructions::port::Port::<u8>::new(port).write(value) };
    }

    fn ioapic_set(pin: u8, entry: u64) {
        ioapic::ioapic_set(pin, entry)
    }

    #[inline(always)]
    unsafe fn read_user(phys: &PhysMem, active: &PageTables, va: u64, dst: PhysAddr, len: usize) -> Result<(), BadAddress> {
        // SAFETY: the caller keeps the contract, which is the same.
        unsafe { entry::read_user(phys, active, va, dst, len) }
    }

    #[inline(always)]
    fn tick_window() {
        window::tick_window()
    }

    #[inline(always)]
    fn take_late_ticks() -> u64 {
        window::take_late_ticks()
    }
}

/// Halt with interrupts off.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// The one kernel instance.
static KERNEL: KernelCell<Kernel> = KernelCell::new();

/// What the CPU runs: the thread whose stack it is on, and where that
/// thread's syscall results are (its `ret` in the thread table), which the
/// syscall exit reads without entering the kernel again.
/// (`repr(C)`, `results` first: the syscall entry of `Call` and
/// `ReplyWait` reads it as `RUNNING`, to store message words.)
#[derive(Clone, Copy)]
#[repr(C)]
struct Running {
    results: *const [u64; 5],
    tid: Tid,
}

#[no_mangle]
static RUNNING: Global2 =
    Global2(UnsafeCell::new(Running { results: core::ptr::null(), tid: crate::kernel::IDLE_THREAD }));
#[repr(transparent)]
struct Global2(UnsafeCell<Running>);
// SAFETY: single core, and the kernel runs with interrupts disabled except
// in the idle loop, which does not touch it; the pointer is only carried.
unsafe impl Sync for Global2 {}

/// Run `f` with the kernel (see [`KernelCell::with`]: a nested call panics).
/// Never switch threads or leave the kernel inside `f`.
#[inline(always)]
pub(crate) fn with_kernel<R>(f: impl FnOnce(&mut Kernel) -> R) -> R {
    KERNEL.with(f)
}

pub(crate) fn install(k: Kernel) {
    KERNEL.install(k);
}

fn running() -> Tid {
    // SAFETY: see `Global2`.
    unsafe { (*RUNNING.0.get()).tid }
}

/// Where the running thread's syscall results are.
fn running_results() -> *const [u64; 5] {
    // SAFETY: see `Global2`.
    unsafe { (*RUNNING.0.get()).results }
}

fn set_running(tid: Tid, results: *const [u64; 5]) {
    // SAFETY: see `Global2`.
    unsafe { *RUNNING.0.get() = Running { results, tid } };
}
