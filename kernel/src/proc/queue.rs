//! Intrusive FIFO queues of threads.
//!
//! A thread waits in at most one queue at a time (a run queue, a channel's
//! sender or receiver queue, a process's waiters), so one pair of links in
//! the thread suffices and queue operations never allocate. Removal from the
//! middle is O(1) for timeouts and deaths.

use super::{ThreadTable, Tid, NO_THREAD};

/// Head, tail and length of a queue threaded through [`Thread::next`] /
/// [`Thread::prev`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    head: Tid,
    tail: Tid,
    len: u16,
}

impl Default for Queue {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Queue {
    pub const EMPTY: Queue = Queue { head: NO_THREAD, tail: NO_THREAD, len: 0 };
    /// Where the fields are, for the assembly fast path
    /// (`arch::x86_64::fastpath`).
    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    pub(crate) const HEAD_AT: usize = core::mem::offset_of!(Queue, head);
    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    pub(crate) const TAIL_AT: usize = core::mem::offset_of!(Queue, tail);
    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    pub(crate) const LEN_AT: usize = core::mem::offset_of!(Queue, len);

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn front(&self) -> Option<Tid> {
        (self.head != NO_THREAD).then_some(self.head)
    }

    #[inline(always)]
    pub fn push_back(&mut self, threads: &mut ThreadTable, t: Tid) {
        let th = &mut threads[t as usize];
        th.prev = self.tail;
        th.next = NO_THREAD;
        if self.tail == NO_THREAD {
            self.head = t;
        } else {
            threads[self.tail as usize].next = t;
        }
        self.tail = t;
        self.len += 1;
    }

    pub fn push_front(&mut self, threads: &mut ThreadTable, t: Tid) {
        let th = &mut threads[t as usize];
        th.next = self.head;
        th.prev = NO_THREAD;
        if self.head == NO_THREAD {
            self.tail = t;
        } else {
            threads[self.head as usize].prev = t;
        }
        self.head = t;
        self.len += 1;
    }

    #[inline(always)]
    pub fn pop_front(&mut self, threads: &mut ThreadTable) -> Option<Tid> {
        // `remove` for the head, whose `prev` is known (on the IPC fast path).
        let t = self.front()?;
        let next = threads[t as usize].next;
        self.head = next;
        if next == NO_THREAD {
            self.tail = NO_THREAD;
        } else {
            threads[next as usize].prev = NO_THREAD;
        }
        threads[t as usize].next = NO_THREAD;
        self.len -= 1;
        Some(t)
    }

    /// Unlink `t`, which must be in this queue.
    pub fn remove(&mut self, threads: &mut ThreadTable, t: Tid) {
        let (prev, next) = (threads[t as usize].prev, threads[t as usize].next);
        if prev == NO_THREAD {
            self.head = next;
        } else {
            threads[prev as usize].next = next;
        }
        if next == NO_THREAD {
            self.tail = prev;
        } else {
            threads[next as usize].prev = prev;
        }
        threads[t as usize].next = NO_THREAD;
        threads[t as usize].prev = NO_THREAD;
        self.len -= 1;
    }

    /// The members, front to back. The queue must not change meanwhile.
    pub fn iter<'a>(&self, threads: &'a ThreadTable) -> impl Iterator<Item = Tid> + 'a {
        let mut at = self.head;
        core::iter::from_fn(move || {
            (at != NO_THREAD).then(|| {
                let t = at;
                at = threads[t as usize].next;
                t
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::Thread;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn fifo_and_middle_removal() {
        let mut th: std::boxed::Box<ThreadTable> = std::boxed::Box::new(core::array::from_fn(|_| Thread::default()));
        let mut q = Queue::EMPTY;
        for t in [3, 1, 4, 5] {
            q.push_back(&mut th, t);
        }
        q.push_front(&mut th, 7);
        assert_eq!(q.iter(&th).collect::<Vec<_>>(), [7, 3, 1, 4, 5]);
        q.remove(&mut th, 4);
        q.remove(&mut th, 7);
        q.remove(&mut th, 5);
        assert_eq!(q.iter(&th).collect::<Vec<_>>(), [3, 1]);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_front(&mut th), Some(3));
        assert_eq!(q.pop_front(&mut th), Some(1));
        assert_eq!(q.pop_front(&mut th), None);
        assert!(q.is_empty());
        q.push_back(&mut th, 2);
        assert_eq!(q.front(), Some(2));
    }
}
