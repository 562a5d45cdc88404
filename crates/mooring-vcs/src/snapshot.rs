//! The values every backend shares, a leaf below `cache` and the git, svn, hg and dir
//! backends: [`Revision`] (an immutable id of a source's content), [`Snapshot`] (its
//! file tree on disk), the key of a path in the cache's folders ([`path_key`]), and
//! [`build_snapshot`], which puts a snapshot in place atomically.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dir::short_sha256;
use crate::error::SourceError;

/// How long a fetch waits for another process fetching the same repository.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// An immutable id of a source's content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision {
    /// Full commit id for Git; the Subversion revision number (`"1234"`: the last
    /// changed revision of the fetched path); the full Mercurial changeset id;
    /// `sha256:<hex>` for a plain directory (of the fetched path).
    pub id: String,
    /// Human-readable form: `main@1a2b3c4 (commit subject)` for Git (`HEAD@…`
    /// for the remote's default branch, `1a2b3c4 (…)` for a commit id),
    /// `trunk@r1234 (log message)` for Subversion, `default@1a2b3c4d5e6f
    /// (description)` for Mercurial, `dir sha256:1a2b3c4d5e6f` for a directory.
    pub describe: String,
    /// Content identity of the requested path: equal trees mean nothing under the
    /// path changed. Git: the tree id of the path; Subversion: the path's last
    /// changed revision (same as `id`); Mercurial: a hash of the manifest entries
    /// (file nodes, modes) under the path; directory: the content hash (same as
    /// `id`). Only compare trees of the same source and path. `None` when unknown
    /// (a `Revision` built by hand). [`Cache::path_tree`] gives the tree of any
    /// other path at the same revision.
    pub tree: Option<String>,
}

/// The file tree of a source at a revision, on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Folder holding the tree; join the requested path to it. For Git this is
    /// an immutable cache directory that contains only the requested path; for
    /// a plain directory it is the directory itself.
    pub root: PathBuf,
    /// The revision the tree belongs to.
    pub revision: Revision,
}

/// `root` for the whole source, `sub-<first 16 hex of sha256(path)>` otherwise.
pub(crate) fn path_key(path: &str) -> String {
    if path.is_empty() {
        "root".to_string()
    } else {
        format!("sub-{}", short_sha256(path.as_bytes(), 16))
    }
}

/// Builds the snapshot `target` atomically: `fill` is given a path that does not
/// exist yet, inside a fresh staging directory next to `target` (its parent
/// exists), and must create the tree there; it is then renamed to `target`. The
/// staging directory is removed in every case. If another process finished the
/// same snapshot first, theirs is kept.
pub(crate) fn build_snapshot(
    target: &Path,
    fill: impl FnOnce(&Path) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)
        .map_err(|e| SourceError::io(format!("cannot create {}", parent.display()), e))?;
    let staging = tempfile::Builder::new()
        .prefix(".tmp-")
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
    let tree = staging.path().join("tree");
    fill(&tree)?;
    match fs::rename(&tree, target) {
        Ok(()) => Ok(()),
        // Another process finished the same snapshot first.
        Err(_) if target.is_dir() => Ok(()),
        Err(e) => Err(SourceError::io(
            format!("cannot move snapshot into {}", target.display()),
            e,
        )),
    }
}
