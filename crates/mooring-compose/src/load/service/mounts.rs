//! A service's storage: `volumes` (named volumes, binds — repository paths hashed
//! into `files_hash`, absolute host paths checked — and `type: tmpfs`) and `tmpfs`.
//! Each mount's position is kept for the policy.

use super::super::files::path_error;
use super::super::Decoder;
use crate::decode::*;
use crate::error::LoadError;
use crate::paths::{hash_paths, normalize, resolve_inside};
use crate::yaml::{Node, Value};
use mooring_core::{Mount, MountKind, Volume};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a service's storage keys decode to.
pub(super) struct Storage {
    pub(super) mounts: Vec<Mount>,
    pub(super) tmpfs: Vec<String>,
    /// Hash of the repository files the binds mount, if any.
    pub(super) files_hash: Option<String>,
}

enum MountOrTmpfs {
    Mount(Mount),
    Tmpfs(String),
}

/// One `volumes` entry as written, before its source is resolved.
struct Entry {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
}

impl Decoder<'_> {
    /// `tmpfs` and `volumes`.
    pub(super) fn mounts(
        &mut self,
        n: &Node,
        what: &str,
        volumes: &BTreeMap<String, Volume>,
    ) -> Result<Storage, LoadError> {
        let mut tmpfs = n
            .get("tmpfs")
            .map(|t| string_or_list(t, &format!("{what}.tmpfs")))
            .transpose()?
            .unwrap_or_default();
        let mut mounts = Vec::new();
        let mut repo_files = Vec::new();
        if let Some(v) = n.get("volumes") {
            let w = format!("{what}.volumes");
            let Value::Seq(items) = &v.value else {
                return Err(err(v, format!("{w} must be a list, found {}", v.kind())));
            };
            for item in items {
                match self.mount(item, &w, volumes, &mut repo_files)? {
                    MountOrTmpfs::Mount(m) => {
                        self.positions
                            .insert(format!("{w}.{}", m.target), item.pos.to_string());
                        mounts.push(m)
                    }
                    MountOrTmpfs::Tmpfs(t) => tmpfs.push(t),
                }
            }
        }
        let files_hash = if repo_files.is_empty() {
            None
        } else {
            Some(hash_paths(&repo_files).map_err(|e| {
                err(
                    n,
                    format!("{what}: cannot read mounted repository files: {e}"),
                )
            })?)
        };
        Ok(Storage {
            mounts,
            tmpfs,
            files_hash,
        })
    }

    fn mount(
        &mut self,
        n: &Node,
        what: &str,
        volumes: &BTreeMap<String, Volume>,
        repo_files: &mut Vec<(String, PathBuf)>,
    ) -> Result<MountOrTmpfs, LoadError> {
        let Entry {
            kind,
            source,
            target,
            read_only,
        } = match &n.value {
            Value::Scalar { text, .. } => short_syntax(n, text, what)?,
            Value::Map(_) => long_syntax(n, what)?,
            _ => {
                return Err(err(
                    n,
                    format!(
                        "{what}: each entry must be a string or a mapping, found {}",
                        n.kind()
                    ),
                ))
            }
        };
        if kind == "tmpfs" {
            return Ok(MountOrTmpfs::Tmpfs(target));
        }
        if !target.starts_with('/') {
            return Err(err(
                n,
                format!("{what}: container path {target:?} must be absolute"),
            ));
        }
        match kind.as_str() {
            "volume" => {
                let vol = volumes.get(&source).ok_or_else(|| err(n, format!("{what}: volume `{source}` is not declared under the top-level `volumes`")))?;
                Ok(MountOrTmpfs::Mount(Mount {
                    kind: MountKind::Volume,
                    source: vol.name.clone(),
                    target,
                    read_only,
                    from_repository: false,
                }))
            }
            "bind" => {
                let (host, from_repository) = self.bind_source(n, &source, what, repo_files)?;
                Ok(MountOrTmpfs::Mount(Mount {
                    kind: MountKind::Bind,
                    source: host,
                    target,
                    read_only,
                    from_repository,
                }))
            }
            other => Err(err(
                n,
                format!(
                    "{what}: mount type {other:?} is not supported (use volume, bind or tmpfs)"
                ),
            )),
        }
    }

    /// Where a bind source lives on the host, and whether it comes from the repository.
    fn bind_source(
        &mut self,
        n: &Node,
        source: &str,
        what: &str,
        repo_files: &mut Vec<(String, PathBuf)>,
    ) -> Result<(String, bool), LoadError> {
        if source.starts_with('~') {
            return Err(err(n, format!("{what}: {source} depends on the reconciler's home folder; use an absolute host path")));
        }
        if Path::new(source).is_absolute() {
            let p = normalize(Path::new(source));
            if p.starts_with(&self.snapshot.root) || self.protected.iter().any(|d| p.starts_with(d))
            {
                return Err(err(n, format!("{what}: absolute path {source} points into the repository or Mooring's data; use a path relative to the project folder")));
            }
            // The policy decides whether it may reach the host, and notes it.
            return Ok((p.to_string_lossy().to_string(), false));
        }
        let full = resolve_inside(&self.snapshot.root, &self.snapshot.project_dir, source)
            .map_err(|e| path_error(e, source, "bind path", Some(&n.pos)))?;
        let rel = full
            .strip_prefix(&self.snapshot.root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        repo_files.push((rel.to_string_lossy().to_string(), full.clone()));
        Ok((full.to_string_lossy().to_string(), true))
    }
}

/// `SOURCE:TARGET[:MODE]`: a bind when SOURCE starts with `.`, `/` or `~`, else a named
/// volume.
fn short_syntax(n: &Node, text: &str, what: &str) -> Result<Entry, LoadError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [_] => return Err(err(n, format!("{what}: anonymous volume {text:?} cannot be protected; name it (e.g. `data:{text}`) and declare it under top-level `volumes`"))),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(err(n, format!("{what}: invalid volume {text:?} (use SOURCE:TARGET[:ro])"))),
    };
    let mut read_only = false;
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" | "cached" | "delegated" | "consistent" => {}
            other => {
                return Err(err(
                    n,
                    format!("{what}: volume option {other:?} is not supported (use ro or rw)"),
                ))
            }
        }
    }
    let kind = if source.starts_with(['.', '/', '~']) {
        "bind"
    } else {
        "volume"
    };
    Ok(Entry {
        kind: kind.to_string(),
        source: source.to_string(),
        target: target.to_string(),
        read_only,
    })
}

/// The long syntax (`type`, `source`, `target`, `read_only`, `bind`); `type: tmpfs`
/// has a target only.
fn long_syntax(n: &Node, what: &str) -> Result<Entry, LoadError> {
    check_keys(n, what, &["type", "source", "target", "read_only", "bind"])?;
    if let Some(b) = n.get("bind") {
        check_keys(b, &format!("{what}.bind"), &["create_host_path"])?;
    }
    let kind = n
        .get("type")
        .map(|t| string(t, what))
        .transpose()?
        .unwrap_or_else(|| "volume".into());
    let target = string(
        n.get("target")
            .ok_or_else(|| err(n, format!("{what}: `target` is required")))?,
        what,
    )?;
    if kind == "tmpfs" {
        return Ok(Entry {
            kind,
            source: String::new(),
            target,
            read_only: false,
        });
    }
    let source = match n.get("source") {
        Some(s) => string(s, what)?,
        None => return Err(err(n, format!("{what}: `source` is required (anonymous volumes cannot be protected; name the volume)"))),
    };
    let read_only = n
        .get("read_only")
        .map(|r| boolean(r, what))
        .transpose()?
        .unwrap_or(false);
    Ok(Entry {
        kind,
        source,
        target,
        read_only,
    })
}
