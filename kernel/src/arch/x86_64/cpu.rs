//! Descriptor tables and the `syscall` MSRs.
//!
//! The GDT layout is fixed by `sysret`: user data must sit 8 bytes below
//! user code, both 16 and 8 bytes above the selector base in STAR.
//! Double fault, NMI and machine check run on their own stacks (IST), so
//! they work even when the kernel stack is gone (a guard-page hit).

use core::cell::UnsafeCell;

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::{lidt, load_tss};
use x86_64::registers::control::Cr0Flags;
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::{PrivilegeLevel, VirtAddr};

use super::entry::{isr_stubs, syscall_entry, STUB_STRIDE, SYSCALL_KERNEL_RSP};

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
    idt: [Gate; 256],
    ist: [Stack; 3],
}

/// Per-CPU tables; written during `init` and then only `tss.rsp0` changes.
struct CpuCell(UnsafeCell<Cpu>);
// SAFETY: single core; see `super::KERNEL`.
unsafe impl Sync for CpuCell {}

static CPU: CpuCell = CpuCell(UnsafeCell::new(Cpu {
    gdt: GlobalDescriptorTable::new(),
    tss: TaskStateSegment::new(),
    idt: [Gate::MISSING; 256],
    ist: [const { Stack([0; IST_STACK]) }; 3],
}));

/// One IDT entry.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    zero: u32,
}

impl Gate {
    const MISSING: Gate = Gate { offset_low: 0, selector: 0, ist: 0, attributes: 0, offset_mid: 0, offset_high: 0, zero: 0 };

    /// A present interrupt gate (IF cleared on entry), callable only by the
    /// CPU and the kernel (DPL 0): `int n` from user mode is a #GP.
    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CS,
            ist,
            attributes: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            zero: 0,
        }
    }
}

fn cpu() -> &'static mut Cpu {
    // SAFETY: single core; callers do not hold two of these at once.
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
    let c = cpu();
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
        DS::set_reg(SegmentSelector::new(0, PrivilegeLevel::Ring0));
        ES::set_reg(SegmentSelector::new(0, PrivilegeLevel::Ring0));
        load_tss(tss);
    }

    for v in 0..256u64 {
        let ist = match v {
            8 => IST_DOUBLE_FAULT,
            2 => IST_NMI,
            18 => IST_MACHINE_CHECK,
            _ => 0,
        };
        c.idt[v as usize] = Gate::interrupt(isr_stubs as *const () as u64 + v * STUB_STRIDE, ist);
    }
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
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

/// Make `top` the stack the CPU switches to on entry from user mode.
pub fn set_kernel_stack(top: u64) {
    cpu().tss.privilege_stack_table[0] = VirtAddr::new(top);
    // SAFETY: read only by the syscall entry, which cannot run while the
    // kernel (interrupts off) is here.
    unsafe { SYSCALL_KERNEL_RSP = top };
}
