//! Content hashing of plain directory sources.
//!
//! The revision of a directory is a SHA-256 over a canonical, prefix-free
//! encoding of its tree: for every entry (sorted by name, recursively, skipping
//! any entry named `.git`) its kind, relative path and permission bits, plus the
//! SHA-256 of a file's contents or a symlink's target. Symlinks are not followed.
//! Timestamps and ownership are ignored, so the id changes exactly when something
//! a deployment could observe changes.

use std::fs::{self, File, Metadata};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::SourceError;

/// Returns `"sha256:<hex>"` for the tree rooted at `root`.
pub(crate) fn hash_tree(root: &Path) -> Result<String, SourceError> {
    let mut hasher = Sha256::new();
    walk(&mut hasher, root, &mut Vec::new())?;
    Ok(format!("sha256:{}", to_hex(&hasher.finalize())))
}

fn walk(hasher: &mut Sha256, dir: &Path, rel: &mut Vec<u8>) -> Result<(), SourceError> {
    let entries = fs::read_dir(dir)
        .map_err(|e| SourceError::io(format!("cannot read directory {}", dir.display()), e))?;
    let mut entries = entries
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SourceError::io(format!("cannot read directory {}", dir.display()), e))?;
    entries.sort_by(|a, b| {
        a.file_name()
            .as_encoded_bytes()
            .cmp(b.file_name().as_encoded_bytes())
    });
    for entry in entries {
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| SourceError::io(format!("cannot stat {}", path.display()), e))?;
        let len_before = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_encoded_bytes());

        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&path)
                .map_err(|e| SourceError::io(format!("cannot read link {}", path.display()), e))?;
            put_record(hasher, b'l', rel, &meta);
            put_bytes(hasher, target.as_os_str().as_encoded_bytes());
        } else if kind.is_dir() {
            put_record(hasher, b'd', rel, &meta);
            walk(hasher, &path, rel)?;
            // Close the directory so that moving an entry across a boundary
            // always changes the hash.
            hasher.update(b"D");
        } else if kind.is_file() {
            put_record(hasher, b'f', rel, &meta);
            hasher.update(file_digest(&path)?);
        } else {
            // Sockets, fifos, devices: recorded by name and mode only.
            put_record(hasher, b'o', rel, &meta);
        }
        rel.truncate(len_before);
    }
    Ok(())
}

fn put_record(hasher: &mut Sha256, kind: u8, rel: &[u8], meta: &Metadata) {
    hasher.update([kind]);
    put_bytes(hasher, rel);
    hasher.update(mode_bits(meta).to_le_bytes());
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn file_digest(path: &Path) -> Result<[u8; 32], SourceError> {
    let ctx = || format!("cannot read {}", path.display());
    let mut file = File::open(path).map_err(|e| SourceError::io(ctx(), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| SourceError::io(ctx(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

#[cfg(unix)]
fn mode_bits(meta: &Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_bits(meta: &Metadata) -> u32 {
    u32::from(meta.permissions().readonly())
}

/// Lower-case hex encoding.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// First `n` hex digits of SHA-256 of `data`.
pub(crate) fn short_sha256(data: &[u8], n: usize) -> String {
    let mut hex = to_hex(&Sha256::digest(data));
    hex.truncate(n);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_encoding() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(short_sha256(b"abc", 16), "ba7816bf8f01cfea");
    }

    #[test]
    fn moving_a_file_between_directories_changes_the_hash() {
        let a = tempfile::tempdir().unwrap();
        fs::create_dir(a.path().join("d")).unwrap();
        fs::write(a.path().join("d/x"), "1").unwrap();
        let b = tempfile::tempdir().unwrap();
        fs::create_dir(b.path().join("d")).unwrap();
        fs::write(b.path().join("x"), "1").unwrap();
        assert_ne!(hash_tree(a.path()).unwrap(), hash_tree(b.path()).unwrap());
    }
}
