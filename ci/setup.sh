#!/usr/bin/env bash
# Install what building and testing need on a fresh machine: the bare-metal
# Rust target, QEMU (with the qboot BIOS and the iPXE ROMs for netboot) and
# GNU cpio (host tests check our RAMFS image with it), a C linker for
# host builds (build scripts and proc macros link with `cc`), clippy, and for
# the boot media GRUB (BIOS and UEFI), xorriso and mtools, and OVMF (UEFI
# firmware for the media checks). Anything already
# present is left alone, so running this again costs a second.
set -euo pipefail

target=x86_64-unknown-none
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "setup: adding the $target Rust target"
    rustup target add "$target"
fi

# Clippy is a rustup component: adding it needs the network, so a machine
# without one keeps going and `ci test` reports the lint check as skipped.
if ! cargo clippy --version >/dev/null 2>&1; then
    echo "setup: adding clippy"
    rustup component add clippy || echo "setup: warning: cannot add clippy (offline?); the clippy check will be skipped"
fi

packages=()
command -v qemu-system-x86_64 >/dev/null || packages+=(qemu-system-x86)
[ -f /usr/share/qemu/qboot.rom ] || packages+=(qemu-system-data)
[ -f /usr/lib/ipxe/qemu/efi-e1000.rom ] || [ -f /usr/lib/ipxe/qemu/pxe-e1000.rom ] || packages+=(ipxe-qemu)
command -v cpio >/dev/null || packages+=(cpio)
command -v cc >/dev/null || packages+=(gcc libc6-dev)
command -v grub-mkrescue >/dev/null || packages+=(grub-common)
[ -d /usr/lib/grub/i386-pc ] || packages+=(grub-pc-bin)
[ -d /usr/lib/grub/x86_64-efi ] || packages+=(grub-efi-amd64-bin)
command -v xorriso >/dev/null || packages+=(xorriso)
command -v mformat >/dev/null || packages+=(mtools)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || packages+=(ovmf)

if [ ${#packages[@]} -gt 0 ]; then
    echo "setup: installing ${packages[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null; }
fi
echo "setup: ready ($(qemu-system-x86_64 --version | head -1), $(rustc --version))"
