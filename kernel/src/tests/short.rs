//! The short path (`syscall::short`): the general path's answers, and
//! every token the general path refuses declined with nothing touched, so
//! that the refusal and its delay stay the general path's.

use super::*;

/// Results of `call` by thread `t` through the short path alone (as the
/// entry code tries it first), and through the general path alone.
fn both_paths(w: &mut World, t: Tid, call: Syscall, token: u64) -> ([u64; 5], [u64; 5]) {
    w.k.threads[t as usize].ret = [77; 5];
    assert!(w.k.syscall_short(call as u64, token), "{call:?} with the right token not taken");
    let short = w.k.threads[t as usize].ret;
    w.k.threads[t as usize].ret = [77; 5];
    w.k.syscall_general(call as u64, [token, 0, 0, 0, 0, 0]);
    (short, w.k.threads[t as usize].ret)
}

#[test]
fn the_short_path_answers_priority_and_uptime_as_the_general_path_does() {
    let mut w = World::new();
    let p = w.spawn("p");
    let t = w.thread(p, 5);
    w.run_as(t);
    w.tick(7);
    w.run_as(t);
    let class = w.ct(t).thread;
    // An inherited priority, so that base and effective differ.
    w.k.threads[t as usize].prio = 9;
    let (short, general) = both_paths(&mut w, t, Syscall::Priority, class);
    assert_eq!(short, general, "Priority");
    assert_eq!(short, [0, 5, 9, 0, 0], "Priority: status, base, effective, zeros");
    w.k.threads[t as usize].prio = 5;
    let (short, general) = both_paths(&mut w, t, Syscall::Uptime, class);
    assert_eq!(short, general, "Uptime");
    assert_eq!(short, [0, w.k.timers.now * abi::limits::TICK_NS, 0, 0, 0]);
    assert!(w.k.timers.now >= 7);
    assert_eq!(w.k.current, t, "the short path switched threads");
    assert_eq!(w.state(t), State::Running);
}

#[test]
fn the_short_path_declines_every_bad_token_and_the_general_path_delays_it() {
    let mut w = World::new();
    let p = w.spawn("p");
    let q = w.spawn("q");
    let t = w.thread(p, 5);
    let c = w.c(p);
    // The Thread class without the USE right, and another process's.
    let no_use = w.give(p, c.thread, p, abi::RightsMask::NONE);
    let foreign = w.c(q).thread;
    let bad = [("forged", BOGUS), ("zero", 0), ("channel", c.chan), ("DebugPrint class", c.print), ("Thread without USE", no_use), ("another process's Thread", foreign), ("process", c.me)];
    for call in [Syscall::Priority, Syscall::Uptime] {
        for (what, token) in bad {
            w.run_as(t);
            let before = (w.th(t).ret, w.th(t).state, w.k.procs[p].strikes.count());
            assert!(!w.k.syscall_short(call as u64, token), "{call:?} took a {what} token");
            assert_eq!((w.th(t).ret, w.th(t).state, w.k.procs[p].strikes.count()), before, "{call:?}: declining a {what} token touched the caller");
            // Through the kernel's syscall (short path first): refused and delayed.
            w.rejected(t, call, [token, 0, 0, 0, 0, 0]);
            assert_eq!(w.k.procs[p].strikes.count(), before.2 + 1, "{call:?}: a {what} token was not a strike");
        }
    }
    // No other call is ever taken, even with a good class token.
    w.run_as(t);
    for nr in 0..=255u64 {
        if nr != Syscall::Priority as u64 && nr != Syscall::Uptime as u64 {
            for token in [c.thread, c.chan, c.print, c.me] {
                assert!(!w.k.syscall_short(nr, token), "the short path took call {nr}");
            }
        }
    }
}
