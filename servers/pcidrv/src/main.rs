//! PCIDRV: enumerate one ECAM window, print and register every function,
//! start the drivers it has for them, serve their configuration space.
//!
//! Arguments: `pcidrv <segment> <first bus> <last bus> [drivers]`;
//! capabilities under [`pcidrv::caps`]. Only with `drivers` does it start
//! a driver (`ahcidrv`) for the functions it has one for, handing it the
//! function's ABAR, its configuration page, an MSI vector it allocates
//! with the Irq class and its config-space channel.
//!
//! PCIDRV supervises its drivers itself: a thread per driver waits for its
//! end and starts it again with the same capabilities, under `system`'s
//! restart policy ([`system::policy`]: back-off, held when it keeps
//! dying). The drivers are spawned through `SYSTEM::PROCESS` but not
//! supervised there: what they hold (the vector, the config channel) lives
//! and dies with this PCIDRV, and each driver ends when PCIDRV does (it
//! holds a `Watch` call on its config channel, [`pcidrv::config`]), so a
//! restarted PCIDRV starts exactly one driver per controller again. Buses
//! are mapped 1 MiB at a time as the walk reaches them, so an unused window
//! costs no page tables.
//!
//! At rest once registered: everything PCIDRV keeps (its threads, the
//! windows of its config servers, its drivers) exists before it registers
//! its first function with DEVMAN, so a program that sees a function in
//! DEVMAN's registry sees PCIDRV's memory as it stays (`ktest` waits for
//! that before any suite, and the fuzz suite compares the kernel's free
//! frames before and after: a window page made later showed as a leak).

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod driver_main {
    extern crate alloc;

    use alloc::boxed::Box;
    use core::cell::Cell;

    use abi::SyscallClass;
    use devman::proto::Device;
    use devman::DevmanClient;
    use pcidrv::config::{ConfigServer, DRIVER_BAR_CAP, DRIVER_CONFIG_CAP, DRIVER_CONFIG_PAGE_CAP, DRIVER_IRQ_CAP};
    use pcidrv::enumerate::{assign_bars, enumerate, Function, MMIO_WINDOW};
    use pcidrv::{caps, reg, ConfigSpace, Location};
    use runtime::ipc::Channel;
    use runtime::irq::Irq;
    use runtime::mem::PhysRange;
    use runtime::println;
    use runtime::rpc::ChannelTransport;
    use runtime::process::Process;
    use system::client::{Cap, ProcessClient, SpawnArgs, SpawnError, Spawned};
    use system::policy::{Decision, History, Policy};
    use system::protocol::ProcessError;

    runtime::entry!(main);

    const BUS: u64 = 1 << 20;
    const PAGE: u64 = abi::PAGE_SIZE as u64;

    /// Configuration space through the ECAM window, buses mapped on first use.
    struct Ecam {
        cap: PhysRange,
        start: u8,
        end: u8,
        /// Where each bus is mapped (0: not yet).
        va: [Cell<u64>; 256],
    }

    impl Ecam {
        /// The address of `at`'s register `offset`, or None outside the window.
        fn addr(&self, at: Location, offset: u16) -> Option<u64> {
            if at.bus < self.start || at.bus > self.end || at.device > 31 || at.function > 7 || offset >= reg::SPACE {
                return None;
            }
            let slot = &self.va[usize::from(at.bus)];
            if slot.get() == 0 {
                let va = runtime::mem::reserve(BUS);
                self.cap.map(va, u64::from(at.bus - self.start) * BUS, BUS, abi::MapFlags::READ | abi::MapFlags::WRITE).ok()?;
                slot.set(va);
            }
            Some(slot.get() + (u64::from(at.device) << 15) + (u64::from(at.function) << 12) + u64::from(offset))
        }
    }

    /// One function's page (a started driver's view).
    struct FnPage {
        at: Location,
        va: u64,
    }

    /// # Safety
    /// `va` is a mapped configuration-space address, aligned to `width`.
    unsafe fn mmio_read(va: u64, width: u8) -> u32 {
        // SAFETY: the caller's contract; ECAM takes 1-, 2- and 4-byte accesses.
        unsafe {
            match width {
                1 => u32::from(core::ptr::read_volatile(va as *const u8)),
                2 => u32::from(core::ptr::read_volatile(va as *const u16)),
                _ => core::ptr::read_volatile(va as *const u32),
            }
        }
    }

    /// # Safety
    /// As [`mmio_read`].
    unsafe fn mmio_write(va: u64, width: u8, v: u32) {
        // SAFETY: the caller's contract.
        unsafe {
            match width {
                1 => core::ptr::write_volatile(va as *mut u8, v as u8),
                2 => core::ptr::write_volatile(va as *mut u16, v as u16),
                _ => core::ptr::write_volatile(va as *mut u32, v),
            }
        }
    }

    fn ones(width: u8) -> u32 {
        if width == 4 { u32::MAX } else { (1 << (8 * u32::from(width))) - 1 }
    }

    impl ConfigSpace for Ecam {
        fn read(&self, at: Location, offset: u16, width: u8) -> u32 {
            // SAFETY: `addr` maps the bus and checks the bounds; callers align.
            self.addr(at, offset).map_or(ones(width), |va| unsafe { mmio_read(va, width) })
        }
        fn write(&mut self, at: Location, offset: u16, width: u8, value: u32) {
            if let Some(va) = self.addr(at, offset) {
                // SAFETY: as in `read`.
                unsafe { mmio_write(va, width, value) }
            }
        }
    }

    impl ConfigSpace for FnPage {
        fn read(&self, at: Location, offset: u16, width: u8) -> u32 {
            if at != self.at || offset >= reg::SPACE {
                return ones(width);
            }
            // SAFETY: our function's page is mapped at `va`; the server checked alignment.
            unsafe { mmio_read(self.va + u64::from(offset), width) }
        }
        fn write(&mut self, at: Location, offset: u16, width: u8, value: u32) {
            if at == self.at && offset < reg::SPACE {
                // SAFETY: as in `read`.
                unsafe { mmio_write(self.va + u64::from(offset), width, value) }
            }
        }
    }

    /// What a config-serving thread starts with (its transport, window
    /// included, made by `main` before anything is registered).
    struct Job {
        transport: ChannelTransport,
        page: FnPage,
    }

    fn serve_config(job: u64) {
        // SAFETY: `job` is the `Box<Job>` leaked by `start_driver` for this thread.
        let job = unsafe { Box::from_raw(job as *mut Job) };
        let Job { transport, page } = *job;
        let at = page.at;
        let code = runtime::rpc::run_server_on("pcidrv-config", transport, &mut ConfigServer::new(at, page));
        println!("pcidrv: config server for {at} ended ({code})");
    }

    /// A driver PCIDRV keeps running: what it starts it with, every time.
    struct Driver {
        at: Location,
        caps: heapless::Vec<Cap, 12>,
        /// Its argument: the function, `ssss:bb:dd.f`.
        name: heapless::String<16>,
    }

    impl Driver {
        fn spawn(&self, procs: &ProcessClient) -> Result<Spawned, SpawnError> {
            let args = ["ahcidrv", self.name.as_str()];
            procs.spawn(&SpawnArgs { path: "boot:/ahcidrv", args: &args, caps: &self.caps, stack_size: 0, priority: 8, restart: false })
        }
    }

    /// A thread: wait for the driver's end, start it again (same
    /// capabilities: the vector and channels are still ours) after the
    /// policy's back-off, or hold it when it keeps ending.
    fn supervise(arg: u64) {
        // SAFETY: `start_ahci` leaked this box for this thread alone.
        let (d, mut p) = *unsafe { Box::from_raw(arg as *mut (Driver, Process)) };
        let Ok(procs) = ProcessClient::find() else { return };
        let mut history = History::new(Policy::DEFAULT);
        loop {
            let end = p.wait();
            let _ = runtime::caps::drop_cap(p.token());
            println!("pcidrv: {} ahcidrv ended: {end:?}", d.at);
            p = loop {
                let now = runtime::time::uptime_ms();
                match history.ended(now) {
                    Decision::Hold => {
                        println!("pcidrv: {} ahcidrv held: it ended too often, not restarted", d.at);
                        return;
                    }
                    Decision::RestartAt(t) => {
                        let _ = runtime::time::sleep_ms(t.saturating_sub(now));
                    }
                }
                match d.spawn(&procs) {
                    Ok(s) => {
                        println!("pcidrv: {} restarted ahcidrv (pid {}, restart {})", d.at, s.pid, history.restarts);
                        break s.process;
                    }
                    Err(e) => println!("pcidrv: {} cannot restart ahcidrv: {e:?}", d.at),
                }
            };
        }
    }

    /// Start `ahcidrv` for `f` with its ABAR, its configuration page, an MSI
    /// vector (bind right only) and a private channel for configuration
    /// accesses; serve that channel and keep the driver running.
    fn start_ahci(ecam: &Ecam, bars: &PhysRange, f: &Function) {
        let Some(abar) = f.bars.iter().find(|b| b.index == 5 && b.base != 0) else {
            println!("pcidrv: {} AHCI: BAR5 not assigned, no driver started", f.at);
            return;
        };
        let Ok((bars_base, _)) = bars.info() else { return };
        let fn_off = u64::from(f.at.bus - ecam.start) * BUS + (u64::from(f.at.device) << 15) + (u64::from(f.at.function) << 12);
        let size = abar.size.next_multiple_of(PAGE);
        let (Ok(abar_cap), Ok(page_cap), Ok(chan)) = (
            bars.derive(abar.base.wrapping_sub(bars_base), size, abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE),
            ecam.cap.derive(fn_off, PAGE, abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE),
            Channel::create(),
        ) else {
            println!("pcidrv: {} cannot make the driver's capabilities", f.at);
            return;
        };
        // Never dropped: the vector stays ours (and the driver's across its
        // restarts) for as long as PCIDRV runs.
        let irq: Irq = match Irq::msi() {
            Ok((irq, _)) => irq,
            Err(e) => {
                println!("pcidrv: {} AHCI: no MSI vector for its driver: {e:?}", f.at);
                let _ = runtime::caps::drop_cap(chan.token());
                return;
            }
        };
        let Some(procs) = ProcessClient::find().ok() else {
            println!("pcidrv: no {}", system::protocol::NAME);
            return;
        };
        let mut caps: heapless::Vec<Cap, 12> = heapless::Vec::new();
        let _ = caps.push(Cap { id: DRIVER_CONFIG_CAP, token: chan.token(), rights: abi::ChannelRights::SEND.into() });
        let _ = caps.push(Cap { id: DRIVER_BAR_CAP, token: abar_cap.0, rights: (abi::PhysRights::READ | abi::PhysRights::WRITE).into() });
        let _ = caps.push(Cap { id: DRIVER_CONFIG_PAGE_CAP, token: page_cap.0, rights: (abi::PhysRights::READ | abi::PhysRights::WRITE).into() });
        let _ = caps.push(Cap { id: DRIVER_IRQ_CAP, token: irq.0, rights: abi::IrqRights::BIND.into() });
        for c in [SyscallClass::DebugPrint, SyscallClass::Thread, SyscallClass::ChannelCreate, SyscallClass::Dma] {
            if let Some(c) = Cap::class(c) {
                let _ = caps.push(c);
            }
        }
        // Its Names: the drivers' scope DEVMAN gave us for them (staged
        // with SYSTEM::PROCESS, which keeps it for restarts).
        if let Some(token) = runtime::init_cap(devman::PCIDRV_DRIVER_NAMES_CAP) {
            let rights = runtime::caps::inspect(token).map_or(0, |c| c.1);
            let _ = caps.push(Cap { id: abi::cap_id::class(SyscallClass::Names), token, rights: abi::RightsMask(rights) });
        }
        let mut name: heapless::String<16> = heapless::String::new();
        let _ = core::fmt::write(&mut name, format_args!("{}", f.at));
        let driver = Driver { at: f.at, caps, name };
        let started = match driver.spawn(&procs) {
            Ok(s) => {
                println!("pcidrv: {} started ahcidrv (pid {})", f.at, s.pid);
                s.process
            }
            Err(SpawnError::Call(runtime::rpc::CallError::Server(ProcessError::NotFound))) => {
                println!("pcidrv: {} AHCI: no boot:/ahcidrv in the image, not started", f.at);
                let _ = runtime::caps::drop_cap(chan.token());
                return;
            }
            Err(e) => {
                println!("pcidrv: {} cannot start ahcidrv: {e:?}", f.at);
                let _ = runtime::caps::drop_cap(chan.token());
                return;
            }
        };
        let watch = Box::into_raw(Box::new((driver, started)));
        if let Err(e) = runtime::process::spawn_thread(supervise, watch as u64, 8) {
            println!("pcidrv: {} no thread to supervise its driver: {e:?}", f.at);
            // SAFETY: the thread never started, so the box is still ours.
            drop(unsafe { Box::from_raw(watch) });
        }
        let va = runtime::mem::reserve(PAGE);
        if let Err(e) = ecam.cap.map(va, fn_off, PAGE, abi::MapFlags::READ | abi::MapFlags::WRITE) {
            println!("pcidrv: {} cannot map its page: {e:?}", f.at);
            return;
        }
        let transport = match ChannelTransport::new(chan) {
            Ok(t) => t,
            Err(e) => {
                println!("pcidrv: {} no window for its config server: {e:?}", f.at);
                return;
            }
        };
        let job = Box::into_raw(Box::new(Job { transport, page: FnPage { at: f.at, va } }));
        if let Err(e) = runtime::process::spawn_thread(serve_config, job as u64, 8) {
            println!("pcidrv: {} no config thread: {e:?}", f.at);
            // SAFETY: the thread never started, so the box is still ours.
            drop(unsafe { Box::from_raw(job) });
        }
    }

    fn num(s: Option<&str>) -> Option<u64> {
        s?.parse().ok()
    }

    fn main(args: runtime::Args) -> i32 {
        let (Some(segment), Some(start), Some(end)) = (num(args.get(1)), num(args.get(2)), num(args.get(3))) else {
            println!("pcidrv: usage: pcidrv <segment> <first bus> <last bus>");
            return 2;
        };
        let (Ok(segment), Ok(start), Ok(end)) = (u16::try_from(segment), u8::try_from(start), u8::try_from(end)) else {
            println!("pcidrv: bad bus range");
            return 2;
        };
        let Some(cap) = runtime::init_cap(caps::ECAM).map(PhysRange) else {
            println!("pcidrv: no ECAM capability");
            return 1;
        };
        let Ok((_, len)) = cap.info() else { return 1 };
        if end < start || len != (u64::from(end - start) + 1) * BUS {
            println!("pcidrv: the ECAM capability ({len:#x} bytes) does not cover buses {start:02x}-{end:02x}");
            return 1;
        }
        let mut ecam = Ecam { cap, start, end, va: [const { Cell::new(0) }; 256] };
        let mut functions = enumerate(&mut ecam, segment, start, end);
        let placed = assign_bars(&mut ecam, &mut functions, start, MMIO_WINDOW);
        if placed > 0 {
            println!("pcidrv: assigned {placed} memory BARs the firmware left at 0");
        }
        println!("pcidrv: segment {segment} buses {start:02x}-{end:02x}: {} functions", functions.len());
        for f in &functions {
            println!("pcidrv: {f}");
        }
        // The server's window too before any registration: see the
        // module docs (at rest once registered).
        let server = match Channel::create().and_then(ChannelTransport::new) {
            Ok(t) => t,
            Err(e) => {
                println!("pcidrv: cannot create its channel and window: {e:?}");
                return 1;
            }
        };
        let public = server.channel();
        // Drivers first: once the functions are registered, clients may
        // look for the drivers.
        let bars = runtime::init_cap(caps::BAR_MEMORY).map(PhysRange);
        let drivers = args.get(4) == Some("drivers");
        for f in functions.iter().filter(|f| f.is_ahci()) {
            match &bars {
                _ if !drivers => println!("pcidrv: {} AHCI: drivers not enabled (argument `drivers`)", f.at),
                Some(b) => start_ahci(&ecam, b, f),
                None => println!("pcidrv: {} AHCI: no device memory for its driver", f.at),
            }
        }
        // DEVMAN's registration capability: our channel published under PCI.
        if let Err(e) = public.register(&devman::pcidrv_name(segment, start)) {
            println!("pcidrv: cannot publish {}: {e:?}", devman::pcidrv_name(segment, start));
        }
        match DevmanClient::connect_wait(5000) {
            Ok(devman) => {
                let mut n = 0;
                for f in &functions {
                    let d: Device = f.device();
                    match devman.register(d, public) {
                        Ok(_) => n += 1,
                        Err(e) => println!("pcidrv: {} not registered: {e:?}", f.at),
                    }
                }
                println!("pcidrv: registered {n} functions with {}", devman::NAME);
            }
            Err(e) => println!("pcidrv: no {}: {e:?}", devman::NAME),
        }
        runtime::rpc::run_server_on("pcidrv", server, &mut ConfigServer::nobody(ecam))
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("pcidrv runs on the microkernel: build the image with `cargo run -p image-builder`");
    std::process::exit(2);
}
