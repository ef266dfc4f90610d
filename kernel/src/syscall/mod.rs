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
mod short;

use abi::call::{
    self, CapInfo, CodeArgs, DebugIpcArgs, DeriveArgs, DmaAddrArgs, DmaAllocArgs, DmaAllocResults, GrantArgs, IrqBindArgs, IrqLineArgs,
    MapAnonArgs, MapPhysArgs, NameArgs, NameRegisterArgs, PhysDeriveArgs, PhysInfoResults, PortInArgs, PortOutArgs, PrintArgs,
    PriorityResults, ProcessCreateArgs, CallArgs, ReplyWaitArgs, ProcessWriteArgs, ReceiveArgs, Regs, ReplyArgs, ReplyRecvArgs, ScopeArgs, SendArgs,
    SendCapArgs, ThreadCreateArgs, TimeoutArgs, UnmapArgs,
};
use abi::{
    exit, CapKind, ChannelRights, ClassRights, Error, IoPortRights, PhysRights, ProcessRights, RightsMask, SendFlags,
    Syscall, SyscallClass,
};

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

fn done(value: u64) -> Result<Outcome, SysError> {
    results(call::Value { value })
}

/// Finished with these results.
#[inline(always)]
fn results<R: Regs<4>>(r: R) -> Result<Outcome, SysError> {
    Ok(Outcome::Done(r.to_regs()))
}

impl Kernel {
    /// Run syscall `nr` with arguments `a` (token first) for the current
    /// thread, then choose what runs next. The caller's results are in its
    /// `ret` when it next runs. (The bare-metal entry makes the same
    /// choices itself: `Send` and `ReplyRecv` to their dispatchers, every
    /// other call to the short path, then the general one.)
    #[inline]
    pub fn syscall(&mut self, nr: u64, a: &[u64; 6]) {
        match nr {
            n if n == Syscall::Send as u64 => self.syscall_send(a),
            n if n == Syscall::ReplyRecv as u64 => self.syscall_reply_recv(a),
            n if n == Syscall::Call as u64 => {
                self.take_words(a);
                self.syscall_call(a)
            }
            n if n == Syscall::ReplyWait as u64 => {
                self.take_words(a);
                self.syscall_reply_wait(a)
            }
            _ => {
                if !self.syscall_short(nr, a[0]) {
                    self.syscall_general(nr, *a)
                }
            }
        }
    }

    /// `Send`: the two calls of every request first try the fast path,
    /// which either does the whole job or nothing (see `ipc::fast`).
    #[inline(always)]
    pub(crate) fn syscall_send(&mut self, a: &[u64; 6]) {
        self.fast_or_general(Syscall::Send, a, |k| {
            let (token, args) = call::split(a);
            k.fast_send(token, &args)
        });
    }

    /// `ReplyRecv`, as [`Self::syscall_send`].
    #[inline(always)]
    pub(crate) fn syscall_reply_recv(&mut self, a: &[u64; 6]) {
        self.fast_or_general(Syscall::ReplyRecv, a, |k| match ReplyRecvArgs::from_regs(&call::split(a).1) {
            Ok(x) => k.fast_reply_recv(a[0], x.cookie, x.result, x.reply_len, x.window, x.timeout),
            Err(_) => false,
        });
    }

    /// `Call`, as [`Self::syscall_send`]. The entry has stored the message
    /// words in the thread's `mr` (see [`Self::take_words`]).
    #[inline(always)]
    pub(crate) fn syscall_call(&mut self, a: &[u64; 6]) {
        self.fast_or_general(Syscall::Call, a, |k| {
            let (token, args) = call::split(a);
            k.fast_call(token, &args)
        });
    }

    /// `ReplyWait`, as [`Self::syscall_send`].
    #[inline(always)]
    pub(crate) fn syscall_reply_wait(&mut self, a: &[u64; 6]) {
        self.fast_or_general(Syscall::ReplyWait, a, |k| match ReplyWaitArgs::from_regs(&call::split(a).1) {
            Ok(x) if !x.window_len.poll => k.fast_reply_wait(a[0], x.cookie, x.result, x.window_len.len, x.window_len.window),
            _ => false,
        });
    }

    /// Message words 0 and 1 (`w0, w1`, the last two argument registers of
    /// `Call` and `ReplyWait`) into the current thread's `mr`: what the
    /// bare-metal entry stub does (with words 2-7 from `rbx, rbp,
    /// r12-r15`), for the host's entry above (host tests put words 2-7 in
    /// `mr` themselves).
    #[inline(always)]
    fn take_words(&mut self, a: &[u64; 6]) {
        const W0: usize = 1 + call::arg_index(Syscall::Call, "w0");
        const _: () = assert!(W0 == 1 + call::arg_index(Syscall::ReplyWait, "w0") && W0 + 1 == 1 + call::arg_index(Syscall::Call, "w1"));
        let t = self.current as usize;
        self.threads[t].mr[0] = a[W0];
        self.threads[t].mr[1] = a[W0 + 1];
        self.threads[t].words = crate::proc::thread::WordsAt(&raw const self.threads[t].mr);
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
            // Off the fast path's line: its spills belong here.
            core::hint::cold_path();
            self.syscall_general(call as u64, *a);
        }
    }

    /// Every syscall, every case (the reference the fast path must match).
    /// The entry code calls it for every call the fast path never takes
    /// that the short path (`short`) declines.
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
        self.class_cap(p, token, class, ClassRights::USE).map(|_| ())
    }

    /// Process `p`'s capability `token` for syscall class `class`, granting `need`.
    fn class_cap(&mut self, p: usize, token: u64, class: SyscallClass, need: ClassRights) -> Result<crate::cap::Cap, SysError> {
        let cap = self.lookup(p, token, Some(CapKind::Class), need)?;
        if cap.object == class as u32 {
            Ok(cap)
        } else {
            Err(SysError::BadToken)
        }
    }

    /// Every syscall's arguments are decoded by its `abi::call` type, after
    /// the token is checked (a bad token is `Incapable` whatever else is
    /// wrong, and costs the caller the delay).
    fn dispatch(&mut self, s: Syscall, a: [u64; 6]) -> Result<Outcome, SysError> {
        let t = self.current;
        let p = self.proc_of(t);
        let (token, r) = call::split(&a);
        match s {
            Syscall::DebugPrint => {
                self.class(p, token, SyscallClass::DebugPrint)?;
                let x = PrintArgs::from_regs(&r)?;
                Ok(self.debug_print(p, x.ptr, x.len)?)
            }
            Syscall::Exit => {
                self.class(p, token, SyscallClass::Thread)?;
                self.end_process(p, exit::EXITED, CodeArgs::from_regs(&r)?.code);
                Ok(Outcome::Blocked)
            }
            Syscall::Yield => {
                self.class(p, token, SyscallClass::Thread)?;
                self.yield_now();
                DONE
            }
            Syscall::Sleep => {
                self.class(p, token, SyscallClass::Thread)?;
                match Kernel::ticks_for(TimeoutArgs::from_regs(&r)?.timeout) {
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
                results(PriorityResults { base: th.base_prio as u64, effective: th.prio as u64 })
            }
            Syscall::ChannelCreate => {
                self.class(p, token, SyscallClass::ChannelCreate)?;
                if self.procs[p].room(crate::proc::Resource::Channels) == 0 {
                    return Err(Error::LimitReached.into());
                }
                done(self.channel_create(p)?)
            }
            Syscall::ChannelDestroy => {
                let ch = self.channel_of(p, token, ChannelRights::DESTROY)?;
                self.destroy_channel(ch);
                if let Some(caps) = self.procs[p].caps.as_mut() {
                    caps.remove(token);
                }
                DONE
            }
            Syscall::Send => {
                // Refuse a bad token before bad arguments, as everywhere.
                let x = match SendArgs::from_regs(&r) {
                    Ok(x) => x,
                    Err(e) => {
                        self.channel_of(p, token, ChannelRights::SEND)?;
                        return Err(e.into());
                    }
                };
                self.ipc.general_sends += 1;
                self.send(token, x.tag, x.size, x.buf, x.timeout, x.flags, None, false)
            }
            // A message carrying a capability is read-only for the kernel:
            // copied, never lent, no reply data written back.
            Syscall::SendCap => {
                let x = SendCapArgs::from_regs(&r)?;
                self.send(token, x.tag, x.size, x.buf, abi::FOREVER, SendFlags::READ_ONLY, Some((x.cap, x.rights)), false)
            }
            Syscall::Call => {
                let x = CallArgs::from_regs(&r)?;
                self.ipc.general_sends += 1;
                self.send(token, x.tag, x.size, 0, x.timeout, SendFlags::empty(), None, true)
            }
            Syscall::ReplyWait => {
                // Refuse a bad token before bad arguments, as everywhere.
                let x = match ReplyWaitArgs::from_regs(&r) {
                    Ok(x) => x,
                    Err(e) => {
                        self.channel_of(p, token, ChannelRights::RECEIVE)?;
                        return Err(e.into());
                    }
                };
                self.ipc.general_replies += 1;
                let timeout = if x.window_len.poll { 0 } else { abi::FOREVER };
                self.reply_wait(token, x.cookie, x.result, x.window_len.len, x.window_len.window, timeout)
            }
            Syscall::Receive => {
                let x = ReceiveArgs::from_regs(&r)?;
                self.receive(token, x.window, x.timeout)
            }
            Syscall::Reply => {
                let x = ReplyArgs::from_regs(&r)?;
                let xfer = (x.cap != 0).then_some((x.cap, x.rights));
                self.reply(token, x.result, x.buf, x.reply_len, xfer)?;
                DONE
            }
            Syscall::ReplyRecv => {
                let x = ReplyRecvArgs::from_regs(&r)?;
                self.ipc.general_replies += 1;
                self.reply_recv(token, x.cookie, x.result, x.reply_len, x.window, x.timeout)
            }
            Syscall::NameRegister => {
                let ch = self.channel_of(p, token, ChannelRights::DELEGATE)?;
                let x = NameRegisterArgs::from_regs(&r)?;
                let (buf, len) = self.read_name(p, NameArgs { name_ptr: x.name_ptr, name_len: x.name_len })?;
                let scope = Scope::of_cap(&self.class_cap(p, x.names, SyscallClass::Names, ClassRights::USE)?);
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
                let (buf, len) = self.read_name(p, NameArgs::from_regs(&r)?)?;
                let (ch, gen) = self.names.find(&buf[..len]).ok_or(Error::NotFound)?;
                done(self.send_cap_for(p, ch, gen)?)
            }
            Syscall::NamesScope => {
                let cap = self.class_cap(p, token, SyscallClass::Names, ClassRights::DELEGATE)?;
                let x = ScopeArgs::from_regs(&r)?;
                let mut buf = [0u8; abi::limits::PROVIDER_LEN];
                let len = x.provider_len as usize;
                if len > buf.len() {
                    return Err(Error::InvalidArgument.into());
                }
                crate::mem::user::read(&self.phys, &self.space(p), x.provider_ptr, &mut buf[..len])
                    .map_err(|_| Error::BadAddress)?;
                let narrower = Scope::of(&buf[..len]).and_then(|n| Scope::of_cap(&cap).narrow(n)).map_err(|e| match e {
                    ScopeError::Invalid => Error::InvalidArgument,
                    ScopeError::Wider => Error::Incapable,
                })?;
                done(self.mint(p, narrower.stamp(cap))?)
            }
            Syscall::NameDeregister => {
                let ch = self.channel_of(p, token, ChannelRights::DELEGATE)?;
                let (buf, len) = self.read_name(p, NameArgs::from_regs(&r)?)?;
                if self.names.remove(&buf[..len], ch) {
                    DONE
                } else {
                    Err(Error::NotFound.into())
                }
            }
            Syscall::CapDerive => {
                let cap = self.lookup(p, token, None, RightsMask::NONE)?;
                done(self.mint(p, cap.reduced(DeriveArgs::from_regs(&r)?.rights))?)
            }
            Syscall::CapDrop => {
                let cap = self.lookup(p, token, None, RightsMask::NONE)?;
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
                let target = self.process_of(p, token, ProcessRights::GRANT)?;
                let x = GrantArgs::from_regs(&r)?;
                let cap = self.lookup(p, x.cap, None, RightsMask::DELEGATE)?;
                done(self.mint(target, cap.reduced(x.rights))?)
            }
            Syscall::CapInspect => {
                let cap = self.lookup(p, token, None, RightsMask::NONE)?;
                let id = match cap.kind {
                    CapKind::Channel => crate::ipc::channel::channel_id(cap.object as u16, cap.gen),
                    CapKind::Process => (cap.gen as u64) << 32 | cap.object as u64,
                    CapKind::Phys => cap.base_frame as u64 * abi::PAGE_SIZE as u64,
                    CapKind::IoPort => cap.base_frame as u64,
                    CapKind::Class => cap.object as u64,
                    CapKind::Irq => abi::irq::FIRST_VECTOR as u64 + cap.object as u64,
                };
                results(CapInfo { kind: cap.kind as u64, rights: cap.rights as u64, id, flavor: cap.flavor as u64 })
            }
            Syscall::MapAnon => {
                let target = self.process_of(p, token, ProcessRights::MAP)?;
                let x = MapAnonArgs::from_regs(&r)?;
                self.map_anon(target, x.addr, x.len, x.flags)?;
                DONE
            }
            Syscall::Unmap => {
                let target = self.process_of(p, token, ProcessRights::MAP)?;
                let x = UnmapArgs::from_regs(&r)?;
                self.unmap(target, x.addr, x.len)?;
                DONE
            }
            Syscall::MapPhys => {
                let cap = self.lookup(p, token, Some(CapKind::Phys), PhysRights::READ)?;
                let x = MapPhysArgs::from_regs(&r)?;
                self.map_phys(p, cap, x.addr, x.offset, x.len, x.flags)?;
                DONE
            }
            Syscall::PhysDerive => {
                let cap = self.lookup(p, token, Some(CapKind::Phys), PhysRights::DELEGATE)?;
                let x = PhysDeriveArgs::from_regs(&r)?;
                done(self.phys_derive(p, cap, x.offset, x.len, x.rights)?)
            }
            Syscall::PhysInfo => {
                let cap = self.lookup(p, token, Some(CapKind::Phys), RightsMask::NONE)?;
                let page = abi::PAGE_SIZE as u64;
                results(PhysInfoResults { base: cap.base_frame as u64 * page, len: cap.frames as u64 * page })
            }
            Syscall::DmaAlloc => {
                self.class(p, token, SyscallClass::Dma)?;
                let (token, phys) = self.dma_alloc(p, DmaAllocArgs::from_regs(&r)?.pages)?;
                results(DmaAllocResults { token, phys })
            }
            Syscall::DmaAddr => {
                self.class(p, token, SyscallClass::Dma)?;
                done(self.dma_addr(p, DmaAddrArgs::from_regs(&r)?.addr)?)
            }
            Syscall::ProcessCreate => {
                self.class(p, token, SyscallClass::ProcessCreate)?;
                let x = ProcessCreateArgs::from_regs(&r)?;
                Ok(self.process_create(p, x.name_ptr, x.name_len, x.quota_ptr)?)
            }
            Syscall::ProcessWrite => {
                let target = self.process_of(p, token, ProcessRights::MAP)?;
                let x = ProcessWriteArgs::from_regs(&r)?;
                self.process_write(p, target, x.dst, x.src, x.len)?;
                DONE
            }
            Syscall::ThreadCreate => {
                let target = self.process_of(p, token, ProcessRights::THREAD)?;
                let x = ThreadCreateArgs::from_regs(&r)?;
                Ok(self.thread_create(t, target, x.entry, x.stack, [x.arg0, x.arg1], x.priority)?)
            }
            Syscall::ProcessWait => self.process_wait(p, token, TimeoutArgs::from_regs(&r)?.timeout),
            Syscall::ProcessKill => {
                let target = self.process_of(p, token, ProcessRights::KILL)?;
                self.end_process(target, exit::KILLED, 0);
                if target == p {
                    Ok(Outcome::Blocked)
                } else {
                    DONE
                }
            }
            Syscall::DebugIpc => {
                self.class(p, token, SyscallClass::DebugIpc)?;
                let x = DebugIpcArgs::from_regs(&r)?;
                Ok(self.debug_ipc(p, x.op, x.a, x.b, x.c)?)
            }
            Syscall::IoPortIn => {
                let port = self.io_port(p, token, IoPortRights::READ, PortInArgs::from_regs(&r)?.port)?;
                done(crate::arch::port_in(port) as u64)
            }
            Syscall::IoPortOut => {
                let x = PortOutArgs::from_regs(&r)?;
                let port = self.io_port(p, token, IoPortRights::WRITE, x.port)?;
                let value = u8::try_from(x.value).map_err(|_| Error::InvalidArgument)?;
                crate::arch::port_out(port, value);
                DONE
            }
            Syscall::PowerOff => {
                self.class(p, token, SyscallClass::Power)?;
                crate::arch::power_off(CodeArgs::from_regs(&r)?.code);
                DONE
            }
            Syscall::IrqMsi => {
                self.class(p, token, SyscallClass::Irq)?;
                Ok(Outcome::Done(self.irq_msi(p)?))
            }
            Syscall::IrqBind => {
                let x = IrqBindArgs::from_regs(&r)?;
                self.irq_bind(p, token, x.channel, x.badge)?;
                DONE
            }
            Syscall::IrqAck => {
                self.irq_ack(p, token)?;
                DONE
            }
            Syscall::IrqLine => {
                self.class(p, token, SyscallClass::Irq)?;
                let x = IrqLineArgs::from_regs(&r)?;
                results(self.irq_line(p, x.line, x.kind)?)
            }
        }
    }

    /// Copy a channel name from user memory.
    fn read_name(&self, p: usize, name: NameArgs) -> Result<([u8; abi::limits::NAME_LEN], usize), Error> {
        let NameArgs { name_ptr: ptr, name_len: len } = name;
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
            c.kind == CapKind::Channel && c.object == ch as u32 && c.gen == gen && c.rights as u32 == ChannelRights::SEND.bits()
        });
        match existing {
            Some(token) => Ok(token),
            None => self.mint(p, crate::cap::Cap::object(CapKind::Channel, ch as u32, gen, abi::ChannelRights::SEND)),
        }
    }

    /// The live process behind a process capability of `p` granting `need`.
    fn process_of(&mut self, p: usize, token: u64, need: abi::ProcessRights) -> Result<usize, SysError> {
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
