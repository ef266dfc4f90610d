//! `cargo run -p image-builder`: build the kernel and every program for the
//! bare-metal target, check them, pack the RAMFS with the programs
//! stripped, and write `<target>/image/{kernel.elf, ramfs.img, tftp/}`, the
//! unstripped programs in `<target>/image/debug/` (`<target>` is
//! `CARGO_TARGET_DIR` or `target/`), and with GRUB's tools also
//! `kernel.iso` and `uefi-net/` (see `media`).

use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use image_builder::*;

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("image-builder: error: {msg}");
    exit(1)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The bare-metal target's standard library must be installed.
fn check_target() {
    let out = Command::new("rustc").args(["--print", "sysroot"]).output();
    let sysroot = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => fail("cannot run `rustc --print sysroot`; is Rust installed?"),
    };
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    if !lib.exists() {
        fail(format!("the {TARGET} target is not installed; run: rustup target add {TARGET}"));
    }
}

fn main() {
    let ws = workspace();
    check_target();
    let progs = programs(&ws).unwrap_or_else(|e| fail(e));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&ws).args(["build", "--release", "--target", TARGET, "-p", "kernel"]);
    for p in &progs {
        cmd.args(["-p", p]);
    }
    // The same target directory, absolute, whatever the build's own
    // working directory.
    let target = target_dir(&ws);
    cmd.env(TARGET_DIR_VAR, &target);
    // A RUSTFLAGS variable would replace the target's flags from
    // .cargo/config.toml (static relocation model, frame pointers).
    cmd.env_remove("RUSTFLAGS");
    eprintln!("image-builder: building kernel and {} for {TARGET}", progs.join(", "));
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(format!("cargo build failed ({s})")),
        Err(e) => fail(format!("cannot run cargo: {e}")),
    }
    let bin = target.join(TARGET).join("release");
    let kernel = std::fs::read(bin.join("kernel")).unwrap_or_else(|e| fail(format!("kernel binary: {e}")));
    let info = check_kernel(&kernel).unwrap_or_else(|e| fail(format!("kernel image: {e}")));
    let out = image_dir(&ws);
    let debug = debug_dir(&out);
    std::fs::create_dir_all(&debug).unwrap_or_else(|e| fail(format!("{}: {e}", debug.display())));
    let mut files = Vec::new();
    let mut unstripped = Vec::new();
    for p in &progs {
        let full = std::fs::read(bin.join(p)).unwrap_or_else(|e| fail(format!("{p}: {e}")));
        let data = strip_program(p, &full).unwrap_or_else(|e| fail(e));
        check_program(p, &data).unwrap_or_else(|e| fail(e));
        std::fs::write(debug.join(p), &full).unwrap_or_else(|e| fail(format!("{}: {e}", debug.join(p).display())));
        unstripped.push(full.len());
        files.push(RamfsFile { name: p.clone(), perm: 0o755, data });
    }
    let conf = std::fs::read(ws.join(BOOT_CONFIG)).unwrap_or_else(|e| fail(format!("{BOOT_CONFIG}: {e}")));
    files.push(boot_config(&conf, &progs).unwrap_or_else(|e| fail(e)));
    files.push(stack_clash_file());
    files.extend(data_files(&ws.join("image-builder/data")).unwrap_or_else(|e| fail(format!("data files: {e}"))));
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let tests = test_files(&files, seed);
    files.extend(tests);
    let ramfs = pack_ramfs(&files);

    let tftp = out.join("tftp");
    std::fs::create_dir_all(&tftp).unwrap_or_else(|e| fail(format!("{}: {e}", tftp.display())));
    let write = |path: PathBuf, data: &[u8]| {
        std::fs::write(&path, data).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    };
    write(out.join("kernel.elf"), &kernel);
    write(out.join("ramfs.img"), &ramfs);
    write(tftp.join("kernel.elf"), &kernel);
    write(tftp.join("ramfs.img"), &ramfs);
    write(tftp.join("boot.ipxe"), ipxe_script().as_bytes());

    let iso = media::build_iso(&out, &kernel, &ramfs);
    let net = media::build_uefi_net(&out, &kernel, &ramfs);

    println!("image-builder: kernel.elf {:>9} bytes (multiboot 1 and 2, loads at {:#x}, entry {:#x})", kernel.len(), info.load_addr, info.entry);
    for (i, f) in files.iter().enumerate() {
        match unstripped.get(i) {
            Some(full) => println!("image-builder:   ramfs {:>9} bytes  {} (stripped from {full})", f.data.len(), f.name),
            None => println!("image-builder:   ramfs {:>9} bytes  {}", f.data.len(), f.name),
        }
    }
    println!("image-builder: ramfs.img  {:>9} bytes (cpio newc, {} files)", ramfs.len(), files.len());
    let programs: usize = files.iter().take(unstripped.len()).map(|f| f.data.len()).sum();
    println!(
        "image-builder: programs {programs} bytes stripped, {} unstripped (kept in {})",
        unstripped.iter().sum::<usize>(),
        debug.display()
    );
    println!("image-builder: wrote {} and {}", out.display(), tftp.display());
    println!("{}", media::describe("hybrid ISO (BIOS+UEFI, CD or USB stick)", &iso));
    println!("{}", media::describe("UEFI network boot folder", &net));
    if iso.is_err() || net.is_err() {
        // The tools are there but failed: that is a broken build, unlike a
        // missing package, which only leaves the media out.
        exit(1);
    }
    let shown = out.strip_prefix(&ws).unwrap_or(&out);
    println!("boot it with:\n  timeout 60 qemu-system-x86_64 {}", qemu_args(shown, "").join(" "));
}
