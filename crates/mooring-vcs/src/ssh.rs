//! The `ssh` command line Mooring hands to the tools for SSH transports: Git's
//! `GIT_SSH_COMMAND`, Subversion's `SVN_SSH` and Mercurial's `ui.ssh`.
//!
//! ```text
//! ssh -o BatchMode=yes -o LogLevel=ERROR [-i 'KEY' -o IdentitiesOnly=yes]
//!     [-o 'UserKnownHostsFile=FILE' -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
//!      | -o StrictHostKeyChecking=accept-new]
//!     [TOOL'S OWN ARGUMENTS]
//! ```
//!
//! - Never a prompt (`BatchMode`), so an unknown host key or a refused key fails at
//!   once; only errors on stderr (`LogLevel=ERROR`: no "Permanently added" notes).
//! - Host keys are always checked: without a `known_hosts` setting ssh's own
//!   default applies (the user's files, an unknown host is refused); a file
//!   setting is strict and that file alone is read; `accept-new` must be asked for.
//! - The key is named by its path, never by its content. A key given as a value
//!   is written to `key` (mode 0600) in a private temporary directory (mode 0700)
//!   that lives as long as the [`SshCommand`] — one tool command — and its path is
//!   scrubbed from the tool's stderr ([`SshCommand::scrub`]).
//! - Git and Mercurial run the string through `/bin/sh`, Subversion splits it with
//!   APR's tokenizer. Paths are single-quoted, which means the same to both, and a
//!   path that neither could take literally (quotes, backslashes, white space,
//!   `$`, `%` — ssh expands `%x` tokens and `${VAR}` in these options — or control
//!   characters) is refused with an error saying so.
//! - Subversion passes `host:port` to ssh as one word, which ssh cannot resolve; for
//!   an `svn+ssh://` URL with a port, `-p PORT -o Hostname=HOST` is added (see
//!   [`svn_tunnel_args`]), and the line ends with `--` so the host can never be
//!   read as an option.

use std::path::Path;
use std::process::Output;

use crate::credentials::{Credentials, KnownHosts, SshKey};
use crate::error::SourceError;

/// What replaces the temporary key path in messages.
const HIDDEN_KEY_PATH: &str = "(temporary ssh key file)";

/// One ssh command line, and the temporary key file it names (if any), which is
/// removed when this value is dropped.
pub(crate) struct SshCommand {
    _dir: Option<tempfile::TempDir>,
    /// The temporary directory holding the key, to scrub from messages.
    temp_path: Option<String>,
    /// The command line.
    pub(crate) line: String,
}

impl SshCommand {
    /// The command for `credentials` (none: ssh's defaults in batch mode), followed
    /// by `extra` (already safe words).
    pub(crate) fn new(
        credentials: Option<&Credentials>,
        extra: &[String],
    ) -> Result<SshCommand, SourceError> {
        let mut words = vec![
            "ssh".to_string(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
        ];
        let mut dir = None;
        let mut temp_path = None;
        let ssh_key = credentials.and_then(|c| c.ssh_key.as_ref());
        let known_hosts = credentials.and_then(|c| c.known_hosts.as_ref());
        match ssh_key {
            None => {}
            Some(SshKey::File(path)) => {
                words.push("-i".into());
                words.push(format!("'{}'", checked("the ssh key file", path)?));
                words.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
            }
            Some(SshKey::Value(text)) => {
                // The temporary path is the cache's credential folder (or TMPDIR)
                // plus the pid, letters and digits.
                let folder = credentials.and_then(|c| c.temp_root.as_deref());
                match folder {
                    Some(f) => checked("the data directory", f)?,
                    None => checked("the temporary directory (TMPDIR)", &std::env::temp_dir())?,
                };
                let (tmp, file) = write_temp_key(text, folder)?;
                let file = file.to_str().map(str::to_string).ok_or_else(|| {
                    SourceError::InvalidCredentials {
                        reason: "the temporary ssh key path is not valid UTF-8".to_string(),
                    }
                })?;
                temp_path = Some(tmp.path().to_string_lossy().into_owned());
                words.push("-i".into());
                words.push(format!("'{file}'"));
                words.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
                dir = Some(tmp);
            }
        }
        match known_hosts {
            None => {}
            Some(KnownHosts::File(path)) => {
                let file = checked("the known_hosts file", path)?;
                // `'UserKnownHostsFile=/path'`: one word for both splitters.
                words.push("-o".into());
                words.push(format!("'UserKnownHostsFile={file}'"));
                // That file alone: not the system-wide one either.
                words.extend([
                    "-o".into(),
                    "GlobalKnownHostsFile=/dev/null".into(),
                    "-o".into(),
                    "StrictHostKeyChecking=yes".into(),
                ]);
            }
            Some(KnownHosts::AcceptNew) => {
                words.extend(["-o".into(), "StrictHostKeyChecking=accept-new".into()]);
            }
        }
        words.extend(extra.iter().cloned());
        Ok(SshCommand {
            _dir: dir,
            temp_path,
            line: words.join(" "),
        })
    }

    /// Replaces the temporary key path in `text`.
    fn scrub_text(&self, text: &str) -> String {
        match &self.temp_path {
            Some(dir) => text
                .replace(&format!("{dir}/key"), HIDDEN_KEY_PATH)
                .replace(dir.as_str(), HIDDEN_KEY_PATH),
            None => text.to_string(),
        }
    }

    /// Replaces the temporary key path in a tool's stderr, and drops the `@@@@`
    /// frame of ssh's host-key warning (its text stays).
    pub(crate) fn scrub(&self, out: &mut Output) {
        let text = String::from_utf8_lossy(&out.stderr);
        let banner = |line: &str| line.trim_start_matches("remote:").trim().starts_with("@@@");
        if self.temp_path.is_none() && !text.lines().any(banner) {
            return;
        }
        let kept: Vec<String> = text
            .lines()
            .filter(|l| !banner(l))
            .map(
                |l| match l.trim().strip_prefix('@').and_then(|l| l.strip_suffix('@')) {
                    Some(inner) => inner.trim().to_string(),
                    None => l.to_string(),
                },
            )
            .collect();
        out.stderr = self.scrub_text(&kept.join("\n")).into_bytes();
    }
}

/// Writes `key` to `key` in a new private directory.
fn write_temp_key(
    key: &str,
    folder: Option<&Path>,
) -> Result<(tempfile::TempDir, std::path::PathBuf), SourceError> {
    let dir = mooring_private::tempdir(folder, "ssh")
        .map_err(|e| SourceError::io("cannot create a temporary directory for the ssh key", e))?;
    let path = dir.path().join("key");
    mooring_private::write_key(&path, key.as_bytes())
        .map_err(|e| SourceError::io("cannot write the temporary ssh key file", e))?;
    Ok((dir, path))
}

/// `path` as text that, single-quoted, means itself to `/bin/sh` and APR alike;
/// refuses what either (or ssh's own token expansion) would not take literally.
fn checked<'p>(what: &str, path: &'p Path) -> Result<&'p str, SourceError> {
    let bad = |reason: &str| SourceError::InvalidCredentials {
        reason: format!(
            "{what} {} {reason}; it cannot be passed to ssh through git, svn and hg \
             safely: use a path without white space, quotes, backslashes, '$' or '%'",
            path.display()
        ),
    };
    let Some(text) = path.to_str() else {
        return Err(bad("is not valid UTF-8"));
    };
    if !path.is_absolute() {
        return Err(SourceError::InvalidCredentials {
            reason: format!("{what} {text} is not an absolute path"),
        });
    }
    if let Some(c) = text.chars().find(|&c| {
        c.is_control() || c.is_whitespace() || matches!(c, '\'' | '"' | '\\' | '$' | '%' | '`')
    }) {
        return Err(bad(&format!("contains {c:?}")));
    }
    Ok(text)
}

/// The extra words of the Subversion tunnel for `url`: `-p PORT -o Hostname=HOST`
/// when an `svn+ssh://` URL names a port (Subversion hands `host:port` to ssh as
/// one word), then `--`.
pub(crate) fn svn_tunnel_args(url: &str) -> Vec<String> {
    let mut words = Vec::new();
    if let Some((host, port)) = ssh_host_port(url) {
        words.extend([
            "-p".to_string(),
            port,
            "-o".to_string(),
            format!("Hostname={host}"),
        ]);
    }
    words.push("--".to_string());
    words
}

/// The host and port of an `svn+ssh://[user@]host:port/…` URL, when both are
/// plain (letters, digits, `.`, `-`, `_`, `:` for IPv6 in brackets).
fn ssh_host_port(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("svn+ssh") {
        return None;
    }
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        hostport.rsplit_once(':')?
    };
    let plain_host = !host.is_empty()
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    let plain_port =
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    (plain_host && plain_port).then(|| (host.to_string(), port.to_string()))
}

/// A hint for an ssh failure in a tool's stderr: the server refused the key, or
/// the host key is unknown or changed. `None` when it is neither.
pub(crate) fn failure_hint(stderr: &str, credentials: Option<&Credentials>) -> Option<String> {
    let has_key = credentials.is_some_and(|c| c.ssh_key.is_some());
    if stderr.contains("Permission denied (publickey")
        || stderr.contains("Too many authentication failures")
    {
        return Some(if has_key {
            " (the SSH server refused the configured ssh key: check that its public key is \
             authorized for this user on the server)"
                .to_string()
        } else {
            " (the SSH server accepted none of the keys offered: configure an ssh key for \
             this source — `ssh_key` in mooring.yaml, `--ssh-key` on the command line)"
                .to_string()
        });
    }
    if stderr.contains("Host key verification failed")
        || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || stderr.contains("host key is known")
    {
        let changed = stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("has changed and you have requested strict checking");
        let file = match credentials.and_then(|c| c.known_hosts.as_ref()) {
            Some(KnownHosts::File(path)) => format!("the known_hosts file {}", path.display()),
            _ => "your known_hosts file (or give a file for this source: `known_hosts` in \
                  mooring.yaml, `--known-hosts` on the command line)"
                .to_string(),
        };
        return Some(if changed {
            format!(
                " (the SSH server's host key does not match {file}: find out why it \
                 changed before trusting the new key)"
            )
        } else {
            format!(
                " (the SSH server's host key is not trusted: add it to {file}, e.g. with \
                 `ssh-keyscan -p PORT HOST` checked against the server)"
            )
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn default_command_is_batch_mode() {
        let cmd = SshCommand::new(None, &[]).unwrap();
        assert_eq!(cmd.line, "ssh -o BatchMode=yes -o LogLevel=ERROR");
    }

    #[test]
    fn key_file_and_known_hosts_are_quoted() {
        let creds = Credentials::default()
            .with_ssh_key(SshKey::File(PathBuf::from("/etc/mooring/deploy_key")))
            .with_known_hosts(KnownHosts::File(PathBuf::from("/etc/mooring/known_hosts")));
        let cmd = SshCommand::new(Some(&creds), &["--".to_string()]).unwrap();
        assert_eq!(
            cmd.line,
            "ssh -o BatchMode=yes -o LogLevel=ERROR -i '/etc/mooring/deploy_key' \
             -o IdentitiesOnly=yes -o 'UserKnownHostsFile=/etc/mooring/known_hosts' \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes --"
        );
        let accept = Credentials::default().with_known_hosts(KnownHosts::AcceptNew);
        let cmd = SshCommand::new(Some(&accept), &[]).unwrap();
        assert!(
            cmd.line.ends_with("-o StrictHostKeyChecking=accept-new"),
            "{}",
            cmd.line
        );
    }

    #[test]
    fn a_key_value_lives_in_a_private_file_while_the_command_lives() {
        use std::os::unix::fs::PermissionsExt;
        const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ib2R5\n-----END OPENSSH PRIVATE KEY-----";
        let creds = Credentials::default().with_ssh_key(SshKey::Value(KEY.into()));
        let cmd = SshCommand::new(Some(&creds), &[]).unwrap();
        assert!(!cmd.line.contains("c2VjcmV0"), "{}", cmd.line);
        let dir = PathBuf::from(cmd.temp_path.clone().unwrap());
        let file = dir.join("key");
        assert!(cmd.line.contains(&format!("-i '{}'", file.display())));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{KEY}\n"));
        let mut out = std::process::Command::new("true").output().unwrap();
        out.stderr = format!(
            "@@@@@@@@\n@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\nLoad key \"{}\": invalid format",
            file.display()
        )
        .into_bytes();
        cmd.scrub(&mut out);
        let shown = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            shown,
            format!(
                "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!\n\
                 Load key \"{HIDDEN_KEY_PATH}\": invalid format"
            )
        );
        assert!(!shown.contains(&dir.display().to_string()), "{shown}");
        assert!(shown.contains(HIDDEN_KEY_PATH), "{shown}");
        drop(cmd);
        assert!(!dir.exists(), "the key is removed with the command");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for path in [
            "/keys/my key",
            "/keys/it's",
            "/keys/a\"b",
            "/keys/a\\b",
            "/keys/$HOME",
            "/keys/%d",
            "/keys/a\nb",
            "relative/key",
        ] {
            let creds = Credentials::default().with_ssh_key(SshKey::File(PathBuf::from(path)));
            let err = SshCommand::new(Some(&creds), &[]).err().unwrap();
            assert!(
                matches!(err, SourceError::InvalidCredentials { .. }),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn svn_ports_are_given_to_ssh() {
        assert_eq!(
            svn_tunnel_args("svn+ssh://root@127.0.0.1:2222/srv/repo"),
            ["-p", "2222", "-o", "Hostname=127.0.0.1", "--"]
        );
        assert_eq!(
            svn_tunnel_args("svn+ssh://[::1]:2200/r"),
            ["-p", "2200", "-o", "Hostname=::1", "--"]
        );
        assert_eq!(svn_tunnel_args("svn+ssh://host/r"), ["--"]);
        assert_eq!(svn_tunnel_args("svn+ssh://-oProxyCommand=x:22/r"), ["--"]);
        assert_eq!(svn_tunnel_args("svn://host:3690/r"), ["--"]);
    }

    #[test]
    fn hints_name_the_cause() {
        let none = failure_hint("root@h: Permission denied (publickey).", None).unwrap();
        assert!(none.contains("ssh_key"), "{none}");
        let creds =
            Credentials::default().with_known_hosts(KnownHosts::File(PathBuf::from("/etc/kh")));
        let unknown = failure_hint("Host key verification failed.", Some(&creds)).unwrap();
        assert!(unknown.contains("/etc/kh"), "{unknown}");
        assert!(failure_hint("Connection refused", None).is_none());
    }
}
