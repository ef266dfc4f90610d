//! The typed client of the storage protocol.

use abi::Error;
use alloc::boxed::Box;
use runtime::ipc::{Channel, Page};

use crate::proto::{error_of_inline, DiskInfo, Request, StorageError, ERR, OK, SECTOR, TAG, WRITE_DATA};

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The IPC itself failed (driver gone: `PeerDied`, `Closed`...).
    Ipc(Error),
    /// The driver refused or the device failed.
    Storage(StorageError),
    /// The reply is not what the protocol says.
    BadReply,
}

/// One disk of an `ahcidrv`, through a channel found by name.
pub struct Disk {
    chan: Channel,
    disk: u8,
    page: Box<Page>,
}

impl Disk {
    /// Disk `n` (`AHCI::DISK<n>`).
    pub fn open(n: u8) -> Result<Disk, ClientError> {
        let chan = Channel::find(&crate::disk_name(n)).map_err(ClientError::Ipc)?;
        Ok(Disk::on(chan, n))
    }

    /// Disk `n` through `chan` (a disk's channel answers for its own disk
    /// only: others get `NoDisk`).
    pub fn on(chan: Channel, n: u8) -> Disk {
        Disk { chan, disk: n, page: Box::new(Page::zeroed()) }
    }

    /// The driver channel it talks to.
    pub fn channel(&self) -> &Channel {
        &self.chan
    }

    /// Send `req` in the lent page and decode the result.
    fn call(&mut self, req: Request) -> Result<usize, ClientError> {
        req.encode(&mut self.page.0);
        // The whole page goes, so it is lent and read data lands in place.
        let r = self.chan.call(TAG, &mut self.page.0, abi::PAGE_SIZE).map_err(ClientError::Ipc)?;
        match r.result {
            OK => Ok(r.len),
            ERR => Err(ClientError::Storage(
                postcard::from_bytes(&self.page.0[..r.len]).map_err(|_| ClientError::BadReply)?,
            )),
            _ => Err(ClientError::BadReply),
        }
    }

    /// Model, serial, capacity.
    pub fn info(&mut self) -> Result<DiskInfo, ClientError> {
        let n = self.call(Request::Info { disk: self.disk })?;
        postcard::from_bytes(&self.page.0[..n]).map_err(|_| ClientError::BadReply)
    }

    /// `count` sectors from `lba`: the bytes, in this client's page.
    pub fn read(&mut self, lba: u64, count: u32) -> Result<&[u8], ClientError> {
        let n = self.call(Request::Read { disk: self.disk, lba, count })?;
        if n != count as usize * SECTOR {
            return Err(ClientError::BadReply);
        }
        Ok(&self.page.0[..n])
    }

    /// Write `data` (whole sectors) at `lba`.
    pub fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), ClientError> {
        if !data.len().is_multiple_of(SECTOR) {
            return Err(ClientError::Storage(StorageError::BadRequest));
        }
        let room = abi::PAGE_SIZE - WRITE_DATA;
        let n = data.len().min(room);
        self.page.0[WRITE_DATA..WRITE_DATA + n].copy_from_slice(&data[..n]);
        let count = if data.len() > room { u32::MAX } else { (data.len() / SECTOR) as u32 };
        self.call(Request::Write { disk: self.disk, lba, count }).map(|_| ())
    }

    /// Write the device's cache to the medium.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.call(Request::Flush { disk: self.disk }).map(|_| ())
    }

    /// Make `buffer` (a physical range we hold with READ and WRITE, e.g.
    /// from `runtime::mem::dma_alloc`, 4–64 KiB) this disk channel's buffer
    /// for [`Self::read_into_buffer`] and [`Self::write_from_buffer`]. The
    /// capability goes with `SendCap`, whose reply carries no body: a
    /// refusal comes in the result word (`BadBuffer(why)`, `NoDisk`).
    pub fn attach(&mut self, buffer: &runtime::mem::PhysRange) -> Result<(), ClientError> {
        let mut msg = [0u8; crate::proto::MAX_REQUEST];
        let n = Request::Attach { disk: self.disk }.encode(&mut msg);
        let rw = abi::rights::READ | abi::rights::WRITE;
        let r = self.chan.send_cap(TAG, &msg[..n], buffer.0, rw).map_err(ClientError::Ipc)?;
        match r.result {
            OK => Ok(()),
            w => Err(error_of_inline(w).map_or(ClientError::BadReply, ClientError::Storage)),
        }
    }

    /// `count` sectors (up to [`crate::proto::MAX_BUF_READ`], 64 KiB) from
    /// `lba` into the attached buffer, at its start, in one command.
    pub fn read_into_buffer(&mut self, lba: u64, count: u32) -> Result<(), ClientError> {
        self.call(Request::ReadBuf { disk: self.disk, lba, count }).map(|_| ())
    }

    /// `count` sectors (up to [`crate::proto::MAX_BUF_WRITE`], 64 KiB) at
    /// `lba` from the start of the attached buffer, in one command.
    pub fn write_from_buffer(&mut self, lba: u64, count: u32) -> Result<(), ClientError> {
        self.call(Request::WriteBuf { disk: self.disk, lba, count }).map(|_| ())
    }

    /// Send raw bytes (for tests of bad input): the result and reply length.
    pub fn raw(&mut self, tag: u64, msg: &[u8]) -> Result<(u64, usize), ClientError> {
        let mut buf = alloc::vec::Vec::from(msg);
        let r = self.chan.call(tag, &mut buf, msg.len()).map_err(ClientError::Ipc)?;
        Ok((r.result, r.len))
    }
}
