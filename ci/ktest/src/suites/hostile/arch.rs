//! Hostile programs against the machine: interrupts through device memory,
//! rewriting code with ProcessWrite (W^X), segment selectors left behind
//! for the next program, descriptor-table addresses read in ring 3 (UMIP).
//! The kernel's own SMEP/SMAP checks and unexpected interrupts are boot
//! self-tests (`selftest=smap|smep|irq`, run by the runner).

use core::arch::asm;

use abi::Error;
use runtime::mem::reserve;
use runtime::process::{Exit, Process};
use runtime::time::yield_now;

use super::goes_on;
use crate::suites::mem::device_cap;
use crate::ensure;
use crate::harness::{expect_err, expect_exit, spawn, Context, Outcome, Suite};

pub fn cases(s: &mut Suite) {
    s.case("arch: device memory never maps the interrupt windows (MSI, I/O APIC)", interrupt_windows);
    s.case("arch: ProcessWrite into its own or a running program's code is refused", process_write_code);
    s.case("arch: DS/ES/FS/GS set by one program are not seen by the next", segments);
    s.case("arch: DS/ES/FS/GS stay each side's own across calls and answers that switch straight between them (parked threads)", segments_in_calls);
    s.case("arch: sgdt, sidt, sldt, smsw, str in ring 3 kill the program (UMIP)", umip);
    s.case("arch: a program running with RFLAGS.AC set (SMAP's override) is interrupted and faults; the kernel runs with AC clear", ac_flag);
    s.case("arch: each program runs on its own CR3: its own tables and, with PCID (as CPUID reports it), its own PCID; without, PCID bits 0", address_spaces);
}

/// Roles of this topic's children.
pub fn child(role: &str, args: &runtime::Args) -> Option<i32> {
    Some(match role {
        "hostile-segs-set" => segs_set(),
        "hostile-segs-read" => segs_read(),
        "hostile-segs-client" => segs_client(args.get(3) == Some("set")),
        "hostile-segs-server" => segs_server(args.get(3) == Some("set")),
        "hostile-umip" => umip_child(args.get(3).unwrap_or("")),
        "hostile-ac" => ac_child(),
        "hostile-cr3" => cr3_child(crate::harness::num(args.get(3))),
        _ => return None,
    })
}

fn interrupt_windows() -> Outcome {
    let dev = device_cap()?;
    let va = reserve(4 * 4096);
    // The page the issue named (a write there was an MSI: vector 14 crashed
    // the kernel, INIT reset the machine), the LAPIC, the I/O APIC, a page
    // deep in each window, and ranges reaching in from outside.
    for (base, len) in [
        (0xfeef_f000u64, 4096u64),
        (0xfee0_0000, 4096),
        (0xfee8_0000, 4096),
        (0xfec0_0000, 4096),
        (0xfecf_f000, 4096),
        (0xfedf_f000, 2 * 4096),
        (0xfebf_f000, 2 * 4096),
    ] {
        let sub = dev.derive(base, len, abi::PhysRights::READ | abi::PhysRights::WRITE).ctx("derive")?;
        let r = sub.map(va, 0, len, abi::MapFlags::READ | abi::MapFlags::WRITE);
        if r.is_ok() {
            // Never written: unmap at once.
            // SAFETY: nothing uses the mapping.
            let _ = unsafe { runtime::mem::unmap(va, len) };
        }
        expect_err(r, Error::InvalidArgument, &alloc::format!("map {base:#x}+{len:#x}"))?;
        // The whole capability, at that offset, is refused the same way.
        expect_err(dev.map(va, base, len, abi::MapFlags::READ), Error::InvalidArgument, &alloc::format!("map {base:#x} via the full range"))?;
    }
    // Device memory right next to a window still works: the HPET (Intel's
    // vendor id in its capability register) below the MSI window.
    let hpet = dev.derive(0xfed0_0000, 4096, abi::PhysRights::READ).ctx("derive HPET")?;
    hpet.map(va, 0, 4096, abi::MapFlags::READ).ctx("map HPET")?;
    // SAFETY: the HPET's registers are mapped read-only just above.
    let id = unsafe { core::ptr::read_volatile(va as *const u32) };
    // SAFETY: `id` was the last use.
    unsafe { runtime::mem::unmap(va, 4096) }.ctx("unmap")?;
    ensure!(id >> 16 == 0x8086, "HPET id {id:#x}");
    goes_on()
}

fn process_write_code() -> Outcome {
    let me = Process::from_token(runtime::caps::self_process());
    // Our own text: the write would put back the byte that is there, so
    // even a kernel that allowed it would change nothing.
    let code = cases as *const () as u64;
    // SAFETY: our own code is mapped readable.
    let byte = [unsafe { core::ptr::read_volatile(code as *const u8) }];
    // SAFETY: the kernel refuses it (and the byte is the one there).
    expect_err(unsafe { me.write(code, &byte) }, Error::BadAddress, "write into our own code")?;
    let data = reserve(4096);
    runtime::mem::map_anon(data, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map data")?;
    // SAFETY: a page just mapped, which nothing else uses.
    unsafe { me.write(data, &[7]) }.ctx("write into our own data")?;
    // SAFETY: mapped above.
    ensure!(unsafe { core::ptr::read_volatile(data as *const u8) } == 7, "own data not written");
    // SAFETY: not used again.
    unsafe { runtime::mem::unmap(data, 4096) }.ctx("unmap")?;
    // A running program (the same binary, so the same code address).
    let other = spawn("sleeper", &["5000", "0"], &[], 8)?;
    // SAFETY: another process's page (and refused).
    let r = unsafe { other.write(code, &byte) };
    let _ = other.kill();
    let _ = other.wait();
    expect_err(r, Error::BadAddress, "write into a running program's code")?;
    // A program not started yet: the loader fills its code.
    let fresh = Process::create("ktest-fill").ctx("create")?;
    fresh.map_anon(0x40_0000, 4096, abi::MapFlags::READ | abi::MapFlags::EXEC).ctx("map code")?;
    // SAFETY: another process's page, not running yet.
    let filled = unsafe { fresh.write(0x40_0000, &[0xeb, 0xfe]) };
    let _ = fresh.kill();
    filled.ctx("fill the code of a process before it starts")?;
    goes_on()
}

/// Selectors the setter loads: user data (GDT entry 3, DPL 3) with each
/// RPL, a different one per register so a mix-up shows.
const SEGS: [u64; 4] = [0x1b, 0x18, 0x19, 0x1a];

fn packed(s: [u64; 4]) -> u64 {
    s[0] | s[1] << 16 | s[2] << 32 | s[3] << 48
}

fn segs() -> u64 {
    let (ds, es, fs, gs): (u64, u64, u64, u64);
    // SAFETY: reading segment registers has no side effects.
    unsafe { asm!("mov {0}, ds", "mov {1}, es", "mov {2}, fs", "mov {3}, gs", out(reg) ds, out(reg) es, out(reg) fs, out(reg) gs) };
    packed([ds, es, fs, gs])
}

/// Load [`SEGS`], then yield many times: each time back, they must still be ours.
fn segs_set() -> i32 {
    // SAFETY: data selectors with DPL 3; in 64-bit mode they change no
    // address this program uses (bases stay 0).
    unsafe { asm!("mov ds, {0:e}", "mov es, {1:e}", "mov fs, {2:e}", "mov gs, {3:e}", in(reg) SEGS[0], in(reg) SEGS[1], in(reg) SEGS[2], in(reg) SEGS[3]) };
    for _ in 0..20 {
        let _ = yield_now();
        let now = segs();
        if now != packed(SEGS) {
            runtime::println!("segs-set: came back with {now:#x}");
            return 1;
        }
    }
    0
}

/// Read the selectors now and after a few yields; 0 if all were null.
fn segs_read() -> i32 {
    let mut seen = segs();
    for _ in 0..5 {
        let _ = yield_now();
        seen |= segs();
    }
    if seen != 0 {
        runtime::println!("segs-read: saw selectors {seen:#x}");
        return 1;
    }
    0
}

/// The server's selectors in [`segments_in_calls`]: other RPLs in other
/// registers than [`SEGS`].
const SERVER_SEGS: [u64; 4] = [0x1a, 0x19, 0x18, 0x1b];

/// Load `s` into DS, ES, FS and GS.
fn load(s: [u64; 4]) {
    // SAFETY: data selectors with DPL 3; in 64-bit mode they change no
    // address this program uses (bases stay 0).
    unsafe { asm!("mov ds, {0:e}", "mov es, {1:e}", "mov fs, {2:e}", "mov gs, {3:e}", in(reg) s[0], in(reg) s[1], in(reg) s[2], in(reg) s[3]) };
}

/// Calls to `CHAN`, 100 of 64 bytes in registers (`Call`/`ReplyWait`,
/// which park each side at one frame), then 100 of 16 from memory
/// (`Send`/`ReplyRecv`, which park at the other), with [`SEGS`] loaded if `set`:
/// after every answer the selectors must still be ours, and the answer
/// right. (With any selector set, the assembly fast path leaves the calls
/// to the Rust one, whose parking switches keep them.)
fn segs_client(set: bool) -> i32 {
    let want = if set { packed(SEGS) } else { 0 };
    if set {
        load(SEGS);
    }
    let chan = crate::child::chan();
    let mut whole = [0u8; 64];
    for n in 0..200u64 {
        let len = if n < 100 { 64 } else { 16 };
        let buf = &mut whole[..len];
        crate::child::seq::put(buf, n);
        match chan.call(crate::child::tag::BUMP | n << 8, buf, len) {
            Ok(r) if r.result == n + 1 && r.len == len && crate::child::seq::holds(buf, n + 1) => {}
            other => {
                runtime::println!("segs-client: call {n}: {other:?}");
                return 2;
            }
        }
        let now = segs();
        if now != want {
            runtime::println!("segs-client: call {n} came back with {now:#x}, want {want:#x}");
            return 1;
        }
    }
    0
}

/// Serve `BUMP` on `CHAN` (answers through `ReplyWait`) with
/// [`SERVER_SEGS`] loaded if `set`, checking at every message that the
/// selectors are still ours; exits 0 at `EXIT` if they always were.
fn segs_server(set: bool) -> i32 {
    use crate::child::{seq, tag};
    let want = if set { packed(SERVER_SEGS) } else { 0 };
    if set {
        load(SERVER_SEGS);
    }
    let chan = crate::child::chan();
    let Ok(mut w) = runtime::ipc::Window::new() else { return 3 };
    let Ok(mut m) = chan.receive(&mut w, abi::FOREVER) else { return 4 };
    let mut wrong = 0;
    loop {
        let now = segs();
        if now != want {
            runtime::println!("segs-server: a message came with {now:#x}, want {want:#x}");
            wrong = 1;
        }
        if m.tag == tag::EXIT {
            let _ = m.reply(0, 0);
            return wrong;
        }
        let (size, n) = (m.size, m.tag >> 8);
        seq::bump(&mut m.window()[..size]);
        let a = m.answer(n + 1, size);
        match chan.reply_recv(Some(a), &mut w, abi::FOREVER) {
            Ok(next) => m = next,
            Err(_) => return 5,
        }
    }
}

fn segments_in_calls() -> Outcome {
    for (client, server) in [("set", "null"), ("null", "set"), ("set", "set"), ("null", "null")] {
        let chan = runtime::ipc::Channel::create().ctx("channel")?;
        let s = spawn("hostile-segs-server", &[server], &[(crate::harness::CHAN, chan.token(), abi::ChannelRights::RECEIVE.into())], 8)?;
        let c = spawn("hostile-segs-client", &[client], &[(crate::harness::CHAN, chan.token(), abi::ChannelRights::SEND.into())], 8)?;
        let what = alloc::format!("client {client}, server {server}");
        expect_exit(&c, Exit::Code(0), &alloc::format!("the client ({what})"))?;
        chan.send(crate::child::tag::EXIT, &[]).ctx("exit")?;
        expect_exit(&s, Exit::Code(0), &alloc::format!("the server ({what})"))?;
    }
    ensure!(segs() == 0, "our own selectors are {:#x} after the calls", segs());
    goes_on()
}

fn segments() -> Outcome {
    // Same priority, below ours: once we wait, the setter runs first, loads
    // its selectors and yields to the reader.
    let setter = spawn("hostile-segs-set", &[], &[], 8)?;
    let reader = spawn("hostile-segs-read", &[], &[], 8)?;
    expect_exit(&reader, Exit::Code(0), "a program running after one that set DS/ES/FS/GS")?;
    expect_exit(&setter, Exit::Code(0), "the setter, its selectors kept across switches")?;
    ensure!(segs() == 0, "our own selectors are {:#x} after the setter ran", segs());
    // A new program (perhaps in the setter's thread slot) starts null too.
    let later = spawn("hostile-segs-read", &[], &[], 8)?;
    expect_exit(&later, Exit::Code(0), "a program started after the setter ended")?;
    goes_on()
}

fn umip() -> Outcome {
    let has_umip = core::arch::x86_64::__cpuid_count(7, 0).ecx & (1 << 2) != 0;
    ensure!(has_umip, "this CPU has no UMIP (QEMU's -cpu max has it, also under TCG)");
    for insn in ["sgdt", "sidt", "sldt", "smsw", "str"] {
        let p = spawn("hostile-umip", &[insn], &[], 8)?;
        expect_exit(&p, Exit::Fault(13), insn)?;
    }
    goes_on()
}

/// Run one UMIP-protected instruction; returning means it did not fault.
fn umip_child(insn: &str) -> i32 {
    let mut buf = [0u8; 16];
    let p = buf.as_mut_ptr();
    // SAFETY: each stores at most 10 bytes into `buf` (or faults).
    unsafe {
        match insn {
            "sgdt" => asm!("sgdt [{0}]", in(reg) p),
            "sidt" => asm!("sidt [{0}]", in(reg) p),
            "sldt" => asm!("sldt word ptr [{0}]", in(reg) p),
            "smsw" => asm!("smsw word ptr [{0}]", in(reg) p),
            "str" => asm!("str word ptr [{0}]", in(reg) p),
            _ => return 2,
        }
    }
    runtime::println!("umip child: {insn} gave {:x?}", &buf[..10]);
    0
}

/// RFLAGS.AC: in ring 3 only alignment checking (off: CR0.AM is clear); in
/// ring 0 it lifts SMAP.
const AC: u64 = 1 << 18;

fn rflags() -> u64 {
    let f: u64;
    // SAFETY: reads RFLAGS through the stack; no memory of ours changes.
    unsafe { asm!("pushfq", "pop {0}", out(reg) f) };
    f
}

/// Set AC, spin through timer ticks (each an interrupt taken with AC set,
/// whose handler the kernel's SMAP guard checks), check the flag came back
/// each time, then fault with it set (#UD).
fn ac_child() -> i32 {
    // SAFETY: sets AC only; CR0.AM is clear, so nothing else changes.
    unsafe { asm!("pushfq", "or qword ptr [rsp], {ac}", "popfq", ac = const AC) };
    let start = runtime::time::uptime_ms();
    let mut spins = 0u64;
    while runtime::time::uptime_ms() < start + 50 {
        for _ in 0..10_000 {
            spins = core::hint::black_box(spins + 1);
        }
        if rflags() & AC == 0 {
            runtime::println!("ac child: AC lost after {spins} spins");
            return 2;
        }
    }
    // SAFETY: raises #UD, which ends this program.
    unsafe { asm!("ud2") };
    3
}

fn ac_flag() -> Outcome {
    // Priority below ours: it runs while we wait, and the timer interrupts it.
    for _ in 0..2 {
        let p = spawn("hostile-ac", &[], &[], 8)?;
        expect_exit(&p, Exit::Fault(6), "a program with AC set, after 50 ms of timer ticks")?;
    }
    ensure!(rflags() & AC == 0, "our own AC is set");
    goes_on()
}

/// The PCID field of CR3 (bits 0-11 while CR4.PCIDE is on).
const PCID_BITS: u64 = 0xfff;

/// Our CR3 against `parent`'s (the parent's CR3 value): another table and,
/// with PCID, another PCID, none 0 (the kernel's); without PCID, the bare
/// table address. 0 if so.
fn cr3_child(parent: u64) -> i32 {
    let Ok((cr3, mode)) = runtime::ipc::debug::address_space() else { return 2 };
    let on = mode & abi::debug::PCID_ON != 0;
    let fine = cr3 & !PCID_BITS != parent & !PCID_BITS
        && if on { cr3 & PCID_BITS != 0 && cr3 & PCID_BITS != parent & PCID_BITS } else { cr3 & PCID_BITS == 0 };
    if !fine {
        runtime::println!("cr3: ours {cr3:#x}, the parent's {parent:#x}, PCID {}", if on { "on" } else { "off" });
        return 1;
    }
    0
}

fn address_spaces() -> Outcome {
    let (cr3, mode) = runtime::ipc::debug::address_space().map_err(|e| alloc::format!("ADDRESS_SPACE: {e:?}"))?;
    let pcid = core::arch::x86_64::__cpuid(1).ecx & (1 << 17) != 0;
    let invpcid = core::arch::x86_64::__cpuid_count(7, 0).ebx & (1 << 10) != 0;
    let on = mode & abi::debug::PCID_ON != 0;
    ensure!(on == pcid, "the kernel says PCID {on}, CPUID says {pcid}");
    ensure!((mode & abi::debug::PCID_INVPCID != 0) == (pcid && invpcid), "the kernel's INVPCID mode {mode:#x}, CPUID says {invpcid}");
    ensure!(if on { cr3 & PCID_BITS != 0 } else { cr3 & PCID_BITS == 0 }, "our CR3 {cr3:#x} with PCID {on}");
    // Twice: the second child may reuse the first's slot (and PCID).
    for _ in 0..2 {
        let p = spawn("hostile-cr3", &[&alloc::format!("{cr3}")], &[], 8)?;
        expect_exit(&p, Exit::Code(0), "a child comparing its CR3 with ours")?;
    }
    let (again, _) = runtime::ipc::debug::address_space().map_err(|e| alloc::format!("ADDRESS_SPACE: {e:?}"))?;
    ensure!(again == cr3, "our CR3 was {cr3:#x}, is {again:#x} after the children ran");
    runtime::println!("ktest: cr3 {cr3:#x}, pcid {}", if on { "on" } else { "off" });
    goes_on()
}
