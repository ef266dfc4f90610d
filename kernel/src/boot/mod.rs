//! What the boot loader tells the kernel, and starting the first program.

pub mod init;
pub mod multiboot;
