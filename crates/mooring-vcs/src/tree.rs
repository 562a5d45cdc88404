//! Materializing a snapshot at a stable place on the host (an app's deploy tree), in
//! place: only files whose content, mode or symlink target differ are rewritten (each
//! through a temporary file and a rename), and what the snapshot no longer has is
//! removed. Folders keep their identity, so containers bind-mounting a folder keep
//! seeing it; a changed file gets a new inode, and the services mounting it are
//! recreated anyway because their spec hash covers the content.
//!
//! The deploy tree is not trusted: a container with a read-write bind of a repository
//! file or folder can put a symlink there. Every write is therefore relative to an
//! open folder (`openat`, `mkdirat`, `renameat`, `unlinkat`, `fchmod` on the new
//! file's own descriptor) and nothing is opened through a symlink (`O_NOFOLLOW`):
//! a planted symlink is removed or replaced as an entry, never followed, so no copy,
//! chmod or rename reaches outside the tree.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

/// Prefix of the temporary file a changed file is written to before its rename.
const TMP_PREFIX: &str = ".mooring-tmp-";

/// Makes `to` hold exactly what `from` holds (`.git` excluded). `to` is created if
/// missing; it must not be a symlink.
pub fn sync_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    let src = open_dir_at(CWD, from)?;
    let dst = open_dir_at(CWD, to)?;
    sync_dir(src.as_fd(), dst.as_fd())
}

fn open_dir_at<P: rustix::path::Arg>(fd: BorrowedFd<'_>, name: P) -> Result<OwnedFd, Errno> {
    rfs::openat(
        fd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Names in the directory `fd` (without `.` and `..`).
fn names(fd: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    for entry in Dir::read_from(fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
    Ok(out)
}

/// The entry `name` in `dir` itself (a symlink is not followed), if any.
fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<Stat>, Errno> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn kind(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

fn sync_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let mut wanted = BTreeSet::new();
    for name in names(src)? {
        if name == b".git" {
            continue;
        }
        let name = OsStr::from_bytes(&name);
        wanted.insert(name.to_os_string());
        let Some(from) = stat_at(src, name)? else {
            continue;
        };
        let existing = stat_at(dst, name)?;
        match kind(&from) {
            FileType::Directory => {
                match existing.as_ref().map(kind) {
                    Some(FileType::Directory) => {}
                    Some(_) => {
                        rfs::unlinkat(dst, name, AtFlags::empty())?;
                        rfs::mkdirat(dst, name, Mode::from_raw_mode(0o755))?;
                    }
                    None => rfs::mkdirat(dst, name, Mode::from_raw_mode(0o755))?,
                }
                let (s, d) = (open_dir_at(src, name)?, open_dir_at(dst, name)?);
                sync_dir(s.as_fd(), d.as_fd())?;
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(src, name, Vec::new())?;
                let same = existing
                    .as_ref()
                    .is_some_and(|e| kind(e) == FileType::Symlink)
                    && rfs::readlinkat(dst, name, Vec::new()).ok().as_ref() == Some(&target);
                if !same {
                    remove_any_at(dst, name)?;
                    rfs::symlinkat(&target, dst, name)?;
                }
            }
            FileType::RegularFile => {
                let same = match &existing {
                    Some(e)
                        if kind(e) == FileType::RegularFile
                            && e.st_size == from.st_size
                            && e.st_mode & 0o7777 == from.st_mode & 0o7777 =>
                    {
                        read_at(dst, name)? == read_at(src, name)?
                    }
                    _ => false,
                };
                if !same {
                    replace_file(src, dst, name, &from, existing.as_ref())?;
                }
            }
            // Sockets, fifos, devices: not repository content.
            _ => {}
        }
    }
    for name in names(dst)? {
        let name = OsStr::from_bytes(&name);
        if !wanted.contains(name) {
            remove_any_at(dst, name)?;
        }
    }
    Ok(())
}

/// Opens the regular file `name` in `dir` for reading, never through a symlink.
fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<fs::File, Errno> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fs::File::from(fd))
}

fn read_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    open_file_at(dir, name)?.read_to_end(&mut out)?;
    Ok(out)
}

/// Writes `name` of `src` into a new temporary file in `dst` (created exclusively,
/// never through a symlink), sets its mode on its own descriptor, and renames it
/// over `name` (which replaces a symlink there, rather than following it).
fn replace_file(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &OsStr,
    from: &Stat,
    existing: Option<&Stat>,
) -> io::Result<()> {
    let mut tmp_name = TMP_PREFIX.as_bytes().to_vec();
    tmp_name.extend_from_slice(name.as_bytes());
    let tmp_name = OsStr::from_bytes(&tmp_name);
    remove_any_at(dst, tmp_name)?;
    let mut input = open_file_at(src, name)?;
    let tmp = rfs::openat(
        dst,
        tmp_name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut out = fs::File::from(tmp);
    let written = io::copy(&mut input, &mut out).and_then(|_| {
        Ok(rfs::fchmod(
            out.as_fd(),
            Mode::from_raw_mode(from.st_mode & 0o7777),
        )?)
    });
    if let Err(e) = written {
        let _ = rfs::unlinkat(dst, tmp_name, AtFlags::empty());
        return Err(e);
    }
    drop(out);
    if existing.is_some_and(|e| kind(e) == FileType::Directory) {
        remove_tree_at(dst, name)?;
    }
    rfs::renameat(dst, tmp_name, dst, name)?;
    Ok(())
}

/// Removes the entry `name` of `dir` whatever it is (a folder with its content),
/// never following a symlink; nothing there is fine.
fn remove_any_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match stat_at(dir, name)? {
        None => Ok(()),
        Some(st) if kind(&st) == FileType::Directory => remove_tree_at(dir, name),
        Some(_) => rfs::unlinkat(dir, name, AtFlags::empty()),
    }
}

/// Removes the folder `name` in `parent` and everything in it, never following symlinks.
fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let fd = open_dir_at(parent, name)?;
    for child in names(fd.as_fd())? {
        remove_any_at(fd.as_fd(), OsStr::from_bytes(&child))?;
    }
    drop(fd);
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn syncs_in_place_keeping_folder_identity() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let (from, to) = (a.path(), b.path().join("tree"));
        fs::create_dir_all(from.join("conf")).unwrap();
        fs::write(from.join("conf/a"), "1").unwrap();
        fs::write(from.join("conf/b"), "same").unwrap();
        std::os::unix::fs::symlink("conf/a", from.join("link")).unwrap();
        sync_tree(from, &to).unwrap();
        let dir_ino = fs::metadata(to.join("conf")).unwrap().ino();
        let b_ino = fs::metadata(to.join("conf/b")).unwrap().ino();
        fs::write(from.join("conf/a"), "2").unwrap();
        fs::remove_file(from.join("link")).unwrap();
        fs::write(from.join("new"), "n").unwrap();
        fs::write(to.join("stray"), "x").unwrap();
        sync_tree(from, &to).unwrap();
        assert_eq!(fs::read_to_string(to.join("conf/a")).unwrap(), "2");
        assert_eq!(fs::read_to_string(to.join("new")).unwrap(), "n");
        assert!(!to.join("link").exists() && !to.join("stray").exists());
        assert_eq!(fs::metadata(to.join("conf")).unwrap().ino(), dir_ino);
        assert_eq!(
            fs::metadata(to.join("conf/b")).unwrap().ino(),
            b_ino,
            "unchanged file kept"
        );
    }

    #[test]
    fn symlinks_planted_in_the_tree_are_replaced_never_followed() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let (from, to, out) = (a.path(), b.path().join("tree"), outside.path());
        fs::create_dir_all(from.join("conf")).unwrap();
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::write(from.join("conf/app.conf"), "v1").unwrap();
        fs::write(from.join("data.txt"), "v1").unwrap();
        fs::write(from.join("sub/x"), "v1").unwrap();
        sync_tree(from, &to).unwrap();

        // What a container with a read-write bind could plant: symlinks to a host
        // file (0600) and a host folder, in place of files, of a folder, and of the
        // temporary name the next write uses.
        let victim = out.join("victim");
        fs::write(&victim, "host file").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        let host_dir = out.join("dir");
        fs::create_dir(&host_dir).unwrap();
        fs::write(host_dir.join("x"), "host x").unwrap();
        fs::remove_file(to.join("conf/app.conf")).unwrap();
        symlink(&victim, to.join("conf/app.conf")).unwrap();
        fs::remove_file(to.join("data.txt")).unwrap();
        symlink(
            "../../../../../../../../../../..".to_string() + &victim.to_string_lossy(),
            to.join("data.txt"),
        )
        .unwrap();
        symlink(&victim, to.join(".mooring-tmp-data.txt")).unwrap();
        fs::remove_dir_all(to.join("sub")).unwrap();
        symlink(&host_dir, to.join("sub")).unwrap();

        fs::write(from.join("conf/app.conf"), "v2").unwrap();
        fs::write(from.join("data.txt"), "v2").unwrap();
        fs::set_permissions(from.join("data.txt"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(from.join("sub/x"), "v2").unwrap();
        sync_tree(from, &to).unwrap();

        assert_eq!(fs::read_to_string(&victim).unwrap(), "host file");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&victim), 0o600, "no chmod through the link");
        assert_eq!(fs::read_to_string(host_dir.join("x")).unwrap(), "host x");
        assert_eq!(fs::read_dir(&host_dir).unwrap().count(), 1);
        assert_eq!(
            fs::read_dir(out).unwrap().count(),
            2,
            "nothing created outside"
        );
        for (path, content) in [("conf/app.conf", "v2"), ("data.txt", "v2"), ("sub/x", "v2")] {
            let p = to.join(path);
            assert!(fs::symlink_metadata(&p).unwrap().is_file(), "{path}");
            assert_eq!(fs::read_to_string(&p).unwrap(), content, "{path}");
        }
        assert!(fs::symlink_metadata(to.join("sub")).unwrap().is_dir());
        assert_eq!(mode(&to.join("data.txt")), 0o755);
        assert!(!to.join(".mooring-tmp-data.txt").exists());
        // The same when nothing changed in the snapshot: the link goes, the content is back.
        fs::remove_file(to.join("data.txt")).unwrap();
        symlink(&victim, to.join("data.txt")).unwrap();
        sync_tree(from, &to).unwrap();
        assert_eq!(fs::read_to_string(to.join("data.txt")).unwrap(), "v2");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "host file");
        // A tree that is itself a symlink is refused.
        let linked = b.path().join("linked");
        symlink(&host_dir, &linked).unwrap();
        assert!(sync_tree(from, &linked).is_err());
        assert_eq!(fs::read_dir(&host_dir).unwrap().count(), 1);
    }
}
