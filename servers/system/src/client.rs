//! The typed client of `SYSTEM::PROCESS`.
//!
//! [`ProcessClient::spawn`] stages each capability (one `SendCap` each, see
//! [`crate::protocol`]), then sends the spawn; if staging fails part-way it
//! releases what it staged, so a failed spawn leaves nothing in `system`.

use abi::Error;
use heapless::Vec as HVec;
use runtime::ipc::Channel;
use runtime::process::Process;
use runtime::rpc::{CallError, Client};

use crate::protocol::{self, Delegate, KillRequest, ListRequest, ProcessError, ProcessList, Release, SpawnRequest, Stage, Status, StatusRequest, NAME};

/// A capability to hand to the child: our `token`, found there under
/// `id`, with `rights`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    pub id: u64,
    pub token: u64,
    pub rights: abi::RightsMask,
}

impl Cap {
    /// Our capability for syscall class `c`, passed on under the same id
    /// with the rights we hold (None if we lack it).
    pub fn class(c: abi::SyscallClass) -> Option<Cap> {
        let id = abi::cap_id::class(c);
        let token = runtime::init_cap(id)?;
        let (_, rights, _, _) = runtime::caps::inspect(token).ok()?;
        Some(Cap { id, token, rights: abi::RightsMask(rights) })
    }

    /// Our `Names` capability narrowed to `provider` (empty: find only),
    /// passed on under the class's id (None if the kernel refuses: a scope
    /// wider than ours).
    pub fn names(provider: &str) -> Option<Cap> {
        let id = abi::cap_id::class(abi::SyscallClass::Names);
        let token = runtime::caps::names_scope(runtime::init_cap(id)?, provider).ok()?;
        let (_, rights, _, _) = runtime::caps::inspect(token).ok()?;
        Some(Cap { id, token, rights: abi::RightsMask(rights) })
    }
}

/// What to start.
#[derive(Clone, Copy, Debug)]
pub struct SpawnArgs<'a> {
    /// `boot:/<file>`.
    pub path: &'a str,
    /// The program name first.
    pub args: &'a [&'a str],
    pub caps: &'a [Cap],
    /// 0: the default.
    pub stack_size: u64,
    pub priority: u8,
    pub restart: bool,
}

/// A started program.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u64,
    /// With WAIT and KILL.
    pub process: Process,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// `system` (or the framing) refused.
    Call(CallError<ProcessError>),
    /// The kernel refused to send capability `caps[i]`: we do not hold
    /// it, or may not delegate it.
    NotHeld(usize),
    /// The path, arguments or capabilities do not fit in a request.
    TooLarge,
}

impl From<CallError<ProcessError>> for SpawnError {
    fn from(e: CallError<ProcessError>) -> Self {
        SpawnError::Call(e)
    }
}

/// A connection to `SYSTEM::PROCESS`.
pub struct ProcessClient {
    client: Client,
}

impl ProcessClient {
    /// Find the server by name.
    pub fn find() -> Result<ProcessClient, Error> {
        Channel::find(NAME).map(|c| ProcessClient { client: Client::new(c) })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Start a program.
    pub fn spawn(&self, a: &SpawnArgs) -> Result<Spawned, SpawnError> {
        let mut req = SpawnRequest {
            path: a.path.try_into().map_err(|_| SpawnError::TooLarge)?,
            args: protocol::pack_args(a.args).ok_or(SpawnError::TooLarge)?,
            caps: HVec::new(),
            stack_size: a.stack_size,
            priority: a.priority,
            restart: a.restart,
        };
        for (i, c) in a.caps.iter().enumerate() {
            let staged = req.caps.push(Delegate { id: c.id, ticket: c.token }).map_err(|_| SpawnError::TooLarge).and_then(|()| {
                self.client.call_with_cap(&Stage { ticket: c.token, rights: c.rights.bits() }, c.token, abi::RightsMask(c.rights.bits() | abi::RightsMask::DELEGATE.bits())).map_err(|e| match e {
                    CallError::Ipc(Error::Incapable) => SpawnError::NotHeld(i),
                    e => SpawnError::Call(e),
                })
            });
            if let Err(e) = staged {
                let tickets = req.caps.iter().take(i).map(|d| d.ticket).collect();
                let _ = self.client.call(&Release { tickets });
                return Err(e);
            }
        }
        let (s, cap) = self.client.call_get_cap(&req)?;
        Ok(Spawned { pid: s.pid, process: Process::from_token(cap) })
    }

    /// How a supervised program is doing.
    pub fn status(&self, name: &str) -> Result<Status, CallError<ProcessError>> {
        let name = name.try_into().map_err(|_| CallError::Server(ProcessError::NotSupervised))?;
        self.client.call(&StatusRequest { name })
    }

    /// Every program `system` started and still watches (see
    /// [`protocol::ProcessInfo`]).
    pub fn list(&self) -> Result<ProcessList, CallError<ProcessError>> {
        self.client.call(&ListRequest {})
    }

    /// End program `pid` with the admin key we were started with
    /// ([`protocol::ADMIN_CAP`]); without it the request goes out bare and
    /// `system` answers `NotAllowed`.
    pub fn kill(&self, pid: u64) -> Result<(), CallError<ProcessError>> {
        self.kill_with(pid, runtime::init_cap(protocol::ADMIN_CAP))
    }

    /// End program `pid`, presenting `key` (a capability with DELEGATE)
    /// or nothing.
    pub fn kill_with(&self, pid: u64, key: Option<u64>) -> Result<(), CallError<ProcessError>> {
        match key {
            Some(k) => self.client.call_with_cap(&KillRequest { pid }, k, abi::RightsMask::DELEGATE),
            None => self.client.call(&KillRequest { pid }),
        }
    }
}
