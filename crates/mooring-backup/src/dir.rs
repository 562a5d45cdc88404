//! A volume's folder on this machine — its mount point — read into a backup and restored
//! into, with no Docker daemon in the data path.
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

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::thread;

use rustix::fs::{
    self as rfs, AtFlags, Dir, FileType, Mode, OFlags, Stat, Timespec, Timestamps, CWD,
};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::manifest::hex;
use crate::pipe::{chunk_channel, ChunkSender, CHUNK};
use crate::verify::{check_digest, check_manifest, decompress_hashed, open_archive, TrackEof};
use crate::xattr::{self, NotSet, Xattr};
use crate::{BackupError, BackupMeta, BackupRecord, EntryKind, FileEntry, VerifyReport};

/// Names at a volume's root starting with this are restores in progress
/// (`.mooring-restore-<id>`); backups skip them.
pub const STAGING_PREFIX: &str = ".mooring-restore-";
/// Names at a volume's root starting with this are probe files Mooring writes for an
/// instant to check that a mount point is the volume Docker sees; backups skip them.
pub const PROBE_PREFIX: &str = ".mooring-probe-";

const COMPLETE: &str = "complete";
const DATA: &str = "data";

fn volume_error<'a>(action: &'static str, path: &'a Path) -> impl Fn(Errno) -> BackupError + 'a {
    move |e| BackupError::Volume {
        action,
        path: path.to_owned(),
        source: e.into(),
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn open_dir_at<P: rustix::path::Arg>(fd: BorrowedFd<'_>, name: P) -> Result<OwnedFd, Errno> {
    rfs::openat(fd, name, dir_flags(), Mode::empty())
}

/// Names in the directory `fd` (without `.` and `..`), sorted.
fn names(fd: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
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

fn ours_at_root(name: &[u8]) -> bool {
    name.starts_with(STAGING_PREFIX.as_bytes()) || name.starts_with(PROBE_PREFIX.as_bytes())
}

/// Backs up the folder `root` (a volume's mount point) into a new backup in `dir`.
///
/// The folder is walked as described in the [module docs](self) into a tar stream that
/// is stored and verified as [`write_backup`](crate::write_backup) does (so everything
/// said there holds: one pass, crash-safe, verified before it exists). A failure to read the folder is
/// [`BackupError::Volume`] naming the file; nothing is kept then.
pub fn backup_dir(root: &Path, dir: &Path, meta: BackupMeta) -> Result<BackupRecord, BackupError> {
    let root_fd = open_dir_at(CWD, root).map_err(volume_error("open", root))?;
    // The walk produces the stream and describes its entries itself (no tar parsing).
    crate::write::write_backup_from(
        |sender| {
            let mut walker = Walker {
                builder: tar::Builder::new(ChunkWriter {
                    sender: Some(sender),
                    hasher: xxhash_rust::xxh3::Xxh3::new(),
                    count: 0,
                }),
                root,
                links: HashMap::new(),
                entries: Vec::new(),
            };
            walker.root(root_fd.as_fd())?;
            let failed = |e| walker_io("write the tar stream of", root, e);
            // Writes the end-of-archive marker.
            let mut out = walker.builder.into_inner().map_err(failed)?;
            let sum = (out.hasher.digest128(), out.count);
            out.finish().map_err(failed)?;
            Ok((walker.entries, sum))
        },
        dir,
        meta,
    )
}

fn walker_io(action: &'static str, path: &Path, source: io::Error) -> BackupError {
    BackupError::Volume {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A [`Write`] into a chunk channel that counts and hashes (XXH3-128) what it sends.
struct ChunkWriter {
    sender: Option<ChunkSender>,
    hasher: xxhash_rust::xxh3::Xxh3,
    count: u64,
}

impl ChunkWriter {
    fn finish(&mut self) -> io::Result<()> {
        match self.sender.take() {
            Some(sender) => sender.finish(),
            None => Ok(()),
        }
    }

    fn sender(&mut self) -> io::Result<&mut ChunkSender> {
        self.sender
            .as_mut()
            .ok_or_else(|| io::Error::other("the tar stream was already finished"))
    }

    /// Appends exactly `size` bytes of `input`, read straight into the outgoing chunks,
    /// and the padding to the next 512-byte block; returns their sha256.
    fn content(&mut self, input: &mut impl Read, size: u64) -> io::Result<String> {
        let mut sha = Sha256::new();
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
            let sender = self
                .sender
                .as_mut()
                .ok_or_else(|| io::Error::other("the tar stream was already finished"))?;
            let got = sender.read_from(input, want)?;
            if got.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was read (is something still writing to the volume?)",
                ));
            }
            sha.update(got);
            self.hasher.update(got);
            let n = got.len() as u64;
            self.count += n;
            left -= n;
        }
        let pad = usize::try_from((512 - size % 512) % 512).unwrap_or(0);
        self.write_all(&[0u8; 512][..pad])?;
        Ok(hex(&sha.finalize()))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sender()?.push(buf)?;
        self.hasher.update(buf);
        self.count += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Walker<'a> {
    builder: tar::Builder<ChunkWriter>,
    root: &'a Path,
    /// Files with several links already stored: (device, inode) → their path.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Every entry written, as the manifest describes it (and a tar parser would).
    entries: Vec<FileEntry>,
}

/// A reader that fails unless it yields exactly `left` bytes (a file that changed while
/// it was read would corrupt the tar stream).
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was read (is something still writing to the volume?)",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn header_for(stat: &Stat, kind: EntryType) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(stat.st_mode & 0o7777);
    header.set_uid(u64::from(stat.st_uid));
    header.set_gid(u64::from(stat.st_gid));
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header.set_size(0);
    header
}

impl Walker<'_> {
    fn fail(&self, action: &'static str, rel: &[u8]) -> impl Fn(io::Error) -> BackupError {
        let path = self.root.join(OsStr::from_bytes(rel));
        move |source| BackupError::Volume {
            action,
            path: path.clone(),
            source,
        }
    }

    /// Writes the extended attributes of the open `fd` (the entry `rel`, appended next).
    fn xattrs(&mut self, fd: BorrowedFd<'_>, rel: &[u8]) -> Result<(), BackupError> {
        let attrs = xattr::read(fd)
            .map_err(|e| self.fail("read the extended attributes of", rel)(e.into()))?;
        xattr::append_pax(&mut self.builder, &attrs)
            .map_err(self.fail("write the tar stream of", rel))
    }

    /// Notes an entry as written (as a tar parser will describe it).
    fn described(&mut self, path: &[u8], kind: EntryKind, stat: &Stat, sha256: Option<String>) {
        let size = if kind == EntryKind::File {
            u64::try_from(stat.st_size).unwrap_or(0)
        } else {
            0
        };
        self.entries.push(FileEntry {
            path: String::from_utf8_lossy(path).into_owned(),
            kind,
            size,
            mode: stat.st_mode & 0o7777,
            sha256,
        });
    }

    fn root(&mut self, fd: BorrowedFd<'_>) -> Result<(), BackupError> {
        let stat = rfs::fstat(fd).map_err(|e| self.fail("read", b"")(e.into()))?;
        self.xattrs(fd, b"")?;
        let mut header = header_for(&stat, EntryType::Directory);
        self.builder
            .append_data(&mut header, "./", io::empty())
            .map_err(self.fail("write the tar stream of", b""))?;
        self.described(b"./", EntryKind::Dir, &stat, None);
        self.dir(fd, &[])
    }

    fn dir(&mut self, fd: BorrowedFd<'_>, rel: &[u8]) -> Result<(), BackupError> {
        let list = names(fd).map_err(|e| self.fail("list", rel)(e.into()))?;
        for name in list {
            if rel.is_empty() && ours_at_root(&name) {
                continue;
            }
            let mut path = rel.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            self.entry(fd, &name, &path)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
    ) -> Result<(), BackupError> {
        let read = |e: Errno| self.fail("read", path)(e.into());
        let name = OsStr::from_bytes(name);
        let stat = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(read)?;
        let tar_path = Path::new(OsStr::from_bytes(path));
        let write = self.fail("write the tar stream of", path);
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                let fd = open_dir_at(parent, name).map_err(read)?;
                let stat = rfs::fstat(&fd).map_err(read)?;
                self.xattrs(fd.as_fd(), path)?;
                let mut header = header_for(&stat, EntryType::Directory);
                let mut with_slash = path.to_vec();
                with_slash.push(b'/');
                self.builder
                    .append_data(&mut header, OsStr::from_bytes(&with_slash), io::empty())
                    .map_err(write)?;
                self.described(&with_slash, EntryKind::Dir, &stat, None);
                self.dir(fd.as_fd(), path)
            }
            FileType::RegularFile => {
                let key = (stat.st_dev, stat.st_ino);
                if stat.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut header = header_for(&stat, EntryType::Link);
                        let target = Path::new(OsStr::from_bytes(&first)).to_owned();
                        self.builder
                            .append_link(&mut header, tar_path, target)
                            .map_err(write)?;
                        let kind = EntryKind::Hardlink {
                            target: String::from_utf8_lossy(&first).into_owned(),
                        };
                        self.described(path, kind, &stat, None);
                        return Ok(());
                    }
                }
                let fd = rfs::openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(read)?;
                let stat = rfs::fstat(&fd).map_err(read)?;
                if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
                    return Err(self.fail("read", path)(io::Error::other(
                        "it was replaced while the volume was read (is something still writing to it?)",
                    )));
                }
                let size = u64::try_from(stat.st_size).unwrap_or(0);
                self.xattrs(fd.as_fd(), path)?;
                let mut header = header_for(&stat, EntryType::Regular);
                header.set_size(size);
                // The header (with long-name records when needed) through the builder,
                // then the content read straight into the outgoing chunks.
                self.builder
                    .append_data(&mut header, tar_path, io::empty())
                    .map_err(&write)?;
                let mut file = Exact {
                    inner: File::from(fd),
                    left: size,
                };
                let sha256 = self
                    .builder
                    .get_mut()
                    .content(&mut file, size)
                    .map_err(self.fail("read", path))?;
                if stat.st_nlink > 1 {
                    self.links.insert(key, path.to_vec());
                }
                self.described(path, EntryKind::File, &stat, Some(sha256));
                Ok(())
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(parent, name, Vec::new()).map_err(read)?;
                let mut header = header_for(&stat, EntryType::Symlink);
                self.builder
                    .append_link(
                        &mut header,
                        tar_path,
                        Path::new(OsStr::from_bytes(target.as_bytes())),
                    )
                    .map_err(write)?;
                let kind = EntryKind::Symlink {
                    target: String::from_utf8_lossy(target.as_bytes()).into_owned(),
                };
                self.described(path, kind, &stat, None);
                Ok(())
            }
            kind @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
                let entry_type = match kind {
                    FileType::Fifo => EntryType::Fifo,
                    FileType::CharacterDevice => EntryType::Char,
                    _ => EntryType::Block,
                };
                let mut header = header_for(&stat, entry_type);
                if kind != FileType::Fifo {
                    let major = rfs::major(stat.st_rdev);
                    let minor = rfs::minor(stat.st_rdev);
                    header.set_device_major(major).map_err(&write)?;
                    header.set_device_minor(minor).map_err(&write)?;
                }
                self.builder
                    .append_data(&mut header, tar_path, io::empty())
                    .map_err(write)?;
                let kind = EntryKind::Other {
                    type_flag: char::from(entry_type.as_byte()),
                };
                self.described(path, kind, &stat, None);
                Ok(())
            }
            // Sockets (and anything unknown) cannot be stored in tar; Docker skips them too.
            _ => Ok(()),
        }
    }
}

/// What a volume's folder holds, besides Mooring's own staging folders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirState {
    /// Entries at the root that are the volume's data.
    pub entries: usize,
    /// Restores that were interrupted there: `(backup id, complete)` — a complete one was
    /// verified and was being moved into place; restoring that backup again finishes it.
    pub staged: Vec<(String, bool)>,
}

/// Looks at the folder `root` before a restore (see [`DirState`]).
pub fn inspect_dir(root: &Path) -> Result<DirState, BackupError> {
    let root_fd = open_dir_at(CWD, root).map_err(volume_error("open", root))?;
    let mut state = DirState::default();
    for name in names(root_fd.as_fd()).map_err(volume_error("list", root))? {
        if let Some(id) = name.strip_prefix(STAGING_PREFIX.as_bytes()) {
            let complete = open_dir_at(root_fd.as_fd(), OsStr::from_bytes(&name))
                .and_then(|fd| rfs::statat(&fd, COMPLETE, AtFlags::SYMLINK_NOFOLLOW))
                .is_ok();
            state
                .staged
                .push((String::from_utf8_lossy(id).into_owned(), complete));
        } else if !name.starts_with(PROBE_PREFIX.as_bytes()) {
            state.entries += 1;
        }
    }
    Ok(state)
}

/// How a [`restore_dir`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRestore {
    /// What was checked (all zero when `resumed`).
    pub report: VerifyReport,
    /// An interrupted restore of this backup had already verified everything and was
    /// finished (its staged entries moved into place).
    pub resumed: bool,
    /// The staging folders of interrupted, unverified restores that were removed.
    pub cleaned: usize,
    /// Extended attributes that could not be set here (not supported or not allowed on
    /// this file system; the data is restored all the same).
    pub xattrs_not_set: NotSet,
}

/// Restores `record` into the folder `root` (a volume's mount point), as described in
/// the [module docs](self). Files of the volume that are not in the backup are kept;
/// the caller decides whether the volume may be written to at all.
///
/// Errors: [`BackupError::ManifestChanged`] / [`BackupError::ArchiveSize`] before
/// anything is written; [`BackupError::ArchiveChecksum`], [`BackupError::Corrupt`],
/// [`BackupError::Mismatch`] or [`BackupError::UnsafeEntry`] after staging, with nothing
/// moved into place and the staging folder removed; [`BackupError::InterruptedRestore`]
/// when another backup's verified restore is half moved into place there;
/// [`BackupError::Volume`] when the folder cannot be written.
pub fn restore_dir(record: &BackupRecord, root: &Path) -> Result<DirRestore, BackupError> {
    check_digest(record)?;
    let file = open_archive(&record.archive, &record.manifest)?;
    let root_fd = open_dir_at(CWD, root).map_err(volume_error("open", root))?;
    let state = inspect_dir(root)?;
    let staging_name = format!("{STAGING_PREFIX}{}", record.id);
    let staging_path = root.join(&staging_name);
    if let Some((other, _)) = state
        .staged
        .iter()
        .find(|(id, complete)| *complete && *id != record.id)
    {
        return Err(BackupError::InterruptedRestore {
            path: root.join(format!("{STAGING_PREFIX}{other}")),
            id: other.clone(),
        });
    }
    let mut cleaned = 0;
    for (id, complete) in &state.staged {
        if !complete {
            let path = root.join(format!("{STAGING_PREFIX}{id}"));
            std::fs::remove_dir_all(&path).map_err(|e| BackupError::Volume {
                action: "remove the interrupted restore",
                path: path.clone(),
                source: e,
            })?;
            cleaned += 1;
        }
    }
    let resumed = state
        .staged
        .iter()
        .any(|(id, complete)| *complete && *id == record.id);
    let (report, xattrs_not_set) = if resumed {
        let report = VerifyReport {
            entries: 0,
            files: 0,
            bytes: 0,
            archive_size: 0,
        };
        (report, NotSet::default())
    } else {
        rfs::mkdirat(&root_fd, staging_name.as_str(), Mode::from_raw_mode(0o700))
            .map_err(volume_error("create", &staging_path))?;
        let staged = stage(record, &file, root_fd.as_fd(), &staging_name, &staging_path);
        match staged {
            Ok(report) => report,
            Err(e) => {
                // Nothing was moved into place; leave the volume as it was.
                let _ = std::fs::remove_dir_all(&staging_path);
                return Err(e);
            }
        }
    };
    let staging_fd = open_dir_at(root_fd.as_fd(), staging_name.as_str())
        .map_err(volume_error("open", &staging_path))?;
    let data_path = staging_path.join(DATA);
    let data_fd =
        open_dir_at(staging_fd.as_fd(), DATA).map_err(volume_error("open", &data_path))?;
    move_into(data_fd.as_fd(), root_fd.as_fd(), &data_path)?;
    let root_entry = rfs::statat(&staging_fd, "root", AtFlags::SYMLINK_NOFOLLOW).is_ok();
    if root_entry {
        copy_meta(data_fd.as_fd(), root_fd.as_fd())
            .map_err(volume_error("set the owner and mode of", root))?;
    }
    drop(data_fd);
    for (name, flags) in [
        (DATA, AtFlags::REMOVEDIR),
        ("root", AtFlags::empty()),
        (COMPLETE, AtFlags::empty()),
    ] {
        match rfs::unlinkat(&staging_fd, name, flags) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(volume_error("remove", &staging_path.join(name))(e)),
        }
    }
    drop(staging_fd);
    rfs::unlinkat(&root_fd, staging_name.as_str(), AtFlags::REMOVEDIR)
        .map_err(volume_error("remove", &staging_path))?;
    rfs::syncfs(&root_fd).map_err(volume_error("flush", root))?;
    Ok(DirRestore {
        report,
        resumed,
        cleaned,
        xattrs_not_set,
    })
}

/// Steps 2 and 3: the archive into `<staging>/data`, checked; then the marker.
fn stage(
    record: &BackupRecord,
    file: &File,
    root_fd: BorrowedFd<'_>,
    staging_name: &str,
    staging_path: &Path,
) -> Result<(VerifyReport, NotSet), BackupError> {
    let staging_fd =
        open_dir_at(root_fd, staging_name).map_err(volume_error("open", staging_path))?;
    let data_path = staging_path.join(DATA);
    rfs::mkdirat(&staging_fd, DATA, Mode::from_raw_mode(0o700))
        .map_err(volume_error("create", &data_path))?;
    let data_fd =
        open_dir_at(staging_fd.as_fd(), DATA).map_err(volume_error("open", &data_path))?;
    let manifest = &record.manifest;
    let archive = record.archive.as_path();
    // Three threads: decompression; the checks (every entry against the manifest, each
    // file's sha256, the totals, the end-of-archive marker — `verify`'s own code); and
    // this one, writing each chunk once the checks have read through it.
    let (sender, mut checker_chunks) = chunk_channel();
    let checked_chunks = checker_chunks.forward();
    let (flush, flush_queue) = std::sync::mpsc::sync_channel::<OwnedFd>(64);
    let (unpacked, checked, decoded, dirs, root_entry, mut not_set, writer_stopped_first) =
        thread::scope(|scope| {
            let decoder = scope.spawn(|| decompress_hashed(file, sender));
            let checker = scope.spawn(|| check_manifest(checker_chunks, archive, manifest));
            // Large files go to disk while the rest is written, so the final syncfs is short.
            // Best effort: that syncfs is what counts.
            scope.spawn(move || {
                for fd in flush_queue {
                    let _ = rfs::fdatasync(&fd);
                }
            });
            let mut unpacker = Unpacker {
                data: data_fd.as_fd(),
                data_path: &data_path,
                archive,
                parent: None,
                dirs: Vec::new(),
                root_entry: None,
                flush: Some(flush),
                not_set: NotSet::default(),
            };
            // Whether the writer read its stream to the end: if it stopped before, its own
            // error is the cause and the checks only saw it stop.
            let mut tracked = TrackEof::new(checked_chunks);
            let unpacked = unpacker.run(&mut tracked);
            let writer_stopped_first = unpacked.is_err() && !tracked.eof;
            unpacker.flush = None;
            let checked = checker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            let decoded = decoder
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (
                unpacked,
                checked,
                decoded,
                unpacker.dirs,
                unpacker.root_entry,
                unpacker.not_set,
                writer_stopped_first,
            )
        });
    // What explains a failure best comes first: the archive file's own checks (its
    // sha256 and size, then zstd's), then what the writer found before the checks did (a
    // refused entry, a failed write, a header only it reads), then what the checks found.
    decoded.check(archive, manifest)?;
    let corrupt = |e: io::Error| BackupError::Corrupt {
        path: archive.to_owned(),
        detail: format!("tar: {e}"),
    };
    match unpacked {
        Err(Unpacked::Refused(e)) => return Err(e),
        Err(Unpacked::Read(e)) if writer_stopped_first => return Err(corrupt(e)),
        _ => {}
    }
    let report = checked?;
    unpacked.map_err(|e| match e {
        Unpacked::Read(e) => corrupt(e),
        Unpacked::Refused(e) => e,
    })?;
    // Folders last and deepest first: writing their content changed their times, and a
    // read-only folder could not have been written into.
    for dir in dirs.iter().rev() {
        let fd = open_dir_at(data_fd.as_fd(), OsStr::from_bytes(&dir.path)).map_err(
            volume_error("open", &data_path.join(OsStr::from_bytes(&dir.path))),
        )?;
        apply_meta(fd.as_fd(), dir, &mut not_set).map_err(volume_error(
            "set the owner and mode of",
            &data_path.join(OsStr::from_bytes(&dir.path)),
        ))?;
    }
    if let Some(root) = root_entry {
        apply_meta(data_fd.as_fd(), &root, &mut not_set)
            .map_err(volume_error("set the owner and mode of", &data_path))?;
        write_marker(staging_fd.as_fd(), "root", staging_path)?;
    }
    rfs::syncfs(&data_fd).map_err(volume_error("flush", &data_path))?;
    write_marker(staging_fd.as_fd(), COMPLETE, staging_path)?;
    let report = VerifyReport {
        archive_size: manifest.archive_size,
        ..report
    };
    Ok((report, not_set))
}

fn write_marker(dir: BorrowedFd<'_>, name: &str, path: &Path) -> Result<(), BackupError> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(volume_error("create", &path.join(name)))?;
    rfs::fsync(&fd).map_err(volume_error("fsync", &path.join(name)))?;
    rfs::fsync(dir).map_err(volume_error("fsync", path))
}

/// Owner, mode and modification time to give an entry.
#[derive(Debug, Clone)]
struct Meta {
    path: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<Xattr>,
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Owner first: changing it clears setuid, setgid and `security.capability`. Then the
/// extended attributes, while the entry is still writable to its owner (a read-only
/// mode would refuse `user.*` to a non-root restore); then the mode (which leaves the
/// attributes alone) and the times.
fn apply_meta(fd: BorrowedFd<'_>, meta: &Meta, not_set: &mut NotSet) -> Result<(), Errno> {
    rfs::fchown(
        fd,
        Some(rfs::Uid::from_raw(meta.uid)),
        Some(rfs::Gid::from_raw(meta.gid)),
    )?;
    xattr::apply(fd, &meta.xattrs, not_set)?;
    rfs::fchmod(fd, Mode::from_raw_mode(meta.mode & 0o7777))?;
    rfs::futimens(fd, &times(meta.mtime))
}

fn copy_meta(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    let stat = rfs::fstat(from)?;
    apply_meta(
        to,
        &Meta {
            path: Vec::new(),
            mode: stat.st_mode,
            uid: stat.st_uid,
            gid: stat.st_gid,
            mtime: stat.st_mtime,
            xattrs: xattr::read(from)?,
        },
        // These were set on `from` already, and any refused there was reported.
        &mut NotSet::default(),
    )
}

struct Unpacker<'a> {
    data: BorrowedFd<'a>,
    data_path: &'a Path,
    archive: &'a Path,
    /// The last parent folder written into: its path and descriptor.
    parent: Option<(Vec<u8>, OwnedFd)>,
    dirs: Vec<Meta>,
    root_entry: Option<Meta>,
    /// Where written parts of large files are sent to be flushed in the background.
    flush: Option<std::sync::mpsc::SyncSender<OwnedFd>>,
    /// Extended attributes that could not be set.
    not_set: NotSet,
}

/// How much of a file is written between two background flushes.
const FLUSH_EVERY: u64 = 16 << 20;

/// An entry's path as safe components, or why not.
fn components(raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n.as_bytes().to_vec()),
            Component::CurDir => {}
            Component::ParentDir => return Err("it contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("it is an absolute path".into())
            }
        }
    }
    Ok(out)
}

impl Unpacker<'_> {
    fn unsafe_entry(&self, entry: &[u8], detail: impl Into<String>) -> BackupError {
        BackupError::UnsafeEntry {
            path: self.archive.to_owned(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            detail: detail.into(),
        }
    }

    fn write_error(&self, parts: &[Vec<u8>]) -> impl Fn(Errno) -> BackupError {
        let path = self.data_path.join(OsStr::from_bytes(&parts.join(&b'/')));
        move |e| BackupError::Volume {
            action: "write",
            path: path.clone(),
            source: e.into(),
        }
    }

    /// The folder holding the entry `parts` (all but the last), created when missing,
    /// never through a symlink.
    fn parent_of(&mut self, raw: &[u8], parts: &[Vec<u8>]) -> Result<OwnedFd, BackupError> {
        let parent = parts[..parts.len() - 1].join(&b'/');
        if self.parent.as_ref().is_none_or(|(p, _)| *p != parent) {
            let mut fd: Option<OwnedFd> = None;
            for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
                let at = fd.as_ref().map_or(self.data, |f| f.as_fd());
                let name = OsStr::from_bytes(part);
                let opened = match open_dir_at(at, name) {
                    Err(Errno::NOENT) => {
                        // A folder the archive does not list before its content.
                        match rfs::mkdirat(at, name, Mode::from_raw_mode(0o755)) {
                            Ok(()) | Err(Errno::EXIST) => open_dir_at(at, name),
                            Err(e) => Err(e),
                        }
                    }
                    other => other,
                };
                let opened = match opened {
                    Ok(f) => f,
                    Err(Errno::LOOP | Errno::NOTDIR) => {
                        return Err(self.unsafe_entry(
                            raw,
                            format!(
                                "{:?} is a symlink or not a folder; nothing is written through it",
                                String::from_utf8_lossy(&parts[..=i].join(&b'/'))
                            ),
                        ))
                    }
                    Err(e) => return Err(self.write_error(&parts[..=i])(e)),
                };
                fd = Some(opened);
            }
            let fd = match fd {
                Some(fd) => fd,
                None => rfs::openat(self.data, ".", dir_flags(), Mode::empty())
                    .map_err(self.write_error(&[]))?,
            };
            self.parent = Some((parent, fd));
        }
        match &self.parent {
            Some((_, fd)) => fd.try_clone().map_err(|e| {
                self.write_error(parts)(Errno::from_io_error(&e).unwrap_or(Errno::IO))
            }),
            None => Err(self.write_error(parts)(Errno::NOENT)),
        }
    }

    /// Writes every entry of the tar stream `chunks` (checked by another thread as it
    /// goes, see [`stage`]), reading the stream to its end.
    fn run(&mut self, chunks: impl Read) -> Result<(), Unpacked> {
        let mut archive = tar::Archive::new(chunks);
        let mut buf = vec![0u8; 256 << 10];
        for entry in archive.entries().map_err(Unpacked::Read)? {
            let mut entry = entry.map_err(Unpacked::Read)?;
            let raw = entry.path_bytes().into_owned();
            self.unpack(&mut entry, &raw, &mut buf)?;
        }
        let mut rest = archive.into_inner();
        while rest.read(&mut buf).map_err(Unpacked::Read)? > 0 {}
        Ok(())
    }

    /// Writes one entry into the staging folder.
    fn unpack<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        buf: &mut [u8],
    ) -> Result<(), Unpacked> {
        let header = entry.header();
        let mode = header.mode().map_err(Unpacked::Read)?;
        let uid = u32::try_from(header.uid().map_err(Unpacked::Read)?).unwrap_or(u32::MAX);
        let gid = u32::try_from(header.gid().map_err(Unpacked::Read)?).unwrap_or(u32::MAX);
        let mtime = i64::try_from(header.mtime().map_err(Unpacked::Read)?).unwrap_or(0);
        let entry_type = header.entry_type();
        let link = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let parts = components(raw).map_err(|d| Unpacked::Refused(self.unsafe_entry(raw, d)))?;
        let xattrs = match entry_type {
            EntryType::Directory
            | EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse => xattr::of_entry(entry).map_err(Unpacked::Read)?,
            _ => Vec::new(),
        };
        let meta = Meta {
            path: parts.join(&b'/'),
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        };
        if parts.is_empty() {
            // The volume's root (`./`): its owner and mode apply once everything is in place.
            if entry_type != EntryType::Directory {
                return Err(Unpacked::Refused(self.unsafe_entry(
                    raw,
                    "the volume's root is not a folder in the archive",
                )));
            }
            self.root_entry = Some(meta);
            return Ok(());
        }
        let name_bytes = parts[parts.len() - 1].clone();
        let name = OsStr::from_bytes(&name_bytes);
        let fail = self.write_error(&parts);
        let parent_fd = self.parent_of(raw, &parts).map_err(Unpacked::Refused)?;
        let parent = parent_fd.as_fd();
        let refused = |e: Errno| Unpacked::Refused(fail(e));
        match entry_type {
            EntryType::Directory => {
                match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(refused)?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            rfs::unlinkat(parent, name, AtFlags::empty()).map_err(refused)?;
                            rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
                                .map_err(refused)?;
                        }
                    }
                    Err(e) => return Err(refused(e)),
                }
                self.dirs.push(meta);
                Ok(())
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = create(parent, name, |p, n| {
                    rfs::openat(
                        p,
                        n,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                })
                .map_err(refused)?;
                let mut file = File::from(fd);
                let mut size = 0u64;
                let mut unflushed = 0u64;
                loop {
                    let n = match entry.read(buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Unpacked::Read(e)),
                    };
                    file.write_all(&buf[..n])
                        .map_err(|e| refused(Errno::from_io_error(&e).unwrap_or(Errno::IO)))?;
                    size += n as u64;
                    unflushed += n as u64;
                    if unflushed >= FLUSH_EVERY {
                        unflushed = 0;
                        if let (Some(flush), Ok(fd)) =
                            (&self.flush, file.as_fd().try_clone_to_owned())
                        {
                            let _ = flush.try_send(fd);
                        }
                    }
                }
                if size >= FLUSH_EVERY / 4 {
                    if let (Some(flush), Ok(fd)) = (&self.flush, file.as_fd().try_clone_to_owned())
                    {
                        let _ = flush.try_send(fd);
                    }
                }
                apply_meta(file.as_fd(), &meta, &mut self.not_set).map_err(refused)?;
                Ok(())
            }
            EntryType::Symlink => {
                create(parent, name, |p, n| {
                    rfs::symlinkat(OsStr::from_bytes(&link), p, n)
                })
                .map_err(refused)?;
                rfs::chownat(
                    parent,
                    name,
                    Some(rfs::Uid::from_raw(uid)),
                    Some(rfs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(refused)?;
                rfs::utimensat(parent, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(refused)?;
                Ok(())
            }
            EntryType::Link => {
                let target = components(&link).map_err(|d| {
                    Unpacked::Refused(self.unsafe_entry(raw, format!("its link target: {d}")))
                })?;
                if target.is_empty() {
                    return Err(Unpacked::Refused(
                        self.unsafe_entry(raw, "it is a hard link to the volume's root"),
                    ));
                }
                // The target's folder, found like any entry's (never through a symlink).
                let target_parent = self.parent_of(&link, &target).map_err(Unpacked::Refused)?;
                let target_name = OsStr::from_bytes(&target[target.len() - 1]);
                create(parent, name, |p, n| {
                    rfs::linkat(&target_parent, target_name, p, n, AtFlags::empty())
                })
                .map_err(refused)?;
                Ok(())
            }
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                let (kind, dev) = match entry_type {
                    EntryType::Fifo => (FileType::Fifo, 0),
                    t => {
                        let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                        let kind = if t == EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (kind, rfs::makedev(major, minor))
                    }
                };
                create(parent, name, |p, n| {
                    rfs::mknodat(p, n, kind, Mode::from_raw_mode(0o600), dev)
                })
                .map_err(refused)?;
                rfs::chownat(
                    parent,
                    name,
                    Some(rfs::Uid::from_raw(uid)),
                    Some(rfs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(refused)?;
                rfs::chmodat(
                    parent,
                    name,
                    Mode::from_raw_mode(mode & 0o7777),
                    AtFlags::empty(),
                )
                .map_err(refused)?;
                Ok(())
            }
            other => {
                // Global headers and the like describe the stream, not a file.
                if matches!(other, EntryType::XGlobalHeader | EntryType::XHeader) {
                    Ok(())
                } else {
                    Err(Unpacked::Refused(self.unsafe_entry(
                        raw,
                        format!(
                            "its tar type {:?} cannot be restored",
                            char::from(other.as_byte())
                        ),
                    )))
                }
            }
        }
    }
}

/// Runs `make`, replacing a non-folder entry of the same name (tar streams may list a
/// path twice; the last one wins).
fn create<T>(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    make: impl Fn(BorrowedFd<'_>, &OsStr) -> Result<T, Errno>,
) -> Result<T, Errno> {
    match make(parent, name) {
        Err(Errno::EXIST) => {
            let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                return Err(Errno::ISDIR);
            }
            rfs::unlinkat(parent, name, AtFlags::empty())?;
            make(parent, name)
        }
        other => other,
    }
}

enum Unpacked {
    /// The tar stream could not be read.
    Read(io::Error),
    /// The entry was refused or could not be written.
    Refused(BackupError),
}

/// Step 4: moves every entry of `from` into `to`, merging folders that exist in both.
fn move_into(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    from_path: &Path,
) -> Result<(), BackupError> {
    let fail = |e: Errno| BackupError::Volume {
        action: "move into place",
        path: from_path.to_owned(),
        source: e.into(),
    };
    for name in names(from).map_err(fail)? {
        let name = OsStr::from_bytes(&name);
        let here = from_path.join(name);
        let fail = |e: Errno| BackupError::Volume {
            action: "move into place",
            path: here.clone(),
            source: e.into(),
        };
        let existing = match rfs::statat(to, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(fail(e)),
        };
        let src = FileType::from_raw_mode(
            rfs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(fail)?
                .st_mode,
        );
        match (src, existing) {
            (_, None) => rfs::renameat(from, name, to, name).map_err(fail)?,
            (FileType::Directory, Some(FileType::Directory)) => {
                let src_fd = open_dir_at(from, name).map_err(fail)?;
                let dst_fd = open_dir_at(to, name).map_err(fail)?;
                move_into(src_fd.as_fd(), dst_fd.as_fd(), &here)?;
                copy_meta(src_fd.as_fd(), dst_fd.as_fd()).map_err(fail)?;
                drop(src_fd);
                rfs::unlinkat(from, name, AtFlags::REMOVEDIR).map_err(fail)?;
            }
            (_, Some(FileType::Directory)) => {
                remove_tree_at(to, name).map_err(fail)?;
                rfs::renameat(from, name, to, name).map_err(fail)?;
            }
            (FileType::Directory, Some(_)) => {
                rfs::unlinkat(to, name, AtFlags::empty()).map_err(fail)?;
                rfs::renameat(from, name, to, name).map_err(fail)?;
            }
            // A file, symlink… replaces another atomically.
            (_, Some(_)) => rfs::renameat(from, name, to, name).map_err(fail)?,
        }
    }
    Ok(())
}

/// Removes the folder `name` in `parent` and everything in it, never following symlinks.
fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let fd = open_dir_at(parent, name)?;
    for child in names(fd.as_fd())? {
        let child = OsStr::from_bytes(&child);
        let st = rfs::statat(&fd, child, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            remove_tree_at(fd.as_fd(), child)?;
        } else {
            rfs::unlinkat(&fd, child, AtFlags::empty())?;
        }
    }
    drop(fd);
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    use super::*;

    fn meta(volume: &str) -> BackupMeta {
        BackupMeta {
            app: "t".into(),
            volume: volume.into(),
            revision: None,
            reason: "test".into(),
            created_at: 1_700_000_000_000,
        }
    }

    /// `(path, mode, uid, gid, size, content or link target)` of everything under `root`.
    fn listing(root: &Path) -> Vec<(String, u32, u32, u32, u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read_dir") {
                let p = e.expect("entry").path();
                let m = std::fs::symlink_metadata(&p).expect("stat");
                let content = if m.file_type().is_symlink() {
                    std::fs::read_link(&p)
                        .expect("link")
                        .into_os_string()
                        .into_vec()
                } else if m.is_file() {
                    std::fs::read(&p).expect("read")
                } else {
                    if m.is_dir() {
                        stack.push(p.clone());
                    }
                    Vec::new()
                };
                let rel = p.strip_prefix(root).expect("inside").display().to_string();
                let size = if m.is_dir() { 0 } else { m.size() };
                out.push((rel, m.mode(), m.uid(), m.gid(), size, content));
            }
        }
        out.sort();
        out
    }

    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_folder_round_trips_with_owners_modes_links_and_special_bits() {
        let backups = tempfile::tempdir().expect("tempdir");
        let src = tempfile::tempdir().expect("tempdir");
        let s = src.path();
        std::fs::create_dir_all(s.join("a/b/c")).expect("mkdir");
        std::fs::create_dir(s.join("emptydir")).expect("mkdir");
        for i in 0..300 {
            std::fs::write(s.join(format!("a/f{i}")), format!("file {i}\n")).expect("write");
        }
        let blob: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(7919) % 251) as u8)
            .collect();
        std::fs::write(s.join("a/b/c/blob"), &blob).expect("write");
        std::fs::write(s.join("empty"), b"").expect("write");
        std::fs::hard_link(s.join("a/f1"), s.join("hard")).expect("link");
        symlink("a/f2", s.join("link")).expect("symlink");
        symlink("/etc/passwd", s.join("outside")).expect("symlink");
        // Names and link targets longer than a tar header holds (GNU long-name records).
        let long = "n".repeat(90);
        std::fs::create_dir_all(s.join(&long).join(&long)).expect("mkdir");
        std::fs::write(s.join(&long).join(&long).join("f"), b"deep").expect("write");
        symlink(format!("{long}/{long}/f"), s.join("longlink")).expect("symlink");
        rustix::fs::mkfifoat(rustix::fs::CWD, s.join("fifo"), Mode::from_raw_mode(0o640))
            .expect("fifo");
        std::fs::set_permissions(
            s.join("a/b/c/blob"),
            std::fs::Permissions::from_mode(0o4750),
        )
        .expect("chmod");
        std::fs::set_permissions(s.join("a/b"), std::fs::Permissions::from_mode(0o711))
            .expect("chmod");
        // Owner changes need root; the tests run as root like the fast path does.
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        if root {
            std::os::unix::fs::lchown(s.join("a/f3"), Some(1234), Some(5678)).expect("chown");
            std::os::unix::fs::lchown(s.join("link"), Some(42), Some(43)).expect("chown");
        }
        // Mooring's own names at the root are not data.
        std::fs::create_dir(s.join(format!("{STAGING_PREFIX}x"))).expect("mkdir");
        let before = {
            let mut l = listing(s);
            l.retain(|e| !e.0.starts_with(STAGING_PREFIX));
            l
        };

        let record = backup_dir(s, backups.path(), meta("v")).expect("backup");
        assert_eq!(record.manifest.files, 303, "{:?}", record.manifest.files);
        assert!(record
            .manifest
            .entries
            .iter()
            .any(|e| matches!(&e.kind, EntryKind::Hardlink { target } if target == "a/f1")));
        crate::verify(&record).expect("verifies");

        let dst = tempfile::tempdir().expect("tempdir");
        std::fs::write(dst.path().join("kept"), b"not in the backup").expect("write");
        let done = restore_dir(&record, dst.path()).expect("restore");
        assert!(!done.resumed);
        assert_eq!(done.report.files, 303);
        let mut after = listing(dst.path());
        let kept = after.iter().position(|e| e.0 == "kept").expect("kept");
        after.remove(kept);
        assert_eq!(after, before);
        if root {
            assert_eq!(
                std::fs::metadata(dst.path().join("a/f3"))
                    .expect("stat")
                    .uid(),
                1234
            );
        }
        assert_eq!(
            std::fs::metadata(dst.path().join("hard"))
                .expect("stat")
                .ino(),
            std::fs::metadata(dst.path().join("a/f1"))
                .expect("stat")
                .ino(),
            "hard links stay hard links"
        );
        assert_eq!(inspect_dir(dst.path()).expect("state").staged, vec![]);
    }

    /// A tar stream with raw entry names (so `..` and absolute paths can be written).
    /// `(name, type, link target, content)`.
    type RawEntry<'a> = (&'a [u8], EntryType, &'a [u8], &'a [u8]);

    fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, link, data) in entries {
            let mut h = Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(data.len() as u64);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    #[test]
    fn entries_that_would_leave_the_volume_are_refused_and_nothing_is_moved_in() {
        let outside = tempfile::tempdir().expect("tempdir");
        let target = outside.path().display().to_string();
        let cases: Vec<Vec<u8>> = vec![
            raw_tar(&[
                (b"evil", EntryType::Symlink, target.as_bytes(), b""),
                (b"evil/x", EntryType::Regular, b"", b"owned"),
            ]),
            raw_tar(&[(b"../x", EntryType::Regular, b"", b"owned")]),
            raw_tar(&[(b"/x", EntryType::Regular, b"", b"owned")]),
            raw_tar(&[
                (b"evil", EntryType::Symlink, target.as_bytes(), b""),
                (b"h", EntryType::Link, b"evil/../../x", b""),
            ]),
        ];
        for (i, stream) in cases.into_iter().enumerate() {
            let backups = tempfile::tempdir().expect("tempdir");
            let record =
                crate::write_backup(&stream[..], backups.path(), meta("v")).expect("backup");
            let dst = tempfile::tempdir().expect("tempdir");
            let err = restore_dir(&record, dst.path()).expect_err("refused");
            assert!(
                matches!(err, BackupError::UnsafeEntry { .. }),
                "case {i}: {err}"
            );
            assert_eq!(
                std::fs::read_dir(dst.path()).expect("list").count(),
                0,
                "case {i}: nothing moved in, staging removed"
            );
            assert_eq!(
                std::fs::read_dir(outside.path()).expect("list").count(),
                0,
                "case {i}: nothing written outside"
            );
        }
    }

    fn set_xattr(path: &Path, name: &str, value: &[u8]) {
        rfs::setxattr(path, name, value, rfs::XattrFlags::empty())
            .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
    }

    fn xattrs_at(path: &Path) -> Vec<xattr::Xattr> {
        let fd = rfs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).expect("open");
        xattr::read(fd.as_fd()).expect("read xattrs")
    }

    #[test]
    fn extended_attributes_of_files_folders_and_the_root_round_trip() {
        let src = tempfile::tempdir().expect("tempdir");
        let root = src.path();
        std::fs::create_dir(root.join("d")).expect("mkdir");
        std::fs::write(root.join("d/tool"), b"#!/bin/sh\n").expect("write");
        std::fs::write(root.join("plain"), b"no attributes").expect("write");
        // A file capability (cap_net_bind_service, permitted and effective, v2): the
        // kind chown clears, so it must be set after the owner.
        let mut cap = Vec::new();
        for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
            cap.extend_from_slice(&word.to_le_bytes());
        }
        set_xattr(&root.join("d/tool"), "security.capability", &cap);
        set_xattr(&root.join("d/tool"), "user.note", b"\x00binary\xffvalue");
        set_xattr(&root.join("d"), "user.folder", b"f");
        set_xattr(root, "user.root", b"r");
        std::os::unix::fs::chown(root.join("d/tool"), Some(1234), Some(1234)).expect("chown");
        // chown dropped the capability: set it again, as a package install would.
        set_xattr(&root.join("d/tool"), "security.capability", &cap);

        let backups = tempfile::tempdir().expect("tempdir");
        let record = backup_dir(root, backups.path(), meta("x")).expect("backup");
        let dst = tempfile::tempdir().expect("tempdir");
        let done = restore_dir(&record, dst.path()).expect("restore");
        assert_eq!(done.xattrs_not_set, NotSet::default());
        for rel in ["d/tool", "d", "plain", ""] {
            assert_eq!(
                xattrs_at(&dst.path().join(rel)),
                xattrs_at(&root.join(rel)),
                "{rel:?}"
            );
        }
        assert_eq!(xattrs_at(&root.join("d/tool")).len(), 2);
        assert!(xattrs_at(&root.join("plain")).is_empty());
    }

    #[test]
    fn an_attribute_this_file_system_refuses_is_reported_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").expect("write");
        let fd = rfs::open(&path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).expect("open");
        let mut not_set = NotSet::default();
        let attrs = vec![
            (b"nosuchnamespace.x".to_vec(), b"1".to_vec()),
            (b"user.kept".to_vec(), b"2".to_vec()),
        ];
        xattr::apply(fd.as_fd(), &attrs, &mut not_set).expect("apply");
        assert_eq!(not_set.lines().len(), 1, "{not_set:?}");
        assert!(
            not_set.lines()[0].starts_with("nosuchnamespace.x on 1 entry ("),
            "{not_set:?}"
        );
        assert_eq!(
            xattrs_at(&path),
            vec![(b"user.kept".to_vec(), b"2".to_vec())]
        );
    }

    #[test]
    fn a_verified_restore_interrupted_while_moving_is_finished_by_the_next() {
        let backups = tempfile::tempdir().expect("tempdir");
        let src = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(src.path().join("d")).expect("mkdir");
        std::fs::write(src.path().join("d/one"), b"1").expect("write");
        std::fs::write(src.path().join("two"), b"2").expect("write");
        let record = backup_dir(src.path(), backups.path(), meta("v")).expect("backup");
        let dst = tempfile::tempdir().expect("tempdir");
        // Simulate a kill after staging and part of the move: stage fully, move one entry.
        let root_fd = open_dir_at(CWD, dst.path()).expect("open");
        let name = format!("{STAGING_PREFIX}{}", record.id);
        rfs::mkdirat(&root_fd, name.as_str(), Mode::from_raw_mode(0o700)).expect("mkdir");
        let file = open_archive(&record.archive, &record.manifest).expect("open");
        stage(
            &record,
            &file,
            root_fd.as_fd(),
            &name,
            &dst.path().join(&name),
        )
        .expect("stage");
        std::fs::rename(
            dst.path().join(&name).join("data/two"),
            dst.path().join("two"),
        )
        .expect("move");
        let state = inspect_dir(dst.path()).expect("state");
        assert_eq!(state.entries, 1);
        assert_eq!(state.staged, vec![(record.id.clone(), true)]);

        let done = restore_dir(&record, dst.path()).expect("finish");
        assert!(done.resumed);
        assert_eq!(listing(dst.path()), listing(src.path()));
        // An unverified leftover is simply removed by the next restore.
        std::fs::create_dir_all(dst.path().join(&name).join("data/junk")).expect("mkdir");
        let done = restore_dir(&record, dst.path()).expect("again");
        assert!(!done.resumed);
        assert_eq!(done.cleaned, 1);
        assert_eq!(listing(dst.path()), listing(src.path()));
    }
}
