//! A volume's folder on this machine — its mount point — read into a backup and restored
//! into, with no Docker daemon in the data path.
//!
//!
//! - `walk`: [`backup_dir`] — the folder walked into a backup;
//! - `restore`: [`inspect_dir`] and [`restore_dir`] — a backup restored into the folder.
//!
//! [`backup_dir`] walks the folder and produces the tar stream the Docker archive API
//! would (the root as `./`, then every entry in name order, directories before their
//! content), describing each entry and hashing each file as it writes it, and stores it
//! as [`write_backup`](crate::write_backup) stores a stream: the same kind of backup,
//! verified the same way, restorable through either path. The walk opens
//! every directory and file relative to its parent's descriptor with `O_NOFOLLOW` and
//! checks the opened file's type, so a symlink is stored as a symlink and never
//! followed, even if something swaps a folder for a symlink meanwhile. Hard links are
//! stored as hard links; sockets are skipped (tar cannot hold them). At the root, the
//! names Mooring itself uses there ([`STAGING_PREFIX`], [`PROBE_PREFIX`]) are skipped.
//!
//! [`restore_dir`] restores a backup into the folder in one pass over the archive and
//! never leaves a half-restored volume looking restored:
//! 1. the manifest's digest and the archive's size are checked;
//! 2. the archive is decompressed into a staging folder inside the volume
//!    (`.mooring-restore-<id>/data`): one thread decompresses and hashes the compressed
//!    bytes, one checks every entry
//!    against the manifest with [`verify`](crate::verify)'s own code (each file's
//!    sha256 included), and the caller's thread writes each chunk once the checks have
//!    read through it. Entries are written relative to directory descriptors with
//!    `O_NOFOLLOW` at every step, so an entry can never be written through a symlink
//!    (one the archive created included), and absolute paths or `..` are refused;
//! 3. only when all of it matched — every entry, the totals, the end-of-archive marker,
//!    zstd's checksum, the archive's sha256 (which also covers what the manifest does not
//!    describe: owners, times, extended attributes) — is the folder flushed (`syncfs`)
//!    and a `complete` marker written next to `data`;
//! 4. then the staged entries are renamed into place (same file system, so each rename
//!    is atomic; an existing folder of the same name is merged into, existing files are
//!    replaced, files not in the backup are kept), and the staging folder is removed.
//!
//! Killed during step 2 or 3, the volume holds only an incomplete staging folder: the
//! next restore removes it and starts again. Killed during step 4, the complete marker
//! is there: the next restore of the same backup finishes moving (see
//! [`inspect_dir`]). A damaged archive is refused with nothing moved into place and the
//! staging folder removed.
//!
//! Ownership (numeric ids), permission bits (setuid, setgid and sticky included),
//! modification times and the extended attributes of files and folders (file
//! capabilities, `user.*`, ACLs; as PAX `SCHILY.xattr.*` records)
//! are kept. Symlinks' own attributes are not. (Through Docker's archive API, dockerd
//! reads only `security.capability`, and writes every attribute the records carry.)

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, Dir, Mode, OFlags};
use rustix::io::Errno;

use crate::BackupError;

mod restore;
mod walk;

pub use restore::{inspect_dir, restore_dir, DirRestore, DirState};
pub use walk::{backup_dir, unchanged_since};

/// Names at a volume's root starting with this are restores in progress
/// (`.mooring-restore-<id>`); backups skip them.
pub const STAGING_PREFIX: &str = ".mooring-restore-";
/// Names at a volume's root starting with this are probe files older Mooring versions
/// wrote for an instant to check a mount point (Mooring now changes the folder's time
/// instead); a killed run may have left one, so backups skip them and the check
/// removes them.
pub const PROBE_PREFIX: &str = ".mooring-probe-";

pub(super) const COMPLETE: &str = "complete";
pub(super) const DATA: &str = "data";

pub(super) fn volume_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl Fn(Errno) -> BackupError + 'a {
    move |e| BackupError::Volume {
        action,
        path: path.to_owned(),
        source: e.into(),
    }
}

pub(super) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

pub(super) fn open_dir_at<P: rustix::path::Arg>(
    fd: BorrowedFd<'_>,
    name: P,
) -> Result<OwnedFd, Errno> {
    rfs::openat(fd, name, dir_flags(), Mode::empty())
}

/// Names in the directory `fd` (without `.` and `..`), sorted.
pub(super) fn names(fd: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    for entry in Dir::read_from(fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
    out.sort();
    Ok(out)
}

pub(super) fn ours_at_root(name: &[u8]) -> bool {
    name.starts_with(STAGING_PREFIX.as_bytes()) || name.starts_with(PROBE_PREFIX.as_bytes())
}

#[cfg(test)]
mod tests;
