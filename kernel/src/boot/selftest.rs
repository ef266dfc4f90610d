//! Boot-time self-tests (`selftest=` on the kernel command line): stop the
//! boot the way a kernel bug would, or send stray interrupts, so that the
//! runner can check the reports a real failure gives.

use x86_64::VirtAddr;

use crate::arch::x86_64::{lapic, with_kernel};

/// Where `selftest=fault` reads: in the kernel half but in no mapping
/// (between the direct map and the kernel stacks).
const SELF_TEST_FAULT_VA: u64 = 0xffff_c000_0000_0000;

/// Where `selftest=smap` and `selftest=smep` map a user page (in the
/// kernel's own tables, which have no user half otherwise).
const SELF_TEST_USER_VA: u64 = 0x40_0000;

/// Vectors `selftest=irq` sends itself: no device or kernel uses them (64,
/// the first MSI vector, is not handed out yet when the self-test runs), and
/// exception vectors with an error code (#AC, #PF, #DF on its own stack)
/// and without (#UD), which an external interrupt arrives without.
const SELF_TEST_VECTORS: [u8; 7] = [64, 153, 254, 17, 14, 8, 6];

/// `selftest=panic` and `selftest=fault` stop the boot the way a kernel bug
/// would, so a boot test can check the report (message, registers,
/// backtrace) and the power-off status a real failure gives. `selftest=smap`
/// and `selftest=smep` read and run a user page from the kernel, which the
/// CPU must stop (the same report). `selftest=irq` sends the kernel
/// interrupts on vectors nothing uses, as a stray MSI would, and boots on.
pub fn self_test(what: Option<&str>) {
    match what {
        None => {}
        Some("panic") => panic!("self-test: panic on request"),
        Some("fault") => {
            // SAFETY: the read changes nothing: the address is in no
            // mapping, so it faults, and the fault handler powers off.
            let v = unsafe { core::ptr::read_volatile(SELF_TEST_FAULT_VA as *const u64) };
            panic!("self-test: reading {SELF_TEST_FAULT_VA:#x} gave {v:#x} instead of a fault");
        }
        Some("smap") => {
            let va = self_test_user_page(0, x86_64::structures::paging::PageTableFlags::NO_EXECUTE);
            // SAFETY: the page is mapped just above (a zeroed frame); under
            // SMAP the read faults and the fault handler powers off.
            let v = unsafe { core::ptr::read_volatile(va as *const u64) };
            panic!("self-test: the kernel read user memory at {va:#x} ({v:#x}) without a fault: SMAP is off");
        }
        Some("smep") => {
            let va = self_test_user_page(0xc3, x86_64::structures::paging::PageTableFlags::empty());
            // SAFETY: the page holds `ret`s, so even without SMEP the call
            // comes straight back; with SMEP the fetch faults.
            let f: extern "C" fn() = unsafe { core::mem::transmute(va as *const ()) };
            f();
            panic!("self-test: the kernel ran user code at {va:#x} without a fault: SMEP is off");
        }
        Some("irq") => {
            for v in SELF_TEST_VECTORS {
                lapic::self_ipi(v);
            }
            crate::info!("self-test: sent interrupts on vectors {SELF_TEST_VECTORS:?} to ourselves");
        }
        Some(other) => crate::warn!("unknown selftest={other} (known: panic, fault, smap, smep, irq)"),
    }
}

/// Map a user page filled with `byte` at [`SELF_TEST_USER_VA`] in the
/// kernel's tables (the active ones during boot).
fn self_test_user_page(byte: u8, extra: x86_64::structures::paging::PageTableFlags) -> u64 {
    use x86_64::structures::paging::PageTableFlags as Flags;
    with_kernel(|k| {
        let frame = k.frames.alloc().expect("a frame for the self-test");
        // SAFETY: the frame was just allocated, so nothing else uses it.
        unsafe { core::ptr::write_bytes(k.phys.ptr::<u8>(frame.start_address()), byte, 4096) };
        let flags = Flags::PRESENT | Flags::USER_ACCESSIBLE | extra;
        k.kernel_pt.map(&k.phys, &mut k.frames, VirtAddr::new(SELF_TEST_USER_VA), frame, flags).expect("map the self-test page");
    });
    SELF_TEST_USER_VA
}
