//! The Mercurial backend, through the `hg` command line.
//!
//! Each URL gets a local repository (`hg init`, then incremental `hg pull`) under
//! `hg/<key>/repo`; refs are resolved locally with `hg log -r 'SYMBOL'` (a quoted
//! revset symbol, so a ref can never be a revset expression), and snapshots are
//! `hg archive`s of one folder at one changeset under
//! `hg/<key>/snapshots/<node>/<pathkey>/`, built in a temporary directory and renamed
//! into place.
//!
//! Every `hg` process costs a Python start-up (a few hundred milliseconds), so a poll
//! runs as few as it can: once the cache repository exists, one `hg identify --rev
//! REF` asks the remote what the ref is now, and a changeset the cache already has
//! needs no pull; the subject and tree of a changeset, which never change, are
//! remembered under `hg/<key>/meta/` (the `memo` module), so a poll that finds
//! nothing new runs that one process and nothing else.
//!
//! Nothing from a repository's configuration is ever used, and no prompt can appear:
//! every command runs with `HGRCPATH` pointing at a private temporary file (mode 0600,
//! in the cache's `.credentials` folder: see the `private` module) written for that command — so neither system nor user configuration applies —
//! and `HGRCSKIPREPO=1`, so no repository's `.hg/hgrc` is read, neither the cache's
//! nor, for a local source, the source repository's (whose hooks would otherwise run
//! when pulling from it). That file sets `ui.interactive=false`, ssh in batch mode,
//! `subrepos.allowed=false`, `ui.archivemeta=false`, the URL as path `mooring` (so
//! it never appears on a command line), `ui.ssh` (Mooring's ssh command, see the
//! `ssh` module: batch mode, and for an `ssh://` URL the configured key and
//! known-hosts file) and, when configured, credentials in an `[auth]` section. Also
//! `HGPLAIN=1` and `LC_ALL=C` for stable output.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::credentials::Credentials;
use crate::dir::{short_sha256, to_hex};
use crate::error::{name_list, SourceError};
use crate::info::{message, non_empty, RevisionInfo};
use crate::lock::DirLock;
use crate::memo::{Facts, Memo};
use crate::redact::redact_url;
use crate::run::{first_line, output, spawn_error, stderr_excerpt};
use crate::snapshot::{build_snapshot, path_key, Revision, Snapshot, LOCK_TIMEOUT};
use crate::spec::{validate_hg_ref, validate_hg_url, HG_DEFAULT_REF};
use crate::ssh::{failure_hint, SshCommand};

/// A changeset resolved from a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Changeset {
    node: String,
    subject: String,
}

/// One file of a changeset's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// File node, mode and type (`@` link, `*` executable), as one string.
    meta: String,
    path: String,
}

/// The local cache repository of one Mercurial URL.
struct HgRepo<'a> {
    dir: PathBuf,
    url: &'a str,
    credentials: Option<&'a Credentials>,
    /// Where the per-command configuration goes (the `private` module's folder).
    temp_root: PathBuf,
}

impl<'a> HgRepo<'a> {
    /// The error for a changeset the cache repository does not hold.
    fn not_fetched(&self, node: &str) -> SourceError {
        SourceError::CommitNotFound {
            url: self.shown_url(),
            commit: node.to_string(),
            detail: "it is not in the local cache; fetch the source first".to_string(),
        }
    }

    fn shown_url(&self) -> String {
        redact_url(self.url)
    }

    fn exists(&self) -> bool {
        self.dir.join(".hg").join("requires").is_file()
    }

    /// The private configuration for one command (see the module docs).
    fn config_file(&self, ssh: &SshCommand) -> Result<tempfile::NamedTempFile, SourceError> {
        let mut text = format!(
            "[ui]\ninteractive = false\nssh = {}\narchivemeta = false\n\
             [subrepos]\nallowed = false\n",
            ssh.line
        );
        text.push_str(&format!("[paths]\nmooring = {}\n", self.url));
        if let Some(c) = self.credentials {
            text.push_str("[auth]\nmooring.prefix = *\nmooring.schemes = http https\n");
            if let Some(user) = &c.username {
                text.push_str(&format!("mooring.username = {user}\n"));
            }
            if let Some(password) = &c.password {
                text.push_str(&format!("mooring.password = {password}\n"));
            }
        }
        // Mode 0600, in the private folder cleaned after a crash.
        let mut file = mooring_private::tempfile(Some(&self.temp_root), "hgrc")
            .map_err(|e| SourceError::io("cannot create a temporary hg configuration", e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| SourceError::io("cannot write a temporary hg configuration", e))?;
        Ok(file)
    }

    /// Runs `hg ARGS` (against the cache repository when `in_repo`).
    fn run_raw(&self, in_repo: bool, args: &[&str]) -> Result<Output, SourceError> {
        // A configured key is only written out for the commands that reach an ssh
        // URL.
        let remote = matches!(args.first(), Some(&"pull") | Some(&"identify"));
        let configured = self
            .credentials
            .filter(|c| remote && c.has_ssh_settings() && self.url.starts_with("ssh://"));
        let ssh = SshCommand::new(configured, &[])?;
        let config = self.config_file(&ssh)?;
        let mut cmd = Command::new("hg");
        cmd.env("HGRCPATH", config.path())
            .env("HGRCSKIPREPO", "1")
            .env("HGPLAIN", "1")
            .env_remove("HGPLAINEXCEPT")
            .env("HGENCODING", "utf-8")
            .env("LC_ALL", "C")
            .arg("--noninteractive");
        if in_repo {
            cmd.arg("--repository").arg(&self.dir);
        }
        cmd.args(args);
        let mut out = output(&mut cmd, None).map_err(|e| spawn_error("hg", "Mercurial", e))?;
        ssh.scrub(&mut out);
        drop(config);
        drop(ssh);
        Ok(out)
    }

    fn run(&self, args: &[&str]) -> Result<Output, SourceError> {
        self.run_raw(true, args)
    }

    fn failure(&self, action: &str, out: &Output, hint: &str) -> SourceError {
        SourceError::Tool {
            tool: "hg",
            action: action.to_string(),
            url: self.shown_url(),
            stderr: format!("{}{hint}", stderr_excerpt(out, self.url, self.credentials)),
        }
    }

    fn checked(&self, action: &str, args: &[&str]) -> Result<String, SourceError> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(self.failure(action, &out, ""));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates the repository atomically (`hg init` in a temporary directory next
    /// to it, then a rename). Losing a race to another process is fine.
    fn create(&self) -> Result<(), SourceError> {
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".init-")
            .tempdir_in(parent)
            .map_err(|e| {
                SourceError::io(
                    format!(
                        "cannot create a temporary directory in {}",
                        parent.display()
                    ),
                    e,
                )
            })?;
        let staging = tmp.path().join("repo");
        let staging_str = staging.to_str().ok_or_else(|| {
            SourceError::io(
                format!("cannot create {}", staging.display()),
                std::io::Error::other("the path is not valid UTF-8"),
            )
        })?;
        let out = self.run_raw(false, &["init", "--", staging_str])?;
        if !out.status.success() {
            return Err(self.failure("init", &out, ""));
        }
        match fs::rename(&staging, &self.dir) {
            Ok(()) => Ok(()),
            Err(_) if self.exists() => Ok(()),
            Err(e) => Err(SourceError::io(
                format!("cannot move a new repository into {}", self.dir.display()),
                e,
            )),
        }
    }

    /// `hg pull`: incremental, all branches, bookmarks and tags.
    fn pull(&self) -> Result<(), SourceError> {
        let out = self.run(&["pull", "--quiet", "mooring"])?;
        if out.status.success() {
            return Ok(());
        }
        Err(self.network_failure("pull", &out))
    }

    /// The error for a failed command that talked to the remote, with a hint.
    fn network_failure(&self, action: &str, out: &Output) -> SourceError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ssh_hint = failure_hint(&stderr, self.credentials);
        let hint = if let Some(hint) = &ssh_hint {
            hint.as_str()
        } else if stderr.contains("authorization required")
            && self.credentials.is_none_or(|c| c.password.is_none())
        {
            " (the server requires authentication: configure a user name and password)"
        } else if stderr.contains("authorization") || stderr.contains("401") {
            " (authentication failed: check the configured user name and password)"
        } else {
            " (check the URL, network access and credentials)"
        };
        self.failure(action, out, hint)
    }

    /// What the remote resolves a ref (branch, bookmark or tag) to now, with one
    /// `hg identify --rev REF` against it (the same configuration, credentials and
    /// path alias as `hg pull`); `Ok(None)` if it does not know the ref. A remote
    /// server looks the name up itself (no revset); a local repository is read
    /// directly, with the name quoted as for [`HgRepo::resolve`].
    fn identify(&self, symbol: &str) -> Result<Option<String>, SourceError> {
        let quoted;
        let rev = if self.url.contains("://") {
            symbol
        } else {
            quoted = format!("'{symbol}'");
            &quoted
        };
        let out = self.run(&["identify", "--rev", rev, "--template", "{id}\n", "mooring"])?;
        if !out.status.success() {
            if unknown_revision(&out) {
                return Ok(None);
            }
            return Err(self.network_failure("identify", &out));
        }
        let node = String::from_utf8_lossy(&out.stdout)
            .trim()
            .to_ascii_lowercase();
        Ok(is_node(&node).then_some(node))
    }

    /// Resolves a ref (branch, bookmark, tag or changeset id) locally.
    fn resolve(&self, symbol: &str) -> Result<Option<Changeset>, SourceError> {
        let revset = format!("'{symbol}'");
        let out = self.run(&[
            "log",
            "--rev",
            &revset,
            "--limit",
            "1",
            "--template",
            "{node}\n{desc}",
        ])?;
        if !out.status.success() {
            if unknown_revision(&out) {
                return Ok(None);
            }
            return Err(self.failure("log", &out, ""));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let (node, desc) = text.split_once('\n').unwrap_or((&text, ""));
        let node = node.trim().to_ascii_lowercase();
        if !is_node(&node) {
            return Ok(None);
        }
        Ok(Some(Changeset {
            node,
            subject: first_line(desc),
        }))
    }

    /// Branch (including closed ones), bookmark and tag names, for hints.
    fn names(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let list = |args: &[&str]| -> Vec<String> {
            match self.run(args) {
                Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.is_empty() && *l != "tip")
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            }
        };
        (
            list(&["branches", "--closed", "--template", "{branch}\n"]),
            list(&["bookmarks", "--template", "{bookmark}\n"]),
            list(&["tags", "--template", "{tag}\n"]),
        )
    }

    /// The files of a changeset, or `None` if the repository does not have it.
    fn manifest(&self, node: &str) -> Result<Option<Vec<Entry>>, SourceError> {
        let out = self.run(&[
            "manifest",
            "--rev",
            node,
            "--template",
            "{hash} {mode} {type}\t{path}\n",
        ])?;
        if !out.status.success() {
            if unknown_revision(&out) {
                return Ok(None);
            }
            return Err(self.failure("manifest", &out, ""));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(Some(
            text.lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(meta, path)| Entry {
                    meta: meta.to_string(),
                    path: path.to_string(),
                })
                .collect(),
        ))
    }

    /// [`Revision::tree`] of `path` in the manifest `entries` of `node`: a hash of
    /// the entries (file node, mode, type, path) under it; `Ok(None)` if there are
    /// none (except for `""`, the whole repository); `NotADirectory` if `path` is a
    /// file.
    fn tree(
        &self,
        entries: &[Entry],
        node: &str,
        path: &str,
    ) -> Result<Option<String>, SourceError> {
        let under = entries_under(entries, path).map_err(|()| SourceError::NotADirectory {
            path: path.to_string(),
            location: self.shown_url(),
            revision: node.to_string(),
        })?;
        if !path.is_empty() && under.is_empty() {
            return Ok(None);
        }
        Ok(Some(tree_hash(&under)))
    }

    /// `hg archive` of `path` (everything for `""`) at `node` into `dest`, which
    /// must not exist yet.
    fn archive(&self, node: &str, path: &str, dest: &Path) -> Result<(), SourceError> {
        let dest = dest.to_str().ok_or_else(|| {
            SourceError::io(
                format!("cannot archive into {}", dest.display()),
                std::io::Error::other("the path is not valid UTF-8"),
            )
        })?;
        let include = format!("path:{path}");
        let mut args = vec!["archive", "--quiet", "--rev", node, "--type", "files"];
        if !path.is_empty() {
            args.extend(["--include", &include]);
        }
        args.extend(["--", dest]);
        self.checked("archive", &args).map(|_| ())
    }
}

/// Whether `hg` failed because the revision is not in the repository.
fn unknown_revision(out: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr);
    [
        "unknown revision",
        "ambiguous identifier",
        "filtered revision",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

/// A full Mercurial changeset id.
fn is_node(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Manifest entries under `path` (all for `""`); `Err` if `path` is a file.
fn entries_under<'e>(entries: &'e [Entry], path: &str) -> Result<Vec<&'e Entry>, ()> {
    if path.is_empty() {
        return Ok(entries.iter().collect());
    }
    if entries.iter().any(|e| e.path == path) {
        return Err(());
    }
    let prefix = format!("{path}/");
    Ok(entries
        .iter()
        .filter(|e| e.path.starts_with(&prefix))
        .collect())
}

/// A hash of manifest entries, `sha256:<hex>`.
fn tree_hash(entries: &[&Entry]) -> String {
    let mut hasher = Sha256::new();
    for entry in entries {
        for part in [&entry.meta, &entry.path] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    format!("sha256:{}", to_hex(&hasher.finalize()))
}

/// `hg/<first 16 hex of sha256(url)>`.
fn base_dir(root: &Path, url: &str) -> PathBuf {
    root.join("hg").join(short_sha256(url.as_bytes(), 16))
}

/// Pulls and resolves the ref; the tree is a hash of the manifest entries (file
/// node, mode, type, path) under `path`.
pub(crate) fn fetch(
    root: &Path,
    url: &str,
    reference: Option<&str>,
    path: &str,
    credentials: Option<&Credentials>,
) -> Result<Revision, SourceError> {
    validate_hg_url(url)?;
    let symbol = reference.unwrap_or(HG_DEFAULT_REF);
    validate_hg_ref(symbol)?;
    let base = base_dir(root, url);
    fs::create_dir_all(&base)
        .map_err(|e| SourceError::io(format!("cannot create {}", base.display()), e))?;
    let _lock = DirLock::acquire(&base.join("lock"), LOCK_TIMEOUT)?;
    let repo = HgRepo {
        dir: base.join("repo"),
        url,
        credentials,
        temp_root: root.join(crate::cache::CREDENTIALS_DIR),
    };
    let memo = Memo::new(base.join("meta"));
    let fresh = !repo.exists();
    if fresh {
        memo.clear();
        repo.create()?;
    }
    // For humans browsing the cache; best effort.
    let _ = fs::write(base.join("url.txt"), format!("{}\n", repo.shown_url()));

    let by_id = is_node(symbol);
    let (node, facts) = if by_id {
        let node = symbol.to_ascii_lowercase();
        // Remembered: the changeset is in the cache, nothing to run.
        match memo.get(&node, path) {
            Some(facts) => (node, facts),
            None => {
                let changeset = match repo.resolve(&node)? {
                    Some(c) => c,
                    None => {
                        repo.pull()?;
                        repo.resolve(&node)?
                            .ok_or_else(|| SourceError::CommitNotFound {
                                url: repo.shown_url(),
                                commit: node.clone(),
                                detail: "no such changeset after pulling; check the id and \
                                         that it was pushed"
                                    .to_string(),
                            })?
                    }
                };
                let facts = hg_facts(&repo, &memo, &changeset, path)?;
                (changeset.node, facts)
            }
        }
    } else {
        // One `hg identify` asks the remote what the ref is now; a changeset the
        // cache already has needs no pull (and, remembered, no other hg process).
        let remote = if fresh { None } else { repo.identify(symbol)? };
        match remote.as_deref().and_then(|n| memo.get(n, path)) {
            Some(facts) => (remote.unwrap_or_default(), facts),
            None => {
                let mut changeset = match remote.as_deref() {
                    Some(n) => repo.resolve(n)?,
                    None => None,
                };
                if changeset.is_none() {
                    repo.pull()?;
                    // What the remote said, else (it did not know the ref, or moved
                    // it meanwhile) the ref as the pull left it.
                    if let Some(n) = remote.as_deref() {
                        changeset = repo.resolve(n)?;
                    }
                    if changeset.is_none() {
                        changeset = repo.resolve(symbol)?;
                    }
                }
                let Some(changeset) = changeset else {
                    return Err(no_such_ref(&repo, symbol));
                };
                let facts = hg_facts(&repo, &memo, &changeset, path)?;
                (changeset.node, facts)
            }
        }
    };

    let short = &node[..12];
    let describe = if by_id {
        format!("{short} ({})", facts.subject)
    } else {
        format!("{symbol}@{short} ({})", facts.subject)
    };
    Ok(Revision {
        id: node,
        describe,
        tree: Some(facts.tree),
    })
}

/// The error for a ref the (freshly pulled) cache repository does not have, with
/// the names it does have.
fn no_such_ref(repo: &HgRepo<'_>, symbol: &str) -> SourceError {
    let (branches, bookmarks, tags) = repo.names();
    let hint = if branches.is_empty() && bookmarks.is_empty() && tags.is_empty() {
        "the repository has no changesets".to_string()
    } else {
        format!(
            "available branches: {}; bookmarks: {}; tags: {}",
            name_list(&branches),
            name_list(&bookmarks),
            name_list(&tags)
        )
    };
    SourceError::NoSuchRef {
        url: repo.shown_url(),
        reference: symbol.to_string(),
        hint,
    }
}

/// [`Revision::tree`] of `path` in a changeset of the cache repository and its
/// subject: remembered in `memo`, else from its manifest, then remembered.
fn hg_facts(
    repo: &HgRepo<'_>,
    memo: &Memo,
    changeset: &Changeset,
    path: &str,
) -> Result<Facts, SourceError> {
    if let Some(facts) = memo.get(&changeset.node, path) {
        return Ok(facts);
    }
    let entries = repo
        .manifest(&changeset.node)?
        .ok_or_else(|| SourceError::CommitNotFound {
            url: repo.shown_url(),
            commit: changeset.node.clone(),
            detail: "the changeset vanished from the cache while reading it".to_string(),
        })?;
    let Some(tree) = repo.tree(&entries, &changeset.node, path)? else {
        return Err(SourceError::PathNotFound {
            path: path.to_string(),
            location: repo.shown_url(),
            revision: changeset.node.clone(),
        });
    };
    let facts = Facts {
        tree,
        subject: changeset.subject.clone(),
    };
    memo.put(&changeset.node, path, &facts);
    Ok(facts)
}

/// [`Revision::tree`] of `path` at a changeset already in the cache repository,
/// from its manifest (no network); `Ok(None)` if nothing is under `path`.
pub(crate) fn path_tree(
    root: &Path,
    url: &str,
    revision: &Revision,
    path: &str,
    credentials: Option<&Credentials>,
) -> Result<Option<String>, SourceError> {
    validate_hg_url(url)?;
    let base = base_dir(root, url);
    let repo = HgRepo {
        dir: base.join("repo"),
        url,
        credentials,
        temp_root: root.join(crate::cache::CREDENTIALS_DIR),
    };
    let node = node_of(&repo, revision)?;
    if let Some(facts) = Memo::new(base.join("meta")).get(&node, path) {
        return Ok(Some(facts.tree));
    }
    let not_fetched = || repo.not_fetched(&node);
    if !repo.exists() {
        return Err(not_fetched());
    }
    let entries = repo.manifest(&node)?.ok_or_else(not_fetched)?;
    repo.tree(&entries, &node, path)
}

/// The full changeset id of a Mercurial `revision`, lower-cased.
fn node_of(repo: &HgRepo<'_>, revision: &Revision) -> Result<String, SourceError> {
    let node = revision.id.to_ascii_lowercase();
    if !is_node(&node) {
        return Err(SourceError::InvalidRevision {
            revision: revision.id.clone(),
            location: repo.shown_url(),
            reason: "a Mercurial revision must be a full changeset id (40 hex digits)".to_string(),
        });
    }
    Ok(node)
}

/// Author, date and description of a changeset in the cache repository, from one
/// local `hg log` (no network).
pub(crate) fn revision_info(
    root: &Path,
    url: &str,
    revision: &Revision,
    credentials: Option<&Credentials>,
) -> Result<RevisionInfo, SourceError> {
    let (repo, node) = cached(root, url, revision, credentials)?;
    let not_fetched = || repo.not_fetched(&node);
    // A user name cannot hold a newline (hg refuses it), the date is one line.
    let out = repo.run(&[
        "log",
        "--rev",
        &node,
        "--template",
        "{author}\n{date|hgdate}\n{desc}",
    ])?;
    if !out.status.success() {
        if unknown_revision(&out) {
            return Err(not_fetched());
        }
        return Err(repo.failure("log", &out, ""));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.splitn(3, '\n');
    let (author, date, desc) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let seconds = date
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<i64>().ok());
    Ok(RevisionInfo {
        author: non_empty(author),
        time_ms: seconds.map(|s| s * 1000),
        message: Some(message(desc)),
    })
}

/// The cache repository of `url` and the changeset id of `revision`, which must have
/// been fetched into it.
fn cached<'a>(
    root: &Path,
    url: &'a str,
    revision: &Revision,
    credentials: Option<&'a Credentials>,
) -> Result<(HgRepo<'a>, String), SourceError> {
    validate_hg_url(url)?;
    let repo = HgRepo {
        dir: base_dir(root, url).join("repo"),
        url,
        credentials,
        temp_root: root.join(crate::cache::CREDENTIALS_DIR),
    };
    let node = node_of(&repo, revision)?;
    if !repo.exists() {
        return Err(repo.not_fetched(&node));
    }
    Ok((repo, node))
}

/// Whether changeset `ancestor` is `of` or one of its ancestors, from one local
/// `hg log` (no network; both must be in the cache).
pub(crate) fn is_ancestor(
    root: &Path,
    url: &str,
    ancestor: &Revision,
    of: &Revision,
    credentials: Option<&Credentials>,
) -> Result<bool, SourceError> {
    let (repo, a) = cached(root, url, ancestor, credentials)?;
    let b = node_of(&repo, of)?;
    // Both are validated 40-hex ids: the revset holds nothing else.
    let revset = format!("{a} and ancestors({b})");
    let out = repo.run(&["log", "--rev", &revset, "--template", "{node}"])?;
    if !out.status.success() {
        if unknown_revision(&out) {
            return Err(repo.not_fetched(&a));
        }
        return Err(repo.failure("log", &out, ""));
    }
    Ok(!out.stdout.is_empty())
}

/// Archives `path` of the changeset into an immutable snapshot.
pub(crate) fn checkout(
    root: &Path,
    url: &str,
    revision: &Revision,
    path: &str,
    credentials: Option<&Credentials>,
) -> Result<Snapshot, SourceError> {
    validate_hg_url(url)?;
    let base = base_dir(root, url);
    let repo = HgRepo {
        dir: base.join("repo"),
        url,
        credentials,
        temp_root: root.join(crate::cache::CREDENTIALS_DIR),
    };
    let node = node_of(&repo, revision)?;
    let target = base.join("snapshots").join(&node).join(path_key(path));
    let snapshot = Snapshot {
        root: target.clone(),
        revision: revision.clone(),
    };
    if target.is_dir() {
        return Ok(snapshot);
    }
    let not_fetched = || repo.not_fetched(&node);
    if !repo.exists() {
        return Err(not_fetched());
    }
    let entries = repo.manifest(&node)?.ok_or_else(not_fetched)?;
    let under = entries_under(&entries, path).map_err(|()| SourceError::NotADirectory {
        path: path.to_string(),
        location: repo.shown_url(),
        revision: node.clone(),
    })?;
    if !path.is_empty() && under.is_empty() {
        return Err(SourceError::PathNotFound {
            path: path.to_string(),
            location: repo.shown_url(),
            revision: node,
        });
    }
    let empty = under.is_empty();
    build_snapshot(&target, |tree| {
        if empty {
            // `hg archive` refuses to write nothing.
            return fs::create_dir(tree)
                .map_err(|e| SourceError::io(format!("cannot create {}", tree.display()), e));
        }
        repo.archive(&node, path, tree)
    })?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry {
        Entry {
            meta: "x 644 ".into(),
            path: path.into(),
        }
    }

    #[test]
    fn entries_under_a_folder() {
        let entries = vec![entry("apps/blog/a"), entry("apps/blogger"), entry("README")];
        assert_eq!(entries_under(&entries, "").unwrap().len(), 3);
        let blog = entries_under(&entries, "apps/blog").unwrap();
        assert_eq!(blog.len(), 1);
        assert_eq!(blog[0].path, "apps/blog/a");
        assert!(entries_under(&entries, "README").is_err());
        assert!(entries_under(&entries, "nope").unwrap().is_empty());
    }
}
