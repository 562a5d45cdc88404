//! Reading inside the snapshot: the root and project folder, Compose file discovery
//! (`compose.yaml` … and its override, or the `-f` files), every read checked to stay
//! inside the snapshot (symlinks included) and done at the file's real path.

use crate::error::{LoadError, Pos};
use crate::paths::{inside_file, resolve_inside, PathError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Compose file names looked for when no `-f` is given, in Compose's order.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The snapshot being rendered: its canonical root and project folder.
pub(super) struct Snapshot {
    pub(super) root: PathBuf,
    pub(super) project_dir: PathBuf,
}

impl Snapshot {
    /// Canonicalizes both folders; the project folder must be inside the root.
    pub(super) fn open(snapshot_root: &Path, project_dir: &Path) -> Result<Snapshot, LoadError> {
        let root = snapshot_root
            .canonicalize()
            .map_err(|e| LoadError::new(format!("cannot open {}: {e}", snapshot_root.display())))?;
        let project_dir = project_dir.canonicalize().map_err(|e| {
            LoadError::new(format!(
                "cannot open project folder {}: {e}",
                project_dir.display()
            ))
        })?;
        if !project_dir.starts_with(&root) {
            return Err(LoadError::new(format!(
                "project folder {} is outside the snapshot {}",
                project_dir.display(),
                root.display()
            )));
        }
        Ok(Snapshot { root, project_dir })
    }

    /// A path as messages show it: relative to the snapshot root.
    pub(super) fn display(&self, p: &Path) -> Arc<str> {
        let rel = p.strip_prefix(&self.root).unwrap_or(p);
        Arc::from(rel.to_string_lossy().as_ref())
    }

    /// The real path of an existing file inside the snapshot; `None` when absent.
    pub(super) fn file_inside(
        &self,
        path: &Path,
        what: &str,
    ) -> Result<Option<PathBuf>, LoadError> {
        let raw = self.display(path);
        inside_file(&self.root, path).map_err(|e| path_error(e, &raw, what, None))
    }

    /// The file's text, bounded by [`crate::limits`].
    pub(super) fn read(&self, path: &Path) -> Result<String, LoadError> {
        crate::limits::read_text(path)
            .map_err(|e| LoadError::new(format!("cannot read {}: {e}", self.display(path))))
    }

    /// The Compose files to load, in order: the `-f` files (relative to the project
    /// folder), or the first of [`COMPOSE_FILE_NAMES`] found and its override.
    pub(super) fn compose_files(&self, given: &[String]) -> Result<Vec<PathBuf>, LoadError> {
        if given.is_empty() {
            return self.discover();
        }
        let mut files = Vec::new();
        for f in given {
            let path = resolve_inside(&self.root, &self.project_dir, f)
                .map_err(|e| path_error(e, f, "compose file", None))?;
            let Some(path) = inside_file(&self.root, &path)
                .map_err(|e| path_error(e, f, "compose file", None))?
            else {
                return Err(LoadError::new(format!(
                    "compose file {f} not found in {}",
                    self.display(&self.project_dir)
                )));
            };
            files.push(path);
        }
        Ok(files)
    }

    fn discover(&self) -> Result<Vec<PathBuf>, LoadError> {
        let mut found = None;
        for name in COMPOSE_FILE_NAMES {
            found = self.file_inside(&self.project_dir.join(name), "compose file")?;
            if found.is_some() {
                break;
            }
        }
        let Some(main) = found else {
            return Err(LoadError::new(format!(
                "no Compose file in {} (looked for {}); pass one with -f",
                self.display(&self.project_dir),
                COMPOSE_FILE_NAMES.join(", ")
            )));
        };
        let stem = if main
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("docker-"))
        {
            "docker-compose"
        } else {
            "compose"
        };
        let mut files = vec![main];
        for ext in ["yaml", "yml"] {
            let over = self.project_dir.join(format!("{stem}.override.{ext}"));
            if let Some(over) = self.file_inside(&over, "override file")? {
                files.push(over);
                break;
            }
        }
        Ok(files)
    }
}

/// A path that leaves the snapshot or cannot be inspected, said with what it was for.
pub(super) fn path_error(e: PathError, raw: &str, what: &str, pos: Option<&Pos>) -> LoadError {
    let message = match e {
        PathError::Escapes => format!("{what} {raw} leaves the repository; only paths inside the repository (or absolute host paths) are allowed"),
        PathError::SymlinkEscapes(p) => format!("{what} {raw} goes through symlink {} that points outside the repository; only files inside the repository are read", p.display()),
        PathError::Unreadable(p, e) => format!("{what} {raw}: cannot inspect {}: {e}; Mooring must be able to read the repository's files to check where they lead (fix the permissions)", p.display()),
    };
    LoadError {
        pos: pos.cloned(),
        message,
    }
}
