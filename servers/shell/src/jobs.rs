//! Programs started from the shell: `run`, `ps`, `kill`.
//!
//! The shell loads the program's ELF through VFS and starts it with the
//! runtime's loader, giving it only what a command-line program needs:
//! console output, its own threads and sleeps, channels and name lookups
//! (so it can talk to the servers). Process ids are the kernel's process
//! numbers.

use alloc::string::String;
use alloc::vec::Vec;

use abi::{cap_id, rights, SyscallClass};
use runtime::process::{Exit, Process, Spawn};

/// One program started from the shell, not yet reported as ended.
pub struct Job {
    pub pid: u64,
    pub name: String,
    pub process: Process,
    pub background: bool,
}

/// Priority of started programs: the shell's own, so neither starves the other.
pub const PRIORITY: u8 = 8;

/// The classes a started program gets.
const CLASSES: &[SyscallClass] =
    &[SyscallClass::DebugPrint, SyscallClass::Thread, SyscallClass::ChannelCreate, SyscallClass::Names];

/// Start `image` as `name` with `args`.
pub fn start(name: &str, image: &[u8], args: &[&str], background: bool) -> Result<Job, String> {
    let mut spawn = Spawn::new(name, image).priority(PRIORITY);
    for a in args {
        spawn = spawn.arg(a);
    }
    for &c in CLASSES {
        spawn = spawn.cap(cap_id::class(c), runtime::class_token(c), rights::USE);
    }
    let process = spawn.start().map_err(|e| match e {
        runtime::process::SpawnError::Elf(e) => alloc::format!("not a program ({e:?})"),
        runtime::process::SpawnError::Kernel(e) => alloc::format!("cannot start: {e:?}"),
    })?;
    // The kernel's process number is the low half of the capability's object id.
    let pid = runtime::caps::inspect(process.token()).map(|(_, _, id, _)| id & 0xffff_ffff).unwrap_or(0);
    Ok(Job { pid, name: String::from(name), process, background })
}

/// How an ended program is reported.
pub fn describe(exit: &Result<Exit, abi::Error>) -> String {
    match exit {
        Ok(Exit::Code(c)) => alloc::format!("exited with code {c}"),
        Ok(Exit::Fault(v)) => alloc::format!("killed by a CPU fault (vector {v})"),
        Ok(Exit::Killed) => "killed".into(),
        Err(e) => alloc::format!("lost ({e:?})"),
    }
}

/// The programs still known, by pid.
pub struct Jobs(pub Vec<Job>);

impl Jobs {
    /// Remove and return the jobs that have ended, with how.
    pub fn reap(&mut self) -> Vec<(Job, Result<Exit, abi::Error>)> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            match self.0[i].process.wait_timeout(0) {
                Err(abi::Error::Timeout) => i += 1,
                r => done.push((self.0.remove(i), r)),
            }
        }
        done
    }
}
