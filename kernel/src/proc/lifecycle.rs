//! Process and thread lifecycle: creation (with quotas carved out of the
//! creator's), start, exit, kill, and reclaiming everything an ended
//! process held.
//!
//! Kept apart from scheduling and IPC because ending a process touches
//! every table (its threads' waits and messages in flight, the requests it
//! was serving, its channels, interrupts, DMA regions, address space and
//! quota) and the order matters: this module is where that order is
//! written down once. It holds no state of its own: processes and threads
//! live in the kernel's tables ([`super::Process`], [`super::Thread`]).

use alloc::vec::Vec;

use abi::{exit, Error};

use crate::arch::UserThread;
use crate::kernel::{Kernel, IDLE_THREAD, KERNEL_PROCESS, WINDOW_PAGES};
use crate::mem::dma::release_leaf;
use crate::mem::PageTables;
use crate::proc::quota::{self, carve_cost};
use crate::proc::{tids, Account, ProcState, Process, Resource, State, Tid, NO_THREAD, PROCESS_SLOTS};
use crate::sched::SLICE_TICKS;

/// Pages an empty process needs at least: its top-level page table and its
/// capability table.
pub const PROCESS_PAGES: u64 = 1 + crate::cap::table::PAGES;

impl Kernel {
    /// A new, empty process named `name` that gets the whole machine (the
    /// kernel makes `system` this way): `(index, generation)`.
    pub fn create_process(&mut self, name: &[u8]) -> Result<(usize, u32), Error> {
        use abi::limits;
        let machine = abi::quota::Quota {
            threads: limits::THREADS as u64 - 1,
            pages: self.frames.free_frames() as u64,
            channels: limits::CHANNELS as u64,
            caps: limits::CAPS_PER_PROCESS as u64,
            processes: limits::PROCESSES as u64 - 1,
        };
        self.new_process(name, machine, None)
    }

    /// A new, empty process created by `parent` with quota `want` (a field
    /// of [`abi::quota::REST`]: all `parent` has left), carved out of
    /// `parent`'s own (see [`crate::proc::quota`]).
    pub fn create_child(&mut self, parent: usize, name: &[u8], want: &abi::quota::Quota) -> Result<(usize, u32), Error> {
        let pr = &self.procs[parent];
        let mut q = *want;
        for r in Resource::ALL {
            let most = if r.carved() { pr.room(r) } else { quota::get(&pr.acct.limit, r) };
            let f = quota::get_mut(&mut q, r);
            if *f == abi::quota::REST {
                // The child's own slot comes out of the processes too.
                *f = if r == Resource::Processes { most.saturating_sub(1) } else { most };
            }
        }
        let cost = carve_cost(&q);
        if q.caps > pr.acct.limit.caps || Resource::ALL.iter().any(|&r| r.carved() && quota::get(&cost, r) > pr.room(r)) {
            return Err(Error::LimitReached);
        }
        let made = self.new_process(name, q, Some((parent as u8, pr.gen)))?;
        self.procs[parent].acct.carve(&cost);
        Ok(made)
    }

    /// A process slot with an empty address space and capability table,
    /// charged to its own page quota.
    fn new_process(&mut self, name: &[u8], limit: abi::quota::Quota, creator: Option<(u8, u32)>) -> Result<(usize, u32), Error> {
        let usable = &self.procs[..abi::limits::PROCESSES];
        let slot = usable
            .iter()
            .position(|p| p.state == ProcState::Free)
            .or_else(|| usable.iter().position(|p| p.state == ProcState::Dead))
            .ok_or(Error::LimitReached)?;
        if limit.pages < PROCESS_PAGES {
            return Err(Error::LimitReached);
        }
        let before = self.frames.free_frames();
        let space = PageTables::new_user(&self.phys, &mut self.frames, &self.kernel_pt).ok_or(Error::NoMemory)?;
        let pages = (before - self.frames.free_frames()) as u64 + crate::cap::table::PAGES;
        let Some(caps) = crate::cap::CapTable::new().filter(|_| pages <= limit.pages) else {
            space.destroy_user(&self.phys, &mut self.frames, |_, _, _| {});
            return Err(if pages > limit.pages { Error::LimitReached } else { Error::NoMemory });
        };
        let gen = self.procs[slot].gen.wrapping_add(1);
        self.procs[slot] = Process {
            state: ProcState::Alive,
            gen,
            space: Some(space),
            caps: Some(caps),
            acct: Account { limit, pages, creator, ..Account::default() },
            ..Process::default()
        };
        self.procs[slot].set_name(name);
        if self.pcid.is_on() {
            // The slot's PCID may still tag entries (and paging-structure
            // caches) of the slot's last space, whose tables are freed:
            // drop them all before the new space can be loaded.
            // SAFETY: both are the kernel's address spaces, which share the
            // kernel half.
            unsafe { crate::arch::flush_unloaded(self.space_word(slot), self.active_root, None) };
        }
        Ok((slot, gen))
    }

    /// Start a user thread in process `p`.
    pub fn create_thread(&mut self, p: usize, entry: u64, stack: u64, args: [u64; 2], prio: u8) -> Result<Tid, Error> {
        if self.procs[p].state != ProcState::Alive {
            return Err(Error::NotFound);
        }
        if self.procs[p].room(Resource::Threads) == 0 {
            return Err(Error::LimitReached);
        }
        // A dead thread's slot is reusable: the CPU left its stack when it
        // died (threads are only created from syscalls of live threads).
        let t = tids()
            .skip(1)
            .find(|&i| matches!(self.threads[i as usize].state, State::Free | State::Dead) && i != self.current)
            .ok_or(Error::LimitReached)?;
        let root = self.space_word(p);
        let th = &mut self.threads[t as usize];
        UserThread::prepare_user(&mut th.arch, t, &self.phys, &mut self.frames, &mut self.kernel_pt, entry, stack, args)
            .map_err(|_| Error::NoMemory)?;
        th.process = p as u8;
        th.root = root;
        th.base_prio = prio;
        th.prio = prio;
        th.slice = SLICE_TICKS;
        // Keep the sequence number: a stale cookie of the slot's previous
        // thread must not match this thread's messages.
        th.msg = crate::proc::Message { seq: th.msg.seq, ..Default::default() };
        // Cached translations and lookups belonged to the slot's previous
        // thread.
        th.hint = crate::cap::hint::ChanHint::NONE;
        th.window = Default::default();
        th.buffer = Default::default();
        th.ret = [0; 5];
        th.state = State::Sleeping; // not yet anywhere; made runnable below
        self.procs[p].threads += 1;
        self.make_runnable(t);
        Ok(t)
    }

    /// Remove `t` from whatever it waits in, undoing a message in flight.
    fn detach(&mut self, t: Tid) {
        self.timer_cancel(t);
        let obj = self.threads[t as usize].wait_obj;
        match self.threads[t as usize].state {
            State::Runnable if t != IDLE_THREAD => self.sched.remove(&mut self.threads, t),
            State::SendBlocked => {
                self.channels.slot(obj).senders.remove(&mut self.threads, t);
                self.ipc.in_flight -= 1;
                // Dead before the boosts it caused are re-evaluated.
                self.threads[t as usize].state = State::Dead;
                self.sender_left(obj);
            }
            State::RecvBlocked => self.channels.slot(obj).receivers.remove(&mut self.threads, t),
            State::AwaitingReply => {
                // `t` is ending: a page it lent stays with the server.
                self.orphan_loan(t);
                self.abort_message(t)
            }
            State::Waiting => self.procs[obj as usize].waiters.remove(&mut self.threads, t),
            _ => {}
        }
    }

    /// Fail every request whose server matches `served_by` with `PeerDied`,
    /// giving lent pages back.
    fn abort_requests(&mut self, served_by: impl Fn(&Kernel, Tid) -> bool) {
        for t in tids() {
            let th = &self.threads[t as usize];
            if th.state == State::AwaitingReply && th.msg.server != NO_THREAD && served_by(self, th.msg.server) {
                self.abort_message(t);
                self.complete(t, Err(Error::PeerDied));
            }
        }
    }

    /// End thread `t`. The process ends (exit code 0) with its last thread.
    pub fn exit_thread(&mut self, t: Tid) {
        let p = self.proc_of(t);
        self.detach(t);
        // Requests it holds cannot be answered any more.
        self.abort_requests(|_, server| server == t);
        self.threads[t as usize].state = State::Dead;
        self.procs[p].threads -= 1;
        if self.procs[p].threads == 0 {
            self.end_process(p, exit::EXITED, 0);
        }
    }

    /// End process `p` (exit, fault or kill): release everything it holds and
    /// everyone waiting on it, then every process this leaves unreachable
    /// ([`Self::reap_orphans`]). Safe to call on the current process.
    pub fn end_process(&mut self, p: usize, how: u64, code: u64) {
        if p == KERNEL_PROCESS || self.procs[p].state != ProcState::Alive {
            return;
        }
        self.end_one(p, how, code);
        self.reap_orphans();
    }

    /// End every child process (one made by `ProcessCreate`) that has no
    /// thread and that no process with threads can reach through process
    /// capabilities, directly or through other such processes: nobody can
    /// ever start it, so it would hold its slot, tables and quota for good.
    /// Processes the kernel made (`system`) are always reachable.
    pub fn reap_orphans(&mut self) {
        let mut reach = [false; PROCESS_SLOTS];
        let mut work: Vec<usize> = Vec::new();
        for (i, pr) in self.procs.iter().enumerate() {
            if pr.state == ProcState::Alive && (i == KERNEL_PROCESS || pr.threads > 0 || pr.acct.creator.is_none()) {
                reach[i] = true;
                work.push(i);
            }
        }
        while let Some(q) = work.pop() {
            let Some(caps) = self.procs[q].caps.as_ref() else { continue };
            for cap in caps.iter().filter(|c| c.kind == abi::CapKind::Process) {
                let o = cap.object as usize;
                let held = self.procs.get(o).is_some_and(|t| t.state == ProcState::Alive && t.gen == cap.gen);
                if held && !reach[o] {
                    reach[o] = true;
                    work.push(o);
                }
            }
        }
        for (i, reached) in reach.iter().enumerate() {
            if !reached && self.procs[i].state == ProcState::Alive {
                crate::info!("process {i} '{}' has no threads and no holder: reclaimed", self.procs[i].name());
                self.end_one(i, exit::KILLED, 0);
            }
        }
    }

    /// Give `p`'s quota back to its creator; its live children's quotas
    /// now come out of that creator's budget (they were inside `p`'s).
    fn return_quota(&mut self, p: usize) {
        let up = self.procs[p].acct.creator.filter(|&(c, gen)| {
            let c = &self.procs[c as usize];
            c.state == ProcState::Alive && c.gen == gen
        });
        let me = Some((p as u8, self.procs[p].gen));
        for c in 0..PROCESS_SLOTS {
            if self.procs[c].state == ProcState::Alive && self.procs[c].acct.creator == me {
                self.procs[c].acct.creator = up;
                if let Some((u, _)) = up {
                    let cost = carve_cost(&self.procs[c].acct.limit);
                    self.procs[u as usize].acct.carve(&cost);
                }
            }
        }
        if let Some((u, _)) = up {
            let cost = carve_cost(&self.procs[p].acct.limit);
            self.procs[u as usize].acct.uncarve(&cost);
        }
        self.procs[p].acct.carved = Default::default();
    }

    /// [`Self::end_process`] without the reaping.
    fn end_one(&mut self, p: usize, how: u64, code: u64) {
        self.procs[p].state = ProcState::Dead;
        self.procs[p].exit = (how, code);
        self.return_quota(p);
        // Its threads stop, undoing their messages in flight.
        for t in tids() {
            if self.proc_of(t) == p && !matches!(self.threads[t as usize].state, State::Free | State::Dead) {
                self.detach(t);
                self.threads[t as usize].state = State::Dead;
            }
        }
        self.procs[p].threads = 0;
        // Clients it was serving learn that it died.
        self.abort_requests(|k, server| k.proc_of(server) == p);
        let live: Vec<u16> = self.channels.live_indices().collect();
        for c in live {
            if self.channels.slot(c).owner as usize == p {
                self.destroy_channel(c);
            }
        }
        self.irq_release(p);
        self.dma.owner_ended(p);
        if let Some(space) = self.procs[p].space.take() {
            if self.active_root == crate::mem::pcid::cr3_word(self.pcid, space.root().start_address().as_u64(), p) {
                // Leave the tables before freeing them.
                let kernel = self.space_word(KERNEL_PROCESS);
                // SAFETY: the kernel's own tables map the kernel half.
                unsafe { crate::arch::load_address_space(kernel) };
                self.active_root = kernel;
            }
            let Kernel { phys, frames, dma, .. } = self;
            let mut n = 0u64;
            space.destroy_user(phys, frames, |frames, f, fl| {
                release_leaf(frames, dma, f, fl);
                n += 1;
                if n.is_multiple_of(WINDOW_PAGES) {
                    crate::arch::tick_window();
                }
            });
        }
        self.procs[p].acct.pages = 0;
        self.free_unused_dma();
        self.procs[p].caps = None;
        while let Some(w) = self.procs[p].waiters.pop_front(&mut self.threads) {
            self.complete(w, Ok([how, code, 0, 0]));
        }
        let name = self.procs[p].name;
        let name = core::str::from_utf8(&name[..self.procs[p].name_len as usize]).unwrap_or("?");
        match how {
            exit::EXITED => crate::info!("process {p} '{name}' exited with code {code}"),
            exit::KILLED => crate::info!("process {p} '{name}' killed"),
            _ => crate::warn!("process {p} '{name}' killed by fault (vector {code})"),
        }
    }
}
