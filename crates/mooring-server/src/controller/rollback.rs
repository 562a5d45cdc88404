//! Automatic rollback (`sync.rollback: { on_failure: true, health_timeout }`): a new
//! revision whose deploy fails, or that is not Healthy within the timeout, is replaced
//! by the revision deployed before it. With `data.restore_on_rollback`, the volumes
//! named there get back the backup taken just before the failed deploy touched them
//! (their writers stopped first, so what broke the data cannot write again), then the
//! revision before is deployed. The failed revision is held — not tried again until a
//! newer one arrives or a person syncs — so a rollback never loops.

use super::operation::RenderFailure;
use super::{AppHandle, AppRuntime, Controller, Trigger, TriggerKind};
use crate::notify::Notice;
use mooring_core::state::{ConditionKind, EventKind};
use mooring_core::{Action, Health};
use mooring_store::{now_ms, ActionRecord, AppStatus, OpResult};
use std::time::{Duration, Instant};

/// A new revision on probation: deployed over `good`, rolled back unless Healthy by
/// `deadline`.
#[derive(Debug, Clone)]
pub(super) struct Watch {
    /// The revision deployed (the one that may fail).
    pub(super) bad: String,
    /// The revision deployed before it, which a rollback deploys again.
    pub(super) good: String,
    pub(super) deadline: Instant,
    /// The deadline as the store keeps it (unix ms).
    pub(super) until: i64,
    /// Why it failed already (its deploy), if it did.
    pub(super) failed: Option<String>,
    /// The backups taken before the deploy of the volumes to restore: `(volume, id)`.
    pub(super) backups: Vec<(String, String)>,
}

impl Watch {
    /// A revision just deployed: watched for `timeout` (at once when its deploy
    /// failed), with the backups the deploy took of `restore` volumes.
    pub(super) fn new(
        (bad, good): (String, String),
        timeout: Duration,
        failed: Option<String>,
        outcome: &mooring_docker::reconcile::Outcome,
        restore: &[String],
    ) -> Watch {
        let backups = outcome
            .results
            .iter()
            .filter(|r| r.error.is_none())
            .filter_map(|r| match (&r.action.action, &r.detail) {
                (Action::BackupVolume { volume }, Some(detail)) if restore.contains(volume) => {
                    let id = detail.strip_prefix("backup ")?.split(';').next()?;
                    Some((volume.clone(), id.trim().to_string()))
                }
                _ => None,
            })
            .collect();
        Watch {
            bad,
            good,
            // A failed deploy too gets its time: a retry may still bring it up.
            deadline: Instant::now() + timeout,
            until: now_ms() + i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
            failed,
            backups,
        }
    }
}

impl Watch {
    /// As the store keeps it (its deadline in unix ms).
    pub(super) fn probation(&self) -> mooring_store::Probation {
        mooring_store::Probation {
            revision: self.bad.clone(),
            good: self.good.clone(),
            until: self.until,
            failed: self.failed.clone(),
            backups: self.backups.clone(),
        }
    }

    /// From the store, after a restart: what is left of its time (none once past).
    pub(super) fn from_probation(p: &mooring_store::Probation) -> Watch {
        let left = u64::try_from(p.until - now_ms()).unwrap_or(0);
        Watch {
            bad: p.revision.clone(),
            good: p.good.clone(),
            deadline: Instant::now() + Duration::from_millis(left),
            until: p.until,
            failed: p.failed.clone(),
            backups: p.backups.clone(),
        }
    }
}

impl Controller {
    /// After a reconcile: a watched revision that became Healthy is kept; one that
    /// failed or is past its deadline unhealthy is rolled back.
    pub(super) async fn judge_watch(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        status: &mut AppStatus,
        reconciled: bool,
    ) {
        let Some(w) = rt.watch.clone() else { return };
        // Judged on what a reconcile that went through saw (not a host that did not
        // answer, nor a health read before it).
        if !reconciled && w.failed.is_none() {
            return;
        }
        // A host that does not answer (or answers as another machine) can neither be
        // judged nor rolled back: the probation waits for it.
        if status.conditions.iter().any(|c| {
            matches!(
                c.kind,
                ConditionKind::HostUnreachable | ConditionKind::HostReplaced
            )
        }) {
            return;
        }
        if status.revision.as_deref() != Some(w.bad.as_str()) && w.failed.is_none() {
            // Another revision is deployed now: nothing left to judge.
            rt.watch = None;
            return;
        }
        // Healthy at the end of its probation (a container without a health check is
        // Healthy as soon as it runs, so only the end tells).
        if Instant::now() < w.deadline {
            return;
        }
        rt.watch = None;
        if status.health == Health::Healthy && status.revision.as_deref() == Some(w.bad.as_str()) {
            return;
        }
        let why = match (
            &w.failed,
            status.revision.as_deref() == Some(w.bad.as_str()),
        ) {
            (Some(e), false) => format!("its deploy failed: {e}"),
            _ => {
                let unhealthy: Vec<String> = self
                    .unhealthy_containers(app)
                    .await
                    .unwrap_or_else(|| vec![format!("health {}", status.health.as_str())]);
                format!(
                    "not Healthy within {}s ({})",
                    app.config.sync.rollback.unwrap_or_default().as_secs(),
                    unhealthy.join("; ")
                )
            }
        };
        self.roll_back(app, rt, &w, &why, status).await;
    }

    /// The app's containers that are not Healthy, with why (`None`: not observed).
    async fn unhealthy_containers(&self, app: &AppHandle) -> Option<Vec<String>> {
        let tree = self.resources(&app.config.name).await.ok()??;
        let out: Vec<String> = tree
            .services
            .iter()
            .filter(|r| r.health != Health::Healthy)
            .map(|r| format!("{}: {} ({})", r.container, r.health.as_str(), r.message))
            .collect();
        Some(out)
    }

    /// Restores the volumes, deploys `w.good` again, holds `w.bad`; recorded as
    /// operations of the app, an event and a notice.
    async fn roll_back(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        w: &Watch,
        why: &str,
        status: &mut AppStatus,
    ) {
        let name = app.config.name.clone();
        let short = |r: &str| mooring_core::short_revision(r).to_string();
        let message = format!(
            "revision {} rolled back to {}: {why}",
            short(&w.bad),
            short(&w.good)
        );
        tracing::warn!(app = %name, %message, "automatic rollback");
        // The revision before must be there to deploy, before any data is touched.
        let ready = match self.fetch_revision(app, &w.good).await {
            Ok(rev) => self
                .rendered(app, &rev)
                .await
                .map(|_| ())
                .map_err(|f| f.message.clone()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = ready {
            let outcome = format!(
                "{message}; cannot roll back: revision {} is not deployable: {e}",
                short(&w.good)
            );
            status
                .conditions
                .push(ConditionKind::RolledBack.with(outcome.clone()));
            self.event(&name, EventKind::RolledBack, &outcome);
            return;
        }
        let restored = self.restore_for_rollback(app, w).await;
        let restore_note = match &restored {
            Ok(v) if v.is_empty() => String::new(),
            Ok(v) => format!("; restored {}", v.join(", ")),
            Err(e) => format!("; the data was NOT restored: {e}"),
        };
        let trigger = Trigger {
            revision: Some(w.good.clone()),
            by: Some("automatic rollback".into()),
            ..Trigger::of(TriggerKind::AutoRollback)
        };
        let deployed = self.run(app, rt, &trigger, None, status).await;
        let outcome = match &deployed {
            Ok(()) => format!("{message}{restore_note}"),
            Err(e) => format!(
                "{message}{restore_note}; deploying {} failed: {e}",
                short(&w.good)
            ),
        };
        let rolled_back = deployed.is_ok() && status.revision.as_deref() == Some(w.good.as_str());
        if !rolled_back {
            // Not held: the app stays on what runs, retried as any failure is.
            status
                .conditions
                .push(ConditionKind::RolledBack.with(outcome.clone()));
            self.event(&name, EventKind::RolledBack, &outcome);
            return;
        }
        // Held: the failed revision waits for a newer one or a person.
        rt.render_failure = Some((
            w.bad.clone(),
            RenderFailure {
                condition: ConditionKind::RolledBack,
                message: outcome.clone(),
            },
        ));
        rt.failures = 0;
        rt.next_retry = None;
        status.failures = 0;
        status.next_retry_at = None;
        status
            .conditions
            .retain(|c| !matches!(c.kind, ConditionKind::SyncFailed | ConditionKind::Retrying));
        status
            .conditions
            .push(ConditionKind::RolledBack.with(outcome.clone()));
        self.event(&name, EventKind::RolledBack, &outcome);
        self.notifier.send(Notice {
            event: EventKind::RolledBack.as_str(),
            app: name,
            message: outcome,
            revision: status.revision.clone(),
        });
    }

    /// Puts back the pre-deploy backups of the rollback's volumes, their running
    /// writers stopped first (the rollback's deploy replaces them); one operation of
    /// the app with an action per volume. The volumes restored, or why not.
    async fn restore_for_rollback(
        &self,
        app: &AppHandle,
        w: &Watch,
    ) -> Result<Vec<String>, String> {
        if w.backups.is_empty() {
            return Ok(Vec::new());
        }
        let name = app.config.name.as_str();
        let provider = self
            .providers
            .get(&app.config.host)
            .ok_or_else(|| format!("host {} is not connected", app.config.host))?;
        let Some(rendered) = app.last_render().rendered else {
            return Err("the app has no rendered project".into());
        };
        let dir = self.config.server.data_dir.join("backups");
        let op = self.begin(
            name,
            (TriggerKind::AutoRollback, Some("automatic rollback")),
            Some(&mooring_vcs::Revision {
                id: w.bad.clone(),
                describe: String::new(),
                tree: None,
            }),
            false,
        );
        let mut done = Vec::new();
        let mut error = None;
        for (seq, (volume, id)) in w.backups.iter().enumerate() {
            let started = Instant::now();
            let r = async {
                // Every user, running or restarting (a crash loop would start the
                // broken revision again in the middle of the restore).
                for (container, _, _) in provider.volume_users(volume).await? {
                    provider.stop(&container).await?;
                }
                mooring_docker::Host::restore_volume(
                    provider,
                    &rendered.project,
                    volume,
                    id,
                    &dir,
                    true,
                )
                .await
            }
            .await;
            if r.is_ok() {
                self.data_duration(name, "restore", started.elapsed());
            }
            let took = started.elapsed().as_millis() as i64;
            let action = ActionRecord {
                seq: seq as u32,
                kind: "restore volume".into(),
                resource: format!("restore volume {volume}"),
                reason: format!(
                    "automatic rollback: the backup {id} taken before the failed deploy"
                ),
                started_at: now_ms() - took,
                duration_ms: took,
                error: r.as_ref().err().map(|e| e.to_string()),
                output: None,
            };
            if let Some(op) = op {
                if let Err(e) = self.store.record_action(op, &action) {
                    tracing::error!(error = %e, "cannot record action");
                }
            }
            match r {
                Ok(()) => done.push(format!("{volume} from backup {id}")),
                Err(e) => {
                    error = Some(format!("restoring {volume} from backup {id}: {e}"));
                    break;
                }
            }
        }
        match &error {
            Some(e) => self.finish(op, OpResult::Failed, Some(e)),
            None => self.finish(op, OpResult::Succeeded, None),
        }
        error.map_or(Ok(done), Err)
    }
}
