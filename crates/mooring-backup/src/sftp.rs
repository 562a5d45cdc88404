//! A folder on an SFTP server as a backup target, through OpenSSH's `ssh` and `sftp`
//! in batch mode: no shell needed on the server (it may allow SFTP alone), never a
//! prompt (`BatchMode`), host keys always checked.
//!
//! A copy is written as `<id>.tar.zst.partial` and `<id>.manifest.json.partial`. When
//! the account can run commands, the archive is streamed through `ssh` into `tee`,
//! which writes the file while the server's `openssl dgst` (or `sha256sum`) hashes
//! the bytes it received, in the same pass; then the server flushes the file to its
//! disk and reads its size from it (`wc -c`). An SFTP-only account gets the archive with `put -f`
//! (flushed when the server offers `fsync@openssh.com`, as OpenSSH's does), read back
//! into a local scratch file. The manifest is put with `-f` and read back. Only when
//! the size, the sha256 and the manifest all match are both renamed into place, the
//! manifest last: a copy exists exactly when its manifest does, as in every backups
//! folder.
//!
//! The commands of one call share one connection ([`Link`]), and AES-GCM is preferred
//! on a CPU with AES instructions. Paths are checked so that a batch line or the
//! command line on the server can never read them otherwise: letters, digits and
//! `_.-/@` on the server; no `"`, `\` or line break locally. ssh gives up on a server
//! that does not answer (30 s to connect, a minute of silence).

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

/// The private key an SFTP target logs in with.
#[derive(Clone, PartialEq, Eq)]
pub enum Identity {
    /// A key file, handed to ssh by its path; never copied.
    File(PathBuf),
    /// The key itself (from an environment variable or the configuration): written for
    /// each call into the call's private folder (0600 in 0700), removed after it.
    Key(String),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::File(path) => f.debug_tuple("File").field(path).finish(),
            Identity::Key(_) => f.write_str("Key(***)"),
        }
    }
}

/// A folder on an SFTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sftp {
    /// `user@host` (or `host`).
    pub destination: String,
    pub port: Option<u16>,
    /// The folder on the server (absolute, or relative to the user's home).
    pub folder: String,
    /// The private key (`None`: ssh's defaults).
    pub identity: Option<Identity>,
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
    fn command(&self, link: &Link) -> Command {
        let mut c = Command::new("sftp");
        c.args(["-b", "-"]);
        if let Some(p) = self.port {
            c.arg("-P").arg(p.to_string());
        }
        link.options(&mut c);
        self.ssh_options(link.key.as_deref(), &mut c);
        c
    }

    /// `ssh` with the same options, running `remote` (a command line of checked words)
    /// on the server.
    fn ssh(&self, link: &Link, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        if let Some(p) = self.port {
            c.arg("-p").arg(p.to_string());
        }
        link.options(&mut c);
        self.ssh_options(link.key.as_deref(), &mut c);
        c.arg(remote);
        c
    }

    /// A link for the commands of one call; see [`Link`].
    fn link(&self) -> Result<Link, BackupError> {
        let private = |e: io::Error| self.failed(format!("a private folder for ssh: {e}"));
        // The folders of daemons killed during a call go first.
        mooring_private::clean_temp("ssh");
        let folder = mooring_private::tempdir(None, "ssh").map_err(private)?;
        let key = match &self.identity {
            None => None,
            Some(Identity::File(path)) => Some(path.clone()),
            Some(Identity::Key(key)) => {
                let path = folder.path().join("key");
                mooring_private::write_key(&path, key.as_bytes()).map_err(private)?;
                Some(path)
            }
        };
        let socket = folder.path().join("link");
        let mut exit = Command::new("ssh");
        exit.args(["-O", "exit"]);
        Link::share(&socket, &mut exit);
        self.ssh_options(key.as_deref(), &mut exit);
        exit.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Ok(Link {
            _folder: folder,
            socket,
            key,
            exit,
        })
    }

    /// The options of both, then `-- DESTINATION`; `key` is the key file.
    fn ssh_options(&self, key: Option<&Path>, c: &mut Command) {
        // Not `-q`: it silences ssh's own errors too ("Host key verification failed").
        c.args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]);
        c.args(["-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15"]);
        c.args(["-o", "ServerAliveCountMax=4"]);
        if aes_in_hardware() {
            // AES-GCM first where the CPU has AES instructions: `scp` is 1.8x faster
            // with it than with ssh's default (ChaCha20) here, which leaves CPU time for
            // the server's sha256.
            // (The whole list, not `^…`: older clients do not take that form.)
            c.args(["-o", "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr"]);
        }
        if let Some(key) = key {
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

    /// Whether the account runs commands with the tools a streamed copy needs (`tee`,
    /// `wc`, and `openssl` or `sha256sum`); an SFTP-only account does not.
    fn runs_commands(&self, link: &Link) -> Result<bool, BackupError> {
        let out = self
            .ssh(
                link,
                "command -v tee && command -v wc && (command -v openssl || command -v sha256sum)",
            )
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.failed(format!("cannot run ssh: {e}")))?;
        match out.status.code() {
            // ssh's own failure (connection, host key): the target's problem.
            Some(255) | None => Err(self.failed(last_lines(&out.stderr))),
            Some(code) => Ok(code == 0 && String::from_utf8_lossy(&out.stdout).contains("tee")),
        }
    }

    /// Streams `file` into `remote` through ssh: the server writes it while hashing the
    /// bytes it received, flushes it to its disk and reads its size there (`remote` is
    /// a checked path, one word to any shell; POSIX tools only, `sync FILE` where the
    /// coreutils' sync takes one — its failure fails the copy — else a whole `sync`).
    /// The copy is thus checked in the same pass that makes it. Returns the size and
    /// sha256 the server found.
    fn stream(&self, link: &Link, file: &Path, remote: &str) -> Result<(u64, String), BackupError> {
        let input = fs::File::open(file).map_err(|e| BackupError::io("open", file, e))?;
        // `tee` goes on to its output when the file fails (a full disk): the size
        // the server reads from the file after the flush catches that.
        let out = self
            .ssh(link, &format!(
                "umask 077 && {{ if command -v openssl >/dev/null 2>&1; then tee {remote} | openssl dgst -sha256 -r; \
                 else tee {remote} | sha256sum; fi; }} && \
                 {{ if sync --version >/dev/null 2>&1; then sync {remote}; else sync; fi; }} && wc -c < {remote}"
            ))
            .stdin(input)
            .output()
            .map_err(|e| self.failed(format!("cannot run ssh: {e}")))?;
        if !out.status.success() {
            return Err(self.failed(last_lines(&out.stderr)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let sha = lines
            .next()
            .and_then(|l| l.split_whitespace().next())
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let size = lines.next().and_then(|l| l.trim().parse::<u64>().ok());
        match (size, sha) {
            (Some(size), Some(sha)) => Ok((size, sha.to_ascii_lowercase())),
            _ => Err(self.failed(format!(
                "the server's size and sha256 are unreadable: {text:?}"
            ))),
        }
    }

    /// Runs `batch` (one command per line; a line starting with `-` may fail, one with
    /// `@` is not echoed); returns what it printed.
    fn run(&self, link: &Link, batch: &str) -> Result<Vec<u8>, BackupError> {
        let mut child = self
            .command(link)
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
        self.list(&self.link()?)
    }

    fn list(&self, link: &Link) -> Result<HashSet<String>, BackupError> {
        let folder = self.remote("")?;
        // The app's folder is made when missing (its parent must exist): a listing that
        // fails then — no such folder, no permission — is an error, never "nothing".
        let listed = self.run(link, &format!("@-mkdir {folder}\n@ls -1 {folder}\n"))?;
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
        let link = &self.link()?;
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
        self.run(
            link,
            &format!("-mkdir {folder}\n-rm {archive_partial}\n-rm {manifest_partial}\n"),
        )?;
        let checked = (|| {
            // Hashed by the server in the pass that writes it when the account can run commands,
            // else put and fetched back.
            let hashed_there = self.runs_commands(link)?;
            let (size, sha) = if hashed_there {
                self.stream(link, &record.archive, &archive_partial)?
            } else {
                self.run(
                    link,
                    &format!("put -f {} {archive_partial}\n", local(&record.archive)?),
                )?;
                self.read_back(link, &archive_partial, scratch, id, |_| Ok(()))?
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
            self.run(
                link,
                &format!(
                    "put -f {} {manifest_partial}\n",
                    local(&record.manifest_path)?
                ),
            )?;
            self.read_back(link, &manifest_partial, scratch, id, |copy| {
                if read_manifest(copy)? == *manifest {
                    Ok(())
                } else {
                    Err(BackupError::ManifestChanged {
                        path: PathBuf::from(&manifest_partial),
                    })
                }
            })?;
            self.run(
                link,
                &format!(
                "rename {archive_partial} {archive}\nrename {manifest_partial} {manifest_file}\n"
            ),
            )?;
            Ok(hashed_there)
        })();
        match checked {
            Err(e) => {
                let _ = self.run(
                    link,
                    &format!("-rm {archive_partial}\n-rm {manifest_partial}\n"),
                );
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
        link: &Link,
        remote: &str,
        scratch: &Path,
        id: &str,
        check: impl FnOnce(&Path) -> Result<(), BackupError>,
    ) -> Result<(u64, String), BackupError> {
        fs::create_dir_all(scratch).map_err(|e| BackupError::io("create", scratch, e))?;
        let path = scratch.join(format!(".readback-{id}{PARTIAL_SUFFIX}"));
        let _ = fs::remove_file(&path);
        let result = (|| {
            self.run(link, &format!("get {remote} {}\n", local(&path)?))?;
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
        let link = &self.link()?;
        crate::manifest::check_id(id)?;
        if !self.list(link)?.contains(id) {
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
            self.run(
                link,
                &format!(
                    "get {} {}\nget {} {}\n",
                    self.remote(&format!("{id}{MANIFEST_SUFFIX}"))?,
                    local(&manifest_partial)?,
                    self.remote(&format!("{id}{ARCHIVE_SUFFIX}"))?,
                    local(&archive_partial)?,
                ),
            )?;
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
        let link = &self.link()?;
        crate::manifest::check_id(id)?;
        self.run(
            link,
            &format!(
                "-rm {}\n-rm {}\n",
                self.remote(&format!("{id}{MANIFEST_SUFFIX}"))?,
                self.remote(&format!("{id}{ARCHIVE_SUFFIX}"))?,
            ),
        )
        .map(|_| ())
    }
}

/// The one SSH connection the commands of one call (a copy, a listing, a fetch) share,
/// through OpenSSH's connection sharing: the first command opens it, the next ones
/// reuse it (a new connection costs a key exchange and a login, 0.3 s on loopback
/// here), and it is closed when the call ends — or by itself 5 s after its last
/// command, should the daemon die first. Its socket (and a key given as a value) lies
/// in a private folder of `mooring_private`, removed with it.
struct Link {
    _folder: tempfile::TempDir,
    socket: PathBuf,
    /// The key file ssh is given: the target's, or one written in the folder.
    key: Option<PathBuf>,
    /// `ssh -O exit …`: closes the connection.
    exit: Command,
}

impl Link {
    fn options(&self, c: &mut Command) {
        Self::share(&self.socket, c);
    }

    fn share(socket: &Path, c: &mut Command) {
        let mut path = std::ffi::OsString::from("ControlPath=");
        path.push(socket);
        c.args(["-o", "ControlMaster=auto", "-o", "ControlPersist=5"]);
        c.arg("-o").arg(path);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Nothing to close when no command opened it.
        if self.socket.exists() {
            let _ = self.exit.status();
        }
    }
}

/// Whether this machine's CPU has AES instructions (`aes` among the flags of x86, the
/// features of ARM, in `/proc/cpuinfo`).
fn aes_in_hardware() -> bool {
    static AES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AES.get_or_init(|| {
        fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
            info.lines()
                .filter(|l| l.starts_with("flags") || l.starts_with("Features"))
                .any(|l| l.split_whitespace().any(|w| w == "aes"))
        })
    })
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
