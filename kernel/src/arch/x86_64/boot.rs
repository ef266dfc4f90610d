//! Multiboot entry: the header loaders look for, and the 32-bit stub that
//! switches to long mode and jumps to the higher half.
//!
//! The loader enters `_start32` in 32-bit protected mode without paging, with
//! the multiboot magic in `eax` and the physical address of the info block in
//! `ebx`. The stub builds just enough page tables to run the kernel where it is
//! linked (the first GiB mapped at 0, at the direct-map base and at -2 GiB),
//! enables long mode with NX, and calls `kmain(magic, info)` on the boot stack.
//! `mem::paging` replaces these tables early in `kmain`.

use core::arch::global_asm;

/// Multiboot header flags: page-align modules, give memory info, and use the
/// address fields below (bit 16) since the kernel is a 64-bit ELF.
const MB_FLAGS: u32 = (1 << 0) | (1 << 1) | (1 << 16);
const MB_MAGIC: u32 = 0x1BAD_B002;

global_asm!(
    r#"
    .section .multiboot, "a"
    .balign 4
multiboot_header:
    .long {magic}
    .long {flags}
    .long {checksum}
    .long multiboot_header        /* header_addr (runs at its physical address) */
    .long __kernel_phys_start     /* load_addr */
    .long __load_end_phys         /* load_end_addr */
    .long __bss_end_phys          /* bss_end_addr */
    .long _start32                /* entry_addr */

    .section .boot.text, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    mov edi, eax
    mov esi, ebx

    /* Long mode and NX are required; stop with a message on the serial port
       if the CPU lacks them. */
    mov eax, 0x80000001
    cpuid
    test edx, (1 << 29)
    jz 90f
    test edx, (1 << 20)
    jz 90f

    /* PD: the first GiB in 2 MiB pages. */
    mov ecx, 0
1:  mov eax, ecx
    shl eax, 21
    or eax, 0x83                  /* present | writable | huge */
    mov [boot_pd - {vma} + ecx * 8], eax
    mov dword ptr [boot_pd - {vma} + ecx * 8 + 4], 0
    inc ecx
    cmp ecx, 512
    jne 1b

    mov eax, offset boot_pd - {vma} + 3
    mov [boot_pdpt_low - {vma}], eax
    mov [boot_pdpt_high - {vma} + 510 * 8], eax
    mov eax, offset boot_pdpt_low - {vma} + 3
    mov [boot_pml4 - {vma}], eax
    mov [boot_pml4 - {vma} + 256 * 8], eax
    mov eax, offset boot_pdpt_high - {vma} + 3
    mov [boot_pml4 - {vma} + 511 * 8], eax

    mov eax, cr4
    or eax, (1 << 5)              /* PAE */
    mov cr4, eax
    mov eax, offset boot_pml4 - {vma}
    mov cr3, eax
    mov ecx, 0xC0000080           /* EFER */
    rdmsr
    or eax, (1 << 8) | (1 << 11) | (1 << 0)   /* LME, NXE, SCE */
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) /* PG, WP */
    mov cr0, eax

    lgdt [boot_gdtr]
    /* Far return into the 64-bit code segment. */
    push 0x08
    mov eax, offset long_mode_start
    push eax
    retf

90: mov dx, 0x3f8
    mov esi, offset no_long_mode_msg
91: lodsb
    test al, al
    jz 92f
    out dx, al
    jmp 91b
92: hlt
    jmp 92b

    .code64
long_mode_start:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rax, offset higher_half_entry
    jmp rax

    .section .boot.data, "a"
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF      /* 64-bit code */
    .quad 0x00CF92000000FFFF      /* data */
boot_gdtr:
    .word boot_gdtr - boot_gdt - 1
    .long boot_gdt
no_long_mode_msg:
    .asciz "kernel: this CPU has no long mode or no NX; cannot boot\r\n"

    .section .text.boot64, "ax"
    .code64
higher_half_entry:
    lea rsp, [rip + boot_stack_top]
    xor ebp, ebp
    mov edi, edi                  /* upper halves are undefined after the mode switch */
    mov esi, esi
    call kmain
3:  hlt
    jmp 3b

    .section .bss.boot, "aw", @nobits
    .balign 4096
    .global boot_pml4
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096
    .global boot_stack_bottom
boot_stack_bottom:
    .skip 65536
    .global boot_stack_top
boot_stack_top:
    "#,
    magic = const MB_MAGIC,
    flags = const MB_FLAGS,
    checksum = const (0u32.wrapping_sub(MB_MAGIC).wrapping_sub(MB_FLAGS)),
    vma = const 0xffff_ffff_8000_0000u64,
);
