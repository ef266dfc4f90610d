//! The x86-64 boot sequence: from the stub's jump into `kmain` to the idle
//! thread.
//!
//! Here because the order matters and is easiest to check in one place:
//! the console, the loader's block, memory, the CPU's protections, the
//! token key, the kernel's tables, the LAPIC, the self-tests, `system`,
//! then the timer and the first switch. Everything else a boot needs is
//! host-tested logic (`multiboot`, `init`) or hardware set-up in `arch`.

use crate::arch::x86_64::{cpu, install, lapic, memory, pcid, random, serial, with_kernel, DIRECT_MAP};
use crate::boot::multiboot::{BootInfo, Firmware, RsdpFrom};
use crate::kernel::Kernel;
use crate::log::Level;

use crate::arch::x86_64::trap::run_then_switch;

use super::selftest::self_test;
use super::stub::{efi_random, own_efi_map};

/// Entered from the boot stub in long mode on the boot stack. Sets up the
/// machine, starts `system`, then becomes the idle thread.
#[no_mangle]
pub extern "C" fn kmain(magic: u32, info: u32) -> ! {
    serial::init();
    crate::info!("kernel {} booting", env!("CARGO_PKG_VERSION"));
    let mut early_read = |addr: u64, buf: &mut [u8]| {
        assert!(addr.checked_add(buf.len() as u64).is_some_and(|e| e <= 1 << 32), "multiboot data above 4 GiB");
        // SAFETY: the boot tables map the first 4 GiB at the direct-map
        // base, and the range lies below (checked above).
        unsafe { core::ptr::copy_nonoverlapping((DIRECT_MAP + addr) as *const u8, buf.as_mut_ptr(), buf.len()) };
    };
    let boot = match BootInfo::parse(magic, info as u64, &mut early_read, own_efi_map()) {
        Ok(b) => b,
        Err(e) => panic!("cannot use the boot information: {e:?}"),
    };
    if let Some(l) = crate::boot::init::kernel_option(boot.cmdline(), "loglevel").and_then(Level::parse) {
        crate::log::set_level(l);
    }
    crate::info!("command line: {}", boot.cmdline());
    log_firmware(&boot);
    for r in boot.regions() {
        crate::info!(
            "memory map: {:#014x}..{:#014x} {}",
            r.start,
            r.end(),
            if r.usable() { "usable" } else { "reserved" }
        );
    }
    let mem = memory::init(&boot);
    cpu::init();
    let pcid = pcid::init();
    let pool = random::gather(&boot);
    if pool.is_strong() {
        crate::info!("capability tokens keyed from {}", pool.sources());
    } else {
        crate::warn!("capability tokens keyed from {} only: guessable on this machine", pool.sources());
    }
    let ram: heapless_ram::Ram = heapless_ram::collect(&boot);
    let mut k = match Kernel::new(mem.phys, mem.frames, mem.kernel_pt, ram.as_slice(), &pool.seed()) {
        Ok(k) => k,
        Err(_) => panic!("no memory for the kernel tables"),
    };
    let per_ms = lapic::init(&mut k);
    crate::arch::x86_64::ioapic::init(&mut k, boot.rsdp.as_ref().map(|r| &r.bytes[..]));
    k.threads[crate::kernel::IDLE_THREAD as usize].arch.stack_top = boot_stack_top();
    // The kernel's tables are loaded (`memory::init`), with PCID 0.
    k.set_pcid(pcid);
    install(k);
    self_test(crate::boot::init::kernel_option(boot.cmdline(), "selftest"));
    start_system(&boot);
    lapic::start_timer(per_ms);
    run_then_switch(|k| k.schedule());
    idle()
}

/// Say how the kernel was loaded and where the ACPI RSDP came from.
fn log_firmware(boot: &BootInfo) {
    let firmware = match boot.firmware {
        Firmware::Bios => "BIOS",
        Firmware::Uefi { .. } => "UEFI",
    };
    crate::info!("loader: {:?}, firmware {firmware}, {} memory-map entries", boot.loader, boot.raw_regions);
    if let Some(map) = own_efi_map() {
        crate::info!(
            "efi: the kernel exited boot services ({} bytes of memory map); {} random bytes from EFI_RNG_PROTOCOL",
            map.size,
            efi_random().len()
        );
    }
    match boot.rsdp.as_ref().map(|r| (r.from, acpi::Rsdp::parse(&r.bytes))) {
        Some((from, Ok(r))) => match from {
            RsdpFrom::Loader => {
                crate::info!("acpi: RSDP revision {} from the loader, RSDT {:#x}, XSDT {:#x}", r.revision, r.rsdt, r.xsdt)
            }
            RsdpFrom::BiosScan(at) => {
                crate::info!("acpi: RSDP revision {} at {at:#x}, RSDT {:#x}, XSDT {:#x}", r.revision, r.rsdt, r.xsdt)
            }
        },
        _ => crate::warn!("acpi: no RSDP handed over or found"),
    }
}

/// A fixed list of RAM ranges, so no allocation is needed before the kernel exists.
mod heapless_ram {
    use crate::boot::multiboot::BootInfo;
    use crate::kernel::MAX_RAM_REGIONS;

    pub struct Ram([(u64, u64); MAX_RAM_REGIONS], usize);

    impl Ram {
        pub fn as_slice(&self) -> &[(u64, u64)] {
            &self.0[..self.1]
        }
    }

    pub fn collect(boot: &BootInfo) -> Ram {
        let mut r = Ram([(0, 0); MAX_RAM_REGIONS], 0);
        r.1 = boot.ram_ranges(&mut r.0);
        r
    }
}

fn boot_stack_top() -> u64 {
    extern "C" {
        static boot_stack_top: u8;
    }
    // SAFETY: only the symbol's address is used.
    unsafe { &boot_stack_top as *const u8 as u64 }
}

fn start_system(boot: &BootInfo) {
    let Some(module) = boot.modules().first() else {
        panic!("no RAMFS module: boot with -initrd ramfs.img (or iPXE `module ramfs.img`)");
    };
    // SAFETY: the module lies in RAM, which the direct map covers, and its
    // frames are reserved, so nothing else writes it.
    let ramfs = unsafe {
        core::slice::from_raw_parts((DIRECT_MAP + module.start) as *const u8, (module.end - module.start) as usize)
    };
    crate::info!("ramfs: {} bytes at {:#x} ({})", ramfs.len(), module.start, module.cmdline());
    let rsdp = boot.rsdp.as_ref().map(|r| &r.bytes[..]);
    with_kernel(|k| match crate::boot::init::start_system(k, ramfs, module.start, boot.arguments(), rsdp) {
        Ok(p) => crate::info!("started process {p} '{}'", k.procs[p].name()),
        Err(e) => panic!("cannot start the first program: {e:?}"),
    });
}

/// The idle thread: wait for interrupts with interrupts enabled.
fn idle() -> ! {
    loop {
        x86_64::instructions::interrupts::enable_and_hlt();
        x86_64::instructions::interrupts::disable();
    }
}
