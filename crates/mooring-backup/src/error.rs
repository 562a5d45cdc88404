//! The error type of the backup engine.
//!
//! Every message says what failed, where (the archive, manifest or folder), and what to do
//! next. Nothing here is a credential; `Display` and `Debug` are safe to log.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while writing, checking, restoring or pruning backups.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// An app or volume name that cannot be part of a backup id (or an id that is not one).
    #[error(
        "invalid backup {field} {value:?}: use 1 to 128 characters from A-Z a-z 0-9 _ . - @ \
         (as Docker volume and Mooring app names do)"
    )]
    InvalidName {
        /// `app`, `volume` or `id`.
        field: &'static str,
        /// The value given.
        value: String,
    },

    /// `created_at` is before 1970.
    #[error(
        "invalid backup time {created_at}: created_at is unix milliseconds and cannot be \
         negative"
    )]
    InvalidTime {
        /// The value given.
        created_at: i64,
    },

    /// The system's random source failed (needed for the id's random suffix).
    #[error("cannot draw random bytes for a backup id: {source}")]
    Random {
        /// What the random source said.
        source: getrandom::Error,
    },

    /// A file-system operation on the backups folder failed.
    #[error(
        "cannot {action} {}: {source}; check that the backups folder exists, is writable \
         and has free space",
        path.display()
    )]
    Io {
        /// What the engine was doing ("create", "write", "rename", …).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// The tar stream given to [`write_backup`](crate::write_backup) failed to read or is not
    /// a tar archive. Nothing was kept.
    #[error(
        "the volume's tar stream could not be read as a tar archive: {source}; no backup was \
         written — check where the stream comes from (the Docker archive request) and retry"
    )]
    Input {
        /// The read or tar parsing error.
        source: io::Error,
    },

    /// The tar stream ended without the end-of-archive marker: it was cut short.
    #[error(
        "the volume's tar stream ended after {bytes} bytes without an end-of-archive marker: \
         it was cut short, so no backup was written; take the backup again"
    )]
    InputTruncated {
        /// How many bytes were read.
        bytes: u64,
    },

    /// A backup target (an SFTP server…) refused or failed.
    #[error("{target}: {why}")]
    Target {
        /// The target, as its configuration names it.
        target: String,
        /// What it said.
        why: String,
    },

    /// A recreation of `volume` was cut short, and the backup it restores is gone.
    #[error(
        "volume {volume} was being recreated from backup {id}, which is gone: its data is not \
         back; restore another backup of it (mooring backup list), then remove {}",
        marker.display()
    )]
    Recreation {
        volume: String,
        id: String,
        marker: PathBuf,
    },

    /// A dump was asked of a backup that is a copy of files, or the other way.
    #[error("backup {id} is not a database dump (it is a copy of the volume's files): restore it as files")]
    NotADump {
        /// The backup (or `app/volume` for one not yet written).
        id: String,
    },

    /// A freshly written backup did not verify; its files were deleted.
    #[error("backup {id} did not verify after it was written and was deleted: {source}")]
    NotVerified {
        /// The id it would have had.
        id: String,
        /// Why it did not verify.
        source: Box<BackupError>,
    },

    /// A manifest file is not a valid manifest.
    #[error(
        "the backup manifest {} is unreadable: {source}; this backup cannot be verified or \
         restored — move the file aside and use another backup",
        path.display()
    )]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },

    /// A manifest whose content no longer matches its digest: it was edited or damaged.
    #[error(
        "the backup manifest {} was changed after the backup (its content does not match \
         its digest); nothing was restored — verify the backup for details and use another \
         backup",
        path.display()
    )]
    ManifestChanged {
        /// The manifest file.
        path: PathBuf,
    },

    /// A manifest of a format this version does not read.
    #[error(
        "the backup manifest {} has format {format}, but this Mooring reads format {}; use \
         the Mooring version that wrote it, or a newer one",
        path.display(),
        crate::FORMAT
    )]
    UnsupportedFormat {
        /// The manifest file.
        path: PathBuf,
        /// The format found.
        format: u32,
    },

    /// No backup with that id in the folder.
    #[error(
        "there is no backup {id:?} in {} (no manifest {id}.manifest.json); list the backups \
         to see which exist",
        dir.display()
    )]
    NotFound {
        /// The backups folder.
        dir: PathBuf,
        /// The id asked for.
        id: String,
    },

    /// The archive file has another size than its manifest records.
    #[error(
        "the backup archive {} is {actual} bytes but its manifest says {expected}: it was \
         truncated or changed after the backup; use another backup",
        path.display()
    )]
    ArchiveSize {
        /// The archive file.
        path: PathBuf,
        /// Size in the manifest.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },

    /// The archive file's sha256 differs from its manifest's.
    #[error(
        "the backup archive {} has sha256 {actual} but its manifest says {expected}: it was \
         damaged or changed after the backup; use another backup",
        path.display()
    )]
    ArchiveChecksum {
        /// The archive file.
        path: PathBuf,
        /// sha256 in the manifest.
        expected: String,
        /// sha256 of the file.
        actual: String,
    },

    /// The archive cannot be decompressed or its tar stream cannot be parsed.
    #[error(
        "the backup archive {} cannot be read back: {detail}; it is damaged — use another \
         backup",
        path.display()
    )]
    Corrupt {
        /// The archive file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },

    /// An entry of the archive differs from the manifest (the first one found).
    #[error(
        "the backup archive {} does not match its manifest at {entry:?}: {detail}; the archive \
         or the manifest was changed after the backup — use another backup",
        path.display()
    )]
    Mismatch {
        /// The archive file.
        path: PathBuf,
        /// The entry path (the manifest's, when there is one).
        entry: String,
        /// What differs.
        detail: String,
    },

    /// Reading or writing a volume's folder (its mount point) failed.
    #[error(
        "cannot {action} {}: {source}; check that the volume's folder is readable and \
         writable by Mooring (it runs as root for this) and has free space",
        path.display()
    )]
    Volume {
        /// What was being done ("read", "write", "move into place", …).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// An archive entry that would be written outside the volume or through a symlink.
    #[error(
        "the backup archive {} has an entry {entry:?} that cannot be restored safely: \
         {detail}; nothing was moved into the volume"
        , path.display()
    )]
    UnsafeEntry {
        /// The archive file.
        path: PathBuf,
        /// The entry's path.
        entry: String,
        /// Why it was refused.
        detail: String,
    },

    /// Another backup's verified restore was interrupted while it was being moved into
    /// place in this volume.
    #[error(
        "an interrupted restore of backup {id} is half moved into this volume ({}); run \
         `mooring backup restore {id}` with the same target to finish it first, or remove \
         that folder"
        , path.display()
    )]
    InterruptedRestore {
        /// The staging folder.
        path: PathBuf,
        /// The backup it restores.
        id: String,
    },

    /// Writing the restored tar stream to its destination failed.
    #[error(
        "writing the restored tar stream failed: {source}; the destination may hold part of \
         the data — fix the destination and restore again"
    )]
    Output {
        /// The write error.
        source: io::Error,
    },
}

impl BackupError {
    /// True when the backup itself is damaged or changed (its archive or manifest): a
    /// restore of it is refused, and another backup should be used.
    pub fn is_damaged_backup(&self) -> bool {
        matches!(
            self,
            BackupError::ManifestChanged { .. }
                | BackupError::ArchiveSize { .. }
                | BackupError::ArchiveChecksum { .. }
                | BackupError::Corrupt { .. }
                | BackupError::Mismatch { .. }
                | BackupError::UnsafeEntry { .. }
                | BackupError::Manifest { .. }
        )
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        BackupError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
