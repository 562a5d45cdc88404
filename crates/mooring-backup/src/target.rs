//! Where backups are copied off the host — a folder (a mounted share, another disk) or
//! an SFTP server — with one vocabulary for both: the ids a target holds, a backup put
//! there (read back from the target before it exists), brought back, removed, and the
//! ids a retention removes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::manifest::utc_stamp;
use crate::sftp::Sftp;
use crate::{copy_backup, BackupError, BackupRecord, Copied};

/// A backup target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A folder, given the backups folder's own layout.
    Folder(PathBuf),
    /// A folder on an SFTP server, the same layout.
    Sftp(Sftp),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Folder(path) => write!(f, "folder {}", path.display()),
            Target::Sftp(s) => write!(f, "{s}"),
        }
    }
}

impl Target {
    /// The folder there that holds `app`'s backups (`<folder>/<app>`): each app's own,
    /// so a listing, a retention or a restore never meets another app's backups.
    fn of_app(&self, app: &str) -> Result<Target, BackupError> {
        crate::manifest::check_name(app)?;
        match self {
            Target::Folder(root) => {
                // A share that is not mounted leaves an empty folder (or none) in its
                // place: copying into it would fill the local disk and prove nothing.
                if !root.is_dir() {
                    return Err(BackupError::Target {
                        target: self.to_string(),
                        why: "the folder does not exist (is the share mounted?)".into(),
                    });
                }
                Ok(Target::Folder(root.join(app)))
            }
            Target::Sftp(s) => Ok(Target::Sftp(Sftp {
                folder: format!("{}/{app}", s.folder.trim_end_matches('/')),
                ..s.clone()
            })),
        }
    }

    /// The ids of `app`'s complete backups there (their manifests exist).
    pub fn ids(&self, app: &str) -> Result<HashSet<String>, BackupError> {
        match self.of_app(app)? {
            Target::Folder(path) => crate::ids(&path),
            Target::Sftp(s) => s.ids(),
        }
    }

    /// Puts `record` there, read back from the target before it gets its name; `scratch`
    /// is a local folder for what is read back.
    pub fn put(&self, record: &BackupRecord, scratch: &Path) -> Result<Copied, BackupError> {
        match self.of_app(&record.manifest.meta.app)? {
            Target::Folder(path) => copy_backup(record, &path).map(|(_, copied)| copied),
            Target::Sftp(s) => s.put(record, scratch),
        }
    }

    /// Brings `app`'s backup `id` back into folder `into` (checked there as every copy
    /// is); `None` when the target does not have it.
    pub fn fetch(
        &self,
        app: &str,
        id: &str,
        into: &Path,
    ) -> Result<Option<BackupRecord>, BackupError> {
        match self.of_app(app)? {
            Target::Folder(path) => match crate::load(&path, id) {
                Ok(copy) => copy_backup(&copy, into).map(|(record, _)| Some(record)),
                Err(BackupError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            Target::Sftp(s) => s.fetch(id, into),
        }
    }

    /// Removes `app`'s backup `id` there, its manifest first.
    pub fn remove(&self, app: &str, id: &str) -> Result<(), BackupError> {
        match self.of_app(app)? {
            Target::Folder(path) => crate::remove(&path, id),
            Target::Sftp(s) => s.remove(id),
        }
    }
}

/// The ids among `ids` of backups of `app`'s `volume` that a retention removes: beyond
/// the newest `keep`, or taken before `now - older_than_ms` — read from the ids
/// themselves (`<app>-<volume>-<yyyymmddThhmmss>-<6 hex>`), so no manifest is read.
/// A stamp has seconds; `created_at` (unix ms) orders backups of the same second where
/// it knows them (the local ones).
pub fn beyond_retention(
    ids: &HashSet<String>,
    (app, volume): (&str, &str),
    (keep, older_than_ms): (Option<usize>, Option<i64>),
    now: i64,
    created_at: &HashMap<String, i64>,
) -> Vec<String> {
    let prefix = format!("{app}-{volume}-");
    let mut mine: Vec<(&str, i64, &String)> = ids
        .iter()
        .filter_map(|id| {
            let rest = id.strip_prefix(&prefix)?;
            // The stamp and the suffix, nothing more: `shop-db-…` is not `shop`'s `db-x`.
            let (stamp, suffix) = rest.split_once('-')?;
            let ok = stamp.len() == 15
                && stamp.as_bytes()[8] == b'T'
                && suffix.len() == 6
                && suffix.bytes().all(|b| b.is_ascii_hexdigit());
            ok.then(|| (stamp, created_at.get(id).copied().unwrap_or(0), id))
        })
        .collect();
    // Newest first (a stamp sorts as its time).
    mine.sort_by(|a, b| b.cmp(a));
    let cutoff = older_than_ms.map(|age| utc_stamp(now.saturating_sub(age).max(0)));
    mine.into_iter()
        .enumerate()
        .filter(|(rank, (stamp, _, _))| {
            keep.is_some_and(|k| *rank >= k) || cutoff.as_deref().is_some_and(|c| *stamp < c)
        })
        .map(|(_, (_, _, id))| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retention_reads_the_ids() {
        let ids: HashSet<String> = [
            "shop-db-20261201T000000-aaaaaa",
            "shop-db-20261203T000000-bbbbbb",
            "shop-db-20261205T000000-cccccc",
            "shop-db-x-20261201T000000-dddddd",
            "shop-2-db-20261201T000000-eeeeee",
            "shop-web-20261201T000000-ffffff",
        ]
        .map(str::to_string)
        .into();
        let now = 1_764_892_800_000; // 2025-12-05, and the stamps are a year later
        let none = HashMap::new();
        let keep2 = beyond_retention(&ids, ("shop", "db"), (Some(2), None), now, &none);
        assert_eq!(keep2, ["shop-db-20261201T000000-aaaaaa"]);
        // 2026-12-05T00:00:00Z, three days: before 2026-12-02 goes.
        let dec5 = 1_796_428_800_000;
        let old = beyond_retention(
            &ids,
            ("shop", "db"),
            (None, Some(3 * 86_400_000)),
            dec5,
            &none,
        );
        assert_eq!(old, ["shop-db-20261201T000000-aaaaaa"]);
        assert!(beyond_retention(&ids, ("shop", "db"), (None, None), now, &none).is_empty());
        // Three in one second: their times order them, not their random suffixes.
        let same: HashSet<String> = [
            "shop-db-20261205T000000-ffffff",
            "shop-db-20261205T000000-000000",
            "shop-db-20261205T000000-888888",
        ]
        .map(str::to_string)
        .into();
        let times: HashMap<String, i64> = [
            ("shop-db-20261205T000000-ffffff", 1),
            ("shop-db-20261205T000000-000000", 3),
            ("shop-db-20261205T000000-888888", 2),
        ]
        .map(|(id, t)| (id.to_string(), t))
        .into();
        let beyond = beyond_retention(&same, ("shop", "db"), (Some(2), None), now, &times);
        assert_eq!(beyond, ["shop-db-20261205T000000-ffffff"]);
    }
}
