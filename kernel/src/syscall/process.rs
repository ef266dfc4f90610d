//! Process and thread syscalls, and loading a program into a new process.

use abi::{CapKind, Error};

use crate::cap::{Cap, SysError};
use crate::kernel::Kernel;
use crate::mem::user;
use crate::proc::{ProcState, State, Tid};
use crate::syscall::Outcome;

impl Kernel {
    /// `ProcessCreate`: an empty process with the quota at `quota_ptr`
    /// (carved out of `p`'s) and a token for it with every right.
    pub(super) fn process_create(&mut self, p: usize, name_ptr: u64, name_len: u64, quota_ptr: u64) -> Result<Outcome, Error> {
        let mut name = [0u8; abi::limits::PROCESS_NAME_LEN];
        if name_len as usize > name.len() {
            return Err(Error::InvalidArgument);
        }
        let name = &mut name[..name_len as usize];
        user::read(&self.phys, &self.space(p), name_ptr, name).map_err(|_| Error::BadAddress)?;
        let mut quota = [0u8; 40];
        user::read(&self.phys, &self.space(p), quota_ptr, &mut quota).map_err(|_| Error::BadAddress)?;
        let (child, gen) = self.create_child(p, name, &abi::quota::Quota::from_bytes(&quota))?;
        match self.mint(p, Cap::object(CapKind::Process, child as u32, gen, abi::RightsMask::ALL)) {
            Ok(token) => Ok(Outcome::Done([token, child as u64, 0, 0])),
            Err(e) => {
                self.end_process(child, abi::exit::KILLED, 0);
                Err(e)
            }
        }
    }

    /// `ThreadCreate` by thread `t` in process `target`.
    pub(super) fn thread_create(&mut self, t: Tid, target: usize, entry: u64, stack: u64, args: [u64; 2], prio: u64) -> Result<Outcome, Error> {
        if user::check_range(entry, 1).is_err() || user::check_range(stack, 0).is_err() {
            return Err(Error::BadAddress);
        }
        // No thread may start above its creator's own priority.
        if prio > self.threads[t as usize].base_prio as u64 {
            return Err(Error::InvalidArgument);
        }
        let tid = self.create_thread(target, entry, stack, args, prio as u8)?;
        Ok(Outcome::Done([tid as u64, 0, 0, 0]))
    }

    /// `ProcessWait`: the end of a process, or wait for it. `NotFound` for
    /// a process that ended and whose slot a newer process took (a
    /// supervisor that looks late still learns of the end).
    pub(super) fn process_wait(&mut self, p: usize, token: u64, timeout: u64) -> Result<Outcome, SysError> {
        let cap = self.lookup(p, token, Some(CapKind::Process), abi::ProcessRights::WAIT)?;
        let target = cap.object as usize;
        if self.procs[target].gen != cap.gen {
            // Ended, and the slot was reused before the holder looked. The
            // token is the caller's own (the lookup checked it), so this is
            // no guess to punish: say the end happened, its status is gone.
            return Err(SysError::from(Error::NotFound));
        }
        match self.procs[target].state {
            ProcState::Dead => {
                let (how, code) = self.procs[target].exit;
                Ok(Outcome::Done([how, code, 0, 0]))
            }
            ProcState::Alive if target == p => Err(Error::InvalidArgument.into()),
            ProcState::Alive if timeout == 0 => Err(Error::Timeout.into()),
            ProcState::Alive => {
                let t = self.current;
                self.procs[target].waiters.push_back(&mut self.threads, t);
                self.threads[t as usize].state = State::Waiting;
                self.threads[t as usize].wait_obj = target as u16;
                if let Some(d) = self.deadline(timeout) {
                    self.timer_arm(t, d);
                }
                Ok(Outcome::Blocked)
            }
            ProcState::Free => Err(Error::NotFound.into()),
        }
    }

    /// Load an ELF image into process `p` (the kernel does this for
    /// `system`; everyone else is loaded by a user-space spawner that uses
    /// the same checks). Returns the entry point.
    pub fn load_elf(&mut self, p: usize, image: &[u8]) -> Result<u64, Error> {
        let elf = elfload::Image::parse(image, abi::USER_BOTTOM..abi::USER_TOP).map_err(|e| {
            crate::error!("cannot load program: {e:?}");
            Error::InvalidArgument
        })?;
        for seg in elf.segments() {
            let pages = seg.pages();
            let flags = abi::MapFlags::for_segment(seg.perms.write, seg.perms.exec);
            self.map_anon(p, pages.start, pages.end - pages.start, flags)?;
            user::write(&self.phys, &self.space(p), seg.vaddr, &image[seg.file.clone()], user::Access::Load)
                .map_err(|_| Error::BadAddress)?;
        }
        Ok(elf.entry)
    }

    /// Map a stack at the conventional place in `p` and write the start
    /// block (arguments and capabilities) at its top; returns the initial
    /// stack pointer.
    pub fn setup_stack(&mut self, p: usize, args: &[&[u8]], caps: &[abi::start::InitCap]) -> Result<u64, Error> {
        use abi::layout::{STACK_SIZE, STACK_TOP};
        self.map_anon(p, STACK_TOP - STACK_SIZE, STACK_SIZE, abi::MapFlags::READ | abi::MapFlags::WRITE)?;
        let mut block = [0u8; 2048];
        let (rsp, used) = abi::start::build(STACK_TOP, args, caps, &mut block).map_err(|_| Error::TooLarge)?;
        user::write(&self.phys, &self.space(p), rsp, &block[..used], user::Access::Write).map_err(|_| Error::BadAddress)?;
        Ok(rsp)
    }
}
