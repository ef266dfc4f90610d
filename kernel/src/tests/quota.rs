//! Quotas, reclaiming orphaned processes, and long syscalls that let the
//! timer in.

use super::*;
use abi::quota::Quota;
use abi::exit;
use crate::proc::Resource;

/// Where a test's parent writes the quota and name for `ProcessCreate`.
const QUOTA_AT: u64 = BUF + 0x100;
const NAME_AT: u64 = BUF + 0x200;

/// An empty process's worth and nothing more.
const TINY: Quota = Quota { threads: 0, pages: 4, channels: 0, caps: 4, processes: 0 };

/// A parent process with one thread.
fn parent(w: &mut World) -> (usize, Tid) {
    let p = w.spawn("parent");
    let t = w.thread(p, 5);
    w.write(p, NAME_AT, b"kid");
    (p, t)
}

/// `ProcessCreate` by `t` with quota `q`: (token, index).
fn create(w: &mut World, t: Tid, q: &Quota) -> Result<(u64, usize), Error> {
    let p = w.k.proc_of(t);
    w.write(p, QUOTA_AT, &q.to_bytes());
    match w.sys(t, Syscall::ProcessCreate, [w.c(p).spawn, NAME_AT, 3, QUOTA_AT, 0, 0]) {
        R::Ok([tok, idx, ..]) => Ok((tok, idx as usize)),
        R::Err(e) => Err(e),
        other => panic!("ProcessCreate blocked: {other:?}"),
    }
}

fn start(w: &mut World, t: Tid, child: u64) -> R {
    w.sys(t, Syscall::ThreadCreate, [child, 0x1000, 0x2000, 0, 0, 1])
}

#[test]
fn thread_quota_stops_a_thread_bomb_and_others_still_get_threads() {
    let mut w = World::new();
    let (_, t) = parent(&mut w);
    let (kid, k) = create(&mut w, t, &Quota { threads: 3, ..SMALL }).unwrap();
    // The child, holding only itself, starts threads until refused.
    let first = start(&mut w, t, kid).ok()[0] as Tid;
    let own = w.give(w.k.proc_of(t), kid, k, abi::ProcessRights::THREAD);
    let mut made = 1;
    loop {
        match w.sys(first, Syscall::ThreadCreate, [own, 0x1000, 0x2000, 0, 0, 1]) {
            R::Ok(_) => made += 1,
            R::Err(e) => {
                assert_eq!(e, Error::LimitReached);
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(made <= 3, "thread quota not enforced");
    }
    assert_eq!(made, 3);
    // Everyone else goes on.
    let other = w.spawn("other");
    assert!(w.k.create_thread(other, 0x1000, 0x2000, [0, 0], 1).is_ok());
    // One of the child's threads ends: one more fits.
    let class = w.give(w.k.proc_of(t), w.ct(t).thread, k, abi::ClassRights::USE);
    assert_eq!(w.sys(first, Syscall::ThreadExit, [class, 0, 0, 0, 0, 0]), R::Blocked(State::Dead));
    assert!(matches!(start(&mut w, t, kid), R::Ok(_)));
    assert_eq!(start(&mut w, t, kid), R::Err(Error::LimitReached));
}

#[test]
fn page_quota_counts_memory_and_page_tables_and_comes_back() {
    let mut w = World::new();
    let (_, t) = parent(&mut w);
    let free0 = w.free();
    let (kid, k) = create(&mut w, t, &Quota { pages: 40, ..SMALL }).unwrap();
    let empty = w.k.procs[k].acct.pages;
    assert_eq!(empty, crate::proc::PROCESS_PAGES, "an empty process: its root table and capability table");
    let mut mapped = 0;
    loop {
        match w.sys(t, Syscall::MapAnon, [kid, 0x1000_0000 + mapped * PAGE, PAGE, RW.bits(), 0, 0]) {
            R::Ok(_) => mapped += 1,
            R::Err(e) => {
                assert_eq!(e, Error::LimitReached);
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(mapped <= 40, "page quota not enforced");
    }
    let used = w.k.procs[k].acct.pages;
    assert!(used <= 40, "used {used} pages of 40");
    assert_eq!(mapped + empty + 3, used, "three page tables for one range, the rest leaves");
    // The frames really are taken: all counted, root table as well.
    assert_eq!(free0 - w.free(), used as usize - crate::cap::table::PAGES as usize);
    // A bigger map fails whole: nothing more mapped.
    assert_eq!(w.sys(t, Syscall::MapAnon, [kid, 0x2000_0000, 8 * PAGE, RW.bits(), 0, 0]), R::Err(Error::LimitReached));
    assert_eq!(w.k.procs[k].acct.pages, used);
    // Unmapping gives leaves back (tables stay).
    assert_eq!(w.sys(t, Syscall::Unmap, [kid, 0x1000_0000, 10 * PAGE, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.k.procs[k].acct.pages, used - 10);
    assert_eq!(w.sys(t, Syscall::MapAnon, [kid, 0x1000_0000, 10 * PAGE, RW.bits(), 0, 0]), R::Ok([0; 4]));
    // DMA counts too.
    assert_eq!(w.k.dma_alloc(k, 8), Err(Error::LimitReached));
    // The child ends: every frame is back, and the parent's budget.
    assert_eq!(w.sys(t, Syscall::ProcessKill, [kid, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.free(), free0);
    assert_eq!(w.k.procs[w.k.proc_of(t)].acct.carved, Quota::default());
}

#[test]
fn quotas_are_carved_from_the_creator_and_never_exceed_it() {
    let mut w = World::new();
    let (p, t) = parent(&mut w);
    let limit = w.k.procs[p].acct.limit;
    // More than the parent has, or more capabilities than its own limit: refused.
    assert_eq!(create(&mut w, t, &Quota { threads: limit.threads + 1, ..SMALL }), Err(Error::LimitReached));
    assert_eq!(create(&mut w, t, &Quota { caps: limit.caps + 1, ..SMALL }), Err(Error::LimitReached));
    // Too small even for an empty process.
    assert_eq!(create(&mut w, t, &Quota { pages: 1, ..SMALL }), Err(Error::LimitReached));
    // A child that takes half of the parent's threads leaves the other half.
    let half = Quota { threads: limit.threads / 2, processes: 3, pages: 1000, ..SMALL };
    let (a, ai) = create(&mut w, t, &half).unwrap();
    assert_eq!(w.k.procs[p].room(Resource::Threads), limit.threads - half.threads - 1);
    assert_eq!(w.k.procs[p].room(Resource::Processes), limit.processes - 4);
    // The child gives a grandchild part of its own, never more.
    let at = start(&mut w, t, a).ok()[0] as Tid;
    w.caps[ai] = Some(Caps { spawn: w.give(p, w.c(p).spawn, ai, abi::ClassRights::USE), ..Caps::default() });
    w.k.map_anon(ai, BUF, PAGE, RW).unwrap();
    w.write(ai, NAME_AT, b"kid");
    assert_eq!(create(&mut w, at, &Quota { pages: 2000, ..SMALL }), Err(Error::LimitReached));
    let (_, gi) = create(&mut w, at, &Quota { pages: 100, threads: 2, processes: 1, ..SMALL }).unwrap();
    assert_eq!(create(&mut w, at, &Quota { processes: 1, pages: 10, ..SMALL }), Err(Error::LimitReached), "processes quota");
    // REST takes all that is left.
    let (g2, g2i) = create(&mut w, at, &Quota { processes: 0, ..Quota::REST }).unwrap();
    assert_eq!(w.k.procs[g2i].acct.limit.threads, half.threads - 2 - 1, "the child's own thread and the grandchild's 2");
    assert_eq!(w.k.procs[ai].room(Resource::Pages), 0);
    assert_eq!(w.sys(at, Syscall::ProcessKill, [g2, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    // A grandchild that runs outlives the child; its quota now comes from
    // the parent, whose budget gets the rest of the child's back.
    let own = w.give(p, a, ai, abi::ProcessRights::THREAD);
    w.caps[ai].as_mut().unwrap().me = own;
    let g = *w.k.procs[ai].caps.as_ref().unwrap().iter().find(|c| c.kind == CapKind::Process && c.object == gi as u32).unwrap();
    let gtok = w.k.mint(p, g).unwrap();
    assert!(matches!(start(&mut w, t, gtok), R::Ok(_)));
    assert_eq!(w.sys(t, Syscall::ProcessKill, [a, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.k.procs[gi].state, ProcState::Alive);
    assert_eq!(w.k.procs[gi].acct.creator, Some((p as u8, w.k.procs[p].gen)));
    assert_eq!(w.k.procs[p].acct.carved.threads, 2);
    assert_eq!(w.k.procs[p].acct.carved.processes, 2);
    assert_eq!(w.sys(t, Syscall::ProcessKill, [gtok, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.k.procs[p].acct.carved, Quota::default());
}

#[test]
fn channel_and_capability_quotas() {
    let mut w = World::new();
    let (p, t) = parent(&mut w);
    let (kid, k) = create(&mut w, t, &Quota { channels: 2, caps: 4, ..SMALL }).unwrap();
    let kt = start(&mut w, t, kid).ok()[0] as Tid;
    let chan = w.give(p, w.c(p).chan, k, abi::ClassRights::USE);
    w.caps[k] = Some(Caps { chan, ..Caps::default() });
    assert_eq!(w.k.procs[k].caps.as_ref().unwrap().len(), 1);
    w.channel(kt);
    w.channel(kt);
    assert_eq!(w.sys(kt, Syscall::ChannelCreate, [chan, 0, 0, 0, 0, 0]), R::Err(Error::LimitReached));
    // Three capabilities now; one more fits, then the quota is full.
    assert_eq!(w.sys(t, Syscall::CapGrant, [kid, w.c(p).print, abi::RightsMask::ALL.bits() as u64, 0, 0, 0]).ok().len(), 4);
    assert_eq!(w.sys(t, Syscall::CapGrant, [kid, w.c(p).print, abi::RightsMask::ALL.bits() as u64, 0, 0, 0]), R::Err(Error::LimitReached));
    // The parent goes on.
    w.channel(t);
}

#[test]
fn twenty_orphans_come_back_when_their_creator_exits() {
    let mut w = World::new();
    let (p, t) = parent(&mut w);
    let free0 = w.free();
    let procs0 = w.k.accounting().free_processes;
    let (kid, k) = create(&mut w, t, &Quota { processes: 20, pages: 20 * 8, caps: 32, ..SMALL }).unwrap();
    let kt = start(&mut w, t, kid).ok()[0] as Tid;
    w.caps[k] = Some(Caps { spawn: w.give(p, w.c(p).spawn, k, abi::ClassRights::USE), ..Caps::default() });
    w.k.map_anon(k, BUF, PAGE, RW).unwrap();
    w.write(k, NAME_AT, b"kid");
    let mut orphans = Vec::new();
    for _ in 0..20 {
        orphans.push(create(&mut w, kt, &TINY).unwrap().1);
    }
    assert_eq!(create(&mut w, kt, &TINY), Err(Error::LimitReached));
    assert_eq!(w.k.accounting().free_processes, procs0 - 21);
    let class = w.give(p, w.c(p).thread, k, abi::ClassRights::USE);
    assert_eq!(w.sys(kt, Syscall::Exit, [class, 0, 0, 0, 0, 0]), R::Blocked(State::Dead));
    for o in orphans {
        assert_eq!(w.k.procs[o].state, ProcState::Dead, "orphan {o} not reclaimed");
    }
    assert_eq!(w.k.accounting().free_processes, procs0);
    assert_eq!(w.free(), free0, "frames of the orphans not back");
    assert_eq!(w.k.procs[p].acct.carved, Quota::default());
}

#[test]
fn dropping_the_last_token_reclaims_unstarted_processes_even_in_a_cycle() {
    let mut w = World::new();
    let (p, t) = parent(&mut w);
    let (a, ai) = create(&mut w, t, &Quota { processes: 0, ..SMALL }).unwrap();
    let (b, bi) = create(&mut w, t, &Quota { processes: 0, ..SMALL }).unwrap();
    // Each holds the other: still nobody with a thread can reach them.
    w.sys(t, Syscall::CapGrant, [a, b, abi::RightsMask::ALL.bits() as u64, 0, 0, 0]).ok();
    w.sys(t, Syscall::CapGrant, [b, a, abi::RightsMask::ALL.bits() as u64, 0, 0, 0]).ok();
    // A copy of a's token keeps a (and through it b) alive.
    let copy = w.sys(t, Syscall::CapDerive, [a, abi::ProcessRights::WAIT.bits() as u64, 0, 0, 0, 0]).ok()[0];
    assert_eq!(w.sys(t, Syscall::CapDrop, [a, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.sys(t, Syscall::CapDrop, [b, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.k.procs[ai].state, ProcState::Alive);
    assert_eq!(w.k.procs[bi].state, ProcState::Alive, "held through a");
    assert_eq!(w.sys(t, Syscall::CapDrop, [copy, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.k.procs[ai].state, ProcState::Dead);
    assert_eq!(w.k.procs[bi].state, ProcState::Dead);
    assert_eq!(w.k.procs[p].acct.carved, Quota::default());
}

#[test]
fn long_syscalls_let_the_timer_in_and_lose_no_tick() {
    let mut w = World::new();
    let (p, t) = parent(&mut w);
    let me = w.c(p).me;
    crate::arch::host::take_windows();
    crate::arch::host::tick_in_windows(true);
    // 1024 pages: a window every 64, each with a tick that arrived.
    let now = w.k.timers.now;
    assert_eq!(w.sys(t, Syscall::MapAnon, [me, 0x1000_0000, 1024 * PAGE, RW.bits(), 0, 0]), R::Ok([0; 4]));
    assert_eq!(crate::arch::host::take_windows(), 16);
    assert_eq!(w.k.timers.now, now + 16, "ticks that arrived during the map were lost");
    // Copying and unmapping the same.
    assert_eq!(w.sys(t, Syscall::ProcessWrite, [me, 0x1000_0000, 0x1000_0000 + 512 * PAGE, 512 * PAGE, 0, 0]), R::Ok([0; 4]));
    assert_eq!(crate::arch::host::take_windows(), 7, "one window between each two 64-page pieces");
    assert_eq!(w.sys(t, Syscall::Unmap, [me, 0x1000_0000, 1024 * PAGE, 0, 0, 0]), R::Ok([0; 4]));
    assert!(crate::arch::host::take_windows() >= 16);
    assert_eq!(w.k.timers.now, now + 16 + 7 + 32);
    // Tearing down a big address space.
    w.k.map_anon(p, 0x1000_0000, 1024 * PAGE, RW).unwrap();
    crate::arch::host::take_windows();
    w.kill(p, exit::KILLED, 0);
    assert!(crate::arch::host::take_windows() >= 16);
    crate::arch::host::tick_in_windows(false);
}

#[test]
fn page_tables_made_for_a_receive_window_count_against_the_receiver() {
    let mut w = World::new();
    let (p, t) = parent(&mut w);
    let (kid, k) = create(&mut w, t, &Quota { pages: crate::proc::PROCESS_PAGES + 9, ..SMALL }).unwrap();
    let ks = start(&mut w, t, kid).ok()[0] as Tid;
    let class = w.give(p, w.c(p).chan, k, abi::ClassRights::USE);
    w.caps[k] = Some(Caps { chan: class, ..Caps::default() });
    let chan = w.channel(ks);
    let send = w.give(k, chan, p, abi::ChannelRights::SEND);
    w.write(p, BUF, &pattern(1, 4096));
    // Each window in its own 512 GiB: three new tables for each lent page.
    let mut lent = 0;
    for i in 1..10u64 {
        assert_eq!(w.recv(ks, chan, i << 39, FOREVER), blocked(State::RecvBlocked));
        match w.send(t, send, 1, 4096, BUF, FOREVER) {
            R::Blocked(State::AwaitingReply) => {
                let [cookie, ..] = w.status(ks).ok();
                assert_eq!(w.reply(ks, cookie, 0, 0), R::Ok([0; 4]));
                lent += 1;
            }
            other => {
                assert_eq!(other, blocked(State::SendBlocked));
                assert_eq!(w.status(ks), R::Err(Error::LimitReached));
                break;
            }
        }
    }
    assert_eq!(lent, 3);
    assert_eq!(w.k.procs[k].acct.pages, w.k.procs[k].acct.limit.pages);
}
