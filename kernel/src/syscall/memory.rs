//! Memory syscalls: anonymous memory, physical ranges, DMA.

use abi::{phys_flavor, CapKind, Error, MapFlags, RightsMask};
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use crate::cap::{Cap, SysError};
use crate::kernel::{Kernel, WINDOW_PAGES};
use crate::mem::dma::release_leaf;
use crate::mem::paging::{sw, MapError};
use crate::mem::{user, PAGE_SIZE};
use crate::proc::Resource;

/// Check a page-aligned, non-empty user range.
fn page_range(va: u64, len: u64) -> Result<(), Error> {
    if !va.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(Error::InvalidArgument);
    }
    user::check_range(va, len).map_err(|_| Error::BadAddress)
}

/// [`page_range`], for calls that touch every page of it. They let pending
/// interrupts in every [`WINDOW_PAGES`] pages; the bound keeps one call's
/// total work (and the caller's wait) reasonable.
fn map_range(va: u64, len: u64) -> Result<(), Error> {
    if len > abi::limits::MAP_MAX {
        return Err(Error::InvalidArgument);
    }
    page_range(va, len)
}

/// Page flags for user mapping flags; W^X is enforced here.
/// (Unknown bits were refused when the argument was decoded.)
fn user_flags(flags: MapFlags) -> Result<Flags, Error> {
    if flags.contains(MapFlags::WRITE | MapFlags::EXEC) {
        return Err(Error::WriteExecute);
    }
    let mut f = Flags::PRESENT | Flags::USER_ACCESSIBLE;
    if flags.contains(MapFlags::WRITE) {
        f |= Flags::WRITABLE;
    }
    if !flags.contains(MapFlags::EXEC) {
        f |= Flags::NO_EXECUTE;
    }
    Ok(f)
}

impl Kernel {
    /// Map zeroed memory into process `p`. All or nothing. Each page, and
    /// the page tables it needs, count against `p`'s page quota.
    pub fn map_anon(&mut self, p: usize, va: u64, len: u64, flags: MapFlags) -> Result<(), Error> {
        map_range(va, len)?;
        let flags = user_flags(flags)? | sw::OWNED;
        let mut space = self.space(p);
        let mut at = va;
        while at < va + len {
            let result = self.charged(p, at, 1, |k| match k.frames.alloc() {
                None => Err(Error::NoMemory),
                Some(f) => {
                    // SAFETY: just allocated, so nobody else uses it.
                    unsafe { k.phys.zero(f) };
                    space.map(&k.phys, &mut k.frames, VirtAddr::new(at), f, flags).map_err(|e| {
                        let _ = k.frames.free(f);
                        match e {
                            MapError::AlreadyMapped | MapError::HugePage => Error::AlreadyExists,
                            MapError::NoMemory => Error::NoMemory,
                        }
                    })
                }
            });
            if let Err(e) = result {
                self.unmap_pages(p, va, at - va);
                return Err(e);
            }
            at += PAGE_SIZE;
            if ((at - va) / PAGE_SIZE).is_multiple_of(WINDOW_PAGES) {
                crate::arch::tick_window();
            }
        }
        Ok(())
    }

    /// Map one page at `va` in `p` with `map`, which allocates `leaf`
    /// frames itself, if `p`'s page quota has room for them and for any
    /// page tables the page may need; `p` is charged the frames it took
    /// (tables included, even if `map` fails after making them).
    pub(crate) fn charged(&mut self, p: usize, va: u64, leaf: u64, map: impl FnOnce(&mut Self) -> Result<(), Error>) -> Result<(), Error> {
        let tables = if self.space(p).leaf_entry(&self.phys, va).is_some() { 0 } else { 3 };
        if self.procs[p].room(Resource::Pages) < leaf + tables {
            return Err(Error::LimitReached);
        }
        let before = self.frames.free_frames();
        let result = map(self);
        self.procs[p].acct.pages += before.saturating_sub(self.frames.free_frames()) as u64;
        result
    }

    /// Unmap a range of process `p`. Fails with `Busy`, changing nothing, if
    /// a page in it is lent to or by an IPC message in flight.
    pub fn unmap(&mut self, p: usize, va: u64, len: u64) -> Result<(), Error> {
        page_range(va, len)?;
        let space = self.space(p);
        let end = va + len;
        let mut at = va;
        let mut n = 0u64;
        while let Some(page) = space.next_mapped(&self.phys, at, end) {
            if space.translate_4k(&self.phys, VirtAddr::new(page)).is_some_and(|(_, f)| f.contains(sw::LOAN)) {
                return Err(Error::Busy);
            }
            at = page + PAGE_SIZE;
            n += 1;
            if n.is_multiple_of(WINDOW_PAGES) {
                crate::arch::tick_window();
            }
        }
        let lent_out = self.threads.iter().any(|th| {
            th.process as usize == p && th.msg.lent && th.msg.server != crate::proc::NO_THREAD && (va..end).contains(&th.msg.buf)
        });
        if lent_out {
            return Err(Error::Busy);
        }
        self.unmap_pages(p, va, len);
        Ok(())
    }

    /// Unmap whatever is mapped in the range and release it (page tables
    /// stay, and stay charged).
    fn unmap_pages(&mut self, p: usize, va: u64, len: u64) {
        let mut space = self.space(p);
        let end = va + len;
        let mut at = va;
        let (mut n, mut owned) = (0u64, 0u64);
        while let Some(page) = space.next_mapped(&self.phys, at, end) {
            if let Some((f, fl)) = space.unmap(&self.phys, VirtAddr::new(page)) {
                owned += release_leaf(&mut self.frames, &mut self.dma, f, fl) as u64;
                self.flush_page_of(p, page);
            }
            at = page + PAGE_SIZE;
            n += 1;
            if n.is_multiple_of(WINDOW_PAGES) {
                crate::arch::tick_window();
            }
        }
        let pages = &mut self.procs[p].acct.pages;
        *pages = pages.saturating_sub(owned);
        self.free_unused_dma();
    }

    /// Map `len` bytes at `offset` of the physical range `cap` at `va` in `p`.
    pub fn map_phys(&mut self, p: usize, cap: Cap, va: u64, offset: u64, len: u64, flags: MapFlags) -> Result<(), SysError> {
        map_range(va, len)?;
        if flags.contains(MapFlags::EXEC) {
            return Err(Error::InvalidArgument.into());
        }
        let need = if flags.contains(MapFlags::WRITE) { abi::PhysRights::READ | abi::PhysRights::WRITE } else { abi::PhysRights::READ };
        if !cap.allows(need) {
            return Err(SysError::BadToken);
        }
        let size = cap.frames as u64 * PAGE_SIZE;
        if !offset.is_multiple_of(PAGE_SIZE) || offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::InvalidArgument.into());
        }
        let base = cap.base_frame as u64 * PAGE_SIZE + offset;
        let mut pte = user_flags(flags)?;
        match cap.flavor {
            phys_flavor::DEVICE => {
                if self.off_limits_to_devices(base, base + len) {
                    return Err(Error::InvalidArgument.into());
                }
                pte |= Flags::NO_CACHE | Flags::WRITE_THROUGH;
            }
            phys_flavor::BOOT => pte |= sw::BOOT,
            phys_flavor::DMA => {
                if !self.dma.is_live(cap.object, cap.gen) {
                    return Err(SysError::BadToken);
                }
                pte |= sw::DMA;
            }
            _ => {}
        }
        let mut space = self.space(p);
        let pages = len / PAGE_SIZE;
        for i in 0..pages {
            let frame = PhysFrame::containing_address(PhysAddr::new(base + i * PAGE_SIZE));
            let at = va + i * PAGE_SIZE;
            let mapped = self.charged(p, at, 0, |k| {
                space.map(&k.phys, &mut k.frames, VirtAddr::new(at), frame, pte).map_err(|e| match e {
                    MapError::NoMemory => Error::NoMemory,
                    _ => Error::AlreadyExists,
                })
            });
            if let Err(e) = mapped {
                // Undo the pages mapped so far (not counted yet for DMA).
                for j in 0..i {
                    space.unmap(&self.phys, VirtAddr::new(va + j * PAGE_SIZE));
                    self.flush_page_of(p, va + j * PAGE_SIZE);
                }
                return Err(e.into());
            }
            if (i + 1).is_multiple_of(WINDOW_PAGES) {
                crate::arch::tick_window();
            }
        }
        if cap.flavor == phys_flavor::DMA {
            self.dma.mapped(cap.object, pages);
        }
        Ok(())
    }

    /// A capability for part of a physical range, with at most `mask` rights.
    pub fn phys_derive(&mut self, p: usize, cap: Cap, offset: u64, len: u64, mask: RightsMask) -> Result<u64, Error> {
        let size = cap.frames as u64 * PAGE_SIZE;
        if !offset.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) || len == 0 || offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::InvalidArgument);
        }
        let mut sub = cap.reduced(mask);
        sub.base_frame += (offset / PAGE_SIZE) as u32;
        sub.frames = (len / PAGE_SIZE) as u32;
        self.mint(p, sub)
    }

    /// Contiguous zeroed frames for DMA, owned by `p`: (token, address).
    /// `DmaAddr`: the frame behind process `p`'s page at `va`, if it is a
    /// DMA page or a page lent to it. The caller can already write such a
    /// page; telling it where the page is only lets it point a device
    /// there (which no IOMMU restrains anyway, see the README's limits).
    /// A lent page stops being the caller's at the reply: a device still
    /// writing it then is the driver's bug, as any stray DMA is.
    pub fn dma_addr(&mut self, p: usize, va: u64) -> Result<u64, Error> {
        if user::check_range(va, 1).is_err() {
            return Err(Error::BadAddress);
        }
        let page = va & !(PAGE_SIZE - 1);
        let at = self.space(p).leaf_entry(&self.phys, page).ok_or(Error::BadAddress)?;
        let e = self.entry(at);
        let flags = Flags::from_bits_retain(e);
        if !flags.contains(Flags::PRESENT) || !flags.intersects(sw::DMA | sw::LOAN) {
            return Err(Error::BadAddress);
        }
        Ok((e & 0x000f_ffff_ffff_f000) + (va & (PAGE_SIZE - 1)))
    }

    pub fn dma_alloc(&mut self, p: usize, pages: u64) -> Result<(u64, u64), Error> {
        if pages == 0 || pages > abi::limits::DMA_MAX_PAGES {
            return Err(Error::InvalidArgument);
        }
        let slot = self.dma.free_slot().ok_or(Error::LimitReached)?;
        // Charged to the allocator until it ends, wherever the region is mapped.
        if self.procs[p].room(Resource::Pages) < pages {
            return Err(Error::LimitReached);
        }
        let first = self.frames.alloc_contiguous(pages as usize, 1).ok_or(Error::NoMemory)?;
        for i in 0..pages {
            let f = PhysFrame::containing_address(first.start_address() + i * PAGE_SIZE);
            // SAFETY: just allocated, so nobody else uses it.
            unsafe { self.phys.zero(f) };
            if (i + 1).is_multiple_of(WINDOW_PAGES) {
                crate::arch::tick_window();
            }
        }
        self.procs[p].acct.pages += pages;
        let base_frame = (first.start_address().as_u64() / PAGE_SIZE) as u32;
        let gen = self.dma.open(slot, base_frame, pages as u32, p);
        let mut cap = Cap::object(CapKind::Phys, slot as u32, gen, abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE);
        cap.flavor = phys_flavor::DMA;
        cap.base_frame = base_frame;
        cap.frames = pages as u32;
        match self.mint(p, cap) {
            Ok(token) => Ok((token, first.start_address().as_u64())),
            Err(e) => {
                self.dma.disown(slot);
                self.free_unused_dma();
                Err(e)
            }
        }
    }

    /// Copy `len` bytes from `src` in `p` to `dst` in `target`. Until the
    /// target has a thread, read-only and executable pages it owns can be
    /// written too (this is how loaders fill code); once it runs, only pages
    /// it could write itself, or a program could write code into its own (or
    /// another running program's) executable pages and run it: W^X.
    /// Copied [`WINDOW_PAGES`] pages at a time, with a tick window
    /// between; a bad address part way leaves the part before it written.
    pub fn process_write(&mut self, p: usize, target: usize, dst: u64, src: u64, len: u64) -> Result<(), Error> {
        if len > abi::limits::MAP_MAX {
            return Err(Error::InvalidArgument);
        }
        if user::check_range(src, len).is_err() || user::check_range(dst, len).is_err() {
            return Err(Error::BadAddress);
        }
        let access = if self.procs[target].threads == 0 { user::Access::Load } else { user::Access::Write };
        let (from, to) = (self.space(p), self.space(target));
        let chunk = WINDOW_PAGES * PAGE_SIZE;
        let mut done = 0;
        loop {
            let n = (len - done).min(chunk);
            user::copy(&self.phys, (&from, src + done), (&to, dst + done), n as usize, access).map_err(|_| Error::BadAddress)?;
            done += n;
            if done == len {
                return Ok(());
            }
            crate::arch::tick_window();
        }
    }
}
