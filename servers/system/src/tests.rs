//! Host tests: the boot configuration, the request handling with a fake
//! kernel that records every process and capability, and supervision.

extern crate std;

use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use runtime::process::{Builder, Exit};

use crate::config::{self, CapName, ErrorKind, Names};
use crate::policy::Policy;
use runtime::rpc::host::HostChannel;
use runtime::rpc::{CallError, WireError};

use crate::protocol::{self, Delegate, KillRequest, ListRequest, Origin, ProcessError, RunState, SpawnRequest, Stage, Status};
use crate::service::{End, Files, Host, Service, Spec};

// ---------------------------------------------------------------- fakes

fn tiny_elf() -> Vec<u8> {
    elfload::tiny_executable(0x40_0000, 5).to_vec()
}

#[derive(Default, Debug)]
struct FakeProc {
    name: String,
    alive: bool,
    started: bool,
    /// (id-less) capabilities granted: (our token, rights).
    grants: Vec<(u64, u32)>,
    start_block: Vec<u8>,
    priority: u8,
    exit: Option<Exit>,
    /// Ended and its slot went to another before `system` looked.
    slot_reused: bool,
    quota: abi::quota::Quota,
}

#[derive(Default)]
struct FakeHost {
    procs: Vec<FakeProc>,
    /// Capabilities `system` holds: token -> rights.
    held: BTreeMap<u64, u32>,
    next_token: u64,
    now: u64,
    log: Vec<String>,
    /// Fail `map_anon` with NoMemory when set.
    no_memory: bool,
    /// The kernel object behind a token, where it is not the token itself
    /// (copies of one capability).
    objects: BTreeMap<u64, u64>,
    /// Pids that are not index + 1 (a slot the kernel reused).
    pids: BTreeMap<usize, u64>,
}

impl FakeHost {
    fn new() -> FakeHost {
        FakeHost { next_token: 1000, ..Default::default() }
    }
    /// A capability arriving with a message.
    fn receive_cap(&mut self, rights: impl Into<abi::RightsMask>) -> u64 {
        self.next_token += 1;
        self.held.insert(self.next_token, rights.into().bits());
        self.next_token
    }
    fn live(&self) -> usize {
        self.procs.iter().filter(|p| p.alive).count()
    }
}

impl Builder for FakeHost {
    type Proc = usize;
    fn create(&mut self, name: &str, quota: &abi::quota::Quota) -> Result<usize, abi::Error> {
        self.procs.push(FakeProc { name: name.to_string(), alive: true, quota: *quota, ..Default::default() });
        let i = self.procs.len() - 1;
        self.held.insert(10_000 + i as u64, abi::RightsMask::ALL.bits());
        Ok(i)
    }
    fn token(&self, p: &usize) -> u64 {
        10_000 + *p as u64
    }
    fn map_anon(&mut self, _: &usize, _: u64, _: u64, _: abi::MapFlags) -> Result<(), abi::Error> {
        if self.no_memory {
            return Err(abi::Error::NoMemory);
        }
        Ok(())
    }
    fn write(&mut self, p: &usize, va: u64, data: &[u8]) -> Result<(), abi::Error> {
        if va >= abi::layout::STACK_TOP - abi::layout::STACK_SIZE {
            self.procs[*p].start_block = data.to_vec();
        }
        Ok(())
    }
    fn grant(&mut self, p: &usize, token: u64, r: abi::RightsMask) -> Result<u64, abi::Error> {
        let have = *self.held.get(&token).ok_or(abi::Error::Incapable)?;
        self.procs[*p].grants.push((token, have & r.bits()));
        Ok(token)
    }
    fn start(&mut self, p: &usize, _: u64, _: u64, priority: u8) -> Result<(), abi::Error> {
        self.procs[*p].started = true;
        self.procs[*p].priority = priority;
        Ok(())
    }
    fn discard(&mut self, p: usize) {
        self.procs[p].alive = false;
        self.held.remove(&(10_000 + p as u64));
    }
}

impl Host for FakeHost {
    fn rights(&self, token: u64) -> Option<u32> {
        self.held.get(&token).copied()
    }
    fn pid(&self, p: &usize) -> u64 {
        self.pids.get(p).copied().unwrap_or(*p as u64 + 1)
    }
    fn drop_cap(&mut self, token: u64) {
        assert!(self.held.remove(&token).is_some(), "dropped a capability not held: {token}");
    }
    fn ended(&mut self, p: &usize) -> Option<End> {
        let p = &self.procs[*p];
        if p.slot_reused {
            return Some(End::Unknown);
        }
        p.exit.map(End::Exit)
    }
    fn kill(&mut self, p: &usize) -> bool {
        let p = &mut self.procs[*p];
        if p.exit.is_some() || p.slot_reused {
            return false;
        }
        p.exit = Some(Exit::Killed);
        true
    }
    fn object(&self, token: u64) -> Option<(u64, u64)> {
        self.held.get(&token)?;
        Some((abi::CapKind::Channel as u64, self.objects.get(&token).copied().unwrap_or(token)))
    }
    fn release(&mut self, p: usize) {
        self.procs[p].alive = false;
        self.held.remove(&(10_000 + p as u64));
    }
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn caller_priority(&self) -> u8 {
        16
    }
    fn log(&mut self, line: &str) {
        self.log.push(line.to_string());
    }
}

struct FakeFiles(BTreeMap<String, Vec<u8>>);

impl Files for FakeFiles {
    fn read(&mut self, path: &str, _bootstrap: bool) -> Result<Vec<u8>, ProcessError> {
        self.0.get(path).cloned().ok_or(ProcessError::NotFound)
    }
}

fn service() -> Service<FakeHost, FakeFiles> {
    let mut files = BTreeMap::new();
    files.insert("boot:/prog".to_string(), tiny_elf());
    files.insert("boot:/text".to_string(), b"hello, not an ELF".to_vec());
    let mut bad = tiny_elf();
    bad[64 + 4] = 7; // R+W+X: breaks W^X
    files.insert("boot:/wx".to_string(), bad);
    Service::new(FakeHost::new(), FakeFiles(files), Policy { first_delay_ms: 10, max_delay_ms: 100, max_restarts: 2, window_ms: 1000 })
}

type Svc = Service<FakeHost, FakeFiles>;
type R<T> = Result<T, CallError<ProcessError>>;

fn stage(s: &mut Svc, ch: &mut HostChannel, ticket: u64, want: impl Into<abi::RightsMask>, held: impl Into<abi::RightsMask>) -> R<()> {
    let cap = s.host.receive_cap(held);
    ch.call_cap(s, &Stage { ticket, rights: want.into().bits() }, cap).map(|_| ())
}

fn req(path: &str, args: &[&str], caps: &[Delegate], priority: u8) -> SpawnRequest {
    SpawnRequest {
        path: path.try_into().unwrap(),
        args: protocol::pack_args(args).unwrap(),
        caps: caps.iter().copied().collect(),
        stack_size: 0,
        priority,
        restart: false,
    }
}

fn spawn(s: &mut Svc, ch: &mut HostChannel, req: &SpawnRequest) -> R<u64> {
    let (sp, grant) = ch.call_cap(s, req, 0)?;
    let g = grant.expect("a spawn hands back the process");
    assert_eq!(g.rights, abi::RightsMask::from(abi::ProcessRights::WAIT | abi::ProcessRights::KILL));
    Ok(sp.pid)
}

fn server(e: ProcessError) -> R<u64> {
    Err(CallError::Server(e))
}

/// Nothing left behind: no live process, no staged or other capability.
fn assert_clean(s: &Svc) {
    assert_eq!(s.host.live(), 0, "a process was left behind");
    assert_eq!(s.staged(), 0, "a staged capability was left behind");
    let left: Vec<_> = s.host.held.keys().filter(|&&t| t < 10_000).collect();
    assert!(left.is_empty(), "capabilities left behind: {left:?}");
}

// ---------------------------------------------------------------- spawning

#[test]
fn spawn_delegates_capabilities_and_arguments() {
    let (mut s, mut ch) = (service(), HostChannel::new());
    stage(&mut s, &mut ch, 77, abi::ChannelRights::SEND, abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE).unwrap();
    assert_eq!(s.staged(), 1);
    let pid = spawn(&mut s, &mut ch, &req("boot:/prog", &["prog", "a", "b"], &[Delegate { id: 0x1000, ticket: 77 }], 9)).unwrap();
    let p = &s.host.procs[pid as usize - 1];
    assert!(p.started && p.alive);
    assert_eq!(p.name, "prog");
    assert_eq!(p.priority, 9);
    assert_eq!(p.quota, crate::service::CHILD_QUOTA, "carved out of system's");
    // The process's own capability first, then the delegated one with the rights asked.
    assert_eq!(p.grants.len(), 2);
    assert_eq!(p.grants[1].1, abi::ChannelRights::SEND.bits());
    let info = abi::start::StartInfo::parse(abi::layout::STACK_TOP - p.start_block.len() as u64, &p.start_block).unwrap();
    let args: Vec<&[u8]> = info.args().collect();
    assert_eq!(args, vec![&b"prog"[..], b"a", b"b"]);
    assert_eq!(info.caps().nth(1).unwrap().id, 0x1000);
    // The staged copy is gone from `system` once the child has its own.
    assert_eq!(s.staged(), 0);
    assert!(s.host.held.keys().all(|&t| t >= 10_000));
}

#[test]
fn every_refusal_has_its_error_and_leaves_nothing() {
    let x65 = ["x"; 65];
    let cases: Vec<(SpawnRequest, ProcessError)> = vec![
        (req("boot:/missing", &["m"], &[], 8), ProcessError::NotFound),
        (req("boot:/text", &["t"], &[], 8), ProcessError::NotElf),
        (req("boot:/wx", &["w"], &[], 8), ProcessError::BadSegment),
        (req("/prog", &["p"], &[], 8), ProcessError::BadPath),
        (req("boot:/", &["p"], &[], 8), ProcessError::BadPath),
        (req("boot:/../prog", &["p"], &[], 8), ProcessError::BadPath),
        (req("boot:/prog", &[], &[], 8), ProcessError::TooManyArgs),
        (req("boot:/prog", &x65, &[], 8), ProcessError::TooManyArgs),
        (req("boot:/prog", &["p"], &[Delegate { id: 1, ticket: 5 }], 8), ProcessError::NotStaged),
        (req("boot:/prog", &["p"], &[], 17), ProcessError::PriorityAboveCaller),
        (req("boot:/prog", &["p"], &[], 0), ProcessError::PriorityAboveCaller),
    ];
    for (mut r, want) in cases {
        let (mut s, mut ch) = (service(), HostChannel::new());
        // A staged capability the request names is used up by the refusal.
        stage(&mut s, &mut ch, 1, abi::ChannelRights::SEND, abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE).unwrap();
        r.caps.push(Delegate { id: 0x2000, ticket: 1 }).unwrap();
        assert_eq!(spawn(&mut s, &mut ch, &r), server(want), "{r:?}");
        assert_clean(&s);
    }
    let (mut s, mut ch) = (service(), HostChannel::new());
    let caps: Vec<Delegate> = (0..33).map(|i| Delegate { id: i, ticket: i }).collect();
    assert_eq!(spawn(&mut s, &mut ch, &req("boot:/prog", &["p"], &caps, 8)), server(ProcessError::TooManyCaps));
    let mut bad_utf8 = req("boot:/prog", &["p"], &[], 8);
    bad_utf8.args = [0xff, 0].into_iter().collect();
    assert_eq!(spawn(&mut s, &mut ch, &bad_utf8), server(ProcessError::TooManyArgs));
    assert_clean(&s);
}

#[test]
fn a_failure_half_way_discards_the_process() {
    let (mut s, mut ch) = (service(), HostChannel::new());
    stage(&mut s, &mut ch, 1, abi::ChannelRights::SEND, abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE).unwrap();
    let mut r = req("boot:/prog", &["p"], &[Delegate { id: 0x2000, ticket: 1 }], 8);
    r.stack_size = 2048;
    assert_eq!(spawn(&mut s, &mut ch, &r), server(ProcessError::StackSize), "not page-aligned");
    assert_eq!(s.host.procs.len(), 0, "refused before a process was made");
    assert_clean(&s);
    // The kernel runs out of memory after the process exists.
    stage(&mut s, &mut ch, 1, abi::ChannelRights::SEND, abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE).unwrap();
    r.stack_size = 0;
    s.host.no_memory = true;
    assert_eq!(spawn(&mut s, &mut ch, &r), server(ProcessError::OutOfMemory));
    assert_eq!(s.host.procs.len(), 1, "the process was made, then discarded");
    assert_clean(&s);
}

#[test]
fn staging_checks_rights_and_limits() {
    let (mut s, mut ch) = (service(), HostChannel::new());
    let err = |e| Err(CallError::Server(e));
    // Fewer rights than the child is to get.
    assert_eq!(stage(&mut s, &mut ch, 1, abi::ChannelRights::SEND | abi::ChannelRights::RECEIVE, abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE), err(ProcessError::RightsAboveCaller));
    // Without DELEGATE we could not hand it on.
    assert_eq!(stage(&mut s, &mut ch, 2, abi::ChannelRights::SEND, abi::ChannelRights::SEND), err(ProcessError::RightsAboveCaller));
    // No capability carried.
    assert_eq!(ch.call(&mut s, &Stage { ticket: 3, rights: 0 }), err(ProcessError::NotStaged));
    assert_clean(&s);
    for t in 0..protocol::MAX_STAGED as u64 {
        stage(&mut s, &mut ch, 100 + t, abi::ChannelRights::SEND, abi::RightsMask::ALL).unwrap();
    }
    assert_eq!(stage(&mut s, &mut ch, 1, abi::ChannelRights::SEND, abi::RightsMask::ALL), err(ProcessError::LimitReached));
    let tickets = (0..protocol::MAX_STAGED as u64).map(|t| 100 + t).collect();
    ch.call(&mut s, &protocol::Release { tickets }).unwrap();
    assert_clean(&s);
}

#[test]
fn bad_messages_get_errors_and_service_goes_on() {
    let (mut s, mut ch) = (service(), HostChannel::new());
    let status = |r: Option<runtime::rpc::host::HostReply>| runtime::rpc::wire::split_result(r.unwrap().result).0;
    assert_eq!(status(ch.raw_call(&mut s, 99, b"")), WireError::UnknownOperation.status());
    assert_eq!(status(ch.raw_call(&mut s, 2, b"")), WireError::Truncated.status());
    assert_eq!(status(ch.raw_call(&mut s, 2, b"\x05boot:")), WireError::Truncated.status());
    assert_eq!(status(ch.raw_call(&mut s, 2, &[0xff; 4096])), WireError::Oversized.status());
    assert_eq!(status(ch.raw_call(&mut s, 3, b"\x02\xff\xfe")), WireError::Malformed.status());
    // A capability sent with a bad request is not kept.
    let cap = s.host.receive_cap(abi::RightsMask::ALL);
    let id = ch.send(3, b"\x02\xff\xfe", cap).unwrap();
    runtime::rpc::serve(&mut ch, &mut s);
    assert!(ch.take_reply(id).is_some());
    assert_eq!(ch.dropped_caps, vec![cap]);
    // Random bytes never panic.
    let mut x = 0x1234_5678u64;
    for _ in 0..5000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 40) as usize;
        let bytes: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
        assert!(ch.raw_call(&mut s, x % 6, &bytes).is_some());
    }
    assert_eq!(s.host.live(), 0);
    // And it still serves.
    assert!(spawn(&mut s, &mut ch, &req("boot:/prog", &["p"], &[], 8)).is_ok());
}

// ---------------------------------------------------------------- supervision

#[test]
fn restartable_servers_come_back_with_back_off_then_are_held() {
    let mut s = service();
    let cap = s.host.receive_cap(abi::RightsMask::ALL);
    let spec = Spec { path: "boot:/prog".into(), args: vec!["srv".into()], caps: vec![(0x1000, cap, abi::ChannelRights::SEND.bits())], stack_size: 0x4000, priority: 8, bootstrap: false };
    let (pid, _) = s.start(spec, true).unwrap();
    assert_eq!(s.status("srv"), Ok(Status::Running { pid, restarts: 0 }));
    assert!(s.host.held.contains_key(&cap), "kept for restarts");
    // It crashes.
    s.host.now = 100;
    s.host.procs[pid as usize - 1].exit = Some(Exit::Fault(14));
    assert_eq!(s.poll(), Some(110));
    assert_eq!(s.host.log, vec!["system: srv (pid 1) ended: fault (vector 14)".to_string()]);
    assert_eq!(s.status("srv"), Ok(Status::Restarting { restarts: 1 }));
    s.host.now = 105;
    assert_eq!(s.poll(), Some(110), "not before its back-off");
    s.host.now = 110;
    assert_eq!(s.poll(), None);
    assert_eq!(s.status("srv"), Ok(Status::Running { pid: 2, restarts: 1 }));
    assert_eq!(s.host.log[1], "system: restarted srv as pid 2 (restart 1)");
    assert_eq!(s.host.procs[1].grants[1], (cap, abi::ChannelRights::SEND.bits()), "the same capabilities again");
    // It keeps crashing: a longer delay, then held.
    s.host.procs[1].exit = Some(Exit::Code(3));
    assert_eq!(s.poll(), Some(130));
    s.host.now = 130;
    s.poll();
    s.host.procs[2].exit = Some(Exit::Killed);
    assert_eq!(s.poll(), None);
    assert_eq!(s.status("srv"), Ok(Status::Held { restarts: 2 }));
    assert!(s.host.log.last().unwrap().contains("srv held"), "{:?}", s.host.log);
    assert_eq!(s.host.live(), 0);
    assert_eq!(s.status("other"), Err(ProcessError::NotSupervised));
    // A new spawn under the held name replaces it.
    let (mut ch, mut r) = (HostChannel::new(), req("boot:/prog", &["srv"], &[], 8));
    r.restart = true;
    let pid = spawn(&mut s, &mut ch, &r).unwrap();
    assert_eq!(s.status("srv"), Ok(Status::Running { pid, restarts: 0 }));
    assert!(!s.host.held.contains_key(&cap), "the held one's capabilities are released");
    assert_eq!(spawn(&mut s, &mut ch, &r), server(ProcessError::LimitReached), "the name is in use");
}

#[test]
fn ordinary_children_are_logged_and_forgotten() {
    let (mut s, mut ch) = (service(), HostChannel::new());
    let pid = spawn(&mut s, &mut ch, &req("boot:/prog", &["job"], &[], 8)).unwrap();
    assert_eq!(s.live(), 1);
    s.host.procs[pid as usize - 1].exit = Some(Exit::Code(0));
    assert_eq!(s.poll(), None);
    assert_eq!(s.host.log, vec![std::format!("system: job (pid {pid}) ended: exit code 0")]);
    assert_eq!(s.live(), 0);
    assert_eq!(s.status("job"), Err(ProcessError::NotSupervised));
}

#[test]
fn a_child_whose_slot_was_reused_before_the_poll_is_seen_ended() {
    let mut s = service();
    let spec = Spec { path: "boot:/prog".into(), args: vec!["srv".into()], caps: vec![], stack_size: 0x4000, priority: 8, bootstrap: false };
    let (pid, _) = s.start(spec, true).unwrap();
    // It ended and the kernel gave its slot away before this poll.
    s.host.procs[pid as usize - 1].slot_reused = true;
    s.host.now = 50;
    assert_eq!(s.poll(), Some(60), "its restart is due after the back-off");
    assert!(s.host.log[0].starts_with("system: srv (pid 1) ended: how is unknown"), "{:?}", s.host.log);
    assert_eq!(s.status("srv"), Ok(Status::Restarting { restarts: 1 }));
    s.host.now = 60;
    s.poll();
    assert_eq!(s.status("srv"), Ok(Status::Running { pid: 2, restarts: 1 }));
}

// ---------------------------------------------------------------- list and kill

/// A copy of the admin key as a client presents it.
fn key_copy(s: &mut Svc, key: u64) -> u64 {
    let t = s.host.receive_cap(abi::RightsMask::DELEGATE);
    s.host.objects.insert(t, key);
    t
}

#[test]
fn list_shows_every_child_and_kill_needs_the_admin_key() {
    let (mut s, mut ch) = (service(), HostChannel::new());
    let key = s.host.receive_cap(abi::RightsMask::ALL);
    s.set_admin(key);
    let boot = Spec { path: "boot:/prog".into(), args: vec!["srv".into()], caps: vec![], stack_size: 0x4000, priority: 8, bootstrap: false };
    let (srv, _) = s.start(boot, true).unwrap();
    let job = spawn(&mut s, &mut ch, &req("boot:/prog", &["job", "x"], &[], 8)).unwrap();
    let list = ch.call(&mut s, &ListRequest {}).unwrap().processes;
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].pid, list[0].name.as_str(), list[0].state, list[0].supervised, list[0].origin), (srv, "srv", RunState::Running, true, Origin::Boot));
    assert_eq!((list[1].pid, list[1].name.as_str(), list[1].supervised, list[1].origin), (job, "job", false, Origin::Request));
    // Without a key, with another capability, with a stale copy: refused,
    // and the process lives on.
    assert_eq!(ch.call(&mut s, &KillRequest { pid: job }), Err(CallError::Server(ProcessError::NotAllowed)));
    let other = s.host.receive_cap(abi::RightsMask::ALL);
    let r = ch.call_cap(&mut s, &KillRequest { pid: job }, other).map(|_| ());
    assert_eq!(r, Err(CallError::Server(ProcessError::NotAllowed)));
    assert!(!s.host.held.contains_key(&other), "a refused key is not kept");
    assert_eq!(s.host.procs[job as usize - 1].exit, None);
    // With the key: the job ends and leaves the list; unknown pids get
    // their error.
    let k = key_copy(&mut s, key);
    ch.call_cap(&mut s, &KillRequest { pid: job }, k).unwrap();
    assert!(!s.host.held.contains_key(&k), "the presented key is dropped");
    assert_eq!(s.host.procs[job as usize - 1].exit, Some(Exit::Killed));
    assert_eq!(s.host.log, vec![std::format!("system: job (pid {job}) ended: killed")]);
    let k = key_copy(&mut s, key);
    assert_eq!(ch.call_cap(&mut s, &KillRequest { pid: job }, k).map(|_| ()), Err(CallError::Server(ProcessError::NoSuchProcess)));
    let k = key_copy(&mut s, key);
    assert_eq!(ch.call_cap(&mut s, &KillRequest { pid: 999 }, k).map(|_| ()), Err(CallError::Server(ProcessError::NoSuchProcess)));
    // The supervised one killed: restarting, then running under a new pid.
    let k = key_copy(&mut s, key);
    ch.call_cap(&mut s, &KillRequest { pid: srv }, k).unwrap();
    let list = ch.call(&mut s, &ListRequest {}).unwrap().processes;
    assert_eq!((list.len(), list[0].state, list[0].restarts, list[0].pid), (1, RunState::Restarting, 1, 0));
    s.host.now = 10;
    s.poll();
    let list = ch.call(&mut s, &ListRequest {}).unwrap().processes;
    assert_eq!(list[0].state, RunState::Running);
    assert_ne!(list[0].pid, srv);
}

#[test]
fn kill_names_the_live_process_when_an_ended_one_had_its_pid() {
    let (mut s, mut ch) = (service(), HostChannel::new());
    let key = s.host.receive_cap(abi::RightsMask::ALL);
    s.set_admin(key);
    let old = spawn(&mut s, &mut ch, &req("boot:/prog", &["old"], &[], 8)).unwrap();
    // The old one ends and the kernel gives its slot (pid) to the next
    // process before system looks.
    s.host.procs[0].slot_reused = true;
    s.host.pids.insert(1, old);
    let new = spawn(&mut s, &mut ch, &req("boot:/prog", &["new"], &[], 8)).unwrap();
    assert_eq!(new, old, "the same pid");
    let k = key_copy(&mut s, key);
    ch.call_cap(&mut s, &KillRequest { pid: new }, k).unwrap();
    assert_eq!(s.host.procs[1].exit, Some(Exit::Killed), "the live one is killed");
    let list = ch.call(&mut s, &ListRequest {}).unwrap().processes;
    assert!(list.is_empty(), "{list:?}");
}

#[test]
fn without_an_admin_key_nobody_may_kill() {
    let (mut s, mut ch) = (service(), HostChannel::new());
    let job = spawn(&mut s, &mut ch, &req("boot:/prog", &["job"], &[], 8)).unwrap();
    let any = s.host.receive_cap(abi::RightsMask::ALL);
    assert_eq!(ch.call_cap(&mut s, &KillRequest { pid: job }, any).map(|_| ()), Err(CallError::Server(ProcessError::NotAllowed)));
    assert_eq!(ch.call(&mut s, &KillRequest { pid: job }), Err(CallError::Server(ProcessError::NotAllowed)));
}

// ---------------------------------------------------------------- boot configuration

const SAMPLE: &str = "\
# the servers
vfs    boot:/vfs    priority=12 bootstrap service=SYSTEM::VFS caps=debug_print,thread,channel_create,names names=SYSTEM
ramfs  boot:/ramfs  bootstrap restart caps=ramfs,thread,names names=boot stack=64 mount=boot -- --verbose x=1
echo   boot:/echo   # loaded through VFS
shell  boot:/shell  console restart caps=com1,debug_print
";

#[test]
fn the_sample_configuration_parses() {
    let e = config::check(SAMPLE.as_bytes(), &["vfs", "ramfs", "echo", "shell"]).unwrap();
    assert_eq!(e.len(), 4);
    assert_eq!(e[0].name, "vfs");
    assert_eq!(e[0].priority, 12);
    assert_eq!(e[0].service.as_deref(), Some("SYSTEM::VFS"));
    assert_eq!(e[0].caps.len(), 4);
    assert_eq!(e[0].names, Names::Provider("SYSTEM".into()));
    assert_eq!(e[1].names, Names::Provider("boot".into()));
    assert_eq!(e[2].names, Names::FindOnly, "no names= is not find-only");
    assert!(e[0].bootstrap && !e[0].restart);
    assert_eq!(e[1].caps, vec![CapName::Ramfs, CapName::Class(abi::SyscallClass::Thread), CapName::Class(abi::SyscallClass::Names)]);
    assert_eq!(e[1].stack, 64 * 1024);
    assert_eq!(e[1].args, vec!["--verbose".to_string(), "x=1".to_string()]);
    assert!(e[1].restart);
    assert_eq!(e[1].mount.as_deref(), Some("boot"));
    assert_eq!((e[2].priority, e[2].bootstrap, e[2].file()), (8, false, "echo"));
    assert!(e.iter().take(3).all(|e| !e.console));
    assert!(e[3].console && e[3].restart);
    assert_eq!(e[3].caps, vec![CapName::Com1, CapName::Class(abi::SyscallClass::DebugPrint)]);
    assert_eq!(CapName::Com1.id(), abi::cap_id::COM1);
    assert_eq!(CapName::parse("acpi_rsdp").map(CapName::id), Some(abi::cap_id::ACPI_RSDP));
    assert_eq!(CapName::parse("irq").map(CapName::id), Some(abi::cap_id::class(abi::SyscallClass::Irq)));
    assert_eq!(CapName::parse("admin").map(CapName::id), Some(protocol::ADMIN_CAP));
    // The shell's: COM1's ports read-only, and COM1's interrupt line.
    assert_eq!(CapName::parse("com1_rx").map(|c| (c.id(), c.rights())), Some((abi::cap_id::COM1, abi::IoPortRights::READ.bits())));
    assert_eq!(CapName::parse("com1_irq").map(|c| (c.id(), c.rights())), Some((abi::cap_id::COM1_IRQ, abi::RightsMask::ALL.bits())));
    assert_eq!(CapName::Com1.rights(), abi::RightsMask::ALL.bits());
}

#[test]
fn configuration_mistakes_fail_with_their_line() {
    let files = ["vfs", "ramfs", "echo"];
    let bad = |text: &str| config::check(text.as_bytes(), &files).unwrap_err();
    let e = bad("vfs boot:/vfs bootstrap\necho boot:/echo prority=3\n");
    assert_eq!((e.line, e.kind), (2, ErrorKind::UnknownKey("prority=3".into())));
    assert_eq!(bad("vfs boot:/vfs bootstrap restrat").kind, ErrorKind::UnknownKey("restrat".into()));
    assert_eq!(bad("vfs boot:/vfs bootstrap caps=thread,nmes").kind, ErrorKind::UnknownCap("nmes".into()));
    assert_eq!(bad("vfs /vfs bootstrap").kind, ErrorKind::BadPath("/vfs".into()));
    assert_eq!(bad("vfs").kind, ErrorKind::MissingPath);
    assert_eq!(bad("vfs boot:/vfs bootstrap priority=17").kind, ErrorKind::BadValue("priority=17".into()));
    assert_eq!(bad("vfs boot:/vfs bootstrap caps=names names=boot mount=disk").kind, ErrorKind::MountOutsideNames("disk".into()));
    assert_eq!(bad("vfs boot:/vfs bootstrap mount=disk").kind, ErrorKind::MountOutsideNames("disk".into()));
    assert_eq!(bad("vfs boot:/vfs bootstrap mount=Boot").kind, ErrorKind::BadValue("mount=Boot".into()));
    assert_eq!(bad("vfs boot:/vfs bootstrap stack=5").kind, ErrorKind::BadValue("stack=5".into()));
    assert_eq!(bad("vfs boot:/vfs bootstrap\nvfs boot:/ramfs").kind, ErrorKind::DuplicateName("vfs".into()));
    assert_eq!(bad("vfs boot:/vfs bootstrap\necho boot:/echo\nramfs boot:/ramfs bootstrap").kind, ErrorKind::BootstrapAfterVfs("ramfs".into()));
    assert_eq!(bad("echo boot:/echo").kind, ErrorKind::NoBootstrap);
    let e = bad("# x\nvfs boot:/vfs bootstrap\nnet boot:/netd");
    assert_eq!((e.line, e.kind), (3, ErrorKind::NoSuchFile("boot:/netd".into())));
    assert_eq!(
        bad("a boot:/vfs bootstrap caps=names names=X service=X::Y\nb boot:/ramfs bootstrap caps=names names=X service=X::Y").kind,
        ErrorKind::DuplicateService("X::Y".into())
    );
    // Scopes: a provider of 1..=8 name bytes or `*`, only with the names
    // capability, covering the service the server registers.
    for v in ["", "ABCDEFGHI", "A:B", "A::B", "A,B"] {
        let w = format!("names={v}");
        assert_eq!(bad(&format!("a boot:/vfs bootstrap caps=names {w}")).kind, ErrorKind::BadValue(w), "{v:?}");
    }
    assert_eq!(bad("a boot:/vfs bootstrap caps=thread names=X").kind, ErrorKind::NamesWithoutCap);
    assert_eq!(bad("a boot:/vfs bootstrap caps=names service=X::Y").kind, ErrorKind::ServiceOutsideNames("X::Y".into()));
    assert_eq!(bad("a boot:/vfs bootstrap caps=names names=Z service=X::Y").kind, ErrorKind::ServiceOutsideNames("X::Y".into()));
    assert_eq!(bad("a boot:/vfs bootstrap caps=names names=XY service=X::Y").kind, ErrorKind::ServiceOutsideNames("X::Y".into()));
    let ok = |t: &str| config::check(t.as_bytes(), &files).unwrap().remove(0).names;
    assert_eq!(ok("a boot:/vfs bootstrap caps=names names=* service=X::Y"), Names::All);
    assert_eq!(ok("a boot:/vfs bootstrap caps=names names=ABCDEFGH service=ABCDEFGH::Y"), Names::Provider("ABCDEFGH".into()));
    assert_eq!(config::check(b"\xff", &files).unwrap_err().kind, ErrorKind::NotText);
}

#[test]
fn the_repository_configuration_is_valid() {
    let text = include_str!("../boot.conf");
    let entries = config::parse(text).unwrap();
    // Nobody but the device tree's root holds every provider.
    let scope = |n: &str| entries.iter().find(|e| e.name == n).map(|e| e.names.clone());
    assert_eq!(scope("vfs"), Some(Names::Provider("SYSTEM".into())));
    assert_eq!(scope("ramfs"), Some(Names::Provider("boot".into())));
    assert_eq!(scope("shell"), Some(Names::FindOnly));
    assert!(entries.iter().all(|e| e.names != Names::All || e.name == "devman"));
}
