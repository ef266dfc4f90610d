//! QEMU command lines for the boot modes `image_builder::qemu_args` does
//! not cover.
//!
//! Netboot starts from the direct-boot arguments and removes what would
//! bypass the network path (qboot, `-kernel`, `-initrd`, `-append`), so the
//! machine, CPU, memory and debug-exit device stay exactly as the image
//! builder defines them.

use std::path::Path;

use crate::checks::Boot;

/// The options (each followed by one value) that make QEMU load the image
/// itself, or that select a firmware without iPXE.
const DIRECT_ONLY: &[&str] = &["-bios", "-kernel", "-initrd", "-append"];

/// The arguments for booting `boot` from the image in `image_dir`.
pub fn for_boot(boot: &Boot, image_dir: &Path) -> Vec<String> {
    match boot {
        Boot::Direct { append } => image_builder::qemu_args(image_dir, append),
        Boot::Netboot => netboot_args(image_builder::qemu_args(image_dir, ""), &image_dir.join("tftp")),
    }
}

/// Turn direct-boot `base` arguments into a network boot: SeaBIOS (QEMU's
/// default firmware) runs the e1000's iPXE ROM, which fetches `boot.ipxe`
/// from QEMU's built-in TFTP server serving `tftp_dir`.
pub fn netboot_args(base: Vec<String>, tftp_dir: &Path) -> Vec<String> {
    let mut a = drop_options(base, DIRECT_ONLY);
    let dir = std::path::absolute(tftp_dir).unwrap_or_else(|_| tftp_dir.to_path_buf());
    // QEMU option values escape a comma by doubling it.
    let dir = dir.display().to_string().replace(',', ",,");
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
