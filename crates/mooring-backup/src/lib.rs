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
//!   content), totals, the archive file's sha256 (as `sha256sum` prints it) and size,
//!   and a digest of the manifest itself.
//!
//! The id is `<app>-<volume>-<yyyymmddThhmmss>-<6 hex>`: sortable per volume, unique.
//!
//! - [`write_backup`] streams a tar stream into a new backup in one pass with bounded
//!   memory, crash-safely (`.partial` files, fsync, rename archive then manifest), reading
//!   the archive back — it must decompress to exactly the input — before it exists.
//! - [`verify`] re-reads a backup and checks every entry against its manifest.
//! - [`restore_to`] checks the archive's sha256 and the manifest's digest before the
//!   first byte, then streams the tar stream out while checking every entry again.
//! - [`backup_dir`] and [`restore_dir`] do the same from and into a volume's folder on
//!   this machine (its mount point), with no Docker daemon in the data path; the
//!   restore stages inside the volume and moves into place only what verified.
//! - [`write_dump`] and [`restore_dump_to`] store a database dump's output (a stream of
//!   unknown length) as a backup of parts, and hand it back as the one stream it was.
//! - [`copy_backup`] copies a backup into another folder (an off-host copy on a mounted
//!   share), crash-safely, read back from the target before it exists — and back.
//! - [`Target`]: a folder or an SFTP server ([`Sftp`], through OpenSSH's `sftp` in batch
//!   mode) a backup is copied to, read back there before it exists, brought back from,
//!   and pruned by its ids ([`beyond_retention`]).
//! - [`list`], [`load`], [`remove`], [`prune`], [`prune_volume`] (retention) and [`clean_partials`] manage the folder:
//!   a backup exists exactly when its manifest does.
//! - [`mark_recreating`], [`recreations`] and [`done_recreating`] remember a volume
//!   recreation under way, so that one cut short is finished by the next sync.
//!
//! Calls block; run them on a blocking thread from async code. `write_backup` runs three
//! helper threads beside the caller's (compression, read-back, early flushes),
//! `backup_dir` one more (the walk), `restore_to` two, `restore_dir` three
//! (decompression and the archive's sha256, the entry checks, early flushes), `verify`
//! one;
//! channels between them hold a few 1 MiB chunks, so memory stays bounded (the
//! manifest's entry list aside).

mod catalogue;
mod copy;
pub mod dir;
mod dump;
mod entries;
mod error;
mod manifest;
mod pipe;
mod recreating;
mod sftp;
mod target;
mod verify;
mod write;
mod xattr;

pub use catalogue::{clean_partials, ids, list, load, prune, prune_volume, remove};
pub use copy::{copy_backup, Copied};
pub use dir::{
    backup_dir, inspect_dir, restore_dir, unchanged_since, DirRestore, DirState, PROBE_PREFIX,
    STAGING_PREFIX,
};
pub use dump::{restore_dump_to, write_dump, PART};
pub use error::BackupError;
pub use manifest::{
    BackupMeta, BackupRecord, EntryKind, FileEntry, Manifest, ARCHIVE_SUFFIX, FORMAT,
    MANIFEST_SUFFIX, PARTIAL_SUFFIX,
};
pub use recreating::{done_recreating, mark_recreating, recreating, recreations};
pub use sftp::{check_remote_folder, HostKeys, Identity, Sftp};
pub use target::{beyond_retention, Target};
pub use verify::{check_archive, restore_to, stream_checked, verify, VerifyReport};
pub use write::{write_backup, ZSTD_LEVEL};
pub use xattr::NotSet;
