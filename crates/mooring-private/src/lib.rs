//! Private temporary folders and files for credentials: an SSH key given as a value
//! (not a file), Git's `credential-store` file, Mercurial's configuration with
//! `[auth]`, and the sockets of shared SSH connections.
//!
//! A caller's folder (e.g. `<data_dir>/sources/.credentials`, mode 0700) holds one 0700
//! subfolder per command named `<pid>-<kind>-<random>` holding 0600 files. A subfolder
//! lives while its command runs; one left behind by a process that died (`kill -9`, a
//! crash, power loss) is removed by [`clean`], which callers run when they open the
//! folder, so no credential survives on disk. Without a folder the subfolder is made in
//! the system's temporary folder, named `mooring-<kind>-<pid>-<random>`, and
//! [`clean_temp`] sweeps those of dead processes. [`write_key`] writes a key into such a
//! subfolder.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How old a leftover must be to be removed when running processes cannot be
/// listed (no `/proc`): no command holds credentials that long.
const STALE_WITHOUT_PROC: Duration = Duration::from_secs(24 * 3600);

/// A private 0700 subfolder for one command's credential files, removed on drop:
/// in `folder` (created 0700 if missing, made 0700 if not) or, without one, in the
/// system's temporary folder.
pub fn tempdir(folder: Option<&Path>, kind: &str) -> io::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.permissions(fs::Permissions::from_mode(0o700));
    match folder {
        None => builder.prefix(&temp_prefix(kind)).tempdir(),
        Some(folder) => {
            prepare(folder)?;
            builder
                .prefix(&format!("{}-{kind}-", std::process::id()))
                .tempdir_in(folder)
        }
    }
}

/// A private (0600) file for one command, removed on drop; placed like [`tempdir`].
pub fn tempfile(folder: Option<&Path>, kind: &str) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.permissions(fs::Permissions::from_mode(0o600));
    match folder {
        None => builder.prefix(&temp_prefix(kind)).tempfile(),
        Some(folder) => {
            prepare(folder)?;
            builder
                .prefix(&format!("{}-{kind}-", std::process::id()))
                .tempfile_in(folder)
        }
    }
}

/// `mooring-<kind>-<pid>-`: the start of a name in the system's temporary folder.
fn temp_prefix(kind: &str) -> String {
    format!("mooring-{kind}-{}-", std::process::id())
}

/// Writes `key` (an SSH private key) to `path`, a new file (mode 0600, never over
/// anything, never through a link) in a private folder: line ends as ssh reads them
/// (`\n`, one at the end), flushed.
pub fn write_key(path: &Path, key: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    let mut text: Vec<u8> = Vec::with_capacity(key.len() + 1);
    let mut bytes = key.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        text.push(b);
    }
    // ssh reads a key only when it ends with a newline.
    if !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    file.write_all(&text)?;
    file.sync_all()
}

/// Removes the subfolders and files of `kind` that dead processes left in the system's
/// temporary folder ([`tempdir`] and [`tempfile`] without a folder): those of this
/// user (never through a link) whose pid no longer runs.
pub fn clean_temp(kind: &str) {
    use std::os::unix::fs::MetadataExt;
    // Without `/proc` no pid can be told alive: nothing is removed.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let me = rustix::process::geteuid().as_raw();
    let start = format!("mooring-{kind}-");
    for entry in fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&start))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != me || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let _ = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

/// Creates `folder` (0700) or makes sure it is a private folder.
fn prepare(folder: &Path) -> io::Result<()> {
    match fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(folder)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(folder)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a folder (remove it; Mooring keeps temporary credential files there)",
            folder.display()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(folder, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Removes the subfolders of `folder` whose process is gone. Best effort: a
/// subfolder that cannot be removed now is tried again at the next cache open.
pub fn clean(folder: &Path) {
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    let proc_mounted = Path::new("/proc/self").exists();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let gone = match pid {
            Some(pid) if proc_mounted => !Path::new("/proc").join(pid.to_string()).exists(),
            _ => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_WITHOUT_PROC),
        };
        if gone {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_folders_and_leftovers_of_dead_processes() {
        let data = tempfile::tempdir().unwrap();
        let folder = data.path().join("sources").join(".credentials");
        let live = tempdir(Some(&folder), "git").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(live.path()), 0o700);
        // A leftover of a process that is gone (pids are below 2^22 on Linux).
        let dead = folder.join("4999999-git-abc");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("store"), "https://u:p@h").unwrap();
        clean(&folder);
        assert!(!dead.exists(), "a dead process's credentials are removed");
        assert!(live.path().exists(), "a running command's are kept");
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
        // The folder is made private again if someone opened it up.
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).unwrap();
        let file = tempfile(Some(&folder), "hg").unwrap();
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(file.path()), 0o600);
        assert!(file.path().starts_with(&folder));
        drop(file);
        fs::remove_dir_all(&folder).unwrap();
        fs::write(&folder, "").unwrap();
        assert!(
            tempdir(Some(&folder), "git").is_err(),
            "a file in its place"
        );
    }

    #[test]
    fn a_key_is_written_new_private_and_as_ssh_reads_it() {
        let dir = tempdir(None, "test").unwrap();
        let path = dir.path().join("key");
        write_key(&path, b"-----BEGIN X-----\r\nAAAA\r\n-----END X-----").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::read(&path).unwrap(),
            b"-----BEGIN X-----\nAAAA\n-----END X-----\n"
        );
        assert!(write_key(&path, b"k").is_err(), "never over a file");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(write_key(&link, b"k").is_err(), "never through a link");
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn temporary_leftovers_of_dead_processes_are_swept() {
        let live = tempdir(None, "sweeptest").unwrap();
        let name = live
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(&format!("mooring-sweeptest-{}-", std::process::id())));
        let dead = std::env::temp_dir().join("mooring-sweeptest-4999999-abc");
        fs::create_dir_all(&dead).unwrap();
        fs::write(dead.join("key"), "secret").unwrap();
        clean_temp("sweeptest");
        assert!(!dead.exists(), "a dead process's folder is removed");
        assert!(live.path().exists(), "a running process's is kept");
    }
}
