//! Webhook replay protection: each provider's delivery id is accepted once within
//! [`DELIVERY_WINDOW_MS`].

use rusqlite::params;

use crate::{Store, StoreError};

/// How long a delivery id is remembered: 24 hours.
pub const DELIVERY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Expired deliveries are deleted at most this often (one hour).
const DELIVERY_PRUNE_EVERY_MS: i64 = 60 * 60 * 1000;

impl Store {
    /// Remembers delivery `delivery_id` of `provider` (e.g. `github`) at `now`.
    /// Returns `true` the first time, and `false` if the same delivery was seen in
    /// the last [`DELIVERY_WINDOW_MS`] — a replay to reject. A delivery seen longer
    /// ago counts as new again. Expired entries are deleted now and then (at most
    /// hourly) by this same call, so the table stays small.
    ///
    /// The caller bounds the length of `delivery_id` (it comes from the request).
    pub fn remember_delivery(
        &self,
        provider: &str,
        delivery_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let cutoff = now.saturating_sub(DELIVERY_WINDOW_MS);
        let due = inner
            .deliveries_pruned_at
            .is_none_or(|at| now.saturating_sub(at) >= DELIVERY_PRUNE_EVERY_MS);
        if due {
            inner
                .conn
                .execute(
                    "DELETE FROM webhook_deliveries WHERE seen_at <= ?1",
                    params![cutoff],
                )
                .map_err(self.err("deleting expired webhook deliveries"))?;
            inner.deliveries_pruned_at = Some(now);
        }
        // Inserts a new delivery, or renews one that is outside the window; a delivery
        // inside the window changes nothing (0 rows).
        let changed = inner
            .conn
            .execute(
                "INSERT INTO webhook_deliveries (provider, delivery_id, seen_at)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (provider, delivery_id) DO UPDATE SET seen_at = excluded.seen_at
                 WHERE webhook_deliveries.seen_at <= ?4",
                params![provider, delivery_id, now, cutoff],
            )
            .map_err(self.err("recording a webhook delivery"))?;
        Ok(changed > 0)
    }
}
