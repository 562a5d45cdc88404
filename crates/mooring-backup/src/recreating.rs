//! Recreations under way: a volume recreated with another definition (`--recreate-volume`)
//! is backed up, removed, created again and restored. A process killed between the
//! removal and the end of the restore would leave the volume gone or empty, and the next
//! sync — which sees a volume missing or already as declared — would not know to bring
//! the data back. So once the backup is verified, and before the volume is removed, a
//! marker `recreating/<app>/<volume>` in the backups folder names that backup; it is
//! removed when the restore is done. The next sync of the app finds it and finishes the
//! job: creates the volume if it is missing and restores that backup into it. While a
//! marker names a backup, retention never removes it ([`held`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::check_id;
use crate::write::sync_dir;
use crate::BackupError;

/// The marker's file: `recreating/<app>/<volume>`, any byte outside Docker's name
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
    dir.join("recreating").join(clean(app)).join(clean(volume))
}

/// Records that `volume` of `app` is being recreated from backup `id`: written and
/// flushed (with its folder) before this returns.
pub fn mark_recreating(dir: &Path, app: &str, volume: &str, id: &str) -> Result<(), BackupError> {
    check_id(id)?;
    let path = marker(dir, app, volume);
    let folder = path.parent().unwrap_or(dir);
    fs::create_dir_all(folder).map_err(|e| BackupError::io("create", folder, e))?;
    let partial = folder.join(format!(
        "{}{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        crate::manifest::PARTIAL_SUFFIX
    ));
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

/// The backup `volume` of `app` is being recreated from, if a recreation was cut
/// short; an error when that backup is no longer in the folder (nothing to restore
/// from: the volume must not be taken for restored).
pub fn recreating(dir: &Path, app: &str, volume: &str) -> Result<Option<String>, BackupError> {
    let path = marker(dir, app, volume);
    let Ok(id) = fs::read_to_string(&path) else {
        return Ok(None);
    };
    let id = id.trim().to_string();
    check_id(&id)?;
    if !crate::manifest::manifest_path(dir, &id).exists() {
        return Err(BackupError::Recreation {
            volume: volume.to_string(),
            id,
            marker: path,
        });
    }
    Ok(Some(id))
}

/// The recreations of `app` under way, by volume, among `volumes`.
pub fn recreations<'a>(
    dir: &Path,
    app: &str,
    volumes: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, String>, BackupError> {
    let mut out = BTreeMap::new();
    for v in volumes {
        if let Some(id) = recreating(dir, app, v)? {
            out.insert(v.to_string(), id);
        }
    }
    Ok(out)
}

/// The backups some recreation under way will restore: retention keeps them.
pub(crate) fn held(dir: &Path) -> BTreeSet<String> {
    let apps = fs::read_dir(dir.join("recreating"))
        .into_iter()
        .flatten()
        .flatten();
    apps.flat_map(|app| fs::read_dir(app.path()).into_iter().flatten().flatten())
        .filter_map(|m| fs::read_to_string(m.path()).ok())
        .map(|id| id.trim().to_string())
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
        assert_eq!(recreating(dir.path(), "shop", "shop_db").unwrap(), None);
        mark_recreating(dir.path(), "shop", "shop_db", id).unwrap();
        assert_eq!(held(dir.path()), BTreeSet::from([id.to_string()]));
        // The backup is not there: an error, never "restored".
        let e = recreating(dir.path(), "shop", "shop_db").unwrap_err();
        assert!(e.to_string().contains("is gone"), "{e}");
        fs::write(crate::manifest::manifest_path(dir.path(), id), "{}").unwrap();
        assert_eq!(
            recreating(dir.path(), "shop", "shop_db")
                .unwrap()
                .as_deref(),
            Some(id)
        );
        assert_eq!(recreating(dir.path(), "other", "shop_db").unwrap(), None);
        assert_eq!(
            recreations(dir.path(), "shop", ["shop_db", "shop_web"]).unwrap(),
            BTreeMap::from([("shop_db".to_string(), id.to_string())])
        );
        // One app's `a.b` and another's `a`: apart.
        assert_eq!(recreating(dir.path(), "shop.shop_db", "x").unwrap(), None);
        done_recreating(dir.path(), "shop", "shop_db").unwrap();
        assert_eq!(recreating(dir.path(), "shop", "shop_db").unwrap(), None);
        assert!(held(dir.path()).is_empty());
        done_recreating(dir.path(), "shop", "shop_db").unwrap();
        assert!(mark_recreating(dir.path(), "shop", "shop_db", "../x").is_err());
    }
}
