//! Recreations under way: a volume recreated with another definition (`--recreate-volume`)
//! is backed up, removed, created again and restored. A process killed between the
//! removal and the end of the restore would leave the volume gone or empty, and the next
//! sync — which sees a volume missing or already as declared — would not know to bring
//! the data back. So once the backup is verified, and before the volume is removed, a
//! marker `recreating/<app>.<volume>` in the backups folder names that backup; it is
//! removed when the restore is done. The next sync of the app finds it and finishes the
//! job: creates the volume if it is missing and restores that backup into it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::check_id;
use crate::write::sync_dir;
use crate::BackupError;

/// The marker's file: `recreating/<app>.<volume>`, any byte outside Docker's name
/// alphabet (`[a-zA-Z0-9_.-]`, and `@` of an app on several hosts) as `_`.
fn marker(dir: &Path, app: &str, volume: &str) -> PathBuf {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    dir.join("recreating")
        .join(format!("{}.{}", clean(app), clean(volume)))
}

/// Records that `volume` of `app` is being recreated from backup `id`: written and
/// flushed (with its folder) before this returns.
pub fn mark_recreating(dir: &Path, app: &str, volume: &str, id: &str) -> Result<(), BackupError> {
    check_id(id)?;
    let path = marker(dir, app, volume);
    let folder = path.parent().unwrap_or(dir);
    fs::create_dir_all(folder).map_err(|e| BackupError::io("create", folder, e))?;
    let partial = path.with_extension("partial");
    let written = (|| {
        use std::io::Write;
        let mut f = fs::File::create(&partial)?;
        f.write_all(id.as_bytes())?;
        f.sync_all()?;
        fs::rename(&partial, &path)
    })();
    written.map_err(|e| BackupError::io("write", &path, e))?;
    sync_dir(folder)
}

/// The backup `volume` of `app` is being recreated from, if a recreation was cut short
/// (`None` too when that backup is no longer in the folder: nothing to restore).
pub fn recreating(dir: &Path, app: &str, volume: &str) -> Option<String> {
    let id = fs::read_to_string(marker(dir, app, volume)).ok()?;
    let id = id.trim();
    (check_id(id).is_ok() && crate::manifest::manifest_path(dir, id).exists())
        .then(|| id.to_string())
}

/// The recreations of `app` under way, by volume, among `volumes`.
pub fn recreations<'a>(
    dir: &Path,
    app: &str,
    volumes: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, String> {
    volumes
        .into_iter()
        .filter_map(|v| recreating(dir, app, v).map(|id| (v.to_string(), id)))
        .collect()
}

/// The recreation of `volume` of `app` is done: its marker goes.
pub fn done_recreating(dir: &Path, app: &str, volume: &str) -> Result<(), BackupError> {
    let path = marker(dir, app, volume);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::io("remove", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recreation_is_remembered_until_done() {
        let dir = tempfile::tempdir().unwrap();
        let id = "shop-shop_db-20260101T000000-abcdef";
        assert_eq!(recreating(dir.path(), "shop", "shop_db"), None);
        mark_recreating(dir.path(), "shop", "shop_db", id).unwrap();
        // The backup is not there: nothing to restore from.
        assert_eq!(recreating(dir.path(), "shop", "shop_db"), None);
        fs::write(crate::manifest::manifest_path(dir.path(), id), "{}").unwrap();
        assert_eq!(
            recreating(dir.path(), "shop", "shop_db").as_deref(),
            Some(id)
        );
        assert_eq!(recreating(dir.path(), "other", "shop_db"), None);
        assert_eq!(
            recreations(dir.path(), "shop", ["shop_db", "shop_web"]),
            BTreeMap::from([("shop_db".to_string(), id.to_string())])
        );
        done_recreating(dir.path(), "shop", "shop_db").unwrap();
        assert_eq!(recreating(dir.path(), "shop", "shop_db"), None);
        done_recreating(dir.path(), "shop", "shop_db").unwrap();
        assert!(mark_recreating(dir.path(), "shop", "shop_db", "../x").is_err());
    }
}
