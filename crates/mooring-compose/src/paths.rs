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
    if !joined.starts_with(root) {
        return Err(PathError::Escapes);
    }
    // Canonicalize the longest existing prefix: catches symlinks leaving the tree.
    let mut probe = joined.clone();
    loop {
        match probe.canonicalize() {
            Ok(real) => {
                if !real.starts_with(root) {
                    return Err(PathError::SymlinkEscapes(probe));
                }
                break;
            }
            Err(_) => {
                if !probe.pop() {
                    break;
                }
            }
        }
    }
    Ok(joined)
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
