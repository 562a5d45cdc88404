//! Backups of real folders and tar streams come back with zero bytes lost.

use std::fs;
use std::io::{self, Read};
use std::process::{Command, Stdio};

use crate::common::{
    dir_names, make_tree, meta, noise, sha_hex, snapshot, system_tar, system_untar,
};
use mooring_backup::{
    list, load, restore_to, verify, write_backup, BackupError, EntryKind, FORMAT,
};

#[test]
fn a_folder_piped_from_system_tar_comes_back_identical() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    let files = make_tree(&src, 3000);
    let backups = work.path().join("backups");
    fs::create_dir(&backups).expect("mkdir");

    // The stream comes straight from a running `tar`, as it would from Docker.
    let mut child = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(&src)
        .arg(".")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tar");
    let stdout = child.stdout.take().expect("stdout");
    let record = write_backup(stdout, &backups, meta("web", "data", 1_700_000_000_000))
        .expect("write_backup");
    assert!(child.wait().expect("wait").success());

    assert!(
        record.id.starts_with("web-data-20231114T221320-"),
        "{}",
        record.id
    );
    assert_eq!(
        dir_names(&backups),
        vec![
            format!("{}.manifest.json", record.id),
            format!("{}.tar.zst", record.id)
        ]
    );
    let manifest = &record.manifest;
    assert_eq!(manifest.format, FORMAT);
    // Hard links are one file on disk but a link entry in the stream.
    assert_eq!(manifest.files as usize, files - 1);
    let by_path = |p: &str| {
        manifest
            .entries
            .iter()
            .find(|e| e.path == p)
            .unwrap_or_else(|| panic!("no entry {p}"))
    };
    assert_eq!(
        by_path("./link").kind,
        EntryKind::Symlink {
            target: "all-bytes.bin".into()
        }
    );
    assert_eq!(by_path("./empty-dir/").kind, EntryKind::Dir);
    assert_eq!(by_path("./empty").size, 0);
    assert_eq!(
        by_path("./empty").sha256.as_deref(),
        Some(sha_hex(b"").as_str())
    );
    assert_eq!(by_path("./run.sh").mode, 0o4755);
    assert_eq!(by_path("./private/key").mode, 0o400);
    assert!(matches!(
        by_path("./run-hard.sh").kind,
        EntryKind::Hardlink { .. }
    ));

    // What is listed is what was written.
    assert_eq!(list(&backups).expect("list"), vec![record.clone()]);
    assert_eq!(load(&backups, &record.id).expect("load"), record);

    let report = verify(&record).expect("verify");
    assert_eq!(report.files, manifest.files);
    assert_eq!(report.bytes, manifest.bytes);
    assert_eq!(report.entries as usize, manifest.entries.len());
    assert_eq!(
        report.archive_size,
        fs::metadata(&record.archive).expect("stat").len()
    );

    let mut restored = Vec::new();
    restore_to(&record, &mut restored).expect("restore");
    assert_eq!(
        restored,
        system_tar(&src),
        "the restored stream is the stream backed up"
    );
    let dest = work.path().join("dest");
    system_untar(&restored, &dest);
    assert_eq!(snapshot(&dest), snapshot(&src));

    // The archive is plain tar + zstd: the system tools read it too (when zstd is here).
    let zstd_cli = Command::new("zstd").arg("--version").output();
    if zstd_cli.is_ok_and(|out| out.status.success()) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "zstd -dc '{}' | tar -tf -",
                record.archive.display()
            ))
            .output()
            .expect("zstd | tar");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            manifest.entries.len()
        );
    }
}

#[test]
fn a_builder_stream_is_restored_byte_for_byte() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        if let Some(link) = link {
            header.set_link_name(link).expect("link name");
        }
        builder
            .append_data(&mut header, path, data)
            .expect("append");
    };
    let big = noise(7, 5 * (1 << 20) + 17);
    let long = format!("vol/{}/file.bin", "x".repeat(150));
    add("vol/", tar::EntryType::Directory, 0o755, b"", None);
    add("vol/big.bin", tar::EntryType::Regular, 0o600, &big, None);
    add("vol/empty", tar::EntryType::Regular, 0o644, b"", None);
    add(
        "vol/empty-dir/",
        tar::EntryType::Directory,
        0o700,
        b"",
        None,
    );
    add(&long, tar::EntryType::Regular, 0o640, &noise(8, 1000), None);
    add(
        "vol/link",
        tar::EntryType::Symlink,
        0o777,
        b"",
        Some("big.bin"),
    );
    add(
        "vol/hard",
        tar::EntryType::Link,
        0o600,
        b"",
        Some("vol/big.bin"),
    );
    for i in 0..2000u64 {
        add(
            &format!("vol/many/{}/{i}.dat", i % 10),
            tar::EntryType::Regular,
            0o644,
            &noise(i, (i as usize * 13) % 700),
            None,
        );
    }
    let stream = builder.into_inner().expect("finish tar");

    let backups = tempfile::tempdir().expect("tempdir");
    let record =
        write_backup(&stream[..], backups.path(), meta("app_1", "vol.x", 0)).expect("write_backup");
    assert_eq!(record.manifest.files, 2003);
    assert_eq!(
        record.manifest.bytes,
        big.len() as u64 + 1000 + (0..2000).map(|i| (i * 13) % 700).sum::<u64>()
    );
    let long_entry = record
        .manifest
        .entries
        .iter()
        .find(|e| e.path == long)
        .expect("long path kept whole");
    assert_eq!(
        long_entry.sha256.as_deref(),
        Some(sha_hex(&noise(8, 1000)).as_str())
    );
    verify(&record).expect("verify");

    let mut restored = Vec::new();
    restore_to(&record, &mut restored).expect("restore");
    assert_eq!(restored, stream);
    let dest = backups.path().join("dest");
    system_untar(&restored, &dest);
    assert_eq!(fs::read(dest.join("vol/big.bin")).expect("read"), big);
    assert_eq!(
        fs::read_link(dest.join("vol/link")).expect("readlink"),
        std::path::Path::new("big.bin")
    );
    assert_eq!(fs::read(dest.join(&long)).expect("read"), noise(8, 1000));
}

#[test]
fn an_empty_volume_is_a_backup_too() {
    let stream = tar::Builder::new(Vec::new()).into_inner().expect("tar");
    let backups = tempfile::tempdir().expect("tempdir");
    let record = write_backup(&stream[..], backups.path(), meta("a", "v", 5)).expect("write");
    assert!(record.manifest.entries.is_empty());
    assert_eq!(verify(&record).expect("verify").entries, 0);
    let mut restored = Vec::new();
    restore_to(&record, &mut restored).expect("restore");
    assert_eq!(restored, stream);
}

/// A reader that fails after `left` bytes.
struct Failing<'a> {
    data: &'a [u8],
    left: usize,
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "peer went away",
            ));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_bad_stream_leaves_nothing_behind() {
    let mut builder = tar::Builder::new(Vec::new());
    for i in 0..50u64 {
        let data = noise(i, 4000);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, format!("f{i}"), &data[..])
            .expect("append");
    }
    let stream = builder.into_inner().expect("tar");
    let backups = tempfile::tempdir().expect("tempdir");
    let dir = backups.path();

    // Cut at an entry boundary: a tar reader would take it for a complete archive.
    let boundary = 10 * (512 + 4096);
    let err = write_backup(&stream[..boundary], dir, meta("a", "v", 1)).expect_err("cut");
    assert!(
        matches!(err, BackupError::InputTruncated { bytes } if bytes == boundary as u64),
        "{err}"
    );
    // Cut inside an entry.
    let err = write_backup(&stream[..boundary + 700], dir, meta("a", "v", 1)).expect_err("cut");
    assert!(matches!(err, BackupError::Input { .. }), "{err}");
    // Not tar at all.
    let garbage = noise(1, 100_000);
    let err = write_backup(&garbage[..], dir, meta("a", "v", 1)).expect_err("garbage");
    assert!(matches!(err, BackupError::Input { .. }), "{err}");
    // The connection fails.
    let failing = Failing {
        data: &stream,
        left: 100_000,
    };
    let err = write_backup(failing, dir, meta("a", "v", 1)).expect_err("failing");
    assert!(err.to_string().contains("peer went away"), "{err}");
    // Bad names.
    let err = write_backup(&stream[..], dir, meta("a/b", "v", 1)).expect_err("name");
    assert!(
        matches!(err, BackupError::InvalidName { field: "app", .. }),
        "{err}"
    );

    assert!(dir_names(dir).is_empty(), "{:?}", dir_names(dir));
    assert!(list(dir).expect("list").is_empty());
}

/// A destination that accepts `left` bytes, then fails.
struct Full {
    left: usize,
}

impl io::Write for Full {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "reader went away",
            ));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_destination_is_reported() {
    let mut builder = tar::Builder::new(Vec::new());
    let data = noise(3, 3 << 20);
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    builder
        .append_data(&mut header, "big", &data[..])
        .expect("append");
    let stream = builder.into_inner().expect("tar");
    let backups = tempfile::tempdir().expect("tempdir");
    let record = write_backup(&stream[..], backups.path(), meta("a", "v", 1)).expect("write");
    let err = restore_to(&record, Full { left: 1 << 20 }).expect_err("must fail");
    assert!(matches!(err, BackupError::Output { .. }), "{err}");
    assert!(err.to_string().contains("reader went away"), "{err}");
    // The backup itself is fine.
    verify(&record).expect("verify");
}
