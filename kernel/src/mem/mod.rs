//! Physical memory, page frames and page tables.
//!
//! The kernel reaches physical memory through one linear window (the direct
//! map on x86, a plain heap buffer in host tests). Everything here is written
//! against [`PhysMem`], which hides that difference, so the frame allocator and
//! the page-table code are the same on the host and on the machine. DMA
//! regions are accounted for in [`dma`].

pub mod dma;
pub mod frame;
pub mod paging;
pub mod pcid;
pub mod phys;
pub mod user;

pub use frame::FrameAllocator;
pub use paging::PageTables;
pub use phys::PhysMem;

/// Bytes in a page / frame.
pub const PAGE_SIZE: u64 = 4096;

/// Fake RAM for host tests: a page-aligned buffer and an allocator over it.
#[cfg(test)]
pub mod testing {
    extern crate std;
    use std::boxed::Box;
    use std::vec;

    use super::{FrameAllocator, PhysMem, PAGE_SIZE};

    #[repr(C, align(4096))]
    struct Page([u8; PAGE_SIZE as usize]);

    /// `frames` frames of zeroed memory; frame 0 is kept back so that no
    /// frame has physical address 0.
    pub struct FakeRam {
        _mem: Box<[Page]>,
        phys: PhysMem,
        frames: FrameAllocator,
    }

    impl FakeRam {
        pub fn new(frames: usize) -> Self {
            let mut mem: Box<[Page]> = (0..frames).map(|_| Page([0; PAGE_SIZE as usize])).collect();
            // SAFETY: the buffer lives as long as the FakeRam and covers every
            // frame the allocator hands out.
            let phys = unsafe { PhysMem::new(mem.as_mut_ptr() as *mut u8) };
            let bits = vec![0u64; frames.div_ceil(64)].leak();
            let mut alloc = FrameAllocator::new(bits, frames);
            alloc.add_free(PAGE_SIZE..frames as u64 * PAGE_SIZE);
            FakeRam { _mem: mem, phys, frames: alloc }
        }

        pub fn parts(&mut self) -> (PhysMem, &mut FrameAllocator) {
            (self.phys, &mut self.frames)
        }

        /// Give the allocator away (to a kernel under test), keeping the memory.
        pub fn split(self) -> (FakeRamMemory, PhysMem, FrameAllocator) {
            (FakeRamMemory { _mem: self._mem }, self.phys, self.frames)
        }
    }

    /// Keeps fake RAM alive after its allocator was moved elsewhere.
    pub struct FakeRamMemory {
        _mem: Box<[Page]>,
    }
}
