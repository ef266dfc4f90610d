//! RAMFS's logic: answers Stat, Load and List from the [`Index`].

use abi::PAGE_SIZE;
use runtime::rpc::{Call, Done, Handler};

use crate::index::Index;
use crate::proto::{DirEntry, Error, Info, Kind, List, Listing, Load, Request, Stat, LIST_MAX};

/// The RAMFS server.
pub struct Ramfs<'a> {
    index: Index<'a>,
}

impl<'a> Ramfs<'a> {
    pub fn new(index: Index<'a>) -> Self {
        Ramfs { index }
    }

    pub fn index(&self) -> &Index<'a> {
        &self.index
    }

    fn lookup(&self, path: &str) -> Result<u32, Error> {
        let path = vfs::path::check_rest(path).map_err(|_| Error::BadPath)?;
        self.index.lookup(path).ok_or(Error::NotFound)
    }

    pub fn stat(&self, path: &str) -> Result<Info, Error> {
        let handle = self.lookup(path)?;
        let n = self.index.node(handle).ok_or(Error::NotFound)?;
        Ok(Info { kind: n.kind, size: n.data.len() as u64, handle })
    }

    /// Fill `page` with the object's bytes from `offset`, zeros past the end.
    pub fn load(&self, req: &Load, page: &mut [u8; PAGE_SIZE]) -> Result<(), Error> {
        let n = self.index.node(req.handle).ok_or(Error::BadHandle)?;
        if n.kind != Kind::File {
            return Err(Error::NotAFile);
        }
        let len = n.data.len() as u64;
        if !req.offset.is_multiple_of(PAGE_SIZE as u64) || (req.offset >= len && !(req.offset == 0 && len == 0)) {
            return Err(Error::BadOffset);
        }
        let from = &n.data[req.offset as usize..(req.offset + PAGE_SIZE as u64).min(len) as usize];
        page[..from.len()].copy_from_slice(from);
        page[from.len()..].fill(0);
        Ok(())
    }

    pub fn list(&self, req: &List) -> Result<Listing, Error> {
        let dir = self.lookup(&req.path)?;
        if self.index.node(dir).map(|n| n.kind) != Some(Kind::Dir) {
            return Err(Error::NotADirectory);
        }
        let mut out = Listing { entries: heapless::Vec::new(), next: None };
        let mut it = self.index.children(dir).skip(req.start as usize);
        for n in it.by_ref().take(LIST_MAX) {
            // Index names are at most NAME_MAX bytes, so this always fits.
            let name = heapless::String::try_from(n.name()).map_err(|_| Error::BadPath)?;
            let _ = out.entries.push(DirEntry { name, kind: n.kind, size: n.data.len() as u64 });
        }
        if it.next().is_some() {
            out.next = Some(req.start + LIST_MAX as u32);
        }
        Ok(out)
    }
}

impl Handler for Ramfs<'_> {
    type Request = Request;

    #[inline]
    fn handle(&mut self, req: Request, mut call: Call<'_>) -> Done {
        match req {
            Request::Load(l) => match self.load(&l, call.page()) {
                Ok(()) => call.page_done(),
                Err(e) => call.err(e),
            },
            Request::Stat(s) => call.reply::<Stat>(self.stat(&s.path)),
            Request::List(l) => call.reply::<List>(self.list(&l)),
        }
    }
}
