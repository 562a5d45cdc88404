use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use std::os::fd::AsFd;

use rustix::fs::CWD;
use tar::{EntryType, Header};

use super::restore::stage;
use super::*;
use crate::verify::open_archive;
use crate::xattr::{self, NotSet};
use crate::{BackupMeta, EntryKind};

fn meta(volume: &str) -> BackupMeta {
    BackupMeta {
        app: "t".into(),
        volume: volume.into(),
        revision: None,
        reason: "test".into(),
        created_at: 1_700_000_000_000,
        dump: None,
    }
}

/// `(path, mode, uid, gid, size, content or link target)` of everything under `root`.
fn listing(root: &Path) -> Vec<(String, u32, u32, u32, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("stat");
            let content = if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .expect("link")
                    .into_os_string()
                    .into_vec()
            } else if m.is_file() {
                std::fs::read(&p).expect("read")
            } else {
                if m.is_dir() {
                    stack.push(p.clone());
                }
                Vec::new()
            };
            let rel = p.strip_prefix(root).expect("inside").display().to_string();
            let size = if m.is_dir() { 0 } else { m.size() };
            out.push((rel, m.mode(), m.uid(), m.gid(), size, content));
        }
    }
    out.sort();
    out
}

use std::os::unix::ffi::OsStringExt;

#[test]
fn a_folder_round_trips_with_owners_modes_links_and_special_bits() {
    let backups = tempfile::tempdir().expect("tempdir");
    let src = tempfile::tempdir().expect("tempdir");
    let s = src.path();
    std::fs::create_dir_all(s.join("a/b/c")).expect("mkdir");
    std::fs::create_dir(s.join("emptydir")).expect("mkdir");
    for i in 0..300 {
        std::fs::write(s.join(format!("a/f{i}")), format!("file {i}\n")).expect("write");
    }
    let blob: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(7919) % 251) as u8)
        .collect();
    std::fs::write(s.join("a/b/c/blob"), &blob).expect("write");
    std::fs::write(s.join("empty"), b"").expect("write");
    std::fs::hard_link(s.join("a/f1"), s.join("hard")).expect("link");
    symlink("a/f2", s.join("link")).expect("symlink");
    symlink("/etc/passwd", s.join("outside")).expect("symlink");
    // Names and link targets longer than a tar header holds (GNU long-name records).
    let long = "n".repeat(90);
    std::fs::create_dir_all(s.join(&long).join(&long)).expect("mkdir");
    std::fs::write(s.join(&long).join(&long).join("f"), b"deep").expect("write");
    symlink(format!("{long}/{long}/f"), s.join("longlink")).expect("symlink");
    rustix::fs::mkfifoat(rustix::fs::CWD, s.join("fifo"), Mode::from_raw_mode(0o640))
        .expect("fifo");
    std::fs::set_permissions(
        s.join("a/b/c/blob"),
        std::fs::Permissions::from_mode(0o4750),
    )
    .expect("chmod");
    std::fs::set_permissions(s.join("a/b"), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    // Owner changes need root; the tests run as root like the fast path does.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        std::os::unix::fs::lchown(s.join("a/f3"), Some(1234), Some(5678)).expect("chown");
        std::os::unix::fs::lchown(s.join("link"), Some(42), Some(43)).expect("chown");
    }
    // Mooring's own names at the root are not data.
    std::fs::create_dir(s.join(format!("{STAGING_PREFIX}x"))).expect("mkdir");
    let before = {
        let mut l = listing(s);
        l.retain(|e| !e.0.starts_with(STAGING_PREFIX));
        l
    };

    let record = backup_dir(s, backups.path(), meta("v")).expect("backup");
    assert_eq!(record.manifest.files, 303, "{:?}", record.manifest.files);
    assert!(record
        .manifest
        .entries
        .iter()
        .any(|e| matches!(&e.kind, EntryKind::Hardlink { target } if target == "a/f1")));
    crate::verify(&record).expect("verifies");

    let dst = tempfile::tempdir().expect("tempdir");
    std::fs::write(dst.path().join("kept"), b"not in the backup").expect("write");
    let done = restore_dir(&record, dst.path()).expect("restore");
    assert!(!done.resumed);
    assert_eq!(done.report.files, 303);
    let mut after = listing(dst.path());
    let kept = after.iter().position(|e| e.0 == "kept").expect("kept");
    after.remove(kept);
    assert_eq!(after, before);
    if root {
        assert_eq!(
            std::fs::metadata(dst.path().join("a/f3"))
                .expect("stat")
                .uid(),
            1234
        );
    }
    assert_eq!(
        std::fs::metadata(dst.path().join("hard"))
            .expect("stat")
            .ino(),
        std::fs::metadata(dst.path().join("a/f1"))
            .expect("stat")
            .ino(),
        "hard links stay hard links"
    );
    assert_eq!(inspect_dir(dst.path()).expect("state").staged, vec![]);
}

/// A tar stream with raw entry names (so `..` and absolute paths can be written).
/// `(name, type, link target, content)`.
type RawEntry<'a> = (&'a [u8], EntryType, &'a [u8], &'a [u8]);

fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn entries_that_would_leave_the_volume_are_refused_and_nothing_is_moved_in() {
    let outside = tempfile::tempdir().expect("tempdir");
    let target = outside.path().display().to_string();
    let cases: Vec<Vec<u8>> = vec![
        raw_tar(&[
            (b"evil", EntryType::Symlink, target.as_bytes(), b""),
            (b"evil/x", EntryType::Regular, b"", b"owned"),
        ]),
        raw_tar(&[(b"../x", EntryType::Regular, b"", b"owned")]),
        raw_tar(&[(b"/x", EntryType::Regular, b"", b"owned")]),
        raw_tar(&[
            (b"evil", EntryType::Symlink, target.as_bytes(), b""),
            (b"h", EntryType::Link, b"evil/../../x", b""),
        ]),
    ];
    for (i, stream) in cases.into_iter().enumerate() {
        let backups = tempfile::tempdir().expect("tempdir");
        let record = crate::write_backup(&stream[..], backups.path(), meta("v")).expect("backup");
        let dst = tempfile::tempdir().expect("tempdir");
        let err = restore_dir(&record, dst.path()).expect_err("refused");
        assert!(
            matches!(err, BackupError::UnsafeEntry { .. }),
            "case {i}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(dst.path()).expect("list").count(),
            0,
            "case {i}: nothing moved in, staging removed"
        );
        assert_eq!(
            std::fs::read_dir(outside.path()).expect("list").count(),
            0,
            "case {i}: nothing written outside"
        );
    }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rfs::setxattr(path, name, value, rfs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

fn xattrs_at(path: &Path) -> Vec<xattr::Xattr> {
    let fd = rfs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).expect("open");
    xattr::read(fd.as_fd()).expect("read xattrs")
}

#[test]
fn extended_attributes_of_files_folders_and_the_root_round_trip() {
    let src = tempfile::tempdir().expect("tempdir");
    let root = src.path();
    std::fs::create_dir(root.join("d")).expect("mkdir");
    std::fs::write(root.join("d/tool"), b"#!/bin/sh\n").expect("write");
    std::fs::write(root.join("plain"), b"no attributes").expect("write");
    // A file capability (cap_net_bind_service, permitted and effective, v2): the
    // kind chown clears, so it must be set after the owner.
    let mut cap = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        cap.extend_from_slice(&word.to_le_bytes());
    }
    set_xattr(&root.join("d/tool"), "security.capability", &cap);
    set_xattr(&root.join("d/tool"), "user.note", b"\x00binary\xffvalue");
    set_xattr(&root.join("d"), "user.folder", b"f");
    set_xattr(root, "user.root", b"r");
    std::os::unix::fs::chown(root.join("d/tool"), Some(1234), Some(1234)).expect("chown");
    // chown dropped the capability: set it again, as a package install would.
    set_xattr(&root.join("d/tool"), "security.capability", &cap);

    let backups = tempfile::tempdir().expect("tempdir");
    let record = backup_dir(root, backups.path(), meta("x")).expect("backup");
    let dst = tempfile::tempdir().expect("tempdir");
    let done = restore_dir(&record, dst.path()).expect("restore");
    assert_eq!(done.xattrs_not_set, NotSet::default());
    for rel in ["d/tool", "d", "plain", ""] {
        assert_eq!(
            xattrs_at(&dst.path().join(rel)),
            xattrs_at(&root.join(rel)),
            "{rel:?}"
        );
    }
    assert_eq!(xattrs_at(&root.join("d/tool")).len(), 2);
    assert!(xattrs_at(&root.join("plain")).is_empty());
}

#[test]
fn an_attribute_this_file_system_refuses_is_reported_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    std::fs::write(&path, b"x").expect("write");
    let fd = rfs::open(&path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).expect("open");
    let mut not_set = NotSet::default();
    let attrs = vec![
        (b"nosuchnamespace.x".to_vec(), b"1".to_vec()),
        (b"user.kept".to_vec(), b"2".to_vec()),
    ];
    xattr::apply(fd.as_fd(), &attrs, &mut not_set).expect("apply");
    assert_eq!(not_set.lines().len(), 1, "{not_set:?}");
    assert!(
        not_set.lines()[0].starts_with("nosuchnamespace.x on 1 entry ("),
        "{not_set:?}"
    );
    assert_eq!(
        xattrs_at(&path),
        vec![(b"user.kept".to_vec(), b"2".to_vec())]
    );
}

#[test]
fn a_verified_restore_interrupted_while_moving_is_finished_by_the_next() {
    let backups = tempfile::tempdir().expect("tempdir");
    let src = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(src.path().join("d")).expect("mkdir");
    std::fs::write(src.path().join("d/one"), b"1").expect("write");
    std::fs::write(src.path().join("two"), b"2").expect("write");
    let record = backup_dir(src.path(), backups.path(), meta("v")).expect("backup");
    let dst = tempfile::tempdir().expect("tempdir");
    // Simulate a kill after staging and part of the move: stage fully, move one entry.
    let root_fd = open_dir_at(CWD, dst.path()).expect("open");
    let name = format!("{STAGING_PREFIX}{}", record.id);
    rfs::mkdirat(&root_fd, name.as_str(), Mode::from_raw_mode(0o700)).expect("mkdir");
    let file = open_archive(&record.archive, &record.manifest).expect("open");
    stage(
        &record,
        &file,
        root_fd.as_fd(),
        &name,
        &dst.path().join(&name),
    )
    .expect("stage");
    std::fs::rename(
        dst.path().join(&name).join("data/two"),
        dst.path().join("two"),
    )
    .expect("move");
    let state = inspect_dir(dst.path()).expect("state");
    assert_eq!(state.entries, 1);
    assert_eq!(state.staged, vec![(record.id.clone(), true)]);

    let done = restore_dir(&record, dst.path()).expect("finish");
    assert!(done.resumed);
    assert_eq!(listing(dst.path()), listing(src.path()));
    // An unverified leftover is simply removed by the next restore.
    std::fs::create_dir_all(dst.path().join(&name).join("data/junk")).expect("mkdir");
    let done = restore_dir(&record, dst.path()).expect("again");
    assert!(!done.resumed);
    assert_eq!(done.cleaned, 1);
    assert_eq!(listing(dst.path()), listing(src.path()));
}

#[test]
fn unchanged_content_is_recognised_and_any_change_is_not() {
    let backups = tempfile::tempdir().expect("tempdir");
    let src = tempfile::tempdir().expect("tempdir");
    let s = src.path();
    std::fs::create_dir(s.join("d")).expect("mkdir");
    std::fs::write(s.join("d/a"), b"alpha").expect("write");
    std::fs::write(s.join("b"), vec![7u8; 300_000]).expect("write");
    let record = backup_dir(s, backups.path(), meta("v")).expect("backup");
    assert!(unchanged_since(s, &record).expect("walk"), "the same bytes");
    // Same size, other bytes.
    std::fs::write(s.join("d/a"), b"alphA").expect("write");
    assert!(!unchanged_since(s, &record).expect("walk"));
    // Every change counts, the content's and the metadata's: a mode, an owner, a new
    // file, a removed one.
    let record = backup_dir(s, backups.path(), meta("v")).expect("backup");
    std::fs::set_permissions(s.join("b"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(!unchanged_since(s, &record).expect("walk"));
    let record = backup_dir(s, backups.path(), meta("v")).expect("backup");
    std::os::unix::fs::lchown(s.join("b"), Some(4321), Some(4321)).expect("chown (root)");
    assert!(!unchanged_since(s, &record).expect("walk"));
    let record = backup_dir(s, backups.path(), meta("v")).expect("backup");
    assert!(unchanged_since(s, &record).expect("walk"));
    std::fs::write(s.join("new"), b"").expect("write");
    assert!(!unchanged_since(s, &record).expect("walk"));
    std::fs::remove_file(s.join("new")).expect("rm");
    std::fs::remove_file(s.join("d/a")).expect("rm");
    assert!(!unchanged_since(s, &record).expect("walk"));
}
