//! The IPC fast path, in Rust.
//!
//! On the machine the entry stub first runs the assembly fast path
//! (`arch::x86_64::fastpath`), this one's twin for the cases it takes,
//! which passes everything else on here unchanged; host tests run this
//! one. It remains the reference for both: what the assembly takes, it
//! takes under these conditions and with these effects.
//!
//! Every request costs two syscalls: the client's `Send`, which usually
//! finds its server already waiting, and the server's next `ReplyRecv`,
//! which answers and usually finds nobody else queued. These two cases get
//! a straight-line path, as in seL4: it runs only when nothing unusual is
//! involved (no capability transfer, no priority change, no timeout to arm,
//! nobody more urgent ready, tracing off) and switches directly to the
//! other side. If any condition fails it returns `false` having changed
//! nothing that matters, and the general path in `ipc/mod.rs` — which
//! handles every case and is the reference — runs instead. Both paths move
//! data with the same helpers (`route`, `carry`, `give_back`, `unlend`), so
//! they cannot disagree about what reaches the other side; a delivery marks
//! held messages at the same window with the same `displace`, and a
//! displaced message is left to the general path.
//!
//! The entry stub sends `Send`, `ReplyRecv`, `Call` and `ReplyWait` to
//! dispatchers of their own (`syscall_dispatch_send`, ...; one compare and
//! a jump table), into which these functions are inlined, so the other
//! calls do not pay for their registers. A server switched to by a call
//! runs on its caller's time slice (`Kernel::on_behalf`); a caller whose
//! slice ran out meanwhile gets its reply through the general path, which
//! puts it behind its equals.
//!
//! Two things outside this file make the `Call`/`ReplyWait` pair cheap: the
//! thread that leaves *parks* (`arch::x86_64::trap::Switch`), so a switch
//! between two parked threads is the dispatcher returning into the other's
//! exit, and each thread keeps its last channel lookup here
//! ([`crate::cap::hint`]).

use abi::call::{arg_index, ArgRegs, CALLED, IN_REGISTERS, REG_MESSAGE};
use abi::{CapKind, SendFlags, Syscall};

use crate::kernel::Kernel;
use crate::mem::user;
use crate::proc::thread::decode_cookie;
use crate::proc::{Message, State, NO_THREAD};

use super::{ReplySrc, NO_CHANNEL};

const PAGE: u64 = abi::PAGE_SIZE as u64;

impl Kernel {
    /// The index of the live channel behind `token` in the current process,
    /// if it grants `need`. `None` leaves judging to the general path.
    ///
    /// The thread's hint ([`crate::cap::hint`]) answers for the token it
    /// last looked up here, while it holds; a full lookup that succeeds
    /// renews it.
    #[inline(always)]
    fn fast_channel(&mut self, token: u64, need: abi::ChannelRights) -> Option<u16> {
        let th = &self.threads[self.current as usize];
        if th.hint.holds(token) {
            let need = need.bits() as u8;
            return (th.hint_rights & need == need).then_some(th.hint_chan);
        }
        core::hint::cold_path();
        self.fast_channel_lookup(token, need)
    }

    /// [`Self::fast_channel`] without a hint: the table, then the channel.
    #[inline(always)]
    fn fast_channel_lookup(&mut self, token: u64, need: abi::ChannelRights) -> Option<u16> {
        // (Never while tracing: see `cap::hint`.)
        debug_assert!(!self.ipc.trace, "a hint filled while tracing");
        let t = self.current as usize;
        let p = self.proc_of(self.current);
        let cap = *self.procs[p].caps.as_ref()?.get(token)?;
        if cap.kind != CapKind::Channel {
            return None;
        }
        self.channels.get(cap.object, cap.gen)?;
        let th = &mut self.threads[t];
        th.hint = crate::cap::hint::ChanHint::now(token);
        th.hint_chan = cap.object as u16;
        th.hint_rights = cap.rights;
        cap.allows(need).then_some(cap.object as u16)
    }

    /// `Send` to a receiver that is already waiting; `args` are `Send`'s
    /// argument registers. Arguments that do not decode (unknown flag
    /// bits) are the general path's to refuse.
    ///
    /// The fields are found by name in `abi::call`'s table and the flags
    /// checked as a [`SendFlags`] with the other cheap refusals, rather
    /// than through `SendArgs::from_regs`: its early return made the
    /// inlined path keep one more value across the copy (+4 instructions
    /// per copying round trip).
    #[inline(always)]
    pub(crate) fn fast_send(&mut self, token: u64, args: &ArgRegs) -> bool {
        const TAG: usize = arg_index(Syscall::Send, "tag");
        const SIZE: usize = arg_index(Syscall::Send, "size");
        const BUF: usize = arg_index(Syscall::Send, "buf");
        const FLAGS: usize = arg_index(Syscall::Send, "flags");
        let (tag, size, buf) = (args[TAG], args[SIZE], args[BUF]);
        if self.ipc.trace || size > abi::MAX_MESSAGE as u64 || SendFlags::from_bits(args[FLAGS]).is_none() {
            return false;
        }
        let flags = SendFlags::from_bits_retain(args[FLAGS]);
        if user::check_range(buf, size).is_err() {
            return false;
        }
        let Some(ch) = self.fast_channel(token, abi::ChannelRights::SEND) else { return false };
        let Some(r) = self.channels.slot(ch).receivers.front() else { return false };
        let t = self.current;
        // The receiver runs next at its own priority: no boost needed, and
        // nothing more urgent is ready.
        let rprio = self.threads[r as usize].prio;
        if rprio < self.threads[t as usize].prio || self.sched.highest().is_some_and(|h| h > rprio) {
            return false;
        }
        let rbuf = self.threads[r as usize].recv_buf;
        let Ok(route) = self.route(t, buf, size, flags, r, rbuf) else { return false };
        // The sender is the caller: its space is the one loaded.
        let Ok((lent, displaced)) = self.carry(route, t, true, buf, size, r, rbuf) else { return false };

        // Nothing fails from here on. (A failed carry above may have written
        // the window: the general path then displaces before its own try.)
        let rp = self.proc_of(r);
        let held = self.unanswered[rp];
        if held != 0 {
            self.displace(rp, rbuf);
        }
        self.unanswered[rp] = held + 1;
        self.channels.slot(ch).receivers.pop_front(&mut self.threads);
        let th = &mut self.threads[t as usize];
        th.msg = Message {
            tag,
            buf,
            recv_va: rbuf,
            loan_pte: displaced,
            xfer_token: 0,
            size: size as u32,
            seq: th.msg.seq.wrapping_add(1),
            chan: ch,
            server: r,
            xfer_rights: 0,
            lent,
            flags: flags.bits() as u8,
            displaced: false,
            regs: false,
        };
        th.state = State::AwaitingReply;
        let cookie = th.cookie(t);
        self.fast_delivered(ch, t, r, [0, cookie, tag, size, 0]);
        true
    }

    /// The end of a fast delivery from `t` to `r` on channel `ch`, whose
    /// message record is written: the counters, `r`'s timeout gone, its
    /// results `ret`, and `r` runs next, on `t`'s time slice.
    #[inline(always)]
    fn fast_delivered(&mut self, ch: u16, t: crate::proc::Tid, r: crate::proc::Tid, ret: [u64; 5]) {
        let c = self.channels.slot(ch);
        c.sends += 1;
        c.receives += 1;
        c.in_flight += 1;
        self.ipc.in_flight += 1;
        self.ipc.delivered += 1;
        if self.threads[r as usize].deadline != u64::MAX {
            self.timer_cancel(r);
        }
        self.threads[r as usize].ret = ret;
        self.run_next(r);
        self.on_behalf = t;
    }

    /// `ReplyRecv` that answers `cookie` and then waits (forever) on an
    /// empty channel.
    #[inline(always)]
    pub(crate) fn fast_reply_recv(&mut self, token: u64, cookie: u64, result: u64, reply_len: u64, buf: u64, timeout: u64) -> bool {
        timeout == abi::FOREVER && buf.is_multiple_of(PAGE) && self.fast_answer(token, cookie, result, reply_len, buf, false)
    }

    /// The fast `ReplyRecv` (`regs` false: reply data from the window) and
    /// `ReplyWait` (`regs`: from the message registers, to a client that
    /// sent with `Call`; such a message is never lent). Always inlined with
    /// `regs` a constant, so each keeps only its own branches.
    #[inline(always)]
    fn fast_answer(&mut self, token: u64, cookie: u64, result: u64, reply_len: u64, buf: u64, regs: bool) -> bool {
        if self.ipc.trace || user::check_page(buf).is_err() {
            return false;
        }
        let Some(ch) = self.fast_channel(token, abi::ChannelRights::RECEIVE) else { return false };
        let c = self.channels.slot(ch);
        if !c.senders.is_empty() || c.irq_pending != 0 {
            return false;
        }
        let Some((c, seq)) = decode_cookie(cookie) else { return false };
        let s = self.current;
        let p = self.proc_of(s);
        let ct = &self.threads[c as usize];
        // Only the thread that received the message answers here (a sibling
        // answering may have to drop that thread's boost: general path),
        // only with data from a window that still holds it (register reply
        // data stands for the window's), and only in the way the client
        // sent (registers or memory; the mixes are the general path's).
        if ct.state != State::AwaitingReply
            || ct.msg.seq != seq
            || ct.msg.server != s
            || reply_len > ct.msg.size as u64
            || ct.msg.displaced
            || ct.msg.regs != regs
        {
            return false;
        }
        // The server keeps its priority (it was not boosted), and the
        // client is at least as urgent as anything ready; a client whose
        // slice ran out while it was served gives way to its equals.
        let cprio = ct.prio;
        let spent = ct.slice == 0;
        let st = &self.threads[s as usize];
        if st.prio != st.base_prio || self.sched.highest().is_some_and(|h| h > cprio || (spent && h == cprio)) {
            return false;
        }
        if !regs && self.give_back(c, p, ReplySrc::Window, reply_len).is_err() {
            return false;
        }

        // Nothing fails from here on.
        if regs {
            self.lend_words(s, c, reply_len);
        } else {
            self.unlend(c);
        }
        let chan = self.threads[c as usize].msg.chan;
        if chan != NO_CHANNEL {
            let rc = self.channels.slot(chan);
            rc.replies += 1;
            rc.in_flight -= 1;
        }
        self.ipc.in_flight -= 1;
        self.unanswered[p] -= 1;
        let ct = &mut self.threads[c as usize];
        let sent = if regs { reply_len } else { ct.msg.written_back(reply_len) };
        ct.msg.server = NO_THREAD;
        ct.ret = [0, result, 0, sent, 0];
        let st = &mut self.threads[s as usize];
        st.recv_buf = buf;
        st.recv_regs = regs;
        st.state = State::RecvBlocked;
        st.wait_obj = ch;
        self.channels.slot(ch).receivers.push_back(&mut self.threads, s);
        self.run_next(c);
        true
    }

    /// `Call` to a receiver waiting in `ReplyWait`: the message goes from
    /// the caller's message registers to the receiver's, with no page-table
    /// work at all. A receiver waiting with a window only, or a server that
    /// holds messages (its window may hold a lent page), is the general
    /// path's.
    #[inline(always)]
    pub(crate) fn fast_call(&mut self, token: u64, args: &ArgRegs) -> bool {
        const TAG: usize = arg_index(Syscall::Call, "tag");
        const SIZE: usize = arg_index(Syscall::Call, "size");
        let (tag, size) = (args[TAG], args[SIZE]);
        if self.ipc.trace || size > REG_MESSAGE as u64 {
            return false;
        }
        let Some(ch) = self.fast_channel(token, abi::ChannelRights::SEND) else { return false };
        let Some(r) = self.channels.slot(ch).receivers.front() else { return false };
        let t = self.current;
        let rt = &self.threads[r as usize];
        let rprio = rt.prio;
        if !rt.recv_regs || rprio < self.threads[t as usize].prio || self.sched.highest().is_some_and(|h| h > rprio) {
            return false;
        }
        let rp = self.proc_of(r);
        if self.unanswered[rp] != 0 {
            return false;
        }

        // Nothing fails from here on.
        self.unanswered[rp] = 1;
        self.channels.slot(ch).receivers.pop_front(&mut self.threads);
        let rbuf = self.threads[r as usize].recv_buf;
        let th = &mut self.threads[t as usize];
        th.msg = Message {
            tag,
            buf: 0,
            recv_va: rbuf,
            loan_pte: 0,
            xfer_token: 0,
            size: size as u32,
            seq: th.msg.seq.wrapping_add(1),
            chan: ch,
            server: r,
            xfer_rights: 0,
            lent: false,
            flags: 0,
            displaced: false,
            regs: true,
        };
        th.state = State::AwaitingReply;
        let cookie = th.cookie(t);
        self.lend_words(t, r, size);
        self.fast_delivered(ch, t, r, [0, cookie, tag, size | IN_REGISTERS | CALLED, 0]);
        true
    }

    /// `ReplyWait` that answers a `Call` (register to register) and then
    /// waits on an empty channel. (`buf` is page-aligned: `WindowLen`
    /// clears the low bits.)
    #[inline(always)]
    pub(crate) fn fast_reply_wait(&mut self, token: u64, cookie: u64, result: u64, reply_len: u64, buf: u64) -> bool {
        self.fast_answer(token, cookie, result, reply_len, buf, true)
    }
}
