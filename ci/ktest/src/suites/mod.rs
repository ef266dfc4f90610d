//! The suites, by name.

mod bench;
mod boot;
mod caps;
pub mod hostile;
mod ipc;
mod mem;
mod servers;

pub fn run(suite: &str) -> i32 {
    match suite {
        "boot" => boot::run(),
        "ipc" => ipc::run(),
        "caps" => caps::run(),
        "mem" => mem::run(),
        "hostile" => hostile::run(),
        "servers" => servers::run(),
        "bench" => bench::run(),
        other => {
            runtime::println!("ktest: no suite {other}");
            2
        }
    }
}
