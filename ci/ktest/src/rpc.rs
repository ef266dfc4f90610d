//! A test protocol served through the runtime's serve loop, and the child
//! role that serves it (`ktest child rpc-server [add1|mul3|sub5]`).
//!
//! It covers what the file servers do not: deferred replies, a private
//! channel handed to a client, and a pipeline of services (a `Step` is
//! passed on to the `NEXT` channel, if the server was given one).

use alloc::vec::Vec;

use heapless::Vec as HVec;
use runtime::init_cap;
use runtime::ipc::Channel;
use runtime::rpc::{run_server, Call, Client, Done, Handler, Held, MaxSize};
use serde::{Deserialize, Serialize};

use crate::harness::{CHAN, NEXT};

runtime::error_codes! {
    pub enum TestError {
        Overflow = 1,
        /// The next service in a pipeline failed.
        Next = 2,
        NoChannel = 3,
    }
}

/// `a + b`, or `Overflow`.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Add {
    pub a: u32,
    pub b: u32,
}

/// The bytes reversed.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Echo {
    pub data: HVec<u8, 64>,
}

/// Answered by the next `Release`, with its value.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Hold;

/// Answer every held request with `value`; returns how many.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Release {
    pub value: u64,
}

/// A channel served for this client alone (the reply carries SEND).
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Open;

/// One pipeline stage: apply the server's operation, pass it on.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Step {
    pub value: u64,
}

runtime::protocol! {
    pub enum Request: TestError {
        Add(Add) = 1 -> u32;
        Echo(Echo) = 2 -> HVec<u8, 64>;
        Hold(Hold) = 3 -> u64;
        Release(Release) = 4 -> u32;
        Open(Open) = 5 -> ();
        Step(Step) = 6 -> u64;
    }
}

/// The server.
pub struct TestServer {
    op: fn(u64) -> u64,
    next: Option<Client>,
    held: Vec<Held>,
}

impl TestServer {
    pub fn new(op: &str, next: Option<Client>) -> TestServer {
        let op: fn(u64) -> u64 = match op {
            "add1" => |v| v.wrapping_add(1),
            "mul3" => |v| v.wrapping_mul(3),
            "sub5" => |v| v.wrapping_sub(5),
            _ => |v| v,
        };
        TestServer { op, next, held: Vec::new() }
    }
}

impl Handler for TestServer {
    type Request = Request;

    #[inline]
    fn handle(&mut self, req: Request, mut call: Call<'_>) -> Done {
        match req {
            Request::Add(x) => call.reply::<Add>(x.a.checked_add(x.b).ok_or(TestError::Overflow)),
            Request::Echo(e) => call.reply::<Echo>(Ok(e.data.iter().rev().copied().collect())),
            Request::Hold(_) => {
                let (held, done) = call.hold();
                self.held.push(held);
                done
            }
            Request::Release(r) => {
                let n = self.held.len() as u32;
                for h in self.held.drain(..) {
                    call.complete::<Hold>(h, Ok(r.value));
                }
                call.reply::<Release>(Ok(n))
            }
            Request::Open(_) => match Channel::create() {
                Ok(own) => {
                    let token = own.token();
                    // Served by a thread of ours, for this client alone.
                    match runtime::process::spawn_thread(serve_private, token, 16) {
                        Ok(_) => call.ok_cap(&(), token, abi::ChannelRights::SEND),
                        Err(_) => call.err(TestError::NoChannel),
                    }
                }
                Err(_) => call.err(TestError::NoChannel),
            },
            Request::Step(s) => {
                let v = (self.op)(s.value);
                let out = match &self.next {
                    Some(next) => next.call(&Step { value: v }).map_err(|_| TestError::Next),
                    None => Ok(v),
                };
                call.reply::<Step>(out)
            }
        }
    }
}

fn serve_private(token: u64) {
    run_server("rpc-private", Channel::from_token(token), &mut TestServer::new("", None));
}

/// The child role: serve `CHAN`, passing steps on to `NEXT` if given.
pub fn server(op: &str) -> i32 {
    let chan = Channel::from_token(init_cap(CHAN).unwrap_or(0));
    let next = init_cap(NEXT).map(|t| Client::new(Channel::from_token(t)));
    run_server("rpc-server", chan, &mut TestServer::new(op, next))
}
