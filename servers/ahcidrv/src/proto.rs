//! The storage protocol: what a disk client sends `ahcidrv` and gets back,
//! a `runtime::rpc` protocol ([`Request`]; the typed client is
//! [`crate::client::Disk`]).
//!
//! `Read` and `Write` are page operations: the client sends one
//! page-aligned 4 KiB page, which is lent, so the device moves the data
//! in and out of it in place (read data at offset 0, write data from
//! [`WRITE_DATA`]). Errors are [`StorageError`] values, which may carry
//! data (`DeviceError { status, error }`): the runtime's `error_values!`
//! framing, in the result word itself (every one fits in 4 bytes, checked
//! below), so the reply to `Attach` (a `SendCap` call, no reply body)
//! still says why it was refused. Requests are checked here, before any
//! hardware is touched ([`Request::check`]).

use runtime::rpc::MaxSize;
use serde::{Deserialize, Serialize};

/// Bytes per sector (the driver refuses disks with other logical sizes).
pub const SECTOR: usize = 512;
/// Where write data starts in a `Write`'s page (the request comes first).
pub const WRITE_DATA: usize = SECTOR;
/// Most sectors one read moves: one page.
pub const MAX_READ: u32 = (abi::PAGE_SIZE / SECTOR) as u32;
/// Most sectors one write moves: the page minus the request's sector.
pub const MAX_WRITE: u32 = ((abi::PAGE_SIZE - WRITE_DATA) / SECTOR) as u32;

/// Each request names disk `disk` (the index in the driver's IDENTIFY log
/// and in the name `AHCI::DISK<n>`). Each disk's channel answers for its
/// own index only (others get [`StorageError::NoDisk`]).
///
/// Model, serial, capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Info {
    pub disk: u8,
}

/// `count` sectors from `lba`, into the page at offset 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Read {
    pub disk: u8,
    pub lba: u64,
    pub count: u32,
}

/// `count` sectors at `lba` from the page at [`WRITE_DATA`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Write {
    pub disk: u8,
    pub lba: u64,
    pub count: u32,
}

/// Write the device's cache to the medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Flush {
    pub disk: u8,
}

/// Sent with `SendCap` carrying a physical range (READ, WRITE) of
/// [`BUF_MIN`]..=[`BUF_MAX`] bytes the client can map (DMA memory from
/// `runtime::mem::dma_alloc`): this channel's buffer for [`ReadBuf`] and
/// [`WriteBuf`] from now on (it replaces an earlier one). A refusal says
/// why ([`StorageError::BadBuffer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Attach {
    pub disk: u8,
}

/// `count` sectors from `lba` straight into the attached buffer, at its
/// start (up to [`MAX_BUF_READ`]: 64 KiB in one command).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct ReadBuf {
    pub disk: u8,
    pub lba: u64,
    pub count: u32,
}

/// `count` sectors at `lba` straight from the start of the attached buffer
/// (up to [`MAX_BUF_WRITE`]: 64 KiB in one command).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct WriteBuf {
    pub disk: u8,
    pub lba: u64,
    pub count: u32,
}

runtime::protocol! {
    /// A storage request.
    pub enum Request: StorageError {
        Info(Info) = 1 -> DiskInfo;
        Read(Read) = 2 -> (), page;
        Write(Write) = 3 -> (), page;
        Flush(Flush) = 4 -> ();
        Attach(Attach) = 5 -> ();
        ReadBuf(ReadBuf) = 6 -> ();
        WriteBuf(WriteBuf) = 7 -> ();
    }
}

/// Most sectors one [`ReadBuf`] moves: 64 KiB.
pub const MAX_BUF_READ: u32 = 128;
/// Most sectors one [`WriteBuf`] moves: the same 64 KiB.
pub const MAX_BUF_WRITE: u32 = MAX_BUF_READ;
/// Smallest attached buffer: one page.
pub const BUF_MIN: u64 = abi::PAGE_SIZE as u64;
/// Largest attached buffer: what one [`ReadBuf`] fills.
pub const BUF_MAX: u64 = MAX_BUF_READ as u64 * SECTOR as u64;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum StorageError {
    /// A request the driver cannot carry out as sent (write data that is
    /// not whole sectors, a read whose data does not fit the message).
    /// Frames that are not the protocol get the runtime's `WireError`s.
    BadRequest,
    /// No disk with that index.
    NoDisk,
    /// The sectors run past the end of the disk.
    OutOfRange,
    /// A read or write of zero sectors.
    ZeroCount,
    /// More sectors than one request may move ([`MAX_READ`], [`MAX_WRITE`],
    /// [`MAX_BUF_READ`], [`MAX_BUF_WRITE`]).
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
runtime::error_values!(StorageError);

/// Why `Attach` refused a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
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

/// What `Info` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct DiskInfo {
    pub port: u8,
    pub sectors: u64,
    pub model: heapless::String<40>,
    pub serial: heapless::String<20>,
    /// Reads and writes so far that moved straight between the device and
    /// a client's lent page or attached buffer (no copy in the driver).
    pub direct: u64,
    /// Times so far a serving thread that found the controller busy was
    /// handed its turn by the holder (controller-wide).
    pub handoffs: u64,
}

impl Request {
    pub fn disk(&self) -> u8 {
        match self {
            Request::Info(Info { disk }) | Request::Flush(Flush { disk }) | Request::Attach(Attach { disk }) => *disk,
            Request::Read(r) => r.disk,
            Request::Write(w) => w.disk,
            Request::ReadBuf(r) => r.disk,
            Request::WriteBuf(w) => w.disk,
        }
    }

    /// Check a request against a disk of `sectors` sectors.
    pub fn check(&self, sectors: u64) -> Result<(), StorageError> {
        let (lba, count, max) = match self {
            Request::Read(r) => (r.lba, r.count, MAX_READ),
            Request::Write(w) => (w.lba, w.count, MAX_WRITE),
            Request::ReadBuf(r) => (r.lba, r.count, MAX_BUF_READ),
            Request::WriteBuf(w) => (w.lba, w.count, MAX_BUF_WRITE),
            Request::Info(_) | Request::Flush(_) | Request::Attach(_) => return Ok(()),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::rpc::wire::{split_result, ERROR_IN_WORD};
    use runtime::rpc::{decode_reply, encode_request, CallError, Op, ProtocolError, Request as _, WireError};

    #[test]
    fn requests_round_trip_and_reject_garbage() {
        let mut page = [0u8; 4096];
        let n = encode_request(&Info { disk: 1 }, &mut page).unwrap();
        assert!(matches!(Request::decode(Info::OP, &page[..n]), Ok(Request::Info(Info { disk: 1 }))));
        assert_eq!(Request::decode(99, &page[..n]).err(), Some(WireError::UnknownOperation));
        assert_eq!(Request::decode(Info::OP, &[]).err(), Some(WireError::Truncated));
        let r = Read { disk: 0, lba: u64::MAX, count: 8 };
        encode_request(&r, &mut page).unwrap();
        assert!(matches!(Request::decode(Read::OP, &page), Ok(Request::Read(got)) if got == r));
        // Page operations come in exactly one page.
        assert_eq!(Request::decode(Read::OP, &page[..100]).err(), Some(WireError::NeedsPage));
        assert_eq!(Request::decode(Write::OP, &page[..4095]).err(), Some(WireError::NeedsPage));
        assert_eq!(Request::decode(Flush::OP, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).err(), Some(WireError::Oversized));
        // Every message has room for any error and the reply.
        let (info, flush) = (<Info as Op>::MESSAGE, <Flush as Op>::MESSAGE);
        assert_eq!((info, flush), (DiskInfo::POSTCARD_MAX_SIZE, StorageError::POSTCARD_MAX_SIZE));
        assert_eq!(flush, 3, "DeviceError {{ status, error }}");
    }

    #[test]
    fn checks_range_count_and_limit() {
        let r = |lba, count| Request::Read(Read { disk: 0, lba, count });
        let w = |lba, count| Request::Write(Write { disk: 0, lba, count });
        assert_eq!(r(0, 8).check(100), Ok(()));
        assert_eq!(r(92, 8).check(100), Ok(()));
        assert_eq!(r(93, 8).check(100), Err(StorageError::OutOfRange));
        assert_eq!(r(100, 1).check(100), Err(StorageError::OutOfRange));
        assert_eq!(r(u64::MAX, 1).check(100), Err(StorageError::OutOfRange), "overflow");
        assert_eq!(r(0, 0).check(100), Err(StorageError::ZeroCount));
        assert_eq!(r(0, MAX_READ + 1).check(100), Err(StorageError::TooMany));
        assert_eq!(w(0, MAX_WRITE).check(100), Ok(()));
        assert_eq!(w(0, MAX_WRITE + 1).check(100), Err(StorageError::TooMany));
        let b = |lba, count| Request::ReadBuf(ReadBuf { disk: 0, lba, count });
        assert_eq!(b(0, MAX_BUF_READ).check(200), Ok(()));
        assert_eq!(b(0, MAX_BUF_READ + 1).check(200), Err(StorageError::TooMany));
        assert_eq!(b(100, MAX_BUF_READ).check(200), Err(StorageError::OutOfRange));
        assert_eq!(b(0, 0).check(200), Err(StorageError::ZeroCount));
        let wb = |lba, count| Request::WriteBuf(WriteBuf { disk: 0, lba, count });
        assert_eq!(wb(0, MAX_BUF_WRITE).check(200), Ok(()));
        assert_eq!(wb(72, MAX_BUF_WRITE).check(200), Ok(()));
        assert_eq!(wb(0, MAX_BUF_WRITE + 1).check(200), Err(StorageError::TooMany));
        assert_eq!(wb(73, MAX_BUF_WRITE).check(200), Err(StorageError::OutOfRange));
        assert_eq!(wb(0, 0).check(200), Err(StorageError::ZeroCount));
        assert_eq!(wb(3, 1).disk(), 0);
        assert_eq!(Request::Attach(Attach { disk: 2 }).disk(), 2);
        assert_eq!(BUF_MAX, 64 * 1024);
        assert_eq!(Request::Flush(Flush { disk: 0 }).check(0), Ok(()));
        assert_eq!((MAX_READ, MAX_WRITE), (8, 7));
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
            // No body: as a SendCap reply (Attach) gets it.
            let w = e.to_reply(&mut []);
            assert_eq!(split_result(w).0, ERROR_IN_WORD, "{e:?} does not fit in the word");
            assert_eq!(decode_reply::<Attach>(w, &[]), Err(CallError::Server(e)));
        }
        assert_ne!(StorageError::BadBuffer(Size).to_reply(&mut []), StorageError::BadBuffer(Rights).to_reply(&mut []));
    }
}
