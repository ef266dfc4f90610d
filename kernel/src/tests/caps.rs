//! Capabilities: rejection and its delay, token properties, transfer,
//! rights, granting, names.

use super::*;
use std::collections::HashSet;

/// `CapInspect`: (kind, rights, id, flavour).
#[track_caller]
fn inspect(w: &mut World, t: Tid, token: u64) -> [u64; 4] {
    w.sys(t, Syscall::CapInspect, [token, 0, 0, 0, 0, 0]).ok()
}

#[test]
fn forged_stale_foreign_and_wrong_kind_tokens_are_rejected() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let op = w.spawn("other");
    let o = w.thread(op, 5);
    let foreign = w.channel(o);
    let send = Syscall::Send;
    // Forged, including 0.
    w.rejected(r.c, send, [BOGUS, 0, 0, 0, 0, 0]);
    w.rejected(r.c, send, [0, 0, 0, 0, 0, 0]);
    // Valid in another process only.
    w.rejected(r.c, send, [foreign, 0, 0, 0, 0, 0]);
    w.rejected(r.c, Syscall::Yield, [w.c(op).thread, 0, 0, 0, 0, 0]);
    // Stale: its channel was destroyed.
    let doomed = w.channel(r.s);
    let stale = w.give(r.sp, doomed, r.cp, abi::ChannelRights::SEND);
    assert_eq!(w.sys(r.s, Syscall::ChannelDestroy, [doomed, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    w.rejected(r.c, send, [stale, 0, 0, 0, 0, 0]);
    // Of the wrong kind.
    let cc = w.c(r.cp);
    w.rejected(r.c, send, [cc.thread, 0, 0, 0, 0, 0]);
    w.rejected(r.c, Syscall::Yield, [cc.chan, 0, 0, 0, 0, 0]);
    w.rejected(r.c, Syscall::MapAnon, [r.send, BUF, PAGE, RW.bits(), 0, 0]);
    w.rejected(r.c, Syscall::PhysInfo, [cc.me, 0, 0, 0, 0, 0]);
    // The genuine token still works for its holder.
    assert_eq!(w.send(o, foreign, 0, 0, 0, 0), R::Err(Error::Timeout));
}

#[test]
fn penalty_grows_with_repeated_failures_and_decays_when_quiet() {
    let mut w = World::new();
    let p = w.spawn("guesser");
    let t = w.thread(p, 5);
    let guess = [BOGUS, 0, 0, 0, 0, 0];
    let delays: Vec<u64> = (0..12).map(|_| w.rejected(t, Syscall::Yield, guess)).collect();
    assert!(delays[0] <= 2, "first strike costs {} ticks: {delays:?}", delays[0]);
    for i in 0..delays.len() - 3 {
        assert!(delays[i + 3] > delays[i], "delay does not grow: {delays:?}");
    }
    let last = *delays.last().unwrap();
    assert!(last >= 500 && delays.iter().all(|&d| d <= 1250), "delay not capped near a second: {delays:?}");
    // A few quiet seconds forgive part of it...
    w.tick(4000);
    let after_pause = w.rejected(t, Syscall::Yield, guess);
    assert!(after_pause < last / 4, "no decay after a pause: {after_pause} vs {last}");
    // ...a long quiet period all of it.
    w.tick(100_000);
    let after_long_pause = w.rejected(t, Syscall::Yield, guess);
    assert!(after_long_pause <= 2, "strikes not forgotten: {after_long_pause}");
    // An honest process is unaffected by someone else's strikes.
    let q = w.spawn("honest");
    let u = w.thread(q, 5);
    assert_eq!(w.sys(u, Syscall::Yield, [w.c(q).thread, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
}

#[test]
fn honest_failures_are_not_delayed() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let c = w.c(r.cp);
    let s = w.c(r.sp);
    let now = w.k.timers.now;
    let cases: [(Tid, Syscall, [u64; 6], Error); 9] = [
        (r.c, Syscall::Send, [r.send, 0, 0, 0, 0, 0], Error::Timeout),
        (r.c, Syscall::Send, [r.send, 0, 4097, BUF, FOREVER, 0], Error::TooLarge),
        (r.s, Syscall::Receive, [r.chan, WIN + 1, FOREVER, 0, 0, 0], Error::BadAddress),
        (r.c, Syscall::MapAnon, [c.me, BUF + 1, PAGE, RW.bits(), 0, 0], Error::InvalidArgument),
        (r.c, Syscall::MapAnon, [c.me, BUF, PAGE, RW.bits(), 0, 0], Error::AlreadyExists),
        (r.c, Syscall::NameFind, [c.names, BUF, 0, 0, 0, 0], Error::InvalidArgument),
        (r.c, Syscall::ProcessWait, [c.me, 0, 0, 0, 0, 0], Error::InvalidArgument),
        (r.s, Syscall::Reply, [0x8000_0000_dead_0001, 0, 0, 0, 0, 0], Error::Incapable),
        (r.s, Syscall::DmaAlloc, [s.dma, 0, 0, 0, 0, 0], Error::InvalidArgument),
    ];
    for (t, call, args, e) in cases {
        assert_eq!(w.sys(t, call, args), R::Err(e), "{call:?}");
        assert_eq!(w.th(t).deadline, u64::MAX, "{call:?} delayed the caller");
    }
    assert_eq!(w.sys_raw(r.c, 999, [c.thread, 0, 0, 0, 0, 0]), R::Err(Error::UnknownSyscall));
    assert_eq!(w.k.timers.now, now);
    assert_eq!((w.k.procs[r.cp].strikes.count(), w.k.procs[r.sp].strikes.count()), (0, 0));
}

#[test]
fn tokens_are_never_zero_and_never_repeat() {
    let mut w = World::new();
    let a = w.spawn("a");
    let b = w.spawn("b");
    let (ta, tb) = (w.thread(a, 5), w.thread(b, 5));
    let mut seen = HashSet::new();
    for caps in [w.c(a), w.c(b)] {
        for tok in [caps.print, caps.thread, caps.chan, caps.names, caps.dma, caps.spawn, caps.debug_ipc, caps.power, caps.me] {
            assert!(tok != 0 && seen.insert(tok), "token {tok:#x} repeated");
        }
    }
    for i in 0..300 {
        let t = if i % 2 == 0 { ta } else { tb };
        let th = w.ct(t).thread;
        let tok = w.sys(t, Syscall::CapDerive, [th, abi::ClassRights::USE.bits() as u64, 0, 0, 0, 0]).ok()[0];
        assert!(tok != 0 && seen.insert(tok), "token {tok:#x} repeated");
        assert_eq!(w.sys(t, Syscall::CapDrop, [tok, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
        let ch = w.channel(t);
        assert!(ch != 0 && seen.insert(ch), "token {ch:#x} repeated");
        assert_eq!(w.sys(t, Syscall::ChannelDestroy, [ch, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    }
    // A dropped token is gone.
    let th = w.c(a).thread;
    let tok = w.sys(ta, Syscall::CapDerive, [th, abi::RightsMask::ALL.bits() as u64, 0, 0, 0, 0]).ok()[0];
    assert_eq!(w.sys(ta, Syscall::CapDrop, [tok, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    w.rejected(ta, Syscall::Yield, [tok, 0, 0, 0, 0, 0]);
    w.rejected(ta, Syscall::CapDrop, [tok, 0, 0, 0, 0, 0]);
}

#[test]
fn send_cap_gives_the_receiver_its_own_token_with_reduced_rights() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let xp = w.spawn("third");
    let x = w.thread(xp, 5);
    let mine = w.channel(r.c);
    let [kind, rights_, id, _] = inspect(&mut w, r.c, mine);
    assert_eq!((kind, rights_), (CapKind::Channel as u64, abi::RightsMask::ALL.bits() as u64));
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    let mask = (abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE).bits() as u64;
    assert_eq!(w.sys(r.c, Syscall::SendCap, [r.send, 3, 0, 0, mine, mask]), R::Blocked(State::AwaitingReply));
    let [cookie, tag, _, theirs] = w.status(r.s).ok();
    assert_eq!(tag, 3);
    assert!(theirs != 0 && theirs != mine, "the receiver got the sender's token value");
    assert_eq!(inspect(&mut w, r.s, theirs), [CapKind::Channel as u64, mask, id, 0]);
    // Each token works only where it belongs.
    w.rejected(x, Syscall::Send, [theirs, 0, 0, 0, 0, 0]);
    w.rejected(r.s, Syscall::CapInspect, [mine, 0, 0, 0, 0, 0]);
    // The rights travelled as masked: it can send (nobody listens), not receive.
    assert_eq!(w.send(r.s, theirs, 0, 0, 0, 0), R::Err(Error::Timeout));
    w.rejected(r.s, Syscall::Receive, [theirs, WIN + PAGE, 0, 0, 0, 0]);
    // A capability back with the reply.
    let s_chan = r.chan;
    assert_eq!(w.sys(r.s, Syscall::Reply, [cookie, 0, WIN, 0, s_chan, abi::ChannelRights::SEND.bits() as u64]), R::Ok([0; 4]));
    let [result, back, ..] = w.status(r.c).ok();
    assert_eq!(result, 0);
    assert_ne!(back, 0);
    assert_eq!(inspect(&mut w, r.c, back)[1], abi::ChannelRights::SEND.bits() as u64);
    // Without DELEGATE a capability cannot travel; a mask cannot add rights.
    let nodel = w.sys(r.c, Syscall::CapDerive, [mine, (abi::ChannelRights::SEND | abi::ChannelRights::RECEIVE).bits() as u64, 0, 0, 0, 0]).ok()[0];
    w.rejected(r.c, Syscall::SendCap, [r.send, 0, 0, 0, nodel, abi::RightsMask::ALL.bits() as u64]);
    assert_eq!(w.k.ipc.in_flight, 0, "a refused SendCap sent something");
    let weak = w.sys(r.c, Syscall::CapDerive, [mine, mask, 0, 0, 0, 0]).ok()[0];
    assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), R::Blocked(State::RecvBlocked));
    assert_eq!(w.sys(r.c, Syscall::SendCap, [r.send, 0, 0, 0, weak, abi::RightsMask::ALL.bits() as u64]), R::Blocked(State::AwaitingReply));
    let [cookie, _, _, got] = w.status(r.s).ok();
    assert_eq!(inspect(&mut w, r.s, got)[1], mask, "a transfer added rights");
    assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
}

#[test]
fn rights_bound_what_a_token_can_do() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    // A send-only token cannot receive, destroy, publish or pass itself on.
    w.rejected(r.c, Syscall::Receive, [r.send, WIN, 0, 0, 0, 0]);
    w.rejected(r.c, Syscall::ChannelDestroy, [r.send, 0, 0, 0, 0, 0]);
    w.write(r.cp, BUF, b"X::y");
    w.rejected(r.c, Syscall::NameRegister, [r.send, BUF, 4, 0, 0, 0]);
    let cp_me = w.c(r.cp).me;
    w.rejected(r.c, Syscall::CapGrant, [cp_me, r.send, abi::ChannelRights::SEND.bits() as u64, 0, 0, 0]);
    // Deriving never adds rights.
    let derived = w.sys(r.c, Syscall::CapDerive, [r.send, abi::RightsMask::ALL.bits() as u64, 0, 0, 0, 0]).ok()[0];
    assert_eq!(inspect(&mut w, r.c, derived)[1], abi::ChannelRights::SEND.bits() as u64);
    let none = w.sys(r.c, Syscall::CapDerive, [r.send, 0, 0, 0, 0, 0]).ok()[0];
    w.rejected(r.c, Syscall::Send, [none, 0, 0, 0, 0, 0]);
    // A receive-only token cannot send.
    let recv_only = w.sys(r.s, Syscall::CapDerive, [r.chan, abi::ChannelRights::RECEIVE.bits() as u64, 0, 0, 0, 0]).ok()[0];
    w.rejected(r.s, Syscall::Send, [recv_only, 0, 0, 0, 0, 0]);
    assert_eq!(w.recv(r.s, recv_only, WIN, 0), R::Err(Error::Timeout));
    // Class capabilities need USE; process capabilities the right for the act.
    let th = w.c(r.cp).thread;
    let no_use = w.sys(r.c, Syscall::CapDerive, [th, abi::RightsMask::DELEGATE.bits() as u64, 0, 0, 0, 0]).ok()[0];
    w.rejected(r.c, Syscall::Yield, [no_use, 0, 0, 0, 0, 0]);
    let wait_only = w.sys(r.c, Syscall::CapDerive, [cp_me, abi::ProcessRights::WAIT.bits() as u64, 0, 0, 0, 0]).ok()[0];
    w.rejected(r.c, Syscall::MapAnon, [wait_only, UNMAPPED, PAGE, RW.bits(), 0, 0]);
    w.rejected(r.c, Syscall::ThreadCreate, [wait_only, 0x1000, 0x2000, 0, 0, 1]);
    w.rejected(r.c, Syscall::ProcessKill, [wait_only, 0, 0, 0, 0, 0]);
    assert_eq!(w.frame(r.cp, UNMAPPED), None);
    assert_eq!(w.k.procs[r.cp].state, ProcState::Alive);
}

#[test]
fn cap_grant_needs_grant_on_the_target_and_delegate_on_the_source() {
    let mut w = World::new();
    let a = w.spawn("a");
    let b = w.spawn("b");
    let (ta, tb) = (w.thread(a, 5), w.thread(b, 5));
    let chan = w.channel(ta);
    let pb = w.proc_cap(a, b, abi::RightsMask::ALL);
    let granted = w.sys(ta, Syscall::CapGrant, [pb, chan, abi::ChannelRights::SEND.bits() as u64, 0, 0, 0]).ok()[0];
    assert_eq!(inspect(&mut w, tb, granted)[1], abi::ChannelRights::SEND.bits() as u64);
    assert_eq!(w.send(tb, granted, 0, 0, 0, 0), R::Err(Error::Timeout));
    w.rejected(ta, Syscall::CapInspect, [granted, 0, 0, 0, 0, 0]);
    // The source needs DELEGATE.
    let nodel = w.sys(ta, Syscall::CapDerive, [chan, (abi::ChannelRights::SEND | abi::ChannelRights::RECEIVE).bits() as u64, 0, 0, 0, 0]).ok()[0];
    w.rejected(ta, Syscall::CapGrant, [pb, nodel, abi::ChannelRights::SEND.bits() as u64, 0, 0, 0]);
    // The target capability needs GRANT.
    let no_grant = w.sys(ta, Syscall::CapDerive, [pb, (abi::ProcessRights::MAP | abi::ProcessRights::WAIT).bits() as u64, 0, 0, 0, 0]).ok()[0];
    w.rejected(ta, Syscall::CapGrant, [no_grant, chan, abi::ChannelRights::SEND.bits() as u64, 0, 0, 0]);
    // A dead target is not found (no delay: the capability is genuine).
    w.kill(b, abi::exit::KILLED, 0);
    assert_eq!(w.sys(ta, Syscall::CapGrant, [pb, chan, abi::ChannelRights::SEND.bits() as u64, 0, 0, 0]), R::Err(Error::NotFound));
}

/// Write `name` at [`BUF`] of `t`'s process and call `call` on it.
#[track_caller]
fn named(w: &mut World, t: Tid, call: Syscall, token: u64, name: &str) -> R {
    let p = w.k.proc_of(t);
    w.write(p, BUF, name.as_bytes());
    // NameRegister's authority over the provider: the process's Names class.
    let names = w.c(p).names;
    w.sys(t, call, [token, BUF, name.len() as u64, names, 0, 0])
}

#[test]
fn names_register_find_and_deregister() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let names = w.c(r.cp).names;
    let (reg, find, dereg) = (Syscall::NameRegister, Syscall::NameFind, Syscall::NameDeregister);
    assert_eq!(named(&mut w, r.s, reg, r.chan, "SYSTEM::VFS"), R::Ok([0; 4]));
    let found = named(&mut w, r.c, find, names, "SYSTEM::VFS").ok()[0];
    let chan_id = inspect(&mut w, r.s, r.chan)[2];
    assert_eq!(inspect(&mut w, r.c, found), [CapKind::Channel as u64, abi::ChannelRights::SEND.bits() as u64, chan_id, 0]);
    assert_eq!(named(&mut w, r.c, find, names, "SYSTEM::VFS").ok()[0], found, "a second lookup minted another token");
    w.rejected(r.c, Syscall::Receive, [found, WIN, 0, 0, 0, 0]);
    // Only a DELEGATE holder may publish.
    w.write(r.cp, BUF, b"OTHER::x");
    w.rejected(r.c, reg, [found, BUF, 8, 0, 0, 0]);
    // Bad names and duplicates.
    assert_eq!(named(&mut w, r.s, reg, r.chan, "SYSTEM::VFS"), R::Err(Error::AlreadyExists));
    let long = "L".repeat(abi::limits::NAME_LEN + 1);
    for bad in ["novfs", "::x", "A::", "A B::c", long.as_str()] {
        assert_eq!(named(&mut w, r.s, reg, r.chan, bad), R::Err(Error::InvalidArgument), "{bad:?}");
    }
    assert_eq!(w.sys(r.s, reg, [r.chan, UNMAPPED, 6, 0, 0, 0]), R::Err(Error::BadAddress));
    assert_eq!(named(&mut w, r.c, find, names, "SYSTEM::NOPE"), R::Err(Error::NotFound));
    // Only the named channel's holder withdraws it.
    let other = w.channel(r.s);
    assert_eq!(named(&mut w, r.s, dereg, other, "SYSTEM::VFS"), R::Err(Error::NotFound));
    assert_eq!(named(&mut w, r.s, dereg, r.chan, "SYSTEM::VFS"), R::Ok([0; 4]));
    assert_eq!(named(&mut w, r.c, find, names, "SYSTEM::VFS"), R::Err(Error::NotFound));
    assert_eq!(named(&mut w, r.s, reg, other, "SYSTEM::VFS"), R::Ok([0; 4]));
}

/// `NamesScope` from `names` for `provider` (written at [`BUF`] + 512).
#[track_caller]
fn scoped(w: &mut World, t: Tid, names: u64, provider: &str) -> R {
    w.write(w.k.proc_of(t), BUF + 512, provider.as_bytes());
    w.sys(t, Syscall::NamesScope, [names, BUF + 512, provider.len() as u64, 0, 0, 0])
}

#[test]
fn names_need_authority_over_their_provider() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let all = w.c(r.sp).names;
    let reg = |w: &mut World, names: u64, name: &str| {
        w.write(r.sp, BUF, name.as_bytes());
        w.sys(r.s, Syscall::NameRegister, [r.chan, BUF, name.len() as u64, names, 0, 0])
    };
    let ahci = scoped(&mut w, r.s, all, "AHCI").ok()[0];
    assert_eq!(inspect(&mut w, r.s, ahci)[3], 4, "the scope is not the capability's flavour");
    // Outside the scope: refused, and nothing is registered.
    for other in ["SYSTEM::X", "AHCIX::DISK0", "AHC::DISK0", "ahci::DISK0"] {
        assert_eq!(reg(&mut w, ahci, other), R::Err(Error::Incapable), "{other}");
        assert_eq!(named(&mut w, r.s, Syscall::NameFind, all, other), R::Err(Error::NotFound), "{other}");
    }
    assert_eq!(reg(&mut w, ahci, "AHCI::DISK0"), R::Ok([0; 4]));
    // No widening: another provider or the all scope from a provider scope.
    assert_eq!(scoped(&mut w, r.s, ahci, "SYSTEM"), R::Err(Error::Incapable));
    let find_only = scoped(&mut w, r.s, ahci, "").ok()[0];
    assert_eq!(scoped(&mut w, r.s, find_only, "AHCI"), R::Err(Error::Incapable));
    assert_eq!(reg(&mut w, find_only, "AHCI::DISK1"), R::Err(Error::Incapable));
    // Every scope finds; a derived copy keeps its scope.
    assert!(matches!(named(&mut w, r.s, Syscall::NameFind, find_only, "AHCI::DISK0"), R::Ok(_)));
    let used = w.sys(r.s, Syscall::CapDerive, [ahci, abi::ClassRights::USE.bits() as u64, 0, 0, 0, 0]).ok()[0];
    assert_eq!(reg(&mut w, used, "SYSTEM::Y"), R::Err(Error::Incapable));
    assert_eq!(reg(&mut w, used, "AHCI::DISK1"), R::Ok([0; 4]));
    // Narrowing needs DELEGATE; bad providers and other tokens are refused.
    // (a bad token, so delayed like any other)
    w.write(r.sp, BUF + 512, b"AHCI");
    w.rejected(r.s, Syscall::NamesScope, [used, BUF + 512, 4, 0, 0, 0]);
    for bad in ["ABCDEFGHI", "A:B", "A B"] {
        assert_eq!(scoped(&mut w, r.s, all, bad), R::Err(Error::InvalidArgument), "{bad:?}");
    }
    assert_eq!(w.sys(r.s, Syscall::NamesScope, [all, UNMAPPED, 4, 0, 0, 0]), R::Err(Error::BadAddress));
    let thread = w.c(r.sp).thread;
    w.rejected(r.s, Syscall::NamesScope, [thread, BUF + 512, 4, 0, 0, 0]);
    w.write(r.sp, BUF, b"AHCI::DISK2");
    w.rejected(r.s, Syscall::NameRegister, [r.chan, BUF, 11, thread, 0, 0]);
    w.rejected(r.s, Syscall::NameRegister, [r.chan, BUF, 11, 0, 0, 0]);
    // A scope handed to another process stays as narrow there.
    let [granted, ..] = w.sys(r.s, Syscall::CapGrant, [w.c(r.sp).me, ahci, abi::RightsMask::ALL.bits() as u64, 0, 0, 0]).ok();
    assert_eq!(reg(&mut w, granted, "SYSTEM::Z"), R::Err(Error::Incapable));
    // The longest provider a scope holds, in full.
    let longest = scoped(&mut w, r.s, all, "ABCDEFGH").ok()[0];
    assert_eq!(reg(&mut w, longest, "ABCDEFGX::x"), R::Err(Error::Incapable));
    assert_eq!(reg(&mut w, longest, "ABCDEFGH::x"), R::Ok([0; 4]));
}

#[test]
fn names_with_the_same_hash_stay_apart() {
    let (a, b) = crate::ipc::named::SDBM_COLLISION;
    assert_eq!(abi::sdbm(a.as_bytes()), abi::sdbm(b.as_bytes()));
    let mut w = World::new();
    let p = w.spawn("p");
    let t = w.thread(p, 5);
    let names = w.c(p).names;
    let (ch1, ch2) = (w.channel(t), w.channel(t));
    let (id1, id2) = (inspect(&mut w, t, ch1)[2], inspect(&mut w, t, ch2)[2]);
    assert_eq!(named(&mut w, t, Syscall::NameRegister, ch1, a), R::Ok([0; 4]));
    assert_eq!(named(&mut w, t, Syscall::NameFind, names, b), R::Err(Error::NotFound), "collision taken as the same name");
    assert_eq!(named(&mut w, t, Syscall::NameRegister, ch2, b), R::Ok([0; 4]));
    let fa = named(&mut w, t, Syscall::NameFind, names, a).ok()[0];
    let fb = named(&mut w, t, Syscall::NameFind, names, b).ok()[0];
    assert_eq!(inspect(&mut w, t, fa)[2], id1);
    assert_eq!(inspect(&mut w, t, fb)[2], id2);
    assert_eq!(named(&mut w, t, Syscall::NameDeregister, ch1, a), R::Ok([0; 4]));
    let fb = named(&mut w, t, Syscall::NameFind, names, b).ok()[0];
    assert_eq!(inspect(&mut w, t, fb)[2], id2);
}

#[test]
fn names_vanish_with_their_channel() {
    let mut w = World::new();
    let r = w.rig(5, 5);
    let names = w.c(r.cp).names;
    assert_eq!(named(&mut w, r.s, Syscall::NameRegister, r.chan, "SVC::a"), R::Ok([0; 4]));
    assert_eq!(named(&mut w, r.s, Syscall::NameRegister, r.chan, "SVC::b"), R::Ok([0; 4]));
    assert_eq!(w.k.ipc_totals().names, 2);
    assert_eq!(w.sys(r.s, Syscall::ChannelDestroy, [r.chan, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.k.ipc_totals().names, 0);
    assert_eq!(named(&mut w, r.c, Syscall::NameFind, names, "SVC::a"), R::Err(Error::NotFound));
    let fresh = w.channel(r.s);
    assert_eq!(named(&mut w, r.s, Syscall::NameRegister, fresh, "SVC::a"), R::Ok([0; 4]));
}

#[test]
fn tokens_near_the_top_of_the_range_are_rejected_not_a_panic() {
    let mut w = World::new();
    let p = w.spawn("p");
    let t = w.thread(p, 5);
    // Occupy the slots the largest tokens name (token 127 is a possible
    // token like any other: only 0 and 1 are reserved).
    let slots = crate::cap::table::SLOTS as u64;
    let caps = w.k.procs[p].caps.as_mut().unwrap();
    for i in 0..4 {
        // A slot the process's own tokens hold already serves as well.
        let _ = caps.insert(slots - 1 - i + 1000 * slots, Cap::class(SyscallClass::Thread, abi::ClassRights::empty()));
    }
    for token in [u64::MAX, u64::MAX - 1, u64::MAX - 3] {
        w.rejected(t, Syscall::Yield, [token, 0, 0, 0, 0, 0]);
        w.rejected(t, Syscall::CapDrop, [token, 0, 0, 0, 0, 0]);
    }
}
