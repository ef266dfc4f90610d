//! Channels: send, receive, reply, names, capability transfer.
//!
//! A server receives into a [`Window`]: a page-aligned 4 KiB slot of its
//! address space. Small messages are copied into it; a page-aligned 4 KiB
//! message from a writable page is *lent*: the sender's page appears at the
//! window until the reply, and the sender's other threads cannot touch it
//! meanwhile (the page is not present for them: touching it is a fault that
//! ends the process). Reply data is written into the window and its first
//! `len` bytes go back to the sender's buffer; the sender learns `len`
//! ([`Reply::len`]).
//!
//! A message the server answers later is [`Received::hold`]: the window is
//! free for the next message, and the [`Held`] message is answered with
//! bytes the server names ([`Held::reply`]), never with whatever the window
//! holds by then (the kernel refuses reply data from a window that has since
//! received another message).
//!
//! The kernel changes the window behind the program's back (every receive
//! writes it, every reply of a lent page unmaps it), so the window's bytes
//! are reachable only through the [`Received`] message, which borrows the
//! window mutably and ends with the reply: no slice can outlive the message
//! it shows.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::call::{
    CallArgs, MsgWords, NameArgs, NameRegisterArgs, NoArgs, ReceiveArgs, ReceiveResults, ReplyArgs, ReplyRecvArgs,
    ReplyWaitArgs, SendArgs, SendCapArgs, SendResults, WindowLen, CALLED, IN_REGISTERS, MSG_WORDS, REG_MESSAGE,
};
use abi::{Error, MapFlags, RightsMask, SendFlags, SyscallClass, FOREVER, NO_REPLY, PAGE_SIZE};

use crate::sys::calls;

/// A capability for a channel.
#[derive(Debug, PartialEq, Eq)]
pub struct Channel(u64);

/// What a call gets back: the server's result, how many reply bytes it
/// wrote to the start of the buffer, and a capability (its token here) or 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub result: u64,
    pub len: usize,
    pub cap: u64,
}

impl From<SendResults> for Reply {
    #[inline]
    fn from(r: SendResults) -> Reply {
        Reply { result: r.result, cap: r.cap, len: r.reply_len as usize }
    }
}

/// A message kept unanswered by [`Received::hold`]. Not `Copy`: it is
/// answered once, with the bytes the server names.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a held message's sender waits until it is answered"]
pub struct Held {
    cookie: u64,
}

impl Held {
    /// The message's cookie (for logs; replies go through `self`).
    #[inline]
    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// Answer with `result` and `data` (at most the message's size; copied
    /// into the sender's buffer).
    #[inline]
    pub fn reply(self, result: u64, data: &[u8]) -> Result<(), Error> {
        self.reply_cap(result, data, 0, RightsMask::NONE)
    }

    /// [`Self::reply`] carrying capability `cap` with at most `rights`.
    pub fn reply_cap(self, result: u64, data: &[u8], cap: u64, rights: impl Into<RightsMask>) -> Result<(), Error> {
        // SAFETY: the kernel only reads `data`.
        unsafe { reply_from(self.cookie, result, data.as_ptr() as u64, data.len(), cap, rights) }
    }
}

/// `Reply` with `len` bytes at `buf`.
///
/// # Safety
/// `buf..buf + len` is read by the kernel; if it is a window holding a lent
/// page, the reply unmaps that page, so no slice of it may survive.
#[inline]
pub unsafe fn reply_from(cookie: u64, result: u64, buf: u64, len: usize, cap: u64, rights: impl Into<RightsMask>) -> Result<(), Error> {
    let args = ReplyArgs { result, buf, reply_len: len as u64, cap, rights: rights.into() };
    // SAFETY: the caller's contract.
    unsafe { calls::REPLY.call(cookie, args) }.map(|_| ())
}

/// A received message, holding its window until it is answered.
#[derive(Debug)]
pub struct Received<'w> {
    /// Names the message in a reply.
    pub cookie: u64,
    pub tag: u64,
    /// Bytes in the window.
    pub size: usize,
    /// A capability that came with it (its token here), or 0.
    pub cap: u64,
    window: &'w mut Window,
}

/// What [`Channel::reply_recv`] answers: a message's cookie, result and
/// reply length (taken from a [`Received`], which it ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    cookie: u64,
    result: u64,
    len: usize,
}

/// A received message's numbers, without its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub cookie: u64,
    pub tag: u64,
    pub size: usize,
    pub cap: u64,
}

impl Answer {
    /// The answer to message `cookie`: `result` and the first `len` bytes
    /// of the window it arrived in.
    #[inline]
    pub const fn new(cookie: u64, result: u64, len: usize) -> Answer {
        Answer { cookie, result, len }
    }
}

impl<'w> Received<'w> {
    #[inline]
    fn new(r: ReceiveResults, window: &'w mut Window) -> Self {
        Received { cookie: r.cookie, tag: r.tag, size: r.size as usize, cap: r.cap, window }
    }

    /// The message's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the window holds this message (copied in, or a lent page
        // mapped there) until the reply, which consumes `self`; the `&mut`
        // borrow of the window keeps any other access out.
        unsafe { core::slice::from_raw_parts(self.window.addr as *const u8, self.size.min(PAGE_SIZE)) }
    }

    /// The whole window, to write the reply into (its first `len` bytes go
    /// back with [`Self::reply`]).
    #[inline]
    pub fn window(&mut self) -> &mut [u8; PAGE_SIZE] {
        // SAFETY: as in `data`. A message always sits in a writable page:
        // copies need a writable window, and only writable pages are lent.
        unsafe { &mut *(self.window.addr as *mut [u8; PAGE_SIZE]) }
    }

    /// Answer with `result` and the first `len` bytes of the window.
    #[inline]
    pub fn reply(self, result: u64, len: usize) -> Result<(), Error> {
        self.reply_cap(result, len, 0, RightsMask::NONE)
    }

    /// [`Self::reply`] carrying capability `cap` with at most `rights`.
    pub fn reply_cap(self, result: u64, len: usize, cap: u64, rights: impl Into<RightsMask>) -> Result<(), Error> {
        // SAFETY: the kernel reads the window `self` borrows, and may unmap
        // a lent page there; `self` is consumed, so no slice of it survives.
        unsafe { reply_from(self.cookie, result, self.window.addr, len, cap, rights) }
    }

    /// Split into the message's numbers and its window's bytes, for a
    /// transport that owns the window and answers by cookie. The slice
    /// borrows the window, so it ends before the window's next use.
    #[inline]
    pub fn into_parts(self) -> (Message, &'w mut [u8; PAGE_SIZE]) {
        let m = Message { cookie: self.cookie, tag: self.tag, size: self.size, cap: self.cap };
        // SAFETY: as in `window`; the borrow of the window moves to the slice.
        (m, unsafe { &mut *(self.window.addr as *mut [u8; PAGE_SIZE]) })
    }

    /// The answer for [`Channel::reply_recv`].
    #[inline]
    pub fn answer(self, result: u64, len: usize) -> Answer {
        Answer { cookie: self.cookie, result, len }
    }

    /// Keep the message unanswered, to answer later with [`Held::reply`];
    /// frees the window for the next message (except a lent page: the
    /// window stays `Busy` until the held message is answered). Copy out
    /// what the answer needs first: the window's bytes will not be its.
    pub fn hold(self) -> Held {
        Held { cookie: self.cookie }
    }
}

impl Channel {
    /// A new channel owned by this process.
    pub fn create() -> Result<Channel, Error> {
        calls::CHANNEL_CREATE.call(crate::class_token(SyscallClass::ChannelCreate), NoArgs {}).map(|r| Channel(r.value))
    }

    /// Wrap a token received some other way.
    #[inline]
    pub const fn from_token(token: u64) -> Channel {
        Channel(token)
    }

    #[inline]
    pub fn token(&self) -> u64 {
        self.0
    }

    /// Destroy the channel (every waiter gets `Closed`).
    pub fn destroy(self) -> Result<(), Error> {
        calls::CHANNEL_DESTROY.call(self.0, NoArgs {}).map(|_| ())
    }

    /// The raw send: `size` bytes at `buf` with [`SendFlags`].
    ///
    /// # Safety
    /// Without `READ_ONLY` the receiver may write the buffer (a lent page,
    /// or reply data): `buf..buf + size` must then be memory nothing else
    /// reads or writes until this returns.
    #[inline]
    pub unsafe fn send_raw(&self, tag: u64, buf: *const u8, size: usize, timeout_ns: u64, flags: SendFlags) -> Result<Reply, Error> {
        let args = SendArgs { tag, size: size as u64, buf: buf as u64, timeout: timeout_ns, flags };
        // SAFETY: the caller's contract.
        unsafe { calls::SEND.call(self.0, args) }.map(Reply::from)
    }

    /// Send `msg` and wait for the reply's result value. `msg` is only read
    /// (copied, never lent); use [`Self::call`] for reply data or zero-copy.
    #[inline]
    pub fn send(&self, tag: u64, msg: &[u8]) -> Result<u64, Error> {
        self.send_timeout(tag, msg, FOREVER)
    }

    /// [`Self::send`] giving up after `timeout_ns` (0: only if a receiver waits).
    #[inline]
    pub fn send_timeout(&self, tag: u64, msg: &[u8], timeout_ns: u64) -> Result<u64, Error> {
        // SAFETY: READ_ONLY: the kernel only reads `msg`.
        unsafe { self.send_raw(tag, msg.as_ptr(), msg.len(), timeout_ns, SendFlags::READ_ONLY) }.map(|r| r.result)
    }

    /// Send the first `len` bytes of `buf`; reply data comes back into
    /// the start of `buf` (`Reply::len` bytes). A page-aligned 4 KiB `buf`
    /// is lent to the server, not copied: what the server writes there is
    /// what we see.
    ///
    /// Up to [`REG_MESSAGE`] bytes from a buffer of at least that size
    /// travel in registers (`Call`), both ways: the kernel touches no memory
    /// for them, and the words go straight between `buf` and the registers.
    /// (From a shorter buffer, staging the words costs more than the copy
    /// saves: measured, a tag-only or 8-byte call is cheaper from memory.)
    #[inline]
    pub fn call(&self, tag: u64, buf: &mut [u8], len: usize) -> Result<Reply, Error> {
        let len = len.min(buf.len());
        if len <= REG_MESSAGE && buf.len() >= REG_MESSAGE {
            return self.call_words(tag, buf, len);
        }
        // SAFETY: `buf` is borrowed mutably for the whole call.
        unsafe { self.send_raw(tag, buf.as_mut_ptr(), len, FOREVER, SendFlags::empty()) }
    }

    /// [`Self::call`] in registers: the first `len` (at most
    /// [`REG_MESSAGE`]) bytes of `buf` out, the reply's bytes back.
    #[inline]
    pub fn call_words(&self, tag: u64, buf: &mut [u8], len: usize) -> Result<Reply, Error> {
        let len = len.min(buf.len()).min(REG_MESSAGE);
        let mut spare = core::mem::MaybeUninit::<MsgWords>::uninit();
        // The words go out straight from `buf` when it has 64 bytes (the
        // kernel clears those past `len`), else from a copy.
        let mut short = [0u64; MSG_WORDS];
        let src = if buf.len() >= REG_MESSAGE {
            buf.as_ptr()
        } else {
            // SAFETY: `len <= buf.len() < 64` bytes into the 64 of `short`.
            unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), short.as_mut_ptr() as *mut u8, len) };
            short.as_ptr() as *const u8
        };
        // SAFETY: `src` has 64 readable bytes (checked above).
        let (w0, w1) = unsafe { (src.cast::<u64>().read_unaligned(), src.cast::<u64>().add(1).read_unaligned()) };
        let args = CallArgs { tag, size: len as u64, timeout: FOREVER, w0, w1 };
        // A whole reply is stored straight into `buf` (only then: 64 bytes,
        // and it had them); anything shorter lands in `spare`.
        let dst = if buf.len() >= REG_MESSAGE { buf.as_mut_ptr() } else { spare.as_mut_ptr() as *mut u8 };
        // SAFETY: `Call` touches no memory of ours; `src`, `dst` and `spare`
        // are ours (`buf` is borrowed mutably for the call).
        let r = Reply::from(unsafe { calls::CALL.call(self.0, args, src, dst, spare.as_mut_ptr()) }?);
        let n = r.len.min(len);
        if n != REG_MESSAGE || buf.len() < REG_MESSAGE {
            // SAFETY: a reply that is not a whole one in `buf` was stored
            // in `spare` (`Keep::WholeReplyElseSpare`).
            // `n <= len <= buf.len()` bytes of its 64.
            unsafe { core::ptr::copy_nonoverlapping(spare.as_ptr() as *const u8, buf.as_mut_ptr(), n) };
        }
        Ok(r)
    }

    /// [`Self::send`], taking the capability the reply may carry (its token
    /// here, or 0): how a server hands a client a channel of its own.
    pub fn send_get_cap(&self, tag: u64, msg: &[u8]) -> Result<Reply, Error> {
        // SAFETY: READ_ONLY: the kernel only reads `msg`.
        unsafe { self.send_raw(tag, msg.as_ptr(), msg.len(), FOREVER, SendFlags::READ_ONLY) }
    }

    /// Send `msg` (read only) carrying capability `cap` (the receiver gets
    /// at most `rights`); the reply may carry a capability back.
    pub fn send_cap(&self, tag: u64, msg: &[u8], cap: u64, rights: impl Into<RightsMask>) -> Result<Reply, Error> {
        let args = SendCapArgs { tag, size: msg.len() as u64, buf: msg.as_ptr() as u64, cap, rights: rights.into() };
        calls::SEND_CAP.call(self.0, args).map(Reply::from)
    }

    /// Wait for a message in `window`.
    #[inline]
    pub fn receive<'w>(&self, window: &'w mut Window, timeout_ns: u64) -> Result<Received<'w>, Error> {
        // SAFETY: the kernel writes the window (or maps a lent page there),
        // which `window` borrows mutably for as long as the message lives.
        let mut r = unsafe { calls::RECEIVE.call(self.0, ReceiveArgs { window: window.addr, timeout: timeout_ns }) }?;
        window.regs = r.size & CALLED != 0;
        r.size &= !CALLED;
        Ok(Received::new(r, window))
    }

    /// Answer (if `answer` is given) then receive: one kernel entry per
    /// request in a server loop.
    ///
    /// Waiting forever in a window with a page behind it, answering a
    /// message sent with `Call` (or none) with at most
    /// [`REG_MESSAGE`] bytes, the reply travels in registers and a message
    /// sent with [`Self::call_words`] arrives in them (`ReplyWait`); it is
    /// stored into the window here, so the message reads the same either
    /// way (the window's bytes from its size up to [`REG_MESSAGE`] are then
    /// zero). A message that came in memory is answered from memory
    /// (`ReplyRecv`), the fast way for either.
    #[inline]
    pub fn reply_recv<'w>(&self, answer: Option<Answer>, window: &'w mut Window, timeout_ns: u64) -> Result<Received<'w>, Error> {
        let a = answer.unwrap_or(Answer { cookie: NO_REPLY, result: 0, len: 0 });
        if (window.regs || a.cookie == NO_REPLY) && timeout_ns == FOREVER && window.backed && a.len <= REG_MESSAGE {
            return self.reply_wait(a, window);
        }
        // SAFETY: as in `receive`; the answered message was consumed into
        // `answer`, so nothing still refers to its window.
        let args = ReplyRecvArgs { cookie: a.cookie, result: a.result, reply_len: a.len as u64, window: window.addr, timeout: timeout_ns };
        // SAFETY: as above.
        let mut r = unsafe { calls::REPLY_RECV.call(self.0, args) }?;
        window.regs = r.size & CALLED != 0;
        r.size &= !CALLED;
        Ok(Received::new(r, window))
    }

    /// [`Self::reply_recv`] through `ReplyWait` (`window` has a page).
    #[inline]
    fn reply_wait<'w>(&self, a: Answer, window: &'w mut Window) -> Result<Received<'w>, Error> {
        let page = window.addr as *mut u8;
        // SAFETY: the window is a mapped page (`Window::new`) that `window`
        // borrows mutably; the answered message was consumed into `a`.
        let (w0, w1) = unsafe { (page.cast::<u64>().read(), page.cast::<u64>().add(1).read()) };
        let args = ReplyWaitArgs { cookie: a.cookie, result: a.result, window_len: WindowLen { window: window.addr, len: a.len as u64, poll: false }, w0, w1 };
        // SAFETY: as above; the reply's words are read from the window, and
        // a message in registers is stored there (a message in memory the
        // kernel writes there, or maps a lent page), for the `Received`
        // that borrows the window next.
        let mut r = unsafe { calls::REPLY_WAIT.call(self.0, args, page, page, core::ptr::null_mut()) }?;
        window.regs = r.size & CALLED != 0;
        r.size &= !(IN_REGISTERS | CALLED);
        Ok(Received::new(r, window))
    }

    /// Publish this channel as `name` (`PROVIDER::TYPE`), on the authority
    /// of the program's `Names` capability (its scope must cover the name's
    /// provider).
    pub fn register(&self, name: &str) -> Result<(), Error> {
        self.register_with(name, crate::class_token(SyscallClass::Names))
    }

    /// [`Self::register`] on the authority of the `Names` capability `names`.
    pub fn register_with(&self, name: &str, names: u64) -> Result<(), Error> {
        let args = NameRegisterArgs { name_ptr: name.as_ptr() as u64, name_len: name.len() as u64, names };
        calls::NAME_REGISTER.call(self.0, args).map(|_| ())
    }

    /// Withdraw a name of this channel.
    pub fn deregister(&self, name: &str) -> Result<(), Error> {
        calls::NAME_DEREGISTER.call(self.0, name_args(name)).map(|_| ())
    }

    /// A send capability for the channel published as `name`.
    pub fn find(name: &str) -> Result<Channel, Error> {
        calls::NAME_FIND.call(crate::class_token(SyscallClass::Names), name_args(name)).map(|r| Channel(r.value))
    }
}

/// The arguments naming `name` (the kernel only reads it).
fn name_args(name: &str) -> NameArgs {
    NameArgs { name_ptr: name.as_ptr() as u64, name_len: name.len() as u64 }
}

static NEXT_WINDOW: AtomicU64 = AtomicU64::new(abi::layout::IPC_WINDOWS);

/// A page-aligned 4 KiB receive window.
#[derive(Debug)]
pub struct Window {
    addr: u64,
    /// A page is mapped behind it (so a message that arrives in registers
    /// can be stored there).
    backed: bool,
    /// The message it got last was sent with `Call`: answered in
    /// registers too.
    regs: bool,
}

impl Window {
    /// A window backed by its own page: any message can arrive.
    pub fn new() -> Result<Window, Error> {
        let w = Window::unmapped();
        crate::mem::map_anon(w.addr, PAGE_SIZE as u64, MapFlags::READ | MapFlags::WRITE)?;
        Ok(Window { backed: true, ..w })
    }

    /// A window with nothing mapped behind it: only lent (page-sized,
    /// page-aligned) messages can arrive, and touching it when no message
    /// is held is a fault.
    pub fn unmapped() -> Window {
        // Leave an unmapped page between windows.
        Window { addr: NEXT_WINDOW.fetch_add(2 * PAGE_SIZE as u64, Ordering::Relaxed), backed: false, regs: false }
    }

    /// Where the window is.
    #[inline]
    pub fn addr(&self) -> u64 {
        self.addr
    }
}

/// A page-aligned page of memory, for lent (zero-copy) messages.
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl Page {
    pub const fn zeroed() -> Page {
        Page([0; PAGE_SIZE])
    }
}

/// IPC monitoring (needs the DebugIpc class).
pub mod debug {
    use abi::call::{DebugIpcArgs, DebugIpcResults};
    use abi::debug::{op, ChannelStats, IpcTotals, KernelAccounting, QuotaUse};
    use abi::{Error, Plain, SyscallClass};

    use crate::sys::calls::DEBUG_IPC;

    /// `DebugIpc` operation `op` with operands `a, b, c`.
    ///
    /// # Safety
    /// Whatever the operation writes (see [`abi::debug`]) is memory of the
    /// caller nothing else borrows.
    unsafe fn debug_ipc(op: u64, a: u64, b: u64, c: u64) -> Result<DebugIpcResults, Error> {
        // SAFETY: the caller's contract.
        unsafe { DEBUG_IPC.call(crate::class_token(SyscallClass::DebugIpc), DebugIpcArgs { op, a, b, c }) }
    }

    /// An operation that writes one `T` (at its `a` operand).
    fn read_one<T: Plain + Default>(op: u64) -> Result<T, Error> {
        let mut v = T::default();
        // SAFETY: the kernel writes one `T` into `v`, which we own.
        unsafe { debug_ipc(op, v.as_bytes_mut().as_mut_ptr() as u64, 0, 0) }?;
        Ok(v)
    }

    /// Ids of live channels, as many as fit in `out`: (total, written).
    pub fn list_channels(out: &mut [u64]) -> Result<(usize, usize), Error> {
        // SAFETY: the kernel writes at most `out.len()` ids into `out`.
        unsafe { debug_ipc(op::LIST_CHANNELS, out.as_mut_ptr() as u64, out.len() as u64, 0) }.map(|r| (r.v0 as usize, r.v1 as usize))
    }

    pub fn channel_stats(id: u64) -> Result<ChannelStats, Error> {
        let mut s = ChannelStats::default();
        // SAFETY: the kernel writes one `ChannelStats` into `s`.
        unsafe { debug_ipc(op::CHANNEL_STATS, id, &mut s as *mut _ as u64, 0) }?;
        Ok(s)
    }

    /// The name channel `id` is registered under, written into `out`:
    /// its full length (0: no name).
    pub fn channel_name(id: u64, out: &mut [u8]) -> Result<usize, Error> {
        // SAFETY: the kernel writes at most `out.len()` bytes into `out`.
        unsafe { debug_ipc(op::CHANNEL_NAME, id, out.as_mut_ptr() as u64, out.len() as u64) }.map(|r| r.v0 as usize)
    }

    pub fn trace(on: bool) -> Result<(), Error> {
        // SAFETY: TRACE writes no memory.
        unsafe { debug_ipc(op::TRACE, on as u64, 0, 0) }.map(|_| ())
    }

    pub fn totals() -> Result<IpcTotals, Error> {
        read_one::<IpcTotals>(op::TOTALS)
    }

    /// What the kernel has left of frames and of process, thread, channel,
    /// name and DMA slots.
    pub fn accounting() -> Result<KernelAccounting, Error> {
        read_one::<KernelAccounting>(op::KERNEL_ACCOUNTING)
    }

    /// Our quota and what we use of it.
    pub fn quota_use() -> Result<QuotaUse, Error> {
        read_one::<QuotaUse>(op::QUOTA)
    }

    /// The CR3 value the CPU holds while it runs us, and the kernel's TLB
    /// tagging (`abi::debug::PCID_ON`, `PCID_INVPCID`).
    pub fn address_space() -> Result<(u64, u64), Error> {
        // SAFETY: ADDRESS_SPACE writes no memory.
        unsafe { debug_ipc(op::ADDRESS_SPACE, 0, 0, 0) }.map(|r| (r.v0, r.v1))
    }
}
