//! A build's context: the files of its folder that `.dockerignore` leaves in (the
//! Dockerfile and `.dockerignore` are always sent, as the Docker CLI does), walked
//! without following symlinks — one whose target leaves the context is refused, as a
//! render refuses paths leaving the snapshot — and bounded in size. The loader hashes
//! these entries into the build's inputs; the provider sends the same entries to the
//! builder.

use mooring_core::dockerignore::DockerIgnore;
use sha2::{Digest, Sha256};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The most a context may hold (file bytes): it is sent to the Engine in one request.
pub const MAX_CONTEXT_BYTES: u64 = 512 * 1024 * 1024;

/// One entry of a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative to the context, `/`-separated.
    pub path: String,
    /// Where it is on disk.
    pub full: PathBuf,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File { size: u64, mode: u32 },
    Symlink(PathBuf),
}

/// Why a context cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("reading {0}: {1}")]
    Io(PathBuf, io::Error),
    #[error("{0}")]
    Ignore(#[from] mooring_core::dockerignore::IgnoreError),
    #[error("symlink {path} points outside the build context ({target}); the builder would not see it and Mooring never follows a link out of the repository")]
    SymlinkEscapes { path: String, target: String },
    #[error("the build context holds more than {} MiB; leave out what the image does not need with .dockerignore", MAX_CONTEXT_BYTES / 1024 / 1024)]
    TooLarge,
}

/// The context's entries, in a stable order (`dockerfile` relative to the context).
pub fn entries(context: &Path, dockerfile: &str) -> Result<Vec<ContextEntry>, ContextError> {
    let ignore_path = context.join(".dockerignore");
    let ignore = match fs::read_to_string(&ignore_path) {
        Ok(text) => DockerIgnore::parse(&text)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(ContextError::Io(ignore_path, e)),
    };
    let always = [dockerfile.trim_start_matches("./"), ".dockerignore"];
    let mut out = Vec::new();
    let mut bytes = 0u64;
    walk(context, context, "", &ignore, &always, &mut out, &mut bytes)?;
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    ignore: &DockerIgnore,
    always: &[&str],
    out: &mut Vec<ContextEntry>,
    bytes: &mut u64,
) -> Result<(), ContextError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| ContextError::Io(p, e)
    };
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    names.sort();
    for name in names {
        let rel = format!("{prefix}{}", name.to_string_lossy());
        let full = dir.join(&name);
        let meta = fs::symlink_metadata(&full).map_err(io(&full))?;
        let kept = always.contains(&rel.as_str()) || !ignore.excludes(&rel);
        let ft = meta.file_type();
        if ft.is_dir() {
            // An excluded folder is still walked when a later `!` line may keep part of it.
            if kept || ignore.has_exceptions() {
                if kept {
                    out.push(ContextEntry {
                        path: rel.clone(),
                        full: full.clone(),
                        kind: EntryKind::Dir,
                    });
                }
                walk(root, &full, &format!("{rel}/"), ignore, always, out, bytes)?;
            }
            continue;
        }
        if !kept {
            continue;
        }
        if ft.is_symlink() {
            let target = fs::read_link(&full).map_err(io(&full))?;
            let resolved = crate::paths::normalize(&dir.join(&target));
            if !resolved.starts_with(root) {
                return Err(ContextError::SymlinkEscapes {
                    path: rel,
                    target: target.display().to_string(),
                });
            }
            out.push(ContextEntry {
                path: rel,
                full,
                kind: EntryKind::Symlink(target),
            });
        } else if ft.is_file() {
            *bytes += meta.len();
            if *bytes > MAX_CONTEXT_BYTES {
                return Err(ContextError::TooLarge);
            }
            use std::os::unix::fs::PermissionsExt;
            out.push(ContextEntry {
                path: rel,
                full,
                kind: EntryKind::File {
                    size: meta.len(),
                    mode: meta.permissions().mode() & 0o7777,
                },
            });
        }
        // Sockets, pipes and devices are not sent, as with `docker build`.
    }
    Ok(())
}

/// sha256 over the entries: names, kinds, modes, symlink targets and file contents.
pub fn hash(entries: &[ContextEntry]) -> Result<String, ContextError> {
    let mut h = Sha256::new();
    for e in entries {
        h.update(e.path.as_bytes());
        h.update([0]);
        match &e.kind {
            EntryKind::Dir => h.update(b"dir\0"),
            EntryKind::Symlink(t) => {
                h.update(b"link\0");
                h.update(t.as_os_str().as_encoded_bytes());
                h.update([0]);
            }
            EntryKind::File { mode, .. } => {
                h.update(format!("file {mode:o}\0").as_bytes());
                let mut f =
                    fs::File::open(&e.full).map_err(|x| ContextError::Io(e.full.clone(), x))?;
                let mut d = Sha256::new();
                io::copy(&mut f, &mut d).map_err(|x| ContextError::Io(e.full.clone(), x))?;
                h.update(d.finalize());
            }
        }
    }
    Ok(mooring_core::hash::hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_files_are_left_out_and_the_dockerfile_is_always_sent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::create_dir_all(root.join("node_modules/x")).unwrap();
        fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(root.join("src/main.sh"), "echo\n").unwrap();
        fs::write(root.join("notes.md"), "n\n").unwrap();
        fs::write(root.join("node_modules/x/i.js"), "1\n").unwrap();
        fs::write(
            root.join(".dockerignore"),
            "*.md\nnode_modules\nDockerfile\n",
        )
        .unwrap();
        let names: Vec<String> = entries(&root, "Dockerfile")
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(names, [".dockerignore", "Dockerfile", "src", "src/main.sh"]);
        // An ignored file's change changes nothing; a sent file's does.
        let before = hash(&entries(&root, "Dockerfile").unwrap()).unwrap();
        fs::write(root.join("notes.md"), "changed\n").unwrap();
        assert_eq!(
            hash(&entries(&root, "Dockerfile").unwrap()).unwrap(),
            before
        );
        fs::write(root.join("src/main.sh"), "echo 2\n").unwrap();
        assert_ne!(
            hash(&entries(&root, "Dockerfile").unwrap()).unwrap(),
            before
        );
    }

    #[test]
    fn a_symlink_out_of_the_context_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("ctx")).unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", root.join("ctx/evil")).unwrap();
        let e = entries(&root.join("ctx"), "Dockerfile").unwrap_err();
        assert!(matches!(e, ContextError::SymlinkEscapes { .. }), "{e}");
        fs::remove_file(root.join("ctx/evil")).unwrap();
        std::os::unix::fs::symlink("inside", root.join("ctx/fine")).unwrap();
        assert_eq!(entries(&root.join("ctx"), "Dockerfile").unwrap().len(), 1);
    }
}
