//! PCID: every process's CR3 word carries its own tag, and every change to
//! a space that is not loaded is flushed in that space's PCID (see
//! `crate::mem::pcid`), while without PCID nothing of that happens.

use super::*;
use crate::arch::host::{take_flushes, take_unloaded_flushes, UnloadedFlush};
use crate::mem::pcid::{Pcid, NO_FLUSH, PCID_MASK};

const ON: Pcid = Pcid::On { invpcid: true };

/// A world whose CPU tags TLB entries (`pcid`), set as the boot does.
fn world(pcid: Pcid) -> World {
    let mut w = World::new();
    w.k.set_pcid(pcid);
    take_unloaded_flushes();
    w
}

fn root(w: &World, p: usize) -> u64 {
    w.k.procs[p].space.unwrap().root().start_address().as_u64()
}

#[test]
fn each_process_loads_its_own_tagged_word_and_without_pcid_the_bare_root() {
    for pcid in [Pcid::Off, ON] {
        let mut w = world(pcid);
        let (a, b) = (w.spawn("a"), w.spawn("b"));
        let (ta, tb) = (w.thread(a, 5), w.thread(b, 5));
        let (wa, wb) = (w.th(ta).root, w.th(tb).root);
        if pcid.is_on() {
            assert_eq!(wa, root(&w, a) | a as u64 | NO_FLUSH);
            assert_eq!(wb, root(&w, b) | b as u64 | NO_FLUSH);
            assert_ne!(wa & PCID_MASK, wb & PCID_MASK, "two processes share a PCID");
            assert_eq!(w.th(IDLE_THREAD).root & PCID_MASK, 0, "the kernel's space is not PCID 0");
            assert_ne!(w.th(IDLE_THREAD).root & NO_FLUSH, 0);
        } else {
            assert_eq!((wa, wb), (root(&w, a), root(&w, b)), "without PCID a word is the bare root, as before");
        }
        // The switch loads the word, and only when the space changes.
        w.run_as(ta);
        let t2 = w.thread(a, 5);
        // (The fake CR3 keeps no bit 63; a marker shows whether a load came.)
        let word = |x: u64| x & !NO_FLUSH;
        // SAFETY: the fake machine's CR3.
        unsafe { w.k.activate(tb) };
        assert_eq!(crate::arch::read_cr3(), word(wb));
        // SAFETY: as above.
        unsafe { crate::arch::load_address_space(0x5000) };
        // SAFETY: as above.
        unsafe { w.k.activate(tb) };
        assert_eq!(crate::arch::read_cr3(), 0x5000, "the same space loaded again");
        // SAFETY: as above.
        unsafe { w.k.activate(t2) };
        assert_eq!(crate::arch::read_cr3(), word(wa), "a second thread of `a` loads `a`'s word");
    }
}

#[test]
fn unmapping_in_a_space_that_is_not_loaded_flushes_it_in_its_pcid() {
    for pcid in [Pcid::Off, ON] {
        let mut w = world(pcid);
        let (a, b) = (w.spawn("a"), w.spawn("b"));
        let ta = w.thread(a, 5);
        w.run_as(ta);
        take_flushes();
        take_unloaded_flushes();
        // `a` runs; `b`'s page goes (as an Unmap on a child would do it).
        w.k.unmap(b, BUF, PAGE).unwrap();
        assert!(!take_flushes().contains(&BUF), "invlpg would flush the loaded space, not b's");
        let expect = pcid.is_on().then_some(UnloadedFlush { cr3: w.k.space_word(b), active: w.k.space_word(a), va: Some(BUF) });
        assert_eq!(take_unloaded_flushes(), expect.into_iter().collect::<Vec<_>>(), "{pcid:?}");
        // The loaded space's own page: invlpg only.
        w.k.unmap(a, BUF, PAGE).unwrap();
        assert!(take_flushes().contains(&BUF));
        assert_eq!(take_unloaded_flushes(), []);
    }
}

#[test]
fn a_queued_lender_s_page_is_flushed_in_its_pcid_when_delivered_later() {
    for pcid in [Pcid::Off, ON] {
        let mut w = world(pcid);
        let r = w.rig(5, 5);
        w.write(r.cp, BUF, &pattern(9, 4096));
        // No receiver yet: the message waits, the page still the client's.
        assert_eq!(w.send(r.c, r.send, 1, 4096, BUF, FOREVER), blocked(State::SendBlocked));
        take_unloaded_flushes();
        // The server takes it while the client's space is not loaded: the
        // client's entry for the page is hidden there and must go from its
        // PCID too, or the client could still write the lent page.
        let [cookie, ..] = w.recv(r.s, r.chan, WIN, FOREVER).ok();
        let client = UnloadedFlush { cr3: w.k.space_word(r.cp), active: w.k.space_word(r.sp), va: Some(BUF) };
        let got = take_unloaded_flushes();
        assert_eq!(got.contains(&client), pcid.is_on(), "{pcid:?}: {got:?}");
        assert_eq!(w.reply(r.s, cookie, 0, 0), R::Ok([0; 4]));
    }
}

#[test]
fn a_window_changed_while_its_server_is_not_loaded_is_flushed_in_its_pcid() {
    for pcid in [Pcid::Off, ON] {
        let mut w = world(pcid);
        let r = w.rig(5, 5);
        assert_eq!(w.recv(r.s, r.chan, WIN, FOREVER), blocked(State::RecvBlocked));
        assert_eq!(w.send(r.c, r.send, 1, 4096, BUF, FOREVER), blocked(State::AwaitingReply));
        // A third process runs when the lender dies: the window's entry in
        // the server's space (not loaded) changes from the loan to its own.
        let other = w.spawn("other");
        let to = w.thread(other, 5);
        w.run_as(to);
        take_unloaded_flushes();
        w.kill(r.cp, abi::exit::KILLED, 0);
        let server = UnloadedFlush { cr3: w.k.space_word(r.sp), active: w.k.space_word(other), va: Some(WIN) };
        let got = take_unloaded_flushes();
        assert_eq!(got.contains(&server), pcid.is_on(), "{pcid:?}: {got:?}");
    }
}

#[test]
fn a_reused_process_slot_s_pcid_is_flushed_whole_before_its_new_space_runs() {
    let mut w = world(ON);
    let mut made = vec![];
    while let Ok((p, _)) = w.k.create_process(b"filler") {
        made.push(p);
    }
    let victim = made[made.len() / 2];
    let t = w.thread(victim, 5);
    w.run_as(t);
    w.kill(victim, abi::exit::KILLED, 0);
    take_unloaded_flushes();
    let (p, _) = w.k.create_process(b"again").unwrap();
    assert_eq!(p, victim, "the dead process's slot (and PCID) is the only one left");
    assert_eq!(
        take_unloaded_flushes(),
        [UnloadedFlush { cr3: w.k.space_word(p), active: w.k.active_root, va: None }],
        "the reused PCID may still tag the dead space's entries"
    );
    // Without PCID a new process costs no flush.
    let mut w = world(Pcid::Off);
    w.spawn("a");
    assert_eq!(take_unloaded_flushes(), []);
}

#[test]
fn the_monitor_reports_the_tagging_mode_and_the_cr3_in_use() {
    use abi::debug::{op::ADDRESS_SPACE, PCID_INVPCID, PCID_ON};
    for (pcid, bits) in [(Pcid::Off, 0), (ON, PCID_ON | PCID_INVPCID), (Pcid::On { invpcid: false }, PCID_ON)] {
        let mut w = world(pcid);
        let a = w.spawn("a");
        let t = w.thread(a, 5);
        let word = w.k.space_word(a);
        // (The host's CR3 is what the glue loaded last; here, by hand.)
        // SAFETY: the host fake only records the word.
        unsafe { crate::arch::load_address_space(word) };
        let dbg = w.c(a).debug_ipc;
        let [cr3, mode, ..] = w.sys(t, Syscall::DebugIpc, [dbg, ADDRESS_SPACE, 0, 0, 0, 0]).ok();
        assert_eq!((cr3, mode), (word & !NO_FLUSH, bits), "{pcid:?}");
    }
}
