//! Memory: anonymous mappings, physical ranges, DMA, and the heap.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::call::{DmaAddrArgs, DmaAllocArgs, MapAnonArgs, MapPhysArgs, NoArgs, PhysDeriveArgs, UnmapArgs};
use abi::{Error, MapFlags, RightsMask, SyscallClass};

use crate::sys::calls;

/// Map zeroed memory into this process.
pub fn map_anon(va: u64, len: u64, flags: MapFlags) -> Result<(), Error> {
    calls::MAP_ANON.call(crate::caps::self_process(), MapAnonArgs { addr: va, len, flags }).map(|_| ())
}

/// Unmap part of this process.
///
/// # Safety
/// Nothing in the range may be used again: no reference, stack, heap,
/// static or window of this program may lie in it.
pub unsafe fn unmap(va: u64, len: u64) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    unsafe { calls::UNMAP.call(crate::caps::self_process(), UnmapArgs { addr: va, len }) }.map(|_| ())
}

static NEXT_VA: AtomicU64 = AtomicU64::new(abi::layout::USER_MAPPINGS);

/// Reserve `len` bytes (rounded up to pages) of address space for the
/// caller's own mappings, with an unmapped guard page after it.
pub fn reserve(len: u64) -> u64 {
    let len = len.next_multiple_of(abi::PAGE_SIZE as u64) + abi::PAGE_SIZE as u64;
    NEXT_VA.fetch_add(len, Ordering::Relaxed)
}

/// A capability for a physical range.
#[derive(Debug, PartialEq, Eq)]
pub struct PhysRange(pub u64);

impl PhysRange {
    /// Map `len` bytes at `offset` of the range at `va`.
    pub fn map(&self, va: u64, offset: u64, len: u64, flags: MapFlags) -> Result<(), Error> {
        calls::MAP_PHYS.call(self.0, MapPhysArgs { addr: va, offset, len, flags }).map(|_| ())
    }

    /// A capability for `len` bytes at `offset`, with at most `rights`.
    pub fn derive(&self, offset: u64, len: u64, rights: impl Into<RightsMask>) -> Result<PhysRange, Error> {
        calls::PHYS_DERIVE.call(self.0, PhysDeriveArgs { offset, len, rights: rights.into() }).map(|r| PhysRange(r.value))
    }

    /// (physical base, length in bytes).
    pub fn info(&self) -> Result<(u64, u64), Error> {
        calls::PHYS_INFO.call(self.0, NoArgs {}).map(|r| (r.base, r.len))
    }
}

/// The physical address behind `va`, which must be in one of our DMA
/// regions or in a page lent to us (at a receive window, until the reply).
pub fn dma_addr(va: u64) -> Result<u64, Error> {
    calls::DMA_ADDR.call(crate::class_token(SyscallClass::Dma), DmaAddrArgs { addr: va }).map(|r| r.value)
}

/// `pages` contiguous zeroed physical pages: (capability, physical address).
pub fn dma_alloc(pages: u64) -> Result<(PhysRange, u64), Error> {
    calls::DMA_ALLOC.call(crate::class_token(SyscallClass::Dma), DmaAllocArgs { pages }).map(|r| (PhysRange(r.token), r.phys))
}

/// The least the heap grows by.
pub(crate) const GROW_MIN: u64 = 256 * 1024;

/// Allocate `layout` from `heap`, whose memory ends at `end`; when it has
/// no room, grow it by at least [`GROW_MIN`] (whole pages, enough for the
/// layout at any alignment) through `map(end, len)`, which maps that much
/// at `end` or answers false (then the allocation fails and the heap is as
/// it was).
///
/// # Safety
/// `heap` manages exactly the memory up to `end`, and `map` returning true
/// means `len` bytes at `end` are mapped, writable and unused.
#[cfg_attr(not(any(target_os = "none", test)), allow(dead_code))]
pub(crate) unsafe fn allocate(
    heap: &mut linked_list_allocator::Heap,
    end: &mut u64,
    layout: core::alloc::Layout,
    map: impl FnOnce(u64, u64) -> bool,
) -> *mut u8 {
    if let Ok(p) = heap.allocate_first_fit(layout) {
        return p.as_ptr();
    }
    let grow = (layout.size() as u64 + layout.align() as u64 + 4096).max(GROW_MIN).next_multiple_of(4096);
    if !map(*end, grow) {
        return core::ptr::null_mut();
    }
    // SAFETY: the caller's contract: the new pages directly follow the heap.
    unsafe { heap.extend(grow as usize) };
    *end += grow;
    heap.allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
}

#[cfg(target_os = "none")]
pub(crate) mod heap {
    //! The heap: a linked-list allocator that maps more memory when full.

    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicBool, Ordering};

    use linked_list_allocator::Heap;

    const INITIAL: u64 = 256 * 1024;

    struct UserHeap {
        lock: AtomicBool,
        heap: UnsafeCell<Heap>,
        end: UnsafeCell<u64>,
    }

    // SAFETY: all access to `heap` and `end` happens under `lock`.
    unsafe impl Sync for UserHeap {}

    #[global_allocator]
    static HEAP: UserHeap = UserHeap {
        lock: AtomicBool::new(false),
        heap: UnsafeCell::new(Heap::empty()),
        end: UnsafeCell::new(0),
    };

    impl UserHeap {
        fn with<R>(&self, f: impl FnOnce(&mut Heap, &mut u64) -> R) -> R {
            let mut tries = 0u32;
            while self.lock.swap(true, Ordering::Acquire) {
                tries += 1;
                if tries < 64 {
                    core::hint::spin_loop();
                } else {
                    // The holder may be a lower-priority thread of ours
                    // that cannot run while we spin: step aside for it.
                    // Sleeping lets any priority run; yielding is the
                    // fallback for a program without the time class.
                    if crate::time::sleep_ns(1).is_err() {
                        let _ = crate::time::yield_now();
                    }
                }
            }
            // SAFETY: the lock gives exclusive access.
            let r = unsafe { f(&mut *self.heap.get(), &mut *self.end.get()) };
            self.lock.store(false, Ordering::Release);
            r
        }
    }

    // SAFETY: every allocation comes from `linked_list_allocator` under the
    // lock, which hands out disjoint blocks of the requested layout.
    unsafe impl GlobalAlloc for UserHeap {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            self.with(|heap, end| {
                // SAFETY: `map_anon` maps fresh pages at `end`, right after
                // the heap, or fails.
                unsafe {
                    super::allocate(heap, end, layout, |at, len| {
                        super::map_anon(at, len, abi::MapFlags::READ | abi::MapFlags::WRITE).is_ok()
                    })
                }
            })
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `alloc` with this layout.
            self.with(|heap, _| unsafe { heap.deallocate(NonNull::new_unchecked(ptr), layout) })
        }
    }

    /// Map the first part of the heap. A program that cannot get its heap
    /// says so and stops, rather than fail on its first allocation.
    pub fn init() {
        let base = abi::layout::HEAP_BASE;
        if let Err(e) = super::map_anon(base, INITIAL, abi::MapFlags::READ | abi::MapFlags::WRITE) {
            crate::println!("runtime: cannot map the heap: {e:?}");
            crate::exit(1);
        }
        HEAP.with(|heap, end| {
            // SAFETY: the pages were just mapped for the heap.
            unsafe { heap.init(base as *mut u8, INITIAL as usize) };
            *end = base + INITIAL;
        });
    }
}
