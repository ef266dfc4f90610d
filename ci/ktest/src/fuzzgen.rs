//! Random syscalls: the one generator behind every in-guest fuzzer (the
//! `caps` suite's short run and the `fuzz` suite's hundred thousand or
//! million calls).
//!
//! A [`Fuzzer`] makes one syscall per [`Fuzzer::step`]: a random number
//! (mostly a real syscall, sometimes an unknown one), a token that is almost always of the
//! kind the syscall wants (the right class, our channel, our process, a
//! scratch process, a physical range, or one an earlier call gave us) and
//! now and then forged, off by one, zero, stale or another process's, and
//! arguments from classes that hit the kernel's checks: user addresses in
//! a sandbox, the receive window, a valid name, null and low pages, kernel
//! addresses, non-canonical ones, ranges straddling the top of user space,
//! odd sizes and flags. Bad tokens are rare because each one costs the
//! caller an escalating delay; the rest of the time the fuzzer explores
//! argument handling. Fuzzers sharing a hub channel send each other
//! messages (copied or lent pages) and answer what they receive at once,
//! with forged cookies now and then and odd reply lengths.
//!
//! Every syscall is made, shaped so the fuzzer keeps running: `Exit` and
//! `ThreadExit` rarely (the fuzzer ends there, holding what it holds, and
//! its caller starts another); `SendCap` only on the hub (it waits for
//! ever, until another fuzzer or the caller answers), with any token we
//! hold attached; `PowerOff` without the Power class (it must be refused);
//! `DebugPrint` of whole lines only (or bad addresses and lengths) so the
//! log stays readable; `DebugIpc` with every operation but tracing on; the
//! IRQ calls with vectors and I/O APIC lines we allocated (at most
//! [`MAX_IRQ`]); `IoPortIn`/
//! `IoPortOut` with a read-only capability for COM1 (inside and outside
//! its ports). What it maps or unmaps in its own user space lies in the
//! sandbox, and threads it starts go to the scratch process, so it cannot
//! pull its own code or stack away.

use alloc::vec::Vec;

use abi::call::{NoArgs, ReplyArgs, ReplyRecvArgs};
use abi::{Error, Syscall, SyscallClass};

use crate::harness::Rng;

/// Bytes of address space each fuzzer maps and unmaps in (small: several
/// fuzzers map all of it at once).
pub const SANDBOX_LEN: u64 = 4 << 20;
/// One call in this many uses a bad token.
const BAD_TOKEN_ONE_IN: u64 = 700;
/// Tokens an earlier call gave us, at most.
const POOL: usize = 24;
/// DMA regions one fuzzer may hold (the system has 64).
const MAX_DMA: usize = 4;

/// IRQ vectors one fuzzer may hold (the system has 16).
pub const MAX_IRQ: usize = 2;
/// `Exit` and `ThreadExit` go through once in this many times they are drawn.
const END_ONE_IN: u64 = 1000;
/// `PowerOff` (refused: no Power class) and `IoPortOut` (refused: our
/// ports are read-only) go through once in this many: each costs a
/// bad-token delay.
const POWER_ONE_IN: u64 = 200;
/// `SendCap` (which waits until someone on the hub answers) goes through
/// once in this many times it is drawn.
const SEND_CAP_ONE_IN: u64 = 4;
/// What the fuzzer prints when `DebugPrint` gets a good address.
static LINE: &[u8] = b"fuzz: a line through DebugPrint\n";

/// A valid channel name (and text around it) for the name syscalls.
static NAME: &[u8] = b"FUZZ::ECHO FUZZ::ECHOES";

/// What a token in the pool is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Got {
    /// A channel we created (its only all-rights token).
    Channel,
    /// A DMA range we allocated.
    Dma,
    /// An MSI vector we allocated.
    Irq,
    /// Anything else (derived, found): used only where any token will do.
    Other,
}

/// What the fuzzer works with.
pub struct Setup {
    /// A channel of ours (all rights).
    pub channel: u64,
    /// Our receive window.
    pub window: u64,
    /// Start of `SANDBOX_LEN` bytes of reserved address space.
    pub sandbox: u64,
    /// Our own process (MAP, THREAD, WAIT, KILL).
    pub me: u64,
    /// An empty process we may do anything to (0 if none).
    pub scratch: u64,
    /// A read-only physical range (the RAMFS).
    pub phys: u64,
    /// A token that was ours and is stale now.
    pub stale: u64,
    /// A token of another process (worthless here).
    pub foreign: u64,
    /// A channel the fuzzers share (SEND and RECEIVE), where their
    /// messages meet; 0 if none.
    pub hub: u64,
    /// COM1's I/O ports, read-only (0 if none).
    pub ports: u64,
}

/// A syscall that answered a status outside [`Error`].
#[derive(Debug)]
pub struct UnknownStatus {
    pub nr: u64,
    pub status: u64,
}

pub struct Fuzzer {
    rng: Rng,
    s: Setup,
    pool: Vec<(u64, Got)>,
    /// A message we received and have not answered: (cookie, size).
    held: Option<(u64, u64)>,
    pub calls: u64,
    /// Calls made with a bad token on purpose.
    pub bad_tokens: u64,
    /// The status of the last call (0 = success, else an [`Error`]).
    pub last_status: usize,
    /// The number of the last call.
    pub last_nr: u64,
}

/// Statuses a call can end with: success and each [`Error`].
pub const STATUSES: usize = 16;

impl Fuzzer {
    pub fn new(seed: u64, s: Setup) -> Fuzzer {
        // xorshift must not start at 0; spread nearby seeds apart.
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        rng.next();
        Fuzzer { rng, s, pool: Vec::new(), held: None, calls: 0, bad_tokens: 0, last_status: 0, last_nr: 0 }
    }

    /// The scratch process's token, 0 once it is gone.
    pub fn scratch(&self) -> u64 {
        self.s.scratch
    }

    fn r(&mut self) -> u64 {
        self.rng.next()
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.r().is_multiple_of(n)
    }

    /// An address from one of the classes the kernel must tell apart.
    fn addr(&mut self) -> u64 {
        let r = self.r();
        match self.r() % 11 {
            0 => self.s.sandbox + r % SANDBOX_LEN / 4096 * 4096,
            1 => self.s.sandbox + r % SANDBOX_LEN,
            2 => self.s.window,
            3 => NAME.as_ptr() as u64 + r % 8,
            4 => r % 8192, // null and the low pages, never mapped
            5 => 0xffff_8000_0000_0000 + r % (1 << 30), // the kernel's view of RAM
            6 => 0xffff_ffff_8000_0000 + r % (16 << 20), // kernel image
            7 => 0x0000_8000_0000_0000 + r % (1 << 30), // just past the canonical hole's start
            8 => abi::USER_TOP - r % 8192, // straddling the end of user space
            9 => abi::USER_TOP - 4096, // the last user page
            _ => r,
        }
    }

    /// A page of ours for a message: the window, or one of the sandbox
    /// (mapped or not).
    fn page(&mut self) -> u64 {
        if self.one_in(2) {
            self.s.window
        } else {
            self.s.sandbox + self.r() % SANDBOX_LEN / 4096 * 4096
        }
    }

    /// A size or count from the classes where checks sit.
    fn size(&mut self) -> u64 {
        let r = self.r();
        match self.r() % 11 {
            0 => 0,
            1 => 1,
            2 => r % 64,
            3 => r % 8192,
            4 => 4096,
            5 => 4097,
            6 => 1 << 20,
            7 => 1 << 30,
            8 => (1 << 30) + 1,
            9 => u64::MAX,
            _ => r,
        }
    }

    fn arg(&mut self) -> u64 {
        match self.r() % 5 {
            0 | 1 => self.addr(),
            2 => self.size(),
            3 => self.r() % 16, // flags, rights, small numbers
            _ => self.r(),
        }
    }

    /// A token that must be refused: forged, zero, off by one, stale or foreign.
    fn bad_token(&mut self) -> u64 {
        self.bad_tokens += 1;
        match self.r() % 6 {
            0 => self.r(),
            1 => 0,
            2 => self.s.channel.wrapping_add(1),
            3 => self.s.channel ^ 1 << (self.r() % 64),
            4 => self.s.stale,
            _ => self.s.foreign,
        }
    }

    fn pick(&mut self, want: impl Fn(Got) -> bool) -> Option<usize> {
        let n = self.pool.iter().filter(|(_, g)| want(*g)).count();
        if n == 0 {
            return None;
        }
        let k = (self.r() % n as u64) as usize;
        self.pool.iter().enumerate().filter(|(_, (_, g))| want(*g)).nth(k).map(|(i, _)| i)
    }

    /// A process token: ours or the scratch process's; only the scratch
    /// process's when `others` says the call must not touch us (`None`
    /// once the scratch process is gone).
    fn process(&mut self, others: bool) -> Option<u64> {
        if self.s.scratch != 0 && (others || self.one_in(2)) {
            Some(self.s.scratch)
        } else if others {
            None
        } else {
            Some(self.s.me)
        }
    }

    /// Keep the user addresses of a map or unmap in the sandbox (and the
    /// range within it), so that the fuzzer never unmaps its own code or
    /// stack and never maps more than the sandbox's worth; kernel and
    /// non-canonical addresses stay as they are.
    fn confine(&mut self, addr: &mut u64, len: &mut u64) {
        let end = self.s.sandbox + SANDBOX_LEN;
        if *addr < abi::USER_TOP && !(self.s.sandbox..end).contains(addr) {
            *addr = self.s.sandbox + *addr % SANDBOX_LEN;
        }
        if (self.s.sandbox..end).contains(addr) {
            *len %= end - *addr + 1;
        }
    }

    /// Make one random syscall.
    pub fn step(&mut self) -> Result<(), UnknownStatus> {
        if let Some((cookie, size)) = self.held {
            return self.answer(cookie, size);
        }
        // Mostly real syscalls; a quarter any number below 80 (most of
        // which are unknown), now and then a huge one.
        let nr = match self.r() % 16 {
            0 => self.r(),
            1..=4 => self.r() % 80,
            _ => loop {
                let n = self.r() % 80;
                if Syscall::from_raw(n).is_some() {
                    break n;
                }
            },
        };
        let sys = Syscall::from_raw(nr);
        let rare = match sys {
            Some(Syscall::Exit | Syscall::ThreadExit) => END_ONE_IN,
            // Our COM1 capability is read-only: a write is a bad token.
            Some(Syscall::PowerOff | Syscall::IoPortOut) => POWER_ONE_IN,
            // Waits until someone on the hub answers: only there.
            Some(Syscall::SendCap) if self.s.hub == 0 => return Ok(()),
            Some(Syscall::SendCap) => SEND_CAP_ONE_IN,
            _ => 1,
        };
        if !self.one_in(rare) {
            return Ok(());
        }
        let mut a = [0u64; 5];
        for x in a.iter_mut() {
            *x = self.arg();
        }
        // Index into the pool of a token this call uses up.
        let mut consumed = None;
        let class = runtime::class_token;
        let token = match sys {
            Some(Syscall::Yield | Syscall::Sleep | Syscall::Uptime | Syscall::Priority) => class(SyscallClass::Thread),
            Some(Syscall::ChannelCreate) => class(SyscallClass::ChannelCreate),
            Some(Syscall::NameFind | Syscall::NamesScope) => class(SyscallClass::Names),
            Some(Syscall::DmaAlloc | Syscall::DmaAddr) => class(SyscallClass::Dma),
            Some(Syscall::Exit | Syscall::ThreadExit) => class(SyscallClass::Thread),
            Some(Syscall::DebugPrint) => class(SyscallClass::DebugPrint),
            Some(Syscall::DebugIpc) => class(SyscallClass::DebugIpc),
            Some(Syscall::IrqMsi | Syscall::IrqLine) => class(SyscallClass::Irq),
            // A class we hold, but not Power's: refused (a bad token).
            Some(Syscall::PowerOff) => {
                self.bad_tokens += 1;
                class(SyscallClass::Thread)
            }
            Some(Syscall::IrqBind | Syscall::IrqAck) => match self.pick(|g| g == Got::Irq) {
                Some(i) => {
                    // A channel we may receive on: ours, one we made, the hub.
                    a[const { abi::call::arg_index(Syscall::IrqBind, "channel") }] = match self.pick(|g| g == Got::Channel) {
                        Some(c) if self.one_in(3) => self.pool[c].0,
                        _ if self.s.hub != 0 && self.one_in(2) => self.s.hub,
                        _ => self.s.channel,
                    };
                    self.pool[i].0
                }
                None => return Ok(()),
            },
            Some(Syscall::IoPortIn | Syscall::IoPortOut) if self.s.ports != 0 => {
                if sys == Some(Syscall::IoPortOut) {
                    self.bad_tokens += 1;
                }
                self.s.ports
            }
            Some(Syscall::SendCap) => {
                // Attach something we hold with DELEGATE (a token without
                // it, or none, is a bad token: rarely).
                a[const { abi::call::arg_index(Syscall::SendCap, "cap") }] = match self.pick(|g| g != Got::Other) {
                    _ if self.one_in(POWER_ONE_IN) => {
                        self.bad_tokens += 1;
                        [self.s.me, 0][(self.r() % 2) as usize]
                    }
                    Some(i) if self.one_in(2) => self.pool[i].0,
                    _ => [self.s.channel, self.s.phys][(self.r() % 2) as usize],
                };
                self.s.hub
            }
            Some(Syscall::ProcessCreate) => class(SyscallClass::ProcessCreate),
            Some(Syscall::ChannelDestroy) => match self.pick(|g| g == Got::Channel) {
                Some(i) => {
                    consumed = Some(i);
                    self.pool[i].0
                }
                None => return Ok(()), // never our own channel
            },
            Some(Syscall::Send | Syscall::Call | Syscall::Receive | Syscall::ReplyRecv | Syscall::ReplyWait) if self.s.hub != 0 && !self.one_in(4) => {
                self.s.hub
            }
            Some(
                Syscall::Send
                | Syscall::Call
                | Syscall::Receive
                | Syscall::ReplyRecv
                | Syscall::ReplyWait
                | Syscall::NameRegister
                | Syscall::NameDeregister,
            ) => {
                if sys == Some(Syscall::NameRegister) {
                    // Its authority over the name is a second token: ours
                    // (a random one would cost a bad-token delay).
                    a[const { abi::call::arg_index(Syscall::NameRegister, "names") }] = class(SyscallClass::Names);
                }
                match self.pick(|g| g == Got::Channel) {
                    Some(i) if self.one_in(4) => self.pool[i].0,
                    _ => self.s.channel,
                }
            }
            Some(Syscall::Reply) => match self.r() % 3 {
                // A cookie, not a token: refused without delay.
                0 => 0,
                1 => self.r() % 4096,
                _ => self.r(),
            },
            Some(Syscall::MapPhys | Syscall::PhysDerive | Syscall::PhysInfo) => match self.pick(|g| g == Got::Dma) {
                Some(i) if self.one_in(2) => self.pool[i].0,
                _ => self.s.phys,
            },
            Some(Syscall::CapInspect | Syscall::CapDerive) => match self.pick(|_| true) {
                Some(i) if self.one_in(2) => self.pool[i].0,
                _ => self.s.channel,
            },
            Some(Syscall::CapDrop) => match self.pick(|g| g == Got::Other) {
                Some(i) => {
                    consumed = Some(i);
                    self.pool[i].0
                }
                None => return Ok(()),
            },
            Some(Syscall::CapGrant) => {
                // Tokens we hold with DELEGATE.
                a[const { abi::call::arg_index(Syscall::CapGrant, "cap") }] = match self.pick(|g| matches!(g, Got::Channel | Got::Dma)) {
                    Some(i) if self.one_in(2) => self.pool[i].0,
                    _ => self.s.channel,
                };
                match self.process(true) {
                    Some(t) => t,
                    None => return Ok(()),
                }
            }
            Some(Syscall::ThreadCreate | Syscall::ProcessKill) => match self.process(true) {
                Some(t) => t,
                None => return Ok(()),
            },
            Some(Syscall::MapAnon | Syscall::Unmap | Syscall::ProcessWrite | Syscall::ProcessWait) => {
                self.process(false).unwrap_or(self.s.me)
            }
            _ => self.r(),
        };
        if sys == Some(Syscall::DmaAlloc) && self.pool.iter().filter(|(_, g)| *g == Got::Dma).count() >= MAX_DMA {
            return Ok(());
        }
        if matches!(sys, Some(Syscall::IrqMsi | Syscall::IrqLine)) && self.pool.iter().filter(|(_, g)| *g == Got::Irq).count() >= MAX_IRQ {
            return Ok(());
        }
        let token = if self.one_in(BAD_TOKEN_ONE_IN) { self.bad_token() } else { token };
        self.shape(sys, token, &mut a);
        let (status, r) = self.issue(nr, token, a)?;
        if status == 0 && matches!(sys, Some(Syscall::Receive | Syscall::ReplyRecv)) {
            self.held = Some((r[0], r[2]));
            // (An interrupt event has cookie 0 and its badge there.)
            if r[0] != 0 {
                self.took(r[3]);
            }
        }
        if token == self.s.scratch && (status == Error::NotFound as u64 || status == Error::Incapable as u64) {
            // The scratch process died (a thread we started there faulted,
            // or we killed it), and its slot may be reused, which makes the
            // token stale: every further use would be a bad token.
            self.s.scratch = 0;
        }
        if status == 0 {
            self.keep(sys, r[0], consumed);
        }
        Ok(())
    }

    /// Make the call; count it and check its status is an [`Error`].
    fn issue(&mut self, nr: u64, token: u64, a: [u64; 5]) -> Result<(u64, [u64; 4]), UnknownStatus> {
        // SAFETY: the addresses the fuzzer can pass are in its sandbox (which
        // no Rust value uses, and the only place it maps or unmaps in its own
        // space), its window (used by nothing else), a static name it only
        // reads, unmapped low pages, kernel or non-canonical addresses, the
        // top of user space (nothing of ours lives there), or random values
        // that all but never fall on our few mapped megabytes.
        let (status, r) = unsafe { runtime::sys::raw(nr, token, a) };
        self.calls += 1;
        if status != 0 && Error::from_raw(status).is_none() {
            return Err(UnknownStatus { nr, status });
        }
        self.last_status = (status as usize).min(STATUSES - 1);
        self.last_nr = nr;
        Ok((status, r))
    }

    /// Answer the message we hold (its sender waits for us; were we to
    /// wait for someone in turn, the fuzzers could end up all waiting for
    /// each other): now and then first with a forged cookie, then with the
    /// real one by `Reply`, or by `ReplyRecv`, which may hand us the next.
    fn answer(&mut self, cookie: u64, size: u64) -> Result<(), UnknownStatus> {
        if self.one_in(8) {
            let forged = [cookie.wrapping_add(1), cookie ^ 1 << 16, cookie.wrapping_sub(1 << 16), self.r()];
            let f = forged[(self.r() % 4) as usize];
            let result = self.r();
            self.issue(Syscall::Reply as u64, f, reply(result, 0, 0))?;
            return Ok(());
        }
        // Mostly a reply length that fits the message, sometimes not.
        let len = if self.one_in(8) { self.size() } else { self.r() % (size + 1) };
        let result = self.r();
        let (status, r) = if self.one_in(2) {
            // The reply data: the window (where a copied message sits, or a
            // lent page), a page of ours, or a bad address.
            let buf = if self.one_in(2) { self.page() } else { self.addr() };
            self.issue(Syscall::Reply as u64, cookie, reply(result, buf, len))?
        } else {
            let chan = if self.s.hub != 0 && self.one_in(2) { self.s.hub } else { self.s.channel };
            let window = if self.one_in(2) { self.page() } else { self.addr() };
            self.issue(Syscall::ReplyRecv as u64, chan, ReplyRecvArgs { cookie, result, reply_len: len, window, timeout: 0 }.to_regs())?
        };
        self.held = match status {
            // Too long a reply, or reply data from a window that holds a
            // later message: the message is still ours to answer.
            s if s == Error::InvalidArgument as u64 => Some((cookie, size)),
            0 if r[0] != 0 => Some((r[0], r[2])),
            _ => None,
        };
        if status == 0 && r[0] != 0 {
            self.took(r[3]);
        }
        Ok(())
    }

    /// A capability a message brought us (`SendCap` from another fuzzer):
    /// use it where any token will do, or drop it if the pool is full.
    fn took(&mut self, cap: u64) {
        if cap == 0 || self.pool.iter().any(|&(t, _)| t == cap) {
        } else if self.pool.len() < POOL {
            self.pool.push((cap, Got::Other));
        } else {
            let _ = runtime::caps::drop_cap(cap);
        }
    }

    /// Bound what would stall or harm the fuzzer itself.
    fn shape(&mut self, sys: Option<Syscall>, token: u64, a: &mut [u64; 5]) {
        macro_rules! at {
            ($s:ident, $name:literal) => {
                a[const { abi::call::arg_index(Syscall::$s, $name) }]
            };
        }
        let (on_me, token_is_phys) = (token == self.s.me, token == self.s.phys);
        // Waits: mostly polls, otherwise up to 2 ms.
        let wait = if self.one_in(4) { self.r() % 2_000_000 } else { 0 };
        match sys {
            // Half the messages well formed (so some get through: copied,
            // or a page lent), half anything.
            Some(Syscall::Send) => {
                if self.one_in(2) {
                    let page = self.one_in(2);
                    at!(Send, "size") = if page { 4096 } else { self.r() % 4097 };
                    at!(Send, "buf") = if page || self.one_in(2) { self.page() } else { self.s.window + self.r() % 4096 };
                    at!(Send, "flags") = if self.one_in(4) { abi::SendFlags::READ_ONLY.bits() } else { 0 };
                }
                at!(Send, "timeout") = wait;
            }
            Some(Syscall::Receive) => {
                if self.one_in(2) {
                    at!(Receive, "window") = self.page();
                }
                at!(Receive, "timeout") = wait;
            }
            Some(Syscall::ReplyRecv) => {
                if self.one_in(2) {
                    at!(ReplyRecv, "window") = self.page();
                }
                at!(ReplyRecv, "timeout") = wait;
            }
            Some(Syscall::Call) => at!(Call, "timeout") = wait,
            // `ReplyWait` waits for ever unless it polls: always poll (now
            // and then in a window of ours).
            Some(Syscall::ReplyWait) => {
                if self.one_in(2) {
                    at!(ReplyWait, "window_len") = self.page() | at!(ReplyWait, "window_len") & 0xfff;
                }
                at!(ReplyWait, "window_len") |= abi::call::POLL;
            }
            Some(Syscall::ProcessWait) => at!(ProcessWait, "timeout") = wait,
            Some(Syscall::Sleep) => at!(Sleep, "timeout") = wait,
            // Lines the I/O APIC has (and some it lacks), by GSI or ISA IRQ,
            // and now and then another kind.
            Some(Syscall::IrqLine) if !self.one_in(4) => {
                at!(IrqLine, "line") = self.r() % 28;
                at!(IrqLine, "kind") = self.r() % 3;
            }
            // Half of them well formed; the kernel copies, never lends.
            Some(Syscall::SendCap) if self.one_in(2) => {
                at!(SendCap, "size") = self.r() % 4097;
                at!(SendCap, "buf") = self.page();
            }
            // Print whole lines or nothing: bad lengths, bad addresses.
            Some(Syscall::DebugPrint) if at!(DebugPrint, "len") <= abi::limits::PRINT_LEN as u64 && at!(DebugPrint, "len") != 0 => {
                if self.one_in(4) {
                    (at!(DebugPrint, "ptr"), at!(DebugPrint, "len")) = (LINE.as_ptr() as u64, LINE.len() as u64);
                } else {
                    // (Never a mapped page: zeros would reach the log.)
                    at!(DebugPrint, "ptr") = [0, 0xffff_8000_0000_0000, 0x0000_8000_0000_0000, abi::USER_TOP][(self.r() % 4) as usize];
                }
            }
            Some(Syscall::DebugIpc) => {
                let op = self.r() % 10; // every operation, and two unknown ones
                at!(DebugIpc, "op") = op;
                if op == abi::debug::op::TRACE {
                    at!(DebugIpc, "a") = 0; // tracing on would flood the console
                } else if op == abi::debug::op::CHANNEL_STATS || op == abi::debug::op::CHANNEL_NAME {
                    // Ids near real ones: small indices and generations, or junk.
                    if !self.one_in(4) {
                        at!(DebugIpc, "a") = ((self.r() % 4) << 32) | (self.r() % 300);
                    }
                    at!(DebugIpc, "b") = if self.one_in(2) { self.page() } else { self.addr() };
                } else if self.one_in(2) {
                    at!(DebugIpc, "a") = self.page();
                }
            }
            Some(Syscall::IoPortIn | Syscall::IoPortOut) => {
                // (IoPortIn and IoPortOut share the port's position.)
                const _: () = assert!(abi::call::arg_index(Syscall::IoPortIn, "port") == abi::call::arg_index(Syscall::IoPortOut, "port"));
                // Around COM1's eight ports (0x3f8..0x400), or anything.
                if !self.one_in(4) {
                    at!(IoPortOut, "port") = 0x3f0 + self.r() % 0x18;
                }
                if self.one_in(2) {
                    at!(IoPortOut, "value") %= 0x200;
                }
            }
            Some(Syscall::DmaAlloc) if !self.one_in(8) => at!(DmaAlloc, "pages") %= 8,
            Some(Syscall::ProcessWrite) => {
                if on_me {
                    at!(ProcessWrite, "dst") = self.s.sandbox + at!(ProcessWrite, "dst") % SANDBOX_LEN;
                }
                at!(ProcessWrite, "len") %= 1 << 16;
            }
            // In the scratch process too: it must not take all memory.
            Some(Syscall::MapAnon | Syscall::Unmap) => {
                // (MapAnon and Unmap share these positions.)
                const _: () = assert!(abi::call::arg_index(Syscall::MapAnon, "len") == abi::call::arg_index(Syscall::Unmap, "len"));
                let (mut addr, mut len) = (at!(MapAnon, "addr"), at!(MapAnon, "len"));
                self.confine(&mut addr, &mut len);
                (at!(MapAnon, "addr"), at!(MapAnon, "len")) = (addr, len);
            }
            Some(Syscall::MapPhys) => {
                // The RAMFS range is read-only: asking it for more is a bad token.
                if token_is_phys && !self.one_in(64) {
                    at!(MapPhys, "flags") &= !abi::MapFlags::WRITE.bits();
                }
                let (mut addr, mut len) = (at!(MapPhys, "addr"), at!(MapPhys, "len"));
                self.confine(&mut addr, &mut len);
                (at!(MapPhys, "addr"), at!(MapPhys, "len")) = (addr, len);
            }
            _ => {}
        }
    }

    /// Remember a token a call gave us; undo what would leak past us.
    fn keep(&mut self, sys: Option<Syscall>, token: u64, consumed: Option<usize>) {
        if let Some(i) = consumed {
            self.pool.swap_remove(i);
            return;
        }
        let got = match sys {
            Some(Syscall::ChannelCreate) => Got::Channel,
            Some(Syscall::DmaAlloc) => Got::Dma,
            Some(Syscall::IrqMsi | Syscall::IrqLine) => Got::Irq,
            // (Sub-ranges get random rights: using one where a right is
            // missing would cost a bad-token delay, so they only go where
            // any token will do.)
            Some(Syscall::CapDerive | Syscall::NameFind | Syscall::NamesScope | Syscall::PhysDerive) => Got::Other,
            Some(Syscall::ProcessCreate) => {
                // An empty process outlives its creator: end it now.
                // SAFETY: ProcessKill of another process touches no memory of ours.
                let _ = runtime::sys::calls::PROCESS_KILL.call(token, NoArgs {});
                return;
            }
            _ => return,
        };
        if self.pool.iter().any(|&(t, _)| t == token) {
            // `NameFind` hands out the token we already hold.
        } else if self.pool.len() < POOL || matches!(got, Got::Dma | Got::Irq) {
            // (DMA regions and vectors are few: `MAX_DMA`, `MAX_IRQ` bound them.)
            self.pool.push((token, got));
        } else if got == Got::Channel {
            // SAFETY: destroying a channel touches no memory of ours.
            let _ = runtime::sys::calls::CHANNEL_DESTROY.call(token, NoArgs {});
        }
    }
}

/// `Reply` registers: `result` and `len` bytes at `buf`, no capability.
fn reply(result: u64, buf: u64, len: u64) -> [u64; 5] {
    ReplyArgs { result, buf, reply_len: len, cap: 0, rights: abi::RightsMask::NONE }.to_regs()
}
