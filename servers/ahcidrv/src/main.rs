//! `ahcidrv`: the AHCI driver. Brings the controller up with the start
//! capabilities of [`ahcidrv::cap_id`], logs one IDENTIFY line per disk,
//! registers `AHCI::DISK<n>` and a DEVMAN entry for each and serves the
//! storage protocol ([`ahcidrv::proto`]) on one channel per disk (a thread
//! each; the threads take turns at the controller, one command at a time).
//! A thread follows PCIDRV and ends the driver with it.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod serve;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("ahcidrv runs on the microkernel: it is spawned with the controller's capabilities");
    std::process::exit(2);
}
