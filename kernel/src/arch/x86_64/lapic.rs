//! The local APIC timer, calibrated against the PIT.
//!
//! The legacy PICs are remapped out of the exception range and masked; the
//! LAPIC timer fires [`TIMER_VECTOR`] every millisecond (one scheduler tick).

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use crate::kernel::Kernel;

use super::LAPIC_VA;

pub const TIMER_VECTOR: u8 = 32;
/// The I/O APIC's standard physical address.
const IOAPIC: u64 = 0xfec0_0000;
pub const SPURIOUS_VECTOR: u8 = 0xff;

const APIC_ID: u64 = 0x20;
const EOI: u64 = 0xb0;
const SVR: u64 = 0xf0;
const LVT_TIMER: u64 = 0x320;
const INITIAL_COUNT: u64 = 0x380;
const CURRENT_COUNT: u64 = 0x390;
const DIVIDE: u64 = 0x3e0;
const TPR: u64 = 0x80;

fn read(reg: u64) -> u32 {
    // SAFETY: LAPIC_VA maps the local APIC's registers (done in `init`).
    unsafe { core::ptr::read_volatile((LAPIC_VA + reg) as *const u32) }
}

fn write(reg: u64, v: u32) {
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile((LAPIC_VA + reg) as *mut u32, v) }
}

/// Acknowledge the interrupt being handled.
pub fn eoi() {
    write(EOI, 0);
}

/// In-service register: 8 registers of 32 bits, 16 bytes apart.
const ISR: u64 = 0x100;
const ICR_LOW: u64 = 0x300;
const ICR_HIGH: u64 = 0x310;
/// ICR: destination shorthand "self", and the delivery-pending bit.
const ICR_SELF: u32 = 1 << 18;
const ICR_PENDING: u32 = 1 << 12;

/// Whether the local APIC delivered `vector` and awaits its EOI (an
/// exception or the LAPIC's own spurious interrupt sets no in-service bit).
pub fn in_service(vector: u8) -> bool {
    read(ISR + 0x10 * (vector as u64 / 32)) & (1 << (vector % 32)) != 0
}

/// Send ourselves a fixed interrupt on `vector` (a self-test: as a stray
/// MSI would arrive). It is taken the next time interrupts are enabled.
pub fn self_ipi(vector: u8) {
    write(ICR_HIGH, 0);
    write(ICR_LOW, ICR_SELF | vector as u32);
    while read(ICR_LOW) & ICR_PENDING != 0 {
        core::hint::spin_loop();
    }
}

fn outb(port: u16, v: u8) {
    // SAFETY: legacy PIC and PIT ports; writes only reprogram those chips.
    unsafe { Port::new(port).write(v) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: reading PIT/keyboard-controller status has no side effects here.
    unsafe { Port::new(port).read() }
}

/// Remap and mask the 8259 PICs so their spurious interrupts cannot look
/// like exceptions.
fn disable_pic() {
    for (cmd, data, base, cascade) in [(0x20, 0x21, 0xe0u8, 4u8), (0xa0, 0xa1, 0xe8, 2)] {
        outb(cmd, 0x11);
        outb(data, base);
        outb(data, cascade);
        outb(data, 0x01);
        outb(data, 0xff);
    }
}

/// Map and enable the LAPIC; returns timer counts per millisecond.
pub fn init(k: &mut Kernel) -> u32 {
    disable_pic();
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU.
    let base = unsafe { Msr::new(0x1b).read() } & 0x000f_ffff_ffff_f000;
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::NO_CACHE | Flags::WRITE_THROUGH | Flags::GLOBAL;
    let frame = PhysFrame::containing_address(PhysAddr::new(base));
    k.kernel_pt
        .map(&k.phys, &mut k.frames, VirtAddr::new(LAPIC_VA), frame, flags)
        .expect("map the local APIC");
    // The LAPIC and the I/O APIC (at its standard address) are the kernel's.
    k.kernel_mmio = [(base, base + 4096), (IOAPIC, IOAPIC + 4096)];
    k.irqs.apic_id = (read(APIC_ID) >> 24) as u8;
    write(TPR, 0);
    write(SVR, 0x100 | SPURIOUS_VECTOR as u32);
    write(DIVIDE, 0x3); // divide by 16
    let per_ms = calibrate();
    crate::info!("lapic: base {base:#x}, timer {per_ms} counts/ms");
    per_ms
}

/// Count LAPIC timer ticks during 10 ms of PIT channel 2 (mode 0: OUT2
/// goes low when the count is written and high when it reaches zero).
fn calibrate() -> u32 {
    const PIT_HZ: u32 = 1_193_182;
    let count = (PIT_HZ / 100) as u16;
    let gate = (inb(0x61) & !0x02) | 0x01; // speaker off, channel 2 gate on
    outb(0x61, gate);
    outb(0x43, 0xb0); // channel 2, lobyte/hibyte, mode 0
    outb(0x42, count as u8);
    outb(0x42, (count >> 8) as u8); // counting starts here
    write(INITIAL_COUNT, u32::MAX);
    let mut spins = 0u64;
    while inb(0x61) & 0x20 == 0 && spins < 1_000_000_000 {
        spins += 1;
    }
    let elapsed = u32::MAX - read(CURRENT_COUNT);
    write(INITIAL_COUNT, 0);
    (elapsed / 10).max(1)
}

/// Start the periodic tick.
pub fn start_timer(per_ms: u32) {
    write(LVT_TIMER, TIMER_VECTOR as u32 | 1 << 17);
    write(INITIAL_COUNT, per_ms);
}
