//! The suites, by name.

mod bench;
mod boot;
mod caps;
mod devices;
pub mod fuzz;
mod disk;
pub mod hostile;
pub(crate) mod ipc;
mod mem;
mod process;
mod servers;

pub fn run(suite: &str, args: runtime::Args) -> i32 {
    match suite {
        "boot" => boot::run(),
        "ipc" => ipc::run(),
        "caps" => caps::run(),
        "mem" => mem::run(),
        "hostile" => hostile::run(),
        "process" => process::run(),
        "servers" => servers::run(),
        "ticks" => hostile::quota::ticks(),
        "devices" => devices::run(),
        "bench" => bench::run(),
        "fuzz" => fuzz::run(args),
        "disk" | "disk-cdrom" | "disk-none" => disk::run(suite),
        other => {
            runtime::println!("ktest: no suite {other}");
            2
        }
    }
}
