//! The initial stack a program starts with.
//!
//! Whoever starts a program (the kernel for `system`, a spawner for everyone
//! else) writes this block just below the top of the new stack and points
//! `rsp` at it:
//!
//! ```text
//! rsp ->  size            bytes in the whole block, so it can be read safely
//!         argc
//!         argv[0..argc]   addresses of NUL-terminated strings in the block
//!         0
//!         capc
//!         caps[0..capc]   InitCap { id, token }
//!         string bytes
//! ```
//!
//! `rsp` is 16-byte aligned. The same code builds the block in the kernel and
//! in user-space spawners, and parses it in the runtime's `_start`.

/// One capability handed to a program at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct InitCap {
    /// What the capability is for ([`crate::cap_id`]).
    pub id: u64,
    /// The token, valid in the new process only.
    pub token: u64,
}
crate::plain!(InitCap { id: u64, token: u64 });
// Two words per capability in the start block (`block_size`).
const _: () = assert!(core::mem::size_of::<InitCap>() == 2 * WORD);

/// Why a start block could not be built or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The output buffer (the space reserved on the stack) is too small.
    TooBig,
    /// The block read back is inconsistent.
    Malformed,
}

const WORD: usize = 8;

/// Bytes the block for these arguments and capabilities needs.
pub fn block_size(args: &[&[u8]], caps: &[InitCap]) -> usize {
    let words = 2 + args.len() + 1 + 1 + 2 * caps.len();
    let strings: usize = args.iter().map(|a| a.len() + 1).sum();
    (words * WORD + strings + 15) & !15
}

/// Write the block for a stack whose top is `stack_top` into the start of
/// `out`; returns the new `rsp` and the number of bytes used. The bytes belong
/// at `[rsp, rsp + used)` in the new address space.
pub fn build(
    stack_top: u64,
    args: &[&[u8]],
    caps: &[InitCap],
    out: &mut [u8],
) -> Result<(u64, usize), StartError> {
    let size = block_size(args, caps);
    if size > out.len() || (size as u64) > stack_top || !stack_top.is_multiple_of(16) {
        return Err(StartError::TooBig);
    }
    let rsp = stack_top - size as u64;
    let out = &mut out[..size];
    out.fill(0);
    let mut w = 0usize;
    let mut put = |out: &mut [u8], v: u64| {
        out[w * WORD..(w + 1) * WORD].copy_from_slice(&v.to_le_bytes());
        w += 1;
    };
    let header_words = 2 + args.len() + 1 + 1 + 2 * caps.len();
    let mut string_off = header_words * WORD;
    put(out, size as u64);
    put(out, args.len() as u64);
    for a in args {
        put(out, rsp + string_off as u64);
        string_off += a.len() + 1;
    }
    put(out, 0);
    put(out, caps.len() as u64);
    for c in caps {
        put(out, c.id);
        put(out, c.token);
    }
    let mut off = header_words * WORD;
    for a in args {
        out[off..off + a.len()].copy_from_slice(a);
        off += a.len() + 1; // NUL already there from fill(0)
    }
    Ok((rsp, size))
}

/// A parsed start block, borrowing the block's bytes.
#[derive(Debug)]
pub struct StartInfo<'a> {
    block: &'a [u8],
    base: u64,
    argc: usize,
    capc: usize,
}

impl<'a> StartInfo<'a> {
    /// Read the block `block`, which lives at address `base`. Every offset is
    /// checked against the block, so a corrupt block gives an error, never a
    /// wild read.
    pub fn parse(base: u64, block: &'a [u8]) -> Result<Self, StartError> {
        let word = |i: usize| -> Result<u64, StartError> {
            let b = block.get(i * WORD..(i + 1) * WORD).ok_or(StartError::Malformed)?;
            Ok(u64::from_le_bytes(b.try_into().map_err(|_| StartError::Malformed)?))
        };
        let size = word(0)? as usize;
        if size != block.len() {
            return Err(StartError::Malformed);
        }
        let argc = word(1)? as usize;
        if argc > size / WORD || word(2 + argc)? != 0 {
            return Err(StartError::Malformed);
        }
        let capc = word(3 + argc)? as usize;
        if capc > size / (2 * WORD) {
            return Err(StartError::Malformed);
        }
        let info = StartInfo { block, base, argc, capc };
        for i in 0..argc {
            info.arg_checked(i)?;
        }
        word(4 + argc + 2 * capc - 1).or(if capc == 0 { Ok(0) } else { Err(StartError::Malformed) })?;
        Ok(info)
    }

    fn word(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.block[i * WORD..(i + 1) * WORD].try_into().unwrap())
    }

    fn arg_checked(&self, i: usize) -> Result<&'a [u8], StartError> {
        let addr = self.word(2 + i);
        let off = addr.checked_sub(self.base).ok_or(StartError::Malformed)? as usize;
        let rest = self.block.get(off..).ok_or(StartError::Malformed)?;
        let len = rest.iter().position(|&b| b == 0).ok_or(StartError::Malformed)?;
        Ok(&rest[..len])
    }

    /// Number of arguments.
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// Argument `i` without its NUL.
    pub fn arg(&self, i: usize) -> Option<&'a [u8]> {
        if i < self.argc {
            self.arg_checked(i).ok()
        } else {
            None
        }
    }

    /// The arguments.
    pub fn args(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.argc).filter_map(move |i| self.arg(i))
    }

    /// The capabilities.
    pub fn caps(&self) -> impl Iterator<Item = InitCap> + '_ {
        let first = 4 + self.argc;
        (0..self.capc).map(move |i| InitCap {
            id: self.word(first + 2 * i),
            token: self.word(first + 2 * i + 1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_parse() {
        let args: [&[u8]; 3] = [b"ktest", b"ipc", b""];
        let caps = [InitCap { id: 1, token: 0xdead_beef }, InitCap { id: 0x100, token: 7 }];
        let mut buf = [0u8; 512];
        let top = 0x7fff_0000u64;
        let (rsp, used) = build(top, &args, &caps, &mut buf).unwrap();
        assert_eq!(rsp % 16, 0);
        assert_eq!(rsp + used as u64, top);
        let info = StartInfo::parse(rsp, &buf[..used]).unwrap();
        assert_eq!(info.argc(), 3);
        let got: Vec<&[u8]> = info.args().collect();
        assert_eq!(got, args.to_vec());
        let got: Vec<InitCap> = info.caps().collect();
        assert_eq!(got, caps.to_vec());
    }

    #[test]
    fn too_small_buffer_is_an_error() {
        let mut buf = [0u8; 16];
        assert_eq!(build(0x1000, &[b"x"], &[], &mut buf), Err(StartError::TooBig));
    }

    #[test]
    fn corrupt_blocks_are_rejected() {
        let mut buf = [0u8; 256];
        let (rsp, used) = build(0x10000, &[b"abc"], &[InitCap { id: 2, token: 3 }], &mut buf).unwrap();
        // Wrong size word.
        let mut bad = buf;
        bad[0] = 0xff;
        assert!(StartInfo::parse(rsp, &bad[..used]).is_err());
        // argv pointing outside the block.
        let mut bad = buf;
        bad[16..24].copy_from_slice(&(rsp + 4096).to_le_bytes());
        assert!(StartInfo::parse(rsp, &bad[..used]).is_err());
        // Huge argc.
        let mut bad = buf;
        bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(StartInfo::parse(rsp, &bad[..used]).is_err());
        // Truncated.
        assert!(StartInfo::parse(rsp, &buf[..8]).is_err());
    }
}
