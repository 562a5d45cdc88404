//! [`Cache`]: fetching sources and materializing snapshots under
//! `<data_dir>/sources`, handing out [`Revision`]s and [`Snapshot`]s (their own leaf
//! module, `snapshot`, shared with the backends). The Git backend's cache logic lives
//! here; Subversion and Mercurial are in the `svn`
//! and `hg` modules, commit verification in `verify`.
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

use crate::credentials::{split_url_credentials, Credentials};
use crate::dir::{hash_tree, short_sha256};
use crate::error::SourceError;
use crate::git::{ref_candidates, Repo};
use crate::info::RevisionInfo;
use crate::lock::DirLock;
use crate::memo::{Facts, Memo};
use crate::run::{scope, Timeouts};
use crate::snapshot::{build_snapshot, path_key, LOCK_TIMEOUT};
pub use crate::snapshot::{Revision, Snapshot};
use crate::spec::{is_commit_id, normalize_subpath, validate_git_url, validate_ref, SourceSpec};
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

impl Cache {
    /// A cache under `data_dir/sources`. Nothing is created until it is used.
    pub fn new(data_dir: &Path) -> Cache {
        let root = data_dir.join("sources");
        // Credential files a killed process left behind go now.
        crate::private::clean(&root.join(crate::private::DIR));
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

    /// Where temporary credential files go (see the `private` module).
    fn temp_root(&self) -> PathBuf {
        self.root.join(crate::private::DIR)
    }

    /// The cache repository of a Git remote.
    fn git_repo(&self, url: &str) -> Repo {
        Repo::new(self.git_base(url).join("repo.git"), url, &self.temp_root())
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
                self.fetch_git(url, reference.as_deref(), &path, credentials)
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
            SourceSpec::Git { url, .. } => self.path_tree_git(url, revision, &path),
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
            SourceSpec::Git { url, .. } => self.checkout_git(url, revision, &path),
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
            SourceSpec::Git { url, .. } => {
                validate_git_url(url)?;
                let repo = self.git_repo(url);
                let commit = git_commit_id(&repo, revision)?;
                if !repo.exists() || !repo.has_commit(&commit)? {
                    return Err(SourceError::CommitNotFound {
                        url: repo.shown_url(),
                        commit,
                        detail: "it is not in the local cache; fetch the source first".to_string(),
                    });
                }
                repo.revision_info(&commit)
            }
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
            SourceSpec::Git { url, .. } => {
                validate_git_url(url)?;
                let repo = self.git_repo(url);
                let (a, b) = (git_commit_id(&repo, ancestor)?, git_commit_id(&repo, of)?);
                repo.is_ancestor(&a, &b)
            }
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
                validate_git_url(url).map_err(VerifyError::Source)?;
                let repo = self.git_repo(url);
                verify::verify(&repo, reference.as_deref(), revision, policy)
            }
            other => Err(VerifyError::Unsupported {
                spec: other.to_string(),
            }),
        }
    }

    /// `git/<first 16 hex of sha256(url)>`, of the URL without credentials.
    fn git_base(&self, url: &str) -> PathBuf {
        let (url, _) = split_url_credentials(url);
        self.root.join("git").join(short_sha256(url.as_bytes(), 16))
    }

    /// Removes the cache repository an earlier version kept for `url` when `url`
    /// carries credentials: it was keyed by the whole URL and its config held the
    /// password in clear.
    fn remove_cache_keyed_by_credentials(&self, url: &str) -> Result<(), SourceError> {
        let (clean, credentials) = split_url_credentials(url);
        if credentials.is_none() || clean == url {
            return Ok(());
        }
        let old = self.root.join("git").join(short_sha256(url.as_bytes(), 16));
        match fs::remove_dir_all(&old) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(SourceError::io(
                format!("cannot remove the old cache repository {}", old.display()),
                e,
            )),
            _ => Ok(()),
        }
    }

    fn fetch_git(
        &self,
        url: &str,
        reference: Option<&str>,
        path: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Revision, SourceError> {
        validate_git_url(url)?;
        if let Some(r) = reference {
            validate_ref(r)?;
        }
        self.remove_cache_keyed_by_credentials(url)?;
        let base = self.git_base(url);
        fs::create_dir_all(&base)
            .map_err(|e| SourceError::io(format!("cannot create {}", base.display()), e))?;
        let _lock = DirLock::acquire(&base.join("lock"), LOCK_TIMEOUT)?;
        let repo = self.git_repo(url).with_credentials(credentials);
        let memo = Memo::new(base.join("meta"));
        let fresh = !repo.exists();
        if fresh {
            memo.clear();
            repo.create()?;
        }
        // For humans browsing the cache; best effort.
        let _ = fs::write(base.join("url.txt"), format!("{}\n", repo.shown_url()));

        let by_id = reference.is_some_and(is_commit_id);
        // A poll of a branch, a tag or the remote HEAD: one `git ls-remote` tells
        // whether the fetch would bring anything that matters; if not, the cache
        // answers alone. (A commit id the cache has needs no network at all.)
        let mut known = None;
        if !fresh && !by_id {
            if let Some(commit) = repo.unchanged_tip(reference)? {
                // Not a commit (an odd ref): the fetch below reports it as before.
                known = match git_path(&repo, &memo, &commit, path)? {
                    GitPath::NotACommit => None,
                    found => Some((commit, found)),
                };
            }
        }
        let (commit, found) = match known {
            Some(known) => known,
            None => {
                let commit = fetch_and_resolve(&repo, reference)?;
                let found = git_path(&repo, &memo, &commit, path)?;
                (commit, found)
            }
        };
        let facts = match found {
            GitPath::Tree(facts) => facts,
            GitPath::Missing => {
                return Err(SourceError::PathNotFound {
                    path: path.to_string(),
                    location: repo.shown_url(),
                    revision: commit,
                })
            }
            GitPath::NotACommit => {
                return Err(SourceError::CommitNotFound {
                    url: repo.shown_url(),
                    commit,
                    detail: "the fetched object is not a commit".to_string(),
                })
            }
        };

        let short = commit.get(..7).unwrap_or(&commit);
        let describe = match reference {
            None => format!("HEAD@{short} ({})", facts.subject),
            Some(_) if by_id => format!("{short} ({})", facts.subject),
            Some(r) => format!("{r}@{short} ({})", facts.subject),
        };
        Ok(Revision {
            id: commit,
            describe,
            tree: Some(facts.tree),
        })
    }

    fn path_tree_git(
        &self,
        url: &str,
        revision: &Revision,
        path: &str,
    ) -> Result<Option<String>, SourceError> {
        validate_git_url(url)?;
        let base = self.git_base(url);
        let repo = self.git_repo(url);
        let commit = git_commit_id(&repo, revision)?;
        let not_fetched = || SourceError::CommitNotFound {
            url: repo.shown_url(),
            commit: commit.clone(),
            detail: "it is not in the local cache; fetch the source first".to_string(),
        };
        if !repo.exists() {
            return Err(not_fetched());
        }
        match git_path(&repo, &Memo::new(base.join("meta")), &commit, path)? {
            GitPath::Tree(facts) => Ok(Some(facts.tree)),
            GitPath::Missing => Ok(None),
            GitPath::NotACommit => Err(not_fetched()),
        }
    }

    fn checkout_git(
        &self,
        url: &str,
        revision: &Revision,
        path: &str,
    ) -> Result<Snapshot, SourceError> {
        validate_git_url(url)?;
        let base = self.git_base(url);
        let repo = self.git_repo(url);
        let commit = git_commit_id(&repo, revision)?;
        let target = base.join("snapshots").join(&commit).join(path_key(path));
        let snapshot = Snapshot {
            root: target.clone(),
            revision: revision.clone(),
        };
        if target.is_dir() {
            return Ok(snapshot);
        }

        if !repo.exists() || !repo.has_commit(&commit)? {
            return Err(SourceError::CommitNotFound {
                url: repo.shown_url(),
                commit,
                detail: "it is not in the local cache; fetch the source first".to_string(),
            });
        }
        if !path.is_empty() {
            let not_found = || SourceError::PathNotFound {
                path: path.to_string(),
                location: repo.shown_url(),
                revision: commit.clone(),
            };
            match repo.object_type(&commit, path)?.as_deref() {
                Some("tree") => {}
                Some(_) => {
                    return Err(SourceError::NotADirectory {
                        path: path.to_string(),
                        location: repo.shown_url(),
                        revision: commit.clone(),
                    })
                }
                None => return Err(not_found()),
            }
        }

        build_snapshot(&target, |tree| {
            fs::create_dir(tree)
                .map_err(|e| SourceError::io(format!("cannot create {}", tree.display()), e))?;
            let index = tree.with_file_name("index");
            repo.materialize(&commit, path, tree, &index)
        })?;
        Ok(snapshot)
    }
}

/// The full commit id of a Git `revision`, lower-cased.
fn git_commit_id(repo: &Repo, revision: &Revision) -> Result<String, SourceError> {
    let commit = revision.id.to_ascii_lowercase();
    if !is_commit_id(&commit) {
        return Err(SourceError::InvalidRevision {
            revision: revision.id.clone(),
            location: repo.shown_url(),
            reason: "a Git revision must be a full commit id".to_string(),
        });
    }
    Ok(commit)
}

/// Fetches what `reference` needs and resolves it to a commit id, as a fetch always
/// did: a branch `refs/heads/X`, else a tag `refs/tags/X`, after fetching all
/// branches and tags; the remote HEAD for `None`; a commit id the cache has without
/// any network, else after fetching branches and tags, else directly by id.
fn fetch_and_resolve(repo: &Repo, reference: Option<&str>) -> Result<String, SourceError> {
    match reference {
        None => {
            repo.fetch_all(true)?;
            repo.resolve("refs/mooring/remote-HEAD")?
                .ok_or_else(|| SourceError::NoRemoteHead {
                    url: repo.shown_url(),
                    stderr: "the fetched HEAD is not a commit".to_string(),
                })
        }
        Some(r) if is_commit_id(r) => {
            let commit = r.to_ascii_lowercase();
            if !repo.has_commit(&commit)? {
                repo.fetch_all(false)?;
                if !repo.has_commit(&commit)? {
                    repo.fetch_commit(&commit)?;
                    if !repo.has_commit(&commit)? {
                        return Err(SourceError::CommitNotFound {
                            url: repo.shown_url(),
                            commit,
                            detail: "the fetched object is not a commit".to_string(),
                        });
                    }
                }
            }
            Ok(commit)
        }
        Some(r) => {
            repo.fetch_all(false)?;
            for candidate in ref_candidates(r) {
                if let Some(commit) = repo.resolve(&candidate)? {
                    return Ok(commit);
                }
            }
            let (branches, tags) = repo.list_refs()?;
            Err(SourceError::RefNotFound {
                url: repo.shown_url(),
                reference: r.to_string(),
                branches,
                tags,
            })
        }
    }
}

/// What is at `path` in `commit`, for [`Revision::tree`] (the Git tree id at
/// `<commit>:<path>`) and the commit's subject.
enum GitPath {
    /// A folder.
    Tree(Facts),
    /// Nothing.
    Missing,
    /// `commit` is not a commit in the cache repository.
    NotACommit,
}

/// What is at `path` in `commit`: remembered in `memo` (see the `memo` module), else
/// from one `git cat-file --batch`, then remembered. [`SourceError::NotADirectory`]
/// if it is not a folder. Local only. Shared by [`Cache::fetch_path`] and
/// [`Cache::path_tree`].
fn git_path(repo: &Repo, memo: &Memo, commit: &str, path: &str) -> Result<GitPath, SourceError> {
    if let Some(facts) = memo.get(commit, path) {
        return Ok(GitPath::Tree(facts));
    }
    let Some(found) = repo.commit_and_path(commit, path)? else {
        return Ok(GitPath::NotACommit);
    };
    match found.object {
        Some((tree, kind)) if kind == "tree" => {
            let facts = Facts {
                tree,
                subject: found.subject,
            };
            memo.put(commit, path, &facts);
            Ok(GitPath::Tree(facts))
        }
        Some(_) => Err(SourceError::NotADirectory {
            path: path.to_string(),
            location: repo.shown_url(),
            revision: commit.to_string(),
        }),
        None => Ok(GitPath::Missing),
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
