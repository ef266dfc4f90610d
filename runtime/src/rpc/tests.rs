//! Host tests of the framing, the serve loop and the host transport,
//! with a small protocol of their own.

use heapless::Vec as HVec;
use serde::{Deserialize, Serialize};

use super::host::HostChannel;
use super::wire::{decode, result_word, split_result, MAX_MESSAGE};
use super::*;

crate::error_codes! {
    pub enum TestError {
        Refused = 1,
        Empty = 2,
    }
}

#[derive(Debug, Serialize, Deserialize, MaxSize, PartialEq)]
pub struct Echo {
    data: HVec<u8, 64>,
    flag: bool,
}
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Hold;
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Release {
    value: u32,
}
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Fill {
    byte: u8,
}
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Big {
    data: HVec<u8, 2000>,
}

crate::protocol! {
    pub enum TestRequest: TestError {
        Echo(Echo) = 1 -> Echo;
        Hold(Hold) = 2 -> u32;
        Release(Release) = 3 -> ();
        Fill(Fill) = 4 -> (), page;
        Big(Big) = 5 -> u16;
    }
}

#[derive(Default)]
struct Server {
    held: std::vec::Vec<Held>,
    calls: u32,
}

impl Handler for Server {
    type Request = TestRequest;
    fn handle(&mut self, req: TestRequest, mut call: Call<'_>) -> Done {
        self.calls += 1;
        match req {
            TestRequest::Echo(e) if e.data.is_empty() => call.err(TestError::Empty),
            TestRequest::Echo(e) => call.reply::<Echo>(Ok(Echo { data: e.data.iter().map(|b| !b).collect(), flag: !e.flag })),
            TestRequest::Hold(_) => {
                let (h, done) = call.hold();
                self.held.push(h);
                done
            }
            TestRequest::Release(r) => {
                if r.value == 0 {
                    return call.err(TestError::Refused);
                }
                for h in self.held.drain(..) {
                    call.complete::<Hold>(h, Ok(r.value));
                }
                call.reply::<Release>(Ok(()))
            }
            TestRequest::Fill(f) => {
                call.page().fill(f.byte);
                call.page_done()
            }
            TestRequest::Big(b) => call.reply::<Big>(Ok(b.data.len() as u16)),
        }
    }
}

fn echo(n: usize) -> Echo {
    Echo { data: (0..n as u8).collect(), flag: true }
}

#[test]
fn request_reply_round_trip() {
    let (mut ch, mut s) = (HostChannel::new(), Server::default());
    let r = ch.call(&mut s, &echo(5)).unwrap();
    assert_eq!(r.data.as_slice(), &[!0, !1, !2, !3, !4]);
    assert!(!r.flag);
    assert_eq!(ch.call(&mut s, &echo(0)), Err(CallError::Server(TestError::Empty)));
    assert_eq!(ch.call(&mut s, &Release { value: 0 }), Err(CallError::Server(TestError::Refused)));
}

#[test]
fn bounds_are_the_worst_case_encodings() {
    assert_eq!(Echo::POSTCARD_MAX_SIZE, 1 + 64 + 1);
    assert_eq!(<Echo as Op>::MESSAGE, 66);
    assert_eq!(<Big as Op>::MESSAGE, 2 + 2000);
    assert_eq!(<Fill as Op>::MESSAGE, MAX_MESSAGE);
    // A full request encodes to exactly its bound, and the bound fits.
    let full = Echo { data: HVec::from_slice(&[0xff; 64]).unwrap(), flag: true };
    let mut out = [0u8; 128];
    assert_eq!(postcard::to_slice(&full, &mut out).unwrap().len(), Echo::POSTCARD_MAX_SIZE);
    let mut buf = [0u8; 256];
    assert_eq!(encode_request(&full, &mut buf).unwrap(), 66);
}

#[test]
fn bad_frames_get_error_replies_and_serving_goes_on() {
    let (mut ch, mut s) = (HostChannel::new(), Server::default());
    let status = |r: Option<host::HostReply>| split_result(r.unwrap().result).0;
    // Unknown operation.
    assert_eq!(status(ch.raw_call(&mut s, 99, &[1, 2])), WireError::UnknownOperation.status());
    // Not a valid body: a bool that is 7.
    assert_eq!(status(ch.raw_call(&mut s, 1, &[1, 0, 7])), WireError::Malformed.status());
    // Truncated: length prefix 5, two bytes.
    assert_eq!(status(ch.raw_call(&mut s, 1, &[5, 1, 2])), WireError::Truncated.status());
    assert_eq!(status(ch.raw_call(&mut s, 1, &[])), WireError::Truncated.status());
    // Oversized: more than Echo's 66 bytes.
    assert_eq!(status(ch.raw_call(&mut s, 1, &[0; 67])), WireError::Oversized.status());
    // A page operation without a page.
    assert_eq!(status(ch.raw_call(&mut s, 4, &[1])), WireError::NeedsPage.status());
    // 4 KiB of garbage to every operation.
    let garbage: std::vec::Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    for &op in TestRequest::OPS {
        let st = status(ch.raw_call(&mut s, op, &garbage));
        // Any page is a valid Fill (its first byte is the fill byte).
        assert_eq!(st == 0, op == Fill::OP, "op {op}: status {st:#x}");
    }
    // No handler saw any of these but the page op with garbage, which is a
    // valid Fill; the server still works.
    assert_eq!(s.calls, 1);
    assert_eq!(ch.call(&mut s, &echo(3)).unwrap().data.len(), 3);
}

#[test]
fn a_reply_without_room_is_an_error_not_a_hang() {
    let (mut ch, mut s) = (HostChannel::new(), Server::default());
    // A Hold sent without the room its u32 reply needs.
    let id = ch.send(Hold::OP, &[], 0).unwrap();
    ch.call(&mut s, &Release { value: 1000 }).unwrap();
    let r = ch.take_reply(id).unwrap();
    assert_eq!(split_result(r.result).0, WireError::NoReplyRoom.status());
}

#[test]
fn page_operations_fill_the_page() {
    let (mut ch, mut s) = (HostChannel::new(), Server::default());
    let mut page = [0u8; 4096];
    ch.call_page(&mut s, &Fill { byte: 0xab }, &mut page).unwrap();
    assert!(page.iter().all(|&b| b == 0xab));
}

#[test]
fn deferred_replies_come_from_their_own_buffer() {
    let (mut ch, mut s) = (HostChannel::new(), Server::default());
    let mut buf = [0u8; 64];
    let n = encode_request(&Hold, &mut buf).unwrap();
    let a = ch.send(Hold::OP, &buf[..n], 0).unwrap();
    let b = ch.send(Hold::OP, &buf[..n], 0).unwrap();
    serve(&mut ch, &mut s);
    assert!(ch.take_reply(a).is_none() && ch.take_reply(b).is_none());
    // Another client is served while they wait.
    assert_eq!(ch.call(&mut s, &echo(2)).unwrap().data.len(), 2);
    // A release answers both, with their own data, and itself.
    ch.call(&mut s, &Release { value: 300 }).unwrap();
    for id in [a, b] {
        let r = ch.take_reply(id).unwrap();
        assert_eq!(decode_reply::<Hold>(r.result, &r.data), Ok(300));
    }
}

#[test]
fn capabilities_nobody_takes_are_dropped() {
    let (mut ch, mut s) = (HostChannel::new(), Server::default());
    ch.call_cap(&mut s, &echo(1), 77).unwrap();
    // And a bad frame's capability too.
    ch.send(99, &[], 78).unwrap();
    serve(&mut ch, &mut s);
    assert_eq!(ch.dropped_caps, [77, 78]);
}

#[test]
fn result_words_and_typed_errors() {
    assert_eq!(split_result(result_word(5, 1234)), (5, 1234));
    assert_eq!(decode_reply::<Release>(result_word(2, 0), &[]), Err(CallError::Server(TestError::Empty)));
    assert_eq!(decode_reply::<Release>(result_word(9, 0), &[]), Err(CallError::BadReply));
    for w in WireError::ALL {
        assert_eq!(decode_reply::<Release>(result_word(w.status(), 0), &[]), Err(CallError::Wire(w)));
    }
    // Trailing bytes in a reply body are a bad reply.
    assert_eq!(decode_reply::<Release>(result_word(0, 1), &[0]), Err(CallError::BadReply));
}

/// Arbitrary bytes never panic the decoder of any operation.
#[test]
fn decoding_arbitrary_bytes_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = [0u8; 4096];
    for i in 0..20_000 {
        let len = match i % 4 {
            0 => (x % 8) as usize,
            1 => (x % 80) as usize,
            2 => (x % 4097) as usize,
            _ => 4096,
        };
        for b in buf[..len].iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for op in TestRequest::OPS.iter().copied().chain([0, 6, u64::MAX]) {
            let _ = TestRequest::decode(op, &buf[..len]);
        }
        let _ = decode::<Echo>(&buf[..len]);
    }
}

/// A protocol whose errors carry data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, MaxSize)]
pub enum ValueError {
    Plain,
    Device { status: u8, error: u8 },
    Long { a: u32, b: u32 },
}
crate::error_values!(ValueError);

#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Fail {
    which: u8,
}
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Later;

crate::protocol! {
    pub enum ValueRequest: ValueError {
        Fail(Fail) = 1 -> u8;
        Later(Later) = 2 -> ();
    }
}

#[derive(Default)]
struct ValueServer {
    held: Option<Held>,
}

fn value_error(which: u8) -> ValueError {
    match which {
        0 => ValueError::Plain,
        1 => ValueError::Device { status: 0x51, error: 0x04 },
        _ => ValueError::Long { a: u32::MAX, b: 0x8000_0000 },
    }
}

impl Handler for ValueServer {
    type Request = ValueRequest;
    fn handle(&mut self, req: ValueRequest, mut call: Call<'_>) -> Done {
        match req {
            ValueRequest::Fail(f) if f.which == 9 => call.reply::<Fail>(Ok(9)),
            ValueRequest::Fail(f) => {
                if let Some(h) = self.held.take() {
                    call.complete::<Later>(h, Err(value_error(f.which)));
                }
                call.reply::<Fail>(Err(value_error(f.which)))
            }
            ValueRequest::Later(_) => {
                let (h, done) = call.hold();
                self.held = Some(h);
                done
            }
        }
    }
}

#[test]
fn errors_that_carry_data_come_back_whole() {
    let (mut ch, mut s) = (HostChannel::new(), ValueServer::default());
    assert_eq!(ch.call(&mut s, &Fail { which: 9 }), Ok(9));
    for which in 0..3 {
        assert_eq!(ch.call(&mut s, &Fail { which }), Err(CallError::Server(value_error(which))), "error {which}");
    }
    // The message has room for the largest error's body.
    assert_eq!(<Fail as Op>::MESSAGE, ValueError::POSTCARD_MAX_SIZE);
    // A held request answered with an error that carries data.
    let id = ch.send(Later::OP, &[0; <Later as Op>::MESSAGE], 0).unwrap();
    serve(&mut ch, &mut s);
    ch.call(&mut s, &Fail { which: 1 }).unwrap_err();
    let r = ch.take_reply(id).unwrap();
    assert_eq!(decode_reply::<Later>(r.result, &r.data), Err(CallError::Server(value_error(1))));
}

#[test]
fn small_error_values_travel_in_the_result_word() {
    use super::wire::{value_to_reply, ERROR_IN_BODY, ERROR_IN_WORD};
    let mut body = [0u8; 16];
    // Device { .. } is 3 bytes: in the word, no body (a SendCap reply).
    let w = value_to_reply(&value_error(1), &mut body);
    assert_eq!(split_result(w).0, ERROR_IN_WORD);
    assert_eq!(decode_reply::<Fail>(w, &[]), Err(CallError::Server(value_error(1))));
    // Long { .. } is 11 bytes: in the body.
    let w = value_to_reply(&value_error(2), &mut body);
    assert_eq!(split_result(w), (ERROR_IN_BODY, 11));
    assert_eq!(decode_reply::<Fail>(w, &body), Err(CallError::Server(value_error(2))));
    assert_eq!(decode_reply::<Fail>(w, &body[..10]), Err(CallError::BadReply), "body cut short");
    // Junk in the word, trailing bytes, an unknown variant: bad replies.
    assert_eq!(decode_reply::<Fail>(result_word(ERROR_IN_WORD, 0) | 0x0900 << 32, &[]), Err(CallError::BadReply));
    assert_eq!(decode_reply::<Fail>(result_word(ERROR_IN_WORD, 0) | 7 << 32, &[]), Err(CallError::BadReply));
    assert_eq!(decode_reply::<Fail>(result_word(ERROR_IN_BODY, 12), &[2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x80, 0x80, 0x80, 0x80, 0x08, 0]), Err(CallError::BadReply));
    // A code protocol does not read value errors, nor the reverse.
    assert_eq!(decode_reply::<Release>(w, &body), Err(CallError::BadReply));
    assert_eq!(decode_reply::<Fail>(result_word(2, 0), &[]), Err(CallError::BadReply));
    // No room for the body: the framing says so.
    assert_eq!(split_result(value_to_reply(&value_error(2), &mut body[..4])).0, WireError::NoReplyRoom.status());
}
