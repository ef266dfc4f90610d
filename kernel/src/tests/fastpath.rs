//! The IPC fast path against the general path alone.
//!
//! `ipc::fast` promises to do exactly what the general path would, or
//! nothing. Two worlds built the same way run the same random sequence of
//! sends, receives, replies and ticks; one takes the fast path where it
//! can, the other never does ([`World::general_only`]). After every step
//! both must show the same kernel state (threads, messages, queues,
//! channels, counters, frames) and the same bytes and mappings in user
//! memory, and the fast path must really have run.

use super::*;
use abi::call::REG_MESSAGE;
use std::string::String;

/// Message sizes the benchmark sweeps (4096 from an aligned buffer is lent).
const SIZES: [u64; 8] = [0, 8, 64, 256, 1024, 2048, 4095, 4096];

/// Servers, clients and the channel between them.
struct Cast {
    procs: [usize; 3],
    servers: [Tid; 2],
    clients: [Tid; 3],
    chan: u64,
    sends: [u64; 3],
}

fn cast(w: &mut World) -> Cast {
    let sp = w.spawn("server");
    let cp1 = w.spawn("client1");
    let cp2 = w.spawn("client2");
    let s1 = w.thread(sp, 5);
    let s2 = w.thread(sp, 5);
    let c1 = w.thread(cp1, 5);
    let c2 = w.thread(cp2, 5);
    // A less urgent client: the fast path must step aside when its reply
    // would run it ahead of a more urgent ready thread.
    let c3 = w.thread(cp1, 4);
    let chan = w.channel(s1);
    let send1 = w.give(sp, chan, cp1, abi::ChannelRights::SEND);
    let send2 = w.give(sp, chan, cp2, abi::ChannelRights::SEND);
    Cast { procs: [sp, cp1, cp2], servers: [s1, s2], clients: [c1, c2, c3], chan, sends: [send1, send2, send1] }
}

/// Everything the fast path could change, as text.
fn digest(w: &mut World, cast: &Cast) -> String {
    use std::fmt::Write;
    let k = &w.k;
    let mut d = String::new();
    // (The general-path counters differ by design: checked apart.)
    let (i, f) = (&k.ipc, w.free());
    let _ = writeln!(d, "current {} on behalf of {} now {} ipc {} {} {} free {f}", k.current, k.on_behalf, k.timers.now, i.in_flight, i.delivered, i.trace);
    let _ = writeln!(d, "unanswered {:?}", &k.unanswered[..8]);
    for t in cast.servers.iter().chain(&cast.clients).copied().chain([IDLE_THREAD]) {
        let th = &k.threads[t as usize];
        let _ = writeln!(
            d,
            "thread {t}: {:?} prio {}/{} links {} {} timer {} {} wait {} window {:#x} regs {} ret {:x?} words {:x?} slice {} msg {:?}",
            th.state, th.prio, th.base_prio, th.next, th.prev, th.timer_next, th.deadline, th.wait_obj, th.recv_buf, th.recv_regs, th.ret, th.visible_words(), th.slice, th.msg
        );
    }
    let _ = writeln!(d, "highest {:?} timers {}", k.sched.highest(), k.timers.first());
    let live: Vec<u16> = k.channels.live_indices().collect();
    for c in live {
        let _ = writeln!(d, "channel {c}: {:?}", w.k.channels.slot(c));
    }
    for &p in &cast.procs {
        for page in (0..BUF_PAGES).map(|i| BUF + i * PAGE).chain((0..WIN_PAGES).map(|i| WIN + i * PAGE)) {
            let bytes = w.try_read(p, page, PAGE as usize).map(|b| hash(&b));
            let _ = writeln!(d, "proc {p} page {page:#x}: frame {:?} flags {:?} bytes {bytes:?}", w.frame(p, page), w.flags(p, page));
        }
    }
    d
}

/// FNV-1a, to keep the digest short.
fn hash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| (h ^ x as u64).wrapping_mul(0x100_0000_01b3))
}

/// Write into user memory if it is there (a lent or hidden page may not be).
fn poke(w: &World, p: usize, va: u64, data: &[u8]) {
    let _ = user::write(&w.k.phys, &w.k.space(p), va, data, user::Access::Write);
}

/// One step, drawn from `rng`, for both worlds.
#[derive(Clone, Copy, Debug)]
enum Step {
    Tick(u64),
    /// Fill the caller's memory at `va` with bytes from `seed`, then make the call.
    Call { t: Tid, fill: (u64, u64, u8), nr: Syscall, args: [u64; 6] },
}

/// Messages the servers hold: (cookie, size, receiving server).
type Held = Vec<(u64, u64, Tid)>;

/// The next step, and the held message it answers (if any).
fn pick(rng: &mut Rng, w: &World, cast: &Cast, held: &mut Held) -> (Step, Option<usize>) {
    let ready: Vec<Tid> = cast.servers.iter().chain(&cast.clients).copied().filter(|&t| matches!(w.state(t), State::Runnable | State::Running)).collect();
    if ready.is_empty() || rng.chance(8) {
        return (Step::Tick(1 + rng.below(4)), None);
    }
    // Servers answer promptly (as they do), so that clients often find
    // one waiting: the fast path's case.
    let servers: Vec<Tid> = ready.iter().copied().filter(|t| cast.servers.contains(t)).collect();
    let t = if !servers.is_empty() && rng.chance(70) { rng.pick(&servers) } else { rng.pick(&ready) };
    let seed = rng.next() as u8;
    let timeout = if rng.chance(10) { 3 * MS } else { FOREVER };
    if let Some(i) = cast.servers.iter().position(|&s| s == t) {
        // A server that was waiting took a message: it holds it now.
        if let R::Ok([cookie, _, size, _]) = w.status(t) {
            if cookie & 1 << 63 != 0 && !held.iter().any(|h| h.0 == cookie) {
                // (The size without the `IN_REGISTERS`/`CALLED` bits.)
                held.push((cookie, size & 0xffff_ffff, t));
            }
        }
        let window = if rng.chance(30) { WIN } else { WIN + (1 + i as u64) * PAGE };
        // Usually the latest message this thread took; sometimes any held
        // one (a sibling's, or one displaced from its window).
        let mine = held.iter().rposition(|h| h.2 == t);
        let which = if held.is_empty() { None } else if rng.chance(80) && mine.is_some() { mine } else { Some(rng.below(held.len() as u64) as usize) };
        let (cookie, size) = match which {
            None => (0, 0),
            Some(j) if rng.chance(5) => (held[j].0 ^ 1 << 16, held[j].1), // stale
            Some(j) => (held[j].0, held[j].1),
        };
        let answers = which.filter(|&j| held[j].0 == cookie);
        let len = match rng.below(10) {
            0 => size + 1,
            1..=3 => size,
            _ => rng.below(size + 1),
        };
        let result = rng.next();
        // A server that will still hold messages after this one waits with
        // a timeout, so that it comes back to answer them.
        let timeout = if held.len() > answers.is_some() as usize || rng.chance(5) { 3 * MS } else { FOREVER };
        let step = match rng.below(20) {
            // The reply in registers (`ReplyWait`), now and then too long.
            5..=10 => {
                let len = if rng.chance(5) { 65 + rng.below(100) } else { len.min(REG_MESSAGE as u64) };
                // (It cannot wait a while: now and then it polls.)
                let poll = if rng.chance(3) { abi::call::POLL } else { 0 };
                Step::Call { t, fill: (0, 0, seed), nr: Syscall::ReplyWait, args: [cast.chan, cookie, result, window | len | poll, rng.next(), rng.next()] }
            }
            0 => return (Step::Call { t, fill: (0, 0, seed), nr: Syscall::Receive, args: [cast.chan, window, timeout, 0, 0, 0] }, None),
            1 => return (Step::Call { t, fill: (0, 0, seed), nr: Syscall::ReplyRecv, args: [cast.chan, 0, 0, 0, window, timeout] }, None),
            2..=4 if cookie != 0 => {
                let buf = BUF + rng.below(4) * PAGE + rng.below(64);
                Step::Call { t, fill: (buf, len, seed), nr: Syscall::Reply, args: [cookie, result, buf, len, 0, 0] }
            }
            _ => {
                // The server writes its answer into the window it got the request in.
                let at = w.th(t).recv_buf;
                Step::Call { t, fill: (at, len.min(PAGE), seed), nr: Syscall::ReplyRecv, args: [cast.chan, cookie, result, len, window, timeout] }
            }
        };
        return (step, answers);
    }
    let i = cast.clients.iter().position(|&c| c == t).unwrap();
    if rng.chance(40) {
        // A message in registers (`Call`), now and then too long.
        let size = if rng.chance(5) { 65 + rng.below(10) } else { rng.pick(&[0, 8, 13, 64]) };
        let args = [cast.sends[i], rng.next() & 0xffff, size, timeout, rng.next(), rng.next()];
        return (Step::Call { t, fill: (0, 0, seed), nr: Syscall::Call, args }, None);
    }
    let size = if rng.chance(10) { rng.below(4097) } else { rng.pick(&SIZES) };
    let buf = BUF + rng.below(BUF_PAGES - 2) * PAGE + if rng.chance(60) { 0 } else { 1 + rng.below(63) };
    let flags = if rng.chance(15) { abi::SendFlags::READ_ONLY.bits() } else { 0 };
    (Step::Call { t, fill: (buf, size, seed), nr: Syscall::Send, args: [cast.sends[i], rng.next() & 0xffff, size, buf, timeout, flags] }, None)
}

fn apply(w: &mut World, step: Step) -> R {
    match step {
        Step::Tick(n) => {
            w.tick(n);
            w.settle();
            R::Ok([0; 4])
        }
        Step::Call { t, fill: (va, len, seed), nr, args } => {
            if matches!(nr, Syscall::Call | Syscall::ReplyWait) {
                // Words 2-7, as the entry stub takes them from registers.
                let words = pattern(seed, 48);
                for (i, c) in words.chunks(8).enumerate() {
                    w.k.threads[t as usize].mr[2 + i] = u64::from_le_bytes(c.try_into().unwrap());
                }
            }
            if len > 0 {
                let p = w.k.proc_of(t);
                poke(w, p, va, &pattern(seed, len as usize));
            }
            w.sys(t, nr, args)
        }
    }
}

#[test]
fn fast_path_matches_the_general_path() {
    for seed in [1u64, 0xfeed, 0x5eed_1234] {
        let (mut fast, mut general) = (World::new(), World::new());
        general.general_only = true;
        let (a, b) = (cast(&mut fast), cast(&mut general));
        assert_eq!(digest(&mut fast, &a), digest(&mut general, &b), "the two worlds start apart");
        let mut rng = Rng(seed);
        let mut held = Held::new();
        let before = fast_taken();
        for n in 0..1500 {
            let (step, answers) = pick(&mut rng, &fast, &a, &mut held);
            let (ra, rb) = (apply(&mut fast, step), apply(&mut general, step));
            // An answer that went through (or a client that gave up) ends the hold.
            if let Some(j) = answers.filter(|_| !matches!(ra, R::Err(_))) {
                held.swap_remove(j);
            }
            assert_eq!(ra, rb, "seed {seed:#x} step {n} {step:?}: the caller saw different results");
            let (da, db) = (digest(&mut fast, &a), digest(&mut general, &b));
            if da != db {
                let diff: Vec<_> = da.lines().zip(db.lines()).filter(|(x, y)| x != y).collect();
                panic!("seed {seed:#x} step {n} {step:?}: the fast path left a different state:\n{diff:#?}");
            }
        }
        let taken = fast_taken() - before;
        std::eprintln!("seed {seed:#x}: {taken} of 1500 steps through the fast path");
        assert!(taken >= 200, "seed {seed:#x}: the fast path finished only {taken} calls");
        // The counters DebugIpc reports (the in-guest ipc suite reads them to
        // see the entry stub route to the fast path) miss exactly its hits.
        let (f, g) = (&fast.k.ipc, &general.k.ipc);
        assert!(g.general_sends > 0 && g.general_replies > 0, "seed {seed:#x}: {g:?}");
        assert_eq!(f.general_sends + f.general_replies + taken, g.general_sends + g.general_replies, "seed {seed:#x}: general-path counters");
    }
}

