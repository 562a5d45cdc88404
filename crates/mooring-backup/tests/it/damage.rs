//! Damaged archives and edited manifests are found, and never restored.

use std::fs;
use std::io;
use std::path::Path;

use crate::common::{meta, noise};
use mooring_backup::{
    load, restore_dir, restore_to, verify, write_backup, BackupError, BackupRecord,
};
use sha2::{Digest, Sha256};

/// A stream of files `f0`…`f29`, 20 KB each.
fn stream() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for i in 0..30u64 {
        let data = noise(i, 20_000);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, format!("f{i}"), &data[..])
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

fn backup(dir: &Path) -> BackupRecord {
    write_backup(&stream()[..], dir, meta("web", "data", 1_000)).expect("write_backup")
}

/// Restoring must fail and write nothing.
fn assert_refused(record: &BackupRecord) -> BackupError {
    let mut out = Vec::new();
    let err = restore_to(record, &mut out).expect_err("restore must refuse");
    assert!(out.is_empty(), "{} bytes handed out", out.len());
    err
}

/// Rewrites the manifest file with `edit` applied, as damage would (its digest no longer
/// matches); returns the record as loaded again.
fn edit_manifest(record: &BackupRecord, edit: impl FnOnce(&mut serde_json::Value)) -> BackupRecord {
    let text = fs::read_to_string(&record.manifest_path).expect("read manifest");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    edit(&mut json);
    fs::write(&record.manifest_path, json.to_string()).expect("write manifest");
    let dir = record.archive.parent().expect("dir");
    load(dir, &record.id).expect("load")
}

/// [`edit_manifest`], then a new digest: a deliberate, consistent edit.
fn reseal_manifest(
    record: &BackupRecord,
    edit: impl FnOnce(&mut serde_json::Value),
) -> BackupRecord {
    let mut record = edit_manifest(record, edit);
    record.manifest.digest = record.manifest.compute_digest();
    fs::write(
        &record.manifest_path,
        serde_json::to_string(&record.manifest).expect("json"),
    )
    .expect("write manifest");
    record
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_flipped_byte_fails_verify_and_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = backup(dir.path());
    let mut bytes = fs::read(&record.archive).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&record.archive, &bytes).expect("write");

    let err = verify(&record).expect_err("verify must fail");
    assert!(matches!(err, BackupError::ArchiveChecksum { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&record.manifest.archive_sha256), "{text}");
    assert!(text.contains("use another backup"), "{text}");
    assert!(matches!(
        assert_refused(&record),
        BackupError::ArchiveChecksum { .. }
    ));
}

#[test]
fn a_truncated_archive_fails_verify_and_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = backup(dir.path());
    let bytes = fs::read(&record.archive).expect("read");
    fs::write(&record.archive, &bytes[..bytes.len() - 100]).expect("write");

    let err = verify(&record).expect_err("verify must fail");
    assert!(
        matches!(err, BackupError::ArchiveSize { expected, actual, .. }
            if expected == bytes.len() as u64 && actual == expected - 100),
        "{err}"
    );
    assert!(matches!(
        assert_refused(&record),
        BackupError::ArchiveSize { .. }
    ));

    // A manifest edited to agree with the cut file is refused as edited…
    let cut = &bytes[..bytes.len() - 100];
    let agree = |m: &mut serde_json::Value| {
        m["archive_sha256"] = hex(cut).into();
        m["archive_size"] = cut.len().into();
    };
    let record = edit_manifest(&record, agree);
    let err = verify(&record).expect_err("verify must fail");
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
    assert!(matches!(
        assert_refused(&record),
        BackupError::ManifestChanged { .. }
    ));
    // …and even with a new digest, decompression notices (a restore stops there).
    let record = reseal_manifest(&record, agree);
    let err = verify(&record).expect_err("verify must fail");
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
    let err = restore_to(&record, io::sink()).expect_err("restore must fail");
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");

    // A missing archive is named.
    fs::remove_file(&record.archive).expect("rm");
    let err = verify(&record).expect_err("verify must fail");
    assert!(err.to_string().contains(".tar.zst"), "{err}");
}

#[test]
fn an_edited_manifest_fails_verify_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = backup(dir.path());
    let original = record.clone();
    let record = edit_manifest(&record, |m| {
        m["entries"][7]["sha256"] = hex(b"something else").into();
    });
    let err = verify(&record).expect_err("verify must fail");
    match &err {
        BackupError::Mismatch { entry, detail, .. } => {
            assert_eq!(entry, "f7");
            assert!(detail.contains("sha256"), "{detail}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("\"f7\""), "{err}");
    assert!(matches!(
        assert_refused(&record),
        BackupError::ManifestChanged { .. }
    ));

    // A mode, a missing entry and an extra entry are named too.
    let record = edit_manifest(&record, |m| {
        m["entries"][7]["sha256"] = hex(&noise(7, 20_000)).into();
        m["entries"][3]["mode"] = 0o600.into();
    });
    let err = verify(&record).expect_err("mode");
    assert!(
        matches!(&err, BackupError::Mismatch { entry, .. } if entry == "f3"),
        "{err}"
    );
    let record = edit_manifest(&record, |m| {
        m["entries"][3]["mode"] = 0o644.into();
        m["entries"].as_array_mut().expect("array").pop();
    });
    let err = verify(&record).expect_err("extra");
    assert!(
        matches!(&err, BackupError::Mismatch { entry, .. } if entry == "f29"),
        "{err}"
    );

    // Any other edit is found by the digest.
    let last = serde_json::to_value(&original.manifest.entries[29]).expect("json");
    let record = edit_manifest(&record, |m| {
        m["entries"].as_array_mut().expect("array").push(last);
    });
    verify(&record).expect("entries are as they were");
    let record = edit_manifest(&record, |m| m["meta"]["reason"] = "other".into());
    let err = verify(&record).expect_err("digest");
    assert!(matches!(err, BackupError::ManifestChanged { .. }), "{err}");
    assert!(matches!(
        assert_refused(&record),
        BackupError::ManifestChanged { .. }
    ));
}

#[test]
fn content_damaged_before_compression_is_found_per_file() {
    // The archive and its manifest's archive checksum agree, but a file's bytes changed:
    // only the per-file hashes can tell.
    let dir = tempfile::tempdir().expect("tempdir");
    let record = backup(dir.path());
    let mut tar = stream();
    // f2's content starts after three headers and two 20 KB files (padded to 20 480).
    tar[3 * 512 + 2 * 20_480 + 100] ^= 1;
    let archive = zstd::encode_all(&tar[..], 3).expect("zstd");
    fs::write(&record.archive, &archive).expect("write");
    let record = reseal_manifest(&record, |m| {
        m["archive_sha256"] = hex(&archive).into();
        m["archive_size"] = archive.len().into();
    });
    let err = verify(&record).expect_err("verify must fail");
    assert!(
        matches!(&err, BackupError::Mismatch { entry, .. } if entry == "f2"),
        "{err}"
    );
    // The restore checks every entry too, before writing the chunk (here: the whole
    // stream) where it failed.
    let err = assert_refused(&record);
    assert!(
        matches!(&err, BackupError::Mismatch { entry, .. } if entry == "f2"),
        "{err}"
    );
}

#[test]
fn a_manifest_of_another_format_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = backup(dir.path());
    let text = fs::read_to_string(&record.manifest_path).expect("read");
    fs::write(
        &record.manifest_path,
        text.replace("\"format\":1", "\"format\":2"),
    )
    .expect("w");
    let err = load(dir.path(), &record.id).expect_err("format 2");
    assert!(
        matches!(err, BackupError::UnsupportedFormat { format: 2, .. }),
        "{err}"
    );
    fs::write(&record.manifest_path, "{not json").expect("w");
    let err = load(dir.path(), &record.id).expect_err("garbage");
    assert!(matches!(err, BackupError::Manifest { .. }), "{err}");
    let err = load(dir.path(), "web-data-nope").expect_err("missing");
    assert!(matches!(err, BackupError::NotFound { .. }), "{err}");
}

/// Restoring into a folder must fail and leave it as it was: no entry, no staging folder.
fn assert_refused_into_empty_folder(record: &BackupRecord) -> BackupError {
    let dst = tempfile::tempdir().expect("tempdir");
    let err = restore_dir(record, dst.path()).expect_err("restore must refuse");
    let left: Vec<_> = fs::read_dir(dst.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "{err}: left {left:?}");
    err
}

#[test]
fn a_folder_restore_refuses_a_resealed_manifest_and_names_a_flipped_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = backup(dir.path());
    // The manifest says another sha256 for one file and was resealed to match: the
    // archive file is the one described, but the checks find the file.
    let resealed = reseal_manifest(&record, |m| {
        m["entries"][4]["sha256"] = "0".repeat(64).into();
    });
    let err = assert_refused_into_empty_folder(&resealed);
    assert!(
        matches!(&err, BackupError::Mismatch { entry, .. } if entry == "f4"),
        "{err}"
    );
    // One flipped byte: named as a changed archive, whatever else broke first.
    let other = tempfile::tempdir().expect("tempdir");
    let record = backup(other.path());
    let mut bytes = fs::read(&record.archive).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&record.archive, &bytes).expect("write");
    let err = assert_refused_into_empty_folder(&record);
    assert!(matches!(&err, BackupError::ArchiveChecksum { .. }), "{err}");
    assert!(err.to_string().contains("use another backup"), "{err}");
}
