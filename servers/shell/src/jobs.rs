//! Programs started from the shell: `run`, `ps`, `kill`.
//!
//! `run` asks `SYSTEM::PROCESS` to start the program (it loads it through
//! VFS), handing on only what a command-line program needs: console output,
//! its own threads and sleeps, channels and name look-ups (so it can talk
//! to the servers). The reply's process capability (WAIT, KILL) is what
//! `ps` polls and `kill` uses. Process ids are the kernel's process numbers.

use alloc::string::String;
use alloc::vec::Vec;

use abi::{cap_id, SyscallClass};
use runtime::process::{Exit, Process};
use runtime::rpc::CallError;
use system::client::{Cap, ProcessClient, SpawnArgs, SpawnError};
use system::protocol::{Origin, ProcessError, ProcessInfo, RunState};

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

/// Why `SYSTEM::PROCESS` did not start it, as the shell says it.
fn spawn_error(e: SpawnError) -> String {
    match e {
        SpawnError::Call(CallError::Server(e)) => match e {
            ProcessError::BadPath => "bad path (programs are boot:/<file>)".into(),
            ProcessError::NotFound => "not found".into(),
            ProcessError::NotElf | ProcessError::BadSegment => "not a program".into(),
            ProcessError::TooManyArgs => "too many arguments".into(),
            other => alloc::format!("SYSTEM::PROCESS refused: {other:?}"),
        },
        SpawnError::Call(CallError::Ipc(abi::Error::PeerDied | abi::Error::Closed)) => "SYSTEM::PROCESS died".into(),
        SpawnError::TooLarge => "the path and arguments are too long".into(),
        other => alloc::format!("cannot start: {other:?}"),
    }
}

/// Start `path` with `args` (the program's name first).
pub fn start(path: &str, args: &[&str], background: bool) -> Result<Job, String> {
    let server = ProcessClient::find().map_err(|_| String::from("SYSTEM::PROCESS not running"))?;
    let caps: Vec<Cap> =
        CLASSES.iter().map(|&c| Cap { id: cap_id::class(c), token: runtime::class_token(c), rights: abi::ClassRights::USE.into() }).collect();
    let spawned = server.spawn(&SpawnArgs { path, args, caps: &caps, stack_size: 0, priority: PRIORITY, restart: false });
    // The connection is made again next time (SYSTEM::PROCESS may restart).
    let _ = runtime::caps::drop_cap(server.client().channel().token());
    let s = spawned.map_err(spawn_error)?;
    Ok(Job { pid: s.pid, name: String::from(args.first().copied().unwrap_or("program")), process: s.process, background })
}

/// Every program `system` watches; `None` (said as `cmd: why`) if
/// `SYSTEM::PROCESS` cannot answer.
pub fn list(cmd: &str) -> Option<Vec<ProcessInfo>> {
    let listed = ProcessClient::find().map_err(|_| String::from("SYSTEM::PROCESS not running")).and_then(|server| {
        let l = server.list().map_err(|e| alloc::format!("SYSTEM::PROCESS refused: {e:?}"));
        let _ = runtime::caps::drop_cap(server.client().channel().token());
        l
    });
    match listed {
        Ok(l) => Some(l.processes.into_iter().collect()),
        Err(why) => {
            runtime::println!("{cmd}: {why}");
            None
        }
    }
}

/// End program `pid` with the admin key `boot.conf` gives the shell.
pub fn kill(pid: u64) -> Result<(), String> {
    let server = ProcessClient::find().map_err(|_| String::from("SYSTEM::PROCESS not running"))?;
    let r = server.kill(pid);
    let _ = runtime::caps::drop_cap(server.client().channel().token());
    r.map_err(|e| match e {
        CallError::Server(ProcessError::NoSuchProcess) => "no such program (see ps)".into(),
        CallError::Server(ProcessError::NotAllowed) => "not allowed (the shell has no admin key)".into(),
        other => alloc::format!("SYSTEM::PROCESS refused: {other:?}"),
    })
}

/// A listed program's state, as `ps` prints it.
pub fn state(p: &ProcessInfo) -> &'static str {
    match p.state {
        RunState::Running => "running",
        RunState::Restarting => "restarting",
        RunState::Held => "held",
    }
}

/// Who asked for a listed program.
pub fn origin(p: &ProcessInfo) -> &'static str {
    match p.origin {
        Origin::Boot => "boot",
        Origin::Request => "request",
    }
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
