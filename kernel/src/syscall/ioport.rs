//! I/O-port capabilities: byte-wide `in`/`out` at ports a capability names.
//!
//! The kernel mints one such capability at boot, for COM1's eight
//! registers, and gives it to `system` (which hands it to the shell). A
//! capability holds a port range in `base_frame` (first port) and `frames`
//! (count); a port outside it is `InvalidArgument`, so the holder reaches
//! exactly the device it was given and never, say, the PIC or PCI config.

use abi::{CapKind, Error};

use crate::cap::{Cap, SysError};
use crate::kernel::Kernel;

impl Cap {
    /// An I/O-port capability for `range`.
    pub fn io_ports(range: abi::ioport::Range, rights: abi::IoPortRights) -> Cap {
        let mut cap = Cap::object(CapKind::IoPort, u32::MAX, 0, rights);
        cap.base_frame = range.base as u32;
        cap.frames = range.len as u32;
        cap
    }

    /// The port range of an I/O-port capability.
    fn port_range(&self) -> abi::ioport::Range {
        abi::ioport::Range { base: self.base_frame as u16, len: self.frames as u16 }
    }
}

impl Kernel {
    /// The port `port` if `token` is process `p`'s I/O-port capability with
    /// `need` covering it.
    pub(super) fn io_port(&mut self, p: usize, token: u64, need: abi::IoPortRights, port: u64) -> Result<u16, SysError> {
        let cap = self.lookup(p, token, Some(CapKind::IoPort), need)?;
        if cap.port_range().contains(port) {
            Ok(port as u16)
        } else {
            Err(Error::InvalidArgument.into())
        }
    }
}
