//! The raw syscall instruction, and every syscall as a typed descriptor.
//!
//! The registers (`rax` = number, `rdi` = token, `rsi, rdx, r10, r8, r9` =
//! arguments; `rax` = error, `rsi, rdx, r8, r9` = results) are filled from
//! and read into the argument and result types of [`abi::call`]; no wrapper
//! places a value in a register by hand.
//!
//! Syscalls are split by what they may do to the caller's memory:
//! - a [`Pure`] one never writes, unmaps or remaps memory the caller can
//!   reach (it may read a buffer it is given, or map *new* memory where
//!   nothing is mapped): [`Pure::call`] is safe;
//! - a [`Touching`] one may (receive windows, output buffers, lent pages,
//!   reply data, `Unmap`, `ProcessWrite` on this process, a new thread's
//!   stack): [`Touching::call`] is `unsafe`, and every wrapper that uses it
//!   states its contract.
//!
//! The choice is made once per syscall, in [`calls`].

use core::marker::PhantomData;

use abi::call::{ArgRegs, MsgWords, Regs, ResultRegs};
use abi::{Error, Syscall};

/// A syscall that touches no memory of the caller, with its argument type
/// `A` and result type `R`.
pub struct Pure<A, R> {
    nr: Syscall,
    types: PhantomData<fn(A) -> R>,
}

/// A syscall that may write, unmap or remap memory of the caller.
pub struct Touching<A, R> {
    nr: Syscall,
    types: PhantomData<fn(A) -> R>,
}

impl<A: Regs<5>, R: Regs<4>> Pure<A, R> {
    /// # Safety
    /// `nr` takes arguments laid out as `A` and answers results laid out as
    /// `R`, and never writes, unmaps or remaps memory of the caller.
    const unsafe fn new(nr: Syscall) -> Self {
        Pure { nr, types: PhantomData }
    }

    /// The syscall number.
    pub const fn nr(&self) -> Syscall {
        self.nr
    }

    /// Make the call.
    #[inline(always)]
    pub fn call(&self, token: u64, args: A) -> Result<R, Error> {
        // SAFETY: the syscall touches no memory of ours (checked where
        // the descriptor is made, in `calls`).
        let r = unsafe { call(self.nr, token, args.to_regs()) }?;
        R::from_regs(&r)
    }
}

impl<A: Regs<5>, R: Regs<4>> Touching<A, R> {
    const fn new(nr: Syscall) -> Self {
        Touching { nr, types: PhantomData }
    }

    /// The syscall number.
    pub const fn nr(&self) -> Syscall {
        self.nr
    }

    /// Make the call.
    ///
    /// # Safety
    /// As for [`call`]: memory the kernel may write, unmap or remap (named
    /// by the arguments, see the syscall's documentation in [`abi`]) is
    /// owned by the caller and not otherwise borrowed.
    #[inline(always)]
    pub unsafe fn call(&self, token: u64, args: A) -> Result<R, Error> {
        // SAFETY: the caller's contract.
        let r = unsafe { call(self.nr, token, args.to_regs()) }?;
        R::from_regs(&r)
    }
}

/// A syscall that also carries the eight message words
/// ([`abi::call::MsgWords`]: `Call`, `ReplyWait`). Words 0 and 1 are in the
/// arguments (`w0, w1`); words 2-7 are read from memory at `src` straight
/// into registers, and the eight that come back are stored straight to
/// memory when the results say so ([`Keep`]), with no copy in between.
pub struct Words<A, R> {
    nr: Syscall,
    keep: Keep,
    types: PhantomData<fn(A) -> R>,
}

// `raw_words` tests bit 32 and the length 64 by number.
const _: () = assert!(abi::call::IN_REGISTERS == 1 << 32 && abi::call::REG_MESSAGE == 64);

/// When the words that come back are stored, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// `Call`: to `dst` if the reply is [`abi::call::REG_MESSAGE`] bytes
    /// long (result `reply_len`), else to `spare`.
    WholeReplyElseSpare,
    /// `ReplyWait`: to `dst` if the message came in registers (result
    /// `size` has [`abi::call::IN_REGISTERS`]), else nowhere.
    IfInRegisters,
}

impl<A: Regs<5>, R: Regs<4>> Words<A, R> {
    const fn new(nr: Syscall, keep: Keep) -> Self {
        Words { nr, keep, types: PhantomData }
    }

    /// The syscall number.
    pub const fn nr(&self) -> Syscall {
        self.nr
    }

    /// Make the call (see [`Words`]).
    ///
    /// # Safety
    /// As for [`call`] (`ReplyWait` writes the window it names); `src` is
    /// 64 readable bytes; `dst` 64 writable bytes nothing else borrows
    /// (and `spare` too, for [`Keep::WholeReplyElseSpare`]).
    #[inline(always)]
    pub unsafe fn call(&self, token: u64, args: A, src: *const u8, dst: *mut u8, spare: *mut MsgWords) -> Result<R, Error> {
        // SAFETY: the caller's contract.
        let (status, r) = unsafe { raw_words(self.nr as u64, token, args.to_regs(), src, dst, spare, self.keep) };
        Error::check(status)?;
        R::from_regs(&r)
    }
}

/// Every syscall the runtime makes, typed and classified.
pub mod calls {
    use abi::call::*;
    use abi::Syscall as S;

    use super::{Keep, Pure, Touching, Words};

    // Every `Pure::new` below: the types are the ones `abi::call::shape`
    // gives for the syscall (a host test checks), and the kernel's handler
    // writes, unmaps and remaps no memory of the caller, for the reason
    // its SAFETY line gives.
    // SAFETY: only reads the bytes.
    pub const DEBUG_PRINT: Pure<PrintArgs, NoResults> = unsafe { Pure::new(S::DebugPrint) };
    // SAFETY: ends the process; no memory touched.
    pub const EXIT: Pure<CodeArgs, NoResults> = unsafe { Pure::new(S::Exit) };
    // SAFETY: no memory touched.
    pub const YIELD: Pure<NoArgs, NoResults> = unsafe { Pure::new(S::Yield) };
    // SAFETY: no memory touched.
    pub const SLEEP: Pure<TimeoutArgs, NoResults> = unsafe { Pure::new(S::Sleep) };
    // SAFETY: no memory touched.
    pub const UPTIME: Pure<NoArgs, Value> = unsafe { Pure::new(S::Uptime) };
    // SAFETY: ends the thread; no memory touched.
    pub const THREAD_EXIT: Pure<NoArgs, NoResults> = unsafe { Pure::new(S::ThreadExit) };
    // SAFETY: no memory touched.
    pub const PRIORITY: Pure<NoArgs, PriorityResults> = unsafe { Pure::new(S::Priority) };
    // SAFETY: no memory touched.
    pub const CHANNEL_CREATE: Pure<NoArgs, Value> = unsafe { Pure::new(S::ChannelCreate) };
    // SAFETY: no memory touched.
    pub const CHANNEL_DESTROY: Pure<NoArgs, NoResults> = unsafe { Pure::new(S::ChannelDestroy) };
    // SAFETY: the message is copied, never lent; no reply data is written back.
    pub const SEND_CAP: Pure<SendCapArgs, SendResults> = unsafe { Pure::new(S::SendCap) };
    // SAFETY: only reads the name.
    pub const NAME_REGISTER: Pure<NameRegisterArgs, NoResults> = unsafe { Pure::new(S::NameRegister) };
    // SAFETY: only reads the provider; capabilities only.
    pub const NAMES_SCOPE: Pure<ScopeArgs, Value> = unsafe { Pure::new(S::NamesScope) };
    // SAFETY: only reads the name.
    pub const NAME_FIND: Pure<NameArgs, Value> = unsafe { Pure::new(S::NameFind) };
    // SAFETY: only reads the name.
    pub const NAME_DEREGISTER: Pure<NameArgs, NoResults> = unsafe { Pure::new(S::NameDeregister) };
    // SAFETY: capabilities only.
    pub const CAP_DERIVE: Pure<DeriveArgs, Value> = unsafe { Pure::new(S::CapDerive) };
    // SAFETY: capabilities only.
    pub const CAP_DROP: Pure<NoArgs, NoResults> = unsafe { Pure::new(S::CapDrop) };
    // SAFETY: capabilities only.
    pub const CAP_GRANT: Pure<GrantArgs, Value> = unsafe { Pure::new(S::CapGrant) };
    // SAFETY: capabilities only.
    pub const CAP_INSPECT: Pure<NoArgs, CapInfo> = unsafe { Pure::new(S::CapInspect) };
    // SAFETY: maps only where nothing is mapped (`AlreadyExists` otherwise).
    pub const MAP_ANON: Pure<MapAnonArgs, NoResults> = unsafe { Pure::new(S::MapAnon) };
    // SAFETY: maps only where nothing is mapped (`AlreadyExists` otherwise).
    pub const MAP_PHYS: Pure<MapPhysArgs, NoResults> = unsafe { Pure::new(S::MapPhys) };
    // SAFETY: capabilities only.
    pub const PHYS_DERIVE: Pure<PhysDeriveArgs, Value> = unsafe { Pure::new(S::PhysDerive) };
    // SAFETY: capabilities only.
    pub const PHYS_INFO: Pure<NoArgs, PhysInfoResults> = unsafe { Pure::new(S::PhysInfo) };
    // SAFETY: allocates frames, maps nothing.
    pub const DMA_ALLOC: Pure<DmaAllocArgs, DmaAllocResults> = unsafe { Pure::new(S::DmaAlloc) };
    // SAFETY: only answers an address.
    pub const DMA_ADDR: Pure<DmaAddrArgs, Value> = unsafe { Pure::new(S::DmaAddr) };
    // SAFETY: only reads the name and the quota.
    pub const PROCESS_CREATE: Pure<ProcessCreateArgs, ProcessCreateResults> = unsafe { Pure::new(S::ProcessCreate) };
    // SAFETY: no memory touched.
    pub const PROCESS_WAIT: Pure<TimeoutArgs, WaitResults> = unsafe { Pure::new(S::ProcessWait) };
    // SAFETY: ends a process (this one: the program ends); no memory of a running program changes.
    pub const PROCESS_KILL: Pure<NoArgs, NoResults> = unsafe { Pure::new(S::ProcessKill) };
    // SAFETY: no memory touched.
    pub const POWER_OFF: Pure<CodeArgs, NoResults> = unsafe { Pure::new(S::PowerOff) };
    // SAFETY: no memory touched.
    pub const IRQ_MSI: Pure<NoArgs, IrqMsiResults> = unsafe { Pure::new(S::IrqMsi) };
    // SAFETY: no memory touched.
    pub const IRQ_BIND: Pure<IrqBindArgs, NoResults> = unsafe { Pure::new(S::IrqBind) };
    // SAFETY: no memory touched.
    pub const IRQ_ACK: Pure<NoArgs, NoResults> = unsafe { Pure::new(S::IrqAck) };
    // SAFETY: an I/O APIC line, no memory.
    pub const IRQ_LINE: Pure<IrqLineArgs, IrqLineResults> = unsafe { Pure::new(S::IrqLine) };
    // SAFETY: an I/O port, no memory.
    pub const IO_PORT_IN: Pure<PortInArgs, Value> = unsafe { Pure::new(S::IoPortIn) };
    // SAFETY: an I/O port, no memory.
    pub const IO_PORT_OUT: Pure<PortOutArgs, NoResults> = unsafe { Pure::new(S::IoPortOut) };

    /// Writes reply data into the buffer, or lends its page.
    pub const SEND: Touching<SendArgs, SendResults> = Touching::new(S::Send);
    /// Writes the window.
    pub const RECEIVE: Touching<ReceiveArgs, ReceiveResults> = Touching::new(S::Receive);
    /// Unmaps a lent page from the window.
    pub const REPLY: Touching<ReplyArgs, NoResults> = Touching::new(S::Reply);
    /// Unmaps a lent page, writes the window.
    pub const REPLY_RECV: Touching<ReplyRecvArgs, ReceiveResults> = Touching::new(S::ReplyRecv);
    /// Unmaps.
    pub const UNMAP: Touching<UnmapArgs, NoResults> = Touching::new(S::Unmap);
    /// Writes into a process, which may be the caller.
    pub const PROCESS_WRITE: Touching<ProcessWriteArgs, NoResults> = Touching::new(S::ProcessWrite);
    /// Runs code on a stack the caller names.
    pub const THREAD_CREATE: Touching<ThreadCreateArgs, Value> = Touching::new(S::ThreadCreate);
    /// Writes the output buffer an operation names.
    pub const DEBUG_IPC: Touching<DebugIpcArgs, DebugIpcResults> = Touching::new(S::DebugIpc);

    /// The message and its reply in registers; touches no memory.
    pub const CALL: Words<CallArgs, SendResults> = Words::new(S::Call, Keep::WholeReplyElseSpare);
    /// Writes the window (a message that is not in registers), unmaps a
    /// lent page.
    pub const REPLY_WAIT: Words<ReplyWaitArgs, ReceiveResults> = Words::new(S::ReplyWait, Keep::IfInRegisters);
}

/// Make a syscall with raw argument registers; `Ok` carries the four
/// result registers.
///
/// # Safety
/// The kernel may write user memory named by the arguments (receive
/// windows, output buffers, a lent page, reply data) and may unmap or remap
/// memory (`Unmap`, `ProcessWrite` on this process): the caller guarantees
/// that no Rust reference is affected, i.e. such memory is owned by the
/// caller and not otherwise borrowed.
#[inline(always)]
pub unsafe fn call(nr: Syscall, token: u64, a: ArgRegs) -> Result<ResultRegs, Error> {
    // SAFETY: the caller's contract covers the arguments.
    let (status, r) = unsafe { raw(nr as u64, token, a) };
    Error::check(status).map(|()| r)
}

/// The syscall instruction itself, with any number (for tests of the
/// kernel's handling of unknown numbers).
///
/// # Safety
/// As for [`call`].
#[cfg(target_os = "none")]
#[inline(always)]
pub unsafe fn raw(nr: u64, token: u64, a: ArgRegs) -> (u64, ResultRegs) {
    // `Call` and `ReplyWait` also load and return message words in
    // callee-saved registers: through the wrapper that saves them (words
    // 2-7 zero; what comes back is dropped). A known number folds this away.
    if nr == Syscall::Call as u64 || nr == Syscall::ReplyWait as u64 {
        let mut words = [0u64; abi::call::MSG_WORDS];
        let at: *mut MsgWords = &mut words;
        // SAFETY: the caller's contract; `words` is ours, 64 bytes.
        return unsafe { raw_words(nr, token, a, at as *const u8, at as *mut u8, at, Keep::WholeReplyElseSpare) };
    }
    let (status, r1, r2, r3, r4);
    // SAFETY: the kernel preserves every register except the ones named
    // here; what it does to memory is the caller's contract.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => status,
            inlateout("rdi") token => _,
            inlateout("rsi") a[0] => r1,
            inlateout("rdx") a[1] => r2,
            inlateout("r10") a[2] => _,
            inlateout("r8") a[3] => r3,
            inlateout("r9") a[4] => r4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    (status, [r1, r2, r3, r4])
}

/// The syscall instruction with the message words (see [`Words`]):
/// `rbx, rbp, r12-r15` loaded from `src + 16..src + 64`, and afterwards all
/// eight words (`rdi, r10, rbx, rbp, r12-r15`) stored as `keep` says.
/// (`rbx` and `rbp` cannot be `asm!` operands, so they are saved and loaded
/// by hand.)
///
/// # Safety
/// As for [`Words::call`].
#[cfg(target_os = "none")]
#[inline(always)]
pub unsafe fn raw_words(nr: u64, token: u64, a: ArgRegs, src: *const u8, dst: *mut u8, spare: *mut MsgWords, keep: Keep) -> (u64, ResultRegs) {
    let (status, r1, r2, r3, r4);
    // `src` comes in `rcx`, `dst` in `r11`, `spare` in `r12`: `syscall`
    // takes `rcx` and `r11` and the words take `r12`, so `dst` and `spare`
    // wait on the stack; `$pick` leaves in `rcx` where to store, or jumps
    // past the stores (`3`).
    macro_rules! words_call {
        ($($pick:literal),*) => {
            // SAFETY: the caller's contract covers `src`, `dst` and
            // `spare`; the pushes are popped before the block ends (the
            // target has no red zone), and the kernel preserves every
            // register the block does not name.
            unsafe {
                core::arch::asm!(
                    "push rbx",
                    "push rbp",
                    "push r12",
                    "push r11",
                    "mov rbx, [rcx + 16]",
                    "mov rbp, [rcx + 24]",
                    "mov r12, [rcx + 32]",
                    "mov r13, [rcx + 40]",
                    "mov r14, [rcx + 48]",
                    "mov r15, [rcx + 56]",
                    "syscall",
                    "pop rcx",
                    $($pick,)*
                    "2:",
                    "mov [rcx], rdi",
                    "mov [rcx + 8], r10",
                    "mov [rcx + 16], rbx",
                    "mov [rcx + 24], rbp",
                    "mov [rcx + 32], r12",
                    "mov [rcx + 40], r13",
                    "mov [rcx + 48], r14",
                    "mov [rcx + 56], r15",
                    "3:",
                    "add rsp, 8",
                    "pop rbp",
                    "pop rbx",
                    inlateout("rax") nr => status,
                    inlateout("rdi") token => _,
                    inlateout("rsi") a[0] => r1,
                    inlateout("rdx") a[1] => r2,
                    inlateout("r10") a[2] => _,
                    inlateout("r8") a[3] => r3,
                    inlateout("r9") a[4] => r4,
                    inlateout("rcx") src => _,
                    inlateout("r11") dst => _,
                    inlateout("r12") spare => _,
                    lateout("r13") _,
                    lateout("r14") _,
                    lateout("r15") _,
                );
            }
        };
    }
    match keep {
        // A whole reply (`reply_len`, in r8, is 64) goes to `dst`, anything
        // else to the spare (on the stack now).
        Keep::WholeReplyElseSpare => words_call!("cmp r8, 64", "je 2f", "mov rcx, [rsp]"),
        // Words only if `size` (r8) has IN_REGISTERS (bit 32).
        Keep::IfInRegisters => words_call!("bt r8, 32", "jc 2f", "jmp 3f"),
    }
    (status, [r1, r2, r3, r4])
}

/// Host builds have no kernel.
///
/// # Safety
/// None needed on the host; `unsafe` to match the machine's signature.
#[cfg(not(target_os = "none"))]
pub unsafe fn raw_words(_nr: u64, _token: u64, _a: ArgRegs, _src: *const u8, _dst: *mut u8, _spare: *mut MsgWords, _keep: Keep) -> (u64, ResultRegs) {
    (Error::UnknownSyscall as u64, [0; 4])
}

/// Host builds have no kernel.
///
/// # Safety
/// None needed on the host; `unsafe` to match the machine's signature.
#[cfg(not(target_os = "none"))]
pub unsafe fn raw(_nr: u64, _token: u64, _a: ArgRegs) -> (u64, ResultRegs) {
    (Error::UnknownSyscall as u64, [0; 4])
}

#[cfg(test)]
mod tests {
    use super::calls::*;
    use super::*;

    /// Every descriptor's types are the ones `abi::call::shape` names.
    macro_rules! same_shape {
        ($($d:ident: $a:ty, $r:ty;)*) => {$(
            let sh = abi::call::shape($d.nr());
            assert_eq!(sh.args, <$a>::FIELDS, "arguments of {:?}", $d.nr());
            if sh.returns {
                assert_eq!(sh.results, <$r>::FIELDS, "results of {:?}", $d.nr());
            }
        )*};
    }

    #[test]
    fn descriptors_use_the_abi_shapes() {
        use abi::call::*;
        same_shape! {
            DEBUG_PRINT: PrintArgs, NoResults; EXIT: CodeArgs, NoResults; YIELD: NoArgs, NoResults;
            SLEEP: TimeoutArgs, NoResults; UPTIME: NoArgs, Value; THREAD_EXIT: NoArgs, NoResults;
            PRIORITY: NoArgs, PriorityResults; CHANNEL_CREATE: NoArgs, Value; CHANNEL_DESTROY: NoArgs, NoResults;
            SEND_CAP: SendCapArgs, SendResults; NAME_REGISTER: NameRegisterArgs, NoResults; NAMES_SCOPE: ScopeArgs, Value; NAME_FIND: NameArgs, Value;
            NAME_DEREGISTER: NameArgs, NoResults; CAP_DERIVE: DeriveArgs, Value; CAP_DROP: NoArgs, NoResults;
            CAP_GRANT: GrantArgs, Value; CAP_INSPECT: NoArgs, CapInfo; MAP_ANON: MapAnonArgs, NoResults;
            MAP_PHYS: MapPhysArgs, NoResults; PHYS_DERIVE: PhysDeriveArgs, Value; PHYS_INFO: NoArgs, PhysInfoResults;
            DMA_ALLOC: DmaAllocArgs, DmaAllocResults; DMA_ADDR: DmaAddrArgs, Value;
            PROCESS_CREATE: ProcessCreateArgs, ProcessCreateResults; PROCESS_WAIT: TimeoutArgs, WaitResults;
            PROCESS_KILL: NoArgs, NoResults; POWER_OFF: CodeArgs, NoResults; IRQ_MSI: NoArgs, IrqMsiResults;
            IRQ_BIND: IrqBindArgs, NoResults; IRQ_ACK: NoArgs, NoResults; IRQ_LINE: IrqLineArgs, IrqLineResults; IO_PORT_IN: PortInArgs, Value;
            IO_PORT_OUT: PortOutArgs, NoResults; SEND: SendArgs, SendResults; RECEIVE: ReceiveArgs, ReceiveResults;
            REPLY: ReplyArgs, NoResults; REPLY_RECV: ReplyRecvArgs, ReceiveResults; UNMAP: UnmapArgs, NoResults;
            PROCESS_WRITE: ProcessWriteArgs, NoResults; THREAD_CREATE: ThreadCreateArgs, Value;
            DEBUG_IPC: DebugIpcArgs, DebugIpcResults; CALL: CallArgs, SendResults; REPLY_WAIT: ReplyWaitArgs, ReceiveResults;
        }
    }

    #[test]
    fn the_touching_syscalls_are_exactly_those_that_write_or_remap_user_memory() {
        let touching = [SEND.nr(), RECEIVE.nr(), REPLY.nr(), REPLY_RECV.nr(), UNMAP.nr(), PROCESS_WRITE.nr(), THREAD_CREATE.nr(), DEBUG_IPC.nr()];
        let mut t: Vec<u64> = touching.iter().map(|s| *s as u64).collect();
        t.sort();
        let want = [abi::Syscall::Send, abi::Syscall::Receive, abi::Syscall::Reply, abi::Syscall::ReplyRecv, abi::Syscall::Unmap, abi::Syscall::ProcessWrite, abi::Syscall::ThreadCreate, abi::Syscall::DebugIpc];
        let mut w: Vec<u64> = want.iter().map(|s| *s as u64).collect();
        w.sort();
        assert_eq!(t, w);
    }

    #[test]
    fn on_the_host_every_call_is_unknown_and_decodes_nothing() {
        assert_eq!(YIELD.call(1, abi::call::NoArgs {}), Err(Error::UnknownSyscall));
        let args = abi::call::MapAnonArgs { addr: 0x1000, len: 0x1000, flags: abi::MapFlags::READ };
        assert_eq!(MAP_ANON.call(1, args), Err(Error::UnknownSyscall));
    }
}
