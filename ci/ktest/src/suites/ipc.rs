//! Message passing: data both ways, lending, ordering, limits, timeouts,
//! destruction and death, names, pipelines, priority inheritance,
//! monitoring.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use abi::call::REG_MESSAGE;
use abi::limits::{CHANNELS_PER_PROCESS, CHANNEL_QUEUE_DEPTH};
use abi::{Error, FOREVER};
use runtime::ipc::{debug, Channel, Page, Window};
use runtime::process::{spawn_thread, Exit};
use runtime::time::{sleep_ms, uptime_ms};

use crate::child::tag;
use crate::ensure;
use crate::harness::{channel_id, expect_err, expect_exit, serve, serve_with, spawn, wait_until, Context, Outcome, Suite, CHAN, NEXT};

pub fn run() -> i32 {
    let mut s = Suite::new("ipc");
    s.case("round trip with 64 bytes of data both ways", round_trip);
    s.case("steady state: 200 calls at each size 0..4096 (in registers up to 64, copied and lent), every byte checked both ways", steady_state);
    s.case("message registers: exactly the message's bytes arrive (the rest zero), the caller's own words after an error", message_registers);
    s.case("registers after a call (fast and general path): results, own callee-saved, the rest zero", registers_after_call);
    s.case("the fast path refuses a token it looked up before once it is dropped, or its channel destroyed and the slot reused", stale_lookups);
    s.case("tag-only message", tag_only);
    s.case("4 KiB page-aligned message is lent, not copied", lent_page);
    s.case("receiver faults touching a lent page after reply", lent_page_revoked);
    s.case("unaligned data takes the copy path both ways", copy_path);
    s.case("a read-only send is copied and never written back", read_only_send);
    s.case("a held request is answered with the bytes named, never the next client's", held_request);
    s.case("messages over 4 KiB are refused", too_large);
    s.case("senders are served in FIFO order", fifo_senders);
    s.case("waiting receivers take turns", round_robin_receivers);
    s.case("send and receive timeouts", timeouts);
    s.case("queue depth limit gives QueueFull, destroy releases the queue", queue_limit);
    s.case("per-process channel limit gives LimitReached", channel_limit);
    s.case("destroying a channel releases waiting receivers", destroy_releases_receivers);
    s.case("owner death releases queued (Closed) and in-flight (PeerDied) senders", owner_death);
    s.case("pipeline: client calls A, B, C in turn", pipeline);
    s.case("pipeline: client -> A -> B -> C -> client, each server calling the next", pipeline_chained);
    s.case("delegation: a reply carries a channel served for this client alone", delegation_by_reply);
    s.case("priority inheritance: server runs at its client's priority", inheritance_visible);
    s.case("priority inheritance: boosted server beats a medium-priority hog", inheritance_beats_hog);
    s.case("monitoring: statistics, channel list, totals, trace switch", monitoring);
    s.finish()
}

fn stop(served: crate::harness::Served) -> Outcome {
    served.chan.send(tag::EXIT, &[]).ctx("exit message")?;
    expect_exit(&served.child, Exit::Code(0), "server")
}

fn round_trip() -> Outcome {
    let sv = serve("server", &[])?;
    let mut buf: [u8; 64] = core::array::from_fn(|i| i as u8 * 3);
    let sum: u64 = buf.iter().map(|&b| b as u64).sum();
    let r = sv.chan.call(tag::ECHO, &mut buf, 64).ctx("call")?;
    ensure!(r.len == 64, "reply length {}, expected 64", r.len);
    let r = r.result;
    ensure!(r == sum, "server saw sum {r}, sent {sum}");
    ensure!(buf.iter().enumerate().all(|(i, &b)| b == !(i as u8 * 3)), "reply data wrong: {:?}", &buf[..8]);
    stop(sv)
}

/// A checked 64-byte `BUMP` call in registers (`hint-server`'s protocol):
/// the reply must be every byte plus one and the result `n + 1`.
fn bump_words(chan: &Channel, n: u64) -> Result<(), Error> {
    let mut buf = [0u8; 64];
    crate::child::seq::put(&mut buf, n);
    let r = chan.call_words(tag::BUMP | n << 8, &mut buf, 64)?;
    if r.result == n + 1 && r.len == 64 && crate::child::seq::holds(&buf, n + 1) {
        Ok(())
    } else {
        Err(Error::InvalidArgument)
    }
}

/// The fast path keeps each thread's last channel lookup
/// (`kernel::cap::hint`); nothing that happens to the token or its channel
/// afterwards may let it answer wrongly. Each stale call goes to a server
/// already waiting in `ReplyWait`, the case where the fast path would
/// deliver it, and between the lookup and the stale call only the event
/// under test happens (no process ends, no other token goes).
fn stale_lookups() -> Outcome {
    let owner = Channel::create().ctx("channel")?;
    let server = spawn("hint-server", &[], &[(CHAN, owner.token(), abi::ChannelRights::SEND.into())], 16)?;
    let mut w = Window::new().ctx("window")?;
    // Answer the server's question with `token` of ours (0: stop).
    let mut hand = |token: u64| -> Outcome {
        let ask = owner.receive(&mut w, 30 * 1_000_000_000).ctx("the server's question")?.hold();
        let theirs = if token == 0 { 0 } else { server.grant(token, abi::ChannelRights::RECEIVE).ctx("grant")? };
        ask.reply(theirs, &[]).ctx("answer")?;
        // Let it reach its wait.
        sleep_ms(10).ctx("sleep")
    };
    let x = Channel::create().ctx("channel x")?;
    hand(x.token())?;

    // A token dropped after the lookup.
    let copy = runtime::caps::derive(x.token(), abi::ChannelRights::SEND).ctx("derive")?;
    let via_copy = Channel::from_token(copy);
    for n in 0..5 {
        bump_words(&via_copy, n).ctx("call with the copy")?;
    }
    runtime::caps::drop_cap(copy).ctx("drop the copy")?;
    let dropped = bump_words(&via_copy, 5);

    // A channel destroyed after the lookup, and a new one in its slot with
    // the server waiting on it.
    for n in 0..5 {
        bump_words(&x, n).ctx("call x")?;
    }
    let stale = Channel::from_token(x.token());
    x.destroy().ctx("destroy x")?;
    let y = Channel::create().ctx("channel y")?;
    hand(y.token())?;
    let destroyed = bump_words(&stale, 5);
    for n in 0..5 {
        bump_words(&y, n).ctx("call y")?;
    }
    y.destroy().ctx("destroy y")?;
    hand(0)?;
    expect_exit(&server, Exit::Code(0), "the server")?;
    owner.destroy().ctx("destroy the owner's channel")?;
    // (Destroying a channel drops the destroyer's token, and every channel
    // freed goes with its owner's or that token.)
    ensure!(
        dropped == Err(Error::Incapable) && destroyed == Err(Error::Incapable),
        "a call with the dropped copy got {dropped:?}, one with the destroyed channel's token (a new channel in its slot) {destroyed:?}; both must be Incapable"
    );
    Ok(())
}

/// Many calls to a server that is already waiting, the case both fast
/// paths (`Send` to a waiting receiver, `ReplyRecv` with nobody queued)
/// take, at every size the benchmark sweeps. The request changes every
/// call, so a copy skipped or cut short shows as a stale or wrong byte: the
/// server answers the FNV-1a hash of what it got and sends back every byte
/// plus one, and both are checked in full.
fn steady_state() -> Outcome {
    let sv = serve("server", &[])?;
    let mut v = vec![0u8; 8192];
    let mut page = Box::new(Page::zeroed());
    let sizes = [0, 8, 64, 256, 1024, 2048, 4095, 4096].map(|s| (s, false, false));
    // Up to 64 bytes in registers (`Call`/`ReplyWait`, from buffers of
    // the message's size and so through the staging copy, or of 64 bytes
    // straight), and the same sizes from memory (`Send`/`ReplyRecv`).
    let in_regs = [0, 8, 13, 64].map(|s| (s, false, true));
    for (size, lent, regs) in in_regs.into_iter().chain(sizes).chain([(4096, true, false)]) {
        let buf = if lent { &mut page.0[..] } else { &mut v[8..8 + size] };
        let before = debug::totals().ctx("totals")?;
        for i in 0..200u32 {
            buf.iter_mut().enumerate().for_each(|(j, b)| *b = (j as u32).wrapping_mul(7).wrapping_add(i * 13) as u8);
            let hash = crate::child::fnv1a(buf);
            let r = if regs {
                sv.chan.call_words(tag::SWEEP, buf, size)
            } else if size > REG_MESSAGE {
                sv.chan.call(tag::SWEEP, buf, size)
            } else {
                // SAFETY: `buf` is borrowed mutably for the whole call.
                unsafe { sv.chan.send_raw(tag::SWEEP, buf.as_mut_ptr(), size, FOREVER, abi::SendFlags::empty()) }
            };
            let r = r.map_err(|e| alloc::format!("{size}-byte call {i} (registers: {regs}): {e:?}"))?;
            let what = if lent { "lent" } else if regs { "in registers" } else { "copied" };
            ensure!(r.result == hash, "{size} bytes {what}, call {i}: the server got other bytes (hash {:#x}, sent {hash:#x})", r.result);
            ensure!(r.len == size, "{size} bytes {what}, call {i}: {} bytes came back", r.len);
            let bad = buf.iter().enumerate().position(|(j, &b)| b != (j as u32).wrapping_mul(7).wrapping_add(i * 13).wrapping_add(1) as u8);
            ensure!(bad.is_none(), "{size} bytes {what}, call {i}: reply byte {} wrong", bad.unwrap_or(0));
        }
        // The server is waiting at every call and nobody else is queued:
        // the entry stub must have taken both fast paths nearly every time
        // (a tick may send the odd call the general way), and the
        // assembly one every case it takes: all but a copy from a buffer
        // that crosses a page (4095 and 4096 bytes at `v[8..]`).
        let after = debug::totals().ctx("totals")?;
        let (sends, replies) = (after.general_sends - before.general_sends, after.general_replies - before.general_replies);
        ensure!(sends <= 50 && replies <= 50, "{size} bytes (registers: {regs}): {sends} Sends and {replies} ReplyRecvs of 200 took the general path");
        let declined = after.declined - before.declined;
        let crosses = !lent && size > 4096 - 8;
        ensure!(crosses || declined <= 50, "{size} bytes {}: the assembly fast path declined {declined} of the 400 calls", if lent { "lent" } else if regs { "in registers" } else { "copied" });
    }
    stop(sv)
}

/// Every register but `rcx`/`r11` (which `syscall` takes) set to a pattern;
/// the raw `Send` saves them all after it returns: `[rbx, rbp, r12, r13,
/// r14, r15, rax, rdi, rsi, rdx, r10, r8, r9, rcx, r11]`.
#[inline(never)]
fn raw_send(token: u64, tag: u64, buf: &mut [u8; 64]) -> [u64; 15] {
    const P: u64 = 0x5a5a_0000_0000_0000;
    let mut r = [P | 1, P | 2, P | 12, P | 13, P | 14, P | 15, abi::Syscall::Send as u64, token, tag, 64, buf.as_mut_ptr() as u64, FOREVER, 0, 0, 0];
    // SAFETY: the call borrows `buf` mutably throughout; the registers the
    // asm loads are restored (rbx, rbp) or declared clobbered, and the
    // stack is back where it was at the end.
    unsafe {
        core::arch::asm!(
            "push rbx", "push rbp", "push r11",
            "mov rbx, [r11]", "mov rbp, [r11 + 8]", "mov r12, [r11 + 16]", "mov r13, [r11 + 24]",
            "mov r14, [r11 + 32]", "mov r15, [r11 + 40]", "mov rax, [r11 + 48]", "mov rdi, [r11 + 56]",
            "mov rsi, [r11 + 64]", "mov rdx, [r11 + 72]", "mov r10, [r11 + 80]", "mov r8, [r11 + 88]",
            "mov r9, [r11 + 96]",
            "syscall",
            "xchg r11, [rsp]",
            "mov [r11], rbx", "mov [r11 + 8], rbp", "mov [r11 + 16], r12", "mov [r11 + 24], r13",
            "mov [r11 + 32], r14", "mov [r11 + 40], r15", "mov [r11 + 48], rax", "mov [r11 + 56], rdi",
            "mov [r11 + 64], rsi", "mov [r11 + 72], rdx", "mov [r11 + 80], r10", "mov [r11 + 88], r8",
            "mov [r11 + 96], r9", "mov [r11 + 104], rcx",
            "pop rcx", "mov [r11 + 112], rcx",
            "pop rbp", "pop rbx",
            inout("r11") r.as_mut_ptr() => _,
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r12") _, out("r13") _, out("r14") _, out("r15") _,
        );
    }
    r
}

/// No kernel value reaches a program through a register: after a `Send`
/// that another thread answers (through the fast path, and with tracing
/// on, which the fast path leaves to the general one), the callee-saved
/// registers are the caller's own, the results are the server's (status,
/// result, capability 0, reply length, 0), `rdi` and `r10` are zero, `rcx`
/// is the return address and `r11` the program's flags.
fn registers_after_call() -> Outcome {
    let sv = serve("server", &[])?;
    // A first call, so that the server waits when the checked ones come.
    sv.chan.call(tag::ECHO, &mut [0; 8], 8).ctx("first call")?;
    for traced in [false, true] {
        let mut buf: [u8; 64] = core::array::from_fn(|i| i as u8 * 5);
        let sum: u64 = buf.iter().map(|&b| b as u64).sum();
        let general = debug::totals().ctx("totals")?.general_sends;
        if traced {
            debug::trace(true).ctx("trace on")?;
        }
        let r = raw_send(sv.chan.token(), tag::ECHO, &mut buf);
        if traced {
            debug::trace(false).ctx("trace off")?;
        }
        let path = if debug::totals().ctx("totals")?.general_sends == general { "fast" } else { "general" };
        ensure!(path == if traced { "general" } else { "fast" }, "the call took the {path} path (traced: {traced})");
        const P: u64 = 0x5a5a_0000_0000_0000;
        let own = [P | 1, P | 2, P | 12, P | 13, P | 14, P | 15];
        ensure!(r[..6] == own, "{path} path: callee-saved registers changed: {:#x?}", &r[..6]);
        let results = [0, 0, sum, 0, 0, 64, 0];
        ensure!(r[6..13] == results, "{path} path: rax, rdi, rsi, rdx, r10, r8, r9 = {:#x?}, expected {results:#x?}", &r[6..13]);
        let at = raw_send as *const () as u64;
        ensure!((at..at + 512).contains(&r[13]), "{path} path: rcx {:#x} is not the return address in raw_send at {at:#x}", r[13]);
        ensure!(r[14] & 0x202 == 0x202 && r[14] >> 22 == 0, "{path} path: r11 {:#x} is no user rflags", r[14]);
        ensure!(buf.iter().enumerate().all(|(i, &b)| b == !(i as u8 * 5)), "{path} path: reply data wrong");
    }
    stop(sv)
}

/// A raw `Call` with every message word set: `[rax, rsi, rdx, r8, r9,
/// rdi, r10, rbx, rbp, r12, r13, r14, r15]` after it returns.
#[inline(never)]
fn raw_call(token: u64, tag: u64, size: u64, words: &[u64; 8]) -> [u64; 13] {
    let mut r = [0u64; 13];
    let args = [abi::Syscall::Call as u64, token, tag, size, FOREVER, words[0], words[1]];
    // SAFETY: rbx and rbp are saved and restored by hand, every other
    // register the block changes is declared; the stack is back where it
    // was at the end.
    unsafe {
        core::arch::asm!(
            "push rbx", "push rbp", "push r11",
            "mov rbx, [rcx + 16]", "mov rbp, [rcx + 24]", "mov r12, [rcx + 32]", "mov r13, [rcx + 40]",
            "mov r14, [rcx + 48]", "mov r15, [rcx + 56]",
            "mov rax, [rdx]", "mov rdi, [rdx + 8]", "mov rsi, [rdx + 16]", "mov r10, [rdx + 32]", "mov r8, [rdx + 40]",
            "mov r9, [rdx + 48]", "mov rdx, [rdx + 24]",
            "syscall",
            "pop r11",
            "mov [r11], rax", "mov [r11 + 8], rsi", "mov [r11 + 16], rdx", "mov [r11 + 24], r8", "mov [r11 + 32], r9",
            "mov [r11 + 40], rdi", "mov [r11 + 48], r10", "mov [r11 + 56], rbx", "mov [r11 + 64], rbp",
            "mov [r11 + 72], r12", "mov [r11 + 80], r13", "mov [r11 + 88], r14", "mov [r11 + 96], r15",
            "pop rbp", "pop rbx",
            in("rcx") words.as_ptr(), in("rdx") args.as_ptr(), in("r11") r.as_mut_ptr(),
            out("rax") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r12") _, out("r13") _, out("r14") _, out("r15") _,
        );
    }
    r
}

/// `Call` with junk in every message word past the size, to a server that
/// answers `ECHO` (the bytes inverted, their sum) from its window: the
/// words that come back carry exactly the reply, the rest zero (junk the
/// kernel let through either way would be back in them); an error returns
/// the caller's own words.
fn message_registers() -> Outcome {
    let sv = serve("server", &[])?;
    sv.chan.call(tag::ECHO, &mut [0; 8], 8).ctx("first call")?;
    let words: [u64; 8] = core::array::from_fn(|i| 0x0101_0101_0101_0101 * (i as u64 + 1));
    for size in [0u64, 1, 8, 13, 63, 64] {
        let r = raw_call(sv.chan.token(), tag::ECHO, size, &words);
        let sent = &abi::call::bytes_of(&words)[..size as usize];
        let sum: u64 = sent.iter().map(|&b| b as u64).sum();
        ensure!(r[..5] == [0, sum, 0, size, 0], "{size} bytes: rax, rsi, rdx, r8, r9 = {:#x?} (sum {sum:#x})", &r[..5]);
        let mut want = [0u8; 64];
        want[..size as usize].iter_mut().zip(sent).for_each(|(w, &b)| *w = !b);
        let got: [u64; 8] = r[5..].try_into().expect("8 words");
        ensure!(abi::call::bytes_of(&got) == want, "{size} bytes: reply words {got:#x?}");
    }
    // A bad size: refused, and the words are the caller's own.
    let r = raw_call(sv.chan.token(), tag::ECHO, 65, &words);
    ensure!(r[0] == abi::Error::TooLarge as u64 && r[5..] == words, "65 bytes: {r:#x?}");
    stop(sv)
}

fn tag_only() -> Outcome {
    let sv = serve("server", &[])?;
    let r = sv.chan.send(40, &[]).ctx("send")?;
    ensure!(r == 80, "result {r}");
    stop(sv)
}

fn pattern_page() -> Box<Page> {
    let mut p = Box::new(Page::zeroed());
    p.0.iter_mut().enumerate().for_each(|(i, b)| *b = (i as u8) ^ 0x5a);
    p
}

fn lent_page() -> Outcome {
    let sv = serve("server", &[])?;
    let mut page = pattern_page();
    ensure!((page.0.as_ptr() as usize).is_multiple_of(4096), "page not aligned");
    // The server checks the pattern and overwrites it in its window, and
    // replies with reply_len 0: only a shared page can carry its writes back.
    let ok = sv.chan.call(tag::PAGE, &mut page.0, 4096).ctx("call")?.result;
    ensure!(ok == 1, "server did not see our page");
    ensure!(page.0.iter().enumerate().all(|(i, &b)| b == (i as u8) ^ 0xa5), "server's writes not visible in our page");
    stop(sv)
}

pub(crate) fn lent_page_revoked() -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let child = spawn("lend-touch", &[], &[(CHAN, chan.token(), abi::ChannelRights::RECEIVE.into())], 8)?;
    let mut page = pattern_page();
    let ok = chan.call(tag::PAGE, &mut page.0, 4096).ctx("call")?.result;
    ensure!(ok == 1, "receiver did not see the page");
    expect_exit(&child, Exit::Fault(14), "receiver touching the window after reply")?;
    chan.destroy().ctx("destroy")
}

fn copy_path() -> Outcome {
    let sv = serve("server", &[])?;
    for (offset, len) in [(1usize, 100usize), (3, 4096), (4096 + 7, 2000)] {
        let mut v = vec![0u8; 8192 + 64];
        let buf = &mut v[offset..offset + len];
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = (i * 7) as u8);
        let sum: u64 = buf.iter().map(|&b| b as u64).sum();
        let r = sv.chan.call(tag::ECHO, buf, len).ctx("call")?;
        ensure!(r.len == len, "offset {offset} len {len}: reply length {}", r.len);
        let r = r.result;
        ensure!(r == sum, "offset {offset} len {len}: server saw {r}, sent {sum}");
        ensure!(buf.iter().enumerate().all(|(i, &b)| b == !((i * 7) as u8)), "offset {offset} len {len}: reply wrong");
    }
    stop(sv)
}

fn read_only_send() -> Outcome {
    let sv = serve("server", &[])?;
    // A page-aligned page sent with `send` (read-only): the server's writes
    // to its window must not reach us, and its reply data is dropped.
    let page = pattern_page();
    let ok = sv.chan.send(tag::PAGE, &page.0).ctx("send")?;
    ensure!(ok == 1, "server did not see the data");
    ensure!(page.0.iter().enumerate().all(|(i, &b)| b == (i as u8) ^ 0x5a), "a read-only buffer was written");
    let small = [5u8; 32];
    sv.chan.send(tag::ECHO, &small).ctx("echo")?;
    ensure!(small == [5u8; 32], "reply data written into a read-only buffer");
    stop(sv)
}

/// Two clients, one window: the server holds client 1's request, receives
/// client 2's, then answers both. Reply data for client 1 taken from the
/// window (now client 2's request) is refused before anything reaches
/// client 1; named from the server's own bytes, it is exactly those. Each
/// client checks result, reply length and data, and exits 0 if all match.
fn held_request() -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    // The channel goes whatever happens (its clients then get Closed).
    let outcome = held_request_on(&chan);
    let destroyed = chan.destroy().ctx("destroy");
    outcome.and(destroyed)
}

fn held_request_on(chan: &Channel) -> Outcome {
    let client = |id: &str| spawn("hold-client", &[id], &[(CHAN, chan.token(), abi::ChannelRights::SEND.into())], 8);
    let mut w = Window::new().ctx("window")?;
    let window = w.addr();
    let c1 = client("1")?;
    let m1 = chan.receive(&mut w, 5_000_000_000).ctx("receive 1")?;
    ensure!(m1.size == 64 && m1.data() == [1; 64], "request 1: {} bytes {:?}", m1.size, &m1.data()[..4]);
    let held = m1.hold();
    let cookie1 = held.cookie();
    let c2 = client("2")?;
    let mut m2 = chan.receive(&mut w, 5_000_000_000).ctx("receive 2")?;
    ensure!(m2.size == 64 && m2.data() == [2; 64], "request 2: {} bytes {:?}", m2.size, &m2.data()[..4]);
    let args = abi::call::ReplyRecvArgs { cookie: cookie1, result: 1, reply_len: 32, window, timeout: 0 };
    // SAFETY: the kernel only reads the window, and refuses.
    let from_window = unsafe { runtime::sys::calls::REPLY_RECV.call(chan.token(), args) };
    expect_err(from_window, Error::InvalidArgument, "ReplyRecv of the held request from the window")?;
    let args = abi::call::ReplyArgs { result: 1, buf: window, reply_len: 32, cap: 0, rights: abi::RightsMask::NONE };
    // SAFETY: as above.
    let named_window = unsafe { runtime::sys::calls::REPLY.call(cookie1, args) };
    expect_err(named_window, Error::InvalidArgument, "Reply of the held request from the window")?;
    held.reply(1, &[!1; 32]).ctx("reply to the held request")?;
    expect_exit(&c1, Exit::Code(0), "client 1 (0 = right result, length and data)")?;
    // Client 2's request is still the window's own: answered from there.
    m2.window()[..32].fill(!2);
    m2.reply(2, 32).ctx("reply 2")?;
    expect_exit(&c2, Exit::Code(0), "client 2 (0 = right result, length and data)")
}

fn too_large() -> Outcome {
    let sv = serve("server", &[])?;
    let v = vec![0u8; 5000];
    expect_err(sv.chan.send(tag::ECHO, &v[..4097]), Error::TooLarge, "4097 bytes")?;
    stop(sv)
}

// Shared state for the threads of the ordering tests.
static TOKEN: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const Z: AtomicU64 = AtomicU64::new(0);
static RESULTS: [AtomicU64; 64] = [Z; 64];
static LOG: [AtomicU64; 64] = [Z; 64];
static LOG_LEN: AtomicUsize = AtomicUsize::new(0);

const ERR: u64 = 1 << 63;

fn encode(r: Result<u64, Error>) -> u64 {
    match r {
        Ok(v) => v,
        Err(e) => ERR | e as u64,
    }
}

/// Thread: send tag `100 + i` on TOKEN, record the outcome in RESULTS[i].
fn sender(i: u64) {
    let r = Channel::from_token(TOKEN.load(Ordering::Acquire)).send(100 + i, &[]);
    RESULTS[i as usize].store(encode(r), Ordering::Release);
}

fn reset() {
    RESULTS.iter().for_each(|r| r.store(u64::MAX, Ordering::Relaxed));
    LOG.iter().for_each(|r| r.store(0, Ordering::Relaxed));
    LOG_LEN.store(0, Ordering::Relaxed);
}

fn stats(token: u64) -> abi::debug::ChannelStats {
    debug::channel_stats(channel_id(token)).unwrap_or_default()
}

fn fifo_senders() -> Outcome {
    reset();
    let chan = Channel::create().ctx("channel")?;
    TOKEN.store(chan.token(), Ordering::Release);
    const N: u64 = 8;
    for i in 0..N {
        spawn_thread(sender, i, 16).ctx("thread")?;
        wait_until("sender to queue", || stats(chan.token()).waiting_senders == i + 1)?;
    }
    let mut w = Window::new().ctx("window")?;
    for i in 0..N {
        let m = chan.receive(&mut w, FOREVER).ctx("receive")?;
        ensure!(m.tag == 100 + i, "message {i} has tag {}, expected {}", m.tag, 100 + i);
        m.reply(i, 0).ctx("reply")?;
    }
    wait_until("senders to finish", || (0..N as usize).all(|i| RESULTS[i].load(Ordering::Acquire) == i as u64))?;
    chan.destroy().ctx("destroy")
}

/// Thread: receive on TOKEN, log (receiver, tag), reply with the receiver
/// number; stop on tag 999.
fn receiver(r: u64) {
    let chan = Channel::from_token(TOKEN.load(Ordering::Acquire));
    let Ok(mut w) = Window::new() else { return };
    let mut answer = None;
    while let Ok(m) = chan.reply_recv(answer.take(), &mut w, FOREVER) {
        if m.tag == 999 {
            let _ = m.reply(r, 0);
            return;
        }
        let n = LOG_LEN.fetch_add(1, Ordering::AcqRel);
        LOG[n].store(r << 8 | m.tag, Ordering::Release);
        answer = Some(m.answer(r, 0));
    }
}

fn round_robin_receivers() -> Outcome {
    reset();
    let chan = Channel::create().ctx("channel")?;
    TOKEN.store(chan.token(), Ordering::Release);
    for r in 0..3 {
        spawn_thread(receiver, r, 16).ctx("thread")?;
        wait_until("receiver to wait", || stats(chan.token()).waiting_receivers == r + 1)?;
    }
    for t in 0..6u64 {
        let who = chan.send(t, &[]).ctx("send")?;
        ensure!(who == t % 3, "message {t} went to receiver {who}, expected {}", t % 3);
    }
    for _ in 0..3 {
        chan.send(999, &[]).ctx("stop")?;
    }
    let log: Vec<u64> = (0..6).map(|i| LOG[i].load(Ordering::Acquire)).collect();
    ensure!(log.iter().enumerate().all(|(t, &e)| e == ((t as u64 % 3) << 8 | t as u64)), "log {log:x?}");
    chan.destroy().ctx("destroy")
}

fn timeouts() -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let mut w = Window::new().ctx("window")?;
    let t0 = uptime_ms();
    expect_err(chan.receive(&mut w, 20_000_000), Error::Timeout, "receive 20 ms")?;
    let dt = uptime_ms() - t0;
    // Not before the timeout; the upper bound only catches a hang.
    ensure!((20..2000).contains(&dt), "receive timed out after {dt} ms");
    let t0 = uptime_ms();
    expect_err(chan.send_timeout(1, &[], 30_000_000), Error::Timeout, "send 30 ms")?;
    let dt = uptime_ms() - t0;
    ensure!((30..2000).contains(&dt), "send timed out after {dt} ms");
    let t0 = uptime_ms();
    expect_err(chan.receive(&mut w, 0), Error::Timeout, "receive poll")?;
    expect_err(chan.send_timeout(1, &[], 0), Error::Timeout, "send poll")?;
    ensure!(uptime_ms() - t0 < 20, "polls blocked");
    chan.destroy().ctx("destroy")
}

fn queue_limit() -> Outcome {
    reset();
    let chan = Channel::create().ctx("channel")?;
    TOKEN.store(chan.token(), Ordering::Release);
    let depth = CHANNEL_QUEUE_DEPTH as u64;
    for i in 0..depth {
        spawn_thread(sender, i, 16).ctx("thread")?;
    }
    wait_until("the queue to fill", || stats(chan.token()).waiting_senders == depth)?;
    expect_err(chan.send(1, &[]), Error::QueueFull, "one sender too many")?;
    let peak = stats(chan.token()).peak_depth;
    ensure!(peak == depth, "peak depth {peak}");
    chan.destroy().ctx("destroy")?;
    wait_until("senders to be released", || (0..depth as usize).all(|i| RESULTS[i].load(Ordering::Acquire) != u64::MAX))?;
    for (i, r) in RESULTS.iter().take(depth as usize).enumerate() {
        let r = r.load(Ordering::Acquire);
        ensure!(r == ERR | Error::Closed as u64, "sender {i} got {r:#x}");
    }
    Ok(())
}

fn channel_limit() -> Outcome {
    let mut made = Vec::new();
    let err = loop {
        match Channel::create() {
            Ok(c) => made.push(c),
            Err(e) => break e,
        }
        ensure!(made.len() <= CHANNELS_PER_PROCESS, "more than {CHANNELS_PER_PROCESS} channels");
    };
    ensure!(err == Error::LimitReached, "creation failed with {err:?}");
    let total = made.len();
    for c in made {
        c.destroy().ctx("destroy")?;
    }
    // Every earlier case destroyed its channels, so the whole quota is ours.
    ensure!(total == CHANNELS_PER_PROCESS, "{total} channels before the limit");
    let again = Channel::create().ctx("create after freeing")?;
    again.destroy().ctx("destroy")
}

/// Thread: receive on TOKEN once, record the outcome.
fn lone_receiver(i: u64) {
    let chan = Channel::from_token(TOKEN.load(Ordering::Acquire));
    let r = match Window::new() {
        Ok(mut w) => chan.receive(&mut w, FOREVER).map(|m| m.tag),
        Err(e) => Err(e),
    };
    RESULTS[i as usize].store(encode(r), Ordering::Release);
}

fn destroy_releases_receivers() -> Outcome {
    reset();
    let chan = Channel::create().ctx("channel")?;
    TOKEN.store(chan.token(), Ordering::Release);
    for i in 0..3 {
        spawn_thread(lone_receiver, i, 16).ctx("thread")?;
    }
    wait_until("receivers to wait", || stats(chan.token()).waiting_receivers == 3)?;
    let token = chan.token();
    chan.destroy().ctx("destroy")?;
    wait_until("receivers to be released", || (0..3).all(|i| RESULTS[i].load(Ordering::Acquire) != u64::MAX))?;
    for (i, r) in RESULTS.iter().take(3).enumerate() {
        let r = r.load(Ordering::Acquire);
        ensure!(r == ERR | Error::Closed as u64, "receiver {i} got {r:#x}");
    }
    // The destroyed channel's token is now stale.
    expect_err(Channel::from_token(token).send(1, &[]), Error::Incapable, "stale token")
}

fn owner_death() -> Outcome {
    reset();
    let ours = Channel::create().ctx("channel")?;
    let child = spawn("owner", &[], &[(CHAN, ours.token(), abi::ChannelRights::SEND.into())], 8)?;
    let mut w = Window::new().ctx("window")?;
    let m = ours.receive(&mut w, 5_000_000_000).ctx("the owner's capability")?;
    let cap = m.cap;
    ensure!(cap != 0, "no capability came with the message");
    m.reply(0, 0).ctx("reply")?;
    TOKEN.store(cap, Ordering::Release);
    spawn_thread(sender, 0, 16).ctx("thread")?;
    wait_until("a request in flight", || stats(cap).in_flight == 1)?;
    spawn_thread(sender, 1, 16).ctx("thread")?;
    wait_until("a request queued", || stats(cap).waiting_senders == 1)?;
    child.kill().ctx("kill")?;
    wait_until("senders released", || RESULTS[0].load(Ordering::Acquire) != u64::MAX && RESULTS[1].load(Ordering::Acquire) != u64::MAX)?;
    let (a, b) = (RESULTS[0].load(Ordering::Acquire), RESULTS[1].load(Ordering::Acquire));
    ensure!(a == ERR | Error::PeerDied as u64, "in-flight sender got {a:#x}");
    ensure!(b == ERR | Error::Closed as u64, "queued sender got {b:#x}");
    expect_exit(&child, Exit::Killed, "owner")?;
    ours.destroy().ctx("destroy")
}

fn pipeline() -> Outcome {
    let a = serve("server", &["add1"])?;
    let b = serve("server", &["mul3"])?;
    let c = serve("server", &["sub5"])?;
    let mut buf = 10u64.to_le_bytes();
    let r1 = a.chan.call(tag::STEP, &mut buf, 8).ctx("A")?.result;
    let r2 = b.chan.call(tag::STEP, &mut buf, 8).ctx("B")?.result;
    let r3 = c.chan.call(tag::STEP, &mut buf, 8).ctx("C")?.result;
    ensure!((r1, r2, r3) == (11, 33, 28), "results {r1}, {r2}, {r3}");
    ensure!(u64::from_le_bytes(buf) == 28, "data {}", u64::from_le_bytes(buf));
    stop(a)?;
    stop(b)?;
    stop(c)
}

fn pipeline_chained() -> Outcome {
    let c = serve("server", &["sub5"])?;
    let b = serve_with("server", &["mul3"], &[(NEXT, c.chan.token(), abi::ChannelRights::SEND.into())])?;
    let a = serve_with("server", &["add1"], &[(NEXT, b.chan.token(), abi::ChannelRights::SEND.into())])?;
    let mut buf = 10u64.to_le_bytes();
    let r = a.chan.call(tag::STEP, &mut buf, 8).ctx("A")?.result;
    ensure!(r == 28, "result {r:#x}, expected (10 + 1) * 3 - 5 = 28");
    ensure!(u64::from_le_bytes(buf) == 28, "data {}", u64::from_le_bytes(buf));
    // Each hop was a send, a receive and a reply on its own channel.
    for (name, sv) in [("A", &a), ("B", &b), ("C", &c)] {
        let st = stats(sv.chan.token());
        ensure!(st.sends == 1 && st.replies == 1, "{name}: {} sends, {} replies", st.sends, st.replies);
    }
    stop(a)?;
    stop(b)?;
    stop(c)
}

fn delegation_by_reply() -> Outcome {
    let sv = serve("server", &[])?;
    let runtime::ipc::Reply { result: r, cap, .. } = sv.chan.send_get_cap(tag::OPEN, &[]).ctx("open")?;
    ensure!(r == 0 && cap != 0, "open gave result {r}, capability {cap:#x}");
    let (kind, got, _, _) = runtime::caps::inspect(cap).ctx("inspect")?;
    ensure!(kind == abi::CapKind::Channel && got == abi::ChannelRights::SEND.bits(), "got {kind:?} with rights {got:#x}");
    let own = Channel::from_token(cap);
    let mut w = Window::new().ctx("window")?;
    expect_err(own.receive(&mut w, 0), Error::Incapable, "receive on the delegated channel")?;
    // The server now answers on the new channel only, in its own way.
    let r = own.send(5, &[]).ctx("send on the delegated channel")?;
    ensure!(r == 15, "result {r}, expected 5 * 3");
    own.send(tag::EXIT, &[]).ctx("exit")?;
    expect_exit(&sv.child, Exit::Code(0), "server")
}

/// Thread: send PRIO on TOKEN and record the answer.
fn prio_client(i: u64) {
    let r = Channel::from_token(TOKEN.load(Ordering::Acquire)).send(tag::PRIO, &[]);
    RESULTS[i as usize].store(encode(r), Ordering::Release);
}

fn inheritance_visible() -> Outcome {
    reset();
    let chan = Channel::create().ctx("channel")?;
    let child = spawn("server", &[], &[(CHAN, chan.token(), abi::ChannelRights::RECEIVE.into())], 4)?;
    let mine = runtime::time::priority().ctx("priority")?.1 as u64;
    let r = chan.send(tag::PRIO, &[]).ctx("send")?;
    ensure!(r == (4 << 8 | mine), "server reported base {} effective {} while serving priority {mine}", r >> 8, r & 0xff);
    // A client at the server's own priority: the boost must be gone.
    TOKEN.store(chan.token(), Ordering::Release);
    spawn_thread(prio_client, 0, 4).ctx("thread")?;
    wait_until("low client", || RESULTS[0].load(Ordering::Acquire) != u64::MAX)?;
    let r = RESULTS[0].load(Ordering::Acquire);
    ensure!(r == (4 << 8 | 4), "after the reply the server still ran at {}", r & 0xff);
    chan.send(tag::EXIT, &[]).ctx("exit")?;
    expect_exit(&child, Exit::Code(0), "server")?;
    chan.destroy().ctx("destroy")
}

static HOG_STOP: AtomicBool = AtomicBool::new(false);
static HOG_DONE: AtomicBool = AtomicBool::new(false);

/// Thread: spin (without yielding) for up to `ms`, or until told to stop.
fn hog(ms: u64) {
    let until = uptime_ms() + ms;
    while !HOG_STOP.load(Ordering::Acquire) && uptime_ms() < until {
        core::hint::spin_loop();
    }
    HOG_DONE.store(true, Ordering::Release);
}

/// Thread: serve one message on TOKEN.
fn one_shot_server(_: u64) {
    let chan = Channel::from_token(TOKEN.load(Ordering::Acquire));
    if let Ok(mut w) = Window::new() {
        if let Ok(m) = chan.receive(&mut w, FOREVER) {
            let _ = m.reply(7, 0);
        }
    }
}

fn inheritance_beats_hog() -> Outcome {
    HOG_STOP.store(false, Ordering::Release);
    HOG_DONE.store(false, Ordering::Release);
    let chan = Channel::create().ctx("channel")?;
    TOKEN.store(chan.token(), Ordering::Release);
    spawn_thread(one_shot_server, 0, 4).ctx("server thread")?;
    // A low-priority thread only runs while we sleep.
    let start = uptime_ms();
    while stats(chan.token()).waiting_receivers != 1 {
        ensure!(uptime_ms() - start < 2000, "server thread never waited");
        sleep_ms(1).ctx("sleep")?;
    }
    spawn_thread(hog, 1000, 8).ctx("hog thread")?;
    sleep_ms(2).ctx("let the hog start")?;
    // We (priority 16) call the priority-4 server while the priority-8 hog
    // wants the CPU: only inheritance lets the server run before the hog ends.
    let r = chan.send(1, &[]).ctx("send")?;
    let hog_finished_first = HOG_DONE.load(Ordering::Acquire);
    HOG_STOP.store(true, Ordering::Release);
    wait_until("hog to stop", || HOG_DONE.load(Ordering::Acquire))?;
    ensure!(r == 7, "result {r}");
    ensure!(!hog_finished_first, "the reply came only after the hog finished: no inheritance");
    chan.destroy().ctx("destroy")
}

fn monitoring() -> Outcome {
    let sv = serve("server", &[])?;
    let id = channel_id(sv.chan.token());
    let before = debug::channel_stats(id).ctx("stats")?;
    let mut buf = [7u8; 64];
    for _ in 0..5 {
        sv.chan.call(tag::ECHO, &mut buf, 64).ctx("call")?;
    }
    let after = debug::channel_stats(id).ctx("stats")?;
    ensure!(after.sends - before.sends == 5, "sends {} -> {}", before.sends, after.sends);
    ensure!(after.receives - before.receives == 5, "receives {} -> {}", before.receives, after.receives);
    ensure!(after.replies - before.replies == 5, "replies {} -> {}", before.replies, after.replies);
    ensure!(after.in_flight == 0 && after.waiting_senders == 0, "{after:?}");
    let mut ids = [0u64; 256];
    let (total, written) = debug::list_channels(&mut ids).ctx("list")?;
    ensure!(total >= 1 && ids[..written].contains(&id), "channel {id:#x} not listed ({total} channels)");
    let t = debug::totals().ctx("totals")?;
    ensure!(t.bytes_per_channel <= 128 && t.bytes_per_message <= 64, "{t:?}");
    ensure!(t.channels >= 1 && t.bytes_in_use >= t.channels * t.bytes_per_channel, "{t:?}");
    debug::trace(true).ctx("trace on")?;
    sv.chan.send(2, &[]).ctx("traced send")?;
    debug::trace(false).ctx("trace off")?;
    stop(sv)
}
