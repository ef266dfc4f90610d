//! Synchronous message passing.
//!
//! A sender blocks from `send` until the reply; its message lives in its
//! thread control block the whole time ([`crate::proc::Message`]), so the
//! kernel allocates nothing per message. If a receiver is waiting, the
//! message goes straight to it; otherwise the sender joins the channel's FIFO
//! of senders (bounded by [`abi::limits::CHANNEL_QUEUE_DEPTH`]).
//!
//! Delivery copies the bytes into the receiver's 4 KiB window, except for a
//! page-aligned message of exactly one page: that page is *lent*, i.e. mapped
//! at the receiver's window (displacing whatever was there) until the reply,
//! when the old entry is put back and the TLB entry invalidated. Whatever the
//! path, the receiver cannot touch the sender's memory after replying.
//!
//! Send isolation: while a page is lent, the sender's own entry for it is
//! not present, so the sender's other threads cannot change a request the
//! server is decoding (no double fetch). A sibling that touches the page
//! takes a page fault and the process is killed with a report; a syscall
//! naming the page gets `BadAddress`. Every end of the loan ([`Kernel::unlend`]:
//! reply, either side's death, `ProcessKill`) makes it present again.
//!
//! Replies: `Reply` names its source buffer (any of the server's memory; for
//! a lent message the window itself means "nothing to copy"), so a message
//! kept unanswered while others arrive ("held") is answered with exactly the
//! bytes the server means. `ReplyRecv` takes reply data from the window,
//! which is only allowed while the window still holds that message: every
//! delivery at a window marks the unanswered messages that arrived there
//! before as *displaced* (`Message::displaced`), and a reply taking data
//! from a displaced message's window is refused with `InvalidArgument`
//! before anything reaches the client. The client learns the reply length.
//!
//! A receiver serving a higher-priority sender runs at the sender's priority
//! until it replies (priority inheritance), through chains of servers too.

pub mod channel;
mod fast;
pub mod named;

use abi::{CapKind, Error, RightsMask, SendFlags};
use x86_64::structures::paging::PageTableFlags as Flags;
use x86_64::{PhysAddr, VirtAddr};

use crate::cap::{BadToken, Cap, SysError};
use crate::kernel::Kernel;
use crate::mem::paging::{sw, LeafAt};
use crate::mem::user;
use crate::proc::thread::decode_cookie;
use crate::proc::{State, Tid, NO_THREAD};
use crate::syscall::Outcome;

/// No channel (an in-flight message whose channel was destroyed); its
/// slot is never used.
pub const NO_CHANNEL: u16 = channel::NO_CHANNEL;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PAGE: u64 = abi::PAGE_SIZE as u64;

/// How a message reaches the receiver's window.
#[derive(Clone, Copy, Debug)]
pub(super) enum Route {
    /// Nothing to move (tag only).
    Empty,
    /// Copy into the window, whose frame this is.
    Copy(PhysAddr),
    /// Lend the sender's page (frame, flags, where the sender's entry is).
    Lend(PhysAddr, Flags, LeafAt),
}

/// Where reply data comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReplySrc {
    /// The message's window (`ReplyRecv`).
    Window,
    /// Any of the server's memory (`Reply`).
    Buf(u64),
    /// The answering thread's message registers (`ReplyWait`).
    Regs,
}

/// Which side's memory made a delivery fail.
pub(super) enum Fault {
    Sender(Error),
    Receiver(Error),
}

impl Kernel {
    /// The capability behind `token` in process `p`, if it is of `kind` (any
    /// kind for `None`) and grants `need`; failing that, a [`BadToken`]
    /// (the caller pays the delay).
    pub fn lookup(&mut self, p: usize, token: u64, kind: Option<CapKind>, need: impl Into<abi::RightsMask>) -> Result<Cap, BadToken> {
        let need = need.into();
        let found = self.procs[p].caps.as_ref().and_then(|c| c.get(token)).copied();
        match found {
            Some(c) if kind.is_none_or(|k| k == c.kind) && c.allows(need) => Ok(c),
            _ => Err(BadToken),
        }
    }

    /// The channel behind `token`, which must grant `need`. A token of a
    /// destroyed channel is stale, and treated like a forged one.
    pub fn channel_of(&mut self, p: usize, token: u64, need: abi::ChannelRights) -> Result<u16, BadToken> {
        let cap = self.lookup(p, token, Some(CapKind::Channel), need)?;
        if self.channels.get(cap.object, cap.gen).is_some() {
            Ok(cap.object as u16)
        } else {
            Err(BadToken)
        }
    }

    /// Give process `p` a new token for `cap`: the first fresh token whose
    /// slot in `p`'s table is free (a token can live nowhere else, see
    /// [`crate::cap::table`]; the table is at most 3/4 full, so one comes
    /// within a few draws on average).
    pub fn mint(&mut self, p: usize, cap: Cap) -> Result<u64, Error> {
        if self.procs[p].room(crate::proc::Resource::Caps) == 0 {
            return Err(Error::LimitReached);
        }
        let caps = self.procs[p].caps.as_mut().ok_or(Error::NotFound)?;
        if caps.len() >= abi::limits::CAPS_PER_PROCESS {
            return Err(Error::LimitReached);
        }
        // Bounded, though the odds of 4096 taken slots in a row at 3/4 full
        // are below 2^-1700.
        for _ in 0..4096 {
            let token = self.tokens.fresh();
            match caps.insert(token, cap) {
                Ok(()) => return Ok(token),
                Err(crate::cap::table::InsertError::SlotTaken) => continue,
                Err(crate::cap::table::InsertError::Full) => break,
            }
        }
        Err(Error::LimitReached)
    }

    /// A new channel owned by `p`; returns a token with every right.
    pub fn channel_create(&mut self, p: usize) -> Result<u64, Error> {
        if self.procs[p].channels as usize >= abi::limits::CHANNELS_PER_PROCESS {
            return Err(Error::LimitReached);
        }
        let (idx, gen) = self.channels.alloc(p as u16).ok_or(Error::LimitReached)?;
        match self.mint(p, Cap::object(CapKind::Channel, idx as u32, gen, abi::RightsMask::ALL)) {
            Ok(token) => {
                self.procs[p].channels += 1;
                Ok(token)
            }
            Err(e) => {
                self.channels.free(idx);
                Err(e)
            }
        }
    }

    /// Destroy channel `c`: every waiter gets `Closed`, names go, tokens
    /// for it become stale. Requests already received can still be replied to.
    pub fn destroy_channel(&mut self, c: u16) {
        while let Some(t) = self.channels.slot(c).senders.pop_front(&mut self.threads) {
            self.ipc.in_flight -= 1;
            self.complete(t, Err(Error::Closed));
        }
        while let Some(t) = self.channels.slot(c).receivers.pop_front(&mut self.threads) {
            self.complete(t, Err(Error::Closed));
        }
        for th in self.threads.iter_mut() {
            if th.state == State::AwaitingReply && th.msg.chan == c {
                th.msg.chan = NO_CHANNEL;
            }
        }
        self.names.remove_channel(c);
        let owner = self.channels.slot(c).owner as usize;
        self.procs[owner].channels -= 1;
        self.channels.free(c);
        if self.ipc.trace {
            crate::info!("ipc: channel {c} destroyed");
        }
    }

    /// `Send` / `SendCap` / `Call` (`regs`: the message is in the message
    /// registers, `buf` unused) for the current thread.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        token: u64,
        tag: u64,
        size: u64,
        buf: u64,
        timeout: u64,
        flags: SendFlags,
        xfer: Option<(u64, RightsMask)>,
        regs: bool,
    ) -> Result<Outcome, SysError> {
        let t = self.current;
        let p = self.proc_of(t);
        let ch = self.channel_of(p, token, abi::ChannelRights::SEND)?;
        if size > abi::MAX_MESSAGE as u64 || (regs && size > abi::call::REG_MESSAGE as u64) {
            return Err(Error::TooLarge.into());
        }
        if !regs {
            user::check_range(buf, size).map_err(|_| Error::BadAddress)?;
        }
        if let Some((xt, _)) = xfer {
            self.lookup(p, xt, None, abi::RightsMask::DELEGATE)?;
        }
        let th = &mut self.threads[t as usize];
        th.msg.tag = tag;
        th.msg.buf = buf;
        th.msg.size = size as u32;
        th.msg.seq = th.msg.seq.wrapping_add(1);
        th.msg.chan = ch;
        th.msg.server = NO_THREAD;
        th.msg.lent = false;
        th.msg.displaced = false;
        th.msg.flags = flags.bits() as u8;
        th.msg.regs = regs;
        (th.msg.xfer_token, th.msg.xfer_rights) = match xfer {
            Some((tok, r)) => (tok, r.bits() as u8),
            None => (0, 0),
        };
        self.ipc.in_flight += 1;
        self.channels.slot(ch).sends += 1;
        if self.ipc.trace {
            crate::info!("ipc: t{t} send ch{ch} tag {tag:#x} size {size}");
        }
        while let Some(r) = self.channels.slot(ch).receivers.pop_front(&mut self.threads) {
            match self.deliver(t, r) {
                Ok(values) => {
                    self.threads[t as usize].state = State::AwaitingReply;
                    self.threads[r as usize].ret = [0, values[0], values[1], values[2], values[3]];
                    let prio = self.threads[t as usize].prio;
                    if self.threads[r as usize].prio < prio {
                        self.boost(r, prio);
                    }
                    self.hand_off(r);
                    if self.current == r {
                        // Direct switch: the server works on our time.
                        self.on_behalf = t;
                    }
                    return Ok(Outcome::Blocked);
                }
                Err(Fault::Receiver(e)) => {
                    self.channels.slot(ch).errors += 1;
                    self.complete(r, Err(e));
                }
                Err(Fault::Sender(e)) => {
                    self.channels.slot(ch).receivers.push_front(&mut self.threads, r);
                    self.channels.slot(ch).errors += 1;
                    self.ipc.in_flight -= 1;
                    return Err(e.into());
                }
            }
        }
        let c = self.channels.slot(ch);
        if c.senders.len() >= abi::limits::CHANNEL_QUEUE_DEPTH || timeout == 0 {
            c.errors += 1;
            self.ipc.in_flight -= 1;
            return Err(if timeout == 0 { Error::Timeout.into() } else { Error::QueueFull.into() });
        }
        c.senders.push_back(&mut self.threads, t);
        c.peak = c.peak.max(c.senders.len() as u16);
        let th = &mut self.threads[t as usize];
        th.state = State::SendBlocked;
        th.wait_obj = ch;
        if let Some(d) = self.deadline(timeout) {
            self.timer_arm(t, d);
        }
        let prio = self.threads[t as usize].prio;
        self.boost_servers(ch, prio);
        Ok(Outcome::Blocked)
    }

    /// `Receive` for the current thread into the window at `buf`.
    pub fn receive(&mut self, token: u64, buf: u64, timeout: u64) -> Result<Outcome, SysError> {
        let p = self.proc_of(self.current);
        let ch = self.channel_of(p, token, abi::ChannelRights::RECEIVE)?;
        Ok(self.receive_on(ch, buf, timeout, false)?)
    }

    /// `ReplyRecv`: answer `cookie` (unless it is [`abi::NO_REPLY`]), then
    /// receive. The client is made ready only after the receive: if the
    /// server then blocks, the CPU goes straight to the client.
    pub fn reply_recv(&mut self, token: u64, cookie: u64, result: u64, reply_len: u64, buf: u64, timeout: u64) -> Result<Outcome, SysError> {
        self.answer_then_receive(token, cookie, result, reply_len, buf, timeout, false)
    }

    /// `ReplyWait`: [`Self::reply_recv`] with the reply in the message
    /// registers, waiting for ever (or not at all: `timeout` 0), and a
    /// `Call` message received into them.
    pub fn reply_wait(&mut self, token: u64, cookie: u64, result: u64, reply_len: u64, buf: u64, timeout: u64) -> Result<Outcome, SysError> {
        self.answer_then_receive(token, cookie, result, reply_len, buf, timeout, true)
    }

    /// [`Self::reply_recv`] (`regs` false: reply data from the window) and
    /// [`Self::reply_wait`] (`regs`: from the message registers).
    #[allow(clippy::too_many_arguments)]
    fn answer_then_receive(&mut self, token: u64, cookie: u64, result: u64, reply_len: u64, buf: u64, timeout: u64, regs: bool) -> Result<Outcome, SysError> {
        let p = self.proc_of(self.current);
        // Check the channel first so a bad token cannot consume the reply.
        let ch = self.channel_of(p, token, abi::ChannelRights::RECEIVE)?;
        if cookie == abi::NO_REPLY {
            return Ok(self.receive_on(ch, buf, timeout, regs)?);
        }
        let src = if regs { ReplySrc::Regs } else { ReplySrc::Window };
        let client = self.answer(cookie, result, src, reply_len, None)?;
        let received = self.receive_on(ch, buf, timeout, regs);
        if received == Ok(Outcome::Blocked) {
            self.hand_off(client);
        } else {
            self.make_runnable(client);
        }
        Ok(received?)
    }

    /// Receive on channel `ch` into the window at `buf` (`regs`: a `Call`
    /// message into the message registers).
    fn receive_on(&mut self, ch: u16, buf: u64, timeout: u64, regs: bool) -> Result<Outcome, Error> {
        let t = self.current;
        // The window itself (mapped? holding an unanswered lent page?) is
        // checked at delivery, by the one page-table walk delivery needs.
        if !buf.is_multiple_of(PAGE) || user::check_range(buf, PAGE).is_err() {
            return Err(Error::BadAddress);
        }
        self.threads[t as usize].recv_buf = buf;
        self.threads[t as usize].recv_regs = regs;
        if let Some(ev) = self.irq_take_event(ch) {
            return Ok(Outcome::Done(ev));
        }
        while let Some(s) = self.channels.slot(ch).senders.pop_front(&mut self.threads) {
            match self.deliver(s, t) {
                Ok(values) => {
                    self.timer_cancel(s);
                    self.threads[s as usize].state = State::AwaitingReply;
                    let prio = self.threads[s as usize].prio;
                    if self.threads[t as usize].prio < prio {
                        self.boost(t, prio);
                    }
                    return Ok(Outcome::Done(values));
                }
                Err(Fault::Sender(e)) => {
                    self.channels.slot(ch).errors += 1;
                    self.ipc.in_flight -= 1;
                    self.complete(s, Err(e));
                }
                Err(Fault::Receiver(e)) => {
                    self.channels.slot(ch).senders.push_front(&mut self.threads, s);
                    self.channels.slot(ch).errors += 1;
                    return Err(e);
                }
            }
        }
        if timeout == 0 {
            self.channels.slot(ch).errors += 1;
            return Err(Error::Timeout);
        }
        self.channels.slot(ch).receivers.push_back(&mut self.threads, t);
        let th = &mut self.threads[t as usize];
        th.state = State::RecvBlocked;
        th.wait_obj = ch;
        if let Some(d) = self.deadline(timeout) {
            self.timer_arm(t, d);
        }
        Ok(Outcome::Blocked)
    }

    /// `current` has just blocked and `t` (blocked until now) is ready: run
    /// `t` next without a trip through the run queue, unless something more
    /// urgent is ready, or `t`'s slice ran out while a server worked for it
    /// (see [`Kernel::tick`]) and an equal is ready.
    fn hand_off(&mut self, t: Tid) {
        if self.threads[t as usize].deadline != u64::MAX {
            self.timer_cancel(t);
        }
        let prio = self.threads[t as usize].prio;
        let spent = self.threads[t as usize].slice == 0;
        if self.sched.highest().is_none_or(|h| h < prio || (h == prio && !spent)) {
            self.run_next(t);
        } else {
            self.make_runnable(t);
            self.schedule();
        }
    }

    /// Move sender `s`'s message to receiver `r`'s window; returns the
    /// receiver's results (cookie, tag, size, transferred token).
    fn deliver(&mut self, s: Tid, r: Tid) -> Result<[u64; 4], Fault> {
        let m = self.threads[s as usize].msg;
        if m.regs {
            return self.deliver_regs(s, r);
        }
        let rbuf = self.threads[r as usize].recv_buf;
        let (sp, rp) = (self.proc_of(s), self.proc_of(r));
        let route = self.route(s, m.buf, m.size as u64, SendFlags::from_bits_retain(m.flags as u64), r, rbuf)?;
        if self.unanswered[rp] != 0 {
            self.displace(rp, rbuf);
        }
        // The capability goes before the data: it is the step that can fail
        // without anything to undo.
        let mut new_token = 0;
        if m.xfer_token != 0 {
            let cap = match self.procs[sp].caps.as_ref().and_then(|c| c.get(m.xfer_token)) {
                Some(c) if c.allows(RightsMask::DELEGATE) => c.reduced(RightsMask(m.xfer_rights as u32)),
                _ => return Err(Fault::Sender(Error::Incapable)),
            };
            new_token = self.mint(rp, cap).map_err(Fault::Sender)?;
        }
        let sender_loaded = self.active_root == self.threads[s as usize].root;
        let (lent, displaced) = match self.carry(route, s, sender_loaded, m.buf, m.size as u64, r, rbuf) {
            Ok(done) => done,
            Err(f) => {
                if let Some(caps) = self.procs[rp].caps.as_mut() {
                    caps.remove(new_token);
                }
                return Err(f);
            }
        };
        let cookie = self.delivered(s, r, rbuf, displaced, lent);
        if self.ipc.trace {
            crate::info!("ipc: ch{} t{s} -> t{r} tag {:#x} size {}{}", m.chan, m.tag, m.size, if lent { " (lent)" } else { "" });
        }
        Ok([cookie, m.tag, m.size as u64, new_token])
    }

    /// `s`'s message has reached `r` at window `rbuf` (`loan_pte`: the
    /// window entry a lent page displaced): its record, `r`'s process's
    /// count of unanswered messages, the channel's and system's counters.
    /// Returns the message cookie.
    fn delivered(&mut self, s: Tid, r: Tid, rbuf: u64, loan_pte: u64, lent: bool) -> u64 {
        let th = &mut self.threads[s as usize];
        th.msg.loan_pte = loan_pte;
        th.msg.lent = lent;
        th.msg.recv_va = rbuf;
        th.msg.server = r;
        let cookie = th.cookie(s);
        let chan = th.msg.chan;
        let rp = self.proc_of(r);
        self.unanswered[rp] += 1;
        let c = self.channels.slot(chan);
        c.receives += 1;
        c.in_flight += 1;
        self.ipc.delivered += 1;
        cookie
    }

    /// [`Self::deliver`] for a `Call` message, which is in `s`'s message
    /// registers: into `r`'s (`ReplyWait`), or else copied into its window.
    /// Either way the window must not hold a lent page (the receiver's
    /// runtime writes a register message into its window too).
    fn deliver_regs(&mut self, s: Tid, r: Tid) -> Result<[u64; 4], Fault> {
        let m = self.threads[s as usize].msg;
        let rbuf = self.threads[r as usize].recv_buf;
        let rp = self.proc_of(r);
        let window = self.entry_of(r, rbuf, true);
        let wflags = Flags::from_bits_retain(window & !ADDR_MASK);
        if wflags.contains(sw::LOAN) {
            return Err(Fault::Receiver(Error::Busy));
        }
        let size = if self.threads[r as usize].recv_regs {
            self.move_words(s, r, m.size as u64);
            m.size as u64 | abi::call::IN_REGISTERS | abi::call::CALLED
        } else {
            let words = abi::call::masked(&self.threads[s as usize].mr, m.size as u64);
            if m.size != 0 {
                if !wflags.contains(Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE) || !wflags.intersects(sw::RAM) {
                    return Err(Fault::Receiver(Error::BadAddress));
                }
                let bytes = abi::call::bytes_of(&words);
                let frame = PhysAddr::new_truncate(window & ADDR_MASK);
                // SAFETY: the window's frame, checked above to be the
                // receiver's writable RAM; the kernel holds no reference
                // into it, and `bytes` is a kernel buffer.
                unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.phys.ptr::<u8>(frame), m.size as usize) };
            }
            m.size as u64 | abi::call::CALLED
        };
        if self.unanswered[rp] != 0 {
            self.displace(rp, rbuf);
        }
        let cookie = self.delivered(s, r, rbuf, 0, false);
        if self.ipc.trace {
            crate::info!("ipc: ch{} t{s} -> t{r} tag {:#x} size {} (registers)", m.chan, m.tag, m.size);
        }
        Ok([cookie, m.tag, size, 0])
    }

    /// The first `len` bytes of `from`'s message registers into `to`'s,
    /// the rest of them zero (whatever else `from` had there stays its own).
    #[inline(always)]
    pub(super) fn move_words(&mut self, from: Tid, to: Tid, len: u64) {
        if len < abi::call::REG_MESSAGE as u64 {
            return self.move_some_words(from, to, len);
        }
        // Word by word: a copy of the whole array would go through the
        // stack.
        for i in 0..abi::call::MSG_WORDS {
            self.threads[to as usize].mr[i] = self.threads[from as usize].mr[i];
        }
        self.own_words(to);
    }

    /// [`Self::move_words`] for a fast path about to switch straight to
    /// `to`: a whole message is lent to `to`'s exit rather than copied (see
    /// [`crate::proc::thread::WordsAt`]).
    #[inline(always)]
    pub(super) fn lend_words(&mut self, from: Tid, to: Tid, len: u64) {
        if len < abi::call::REG_MESSAGE as u64 {
            return self.move_some_words(from, to, len);
        }
        self.threads[to as usize].words = crate::proc::thread::WordsAt::lent(&raw const self.threads[from as usize].mr);
    }

    /// `t`'s exit takes its words from its own `mr`.
    #[inline(always)]
    fn own_words(&mut self, t: Tid) {
        self.threads[t as usize].words = crate::proc::thread::WordsAt(&raw const self.threads[t as usize].mr);
    }

    /// [`Self::move_words`] of a short message.
    #[inline(never)]
    fn move_some_words(&mut self, from: Tid, to: Tid, len: u64) {
        self.threads[to as usize].mr = abi::call::masked(&self.threads[from as usize].mr, len);
        self.own_words(to);
    }

    /// How a message of `size` bytes at `buf` of sender `s` (sent with
    /// `flags`) reaches the window `rbuf` of receiver `r`. Checks only.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route(&mut self, s: Tid, buf: u64, size: u64, flags: SendFlags, r: Tid, rbuf: u64) -> Result<Route, Fault> {
        // The window's entry (one walk, or none while the receiver's cache
        // is current) says whether the window is free and, for the copy
        // path, which frame to copy into. (No table for the window yet is
        // fine for a lent page: `carry` creates it.)
        let window = self.entry_of(r, rbuf, true);
        let wflags = Flags::from_bits_retain(window & !ADDR_MASK);
        if wflags.contains(sw::LOAN) {
            return Err(Fault::Receiver(Error::Busy));
        }
        // A page-sized, page-aligned message is lent if the page is the
        // sender's own writable memory; anything else is copied: a page lent
        // to the sender (a loan must never outlive the lender's page), the
        // boot image or device memory (the receiver must not get those), a
        // read-only page (the receiver may answer in place in its window).
        if size == PAGE && buf.is_multiple_of(PAGE) && !flags.contains(SendFlags::READ_ONLY) {
            let at = self.leaf_of(s, buf, false);
            let e = at.map_or(0, |at| self.entry(at));
            let f = Flags::from_bits_retain(e & !ADDR_MASK);
            let own_writable = Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE;
            // (Not the window's own frame either: hiding the sender's entry
            // would hide the message from the receiver too.)
            if f.contains(own_writable) && f.intersects(sw::LENDABLE) && !f.contains(sw::LOAN) && (e ^ window) & ADDR_MASK != 0 {
                if let Some(at) = at {
                    return Ok(Route::Lend(PhysAddr::new_truncate(e & ADDR_MASK), f, at));
                }
            }
        }
        if size == 0 {
            return Ok(Route::Empty);
        }
        if !wflags.contains(Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE) || !wflags.intersects(sw::RAM) {
            return Err(Fault::Receiver(Error::BadAddress));
        }
        Ok(Route::Copy(PhysAddr::new_truncate(window & ADDR_MASK)))
    }

    /// Carry a message along its route; returns whether the page was lent
    /// and the window entry it displaced. A failed copy may have written part
    /// of the receiver's window (which holds no message then).
    /// `sender_active`: the sender's address space is the one loaded, so
    /// its buffer is read through the MMU instead of by walking its tables.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    /// `sender_loaded`: the sender's address space is the one in the MMU.
    pub(super) fn carry(
        &mut self,
        route: Route,
        s: Tid,
        sender_loaded: bool,
        buf: u64,
        size: u64,
        r: Tid,
        rbuf: u64,
    ) -> Result<(bool, u64), Fault> {
        match route {
            Route::Empty => Ok((false, 0)),
            Route::Copy(window) => {
                let sspace = self.space(self.proc_of(s));
                // Through the MMU when the sender's space is loaded, the
                // buffer is RAM (the rule the walking copy applies) and the
                // receiver is another process (so source and destination
                // cannot overlap); otherwise by walking, with memmove.
                let mmu = sender_loaded && self.proc_of(s) != self.proc_of(r) && self.user_ram(s, buf, size, false);
                let copied = if mmu {
                    // SAFETY: `window` is the receiver's window frame from
                    // `route`: user RAM the kernel holds no reference into.
                    unsafe { crate::arch::read_user(&self.phys, &sspace, buf, window, size as usize) }.is_ok()
                } else {
                    // SAFETY: as above.
                    unsafe { user::read_phys(&self.phys, &sspace, buf, window, size as usize) }.is_ok()
                };
                if copied {
                    Ok((false, 0))
                } else {
                    Err(Fault::Sender(Error::BadAddress))
                }
            }
            Route::Lend(page, f, at) => self.lend(page, f, (at, buf, s), r, rbuf).map(|old| (true, old)),
        }
    }

    /// Whether `[va, va + len)` of thread `t`'s space is present user RAM
    /// (at most two pages: messages are at most a page). The first page's
    /// entry comes through the thread's cache (`window` picks which).
    #[inline(always)]
    fn user_ram(&mut self, t: Tid, va: u64, len: u64, window: bool) -> bool {
        const USER: u64 = Flags::PRESENT.bits() | Flags::USER_ACCESSIBLE.bits();
        let ram = |e: u64| e & USER == USER && e & sw::RAM.bits() != 0;
        let first = self.entry_of(t, va, window);
        if va % PAGE + len <= PAGE {
            return ram(first);
        }
        let last = (va + len - 1) & !(PAGE - 1);
        ram(first) && ram(self.space(self.proc_of(t)).leaf_raw(&self.phys, last))
    }

    /// Every unanswered message of process `p` that arrived at window `va`
    /// no longer is in its window: a new delivery there is about to write
    /// it. Only runs while `p` holds unanswered messages.
    #[inline(never)]
    pub(super) fn displace(&mut self, p: usize, va: u64) {
        for t in crate::proc::tids() {
            let th = &self.threads[t as usize];
            let m = &th.msg;
            if th.state == State::AwaitingReply && m.server != NO_THREAD && m.recv_va == va && self.proc_of(m.server) == p {
                self.threads[t as usize].msg.displaced = true;
            }
        }
    }

    /// Reply data of a request from client `c` answered by the current
    /// thread's process `p`: `reply_len` bytes at the server's `src` (`None`:
    /// the message's window) go back to the client's buffer; nothing if the
    /// client sent read-only. For a lent page the client's buffer is the
    /// page at the window: nothing to copy when `src` is the window, else
    /// the bytes are copied there. `src` was checked to be user memory. The source is read through the MMU (the
    /// server's space is loaded); the client's buffer is found by walking its
    /// tables. A failed copy may have written part of the client's buffer.
    #[inline(always)]
    pub(super) fn give_back(&mut self, c: Tid, p: usize, src: ReplySrc, reply_len: u64) -> Result<(), Error> {
        let m = &self.threads[c as usize].msg;
        let in_place = match src {
            ReplySrc::Window => true,
            ReplySrc::Buf(b) => b == m.recv_va,
            ReplySrc::Regs => false,
        };
        if reply_len == 0 || SendFlags::from_bits_retain(m.flags as u64).contains(SendFlags::READ_ONLY) || (m.lent && in_place) {
            return Ok(());
        }
        let (window, lent, buf, len) = (m.recv_va, m.lent, m.buf, reply_len as usize);
        let src = match src {
            ReplySrc::Window => window,
            ReplySrc::Buf(b) => b,
            ReplySrc::Regs => return self.give_back_regs(c, p, reply_len),
        };
        debug_assert!(user::check_range(src, reply_len).is_ok());
        let (sspace, cp) = (self.space(p), self.proc_of(c));
        if lent {
            // The client's page sits at the window, in the server's space.
            return user::copy(&self.phys, (&sspace, src), (&sspace, window), len, user::Access::Write)
                .map_err(|_| Error::BadAddress);
        }
        // The source is the server's own memory, read through the MMU on its
        // behalf (whatever it mapped there, it could read itself); the same
        // code serves both paths, so the outcome never depends on timing.
        if cp == p {
            // Same process: the buffers may overlap, so the walking memmove.
            let cspace = self.space(cp);
            return user::copy(&self.phys, (&sspace, src), (&cspace, buf), len, user::Access::Write)
                .map_err(|_| Error::BadAddress);
        }
        if buf % PAGE + reply_len <= PAGE {
            // The usual case, one page: its entry may be in the client's cache.
            let pte = self.entry_of(c, buf, false);
            let f = Flags::from_bits_retain(pte & !ADDR_MASK);
            if !f.contains(Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE) || !f.intersects(sw::RAM) {
                return Err(Error::BadAddress);
            }
            let dst = PhysAddr::new_truncate((pte & ADDR_MASK) + buf % PAGE);
            // SAFETY: `dst..dst + len` lies in the client's buffer page,
            // checked above to be user RAM; the kernel holds no reference
            // into it.
            return unsafe { crate::arch::read_user(&self.phys, &sspace, src, dst, len) }.map_err(|_| Error::BadAddress);
        }
        let cspace = self.space(cp);
        user::for_each_frame(&self.phys, &cspace, buf, len, user::Access::Write, |off, dst, n| {
            // SAFETY: `dst..dst + n` lies in one writable user RAM page of the
            // client, found by walking its tables; no reference covers it.
            unsafe { crate::arch::read_user(&self.phys, &sspace, src + off as u64, dst, n) }
        })
        .map_err(|_| Error::BadAddress)
    }

    /// [`Self::give_back`] of a reply in the answering thread's message
    /// registers to a client that sent from memory: written to its buffer
    /// (for a lent page, to the page at the server's window). Walks the
    /// tables: the fast path leaves this case to the general path.
    #[inline(never)]
    fn give_back_regs(&mut self, c: Tid, p: usize, reply_len: u64) -> Result<(), Error> {
        let m = self.threads[c as usize].msg;
        let bytes = abi::call::bytes_of(&self.threads[self.current as usize].mr);
        let data = &bytes[..reply_len as usize];
        let (space, va) = if m.lent { (self.space(p), m.recv_va) } else { (self.space(self.proc_of(c)), m.buf) };
        user::write(&self.phys, &space, va, data, user::Access::Write).map_err(|_| Error::BadAddress)
    }

    /// Reply data for a client that sent with `Call`: `reply_len` bytes from
    /// `src` into its message registers (the rest zero). Its words change
    /// only if all of them arrive.
    fn reply_to_regs(&mut self, c: Tid, p: usize, src: ReplySrc, reply_len: u64) -> Result<(), Error> {
        let words = match src {
            ReplySrc::Regs => {
                self.move_words(self.current, c, reply_len);
                return Ok(());
            }
            ReplySrc::Window | ReplySrc::Buf(_) => {
                let va = if let ReplySrc::Buf(b) = src { b } else { self.threads[c as usize].msg.recv_va };
                let mut bytes = [0u8; abi::call::REG_MESSAGE];
                user::read(&self.phys, &self.space(p), va, &mut bytes[..reply_len as usize]).map_err(|_| Error::BadAddress)?;
                abi::call::words_of(&bytes[..reply_len as usize])
            }
        };
        self.threads[c as usize].mr = words;
        self.own_words(c);
        Ok(())
    }

    /// Map the sender's page `pa` (with its flags `f`) at the receiver's
    /// window, and hide it from the sender (send isolation): `sender` is
    /// where the sender's entry is, the page's address and the sender (to
    /// flush the page in its space, loaded or not). Returns the displaced
    /// window entry (raw) to put back at reply.
    fn lend(&mut self, pa: PhysAddr, f: Flags, sender: (LeafAt, u64, Tid), r: Tid, rva: u64) -> Result<u64, Fault> {
        let rspace = self.space(self.proc_of(r));
        let at = match self.leaf_of(r, rva, true) {
            Some(at) => at,
            None => {
                // First use of this window: make its page table, charged to
                // the receiver's page quota.
                let mut rs = rspace;
                self.charged(self.proc_of(r), rva, 0, |k| {
                    rs.leaf_or_create(&k.phys, &mut k.frames, VirtAddr::new(rva)).map(|_| ()).map_err(|_| Error::NoMemory)
                })
                .map_err(Fault::Receiver)?;
                self.leaf_of(r, rva, true).ok_or(Fault::Receiver(Error::NoMemory))?
            }
        };
        let old = self.entry(at);
        debug_assert!(f.contains(Flags::WRITABLE), "only writable pages are lent (see `route`)");
        let flags = Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE | Flags::NO_EXECUTE | sw::LOAN;
        self.set_entry(at, (pa.as_u64() & ADDR_MASK) | flags.bits());
        self.flush_page_in(self.threads[r as usize].root, rva);
        let (sat, sva, s) = sender;
        let e = self.entry(sat);
        self.set_entry(sat, e & !Flags::PRESENT.bits());
        self.flush_page_in(self.threads[s as usize].root, sva);
        Ok(old)
    }

    /// End the loan of `t`'s message, if its page is lent: put back the
    /// receiver's entry displaced by the page and make the page present
    /// again for its sender `t` (a not-present entry is never cached, so
    /// that needs no flush). Every way a loan ends comes here.
    #[inline(always)]
    pub(super) fn unlend(&mut self, t: Tid) {
        let m = &self.threads[t as usize].msg;
        if !m.lent {
            return;
        }
        let (server, window, displaced, buf) = (m.server, m.recv_va, m.loan_pte, m.buf);
        if let Some(at) = self.leaf_of(server, window, true) {
            self.set_entry(at, displaced);
            self.flush_page_in(self.threads[server as usize].root, window);
        }
        // The hidden entry cannot have changed: mapping refuses a non-empty
        // entry, and unmapping a lent page is `Busy`.
        if let Some(at) = self.leaf_of(t, buf, false) {
            let e = self.entry(at);
            self.set_entry(at, e | Flags::PRESENT.bits());
        }
        self.threads[t as usize].msg.lent = false;
    }

    /// Sender `t` is dying while its server holds its lent page: the page
    /// becomes the server's own memory at the window (same frame, same
    /// bytes), and the server page the loan displaced there goes to the
    /// sender, to be freed with it. A driver may have pointed a device at
    /// the lent page (`DmaAddr`); were the frame freed now, the device could
    /// write into whatever it becomes next (another program's memory, a page
    /// table). The server's page count stays (one page for another), or
    /// grows by this one if the window was empty. A page of a DMA region
    /// stays a DMA mapping: the sender's mapping of it (counted in the
    /// region's `maps`) becomes the server's, so the region outlives its
    /// dead owner until the server lets the page go. Only over an empty
    /// window or one of the server's own pages (what servers use);
    /// otherwise the loan just ends.
    pub fn orphan_loan(&mut self, t: Tid) {
        let m = &self.threads[t as usize].msg;
        if !m.lent || m.server == NO_THREAD {
            return;
        }
        let (server, window, displaced, buf) = (m.server, m.recv_va, m.loan_pte, m.buf);
        let sp = self.proc_of(server);
        if self.procs[sp].state != crate::proc::ProcState::Alive {
            return;
        }
        let (Some(wat), Some(sat)) = (self.leaf_of(server, window, true), self.leaf_of(t, buf, false)) else { return };
        let own = |e: u64| {
            let f = Flags::from_bits_retain(e);
            f.contains(sw::OWNED) && !f.intersects(sw::DMA | sw::LOAN | sw::BOOT)
        };
        let window_empty = !Flags::from_bits_retain(displaced).contains(Flags::PRESENT);
        let displaced_own = !window_empty && own(displaced);
        let fits = displaced_own || window_empty;
        let sender = Flags::from_bits_retain(self.entry(sat));
        let dma = sender.contains(sw::DMA) && !sender.intersects(sw::OWNED | sw::LOAN | sw::BOOT);
        if !fits || !(dma || own(self.entry(sat))) {
            return;
        }
        let frame = self.entry(wat) & ADDR_MASK;
        let kind = if dma { sw::DMA } else { sw::OWNED };
        let flags = Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE | Flags::NO_EXECUTE | kind;
        self.set_entry(wat, frame | flags.bits());
        self.flush_page_in(self.threads[server as usize].root, window);
        // (The sender's entry was not present: nothing cached to flush.)
        self.set_entry(sat, if displaced_own { displaced } else { 0 });
        if window_empty && !dma {
            self.procs[sp].acct.pages += 1;
        }
        self.threads[t as usize].msg.lent = false;
    }

    /// Undo the delivered, unanswered message of `t` (its sender or its
    /// server is going away).
    pub fn abort_message(&mut self, t: Tid) {
        self.unlend(t);
        self.finish_message(t);
    }

    /// Bookkeeping when a delivered message ends.
    fn finish_message(&mut self, t: Tid) {
        let chan = self.threads[t as usize].msg.chan;
        if chan != NO_CHANNEL {
            self.channels.slot(chan).in_flight -= 1;
        }
        self.ipc.in_flight -= 1;
        let server = self.threads[t as usize].msg.server;
        self.threads[t as usize].msg.server = NO_THREAD;
        if server != NO_THREAD {
            let sp = self.proc_of(server);
            self.unanswered[sp] -= 1;
            if self.threads[server as usize].prio != self.threads[server as usize].base_prio {
                self.unboost(server);
            }
        }
    }

    /// `Reply` from the current thread: `reply_len` bytes from its `buf`.
    pub fn reply(&mut self, cookie: u64, result: u64, buf: u64, reply_len: u64, xfer: Option<(u64, RightsMask)>) -> Result<(), SysError> {
        let client = self.answer(cookie, result, ReplySrc::Buf(buf), reply_len, xfer)?;
        self.make_runnable(client);
        Ok(())
    }

    /// Answer message `cookie`: `reply_len` bytes from the server's `src`
    /// (its window only while that still holds the message) go back to the
    /// sender's buffer (or message registers, after a `Call`), the lent page goes back, the client's result is
    /// set. Returns the client, still blocked: the caller decides how it
    /// runs next. Refusals before the copy leave the client waiting.
    fn answer(&mut self, cookie: u64, result: u64, src: ReplySrc, reply_len: u64, xfer: Option<(u64, RightsMask)>) -> Result<Tid, SysError> {
        let srv = self.current;
        let p = self.proc_of(srv);
        // A cookie names a thread and its message number; only the process
        // that received that message may answer it. Cookies are not tokens
        // (a stale one is normal when a client died), so no delay.
        let Some((c, seq)) = decode_cookie(cookie) else { return Err(Error::Incapable.into()) };
        let valid = self.threads[c as usize].state == State::AwaitingReply
            && self.threads[c as usize].msg.seq == seq
            && self.threads[c as usize].msg.server != NO_THREAD
            && self.proc_of(self.threads[c as usize].msg.server) == p;
        if !valid {
            return Err(Error::Incapable.into());
        }
        let m = self.threads[c as usize].msg;
        if reply_len > m.size as u64 {
            return Err(Error::InvalidArgument.into());
        }
        if reply_len != 0 {
            // Never another message's bytes: not from a window that has
            // since received a later message. (Register reply data stands
            // for the window's too: the runtime loads it from there.)
            let from = if let ReplySrc::Buf(b) = src { b } else { m.recv_va };
            let from_window = src != ReplySrc::Buf(from) || (from < m.recv_va + PAGE && m.recv_va < from.saturating_add(reply_len));
            if m.displaced && from_window {
                return Err(Error::InvalidArgument.into());
            }
            user::check_range(from, reply_len).map_err(|_| Error::BadAddress)?;
        }
        let client_p = self.proc_of(c);
        let mut token = 0;
        if let Some((xt, r)) = xfer {
            let cap = self.lookup(p, xt, None, abi::RightsMask::DELEGATE)?;
            token = self.mint(client_p, cap.reduced(r))?;
        }
        let mut status = Ok([result, token, m.written_back(reply_len), 0]);
        let mut mine = Ok(c);
        let moved = if m.regs { self.reply_to_regs(c, p, src, reply_len) } else { self.give_back(c, p, src, reply_len) };
        if let Err(e) = moved {
            status = Err(e);
            mine = Err(e);
            // The client gets only the error, so not the capability either.
            if let Some(caps) = self.procs[client_p].caps.as_mut() {
                caps.remove(token);
            }
        }
        self.unlend(c);
        if m.chan != NO_CHANNEL {
            self.channels.slot(m.chan).replies += 1;
        }
        self.finish_message(c);
        if self.ipc.trace {
            crate::info!("ipc: t{srv} reply t{c} result {result:#x} len {reply_len}");
        }
        self.threads[c as usize].ret = match status {
            Ok(v) => [0, v[0], v[1], v[2], v[3]],
            Err(e) => [e as u64, 0, 0, 0, 0],
        };
        if mine.is_err() {
            // The client is answered (with the error) either way.
            self.make_runnable(c);
        }
        mine.map_err(SysError::Code)
    }

    /// Raise `t` (and the servers it waits on) to at least `prio`.
    fn boost(&mut self, mut t: Tid, prio: u8) {
        for _ in 0..abi::limits::THREADS {
            let th = &self.threads[t as usize];
            if th.prio >= prio || matches!(th.state, State::Free | State::Dead) {
                return;
            }
            let state = th.state;
            if state == State::Runnable && t != crate::kernel::IDLE_THREAD {
                self.sched.remove(&mut self.threads, t);
                self.threads[t as usize].prio = prio;
                self.sched.enqueue(&mut self.threads, t);
            } else {
                self.threads[t as usize].prio = prio;
            }
            if state != State::AwaitingReply {
                return;
            }
            t = self.threads[t as usize].msg.server;
            if t == NO_THREAD {
                return;
            }
        }
    }

    /// A sender left channel `ch`'s queue (timeout, death): the servers it
    /// may have boosted fall back to what they still owe.
    pub(crate) fn sender_left(&mut self, ch: u16) {
        for c in crate::proc::tids() {
            let th = &self.threads[c as usize];
            if th.state == State::AwaitingReply && th.msg.chan == ch && th.msg.server != NO_THREAD {
                let server = th.msg.server;
                if self.threads[server as usize].prio != self.threads[server as usize].base_prio {
                    self.unboost(server);
                }
            }
        }
    }

    /// Boost whoever is serving requests from channel `ch`.
    fn boost_servers(&mut self, ch: u16, prio: u8) {
        for s in crate::proc::tids() {
            let th = &self.threads[s as usize];
            if th.state == State::AwaitingReply && th.msg.chan == ch && th.msg.server != NO_THREAD {
                let server = th.msg.server;
                self.boost(server, prio);
            }
        }
    }

    /// Drop `t` back to the highest of its base priority, the clients it
    /// still holds requests from, and the senders queued behind those
    /// requests (they are waiting for `t` too).
    fn unboost(&mut self, t: Tid) {
        let mut held = 0;
        for c in crate::proc::tids() {
            let th = &self.threads[c as usize];
            if th.state == State::AwaitingReply && th.msg.server == t {
                held = held.max(th.prio);
                if th.msg.chan != NO_CHANNEL {
                    let queued = self.channels.slot(th.msg.chan).senders;
                    held = queued.iter(&self.threads).map(|q| self.threads[q as usize].prio).fold(held, u8::max);
                }
            }
        }
        let new = self.threads[t as usize].base_prio.max(held);
        if new == self.threads[t as usize].prio {
            return;
        }
        if self.threads[t as usize].state == State::Runnable {
            self.sched.remove(&mut self.threads, t);
            self.threads[t as usize].prio = new;
            self.sched.enqueue(&mut self.threads, t);
        } else {
            self.threads[t as usize].prio = new;
        }
    }
}
