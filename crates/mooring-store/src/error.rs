//! The error type of the store.
//!
//! Every message names the database file and what the store was doing. Nothing the
//! store keeps is a credential (API tokens are stored as hashes only), so `Debug` and
//! `Display` are safe to log.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// Everything that can go wrong while opening or using the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be created or opened.
    #[error(
        "cannot open the database {}: {source}; check that the data directory exists and \
         is writable by this user",
        path.display()
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the file system said.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// Another connection held the database lock for longer than the busy timeout.
    #[error(
        "the database {} stayed locked by another connection for more than {timeout_ms} ms \
         while {action}; is another Mooring process using this data directory?",
        path.display()
    )]
    Busy {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        action: &'static str,
        /// The busy timeout that ran out.
        timeout_ms: u128,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// The database was written by a newer Mooring (its schema is ahead of this code).
    #[error(
        "the database {} has schema version {found}, but this Mooring knows versions up to \
         {known}; run a newer Mooring, or restore a backup of the data directory made by \
         this version",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest schema version this code knows.
        known: usize,
    },

    /// A schema migration failed; the database keeps the previous version.
    #[error(
        "the database {}: migrating the schema to version {version} failed: {source}",
        path.display()
    )]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The schema version that could not be reached.
        version: usize,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// The connection could not be configured (WAL mode, foreign keys).
    #[error("the database {}: {detail}", path.display())]
    Setup {
        /// The database file.
        path: PathBuf,
        /// What did not work.
        detail: String,
    },

    /// Any other SQLite failure, including values in the database this code cannot read.
    #[error("the database {}: {action} failed: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        action: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// The operating system gave no randomness for a new API token.
    #[error("cannot read randomness from the operating system to make an API token: {source}")]
    Random {
        /// The error from the OS.
        source: getrandom::Error,
    },

    /// A token or session that cannot be made as asked (an empty app list, a session
    /// for a token that is gone or expired).
    #[error("{reason}")]
    Refused {
        /// What was wrong and what to do.
        reason: String,
    },
}

impl StoreError {
    /// Whether this error is a lock time-out (`SQLITE_BUSY`/`SQLITE_LOCKED`); retrying
    /// later may succeed.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }
}

/// Whether SQLite's error is a lock that was not released in time.
pub(crate) fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Classifies an SQLite error met while doing `action` on the database at `path`.
pub(crate) fn sql_error(path: &Path, action: &'static str, err: rusqlite::Error) -> StoreError {
    if is_busy(&err) {
        StoreError::Busy {
            path: path.to_path_buf(),
            action,
            timeout_ms: crate::BUSY_TIMEOUT.as_millis(),
            source: err,
        }
    } else {
        StoreError::Sqlite {
            path: path.to_path_buf(),
            action,
            source: err,
        }
    }
}
