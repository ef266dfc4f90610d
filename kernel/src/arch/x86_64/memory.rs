//! Memory bring-up: the frame allocator from the multiboot map, the
//! kernel's own page tables, and the kernel heap.
//!
//! The boot stub's tables map the first GiB at the direct-map base, so the
//! bitmap is placed below 1 GiB and written through the direct map before
//! the real tables exist. The real tables map all RAM in the direct map
//! (2 MiB pages, no-execute) and the kernel image in 4 KiB pages with the
//! permissions of each section: text read-only and executable, rodata
//! read-only, data and bss writable and no-execute.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::NonNull;

use linked_list_allocator::Heap;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use crate::boot::multiboot::BootInfo;
use crate::mem::{FrameAllocator, PageTables, PhysMem, PAGE_SIZE};

use super::{DIRECT_MAP, KERNEL_VMA};

extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __bss_end: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

const HUGE: u64 = 2 * 1024 * 1024;
const EARLY_LIMIT: u64 = 1 << 30;
/// Kernel heap size: all kernel tables are allocated from it at boot.
const HEAP_BYTES: u64 = 8 * 1024 * 1024;

/// What memory bring-up produces.
pub struct Memory {
    pub phys: PhysMem,
    pub frames: FrameAllocator,
    pub kernel_pt: PageTables,
}

/// The kernel's physical extent.
pub fn kernel_image() -> (u64, u64) {
    // SAFETY: linker-script symbols; only their addresses are used.
    unsafe { (sym(&__kernel_phys_start), sym(&__kernel_phys_end)) }
}

pub fn init(boot: &BootInfo) -> Memory {
    // SAFETY: the boot tables map the first GiB at the direct-map base; the
    // real tables map all RAM there.
    let phys = unsafe { PhysMem::new(DIRECT_MAP as *mut u8) };
    let ram_top = boot.ram_top();
    let frames = (ram_top / PAGE_SIZE) as usize;
    let bitmap_bytes = FrameAllocator::bitmap_bytes(frames) as u64;
    let (kstart, kend) = kernel_image();
    let busy_end = boot.modules().iter().map(|m| m.end).fold(kend, u64::max);
    let bitmap_at = boot
        .regions()
        .iter()
        .filter(|r| r.usable())
        .find_map(|r| {
            let at = r.start.max(busy_end).next_multiple_of(PAGE_SIZE);
            (at + bitmap_bytes <= r.end() && at + bitmap_bytes <= EARLY_LIMIT).then_some(at)
        })
        .expect("no room below 1 GiB for the frame bitmap");
    // SAFETY: `bitmap_at..+bitmap_bytes` is usable RAM below 1 GiB that no
    // module or kernel section uses; it is reserved below and never freed.
    let bits = unsafe {
        core::slice::from_raw_parts_mut(phys.ptr::<u64>(PhysAddr::new(bitmap_at)), bitmap_bytes as usize / 8)
    };
    let mut fa = FrameAllocator::new(bits, frames);
    for r in boot.regions().iter().filter(|r| r.usable()) {
        fa.add_free(r.start..r.end());
    }
    fa.reserve(0..0x10_0000);
    fa.reserve(kstart..kend);
    for m in boot.modules() {
        fa.reserve(m.start..m.end);
    }
    fa.reserve(bitmap_at..bitmap_at + bitmap_bytes);
    crate::info!(
        "memory: {} MiB usable, {} frames free; kernel {:#x}..{:#x}",
        (fa.free_frames() * 4096) >> 20,
        fa.free_frames(),
        kstart,
        kend
    );

    let kernel_pt = build_tables(&phys, &mut fa, ram_top);
    init_heap(&phys, &mut fa);
    Memory { phys, frames: fa, kernel_pt }
}

fn build_tables(phys: &PhysMem, fa: &mut FrameAllocator, ram_top: u64) -> PageTables {
    let mut pt = PageTables::new_empty(phys, fa).expect("frame for the kernel's top-level table");
    pt.populate_kernel_half(phys, fa).expect("frames for the kernel half");
    let direct = Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL;
    let mut pa = 0;
    while pa < ram_top {
        pt.map_huge(phys, fa, VirtAddr::new(DIRECT_MAP + pa), PhysAddr::new(pa), direct)
            .expect("direct map");
        pa += HUGE;
    }
    // SAFETY: linker-script symbols; only their addresses are used.
    let (text, text_end, rodata, rodata_end, data, end) = unsafe {
        (
            sym(&__text_start),
            sym(&__text_end),
            sym(&__rodata_start),
            sym(&__rodata_end),
            sym(&__data_start),
            sym(&__bss_end),
        )
    };
    let mut va = text & !(PAGE_SIZE - 1);
    while va < end {
        let flags = if va < text_end {
            Flags::GLOBAL
        } else if va >= rodata && va < rodata_end.max(data) {
            Flags::NO_EXECUTE | Flags::GLOBAL
        } else {
            Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL
        };
        let frame = PhysFrame::containing_address(PhysAddr::new(va - KERNEL_VMA));
        pt.map(phys, fa, VirtAddr::new(va), frame, flags).expect("kernel image mapping");
        va += PAGE_SIZE;
    }
    // SAFETY: the new tables map the running code, the stack (in .bss) and
    // all RAM exactly where the boot tables did; global pages are safe to
    // enable because every address space shares the kernel half.
    unsafe {
        crate::arch::load_address_space(pt.root().start_address().as_u64());
        Cr4::update(|f| *f |= Cr4Flags::PAGE_GLOBAL);
    }
    pt
}

/// The kernel heap: a linked-list allocator over contiguous frames reached
/// through the direct map. Single core with interrupts off in the kernel,
/// so the heap needs no lock.
struct KernelHeap(UnsafeCell<Heap>);
// SAFETY: see above.
unsafe impl Sync for KernelHeap {}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(UnsafeCell::new(Heap::empty()));

// SAFETY: the blocks come from `linked_list_allocator`, which hands out
// disjoint memory of the requested layout; access is exclusive (see above).
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: exclusive access (single core, interrupts off).
        let heap = unsafe { &mut *self.0.get() };
        heap.allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: exclusive access; `ptr` came from `alloc` (GlobalAlloc contract).
        unsafe { (*self.0.get()).deallocate(NonNull::new_unchecked(ptr), layout) };
    }
}

fn init_heap(phys: &PhysMem, fa: &mut FrameAllocator) {
    let frames = (HEAP_BYTES / PAGE_SIZE) as usize;
    let first = fa.alloc_contiguous(frames, 1).expect("frames for the kernel heap");
    let base = phys.ptr::<u8>(first.start_address());
    // SAFETY: the frames were just allocated for the heap and are mapped
    // through the direct map; `init` is called once, before any allocation.
    unsafe { (*HEAP.0.get()).init(base, HEAP_BYTES as usize) };
}
