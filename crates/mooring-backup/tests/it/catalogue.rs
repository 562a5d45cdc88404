//! The catalogue: only complete backups are listed; crash leftovers are ignored and cleaned;
//! pruning keeps the newest per app and volume.

use std::fs;
use std::path::Path;

use crate::common::{dir_names, meta};
use mooring_backup::{clean_partials, list, prune, remove, verify, write_backup, BackupRecord};

fn tiny_stream(content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "data.txt", content)
        .expect("append");
    builder.into_inner().expect("tar")
}

fn backup(dir: &Path, app: &str, volume: &str, at: i64) -> BackupRecord {
    write_backup(&tiny_stream(app.as_bytes())[..], dir, meta(app, volume, at)).expect("write")
}

#[test]
fn crash_leftovers_are_not_backups_and_are_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let kept = backup(dir, "web", "data", 2_000);

    // A crash while streaming, one before the renames, one between the two renames.
    let streaming = "web-data-19700101T000001-aaaaaa";
    fs::write(dir.join(format!("{streaming}.tar.zst.partial")), b"half").expect("w");
    let before = "web-data-19700101T000002-bbbbbb";
    fs::write(dir.join(format!("{before}.tar.zst.partial")), b"whole").expect("w");
    fs::write(dir.join(format!("{before}.manifest.json.partial")), b"{}").expect("w");
    let between = "web-data-19700101T000003-cccccc";
    fs::copy(&kept.archive, dir.join(format!("{between}.tar.zst"))).expect("cp");
    fs::write(dir.join(format!("{between}.manifest.json.partial")), b"{}").expect("w");
    // Unrelated files are left alone.
    fs::write(dir.join("README"), b"x").expect("w");
    fs::create_dir(dir.join("sub.tar.zst")).expect("mkdir");

    assert_eq!(list(dir).expect("list"), vec![kept.clone()]);
    assert_eq!(clean_partials(dir).expect("clean"), 5);
    let mut expected = vec![
        "README".to_owned(),
        "sub.tar.zst".to_owned(),
        format!("{}.manifest.json", kept.id),
        format!("{}.tar.zst", kept.id),
    ];
    expected.sort();
    assert_eq!(dir_names(dir), expected);
    assert_eq!(list(dir).expect("list"), vec![kept.clone()]);
    verify(&kept).expect("the complete backup is untouched");
    assert_eq!(clean_partials(dir).expect("clean again"), 0);

    // A missing folder has no backups.
    assert!(list(&dir.join("nope")).expect("list").is_empty());
}

#[test]
fn list_is_newest_first_and_prune_keeps_the_newest_per_volume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let day = 86_400_000;
    let web_data: Vec<_> = (1..=5)
        .map(|d| backup(dir, "web", "data", d * day))
        .collect();
    let web_logs: Vec<_> = (1..=2)
        .map(|d| backup(dir, "web", "logs", d * day + 1))
        .collect();
    let db_data = backup(dir, "db", "data", day / 2);

    let listed: Vec<i64> = list(dir)
        .expect("list")
        .iter()
        .map(|r| r.manifest.meta.created_at)
        .collect();
    let mut sorted = listed.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed, sorted);
    assert_eq!(listed.len(), 8);

    // Keep the newest two of each app+volume.
    let removed = prune(dir, Some(2), None, 10 * day).expect("prune");
    assert_eq!(
        removed,
        vec![
            web_data[2].id.clone(),
            web_data[1].id.clone(),
            web_data[0].id.clone()
        ]
    );
    let ids: Vec<String> = list(dir).expect("list").into_iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![
            web_data[4].id.clone(),
            web_data[3].id.clone(),
            web_logs[1].id.clone(),
            web_logs[0].id.clone(),
            db_data.id.clone()
        ]
    );
    for id in &removed {
        assert!(!dir.join(format!("{id}.tar.zst")).exists());
        assert!(!dir.join(format!("{id}.manifest.json")).exists());
    }

    // Then everything created before day 2.5 (now = day 10, older than 7.5 days).
    let removed = prune(dir, None, Some(7 * day + day / 2), 10 * day).expect("prune");
    assert_eq!(
        removed,
        vec![
            web_logs[1].id.clone(),
            web_logs[0].id.clone(),
            db_data.id.clone()
        ]
    );
    assert_eq!(list(dir).expect("list").len(), 2);
    assert!(prune(dir, None, None, 10 * day).expect("noop").is_empty());

    remove(dir, &web_data[4].id).expect("remove");
    remove(dir, &web_data[4].id).expect("remove twice");
    assert_eq!(list(dir).expect("list").len(), 1);
    assert_eq!(dir_names(dir).len(), 2);
}

#[test]
fn a_manifest_with_a_malformed_hash_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let good = backup(dir, "web", "data", 2_000);
    let text = fs::read_to_string(&good.manifest_path).expect("read");
    let short = text.replace(&good.manifest.archive_sha256, "abc");
    fs::write(&good.manifest_path, short).expect("write");
    let err = list(dir).expect_err("a malformed manifest").to_string();
    assert!(
        err.contains(&good.id) && err.contains("`archive_sha256` is not a sha256"),
        "{err}"
    );
    let err = mooring_backup::load(dir, &good.id)
        .expect_err("load")
        .to_string();
    assert!(err.contains("archive_sha256"), "{err}");
}
