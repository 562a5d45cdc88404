//! The planner: `plan(Desired, Live, options) → Plan`, a list of [`Action`]s each with
//! the reason a person reads. `diff` prints a plan; `sync` executes the same plan.

use crate::desired::{DataPolicy, DependsOnCondition, Project, PullPolicy, Service};
use crate::hash::spec_hash;
use crate::live::{ContainerState, Live, LiveContainer};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Options that change what the planner proposes.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Remove containers and networks carrying the app's label that the project no longer declares.
    pub prune: bool,
    /// Images were pulled in this operation already: don't plan `pull_policy: always` pulls again.
    pub images_pulled: bool,
    /// The app's data policy for volumes the repository no longer declares.
    pub volume_policy: DataPolicy,
    /// Diverged volumes the user asked to recreate (`--recreate-volume`): backed up,
    /// removed, created with the declared definition, restored.
    pub recreate_volumes: Vec<String>,
    /// The app's `backup: on-change`: a verified backup of a volume before every deploy
    /// that changes containers writing to it (a volume's `x-mooring` overrides it).
    pub backup_on_change: bool,
}

/// One change to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    CreateNetwork {
        network: String,
    },
    RemoveNetwork {
        network: String,
    },
    CreateVolume {
        volume: String,
    },
    BackupVolume {
        volume: String,
    },
    RemoveVolume {
        volume: String,
    },
    /// Restores into the volume the backup taken earlier in the same operation.
    RestoreVolume {
        volume: String,
    },
    PullImage {
        image: String,
    },
    RemoveContainer {
        service: Option<String>,
        container: String,
        id: String,
    },
    CreateContainer {
        service: String,
        container: String,
    },
    RecreateContainer {
        service: String,
        container: String,
        id: String,
    },
    StartContainer {
        service: String,
        container: String,
        id: String,
    },
}

impl Action {
    /// The service a container action is about.
    pub fn service(&self) -> Option<&str> {
        match self {
            Action::CreateContainer { service, .. }
            | Action::RecreateContainer { service, .. }
            | Action::StartContainer { service, .. } => Some(service),
            Action::RemoveContainer { service, .. } => service.as_deref(),
            _ => None,
        }
    }

    /// Short verb, e.g. `recreate`.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::CreateNetwork { .. } | Action::CreateVolume { .. } => "create",
            Action::CreateContainer { .. } => "create",
            Action::RemoveNetwork { .. } | Action::RemoveContainer { .. } => "remove",
            Action::PullImage { .. } => "pull",
            Action::BackupVolume { .. } => "back up",
            Action::RemoveVolume { .. } => "remove",
            Action::RestoreVolume { .. } => "restore",
            Action::RecreateContainer { .. } => "recreate",
            Action::StartContainer { .. } => "start",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateNetwork { network } => write!(f, "create network {network}"),
            Action::RemoveNetwork { network } => write!(f, "remove network {network}"),
            Action::CreateVolume { volume } => write!(f, "create volume {volume}"),
            Action::BackupVolume { volume } => write!(f, "back up volume {volume}"),
            Action::RemoveVolume { volume } => write!(f, "remove volume {volume}"),
            Action::RestoreVolume { volume } => write!(f, "restore volume {volume}"),
            Action::PullImage { image } => write!(f, "pull image {image}"),
            Action::RemoveContainer { container, .. } => write!(f, "remove container {container}"),
            Action::CreateContainer { container, .. } => write!(f, "create container {container}"),
            Action::RecreateContainer { container, .. } => {
                write!(f, "recreate container {container}")
            }
            Action::StartContainer { container, .. } => write!(f, "start container {container}"),
        }
    }
}

/// An action and why it is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    #[serde(flatten)]
    pub action: Action,
    pub reason: String,
}

/// What it takes to bring the host to the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub app: String,
    /// In execution order: networks, volumes, images, removals, then containers in
    /// dependency order.
    pub actions: Vec<PlannedAction>,
    /// Containers of services the project no longer declares, kept because prune is off.
    pub orphans_kept: Vec<String>,
    /// Things a person should know that change nothing: the render's notes (unset
    /// variables), the policy's (host paths, added capabilities), volumes kept.
    pub notes: Vec<String>,
}

impl Plan {
    /// True when the host matches the desired state: nothing to do, nothing left over.
    pub fn in_sync(&self) -> bool {
        self.actions.is_empty() && self.orphans_kept.is_empty()
    }
}

/// Why a plan cannot be made; nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("external network {0} does not exist on the host; create it (docker network create {0}) or drop `external: true`")]
    ExternalNetworkMissing(String),
    #[error("external volume {0} does not exist on the host; create it (docker volume create {0}) or drop `external: true`")]
    ExternalVolumeMissing(String),
    #[error("VolumeDiverged: volume {volume} cannot be changed in place: the repository declares {declared}, the host has {live}. Nothing was changed. Resolve it explicitly: back it up (mooring backup create APP --volume {volume}), remove the volume, sync, then restore the backup — or declare the old definition again")]
    VolumeDiverged {
        volume: String,
        declared: String,
        live: String,
    },
    #[error("image {image} of service {service} is not present and its pull_policy is never; load the image on the host or change pull_policy")]
    ImageMissing { service: String, image: String },
    #[error("{kind} {name} exists on the host and belongs to {owner}, not to this app; a repository may not take over another's data or network. Nothing was changed. To share it on purpose, declare it `external: true` and allow it in the app's policy (`{kind}:{name}` in `policy.allow`)")]
    NotOwned {
        kind: &'static str,
        name: String,
        owner: String,
    },
}

/// Plans the actions that bring `live` to `desired`.
pub fn plan(desired: &Project, live: &Live, options: PlanOptions) -> Result<Plan, PlanError> {
    let mut actions = Vec::new();
    // The render's and the policy's notes first: every plan shows them.
    let mut notes = desired.notes.clone();
    let mut orphans_kept = Vec::new();
    let app = desired.name.as_str();

    // Networks.
    let mut used_networks = BTreeSet::new();
    for net in desired.networks.values() {
        used_networks.insert(net.name.as_str());
        if let Some(ln) = live.networks.get(&net.name) {
            if !net.external {
                check_owner("network", &net.name, &ln.labels, app)?;
            }
            continue;
        }
        if net.external {
            return Err(PlanError::ExternalNetworkMissing(net.name.clone()));
        }
        actions.push(PlannedAction {
            action: Action::CreateNetwork {
                network: net.name.clone(),
            },
            reason: "network does not exist".into(),
        });
    }

    // Volumes: created when missing. A declared volume whose definition changed is never
    // silently changed or deleted: the plan stops with `VolumeDiverged`. An undeclared
    // one is kept (protect), or — with prune and `backup-then-delete` — backed up, and
    // removed only after the backup verified.
    let mut used_volumes = BTreeSet::new();
    let mut volume_removals = Vec::new();
    let mut recreated: BTreeSet<&str> = BTreeSet::new();
    for vol in desired.volumes.values() {
        used_volumes.insert(vol.name.as_str());
        if let Some(lv) = live.volumes.get(&vol.name) {
            if !vol.external {
                check_owner("volume", &vol.name, &lv.labels, app)?;
            }
            let driver = vol.driver.as_deref().unwrap_or("local");
            let diverged = !vol.external && (lv.driver != driver || lv.options != vol.driver_opts);
            if diverged && options.recreate_volumes.contains(&vol.name) {
                let was = describe_volume(&lv.driver, &lv.options);
                let now = describe_volume(driver, &vol.driver_opts);
                for (action, reason) in [
                    (
                        Action::BackupVolume {
                            volume: vol.name.clone(),
                        },
                        format!("recreated ({was} → {now}): a verified backup first"),
                    ),
                    (
                        Action::RemoveVolume {
                            volume: vol.name.clone(),
                        },
                        "removed to be recreated: its definition cannot change in place"
                            .to_string(),
                    ),
                    (
                        Action::CreateVolume {
                            volume: vol.name.clone(),
                        },
                        format!("created again with {now}"),
                    ),
                    (
                        Action::RestoreVolume {
                            volume: vol.name.clone(),
                        },
                        "data restored from the backup just taken".to_string(),
                    ),
                ] {
                    volume_removals.push(PlannedAction { action, reason });
                }
                recreated.insert(vol.name.as_str());
                continue;
            }
            if diverged {
                return Err(PlanError::VolumeDiverged {
                    volume: vol.name.clone(),
                    declared: describe_volume(driver, &vol.driver_opts),
                    live: describe_volume(&lv.driver, &lv.options),
                });
            }
            continue;
        }
        if vol.external {
            return Err(PlanError::ExternalVolumeMissing(vol.name.clone()));
        }
        actions.push(PlannedAction {
            action: Action::CreateVolume {
                volume: vol.name.clone(),
            },
            reason: "volume does not exist".into(),
        });
    }
    for vol in live.volumes.values() {
        if used_volumes.contains(vol.name.as_str()) || !is_app_resource(&vol.labels, app) {
            continue;
        }
        // The volume's own policy (remembered in a label at creation) wins over the app's.
        let policy = vol
            .labels
            .get(crate::labels::DATA_POLICY)
            .and_then(|p| DataPolicy::parse(p))
            .unwrap_or(options.volume_policy);
        match (policy, options.prune) {
            (DataPolicy::BackupThenDelete, true) => {
                volume_removals.push(PlannedAction {
                    action: Action::BackupVolume { volume: vol.name.clone() },
                    reason: "no longer declared; data policy backup-then-delete: a verified backup first".into(),
                });
                volume_removals.push(PlannedAction {
                    action: Action::RemoveVolume { volume: vol.name.clone() },
                    reason: "no longer declared; removed only after its backup verified".into(),
                });
            }
            (DataPolicy::BackupThenDelete, false) => notes.push(format!(
                "volume {} is no longer declared; kept (backup-then-delete removes it only with prune)",
                vol.name
            )),
            (DataPolicy::Protect, _) => notes.push(format!(
                "volume {} is no longer declared; kept (protected: volumes are data and are never removed by sync)",
                vol.name
            )),
        }
    }

    // Images.
    let mut images: BTreeMap<&str, (&str, PullPolicy)> = BTreeMap::new();
    for svc in desired.services.values() {
        let entry = images
            .entry(svc.image.as_str())
            .or_insert((svc.name.as_str(), svc.pull_policy));
        if svc.pull_policy == PullPolicy::Always {
            entry.1 = PullPolicy::Always;
        }
    }
    for (image, (service, policy)) in &images {
        let present = live.images.contains_key(*image);
        let reason = match policy {
            PullPolicy::Always if !options.images_pulled => "pull_policy is always",
            PullPolicy::Never if !present => {
                return Err(PlanError::ImageMissing {
                    service: (*service).to_string(),
                    image: (*image).to_string(),
                })
            }
            _ if !present => "image is not present on the host",
            _ => continue,
        };
        actions.push(PlannedAction {
            action: Action::PullImage {
                image: (*image).to_string(),
            },
            reason: reason.into(),
        });
    }

    // Containers: group the live ones by service.
    let mut by_service: BTreeMap<&str, Vec<&LiveContainer>> = BTreeMap::new();
    let mut removals = Vec::new();
    for c in &live.containers {
        match c.service.as_deref() {
            Some(s) if desired.services.contains_key(s) => by_service.entry(s).or_default().push(c),
            service => {
                if options.prune {
                    removals.push(PlannedAction {
                        action: Action::RemoveContainer {
                            service: service.map(str::to_string),
                            container: c.name.clone(),
                            id: c.id.clone(),
                        },
                        reason: match service {
                            Some(s) => format!("orphan: service {s} is no longer declared (prune)"),
                            None => "orphan: carries the app's label but no service (prune)".into(),
                        },
                    });
                } else {
                    orphans_kept.push(c.name.clone());
                }
            }
        }
    }

    let completion_services: BTreeSet<&str> = desired
        .services
        .values()
        .flat_map(|s| s.depends_on.iter())
        .filter(|(_, d)| d.condition == DependsOnCondition::ServiceCompletedSuccessfully)
        .map(|(name, _)| name.as_str())
        .collect();

    let mut container_actions = Vec::new();
    for svc in desired.services_in_order() {
        let name = desired.container_name(&svc.name);
        let mut candidates = by_service.remove(svc.name.as_str()).unwrap_or_default();
        // Keep the container with the canonical name, else the first; remove the rest.
        candidates.sort_by_key(|c| (c.name != name, c.name.clone()));
        let mut candidates = candidates.into_iter();
        let current = candidates.next();
        for extra in candidates {
            removals.push(PlannedAction {
                action: Action::RemoveContainer {
                    service: Some(svc.name.clone()),
                    container: extra.name.clone(),
                    id: extra.id.clone(),
                },
                reason: format!(
                    "extra container of service {} (only {name} is managed)",
                    svc.name
                ),
            });
        }
        // A container mounting a recreated volume goes first and comes back after it.
        let current = match current {
            Some(c)
                if svc
                    .mounts
                    .iter()
                    .any(|m| recreated.contains(m.source.as_str())) =>
            {
                removals.push(PlannedAction {
                    action: Action::RemoveContainer {
                        service: Some(svc.name.clone()),
                        container: c.name.clone(),
                        id: c.id.clone(),
                    },
                    reason: "it mounts a volume that is recreated".into(),
                });
                None
            }
            other => other,
        };
        let completes = completion_services.contains(svc.name.as_str());
        if let Some(action) = plan_container(svc, &name, current, live, completes) {
            container_actions.push(action);
        }
    }

    // `backup: on-change`: an existing volume whose writers' containers change is backed
    // up before anything touches them.
    let changing = |service: &str| {
        removals.iter().chain(&container_actions).any(|a| {
            a.action.service() == Some(service)
                && !matches!(a.action, Action::StartContainer { .. })
        })
    };
    for vol in desired.volumes.values() {
        let wanted = vol.backup_on_change.unwrap_or(options.backup_on_change);
        if !wanted || recreated.contains(vol.name.as_str()) || !live.volumes.contains_key(&vol.name)
        {
            continue;
        }
        let writers: Vec<&str> = desired
            .services_in_order()
            .into_iter()
            .filter(|s| {
                s.mounts.iter().any(|m| {
                    m.kind == crate::MountKind::Volume && m.source == vol.name && !m.read_only
                })
            })
            .map(|s| s.name.as_str())
            .filter(|s| changing(s))
            .collect();
        if !writers.is_empty() {
            actions.push(PlannedAction {
                action: Action::BackupVolume {
                    volume: vol.name.clone(),
                },
                reason: format!(
                    "backup: on-change — the containers of {} change: a verified backup first (running writers are stopped for the copy)",
                    writers.join(", ")
                ),
            });
        }
    }
    actions.extend(removals);
    actions.extend(volume_removals);
    actions.extend(container_actions);
    for net in live.networks.values() {
        if !used_networks.contains(net.name.as_str()) && is_app_resource(&net.labels, app) {
            if options.prune {
                actions.push(PlannedAction {
                    action: Action::RemoveNetwork {
                        network: net.name.clone(),
                    },
                    reason: "orphan: network is no longer declared (prune)".into(),
                });
            } else {
                notes.push(format!(
                    "network {} is no longer declared; kept (use prune)",
                    net.name
                ));
            }
        }
    }
    Ok(Plan {
        app: app.to_string(),
        actions,
        orphans_kept,
        notes,
    })
}

fn describe_volume(driver: &str, opts: &BTreeMap<String, String>) -> String {
    if opts.is_empty() {
        format!("driver {driver}")
    } else {
        let o: Vec<String> = opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("driver {driver} with {}", o.join(","))
    }
}

fn is_app_resource(labels: &BTreeMap<String, String>, app: &str) -> bool {
    labels.get(crate::labels::APP).is_some_and(|a| a == app)
}

/// A volume or network on the host (`kind` `name`, with `labels`) must belong to
/// `app`: Mooring created it for the app, or Docker Compose did for the project of the
/// same name (adopted, as `docker compose up` would).
fn check_owner(
    kind: &'static str,
    name: &str,
    labels: &BTreeMap<String, String>,
    app: &str,
) -> Result<(), PlanError> {
    let owner = match (
        labels.get(crate::labels::APP),
        labels.get(crate::labels::COMPOSE_PROJECT),
    ) {
        (Some(a), _) if a == app => return Ok(()),
        (Some(a), _) => format!("app {a}"),
        (None, Some(p)) if p == app => return Ok(()),
        (None, Some(p)) => format!("Compose project {p}"),
        (None, None) => "nobody Mooring knows (it was created outside Mooring)".into(),
    };
    Err(PlanError::NotOwned {
        kind,
        name: name.to_string(),
        owner,
    })
}

/// The action (if any) for the container of one desired service.
fn plan_container(
    svc: &Service,
    name: &str,
    current: Option<&LiveContainer>,
    live: &Live,
    completes: bool,
) -> Option<PlannedAction> {
    let Some(c) = current else {
        return Some(PlannedAction {
            action: Action::CreateContainer {
                service: svc.name.clone(),
                container: name.to_string(),
            },
            reason: "container does not exist".into(),
        });
    };
    let recreate = |reason: String| PlannedAction {
        action: Action::RecreateContainer {
            service: svc.name.clone(),
            container: c.name.clone(),
            id: c.id.clone(),
        },
        reason,
    };
    let hash = spec_hash(svc);
    if c.spec_hash.as_deref() != Some(hash.as_str()) {
        return Some(recreate(spec_differences(svc, c)));
    }
    let drift = live_drift(svc, c, live);
    if !drift.is_empty() {
        return Some(recreate(drift.join("; ")));
    }
    match c.state {
        ContainerState::Running | ContainerState::Restarting => None,
        ContainerState::Exited if completes && c.exit_code == Some(0) => None,
        ContainerState::Created | ContainerState::Exited => Some(PlannedAction {
            action: Action::StartContainer {
                service: svc.name.clone(),
                container: c.name.clone(),
                id: c.id.clone(),
            },
            reason: match c.exit_code {
                Some(code) if c.state == ContainerState::Exited => {
                    format!("container is exited (code {code}); it should be running")
                }
                _ => format!("container is {}; it should be running", c.state.as_str()),
            },
        }),
        ContainerState::Paused | ContainerState::Removing | ContainerState::Dead => Some(recreate(
            format!("container is {}; it should be running", c.state.as_str()),
        )),
    }
}

/// Drift made by hand on a container whose spec hash still matches (inspect data).
fn live_drift(svc: &Service, c: &LiveContainer, live: &Live) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(id) = live.images.get(&svc.image) {
        if *id != c.image_id {
            out.push(format!(
                "image {} now points to {} but the container runs {}",
                svc.image,
                short_id(id),
                short_id(&c.image_id)
            ));
        }
    }
    if c.restart != svc.restart {
        out.push(format!(
            "restart policy is {} (changed by hand); desired {}",
            c.restart, svc.restart
        ));
    }
    let memory = svc.memory.unwrap_or(0);
    if c.memory != memory {
        out.push(format!(
            "memory limit is {} (changed by hand); desired {}",
            bytes(c.memory),
            bytes(memory)
        ));
    }
    let cpus = svc.nano_cpus.unwrap_or(0);
    if c.nano_cpus != cpus {
        out.push(format!(
            "cpu limit is {} (changed by hand); desired {}",
            cpus_str(c.nano_cpus),
            cpus_str(cpus)
        ));
    }
    out
}

/// Explains a spec hash mismatch by comparing what inspect data shows.
fn spec_differences(svc: &Service, c: &LiveContainer) -> String {
    let Some(_) = c.spec_hash.as_deref() else {
        return "container was not created by mooring (no spec hash label)".into();
    };
    let mut out = Vec::new();
    if c.image_ref != svc.image {
        out.push(format!("image {} → {}", c.image_ref, svc.image));
    }
    let live_env: BTreeMap<&str, &str> = c.env.iter().filter_map(|e| e.split_once('=')).collect();
    let changed: Vec<&str> = svc
        .environment
        .iter()
        .filter(|(k, v)| live_env.get(k.as_str()) != Some(&v.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    if !changed.is_empty() {
        out.push(format!("environment {} changed", changed.join(", ")));
    }
    if c.restart != svc.restart {
        out.push(format!("restart {} → {}", c.restart, svc.restart));
    }
    if c.memory != svc.memory.unwrap_or(0) {
        out.push(format!(
            "memory {} → {}",
            bytes(c.memory),
            bytes(svc.memory.unwrap_or(0))
        ));
    }
    if c.nano_cpus != svc.nano_cpus.unwrap_or(0) {
        out.push(format!(
            "cpus {} → {}",
            cpus_str(c.nano_cpus),
            cpus_str(svc.nano_cpus.unwrap_or(0))
        ));
    }
    if c.files_hash != svc.files_hash {
        out.push("content of mounted repository files changed".into());
    }
    if out.is_empty() {
        out.push(
            "container spec changed (command, ports, mounts, networks, labels or other settings)"
                .into(),
        );
    }
    out.join("; ")
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

fn bytes(n: i64) -> String {
    match n {
        0 => "unlimited".into(),
        n if n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n => format!("{n}B"),
    }
}

fn cpus_str(nano: i64) -> String {
    if nano == 0 {
        "unlimited".into()
    } else {
        format!("{}", nano as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::support as tests_support;
