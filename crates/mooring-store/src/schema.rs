//! The schema, as an ordered list of migrations, and the code that applies them.
//!
//! `MIGRATIONS[i]` takes the database from schema version `i` to `i + 1`; the version
//! is `PRAGMA user_version` (0 in a new file). At open, every migration the file has
//! not seen yet is applied in order, each in its own `IMMEDIATE` transaction together
//! with the new `user_version`, so a crash leaves the file at a whole version and two
//! processes opening the same file at once do not both migrate it. A file whose version
//! is above `MIGRATIONS.len()` was written by a newer Mooring and is refused.
//!
//! Rules for adding a migration:
//! - append, never edit or reorder a released entry;
//! - foreign-key enforcement cannot be switched inside the migration's transaction: a
//!   migration that rebuilds a table follows SQLite's "12-step" procedure (new table,
//!   copy, drop, rename) and must keep every reference valid;
//! - all tables are `STRICT`; times are unix milliseconds in `INTEGER` columns.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{sql_error, StoreError};

/// The migrations, oldest first. The schema version of a database is how many of
/// them it has had applied.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: apps, operations and their actions, events, API tokens, webhook deliveries.
    r#"
    CREATE TABLE apps (
        name              TEXT PRIMARY KEY NOT NULL,
        sync              TEXT NOT NULL,
        health            TEXT NOT NULL,
        revision          TEXT,
        revision_describe TEXT,
        source            TEXT NOT NULL,
        -- changed only by Store::set_pin, never by put_app
        pinned            TEXT,
        -- JSON array of {"kind", "message"}
        conditions        TEXT NOT NULL DEFAULT '[]',
        last_operation    INTEGER,
        next_retry_at     INTEGER,
        failures          INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
        updated_at        INTEGER NOT NULL
    ) STRICT;

    -- AUTOINCREMENT: ids are never reused after pruning, so paging by id stays sound.
    CREATE TABLE operations (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        app         TEXT NOT NULL,
        "trigger"   TEXT NOT NULL,
        revision    TEXT,
        dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        result      TEXT,
        error       TEXT
    ) STRICT;
    CREATE INDEX operations_by_app ON operations (app, id);
    CREATE INDEX operations_unfinished ON operations (id) WHERE finished_at IS NULL;

    CREATE TABLE actions (
        operation_id INTEGER NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
        seq          INTEGER NOT NULL CHECK (seq >= 0),
        kind         TEXT NOT NULL,
        resource     TEXT NOT NULL,
        reason       TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        duration_ms  INTEGER NOT NULL,
        error        TEXT,
        PRIMARY KEY (operation_id, seq)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        app     TEXT,
        kind    TEXT NOT NULL,
        message TEXT NOT NULL,
        at      INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX events_by_app ON events (app, id);

    -- Only the SHA-256 of a token is kept, never the token.
    CREATE TABLE api_tokens (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        name         TEXT NOT NULL,
        role         TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        hash         BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
        prefix       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER
    ) STRICT;

    CREATE TABLE webhook_deliveries (
        provider    TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        seen_at     INTEGER NOT NULL,
        PRIMARY KEY (provider, delivery_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (seen_at);
    "#,
    // 2: the backups catalogue, a mirror of the manifests in the backups folder.
    r#"
    CREATE TABLE backups (
        id             TEXT PRIMARY KEY NOT NULL,
        app            TEXT NOT NULL,
        volume         TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        revision       TEXT,
        reason         TEXT NOT NULL,
        files          INTEGER NOT NULL CHECK (files >= 0),
        bytes          INTEGER NOT NULL CHECK (bytes >= 0),
        archive_size   INTEGER NOT NULL CHECK (archive_size >= 0),
        archive_sha256 TEXT NOT NULL
    ) STRICT;
    CREATE INDEX backups_by_app ON backups (app, created_at);
    "#,
    // 3: what an operation's plan said a person should know (policy notes), JSON array.
    r#"
    ALTER TABLE operations ADD COLUMN notes TEXT NOT NULL DEFAULT '[]';
    "#,
    // 4: token expiry and app limits; web UI sessions (a random id, kept as SHA-256,
    // ending with its token).
    r#"
    ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
    -- JSON array of app names the token is limited to; NULL: every app
    ALTER TABLE api_tokens ADD COLUMN apps TEXT;

    CREATE TABLE sessions (
        hash       BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
        token_id   INTEGER NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX sessions_by_token ON sessions (token_id);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    "#,
    // 5: who asked for an operation (the API token's name); NULL: Mooring itself
    // (interval, drift, retry, startup) or a webhook.
    r#"
    ALTER TABLE operations ADD COLUMN requested_by TEXT;
    "#,
    // 6: what an action printed (a build's output, its last lines).
    r#"
    ALTER TABLE actions ADD COLUMN output TEXT;
    "#,
    // 7: the Engine each host is known to be (its id), so a replaced one is noticed.
    r#"
    CREATE TABLE hosts (
        name        TEXT PRIMARY KEY NOT NULL,
        engine_id   TEXT NOT NULL,
        known_since INTEGER NOT NULL
    ) STRICT;
    "#,
    // 8: the revision an app holds back (it failed to render, build or roll out, or
    // was rolled back), with its condition as JSON: a restart does not try it again.
    r#"
    ALTER TABLE apps ADD COLUMN held TEXT;
    "#,
    // 9: a backup that is a database dump names the service it was taken in.
    r#"
    ALTER TABLE backups ADD COLUMN dump TEXT;
    "#,
    // 10: a revision on probation (`sync.rollback`) as JSON: a restart does not end it.
    r#"
    ALTER TABLE apps ADD COLUMN probation TEXT;
    "#,
];

/// Brings the database to the newest schema version, or refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    apply(conn, path, MIGRATIONS)
}

/// [`migrate`] with a given list of migrations.
fn apply(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<(), StoreError> {
    let known = migrations.len();
    // The common case, an up-to-date file, needs no write lock.
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| sql_error(path, "reading the schema version", e))?;
    if usize::try_from(found).is_ok_and(|v| v == known) {
        return Ok(());
    }
    loop {
        // Checked again inside the write transaction: another process may have
        // migrated the file between two steps.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(path, "locking the database to migrate its schema", e))?;
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| sql_error(path, "reading the schema version", e))?;
        let version = match usize::try_from(found) {
            Ok(v) if v <= known => v,
            _ => {
                return Err(StoreError::TooNew {
                    path: path.to_path_buf(),
                    found,
                    known,
                })
            }
        };
        let Some(migration) = migrations.get(version) else {
            // Up to date; dropping `tx` ends the (empty) transaction.
            return Ok(());
        };
        let target = version + 1;
        let migration_error = |source| StoreError::Migration {
            path: path.to_path_buf(),
            version: target,
            source,
        };
        tx.execute_batch(migration).map_err(migration_error)?;
        // `user_version` lives in the file header and is part of the transaction.
        let target_sql = i64::try_from(target).unwrap_or(i64::MAX);
        tx.pragma_update(None, "user_version", target_sql)
            .map_err(migration_error)?;
        tx.commit().map_err(|e| {
            if crate::error::is_busy(&e) {
                sql_error(path, "committing a schema migration", e)
            } else {
                migration_error(e)
            }
        })?;
    }
}

/// The newest schema version this code knows.
pub(crate) fn latest_version() -> usize {
    MIGRATIONS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn migrations_apply_in_order_and_a_failed_one_is_rolled_back() {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().unwrap();
        let good = "CREATE TABLE a (x INTEGER) STRICT; INSERT INTO a VALUES (1);";
        let broken = "CREATE TABLE b (y INTEGER) STRICT; INSERT INTO nowhere VALUES (2);";
        let err = apply(&mut conn, path, &[good, broken]).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("version 2"), "{err}");
        // The first step stays, the failed one left nothing behind.
        assert_eq!(version(&conn), 1);
        let b: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(b, 0);

        let fixed = "CREATE TABLE b (y INTEGER) STRICT; INSERT INTO b SELECT x + 1 FROM a;";
        apply(&mut conn, path, &[good, fixed]).unwrap();
        assert_eq!(version(&conn), 2);
        let y: i64 = conn.query_row("SELECT y FROM b", [], |r| r.get(0)).unwrap();
        assert_eq!(y, 2);
        // Up to date: nothing runs again.
        apply(&mut conn, path, &[good, fixed]).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        // Fewer known migrations than applied: refused.
        let err = apply(&mut conn, path, &[good]).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
