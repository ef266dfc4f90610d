//! Multiboot entry: the headers loaders look for, and the 32-bit stub that
//! switches to long mode and jumps to the higher half.
//!
//! Two headers describe the same load: multiboot 1 (QEMU `-kernel`, iPXE)
//! and multiboot 2 (GRUB's `multiboot2` on BIOS and UEFI machines, which
//! hands over the EFI memory map and the ACPI RSDP). Both use address
//! fields, so either loader copies the file as one block to 1 MiB and
//! enters `_start32` in 32-bit protected mode without paging, with its magic
//! in `eax` and the physical address of its info block in `ebx`;
//! `boot::multiboot` tells the two apart by the magic. The stub builds just
//! enough page tables to run the kernel where it is linked (the first 4 GiB
//! at 0 and at the direct-map base, so loader data anywhere below 4 GiB can
//! be read; the first GiB at -2 GiB), enables long mode with NX, and calls
//! `kmain(magic, info)` on the boot stack. `mem::paging` replaces these
//! tables early in `kmain`.
//!
//! GRUB on UEFI instead enters `_start_efi64` (header tags 7 and 9) in long
//! mode with boot services running, so the kernel can ask the firmware for
//! randomness (EFI_RNG_PROTOCOL) before it exits boot services itself. That
//! stub keeps the EFI memory map (GRUB gives none in this mode), builds the
//! same tables and joins the common path.

use core::arch::global_asm;

use crate::boot::multiboot::EfiMap;

extern "C" {
    static efi_seed: [u8; 32];
    static efi_seed_bytes: u64;
    static efi_map: u8;
    static efi_map_size: u64;
    static efi_desc_size: u64;
}

/// The memory map the EFI entry took when it exited boot services, if the
/// kernel came in that way.
pub fn own_efi_map() -> Option<EfiMap> {
    // SAFETY: written only by the boot stub before `kmain`, read-only after.
    let (size, desc_size) = unsafe { (core::ptr::read_volatile(&efi_map_size), core::ptr::read_volatile(&efi_desc_size)) };
    // SAFETY: only the symbol's address is used.
    let addr = unsafe { &efi_map as *const u8 as u64 } - crate::arch::x86_64::KERNEL_VMA;
    (size != 0).then_some(EfiMap { addr, size: size.min(EFI_MAP_BYTES as u64), desc_size })
}

/// The bytes the firmware's EFI_RNG_PROTOCOL gave the EFI entry (empty on
/// any other path, or when the firmware has no RNG).
pub fn efi_random() -> &'static [u8] {
    // SAFETY: written only by the boot stub before `kmain`, read-only after.
    unsafe {
        let n = core::ptr::read_volatile(&efi_seed_bytes).min(32) as usize;
        core::slice::from_raw_parts(core::ptr::addr_of!(efi_seed).cast::<u8>(), n)
    }
}

/// Multiboot header flags: page-align modules, give memory info, and use the
/// address fields below (bit 16) since the kernel is a 64-bit ELF.
const MB_FLAGS: u32 = (1 << 0) | (1 << 1) | (1 << 16);
const MB_MAGIC: u32 = 0x1BAD_B002;

/// Multiboot 2 header: magic, architecture 0 (i386 protected mode), and
/// its length: 16 bytes of header, the address tag (24), the entry tag
/// (12, padded to 16), the module-alignment tag (8), the EFI boot-services
/// tag (8), the EFI amd64 entry tag (12, padded to 16) and the end tag (8).
const MB2_MAGIC: u32 = 0xE852_50D6;
const MB2_LENGTH: u32 = 16 + 24 + 16 + 8 + 8 + 16 + 8;

/// Bytes kept for the EFI memory map that ExitBootServices needs the key of.
const EFI_MAP_BYTES: u32 = 32 * 1024;
/// Offsets in EFI_SYSTEM_TABLE and EFI_BOOT_SERVICES (UEFI 2.x, x64).
const EFI_ST_BOOT_SERVICES: u32 = 96;
const EFI_BS_GET_MEMORY_MAP: u32 = 56;
const EFI_BS_EXIT_BOOT_SERVICES: u32 = 232;
const EFI_BS_LOCATE_PROTOCOL: u32 = 320;

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

    .balign 8
multiboot2_header:
    .long {mb2_magic}
    .long 0                       /* architecture: i386 */
    .long {mb2_length}
    .long {mb2_checksum}
    .short 2, 0                   /* address tag */
    .long 24
    .long multiboot2_header       /* header_addr */
    .long __kernel_phys_start     /* load_addr */
    .long __load_end_phys         /* load_end_addr */
    .long __bss_end_phys          /* bss_end_addr */
    .short 3, 0                   /* entry address tag */
    .long 12
    .long _start32
    .long 0                       /* pad to 8 */
    .short 6, 0                   /* page-align modules */
    .long 8
    .short 7, 1                   /* EFI: keep boot services (optional) */
    .long 8
    .short 9, 1                   /* EFI amd64 entry (optional) */
    .long 12
    .long _start_efi64
    .long 0                       /* pad to 8 */
    .short 0, 0                   /* end */
    .long 8

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

    /* Four PDs: the first 4 GiB in 2 MiB pages. */
    mov ecx, 0
1:  mov eax, ecx
    shl eax, 21
    or eax, 0x83                  /* present | writable | huge */
    mov [boot_pd - {vma} + ecx * 8], eax
    mov eax, ecx
    shr eax, 11
    mov [boot_pd - {vma} + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jne 1b

    mov eax, offset boot_pd - {vma} + 3
    mov [boot_pdpt_high - {vma} + 510 * 8], eax
    mov ecx, 0
2:  mov [boot_pdpt_low - {vma} + ecx * 8], eax
    add eax, 4096
    inc ecx
    cmp ecx, 4
    jne 2b
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


    /* GRUB on UEFI enters here instead (header tags 7 and 9): long mode on
       the firmware's page tables, GDT, IDT and stack, boot services still
       running; rax = multiboot-2 magic, rbx = the info block (below 4 GiB).
       Ask the firmware for randomness (EFI_RNG_PROTOCOL) into `efi_seed`,
       exit boot services, then continue like the 32-bit path on our own
       tables. GRUB's info block still holds its memory map (tag 6). Only
       code below 4 GiB runs here and every address is physical. */
    .code64
    .global _start_efi64
_start_efi64:
    cld
    mov r12d, eax                 /* magic */
    mov r13d, ebx                 /* info block */
    and rsp, -16
    sub rsp, 96                   /* shadow space, 5th argument, locals at 48.. */
    xor r14d, r14d                /* system table (tag 12) */
    xor r15d, r15d                /* image handle (tag 20) */
    lea rsi, [r13 + 8]
1:  mov eax, [rsi]
    test eax, eax
    jz 3f
    cmp eax, 12
    jne 2f
    mov r14, [rsi + 8]
2:  cmp eax, 20
    jne 4f
    mov r15, [rsi + 8]
4:  mov ecx, [rsi + 4]
    add ecx, 7
    and ecx, -8
    jz 3f                         /* a zero-sized tag would loop for ever */
    add rsi, rcx
    jmp 1b
3:  mov edx, offset efi_no_tables_msg
    test r14, r14
    jz 80f
    test r15, r15
    jz 80f
    mov rbx, [r14 + {st_bs}]      /* boot services (callee-saved across EFI calls) */

    /* LocateProtocol(&EFI_RNG_PROTOCOL_GUID, NULL, &rng) */
    mov ecx, offset efi_rng_guid
    xor edx, edx
    lea r8, [rsp + 48]
    call [rbx + {bs_locate}]
    test rax, rax
    jnz 5f
    /* rng->GetRNG(rng, NULL (default algorithm), 32, efi_seed) */
    mov rcx, [rsp + 48]
    xor edx, edx
    mov r8d, 32
    mov r9d, offset efi_seed - {vma}
    call [rcx + 8]
    test rax, rax
    jnz 5f
    mov dword ptr [efi_seed_bytes - {vma}], 32

5:  mov dword ptr [rsp + 88], 4   /* attempts at ExitBootServices */
6:  /* GetMemoryMap(&size, map, &key, &descriptor_size, &version) */
    mov qword ptr [rsp + 56], {map_bytes}
    lea rcx, [rsp + 56]
    mov edx, offset efi_map - {vma}
    lea r8, [rsp + 64]
    lea r9, [rsp + 72]
    lea rax, [rsp + 80]
    mov [rsp + 32], rax
    call [rbx + {bs_get_map}]
    mov edx, offset efi_map_msg
    test rax, rax
    jnz 80f
    /* ExitBootServices(image, key); the key goes stale if the firmware
       allocated in between, so try again with a fresh map. */
    mov rcx, r15
    mov rdx, [rsp + 64]
    call [rbx + {bs_exit}]
    test rax, rax
    jz 7f
    dec dword ptr [rsp + 88]
    jnz 6b
    mov edx, offset efi_exit_msg
    jmp 80f

7:  cli
    /* Keep the map for the kernel: GRUB gives none in this mode. */
    mov rax, [rsp + 56]
    mov [efi_map_size - {vma}], rax
    mov rax, [rsp + 72]
    mov [efi_desc_size - {vma}], rax
    /* Our tables, as in the 32-bit path: four PDs for the first 4 GiB. */
    xor ecx, ecx
8:  mov eax, ecx
    shl rax, 21
    or rax, 0x83
    mov [boot_pd - {vma} + rcx * 8], rax
    inc ecx
    cmp ecx, 2048
    jne 8b
    mov eax, offset boot_pd - {vma} + 3
    mov [boot_pdpt_high - {vma} + 510 * 8], rax
    xor ecx, ecx
9:  mov [boot_pdpt_low - {vma} + rcx * 8], rax
    add rax, 4096
    inc ecx
    cmp ecx, 4
    jne 9b
    mov eax, offset boot_pdpt_low - {vma} + 3
    mov [boot_pml4 - {vma}], rax
    mov [boot_pml4 - {vma} + 256 * 8], rax
    mov eax, offset boot_pdpt_high - {vma} + 3
    mov [boot_pml4 - {vma} + 511 * 8], rax
    mov ecx, 0xC0000080           /* EFER: long mode is on; add NX and syscall */
    rdmsr
    or eax, (1 << 11) | (1 << 0)
    wrmsr
    mov rax, cr0
    or eax, (1 << 16)             /* WP */
    mov cr0, rax
    mov eax, offset boot_pml4 - {vma}
    mov cr3, rax
    lgdt [boot_gdtr64]
    mov edi, r12d
    mov esi, r13d
    push 0x08
    mov eax, offset long_mode_start
    push rax
    retfq

80: /* Report the message at edx on COM1 and stop. */
    mov rsi, rdx
81: lodsb
    test al, al
    jz 82f
    mov dx, 0x3f8
    out dx, al
    jmp 81b
82: cli
    hlt
    jmp 82b

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
    .balign 8
boot_gdtr64:
    .word boot_gdtr - boot_gdt - 1
    .quad boot_gdt
    .balign 8
efi_rng_guid:                     /* 3152bca5-eade-433d-862e-c01cdc291f44 */
    .long 0x3152bca5
    .short 0xeade, 0x433d
    .byte 0x86, 0x2e, 0xc0, 0x1c, 0xdc, 0x29, 0x1f, 0x44
efi_no_tables_msg:
    .asciz "kernel: the EFI entry got no system table or image handle\r\n"
efi_map_msg:
    .asciz "kernel: EFI GetMemoryMap failed\r\n"
efi_exit_msg:
    .asciz "kernel: EFI ExitBootServices failed\r\n"
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
boot_pd:        .skip 4 * 4096
    .global efi_seed
efi_seed:       .skip 32          /* EFI_RNG_PROTOCOL output (EFI entry only) */
    .global efi_seed_bytes
efi_seed_bytes: .skip 8           /* how many bytes of it are valid */
    .global efi_map_size
efi_map_size:   .skip 8           /* bytes of `efi_map` in use (EFI entry only) */
    .global efi_desc_size
efi_desc_size:  .skip 8
    .global efi_map
efi_map:        .skip {map_bytes}
    .balign 4096
    .global boot_stack_bottom
boot_stack_bottom:
    .skip 65536
    .global boot_stack_top
boot_stack_top:
    "#,
    magic = const MB_MAGIC,
    flags = const MB_FLAGS,
    checksum = const (0u32.wrapping_sub(MB_MAGIC).wrapping_sub(MB_FLAGS)),
    mb2_magic = const MB2_MAGIC,
    mb2_length = const MB2_LENGTH,
    mb2_checksum = const (0u32.wrapping_sub(MB2_MAGIC).wrapping_sub(MB2_LENGTH)),
    vma = const 0xffff_ffff_8000_0000u64,
    map_bytes = const EFI_MAP_BYTES,
    st_bs = const EFI_ST_BOOT_SERVICES,
    bs_get_map = const EFI_BS_GET_MEMORY_MAP,
    bs_exit = const EFI_BS_EXIT_BOOT_SERVICES,
    bs_locate = const EFI_BS_LOCATE_PROTOCOL,
);
