//! Typed request/reply protocols over channels (postcard framing), the
//! generic serve loop, clients, and a host transport for `cargo test`.
//!
//! One protocol = one request enum built by [`protocol!`] from one struct
//! per operation; each operation names its reply type and the protocol's
//! error enum ([`Op`]). A protocol lives in the library target of its
//! server crate (`servers/vfs` holds `vfs::proto`), so clients depend on
//! the protocol and a typed client, never on the server.
//!
//! # Framing
//! - **tag** = the operation number ([`Op::OP`]).
//! - **message** = the postcard body of the operation's request struct.
//!   Bytes after the body are room for the reply (the kernel lets a reply
//!   be at most as long as the message), so a client sends
//!   [`Op::MESSAGE`] bytes: the larger of the request's and the reply's
//!   worst-case encodings. A message longer than that is *oversized*.
//!   An operation marked `page` travels in exactly one 4 KiB page (lent,
//!   not copied, when page-aligned); its reply data is the page itself.
//! - **reply** result word = `status | body_len << 32` ([`wire`]): status 0
//!   and `body_len` bytes of postcard reply body, or a protocol error: a
//!   code (1..=0xFFFF, [`ErrorCode`], made by [`error_codes!`]) or, for a
//!   protocol whose errors carry data ([`error_values!`]), a postcard error
//!   value in the word's upper half ([`wire::ERROR_IN_WORD`], up to 4
//!   bytes: a `SendCap` reply has no body) or in the body
//!   ([`wire::ERROR_IN_BODY`]); or a framing error ([`WireError`]).
//!
//! Every bound is a compile-time constant from
//! `postcard::experimental::max_size::MaxSize`, checked against the 4 KiB
//! message limit when the protocol is declared.

mod client;
#[cfg(not(target_os = "none"))]
pub mod host;
mod serve;
mod transport;
pub mod wire;

pub use client::{decode_reply, encode_request, CallError, Client};
pub use postcard::experimental::max_size::MaxSize;
pub use serve::{run_server, run_server_on, serve, Call, Done, Handler, Held};
pub use transport::{ChannelTransport, Grant, Incoming, Transport};
pub use wire::{ErrorCode, Op, ProtocolError, Request, WireError};

/// Declare a protocol: its request enum, one struct per operation with its
/// number, reply type, and an optional `page` marker, and the protocol's
/// error enum. Checks at compile time that every message fits in 4 KiB
/// and that no two operations share a number.
///
/// ```ignore
/// runtime::protocol! {
///     pub enum Request: Error {
///         Find(Find) = 1 -> Found;
///         Load(Load) = 2 -> (), page;
///     }
/// }
/// ```
#[macro_export]
macro_rules! protocol {
    ($(#[$m:meta])* $vis:vis enum $name:ident : $err:ty {
        $($(#[$vm:meta])* $var:ident($ty:ty) = $op:literal -> $reply:ty $(, $page:ident)?;)*
    }) => {
        $(#[$m])*
        #[derive(Debug)]
        #[allow(clippy::large_enum_variant)]
        $vis enum $name { $($(#[$vm])* $var($ty),)* }

        $(impl $crate::rpc::Op for $ty {
            const OP: u64 = $op;
            type Reply = $reply;
            type Error = $err;
            const PAGE: bool = $crate::protocol!(@page $($page)?);
        })*

        impl $crate::rpc::Request for $name {
            const OPS: &'static [u64] = &[$($op,)*];
            #[inline]
            fn decode(op: u64, msg: &[u8]) -> Result<Self, $crate::rpc::WireError> {
                match op {
                    $($op => $crate::rpc::wire::decode::<$ty>(msg).map($name::$var),)*
                    _ => Err($crate::rpc::WireError::UnknownOperation),
                }
            }
        }

        const _: () = {
            $(assert!(<$ty as $crate::rpc::Op>::MESSAGE <= $crate::rpc::wire::MAX_MESSAGE, "a message exceeds 4 KiB");)*
            $(assert!(!<$ty as $crate::rpc::Op>::PAGE
                || <<$ty as $crate::rpc::Op>::Reply as $crate::rpc::MaxSize>::POSTCARD_MAX_SIZE == 0,
                "a page operation's reply is the page");)*
            assert!($crate::rpc::wire::distinct(<$name as $crate::rpc::Request>::OPS), "two operations share a number");
        };
    };
    (@page page) => { true };
    (@page) => { false };
}

/// Declare a protocol's error enum with explicit codes (1..=0xFFFF; 0 is
/// success and higher values are framing errors).
#[macro_export]
macro_rules! error_codes {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $v:ident = $n:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name { $($(#[$vm])* $v = $n,)* }
        impl $crate::rpc::ErrorCode for $name {
            #[inline]
            fn code(self) -> u16 { self as u16 }
            #[inline]
            fn from_code(c: u16) -> Option<Self> { match c { $($n => Some($name::$v),)* _ => None } }
        }
        impl $crate::rpc::ProtocolError for $name {
            const BODY_MAX: usize = 0;
            #[inline]
            fn to_reply(&self, _: &mut [u8]) -> u64 { $crate::rpc::wire::result_word(*self as u32, 0) }
            #[inline]
            fn from_reply(status: u32, _: u32, _: &[u8]) -> Option<Self> {
                u16::try_from(status).ok().and_then(<$name as $crate::rpc::ErrorCode>::from_code)
            }
        }
        const _: () = { $(assert!($n != 0, "error code 0 means success");)* };
    };
}

/// Make a serde enum (derived `Serialize`, `Deserialize`, `MaxSize`) a
/// protocol's error type whose variants may carry data: it travels as a
/// postcard value ([`wire::ERROR_IN_WORD`] or [`wire::ERROR_IN_BODY`]).
#[macro_export]
macro_rules! error_values {
    ($name:ty) => {
        impl $crate::rpc::ProtocolError for $name {
            const BODY_MAX: usize = <$name as $crate::rpc::MaxSize>::POSTCARD_MAX_SIZE;
            #[inline]
            fn to_reply(&self, body: &mut [u8]) -> u64 { $crate::rpc::wire::value_to_reply(self, body) }
            #[inline]
            fn from_reply(status: u32, word: u32, body: &[u8]) -> Option<Self> {
                $crate::rpc::wire::value_from_reply(status, word, body)
            }
        }
    };
}

#[cfg(test)]
mod tests;
