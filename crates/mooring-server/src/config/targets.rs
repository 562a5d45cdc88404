//! `backup_targets`: where backups are copied off the host (a folder on a mounted share
//! or another disk), each with its own retention; an app names its targets in
//! `data.copy_to`.

use mooring_compose::decode::{check_keys, err, string};
use mooring_compose::yaml::{Node, Value};
use mooring_compose::LoadError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `backup_targets` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupTarget {
    /// `folder`: absolute (a relative path is resolved against the configuration's
    /// folder). It gets the backups folder's own layout.
    pub folder: PathBuf,
    /// `retention: { keep: N, older_than: 30d }` on this target, per app and volume,
    /// applied after each copy.
    pub retention: mooring_core::Retention,
}

/// `backup_targets: { NAME: { folder: PATH, retention: {…} } }`.
pub(super) fn backup_targets(
    doc: &Node,
    base: &Path,
) -> Result<BTreeMap<String, BackupTarget>, LoadError> {
    let mut out = BTreeMap::new();
    let Some(n) = doc.get("backup_targets") else {
        return Ok(out);
    };
    let Value::Map(entries) = &n.value else {
        return Err(err(
            n,
            "backup_targets must map names to { folder: PATH } (a mounted share, another disk)",
        ));
    };
    for (k, v) in entries {
        let name = string(k, "backup_targets")?;
        let what = format!("backup_targets.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        {
            return Err(err(
                k,
                format!("{what}: a target's name uses letters, digits, '-' and '_'"),
            ));
        }
        check_keys(v, &what, &["folder", "retention"])?;
        let Some(f) = v.get("folder") else {
            return Err(err(v, format!("{what}: `folder` is missing: the folder backups are copied into (a mounted share, another disk)")));
        };
        let folder = base.join(string(f, &format!("{what}.folder"))?);
        let retention = match v.get("retention") {
            Some(r) => mooring_compose::decode::retention(r, &format!("{what}.retention"))?,
            None => mooring_core::Retention::default(),
        };
        out.insert(name, BackupTarget { folder, retention });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse_err, parse_ok};

    #[test]
    fn backup_targets_are_folders_an_app_copies_to() {
        let c = parse_ok(
            "backup_targets:\n  nas: { folder: /mnt/nas, retention: { keep: 7 } }\n  disk: { folder: ./copies }\napps:\n  - name: a\n    source: { dir: x }\n    data: { copy_to: [nas, disk] }\n",
        );
        assert_eq!(
            c.backup_targets["nas"].folder,
            std::path::Path::new("/mnt/nas")
        );
        assert_eq!(c.backup_targets["nas"].retention.keep, Some(7));
        assert_eq!(
            c.backup_targets["disk"].folder,
            std::path::Path::new("/tmp/copies")
        );
        assert_eq!(c.apps[0].copy_to, ["nas", "disk"]);
        for (text, expected) in [
            ("backup_targets:\n  nas: {}\n", "mooring.yaml:2:8: backup_targets.nas: `folder` is missing"),
            ("backup_targets:\n  nas: { folder: /x, sftp: h }\n", "key `sftp` is not supported"),
            ("backup_targets:\n  \"a b\": { folder: /x }\n", "backup_targets.a b: a target's name"),
            ("backup_targets: [a]\n", "backup_targets must map names"),
            (
                "backup_targets:\n  nas: { folder: /x }\napps:\n  - name: a\n    source: { dir: x }\n    data: { copy_to: [usb] }\n",
                "mooring.yaml:6:22: apps.a.data.copy_to: usb is not one of backup_targets (nas)",
            ),
        ] {
            let e = parse_err(text);
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
