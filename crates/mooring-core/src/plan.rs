//! The planner: `plan(Desired, Live, options) → Plan`, a list of [`Action`]s each with
//! the reason a person reads. `diff` prints a plan; `sync` executes the same plan.
//!
//! One room per kind of resource — `networks`, `volumes` (the data), `images`,
//! `containers` — each a function of values; [`plan`] puts their actions in the order
//! they run.

use crate::desired::{DataPolicy, Project};
use crate::live::Live;
use serde::Serialize;
use std::collections::BTreeMap;
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
    /// Recreations cut short (the process killed between the volume's removal and the
    /// end of its restore): volume → the backup taken first. A volume missing is
    /// created again, and that backup restored into it, before its writers start.
    pub recreations: BTreeMap<String, String>,
    /// The app's `backup: on-change`: a verified backup of a volume before every deploy
    /// that changes containers writing to it (a volume's `x-mooring` overrides it).
    pub backup_on_change: bool,
    /// Volumes (Docker names) backed up before every deploy that changes their
    /// writers, whatever their policy: those an automatic rollback restores.
    pub always_back_up: Vec<String>,
    /// How values in the reasons are masked (secrets, marked variables): with one,
    /// a changed environment variable shows `old → new` masked where it must be;
    /// without, only its name.
    pub mask: Option<crate::mask::EnvMask>,
}

/// One change to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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
    /// Builds the image of a `build:` service from its context.
    BuildImage {
        service: String,
        image: String,
    },
    RemoveContainer {
        service: Option<String>,
        container: String,
        id: String,
    },
    /// Creates container `replica` (from 1) of `service`, named `container`.
    CreateContainer {
        service: String,
        container: String,
        replica: u32,
    },
    /// Removes container `id` and creates container `replica` of `service` as `container`.
    RecreateContainer {
        service: String,
        container: String,
        id: String,
        replica: u32,
    },
    StartContainer {
        service: String,
        container: String,
        id: String,
    },
    /// Creates Swarm service `name` (`<stack>_<service>`) of a stack.
    CreateService {
        service: String,
        name: String,
    },
    /// Updates Swarm service `name` to the desired spec (a rolling update as its
    /// `update_config` says).
    UpdateService {
        service: String,
        name: String,
        id: String,
    },
    /// Removes Swarm service `name`, which the stack no longer declares.
    RemoveService {
        name: String,
        id: String,
    },
    /// Creates the Swarm secret or config `name` of a stack (its content is new).
    CreateSwarmFile {
        file: crate::files::FileKind,
        name: String,
    },
    /// Removes the Swarm secret or config `name`, which no service of the stack uses
    /// any more (once the services' updates rolled out).
    RemoveSwarmFile {
        file: crate::files::FileKind,
        name: String,
        id: String,
    },
}

impl Action {
    /// The service a container action is about.
    pub fn service(&self) -> Option<&str> {
        match self {
            Action::CreateContainer { service, .. }
            | Action::RecreateContainer { service, .. }
            | Action::StartContainer { service, .. }
            | Action::CreateService { service, .. }
            | Action::UpdateService { service, .. } => Some(service),
            Action::RemoveContainer { service, .. } => service.as_deref(),
            _ => None,
        }
    }

    /// The resource it changes as the desired-and-live view names it
    /// (`container NAME`, `network NAME`, `volume NAME`); `None` for images.
    pub fn resource(&self) -> Option<String> {
        match self {
            Action::CreateNetwork { network } | Action::RemoveNetwork { network } => {
                Some(format!("network {network}"))
            }
            Action::CreateVolume { volume }
            | Action::BackupVolume { volume }
            | Action::RemoveVolume { volume }
            | Action::RestoreVolume { volume } => Some(format!("volume {volume}")),
            Action::RemoveContainer { container, .. }
            | Action::CreateContainer { container, .. }
            | Action::RecreateContainer { container, .. }
            | Action::StartContainer { container, .. } => Some(format!("container {container}")),
            Action::CreateService { name, .. }
            | Action::UpdateService { name, .. }
            | Action::RemoveService { name, .. } => Some(format!("service {name}")),
            Action::CreateSwarmFile { file, name } | Action::RemoveSwarmFile { file, name, .. } => {
                Some(format!("{file} {name}"))
            }
            Action::PullImage { .. } | Action::BuildImage { .. } => None,
        }
    }

    /// Short verb, e.g. `recreate`.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::CreateNetwork { .. } | Action::CreateVolume { .. } => "create",
            Action::CreateContainer { .. } => "create",
            Action::RemoveNetwork { .. } | Action::RemoveContainer { .. } => "remove",
            Action::PullImage { .. } => "pull",
            Action::BuildImage { .. } => "build",
            Action::BackupVolume { .. } => "back up",
            Action::RemoveVolume { .. } => "remove",
            Action::RestoreVolume { .. } => "restore",
            Action::RecreateContainer { .. } => "recreate",
            Action::StartContainer { .. } => "start",
            Action::CreateService { .. } => "create",
            Action::UpdateService { .. } => "update",
            Action::RemoveService { .. } => "remove",
            Action::CreateSwarmFile { .. } => "create",
            Action::RemoveSwarmFile { .. } => "remove",
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
            Action::BuildImage { service, image } => {
                write!(f, "build image {image} (service {service})")
            }
            Action::RemoveContainer { container, .. } => write!(f, "remove container {container}"),
            Action::CreateContainer { container, .. } => write!(f, "create container {container}"),
            Action::RecreateContainer { container, .. } => {
                write!(f, "recreate container {container}")
            }
            Action::StartContainer { container, .. } => write!(f, "start container {container}"),
            Action::CreateService { name, .. } => write!(f, "create service {name}"),
            Action::UpdateService { name, .. } => write!(f, "update service {name}"),
            Action::RemoveService { name, .. } => write!(f, "remove service {name}"),
            Action::CreateSwarmFile { file, name } => write!(f, "create {file} {name}"),
            Action::RemoveSwarmFile { file, name, .. } => write!(f, "remove {file} {name}"),
        }
    }
}

/// An action and why it is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlannedAction {
    #[serde(flatten)]
    pub action: Action,
    pub reason: String,
}

/// What it takes to bring the host to the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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
    /// A short fingerprint of what the plan does and why (its actions and reasons, the
    /// containers' ids included): a person confirms the plan they saw by it, and a
    /// sync whose plan has a different one since runs nothing.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let actions = serde_json::to_vec(&self.actions).unwrap_or_default();
        let hash = Sha256::digest(&actions);
        hash[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

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
    #[error("service {service} runs {replicas} containers but publishes host port {port}, which only one of them can hold; nothing was changed. Publish a range with a port for each (e.g. {first}-{last}), leave the host port out, or run one container")]
    PortPerReplica {
        service: String,
        replicas: u32,
        port: String,
        first: u16,
        last: u32,
    },
    #[error("service {service} publishes port {port}, which container {container} (not of this app) already holds; nothing was changed, the running container keeps running. Stop or move {container}, or change the published port")]
    PortTaken {
        service: String,
        port: String,
        container: String,
    },
}

/// Plans the actions that bring `live` to `desired`.
pub fn plan(desired: &Project, live: &Live, options: PlanOptions) -> Result<Plan, PlanError> {
    let app = desired.name.as_str();
    // The render's and the policy's notes first: every plan shows them.
    let mut notes = desired.notes.clone();
    ports::enough_for_replicas(desired)?;
    let networks = networks::declared(desired, live, options.mask.as_ref())?;
    let volumes = volumes::declared(desired, live, &options, &mut notes)?;
    let pulls = images::pulls(desired, live, &options)?;
    let containers = containers::planned(
        desired,
        live,
        &options,
        (&volumes.recreated, &networks.recreated),
    );
    let changing = |service: &str| {
        containers
            .removals
            .iter()
            .chain(&containers.actions)
            .any(|a| {
                a.action.service() == Some(service)
                    && !matches!(a.action, Action::StartContainer { .. })
            })
    };
    let backups = volumes::backups_on_change(desired, live, &options, &volumes.recreated, changing);
    // Order: networks, volumes, images, backups, removals, networks recreated, volume
    // removals, containers, orphan networks.
    let mut actions = networks.creates;
    actions.extend(volumes.creates);
    actions.extend(pulls);
    actions.extend(backups);
    actions.extend(containers.removals);
    actions.extend(networks.recreations);
    actions.extend(volumes.removals);
    actions.extend(containers.actions);
    actions.extend(networks::orphans(
        live,
        &networks.used,
        app,
        options.prune,
        &mut notes,
    ));
    Ok(Plan {
        app: app.to_string(),
        actions,
        orphans_kept: containers.orphans_kept,
        notes,
    })
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

mod containers;
mod fields;
pub(crate) use fields::changed_fields;
mod images;
mod ports;
pub use ports::port_conflicts;
mod networks;
mod volumes;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::support as tests_support;
