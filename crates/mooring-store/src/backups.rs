//! The backups catalogue: a mirror of the backup manifests in the data directory's
//! backups folder, so the API can list an app's backups without reading every manifest.
//!
//! The manifests on disk stay the truth (a backup exists exactly when its manifest
//! does); [`Store::mirror_backups`] makes the store's rows for one app equal to what the
//! folder holds, and the daemon calls it after each operation that took a backup and
//! whenever the catalogue is asked for.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// One backup, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackupRow {
    /// `<app>-<volume>-<yyyymmddThhmmss>-<hex>`.
    pub id: String,
    pub app: String,
    pub volume: String,
    /// Unix ms.
    pub created_at: i64,
    /// The revision deployed when it was taken, if known.
    pub revision: Option<String>,
    /// Why it was taken.
    pub reason: String,
    /// Regular files and their content bytes.
    pub files: i64,
    pub bytes: i64,
    /// The compressed archive's size and sha256.
    pub archive_size: i64,
    pub archive_sha256: String,
    /// A database dump: the service it was taken in (its `files` are the dump's parts,
    /// `bytes` its length); `None` for a copy of the volume's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
}

impl Store {
    /// Makes the catalogue of `app` equal to `rows` (what its backups folder holds):
    /// adds or updates those rows and removes the app's others, in one transaction.
    pub fn mirror_backups(&self, app: &str, rows: &[BackupRow]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction()
            .map_err(self.err("starting to mirror backups"))?;
        tx.execute("DELETE FROM backups WHERE app = ?1", params![app])
            .map_err(self.err("mirroring backups"))?;
        for r in rows.iter().filter(|r| r.app == app) {
            tx.execute(
                "INSERT INTO backups (id, app, volume, created_at, revision, reason, files, bytes, archive_size, archive_sha256, dump)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    r.id,
                    r.app,
                    r.volume,
                    r.created_at,
                    r.revision,
                    r.reason,
                    r.files,
                    r.bytes,
                    r.archive_size,
                    r.archive_sha256,
                    r.dump
                ],
            )
            .map_err(self.err("mirroring backups"))?;
        }
        tx.commit().map_err(self.err("mirroring backups"))
    }

    /// The catalogued backups of `app`, newest first.
    pub fn backups(&self, app: &str) -> Result<Vec<BackupRow>, StoreError> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare(
                "SELECT id, app, volume, created_at, revision, reason, files, bytes, archive_size, archive_sha256, dump
                 FROM backups WHERE app = ?1 ORDER BY created_at DESC, id DESC",
            )
            .map_err(self.err("listing backups"))?;
        let rows = stmt
            .query_map(params![app], |r| {
                Ok(BackupRow {
                    id: r.get(0)?,
                    app: r.get(1)?,
                    volume: r.get(2)?,
                    created_at: r.get(3)?,
                    revision: r.get(4)?,
                    reason: r.get(5)?,
                    files: r.get(6)?,
                    bytes: r.get(7)?,
                    archive_size: r.get(8)?,
                    archive_sha256: r.get(9)?,
                    dump: r.get(10)?,
                })
            })
            .map_err(self.err("listing backups"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("listing backups"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, app: &str, at: i64) -> BackupRow {
        BackupRow {
            id: id.into(),
            app: app.into(),
            volume: "v".into(),
            created_at: at,
            revision: None,
            reason: "manual".into(),
            files: 1,
            bytes: 2,
            archive_size: 3,
            archive_sha256: "ab".into(),
            dump: (id == "d").then(|| "db".into()),
        }
    }

    #[test]
    fn the_catalogue_mirrors_what_the_folder_holds_per_app() {
        let store = Store::open_in_memory().unwrap();
        store
            .mirror_backups("a", &[row("a1", "a", 1), row("a2", "a", 2)])
            .unwrap();
        store.mirror_backups("b", &[row("b1", "b", 5)]).unwrap();
        let ids = |app| -> Vec<String> {
            store
                .backups(app)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids("a"), ["a2", "a1"]);
        // a1 was pruned from the folder, a3 appeared.
        store
            .mirror_backups("a", &[row("a2", "a", 2), row("a3", "a", 3)])
            .unwrap();
        assert_eq!(ids("a"), ["a3", "a2"]);
        assert_eq!(ids("b"), ["b1"], "other apps untouched");
        // A dump keeps its service.
        store
            .mirror_backups("c", &[row("d", "c", 1), row("f", "c", 2)])
            .unwrap();
        let rows = store.backups("c").unwrap();
        assert_eq!(rows[0].dump, None);
        assert_eq!(rows[1].dump.as_deref(), Some("db"));
    }
}
