//! The backup side: a volume's folder walked, fd-relative and never following a symlink,
//! into the tar stream a backup stores (see the [parent module](super)).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::manifest::hex;
use crate::pipe::{ChunkSender, CHUNK};
use crate::xattr::{self};
use crate::{BackupError, BackupMeta, BackupRecord, EntryKind, FileEntry};

use super::{names, open_dir_at, ours_at_root, volume_error};

/// Backs up the folder `root` (a volume's mount point) into a new backup in `dir`.
///
/// The folder is walked as described in the [module docs](super) into a tar stream that
/// is stored and verified as [`write_backup`](crate::write_backup) does (so everything
/// said there holds: one pass, crash-safe, verified before it exists). A failure to read the folder is
/// [`BackupError::Volume`] naming the file; nothing is kept then.
pub fn backup_dir(root: &Path, dir: &Path, meta: BackupMeta) -> Result<BackupRecord, BackupError> {
    // The walk produces the stream and describes its entries itself (no tar parsing).
    crate::write::write_backup_from(|sender| walk_stream(root, sender), dir, meta)
}

/// Walks `root` into the tar stream a backup stores, sent to `sender`: its entries and
/// the stream's [`StreamSum`](crate::write::StreamSum).
fn walk_stream(root: &Path, sender: ChunkSender) -> crate::write::Produced {
    let root_fd = open_dir_at(CWD, root).map_err(volume_error("open", root))?;
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
}

/// Whether the folder `root` holds exactly what backup `record` holds, byte for byte:
/// the tar stream a backup of it would store now (walked as [`backup_dir`] walks it —
/// content, modes, owners, times, extended attributes — nothing written anywhere) is
/// the one the backup's archive decompresses to, which is checked against its manifest
/// on the way ([`restore_to`](crate::restore_to)). A retried removal reuses such a
/// backup instead of taking another copy of the same data.
pub fn unchanged_since(root: &Path, record: &BackupRecord) -> Result<bool, BackupError> {
    let (sender, mut receiver) = crate::pipe::chunk_channel();
    // The stream is produced as for a backup and dropped chunk by chunk.
    let drain = std::thread::spawn(move || {
        while let Some(chunk) = receiver.next_chunk() {
            receiver.recycle(chunk);
        }
    });
    let walked = walk_stream(root, sender);
    let _ = drain.join();
    let (_, now) = walked?;
    let mut stored = StreamHasher {
        hasher: xxhash_rust::xxh3::Xxh3::new(),
        count: 0,
    };
    crate::verify::restore_to(record, &mut stored)?;
    Ok((stored.hasher.digest128(), stored.count) == now)
}

/// A [`Write`] that only hashes (XXH3-128) and counts.
struct StreamHasher {
    hasher: xxhash_rust::xxh3::Xxh3,
    count: u64,
}

impl Write for StreamHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.count += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
