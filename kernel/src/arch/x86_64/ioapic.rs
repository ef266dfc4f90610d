//! The I/O APIC: found through the MADT, every pin masked at boot, and one
//! redirection entry written at a time for `irq::line`.
//!
//! The ACPI tables are read through the direct map (firmware keeps them in
//! RAM below the top of the map; a table the map does not reach leaves the
//! machine without `IrqLine`, logged). Registers are reached through the
//! index/data pair (IOREGSEL at +0, IOWIN at +0x10), mapped uncached at
//! [`IOAPIC_VA`]; the kernel is single-core and enters its state with
//! interrupts off, so the pair is never used by two writers at once.

use acpi::madt::Madt;
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use crate::irq::line::{IoApic, MASKED};
use crate::kernel::Kernel;

use super::{DIRECT_MAP, LAPIC_VA};

/// Where the I/O APIC's registers are mapped (the page after the LAPIC's).
const IOAPIC_VA: u64 = LAPIC_VA + 0x1000;
const IOREGSEL: u64 = 0;
const IOWIN: u64 = 0x10;
const VERSION: u32 = 1;
const REDIRECTION: u32 = 0x10;

fn write_reg(reg: u32, v: u32) {
    // SAFETY: IOAPIC_VA maps the I/O APIC's registers (done in `init` before
    // any call); selecting a register and writing it touches no memory.
    unsafe {
        core::ptr::write_volatile((IOAPIC_VA + IOREGSEL) as *mut u32, reg);
        core::ptr::write_volatile((IOAPIC_VA + IOWIN) as *mut u32, v);
    }
}

fn read_reg(reg: u32) -> u32 {
    // SAFETY: as in `write_reg`.
    unsafe {
        core::ptr::write_volatile((IOAPIC_VA + IOREGSEL) as *mut u32, reg);
        core::ptr::read_volatile((IOAPIC_VA + IOWIN) as *const u32)
    }
}

/// Write pin `pin`'s redirection entry (masked first, so the entry never
/// holds half an update while unmasked).
pub fn ioapic_set(pin: u8, entry: u64) {
    let lo = REDIRECTION + 2 * pin as u32;
    write_reg(lo, MASKED as u32);
    write_reg(lo + 1, (entry >> 32) as u32);
    write_reg(lo, entry as u32);
}

/// Copy physical `pa..pa + out.len()` through the direct map, if the map
/// reaches every page of it.
fn read_phys(k: &Kernel, pa: u64, out: &mut [u8]) -> bool {
    let end = pa.saturating_add(out.len() as u64);
    let mut page = pa & !0xfff;
    while page < end {
        if k.kernel_pt.translate(&k.phys, VirtAddr::new(DIRECT_MAP + page)).is_none() {
            return false;
        }
        page += 0x1000;
    }
    // SAFETY: every page of the range is mapped in the direct map (checked
    // above); ACPI tables are plain bytes.
    unsafe { core::ptr::copy_nonoverlapping((DIRECT_MAP + pa) as *const u8, out.as_mut_ptr(), out.len()) };
    true
}

/// Read the whole system table at `pa` into `buf` (checked against `sig`).
fn read_table<'b>(k: &Kernel, pa: u64, sig: &[u8; 4], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut header = [0u8; acpi::SDT_HEADER_LEN];
    if !read_phys(k, pa, &mut header) {
        return None;
    }
    let len = acpi::sdt_length(&header).ok()?;
    let table = buf.get_mut(..len)?;
    if !read_phys(k, pa, table) {
        return None;
    }
    acpi::check_sdt(table, sig).ok()?;
    Some(table)
}

/// The MADT, through the RSDP's root table.
fn find_madt(k: &Kernel, rsdp: &[u8]) -> Option<Madt> {
    let r = acpi::Rsdp::parse(rsdp).ok()?;
    let (root, sig) = r.root_table();
    let mut buf = [0u8; 4096];
    let entry = if sig == b"XSDT" { 8 } else { 4 };
    let mut madt_at = None;
    {
        let table = read_table(k, root, sig, &mut buf)?;
        for e in table[acpi::SDT_HEADER_LEN..].chunks_exact(entry) {
            let mut a = [0u8; 8];
            a[..entry].copy_from_slice(e);
            let pa = u64::from_le_bytes(a);
            let mut sig = [0u8; 4];
            if read_phys(k, pa, &mut sig) && &sig == b"APIC" {
                madt_at = Some(pa);
                break;
            }
        }
    }
    let table = read_table(k, madt_at?, b"APIC", &mut buf)?;
    Madt::parse(table).ok()
}

/// Find the I/O APIC, map it, mask every pin and hand it to `irq`.
pub fn init(k: &mut Kernel, rsdp: Option<&[u8]>) {
    let Some(madt) = rsdp.and_then(|r| find_madt(k, r)) else {
        crate::warn!("ioapic: no MADT read; legacy interrupt lines (IrqLine) are off");
        return;
    };
    let base = madt.ioapic_address as u64;
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::NO_CACHE | Flags::WRITE_THROUGH | Flags::GLOBAL;
    let frame = PhysFrame::containing_address(PhysAddr::new(base));
    if k.kernel_pt.map(&k.phys, &mut k.frames, VirtAddr::new(IOAPIC_VA), frame, flags).is_err() {
        crate::warn!("ioapic: cannot map {base:#x}; legacy interrupt lines are off");
        return;
    }
    k.kernel_mmio[1] = (base & !0xfff, (base & !0xfff) + 4096);
    let pins = ((read_reg(VERSION) >> 16) & 0xff) as u8 + 1;
    for pin in 0..pins {
        ioapic_set(pin, MASKED);
    }
    let apic = IoApic { madt, pins };
    let isa4 = madt.isa(4).map_or(0, |(g, _)| g);
    crate::info!(
        "ioapic: {base:#x}, GSI {}..{}, {} ISA override(s), ISA IRQ 0 at GSI {} (the kernel's), COM1's IRQ 4 at GSI {isa4}",
        madt.gsi_base,
        madt.gsi_base + pins as u32 - 1,
        madt.overrides.iter().flatten().count(),
        apic.kernel_gsi().unwrap_or(0),
    );
    k.irqs.ioapic = Some(apic);
}
