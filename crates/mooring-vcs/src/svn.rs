//! The Subversion backend, through the `svn` command line.
//!
//! No local mirror is kept: a poll is one `svn info` of `URL/REF[/PATH]@PEG`, whose
//! *last changed revision* is the [`Revision`] id, so a commit elsewhere in the
//! repository does not change the id of a path. A snapshot is an `svn export
//! --ignore-externals` of that path (externals are never fetched), built in a
//! temporary directory and renamed into `svn/<key>/snapshots/<rev>/<pathkey>/`.
//!
//! The export addresses the path at the revision the fetch resolved (the *peg*,
//! recorded by the fetch in `svn/<key>/pegs/<pathkey>/<rev>`), not at the last
//! changed revision itself: inside a copy (a tag or branch) the last changed
//! revision of a path can predate the copy, when the path did not exist yet under
//! that name. Between the two revisions nothing under the path changed, so the
//! content is the same. A revision that no fetch of the path (or of a folder above
//! it) returned is read as "the path as it was in that revision". [`path_tree`]
//! (the tree of a folder at a fetched revision) is one `svn info` pegged the same
//! way, and records the peg of its answer as a fetch does. The first line of each
//! revision's log message is fetched once and kept in `svn/<key>/log/<rev>`.
//!
//! Every command runs with an argument vector (never a shell), `LC_ALL=C`,
//! `--non-interactive` (no prompts), `--no-auth-cache` (nothing is written to the
//! user's credential cache) and no password stores (no keyring prompts). The user's
//! `~/.subversion` configuration (servers, tunnels, cached credentials and server
//! certificates) is otherwise honoured, as Git's is. A configured password goes in
//! through `--password-from-stdin`, never as an argument. For `svn+ssh://`, `SVN_SSH`
//! is Mooring's ssh command (see the `ssh` module: batch mode, the URL's port, and a
//! configured key and known-hosts file, which also override the user's `[tunnels]
//! ssh`), unless the user set `SVN_SSH` and configured no key.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::credentials::{percent_encode, Credentials};
use crate::dir::short_sha256;
use crate::error::{name_list, SourceError};
use crate::info::{self, message, non_empty, rfc3339_utc_ms, xml_element, RevisionInfo};
use crate::redact::redact_url;
use crate::run::{first_line, output, spawn_error, stderr_excerpt};
use crate::snapshot::{build_snapshot, path_key, Revision, Snapshot};
use crate::spec::{parse_svn_ref, validate_svn_url, SvnRef, SVN_DEFAULT_REF};
use crate::ssh::{failure_hint, svn_tunnel_args, SshCommand};

/// Subversion error codes meaning "nothing at that path/revision".
const MISSING: &[&str] = &["W170000", "E170000", "E200009", "E160013"];

/// What `svn info` tells about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Info {
    /// `directory` or `file`.
    kind: String,
    /// The last revision in which the node or anything below it changed.
    last_changed: u64,
    /// The revision the peg resolved to.
    revision: u64,
}

/// A Subversion repository URL plus the credentials to reach it.
struct Svn<'a> {
    url: &'a str,
    credentials: Option<&'a Credentials>,
}

impl<'a> Svn<'a> {
    fn new(url: &'a str, credentials: Option<&'a Credentials>) -> Svn<'a> {
        Svn { url, credentials }
    }

    fn shown_url(&self) -> String {
        redact_url(self.url)
    }

    /// `URL/REF/PATH` with every component percent-encoded.
    fn url_of(&self, reference: &str, path: &str) -> String {
        let mut out = self.url.trim_end_matches('/').to_string();
        for part in reference.split('/').chain(path.split('/')) {
            if !part.is_empty() {
                out.push('/');
                out.push_str(&percent_encode(part));
            }
        }
        out
    }

    fn run(&self, args: &[&str]) -> Result<Output, SourceError> {
        let mut cmd = Command::new("svn");
        cmd.args([
            "--non-interactive",
            "--no-auth-cache",
            "--config-option",
            "config:auth:password-stores=",
        ])
        .env("LC_ALL", "C");
        let mut stdin = None;
        if let Some(c) = self.credentials {
            if let Some(user) = &c.username {
                cmd.arg("--username").arg(user);
            }
            if let Some(password) = &c.password {
                cmd.arg("--password-from-stdin");
                stdin = Some(password.as_bytes());
            }
        }
        let ssh = self.ssh_command()?;
        if let Some(ssh) = &ssh {
            cmd.env("SVN_SSH", &ssh.line);
            if self.credentials.is_some_and(Credentials::has_ssh_settings) {
                // The user's own `[tunnels] ssh` must not drop the configured key.
                cmd.args(["--config-option", "config:tunnels:ssh=$SVN_SSH ssh --"]);
            }
        }
        cmd.args(args);
        let mut out = output(&mut cmd, stdin).map_err(|e| spawn_error("svn", "Subversion", e))?;
        if let Some(ssh) = &ssh {
            ssh.scrub(&mut out);
            // Advice about `ssh -q`, which this command line does not use.
            let text = String::from_utf8_lossy(&out.stderr);
            if text.contains("remove the -q option") {
                let kept: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.contains("remove the -q option"))
                    .collect();
                out.stderr = kept.join("\n").into_bytes();
            }
        }
        Ok(out)
    }

    /// The ssh command for an `svn+ssh://` URL: Mooring's (see the `ssh` module)
    /// when a key or known-hosts setting is configured, or when the user has not
    /// set `SVN_SSH` (batch mode, and the URL's port); otherwise none.
    fn ssh_command(&self) -> Result<Option<SshCommand>, SourceError> {
        let is_ssh = self
            .url
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("svn+ssh"));
        if !is_ssh {
            return Ok(None);
        }
        let configured = self.credentials.filter(|c| c.has_ssh_settings());
        if configured.is_none() && std::env::var_os("SVN_SSH").is_some() {
            return Ok(None);
        }
        SshCommand::new(configured, &svn_tunnel_args(self.url)).map(Some)
    }

    fn stderr_of(&self, out: &Output) -> String {
        stderr_excerpt(out, self.url, self.credentials)
    }

    fn is_missing(&self, out: &Output) -> bool {
        let stderr = String::from_utf8_lossy(&out.stderr);
        MISSING.iter().any(|code| stderr.contains(code))
    }

    fn failure(&self, action: &str, out: &Output) -> SourceError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ssh_hint = failure_hint(&stderr, self.credentials);
        let hint = if let Some(hint) = &ssh_hint {
            hint.as_str()
        } else if (stderr.contains("E170001") || stderr.contains("E215004"))
            && self.credentials.is_none_or(|c| c.password.is_none())
        {
            " (authentication failed: the server requires a user name and password; configure them)"
        } else if stderr.contains("E170001") || stderr.contains("E215004") {
            " (authentication failed: check the configured user name and password)"
        } else if stderr.contains("E160006") {
            " (the pinned revision does not exist in the repository)"
        } else if stderr.contains("E170013") || stderr.contains("E000111") {
            " (check the URL and that the server is reachable)"
        } else {
            " (check the URL, network access and credentials)"
        };
        SourceError::Tool {
            tool: "svn",
            action: action.to_string(),
            url: self.shown_url(),
            stderr: format!("{}{hint}", self.stderr_of(out)),
        }
    }

    /// `svn info TARGET` (a URL with a peg), or `None` if nothing is there.
    fn info(&self, target: &str) -> Result<Option<Info>, SourceError> {
        let out = self.run(&["info", "--", target])?;
        if !out.status.success() {
            if self.is_missing(&out) {
                return Ok(None);
            }
            return Err(self.failure("info", &out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let number = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
        match (
            field("Node Kind:"),
            number("Last Changed Rev:"),
            number("Revision:"),
        ) {
            (Some(kind), Some(last_changed), Some(revision)) => Ok(Some(Info {
                kind,
                last_changed,
                revision,
            })),
            _ => Err(SourceError::Tool {
                tool: "svn",
                action: "info".to_string(),
                url: self.shown_url(),
                stderr: format!(
                    "unexpected output (no Node Kind / Last Changed Rev): {}",
                    first_line(&redact_url(&text))
                ),
            }),
        }
    }

    /// The first line of the log message of `rev` (for `target`, a URL with a peg
    /// at or after `rev`), or `None` if `svn log` fails.
    fn log_first_line(&self, target: &str, rev: u64) -> Result<Option<String>, SourceError> {
        let rev_arg = rev.to_string();
        let out = self.run(&["log", "-r", &rev_arg, "--", target])?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        // ----, "rN | author | date | K lines", blank line, message, ----
        let message: Vec<&str> = text
            .lines()
            .skip(3)
            .take_while(|l| !(l.len() >= 20 && l.bytes().all(|b| b == b'-')))
            .collect();
        Ok(Some(first_line(&message.join("\n"))))
    }

    /// Entry names of a folder (best effort, for hints).
    fn list(&self, target: &str) -> Vec<String> {
        match self.run(&["list", "--", target]) {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.strip_suffix('/'))
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// What a ref that was not found could have been.
    fn ref_hint(&self, peg: &str) -> String {
        let branches = self.list(&format!("{}@{peg}", self.url_of("branches", "")));
        let tags = self.list(&format!("{}@{peg}", self.url_of("tags", "")));
        if branches.is_empty() && tags.is_empty() {
            return "the ref must be a folder of the repository, such as trunk, branches/NAME \
                    or tags/NAME (or '.' for the URL itself); check it with `svn list`"
                .to_string();
        }
        let prefixed = |prefix: &str, names: Vec<String>| -> Vec<String> {
            names.into_iter().map(|n| format!("{prefix}/{n}")).collect()
        };
        format!(
            "available branches: {}; tags: {}",
            name_list(&prefixed("branches", branches)),
            name_list(&prefixed("tags", tags))
        )
    }

    /// `svn export --ignore-externals TARGET DEST`; `Ok(false)` if nothing is there.
    fn export(&self, target: &str, dest: &Path) -> Result<bool, SourceError> {
        let dest = dest.to_str().ok_or_else(|| {
            SourceError::io(
                format!("cannot export into {}", dest.display()),
                std::io::Error::other("the path is not valid UTF-8"),
            )
        })?;
        let out = self.run(&[
            "export",
            "--quiet",
            "--ignore-externals",
            "--",
            target,
            dest,
        ])?;
        if out.status.success() {
            return Ok(true);
        }
        if self.is_missing(&out) {
            return Ok(false);
        }
        Err(self.failure("export", &out))
    }
}

/// `svn/<first 16 hex of sha256(url)>`.
fn base_dir(root: &Path, url: &str) -> PathBuf {
    root.join("svn").join(short_sha256(url.as_bytes(), 16))
}

fn parse_ref(reference: Option<&str>) -> Result<SvnRef, SourceError> {
    parse_svn_ref(reference.unwrap_or(SVN_DEFAULT_REF))
}

/// The revision of `path` under the ref: its last changed revision.
pub(crate) fn fetch(
    root: &Path,
    url: &str,
    reference: Option<&str>,
    path: &str,
    credentials: Option<&Credentials>,
) -> Result<Revision, SourceError> {
    validate_svn_url(url)?;
    let r = parse_ref(reference)?;
    let svn = Svn::new(url, credentials);
    let peg = r.peg.map_or_else(|| "HEAD".to_string(), |p| p.to_string());
    let target = svn.url_of(&r.path, path);
    let label = r.label();
    let base = base_dir(root, url);
    let info = match resolve_path(&svn, &base, &r, path, &peg)? {
        Some(info) => info,
        None => {
            if !path.is_empty() {
                if let Some(ref_info) = svn.info(&format!("{}@{peg}", svn.url_of(&r.path, "")))? {
                    return Err(SourceError::PathNotFound {
                        path: path.to_string(),
                        location: format!("{} ({label})", svn.shown_url()),
                        revision: format!("r{}", ref_info.revision),
                    });
                }
            }
            return Err(SourceError::NoSuchRef {
                url: svn.shown_url(),
                reference: reference.unwrap_or(SVN_DEFAULT_REF).to_string(),
                hint: svn.ref_hint(&peg),
            });
        }
    };
    let id = info.last_changed;
    fs::create_dir_all(&base)
        .map_err(|e| SourceError::io(format!("cannot create {}", base.display()), e))?;
    // For humans browsing the cache; best effort.
    let _ = fs::write(base.join("url.txt"), format!("{}\n", svn.shown_url()));
    let pinned_target = format!("{target}@{}", info.revision);
    let message = cached_message(&svn, &base, &pinned_target, id)?;
    let describe = match message {
        Some(m) => format!("{label}@r{id} ({m})"),
        None => format!("{label}@r{id}"),
    };
    Ok(Revision {
        id: id.to_string(),
        describe,
        tree: Some(id.to_string()),
    })
}

/// [`Revision::tree`] of `path` under the ref at `revision`: one `svn info`, pegged
/// at the revision the fetch that returned `revision` resolved (see
/// [`recorded_peg`]), else at `revision` itself; `Ok(None)` if nothing is there.
pub(crate) fn path_tree(
    root: &Path,
    url: &str,
    reference: Option<&str>,
    revision: &Revision,
    path: &str,
    credentials: Option<&Credentials>,
) -> Result<Option<String>, SourceError> {
    validate_svn_url(url)?;
    let r = parse_ref(reference)?;
    let svn = Svn::new(url, credentials);
    let rev = revision_number(&svn, revision)?;
    let base = base_dir(root, url);
    let peg = recorded_peg(&base, &r, path, rev).unwrap_or_else(|| rev.to_string());
    Ok(resolve_path(&svn, &base, &r, path, &peg)?.map(|info| info.last_changed.to_string()))
}

/// `svn info` of the folder `REF/PATH@PEG`, for [`fetch`] and [`path_tree`]: the
/// tree (and id) of the path is its last changed revision. `Ok(None)` if nothing is
/// there; [`SourceError::NotADirectory`] if it is not a folder. Records the peg for
/// that last changed revision (see [`recorded_peg`]).
fn resolve_path(
    svn: &Svn<'_>,
    base: &Path,
    r: &SvnRef,
    path: &str,
    peg: &str,
) -> Result<Option<Info>, SourceError> {
    let Some(info) = svn.info(&format!("{}@{peg}", svn.url_of(&r.path, path)))? else {
        return Ok(None);
    };
    if info.kind != "directory" {
        let label = r.label();
        return Err(SourceError::NotADirectory {
            path: if path.is_empty() {
                label.to_string()
            } else {
                path.to_string()
            },
            location: format!("{} ({label})", svn.shown_url()),
            revision: format!("r{}", info.revision),
        });
    }
    let id = info.last_changed.to_string();
    if recorded_peg(base, r, path, &id).is_none() {
        let pegs = base.join("pegs").join(snapshot_key(r, path));
        write_small(&pegs, &id, &info.revision.to_string())?;
    }
    Ok(Some(info))
}

/// The revision number of a Subversion `revision`.
fn revision_number<'r>(svn: &Svn<'_>, revision: &'r Revision) -> Result<&'r str, SourceError> {
    let rev = revision.id.as_str();
    if rev.is_empty() || rev.len() > 19 || !rev.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SourceError::InvalidRevision {
            revision: revision.id.clone(),
            location: svn.shown_url(),
            reason: "a Subversion revision must be a revision number".to_string(),
        });
    }
    Ok(rev)
}

/// The log message's first line of `rev`, from `log/<rev>` or fetched once.
fn cached_message(
    svn: &Svn<'_>,
    base: &Path,
    target: &str,
    rev: u64,
) -> Result<Option<String>, SourceError> {
    let dir = base.join("log");
    let file = dir.join(rev.to_string());
    if let Ok(text) = fs::read_to_string(&file) {
        return Ok(Some(text.trim_end_matches('\n').to_string()));
    }
    let Some(message) = svn.log_first_line(target, rev)? else {
        return Ok(None);
    };
    // Best effort: a cache miss only costs one more `svn log`.
    let _ = write_small(&dir, &rev.to_string(), &message);
    Ok(Some(message))
}

/// Writes `dir/name` (one line) atomically: a temporary file renamed into place.
fn write_small(dir: &Path, name: &str, line: &str) -> Result<(), SourceError> {
    let file = dir.join(name);
    crate::memo::write_file(&file, &format!("{line}\n"))
        .map_err(|e| SourceError::io(format!("cannot write {}", file.display()), e))
}

/// `root` for the ref's root of `.`, else a hash of the ref's path and `path`.
fn snapshot_key(r: &SvnRef, path: &str) -> String {
    if r.path.is_empty() && path.is_empty() {
        "root".to_string()
    } else {
        path_key(&format!("{}\0{path}", r.path))
    }
}

/// The revision a fetch of `path` (or of a folder above it) resolved when it
/// found `rev` as last changed revision.
fn recorded_peg(base: &Path, r: &SvnRef, path: &str, rev: &str) -> Option<String> {
    let mut candidate = path;
    loop {
        let file = base.join("pegs").join(snapshot_key(r, candidate)).join(rev);
        if let Ok(text) = fs::read_to_string(file) {
            let peg = text.trim();
            if !peg.is_empty() && peg.bytes().all(|b| b.is_ascii_digit()) {
                return Some(peg.to_string());
            }
        }
        if candidate.is_empty() {
            return None;
        }
        candidate = candidate.rsplit_once('/').map_or("", |(parent, _)| parent);
    }
}

/// Author, time and message of `revision`: one `svn log -r REV --xml` of the source
/// URL pegged at the revision, kept in `svn/<key>/info/<rev>` (it never changes).
pub(crate) fn revision_info(
    root: &Path,
    url: &str,
    revision: &Revision,
    credentials: Option<&Credentials>,
) -> Result<RevisionInfo, SourceError> {
    validate_svn_url(url)?;
    let svn = Svn::new(url, credentials);
    let rev = revision_number(&svn, revision)?;
    let file = base_dir(root, url).join("info").join(rev);
    if let Some(info) = info::load(&file) {
        return Ok(info);
    }
    let target = format!("{}@{rev}", svn.url_of("", ""));
    let out = svn.run(&["log", "--xml", "-r", rev, "--", &target])?;
    if !out.status.success() {
        return Err(svn.failure("log", &out));
    }
    let xml = String::from_utf8_lossy(&out.stdout);
    if !xml.contains("<logentry") {
        return Err(SourceError::InvalidRevision {
            revision: revision.id.clone(),
            location: svn.shown_url(),
            reason: "svn log shows no such revision for this URL".to_string(),
        });
    }
    let found = RevisionInfo {
        author: xml_element(&xml, "author").and_then(|a| non_empty(&a)),
        time_ms: xml_element(&xml, "date").and_then(|d| rfc3339_utc_ms(&d)),
        message: xml_element(&xml, "msg").map(|m| message(&m)),
    };
    info::store(&file, &found);
    Ok(found)
}

/// Exports `path` under the ref at `revision` into an immutable snapshot.
pub(crate) fn checkout(
    root: &Path,
    url: &str,
    reference: Option<&str>,
    revision: &Revision,
    path: &str,
    credentials: Option<&Credentials>,
) -> Result<Snapshot, SourceError> {
    validate_svn_url(url)?;
    let r = parse_ref(reference)?;
    let svn = Svn::new(url, credentials);
    let rev = revision_number(&svn, revision)?;
    let base = base_dir(root, url);
    let target = base
        .join("snapshots")
        .join(rev)
        .join(snapshot_key(&r, path));
    let snapshot = Snapshot {
        root: target.clone(),
        revision: revision.clone(),
    };
    if target.is_dir() {
        return Ok(snapshot);
    }
    // The revision a fetch of this path (or of a folder above it) resolved; for a
    // revision fetched elsewhere, the path as it was at that revision.
    let peg = recorded_peg(&base, &r, path, rev).unwrap_or_else(|| rev.to_string());
    let source = format!("{}@{peg}", svn.url_of(&r.path, path));
    let location = format!("{} ({})", svn.shown_url(), r.label());
    build_snapshot(&target, |tree| {
        let dest = if path.is_empty() {
            tree.to_path_buf()
        } else {
            tree.join(path)
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| SourceError::io(format!("cannot create {}", parent.display()), e))?;
        }
        if !svn.export(&source, &dest)? {
            return Err(SourceError::PathNotFound {
                path: if path.is_empty() {
                    r.label().to_string()
                } else {
                    path.to_string()
                },
                location: location.clone(),
                revision: format!("r{rev}"),
            });
        }
        if !fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
            return Err(SourceError::NotADirectory {
                path: path.to_string(),
                location: location.clone(),
                revision: format!("r{rev}"),
            });
        }
        Ok(())
    })?;
    Ok(snapshot)
}

/// The URL a working copy was checked out from, if `svn` can tell (local only).
pub(crate) fn working_copy_url(path: &Path) -> Option<String> {
    let mut cmd = Command::new("svn");
    cmd.args(["info", "--non-interactive", "--show-item", "url", "--"])
        .arg(path)
        .env("LC_ALL", "C");
    let out = output(&mut cmd, None).ok()?;
    if !out.status.success() {
        return None;
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!url.is_empty()).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_joined_and_encoded() {
        let svn = Svn::new("svn://h/repo/", None);
        assert_eq!(svn.url_of("trunk", ""), "svn://h/repo/trunk");
        assert_eq!(
            svn.url_of("branches/my x", "apps/a@b"),
            "svn://h/repo/branches/my%20x/apps/a%40b"
        );
        assert_eq!(svn.url_of("", ""), "svn://h/repo");
    }
}
