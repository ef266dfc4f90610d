//! The `SYSTEM::PROCESS` thread: the runtime's serve loop with
//! [`system::service::Service`] as handler and, between requests (the
//! transport's receive timeout: when a restart is due, else every 100 ms),
//! [`system::service::Service::poll`] to notice ended children and restart
//! supervised ones.
//!
//! It runs at priority 1, so while it handles a request it runs at the
//! caller's priority (the kernel's priority inheritance) and otherwise
//! yields to everything: its effective priority during a request *is* the
//! caller's, which is what a spawn's priority is checked against.

use alloc::boxed::Box;

use abi::Error;
use runtime::ipc::Channel;
use runtime::rpc::{serve, ChannelTransport};
use system::protocol::NAME;

use crate::boot::Svc;

/// How often ended children are looked for when no request comes and no
/// restart is due: rarely, so that an idle `system` costs the programs
/// running next to it (the IPC benchmark among them) next to nothing.
/// Requests look whenever [`system::service::POLL_MS`] have passed.
const IDLE_POLL_MS: u64 = 100;

/// Register the name and start the thread; the service moves to it.
pub fn start(mut svc: Box<Svc>) -> Result<(), Error> {
    let starter = Channel::create()?;
    let (base, _) = runtime::time::priority()?;
    runtime::process::spawn_thread(crate::host::starter, starter.token(), base)?;
    svc.host.starter = Some(starter);
    let chan = Channel::create()?;
    let mut transport = ChannelTransport::new(chan)?;
    transport.set_timeout(IDLE_POLL_MS * 1_000_000);
    transport.channel().register(NAME)?;
    let state = Box::into_raw(Box::new((svc, transport)));
    runtime::process::spawn_thread(run, state as u64, 1).map(|_| ())
}

fn run(arg: u64) {
    // SAFETY: `start` leaked this box for this thread alone.
    let state = unsafe { Box::from_raw(arg as *mut (Box<Svc>, ChannelTransport)) };
    let (mut svc, mut transport) = *state;
    loop {
        match serve(&mut transport, &mut *svc) {
            Error::Timeout => {
                // Wake for the next restart due, if one is sooner.
                let now = runtime::time::uptime_ms();
                let wait = svc.poll().map_or(IDLE_POLL_MS, |at| at.saturating_sub(now)).clamp(1, IDLE_POLL_MS);
                transport.set_timeout(wait * 1_000_000);
            }
            e => {
                runtime::println!("system: SYSTEM::PROCESS stopped: {e:?}");
                return;
            }
        }
    }
}
