//! Processes, threads and memory: waiting, exit, limits, anonymous and
//! physical mappings, DMA, teardown.

use super::*;
use abi::{exit, phys_flavor};

/// A device-memory capability like the one `system` gets: everything that
/// is not RAM.
fn device_cap(w: &mut World, p: usize) -> u64 {
    let mut cap = Cap::object(CapKind::Phys, u32::MAX, 0, abi::PhysRights::READ | abi::PhysRights::WRITE | abi::PhysRights::DELEGATE);
    cap.flavor = phys_flavor::DEVICE;
    cap.frames = u32::MAX;
    w.k.mint(p, cap).unwrap()
}

/// A read-only boot-image capability for the frames at `base`.
fn boot_cap(w: &mut World, p: usize, base: u64, frames: u32) -> u64 {
    let mut cap = Cap::object(CapKind::Phys, u32::MAX, 0, abi::PhysRights::READ | abi::PhysRights::DELEGATE);
    cap.flavor = phys_flavor::BOOT;
    cap.base_frame = (base / PAGE) as u32;
    cap.frames = frames;
    w.k.mint(p, cap).unwrap()
}

/// Device registers (a PCI BAR's usual place on q35, below the interrupt windows).
const DEV: u64 = 0xFEB0_0000;
const MAPS: u64 = abi::layout::USER_MAPPINGS;

#[test]
fn process_wait_reports_how_a_process_ended() {
    let mut w = World::new();
    let pp = w.spawn("parent");
    let t = w.thread(pp, 5);
    let wait = Syscall::ProcessWait;
    // Exited with a code, while the parent waits.
    let c1 = w.spawn("exits");
    let t1 = w.thread(c1, 5);
    let h1 = w.proc_cap(pp, c1, abi::RightsMask::ALL);
    assert_eq!(w.sys(t, wait, [h1, FOREVER, 0, 0, 0, 0]), R::Blocked(State::Waiting));
    let class = w.c(c1).thread;
    assert_eq!(w.sys(t1, Syscall::Exit, [class, 42, 0, 0, 0, 0]), R::Blocked(State::Dead));
    assert_eq!(w.status(t), R::Ok([exit::EXITED, 42, 0, 0]));
    assert_eq!(w.sys(t, wait, [h1, 0, 0, 0, 0, 0]), R::Ok([exit::EXITED, 42, 0, 0]), "status not kept");
    // Killed.
    let c2 = w.spawn("killed");
    w.thread(c2, 5);
    let h2 = w.proc_cap(pp, c2, abi::RightsMask::ALL);
    assert_eq!(w.sys(t, Syscall::ProcessKill, [h2, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.sys(t, wait, [h2, FOREVER, 0, 0, 0, 0]), R::Ok([exit::KILLED, 0, 0, 0]));
    // Faulted, with two waiters.
    let c3 = w.spawn("faults");
    w.thread(c3, 5);
    let t2 = w.thread(pp, 5);
    let h3 = w.proc_cap(pp, c3, abi::ProcessRights::WAIT);
    assert_eq!(w.sys(t, wait, [h3, FOREVER, 0, 0, 0, 0]), R::Blocked(State::Waiting));
    assert_eq!(w.sys(t2, wait, [h3, 50 * MS, 0, 0, 0, 0]), R::Blocked(State::Waiting));
    w.kill(c3, exit::FAULTED, 14);
    assert_eq!(w.status(t), R::Ok([exit::FAULTED, 14, 0, 0]));
    assert_eq!(w.status(t2), R::Ok([exit::FAULTED, 14, 0, 0]));
    // A process killing itself.
    let c4 = w.spawn("suicide");
    let t4 = w.thread(c4, 5);
    let me = w.c(c4).me;
    let h4 = w.proc_cap(pp, c4, abi::ProcessRights::WAIT);
    assert_eq!(w.sys(t4, Syscall::ProcessKill, [me, 0, 0, 0, 0, 0]), R::Blocked(State::Dead));
    assert_eq!(w.sys(t, wait, [h4, 0, 0, 0, 0, 0]), R::Ok([exit::KILLED, 0, 0, 0]));
}

#[test]
fn process_wait_times_out_and_refuses_to_wait_for_itself() {
    let mut w = World::new();
    let pp = w.spawn("parent");
    let t = w.thread(pp, 5);
    let cp = w.spawn("child");
    w.thread(cp, 5);
    let h = w.proc_cap(pp, cp, abi::RightsMask::ALL);
    let wait = Syscall::ProcessWait;
    assert_eq!(w.sys(t, wait, [h, 3 * MS, 0, 0, 0, 0]), R::Blocked(State::Waiting));
    w.tick(2);
    assert_eq!(w.state(t), State::Waiting);
    w.tick(1);
    assert_eq!(w.status(t), R::Err(Error::Timeout));
    assert_eq!(w.sys(t, wait, [h, 0, 0, 0, 0, 0]), R::Err(Error::Timeout));
    let me = w.c(pp).me;
    assert_eq!(w.sys(t, wait, [me, FOREVER, 0, 0, 0, 0]), R::Err(Error::InvalidArgument));
    let no_wait = w.proc_cap(pp, cp, abi::ProcessRights::KILL);
    w.rejected(t, wait, [no_wait, 0, 0, 0, 0, 0]);
    // A waiter that dies leaves the queue.
    let t2 = w.thread(pp, 5);
    assert_eq!(w.sys(t2, wait, [h, FOREVER, 0, 0, 0, 0]), R::Blocked(State::Waiting));
    let class = w.c(pp).thread;
    assert_eq!(w.sys(t, Syscall::Exit, [class, 1, 0, 0, 0, 0]), R::Blocked(State::Dead));
    assert!(w.k.procs[cp].waiters.is_empty());
}

#[test]
fn process_ends_when_its_last_thread_exits() {
    let mut w = World::new();
    let pp = w.spawn("parent");
    let t = w.thread(pp, 5);
    let cp = w.spawn("child");
    let t1 = w.thread(cp, 5);
    let t2 = w.thread(cp, 5);
    let h = w.proc_cap(pp, cp, abi::ProcessRights::WAIT);
    assert_eq!(w.sys(t, Syscall::ProcessWait, [h, FOREVER, 0, 0, 0, 0]), R::Blocked(State::Waiting));
    let class = w.c(cp).thread;
    assert_eq!(w.sys(t1, Syscall::ThreadExit, [class, 0, 0, 0, 0, 0]), R::Blocked(State::Dead));
    assert_eq!(w.k.procs[cp].state, ProcState::Alive);
    assert_eq!(w.state(t), State::Waiting);
    assert_eq!(w.sys(t2, Syscall::ThreadExit, [class, 0, 0, 0, 0, 0]), R::Blocked(State::Dead));
    assert_eq!(w.k.procs[cp].state, ProcState::Dead);
    assert_eq!(w.status(t), R::Ok([exit::EXITED, 0, 0, 0]));
}

#[test]
fn process_table_full_gives_limit_reached_and_slots_are_reused_safely() {
    let mut w = World::new();
    let p = w.spawn("spawner");
    let t = w.thread(p, 5);
    let c = w.c(p);
    w.write(p, BUF, b"child");
    w.write(p, BUF + 64, &abi::quota::Quota { pages: 8, ..SMALL }.to_bytes());
    let create = [c.spawn, BUF, 5, BUF + 64, 0, 0];
    let mut children = Vec::new();
    loop {
        match w.sys(t, Syscall::ProcessCreate, create) {
            R::Ok([token, idx, ..]) => children.push((token, idx as usize)),
            R::Err(Error::LimitReached) => break,
            other => panic!("ProcessCreate: {other:?}"),
        }
        assert!(children.len() < abi::limits::PROCESSES, "no process limit");
    }
    assert_eq!(children.len(), abi::limits::PROCESSES - 2, "kernel and spawner take one slot each");
    assert_eq!(w.sys(t, Syscall::ProcessCreate, [c.spawn, BUF, 17, BUF + 64, 0, 0]), R::Err(Error::InvalidArgument));
    // A child's slot is reused after it ends; the old token stays dead.
    let (old, idx) = children[10];
    assert_eq!(w.sys(t, Syscall::ProcessKill, [old, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    let [new, new_idx, ..] = w.sys(t, Syscall::ProcessCreate, create).ok();
    assert_eq!(new_idx as usize, idx);
    // Waiting on the stale token says the process is gone (no strike: the
    // token is ours); everything else refuses it like any other bad token.
    assert_eq!(w.sys(t, Syscall::ProcessWait, [old, 0, 0, 0, 0, 0]), R::Err(Error::NotFound));
    assert_eq!(w.sys(t, Syscall::ProcessWait, [old, FOREVER, 0, 0, 0, 0]), R::Err(Error::NotFound));
    w.rejected(t, Syscall::MapAnon, [old, BUF, PAGE, RW.bits(), 0, 0]);
    assert_eq!(w.sys(t, Syscall::MapAnon, [new, BUF, PAGE, RW.bits(), 0, 0]), R::Ok([0; 4]));
}

#[test]
fn thread_table_full_gives_limit_reached() {
    let mut w = World::new();
    let p = w.spawn("p");
    let t = w.thread(p, 10);
    let me = w.c(p).me;
    let create = [me, 0x1000, 0x2000, 0, 0, 1];
    let mut made = Vec::new();
    loop {
        match w.sys(t, Syscall::ThreadCreate, create) {
            R::Ok([tid, ..]) => made.push(tid as Tid),
            R::Err(Error::LimitReached) => break,
            other => panic!("ThreadCreate: {other:?}"),
        }
        assert!(made.len() < abi::limits::THREADS, "no thread limit");
    }
    assert_eq!(made.len(), abi::limits::THREADS - 2, "idle and the creator take one slot each");
    // One exits, one more fits.
    let class = w.c(p).thread;
    assert_eq!(w.sys(made[5], Syscall::ThreadExit, [class, 0, 0, 0, 0, 0]), R::Blocked(State::Dead));
    assert_eq!(w.sys(t, Syscall::ThreadCreate, create).ok()[0], made[5] as u64);
    assert_eq!(w.sys(t, Syscall::ThreadCreate, create), R::Err(Error::LimitReached));
}

#[test]
fn new_threads_cannot_outrank_their_creator_or_start_outside_user_space() {
    let mut w = World::new();
    let p = w.spawn("p");
    let q = w.spawn("q");
    let t = w.thread(p, 6);
    let me = w.c(p).me;
    let tc = Syscall::ThreadCreate;
    assert_eq!(w.sys(t, tc, [me, 0x1000, 0x2000, 0, 0, 7]), R::Err(Error::InvalidArgument));
    assert_eq!(w.sys(t, tc, [me, 0xffff_8000_0000_0000, 0x2000, 0, 0, 1]), R::Err(Error::BadAddress));
    assert_eq!(w.sys(t, tc, [me, 0x1000, u64::MAX, 0, 0, 1]), R::Err(Error::BadAddress));
    let [tid, ..] = w.sys(t, tc, [me, 0x1234, 0x8000, 11, 22, 6]).ok();
    let th = w.th(tid as Tid);
    assert_eq!((th.state, th.prio, th.process as usize), (State::Runnable, 6, p));
    assert_eq!((th.arch.entry, th.arch.stack, th.arch.args), (0x1234, 0x8000, [11, 22]));
    // Into another process, with the THREAD right only.
    let hq = w.proc_cap(p, q, abi::ProcessRights::THREAD);
    let [tid, ..] = w.sys(t, tc, [hq, 0x1000, 0x2000, 0, 0, 2]).ok();
    assert_eq!(w.k.proc_of(tid as Tid), q);
    w.kill(q, exit::KILLED, 0);
    assert_eq!(w.sys(t, tc, [hq, 0x1000, 0x2000, 0, 0, 2]), R::Err(Error::NotFound));
}

#[test]
fn map_anon_refuses_bad_requests_and_is_all_or_nothing() {
    let mut w = World::new();
    let p = w.spawn("p");
    let t = w.thread(p, 5);
    let me = w.c(p).me;
    let a = 0x1000_4000;
    let map_anon = |w: &mut World, va: u64, len: u64, flags: u64| w.sys(t, Syscall::MapAnon, [me, va, len, flags, 0, 0]);
    assert_eq!(map_anon(&mut w, a, PAGE, (abi::MapFlags::READ | abi::MapFlags::WRITE | abi::MapFlags::EXEC).bits()), R::Err(Error::WriteExecute));
    assert_eq!(map_anon(&mut w, a, PAGE, (abi::MapFlags::WRITE | abi::MapFlags::EXEC).bits()), R::Err(Error::WriteExecute));
    assert_eq!(map_anon(&mut w, a + 1, PAGE, RW.bits()), R::Err(Error::InvalidArgument));
    assert_eq!(map_anon(&mut w, a, PAGE + 1, RW.bits()), R::Err(Error::InvalidArgument));
    assert_eq!(map_anon(&mut w, a, 0, RW.bits()), R::Err(Error::InvalidArgument));
    assert_eq!(map_anon(&mut w, a, PAGE, 1 << 5), R::Err(Error::InvalidArgument));
    assert_eq!(map_anon(&mut w, 0, PAGE, RW.bits()), R::Err(Error::BadAddress));
    assert_eq!(map_anon(&mut w, abi::USER_TOP - PAGE, 2 * PAGE, RW.bits()), R::Err(Error::BadAddress));
    assert_eq!(map_anon(&mut w, 0xffff_8000_0000_0000, PAGE, RW.bits()), R::Err(Error::BadAddress));
    // Larger than one call may map (abi::limits::MAP_MAX), before any range check.
    assert_eq!(map_anon(&mut w, a, !(PAGE - 1), RW.bits()), R::Err(Error::InvalidArgument));
    assert_eq!(map_anon(&mut w, a, abi::limits::MAP_MAX + PAGE, RW.bits()), R::Err(Error::InvalidArgument));
    for va in [a, a - PAGE, a - 2 * PAGE, 0xffff_8000_0000_0000] {
        assert_eq!(w.frame(p, va), None, "a refused mapping left a page at {va:#x}");
    }
    // Overlaps: nothing of the failed call stays, the old pages are intact.
    assert_eq!(map_anon(&mut w, a, 2 * PAGE, RW.bits()), R::Ok([0; 4]));
    w.write(p, a, b"keep");
    let old = (w.frame(p, a), w.frame(p, a + PAGE));
    let free = w.free();
    assert_eq!(map_anon(&mut w, a - 2 * PAGE, 3 * PAGE, RW.bits()), R::Err(Error::AlreadyExists));
    assert_eq!(map_anon(&mut w, a + PAGE, 2 * PAGE, RW.bits()), R::Err(Error::AlreadyExists));
    assert_eq!((w.frame(p, a - 2 * PAGE), w.frame(p, a - PAGE), w.frame(p, a + 2 * PAGE)), (None, None, None));
    assert_eq!((w.frame(p, a), w.frame(p, a + PAGE)), old);
    assert_eq!(w.read(p, a, 4), b"keep");
    assert_eq!(w.free(), free, "a failed mapping kept frames");
    // Permissions as asked; fresh memory is zeroed.
    assert_eq!(map_anon(&mut w, a + 4 * PAGE, PAGE, abi::MapFlags::READ.bits()), R::Ok([0; 4]));
    assert_eq!(map_anon(&mut w, a + 5 * PAGE, PAGE, (abi::MapFlags::READ | abi::MapFlags::EXEC).bits()), R::Ok([0; 4]));
    let ro = w.flags(p, a + 4 * PAGE).unwrap();
    let rx = w.flags(p, a + 5 * PAGE).unwrap();
    assert!(!ro.contains(Flags::WRITABLE) && ro.contains(Flags::NO_EXECUTE), "{ro:?}");
    assert!(!rx.contains(Flags::WRITABLE) && !rx.contains(Flags::NO_EXECUTE), "{rx:?}");
    assert_eq!(w.sys(t, Syscall::Unmap, [me, a, PAGE, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(map_anon(&mut w, a, PAGE, RW.bits()), R::Ok([0; 4]));
    assert_eq!(w.read(p, a, 4), [0; 4], "recycled memory not zeroed");
    // Into another process only with MAP on it.
    let q = w.bare("q");
    let hq = w.proc_cap(p, q, abi::ProcessRights::MAP);
    assert_eq!(w.sys(t, Syscall::MapAnon, [hq, a, PAGE, RW.bits(), 0, 0]), R::Ok([0; 4]));
    assert!(w.frame(q, a).is_some());
    let hq_wait = w.proc_cap(p, q, abi::ProcessRights::WAIT);
    w.rejected(t, Syscall::MapAnon, [hq_wait, a + PAGE, PAGE, RW.bits(), 0, 0]);
}

#[test]
fn ending_a_process_returns_every_frame() {
    for how in ["exit", "kill", "fault"] {
        let mut w = World::new();
        let Server { sp, s, chan, window_frame: server_window, before } = server(&mut w, None);
        let p = w.spawn("victim");
        let (t1, t2, t3) = (w.thread(p, 5), w.thread(p, 5), w.thread(p, 5));
        let c = w.c(p);
        // Memory spread over several page tables, a far receive window,
        // DMA mapped, a channel, a page lent out.
        for va in [0x10_0000_0000, 0x7f00_0000_0000, MAPS + 0x20_0000] {
            assert_eq!(w.sys(t1, Syscall::MapAnon, [c.me, va, 3 * PAGE, RW.bits(), 0, 0]), R::Ok([0; 4]));
        }
        let own = w.channel(t1);
        assert_eq!(w.recv(t2, own, 0x5000_0000_0000, FOREVER), R::Blocked(State::RecvBlocked));
        let [dma, _, ..] = w.sys(t1, Syscall::DmaAlloc, [c.dma, 3, 0, 0, 0, 0]).ok();
        assert_eq!(w.sys(t1, Syscall::MapPhys, [dma, MAPS, 0, 3 * PAGE, RW.bits(), 0]), R::Ok([0; 4]));
        let send = w.give(sp, chan, p, abi::ChannelRights::SEND);
        assert_eq!(w.recv(s, chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
        assert_eq!(w.send(t1, send, 0, 4096, BUF, FOREVER), R::Blocked(State::AwaitingReply));
        let [cookie, ..] = w.status(s).ok();
        match how {
            "exit" => assert_eq!(w.sys(t3, Syscall::Exit, [c.thread, 0, 0, 0, 0, 0]), R::Blocked(State::Dead)),
            "kill" => w.kill(p, exit::KILLED, 0),
            _ => w.kill(p, exit::FAULTED, 13),
        }
        assert_eq!(w.k.procs[p].state, ProcState::Dead);
        assert_eq!(w.free(), before, "{how}: frames leaked");
        // The page it lent stays with the server, in place of the
        // server's own page at the window (freed with the victim).
        assert_ne!(w.frame(sp, WIN), server_window, "{how}: the lent page left the server's window");
        assert!(!w.used(server_window.unwrap()), "{how}: the displaced window page leaked");
        assert_eq!(w.reply(s, cookie, 0, 0), R::Err(Error::Incapable));
        assert_eq!(w.k.ipc_totals().channels, 1, "{how}: the victim's channel survived");
    }
}

#[test]
fn map_phys_maps_device_memory_but_never_ram() {
    let mut w = World::new();
    let before = w.free();
    let p = w.spawn("driver");
    let t = w.thread(p, 5);
    let dev = device_cap(&mut w, p);
    let mp = Syscall::MapPhys;
    assert_eq!(w.sys(t, mp, [dev, MAPS, DEV, 2 * PAGE, RW.bits(), 0]), R::Ok([0; 4]));
    assert_eq!(w.frame(p, MAPS + PAGE), Some(DEV + PAGE));
    let f = w.flags(p, MAPS).unwrap();
    assert!(f.contains(Flags::NO_CACHE | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::USER_ACCESSIBLE), "{f:?}");
    // RAM, even partly, is refused; so are EXEC and bad offsets.
    let ram_end = FRAMES as u64 * PAGE;
    for (offset, len, flags, e) in [
        (0x10_0000, PAGE, abi::MapFlags::READ, Error::InvalidArgument),
        (ram_end - PAGE, 2 * PAGE, abi::MapFlags::READ, Error::InvalidArgument),
        (0, PAGE, abi::MapFlags::READ, Error::InvalidArgument),
        (DEV, PAGE, abi::MapFlags::READ | abi::MapFlags::EXEC, Error::InvalidArgument),
        // A flag bit no mapping has (ignored before flags were typed).
        (DEV, PAGE, abi::MapFlags::READ | abi::MapFlags::from_bits_retain(8), Error::InvalidArgument),
        (DEV + 1, PAGE, abi::MapFlags::READ, Error::InvalidArgument),
        (u32::MAX as u64 * PAGE, PAGE, abi::MapFlags::READ, Error::InvalidArgument),
        (DEV, PAGE, abi::MapFlags::READ, Error::AlreadyExists),
    ] {
        assert_eq!(w.sys(t, mp, [dev, MAPS, offset, len, flags.bits(), 0]), R::Err(e), "offset {offset:#x}");
    }
    assert_eq!(w.frame(p, MAPS + 2 * PAGE), None);
    // Half over an existing mapping: nothing of the new one stays.
    assert_eq!(w.sys(t, mp, [dev, MAPS - PAGE, DEV + 0x8_0000, 2 * PAGE, abi::MapFlags::READ.bits(), 0]), R::Err(Error::AlreadyExists));
    assert_eq!(w.frame(p, MAPS - PAGE), None);
    assert_eq!(w.frame(p, MAPS), Some(DEV));
    // A read-only range cannot be mapped writable.
    let ro = w.sys(t, Syscall::PhysDerive, [dev, DEV, 4 * PAGE, abi::PhysRights::READ.bits() as u64, 0, 0]).ok()[0];
    w.rejected(t, mp, [ro, MAPS + 8 * PAGE, 0, PAGE, RW.bits(), 0]);
    assert_eq!(w.sys(t, mp, [ro, MAPS + 8 * PAGE, 0, PAGE, abi::MapFlags::READ.bits(), 0]), R::Ok([0; 4]));
    assert!(!w.flags(p, MAPS + 8 * PAGE).unwrap().contains(Flags::WRITABLE));
    // Unmapping and teardown free no device "frames".
    let free = w.free();
    assert_eq!(w.sys(t, Syscall::Unmap, [w.c(p).me, MAPS, PAGE, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.free(), free, "unmapping device memory changed the free frames");
    w.kill(p, exit::KILLED, 0);
    assert_eq!(w.free(), before, "frames gained or lost through device mappings");
}

#[test]
fn device_capabilities_never_map_the_interrupt_windows() {
    let mut w = World::new();
    let p = w.spawn("driver");
    let t = w.thread(p, 5);
    let dev = device_cap(&mut w, p);
    let mp = Syscall::MapPhys;
    for &(start, end) in &abi::phys_flavor::INTERRUPT_WINDOWS {
        // First, last and a middle page, and ranges that straddle either edge.
        for (offset, len) in [(start, PAGE), (end - PAGE, PAGE), (start + 0xf_f000, PAGE), (start - PAGE, 2 * PAGE), (end - PAGE, 2 * PAGE), (start - PAGE, end - start + 2 * PAGE)] {
            assert_eq!(w.sys(t, mp, [dev, MAPS, offset, len, RW.bits(), 0]), R::Err(Error::InvalidArgument), "{offset:#x}+{len:#x}");
            assert_eq!(w.frame(p, MAPS), None, "{offset:#x}: a refused map left a page");
        }
        // The pages right next to a window are ordinary device memory.
        assert_eq!(w.sys(t, mp, [dev, MAPS, start - PAGE, PAGE, RW.bits(), 0]), R::Ok([0; 4]));
        assert_eq!(w.sys(t, mp, [dev, MAPS + PAGE, end, PAGE, RW.bits(), 0]), R::Ok([0; 4]));
        assert_eq!(w.sys(t, Syscall::Unmap, [w.c(p).me, MAPS, 2 * PAGE, 0, 0, 0]), R::Ok([0; 4]));
    }
    // The MSI page the issue named, through a narrowed capability too.
    let sub = w.sys(t, Syscall::PhysDerive, [dev, 0xfeef_f000, PAGE, abi::RightsMask::ALL.bits() as u64, 0, 0]).ok()[0];
    assert_eq!(w.sys(t, mp, [sub, MAPS, 0, PAGE, RW.bits(), 0]), R::Err(Error::InvalidArgument));
}

#[test]
fn phys_derive_narrows_the_range_and_the_rights() {
    let mut w = World::new();
    let p = w.spawn("driver");
    let t = w.thread(p, 5);
    let dev = device_cap(&mut w, p);
    let derive = Syscall::PhysDerive;
    let mask = (abi::PhysRights::READ | abi::PhysRights::DELEGATE).bits() as u64;
    let sub = w.sys(t, derive, [dev, DEV, 2 * PAGE, mask, 0, 0]).ok()[0];
    assert_eq!(w.sys(t, Syscall::PhysInfo, [sub, 0, 0, 0, 0, 0]), R::Ok([DEV, 2 * PAGE, 0, 0]));
    let [kind, rights_, id, flavor] = w.sys(t, Syscall::CapInspect, [sub, 0, 0, 0, 0, 0]).ok();
    assert_eq!((kind, rights_, id, flavor), (CapKind::Phys as u64, mask, DEV, phys_flavor::DEVICE as u64));
    let subsub = w.sys(t, derive, [sub, PAGE, PAGE, abi::RightsMask::ALL.bits() as u64, 0, 0]).ok()[0];
    assert_eq!(w.sys(t, Syscall::PhysInfo, [subsub, 0, 0, 0, 0, 0]), R::Ok([DEV + PAGE, PAGE, 0, 0]));
    assert_eq!(w.sys(t, Syscall::CapInspect, [subsub, 0, 0, 0, 0, 0]).ok()[1], mask, "rights grew");
    for (offset, len) in [(PAGE, 2 * PAGE), (0, 0), (1, PAGE), (0, PAGE + 1), (!(PAGE - 1), 2 * PAGE)] {
        assert_eq!(w.sys(t, derive, [sub, offset, len, mask, 0, 0]), R::Err(Error::InvalidArgument), "{offset:#x}+{len:#x}");
    }
    assert_eq!(w.sys(t, Syscall::MapPhys, [subsub, MAPS, PAGE, PAGE, abi::MapFlags::READ.bits(), 0]), R::Err(Error::InvalidArgument));
    assert_eq!(w.sys(t, Syscall::MapPhys, [subsub, MAPS, 0, PAGE, abi::MapFlags::READ.bits(), 0]), R::Ok([0; 4]));
    assert_eq!(w.frame(p, MAPS), Some(DEV + PAGE));
    let no_delegate = w.sys(t, derive, [sub, 0, PAGE, abi::PhysRights::READ.bits() as u64, 0, 0]).ok()[0];
    w.rejected(t, derive, [no_delegate, 0, PAGE, abi::PhysRights::READ.bits() as u64, 0, 0]);
    let chan = w.channel(t);
    w.rejected(t, Syscall::PhysInfo, [chan, 0, 0, 0, 0, 0]);
}

#[test]
fn dma_memory_lives_while_its_owner_or_a_mapper_does() {
    let mut w = World::new();
    let a = w.spawn("owner");
    let b = w.spawn("borrower");
    let (ta, tb) = (w.thread(a, 5), w.thread(b, 5));
    let ca = w.c(a);
    for pages in [0, abi::limits::DMA_MAX_PAGES + 1] {
        assert_eq!(w.sys(ta, Syscall::DmaAlloc, [ca.dma, pages, 0, 0, 0, 0]), R::Err(Error::InvalidArgument));
    }
    let [dma, addr, ..] = w.sys(ta, Syscall::DmaAlloc, [ca.dma, 4, 0, 0, 0, 0]).ok();
    assert_eq!(addr % PAGE, 0);
    let frames: Vec<u64> = (0..4).map(|i| addr + i * PAGE).collect();
    assert!(frames.iter().all(|&f| w.used(f)));
    assert_eq!(w.sys(ta, Syscall::PhysInfo, [dma, 0, 0, 0, 0, 0]), R::Ok([addr, 4 * PAGE, 0, 0]));
    assert_eq!(w.sys(ta, Syscall::CapInspect, [dma, 0, 0, 0, 0, 0]).ok()[3], phys_flavor::DMA as u64);
    assert_eq!(w.sys(ta, Syscall::MapPhys, [dma, MAPS, 0, 4 * PAGE, RW.bits(), 0]), R::Ok([0; 4]));
    assert_eq!(w.read(a, MAPS, 16), [0; 16], "DMA memory not zeroed");
    w.write(a, MAPS + PAGE, b"shared");
    let hb = w.proc_cap(a, b, abi::ProcessRights::GRANT);
    let theirs = w.sys(ta, Syscall::CapGrant, [hb, dma, (abi::PhysRights::READ | abi::PhysRights::WRITE).bits() as u64, 0, 0, 0]).ok()[0];
    assert_eq!(w.sys(tb, Syscall::MapPhys, [theirs, MAPS, 0, 4 * PAGE, RW.bits(), 0]), R::Ok([0; 4]));
    assert_eq!(w.read(b, MAPS + PAGE, 6), b"shared");
    // The owner ends; the borrower's mapping keeps the memory.
    w.kill(a, exit::KILLED, 0);
    assert!(frames.iter().all(|&f| w.used(f)), "DMA memory freed while mapped");
    assert_eq!(w.read(b, MAPS + PAGE, 6), b"shared");
    let mb = w.c(b).me;
    assert_eq!(w.sys(tb, Syscall::Unmap, [mb, MAPS, 2 * PAGE, 0, 0, 0]), R::Ok([0; 4]));
    assert!(frames.iter().all(|&f| w.used(f)), "DMA memory freed while partly mapped");
    assert_eq!(w.sys(tb, Syscall::Unmap, [mb, MAPS + 2 * PAGE, 2 * PAGE, 0, 0, 0]), R::Ok([0; 4]));
    assert!(frames.iter().all(|&f| !w.used(f)), "DMA memory leaked");
    w.rejected(tb, Syscall::MapPhys, [theirs, MAPS, 0, PAGE, abi::MapFlags::READ.bits(), 0]);
    // Nobody maps it: freed with its owner.
    let c = w.spawn("brief");
    let tc = w.thread(c, 5);
    let [_, addr, ..] = w.sys(tc, Syscall::DmaAlloc, [w.c(c).dma, 2, 0, 0, 0, 0]).ok();
    w.kill(c, exit::EXITED, 0);
    assert!(!w.used(addr) && !w.used(addr + PAGE), "unmapped DMA memory outlived its owner");
}

#[test]
fn process_write_cannot_write_through_read_only_mappings() {
    const IMAGE: u64 = 12 << 20;
    let mut w = World::build(FRAMES, &[(0, FRAMES as u64 * PAGE)], Some(IMAGE..IMAGE + 16 * PAGE));
    let p = w.spawn("reader");
    let t = w.thread(p, 5);
    let boot = boot_cap(&mut w, p, IMAGE, 16);
    let me = w.c(p).me;
    w.rejected(t, Syscall::MapPhys, [boot, MAPS, 0, PAGE, RW.bits(), 0]);
    assert_eq!(w.sys(t, Syscall::MapPhys, [boot, MAPS, 0, PAGE, abi::MapFlags::READ.bits(), 0]), R::Ok([0; 4]));
    w.write(p, BUF, b"evil");
    let r = w.sys(t, Syscall::ProcessWrite, [me, MAPS, BUF, 4, 0, 0]);
    assert_eq!(w.read(p, MAPS, 4), [0; 4], "the read-only boot image was modified");
    assert_eq!(r, R::Err(Error::BadAddress));
    // The same through a read-only page lent by a client.
    let rig = w.rig(5, 5);
    w.k.map_anon(rig.cp, UNMAPPED, PAGE, abi::MapFlags::READ).unwrap();
    assert_eq!(w.recv(rig.s, rig.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    assert_eq!(w.send(rig.c, rig.send, 0, 4096, UNMAPPED, FOREVER), R::Blocked(State::AwaitingReply));
    let server_me = w.c(rig.sp).me;
    w.write(rig.sp, BUF, b"evil");
    w.sys(rig.s, Syscall::ProcessWrite, [server_me, WIN, BUF, 4, 0, 0]);
    assert_eq!(w.read(rig.cp, UNMAPPED, 4), [0; 4], "the client's read-only page was modified");
}

#[test]
fn process_write_fills_code_only_before_the_target_starts() {
    const CODE: u64 = 0x80_0000;
    let mut w = World::new();
    let loader = w.spawn("loader");
    let t = w.thread(loader, 5);
    let child = w.spawn("child");
    let h = w.proc_cap(loader, child, abi::RightsMask::ALL);
    w.k.map_anon(child, CODE, PAGE, abi::MapFlags::READ | abi::MapFlags::EXEC).unwrap();
    w.k.map_anon(loader, CODE, PAGE, abi::MapFlags::READ | abi::MapFlags::EXEC).unwrap();
    w.write(loader, BUF, b"\xeb\xfe");
    let pw = Syscall::ProcessWrite;
    // Not started: the loader fills its code.
    assert_eq!(w.sys(t, pw, [h, CODE, BUF, 2, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.read(child, CODE, 2), b"\xeb\xfe");
    // Started: its code is as read-only to others as to itself.
    w.thread(child, 5);
    w.write(loader, BUF, b"evil");
    assert_eq!(w.sys(t, pw, [h, CODE, BUF, 4, 0, 0]), R::Err(Error::BadAddress));
    assert_eq!(w.read(child, CODE, 4), b"\xeb\xfe\0\0", "a running program's code was rewritten");
    // What it may write itself stays writable.
    assert_eq!(w.sys(t, pw, [h, BUF + PAGE, BUF, 4, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.read(child, BUF + PAGE, 4), b"evil");
    // A program cannot rewrite its own code either.
    let me = w.c(loader).me;
    assert_eq!(w.sys(t, pw, [me, CODE, BUF, 4, 0, 0]), R::Err(Error::BadAddress));
    assert_eq!(w.read(loader, CODE, 4), [0; 4], "a program rewrote its own code");
}

#[test]
fn kernel_never_touches_device_memory_behind_user_buffers() {
    // The kernel is told RAM ends at 12 MiB; the fake RAM above stands in for
    // device memory, so the host can show the access without crashing.
    const DEVICE: u64 = 12 << 20;
    let mut w = World::build(FRAMES, &[(0, DEVICE)], Some(DEVICE..FRAMES as u64 * PAGE));
    let r = w.rig(5, 5);
    let dev = device_cap(&mut w, r.cp);
    assert_eq!(w.sys(r.c, Syscall::MapPhys, [dev, MAPS, DEVICE, PAGE, RW.bits(), 0]), R::Ok([0; 4]));
    let print = w.c(r.cp).print;
    assert_eq!(w.sys(r.c, Syscall::DebugPrint, [print, MAPS, 8, 0, 0, 0]), R::Err(Error::BadAddress));
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    assert_eq!(w.send(r.c, r.send, 0, 64, MAPS, FOREVER), R::Err(Error::BadAddress));
}

#[test]
fn power_off_needs_the_power_class() {
    let mut w = World::new();
    let p = w.spawn("p");
    let t = w.thread(p, 5);
    w.rejected(t, Syscall::PowerOff, [w.c(p).thread, 77, 0, 0, 0, 0]);
    assert_ne!(crate::arch::host::powered_off(), Some(77));
    assert_eq!(w.sys(t, Syscall::PowerOff, [w.c(p).power, 3, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(crate::arch::host::powered_off(), Some(3));
}

#[test]
fn unmapping_a_huge_empty_range_is_quick() {
    let mut w = World::new();
    let p = w.spawn("p");
    let t = w.thread(p, 5);
    let me = w.c(p).me;
    w.write(p, BUF, b"kept");
    // 64 GiB without a single page table below the top level: nothing to do.
    // (All of user space, 128 TiB, takes minutes at this rate.)
    let start = std::time::Instant::now();
    assert_eq!(w.sys(t, Syscall::Unmap, [me, 0x100_0000_0000, 64 << 30, 0, 0, 0]), R::Ok([0; 4]));
    let took = start.elapsed();
    assert!(took < std::time::Duration::from_millis(100), "unmapping nothing took {took:?}");
    assert_eq!(w.read(p, BUF, 4), b"kept");
}

#[test]
fn kernel_accounting_counts_what_processes_hold_and_returns_after_they_end() {
    let mut w = World::new();
    let pp = w.spawn("parent");
    let t = w.thread(pp, 5);
    let before = w.k.accounting();
    let c = w.spawn("holder");
    let ct = w.thread(c, 5);
    w.thread(c, 5);
    let cc = w.c(c);
    let [chan, ..] = w.sys(ct, Syscall::ChannelCreate, [cc.chan, 0, 0, 0, 0, 0]).ok();
    w.write(c, BUF, b"ACCT::y");
    assert_eq!(w.sys(ct, Syscall::NameRegister, [chan, BUF, 7, cc.names, 0, 0]), R::Ok([0; 4]));
    assert!(matches!(w.sys(ct, Syscall::DmaAlloc, [cc.dma, 2, 0, 0, 0, 0]), R::Ok(_)));
    assert_eq!(w.sys(ct, Syscall::MapAnon, [cc.me, MAPS, 3 * PAGE, (abi::MapFlags::READ | abi::MapFlags::WRITE).bits(), 0, 0]), R::Ok([0; 4]));
    let held = w.k.accounting();
    assert_eq!(held.free_processes, before.free_processes - 1);
    assert_eq!(held.free_threads, before.free_threads - 2);
    assert_eq!(held.free_channels, before.free_channels - 1);
    assert_eq!(held.free_names, before.free_names - 1);
    assert_eq!(held.free_dma, before.free_dma - 1);
    assert!(held.free_frames + 2 + 3 <= before.free_frames, "frames {} -> {}", before.free_frames, held.free_frames);
    // The syscall reports the same figures.
    let dbg = w.c(pp).debug_ipc;
    assert_eq!(w.sys(t, Syscall::DebugIpc, [dbg, abi::debug::op::KERNEL_ACCOUNTING, BUF, 0, 0, 0]), R::Ok([0; 4]));
    let raw = w.read(pp, BUF, 48);
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    let now = w.k.accounting();
    assert_eq!(
        [word(0), word(1), word(2), word(3), word(4), word(5)],
        [now.free_frames, now.free_processes, now.free_threads, now.free_channels, now.free_names, now.free_dma]
    );
    w.kill(c, exit::KILLED, 0);
    assert_eq!(w.k.accounting(), before, "the ended process left something behind");
}
