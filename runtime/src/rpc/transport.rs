//! What the serve loop needs from a channel, behind a small trait so the
//! same handler runs on a kernel channel ([`ChannelTransport`]) and, in
//! `cargo test`, on an in-process queue ([`super::host::HostChannel`]).

use abi::{Error, FOREVER, PAGE_SIZE};

use crate::ipc::{Answer as IpcAnswer, Channel, Window};

/// A capability to pass with a reply: our token and the rights to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub token: u64,
    pub rights: abi::RightsMask,
}

/// The answer to the message being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub id: u64,
    pub result: u64,
    /// Reply bytes at the start of the window.
    pub len: usize,
    pub cap: Option<Grant>,
}

/// A message, with the window holding its bytes.
pub struct Incoming<'a> {
    /// Names the message in its answer.
    pub id: u64,
    pub tag: u64,
    pub size: usize,
    /// A capability that came with it (its token here), or 0.
    pub cap: u64,
    /// The bytes (the first `size`), and where the reply is written.
    pub window: &'a mut [u8; PAGE_SIZE],
}

/// A channel as the serve loop sees it.
pub trait Transport {
    /// Send `answer` (if any), then wait for the next message. `Err` when
    /// the channel is gone (or, with an answer, when that answer could not
    /// be delivered: call again without one).
    fn receive(&mut self, answer: Option<Answer>) -> Result<Incoming<'_>, Error>;
    /// Send `answer` alone.
    fn reply(&mut self, answer: Answer) -> Result<(), Error>;
    /// Answer message `id`, held since an earlier receive, with `data`.
    /// Called only between messages (the window holds nothing).
    fn reply_held(&mut self, id: u64, result: u64, data: &[u8], cap: Option<Grant>) -> Result<(), Error>;
    /// Forget a capability a message brought that no one took.
    fn drop_cap(&mut self, token: u64);
}

/// The kernel channel transport: one window page, replies through
/// `ReplyRecv` (one kernel entry per request) unless a capability goes
/// with the reply.
pub struct ChannelTransport {
    chan: Channel,
    window: Window,
    timeout_ns: u64,
}

impl ChannelTransport {
    /// Serve `chan` (which needs RECEIVE) through a fresh window.
    pub fn new(chan: Channel) -> Result<ChannelTransport, Error> {
        Ok(ChannelTransport { chan, window: Window::new()?, timeout_ns: FOREVER })
    }

    /// Give up waiting for a message after `ns` (the serve loop then
    /// returns `Timeout`, and can be called again): for a server with
    /// work of its own between requests.
    pub fn set_timeout(&mut self, ns: u64) {
        self.timeout_ns = ns;
    }

    pub fn channel(&self) -> &Channel {
        &self.chan
    }
}

impl Transport for ChannelTransport {
    #[inline]
    fn receive(&mut self, answer: Option<Answer>) -> Result<Incoming<'_>, Error> {
        let plain = match answer {
            Some(a) if a.cap.is_some() => {
                self.reply(a)?;
                None
            }
            a => a.map(|a| IpcAnswer::new(a.id, a.result, a.len)),
        };
        let (m, window) = self.chan.reply_recv(plain, &mut self.window, self.timeout_ns)?.into_parts();
        Ok(Incoming { id: m.cookie, tag: m.tag, size: m.size, cap: m.cap, window })
    }

    fn reply(&mut self, a: Answer) -> Result<(), Error> {
        // SAFETY: the reply bytes are the start of the window, which holds
        // this message; no slice of it is alive (the `Incoming` that
        // borrowed it has ended).
        unsafe { answer_from(a.id, a.result, self.window.addr(), a.len, a.cap) }
    }

    fn reply_held(&mut self, id: u64, result: u64, data: &[u8], cap: Option<Grant>) -> Result<(), Error> {
        // SAFETY: `data` is the serve loop's own buffer, only read.
        unsafe { answer_from(id, result, data.as_ptr() as u64, data.len(), cap) }
    }

    fn drop_cap(&mut self, token: u64) {
        let _ = crate::caps::drop_cap(token);
    }
}

/// Answer message `id` with `len` bytes at `buf` and the capability, if
/// any. If the kernel refuses to pass the capability on (our token is
/// stale, the client's table is full), the client still gets an answer:
/// the `Delegation` framing error.
///
/// # Safety
/// As for [`crate::ipc::reply_from`].
unsafe fn answer_from(id: u64, result: u64, buf: u64, len: usize, cap: Option<Grant>) -> Result<(), Error> {
    let (token, rights) = cap.map_or((0, abi::RightsMask::NONE), |g| (g.token, g.rights));
    // SAFETY: the caller's contract.
    match unsafe { crate::ipc::reply_from(id, result, buf, len, token, rights) } {
        Err(Error::LimitReached | Error::Incapable) if cap.is_some() => {
            let status = super::wire::result_word(super::WireError::Delegation.status(), 0);
            // SAFETY: no reply bytes.
            unsafe { crate::ipc::reply_from(id, status, 0, 0, 0, abi::RightsMask::NONE) }
        }
        r => r,
    }
}
