//! Typed clients: encode a request, call, decode the reply into the
//! operation's reply type or a typed error.

use abi::{Error, FOREVER, PAGE_SIZE};

use super::wire::{split_result, Op, ProtocolError, WireError, OK};
use crate::ipc::{Channel, Page};

/// Why a call failed, as a Rust enum end to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError<E> {
    /// The server answered with the protocol's error.
    Server(E),
    /// The server refused the frame.
    Wire(WireError),
    /// The kernel refused the call (channel gone, bad capability...).
    Ipc(Error),
    /// The reply does not decode (a server bug or a foreign server).
    BadReply,
}

impl<E> From<Error> for CallError<E> {
    fn from(e: Error) -> Self {
        CallError::Ipc(e)
    }
}

/// Encode `req` into `buf`; returns the message length to send
/// ([`Op::MESSAGE`]: room for the reply included).
#[inline]
pub fn encode_request<O: Op>(req: &O, buf: &mut [u8]) -> Result<usize, CallError<O::Error>> {
    let used = super::wire::encode(req, buf).ok_or(CallError::Wire(WireError::Oversized))?;
    Ok(O::MESSAGE.max(used).min(buf.len()))
}

/// Decode the reply to `O` from its result word and the reply bytes.
#[inline]
pub fn decode_reply<O: Op>(result: u64, data: &[u8]) -> Result<O::Reply, CallError<O::Error>> {
    let (status, len) = split_result(result);
    if status == OK {
        let body = data.get(..len).ok_or(CallError::BadReply)?;
        return match postcard::take_from_bytes::<O::Reply>(body) {
            Ok((v, [])) => Ok(v),
            _ => Err(CallError::BadReply),
        };
    }
    if let Some(w) = WireError::from_status(status) {
        return Err(CallError::Wire(w));
    }
    O::Error::from_reply(status, len as u32, data).map_or(Err(CallError::BadReply), |e| Err(CallError::Server(e)))
}

/// A typed client of a server's channel.
#[derive(Debug, PartialEq, Eq)]
pub struct Client {
    chan: Channel,
}

impl Client {
    pub const fn new(chan: Channel) -> Client {
        Client { chan }
    }

    pub fn channel(&self) -> &Channel {
        &self.chan
    }

    pub fn into_channel(self) -> Channel {
        self.chan
    }

    /// Call operation `O`.
    #[inline]
    pub fn call<O: Op>(&self, req: &O) -> Result<O::Reply, CallError<O::Error>> {
        self.call_get_cap(req).map(|(r, _)| r)
    }

    /// Call `O`, also returning the capability the reply carries (its
    /// token here, or 0).
    #[inline]
    pub fn call_get_cap<O: Op>(&self, req: &O) -> Result<(O::Reply, u64), CallError<O::Error>> {
        // A buffer as small as the operation allows: no 4 KiB stack frame
        // for a small call.
        if O::MESSAGE <= 16 {
            self.call_in::<O, 16>(req)
        } else if O::MESSAGE <= 128 {
            self.call_in::<O, 128>(req)
        } else if O::MESSAGE <= 1024 {
            self.call_in::<O, 1024>(req)
        } else {
            self.call_in::<O, PAGE_SIZE>(req)
        }
    }

    #[inline]
    fn call_in<O: Op, const N: usize>(&self, req: &O) -> Result<(O::Reply, u64), CallError<O::Error>> {
        let mut buf = [0u8; N];
        let len = encode_request(req, &mut buf)?;
        // SAFETY: `buf` is ours and borrowed for the whole call.
        let r = unsafe { self.chan.send_raw(O::OP, buf.as_mut_ptr(), len, FOREVER, abi::SendFlags::empty()) }?;
        // Only the bytes the kernel says the server wrote count.
        Ok((decode_reply::<O>(r.result, &buf[..r.len.min(N)])?, r.cap))
    }

    /// Call `O` passing our capability `cap` (the server gets at most
    /// `rights`). The message is only read, so the reply carries no body.
    pub fn call_with_cap<O: Op>(&self, req: &O, cap: u64, rights: impl Into<abi::RightsMask>) -> Result<O::Reply, CallError<O::Error>> {
        let mut buf = [0u8; PAGE_SIZE];
        let len = encode_request(req, &mut buf)?;
        let r = self.chan.send_cap(O::OP, &buf[..len], cap, rights)?;
        decode_reply::<O>(r.result, &[])
    }

    /// Call page operation `O` in `page`, which the server fills in place.
    #[inline]
    pub fn call_page<O: Op>(&self, req: &O, page: &mut Page) -> Result<O::Reply, CallError<O::Error>> {
        encode_request(req, &mut page.0)?;
        let r = self.chan.call(O::OP, &mut page.0, PAGE_SIZE)?;
        decode_reply::<O>(r.result, &[])
    }
}
