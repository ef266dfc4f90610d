//! Process-context identifiers (PCIDs): TLB entries tagged with their
//! address space, so a switch between two processes need not throw the
//! other's entries away (on real hardware; QEMU's TCG has no PCID and
//! flushes its whole TLB on every CR3 write anyway).
//!
//! **The tags.** Process slot `p` uses PCID `p` (slots fit 12 bits, checked
//! below); the kernel's own space (slot 0, the idle thread) uses PCID 0,
//! which CR3 must hold when CR4.PCIDE is turned on. A thread's `root`
//! (and the kernel's `active_root`) is the whole CR3 word its switch loads:
//! [`cr3_word`] — the table's address, the PCID, and bit 63 ([`NO_FLUSH`]:
//! keep that PCID's entries). Without PCID the word is the bare address,
//! so the CR3 values and the switch are exactly what they were before.
//!
//! **Keeping tagged entries true.** A switch never flushes, so an entry
//! cached for a space must never outlive a change of that space's tables.
//! Changes to the loaded space are flushed with `invlpg` as before (it
//! drops the current PCID's entry, and a GLOBAL entry under every PCID: the
//! kernel half is all GLOBAL and shared, so kernel-half changes stay
//! correct in every space). Changes to a space that is *not* loaded used to
//! need nothing, since the next CR3 load flushed everything; with PCID they
//! are flushed at once, in that space's PCID ([`crate::arch::flush_unloaded`]:
//! INVPCID single-address where the CPU has it, else a flushing CR3 load of
//! that space and back), by [`crate::kernel::Kernel::flush_page_of`] (or
//! `flush_page_in`, given the space's word: a thread's `root`). Done
//! at the change rather than by a "stale" mark checked at the next switch,
//! so the switch (the IPC fast path's) has no test to make and no window
//! exists in which a stale entry could be used.
//!
//! **How the sites were found.** Every write of a page-table entry goes
//! through one of: `LeafAt::write` (only via `Kernel::set_entry`),
//! `PageTables::{map, map_huge, leaf_or_create, populate_kernel_half}`
//! (fill not-present entries only: a not-present entry is never cached, so
//! nothing to flush), `PageTables::unmap` and `PageTables::destroy_user`.
//! Each caller (grep for those names) is one of:
//! - `syscall::memory` `unmap_pages` (Unmap, and a failed MapAnon, also on
//!   another process: `target`) and `map_phys`'s undo: `flush_page_of`
//!   (these were `flush_if_active`, which flushed the loaded space only);
//! - `ipc` `lend` (the receiver's window, and the sender's hidden entry,
//!   whose space is not loaded when a queued message is delivered later),
//!   `unlend` (the window put back; the sender's entry only becomes present
//!   again: nothing cached) and `orphan_loan` (the window; the sender's
//!   entry was not present): `flush_page_in`;
//! - `proc::lifecycle` `end_process` (`destroy_user` frees the tables):
//!   the slot's PCID may hold entries and paging-structure caches of the
//!   dead space, so `new_process` flushes the whole PCID (INVPCID
//!   single-context, or a flushing CR3 load of the new space and back)
//!   before the slot's new space can be loaded; `new_process`'s own undo
//!   destroys a space that was never loaded;
//! - the kernel half (`arch::x86_64` kernel stacks, LAPIC, I/O APIC,
//!   `boot::selftest`): GLOBAL entries, only added after boot (a kernel
//!   stack's undo unmaps pages no one touched yet).
//!
//! The fast path (`ipc::fast`) writes no entry itself: it lends and
//! returns pages through `carry` and `unlend` above.

/// Bit 63 of a CR3 word: keep the new PCID's TLB entries.
pub const NO_FLUSH: u64 = 1 << 63;
/// The PCID field of CR3 (bits 0-11).
pub const PCID_MASK: u64 = 0xfff;

// Every process slot has a PCID of its own.
const _: () = assert!(crate::proc::PROCESS_SLOTS as u64 <= PCID_MASK + 1);

/// Whether the CPU tags TLB entries (CR4.PCIDE), and how a space that is
/// not loaded is flushed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pcid {
    /// No PCID: every CR3 load flushes (all but GLOBAL entries).
    #[default]
    Off,
    /// CR4.PCIDE is on; `invpcid`: the CPU has INVPCID.
    On { invpcid: bool },
}

impl Pcid {
    pub fn is_on(self) -> bool {
        self != Pcid::Off
    }

    /// How the boot log says it.
    pub fn describe(self) -> &'static str {
        match self {
            Pcid::Off => "off",
            Pcid::On { invpcid: true } => "on (invpcid yes)",
            Pcid::On { invpcid: false } => "on (invpcid no)",
        }
    }

    /// The `DebugIpc` `ADDRESS_SPACE` mode bits.
    pub fn bits(self) -> u64 {
        match self {
            Pcid::Off => 0,
            Pcid::On { invpcid } => abi::debug::PCID_ON | if invpcid { abi::debug::PCID_INVPCID } else { 0 },
        }
    }
}

/// Whether `word` is a tagged CR3 word (bit 63 set: PCID is on). A sign
/// test, so the IPC paths that ask need no 64-bit constant.
#[inline(always)]
pub fn tagged(word: u64) -> bool {
    (word as i64) < 0
}

/// The CR3 word that loads process slot `p`'s space (top-level table at
/// physical `root`) without flushing: the bare address without PCID.
#[inline(always)]
pub fn cr3_word(pcid: Pcid, root: u64, p: usize) -> u64 {
    if pcid.is_on() {
        root | p as u64 | NO_FLUSH
    } else {
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_the_bare_root_without_pcid_and_tagged_with_it() {
        assert_eq!(cr3_word(Pcid::Off, 0x1234_5000, 7), 0x1234_5000);
        let on = Pcid::On { invpcid: false };
        assert_eq!(cr3_word(on, 0x1234_5000, 7), 0x1234_5007 | NO_FLUSH);
        assert_eq!(cr3_word(on, 0x1234_5000, 0) & PCID_MASK, 0, "the kernel's space keeps PCID 0");
        let last = crate::proc::PROCESS_SLOTS - 1;
        assert_eq!(cr3_word(on, 0x1000, last) & PCID_MASK, last as u64, "the last slot's PCID fits");
        assert_eq!(Pcid::Off.describe(), "off");
        assert_eq!(Pcid::On { invpcid: true }.describe(), "on (invpcid yes)");
        assert_eq!(Pcid::On { invpcid: false }.bits(), abi::debug::PCID_ON);
    }
}
