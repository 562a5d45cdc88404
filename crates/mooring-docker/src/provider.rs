//! The connection to one Docker host and the primitive operations Mooring needs:
//! observe an app's live state, and execute single actions.

use crate::convert::{container_config, live_container, network_attachments, resource_labels};
use crate::endpoint::Endpoint;
use bollard::container::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StartContainerOptions,
    StopContainerOptions,
};
use bollard::errors::Error as BollardError;
use bollard::network::{ConnectNetworkOptions, CreateNetworkOptions, ListNetworksOptions};
use bollard::volume::{CreateVolumeOptions, ListVolumesOptions};
use bollard::Docker;
use futures_util::future::join_all;
use futures_util::StreamExt;
use mooring_core::labels::{APP, COMPOSE_NETWORK, COMPOSE_VOLUME};
use mooring_core::{Live, LiveContainer, LiveNetwork, LiveVolume, Project, Service};
use std::collections::{BTreeMap, HashMap};

/// What went wrong talking to Docker.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot connect to Docker at {endpoint}: {source}; is the Docker daemon running and is the socket readable?")]
    Connect {
        endpoint: String,
        source: DockerError,
    },
    #[error("{0}")]
    Endpoint(String),
    #[error("cannot reach the Docker Engine at {endpoint}: {why}")]
    Unreachable { endpoint: String, why: String },
    #[error("{what}: {source}")]
    Api { what: String, source: DockerError },
    #[error("{0}")]
    Failed(String),
    /// The request would overwrite data (a restore into a volume holding some): refused
    /// before anything changed.
    #[error("{0}")]
    Refused(String),
}

/// An error of the Docker Engine API as Docker said it. The client library's own type
/// stays inside this crate (its types never leave `mooring-docker`).
#[derive(Debug)]
pub struct DockerError {
    inner: BollardError,
}

impl DockerError {
    /// The HTTP status Docker answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match &self.inner {
            BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
            _ => None,
        }
    }
}

impl std::fmt::Display for DockerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => write!(f, "Docker answered {status_code}: {message}"),
            other => other.fmt(f),
        }
    }
}

impl std::error::Error for DockerError {}

fn api(what: impl Into<String>) -> impl FnOnce(BollardError) -> ProviderError {
    let what = what.into();
    move |source| ProviderError::Api {
        what,
        source: DockerError { inner: source },
    }
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A Docker host.
#[derive(Debug, Clone)]
pub struct Provider {
    docker: Docker,
    /// The same Engine, for what bollard does not speak (`engine_http`).
    engine: crate::engine_http::Engine,
    endpoint: Endpoint,
    /// The private socket leading to a remote Engine, open as long as the provider.
    _bridge: Option<std::sync::Arc<crate::transport::Bridge>>,
    /// Credentials for the registries images are pulled from.
    registries: std::sync::Arc<crate::Registries>,
}

impl Provider {
    /// Connects to `endpoint`, or to `DOCKER_HOST` (a `tcp://` one with TLS from
    /// `DOCKER_CERT_PATH`, as the Docker CLI reads them), or to the local default
    /// socket, and checks that the Engine answers.
    pub async fn connect(endpoint: Option<&str>) -> Result<Provider, ProviderError> {
        let text = endpoint
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let endpoint = Endpoint::parse(&text).map_err(ProviderError::Endpoint)?;
        let endpoint = match &endpoint {
            Endpoint::Tcp { .. } => {
                match crate::endpoint::tls_from_env().map_err(ProviderError::Endpoint)? {
                    Some(tls) => endpoint.with_tls(tls),
                    None => endpoint,
                }
            }
            Endpoint::Ssh { .. } => endpoint.with_ssh(crate::endpoint::ssh_from_env()),
            Endpoint::Unix(_) => endpoint,
        };
        Provider::connect_to(endpoint).await
    }

    /// Connects to `endpoint` and checks that the Engine answers. A remote one is
    /// reached through a private socket (`transport`), so every request takes the same
    /// path.
    pub async fn connect_to(endpoint: Endpoint) -> Result<Provider, ProviderError> {
        let provider = Provider::open(endpoint)?;
        provider.ping().await?;
        Ok(provider)
    }

    /// A provider for `endpoint` that has not asked the Engine anything yet (the
    /// daemon opens every host so, and watches whether each answers): only a bad
    /// endpoint fails here. Requests made while the Engine is away fail, and work
    /// again once it is back.
    pub fn open(endpoint: Endpoint) -> Result<Provider, ProviderError> {
        endpoint.check().map_err(ProviderError::Endpoint)?;
        let bridge = match &endpoint {
            Endpoint::Unix(path) if path.exists() => None,
            // Remote, or a local socket not there yet (bollard refuses a missing one).
            _ => Some(crate::transport::bridge(&endpoint).map_err(ProviderError::Endpoint)?),
        };
        let socket = match (&endpoint, &bridge) {
            (_, Some(b)) => b.socket.clone(),
            (Endpoint::Unix(path), None) => path.clone(),
            _ => unreachable!("a remote endpoint has a bridge"),
        };
        let path = socket.to_string_lossy().into_owned();
        let docker = Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION).map_err(
            |source| ProviderError::Connect {
                endpoint: endpoint.to_string(),
                source: DockerError { inner: source },
            },
        )?;
        Ok(Provider {
            docker,
            engine: crate::engine_http::Engine::unix(socket),
            endpoint,
            _bridge: bridge.map(std::sync::Arc::new),
            registries: Default::default(),
        })
    }

    /// The same provider, pulling (and on a Swarm, deploying services) with these
    /// registry credentials.
    pub fn with_registries(mut self, registries: std::sync::Arc<crate::Registries>) -> Provider {
        self.registries = registries;
        self
    }

    /// The `X-Registry-Auth` header for `image`, if its registry has credentials.
    pub(crate) fn registry_auth(&self, image: &str) -> Option<String> {
        self.registries.header_for(image)
    }

    /// Asks the Engine whether it answers; why not, as a person can act on it.
    pub async fn ping(&self) -> Result<(), ProviderError> {
        // bollard 0.18 sends no version in its paths whatever is negotiated, so the
        // daemon's own `/version` (ten times slower than `/_ping`) would tell it
        // nothing: the daemon serves its current API.
        let bridge = self._bridge.as_deref();
        if let Some(b) = bridge {
            b.clear_error();
        }
        let Err(source) = self.docker.ping().await else {
            return Ok(());
        };
        if let Some(b) = bridge {
            // ssh's own reason comes once it has exited, just after the connection
            // closed: wait for it a moment.
            for _ in 0..40 {
                if let Some(why) = b.last_error() {
                    return Err(ProviderError::Unreachable {
                        endpoint: self.endpoint.to_string(),
                        why,
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Err(ProviderError::Connect {
            endpoint: self.endpoint.to_string(),
            source: DockerError { inner: source },
        })
    }

    /// The Engine's id, and whether it manages a Swarm (`Swarm.ControlAvailable`): one
    /// `docker info` (on a Swarm manager one of its slowest answers), read on a new
    /// connection that is then kept: see [`Provider::same_engine`].
    pub async fn engine_identity(&self) -> Result<(String, bool), ProviderError> {
        let failed = |why: String| ProviderError::Failed(format!("reading the Engine's id: {why}"));
        let request = crate::engine_http::Engine::request("GET", "/info")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| failed(e.to_string()))?;
        let (status, body) = self.engine.call_anchoring(request).await.map_err(failed)?;
        if !status.is_success() {
            return Err(failed(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        let info: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| failed(e.to_string()))?;
        let manager = info
            .pointer("/Swarm/ControlAvailable")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let id = info["ID"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ProviderError::Failed("the Engine did not say its id".into()))?;
        Ok((id.to_string(), manager))
    }

    /// Whether the Engine manages a Swarm (`docker info`'s `Swarm.ControlAvailable`),
    /// asked on a connection of its own (the one [`Provider::same_engine`] relies on
    /// is left as it is).
    pub async fn swarm_manager(&self) -> Result<bool, ProviderError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|source| ProviderError::Api {
                what: "reading the Engine's info".into(),
                source: DockerError { inner: source },
            })?;
        Ok(info
            .swarm
            .and_then(|s| s.control_available)
            .unwrap_or(false))
    }

    /// Whether the Engine whose id [`Provider::engine_identity`] last read answers a
    /// ping on the very connection it was read on: then it is that Engine (a restarted
    /// Engine or another machine would have closed it), and its id need not be asked
    /// again. `false` when that connection is gone: ask.
    pub async fn same_engine(&self) -> bool {
        let Ok(request) = crate::engine_http::Engine::request("GET", "/_ping")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
        else {
            return false;
        };
        matches!(
            self.engine.call_on_anchor(request).await,
            Some(Ok((status, _))) if status.is_success()
        )
    }

    /// The Engine this provider talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// On a remote Engine, the repository's files `svc` binds (its own binds, and its
    /// secrets' and configs' `file:`s) as files to copy in, with their bind sources; a
    /// folder of the repository cannot be copied so and is refused, saying what to do.
    /// Nothing on a local Engine.
    fn repository_copies(
        &self,
        project: &Project,
        svc: &Service,
        replica: u32,
    ) -> Result<Vec<(String, mooring_core::InlineFile)>, ProviderError> {
        if self.endpoint.is_local() {
            return Ok(Vec::new());
        }
        let mut copies = Vec::new();
        for m in project.replica_mounts(svc, replica) {
            if m.kind != mooring_core::MountKind::Bind || !m.from_repository {
                continue;
            }
            let path = std::path::Path::new(&m.source);
            let fail = |why: String| {
                ProviderError::Failed(format!(
                    "service {}: {} (bound at {}) {why}",
                    svc.name, m.source, m.target
                ))
            };
            let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
            if !meta.is_file() {
                return Err(fail(format!(
                    "is a folder of the repository, and the Engine at {} runs on another machine, where it is not; build its files into an image (`build:`), or give them one by one as files or `configs`",
                    self.endpoint
                )));
            }
            let content =
                mooring_compose::limits::read_bytes(path).map_err(|e| fail(e.to_string()))?;
            use std::os::unix::fs::PermissionsExt;
            copies.push((
                m.source.clone(),
                mooring_core::InlineFile {
                    target: m.target.clone(),
                    content,
                    uid: 0,
                    gid: 0,
                    // Read-only as bound (`:ro` or not, a copy others may not change).
                    mode: meta.permissions().mode() & 0o555,
                    origin: format!("file {}", m.source),
                },
            ));
        }
        Ok(copies)
    }

    /// The app's containers (by label), inspected.
    async fn observe_containers(
        &self,
        project: &Project,
    ) -> Result<Vec<LiveContainer>, ProviderError> {
        let label = format!("{APP}={}", project.name);
        let list = self.containers_where("label", label, "containers").await?;
        let inspects = join_all(
            list.iter()
                .filter_map(|c| c.id.as_deref())
                .map(|id| self.container(id)),
        )
        .await;
        let mut containers = Vec::new();
        for c in inspects {
            if let Some(c) = c? {
                containers.push(c);
            }
        }
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(containers)
    }

    /// The app's networks (by label) and the project's others that exist.
    async fn observe_networks(
        &self,
        project: &Project,
    ) -> Result<BTreeMap<String, LiveNetwork>, ProviderError> {
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{APP}={}", project.name)])]);
        let mut networks = BTreeMap::new();
        let labelled = self
            .docker
            .list_networks(Some(ListNetworksOptions { filters }))
            .await
            .map_err(api("listing networks"))?;
        for n in labelled {
            let net = LiveNetwork {
                name: n.name.unwrap_or_default(),
                id: n.id.unwrap_or_default(),
                driver: n.driver.unwrap_or_default(),
                labels: n.labels.unwrap_or_default().into_iter().collect(),
            };
            networks.insert(net.name.clone(), net);
        }
        let missing: Vec<_> = project
            .networks
            .values()
            .filter(|n| !networks.contains_key(&n.name))
            .collect();
        for net in missing {
            match self.docker.inspect_network::<String>(&net.name, None).await {
                Ok(n) => {
                    networks.insert(
                        net.name.clone(),
                        LiveNetwork {
                            name: net.name.clone(),
                            id: n.id.unwrap_or_default(),
                            driver: n.driver.unwrap_or_default(),
                            labels: n.labels.unwrap_or_default().into_iter().collect(),
                        },
                    );
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api(format!("inspecting network {}", net.name))(e)),
            }
        }
        Ok(networks)
    }

    /// The app's volumes (by label) and the project's others that exist.
    async fn observe_volumes(
        &self,
        project: &Project,
    ) -> Result<BTreeMap<String, LiveVolume>, ProviderError> {
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{APP}={}", project.name)])]);
        let mut volumes = BTreeMap::new();
        let labelled = self
            .docker
            .list_volumes(Some(ListVolumesOptions { filters }))
            .await
            .map_err(api("listing volumes"))?;
        for v in labelled.volumes.unwrap_or_default() {
            volumes.insert(v.name.clone(), live_volume(v));
        }
        let missing: Vec<_> = project
            .volumes
            .values()
            .filter(|v| !volumes.contains_key(&v.name))
            .collect();
        for vol in missing {
            match self.docker.inspect_volume(&vol.name).await {
                Ok(v) => {
                    volumes.insert(vol.name.clone(), live_volume(v));
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api(format!("inspecting volume {}", vol.name))(e)),
            }
        }
        Ok(volumes)
    }

    /// The ids of the images the services name (and the inputs of those Mooring built).
    #[allow(clippy::type_complexity)]
    async fn observe_images(
        &self,
        project: &Project,
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>), ProviderError> {
        let mut images = BTreeMap::new();
        let mut image_builds = BTreeMap::new();
        let mut refs: Vec<&str> = project
            .services
            .values()
            .map(|s| s.image.as_str())
            .collect();
        refs.sort_unstable();
        refs.dedup();
        for (image, id) in refs
            .iter()
            .zip(join_all(refs.iter().map(|r| self.image_info(r))).await)
        {
            if let Some((id, inputs)) = id? {
                images.insert(image.to_string(), id);
                if let Some(inputs) = inputs {
                    image_builds.insert(image.to_string(), inputs);
                }
            }
        }
        Ok((images, image_builds))
    }

    /// The bollard client, for callers at this crate's level (tests, benchmarks).
    pub(crate) fn client(&self) -> &Docker {
        &self.docker
    }

    /// The Engine, for requests bollard does not make (`engine_http`).
    pub(crate) fn engine(&self) -> &crate::engine_http::Engine {
        &self.engine
    }

    /// Whether a container runs, and its `kind` hooks (`post_start`, `pre_stop`) from the
    /// spec it was created with (label `io.mooring.spec`; none without it): one inspect.
    async fn hooks_of(
        &self,
        container: &str,
        kind: &str,
    ) -> Result<(bool, Vec<mooring_core::Hook>), ProviderError> {
        let c = match self.docker.inspect_container(container, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok((false, vec![])),
            Err(e) => return Err(api(format!("inspecting container {container}"))(e)),
        };
        let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let spec = c
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get(mooring_core::labels::SPEC).cloned());
        let hooks = spec
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| serde_json::from_value(v.get(kind)?.clone()).ok())
            .unwrap_or_default();
        Ok((running, hooks))
    }

    /// Runs a hook in `container` and waits for it; a non-zero exit is an error that
    /// says which hook and what it printed last.
    pub(crate) async fn run_hook(
        &self,
        container: &str,
        kind: &str,
        hook: &mooring_core::Hook,
    ) -> Result<(), ProviderError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let what = format!("{kind} hook `{}` in {container}", hook.command.join(" "));
        let exec = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(hook.command.clone()),
                    user: hook.user.clone(),
                    privileged: Some(hook.privileged),
                    working_dir: hook.working_dir.clone(),
                    env: Some(
                        hook.environment
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect(),
                    ),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(api(format!("creating the {what}")))?;
        // The last 2 KiB of what it prints, for the error.
        let mut tail: Vec<u8> = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(api(format!("running the {what}")))?
        {
            while let Some(chunk) = output.next().await {
                let chunk = chunk.map_err(api(format!("reading the {what}")))?;
                tail.extend_from_slice(&chunk.into_bytes());
                if tail.len() > 2048 {
                    tail.drain(..tail.len() - 2048);
                }
            }
        }
        // The output closes just before the command ends: its code is waited for.
        self.exec_exit(&exec.id, &what, &tail).await
    }

    /// Every container (running or not) matching one list filter, e.g. `("label",
    /// "io.mooring.app=blog")` or `("volume", "blog_data")`; `what` names the list in
    /// an error.
    pub(crate) async fn containers_where(
        &self,
        filter: &str,
        value: String,
        what: &str,
    ) -> Result<Vec<bollard::models::ContainerSummary>, ProviderError> {
        let filters = HashMap::from([(filter.to_string(), vec![value])]);
        self.docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
            .map_err(api(format!("listing {what}")))
    }

    /// The id of a local image, `None` when it is not present.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, ProviderError> {
        Ok(self.image_info(image).await?.map(|(id, _)| id))
    }

    /// A present image's id and the build inputs it was built from (its
    /// `io.mooring.build` label, on images Mooring built).
    async fn image_info(
        &self,
        image: &str,
    ) -> Result<Option<(String, Option<String>)>, ProviderError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => {
                let inputs = i.config.and_then(|c| c.labels).and_then(|l| {
                    l.get(mooring_core::labels::BUILD)
                        .map(|v| mooring_core::labels::parse_build_value(v).0.to_string())
                });
                Ok(i.id.map(|id| (id, inputs)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api(format!("inspecting image {image}"))(e)),
        }
    }
}

/// Whose backup a planned backup is, and why (see [`Host::backup_volume`]).
#[derive(Debug, Clone, Copy)]
pub struct BackupWhy<'a> {
    /// The app it is filed under: the Compose project, or for an app deployed to
    /// several hosts this host's instance (`APP@HOST`), whose backups are its own.
    pub app: &'a str,
    pub reason: &'a str,
    /// The revision whose data it holds.
    pub revision: Option<&'a str>,
}

/// What the reconciler needs from a host. [`Provider`] is the real Docker Engine;
/// benchmarks implement it with a simulated host (named as such) to measure Mooring's
/// own costs at scale.
#[allow(async_fn_in_trait)]
pub trait Host: Sync {
    /// Observes what runs for `project`.
    async fn observe(&self, project: &Project) -> Result<Live, ProviderError>;
    /// Published ports bound by running containers outside `project`.
    async fn foreign_ports(
        &self,
        project: &Project,
    ) -> Result<Vec<mooring_core::live::ForeignPort>, ProviderError> {
        let _ = project;
        Ok(vec![])
    }
    /// What this Engine cannot run of `project`, said before anything is changed (on a
    /// remote Engine: a repository folder bound in, a repository file that cannot be
    /// read).
    async fn check_project(&self, project: &Project) -> Result<(), ProviderError> {
        let _ = project;
        Ok(())
    }
    /// Inspects one container by name or id.
    async fn container(&self, id: &str) -> Result<Option<LiveContainer>, ProviderError>;
    /// Creates a project network.
    async fn create_network(&self, project: &Project, name: &str) -> Result<(), ProviderError>;
    /// Removes a network (absent is fine).
    async fn remove_network(&self, name: &str) -> Result<(), ProviderError>;
    /// Disconnects every container still attached to a network that is recreated
    /// (containers outside the app, orphans kept), as Compose does, so that its removal
    /// never fails half-way with "active endpoints".
    async fn disconnect_all(&self, name: &str) -> Result<(), ProviderError>;
    /// Creates a project volume.
    async fn create_volume(&self, project: &Project, name: &str) -> Result<(), ProviderError>;
    /// Pulls an image.
    /// Pulls an image, for `platform` (`os/arch[/variant]`) when a service names one.
    /// Pulls an image, telling `output` each layer's step as the Engine reports it
    /// (`3f4a…: Downloading`, `3f4a…: Pull complete`) and its final status line.
    async fn pull_image(
        &self,
        image: &str,
        platform: Option<&str>,
        output: &(dyn Fn(&str) + Sync),
    ) -> Result<(), ProviderError>;
    /// Builds the image of a `build:` service, telling `output` each line the builder
    /// prints; a line saying what was built.
    async fn build_image(
        &self,
        project: &Project,
        svc: &Service,
        output: &(dyn Fn(&str) + Sync),
    ) -> Result<String, ProviderError>;
    /// Creates, connects and starts container `replica` (from 1) of `svc`.
    async fn create_container(
        &self,
        project: &Project,
        svc: &Service,
        replica: u32,
    ) -> Result<(), ProviderError>;
    /// Starts a container.
    async fn start_container(&self, name: &str) -> Result<(), ProviderError>;
    /// Stops (honouring the grace period) and removes a container; absent is fine.
    async fn remove_container(
        &self,
        id: &str,
        grace_secs: Option<i64>,
    ) -> Result<(), ProviderError>;
    /// Writes a verified backup of a volume into `dir` (`why`: the app it is filed
    /// under, the reason and the revision whose data it holds, which go into its
    /// manifest), stopping running containers that write to it for the copy and
    /// starting them again; returns its id.
    ///
    /// With `reuse_unchanged` (a backup before a removal, which a failed removal's retry
    /// takes again), the newest backup of the volume is returned instead of a new one
    /// when the volume holds exactly what it holds, byte for byte (content, modes,
    /// owners, times, extended attributes), and it still verifies.
    async fn backup_volume(
        &self,
        project: &Project,
        volume: &str,
        dir: &std::path::Path,
        why: BackupWhy<'_>,
        reuse_unchanged: bool,
    ) -> Result<String, ProviderError>;
    /// Removes a volume — only ever planned after its verified backup.
    async fn remove_volume(&self, name: &str) -> Result<(), ProviderError>;
    /// Restores backup `id` (verified first) into a volume: over what it holds when
    /// `overwrite`, else only into an empty volume (or one an interrupted restore of
    /// the same backup left).
    async fn restore_volume(
        &self,
        project: &Project,
        volume: &str,
        id: &str,
        dir: &std::path::Path,
        overwrite: bool,
    ) -> Result<(), ProviderError>;
}

impl Host for Provider {
    async fn check_project(&self, project: &Project) -> Result<(), ProviderError> {
        for svc in project.services.values() {
            for replica in 1..=svc.replicas.0.max(1) {
                self.repository_copies(project, svc, replica)?;
            }
        }
        Ok(())
    }

    async fn foreign_ports(
        &self,
        project: &Project,
    ) -> Result<Vec<mooring_core::live::ForeignPort>, ProviderError> {
        let running = self
            .docker
            .list_containers(None::<ListContainersOptions<String>>)
            .await
            .map_err(api("listing running containers"))?;
        let mut out = Vec::new();
        for c in running {
            let name = summary_name(&c);
            let labels = c.labels.unwrap_or_default();
            let ours = [APP, mooring_core::labels::COMPOSE_PROJECT]
                .iter()
                .any(|k| labels.get(*k) == Some(&project.name));
            if ours {
                continue;
            }
            for p in c.ports.unwrap_or_default() {
                if let Some(port) = p.public_port {
                    out.push(mooring_core::live::ForeignPort {
                        container: name.clone(),
                        host_ip: p.ip.clone(),
                        port,
                        protocol: p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Observes what runs for `project`: one filtered list call, then an inspect per
    /// container, network, volume and image concerned.
    async fn observe(&self, project: &Project) -> Result<Live, ProviderError> {
        // The four kinds at once: each is a round trip or two to the daemon.
        let (containers, networks, volumes, (images, image_builds)) =
            futures_util::future::try_join4(
                self.observe_containers(project),
                self.observe_networks(project),
                self.observe_volumes(project),
                self.observe_images(project),
            )
            .await?;
        Ok(Live {
            containers,
            networks,
            volumes,
            images,
            image_builds,
        })
    }

    async fn container(&self, id: &str) -> Result<Option<LiveContainer>, ProviderError> {
        match self.docker.inspect_container(id, None).await {
            Ok(c) => Ok(Some(live_container(c))),
            // Removed between list and inspect: it is gone, which is what we observe.
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api(format!("inspecting container {id}"))(e)),
        }
    }

    async fn create_network(&self, project: &Project, name: &str) -> Result<(), ProviderError> {
        let (key, net) = project
            .networks
            .iter()
            .find(|(_, n)| n.name == name)
            .ok_or_else(|| {
                ProviderError::Failed(format!("network {name} is not in the project"))
            })?;
        let mut labels = resource_labels(project, COMPOSE_NETWORK, key, &net.labels);
        labels.insert(
            mooring_core::labels::SPEC_HASH.to_string(),
            net.settings_hash(),
        );
        labels.insert(
            mooring_core::labels::SPEC.to_string(),
            net.settings().to_string(),
        );
        let ipam = net.ipam.as_ref().map(|i| bollard::models::Ipam {
            driver: i.driver.clone(),
            config: Some(
                i.config
                    .iter()
                    .map(|p| bollard::models::IpamConfig {
                        subnet: p.subnet.clone(),
                        ip_range: p.ip_range.clone(),
                        gateway: p.gateway.clone(),
                        auxiliary_addresses: (!p.aux_addresses.is_empty())
                            .then(|| p.aux_addresses.clone().into_iter().collect()),
                    })
                    .collect(),
            ),
            options: (!i.options.is_empty()).then(|| i.options.clone().into_iter().collect()),
        });
        let options = CreateNetworkOptions {
            name: name.to_string(),
            check_duplicate: true,
            driver: net.driver.clone().unwrap_or_else(|| "bridge".into()),
            internal: net.internal,
            attachable: net.attachable,
            enable_ipv6: net.enable_ipv6.unwrap_or(false),
            ipam: ipam.unwrap_or_default(),
            options: net.driver_opts.clone().into_iter().collect(),
            labels,
            ..Default::default()
        };
        self.docker
            .create_network(options)
            .await
            .map_err(api(format!("creating network {name}")))?;
        Ok(())
    }

    async fn disconnect_all(&self, name: &str) -> Result<(), ProviderError> {
        let net = match self.docker.inspect_network::<String>(name, None).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(api(format!("inspecting network {name}"))(e)),
        };
        for id in net.containers.unwrap_or_default().into_keys() {
            let options = bollard::network::DisconnectNetworkOptions {
                container: id.clone(),
                force: true,
            };
            match self.docker.disconnect_network(name, options).await {
                Err(e) if !is_not_found(&e) => {
                    return Err(api(format!("disconnecting {id} from network {name}"))(e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), ProviderError> {
        match self.docker.remove_network(name).await {
            Err(e) if !is_not_found(&e) => Err(api(format!("removing network {name}"))(e)),
            _ => Ok(()),
        }
    }

    async fn create_volume(&self, project: &Project, name: &str) -> Result<(), ProviderError> {
        let (key, vol) = project
            .volumes
            .iter()
            .find(|(_, v)| v.name == name)
            .ok_or_else(|| ProviderError::Failed(format!("volume {name} is not in the project")))?;
        let options = CreateVolumeOptions {
            name: name.to_string(),
            driver: vol.driver.clone().unwrap_or_else(|| "local".into()),
            driver_opts: vol.driver_opts.clone().into_iter().collect(),
            labels: {
                let mut labels = resource_labels(project, COMPOSE_VOLUME, key, &vol.labels);
                if let Some(policy) = vol.policy {
                    labels.insert(
                        mooring_core::labels::DATA_POLICY.to_string(),
                        policy.as_str().to_string(),
                    );
                }
                labels
            },
        };
        self.docker
            .create_volume(options)
            .await
            .map_err(api(format!("creating volume {name}")))?;
        Ok(())
    }

    async fn build_image(
        &self,
        project: &Project,
        svc: &Service,
        output: &(dyn Fn(&str) + Sync),
    ) -> Result<String, ProviderError> {
        self.build_service_image(&project.name, svc, output).await
    }

    async fn pull_image(
        &self,
        image: &str,
        platform: Option<&str>,
        output: &(dyn Fn(&str) + Sync),
    ) -> Result<(), ProviderError> {
        // Through `engine_http`: bollard encodes `X-Registry-Auth` as plain base64,
        // which the Engine (reading base64url) silently takes for no credentials.
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("fromImage", image);
            if let Some(p) = platform.filter(|p| !p.is_empty()) {
                query.append_pair("platform", p);
            }
            query.finish()
        };
        let mut request =
            crate::engine_http::Engine::request("POST", &format!("/images/create?{query}"));
        if let Some(auth) = self.registry_auth(image) {
            request = request.header("X-Registry-Auth", auth);
        }
        let failed = |e: String| ProviderError::Failed(format!("pulling image {image}: {e}"));
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| failed(e.to_string()))?;
        let response = self.engine.send(request).await.map_err(failed)?;
        if !response.status().is_success() {
            return Err(failed(crate::engine_http::error_text(response).await));
        }
        // Each layer's step once (the byte counts of `Downloading` tick many times a
        // second; a person needs the step, not every tick).
        let mut steps: HashMap<String, String> = HashMap::new();
        crate::engine_http::json_lines(response.into_body(), |m| {
            if let Some(e) = m["error"].as_str() {
                return Err(e.to_string());
            }
            let Some(status) = m["status"].as_str() else {
                return Ok(());
            };
            match m["id"].as_str() {
                Some(id) if !status.starts_with("Pulling from") => {
                    if steps.get(id).map(String::as_str) != Some(status) {
                        output(&format!("{id}: {status}"));
                        steps.insert(id.to_string(), status.to_string());
                    }
                }
                _ => output(status),
            }
            Ok(())
        })
        .await
        .map_err(failed)
    }

    /// Creates, connects and starts container `replica` of `svc`.
    async fn create_container(
        &self,
        project: &Project,
        svc: &Service,
        replica: u32,
    ) -> Result<(), ProviderError> {
        let name = &project.replica_name(&svc.name, replica);
        let options = CreateContainerOptions {
            name: name.to_string(),
            platform: svc.settings.platform.clone(),
        };
        let mut config = container_config(project, svc, replica);
        // On another machine the repository's files are not there: each one bound in
        // is copied in instead (the spec and its labels stay the same).
        let copies = self.repository_copies(project, svc, replica)?;
        if let Some(host) = config.host_config.as_mut() {
            if let Some(binds) = host.binds.as_mut() {
                binds.retain(|b| {
                    !copies
                        .iter()
                        .any(|(source, _)| b.starts_with(&format!("{source}:")))
                });
            }
        }
        // Joined namespaces by id, as Compose sends them (`container:<id>`).
        if let Some(host) = config.host_config.as_mut() {
            for mode in [
                &mut host.network_mode,
                &mut host.pid_mode,
                &mut host.ipc_mode,
            ] {
                if let Some(other) = mode.as_deref().and_then(|m| m.strip_prefix("container:")) {
                    let id = self
                        .docker
                        .inspect_container(other, None)
                        .await
                        .map_err(api(format!(
                            "inspecting container {other}, whose namespaces {name} joins"
                        )))?
                        .id
                        .unwrap_or_default();
                    *mode = Some(format!("container:{id}"));
                }
            }
        }
        // Compose records the image id the container was made from.
        if let Some(id) = self.image_id(&svc.image).await? {
            config
                .labels
                .get_or_insert_with(HashMap::new)
                .insert(mooring_core::labels::COMPOSE_IMAGE.to_string(), id);
        }
        let created = self
            .docker
            .create_container(Some(options.clone()), config.clone())
            .await;
        match created {
            Ok(_) => {}
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                // The name is taken. By this app's own container that the observation
                // missed (a killed run's create that the Engine finished late): it is
                // replaced, as the plan wanted a new one. By anything else: refused.
                // A create the Engine is still finishing holds the name before it
                // can be inspected: look again for a few seconds.
                let mut existing = None;
                for _ in 0..50 {
                    existing = self.docker.inspect_container(name, None).await.ok();
                    if existing.is_some() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let ours = existing
                    .as_ref()
                    .and_then(|c| c.config.as_ref()?.labels.as_ref()?.get(APP))
                    .is_some_and(|a| *a == project.name);
                if !ours {
                    return Err(ProviderError::Failed(format!(
                        "a container named {name} already exists but is not managed by Mooring for app {} (no io.mooring.app label); remove or rename it",
                        project.name
                    )));
                }
                self.remove_container(name, None).await?;
                self.docker
                    .create_container(Some(options), config)
                    .await
                    .map_err(api(format!("creating container {name}")))?;
            }
            Err(e) => return Err(api(format!("creating container {name}"))(e)),
        }
        for (network, endpoint_config) in network_attachments(project, svc, replica)
            .into_iter()
            .skip(1)
        {
            let options = ConnectNetworkOptions {
                container: name.to_string(),
                endpoint_config,
            };
            self.docker
                .connect_network(&network, options)
                .await
                .map_err(api(format!("connecting {name} to network {network}")))?;
        }
        let files: Vec<mooring_core::InlineFile> = svc
            .inline_files
            .iter()
            .cloned()
            .chain(copies.into_iter().map(|(_, f)| f))
            .collect();
        if !files.is_empty() {
            // Secrets and configs from values (and, on a remote Engine, the repository's
            // files): into the container before it starts, from memory (the archive is
            // built here and sent; nothing touches disk).
            let archive = crate::convert::inline_archive(&files).map_err(|e| {
                ProviderError::Failed(format!("packing the secrets and configs of {name}: {e}"))
            })?;
            self.docker
                .upload_to_container(
                    name,
                    Some(bollard::container::UploadToContainerOptions {
                        path: "/".to_string(),
                        ..Default::default()
                    }),
                    archive.into(),
                )
                .await
                .map_err(api(format!("copying the secrets and configs into {name}")))?;
        }
        // Started here with the hooks of the spec just created (no inspect needed).
        self.docker
            .start_container(name, None::<StartContainerOptions<String>>)
            .await
            .map_err(api(format!("starting container {name}")))?;
        for hook in &svc.post_start {
            self.run_hook(name, "post_start", hook).await?;
        }
        Ok(())
    }

    /// Starts a container, then runs its `post_start` hooks (from the spec it was
    /// created with), as Compose does each time it starts one.
    async fn start_container(&self, name: &str) -> Result<(), ProviderError> {
        self.docker
            .start_container(name, None::<StartContainerOptions<String>>)
            .await
            .map_err(api(format!("starting container {name}")))?;
        for hook in self.hooks_of(name, "post_start").await?.1 {
            self.run_hook(name, "post_start", &hook).await?;
        }
        Ok(())
    }

    /// Stops (honouring the grace period) and removes a container; absent is fine.
    async fn remove_container(
        &self,
        id: &str,
        grace_secs: Option<i64>,
    ) -> Result<(), ProviderError> {
        // `pre_stop` hooks first, while it runs.
        let (running, hooks) = self.hooks_of(id, "pre_stop").await?;
        if running {
            for hook in hooks {
                self.run_hook(id, "pre_stop", &hook).await?;
            }
        }
        match self
            .docker
            .stop_container(id, grace_secs.map(|t| StopContainerOptions { t }))
            .await
        {
            Ok(()) => {}
            Err(BollardError::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => {}
            Err(e) => return Err(api(format!("stopping container {id}"))(e)),
        }
        let options = RemoveContainerOptions {
            force: true,
            v: false,
            link: false,
        };
        match self.docker.remove_container(id, Some(options)).await {
            Err(e) if !is_not_found(&e) => Err(api(format!("removing container {id}"))(e)),
            _ => Ok(()),
        }
    }

    async fn backup_volume(
        &self,
        project: &Project,
        volume: &str,
        dir: &std::path::Path,
        why: BackupWhy<'_>,
        reuse_unchanged: bool,
    ) -> Result<String, ProviderError> {
        let BackupWhy {
            app,
            reason,
            revision,
        } = why;
        let images: Vec<String> = project.services.values().map(|s| s.image.clone()).collect();
        if reuse_unchanged {
            let image = self.local_image(&images).await?;
            if let Some(record) = self.unchanged_backup(app, volume, &image, dir).await? {
                return Ok(record.id);
            }
        }
        let meta = mooring_backup::BackupMeta {
            app: app.to_string(),
            volume: volume.to_string(),
            revision: revision.map(str::to_string),
            reason: reason.to_string(),
            created_at: mooring_core::clock::now_ms(),
            dump: None,
        };
        let (record, _) = self
            .with_writers_stopped(volume, &images, &|_| {}, |image| async move {
                self.backup_volume_into(volume, &image, dir, meta).await
            })
            .await?;
        Ok(record.id)
    }

    async fn restore_volume(
        &self,
        project: &Project,
        volume: &str,
        id: &str,
        dir: &std::path::Path,
        overwrite: bool,
    ) -> Result<(), ProviderError> {
        let record = mooring_backup::load(dir, id)
            .map_err(|e| ProviderError::Failed(format!("backup {id}: {e}")))?;
        let images: Vec<String> = project.services.values().map(|s| s.image.clone()).collect();
        let image = self.local_image(&images).await?;
        self.restore_volume_from(volume, &image, record, overwrite)
            .await
            .map(|_| ())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), ProviderError> {
        // A helper container a killed run left (created, never started) holds the volume.
        self.remove_stale_helpers(name).await?;
        self.client()
            .remove_volume(name, None)
            .await
            .map_err(|e| ProviderError::Failed(format!("removing volume {name}: {e}")))
    }
}

/// A change to a managed container, from Docker's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// The `io.mooring.app` label.
    pub app: String,
    /// Container name.
    pub container: String,
    /// Docker's action: `die`, `destroy`, `update`, `oom`, `pause`, `start`...
    pub action: String,
}

impl Provider {
    /// Events of containers Mooring manages that may mean drift (died, removed,
    /// updated, paused, out of memory) or a change of health (Docker's health check). The
    /// stream ends or errors when the connection drops; callers reconnect and resync.
    pub fn container_events(
        &self,
    ) -> impl futures_util::Stream<Item = Result<ContainerEvent, ProviderError>> + '_ {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!(
                    "{}={}",
                    mooring_core::labels::MANAGED_BY,
                    mooring_core::labels::MANAGED_BY_VALUE
                )],
            ),
            (
                "event".to_string(),
                // `health_status` (Docker's `health_status: healthy` and so on): the
                // app's health follows Docker's as it changes, not at the next interval.
                ["die", "destroy", "update", "oom", "pause", "health_status"]
                    .map(String::from)
                    .to_vec(),
            ),
        ]);
        let options = bollard::system::EventsOptions {
            since: None,
            until: None,
            filters,
        };
        self.docker
            .events(Some(options))
            .filter_map(|item| async move {
                match item {
                    Err(e) => Some(Err(api("reading Docker events")(e))),
                    Ok(msg) => {
                        let actor = msg.actor.unwrap_or_default();
                        let attrs = actor.attributes.unwrap_or_default();
                        let app = attrs.get(APP)?.clone();
                        Some(Ok(ContainerEvent {
                            app,
                            container: attrs.get("name").cloned().unwrap_or_default(),
                            action: msg.action.unwrap_or_default(),
                        }))
                    }
                }
            })
    }
}

fn live_volume(v: bollard::models::Volume) -> LiveVolume {
    LiveVolume {
        name: v.name,
        driver: v.driver,
        options: v.options.into_iter().collect(),
        labels: v.labels.into_iter().collect(),
    }
}

/// A listed container's name, without the Engine's leading `/`.
pub(crate) fn summary_name(c: &bollard::models::ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}
