//! The typed client of the storage protocol: one disk through its channel,
//! over `runtime::rpc`'s client.

use abi::Error;
use alloc::boxed::Box;
use runtime::ipc::{Channel, Page};
use runtime::rpc::{CallError, Client, WireError};

use crate::proto::{Attach, DiskInfo, Flush, Info, Read, ReadBuf, StorageError, Write, WriteBuf, SECTOR, WRITE_DATA};

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The IPC itself failed (driver gone: `PeerDied`, `Closed`...).
    Ipc(Error),
    /// The driver refused or the device failed.
    Storage(StorageError),
    /// The driver refused the frame (not the protocol).
    Wire(WireError),
    /// The reply is not what the protocol says.
    BadReply,
}

impl From<CallError<StorageError>> for ClientError {
    fn from(e: CallError<StorageError>) -> Self {
        match e {
            CallError::Server(e) => ClientError::Storage(e),
            CallError::Wire(w) => ClientError::Wire(w),
            CallError::Ipc(e) => ClientError::Ipc(e),
            CallError::BadReply => ClientError::BadReply,
        }
    }
}

/// One disk of an `ahcidrv`, through a channel found by name.
pub struct Disk {
    client: Client,
    disk: u8,
    /// The page `Read` and `Write` lend the driver.
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
        Disk { client: Client::new(chan), disk: n, page: Box::new(Page::zeroed()) }
    }

    /// The driver channel it talks to.
    pub fn channel(&self) -> &Channel {
        self.client.channel()
    }

    /// Model, serial, capacity.
    pub fn info(&mut self) -> Result<DiskInfo, ClientError> {
        Ok(self.client.call(&Info { disk: self.disk })?)
    }

    /// `count` sectors from `lba`: the bytes, in this client's page (lent:
    /// the device writes it in place).
    pub fn read(&mut self, lba: u64, count: u32) -> Result<&[u8], ClientError> {
        self.client.call_page(&Read { disk: self.disk, lba, count }, &mut self.page)?;
        self.page.0.get(..count as usize * SECTOR).ok_or(ClientError::BadReply)
    }

    /// Write `data` (whole sectors) at `lba`.
    pub fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), ClientError> {
        if !data.len().is_multiple_of(SECTOR) {
            return Err(ClientError::Storage(StorageError::BadRequest));
        }
        let room = abi::PAGE_SIZE - WRITE_DATA;
        let n = data.len().min(room);
        self.page.0[WRITE_DATA..WRITE_DATA + n].copy_from_slice(&data[..n]);
        // More than fits: the driver says `TooMany`.
        let count = if data.len() > room { u32::MAX } else { (data.len() / SECTOR) as u32 };
        Ok(self.client.call_page(&Write { disk: self.disk, lba, count }, &mut self.page)?)
    }

    /// Write the device's cache to the medium.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        Ok(self.client.call(&Flush { disk: self.disk })?)
    }

    /// Make `buffer` (a physical range we hold with READ and WRITE, e.g.
    /// from `runtime::mem::dma_alloc`, 4–64 KiB) this disk channel's buffer
    /// for [`Self::read_into_buffer`] and [`Self::write_from_buffer`]. A
    /// refusal says why (`BadBuffer(..)`, `NoDisk`).
    pub fn attach(&mut self, buffer: &runtime::mem::PhysRange) -> Result<(), ClientError> {
        let rw = abi::PhysRights::READ | abi::PhysRights::WRITE;
        Ok(self.client.call_with_cap(&Attach { disk: self.disk }, buffer.0, rw)?)
    }

    /// `count` sectors (up to [`crate::proto::MAX_BUF_READ`], 64 KiB) from
    /// `lba` into the attached buffer, at its start, in one command.
    pub fn read_into_buffer(&mut self, lba: u64, count: u32) -> Result<(), ClientError> {
        Ok(self.client.call(&ReadBuf { disk: self.disk, lba, count })?)
    }

    /// `count` sectors (up to [`crate::proto::MAX_BUF_WRITE`], 64 KiB) at
    /// `lba` from the start of the attached buffer, in one command.
    pub fn write_from_buffer(&mut self, lba: u64, count: u32) -> Result<(), ClientError> {
        Ok(self.client.call(&WriteBuf { disk: self.disk, lba, count })?)
    }

    /// Send raw bytes (for tests of bad input): the result and reply length.
    pub fn raw(&mut self, tag: u64, msg: &[u8]) -> Result<(u64, usize), ClientError> {
        let mut buf = alloc::vec::Vec::from(msg);
        let r = self.channel().call(tag, &mut buf, msg.len()).map_err(ClientError::Ipc)?;
        Ok((r.result, r.len))
    }
}
