//! Descriptor tables and the `syscall` MSRs.
//!
//! The GDT layout is fixed by `sysret`: user data must sit 8 bytes below
//! user code, both 16 and 8 bytes above the selector base in STAR.
//! Double fault, NMI and machine check run on their own stacks (IST), so
//! they work even when the kernel stack is gone (a guard-page hit).
//!
//! Also here: the CPU's own guards against user programs, each turned on
//! where CPUID reports it (SMEP: the kernel never runs user code; SMAP: it
//! touches user memory only between `stac` and `clac`; UMIP: `sgdt`, `sidt`
//! and friends fault in ring 3).

use core::cell::UnsafeCell;

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, GS, SS};
use x86_64::instructions::tables::{lidt, load_tss};
use x86_64::registers::control::{Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::idt::{Entry, HandlerFunc};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::{PrivilegeLevel, VirtAddr};

use super::entry::{isr_stubs, smap_sites, syscall_entry, STUB_STRIDE};
use super::{DIRECT_MAP, KERNEL_VMA};

pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_SS: u16 = 0x10;
pub const USER_SS: u16 = 0x18 | 3;
pub const USER_CS: u16 = 0x20 | 3;

/// IST slots (1-based in the IDT, 0-based in the TSS).
const IST_DOUBLE_FAULT: u8 = 1;
const IST_NMI: u8 = 2;
const IST_MACHINE_CHECK: u8 = 3;
const IST_STACK: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK]);

struct Cpu {
    gdt: GlobalDescriptorTable,
    tss: TaskStateSegment,
    /// All 256 vectors, each to its stub. (Not the crate's
    /// `InterruptDescriptorTable`: that one cannot set the reserved
    /// vectors 15, 22-27 and 31, and a stray interrupt there must still
    /// reach the "unexpected interrupt" report.)
    idt: [Entry<HandlerFunc>; 256],
    ist: [Stack; 3],
}

/// Per-CPU tables; written during `init` and then only `tss.rsp0` changes.
#[repr(transparent)]
pub(super) struct CpuCell(UnsafeCell<Cpu>);
// SAFETY: single core; see `super::KERNEL`.
unsafe impl Sync for CpuCell {}

pub(super) static CPU: CpuCell = CpuCell(UnsafeCell::new(Cpu {
    gdt: GlobalDescriptorTable::new(),
    tss: TaskStateSegment::new(),
    idt: [const { Entry::missing() }; 256],
    ist: [const { Stack([0; IST_STACK]) }; 3],
}));

/// Where `tss.rsp0` is in [`CPU`], for the syscall entry, which takes the
/// kernel stack from there, and the assembly fast path
/// (`super::fastpath`), which sets it on its thread switches.
pub(super) const RSP0_AT: usize =
    core::mem::offset_of!(Cpu, tss) + core::mem::offset_of!(TaskStateSegment, privilege_stack_table);

/// The per-CPU tables.
///
/// # Safety
/// No other reference from `cpu` may be live while the returned one is used
/// (single core: callers use it and drop it before returning).
unsafe fn cpu() -> &'static mut Cpu {
    // SAFETY: single core; the caller rules out a second reference.
    unsafe { &mut *CPU.0.get() }
}

/// Load the GDT, TSS and IDT and program `syscall`.
pub fn init() {
    // No FPU state is saved or restored, so user programs must not have one:
    // with EM set x87 and MMX instructions fault (#NM, #UD), and with
    // CR4.OSFXSR clear so do SSE instructions (#UD). Nothing can then pass
    // through the shared registers between processes.
    // SAFETY: the kernel itself is built soft-float and uses no FPU.
    unsafe {
        x86_64::registers::control::Cr0::update(|f| {
            *f |= Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::NUMERIC_ERROR
        })
    };
    // SAFETY: the only reference: `init` runs once, before anything else
    // uses the tables.
    let c = unsafe { cpu() };
    for (i, slot) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK].iter().enumerate() {
        let top = c.ist[i].0.as_ptr() as u64 + IST_STACK as u64;
        c.tss.interrupt_stack_table[*slot as usize - 1] = VirtAddr::new(top);
    }
    let kcode = c.gdt.append(Descriptor::kernel_code_segment());
    let kdata = c.gdt.append(Descriptor::kernel_data_segment());
    let udata = c.gdt.append(Descriptor::user_data_segment());
    let ucode = c.gdt.append(Descriptor::user_code_segment());
    // SAFETY: the TSS is a static that lives forever.
    let tss = c.gdt.append(Descriptor::tss_segment(unsafe { &*(&c.tss as *const TaskStateSegment) }));
    assert_eq!((kcode.0, kdata.0, udata.0, ucode.0), (KERNEL_CS, KERNEL_SS, USER_SS, USER_CS));
    // SAFETY: the GDT is static; the selectors just created are valid, and
    // the code and stack segments match what the CPU is using.
    unsafe {
        c.gdt.load_unsafe();
        CS::set_reg(kcode);
        SS::set_reg(kdata);
        // Null data segments (the boot stub left its own in FS and GS): the
        // idle thread's saved selectors, and what every new thread starts with.
        let null = SegmentSelector::new(0, PrivilegeLevel::Ring0);
        DS::set_reg(null);
        ES::set_reg(null);
        FS::set_reg(null);
        GS::set_reg(null);
        load_tss(tss);
    }
    protect();

    for v in 0..256u64 {
        let ist = match v {
            8 => IST_DOUBLE_FAULT,
            2 => IST_NMI,
            18 => IST_MACHINE_CHECK,
            _ => 0,
        };
        let stub = VirtAddr::new(isr_stubs as *const () as u64 + v * STUB_STRIDE);
        // SAFETY: each stub is an interrupt entry that saves the state and
        // calls the dispatcher; the defaults are an interrupt gate (IF
        // cleared on entry) callable only by the CPU and the kernel (DPL 0:
        // `int n` from user mode is a #GP), with the kernel's CS (loaded above).
        let options = unsafe { c.idt[v as usize].set_handler_addr(stub) };
        if ist != 0 {
            // SAFETY: the IST slot holds a stack of its own (set above).
            unsafe { options.set_stack_index(ist as u16 - 1) };
        }
    }
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of::<[Entry<HandlerFunc>; 256]>() - 1) as u16,
        base: VirtAddr::new(c.idt.as_ptr() as u64),
    };
    // SAFETY: the IDT is static and every gate points at a stub.
    unsafe { lidt(&ptr) };

    // SAFETY: enabling `syscall` with an entry point that switches stacks
    // before touching memory; SFMASK clears IF so the kernel runs with
    // interrupts off, DF for the ABI, TF/AC/NT so user flags cannot leak in.
    unsafe {
        Efer::update(|f| *f |= EferFlags::SYSTEM_CALL_EXTENSIONS | EferFlags::NO_EXECUTE_ENABLE);
        Star::write(ucode, udata, kcode, kdata).expect("GDT layout fits sysret");
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::ALIGNMENT_CHECK
                | RFlags::NESTED_TASK
                | RFlags::IOPL_HIGH
                | RFlags::IOPL_LOW,
        );
    }
}

/// Make `top` the stack the CPU switches to on entry from user mode (by an
/// interrupt, and by `syscall`, whose entry reads it from here too).
///
/// # Safety
/// `top` must be the top of a mapped kernel stack that nothing else uses
/// until the CPU leaves it (the next thread's own stack).
pub unsafe fn set_kernel_stack(top: u64) {
    // (No canonical check or sign extension: kernel stack tops are
    // canonical by construction, and this is on every thread switch.)
    // SAFETY: `top` is a kernel stack top, a canonical address.
    let top_va = unsafe { VirtAddr::new_unsafe(top) };
    // SAFETY: the reference lives for this statement only.
    unsafe { cpu() }.tss.privilege_stack_table[0] = top_va;
}

/// Turn on SMEP, SMAP and UMIP where the CPU has them, and log which are on.
/// Without SMAP, `stac`/`clac` do not exist (#UD): their sites become NOPs.
fn protect() {
    let (ebx, ecx) = match core::arch::x86_64::__cpuid(0).eax >= 7 {
        true => {
            let l = core::arch::x86_64::__cpuid_count(7, 0);
            (l.ebx, l.ecx)
        }
        false => (0, 0),
    };
    let (smep, smap, umip) = (ebx & (1 << 7) != 0, ebx & (1 << 20) != 0, ecx & (1 << 2) != 0);
    if !smap {
        for site in smap_sites() {
            patch_nop3(site);
        }
    }
    let mut f = Cr4Flags::empty();
    f.set(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION, smep);
    f.set(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION, smap);
    f.set(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION, umip);
    // SAFETY: the kernel never executes user pages (SMEP), touches user
    // memory through user addresses only inside `user_copy_in` between
    // `stac` and `clac` (SMAP), and does not use the UMIP instructions in
    // ring 3; each bit is set only where CPUID reports the feature.
    unsafe { Cr4::update(|c| *c |= f) };
    let on = |b: bool| if b { "on" } else { "off (not supported)" };
    crate::info!("cpu: smep {}, smap {}, umip {}", on(smep), on(smap), on(umip));
}

/// Overwrite the 3-byte instruction at kernel text address `va` (a `stac`
/// or `clac`) with a 3-byte NOP, through the direct map (text is mapped
/// read-only).
fn patch_nop3(va: u64) {
    let alias = DIRECT_MAP + (va - KERNEL_VMA);
    // SAFETY: `va` is one of the `stac`/`clac` sites in kernel text (3
    // bytes each), whose frame lies in RAM and so in the direct map. Single
    // core, and none of the sites has run yet; the `cpuid` below serialises
    // so the CPU fetches the new bytes.
    unsafe {
        core::ptr::copy_nonoverlapping([0x0f, 0x1f, 0x00].as_ptr(), alias as *mut u8, 3);
        core::arch::x86_64::__cpuid(0);
    }
}
