//! [`Cache`]: fetching sources and materializing snapshots under
//! `<data_dir>/sources`, plus the [`Revision`] and [`Snapshot`] it hands out.
//!
//! Concurrency: fetches of one repository are serialized by a lock directory
//! (see the `lock` module); snapshots are built in a temporary directory next to
//! their final place and renamed into place atomically, so a crash never leaves
//! a half-written snapshot and concurrent checkouts of the same snapshot are
//! harmless.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dir::{hash_tree, short_sha256};
use crate::error::SourceError;
use crate::git::Repo;
use crate::lock::DirLock;
use crate::spec::{is_commit_id, normalize_subpath, validate_git_url, validate_ref, SourceSpec};

/// How long a fetch waits for another process fetching the same repository.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// An immutable id of a source's content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision {
    /// Full commit id for Git; `sha256:<hex>` for a plain directory.
    pub id: String,
    /// Human-readable form: `main@1a2b3c4 (commit subject)` for Git (`HEAD@…`
    /// for the remote's default branch, `1a2b3c4 (…)` for a commit id),
    /// `dir sha256:1a2b3c4d5e6f` for a directory.
    pub describe: String,
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

/// The on-disk source cache, rooted at `<data_dir>/sources`.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache under `data_dir/sources`. Nothing is created until it is used.
    pub fn new(data_dir: &Path) -> Cache {
        Cache {
            root: data_dir.join("sources"),
        }
    }

    /// The cache root, `<data_dir>/sources`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Brings the source up to date and returns its current revision.
    ///
    /// Git: fetches all branches and tags (incrementally, into a bare cache
    /// repository; prunes deleted ones) and resolves the ref: a branch
    /// `refs/heads/X`, else a tag `refs/tags/X`; a full commit id already in the
    /// cache needs no network at all, otherwise it is fetched directly if no
    /// branch or tag contains it; no ref means the remote's HEAD.
    /// Directory: hashes the tree (see the `dir` module).
    pub fn fetch(&self, spec: &SourceSpec) -> Result<Revision, SourceError> {
        match spec {
            SourceSpec::Git { url, reference } => self.fetch_git(url, reference.as_deref()),
            SourceSpec::Dir { path } => {
                if !path.is_dir() {
                    return Err(SourceError::NotFound { path: path.clone() });
                }
                let id = hash_tree(path)?;
                let short = id.get(..19).unwrap_or(&id);
                Ok(Revision {
                    describe: format!("dir {short}"),
                    id,
                })
            }
        }
    }

    /// Materializes `path` (a folder relative to the source root; `""` or `"."`
    /// for everything) of `revision` and returns where it is.
    ///
    /// Git: writes only that folder of the commit into
    /// `git/<key>/snapshots/<commit>/<pathkey>/`, reusing it if it already exists;
    /// symlinks are kept as symlinks. The revision must have been fetched into
    /// this cache. Directory: the directory itself (not a copy; it is checked
    /// that `path` exists in it).
    ///
    /// `path` must not be absolute or contain `..`.
    pub fn checkout(
        &self,
        spec: &SourceSpec,
        revision: &Revision,
        path: &str,
    ) -> Result<Snapshot, SourceError> {
        let path = normalize_subpath(path)?;
        match spec {
            SourceSpec::Git { url, .. } => self.checkout_git(url, revision, &path),
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

    /// `git/<first 16 hex of sha256(url)>`.
    fn git_base(&self, url: &str) -> PathBuf {
        self.root.join("git").join(short_sha256(url.as_bytes(), 16))
    }

    fn fetch_git(&self, url: &str, reference: Option<&str>) -> Result<Revision, SourceError> {
        validate_git_url(url)?;
        if let Some(r) = reference {
            validate_ref(r)?;
        }
        let base = self.git_base(url);
        fs::create_dir_all(&base)
            .map_err(|e| SourceError::io(format!("cannot create {}", base.display()), e))?;
        let _lock = DirLock::acquire(&base.join("lock"), LOCK_TIMEOUT)?;
        let repo = Repo::new(base.join("repo.git"), url);
        if !repo.exists() {
            repo.create()?;
        }
        // For humans browsing the cache; best effort.
        let _ = fs::write(base.join("url.txt"), format!("{}\n", repo.shown_url()));

        let (commit, label) = match reference {
            None => {
                repo.fetch_all(true)?;
                let commit = repo.resolve("refs/mooring/remote-HEAD")?.ok_or_else(|| {
                    SourceError::NoRemoteHead {
                        url: repo.shown_url(),
                        stderr: "the fetched HEAD is not a commit".to_string(),
                    }
                })?;
                (commit, Some("HEAD"))
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
                (commit, None)
            }
            Some(r) => {
                repo.fetch_all(false)?;
                let candidates: Vec<String> =
                    if r.starts_with("refs/heads/") || r.starts_with("refs/tags/") {
                        vec![r.to_string()]
                    } else {
                        vec![format!("refs/heads/{r}"), format!("refs/tags/{r}")]
                    };
                let mut found = None;
                for candidate in &candidates {
                    if let Some(commit) = repo.resolve(candidate)? {
                        found = Some(commit);
                        break;
                    }
                }
                match found {
                    Some(commit) => (commit, Some(r)),
                    None => {
                        let (branches, tags) = repo.list_refs()?;
                        return Err(SourceError::RefNotFound {
                            url: repo.shown_url(),
                            reference: r.to_string(),
                            branches,
                            tags,
                        });
                    }
                }
            }
        };

        let short = commit.get(..7).unwrap_or(&commit);
        let subject = repo.subject(&commit)?;
        let describe = match label {
            Some(label) => format!("{label}@{short} ({subject})"),
            None => format!("{short} ({subject})"),
        };
        Ok(Revision {
            id: commit,
            describe,
        })
    }

    fn checkout_git(
        &self,
        url: &str,
        revision: &Revision,
        path: &str,
    ) -> Result<Snapshot, SourceError> {
        validate_git_url(url)?;
        let base = self.git_base(url);
        let repo = Repo::new(base.join("repo.git"), url);
        let commit = revision.id.to_ascii_lowercase();
        if !is_commit_id(&commit) {
            return Err(SourceError::InvalidRevision {
                revision: revision.id.clone(),
                location: repo.shown_url(),
                reason: "a Git revision must be a full commit id".to_string(),
            });
        }
        let path_key = if path.is_empty() {
            "root".to_string()
        } else {
            format!("sub-{}", short_sha256(path.as_bytes(), 16))
        };
        let commit_dir = base.join("snapshots").join(&commit);
        let target = commit_dir.join(path_key);
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

        fs::create_dir_all(&commit_dir)
            .map_err(|e| SourceError::io(format!("cannot create {}", commit_dir.display()), e))?;
        let staging = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&commit_dir)
            .map_err(|e| {
                SourceError::io(
                    format!(
                        "cannot create a temporary directory in {}",
                        commit_dir.display()
                    ),
                    e,
                )
            })?;
        let tree = staging.path().join("tree");
        fs::create_dir(&tree)
            .map_err(|e| SourceError::io(format!("cannot create {}", tree.display()), e))?;
        repo.materialize(&commit, path, &tree, &staging.path().join("index"))?;
        match fs::rename(&tree, &target) {
            Ok(()) => Ok(snapshot),
            // Another process finished the same snapshot first.
            Err(_) if target.is_dir() => Ok(snapshot),
            Err(e) => Err(SourceError::io(
                format!("cannot move snapshot into {}", target.display()),
                e,
            )),
        }
    }
}
