//! The boot RAMFS image, mapped read-only.

use core::sync::atomic::{AtomicUsize, Ordering};

use abi::{cap_id, layout, Error};

use crate::mem::PhysRange;

static LEN: AtomicUsize = AtomicUsize::new(0);

/// The image's bytes (mapped on first use; needs the RAMFS capability).
pub fn image() -> Result<&'static [u8], Error> {
    let mut len = LEN.load(Ordering::Acquire);
    if len == 0 {
        let cap = PhysRange(crate::init_cap(cap_id::RAMFS).ok_or(Error::Incapable)?);
        let (_, size) = cap.info()?;
        match cap.map(layout::RAMFS_BASE, 0, size, abi::MapFlags::READ) {
            // Another of our threads mapped it first: RAMFS_BASE is kept
            // for the image alone, so what is there is the image.
            Ok(()) | Err(Error::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
        LEN.store(size as usize, Ordering::Release);
        len = size as usize;
    }
    // SAFETY: the image is mapped read-only at RAMFS_BASE for the rest of
    // the program and nothing unmaps it.
    Ok(unsafe { core::slice::from_raw_parts(layout::RAMFS_BASE as *const u8, len) })
}

/// The image as a cpio archive.
pub fn archive() -> Result<cpio::Archive<'static>, Error> {
    cpio::Archive::new(image()?).map_err(|_| Error::InvalidArgument)
}
