//! The contract between the kernel and user space.
//!
//! Every number both sides must agree on lives here and nowhere else: syscall
//! numbers and their register conventions, error codes, capability kinds and
//! rights, limits, and the layouts of structures the kernel writes into user
//! memory. The kernel and the runtime both depend on this crate, so a change
//! here is a change to both, and a mismatch cannot compile.
//!
//! # Register convention
//! `syscall` with `rax` = [`Syscall`] number, `rdi` = the capability token that
//! authorises the call (a syscall-class token, or the token of the object acted
//! on), `rsi`, `rdx`, `r10`, `r8`, `r9` = arguments 1–5. On return `rax` holds an
//! [`Error`] code (0 = success) and `rsi`, `rdx`, `r8`, `r9` hold up to four
//! result values. `rcx`, `r11`, `rdi` and `r10` are clobbered; every other
//! register is preserved. Which argument or result sits in which register is
//! said once, by the types of [`call`]; rights and flags are the typed bit
//! sets of [`flags`].

#![cfg_attr(not(test), no_std)]

pub mod call;
pub mod debug;
pub mod flags;
mod plain;
pub mod quota;
pub mod start;

pub use flags::{ChannelRights, ClassRights, IoPortRights, IrqRights, MapFlags, PhysRights, ProcessRights, Rights, RightsMask, SendFlags};
pub use plain::Plain;

/// Size of a page, and of the largest message.
pub const PAGE_SIZE: usize = 4096;
/// Largest message payload in bytes. A page-aligned message of exactly this
/// size is moved by mapping the sender's page instead of copying.
pub const MAX_MESSAGE: usize = PAGE_SIZE;
/// First address above user space. The top page below it stays unmappable so
/// that `sysret` can never return to a non-canonical address.
pub const USER_TOP: u64 = 0x0000_7fff_ffff_f000;
/// Lowest address a user mapping may start at (page 0 stays unmapped).
pub const USER_BOTTOM: u64 = 0x1000;

/// Kernel limits that user space can run into.
pub mod limits {
    /// Senders that may wait on one channel before `send` fails with `QueueFull`.
    pub const CHANNEL_QUEUE_DEPTH: usize = 32;
    /// Channels one process may own at once.
    pub const CHANNELS_PER_PROCESS: usize = 64;
    /// Channels in the whole system.
    pub const CHANNELS: usize = 1023;
    /// Threads in the whole system (including the idle thread).
    pub const THREADS: usize = 255;
    /// Processes in the whole system.
    pub const PROCESSES: usize = 64;
    /// Capabilities one process may hold.
    pub const CAPS_PER_PROCESS: usize = 96;
    /// Registered channel names in the whole system.
    pub const NAMES: usize = 128;
    /// Longest channel name in bytes (`PROVIDER::TYPE`).
    pub const NAME_LEN: usize = 48;
    /// Longest provider (the `PROVIDER` of `PROVIDER::TYPE`) a scoped
    /// `Names` capability can name (see [`super::names_scope`]).
    pub const PROVIDER_LEN: usize = 8;
    /// Longest process name in bytes.
    pub const PROCESS_NAME_LEN: usize = 16;
    /// Most bytes one `MapAnon` or `MapPhys` call may map (the kernel maps
    /// page by page without preemption).
    pub const MAP_MAX: u64 = 1 << 30;
    /// Longest debug-print string in bytes.
    pub const PRINT_LEN: usize = 1024;
    /// Contiguous DMA regions in the whole system.
    pub const DMA_REGIONS: usize = 64;
    /// Largest single DMA allocation, in pages.
    pub const DMA_MAX_PAGES: u64 = 512;
    /// Highest thread priority (lowest is 0, which only the idle thread uses
    /// in practice).
    pub const MAX_PRIORITY: u8 = 31;
    /// Priority the kernel starts `system` at; what it starts runs at this
    /// or lower (a thread starts threads up to its own base priority).
    pub const INIT_PRIORITY: u8 = 16;
    /// Scheduler tick in nanoseconds: sleeps and timeouts round up to it.
    pub const TICK_NS: u64 = 1_000_000;
}

/// A timeout argument meaning "wait as long as it takes".
pub const FOREVER: u64 = u64::MAX;

macro_rules! numbered {
    ($(#[$m:meta])* pub enum $name:ident : $repr:ty { $($(#[$vm:meta])* $v:ident = $n:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name { $($(#[$vm])* $v = $n,)* }
        impl $name {
            /// Every value, in numeric order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            /// The value with this number, if there is one.
            #[inline]
            pub const fn from_raw(raw: u64) -> Option<Self> {
                match raw { $($n => Some($name::$v),)* _ => None }
            }
            /// The name as written in the source, for logs.
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => stringify!($v),)* }
            }
        }
    };
}

numbered! {
/// System call numbers (`rax`). The doc line of each gives its arguments as
/// `rdi; rsi, rdx, r10, r8, r9 -> rsi, rdx, r8, r9`.
pub enum Syscall: u64 {
    /// `DebugPrint class; ptr, len ->` write bytes to the kernel console.
    DebugPrint = 0,
    /// `Thread class; code ->` (never returns) end the calling process.
    Exit = 1,
    /// `Thread class ->` give up the rest of the time slice.
    Yield = 2,
    /// `Thread class; ns ->` sleep at least `ns` nanoseconds.
    Sleep = 3,
    /// `Thread class -> ns` time since boot.
    Uptime = 4,
    /// `Thread class ->` (never returns) end the calling thread; the process
    /// ends with code 0 when its last thread ends.
    ThreadExit = 5,
    /// `Thread class -> base, effective` the caller's priorities.
    Priority = 6,
    /// `ChannelCreate class -> token` new channel, the caller owns it.
    ChannelCreate = 10,
    /// `channel(DESTROY) ->` destroy; every waiter gets `Closed`.
    ChannelDestroy = 11,
    /// `channel(SEND); tag, size, buf, timeout, flags -> result, cap,
    /// reply_len` send and wait for the reply ([`SendFlags`]); `reply_len`
    /// bytes of reply data were written to the start of `buf` (0 for a
    /// read-only send). A lent page (page-aligned, 4 KiB, writable) is not
    /// present in the sender's space until the reply: a sibling thread
    /// touching it faults.
    Send = 12,
    /// `channel(SEND); tag, size, buf, cap, rights -> result, cap, reply_len`
    /// send and carry a capability (the receiver gets its own token with at
    /// most `rights`); waits forever; the buffer is read-only (as with
    /// [`SendFlags::READ_ONLY`]), so `reply_len` is always 0.
    SendCap = 13,
    /// `channel(RECEIVE); buf, timeout -> cookie, tag, size, cap` wait for a
    /// message; `buf` must be a page-aligned 4 KiB window.
    Receive = 14,
    /// `cookie; result, buf, reply_len, cap, rights ->` answer a message,
    /// optionally with `reply_len` bytes read from the caller's `buf` (any
    /// of its memory; for a lent page, `buf` = the window copies nothing)
    /// and a capability. A cookie with junk in its unused bits, stale or
    /// not received by this process: `Incapable` (without the bad-token
    /// delay). `buf` overlapping the message's window after a later message
    /// arrived there: `InvalidArgument`, and the client is not answered.
    Reply = 15,
    /// `channel(RECEIVE); cookie, result, reply_len, buf, timeout -> cookie,
    /// tag, size, cap` reply (cookie 0: none) with `reply_len` bytes of the
    /// message's window, then receive. Reply data only comes from a window
    /// that still holds the message: if a later message arrived there,
    /// `reply_len > 0` is refused with `InvalidArgument` (nothing is sent,
    /// nothing received; answer it with [`Syscall::Reply`] instead).
    ReplyRecv = 16,
    /// `channel(SEND); tag, size, timeout, w0, w1 -> result, cap, reply_len`
    /// [`Syscall::Send`] with the message in registers (at most
    /// [`call::REG_MESSAGE`] bytes: words 0-1 in `r8, r9`, 2-7 in `rbx, rbp,
    /// r12-r15`, see [`call::MsgWords`]); the reply's `reply_len` bytes come
    /// back in the message registers `rdi, r10, rbx, rbp, r12-r15` (bytes
    /// past it zero). Never touches the caller's memory.
    Call = 17,
    /// `channel(RECEIVE); cookie, result, window_len, w0, w1 -> cookie, tag,
    /// size, cap` [`Syscall::ReplyRecv`] with the reply in registers (`w0,
    /// w1`, `rbx, rbp, r12-r15`; `window_len` = window | reply length, at
    /// most [`call::REG_MESSAGE`], and [`call::POLL`]: do not wait) and no
    /// timeout but that. A message sent with
    /// [`Syscall::Call`] arrives in the message registers (`size` has
    /// [`call::IN_REGISTERS`] set; bytes past the size zero); any other in
    /// the window, as for `ReplyRecv`.
    ReplyWait = 18,
    /// `channel(DELEGATE); name_ptr, name_len, names ->` publish a name;
    /// `names` is a `Names` class token whose scope covers the name's
    /// provider (see [`names_scope`]), else `Incapable`.
    NameRegister = 20,
    /// `Names class; name_ptr, name_len -> token` a send-only capability
    /// for the named channel.
    NameFind = 21,
    /// `channel(DELEGATE); name_ptr, name_len ->` withdraw a name.
    NameDeregister = 22,
    /// `Names class (DELEGATE); provider_ptr, provider_len -> token` a
    /// `Names` capability scoped to one provider (`provider_len` 0: to none,
    /// find only). Only narrowing: from the all scope any provider, from a
    /// provider scope that provider or none, else `Incapable`.
    NamesScope = 23,
    /// `any token; rights -> token` a copy with fewer rights.
    CapDerive = 30,
    /// `any token ->` forget a capability.
    CapDrop = 31,
    /// `process(GRANT); token, rights -> token` give the target process a
    /// capability; returns its token there.
    CapGrant = 32,
    /// `any token -> kind, rights` what a token is.
    CapInspect = 33,
    /// `process(MAP); addr, len, flags ->` map zeroed anonymous memory.
    MapAnon = 40,
    /// `process(MAP); addr, len ->` unmap.
    Unmap = 41,
    /// `phys(READ/WRITE); addr, offset, len, flags ->` map part of a physical
    /// range into the caller.
    MapPhys = 42,
    /// `phys(DELEGATE); offset, len, rights -> token` a capability for a sub-range.
    PhysDerive = 43,
    /// `phys -> base, len` the physical range a capability names.
    PhysInfo = 44,
    /// `Dma class; pages -> token, phys_addr` contiguous zeroed physical pages.
    DmaAlloc = 45,
    /// `Dma class; va -> phys_addr` the physical address of the caller's
    /// page at `va`, only for a page of its own DMA regions or a page lent
    /// to it by an IPC sender (mapped at a receive window now): memory the
    /// caller may already write, so a driver can point a device at a
    /// client's lent page instead of copying. Any other page: `BadAddress`.
    DmaAddr = 46,
    /// `ProcessCreate class; name_ptr, name_len, quota_ptr -> token, index`
    /// empty process with the [`quota::Quota`] at `quota_ptr`, carved out of
    /// the caller's own.
    ProcessCreate = 50,
    /// `process(MAP); dst, src, len ->` copy bytes into the process.
    ProcessWrite = 51,
    /// `process(THREAD); entry, stack, arg0, arg1, priority -> thread id`
    /// start a thread.
    ThreadCreate = 52,
    /// `process(WAIT); timeout -> how, code` wait for the process to end
    /// (`NotFound`: it ended and its slot went to a newer process).
    ProcessWait = 53,
    /// `process(KILL) ->` end the process.
    ProcessKill = 54,
    /// `DebugIpc class; op, a, b, c -> v0, v1` IPC monitoring, see [`debug`].
    DebugIpc = 60,
    /// `Power class; code ->` stop the machine (QEMU exits with `code*2+1`).
    PowerOff = 61,
    /// `Irq class -> token, msi_address, msi_data` allocate an MSI vector:
    /// an IRQ capability (all rights) and the address/data pair to program
    /// into a PCI function's MSI capability. See [`irq`].
    IrqMsi = 70,
    /// (`CapInspect` on an IRQ capability: id = vector, flavour = APIC id.)
    /// `irq(BIND); channel(RECEIVE), badge ->` deliver this interrupt as an
    /// event on the channel (a `Receive` there returns cookie 0, tag
    /// [`irq::EVENT_TAG`], size 0 and `badge` in the capability slot).
    /// Bound by a live process already: `Busy`. Unmasks the interrupt.
    IrqBind = 71,
    /// `irq(BIND) ->` the event was handled: unmask (an interrupt that came
    /// while masked is delivered again now). Not bound by the caller:
    /// `InvalidArgument`.
    IrqAck = 72,
    /// `Irq class; line, kind -> token, gsi, vector` a legacy interrupt line
    /// of the I/O APIC: `kind` [`irq::LINE_GSI`] names a GSI,
    /// [`irq::LINE_ISA`] an ISA IRQ (0..16, routed through the MADT's
    /// overrides). An IRQ capability (all rights), bound and acknowledged
    /// like an MSI one; the line is masked at the I/O APIC until bound and
    /// from each delivery until the ack. No I/O APIC, a line it does not
    /// have, a bad kind: `InvalidArgument`; held by a live process or used
    /// by the kernel (the timer's): `Busy`.
    IrqLine = 73,
    /// `ioport(READ); port -> value` read one byte from an I/O port inside
    /// the capability's range (see [`ioport`]).
    IoPortIn = 75,
    /// `ioport(WRITE); port, value ->` write one byte to an I/O port inside
    /// the capability's range.
    IoPortOut = 76,
}
}

numbered! {
/// Error codes returned in `rax`. Zero is success and is not an error.
pub enum Error: u64 {
    /// The token is not a capability of the calling process, or lacks the
    /// right needed. Repeated failures delay the caller.
    Incapable = 1,
    /// No syscall has this number.
    UnknownSyscall = 2,
    /// An argument is out of range or inconsistent.
    InvalidArgument = 3,
    /// A user pointer is not mapped as needed, or outside user space.
    BadAddress = 4,
    /// A message is larger than [`MAX_MESSAGE`].
    TooLarge = 5,
    /// The timeout expired (a timeout of 0 fails at once).
    Timeout = 6,
    /// The channel's sender queue is full.
    QueueFull = 7,
    /// A per-process or system-wide limit is reached.
    LimitReached = 8,
    /// The channel was destroyed (or its owner died) while waiting.
    Closed = 9,
    /// The server holding the request died before replying.
    PeerDied = 10,
    /// The kernel has no memory for this request.
    NoMemory = 11,
    /// No such name, process or object.
    NotFound = 12,
    /// The name is already registered, or the address already mapped.
    AlreadyExists = 13,
    /// The object is in use (e.g. a page lent out for IPC).
    Busy = 14,
    /// The mapping flags ask for writable and executable memory.
    WriteExecute = 15,
}
}

impl Error {
    /// Decode a raw `rax` value: `Ok(())` for 0.
    #[inline]
    pub fn check(raw: u64) -> Result<(), Error> {
        if raw == 0 {
            Ok(())
        } else {
            Err(Error::from_raw(raw).unwrap_or(Error::InvalidArgument))
        }
    }
}

numbered! {
/// What a capability refers to.
pub enum CapKind: u64 {
    /// The right to make one class of syscalls (see [`SyscallClass`]).
    Class = 1,
    /// A channel.
    Channel = 2,
    /// A process (possibly the holder itself).
    Process = 3,
    /// A range of physical memory (device registers, the boot RAMFS, DMA).
    Phys = 4,
    /// One interrupt (an MSI vector), see [`irq`].
    Irq = 5,
    /// A range of I/O ports (the serial console's UART), see [`ioport`].
    IoPort = 6,
}
}

numbered! {
/// The syscall classes that are not about one object: each needs a
/// [`CapKind::Class`] capability naming the class.
pub enum SyscallClass: u64 {
    DebugPrint = 1,
    /// Exit, yield, sleep, uptime, thread exit, priority.
    Thread = 2,
    ChannelCreate = 3,
    Names = 4,
    Dma = 5,
    ProcessCreate = 6,
    DebugIpc = 7,
    Power = 8,
    /// The authority over interrupts: allocate IRQ capabilities.
    Irq = 9,
}
}

/// How a process ended, as `ProcessWait` returns it in its first value.
pub mod exit {
    /// Called `Exit` (or its last thread ended); the second value is the code.
    pub const EXITED: u64 = 1;
    /// Killed by a CPU fault; the second value is the exception vector.
    pub const FAULTED: u64 = 2;
    /// Killed through `ProcessKill`.
    pub const KILLED: u64 = 3;
}

/// Identifiers for the capabilities a program receives at start
/// ([`start::InitCap::id`]). Values at or above [`cap_id::USER`] are chosen
/// by whoever spawns the program.
pub mod cap_id {
    /// Syscall-class capabilities use their [`super::SyscallClass`] number.
    pub const CLASS_BASE: u64 = 0;
    /// The program's own process.
    pub const SELF_PROCESS: u64 = 0x100;
    /// The boot RAMFS image (physical range, read-only).
    pub const RAMFS: u64 = 0x101;
    /// Device memory (physical range covering everything that is not RAM).
    pub const DEVICE_MEMORY: u64 = 0x102;
    /// A copy of the ACPI RSDP the firmware handed over (physical range of
    /// one page, read-only; the RSDP is at offset 0, 20 or 36 bytes as its
    /// revision says). Absent when the firmware gave none. The tables it
    /// points to are reached through [`DEVICE_MEMORY`] (they are not RAM).
    pub const ACPI_RSDP: u64 = 0x103;
    /// COM1's I/O ports ([`super::ioport::COM1`], read and write).
    pub const COM1: u64 = 0x104;
    /// COM1's interrupt line (ISA IRQ 4 through the I/O APIC, allocated by
    /// the kernel for `system`; see [`super::Syscall::IrqLine`]). Absent
    /// without an I/O APIC.
    pub const COM1_IRQ: u64 = 0x105;
    /// First identifier free for spawners.
    pub const USER: u64 = 0x1000;

    /// The identifier of a syscall-class capability.
    pub const fn class(c: super::SyscallClass) -> u64 {
        CLASS_BASE + c as u64
    }
}

/// I/O-port capabilities: one byte in or out per `IoPortIn`/`IoPortOut`,
/// only at ports inside the capability's range (READ to read, WRITE to
/// write). The kernel hands `system` one for COM1 so that a single program
/// (the shell) can read the console; the kernel keeps writing its own log
/// to COM1's data register, so a holder should only read RBR/LSR and write
/// THR (interleaving is then at byte granularity, as with two writers on
/// one terminal).
pub mod ioport {
    /// A range of I/O ports: `[base, base + len)`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Range {
        pub base: u16,
        pub len: u16,
    }

    impl Range {
        /// Whether `port` lies in the range.
        pub const fn contains(&self, port: u64) -> bool {
            port >= self.base as u64 && port < self.base as u64 + self.len as u64
        }
    }

    /// The first serial port's eight registers.
    pub const COM1: Range = Range { base: 0x3f8, len: 8 };
    /// COM1's receive buffer (read) / transmit holding (write) register.
    pub const COM1_DATA: u16 = 0x3f8;
    /// COM1's line status register.
    pub const COM1_LSR: u16 = 0x3fd;
    /// LSR bit: a received byte is waiting in RBR.
    pub const LSR_DATA_READY: u8 = 1 << 0;
}

/// A sender-side message-cookie's reply marker: `ReplyRecv` with this cookie
/// only receives.
pub const NO_REPLY: u64 = 0;

/// SDBM string hash, as the design names it for channel-name lookup. The
/// kernel compares full names after the hash, so collisions are harmless.
pub const fn sdbm(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        hash = (bytes[i] as u64)
            .wrapping_add(hash << 6)
            .wrapping_add(hash << 16)
            .wrapping_sub(hash);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for s in Syscall::ALL {
            assert_eq!(Syscall::from_raw(*s as u64), Some(*s));
        }
        for e in Error::ALL {
            assert_eq!(Error::from_raw(*e as u64), Some(*e));
            assert_ne!(*e as u64, 0, "0 means success");
        }
        assert_eq!(Syscall::from_raw(9999), None);
    }

    #[test]
    fn error_check_decodes() {
        assert_eq!(Error::check(0), Ok(()));
        assert_eq!(Error::check(7), Err(Error::QueueFull));
        assert_eq!(Error::check(0xdead), Err(Error::InvalidArgument));
    }

    #[test]
    fn sdbm_matches_reference() {
        // Reference values computed with the C form
        // `hash = c + (hash << 6) + (hash << 16) - hash` on uint64_t.
        assert_eq!(sdbm(b""), 0);
        assert_eq!(sdbm(b"a"), 97);
        assert_eq!(sdbm(b"ab"), 97u64.wrapping_mul(65599).wrapping_add(98));
    }

    #[test]
    fn class_ids_are_below_object_ids() {
        for c in SyscallClass::ALL {
            assert!(cap_id::class(*c) < cap_id::SELF_PROCESS);
        }
    }
}

/// Where things go in a user address space by convention. The kernel uses
/// these for `system`; spawners use them for everyone else.
pub mod layout {
    /// Top of the first thread's stack.
    pub const STACK_TOP: u64 = 0x0000_7ff0_0000_0000;
    /// Size of the first thread's stack.
    pub const STACK_SIZE: u64 = 256 * 1024;
    /// Start of the runtime's heap.
    pub const HEAP_BASE: u64 = 0x0000_1000_0000_0000;
    /// Where the runtime maps the boot RAMFS image.
    pub const RAMFS_BASE: u64 = 0x0000_2000_0000_0000;
    /// Receive windows for IPC (one page each).
    pub const IPC_WINDOWS: u64 = 0x0000_3000_0000_0000;
    /// Mappings the program asks for itself (device memory, DMA, tests).
    pub const USER_MAPPINGS: u64 = 0x0000_4000_0000_0000;
}

/// Interrupts delivered to user space.
///
/// A holder of the [`SyscallClass::Irq`] class allocates an MSI vector
/// ([`Syscall::IrqMsi`]) and gets an IRQ capability it can delegate; the
/// driver binds it to a channel of its own ([`Syscall::IrqBind`]). When the
/// interrupt fires the kernel masks it and marks it pending on the channel;
/// the next `Receive` there returns the event (cookie 0, nothing to reply)
/// before any queued message. [`Syscall::IrqAck`] unmasks it. The binding
/// ends when the binder dies or the channel is destroyed; the vector is
/// freed when the process that allocated it dies. Legacy lines of the I/O
/// APIC ([`Syscall::IrqLine`]) take vectors from the same pool and work the
/// same way; their pin is masked whenever no event may be delivered.
pub mod irq {
    /// The tag of an interrupt event (no message uses it: tags of real
    /// messages are the sender's choice, but a real message also has a
    /// non-zero cookie).
    pub const EVENT_TAG: u64 = 0xffff_ffff_ffff_ff01;
    /// The first CPU vector used for MSI.
    pub const FIRST_VECTOR: u8 = 0x40;
    /// Vectors the kernel hands out, MSI and I/O APIC lines alike (one pool).
    pub const VECTORS: usize = 16;
    /// `IrqLine`'s `kind`: the line is a global system interrupt number.
    pub const LINE_GSI: u64 = 0;
    /// `IrqLine`'s `kind`: the line is an ISA IRQ (0..16).
    pub const LINE_ISA: u64 = 1;
    /// COM1's ISA IRQ.
    pub const COM1_ISA_IRQ: u64 = 4;
    /// The MSI address for the boot CPU's local APIC (fixed delivery,
    /// physical destination), with its APIC id in bits 19:12.
    pub const fn msi_address(apic_id: u8) -> u64 {
        0xfee0_0000 | (apic_id as u64) << 12
    }
}

/// The scope of a `Names` class capability: which providers (`PROVIDER` of
/// `PROVIDER::TYPE`) its holder may register names under (`NameRegister`).
/// `CapInspect` reports it as the flavour. Every scope may `NameFind`.
pub mod names_scope {
    /// Every provider: what the kernel gives `system`.
    pub const ALL: u8 = 0;
    /// `1..=PROVIDER_LEN`: exactly one provider, of this many bytes.
    pub const ONE_MAX: u8 = super::limits::PROVIDER_LEN as u8;
    /// No provider: the holder may only find names.
    pub const FIND_ONLY: u8 = 0xff;

    /// Whether `s` may be a part of a name (`PROVIDER` or `TYPE`):
    /// non-empty ASCII letters, digits, `_`, `-`, `.`.
    pub fn valid_part(s: &[u8]) -> bool {
        !s.is_empty() && s.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
    }

    /// Whether `s` can be a scope's provider (a part of at most
    /// [`super::limits::PROVIDER_LEN`] bytes).
    pub fn valid_provider(s: &[u8]) -> bool {
        s.len() <= super::limits::PROVIDER_LEN && valid_part(s)
    }

    /// The `PROVIDER` of `PROVIDER::TYPE` (the bytes before the first `::`).
    pub fn provider(name: &[u8]) -> Option<&[u8]> {
        name.windows(2).position(|w| w == b"::").map(|i| &name[..i])
    }
}

/// Flavours of physical-range capabilities (what `CapInspect` reports).
pub mod phys_flavor {
    /// Device registers: uncached, never RAM.
    pub const DEVICE: u8 = 1;
    /// The boot RAMFS image: RAM, read-only.
    pub const BOOT: u8 = 2;
    /// A DMA allocation: RAM, owned by the process that allocated it.
    pub const DMA: u8 = 3;

    /// Physical ranges no device capability maps, whatever it names: a CPU
    /// write anywhere in them raises an interrupt (or an INIT, a reset).
    /// `[start, end)` pairs.
    ///
    /// - `0xfec0_0000..0xfed0_0000`: the I/O APICs' window (programming a
    ///   redirection entry routes any pin to any vector, NMI or INIT).
    /// - `0xfee0_0000..0xfef0_0000`: the interrupt (MSI) window; the local
    ///   APIC's registers are one page of it, and a write to any other
    ///   address in it is delivered to a CPU as a message-signalled interrupt.
    ///
    /// The kernel also keeps out the page the local APIC is actually at, in
    /// case the firmware moved it. A bus-master device can still write these
    /// addresses (and any RAM): only an IOMMU would stop that.
    pub const INTERRUPT_WINDOWS: [(u64, u64); 2] = [(0xfec0_0000, 0xfed0_0000), (0xfee0_0000, 0xfef0_0000)];
}
