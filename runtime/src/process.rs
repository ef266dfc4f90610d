//! Processes and threads: creating them, loading programs, waiting.

use alloc::vec::Vec;

use abi::quota::Quota;
use abi::start::InitCap;
use abi::{exit, layout, map, Error, Syscall, SyscallClass, FOREVER};

use crate::sys::call;

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
        // SAFETY: ProcessCreate only reads the name and the quota.
        unsafe {
            call(
                Syscall::ProcessCreate,
                crate::class_token(SyscallClass::ProcessCreate),
                [name.as_ptr() as u64, name.len() as u64, q.as_ptr() as u64, 0, 0],
            )
        }
        .map(|r| Process(r[0]))
    }

    pub const fn from_token(token: u64) -> Process {
        Process(token)
    }

    pub fn token(&self) -> u64 {
        self.0
    }

    /// Map zeroed memory into the process.
    pub fn map_anon(&self, va: u64, len: u64, flags: u64) -> Result<(), Error> {
        // SAFETY: only adds memory (a range in use gives AlreadyExists).
        unsafe { call(Syscall::MapAnon, self.0, [va, len, flags, 0, 0]) }.map(|_| ())
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
        unsafe { call(Syscall::ProcessWrite, self.0, [va, data.as_ptr() as u64, data.len() as u64, 0, 0]) }.map(|_| ())
    }

    /// Start a thread at `entry` with stack pointer `stack`; returns its id.
    ///
    /// # Safety
    /// `entry` must be code of the process that can run on `stack` with
    /// `args` in `rdi`/`rsi` without harming the rest of the program.
    pub unsafe fn start_thread(&self, entry: u64, stack: u64, args: [u64; 2], priority: u8) -> Result<u64, Error> {
        // SAFETY: the caller's contract.
        unsafe { call(Syscall::ThreadCreate, self.0, [entry, stack, args[0], args[1], priority as u64]) }.map(|r| r[0])
    }

    /// Give the process a capability; returns its token there.
    pub fn grant(&self, token: u64, rights: u32) -> Result<u64, Error> {
        // SAFETY: capability syscalls touch no memory.
        unsafe { call(Syscall::CapGrant, self.0, [token, rights as u64, 0, 0, 0]) }.map(|r| r[0])
    }

    /// Wait for the end, up to `timeout_ns`.
    pub fn wait_timeout(&self, timeout_ns: u64) -> Result<Exit, Error> {
        // SAFETY: ProcessWait touches no memory.
        let r = unsafe { call(Syscall::ProcessWait, self.0, [timeout_ns, 0, 0, 0, 0]) }?;
        match r[0] {
            exit::EXITED => Ok(Exit::Code(r[1] as i64)),
            exit::FAULTED => Ok(Exit::Fault(r[1])),
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
        // SAFETY: ProcessKill touches no memory of ours (ending this process ends the program).
        unsafe { call(Syscall::ProcessKill, self.0, [0; 5]) }.map(|_| ())
    }
}

/// Why a program could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    Elf(elfload::LoadError),
    Kernel(Error),
}

impl From<Error> for SpawnError {
    fn from(e: Error) -> Self {
        SpawnError::Kernel(e)
    }
}

/// Builds and starts a process from an ELF image.
pub struct Spawn<'a> {
    name: &'a str,
    image: &'a [u8],
    args: Vec<&'a [u8]>,
    /// (id, our token, rights to give)
    caps: Vec<(u64, u64, u32)>,
    priority: u8,
    quota: Quota,
}

impl<'a> Spawn<'a> {
    pub fn new(name: &'a str, image: &'a [u8]) -> Self {
        Spawn { name, image, args: alloc::vec![name.as_bytes()], caps: Vec::new(), priority: 8, quota: Quota::DEFAULT }
    }

    /// Add an argument.
    pub fn arg(mut self, a: &'a str) -> Self {
        self.args.push(a.as_bytes());
        self
    }

    /// Give the program our capability `token` as `id`, with at most `rights`.
    pub fn cap(mut self, id: u64, token: u64, rights: u32) -> Self {
        self.caps.push((id, token, rights));
        self
    }

    /// Give the program every capability we were started with, as is.
    pub fn inherit_all(mut self) -> Self {
        for c in crate::caps::all() {
            if c.id != abi::cap_id::SELF_PROCESS {
                self.caps.push((c.id, c.token, abi::rights::ALL));
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

    /// Create the process, load the image, hand over the capabilities and
    /// start its first thread.
    pub fn start(self) -> Result<Process, SpawnError> {
        let elf = elfload::Image::parse(self.image, abi::USER_BOTTOM..abi::USER_TOP).map_err(SpawnError::Elf)?;
        let p = Process::create_with(self.name, &self.quota)?;
        match self.load(&p, &elf) {
            Ok(()) => Ok(p),
            Err(e) => {
                let _ = p.kill();
                Err(e)
            }
        }
    }

    fn load(&self, p: &Process, elf: &elfload::Image) -> Result<(), SpawnError> {
        for seg in elf.segments() {
            let pages = seg.pages();
            p.map_anon(pages.start, pages.end - pages.start, map::for_segment(seg.perms.write, seg.perms.exec))?;
            // SAFETY: `p` is a new process that runs nothing yet; the
            // segment lies in user space (checked by `parse`).
            unsafe { p.write(seg.vaddr, &self.image[seg.file.clone()]) }?;
        }
        p.map_anon(layout::STACK_TOP - layout::STACK_SIZE, layout::STACK_SIZE, map::READ | map::WRITE)?;
        let mut caps = Vec::with_capacity(self.caps.len() + 1);
        // Every program can act on itself.
        let own = p.grant(p.token(), abi::rights::MAP | abi::rights::THREAD | abi::rights::WAIT | abi::rights::KILL)?;
        caps.push(InitCap { id: abi::cap_id::SELF_PROCESS, token: own });
        for &(id, token, rights) in &self.caps {
            caps.push(InitCap { id, token: p.grant(token, rights)? });
        }
        let mut block = alloc::vec![0u8; abi::start::block_size(&self.args, &caps)];
        let (rsp, used) = abi::start::build(layout::STACK_TOP, &self.args, &caps, &mut block)
            .map_err(|_| SpawnError::Kernel(Error::TooLarge))?;
        // SAFETY: the start block goes on the stack mapped just above, in a
        // process that runs nothing yet; its first thread starts at the
        // ELF entry (checked to be executable) on that stack.
        unsafe {
            p.write(rsp, &block[..used])?;
            p.start_thread(elf.entry, rsp, [0, 0], self.priority)?;
        }
        Ok(())
    }
}

/// Start a thread in this process running `f(arg)`; returns its id.
pub fn spawn_thread(f: fn(u64), arg: u64, priority: u8) -> Result<u64, Error> {
    const STACK: u64 = 64 * 1024;
    let base = crate::mem::reserve(STACK);
    crate::mem::map_anon(base, STACK, map::READ | map::WRITE)?;
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
