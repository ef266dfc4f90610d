//! Access to physical memory through a linear window.

use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use super::PAGE_SIZE;

/// Where physical address 0 appears in the kernel's address space.
///
/// On x86 this is the direct map (`arch::DIRECT_MAP_BASE`); in host tests it is
/// the start of a buffer standing in for RAM. Frames are only reached through
/// here, so a bad physical address is a kernel bug, never user input: user
/// addresses are always translated through page tables first.
#[derive(Clone, Copy, Debug)]
pub struct PhysMem {
    base: *mut u8,
}

// SAFETY: `PhysMem` is a plain address; the kernel is single-threaded and the
// host tests give each kernel its own buffer.
unsafe impl Send for PhysMem {}
// SAFETY: as for `Send`: sharing the address shares no Rust-visible state.
unsafe impl Sync for PhysMem {}

impl PhysMem {
    /// # Safety
    /// `base + p` must be valid, writable memory for every physical address `p`
    /// the kernel will touch through this window.
    pub const unsafe fn new(base: *mut u8) -> Self {
        PhysMem { base }
    }

    /// A pointer to the byte at `addr`.
    #[inline]
    pub fn ptr<T>(&self, addr: PhysAddr) -> *mut T {
        self.base.wrapping_add(addr.as_u64() as usize) as *mut T
    }

    /// The frame's bytes.
    ///
    /// # Safety
    /// The caller must own the frame (or otherwise know nobody else is using
    /// it through another reference) for the lifetime of the slice.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn frame_mut(&self, frame: PhysFrame) -> &mut [u8; PAGE_SIZE as usize] {
        // SAFETY: the window covers every frame (constructor contract); the
        // caller guarantees exclusive use.
        unsafe { &mut *self.ptr(frame.start_address()) }
    }

    /// Fill a frame with zeros.
    ///
    /// # Safety
    /// As for [`Self::frame_mut`]: nobody else uses the frame (say, it was
    /// just taken from the allocator).
    pub unsafe fn zero(&self, frame: PhysFrame) {
        // SAFETY: the caller guarantees exclusive use.
        unsafe { self.frame_mut(frame).fill(0) };
    }
}
