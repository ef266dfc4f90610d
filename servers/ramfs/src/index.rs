//! The archive as a tree, built once at start.
//!
//! Reads any valid newc archive: entries in any order (a file may come
//! before its directory, or its directory may be missing: parents are
//! created), names with or without `./` or `/`, a `.` entry for the root,
//! hard links (GNU cpio stores the data with the last link only: links
//! share `(dev, ino)`, and an empty link takes the data of one that has
//! it). A later entry with the same path replaces an earlier one.
//! Entries RAMFS does not serve are left out: symlinks and devices,
//! names with `..`, and paths longer than `vfs::path::PATH_MAX`.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::proto::{Kind, NAME_MAX};
use vfs::path::PATH_MAX;

/// One file or directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node<'a> {
    /// The path, without a leading `/` (`""` is the root).
    pub path: String,
    pub kind: Kind,
    pub data: &'a [u8],
    /// Index of the parent directory (the root is its own parent).
    pub parent: u32,
}

impl Node<'_> {
    /// The last component.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }
}

/// What hard links share: (device major, minor, inode).
type LinkKey = (u32, u32, u32);

/// All nodes, sorted by path; node 0 is the root.
#[derive(Debug)]
pub struct Index<'a> {
    nodes: Vec<Node<'a>>,
}

/// `name` as components, or None if RAMFS does not serve it.
fn clean(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c if c.len() > NAME_MAX || c.bytes().any(|b| b.is_ascii_control()) => return None,
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    // The prefix `boot:` and a `/` come in front of it in a full path.
    (out.len() + crate::PREFIX.len() + 2 <= PATH_MAX).then_some(out)
}

impl<'a> Index<'a> {
    pub fn build(archive: &cpio::Archive<'a>) -> Index<'a> {
        let mut tree: BTreeMap<String, (Kind, &'a [u8], Option<LinkKey>)> = BTreeMap::new();
        let mut link_data: BTreeMap<LinkKey, &'a [u8]> = BTreeMap::new();
        for e in archive.entries() {
            let kind = if e.is_dir() {
                Kind::Dir
            } else if e.is_file() {
                Kind::File
            } else {
                continue;
            };
            let Some(path) = clean(e.name) else { continue };
            let link = (kind == Kind::File && e.nlink > 1).then_some((e.dev_major, e.dev_minor, e.ino));
            if let Some(key) = link {
                if !e.data.is_empty() {
                    link_data.insert(key, e.data);
                }
            }
            tree.insert(path, (kind, e.data, link));
        }
        // Hard links without their data get it from a link that has it.
        for (_, (_, data, link)) in tree.iter_mut() {
            if let Some(d) = link.and_then(|k| link_data.get(&k)) {
                *data = d;
            }
        }
        // Parents: made where missing; a file in the way hides the entries below it.
        let paths: Vec<String> = tree.keys().cloned().collect();
        'paths: for p in paths {
            let mut at = 0;
            while let Some(i) = p[at..].find('/') {
                let parent = &p[..at + i];
                match tree.get(parent) {
                    Some((Kind::File, _, _)) => {
                        tree.remove(&p);
                        continue 'paths;
                    }
                    Some(_) => {}
                    None => {
                        tree.insert(String::from(parent), (Kind::Dir, &[], None));
                    }
                }
                at += i + 1;
            }
        }
        tree.insert(String::new(), (Kind::Dir, &[], None));
        let mut nodes: Vec<Node<'a>> =
            tree.into_iter().map(|(path, (kind, data, _))| Node { path, kind, data: if kind == Kind::Dir { &[] } else { data }, parent: 0 }).collect();
        for i in 0..nodes.len() {
            let parent = match nodes[i].path.rfind('/') {
                Some(j) => nodes.binary_search_by(|n| n.path.as_str().cmp(&nodes[i].path[..j])).unwrap_or(0),
                None => 0,
            };
            nodes[i].parent = parent as u32;
        }
        Index { nodes }
    }

    /// The node at `path` (no leading `/`; `""` is the root).
    pub fn lookup(&self, path: &str) -> Option<u32> {
        self.nodes.binary_search_by(|n| n.path.as_str().cmp(path)).ok().map(|i| i as u32)
    }

    pub fn node(&self, handle: u32) -> Option<&Node<'a>> {
        self.nodes.get(handle as usize)
    }

    /// The entries of directory `dir`, in path order.
    pub fn children(&self, dir: u32) -> impl Iterator<Item = &Node<'a>> + '_ {
        self.nodes.iter().enumerate().filter(move |(i, n)| n.parent == dir && *i != 0).map(|(_, n)| n)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}
