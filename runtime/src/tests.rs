//! Host tests of the runtime's own logic: the start block as a program
//! sees it (arguments, start capabilities), the heap's growth, and the
//! typed results the wrappers hand back.

use std::alloc::Layout;
use std::boxed::Box;
use std::vec::Vec;

use abi::start::{self, InitCap, StartInfo};

/// A start block built by `abi::start::build` (as a spawner does) at the
/// top of a stack in host memory, parsed as `_start` does; leaked, as the
/// real one lives for the whole program.
fn start_block(args: &[&str], caps: &[InitCap]) -> &'static StartInfo<'static> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let stack: &'static mut [u64] = Box::leak(vec![0u64; 1024].into_boxed_slice());
    let top = stack.as_ptr() as u64 + 8 * 1024;
    let mut out = vec![0u8; 8192];
    let (rsp, used) = start::build(top, &args, caps, &mut out).unwrap();
    // The bytes belong at `rsp` in the "new address space": here, the stack.
    let at = (rsp - stack.as_ptr() as u64) as usize;
    let bytes: &mut [u8] = bytemuck_u8(stack);
    bytes[at..at + used].copy_from_slice(&out[..used]);
    let block: &'static [u8] = &bytes[at..at + used];
    Box::leak(Box::new(StartInfo::parse(rsp, block).unwrap()))
}

fn bytemuck_u8(words: &'static mut [u64]) -> &'static mut [u8] {
    let len = words.len() * 8;
    // SAFETY: any bytes are valid u8s; the slice takes over the borrow.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, len) }
}

#[test]
fn the_start_block_gives_the_arguments_and_the_capabilities() {
    let caps = [InitCap { id: abi::cap_id::SELF_PROCESS, token: 0x1111 }, InitCap { id: 0x1000, token: 0x2222 }];
    let info = start_block(&["prog", "level=3", "plain", "ümlaut"], &caps);
    let args = crate::Args::new(info);
    assert_eq!(args.len(), 4);
    assert_eq!(args.get(0), Some("prog"));
    assert_eq!(args.get(3), Some("ümlaut"));
    assert_eq!(args.get(4), None);
    assert_eq!(args.value("level"), Some("3"));
    assert_eq!(args.value("plain"), None, "a flag is not a key=value");
    assert_eq!(args.iter().collect::<Vec<_>>(), ["prog", "level=3", "plain", "ümlaut"]);

    crate::caps::install(info.caps());
    assert_eq!(crate::caps::self_process(), 0x1111);
    assert_eq!(crate::init_cap(0x1000), Some(0x2222));
    assert_eq!(crate::init_cap(0x1001), None);
    assert_eq!(crate::caps::all().collect::<Vec<_>>(), caps);
}

/// Host memory standing in for the heap's address space: `mapped` bytes of
/// it are "mapped"; `map` maps more right after, up to the whole buffer.
struct Space {
    base: u64,
    size: u64,
    mapped: u64,
    calls: Vec<(u64, u64)>,
}

impl Space {
    fn new(size: usize, mapped: u64) -> Space {
        let buf: &'static mut [u64] = Box::leak(vec![0u64; size / 8].into_boxed_slice());
        Space { base: buf.as_mut_ptr() as u64, size: size as u64, mapped, calls: Vec::new() }
    }

    fn map(&mut self, at: u64, len: u64) -> bool {
        self.calls.push((at - self.base, len));
        if at != self.base + self.mapped || self.mapped + len > self.size {
            return false;
        }
        self.mapped += len;
        true
    }
}

#[test]
fn the_heap_grows_by_whole_pages_right_after_itself() {
    let mut space = Space::new(4 << 20, 64 * 1024);
    let mut heap = linked_list_allocator::Heap::empty();
    // SAFETY: the first 64 KiB of the buffer are the heap's.
    unsafe { heap.init(space.base as *mut u8, space.mapped as usize) };
    let mut end = space.base + space.mapped;
    let small = Layout::from_size_align(1000, 8).unwrap();
    let mut got = Vec::new();
    for _ in 0..40 {
        // SAFETY: `Space::map` extends the buffer's mapped part at `end`.
        let p = unsafe { crate::mem::allocate(&mut heap, &mut end, small, |a, l| space.map(a, l)) };
        assert!(!p.is_null());
        assert!((p as u64) >= space.base && (p as u64) + 1000 <= end, "inside the heap");
        got.push(p as u64);
    }
    assert!(space.calls.is_empty(), "40 KB fit in the first 64 KiB");
    // A block larger than what is left grows the heap once, at its end.
    let big = Layout::from_size_align(300 * 1024, 4096).unwrap();
    // SAFETY: as above.
    let p = unsafe { crate::mem::allocate(&mut heap, &mut end, big, |a, l| space.map(a, l)) };
    assert!(!p.is_null() && (p as u64).is_multiple_of(4096));
    assert_eq!(space.calls.len(), 1);
    let (at, len) = space.calls[0];
    assert_eq!(at, 64 * 1024, "grown right after the heap");
    assert!(len.is_multiple_of(4096) && len >= 300 * 1024 + 4096 && len >= crate::mem::GROW_MIN);
    assert_eq!(end, space.base + 64 * 1024 + len);
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 40, "no block handed out twice");
}

#[test]
fn a_heap_that_cannot_grow_fails_the_allocation_and_stays_as_it_was() {
    let mut space = Space::new(512 * 1024, 64 * 1024);
    let mut heap = linked_list_allocator::Heap::empty();
    // SAFETY: as in the test above.
    unsafe { heap.init(space.base as *mut u8, space.mapped as usize) };
    let mut end = space.base + space.mapped;
    let huge = Layout::from_size_align(1 << 20, 8).unwrap();
    // SAFETY: `Space::map` refuses what does not fit the buffer.
    let p = unsafe { crate::mem::allocate(&mut heap, &mut end, huge, |a, l| space.map(a, l)) };
    assert!(p.is_null());
    assert_eq!(end, space.base + 64 * 1024);
    assert_eq!(heap.size(), 64 * 1024);
    // Small allocations still come from what there is.
    let small = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: as above.
    assert!(!unsafe { crate::mem::allocate(&mut heap, &mut end, small, |a, l| space.map(a, l)) }.is_null());
}

#[test]
fn wrappers_read_results_from_the_abi_fields() {
    // A reply's registers as the kernel writes them: result, cap, reply_len.
    let r = abi::call::SendResults::from_regs(&[7, 0x99, 32, 0]).unwrap();
    assert_eq!(crate::ipc::Reply::from(r), crate::ipc::Reply { result: 7, cap: 0x99, len: 32 });
}
