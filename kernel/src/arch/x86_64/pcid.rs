//! PCID on x86-64: turning it on, the CR3 writes, and flushing a space
//! that is not loaded. What the tags mean and where the kernel flushes is
//! in [`crate::mem::pcid`].

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::control::{Cr3, Cr4, Cr4Flags};
use x86_64::VirtAddr;

use crate::mem::pcid::{Pcid, NO_FLUSH, PCID_MASK};

/// Whether INVPCID flushes spaces that are not loaded (set once at boot).
static INVPCID: AtomicBool = AtomicBool::new(false);

/// Turn CR4.PCIDE on if CPUID.01H:ECX.PCID (bit 17) says the CPU has it,
/// note whether it has INVPCID (CPUID.07H:EBX bit 10), and log which.
/// Runs with the kernel's tables loaded (PCID 0, as turning PCIDE on
/// requires).
pub fn init() -> Pcid {
    let pcid = core::arch::x86_64::__cpuid(1).ecx & (1 << 17) != 0;
    let invpcid = core::arch::x86_64::__cpuid(0).eax >= 7 && core::arch::x86_64::__cpuid_count(7, 0).ebx & (1 << 10) != 0;
    let mode = if pcid {
        let (_, low) = Cr3::read_raw();
        assert_eq!(low as u64 & PCID_MASK, 0, "CR3 must hold PCID 0 when PCIDE is turned on");
        // SAFETY: the CPU has PCID, long mode is on and CR3's PCID is 0
        // (checked above), the conditions for setting PCIDE; every CR3
        // word loaded from now on carries its space's PCID.
        unsafe { Cr4::update(|c| *c |= Cr4Flags::PCID) };
        INVPCID.store(invpcid, Ordering::Relaxed);
        Pcid::On { invpcid }
    } else {
        Pcid::Off
    };
    crate::info!("pcid: {}", mode.describe());
    mode
}

/// Write CR3.
///
/// # Safety
/// `cr3`'s table maps the kernel half as the running tables do, and its
/// PCID bits are 0 unless PCIDE is on.
#[inline(always)]
pub unsafe fn write_cr3(cr3: u64) {
    // SAFETY: the caller's contract: the code and data running now stay
    // mapped.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack, preserves_flags)) };
}

/// CR3 as the CPU holds it (the table's address and the PCID field).
pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no effect.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// See [`crate::arch::Machine::flush_unloaded`]. Never inlined: it is
/// off the IPC paths' straight line, and inlined its constants crept into
/// them.
///
/// # Safety
/// As there.
#[inline(never)]
pub unsafe fn flush_unloaded(cr3: u64, active: u64, va: Option<VirtAddr>) {
    if INVPCID.load(Ordering::Relaxed) {
        // Type 0: one address in one PCID; type 1: all of a PCID's
        // entries and paging-structure caches (neither touches GLOBAL ones).
        let (kind, desc) = match va {
            Some(va) => (0u64, [cr3 & PCID_MASK, va.as_u64()]),
            None => (1u64, [cr3 & PCID_MASK, 0]),
        };
        // SAFETY: a valid descriptor (PCID below 4096, a canonical
        // address) and type; INVPCID only drops cached translations.
        unsafe { core::arch::asm!("invpcid {}, [{}]", in(reg) kind, in(reg) desc.as_ptr(), options(nostack, preserves_flags)) };
    } else {
        // A CR3 load without bit 63 drops every (non-GLOBAL) entry of the
        // PCID it loads; then back to the loaded space, keeping its entries.
        // SAFETY: both are address spaces sharing the kernel half (the
        // caller's contract); interrupts are off in the kernel, so nothing
        // runs on the other space in between.
        unsafe {
            write_cr3(cr3 & !NO_FLUSH);
            write_cr3(active);
        }
    }
}
