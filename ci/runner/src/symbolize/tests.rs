use super::*;

#[test]
fn sites_of_real_report_lines() {
    assert_eq!(site("  #0 0xffffffff8011b1ac"), Some(Site::Kernel { addr: 0xffffffff8011b1ac, ret: true }));
    assert_eq!(site("  #12 0x10"), Some(Site::Kernel { addr: 0x10, ret: true }));
    let fault = "[error] KERNEL FAULT: page fault (vector 14, error 0x0) at rip 0xffffffff801184e0, rsp 0xffffffff80140bb0, cr2 0xffffc00000000000";
    assert_eq!(site(fault), Some(Site::Kernel { addr: 0xffffffff801184e0, ret: false }));
    let user = "[warn ] fault: process 3 'ktest-child' thread 3: page fault (vector 14, error 0x6) at rip 0x2203f7, rsp 0x7feffffffda0, write to an unmapped page at 0x0";
    assert_eq!(site(user), Some(Site::User { process: "ktest-child".into(), addr: 0x2203f7 }));
    let at_end = "[warn ] fault: process 9 'vfs' thread 2: invalid opcode (vector 6, error 0x0) at rip 0x201000";
    assert_eq!(site(at_end), Some(Site::User { process: "vfs".into(), addr: 0x201000 }));
    for other in [
        "backtrace:",
        "  #0 0xzz",
        "  # 0x10",
        "  #1 0x10 extra",
        "[warn ] process 3 'ktest-child' killed by fault (vector 14)",
        "ok - fault: process 'x' at rip nothing",
        "[warn ] fault: process 3 'x' thread 3: at rip é",
    ] {
        assert_eq!(site(other), None, "{other}");
    }
}

#[test]
fn processes_map_to_programs() {
    let dir = std::env::temp_dir().join(format!("ci-sym-programs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ktest"), b"x").unwrap();
    std::fs::write(dir.join("vfs"), b"x").unwrap();
    assert_eq!(program_for(&dir, "ktest"), Some(dir.join("ktest")));
    assert_eq!(program_for(&dir, "ktest-child"), Some(dir.join("ktest")));
    assert_eq!(program_for(&dir, "ktest-edge-2"), Some(dir.join("ktest")));
    assert_eq!(program_for(&dir, "vfs"), Some(dir.join("vfs")));
    assert_eq!(program_for(&dir, "ramfs"), None);
    assert_eq!(program_for(&dir, "-"), None);
    assert_eq!(program_for(&dir, "../ktest"), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The line of `fn a_known_function` below.
const KNOWN_LINE: u32 = line!() + 5;

/// Marks a place in this test binary whose function, file and line the
/// test knows.
#[inline(never)]
fn a_known_function(x: u64) -> u64 {
    std::hint::black_box(x) * 3
}

/// The address `a_known_function` has in the ELF file (this test binary is
/// position independent: its load base comes from /proc/self/maps).
fn known_address() -> u64 {
    let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let base = maps
        .lines()
        .find(|l| l.ends_with(&*exe.to_string_lossy()) && l.split_whitespace().nth(2) == Some("00000000"))
        .and_then(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
        .expect("this binary's first mapping");
    a_known_function as *const () as u64 - base
}

#[test]
fn a_saved_log_is_symbolized_against_a_real_elf() {
    assert_eq!(a_known_function(2), 6);
    let addr = known_address();
    // An image folder whose kernel and `ktest` are this test binary.
    let image = std::env::temp_dir().join(format!("ci-sym-image-{}", std::process::id()));
    let debug = image_builder::debug_dir(&image);
    std::fs::create_dir_all(&debug).unwrap();
    let exe = std::env::current_exe().unwrap();
    std::fs::copy(&exe, image.join("kernel.elf")).unwrap();
    std::fs::copy(&exe, debug.join("ktest")).unwrap();
    let ws = crate::cargo::workspace().unwrap();
    let log: Vec<String> = [
        format!("[error] KERNEL FAULT: page fault (vector 14, error 0x0) at rip {addr:#x}, rsp 0x1000, cr2 0x0"),
        "backtrace:".into(),
        format!("  #0 {:#018x}", addr + 1),
        format!("[warn ] fault: process 3 'ktest-child' thread 3: invalid opcode (vector 6, error 0x0) at rip {addr:#x}, rsp 0x7feffffffda0"),
        format!("[warn ] fault: process 4 'nobody' thread 3: invalid opcode (vector 6, error 0x0) at rip {addr:#x}, rsp 0x7feffffffda0"),
        "system: ready".into(),
        "[warn ] fault: process 5 'ktest-edge' thread 3: page fault (vector 14, error 0x15) at rip 0x7ffffffff000, rsp 0x7feffffffd88".into(),
        "  #3 0xffffffff80101028".into(),
    ]
    .into();
    let mut sym = Symbolizer::new(&ws, &image);
    let out = sym.annotate_all(&log);
    let want = "ci::symbolize::tests::a_known_function at ci/runner/src/symbolize/tests.rs:";
    for i in [0, 2, 3] {
        let (raw, note) = out[i].split_once(" [").unwrap_or_else(|| panic!("not symbolized: {}", out[i]));
        assert_eq!(raw, log[i]);
        assert!(note.starts_with(want), "{}", out[i]);
        let line: u32 = note[want.len()..].trim_end_matches(']').parse().unwrap();
        assert_eq!(line, KNOWN_LINE, "{}", out[i]);
    }
    assert_eq!(out[1], log[1]);
    // A return address is looked up one byte back, in the call: one at
    // the function's first byte returns into whatever precedes it.
    let before = sym.annotate(&format!("  #1 {addr:#018x}"));
    assert!(!before.contains("a_known_function"), "{before}");
    assert_eq!(out[4], log[4], "no program for that process");
    assert_eq!(out[5], log[5]);
    assert_eq!(out[6], log[6], "not in the program's code");
    assert_eq!(out[7], log[7], "not in the kernel's code");
    assert_eq!(sym.annotate_all(&out), out, "symbolizing twice changes nothing");
    // Without the ELFs nothing is added.
    std::fs::remove_dir_all(&image).unwrap();
    assert_eq!(Symbolizer::new(&ws, &image).annotate_all(&log), log);
}
