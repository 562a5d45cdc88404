//! Docker Swarm stacks: an app's Compose project deployed to a Swarm manager as
//! `docker stack deploy` deploys it — one service `<project>_<service>` a Compose
//! service, overlay networks `<project>_<network>`, everything labelled with the stack
//! namespace — through the Engine's service API.
//!
//! The desired spec of a service is built as the API's JSON (`spec`; pure), so what
//! Mooring sets is exactly that document; the live spec is read back, its network ids
//! named, and cut to the same shape (`shaped_like`), so a field Swarm fills in itself
//! is never taken for drift, and a `docker service update` or `scale` by hand is. The
//! plan (`plan`; pure) names each changed field. `reconcile` observes, plans and
//! applies; Swarm then rolls the update out as the service's `update_config` says.
//!
//! `spec` builds the desired specs, `plan` the plan (both pure); this module observes
//! the manager, applies actions, reads health and reconciles.

use crate::provider::ProviderError;
use crate::reconcile::{ActionResult, Outcome, Progress, ReconcileOptions};
use crate::Provider;
use mooring_core::desired::{DataPolicy, Project, Service};
use mooring_core::{Action, FileKind, Health, Live, PlannedAction, ResourceHealth};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

mod plan;
mod spec;
#[cfg(test)]
mod tests;

use plan::declares_volume;
pub use plan::{plan, shaped_like};
pub use spec::{
    desired, not_yet_on_swarm, service_name, spec, with_file_ids, IMAGE_LABEL, SPEC_HASH,
};
use spec::{missing, swarm_files};

/// What the error of an update that Swarm paused or rolled back says: the revision is
/// then held (not retried) until a new one.
pub const ROLLOUT_UNDONE: &str = "by Swarm";

/// The label `docker stack deploy` puts on everything of a stack.
pub const NAMESPACE: &str = "com.docker.stack.namespace";

/// A stack's services and overlay networks as the manager has them.
#[derive(Debug, Clone, Default)]
pub struct LiveStack {
    /// By service name: its id, its spec's version, the spec (as the API's JSON, the
    /// networks named, not by id).
    pub services: BTreeMap<String, (String, u64, Value)>,
    /// By service name: its tasks running and wanted, as the manager counts them
    /// (`ServiceStatus`).
    pub counts: BTreeMap<String, (u64, u64)>,
    /// Overlay networks of the stack, by name.
    pub networks: Vec<String>,
    /// Every secret and config of the Swarm, by kind and name: its id, and whether it
    /// is the stack's (its namespace label) and Mooring made it (its digest label).
    pub files: BTreeMap<(FileKind, String), LiveFile>,
    /// The stack's volumes on each node named for it (`nodes` of the Swarm host), or
    /// why that node's Engine did not answer.
    pub node_volumes: BTreeMap<String, Result<Vec<String>, String>>,
    /// The data policy a volume of the stack was created with (its `x-mooring`), as its
    /// label on a node says.
    pub volume_policies: BTreeMap<String, DataPolicy>,
    /// Each service image's digest as its registry gives it, asked through the manager
    /// (`crate::pin`).
    pub images: crate::pin::Resolved,
}

/// A secret or config as the manager has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFile {
    pub id: String,
    /// It carries the stack's namespace label.
    pub stack: bool,
    /// Mooring made it, named after its content (`DIGEST` label).
    pub by_mooring: bool,
}

/// The label on a secret or config Mooring made: the digest its name ends with.
pub const DIGEST: &str = "io.mooring.digest";

impl Provider {
    /// The stack `project` on this manager: its services and overlay networks.
    pub async fn observe_stack(&self, project: &Project) -> Result<LiveStack, ProviderError> {
        // The networks, the services, the secrets and configs: asked at once.
        let filters = json!({"label": [format!("{NAMESPACE}={}", project.name)]}).to_string();
        let path = format!(
            "/services?{}",
            url_query(&[("filters", &filters), ("status", "true")])
        );
        let (networks, services, files) = futures_util::future::join3(
            // On a kept connection (bollard opens one a call: a TLS handshake each).
            self.swarm_api("GET", "/networks", None),
            self.swarm_api("GET", &path, None),
            self.swarm_files(&project.name),
        )
        .await;
        // Every network's name by id (a service may join an external one), the stack's own.
        let networks =
            networks.map_err(|e| ProviderError::Failed(format!("listing the networks: {e}")))?;
        let networks = networks.as_array().map(Vec::as_slice).unwrap_or_default();
        let text = |n: &Value, k: &str| n.get(k).and_then(Value::as_str).map(str::to_string);
        let names: HashMap<String, String> = networks
            .iter()
            .filter_map(|n| Some((text(n, "Id")?, text(n, "Name")?)))
            .collect();
        let own = project.name.as_str();
        let stack_networks: Vec<String> = networks
            .iter()
            .filter(|n| {
                n.pointer(&format!("/Labels/{NAMESPACE}"))
                    .and_then(Value::as_str)
                    == Some(own)
            })
            .filter_map(|n| text(n, "Name"))
            .collect();
        let services = services
            .map_err(|e| ProviderError::Failed(format!("listing the stack's services: {e}")))?;
        let mut live = LiveStack {
            networks: stack_networks,
            files: files?,
            ..LiveStack::default()
        };
        for s in services.as_array().cloned().unwrap_or_default() {
            let (Some(id), Some(mut spec)) =
                (s.get("ID").and_then(Value::as_str), s.get("Spec").cloned())
            else {
                continue;
            };
            let Some(name) = spec.get("Name").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            let version = s
                .pointer("/Version/Index")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            // Swarm keeps a network by id; the desired spec names it.
            if let Some(Value::Array(nets)) = spec.pointer_mut("/TaskTemplate/Networks") {
                for n in nets {
                    if let Some(target) = n.get("Target").and_then(Value::as_str) {
                        if let Some(named) = names.get(target) {
                            n["Target"] = json!(named);
                        }
                    }
                }
            }
            if let (Some(running), Some(desired)) = (
                s.pointer("/ServiceStatus/RunningTasks")
                    .and_then(Value::as_u64),
                s.pointer("/ServiceStatus/DesiredTasks")
                    .and_then(Value::as_u64),
            ) {
                live.counts.insert(name.clone(), (running, desired));
            }
            live.services.insert(name, (id.to_string(), version, spec));
        }
        Ok(live)
    }

    /// Every secret and config of the Swarm, marking those of stack `stack`.
    pub async fn swarm_files(
        &self,
        stack: &str,
    ) -> Result<BTreeMap<(FileKind, String), LiveFile>, ProviderError> {
        let mut out = BTreeMap::new();
        for kind in [FileKind::Secret, FileKind::Config] {
            let all = self
                .swarm_api("GET", &format!("/{kind}s"), None)
                .await
                .map_err(|e| ProviderError::Failed(format!("listing the Swarm's {kind}s: {e}")))?;
            for o in all.as_array().into_iter().flatten() {
                let (Some(id), Some(name)) = (
                    o.get("ID").and_then(Value::as_str),
                    o.pointer("/Spec/Name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let label = |k: &str| o.pointer("/Spec/Labels").and_then(|l| l.get(k));
                out.insert(
                    (kind, name.to_string()),
                    LiveFile {
                        id: id.to_string(),
                        stack: label(NAMESPACE).and_then(Value::as_str) == Some(stack),
                        by_mooring: label(DIGEST).is_some(),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Names of services updated (a `docker service update` or `scale`) or removed on
    /// this manager, as they happen: what may be drift of a stack; an empty name when a
    /// node changed (down, back, drained: every stack's tasks may move). Ends or errors
    /// when the connection drops; callers reconnect and resync.
    pub fn service_events(
        &self,
    ) -> impl futures_util::Stream<Item = Result<String, ProviderError>> + '_ {
        use futures_util::StreamExt;
        let filters = HashMap::from([
            (
                "type".to_string(),
                vec!["service".to_string(), "node".to_string()],
            ),
            (
                "event".to_string(),
                vec!["update".to_string(), "remove".to_string()],
            ),
        ]);
        self.client()
            .events(Some(bollard::system::EventsOptions {
                since: None,
                until: None,
                filters,
            }))
            .filter_map(|item| async move {
                match item {
                    Err(e) => Some(Err(ProviderError::Failed(format!(
                        "reading the Swarm's events: {e}"
                    )))),
                    Ok(msg) if msg.typ.map(|t| t.to_string()) == Some("node".into()) => {
                        Some(Ok(String::new()))
                    }
                    Ok(msg) => msg
                        .actor
                        .and_then(|a| a.attributes)
                        .and_then(|a| a.get("name").cloned())
                        .map(Ok),
                }
            })
    }

    /// Each service's health from its tasks: Healthy when as many run as it wants,
    /// Progressing while they start, Degraded when one failed and fewer run. The tasks
    /// meant to run are read first (one call); the stack's whole task history only
    /// when a service is short of them, to say which failed and why.
    pub async fn stack_health(
        &self,
        project: &Project,
        live: &LiveStack,
    ) -> Result<(Health, Vec<ResourceHealth>), ProviderError> {
        // Every service running all it wants, as the manager counts: no task to read.
        let counted: Option<Vec<ResourceHealth>> = project
            .services
            .values()
            .map(|svc| {
                let name = service_name(project, svc);
                match live.counts.get(&name) {
                    Some((running, want)) if running >= want && *want > 0 => Some(service_health(
                        svc,
                        &name,
                        Health::Healthy,
                        format!("{running}/{want} tasks running"),
                    )),
                    _ => None,
                }
            })
            .collect();
        if let Some(out) = counted.filter(|o| !o.is_empty()) {
            return Ok((mooring_core::health::worst(&out), out));
        }
        let running = self.stack_tasks(live, true).await?;
        let first = self.assess(project, live, &running).await;
        if first.0 == Health::Healthy {
            return Ok(first);
        }
        let all = self.stack_tasks(live, false).await?;
        Ok(self.assess(project, live, &all).await)
    }

    /// The tasks of the stack's services (only those meant to run, with `running`).
    async fn stack_tasks(
        &self,
        live: &LiveStack,
        running: bool,
    ) -> Result<Vec<Value>, ProviderError> {
        let names: Vec<&String> = live.services.keys().collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let filters = if running {
            json!({ "service": names, "desired-state": ["running"] })
        } else {
            json!({ "service": names })
        }
        .to_string();
        Ok(self
            .swarm_api(
                "GET",
                &format!("/tasks?{}", url_query(&[("filters", &filters)])),
                None,
            )
            .await
            .map_err(|e| ProviderError::Failed(format!("listing the stack's tasks: {e}")))?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Each service's health from `all`, its tasks.
    async fn assess(
        &self,
        project: &Project,
        live: &LiveStack,
        all: &[Value],
    ) -> (Health, Vec<ResourceHealth>) {
        let mut out = Vec::new();
        for svc in project.services.values() {
            let name = service_name(project, svc);
            let want = match live
                .services
                .get(&name)
                .and_then(|(_, _, s)| s.pointer("/Mode/Replicated/Replicas"))
            {
                Some(n) => n.as_u64().unwrap_or(0),
                None if live.services.contains_key(&name) => 0,
                None => {
                    out.push(service_health(
                        svc,
                        &name,
                        Health::Missing,
                        "service does not exist".into(),
                    ));
                    continue;
                }
            };
            let id = live.services.get(&name).map(|(id, _, _)| id.as_str());
            let tasks: Vec<&Value> = all
                .iter()
                .filter(|t| t.get("ServiceID").and_then(Value::as_str) == id)
                .collect();
            let state = |t: &Value| {
                t.pointer("/Status/State")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let desired_running: Vec<&Value> = tasks
                .iter()
                .copied()
                .filter(|t| t.get("DesiredState").and_then(Value::as_str) == Some("running"))
                .collect();
            let running = desired_running
                .iter()
                .filter(|t| state(t) == "running")
                .count() as u64;
            let failed = tasks
                .iter()
                .copied()
                .find(|t| state(t) == "failed" || state(t) == "rejected");
            let want = if want == 0 {
                desired_running.len() as u64
            } else {
                want
            };
            let (health, message) = if running >= want {
                (Health::Healthy, format!("{running}/{want} tasks running"))
            } else if let Some(t) = failed {
                let why = t
                    .pointer("/Status/Err")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let on = match t.get("NodeID").and_then(Value::as_str) {
                    Some(id) => format!(" on node {}", self.node_name(id).await),
                    None => String::new(),
                };
                (
                    Health::Degraded,
                    format!("{running}/{want} tasks running; a task failed{on}: {why}"),
                )
            } else {
                (
                    Health::Progressing,
                    format!("{running}/{want} tasks running"),
                )
            };
            out.push(service_health(svc, &name, health, message));
        }
        (mooring_core::health::worst(&out), out)
    }

    /// The stack's resource tree: each service's health from its tasks, the overlay
    /// networks, and the volumes (there when a node named for the stack, or the
    /// manager, has one).
    pub async fn stack_tree(
        &self,
        project: &Project,
        policy: mooring_core::DataPolicy,
        nodes: &[(String, Provider)],
    ) -> Result<mooring_core::ResourceTree, ProviderError> {
        let live = self.observe_stack(project).await?;
        let (_, services) = self.stack_health(project, &live).await?;
        let mut held = self.app_volumes(&project.name).await.unwrap_or_default();
        for volumes in observe_nodes(nodes, project)
            .await
            .0
            .into_values()
            .flatten()
        {
            held.extend(volumes);
        }
        let mut tree = mooring_core::resource_tree(project, &Live::default(), policy);
        tree.services = services;
        for n in &mut tree.networks {
            n.exists = live.networks.contains(&n.name) || n.external;
            n.driver = n.exists.then(|| "overlay".to_string());
        }
        for v in &mut tree.volumes {
            v.exists = held.contains(&v.name);
        }
        Ok(tree)
    }

    /// Waits for the rolling update Swarm started on service `name` to end, as its
    /// `update_config` runs it (new tasks started and monitored, batch by batch): `Ok`
    /// when it completed (or the change needed none), `Err` with the tasks' errors when
    /// Swarm paused it or rolled it back.
    async fn rolled_out(&self, name: &str, id: &str, before: &str) -> Result<(), ProviderError> {
        let started = Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let service = self.service(name, id).await?;
            let (since, state, message) = update_status(&service);
            if since == before {
                // No rolling update began: the change needed none (replicas, labels).
                if started.elapsed() > std::time::Duration::from_secs(3) {
                    return Ok(());
                }
                continue;
            }
            match state.as_str() {
                "completed" => return Ok(()),
                "paused" | "rollback_completed" | "rollback_paused" => {
                    let errors = self.task_errors(name).await;
                    return Err(ProviderError::Failed(format!(
                        "the update of {name} {}: {message}{errors}",
                        match state.as_str() {
                            "paused" => "was paused by Swarm",
                            _ => "was rolled back by Swarm",
                        }
                    )));
                }
                _ => {}
            }
            if started.elapsed() > std::time::Duration::from_secs(600) {
                return Err(ProviderError::Failed(format!(
                    "the update of {name} is still rolling out after 10 minutes ({state})"
                )));
            }
        }
    }

    /// `; task errors: …` — the distinct errors of the service's failed tasks.
    async fn task_errors(&self, name: &str) -> String {
        let Ok(tasks) = self.tasks(name).await else {
            return String::new();
        };
        let mut errors: Vec<String> = Vec::new();
        for t in &tasks {
            let state = t
                .pointer("/Status/State")
                .and_then(Value::as_str)
                .unwrap_or("");
            let err = t
                .pointer("/Status/Err")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !err.is_empty()
                && matches!(state, "failed" | "rejected" | "shutdown")
                && !errors.iter().any(|e| e == err)
            {
                errors.push(err.to_string());
            }
        }
        if errors.is_empty() {
            String::new()
        } else {
            errors.truncate(3);
            format!("; task errors: {}", errors.join("; "))
        }
    }

    /// A node's host name, as `docker node ls` shows it (its id when it cannot be read).
    async fn node_name(&self, id: &str) -> String {
        match self.swarm_api("GET", &format!("/nodes/{id}"), None).await {
            Ok(node) => node
                .pointer("/Description/Hostname")
                .and_then(Value::as_str)
                .unwrap_or(id)
                .to_string(),
            Err(_) => id.to_string(),
        }
    }

    /// Service `name` (id `id`) as the Engine has it.
    async fn service(&self, name: &str, id: &str) -> Result<Value, ProviderError> {
        self.swarm_api("GET", &format!("/services/{id}"), None)
            .await
            .map_err(|e| ProviderError::Failed(format!("reading service {name}: {e}")))
    }

    /// The tasks of service `name`.
    async fn tasks(&self, name: &str) -> Result<Vec<Value>, ProviderError> {
        let filters = json!({"service": [name]}).to_string();
        let tasks = self
            .swarm_api(
                "GET",
                &format!("/tasks?{}", url_query(&[("filters", &filters)])),
                None,
            )
            .await
            .map_err(|e| ProviderError::Failed(format!("listing the tasks of {name}: {e}")))?;
        Ok(tasks.as_array().cloned().unwrap_or_default())
    }

    /// A call to the Engine's Swarm API with a JSON body, its JSON answer. The stack
    /// speaks the API's JSON as it is: bollard's models lose fields the Engine names
    /// otherwise than its documentation (`Healthcheck`), and would drop them.
    async fn swarm_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        self.swarm_api_as(method, path, body, None).await
    }

    /// [`Self::swarm_api`] with `X-Registry-Auth`: a service created or updated so is
    /// pulled by the nodes with those credentials (as `docker stack deploy
    /// --with-registry-auth` sends them).
    pub(crate) async fn swarm_api_as(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        auth: Option<String>,
    ) -> Result<Value, String> {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = crate::engine_http::Engine::request(method, path)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(auth) = auth {
            request = request.header("X-Registry-Auth", auth);
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(bytes)))
            .map_err(|e| e.to_string())?;
        let (status, body) = self.engine().call(request).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            return Err(format!("{message} ({status})"));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| format!("an unreadable answer: {e}"))
    }

    async fn apply_stack_action(
        &self,
        project: &Project,
        a: &PlannedAction,
        live: &LiveStack,
    ) -> Result<(), ProviderError> {
        let spec_of = |service: &str, name: &str| {
            let svc = project.services.get(service).ok_or_else(|| {
                ProviderError::Failed(format!("service {service} is not in the project"))
            })?;
            with_file_ids(desired(project, svc, live).0, &live.files)
                .map_err(|e| ProviderError::Failed(format!("service {name}: {e}")))
        };
        let auth_of = |service: &str| {
            project
                .services
                .get(service)
                .and_then(|svc| self.registry_auth(&svc.image))
        };
        match &a.action {
            Action::CreateNetwork { network } => {
                let key = project
                    .networks
                    .iter()
                    .find(|(_, n)| n.name == *network)
                    .map(|(k, _)| k.clone())
                    .unwrap_or_default();
                let mut labels = HashMap::from([(NAMESPACE.to_string(), project.name.clone())]);
                labels.insert("com.docker.stack.network".into(), key);
                self.client()
                    .create_network(bollard::network::CreateNetworkOptions {
                        name: network.clone(),
                        driver: "overlay".into(),
                        attachable: true,
                        labels,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        ProviderError::Failed(format!("creating overlay network {network}: {e}"))
                    })
            }
            Action::CreateService { service, name } => self
                .swarm_api_as(
                    "POST",
                    "/services/create",
                    Some(&spec_of(service, name)?),
                    auth_of(service),
                )
                .await
                .map(|_| ())
                .map_err(|e| ProviderError::Failed(format!("creating service {name}: {e}"))),
            Action::UpdateService { service, name, id } => {
                let spec = spec_of(service, name)?;
                // The version read now (Swarm refuses an update from an older one): the
                // repository's spec wins over a hand change made meanwhile, as it would at
                // the next look.
                let current = self.service(name, id).await?;
                let version = current
                    .pointer("/Version/Index")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let before = update_status(&current).0;
                self.swarm_api_as(
                    "POST",
                    &format!("/services/{id}/update?version={version}"),
                    Some(&spec),
                    auth_of(service),
                )
                .await
                .map_err(|e| ProviderError::Failed(format!("updating service {name}: {e}")))?;
                self.rolled_out(name, id, &before).await
            }
            Action::RemoveService { name, id } => self
                .swarm_api("DELETE", &format!("/services/{id}"), None)
                .await
                .map(|_| ())
                .map_err(|e| ProviderError::Failed(format!("removing service {name}: {e}"))),
            Action::CreateSwarmFile { file, name } => {
                let f = swarm_files(project)
                    .remove(&(*file, name.clone()))
                    .and_then(|f| f.content.as_ref().map(|c| (f, c)));
                let Some((f, content)) = f else {
                    return Err(ProviderError::Failed(format!(
                        "{file} {name} is not in the project"
                    )));
                };
                use base64::Engine as _;
                let mut labels: Map<String, Value> = f
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                labels.insert(NAMESPACE.into(), json!(project.name));
                let digest = name.rsplit('_').next().unwrap_or_default();
                labels.insert(DIGEST.into(), json!(digest));
                let body = json!({
                    "Name": name,
                    "Labels": labels,
                    "Data": base64::engine::general_purpose::STANDARD.encode(content),
                });
                self.swarm_api("POST", &format!("/{file}s/create"), Some(&body))
                    .await
                    .map(|_| ())
                    .map_err(|e| ProviderError::Failed(format!("creating {file} {name}: {e}")))
            }
            Action::RemoveSwarmFile { file, name, id } => self
                .swarm_api("DELETE", &format!("/{file}s/{id}"), None)
                .await
                .map(|_| ())
                .map_err(|e| ProviderError::Failed(format!("removing {file} {name}: {e}"))),
            other => Err(ProviderError::Failed(format!(
                "{other} is not part of a stack"
            ))),
        }
    }
}

/// A service's last rolling update: when it began, its state, Swarm's message.
fn update_status(service: &Value) -> (String, String, String) {
    let text = |k: &str| {
        service
            .pointer(&format!("/UpdateStatus/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (text("StartedAt"), text("State"), text("Message"))
}

fn url_query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

fn service_health(svc: &Service, name: &str, health: Health, message: String) -> ResourceHealth {
    ResourceHealth {
        service: svc.name.clone(),
        container: name.to_string(),
        health,
        message,
        state: None,
        image: svc.image.clone(),
        restarts: 0,
        image_id: None,
        ports: Vec::new(),
        volumes: Vec::new(),
        networks: svc.networks.values().map(|n| n.name.clone()).collect(),
    }
}

/// Applies one action of a stack, reporting its start and end.
async fn run(
    provider: &Provider,
    project: &Project,
    a: &PlannedAction,
    (live, options): (&LiveStack, &ReconcileOptions),
    report: &(dyn Fn(Progress<'_>) + Sync),
) -> ActionResult {
    report(Progress::Started(a));
    let start = Instant::now();
    let result = match &a.action {
        Action::RemoveVolume { volume } => {
            let r = match release_on_node(project, options, volume).await {
                Ok(engine) => {
                    let name = volume.split_once('@').map_or(volume.as_str(), |(v, _)| v);
                    crate::provider::Host::remove_volume(engine, name).await
                }
                Err(e) => Err(e),
            };
            ActionResult::ended(a, start, r)
        }
        Action::BackupVolume { volume } => {
            let released = match volume.split_once('@') {
                Some((name, _)) if !declares_volume(project, name) => {
                    release_on_node(project, options, volume).await.err()
                }
                _ => None,
            };
            let r = match released {
                Some(e) => Err(e),
                None => back_up_on_node(project, options, a, volume).await,
            };
            let (r, detail) = match r {
                Ok(detail) => (Ok(()), Some(detail)),
                Err(e) => (Err(e), None),
            };
            ActionResult {
                detail,
                ..ActionResult::ended(a, start, r)
            }
        }
        _ => ActionResult::ended(
            a,
            start,
            provider.apply_stack_action(project, a, live).await,
        ),
    };
    report(Progress::Finished(&result));
    result
}

/// The stack's volumes on each node (its namespace label only: a node may also be a
/// host of standalone apps), or why a node did not answer, asked at once; and the data
/// policy each volume was created with.
async fn observe_nodes(
    nodes: &[(String, Provider)],
    project: &Project,
) -> (
    BTreeMap<String, Result<Vec<String>, String>>,
    BTreeMap<String, DataPolicy>,
) {
    let each = nodes.iter().map(|(name, node)| async move {
        let volumes = node
            .labelled_volumes(NAMESPACE, &project.name)
            .await
            .map_err(|e| format!("node {name} cannot be reached: {e}"));
        (name.clone(), volumes)
    });
    let mut policies = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (node, volumes) in futures_util::future::join_all(each).await {
        let names = volumes.map(|list| {
            list.into_iter()
                .map(|(volume, labels)| {
                    if let Some(p) = labels
                        .get(mooring_core::labels::DATA_POLICY)
                        .and_then(|p| DataPolicy::parse(p))
                    {
                        policies.insert(volume.clone(), p);
                    }
                    volume
                })
                .collect()
        });
        out.insert(node, names);
    }
    (out, policies)
}

/// How long a released volume's tasks may take to stop on their node.
const RELEASE_WAIT: Duration = Duration::from_secs(120);

/// The Engine of `filed`'s node (`VOLUME@NODE`) once no running container there uses
/// the volume (Swarm stops a removed or updated service's tasks after the update
/// returns); the stack's stopped task containers that still name it (Swarm's task
/// history) are removed, as Docker refuses to remove a volume they name. A container
/// of anything else that uses it stays, and the removal then fails, saying which.
async fn release_on_node<'a>(
    project: &Project,
    options: &'a ReconcileOptions,
    filed: &str,
) -> Result<&'a Provider, ProviderError> {
    let (volume, node) = filed
        .split_once('@')
        .ok_or_else(|| ProviderError::Failed(format!("{filed} names no node")))?;
    let engine = node_engine(options, node)?;
    let deadline = Instant::now() + RELEASE_WAIT;
    loop {
        let users = engine
            .containers_where(
                "volume",
                volume.to_string(),
                &format!("containers using volume {volume}"),
            )
            .await?;
        let (running, history): (Vec<_>, Vec<_>) = users
            .into_iter()
            .partition(|c| c.state.as_deref() == Some("running"));
        if running.is_empty() {
            for c in history.iter().filter(|c| {
                c.labels.as_ref().is_some_and(|l| {
                    l.get(NAMESPACE) == Some(&project.name)
                        && l.contains_key("com.docker.swarm.task.id")
                })
            }) {
                if let Some(id) = &c.id {
                    crate::provider::Host::remove_container(engine, id, None).await?;
                }
            }
            return Ok(engine);
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = running.iter().map(crate::provider::summary_name).collect();
            return Err(ProviderError::Failed(format!(
                "volume {volume} on node {node} is still used by {} after {} s; tried again at the next sync",
                names.join(", "),
                RELEASE_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The Engine of node `node` of the Swarm host.
fn node_engine<'a>(
    options: &'a ReconcileOptions,
    node: &str,
) -> Result<&'a Provider, ProviderError> {
    options
        .nodes
        .iter()
        .find(|(n, _)| n == node)
        .map(|(_, p)| p)
        .ok_or_else(|| ProviderError::Failed(format!("node {node} is not a node of this host")))
}

/// Backs up `filed` (`VOLUME@NODE`) through that node's Engine, its writers paused,
/// then applies the retention: the backup's id (and what the retention removed).
async fn back_up_on_node(
    project: &Project,
    options: &ReconcileOptions,
    a: &PlannedAction,
    filed: &str,
) -> Result<String, ProviderError> {
    let Some((volume, node)) = filed.split_once('@') else {
        return Err(ProviderError::Failed(format!("{filed} names no node")));
    };
    let engine = node_engine(options, node)?;
    let dir = options.backups.as_deref().ok_or_else(|| {
        ProviderError::Failed(format!(
            "no backup folder configured; volume {volume} is not touched"
        ))
    })?;
    let meta = mooring_backup::BackupMeta {
        app: options
            .backup_app
            .clone()
            .unwrap_or_else(|| project.name.clone()),
        volume: filed.to_string(),
        revision: options.revision.clone(),
        reason: a.reason.clone(),
        created_at: mooring_core::clock::now_ms(),
        dump: None,
    };
    let (record, _) = engine
        .back_up_volume(volume, dir, meta, crate::volumes::Hold::Pause, &|_| {})
        .await?;
    Ok(crate::reconcile::retained(
        project,
        options,
        dir,
        (volume, filed),
        &record.id,
    ))
}

/// Observes the stack, plans and (unless a dry run) applies, in order; `prepare` runs
/// once the plan has actions, before the first.
pub async fn reconcile(
    provider: &Provider,
    project: &Project,
    options: &ReconcileOptions,
    prepare: &(dyn Fn() -> Result<(), String> + Sync),
    report: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Outcome, crate::reconcile::ReconcileError> {
    if let Some(why) = not_yet_on_swarm(project) {
        return Err(ProviderError::Failed(why).into());
    }
    let manager = match options.swarm_manager {
        Some(known) => known,
        None => provider.swarm_manager().await?,
    };
    if !manager {
        return Err(ProviderError::Failed(format!(
            "{} is not a Swarm manager: a host with mode: swarm must be one (docker swarm init there, or name a manager's address)",
            provider.endpoint()
        ))
        .into());
    }
    // The stack, then its images' digests (see `ReconcileOptions::resolve_images`).
    let mut live = provider.observe_stack(project).await?;
    let asked = project
        .services
        .values()
        .filter(|svc| {
            let spec = live.services.get(&service_name(project, svc));
            options.resolve_images || crate::pin::running(&svc.image, spec.map(|s| &s.2)).is_none()
        })
        .map(|s| s.image.as_str())
        .collect::<Vec<_>>();
    live.images = provider.resolve_images(asked).await;
    // The nodes' volumes: for backups before an update, and for the data policy of
    // those no longer declared.
    let nodes_asked = !options.nodes.is_empty()
        && (options.prune
            || project
                .volumes
                .values()
                .any(|v| v.backup_on_change.unwrap_or(options.backup_on_change)));
    if nodes_asked {
        (live.node_volumes, live.volume_policies) = observe_nodes(&options.nodes, project).await;
    }
    // An external secret or config must be there already: nothing Mooring can make.
    if let Some((kind, name)) = swarm_files(project)
        .into_iter()
        .find(|(key, f)| f.content.is_none() && !live.files.contains_key(key))
        .map(|(key, _)| key)
    {
        return Err(ProviderError::Failed(missing(kind, &name)).into());
    }
    let first = plan(project, &live, options);
    if !options.dry_run
        && options
            .expect_plan
            .as_ref()
            .is_some_and(|d| *d != first.digest())
    {
        return Err(crate::reconcile::ReconcileError::PlanChanged(Box::new(
            first,
        )));
    }
    let mut results = Vec::new();
    if !options.dry_run && !first.actions.is_empty() {
        prepare().map_err(crate::reconcile::ReconcileError::Prepare)?;
        // Networks, secrets and configs first, one by one (and the backups before an
        // update); then the services, which are independent of each other in a stack,
        // all at once (each update waits for its own rollout); then the secrets and
        // configs no service uses, and the volumes no longer declared.
        let is = |a: &&PlannedAction, first: bool| match &a.action {
            Action::CreateNetwork { .. } | Action::CreateSwarmFile { .. } => first,
            Action::BackupVolume { volume } => {
                let name = volume.split_once('@').map_or(volume.as_str(), |(v, _)| v);
                first == declares_volume(project, name)
            }
            Action::RemoveSwarmFile { .. } | Action::RemoveVolume { .. } => !first,
            _ => false,
        };
        let before: Vec<&PlannedAction> = first.actions.iter().filter(|a| is(a, true)).collect();
        let after: Vec<&PlannedAction> = first.actions.iter().filter(|a| is(a, false)).collect();
        let services = first
            .actions
            .iter()
            .filter(|a| !is(a, true) && !is(a, false));
        let ok = |results: &Vec<ActionResult>| results.iter().all(|r| r.error.is_none());
        for a in before {
            results.push(run(provider, project, a, (&live, options), report).await);
            if !ok(&results) {
                break;
            }
        }
        let created = first
            .actions
            .iter()
            .any(|a| matches!(a.action, Action::CreateSwarmFile { .. }));
        if ok(&results) && created {
            live.files = provider.swarm_files(&project.name).await?;
        }
        if ok(&results) {
            let each = services.map(|a| run(provider, project, a, (&live, options), report));
            results.extend(futures_util::future::join_all(each).await);
        }
        for a in after {
            if !ok(&results) {
                break;
            }
            results.push(run(provider, project, a, (&live, options), report).await);
        }
    }
    let after_live = if results.is_empty() {
        live
    } else {
        let mut after = LiveStack {
            images: live.images,
            ..provider.observe_stack(project).await?
        };
        if nodes_asked {
            (after.node_volumes, after.volume_policies) =
                observe_nodes(&options.nodes, project).await;
        }
        after
    };
    let after = plan(project, &after_live, options);
    let health = provider.stack_health(project, &after_live).await?;
    Ok(Outcome {
        plan: first,
        results,
        live: Live::default(),
        after,
        health: Some(health),
    })
}
