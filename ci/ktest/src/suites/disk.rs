//! `disk`, `disk-cdrom`, `disk-none`: the AHCI driver on q35's built-in
//! controller (00:1f.2) with the disks the runner attached, and the IRQ
//! capabilities it completes its commands with.
//!
//! The driver is the one a plain boot starts: DEVMAN hands PCIDRV the Irq
//! class, PCIDRV allocates an MSI vector for the function and spawns
//! `ahcidrv` with its ABAR, configuration page, that vector and its
//! config channel; the suite finds it by name (`AHCI::HBA0`,
//! `AHCI::DISK<n>`) and in `SYSTEM::PROCESS`'s list, and kills it (and
//! PCIDRV) with the admin key `system` gives `ktest`, to see the real
//! restart paths. Every command the driver runs ends with the MSI event
//! (the driver never polls for completion), so each read shows a real
//! interrupt delivered through the kernel. Read data is printed as
//! `disk: hash <disk> <lba> <count> <fnv1a> <before|after>` lines that the
//! runner compares with hashes of the image files it made; the bytes
//! written here are checked in the image files after QEMU exits
//! (`ci/runner/src/disk.rs` holds the same layout).

use alloc::format;
use alloc::vec::Vec;

use abi::Error;
use ahcidrv::client::{ClientError, Disk};
use ahcidrv::proto::{Attach, BufferRefusal, Flush, Read, StorageError, MAX_BUF_READ, MAX_BUF_WRITE, MAX_READ, MAX_WRITE, SECTOR};
use runtime::rpc::wire::split_result;
use runtime::rpc::{CallError, Op, WireError};
use runtime::ipc::Channel;
use runtime::irq::Irq;
use runtime::mem::{map_anon, reserve, PhysRange};
use runtime::println;
use devman::proto::{Filter, Identity, Location, CLASS_DISK};
use system::client::ProcessClient;
use system::protocol::{ProcessInfo, RunState};

use crate::ensure;
use crate::harness::{expect_err, wait_until, Context, Outcome, Suite};

/// Where the written pattern goes: (disk, lba), [`MAX_WRITE`] sectors.
const WRITES: [(u8, u64); 2] = [(0, 2048), (1, 16)];
/// Where the pattern written through the attached buffer goes: (disk,
/// lba), [`MAX_BUF_WRITE`] sectors.
const BUF_WRITES: [(u8, u64); 2] = [(0, 4096), (1, 1024)];

/// The sectors whose hashes the runner checks: (lba, count) for a disk of
/// `sectors` sectors.
fn reads(sectors: u64) -> [(u64, u32); 3] {
    [(0, MAX_READ), (1000, 3), (sectors - MAX_READ as u64, MAX_READ)]
}

/// Byte `i` of the pattern written at (disk, lba).
fn pattern(disk: u8, lba: u64, i: usize) -> u8 {
    ((i as u64 * 31 + disk as u64 * 101 + lba) % 251) as u8
}

/// Wait until the boot-started `ahcidrv` (PCIDRV's) has registered its
/// controller name, which it does once every disk is up.
pub(super) fn boot_driver() -> Outcome {
    let start = runtime::time::uptime_ms();
    while Channel::find("AHCI::HBA0").is_err() {
        ensure!(runtime::time::uptime_ms() - start < 20_000, "no AHCI::HBA0: PCIDRV started no ahcidrv (or it did not come up)");
        let _ = runtime::time::sleep_ms(5);
    }
    Ok(())
}

/// The running programs called `name` in `SYSTEM::PROCESS`'s list.
fn running(c: &ProcessClient, name: &str) -> Result<Vec<ProcessInfo>, alloc::string::String> {
    let list = c.list().map_err(|e| format!("list: {e:?}"))?.processes;
    Ok(list.into_iter().filter(|p| p.name == name && p.state == RunState::Running).collect())
}

/// The one running `ahcidrv`'s pid (one controller, one driver).
fn the_driver(c: &ProcessClient) -> Result<u64, alloc::string::String> {
    let d = running(c, "ahcidrv")?;
    ensure!(d.len() == 1, "{} ahcidrv processes running, not one: {d:?}", d.len());
    Ok(d[0].pid)
}

fn hba_gone() -> bool {
    Channel::find("AHCI::HBA0").map(|c| runtime::caps::drop_cap(c.token())).is_err()
}

pub fn run(variant: &str) -> i32 {
    let disks: u8 = match variant {
        "disk" => 2,
        "disk-cdrom" => 1,
        _ => 0,
    };
    let mut s = Suite::new(variant);
    let procs = match ProcessClient::find() {
        Ok(c) => c,
        Err(e) => {
            s.case("SYSTEM::PROCESS is registered", || Err(format!("{e:?}")));
            return s.finish();
        }
    };
    let c = &procs;
    s.case("the boot's ahcidrv (started by PCIDRV with an MSI vector) registers its disks", || {
        boot_driver()?;
        the_driver(c)?;
        for n in 0..disks {
            Disk::open(n).map_err(|e| format!("AHCI::DISK{n}: {e:?}"))?;
        }
        expect_err(Channel::find(&ahcidrv::disk_name(disks)).map(|_| ()), Error::NotFound, "one disk too many")
    });
    s.case("an MSI vector bound to one channel refuses a second binding", || {
        let (irq, _) = Irq::msi().ctx("allocate an MSI vector")?;
        let (a, b) = (Channel::create().ctx("channel")?, Channel::create().ctx("channel")?);
        irq.bind(&a, 0).ctx("first bind")?;
        let second = irq.bind(&b, 0);
        let _ = a.destroy(); // which unbinds it again
        let third = irq.bind(&b, 0);
        let _ = (b.destroy(), runtime::caps::drop_cap(irq.0));
        expect_err(second, Error::Busy, "bind while bound")?;
        third.ctx("bind after the first channel is gone")
    });
    s.case("DEVMAN lists each disk (controller 00:1f.2, its port) with its own channel", || registry(disks));
    if disks == 2 {
        s.case("disk 0's channel cannot address disk 1", || {
            let mut other = Disk::on(Channel::find(&ahcidrv::disk_name(0)).ctx("find")?, 1);
            let got = other.info().map(|_| ());
            ensure!(got == Err(ClientError::Storage(StorageError::NoDisk)), "disk 1 through disk 0's channel: {got:?}");
            Disk::open(1).map_err(|e| format!("{e:?}"))?.info().map_err(|e| format!("disk 1 through its own: {e:?}"))?;
            let mut hba = Disk::on(Channel::find("AHCI::HBA0").ctx("find")?, 0);
            let got = hba.info().map(|_| ());
            ensure!(got == Err(ClientError::Storage(StorageError::NoDisk)), "disk 0 through AHCI::HBA0: {got:?}");
            Ok(())
        });
    }
    if disks == 2 {
        s.case("disks 0 and 1 read at once from two threads: a thread that finds the controller busy is handed its turn, every read right", both_at_once);
    }
    for n in 0..disks {
        s.case(&format!("disk {n}: IDENTIFY information"), || info(n));
        s.case(&format!("disk {n}: reads of known sectors (hashes checked by the runner)"), || read_known(n, "before"));
        s.case(&format!("disk {n}: bad requests get clear errors"), || bad_requests(n));
        s.case(&format!("disk {n}: a 64 KiB read into an attached DMA buffer equals 16 page reads; bad buffers refused"), || buffer_read(n));
    }
    for &(n, lba) in WRITES.iter().filter(|w| w.0 < disks) {
        s.case(&format!("disk {n}: write a pattern, flush, read it back"), || write_back(n, lba));
    }
    for &(n, lba) in BUF_WRITES.iter().filter(|w| w.0 < disks) {
        s.case(&format!("disk {n}: write 64 KiB from the attached buffer in one command, read it back by pages"), || buffer_write(n, lba));
    }
    s.case("ahcidrv killed: its names go, PCIDRV restarts it, it binds its IRQ again, the same sectors read again", || {
        let pid = the_driver(c)?;
        c.kill(pid).ctx("kill through SYSTEM::PROCESS")?;
        ensure!(hba_gone(), "the dead driver's AHCI::HBA0 is still there");
        if disks > 0 {
            ensure!(matches!(Disk::open(0), Err(ClientError::Ipc(Error::NotFound))), "the dead driver's AHCI::DISK0 is still there");
        }
        let left = disk_entries()?;
        ensure!(left.is_empty(), "the dead driver's disks are still in DEVMAN: {left:?}");
        // The restarted driver binds the same vector (PCIDRV keeps it): it
        // only comes up if the dead one's binding was released.
        boot_driver()?;
        the_driver(c)?;
        registry(disks)?;
        for n in 0..disks {
            read_known(n, "after")?;
        }
        Ok(())
    });
    s.case("a restarted PCIDRV leaves one driver per controller", || {
        let pci = running(c, "pcidrv")?;
        ensure!(pci.len() == 1, "{} pcidrv running: {pci:?}", pci.len());
        let restarts = pci[0].restarts;
        c.kill(pci[0].pid).ctx("kill pcidrv")?;
        // Its driver ends with it (its Watch call ends)...
        wait_until("the old ahcidrv's end", hba_gone)?;
        // ...and system restarts PCIDRV, which starts one driver again.
        wait_until("PCIDRV's restart", || running(c, "pcidrv").is_ok_and(|p| p.len() == 1 && p[0].restarts == restarts + 1))?;
        boot_driver()?;
        // Time for a second driver to show up, were there one.
        let _ = runtime::time::sleep_ms(300);
        the_driver(c)?;
        for n in 0..disks {
            read_known(n, "after")?;
        }
        Ok(())
    });
    s.finish()
}

/// Reads each thread of [`both_at_once`] makes.
const AT_ONCE_READS: u32 = 40;
/// What disk 1's first page hashes to, for the second thread.
static AT_ONCE_HASH: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// The second thread's outcome: 0 running, 1 all right, 2 a read failed,
/// 3 a read returned other bytes.
static AT_ONCE_DONE: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn at_once_reader(_: u64) {
    use core::sync::atomic::Ordering::SeqCst;
    let mut outcome = 1;
    match Disk::open(1) {
        Ok(mut d) => {
            for _ in 0..AT_ONCE_READS {
                match d.read(0, MAX_READ) {
                    Ok(b) if ahcidrv::fnv1a(b) == AT_ONCE_HASH.load(SeqCst) => {}
                    Ok(_) => outcome = 3,
                    Err(_) => outcome = 2,
                }
            }
        }
        Err(_) => outcome = 2,
    }
    AT_ONCE_DONE.store(outcome, SeqCst);
}

/// Disk 0 read here while a second thread reads disk 1: the driver's two
/// serving threads want the controller at once, and the one that finds it
/// busy is handed its turn (`handoffs` rises), never left sleeping.
fn both_at_once() -> Outcome {
    use core::sync::atomic::Ordering::SeqCst;
    let (mut d0, mut d1) = (Disk::open(0).map_err(|e| format!("{e:?}"))?, Disk::open(1).map_err(|e| format!("{e:?}"))?);
    let want0 = ahcidrv::fnv1a(d0.read(0, MAX_READ).map_err(|e| format!("read: {e:?}"))?);
    AT_ONCE_HASH.store(ahcidrv::fnv1a(d1.read(0, MAX_READ).map_err(|e| format!("read: {e:?}"))?), SeqCst);
    AT_ONCE_DONE.store(0, SeqCst);
    let before = d0.info().map_err(|e| format!("info: {e:?}"))?.handoffs;
    let prio = runtime::time::priority().map_or(16, |p| p.0);
    runtime::process::spawn_thread(at_once_reader, 0, prio).ctx("thread")?;
    for i in 0..AT_ONCE_READS {
        let got = d0.read(0, MAX_READ).map_err(|e| format!("read {i}: {e:?}"))?;
        ensure!(ahcidrv::fnv1a(got) == want0, "read {i} of disk 0 returned other bytes");
    }
    wait_until("the second thread's reads", || AT_ONCE_DONE.load(SeqCst) != 0)?;
    ensure!(AT_ONCE_DONE.load(SeqCst) == 1, "the second thread's reads of disk 1: {}", ["", "", "failed", "returned other bytes"][AT_ONCE_DONE.load(SeqCst) as usize]);
    let after = d0.info().map_err(|e| format!("info: {e:?}"))?.handoffs;
    ensure!(after > before, "no serving thread was handed its turn ({before} -> {after} handoffs): the reads never overlapped, or waiters do not get the turn handed");
    Ok(())
}

/// DEVMAN's disk entries.
fn disk_entries() -> Result<Vec<devman::proto::Entry>, alloc::string::String> {
    let dm = devman::DevmanClient::connect().map_err(|e| format!("DEVMAN: {e:?}"))?;
    let r = dm.query(Filter::ByClass { class: CLASS_DISK, subclass: None, prog_if: None }).map_err(|e| format!("query: {e:?}"));
    let _ = runtime::caps::drop_cap(dm.client().channel().token());
    r
}

/// One DEVMAN entry per disk, on 00:1f.2 at the disk's port, whose
/// driver channel is that disk's (it answers for that disk only).
fn registry(disks: u8) -> Outcome {
    let entries = disk_entries()?;
    ensure!(entries.len() == disks as usize, "{} disk entries in DEVMAN, not {disks}: {entries:?}", entries.len());
    let ahci = Location { segment: 0, bus: 0, device: 0x1f, function: 2 };
    let dm = devman::DevmanClient::connect().map_err(|e| format!("DEVMAN: {e:?}"))?;
    for n in 0..disks {
        let port = Disk::open(n).map_err(|e| format!("{e:?}"))?.info().map_err(|e| format!("info: {e:?}"))?.port;
        let e = entries
            .iter()
            .find(|e| e.device.identity == Identity::Port { controller: ahci, port: port.into() })
            .ok_or_else(|| format!("no entry for disk {n} (port {port}) in {entries:?}"))?;
        ensure!(e.device.parent == Some(ahci), "disk {n}'s parent is {:?}", e.device.parent);
        let chan = dm.driver(e.id).map_err(|e| format!("driver of disk {n}: {e:?}"))?;
        let mut d = Disk::on(chan, n);
        let i = d.info().map_err(|e| format!("info through DEVMAN's channel: {e:?}"))?;
        ensure!(i.port == port, "DEVMAN's channel for port {port} answers for port {}", i.port);
        let _ = runtime::caps::drop_cap(d.channel().token());
    }
    let _ = runtime::caps::drop_cap(dm.client().channel().token());
    Ok(())
}

fn info(n: u8) -> Outcome {
    let i = Disk::open(n).map_err(|e| format!("{e:?}"))?.info().map_err(|e| format!("info: {e:?}"))?;
    println!("disk: info {n} port {} sectors {} model \"{}\" serial \"{}\"", i.port, i.sectors, i.model, i.serial);
    ensure!(i.model.as_str() == "QEMU HARDDISK", "model {:?}", i.model);
    ensure!(!i.serial.is_empty(), "no serial");
    ensure!(i.sectors >= 4096, "capacity {} sectors", i.sectors);
    Ok(())
}

fn read_known(n: u8, when: &str) -> Outcome {
    let mut d = Disk::open(n).map_err(|e| format!("{e:?}"))?;
    let before = d.info().map_err(|e| format!("info: {e:?}"))?;
    for (lba, count) in reads(before.sectors) {
        let data = d.read(lba, count).map_err(|e| format!("read {lba}+{count}: {e:?}"))?;
        ensure!(data.len() == count as usize * SECTOR, "read {} bytes", data.len());
        println!("disk: hash {n} {lba} {count} {:016x} {when}", ahcidrv::fnv1a(data));
    }
    // Each read went straight into the lent page, not through a copy.
    let after = d.info().map_err(|e| format!("info: {e:?}"))?;
    ensure!(after.direct == before.direct + 3, "{} of 3 reads went straight to the lent page", after.direct - before.direct);
    Ok(())
}

fn bad_requests(n: u8) -> Outcome {
    let mut d = Disk::open(n).map_err(|e| format!("{e:?}"))?;
    let sectors = d.info().map_err(|e| format!("{e:?}"))?.sectors;
    let st = |e| Err(ClientError::Storage(e));
    let mut other = Disk::on(Channel::find(&ahcidrv::disk_name(n)).ctx("find")?, 9);
    type Got = Result<(), ClientError>;
    let cases: [(&str, Got, Got); 6] = [
        ("past the end", d.read(sectors, 1).map(|_| ()), st(StorageError::OutOfRange)),
        ("straddling the end", d.read(sectors - 1, 2).map(|_| ()), st(StorageError::OutOfRange)),
        ("zero sectors", d.read(0, 0).map(|_| ()), st(StorageError::ZeroCount)),
        ("above the read limit", d.read(0, MAX_READ + 1).map(|_| ()), st(StorageError::TooMany)),
        ("above the write limit", d.write(0, &[0; (MAX_WRITE as usize + 1) * SECTOR]), st(StorageError::TooMany)),
        ("no such disk", other.info().map(|_| ()), st(StorageError::NoDisk)),
    ];
    for (what, got, want) in cases {
        ensure!(got == want, "{what}: got {got:?}, expected {want:?}");
    }
    // Not the protocol at all: an unknown operation, a page operation
    // without its page, a body longer than the operation allows.
    for (what, tag, msg, want) in [
        ("an unknown operation", 99, &[0u8, 0][..], WireError::UnknownOperation),
        ("a read without its page", Read::OP, &[0xff; 7][..], WireError::NeedsPage),
        ("an oversized flush", Flush::OP, &[0xff; 7][..], WireError::Oversized),
    ] {
        let (result, _) = d.raw(tag, msg).map_err(|e| format!("{e:?}"))?;
        ensure!(split_result(result).0 == want.status(), "{what} answered {result:#x}, not {want:?}");
    }
    // The driver still works.
    d.read(0, 1).map_err(|e| format!("read after bad requests: {e:?}"))?;
    Ok(())
}

fn buffer_read(n: u8) -> Outcome {
    let mut d = Disk::open(n).map_err(|e| format!("{e:?}"))?;
    let no_buffer = Err(ClientError::Storage(StorageError::NoBuffer));
    ensure!(d.read_into_buffer(0, 8) == no_buffer, "read with no buffer attached");
    ensure!(d.write_from_buffer(0, 8) == no_buffer, "write with no buffer attached");
    let refused = |why| Err(ClientError::Storage(StorageError::BadBuffer(why)));
    let (big, _) = runtime::mem::dma_alloc(17).ctx("68 KiB of DMA memory")?;
    let got = d.attach(&big);
    ensure!(got == refused(BufferRefusal::Size), "a 68 KiB buffer: {got:?}");
    let chan = Channel::create().ctx("channel")?;
    let got = d.attach(&PhysRange(chan.token()));
    ensure!(got == refused(BufferRefusal::NotPhysical), "a channel as a buffer: {got:?}");
    let (read_only, _) = runtime::mem::dma_alloc(1).ctx("4 KiB of DMA memory")?;
    let raw = runtime::rpc::Client::new(Channel::find(&ahcidrv::disk_name(n)).ctx("find")?);
    let got = raw.call_with_cap(&Attach { disk: n }, read_only.0, abi::PhysRights::READ);
    ensure!(got == Err(CallError::Server(StorageError::BadBuffer(BufferRefusal::Rights))), "a read-only range: {got:?}");
    let got = raw.call(&Attach { disk: n });
    ensure!(got == Err(CallError::Server(StorageError::BadBuffer(BufferRefusal::Missing))), "attach without a capability: {got:?}");
    let mut other = Disk::on(Channel::find(&ahcidrv::disk_name(n)).ctx("find")?, n.wrapping_add(1));
    let got = other.attach(&read_only);
    ensure!(got == Err(ClientError::Storage(StorageError::NoDisk)), "attach for another disk: {got:?}");
    let (small, _) = runtime::mem::dma_alloc(1).ctx("4 KiB of DMA memory")?;
    d.attach(&small).map_err(|e| format!("attach 4 KiB: {e:?}"))?;
    ensure!(d.read_into_buffer(0, 9) == no_buffer, "9 sectors into a 4 KiB buffer");
    ensure!(d.write_from_buffer(0, 9) == no_buffer, "9 sectors from a 4 KiB buffer");
    let (buf, _) = runtime::mem::dma_alloc(16).ctx("64 KiB of DMA memory")?;
    d.attach(&buf).map_err(|e| format!("attach 64 KiB: {e:?}"))?;
    let too_many = Err(ClientError::Storage(StorageError::TooMany));
    ensure!(d.read_into_buffer(0, MAX_BUF_READ + 1) == too_many, "above the buffer read limit");
    let len = (MAX_BUF_READ as usize) * SECTOR;
    let va = reserve(len as u64);
    buf.map(va, 0, len as u64, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map the buffer")?;
    // SAFETY: mapped just above, only read here (the device writes it
    // while we wait in the call below, never while we read).
    let bytes = unsafe { core::slice::from_raw_parts(va as *const u8, len) };
    let before = d.info().map_err(|e| format!("info: {e:?}"))?.direct;
    d.read_into_buffer(0, MAX_BUF_READ).map_err(|e| format!("64 KiB read: {e:?}"))?;
    let whole = bytes.to_vec();
    ensure!(d.info().map_err(|e| format!("info: {e:?}"))?.direct == before + 1, "not one direct transfer");
    for i in 0..(MAX_BUF_READ / MAX_READ) as usize {
        let page = d.read((i * MAX_READ as usize) as u64, MAX_READ).map_err(|e| format!("read: {e:?}"))?;
        ensure!(page == &whole[i * 4096..(i + 1) * 4096], "page {i} of the 64 KiB read differs from its own read");
    }
    let _ = (chan.destroy(), runtime::caps::drop_cap(big.0), runtime::caps::drop_cap(small.0), runtime::caps::drop_cap(read_only.0));
    Ok(())
}

/// Write [`MAX_BUF_WRITE`] sectors of the pattern at `lba` from a freshly
/// attached 64 KiB buffer (the runner finds them in the image file).
fn buffer_write(n: u8, lba: u64) -> Outcome {
    let mut d = Disk::open(n).map_err(|e| format!("{e:?}"))?;
    let len = MAX_BUF_WRITE as usize * SECTOR;
    let (buf, _) = runtime::mem::dma_alloc((len / 4096) as u64).ctx("64 KiB of DMA memory")?;
    let va = reserve(len as u64);
    buf.map(va, 0, len as u64, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map the buffer")?;
    // SAFETY: mapped just above; the device only reads it, during the call.
    let bytes = unsafe { core::slice::from_raw_parts_mut(va as *mut u8, len) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = pattern(n, lba, i);
    }
    d.attach(&buf).map_err(|e| format!("attach 64 KiB: {e:?}"))?;
    let too_many = Err(ClientError::Storage(StorageError::TooMany));
    ensure!(d.write_from_buffer(lba, MAX_BUF_WRITE + 1) == too_many, "above the buffer write limit");
    let before = d.info().map_err(|e| format!("info: {e:?}"))?.direct;
    d.write_from_buffer(lba, MAX_BUF_WRITE).map_err(|e| format!("64 KiB write: {e:?}"))?;
    ensure!(d.info().map_err(|e| format!("info: {e:?}"))?.direct == before + 1, "not one direct transfer");
    d.flush().map_err(|e| format!("flush: {e:?}"))?;
    for i in 0..(MAX_BUF_WRITE / MAX_READ) as usize {
        let page = d.read(lba + (i * MAX_READ as usize) as u64, MAX_READ).map_err(|e| format!("read: {e:?}"))?;
        ensure!(page == &bytes[i * 4096..(i + 1) * 4096], "page {i} of the 64 KiB write reads back different");
    }
    let _ = runtime::caps::drop_cap(buf.0);
    println!("disk: wrote {n} {lba} {MAX_BUF_WRITE} from the buffer");
    Ok(())
}

fn write_back(n: u8, lba: u64) -> Outcome {
    let mut d = Disk::open(n).map_err(|e| format!("{e:?}"))?;
    let bytes = MAX_WRITE as usize * SECTOR;
    let va = reserve(4096);
    map_anon(va, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("buffer")?;
    // SAFETY: mapped just above, used only here.
    let buf = unsafe { core::slice::from_raw_parts_mut(va as *mut u8, bytes) };
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(n, lba, i);
    }
    d.write(lba, buf).map_err(|e| format!("write: {e:?}"))?;
    d.flush().map_err(|e| format!("flush: {e:?}"))?;
    let got = d.read(lba, MAX_WRITE).map_err(|e| format!("read back: {e:?}"))?;
    ensure!(got == &buf[..], "read back differs from what was written");
    println!("disk: wrote {n} {lba} {MAX_WRITE}");
    Ok(())
}
