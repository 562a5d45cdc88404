//! Operations (one reconcile or sync of one app) and the actions each one applied.
//!
//! An operation is written when it starts ([`Store::begin_operation`]), grows an
//! action at a time ([`Store::record_action`]) and is closed by
//! [`Store::finish_operation`]. One left open by a crash is closed as
//! [`OpResult::Interrupted`] by [`Store::interrupt_unfinished`] at the next start.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, params_from_iter, OptionalExtension, Row, ToSql, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::{page_filter, Store, StoreError};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpResult {
    /// Every action was applied.
    Succeeded,
    /// An action or a step before them failed.
    Failed,
    /// The daemon stopped (or crashed) before the operation finished.
    Interrupted,
    /// Nothing needed to change.
    NoOp,
}

impl OpResult {
    /// The stored and serialized form: `succeeded`, `failed`, `interrupted`, `no_op`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpResult::Succeeded => "succeeded",
            OpResult::Failed => "failed",
            OpResult::Interrupted => "interrupted",
            OpResult::NoOp => "no_op",
        }
    }
}

impl fmt::Display for OpResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not an [`OpResult`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation result '{0}': expected succeeded, failed, interrupted or no_op")]
pub struct ParseOpResultError(pub String);

impl FromStr for OpResult {
    type Err = ParseOpResultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "succeeded" => Ok(OpResult::Succeeded),
            "failed" => Ok(OpResult::Failed),
            "interrupted" => Ok(OpResult::Interrupted),
            "no_op" => Ok(OpResult::NoOp),
            other => Err(ParseOpResultError(other.to_owned())),
        }
    }
}

impl ToSql for OpResult {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for OpResult {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// What [`Store::begin_operation`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOperation {
    /// The app.
    pub app: String,
    /// What started it: `interval`, `webhook`, `api`, `drift`, `startup`, `rollback`…
    pub trigger: String,
    /// The revision being applied, when known.
    pub revision: Option<String>,
    /// A dry run plans and applies nothing.
    pub dry_run: bool,
    /// Unix ms.
    pub started_at: i64,
    /// Who asked for it: the API token's name; `None`: Mooring itself or a webhook.
    pub requested_by: Option<String>,
}

/// One action an operation applied (or tried to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionRecord {
    /// Position in the operation, from 0 or 1; unique per operation.
    pub seq: u32,
    /// The action, e.g. `create`, `recreate`, `remove`.
    pub kind: String,
    /// What it acted on, e.g. `container web`.
    pub resource: String,
    /// Why, for people.
    pub reason: String,
    /// Unix ms.
    pub started_at: i64,
    /// How long it took.
    pub duration_ms: i64,
    /// Its error, if it failed.
    pub error: Option<String>,
    /// What it printed, when it prints (a build: the builder's last lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// An operation as stored, with its actions in `seq` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OperationRecord {
    /// Increasing, never reused.
    pub id: i64,
    /// The app.
    pub app: String,
    /// What started it.
    pub trigger: String,
    /// The revision applied, when known.
    pub revision: Option<String>,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms; `None` while it runs.
    pub finished_at: Option<i64>,
    /// `None` while it runs.
    pub result: Option<OpResult>,
    /// Why it failed or was interrupted.
    pub error: Option<String>,
    /// What its plan said a person should know: the policy's notes (host paths, added
    /// capabilities), the render's (unset variables), volumes kept.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Who asked for it: the API token's name; `None`: Mooring itself or a webhook.
    #[serde(default)]
    pub requested_by: Option<String>,
    /// Its actions, by `seq`.
    pub actions: Vec<ActionRecord>,
}

const OP_COLUMNS: &str = "id, app, \"trigger\", revision, dry_run, started_at, finished_at, result, error, notes, requested_by";
const ACTION_COLUMNS: &str =
    "operation_id, seq, kind, resource, reason, started_at, duration_ms, error, output";

fn op_from_row(row: &Row<'_>) -> rusqlite::Result<OperationRecord> {
    Ok(OperationRecord {
        id: row.get(0)?,
        app: row.get(1)?,
        trigger: row.get(2)?,
        revision: row.get(3)?,
        dry_run: row.get(4)?,
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        result: row.get(7)?,
        error: row.get(8)?,
        notes: {
            let text: String = row.get(9)?;
            serde_json::from_str(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    9,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?
        },
        requested_by: row.get(10)?,
        actions: Vec::new(),
    })
}

fn action_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, ActionRecord)> {
    Ok((
        row.get(0)?,
        ActionRecord {
            seq: row.get(1)?,
            kind: row.get(2)?,
            resource: row.get(3)?,
            reason: row.get(4)?,
            started_at: row.get(5)?,
            duration_ms: row.get(6)?,
            error: row.get(7)?,
            output: row.get(8)?,
        },
    ))
}

/// The message stored on operations closed by [`Store::interrupt_unfinished`].
const INTERRUPTED: &str = "interrupted: Mooring stopped before the operation finished";

impl Store {
    /// Records the start of an operation and returns its id.
    pub fn begin_operation(&self, op: &NewOperation) -> Result<i64, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO operations (app, \"trigger\", revision, dry_run, started_at, requested_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    op.app,
                    op.trigger,
                    op.revision,
                    op.dry_run,
                    op.started_at,
                    op.requested_by
                ],
            )
            .map_err(self.err("recording the start of an operation"))?;
        Ok(inner.conn.last_insert_rowid())
    }

    /// Records one action of operation `op_id`. Fails if the operation does not exist
    /// or already has an action with the same `seq`.
    pub fn record_action(&self, op_id: i64, action: &ActionRecord) -> Result<(), StoreError> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO actions (operation_id, seq, kind, resource, reason, started_at, \
                                      duration_ms, error, output)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    op_id,
                    action.seq,
                    action.kind,
                    action.resource,
                    action.reason,
                    action.started_at,
                    action.duration_ms,
                    action.error,
                    action.output,
                ],
            )
            .map_err(self.err("recording an action"))?;
        Ok(())
    }

    /// Closes operation `op_id` with its result. Returns `false` if there is no such
    /// operation. Closing an operation twice overwrites the first result.
    pub fn finish_operation(
        &self,
        op_id: i64,
        result: OpResult,
        error: Option<&str>,
        finished_at: i64,
    ) -> Result<bool, StoreError> {
        let inner = self.lock();
        let n = inner
            .conn
            .execute(
                "UPDATE operations SET result = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
                params![op_id, result, error, finished_at],
            )
            .map_err(self.err("recording the end of an operation"))?;
        Ok(n > 0)
    }

    /// Records what operation `op_id`'s plan said a person should know. Returns `false`
    /// if there is no such operation.
    pub fn set_operation_notes(&self, op_id: i64, notes: &[String]) -> Result<bool, StoreError> {
        let text = serde_json::to_string(notes).unwrap_or_else(|_| "[]".into());
        let inner = self.lock();
        let n = inner
            .conn
            .execute(
                "UPDATE operations SET notes = ?2 WHERE id = ?1",
                params![op_id, text],
            )
            .map_err(self.err("recording an operation's notes"))?;
        Ok(n > 0)
    }

    /// Operations, newest first: all apps' or one app's, at most `limit`, and only
    /// those with an id below `before_id` when given (to page back through history:
    /// pass the smallest id of the previous page). Each comes with its actions.
    pub fn operations(
        &self,
        app: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (filter, args) = page_filter(app, before_id.map(|id| ("<", id)), limit);
        let ops_sql =
            format!("SELECT {OP_COLUMNS} FROM operations {filter} ORDER BY id DESC LIMIT ?");
        let actions_sql = format!(
            "SELECT {ACTION_COLUMNS} FROM actions WHERE operation_id IN \
             (SELECT id FROM operations {filter} ORDER BY id DESC LIMIT ?) \
             ORDER BY operation_id, seq"
        );

        let mut inner = self.lock();
        let map = self.err("reading operations");
        // One read transaction: both queries see the same snapshot.
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(&map)?;
        let mut ops = {
            let mut stmt = tx.prepare_cached(&ops_sql).map_err(&map)?;
            let rows = stmt
                .query_map(params_from_iter(args.iter()), op_from_row)
                .map_err(&map)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&map)?
        };
        let mut actions: HashMap<i64, Vec<ActionRecord>> = HashMap::new();
        {
            let mut stmt = tx.prepare_cached(&actions_sql).map_err(&map)?;
            let rows = stmt
                .query_map(params_from_iter(args.iter()), action_from_row)
                .map_err(&map)?;
            for row in rows {
                let (op_id, action) = row.map_err(&map)?;
                actions.entry(op_id).or_default().push(action);
            }
        }
        tx.finish().map_err(&map)?;
        for op in &mut ops {
            op.actions = actions.remove(&op.id).unwrap_or_default();
        }
        Ok(ops)
    }

    /// The newest operation of every app, without actions (for overviews: one query).
    pub fn latest_operations(&self) -> Result<HashMap<String, OperationRecord>, StoreError> {
        let inner = self.lock();
        let map = self.err("reading the latest operations");
        let mut stmt = inner
            .conn
            .prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM operations \
                 WHERE id IN (SELECT MAX(id) FROM operations GROUP BY app)"
            ))
            .map_err(&map)?;
        let rows = stmt.query_map([], op_from_row).map_err(&map)?;
        let mut out = HashMap::new();
        for row in rows {
            let op = row.map_err(&map)?;
            out.insert(op.app.clone(), op);
        }
        Ok(out)
    }

    /// One operation with its actions.
    pub fn operation(&self, id: i64) -> Result<Option<OperationRecord>, StoreError> {
        let mut inner = self.lock();
        let map = self.err("reading an operation");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(&map)?;
        let op = tx
            .query_row(
                &format!("SELECT {OP_COLUMNS} FROM operations WHERE id = ?1"),
                [id],
                op_from_row,
            )
            .optional()
            .map_err(&map)?;
        let Some(mut op) = op else {
            return Ok(None);
        };
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {ACTION_COLUMNS} FROM actions WHERE operation_id = ?1 ORDER BY seq"
                ))
                .map_err(&map)?;
            let rows = stmt.query_map([id], action_from_row).map_err(&map)?;
            for row in rows {
                op.actions.push(row.map_err(&map)?.1);
            }
        }
        tx.finish().map_err(&map)?;
        Ok(Some(op))
    }

    /// Closes every operation that has no end as [`OpResult::Interrupted`] at `now`,
    /// keeping an error already recorded. Call it once at daemon start, before any
    /// operation begins. Returns how many were closed.
    pub fn interrupt_unfinished(&self, now: i64) -> Result<usize, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "UPDATE operations
                 SET result = ?1, finished_at = ?2, error = coalesce(error, ?3)
                 WHERE finished_at IS NULL",
                params![OpResult::Interrupted, now, INTERRUPTED],
            )
            .map_err(self.err("closing interrupted operations"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_result_strings_round_trip() {
        for r in [
            OpResult::Succeeded,
            OpResult::Failed,
            OpResult::Interrupted,
            OpResult::NoOp,
        ] {
            assert_eq!(r.as_str().parse::<OpResult>(), Ok(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert!("NoOp".parse::<OpResult>().is_err());
    }
}
