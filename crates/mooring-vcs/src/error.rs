//! The error type of the source layer.
//!
//! Every message says what went wrong, where (always with a redacted URL), and
//! what to do about it. URLs and tool stderr stored in these variants are already
//! redacted (and scrubbed of any configured password), so `Debug` and `Display` are
//! both safe to log.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while parsing, fetching or checking out a source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source string is not a usable directory or repository URL.
    #[error("invalid source '{input}': {reason}")]
    InvalidSource {
        /// The source as given (redacted).
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A local source path does not exist.
    #[error(
        "source {} does not exist; pass an existing directory, a local Git or Mercurial \
         repository, a Git URL (https://, ssh://, git://, file://, user@host:path), \
         a Subversion URL (svn://, svn+ssh://, svn+https://, svn+file://) or a Mercurial \
         URL (hg+https://, hg+ssh://, hg+file://)",
        path.display()
    )]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },

    /// `--ref` was given for a plain directory.
    #[error(
        "--ref {reference} cannot be used with {}: it is a plain directory, not a \
         repository; drop --ref, or point the source at a Git, Subversion or Mercurial \
         repository",
        path.display()
    )]
    RefWithDir {
        /// The directory.
        path: PathBuf,
        /// The ref that was given.
        reference: String,
    },

    /// The ref is syntactically unusable.
    #[error("invalid ref '{reference}': {reason}")]
    InvalidRef {
        /// The ref as given.
        reference: String,
        /// Why it was rejected, and what would be accepted.
        reason: String,
    },

    /// The path inside the source is unusable (absolute, `..`, …).
    #[error("invalid path '{path}': {reason}; use a relative folder inside the source, such as apps/web")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The `git` executable could not be started.
    #[error("could not run `git` ({source}); install Git and make sure it is on PATH")]
    GitMissing {
        /// The spawn error.
        #[source]
        source: io::Error,
    },

    /// A Git command failed.
    #[error("git {action} failed for {url}: {stderr}")]
    Git {
        /// What was being done, e.g. `fetch`.
        action: String,
        /// The redacted repository URL.
        url: String,
        /// Git's (redacted, trimmed) stderr, plus a hint where one is known.
        stderr: String,
    },

    /// An `svn` or `hg` command failed.
    #[error("{tool} {action} failed for {url}: {stderr}")]
    Tool {
        /// The executable, `svn` or `hg`.
        tool: &'static str,
        /// What was being done, e.g. `info` or `pull`.
        action: String,
        /// The redacted repository URL.
        url: String,
        /// The tool's (redacted, trimmed) stderr, plus a hint where one is known.
        stderr: String,
    },

    /// The `svn` or `hg` executable could not be started.
    #[error(
        "could not run `{tool}` ({source}); install {package} and make sure `{tool}` is on PATH"
    )]
    ToolMissing {
        /// The executable.
        tool: &'static str,
        /// The software to install.
        package: &'static str,
        /// The spawn error.
        #[source]
        source: io::Error,
    },

    /// A Subversion or Mercurial ref did not resolve.
    #[error("ref '{reference}' not found in {url}; {hint}")]
    NoSuchRef {
        /// The redacted repository URL.
        url: String,
        /// The ref as given.
        reference: String,
        /// What exists instead, or what to check.
        hint: String,
    },

    /// A local path is a Subversion working copy, which is not a source.
    #[error(
        "{} is a Subversion working copy, not a repository; Mooring reads repositories, \
         so pass the repository URL instead{}",
        path.display(),
        checked_out_from(url)
    )]
    SvnWorkingCopy {
        /// The working copy.
        path: PathBuf,
        /// The (redacted) URL it was checked out from, when `svn info` could tell.
        url: Option<String>,
    },

    /// The configured credentials cannot be used (the values are never shown).
    #[error("invalid credentials: {reason}")]
    InvalidCredentials {
        /// What is wrong with them.
        reason: String,
    },

    /// A branch or tag name did not resolve.
    #[error(
        "ref '{reference}' not found in {url} (looked for branch refs/heads/{reference} \
         and tag refs/tags/{reference}); {}",
        available_refs(reference, branches, tags)
    )]
    RefNotFound {
        /// The redacted repository URL.
        url: String,
        /// The ref as given.
        reference: String,
        /// Branch names available in the repository.
        branches: Vec<String>,
        /// Tag names available in the repository.
        tags: Vec<String>,
    },

    /// A commit id is not available (not in the cache and not fetchable).
    #[error("commit {commit} not found in {url}: {detail}")]
    CommitNotFound {
        /// The redacted repository URL.
        url: String,
        /// The commit id.
        commit: String,
        /// What was tried and what to do.
        detail: String,
    },

    /// The remote has no usable HEAD (empty repository or dangling default branch).
    #[error(
        "{url} has no default branch (its HEAD does not point at a commit); \
         pass --ref with a branch, tag or commit id: {stderr}"
    )]
    NoRemoteHead {
        /// The redacted repository URL.
        url: String,
        /// Git's redacted stderr.
        stderr: String,
    },

    /// The requested path does not exist in the source at that revision.
    #[error("path {path} not found in {location} at {revision}; check --path against the repository layout")]
    PathNotFound {
        /// The (normalized) path.
        path: String,
        /// The redacted URL or directory.
        location: String,
        /// The commit id or content hash.
        revision: String,
    },

    /// The requested path exists but is not a directory.
    #[error(
        "path {path} in {location} at {revision} is not a directory; --path must name a folder"
    )]
    NotADirectory {
        /// The (normalized) path.
        path: String,
        /// The redacted URL or directory.
        location: String,
        /// The commit id or content hash.
        revision: String,
    },

    /// A revision id does not fit the source kind.
    #[error("revision '{revision}' cannot be used with {location}: {reason}")]
    InvalidRevision {
        /// The revision id given.
        revision: String,
        /// The redacted URL or directory.
        location: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The per-repository lock could not be taken in time.
    #[error(
        "timed out after {waited_secs}s waiting for lock {}: another operation on this \
         repository (in this or another mooring process) holds it; retry when it finishes",
        path.display()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited_secs: u64,
    },

    /// A tool process ran past its bound; it was killed with its process group.
    #[error(
        "{command} did not finish within {after:?} and was stopped; check that the server \
         answers (network, firewall, server load), or give the source more time with \
         `timeout:` in its source settings"
    )]
    Timeout {
        /// The tool and its subcommand (e.g. `git fetch`), nothing more: no URL, no
        /// credentials.
        command: String,
        /// The bound it ran past.
        after: Duration,
    },

    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, including the path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl SourceError {
    /// Builds an [`SourceError::Io`] with a context message.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> SourceError {
        SourceError::Io {
            context: context.into(),
            source,
        }
    }
}

fn checked_out_from(url: &Option<String>) -> String {
    match url {
        Some(url) => format!(" (this working copy is checked out from {url})"),
        None => String::new(),
    }
}

/// How many names of each kind an error message lists.
const LIST_LIMIT: usize = 8;

fn available_refs(reference: &str, branches: &[String], tags: &[String]) -> String {
    let mut out = if branches.is_empty() && tags.is_empty() {
        "the repository has no branches or tags".to_string()
    } else {
        format!(
            "available branches: {}; tags: {}",
            name_list(branches),
            name_list(tags)
        )
    };
    if (4..7).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push_str("; an abbreviated commit id needs at least 7 digits");
    } else if crate::spec::is_commit_prefix(reference) {
        out.push_str("; no fetched commit starts with it, or more than one does: give more digits or the full commit id");
    }
    out
}

pub(crate) fn name_list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".to_string();
    }
    let shown: Vec<&str> = names.iter().take(LIST_LIMIT).map(String::as_str).collect();
    let mut out = shown.join(", ");
    if names.len() > LIST_LIMIT {
        out.push_str(&format!(" … and {} more", names.len() - LIST_LIMIT));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_not_found_lists_a_few_names() {
        let branches: Vec<String> = (0..10).map(|i| format!("b{i}")).collect();
        let err = SourceError::RefNotFound {
            url: "https://host/r".into(),
            reference: "nope".into(),
            branches,
            tags: vec![],
        };
        let msg = err.to_string();
        assert!(
            msg.contains("ref 'nope' not found in https://host/r"),
            "{msg}"
        );
        assert!(msg.contains("b0, b1"), "{msg}");
        assert!(msg.contains("and 2 more"), "{msg}");
        assert!(msg.contains("tags: (none)"), "{msg}");
        assert!(!msg.contains("abbreviated"), "{msg}");
    }

    #[test]
    fn ref_not_found_hints_at_abbreviated_ids() {
        let err = SourceError::RefNotFound {
            url: "https://host/r".into(),
            reference: "1a2b3c4".into(),
            branches: vec![],
            tags: vec![],
        };
        let msg = err.to_string();
        assert!(msg.contains("no branches or tags"), "{msg}");
        assert!(
            msg.contains("give more digits or the full commit id"),
            "{msg}"
        );
        let err = SourceError::RefNotFound {
            url: "https://host/r".into(),
            reference: "1a2b".into(),
            branches: vec![],
            tags: vec![],
        };
        assert!(err.to_string().contains("at least 7 digits"), "{err}");
    }
}
