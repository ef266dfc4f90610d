//! Channels: send, receive, reply, names, capability transfer.
//!
//! A server receives into a [`Window`]: a page-aligned 4 KiB slot of its
//! address space. Small messages are copied into it; a page-aligned 4 KiB
//! message is *lent*: the sender's page appears at the window until the
//! reply. Reply data is written into the window and its first `len` bytes go
//! back to the sender's buffer.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::{Error, Syscall, SyscallClass, FOREVER, NO_REPLY, PAGE_SIZE};

use crate::sys::call;

/// A capability for a channel.
#[derive(Debug, PartialEq, Eq)]
pub struct Channel(u64);

/// A received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Names the message in `reply`.
    pub cookie: u64,
    pub tag: u64,
    /// Bytes in the window.
    pub size: usize,
    /// A capability that came with it (its token here), or 0.
    pub cap: u64,
}

impl Received {
    #[inline]
    fn from(r: [u64; 4]) -> Received {
        Received { cookie: r[0], tag: r[1], size: r[2] as usize, cap: r[3] }
    }
}

impl Channel {
    /// A new channel owned by this process.
    pub fn create() -> Result<Channel, Error> {
        call(Syscall::ChannelCreate, crate::class_token(SyscallClass::ChannelCreate), [0; 5]).map(|r| Channel(r[0]))
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
        call(Syscall::ChannelDestroy, self.0, [0; 5]).map(|_| ())
    }

    /// The raw send: `size` bytes at `buf` with [`abi::send_flags`].
    /// Returns (result, cap).
    #[inline]
    pub fn send_raw(&self, tag: u64, buf: *const u8, size: usize, timeout_ns: u64, flags: u64) -> Result<(u64, u64), Error> {
        call(Syscall::Send, self.0, [tag, size as u64, buf as u64, timeout_ns, flags]).map(|r| (r[0], r[1]))
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
        self.send_raw(tag, msg.as_ptr(), msg.len(), timeout_ns, abi::send_flags::READ_ONLY).map(|r| r.0)
    }

    /// Send the first `len` bytes of `buf`; reply data comes back into
    /// `buf`. A page-aligned 4 KiB `buf` is lent to the server, not copied:
    /// what the server writes there is what we see.
    #[inline]
    pub fn call(&self, tag: u64, buf: &mut [u8], len: usize) -> Result<u64, Error> {
        let len = len.min(buf.len());
        self.send_raw(tag, buf.as_mut_ptr(), len, FOREVER, 0).map(|r| r.0)
    }

    /// Send `msg` carrying capability `cap` (the receiver gets at most
    /// `rights`). Returns (result, capability from the reply).
    pub fn send_cap(&self, tag: u64, msg: &[u8], cap: u64, rights: u32) -> Result<(u64, u64), Error> {
        call(Syscall::SendCap, self.0, [tag, msg.len() as u64, msg.as_ptr() as u64, cap, rights as u64])
            .map(|r| (r[0], r[1]))
    }

    /// Wait for a message in `window`.
    #[inline]
    pub fn receive(&self, window: &Window, timeout_ns: u64) -> Result<Received, Error> {
        call(Syscall::Receive, self.0, [window.addr, timeout_ns, 0, 0, 0]).map(Received::from)
    }

    /// Reply (if `reply` is `Some((cookie, result, len))`) then receive:
    /// one kernel entry per request in a server loop.
    #[inline]
    pub fn reply_recv(&self, reply: Option<(u64, u64, usize)>, window: &Window, timeout_ns: u64) -> Result<Received, Error> {
        let (cookie, result, len) = reply.unwrap_or((NO_REPLY, 0, 0));
        call(Syscall::ReplyRecv, self.0, [cookie, result, len as u64, window.addr, timeout_ns]).map(Received::from)
    }

    /// Publish this channel as `name` (`PROVIDER::TYPE`).
    pub fn register(&self, name: &str) -> Result<(), Error> {
        call(Syscall::NameRegister, self.0, [name.as_ptr() as u64, name.len() as u64, 0, 0, 0]).map(|_| ())
    }

    /// Withdraw a name of this channel.
    pub fn deregister(&self, name: &str) -> Result<(), Error> {
        call(Syscall::NameDeregister, self.0, [name.as_ptr() as u64, name.len() as u64, 0, 0, 0]).map(|_| ())
    }

    /// A send capability for the channel published as `name`.
    pub fn find(name: &str) -> Result<Channel, Error> {
        call(Syscall::NameFind, crate::class_token(SyscallClass::Names), [name.as_ptr() as u64, name.len() as u64, 0, 0, 0])
            .map(|r| Channel(r[0]))
    }
}

/// Answer message `cookie` with `result` and the first `len` bytes of the window.
#[inline]
pub fn reply(cookie: u64, result: u64, len: usize) -> Result<(), Error> {
    call(Syscall::Reply, cookie, [result, len as u64, 0, 0, 0]).map(|_| ())
}

/// [`reply`] carrying capability `cap` with at most `rights`.
pub fn reply_cap(cookie: u64, result: u64, len: usize, cap: u64, rights: u32) -> Result<(), Error> {
    call(Syscall::Reply, cookie, [result, len as u64, cap, rights as u64, 0]).map(|_| ())
}

static NEXT_WINDOW: AtomicU64 = AtomicU64::new(abi::layout::IPC_WINDOWS);

/// A page-aligned 4 KiB receive window.
#[derive(Debug)]
pub struct Window {
    addr: u64,
}

impl Window {
    /// A window backed by its own page: any message can arrive.
    pub fn new() -> Result<Window, Error> {
        let w = Window::unmapped();
        crate::mem::map_anon(w.addr, PAGE_SIZE as u64, abi::map::READ | abi::map::WRITE)?;
        Ok(w)
    }

    /// A window with nothing mapped behind it: only lent (page-sized,
    /// page-aligned) messages can arrive, and touching it when no message
    /// is held is a fault.
    pub fn unmapped() -> Window {
        // Leave an unmapped page between windows.
        Window { addr: NEXT_WINDOW.fetch_add(2 * PAGE_SIZE as u64, Ordering::Relaxed) }
    }

    #[inline]
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The first `len` bytes of the window.
    #[inline]
    pub fn bytes(&self, len: usize) -> &[u8] {
        // SAFETY: the window is 4 KiB of this process's address space; it is
        // only read after a receive made it valid (backed or lent).
        unsafe { core::slice::from_raw_parts(self.addr as *const u8, len.min(PAGE_SIZE)) }
    }

    /// The window for writing a reply.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub fn bytes_mut(&self, len: usize) -> &mut [u8] {
        // SAFETY: as in `bytes`; the caller holds the message, so nothing
        // else writes the window meanwhile.
        unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, len.min(PAGE_SIZE)) }
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
    use abi::debug::{op, ChannelStats, IpcTotals};
    use abi::{Error, Syscall, SyscallClass};

    use crate::sys::call;

    fn token() -> u64 {
        crate::class_token(SyscallClass::DebugIpc)
    }

    /// Ids of live channels (up to `out.len()`); returns the total count.
    pub fn list_channels(out: &mut [u64]) -> Result<(usize, usize), Error> {
        call(Syscall::DebugIpc, token(), [op::LIST_CHANNELS, out.as_mut_ptr() as u64, out.len() as u64, 0, 0])
            .map(|r| (r[0] as usize, r[1] as usize))
    }

    pub fn channel_stats(id: u64) -> Result<ChannelStats, Error> {
        let mut s = ChannelStats::default();
        call(Syscall::DebugIpc, token(), [op::CHANNEL_STATS, id, &mut s as *mut _ as u64, 0, 0])?;
        Ok(s)
    }

    pub fn trace(on: bool) -> Result<(), Error> {
        call(Syscall::DebugIpc, token(), [op::TRACE, on as u64, 0, 0, 0]).map(|_| ())
    }

    pub fn totals() -> Result<IpcTotals, Error> {
        let mut t = IpcTotals::default();
        call(Syscall::DebugIpc, token(), [op::TOTALS, &mut t as *mut _ as u64, 0, 0, 0])?;
        Ok(t)
    }
}
