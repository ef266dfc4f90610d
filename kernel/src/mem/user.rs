//! Reading and writing user memory.
//!
//! Accesses here go through the owning address space's page tables: the
//! page must be present, user-accessible and RAM (and writable, for writes),
//! and the bytes are then reached through the physical window. This works
//! for any address space, not only the active one, which IPC needs (the
//! receiver's buffer is written while the sender's tables are loaded), and a
//! bad pointer is an error code, never a kernel fault. The one other way the
//! kernel reads user memory is the IPC copy from the active address space
//! through the MMU (`arch::read_user`), after the same checks, with a
//! page-fault fixup for pages that vanish.

use core::ptr;

use x86_64::structures::paging::PageTableFlags as Flags;
use x86_64::{PhysAddr, VirtAddr};

use super::paging::sw;
use super::{PageTables, PhysMem, PAGE_SIZE};

/// A user pointer that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadAddress;

/// Which side of a user-to-user copy failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyError {
    Source,
    Destination,
}

/// `[va, va + len)` lies inside user space (an empty range anywhere below the
/// top is fine).
#[inline]
pub fn check_range(va: u64, len: u64) -> Result<(), BadAddress> {
    match va.checked_add(len) {
        Some(end) if end <= abi::USER_TOP && (len == 0 || va >= abi::USER_BOTTOM) => Ok(()),
        _ => Err(BadAddress),
    }
}

/// [`check_range`] of one page at `va`, in one compare (the IPC fast
/// path's window check).
#[inline(always)]
pub fn check_page(va: u64) -> Result<(), BadAddress> {
    const PAGE: u64 = abi::PAGE_SIZE as u64;
    // Below the bottom wraps to far above the limit.
    if va.wrapping_sub(abi::USER_BOTTOM) <= abi::USER_TOP - PAGE - abi::USER_BOTTOM {
        Ok(())
    } else {
        Err(BadAddress)
    }
}

/// How the kernel is about to touch a user page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Write where the user may write.
    Write,
    /// Write as the loader of the process: also read-only pages if the
    /// process owns them; otherwise only writable pages, never a lent one.
    Load,
}

/// The physical address of the user byte at `va`, if its page allows the
/// access. Only RAM frames qualify: device memory behind a user buffer is
/// refused, since the kernel reaches memory through a window over RAM.
#[inline(always)]
fn resolve(phys: &PhysMem, pt: &PageTables, va: u64, access: Access) -> Result<PhysAddr, BadAddress> {
    let (pa, f) = pt.translate_4k(phys, VirtAddr::new(va)).ok_or(BadAddress)?;
    let allowed = f.contains(Flags::USER_ACCESSIBLE)
        && f.intersects(sw::RAM)
        && match access {
            Access::Read => true,
            Access::Write => f.contains(Flags::WRITABLE),
            Access::Load => f.contains(sw::OWNED) || (f.contains(Flags::WRITABLE) && !f.contains(sw::LOAN)),
        };
    if allowed {
        Ok(pa)
    } else {
        Err(BadAddress)
    }
}

/// Split `[va, va + len)` into runs that do not cross a page: `(address,
/// offset into the range, length)`.
#[inline(always)]
fn chunks(va: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let mut done = 0usize;
    core::iter::from_fn(move || {
        (done < len).then(|| {
            let at = va + done as u64;
            let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(len - done);
            let item = (at, done, n);
            done += n;
            item
        })
    })
}

/// Copy user bytes at `va` into `out`.
pub fn read(phys: &PhysMem, pt: &PageTables, va: u64, out: &mut [u8]) -> Result<(), BadAddress> {
    check_range(va, out.len() as u64)?;
    for (at, off, n) in chunks(va, out.len()) {
        let pa = resolve(phys, pt, at, Access::Read)?;
        // SAFETY: `pa..pa+n` lies in one present user page (checked above), so
        // it is valid memory in the physical window; `out` is a kernel buffer
        // that cannot overlap a user frame.
        unsafe { ptr::copy_nonoverlapping(phys.ptr::<u8>(pa), out.as_mut_ptr().add(off), n) };
    }
    Ok(())
}

/// Copy `data` to user memory at `va` ([`Access::Write`] or [`Access::Load`]).
pub fn write(phys: &PhysMem, pt: &PageTables, va: u64, data: &[u8], access: Access) -> Result<(), BadAddress> {
    check_range(va, data.len() as u64)?;
    for (at, off, n) in chunks(va, data.len()) {
        let pa = resolve(phys, pt, at, access)?;
        // SAFETY: as in `read`, with the page checked writable when required.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr().add(off), phys.ptr::<u8>(pa), n) };
    }
    Ok(())
}

/// Copy `len` bytes from one address space to another (or the same), the
/// destination accessed as `access` ([`Access::Load`] for a loader filling
/// another process's read-only pages).
pub fn copy(
    phys: &PhysMem,
    src: (&PageTables, u64),
    dst: (&PageTables, u64),
    len: usize,
    access: Access,
) -> Result<(), CopyError> {
    let (spt, sva) = src;
    let (dpt, dva) = dst;
    check_range(sva, len as u64).map_err(|_| CopyError::Source)?;
    check_range(dva, len as u64).map_err(|_| CopyError::Destination)?;
    let mut done = 0usize;
    while done < len {
        let s = sva + done as u64;
        let d = dva + done as u64;
        let n = ((PAGE_SIZE - s % PAGE_SIZE).min(PAGE_SIZE - d % PAGE_SIZE) as usize).min(len - done);
        let spa = resolve(phys, spt, s, Access::Read).map_err(|_| CopyError::Source)?;
        let dpa = resolve(phys, dpt, d, access).map_err(|_| CopyError::Destination)?;
        // SAFETY: both runs lie inside single present user pages with the
        // needed permissions; they may be the same frame (a process talking to
        // itself), so `copy` (memmove) is used.
        unsafe { ptr::copy(phys.ptr::<u8>(spa), phys.ptr::<u8>(dpa), n) };
        done += n;
    }
    Ok(())
}

/// Copy `len` user bytes at `va` to physical memory at `dst`: the IPC copy
/// path, one page-table walk per source page.
///
/// # Safety
/// `dst..dst + len` must be RAM in `phys`'s window that no reference covers
/// (a receive window's frame, found through a page table).
pub unsafe fn read_phys(phys: &PhysMem, pt: &PageTables, va: u64, dst: PhysAddr, len: usize) -> Result<(), BadAddress> {
    check_range(va, len as u64)?;
    for (at, off, n) in chunks(va, len) {
        let pa = resolve(phys, pt, at, Access::Read)?;
        // SAFETY: the source lies in one present user page; the destination
        // is memory the caller vouches for. They may be the same frame (a
        // process sending to itself), hence `copy`.
        unsafe { ptr::copy(phys.ptr::<u8>(pa), phys.ptr::<u8>(dst + off as u64), n) };
    }
    Ok(())
}

/// Call `f(offset, frame address, length)` for each run of `[va, va + len)`
/// that lies in one page, after checking the page allows `access`; stops at
/// the first failure.
#[inline(always)]
pub fn for_each_frame(
    phys: &PhysMem,
    pt: &PageTables,
    va: u64,
    len: usize,
    access: Access,
    mut f: impl FnMut(usize, PhysAddr, usize) -> Result<(), BadAddress>,
) -> Result<(), BadAddress> {
    check_range(va, len as u64)?;
    for (at, off, n) in chunks(va, len) {
        let pa = resolve(phys, pt, at, access)?;
        f(off, pa, n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::paging::sw;
    use crate::mem::testing::FakeRam;

    #[test]
    fn check_page_is_check_range_of_a_page() {
        const PAGE: u64 = abi::PAGE_SIZE as u64;
        let edges = [0, 1, abi::USER_BOTTOM - 1, abi::USER_BOTTOM, abi::USER_TOP - PAGE - 1, abi::USER_TOP - PAGE, abi::USER_TOP - PAGE + 1, abi::USER_TOP, 1 << 63, u64::MAX - PAGE, u64::MAX];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random = (0..10_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x >> (x % 64)
        });
        for va in edges.into_iter().chain(edges.map(|e| e & !(PAGE - 1))).chain(random) {
            assert_eq!(check_page(va).is_ok(), check_range(va, PAGE).is_ok(), "{va:#x}");
        }
    }

    #[test]
    fn reads_writes_and_copies_across_pages() {
        let mut ram = FakeRam::new(128);
        let (phys, frames) = ram.parts();
        let k = PageTables::new_empty(&phys, frames).unwrap();
        let mut a = PageTables::new_user(&phys, frames, &k).unwrap();
        let mut b = PageTables::new_user(&phys, frames, &k).unwrap();
        let rw = Flags::USER_ACCESSIBLE | Flags::WRITABLE | sw::OWNED;
        for va in [0x10000u64, 0x11000] {
            let f = frames.alloc().unwrap();
            a.map(&phys, frames, VirtAddr::new(va), f, rw).unwrap();
            let f = frames.alloc().unwrap();
            b.map(&phys, frames, VirtAddr::new(va + 0x5000), f, rw).unwrap();
        }
        let data: [u8; 300] = core::array::from_fn(|i| i as u8);
        // Straddles the page boundary in A.
        write(&phys, &a, 0x10f00, &data, Access::Write).unwrap();
        let mut back = [0u8; 300];
        read(&phys, &a, 0x10f00, &mut back).unwrap();
        assert_eq!(back, data);
        // Copy to B with a different page offset, so the chunks differ.
        copy(&phys, (&a, 0x10f00), (&b, 0x15010), 300, Access::Write).unwrap();
        read(&phys, &b, 0x15010, &mut back).unwrap();
        assert_eq!(back, data);
        // Unmapped, read-only, out-of-range and overflowing addresses fail.
        assert_eq!(read(&phys, &a, 0x12000, &mut back), Err(BadAddress));
        assert_eq!(read(&phys, &a, 0x11f00, &mut back), Err(BadAddress));
        assert_eq!(read(&phys, &a, u64::MAX - 10, &mut back), Err(BadAddress));
        assert_eq!(read(&phys, &a, 0xffff_8000_0000_0000, &mut back[..1]), Err(BadAddress));
        assert_eq!(copy(&phys, (&a, 0x10f00), (&b, 0x30000), 10, Access::Write), Err(CopyError::Destination));
        assert_eq!(copy(&phys, (&a, 0x30000), (&b, 0x15000), 10, Access::Write), Err(CopyError::Source));
        let f = frames.alloc().unwrap();
        a.map(&phys, frames, VirtAddr::new(0x20000), f, Flags::USER_ACCESSIBLE | sw::OWNED).unwrap();
        assert_eq!(write(&phys, &a, 0x20000, &data, Access::Write), Err(BadAddress));
        assert_eq!(write(&phys, &a, 0x20000, &data, Access::Load), Ok(()));
        // Kernel-only pages are not user memory.
        let f = frames.alloc().unwrap();
        a.map(&phys, frames, VirtAddr::new(0x21000), f, Flags::WRITABLE | sw::OWNED).unwrap();
        assert_eq!(read(&phys, &a, 0x21000, &mut back), Err(BadAddress));
        // Device memory (no RAM marker) behind a user buffer is refused.
        let f = frames.alloc().unwrap();
        a.map(&phys, frames, VirtAddr::new(0x22000), f, Flags::USER_ACCESSIBLE | Flags::WRITABLE | Flags::NO_CACHE).unwrap();
        assert_eq!(read(&phys, &a, 0x22000, &mut back[..4]), Err(BadAddress));
        assert_eq!(write(&phys, &a, 0x22000, &data[..4], Access::Write), Err(BadAddress));
    }

    #[test]
    fn range_checks() {
        assert!(check_range(0x1000, 10).is_ok());
        assert!(check_range(0, 0).is_ok());
        assert!(check_range(0, 1).is_err());
        assert!(check_range(abi::USER_TOP - 1, 1).is_ok());
        assert!(check_range(abi::USER_TOP, 1).is_err());
        assert!(check_range(u64::MAX, 2).is_err());
    }
}
