//! The boot checks, as data.
//!
//! Adding an in-guest suite is one word in [`SUITES`]; changing what a
//! normal boot must print is one line in [`BOOT_LINES`]. Everything that
//! runs, judges and reports a check reads it from here.

use std::time::Duration;

/// Lines every normal boot (direct or over the network) must print, in any
/// order. Patterns in the subset of [`crate::pattern`].
pub const BOOT_LINES: &[&str] = &[
    r"kernel \S+ booting",
    r"memory map: ",
    r"memory: \d+ MiB usable",
    // Whether TLB entries are tagged per process: `off`, or `on (invpcid
    // yes|no)` (QEMU's TCG has no PCID; the hostile suite checks the mode
    // against CPUID).
    r"^\[info \] pcid: o\S+.*$",
    r"started process \d+ 'system'",
    r"system: v\S+ started in user mode \(CPL 3\)",
    r"system: ramfs: \d+ entries",
    r"system:   file +\d+ system",
    r"system:   file +\d+ ktest",
    r"system: started vfs",
    r"system: started ramfs",
    r"vfs: serving SYSTEM::VFS",
    r"ramfs: serving boot: \(\d+ objects\)",
    // The RSDP the kernel handed over, and the root table it points to,
    // both checked (signature and checksums) by `system`.
    r"system: acpi: RSDP revision \d+ \(.*\) at 0x\w+, checksum ok$",
    r"system: acpi: \wSDT at 0x\w+, \d+ bytes, checksum ok$",
    r"system: boot servers up: vfs ramfs devman shell in \d+ ms",
    r"system: started devman",
    r"devman: serving DEVMAN::REGISTRY",
    r"devman: RSDP at 0x\w+ \(.+\), revision \d+, \S+ at 0x\w+$",
    r"devman: MCFG: 1 ECAM window\(s\)",
    r"devman: started pcidrv \(pid \d+\) for segment 0 buses 00-ff at 0x\w+$",
    r"pcidrv: 00:00\.0 8086:29c0 class 06\.00\.00$",
    r"pcidrv: 00:1f\.2 8086:2922 class 01\.06\.01 BAR4 io 0x\w+\+0x20 BAR5 mem32 0x\w+\+0x1000$",
    r"pcidrv: registered \d+ functions with DEVMAN::REGISTRY",
    r"system: ready",
    // The boot ends at the serial shell's prompt.
    r"system: started shell",
    r"shell: ready; type help for the commands",
];

/// What a boot from GRUB's media under SeaBIOS must print besides the boot
/// lines: the multiboot-2 handover from a BIOS, and (the media checks run
/// on `-cpu qemu64`, which has no RDRAND/RDSEED) a token key from the
/// other sources, named in the log.
pub const BIOS_MEDIA_LINES: &[&str] = &[r"loader: Multiboot2, firmware BIOS,", TOKEN_SOURCES];
/// The same under OVMF: UEFI, entered at the kernel's EFI entry, which
/// took randomness from the firmware (OVMF's EFI_RNG_PROTOCOL over the
/// virtio-rng device the checks add) and exited boot services itself.
pub const UEFI_MEDIA_LINES: &[&str] = &[
    r"loader: Multiboot2, firmware UEFI,",
    r"efi: the kernel exited boot services \(\d+ bytes of memory map\); 32 random bytes from EFI_RNG_PROTOCOL$",
    r"\[info \] capability tokens keyed from EFI RNG\+TSC jitter\+RTC\+memory map\+TSC$",
];
/// The token-key line without a hardware RNG: every other source used.
pub const TOKEN_SOURCES: &str = r"\[info \] capability tokens keyed from TSC jitter\+RTC\+memory map\+TSC$";

/// The last line DEVMAN's PCI bus driver prints at boot (the serial-shell
/// session waits for it before typing).
pub const DEVICES_REGISTERED: &str = "pcidrv: registered";

/// Text no in-guest suite's log may contain: `system` starts no `console`
/// server (the shell) under `test=`, whose serial line is the tests'.
pub const SUITE_NEVER: &[&str] = &["system: started shell", "shell: ready", "shell: COM1 input"];

/// Text that fails any check the moment a line contains it.
pub const FATAL: &[&str] = &["KERNEL PANIC", "KERNEL FAULT"];

/// What a kernel panic must print (`selftest=panic`): the message with its
/// place, then return addresses in kernel text.
pub const PANIC_LINES: &[&str] = &[
    r"^KERNEL PANIC: panicked at kernel/src/\S+\.rs:\d+:\d+:",
    r"^self-test: panic on request$",
    r"^backtrace:$",
    r"^  #0 0xffffffff80\w+$",
];

/// What a CPU exception in the kernel must print (`selftest=fault` reads
/// an unmapped kernel address): vector, error code, RIP, RSP, CR2, then a
/// backtrace.
pub const FAULT_LINES: &[&str] = &[
    r"KERNEL FAULT: page fault \(vector 14, error 0x0\) at rip 0xffffffff80\w+, rsp 0x\w+, cr2 0xffffc00000000000$",
    r"^backtrace:$",
    r"^  #0 0xffffffff80\w+$",
];

/// What SMAP must do to a kernel read of user memory outside `stac`/`clac`
/// (`selftest=smap`): a protection fault on a present page (error 0x1).
pub const SMAP_LINES: &[&str] = &[
    r"^\[info \] cpu: smep on, smap on, umip on$",
    r"KERNEL FAULT: page fault \(vector 14, error 0x1\) at rip 0xffffffff80\w+, rsp 0x\w+, cr2 0x400000$",
    r"^backtrace:$",
];

/// What SMEP must do when the kernel jumps to a user page
/// (`selftest=smep`): an instruction-fetch fault (error 0x11) at the page.
pub const SMEP_LINES: &[&str] = &[
    r"^\[info \] cpu: smep on, smap on, umip on$",
    r"KERNEL FAULT: page fault \(vector 14, error 0x11\) at rip 0x400000, rsp 0x\w+, cr2 0x400000$",
    r"^backtrace:$",
];

/// Lines that must appear once the log is symbolized (a ` [function at
/// file:line]` note after each address, see [`crate::symbolize`]): the
/// kernel's reports name the self-test that stopped it, and a killed
/// program's report names the test child's code.
pub const SYMBOLIZED_LINES: &[(&str, &[&str])] = &[
    ("panic", &[r"^  #\d+ 0x\w+ \[.*kernel::boot::selftest::self_test at kernel/src/boot/selftest\.rs:\d+"]),
    ("fault", &[r"KERNEL FAULT: .* \[.*kernel::boot::selftest::self_test at kernel/src/boot/selftest\.rs:\d+"]),
    ("boot", &[r"fault: process \d+ 'ktest-child' thread \d+: invalid opcode .* \[ktest::child::fault at ci/ktest/src/child\.rs:\d+"]),
];

/// The in-guest suites `ci test` boots, each with `test=<suite>` (the
/// boot media have a menu entry for each).
pub const SUITES: &[&str] = image_builder::media::TEST_SUITES;

/// What a plain boot with a disk on the AHCI controller (`plain-disk`)
/// prints besides [`BOOT_LINES`]: PCIDRV starting the driver and the
/// driver's IDENTIFY line (the runner attaches one 4 MiB image).
pub const PLAIN_DISK_LINES: &[&str] = &[
    r"pcidrv: 0000:00:1f\.2 started ahcidrv \(pid \d+\)$",
    r#"ahcidrv: disk 0 \(port 0\): model "QEMU HARDDISK", serial "\S+", 8192 sectors \(4 MiB\)$"#,
];

/// The AHCI suites: booted with the disk images the runner makes
/// ([`crate::disk`]), so they are not on the boot media's menu.
pub const DISK_SUITES: &[&str] = &["disk", "disk-cdrom", "disk-none"];


/// The syscall fuzzer's checks: (check, kernel command line, timeout).
/// `fuzz` (bounded, part of `ci test`) and `fuzz-full` (the million calls,
/// run on request: `cargo run -p ci -- boot fuzz-full`). Either takes
/// `fuzz_seed=<seed>` after its name to repeat a run.
pub const FUZZ_CHECKS: [(&str, &str, Duration); 2] = [
    ("fuzz", "test=fuzz fuzz_calls=100000", SUITE_TIMEOUT),
    ("fuzz-full", "test=fuzz fuzz_calls=1000000", Duration::from_secs(1200)),
];

/// What the fuzzer must print besides its results: the seed, so a failed
/// run can be repeated.
const FUZZ_LINES: &[&str] = &[r"^fuzz: seed \d+, \d+ calls"];

/// In-guest suites that run under `-icount` (the guest TSC and the timer
/// both count guest instructions, so timing checks are exact whatever the
/// host is doing): `ticks` compares the kernel's tick count with the TSC
/// across syscalls that map and tear down 1 GiB, so its machine has more RAM.
pub const ICOUNT_SUITES: &[&str] = &["ticks"];

/// QEMU arguments of the [`ICOUNT_SUITES`] (a later `-m` overrides the default).
pub const ICOUNT_SUITE_ARGS: &[&str] = &["-icount", "shift=0,align=off,sleep=off", "-m", "1536M"];

/// Lines a suite's log must hold besides its results: what no case can
/// check from inside the guest.
pub const SUITE_LINES: &[(&str, &[&str])] = &[
    // The monitoring case switches tracing on around one send; the trace
    // goes to the kernel log only.
    ("ipc", &[r"ipc: t\d+ send ch\d+ tag 0x2 size 0", r"ipc: t\d+ reply t\d+ result"]),
    // The sibling writing a lent page (not present for it): a user write
    // to a not-present page (error 0x6), reported, and the process killed.
    // The CPU's guards are on, and each unexpected interrupt was logged
    // (`selftest=irq`; 17, 14 and 8 are exception vectors with an error
    // code, which an external interrupt arrives without).
    (
        "hostile",
        &[
            r"'ktest-child' thread \d+: page fault \(vector 14, error 0x6\)",
            r"'ktest-child' killed by fault \(vector 14\)",
            // Ring-0 instructions (#GP), the thread returning past user
            // space (#PF).
            r"process \d+ 'ktest-child' killed by fault \(vector 13\)",
            r"process \d+ 'ktest-edge' killed by fault \(vector 14\)",
            r"^\[info \] cpu: smep on, smap on, umip on$",
            r"unexpected interrupt 64$",
            r"unexpected interrupt 153$",
            r"unexpected interrupt 254$",
            r"unexpected interrupt 17$",
            r"unexpected interrupt 14$",
            r"unexpected interrupt 8$",
            r"unexpected interrupt 6$",
        ],
    ),
    // `system` logs every end and restart of a child, and a held server.
    (
        "process",
        &[
            r"system: named \(pid \d+\) ended: killed",
            r"system: named \(pid \d+\) ended: fault \(vector 14\)",
            r"system: restarted named as pid \d+ \(restart 2\)",
            r"system: crasher held: ended \d+ times in a row",
        ],
    ),
];

/// The benchmark suite; only `ci bench` (or `ci boot bench`) runs it.
pub const BENCH_SUITE: &str = "bench";

pub const PLAIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const SUITE_TIMEOUT: Duration = Duration::from_secs(120);
pub const NETBOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// SeaBIOS with GRUB's menu (3 s) in front of the kernel.
pub const BIOS_MEDIA_TIMEOUT: Duration = Duration::from_secs(90);
/// OVMF takes tens of seconds under TCG on a shared machine.
pub const UEFI_MEDIA_TIMEOUT: Duration = Duration::from_secs(180);
pub const BENCH_TIMEOUT: Duration = Duration::from_secs(300);

/// How the machine is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// QEMU loads the kernel and RAMFS itself (`-kernel`/`-initrd`) with
    /// this kernel command line.
    Direct { append: String },
    /// The firmware's iPXE fetches the image over TFTP.
    Netboot,
    /// GRUB's boot media (`image_builder::media`) under a real firmware;
    /// with a suite, an SMBIOS OEM string picks that suite's menu entry.
    Media { firmware: Firmware, medium: Medium, suite: Option<&'static str> },
}

/// The firmware a media check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// QEMU's default BIOS.
    SeaBios,
    /// UEFI (Debian's `ovmf` package).
    Ovmf,
}

/// How the firmware reaches GRUB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// The hybrid ISO as a CD.
    Cdrom,
    /// The same file as a USB stick's whole disk (what `dd` writes).
    UsbStick,
    /// GRUB's EFI network image over QEMU's TFTP (`uefi-net/`).
    Network,
}

/// What counts as a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Every pattern appeared. The kernel never powers off in this mode, so
    /// the run is stopped as soon as the last one appears.
    Lines(&'static [&'static str]),
    /// The in-guest driver powered off with the pass code, reported
    /// `N passed, 0 failed` with N > 0, and printed no `FAIL` line.
    Suite,
    /// The kernel stopped on purpose (a self-test): every pattern appeared
    /// and QEMU exited with the panic status. The one pass where a fatal
    /// line is the point rather than a failure.
    Crash(&'static [&'static str]),
}

/// One boot check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub boot: Boot,
    pub pass: Pass,
    /// Further lines that must appear.
    pub also: &'static [&'static str],
    pub timeout: Duration,
    /// Extra QEMU arguments.
    pub qemu: &'static [&'static str],
}

impl Check {
    fn plain() -> Check {
        Check {
            name: "plain".into(),
            boot: Boot::Direct { append: String::new() },
            pass: Pass::Lines(BOOT_LINES),
            also: &[],
            timeout: PLAIN_TIMEOUT,
            qemu: &[],
        }
    }

    /// A plain boot with a disk attached ([`crate::disk`] makes it).
    fn plain_disk() -> Check {
        Check { name: "plain-disk".into(), also: PLAIN_DISK_LINES, ..Check::plain() }
    }

    fn suite(suite: &str, timeout: Duration) -> Check {
        Check {
            name: suite.into(),
            boot: Boot::Direct { append: image_builder::media::suite_args(suite) },
            pass: Pass::Suite,
            also: SUITE_LINES.iter().find(|(name, _)| *name == suite).map_or(&[], |(_, lines)| lines),
            timeout,
            qemu: if ICOUNT_SUITES.contains(&suite) { ICOUNT_SUITE_ARGS } else { &[] },
        }
    }

    fn fuzz(i: usize) -> Check {
        let (name, append, timeout) = FUZZ_CHECKS[i];
        Check { name: name.into(), boot: Boot::Direct { append: append.into() }, pass: Pass::Suite, also: FUZZ_LINES, timeout, qemu: &[] }
    }

    fn crash(what: &str, lines: &'static [&'static str]) -> Check {
        Check {
            name: what.into(),
            boot: Boot::Direct { append: format!("selftest={what}") },
            pass: Pass::Crash(lines),
            also: &[],
            timeout: PLAIN_TIMEOUT,
            qemu: &[],
        }
    }

    fn netboot() -> Check {
        Check {
            name: "netboot".into(),
            boot: Boot::Netboot,
            pass: Pass::Lines(BOOT_LINES),
            also: &[],
            timeout: NETBOOT_TIMEOUT,
            qemu: &[],
        }
    }

    fn media(name: &str, firmware: Firmware, medium: Medium) -> Check {
        let (also, timeout) = match firmware {
            Firmware::SeaBios => (BIOS_MEDIA_LINES, BIOS_MEDIA_TIMEOUT),
            Firmware::Ovmf => (UEFI_MEDIA_LINES, UEFI_MEDIA_TIMEOUT),
        };
        Check {
            name: name.into(),
            boot: Boot::Media { firmware, medium, suite: None },
            pass: Pass::Lines(BOOT_LINES),
            also,
            timeout,
            qemu: &[],
        }
    }

    /// The ISO's menu entry for `suite`, as on a real machine.
    fn media_suite(name: &str, suite: &'static str) -> Check {
        Check {
            name: name.into(),
            boot: Boot::Media { firmware: Firmware::SeaBios, medium: Medium::Cdrom, suite: Some(suite) },
            pass: Pass::Suite,
            also: BIOS_MEDIA_LINES,
            timeout: BIOS_MEDIA_TIMEOUT,
            qemu: &[],
        }
    }

    /// One line for `ci list`.
    pub fn describe(&self) -> String {
        let how = match (&self.boot, self.pass) {
            (Boot::Netboot, _) => "iPXE over TFTP from target/image/tftp; expect the boot lines".to_string(),
            (Boot::Media { firmware, medium, suite: None }, _) => {
                format!("GRUB, multiboot 2: {medium:?} under {firmware:?}, -cpu qemu64; expect the boot lines")
            }
            (Boot::Media { firmware, medium, suite: Some(suite) }, _) => {
                format!("GRUB, multiboot 2: {medium:?} under {firmware:?}, menu entry of the {suite} suite")
            }
            (Boot::Direct { append }, Pass::Lines(_)) if append.is_empty() => {
                "direct boot, empty command line; expect the boot lines".to_string()
            }
            (Boot::Direct { append }, Pass::Lines(_)) => format!("direct boot with `{append}`; expect the boot lines"),
            (Boot::Direct { append }, Pass::Suite) if self.name == BENCH_SUITE => {
                format!("benchmarks: direct boot with `{append}`; `ci bench` runs it under -icount and TCG")
            }
            (Boot::Direct { append }, Pass::Suite) if !self.qemu.is_empty() => {
                format!("in-guest suite: direct boot with `{append}` and `{}`", self.qemu.join(" "))
            }
            (Boot::Direct { append }, Pass::Suite) => format!("in-guest suite: direct boot with `{append}`"),
            (Boot::Direct { append }, Pass::Crash(_)) => {
                format!("kernel self-test: direct boot with `{append}`; expect its report and the panic exit status")
            }
        };
        format!("{:<12} {how} (timeout {} s)", self.name, self.timeout.as_secs())
    }
}

/// The boot checks of `ci test`, in the order they run: the plain boot
/// first (if it fails, nothing else will work either), then the suites,
/// the kernel's own failure reports, then netboot, then GRUB's media
/// (each firmware path once: the OVMF boots are the slow ones).
pub fn test_checks() -> Vec<Check> {
    let mut v = vec![Check::plain(), Check::plain_disk()];
    v.extend(SUITES.iter().chain(DISK_SUITES).chain(ICOUNT_SUITES).map(|s| Check::suite(s, SUITE_TIMEOUT)));
    v.push(Check::fuzz(0));
    v.push(Check::crash("panic", PANIC_LINES));
    v.push(Check::crash("fault", FAULT_LINES));
    v.push(Check::crash("smap", SMAP_LINES));
    v.push(Check::crash("smep", SMEP_LINES));
    v.push(Check::netboot());
    v.push(Check::media("iso-bios", Firmware::SeaBios, Medium::Cdrom));
    v.push(Check::media_suite("iso-test", "boot"));
    v.push(Check::media("usb-bios", Firmware::SeaBios, Medium::UsbStick));
    v.push(Check::media("iso-uefi", Firmware::Ovmf, Medium::Cdrom));
    v.push(Check::media("netboot-uefi", Firmware::Ovmf, Medium::Network));
    v
}

/// The benchmark check (run in two modes by `ci bench`).
pub fn bench_check() -> Check {
    Check::suite(BENCH_SUITE, BENCH_TIMEOUT)
}

/// Every check `ci boot <name>` accepts.
pub fn all_checks() -> Vec<Check> {
    let mut v = test_checks();
    v.push(bench_check());
    v.push(Check::fuzz(1));
    v
}

/// The check called `name`.
pub fn find(name: &str) -> Option<Check> {
    all_checks().into_iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Pattern;

    #[test]
    fn every_pattern_compiles() {
        let suite_lines = SUITE_LINES.iter().flat_map(|(_, l)| l.iter());
        let media = BIOS_MEDIA_LINES.iter().chain(UEFI_MEDIA_LINES);
        for p in BOOT_LINES.iter().chain(suite_lines).chain(PANIC_LINES).chain(FAULT_LINES).chain(SMAP_LINES).chain(SMEP_LINES).chain(FUZZ_LINES).chain(media) {
            Pattern::new(p).unwrap_or_else(|e| panic!("{e}"));
        }
        for suite in SUITE_LINES.iter().map(|(s, _)| s).chain(image_builder::media::SUITE_OPTIONS.iter().map(|(s, _)| s)) {
            assert!(SUITES.contains(suite), "lines or options for unknown suite {suite}");
        }
        for (check, lines) in SYMBOLIZED_LINES {
            assert!(find(check).is_some(), "symbolized lines for unknown check {check}");
            for p in lines.iter() {
                Pattern::new(p).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[test]
    fn symbolized_lines_match_real_symbolized_reports() {
        // From symbolized logs of the panic, fault and boot checks.
        let lines = [
            "  #1 0xffffffff801192e1 [kernel::boot::selftest::self_test at kernel/src/boot/selftest.rs:38, inlined into kmain at kernel/src/boot/start.rs:63]",
            "[error] KERNEL FAULT: page fault (vector 14, error 0x0) at rip 0xffffffff80118b95, rsp 0xffffffff801419b0, cr2 0xffffc00000000000 [core::ptr::read_volatile at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/ptr/mod.rs:2091, inlined into kernel::boot::selftest::self_test at kernel/src/boot/selftest.rs:42, inlined into kmain at kernel/src/boot/start.rs:63]",
            "[warn ] fault: process 7 'ktest-child' thread 5: invalid opcode (vector 6, error 0x0) at rip 0x2439ce, rsp 0x7feffffffd90 [ktest::child::fault at ci/ktest/src/child.rs:97, inlined into ktest::child::run at ci/ktest/src/child.rs:44]",
        ];
        for ((check, patterns), line) in SYMBOLIZED_LINES.iter().zip(lines) {
            for p in patterns.iter() {
                let p = Pattern::new(p).unwrap();
                assert!(p.is_match(line), "{check}: `{}` should match {line}", p.source());
                let bare = line.split(" [").next().unwrap();
                assert!(!p.is_match(bare), "{check}: `{}` must need the symbols", p.source());
            }
        }
    }

    #[test]
    fn boot_lines_match_a_real_boot_log() {
        let log = crate::expect::tests::BOOT_LOG;
        for p in BOOT_LINES {
            let p = Pattern::new(p).unwrap();
            let hits = log.iter().filter(|l| p.is_match(l)).count();
            assert_eq!(hits, 1, "`{}` should match exactly one line", p.source());
        }
    }

    #[test]
    fn names_are_unique_and_findable() {
        let all = all_checks();
        for (i, c) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|d| d.name != c.name), "duplicate check {}", c.name);
            assert_eq!(find(&c.name).as_ref(), Some(c));
        }
        assert!(find("nonsense").is_none());
    }

    #[test]
    fn suites_boot_with_test_argument() {
        let ipc = find("ipc").unwrap();
        assert_eq!(ipc.boot, Boot::Direct { append: "test=ipc".into() });
        assert_eq!(ipc.pass, Pass::Suite);
        assert!(!ipc.also.is_empty(), "the ipc suite checks the trace lines");
        assert_eq!(ipc.timeout, SUITE_TIMEOUT);
        let bench = bench_check();
        assert_eq!(bench.boot, Boot::Direct { append: "test=bench".into() });
        assert_eq!(bench.timeout, BENCH_TIMEOUT);
        assert!(test_checks().iter().all(|c| c.name != BENCH_SUITE), "bench is not part of `ci test`");
        let names: Vec<String> = test_checks().into_iter().map(|c| c.name).collect();
        assert_eq!(names, [
                "plain", "plain-disk", "boot", "ipc", "caps", "mem", "hostile", "servers", "process", "devices", "disk", "disk-cdrom", "disk-none",
                "ticks", "fuzz", "panic", "fault", "smap", "smep", "netboot", "iso-bios", "iso-test", "usb-bios", "iso-uefi", "netboot-uefi"
            ]);
        let hostile = find("hostile").unwrap();
        assert_eq!(hostile.boot, Boot::Direct { append: "test=hostile selftest=irq".into() });
        let full = find("fuzz-full").unwrap();
        assert_eq!(full.boot, Boot::Direct { append: "test=fuzz fuzz_calls=1000000".into() });
        assert!(test_checks().iter().all(|c| c.name != "fuzz-full"), "the million calls run on request only");
        assert!(find("ticks").unwrap().qemu.starts_with(crate::bench::ICOUNT_ARGS), "ticks runs under -icount");
        assert!(ipc.qemu.is_empty());
    }

    #[test]
    fn media_lines_match_real_logs_and_tell_the_firmware_apart() {
        let bios = "[info ] loader: Multiboot2, firmware BIOS, 9 memory-map entries";
        let uefi = "[info ] loader: Multiboot2, firmware UEFI, 18 memory-map entries";
        let direct = "[info ] loader: Multiboot1, firmware BIOS, 7 memory-map entries";
        let tokens = "[info ] capability tokens keyed from TSC jitter+RTC+memory map+TSC";
        let m = |p: &str, l: &str| Pattern::new(p).unwrap().is_match(l);
        assert!(m(BIOS_MEDIA_LINES[0], bios) && !m(BIOS_MEDIA_LINES[0], uefi) && !m(BIOS_MEDIA_LINES[0], direct));
        assert!(m(UEFI_MEDIA_LINES[0], uefi) && !m(UEFI_MEDIA_LINES[0], bios));
        let efi = "[info ] efi: the kernel exited boot services (6144 bytes of memory map); 32 random bytes from EFI_RNG_PROTOCOL";
        assert!(m(UEFI_MEDIA_LINES[1], efi));
        assert!(!m(UEFI_MEDIA_LINES[1], &efi.replace("32 random", "0 random")), "no firmware randomness must fail");
        assert!(m(UEFI_MEDIA_LINES[2], "[info ] capability tokens keyed from EFI RNG+TSC jitter+RTC+memory map+TSC"));
        assert!(m(TOKEN_SOURCES, tokens));
        // A key from fewer sources, or the old TSC-only fallback, fails.
        assert!(!m(TOKEN_SOURCES, "[info ] capability tokens keyed from TSC jitter+memory map+TSC"));
        assert!(!m(TOKEN_SOURCES, "[warn ] capability tokens keyed from TSC only: guessable on this machine"));
        let iso = find("iso-uefi").unwrap();
        assert_eq!(iso.boot, Boot::Media { firmware: Firmware::Ovmf, medium: Medium::Cdrom, suite: None });
        assert_eq!(iso.also, UEFI_MEDIA_LINES);
    }
}
