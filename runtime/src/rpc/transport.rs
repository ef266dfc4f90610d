//! What the serve loop needs from a channel, behind a small trait so the
//! same handler runs on a kernel channel ([`ChannelTransport`]) and, in
//! `cargo test`, on an in-process queue ([`super::host::HostChannel`]).

use abi::{Error, FOREVER, PAGE_SIZE};

use crate::ipc::{Answer as IpcAnswer, Channel, Window};

/// A capability to pass with a reply: our token and the rights to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub token: u64,
    pub rights: u32,
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
}

impl ChannelTransport {
    /// Serve `chan` (which needs RECEIVE) through a fresh window.
    pub fn new(chan: Channel) -> Result<ChannelTransport, Error> {
        Ok(ChannelTransport { chan, window: Window::new()? })
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
        let (m, window) = self.chan.reply_recv(plain, &mut self.window, FOREVER)?.into_parts();
        Ok(Incoming { id: m.cookie, tag: m.tag, size: m.size, cap: m.cap, window })
    }

    fn reply(&mut self, a: Answer) -> Result<(), Error> {
        match a.cap {
            Some(g) => match crate::ipc::reply_cap(a.id, a.result, a.len, g.token, g.rights) {
                // The capability could not go (our token is stale, the
                // client's table is full): the client still gets an answer.
                Err(Error::LimitReached | Error::Incapable) => {
                    let status = super::wire::result_word(super::WireError::Delegation.status(), 0);
                    crate::ipc::reply(a.id, status, 0)
                }
                r => r,
            },
            None => crate::ipc::reply(a.id, a.result, a.len),
        }
    }

    fn reply_held(&mut self, id: u64, result: u64, data: &[u8], cap: Option<Grant>) -> Result<(), Error> {
        // Today's kernel answers a held message from the window it arrived
        // in, so the data goes there first (the window is free: the current
        // message was answered before this is called).
        let page = self.window_page();
        let len = data.len().min(PAGE_SIZE);
        page[..len].copy_from_slice(&data[..len]);
        self.reply(Answer { id, result, len, cap })
    }

    fn drop_cap(&mut self, token: u64) {
        let _ = crate::caps::drop_cap(token);
    }
}

impl ChannelTransport {
    fn window_page(&mut self) -> &mut [u8; PAGE_SIZE] {
        // SAFETY: the window is our own mapped page (`Window::new`) and no
        // message is in it between messages (a lent page was unmapped by
        // its reply); `&mut self` keeps other users out.
        unsafe { &mut *(self.window.addr() as *mut [u8; PAGE_SIZE]) }
    }
}
