//! Materializing a snapshot at a stable place on the host (an app's deploy tree), in
//! place: only files whose content, mode or symlink target differ are rewritten (each
//! through a temporary file and a rename), and what the snapshot no longer has is
//! removed. Folders keep their identity, so containers bind-mounting a folder keep
//! seeing it; a changed file gets a new inode, and the services mounting it are
//! recreated anyway because their spec hash covers the content.

use std::fs;
use std::io;
use std::path::Path;

/// Makes `to` hold exactly what `from` holds (`.git` excluded).
pub fn sync_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    sync_dir(from, to)
}

fn sync_dir(from: &Path, to: &Path) -> io::Result<()> {
    let mut wanted = std::collections::BTreeSet::new();
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        wanted.insert(name.clone());
        let (src, dst) = (entry.path(), to.join(&name));
        let ft = entry.file_type()?;
        let existing = fs::symlink_metadata(&dst).ok();
        if ft.is_dir() {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                fs::remove_file(&dst)?;
            }
            if !dst.is_dir()
                || existing
                    .as_ref()
                    .is_some_and(|m| m.file_type().is_symlink())
            {
                fs::create_dir(&dst)?;
            }
            sync_dir(&src, &dst)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&src)?;
            if fs::read_link(&dst).ok().as_ref() != Some(&target) {
                remove_any(&dst)?;
                std::os::unix::fs::symlink(&target, &dst)?;
            }
        } else if ft.is_file() {
            let meta = entry.metadata()?;
            let same = match &existing {
                Some(m)
                    if m.is_file()
                        && m.len() == meta.len()
                        && m.permissions() == meta.permissions() =>
                {
                    fs::read(&dst)? == fs::read(&src)?
                }
                _ => false,
            };
            if !same {
                if existing.as_ref().is_some_and(|m| m.is_dir()) {
                    fs::remove_dir_all(&dst)?;
                }
                let tmp = to.join(format!(".mooring-tmp-{}", name.to_string_lossy()));
                fs::copy(&src, &tmp)?;
                fs::set_permissions(&tmp, meta.permissions())?;
                fs::rename(&tmp, &dst)?;
            }
        }
    }
    for entry in fs::read_dir(to)? {
        let entry = entry?;
        if !wanted.contains(&entry.file_name()) {
            remove_any(&entry.path())?;
        }
    }
    Ok(())
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn syncs_in_place_keeping_folder_identity() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let (from, to) = (a.path(), b.path().join("tree"));
        fs::create_dir_all(from.join("conf")).unwrap();
        fs::write(from.join("conf/a"), "1").unwrap();
        fs::write(from.join("conf/b"), "same").unwrap();
        std::os::unix::fs::symlink("conf/a", from.join("link")).unwrap();
        sync_tree(from, &to).unwrap();
        let dir_ino = fs::metadata(to.join("conf")).unwrap().ino();
        let b_ino = fs::metadata(to.join("conf/b")).unwrap().ino();
        fs::write(from.join("conf/a"), "2").unwrap();
        fs::remove_file(from.join("link")).unwrap();
        fs::write(from.join("new"), "n").unwrap();
        fs::write(to.join("stray"), "x").unwrap();
        sync_tree(from, &to).unwrap();
        assert_eq!(fs::read_to_string(to.join("conf/a")).unwrap(), "2");
        assert_eq!(fs::read_to_string(to.join("new")).unwrap(), "n");
        assert!(!to.join("link").exists() && !to.join("stray").exists());
        assert_eq!(fs::metadata(to.join("conf")).unwrap().ino(), dir_ino);
        assert_eq!(
            fs::metadata(to.join("conf/b")).unwrap().ino(),
            b_ino,
            "unchanged file kept"
        );
    }
}
