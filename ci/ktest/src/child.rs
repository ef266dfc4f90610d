//! Roles a test can start this binary in (`ktest child <role> ...`).
//!
//! Each role is a small program of its own: a server on a channel handed
//! over at start (`harness::CHAN`), a program that faults on purpose, a
//! sleeper, a fuzzer. Exit codes report results the parent checks.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::{cap_id, Error, SyscallClass, FOREVER};
use runtime::ipc::{Channel, Window};
use runtime::mem::PhysRange;
use runtime::time::{priority, sleep_ms, uptime_ms, yield_now};
use runtime::{init_cap, Args};

use crate::harness::{num, CHAN, NEXT, SHARED};

/// Message tags the server roles understand.
pub mod tag {
    /// Reply with every byte inverted (`reply_len` = size); result = byte sum.
    pub const ECHO: u64 = 1;
    /// Check a lent page holds `i ^ 0x5a`, overwrite it with `i ^ 0xa5`; result 1 if it matched.
    pub const PAGE: u64 = 2;
    /// Reply 0 and exit.
    pub const EXIT: u64 = 3;
    /// Result = (base priority << 8) | effective priority while serving.
    pub const PRIO: u64 = 4;
    /// Pipeline step on a `u64` in the first 8 bytes.
    pub const STEP: u64 = 5;
    /// Reply with a send capability for a channel served for this client.
    pub const OPEN: u64 = 6;
    /// (bench server) Add one to the message's sequence words in place
    /// ([`super::seq`]), reply with the whole message and result
    /// `(tag >> 8) + 1`: the least a server can do that shows it read the
    /// request and answered it.
    pub const BUMP: u64 = 7;
    /// Reply with every byte plus one (`reply_len` = size); result = the
    /// FNV-1a hash of the request ([`super::fnv1a`]).
    pub const SWEEP: u64 = 8;
    /// (`hold-client`) A request the server holds while it takes others.
    pub const HOLD: u64 = 9;
    /// Fault (null write) while the caller waits: it gets `PeerDied`.
    pub const CRASH: u64 = 10;
}

/// The benchmark's sequence words: the first 8 bytes of a message, and
/// its last 8 when it has 16 or more. A client writes a number there, the
/// bench server adds one to each, the client checks: so a request or reply
/// that misses its first or last bytes is caught at every size.
pub mod seq {
    // Straight-line code: this runs on both sides of every measured call.

    #[inline(always)]
    fn get(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[inline(always)]
    fn set(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Write `n` into the sequence words of `b`.
    #[inline(always)]
    pub fn put(b: &mut [u8], n: u64) {
        let len = b.len();
        if len >= 8 {
            set(b, 0, n);
        }
        if len >= 16 {
            set(b, len - 8, n);
        }
    }

    /// Whether every sequence word of `b` holds `n`.
    #[inline(always)]
    pub fn holds(b: &[u8], n: u64) -> bool {
        let len = b.len();
        (len < 8 || get(b, 0) == n) && (len < 16 || get(b, len - 8) == n)
    }

    /// Add one to every sequence word of `b`.
    #[inline(always)]
    pub fn bump(b: &mut [u8]) {
        let len = b.len();
        if len >= 8 {
            set(b, 0, get(b, 0).wrapping_add(1));
        }
        if len >= 16 {
            set(b, len - 8, get(b, len - 8).wrapping_add(1));
        }
    }
}

/// FNV-1a (64-bit) of `bytes`: what a `SWEEP` server answers.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    ramfs::manifest::fnv1a64(bytes)
}

/// Where roles map a shared page.
pub const SHARED_VA: u64 = abi::layout::USER_MAPPINGS + (1 << 40);

pub fn run(args: Args) -> i32 {
    match args.get(2).unwrap_or("") {
        "fault" => fault(args.get(3).unwrap_or("")),
        "sleeper" => {
            let _ = sleep_ms(num(args.get(3)));
            num(args.get(4)) as i32
        }
        "spinner" => {
            // Never gives up the CPU: only preemption lets others run.
            let until = uptime_ms() + num(args.get(3));
            while uptime_ms() < until {
                core::hint::spin_loop();
            }
            num(args.get(4)) as i32
        }
        "turns" => turns(num(args.get(3)), num(args.get(4))),
        "server" => server(chan(), args.get(3).unwrap_or("")),
        "named" => named(args.get(3).unwrap_or("")),
        "report" => report(args),
        "bench-server" => bench_server(),
        "hint-server" => hint_server(),
        "fair-client" => fair_client(),
        "rpc-server" => crate::rpc::server(args.get(3).unwrap_or("")),
        "lend-touch" => lend_touch(),
        "lend-sibling" => lend_sibling(args.get(3) == Some("dma"), args.get(3) == Some("twice")),
        "hold-client" => hold_client(num(args.get(3)) as u8),
        "owner" => owner(),
        "foreign" => foreign(),
        "delegate" => delegate(),
        "noauth" => noauth(),
        "irq-hold" => irq_hold(num(args.get(3))),
        "irq-bind" => irq_bind(),
        "honest" => honest(num(args.get(3))),
        "fuzz" => crate::suites::fuzz::worker(args),
        "strikes" => strikes(),
        "short-path" => short_path(),
        "unmapped-touch" => unmapped_touch(),
        "ro-write" => ro_write(),
        "read-shared" => shared().map_or(3, |p| p[0].load(Ordering::Acquire) as i32),
        other if other.starts_with("hostile-") => crate::suites::hostile::child(other, &args).unwrap_or_else(|| {
            runtime::println!("ktest child: unknown role {other}");
            2
        }),
        other => {
            runtime::println!("ktest child: unknown role {other}");
            2
        }
    }
}

pub fn chan() -> Channel {
    Channel::from_token(init_cap(CHAN).unwrap_or(0))
}

/// Fault on purpose; returning means the fault did not happen.
fn fault(kind: &str) -> i32 {
    // SAFETY: (all arms) these are deliberate faults; the kernel must end
    // this process. Nothing after them runs if the kernel is right.
    unsafe {
        match kind {
            "null" => core::ptr::write_volatile(core::ptr::null_mut::<u64>(), 1),
            "kernel" => core::ptr::write_volatile(0xffff_ffff_8010_0000 as *mut u64, 1),
            "ud" => core::arch::asm!("ud2"),
            "gp" | "hlt" => core::arch::asm!("hlt"),
            // Ring-0 instructions: each must raise #GP in ring 3.
            "cli" => core::arch::asm!("cli"),
            "in" => core::arch::asm!("in al, dx", out("al") _, in("dx") 0x3f8u16),
            "out" => core::arch::asm!("out dx, al", in("al") 0u8, in("dx") 0x80u16),
            "rdmsr" => core::arch::asm!("rdmsr", in("ecx") 0xc000_0080u32, out("eax") _, out("edx") _),
            "wrmsr" => core::arch::asm!("wrmsr", in("ecx") 0xc000_0082u32, in("eax") 0u32, in("edx") 0u32),
            "mov-cr3" => core::arch::asm!("mov cr3, {}", in(reg) 0u64),
            "mov-cr0" => core::arch::asm!("mov cr0, {}", in(reg) 0u64),
            "lgdt" => core::arch::asm!("lgdt [{}]", in(reg) &[0u64; 2]),
            "lidt" => core::arch::asm!("lidt [{}]", in(reg) &[0u64; 2]),
            "invlpg" => core::arch::asm!("invlpg [{}]", in(reg) 0x1000u64),
            "wbinvd" => core::arch::asm!("wbinvd"),
            // The SYSRET edge from the program's side: a jump to the first
            // non-canonical address, and a syscall made with a
            // non-canonical stack pointer (the kernel must not touch that
            // stack; the program faults on its next push).
            "jump-noncanonical" => core::arch::asm!("jmp {}", in(reg) 0x0000_8000_0000_0000u64),
            "syscall-noncanonical-rsp" => core::arch::asm!(
                "mov rsp, {}", "mov eax, 0xffff", "syscall", "push rax",
                in(reg) 0x0000_8000_0000_0010u64, out("rax") _, out("rcx") _, out("r11") _,
            ),
            "divide" => core::arch::asm!("xor edx, edx", "xor eax, eax", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _),
            // The kernel saves no FPU or vector state, so it lets no
            // program use them (rather than let state leak between them).
            "x87" => core::arch::asm!("fld1", "fstp st(0)"),
            "sse" => core::arch::asm!("xorps xmm0, xmm0", out("xmm0") _),
            "nx" => {
                let data: alloc::boxed::Box<[u8; 16]> = alloc::boxed::Box::new([0xc3; 16]); // `ret`s on the heap
                let f: extern "C" fn() = core::mem::transmute(data.as_ptr());
                f();
            }
            "stack" => return recurse(1) as i32,
            _ => return 2,
        }
    }
    0
}

#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let pad = [n; 64];
    core::hint::black_box(&pad);
    recurse(n + 1) + pad[3]
}

/// The shared page from capability `SHARED`, as atomics.
pub(crate) fn shared() -> Option<&'static [AtomicU64; 512]> {
    let cap = PhysRange(init_cap(SHARED)?);
    cap.map(SHARED_VA, 0, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ok()?;
    // SAFETY: the page is mapped read-write at SHARED_VA for the rest of the
    // program; atomics make the sharing with the other process sound.
    Some(unsafe { &*(SHARED_VA as *const [AtomicU64; 512]) })
}

/// Take turns with the other `turns` child on the shared counter, yielding
/// while it is not our turn; count the yields in slot `1 + who`.
fn turns(who: u64, n: u64) -> i32 {
    let Some(page) = shared() else { return 3 };
    while page[0].load(Ordering::Acquire) < 2 * n {
        if page[0].load(Ordering::Acquire) % 2 == who {
            page[0].fetch_add(1, Ordering::AcqRel);
        } else {
            page[1 + who as usize].fetch_add(1, Ordering::Relaxed);
            let _ = yield_now();
        }
    }
    0
}

/// A server on `CHAN`: `ECHO`, `PAGE`, `PRIO`, `STEP` (with `op`), `OPEN`,
/// `EXIT`; other tags get `tag * 2`. Given a `NEXT` channel, a `STEP`
/// passes its value on there and answers with what comes back, so servers
/// chain: client -> A -> B -> C -> client.
/// Serve [`server`] on a channel of our own registered as `name` (the
/// supervision tests restart it and find it again by name).
fn named(name: &str) -> i32 {
    let Ok(chan) = Channel::create() else { return 3 };
    if chan.register(name).is_err() {
        return 5;
    }
    server(chan, "")
}

/// Tell the parent (on `CHAN`) what we were started with:
/// `args=a|b|...;caps=id:kind:rights,...` (ids and rights in hex).
fn report(args: Args) -> i32 {
    use core::fmt::Write;
    let mut text = alloc::string::String::from("args=");
    let all: alloc::vec::Vec<&str> = args.iter().collect();
    text.push_str(&all.join("|"));
    text.push_str(";caps=");
    for c in runtime::caps::all() {
        let (kind, r, _, _) = match runtime::caps::inspect(c.token) {
            Ok(i) => i,
            Err(_) => return 6,
        };
        let _ = write!(text, "{:x}:{}:{:x},", c.id, kind.name(), r);
    }
    match chan().send(0, text.as_bytes()) {
        Ok(_) => 0,
        Err(_) => 7,
    }
}

fn server(chan: Channel, op: &str) -> i32 {
    let next = init_cap(NEXT).map(Channel::from_token);
    let Ok(mut w) = Window::new() else { return 3 };
    let mut answer = None;
    loop {
        let answered = answer.is_some();
        let mut m = match chan.reply_recv(answer.take(), &mut w, FOREVER) {
            Ok(m) => m,
            // The client of the answer is gone (a stale cookie is refused
            // before the receive): just receive.
            Err(_) if answered => continue,
            Err(_) => return 4,
        };
        let size = m.size;
        answer = Some(match m.tag {
            tag::ECHO => {
                let b = &mut m.window()[..size];
                let sum = b.iter().map(|&x| x as u64).sum();
                b.iter_mut().for_each(|x| *x ^= 0xff);
                m.answer(sum, size)
            }
            tag::SWEEP => {
                let b = &mut m.window()[..size];
                let hash = fnv1a(b);
                b.iter_mut().for_each(|x| *x = x.wrapping_add(1));
                m.answer(hash, size)
            }
            tag::PAGE => {
                let b = m.window();
                let ok = size == 4096 && b.iter().enumerate().all(|(i, &x)| x == (i as u8) ^ 0x5a);
                b.iter_mut().enumerate().for_each(|(i, x)| *x = (i as u8) ^ 0xa5);
                m.answer(ok as u64, 0)
            }
            tag::PRIO => {
                let (base, eff) = priority().unwrap_or((0, 0));
                m.answer((base as u64) << 8 | eff as u64, 0)
            }
            tag::STEP => {
                let b = &mut m.window()[..8];
                let v = u64::from_le_bytes((&*b).try_into().unwrap());
                let mut r = match op {
                    "add1" => v + 1,
                    "mul3" => v * 3,
                    "sub5" => v.wrapping_sub(5),
                    _ => v,
                };
                let mut out = r.to_le_bytes();
                if let Some(next) = &next {
                    r = next.call(tag::STEP, &mut out, 8).map_or_else(|e| 1 << 63 | e as u64, |r| r.result);
                }
                b.copy_from_slice(&out);
                m.answer(r, 8)
            }
            tag::OPEN => {
                let _ = open(m);
                return 0;
            }
            tag::EXIT => {
                let _ = m.reply(0, 0);
                return 0;
            }
            tag::CRASH => {
                // SAFETY: deliberately faults; the kernel ends the process.
                unsafe { core::ptr::write_volatile(core::ptr::null_mut::<u64>(), 1) };
                return 8;
            }
            t => m.answer(t * 2, 0),
        });
    }
}

/// The spec's channel delegation: answer `OPEN` with a send capability
/// for a channel made for this client, then serve the client there alone
/// (`tag * 3`) until its `EXIT`.
fn open(m: runtime::ipc::Received) -> Result<(), Error> {
    let own = Channel::create()?;
    m.reply_cap(0, 0, own.token(), abi::ChannelRights::SEND)?;
    let mut w = Window::new()?;
    loop {
        let m = own.receive(&mut w, FOREVER)?;
        if m.tag == tag::EXIT {
            return m.reply(0, 0);
        }
        let t = m.tag;
        m.reply(t * 3, 0)?;
    }
}

/// The benchmark's server: the tightest loop the runtime allows that
/// still reads every request and answers it with something that depends on
/// it (`BUMP`, also for anything else); `EXIT` ends it.
fn bench_server() -> i32 {
    let chan = chan();
    let Ok(mut w) = Window::new() else { return 3 };
    let Ok(mut m) = chan.receive(&mut w, FOREVER) else { return 4 };
    loop {
        if m.tag == tag::EXIT {
            let _ = m.reply(0, 0);
            return 0;
        }
        let (size, n) = (m.size, m.tag >> 8);
        seq::bump(&mut m.window()[..size]);
        let a = m.answer(n + 1, size);
        match chan.reply_recv(Some(a), &mut w, FOREVER) {
            Ok(next) => m = next,
            Err(_) => return 5,
        }
    }
}

/// A `BUMP` server (as [`bench_server`]) for whichever channel the owner
/// of `CHAN` names: it asks on `CHAN` (the answer is a token of its own
/// table, 0 to stop), waits on that channel straight from `ReplyWait` (no
/// `Receive` first, so even the first call can take the fast path), and
/// asks again when the channel goes. Exits 0 when told to stop.
fn hint_server() -> i32 {
    let owner = chan();
    let Ok(mut w) = Window::new() else { return 3 };
    loop {
        let Ok(token) = owner.send(0, &[]) else { return 4 };
        if token == 0 {
            return 0;
        }
        let ch = Channel::from_token(token);
        let mut answer = None;
        // Until the channel goes (the wait fails).
        while let Ok(mut m) = ch.reply_recv(answer.take(), &mut w, FOREVER) {
            let (size, n) = (m.size, m.tag >> 8);
            seq::bump(&mut m.window()[..size]);
            answer = Some(m.answer(n + 1, size));
        }
    }
}

/// One of the benchmark's equal clients: wait at the gate (`NEXT`), whose
/// answer is when the run ends (uptime, ms), then make checked 64-byte
/// `BUMP` calls to the bench server on `CHAN` until then. Exits with the
/// number of calls, or -1 when a reply was wrong, -2 when a call failed.
fn fair_client() -> i32 {
    let chan = chan();
    let Some(gate) = init_cap(NEXT).map(Channel::from_token) else { return -3 };
    let Ok(end) = gate.send(0, &[]) else { return -4 };
    let mut buf = [0u8; 64];
    let mut n = 0u64;
    while uptime_ms() < end {
        seq::put(&mut buf, n);
        match chan.call(tag::BUMP | n << 8, &mut buf, 64) {
            Ok(r) if r.result == n + 1 && r.len == 64 && seq::holds(&buf, n + 1) => n += 1,
            Ok(_) => return -1,
            Err(_) => return -2,
        }
    }
    n.min(i32::MAX as u64) as i32
}

/// Receive a lent page into an unmapped window, reply, then touch the
/// window: the kernel must have taken the page back, so this faults.
fn lend_touch() -> i32 {
    let mut w = Window::unmapped();
    let Ok(m) = chan().receive(&mut w, FOREVER) else { return 3 };
    let ok = m.data().iter().enumerate().all(|(i, &x)| x == (i as u8) ^ 0x5a);
    let _ = m.reply(ok as u64, 0);
    // SAFETY: deliberately reading a page that must no longer be mapped.
    let v = unsafe { core::ptr::read_volatile(w.addr() as *const u8) };
    core::hint::black_box(v);
    0
}

/// Lend a page to the server on `CHAN` (which holds the request), while a
/// sibling thread waits until the page is out of reach and then writes it.
/// The write must fault and end this process: exit code 5 means the page
/// stayed reachable during the loan, 6 that the call returned, 7 that the
/// write went through, 4 that the first of two loans (`twice`: the second
/// one meets a server waiting in `ReplyRecv`, the fast path's case) failed.
fn lend_sibling(dma: bool, twice: bool) -> i32 {
    let addr = if dma {
        // A page of a DMA region of ours (`lend-sibling dma`).
        let Ok((range, _)) = runtime::mem::dma_alloc(1) else { return 8 };
        let va = runtime::mem::reserve(4096);
        if range.map(va, 0, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).is_err() {
            return 9;
        }
        va as *mut u8
    } else {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(runtime::ipc::Page::zeroed())).0.as_mut_ptr()
    };
    // SAFETY: `addr` is a page of ours, mapped read-write, used by nothing else.
    let page = unsafe { core::slice::from_raw_parts_mut(addr, 4096) };
    page.iter_mut().enumerate().for_each(|(i, b)| *b = (i as u8) ^ 0x5a);
    // SAFETY: the page is ours and nothing else touches it during the call.
    if twice && unsafe { chan().send_raw(tag::PAGE, addr, 4096, FOREVER, abi::SendFlags::empty()) }.is_err() {
        return 4;
    }
    if runtime::process::spawn_thread(sibling_writes, addr as u64, 8).is_err() {
        return 3;
    }
    // SAFETY: not sound on purpose: the sibling tries to write the buffer
    // while it is lent, which the kernel must prevent (the process dies).
    let _ = unsafe { chan().send_raw(tag::PAGE, addr, 4096, FOREVER, abi::SendFlags::empty()) };
    6
}

/// [`lend_sibling`]'s other thread.
fn sibling_writes(addr: u64) {
    let me = runtime::process::Process::from_token(runtime::caps::self_process());
    let start = uptime_ms();
    // The kernel writing the page for us (the byte it already holds) fails
    // once the page is lent: that is when the loan has begun.
    loop {
        // SAFETY: writes the byte the page holds already, through the kernel.
        match unsafe { me.write(addr, &[0x5a]) } {
            Err(Error::BadAddress) => break,
            _ if uptime_ms() - start > 5000 => runtime::exit(5),
            _ => {
                let _ = sleep_ms(1);
            }
        }
    }
    // SAFETY: deliberately writing a page lent out: this must fault.
    unsafe { core::ptr::write_volatile(addr as *mut u8, 0xee) };
    runtime::exit(7);
}

/// Call `CHAN` with `HOLD` and 64 bytes of `id`; the server answers later
/// with result `id` and 32 bytes of `!id`. Exit 0 if that is exactly what
/// came back (10: error, 11: result, 12: length, 13: data).
fn hold_client(id: u8) -> i32 {
    let mut buf = [id; 64];
    let r = match chan().call(tag::HOLD, &mut buf, 64) {
        Ok(r) => r,
        Err(_) => return 10,
    };
    if r.result != id as u64 {
        return 11;
    }
    if r.len != 32 {
        return 12;
    }
    if buf[..32] != [!id; 32] || buf[32..] != [id; 32] {
        return 13;
    }
    0
}

/// Own a channel, give the parent a send capability, take one request and
/// never answer it. The parent kills us.
fn owner() -> i32 {
    let Ok(mine) = Channel::create() else { return 3 };
    if chan().send_cap(0, &[], mine.token(), abi::ChannelRights::SEND).is_err() {
        return 4;
    }
    let Ok(mut w) = Window::new() else { return 5 };
    let _held = mine.receive(&mut w, FOREVER);
    loop {
        let _ = sleep_ms(1000);
    }
}

/// Tell the parent the value of one of our channel tokens, then wait to be killed.
fn foreign() -> i32 {
    let Ok(mine) = Channel::create() else { return 3 };
    let _ = chan().send(0, &mine.token().to_le_bytes());
    loop {
        let _ = sleep_ms(1000);
    }
}

/// Receive a capability and report what it allows.
fn delegate() -> i32 {
    let (mut w, mut w2) = (Window::new(), Window::new());
    let (Ok(w), Ok(w2)) = (w.as_mut(), w2.as_mut()) else { return 3 };
    let Ok(m) = chan().receive(w, FOREVER) else { return 4 };
    let got = Channel::from_token(m.cap);
    let rights = runtime::caps::inspect(m.cap).map(|c| c.1 as u64).unwrap_or(0xff);
    let recv_refused = matches!(got.receive(w2, 0), Err(Error::Incapable)) as u64;
    // Nobody receives there, so a send with timeout 0 that is allowed ends in Timeout.
    let send_allowed = (got.send_timeout(1, &[], 0) == Err(Error::Timeout)) as u64;
    let _ = m.reply(rights | recv_refused << 16 | send_allowed << 17, 0);
    0
}

/// Claim I/O APIC line GSI `gsi` and keep it until killed. Exit code 1:
/// the claim failed.
fn irq_hold(gsi: u64) -> i32 {
    match runtime::irq::Irq::line(gsi, abi::irq::LINE_GSI) {
        Ok(_) => loop {
            let _ = sleep_ms(60_000);
        },
        Err(_) => 1,
    }
}

/// Bind COM1's line (inherited) to a channel of ours and wait until
/// killed. Exit code 1: the bind failed.
fn irq_bind() -> i32 {
    let Some(irq) = init_cap(cap_id::COM1_IRQ) else { return 2 };
    let Ok(chan) = Channel::create() else { return 3 };
    match runtime::irq::Irq(irq).bind(&chan, 1) {
        Ok(()) => loop {
            let _ = sleep_ms(60_000);
        },
        Err(_) => 1,
    }
}

/// Started with only the Thread class: everything else must be refused.
/// Exit code: a bit for each call that wrongly succeeded.
fn noauth() -> i32 {
    let mut wrong = 0;
    if Channel::create().is_ok() {
        wrong |= 1;
    }
    let msg = b"should not print\n";
    let args = abi::call::PrintArgs { ptr: msg.as_ptr() as u64, len: msg.len() as u64 };
    if runtime::sys::calls::DEBUG_PRINT.call(0x1234_5678, args).is_ok() {
        wrong |= 2;
    }
    if Channel::find("SYSTEM::VFS").is_ok() {
        wrong |= 4;
    }
    if Channel::from_token(0xdead_beef_cafe).send(1, &[]).is_ok() {
        wrong |= 8;
    }
    if runtime::mem::dma_alloc(1).is_ok() {
        wrong |= 16;
    }
    if runtime::caps::init_cap(cap_id::class(SyscallClass::DebugPrint)).is_some() {
        wrong |= 32;
    }
    wrong
}

/// Present bad tokens eight times, timing each refusal; then check the
/// delay decays after a quiet spell. Exit 0 if the delays escalate.
fn strikes() -> i32 {
    let mut d = [0u64; 8];
    for x in d.iter_mut() {
        let t0 = runtime::time::uptime_ns();
        let r = Channel::from_token(0x5eed_0000_0000_0001).send(1, &[]);
        *x = (runtime::time::uptime_ns() - t0) / 1_000_000;
        if r != Err(Error::Incapable) {
            return 3;
        }
    }
    let _ = sleep_ms(6000);
    let t0 = runtime::time::uptime_ns();
    let _ = Channel::from_token(0x5eed_0000_0000_0002).send(1, &[]);
    let after_quiet = (runtime::time::uptime_ns() - t0) / 1_000_000;
    runtime::println!("ktest: bad-token delays (ms): {:?}; after 6 s quiet: {}", d, after_quiet);
    let escalates = d[0] <= 3 && d[1] < d[4] && d[4] < d[7] && d[7] >= 64;
    if !escalates {
        return 1;
    }
    if after_quiet > d[5] {
        return 4;
    }
    0
}

/// The calls the kernel's short path answers (`Priority`, `Uptime`; the
/// benchmark's null syscall), started at priority 8: right answers with
/// our Thread token; every bad token (forged, zero, another class, our
/// Thread class without `USE`, our process capability) refused with
/// `Incapable` and delayed, the delays escalating as for any bad token.
/// Exit 0, or a bit for each thing that went wrong.
fn short_path() -> i32 {
    use abi::call::NoArgs;
    use runtime::sys::calls::{PRIORITY, UPTIME};
    let mut wrong = 0;
    if priority() != Ok((8, 8)) {
        wrong |= 1;
    }
    let u0 = runtime::time::uptime_ns();
    let _ = sleep_ms(20);
    if runtime::time::uptime_ns() < u0 + 20_000_000 {
        wrong |= 2;
    }
    let thread = runtime::class_token(SyscallClass::Thread);
    let Ok(no_use) = runtime::caps::derive(thread, abi::RightsMask::NONE) else { return 64 };
    let bad = [0x5eed_0000_0000_0003, 0, runtime::class_token(SyscallClass::DebugPrint), no_use, runtime::caps::self_process()];
    let mut d = [0u64; 8];
    for (i, x) in d.iter_mut().enumerate() {
        let token = bad[i % bad.len()];
        let t0 = runtime::time::uptime_ns();
        let r = if i % 2 == 0 { PRIORITY.call(token, NoArgs {}).map(|_| ()) } else { UPTIME.call(token, NoArgs {}).map(|_| ()) };
        *x = (runtime::time::uptime_ns() - t0) / 1_000_000;
        if r != Err(Error::Incapable) {
            wrong |= 4;
        }
    }
    runtime::println!("ktest: short-path bad-token delays (ms): {:?}", d);
    if !(d[0] <= 3 && d[1] < d[4] && d[4] < d[7] && d[7] >= 64) {
        wrong |= 8;
    }
    // Still answered right after all that.
    if priority() != Ok((8, 8)) {
        wrong |= 16;
    }
    wrong
}

/// Map, write, unmap, then touch: must fault.
fn unmapped_touch() -> i32 {
    let va = runtime::mem::reserve(4096);
    if runtime::mem::map_anon(va, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).is_err() {
        return 3;
    }
    // SAFETY: mapped just above.
    unsafe { core::ptr::write_volatile(va as *mut u64, 5) };
    // SAFETY: nothing refers to the page but the raw address `va`.
    if unsafe { runtime::mem::unmap(va, 4096) }.is_err() {
        return 4;
    }
    // SAFETY: deliberately touching the page just unmapped.
    unsafe { core::ptr::write_volatile(va as *mut u64, 6) };
    0
}

/// Write to a read-only page: must fault.
fn ro_write() -> i32 {
    let va = runtime::mem::reserve(4096);
    if runtime::mem::map_anon(va, 4096, abi::MapFlags::READ).is_err() {
        return 3;
    }
    // SAFETY: reading the zeroed page is fine; the write must fault.
    unsafe {
        let v = core::ptr::read_volatile(va as *const u64);
        core::ptr::write_volatile(va as *mut u64, v + 1);
    }
    0
}

/// Make `n` valid syscalls; the exit code is the milliseconds they took.
fn honest(n: u64) -> i32 {
    let start = uptime_ms();
    for _ in 0..n {
        let _ = priority();
        let _ = yield_now();
    }
    (uptime_ms() - start) as i32
}
