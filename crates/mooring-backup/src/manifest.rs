//! The manifest (what a backup holds), backup ids and the file names of a backup.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sha2::Digest;

use crate::pipe::HashWriter;
use crate::BackupError;

/// The manifest format this version writes and reads.
pub const FORMAT: u32 = 1;

/// The file-name suffix of archives (`<id>.tar.zst`).
pub const ARCHIVE_SUFFIX: &str = ".tar.zst";
/// The file-name suffix of manifests (`<id>.manifest.json`).
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// The suffix of files still being written (`<id>.tar.zst.partial`, …).
pub const PARTIAL_SUFFIX: &str = ".partial";

/// What a backup is of and why it was taken; given by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupMeta {
    /// The app (Mooring app name).
    pub app: String,
    /// The volume (Docker volume name).
    pub volume: String,
    /// The revision deployed when the backup was taken, if known.
    pub revision: Option<String>,
    /// Why it was taken (`"before remove-volume"`, `"manual"`, …).
    pub reason: String,
    /// When it was taken, unix milliseconds (also the id's timestamp, UTC).
    pub created_at: i64,
    /// A database dump (see [`write_dump`](crate::write_dump)): the service it was
    /// taken in. `None` (left out of the manifest) for a copy of the volume's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
}

/// What kind of tar entry a [`FileEntry`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file (its content is hashed).
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink {
        /// Where it points, as stored.
        target: String,
    },
    /// A hard link to an earlier entry.
    Hardlink {
        /// The earlier entry's path.
        target: String,
    },
    /// Anything else (device, FIFO, global PAX header…), kept as is.
    Other {
        /// The tar type flag (`'3'` character device, `'6'` FIFO, `'g'` …).
        type_flag: char,
    },
}

/// One entry of the tar stream, in stream order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The path as stored in the tar stream (long names included; non-UTF-8 bytes are
    /// replaced by U+FFFD here, the archive keeps them).
    pub path: String,
    /// What it is.
    #[serde(flatten)]
    pub kind: EntryKind,
    /// Content bytes (files; 0 for the others).
    pub size: u64,
    /// Permission bits as stored (`0o755`, …).
    pub mode: u32,
    /// sha256 of the content, lowercase hex (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The manifest of a backup: `<id>.manifest.json` beside `<id>.tar.zst`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format, [`FORMAT`].
    pub format: u32,
    /// What the backup is of.
    pub meta: BackupMeta,
    /// Every tar entry, in stream order.
    pub entries: Vec<FileEntry>,
    /// Number of regular files.
    pub files: u64,
    /// Total content bytes of the regular files.
    pub bytes: u64,
    /// sha256 of the compressed archive file, lowercase hex.
    pub archive_sha256: String,
    /// Size of the compressed archive file.
    pub archive_size: u64,
    /// sha256 (hex) of this manifest's JSON without this field ([`Manifest::compute_digest`]):
    /// a manifest changed after the backup is refused before a restore starts.
    pub digest: String,
}

impl Manifest {
    /// The digest of the manifest's content: sha256 of its compact JSON with `digest`
    /// left out (fields in declaration order, as written).
    pub fn compute_digest(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            format: u32,
            meta: &'a BackupMeta,
            entries: &'a [FileEntry],
            files: u64,
            bytes: u64,
            archive_sha256: &'a str,
            archive_size: u64,
        }
        let body = Body {
            format: self.format,
            meta: &self.meta,
            entries: &self.entries,
            files: self.files,
            bytes: self.bytes,
            archive_sha256: &self.archive_sha256,
            archive_size: self.archive_size,
        };
        let mut out = HashWriter::new(std::io::sink());
        // Serializing plain structs into a sink cannot fail.
        let _ = serde_json::to_writer(&mut out, &body);
        hex(&out.hasher.finalize())
    }
}

/// A complete backup in a backups folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    /// The id: `<app>-<volume>-<yyyymmddThhmmss>-<6 hex>`.
    pub id: String,
    /// `<dir>/<id>.tar.zst`: the tar stream, zstd-compressed.
    pub archive: PathBuf,
    /// `<dir>/<id>.manifest.json`.
    pub manifest_path: PathBuf,
    /// The manifest as read (or written).
    pub manifest: Manifest,
}

impl BackupRecord {
    /// The record of backup `id` in `dir`, with its manifest.
    pub(crate) fn new(dir: &Path, id: &str, manifest: Manifest) -> Self {
        BackupRecord {
            id: id.to_owned(),
            archive: archive_path(dir, id),
            manifest_path: manifest_path(dir, id),
            manifest,
        }
    }
}

pub(crate) fn archive_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{ARCHIVE_SUFFIX}"))
}

pub(crate) fn manifest_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{MANIFEST_SUFFIX}"))
}

pub(crate) fn partial(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(PARTIAL_SUFFIX);
    PathBuf::from(name)
}

/// True for names usable in ids: 1-128 of `[A-Za-z0-9_.@-]` (`@`: an app deployed to
/// several hosts names each instance `app@host`).
fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@'))
}

pub(crate) fn check_meta(meta: &BackupMeta) -> Result<(), BackupError> {
    for (field, value) in [("app", &meta.app), ("volume", &meta.volume)] {
        if !valid_name(value, 128) {
            return Err(BackupError::InvalidName {
                field,
                value: value.clone(),
            });
        }
    }
    if meta.created_at < 0 {
        return Err(BackupError::InvalidTime {
            created_at: meta.created_at,
        });
    }
    Ok(())
}

/// Checks that `app` can name an app's folder on a backup target, as it names backups.
pub(crate) fn check_name(app: &str) -> Result<(), BackupError> {
    if valid_name(app, 128) && app != "." && app != ".." {
        Ok(())
    } else {
        Err(BackupError::InvalidName {
            field: "app",
            value: app.to_string(),
        })
    }
}

/// Checks that `id` can name backup files (no separators, no surprises).
pub(crate) fn check_id(id: &str) -> Result<(), BackupError> {
    if valid_name(id, 300) && !id.starts_with('.') {
        Ok(())
    } else {
        Err(BackupError::InvalidName {
            field: "id",
            value: id.to_owned(),
        })
    }
}

/// A new id for `meta` (checked by [`check_meta`]): `<app>-<volume>-<stamp>-<6 hex>`.
pub(crate) fn new_id(meta: &BackupMeta) -> Result<String, BackupError> {
    let mut random = [0u8; 3];
    getrandom::fill(&mut random).map_err(|source| BackupError::Random { source })?;
    Ok(format!(
        "{}-{}-{}-{}",
        meta.app,
        meta.volume,
        utc_stamp(meta.created_at),
        hex(&random)
    ))
}

/// `yyyymmddThhmmss` (UTC) of unix milliseconds (not negative).
pub(crate) fn utc_stamp(ms: i64) -> String {
    let t = mooring_core::clock::UtcTime::from_unix_ms(ms);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// Lowercase hex (the core's: one spelling of hashes everywhere).
pub(crate) use mooring_core::hash::hex;

/// Reads and checks a manifest file.
pub(crate) fn read_manifest(path: &Path) -> Result<Manifest, BackupError> {
    let file = File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let manifest: Manifest = serde_json::from_reader(BufReader::new(file)).map_err(|source| {
        if source.is_io() {
            BackupError::io("read", path, std::io::Error::other(source.to_string()))
        } else {
            BackupError::Manifest {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    if manifest.format != FORMAT {
        return Err(BackupError::UnsupportedFormat {
            path: path.to_owned(),
            format: manifest.format,
        });
    }
    // Whoever can write the folder can write a manifest: its hashes are checked for
    // shape before anything shows or compares them.
    for (field, value) in [
        ("archive_sha256", &manifest.archive_sha256),
        ("digest", &manifest.digest),
    ] {
        if value.len() != 64
            || !value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(BackupError::Manifest {
                path: path.to_owned(),
                source: serde::de::Error::custom(format!(
                    "`{field}` is not a sha256 (64 lower-case hex digits): {value:?}"
                )),
            });
        }
    }
    Ok(manifest)
}

/// Writes `manifest` to a new file at `path` and fsyncs it.
pub(crate) fn write_manifest(path: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| BackupError::io("create", path, e))?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    serde_json::to_writer(&mut out, manifest)
        .map_err(|e| BackupError::io("write", path, std::io::Error::other(e.to_string())))?;
    out.write_all(b"\n")
        .map_err(|e| BackupError::io("write", path, e))?;
    let file = out
        .into_inner()
        .map_err(|e| BackupError::io("write", path, e.into_error()))?;
    file.sync_all()
        .map_err(|e| BackupError::io("fsync", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_civil_time() {
        assert_eq!(utc_stamp(0), "19700101T000000");
        assert_eq!(utc_stamp(951_782_400_000), "20000229T000000");
        assert_eq!(utc_stamp(1_709_251_199_999), "20240229T235959");
        assert_eq!(utc_stamp(4_102_444_800_000), "21000101T000000");
    }

    #[test]
    fn names_are_checked() {
        let meta = |app: &str, volume: &str| BackupMeta {
            app: app.into(),
            volume: volume.into(),
            revision: None,
            reason: "test".into(),
            created_at: 0,
            dump: None,
        };
        assert!(check_meta(&meta("web", "db_data.1-x")).is_ok());
        for (app, volume) in [("", "v"), ("a/b", "v"), ("a", "v v"), ("a", "ü")] {
            assert!(
                check_meta(&meta(app, volume)).is_err(),
                "{app:?} {volume:?}"
            );
        }
        assert!(check_id("../x").is_err());
        assert!(check_id(".hidden").is_err());
        let id = new_id(&meta("web", "data")).expect("id");
        assert!(id.starts_with("web-data-19700101T000000-"), "{id}");
        assert_eq!(id.len(), "web-data-19700101T000000-".len() + 6);
    }

    #[test]
    fn entries_serialize_flat() {
        let entry = FileEntry {
            path: "./l".into(),
            kind: EntryKind::Symlink { target: "a".into() },
            size: 0,
            mode: 0o777,
            sha256: None,
        };
        let json = serde_json::to_string(&entry).expect("json");
        assert_eq!(
            json,
            r#"{"path":"./l","kind":"symlink","target":"a","size":0,"mode":511}"#
        );
        let back: FileEntry = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, entry);
    }
}
