//! Retention: history is kept to a bounded size.

use rusqlite::{params, TransactionBehavior};

use crate::{sql_count, Store, StoreError};

impl Store {
    /// Deletes the oldest history beyond the limits, in one transaction:
    /// - for each app, finished operations beyond the newest `keep_operations_per_app`
    ///   (their actions go with them); an operation still running is never deleted,
    ///   though it counts towards the limit;
    /// - events beyond the newest `keep_events`.
    ///
    /// Returns how many operations and events were deleted.
    pub fn prune(
        &self,
        keep_operations_per_app: usize,
        keep_events: usize,
    ) -> Result<(usize, usize), StoreError> {
        let mut inner = self.lock();
        let map = self.err("pruning history");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&map)?;
        let operations = tx
            .execute(
                "DELETE FROM operations WHERE finished_at IS NOT NULL AND id IN (
                     SELECT id FROM (
                         SELECT id, row_number() OVER (PARTITION BY app ORDER BY id DESC) AS n
                         FROM operations
                     ) WHERE n > ?1
                 )",
                params![sql_count(keep_operations_per_app)],
            )
            .map_err(&map)?;
        let events = tx
            .execute(
                "DELETE FROM events WHERE id <= (
                     SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1
                 )",
                params![sql_count(keep_events)],
            )
            .map_err(&map)?;
        tx.commit().map_err(&map)?;
        Ok((operations, events))
    }
}
