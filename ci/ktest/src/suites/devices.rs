//! In-guest tests of DEVMAN and PCIDRV on QEMU's q35: the registry holds
//! what PCIDRV found on the real bus, both servers answer bad input with
//! errors and go on, PCIDRV refuses configuration space that is not the
//! caller's, and a killed PCIDRV's entries go and come back when `system`
//! restarts it.
//!
//! `system` starts DEVMAN from `etc/boot.conf` before ktest; DEVMAN starts
//! the boot PCIDRV. The killed one is a second PCIDRV this suite starts
//! through `SYSTEM::PROCESS` (supervised) over bus 0 under segment number
//! 1, so its entries are told apart from the boot one's.

use alloc::string::String;
use alloc::vec::Vec;

use abi::{cap_id, SyscallClass};
use devman::proto::{self as dp, BarKind, Entry, Filter, Identity, Location};
use devman::DevmanClient;
use pcidrv::config as pc;
use runtime::ipc::Channel;
use runtime::mem::PhysRange;
use runtime::rpc::{CallError, Client, Op};
use system::client::{Cap, ProcessClient, SpawnArgs};

use crate::ensure;
use crate::harness::{wait_until, Context, Outcome, Suite};
use crate::suites::servers::bad_frames;

pub fn run() -> i32 {
    let mut s = Suite::new("devices");
    s.case("devman: the registry lists q35's host bridge and AHCI controller with BAR5 of 4 KiB", q35_devices);
    s.case("devman: queries by class, id and bus agree with the whole list", queries);
    s.case("devman: register, unregister, ownership, a dead driver's entries go", registry);
    s.case("bad input: DEVMAN answers bad frames and keeps serving", bad_input_devman);
    s.case("bad input: PCIDRV answers bad frames and refuses another function's config space", bad_input_pcidrv);
    s.case("pcidrv: killed, its entries go; restarted by system, it registers again", kill_pcidrv);
    s.finish()
}

fn devman() -> Result<DevmanClient, String> {
    DevmanClient::connect_wait(5_000).ctx("connect to DEVMAN::REGISTRY")
}

fn at(bus: u8, device: u8, function: u8) -> Identity {
    Identity::Pci(Location { segment: 0, bus, device, function })
}

/// Every entry, once PCIDRV has registered the AHCI controller (it starts
/// after ktest may have).
fn all_after_pcidrv(d: &DevmanClient) -> Result<Vec<Entry>, String> {
    wait_until("PCIDRV's entries", || d.query(Filter::All).is_ok_and(|all| all.iter().any(|e| e.device.identity == at(0, 0x1f, 2))))?;
    d.query(Filter::All).ctx("query all")
}

fn q35_devices() -> Outcome {
    let d = devman()?;
    let all = all_after_pcidrv(&d)?;
    let find = |id: Identity| all.iter().find(|e| e.device.identity == id).map(|e| &e.device);
    let host = find(at(0, 0, 0)).ok_or("no 00:00.0")?;
    ensure!((host.vendor, host.device, host.class) == (0x8086, 0x29c0, 0x06), "00:00.0 is {:04x}:{:04x} class {:02x}", host.vendor, host.device, host.class);
    let ahci = find(at(0, 0x1f, 2)).ok_or("no 00:1f.2")?;
    ensure!((ahci.vendor, ahci.device) == (0x8086, 0x2922), "00:1f.2 is {:04x}:{:04x}", ahci.vendor, ahci.device);
    ensure!((ahci.class, ahci.subclass, ahci.prog_if) == (1, 6, 1), "00:1f.2 class {:02x}.{:02x}.{:02x}", ahci.class, ahci.subclass, ahci.prog_if);
    let abar = ahci.bar(5).ok_or("no BAR5")?;
    ensure!(abar.size == 4096 && abar.kind == BarKind::Memory32, "BAR5 {abar:?}");
    ensure!(abar.base != 0 && abar.base % 4096 == 0, "BAR5 not placed: {abar:?}");
    ensure!(ahci.parent.is_none(), "00:1f.2 behind a bridge? {:?}", ahci.parent);
    Ok(())
}

fn queries() -> Outcome {
    let d = devman()?;
    let all = all_after_pcidrv(&d)?;
    ensure!(all.len() >= 5, "only {} entries", all.len());
    let sata = d.query(Filter::ByClass { class: 1, subclass: Some(6), prog_if: Some(1) }).ctx("by class")?;
    ensure!(sata.len() == 1 && sata[0].device.identity == at(0, 0x1f, 2), "by class: {sata:?}");
    let bridges = d.query(Filter::ByClass { class: 6, subclass: None, prog_if: None }).ctx("bridges")?;
    ensure!(bridges.len() == all.iter().filter(|e| e.device.class == 6).count(), "class 06: {} entries", bridges.len());
    let host = d.query(Filter::ById { vendor: 0x8086, device: 0x29c0 }).ctx("by id")?;
    ensure!(host.len() == 1 && host[0].device.identity == at(0, 0, 0), "by id: {host:?}");
    let bus0 = d.query(Filter::ChildrenOf { segment: 0, bus: 0 }).ctx("bus 0")?;
    let on_bus0 = all.iter().filter(|e| matches!(e.device.identity, Identity::Pci(l) if l.segment == 0 && l.bus == 0)).count();
    ensure!(bus0.len() == on_bus0 && on_bus0 >= 5, "bus 0: {} of {on_bus0}", bus0.len());
    let none = d.query(Filter::ChildrenOf { segment: 0, bus: 0xfe }).ctx("bus fe")?;
    ensure!(none.is_empty(), "bus fe: {none:?}");
    // Every id once, and pages of the list add up to it.
    let mut ids: Vec<u32> = all.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    ensure!(ids.len() == all.len(), "duplicate ids");
    let page = d.query_page(Filter::All, 1).ctx("page from 1")?;
    ensure!(usize::from(page.total) == all.len() && page.entries.first() == all.get(1), "skip 1: {page:?}");
    Ok(())
}

fn kt_device(function: u8) -> dp::Device {
    dp::Device {
        class: 0xff,
        subclass: 0,
        prog_if: 0,
        vendor: 0x4b54,
        device: u16::from(function),
        identity: Identity::Port { controller: Location { segment: 0x4b, bus: 0, device: 0, function: 0 }, port: u16::from(function) },
        parent: None,
        bars: heapless::Vec::new(),
    }
}

fn registry() -> Outcome {
    let d = devman()?;
    // Channels published under a registrar's provider (we hold every scope).
    let registrar = |n: &str| -> Result<Channel, String> {
        let c = Channel::create().ctx("channel")?;
        c.register(&alloc::format!("{}::{n}", devman::PCI_PROVIDER)).ctx("publish")?;
        Ok(c)
    };
    let mine = registrar("KT1")?;
    d.register(kt_device(1), &mine).ctx("register")?;
    let r = d.register(kt_device(1), &mine);
    ensure!(r == Err(CallError::Server(dp::Error::AlreadyRegistered)), "twice: {r:?}");
    let found = d.query(Filter::ById { vendor: 0x4b54, device: 1 }).ctx("query")?;
    ensure!(found.len() == 1, "found {found:?}");
    let drv = d.driver(found[0].id).ctx("driver")?;
    ensure!(crate::harness::channel_id(drv.token()) == crate::harness::channel_id(mine.token()), "driver gave another channel");
    let _ = runtime::caps::drop_cap(drv.token());
    let other = registrar("KT2")?;
    let r = d.unregister(kt_device(1).identity, &other);
    ensure!(r == Err(CallError::Server(dp::Error::NotOwner)), "foreign unregister: {r:?}");
    d.unregister(kt_device(1).identity, &mine).ctx("unregister")?;
    ensure!(d.query(Filter::ById { vendor: 0x4b54, device: 1 }).ctx("query")?.is_empty(), "still there after unregister");
    let r = d.client().call_with_cap(&dp::Register { device: kt_device(2) }, other.token(), abi::ChannelRights::SEND);
    ensure!(r == Err(CallError::Server(dp::Error::NoCapability)), "without DELEGATE: {r:?}");
    // A driver that dies: its channel goes, its entries with it.
    d.register(kt_device(2), &other).ctx("register 2")?;
    d.register(kt_device(3), &other).ctx("register 3")?;
    ensure!(d.query(Filter::ByClass { class: 0xff, subclass: None, prog_if: None }).ctx("query")?.len() == 2, "two entries");
    other.destroy().ctx("destroy")?;
    let left = d.query(Filter::ByClass { class: 0xff, subclass: None, prog_if: None }).ctx("query")?;
    ensure!(left.is_empty(), "a dead driver's entries stay: {left:?}");
    let again = registrar("KT3")?;
    d.register(kt_device(2), &again).ctx("register again")?;
    let _ = d.unregister(kt_device(2).identity, &again);
    let _ = mine.destroy();
    let _ = again.destroy();
    Ok(())
}

fn bad_input_devman() -> Outcome {
    let d = devman()?;
    bad_frames::<dp::Request>(d.client().channel(), (dp::Query::OP, &[0xff; 6]), (dp::Query::OP, &[0]), dp::Driver::OP)?;
    let r = d.client().call(&dp::Driver { id: u32::MAX });
    ensure!(r == Err(CallError::Server(dp::Error::NotFound)), "unknown id: {r:?}");
    ensure!(d.query(Filter::All).is_ok_and(|a| !a.is_empty()), "still serving");
    Ok(())
}

fn bad_input_pcidrv() -> Outcome {
    let d = devman()?;
    let all = all_after_pcidrv(&d)?;
    let host = all.iter().find(|e| e.device.identity == at(0, 0, 0)).ok_or("no 00:00.0")?;
    let chan = d.driver(host.id).ctx("PCIDRV's channel")?;
    let c = Client::new(chan);
    let not_yours = |l: Location| c.call(&pc::Read { at: l, offset: 0, width: 4 });
    for l in [Location { segment: 0, bus: 0, device: 0, function: 0 }, Location { segment: 0, bus: 0, device: 0x1f, function: 2 }] {
        let r = not_yours(l);
        ensure!(r == Err(CallError::Server(pc::Error::NotYours)), "read of {l}: {r:?}");
    }
    let r = c.call(&pc::Write { at: Location { segment: 0, bus: 0, device: 0x1f, function: 2 }, offset: 4, width: 2, value: 0 });
    ensure!(r == Err(CallError::Server(pc::Error::NotYours)), "write: {r:?}");
    bad_frames::<pc::Request>(c.channel(), (pc::Read::OP, &[0xff; 6]), (pc::Read::OP, &[0, 0]), pc::Read::OP)?;
    let r = not_yours(Location { segment: 0, bus: 0, device: 0, function: 0 });
    ensure!(r == Err(CallError::Server(pc::Error::NotYours)), "after bad frames: {r:?}");
    Ok(())
}

/// q35's ECAM window (QEMU's default, which qboot keeps; DEVMAN reads it
/// from the MCFG).
const Q35_ECAM: u64 = 0xB000_0000;

fn kill_pcidrv() -> Outcome {
    let d = devman()?;
    let boot = all_after_pcidrv(&d)?;
    let bus0 = boot.iter().filter(|e| matches!(e.device.identity, Identity::Pci(l) if l.segment == 0 && l.bus == 0)).count();
    let dev = PhysRange(runtime::init_cap(cap_id::DEVICE_MEMORY).ok_or("no device memory")?);
    let (base, _) = dev.info().ctx("device memory")?;
    let ecam = dev.derive(Q35_ECAM - base, 1 << 20, abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE).ctx("bus 0's ECAM")?;
    let mut caps: Vec<Cap> = [SyscallClass::DebugPrint, SyscallClass::Thread, SyscallClass::ChannelCreate, SyscallClass::Names].into_iter().filter_map(Cap::class).collect();
    caps.push(Cap { id: pcidrv::caps::ECAM, token: ecam.0, rights: (abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE).into() });
    caps.push(Cap { id: pcidrv::caps::BAR_MEMORY, token: dev.0, rights: (abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE).into() });
    let procs = ProcessClient::find().ctx("SYSTEM::PROCESS")?;
    // Without `drivers`: `ahcidrv` is in the image now, and a driver
    // started here would hold no MSI vector (PCIDRV cannot hand one out yet)
    // and would share the controller with the `disk` suites' own.
    let args = ["pcidrv-kt", "1", "0", "0"];
    let spawned = procs
        .spawn(&SpawnArgs { path: "boot:/pcidrv", args: &args, caps: &caps, stack_size: 0, priority: 8, restart: true })
        .map_err(|e| alloc::format!("spawn: {e:?}"))?;
    let seg1 = || d.query(Filter::ChildrenOf { segment: 1, bus: 0 }).map_or(0, |v| v.len());
    wait_until("the second PCIDRV's entries", || seg1() == bus0)?;
    spawned.process.kill().ctx("kill")?;
    wait_until("its entries to go", || seg1() == 0)?;
    ensure!(d.query(Filter::ChildrenOf { segment: 0, bus: 0 }).ctx("bus 0")?.len() == bus0, "the boot PCIDRV's entries went too");
    wait_until("the restarted PCIDRV's entries", || seg1() == bus0)?;
    let st = procs.status("pcidrv-kt").map_err(|e| alloc::format!("status: {e:?}"))?;
    ensure!(matches!(st, system::protocol::Status::Running { restarts: 1.., .. }), "status {st:?}");
    let _ = runtime::caps::drop_cap(ecam.0);
    Ok(())
}
