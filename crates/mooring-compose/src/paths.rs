//! Paths from the repository: resolving them inside the snapshot root (rejecting `..`
//! escapes, absolute paths into protected folders and symlinks that leave the tree),
//! and hashing the content of what a service bind-mounts.

use mooring_core::hash::hex;
use sha2::{Digest, Sha256};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug)]
pub enum PathError {
    /// `..` climbs out of the snapshot root.
    Escapes,
    /// A symlink on the way points outside the snapshot root.
    SymlinkEscapes(PathBuf),
    /// A path on the way cannot be inspected (permission denied, a symlink loop…):
    /// whether it leaves the tree is unknown, so it is refused, never taken as absent.
    Unreadable(PathBuf, io::Error),
}

/// Lexical normalisation: drops `.`, folds `..` (never above the root of an absolute path).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Resolves `rel` (relative to `base`, which lies inside `root`) and checks that it and
/// whatever symlinks it passes through stay inside `root`. `root` must be canonical.
/// Returns the path (lexically normalised, under `root`).
pub fn resolve_inside(root: &Path, base: &Path, rel: &str) -> Result<PathBuf, PathError> {
    let joined = normalize(&base.join(rel));
    check_inside(root, &joined)?;
    Ok(joined)
}

/// The file a render reads at `path` (absolute, under `root`), once `path` and every
/// symlink on its way are checked to stay inside `root`: its canonical path (read
/// that, not `path`), or `None` when nothing is there (or not a file). A path that
/// cannot be inspected is an error, never "does not exist".
pub fn inside_file(root: &Path, path: &Path) -> Result<Option<PathBuf>, PathError> {
    let Some(real) = check_inside(root, &normalize(path))? else {
        return Ok(None);
    };
    match fs::metadata(&real) {
        Ok(m) if m.is_file() => Ok(Some(real)),
        Ok(_) => Ok(None),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(PathError::Unreadable(real, e)),
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Checks that `joined` (lexically normalised) and the symlinks on its way stay
/// inside `root`; returns its canonical path when it exists.
fn check_inside(root: &Path, joined: &Path) -> Result<Option<PathBuf>, PathError> {
    if !joined.starts_with(root) {
        return Err(PathError::Escapes);
    }
    // Canonicalize the longest existing prefix: catches symlinks leaving the tree.
    let mut probe = joined.to_path_buf();
    loop {
        match probe.canonicalize() {
            Ok(real) => {
                if !real.starts_with(root) {
                    return Err(PathError::SymlinkEscapes(probe));
                }
                return Ok((probe.as_path() == joined).then_some(real));
            }
            Err(e) if is_missing(&e) => {
                // A dangling symlink may still name a place outside the tree (that
                // Docker would create and mount): judge its target lexically.
                if let Ok(target) = fs::read_link(&probe) {
                    let parent = probe.parent().unwrap_or(root);
                    let parent = parent.canonicalize().unwrap_or_else(|_| parent.into());
                    if !normalize(&parent.join(target)).starts_with(root) {
                        return Err(PathError::SymlinkEscapes(probe));
                    }
                }
                if !probe.pop() {
                    return Ok(None);
                }
            }
            Err(e) => return Err(PathError::Unreadable(probe, e)),
        }
    }
}

/// sha256 over the content of files and folders (relative names, kinds, symlink
/// targets, file bytes), in a stable order. A missing path hashes as absent.
pub fn hash_paths(paths: &[(String, PathBuf)]) -> io::Result<String> {
    let mut h = Sha256::new();
    for (name, path) in paths {
        h.update(name.as_bytes());
        h.update([0]);
        hash_entry(&mut h, path)?;
    }
    Ok(hex(&h.finalize()))
}

fn hash_entry(h: &mut Sha256, path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            h.update(b"absent\0");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        h.update(b"link\0");
        h.update(fs::read_link(path)?.as_os_str().as_encoded_bytes());
        h.update([0]);
    } else if ft.is_dir() {
        h.update(b"dir\0");
        let mut names: Vec<_> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            h.update(name.as_encoded_bytes());
            h.update([0]);
            hash_entry(h, &path.join(&name))?;
        }
        h.update(b"end\0");
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            h.update(format!("file {:o}\0", meta.permissions().mode() & 0o111).as_bytes());
        }
        h.update(Sha256::digest(fs::read(path)?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("app/conf")).unwrap();
        assert!(resolve_inside(&root, &root.join("app"), "conf/x").is_ok());
        assert!(resolve_inside(&root, &root.join("app"), "../app/conf").is_ok());
        assert!(matches!(
            resolve_inside(&root, &root.join("app"), "../../etc"),
            Err(PathError::Escapes)
        ));
        std::os::unix::fs::symlink("/etc", root.join("app/evil")).unwrap();
        assert!(matches!(
            resolve_inside(&root, &root.join("app"), "evil/passwd"),
            Err(PathError::SymlinkEscapes(_))
        ));
        std::os::unix::fs::symlink("conf", root.join("app/good")).unwrap();
        assert!(resolve_inside(&root, &root.join("app"), "good").is_ok());
    }

    #[test]
    fn files_are_read_only_inside_the_tree() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "root-only").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("app/conf")).unwrap();
        fs::write(root.join("app/conf/real.env"), "A=1").unwrap();
        let escapes = |name: &str| {
            matches!(
                inside_file(&root, &root.join("app").join(name)),
                Err(PathError::SymlinkEscapes(_))
            )
        };
        // Absolute and relative symlinks leaving the tree, to a file or a folder.
        symlink(outside.path().join("secret"), root.join("app/abs.env")).unwrap();
        symlink(
            "../../../../../../../../etc/passwd",
            root.join("app/rel.env"),
        )
        .unwrap();
        symlink(outside.path(), root.join("app/outdir")).unwrap();
        assert!(escapes("abs.env") && escapes("rel.env") && escapes("outdir/secret"));
        // A dangling one naming a place outside is refused too.
        symlink("/nonexistent-mooring-target", root.join("app/dangling")).unwrap();
        assert!(escapes("dangling"));
        // Inside the tree: allowed, read at its real path.
        symlink("conf/real.env", root.join("app/.env")).unwrap();
        symlink(root.join("app/conf"), root.join("app/confdir")).unwrap();
        let real = root.join("app/conf/real.env");
        assert_eq!(
            inside_file(&root, &root.join("app/.env")).unwrap(),
            Some(real.clone())
        );
        assert_eq!(
            inside_file(&root, &root.join("app/confdir/real.env")).unwrap(),
            Some(real)
        );
        // Absent, or a folder: nothing to read.
        assert_eq!(
            inside_file(&root, &root.join("app/none.env")).unwrap(),
            None
        );
        assert_eq!(
            inside_file(&root, &root.join("app/conf/real.env/x")).unwrap(),
            None
        );
        assert_eq!(inside_file(&root, &root.join("app/conf")).unwrap(), None);
        // What cannot be inspected is an error, never "does not exist".
        symlink("loop-b", root.join("app/loop-a")).unwrap();
        symlink("loop-a", root.join("app/loop-b")).unwrap();
        assert!(matches!(
            inside_file(&root, &root.join("app/loop-a")),
            Err(PathError::Unreadable(..))
        ));
        assert!(matches!(
            resolve_inside(&root, &root.join("app"), "loop-a/x"),
            Err(PathError::Unreadable(..))
        ));
    }

    #[test]
    fn content_hash_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("conf")).unwrap();
        fs::write(d.join("conf/a"), "1").unwrap();
        let paths = [("conf".to_string(), d.join("conf"))];
        let h1 = hash_paths(&paths).unwrap();
        assert_eq!(h1, hash_paths(&paths).unwrap());
        fs::write(d.join("conf/a"), "2").unwrap();
        assert_ne!(h1, hash_paths(&paths).unwrap());
        let absent = [("x".to_string(), d.join("x"))];
        assert_eq!(hash_paths(&absent).unwrap().len(), 64);
    }
}
