//! The backups in a folder: listing, loading, cleaning after crashes, pruning.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::Path;

use crate::manifest::{
    archive_path, check_id, manifest_path, read_manifest, ARCHIVE_SUFFIX, MANIFEST_SUFFIX,
    PARTIAL_SUFFIX,
};
use crate::write::sync_dir;
use crate::{BackupError, BackupRecord};

/// Every complete backup in `dir` — those whose manifest exists — newest first (by
/// `created_at`, then id).
///
/// Files still being written, or left by a crash (`*.partial`, an archive without a
/// manifest), are not backups and are ignored; [`clean_partials`] removes them. A manifest
/// that cannot be read fails the whole listing ([`BackupError::Manifest`] names it):
/// a damaged backup is never silently skipped. A missing `dir` lists nothing.
pub fn list(dir: &Path) -> Result<Vec<BackupRecord>, BackupError> {
    let mut records = Vec::new();
    for name in file_names(dir)? {
        let Some(id) = name.strip_suffix(MANIFEST_SUFFIX) else {
            continue;
        };
        if check_id(id).is_err() {
            continue; // Not a name this engine writes.
        }
        let manifest = read_manifest(&manifest_path(dir, id))?;
        records.push(BackupRecord::new(dir, id, manifest));
    }
    records.sort_by(|a, b| {
        (b.manifest.meta.created_at, &b.id).cmp(&(a.manifest.meta.created_at, &a.id))
    });
    Ok(records)
}

/// The ids of the complete backups in `dir` (those whose manifest exists), without
/// reading a manifest: what a folder holds, cheaply.
pub fn ids(dir: &Path) -> Result<HashSet<String>, BackupError> {
    Ok(file_names(dir)?
        .into_iter()
        .filter_map(|name| name.strip_suffix(MANIFEST_SUFFIX).map(str::to_string))
        .filter(|id| check_id(id).is_ok())
        .collect())
}

/// The backup `id` in `dir` ([`BackupError::NotFound`] when it has no manifest).
pub fn load(dir: &Path, id: &str) -> Result<BackupRecord, BackupError> {
    check_id(id)?;
    let path = manifest_path(dir, id);
    match read_manifest(&path) {
        Ok(manifest) => Ok(BackupRecord::new(dir, id, manifest)),
        Err(BackupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Err(BackupError::NotFound {
                dir: dir.to_owned(),
                id: id.to_owned(),
            })
        }
        Err(e) => Err(e),
    }
}

/// Removes what interrupted backups and removals left in `dir`: `*.partial` files, and
/// archives whose manifest does not exist. Returns how many files were removed.
///
/// Run it when no backup is being written to `dir` (at start-up): a backup in progress
/// is made of exactly such files.
pub fn clean_partials(dir: &Path) -> Result<usize, BackupError> {
    let names = file_names(dir)?;
    let present: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut removed = 0;
    for name in &names {
        let leftover = name.ends_with(PARTIAL_SUFFIX)
            || name
                .strip_suffix(ARCHIVE_SUFFIX)
                .is_some_and(|id| !present.contains(format!("{id}{MANIFEST_SUFFIX}").as_str()));
        if leftover {
            let path = dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(BackupError::io("remove", path, e)),
            }
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Removes old backups; returns the removed ids, newest first.
///
/// For each app and volume, backups beyond the newest `keep` are removed, and so are
/// those created before `now - older_than_ms` (both rules apply when both are given;
/// neither removes anything when `None`). Note that the age rule can remove the last
/// backup of a volume. A backup is removed manifest first, so an interruption leaves at
/// most an archive that [`clean_partials`] removes.
pub fn prune(
    dir: &Path,
    keep: Option<usize>,
    older_than_ms: Option<i64>,
    now: i64,
) -> Result<Vec<String>, BackupError> {
    let cutoff = older_than_ms.map(|age| now.saturating_sub(age));
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut removed = Vec::new();
    let held = crate::recreating::held(dir);
    for record in list(dir)? {
        let meta = &record.manifest.meta;
        let rank = seen
            .entry((meta.app.clone(), meta.volume.clone()))
            .or_insert(0);
        let beyond_keep = keep.is_some_and(|k| *rank >= k);
        let too_old = cutoff.is_some_and(|c| meta.created_at < c);
        *rank += 1;
        if (beyond_keep || too_old) && !held.contains(&record.id) {
            remove(dir, &record.id)?;
            removed.push(record.id);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Applies a retention to the backups of one app's volume, never removing `except`
/// (the backup just taken); returns the removed ids, newest first.
///
/// Beyond the newest `keep` (counting `except`) and those created before
/// `now - older_than_ms` are removed, as [`prune`] does for every volume.
pub fn prune_volume(
    dir: &Path,
    app: &str,
    volume: &str,
    keep: Option<usize>,
    older_than_ms: Option<i64>,
    now: i64,
    except: &str,
) -> Result<Vec<String>, BackupError> {
    let cutoff = older_than_ms.map(|age| now.saturating_sub(age));
    let mut removed = Vec::new();
    let held = crate::recreating::held(dir);
    let mine = list(dir)?
        .into_iter()
        .filter(|r| r.manifest.meta.app == app && r.manifest.meta.volume == volume);
    for (rank, record) in mine.enumerate() {
        let beyond_keep = keep.is_some_and(|k| rank >= k);
        let too_old = cutoff.is_some_and(|c| record.manifest.meta.created_at < c);
        if record.id != except && !held.contains(&record.id) && (beyond_keep || too_old) {
            remove(dir, &record.id)?;
            removed.push(record.id);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Removes backup `id` from `dir`: the manifest (it is no longer listed), then the
/// archive. Removing a backup that does not exist is not an error.
pub fn remove(dir: &Path, id: &str) -> Result<(), BackupError> {
    check_id(id)?;
    for path in [manifest_path(dir, id), archive_path(dir, id)] {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io("remove", path, e)),
        }
    }
    Ok(())
}

/// The UTF-8 names of the plain files in `dir` (none when it does not exist).
fn file_names(dir: &Path) -> Result<Vec<String>, BackupError> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| BackupError::io("list", dir, e))?;
        let is_file = entry
            .file_type()
            .map_err(|e| BackupError::io("list", dir, e))?
            .is_file();
        if let (true, Ok(name)) = (is_file, entry.file_name().into_string()) {
            names.push(name);
        }
    }
    Ok(names)
}
