//! One sync operation for a rendered project: observe → plan → apply, reporting each
//! action's start and result. A dry run stops after the plan: `diff` and `sync` share
//! this code path.
//!
//! Order: image pulls and builds (after which the host is observed again, so containers
//! are compared with the fresh images), networks and volumes, backups before changes,
//! container removals, networks and volumes recreated, then containers in dependency waves —
//! independent services in parallel, each wave waiting for `service_healthy` /
//! `service_completed_successfully` where asked — then volumes no longer declared
//! (backed up and removed once no container of the app holds them) and finally pruned
//! networks. Every step is idempotent: an interrupted sync is
//! finished by the next one (containers have fixed names, nothing is temporary).

use crate::provider::{BackupWhy, Host, ProviderError};
use futures_util::future::join_all;
use mooring_core::plan::PlanError;
use mooring_core::{
    plan, Action, DataPolicy, DependsOnCondition, Live, Plan, PlanOptions, PlannedAction, Project,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to reconcile.
#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    /// Remove containers and networks of services the project no longer declares.
    pub prune: bool,
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// The app's data policy for volumes no longer declared.
    pub volume_policy: DataPolicy,
    /// Where volume backups are written (needed for `backup-then-delete`).
    pub backups: Option<PathBuf>,
    /// Diverged volumes to recreate (backup, remove, create, restore).
    pub recreate_volumes: Vec<String>,
    /// The app's `backup: on-change` (see [`PlanOptions::backup_on_change`]).
    pub backup_on_change: bool,
    /// The app's retention, applied to a volume's backups after each new one (a
    /// volume's `x-mooring: { retention }` overrides it).
    pub retention: mooring_core::Retention,
    /// The revision deployed before this operation, recorded in the backups it takes.
    pub revision: Option<String>,
    /// How the plan's reasons mask values (see [`PlanOptions::mask`]).
    pub mask: Option<mooring_core::EnvMask>,
    /// How many pulls and builds run at once (the daemon's `server.workers`); 0: all
    /// of them, as Compose does.
    pub parallel: usize,
    /// The app backups are filed under when it is not the project (an instance
    /// `APP@HOST` of an app deployed to several hosts).
    pub backup_app: Option<String>,
    /// Apply only a plan with this [`Plan::digest`] (the one a person confirmed);
    /// another is [`ReconcileError::PlanChanged`], with nothing applied.
    pub expect_plan: Option<String>,
    /// Whether the Engine manages a Swarm, when the caller has just asked it (a stack
    /// is deployed to a manager only); `None`: asked again.
    pub swarm_manager: Option<bool>,
    /// The Engines of a Swarm's nodes, by host name: a stack's volumes are backed up
    /// through them.
    pub nodes: Vec<(String, crate::Provider)>,
    /// Volumes backed up before their writers change whatever their policy (see
    /// [`PlanOptions::always_back_up`]).
    pub always_back_up: Vec<String>,
    /// On a Swarm: ask the registry for every image's digest, as `docker stack deploy
    /// --resolve-image always` (a person asked, or a new revision); else only for the
    /// images no service runs pinned yet, as `--resolve-image changed` (the periodic
    /// look: Docker Hub counts each question as a pull).
    pub resolve_images: bool,
}

impl ReconcileOptions {
    /// The planner's options; values the render decrypted are masked in its reasons
    /// whether or not the caller gave a mask.
    fn plan(&self, images_pulled: bool, project: &Project) -> Result<PlanOptions, ProviderError> {
        let mask = match (&self.mask, project.secret_values.is_empty()) {
            (mask, true) => mask.clone(),
            (Some(m), false) => Some(m.clone().for_project(project)),
            (None, false) => Some(
                mooring_core::EnvMask::new([], [], mooring_core::mask::process_key())
                    .for_project(project),
            ),
        };
        let recreations = match &self.backups {
            Some(dir) => mooring_backup::recreations(
                dir,
                self.backup_app.as_deref().unwrap_or(&project.name),
                project.volumes.values().map(|v| v.name.as_str()),
            )
            .map_err(|e| ProviderError::Failed(e.to_string()))?,
            None => BTreeMap::new(),
        };
        Ok(PlanOptions {
            recreate_volumes: self.recreate_volumes.clone(),
            recreations,
            prune: self.prune,
            images_pulled,
            volume_policy: self.volume_policy,
            backup_on_change: self.backup_on_change,
            always_back_up: self.always_back_up.clone(),
            mask,
        })
    }
}

/// What happened to one action.
#[derive(Debug, Clone)]
pub struct ActionResult {
    pub action: PlannedAction,
    pub duration: Duration,
    pub error: Option<String>,
    /// What a person should know about a success (the backup taken, old ones removed).
    pub detail: Option<String>,
    /// What it printed (a build: the builder's last [`OUTPUT_KEPT`] lines), for the
    /// operation's record; the lines also went out live as [`Progress::Output`].
    pub output: Vec<String>,
}

/// Lines of an action's output kept in its result.
pub const OUTPUT_KEPT: usize = 200;

/// Progress reports, in order, for a person watching.
#[derive(Debug)]
pub enum Progress<'a> {
    /// An action begins.
    Started(&'a PlannedAction),
    /// An action ended.
    Finished(&'a ActionResult),
    /// Waiting for a dependency's condition before starting its dependents.
    Waiting {
        service: &'a str,
        condition: &'a str,
    },
    /// A line the builder printed while an image is built.
    Output {
        action: &'a PlannedAction,
        line: &'a str,
    },
}

/// The result of a reconcile.
#[derive(Debug)]
pub struct Outcome {
    /// The plan as first made (what a dry run shows).
    pub plan: Plan,
    /// Every executed action, in completion order.
    pub results: Vec<ActionResult>,
    /// The host as last observed (after applying, when anything was applied).
    pub live: Live,
    /// What is still left to do against `live` (empty when the sync converged).
    pub after: Plan,
    /// A stack's health from its services' tasks (`None`: from `live`'s containers).
    pub health: Option<(mooring_core::Health, Vec<mooring_core::ResourceHealth>)>,
}

impl ActionResult {
    /// The result of `action`, begun at `start`, that ended as `r` (no detail, nothing
    /// printed).
    pub(crate) fn ended(
        action: &PlannedAction,
        start: Instant,
        r: Result<(), ProviderError>,
    ) -> ActionResult {
        ActionResult {
            action: action.clone(),
            duration: start.elapsed(),
            error: r.err().map(|e| e.to_string()),
            detail: None,
            output: Vec::new(),
        }
    }
}

impl Outcome {
    /// The first failure, if any.
    pub fn failure(&self) -> Option<&ActionResult> {
        self.results.iter().find(|r| r.error.is_some())
    }
}

/// Why a reconcile could not run at all (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Prepare(String),
    /// The plan is not the one confirmed: the host or the revision changed since.
    #[error(
        "the plan changed since it was shown (now {} action(s)): nothing was applied; look at the new plan and confirm it",
        .0.actions.len()
    )]
    PlanChanged(Box<Plan>),
}

type Report<'a> = &'a (dyn Fn(Progress<'_>) + Sync);

/// Observes, plans and (unless dry run) applies. `prepare` runs once a plan with
/// actions exists, before anything is applied (the CLI writes the deploy tree there);
/// its error aborts the sync with nothing applied.
pub async fn reconcile<H: Host>(
    provider: &H,
    project: &Project,
    options: ReconcileOptions,
    prepare: &(dyn Fn() -> Result<(), String> + Sync),
    report: Report<'_>,
) -> Result<Outcome, ReconcileError> {
    let live = provider.observe(project).await?;
    let first = plan(project, &live, options.plan(false, project)?)?;
    let mut outcome = Outcome {
        plan: first.clone(),
        results: Vec::new(),
        live,
        after: first.clone(),
        health: None,
    };
    if !options.dry_run
        && options
            .expect_plan
            .as_ref()
            .is_some_and(|d| *d != first.digest())
    {
        return Err(ReconcileError::PlanChanged(Box::new(first)));
    }
    if options.dry_run || first.actions.is_empty() {
        return Ok(outcome);
    }
    // A port another container holds would leave the app down half-way: refuse first.
    let starts_containers = first.actions.iter().any(|a| {
        matches!(
            a.action,
            Action::CreateContainer { .. } | Action::RecreateContainer { .. }
        )
    });
    if starts_containers && project.services.values().any(|s| !s.ports.is_empty()) {
        let foreign = provider.foreign_ports(project).await?;
        mooring_core::plan::port_conflicts(project, &first, &foreign)?;
    }
    if starts_containers {
        // What the Engine cannot run, refused before anything is removed.
        provider.check_project(project).await?;
    }
    prepare().map_err(ReconcileError::Prepare)?;
    apply(provider, project, &options, first, report, &mut outcome).await?;
    outcome.live = provider.observe(project).await?;
    outcome.after = plan(project, &outcome.live, options.plan(true, project)?)?;
    Ok(outcome)
}

/// Executes a plan in the order described at the top of this module; stops at the
/// first failed step (its result is in `outcome.results`).
async fn apply<H: Host>(
    provider: &H,
    project: &Project,
    options: &ReconcileOptions,
    first: Plan,
    report: Report<'_>,
    outcome: &mut Outcome,
) -> Result<(), ReconcileError> {
    let (pulls, _): (Vec<_>, Vec<_>) = first.actions.iter().cloned().partition(|a| {
        matches!(
            a.action,
            Action::PullImage { .. } | Action::BuildImage { .. }
        )
    });
    let mut current = first;
    if !pulls.is_empty() {
        // Networks and volumes are not needed for pulling; pull first, then look again.
        // Pulls and builds in parallel (as Compose builds), at most `parallel` at once,
        // before anything else.
        let limit = match options.parallel {
            0 => pulls.len(),
            n => n,
        };
        let gate = tokio::sync::Semaphore::new(limit);
        let results = join_all(pulls.iter().map(|a| async {
            // Never closed: the gate lives until every pull has run.
            let _turn = gate.acquire().await.ok();
            execute(provider, project, a, report).await
        }))
        .await;
        let failed = results.iter().any(|r| r.error.is_some());
        outcome.results.extend(results);
        if failed {
            return Ok(());
        }
        let live = provider.observe(project).await?;
        current = plan(project, &live, options.plan(true, project)?)?;
    }

    let mut steps: Vec<Vec<PlannedAction>> = Vec::new();
    let removed_volumes: BTreeSet<String> = current
        .actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::RemoveVolume { volume } => Some(volume.clone()),
            _ => None,
        })
        .collect();
    // Networks both removed and created: recreated once their containers are gone.
    let network_names = |remove: bool| -> BTreeSet<String> {
        current
            .actions
            .iter()
            .filter_map(|a| match &a.action {
                Action::RemoveNetwork { network } if remove => Some(network.clone()),
                Action::CreateNetwork { network } if !remove => Some(network.clone()),
                _ => None,
            })
            .collect()
    };
    let recreated_networks: BTreeSet<String> = network_names(true)
        .intersection(&network_names(false))
        .cloned()
        .collect();
    let mut network_recreations = Vec::new();
    let mut before_changes = Vec::new();
    let mut creates = Vec::new();
    let mut removals = Vec::new();
    let mut containers = Vec::new();
    let mut network_removals = Vec::new();
    let mut volume_removals = Vec::new();
    let mut recreating = BTreeSet::new();
    for a in current.actions {
        match &a.action {
            Action::RemoveVolume { volume } => {
                recreating.insert(volume.clone());
                volume_removals.push(a);
            }
            // Created again after its removal (a recreation): in sequence, not up front.
            Action::CreateVolume { volume } if recreating.contains(volume) => {
                volume_removals.push(a)
            }
            // `backup: on-change`: before any container changes.
            Action::BackupVolume { volume } if !removed_volumes.contains(volume) => {
                before_changes.push(a)
            }
            Action::BackupVolume { .. } | Action::RestoreVolume { .. } => volume_removals.push(a),
            Action::CreateNetwork { network } | Action::RemoveNetwork { network }
                if recreated_networks.contains(network) =>
            {
                network_recreations.push(a)
            }
            Action::CreateNetwork { .. } | Action::CreateVolume { .. } => creates.push(a),
            Action::PullImage { .. } | Action::BuildImage { .. } => {}
            Action::RemoveContainer { .. } => removals.push(a),
            Action::RemoveNetwork { .. } => network_removals.push(a),
            _ => containers.push(a),
        }
    }
    steps.push(creates);
    if !run_parallel(provider, project, &steps[0], report, outcome).await {
        return Ok(());
    }
    // One at a time, before anything touches the containers writing to them.
    for a in &before_changes {
        if let Action::BackupVolume { volume } = &a.action {
            let (result, _) = backup(provider, project, options, (a, volume), false, report).await;
            let failed = result.error.is_some();
            outcome.results.push(result);
            if failed {
                return Ok(());
            }
        }
    }
    if !run_parallel(provider, project, &removals, report, outcome).await {
        return Ok(());
    }
    // Networks recreated (removed, then created with the declared settings) once the
    // app's containers joining them are gone — anything else still attached is
    // disconnected first, as Compose does —, before those come back.
    for a in &network_recreations {
        if let Action::RemoveNetwork { network } = &a.action {
            if let Err(e) = provider.disconnect_all(network).await {
                outcome.results.push(ActionResult {
                    action: a.clone(),
                    duration: Duration::ZERO,
                    error: Some(e.to_string()),
                    detail: None,
                    output: Vec::new(),
                });
                return Ok(());
            }
        }
        if !run_parallel(provider, project, std::slice::from_ref(a), report, outcome).await {
            return Ok(());
        }
    }
    // Volumes recreated (backed up, removed, created, restored) before the containers
    // that mount them come back; volumes only removed after the containers that released
    // them were recreated or removed (Docker refuses to remove a volume in use).
    let recreated: BTreeSet<String> = volume_removals
        .iter()
        .filter_map(|a| match &a.action {
            // (A restore alone: a recreation cut short, the volume there again.)
            Action::CreateVolume { volume } | Action::RestoreVolume { volume } => {
                Some(volume.clone())
            }
            _ => None,
        })
        .collect();
    let (recreations, released): (Vec<_>, Vec<_>) =
        volume_removals.into_iter().partition(|a| match &a.action {
            Action::RemoveVolume { volume }
            | Action::CreateVolume { volume }
            | Action::BackupVolume { volume }
            | Action::RestoreVolume { volume } => recreated.contains(volume),
            _ => true,
        });
    if !volume_sequence(provider, project, options, &recreations, report, outcome).await {
        return Ok(());
    }

    // Containers, wave by wave.
    let levels = levels(project);
    let max = levels.values().copied().max().unwrap_or(0);
    for level in 0..=max {
        let wave: Vec<PlannedAction> = containers
            .iter()
            .filter(|a| a.action.service().and_then(|s| levels.get(s)) == Some(&level))
            .cloned()
            .collect();
        if wave.is_empty() {
            continue;
        }
        let mut waits = BTreeSet::new();
        for a in &wave {
            if let Some(svc) = a.action.service().and_then(|s| project.services.get(s)) {
                for (dep, d) in &svc.depends_on {
                    if d.condition != DependsOnCondition::ServiceStarted {
                        waits.insert((dep.clone(), d.condition));
                    }
                }
            }
        }
        let results = join_all(
            waits
                .iter()
                .map(|(dep, cond)| wait_for(provider, project, dep, *cond, report)),
        )
        .await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            let failed = wave[0].clone();
            outcome.results.push(ActionResult {
                action: failed,
                duration: Duration::ZERO,
                error: Some(e),
                detail: None,
                output: Vec::new(),
            });
            return Ok(());
        }
        if !run_parallel(provider, project, &wave, report, outcome).await {
            return Ok(());
        }
    }
    if !volume_sequence(provider, project, options, &released, report, outcome).await {
        return Ok(());
    }
    run_parallel(provider, project, &network_removals, report, outcome).await;
    Ok(())
}

/// Backups, removals, creations and restores of volumes, one at a time: a volume is
/// removed only after its backup succeeded, and a recreated one gets that backup back.
/// `false` when one failed (its result is in `outcome`).
async fn volume_sequence<H: Host>(
    provider: &H,
    project: &Project,
    options: &ReconcileOptions,
    actions: &[PlannedAction],
    report: Report<'_>,
    outcome: &mut Outcome,
) -> bool {
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    let app = options.backup_app.as_deref().unwrap_or(&project.name);
    for a in actions {
        let result = match &a.action {
            Action::BackupVolume { volume } => {
                // Before a removal (not a recreation, whose backup is restored): a retry
                // reuses the backup of unchanged content.
                let recreated = actions.iter().any(
                    |b| matches!(&b.action, Action::CreateVolume { volume: v } if v == volume),
                );
                let (mut result, id) =
                    backup(provider, project, options, (a, volume), !recreated, report).await;
                if let (Some(id), Some(dir)) = (id, &options.backups) {
                    // Remembered before the volume is removed: a process killed from
                    // here on leaves the next sync what it needs to finish.
                    if recreated {
                        if let Err(e) = mooring_backup::mark_recreating(dir, app, volume, &id) {
                            result.error = Some(format!("recording the recreation: {e}"));
                        }
                    }
                    taken.insert(volume.clone(), id);
                }
                result
            }
            Action::RestoreVolume { volume } => {
                report(Progress::Started(a));
                let start = Instant::now();
                // The backup just taken, over the volume just created; or, finishing a
                // recreation cut short, that backup into a volume that holds nothing
                // else (never over data written since).
                let (id, overwrite) = match (taken.get(volume), options.backups.as_deref()) {
                    (Some(id), _) => (Some(id.clone()), true),
                    (None, Some(dir)) => (
                        mooring_backup::recreating(dir, app, volume).unwrap_or_default(),
                        false,
                    ),
                    (None, None) => (None, false),
                };
                let r = match (&options.backups, id) {
                    (Some(dir), Some(id)) => {
                        let r = provider
                            .restore_volume(project, volume, &id, dir, overwrite)
                            .await;
                        match r {
                            Ok(()) => mooring_backup::done_recreating(dir, app, volume)
                                .map_err(|e| ProviderError::Failed(e.to_string())),
                            e => e,
                        }
                    }
                    _ => Err(ProviderError::Failed(format!(
                        "no backup of {volume} was taken in this operation"
                    ))),
                };
                let result = ActionResult::ended(a, start, r);
                report(Progress::Finished(&result));
                result
            }
            _ => execute(provider, project, a, report).await,
        };
        let failed = result.error.is_some();
        outcome.results.push(result);
        if failed {
            return false;
        }
    }
    true
}

/// Takes a verified backup of `volume` (the planned action's reason is recorded in its
/// manifest), then applies the retention to that volume's backups.
async fn backup<H: Host>(
    provider: &H,
    project: &Project,
    options: &ReconcileOptions,
    (a, volume): (&PlannedAction, &str),
    reuse_unchanged: bool,
    report: Report<'_>,
) -> (ActionResult, Option<String>) {
    report(Progress::Started(a));
    let start = Instant::now();
    let r = match &options.backups {
        Some(dir) => provider
            .backup_volume(
                project,
                volume,
                dir,
                BackupWhy {
                    app: options.backup_app.as_deref().unwrap_or(&project.name),
                    reason: &a.reason,
                    revision: options.revision.as_deref(),
                },
                reuse_unchanged,
            )
            .await
            .map(|id| (dir, id)),
        None => Err(ProviderError::Failed(format!(
            "no backup folder configured; volume {volume} is not touched"
        ))),
    };
    let (error, detail, id) = match r {
        Ok((dir, id)) => {
            let detail = retained(project, options, dir, (volume, volume), &id);
            (None, Some(detail), Some(id))
        }
        Err(e) => (Some(e.to_string()), None, None),
    };
    let result = ActionResult {
        action: a.clone(),
        duration: start.elapsed(),
        error,
        detail,
        output: Vec::new(),
    };
    report(Progress::Finished(&result));
    (result, id)
}

/// `backup ID`, with what the retention then removed of the volume's backups (the
/// volume's `x-mooring` retention, else the app's): `volume` as the project declares
/// it, and as its backups are filed (`VOLUME@NODE` on a Swarm).
pub(crate) fn retained(
    project: &Project,
    options: &ReconcileOptions,
    dir: &std::path::Path,
    (volume, filed): (&str, &str),
    id: &str,
) -> String {
    let retention = project
        .volumes
        .values()
        .find(|v| v.name == volume)
        .and_then(|v| v.retention)
        .unwrap_or(options.retention);
    let mut detail = format!("backup {id}");
    if !retention.is_empty() {
        let now = mooring_core::clock::now_ms();
        let pruned = mooring_backup::prune_volume(
            dir,
            options.backup_app.as_deref().unwrap_or(&project.name),
            filed,
            retention.keep.map(|k| k as usize),
            retention
                .older_than_secs
                .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
            now,
            id,
        );
        match pruned {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => detail += &format!("; retention removed {}", removed.join(", ")),
            // The backup is there and verified; a failed clean-up is only noted.
            Err(e) => detail += &format!("; retention not applied: {e}"),
        }
    }
    detail
}

/// Runs actions concurrently; false when one failed.
async fn run_parallel<H: Host>(
    provider: &H,
    project: &Project,
    actions: &[PlannedAction],
    report: Report<'_>,
    outcome: &mut Outcome,
) -> bool {
    let results = join_all(
        actions
            .iter()
            .map(|a| execute(provider, project, a, report)),
    )
    .await;
    let ok = results.iter().all(|r| r.error.is_none());
    outcome.results.extend(results);
    ok
}

/// Dependency level of each service: 0 for none, else 1 + the deepest dependency.
fn levels(project: &Project) -> BTreeMap<&str, usize> {
    let mut levels: BTreeMap<&str, usize> = BTreeMap::new();
    for svc in project.services_in_order() {
        let level = svc
            .depends_on
            .keys()
            .filter_map(|d| levels.get(d.as_str()))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        levels.insert(svc.name.as_str(), level);
    }
    levels
}

async fn execute<H: Host>(
    provider: &H,
    project: &Project,
    a: &PlannedAction,
    report: Report<'_>,
) -> ActionResult {
    report(Progress::Started(a));
    let start = Instant::now();
    let mut detail = None;
    let printed = std::sync::Mutex::new(std::collections::VecDeque::new());
    // What a pull or a build prints: live to `report`, the last lines kept.
    let output = |line: &str| {
        report(Progress::Output { action: a, line });
        let mut kept = printed.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() == OUTPUT_KEPT {
            kept.pop_front();
        }
        kept.push_back(line.to_string());
    };
    let result = match &a.action {
        Action::CreateNetwork { network } => provider.create_network(project, network).await,
        Action::RemoveNetwork { network } => provider.remove_network(network).await,
        Action::CreateVolume { volume } => provider.create_volume(project, volume).await,
        Action::BackupVolume { .. } | Action::RestoreVolume { .. } => Err(ProviderError::Failed(
            "volume backups and restores run in sequence, not here".into(),
        )),
        Action::RemoveVolume { volume } => provider.remove_volume(volume).await,
        Action::PullImage { image } => {
            // The platform a service running the image names (Compose pulls for it).
            let platform = project
                .services
                .values()
                .filter(|s| s.image == *image)
                .find_map(|s| s.settings.platform.as_deref());
            provider.pull_image(image, platform, &output).await
        }
        Action::BuildImage { service, .. } => match project.services.get(service) {
            Some(svc) => provider
                .build_image(project, svc, &output)
                .await
                .map(|d| detail = Some(d)),
            None => Err(ProviderError::Failed(format!(
                "service {service} is not in the project"
            ))),
        },
        Action::RemoveContainer { id, .. } => provider.remove_container(id, None).await,
        Action::CreateContainer {
            service, replica, ..
        } => match project.services.get(service) {
            Some(svc) => provider.create_container(project, svc, *replica).await,
            None => Err(ProviderError::Failed(format!(
                "service {service} is not in the project"
            ))),
        },
        Action::RecreateContainer {
            service,
            id,
            replica,
            ..
        } => match project.services.get(service) {
            Some(svc) => {
                let grace = svc
                    .stop_grace_period
                    .map(|d| i64::try_from(d.0 / 1_000_000_000).unwrap_or(i64::MAX));
                match provider.remove_container(id, grace).await {
                    Ok(()) => provider.create_container(project, svc, *replica).await,
                    Err(e) => Err(e),
                }
            }
            None => Err(ProviderError::Failed(format!(
                "service {service} is not in the project"
            ))),
        },
        Action::StartContainer { id, .. } => provider.start_container(id).await,
        // A stack's actions run in `stack::apply`, never on a plain Engine.
        Action::CreateService { .. }
        | Action::UpdateService { .. }
        | Action::RemoveService { .. }
        | Action::CreateSwarmFile { .. }
        | Action::RemoveSwarmFile { .. } => Err(ProviderError::Failed(format!(
            "{} is a Swarm action; this host is not a Swarm manager",
            a.action
        ))),
    };
    let result = ActionResult {
        action: a.clone(),
        duration: start.elapsed(),
        error: result.err().map(|e| e.to_string()),
        detail,
        output: printed
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into(),
    };
    report(Progress::Finished(&result));
    result
}

/// Waits until every container of `dep` is healthy or has completed successfully.
async fn wait_for<H: Host>(
    provider: &H,
    project: &Project,
    dep: &str,
    condition: DependsOnCondition,
    report: Report<'_>,
) -> Result<(), String> {
    let (word, limit) = match condition {
        DependsOnCondition::ServiceHealthy => {
            let hc = project
                .services
                .get(dep)
                .and_then(|s| s.healthcheck.as_ref());
            let Some(hc) = hc.filter(|h| h.test.first().map(String::as_str) != Some("NONE")) else {
                return Err(format!(
                    "service {dep} is a service_healthy dependency but has no healthcheck"
                ));
            };
            let secs = |d: Option<mooring_core::desired::GoDuration>, default: u64| {
                d.map(|d| d.0 / 1_000_000_000).unwrap_or(default)
            };
            let retries = hc.retries.unwrap_or(3);
            let budget = secs(hc.start_period, 0)
                + (secs(hc.interval, 30) + secs(hc.timeout, 30)) * (retries + 1)
                + 10;
            ("healthy", Duration::from_secs(budget))
        }
        DependsOnCondition::ServiceCompletedSuccessfully => {
            ("completed successfully", Duration::from_secs(600))
        }
        DependsOnCondition::ServiceStarted => return Ok(()),
    };
    report(Progress::Waiting {
        service: dep,
        condition: word,
    });
    let deadline = Instant::now() + limit;
    // Every container of the service (each replica), as Compose waits for them.
    for name in project.replica_names(dep) {
        wait_for_container(provider, &name, condition, word, (deadline, limit)).await?;
    }
    Ok(())
}

/// Waits until container `name` meets `condition` (`word` in messages), by `deadline`.
async fn wait_for_container<H: Host>(
    provider: &H,
    name: &str,
    condition: DependsOnCondition,
    word: &str,
    (deadline, limit): (Instant, Duration),
) -> Result<(), String> {
    loop {
        let c = provider.container(name).await.map_err(|e| e.to_string())?;
        let Some(c) = c else {
            return Err(format!("dependency {name} does not exist"));
        };
        match condition {
            DependsOnCondition::ServiceHealthy => match c.health.as_deref() {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => return Err(format!("dependency {name} is unhealthy")),
                _ if c.state == mooring_core::ContainerState::Exited => {
                    return Err(format!(
                        "dependency {name} exited (code {}) before becoming healthy",
                        c.exit_code.unwrap_or(-1)
                    ))
                }
                _ => {}
            },
            _ => {
                if c.state == mooring_core::ContainerState::Exited {
                    return match c.exit_code {
                        Some(0) => Ok(()),
                        code => Err(format!(
                            "dependency {name} exited with code {}",
                            code.unwrap_or(-1)
                        )),
                    };
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {}s waiting for {name} to be {word}",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
