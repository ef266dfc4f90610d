//! Starting the first program, `system`, from the RAMFS boot image.
//!
//! `system` receives every syscall class (with the right to delegate), a
//! capability for its own process, the RAMFS image as a read-only physical
//! range, all device memory (ranges that are not RAM) to hand to drivers,
//! COM1's I/O ports and its interrupt line (`cap_id::COM1_IRQ`, for the
//! shell), and, when the firmware provided one, a read-only page holding a copy of
//! the ACPI RSDP (`cap_id::ACPI_RSDP`; at offset 0 of the page), which is
//! how DEVMAN finds the ACPI tables on UEFI machines with no BIOS area.
//! Its arguments are the words of the kernel command line after the image
//! name, minus the kernel's own options.

use abi::start::InitCap;
use abi::{cap_id, phys_flavor, CapKind, SyscallClass};

use crate::cap::Cap;
use crate::kernel::Kernel;
use crate::mem::PAGE_SIZE;

/// Priority of `system`; what it starts runs at this or lower.
pub const INIT_PRIORITY: u8 = abi::limits::INIT_PRIORITY;
/// Most arguments passed on.
const MAX_ARGS: usize = 16;

/// Why `system` could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    BadImage(cpio::Error),
    NotFound,
    Kernel(abi::Error),
}

/// A page holding `bytes` (the RSDP copy), as a read-only boot range.
fn rsdp_page(k: &mut Kernel, bytes: &[u8]) -> Result<Cap, abi::Error> {
    let frame = k.frames.alloc().ok_or(abi::Error::NoMemory)?;
    // SAFETY: the frame was just allocated and nothing else refers to it;
    // it is never freed (boot ranges are not owned by any process).
    unsafe {
        k.phys.zero(frame);
        k.phys.frame_mut(frame)[..bytes.len()].copy_from_slice(bytes);
    }
    let mut cap = Cap::object(CapKind::Phys, u32::MAX, 0, abi::PhysRights::READ | abi::PhysRights::DELEGATE);
    cap.flavor = phys_flavor::BOOT;
    cap.base_frame = (frame.start_address().as_u64() / PAGE_SIZE) as u32;
    cap.frames = 1;
    Ok(cap)
}

/// Kernel options on the command line (not passed to `system`).
pub fn kernel_option<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Load and start the init program with the command line's `arguments`
/// (the image name already removed); returns its process index.
pub fn start_system(
    k: &mut Kernel,
    ramfs: &[u8],
    ramfs_phys: u64,
    arguments: &str,
    rsdp: Option<&[u8]>,
) -> Result<usize, InitError> {
    let archive = cpio::Archive::new(ramfs).map_err(InitError::BadImage)?;
    let name = kernel_option(arguments, "init").unwrap_or("system");
    let file = archive.find(name).filter(|f| f.is_file()).ok_or(InitError::NotFound)?;
    let (p, gen) = k.create_process(name.as_bytes()).map_err(InitError::Kernel)?;
    let started = (|| {
        let entry = k.load_elf(p, file.data)?;
        let mut caps = [InitCap { id: 0, token: 0 }; 16];
        let mut n = 0;
        let mut give = |k: &mut Kernel, id: u64, cap: Cap| -> Result<(), abi::Error> {
            caps[n] = InitCap { id, token: k.mint(p, cap)? };
            n += 1;
            Ok(())
        };
        for c in SyscallClass::ALL {
            give(k, cap_id::class(*c), Cap::class(*c, abi::ClassRights::USE | abi::ClassRights::DELEGATE))?;
        }
        give(k, cap_id::SELF_PROCESS, Cap::object(CapKind::Process, p as u32, gen, abi::RightsMask::ALL))?;
        let mut ramfs_cap = Cap::object(CapKind::Phys, u32::MAX, 0, abi::PhysRights::READ | abi::PhysRights::DELEGATE);
        ramfs_cap.flavor = phys_flavor::BOOT;
        ramfs_cap.base_frame = (ramfs_phys / PAGE_SIZE) as u32;
        ramfs_cap.frames = (ramfs.len() as u64).div_ceil(PAGE_SIZE) as u32;
        give(k, cap_id::RAMFS, ramfs_cap)?;
        let mut device = Cap::object(CapKind::Phys, u32::MAX, 0, abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE);
        device.flavor = phys_flavor::DEVICE;
        device.frames = u32::MAX;
        give(k, cap_id::DEVICE_MEMORY, device)?;
        if let Some(bytes) = rsdp {
            let cap = rsdp_page(k, bytes)?;
            give(k, cap_id::ACPI_RSDP, cap)?;
        }
        let com1 = Cap::io_ports(abi::ioport::COM1, abi::IoPortRights::READ | abi::IoPortRights::WRITE | abi::IoPortRights::DELEGATE);
        give(k, cap_id::COM1, com1)?;
        // COM1's interrupt line, for the shell (none without an I/O APIC).
        if k.irqs.ioapic.is_some() {
            let token = k.irq_line(p, abi::irq::COM1_ISA_IRQ, abi::irq::LINE_ISA)?.token;
            caps[n] = InitCap { id: cap_id::COM1_IRQ, token };
            n += 1;
        }

        let mut args: [&[u8]; MAX_ARGS] = [b""; MAX_ARGS];
        args[0] = name.as_bytes();
        let mut argc = 1;
        let passed = arguments
            .split_ascii_whitespace()
            .filter(|w| !["loglevel=", "init=", "selftest="].iter().any(|k| w.starts_with(k)));
        for w in passed.take(MAX_ARGS - 1) {
            args[argc] = w.as_bytes();
            argc += 1;
        }
        let rsp = k.setup_stack(p, &args[..argc], &caps[..n])?;
        k.create_thread(p, entry, rsp, [0, 0], INIT_PRIORITY)
    })();
    match started {
        Ok(_) => Ok(p),
        Err(e) => {
            k.end_process(p, abi::exit::KILLED, 0);
            Err(InitError::Kernel(e))
        }
    }
}
