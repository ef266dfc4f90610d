//! The driver's start-up and request loop.

use abi::FOREVER;
use ahcidrv::hba::{Disk, Hba};
use ahcidrv::proto::{DiskInfo, Request, StorageError, ERR, OK, SECTOR, WRITE_DATA};
use ahcidrv::{ata, cap_id};
use devman::proto::Location;
use runtime::ipc::{Channel, Window};
use runtime::irq::Irq;
use runtime::mem::{dma_addr, PhysRange};
use runtime::println;

extern crate alloc;
use alloc::boxed::Box;

runtime::entry!(main);

fn main(args: runtime::Args) -> i32 {
    let (Some(abar), Some(cfg), Some(irq)) =
        (runtime::init_cap(cap_id::ABAR), runtime::init_cap(cap_id::CONFIG), runtime::init_cap(cap_id::IRQ))
    else {
        println!("ahcidrv: missing start capabilities (ABAR, CONFIG, IRQ)");
        return 2;
    };
    if let Some(bus) = runtime::init_cap(cap_id::BUS) {
        // At our own priority: the end must not wait behind others.
        let prio = runtime::time::priority().map_or(1, |p| p.0);
        if let Err(e) = runtime::process::spawn_thread(follow_bus_driver, bus, prio) {
            println!("ahcidrv: cannot watch PCIDRV: {e:?}");
            return 6;
        }
    }
    let mut hba = match Hba::init(&PhysRange(abar), &PhysRange(cfg), Irq(irq)) {
        Ok(h) => h,
        Err(e) => {
            println!("ahcidrv: cannot start the controller: {e:?}");
            return 3;
        }
    };
    for (n, d) in hba.disks.iter().enumerate() {
        println!(
            "ahcidrv: disk {n} (port {}): model \"{}\", serial \"{}\", {} sectors ({} MiB)",
            d.port,
            d.id.model,
            d.id.serial,
            d.id.sectors,
            (d.id.sectors * d.id.sector_size as u64) >> 20
        );
    }
    let engine = match Channel::create() {
        Ok(c) => c,
        Err(e) => {
            println!("ahcidrv: no channel: {e:?}");
            return 4;
        }
    };
    // One channel and one thread per disk: a client holding one disk's
    // channel can address no other (the engine checks the request's disk).
    let devman = devman::DevmanClient::connect_wait(1000).ok();
    let controller = args.get(1).and_then(|a| a.parse::<Location>().ok());
    let prio = runtime::time::priority().map_or(1, |p| p.0);
    for n in 0..hba.disks.len() {
        let (n8, port) = (n as u8, u16::from(hba.disks[n].port));
        let Ok(chan) = Channel::create() else {
            println!("ahcidrv: no channel for disk {n}");
            continue;
        };
        if let Err(e) = chan.register(&ahcidrv::disk_name(n8)) {
            println!("ahcidrv: cannot register disk {n}: {e:?}");
        }
        if let (Some(dm), Some(at)) = (&devman, controller) {
            if let Err(e) = dm.register(ahcidrv::registry_entry(at, port), &chan) {
                println!("ahcidrv: disk {n} not registered with DEVMAN: {e:?}");
            }
        }
        if let Err(e) = serve_on(n8, chan, &engine, prio) {
            println!("ahcidrv: no thread for disk {n}: {e:?}");
        }
    }
    if let Some(dm) = devman {
        let _ = runtime::caps::drop_cap(dm.client().channel().token());
    }
    // The controller's own name, last: whoever waits for it finds every
    // disk, by name and in DEVMAN. Its channel addresses no disk (every
    // request gets `NoDisk`).
    let hba_name = Channel::create().and_then(|c| c.register("AHCI::HBA0").map(|_| c));
    if let Err(e) = hba_name.and_then(|c| serve_on(NO_DISK, c, &engine, prio)) {
        println!("ahcidrv: cannot serve AHCI::HBA0: {e:?}");
    }
    println!("ahcidrv: serving {} disk(s)", hba.disks.len());
    let Ok(mut window) = Window::new() else { return 5 };
    loop {
        let Ok(m) = engine.receive(&mut window, FOREVER) else { continue };
        let word = |i: usize| m.data().get(i * 8..i * 8 + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        let (disk, tag, size, addr) = (word(0), word(1), word(2) as usize, word(3));
        if m.size != ENGINE_MSG || size > abi::PAGE_SIZE {
            let _ = m.reply(pack(ERR, 0), 0);
            continue;
        }
        // SAFETY: only our disk threads hold the engine's channel, and
        // each sends the address of its own receive window, holding the
        // client's message, and waits in this call until the reply.
        let win = unsafe { &mut *(addr as *mut [u8; abi::PAGE_SIZE]) };
        let outcome = Request::decode(tag, &win[..size]).and_then(|req| {
            if u64::from(req.disk()) != disk || disk == u64::from(NO_DISK) {
                return Err(StorageError::NoDisk);
            }
            handle(&mut hba, req, win, size)
        });
        let answer = match outcome {
            Ok(len) => pack(OK, len),
            Err(e) => {
                let n = postcard::to_slice(&e, &mut win[..]).map(|b| b.len()).unwrap_or(0);
                pack(ERR, n.min(size))
            }
        };
        let _ = m.reply(answer, 0);
    }
}

/// The engine's messages: disk, tag, size, window address (8 bytes each).
const ENGINE_MSG: usize = 32;

/// An engine answer: the client's result and reply length in one word.
fn pack(result: u64, len: usize) -> u64 {
    (len as u64) << 32 | result
}

/// What a disk's serving thread starts with.
struct DiskThread {
    n: u8,
    chan: Channel,
    engine: u64,
}

/// The disk index of the controller's own channel (`AHCI::HBA0`): none.
const NO_DISK: u8 = u8::MAX;

/// Serve `chan` as disk `n`'s channel on a thread of its own.
fn serve_on(n: u8, chan: Channel, engine: &Channel, prio: u8) -> Result<(), abi::Error> {
    let job = Box::into_raw(Box::new(DiskThread { n, chan, engine: engine.token() }));
    runtime::process::spawn_thread(serve_disk, job as u64, prio).map(|_| ()).inspect_err(|_| {
        // SAFETY: the thread never started, so the box is still ours.
        drop(unsafe { Box::from_raw(job) });
    })
}

/// A thread: receive disk `n`'s requests on its own channel and have the
/// engine (the main thread, which owns the controller) carry each out in
/// place in this thread's window.
fn serve_disk(arg: u64) {
    // SAFETY: `main` leaked this box for this thread alone.
    let job = unsafe { Box::from_raw(arg as *mut DiskThread) };
    let engine = Channel::from_token(job.engine);
    let Ok(mut window) = Window::new() else { return };
    loop {
        let Ok(mut r) = job.chan.receive(&mut window, FOREVER) else { continue };
        let mut msg = [0u8; ENGINE_MSG];
        let addr = r.window().as_ptr() as u64;
        for (i, v) in [u64::from(job.n), r.tag, r.size as u64, addr].into_iter().enumerate() {
            msg[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        let answer = engine.send(0, &msg).unwrap_or(pack(ERR, 0));
        let _ = r.reply(answer & 0xffff_ffff, (answer >> 32) as usize);
    }
}

/// A thread: hold a `Watch` call on PCIDRV's config channel `bus`; when
/// the call ends, PCIDRV has ended (its MSI vector and config channel with
/// it), so the driver ends too, and the restarted PCIDRV starts a new one.
fn follow_bus_driver(bus: u64) {
    let client = runtime::rpc::Client::new(Channel::from_token(bus));
    let r = client.call(&pcidrv::config::Watch {});
    println!("ahcidrv: PCIDRV ended ({r:?}): ending with it");
    runtime::exit(7);
}

/// Carry out `req`; the message (and reply) is `win`, `size` bytes of it
/// sent. Returns the reply length.
fn handle(hba: &mut Hba, req: Request, win: &mut [u8; abi::PAGE_SIZE], size: usize) -> Result<usize, StorageError> {
    let mut disks = core::mem::take(&mut hba.disks);
    let out = (|| {
        let d: &mut Disk = disks.get_mut(req.disk() as usize).ok_or(StorageError::NoDisk)?;
        req.check(d.id.sectors)?;
        match req {
            Request::Info { .. } => {
                let info = DiskInfo {
                    port: d.port,
                    sectors: d.id.sectors,
                    model: d.id.model.clone(),
                    serial: d.id.serial.clone(),
                    direct: d.direct,
                };
                let n = postcard::to_slice(&info, &mut win[..]).map_err(|_| StorageError::BadRequest)?.len();
                if n > size {
                    return Err(StorageError::BadRequest);
                }
                Ok(n)
            }
            Request::Read { lba, count, .. } => {
                let bytes = count as usize * SECTOR;
                if bytes > size {
                    return Err(StorageError::BadRequest);
                }
                match dma_addr(win.as_ptr() as u64) {
                    // A lent page: the device writes it in place.
                    Ok(pa) => {
                        hba.command(d, ata::READ_DMA_EXT, lba, count as u16, (pa, bytes), false)?;
                        d.direct += 1;
                    }
                    Err(_) => {
                        let pa = d.data_pa();
                        hba.command(d, ata::READ_DMA_EXT, lba, count as u16, (pa, bytes), false)?;
                        win[..bytes].copy_from_slice(&d.data()[..bytes]);
                    }
                }
                Ok(bytes)
            }
            Request::Write { lba, count, .. } => {
                let bytes = count as usize * SECTOR;
                match dma_addr(win.as_ptr() as u64 + WRITE_DATA as u64) {
                    Ok(pa) => {
                        hba.command(d, ata::WRITE_DMA_EXT, lba, count as u16, (pa, bytes), true)?;
                        d.direct += 1;
                    }
                    Err(_) => {
                        d.data()[..bytes].copy_from_slice(&win[WRITE_DATA..WRITE_DATA + bytes]);
                        let pa = d.data_pa();
                        hba.command(d, ata::WRITE_DMA_EXT, lba, count as u16, (pa, bytes), true)?;
                    }
                }
                Ok(0)
            }
            Request::Flush { .. } => {
                hba.command(d, ata::FLUSH_CACHE_EXT, 0, 0, (0, 0), false)?;
                Ok(0)
            }
        }
    })();
    hba.disks = disks;
    out
}
