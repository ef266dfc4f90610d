//! Tick windows: how a long syscall lets the timer in.
//!
//! The kernel runs with interrupts off and has one global state, so an
//! interrupt handler cannot run kernel code while a syscall is half done.
//! A syscall that works through many pages (mapping, unmapping, copying,
//! tearing down an address space) calls [`tick_window`] every few
//! dozen pages instead: interrupts are enabled for one instruction, a
//! pending timer interrupt is taken and only *counted* (see
//! `trap::interrupt_dispatch`), and [`take_late_ticks`] hands the count to
//! the kernel once its state is whole again (`Kernel::catch_up_ticks`, at
//! the end of the syscall and at every tick), which then runs those ticks.
//! So interrupts wait at most one window's work and the clock loses no
//! tick, though the syscall itself is not preempted. (Not to be confused
//! with the physical "interrupt windows" of `abi::phys_flavor`, the MSI and
//! I/O APIC ranges.)

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Set while a window is open: the timer handler only counts.
static IN_WINDOW: AtomicBool = AtomicBool::new(false);
/// Ticks that arrived in windows and have not run yet (low bits), and the
/// MSI slots that fired there (from bit [`crate::irq::LATE_SHIFT`] up):
/// one word, so the check at the end of a syscall stays one load.
static LATE_TICKS: AtomicU64 = AtomicU64::new(0);

/// Let pending interrupts in, at a point where the kernel's state may be
/// half changed (so no handler may touch it).
#[inline]
pub fn tick_window() {
    IN_WINDOW.store(true, Ordering::SeqCst);
    // SAFETY: interrupts are enabled for the one instruction after `sti`
    // (its interrupt shadow ends there); the handlers that can run then do
    // not touch the kernel's state while `IN_WINDOW` is set (the timer only
    // counts, the spurious vector does nothing), and the interrupt uses
    // this thread's kernel stack, which has room for one frame.
    unsafe { core::arch::asm!("sti", "nop", "cli") };
    IN_WINDOW.store(false, Ordering::SeqCst);
}

/// In the timer handler: whether the tick must only be counted.
pub fn count_if_in_window() -> bool {
    if IN_WINDOW.load(Ordering::SeqCst) {
        LATE_TICKS.fetch_add(1, Ordering::SeqCst);
        true
    } else {
        false
    }
}

/// In the MSI handler: whether slot `s` fired inside a window, where it is
/// only noted (the kernel delivers it once its state is whole again).
pub fn defer_irq_if_in_window(s: usize) -> bool {
    if IN_WINDOW.load(Ordering::SeqCst) {
        LATE_TICKS.fetch_or(1 << (crate::irq::LATE_SHIFT as usize + s), Ordering::SeqCst);
        true
    } else {
        false
    }
}

/// The ticks counted (and the MSI slots noted) in windows since the last
/// call, encoded as in `LATE_TICKS`.
#[inline(always)]
pub fn take_late_ticks() -> u64 {
    if LATE_TICKS.load(Ordering::Relaxed) == 0 {
        0
    } else {
        LATE_TICKS.swap(0, Ordering::SeqCst)
    }
}
