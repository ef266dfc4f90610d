//! The logic of `SYSTEM::PROCESS` and of supervision, over traits so that
//! it runs on the host under `cargo test` as it does on the machine.
//!
//! [`Service`] is the serve loop's handler of [`Request`]s; [`Service::poll`] notices
//! children that ended, logs them, and restarts the restartable ones with
//! back-off ([`crate::policy`]). The binary calls both from its loop.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use abi::quota::Quota;
use runtime::process::{Builder, Exit, Plan};

use crate::policy::{Decision, History, Policy};
use runtime::rpc::{Call, Done, Handler};

use crate::protocol::{
    KillRequest, ListRequest, Origin, ProcessError, ProcessInfo, ProcessList, Release, Request, RunState, SpawnRequest, Spawned, Stage, Status,
    StatusRequest, LIST_NAME, MAX_ARGS, MAX_CAPS, MAX_PATH, MAX_STAGED,
};

/// Where programs come from.
pub trait Files {
    /// The bytes of `boot:/<file>`: through VFS, or (`bootstrap`, for the
    /// servers VFS itself needs) straight from the boot module.
    fn read(&mut self, path: &str, bootstrap: bool) -> Result<Vec<u8>, ProcessError>;
}

/// Kernel operations beyond building a process.
pub trait Host: Builder {
    /// The rights of a capability we hold, or `None` if it is not one.
    fn rights(&self, token: u64) -> Option<u32>;
    /// The process id behind a process token.
    fn pid(&self, p: &Self::Proc) -> u64;
    /// Forget a capability.
    fn drop_cap(&mut self, token: u64);
    /// Has it ended? (Never blocks.) A process whose slot the kernel gave
    /// to a new one before we looked has ended too: [`End::Unknown`].
    fn ended(&mut self, p: &Self::Proc) -> Option<End>;
    /// End it (the kernel's ProcessKill); false if the kernel refused.
    fn kill(&mut self, p: &Self::Proc) -> bool;
    /// The kernel object a capability we hold names (kind and object id
    /// as `CapInspect` gives them), or `None` if it is not one.
    fn object(&self, token: u64) -> Option<(u64, u64)>;
    /// Forget a process that ended.
    fn release(&mut self, p: Self::Proc);
    fn now_ms(&self) -> u64;
    /// The priority of the client being served.
    fn caller_priority(&self) -> u8;
    fn log(&mut self, line: &str);
}

/// How a child ended, as far as `system` can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Exit(Exit),
    /// It ended and the kernel reused its process slot before `system`
    /// looked: the exit status is gone, the end is not.
    Unknown,
}

/// How to start a program (kept for restarts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub path: String,
    pub args: Vec<String>,
    /// `(id, our token, rights for the child)`.
    pub caps: Vec<(u64, u64, u32)>,
    pub stack_size: u64,
    pub priority: u8,
    pub bootstrap: bool,
}

impl Spec {
    pub fn name(&self) -> &str {
        self.args.first().map_or("?", |s| s.as_str())
    }
}

enum State<P> {
    Running(P, u64),
    RestartAt(u64),
    Held,
}

struct Child<P> {
    spec: Spec,
    state: State<P>,
    /// `None`: not restartable.
    history: Option<History>,
    origin: Origin,
}

/// A staged capability: the client's token names our copy.
struct Staged {
    ticket: u64,
    token: u64,
    rights: u32,
}

/// The quota every program `system` starts gets, carved out of
/// `system`'s own: enough for a server of a few MiB with a few threads and
/// channels; it cannot start processes of its own (it asks
/// `SYSTEM::PROCESS`).
pub const CHILD_QUOTA: Quota = Quota { threads: 8, pages: 2048, channels: 16, caps: abi::limits::CAPS_PER_PROCESS as u64, processes: 0 };

/// Most children watched at once.
pub const MAX_CHILDREN: usize = 48;

/// The process server's state.
pub struct Service<H: Host, F: Files> {
    pub host: H,
    pub files: F,
    policy: Policy,
    staged: Vec<Staged>,
    children: Vec<Child<H::Proc>>,
    last_poll: u64,
    /// The admin key's kernel object ([`crate::protocol::ADMIN_CAP`]).
    admin: Option<(u64, u64)>,
}

/// How often [`Service::poll`] should run (the binary calls it when no
/// request came for this long; requests call it when it is due).
pub const POLL_MS: u64 = 5;

impl<H: Host, F: Files> Handler for Service<H, F> {
    type Request = Request;

    fn handle(&mut self, req: Request, mut call: Call<'_>) -> Done {
        // Requests arriving back to back must not keep the supervisor
        // from looking at the children.
        if self.host.now_ms() >= self.last_poll + POLL_MS {
            self.poll();
        }
        let cap = call.take_cap();
        match req {
            Request::Stage(s) => {
                let r = self.stage(&s, cap);
                if r.is_err() {
                    // Not ours to keep.
                    cap.inspect(|&c| self.host.drop_cap(c));
                }
                call.reply::<Stage>(r)
            }
            Request::Spawn(s) => {
                cap.inspect(|&c| self.host.drop_cap(c));
                match self.spawn(&s) {
                    Ok((pid, token)) => call.ok_cap(&Spawned { pid }, token, abi::ProcessRights::WAIT | abi::ProcessRights::KILL),
                    Err(e) => call.err(e),
                }
            }
            Request::Status(s) => {
                cap.inspect(|&c| self.host.drop_cap(c));
                call.reply::<StatusRequest>(self.status(&s.name))
            }
            Request::List(ListRequest {}) => {
                cap.inspect(|&c| self.host.drop_cap(c));
                // Up to date: no child that ended is listed as running.
                self.notice_ends(self.host.now_ms());
                call.reply::<ListRequest>(Ok(self.list()))
            }
            Request::Kill(k) => {
                let r = self.kill(&k, cap);
                cap.inspect(|&c| self.host.drop_cap(c));
                call.reply::<KillRequest>(r)
            }
            Request::Release(r) => {
                cap.inspect(|&c| self.host.drop_cap(c));
                for t in r.tickets {
                    if let Some(s) = self.take_staged(t) {
                        self.host.drop_cap(s.token);
                    }
                }
                call.reply::<Release>(Ok(()))
            }
        }
    }
}

impl<H: Host, F: Files> Service<H, F> {
    pub fn new(host: H, files: F, policy: Policy) -> Self {
        Service { host, files, policy, staged: Vec::new(), children: Vec::new(), last_poll: 0, admin: None }
    }

    /// Make `token` (a capability we hold) the admin key: a kill must
    /// carry a capability for the same object.
    pub fn set_admin(&mut self, token: u64) {
        self.admin = self.host.object(token);
    }

    /// Every child, as [`Request::List`] answers.
    pub fn list(&self) -> ProcessList {
        let mut processes = heapless::Vec::new();
        for c in &self.children {
            let (pid, state) = match c.state {
                State::Running(_, pid) => (pid, RunState::Running),
                State::RestartAt(_) => (0, RunState::Restarting),
                State::Held => (0, RunState::Held),
            };
            let name = c.spec.name();
            let name = &name[..floor_char_boundary(name, LIST_NAME)];
            let info = ProcessInfo {
                pid,
                name: name.try_into().unwrap_or_default(),
                state,
                restarts: c.history.as_ref().map_or(0, |h| h.restarts),
                supervised: c.history.is_some(),
                origin: c.origin,
            };
            // Never more children than room (MAX_CHILDREN).
            let _ = processes.push(info);
        }
        ProcessList { processes }
    }

    /// End child `pid` if the request carries the admin key; the end is
    /// handled (logged, restarted) at once, as any other.
    fn kill(&mut self, req: &KillRequest, key: Option<u64>) -> Result<(), ProcessError> {
        let presented = key.and_then(|k| self.host.object(k));
        if self.admin.is_none() || presented != self.admin {
            return Err(ProcessError::NotAllowed);
        }
        // A child that ended may share its pid (slot) with a newer one:
        // forget the ended ones first, so the pid names the live process.
        self.notice_ends(self.host.now_ms());
        let c = self.children.iter().find(|c| matches!(c.state, State::Running(_, pid) if pid == req.pid)).ok_or(ProcessError::NoSuchProcess)?;
        let State::Running(p, _) = &c.state else { return Err(ProcessError::NoSuchProcess) };
        if !self.host.kill(p) {
            return Err(ProcessError::Internal);
        }
        self.poll();
        Ok(())
    }

    fn stage(&mut self, req: &Stage, cap: Option<u64>) -> Result<(), ProcessError> {
        let cap = cap.ok_or(ProcessError::NotStaged)?;
        if req.ticket == 0 {
            return Err(ProcessError::NotStaged);
        }
        let held = self.host.rights(cap).ok_or(ProcessError::NotStaged)?;
        let need = req.rights | abi::RightsMask::DELEGATE.bits();
        if held & need != need {
            return Err(ProcessError::RightsAboveCaller);
        }
        if let Some(old) = self.take_staged(req.ticket) {
            self.host.drop_cap(old.token);
        }
        if self.staged.len() >= MAX_STAGED {
            return Err(ProcessError::LimitReached);
        }
        self.staged.push(Staged { ticket: req.ticket, token: cap, rights: req.rights });
        Ok(())
    }

    fn take_staged(&mut self, ticket: u64) -> Option<Staged> {
        let i = self.staged.iter().position(|s| s.ticket == ticket)?;
        Some(self.staged.swap_remove(i))
    }

    /// Check and start a requested program; its pid and our token for it.
    fn spawn(&mut self, req: &SpawnRequest) -> Result<(u64, u64), ProcessError> {
        // Every ticket named is used up, whatever happens next.
        let mut caps = Vec::new();
        let mut missing = false;
        for d in &req.caps {
            match self.take_staged(d.ticket) {
                Some(s) => caps.push((d.id, s.token, s.rights)),
                None => missing = true,
            }
        }
        let caller = self.host.caller_priority();
        let args = req.arg_list();
        let check = || {
            check_path(&req.path)?;
            let args = args.as_ref().filter(|a| !a.is_empty() && a.len() <= MAX_ARGS).ok_or(ProcessError::TooManyArgs)?;
            if req.caps.len() > MAX_CAPS {
                return Err(ProcessError::TooManyCaps);
            }
            if missing {
                return Err(ProcessError::NotStaged);
            }
            if req.priority == 0 || req.priority > caller {
                return Err(ProcessError::PriorityAboveCaller);
            }
            Ok(args)
        };
        let args = match check() {
            Ok(a) => a,
            Err(e) => {
                caps.iter().for_each(|c| self.host.drop_cap(c.1));
                return Err(e);
            }
        };
        if let Err(e) = self.room(req.restart, args[0]) {
            caps.iter().for_each(|c| self.host.drop_cap(c.1));
            return Err(e);
        }
        let spec = Spec {
            path: req.path.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            caps,
            stack_size: if req.stack_size == 0 { abi::layout::STACK_SIZE } else { req.stack_size },
            priority: req.priority,
            bootstrap: false,
        };
        self.start_as(spec, req.restart, Origin::Request)
    }

    /// Is there room for one more child (and, for a supervised one, is its
    /// name free)? A held or stopped program of the same name is replaced.
    fn room(&mut self, restart: bool, name: &str) -> Result<(), ProcessError> {
        if restart {
            if let Some(i) = self.children.iter().position(|c| c.history.is_some() && c.spec.name() == name) {
                if matches!(self.children[i].state, State::Running(..)) {
                    return Err(ProcessError::LimitReached);
                }
                let old = self.children.swap_remove(i);
                old.spec.caps.iter().for_each(|c| self.host.drop_cap(c.1));
            }
        }
        if self.children.len() >= MAX_CHILDREN {
            return Err(ProcessError::LimitReached);
        }
        Ok(())
    }

    /// Start a program and watch it; returns its pid and a token for it
    /// (valid until it ends). The spec's tokens are released on failure,
    /// and after the start unless it is restartable.
    pub fn start(&mut self, spec: Spec, restart: bool) -> Result<(u64, u64), ProcessError> {
        self.start_as(spec, restart, Origin::Boot)
    }

    fn start_as(&mut self, spec: Spec, restart: bool, origin: Origin) -> Result<(u64, u64), ProcessError> {
        match self.launch(&spec) {
            Ok(p) => {
                let pid = self.host.pid(&p);
                let token = self.host.token(&p);
                if !restart {
                    spec.caps.iter().for_each(|c| self.host.drop_cap(c.1));
                }
                let history = restart.then(|| History::new(self.policy));
                self.children.push(Child { spec, state: State::Running(p, pid), history, origin });
                Ok((pid, token))
            }
            Err(e) => {
                spec.caps.iter().for_each(|c| self.host.drop_cap(c.1));
                Err(e)
            }
        }
    }

    fn launch(&mut self, spec: &Spec) -> Result<H::Proc, ProcessError> {
        check_path(&spec.path)?;
        let image = self.files.read(&spec.path, spec.bootstrap)?;
        let args: Vec<&[u8]> = spec.args.iter().map(|a| a.as_bytes()).collect();
        let name = spec.name();
        let name = &name[..floor_char_boundary(name, abi::limits::PROCESS_NAME_LEN)];
        // The wire's rights bits, as the masks they are for the kernel.
        let caps: Vec<(u64, u64, abi::RightsMask)> = spec.caps.iter().map(|&(id, t, r)| (id, t, abi::RightsMask(r))).collect();
        let plan = Plan {
            name,
            image: &image,
            args: &args,
            caps: &caps,
            stack_size: spec.stack_size,
            priority: spec.priority,
            quota: CHILD_QUOTA,
        };
        Ok(runtime::process::build(&mut self.host, &plan)?)
    }

    /// What a supervised program is doing.
    pub fn status(&self, name: &str) -> Result<Status, ProcessError> {
        let c = self.children.iter().find(|c| c.spec.name() == name).ok_or(ProcessError::NotSupervised)?;
        let restarts = c.history.as_ref().map_or(0, |h| h.restarts);
        Ok(match (&c.state, &c.history) {
            (State::Running(_, pid), _) => Status::Running { pid: *pid, restarts },
            (State::RestartAt(_), _) => Status::Restarting { restarts },
            (State::Held, _) => Status::Held { restarts },
        })
    }

    /// Notice ended children, log them, restart the restartable ones when
    /// their back-off is over. Returns when to call again at the latest
    /// (uptime in ms), if a restart is pending.
    pub fn poll(&mut self) -> Option<u64> {
        let now = self.host.now_ms();
        self.last_poll = now;
        let mut next = None;
        // Every end first, restarts after: a restart takes a process slot,
        // which may be the slot of a child further down that ended.
        self.notice_ends(now);
        let mut i = 0;
        while i < self.children.len() {
            let c = &mut self.children[i];
            match &c.state {
                State::Running(..) => {}
                State::RestartAt(t) if *t <= now => {
                    let spec = c.spec.clone();
                    match self.launch(&spec) {
                        Ok(p) => {
                            let pid = self.host.pid(&p);
                            let c = &mut self.children[i];
                            let line = format!("system: restarted {} as pid {pid} (restart {})", spec.name(), c.history.as_ref().map_or(0, |h| h.restarts));
                            c.state = State::Running(p, pid);
                            self.host.log(&line);
                        }
                        Err(e) => {
                            let line = format!("system: cannot restart {}: {e:?}", spec.name());
                            self.host.log(&line);
                            let c = &mut self.children[i];
                            match c.history.as_mut().map(|h| h.ended(now)) {
                                Some(Decision::RestartAt(t)) => c.state = State::RestartAt(t),
                                _ => c.state = State::Held,
                            }
                        }
                    }
                }
                State::RestartAt(t) => next = Some(next.map_or(*t, |n: u64| n.min(*t))),
                State::Held => {}
            }
            i += 1;
        }
        next
    }

    /// Log every child that ended; forget the ordinary ones, schedule or
    /// hold the supervised ones.
    fn notice_ends(&mut self, now: u64) {
        let mut i = 0;
        while i < self.children.len() {
            let c = &mut self.children[i];
            if let State::Running(p, pid) = &c.state {
                if let Some(exit) = self.host.ended(p) {
                    let pid = *pid;
                    let State::Running(p, _) = core::mem::replace(&mut c.state, State::Held) else { unreachable!() };
                    self.host.release(p);
                    let line = format!("system: {} (pid {pid}) ended: {}", c.spec.name(), describe(exit));
                    self.host.log(&line);
                    match c.history.as_mut().map(|h| h.ended(now)) {
                        None => {
                            // Not supervised: forget it.
                            self.children.swap_remove(i);
                            continue;
                        }
                        Some(Decision::RestartAt(t)) => c.state = State::RestartAt(t),
                        Some(Decision::Hold) => {
                            let line = format!("system: {} held: ended {} times in a row, not restarted", c.spec.name(), self.policy.max_restarts + 1);
                            self.host.log(&line);
                        }
                    }
                }
            }
            i += 1;
        }
    }

    /// Children being watched (running or waiting to restart).
    pub fn live(&self) -> usize {
        self.children.iter().filter(|c| !matches!(c.state, State::Held)).count()
    }

    /// Capabilities staged and not used yet.
    pub fn staged(&self) -> usize {
        self.staged.len()
    }
}

/// A path by VFS's rules (`<prefix>:<rest>`, canonical: no empty, `.`
/// or `..` parts), naming a file (not a file system's root).
pub fn check_path(path: &str) -> Result<(), ProcessError> {
    match vfs::path::split(path) {
        Ok((_, rest)) if !rest.is_empty() && path.len() <= MAX_PATH => Ok(()),
        _ => Err(ProcessError::BadPath),
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    (0..=max.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// An exit as the log shows it.
pub fn describe(e: End) -> String {
    match e {
        End::Exit(Exit::Code(c)) => format!("exit code {c}"),
        End::Exit(Exit::Fault(v)) => format!("fault (vector {v})"),
        End::Exit(Exit::Killed) => "killed".to_string(),
        End::Unknown => "how is unknown (its process slot was reused before system looked)".to_string(),
    }
}
