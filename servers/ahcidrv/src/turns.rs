//! Taking turns at the controller without sleeping.
//!
//! The disk threads share one MSI vector and its channel, so one command
//! runs at a time. A thread that finds the controller busy blocks until the
//! holder hands it the turn directly ([`Baton::pass`]: on the target an IPC
//! message on a private channel), instead of sleeping and retrying. The
//! uncontended path is one atomic swap and one atomic update: no kernel
//! entry. Generic over the baton so the hand-over logic runs in host tests
//! with std threads.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};

/// How a turn travels from the holder to one waiter.
pub trait Baton {
    /// What a waiting thread waits with (on the target, its own receive
    /// window).
    type Waiter;
    /// Hand the turn to one waiter; returns once a waiter has taken it (a
    /// waiter that counted itself but is not waiting yet takes it when it
    /// gets there).
    fn pass(&self);
    /// Block until a turn is handed to us.
    fn wait(&self, w: &mut Self::Waiter);
}

/// `T`, used by one thread at a time, handed on to waiters as it is freed.
pub struct Turns<B, T> {
    busy: AtomicBool,
    /// Threads that counted themselves as waiting and were not handed a
    /// turn yet.
    waiters: AtomicU32,
    handoffs: AtomicU64,
    baton: B,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached inside `with`, which `busy` and the
// hand-over make exclusive: `busy` stays set from one holder to the next
// while a turn is passed.
unsafe impl<B: Sync, T: Send> Sync for Turns<B, T> {}

impl<B: Baton, T> Turns<B, T> {
    pub const fn new(baton: B, value: T) -> Self {
        Turns { busy: AtomicBool::new(false), waiters: AtomicU32::new(0), handoffs: AtomicU64::new(0), baton, value: UnsafeCell::new(value) }
    }

    /// Turns handed from a holder straight to a waiter so far.
    pub fn handoffs(&self) -> u64 {
        self.handoffs.load(SeqCst)
    }

    /// Run `f` with `T` to ourselves, waiting (blocked, with `w`) for our
    /// turn if another thread has it.
    pub fn with<R>(&self, w: &mut B::Waiter, f: impl FnOnce(&mut T) -> R) -> R {
        self.acquire(w);
        // SAFETY: we hold the turn (see `Sync`): no other thread is in `f`.
        let r = f(unsafe { &mut *self.value.get() });
        self.release();
        r
    }

    fn acquire(&self, w: &mut B::Waiter) {
        if !self.busy.swap(true, SeqCst) {
            return;
        }
        self.waiters.fetch_add(1, SeqCst);
        if !self.busy.swap(true, SeqCst) {
            // Freed meanwhile: ours without a hand-over. No release took
            // our count (a release that takes one keeps `busy` set).
            self.waiters.fetch_sub(1, SeqCst);
            return;
        }
        // The holder (or a later one) takes our count and passes us the turn.
        self.baton.wait(w);
    }

    fn release(&self) {
        loop {
            if self.waiters.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
                self.handoffs.fetch_add(1, SeqCst);
                self.baton.pass();
                return;
            }
            self.busy.store(false, SeqCst);
            // A waiter that counted itself after our look and found `busy`
            // still set waits for a hand-over: take the turn back to give
            // it one, unless someone else holds it now (and will).
            if self.waiters.load(SeqCst) == 0 || self.busy.swap(true, SeqCst) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
    use std::sync::{Arc, Mutex};

    /// A rendezvous channel: `pass` returns once a waiter took the turn.
    struct Rendezvous(SyncSender<()>, Mutex<Receiver<()>>);

    impl Baton for Rendezvous {
        type Waiter = ();
        fn pass(&self) {
            self.0.send(()).unwrap();
        }
        fn wait(&self, _: &mut ()) {
            self.1.lock().unwrap().recv().unwrap();
        }
    }

    #[test]
    fn one_thread_at_a_time_and_waiters_are_handed_the_turn() {
        let (tx, rx) = sync_channel(0);
        let t = Arc::new(Turns::new(Rendezvous(tx, Mutex::new(rx)), (0u64, false)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        t.with(&mut (), |(n, inside)| {
                            assert!(!*inside, "two threads inside");
                            *inside = true;
                            let v = *n;
                            std::thread::yield_now();
                            *n = v + 1;
                            *inside = false;
                        });
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(t.with(&mut (), |(n, _)| *n), 8000);
        assert!(t.handoffs() > 0, "no waiter was ever handed the turn");
        assert_eq!(t.waiters.load(SeqCst), 0);
        assert!(!t.busy.load(SeqCst));
    }

    #[test]
    fn uncontended_turns_pass_nothing() {
        let (tx, rx) = sync_channel(0);
        let t = Turns::new(Rendezvous(tx, Mutex::new(rx)), 1);
        assert_eq!(t.with(&mut (), |v| *v + 1), 2);
        assert_eq!(t.with(&mut (), |v| *v), 1);
        assert_eq!(t.handoffs(), 0);
    }
}
