//! The Git backend of the cache: per remote, `git/<key>/` under the cache root with a
//! bare cache repository (`repo.git`), a lock held while fetching, remembered facts
//! (`meta/`, see `memo`) and immutable snapshots (`snapshots/<commit>/<pathkey>/`).
//! [`Cache`](crate::Cache) hands Git sources to a [`GitCache`]; the `git` module runs
//! the `git` command line.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::credentials::{split_url_credentials, Credentials};
use crate::dir::short_sha256;
use crate::error::SourceError;
use crate::git::{ref_candidates, Repo};
use crate::info::RevisionInfo;
use crate::lock::DirLock;
use crate::memo::{Facts, Memo};
use crate::snapshot::{build_snapshot, path_key, Revision, Snapshot, LOCK_TIMEOUT};
use crate::spec::{is_commit_id, is_commit_prefix, validate_git_url, validate_ref};

/// One Git remote's place in the cache.
pub(crate) struct GitCache {
    /// The cache root, `<data_dir>/sources`.
    root: PathBuf,
    /// `git/<first 16 hex of sha256(url)>`, of the URL without credentials.
    base: PathBuf,
    url: String,
    /// Where temporary credential files go.
    temp_root: PathBuf,
}

impl GitCache {
    /// The place of `url` under the cache `root`; the URL is checked.
    pub(crate) fn new(root: &Path, url: &str, temp_root: &Path) -> Result<GitCache, SourceError> {
        validate_git_url(url)?;
        let (clean, _) = split_url_credentials(url);
        Ok(GitCache {
            root: root.to_path_buf(),
            base: root.join("git").join(short_sha256(clean.as_bytes(), 16)),
            url: url.to_string(),
            temp_root: temp_root.to_path_buf(),
        })
    }

    /// The cache repository.
    pub(crate) fn repo(&self) -> Repo {
        Repo::new(self.base.join("repo.git"), &self.url, &self.temp_root)
    }

    /// Who made `revision`, when and why; the commit must be in the cache.
    pub(crate) fn revision_info(&self, revision: &Revision) -> Result<RevisionInfo, SourceError> {
        let repo = self.repo();
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

    /// Whether commit `ancestor` is `of` or one of its ancestors.
    pub(crate) fn is_ancestor(
        &self,
        ancestor: &Revision,
        of: &Revision,
    ) -> Result<bool, SourceError> {
        let repo = self.repo();
        let (a, b) = (git_commit_id(&repo, ancestor)?, git_commit_id(&repo, of)?);
        repo.is_ancestor(&a, &b)
    }

    /// Removes the cache repository an earlier version kept for `url` when `url`
    /// carries credentials: it was keyed by the whole URL and its config held the
    /// password in clear.
    fn remove_cache_keyed_by_credentials(&self) -> Result<(), SourceError> {
        let url = self.url.as_str();
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

    pub(crate) fn fetch(
        &self,
        reference: Option<&str>,
        path: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Revision, SourceError> {
        if let Some(r) = reference {
            validate_ref(r)?;
        }
        self.remove_cache_keyed_by_credentials()?;
        let base = &self.base;
        fs::create_dir_all(base)
            .map_err(|e| SourceError::io(format!("cannot create {}", base.display()), e))?;
        let _lock = DirLock::acquire(&base.join("lock"), LOCK_TIMEOUT)?;
        let repo = self.repo().with_credentials(credentials);
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

    pub(crate) fn path_tree(
        &self,
        revision: &Revision,
        path: &str,
    ) -> Result<Option<String>, SourceError> {
        let base = &self.base;
        let repo = self.repo();
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

    pub(crate) fn checkout(
        &self,
        revision: &Revision,
        path: &str,
    ) -> Result<Snapshot, SourceError> {
        let base = &self.base;
        let repo = self.repo();
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
            // An abbreviated commit id, as every page and command shows them: when one
            // commit of the cache starts with it (an ambiguous one resolves to none).
            if is_commit_prefix(r) {
                if let Some(commit) = repo.resolve(&r.to_ascii_lowercase())? {
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
