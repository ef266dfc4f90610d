//! The boot configuration: which servers `system` starts, in what order,
//! with which capabilities and arguments.
//!
//! The file (`servers/system/boot.conf`) is meant to be read and edited by
//! a person, one server per line:
//!
//! ```text
//! # comment
//! <name> <path> [key=value | flag]... [-- <argument>...]
//! ```
//!
//! `path` is `boot:/<file>`. Keys: `priority=N` (1–31, default 8),
//! `stack=N` (KiB, default 256), `caps=a,b,...` (see [`CapName`]),
//! `service=PROVIDER::TYPE` (the name the server registers: it counts as up
//! when the name can be found), `mount=PREFIX` (the file system it mounts
//! with VFS: up when VFS finds a driver for `PREFIX:`), `names=PROVIDER`
//! (or `names=*`): the scope of the `names` capability it gets, the one
//! provider it may register names under (`*`: all of them, for a server
//! that hands scopes on); without it the capability only finds names, so no
//! boot server can pose as another's service; a `mount=PREFIX` server needs
//! `names=PREFIX` (VFS mounts only a channel published as `PREFIX::mount`,
//! see `vfs::mount_name`). Flags: `restart` (restart it when it ends,
//! with back-off), `bootstrap` (load it from the boot module directly:
//! the servers that make up the file system, which must come first,
//! before VFS exists; every later server is loaded through VFS) and
//! `console` (only at a normal boot: not when `test=` runs the tests,
//! whose console it is).
//!
//! The image builder parses and [`check`]s the file, so a typo fails the
//! build; `system` parses the same bytes from the RAMFS at boot.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use abi::{cap_id, SyscallClass};

/// Where the image builder puts the file in the RAMFS.
pub const RAMFS_PATH: &str = "etc/boot.conf";
/// The prefix of paths on the boot file system.
pub const BOOT_PREFIX: &str = "boot:/";
/// Stack size when the line gives none, in KiB.
pub const DEFAULT_STACK_KIB: u64 = 256;
/// Priority when the line gives none.
pub const DEFAULT_PRIORITY: u8 = 8;

/// A capability `system` can hand to a boot server (it gets `system`'s own,
/// with every right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapName {
    Class(SyscallClass),
    /// The boot RAMFS image (read-only physical range).
    Ramfs,
    /// Device memory.
    DeviceMemory,
    /// COM1's I/O ports (read and write).
    Com1,
    /// COM1's I/O ports, read-only (the serial console's input, for the
    /// shell: the kernel stays the only writer of the UART's registers).
    Com1Rx,
    /// COM1's interrupt line (ISA IRQ 4), for the shell.
    Com1Irq,
    /// The copy of the ACPI RSDP the kernel was handed (for DEVMAN).
    AcpiRsdp,
    /// `SYSTEM::PROCESS`'s admin key ([`crate::protocol::ADMIN_CAP`]):
    /// may kill any program `system` started. Handed with DELEGATE only
    /// (what presenting it takes), not `system`'s every right.
    Admin,
}

impl CapName {
    const TABLE: &'static [(&'static str, CapName)] = &[
        ("debug_print", CapName::Class(SyscallClass::DebugPrint)),
        ("thread", CapName::Class(SyscallClass::Thread)),
        ("channel_create", CapName::Class(SyscallClass::ChannelCreate)),
        ("names", CapName::Class(SyscallClass::Names)),
        ("dma", CapName::Class(SyscallClass::Dma)),
        ("process_create", CapName::Class(SyscallClass::ProcessCreate)),
        ("debug_ipc", CapName::Class(SyscallClass::DebugIpc)),
        ("power", CapName::Class(SyscallClass::Power)),
        ("irq", CapName::Class(SyscallClass::Irq)),
        ("ramfs", CapName::Ramfs),
        ("device_memory", CapName::DeviceMemory),
        ("com1", CapName::Com1),
        ("com1_rx", CapName::Com1Rx),
        ("com1_irq", CapName::Com1Irq),
        ("acpi_rsdp", CapName::AcpiRsdp),
        ("admin", CapName::Admin),
    ];

    pub fn parse(s: &str) -> Option<CapName> {
        Self::TABLE.iter().find(|(n, _)| *n == s).map(|&(_, c)| c)
    }

    pub fn name(self) -> &'static str {
        Self::TABLE.iter().find(|(_, c)| *c == self).map_or("?", |(n, _)| n)
    }

    /// The rights the server gets (`system` has them all).
    pub fn rights(self) -> u32 {
        match self {
            CapName::Com1Rx => abi::IoPortRights::READ.bits(),
            _ => abi::RightsMask::ALL.bits(),
        }
    }

    /// The start-block id the server receives it under.
    pub fn id(self) -> u64 {
        match self {
            CapName::Class(c) => cap_id::class(c),
            CapName::Ramfs => cap_id::RAMFS,
            CapName::DeviceMemory => cap_id::DEVICE_MEMORY,
            CapName::Com1 | CapName::Com1Rx => cap_id::COM1,
            CapName::Com1Irq => cap_id::COM1_IRQ,
            CapName::AcpiRsdp => cap_id::ACPI_RSDP,
            CapName::Admin => crate::protocol::ADMIN_CAP,
        }
    }
}

/// Which names a boot server may register (the scope `system` narrows its
/// own all-scope `Names` capability to, see `abi::names_scope`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Names {
    /// None: find only (no `names=`).
    FindOnly,
    /// `names=PROVIDER`.
    Provider(String),
    /// `names=*`.
    All,
}

impl Names {
    /// Whether a server with this scope may register `name`.
    pub fn covers(&self, name: &str) -> bool {
        match self {
            Names::FindOnly => false,
            Names::Provider(p) => abi::names_scope::provider(name.as_bytes()) == Some(p.as_bytes()),
            Names::All => true,
        }
    }
}

/// One server to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// `boot:/<file>`.
    pub path: String,
    pub priority: u8,
    /// First-thread stack in bytes.
    pub stack: u64,
    pub caps: Vec<CapName>,
    /// The scope of its `names` capability.
    pub names: Names,
    pub service: Option<String>,
    /// The file system prefix the server mounts with VFS; it is "up" once
    /// VFS finds a driver for `<prefix>:`.
    pub mount: Option<String>,
    pub restart: bool,
    pub bootstrap: bool,
    /// Started only at a normal boot, not when the machine runs the tests
    /// (`test=`): the serial console is theirs then.
    pub console: bool,
    /// Arguments after the program name.
    pub args: Vec<String>,
}

impl Entry {
    /// The file's name in the RAMFS.
    pub fn file(&self) -> &str {
        self.path.strip_prefix(BOOT_PREFIX).unwrap_or(&self.path)
    }
}

/// What is wrong with the configuration, and on which line (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A line with a name but no path.
    MissingPath,
    /// The path does not start with `boot:/`.
    BadPath(String),
    UnknownKey(String),
    BadValue(String),
    UnknownCap(String),
    DuplicateName(String),
    DuplicateService(String),
    /// `names=` without `names` among the capabilities.
    NamesWithoutCap,
    /// The `service=` name is outside the `names=` scope: it could never
    /// register it.
    ServiceOutsideNames(String),
    /// `mount=PREFIX` without `names=PREFIX` (or `*`): the server could not
    /// publish `PREFIX::mount`, VFS's proof of the mount capability.
    MountOutsideNames(String),
    /// A `bootstrap` server after one that is loaded through VFS.
    BootstrapAfterVfs(String),
    /// The RAMFS has no such file.
    NoSuchFile(String),
    /// A server without `bootstrap` before any bootstrap server exists.
    NoBootstrap,
    /// Not valid UTF-8.
    NotText,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "boot.conf line {}: {:?}", self.line, self.kind)
    }
}

/// Parse the whole file.
pub fn parse(text: &str) -> Result<Vec<Entry>, ConfigError> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |kind| ConfigError { line, kind };
        let content = raw.split('#').next().unwrap_or("");
        let mut words = content.split_whitespace();
        let Some(name) = words.next() else { continue };
        let path = words.next().ok_or(err(ErrorKind::MissingPath))?;
        if path.strip_prefix(BOOT_PREFIX).is_none_or(|f| f.is_empty()) {
            return Err(err(ErrorKind::BadPath(path.to_string())));
        }
        let mut e = Entry {
            name: name.to_string(),
            path: path.to_string(),
            priority: DEFAULT_PRIORITY,
            stack: DEFAULT_STACK_KIB * 1024,
            caps: Vec::new(),
            names: Names::FindOnly,
            service: None,
            mount: None,
            restart: false,
            bootstrap: false,
            console: false,
            args: Vec::new(),
        };
        while let Some(w) = words.next() {
            if w == "--" {
                e.args = words.by_ref().map(|a| a.to_string()).collect();
                break;
            }
            match w.split_once('=') {
                None if w == "restart" => e.restart = true,
                None if w == "bootstrap" => e.bootstrap = true,
                None if w == "console" => e.console = true,
                None => return Err(err(ErrorKind::UnknownKey(w.to_string()))),
                Some(("priority", v)) => {
                    e.priority = v.parse().ok().filter(|p| (1..=abi::limits::INIT_PRIORITY).contains(p)).ok_or(err(ErrorKind::BadValue(w.to_string())))?
                }
                Some(("stack", v)) => {
                    let kib: u64 = v.parse().ok().filter(|k| *k > 0 && k % 4 == 0 && *k <= 64 * 1024).ok_or(err(ErrorKind::BadValue(w.to_string())))?;
                    e.stack = kib * 1024;
                }
                Some(("caps", v)) => {
                    for c in v.split(',') {
                        e.caps.push(CapName::parse(c).ok_or(err(ErrorKind::UnknownCap(c.to_string())))?);
                    }
                }
                Some(("names", "*")) => e.names = Names::All,
                Some(("names", v)) => {
                    if !abi::names_scope::valid_provider(v.as_bytes()) {
                        return Err(err(ErrorKind::BadValue(w.to_string())));
                    }
                    e.names = Names::Provider(v.to_string());
                }
                Some(("service", v)) => {
                    if v.is_empty() || v.len() > abi::limits::NAME_LEN || !v.contains("::") {
                        return Err(err(ErrorKind::BadValue(w.to_string())));
                    }
                    e.service = Some(v.to_string());
                }
                Some(("mount", v)) => {
                    vfs::path::check_prefix(v).map_err(|_| err(ErrorKind::BadValue(w.to_string())))?;
                    e.mount = Some(v.to_string());
                }
                Some(_) => return Err(err(ErrorKind::UnknownKey(w.to_string()))),
            }
        }
        if e.names != Names::FindOnly && !e.caps.contains(&CapName::Class(SyscallClass::Names)) {
            return Err(err(ErrorKind::NamesWithoutCap));
        }
        if let Some(s) = e.service.as_ref().filter(|s| !e.names.covers(s)) {
            return Err(err(ErrorKind::ServiceOutsideNames(s.clone())));
        }
        if let Some(m) = e.mount.as_ref().filter(|m| !e.names.covers(&vfs::mount_name(m))) {
            return Err(err(ErrorKind::MountOutsideNames(m.clone())));
        }
        if out.iter().any(|o| o.name == e.name) {
            return Err(err(ErrorKind::DuplicateName(e.name)));
        }
        if let Some(s) = &e.service {
            if out.iter().any(|o| o.service.as_ref() == Some(s)) {
                return Err(err(ErrorKind::DuplicateService(s.clone())));
            }
        }
        if e.bootstrap && out.iter().any(|o| !o.bootstrap) {
            return Err(err(ErrorKind::BootstrapAfterVfs(e.name)));
        }
        if !e.bootstrap && out.is_empty() {
            return Err(err(ErrorKind::NoBootstrap));
        }
        out.push(e);
    }
    Ok(out)
}

/// Parse and check against the files the RAMFS will hold: what the image
/// builder runs, so a mistake fails the build.
pub fn check(bytes: &[u8], files: &[&str]) -> Result<Vec<Entry>, ConfigError> {
    let text = core::str::from_utf8(bytes).map_err(|_| ConfigError { line: 0, kind: ErrorKind::NotText })?;
    let entries = parse(text)?;
    for (i, e) in entries.iter().enumerate() {
        if !files.contains(&e.file()) {
            let line = text.lines().enumerate().filter(|(_, l)| l.split_whitespace().next() == Some(&e.name)).map(|(n, _)| n + 1).next().unwrap_or(i);
            return Err(ConfigError { line, kind: ErrorKind::NoSuchFile(e.path.clone()) });
        }
    }
    Ok(entries)
}
