//! The VFS server: publish SYSTEM::VFS and serve the mount table.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod server_main {
    use runtime::ipc::Channel;
    use runtime::println;
    use vfs::server::{SysKernel, Vfs};

    runtime::entry!(main);

    fn main(_args: runtime::Args) -> i32 {
        let chan = match Channel::create() {
            Ok(c) => c,
            Err(e) => {
                println!("vfs: cannot create a channel: {e:?}");
                return 1;
            }
        };
        if let Err(e) = chan.register(vfs::NAME) {
            println!("vfs: cannot publish {}: {e:?}", vfs::NAME);
            return 1;
        }
        println!("vfs: serving {}", vfs::NAME);
        runtime::rpc::run_server("vfs", chan, &mut Vfs::new(SysKernel))
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("vfs runs on the microkernel: build the image with `cargo run -p image-builder`");
    std::process::exit(2);
}
