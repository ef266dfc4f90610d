//! `disks`, `readsector DISK LBA` and `hexdump DISK [offset] [len]`:
//! `ahcidrv`'s disks through the storage protocol, each by its name
//! `AHCI::DISK<n>` (the shell's `disk<n>`), whose channel answers for that
//! disk only. Reads go in the client's lent page, at most
//! `ahcidrv::proto::MAX_READ` sectors per request.

use alloc::string::String;

use ahcidrv::client::{ClientError, Disk};
use ahcidrv::proto::{MAX_READ, SECTOR};
use runtime::println;
use shell::devices::disk_number;
use shell::hexdump::Rows;

use crate::commands::shown;

/// Disks looked for by `disks` (`AHCI::DISK0`.. up to the first missing).
const MAX_DISKS: u8 = 32;

/// Disk `name`, or the error line of `cmd`.
fn open(cmd: &str, name: &str) -> Option<Disk> {
    let Some(n) = disk_number(name) else {
        println!("{cmd}: {}: not a disk (disks are disk0, disk1, ...; files are PREFIX:/PATH)", shown(name));
        return None;
    };
    match Disk::open(n) {
        Ok(d) => Some(d),
        Err(ClientError::Ipc(abi::Error::NotFound)) => {
            println!("{cmd}: {name}: no such disk (see disks)");
            None
        }
        Err(e) => {
            println!("{cmd}: {name}: {}", why(e));
            None
        }
    }
}

fn why(e: ClientError) -> String {
    match e {
        ClientError::Storage(s) => alloc::format!("{s:?}"),
        ClientError::Ipc(e) => alloc::format!("the driver is gone ({e:?})"),
        ClientError::Wire(w) => alloc::format!("the driver refused the request ({w:?})"),
        ClientError::BadReply => "bad reply from the driver".into(),
    }
}

/// Every disk: number, port, size, model, serial.
pub fn list() {
    let mut found = 0;
    for n in 0..MAX_DISKS {
        let Ok(mut d) = Disk::open(n) else { break };
        match d.info() {
            Ok(i) => println!(
                "disk{n}  port {}  {} sectors ({} MiB)  model \"{}\"  serial \"{}\"",
                i.port,
                i.sectors,
                i.sectors * SECTOR as u64 / (1024 * 1024),
                i.model.as_str(),
                i.serial.as_str()
            ),
            Err(e) => println!("disk{n}: {}", why(e)),
        }
        let _ = runtime::caps::drop_cap(d.channel().token());
        found += 1;
    }
    if found == 0 {
        println!("disks: none (no disk driver running)");
    }
}

/// Sector `lba` of `name`, as hexdump lines.
pub fn readsector(name: &str, lba: u64) {
    hexdump_sectors("readsector", name, lba.saturating_mul(SECTOR as u64), SECTOR as u64);
}

/// `len` bytes of `name` from byte `offset`.
pub fn hexdump(name: &str, offset: u64, len: u64) {
    hexdump_sectors("hexdump", name, offset, len);
}

fn hexdump_sectors(cmd: &str, name: &str, offset: u64, len: u64) {
    let Some(mut d) = open(cmd, name) else { return };
    let mut rows = Rows::new(offset);
    let mut print = |l: String| println!("{l}");
    let (mut at, end) = (offset, offset.saturating_add(len));
    while at < end {
        let lba = at / SECTOR as u64;
        let count = (end.div_ceil(SECTOR as u64) - lba).min(MAX_READ as u64) as u32;
        match d.read(lba, count) {
            Ok(bytes) => {
                let skip = (at - lba * SECTOR as u64) as usize;
                let take = (bytes.len() - skip).min((end - at) as usize);
                rows.push(&bytes[skip..skip + take], &mut print);
                at += take as u64;
            }
            Err(e) => {
                rows.finish(&mut print);
                println!("{cmd}: {name}: at sector {lba}: {}", why(e));
                let _ = runtime::caps::drop_cap(d.channel().token());
                return;
            }
        }
    }
    rows.finish(&mut print);
    let _ = runtime::caps::drop_cap(d.channel().token());
}
