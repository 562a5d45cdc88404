//! Events: what happened, for people, in order. Ids increase and are never reused, so a
//! stream can resume after the last id it delivered.

use rusqlite::{params, params_from_iter, Row};
use serde::{Deserialize, Serialize};

use crate::{page_filter, Store, StoreError};
use mooring_core::EventKind;

/// What [`Store::add_event`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The app it is about; `None` for the daemon itself.
    pub app: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// For people.
    pub message: String,
    /// Unix ms.
    pub at: i64,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventRecord {
    /// Increasing, never reused.
    pub id: i64,
    /// The app it is about; `None` for the daemon itself.
    pub app: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// For people.
    pub message: String,
    /// Unix ms.
    pub at: i64,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        id: row.get(0)?,
        app: row.get(1)?,
        kind: crate::apps::word(row, 2)?,
        message: row.get(3)?,
        at: row.get(4)?,
    })
}

impl Store {
    /// Records an event and returns its id.
    pub fn add_event(&self, event: &NewEvent) -> Result<i64, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO events (app, kind, message, at) VALUES (?1, ?2, ?3, ?4)",
                params![event.app, event.kind.as_str(), event.message, event.at],
            )
            .map_err(self.err("recording an event"))?;
        Ok(inner.conn.last_insert_rowid())
    }

    /// Events of all apps, or of one app, at most `limit`.
    ///
    /// The order depends on `after_id`:
    /// - `Some(id)`: the events after `id`, **oldest first** — for streaming: deliver
    ///   them in order and ask again with the last id delivered (start with `Some(0)`
    ///   for everything from the beginning);
    /// - `None`: the latest events, **newest first** — for a "recent events" view.
    pub fn events(
        &self,
        app: Option<&str>,
        after_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (filter, args) = page_filter(app, after_id.map(|id| (">", id)), limit);
        let order = if after_id.is_some() { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT id, app, kind, message, at FROM events {filter} ORDER BY id {order} LIMIT ?"
        );

        let inner = self.lock();
        let map = self.err("reading events");
        let mut stmt = inner.conn.prepare_cached(&sql).map_err(&map)?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), from_row)
            .map_err(&map)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&map)
    }
}
