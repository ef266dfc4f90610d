//! The generic serve loop: receive, decode, call the handler, encode and
//! answer through the combined reply-and-receive call.
//!
//! Bad frames never reach the handler: a tag that names no operation, a
//! body that does not decode, a truncated or oversized message each get a
//! [`WireError`] reply and the loop goes on. A handler may hold a request
//! ([`Call::hold`]) and answer it while serving a later one
//! ([`Call::complete`]); held answers are sent from their own buffers after
//! the current reply, so other clients never wait for them.

use alloc::vec::Vec;

use abi::{Error, PAGE_SIZE};
use serde::Serialize;

use super::transport::{Answer, Grant, Transport};
use super::wire::{result_word, Op, ProtocolError, Request, WireError, OK};

/// A server's logic.
pub trait Handler {
    /// The protocol's request enum.
    type Request: Request;
    /// Serve one request; every path ends in a [`Done`] from `call`.
    fn handle(&mut self, req: Self::Request, call: Call<'_>) -> Done;
}

/// A request not answered yet; answer it with [`Call::complete`].
#[derive(Debug, PartialEq, Eq)]
pub struct Held {
    id: u64,
    /// The message's size: the most reply bytes it can take.
    room: usize,
}

/// Proof that a request was answered (or held).
#[must_use]
pub struct Done {
    answer: Option<Answer>,
    stray_cap: u64,
}

struct Pending {
    id: u64,
    result: u64,
    data: Vec<u8>,
    cap: Option<Grant>,
}

/// The request being served: its capability, its window, and the ways to
/// answer it.
pub struct Call<'a> {
    id: u64,
    size: usize,
    cap: u64,
    window: &'a mut [u8; PAGE_SIZE],
    pending: &'a mut Vec<Pending>,
}

impl Call<'_> {
    /// The capability that came with the request (ours from now on); one
    /// not taken is dropped after the reply.
    pub fn take_cap(&mut self) -> Option<u64> {
        let c = core::mem::take(&mut self.cap);
        (c != 0).then_some(c)
    }

    /// The page of a page operation (lent by the client: written in place).
    pub fn page(&mut self) -> &mut [u8; PAGE_SIZE] {
        self.window
    }

    /// Answer a page operation: its data is the page.
    pub fn page_done(self) -> Done {
        let room = self.size;
        self.finish(result_word(OK, 0), room, None)
    }

    /// Answer with operation `O`'s outcome.
    #[inline]
    pub fn reply<O: Op>(self, r: Result<O::Reply, O::Error>) -> Done {
        match r {
            Ok(v) => self.ok(&v),
            Err(e) => self.err(e),
        }
    }

    /// Answer success with `v` as the reply body.
    #[inline]
    pub fn ok<R: Serialize>(self, v: &R) -> Done {
        self.ok_grant(v, None)
    }

    /// Answer success with `v`, passing our capability `token` with at
    /// most `rights`.
    pub fn ok_cap<R: Serialize>(self, v: &R, token: u64, rights: impl Into<abi::RightsMask>) -> Done {
        self.ok_grant(v, Some(Grant { token, rights: rights.into() }))
    }

    fn ok_grant<R: Serialize>(self, v: &R, cap: Option<Grant>) -> Done {
        let room = self.size;
        match super::wire::encode(v, &mut self.window[..room]) {
            Some(n) => self.finish(result_word(OK, n), n, cap),
            None => self.finish(result_word(WireError::NoReplyRoom.status(), 0), 0, None),
        }
    }

    /// Answer with a protocol error.
    #[inline]
    pub fn err<E: ProtocolError>(self, e: E) -> Done {
        let room = self.size;
        let word = e.to_reply(&mut self.window[..room]);
        let len = body_len(word);
        self.finish(word, len, None)
    }

    /// Keep the request unanswered; answer it later with [`Call::complete`].
    pub fn hold(self) -> (Held, Done) {
        let held = Held { id: self.id, room: self.size };
        let stray_cap = self.cap;
        (held, Done { answer: None, stray_cap })
    }

    /// Answer a held request with operation `O`'s outcome (sent after this
    /// request's reply).
    pub fn complete<O: Op>(&mut self, held: Held, r: Result<O::Reply, O::Error>) {
        let mut data = alloc::vec![0u8; held.room];
        let result = match r {
            Ok(v) => match super::wire::encode(&v, &mut data) {
                Some(n) => result_word(OK, n),
                None => result_word(WireError::NoReplyRoom.status(), 0),
            },
            Err(e) => e.to_reply(&mut data),
        };
        data.truncate(body_len(result));
        self.pending.push(Pending { id: held.id, result, data, cap: None });
    }

    #[inline]
    fn finish(self, result: u64, len: usize, cap: Option<Grant>) -> Done {
        Done { answer: Some(Answer { id: self.id, result, len, cap }), stray_cap: self.cap }
    }
}

/// Reply-body bytes a result word says follow (none for an error carried
/// in the word itself).
fn body_len(word: u64) -> usize {
    match super::wire::split_result(word) {
        (super::wire::ERROR_IN_WORD, _) => 0,
        (_, len) => len,
    }
}

/// Serve `transport` with `handler` until the channel is gone; returns why.
pub fn serve<T: Transport, H: Handler>(transport: &mut T, handler: &mut H) -> Error {
    let mut answer: Option<Answer> = None;
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        let had_answer = answer.is_some();
        let m = match transport.receive(answer.take()) {
            Ok(m) => m,
            // The answer's client is gone: receive without it.
            Err(_) if had_answer => continue,
            Err(e) => return e,
        };
        let done = match H::Request::decode(m.tag, &m.window[..m.size.min(PAGE_SIZE)]) {
            Ok(req) => {
                let call = Call { id: m.id, size: m.size.min(PAGE_SIZE), cap: m.cap, window: m.window, pending: &mut pending };
                handler.handle(req, call)
            }
            Err(w) => Done { answer: Some(Answer { id: m.id, result: result_word(w.status(), 0), len: 0, cap: None }), stray_cap: m.cap },
        };
        if done.stray_cap != 0 {
            transport.drop_cap(done.stray_cap);
        }
        answer = done.answer;
        if !pending.is_empty() {
            // Held answers need the window: answer this message first.
            if let Some(a) = answer.take() {
                let _ = transport.reply(a);
            }
            for p in pending.drain(..) {
                let _ = transport.reply_held(p.id, p.result, &p.data, p.cap);
            }
        }
    }
}

/// A server program's main loop: serve `chan` with `handler` on the
/// kernel, logging as `who`; returns the exit code when the channel is gone.
pub fn run_server<H: Handler>(who: &str, chan: crate::ipc::Channel, handler: &mut H) -> i32 {
    match super::ChannelTransport::new(chan) {
        Ok(t) => run_server_on(who, t, handler),
        Err(e) => {
            crate::println!("{who}: no window: {e:?}");
            1
        }
    }
}

/// [`run_server`] over a transport made beforehand: for a server that
/// must have everything it keeps (its window's page) before it tells
/// anyone it is there.
pub fn run_server_on<H: Handler>(who: &str, mut t: super::ChannelTransport, handler: &mut H) -> i32 {
    let e = serve(&mut t, handler);
    crate::println!("{who}: channel gone: {e:?}");
    1
}
