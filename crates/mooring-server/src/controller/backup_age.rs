//! How old each volume's newest backup is: gauges for Prometheus
//! (`mooring_volume_last_backup_timestamp_seconds`, `…_bytes`), and with
//! `data.backup_max_age` a `BackupStale` condition on the app for each volume it writes
//! to whose newest backup is older (or that has none), an event and a notice when one
//! becomes so. Read from the store's catalogue of backups after each reconcile.

use super::{AppHandle, AppRuntime, Controller};
use crate::notify::Notice;
use mooring_core::state::{ConditionKind, EventKind};
use mooring_store::{now_ms, AppStatus};
use std::collections::{BTreeMap, BTreeSet};

impl Controller {
    /// The gauges of the app's backups, and the staleness of the volumes it writes to.
    pub(super) async fn backup_freshness(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        status: &mut AppStatus,
    ) {
        let name = app.config.name.as_str();
        let Ok(rows) = self.store.backups(name) else {
            return;
        };
        // The newest of each volume (a Swarm's `VOLUME@NODE` apart).
        let mut newest: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for r in &rows {
            let e = newest
                .entry(r.volume.as_str())
                .or_insert((r.created_at, r.bytes));
            if r.created_at > e.0 {
                *e = (r.created_at, r.bytes);
            }
        }
        for (volume, (at, bytes)) in &newest {
            let labels = [("app", name), ("volume", *volume)];
            self.metrics.set_gauge(
                "mooring_volume_last_backup_timestamp_seconds",
                &labels,
                *at as f64 / 1000.0,
            );
            self.metrics
                .set_gauge("mooring_volume_last_backup_bytes", &labels, *bytes as f64);
        }
        let Some(max_age) = app.config.backup_max_age else {
            return;
        };
        let now = now_ms();
        let limit = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let mut stale = BTreeSet::new();
        for volume in self.data_volumes(name).await {
            let last = newest
                .iter()
                .filter(|(v, _)| **v == volume || v.starts_with(&format!("{volume}@")))
                .map(|(_, (at, _))| *at)
                .max();
            let message = match last {
                None => format!("volume {volume} has no backup (data.backup_max_age is {}s)", max_age.as_secs()),
                Some(at) if now - at > limit => format!(
                    "the newest backup of volume {volume} is {}s old, more than data.backup_max_age ({}s)",
                    (now - at) / 1000,
                    max_age.as_secs()
                ),
                Some(_) => continue,
            };
            status
                .conditions
                .push(ConditionKind::BackupStale.with(message.clone()));
            if !rt.stale_backups.contains(&volume) {
                self.event(name, EventKind::BackupStale, &message);
                self.notifier.send(Notice {
                    event: EventKind::BackupStale.as_str(),
                    app: name.to_string(),
                    message,
                    revision: status.revision.clone(),
                });
            }
            stale.insert(volume);
        }
        rt.stale_backups = stale;
    }
}
