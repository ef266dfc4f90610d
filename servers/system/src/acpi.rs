//! Checking the ACPI handover: the RSDP copy the kernel passes as
//! `cap_id::ACPI_RSDP`, and the root table (XSDT or RSDT) it points to,
//! read through the device-memory capability. `system` prints the result at
//! boot, so every boot shows that the firmware's tables are reachable from
//! user space (DEVMAN will start from the same two capabilities).

use abi::{cap_id, Error};
use runtime::mem::PhysRange;
use runtime::println;

const PAGE: u64 = abi::PAGE_SIZE as u64;

/// Why the check failed (printed with `Debug`, which the dead-code lint
/// does not count as a read).
#[derive(Debug)]
#[allow(dead_code)]
enum Problem {
    NoRsdp,
    Kernel(Error),
    Acpi(acpi::AcpiError),
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        Problem::Kernel(e)
    }
}

impl From<acpi::AcpiError> for Problem {
    fn from(e: acpi::AcpiError) -> Self {
        Problem::Acpi(e)
    }
}

/// Map `len` bytes of physical memory at `addr` read-only from `range`
/// (whose base is physical 0) and return them.
fn map_phys(range: &PhysRange, addr: u64, len: u64) -> Result<&'static [u8], Error> {
    let base = addr & !(PAGE - 1);
    let size = (addr - base + len).next_multiple_of(PAGE);
    let va = runtime::mem::reserve(size);
    range.map(va, base, size, abi::MapFlags::READ)?;
    // SAFETY: `size` bytes are mapped read-only at `va` for the rest of the
    // program (nothing unmaps reserved ranges).
    Ok(unsafe { core::slice::from_raw_parts((va + addr - base) as *const u8, len as usize) })
}

fn check() -> Result<(), Problem> {
    let rsdp_cap = PhysRange(runtime::init_cap(cap_id::ACPI_RSDP).ok_or(Problem::NoRsdp)?);
    let (rsdp_phys, _) = rsdp_cap.info()?;
    let rsdp = acpi::Rsdp::parse(map_phys(&rsdp_cap, 0, acpi::RSDP_V2_LEN as u64)?)?;
    let oem = core::str::from_utf8(&rsdp.oem_id).unwrap_or("?");
    println!("system: acpi: RSDP revision {} ({oem}) at {rsdp_phys:#x}, checksum ok", rsdp.revision);
    let (table, signature) = rsdp.root_table();
    let device = PhysRange(runtime::init_cap(cap_id::DEVICE_MEMORY).ok_or(Error::Incapable)?);
    let header = map_phys(&device, table, acpi::SDT_HEADER_LEN as u64)?;
    let len = acpi::sdt_length(header)?;
    let len = acpi::check_sdt(map_phys(&device, table, len as u64)?, signature)?;
    let name = core::str::from_utf8(signature).unwrap_or("?");
    println!("system: acpi: {name} at {table:#x}, {len} bytes, checksum ok");
    Ok(())
}

/// Check and print the ACPI handover.
pub fn report() {
    match check() {
        Ok(()) => {}
        Err(Problem::NoRsdp) => println!("system: acpi: no RSDP handed over"),
        Err(e) => println!("system: acpi: handover is not valid: {e:?}"),
    }
}
