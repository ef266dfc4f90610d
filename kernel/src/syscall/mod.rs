//! System call dispatch.
//!
//! Every syscall names the capability that authorises it in its first
//! argument: a syscall-class token, or the token of the object it acts on.
//! Bad arguments of any kind give an [`Error`] code; nothing a caller passes
//! can make the kernel panic. A failed token lookup also delays the caller
//! (a [`SysError::BadToken`], see [`crate::cap::penalty`]): handlers
//! return that error instead of setting a flag.

mod debug;
mod ioport;
mod memory;
mod process;

use abi::{exit, rights, CapKind, Error, Syscall, SyscallClass};

use crate::cap::SysError;
use crate::ipc::named::{Scope, ScopeError};
use crate::kernel::Kernel;
use crate::proc::State;

/// What a syscall handler did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: these are the result values.
    Done([u64; 4]),
    /// The caller waits; whoever wakes it sets its result.
    Blocked,
}

const DONE: Result<Outcome, SysError> = Ok(Outcome::Done([0; 4]));

fn done(v: u64) -> Result<Outcome, SysError> {
    Ok(Outcome::Done([v, 0, 0, 0]))
}

impl Kernel {
    /// Run syscall `nr` with arguments `a` (token first) for the current
    /// thread, then choose what runs next. The caller's results are in its
    /// `ret` when it next runs. (The bare-metal entry picks among the three
    /// below itself.)
    #[inline]
    pub fn syscall(&mut self, nr: u64, a: &[u64; 6]) {
        match nr {
            n if n == Syscall::Send as u64 => self.syscall_send(a),
            n if n == Syscall::ReplyRecv as u64 => self.syscall_reply_recv(a),
            _ => self.syscall_general(nr, *a),
        }
    }

    /// `Send`: the two calls of every request first try the fast path,
    /// which either does the whole job or nothing (see `ipc::fast`).
    #[inline(always)]
    pub(crate) fn syscall_send(&mut self, a: &[u64; 6]) {
        self.fast_or_general(Syscall::Send, a, |k| k.fast_send(a[0], a[1], a[2], a[3], a[5]));
    }

    /// `ReplyRecv`, as [`Self::syscall_send`].
    #[inline(always)]
    pub(crate) fn syscall_reply_recv(&mut self, a: &[u64; 6]) {
        self.fast_or_general(Syscall::ReplyRecv, a, |k| k.fast_reply_recv(a[0], a[1], a[2], a[3], a[4], a[5]));
    }

    /// `fast`, and the general path if it declines. Host tests can turn the
    /// fast path off, to compare it with the general path alone.
    #[inline(always)]
    fn fast_or_general(&mut self, call: Syscall, a: &[u64; 6], fast: impl FnOnce(&mut Self) -> bool) {
        #[cfg(test)]
        if crate::tests::general_only() {
            return self.syscall_general(call as u64, *a);
        }
        let taken = fast(self);
        #[cfg(test)]
        crate::tests::count_fast(taken);
        if !taken {
            self.syscall_general(call as u64, *a);
        }
    }

    /// Every syscall, every case (the reference the fast path must match).
    /// The entry code calls it directly for every call the fast path never
    /// takes.
    #[inline(never)]
    pub(crate) fn syscall_general(&mut self, nr: u64, a: [u64; 6]) {
        let t = self.current;
        let result = match Syscall::from_raw(nr) {
            Some(s) => self.dispatch(s, a),
            None => Err(SysError::Code(Error::UnknownSyscall)),
        };
        match result {
            Ok(Outcome::Done(v)) => self.threads[t as usize].ret = [0, v[0], v[1], v[2], v[3]],
            Ok(Outcome::Blocked) => {}
            Err(SysError::BadToken) if self.threads[t as usize].state == State::Running => self.penalize_current(),
            Err(e) => self.threads[t as usize].ret = [e.code() as u64, 0, 0, 0, 0],
        }
        self.catch_up_ticks();
        self.reschedule();
    }

    /// Check that `token` is process `p`'s capability for syscall class `class`.
    fn class(&mut self, p: usize, token: u64, class: SyscallClass) -> Result<(), SysError> {
        self.class_cap(p, token, class, rights::USE).map(|_| ())
    }

    /// Process `p`'s capability `token` for syscall class `class`, granting `need`.
    fn class_cap(&mut self, p: usize, token: u64, class: SyscallClass, need: u32) -> Result<crate::cap::Cap, SysError> {
        let cap = self.lookup(p, token, Some(CapKind::Class), need)?;
        if cap.object == class as u32 {
            Ok(cap)
        } else {
            Err(SysError::BadToken)
        }
    }

    fn dispatch(&mut self, s: Syscall, a: [u64; 6]) -> Result<Outcome, SysError> {
        let t = self.current;
        let p = self.proc_of(t);
        let [token, a1, a2, a3, a4, a5] = a;
        match s {
            Syscall::DebugPrint => {
                self.class(p, token, SyscallClass::DebugPrint)?;
                Ok(self.debug_print(p, a1, a2)?)
            }
            Syscall::Exit => {
                self.class(p, token, SyscallClass::Thread)?;
                self.end_process(p, exit::EXITED, a1);
                Ok(Outcome::Blocked)
            }
            Syscall::Yield => {
                self.class(p, token, SyscallClass::Thread)?;
                self.yield_now();
                DONE
            }
            Syscall::Sleep => {
                self.class(p, token, SyscallClass::Thread)?;
                match Kernel::ticks_for(a1) {
                    0 => {
                        self.yield_now();
                        DONE
                    }
                    n => {
                        self.sleep_current(self.timers.now.saturating_add(n));
                        Ok(Outcome::Blocked)
                    }
                }
            }
            Syscall::Uptime => {
                self.class(p, token, SyscallClass::Thread)?;
                done(self.timers.now * abi::limits::TICK_NS)
            }
            Syscall::ThreadExit => {
                self.class(p, token, SyscallClass::Thread)?;
                self.exit_thread(t);
                Ok(Outcome::Blocked)
            }
            Syscall::Priority => {
                self.class(p, token, SyscallClass::Thread)?;
                let th = &self.threads[t as usize];
                Ok(Outcome::Done([th.base_prio as u64, th.prio as u64, 0, 0]))
            }
            Syscall::ChannelCreate => {
                self.class(p, token, SyscallClass::ChannelCreate)?;
                if self.procs[p].room(crate::proc::Resource::Channels) == 0 {
                    return Err(Error::LimitReached.into());
                }
                done(self.channel_create(p)?)
            }
            Syscall::ChannelDestroy => {
                let ch = self.channel_of(p, token, rights::DESTROY)?;
                self.destroy_channel(ch);
                if let Some(caps) = self.procs[p].caps.as_mut() {
                    caps.remove(token);
                }
                DONE
            }
            Syscall::Send => self.send(token, a1, a2, a3, a4, a5, None),
            // A message carrying a capability is read-only for the kernel:
            // copied, never lent, no reply data written back.
            Syscall::SendCap => {
                self.send(token, a1, a2, a3, abi::FOREVER, abi::send_flags::READ_ONLY, Some((a4, a5 as u32)))
            }
            Syscall::Receive => self.receive(token, a1, a2),
            Syscall::Reply => {
                let xfer = (a4 != 0).then_some((a4, a5 as u32));
                self.reply(token, a1, a2, a3, xfer)?;
                DONE
            }
            Syscall::ReplyRecv => self.reply_recv(token, a1, a2, a3, a4, a5),
            Syscall::NameRegister => {
                let ch = self.channel_of(p, token, rights::DELEGATE)?;
                let (buf, len) = self.read_name(p, a1, a2)?;
                let scope = Scope::of_cap(&self.class_cap(p, a3, SyscallClass::Names, rights::USE)?);
                if crate::ipc::named::valid(&buf[..len]) && !scope.covers(&buf[..len]) {
                    return Err(Error::Incapable.into());
                }
                let gen = self.channels.slot(ch).gen;
                self.names.register(&buf[..len], ch, gen).map_err(|e| match e {
                    crate::ipc::named::NameError::Invalid => Error::InvalidArgument,
                    crate::ipc::named::NameError::AlreadyExists => Error::AlreadyExists,
                    crate::ipc::named::NameError::Full => Error::LimitReached,
                })?;
                DONE
            }
            Syscall::NameFind => {
                self.class(p, token, SyscallClass::Names)?;
                let (buf, len) = self.read_name(p, a1, a2)?;
                let (ch, gen) = self.names.find(&buf[..len]).ok_or(Error::NotFound)?;
                done(self.send_cap_for(p, ch, gen)?)
            }
            Syscall::NamesScope => {
                let cap = self.class_cap(p, token, SyscallClass::Names, rights::DELEGATE)?;
                let mut buf = [0u8; abi::limits::PROVIDER_LEN];
                let len = a2 as usize;
                if len > buf.len() {
                    return Err(Error::InvalidArgument.into());
                }
                crate::mem::user::read(&self.phys, &self.space(p), a1, &mut buf[..len]).map_err(|_| Error::BadAddress)?;
                let narrower = Scope::of(&buf[..len]).and_then(|n| Scope::of_cap(&cap).narrow(n)).map_err(|e| match e {
                    ScopeError::Invalid => Error::InvalidArgument,
                    ScopeError::Wider => Error::Incapable,
                })?;
                done(self.mint(p, narrower.stamp(cap))?)
            }
            Syscall::NameDeregister => {
                let ch = self.channel_of(p, token, rights::DELEGATE)?;
                let (buf, len) = self.read_name(p, a1, a2)?;
                if self.names.remove(&buf[..len], ch) {
                    DONE
                } else {
                    Err(Error::NotFound.into())
                }
            }
            Syscall::CapDerive => {
                let cap = self.lookup(p, token, None, 0)?;
                done(self.mint(p, cap.reduced(a1 as u32))?)
            }
            Syscall::CapDrop => {
                let cap = self.lookup(p, token, None, 0)?;
                if let Some(caps) = self.procs[p].caps.as_mut() {
                    caps.remove(token);
                }
                if cap.kind == CapKind::Process {
                    // Perhaps the last hold on a process nobody started.
                    self.reap_orphans();
                }
                DONE
            }
            Syscall::CapGrant => {
                let target = self.process_of(p, token, rights::GRANT)?;
                let cap = self.lookup(p, a1, None, rights::DELEGATE)?;
                done(self.mint(target, cap.reduced(a2 as u32))?)
            }
            Syscall::CapInspect => {
                let cap = self.lookup(p, token, None, 0)?;
                let id = match cap.kind {
                    CapKind::Channel => crate::ipc::channel::channel_id(cap.object as u16, cap.gen),
                    CapKind::Process => (cap.gen as u64) << 32 | cap.object as u64,
                    CapKind::Phys => cap.base_frame as u64 * abi::PAGE_SIZE as u64,
                    CapKind::IoPort => cap.base_frame as u64,
                    CapKind::Class => cap.object as u64,
                    CapKind::Irq => abi::irq::FIRST_VECTOR as u64 + cap.object as u64,
                };
                Ok(Outcome::Done([cap.kind as u64, cap.rights as u64, id, cap.flavor as u64]))
            }
            Syscall::MapAnon => {
                let target = self.process_of(p, token, rights::MAP)?;
                self.map_anon(target, a1, a2, a3)?;
                DONE
            }
            Syscall::Unmap => {
                let target = self.process_of(p, token, rights::MAP)?;
                self.unmap(target, a1, a2)?;
                DONE
            }
            Syscall::MapPhys => {
                let cap = self.lookup(p, token, Some(CapKind::Phys), rights::READ)?;
                self.map_phys(p, cap, a1, a2, a3, a4)?;
                DONE
            }
            Syscall::PhysDerive => {
                let cap = self.lookup(p, token, Some(CapKind::Phys), rights::DELEGATE)?;
                done(self.phys_derive(p, cap, a1, a2, a3)?)
            }
            Syscall::PhysInfo => {
                let cap = self.lookup(p, token, Some(CapKind::Phys), 0)?;
                let page = abi::PAGE_SIZE as u64;
                Ok(Outcome::Done([cap.base_frame as u64 * page, cap.frames as u64 * page, 0, 0]))
            }
            Syscall::DmaAlloc => {
                self.class(p, token, SyscallClass::Dma)?;
                let (token, addr) = self.dma_alloc(p, a1)?;
                Ok(Outcome::Done([token, addr, 0, 0]))
            }
            Syscall::DmaAddr => {
                self.class(p, token, SyscallClass::Dma)?;
                done(self.dma_addr(p, a1)?)
            }
            Syscall::ProcessCreate => {
                self.class(p, token, SyscallClass::ProcessCreate)?;
                Ok(self.process_create(p, a1, a2, a3)?)
            }
            Syscall::ProcessWrite => {
                let target = self.process_of(p, token, rights::MAP)?;
                self.process_write(p, target, a1, a2, a3)?;
                DONE
            }
            Syscall::ThreadCreate => {
                let target = self.process_of(p, token, rights::THREAD)?;
                Ok(self.thread_create(t, target, a1, a2, [a3, a4], a5)?)
            }
            Syscall::ProcessWait => self.process_wait(p, token, a1),
            Syscall::ProcessKill => {
                let target = self.process_of(p, token, rights::KILL)?;
                self.end_process(target, exit::KILLED, 0);
                if target == p {
                    Ok(Outcome::Blocked)
                } else {
                    DONE
                }
            }
            Syscall::DebugIpc => {
                self.class(p, token, SyscallClass::DebugIpc)?;
                Ok(self.debug_ipc(p, a1, a2, a3, a4)?)
            }
            Syscall::IoPortIn => {
                let port = self.io_port(p, token, rights::READ, a1)?;
                done(crate::arch::port_in(port) as u64)
            }
            Syscall::IoPortOut => {
                let port = self.io_port(p, token, rights::WRITE, a1)?;
                let value = u8::try_from(a2).map_err(|_| Error::InvalidArgument)?;
                crate::arch::port_out(port, value);
                DONE
            }
            Syscall::PowerOff => {
                self.class(p, token, SyscallClass::Power)?;
                crate::arch::power_off(a1);
                DONE
            }
            Syscall::IrqMsi => {
                self.class(p, token, SyscallClass::Irq)?;
                Ok(Outcome::Done(self.irq_msi(p)?))
            }
            Syscall::IrqBind => {
                self.irq_bind(p, token, a1, a2)?;
                DONE
            }
            Syscall::IrqAck => {
                self.irq_ack(p, token)?;
                DONE
            }
            Syscall::IrqLine => {
                self.class(p, token, SyscallClass::Irq)?;
                Ok(Outcome::Done(self.irq_line(p, a1, a2)?))
            }
        }
    }

    /// Copy a channel name from user memory.
    fn read_name(&self, p: usize, ptr: u64, len: u64) -> Result<([u8; abi::limits::NAME_LEN], usize), Error> {
        let mut buf = [0u8; abi::limits::NAME_LEN];
        if len == 0 || len as usize > buf.len() {
            return Err(Error::InvalidArgument);
        }
        crate::mem::user::read(&self.phys, &self.space(p), ptr, &mut buf[..len as usize])
            .map_err(|_| Error::BadAddress)?;
        Ok((buf, len as usize))
    }

    /// A send-only token for channel `(ch, gen)` in process `p`, reusing one
    /// it already has so that repeated lookups do not fill its table.
    fn send_cap_for(&mut self, p: usize, ch: u16, gen: u32) -> Result<u64, Error> {
        let caps = self.procs[p].caps.as_ref().ok_or(Error::NotFound)?;
        let existing = caps.find(|c| {
            c.kind == CapKind::Channel && c.object == ch as u32 && c.gen == gen && c.rights as u32 == rights::SEND
        });
        match existing {
            Some(token) => Ok(token),
            None => self.mint(p, crate::cap::Cap::object(CapKind::Channel, ch as u32, gen, rights::SEND)),
        }
    }

    /// The live process behind a process capability of `p` granting `need`.
    fn process_of(&mut self, p: usize, token: u64, need: u32) -> Result<usize, SysError> {
        let cap = self.lookup(p, token, Some(CapKind::Process), need)?;
        let target = &self.procs[cap.object as usize];
        if target.gen != cap.gen {
            return Err(SysError::BadToken);
        }
        if target.state != crate::proc::ProcState::Alive {
            return Err(Error::NotFound.into());
        }
        Ok(cap.object as usize)
    }
}
