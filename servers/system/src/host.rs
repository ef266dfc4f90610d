//! The kernel and the file source behind [`system::service`]'s traits.

use alloc::vec::Vec;

use alloc::boxed::Box;

use ramfs::client::RamfsClient;
use ramfs::proto::Kind;
use runtime::ipc::{Channel, Page, Window};
use runtime::rpc::CallError;
use vfs::VfsClient;

use runtime::process::{Builder, Kernel, Process};
use runtime::println;
use system::protocol::ProcessError;
use system::service::{End, Files, Host};

/// The real kernel.
///
/// The kernel lets a thread start threads only up to its own base
/// priority, and the thread serving `SYSTEM::PROCESS` runs at 1 (see
/// `serve`). So once serving, first threads are started by a helper thread
/// of `system`'s own priority ([`starter`]) that the serving thread asks
/// over a private channel; before (at boot) `system`'s main thread starts
/// them itself.
pub struct Machine {
    pub starter: Option<Channel>,
}

impl Builder for Machine {
    type Proc = Process;
    fn create(&mut self, name: &str, quota: &abi::quota::Quota) -> Result<Process, abi::Error> {
        Kernel.create(name, quota)
    }
    fn token(&self, p: &Process) -> u64 {
        p.token()
    }
    fn map_anon(&mut self, p: &Process, va: u64, len: u64, flags: abi::MapFlags) -> Result<(), abi::Error> {
        Kernel.map_anon(p, va, len, flags)
    }
    fn write(&mut self, p: &Process, va: u64, data: &[u8]) -> Result<(), abi::Error> {
        Kernel.write(p, va, data)
    }
    fn grant(&mut self, p: &Process, token: u64, rights: abi::RightsMask) -> Result<u64, abi::Error> {
        Kernel.grant(p, token, rights)
    }
    fn start(&mut self, p: &Process, entry: u64, rsp: u64, priority: u8) -> Result<(), abi::Error> {
        let Some(starter) = &self.starter else { return Kernel.start(p, entry, rsp, priority) };
        let mut msg = [0u8; 32];
        for (i, v) in [p.token(), entry, rsp, priority as u64].into_iter().enumerate() {
            msg[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        abi::Error::check(starter.send(0, &msg)?)
    }
    fn discard(&mut self, p: Process) {
        Kernel.discard(p)
    }
}

impl Host for Machine {
    fn rights(&self, token: u64) -> Option<u32> {
        runtime::caps::inspect(token).ok().map(|c| c.1)
    }
    fn pid(&self, p: &Process) -> u64 {
        // The object id is generation << 32 | slot; the slot is the number
        // the kernel's own log lines give the process.
        runtime::caps::inspect(p.token()).map_or(0, |c| c.2 & 0xffff_ffff)
    }
    fn drop_cap(&mut self, token: u64) {
        let _ = runtime::caps::drop_cap(token);
    }
    fn ended(&mut self, p: &Process) -> Option<End> {
        match p.wait_timeout(0) {
            Ok(exit) => Some(End::Exit(exit)),
            Err(abi::Error::Timeout) => None,
            // Our own token, so not a bad one: the process ended and the
            // kernel gave its slot to another (ProcessWait says NotFound).
            Err(_) => Some(End::Unknown),
        }
    }
    fn kill(&mut self, p: &Process) -> bool {
        p.kill().is_ok()
    }
    fn object(&self, token: u64) -> Option<(u64, u64)> {
        runtime::caps::inspect(token).ok().map(|c| (c.0 as u64, c.2))
    }
    fn release(&mut self, p: Process) {
        let _ = runtime::caps::drop_cap(p.token());
    }
    fn now_ms(&self) -> u64 {
        runtime::time::uptime_ms()
    }
    fn caller_priority(&self) -> u8 {
        // The serving thread's base priority is the lowest: while it
        // serves a request it runs at the caller's (priority inheritance).
        runtime::time::priority().map_or(0, |p| p.1)
    }
    fn log(&mut self, line: &str) {
        println!("{line}");
    }
}

/// Where programs come from: through VFS and the file system driver it
/// names (RAMFS for `boot:`), page by page; only the bootstrap servers
/// (VFS and RAMFS themselves) straight from the boot module.
pub struct SystemFiles;

impl Files for SystemFiles {
    fn read(&mut self, path: &str, bootstrap: bool) -> Result<Vec<u8>, ProcessError> {
        if bootstrap {
            return boot_module(path);
        }
        let vfs = VfsClient::connect().map_err(|_| ProcessError::Io)?;
        let found = vfs.find(path);
        let _ = runtime::caps::drop_cap(vfs.client().channel().token());
        let (driver, inner) = found.map_err(|e| match e {
            CallError::Server(vfs::proto::Error::UnknownPrefix) => ProcessError::NotFound,
            CallError::Server(vfs::proto::Error::BadPath) => ProcessError::BadPath,
            _ => ProcessError::Io,
        })?;
        let fs = RamfsClient::new(driver);
        let r = load(&fs, &inner);
        let _ = runtime::caps::drop_cap(fs.client().channel().token());
        r
    }
}

/// The whole file `path` from a driver speaking the RAMFS protocol.
fn load(fs: &RamfsClient, path: &str) -> Result<Vec<u8>, ProcessError> {
    let fs_err = |e: CallError<ramfs::proto::Error>| match e {
        CallError::Server(ramfs::proto::Error::NotFound | ramfs::proto::Error::NotAFile) => ProcessError::NotFound,
        CallError::Server(ramfs::proto::Error::BadPath) => ProcessError::BadPath,
        _ => ProcessError::Io,
    };
    let info = fs.stat(path).map_err(fs_err)?;
    if info.kind != Kind::File {
        return Err(ProcessError::NotFound);
    }
    let size = usize::try_from(info.size).map_err(|_| ProcessError::OutOfMemory)?;
    let mut out = Vec::new();
    out.try_reserve_exact(size).map_err(|_| ProcessError::OutOfMemory)?;
    let mut page = Box::new(Page::zeroed());
    while out.len() < size {
        fs.load(info.handle, out.len() as u64, &mut page).map_err(fs_err)?;
        let n = (size - out.len()).min(abi::PAGE_SIZE);
        out.extend_from_slice(&page.0[..n]);
    }
    Ok(out)
}

/// `boot:/<file>` from the boot module itself (before VFS exists).
fn boot_module(path: &str) -> Result<Vec<u8>, ProcessError> {
    let file = path.strip_prefix(system::config::BOOT_PREFIX).ok_or(ProcessError::BadPath)?;
    let archive = runtime::ramfs::archive().map_err(|_| ProcessError::Io)?;
    let entry = archive.find(file).filter(|e| e.is_file()).ok_or(ProcessError::NotFound)?;
    Ok(entry.data.to_vec())
}

/// The helper that starts first threads (see [`Machine`]): receives
/// `(process token, entry, stack, priority)` on `chan`, answers with the
/// kernel's error code or 0. Only `system`'s serving thread holds a send
/// capability for the channel, and it sends only what
/// `runtime::process::build` prepared.
pub fn starter(chan: u64) {
    let chan = Channel::from_token(chan);
    let Ok(mut window) = Window::new() else { return };
    loop {
        let Ok(m) = chan.receive(&mut window, abi::FOREVER) else { return };
        let word = |i: usize| m.data().get(i * 8..i * 8 + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        let (p, entry, rsp, priority) = (Process::from_token(word(0)), word(1), word(2), word(3));
        let r = match u8::try_from(priority) {
            Ok(priority) if m.size == 32 => Kernel.start(&p, entry, rsp, priority),
            _ => Err(abi::Error::InvalidArgument),
        };
        let _ = m.reply(r.err().map_or(0, |e| e as u64), 0);
    }
}
