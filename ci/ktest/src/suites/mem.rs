//! Memory: anonymous mappings, W^X, physical ranges, DMA, process building.

use abi::{cap_id, Error};
use runtime::mem::{dma_alloc, map_anon, reserve, PhysRange};
use runtime::process::{Exit, Process};

use crate::ensure;
use crate::harness::{expect_err, expect_exit, spawn, Context, Outcome, Suite, SHARED};

pub fn run() -> i32 {
    let mut s = Suite::new("mem");
    s.case("map, use and unmap anonymous memory", anon);
    s.case("touching unmapped memory kills the program", || fault_child("unmapped-touch"));
    s.case("writing read-only memory kills the program", || fault_child("ro-write"));
    s.case("writable and executable together is refused (W^X)", wx);
    s.case("bad mapping arguments are refused, failed maps leave nothing", bad_maps);
    s.case("device memory maps through a capability naming its range", device_memory);
    s.case("device capabilities never map RAM", device_not_ram);
    s.case("physical range checks: bounds, rights, no execute", phys_checks);
    s.case("DMA memory is contiguous, zeroed and shareable", dma);
    s.case("building a process by hand, with its checks", process_primitives);
    s.finish()
}

/// Unmap a range one of the cases mapped.
fn unmap(va: u64, len: u64) -> Result<(), abi::Error> {
    // SAFETY: the cases reach their mappings through raw addresses and
    // slices whose last use comes before the unmap.
    unsafe { runtime::mem::unmap(va, len) }
}

fn anon() -> Outcome {
    let va = reserve(3 * 4096);
    map_anon(va, 3 * 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map")?;
    // SAFETY: mapped just above, 3 pages.
    let mem = unsafe { core::slice::from_raw_parts_mut(va as *mut u8, 3 * 4096) };
    ensure!(mem.iter().all(|&b| b == 0), "fresh memory not zeroed");
    mem.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    ensure!(mem.iter().enumerate().all(|(i, &b)| b == i as u8), "memory does not keep data");
    unmap(va, 3 * 4096).ctx("unmap")?;
    // Mapping again gives fresh zeroed pages.
    map_anon(va, 4096, abi::MapFlags::READ).ctx("map again")?;
    // SAFETY: mapped just above.
    ensure!(unsafe { core::ptr::read_volatile(va as *const u8) } == 0, "re-mapped page not zeroed");
    unmap(va, 4096).ctx("unmap")
}

fn fault_child(role: &str) -> Outcome {
    let p = spawn(role, &[], &[], 8)?;
    expect_exit(&p, Exit::Fault(14), role)
}

fn wx() -> Outcome {
    let va = reserve(4096);
    expect_err(map_anon(va, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE | abi::MapFlags::EXEC), Error::WriteExecute, "RWX")?;
    map_anon(va, 4096, abi::MapFlags::READ | abi::MapFlags::EXEC).ctx("RX is fine")?;
    unmap(va, 4096).ctx("unmap")
}

fn bad_maps() -> Outcome {
    let va = reserve(4 * 4096) + 4096;
    expect_err(map_anon(va + 1, 4096, abi::MapFlags::READ), Error::InvalidArgument, "unaligned address")?;
    expect_err(map_anon(va, 100, abi::MapFlags::READ), Error::InvalidArgument, "unaligned length")?;
    expect_err(map_anon(va, 0, abi::MapFlags::READ), Error::InvalidArgument, "empty")?;
    expect_err(map_anon(va, 4096, abi::MapFlags::from_bits_retain(1 << 9)), Error::InvalidArgument, "unknown flag")?;
    expect_err(map_anon(0xffff_8000_0000_0000, 4096, abi::MapFlags::READ), Error::BadAddress, "kernel half")?;
    expect_err(map_anon(0, 4096, abi::MapFlags::READ), Error::BadAddress, "page zero")?;
    expect_err(map_anon(abi::USER_TOP - 4096, 8192, abi::MapFlags::READ), Error::BadAddress, "past user top")?;
    map_anon(va + 4096, 4096, abi::MapFlags::READ).ctx("middle page")?;
    // Overlaps the middle page: refused, and its first page is not left behind.
    expect_err(map_anon(va, 2 * 4096, abi::MapFlags::READ), Error::AlreadyExists, "overlap")?;
    map_anon(va, 4096, abi::MapFlags::READ).ctx("page before: the failed map left it mapped")?;
    unmap(va, 2 * 4096).ctx("unmap")
}

pub(super) fn device_cap() -> Result<PhysRange, alloc::string::String> {
    Ok(PhysRange(runtime::init_cap(cap_id::DEVICE_MEMORY).ctx("device memory capability")?))
}

/// q35's PCI configuration space (ECAM) starts at 0xb000_0000; the host
/// bridge 00:00.0 is Intel's.
const ECAM: u64 = 0xb000_0000;

fn device_memory() -> Outcome {
    let ecam = device_cap()?.derive(ECAM, 4096, abi::PhysRights::READ).ctx("derive ECAM page")?;
    let (base, len) = ecam.info().ctx("info")?;
    ensure!(base == ECAM && len == 4096, "derived range {base:#x}+{len:#x}");
    let va = reserve(4096);
    ecam.map(va, 0, 4096, abi::MapFlags::READ).ctx("map")?;
    // SAFETY: the ECAM page of 00:00.0 is mapped read-only just above.
    let id = unsafe { core::ptr::read_volatile(va as *const u32) };
    ensure!(id & 0xffff == 0x8086, "vendor/device {id:#x}, expected Intel's host bridge");
    expect_err(ecam.map(reserve(4096), 0, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE), Error::Incapable, "write through a read-only range")?;
    let unknown = abi::MapFlags::READ | abi::MapFlags::from_bits_retain(1 << 9);
    expect_err(ecam.map(reserve(4096), 0, 4096, unknown), Error::InvalidArgument, "an unknown flag bit")?;
    unmap(va, 4096).ctx("unmap")
}

fn device_not_ram() -> Outcome {
    let ram = device_cap()?.derive(0x10_0000, 4096, abi::PhysRights::READ | abi::PhysRights::WRITE).ctx("derive")?;
    expect_err(ram.map(reserve(4096), 0, 4096, abi::MapFlags::READ), Error::InvalidArgument, "RAM through a device capability")
}

fn phys_checks() -> Outcome {
    let ecam = device_cap()?.derive(ECAM, 2 * 4096, abi::PhysRights::READ | abi::PhysRights::DELEGATE).ctx("derive")?;
    let va = reserve(4 * 4096);
    expect_err(ecam.map(va, 4096, 2 * 4096, abi::MapFlags::READ), Error::InvalidArgument, "past the end")?;
    expect_err(ecam.map(va, 0, 4096, abi::MapFlags::READ | abi::MapFlags::EXEC), Error::InvalidArgument, "executable")?;
    expect_err(ecam.map(va, 100, 4096, abi::MapFlags::READ), Error::InvalidArgument, "unaligned offset")?;
    expect_err(ecam.derive(4096, 2 * 4096, abi::PhysRights::READ), Error::InvalidArgument, "derive past the end")?;
    let more = ecam.derive(0, 4096, abi::RightsMask::ALL).ctx("derive")?;
    let (_, r, _, _) = runtime::caps::inspect(more.0).ctx("inspect")?;
    ensure!(r == (abi::PhysRights::READ | abi::PhysRights::DELEGATE).bits(), "rights grew to {r:#x}");
    let ramfs = PhysRange(runtime::init_cap(cap_id::RAMFS).ctx("ramfs capability")?);
    expect_err(ramfs.map(va, 0, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE), Error::Incapable, "writable RAMFS")?;
    Ok(())
}

fn dma() -> Outcome {
    let (cap, phys) = dma_alloc(4).ctx("alloc")?;
    let (base, len) = cap.info().ctx("info")?;
    ensure!(base == phys && len == 4 * 4096 && phys % 4096 == 0, "range {base:#x}+{len:#x}, phys {phys:#x}");
    let va = reserve(4 * 4096);
    cap.map(va, 0, 4 * 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map")?;
    // SAFETY: four pages mapped just above.
    let mem = unsafe { core::slice::from_raw_parts_mut(va as *mut u64, 4 * 512) };
    ensure!(mem.iter().all(|&w| w == 0), "DMA memory not zeroed");
    mem[0] = 77;
    let child = spawn("read-shared", &[], &[(SHARED, cap.0, (abi::PhysRights::READ | abi::PhysRights::WRITE).into())], 8)?;
    expect_exit(&child, Exit::Code(77), "child reading the shared DMA page")?;
    expect_err(dma_alloc(0), Error::InvalidArgument, "zero pages")?;
    expect_err(dma_alloc(1 << 20), Error::InvalidArgument, "too many pages")?;
    unmap(va, 4 * 4096).ctx("unmap")
}

fn process_primitives() -> Outcome {
    let p = Process::create("ktest-manual").ctx("create")?;
    p.map_anon(0x40_0000, 4096, abi::MapFlags::READ | abi::MapFlags::EXEC).ctx("map code")?;
    // SAFETY: `p` is a process of our own making with nothing but this
    // page: its only code is the `jmp $` written here, which needs no stack.
    unsafe {
        // `jmp $`: the thread spins until killed.
        p.write(0x40_0000, &[0xeb, 0xfe]).ctx("write into read-only code")?;
        expect_err(p.write(0x50_0000, &[1]), Error::BadAddress, "write to unmapped memory")?;
        expect_err(p.start_thread(0xffff_ffff_8000_0000, 0x7000_0000, [0, 0], 1), Error::BadAddress, "kernel entry point")?;
        expect_err(p.start_thread(0x40_0000, 0x7000_0000, [0, 0], 31), Error::InvalidArgument, "priority above ours")?;
        p.start_thread(0x40_0000, 0x7000_0000, [0, 0], 1).ctx("start")?;
    }
    expect_err(p.wait_timeout(0), Error::Timeout, "poll a live process")?;
    p.kill().ctx("kill")?;
    ensure!(p.wait().ctx("wait")? == Exit::Killed, "not reported killed");
    expect_err(p.map_anon(0x60_0000, 4096, abi::MapFlags::READ), Error::NotFound, "map into a dead process")
}
