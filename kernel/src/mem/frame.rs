//! The physical frame allocator: one bit per 4 KiB frame.
//!
//! A bitmap rather than a free list because drivers need physically
//! contiguous runs for DMA, and because its state is easy to check: every
//! frame is either free or used, a double free is detected, and reserved
//! regions (the kernel image, boot modules, the bitmap itself) are simply bits
//! that were never cleared.

use core::ops::Range;

use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use super::PAGE_SIZE;

/// Frame allocator errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Freeing a frame that is not allocated.
    NotAllocated,
    /// Frame beyond the end of managed memory.
    OutOfRange,
}

/// Bitmap allocator over frames `0..frames`.
pub struct FrameAllocator {
    /// Bit set = frame used (allocated or reserved).
    bits: &'static mut [u64],
    frames: usize,
    free: usize,
    /// Where the next single-frame search starts.
    hint: usize,
}

impl FrameAllocator {
    /// Bytes of bitmap needed for `frames` frames.
    pub const fn bitmap_bytes(frames: usize) -> usize {
        frames.div_ceil(64) * 8
    }

    /// An allocator over `frames` frames, all of them used. Call
    /// [`Self::add_free`] for the usable regions, then [`Self::reserve`] for
    /// what must stay out of reach.
    pub fn new(bits: &'static mut [u64], frames: usize) -> Self {
        assert!(bits.len() * 64 >= frames, "bitmap too small");
        bits.fill(u64::MAX);
        FrameAllocator { bits, frames, free: 0, hint: 0 }
    }

    /// Mark the frames inside `[start, end)` (physical bytes, rounded inwards)
    /// free.
    pub fn add_free(&mut self, range: Range<u64>) {
        let first = range.start.div_ceil(PAGE_SIZE) as usize;
        let last = ((range.end / PAGE_SIZE) as usize).min(self.frames);
        for f in first..last {
            if self.test(f) {
                self.clear(f);
                self.free += 1;
            }
        }
    }

    /// Mark the frames touching `[start, end)` (rounded outwards) used.
    pub fn reserve(&mut self, range: Range<u64>) {
        let first = (range.start / PAGE_SIZE) as usize;
        let last = (range.end.div_ceil(PAGE_SIZE) as usize).min(self.frames);
        for f in first..last {
            if !self.test(f) {
                self.set(f);
                self.free -= 1;
            }
        }
    }

    /// Free frames left.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Whether the frame is currently allocated or reserved.
    pub fn is_used(&self, frame: PhysFrame) -> bool {
        let f = (frame.start_address().as_u64() / PAGE_SIZE) as usize;
        f >= self.frames || self.test(f)
    }

    /// One frame, or `None` when memory is exhausted.
    pub fn alloc(&mut self) -> Option<PhysFrame> {
        let words = self.bits.len();
        let start = self.hint / 64;
        for i in 0..words {
            let w = (start + i) % words;
            let word = self.bits[w];
            if word != u64::MAX {
                let bit = (!word).trailing_zeros() as usize;
                let f = w * 64 + bit;
                if f >= self.frames {
                    continue;
                }
                self.set(f);
                self.free -= 1;
                self.hint = f;
                return Some(frame_at(f));
            }
        }
        None
    }

    /// `count` contiguous frames whose first frame number is a multiple of
    /// `align` (in frames).
    pub fn alloc_contiguous(&mut self, count: usize, align: usize) -> Option<PhysFrame> {
        if count == 0 || count > self.free {
            return None;
        }
        let align = align.max(1);
        let mut f = 0;
        while f + count <= self.frames {
            match (f..f + count).find(|&i| self.test(i)) {
                None => {
                    for i in f..f + count {
                        self.set(i);
                    }
                    self.free -= count;
                    return Some(frame_at(f));
                }
                // Restart after the used frame, at the next aligned position.
                Some(used) => f = (used + 1).next_multiple_of(align),
            }
        }
        None
    }

    /// Give back one frame.
    pub fn free(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        self.free_contiguous(frame, 1)
    }

    /// Give back `count` frames starting at `first`. Nothing is freed if any
    /// of them is not allocated.
    pub fn free_contiguous(&mut self, first: PhysFrame, count: usize) -> Result<(), FrameError> {
        let f = (first.start_address().as_u64() / PAGE_SIZE) as usize;
        if f + count > self.frames {
            return Err(FrameError::OutOfRange);
        }
        if (f..f + count).any(|i| !self.test(i)) {
            return Err(FrameError::NotAllocated);
        }
        for i in f..f + count {
            self.clear(i);
        }
        self.free += count;
        Ok(())
    }

    fn test(&self, f: usize) -> bool {
        self.bits[f / 64] & (1 << (f % 64)) != 0
    }
    fn set(&mut self, f: usize) {
        self.bits[f / 64] |= 1 << (f % 64);
    }
    fn clear(&mut self, f: usize) {
        self.bits[f / 64] &= !(1 << (f % 64));
    }
}

fn frame_at(f: usize) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(f as u64 * PAGE_SIZE))
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn allocator(frames: usize) -> FrameAllocator {
        let bits = vec![0u64; frames.div_ceil(64)].leak();
        FrameAllocator::new(bits, frames)
    }

    fn n(f: PhysFrame) -> u64 {
        f.start_address().as_u64() / PAGE_SIZE
    }

    #[test]
    fn only_usable_minus_reserved_is_handed_out() {
        let mut a = allocator(1024);
        // Usable: [1 MiB, 3 MiB) with a partial page at each end.
        a.add_free(0x10_0000 - 0x800..0x30_0000 + 0x800);
        let usable = (0x30_0000 - 0x10_0000) / 4096;
        assert_eq!(a.free_frames(), usable);
        // Kernel at [1 MiB, 1 MiB + 10 KiB): three frames (rounded outwards).
        a.reserve(0x10_0000..0x10_0000 + 10 * 1024);
        assert_eq!(a.free_frames(), usable - 3);
        let mut got = Vec::new();
        while let Some(f) = a.alloc() {
            got.push(n(f));
        }
        assert_eq!(got.len(), usable - 3);
        assert!(got.iter().all(|&f| (0x103..0x300).contains(&f)), "{got:?}");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), usable - 3, "a frame was handed out twice");
        assert_eq!(a.free_frames(), 0);
    }

    #[test]
    fn double_free_and_range_are_detected() {
        let mut a = allocator(128);
        a.add_free(0..128 * 4096);
        let f = a.alloc().unwrap();
        assert_eq!(a.free(f), Ok(()));
        assert_eq!(a.free(f), Err(FrameError::NotAllocated));
        let far = PhysFrame::containing_address(PhysAddr::new(1 << 30));
        assert_eq!(a.free(far), Err(FrameError::OutOfRange));
        assert_eq!(a.free_frames(), 128);
    }

    #[test]
    fn contiguous_runs_respect_holes_and_alignment() {
        let mut a = allocator(256);
        a.add_free(0..256 * 4096);
        // Punch holes so the first aligned run of 16 starts at frame 32.
        a.reserve(5 * 4096..6 * 4096);
        a.reserve(20 * 4096..21 * 4096);
        let run = a.alloc_contiguous(16, 16).unwrap();
        assert_eq!(n(run), 32);
        for i in 32..48 {
            assert!(a.is_used(frame_at(i)));
        }
        let run2 = a.alloc_contiguous(4, 1).unwrap();
        assert_eq!(n(run2), 0);
        assert_eq!(a.free_contiguous(run, 16), Ok(()));
        assert!(!a.is_used(frame_at(40)));
        assert!(a.alloc_contiguous(1000, 1).is_none());
        assert!(a.alloc_contiguous(0, 1).is_none());
    }

    #[test]
    fn partial_free_of_a_run_fails_whole() {
        let mut a = allocator(64);
        a.add_free(0..64 * 4096);
        let run = a.alloc_contiguous(4, 1).unwrap();
        a.free(frame_at(n(run) as usize + 2)).unwrap();
        let before = a.free_frames();
        assert_eq!(a.free_contiguous(run, 4), Err(FrameError::NotAllocated));
        assert_eq!(a.free_frames(), before);
    }
}
