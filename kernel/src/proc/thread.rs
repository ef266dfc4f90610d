//! Thread control blocks.

use crate::arch::ThreadContext;

/// Index into the thread table. A byte, so that every value indexes the
/// 256-slot table without a bounds check on the IPC paths.
pub type Tid = u8;
/// No thread (end of a queue, no server yet). Its slot exists and is never
/// used, so following a `NO_THREAD` link reads an empty thread.
pub const NO_THREAD: Tid = Tid::MAX;
/// Slots in the thread table: one per `Tid` value.
pub const THREAD_SLOTS: usize = 256;
const _: () = assert!(abi::limits::THREADS < THREAD_SLOTS);

/// The thread table: indexed by any `Tid` without a bounds check.
pub type ThreadTable = [Thread; THREAD_SLOTS];

/// Every id that can name a real thread.
pub fn tids() -> impl Iterator<Item = Tid> {
    0..NO_THREAD
}

/// What a thread is doing. (A byte with these values: the assembly fast
/// path, `arch::x86_64::fastpath`, compares and stores them.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum State {
    /// Slot unused.
    #[default]
    Free,
    /// Ready, in a run queue.
    Runnable,
    /// On the CPU.
    Running,
    /// Only the timer wakes it (sleep, or a penalty for a bad token).
    Sleeping,
    /// In a channel's sender queue.
    SendBlocked,
    /// In a channel's receiver queue.
    RecvBlocked,
    /// Its message was delivered; waits for the reply.
    AwaitingReply,
    /// Waiting for a process to end.
    Waiting,
    /// Ended; the slot is reused once the CPU has left it.
    Dead,
}

/// The in-flight message of a sending thread.
///
/// A message needs no kernel memory of its own: the sender is blocked until
/// the reply, so its control block holds everything about the message. This
/// is the whole per-message cost reported by the IPC benchmark.
#[derive(Clone, Copy, Debug, Default)]
pub struct Message {
    pub tag: u64,
    /// The sender's buffer.
    pub buf: u64,
    /// Where the receiver got the message (its window), once delivered.
    pub recv_va: u64,
    /// The receiver's page-table entry displaced by a lent page (raw bits).
    pub loan_pte: u64,
    /// A capability travelling with the message (sender's token), 0 for none.
    pub xfer_token: u64,
    pub size: u32,
    /// Bumped on every send; part of the message cookie.
    pub seq: u32,
    /// Channel index while queued or in flight.
    pub chan: u16,
    /// The receiving thread once delivered.
    pub server: Tid,
    /// Rights the transferred capability keeps at most.
    pub xfer_rights: u8,
    /// The sender's page is mapped into the receiver instead of copied
    /// (and the sender's own entry for it is not present until the loan ends).
    pub lent: bool,
    /// [`abi::SendFlags`] bits of the send.
    pub flags: u8,
    /// Sent with `Call`: the message is in the sender's message registers
    /// ([`Thread::mr`]), and so is the reply.
    pub regs: bool,
    /// A later message was delivered at the same window while this one was
    /// unanswered: the window no longer holds it, so no reply may take
    /// data from there.
    pub displaced: bool,
}

// The benchmark's memory target: an in-flight message lives in its
// sender's thread block and takes at most 64 bytes there.
const _: () = assert!(core::mem::size_of::<Message>() <= 64);

impl Message {
    /// Reply bytes that reach the sender's buffer for a reply of
    /// `reply_len` bytes (what its `Send` returns): none after a read-only
    /// send.
    #[inline(always)]
    pub fn written_back(&self, reply_len: u64) -> u64 {
        if abi::SendFlags::from_bits_retain(self.flags as u64).contains(abi::SendFlags::READ_ONLY) {
            0
        } else {
            reply_len
        }
    }
}

/// Where the leaf page-table entry for `page` lives (its physical address),
/// remembered by IPC to skip a page-table walk per message; `page` 0 means
/// empty.
///
/// A live process's page tables are never freed or restructured: unmapping
/// clears leaf entries and nothing else, and the tables go only with the
/// process. So an entry's address, once known, stays right for the thread's
/// whole life, whatever is later mapped or unmapped there; reading through
/// it always sees the current entry.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeafCache {
    pub page: u64,
    pub at: u64,
}

/// One thread. (`repr(C)`: the syscall entry finds [`Thread::words`] and
/// [`Thread::mr`] right after [`Thread::ret`].)
#[derive(Default)]
#[repr(C)]
pub struct Thread {
    pub state: State,
    /// Index of the owning process.
    pub process: u8,
    /// The CR3 word of its address space (what a switch to it loads: the
    /// top-level table's physical address, with PCID also the process's
    /// PCID and the no-flush bit; [`crate::mem::pcid::cr3_word`]), made
    /// from the process's at creation.
    pub root: u64,
    /// Priority it was created with.
    pub base_prio: u8,
    /// Priority it runs at: at least `base_prio`, raised while it serves a
    /// higher-priority client (priority inheritance).
    pub prio: u8,
    /// Queue links (run queue, channel queue or wait queue).
    pub next: Tid,
    pub prev: Tid,
    /// Timer list link and deadline (in ticks); `u64::MAX` when not timed.
    pub timer_next: Tid,
    pub deadline: u64,
    /// Channel index while send- or receive-blocked; process index while waiting.
    pub wait_obj: u16,
    /// Receive window while receive-blocked.
    pub recv_buf: u64,
    /// Receive-blocked in `ReplyWait`: a `Call` message goes to its message
    /// registers (else into the window).
    pub recv_regs: bool,
    /// The channel and rights of the fast path's last lookup (`hint`
    /// says for which token, and whether it still holds).
    pub hint_chan: u16,
    pub hint_rights: u8,
    pub msg: Message,
    /// Where the page-table entries of this thread's receive window and of
    /// its last message buffer live (see [`LeafCache`]).
    pub window: LeafCache,
    pub buffer: LeafCache,
    /// Result of the current or last syscall: error code and four values.
    pub ret: [u64; 5],
    /// Where the syscall exit of `Call` and `ReplyWait` loads the message
    /// words from: this thread's `mr` (the entry points it there), or,
    /// set by a fast path just before it switches straight to this thread,
    /// the other side's `mr`, unchanged until this thread's exit has read
    /// it (see [`WordsAt`]).
    pub words: WordsAt,
    /// Message registers (`Call`, `ReplyWait`; see [`abi::call::MsgWords`]):
    /// the words the thread passed on entry (the entry stub stores words
    /// 2-7, the dispatcher words 0-1), replaced by a message or reply
    /// delivered in registers; the syscall exit loads them back.
    pub mr: abi::call::MsgWords,
    /// Whether `hint_chan` and `hint_rights` answer for a token
    /// ([`crate::cap::hint`]).
    pub hint: crate::cap::hint::ChanHint,
    /// Ticks left in the time slice.
    pub slice: u32,
    pub arch: ThreadContext,
}

// The syscall entry and exit find `words` at the results pointer + 40 and
// `mr` at + 48.
const _: () = assert!(core::mem::offset_of!(Thread, words) == core::mem::offset_of!(Thread, ret) + 40);
const _: () = assert!(core::mem::offset_of!(Thread, mr) == core::mem::offset_of!(Thread, ret) + 48);

/// Where a thread's syscall exit takes its message words from.
///
/// Lending the sender's words to the receiver for its exit saves copying
/// them (16 instructions a message) when the receiver runs at once: a fast
/// path switches straight to it, and nothing can run, and so nothing can
/// change the sender's `mr`, before the receiver's exit has loaded them.
/// Every `Call`/`ReplyWait` entry points it back at the thread's own `mr`,
/// so a lent pointer is read at most once. Any other delivery copies.
///
/// A lent pointer is tagged [`WordsAt::LIVE`]: if the switch then leaves
/// straight through the receiver's exit (the sender parks and the
/// receiver was parked: `arch::x86_64::trap::Switch`), words 2-7 are
/// still in the sender's registers `rbx, rbp, r12-r15`, where its entry
/// found them and its dispatcher kept them, and the exit loads only words
/// 0 and 1. Any other switch clears the tag first ([`WordsAt::settle`]).
#[derive(Clone, Copy, Debug)]
pub struct WordsAt(pub *const abi::call::MsgWords);

impl WordsAt {
    /// The tag bit (the words are 8-aligned).
    pub const LIVE: usize = 1;

    /// `from`'s words, lent for an exit right after this switch.
    #[inline(always)]
    pub fn lent(from: *const abi::call::MsgWords) -> WordsAt {
        WordsAt(from.wrapping_byte_add(Self::LIVE))
    }

    /// Where the words are.
    #[inline(always)]
    pub fn ptr(self) -> *const abi::call::MsgWords {
        self.0.map_addr(|a| a & !Self::LIVE)
    }

    /// The switch will not leave through the exit straight away: load
    /// every word from memory.
    #[inline(always)]
    pub fn settle(&mut self) {
        self.0 = self.ptr();
    }
}

impl Default for WordsAt {
    fn default() -> Self {
        WordsAt(core::ptr::null())
    }
}

// SAFETY: a plain address into the thread table (a heap block that lives,
// and stays put, for ever); read only by the syscall exit on the one CPU.
unsafe impl Send for WordsAt {}
// SAFETY: as above.
unsafe impl Sync for WordsAt {}

impl Thread {
    /// The message words this thread's next `Call`/`ReplyWait` exit loads.
    pub fn visible_words(&self) -> abi::call::MsgWords {
        if self.words.0.is_null() {
            return self.mr;
        }
        // SAFETY: see `WordsAt`: an `mr` in the thread table.
        unsafe { *self.words.ptr() }
    }
}

/// Message cookies: bit 63 set (so no cookie is [`abi::NO_REPLY`]), the
/// sender's message number in bits 16..48, the sender's thread in bits 0..8;
/// every other bit is 0.
pub(crate) const COOKIE_MARK: u64 = 1 << 63;
pub(crate) const COOKIE_SEQ_SHIFT: u32 = 16;
const COOKIE_VALUE: u64 = (u32::MAX as u64) << COOKIE_SEQ_SHIFT | Tid::MAX as u64;
// The assembly fast path (`arch::x86_64::fastpath`) builds a cookie as
// the mark's one bit, the sequence number shifted, and the tid in the low
// byte, and checks one by comparing it with the one it would build.
const _: () = assert!(COOKIE_MARK.count_ones() == 1 && Tid::MAX as u64 == 0xff && COOKIE_SEQ_SHIFT >= 8);

impl Thread {
    /// A message cookie for the thread's current message.
    #[inline]
    pub fn cookie(&self, tid: Tid) -> u64 {
        COOKIE_MARK | (self.msg.seq as u64) << COOKIE_SEQ_SHIFT | tid as u64
    }
}

/// Split a message cookie into thread and sequence number; `None` if it
/// cannot name a thread or has any bit set that no cookie has (junk in the
/// unused bits is refused, not ignored).
#[inline]
pub fn decode_cookie(cookie: u64) -> Option<(Tid, u32)> {
    let t = cookie & Tid::MAX as u64;
    (cookie & !COOKIE_VALUE == COOKIE_MARK && t < NO_THREAD as u64)
        .then_some((t as Tid, (cookie >> COOKIE_SEQ_SHIFT) as u32))
}
