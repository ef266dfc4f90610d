//! The framing shared by clients and the serve loop: operations, the
//! result word, framing errors, and bounded decoding.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::MaxSize;

/// Largest message (and reply) in bytes.
pub const MAX_MESSAGE: usize = abi::MAX_MESSAGE;

/// One operation of a protocol: its request struct.
pub trait Op: Serialize + DeserializeOwned + MaxSize {
    /// The tag that names it.
    const OP: u64;
    /// What a successful call returns.
    type Reply: Serialize + DeserializeOwned + MaxSize;
    /// The protocol's error enum.
    type Error: ProtocolError;
    /// Travels in one 4 KiB page, which is also the reply's data.
    const PAGE: bool = false;
    /// Bytes a message of this operation has: room for the request and for
    /// the reply (a reply is at most as long as its message).
    const MESSAGE: usize = if Self::PAGE {
        MAX_MESSAGE
    } else {
        max(max(Self::POSTCARD_MAX_SIZE, Self::Reply::POSTCARD_MAX_SIZE), Self::Error::BODY_MAX)
    };
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// A protocol's request enum (made by [`crate::protocol!`]).
pub trait Request: Sized {
    /// Every operation number.
    const OPS: &'static [u64];
    /// Decode the message of operation `op`.
    fn decode(op: u64, msg: &[u8]) -> Result<Self, WireError>;
}

/// A protocol's error enum of plain codes (made by [`crate::error_codes!`]).
pub trait ErrorCode: Copy + core::fmt::Debug {
    fn code(self) -> u16;
    fn from_code(code: u16) -> Option<Self>;
}

/// How a protocol's errors travel: as a code in the result word
/// ([`crate::error_codes!`]), or as a postcard value that may carry data
/// ([`crate::error_values!`]).
pub trait ProtocolError: Sized + core::fmt::Debug {
    /// Most reply-body bytes an error takes (room the message must have).
    const BODY_MAX: usize;
    /// The result word of the error, writing any body into `body`.
    fn to_reply(&self, body: &mut [u8]) -> u64;
    /// The error a reply with `status` and `body` carries, if it is one.
    fn from_reply(status: u32, word_data: u32, body: &[u8]) -> Option<Self>;
}

/// Status of an error value carried in the result word itself: its
/// postcard encoding (up to 4 bytes) in the word's upper half. Lies between
/// the codes and the framing errors. Small errors go this way, so a reply
/// without a body (to `SendCap`) still says which error it is.
pub const ERROR_IN_WORD: u32 = 0x1_0000;
/// Status of an error value in the reply body (word's upper half: its
/// length), for encodings over 4 bytes.
pub const ERROR_IN_BODY: u32 = 0x1_00ff;

/// [`ProtocolError::to_reply`] for a postcard error value.
pub fn value_to_reply<E: Serialize>(e: &E, body: &mut [u8]) -> u64 {
    let mut word = [0u8; 4];
    if encode(e, &mut word).is_some() {
        return result_word(ERROR_IN_WORD, 0) | (u32::from_le_bytes(word) as u64) << 32;
    }
    match encode(e, body) {
        Some(n) => result_word(ERROR_IN_BODY, n),
        None => result_word(WireError::NoReplyRoom.status(), 0),
    }
}

/// [`ProtocolError::from_reply`] for a postcard error value.
pub fn value_from_reply<E: DeserializeOwned>(status: u32, word_data: u32, body: &[u8]) -> Option<E> {
    let bytes = word_data.to_le_bytes();
    let from = match status {
        ERROR_IN_WORD => &bytes[..],
        ERROR_IN_BODY => body.get(..word_data as usize)?,
        _ => return None,
    };
    match postcard::take_from_bytes::<E>(from) {
        // A body holds the error and nothing else; the word's unused bytes
        // are zeros.
        Ok((e, rest)) if status == ERROR_IN_WORD && rest.iter().all(|&b| b == 0) => Some(e),
        Ok((e, [])) => Some(e),
        _ => None,
    }
}

/// Errors of the framing itself, answered by the serve loop before any
/// handler runs. Their status values lie above every protocol's codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The body is not a valid encoding of the request.
    Malformed = 0x1_0001,
    /// The message ends inside the body.
    Truncated = 0x1_0002,
    /// The message is longer than the operation allows.
    Oversized = 0x1_0003,
    /// The tag names no operation of the protocol.
    UnknownOperation = 0x1_0004,
    /// A page operation did not come in exactly one 4 KiB page.
    NeedsPage = 0x1_0005,
    /// The reply does not fit in the message the client sent.
    NoReplyRoom = 0x1_0006,
    /// The kernel refused to pass the reply's capability on.
    Delegation = 0x1_0007,
}

impl WireError {
    pub const ALL: [WireError; 7] = [
        WireError::Malformed,
        WireError::Truncated,
        WireError::Oversized,
        WireError::UnknownOperation,
        WireError::NeedsPage,
        WireError::NoReplyRoom,
        WireError::Delegation,
    ];

    #[inline]
    pub fn status(self) -> u32 {
        self as u32
    }

    pub fn from_status(s: u32) -> Option<WireError> {
        WireError::ALL.into_iter().find(|w| w.status() == s)
    }
}

/// Status of success.
pub const OK: u32 = 0;

/// The reply's result word: status and reply body length.
#[inline]
pub const fn result_word(status: u32, body_len: usize) -> u64 {
    status as u64 | (body_len as u64) << 32
}

/// Split a result word into (status, body length).
#[inline]
pub const fn split_result(word: u64) -> (u32, usize) {
    (word as u32, (word >> 32) as usize)
}

/// Decode operation `O` from a whole message.
#[inline]
pub fn decode<O: Op>(msg: &[u8]) -> Result<O, WireError> {
    if O::PAGE {
        if msg.len() != MAX_MESSAGE {
            return Err(WireError::NeedsPage);
        }
    } else if msg.len() > O::MESSAGE {
        return Err(WireError::Oversized);
    }
    // The rest of the message is room for the reply.
    match postcard::take_from_bytes::<O>(msg) {
        Ok((v, _)) => Ok(v),
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(WireError::Truncated),
        Err(_) => Err(WireError::Malformed),
    }
}

/// postcard output into a slice. Short runs (varints, small fields) are
/// copied byte by byte: a call to `memcpy` costs more than the copy (and
/// the stores are volatile, or LLVM turns the loop back into that call).
struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl postcard::ser_flavors::Flavor for Out<'_> {
    type Output = usize;

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        *self.buf.get_mut(self.at).ok_or(postcard::Error::SerializeBufferFull)? = b;
        self.at += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self.at + data.len();
        let dst = self.buf.get_mut(self.at..end).ok_or(postcard::Error::SerializeBufferFull)?;
        if data.len() <= 16 {
            for (d, &b) in dst.iter_mut().zip(data) {
                // SAFETY: `d` is a valid byte of the output.
                unsafe { core::ptr::write_volatile(d, b) };
            }
        } else {
            dst.copy_from_slice(data);
        }
        self.at = end;
        Ok(())
    }

    #[inline]
    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.at)
    }
}

/// Encode `v` at the start of `buf`; returns the bytes used, or None if
/// it does not fit.
#[inline]
pub fn encode<T: Serialize + ?Sized>(v: &T, buf: &mut [u8]) -> Option<usize> {
    postcard::serialize_with_flavor(v, Out { buf, at: 0 }).ok()
}

/// Whether all operation numbers differ (for the compile-time check).
pub const fn distinct(ops: &[u64]) -> bool {
    let mut i = 0;
    while i < ops.len() {
        let mut j = i + 1;
        while j < ops.len() {
            if ops[i] == ops[j] {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}
