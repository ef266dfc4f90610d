//! The `SYSTEM::PROCESS` protocol: operations, requests, replies, errors,
//! framed by the runtime's [`runtime::rpc`] (tag = operation, postcard
//! body, result word = status and reply length).
//!
//! Capabilities cannot ride inside a postcard body (a token means nothing
//! outside its process), and a message carries at most one. So a client
//! first *stages* each capability it wants to hand on: a [`Stage`] sent
//! with `SendCap`, whose body names the client's own token for it and the
//! rights the child is to get. The kernel refuses to send a capability the
//! client does not hold (or may not delegate), and never gives the server
//! more rights than the client has; the server compares what arrived with
//! what was asked and refuses a shortfall (`RightsAboveCaller`). A
//! [`SpawnRequest`] then lists the staged capabilities by the client's
//! token (unguessable and never reused, so no other client can claim them).
//! Every capability a spawn names is used up by it, success or not.

use heapless::{String as HString, Vec as HVec};
use runtime::rpc::MaxSize;
use serde::{Deserialize, Serialize};

/// The name `system` registers.
pub const NAME: &str = "SYSTEM::PROCESS";
/// Most arguments of a spawn (the program name included).
pub const MAX_ARGS: usize = 64;
/// Most capabilities a spawn may hand on.
pub const MAX_CAPS: usize = 32;
/// Longest path.
pub const MAX_PATH: usize = 256;
/// Bytes of all arguments together, each ended by a NUL.
pub const ARGS_BYTES: usize = 2048;
/// Capabilities staged and not yet used, over all clients.
pub const MAX_STAGED: usize = 2 * MAX_CAPS;
/// Room in a request for more than [`MAX_CAPS`], so that a request with
/// too many gets its own error rather than a framing one.
const CAPS_ROOM: usize = 2 * MAX_CAPS;

runtime::protocol! {
    /// The requests `SYSTEM::PROCESS` answers.
    pub enum Request: ProcessError {
        /// Sent with `SendCap`: keep the capability it carries for a spawn.
        Stage(Stage) = 1 -> ();
        /// Start a program; the reply carries its process capability (WAIT, KILL).
        Spawn(SpawnRequest) = 2 -> Spawned;
        /// How a supervised program is doing.
        Status(StatusRequest) = 3 -> Status;
        /// Drop staged capabilities unused.
        Release(Release) = 4 -> ();
        /// Every program `system` watches (anyone may ask).
        List(ListRequest) = 5 -> ProcessList;
        /// End a program `system` started; sent with `SendCap` of the
        /// admin key ([`ADMIN_CAP`]), else `NotAllowed`.
        Kill(KillRequest) = 6 -> ();
    }
}

/// The start-capability id of the *admin key*: a capability `system`
/// makes at boot and hands (with DELEGATE, so that it can be presented)
/// only to the programs `boot.conf` marks `admin` (the shell) and to
/// `ktest`. A [`KillRequest`] must carry it (`SendCap`): the kernel only
/// sends capabilities the sender holds, and `system` compares the object
/// it received with its own key. A spawner does not need it for its own
/// children: the [`Spawned`] reply's process capability has KILL.
pub const ADMIN_CAP: u64 = abi::cap_id::USER + 0xad;
/// Longest name in a [`ProcessInfo`] (longer ones are cut).
pub const LIST_NAME: usize = 32;

/// Keep the capability this message carries for a later spawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Stage {
    /// The client's token for the capability: the spawn names it by this.
    pub ticket: u64,
    /// The rights the child is to get.
    pub rights: u32,
}

/// One capability for the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Delegate {
    /// The id the child finds it under ([`abi::cap_id`]).
    pub id: u64,
    /// The staged capability ([`Stage::ticket`]).
    pub ticket: u64,
}

/// Start a program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct SpawnRequest {
    /// `boot:/<file>`: loaded through VFS.
    pub path: HString<MAX_PATH>,
    /// The arguments, the program name first, each ended by a NUL.
    pub args: HVec<u8, ARGS_BYTES>,
    pub caps: HVec<Delegate, CAPS_ROOM>,
    /// First-thread stack in bytes (page-aligned); 0 for the default.
    pub stack_size: u64,
    /// 1 up to the caller's own.
    pub priority: u8,
    /// Supervise it: restart it with back-off when it ends. Its first
    /// argument is its name for [`StatusRequest`].
    pub restart: bool,
}

impl SpawnRequest {
    /// The arguments, or `None` if the bytes do not end with a NUL or one
    /// is not UTF-8.
    pub fn arg_list(&self) -> Option<alloc::vec::Vec<&str>> {
        let body = self.args.strip_suffix(&[0])?;
        body.split(|&b| b == 0).map(|a| core::str::from_utf8(a).ok()).collect()
    }
}

/// Pack arguments for [`SpawnRequest::args`]; `None` if they do not fit.
pub fn pack_args(args: &[&str]) -> Option<HVec<u8, ARGS_BYTES>> {
    let mut v = HVec::new();
    for a in args {
        if a.as_bytes().contains(&0) {
            return None;
        }
        v.extend_from_slice(a.as_bytes()).ok()?;
        v.push(0).ok()?;
    }
    Some(v)
}

/// A started program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Spawned {
    pub pid: u64,
}

/// Ask how a supervised program is doing, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct StatusRequest {
    pub name: HString<64>,
}

/// Drop staged capabilities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Release {
    pub tickets: HVec<u64, CAPS_ROOM>,
}

/// Ask for the list of programs (no fields: a struct so that it can grow).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct ListRequest {}

/// End program `pid` (the number [`Spawned`] and [`ProcessInfo`] give).
/// A supervised program is restarted as after any other end (its back-off
/// and hold rules apply); others are gone for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct KillRequest {
    pub pid: u64,
}

/// Where a program came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Origin {
    /// A boot server of `boot.conf`.
    Boot,
    /// A [`SpawnRequest`] (IPC carries no sender identity, so `system`
    /// cannot say whose; the spawner holds its process capability).
    Request,
}

/// What a program is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum RunState {
    Running,
    /// Ended; a supervised one starts again after its back-off.
    Restarting,
    /// Ended too often too fast: left stopped.
    Held,
}

/// One program `system` watches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct ProcessInfo {
    /// Its process id (the kernel's slot number, as in the kernel's log);
    /// 0 when not running.
    pub pid: u64,
    pub name: HString<LIST_NAME>,
    pub state: RunState,
    /// Restarts so far (0 for a program that is not supervised).
    pub restarts: u32,
    /// Restarted when it ends.
    pub supervised: bool,
    /// Its parent is `system` (pid 1) for every program listed: this says
    /// who asked for it.
    pub origin: Origin,
}

/// Every program `system` started that runs, or waits for its restart, or
/// is held (a program that is not supervised leaves the list when it ends).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct ProcessList {
    pub processes: HVec<ProcessInfo, { crate::service::MAX_CHILDREN }>,
}

/// A supervised program's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Status {
    Running { pid: u64, restarts: u32 },
    /// Ended; starts again after its back-off.
    Restarting { restarts: u32 },
    /// Ended too often too fast: left stopped.
    Held { restarts: u32 },
}

runtime::error_codes! {
/// Why a request failed. (Framing errors — malformed or truncated body,
/// oversized message, unknown operation — are the runtime's `WireError`.)
pub enum ProcessError {
    /// The path is not `boot:/<file>` (empty, `..`, empty parts, too long).
    BadPath = 1,
    /// No such file.
    NotFound = 2,
    /// Not a static x86-64 ELF executable.
    NotElf = 3,
    /// A segment breaks the loader's rules (outside user space, W^X,
    /// overlapping, past the file, entry outside the code).
    BadSegment = 4,
    /// More than [`MAX_ARGS`] arguments, none, or not NUL-ended UTF-8.
    TooManyArgs = 5,
    /// More than [`MAX_CAPS`] capabilities.
    TooManyCaps = 6,
    /// A stage without a capability, or a spawn naming a ticket that was
    /// not staged (or already used).
    NotStaged = 7,
    /// The staged capability has fewer rights than the child is to get
    /// (or no DELEGATE, without which it cannot be handed on).
    RightsAboveCaller = 8,
    /// The priority is above the caller's, or 0.
    PriorityAboveCaller = 9,
    /// The stack size is not page-aligned, above the limit, or too small
    /// for the arguments.
    StackSize = 10,
    /// The kernel has no memory for the process.
    OutOfMemory = 11,
    /// A kernel or server limit (processes, capabilities, staged
    /// capabilities, supervised programs, a supervised name in use).
    LimitReached = 12,
    /// No supervised program has this name.
    NotSupervised = 13,
    /// The file system failed (VFS or RAMFS unreachable or erring).
    Io = 14,
    /// The kernel refused something it should not have.
    Internal = 15,
    /// A kill without the admin key ([`ADMIN_CAP`]).
    NotAllowed = 16,
    /// No running program `system` started has this pid.
    NoSuchProcess = 17,
}
}

impl From<abi::Error> for ProcessError {
    fn from(e: abi::Error) -> Self {
        match e {
            abi::Error::NoMemory => ProcessError::OutOfMemory,
            abi::Error::LimitReached => ProcessError::LimitReached,
            _ => ProcessError::Internal,
        }
    }
}

impl From<runtime::process::SpawnError> for ProcessError {
    fn from(e: runtime::process::SpawnError) -> Self {
        use elfload::LoadError as L;
        use runtime::process::SpawnError as S;
        match e {
            S::Elf(L::Malformed | L::WrongMachine | L::NotStatic) => ProcessError::NotElf,
            S::Elf(_) => ProcessError::BadSegment,
            S::StackSize | S::Kernel(abi::Error::TooLarge) => ProcessError::StackSize,
            // A segment where the stack goes: the stack cannot be mapped.
            S::Kernel(abi::Error::AlreadyExists) => ProcessError::BadSegment,
            S::Kernel(e) => e.into(),
        }
    }
}
