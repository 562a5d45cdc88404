//! [`Credentials`]: what a source needs to authenticate, given as values (for
//! example from Mooring's configuration) rather than through a tool's own
//! credential store: a user name and password (or token), and for SSH transports a
//! private key ([`SshKey`]) and the host keys to trust ([`KnownHosts`]).
//!
//! They are attached to a [`Cache`](crate::Cache) with
//! [`Cache::with_credentials`](crate::Cache::with_credentials) and handed to each tool
//! without ever appearing on a command line (where other local users could read them
//! in the process list), in a cache folder name, or in a message:
//!
//! - Git (http/https only): a `credential-store` file (mode 0600, in a private 0700
//!   temporary directory) that exists only while `git fetch` runs, selected with
//!   `-c credential.helper= -c credential.helper=store --file=…`;
//! - Subversion: `--username` plus `--password-from-stdin` (the password is written to
//!   the child's stdin), with `--no-auth-cache` so nothing is saved;
//! - Mercurial: an `[auth]` section in the temporary configuration file (mode 0600)
//!   that `HGRCPATH` points at for the duration of one command.
//! - SSH (Git `ssh://` and `user@host:path`, Subversion `svn+ssh://`, Mercurial
//!   `ssh://`): an `ssh` command line naming the key *file* (`GIT_SSH_COMMAND`,
//!   `SVN_SSH`, `ui.ssh`; see the `ssh` module). A key given as a value is written
//!   to a private temporary file (mode 0600 in a 0700 directory) that exists only
//!   while one command runs; its path is scrubbed from the tool's stderr.
//!
//! Every error text produced while credentials are set is scrubbed of the password
//! and of the key.

use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::SourceError;

/// A user name and a password or token.
///
/// `Debug` never shows the password. If only a password is given, Git uses the user
/// name `x-access-token` (accepted with tokens by the common Git hosts), Subversion
/// and Mercurial their own default (the local user name).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The user name, if any.
    pub username: Option<String>,
    /// The password or access token, if any.
    pub password: Option<String>,
    /// The private key for SSH transports, if any; without one, ssh uses the
    /// user's own keys and agent.
    pub ssh_key: Option<SshKey>,
    /// Which host keys SSH transports trust; `None` is ssh's own default (the
    /// user's `known_hosts` files, and an unknown host is refused).
    pub known_hosts: Option<KnownHosts>,
    /// Where temporary credential files go (see `mooring_private`); set by the
    /// [`Cache`](crate::Cache) the credentials are given to.
    pub(crate) temp_root: Option<PathBuf>,
}

/// A private key for SSH transports.
///
/// `Debug` never shows a key given as a value.
#[derive(Clone, PartialEq, Eq)]
pub enum SshKey {
    /// A key file, handed to ssh by its (absolute) path; never copied.
    File(PathBuf),
    /// The key itself (e.g. from an environment variable): written to a private
    /// temporary file for each command, removed when the command ends.
    Value(String),
}

/// Which SSH host keys to trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KnownHosts {
    /// Only the keys in this file (absolute path, `known_hosts` format: lines such
    /// as `[host]:port ssh-ed25519 AAAA…`); a host that is missing there or shows
    /// another key is refused.
    File(PathBuf),
    /// ssh's `StrictHostKeyChecking=accept-new`: the user's `known_hosts` files,
    /// where a host seen for the first time is added; a changed key is refused.
    AcceptNew,
}

impl KnownHosts {
    /// `accept-new`, or a file path (relative paths are resolved against `base`).
    pub fn parse(text: &str, base: &Path) -> KnownHosts {
        if text == "accept-new" {
            KnownHosts::AcceptNew
        } else {
            KnownHosts::File(base.join(text))
        }
    }

    /// Checks that a known-hosts file is an absolute path to a readable file.
    pub fn check(&self) -> Result<(), SourceError> {
        let KnownHosts::File(path) = self else {
            return Ok(());
        };
        let bad = |reason: String| SourceError::InvalidCredentials { reason };
        if !path.is_absolute() {
            return Err(bad(format!(
                "the known_hosts file {} is not an absolute path",
                path.display()
            )));
        }
        match fs::File::open(path).and_then(|f| f.metadata()) {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(_) => Err(bad(format!(
                "the known_hosts file {} is not a file; give a file of host keys \
                 (for example from `ssh-keyscan -p PORT HOST`), or `accept-new`",
                path.display()
            ))),
            Err(e) => Err(bad(format!(
                "cannot read the known_hosts file {}: {e}; give a readable file of host \
                 keys (for example from `ssh-keyscan -p PORT HOST`), or `accept-new`",
                path.display()
            ))),
        }
    }
}

/// What a private key's text must contain.
const PRIVATE_KEY_MARK: &str = "PRIVATE KEY-----";

impl SshKey {
    /// Checks the key: a file must be an absolute path to a readable file that
    /// holds a private key (not a public one) and that other users cannot read
    /// (ssh refuses such a key); a value must be a private key. The errors say what
    /// to do and never show the key.
    pub fn check(&self) -> Result<(), SourceError> {
        let bad = |reason: String| SourceError::InvalidCredentials { reason };
        match self {
            SshKey::Value(text) => {
                if !text.contains(PRIVATE_KEY_MARK) {
                    return Err(bad(
                        "the ssh key does not hold a private key (expected a PEM block such \
                         as -----BEGIN OPENSSH PRIVATE KEY-----); give the private key, \
                         not the public one"
                            .to_string(),
                    ));
                }
                Ok(())
            }
            SshKey::File(path) => {
                let shown = path.display();
                if !path.is_absolute() {
                    return Err(bad(format!(
                        "the ssh key file {shown} is not an absolute path"
                    )));
                }
                let mut file = fs::File::open(path).map_err(|e| {
                    bad(format!(
                        "cannot read the ssh key file {shown}: {e}; give the path of a \
                         readable private key file"
                    ))
                })?;
                let meta = file
                    .metadata()
                    .map_err(|e| bad(format!("cannot read the ssh key file {shown}: {e}")))?;
                if !meta.is_file() {
                    return Err(bad(format!(
                        "the ssh key file {shown} is not a file; give the path of a private key file"
                    )));
                }
                // Private keys are a few kilobytes; read a bounded prefix.
                let mut head = Vec::new();
                file.by_ref()
                    .take(64 * 1024)
                    .read_to_end(&mut head)
                    .map_err(|e| bad(format!("cannot read the ssh key file {shown}: {e}")))?;
                let head = String::from_utf8_lossy(&head);
                if !head.contains(PRIVATE_KEY_MARK) {
                    let what = if head.trim_start().starts_with("ssh-")
                        || head.trim_start().starts_with("ecdsa-")
                    {
                        "holds a public key"
                    } else {
                        "does not hold a private key"
                    };
                    return Err(bad(format!(
                        "the ssh key file {shown} {what} (expected a PEM block such as \
                         -----BEGIN OPENSSH PRIVATE KEY-----); give the private key file \
                         (e.g. id_ed25519, not id_ed25519.pub)"
                    )));
                }
                let mode = meta.permissions().mode() & 0o777;
                // ssh refuses a key of its own user that others can read.
                if effective_uid().is_none_or(|uid| uid == meta.uid()) && mode & 0o077 != 0 {
                    return Err(bad(format!(
                        "the ssh key file {shown} can be read by other users (mode {mode:04o}) \
                         and ssh refuses such keys; run `chmod 600 {shown}`"
                    )));
                }
                Ok(())
            }
        }
    }
}

/// This process's effective user id (the owner of `/proc/self`), if known.
fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

impl fmt::Debug for SshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshKey::File(path) => f.debug_tuple("File").field(path).finish(),
            SshKey::Value(_) => f.write_str("Value(***)"),
        }
    }
}

impl Credentials {
    /// Credentials from a user name and a password or token.
    pub fn new(username: Option<String>, password: Option<String>) -> Credentials {
        Credentials {
            username,
            password,
            ..Credentials::default()
        }
    }

    /// The same credentials with a private key for SSH transports.
    pub fn with_ssh_key(mut self, key: SshKey) -> Credentials {
        self.ssh_key = Some(key);
        self
    }

    /// The same credentials trusting `known_hosts` for SSH transports.
    pub fn with_known_hosts(mut self, known_hosts: KnownHosts) -> Credentials {
        self.known_hosts = Some(known_hosts);
        self
    }

    /// Whether SSH transports need Mooring's own ssh command line (a key or a
    /// known-hosts setting is configured).
    pub(crate) fn has_ssh_settings(&self) -> bool {
        self.ssh_key.is_some() || self.known_hosts.is_some()
    }

    /// Rejects values no tool can take safely: control characters (a newline would
    /// end a configuration line or the password on stdin), leading or trailing
    /// spaces (configuration files strip them) and empty strings.
    pub(crate) fn validate(&self) -> Result<(), SourceError> {
        for (what, value) in [("user name", &self.username), ("password", &self.password)] {
            if let Some(value) = value {
                let bad = |reason: &str| SourceError::InvalidCredentials {
                    reason: format!("the {what} {reason}"),
                };
                if value.is_empty() {
                    return Err(bad("is empty"));
                }
                if value.chars().any(char::is_control) {
                    return Err(bad("contains control characters"));
                }
                if value.trim() != value {
                    return Err(bad("starts or ends with white space"));
                }
            }
        }
        if let Some(key) = &self.ssh_key {
            key.check()?;
        }
        if let Some(known_hosts) = &self.known_hosts {
            known_hosts.check()?;
        }
        Ok(())
    }

    /// Removes every occurrence of the password, and of each line of a key given
    /// as a value, from `text`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Some(secret) = self.password.as_deref().filter(|s| !s.is_empty()) {
            out = out.replace(secret, "***");
            let encoded = percent_encode(secret);
            if encoded != secret {
                out = out.replace(&encoded, "***");
            }
        }
        if let Some(SshKey::Value(key)) = &self.ssh_key {
            for line in key.lines().map(str::trim) {
                // The base64 body; the BEGIN/END markers are no secret.
                if line.len() >= 16 && !line.starts_with("-----") {
                    out = out.replace(line, "***");
                }
            }
        }
        out
    }
}

/// Removes the password of `credentials` (if any) from `text`.
pub(crate) fn scrub_opt(text: &str, credentials: Option<&Credentials>) -> String {
    match credentials {
        Some(c) => c.scrub(text),
        None => text.to_string(),
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ssh_key", &self.ssh_key)
            .field("known_hosts", &self.known_hosts)
            .finish()
    }
}

/// An http(s) URL without its user info, and the credentials that user info
/// carried (a user name, and a password after `:`; percent-decoded). Other URLs
/// come back as they are: their user names are no secret (`ssh://git@host`).
pub(crate) fn split_url_credentials(url: &str) -> (String, Option<Credentials>) {
    let unchanged = || (url.to_string(), None);
    let Some((scheme, rest)) = url.split_once("://") else {
        return unchanged();
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return unchanged();
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some((userinfo, host)) = rest[..end].rsplit_once('@') else {
        return unchanged();
    };
    let decode = |t: &str| crate::spec::percent_decode(t).unwrap_or_else(|| t.to_string());
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (decode(u), Some(decode(p))),
        None => (decode(userinfo), None),
    };
    let credentials = Credentials::new((!user.is_empty()).then_some(user), password);
    (
        format!("{scheme}://{host}{}", &rest[end..]),
        Some(credentials),
    )
}

/// Percent-encodes everything except unreserved characters (RFC 3986).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_split_off() {
        let (url, c) = split_url_credentials("https://al%40ce:p%3Ass@127.0.0.1:8080/r.git?x");
        assert_eq!(url, "https://127.0.0.1:8080/r.git?x");
        let c = c.unwrap();
        assert_eq!(c.username.as_deref(), Some("al@ce"));
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        let (url, c) = split_url_credentials("http://t0ken@h/r");
        assert_eq!((url.as_str(), c.unwrap().password), ("http://h/r", None));
        for kept in [
            "ssh://git@h/r.git",
            "https://h/r.git",
            "git@h:r.git",
            "/srv/r",
        ] {
            assert_eq!(split_url_credentials(kept), (kept.to_string(), None));
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Credentials::new(Some("alice".into()), Some("hunter2".into()));
        let shown = format!("{c:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn scrubs_plain_and_encoded_password() {
        let c = Credentials::new(None, Some("p@ss word".into()));
        assert_eq!(c.scrub("x p@ss word y p%40ss%20word"), "x *** y ***");
    }

    #[test]
    fn rejects_unusable_values() {
        for (u, p) in [
            (Some(""), None),
            (None, Some("a\nb")),
            (None, Some(" lead")),
            (Some("u\t"), None),
        ] {
            let c = Credentials::new(u.map(str::to_string), p.map(str::to_string));
            let err = c.validate().unwrap_err();
            assert!(matches!(err, SourceError::InvalidCredentials { .. }));
            if let Some(p) = p {
                assert!(!err.to_string().contains(p), "{err}");
            }
        }
        Credentials::new(Some("u".into()), Some("p w".into()))
            .validate()
            .unwrap();
    }
}
