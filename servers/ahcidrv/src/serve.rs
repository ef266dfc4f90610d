//! The driver's start-up and request loop.

use abi::FOREVER;
use ahcidrv::hba::{Disk, Hba};
use ahcidrv::proto::{DiskInfo, Request, StorageError, ERR, OK, SECTOR, WRITE_DATA};
use ahcidrv::{ata, cap_id};
use runtime::ipc::{Channel, Window};
use runtime::irq::{event_badge, Irq};
use runtime::mem::{dma_addr, PhysRange};
use runtime::println;

runtime::entry!(main);

fn main(_args: runtime::Args) -> i32 {
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
    let chan = match Channel::create() {
        Ok(c) => c,
        Err(e) => {
            println!("ahcidrv: no channel: {e:?}");
            return 4;
        }
    };
    for n in 0..hba.disks.len() {
        if let Err(e) = chan.register(&ahcidrv::disk_name(n as u8)) {
            println!("ahcidrv: cannot register disk {n}: {e:?}");
        }
    }
    // The controller's own name, last: whoever waits for it finds every disk.
    if let Err(e) = chan.register("AHCI::HBA0") {
        println!("ahcidrv: cannot register AHCI::HBA0: {e:?}");
    }
    println!("ahcidrv: serving {} disk(s)", hba.disks.len());
    let Ok(mut window) = Window::new() else { return 5 };
    loop {
        let Ok(mut r) = chan.receive(&mut window, FOREVER) else { continue };
        if event_badge(&r).is_some() {
            continue;
        }
        let size = r.size;
        let outcome = Request::decode(r.tag, r.data()).and_then(|req| handle(&mut hba, req, r.window(), size));
        let _ = match outcome {
            Ok(len) => r.reply(OK, len),
            Err(e) => {
                let n = postcard::to_slice(&e, &mut r.window()[..]).map(|b| b.len()).unwrap_or(0);
                r.reply(ERR, n.min(size))
            }
        };
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
