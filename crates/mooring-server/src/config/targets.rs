//! `backup_targets`: where backups are copied off the host — a folder (a mounted share,
//! another disk) or a folder on an SFTP server (`sftp: user@host:/path`, `port`,
//! `ssh_key`, `known_hosts`) — each with its own retention; an app names its targets in
//! `data.copy_to`.

use mooring_backup::{HostKeys, Identity, Sftp, Target};
use mooring_compose::decode::{check_keys, err, string, unsigned};
use mooring_compose::yaml::{Node, Value};
use mooring_compose::LoadError;
use std::collections::BTreeMap;
use std::path::Path;

/// One `backup_targets` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupTarget {
    /// `folder` (absolute; a relative path is resolved against the configuration's
    /// folder) or `sftp`. It gets the backups folder's own layout.
    pub target: Target,
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
        check_keys(
            v,
            &what,
            &[
                "folder",
                "sftp",
                "port",
                "ssh_key",
                "known_hosts",
                "retention",
            ],
        )?;
        let target = match (v.get("folder"), v.get("sftp")) {
            (Some(f), None) => {
                for key in ["port", "ssh_key", "known_hosts"] {
                    if let Some(k) = v.get(key) {
                        return Err(err(k, format!("{what}.{key}: only an sftp target has it")));
                    }
                }
                Target::Folder(base.join(string(f, &format!("{what}.folder"))?))
            }
            (None, Some(s)) => Target::Sftp(sftp(v, s, &what, base)?),
            (Some(_), Some(_)) => {
                return Err(err(
                    v,
                    format!("{what}: either `folder` or `sftp`, not both"),
                ))
            }
            (None, None) => {
                return Err(err(v, format!("{what}: `folder` or `sftp` is missing: the folder backups are copied into (a mounted share, another disk), or user@host:/path on an SFTP server")));
            }
        };
        let retention = match v.get("retention") {
            Some(r) => mooring_compose::decode::retention(r, &format!("{what}.retention"))?,
            None => mooring_core::Retention::default(),
        };
        out.insert(name, BackupTarget { target, retention });
    }
    Ok(out)
}

/// `sftp: user@host:/path`, with `port`, `ssh_key` (`file:PATH`, `env:NAME` or inline) and `known_hosts`
/// (`file:PATH` or `accept-new`; ssh's own files when not given).
fn sftp(v: &Node, s: &Node, what: &str, base: &Path) -> Result<Sftp, LoadError> {
    let text = string(s, &format!("{what}.sftp"))?;
    let Some((destination, folder)) = text.split_once(':') else {
        return Err(err(
            s,
            format!("{what}.sftp: {text:?} is not user@host:/path"),
        ));
    };
    let host_ok = !destination.is_empty()
        && !destination.starts_with('-')
        && destination
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c));
    if !host_ok {
        return Err(err(
            s,
            format!("{what}.sftp: {destination:?} is not user@host"),
        ));
    }
    mooring_backup::check_remote_folder(folder).map_err(|e| err(s, format!("{what}.sftp: {e}")))?;
    let port = match v.get("port") {
        None => None,
        Some(p) => Some(
            u16::try_from(unsigned(p, &format!("{what}.port"))?)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| err(p, format!("{what}.port: a port is 1 to 65535")))?,
        ),
    };
    let identity = match v.get("ssh_key") {
        None => None,
        Some(k) => match super::source::ssh_key(k, &format!("{what}.ssh_key"), base)? {
            mooring_vcs::SshKey::File(path) => Some(Identity::File(path)),
            mooring_vcs::SshKey::Value(key) => Some(Identity::Key(key)),
        },
    };
    let host_keys = match v.get("known_hosts") {
        None => HostKeys::Default,
        Some(k) => match super::source::known_hosts(k, &format!("{what}.known_hosts"), base)? {
            mooring_vcs::KnownHosts::File(path) => HostKeys::File(path),
            mooring_vcs::KnownHosts::AcceptNew => HostKeys::AcceptNew,
        },
    };
    Ok(Sftp {
        destination: destination.to_string(),
        port,
        folder: folder.to_string(),
        identity,
        host_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse_err, parse_ok};
    use mooring_backup::{HostKeys, Sftp, Target};

    #[test]
    fn backup_targets_are_folders_an_app_copies_to() {
        let c = parse_ok(
            "backup_targets:\n  nas: { folder: /mnt/nas, retention: { keep: 7 } }\n  disk: { folder: ./copies }\napps:\n  - name: a\n    source: { dir: x }\n    data: { copy_to: [nas, disk] }\n",
        );
        assert_eq!(
            c.backup_targets["nas"].target,
            Target::Folder("/mnt/nas".into())
        );
        assert_eq!(c.backup_targets["nas"].retention.keep, Some(7));
        assert_eq!(
            c.backup_targets["disk"].target,
            Target::Folder("/tmp/copies".into())
        );
        assert_eq!(c.apps[0].copy_to, ["nas", "disk"]);
        let c = parse_ok(
            "backup_targets:\n  off: { sftp: \"backup@10.0.0.9:/srv/mooring\", port: 2222, known_hosts: accept-new }\n",
        );
        assert_eq!(
            c.backup_targets["off"].target,
            Target::Sftp(Sftp {
                destination: "backup@10.0.0.9".into(),
                port: Some(2222),
                folder: "/srv/mooring".into(),
                identity: None,
                host_keys: HostKeys::AcceptNew,
            })
        );
        for (text, expected) in [
            ("backup_targets:\n  nas: {}\n", "mooring.yaml:2:8: backup_targets.nas: `folder` or `sftp` is missing"),
            ("backup_targets:\n  nas: { folder: /x, sftp: \"h:/x\" }\n", "either `folder` or `sftp`, not both"),
            ("backup_targets:\n  nas: { folder: /x, port: 22 }\n", "backup_targets.nas.port: only an sftp target has it"),
            ("backup_targets:\n  off: { sftp: host }\n", "is not user@host:/path"),
            ("backup_targets:\n  off: { sftp: \"-oProxyCommand=x:/b\" }\n", "is not user@host"),
            ("backup_targets:\n  off: { sftp: \"u@h:/my backups\" }\n", "a folder on the server uses letters"),
            ("backup_targets:\n  off: { sftp: \"u@h:/b\", port: 70000 }\n", "a port is 1 to 65535"),
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
