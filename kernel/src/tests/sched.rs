//! Scheduling: priorities, time slices, yield, sleep, priority inheritance.

use super::*;
use crate::sched::SLICE_TICKS;

#[track_caller]
fn sleep(w: &mut World, t: Tid, ns: u64) -> R {
    let class = w.ct(t).thread;
    w.sys(t, Syscall::Sleep, [class, ns, 0, 0, 0, 0])
}

#[track_caller]
fn yield_(w: &mut World, t: Tid) -> R {
    let class = w.ct(t).thread;
    w.sys(t, Syscall::Yield, [class, 0, 0, 0, 0, 0])
}

/// `Priority` as thread `t` sees it: (base, effective).
#[track_caller]
fn priority(w: &mut World, t: Tid) -> (u64, u64) {
    let class = w.ct(t).thread;
    let [base, effective, ..] = w.sys(t, Syscall::Priority, [class, 0, 0, 0, 0, 0]).ok();
    (base, effective)
}

#[test]
fn highest_priority_ready_thread_runs_first() {
    let mut w = World::new();
    let p = w.spawn("p");
    let lo = w.thread(p, 3);
    let hi = w.thread(p, 7);
    let mid = w.thread(p, 5);
    w.settle();
    assert_eq!(w.k.current, hi);
    assert_eq!(sleep(&mut w, hi, 10 * MS), R::Blocked(State::Sleeping));
    assert_eq!(w.k.current, mid);
    assert_eq!(sleep(&mut w, mid, 10 * MS), R::Blocked(State::Sleeping));
    assert_eq!(w.k.current, lo);
    assert_eq!(sleep(&mut w, lo, 10 * MS), R::Blocked(State::Sleeping));
    assert_eq!(w.k.current, IDLE_THREAD);
    // All wake on the same tick; the highest runs.
    w.tick(10);
    assert_eq!(w.k.current, hi);
    assert_eq!(w.status(hi), R::Ok([0; 4]));
}

#[test]
fn equal_priorities_share_the_cpu_in_time_slices() {
    let mut w = World::new();
    let p = w.spawn("p");
    let a = w.thread(p, 5);
    let b = w.thread(p, 5);
    let low = w.thread(p, 2);
    w.settle();
    assert_eq!(w.k.current, a);
    let slice = SLICE_TICKS as usize;
    let mut ran = Vec::new();
    for _ in 0..4 * slice {
        w.tick(1);
        ran.push(w.k.current);
    }
    let expected: Vec<Tid> = [a, b, a, b]
        .iter()
        .flat_map(|&t| std::iter::repeat_n(t, slice))
        .skip(1)
        .chain([a])
        .collect();
    assert_eq!(ran, expected, "time slices are not {slice} ticks of round robin");
    assert_eq!(w.state(low), State::Runnable);
    assert_eq!(w.th(low).slice, SLICE_TICKS, "the low-priority thread was charged time");
}

#[test]
fn yield_gives_way_to_equal_priority_only() {
    let mut w = World::new();
    let p = w.spawn("p");
    let a = w.thread(p, 5);
    let b = w.thread(p, 5);
    let low = w.thread(p, 2);
    w.settle();
    assert_eq!(yield_(&mut w, a), R::Ok([0; 4]));
    assert_eq!(w.k.current, b);
    assert_eq!(yield_(&mut w, b), R::Ok([0; 4]));
    assert_eq!(w.k.current, a);
    assert_eq!(sleep(&mut w, b, 100 * MS), R::Blocked(State::Sleeping));
    assert_eq!(yield_(&mut w, a), R::Ok([0; 4]));
    assert_eq!(w.k.current, a, "yield gave way to a lower priority");
    assert_eq!(w.state(low), State::Runnable);
}

#[test]
fn sleep_wakes_on_the_right_tick() {
    let mut w = World::new();
    let p = w.spawn("p");
    let t = w.thread(p, 5);
    w.settle();
    let start = w.k.timers.now;
    assert_eq!(sleep(&mut w, t, 5 * MS), R::Blocked(State::Sleeping));
    assert_eq!(w.th(t).deadline, start + 5);
    assert_eq!(w.k.current, IDLE_THREAD);
    w.tick(4);
    assert_eq!(w.state(t), State::Sleeping, "woke early");
    w.tick(1);
    assert_eq!(w.k.current, t, "did not run on waking");
    assert_eq!(w.status(t), R::Ok([0; 4]));
    // A partial tick is a whole tick; zero does not sleep.
    assert_eq!(sleep(&mut w, t, 1), R::Blocked(State::Sleeping));
    w.tick(1);
    assert_eq!(w.status(t), R::Ok([0; 4]));
    assert_eq!(sleep(&mut w, t, 0), R::Ok([0; 4]));
    assert_eq!(w.k.current, t);
    let class = w.c(p).thread;
    assert_eq!(w.sys(t, Syscall::Uptime, [class, 0, 0, 0, 0, 0]), R::Ok([w.k.timers.now * MS, 0, 0, 0]));
}

#[test]
fn waking_higher_priority_thread_preempts_at_once() {
    let mut w = World::new();
    let p = w.spawn("p");
    let hi = w.thread(p, 9);
    let lo = w.thread(p, 2);
    w.settle();
    assert_eq!(sleep(&mut w, hi, 3 * MS), R::Blocked(State::Sleeping));
    assert_eq!(w.k.current, lo);
    w.tick(2);
    assert_eq!(w.k.current, lo);
    w.tick(1);
    assert_eq!(w.k.current, hi);
    assert_eq!(w.state(lo), State::Runnable);
}

#[test]
fn server_runs_at_its_clients_priority_until_it_replies() {
    let mut w = World::new();
    let r = w.rig(2, 20);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 0, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    assert_eq!(w.k.current, r.s, "the server did not run for its client");
    let [cookie, ..] = w.status(r.s).ok();
    assert_eq!(priority(&mut w, r.s), (2, 20));
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.th(r.s).prio, 2, "the boost outlived the reply");
    assert_eq!(w.k.current, r.c, "the client did not preempt the unboosted server");
    // Received from the queue: boosted the same way.
    assert_eq!(w.send(r.c, r.send, 0, 0, 0, FOREVER), R::Blocked(State::SendBlocked));
    assert_eq!(w.k.current, r.s);
    let [cookie, ..] = w.take(r.s, r.chan);
    assert_eq!(w.th(r.s).prio, 20);
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.th(r.s).prio, 2);
    // A low-priority client does not lower anyone.
    let lp = w.spawn("low client");
    let l = w.thread(lp, 1);
    let send = w.give(r.sp, r.chan, lp, abi::ChannelRights::SEND);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    assert_eq!(w.send(l, send, 0, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    assert_eq!(w.th(r.s).prio, 2);
}

#[test]
fn boosted_server_runs_before_a_medium_priority_thread() {
    let mut w = World::new();
    let r = w.rig(2, 20);
    let mp = w.spawn("medium");
    let m = w.thread(mp, 10);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 0, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    assert_eq!(w.k.current, r.s);
    for _ in 0..3 * SLICE_TICKS {
        w.tick(1);
        assert_eq!(w.k.current, r.s, "the medium thread ran ahead of the boosted server");
    }
    let [cookie, ..] = w.status(r.s).ok();
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.k.current, r.c);
    assert_eq!(sleep(&mut w, r.c, 5 * MS), R::Blocked(State::Sleeping));
    assert_eq!(w.k.current, m, "the medium thread should now beat the unboosted server");
}

/// Client `c` (20) → middle server `a` (5) → backend `b` (3).
struct Chain {
    c: Tid,
    a: Tid,
    b: Tid,
    chan_a: u64,
    to_a: u64,
    to_b: u64,
}

fn chain(w: &mut World) -> Chain {
    let cp = w.spawn("client");
    let ap = w.spawn("middle");
    let bp = w.spawn("backend");
    let c = w.thread(cp, 20);
    let a = w.thread(ap, 5);
    let b = w.thread(bp, 3);
    let chan_a = w.channel(a);
    let chan_b = w.channel(b);
    let to_a = w.give(ap, chan_a, cp, abi::ChannelRights::SEND);
    let to_b = w.give(bp, chan_b, ap, abi::ChannelRights::SEND);
    assert_eq!(w.recv(b, chan_b, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    assert_eq!(w.recv(a, chan_a, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    Chain { c, a, b, chan_a, to_a, to_b }
}

#[test]
fn inheritance_follows_a_chain_of_servers_and_unwinds_at_each_reply() {
    let mut w = World::new();
    let ch = chain(&mut w);
    assert_eq!(w.send(ch.c, ch.to_a, 0, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    assert_eq!((w.k.current, w.th(ch.a).prio), (ch.a, 20));
    let [cookie_a, ..] = w.status(ch.a).ok();
    assert_eq!(w.send(ch.a, ch.to_b, 0, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    assert_eq!((w.k.current, w.th(ch.b).prio), (ch.b, 20));
    let [cookie_b, ..] = w.status(ch.b).ok();
    assert_eq!(w.reply(ch.b, cookie_b, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.th(ch.b).prio, 3);
    assert_eq!(w.th(ch.a).prio, 20, "the middle server lost its boost too early");
    assert_eq!(w.k.current, ch.a);
    assert_eq!(w.reply(ch.a, cookie_a, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.th(ch.a).prio, 5);
    assert_eq!(w.k.current, ch.c);
}

#[test]
fn a_queued_high_priority_sender_boosts_the_busy_server_chain() {
    let mut w = World::new();
    let ch = chain(&mut w);
    // A low-priority client keeps the middle server busy with a request
    // that it passes on to the backend.
    let lp = w.spawn("low");
    let l = w.thread(lp, 1);
    let low_to_a = w.give(w.k.proc_of(ch.a), ch.chan_a, lp, abi::ChannelRights::SEND);
    assert_eq!(w.send(l, low_to_a, 0, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    let [cookie_l, ..] = w.status(ch.a).ok();
    assert_eq!(w.send(ch.a, ch.to_b, 0, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    assert_eq!((w.th(ch.a).prio, w.th(ch.b).prio), (5, 5));
    // The urgent client has to queue; everyone in its way speeds up.
    assert_eq!(w.send(ch.c, ch.to_a, 0, 0, 0, FOREVER), R::Blocked(State::SendBlocked));
    assert_eq!((w.th(ch.a).prio, w.th(ch.b).prio), (20, 20));
    assert_eq!(w.k.current, ch.b);
    let [cookie_b, ..] = w.status(ch.b).ok();
    assert_eq!(w.reply(ch.b, cookie_b, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.th(ch.b).prio, 3);
    assert_eq!(w.k.current, ch.a);
    assert_eq!(w.reply(ch.a, cookie_l, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.th(ch.a).prio, 5);
    let [cookie_c, ..] = w.take(ch.a, ch.chan_a);
    assert_eq!(w.th(ch.a).prio, 20);
    assert_eq!(w.reply(ch.a, cookie_c, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.k.current, ch.c);
}

#[test]
fn a_dying_client_takes_its_boost_with_it() {
    let mut w = World::new();
    let r = w.rig(2, 20);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 0, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    assert_eq!(w.th(r.s).prio, 20);
    w.kill(r.cp, abi::exit::KILLED, 0);
    assert_eq!(w.th(r.s).prio, 2, "the server kept the dead client's priority");
}

/// A sibling thread answers through the fast ReplyRecv path: the boosted
/// receiving thread must drop the client's priority (as the general path does).
#[test]
fn a_sibling_answering_through_the_fast_path_drops_the_boost() {
    let mut w = World::new();
    let r = w.rig(2, 20);
    let s2 = w.thread(r.sp, 2);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(r.s).ok();
    assert_eq!(w.th(r.s).prio, 20, "boosted while serving");
    // The sibling answers with ReplyRecv (fast path conditions hold).
    let rr = Syscall::ReplyRecv;
    assert_eq!(w.sys(s2, rr, [r.chan, cookie, 0, 0, WIN + PAGE, FOREVER]), blocked(State::RecvBlocked));
    assert_eq!(w.status(r.c), R::Ok([0; 4]));
    // r.s holds no request any more, yet:
    assert!(w.k.threads.iter().all(|t| !(t.state == State::AwaitingReply && t.msg.server == r.s)));
    assert_eq!(w.th(r.s).prio, 2, "boost leaked through the fast path (prio {})", w.th(r.s).prio);
}

/// The same with plain Reply (general path): the boost is dropped.
#[test]
fn a_sibling_answering_through_reply_drops_the_boost() {
    let mut w = World::new();
    let r = w.rig(2, 20);
    let s2 = w.thread(r.sp, 2);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), blocked(State::AwaitingReply));
    let [cookie, ..] = w.status(r.s).ok();
    assert_eq!(w.reply(s2, cookie, 0, 0), R::Ok([0; 4]));
    assert_eq!(w.th(r.s).prio, 2);
}

/// A queued high-priority sender that times out must not leave the busy
/// server boosted.
#[test]
fn a_queued_sender_that_times_out_takes_its_boost_with_it() {
    let mut w = World::new();
    let r = w.rig(2, 3);
    let hi = w.thread(r.cp, 20);
    // Low client's request is held by the server.
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), blocked(State::SendBlocked));
    let [_cookie, ..] = w.take(r.s, r.chan);
    // High-priority client queues with a 5 ms timeout: boosts the busy server.
    assert_eq!(w.send(hi, r.send, 2, 0, 0, 5 * MS), blocked(State::SendBlocked));
    assert_eq!(w.th(r.s).prio, 20);
    w.tick(10);
    assert_eq!(w.status(hi), R::Err(Error::Timeout));
    // Back to the priority of the client it still serves (3), not 20.
    assert_eq!(w.th(r.s).prio, 3, "boost outlived the timed-out sender (prio {})", w.th(r.s).prio);
}

/// A reply whose data cannot be written back must not leave the
/// transferred capability in the client's table.
#[test]
fn failed_reply_does_not_leak_transferred_cap() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    w.write(r.cp, BUF, &[1; 16]);
    assert_eq!(w.send(r.c, r.send, 1, 16, BUF, FOREVER), blocked(State::SendBlocked));
    let [cookie, ..] = w.take(r.s, r.chan);
    let before = w.k.procs[r.cp].caps.as_ref().unwrap().len();
    w.k.unmap(r.cp, BUF, PAGE).unwrap();
    let xfer = r.chan;
    assert_eq!(w.sys(r.s, Syscall::Reply, [cookie, 0, WIN, 16, xfer, abi::ChannelRights::SEND.bits() as u64]), R::Err(Error::BadAddress));
    assert_eq!(w.status(r.c), R::Err(Error::BadAddress));
    assert_eq!(w.k.procs[r.cp].caps.as_ref().unwrap().len(), before);
}

/// Two equal clients and their server, which waits on the channel.
fn pair(w: &mut World) -> (Rig, Tid) {
    let r = w.rig(5, 5);
    let bp = w.spawn("client b");
    let b = w.thread(bp, 5);
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    (r, b)
}

/// The server's `ReplyRecv`: answer `cookie`, wait again.
fn reply_recv(w: &mut World, r: &Rig, cookie: u64) -> R {
    w.sys(r.s, Syscall::ReplyRecv, [r.chan, cookie, 7, 0, WIN, FOREVER])
}

#[test]
fn a_server_switched_to_by_a_call_runs_on_its_clients_slice() {
    for general_only in [false, true] {
        let mut w = World::new();
        w.general_only = general_only;
        let (r, b) = pair(&mut w);
        w.run_as(r.c);
        w.k.threads[r.c as usize].slice = SLICE_TICKS;
        assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
        assert_eq!(w.k.current, r.s, "the call did not switch to the server");
        let [cookie, ..] = w.status(r.s).ok();
        let server_slice = w.th(r.s).slice;
        w.tick(3);
        assert_eq!(w.th(r.c).slice, SLICE_TICKS - 3, "general_only {general_only}: the client was not charged for its request");
        assert_eq!(w.th(r.s).slice, server_slice, "general_only {general_only}: the server paid for its client's request");
        // A slice with time left: the reply goes straight back to the client.
        assert_eq!(reply_recv(&mut w, &r, cookie), R::Blocked(State::RecvBlocked));
        assert_eq!(w.k.current, r.c);
        assert_eq!(w.status(r.c), R::Ok([7, 0, 0, 0]));
        // The client's slice runs out while it is served: the server keeps
        // the CPU, and its reply sends the client behind its equal.
        assert_eq!(w.send(r.c, r.send, 2, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
        let [cookie, ..] = w.status(r.s).ok();
        let left = w.th(r.c).slice as u64;
        assert_eq!(left, SLICE_TICKS as u64 - 3);
        w.tick(left);
        assert_eq!(w.k.current, r.s, "general_only {general_only}: the server lost the CPU in its client's slice");
        assert_eq!(w.th(r.c).slice, 0);
        assert_eq!(w.th(r.s).slice, server_slice, "general_only {general_only}: the server paid for its client's request");
        assert_eq!(reply_recv(&mut w, &r, cookie), R::Blocked(State::RecvBlocked));
        assert_eq!(w.k.current, b, "general_only {general_only}: a client whose slice ran out kept the CPU");
        assert_eq!(w.state(r.c), State::Runnable);
        assert_eq!(w.status(r.c), R::Ok([7, 0, 0, 0]));
    }
}

#[test]
fn a_server_that_keeps_a_spent_clients_request_pays_for_itself() {
    let mut w = World::new();
    let (r, b) = pair(&mut w);
    w.run_as(r.c);
    w.k.threads[r.c as usize].slice = 1;
    assert_eq!(w.send(r.c, r.send, 1, 0, 0, FOREVER), R::Blocked(State::AwaitingReply));
    assert_eq!(w.k.current, r.s);
    w.tick(1);
    assert_eq!((w.th(r.c).slice, w.k.current), (0, r.s));
    // From here on the server's own slice runs, and ends.
    let left = w.th(r.s).slice as u64;
    w.tick(left);
    assert_eq!(w.k.current, b, "a server holding a spent client's request was never time-sliced");
    assert_eq!(w.state(r.s), State::Runnable);
}
