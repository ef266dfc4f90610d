//! The host transport: an in-process channel, so every server's handler
//! runs under `cargo test` on Linux exactly as it runs on the kernel
//! (same decoding, same serve loop, same client-side encoding).
//!
//! Messages queue in [`HostChannel`]; [`super::serve`] drains them and
//! returns `Closed` when the queue is empty. Like the kernel, the host
//! copies a message into the window and hands back the first `len` bytes
//! as reply data, refusing a reply longer than its message.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use abi::{Error, PAGE_SIZE};

use super::client::{decode_reply, encode_request, CallError};
use super::serve::{serve, Handler};
use super::transport::{Answer, Grant, Incoming, Transport};
use super::wire::Op;

/// The error of a host call of `O`.
pub type HostCallError<O> = CallError<<O as Op>::Error>;

/// A reply as the client got it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostReply {
    pub result: u64,
    pub data: Vec<u8>,
    pub cap: Option<Grant>,
}

struct Queued {
    id: u64,
    tag: u64,
    data: Vec<u8>,
    cap: u64,
}

/// An in-process channel.
pub struct HostChannel {
    queue: VecDeque<Queued>,
    window: alloc::boxed::Box<[u8; PAGE_SIZE]>,
    /// Messages received and not answered yet: id -> size.
    open: BTreeMap<u64, usize>,
    replies: BTreeMap<u64, HostReply>,
    next_id: u64,
    /// Capabilities the serve loop dropped.
    pub dropped_caps: Vec<u64>,
}

impl Default for HostChannel {
    fn default() -> Self {
        Self::new()
    }
}

impl HostChannel {
    pub fn new() -> HostChannel {
        HostChannel {
            queue: VecDeque::new(),
            window: alloc::boxed::Box::new([0; PAGE_SIZE]),
            open: BTreeMap::new(),
            replies: BTreeMap::new(),
            next_id: 1,
            dropped_caps: Vec::new(),
        }
    }

    /// Queue a raw message (with capability token `cap`, or 0); returns
    /// its id. More than 4 KiB is refused as the kernel refuses it.
    pub fn send(&mut self, tag: u64, data: &[u8], cap: u64) -> Result<u64, Error> {
        if data.len() > PAGE_SIZE {
            return Err(Error::TooLarge);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back(Queued { id, tag, data: data.to_vec(), cap });
        Ok(id)
    }

    /// The reply to message `id`, once there is one.
    pub fn take_reply(&mut self, id: u64) -> Option<HostReply> {
        self.replies.remove(&id)
    }

    /// Send `data` as `tag`, serve, and return the reply.
    pub fn raw_call<H: Handler>(&mut self, h: &mut H, tag: u64, data: &[u8]) -> Option<HostReply> {
        let id = self.send(tag, data, 0).ok()?;
        serve(self, h);
        self.take_reply(id)
    }

    /// Call operation `O` on handler `h` as a [`super::Client`] would.
    pub fn call<O: Op, H: Handler>(&mut self, h: &mut H, req: &O) -> Result<O::Reply, CallError<O::Error>> {
        self.call_cap(h, req, 0).map(|(r, _)| r)
    }

    /// [`Self::call`] passing capability `cap`; also returns the reply's grant.
    pub fn call_cap<O: Op, H: Handler>(&mut self, h: &mut H, req: &O, cap: u64) -> Result<(O::Reply, Option<Grant>), HostCallError<O>> {
        let mut buf = alloc::vec![0u8; PAGE_SIZE];
        let len = encode_request(req, &mut buf)?;
        let id = self.send(O::OP, &buf[..len], cap)?;
        serve(self, h);
        let r = self.take_reply(id).ok_or(CallError::Ipc(Error::Closed))?;
        Ok((decode_reply::<O>(r.result, &r.data)?, r.cap))
    }

    /// Call page operation `O` with `page`; returns the page as written.
    pub fn call_page<O: Op, H: Handler>(&mut self, h: &mut H, req: &O, page: &mut [u8; PAGE_SIZE]) -> Result<O::Reply, CallError<O::Error>> {
        encode_request(req, page)?;
        let id = self.send(O::OP, page, 0)?;
        serve(self, h);
        let r = self.take_reply(id).ok_or(CallError::Ipc(Error::Closed))?;
        page[..r.data.len()].copy_from_slice(&r.data);
        decode_reply::<O>(r.result, &[])
    }

    fn answer(&mut self, a: Answer, data: Option<&[u8]>) -> Result<(), Error> {
        let size = *self.open.get(&a.id).ok_or(Error::InvalidArgument)?;
        if a.len > size {
            return Err(Error::InvalidArgument);
        }
        self.open.remove(&a.id);
        let data = data.unwrap_or(&self.window[..a.len]).to_vec();
        self.replies.insert(a.id, HostReply { result: a.result, data, cap: a.cap });
        Ok(())
    }
}

impl Transport for HostChannel {
    fn receive(&mut self, answer: Option<Answer>) -> Result<Incoming<'_>, Error> {
        if let Some(a) = answer {
            self.answer(a, None)?;
        }
        let m = self.queue.pop_front().ok_or(Error::Closed)?;
        self.window[..m.data.len()].copy_from_slice(&m.data);
        self.open.insert(m.id, m.data.len());
        Ok(Incoming { id: m.id, tag: m.tag, size: m.data.len(), cap: m.cap, window: &mut self.window })
    }

    fn reply(&mut self, a: Answer) -> Result<(), Error> {
        self.answer(a, None)
    }

    fn reply_held(&mut self, id: u64, result: u64, data: &[u8], cap: Option<Grant>) -> Result<(), Error> {
        self.answer(Answer { id, result, len: data.len(), cap }, Some(data))
    }

    fn drop_cap(&mut self, token: u64) {
        self.dropped_caps.push(token);
    }
}
