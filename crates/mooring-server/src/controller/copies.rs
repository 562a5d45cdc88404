//! Off-host copies (`backup_targets`, an app's `data.copy_to`): after each operation of
//! an app with targets that took a backup, and once at start, its backups not yet on a
//! target are copied there by one background task — a deploy never waits for it —, each
//! copy checked on the target before it exists ([`mooring_backup::Target::put`]), then
//! the target's retention is applied. A target that cannot be written is reported (a
//! `BackupCopyFailed` condition, a `backup_copy_failed` event and notice) and tried again
//! after the app's next backup. A backup whose local copy is gone is restored from a
//! target ([`Controller::fetch_copy`]).

use super::{AppHandle, Controller};
use crate::notify::Notice;
use mooring_core::state::{ConditionKind, EventKind};
use mooring_store::now_ms;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// How long the backups listing waits for a target.
const LISTING: std::time::Duration = std::time::Duration::from_secs(10);

/// Apps waiting for a copy pass (a full queue is fine: a pass copies everything missing).
pub(super) const QUEUE: usize = 64;

impl Controller {
    /// Asks for a copy pass of app `name`'s backups, when it has targets.
    pub(super) fn want_copies(&self, name: &str) {
        if self
            .apps
            .get(name)
            .is_some_and(|a| !a.config.copy_to.is_empty())
        {
            let _ = self.copies.try_send(name.to_string());
        }
    }

    /// The copier: one pass at a time, for every app asked for meanwhile (each once).
    /// Every app with targets gets a pass at start, for what a stopped daemon missed.
    pub(super) async fn copy_loop(self: Arc<Self>, mut rx: mpsc::Receiver<String>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut wanted: BTreeSet<String> = self
            .apps
            .values()
            .filter(|a| !a.config.copy_to.is_empty())
            .map(|a| a.config.name.clone())
            .collect();
        loop {
            if *shutdown.borrow() {
                return;
            }
            while let Ok(name) = rx.try_recv() {
                wanted.insert(name);
            }
            let Some(name) = wanted.pop_first() else {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some(name) => { wanted.insert(name); continue; }
                        None => return,
                    },
                    _ = shutdown.changed() => return,
                }
            };
            if let Some(app) = self.apps.get(&name).cloned() {
                self.copy_pass(&app).await;
            }
        }
    }

    /// Copies app's backups missing on each of its targets, then applies the target's
    /// retention; reports each target that failed, and one that works again.
    async fn copy_pass(&self, app: &AppHandle) {
        let name = app.config.name.clone();
        let dir = self.config.server.data_dir.join("backups");
        for target_name in &app.config.copy_to {
            let Some(target) = self.config.backup_targets.get(target_name).cloned() else {
                continue;
            };
            // Not counted as running work: a first copy of large backups may take
            // longer than `stuck_after`, and the daemon is not stuck meanwhile.
            let (app_name, dir) = (name.clone(), dir.clone());
            let stopping = self.shutdown.subscribe();
            let result = tokio::task::spawn_blocking(move || {
                copy_missing(&app_name, &dir, &target, now_ms(), &stopping)
            })
            .await
            .unwrap_or_else(|e| Err(format!("the copy stopped: {e}")));
            let labels = [("app", name.as_str()), ("target", target_name.as_str())];
            match result {
                Ok(done) => {
                    for (id, copied, took) in &done.copied {
                        let bytes = copied.bytes;
                        let secs = took.as_secs_f64().max(0.001);
                        tracing::info!(
                            app = %name,
                            target = %target_name,
                            backup = %id,
                            bytes,
                            mib_per_s = format!("{:.1}", bytes as f64 / 1048576.0 / secs),
                            checked = if copied.hashed_there { "hashed on the target" } else { "read back from the target" },
                            "backup copied"
                        );
                        self.metrics.inc(
                            "mooring_backup_copies_total",
                            &[labels[0], labels[1], ("result", "copied")],
                        );
                        self.metrics.observe(
                            "mooring_backup_copy_duration_seconds",
                            &labels,
                            *took,
                        );
                    }
                    for id in &done.pruned {
                        tracing::info!(app = %name, target = %target_name, backup = %id, "removed from the target by its retention");
                    }
                    if self.copy_failed(app).remove(target_name).is_some() {
                        let message = format!("backups are copied to {target_name} again");
                        self.event(&name, EventKind::BackupCopied, &message);
                    }
                }
                Err(why) => {
                    self.metrics.inc(
                        "mooring_backup_copies_total",
                        &[labels[0], labels[1], ("result", "failed")],
                    );
                    let message = format!("backups cannot be copied to {target_name}: {why}");
                    tracing::warn!(app = %name, target = %target_name, error = %why, "backup copy failed");
                    let first = self
                        .copy_failed(app)
                        .insert(target_name.clone(), message.clone())
                        .is_none();
                    if first {
                        self.event(&name, EventKind::BackupCopyFailed, &message);
                        self.notifier.send(Notice {
                            event: EventKind::BackupCopyFailed.as_str(),
                            app: name.clone(),
                            message,
                            revision: None,
                        });
                    }
                }
            }
        }
        self.show_copy_conditions(app).await;
    }

    /// The app's targets that failed, with why.
    fn copy_failed<'a>(
        &self,
        app: &'a AppHandle,
    ) -> std::sync::MutexGuard<'a, std::collections::BTreeMap<String, String>> {
        app.copy_failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The app's stored status with a `BackupCopyFailed` condition for each target that
    /// failed (the app's loop adds them too, each time it records its status). Under the
    /// app's lock: the status read and written back is never one its loop is replacing.
    async fn show_copy_conditions(&self, app: &AppHandle) {
        let _rt = app.runtime.lock().await;
        let Ok(Some(mut status)) = self.store.app(&app.config.name) else {
            return;
        };
        let before = status.conditions.clone();
        status
            .conditions
            .retain(|c| c.kind != ConditionKind::BackupCopyFailed);
        self.add_copy_conditions(app, &mut status.conditions);
        if status.conditions != before {
            if let Err(e) = self.store.put_app(&status) {
                tracing::error!(app = %app.config.name, error = %e, "cannot record the app's status");
            }
        }
    }

    /// A `BackupCopyFailed` condition for each of the app's targets that failed.
    pub(super) fn add_copy_conditions(
        &self,
        app: &AppHandle,
        conditions: &mut Vec<mooring_core::state::Condition>,
    ) {
        for message in self.copy_failed(app).values() {
            conditions.push(ConditionKind::BackupCopyFailed.with(message.clone()));
        }
    }

    /// What each of app `name`'s targets holds of its backups.
    pub async fn target_copies(&self, name: &str) -> Vec<crate::views::TargetCopies> {
        let Some(app) = self.apps.get(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for target_name in &app.config.copy_to {
            let Some(target) = self.config.backup_targets.get(target_name) else {
                continue;
            };
            let (place, app_name) = (target.target.clone(), name.to_string());
            let listing = tokio::task::spawn_blocking(move || place.ids(&app_name));
            // A target that does not answer does not hold up the listing for long.
            let listed = match tokio::time::timeout(LISTING, listing).await {
                Err(_) => Err(format!("no answer within {}s", LISTING.as_secs())),
                Ok(joined) => joined
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string())),
            };
            let (mut ids, error) = match listed {
                Ok(ids) => (ids.into_iter().collect(), None),
                Err(e) => (Vec::new(), Some(e)),
            };
            ids.sort_unstable_by(|a: &String, b| b.cmp(a));
            out.push(crate::views::TargetCopies {
                target: target_name.clone(),
                ids,
                error,
            });
        }
        out
    }

    /// Backup `id` of app `name` from the first of its targets that has it, copied back
    /// into the local backups folder (read back there) — for a restore whose local copy
    /// is gone. `None` when no target has it.
    pub(super) async fn fetch_copy(
        &self,
        name: &str,
        id: &str,
    ) -> Option<Result<mooring_backup::BackupRecord, String>> {
        let app = self.apps.get(name)?;
        let dir = self.config.server.data_dir.join("backups");
        for target_name in &app.config.copy_to {
            let Some(target) = self.config.backup_targets.get(target_name) else {
                continue;
            };
            let (place, app_name, id_owned, dir) = (
                target.target.clone(),
                name.to_string(),
                id.to_string(),
                dir.clone(),
            );
            let fetched = tokio::task::spawn_blocking(move || {
                place
                    .fetch(&app_name, &id_owned, &dir)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match fetched {
                Ok(None) => continue,
                Ok(Some(record)) => {
                    tracing::info!(app = %name, target = %target_name, backup = %id, "backup brought back from the target");
                    return Some(Ok(record));
                }
                Err(e) => {
                    return Some(Err(format!(
                        "bringing backup {id} back from {target_name}: {e}"
                    )))
                }
            }
        }
        None
    }
}

/// What one pass did on one target: the backups copied (id, what the copy did, time), and those
/// its retention removed.
struct PassDone {
    copied: Vec<(String, mooring_backup::Copied, std::time::Duration)>,
    pruned: Vec<String>,
}

/// Copies app's local backups that `target` does not have (those its retention would
/// keep), then applies its retention to each volume copied to; `scratch` is a local
/// folder for what is read back.
fn copy_missing(
    app: &str,
    dir: &std::path::Path,
    target: &crate::config::targets::BackupTarget,
    now: i64,
    stopping: &tokio::sync::watch::Receiver<bool>,
) -> Result<PassDone, String> {
    let local = mooring_backup::list(dir).map_err(|e| e.to_string())?;
    let place = &target.target;
    let mut there = place.ids(app).map_err(|e| e.to_string())?;
    let mut done = PassDone {
        copied: Vec::new(),
        pruned: Vec::new(),
    };
    // What the target's retention keeps of each volume's backups (newest first), and
    // only that: a backup it would remove at once is not copied (again and again).
    let r = target.retention;
    let older_than_ms = r
        .older_than_secs
        .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX));
    let cutoff = older_than_ms.map(|age| now.saturating_sub(age));
    let mut rank: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut wanted = Vec::new();
    for record in local.iter().filter(|r| r.manifest.meta.app == app) {
        let meta = &record.manifest.meta;
        let n = rank.entry(meta.volume.as_str()).or_default();
        *n += 1;
        let kept =
            r.keep.is_none_or(|k| *n <= k as usize) && cutoff.is_none_or(|c| meta.created_at >= c);
        if kept && !there.contains(&record.id) {
            wanted.push(record);
        }
    }
    let created_at: std::collections::HashMap<String, i64> = local
        .iter()
        .map(|r| (r.id.clone(), r.manifest.meta.created_at))
        .collect();
    let mut volumes = BTreeSet::new();
    // Oldest first.
    for record in wanted.into_iter().rev() {
        // The daemon stopping: the rest waits for the next start's pass.
        if *stopping.borrow() {
            break;
        }
        let started = Instant::now();
        let copied = place
            .put(record, dir)
            .map_err(|e| format!("backup {}: {e}", record.id))?;
        done.copied
            .push((record.id.clone(), copied, started.elapsed()));
        there.insert(record.id.clone());
        volumes.insert(record.manifest.meta.volume.clone());
    }
    if r.keep.is_some() || r.older_than_secs.is_some() {
        for volume in &volumes {
            let keep = r.keep.map(|k| k as usize);
            for id in mooring_backup::beyond_retention(
                &there,
                (app, volume),
                (keep, older_than_ms),
                now,
                &created_at,
            ) {
                place
                    .remove(app, &id)
                    .map_err(|e| format!("removing backup {id} by the retention: {e}"))?;
                done.pruned.push(id);
            }
        }
    }
    Ok(done)
}
