//! The storage protocol: what a disk client sends `ahcidrv` and gets back.
//!
//! Every message has tag [`TAG`] and starts with a postcard-encoded
//! [`Request`]. Write data follows at [`WRITE_DATA`]; read data comes back
//! at offset 0 of the client's buffer (a page-aligned 4 KiB buffer is lent,
//! so the server writes it in place and nothing is copied by the kernel).
//! The reply's result is [`OK`] with the data (read sectors, or a
//! postcard-encoded [`DiskInfo`]), or [`ERR`] with a postcard-encoded
//! [`StorageError`] in the reply, or [`ERR_INLINE`] with it in the result
//! word itself ([`inline_error`]): the reply to a `SendCap` call (`Attach`)
//! carries no body, and a refusal must still say why. Requests are checked
//! here, before any hardware is touched ([`Request::check`]).

use serde::{Deserialize, Serialize};

/// The message tag of the storage protocol.
pub const TAG: u64 = 0x5354_4f52; // "STOR"
/// Reply result: success.
pub const OK: u64 = 0;
/// Reply result: the data is a [`StorageError`].
pub const ERR: u64 = 1;
/// Reply result (low byte): the [`StorageError`] is in the result word's
/// upper 7 bytes ([`inline_error`]), for replies that carry no body.
pub const ERR_INLINE: u64 = 2;
/// Bytes per sector (the driver refuses disks with other logical sizes).
pub const SECTOR: usize = 512;
/// Where write data starts in a request (the request header comes first).
pub const WRITE_DATA: usize = SECTOR;
/// Most sectors one read moves: one page.
pub const MAX_READ: u32 = (abi::PAGE_SIZE / SECTOR) as u32;
/// Most sectors one write moves: the page minus the header sector.
pub const MAX_WRITE: u32 = ((abi::PAGE_SIZE - WRITE_DATA) / SECTOR) as u32;
/// Longest encoded request.
pub const MAX_REQUEST: usize = 32;

/// A request for disk `disk` (the index in the driver's IDENTIFY log and in
/// the name `AHCI::DISK<n>`). Each disk's channel answers for its own
/// index only (others get [`StorageError::NoDisk`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Model, serial, capacity.
    Info { disk: u8 },
    /// `count` sectors from `lba`, into the reply.
    Read { disk: u8, lba: u64, count: u32 },
    /// `count` sectors at `lba` from the message at [`WRITE_DATA`].
    Write { disk: u8, lba: u64, count: u32 },
    /// Write the device's cache to the medium.
    Flush { disk: u8 },
    /// Sent with `SendCap` carrying a physical range (READ, WRITE) of
    /// [`BUF_MIN`]..=[`BUF_MAX`] bytes the client can map (DMA memory from
    /// `runtime::mem::dma_alloc`): this channel's buffer for [`Request::ReadBuf`]
    /// from now on (it replaces an earlier one).
    Attach { disk: u8 },
    /// `count` sectors from `lba` straight into the attached buffer, at its
    /// start (up to [`MAX_BUF_READ`]: 64 KiB in one command); no data in
    /// the reply.
    ReadBuf { disk: u8, lba: u64, count: u32 },
    /// `count` sectors at `lba` straight from the start of the attached
    /// buffer (up to [`MAX_BUF_WRITE`]: 64 KiB in one command).
    WriteBuf { disk: u8, lba: u64, count: u32 },
}

/// Most sectors one [`Request::ReadBuf`] moves: 64 KiB.
pub const MAX_BUF_READ: u32 = 128;
/// Most sectors one [`Request::WriteBuf`] moves: the same 64 KiB.
pub const MAX_BUF_WRITE: u32 = MAX_BUF_READ;
/// Smallest attached buffer: one page.
pub const BUF_MIN: u64 = abi::PAGE_SIZE as u64;
/// Largest attached buffer: what one [`Request::ReadBuf`] fills.
pub const BUF_MAX: u64 = MAX_BUF_READ as u64 * SECTOR as u64;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageError {
    /// The message is not a request (bad tag, undecodable, trailing bytes,
    /// write data missing).
    BadRequest,
    /// No disk with that index.
    NoDisk,
    /// The sectors run past the end of the disk.
    OutOfRange,
    /// A read or write of zero sectors.
    ZeroCount,
    /// More sectors than one request may move ([`MAX_READ`], [`MAX_WRITE`]).
    TooMany,
    /// The device reported a task-file error (status and error registers).
    DeviceError { status: u8, error: u8 },
    /// The device is no longer attached to its port.
    Gone,
    /// The device did not complete the command in time.
    Timeout,
    /// `ReadBuf` or `WriteBuf` with no buffer attached or more sectors
    /// than it holds.
    NoBuffer,
    /// `Attach` refused its capability, saying why.
    BadBuffer(BufferRefusal),
}

/// Why `Attach` refused a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BufferRefusal {
    /// No capability came with the request.
    Missing,
    /// The capability is not a physical range.
    NotPhysical,
    /// The range lacks READ or WRITE.
    Rights,
    /// The range is not [`BUF_MIN`]..=[`BUF_MAX`] bytes.
    Size,
}

/// The result word of a reply without a body that says `e`:
/// [`ERR_INLINE`] in the low byte, `e`'s postcard encoding (at most 7
/// bytes: checked in the tests for every variant) above it.
pub fn inline_error(e: StorageError) -> u64 {
    let mut b = [0u8; 8];
    match postcard::to_slice(&e, &mut b[1..]) {
        Ok(_) => {
            b[0] = ERR_INLINE as u8;
            u64::from_le_bytes(b)
        }
        Err(_) => ERR,
    }
}

/// The error an [`ERR_INLINE`] result word carries (None: not one).
pub fn error_of_inline(result: u64) -> Option<StorageError> {
    let b = result.to_le_bytes();
    if b[0] as u64 != ERR_INLINE {
        return None;
    }
    postcard::take_from_bytes(&b[1..]).ok().map(|(e, _)| e)
}

/// What `Info` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    pub port: u8,
    pub sectors: u64,
    pub model: heapless::String<40>,
    pub serial: heapless::String<20>,
    /// Reads and writes so far that moved straight between the device and
    /// a client's lent page (no copy in the driver).
    pub direct: u64,
    /// Times so far a serving thread that found the controller busy was
    /// handed its turn by the holder (controller-wide).
    pub handoffs: u64,
}

impl Request {
    pub fn disk(&self) -> u8 {
        match *self {
            Request::Info { disk } | Request::Flush { disk } | Request::Attach { disk } => disk,
            Request::Read { disk, .. }
            | Request::Write { disk, .. }
            | Request::ReadBuf { disk, .. }
            | Request::WriteBuf { disk, .. } => disk,
        }
    }

    /// Decode a request from the message `msg`: one request at its start;
    /// the rest is room for the reply (a read's data, `Info`'s answer) or,
    /// from [`WRITE_DATA`], a write's data, which must be all there.
    pub fn decode(tag: u64, msg: &[u8]) -> Result<Request, StorageError> {
        if tag != TAG {
            return Err(StorageError::BadRequest);
        }
        let head = &msg[..msg.len().min(WRITE_DATA)];
        let (req, _room) = postcard::take_from_bytes::<Request>(head).map_err(|_| StorageError::BadRequest)?;
        if let Request::Write { count, .. } = req {
            if msg.len() < WRITE_DATA + (count.min(MAX_WRITE) as usize) * SECTOR {
                return Err(StorageError::BadRequest);
            }
        }
        Ok(req)
    }

    /// Check a request against a disk of `sectors` sectors.
    pub fn check(&self, sectors: u64) -> Result<(), StorageError> {
        let (lba, count, max) = match *self {
            Request::Read { lba, count, .. } => (lba, count, MAX_READ),
            Request::Write { lba, count, .. } => (lba, count, MAX_WRITE),
            Request::ReadBuf { lba, count, .. } => (lba, count, MAX_BUF_READ),
            Request::WriteBuf { lba, count, .. } => (lba, count, MAX_BUF_WRITE),
            Request::Info { .. } | Request::Flush { .. } | Request::Attach { .. } => return Ok(()),
        };
        if count == 0 {
            return Err(StorageError::ZeroCount);
        }
        if count > max {
            return Err(StorageError::TooMany);
        }
        match lba.checked_add(count as u64) {
            Some(end) if end <= sectors => Ok(()),
            _ => Err(StorageError::OutOfRange),
        }
    }

    /// Encode into the start of `buf`; returns the length.
    pub fn encode(&self, buf: &mut [u8]) -> usize {
        postcard::to_slice(self, buf).map(|b| b.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_reject_garbage() {
        let mut buf = [0u8; 4096];
        for r in [
            Request::Info { disk: 1 },
            Request::Read { disk: 0, lba: u64::MAX, count: 8 },
            Request::Flush { disk: 3 },
        ] {
            let n = r.encode(&mut buf);
            assert!(n > 0 && n <= MAX_REQUEST);
            assert_eq!(Request::decode(TAG, &buf[..n]), Ok(r));
            assert_eq!(Request::decode(TAG + 1, &buf[..n]), Err(StorageError::BadRequest), "wrong tag accepted");
            assert_eq!(Request::decode(TAG, &buf[..n - 1]), Err(StorageError::BadRequest), "cut short");
            assert_eq!(Request::decode(TAG, &buf), Ok(r), "room after the request");
        }
        assert_eq!(Request::decode(TAG, &[]), Err(StorageError::BadRequest));
        assert_eq!(Request::decode(TAG, &[9, 9, 9]), Err(StorageError::BadRequest), "unknown variant");
        // A write needs its data.
        let w = Request::Write { disk: 0, lba: 5, count: 2 };
        let n = w.encode(&mut buf);
        assert_eq!(Request::decode(TAG, &buf[..n]), Err(StorageError::BadRequest));
        assert_eq!(Request::decode(TAG, &buf[..WRITE_DATA + SECTOR]), Err(StorageError::BadRequest), "one sector of two");
        assert_eq!(Request::decode(TAG, &buf[..WRITE_DATA + 2 * SECTOR]), Ok(w));
    }

    #[test]
    fn checks_range_count_and_limit() {
        let r = |lba, count| Request::Read { disk: 0, lba, count };
        let w = |lba, count| Request::Write { disk: 0, lba, count };
        assert_eq!(r(0, 8).check(100), Ok(()));
        assert_eq!(r(92, 8).check(100), Ok(()));
        assert_eq!(r(93, 8).check(100), Err(StorageError::OutOfRange));
        assert_eq!(r(100, 1).check(100), Err(StorageError::OutOfRange));
        assert_eq!(r(u64::MAX, 1).check(100), Err(StorageError::OutOfRange), "overflow");
        assert_eq!(r(0, 0).check(100), Err(StorageError::ZeroCount));
        assert_eq!(r(0, MAX_READ + 1).check(100), Err(StorageError::TooMany));
        assert_eq!(w(0, MAX_WRITE).check(100), Ok(()));
        assert_eq!(w(0, MAX_WRITE + 1).check(100), Err(StorageError::TooMany));
        let b = |lba, count| Request::ReadBuf { disk: 0, lba, count };
        assert_eq!(b(0, MAX_BUF_READ).check(200), Ok(()));
        assert_eq!(b(0, MAX_BUF_READ + 1).check(200), Err(StorageError::TooMany));
        assert_eq!(b(100, MAX_BUF_READ).check(200), Err(StorageError::OutOfRange));
        assert_eq!(b(0, 0).check(200), Err(StorageError::ZeroCount));
        let wb = |lba, count| Request::WriteBuf { disk: 0, lba, count };
        assert_eq!(wb(0, MAX_BUF_WRITE).check(200), Ok(()));
        assert_eq!(wb(72, MAX_BUF_WRITE).check(200), Ok(()));
        assert_eq!(wb(0, MAX_BUF_WRITE + 1).check(200), Err(StorageError::TooMany));
        assert_eq!(wb(73, MAX_BUF_WRITE).check(200), Err(StorageError::OutOfRange));
        assert_eq!(wb(0, 0).check(200), Err(StorageError::ZeroCount));
        assert_eq!(wb(3, 1).disk(), 0);
        assert_eq!(Request::Attach { disk: 2 }.disk(), 2);
        assert_eq!(BUF_MAX, 64 * 1024);
        assert_eq!(Request::Flush { disk: 0 }.check(0), Ok(()));
        assert_eq!((MAX_READ, MAX_WRITE), (8, 7));
    }

    #[test]
    fn errors_encode_small() {
        let mut buf = [0u8; 16];
        let e = StorageError::DeviceError { status: 0x51, error: 0x04 };
        let n = postcard::to_slice(&e, &mut buf).unwrap().len();
        assert_eq!(postcard::from_bytes::<StorageError>(&buf[..n]).unwrap(), e);
    }

    #[test]
    fn every_error_fits_the_result_word() {
        use BufferRefusal::*;
        let all = [
            StorageError::BadRequest,
            StorageError::NoDisk,
            StorageError::OutOfRange,
            StorageError::ZeroCount,
            StorageError::TooMany,
            StorageError::DeviceError { status: 0xff, error: 0xff },
            StorageError::Gone,
            StorageError::Timeout,
            StorageError::NoBuffer,
            StorageError::BadBuffer(Missing),
            StorageError::BadBuffer(NotPhysical),
            StorageError::BadBuffer(Rights),
            StorageError::BadBuffer(Size),
        ];
        for e in all {
            let w = inline_error(e);
            assert_eq!(w & 0xff, ERR_INLINE, "{e:?} does not fit in 7 bytes");
            assert_eq!(error_of_inline(w), Some(e));
        }
        assert_ne!(inline_error(StorageError::BadBuffer(Size)), inline_error(StorageError::BadBuffer(Rights)));
        assert_eq!(error_of_inline(OK), None);
        assert_eq!(error_of_inline(ERR), None);
        assert_eq!(error_of_inline(ERR_INLINE | 0xff << 8), None, "not an error's encoding");
    }
}
