//! A folder on an SFTP server as a backup target, through OpenSSH's `sftp` in batch
//! mode: no shell needed on the server (it may allow SFTP alone), never a prompt
//! (`BatchMode`), host keys always checked.
//!
//! A copy is put as `<id>.tar.zst.partial` and `<id>.manifest.json.partial`, both with
//! `-f` (the server flushes them to its disk when it offers `fsync@openssh.com`, as
//! OpenSSH's does). The archive's size and sha256 are then computed on the server (`stat`
//! and `openssl dgst` or `sha256sum`, when the account can run commands) or read back
//! into a local scratch file (an SFTP-only account), the manifest is read back, and
//! only when all of it matches are both renamed into place, the manifest last: a copy
//! exists exactly when its manifest does, as in every backups folder. Paths are checked
//! so that a batch line or the command line on the server can never read them
//! otherwise: letters, digits and `_.-/@` on the server; no `"`, `\` or line break
//! locally. ssh gives up on a server that does not answer (30 s to connect, a minute of
//! silence).

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::manifest::{read_manifest, ARCHIVE_SUFFIX, MANIFEST_SUFFIX, PARTIAL_SUFFIX};
use crate::write::sync_dir;
use crate::{BackupError, BackupRecord, Copied};

/// How the server's host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeys {
    /// ssh's own default: the user's `known_hosts` files; an unknown host is refused.
    Default,
    /// This file alone, strictly.
    File(PathBuf),
    /// A host seen for the first time is trusted and remembered (`accept-new`).
    AcceptNew,
}

/// A folder on an SFTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sftp {
    /// `user@host` (or `host`).
    pub destination: String,
    pub port: Option<u16>,
    /// The folder on the server (absolute, or relative to the user's home).
    pub folder: String,
    /// The private key file (`None`: ssh's defaults).
    pub identity: Option<PathBuf>,
    pub host_keys: HostKeys,
}

impl std::fmt::Display for Sftp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "sftp://{}:{p}/{}", self.destination, self.folder),
            None => write!(f, "sftp://{}/{}", self.destination, self.folder),
        }
    }
}

/// Why `folder` cannot be an SFTP target's folder, if it cannot.
pub fn check_remote_folder(folder: &str) -> Result<(), String> {
    if folder.is_empty()
        || folder.starts_with('-')
        || !folder
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/@".contains(c))
        || folder.split('/').any(|part| part == "..")
    {
        return Err(format!(
            "{folder:?}: a folder on the server uses letters, digits and `_.-/@` (no `..`, not starting with `-`)"
        ));
    }
    Ok(())
}

impl Sftp {
    /// `sftp` with the options every call uses, reading its batch from its input.
    fn command(&self) -> Command {
        let mut c = Command::new("sftp");
        c.args(["-b", "-"]);
        if let Some(p) = self.port {
            c.arg("-P").arg(p.to_string());
        }
        self.ssh_options(&mut c);
        c
    }

    /// `ssh` with the same options, running `remote` (a command line of checked words)
    /// on the server.
    fn ssh(&self, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        if let Some(p) = self.port {
            c.arg("-p").arg(p.to_string());
        }
        self.ssh_options(&mut c);
        c.arg(remote);
        c
    }

    /// The options of both, then `-- DESTINATION`.
    fn ssh_options(&self, c: &mut Command) {
        // Not `-q`: it silences ssh's own errors too ("Host key verification failed").
        c.args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]);
        c.args(["-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15"]);
        c.args(["-o", "ServerAliveCountMax=4"]);
        if let Some(key) = &self.identity {
            c.arg("-i").arg(key).args(["-o", "IdentitiesOnly=yes"]);
        }
        match &self.host_keys {
            HostKeys::Default => {}
            HostKeys::File(path) => {
                let mut option = std::ffi::OsString::from("UserKnownHostsFile=");
                option.push(path);
                c.arg("-o").arg(option).args([
                    "-o",
                    "GlobalKnownHostsFile=/dev/null",
                    "-o",
                    "StrictHostKeyChecking=yes",
                ]);
            }
            HostKeys::AcceptNew => {
                c.args(["-o", "StrictHostKeyChecking=accept-new"]);
            }
        }
        c.arg("--").arg(&self.destination);
    }

    /// The size and sha256 of `remote` computed on the server (`stat`, and `openssl
    /// dgst` or `sha256sum`, through the account's shell — `remote` is a checked path, one word to any
    /// shell); `None` when the account has no such shell or tools (an SFTP-only
    /// account), and the copy is read back instead.
    fn hash_there(&self, remote: &str) -> Result<Option<(u64, String)>, BackupError> {
        let out = self
            // OpenSSL's sha256 uses the CPU's SHA instructions (4x coreutils' here).
            .ssh(&format!(
                "stat -c %s {remote} && (openssl dgst -sha256 -r {remote} 2>/dev/null || sha256sum {remote})"
            ))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.failed(format!("cannot run ssh: {e}")))?;
        match out.status.code() {
            // ssh's own failure (connection, host key): the target's problem.
            Some(255) | None => return Err(self.failed(last_lines(&out.stderr))),
            Some(0) => {}
            Some(_) => return Ok(None),
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let size = lines.next().and_then(|l| l.trim().parse::<u64>().ok());
        let sha = lines
            .next()
            .and_then(|l| l.split_whitespace().next())
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        Ok(size.zip(sha.map(str::to_ascii_lowercase)))
    }

    /// Runs `batch` (one command per line; a line starting with `-` may fail, one with
    /// `@` is not echoed); returns what it printed.
    fn run(&self, batch: &str) -> Result<Vec<u8>, BackupError> {
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.failed(format!("cannot run sftp: {e}")))?;
        if let Some(mut input) = child.stdin.take() {
            // A failure to write shows as sftp's own error below.
            let _ = input.write_all(batch.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| self.failed(format!("sftp: {e}")))?;
        if !out.status.success() {
            return Err(self.failed(last_lines(&out.stderr)));
        }
        Ok(out.stdout)
    }

    fn failed(&self, why: String) -> BackupError {
        BackupError::Target {
            target: self.to_string(),
            why,
        }
    }

    /// `<folder>/<name>`, checked.
    fn remote(&self, name: &str) -> Result<String, BackupError> {
        check_remote_folder(&self.folder).map_err(|e| self.failed(e))?;
        Ok(format!("{}/{name}", self.folder.trim_end_matches('/')))
    }

    /// The complete backups in the folder (a missing folder holds none).
    pub fn ids(&self) -> Result<HashSet<String>, BackupError> {
        let folder = self.remote("")?;
        // The app's folder is made when missing (its parent must exist): a listing that
        // fails then — no such folder, no permission — is an error, never "nothing".
        let listed = self.run(&format!("@-mkdir {folder}\n@ls -1 {folder}\n"))?;
        Ok(String::from_utf8_lossy(&listed)
            .lines()
            .filter_map(|line| {
                let name = line.trim().rsplit('/').next()?;
                let id = name.strip_suffix(MANIFEST_SUFFIX)?;
                crate::manifest::check_id(id)
                    .is_ok()
                    .then(|| id.to_string())
            })
            .collect())
    }

    /// Puts `record` on the server, read back through `scratch` (a local folder)
    /// before it gets its name.
    pub fn put(&self, record: &BackupRecord, scratch: &Path) -> Result<Copied, BackupError> {
        let manifest = &record.manifest;
        if manifest.compute_digest() != manifest.digest {
            return Err(BackupError::ManifestChanged {
                path: record.manifest_path.clone(),
            });
        }
        let id = &record.id;
        let archive = self.remote(&format!("{id}{ARCHIVE_SUFFIX}"))?;
        let manifest_file = self.remote(&format!("{id}{MANIFEST_SUFFIX}"))?;
        let (archive_partial, manifest_partial) = (
            format!("{archive}{PARTIAL_SUFFIX}"),
            format!("{manifest_file}{PARTIAL_SUFFIX}"),
        );
        let folder = self.remote("")?;
        self.run(&format!(
            "-mkdir {folder}\n-rm {archive_partial}\n-rm {manifest_partial}\nput -f {} {archive_partial}\nput -f {} {manifest_partial}\n",
            local(&record.archive)?,
            local(&record.manifest_path)?,
        ))?;
        let checked = (|| {
            // Hashed where it lies when the account can run commands, else fetched back.
            let there = self.hash_there(&archive_partial)?;
            let hashed_there = there.is_some();
            let (size, sha) = match there {
                Some(there) => there,
                None => self.read_back(&archive_partial, scratch, id, |_| Ok(()))?,
            };
            if size != manifest.archive_size {
                return Err(BackupError::ArchiveSize {
                    path: PathBuf::from(&archive_partial),
                    expected: manifest.archive_size,
                    actual: size,
                });
            }
            if sha != manifest.archive_sha256 {
                return Err(BackupError::ArchiveChecksum {
                    path: PathBuf::from(&archive_partial),
                    expected: manifest.archive_sha256.clone(),
                    actual: sha,
                });
            }
            self.read_back(&manifest_partial, scratch, id, |copy| {
                if read_manifest(copy)? == *manifest {
                    Ok(())
                } else {
                    Err(BackupError::ManifestChanged {
                        path: PathBuf::from(&manifest_partial),
                    })
                }
            })?;
            self.run(&format!(
                "rename {archive_partial} {archive}\nrename {manifest_partial} {manifest_file}\n"
            ))?;
            Ok(hashed_there)
        })();
        match checked {
            Err(e) => {
                let _ = self.run(&format!("-rm {archive_partial}\n-rm {manifest_partial}\n"));
                Err(e)
            }
            Ok(hashed_there) => Ok(Copied {
                bytes: manifest.archive_size,
                already: false,
                hashed_there,
            }),
        }
    }

    /// The size and sha256 of `remote` as the server holds it, read into a scratch
    /// file in `scratch` (removed after) that `check` is given first.
    fn read_back(
        &self,
        remote: &str,
        scratch: &Path,
        id: &str,
        check: impl FnOnce(&Path) -> Result<(), BackupError>,
    ) -> Result<(u64, String), BackupError> {
        fs::create_dir_all(scratch).map_err(|e| BackupError::io("create", scratch, e))?;
        let path = scratch.join(format!(".readback-{id}{PARTIAL_SUFFIX}"));
        let _ = fs::remove_file(&path);
        let result = (|| {
            self.run(&format!("get {remote} {}\n", local(&path)?))?;
            check(&path)?;
            crate::copy::read_back(&path)
        })();
        let _ = fs::remove_file(&path);
        result
    }

    /// Brings backup `id` back into folder `into`: both files fetched as `.partial`,
    /// the archive checked against the manifest, then renamed into place, the manifest
    /// last. `None` when the server does not have it.
    pub fn fetch(&self, id: &str, into: &Path) -> Result<Option<BackupRecord>, BackupError> {
        crate::manifest::check_id(id)?;
        if !self.ids()?.contains(id) {
            return Ok(None);
        }
        fs::create_dir_all(into).map_err(|e| BackupError::io("create", into, e))?;
        let archive = crate::manifest::archive_path(into, id);
        let manifest_file = crate::manifest::manifest_path(into, id);
        let (archive_partial, manifest_partial) = (
            crate::manifest::partial(&archive),
            crate::manifest::partial(&manifest_file),
        );
        let fetched = (|| {
            self.run(&format!(
                "get {} {}\nget {} {}\n",
                self.remote(&format!("{id}{MANIFEST_SUFFIX}"))?,
                local(&manifest_partial)?,
                self.remote(&format!("{id}{ARCHIVE_SUFFIX}"))?,
                local(&archive_partial)?,
            ))?;
            let manifest = read_manifest(&manifest_partial)?;
            if manifest.compute_digest() != manifest.digest {
                return Err(BackupError::ManifestChanged {
                    path: manifest_partial.clone(),
                });
            }
            let (size, sha) = crate::copy::read_back(&archive_partial)?;
            if size != manifest.archive_size || sha != manifest.archive_sha256 {
                return Err(BackupError::ArchiveChecksum {
                    path: archive_partial.clone(),
                    expected: manifest.archive_sha256.clone(),
                    actual: sha,
                });
            }
            fs::rename(&archive_partial, &archive)
                .map_err(|e| BackupError::io("rename into place", &archive_partial, e))?;
            fs::rename(&manifest_partial, &manifest_file)
                .map_err(|e| BackupError::io("rename into place", &manifest_partial, e))?;
            sync_dir(into)?;
            crate::load(into, id)
        })();
        if fetched.is_err() {
            for path in [&manifest_partial, &archive_partial] {
                let _ = fs::remove_file(path);
            }
        }
        fetched.map(Some)
    }

    /// Removes backup `id` from the server, its manifest first.
    pub fn remove(&self, id: &str) -> Result<(), BackupError> {
        crate::manifest::check_id(id)?;
        self.run(&format!(
            "-rm {}\n-rm {}\n",
            self.remote(&format!("{id}{MANIFEST_SUFFIX}"))?,
            self.remote(&format!("{id}{ARCHIVE_SUFFIX}"))?,
        ))
        .map(|_| ())
    }
}

/// The last lines of ssh's or sftp's error output: they say why (ssh's `@@@` banner
/// frames a warning they repeat).
fn last_lines(stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('@'))
        .collect();
    lines[lines.len().saturating_sub(3)..].join(" ")
}

/// A local path quoted for a batch line.
fn local(path: &Path) -> Result<String, BackupError> {
    let text = path.to_str().unwrap_or("\"");
    if text.contains(['"', '\\', '\n', '\r']) {
        return Err(BackupError::io(
            "name in an sftp batch",
            path,
            io::Error::other("the path holds a quote, a backslash or a line break"),
        ));
    }
    Ok(format!("\"{text}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_folders_reach_a_batch() {
        for ok in ["/srv/mooring", "backups", "/a/b-c_d.e/"] {
            assert!(check_remote_folder(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/srv/my backups",
            "/srv/\"x",
            "/srv/../etc",
            "a\nput x",
            "/x;y",
        ] {
            assert!(check_remote_folder(bad).is_err(), "{bad:?}");
        }
        assert!(local(Path::new("/tmp/a\"b")).is_err());
        assert_eq!(local(Path::new("/tmp/a b")).unwrap(), "\"/tmp/a b\"");
    }
}
