//! The **Live** state: what the Docker host runs for one app, as observed by the
//! provider and converted to these plain types at its boundary.

use serde::Serialize;
use std::collections::BTreeMap;

/// A container's run state (Docker's `State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl ContainerState {
    /// Parses Docker's state string; unknown states read as `Dead` (needs attention).
    pub fn parse(s: &str) -> ContainerState {
        match s {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            _ => ContainerState::Dead,
        }
    }

    /// Lower-case name as Docker prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
        }
    }
}

/// One observed container carrying the app's label, from inspect data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveContainer {
    pub id: String,
    /// Name without Docker's leading `/`.
    pub name: String,
    /// `com.docker.compose.service` label.
    pub service: Option<String>,
    /// `io.mooring.spec-hash` label.
    pub spec_hash: Option<String>,
    /// `io.mooring.spec` label: the spec it was created from (see `hash::spec_record`).
    pub spec: Option<String>,
    /// `io.mooring.files-hash` label.
    pub files_hash: Option<String>,
    /// `io.mooring.files` label: the copied-in files' digests by target.
    pub files: std::collections::BTreeMap<String, String>,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    /// `State.Health.Status` (`starting`, `healthy`, `unhealthy`) when it has a health check.
    pub health: Option<String>,
    /// Image the container was created from, as asked (`Config.Image`).
    pub image_ref: String,
    /// Image id the container runs (`Image`).
    pub image_id: String,
    /// Restart policy as Compose writes it: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub restart: String,
    /// `HostConfig.Memory` in bytes (0 = unlimited).
    pub memory: i64,
    /// `HostConfig.NanoCpus` (0 = unlimited).
    pub nano_cpus: i64,
    /// `Config.Env` as `KEY=VALUE` entries (includes the image's own variables).
    pub env: Vec<String>,
    /// `RestartCount`: how often Docker restarted it.
    pub restart_count: i64,
    /// The other resource settings `docker update` can change.
    pub updatable: Updatable,
}

/// Resource settings `docker update` changes on a running container, as inspect
/// reports them (`HostConfig`; 0 where unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Updatable {
    pub cpu_shares: i64,
    pub pids_limit: i64,
    pub memory_reservation: i64,
    pub memory_swap: i64,
}

/// A published port bound by a container outside the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignPort {
    pub container: String,
    /// `None` or `0.0.0.0`/`::`: every address.
    pub host_ip: Option<String>,
    pub port: u16,
    /// `tcp`, `udp`, `sctp`.
    pub protocol: String,
}

/// An observed network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveNetwork {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
}

/// An observed volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveVolume {
    pub name: String,
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// Everything the planner needs to know about the host for one app.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Live {
    /// Containers labelled with the app (any state).
    pub containers: Vec<LiveContainer>,
    /// Networks the project uses or that carry the app's label, by Docker name.
    pub networks: BTreeMap<String, LiveNetwork>,
    /// Volumes the project uses or that carry the app's label, by Docker name.
    pub volumes: BTreeMap<String, LiveVolume>,
    /// Image reference → image id, for the images the project uses that are present.
    pub images: BTreeMap<String, String>,
    /// Image reference → the build inputs hash it was built from (label
    /// `io.mooring.build`), for the images of `build:` services that are present.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub image_builds: BTreeMap<String, String>,
}
