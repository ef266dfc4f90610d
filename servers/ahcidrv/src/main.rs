//! `ahcidrv`: the AHCI driver. Brings the controller up with the start
//! capabilities of [`ahcidrv::cap_id`], logs one IDENTIFY line per disk,
//! registers `AHCI::DISK<n>` for each and serves the storage protocol
//! ([`ahcidrv::proto`]) on one channel, one request at a time.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod serve;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("ahcidrv runs on the microkernel: it is spawned with the controller's capabilities");
    std::process::exit(2);
}
