//! Message passing: copy and lending paths, queues, timeouts, limits,
//! channel and process death, replies.

use super::*;
use crate::mem::paging::sw;
use abi::exit;

#[test]
fn copy_round_trip_moves_data_both_ways() {
    // Receiver waiting first (direct delivery), then sender queued first.
    for receiver_first in [true, false] {
        let mut w = World::new();
        let r = w.rig(5, 5);
        let request = pattern(1, 100);
        w.write(r.cp, BUF + 8, &request);
        w.write(r.cp, BUF + 108, &[0xEE; 60]);
        let window_frame = w.frame(r.sp, WIN);
        let got = if receiver_first {
            assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
            assert_eq!(w.send(r.c, r.send, 0x77, 100, BUF + 8, FOREVER), blocked(State::AwaitingReply));
            w.status(r.s).ok()
        } else {
            assert_eq!(w.send(r.c, r.send, 0x77, 100, BUF + 8, FOREVER), blocked(State::SendBlocked));
            let v = w.recv(r.s, r.chan, WIN, FOREVER).ok();
            assert_eq!(w.state(r.c), State::AwaitingReply);
            v
        };
        let [cookie, tag, size, cap] = got;
        assert_ne!(cookie, abi::NO_REPLY);
        assert_eq!((tag, size, cap), (0x77, 100, 0));
        assert_eq!(w.read(r.sp, WIN, 100), request, "request bytes did not arrive");
        assert_eq!(w.frame(r.sp, WIN), window_frame, "a 100-byte message must be copied, not lent");
        let answer = pattern(9, 60);
        w.write(r.sp, WIN, &answer);
        assert_eq!(w.reply(r.s, cookie, 0x1234, 60), R::Ok([0; 4]));
        assert_eq!(w.status(r.c), R::Ok([0x1234, 0, 60, 0]), "the client must learn the reply length");
        assert_eq!(w.read(r.cp, BUF + 8, 60), answer, "reply bytes did not arrive");
        assert_eq!(w.read(r.cp, BUF + 68, 40), request[60..], "bytes past reply_len changed");
        assert_eq!(w.read(r.cp, BUF + 108, 60), [0xEE; 60], "bytes past the buffer changed");
        // The cookie is spent.
        assert_eq!(w.reply(r.s, cookie, 0, 0), R::Err(Error::Incapable));
    }
}

#[test]
fn tag_only_message_moves_no_bytes() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    w.write(r.sp, WIN, &[0x5A; 16]);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 0xABCD, 0, 0, FOREVER), blocked(State::AwaitingReply));
    let [cookie, tag, size, cap] = w.status(r.s).ok();
    assert_eq!((tag, size, cap), (0xABCD, 0, 0));
    assert_eq!(w.read(r.sp, WIN, 16), [0x5A; 16], "an empty message wrote into the window");
    // No more reply bytes than the message had.
    assert_eq!(w.reply(r.s, cookie, 1, 1), R::Err(Error::InvalidArgument));
    assert_eq!(w.state(r.c), State::AwaitingReply, "a refused reply answered the client");
    assert_eq!(w.reply(r.s, cookie, 2, 0), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([2, 0, 0, 0]));
}

#[test]
fn messages_over_a_page_are_too_large_and_unaligned_pages_are_copied() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    for size in [abi::MAX_MESSAGE as u64 + 1, 1 << 20, u64::MAX] {
        assert_eq!(w.send(r.c, r.send, 0, size, BUF, FOREVER), R::Err(Error::TooLarge));
    }
    // A full page that is not page-aligned straddles two pages: copied.
    let data = pattern(4, 4096);
    w.write(r.cp, BUF + 16, &data);
    let window_frame = w.frame(r.sp, WIN);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 0, 4096, BUF + 16, FOREVER), blocked(State::AwaitingReply));
    let [cookie, _, size, _] = w.status(r.s).ok();
    assert_eq!(size, 4096);
    assert_eq!(w.frame(r.sp, WIN), window_frame, "an unaligned page was lent");
    assert_eq!(w.read(r.sp, WIN, 4096), data);
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
}

#[test]
fn unknown_send_flags_are_refused() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let all = abi::SendFlags::all().bits();
    assert_eq!(w.sys(r.c, Syscall::Send, [r.send, 0, 0, 0, FOREVER, !all]), R::Err(Error::InvalidArgument));
    assert_eq!(w.k.ipc.in_flight, 0);
    // Also with the server waiting, where the fast path would deliver: it
    // must leave the call to the general path, which refuses it.
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    for bad in [!all, all + 1, 1 << 63] {
        assert_eq!(w.sys(r.c, Syscall::Send, [r.send, 0, 0, 0, FOREVER, bad]), R::Err(Error::InvalidArgument));
        assert_eq!(w.state(r.s), State::RecvBlocked, "flags {bad:#x} delivered");
    }
    assert_eq!(w.k.ipc.in_flight, 0);
    // A bad token comes first, as for every syscall: `Incapable` and the
    // delay, whatever the flags (the arguments decode after the token).
    w.rejected(r.c, Syscall::Send, [r.send ^ 1, 0, 0, 0, FOREVER, !all]);
    w.rejected(r.c, Syscall::MapAnon, [r.send, BUF, PAGE, 1 << 9, 0, 0]);
}

#[test]
fn read_only_send_is_copied_and_gets_no_reply_bytes() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let data = pattern(2, 4096);
    w.write(r.cp, BUF, &data);
    let window_frame = w.frame(r.sp, WIN);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    let ro = abi::SendFlags::READ_ONLY.bits();
    assert_eq!(w.sys(r.c, Syscall::Send, [r.send, 1, 4096, BUF, FOREVER, ro]), blocked(State::AwaitingReply));
    let [cookie, _, size, _] = w.status(r.s).ok();
    assert_eq!(size, 4096);
    assert_eq!(w.frame(r.sp, WIN), window_frame, "a read-only message was lent");
    assert_eq!(w.read(r.sp, WIN, 4096), data);
    w.write(r.sp, WIN, &[0xFF; 64]);
    assert_eq!(w.reply(r.s, cookie, 3, 64), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([3, 0, 0, 0]));
    assert_eq!(w.read(r.cp, BUF, 4096), data, "reply bytes written into a read-only send buffer");
}

#[test]
fn bad_sender_buffers_fail_the_sender_and_spare_the_receiver() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    // Outside user space: refused before anything else.
    for (buf, size) in [(0xffff_8000_0000_0000, 8), (abi::USER_TOP - 4, 8), (u64::MAX - 2, 8), (0, 16)] {
        assert_eq!(w.send(r.c, r.send, 0, size, buf, FOREVER), R::Err(Error::BadAddress), "buffer {buf:#x}");
    }
    // A receiver is waiting: the send fails at once, the receiver keeps waiting.
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 0, 10, UNMAPPED, FOREVER), R::Err(Error::BadAddress));
    let end = BUF + BUF_PAGES * PAGE;
    assert_eq!(w.send(r.c, r.send, 0, 10, end - 5, FOREVER), R::Err(Error::BadAddress), "half-mapped buffer");
    assert_eq!(w.state(r.s), State::RecvBlocked);
    // The same receiver then gets a good message.
    assert_eq!(w.send(r.c, r.send, 7, 4, BUF, FOREVER), blocked(State::AwaitingReply));
    let [cookie, tag, _, _] = w.status(r.s).ok();
    assert_eq!(tag, 7);
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    // Queued with a bad buffer: fails when a receiver takes it; the receiver waits on.
    assert_eq!(w.send(r.c, r.send, 0, 10, UNMAPPED, FOREVER), blocked(State::SendBlocked));
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.status(r.c), R::Err(Error::BadAddress));
    assert_eq!(w.k.ipc.in_flight, 0);
}

#[test]
fn receive_windows_must_be_page_aligned_user_pages() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    for window in [WIN + 8, WIN + PAGE / 2, 0, abi::USER_TOP, abi::USER_TOP - PAGE / 2, 0xffff_8000_0000_0000, u64::MAX] {
        assert_eq!(w.recv(r.s, r.chan, window, FOREVER), R::Err(Error::BadAddress), "window {window:#x}");
    }
    // The last user page is a valid window.
    assert_eq!(w.recv(r.s, r.chan, abi::USER_TOP - PAGE, 0), R::Err(Error::Timeout));
}

#[test]
fn copy_into_an_unmapped_window_fails_the_receiver_and_keeps_the_sender() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    // An unmapped window is fine for waiting (a lent page could go there)...
    assert_eq!(w.recv(r.s, r.chan, UNMAPPED, FOREVER), blocked(State::RecvBlocked));
    // ...but a copied message cannot.
    w.write(r.cp, BUF, b"0123456789");
    assert_eq!(w.send(r.c, r.send, 1, 10, BUF, FOREVER), blocked(State::SendBlocked));
    assert_eq!(w.status(r.s), R::Err(Error::BadAddress));
    // A read-only window fails the same way.
    w.k.map_anon(r.sp, UNMAPPED, PAGE, abi::MapFlags::READ).unwrap();
    assert_eq!(w.recv(r.s, r.chan, UNMAPPED, FOREVER), R::Err(Error::BadAddress));
    assert_eq!(w.state(r.c), State::SendBlocked);
    let [_, tag, size, _] = w.take(r.s, r.chan);
    assert_eq!((tag, size), (1, 10));
    assert_eq!(w.read(r.sp, WIN, 10), b"0123456789");
}

/// A client that lends its page at [`BUF`] to a server waiting at [`WIN`].
struct Loan {
    r: Rig,
    cookie: u64,
    msg: Vec<u8>,
    own: Vec<u8>,
    client_frame: u64,
    window_frame: u64,
}

fn lend(w: &mut World) -> Loan {
    let r = w.rig(5, 5);
    let msg = pattern(3, 4096);
    w.write(r.cp, BUF, &msg);
    let own = vec![0x11; 4096];
    w.write(r.sp, WIN, &own);
    let client_frame = w.frame(r.cp, BUF).unwrap();
    let window_frame = w.frame(r.sp, WIN).unwrap();
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, 4096, BUF, FOREVER), blocked(State::AwaitingReply));
    let [cookie, _, size, _] = w.status(r.s).ok();
    assert_eq!(size, 4096);
    Loan { r, cookie, msg, own, client_frame, window_frame }
}

#[test]
fn lent_page_is_mapped_at_the_window_until_the_reply() {
    let mut w = World::new();
    let l = lend(&mut w);
    let r = l.r;
    assert_eq!(w.frame(r.sp, WIN), Some(l.client_frame), "the window does not map the sender's page");
    assert_eq!(w.frame(r.cp, BUF), None, "the sender can still reach its lent page");
    let f = w.flags(r.sp, WIN).unwrap();
    assert!(f.contains(sw::LOAN) && !f.contains(sw::OWNED), "lent entry marked {f:?}");
    assert!(f.contains(Flags::NO_EXECUTE | Flags::WRITABLE | Flags::USER_ACCESSIBLE), "{f:?}");
    assert_eq!(w.read(r.sp, WIN, 4096), l.msg);
    // The server answers in place.
    w.write(r.sp, WIN, &[0xCD; 32]);
    w.run_as(r.s);
    crate::arch::host::take_flushes();
    assert_eq!(w.reply(r.s, l.cookie, 9, 4096), R::Ok([0; 4]));
    assert!(crate::arch::host::take_flushes().contains(&WIN), "no TLB flush for the window at the reply");
    assert_eq!(w.frame(r.sp, WIN), Some(l.window_frame), "the window's own page was not put back");
    assert!(w.flags(r.sp, WIN).unwrap().contains(sw::OWNED));
    assert_eq!(w.read(r.sp, WIN, 4096), l.own);
    assert_eq!(w.status(r.c), R::Ok([9, 0, 4096, 0]));
    let back = w.read(r.cp, BUF, 4096);
    assert_eq!(back[..32], [0xCD; 32]);
    assert_eq!(back[32..], l.msg[32..]);
    assert_eq!(w.frame(r.cp, BUF), Some(l.client_frame));
}

#[test]
fn lending_to_the_running_receiver_flushes_its_window() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    w.write(r.cp, BUF, &pattern(6, 4096));
    let client_frame = w.frame(r.cp, BUF);
    assert_eq!(w.send(r.c, r.send, 1, 4096, BUF, FOREVER), blocked(State::SendBlocked));
    w.run_as(r.s);
    crate::arch::host::take_flushes();
    let [cookie, ..] = w.recv(r.s, r.chan, WIN, FOREVER).ok();
    assert!(crate::arch::host::take_flushes().contains(&WIN), "stale TLB entry for the window");
    assert_eq!(w.frame(r.sp, WIN), client_frame);
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
}

#[test]
fn read_only_page_is_copied_not_lent() {
    // A server may answer in place in its window; lending a read-only page
    // would make that fault and kill the server, so such a page is copied.
    let mut w = World::new();
    let r = w.rig(5, 5);
    w.k.map_anon(r.cp, UNMAPPED, PAGE, abi::MapFlags::READ).unwrap();
    let window_frame = w.frame(r.sp, WIN);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, 4096, UNMAPPED, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(r.s).ok();
    assert_eq!(w.frame(r.sp, WIN), window_frame, "a read-only page was lent");
    assert!(w.flags(r.sp, WIN).unwrap().contains(Flags::WRITABLE));
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
}

#[test]
fn page_lent_into_an_unmapped_window_is_gone_after_the_reply() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let msg = pattern(8, 4096);
    w.write(r.cp, BUF, &msg);
    assert_eq!(w.recv(r.s, r.chan, UNMAPPED, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, 4096, BUF, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(r.s).ok();
    assert_eq!(w.read(r.sp, UNMAPPED, 4096), msg);
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.frame(r.sp, UNMAPPED), None, "the lent page stayed mapped after the reply");
    assert_eq!(w.try_read(r.sp, UNMAPPED, 1), None);
    assert_eq!(w.read(r.cp, BUF, 4096), msg);
}

#[test]
fn window_holding_an_unanswered_loan_is_busy() {
    let mut w = World::new();
    let l = lend(&mut w);
    let r = l.r;
    let c2 = w.thread(r.cp, 5);
    // Busy at once, or when the next message would land there; either way
    // the next message waits and the loan stays where it is.
    match w.recv(r.s, r.chan, WIN, FOREVER) {
        R::Err(Error::Busy) => assert_eq!(w.send(c2, r.send, 2, 8, BUF + PAGE, FOREVER), blocked(State::SendBlocked)),
        R::Blocked(State::RecvBlocked) => {
            assert_eq!(w.send(c2, r.send, 2, 8, BUF + PAGE, FOREVER), blocked(State::SendBlocked));
            assert_eq!(w.status(r.s), R::Err(Error::Busy));
        }
        other => panic!("receive into a lent window: {other:?}"),
    }
    assert_eq!(w.frame(r.sp, WIN), Some(l.client_frame), "the loan was displaced");
    assert_eq!(w.recv(r.s, r.chan, WIN, 0), R::Err(Error::Busy));
    assert_eq!(w.state(c2), State::SendBlocked, "the second message was lost");
    // Another window is fine.
    let [cookie2, tag, ..] = w.recv(r.s, r.chan, WIN + PAGE, 0).ok();
    assert_eq!(tag, 2);
    assert_eq!(w.reply(r.s, cookie2, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.reply(r.s, l.cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.recv(r.s, r.chan, WIN, 0), R::Err(Error::Timeout));
}

#[test]
fn lent_pages_cannot_be_unmapped_on_either_side() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let c2 = w.thread(r.cp, 5);
    let s_me = w.c(r.sp).me;
    let c_me = w.c(r.cp).me;
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, 4096, BUF + PAGE, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(r.s).ok();
    let unmap = Syscall::Unmap;
    // The receiver's window.
    assert_eq!(w.sys(r.s, unmap, [s_me, WIN, PAGE, 0, 0, 0]), R::Err(Error::Busy));
    assert_eq!(w.sys(r.s, unmap, [s_me, WIN, 2 * PAGE, 0, 0, 0]), R::Err(Error::Busy));
    assert!(w.frame(r.sp, WIN + PAGE).is_some(), "a refused unmap unmapped something");
    assert_eq!(w.sys(r.s, Syscall::MapAnon, [s_me, WIN, PAGE, RW.bits(), 0, 0]), R::Err(Error::AlreadyExists));
    // The sender's page, from another thread of the sender.
    assert_eq!(w.sys(c2, unmap, [c_me, BUF + PAGE, PAGE, 0, 0, 0]), R::Err(Error::Busy));
    assert_eq!(w.sys(c2, unmap, [c_me, BUF, 3 * PAGE, 0, 0, 0]), R::Err(Error::Busy));
    assert!(w.frame(r.cp, BUF).is_some(), "a refused unmap unmapped something");
    // After the reply both may go.
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.sys(c2, unmap, [c_me, BUF + PAGE, PAGE, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.sys(r.s, unmap, [s_me, WIN, PAGE, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.frame(r.sp, WIN), None);
}

#[test]
fn queued_senders_are_served_in_arrival_order() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let other = w.spawn("other client");
    let send2 = w.give(r.sp, r.chan, other, abi::ChannelRights::SEND);
    let senders = [r.c, w.thread(other, 5), w.thread(r.cp, 5), w.thread(other, 5)];
    for (i, &t) in senders.iter().enumerate() {
        let token = if w.k.proc_of(t) == r.cp { r.send } else { send2 };
        assert_eq!(w.send(t, token, 100 + i as u64, 0, 0, FOREVER), blocked(State::SendBlocked));
    }
    for (i, &t) in senders.iter().enumerate() {
        let [cookie, tag, ..] = w.take(r.s, r.chan);
        assert_eq!(tag, 100 + i as u64, "served out of order");
        assert_eq!(w.reply(r.s, cookie, i as u64, 0), R::Ok([0; 4]));
        assert_eq!(w.status(t), R::Ok([i as u64, 0, 0, 0]));
    }
}

#[test]
fn waiting_receivers_take_turns() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let servers = [r.s, w.thread(r.sp, 5), w.thread(r.sp, 5)];
    let clients = [r.c, w.thread(r.cp, 5), w.thread(r.cp, 5)];
    let window = |i: usize| WIN + i as u64 * PAGE;
    for (i, &s) in servers.iter().enumerate() {
        assert_eq!(w.recv(s, r.chan, window(i), FOREVER), blocked(State::RecvBlocked));
    }
    let mut cookies = [0; 3];
    for (i, &c) in clients.iter().enumerate() {
        assert_eq!(w.send(c, r.send, i as u64, 0, 0, FOREVER), blocked(State::AwaitingReply));
        let [cookie, tag, ..] = w.status(servers[i]).ok();
        assert_eq!(tag, i as u64, "message {i} went to the wrong receiver");
        cookies[i] = cookie;
    }
    // They come back in the order 2, 0, 1 and are served in that order.
    for i in [2, 0, 1] {
        assert_eq!(w.reply(servers[i], cookies[i], 0, 0), R::Ok([0; 4]));
        assert_eq!(w.recv(servers[i], r.chan, window(i), FOREVER), blocked(State::RecvBlocked));
    }
    for (n, &i) in [2, 0, 1].iter().enumerate() {
        assert_eq!(w.send(clients[n], r.send, 10 + n as u64, 0, 0, FOREVER), blocked(State::AwaitingReply));
        assert_eq!(w.status(servers[i]).ok()[1], 10 + n as u64, "receiver {i} skipped its turn");
    }
}

#[test]
fn send_and_receive_timeouts_expire_on_the_right_tick() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    assert_eq!(w.send(r.c, r.send, 0, 0, 0, 3 * MS), blocked(State::SendBlocked));
    w.tick(2);
    assert_eq!(w.state(r.c), State::SendBlocked, "send timed out early");
    w.tick(1);
    assert_eq!(w.status(r.c), R::Err(Error::Timeout));
    // Timeouts round up to whole ticks.
    assert_eq!(w.recv(r.s, r.chan, WIN, MS + MS / 2), blocked(State::RecvBlocked));
    w.tick(1);
    assert_eq!(w.state(r.s), State::RecvBlocked, "receive timed out early");
    w.tick(1);
    assert_eq!(w.status(r.s), R::Err(Error::Timeout));
    assert_eq!(w.recv(r.s, r.chan, WIN, 1), blocked(State::RecvBlocked));
    w.tick(1);
    assert_eq!(w.status(r.s), R::Err(Error::Timeout));
    // A message before the deadline cancels the timer, on either side.
    assert_eq!(w.recv(r.s, r.chan, WIN, 5 * MS), blocked(State::RecvBlocked));
    w.tick(2);
    assert_eq!(w.send(r.c, r.send, 4, 0, 0, 5 * MS), blocked(State::AwaitingReply));
    w.tick(10);
    let [cookie, tag, ..] = w.status(r.s).ok();
    assert_eq!(tag, 4);
    assert_eq!(w.state(r.c), State::AwaitingReply, "a delivered message timed out");
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.send(r.c, r.send, 5, 0, 0, 5 * MS), blocked(State::SendBlocked));
    w.tick(2);
    let [cookie, ..] = w.take(r.s, r.chan);
    w.tick(10);
    assert_eq!(w.state(r.c), State::AwaitingReply, "a delivered message timed out");
    assert_eq!(w.reply(r.s, cookie, 8, 0), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([8, 0, 0, 0]));
}

#[test]
fn zero_timeout_never_blocks() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    assert_eq!(w.send(r.c, r.send, 0, 0, 0, 0), R::Err(Error::Timeout));
    assert_eq!(w.recv(r.s, r.chan, WIN, 0), R::Err(Error::Timeout));
    // But what is already there is taken.
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, 0), blocked(State::AwaitingReply));
    let [cookie, tag, ..] = w.status(r.s).ok();
    assert_eq!(tag, 1);
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.send(r.c, r.send, 2, 0, 0, FOREVER), blocked(State::SendBlocked));
    assert_eq!(w.recv(r.s, r.chan, WIN, 0).ok()[1], 2);
    assert_eq!(w.k.channels.live_count(), 1);
}

#[test]
fn sender_queue_holds_channel_queue_depth_then_reports_queue_full() {
    let depth = abi::limits::CHANNEL_QUEUE_DEPTH;
    let mut w = World::new();
    let r = w.rig(5, 5);
    let mut clients = vec![r.c];
    while clients.len() < depth + 2 {
        clients.push(w.thread(r.cp, 5));
    }
    for &c in &clients[..depth] {
        assert_eq!(w.send(c, r.send, 0, 0, 0, FOREVER), blocked(State::SendBlocked));
    }
    let extra = clients[depth];
    assert_eq!(w.send(extra, r.send, 0, 0, 0, FOREVER), R::Err(Error::QueueFull));
    assert_eq!(w.send(extra, r.send, 0, 0, 0, 5 * MS), R::Err(Error::QueueFull));
    // Taking one makes room for one.
    w.take(r.s, r.chan);
    assert_eq!(w.send(extra, r.send, 0, 0, 0, FOREVER), blocked(State::SendBlocked));
    assert_eq!(w.send(clients[depth + 1], r.send, 0, 0, 0, FOREVER), R::Err(Error::QueueFull));
}

#[test]
fn channels_per_process_are_limited() {
    let limit = abi::limits::CHANNELS_PER_PROCESS;
    let mut w = World::new();
    let p = w.spawn("hoarder");
    let t = w.thread(p, 5);
    let tokens: Vec<u64> = (0..limit).map(|_| w.channel(t)).collect();
    let class = w.c(p).chan;
    assert_eq!(w.sys(t, Syscall::ChannelCreate, [class, 0, 0, 0, 0, 0]), R::Err(Error::LimitReached));
    // Others are not affected.
    let q = w.spawn("other");
    let u = w.thread(q, 5);
    w.channel(u);
    // Destroying one makes room again.
    assert_eq!(w.sys(t, Syscall::ChannelDestroy, [tokens[7], 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    w.channel(t);
    assert_eq!(w.sys(t, Syscall::ChannelCreate, [class, 0, 0, 0, 0, 0]), R::Err(Error::LimitReached));
}

#[test]
fn destroying_a_channel_releases_everyone_waiting_with_closed() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let c2 = w.thread(r.cp, 5);
    let c3 = w.thread(r.cp, 5);
    // One request in flight, two queued.
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), blocked(State::SendBlocked));
    let [cookie, ..] = w.take(r.s, r.chan);
    assert_eq!(w.send(c2, r.send, 2, 0, 0, FOREVER), blocked(State::SendBlocked));
    assert_eq!(w.send(c3, r.send, 3, 0, 0, 7 * MS), blocked(State::SendBlocked));
    assert_eq!(w.sys(r.s, Syscall::ChannelDestroy, [r.chan, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.status(c2), R::Err(Error::Closed));
    assert_eq!(w.status(c3), R::Err(Error::Closed));
    // The request already received can still be answered.
    assert_eq!(w.state(r.c), State::AwaitingReply);
    assert_eq!(w.reply(r.s, cookie, 5, 0), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([5, 0, 0, 0]));
    // Both tokens are dead now.
    w.rejected(r.c, Syscall::Send, [r.send, 0, 0, 0, 0, 0]);
    w.rejected(r.s, Syscall::Receive, [r.chan, WIN, 0, 0, 0, 0]);
    // Waiting receivers are released the same way.
    let chan = w.channel(r.s);
    let s2 = w.thread(r.sp, 5);
    let s3 = w.thread(r.sp, 5);
    assert_eq!(w.recv(r.s, chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.recv(s2, chan, WIN + PAGE, 9 * MS), blocked(State::RecvBlocked));
    assert_eq!(w.sys(s3, Syscall::ChannelDestroy, [chan, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.status(r.s), R::Err(Error::Closed));
    assert_eq!(w.status(s2), R::Err(Error::Closed));
    assert_eq!(w.k.ipc_totals().channels, 0);
    assert_eq!(w.k.ipc_totals().in_flight, 0);
}

#[test]
fn owner_death_closes_its_channels_and_fails_requests_in_flight() {
    let mut w = World::new();
    // Everyone but the server first, so that the server's frames can be counted.
    let cp = w.spawn("client");
    let c1 = w.thread(cp, 5);
    let c2 = w.thread(cp, 5);
    let rp = w.spawn("helper");
    let h = w.thread(rp, 5);
    let before = w.free();
    let sp = w.spawn("server");
    let s = w.thread(sp, 5);
    let chan1 = w.channel(s);
    let chan2 = w.channel(s);
    w.write(sp, BUF, b"A::svc");
    assert_eq!(w.sys(s, Syscall::NameRegister, [chan1, BUF, 6, w.c(sp).names, 0, 0]), R::Ok([0; 4]));
    let send = w.give(sp, chan1, cp, abi::ChannelRights::SEND);
    let helper_recv = w.give(sp, chan2, rp, abi::ChannelRights::RECEIVE);
    assert_eq!(w.recv(h, helper_recv, WIN, FOREVER), blocked(State::RecvBlocked));
    // c1's page is lent to the server, c2 waits in the queue.
    let msg = pattern(5, 4096);
    w.write(cp, BUF, &msg);
    let client_frame = w.frame(cp, BUF).unwrap();
    assert_eq!(w.recv(s, chan1, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(c1, send, 1, 4096, BUF, FOREVER), blocked(State::AwaitingReply));
    assert_eq!(w.frame(sp, WIN), Some(client_frame));
    assert_eq!(w.send(c2, send, 2, 0, 0, FOREVER), blocked(State::SendBlocked));

    w.kill(sp, exit::KILLED, 0);
    assert_eq!(w.status(c1), R::Err(Error::PeerDied));
    assert_eq!(w.status(c2), R::Err(Error::Closed));
    assert_eq!(w.status(h), R::Err(Error::Closed));
    assert_eq!(w.frame(cp, BUF), Some(client_frame), "the client lost its lent page");
    assert!(w.used(client_frame), "the lent page was freed with the server");
    assert_eq!(w.read(cp, BUF, 4096), msg);
    assert_eq!(w.free(), before, "the server's frames did not all come back");
    let t = w.k.ipc_totals();
    assert_eq!((t.channels, t.in_flight, t.names), (0, 0, 0));
    let names = w.c(cp).names;
    w.write(cp, BUF, b"A::svc");
    assert_eq!(w.sys(c1, Syscall::NameFind, [names, BUF, 6, 0, 0, 0]), R::Err(Error::NotFound));
    w.rejected(c1, Syscall::Send, [send, 0, 0, 0, 0, 0]);
}

/// A client dying while its lent page is held leaves the page with the
/// server (a driver may have pointed a device at it): it becomes the
/// server's own page at the window, and the server page it displaced is
/// freed with the client instead, so no frame leaks or changes hands twice.
#[test]
fn client_death_leaves_its_lent_page_with_the_server_and_the_late_reply_fails_cleanly() {
    let mut w = World::new();
    let own = pattern(0x40, 4096);
    let Server { sp, s, chan, window_frame, before } = server(&mut w, Some(&own));
    let cp = w.spawn("client");
    let c = w.thread(cp, 5);
    let send = w.give(sp, chan, cp, abi::ChannelRights::SEND);
    assert_eq!(w.recv(s, chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(c, send, 1, 4096, BUF, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(s).ok();
    let lent = w.frame(sp, WIN);
    assert_ne!(lent, window_frame);
    let msg = w.read(sp, WIN, 4096);
    w.run_as(s);
    crate::arch::host::take_flushes();
    w.kill(cp, exit::KILLED, 0);
    assert!(crate::arch::host::take_flushes().contains(&WIN), "the server's window was not flushed");
    assert_eq!(w.frame(sp, WIN), lent, "the lent page left the server's window");
    let f = w.flags(sp, WIN).unwrap();
    assert!(f.contains(Flags::WRITABLE | sw::OWNED) && !f.contains(sw::LOAN), "{f:?}");
    assert!(w.used(lent.unwrap()), "the lent page was freed with its sender");
    assert!(!w.used(window_frame.unwrap()), "the displaced window page leaked");
    assert_eq!(w.read(sp, WIN, 4096), msg);
    assert_ne!(msg, own);
    assert_eq!(w.free(), before, "the client's frames did not all come back");
    assert_eq!(w.reply(s, cookie, 0, 4096), R::Err(Error::Incapable));
    assert_eq!(w.recv(s, chan, WIN, 0), R::Err(Error::Timeout), "the window is still marked as lent");
    assert_eq!(w.k.ipc_totals().in_flight, 0);
}

/// The same with a page of the client's DMA region: it stays a DMA mapping
/// at the server's window (the region outlives its dead owner) until the
/// server unmaps it; then every frame is back.
#[test]
fn client_death_leaves_its_lent_dma_page_with_the_server_until_it_lets_go() {
    let mut w = World::new();
    let Server { sp, s, chan, window_frame, before } = server(&mut w, None);
    let cp = w.spawn("client");
    let c = w.thread(cp, 5);
    let cc = w.c(cp);
    let [dma, pa, ..] = w.sys(c, Syscall::DmaAlloc, [cc.dma, 1, 0, 0, 0, 0]).ok();
    assert_eq!(w.sys(c, Syscall::MapPhys, [dma, abi::layout::USER_MAPPINGS, 0, PAGE, RW.bits(), 0]), R::Ok([0; 4]));
    w.write(cp, abi::layout::USER_MAPPINGS, &pattern(0x77, 4096));
    let send = w.give(sp, chan, cp, abi::ChannelRights::SEND);
    assert_eq!(w.recv(s, chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(c, send, 1, 4096, abi::layout::USER_MAPPINGS, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(s).ok();
    assert_eq!(w.frame(sp, WIN), Some(pa), "the DMA page was not lent");
    w.kill(cp, exit::KILLED, 0);
    assert_eq!(w.frame(sp, WIN), Some(pa), "the DMA page left the server's window");
    assert!(w.flags(sp, WIN).unwrap().contains(sw::DMA), "no longer a DMA mapping");
    assert!(w.used(pa), "the dead client's DMA region was freed under the server");
    assert!(!w.used(window_frame.unwrap()), "the displaced window page leaked");
    assert_eq!(w.read(sp, WIN, 4096), pattern(0x77, 4096));
    assert_eq!(w.reply(s, cookie, 0, 0), R::Err(Error::Incapable));
    let unmap = [w.c(sp).me, WIN, PAGE, 0, 0, 0];
    assert_eq!(w.sys(s, Syscall::Unmap, unmap), R::Ok([0; 4]));
    assert!(!w.used(pa), "the region outlived the server's mapping");
    // The window's own page went with the client: one frame fewer than before.
    assert_eq!(w.free(), before + 1, "frames leaked");
}

#[test]
fn reply_recv_answers_then_takes_the_next_message() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let c2 = w.thread(r.cp, 5);
    w.write(r.cp, BUF, &[0; 16]);
    assert_eq!(w.send(r.c, r.send, 1, 10, BUF, FOREVER), blocked(State::SendBlocked));
    let [cookie1, ..] = w.take(r.s, r.chan);
    assert_eq!(w.send(c2, r.send, 2, 0, 0, FOREVER), blocked(State::SendBlocked));
    w.write(r.sp, WIN, b"abcd");
    let rr = Syscall::ReplyRecv;
    let [cookie2, tag, size, _] = w.sys(r.s, rr, [r.chan, cookie1, 7, 4, WIN, FOREVER]).ok();
    assert_eq!((tag, size), (2, 0));
    assert_eq!(w.status(r.c), R::Ok([7, 0, 4, 0]));
    assert_eq!(w.read(r.cp, BUF, 4), b"abcd");
    // A bad cookie: no reply, no receive, no delay.
    assert_eq!(w.sys(r.s, rr, [r.chan, cookie1, 0, 0, WIN, FOREVER]), R::Err(Error::Incapable));
    // A bad channel token: the reply is not consumed.
    w.rejected(r.s, rr, [BOGUS, cookie2, 0, 0, WIN, FOREVER]);
    assert_eq!(w.state(c2), State::AwaitingReply);
    // Answer and wait: the client runs while the server waits.
    assert_eq!(w.sys(r.s, rr, [r.chan, cookie2, 9, 0, WIN, FOREVER]), blocked(State::RecvBlocked));
    assert_eq!(w.status(c2), R::Ok([9, 0, 0, 0]));
    assert_eq!(w.k.current, c2, "the answered client should run next");
    // NO_REPLY only receives.
    assert_eq!(w.send(r.c, r.send, 3, 0, 0, FOREVER), blocked(State::AwaitingReply));
    let [cookie3, tag, ..] = w.status(r.s).ok();
    assert_eq!(tag, 3);
    assert_eq!(w.sys(r.s, rr, [r.chan, cookie3, 0, 0, WIN, 0]), R::Err(Error::Timeout));
    assert_eq!(w.status(r.c), R::Ok([0; 4]), "the reply before a failed receive was lost");
    assert_eq!(w.sys(r.s, rr, [r.chan, abi::NO_REPLY, 0, 0, WIN, 0]), R::Err(Error::Timeout));
}

#[test]
fn replies_need_the_genuine_cookie_from_the_receiving_process() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let other = w.spawn("intruder");
    let i = w.thread(other, 5);
    let s2 = w.thread(r.sp, 5);
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), blocked(State::SendBlocked));
    let [cookie, ..] = w.take(r.s, r.chan);
    let forged = [
        0,
        u64::MAX,
        cookie ^ 1 << 16,
        cookie & !(1 << 63),
        (cookie & !0xffff) | r.s as u64,
        (cookie & !0xffff) | 0xfff0,
        cookie + (1 << 40),
    ];
    for f in forged {
        assert_eq!(w.reply(r.s, f, 0, 0), R::Err(Error::Incapable), "forged cookie {f:#x} accepted");
    }
    assert_eq!(w.reply(i, cookie, 0, 0), R::Err(Error::Incapable), "another process answered");
    assert_eq!(w.state(r.c), State::AwaitingReply);
    assert_eq!(w.k.procs[r.sp].strikes.count(), 0, "bad cookies are not bad tokens");
    // Any thread of the receiving process may answer.
    assert_eq!(w.reply(s2, cookie, 4, 0), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([4, 0, 0, 0]));
}

#[test]
fn stale_cookie_of_a_dead_client_does_not_answer_the_slot_reuser() {
    let mut w = World::new();
    let sp = w.spawn("server");
    let s = w.thread(sp, 5);
    let chan = w.channel(s);
    let ap = w.spawn("first client");
    let a = w.thread(ap, 5);
    let send_a = w.give(sp, chan, ap, abi::ChannelRights::SEND);
    assert_eq!(w.send(a, send_a, 1, 0, 0, FOREVER), blocked(State::SendBlocked));
    let [stale, ..] = w.take(s, chan);
    w.kill(ap, exit::KILLED, 0);
    let bp = w.spawn("second client");
    let b = w.thread(bp, 5);
    assert_eq!(b, a, "the test needs the thread slot reused");
    let send_b = w.give(sp, chan, bp, abi::ChannelRights::SEND);
    assert_eq!(w.send(b, send_b, 2, 0, 0, FOREVER), blocked(State::SendBlocked));
    let [fresh, tag, ..] = w.take(s, chan);
    assert_eq!(tag, 2);
    // The server finishes the dead client's request late.
    assert_eq!(w.reply(s, stale, 0xdead, 0), R::Err(Error::Incapable), "stale cookie answered another request");
    assert_eq!(w.state(b), State::AwaitingReply);
    assert_ne!(stale, fresh);
}

#[test]
fn forwarded_loan_does_not_outlive_the_lenders_page() {
    let mut w = World::new();
    let cp = w.spawn("client");
    let c = w.thread(cp, 5);
    let sp = w.spawn("middle");
    let s = w.thread(sp, 5);
    let tp = w.spawn("backend");
    let t = w.thread(tp, 5);
    let chan_s = w.channel(s);
    let chan_t = w.channel(t);
    let to_s = w.give(sp, chan_s, cp, abi::ChannelRights::SEND);
    let to_t = w.give(tp, chan_t, sp, abi::ChannelRights::SEND);
    assert_eq!(w.recv(t, chan_t, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.recv(s, chan_s, WIN, FOREVER), blocked(State::RecvBlocked));
    w.write(cp, BUF, &pattern(1, 4096));
    let lent = w.frame(cp, BUF).unwrap();
    assert_eq!(w.send(c, to_s, 1, 4096, BUF, FOREVER), blocked(State::AwaitingReply));
    // The middle server passes the page it was lent on to the backend.
    w.run_as(s);
    assert_eq!(w.send(s, to_t, 2, 4096, WIN, FOREVER), blocked(State::AwaitingReply));
    assert_eq!(w.status(t).ok()[1], 2);
    w.kill(cp, exit::KILLED, 0);
    let backend_window = w.frame(tp, WIN);
    assert!(
        backend_window != Some(lent) || w.used(lent),
        "the backend's window maps frame {lent:#x}, freed with the client"
    );
}

#[test]
fn requests_held_by_an_exited_thread_do_not_follow_its_slot_to_another_process() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let c2 = w.thread(r.cp, 5);
    let _keeps_server_alive = w.thread(r.sp, 5);
    // The server thread holds a lent page at WIN and a copied request at WIN + PAGE.
    assert_eq!(w.send(r.c, r.send, 1, 4096, BUF, FOREVER), R::Blocked(State::SendBlocked));
    assert_eq!(w.send(c2, r.send, 2, 8, BUF + PAGE, FOREVER), R::Blocked(State::SendBlocked));
    w.take(r.s, r.chan);
    let [copied, ..] = w.recv(r.s, r.chan, WIN + PAGE, 0).ok();
    let thread_class = w.c(r.sp).thread;
    assert_eq!(w.sys(r.s, Syscall::ThreadExit, [thread_class, 0, 0, 0, 0, 0]), blocked(State::Dead));
    assert_eq!(w.k.procs[r.sp].state, ProcState::Alive);
    // A new process gets the thread slot; it has its own page at WIN.
    let qp = w.spawn("bystander");
    let q = w.thread(qp, 5);
    assert_eq!(q, r.s, "the test needs the thread slot reused");
    let own = w.frame(qp, WIN);
    assert_eq!(w.reply(q, copied, 0x666, 0), R::Err(Error::Incapable), "a process that never received the request answered it");
    assert_ne!(w.status(c2), R::Ok([0x666, 0, 0, 0]));
    // The lending client dies: the loan is undone in the wrong address space.
    w.kill(r.cp, exit::KILLED, 0);
    assert_eq!(w.frame(qp, WIN), own, "the bystander's page table was rewritten");
}

#[test]
fn ipc_memory_accounting_follows_channels_messages_and_names() {
    let mut w = World::new();
    let t0 = w.k.ipc_totals();
    assert!(t0.bytes_per_channel <= 128, "channel takes {} bytes", t0.bytes_per_channel);
    assert!(t0.bytes_per_message <= 64, "message takes {} bytes", t0.bytes_per_message);
    assert!(t0.bytes_per_name > 0);
    assert_eq!((t0.channels, t0.in_flight, t0.names, t0.bytes_in_use), (0, 0, 0, 0));
    let r = w.rig(5, 5);
    w.write(r.sp, BUF, b"ACCT::x");
    assert_eq!(w.sys(r.s, Syscall::NameRegister, [r.chan, BUF, 7, w.c(r.sp).names, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), blocked(State::SendBlocked));
    let t = w.k.ipc_totals();
    assert_eq!((t.channels, t.in_flight, t.names, t.messages_total), (1, 1, 1, 0));
    assert_eq!(t.bytes_in_use, t.bytes_per_channel + t.bytes_per_message + t.bytes_per_name);
    let [cookie, ..] = w.take(r.s, r.chan);
    let t = w.k.ipc_totals();
    assert_eq!((t.in_flight, t.messages_total), (1, 1));
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    let t = w.k.ipc_totals();
    assert_eq!(t.in_flight, 0);
    assert_eq!(t.bytes_in_use, t.bytes_per_channel + t.bytes_per_name);
    // The DebugIpc syscall reports the same figures.
    let dbg = w.c(r.sp).debug_ipc;
    assert_eq!(w.sys(r.s, Syscall::DebugIpc, [dbg, abi::debug::op::TOTALS, BUF, 0, 0, 0]), R::Ok([0; 4]));
    let raw = w.read(r.sp, BUF, 64);
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    let t = w.k.ipc_totals();
    assert_eq!(
        [word(0), word(1), word(2), word(6), word(7)],
        [t.channels, t.in_flight, t.names, t.bytes_in_use, t.messages_total]
    );
    assert_eq!(w.sys(r.s, Syscall::ChannelDestroy, [r.chan, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    let t = w.k.ipc_totals();
    assert_eq!((t.channels, t.names, t.bytes_in_use), (0, 0, 0));
}

/// One copy round trip from `r.c` to `r.s` with `len` request bytes and
/// `len` reply bytes; returns (request seen by the server, reply seen by the client).
fn copy_trip(w: &mut World, r: &Rig, req: &[u8], answer: &[u8]) -> (Vec<u8>, Vec<u8>) {
    w.write(r.cp, BUF, req);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, req.len() as u64, BUF, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(r.s).ok();
    let seen = w.read(r.sp, WIN, req.len());
    w.write(r.sp, WIN, answer);
    assert_eq!(w.reply(r.s, cookie, 0, answer.len() as u64), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([0, 0, answer.len() as u64, 0]));
    (seen, w.read(r.cp, BUF, answer.len()))
}

#[test]
fn cached_translations_follow_remapping() {
    // The fast path caches the window's and the client buffer's page-table
    // entries; remapping either page must be seen at once, or the kernel
    // would write into a frame the process gave back.
    let mut w = World::new();
    let r = w.rig(5, 5);
    let (a, b) = (pattern(1, 64), pattern(2, 64));
    assert_eq!(copy_trip(&mut w, &r, &a, &b), (a.clone(), b.clone()));
    // Replace the server's window page and the client's buffer page. The
    // freed frame goes to another page first, so a stale translation would
    // put the data there.
    let (old_window, old_buffer) = (w.frame(r.sp, WIN), w.frame(r.cp, BUF));
    for (p, t, va) in [(r.sp, r.s, WIN), (r.cp, r.c, BUF)] {
        let me = w.c(p).me;
        assert_eq!(w.sys(t, Syscall::Unmap, [me, va, PAGE, 0, 0, 0]), R::Ok([0; 4]));
        assert_eq!(w.sys(t, Syscall::MapAnon, [me, UNMAPPED, PAGE, RW.bits(), 0, 0]), R::Ok([0; 4]));
        assert_eq!(w.sys(t, Syscall::MapAnon, [me, va, PAGE, RW.bits(), 0, 0]), R::Ok([0; 4]));
    }
    assert_ne!(w.frame(r.sp, WIN), old_window);
    assert_ne!(w.frame(r.cp, BUF), old_buffer);
    let (c, d) = (pattern(3, 64), pattern(4, 64));
    assert_eq!(copy_trip(&mut w, &r, &c, &d), (c, d), "data went through a stale translation");
}

#[test]
fn a_reused_thread_slot_does_not_inherit_cached_translations() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let (a, b) = (pattern(5, 64), pattern(6, 64));
    assert_eq!(copy_trip(&mut w, &r, &a, &b), (a, b));
    // The server thread ends (its process lives on in another thread, so
    // its window frame stays its own); a thread of a new process gets the
    // slot and waits on its own channel with a window at the same address.
    w.thread(r.sp, 5);
    assert_eq!(w.sys(r.s, Syscall::ThreadExit, [w.c(r.sp).thread, 0, 0, 0, 0, 0]), R::Blocked(State::Dead));
    let np = w.spawn("newcomer");
    let nt = w.thread(np, 5);
    assert_eq!(nt, r.s, "the test needs the slot reused");
    let chan = w.channel(nt);
    let send = w.give(np, chan, r.cp, abi::ChannelRights::SEND);
    let r2 = Rig { sp: np, cp: r.cp, s: nt, c: r.c, chan, send };
    let (c, d) = (pattern(7, 64), pattern(8, 64));
    assert_eq!(copy_trip(&mut w, &r2, &c, &d), (c, d), "a new thread used its slot's old translation");
}

#[test]
fn a_lent_page_is_out_of_its_senders_reach_until_every_kind_of_end() {
    // Send isolation: while the page is lent, the sender's other threads
    // cannot read or change it (no double fetch by the server), through the
    // MMU or through the kernel; each way the loan ends gives it back.
    for end in ["reply", "reply_recv", "server killed", "server thread exits", "channel destroyed then reply", "client killed"] {
        let mut w = World::new();
        let l = lend(&mut w);
        let r = l.r;
        let sib = w.thread(r.cp, 5);
        let c_me = w.c(r.cp).me;
        // Not present for the sender: a sibling's access faults.
        let e = w.k.space(r.cp).leaf_raw(&w.k.phys, BUF);
        assert_eq!(e & Flags::PRESENT.bits(), 0, "{end}: the lent page is present for its sender");
        assert_eq!(e & 0x000f_ffff_ffff_f000, l.client_frame, "{end}: the hidden entry lost its frame");
        assert_eq!(w.try_read(r.cp, BUF, 1), None);
        // The kernel will not read or write it for the sender either.
        let print = w.c(r.cp).print;
        assert_eq!(w.sys(sib, Syscall::DebugPrint, [print, BUF, 8, 0, 0, 0]), R::Err(Error::BadAddress), "{end}");
        let s2 = w.thread(r.sp, 5);
        assert_eq!(w.recv(s2, r.chan, WIN + 2 * PAGE, FOREVER), blocked(State::RecvBlocked));
        assert_eq!(w.send(sib, r.send, 2, 64, BUF, 0), R::Err(Error::BadAddress), "{end}: a sibling re-sent the lent page");
        assert_eq!(w.send(sib, r.send, 2, 4096, BUF, 0), R::Err(Error::BadAddress), "{end}: a sibling re-lent the lent page");
        assert_eq!(w.sys(sib, Syscall::ProcessWrite, [c_me, BUF, WIN, 8, 0, 0]), R::Err(Error::BadAddress), "{end}");
        // Nor map over it, nor unmap it.
        assert_eq!(w.sys(sib, Syscall::MapAnon, [c_me, BUF, PAGE, RW.bits(), 0, 0]), R::Err(Error::AlreadyExists), "{end}");
        assert_eq!(w.sys(sib, Syscall::Unmap, [c_me, BUF, PAGE, 0, 0, 0]), R::Err(Error::Busy), "{end}");
        let before_client_death = w.free();
        match end {
            "reply" => {
                w.write(r.sp, WIN, &[0x42; 8]);
                assert_eq!(w.reply(r.s, l.cookie, 5, 8), R::Ok([0; 4]));
                assert_eq!(w.status(r.c), R::Ok([5, 0, 8, 0]));
            }
            "reply_recv" => {
                w.write(r.sp, WIN, &[0x42; 8]);
                let rr = [r.chan, l.cookie, 5, 8, WIN + PAGE, FOREVER];
                assert_eq!(w.sys(r.s, Syscall::ReplyRecv, rr), blocked(State::RecvBlocked));
                assert_eq!(w.status(r.c), R::Ok([5, 0, 8, 0]));
            }
            "server killed" => {
                w.kill(r.sp, exit::KILLED, 0);
                assert_eq!(w.status(r.c), R::Err(Error::PeerDied));
            }
            "server thread exits" => {
                w.thread(r.sp, 5);
                let class = w.c(r.sp).thread;
                assert_eq!(w.sys(r.s, Syscall::ThreadExit, [class, 0, 0, 0, 0, 0]), R::Blocked(State::Dead));
                assert_eq!(w.status(r.c), R::Err(Error::PeerDied));
            }
            "channel destroyed then reply" => {
                assert_eq!(w.sys(r.s, Syscall::ChannelDestroy, [r.chan, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
                assert_eq!(w.k.space(r.cp).leaf_raw(&w.k.phys, BUF) & Flags::PRESENT.bits(), 0, "the loan outlives a destroyed channel");
                assert_eq!(w.reply(r.s, l.cookie, 1, 0), R::Ok([0; 4]));
                assert_eq!(w.status(r.c), R::Ok([1, 0, 0, 0]));
            }
            "client killed" => {
                let pk = w.proc_cap(r.sp, r.cp, abi::ProcessRights::KILL);
                assert_eq!(w.sys(r.s, Syscall::ProcessKill, [pk, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
                // Its page stays with the server (its own now); the window's
                // page went with the client instead.
                assert!(w.used(l.client_frame), "client killed: its lent page was freed under the server");
                assert!(!w.used(l.window_frame), "client killed: the displaced window page leaked");
                assert!(w.free() > before_client_death);
                assert_eq!(w.frame(r.sp, WIN), Some(l.client_frame), "client killed: the page left the server's window");
                continue;
            }
            _ => unreachable!(),
        }
        assert_eq!(w.frame(r.cp, BUF), Some(l.client_frame), "{end}: the page did not come back to its sender");
        assert!(w.flags(r.cp, BUF).unwrap().contains(Flags::WRITABLE | sw::OWNED), "{end}");
        let back = w.read(r.cp, BUF, 4096);
        if end.starts_with("reply") {
            assert_eq!(back[..8], [0x42; 8], "{end}");
            assert_eq!(back[8..], l.msg[8..], "{end}");
        } else {
            assert_eq!(back, l.msg, "{end}");
        }
        // The sibling may use it again.
        assert_eq!(w.sys(sib, Syscall::DebugPrint, [print, BUF, 8, 0, 0, 0]), R::Ok([0; 4]), "{end}");
    }
}

#[test]
fn a_timed_out_send_never_hides_the_page() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let frame = w.frame(r.cp, BUF);
    assert_eq!(w.send(r.c, r.send, 1, 4096, BUF, 3 * MS), blocked(State::SendBlocked));
    assert_eq!(w.frame(r.cp, BUF), frame, "a queued message already hid its page");
    w.tick_until_ready(r.c);
    assert_eq!(w.status(r.c), R::Err(Error::Timeout));
    assert_eq!(w.frame(r.cp, BUF), frame);
}

#[test]
fn a_page_that_is_the_receivers_window_is_copied_not_hidden() {
    // Sender and receiver in one process, the buffer being the window: the
    // page is the window's own frame, so hiding it would hide the message.
    let mut w = World::new();
    let sp = w.spawn("both");
    let (s, c) = (w.thread(sp, 5), w.thread(sp, 5));
    let chan = w.channel(s);
    let msg = pattern(4, 4096);
    w.write(sp, WIN, &msg);
    assert_eq!(w.recv(s, chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(c, chan, 1, 4096, WIN, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(s).ok();
    assert!(!w.k.threads[c as usize].msg.lent);
    assert_eq!(w.read(sp, WIN, 4096), msg);
    assert_eq!(w.reply(s, cookie, 0, 16), R::Ok([0; 4]));
    assert_eq!(w.status(c), R::Ok([0, 0, 16, 0]));
}

#[test]
fn a_held_request_is_answered_with_the_bytes_named_never_the_next_clients() {
    // The server holds client 1's request, receives client 2's in the same
    // window, then answers client 1. Reply data from the window would be
    // client 2's request: refused. Named from the server's own buffer, it
    // is exactly what the server means.
    let mut w = World::new();
    let r = w.rig(5, 5);
    let cp2 = w.spawn("client2");
    let c2 = w.thread(cp2, 5);
    let send2 = w.give(r.sp, r.chan, cp2, abi::ChannelRights::SEND);
    let (req1, req2) = (pattern(1, 64), pattern(2, 64));
    w.write(r.cp, BUF, &req1);
    w.write(cp2, BUF, &req2);
    assert_eq!(w.send(r.c, r.send, 1, 64, BUF, FOREVER), blocked(State::SendBlocked));
    assert_eq!(w.send(c2, send2, 2, 64, BUF, FOREVER), blocked(State::SendBlocked));
    let [cookie1, ..] = w.take(r.s, r.chan);
    assert_eq!(w.read(r.sp, WIN, 64), req1);
    // Held: the window takes client 2's request.
    let [cookie2, tag, ..] = w.take(r.s, r.chan);
    assert_eq!(tag, 2);
    assert_eq!(w.read(r.sp, WIN, 64), req2);
    assert!(w.k.threads[r.c as usize].msg.displaced);
    // From the window: refused, client 1 not answered, nothing received.
    let rr = Syscall::ReplyRecv;
    assert_eq!(w.sys(r.s, rr, [r.chan, cookie1, 7, 64, WIN + PAGE, FOREVER]), R::Err(Error::InvalidArgument));
    assert_eq!(w.reply(r.s, cookie1, 7, 64), R::Err(Error::InvalidArgument));
    assert_eq!(w.reply_from(r.s, cookie1, 7, WIN + 32, 64), R::Err(Error::InvalidArgument), "partly in the window");
    assert_eq!(w.reply_from(r.s, cookie1, 7, WIN - 32, 64), R::Err(Error::InvalidArgument), "partly in the window");
    assert_eq!(w.state(r.c), State::AwaitingReply, "a refused reply answered client 1");
    assert_eq!(w.read(r.cp, BUF, 64), req1, "client 1 got bytes from a refused reply");
    // A bad source is the server's error alone.
    assert_eq!(w.reply_from(r.s, cookie1, 7, 0xffff_8000_0000_0000, 8), R::Err(Error::BadAddress));
    assert_eq!(w.state(r.c), State::AwaitingReply);
    // Named from its own buffer: exactly those bytes.
    let answer1 = pattern(9, 40);
    w.write(r.sp, BUF, &answer1);
    assert_eq!(w.reply_from(r.s, cookie1, 7, BUF, 40), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([7, 0, 40, 0]));
    assert_eq!(w.read(r.cp, BUF, 64), [&answer1[..], &req1[40..]].concat());
    // Client 2's message is still the window's: ReplyRecv from it works.
    w.write(r.sp, WIN, &[0x77; 16]);
    assert_eq!(w.sys(r.s, rr, [r.chan, cookie2, 8, 16, WIN, FOREVER]), blocked(State::RecvBlocked));
    assert_eq!(w.status(c2), R::Ok([8, 0, 16, 0]));
    assert_eq!(w.read(cp2, BUF, 16), [0x77; 16]);
}

#[test]
fn a_displaced_message_may_still_be_answered_without_data_or_through_the_fast_path_never() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let c2 = w.thread(r.cp, 5);
    w.write(r.cp, BUF, &[1; 16]);
    w.write(r.cp, BUF + PAGE, &[2; 16]);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, 16, BUF, FOREVER), blocked(State::AwaitingReply));
    let [cookie1, ..] = w.status(r.s).ok();
    // The second message reaches the waiting server by the fast path.
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(c2, r.send, 2, 16, BUF + PAGE, FOREVER), blocked(State::AwaitingReply));
    assert!(w.k.threads[r.c as usize].msg.displaced, "the fast path did not displace the held message");
    let [cookie2, ..] = w.status(r.s).ok();
    assert_eq!(w.reply(r.s, cookie2, 0, 0), R::Ok([0; 4]));
    // No data: fine, through ReplyRecv (a displaced message takes the general path).
    let rr = Syscall::ReplyRecv;
    assert_eq!(w.sys(r.s, rr, [r.chan, cookie1, 4, 16, WIN, FOREVER]), R::Err(Error::InvalidArgument));
    assert_eq!(w.sys(r.s, rr, [r.chan, cookie1, 4, 0, WIN, FOREVER]), blocked(State::RecvBlocked));
    assert_eq!(w.status(r.c), R::Ok([4, 0, 0, 0]));
    assert_eq!(w.read(r.cp, BUF, 16), [1; 16]);
    // Another window is not displaced by the next message.
    assert_eq!(w.send(r.c, r.send, 3, 16, BUF, FOREVER), blocked(State::AwaitingReply));
    let [cookie3, ..] = w.status(r.s).ok();
    assert_eq!(w.recv(r.s, r.chan, WIN + PAGE, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(c2, r.send, 4, 16, BUF + PAGE, FOREVER), blocked(State::AwaitingReply));
    assert!(!w.k.threads[r.c as usize].msg.displaced);
    let [cookie4, ..] = w.status(r.s).ok();
    w.write(r.sp, WIN, &[5; 16]);
    assert_eq!(w.reply(r.s, cookie3, 0, 16), R::Ok([0; 4]));
    assert_eq!(w.read(r.cp, BUF, 16), [5; 16]);
    assert_eq!(w.reply(r.s, cookie4, 0, 0), R::Ok([0; 4]));
}

#[test]
fn a_reply_from_a_buffer_into_a_lent_page_copies_into_the_page() {
    let mut w = World::new();
    let l = lend(&mut w);
    let r = l.r;
    let answer = pattern(0x33, 100);
    w.write(r.sp, BUF, &answer);
    assert_eq!(w.reply_from(r.s, l.cookie, 2, BUF, 100), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([2, 0, 100, 0]));
    let back = w.read(r.cp, BUF, 4096);
    assert_eq!(back[..100], answer[..]);
    assert_eq!(back[100..], l.msg[100..]);
    assert_eq!(w.read(r.sp, WIN, 4096), l.own, "the window's own page was written");
}

#[test]
fn cookies_with_junk_in_their_unused_bits_are_refused() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), blocked(State::SendBlocked));
    let [cookie, ..] = w.take(r.s, r.chan);
    for bit in [8, 12, 15, 48, 55, 62] {
        let junk = cookie | 1 << bit;
        // Refused like a forged cookie (Incapable), without the bad-token delay.
        assert_eq!(w.reply(r.s, junk, 1, 0), R::Err(Error::Incapable), "bit {bit}");
        assert_eq!(w.sys(r.s, Syscall::ReplyRecv, [r.chan, junk, 1, 0, WIN, 0]), R::Err(Error::Incapable), "bit {bit}");
        assert_eq!(w.state(r.c), State::AwaitingReply, "a junk cookie (bit {bit}) answered the client");
    }
    assert_eq!(w.reply(r.s, cookie, 1, 0), R::Ok([0; 4]));
    assert_eq!(w.status(r.c), R::Ok([1, 0, 0, 0]));
}

#[test]
fn lending_from_the_running_sender_flushes_its_page() {
    // The sender's space is loaded while it sends: a TLB entry for the page
    // would let a sibling scheduled next (no CR3 switch) still write it.
    for same_process in [false, true] {
        let mut w = World::new();
        let r = w.rig(5, 5);
        let (chan, send) = if same_process {
            let own = w.channel(r.c);
            (own, own)
        } else {
            (r.chan, r.send)
        };
        let s = if same_process { w.thread(r.cp, 5) } else { r.s };
        assert_eq!(w.recv(s, chan, WIN, FOREVER), blocked(State::RecvBlocked));
        w.run_as(r.c);
        crate::arch::host::take_flushes();
        assert_eq!(w.send(r.c, send, 1, 4096, BUF, FOREVER), blocked(State::AwaitingReply));
        assert!(crate::arch::host::take_flushes().contains(&BUF), "same process {same_process}: the sender's TLB entry survived");
        assert_eq!(w.frame(r.cp, BUF), None);
    }
}

#[test]
fn the_monitor_reports_a_channel_s_registered_name() {
    use abi::debug::op::CHANNEL_NAME;
    let mut w = World::new();
    let r = w.rig(5, 5);
    let dbg = w.c(r.sp).debug_ipc;
    let id = w.sys(r.s, Syscall::CapInspect, [r.chan, 0, 0, 0, 0, 0]).ok()[2];
    // Not registered: length 0, nothing written.
    w.write(r.sp, BUF, &[0xaa; 16]);
    assert_eq!(w.sys(r.s, Syscall::DebugIpc, [dbg, CHANNEL_NAME, id, BUF, 16, 0]), R::Ok([0; 4]));
    assert_eq!(w.read(r.sp, BUF, 16), [0xaa; 16]);
    w.write(r.sp, BUF + 100, b"SHELL::MONITOR");
    assert_eq!(w.sys(r.s, Syscall::NameRegister, [r.chan, BUF + 100, 14, w.c(r.sp).names, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.sys(r.s, Syscall::DebugIpc, [dbg, CHANNEL_NAME, id, BUF, 16, 0]), R::Ok([14, 0, 0, 0]));
    assert_eq!(w.read(r.sp, BUF, 14), b"SHELL::MONITOR");
    // A short buffer gets the start, and the full length.
    w.write(r.sp, BUF, &[0; 16]);
    assert_eq!(w.sys(r.s, Syscall::DebugIpc, [dbg, CHANNEL_NAME, id, BUF, 5, 0]), R::Ok([14, 0, 0, 0]));
    assert_eq!(w.read(r.sp, BUF, 6), b"SHELL\0");
    // Bad buffer, unknown channel, stale channel.
    assert_eq!(w.sys(r.s, Syscall::DebugIpc, [dbg, CHANNEL_NAME, id, UNMAPPED, 16, 0]), R::Err(Error::BadAddress));
    assert_eq!(w.sys(r.s, Syscall::DebugIpc, [dbg, CHANNEL_NAME, id ^ (1 << 40), BUF, 16, 0]), R::Err(Error::NotFound));
    assert_eq!(w.sys(r.s, Syscall::ChannelDestroy, [r.chan, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.sys(r.s, Syscall::DebugIpc, [dbg, CHANNEL_NAME, id, BUF, 16, 0]), R::Err(Error::NotFound));
}

#[test]
fn dma_addr_names_lent_and_dma_pages_only() {
    let mut w = World::new();
    let l = lend(&mut w);
    let r = l.r;
    let dma = w.c(r.sp).dma;
    w.run_as(r.s);
    // The lent page: the sender's frame, while the loan lasts.
    assert_eq!(w.sys(r.s, Syscall::DmaAddr, [dma, WIN + 8, 0, 0, 0, 0]), R::Ok([l.client_frame + 8, 0, 0, 0]));
    // Its own anonymous memory, unmapped and kernel addresses: refused.
    assert_eq!(w.sys(r.s, Syscall::DmaAddr, [dma, BUF, 0, 0, 0, 0]), R::Err(Error::BadAddress));
    assert_eq!(w.sys(r.s, Syscall::DmaAddr, [dma, UNMAPPED, 0, 0, 0, 0]), R::Err(Error::BadAddress));
    assert_eq!(w.sys(r.s, Syscall::DmaAddr, [dma, 0xffff_8000_0000_0000, 0, 0, 0, 0]), R::Err(Error::BadAddress));
    assert_eq!(w.reply(r.s, l.cookie, 0, 0), R::Ok([0; 4]));
    // After the reply the window holds the server's own page again.
    assert_eq!(w.sys(r.s, Syscall::DmaAddr, [dma, WIN, 0, 0, 0, 0]), R::Err(Error::BadAddress), "a returned loan is still named");
    // A DMA region it mapped: its frames.
    let [range, addr, ..] = w.sys(r.s, Syscall::DmaAlloc, [dma, 2, 0, 0, 0, 0]).ok();
    const AT: u64 = 0x50_0000;
    assert_eq!(w.sys(r.s, Syscall::MapPhys, [range, AT, 0, 2 * PAGE, RW.bits(), 0]), R::Ok([0; 4]));
    assert_eq!(w.sys(r.s, Syscall::DmaAddr, [dma, AT + PAGE + 3, 0, 0, 0, 0]), R::Ok([addr + PAGE + 3, 0, 0, 0]));
    // Not the Dma class: refused.
    w.rejected(r.s, Syscall::DmaAddr, [w.c(r.sp).thread, AT, 0, 0, 0, 0]);
}
