//! Mooring's store: the daemon's embedded database, one SQLite file in the data
//! directory.
//!
//! What it keeps:
//! - the current **status of every app** ([`AppStatus`]: sync and health state, deployed
//!   revision, conditions, retry bookkeeping, and the pin set by [`Store::set_pin`]);
//! - the **history of operations** ([`OperationRecord`]) with the **actions** each one
//!   applied ([`ActionRecord`]) — the deployed revision is decided from here, never from
//!   container labels;
//! - **events** ([`EventRecord`]), the feed behind streaming and the UI;
//! - **API tokens** ([`TokenRecord`]), as SHA-256 hashes only;
//! - **webhook deliveries** seen in the last 24 hours, for replay protection;
//! - the **backups catalogue** ([`BackupRow`]), a mirror of the backup manifests on disk
//!   (which stay the truth).
//!
//! The API is synchronous: a [`Store`] holds one connection behind a mutex and every
//! call is a short statement or transaction. It is `Send + Sync`; share it with an
//! `Arc`. Several processes may open the same file (WAL mode, a
//! [busy timeout](BUSY_TIMEOUT)); a lock held longer than that is reported as
//! [`StoreError::Busy`].
//!
//! Times are unix milliseconds (`i64`). Calls that record or compare a time take it as
//! an argument (`now`, `at`, `started_at`, …) so tests are deterministic; [`now_ms`]
//! gives the real clock.
//!
//! The schema is created and upgraded at [`Store::open`] by embedded migrations,
//! tracked with `PRAGMA user_version`; a file from a newer Mooring is refused with
//! [`StoreError::TooNew`].

mod apps;
mod backups;
mod error;
mod events;
mod hosts;
mod operations;
mod retention;
mod schema;
mod tokens;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

pub use apps::{AppStatus, Condition, Held, Probation};
pub use backups::BackupRow;
pub use error::StoreError;
pub use events::{EventRecord, NewEvent};
pub use operations::{ActionRecord, NewOperation, OpResult, OperationRecord, ParseOpResultError};
pub use tokens::{
    ParseRoleError, Role, TokenInfo, TokenOptions, TokenRecord, SESSION_LIFETIME_MS,
    SESSION_PREFIX, TOKEN_PREFIX,
};
pub use webhooks::DELIVERY_WINDOW_MS;

use error::sql_error;

/// How long a call waits for another connection's lock before failing with
/// [`StoreError::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The database's file name in the daemon's data directory.
pub const FILE_NAME: &str = "mooring.db";

/// The current time in unix milliseconds (the core's clock).
pub use mooring_core::clock::now_ms;

/// The daemon's database. See the [crate documentation](crate).
pub struct Store {
    inner: Mutex<Inner>,
    /// The database file, or `:memory:`.
    path: PathBuf,
}

/// What the mutex guards.
struct Inner {
    conn: Connection,
    /// When [`Store::remember_delivery`] last deleted expired deliveries.
    deliveries_pruned_at: Option<i64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the database at `path`, creating the file (mode 0600 on Unix) if it does
    /// not exist, and brings its schema up to date.
    ///
    /// The parent directory must exist. The connection uses WAL journaling
    /// (`synchronous = NORMAL`: a power loss may lose the last commits, never corrupt
    /// the file), enforces foreign keys and waits up to [`BUSY_TIMEOUT`] for locks.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        let conn = Connection::open(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            source: Box::new(e),
        })?;
        Store::init(conn, path, true)
    }

    /// Opens the daemon's database at `path` to read it from another process (the
    /// command line): read-only, no migration, nothing created. Fails when the file
    /// does not exist or its schema is not this code's.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| StoreError::Open {
            path: path.clone(),
            source: Box::new(e),
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_error(&path, "setting the busy timeout", e))?;
        let version: usize = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| sql_error(&path, "reading the schema version", e))?;
        if version != schema::latest_version() {
            return Err(StoreError::Setup {
                path,
                detail: format!(
                    "its schema is version {version}, this program's is {}; run the same version of mooring as the daemon",
                    schema::latest_version()
                ),
            });
        }
        Ok(Store {
            inner: Mutex::new(Inner {
                conn,
                deliveries_pruned_at: None,
            }),
            path,
        })
    }

    /// Opens a fresh database in memory, for tests. Nothing is kept after drop.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Open {
            path: path.clone(),
            source: Box::new(e),
        })?;
        Store::init(conn, path, false)
    }

    /// The database file (`:memory:` for [`Store::open_in_memory`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version this code creates and understands.
    pub fn schema_version() -> usize {
        schema::latest_version()
    }

    fn init(mut conn: Connection, path: PathBuf, on_disk: bool) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_error(&path, "setting the busy timeout", e))?;
        if on_disk {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(|e| sql_error(&path, "switching to WAL journaling", e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Setup {
                    path,
                    detail: format!(
                        "SQLite refused WAL journaling (journal mode is {mode}); the data \
                         directory must be on a local file system"
                    ),
                });
            }
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| sql_error(&path, "setting synchronous = NORMAL", e))?;
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| sql_error(&path, "enabling foreign keys", e))?;
        let fk: bool = conn
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .map_err(|e| sql_error(&path, "checking foreign keys", e))?;
        if !fk {
            return Err(StoreError::Setup {
                path,
                detail: "this SQLite build cannot enforce foreign keys".to_owned(),
            });
        }
        schema::migrate(&mut conn, &path)?;
        Ok(Store {
            inner: Mutex::new(Inner {
                conn,
                deliveries_pruned_at: None,
            }),
            path,
        })
    }

    /// Locks the connection. A panic in another thread while it held the lock leaves
    /// the connection usable (an open transaction was rolled back when it was dropped),
    /// so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Maps an SQLite error met while doing `action`.
    fn err(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| sql_error(&self.path, action, e)
    }
}

/// Creates the database file readable by its owner only, if it does not exist yet
/// (SQLite gives its `-wal` and `-shm` files the same mode).
#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(e),
        }),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Converts a count or limit to SQLite's integer, saturating.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The `WHERE` of a page of rows by id — one app's or all, ids beyond a bound
/// (`("<", id)` pages back, `(">", id)` forward) — and its values, the `LIMIT` last.
fn page_filter(
    app: Option<&str>,
    id_bound: Option<(&'static str, i64)>,
    limit: usize,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(app) = app {
        conditions.push("app = ?".to_string());
        args.push(Value::Text(app.to_owned()));
    }
    if let Some((cmp, id)) = id_bound {
        conditions.push(format!("id {cmp} ?"));
        args.push(Value::Integer(id));
    }
    args.push(Value::Integer(sql_count(limit)));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    (filter, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Store>();
    }

    #[test]
    fn in_memory_store_is_migrated() {
        let store = Store::open_in_memory().unwrap();
        let version: i64 = store
            .lock()
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, sql_count(Store::schema_version()));
        assert!(store.apps().unwrap().is_empty());
    }

    #[test]
    fn now_ms_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
