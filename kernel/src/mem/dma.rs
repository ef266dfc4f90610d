//! DMA accounting: contiguous regions a driver allocates for a device, and
//! when their frames may go back.
//!
//! A region belongs to the process that allocated it (charged to its page
//! quota) but may be mapped elsewhere too (its capability can be
//! delegated), and a device may still be pointed at it. So its frames are
//! freed only when the owner has ended *and* no page of it is mapped
//! anywhere: [`DmaTable::free_unused`] runs after every unmap and process
//! end. A slot's generation changes when it is freed, so a capability of
//! the old region is stale.

use alloc::vec::Vec;

use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};
use x86_64::PhysAddr;

use crate::kernel::OutOfMemory;
use crate::mem::paging::sw;
use crate::mem::{FrameAllocator, PAGE_SIZE};

/// A contiguous DMA allocation.
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaRegion {
    pub live: bool,
    pub gen: u32,
    pub base_frame: u32,
    pub frames: u32,
    pub owner: u16,
    pub owner_alive: bool,
    /// Pages of it mapped anywhere.
    pub maps: u32,
}

/// Every DMA region slot ([`abi::limits::DMA_REGIONS`]).
pub struct DmaTable {
    regions: Vec<DmaRegion>,
}

impl DmaTable {
    pub fn new() -> Result<DmaTable, OutOfMemory> {
        let mut regions = Vec::new();
        regions.try_reserve_exact(abi::limits::DMA_REGIONS).map_err(|_| OutOfMemory)?;
        regions.resize(abi::limits::DMA_REGIONS, DmaRegion::default());
        Ok(DmaTable { regions })
    }

    /// Every slot, live or not.
    pub fn iter(&self) -> impl Iterator<Item = &DmaRegion> {
        self.regions.iter()
    }

    /// Whether slot `slot` holds the region of generation `gen`.
    pub fn is_live(&self, slot: u32, gen: u32) -> bool {
        self.regions.get(slot as usize).is_some_and(|r| r.live && r.gen == gen)
    }

    /// A free slot, if there is one.
    pub fn free_slot(&self) -> Option<usize> {
        self.regions.iter().position(|r| !r.live)
    }

    /// Make free slot `slot` the region of `frames` frames from
    /// `base_frame`, owned by process `owner`; its new generation.
    pub fn open(&mut self, slot: usize, base_frame: u32, frames: u32, owner: usize) -> u32 {
        let r = &mut self.regions[slot];
        *r = DmaRegion {
            live: true,
            gen: r.gen.wrapping_add(1),
            base_frame,
            frames,
            owner: owner as u16,
            owner_alive: true,
            maps: 0,
        };
        r.gen
    }

    /// `pages` pages of region `slot` were mapped.
    pub fn mapped(&mut self, slot: u32, pages: u64) {
        self.regions[slot as usize].maps += pages as u32;
    }

    /// A page of a region (frame `f`) was unmapped.
    pub fn unmapped(&mut self, f: PhysFrame) {
        let n = (f.start_address().as_u64() / PAGE_SIZE) as u32;
        if let Some(r) = self.regions.iter_mut().find(|r| r.live && (r.base_frame..r.base_frame + r.frames).contains(&n)) {
            r.maps -= 1;
        }
    }

    /// Region `slot` has no owner any more (its allocation failed half way).
    pub fn disown(&mut self, slot: usize) {
        self.regions[slot].owner_alive = false;
    }

    /// Process `p` ended: its regions lose their owner.
    pub fn owner_ended(&mut self, p: usize) {
        for r in self.regions.iter_mut().filter(|r| r.live && r.owner as usize == p) {
            r.owner_alive = false;
        }
    }

    /// Free the regions nobody owns or maps any more.
    pub fn free_unused(&mut self, frames: &mut FrameAllocator) {
        for r in self.regions.iter_mut() {
            if r.live && !r.owner_alive && r.maps == 0 {
                let first = PhysFrame::containing_address(PhysAddr::new(r.base_frame as u64 * PAGE_SIZE));
                if frames.free_contiguous(first, r.frames as usize).is_err() {
                    crate::error!("DMA region at frame {:#x} was not allocated", r.base_frame);
                }
                r.live = false;
                r.gen = r.gen.wrapping_add(1);
            }
        }
    }
}

/// What unmapping a user page releases, by its software bits; whether it
/// was a frame the process owned (counted in its page quota).
pub fn release_leaf(frames: &mut FrameAllocator, dma: &mut DmaTable, f: PhysFrame, fl: Flags) -> bool {
    if fl.contains(sw::LOAN) {
        // Lent by an IPC sender: the sender still owns it.
    } else if fl.contains(sw::OWNED) {
        if frames.free(f).is_err() {
            crate::error!("user frame {:#x} was not allocated", f.start_address().as_u64());
        }
        return true;
    } else if fl.contains(sw::DMA) {
        dma.unmapped(f);
    }
    false
}
