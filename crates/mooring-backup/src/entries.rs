//! Describing tar entries (kind, size, mode, content sha256) and comparing them with a
//! manifest.

use std::io::{self, Read};

use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::manifest::hex;
use crate::{EntryKind, FileEntry};

/// Size of the buffer file contents are hashed through.
pub(crate) const HASH_BUF: usize = 256 << 10;

/// Describes `entry`, reading (and hashing) its content when it is a file.
pub(crate) fn describe<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    buf: &mut [u8],
) -> io::Result<FileEntry> {
    let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let mode = entry.header().mode()?;
    let target = || {
        entry
            .link_name_bytes()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .unwrap_or_default()
    };
    let entry_type = entry.header().entry_type();
    let kind = match entry_type {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => EntryKind::File,
        EntryType::Directory => EntryKind::Dir,
        EntryType::Symlink => EntryKind::Symlink { target: target() },
        EntryType::Link => EntryKind::Hardlink { target: target() },
        other => EntryKind::Other {
            type_flag: char::from(other.as_byte()),
        },
    };
    let (size, sha256) = if kind == EntryKind::File {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = match entry.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        (size, Some(hex(&hasher.finalize())))
    } else {
        (0, None)
    };
    Ok(FileEntry {
        path,
        kind,
        size,
        mode,
        sha256,
    })
}

/// What differs between the manifest's entry and the archive's, or `None`.
pub(crate) fn difference(expected: &FileEntry, found: &FileEntry) -> Option<String> {
    if expected.path != found.path {
        return Some(format!(
            "the archive has {:?} in its place (entries out of order or renamed)",
            found.path
        ));
    }
    if expected.kind != found.kind {
        return Some(format!(
            "it is {:?} in the archive but {:?} in the manifest",
            found.kind, expected.kind
        ));
    }
    if expected.size != found.size {
        return Some(format!(
            "it has {} bytes in the archive but {} in the manifest",
            found.size, expected.size
        ));
    }
    if expected.sha256 != found.sha256 {
        return Some(format!(
            "its sha256 is {} in the archive but {} in the manifest",
            found.sha256.as_deref().unwrap_or("none"),
            expected.sha256.as_deref().unwrap_or("none")
        ));
    }
    if expected.mode != found.mode {
        return Some(format!(
            "its mode is {:o} in the archive but {:o} in the manifest",
            found.mode, expected.mode
        ));
    }
    None
}
