//! Boot media for real PCs, made with GRUB: a hybrid ISO (El Torito for
//! BIOS and UEFI, plus an MBR and an EFI system partition, so the same file
//! boots from a CD or, written with `dd`, from a USB stick) and a folder for
//! UEFI network boot (GRUB's EFI network image, which fetches its
//! configuration, the kernel and the RAMFS over TFTP).
//!
//! GRUB loads the kernel through its multiboot-2 header, so on UEFI the
//! kernel receives the EFI memory map and the ACPI RSDP. The menu runs on
//! the serial port (COM1, 115200 8N1) and the screen; besides the normal
//! boot it offers one entry per in-guest test suite (`test=<suite>`), which
//! runs the suite, reports over serial and powers off. An SMBIOS OEM string
//! `microkernel-entry=<id>` (QEMU: `-smbios type=11,value=...`) picks an
//! entry by its id ([`ENTRY_NORMAL`], [`test_entry`]) without waiting, so a
//! test rig can run the suites from the very same ISO.
//!
//! The tools come from Debian packages; when one is missing the builder
//! names the package and still writes the plain image.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The in-guest test suites (`ktest <suite>`), one boot-menu entry each;
/// `ci test` boots each of them too.
pub const TEST_SUITES: &[&str] = &["boot", "ipc", "caps", "mem", "hostile", "servers", "process", "devices"];

/// Kernel options a suite boots with besides `test=<suite>`. The hostile
/// suite starts after the kernel sent itself interrupts on unused vectors
/// (as a stray MSI would), so its cases also show the system goes on.
pub const SUITE_OPTIONS: &[(&str, &str)] = &[("hostile", "selftest=irq")];

/// The kernel command line that runs `suite`.
pub fn suite_args(suite: &str) -> String {
    match SUITE_OPTIONS.iter().find(|(s, _)| *s == suite) {
        Some((_, options)) => format!("test={suite} {options}"),
        None => format!("test={suite}"),
    }
}

/// The ISO's file name in the image folder.
pub const ISO: &str = "kernel.iso";
/// The UEFI network-boot folder in the image folder.
pub const UEFI_NET: &str = "uefi-net";
/// GRUB's EFI network image inside [`UEFI_NET`] (the DHCP boot file).
pub const UEFI_NET_LOADER: &str = "boot/grub/x86_64-efi/core.efi";

const GRUB_PC: &str = "/usr/lib/grub/i386-pc";
const GRUB_EFI: &str = "/usr/lib/grub/x86_64-efi";

/// The menu id of the normal boot.
pub const ENTRY_NORMAL: &str = "normal";
/// The SMBIOS OEM string prefix (type 11) that picks a menu entry.
pub const ENTRY_OEM_PREFIX: &str = "microkernel-entry=";

/// The menu id of the entry that runs `suite`.
pub fn test_entry(suite: &str) -> String {
    format!("test-{suite}")
}

/// What a medium needs and which Debian package provides it.
struct Tool {
    /// A command on PATH, or an absolute path that must exist.
    what: &'static str,
    package: &'static str,
}

const ISO_TOOLS: &[Tool] = &[
    Tool { what: "grub-mkrescue", package: "grub-common" },
    Tool { what: GRUB_PC, package: "grub-pc-bin" },
    Tool { what: GRUB_EFI, package: "grub-efi-amd64-bin" },
    Tool { what: "xorriso", package: "xorriso" },
    Tool { what: "mformat", package: "mtools" },
];

const NET_TOOLS: &[Tool] =
    &[Tool { what: "grub-mknetdir", package: "grub-common" }, Tool { what: GRUB_EFI, package: "grub-efi-amd64-bin" }];

fn on_path(cmd: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(cmd).is_file())
}

/// The packages missing for `tools`, without repeats.
fn missing(tools: &[Tool]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for t in tools {
        let present = if t.what.starts_with('/') { Path::new(t.what).exists() } else { on_path(t.what) };
        if !present && !v.contains(&t.package) {
            v.push(t.package);
        }
    }
    v
}

/// Where GRUB finds the files: on the ISO under `/boot`, on the network at
/// the TFTP root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Iso,
    Network,
}

/// The GRUB menu for `layout`.
pub fn grub_cfg(layout: Layout) -> String {
    let dir = match layout {
        Layout::Iso => "/boot",
        Layout::Network => "",
    };
    let entry = |title: &str, id: &str, args: &str| {
        let args = if args.is_empty() { String::new() } else { format!(" {args}") };
        format!(
            "menuentry \"{title}\" --id {id} {{\n    echo \"loading {dir}/kernel.elf{args}\"\n    multiboot2 {dir}/kernel.elf{args}\n    module2 {dir}/ramfs.img ramfs.img\n    boot\n}}\n"
        )
    };
    let mut s = String::from(
        "# Written by image-builder. The menu is on COM1 (115200 8N1) and the screen.\n\
         serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         set timeout=3\n\
         set default=0\n",
    );
    s += &format!(
        "# An SMBIOS OEM string {ENTRY_OEM_PREFIX}<id> picks the entry with that id at once.\n\
         if smbios --type 11 --get-string 4 --set oem; then\n\
         \x20   if regexp --set 1:entry '^{ENTRY_OEM_PREFIX}(.+)$' \"$oem\"; then\n\
         \x20       set default=\"$entry\"\n\
         \x20       set timeout=0\n\
         \x20   fi\n\
         fi\n"
    );
    s += &entry("microkernel", ENTRY_NORMAL, "");
    for suite in TEST_SUITES {
        let title = format!("microkernel: run the {suite} test suite (report on serial, then power off)");
        s += &entry(&title, &test_entry(suite), &suite_args(suite));
    }
    s
}

/// What became of one medium.
pub enum Made {
    Written(PathBuf),
    /// Not made: these packages are missing.
    Missing(Vec<&'static str>),
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed ({}):\n{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

fn write(path: &Path, data: &[u8]) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))
}

/// Write `out/kernel.iso` from the kernel and RAMFS.
pub fn build_iso(out: &Path, kernel: &[u8], ramfs: &[u8]) -> Result<Made, String> {
    let lacking = missing(ISO_TOOLS);
    if !lacking.is_empty() {
        return Ok(Made::Missing(lacking));
    }
    let root = out.join("iso-root");
    let _ = std::fs::remove_dir_all(&root);
    write(&root.join("boot/kernel.elf"), kernel)?;
    write(&root.join("boot/ramfs.img"), ramfs)?;
    write(&root.join("boot/grub/grub.cfg"), grub_cfg(Layout::Iso).as_bytes())?;
    let iso = out.join(ISO);
    run(Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&iso)
        .args(["--locales=", "--themes=", "--fonts="])
        .arg(&root))?;
    Ok(Made::Written(iso))
}

/// Write the UEFI network-boot folder `out/uefi-net`.
pub fn build_uefi_net(out: &Path, kernel: &[u8], ramfs: &[u8]) -> Result<Made, String> {
    let lacking = missing(NET_TOOLS);
    if !lacking.is_empty() {
        return Ok(Made::Missing(lacking));
    }
    let dir = out.join(UEFI_NET);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    run(Command::new("grub-mknetdir")
        .arg(format!("--net-directory={}", dir.display()))
        .args(["--subdir=boot/grub", "-d", GRUB_EFI, "--locales=", "--themes=", "--fonts="]))?;
    if !dir.join(UEFI_NET_LOADER).is_file() {
        return Err(format!("grub-mknetdir made no {UEFI_NET_LOADER}"));
    }
    write(&dir.join("boot/grub/grub.cfg"), grub_cfg(Layout::Network).as_bytes())?;
    write(&dir.join("kernel.elf"), kernel)?;
    write(&dir.join("ramfs.img"), ramfs)?;
    Ok(Made::Written(dir))
}

/// The line the builder prints for a medium.
pub fn describe(what: &str, made: &Result<Made, String>) -> String {
    match made {
        Ok(Made::Written(p)) => format!("image-builder: {what}: {}", p.display()),
        Ok(Made::Missing(pkgs)) => format!(
            "image-builder: {what}: not made: install {} (`apt-get install -y {}`, or run ci/setup.sh)",
            pkgs.join(", "),
            pkgs.join(" ")
        ),
        Err(e) => format!("image-builder: {what}: failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_are_named_by_package_once() {
        let tools = [
            Tool { what: "sh", package: "dash" },
            Tool { what: "no-such-command-for-media-test", package: "pkg-a" },
            Tool { what: "/no/such/dir/for/media-test", package: "pkg-b" },
            Tool { what: "/no/such/other/dir", package: "pkg-a" },
            Tool { what: "/", package: "root" },
        ];
        assert_eq!(missing(&tools), ["pkg-a", "pkg-b"]);
        let line = describe("ISO", &Ok(Made::Missing(vec!["grub-pc-bin", "xorriso"])));
        assert!(line.contains("not made: install grub-pc-bin, xorriso (`apt-get install -y grub-pc-bin xorriso`"), "{line}");
    }
}
