//! Test support: real folders, the system `tar`, and tree snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use mooring_backup::BackupMeta;
use sha2::{Digest, Sha256};

pub fn meta(app: &str, volume: &str, created_at: i64) -> BackupMeta {
    BackupMeta {
        app: app.into(),
        volume: volume.into(),
        revision: Some("abc123".into()),
        reason: "test".into(),
        created_at,
        dump: None,
    }
}

pub fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift), every byte value included.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write_file(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).expect("write file");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A volume-like folder: `small` small files in nested folders, binary content, a file of
/// several chunks, various permissions, symlinks, a hard link, an empty file and folder,
/// a long path and an unusual name. Returns the number of regular files written.
pub fn make_tree(root: &Path, small: usize) -> usize {
    let mut files = 0;
    for i in 0..small {
        let dir = root.join(format!("d{}/e{}", i % 7, i % 13));
        fs::create_dir_all(&dir).expect("mkdir");
        let len = (i * 37) % 3000;
        let mode = [0o644, 0o600, 0o755, 0o640, 0o444][i % 5];
        write_file(&dir.join(format!("f{i}.bin")), &noise(i as u64, len), mode);
        files += 1;
    }
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    write_file(&root.join("all-bytes.bin"), &every_byte, 0o644);
    write_file(
        &root.join("big.bin"),
        &noise(99, 3 * (1 << 20) + 4321),
        0o600,
    );
    write_file(&root.join("empty"), b"", 0o644);
    write_file(&root.join("run.sh"), b"#!/bin/sh\necho hi\n", 0o4755);
    files += 4;
    fs::create_dir(root.join("empty-dir")).expect("mkdir");
    fs::create_dir(root.join("private")).expect("mkdir");
    write_file(&root.join("private/key"), b"secret", 0o400);
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700)).expect("chmod");
    files += 1;
    let long = root.join(format!("{}/{}", "l".repeat(90), "n".repeat(120)));
    fs::create_dir_all(long.parent().expect("parent")).expect("mkdir");
    write_file(&long, b"long path", 0o644);
    write_file(&root.join("sp ace ü.txt"), b"unicode", 0o644);
    files += 2;
    symlink("all-bytes.bin", root.join("link")).expect("symlink");
    symlink("/nowhere/dangling", root.join("dangling")).expect("symlink");
    fs::hard_link(root.join("run.sh"), root.join("run-hard.sh")).expect("hard link");
    files += 1;
    files
}

/// What a tree holds: relative path → (kind, mode, sha256 or link target).
pub fn snapshot(root: &Path) -> BTreeMap<String, (char, u32, String)> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (char, u32, String)>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let rel = path
            .strip_prefix(root)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path).expect("metadata");
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).expect("readlink");
            out.insert(rel, ('l', 0, target.to_string_lossy().into_owned()));
        } else if meta.is_dir() {
            out.insert(rel, ('d', mode, String::new()));
            walk(root, &path, out);
        } else {
            let data = fs::read(&path).expect("read");
            out.insert(rel, ('f', mode, sha_hex(&data)));
        }
    }
}

/// `tar -cf - -C dir .`, collected.
pub fn system_tar(dir: &Path) -> Vec<u8> {
    let out = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(dir)
        .arg(".")
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar -c failed: {out:?}");
    out.stdout
}

/// `tar -xf - -C dest` fed with `stream`.
pub fn system_untar(stream: &[u8], dest: &Path) {
    fs::create_dir_all(dest).expect("mkdir dest");
    let mut child = Command::new("tar")
        .args(["-xf", "-", "-C"])
        .arg(dest)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tar");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream)
        .expect("feed tar");
    let out = child.wait_with_output().expect("wait tar");
    assert!(
        out.status.success(),
        "tar -x failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names of the files in `dir`, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
