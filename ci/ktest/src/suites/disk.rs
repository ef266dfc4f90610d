//! `disk`, `disk-cdrom`, `disk-none`: the AHCI driver on q35's built-in
//! controller (00:1f.2) with the disks the runner attached, and the IRQ
//! capabilities it completes its commands with.
//!
//! The suite plays the part of the spawner (pcidrv later): it derives the
//! controller's configuration page and ABAR from the device-memory
//! capability, allocates an MSI vector, and starts `ahcidrv` with exactly
//! those. Every command the driver runs ends with the MSI event (the
//! driver never polls for completion), so each read shows a real
//! interrupt delivered through the kernel. Read data is printed as
//! `disk: hash <disk> <lba> <count> <fnv1a>` lines that the runner compares
//! with hashes of the image files it made; the bytes written here are
//! checked in the image files after QEMU exits (`ci/runner/src/disk.rs`
//! holds the same layout).

use alloc::format;

use abi::{cap_id, rights, Error};
use ahcidrv::client::{ClientError, Disk};
use ahcidrv::proto::{StorageError, MAX_READ, MAX_WRITE, SECTOR, TAG};
use runtime::ipc::Channel;
use runtime::irq::Irq;
use runtime::mem::{map_anon, reserve, PhysRange};
use runtime::println;
use runtime::process::{Process, Spawn};

use crate::ensure;
use crate::harness::{expect_err, Context, Outcome, Suite};

/// ECAM page of 00:1f.2 (q35's AHCI function) at the standard ECAM base.
const AHCI_CONFIG: u64 = 0xb000_0000 + (0x1f << 15) + (2 << 12);
/// Where the suite puts the ABAR when the firmware left BAR5 unassigned
/// (qboot assigns no BARs): in q35's PCI hole, above ECAM.
const ABAR_DEFAULT: u64 = 0xc000_0000;
/// Where the written pattern goes: (disk, lba), [`MAX_WRITE`] sectors.
const WRITES: [(u8, u64); 2] = [(0, 2048), (1, 16)];

/// The sectors whose hashes the runner checks: (lba, count) for a disk of
/// `sectors` sectors.
fn reads(sectors: u64) -> [(u64, u32); 3] {
    [(0, MAX_READ), (1000, 3), (sectors - MAX_READ as u64, MAX_READ)]
}

/// Byte `i` of the pattern written at (disk, lba).
fn pattern(disk: u8, lba: u64, i: usize) -> u8 {
    ((i as u64 * 31 + disk as u64 * 101 + lba) % 251) as u8
}

/// The controller's capabilities, as a spawner hands them over.
pub(super) struct Hba {
    abar: PhysRange,
    config: PhysRange,
    irq: Irq,
}

pub(super) fn hba_caps() -> Result<Hba, alloc::string::String> {
    let device = PhysRange(runtime::init_cap(cap_id::DEVICE_MEMORY).ctx("device memory capability")?);
    let config = device.derive(AHCI_CONFIG, 4096, rights::READ | rights::WRITE | rights::DELEGATE).ctx("config page")?;
    let va = reserve(4096);
    config.map(va, 0, 4096, abi::map::READ | abi::map::WRITE).ctx("map config")?;
    let bar5_at = (va + 0x24) as *mut u32;
    // SAFETY: the configuration page is mapped just above; offsets 0 and
    // 0x24 are the ID and BAR5 registers.
    let (id, mut bar5) = unsafe { (core::ptr::read_volatile(va as *const u32), core::ptr::read_volatile(bar5_at)) };
    ensure!(id == 0x2922_8086, "00:1f.2 is {id:#x}, not the ICH9 AHCI controller");
    if bar5 & !0xfff == 0 {
        // SAFETY: as above; the function does not decode memory yet.
        bar5 = unsafe {
            core::ptr::write_volatile(bar5_at, ABAR_DEFAULT as u32);
            core::ptr::read_volatile(bar5_at)
        };
    }
    let abar = device.derive((bar5 & !0xfff) as u64, 4096, rights::READ | rights::WRITE | rights::DELEGATE).ctx("ABAR")?;
    let (irq, msi) = Irq::msi().ctx("allocate an MSI vector")?;
    println!("disk: controller ABAR {:#x}, MSI address {:#x} data {:#x}", bar5 & !0xfff, msi.address, msi.data);
    Ok(Hba { abar, config, irq })
}

pub(super) fn start_driver(h: &Hba) -> Result<Process, alloc::string::String> {
    let archive = runtime::ramfs::archive().ctx("ramfs")?;
    let image = archive.find("ahcidrv").ctx("ahcidrv image")?;
    let mut s = Spawn::new("ahcidrv", image.data).priority(10);
    s = s
        .cap(ahcidrv::cap_id::ABAR, h.abar.0, rights::READ | rights::WRITE)
        .cap(ahcidrv::cap_id::CONFIG, h.config.0, rights::READ | rights::WRITE)
        .cap(ahcidrv::cap_id::IRQ, h.irq.0, rights::BIND);
    for c in [abi::SyscallClass::DebugPrint, abi::SyscallClass::Thread, abi::SyscallClass::ChannelCreate, abi::SyscallClass::Names, abi::SyscallClass::Dma] {
        s = s.cap(cap_id::class(c), runtime::class_token(c), rights::USE);
    }
    let p = s.start().ctx("spawn ahcidrv")?;
    // The driver registers its controller name once every disk is up.
    let start = runtime::time::uptime_ms();
    while Channel::find("AHCI::HBA0").is_err() {
        if let Ok(e) = p.wait_timeout(0) {
            return Err(format!("ahcidrv ended during start-up: {e:?}"));
        }
        ensure!(runtime::time::uptime_ms() - start < 20_000, "ahcidrv did not come up");
        let _ = runtime::time::sleep_ms(5);
    }
    Ok(p)
}

pub fn run(variant: &str) -> i32 {
    let disks: u8 = match variant {
        "disk" => 2,
        "disk-cdrom" => 1,
        _ => 0,
    };
    let mut s = Suite::new(variant);
    let mut hba = None;
    let mut driver = None;
    s.case("the controller's capabilities: config page, ABAR, MSI vector", || {
        hba = Some(hba_caps()?);
        Ok(())
    });
    let Some(h) = hba else { return s.finish() };
    s.case("ahcidrv starts with only those capabilities and registers its disks", || {
        let p = start_driver(&h)?;
        for n in 0..disks {
            Disk::open(n).map_err(|e| format!("AHCI::DISK{n}: {e:?}"))?;
        }
        expect_err(Channel::find(&ahcidrv::disk_name(disks)).map(|_| ()), Error::NotFound, "one disk too many")?;
        driver = Some(p);
        Ok(())
    });
    s.case("a second holder cannot bind the driver's IRQ", || {
        let c = Channel::create().ctx("channel")?;
        let r = h.irq.bind(&c, 0);
        let _ = c.destroy();
        expect_err(r, Error::Busy, "bind while the driver holds it")
    });
    for n in 0..disks {
        s.case(&format!("disk {n}: IDENTIFY information"), || info(n));
        s.case(&format!("disk {n}: reads of known sectors (hashes checked by the runner)"), || read_known(n, "before"));
        s.case(&format!("disk {n}: bad requests get clear errors"), || bad_requests(n));
    }
    for &(n, lba) in WRITES.iter().filter(|w| w.0 < disks) {
        s.case(&format!("disk {n}: write a pattern, flush, read it back"), || write_back(n, lba));
    }
    s.case("a killed driver releases its IRQ; restarted, its disks come back", || {
        let p = driver.take().ctx("no driver")?;
        p.kill().ctx("kill")?;
        p.wait().ctx("wait")?;
        if disks > 0 {
            ensure!(matches!(Disk::open(0), Err(ClientError::Ipc(Error::NotFound))), "the dead driver's name is still there");
        }
        let c = Channel::create().ctx("channel")?;
        let bound = h.irq.bind(&c, 0);
        let _ = c.destroy(); // which unbinds it again
        bound.ctx("bind after the driver died")?;
        driver = Some(start_driver(&h)?);
        for n in 0..disks {
            read_known(n, "after")?;
        }
        Ok(())
    });
    if let Some(p) = driver {
        let _ = p.kill();
    }
    s.finish()
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
    // Not the protocol at all: wrong tag, garbage body.
    let (result, _) = d.raw(TAG + 1, &[0, 0]).map_err(|e| format!("{e:?}"))?;
    ensure!(result == ahcidrv::proto::ERR, "wrong tag answered {result}");
    let (result, _) = d.raw(TAG, &[0xff; 7]).map_err(|e| format!("{e:?}"))?;
    ensure!(result == ahcidrv::proto::ERR, "garbage answered {result}");
    // The driver still works.
    d.read(0, 1).map_err(|e| format!("read after bad requests: {e:?}"))?;
    Ok(())
}

fn write_back(n: u8, lba: u64) -> Outcome {
    let mut d = Disk::open(n).map_err(|e| format!("{e:?}"))?;
    let bytes = MAX_WRITE as usize * SECTOR;
    let va = reserve(4096);
    map_anon(va, 4096, abi::map::READ | abi::map::WRITE).ctx("buffer")?;
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
