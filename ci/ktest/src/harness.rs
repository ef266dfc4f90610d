//! The test harness: cases, results, and helpers shared by the suites.

use alloc::format;
use alloc::string::String;

use abi::quota::Quota;
use abi::{cap_id, Error};
use runtime::ipc::Channel;
use runtime::process::{Exit, Process, Spawn};
use runtime::println;

/// A case's outcome: `Err` carries the reason.
pub type Outcome = Result<(), String>;

/// Fail the case with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($arg)*));
        }
    };
}

/// Turn a `Result<T, E: Debug>` into the case's error with context.
pub trait Context<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: core::fmt::Debug> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e:?}"))
    }
}

impl<T> Context<T> for Option<T> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.ok_or_else(|| format!("{what}: missing"))
    }
}

/// Counts cases and prints their lines.
pub struct Suite {
    passed: u32,
    failed: u32,
}

impl Suite {
    pub fn new(name: &str) -> Suite {
        println!("ktest: suite {name}");
        Suite { passed: 0, failed: 0 }
    }

    pub fn case(&mut self, name: &str, f: impl FnOnce() -> Outcome) {
        match f() {
            Ok(()) => {
                self.passed += 1;
                println!("ok - {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL - {name}: {why}");
            }
        }
    }

    /// Print the closing line; the exit code for `system`.
    pub fn finish(self) -> i32 {
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 && self.passed > 0 {
            0
        } else {
            1
        }
    }
}

/// Capability ids the suites hand to children.
pub const CHAN: u64 = cap_id::USER;
pub const SHARED: u64 = cap_id::USER + 1;
/// A channel a server passes work on to.
pub const NEXT: u64 = cap_id::USER + 2;

/// Start `ktest child <role> <args..>`, with every capability we hold plus
/// `caps` (id, token, rights).
pub fn spawn(role: &str, args: &[&str], caps: &[(u64, u64, abi::RightsMask)], priority: u8) -> Result<Process, String> {
    spawn_with(role, args, caps, priority, true)
}

/// As [`spawn`], choosing whether the child inherits our capabilities.
pub fn spawn_with(role: &str, args: &[&str], caps: &[(u64, u64, abi::RightsMask)], priority: u8, inherit: bool) -> Result<Process, String> {
    spawn_quota(role, args, caps, priority, inherit, Quota::DEFAULT)
}

/// As [`spawn_with`], giving the child `quota`.
pub fn spawn_quota(role: &str, args: &[&str], caps: &[(u64, u64, abi::RightsMask)], priority: u8, inherit: bool, quota: Quota) -> Result<Process, String> {
    let archive = runtime::ramfs::archive().ctx("ramfs")?;
    let image = archive.find("ktest").ctx("ktest image")?;
    let mut s = Spawn::new("ktest-child", image.data).arg("child").arg(role).priority(priority).quota(quota);
    for a in args {
        s = s.arg(a);
    }
    if inherit {
        s = s.inherit_all();
    }
    for &(id, token, r) in caps {
        s = s.cap(id, token, r);
    }
    s.start().ctx("spawn")
}

/// Wait for a child and check how it ended.
pub fn expect_exit(p: &Process, want: Exit, what: &str) -> Outcome {
    let got = p.wait_timeout(10_000_000_000).ctx(what)?;
    crate::ensure!(got == want, "{what}: ended {got:?}, expected {want:?}");
    Ok(())
}

/// A channel whose RECEIVE end we keep, and a child serving it. Dropping
/// it kills the child and destroys the channel, so a failed case leaves
/// nothing behind for the next.
pub struct Served {
    pub chan: Channel,
    pub child: Process,
}

impl Drop for Served {
    fn drop(&mut self) {
        // Both fail harmlessly when the case already ended them.
        let _ = self.child.kill();
        let _ = self.child.wait_timeout(1_000_000_000);
        // The process token too: a suite that starts many servers must not
        // fill its capability table with tokens of dead ones.
        let _ = runtime::caps::drop_cap(self.child.token());
        let _ = core::mem::replace(&mut self.chan, Channel::from_token(0)).destroy();
    }
}

/// Priority of servers started by [`serve`]: that of the suites (`system`
/// starts ktest at 16), so a send hands the CPU straight to the server (the
/// kernel's fast path) and its reply straight back, as in real use.
pub const SERVER_PRIORITY: u8 = 16;

/// Start a child serving `role` on a fresh channel.
pub fn serve(role: &str, args: &[&str]) -> Result<Served, String> {
    serve_with(role, args, &[])
}

/// [`serve`], handing the child `caps` as well.
pub fn serve_with(role: &str, args: &[&str], caps: &[(u64, u64, abi::RightsMask)]) -> Result<Served, String> {
    let chan = Channel::create().ctx("channel")?;
    let mut all = alloc::vec![(CHAN, chan.token(), (abi::ChannelRights::RECEIVE | abi::ChannelRights::SEND).into())];
    all.extend_from_slice(caps);
    let child = spawn(role, args, &all, SERVER_PRIORITY)?;
    Ok(Served { chan, child })
}

/// The system-wide id of a channel token (for the monitoring syscalls).
pub fn channel_id(token: u64) -> u64 {
    runtime::caps::inspect(token).map(|c| c.2).unwrap_or(0)
}

/// Messages received on the channel of `token` and not answered yet.
pub fn channel_stats_in_flight(token: u64) -> u64 {
    runtime::ipc::debug::channel_stats(channel_id(token)).map_or(0, |s| s.in_flight)
}

/// Sleep in 1 ms steps until `cond` holds (or fail after a while).
/// Sleeping, not yielding, so threads of any priority get to run.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> Outcome {
    let start = runtime::time::uptime_ms();
    while !cond() {
        crate::ensure!(runtime::time::uptime_ms() - start < 5000, "timed out waiting for {what}");
        let _ = runtime::time::sleep_ms(1);
    }
    Ok(())
}

/// Expect a specific error.
pub fn expect_err<T: core::fmt::Debug>(r: Result<T, Error>, want: Error, what: &str) -> Outcome {
    match r {
        Err(e) if e == want => Ok(()),
        other => Err(format!("{what}: got {other:?}, expected Err({want:?})")),
    }
}

/// A small deterministic PRNG for fuzzing.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Parse a decimal argument.
pub fn num(s: Option<&str>) -> u64 {
    s.and_then(|s| s.parse().ok()).unwrap_or(0)
}
