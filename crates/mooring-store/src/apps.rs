//! The current status of each app, one row per app name.
//!
//! The rule for the pin: **only [`Store::set_pin`] changes it.** [`Store::put_app`]
//! writes every other field and ignores [`AppStatus::pinned`], so the controller can
//! save what it observed without racing an operator who pins or unpins meanwhile.

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

pub use mooring_core::state::Condition;
use mooring_core::{Health, SyncState};

/// An app's current status as the controller last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppStatus {
    /// The app's name (unique).
    pub name: String,
    /// Whether the host runs what the source says.
    pub sync: SyncState,
    /// The worst health of the app's resources.
    pub health: Health,
    /// The deployed revision (commit id, content hash), if any.
    pub revision: Option<String>,
    /// A human form of the revision (e.g. `git describe`).
    pub revision_describe: Option<String>,
    /// The source in display form, never with credentials.
    pub source: String,
    /// The revision the app is pinned to. Read-only through [`Store::put_app`]: only
    /// [`Store::set_pin`] changes it.
    pub pinned: Option<String>,
    /// Current conditions.
    pub conditions: Vec<Condition>,
    /// Id of the app's latest operation (see [`Store::operation`]).
    pub last_operation: Option<i64>,
    /// When the next retry after a failure is due (unix ms).
    pub next_retry_at: Option<i64>,
    /// Consecutive failures.
    pub failures: u32,
    /// When this status was saved (unix ms).
    pub updated_at: i64,
    /// The revision held back — it failed to render, build or roll out, or was
    /// rolled back — with its condition: not tried again until a newer one arrives or
    /// a person asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// A new revision on probation (`sync.rollback`): rolled back to `good` unless
    /// Healthy by `until`. Kept here so that a restart of the daemon does not end it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probation: Option<Probation>,
}

/// A revision on probation, and what a rollback would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Probation {
    /// The revision on probation.
    pub revision: String,
    /// The revision a rollback deploys again.
    pub good: String,
    /// Its deadline (unix ms).
    pub until: i64,
    /// Why its deploy failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The backups a rollback restores: `(volume, backup id)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<(String, String)>,
}

/// A revision held back, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Held {
    pub revision: String,
    pub condition: Condition,
}

impl AppStatus {
    /// The status of an app no reconcile has seen yet: `Unknown`, nothing deployed.
    pub fn unknown(name: &str, source: &str, now: i64) -> AppStatus {
        AppStatus {
            name: name.to_string(),
            sync: SyncState::Unknown,
            health: Health::Unknown,
            revision: None,
            revision_describe: None,
            source: source.to_string(),
            pinned: None,
            conditions: vec![],
            last_operation: None,
            next_retry_at: None,
            failures: 0,
            updated_at: now,
            held: None,
            probation: None,
        }
    }
}

const COLUMNS: &str = "name, sync, health, revision, revision_describe, source, pinned, \
                       conditions, last_operation, next_retry_at, failures, updated_at, held, \
                       probation";

/// Reads a row selected with [`COLUMNS`].
fn from_row(row: &Row<'_>) -> rusqlite::Result<AppStatus> {
    let conditions: String = row.get(7)?;
    let conditions = serde_json::from_str(&conditions).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(AppStatus {
        name: row.get(0)?,
        sync: word(row, 1)?,
        health: word(row, 2)?,
        revision: row.get(3)?,
        revision_describe: row.get(4)?,
        source: row.get(5)?,
        pinned: row.get(6)?,
        conditions,
        last_operation: row.get(8)?,
        next_retry_at: row.get(9)?,
        failures: row.get(10)?,
        updated_at: row.get(11)?,
        held: {
            let held: Option<String> = row.get(12)?;
            // One this Mooring cannot read is forgotten, not fatal: at worst the
            // revision is tried once more.
            held.and_then(|h| serde_json::from_str(&h).ok())
        },
        probation: {
            let probation: Option<String> = row.get(13)?;
            // Unreadable: the probation ends (the revision is kept), as a restart
            // before this column did.
            probation.and_then(|p| serde_json::from_str(&p).ok())
        },
    })
}

/// Column `i` read as one of a word enum's spellings.
pub(crate) fn word<T>(row: &Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr<Err = mooring_core::UnknownWord>,
{
    let s: String = row.get(i)?;
    s.parse().map_err(|e: mooring_core::UnknownWord| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Store {
    /// Saves an app's status, creating the app if it is new.
    ///
    /// `status.pinned` is ignored: an existing pin is kept and a new app starts
    /// unpinned. Use [`Store::set_pin`] to change it.
    pub fn put_app(&self, status: &AppStatus) -> Result<(), StoreError> {
        let err = |e: serde_json::Error| {
            (self.err("saving app status"))(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        let conditions = serde_json::to_string(&status.conditions).map_err(err)?;
        let held = (status.held.as_ref())
            .map(serde_json::to_string)
            .transpose()
            .map_err(err)?;
        let probation = (status.probation.as_ref())
            .map(serde_json::to_string)
            .transpose()
            .map_err(err)?;
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO apps (name, sync, health, revision, revision_describe, source, \
                                   conditions, last_operation, next_retry_at, failures, \
                                   updated_at, held, probation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (name) DO UPDATE SET
                     sync = excluded.sync,
                     health = excluded.health,
                     revision = excluded.revision,
                     revision_describe = excluded.revision_describe,
                     source = excluded.source,
                     conditions = excluded.conditions,
                     last_operation = excluded.last_operation,
                     next_retry_at = excluded.next_retry_at,
                     failures = excluded.failures,
                     updated_at = excluded.updated_at,
                     held = excluded.held,
                     probation = excluded.probation",
                params![
                    status.name,
                    status.sync.as_str(),
                    status.health.as_str(),
                    status.revision,
                    status.revision_describe,
                    status.source,
                    conditions,
                    status.last_operation,
                    status.next_retry_at,
                    status.failures,
                    status.updated_at,
                    held,
                    probation,
                ],
            )
            .map_err(self.err("saving app status"))?;
        Ok(())
    }

    /// One app's status, if the app is known.
    pub fn app(&self, name: &str) -> Result<Option<AppStatus>, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM apps WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()
            .map_err(self.err("reading app status"))
    }

    /// Every app's status, ordered by name.
    pub fn apps(&self) -> Result<Vec<AppStatus>, StoreError> {
        let inner = self.lock();
        let map = self.err("reading app statuses");
        let mut stmt = inner
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM apps ORDER BY name"))
            .map_err(&map)?;
        let rows = stmt.query_map([], from_row).map_err(&map)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&map)
    }

    /// Forgets an app's status and pin. Its operations and events are history and stay
    /// (until [`Store::prune`]). Returns whether the app was known.
    pub fn delete_app(&self, name: &str) -> Result<bool, StoreError> {
        let inner = self.lock();
        let n = inner
            .conn
            .execute("DELETE FROM apps WHERE name = ?1", [name])
            .map_err(self.err("deleting an app"))?;
        Ok(n > 0)
    }

    /// Pins an app to `revision`, or unpins it with `None`. This is the only call that
    /// changes the pin. Returns `false` (and changes nothing) if the app has no status
    /// yet: save one with [`Store::put_app`] first.
    pub fn set_pin(&self, name: &str, revision: Option<&str>) -> Result<bool, StoreError> {
        let inner = self.lock();
        let n = inner
            .conn
            .execute(
                "UPDATE apps SET pinned = ?2 WHERE name = ?1",
                params![name, revision],
            )
            .map_err(self.err("setting an app's pin"))?;
        Ok(n > 0)
    }
}
