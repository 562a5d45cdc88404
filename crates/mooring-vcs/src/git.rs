//! The Git process runner and the Git operations the cache needs.
//!
//! Every command is `git` with an argument vector (never a shell) and a hardened
//! environment:
//! - no prompts: `GIT_TERMINAL_PROMPT=0`, `GIT_ASKPASS`/`SSH_ASKPASS` removed,
//!   `core.askPass` emptied, ssh in `BatchMode` unless the user configured their
//!   own ssh command (`GIT_SSH_COMMAND`, `GIT_SSH` or `core.sshCommand`);
//! - stdin is `/dev/null`, `LC_ALL=C` so messages can be matched;
//! - nothing from the repository runs: `core.hooksPath=/dev/null`,
//!   `core.fsmonitor=false`, repositories are created with an empty template;
//! - inherited `GIT_DIR`-style variables are removed so the caller's environment
//!   cannot redirect commands to another repository.
//!
//! The remote URL is written into the cache repository's config file directly
//! (not passed on command lines, where it would show up in process listings),
//! without its user info: a user name and password in an http(s) URL are taken
//! out and handed to Git like configured credentials (configured ones win), so the
//! password reaches neither the config nor `FETCH_HEAD`. All stderr is redacted
//! before it is put into an error.
//!
//! Configured [`Credentials`] reach `git fetch` over http/https through Git's own
//! `credential-store` helper reading a private file (mode 0600 in a 0700 folder
//! under the cache's `.credentials`, see the `private` module) that exists only
//! while the command runs; the user's helpers are
//! reset for that command (`credential.helper=` first). A configured SSH key or
//! known-hosts setting becomes `GIT_SSH_COMMAND` for the commands that talk to the
//! remote (see the `ssh` module), overriding the user's own ssh command.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::credentials::{percent_encode, split_url_credentials, Credentials};
use crate::error::SourceError;
use crate::info::{message, non_empty, RevisionInfo};
use crate::redact::redact_url;
use crate::run::{first_line, output, stderr_excerpt};
use crate::ssh::{failure_hint, SshCommand};

/// Ref that receives the remote's HEAD.
const REMOTE_HEAD: &str = "refs/mooring/remote-HEAD";
/// Prefix of refs that keep explicitly fetched commits alive.
const PINNED: &str = "refs/mooring/pinned/";
/// User name sent with a password-only credential (a token).
const TOKEN_USER: &str = "x-access-token";

/// Environment variables that would point `git` at another repository.
const REPO_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
];

/// A `git` command with Mooring's hardened settings and no repository.
fn base_command() -> Command {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.symlinks=true",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "core.askPass=",
        "-c",
        "core.autocrlf=false",
        "-c",
        "fetch.recurseSubmodules=false",
        "-c",
        "advice.detachedHead=false",
    ]);
    for var in REPO_ENV {
        cmd.env_remove(var);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

fn spawn_error(e: io::Error) -> SourceError {
    if let Some(timeout) = crate::run::timed_out(&e) {
        return timeout;
    }
    if e.kind() == io::ErrorKind::NotFound {
        SourceError::GitMissing { source: e }
    } else {
        SourceError::io("cannot run git", e)
    }
}

/// Whether to force `ssh -o BatchMode=yes`: only when the user has not chosen an
/// ssh command themselves. Checked once per process.
fn force_batch_ssh(git_dir: &Path) -> bool {
    static FORCE: OnceLock<bool> = OnceLock::new();
    *FORCE.get_or_init(|| {
        if std::env::var_os("GIT_SSH_COMMAND").is_some() || std::env::var_os("GIT_SSH").is_some() {
            return false;
        }
        let mut cmd = base_command();
        cmd.arg("--git-dir")
            .arg(git_dir)
            .args(["config", "--get", "core.sshCommand"]);
        // Unset (exit 1) or unreadable: nobody configured one.
        !output(&mut cmd, None).is_ok_and(|o| o.status.success())
    })
}

/// The refs a branch or tag name is resolved from, in order: a branch
/// `refs/heads/X`, else a tag `refs/tags/X`; a full `refs/heads/…` or
/// `refs/tags/…` name is only itself.
pub(crate) fn ref_candidates(reference: &str) -> Vec<String> {
    if reference.starts_with("refs/heads/") || reference.starts_with("refs/tags/") {
        vec![reference.to_string()]
    } else {
        vec![
            format!("refs/heads/{reference}"),
            format!("refs/tags/{reference}"),
        ]
    }
}

/// A commit and the object at a path in it, from [`Repo::commit_and_path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitAndPath {
    /// First line of the commit message.
    pub(crate) subject: String,
    /// Id and type (`tree`, `blob`, `commit` for a submodule) of the object at the
    /// path; `None` if nothing is there.
    pub(crate) object: Option<(String, String)>,
}

/// Reads one answer of `git cat-file --batch` off the front of `rest`:
/// `Some(Some((type, id, contents)))`, `Some(None)` for an object that is missing
/// (or ambiguous), `None` if the output is malformed.
fn batch_object<'o>(rest: &mut &'o [u8]) -> Option<Option<(String, String, &'o [u8])>> {
    let end = rest.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&rest[..end]).ok()?;
    *rest = &rest[end + 1..];
    let mut fields = header.split(' ');
    let (Some(id), Some(kind), Some(size), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        // `<name> missing`, `<name> ambiguous` (a name may hold spaces).
        return Some(None);
    };
    let Ok(size) = size.parse::<usize>() else {
        return Some(None);
    };
    if rest.len() < size + 1 || rest[size] != b'\n' {
        return None;
    }
    let body = &rest[..size];
    *rest = &rest[size + 1..];
    Some(Some((kind.to_string(), id.to_ascii_lowercase(), body)))
}

/// A bare cache repository for one remote URL.
#[derive(Debug)]
pub(crate) struct Repo {
    git_dir: PathBuf,
    /// The remote URL without credentials.
    url: String,
    credentials: Option<Credentials>,
    /// Where temporary credential files go (the `private` module's folder).
    temp_root: PathBuf,
}

/// A `credential-store` file that lives as long as this value.
struct CredentialFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Repo {
    /// A handle on the repository at `git_dir` (which may not exist yet) for the
    /// remote `url`, whose user name and password (if any) become its credentials;
    /// temporary credential files go to `temp_root`.
    pub(crate) fn new(git_dir: PathBuf, url: &str, temp_root: &Path) -> Repo {
        let (url, credentials) = split_url_credentials(url);
        let mut repo = Repo {
            git_dir,
            url,
            credentials: None,
            temp_root: temp_root.to_path_buf(),
        };
        repo.set_credentials(credentials);
        repo
    }

    /// Uses `credentials` for fetches over http/https; a user name and password
    /// the URL carried are used where `credentials` gives none.
    pub(crate) fn with_credentials(mut self, credentials: Option<&Credentials>) -> Repo {
        let Some(mut configured) = credentials.cloned() else {
            return self;
        };
        if let Some(from_url) = self.credentials.take() {
            if configured.username.is_none() && configured.password.is_none() {
                configured.username = from_url.username;
                configured.password = from_url.password;
            }
        }
        self.set_credentials(Some(configured));
        self
    }

    fn set_credentials(&mut self, credentials: Option<Credentials>) {
        self.credentials = credentials.map(|mut c| {
            c.temp_root.get_or_insert_with(|| self.temp_root.clone());
            c
        });
    }

    /// The URL with credentials redacted, for messages.
    pub(crate) fn shown_url(&self) -> String {
        redact_url(&self.url)
    }

    pub(crate) fn exists(&self) -> bool {
        self.git_dir.join("HEAD").is_file() && self.git_dir.join("config").is_file()
    }

    /// Creates the bare repository atomically: built in a temporary directory
    /// next to `git_dir`, configured, then renamed into place. Losing a race to
    /// another process is fine.
    pub(crate) fn create(&self) -> Result<(), SourceError> {
        let parent = self.git_dir.parent().unwrap_or(Path::new("."));
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
        let staging = tmp.path().join("repo.git");
        let mut cmd = base_command();
        cmd.args(["init", "--bare", "--quiet", "--template="])
            .arg(&staging);
        let out = output(&mut cmd, None).map_err(spawn_error)?;
        self.check("init", &out)?;

        let config = staging.join("config");
        let ctx = || format!("cannot write {}", config.display());
        let mut file = OpenOptions::new()
            .append(true)
            .open(&config)
            .map_err(|e| SourceError::io(ctx(), e))?;
        let escaped = self.url.replace('\\', "\\\\").replace('"', "\\\"");
        write!(
            file,
            "[core]\n\tlogAllRefUpdates = false\n[remote \"origin\"]\n\turl = \"{escaped}\"\n"
        )
        .map_err(|e| SourceError::io(ctx(), e))?;
        drop(file);

        match fs::rename(&staging, &self.git_dir) {
            Ok(()) => Ok(()),
            Err(_) if self.exists() => Ok(()),
            Err(e) => Err(SourceError::io(
                format!(
                    "cannot move a new repository into {}",
                    self.git_dir.display()
                ),
                e,
            )),
        }
    }

    /// A hardened `git --git-dir <repo>` command.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = base_command();
        if force_batch_ssh(&self.git_dir) {
            cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        }
        cmd.arg("--git-dir").arg(&self.git_dir);
        cmd
    }

    fn output(&self, args: &[&str]) -> Result<Output, SourceError> {
        output(self.command().args(args), None).map_err(spawn_error)
    }

    /// Runs a command that talks to the remote, with the configured credentials
    /// available to Git through a temporary `credential-store` file.
    fn network_output(&self, args: &[&str]) -> Result<Output, SourceError> {
        let file = self.credential_file()?;
        let ssh = match &self.credentials {
            Some(c) if c.has_ssh_settings() => Some(SshCommand::new(Some(c), &[])?),
            _ => None,
        };
        let mut cmd = self.command();
        if let Some(file) = &file {
            let quoted = file.path.to_string_lossy().replace('\'', "'\\''");
            cmd.args(["-c", "credential.helper="])
                .arg("-c")
                .arg(format!("credential.helper=store --file='{quoted}'"));
        }
        if let Some(ssh) = &ssh {
            // Wins over the user's GIT_SSH, GIT_SSH_COMMAND and core.sshCommand.
            cmd.env("GIT_SSH_COMMAND", &ssh.line);
        }
        let mut out = output(cmd.args(args), None).map_err(spawn_error)?;
        if let Some(ssh) = &ssh {
            ssh.scrub(&mut out);
        }
        drop(file);
        drop(ssh);
        Ok(out)
    }

    /// The credential file for http(s) URLs when credentials are configured.
    fn credential_file(&self) -> Result<Option<CredentialFile>, SourceError> {
        let Some(creds) = &self.credentials else {
            return Ok(None);
        };
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return Ok(None);
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Ok(None);
        }
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let user = creds.username.as_deref().unwrap_or(TOKEN_USER);
        let entry = match &creds.password {
            Some(p) => format!(
                "{scheme}://{}:{}@{host}\n",
                percent_encode(user),
                percent_encode(p)
            ),
            None => format!("{scheme}://{}@{host}\n", percent_encode(user)),
        };
        let dir = mooring_private::tempdir(creds.temp_root.as_deref(), "git")
            .map_err(|e| SourceError::io("cannot create a temporary credential directory", e))?;
        let path = dir.path().join("store");
        let ctx = || format!("cannot write {}", path.display());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| SourceError::io(ctx(), e))?;
        file.write_all(entry.as_bytes())
            .map_err(|e| SourceError::io(ctx(), e))?;
        Ok(Some(CredentialFile { _dir: dir, path }))
    }

    /// Git's stderr, redacted and trimmed to a readable size.
    pub(crate) fn stderr_of(&self, out: &Output) -> String {
        stderr_excerpt(out, &self.url, self.credentials.as_ref())
    }

    fn check(&self, action: &str, out: &Output) -> Result<String, SourceError> {
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(SourceError::Git {
                action: action.to_string(),
                url: self.shown_url(),
                stderr: self.stderr_of(out),
            })
        }
    }

    fn run(&self, action: &str, args: &[&str]) -> Result<String, SourceError> {
        let out = self.output(args)?;
        self.check(action, &out)
    }

    /// Fetches all branches and tags (pruning deleted ones), plus the remote HEAD
    /// when `with_head`. Incremental: only missing objects are transferred.
    pub(crate) fn fetch_all(&self, with_head: bool) -> Result<(), SourceError> {
        let head_refspec = format!("+HEAD:{REMOTE_HEAD}");
        let mut args = vec![
            "fetch",
            "--quiet",
            "--prune",
            "--no-tags",
            "origin",
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ];
        if with_head {
            args.push(&head_refspec);
        }
        let out = self.network_output(&args)?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = self.stderr_of(&out);
        if with_head && stderr.contains("couldn't find remote ref HEAD") {
            return Err(SourceError::NoRemoteHead {
                url: self.shown_url(),
                stderr,
            });
        }
        Err(self.network_failure("fetch", stderr))
    }

    /// The error for a failed command that talked to the remote.
    fn network_failure(&self, action: &str, stderr: String) -> SourceError {
        let hint = failure_hint(&stderr, self.credentials.as_ref()).unwrap_or_else(|| {
            " (check the URL, network access and credentials; credentials can come from \
             a Git credential helper or ssh-agent, or be configured for the source)"
                .to_string()
        });
        SourceError::Git {
            action: action.to_string(),
            url: self.shown_url(),
            stderr: format!("{stderr}{hint}"),
        }
    }

    /// Whether a fetch for `reference` (a branch or tag name, or `None` for the
    /// remote HEAD; not a commit id) can be skipped, decided by one `git ls-remote`:
    /// the commit the remote advertises for the ref when the cache already agrees
    /// with the remote on every ref that matters, `None` (fetch) otherwise. The
    /// refs that matter are the ref's [candidates](ref_candidates) (for HEAD,
    /// `refs/mooring/remote-HEAD` against the remote's `HEAD`) and every tag, since
    /// verification reads tags; other branches may be stale until the next fetch
    /// (which also prunes deleted ones), and nothing reads them before it. A ref the
    /// remote does not have is `None` too: the fetch then reports it with the list of
    /// branches and tags.
    ///
    /// For a named ref the listing is limited to branches and tags (protocol v2
    /// sends only those); for HEAD it is the whole listing, as with
    /// `git ls-remote URL HEAD`. The returned id is peeled (an annotated tag's
    /// commit) but not checked to be a commit.
    pub(crate) fn unchanged_tip(
        &self,
        reference: Option<&str>,
    ) -> Result<Option<String>, SourceError> {
        let (args, watched): (&[&str], Vec<String>) = match reference {
            // `HEAD` is under no prefix `--heads`/`--tags` could ask for.
            None => (&["ls-remote", "origin"], vec!["HEAD".to_string()]),
            Some(r) => (
                &["ls-remote", "--heads", "--tags", "origin"],
                ref_candidates(r),
            ),
        };
        let matters =
            |name: &str| name.starts_with("refs/tags/") || watched.iter().any(|w| w == name);

        let out = self.network_output(args)?;
        if !out.status.success() {
            return Err(self.network_failure("ls-remote", self.stderr_of(&out)));
        }
        let listing = String::from_utf8_lossy(&out.stdout);
        let mut remote = BTreeMap::new();
        let mut peeled = BTreeMap::new();
        for line in listing.lines() {
            let Some((id, name)) = line.split_once('\t') else {
                continue;
            };
            let id = id.trim().to_ascii_lowercase();
            if let Some(base) = name.strip_suffix("^{}") {
                peeled.insert(base, id);
            } else if matters(name) {
                remote.insert(name, id);
            }
        }
        let Some(tip) = watched.iter().find(|w| remote.contains_key(w.as_str())) else {
            return Ok(None);
        };

        let mut patterns = vec!["refs/tags"];
        for w in &watched {
            match w.as_str() {
                "HEAD" => patterns.push(REMOTE_HEAD),
                w if !w.starts_with("refs/tags/") => patterns.push(w),
                _ => {}
            }
        }
        let mut args = vec!["for-each-ref", "--format=%(objectname) %(refname)"];
        args.extend(patterns);
        let text = self.run("for-each-ref", &args)?;
        let mut local = BTreeMap::new();
        for line in text.lines() {
            let Some((id, name)) = line.split_once(' ') else {
                continue;
            };
            let name = if name == REMOTE_HEAD { "HEAD" } else { name };
            if matters(name) {
                local.insert(name, id.trim().to_ascii_lowercase());
            }
        }
        if local != remote {
            return Ok(None);
        }
        let commit = peeled.get(tip.as_str()).unwrap_or(&remote[tip.as_str()]);
        Ok(Some(commit.clone()))
    }

    /// Fetches one commit by id (for commits no branch or tag points at) and pins
    /// it under `refs/mooring/pinned/` so it survives pruning.
    pub(crate) fn fetch_commit(&self, commit: &str) -> Result<(), SourceError> {
        let refspec = format!("+{commit}:{PINNED}{commit}");
        let out = self.network_output(&["fetch", "--quiet", "--no-tags", "origin", &refspec])?;
        if out.status.success() {
            return Ok(());
        }
        Err(SourceError::CommitNotFound {
            url: self.shown_url(),
            commit: commit.to_string(),
            detail: format!(
                "it is not reachable from any branch or tag, and fetching it directly failed: {}; \
                 check the id and that it was pushed",
                self.stderr_of(&out)
            ),
        })
    }

    /// Author, author time and whole message of `commit` (a full id in the cache
    /// repository), from one local `git log`.
    pub(crate) fn revision_info(&self, commit: &str) -> Result<RevisionInfo, SourceError> {
        let text = self.run(
            "log",
            &[
                "-c",
                "log.showSignature=false",
                "log",
                "-1",
                "--no-walk",
                "--format=%aN%x00%aE%x00%at%x00%B",
                commit,
                "--",
            ],
        )?;
        let mut parts = text.splitn(4, '\0');
        let (name, email, time, body) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let author = match (non_empty(name), non_empty(email)) {
            (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
            (n, e) => n.or(e),
        };
        Ok(RevisionInfo {
            author,
            time_ms: time.trim().parse::<i64>().ok().map(|s| s * 1000),
            message: Some(message(body)),
        })
    }

    /// Whether commit `ancestor` is `of` or one of its ancestors (both full ids, in
    /// the cache).
    pub(crate) fn is_ancestor(&self, ancestor: &str, of: &str) -> Result<bool, SourceError> {
        let out = self.output(&["merge-base", "--is-ancestor", ancestor, of])?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => self.check("merge-base", &out).map(|_| false),
        }
    }

    /// Whether `commit` (a full id) is present as a commit.
    pub(crate) fn has_commit(&self, commit: &str) -> Result<bool, SourceError> {
        let object = format!("{commit}^{{commit}}");
        Ok(self.output(&["cat-file", "-e", &object])?.status.success())
    }

    /// Resolves a full ref name (e.g. `refs/heads/main`) to a commit id.
    pub(crate) fn resolve(&self, full_ref: &str) -> Result<Option<String>, SourceError> {
        let spec = format!("{full_ref}^{{commit}}");
        let out = self.output(&["rev-parse", "--verify", "--quiet", &spec])?;
        if !out.status.success() {
            return Ok(None);
        }
        let id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .to_ascii_lowercase();
        Ok(Some(id))
    }

    /// Branch and tag names, most recently committed first.
    pub(crate) fn list_refs(&self) -> Result<(Vec<String>, Vec<String>), SourceError> {
        let text = self.run(
            "for-each-ref",
            &[
                "for-each-ref",
                "--sort=-committerdate",
                "--format=%(refname)",
                "refs/heads",
                "refs/tags",
            ],
        )?;
        let mut branches = Vec::new();
        let mut tags = Vec::new();
        for line in text.lines() {
            if let Some(b) = line.strip_prefix("refs/heads/") {
                branches.push(b.to_string());
            } else if let Some(t) = line.strip_prefix("refs/tags/") {
                tags.push(t.to_string());
            }
        }
        Ok((branches, tags))
    }

    /// What one `git cat-file --batch` tells about `commit` and `<commit>:<path>`
    /// (the root tree for `""`): `Ok(None)` if `commit` is not a commit in this
    /// repository.
    pub(crate) fn commit_and_path(
        &self,
        commit: &str,
        path: &str,
    ) -> Result<Option<CommitAndPath>, SourceError> {
        let input = format!("{commit}\n{commit}:{path}\n");
        let out = output(
            self.command().args(["cat-file", "--batch"]),
            Some(input.as_bytes()),
        )
        .map_err(spawn_error)?;
        self.check("cat-file", &out)?;
        let malformed = || SourceError::Git {
            action: "cat-file".to_string(),
            url: self.shown_url(),
            stderr: "unexpected output of git cat-file --batch".to_string(),
        };
        let mut rest = out.stdout.as_slice();
        let Some((kind, _, body)) = batch_object(&mut rest).ok_or_else(malformed)? else {
            return Ok(None);
        };
        if kind != "commit" {
            return Ok(None);
        }
        let raw = String::from_utf8_lossy(body);
        let message = raw.split_once("\n\n").map_or("", |(_, m)| m);
        let object = batch_object(&mut rest)
            .ok_or_else(malformed)?
            .map(|(kind, id, _)| (id, kind));
        Ok(Some(CommitAndPath {
            subject: first_line(message),
            object,
        }))
    }

    /// The object type at `<commit>:<path>` (`tree`, `blob`, …), or `None` if
    /// there is nothing at that path.
    pub(crate) fn object_type(
        &self,
        commit: &str,
        path: &str,
    ) -> Result<Option<String>, SourceError> {
        let object = format!("{commit}:{path}");
        let out = self.output(&["cat-file", "-t", &object])?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    }

    /// Writes `path` (or everything, for `""`) of `commit` into the empty
    /// directory `tree`, using a private index file at `index`.
    pub(crate) fn materialize(
        &self,
        commit: &str,
        path: &str,
        tree: &Path,
        index: &Path,
    ) -> Result<(), SourceError> {
        let pathspec = if path.is_empty() { "." } else { path };
        let mut cmd = self.command();
        cmd.arg("--work-tree")
            .arg(tree)
            .args([
                "--literal-pathspecs",
                "checkout",
                "--quiet",
                commit,
                "--",
                pathspec,
            ])
            .env("GIT_INDEX_FILE", index)
            .current_dir(tree);
        let out = output(&mut cmd, None).map_err(spawn_error)?;
        self.check("checkout", &out).map(|_| ())
    }
}
