//! Four-level x86-64 page tables.
//!
//! Each process has its own top-level table; its upper half (entries
//! 256..512) is copied from the kernel's at creation and points at the same
//! lower-level tables, so kernel mappings made later under those entries are
//! seen by every process without touching each table.
//!
//! Leaf entries of user mappings carry one of three software bits telling
//! what the frame is, so unmapping and process teardown free exactly what the
//! process owns and nothing it merely has access to.

use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use super::{FrameAllocator, PhysMem};

/// Software bits of leaf entries.
pub mod sw {
    use super::Flags;
    /// The frame belongs to this address space: free it at unmap.
    pub const OWNED: Flags = Flags::BIT_9;
    /// The frame is part of a DMA region: drop one region reference at unmap.
    pub const DMA: Flags = Flags::BIT_10;
    /// The frame is lent by an IPC sender for one request: never free it here.
    pub const LOAN: Flags = Flags::BIT_11;
    /// The frame belongs to the boot RAMFS image (read-only RAM).
    pub const BOOT: Flags = Flags::BIT_52;
    /// Frames that are RAM the kernel may read and write through the
    /// physical window. A user page without one of these is device memory
    /// (or not the kernel's business): syscalls refuse buffers there.
    pub const RAM: Flags = OWNED.union(DMA).union(LOAN).union(BOOT);
    /// Frames that may be lent to a receiver: the sender's own memory.
    pub const LENDABLE: Flags = OWNED.union(DMA);
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No frame for an intermediate table.
    NoMemory,
    /// Something is already mapped at that address.
    AlreadyMapped,
    /// A huge page covers that address.
    HugePage,
}

const USER_TABLE: Flags = Flags::PRESENT.union(Flags::WRITABLE).union(Flags::USER_ACCESSIBLE);
const KERNEL_TABLE: Flags = Flags::PRESENT.union(Flags::WRITABLE);
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

#[inline]
fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 511) as usize
}

/// Where a leaf (4 KiB level) page-table entry lives: the physical address
/// of one `u64` inside a page-table frame. Only a table walk makes one
/// (or, unsafely, the IPC leaf cache that keeps walk results), so code that
/// reads or writes an entry through it cannot be handed an arbitrary
/// address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafAt(PhysAddr);

impl LeafAt {
    /// The entry's physical address.
    #[inline(always)]
    pub fn addr(self) -> PhysAddr {
        self.0
    }

    /// A location remembered from [`Self::addr`].
    ///
    /// # Safety
    /// `at` must be the address of a `LeafAt` from a walk of tables that
    /// are still page tables (see `crate::proc::LeafCache`: a live
    /// process's tables are never freed), in the same physical memory.
    #[inline(always)]
    pub unsafe fn remembered(at: u64) -> LeafAt {
        LeafAt(PhysAddr::new_truncate(at))
    }

    /// The entry's value.
    #[inline(always)]
    pub fn read(self, phys: &PhysMem) -> u64 {
        // SAFETY: the address is an entry inside a page-table frame (only
        // walks make a `LeafAt`); entries are plain `u64`s, and the kernel
        // holds no reference into page tables across calls.
        unsafe { *phys.ptr::<u64>(self.0) }
    }

    /// Overwrite the entry.
    #[inline(always)]
    pub fn write(self, phys: &PhysMem, value: u64) {
        // SAFETY: as in `read`.
        unsafe { *phys.ptr::<u64>(self.0) = value }
    }
}

/// A set of page tables, named by its top-level frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTables {
    root: PhysFrame,
}

impl PageTables {
    /// Page tables whose top level is `root`.
    ///
    /// # Safety
    /// `root` must be a top-level page-table frame whose tables all lie in
    /// the physical memory later passed to the methods: they walk it.
    pub unsafe fn from_root(root: PhysFrame) -> Self {
        PageTables { root }
    }

    /// The top-level frame (what goes in CR3).
    pub fn root(&self) -> PhysFrame {
        self.root
    }

    /// An empty top level (used once for the kernel's own tables).
    pub fn new_empty(phys: &PhysMem, frames: &mut FrameAllocator) -> Option<Self> {
        let root = frames.alloc()?;
        // SAFETY: just allocated, so nobody else uses it.
        unsafe { phys.zero(root) };
        Some(PageTables { root })
    }

    /// A new user address space: empty lower half, kernel upper half shared.
    pub fn new_user(phys: &PhysMem, frames: &mut FrameAllocator, kernel: &PageTables) -> Option<Self> {
        let root = frames.alloc()?;
        // SAFETY: just allocated, so nobody else uses it.
        unsafe { phys.zero(root) };
        // SAFETY: `root` was just allocated, so nothing else references
        // it; the kernel's top level is another frame, only read here.
        let (new, k) = unsafe { (table(phys, root), table(phys, kernel.root)) };
        for i in 256..512 {
            new[i] = k[i].clone();
        }
        Some(PageTables { root })
    }

    /// Make sure every upper-half top-level entry has a table below it, so
    /// later kernel mappings never need a new top-level entry (which user
    /// address spaces made earlier would not see).
    pub fn populate_kernel_half(&mut self, phys: &PhysMem, frames: &mut FrameAllocator) -> Result<(), MapError> {
        // SAFETY: our top level; nothing else references it meanwhile.
        let top = unsafe { table(phys, self.root) };
        for i in 256..512 {
            if top[i].is_unused() {
                let t = frames.alloc().ok_or(MapError::NoMemory)?;
                // SAFETY: just allocated, so nobody else uses it.
                unsafe { phys.zero(t) };
                top[i].set_addr(t.start_address(), KERNEL_TABLE);
            }
        }
        Ok(())
    }

    /// Where the leaf entry for `va` is, if all tables above it exist.
    /// Walks raw entries: this is on every IPC path, so it avoids the
    /// checked accessors.
    #[inline(always)]
    pub fn leaf_entry(&self, phys: &PhysMem, va: u64) -> Option<LeafAt> {
        const PRESENT: u64 = Flags::PRESENT.bits();
        const HUGE: u64 = Flags::HUGE_PAGE.bits();
        let mut table = self.root.start_address().as_u64();
        for shift in [39u32, 30, 21] {
            // SAFETY: `table` is a page-table frame (the root, or read from
            // a present non-huge entry); the index stays inside it.
            let e = unsafe { *phys.ptr::<u64>(PhysAddr::new_truncate(table + ((va >> shift) & 511) * 8)) };
            if e & (PRESENT | HUGE) != PRESENT {
                return None;
            }
            table = e & ADDR_MASK;
        }
        Some(LeafAt(PhysAddr::new_truncate(table + ((va >> 12) & 511) * 8)))
    }

    /// The raw leaf entry for `va` (0 if no table holds one).
    #[inline(always)]
    pub fn leaf_raw(&self, phys: &PhysMem, va: u64) -> u64 {
        match self.leaf_entry(phys, va) {
            Some(at) => at.read(phys),
            None => 0,
        }
    }

    /// Where the leaf entry for `va` is, creating missing tables.
    pub fn leaf_or_create(&mut self, phys: &PhysMem, frames: &mut FrameAllocator, va: VirtAddr) -> Result<LeafAt, MapError> {
        let va = va.as_u64();
        let table_flags = if va < 1 << 47 { USER_TABLE } else { KERNEL_TABLE };
        let mut frame = self.root;
        for level in (2..=4).rev() {
            // SAFETY: a table of these tables, referenced only in this step.
            let e = unsafe { &mut table(phys, frame)[index(va, level)] };
            if e.is_unused() {
                let new = frames.alloc().ok_or(MapError::NoMemory)?;
                // SAFETY: just allocated, so nobody else uses it.
                unsafe { phys.zero(new) };
                e.set_addr(new.start_address(), table_flags);
            } else if e.flags().contains(Flags::HUGE_PAGE) {
                return Err(MapError::HugePage);
            }
            frame = PhysFrame::containing_address(e.addr());
        }
        Ok(LeafAt(frame.start_address() + index(va, 1) as u64 * 8))
    }

    /// Map one 4 KiB page.
    pub fn map(
        &mut self,
        phys: &PhysMem,
        frames: &mut FrameAllocator,
        va: VirtAddr,
        frame: PhysFrame,
        flags: Flags,
    ) -> Result<(), MapError> {
        let at = self.leaf_or_create(phys, frames, va)?;
        if at.read(phys) != 0 {
            return Err(MapError::AlreadyMapped);
        }
        at.write(phys, frame.start_address().as_u64() | (flags | Flags::PRESENT).bits());
        Ok(())
    }

    /// Map one 2 MiB page (kernel direct map only).
    pub fn map_huge(
        &mut self,
        phys: &PhysMem,
        frames: &mut FrameAllocator,
        va: VirtAddr,
        pa: PhysAddr,
        flags: Flags,
    ) -> Result<(), MapError> {
        let va = va.as_u64();
        // SAFETY: (here and in the loop) each table of the walk is
        // referenced only until the next one is reached.
        let mut t = unsafe { table(phys, self.root) };
        for level in (3..=4).rev() {
            let e = &mut t[index(va, level)];
            if e.is_unused() {
                let new = frames.alloc().ok_or(MapError::NoMemory)?;
                // SAFETY: just allocated, so nobody else uses it.
                unsafe { phys.zero(new) };
                e.set_addr(new.start_address(), KERNEL_TABLE);
            }
            // SAFETY: see the walk's first step.
            t = unsafe { table(phys, PhysFrame::containing_address(e.addr())) };
        }
        let e = &mut t[index(va, 2)];
        if !e.is_unused() {
            return Err(MapError::AlreadyMapped);
        }
        e.set_addr(pa, flags | Flags::PRESENT | Flags::HUGE_PAGE);
        Ok(())
    }

    /// Remove the mapping of one page; returns what was there.
    pub fn unmap(&mut self, phys: &PhysMem, va: VirtAddr) -> Option<(PhysFrame, Flags)> {
        let at = self.leaf_entry(phys, va.as_u64())?;
        let e = at.read(phys);
        if e == 0 {
            return None;
        }
        at.write(phys, 0);
        Some((PhysFrame::containing_address(PhysAddr::new_truncate(e & ADDR_MASK)), Flags::from_bits_truncate(e)))
    }

    /// The first page in `[from, end)` with a present 4 KiB mapping. Absent
    /// tables are skipped whole, so an empty range of any size costs a few
    /// steps per top-level entry.
    pub fn next_mapped(&self, phys: &PhysMem, from: u64, end: u64) -> Option<u64> {
        let mut va = from & !0xfff;
        'outer: while va < end {
            // SAFETY: (here and in the loop) each table of the walk is
            // referenced only until the next one is reached.
            let mut t = unsafe { table(phys, self.root) };
            for level in (2..=4).rev() {
                let e = &t[index(va, level)];
                let f = e.flags();
                if !f.contains(Flags::PRESENT) || f.contains(Flags::HUGE_PAGE) {
                    let span = 1u64 << (12 + 9 * (level - 1));
                    va = (va & !(span - 1)).checked_add(span)?;
                    continue 'outer;
                }
                // SAFETY: see the walk's first step.
            t = unsafe { table(phys, PhysFrame::containing_address(e.addr())) };
            }
            if t[index(va, 1)].flags().contains(Flags::PRESENT) {
                return Some(va);
            }
            va += 4096;
        }
        None
    }

    /// Physical address and flags of a 4 KiB-mapped address (all user
    /// mappings are 4 KiB): one walk, no huge-page cases.
    #[inline(always)]
    pub fn translate_4k(&self, phys: &PhysMem, va: VirtAddr) -> Option<(PhysAddr, Flags)> {
        let e = self.leaf_raw(phys, va.as_u64());
        (e & Flags::PRESENT.bits() != 0)
            .then(|| (PhysAddr::new_truncate((e & ADDR_MASK) | (va.as_u64() & 0xfff)), Flags::from_bits_retain(e & !ADDR_MASK)))
    }

    /// Physical address and flags of the page containing `va` (4 KiB or huge).
    pub fn translate(&self, phys: &PhysMem, va: VirtAddr) -> Option<(PhysAddr, Flags)> {
        let va = va.as_u64();
        // SAFETY: (here and in the loop) each table of the walk is
        // referenced only until the next one is reached.
        let mut t = unsafe { table(phys, self.root) };
        for level in (1..=4).rev() {
            let e = &t[index(va, level)];
            let f = e.flags();
            if !f.contains(Flags::PRESENT) {
                return None;
            }
            if level == 1 || f.contains(Flags::HUGE_PAGE) {
                let span = 1u64 << (12 + 9 * (level - 1));
                let pa = (e.addr().as_u64() & ADDR_MASK & !(span - 1)) + (va & (span - 1));
                return Some((PhysAddr::new(pa), f));
            }
            // SAFETY: see the walk's first step.
            t = unsafe { table(phys, PhysFrame::containing_address(e.addr())) };
        }
        None
    }

    /// Tear down the lower (user) half: call `leaf` for every mapped page,
    /// then free every table frame, the top level included. The kernel half
    /// is shared and left alone.
    pub fn destroy_user(
        self,
        phys: &PhysMem,
        frames: &mut FrameAllocator,
        mut leaf: impl FnMut(&mut FrameAllocator, PhysFrame, Flags),
    ) {
        // SAFETY: (all four levels) the tables form a tree, so each
        // reference here is to a different frame; they are only read, and
        // `leaf` gets frames, not references into them.
        let top = unsafe { table(phys, self.root) };
        for i4 in 0..256 {
            let Some(pdpt) = child(&top[i4]) else { continue };
            for i3 in 0..512 {
                // SAFETY: see above.
                let Some(pd) = child(unsafe { &table(phys, pdpt)[i3] }) else { continue };
                for i2 in 0..512 {
                    // SAFETY: see above.
                    let Some(pt) = child(unsafe { &table(phys, pd)[i2] }) else { continue };
                    // SAFETY: see above.
                    for e in unsafe { table(phys, pt) }.iter() {
                        if e.flags().contains(Flags::PRESENT) {
                            leaf(frames, PhysFrame::containing_address(e.addr()), e.flags());
                        }
                    }
                    free_table(frames, pt);
                }
                free_table(frames, pd);
            }
            free_table(frames, pdpt);
        }
        free_table(frames, self.root);
    }
}

/// The next-level table an entry points to, if it is a present table entry.
fn child(e: &PageTableEntry) -> Option<PhysFrame> {
    let f = e.flags();
    (f.contains(Flags::PRESENT) && !f.contains(Flags::HUGE_PAGE)).then(|| PhysFrame::containing_address(e.addr()))
}

fn free_table(frames: &mut FrameAllocator, t: PhysFrame) {
    // A table frame came from the allocator; failure would mean corrupted
    // tables, which we report rather than crash on.
    if frames.free(t).is_err() {
        crate::error!("page table frame {:#x} was not allocated", t.start_address().as_u64());
    }
}

/// The page table stored in `frame`.
///
/// # Safety
/// `frame` must be a page-table frame in `phys`, and no other reference to
/// that table may be live while the returned one is used.
#[inline]
#[allow(clippy::mut_from_ref)]
unsafe fn table(phys: &PhysMem, frame: PhysFrame) -> &mut PageTable {
    // SAFETY: page-table frames are allocated for and owned by page tables,
    // inside the window; the caller rules out other references.
    unsafe { &mut *phys.ptr::<PageTable>(frame.start_address()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::testing::FakeRam;

    #[test]
    fn map_translate_unmap() {
        let mut ram = FakeRam::new(256);
        let (phys, frames) = ram.parts();
        let kernel = PageTables::new_empty(&phys, frames).unwrap();
        let mut pt = PageTables::new_user(&phys, frames, &kernel).unwrap();
        let f = frames.alloc().unwrap();
        let va = VirtAddr::new(0x40_1000);
        let flags = Flags::WRITABLE | Flags::USER_ACCESSIBLE | sw::OWNED;
        pt.map(&phys, frames, va, f, flags).unwrap();
        assert_eq!(pt.map(&phys, frames, va, f, flags), Err(MapError::AlreadyMapped));
        let (pa, fl) = pt.translate(&phys, va + 0x123u64).unwrap();
        assert_eq!(pa, f.start_address() + 0x123u64);
        assert!(fl.contains(sw::OWNED | Flags::PRESENT));
        assert!(pt.translate(&phys, VirtAddr::new(0x40_2000)).is_none());
        assert_eq!(pt.unmap(&phys, va).map(|x| x.0), Some(f));
        assert!(pt.translate(&phys, va).is_none());
        assert!(pt.unmap(&phys, va).is_none());
    }

    #[test]
    fn kernel_half_is_shared_and_teardown_frees_everything() {
        let mut ram = FakeRam::new(512);
        let (phys, frames) = ram.parts();
        let mut kernel = PageTables::new_empty(&phys, frames).unwrap();
        kernel.populate_kernel_half(&phys, frames).unwrap();
        let before = frames.free_frames();
        let mut pt = PageTables::new_user(&phys, frames, &kernel).unwrap();
        // A kernel mapping made after the user space exists is visible in it.
        let kf = frames.alloc().unwrap();
        let kva = VirtAddr::new(0xffff_ffff_c000_0000);
        kernel.map(&phys, frames, kva, kf, Flags::WRITABLE).unwrap();
        assert_eq!(pt.translate(&phys, kva).unwrap().0, kf.start_address());
        // Spread user pages over several tables, then tear down.
        let mut owned = 0;
        for va in [0x1000u64, 0x20_0000, 0x4000_0000, 0x7f00_0000_0000] {
            let f = frames.alloc().unwrap();
            pt.map(&phys, frames, VirtAddr::new(va), f, Flags::USER_ACCESSIBLE | sw::OWNED).unwrap();
            owned += 1;
        }
        let mut seen = 0;
        pt.destroy_user(&phys, frames, |frames, f, fl| {
            assert!(fl.contains(sw::OWNED));
            frames.free(f).unwrap();
            seen += 1;
        });
        assert_eq!(seen, owned);
        // Everything is back but the kernel page and the two tables its
        // mapping needed below the populated top level (a page directory and
        // a page table).
        assert_eq!(frames.free_frames(), before - 1 - 2);
        assert!(kernel.translate(&phys, kva).is_some());
    }

    #[test]
    fn huge_pages_translate_and_block_small_maps() {
        let mut ram = FakeRam::new(64);
        let (phys, frames) = ram.parts();
        let mut k = PageTables::new_empty(&phys, frames).unwrap();
        let va = VirtAddr::new(0xffff_8000_0020_0000);
        k.map_huge(&phys, frames, va, PhysAddr::new(0x20_0000), Flags::WRITABLE).unwrap();
        assert_eq!(k.translate(&phys, va + 0x1234u64).unwrap().0, PhysAddr::new(0x20_1234));
        let f = frames.alloc().unwrap();
        assert_eq!(k.map(&phys, frames, va, f, Flags::WRITABLE), Err(MapError::HugePage));
    }
}
