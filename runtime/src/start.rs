//! Program start-up and the panic handler (bare metal only).

use core::arch::global_asm;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

use abi::start::StartInfo;

global_asm!(
    r#"
    .section .text._start, "ax"
    .global _start
_start:
    mov rdi, rsp
    and rsp, -16
    xor ebp, ebp
    call runtime_start
    ud2
"#
);

extern "Rust" {
    fn __program_main(args: crate::Args) -> i32;
}

struct Info(UnsafeCell<MaybeUninit<StartInfo<'static>>>);
// SAFETY: written once before `main` runs, read-only afterwards.
unsafe impl Sync for Info {}
static INFO: Info = Info(UnsafeCell::new(MaybeUninit::uninit()));

#[no_mangle]
extern "C" fn runtime_start(block: *const u64) -> ! {
    // SAFETY: the spawner put the start block at the initial stack pointer;
    // its first word is its size, and the parse below checks the rest.
    let bytes = unsafe { core::slice::from_raw_parts(block as *const u8, *block as usize) };
    let Ok(info) = StartInfo::parse(block as u64, bytes) else { crate::exit(100) };
    crate::caps::install(info.caps());
    crate::mem::heap::init();
    // SAFETY: single write before anything reads INFO.
    let info: &'static StartInfo<'static> = unsafe { (*INFO.0.get()).write(info) };
    // SAFETY: `entry!` defines `__program_main` in every program.
    let code = unsafe { __program_main(crate::Args::new(info)) };
    crate::exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::println!("panic: {}", info);
    crate::exit(101)
}
