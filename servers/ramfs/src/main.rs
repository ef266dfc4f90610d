//! The RAMFS server: index the boot image, register `boot:` with VFS, serve.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod server_main {
    use ramfs::index::Index;
    use ramfs::server::Ramfs;
    use runtime::ipc::Channel;
    use runtime::println;
    use vfs::VfsClient;

    runtime::entry!(main);

    fn main(_args: runtime::Args) -> i32 {
        let archive = match runtime::ramfs::archive() {
            Ok(a) => a,
            Err(e) => {
                println!("ramfs: no boot image: {e:?}");
                return 1;
            }
        };
        let index = Index::build(&archive);
        let chan = match Channel::create() {
            Ok(c) => c,
            Err(e) => {
                println!("ramfs: cannot create a channel: {e:?}");
                return 1;
            }
        };
        let registered = VfsClient::connect_wait(5_000).and_then(|v| v.register(ramfs::PREFIX, &chan));
        if let Err(e) = registered {
            println!("ramfs: cannot register {}: with VFS: {e:?}", ramfs::PREFIX);
            return 1;
        }
        println!("ramfs: serving {}: ({} objects)", ramfs::PREFIX, index.len());
        runtime::rpc::run_server("ramfs", chan, &mut Ramfs::new(index))
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("ramfs runs on the microkernel: build the image with `cargo run -p image-builder`");
    std::process::exit(2);
}
