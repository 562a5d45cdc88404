//! Mooring's volume backups: the archive engine.
//!
//! Docker hands over a volume's content as a tar stream (the Engine's archive API on a
//! container that mounts the volume). This crate stores such a stream, verifies it, and
//! hands it back for a restore. It is pure file and stream work: no Docker, no database
//! (the daemon catalogues backups in its store), no async runtime.
//!
//! A backup is two files in a backups folder:
//! - `<id>.tar.zst` — the tar stream exactly as received, zstd-compressed (level
//!   [`ZSTD_LEVEL`], with zstd's frame checksum); `zstd -dc <id>.tar.zst | tar -x` restores
//!   it by hand;
//! - `<id>.manifest.json` — the [`Manifest`]: what it is of ([`BackupMeta`]), every tar
//!   entry in order ([`FileEntry`]: path, kind, size, mode, sha256 of each file's
//!   content), totals, and the archive file's own sha256 and size.
//!
//! The id is `<app>-<volume>-<yyyymmddThhmmss>-<6 hex>`: sortable per volume, unique.
//!
//! - [`write_backup`] streams a tar stream into a new backup in one pass with bounded
//!   memory, crash-safely (`.partial` files, fsync, rename archive then manifest), and
//!   verifies it before it exists.
//! - [`verify`] re-reads a backup against its manifest; [`restore_to`] verifies, then
//!   streams the tar stream out: unverified bytes are never handed out.
//! - [`list`], [`load`], [`remove`], [`prune`] and [`clean_partials`] manage the folder:
//!   a backup exists exactly when its manifest does.
//!
//! Calls block; run them on a blocking thread from async code. Each of `write_backup`,
//! `verify` and `restore_to` uses one helper thread (compression or decompression) beside
//! the caller's.

mod catalogue;
mod entries;
mod error;
mod manifest;
mod pipe;
mod verify;
mod write;

pub use catalogue::{clean_partials, list, load, prune, remove};
pub use error::BackupError;
pub use manifest::{
    BackupMeta, BackupRecord, EntryKind, FileEntry, Manifest, ARCHIVE_SUFFIX, FORMAT,
    MANIFEST_SUFFIX, PARTIAL_SUFFIX,
};
pub use verify::{restore_to, verify, VerifyReport};
pub use write::{write_backup, ZSTD_LEVEL};
