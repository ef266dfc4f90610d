//! Memory syscalls: anonymous memory, physical ranges, DMA.

use abi::{map, phys_flavor, rights, CapKind, Error};
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use crate::cap::Cap;
use crate::kernel::{release_leaf, Kernel};
use crate::mem::paging::{sw, MapError};
use crate::mem::{user, PAGE_SIZE};

/// Check a page-aligned, non-empty user range.
fn page_range(va: u64, len: u64) -> Result<(), Error> {
    if !va.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(Error::InvalidArgument);
    }
    user::check_range(va, len).map_err(|_| Error::BadAddress)
}

/// [`page_range`], for calls that touch every page of it: bounded so one
/// call cannot keep the (non-preemptible) kernel busy for long.
fn map_range(va: u64, len: u64) -> Result<(), Error> {
    if len > abi::limits::MAP_MAX {
        return Err(Error::InvalidArgument);
    }
    page_range(va, len)
}

/// Page flags for user mapping flags; W^X is enforced here.
fn user_flags(flags: u64) -> Result<Flags, Error> {
    if flags & !(map::READ | map::WRITE | map::EXEC) != 0 {
        return Err(Error::InvalidArgument);
    }
    if flags & map::WRITE != 0 && flags & map::EXEC != 0 {
        return Err(Error::WriteExecute);
    }
    let mut f = Flags::PRESENT | Flags::USER_ACCESSIBLE;
    if flags & map::WRITE != 0 {
        f |= Flags::WRITABLE;
    }
    if flags & map::EXEC == 0 {
        f |= Flags::NO_EXECUTE;
    }
    Ok(f)
}

impl Kernel {
    /// Map zeroed memory into process `p`. All or nothing.
    pub fn map_anon(&mut self, p: usize, va: u64, len: u64, flags: u64) -> Result<(), Error> {
        map_range(va, len)?;
        let flags = user_flags(flags)? | sw::OWNED;
        let mut space = self.space(p);
        let mut at = va;
        while at < va + len {
            let result = match self.frames.alloc() {
                None => Err(Error::NoMemory),
                Some(f) => {
                    self.phys.zero(f);
                    space.map(&self.phys, &mut self.frames, VirtAddr::new(at), f, flags).map_err(|e| {
                        let _ = self.frames.free(f);
                        match e {
                            MapError::AlreadyMapped | MapError::HugePage => Error::AlreadyExists,
                            MapError::NoMemory => Error::NoMemory,
                        }
                    })
                }
            };
            if let Err(e) = result {
                self.unmap_pages(p, va, at - va);
                return Err(e);
            }
            at += PAGE_SIZE;
        }
        Ok(())
    }

    /// Unmap a range of process `p`. Fails with `Busy`, changing nothing, if
    /// a page in it is lent to or by an IPC message in flight.
    pub fn unmap(&mut self, p: usize, va: u64, len: u64) -> Result<(), Error> {
        page_range(va, len)?;
        let space = self.space(p);
        let end = va + len;
        let mut at = va;
        while let Some(page) = space.next_mapped(&self.phys, at, end) {
            if space.translate_4k(&self.phys, VirtAddr::new(page)).is_some_and(|(_, f)| f.contains(sw::LOAN)) {
                return Err(Error::Busy);
            }
            at = page + PAGE_SIZE;
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

    /// Unmap whatever is mapped in the range and release it.
    fn unmap_pages(&mut self, p: usize, va: u64, len: u64) {
        let mut space = self.space(p);
        let end = va + len;
        let mut at = va;
        while let Some(page) = space.next_mapped(&self.phys, at, end) {
            if let Some((f, fl)) = space.unmap(&self.phys, VirtAddr::new(page)) {
                release_leaf(&mut self.frames, &mut self.dma, f, fl);
                self.flush_if_active(space, page);
            }
            at = page + PAGE_SIZE;
        }
        self.free_unused_dma();
    }

    /// Map `len` bytes at `offset` of the physical range `cap` at `va` in `p`.
    pub fn map_phys(&mut self, p: usize, cap: Cap, va: u64, offset: u64, len: u64, flags: u64) -> Result<(), Error> {
        map_range(va, len)?;
        if flags & map::EXEC != 0 {
            return Err(Error::InvalidArgument);
        }
        let need = if flags & map::WRITE != 0 { rights::READ | rights::WRITE } else { rights::READ };
        if !cap.allows(need) {
            self.strike = true;
            return Err(Error::Incapable);
        }
        let size = cap.frames as u64 * PAGE_SIZE;
        if !offset.is_multiple_of(PAGE_SIZE) || offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::InvalidArgument);
        }
        let base = cap.base_frame as u64 * PAGE_SIZE + offset;
        let mut pte = user_flags(flags)?;
        match cap.flavor {
            phys_flavor::DEVICE => {
                if self.off_limits_to_devices(base, base + len) {
                    return Err(Error::InvalidArgument);
                }
                pte |= Flags::NO_CACHE | Flags::WRITE_THROUGH;
            }
            phys_flavor::BOOT => pte |= sw::BOOT,
            phys_flavor::DMA => {
                let r = self.dma.get(cap.object as usize).filter(|r| r.live && r.gen == cap.gen);
                if r.is_none() {
                    self.strike = true;
                    return Err(Error::Incapable);
                }
                pte |= sw::DMA;
            }
            _ => {}
        }
        let mut space = self.space(p);
        let pages = len / PAGE_SIZE;
        for i in 0..pages {
            let frame = PhysFrame::containing_address(PhysAddr::new(base + i * PAGE_SIZE));
            if let Err(e) = space.map(&self.phys, &mut self.frames, VirtAddr::new(va + i * PAGE_SIZE), frame, pte) {
                // Undo the pages mapped so far (not counted yet for DMA).
                for j in 0..i {
                    space.unmap(&self.phys, VirtAddr::new(va + j * PAGE_SIZE));
                    self.flush_if_active(space, va + j * PAGE_SIZE);
                }
                return Err(match e {
                    MapError::NoMemory => Error::NoMemory,
                    _ => Error::AlreadyExists,
                });
            }
        }
        if cap.flavor == phys_flavor::DMA {
            self.dma[cap.object as usize].maps += pages as u32;
        }
        Ok(())
    }

    /// A capability for part of a physical range, with at most `mask` rights.
    pub fn phys_derive(&mut self, p: usize, cap: Cap, offset: u64, len: u64, mask: u64) -> Result<u64, Error> {
        let size = cap.frames as u64 * PAGE_SIZE;
        if !offset.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) || len == 0 || offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::InvalidArgument);
        }
        let mut sub = cap.reduced(mask as u32);
        sub.base_frame += (offset / PAGE_SIZE) as u32;
        sub.frames = (len / PAGE_SIZE) as u32;
        self.mint(p, sub)
    }

    /// Contiguous zeroed frames for DMA, owned by `p`: (token, address).
    pub fn dma_alloc(&mut self, p: usize, pages: u64) -> Result<(u64, u64), Error> {
        if pages == 0 || pages > abi::limits::DMA_MAX_PAGES {
            return Err(Error::InvalidArgument);
        }
        let slot = self.dma.iter().position(|r| !r.live).ok_or(Error::LimitReached)?;
        let first = self.frames.alloc_contiguous(pages as usize, 1).ok_or(Error::NoMemory)?;
        for i in 0..pages {
            let f = PhysFrame::containing_address(first.start_address() + i * PAGE_SIZE);
            self.phys.zero(f);
        }
        let base_frame = (first.start_address().as_u64() / PAGE_SIZE) as u32;
        let r = &mut self.dma[slot];
        r.live = true;
        r.gen = r.gen.wrapping_add(1);
        r.base_frame = base_frame;
        r.frames = pages as u32;
        r.owner = p as u16;
        r.owner_alive = true;
        r.maps = 0;
        let mut cap = Cap::object(CapKind::Phys, slot as u32, r.gen, rights::READ | rights::WRITE | rights::DELEGATE);
        cap.flavor = phys_flavor::DMA;
        cap.base_frame = base_frame;
        cap.frames = pages as u32;
        match self.mint(p, cap) {
            Ok(token) => Ok((token, first.start_address().as_u64())),
            Err(e) => {
                self.dma[slot].owner_alive = false;
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
    pub fn process_write(&mut self, p: usize, target: usize, dst: u64, src: u64, len: u64) -> Result<(), Error> {
        // Copied without preemption: bounded like the map calls.
        if len > abi::limits::MAP_MAX {
            return Err(Error::InvalidArgument);
        }
        let access = if self.procs[target].threads == 0 { user::Access::Load } else { user::Access::Write };
        let (from, to) = (self.space(p), self.space(target));
        user::copy(&self.phys, (&from, src), (&to, dst), len as usize, access).map_err(|_| Error::BadAddress)
    }
}
