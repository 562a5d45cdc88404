//! A backup copied into another folder — a mounted share, another disk: an off-host
//! copy — and back again. The other folder gets this folder's own layout, so
//! [`list`](crate::list), [`load`](crate::load), [`verify`](crate::verify) and
//! [`prune_volume`](crate::prune_volume) work there as here, and a copy is brought back
//! by copying it the other way.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::Digest;

use crate::manifest::{archive_path, hex, manifest_path, partial, read_manifest, write_manifest};
use crate::write::sync_dir;
use crate::{BackupError, BackupRecord};

/// What [`copy_backup`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// The archive's bytes written (0 when the copy was there already).
    pub bytes: u64,
    /// The copy was there already, its manifest the same and its archive the size the
    /// manifest says.
    pub already: bool,
    /// How the copy was checked on the target: its archive hashed there as it was
    /// written (an SFTP account that can run commands), or read back from it.
    pub hashed_there: bool,
}

/// Copies backup `record` into folder `to` (created if missing) and returns the copy.
///
/// The archive goes to `<id>.tar.zst.partial`, is flushed to the target's disk, and its
/// size and sha256 are read back from the target file — its cached pages dropped first,
/// so what is read is what the target holds — and must be the manifest's; only then is
/// it renamed into place, and the manifest after it (read back too), and the folder
/// flushed. A copy exists exactly when its manifest does, as every backup: a copy
/// interrupted leaves `.partial` files that [`clean_partials`](crate::clean_partials)
/// removes, and a failed one is removed. A copy already there with the same manifest
/// and an archive of the manifest's size is kept as it is.
///
/// The source is checked on the way too: the bytes copied must hash to the manifest's
/// sha256, so a damaged backup is never copied.
pub fn copy_backup(
    record: &BackupRecord,
    to: &Path,
) -> Result<(BackupRecord, Copied), BackupError> {
    let manifest = &record.manifest;
    if manifest.compute_digest() != manifest.digest {
        return Err(BackupError::ManifestChanged {
            path: record.manifest_path.clone(),
        });
    }
    fs::create_dir_all(to).map_err(|e| BackupError::io("create", to, e))?;
    let archive = archive_path(to, &record.id);
    let manifest_file = manifest_path(to, &record.id);
    if let Ok(there) = read_manifest(&manifest_file) {
        let size = fs::metadata(&archive).map(|m| m.len()).ok();
        if there == *manifest && size == Some(manifest.archive_size) {
            let copy = BackupRecord::new(to, &record.id, there);
            return Ok((
                copy,
                Copied {
                    bytes: 0,
                    already: true,
                    hashed_there: false,
                },
            ));
        }
    }
    let (archive_partial, manifest_partial) = (partial(&archive), partial(&manifest_file));
    // What a copy interrupted here left (one copier writes a folder at a time).
    for leftover in [&archive_partial, &manifest_partial] {
        let _ = fs::remove_file(leftover);
    }
    let outcome = (|| {
        let source_sha = copy_file(&record.archive, &archive_partial)?;
        if source_sha != manifest.archive_sha256 {
            return Err(BackupError::ArchiveChecksum {
                path: record.archive.clone(),
                expected: manifest.archive_sha256.clone(),
                actual: source_sha,
            });
        }
        let (size, sha) = read_back(&archive_partial)?;
        if size != manifest.archive_size {
            return Err(BackupError::ArchiveSize {
                path: archive_partial.clone(),
                expected: manifest.archive_size,
                actual: size,
            });
        }
        if sha != manifest.archive_sha256 {
            return Err(BackupError::ArchiveChecksum {
                path: archive_partial.clone(),
                expected: manifest.archive_sha256.clone(),
                actual: sha,
            });
        }
        write_manifest(&manifest_partial, manifest)?;
        if read_manifest(&manifest_partial)? != *manifest {
            return Err(BackupError::ManifestChanged {
                path: manifest_partial.clone(),
            });
        }
        fs::rename(&archive_partial, &archive)
            .map_err(|e| BackupError::io("rename into place", &archive_partial, e))?;
        fs::rename(&manifest_partial, &manifest_file)
            .map_err(|e| BackupError::io("rename into place", &manifest_partial, e))?;
        sync_dir(to)
    })();
    if let Err(e) = outcome {
        for path in [&manifest_partial, &archive_partial] {
            let _ = fs::remove_file(path);
        }
        // A complete archive without its manifest is not a copy.
        if !manifest_file.exists() {
            let _ = fs::remove_file(&archive);
        }
        return Err(e);
    }
    let copy = BackupRecord::new(to, &record.id, manifest.clone());
    Ok((
        copy,
        Copied {
            bytes: manifest.archive_size,
            already: false,
            hashed_there: false,
        },
    ))
}

/// Copies `from` into a new file `to`, flushed; returns the sha256 of what was read.
fn copy_file(from: &Path, to: &Path) -> Result<String, BackupError> {
    let input = File::open(from).map_err(|e| BackupError::io("open", from, e))?;
    let mut output = File::options()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| BackupError::io("create", to, e))?;
    let (_, sha) = hash_through(input, from, "read", |chunk| {
        output
            .write_all(chunk)
            .map_err(|e| BackupError::io("write", to, e))
    })?;
    output
        .sync_all()
        .map_err(|e| BackupError::io("flush", to, e))?;
    Ok(sha)
}

/// The size and sha256 of `path` as its disk (or share) holds it: its pages in the page
/// cache, flushed already, are dropped before it is read.
pub(crate) fn read_back(path: &Path) -> Result<(u64, String), BackupError> {
    let file = File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    // Advice only: where it is not followed, the read is from the cache.
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    hash_through(file, path, "read back", |_| Ok(()))
}

/// Reads `input` (the file at `path`) to its end, each chunk hashed and given to
/// `sink`; returns its size and sha256. A read error is `action` on `path`.
fn hash_through(
    mut input: File,
    path: &Path,
    action: &'static str,
    mut sink: impl FnMut(&[u8]) -> Result<(), BackupError>,
) -> Result<(u64, String), BackupError> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BackupError::io(action, path, e)),
        };
        hasher.update(&buf[..n]);
        sink(&buf[..n])?;
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackupMeta;

    fn backup(dir: &Path) -> BackupRecord {
        let files = tempfile::tempdir().unwrap();
        fs::write(files.path().join("rows"), b"good rows\n".repeat(10_000)).unwrap();
        let meta = BackupMeta {
            app: "shop".into(),
            volume: "shop_db".into(),
            revision: None,
            reason: "manual".into(),
            created_at: 1_700_000_000_000,
            dump: None,
        };
        crate::backup_dir(files.path(), dir, meta).unwrap()
    }

    #[test]
    fn a_copy_verifies_and_comes_back() {
        let (here, there, back) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let record = backup(here.path());
        let (copy, done) = copy_backup(&record, &there.path().join("nas")).unwrap();
        assert_eq!(done.bytes, record.manifest.archive_size);
        assert!(!done.already);
        crate::verify(&copy).unwrap();
        assert_eq!(
            crate::list(&there.path().join("nas")).unwrap(),
            vec![copy.clone()]
        );
        // Again: kept as it is.
        let (_, again) = copy_backup(&record, &there.path().join("nas")).unwrap();
        assert!(again.already);
        // And back, the local copy gone.
        crate::remove(here.path(), &record.id).unwrap();
        let (restored, _) = copy_backup(&copy, back.path()).unwrap();
        crate::verify(&restored).unwrap();
        assert_eq!(restored.manifest, record.manifest);
    }

    #[test]
    fn a_damaged_backup_is_not_copied() {
        let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let record = backup(here.path());
        let mut bytes = fs::read(&record.archive).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&record.archive, bytes).unwrap();
        let e = copy_backup(&record, there.path()).unwrap_err();
        assert!(matches!(e, BackupError::ArchiveChecksum { .. }), "{e}");
        assert_eq!(
            fs::read_dir(there.path()).unwrap().count(),
            0,
            "nothing left"
        );
    }
}
