use super::*;
use elf::endian::LittleEndian;
use elf::ElfBytes;

/// An ELF64 executable with the given (paddr, offset, filesz) PT_LOADs,
/// and optionally a multiboot header at file offset `mb_at`.
fn kernel_like(segs: &[(u64, u64, u64)], mb: Option<(usize, u32, u32)>) -> Vec<u8> {
    let mut v = vec![0u8; 0x3000];
    v[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    v[16..18].copy_from_slice(&elf::abi::ET_EXEC.to_le_bytes());
    v[18..20].copy_from_slice(&elf::abi::EM_X86_64.to_le_bytes());
    v[20..24].copy_from_slice(&1u32.to_le_bytes());
    v[32..40].copy_from_slice(&64u64.to_le_bytes());
    v[52..54].copy_from_slice(&64u16.to_le_bytes());
    v[54..56].copy_from_slice(&56u16.to_le_bytes());
    v[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
    v[58..60].copy_from_slice(&64u16.to_le_bytes());
    for (i, (paddr, off, filesz)) in segs.iter().enumerate() {
        let p = 64 + 56 * i;
        v[p..p + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        v[p + 4..p + 8].copy_from_slice(&5u32.to_le_bytes());
        v[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
        v[p + 16..p + 24].copy_from_slice(&paddr.to_le_bytes());
        v[p + 24..p + 32].copy_from_slice(&paddr.to_le_bytes());
        v[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
        v[p + 40..p + 48].copy_from_slice(&filesz.to_le_bytes());
    }
    if let Some((at, flags, header_addr)) = mb {
        let words = [MB_MAGIC, flags, 0u32.wrapping_sub(MB_MAGIC).wrapping_sub(flags), header_addr, 0x100000, 0, 0, 0x100020];
        for (i, w) in words.iter().enumerate() {
            v[at + 4 * i..at + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        mb2(&mut v, at + 0x40, header_addr + 0x40, true);
    }
    v
}

/// A multiboot-2 header at `at`: address tag (if `address`), entry tag, end.
fn mb2(v: &mut [u8], at: usize, header_addr: u32, address: bool) {
    let mut words = vec![0xE852_50D6, 0, 0, 0];
    if address {
        words.extend([2, 24, header_addr, 0x100000, 0, 0]);
    }
    words.extend([3, 12, 0x100020, 0, 0, 8]);
    let len = 4 * words.len() as u32;
    words[2] = len;
    words[3] = 0u32.wrapping_sub(0xE852_50D6).wrapping_sub(len);
    for (i, w) in words.iter().enumerate() {
        v[at + 4 * i..at + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
}

#[test]
fn a_kernel_without_a_usable_multiboot2_header_is_refused() {
    let seg = [(0x100000, 0x1000, 0x100)];
    let mut k = kernel_like(&seg, Some((0x1000, MB_AOUT_KLUDGE, 0x100000)));
    mb2(&mut k, 0x1040, 0x100040, false);
    assert!(check_kernel(&k).unwrap_err().0.contains("address or entry tag"));
    mb2(&mut k, 0x1040, 0x100048, true);
    assert!(check_kernel(&k).unwrap_err().0.contains("multiboot2 header_addr"));
    k[0x1040 + 12] ^= 1;
    assert!(check_kernel(&k).unwrap_err().0.contains("no multiboot2 header"));
}

#[test]
fn accepts_a_one_block_multiboot_kernel() {
    let k = kernel_like(&[(0x100000, 0x1000, 0x100), (0x101000, 0x2000, 0x100)], Some((0x1000, MB_AOUT_KLUDGE | 3, 0x100000)));
    assert_eq!(check_kernel(&k), Ok(KernelInfo { entry: 0x100020, load_addr: 0x100000 }));
}

#[test]
fn rejects_broken_kernels() {
    let split = kernel_like(&[(0x100000, 0x1000, 0x100), (0x200000, 0x2000, 0x100)], Some((0x1000, MB_AOUT_KLUDGE, 0x100000)));
    assert!(check_kernel(&split).unwrap_err().0.contains("one-block"));
    let no_header = kernel_like(&[(0x100000, 0x1000, 0x100)], None);
    assert!(check_kernel(&no_header).unwrap_err().0.contains("no multiboot header"));
    let no_kludge = kernel_like(&[(0x100000, 0x1000, 0x100)], Some((0x1000, 3, 0x100000)));
    assert!(check_kernel(&no_kludge).unwrap_err().0.contains("bit 16"));
    let wrong_addr = kernel_like(&[(0x100000, 0x1000, 0x100)], Some((0x1000, MB_AOUT_KLUDGE, 0x180000)));
    assert!(check_kernel(&wrong_addr).unwrap_err().0.contains("header_addr"));
    let mut dyn_kernel = kernel_like(&[(0x100000, 0x1000, 0x100)], Some((0x1000, MB_AOUT_KLUDGE, 0x100000)));
    dyn_kernel[16..18].copy_from_slice(&elf::abi::ET_DYN.to_le_bytes());
    assert!(check_kernel(&dyn_kernel).unwrap_err().0.contains("ET_EXEC"));
}

fn sample_files() -> Vec<RamfsFile> {
    vec![
        RamfsFile { name: "system".into(), perm: 0o755, data: vec![0x7f; 5000] },
        RamfsFile { name: "etc/motd".into(), perm: 0o644, data: b"hello\n".to_vec() },
    ]
}

#[test]
fn ramfs_round_trips_and_is_page_padded() {
    let img = pack_ramfs(&sample_files());
    assert_eq!(img.len() % 4096, 0);
    let a = cpio::Archive::new(&img).unwrap();
    let names: Vec<_> = a.entries().map(|e| e.name).collect();
    assert_eq!(names, ["system", "etc", "etc/motd"]);
    assert_eq!(a.find("system").unwrap().data.len(), 5000);
    assert_eq!(a.find("etc/motd").unwrap().data, b"hello\n");
}

#[test]
fn gnu_cpio_lists_our_ramfs() {
    // The image must be a standard archive: GNU cpio (installed by
    // ci/setup.sh) lists and extracts it.
    let dir = std::env::temp_dir().join(format!("ramfs-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("ramfs.img");
    std::fs::write(&img, pack_ramfs(&sample_files())).unwrap();
    let out = std::process::Command::new("cpio")
        .args(["-itv", "-F"])
        .arg(&img)
        .output()
        .expect("GNU cpio is needed for this test (apt-get install cpio, or run ci/setup.sh)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("system") && listing.contains("etc/motd"), "{listing}");
    assert!(listing.lines().any(|l| l.starts_with("-rwxr-xr-x") && l.contains("5000") && l.ends_with("system")), "{listing}");
    let extract = std::process::Command::new("cpio")
        .current_dir(&dir)
        .args(["-id", "--quiet", "-F"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(extract.success());
    assert_eq!(std::fs::read(dir.join("etc/motd")).unwrap(), b"hello\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn data_files_come_from_the_data_folder() {
    let files = data_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap();
    assert!(files.iter().any(|f| f.name == "etc/motd"));
}

#[test]
fn qemu_args_name_the_image() {
    let a = qemu_args(Path::new("target/image"), "test=boot");
    let s = a.join(" ");
    assert!(s.contains("-kernel target/image/kernel.elf"));
    assert!(s.contains("-initrd target/image/ramfs.img"));
    assert!(s.contains("-append test=boot"));
    assert!(s.contains("isa-debug-exit"));
    assert!(ipxe_script().starts_with("#!ipxe\n"));
}

#[test]
fn the_boot_configuration_is_checked_against_the_programs() {
    let progs = vec!["system".to_string(), "vfs".to_string()];
    let f = boot_config(b"vfs boot:/vfs bootstrap\n", &progs).unwrap();
    assert_eq!(f.name, "etc/boot.conf");
    let e = boot_config(b"vfs boot:/vfs bootstrap\nramfs boot:/ramfs\n", &progs).unwrap_err();
    assert!(e.0.contains("line 2") && e.0.contains("NoSuchFile"), "{e}");
    let e = boot_config(b"vfs boot:/vfs bootstrap caps=thraed\n", &progs).unwrap_err();
    assert!(e.0.contains("UnknownCap"), "{e}");
    // The repository's own file names only programs that exist.
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let servers: Vec<String> = std::fs::read_dir(ws.join("servers")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).chain(EXTRA_PROGRAMS.iter().map(|s| s.to_string())).collect();
    boot_config(&std::fs::read(ws.join(BOOT_CONFIG)).unwrap(), &servers).unwrap();
}

#[test]
fn test_files_carry_a_manifest_of_host_hashes() {
    let files = vec![RamfsFile { name: "etc/motd".into(), perm: 0o644, data: b"hi\n".to_vec() }];
    let t = test_files(&files, 42);
    assert_eq!(t[0].name, "test/data.bin");
    assert_eq!(t[0].data.len(), TEST_FILE_SIZE);
    let text = String::from_utf8(t[1].data.clone()).unwrap();
    let lines: Vec<_> = ramfs::manifest::parse(&text).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0].path, lines[0].size, lines[0].hash), ("test/data.bin", TEST_FILE_SIZE as u64, ramfs::manifest::fnv1a64(&t[0].data)));
    assert_eq!((lines[1].path, lines[1].hash), ("etc/motd", ramfs::manifest::fnv1a64(b"hi\n")));
    assert!(test_files(&files, 44)[0].data != t[0].data, "a new seed, new bytes");
}

#[test]
fn the_grub_menu_boots_multiboot2_with_an_entry_per_suite() {
    use media::*;
    let iso = grub_cfg(Layout::Iso);
    assert!(iso.contains("terminal_output serial console"), "the menu must be on the serial port");
    assert!(iso.contains("menuentry \"microkernel\" --id normal {\n    echo \"loading /boot/kernel.elf\"\n    multiboot2 /boot/kernel.elf\n    module2 /boot/ramfs.img ramfs.img\n"));
    for suite in TEST_SUITES {
        let id = test_entry(suite);
        let args = suite_args(suite);
        let wanted = format!("--id {id} {{\n    echo \"loading /boot/kernel.elf {args}\"\n    multiboot2 /boot/kernel.elf {args}\n");
        assert!(iso.contains(&wanted), "no entry for {suite}:\n{iso}");
    }
    assert!(iso.contains("multiboot2 /boot/kernel.elf test=hostile selftest=irq\n"), "suite options go on the entry too");
    assert!(iso.contains("regexp --set 1:entry '^microkernel-entry=(.+)$' \"$oem\""), "{iso}");
    let net = grub_cfg(Layout::Network);
    assert!(net.contains("multiboot2 /kernel.elf test=ipc\n") && net.contains("module2 /ramfs.img ramfs.img\n"));
    assert!(!net.contains("/boot/kernel.elf"));
}

#[test]
fn target_dir_follows_cargo_target_dir() {
    use std::ffi::OsStr;
    let ws = Path::new("/ws");
    assert_eq!(target_dir_from(ws, None), Path::new("/ws/target"));
    assert_eq!(target_dir_from(ws, Some(OsStr::new(""))), Path::new("/ws/target"));
    assert_eq!(target_dir_from(ws, Some(OsStr::new("/tmp/tdir"))), Path::new("/tmp/tdir"));
    assert_eq!(target_dir_from(ws, Some(OsStr::new("out/t"))), Path::new("/ws/out/t"), "relative to the workspace root");
    assert_eq!(debug_dir(Path::new("/tmp/tdir/image")), Path::new("/tmp/tdir/image/debug"));
}

/// A program header as a loader sees it: (type, vaddr, memsz, flags, file bytes).
type Segment = (u32, u64, u64, u32, Vec<u8>);

/// Every program header as a [`Segment`], and the
/// entry point: everything a loader uses. The ELF header's section-header
/// fields (in the first segment when it maps the header) read as zero:
/// stripping sets them, and nothing reads them once loaded.
fn loaded(bytes: &[u8]) -> (u64, Vec<Segment>) {
    let mut bytes = bytes.to_vec();
    bytes[0x28..0x30].fill(0);
    bytes[0x3c..0x40].fill(0);
    let bytes = &bytes[..];
    let f = ElfBytes::<LittleEndian>::minimal_parse(bytes).unwrap();
    let segs = f.segments().unwrap().iter().map(|p| {
        let data = bytes[p.p_offset as usize..(p.p_offset + p.p_filesz) as usize].to_vec();
        (p.p_type, p.p_vaddr, p.p_memsz, p.p_flags, data)
    });
    (f.ehdr.e_entry, segs.collect())
}

#[test]
fn stripping_a_real_elf_keeps_every_loaded_byte() {
    // This test binary: a real linked ELF with debug info and symbols.
    let exe = std::env::current_exe().unwrap();
    let full = std::fs::read(&exe).unwrap();
    let stripped = strip_program("self", &full).unwrap();
    assert!(stripped.len() < full.len(), "{} !< {}", stripped.len(), full.len());
    assert_eq!(loaded(&stripped), loaded(&full));
    // Not one byte moves: the stripped file is a prefix of the original
    // but for the section-header fields of the ELF header.
    let changed: Vec<usize> = (0..stripped.len()).filter(|&i| stripped[i] != full[i]).collect();
    assert!(!changed.is_empty() && changed.iter().all(|i| (0x28..0x30).contains(i) || (0x3c..0x40).contains(i)), "{changed:?}");
    let f = ElfBytes::<LittleEndian>::minimal_parse(&stripped).unwrap();
    assert_eq!((f.ehdr.e_shoff, f.ehdr.e_shnum), (0, 0), "no section headers left");
    assert!(f.section_headers().is_none());
    // The stripped copy still runs (Linux reads only what a loader reads).
    let copy = std::env::temp_dir().join(format!("stripped-test-{}", std::process::id()));
    std::fs::write(&copy, &stripped).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(&copy).args(["--list", "stripping_a_real_elf"]).output().unwrap();
    std::fs::remove_file(&copy).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("stripping_a_real_elf_keeps_every_loaded_byte: test"));
}

#[test]
fn stripping_cuts_after_the_last_segment() {
    let k = kernel_like(&[(0x100000, 0x1000, 0x100), (0x101000, 0x2000, 0x180)], None);
    let s = strip_program("k", &k).unwrap();
    assert_eq!(s.len(), 0x2180);
    assert_eq!(loaded(&s), loaded(&k));
    let past_end = kernel_like(&[(0x100000, 0x2f00, 0x200)], None);
    assert!(strip_program("k", &past_end).unwrap_err().0.contains("past the end"));
    assert!(strip_program("k", b"not an elf").unwrap_err().0.contains("not ELF"));
}

#[test]
fn a_packed_image_must_hold_the_stripped_programs() {
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let image = std::env::temp_dir().join(format!("packed-test-{}", std::process::id()));
    std::fs::create_dir_all(debug_dir(&image)).unwrap();
    std::fs::write(debug_dir(&image).join("prog"), &exe).unwrap();
    let pack = |data: Vec<u8>| {
        let files = [
            RamfsFile { name: "prog".into(), perm: 0o755, data },
            RamfsFile { name: "etc/motd".into(), perm: 0o644, data: b"hi".to_vec() },
            // A fixture the builder made: executable, with no debug copy.
            RamfsFile { name: "test/fixture".into(), perm: 0o755, data: b"\x7fELF".to_vec() },
        ];
        std::fs::write(image.join("ramfs.img"), pack_ramfs(&files)).unwrap();
        check_packed(&image)
    };
    let stripped = strip_program("prog", &exe).unwrap();
    assert_eq!(pack(stripped.clone()), Ok(vec![("prog".to_string(), stripped.len(), exe.len())]));
    assert!(pack(exe.clone()).unwrap_err().0.contains("is not"), "packed unstripped");
    let mut changed = stripped.clone();
    *changed.last_mut().unwrap() ^= 1;
    assert!(pack(changed).unwrap_err().0.contains("is not"), "packed something else");
    std::fs::remove_file(debug_dir(&image).join("prog")).unwrap();
    assert!(pack(stripped).unwrap_err().0.contains("prog"), "no unstripped copy");
    std::fs::remove_dir_all(&image).unwrap();
}

#[test]
fn bare_metal_crates_are_the_kernel_runtime_servers_and_extras() {
    let dir = std::env::temp_dir().join(format!("ib-crates-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for s in ["zeta", "alpha"] {
        std::fs::create_dir_all(dir.join("servers").join(s)).unwrap();
        std::fs::write(dir.join("servers").join(s).join("Cargo.toml"), "").unwrap();
    }
    // A folder without a manifest is not a crate.
    std::fs::create_dir_all(dir.join("servers/notes")).unwrap();
    let got = bare_metal_crates(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut want = vec!["kernel", "runtime", "alpha", "zeta"];
    want.extend(EXTRA_PROGRAMS);
    assert_eq!(got, want);
    assert!(bare_metal_crates(Path::new("/nonexistent/ws")).is_err());
}
