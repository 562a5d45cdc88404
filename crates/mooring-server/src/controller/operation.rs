//! One operation: resolve the target revision, check it is allowed, verify its
//! signature, render it (cached per revision and app path), apply the plan, and record
//! the operation with its actions and notes.

use super::error::{OperationError, RevisionRefused, SourceFailure, VerifyFailure};
use super::{AppHandle, AppRuntime, Controller, StreamEvent, Trigger, TriggerKind};
use mooring_core::state::EventKind;
use mooring_core::state::{ConditionKind, SyncState};
use mooring_core::{app_health, Health};
use mooring_docker::reconcile::{Progress, ReconcileError};
use mooring_docker::{reconcile, ReconcileOptions};
use mooring_render::{render, RenderRequest, Rendered};
use mooring_store::{now_ms, ActionRecord, AppStatus, NewOperation, OpResult};
use mooring_vcs::{Revision, SourceSpec, VerifyKey, VerifyPolicy};
use std::sync::{Arc, Mutex};
use std::time::Duration;

impl Controller {
    /// The rendered project of `app` at `revision`. Cached: the same revision, or a new
    /// revision that changed nothing under the app's path, is not rendered again.
    pub(super) async fn rendered(
        &self,
        app: &AppHandle,
        revision: &Revision,
    ) -> Result<Arc<Rendered>, RenderFailure> {
        let last = app.last_render();
        if let Some(r) = &last.rendered {
            if r.revision.id == revision.id {
                return Ok(r.clone());
            }
        }
        let (cache, spec, path) = (
            app.source.cache.clone(),
            app.spec.clone(),
            app.config.source.path.clone(),
        );
        let tree = {
            let (cache, spec, rev, path) =
                (cache.clone(), spec.clone(), revision.clone(), path.clone());
            tokio::task::spawn_blocking(move || cache.path_tree(&spec, &rev, &path))
                .await
                .map_err(RenderFailure::panicked)?
                .ok()
                .flatten()
        };
        if let Some(r) = &last.rendered {
            if tree.is_some() && tree == last.tree {
                // A commit outside the app's path: same desired state, new revision.
                let mut same = (**r).clone();
                same.revision = revision.clone();
                let same = Arc::new(same);
                app.keep_render(same.clone(), tree);
                return Ok(same);
            }
        }
        let data_dir = self.config.server.data_dir.clone();
        let protected = [self.config.folder.clone()];
        let swarm = self
            .config
            .hosts
            .get(&app.config.host)
            .is_some_and(|h| h.swarm);
        let (rev, cfg) = (revision.clone(), app.config.clone());
        let rendered = tokio::task::spawn_blocking(move || {
            render(RenderRequest {
                data_dir: &data_dir,
                cache: &cache,
                spec: &spec,
                revision: &rev,
                path: &path,
                files: &cfg.files,
                app: Some(&cfg.project),
                host: cfg.several_hosts.then_some(cfg.host.as_str()),
                swarm,
                environment: cfg.env.interpolation(),
                policy: &cfg.policy,
                protected: &protected,
                decrypter: Some(sops_decrypter(&cfg)?),
            })
            .map_err(|e| RenderFailure {
                condition: if matches!(e, mooring_render::RenderError::Policy { .. }) {
                    ConditionKind::PolicyRefused
                } else {
                    ConditionKind::RenderError
                },
                message: cfg.env.scrub(&e.to_string()),
            })
        })
        .await
        .map_err(RenderFailure::panicked)??;
        let rendered = Arc::new(rendered);
        app.keep_render(rendered.clone(), tree);
        self.metrics
            .inc("mooring_render_total", &[("app", &app.config.name)]);
        Ok(rendered)
    }

    /// Fetches one explicit revision (a pin, a rollback target, the last verified one).
    pub(super) async fn fetch_revision(
        &self,
        app: &AppHandle,
        rev: &str,
    ) -> Result<Revision, SourceFailure> {
        let Some(spec) = revision_spec(&app.spec, rev) else {
            // Plain folders have no history: only their current content exists.
            let current = self
                .current_revision(&app.source, ago(Duration::from_secs(1)))
                .await?;
            if current.id != rev {
                return Err(SourceFailure::NoHistory {
                    spec: app.spec.to_string(),
                    revision: rev.to_string(),
                });
            }
            return Ok(current);
        };
        let (cache, path) = (app.source.cache.clone(), app.config.source.path.clone());
        Ok(tokio::task::spawn_blocking(move || cache.fetch_path(&spec, &path)).await??)
    }

    /// Which revision to deploy: the trigger's, else the pin, else the source's current one.
    pub(super) async fn target_revision(
        &self,
        app: &AppHandle,
        trigger: &Trigger,
        pinned: Option<&str>,
    ) -> Result<Revision, SourceFailure> {
        match trigger.revision.as_deref().or(pinned) {
            Some(rev) => self.fetch_revision(app, rev).await,
            None => {
                // Asked by a person (or at start): what the source holds since then.
                // Otherwise the poller's last fetch will do, if within the interval.
                let since = if trigger.kind.manual()
                    || matches!(trigger.kind, TriggerKind::Startup | TriggerKind::Refresh)
                {
                    trigger.asked_at
                } else {
                    ago(app.config.sync.interval)
                };
                self.current_revision(&app.source, since).await
            }
        }
    }

    /// Whether the app may deploy `revision`, asked for as `asked` (a sync to a
    /// revision, a rollback, a pin): a revision reachable from the configured ref, or a
    /// ref `source.allow_refs` names. Anything else is refused: a committer who can push
    /// a branch must not get it deployed (and shown as Synced) on an operator's typo.
    pub(super) async fn allowed_revision(
        &self,
        app: &AppHandle,
        asked: &str,
        revision: &Revision,
    ) -> Result<(), RevisionRefused> {
        let source = &app.config.source;
        if source.allow_refs.iter().any(|p| ref_matches(p, asked)) {
            return Ok(());
        }
        let head = self
            .current_revision(&app.source, ago(app.config.sync.interval))
            .await?;
        if head.id == revision.id {
            return Ok(());
        }
        let (cache, spec, rev) = (app.source.cache.clone(), app.spec.clone(), revision.clone());
        let reachable = tokio::task::spawn_blocking(move || cache.is_ancestor(&spec, &rev, &head))
            .await
            .map_err(SourceFailure::from)?
            .map_err(SourceFailure::from)?;
        if reachable {
            return Ok(());
        }
        let reference = source.reference.as_deref().unwrap_or("the default branch");
        Err(RevisionRefused::NotInHistory {
            asked: asked.to_string(),
            describe: revision.describe.clone(),
            reference: reference.to_string(),
        })
    }

    /// Checks the revision's signature when the app asks for verification.
    pub(super) async fn verify(
        &self,
        app: &AppHandle,
        revision: &Revision,
    ) -> Result<(), VerifyFailure> {
        let Some(v) = &app.config.source.verify else {
            return Ok(());
        };
        let mode = v.mode;
        let keys = v
            .keys
            .iter()
            .map(|k| {
                if k.contains("BEGIN PGP") {
                    VerifyKey::OpenPgp(k.clone())
                } else {
                    VerifyKey::Ssh(k.trim().to_string())
                }
            })
            .collect();
        let policy = VerifyPolicy { mode, keys };
        let (cache, spec, rev) = (app.source.cache.clone(), app.spec.clone(), revision.clone());
        tokio::task::spawn_blocking(move || cache.verify(&spec, &rev, &policy)).await??;
        Ok(())
    }

    /// The body of a reconcile; fills `status`, returns the failure to retry on.
    pub(super) async fn run(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        trigger: &Trigger,
        pinned: Option<&str>,
        status: &mut AppStatus,
    ) -> Result<(), OperationError> {
        let Some(revision) = self.resolve(app, trigger, pinned, status).await? else {
            return Ok(());
        };
        if trigger.pin {
            self.pin(status, &revision)?;
        }
        let revision = self.while_held(app, rt, trigger, revision, status).await;
        let health_before = rt.last_health;
        let Some(rendered) = self.render_step(app, rt, trigger, &revision, status).await else {
            return Ok(());
        };
        let deployed = status.revision.clone();
        let new_revision = deployed.as_deref() != Some(revision.id.as_str());
        let cfg = &app.config.sync;
        let apply = trigger.kind.manual() || (cfg.auto && (new_revision || cfg.self_heal));
        let (outcome, op) = self
            .apply(app, trigger, &revision, &rendered, apply, status)
            .await?;
        let drift = !outcome.plan.actions.is_empty() && !new_revision && !trigger.kind.manual();
        if drift {
            self.drift_detected(&app.config.name, &outcome.plan, apply, deployed.clone());
        }
        let failure = self.record(app, op, &outcome, status).await;
        // A new revision deployed over a good one is on probation (`sync.rollback`);
        // not a rollback's own deploy, nor a revision a person pinned.
        // (On a Swarm, its own `update_config.failure_action` rolls back.)
        let swarm = self
            .config
            .hosts
            .get(&app.config.host)
            .is_some_and(|h| h.swarm);
        // Only a deploy that changed something is on probation: one that stopped at a
        // pull (or a backup) left the revision before running as it was — there is
        // nothing to roll back, and the failure is retried as any other.
        let changed = outcome.results.iter().any(|r| {
            r.error.is_none()
                && !matches!(
                    r.action.action,
                    mooring_core::Action::PullImage { .. }
                        | mooring_core::Action::BackupVolume { .. }
                )
        });
        let probation = cfg
            .rollback
            .filter(|_| apply && new_revision && !trigger.pin && !swarm)
            .filter(|_| changed || failure.is_none())
            .filter(|_| trigger.kind != TriggerKind::AutoRollback);
        let retried = rt
            .watch
            .as_mut()
            .filter(|w| w.bad == revision.id && probation.is_some());
        if let Some(w) = retried {
            // A retry of the revision on probation: the same probation — its deadline
            // holds, and its backups stay those from before its first deploy (a
            // retry's hold what that deploy broke); a volume the first attempt did not
            // reach (it stopped at a pull) gets the retry's.
            w.failed = failure.clone();
            let fresh = super::rollback::Watch::new(
                (revision.id.clone(), w.good.clone()),
                Duration::ZERO,
                None,
                &outcome,
                &self.restore_volumes(app, &rendered.project),
            );
            for (volume, id) in fresh.backups {
                if !w.backups.iter().any(|(v, _)| *v == volume) {
                    w.backups.push((volume, id));
                }
            }
        } else if let (Some(timeout), Some(good), None) =
            (probation, deployed.clone(), held_failure(&outcome))
        {
            let mut watch = super::rollback::Watch::new(
                (revision.id.clone(), good),
                timeout,
                failure.clone(),
                &outcome,
                &self.restore_volumes(app, &rendered.project),
            );
            // Over a revision still on probation: judged now. Healthy until this deploy,
            // it passed; else a rollback goes back to the last one judged good, with
            // the data from before that probation began.
            if let Some(earlier) = rt
                .watch
                .take()
                .filter(|_| health_before != Some(Health::Healthy))
            {
                watch.good = earlier.good;
                for (volume, id) in earlier.backups {
                    watch.backups.retain(|(v, _)| *v != volume);
                    watch.backups.push((volume, id));
                }
            }
            rt.watch = Some(watch);
        }
        if let Some((condition, event, message)) = held_failure(&outcome) {
            // Like a render error: the revision waits for a new one, never retried (a
            // build that failed fails again; a rollout Swarm undid would be undone again).
            let message = rendered
                .project
                .secret_values
                .scrub(&app.config.env.scrub(&message));
            rt.render_failure = Some((
                revision.id.clone(),
                RenderFailure {
                    condition,
                    message: message.clone(),
                },
            ));
            status.sync = SyncState::OutOfSync;
            status.conditions.push(condition.with(message.clone()));
            self.event(&app.config.name, event, &message);
            let (health, _) = outcome
                .health
                .clone()
                .unwrap_or_else(|| app_health(&rendered.project, &outcome.live));
            status.health = health;
            rt.last_health = Some(health);
            return Ok(());
        }
        let (health, resources) = outcome
            .health
            .clone()
            .unwrap_or_else(|| app_health(&rendered.project, &outcome.live));
        status.health = health;
        let sync = if outcome.after.in_sync() {
            SyncState::Synced
        } else {
            SyncState::OutOfSync
        };
        status.sync = sync;
        if outcome.after.in_sync() || (apply && failure.is_none()) {
            status.revision = Some(revision.id.clone());
            status.revision_describe = Some(revision.describe.clone());
        } else if !apply && new_revision {
            status
                .conditions
                .push(ConditionKind::OutOfSync.with(format!(
                    "{} is available; auto-sync is off",
                    revision.describe
                )));
        }
        if !outcome.after.orphans_kept.is_empty() {
            status
                .conditions
                .push(ConditionKind::OrphansKept.with(format!(
                    "containers of removed services kept (prune is off): {}",
                    outcome.after.orphans_kept.join(", ")
                )));
        }
        if health == Health::Degraded && rt.last_health != Some(Health::Degraded) {
            self.health_degraded(&app.config.name, &resources, status.revision.clone());
        }
        rt.last_health = Some(health);
        match failure {
            Some(e) => Err(OperationError::Action(e)),
            None => Ok(()),
        }
    }

    /// The revision to deploy: the target, allowed for the app and verified; `None`
    /// when nothing is to be deployed (a first revision that does not verify).
    async fn resolve(
        &self,
        app: &AppHandle,
        trigger: &Trigger,
        pinned: Option<&str>,
        status: &mut AppStatus,
    ) -> Result<Option<Revision>, OperationError> {
        let name = app.config.name.as_str();
        let revision = match self.target_revision(app, trigger, pinned).await {
            Ok(r) => r,
            Err(e) => {
                status.sync = SyncState::Unknown;
                return Err(e.into());
            }
        };
        if let Some(asked) = trigger.revision.as_deref().or(pinned) {
            if let Err(e) = self.allowed_revision(app, asked, &revision).await {
                let message = e.to_string();
                let op = self.begin(
                    name,
                    (trigger.kind, trigger.by.as_deref()),
                    Some(&revision),
                    false,
                );
                self.finish(op, OpResult::Failed, Some(&message));
                status.last_operation = op.or(status.last_operation);
                status
                    .conditions
                    .push(ConditionKind::RevisionRefused.with(message.clone()));
                self.event(name, EventKind::RevisionRefused, &message);
                return Err(e.into());
            }
        }
        match self.verify(app, &revision).await {
            Ok(()) => Ok(Some(revision)),
            Err(e) => {
                status.conditions.push(
                    ConditionKind::VerificationFailed
                        .with(format!("{} is not deployed: {e}", revision.describe)),
                );
                self.event(name, EventKind::VerificationFailed, &e.to_string());
                match status.revision.clone() {
                    // Keep running (and healing) the last verified revision.
                    Some(deployed) if deployed != revision.id => self
                        .fetch_revision(app, &deployed)
                        .await
                        .map(Some)
                        .map_err(OperationError::from),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Pins the app to `revision` (a rollback).
    fn pin(&self, status: &AppStatus, revision: &Revision) -> Result<(), OperationError> {
        let name = status.name.as_str();
        // The pin lives on the app's row: make sure it exists.
        if self.store.app(name)?.is_none() {
            self.store.put_app(status)?;
        }
        self.store.set_pin(name, Some(&revision.id))?;
        Ok(())
    }

    /// The revision to reconcile when `target` is held (it failed to render, build or
    /// roll out, or was rolled back): the deployed one, so its drift is still healed
    /// and its health followed while the held one waits — the held one's condition
    /// stays on the app. A hold is dropped once the source has moved past it.
    async fn while_held(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        trigger: &Trigger,
        target: Revision,
        status: &mut AppStatus,
    ) -> Revision {
        let Some((held, failure)) = &rt.render_failure else {
            return target;
        };
        if *held != target.id {
            rt.render_failure = None;
            return target;
        }
        let deployed = match &status.revision {
            Some(d) if d != held && !trigger.kind.manual() => d.clone(),
            _ => return target,
        };
        let condition = failure.condition().with(failure.message.clone());
        // The deployed revision as last rendered: no fetch at every look while held.
        if let Some(r) = app
            .last_render()
            .rendered
            .filter(|r| r.revision.id == deployed)
        {
            status.conditions.push(condition);
            return r.revision.clone();
        }
        match self.fetch_revision(app, &deployed).await {
            Ok(r) => {
                status.conditions.push(condition);
                r
            }
            // (A plain folder keeps no earlier revision: the app waits as it is.)
            Err(_) => target,
        }
    }

    /// The rendered project; `None` when the revision cannot be rendered (recorded
    /// once, then it waits for a new revision, unless a person asks again).
    async fn render_step(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        trigger: &Trigger,
        revision: &Revision,
        status: &mut AppStatus,
    ) -> Option<Arc<Rendered>> {
        let name = app.config.name.as_str();
        if let Some((rev, error)) = &rt.render_failure {
            if *rev == revision.id && !trigger.kind.manual() {
                status.sync = SyncState::Unknown;
                status
                    .conditions
                    .push(error.condition().with(error.message.clone()));
                return None; // already recorded; waits for a new revision
            }
        }
        match self.rendered(app, revision).await {
            Ok(r) => {
                // A held revision that renders now (a person asked again).
                if rt
                    .render_failure
                    .as_ref()
                    .is_some_and(|(held, _)| *held == revision.id)
                {
                    rt.render_failure = None;
                }
                Some(r)
            }
            Err(failure) => {
                let (kind, e) = (failure.condition(), failure.message.clone());
                rt.render_failure = Some((revision.id.clone(), failure));
                let op = self.begin(
                    name,
                    (trigger.kind, trigger.by.as_deref()),
                    Some(revision),
                    false,
                );
                self.finish(op, OpResult::Failed, Some(&e));
                status.last_operation = op.or(status.last_operation);
                status.sync = SyncState::Unknown;
                status.conditions.push(kind.with(e.clone()));
                let event = if kind == ConditionKind::PolicyRefused {
                    EventKind::PolicyRefused
                } else {
                    EventKind::RenderFailed
                };
                self.event(name, event, &e);
                // A broken revision is not retried: it waits for a new one.
                None
            }
        }
    }

    /// Plans and (unless `apply` is off: a dry run) applies the rendered project,
    /// recording the operation and each finished action; returns the outcome and the
    /// operation's id.
    async fn apply(
        &self,
        app: &AppHandle,
        trigger: &Trigger,
        revision: &Revision,
        rendered: &Rendered,
        apply: bool,
        status: &mut AppStatus,
    ) -> Result<(mooring_docker::reconcile::Outcome, Option<i64>), OperationError> {
        let name = app.config.name.as_str();
        let provider = self
            .providers
            .get(&app.config.host)
            .ok_or_else(|| OperationError::NotConnected(app.config.host.clone()))?;
        let health = self.host_health_now(&app.config.host, provider).await;
        if let Some(why) = health.unreachable {
            let seen = match health.last_seen {
                Some(at) => format!("last seen {}s ago", (now_ms() - at).max(0) / 1000),
                None => "not seen since the daemon started".to_string(),
            };
            let message = format!(
                "host {} ({}) is unreachable: {why}; {seen}. Retried as it comes back",
                app.config.host,
                provider.endpoint()
            );
            status
                .conditions
                .push(ConditionKind::HostUnreachable.with(message.clone()));
            return Err(OperationError::HostUnreachable(message));
        }
        if let Some(why) = health.replaced {
            status
                .conditions
                .push(ConditionKind::HostReplaced.with(why.clone()));
            return Err(OperationError::HostReplaced(why));
        }
        let mut options = self.reconcile_options(app, !apply);
        options.expect_plan = trigger.expect_plan.clone();
        // What an automatic rollback would restore is backed up before its writers
        // change (not again by the rollback's own deploy).
        if app.config.sync.rollback.is_some() && trigger.kind != TriggerKind::AutoRollback {
            options.always_back_up = self.restore_volumes(app, &rendered.project);
        }
        // Its Engine's id was just checked, and whether it manages a Swarm with it.
        // (A `false` is asked again: the Engine may have become a manager since.)
        options.swarm_manager = health.swarm_manager.then_some(true);
        // On a Swarm, the registries are asked for every image's digest when a person
        // asked, a fetch was asked for (webhook, refresh) or the revision is new; the
        // periodic look asks only for images no service runs pinned yet.
        options.resolve_images = trigger.kind.manual()
            || trigger.kind.fetches_now()
            || status.revision.as_deref() != Some(revision.id.as_str());
        // Backups taken now hold the data of the revision deployed until now.
        options.revision = status.revision.clone();

        let op_id: Mutex<Option<i64>> = Mutex::new(None);
        let seq = std::sync::atomic::AtomicU32::new(0);
        let prepare = || {
            rendered.materialize()?;
            *op_id.lock().unwrap_or_else(|e| e.into_inner()) = self.begin(
                name,
                (trigger.kind, trigger.by.as_deref()),
                Some(revision),
                false,
            );
            Ok(())
        };
        // What an action prints never shows the app's secret variables or the values
        // its render decrypted.
        let scrub = |text: &str| {
            rendered
                .project
                .secret_values
                .scrub(&app.config.env.scrub(text))
        };
        let report = |p: Progress<'_>| match p {
            Progress::Finished(r) => {
                let op = *op_id.lock().unwrap_or_else(|e| e.into_inner());
                let output = (!r.output.is_empty()).then(|| scrub(&r.output.join("\n")));
                let error = r.error.as_deref().map(scrub);
                self.record_action(name, op, &seq, r, output, error);
            }
            // An action begins: the UI shows it running until its `operation` event.
            Progress::Started(a) => {
                let _ = self.stream.send(StreamEvent {
                    kind: "started",
                    app: name.to_string(),
                    data: serde_json::json!({"action": a, "text": a.action.to_string()}),
                });
            }
            // What a pull or build prints, live on the event stream (`/api/v1/stream`).
            Progress::Output { action, line } => {
                let _ = self.stream.send(StreamEvent {
                    kind: "output",
                    app: name.to_string(),
                    data: serde_json::json!({"action": action.action.to_string(), "line": scrub(line)}),
                });
            }
            _ => {}
        };
        let result = if self
            .config
            .hosts
            .get(&app.config.host)
            .is_some_and(|h| h.swarm)
        {
            // A Swarm manager: the project as a stack.
            let prepare = || prepare();
            mooring_docker::stack::reconcile(
                provider,
                &rendered.project,
                &options,
                &prepare,
                &report,
            )
            .await
        } else {
            reconcile(provider, &rendered.project, options, &prepare, &report).await
        };
        let outcome = match result {
            Ok(o) => o,
            Err(ReconcileError::Plan(e)) => {
                status.sync = SyncState::OutOfSync;
                if let mooring_core::plan::PlanError::VolumeDiverged { volume, .. } = &e {
                    // Blocks the app until the user resolves it; never a silent skip or delete.
                    status
                        .conditions
                        .push(ConditionKind::VolumeDiverged.with(format!("volume {volume}: {e}")));
                }
                return Err(OperationError::Plan(e));
            }
            Err(e) => return Err(e.into()),
        };
        let op = *op_id.lock().unwrap_or_else(|e| e.into_inner());
        Ok((outcome, op))
    }

    /// Records a finished action of operation `op` and streams it.
    fn record_action(
        &self,
        name: &str,
        op: Option<i64>,
        seq: &std::sync::atomic::AtomicU32,
        r: &mooring_docker::reconcile::ActionResult,
        output: Option<String>,
        error: Option<String>,
    ) {
        if error.is_none() {
            match r.action.action {
                mooring_core::Action::BackupVolume { .. } => {
                    self.data_duration(name, "backup", r.duration)
                }
                mooring_core::Action::RestoreVolume { .. } => {
                    self.data_duration(name, "restore", r.duration)
                }
                _ => {}
            }
        }
        if let Some(op) = op {
            let record = ActionRecord {
                seq: seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                kind: r.action.action.verb().to_string() + " " + resource_kind(&r.action.action),
                resource: r.action.action.to_string(),
                reason: r.action.reason.clone(),
                started_at: now_ms() - r.duration.as_millis() as i64,
                duration_ms: r.duration.as_millis() as i64,
                error: error.clone(),
                output,
            };
            if let Err(e) = self.store.record_action(op, &record) {
                tracing::error!(error = %e, "cannot record action");
            }
        }
        let _ = self.stream.send(StreamEvent {
            kind: "operation",
            app: name.to_string(),
            data: serde_json::json!({"action": r.action, "text": r.action.action.to_string(), "seconds": r.duration.as_secs_f64(), "error": error, "detail": r.detail}),
        });
    }

    /// Records the end of operation `op` (its notes and result) and catalogues new
    /// backups; returns the failed action, if one failed.
    async fn record(
        &self,
        app: &AppHandle,
        op: Option<i64>,
        outcome: &mooring_docker::reconcile::Outcome,
        status: &mut AppStatus,
    ) -> Option<String> {
        let name = app.config.name.as_str();
        let backed_up = outcome.results.iter().any(|r| {
            r.error.is_none()
                && matches!(r.action.action, mooring_core::Action::BackupVolume { .. })
        });
        if backed_up {
            // The catalogue mirrors the manifests (new backups, and what retention removed).
            if let Err(e) = self.app_backups(name).await {
                tracing::warn!(app = name, error = %e, "cannot catalogue the app's backups");
            }
        }
        let failure = outcome.failure().map(|f| {
            format!(
                "{}: {}",
                f.action.action,
                f.error.clone().unwrap_or_default()
            )
        });
        if let Some(op) = op {
            status.last_operation = Some(op);
            if let Err(e) = self.store.set_operation_notes(op, &outcome.plan.notes) {
                tracing::error!(app = name, error = %e, "cannot record the operation's notes");
            }
            match &failure {
                Some(e) => self.finish(Some(op), OpResult::Failed, Some(e)),
                None => self.finish(Some(op), OpResult::Succeeded, None),
            }
            let result = if failure.is_some() {
                "failed"
            } else {
                "succeeded"
            };
            self.metrics
                .inc("mooring_sync_total", &[("app", name), ("result", result)]);
        }
        failure
    }

    /// The Docker names of the volumes `data.restore_on_rollback` names (by Compose
    /// key or by Docker name).
    pub(super) fn restore_volumes(
        &self,
        app: &AppHandle,
        project: &mooring_core::Project,
    ) -> Vec<String> {
        app.config
            .restore_on_rollback
            .iter()
            .map(|k| {
                project
                    .volumes
                    .get(k)
                    .map_or_else(|| k.clone(), |v| v.name.clone())
            })
            .collect()
    }

    /// The app's prune and data policies, and where its backups go.
    pub(super) fn reconcile_options(&self, app: &AppHandle, dry_run: bool) -> ReconcileOptions {
        ReconcileOptions {
            prune: app.config.sync.prune,
            dry_run,
            volume_policy: app.config.volumes,
            backups: Some(self.config.server.data_dir.join("backups")),
            recreate_volumes: Vec::new(),
            backup_on_change: app.config.backup_on_change,
            retention: app.config.retention,
            revision: None,
            mask: Some(app.config.env.masking()),
            parallel: self.config.server.workers,
            backup_app: Some(app.config.name.clone()),
            expect_plan: None,
            swarm_manager: None,
            always_back_up: Vec::new(),
            resolve_images: false,
            // A Swarm's nodes, the manager first: the stack's volumes are backed up
            // through them.
            nodes: match self.config.hosts.get(&app.config.host) {
                Some(h) if h.swarm => std::iter::once(&app.config.host)
                    .chain(&h.nodes)
                    .filter_map(|n| Some((n.clone(), self.providers.get(n)?.clone())))
                    .collect(),
                _ => Vec::new(),
            },
        }
    }

    /// Records the start of an operation of `app` (on `revision`, when one is deployed
    /// or being deployed), what started it and who asked, and logs it; its id.
    pub(super) fn begin(
        &self,
        app: &str,
        (kind, by): (TriggerKind, Option<&str>),
        revision: Option<&Revision>,
        dry_run: bool,
    ) -> Option<i64> {
        let op = NewOperation {
            app: app.to_string(),
            trigger: kind.as_str().to_string(),
            revision: revision.map(|r| r.id.clone()),
            dry_run,
            started_at: now_ms(),
            requested_by: by.map(str::to_string),
        };
        tracing::info!(
            app,
            trigger = op.trigger.as_str(),
            revision = revision.map(|r| r.describe.as_str()),
            dry_run,
            "operation started"
        );
        match self.store.begin_operation(&op) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(app, error = %e, "cannot record operation");
                None
            }
        }
    }

    pub(super) fn finish(&self, op: Option<i64>, result: OpResult, error: Option<&str>) {
        // One line per operation's end: which, how it ended, how long it took.
        let record = op.and_then(|id| self.store.operation(id).ok().flatten());
        let app = record.as_ref().map(|o| o.app.as_str());
        // What it backed up is copied off the host in the background (`copies`); an
        // operation that took no backup has nothing new to copy.
        if let Some(o) = record.as_ref() {
            if o.actions
                .iter()
                .any(|a| a.kind == "back up volume" && a.error.is_none())
            {
                self.want_copies(&o.app);
            }
        }
        let took_ms = record.as_ref().map(|o| now_ms() - o.started_at);
        match error {
            Some(error) => tracing::warn!(
                operation = op,
                app,
                result = result.as_str(),
                took_ms,
                error,
                "operation ended"
            ),
            None => tracing::info!(
                operation = op,
                app,
                result = result.as_str(),
                took_ms,
                "operation ended"
            ),
        }
        if let Some(op) = op {
            if let Err(e) = self.store.finish_operation(op, result, error, now_ms()) {
                tracing::error!(error = %e, "cannot finish operation");
            }
        }
    }
}

pub(super) fn resource_kind(a: &mooring_core::Action) -> &'static str {
    use mooring_core::Action::*;
    match a {
        CreateNetwork { .. } | RemoveNetwork { .. } => "network",
        CreateVolume { .. } => "volume",
        PullImage { .. } => "image",
        CreateService { .. } | UpdateService { .. } | RemoveService { .. } => "service",
        CreateSwarmFile { file, .. } | RemoveSwarmFile { file, .. } => file.as_str(),
        _ => "container",
    }
}

/// The spec that fetches exactly `rev` of an app's source (`None` for plain folders).
pub(super) fn revision_spec(spec: &SourceSpec, rev: &str) -> Option<SourceSpec> {
    match spec {
        SourceSpec::Git { url, .. } => Some(SourceSpec::Git {
            url: url.clone(),
            reference: Some(rev.to_string()),
        }),
        SourceSpec::Svn { url, reference } => {
            let base = reference.as_deref().unwrap_or("trunk");
            let base = base.split_once('@').map(|(b, _)| b).unwrap_or(base);
            Some(SourceSpec::Svn {
                url: url.clone(),
                reference: Some(format!("{base}@{rev}")),
            })
        }
        SourceSpec::Hg { url, .. } => Some(SourceSpec::Hg {
            url: url.clone(),
            reference: Some(rev.to_string()),
        }),
        _ => None,
    }
}

/// Whether an `allow_refs` entry (a name, `prefix*`, or `*`) names `asked`.
pub(super) fn ref_matches(pattern: &str, asked: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => asked.starts_with(prefix),
        None => pattern == asked,
    }
}

/// The app's SOPS decryption: its configured identities and the daemon's own
/// (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`).
fn sops_decrypter(
    cfg: &crate::config::AppConfig,
) -> Result<Arc<dyn mooring_compose::Decrypter>, RenderFailure> {
    let mut keys = mooring_sops::Keys::from_environment().map_err(|message| RenderFailure {
        condition: ConditionKind::RenderError,
        message,
    })?;
    keys.extend(&cfg.sops);
    Ok(Arc::new(mooring_sops::Sops::strict(keys)))
}

/// Why a revision could not be rendered — or one of its images built — for an app: it
/// waits for a new revision (or a person's request).
#[derive(Debug, Clone)]
pub(super) struct RenderFailure {
    /// `RenderError`, `PolicyRefused` or `BuildFailed`.
    pub(super) condition: ConditionKind,
    pub(super) message: String,
}

impl RenderFailure {
    pub(super) fn panicked(e: tokio::task::JoinError) -> RenderFailure {
        RenderFailure {
            condition: ConditionKind::RenderError,
            message: crate::panic::join_error("rendering", e),
        }
    }

    /// The app's condition while the revision stands.
    pub(super) fn condition(&self) -> ConditionKind {
        self.condition
    }
}

/// The error of an image build that failed in this operation.
/// A failure that holds the revision until a new one: a build that failed, or a
/// rolling update Swarm paused or rolled back. Its condition, event and message.
fn held_failure(
    outcome: &mooring_docker::reconcile::Outcome,
) -> Option<(ConditionKind, EventKind, String)> {
    outcome
        .results
        .iter()
        .find_map(|r| match (&r.action.action, &r.error) {
            (mooring_core::Action::BuildImage { .. }, Some(e)) => Some((
                ConditionKind::BuildFailed,
                EventKind::BuildFailed,
                format!("{}: {e}", r.action.action),
            )),
            (mooring_core::Action::UpdateService { .. }, Some(e))
                if e.contains(mooring_docker::stack::ROLLOUT_UNDONE) =>
            {
                Some((
                    ConditionKind::RolloutFailed,
                    EventKind::SyncFailed,
                    format!("{}: {e}", r.action.action),
                ))
            }
            _ => None,
        })
}

/// The instant `d` ago (now, when the clock does not reach that far back).
fn ago(d: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_sub(d).unwrap_or(now)
}
