//! [`Cache`]: fetching sources and materializing snapshots under
//! `<data_dir>/sources`, handing out [`Revision`]s and [`Snapshot`]s (their own leaf
//! module, `snapshot`, shared with the backends). Each backend has its
//! module — `git_cache` (Git), `svn`, `hg`; plain folders are read in place here —
//! and commit verification is in `verify`.
//!
//! Concurrency: fetches of one Git or Mercurial repository are serialized by a lock
//! directory (see the `lock` module; Subversion keeps no local repository);
//! snapshots are built in a temporary directory next to their final place and
//! renamed into place atomically ([`build_snapshot`]), so a crash never leaves a
//! half-written snapshot and concurrent checkouts of the same snapshot are
//! harmless.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::credentials::Credentials;
use crate::dir::hash_tree;
use crate::error::SourceError;
use crate::git_cache::GitCache;
use crate::info::RevisionInfo;
use crate::run::{scope, Timeouts};
pub use crate::snapshot::{Revision, Snapshot};
use crate::spec::{normalize_subpath, SourceSpec};
use crate::verify::{self, Verified, VerifyError, VerifyPolicy};
use crate::{hg, svn};

/// The on-disk source cache, rooted at `<data_dir>/sources`.
///
/// `Debug` shows whether credentials are set, never the password.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    credentials: Option<Credentials>,
    timeouts: Timeouts,
}

/// The folder under the cache root that temporary credential files live in (see
/// `mooring_private`).
pub(crate) const CREDENTIALS_DIR: &str = ".credentials";

impl Cache {
    /// A cache under `data_dir/sources`. Nothing is created until it is used.
    pub fn new(data_dir: &Path) -> Cache {
        let root = data_dir.join("sources");
        // Credential files a killed process left behind go now.
        mooring_private::clean(&root.join(CREDENTIALS_DIR));
        Cache {
            root,
            credentials: None,
            timeouts: Timeouts::default(),
        }
    }

    /// The same cache, with every tool process it runs bounded by `timeout` (polls
    /// also by the default poll bound); see [`Timeouts`].
    pub fn with_timeout(mut self, timeout: Duration) -> Cache {
        self.timeouts = Timeouts::within(timeout);
        self
    }

    /// The same cache, using `credentials` for every source it fetches (Git over
    /// http/https, Subversion, Mercurial over http/https; plain directories ignore
    /// them). Build one `Cache` per source that needs its own credentials; they
    /// share the folders under `data_dir/sources`. See the `credentials` module for
    /// how each tool receives them: never on a command line.
    pub fn with_credentials(mut self, mut credentials: Credentials) -> Cache {
        credentials.temp_root = Some(self.temp_root());
        self.credentials = Some(credentials);
        self
    }

    /// Where temporary credential files go (see `mooring_private`).
    fn temp_root(&self) -> PathBuf {
        self.root.join(CREDENTIALS_DIR)
    }

    /// The place of a Git remote in this cache (the URL checked).
    fn git(&self, url: &str) -> Result<GitCache, SourceError> {
        GitCache::new(&self.root, url, &self.temp_root())
    }

    /// The cache root, `<data_dir>/sources`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn credentials(&self) -> Result<Option<&Credentials>, SourceError> {
        if let Some(c) = &self.credentials {
            c.validate()?;
        }
        Ok(self.credentials.as_ref())
    }

    /// Brings the source up to date and returns its current revision; the same
    /// as [`Cache::fetch_path`] with the path `""` (the whole source, or for
    /// Subversion the whole ref).
    pub fn fetch(&self, spec: &SourceSpec) -> Result<Revision, SourceError> {
        self.fetch_path(spec, "")
    }

    /// Brings the source up to date and returns the revision of `path` (a folder
    /// relative to the source root, `""` for everything), with
    /// [`Revision::tree`] set; `path` must exist and be a folder.
    ///
    /// - Git: fetches all branches and tags (incrementally, into a bare cache
    ///   repository; prunes deleted ones) and resolves the ref: a branch
    ///   `refs/heads/X`, else a tag `refs/tags/X`; a full commit id already in the
    ///   cache needs no network at all, otherwise it is fetched directly if no
    ///   branch or tag contains it; no ref means the remote's HEAD. The id is the
    ///   commit, the tree the Git tree id of `path` in it. Once the cache has the
    ///   repository, a poll starts with one `git ls-remote`: when the remote
    ///   advertises the ref (and every tag) exactly as the cache has them, nothing
    ///   is fetched; other branches are then brought up to date (and deleted ones
    ///   pruned) by the next fetch that does happen.
    /// - Subversion: one `svn info` of `URL/REF/PATH@PEG`; the id (and tree) is
    ///   the last changed revision of that path, so commits elsewhere do not change
    ///   it. Such a revision is only meaningful for checking out `path` (or a
    ///   folder below it).
    /// - Mercurial: one `hg identify --rev REF` asks the remote what the ref
    ///   (branch, bookmark or tag; default `default`) is now; a changeset the local
    ///   cache repository already has needs no pull, otherwise `hg pull`
    ///   (incremental) brings it. The first fetch pulls directly; a ref the remote
    ///   does not know is pulled and resolved locally (to list the names there are).
    ///   A changeset id already in the cache needs no network.
    /// - Directory: hashes `path` inside the directory (see the `dir` module).
    ///
    /// The tree and subject of a commit (or changeset) never change, so they are
    /// remembered on disk once known (see the `memo` module): a poll that finds
    /// nothing new runs `git ls-remote` and one local `git for-each-ref`, or only
    /// `hg identify`.
    pub fn fetch_path(&self, spec: &SourceSpec, path: &str) -> Result<Revision, SourceError> {
        let path = normalize_subpath(path)?;
        let _bounds = scope(self.timeouts);
        let credentials = self.credentials()?;
        match spec {
            SourceSpec::Git { url, reference } => {
                self.git(url)?
                    .fetch(reference.as_deref(), &path, credentials)
            }
            SourceSpec::Svn { url, reference } => {
                svn::fetch(&self.root, url, reference.as_deref(), &path, credentials)
            }
            SourceSpec::Hg { url, reference } => {
                hg::fetch(&self.root, url, reference.as_deref(), &path, credentials)
            }
            SourceSpec::Dir { path: dir } => fetch_dir(dir, &path),
        }
    }

    /// Content identity of `path` (a folder relative to the source root, `""` for
    /// everything) at an already fetched `revision`, without fetching: the same
    /// value [`Cache::fetch_path`]`(spec, path)` puts in [`Revision::tree`] (both
    /// share the code computing it). Lets a caller that fetched a source once (path
    /// `""`) tell, for each app path, whether anything under it changed. `Ok(None)`
    /// when nothing is at `path` in that revision; a file there is
    /// [`SourceError::NotADirectory`], as for `fetch_path`.
    ///
    /// - Git: the tree id at `<commit>:<path>` in the cache repository, no network;
    ///   the commit must have been fetched into this cache.
    /// - Mercurial: the hash of the manifest entries under `path` in the local cache
    ///   repository, no network; the changeset must have been fetched into this
    ///   cache.
    /// - Subversion (no local mirror): one `svn info` of `URL/REF/PATH`, pegged at
    ///   the revision the fetch that returned `revision` resolved (else at
    ///   `revision` itself, as [`Cache::checkout`] does); the tree is the path's last
    ///   changed revision, which is also recorded so that it can be checked out as
    ///   the revision of `path`.
    /// - Directory: the content hash of the folder. A directory keeps no history, so
    ///   this is its *current* content, whatever `revision`.
    pub fn path_tree(
        &self,
        spec: &SourceSpec,
        revision: &Revision,
        path: &str,
    ) -> Result<Option<String>, SourceError> {
        let path = normalize_subpath(path)?;
        let _bounds = scope(self.timeouts);
        let credentials = self.credentials()?;
        match spec {
            SourceSpec::Git { url, .. } => self.git(url)?.path_tree(revision, &path),
            SourceSpec::Svn { url, reference } => svn::path_tree(
                &self.root,
                url,
                reference.as_deref(),
                revision,
                &path,
                credentials,
            ),
            SourceSpec::Hg { url, .. } => {
                hg::path_tree(&self.root, url, revision, &path, credentials)
            }
            SourceSpec::Dir { path: dir } => dir_tree(dir, &path),
        }
    }

    /// Materializes `path` (a folder relative to the source root; `""` or `"."`
    /// for everything) of `revision` and returns where it is: join `path` to
    /// [`Snapshot::root`].
    ///
    /// Git, Subversion and Mercurial: writes only that folder into
    /// `<kind>/<key>/snapshots/<revision>/<pathkey>/`, reusing it if it already
    /// exists; symlinks are kept as symlinks. Git and Mercurial revisions must
    /// have been fetched into this cache; Subversion exports from the server
    /// (`svn export --ignore-externals`). Directory: the directory itself (not a
    /// copy; it is checked that `path` exists in it).
    ///
    /// `path` must not be absolute or contain `..`.
    pub fn checkout(
        &self,
        spec: &SourceSpec,
        revision: &Revision,
        path: &str,
    ) -> Result<Snapshot, SourceError> {
        let path = normalize_subpath(path)?;
        let _bounds = scope(self.timeouts);
        let credentials = self.credentials()?;
        match spec {
            SourceSpec::Git { url, .. } => self.git(url)?.checkout(revision, &path),
            SourceSpec::Svn { url, reference } => svn::checkout(
                &self.root,
                url,
                reference.as_deref(),
                revision,
                &path,
                credentials,
            ),
            SourceSpec::Hg { url, .. } => {
                hg::checkout(&self.root, url, revision, &path, credentials)
            }
            SourceSpec::Dir { path: dir } => {
                let location = dir.display().to_string();
                if !dir.is_dir() {
                    return Err(SourceError::NotFound { path: dir.clone() });
                }
                let target = dir.join(&path);
                match fs::metadata(&target) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => {
                        return Err(SourceError::NotADirectory {
                            path,
                            location,
                            revision: revision.id.clone(),
                        })
                    }
                    Err(_) => {
                        return Err(SourceError::PathNotFound {
                            path,
                            location,
                            revision: revision.id.clone(),
                        })
                    }
                }
                Ok(Snapshot {
                    root: dir.clone(),
                    revision: revision.clone(),
                })
            }
        }
    }

    /// Who made `revision`, when, and its whole message (see the `info` module),
    /// for display.
    ///
    /// - Git and Mercurial: read from the cache repository, no network; the
    ///   revision must have been fetched into this cache.
    /// - Subversion (no local mirror): one `svn log --xml` of the source URL at the
    ///   revision, the first time; the answer is kept in the cache.
    /// - Directory: nothing is known, every field is `None`.
    pub fn revision_info(
        &self,
        spec: &SourceSpec,
        revision: &Revision,
    ) -> Result<RevisionInfo, SourceError> {
        let _bounds = scope(self.timeouts);
        let credentials = self.credentials()?;
        match spec {
            SourceSpec::Git { url, .. } => self.git(url)?.revision_info(revision),
            SourceSpec::Svn { url, .. } => {
                svn::revision_info(&self.root, url, revision, credentials)
            }
            SourceSpec::Hg { url, .. } => hg::revision_info(&self.root, url, revision, credentials),
            SourceSpec::Dir { .. } => Ok(RevisionInfo::default()),
        }
    }

    /// Whether `ancestor` is `of` or in its history (both fetched into this cache): a
    /// Git or Mercurial ancestor; for Subversion, whose revisions are of the one path
    /// the spec names, an older or equal revision number; for a folder, the same one.
    pub fn is_ancestor(
        &self,
        spec: &SourceSpec,
        ancestor: &Revision,
        of: &Revision,
    ) -> Result<bool, SourceError> {
        match spec {
            SourceSpec::Git { url, .. } => self.git(url)?.is_ancestor(ancestor, of),
            SourceSpec::Hg { url, .. } => {
                hg::is_ancestor(&self.root, url, ancestor, of, self.credentials()?)
            }
            SourceSpec::Svn { .. } => {
                let number = |r: &Revision| r.id.parse::<u64>().ok();
                Ok(matches!((number(ancestor), number(of)), (Some(a), Some(b)) if a <= b))
            }
            SourceSpec::Dir { .. } => Ok(ancestor.id == of.id),
        }
    }

    /// Checks that `revision` of a Git source is signed as `policy` requires; see
    /// the `verify` module. The revision must have been fetched into this cache
    /// (tags come from the last fetch). Other source kinds are refused.
    pub fn verify(
        &self,
        spec: &SourceSpec,
        revision: &Revision,
        policy: &VerifyPolicy,
    ) -> Result<Verified, VerifyError> {
        let _bounds = scope(self.timeouts);
        match spec {
            SourceSpec::Git { url, reference } => {
                let repo = self.git(url).map_err(VerifyError::Source)?.repo();
                verify::verify(&repo, reference.as_deref(), revision, policy)
            }
            other => Err(VerifyError::Unsupported {
                spec: other.to_string(),
            }),
        }
    }
}

/// The revision of `path` inside a plain directory: its content hash.
fn fetch_dir(dir: &Path, path: &str) -> Result<Revision, SourceError> {
    let Some(id) = dir_tree(dir, path)? else {
        return Err(SourceError::PathNotFound {
            path: path.to_string(),
            location: dir.display().to_string(),
            revision: "its current content".to_string(),
        });
    };
    let short = id.get(..19).unwrap_or(&id);
    Ok(Revision {
        describe: format!("dir {short}"),
        tree: Some(id.clone()),
        id,
    })
}

/// [`Revision::tree`] of `path` inside the plain directory `dir`: the content hash
/// of the folder as it is now. `Ok(None)` if nothing is there;
/// [`SourceError::NotADirectory`] if it is not a folder.
fn dir_tree(dir: &Path, path: &str) -> Result<Option<String>, SourceError> {
    if !dir.is_dir() {
        return Err(SourceError::NotFound {
            path: dir.to_path_buf(),
        });
    }
    let target = dir.join(path);
    match fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => hash_tree(&target).map(Some),
        Ok(_) => Err(SourceError::NotADirectory {
            path: path.to_string(),
            location: dir.display().to_string(),
            revision: "its current content".to_string(),
        }),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(SourceError::io(
            format!("cannot access {}", target.display()),
            e,
        )),
    }
}
