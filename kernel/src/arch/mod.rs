//! The boundary between the kernel's logic and the machine.
//!
//! On the bare-metal target this is x86-64 (boot, interrupts, context
//! switches, the MMU). On the host it is a small fake that records what the
//! logic asked of the hardware, so `cargo test` can run the kernel's IPC,
//! capability and scheduling code on Linux (the approach Hubris takes with
//! its host arch).
//!
//! The logic may use only what [`Machine`] (and [`UserThread`] for a
//! thread's kernel-side context) declares. Both the x86-64 layer and the
//! host fake implement these traits, so the compiler holds the fake to the
//! real signatures: it cannot drift. The free functions below are the
//! calls the logic makes; each forwards to [`Current`] and inlines away.

use ::x86_64::{PhysAddr, VirtAddr};

use crate::kernel::OutOfMemory;
use crate::mem::user::BadAddress;
use crate::mem::{FrameAllocator, PageTables, PhysMem};
use crate::proc::Tid;

#[cfg(target_os = "none")]
pub mod x86_64;
/// The machine this build runs on.
#[cfg(target_os = "none")]
pub type Current = self::x86_64::X86_64;

#[cfg(not(target_os = "none"))]
pub mod host;
/// The machine this build runs on.
#[cfg(not(target_os = "none"))]
pub type Current = host::Host;

/// What the kernel's logic asks of the machine.
pub trait Machine {
    /// A thread's kernel-side state (its kernel stack, saved registers).
    type ThreadContext: UserThread + Default + Copy + core::fmt::Debug;

    /// Write bytes to the console.
    fn console_write(bytes: &[u8]);
    /// Drop the TLB entry for `va` in the active address space.
    fn flush_page(va: VirtAddr);
    /// Load the address space of CR3 word `cr3` (its top-level table's
    /// address, with PCID on also its PCID and bit 63; see
    /// [`crate::mem::pcid::cr3_word`]).
    ///
    /// # Safety
    /// The table must map the kernel half as the running tables do.
    unsafe fn load_address_space(cr3: u64);
    /// With PCID on: drop the TLB entries of the space of CR3 word `cr3`,
    /// which is not the loaded one (`active`): the page `va`, or (`None`)
    /// all of them with its paging-structure caches.
    ///
    /// # Safety
    /// Both tables must map the kernel half as the running tables do.
    unsafe fn flush_unloaded(cr3: u64, active: u64, va: Option<VirtAddr>);
    /// The CR3 value the CPU holds now.
    fn read_cr3() -> u64;
    /// Stop the machine with exit status `code` (where the machine has one).
    fn power_off(code: u64);
    /// Read one byte from I/O port `port` (a capability allows it).
    fn port_in(port: u16) -> u8;
    /// Write one byte to I/O port `port` (a capability allows it).
    fn port_out(port: u16, value: u8);
    /// Write I/O APIC pin `pin`'s redirection entry.
    fn ioapic_set(pin: u8, entry: u64);
    /// Copy `len` user bytes at `va` of the active address space (`active`)
    /// to physical memory at `dst`.
    ///
    /// # Safety
    /// As for [`crate::mem::user::read_phys`].
    unsafe fn read_user(phys: &PhysMem, active: &PageTables, va: u64, dst: PhysAddr, len: usize) -> Result<(), BadAddress>;
    /// A long syscall lets pending interrupts in at a safe point.
    fn tick_window();
    /// Timer ticks (and deferred device interrupts, above
    /// [`crate::irq::LATE_SHIFT`]) that arrived in windows since the last call.
    fn take_late_ticks() -> u64;
}

/// A thread's kernel-side context, as the logic prepares it.
pub trait UserThread {
    /// Prepare slot `tid` to enter user mode at `entry` with stack `stack`
    /// and the two arguments the first time it runs.
    #[allow(clippy::too_many_arguments)]
    fn prepare_user(
        &mut self,
        tid: Tid,
        phys: &PhysMem,
        frames: &mut FrameAllocator,
        kernel: &mut PageTables,
        entry: u64,
        stack: u64,
        args: [u64; 2],
    ) -> Result<(), OutOfMemory>;
}

/// A thread's kernel-side context on this machine.
pub type ThreadContext = <Current as Machine>::ThreadContext;

/// See [`Machine::console_write`].
#[inline(always)]
pub fn console_write(bytes: &[u8]) {
    Current::console_write(bytes)
}

/// See [`Machine::flush_page`].
#[inline(always)]
pub fn flush_page(va: VirtAddr) {
    Current::flush_page(va)
}

/// See [`Machine::load_address_space`].
///
/// # Safety
/// As there.
#[inline(always)]
pub unsafe fn load_address_space(cr3: u64) {
    // SAFETY: the caller keeps the contract.
    unsafe { Current::load_address_space(cr3) }
}

/// See [`Machine::flush_unloaded`].
///
/// # Safety
/// As there.
#[inline(always)]
pub unsafe fn flush_unloaded(cr3: u64, active: u64, va: Option<VirtAddr>) {
    // SAFETY: the caller keeps the contract.
    unsafe { Current::flush_unloaded(cr3, active, va) }
}

/// See [`Machine::read_cr3`].
#[inline(always)]
pub fn read_cr3() -> u64 {
    Current::read_cr3()
}

/// See [`Machine::power_off`].
#[inline(always)]
pub fn power_off(code: u64) {
    Current::power_off(code)
}

/// See [`Machine::port_in`].
#[inline(always)]
pub fn port_in(port: u16) -> u8 {
    Current::port_in(port)
}

/// See [`Machine::port_out`].
#[inline(always)]
pub fn port_out(port: u16, value: u8) {
    Current::port_out(port, value)
}

/// See [`Machine::ioapic_set`].
#[inline(always)]
pub fn ioapic_set(pin: u8, entry: u64) {
    Current::ioapic_set(pin, entry)
}

/// See [`Machine::read_user`].
///
/// # Safety
/// As there.
#[inline(always)]
pub unsafe fn read_user(phys: &PhysMem, active: &PageTables, va: u64, dst: PhysAddr, len: usize) -> Result<(), BadAddress> {
    // SAFETY: the caller keeps the contract.
    unsafe { Current::read_user(phys, active, va, dst, len) }
}

/// See [`Machine::tick_window`].
#[inline(always)]
pub fn tick_window() {
    Current::tick_window()
}

/// See [`Machine::take_late_ticks`].
#[inline(always)]
pub fn take_late_ticks() -> u64 {
    Current::take_late_ticks()
}
