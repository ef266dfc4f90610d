//! DEVMAN: find the ACPI tables, start one `pcidrv` per ECAM window, serve
//! the device registry.
//!
//! The RSDP comes from the kernel (`cap_id::ACPI_RSDP`, the copy the
//! loader handed over) when it has one, else from a scan of the BIOS area
//! (0xE0000–0xFFFFF) through a read-only capability derived from the
//! device-memory one; the tables it leads to are read through device memory
//! too (firmware keeps them outside usable RAM).
//! With the argument `drivers`, each `pcidrv` starts drivers for the
//! functions it has one for.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod server_main {
    use abi::{cap_id, SyscallClass};
    use devman::acpi::{self, Ecam};
    use devman::registry::Registry;
    use runtime::ipc::Channel;
    use runtime::mem::PhysRange;
    use runtime::println;
    use system::client::{Cap, ProcessClient, SpawnArgs};
    use vfs::server::SysKernel;

    runtime::entry!(main);

    const PAGE: u64 = abi::PAGE_SIZE as u64;
    /// Longest table we read.
    const TABLE_MAX: u64 = 64 * 1024;
    /// How long to wait for SYSTEM::PROCESS (it starts serving after the boot servers).
    const PROCESS_WAIT_MS: u64 = 10_000;

    /// Physical memory read through the device-memory capability.
    struct Phys {
        cap: PhysRange,
        base: u64,
        len: u64,
    }

    impl Phys {
        /// `len` bytes at physical `at`, mapped read-only.
        fn read(&self, at: u64, len: u64) -> Result<&'static [u8], abi::Error> {
            let start = at & !(PAGE - 1);
            let end = at.checked_add(len).ok_or(abi::Error::InvalidArgument)?.next_multiple_of(PAGE);
            if start < self.base || end > self.base + self.len {
                return Err(abi::Error::InvalidArgument);
            }
            let va = runtime::mem::reserve(end - start);
            self.cap.map(va, start - self.base, end - start, abi::MapFlags::READ)?;
            // SAFETY: just mapped read-only, never unmapped; firmware tables
            // do not change under us.
            Ok(unsafe { core::slice::from_raw_parts((va + (at - start)) as *const u8, len as usize) })
        }

        /// The whole table at `at` (its length from its header).
        fn table(&self, at: u64) -> Result<&'static [u8], abi::Error> {
            let h = acpi::sdt_header(self.read(at, acpi::SDT_HEADER as u64)?).map_err(|_| abi::Error::InvalidArgument)?;
            self.read(at, u64::from(h.length).min(TABLE_MAX))
        }
    }

    /// The RSDP the kernel handed over (its copy of what the loader gave:
    /// the only way under UEFI), else one found in the BIOS area.
    fn find_rsdp(phys: &Phys) -> Result<(u64, acpi::Rsdp, &'static str), &'static str> {
        if let Some(cap) = runtime::init_cap(cap_id::ACPI_RSDP).map(PhysRange) {
            let (at, _) = cap.info().map_err(|_| "bad RSDP capability")?;
            let va = runtime::mem::reserve(PAGE);
            cap.map(va, 0, PAGE, abi::MapFlags::READ).map_err(|_| "cannot map the RSDP")?;
            // SAFETY: one page mapped read-only just now, never unmapped.
            let page = unsafe { core::slice::from_raw_parts(va as *const u8, PAGE as usize) };
            let rsdp = acpi::parse_rsdp(page).map_err(|_| "bad RSDP from the kernel")?;
            return Ok((at, rsdp, "from the kernel"));
        }
        let area = phys.read(devman::BIOS_AREA, devman::BIOS_AREA_LEN).map_err(|_| "cannot map the BIOS area")?;
        let (at, rsdp) = acpi::find_rsdp(area, devman::BIOS_AREA).map_err(|_| "no RSDP in the BIOS area")?;
        Ok((at, rsdp, "BIOS area scan"))
    }

    fn find_mcfg(phys: &Phys) -> Result<heapless::Vec<Ecam, { acpi::MAX_SEGMENTS }>, &'static str> {
        let (at, rsdp, how) = find_rsdp(phys)?;
        let (root, xsdt) = rsdp.root();
        println!("devman: RSDP at {at:#x} ({how}), revision {}, {} at {root:#x}", rsdp.revision, if xsdt { "XSDT" } else { "RSDT" });
        let t = phys.table(root).map_err(|_| "cannot map the root table")?;
        let entries = acpi::root_entries(t, xsdt).map_err(|_| "bad root table")?;
        for a in entries {
            let Ok(t) = phys.table(a) else { continue };
            if t.starts_with(b"MCFG") {
                return acpi::parse_mcfg(t).map_err(|_| "bad MCFG");
            }
        }
        Err("no MCFG")
    }

    fn process_client() -> Option<ProcessClient> {
        let start = runtime::time::uptime_ms();
        loop {
            match ProcessClient::find() {
                Ok(c) => return Some(c),
                Err(_) if runtime::time::uptime_ms() - start < PROCESS_WAIT_MS => {
                    let _ = runtime::time::sleep_ms(10);
                }
                Err(e) => {
                    println!("devman: no {}: {e:?}", system::protocol::NAME);
                    return None;
                }
            }
        }
    }

    /// Start `pcidrv` for one window with a capability for exactly it and
    /// the classes it needs; with `drivers`, also the device memory its
    /// functions' BARs lie in and the DMA and Irq classes, to share with
    /// its drivers.
    fn start_pcidrv(procs: &ProcessClient, dev: &Phys, e: &Ecam, drivers: bool) {
        let (start, len) = e.window();
        let ecam = match dev.cap.derive(start - dev.base, len, abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE) {
            Ok(c) => c,
            Err(err) => {
                println!("devman: no capability for ECAM {start:#x}+{len:#x}: {err:?}");
                return;
            }
        };
        let mut caps: heapless::Vec<Cap, 12> = heapless::Vec::new();
        let _ = caps.push(Cap { id: pcidrv_caps::ECAM, token: ecam.0, rights: (abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE).into() });
        if drivers {
            // What its drivers get a share of: their BARs, DMA, and the
            // Irq class to allocate each one an MSI vector.
            let _ = caps.push(Cap { id: pcidrv_caps::BAR_MEMORY, token: dev.cap.0, rights: (abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE).into() });
            for c in [SyscallClass::Dma, SyscallClass::Irq] {
                let _ = Cap::class(c).map(|c| caps.push(c));
            }
        }
        for c in [SyscallClass::DebugPrint, SyscallClass::Thread, SyscallClass::ChannelCreate] {
            if let Some(c) = Cap::class(c) {
                let _ = caps.push(c);
            }
        }
        // Names for PCI (its own channel: DEVMAN's registration
        // capability) and, to pass on, for its drivers' provider: no
        // pcidrv can pose as DEVMAN or anyone else.
        let own = Cap::names(devman::PCI_PROVIDER);
        let theirs = Cap::names(devman::DRIVER_PROVIDER).map(|c| Cap { id: devman::PCIDRV_DRIVER_NAMES_CAP, ..c });
        for c in [own, theirs].into_iter().flatten() {
            let _ = caps.push(c);
        }
        let (seg, sb, eb) = (alloc_fmt(e.segment as u64), alloc_fmt(e.start_bus as u64), alloc_fmt(e.end_bus as u64));
        let all = ["pcidrv", seg.as_str(), sb.as_str(), eb.as_str(), "drivers"];
        let args = if drivers { &all[..] } else { &all[..4] };
        let spawn = SpawnArgs { path: "boot:/pcidrv", args, caps: &caps, stack_size: 0, priority: 8, restart: true };
        match procs.spawn(&spawn) {
            Ok(s) => println!("devman: started pcidrv (pid {}) for segment {} buses {:02x}-{:02x} at {start:#x}", s.pid, e.segment, e.start_bus, e.end_bus),
            Err(err) => println!("devman: cannot start pcidrv: {err:?}"),
        }
        let _ = runtime::caps::drop_cap(ecam.0);
        for c in [own, theirs].into_iter().flatten() {
            let _ = runtime::caps::drop_cap(c.token);
        }
    }

    fn alloc_fmt(v: u64) -> heapless::String<24> {
        use core::fmt::Write;
        let mut s = heapless::String::new();
        let _ = write!(s, "{v}");
        s
    }

    mod pcidrv_caps {
        //! The ids `pcidrv` looks its capabilities up under (pcidrv's `caps`).
        pub const ECAM: u64 = devman::PCIDRV_ECAM_CAP;
        pub const BAR_MEMORY: u64 = devman::PCIDRV_BAR_CAP;
    }

    fn main(args: runtime::Args) -> i32 {
        let drivers = args.iter().any(|a| a == "drivers");
        let chan = match Channel::create() {
            Ok(c) => c,
            Err(e) => {
                println!("devman: cannot create a channel: {e:?}");
                return 1;
            }
        };
        if let Err(e) = chan.register(devman::NAME) {
            println!("devman: cannot publish {}: {e:?}", devman::NAME);
            return 1;
        }
        println!("devman: serving {}", devman::NAME);
        let dev = runtime::init_cap(cap_id::DEVICE_MEMORY).map(PhysRange).and_then(|cap| {
            let (base, len) = cap.info().ok()?;
            Some(Phys { cap, base, len })
        });
        match dev {
            None => println!("devman: no device-memory capability: no PCI"),
            Some(dev) => match find_mcfg(&dev) {
                Err(why) => println!("devman: {why}: no PCI"),
                Ok(windows) => {
                    println!("devman: MCFG: {} ECAM window(s)", windows.len());
                    if let Some(procs) = process_client() {
                        for e in &windows {
                            start_pcidrv(&procs, &dev, e, drivers);
                        }
                    }
                }
            },
        }
        runtime::rpc::run_server("devman", chan, &mut Registry::new(SysKernel))
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("devman runs on the microkernel: build the image with `cargo run -p image-builder`");
    std::process::exit(2);
}
