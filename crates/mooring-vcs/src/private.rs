//! The folder temporary credential files live in: `<data_dir>/sources/.credentials`
//! (mode 0700), one 0700 subfolder per command named `<pid>-<kind>-<random>` holding
//! 0600 files (Git's `credential-store` file, an SSH key given as a value, Mercurial's
//! configuration with `[auth]`). A subfolder lives while its command runs; one left
//! behind by a process that died (`kill -9`, a crash, power loss) is removed the
//! next time any process opens the cache ([`clean`], from `Cache::new`), so no
//! credential survives on disk. Without a cache (credentials used on their own) the
//! subfolder is made in the system's temporary folder, as before.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The folder's name under the cache root.
pub(crate) const DIR: &str = ".credentials";

/// How old a leftover must be to be removed when running processes cannot be
/// listed (no `/proc`): no command holds credentials that long.
const STALE_WITHOUT_PROC: Duration = Duration::from_secs(24 * 3600);

/// A private 0700 subfolder for one command's credential files, removed on drop:
/// in `folder` (created 0700 if missing, made 0700 if not) or, without one, in the
/// system's temporary folder.
pub(crate) fn tempdir(folder: Option<&Path>, kind: &str) -> io::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.permissions(fs::Permissions::from_mode(0o700));
    match folder {
        None => builder.prefix(&format!("mooring-{kind}-")).tempdir(),
        Some(folder) => {
            prepare(folder)?;
            builder
                .prefix(&format!("{}-{kind}-", std::process::id()))
                .tempdir_in(folder)
        }
    }
}

/// A private (0600) file for one command, removed on drop; placed like [`tempdir`].
pub(crate) fn tempfile(folder: Option<&Path>, kind: &str) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.permissions(fs::Permissions::from_mode(0o600));
    match folder {
        None => builder.prefix(&format!("mooring-{kind}-")).tempfile(),
        Some(folder) => {
            prepare(folder)?;
            builder
                .prefix(&format!("{}-{kind}-", std::process::id()))
                .tempfile_in(folder)
        }
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
pub(crate) fn clean(folder: &Path) {
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
        let folder = data.path().join("sources").join(DIR);
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
}
