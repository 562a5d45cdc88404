//! The **Desired** state: a rendered Compose project, fully resolved (interpolated,
//! merged, paths made absolute, names resolved to the names Docker will see).
//!
//! These types are what the planner compares with the **Live** state and what the spec
//! hash covers. They serialize in Compose's own field names so `mooring render` can
//! print them like `docker compose config`.

use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// A rendered Compose project: one **App**.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    /// The project (app) name, normalised as Compose does.
    pub name: String,
    /// Host folder the project's relative bind paths resolve against.
    #[serde(skip)]
    pub working_dir: String,
    /// The Compose files the project was rendered from (relative to the project folder).
    #[serde(skip)]
    pub config_files: Vec<String>,
    pub services: BTreeMap<String, Service>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, crate::files::ProjectFile>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, crate::files::ProjectFile>,
    #[serde(
        skip_serializing_if = "no_named_volumes",
        serialize_with = "named_volumes"
    )]
    pub volumes: BTreeMap<String, Volume>,
    /// Things a person should know about the render (unset variables, host paths).
    #[serde(skip)]
    pub notes: Vec<String>,
    /// Where the entries the policy looks at were written (`file:line:col`), by key:
    /// `services.web`, `services.web.volumes.<target>`, `services.web.cap_add.<CAP>`,
    /// `volumes.<key>`, `networks.<key>`.
    #[serde(skip)]
    pub positions: BTreeMap<String, String>,
    /// Values the render decrypted from the repository (SOPS): masked wherever people
    /// see values, never serialized.
    #[serde(skip)]
    pub secret_values: crate::mask::SecretValues,
    /// The top-level `x-*` extensions, interpolated, as Compose prints them.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, serde_json::Value>,
}

fn no_named_volumes(volumes: &BTreeMap<String, Volume>) -> bool {
    volumes.values().all(|v| v.anonymous)
}

/// The top-level volumes as Compose prints them: without anonymous ones.
fn named_volumes<S: serde::Serializer>(
    volumes: &BTreeMap<String, Volume>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(volumes.iter().filter(|(_, v)| !v.anonymous))
}

/// What a service's file wrote that Compose prints as written while Mooring keeps it
/// in the form the Engine gets (a default filled in, limits merged, a deploy section
/// turned into settings): `mooring render` prints these so that it reads like
/// `docker compose config`. Out of the spec hash (the settings they became are in it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AsWritten {
    /// Whether `image` was written (a `build:` service may leave it to Compose's
    /// `<project>-<service>`).
    pub image: bool,
    /// `restart`, when written.
    pub restart: Option<String>,
    /// `pull_policy`, when written.
    pub pull_policy: Option<String>,
    /// `mem_limit` in bytes, when written.
    pub mem_limit: Option<i64>,
    /// `cpus`, when written.
    pub cpus: Option<f64>,
    /// `deploy` as Compose prints it, when written.
    pub deploy: Option<serde_json::Value>,
    /// Variables named without a value that the environment does not set (Compose
    /// prints them as `null`; the container does not get them).
    pub unset_environment: Vec<String>,
    /// The long-syntax `type: tmpfs` entries of `volumes` (Mooring keeps them with
    /// `tmpfs`): where each stood among the mounts, as Compose prints it, and the
    /// `tmpfs` entry it became.
    pub volume_tmpfs: Vec<(usize, serde_json::Value, String)>,
    /// `healthcheck.disable: true` (Mooring keeps it as the test `NONE`).
    pub healthcheck_disabled: bool,
    /// The service's own keys among those `deploy` may also set (`mem_reservation`,
    /// `pids_limit`).
    pub own_keys: Vec<String>,
}

/// How many containers run a service; one unless the file says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas(pub u32);

impl Default for Replicas {
    fn default() -> Self {
        Replicas(1)
    }
}

/// The anonymous volume `base` (replica 1's) of a service's container `replica`: each
/// container has its own, as in Compose.
pub fn replica_volume(base: &str, replica: u32) -> String {
    match replica {
        0 | 1 => base.to_string(),
        n => format!("{base}_{n}"),
    }
}

impl Project {
    /// The Docker name of the (first) container of `service`: its `container_name`,
    /// else Compose's `<project>-<service>-1`.
    pub fn container_name(&self, service: &str) -> String {
        self.replica_name(service, 1)
    }

    /// The Docker name of container `replica` (from 1) of `service`: its
    /// `container_name` (a service that has one runs one container), else Compose's
    /// `<project>-<service>-<replica>`.
    pub fn replica_name(&self, service: &str, replica: u32) -> String {
        match self
            .services
            .get(service)
            .and_then(|s| s.container_name.as_deref())
        {
            Some(name) => name.to_string(),
            None => format!("{}-{}-{replica}", self.name, service),
        }
    }

    /// The mounts of container `replica` of `svc`: its own anonymous volumes (see
    /// [`replica_volume`]), the rest shared.
    pub fn replica_mounts(&self, svc: &Service, replica: u32) -> Vec<Mount> {
        let mut mounts = svc.mounts.clone();
        if replica > 1 {
            for m in &mut mounts {
                if self.volumes.get(&m.source).is_some_and(|v| v.anonymous) {
                    m.source = replica_volume(&m.source, replica);
                }
            }
        }
        mounts
    }

    /// Every container the project runs, by service name then replica: its service
    /// and its name.
    pub fn containers(&self) -> impl Iterator<Item = (&Service, String)> {
        self.services.values().flat_map(|svc| {
            self.replica_names(&svc.name)
                .into_iter()
                .map(move |name| (svc, name))
        })
    }

    /// The names of every container `service` runs, replica 1 first.
    pub fn replica_names(&self, service: &str) -> Vec<String> {
        let replicas = self.services.get(service).map_or(1, |s| s.replicas.0);
        (1..=replicas)
            .map(|r| self.replica_name(service, r))
            .collect()
    }

    /// Moves repository paths (bind sources from the repository, the working dir) from
    /// where they were rendered (`from`, the snapshot) to where they live on the host
    /// (`to`, the app's deploy tree). Hashes are unaffected: they cover content.
    pub fn rebase_repository_paths(&mut self, from: &std::path::Path, to: &std::path::Path) {
        let rebase = |p: &str| -> Option<String> {
            let rel = std::path::Path::new(p).strip_prefix(from).ok()?;
            Some(
                if rel.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rel)
                }
                .to_string_lossy()
                .to_string(),
            )
        };
        for svc in self.services.values_mut() {
            for m in svc.mounts.iter_mut().filter(|m| m.from_repository) {
                if let Some(p) = rebase(&m.source) {
                    m.source = p;
                }
            }
            if let Some(b) = svc.build.as_mut() {
                if let Some(p) = rebase(&b.context) {
                    b.context = p;
                }
            }
        }
        if let Some(p) = rebase(&self.working_dir) {
            self.working_dir = p;
        }
    }

    /// Services in dependency order (dependencies first, then by name). The loader
    /// guarantees the graph is acyclic; should a cycle slip through, its members come last.
    pub fn services_in_order(&self) -> Vec<&Service> {
        let mut done: Vec<&str> = Vec::with_capacity(self.services.len());
        let mut out = Vec::with_capacity(self.services.len());
        while out.len() < self.services.len() {
            let before = out.len();
            for (name, svc) in &self.services {
                if done.contains(&name.as_str()) {
                    continue;
                }
                let ready = svc
                    .depends_on
                    .keys()
                    .all(|d| done.contains(&d.as_str()) || !self.services.contains_key(d));
                if ready {
                    done.push(name);
                    out.push(svc);
                }
            }
            if out.len() == before {
                for (name, svc) in &self.services {
                    if !done.contains(&name.as_str()) {
                        done.push(name);
                        out.push(svc);
                    }
                }
            }
        }
        out
    }
}

/// One service of the project: the desired spec of its container.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Service {
    #[serde(skip)]
    pub name: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(rename = "volumes", skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    pub networks: BTreeMap<String, ServiceNetwork>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub restart: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, DependsOn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    pub pull_policy: PullPolicy,
    /// `deploy.resources.limits.cpus`, in units of 1e-9 CPUs (Docker's `NanoCpus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    /// `deploy.resources.limits.memory`, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// sha256 over the content of the repository files this service bind-mounts
    /// (paths relative to the project folder); `None` when it mounts none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_hash: Option<String>,
    /// `profiles`: the service runs only when one of them is active (the loader leaves
    /// out the others); no effect on the container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// `secrets` as written (each is a mount or an inline file below).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<crate::files::FileRef>,
    /// `configs` as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<crate::files::FileRef>,
    /// Secrets and configs from `environment:` or `content:`: copied into the
    /// container before it starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inline_files: Vec<crate::files::InlineFile>,
    /// On a Swarm, its secrets and configs as Swarm objects (then none is a mount or
    /// an inline file).
    #[serde(skip)]
    pub swarm_files: Vec<crate::files::SwarmFile>,
    /// `post_start`: commands run in the container each time it starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<Hook>,
    /// `pre_stop`: commands run in the container before it is stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<Hook>,
    /// `links` (`SERVICE[:ALIAS]`): legacy links to the project's services, which
    /// Compose starts first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `external_links` (`CONTAINER[:ALIAS]`): legacy links to other containers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// `container_name`: the container's name instead of `<project>-<service>-1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// What the file wrote that `docker compose config` prints but the container gets
    /// in another form (or not at all): for `render` only.
    #[serde(skip)]
    pub written: AsWritten,
    /// The seccomp profile a `security_opt: seccomp=FILE` names, compacted JSON: the
    /// Engine receives it in place of the path, as the Docker CLI sends it. Its content
    /// enters the spec hash through `files_hash`.
    #[serde(skip)]
    pub seccomp_profile: Option<String>,
    /// `scale` as written (Compose prints it); out of the spec hash: scaling adds or
    /// removes containers and leaves the others alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// How many containers run the service: `scale`, else `deploy.replicas`, else 1
    /// (0 runs none).
    #[serde(skip)]
    pub replicas: Replicas,
    /// The settings Compose passes to the Engine as written.
    #[serde(flatten)]
    pub settings: crate::settings::Settings,
    /// Privileges, namespaces and devices: what the policy decides on.
    #[serde(flatten)]
    pub host: crate::host_access::HostAccess,
    /// `build`: the image is built from a folder of the repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
}

impl Service {
    /// The project secrets it uses: its own and its build's.
    pub fn secret_refs(&self) -> impl Iterator<Item = &crate::files::FileRef> {
        let build = self.build.iter().flat_map(|b| &b.secrets);
        self.secrets.iter().chain(build.map(|s| &s.reference))
    }
}

/// `build`: an image the Docker Engine builds from a folder of the repository (the
/// context), tagged as the service's `image`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Build {
    /// The context folder (absolute, inside the snapshot or the deploy tree).
    pub context: String,
    /// The Dockerfile, relative to the context (Compose's default: `Dockerfile`).
    pub dockerfile: String,
    /// `dockerfile_inline`: the Dockerfile's text instead of a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The network the build's `RUN` steps use (`host` is for the policy to allow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Bytes of `/dev/shm` for the build's containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
    /// Pull newer versions of the `FROM` images.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
    /// `secrets`: project secrets the build's `RUN --mount=type=secret` steps read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<crate::files::BuildSecret>,
    /// `tags`: more names the built image gets besides the service's `image`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `ulimits` of the build's `RUN` steps.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, crate::settings::Ulimit>,
    /// `platforms`, as written: the Engine's builder makes one image, so at most one
    /// (the service's `platform`, when it names one, must be among them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// sha256 over everything that decides the image: the context's files after
    /// `.dockerignore`, the Dockerfile, args, target, labels, network, … . The image
    /// carries it (label `io.mooring.build`): equal inputs, no new build.
    pub inputs: String,
}

/// A lifecycle hook: a command run inside the container (`post_start`, `pre_stop`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Hook {
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
}

/// A published port (one container port; ranges are expanded by the loader).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
pub struct Port {
    pub target: u16,
    /// Host port or host port range (`"8080"`, `"8000-8010"`); `None` lets Docker choose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub protocol: String,
    /// Long syntax `name` and `app_protocol`: descriptive, kept for the render (the
    /// Engine has no use for them, nor does Compose send them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// What a mount's source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A named volume; `source` is its Docker name.
    Volume,
    /// A host path; `source` is absolute.
    Bind,
}

/// A volume or bind mount of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountKind,
    pub source: String,
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// A bind's SELinux relabelling and mount propagation, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// A volume's options, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// For binds: the path is inside the repository snapshot (its content is hashed).
    #[serde(skip)]
    pub from_repository: bool,
}

impl Mount {
    /// The Engine's bind syntax: `SOURCE:TARGET[:OPTIONS]` (`ro`, `z`/`Z`, propagation,
    /// `nocopy`).
    pub fn bind_spec(&self) -> String {
        let mut opts: Vec<&str> = Vec::new();
        if self.read_only {
            opts.push("ro");
        }
        if let Some(b) = &self.bind {
            opts.extend(b.selinux.as_deref());
            opts.extend(b.propagation.as_deref());
        }
        if self.volume.as_ref().is_some_and(|v| v.nocopy) {
            opts.push("nocopy");
        }
        if opts.is_empty() {
            format!("{}:{}", self.source, self.target)
        } else {
            format!("{}:{}:{}", self.source, self.target, opts.join(","))
        }
    }
}

/// `bind:` options of a mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BindOptions {
    /// `rprivate`, `private`, `rshared`, `shared`, `rslave`, `slave`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// `z` (shared label) or `Z` (private label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

/// `volume:` options of a mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VolumeOptions {
    /// Do not copy the image's content at the target into a new volume.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
}

/// A service's attachment to a project network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ServiceNetwork {
    /// Docker name of the network.
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Networks are joined highest priority first (the first at creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Written as a mapping (`back: {}`), which Compose prints as one, rather than as a
    /// bare name: for `render` only.
    #[serde(skip)]
    pub written_as_mapping: bool,
}

/// Container health check (Compose `healthcheck`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// Docker form: `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<GoDuration>,
    /// Checks during the start period (Engine API 1.44 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<GoDuration>,
}

/// What a dependent waits for before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependsOnCondition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

impl DependsOnCondition {
    /// Compose's spelling: `service_started`, `service_healthy`,
    /// `service_completed_successfully`.
    pub fn as_str(self) -> &'static str {
        match self {
            DependsOnCondition::ServiceStarted => "service_started",
            DependsOnCondition::ServiceHealthy => "service_healthy",
            DependsOnCondition::ServiceCompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// One `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependsOn {
    pub condition: DependsOnCondition,
    pub required: bool,
    pub restart: bool,
}

/// When to pull a service's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Pull only when the image is not present (Compose's default).
    #[default]
    Missing,
    /// Pull on every sync.
    Always,
    /// Never pull; a missing image is an error.
    Never,
    /// `build`: the image is built from the repository (a `build:` service; rebuilt
    /// when its inputs change).
    Build,
}

/// A top-level network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Network {
    /// Docker name (`<project>_<key>` unless `name:` is set).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// No route outside the network.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// Containers outside the project may join it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Network {
    /// sha256 of the settings the network is created with (kept in a label: a
    /// network is not changed in place, so a difference recreates it).
    pub fn settings_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        crate::hash::sha256_hex(&json)
    }

    /// The settings the network is created with (kept in a label, so a plan can say
    /// which changed).
    pub fn settings(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A network's IP address management (`ipam`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Ipam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// One address pool of a network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct IpamPool {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, String>,
}

/// A top-level named volume: persistent data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Volume {
    /// Docker name (`<project>_<key>` unless `name:` is set).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `x-mooring: { data: … }` on the volume; `None` takes the app's policy.
    #[serde(rename = "x-mooring-data", skip_serializing_if = "Option::is_none")]
    pub policy: Option<DataPolicy>,
    /// `x-mooring: { backup: on-change | never }`; `None` takes the app's setting.
    #[serde(
        rename = "x-mooring-backup-on-change",
        skip_serializing_if = "Option::is_none"
    )]
    pub backup_on_change: Option<bool>,
    /// `x-mooring: { retention: … }`; `None` takes the app's.
    #[serde(
        rename = "x-mooring-retention",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention: Option<Retention>,
    /// An anonymous volume of a service (`- /data`): named by Mooring after the app,
    /// service and target so its data outlives a recreate, and not printed among the
    /// top-level volumes (Compose does not list them there).
    #[serde(skip)]
    pub anonymous: bool,
}

/// Which of a volume's backups to keep, applied after each new backup Mooring takes on
/// its own (per app and volume; the newest backup is always kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Retention {
    /// Keep at most this many (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
    /// Remove those older than this many seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub older_than_secs: Option<u64>,
}

impl Retention {
    /// True when it removes nothing.
    pub fn is_empty(&self) -> bool {
        self.keep.is_none() && self.older_than_secs.is_none()
    }
}

/// Parses an age such as `30d`, `12h`, `90m`, `45s` into seconds (a whole number and one
/// unit: the syntax of `retention.older_than` and `backup prune --older-than`).
pub fn parse_age(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let factor = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Parses `backup: on-change | never` into whether to back up before changes.
pub fn parse_backup_schedule(s: &str) -> Option<bool> {
    match s {
        "on-change" => Some(true),
        "never" => Some(false),
        _ => None,
    }
}

/// What may happen to a volume's data when the repository stops declaring it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DataPolicy {
    /// Never deleted (the default): the plan keeps it and says so.
    #[default]
    Protect,
    /// Deleted only with prune, and only after a verified backup.
    BackupThenDelete,
}

impl DataPolicy {
    /// `protect` or `backup-then-delete`, as configured and served.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPolicy::Protect => "protect",
            DataPolicy::BackupThenDelete => "backup-then-delete",
        }
    }

    /// Parses `protect` / `backup-then-delete`.
    pub fn parse(s: &str) -> Option<DataPolicy> {
        match s {
            "protect" => Some(DataPolicy::Protect),
            "backup-then-delete" => Some(DataPolicy::BackupThenDelete),
            _ => None,
        }
    }
}

/// How a volume is backed up while its service keeps running — an app-consistent backup
/// (`data.consistent` in Mooring's configuration): commands run in a running container
/// of `service`, as `docker exec` runs them (no shell unless the command names one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistentBackup {
    /// The Compose service whose running container runs the commands.
    pub service: String,
    /// What runs there.
    pub way: Consistency,
}

/// The two ways of [`ConsistentBackup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consistency {
    /// `dump`'s output is the backup (e.g. `pg_dump`, `mysqldump`, `sqlite3 … .dump`);
    /// a restore gives it to `load` on its input.
    Dump {
        dump: Vec<String>,
        load: Vec<String>,
    },
    /// The volume's files are copied between `before` (e.g. a checkpoint, a freeze) and
    /// `after` (`after` runs even when the copy failed), its writers kept running.
    Hooks {
        before: Vec<String>,
        after: Vec<String>,
    },
}

/// A duration in nanoseconds that prints the way Go (and so Compose) prints it: `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub u64);

impl GoDuration {
    /// Nanoseconds as Docker's API wants them.
    pub fn as_nanos_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NS: [(u64, &str); 3] = [(1_000_000, "ms"), (1_000, "µs"), (1, "ns")];
        let n = self.0;
        if n == 0 {
            return f.write_str("0s");
        }
        if n < 1_000_000_000 {
            for (unit, suffix) in NS {
                if n.is_multiple_of(unit) || unit == 1 {
                    return write!(f, "{}{suffix}", n / unit);
                }
            }
        }
        let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
        let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if h > 0 || m > 0 {
            write!(f, "{m}m")?;
        }
        let (s, frac) = (rest / 1_000_000_000, rest % 1_000_000_000);
        if frac == 0 {
            write!(f, "{s}s")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{s}.{}s", digits.trim_end_matches('0'))
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_prints_like_go() {
        let s = |n: u64| GoDuration(n).to_string();
        assert_eq!(s(0), "0s");
        assert_eq!(s(500_000_000), "500ms");
        assert_eq!(s(1_500_000_000), "1.5s");
        assert_eq!(s(90_000_000_000), "1m30s");
        assert_eq!(s(3_600_000_000_000), "1h0m0s");
        assert_eq!(s(10_000_000_000), "10s");
    }
}
