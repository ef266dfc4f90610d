//! Hostile IPC: a client changing a request while the server holds it
//! (send isolation), forged message cookies, reply data from kernel memory.

use abi::Error;
use runtime::ipc::{Channel, Held, Window};
use runtime::process::{Exit, Process};

use crate::child::tag;
use crate::ensure;
use crate::harness::{expect_err, expect_exit, serve, spawn, Context, Outcome, Suite, CHAN};

pub fn cases(s: &mut Suite) {
    s.case("ipc: a sibling writing a page its thread lent faults, the process is killed", || on_channel(sibling_writes_lent_page));
    s.case("ipc: the same, lent to a server waiting in ReplyRecv (the assembly fast path)", || on_channel(sibling_writes_fast_lent_page));
    s.case("ipc: a cookie with junk in its unused bits is refused (Incapable)", || on_channel(junk_cookie));
    s.case("ipc: reply data named in kernel memory is refused (BadAddress)", || on_channel(kernel_reply_source));
    s.case("ipc: a lender killed while its page is held: the page stays the server's (same frame, same bytes), not freed under a device", || on_channel(lender_dies));
    s.case("ipc: a lender of a DMA page killed while it is held: the region lives on with the server (same frame), freed when the server lets go", || on_channel(dma_lender_dies));
}

/// Run `case` on a fresh channel, destroyed whatever happens (its clients
/// then get `Closed`), then check that the system goes on.
fn on_channel(case: fn(&Channel) -> Outcome) -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let outcome = case(&chan);
    let destroyed = chan.destroy().ctx("destroy");
    outcome?;
    destroyed?;
    system_goes_on()
}

const FIVE_S: u64 = 5_000_000_000;

/// A well-behaved child still spawns, maps memory (its window) and answers
/// an IPC call; so do we (map, call).
fn system_goes_on() -> Outcome {
    let va = runtime::mem::reserve(4096);
    runtime::mem::map_anon(va, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map")?;
    // SAFETY: the page was just mapped read-write for us alone.
    unsafe { core::ptr::write_volatile(va as *mut u64, 0x1234) };
    let sv = serve("server", &[])?;
    let mut buf = [7u8; 64];
    let r = sv.chan.call(tag::ECHO, &mut buf, 64).ctx("call after the hostile case")?;
    ensure!(r.len == 64 && buf == [!7; 64], "echo after the hostile case: len {}, {:?}", r.len, &buf[..4]);
    sv.chan.send(tag::EXIT, &[]).ctx("exit message")?;
    expect_exit(&sv.child, Exit::Code(0), "server after the hostile case")?;
    // SAFETY: our own mapping, unused from here on.
    unsafe { runtime::mem::unmap(va, 4096) }.ctx("unmap")
}

/// The `lend-sibling` child lends a page to us and its sibling thread then
/// writes it: that must fault (vector 14), while we hold the request.
fn sibling_writes_lent_page(chan: &Channel) -> Outcome {
    let child = spawn("lend-sibling", &[], &[(CHAN, chan.token(), abi::ChannelRights::SEND.into())], 8)?;
    let mut w = Window::new().ctx("window")?;
    let m = chan.receive(&mut w, FIVE_S).ctx("receive the lent page")?;
    let seen = m.size == 4096 && m.data().iter().enumerate().all(|(i, &b)| b == (i as u8) ^ 0x5a);
    let held = m.hold();
    expect_exit(&child, Exit::Fault(14), "lender (5: page reachable during the loan, 7: write went through)")?;
    ensure!(seen, "the lent request did not arrive intact");
    // The lender is gone: its cookie is stale, and the loan ended with it.
    expect_err(held.reply(0, &[]), Error::Incapable, "reply to the dead lender")?;
    expect_err(chan.receive(&mut w, 0).map(|_| ()), Error::Timeout, "the window after the lender died")
}

/// [`sibling_writes_lent_page`] through the fast path: `lend-sibling twice`
/// (at our priority) lends the page once, which we answer with `ReplyRecv`
/// waiting forever, so its second loan finds us parked there with every
/// lookup it needs cached, and its sibling thread then writes the page.
fn sibling_writes_fast_lent_page(chan: &Channel) -> Outcome {
    let child = spawn("lend-sibling", &["twice"], &[(CHAN, chan.token(), abi::ChannelRights::SEND.into())], 16)?;
    let mut w = Window::new().ctx("window")?;
    let m = chan.receive(&mut w, FIVE_S).ctx("receive the first loan")?;
    ensure!(m.size == 4096 && m.data().iter().enumerate().all(|(i, &b)| b == (i as u8) ^ 0x5a), "the first loan did not arrive intact");
    let cookie = m.hold().cookie();
    let args = abi::call::ReplyRecvArgs { cookie, result: 0, reply_len: 0, window: w.addr(), timeout: abi::FOREVER };
    // SAFETY: the kernel maps the second loan at our window, which nothing
    // else uses.
    let r = unsafe { runtime::sys::calls::REPLY_RECV.call(chan.token(), args) }.ctx("answer, receive the second loan")?;
    // SAFETY: the window holds the lent page until we answer (never).
    let page = unsafe { core::slice::from_raw_parts(w.addr() as *const u8, 4096) };
    let seen = r.size == 4096 && page.iter().enumerate().all(|(i, &b)| b == (i as u8) ^ 0x5a);
    expect_exit(&child, Exit::Fault(14), "lender (4: first loan failed, 5: page reachable during the loan, 7: write went through)")?;
    ensure!(seen, "the second loan did not arrive intact (size {})", r.size);
    Ok(())
}

/// A `hold-client` (id 3) whose request we hold; returns it and the message.
fn held_client(chan: &Channel, w: &mut Window) -> Result<(Process, Held), alloc::string::String> {
    let child = spawn("hold-client", &["3"], &[(CHAN, chan.token(), abi::ChannelRights::SEND.into())], 8)?;
    let m = chan.receive(w, FIVE_S).ctx("receive")?;
    ensure!(m.tag == tag::HOLD && m.size == 64, "request: tag {} size {}", m.tag, m.size);
    Ok((child, m.hold()))
}

/// `Reply` straight to the kernel: cookie, result, source, length.
fn raw_reply(cookie: u64, result: u64, src: u64, len: u64) -> Result<abi::call::NoResults, Error> {
    let args = abi::call::ReplyArgs { result, buf: src, reply_len: len, cap: 0, rights: abi::RightsMask::NONE };
    // SAFETY: the kernel only reads `src`, which is not our memory anyway.
    unsafe { runtime::sys::calls::REPLY.call(cookie, args) }
}

fn junk_cookie(chan: &Channel) -> Outcome {
    let mut w = Window::new().ctx("window")?;
    let (child, held) = held_client(chan, &mut w)?;
    let answer = [!3u8; 32];
    for bit in [8, 15, 48, 62] {
        let junk = held.cookie() | 1 << bit;
        expect_err(raw_reply(junk, 3, answer.as_ptr() as u64, 32), Error::Incapable, "cookie with a junk bit")?;
        // SAFETY: a refused ReplyRecv receives nothing into the window.
        let args = abi::call::ReplyRecvArgs { cookie: junk, result: 3, reply_len: 0, window: w.addr(), timeout: 0 };
        // SAFETY: as above.
        let rr = unsafe { runtime::sys::calls::REPLY_RECV.call(chan.token(), args) };
        expect_err(rr, Error::Incapable, "ReplyRecv with a junk cookie")?;
    }
    // The genuine cookie still answers (the client checks it got exactly this).
    held.reply(3, &answer).ctx("genuine reply")?;
    expect_exit(&child, Exit::Code(0), "client (0 = answered once, with the right bytes)")
}

fn kernel_reply_source(chan: &Channel) -> Outcome {
    let mut w = Window::new().ctx("window")?;
    let (child, held) = held_client(chan, &mut w)?;
    for src in [0xffff_8000_0000_0000u64, 0xffff_ffff_8010_0000, abi::USER_TOP - 16] {
        expect_err(raw_reply(held.cookie(), 3, src, 32), Error::BadAddress, "reply data from kernel memory")?;
    }
    held.reply(3, &[!3; 32]).ctx("genuine reply")?;
    expect_exit(&child, Exit::Code(0), "client (0 = not answered by the refused replies)")
}

/// `lend-sibling` (with `args`) lends us a page whose `DmaAddr` we take,
/// and is killed while we hold it: the window must still hold its bytes.
/// Returns the held message, the window's address and the physical one.
fn lender_killed(chan: &Channel, args: &[&str]) -> Result<(Held, u64, u64), alloc::string::String> {
    let child = spawn("lend-sibling", args, &[(CHAN, chan.token(), abi::ChannelRights::SEND.into())], 8)?;
    let mut w = Window::new().ctx("window")?;
    let at = w.addr();
    // SAFETY: the window's own page, ours alone until a message arrives.
    unsafe { core::ptr::write_bytes(at as *mut u8, 0xee, 4096) };
    let m = chan.receive(&mut w, FIVE_S).ctx("receive the lent page")?;
    let lent = m.size == 4096;
    let pa = runtime::mem::dma_addr(at);
    let held = m.hold();
    expect_exit(&child, Exit::Fault(14), "lender (8, 9: no DMA page; 5: page reachable during the loan, 7: write went through)")?;
    ensure!(lent, "the request was not a lent page");
    let pa = pa.ctx("DmaAddr of the lent page")?;
    // SAFETY: the window's page is mapped (the lender's, now ours) and
    // nothing else uses it.
    let page = unsafe { core::slice::from_raw_parts(at as *const u8, 4096) };
    let same = page.iter().enumerate().all(|(i, &b)| b == (i as u8) ^ 0x5a);
    ensure!(same, "after the lender died the window holds {:02x?}, not its page", &page[..8]);
    Ok((held, at, pa))
}

/// A driver may point a device at a lent page (`DmaAddr`); if the lender
/// dies meanwhile, the frame must not go back to the free pool while the
/// server holds it: it becomes the server's own page at the window.
fn lender_dies(chan: &Channel) -> Outcome {
    let (held, at, _) = lender_killed(chan, &[])?;
    expect_err(runtime::mem::dma_addr(at), Error::BadAddress, "DmaAddr of the page once it is ours (not lent)")?;
    expect_err(held.reply(0, &[]), Error::Incapable, "reply to the dead lender")?;
    // Ours like any page: writable, then unmapped (and freed) by us.
    // SAFETY: the window's page is mapped and nothing else uses it.
    unsafe { core::ptr::write_volatile(at as *mut u8, 1) };
    // SAFETY: nothing refers to the window's page any more.
    unsafe { runtime::mem::unmap(at, 4096) }.ctx("unmap the window")
}

/// As [`lender_dies`], the lent page a page of the lender's DMA region: the
/// server keeps it as a DMA mapping (same physical address), and the dead
/// lender's region is freed only when the server unmaps it.
fn dma_lender_dies(chan: &Channel) -> Outcome {
    let before = runtime::ipc::debug::accounting().ctx("accounting")?;
    let (held, at, pa) = lender_killed(chan, &["dma"])?;
    let now = runtime::mem::dma_addr(at).ctx("DmaAddr once the lender is gone")?;
    ensure!(now == pa, "the window's frame moved: {pa:#x} -> {now:#x}");
    let mid = runtime::ipc::debug::accounting().ctx("accounting")?;
    ensure!(mid.free_dma + 1 == before.free_dma, "DMA slots free: {} before, {} with the page held", before.free_dma, mid.free_dma);
    expect_err(held.reply(0, &[]), Error::Incapable, "reply to the dead lender")?;
    // SAFETY: nothing refers to the window's page any more.
    unsafe { runtime::mem::unmap(at, 4096) }.ctx("unmap the window")?;
    let after = runtime::ipc::debug::accounting().ctx("accounting")?;
    ensure!(after.free_dma == before.free_dma, "DMA slots free: {} before, {} after the server let go", before.free_dma, after.free_dma);
    Ok(())
}
