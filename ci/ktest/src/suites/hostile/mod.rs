//! Hostile input, by topic: each case checks the exact error (or the exact
//! fault report) a misbehaving program gets, and that the system goes on
//! afterwards (a well-behaved child still spawns, maps memory and makes an
//! IPC call). One topic file per area.

mod ipc;

use crate::harness::Suite;

pub fn run() -> i32 {
    let mut s = Suite::new("hostile");
    ipc::cases(&mut s);
    s.finish()
}
