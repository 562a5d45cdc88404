//! Reading inside the snapshot: the root and project folder, Compose file discovery
//! (`compose.yaml` … and its override, or the `-f` files), every read checked to stay
//! inside the snapshot (symlinks included) and done at the file's real path.

use crate::encrypted::Decrypter;
use crate::error::{LoadError, Pos};
use crate::paths::{inside_file, resolve_inside, PathError};
use mooring_core::mask::SecretValues;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Compose file names looked for when no `-f` is given, in Compose's order.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The snapshot being rendered: its canonical root and project folder, and what
/// reading its encrypted data files found.
pub(super) struct Snapshot {
    pub(super) root: PathBuf,
    pub(super) project_dir: PathBuf,
    decrypter: Option<Arc<dyn Decrypter>>,
    /// The values decrypted files held, and notes on files read masked.
    pub(super) found: RefCell<(SecretValues, Vec<String>)>,
}

impl Snapshot {
    /// Canonicalizes both folders; the project folder must be inside the root.
    pub(super) fn open(
        snapshot_root: &Path,
        project_dir: &Path,
        decrypter: Option<Arc<dyn Decrypter>>,
    ) -> Result<Snapshot, LoadError> {
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
        Ok(Snapshot {
            root,
            project_dir,
            decrypter,
            found: RefCell::default(),
        })
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

    /// A data file's text (`.env`, `env_file`), decrypted when it is encrypted; with
    /// whether it was (its values are then secret: the caller adds them as parsed).
    pub(super) fn read_data(&self, path: &Path) -> Result<(String, bool), LoadError> {
        let text = self.read(path)?;
        match self.decrypted(text.as_bytes(), path)? {
            None => Ok((text, false)),
            Some(bytes) => String::from_utf8(bytes).map(|t| (t, true)).map_err(|_| {
                LoadError::new(format!(
                    "{}: the decrypted file is not UTF-8 text",
                    self.display(path)
                ))
            }),
        }
    }

    /// The content of a secret's or config's file when it is encrypted, decrypted;
    /// `None` when it is not (or is too large or not text to be a SOPS file).
    pub(super) fn read_encrypted(&self, path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
        if self.decrypter.is_none() {
            return Ok(None);
        }
        match crate::limits::read_text(path) {
            Ok(text) => self.decrypted(text.as_bytes(), path),
            Err(_) => Ok(None),
        }
    }

    fn decrypted(&self, bytes: &[u8], path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
        let Some(decrypter) = &self.decrypter else {
            return Ok(None);
        };
        let shown = self.display(path);
        let plain = decrypter
            .decrypt(bytes, &shown)
            .map_err(|e| LoadError::new(format!("{shown}: {e}")))?;
        let Some(plain) = plain else {
            return Ok(None);
        };
        let mut found = self.found.borrow_mut();
        for s in plain.secrets {
            found.0.add(s);
        }
        if let Some(why) = plain.masked {
            found.1.push(format!(
                "{shown} is encrypted and {why}: its values read as ***"
            ));
        }
        Ok(Some(plain.bytes))
    }

    /// Marks the `values` parsed from a decrypted file that were encrypted in it as
    /// secret: those an encrypted value holds (`"a b"` parses to `a b`); values left
    /// clear in the file (`unencrypted_suffix`…) stay clear.
    pub(super) fn add_secrets<'a>(&self, values: impl IntoIterator<Item = &'a String>) {
        let mut found = self.found.borrow_mut();
        for v in values {
            if !v.is_empty() && found.0.iter().any(|s| s.contains(v.as_str())) {
                found.0.add(v.clone());
            }
        }
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
