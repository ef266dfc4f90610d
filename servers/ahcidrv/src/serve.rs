//! The driver's start-up and request loop.

use abi::FOREVER;
use ahcidrv::hba::{Disk, Hba};
use ahcidrv::proto::{BufferRefusal, DiskInfo, Read, ReadBuf, Request, StorageError, Write, WriteBuf, SECTOR, WRITE_DATA};
use runtime::rpc::{Call, ChannelTransport, Done, Handler};
use ahcidrv::{ata, cap_id};
use devman::proto::Location;
use runtime::ipc::{Channel, Window};
use runtime::irq::Irq;
use runtime::mem::{dma_addr, PhysRange};
use runtime::println;

extern crate alloc;
use alloc::boxed::Box;
use ahcidrv::turns::{Baton, Turns};

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
    let hba = match Hba::init(&PhysRange(abar), &PhysRange(cfg), Irq(irq)) {
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
    let ports: alloc::vec::Vec<u16> = hba.disks.iter().map(|d| u16::from(d.port)).collect();
    // Every serving thread reaches the controller through its turns.
    let turns = match Channel::create() {
        Ok(c) => TurnChannel(c),
        Err(e) => {
            println!("ahcidrv: no channel for turns at the controller: {e:?}");
            return 3;
        }
    };
    let shared: &'static Shared = Box::leak(Box::new(Turns::new(turns, hba)));
    // One channel and one thread per disk: a client holding one disk's
    // channel can address no other (the request's disk must be the
    // channel's).
    let devman = devman::DevmanClient::connect_wait(1000).ok();
    let controller = args.get(1).and_then(|a| a.parse::<Location>().ok());
    let prio = runtime::time::priority().map_or(1, |p| p.0);
    for (n, &port) in ports.iter().enumerate() {
        let n8 = n as u8;
        let Ok(job) = Served::new(n8, shared) else {
            println!("ahcidrv: no channel for disk {n}");
            continue;
        };
        let chan = job.transport.channel();
        if let Err(e) = chan.register(&ahcidrv::disk_name(n8)) {
            println!("ahcidrv: cannot register disk {n}: {e:?}");
        }
        if let (Some(dm), Some(at)) = (&devman, controller) {
            if let Err(e) = dm.register(ahcidrv::registry_entry(at, port), chan) {
                println!("ahcidrv: disk {n} not registered with DEVMAN: {e:?}");
            }
        }
        let job = Box::into_raw(Box::new(job));
        if let Err(e) = runtime::process::spawn_thread(serve_disk, job as u64, prio) {
            println!("ahcidrv: no thread for disk {n}: {e:?}");
            // SAFETY: the thread never started, so the box is still ours.
            drop(unsafe { Box::from_raw(job) });
        }
    }
    if let Some(dm) = devman {
        let _ = runtime::caps::drop_cap(dm.client().channel().token());
    }
    // The controller's own name, last: whoever waits for it finds every
    // disk, by name and in DEVMAN. This thread serves it; its channel
    // addresses no disk (every request gets `NoDisk`).
    let hba = match Served::new(NO_DISK, shared).and_then(|s| s.transport.channel().register("AHCI::HBA0").map(|_| s)) {
        Ok(s) => s,
        Err(e) => {
            println!("ahcidrv: cannot serve AHCI::HBA0: {e:?}");
            return 4;
        }
    };
    println!("ahcidrv: serving {} disk(s)", ports.len());
    hba.run();
    5
}

/// A client's attached buffer: physical base and length.
#[derive(Clone, Copy)]
struct Buffer {
    base: u64,
    len: u64,
}

/// The buffer capability `cap` names, if it is a physical range we may
/// read and write of an attachable size; otherwise why not.
fn buffer(cap: u64) -> Result<Buffer, BufferRefusal> {
    if cap == 0 {
        return Err(BufferRefusal::Missing);
    }
    let (kind, rights, _, _) = runtime::caps::inspect(cap).map_err(|_| BufferRefusal::Missing)?;
    if kind != abi::CapKind::Phys {
        return Err(BufferRefusal::NotPhysical);
    }
    let rw = abi::PhysRights::READ | abi::PhysRights::WRITE;
    if !abi::PhysRights::from_bits_truncate(rights).contains(rw) {
        return Err(BufferRefusal::Rights);
    }
    let (base, len) = PhysRange(cap).info().map_err(|_| BufferRefusal::NotPhysical)?;
    if !(ahcidrv::proto::BUF_MIN..=ahcidrv::proto::BUF_MAX).contains(&len) {
        return Err(BufferRefusal::Size);
    }
    Ok(Buffer { base, len })
}

/// The disk index of the controller's own channel (`AHCI::HBA0`): none.
const NO_DISK: u8 = u8::MAX;

/// The controller, shared by the serving threads, one command at a time
/// (they share its MSI vector): a thread that finds it busy blocks until
/// the holder hands it the turn.
type Shared = Turns<TurnChannel, Hba>;

/// Turns travel as messages on a private channel: the holder's send
/// returns once a waiter has received (and answered) it.
struct TurnChannel(Channel);

/// The tag of a turn message.
const TURN: u64 = 1;

impl Baton for TurnChannel {
    type Waiter = Window;

    fn pass(&self) {
        // Only this process holds the channel, and a counted waiter always
        // comes to receive: this returns. If it ever fails, the turn is lost
        // and every waiter would hang: end the driver so PCIDRV restarts it.
        if let Err(e) = self.0.send(TURN, &[]) {
            turn_lost("pass", e);
        }
    }

    fn wait(&self, window: &mut Window) {
        loop {
            match self.0.receive(window, FOREVER) {
                Ok(r) if r.tag == TURN => {
                    let _ = r.reply(0, 0);
                    return;
                }
                // Nothing else is ever sent here.
                Ok(r) => drop(r.reply(0, 0)),
                // A receive on our own private channel and window cannot
                // fail but by a broken invariant: do not spin on it.
                Err(e) => turn_lost("wait", e),
            }
        }
    }
}

/// The turn channel broke: say so and end, so that PCIDRV's supervision
/// restarts the driver instead of leaving its disks hung.
fn turn_lost(what: &str, e: impl core::fmt::Debug) -> ! {
    println!("ahcidrv: turn channel {what} failed: {e:?}; exiting for a restart");
    runtime::exit(1)
}

/// A channel's serving state: its transport (receive window) and server
/// (turn window). Made before any name points at the channel, so every
/// page the driver maps is mapped by the time its names appear (a test
/// that compares the kernel's books once the driver is up sees none come
/// later).
struct Served {
    transport: ChannelTransport,
    server: DiskServer,
}

impl Served {
    /// Disk `n`'s (for [`NO_DISK`]: none) on a new channel.
    fn new(n: u8, shared: &'static Shared) -> Result<Served, abi::Error> {
        let transport = ChannelTransport::new(Channel::create()?)?;
        let server = DiskServer { n, shared, turn_window: Window::new()?, attached: None };
        Ok(Served { transport, server })
    }

    /// Serve with the runtime's serve loop (bad frames never reach
    /// [`DiskServer`]) until the channel is gone.
    fn run(mut self) {
        let e = runtime::rpc::serve(&mut self.transport, &mut self.server);
        println!("ahcidrv: channel gone: {e:?}");
    }
}

fn serve_disk(arg: u64) {
    // SAFETY: `main` leaked this box for this thread alone.
    let job = unsafe { Box::from_raw(arg as *mut Served) };
    job.run();
}

/// One disk channel's server: its disk, the controller's turns, and the
/// channel's attached buffer with our capability for it.
struct DiskServer {
    n: u8,
    shared: &'static Shared,
    /// Where this thread waits for its turn at the controller.
    turn_window: Window,
    attached: Option<(u64, Buffer)>,
}

impl Handler for DiskServer {
    type Request = Request;

    fn handle(&mut self, req: Request, mut call: Call<'_>) -> Done {
        if req.disk() != self.n || self.n == NO_DISK {
            return call.err(StorageError::NoDisk);
        }
        if let Request::Attach(_) = req {
            // Taken here, so it is ours to keep or drop.
            let cap = call.take_cap();
            return match cap.ok_or(BufferRefusal::Missing).and_then(buffer) {
                Ok(b) => {
                    if let Some((old, _)) = self.attached.replace((cap.unwrap_or(0), b)) {
                        let _ = runtime::caps::drop_cap(old);
                    }
                    call.ok(&())
                }
                Err(why) => {
                    if let Some(c) = cap {
                        let _ = runtime::caps::drop_cap(c);
                    }
                    call.err(StorageError::BadBuffer(why))
                }
            };
        }
        let page_op = matches!(req, Request::Read(_) | Request::Write(_));
        let (handoffs, buf) = (self.shared.handoffs(), self.attached.map(|a| a.1));
        let win = call.page();
        match self.shared.with(&mut self.turn_window, |hba| handle(hba, req, win, buf, handoffs)) {
            Err(e) => call.err(e),
            Ok(Some(info)) => call.ok(&info),
            Ok(None) if page_op => call.page_done(),
            Ok(None) => call.ok(&()),
        }
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

/// Carry out `req` (all but `Attach`); a page operation's page is `win`
/// (lent: the device reaches it in place). Returns `Info`'s answer.
fn handle(hba: &mut Hba, req: Request, win: &mut [u8; abi::PAGE_SIZE], buf: Option<Buffer>, handoffs: u64) -> Result<Option<DiskInfo>, StorageError> {
    let mut disks = core::mem::take(&mut hba.disks);
    let out = (|| {
        let d: &mut Disk = disks.get_mut(req.disk() as usize).ok_or(StorageError::NoDisk)?;
        req.check(d.id.sectors)?;
        match req {
            Request::Info(_) => Ok(Some(DiskInfo {
                port: d.port,
                sectors: d.id.sectors,
                model: d.id.model.clone(),
                serial: d.id.serial.clone(),
                direct: d.direct,
                handoffs,
            })),
            Request::Read(Read { lba, count, .. }) => {
                let bytes = count as usize * SECTOR;
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
                Ok(None)
            }
            Request::Write(Write { lba, count, .. }) => {
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
                Ok(None)
            }
            Request::Flush(_) => {
                hba.command(d, ata::FLUSH_CACHE_EXT, 0, 0, (0, 0), false)?;
                Ok(None)
            }
            Request::ReadBuf(ReadBuf { lba, count, .. }) => {
                let bytes = count as usize * SECTOR;
                let b = buf.filter(|b| bytes as u64 <= b.len).ok_or(StorageError::NoBuffer)?;
                hba.command(d, ata::READ_DMA_EXT, lba, count as u16, (b.base, bytes), false)?;
                d.direct += 1;
                Ok(None)
            }
            Request::WriteBuf(WriteBuf { lba, count, .. }) => {
                let bytes = count as usize * SECTOR;
                let b = buf.filter(|b| bytes as u64 <= b.len).ok_or(StorageError::NoBuffer)?;
                hba.command(d, ata::WRITE_DMA_EXT, lba, count as u16, (b.base, bytes), true)?;
                d.direct += 1;
                Ok(None)
            }
            // Taken by the serving thread before any hardware is involved.
            Request::Attach(_) => Err(StorageError::BadRequest),
        }
    })();
    hba.disks = disks;
    out
}
