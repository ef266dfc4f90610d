//! Syscall arguments and results as types: the one place that says which
//! register holds what.
//!
//! Each syscall (or class of syscalls with the same shape) has an argument
//! struct whose fields, in order, are `rsi, rdx, r10, r8, r9` (the token is
//! always `rdi` and not part of it), and a result struct whose fields are
//! `rsi, rdx, r8, r9`. `to_regs` encodes, `from_regs` decodes: decoding
//! checks what can be checked without the kernel's state (unknown flag bits)
//! and answers [`Error::InvalidArgument`] for anything else, never panics.
//! The kernel's dispatch decodes with these, the runtime's wrappers encode
//! with them, and [`shape`] gives the fuzzers and the README check each
//! syscall's fields by name and meaning.

use crate::flags::{MapFlags, RightsMask, SendFlags};
use crate::{CapKind, Error, Syscall, SyscallClass};

/// Argument registers: `rsi, rdx, r10, r8, r9`.
pub type ArgRegs = [u64; 5];
/// Result registers: `rsi, rdx, r8, r9`.
pub type ResultRegs = [u64; 4];

/// A value that travels in one register.
pub trait Reg: Sized + Copy {
    /// The register value.
    fn to_reg(self) -> u64;
    /// The value of a register, or why it is not one.
    fn from_reg(r: u64) -> Result<Self, Error>;
}

impl Reg for u64 {
    #[inline(always)]
    fn to_reg(self) -> u64 {
        self
    }
    #[inline(always)]
    fn from_reg(r: u64) -> Result<u64, Error> {
        Ok(r)
    }
}

/// Flags travel as their bits; a bit the type does not define is
/// `InvalidArgument`.
macro_rules! flags_reg {
    ($($t:ty),*) => {$(
        impl Reg for $t {
            #[inline(always)]
            fn to_reg(self) -> u64 {
                self.bits()
            }
            #[inline(always)]
            fn from_reg(r: u64) -> Result<$t, Error> {
                <$t>::from_bits(r).ok_or(Error::InvalidArgument)
            }
        }
    )*};
}

flags_reg!(SendFlags, MapFlags);

impl Reg for RightsMask {
    #[inline(always)]
    fn to_reg(self) -> u64 {
        self.0 as u64
    }
    /// A mask only takes rights away: the bits above the 32 a mask has are
    /// ignored, as are bits no kind defines.
    #[inline(always)]
    fn from_reg(r: u64) -> Result<RightsMask, Error> {
        Ok(RightsMask(r as u32))
    }
}

/// Message registers: [`crate::Syscall::Call`] and
/// [`crate::Syscall::ReplyWait`] carry a short message (request or reply)
/// in eight registers instead of memory, so the kernel moves it without
/// touching a page table: on entry words 0-1 are `r8, r9` (the argument
/// registers `w0, w1`) and words 2-7 `rbx, rbp, r12, r13, r14, r15`; on
/// return words 0-1 are `rdi, r10` and 2-7 the same six. Byte `i` of the
/// message is byte `i % 8` of word `i / 8` (little-endian); the kernel
/// delivers exactly the message's bytes, the rest of the words zero. When a
/// call returns no message (an error, or a message that arrived in the
/// window), the words are the caller's own.
pub type MsgWords = [u64; MSG_WORDS];
/// Words in [`MsgWords`].
pub const MSG_WORDS: usize = 8;
/// The longest message (or reply) that travels in registers.
pub const REG_MESSAGE: usize = MSG_WORDS * 8;
/// Set in `ReplyWait`'s `size` result when the message is in the message
/// registers (else it is in the window, as for `ReplyRecv`).
pub const IN_REGISTERS: u64 = 1 << 32;
/// Set in the `size` result of `Receive`, `ReplyRecv` and `ReplyWait` when
/// the message was sent with `Call` (in registers or, to a receiver not in
/// `ReplyWait`, copied into the window): its reply goes back in registers,
/// so `ReplyWait` answers it the fast way.
pub const CALLED: u64 = 1 << 33;

/// The words that carry `bytes` (at most [`REG_MESSAGE`]; the rest zero).
#[inline]
pub fn words_of(bytes: &[u8]) -> MsgWords {
    let mut w = [0u64; MSG_WORDS];
    for (i, chunk) in bytes.chunks(8).take(MSG_WORDS).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        w[i] = u64::from_le_bytes(b);
    }
    w
}

/// The bytes the words carry.
#[inline]
pub fn bytes_of(w: &MsgWords) -> [u8; REG_MESSAGE] {
    let mut b = [0u8; REG_MESSAGE];
    for (i, word) in w.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    b
}

/// `w` with every byte from `len` on cleared: what a message of `len` bytes
/// carries (the sender's other register contents never reach the receiver).
#[inline(always)]
pub fn masked(w: &MsgWords, len: u64) -> MsgWords {
    if len >= REG_MESSAGE as u64 {
        return *w;
    }
    let mut out = [0u64; MSG_WORDS];
    let full = (len / 8) as usize;
    out[..full].copy_from_slice(&w[..full]);
    if !len.is_multiple_of(8) {
        out[full] = w[full] & ((1u64 << (len % 8 * 8)) - 1);
    }
    out
}

/// A page-aligned receive window, the length of a reply in registers (at
/// most [`REG_MESSAGE`]) and whether to wait, in one register: `window |
/// len | poll << 63` (the window's low 12 bits and top bit are free: user
/// space ends below 2^47). A longer length is `InvalidArgument`; whether
/// the window is user memory the kernel checks like any window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLen {
    pub window: u64,
    pub len: u64,
    /// Do not wait: no message queued is `Timeout` (else: wait for ever).
    pub poll: bool,
}

/// [`WindowLen`]'s poll bit.
pub const POLL: u64 = 1 << 63;

impl Reg for WindowLen {
    #[inline(always)]
    fn to_reg(self) -> u64 {
        self.window | self.len | if self.poll { POLL } else { 0 }
    }
    #[inline(always)]
    fn from_reg(r: u64) -> Result<WindowLen, Error> {
        let len = r & 0xfff;
        if len > REG_MESSAGE as u64 {
            return Err(Error::InvalidArgument);
        }
        Ok(WindowLen { window: r & !0xfff & !POLL, len, poll: r & POLL != 0 })
    }
}

/// Values that travel in `N` registers: 5 for arguments, 4 for results.
pub trait Regs<const N: usize>: Sized + Copy {
    /// The registers for these values (unused ones 0).
    fn to_regs(&self) -> [u64; N];
    /// The values in these registers, or `InvalidArgument`.
    fn from_regs(r: &[u64; N]) -> Result<Self, Error>;
}

/// What an argument means, so that a fuzzer can draw plausible values for
/// it (and a reader knows what to pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// Any number (a tag, a result word, an exit code, a badge).
    Value,
    /// A user address of a buffer.
    Addr,
    /// A page-aligned receive window.
    Window,
    /// A page-aligned user address to map at.
    PageAddr,
    /// A length in bytes, usually a multiple of the page size.
    PageLen,
    /// A message or buffer size in bytes.
    Size,
    /// Where a name is.
    NamePtr,
    /// A name's length.
    NameLen,
    /// Nanoseconds ([`crate::FOREVER`]: no limit).
    Timeout,
    /// A [`RightsMask`].
    Rights,
    /// [`MapFlags`].
    MapFlags,
    /// [`SendFlags`].
    SendFlags,
    /// Bytes of reply data.
    ReplyLen,
    /// A [`WindowLen`]: a receive window and a register reply's length.
    WindowLen,
    /// A thread priority.
    Prio,
    /// Where a [`crate::quota::Quota`] is.
    QuotaPtr,
    /// A small count or selector (pages, an operation number).
    Count,
    /// A message cookie.
    Cookie,
    /// A capability token, of this kind if named.
    Token(Option<CapKind>),
    /// A capability token, or 0 for none.
    OptToken,
    /// A token of this syscall class.
    ClassToken(SyscallClass),
    /// Bytes of a `Names` scope's provider (at most
    /// [`crate::limits::PROVIDER_LEN`]; 0: find only).
    ProviderLen,
}

/// One argument or result: its name (as in the README's syscall table) and,
/// for arguments, its meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: ArgKind,
}

macro_rules! regs {
    ($n:literal, $(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty = $k:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }

        impl $name {
            /// The fields in register order.
            pub const FIELDS: &'static [Field] = &[$(Field { name: stringify!($f), kind: $k },)*];

            /// The registers for these values (unused ones 0).
            #[inline(always)]
            #[allow(unused_mut, unused_assignments, unused_variables)]
            pub fn to_regs(&self) -> [u64; $n] {
                let mut r = [0u64; $n];
                let mut i = 0;
                $( r[i] = Reg::to_reg(self.$f); i += 1; )*
                r
            }

            /// The values in these registers, or `InvalidArgument`.
            #[inline(always)]
            #[allow(unused_mut, unused_assignments, unused_variables)]
            pub fn from_regs(r: &[u64; $n]) -> Result<Self, Error> {
                let mut i = 0;
                $( let $f = <$t as Reg>::from_reg(r[i])?; i += 1; )*
                Ok(Self { $($f,)* })
            }
        }

        impl Regs<$n> for $name {
            #[inline(always)]
            fn to_regs(&self) -> [u64; $n] {
                $name::to_regs(self)
            }
            #[inline(always)]
            fn from_regs(r: &[u64; $n]) -> Result<Self, Error> {
                $name::from_regs(r)
            }
        }

        const _: () = assert!($name::FIELDS.len() <= $n, concat!(stringify!($name), " has more fields than registers"));
    };
}

macro_rules! args {
    ($($(#[$m:meta])* $name:ident { $($body:tt)* })*) => { $(regs!(5, $(#[$m])* $name { $($body)* });)* };
}

macro_rules! results {
    ($($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident),* $(,)? })*) => {
        $(regs!(4, $(#[$m])* $name { $($(#[$fm])* $f: u64 = ArgKind::Value),* });)*
    };
}

use ArgKind as K;

args! {
    /// No arguments.
    NoArgs {}
    /// `DebugPrint`: bytes to print.
    PrintArgs { ptr: u64 = K::Addr, len: u64 = K::Size }
    /// `Exit`, `PowerOff`.
    CodeArgs { code: u64 = K::Value }
    /// `Sleep`, `ProcessWait`.
    TimeoutArgs { timeout: u64 = K::Timeout }
    /// `Send`.
    SendArgs { tag: u64 = K::Value, size: u64 = K::Size, buf: u64 = K::Addr, timeout: u64 = K::Timeout, flags: SendFlags = K::SendFlags }
    /// `SendCap`.
    SendCapArgs { tag: u64 = K::Value, size: u64 = K::Size, buf: u64 = K::Addr, cap: u64 = K::Token(None), rights: RightsMask = K::Rights }
    /// `Receive`.
    ReceiveArgs { window: u64 = K::Window, timeout: u64 = K::Timeout }
    /// `Reply` (the token is the cookie).
    ReplyArgs { result: u64 = K::Value, buf: u64 = K::Addr, reply_len: u64 = K::ReplyLen, cap: u64 = K::OptToken, rights: RightsMask = K::Rights }
    /// `Call`: words 0 and 1 of the message (the rest in `rbx, rbp,
    /// r12-r15`, see [`MsgWords`]).
    CallArgs { tag: u64 = K::Value, size: u64 = K::Size, timeout: u64 = K::Timeout, w0: u64 = K::Value, w1: u64 = K::Value }
    /// `ReplyWait`: words 0 and 1 of the reply (the rest in `rbx, rbp,
    /// r12-r15`).
    ReplyWaitArgs { cookie: u64 = K::Cookie, result: u64 = K::Value, window_len: WindowLen = K::WindowLen, w0: u64 = K::Value, w1: u64 = K::Value }
    /// `ReplyRecv`.
    ReplyRecvArgs { cookie: u64 = K::Cookie, result: u64 = K::Value, reply_len: u64 = K::ReplyLen, window: u64 = K::Window, timeout: u64 = K::Timeout }
    /// `NameFind`, `NameDeregister`.
    NameArgs { name_ptr: u64 = K::NamePtr, name_len: u64 = K::NameLen }
    /// `NameRegister`: the name, and the `Names` class token whose scope
    /// must cover its provider.
    NameRegisterArgs { name_ptr: u64 = K::NamePtr, name_len: u64 = K::NameLen, names: u64 = K::ClassToken(SyscallClass::Names) }
    /// `NamesScope`: the provider of the narrower scope (length 0: find only).
    ScopeArgs { provider_ptr: u64 = K::NamePtr, provider_len: u64 = K::ProviderLen }
    /// `CapDerive`.
    DeriveArgs { rights: RightsMask = K::Rights }
    /// `CapGrant`.
    GrantArgs { cap: u64 = K::Token(None), rights: RightsMask = K::Rights }
    /// `MapAnon`.
    MapAnonArgs { addr: u64 = K::PageAddr, len: u64 = K::PageLen, flags: MapFlags = K::MapFlags }
    /// `Unmap`.
    UnmapArgs { addr: u64 = K::PageAddr, len: u64 = K::PageLen }
    /// `MapPhys`.
    MapPhysArgs { addr: u64 = K::PageAddr, offset: u64 = K::PageLen, len: u64 = K::PageLen, flags: MapFlags = K::MapFlags }
    /// `PhysDerive`.
    PhysDeriveArgs { offset: u64 = K::PageLen, len: u64 = K::PageLen, rights: RightsMask = K::Rights }
    /// `DmaAlloc`.
    DmaAllocArgs { pages: u64 = K::Count }
    /// `DmaAddr`.
    DmaAddrArgs { addr: u64 = K::Addr }
    /// `ProcessCreate`.
    ProcessCreateArgs { name_ptr: u64 = K::NamePtr, name_len: u64 = K::Count, quota_ptr: u64 = K::QuotaPtr }
    /// `ProcessWrite`.
    ProcessWriteArgs { dst: u64 = K::Addr, src: u64 = K::Addr, len: u64 = K::Size }
    /// `ThreadCreate`.
    ThreadCreateArgs { entry: u64 = K::Addr, stack: u64 = K::Addr, arg0: u64 = K::Value, arg1: u64 = K::Value, priority: u64 = K::Prio }
    /// `DebugIpc`: an operation of [`crate::debug`] and its operands.
    DebugIpcArgs { op: u64 = K::Count, a: u64 = K::Addr, b: u64 = K::Value, c: u64 = K::Value }
    /// `IoPortIn`.
    PortInArgs { port: u64 = K::Value }
    /// `IoPortOut`.
    PortOutArgs { port: u64 = K::Value, value: u64 = K::Value }
    /// `IrqBind`.
    IrqBindArgs { channel: u64 = K::Token(Some(CapKind::Channel)), badge: u64 = K::Value }
    /// `IrqLine`: the line, and [`crate::irq::LINE_GSI`] or
    /// [`crate::irq::LINE_ISA`] for what its number is.
    IrqLineArgs { line: u64 = K::Count, kind: u64 = K::Count }
}

results! {
    /// No results.
    NoResults {}
    /// One value.
    Value { value }
    /// `Priority`.
    PriorityResults { base, effective }
    /// `Send`, `SendCap`: the server's result word, a capability it sent
    /// back (0: none) and the bytes of reply data.
    SendResults { result, cap, reply_len }
    /// `Receive`, `ReplyRecv`.
    ReceiveResults { cookie, tag, size, cap }
    /// `CapInspect`.
    CapInfo { kind, rights, id, flavor }
    /// `PhysInfo`.
    PhysInfoResults { base, len }
    /// `DmaAlloc`.
    DmaAllocResults { token, phys }
    /// `ProcessCreate`.
    ProcessCreateResults { token, index }
    /// `ProcessWait`: [`crate::exit`] `how`, and the code or vector.
    WaitResults { how, code }
    /// `DebugIpc`.
    DebugIpcResults { v0, v1 }
    /// `IrqMsi`.
    IrqMsiResults { token, msi_address, msi_data }
    /// `IrqLine`: the IRQ token, the line's GSI and its vector.
    IrqLineResults { token, gsi, vector }
}

/// What authorises a syscall: the token in `rdi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// A capability for this syscall class.
    Class(SyscallClass),
    /// A capability for an object of this kind.
    Object(CapKind),
    /// Any capability.
    Any,
    /// A message cookie (`Reply`).
    Cookie,
}

/// A syscall's token, argument and result fields, in register order.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub token: Auth,
    pub args: &'static [Field],
    pub results: &'static [Field],
    /// Whether the call returns at all (`Exit`, `ThreadExit` and `PowerOff`
    /// do not).
    pub returns: bool,
}

/// Which token, argument and result types each syscall uses.
pub const fn shape(s: Syscall) -> Shape {
    use Auth::{Class, Object};
    use CapKind::{Channel, IoPort, Irq, Phys, Process};
    use Syscall as S;
    use SyscallClass as C;
    const fn of(token: Auth, args: &'static [Field], results: &'static [Field]) -> Shape {
        Shape { token, args, results, returns: true }
    }
    const fn no_return(token: Auth, args: &'static [Field]) -> Shape {
        Shape { token, args, results: &[], returns: false }
    }
    const THREAD: Auth = Class(C::Thread);
    match s {
        S::DebugPrint => of(Class(C::DebugPrint), PrintArgs::FIELDS, NoResults::FIELDS),
        S::Exit => no_return(THREAD, CodeArgs::FIELDS),
        S::Yield => of(THREAD, NoArgs::FIELDS, NoResults::FIELDS),
        S::Sleep => of(THREAD, TimeoutArgs::FIELDS, NoResults::FIELDS),
        S::Uptime => of(THREAD, NoArgs::FIELDS, Value::FIELDS),
        S::ThreadExit => no_return(THREAD, NoArgs::FIELDS),
        S::Priority => of(THREAD, NoArgs::FIELDS, PriorityResults::FIELDS),
        S::ChannelCreate => of(Class(C::ChannelCreate), NoArgs::FIELDS, Value::FIELDS),
        S::ChannelDestroy => of(Object(Channel), NoArgs::FIELDS, NoResults::FIELDS),
        S::Send => of(Object(Channel), SendArgs::FIELDS, SendResults::FIELDS),
        S::SendCap => of(Object(Channel), SendCapArgs::FIELDS, SendResults::FIELDS),
        S::Receive => of(Object(Channel), ReceiveArgs::FIELDS, ReceiveResults::FIELDS),
        S::Reply => of(Auth::Cookie, ReplyArgs::FIELDS, NoResults::FIELDS),
        S::ReplyRecv => of(Object(Channel), ReplyRecvArgs::FIELDS, ReceiveResults::FIELDS),
        S::Call => of(Object(Channel), CallArgs::FIELDS, SendResults::FIELDS),
        S::ReplyWait => of(Object(Channel), ReplyWaitArgs::FIELDS, ReceiveResults::FIELDS),
        S::NameRegister => of(Object(Channel), NameRegisterArgs::FIELDS, NoResults::FIELDS),
        S::NameDeregister => of(Object(Channel), NameArgs::FIELDS, NoResults::FIELDS),
        S::NameFind => of(Class(C::Names), NameArgs::FIELDS, Value::FIELDS),
        S::NamesScope => of(Class(C::Names), ScopeArgs::FIELDS, Value::FIELDS),
        S::CapDerive => of(Auth::Any, DeriveArgs::FIELDS, Value::FIELDS),
        S::CapDrop => of(Auth::Any, NoArgs::FIELDS, NoResults::FIELDS),
        S::CapGrant => of(Object(Process), GrantArgs::FIELDS, Value::FIELDS),
        S::CapInspect => of(Auth::Any, NoArgs::FIELDS, CapInfo::FIELDS),
        S::MapAnon => of(Object(Process), MapAnonArgs::FIELDS, NoResults::FIELDS),
        S::Unmap => of(Object(Process), UnmapArgs::FIELDS, NoResults::FIELDS),
        S::MapPhys => of(Object(Phys), MapPhysArgs::FIELDS, NoResults::FIELDS),
        S::PhysDerive => of(Object(Phys), PhysDeriveArgs::FIELDS, Value::FIELDS),
        S::PhysInfo => of(Object(Phys), NoArgs::FIELDS, PhysInfoResults::FIELDS),
        S::DmaAlloc => of(Class(C::Dma), DmaAllocArgs::FIELDS, DmaAllocResults::FIELDS),
        S::DmaAddr => of(Class(C::Dma), DmaAddrArgs::FIELDS, Value::FIELDS),
        S::ProcessCreate => of(Class(C::ProcessCreate), ProcessCreateArgs::FIELDS, ProcessCreateResults::FIELDS),
        S::ProcessWrite => of(Object(Process), ProcessWriteArgs::FIELDS, NoResults::FIELDS),
        S::ThreadCreate => of(Object(Process), ThreadCreateArgs::FIELDS, Value::FIELDS),
        S::ProcessWait => of(Object(Process), TimeoutArgs::FIELDS, WaitResults::FIELDS),
        S::ProcessKill => of(Object(Process), NoArgs::FIELDS, NoResults::FIELDS),
        S::DebugIpc => of(Class(C::DebugIpc), DebugIpcArgs::FIELDS, DebugIpcResults::FIELDS),
        S::PowerOff => no_return(Class(C::Power), CodeArgs::FIELDS),
        S::IrqMsi => of(Class(C::Irq), NoArgs::FIELDS, IrqMsiResults::FIELDS),
        S::IrqBind => of(Object(Irq), IrqBindArgs::FIELDS, NoResults::FIELDS),
        S::IrqAck => of(Object(Irq), NoArgs::FIELDS, NoResults::FIELDS),
        S::IrqLine => of(Class(C::Irq), IrqLineArgs::FIELDS, IrqLineResults::FIELDS),
        S::IoPortIn => of(Object(IoPort), PortInArgs::FIELDS, Value::FIELDS),
        S::IoPortOut => of(Object(IoPort), PortOutArgs::FIELDS, NoResults::FIELDS),
    }
}

/// The register index (0 = `rsi`) of syscall `s`'s argument `name`, for
/// code that must fill raw registers (fuzzers, tests of bad values).
/// Evaluated in a `const` block, a wrong name does not compile.
pub const fn arg_index(s: Syscall, name: &str) -> usize {
    let args = shape(s).args;
    let mut i = 0;
    while i < args.len() {
        if str_eq(args[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("no such argument")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Split a syscall's six argument registers (`rdi` first) into the token
/// and the argument registers.
#[inline(always)]
pub const fn split(a: &[u64; 6]) -> (u64, ArgRegs) {
    (a[0], [a[1], a[2], a[3], a[4], a[5]])
}

#[cfg(test)]
mod tests;
