//! Processes and threads: creating them, loading programs, waiting.

use alloc::vec::Vec;

use abi::quota::Quota;
use abi::start::InitCap;
use abi::call::{GrantArgs, MapAnonArgs, NoArgs, ProcessCreateArgs, ProcessWriteArgs, ThreadCreateArgs, TimeoutArgs};
use abi::{exit, layout, Error, MapFlags, ProcessRights, RightsMask, SyscallClass, FOREVER};

use crate::sys::calls;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code.
    Code(i64),
    /// Killed by a CPU fault with this vector.
    Fault(u64),
    /// Killed by someone holding its KILL right.
    Killed,
}

/// A capability for a process.
#[derive(Debug, PartialEq, Eq)]
pub struct Process(u64);

impl Process {
    /// An empty process with [`Quota::DEFAULT`].
    pub fn create(name: &str) -> Result<Process, Error> {
        Process::create_with(name, &Quota::DEFAULT)
    }

    /// An empty process with `quota`, carved out of ours ([`abi::quota`]).
    pub fn create_with(name: &str, quota: &Quota) -> Result<Process, Error> {
        let q = quota.to_bytes();
        let args = ProcessCreateArgs { name_ptr: name.as_ptr() as u64, name_len: name.len() as u64, quota_ptr: q.as_ptr() as u64 };
        calls::PROCESS_CREATE.call(crate::class_token(SyscallClass::ProcessCreate), args).map(|r| Process(r.token))
    }

    pub const fn from_token(token: u64) -> Process {
        Process(token)
    }

    pub fn token(&self) -> u64 {
        self.0
    }

    /// Map zeroed memory into the process.
    pub fn map_anon(&self, va: u64, len: u64, flags: MapFlags) -> Result<(), Error> {
        calls::MAP_ANON.call(self.0, MapAnonArgs { addr: va, len, flags }).map(|_| ())
    }

    /// Copy `data` to `va` in the process: before it has a thread, its
    /// read-only and executable pages too (a loader filling it); once it runs,
    /// only pages it may write itself (W^X), else `BadAddress`.
    ///
    /// # Safety
    /// If the process is this one, nothing at `va..va + data.len()` may be
    /// in use by the program (this is meant for loading other processes).
    pub unsafe fn write(&self, va: u64, data: &[u8]) -> Result<(), Error> {
        // SAFETY: the caller's contract; `data` is only read.
        let args = ProcessWriteArgs { dst: va, src: data.as_ptr() as u64, len: data.len() as u64 };
        // SAFETY: the caller's contract; `data` is only read.
        unsafe { calls::PROCESS_WRITE.call(self.0, args) }.map(|_| ())
    }

    /// Start a thread at `entry` with stack pointer `stack`; returns its id.
    ///
    /// # Safety
    /// `entry` must be code of the process that can run on `stack` with
    /// `args` in `rdi`/`rsi` without harming the rest of the program.
    pub unsafe fn start_thread(&self, entry: u64, stack: u64, args: [u64; 2], priority: u8) -> Result<u64, Error> {
        let args = ThreadCreateArgs { entry, stack, arg0: args[0], arg1: args[1], priority: priority as u64 };
        // SAFETY: the caller's contract.
        unsafe { calls::THREAD_CREATE.call(self.0, args) }.map(|r| r.value)
    }

    /// Give the process a capability; returns its token there.
    pub fn grant(&self, token: u64, rights: impl Into<RightsMask>) -> Result<u64, Error> {
        calls::CAP_GRANT.call(self.0, GrantArgs { cap: token, rights: rights.into() }).map(|r| r.value)
    }

    /// Wait for the end, up to `timeout_ns`.
    pub fn wait_timeout(&self, timeout_ns: u64) -> Result<Exit, Error> {
        let r = calls::PROCESS_WAIT.call(self.0, TimeoutArgs { timeout: timeout_ns })?;
        match r.how {
            exit::EXITED => Ok(Exit::Code(r.code as i64)),
            exit::FAULTED => Ok(Exit::Fault(r.code)),
            exit::KILLED => Ok(Exit::Killed),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Wait for the end.
    pub fn wait(&self) -> Result<Exit, Error> {
        self.wait_timeout(FOREVER)
    }

    /// End the process.
    pub fn kill(&self) -> Result<(), Error> {
        calls::PROCESS_KILL.call(self.0, NoArgs {}).map(|_| ())
    }
}

/// Why a program could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    Elf(elfload::LoadError),
    Kernel(Error),
    /// The stack size is 0, not page-aligned, or larger than [`MAX_STACK`].
    StackSize,
}

impl From<Error> for SpawnError {
    fn from(e: Error) -> Self {
        SpawnError::Kernel(e)
    }
}

/// Largest first-thread stack a spawner may ask for.
pub const MAX_STACK: u64 = 64 * 1024 * 1024;

/// The kernel operations that building a process takes. [`Kernel`] makes
/// the real syscalls; host tests use a fake that records what was built,
/// so the loading order and the clean-up after a failure are tested on
/// Linux.
pub trait Builder {
    /// A process being built.
    type Proc;
    fn create(&mut self, name: &str, quota: &Quota) -> Result<Self::Proc, Error>;
    /// The process's token in the caller.
    fn token(&self, p: &Self::Proc) -> u64;
    fn map_anon(&mut self, p: &Self::Proc, va: u64, len: u64, flags: MapFlags) -> Result<(), Error>;
    fn write(&mut self, p: &Self::Proc, va: u64, data: &[u8]) -> Result<(), Error>;
    /// Give `p` the caller's capability `token` with at most `rights`.
    fn grant(&mut self, p: &Self::Proc, token: u64, rights: RightsMask) -> Result<u64, Error>;
    fn start(&mut self, p: &Self::Proc, entry: u64, rsp: u64, priority: u8) -> Result<(), Error>;
    /// End a process that could not be built: the kernel frees its
    /// memory and capabilities with it.
    fn discard(&mut self, p: Self::Proc);
}

/// The real kernel.
pub struct Kernel;

impl Builder for Kernel {
    type Proc = Process;
    fn create(&mut self, name: &str, quota: &Quota) -> Result<Process, Error> {
        Process::create_with(name, quota)
    }
    fn token(&self, p: &Process) -> u64 {
        p.token()
    }
    fn map_anon(&mut self, p: &Process, va: u64, len: u64, flags: MapFlags) -> Result<(), Error> {
        p.map_anon(va, len, flags)
    }
    fn write(&mut self, p: &Process, va: u64, data: &[u8]) -> Result<(), Error> {
        // SAFETY: `build` writes only into processes it created, which run
        // nothing until `start`.
        unsafe { p.write(va, data) }
    }
    fn grant(&mut self, p: &Process, token: u64, rights: RightsMask) -> Result<u64, Error> {
        p.grant(token, rights)
    }
    fn start(&mut self, p: &Process, entry: u64, rsp: u64, priority: u8) -> Result<(), Error> {
        // SAFETY: `build` passes the ELF entry (checked to be executable)
        // and the start block it wrote at the top of the fresh stack.
        unsafe { p.start_thread(entry, rsp, [0, 0], priority) }.map(|_| ())
    }
    fn discard(&mut self, p: Process) {
        let _ = p.kill();
        let _ = p.wait_timeout(0);
        let _ = crate::caps::drop_cap(p.token());
    }
}

/// What to build: the program, its arguments, the capabilities to hand
/// over as `(id, token in the caller, rights)`, its stack, priority and
/// quota (carved out of ours).
pub struct Plan<'a> {
    pub name: &'a str,
    pub image: &'a [u8],
    pub args: &'a [&'a [u8]],
    pub caps: &'a [(u64, u64, RightsMask)],
    pub stack_size: u64,
    pub priority: u8,
    pub quota: Quota,
}

/// Create the process, load the image, hand over the capabilities and
/// start its first thread. On any failure the half-built process is
/// discarded, so nothing is left behind.
pub fn build<B: Builder>(b: &mut B, plan: &Plan) -> Result<B::Proc, SpawnError> {
    if plan.stack_size == 0 || !plan.stack_size.is_multiple_of(abi::PAGE_SIZE as u64) || plan.stack_size > MAX_STACK {
        return Err(SpawnError::StackSize);
    }
    let elf = elfload::Image::parse(plan.image, abi::USER_BOTTOM..abi::USER_TOP).map_err(SpawnError::Elf)?;
    let p = b.create(plan.name, &plan.quota)?;
    match load(b, &p, &elf, plan) {
        Ok(()) => Ok(p),
        Err(e) => {
            b.discard(p);
            Err(e)
        }
    }
}

fn load<B: Builder>(b: &mut B, p: &B::Proc, elf: &elfload::Image, plan: &Plan) -> Result<(), SpawnError> {
    for seg in elf.segments() {
        let pages = seg.pages();
        b.map_anon(p, pages.start, pages.end - pages.start, MapFlags::for_segment(seg.perms.write, seg.perms.exec))?;
        b.write(p, seg.vaddr, &plan.image[seg.file.clone()])?;
    }
    b.map_anon(p, layout::STACK_TOP - plan.stack_size, plan.stack_size, MapFlags::READ | MapFlags::WRITE)?;
    let mut caps = Vec::with_capacity(plan.caps.len() + 1);
    // Every program can act on itself.
    let own = b.grant(p, b.token(p), (ProcessRights::MAP | ProcessRights::THREAD | ProcessRights::WAIT | ProcessRights::KILL).into())?;
    caps.push(InitCap { id: abi::cap_id::SELF_PROCESS, token: own });
    for &(id, token, rights) in plan.caps {
        caps.push(InitCap { id, token: b.grant(p, token, rights)? });
    }
    let mut block = alloc::vec![0u8; abi::start::block_size(plan.args, &caps)];
    let (rsp, used) =
        abi::start::build(layout::STACK_TOP, plan.args, &caps, &mut block).map_err(|_| SpawnError::Kernel(Error::TooLarge))?;
    if used as u64 > plan.stack_size {
        return Err(SpawnError::StackSize);
    }
    b.write(p, rsp, &block[..used])?;
    b.start(p, elf.entry, rsp, plan.priority)?;
    Ok(())
}

/// Builds and starts a process from an ELF image.
pub struct Spawn<'a> {
    name: &'a str,
    image: &'a [u8],
    args: Vec<&'a [u8]>,
    /// (id, our token, rights to give)
    caps: Vec<(u64, u64, RightsMask)>,
    priority: u8,
    quota: Quota,
    stack_size: u64,
}

impl<'a> Spawn<'a> {
    pub fn new(name: &'a str, image: &'a [u8]) -> Self {
        Spawn { name, image, args: alloc::vec![name.as_bytes()], caps: Vec::new(), priority: 8, quota: Quota::DEFAULT, stack_size: layout::STACK_SIZE }
    }

    /// Add an argument.
    pub fn arg(mut self, a: &'a str) -> Self {
        self.args.push(a.as_bytes());
        self
    }

    /// Give the program our capability `token` as `id`, with at most `rights`.
    pub fn cap(mut self, id: u64, token: u64, rights: impl Into<RightsMask>) -> Self {
        self.caps.push((id, token, rights.into()));
        self
    }

    /// Give the program every capability we were started with, as is.
    pub fn inherit_all(mut self) -> Self {
        for c in crate::caps::all() {
            if c.id != abi::cap_id::SELF_PROCESS {
                self.caps.push((c.id, c.token, RightsMask::ALL));
            }
        }
        self
    }

    pub fn priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }

    /// Give the program `q` instead of [`Quota::DEFAULT`].
    pub fn quota(mut self, q: Quota) -> Self {
        self.quota = q;
        self
    }

    /// The first thread's stack size in bytes (page-aligned).
    pub fn stack_size(mut self, bytes: u64) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Build and start the process ([`build`] with the real kernel).
    pub fn start(self) -> Result<Process, SpawnError> {
        let plan = Plan {
            name: self.name,
            image: self.image,
            args: &self.args,
            caps: &self.caps,
            stack_size: self.stack_size,
            priority: self.priority,
            quota: self.quota,
        };
        build(&mut Kernel, &plan)
    }
}

/// Start a thread in this process running `f(arg)`; returns its id.
pub fn spawn_thread(f: fn(u64), arg: u64, priority: u8) -> Result<u64, Error> {
    const STACK: u64 = 64 * 1024;
    let base = crate::mem::reserve(STACK);
    crate::mem::map_anon(base, STACK, abi::MapFlags::READ | abi::MapFlags::WRITE)?;
    // The entry is jumped to, not called: start 8 bytes below a 16-byte
    // boundary as if a return address had been pushed.
    let top = base + STACK - 8;
    let me = Process::from_token(crate::caps::self_process());
    // SAFETY: `thread_entry` is this program's code and the stack is fresh
    // memory no one else uses.
    unsafe { me.start_thread(thread_entry as *const () as u64, top, [f as usize as u64, arg], priority) }
}

extern "C" fn thread_entry(f: u64, arg: u64) -> ! {
    // SAFETY: `f` is the `fn(u64)` passed to `spawn_thread`.
    let f: fn(u64) = unsafe { core::mem::transmute(f as usize) };
    f(arg);
    crate::time::thread_exit()
}
