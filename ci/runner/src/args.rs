//! QEMU command lines for the boot modes `image_builder::qemu_args` does
//! not cover.
//!
//! Netboot starts from the direct-boot arguments and removes what would
//! bypass the network path (qboot, `-kernel`, `-initrd`, `-append`), so the
//! machine, CPU, memory and debug-exit device stay exactly as the image
//! builder defines them.

use std::path::Path;

use crate::checks::{Boot, Firmware, Medium};

/// OVMF's code and variable store (Debian's `ovmf` package). The variables
/// are opened with `snapshot=on`, so no run changes the installed file.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The CPU of the media checks: QEMU's default model, with no RDRAND or
/// RDSEED, so the token key must come from the other sources.
pub const MEDIA_CPU: &str = "qemu64";

/// The options (each followed by one value) that make QEMU load the image
/// itself, or that select a firmware without iPXE.
const DIRECT_ONLY: &[&str] = &["-bios", "-kernel", "-initrd", "-append"];

/// The arguments for booting `boot` from the image in `image_dir`.
pub fn for_boot(boot: &Boot, image_dir: &Path) -> Vec<String> {
    match boot {
        Boot::Direct { append } => image_builder::qemu_args(image_dir, append),
        Boot::Netboot => netboot_args(image_builder::qemu_args(image_dir, ""), &image_dir.join("tftp")),
        Boot::Media { firmware, medium, suite } => {
            let mut a = media_args(image_builder::qemu_args(image_dir, ""), image_dir, *firmware, *medium);
            if let Some(suite) = suite {
                let entry = image_builder::media::test_entry(suite);
                a.extend(["-smbios".into(), format!("type=11,value={}{entry}", image_builder::media::ENTRY_OEM_PREFIX)]);
            }
            a
        }
    }
}

/// `p` as an absolute path, escaped for a QEMU option value.
fn absolute(p: &Path) -> String {
    let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // QEMU option values escape a comma by doubling it.
    p.display().to_string().replace(',', ",,")
}

/// Turn direct-boot `base` arguments into a boot from GRUB's media: no
/// `-kernel`, the media CPU, the firmware, and the medium.
pub fn media_args(base: Vec<String>, image_dir: &Path, firmware: Firmware, medium: Medium) -> Vec<String> {
    let mut a = drop_options(base, DIRECT_ONLY);
    if let Some(i) = a.iter().position(|x| x == "-cpu") {
        if let Some(v) = a.get_mut(i + 1) {
            *v = MEDIA_CPU.into();
        }
    }
    if firmware == Firmware::Ovmf {
        a.extend([
            "-drive".to_string(),
            format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
            "-drive".into(),
            format!("if=pflash,format=raw,unit=1,snapshot=on,file={OVMF_VARS}"),
            // OVMF's EFI_RNG_PROTOCOL needs RDRAND or this device; the media
            // CPU has no RDRAND.
            "-device".into(),
            "virtio-rng-pci".into(),
        ]);
    }
    let iso = absolute(&image_dir.join(image_builder::media::ISO));
    let more: Vec<String> = match medium {
        Medium::Cdrom => vec!["-cdrom".into(), iso],
        Medium::UsbStick => vec![
            "-drive".into(),
            format!("if=none,id=stick,format=raw,snapshot=on,file={iso}"),
            "-device".into(),
            "qemu-xhci".into(),
            "-device".into(),
            "usb-storage,drive=stick,bootindex=0".into(),
        ],
        Medium::Network => vec![
            "-netdev".into(),
            format!(
                "user,id=n0,tftp={},bootfile={}",
                absolute(&image_dir.join(image_builder::media::UEFI_NET)),
                image_builder::media::UEFI_NET_LOADER
            ),
            "-device".into(),
            "virtio-net-pci,netdev=n0".into(),
        ],
    };
    a.extend(more);
    a
}

/// Turn direct-boot `base` arguments into a network boot: SeaBIOS (QEMU's
/// default firmware) runs the e1000's iPXE ROM, which fetches `boot.ipxe`
/// from QEMU's built-in TFTP server serving `tftp_dir`.
pub fn netboot_args(base: Vec<String>, tftp_dir: &Path) -> Vec<String> {
    let mut a = drop_options(base, DIRECT_ONLY);
    let dir = absolute(tftp_dir);
    a.extend(
        [
            "-boot".to_string(),
            "n".into(),
            "-netdev".into(),
            format!("user,id=n0,tftp={dir},bootfile=boot.ipxe"),
            "-device".into(),
            "e1000,netdev=n0".into(),
        ],
    );
    a
}

/// `args` without the given options and the value after each.
pub fn drop_options(args: Vec<String>, options: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if options.contains(&a.as_str()) {
            it.next();
        } else {
            out.push(a);
        }
    }
    out
}

/// `args` plus the bench mode's extra arguments.
pub fn with_extra(mut args: Vec<String>, extra: &[&str]) -> Vec<String> {
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The value after `flag`, for every occurrence.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()).collect()
    }

    #[test]
    fn drop_options_removes_flag_and_value() {
        let a = strings(&["-m", "256M", "-bios", "x.rom", "-kernel", "k", "-serial", "stdio", "-append", "a b"]);
        assert_eq!(drop_options(a, DIRECT_ONLY), strings(&["-m", "256M", "-serial", "stdio"]));
    }

    #[test]
    fn drop_options_matches_whole_words_and_tolerates_a_missing_value() {
        let a = strings(&["-kernel-x", "v", "-m", "1G", "-bios"]);
        assert_eq!(drop_options(a, DIRECT_ONLY), strings(&["-kernel-x", "v", "-m", "1G"]));
    }

    #[test]
    fn netboot_uses_ipxe_over_tftp_without_qboot() {
        let dir = PathBuf::from("/work/main/target/image");
        let a = for_boot(&Boot::Netboot, &dir);
        for flag in DIRECT_ONLY {
            assert!(!a.iter().any(|x| x == flag), "{flag} must not be passed: {a:?}");
        }
        assert!(!a.iter().any(|x| x.contains("qboot")));
        assert_eq!(values(&a, "-boot"), ["n"]);
        assert_eq!(values(&a, "-netdev"), ["user,id=n0,tftp=/work/main/target/image/tftp,bootfile=boot.ipxe"]);
        assert!(values(&a, "-device").contains(&"e1000,netdev=n0"));
        // What every boot needs is kept from the image builder's list.
        assert_eq!(values(&a, "-serial"), ["stdio"]);
        assert_eq!(values(&a, "-machine"), ["q35"]);
        assert_eq!(values(&a, "-accel"), ["tcg"]);
        assert!(a.iter().any(|x| x == "-no-reboot"));
        assert!(values(&a, "-device").contains(&"isa-debug-exit,iobase=0xf4,iosize=0x04"));
    }

    #[test]
    fn netboot_path_is_absolute_and_escaped() {
        let a = netboot_args(Vec::new(), Path::new("rel/odd,dir"));
        let netdev = values(&a, "-netdev")[0];
        let tftp = netdev.strip_prefix("user,id=n0,tftp=").unwrap().strip_suffix(",bootfile=boot.ipxe").unwrap();
        assert!(tftp.starts_with('/'), "{tftp}");
        assert!(tftp.ends_with("/rel/odd,,dir"), "{tftp}");
    }

    #[test]
    fn media_boots_grub_under_the_firmware_on_a_cpu_without_rdrand() {
        let dir = PathBuf::from("/img");
        let uefi_cd = for_boot(&Boot::Media { firmware: Firmware::Ovmf, medium: Medium::Cdrom, suite: None }, &dir);
        for flag in DIRECT_ONLY {
            assert!(!uefi_cd.iter().any(|x| x == flag), "{flag} must not be passed: {uefi_cd:?}");
        }
        assert_eq!(values(&uefi_cd, "-cpu"), ["qemu64"]);
        assert_eq!(values(&uefi_cd, "-cdrom"), ["/img/kernel.iso"]);
        let drives = values(&uefi_cd, "-drive");
        assert!(drives[0].contains("readonly=on") && drives[0].ends_with(OVMF_CODE), "{drives:?}");
        assert!(drives[1].contains("snapshot=on") && drives[1].ends_with(OVMF_VARS), "{drives:?}");
        assert!(values(&uefi_cd, "-device").contains(&"virtio-rng-pci"));
        let usb = for_boot(&Boot::Media { firmware: Firmware::SeaBios, medium: Medium::UsbStick, suite: None }, &dir);
        assert!(!usb.iter().any(|x| x.contains("OVMF")), "SeaBIOS is QEMU's default firmware");
        assert_eq!(values(&usb, "-drive"), ["if=none,id=stick,format=raw,snapshot=on,file=/img/kernel.iso"]);
        assert!(values(&usb, "-device").contains(&"usb-storage,drive=stick,bootindex=0"));
        let net = for_boot(&Boot::Media { firmware: Firmware::Ovmf, medium: Medium::Network, suite: None }, &dir);
        assert_eq!(values(&net, "-netdev"), ["user,id=n0,tftp=/img/uefi-net,bootfile=boot/grub/x86_64-efi/core.efi"]);
        assert_eq!(values(&net, "-serial"), ["stdio"]);
        assert!(values(&net, "-smbios").is_empty());
        let test = for_boot(&Boot::Media { firmware: Firmware::SeaBios, medium: Medium::Cdrom, suite: Some("ipc") }, &dir);
        assert_eq!(values(&test, "-smbios"), ["type=11,value=microkernel-entry=test-ipc"]);
    }

    #[test]
    fn direct_boot_passes_the_command_line() {
        let a = for_boot(&Boot::Direct { append: "test=ipc".into() }, Path::new("/img"));
        assert_eq!(values(&a, "-append"), ["test=ipc"]);
        assert_eq!(values(&a, "-kernel"), ["/img/kernel.elf"]);
        assert_eq!(values(&a, "-initrd"), ["/img/ramfs.img"]);
    }

    #[test]
    fn extra_args_are_appended() {
        let a = with_extra(strings(&["-m", "1G"]), crate::bench::ICOUNT_ARGS);
        assert_eq!(a, strings(&["-m", "1G", "-icount", "shift=0,align=off,sleep=off"]));
    }
}
