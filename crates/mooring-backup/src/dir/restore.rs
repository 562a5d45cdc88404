//! The restore side: a backup staged inside the volume, checked entry by entry, then
//! moved into place (see the [parent module](super)); and what a folder holds before.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::thread;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, CWD};
use rustix::io::Errno;
use tar::EntryType;

use crate::pipe::chunk_channel;
use crate::verify::{check_digest, check_manifest, decompress_hashed, open_archive, TrackEof};
use crate::xattr::{self, NotSet, Xattr};
use crate::{BackupError, BackupRecord, VerifyReport};

use super::{
    dir_flags, names, open_dir_at, volume_error, COMPLETE, DATA, PROBE_PREFIX, STAGING_PREFIX,
};

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
/// the [module docs](super). Files of the volume that are not in the backup are kept;
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
pub(super) fn stage(
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
