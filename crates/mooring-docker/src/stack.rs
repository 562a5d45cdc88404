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

use crate::provider::ProviderError;
use crate::reconcile::{ActionResult, Outcome, Progress, ReconcileOptions};
use crate::Provider;
use mooring_core::desired::{DataPolicy, Project, Service};
use mooring_core::{Action, FileKind, Health, Live, Plan, PlannedAction, ResourceHealth};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

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

/// `<project>_<service>`.
pub fn service_name(project: &Project, svc: &Service) -> String {
    format!("{}_{}", project.name, svc.name)
}

fn nanos(text: &Value) -> Option<u64> {
    mooring_compose::decode::parse_duration(text.as_str()?).map(|d| d.0)
}

/// The label `docker stack deploy` gives a service: the image as the project writes
/// it (its spec may run it pinned to a digest).
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

/// The service's spec as the API takes it (`POST /services/create`), its image as the
/// project writes it.
pub fn spec(project: &Project, svc: &Service) -> Value {
    let deploy = svc.written.deploy.clone().unwrap_or(Value::Null);
    let mut labels = Map::new();
    if let Some(Value::Object(l)) = deploy.get("labels") {
        labels.extend(l.clone());
    }
    // Set last, as `docker stack deploy` sets them: a label of the file cannot take
    // the service out of its stack.
    labels.insert(NAMESPACE.into(), json!(project.name));
    labels.insert(IMAGE_LABEL.into(), json!(svc.image));
    let mut container_labels: Map<String, Value> = svc
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    container_labels.insert(NAMESPACE.into(), json!(project.name));
    let mut env: Vec<String> = svc
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.sort();
    let mut container = Map::new();
    container.insert("Image".into(), json!(svc.image));
    container.insert("Labels".into(), Value::Object(container_labels));
    if let Some(e) = &svc.entrypoint {
        container.insert("Command".into(), json!(e));
    }
    if let Some(c) = &svc.command {
        container.insert("Args".into(), json!(c));
    }
    if !env.is_empty() {
        container.insert("Env".into(), json!(env));
    }
    if let Some(i) = svc.init {
        container.insert("Init".into(), json!(i));
    }
    if let Some(d) = &svc.working_dir {
        container.insert("Dir".into(), json!(d));
    }
    if let Some(u) = &svc.user {
        container.insert("User".into(), json!(u));
    }
    if let Some(h) = &svc.hostname {
        container.insert("Hostname".into(), json!(h));
    }
    if let Some(g) = svc.stop_grace_period {
        container.insert("StopGracePeriod".into(), json!(g.0));
    }
    container_settings(svc, &mut container);
    let mounts = mounts(project, svc);
    if !mounts.is_empty() {
        container.insert("Mounts".into(), json!(mounts));
    }
    // Secrets and configs by name; their ids are the manager's, filled in when sent
    // (`with_file_ids`).
    for (kind, key, name_key) in [
        (FileKind::Secret, "Secrets", "SecretName"),
        (FileKind::Config, "Configs", "ConfigName"),
    ] {
        let refs: Vec<Value> = svc
            .swarm_files
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| {
                json!({
                    "File": {"Name": f.target, "UID": f.uid, "GID": f.gid, "Mode": f.mode},
                    name_key: f.name,
                })
            })
            .collect();
        if !refs.is_empty() {
            container.insert(key.into(), json!(refs));
        }
    }
    if let Some(h) = &svc.healthcheck {
        let mut check = Map::new();
        check.insert("Test".into(), json!(h.test));
        for (key, value) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
        ] {
            if let Some(d) = value {
                check.insert(key.into(), json!(d.0));
            }
        }
        if let Some(r) = h.retries {
            check.insert("Retries".into(), json!(r));
        }
        // The Engine names it so (its documentation and bollard say `HealthCheck`).
        container.insert("Healthcheck".into(), Value::Object(check));
    }
    let networks: Vec<Value> = svc
        .networks
        .values()
        .map(|n| {
            // The service's name, then the aliases written (once each).
            let mut aliases = vec![svc.name.clone()];
            for a in &n.aliases {
                if !aliases.contains(a) {
                    aliases.push(a.clone());
                }
            }
            json!({"Target": n.name, "Aliases": aliases})
        })
        .collect();
    let mut task = Map::new();
    task.insert("ContainerSpec".into(), Value::Object(container));
    if let Some(l) = &svc.settings.logging {
        let mut driver = Map::new();
        if let Some(d) = &l.driver {
            driver.insert("Name".into(), json!(d));
        }
        if !l.options.is_empty() {
            driver.insert("Options".into(), json!(l.options));
        }
        task.insert("LogDriver".into(), Value::Object(driver));
    }
    if !networks.is_empty() {
        task.insert("Networks".into(), json!(networks));
    }
    if let Some(p) = deploy.get("placement") {
        let mut placement = Map::new();
        if let Some(c) = p.get("constraints") {
            placement.insert("Constraints".into(), c.clone());
        }
        if let Some(Value::Array(prefs)) = p.get("preferences") {
            let prefs: Vec<Value> = prefs
                .iter()
                .filter_map(|x| x.get("spread"))
                .map(|s| json!({"Spread": {"SpreadDescriptor": s}}))
                .collect();
            if !prefs.is_empty() {
                placement.insert("Preferences".into(), json!(prefs));
            }
        }
        if let Some(m) = p.get("max_replicas_per_node") {
            placement.insert("MaxReplicas".into(), m.clone());
        }
        task.insert("Placement".into(), Value::Object(placement));
    }
    if let Some(r) = deploy.get("restart_policy") {
        let mut policy = Map::new();
        if let Some(c) = r.get("condition") {
            policy.insert("Condition".into(), c.clone());
        }
        for (from, to) in [("delay", "Delay"), ("window", "Window")] {
            if let Some(n) = r.get(from).and_then(nanos) {
                policy.insert(to.into(), json!(n));
            }
        }
        if let Some(m) = r.get("max_attempts") {
            policy.insert("MaxAttempts".into(), m.clone());
        }
        task.insert("RestartPolicy".into(), Value::Object(policy));
    }
    if let Some(r) = deploy.get("resources") {
        let mut resources = Map::new();
        for (from, to) in [("limits", "Limits"), ("reservations", "Reservations")] {
            let Some(l) = r.get(from) else { continue };
            let mut out = Map::new();
            if let Some(cpus) = l.get("cpus").and_then(|c| match c {
                Value::String(s) => s.parse::<f64>().ok(),
                other => other.as_f64(),
            }) {
                out.insert("NanoCPUs".into(), json!((cpus * 1e9).round() as i64));
            }
            if let Some(m) = l.get("memory").and_then(|m| match m {
                Value::String(s) => s.parse::<i64>().ok(),
                other => other.as_i64(),
            }) {
                out.insert("MemoryBytes".into(), json!(m));
            }
            if let Some(p) = l.get("pids") {
                out.insert("Pids".into(), p.clone());
            }
            resources.insert(to.into(), Value::Object(out));
        }
        task.insert("Resources".into(), Value::Object(resources));
    }
    let mode = match deploy.get("mode").and_then(Value::as_str) {
        Some("global") => json!({"Global": {}}),
        _ => json!({"Replicated": {"Replicas": svc.replicas.0}}),
    };
    let mut out = Map::new();
    out.insert("Name".into(), json!(service_name(project, svc)));
    out.insert("Labels".into(), Value::Object(labels));
    out.insert("TaskTemplate".into(), Value::Object(task));
    out.insert("Mode".into(), mode);
    for (from, to) in [
        ("update_config", "UpdateConfig"),
        ("rollback_config", "RollbackConfig"),
    ] {
        if let Some(u) = deploy.get(from) {
            let mut c = Map::new();
            for (k, api) in [
                ("parallelism", "Parallelism"),
                ("max_failure_ratio", "MaxFailureRatio"),
            ] {
                if let Some(v) = u.get(k) {
                    c.insert(api.into(), v.clone());
                }
            }
            for (k, api) in [("delay", "Delay"), ("monitor", "Monitor")] {
                if let Some(n) = u.get(k).and_then(nanos) {
                    c.insert(api.into(), json!(n));
                }
            }
            for (k, api) in [("failure_action", "FailureAction"), ("order", "Order")] {
                if let Some(v) = u.get(k) {
                    c.insert(api.into(), v.clone());
                }
            }
            out.insert(to.into(), Value::Object(c));
        }
    }
    let ports: Vec<Value> = svc
        .ports
        .iter()
        .map(|p| {
            let mut port =
                json!({"Protocol": p.protocol, "TargetPort": p.target, "PublishMode": "ingress"});
            if let Some(published) = p.published.as_deref().and_then(|x| x.parse::<u16>().ok()) {
                port["PublishedPort"] = json!(published);
            }
            port
        })
        .collect();
    let endpoint_mode = deploy.get("endpoint_mode").cloned();
    if !ports.is_empty() || endpoint_mode.is_some() {
        let mut e = Map::new();
        if let Some(m) = endpoint_mode {
            e.insert("Mode".into(), m);
        }
        if !ports.is_empty() {
            e.insert("Ports".into(), json!(ports));
        }
        out.insert("EndpointSpec".into(), Value::Object(e));
    }
    let mut out = Value::Object(out);
    let hash = mooring_core::hash::sha256_hex(out.to_string().as_bytes());
    out["Labels"][SPEC_HASH] = json!(&hash[..16]);
    out
}

/// The settings of a service's container that a Swarm service takes, as `docker stack
/// deploy` converts them (`extra_hosts` as `IP HOST` lines).
fn container_settings(svc: &Service, container: &mut Map<String, Value>) {
    let set = &svc.settings;
    if let Some(sig) = &svc.stop_signal {
        container.insert("StopSignal".into(), json!(sig));
    }
    if svc.read_only {
        container.insert("ReadOnly".into(), json!(true));
    }
    if set.tty {
        container.insert("TTY".into(), json!(true));
    }
    if set.stdin_open {
        container.insert("OpenStdin".into(), json!(true));
    }
    if !svc.extra_hosts.is_empty() {
        let hosts: Vec<String> = svc
            .extra_hosts
            .iter()
            .filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}")))
            .collect();
        container.insert("Hosts".into(), json!(hosts));
    }
    if !set.group_add.is_empty() {
        container.insert("Groups".into(), json!(set.group_add));
    }
    if !set.sysctls.is_empty() {
        container.insert("Sysctls".into(), json!(set.sysctls));
    }
    if !set.ulimits.is_empty() {
        let ulimits: Vec<Value> = set
            .ulimits
            .iter()
            .map(|(name, u)| json!({"Name": name, "Soft": u.soft, "Hard": u.hard}))
            .collect();
        container.insert("Ulimits".into(), json!(ulimits));
    }
    if !set.dns.is_empty() || !set.dns_search.is_empty() || !set.dns_opt.is_empty() {
        let mut dns = Map::new();
        for (key, values) in [
            ("Nameservers", &set.dns),
            ("Search", &set.dns_search),
            ("Options", &set.dns_opt),
        ] {
            if !values.is_empty() {
                dns.insert(key.into(), json!(values));
            }
        }
        container.insert("DNSConfig".into(), Value::Object(dns));
    }
}

/// The settings a Swarm service has no place for, set in `svc`: `docker stack deploy`
/// ignores them too ("Ignoring unsupported options"); a plan notes them.
fn ignored_on_swarm(svc: &Service) -> Vec<String> {
    const PASSED: [&str; 9] = [
        "stdin_open",
        "tty",
        "sysctls",
        "ulimits",
        "dns",
        "dns_opt",
        "dns_search",
        "logging",
        "group_add",
    ];
    let mut out: Vec<String> = match serde_json::to_value(&svc.settings) {
        Ok(Value::Object(set)) => set
            .keys()
            .filter(|k| !PASSED.contains(&k.as_str()))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    for (on, key) in [
        (svc.container_name.is_some(), "container_name"),
        (!svc.links.is_empty(), "links"),
        (!svc.external_links.is_empty(), "external_links"),
        (
            svc.written.restart.is_some(),
            "restart (deploy.restart_policy applies)",
        ),
    ] {
        if on {
            out.push(key.to_string());
        }
    }
    out
}

/// The spec Mooring sets for `svc`: `spec` with its image pinned to the digest its
/// registry gave (`live.images`), else to the one the service runs now; and why it
/// stays unpinned, if it does.
pub fn desired(project: &Project, svc: &Service, live: &LiveStack) -> (Value, Option<String>) {
    let mut want = spec(project, svc);
    let running = live
        .services
        .get(&service_name(project, svc))
        .map(|(_, _, s)| s);
    let why = crate::pin::pin(&mut want, &svc.image, &live.images, running);
    (want, why)
}

/// `spec` with the manager's id beside each secret's and config's name; an error
/// names one the Swarm does not have.
pub fn with_file_ids(
    mut spec: Value,
    files: &BTreeMap<(FileKind, String), LiveFile>,
) -> Result<Value, String> {
    for (kind, key, name_key, id_key) in [
        (FileKind::Secret, "Secrets", "SecretName", "SecretID"),
        (FileKind::Config, "Configs", "ConfigName", "ConfigID"),
    ] {
        let Some(Value::Array(refs)) =
            spec.pointer_mut(&format!("/TaskTemplate/ContainerSpec/{key}"))
        else {
            continue;
        };
        for r in refs {
            let name = r[name_key].as_str().unwrap_or_default().to_string();
            let id = files
                .get(&(kind, name.clone()))
                .ok_or_else(|| missing(kind, &name))?;
            r[id_key] = json!(id.id);
        }
    }
    Ok(spec)
}

/// What to say of a secret or config the Swarm does not have.
fn missing(kind: FileKind, name: &str) -> String {
    format!("the Swarm has no {kind} {name}: an external one must be made there first (docker {kind} create {name} FILE)")
}

/// The secrets and configs `project` uses, once each by kind and name.
fn swarm_files(project: &Project) -> BTreeMap<(FileKind, String), &mooring_core::SwarmFile> {
    project
        .services
        .values()
        .flat_map(|s| &s.swarm_files)
        .map(|f| ((f.kind, f.name.clone()), f))
        .collect()
}

/// A service's named and anonymous volumes and its tmpfs mounts, as `docker stack
/// deploy` mounts them: a named volume is made by Swarm on each node a task runs on,
/// labelled with the stack, with the project's driver and options.
fn mounts(project: &Project, svc: &Service) -> Vec<Value> {
    let mut out = Vec::new();
    for m in svc
        .mounts
        .iter()
        .filter(|m| m.kind == mooring_core::desired::MountKind::Volume)
    {
        let mut mount = Map::new();
        mount.insert("Type".into(), json!("volume"));
        if !m.source.is_empty() {
            mount.insert("Source".into(), json!(m.source));
        }
        mount.insert("Target".into(), json!(m.target));
        if m.read_only {
            mount.insert("ReadOnly".into(), json!(true));
        }
        let mut options = Map::new();
        if m.volume.as_ref().is_some_and(|v| v.nocopy) {
            options.insert("NoCopy".into(), json!(true));
        }
        if let Some(v) = project
            .volumes
            .values()
            .find(|v| v.name == m.source && !v.external)
        {
            let mut labels: Map<String, Value> = v
                .labels
                .iter()
                .map(|(k, x)| (k.clone(), json!(x)))
                .collect();
            labels.insert(NAMESPACE.into(), json!(project.name));
            // The volume's own data policy, read back on each node once it is no longer
            // declared (as a standalone volume remembers it).
            if let Some(policy) = v.policy {
                labels.insert(
                    mooring_core::labels::DATA_POLICY.into(),
                    json!(policy.as_str()),
                );
            }
            options.insert("Labels".into(), Value::Object(labels));
            if let Some(driver) = &v.driver {
                let mut config = Map::new();
                config.insert("Name".into(), json!(driver));
                if !v.driver_opts.is_empty() {
                    config.insert("Options".into(), json!(v.driver_opts));
                }
                options.insert("DriverConfig".into(), Value::Object(config));
            }
        }
        if !options.is_empty() {
            mount.insert("VolumeOptions".into(), Value::Object(options));
        }
        out.push(Value::Object(mount));
    }
    for t in &svc.tmpfs {
        out.push(json!({"Type": "tmpfs", "Target": t}));
    }
    out
}

/// What a stack does not deploy yet, service by service, in words; `None` when the
/// project has none of it. Refused rather than dropped: a mount left out would put
/// the data in a task's own layer, lost with it.
pub fn not_yet_on_swarm(project: &Project) -> Option<String> {
    let mut out = Vec::new();
    for svc in project.services.values() {
        let mut keys = Vec::new();
        if svc
            .mounts
            .iter()
            .any(|m| m.kind == mooring_core::desired::MountKind::Bind)
        {
            keys.push("bind mounts (a host path is each node's own)");
        }
        if svc.tmpfs.iter().any(|t| t.contains(':')) {
            keys.push("tmpfs options");
        }
        if !svc.inline_files.is_empty() {
            keys.push("files bind-mounted from the repository (give them as configs)");
        }
        let dropped = [
            (
                !svc.post_start.is_empty() || !svc.pre_stop.is_empty(),
                "post_start / pre_stop",
            ),
            (
                svc.networks.values().any(|n| n.ipv4_address.is_some()),
                "network addresses",
            ),
        ];
        keys.extend(dropped.iter().filter(|(on, _)| *on).map(|(_, k)| *k));
        if svc.build.is_some() {
            keys.push("build (Swarm runs images from a registry)");
        }
        if svc.host != mooring_core::host_access::HostAccess::default()
            || !svc.cap_add.is_empty()
            || !svc.cap_drop.is_empty()
        {
            keys.push("host access (privileged, devices, namespaces, cap_add, cap_drop…)");
        }
        if svc
            .ports
            .iter()
            .any(|p| p.host_ip.is_some() || p.published.as_deref().is_some_and(|x| x.contains('-')))
        {
            keys.push("ports with a host address or a range");
        }
        if !keys.is_empty() {
            out.push(format!("service {}: {}", svc.name, keys.join(", ")));
        }
    }
    (!out.is_empty()).then(|| {
        format!(
            "not deployed to a Swarm yet: {}; deploy the app to an engine host, or leave these out for its Swarm host",
            out.join("; ")
        )
    })
}

/// `live` cut to the shape of `shape`: the keys `shape` has, recursively (arrays of
/// objects element by element), so only what Mooring sets is compared.
pub fn shaped_like(shape: &Value, live: &Value) -> Value {
    match (shape, live) {
        (Value::Object(s), Value::Object(l)) => Value::Object(
            s.iter()
                .map(|(k, sv)| {
                    let lv = l.get(k).map_or(Value::Null, |lv| shaped_like(sv, lv));
                    (k.clone(), lv)
                })
                .collect(),
        ),
        // Item by item; another length differs anyway.
        (Value::Array(s), Value::Array(l)) if s.len() == l.len() => Value::Array(
            s.iter()
                .zip(l)
                .map(|(sv, lv)| shaped_like(sv, lv))
                .collect(),
        ),
        (Value::Object(_), _) => Value::Null,
        _ => live.clone(),
    }
}

/// The plan that brings `live` to `project` as a stack: overlay networks, secrets and
/// configs first, then the backups `backup: on-change` asks for (each volume a
/// changing service writes to, on each node that has it), then each service created or
/// updated (with the fields that differ, environment values never printed), then —
/// with `prune` — services of the stack it no longer declares, and the secrets and
/// configs no service uses.
pub fn plan(project: &Project, live: &LiveStack, options: &ReconcileOptions) -> Plan {
    let prune = options.prune;
    let mut actions = Vec::new();
    for n in project.networks.values().filter(|n| !n.external) {
        if !live.networks.contains(&n.name) {
            actions.push(PlannedAction {
                action: Action::CreateNetwork {
                    network: n.name.clone(),
                },
                reason: "network does not exist".into(),
            });
        }
    }
    let wanted = swarm_files(project);
    for ((kind, name), f) in &wanted {
        if f.content.is_some() && !live.files.contains_key(&(*kind, name.clone())) {
            actions.push(PlannedAction {
                action: Action::CreateSwarmFile {
                    file: *kind,
                    name: name.clone(),
                },
                reason: format!("no {kind} holds this content yet"),
            });
        }
    }
    let mut declared = Vec::new();
    let mut unpinned = BTreeMap::new();
    for svc in project.services.values() {
        let name = service_name(project, svc);
        declared.push(name.clone());
        let (want, why) = desired(project, svc, live);
        if let Some(why) = why {
            unpinned.insert(svc.image.clone(), why);
        }
        match live.services.get(&name) {
            None => actions.push(PlannedAction {
                action: Action::CreateService {
                    service: svc.name.clone(),
                    name,
                },
                reason: "service does not exist".into(),
            }),
            Some((id, _, have)) => {
                let have = shaped_like(&want, have);
                if have != want {
                    actions.push(PlannedAction {
                        action: Action::UpdateService {
                            service: svc.name.clone(),
                            name,
                            id: id.clone(),
                        },
                        reason: differences(&have, &want),
                    });
                }
            }
        }
    }
    let mut notes = project.notes.clone();
    notes.extend(
        unpinned
            .into_iter()
            .map(|(image, why)| format!("image {image}: {why}")),
    );
    let changing: Vec<&str> = actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::UpdateService { service, .. } => Some(service.as_str()),
            _ => None,
        })
        .collect();
    let first_service = actions
        .iter()
        .position(|a| {
            matches!(
                a.action,
                Action::CreateService { .. } | Action::UpdateService { .. }
            )
        })
        .unwrap_or(actions.len());
    let backups = backups_on_change(project, live, options, &changing, &mut notes);
    actions.splice(first_service..first_service, backups);
    let mut orphans_kept = Vec::new();
    for (name, (id, _, _)) in &live.services {
        if declared.contains(name) {
            continue;
        }
        if prune {
            actions.push(PlannedAction {
                action: Action::RemoveService {
                    name: name.clone(),
                    id: id.clone(),
                },
                reason: "the stack no longer declares it".into(),
            });
        } else {
            orphans_kept.push(format!("service {name}"));
        }
    }
    // The stack's secrets and configs no service uses any more: those Mooring made
    // for content since replaced always, others (made by hand or by `docker stack
    // deploy`) with `prune`.
    // Those a service of the stack left running (prune off) still uses.
    let kept = |kind: FileKind, name: &str| {
        let (list, key) = match kind {
            FileKind::Secret => ("/TaskTemplate/ContainerSpec/Secrets", "SecretName"),
            FileKind::Config => ("/TaskTemplate/ContainerSpec/Configs", "ConfigName"),
        };
        live.services.iter().any(|(service, (_, _, spec))| {
            !prune
                && !declared.contains(service)
                && spec
                    .pointer(list)
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r[key] == name))
        })
    };
    for ((kind, name), f) in &live.files {
        if !f.stack || wanted.contains_key(&(*kind, name.clone())) || kept(*kind, name) {
            continue;
        }
        if prune || f.by_mooring {
            actions.push(PlannedAction {
                action: Action::RemoveSwarmFile {
                    file: *kind,
                    name: name.clone(),
                    id: f.id.clone(),
                },
                reason: "no service of the stack uses it any more".into(),
            });
        } else {
            orphans_kept.push(format!("{kind} {name}"));
        }
    }
    actions.extend(released_volumes(project, live, options, &mut notes));
    for svc in project.services.values() {
        let ignored = ignored_on_swarm(svc);
        if !ignored.is_empty() {
            notes.push(format!(
                "service {}: {} ignored on a Swarm (a Swarm service has no place for it; docker stack deploy ignores it too)",
                svc.name,
                ignored.join(", ")
            ));
        }
    }
    Plan {
        app: project.name.clone(),
        actions,
        orphans_kept,
        notes,
    }
}

/// `backup: on-change` on a Swarm: each volume (its `x-mooring` backup, else the
/// app's) that a service being updated writes to, backed up on each node that has it
/// (`VOLUME@NODE`) before the update. A node that did not answer is noted: its copy of
/// the volume (if any) is not backed up, and the update goes on.
fn backups_on_change(
    project: &Project,
    live: &LiveStack,
    options: &ReconcileOptions,
    changing: &[&str],
    notes: &mut Vec<String>,
) -> Vec<PlannedAction> {
    let mut out = Vec::new();
    for vol in project.volumes.values() {
        if !vol.backup_on_change.unwrap_or(options.backup_on_change) {
            continue;
        }
        let writers: Vec<&str> = changing
            .iter()
            .copied()
            .filter(|s| {
                project.services.get(*s).is_some_and(|svc| {
                    svc.mounts.iter().any(|m| {
                        m.kind == mooring_core::desired::MountKind::Volume
                            && m.source == vol.name
                            && !m.read_only
                    })
                })
            })
            .collect();
        if writers.is_empty() {
            continue;
        }
        for (node, volumes) in &live.node_volumes {
            match volumes {
                Ok(v) if v.contains(&vol.name) => out.push(PlannedAction {
                    action: Action::BackupVolume {
                        volume: format!("{}@{node}", vol.name),
                    },
                    reason: format!(
                        "backup: on-change — service {} changes: a verified backup first, on node {node} (its tasks writing to it are paused for the copy)",
                        writers.join(", ")
                    ),
                }),
                Ok(_) => {}
                Err(why) => notes.push(format!(
                    "volume {} on node {node} is not backed up before this update: {why}",
                    vol.name
                )),
            }
        }
    }
    out
}

/// The data policy on each node: a volume of the stack the project no longer declares,
/// on a node named for the Swarm host, is kept under `protect` (noted), and under
/// `backup-then-delete` with prune backed up there (`VOLUME@NODE`, verified) and only
/// then removed there — both after the services that used it are gone (see
/// [`release_on_node`]). A node that did not answer is noted: nothing of its is removed.
fn released_volumes(
    project: &Project,
    live: &LiveStack,
    options: &ReconcileOptions,
    notes: &mut Vec<String>,
) -> Vec<PlannedAction> {
    let mut out = Vec::new();
    for (node, volumes) in &live.node_volumes {
        let volumes = match volumes {
            Ok(v) => v,
            Err(why) => {
                notes.push(format!("volumes on node {node} not checked: {why}"));
                continue;
            }
        };
        for name in volumes.iter().filter(|v| !declares_volume(project, v)) {
            let policy = live
                .volume_policies
                .get(name)
                .copied()
                .unwrap_or(options.volume_policy);
            match (policy, options.prune) {
                (DataPolicy::BackupThenDelete, true) => {
                    let filed = format!("{name}@{node}");
                    out.push(PlannedAction {
                        action: Action::BackupVolume { volume: filed.clone() },
                        reason: format!("no longer declared; data policy backup-then-delete: a verified backup first, on node {node}, once no task uses it"),
                    });
                    out.push(PlannedAction {
                        action: Action::RemoveVolume { volume: filed },
                        reason: format!("no longer declared; removed on node {node} only after its backup verified"),
                    });
                }
                (DataPolicy::BackupThenDelete, false) => notes.push(format!(
                    "volume {name} on node {node} is no longer declared; kept (backup-then-delete removes it only with prune)"
                )),
                (DataPolicy::Protect, _) => notes.push(format!(
                    "volume {name} on node {node} is no longer declared; kept (protected: volumes are data and are never removed by sync)"
                )),
            }
        }
    }
    out
}

/// Whether the project declares the volume named `name` (as Docker names it).
fn declares_volume(project: &Project, name: &str) -> bool {
    project.volumes.values().any(|v| v.name == name)
        || project
            .services
            .values()
            .flat_map(|s| &s.mounts)
            .any(|m| m.kind == mooring_core::desired::MountKind::Volume && m.source == name)
}

/// `Mode.Replicated.Replicas: 1 → 3, TaskTemplate.ContainerSpec.Env changed`.
fn differences(have: &Value, want: &Value) -> String {
    let mut out = Vec::new();
    collect(have, want, "", &mut out);
    // The spec's fingerprint moves with any change; say so only when nothing else
    // shows (a setting the repository no longer sets is removed).
    let hash = format!("Labels.{SPEC_HASH}");
    let rest: Vec<String> = out
        .iter()
        .filter(|d| !d.starts_with(&hash))
        .cloned()
        .collect();
    if rest.is_empty() {
        "a setting the repository no longer sets is removed".into()
    } else {
        rest.join(", ")
    }
}

/// Paths whose values a plan prints (see `collect`).
const SHOWN: [&str; 9] = [
    "Mode",
    "UpdateConfig",
    "RollbackConfig",
    "EndpointSpec",
    "TaskTemplate.Placement",
    "TaskTemplate.Resources",
    "TaskTemplate.RestartPolicy",
    "TaskTemplate.ContainerSpec.Image",
    "TaskTemplate.Networks",
];

/// The label holding a fingerprint of the spec Mooring sent: a setting the repository
/// stops setting changes it, so the service is updated (the comparison itself only
/// looks at what the repository sets).
pub const SPEC_HASH: &str = "io.mooring.spec-hash";

fn collect(have: &Value, want: &Value, path: &str, out: &mut Vec<String>) {
    if have == want {
        return;
    }
    let short = |v: &Value| {
        let s = v.to_string();
        if s.len() > 60 {
            format!(
                "{}…",
                &s[..s.char_indices().nth(60).map_or(s.len(), |(i, _)| i)]
            )
        } else {
            s
        }
    };
    match (have, want) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, w) in b {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect(a.get(k).unwrap_or(&Value::Null), w, &p, out);
            }
        }
        // The settings of the stack's own shape (replicas, rollout, placement,
        // resources, ports, image) are printed; anything a person writes values into
        // (environment, command, labels, health check, volume options) may hold a
        // secret: named, never printed.
        _ if SHOWN.iter().any(|p| path.starts_with(p)) => {
            out.push(format!("{path}: {} → {}", short(have), short(want)))
        }
        _ => out.push(format!("{path} changed")),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn project(compose: &str) -> Project {
        load(compose, true).unwrap()
    }

    fn opts(prune: bool) -> ReconcileOptions {
        ReconcileOptions {
            prune,
            ..ReconcileOptions::default()
        }
    }

    fn load(compose: &str, swarm: bool) -> Result<Project, mooring_compose::LoadError> {
        load_with(compose, &[], swarm)
    }

    /// `compose` beside `files` (path, content).
    fn load_with(
        compose: &str,
        files: &[(&str, &str)],
        swarm: bool,
    ) -> Result<Project, mooring_compose::LoadError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        for (path, content) in files {
            std::fs::write(dir.path().join(path), content).unwrap();
        }
        mooring_compose::load(&mooring_compose::LoadOptions {
            project_dir: dir.path().to_path_buf(),
            snapshot_root: dir.path().to_path_buf(),
            project_name: Some("shop".into()),
            swarm,
            ..Default::default()
        })
    }

    #[test]
    fn a_global_service_runs_on_every_node_of_a_swarm_only() {
        let compose = "services:\n  agent:\n    image: x\n    deploy: { mode: global, placement: { constraints: [\"node.role == worker\"] } }\n";
        let p = load(compose, true).unwrap();
        let s = spec(&p, &p.services["agent"]);
        assert_eq!(s["Mode"], json!({"Global": {}}));
        assert!(
            p.notes.iter().all(|n| !n.contains("ignored")),
            "{:?}",
            p.notes
        );
        // On a single Engine Compose refuses it, as before.
        let e = load(compose, false).unwrap_err().to_string();
        assert!(e.contains("\"global\" needs Docker Swarm"), "{e}");
    }

    #[test]
    fn an_image_runs_pinned_to_its_registrys_digest_and_a_moved_tag_rolls_out() {
        // (Labels of the file cannot take the stack's own.)
        let p = project("services:\n  web:\n    image: reg:5000/web:1\n    deploy: { labels: { com.docker.stack.namespace: other, com.docker.stack.image: x } }\n");
        let resolved = |r: Result<&str, &str>| {
            crate::pin::Resolved::from([(
                "reg:5000/web:1".to_string(),
                r.map(|d| crate::pin::Pin {
                    digest: d.into(),
                    platforms: vec![json!({"Architecture": "amd64", "OS": "linux"})],
                })
                .map_err(str::to_string),
            )])
        };
        let mut live = LiveStack {
            networks: vec!["shop_default".into()],
            images: resolved(Ok("sha256:one")),
            ..LiveStack::default()
        };
        let (running, why) = desired(&p, &p.services["web"], &live);
        assert_eq!(why, None);
        assert_eq!(
            running["TaskTemplate"]["ContainerSpec"]["Image"],
            "reg:5000/web:1@sha256:one"
        );
        assert_eq!(running["Labels"][IMAGE_LABEL], "reg:5000/web:1");
        assert_eq!(running["Labels"][NAMESPACE], "shop");
        live.services
            .insert("shop_web".into(), ("id1".into(), 3, running.clone()));
        assert!(plan(&p, &live, &opts(true)).actions.is_empty());
        // The tag moved in the registry: a rolling update, saying so.
        live.images = resolved(Ok("sha256:two"));
        let moved = plan(&p, &live, &opts(true));
        assert_eq!(moved.actions.len(), 1, "{moved:?}");
        assert!(
            moved.actions[0].reason.contains(
                "TaskTemplate.ContainerSpec.Image: \"reg:5000/web:1@sha256:one\" → \"reg:5000/web:1@sha256:two\""
            ),
            "{moved:?}"
        );
        // The registry does not answer: the digest running is kept, and noted.
        live.images = resolved(Err("connection refused"));
        let down = plan(&p, &live, &opts(true));
        assert!(down.actions.is_empty(), "{down:?}");
        assert!(
            down.notes
                .iter()
                .any(|n| n.starts_with("image reg:5000/web:1: ")
                    && n.contains("connection refused")
                    && n.contains("kept")),
            "{:?}",
            down.notes
        );
    }

    #[test]
    fn a_service_spec_is_what_stack_deploy_sends_and_swarm_s_own_fields_are_no_drift() {
        let p = project(
            "services:\n  web:\n    image: nginx:1\n    command: [nginx, -g, daemon off;]\n    environment: { TOKEN: s3cret }\n    ports: [\"8080:80\"]\n    deploy:\n      replicas: 2\n      labels: { tier: front }\n      update_config: { parallelism: 1, delay: 10s, order: start-first, failure_action: rollback }\n      restart_policy: { condition: on-failure, max_attempts: 3 }\n      placement: { constraints: [\"node.role == worker\"], max_replicas_per_node: 1 }\n      resources: { limits: { cpus: \"0.5\", memory: 64M } }\n",
        );
        let svc = &p.services["web"];
        let s = spec(&p, svc);
        assert_eq!(s["Name"], "shop_web");
        assert_eq!(s["Labels"][NAMESPACE], "shop");
        assert_eq!(s["Labels"]["tier"], "front");
        assert_eq!(s["Labels"][IMAGE_LABEL], "nginx:1");
        assert_eq!(s["Mode"]["Replicated"]["Replicas"], 2);
        assert_eq!(
            s["TaskTemplate"]["ContainerSpec"]["Args"],
            json!(["nginx", "-g", "daemon off;"])
        );
        assert_eq!(s["TaskTemplate"]["Networks"][0]["Target"], "shop_default");
        assert_eq!(
            s["UpdateConfig"],
            json!({"Parallelism": 1, "Delay": 10_000_000_000u64, "FailureAction": "rollback", "Order": "start-first"})
        );
        assert_eq!(s["TaskTemplate"]["Placement"]["MaxReplicas"], 1);
        assert_eq!(
            s["TaskTemplate"]["Resources"]["Limits"],
            json!({"NanoCPUs": 500_000_000, "MemoryBytes": 67_108_864})
        );
        assert_eq!(
            s["EndpointSpec"]["Ports"][0],
            json!({"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 8080})
        );
        // The API takes it.
        let _: bollard::models::ServiceSpec = serde_json::from_value(s.clone()).unwrap();

        // Live as Swarm keeps it: fields of its own added, nothing of ours changed.
        let mut have = s.clone();
        have["TaskTemplate"]["ContainerSpec"]["Isolation"] = json!("default");
        have["TaskTemplate"]["ForceUpdate"] = json!(0);
        have["EndpointSpec"]["Ports"][0]["Name"] = json!("");
        let live = LiveStack {
            services: BTreeMap::from([(
                "shop_web".to_string(),
                ("id1".to_string(), 7, have.clone()),
            )]),
            networks: vec!["shop_default".into()],
            ..LiveStack::default()
        };
        assert!(
            plan(&p, &live, &opts(true)).actions.is_empty(),
            "{:?}",
            plan(&p, &live, &opts(true))
        );

        // Scaled by hand, and its environment changed: named, the value never shown.
        have["Mode"]["Replicated"]["Replicas"] = json!(5);
        have["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["TOKEN=other"]);
        let live = LiveStack {
            services: BTreeMap::from([
                ("shop_web".to_string(), ("id1".to_string(), 7, have)),
                ("shop_old".to_string(), ("id2".to_string(), 1, json!({}))),
            ]),
            networks: vec![],
            ..LiveStack::default()
        };
        let planned = plan(&p, &live, &opts(true));
        let text: Vec<String> = planned
            .actions
            .iter()
            .map(|a| format!("{} — {}", a.action, a.reason))
            .collect();
        assert_eq!(
            text,
            [
                "create network shop_default — network does not exist",
                "update service shop_web — TaskTemplate.ContainerSpec.Env changed, Mode.Replicated.Replicas: 5 → 2",
                "remove service shop_old — the stack no longer declares it",
            ]
        );
        assert!(!format!("{planned:?}").contains("s3cret"));
        // What a stack does not deploy yet is refused, not dropped.
        assert_eq!(not_yet_on_swarm(&p), None);
        let v = project("services:\n  db:\n    image: x\n    volumes: [\"/srv:/d\"]\n");
        assert_eq!(
            not_yet_on_swarm(&v).unwrap(),
            "not deployed to a Swarm yet: service db: bind mounts (a host path is each node's own); deploy the app to an engine host, or leave these out for its Swarm host"
        );
        // A named volume is made on each node by Swarm, labelled with the stack.
        let v = project("services:\n  db:\n    image: x\n    volumes: [\"data:/d:ro\", \"/cache\"]\n    tmpfs: [/run]\nvolumes:\n  data: { labels: { keep: \"yes\" } }\n");
        assert_eq!(not_yet_on_swarm(&v), None);
        assert_eq!(
            spec(&v, &v.services["db"])["TaskTemplate"]["ContainerSpec"]["Mounts"],
            json!([
                {"Type": "volume", "Source": "shop_data", "Target": "/d", "ReadOnly": true, "VolumeOptions": {"Labels": {"keep": "yes", NAMESPACE: "shop"}}},
                // Mooring names an anonymous volume (as on an Engine): one per node.
                {"Type": "volume", "Source": "shop_db_anon_4f7cfe6fcd42", "Target": "/cache", "VolumeOptions": {"Labels": {NAMESPACE: "shop"}}},
                {"Type": "tmpfs", "Target": "/run"}
            ])
        );
        assert_eq!(
            plan(&p, &live, &opts(false)).orphans_kept,
            ["service shop_old"]
        );

        // A setting the repository stops setting: the spec's fingerprint moved, so the
        // service is updated though every field it still sets is as it was.
        let old = project("services:\n  web:\n    image: nginx:1\n    command: [a]\n    volumes: [\"data:/d\"]\n    tmpfs: [/run]\nvolumes:\n  data: {}\n");
        let new = project("services:\n  web:\n    image: nginx:1\n    volumes: [\"data:/d\"]\n    tmpfs: [/run]\nvolumes:\n  data: {}\n");
        let live = LiveStack {
            services: BTreeMap::from([(
                "shop_web".to_string(),
                ("id1".to_string(), 3, spec(&old, &old.services["web"])),
            )]),
            networks: vec!["shop_default".into()],
            ..LiveStack::default()
        };
        let planned = plan(&new, &live, &opts(true));
        assert_eq!(planned.actions.len(), 1, "{planned:?}");
        assert_eq!(
            planned.actions[0].reason,
            "a setting the repository no longer sets is removed"
        );
        // Mounts of several kinds compare item by item: no drift.
        assert!(plan(&old, &live, &opts(true)).actions.is_empty());
    }

    #[test]
    fn secrets_and_configs_are_swarm_objects_named_after_their_content() {
        let compose = "services:\n  web:\n    image: x\n    secrets: [db, { source: token, target: /etc/token, uid: \"100\", mode: 0400 }]\n    configs: [site]\nsecrets:\n  db: { file: ./db.txt, labels: { team: a } }\n  token: { external: true, name: prod_token }\nconfigs:\n  site: { content: \"listen 80\" }\n";
        let p = load_with(compose, &[("db.txt", "hunter2")], true).unwrap();
        let db = format!(
            "shop_db_{}",
            &mooring_core::hash::sha256_hex(b"hunter2")[..12]
        );
        let site = format!(
            "shop_site_{}",
            &mooring_core::hash::sha256_hex(b"listen 80")[..12]
        );
        let s = spec(&p, &p.services["web"]);
        assert_eq!(
            s["TaskTemplate"]["ContainerSpec"]["Secrets"],
            json!([
                {"File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": db},
                {"File": {"Name": "/etc/token", "UID": "100", "GID": "0", "Mode": 0o400}, "SecretName": "prod_token"},
            ])
        );
        assert_eq!(
            s["TaskTemplate"]["ContainerSpec"]["Configs"],
            json!([{"File": {"Name": "/site", "UID": "0", "GID": "0", "Mode": 0o444}, "ConfigName": site}])
        );
        assert!(!s.to_string().contains("hunter2"));
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(not_yet_on_swarm(&p), None);

        // Nothing there yet: the two made before the service; the external one is not
        // Mooring's to make, and the service cannot be sent without it.
        let planned = plan(&p, &LiveStack::default(), &opts(true));
        let text: Vec<String> = planned
            .actions
            .iter()
            .map(|a| a.action.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "create network shop_default".to_string(),
                format!("create secret {db}"),
                format!("create config {site}"),
                "create service shop_web".to_string(),
            ]
        );
        let file = |id: &str, stack: bool, by_mooring: bool| LiveFile {
            id: id.into(),
            stack,
            by_mooring,
        };
        let mut files = BTreeMap::from([
            ((FileKind::Secret, db.clone()), file("s1", true, true)),
            ((FileKind::Config, site.clone()), file("c1", true, true)),
        ]);
        let e = with_file_ids(s.clone(), &files).unwrap_err();
        assert!(e.contains("the Swarm has no secret prod_token"), "{e}");
        files.insert(
            (FileKind::Secret, "prod_token".into()),
            file("s2", false, false),
        );
        let sent = with_file_ids(s.clone(), &files).unwrap();
        assert_eq!(
            sent["TaskTemplate"]["ContainerSpec"]["Secrets"][1]["SecretID"],
            "s2"
        );
        assert_eq!(
            sent["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigID"],
            "c1"
        );

        // Running as sent (ids and all): no drift.
        let live = LiveStack {
            services: BTreeMap::from([("shop_web".to_string(), ("id1".to_string(), 2, sent))]),
            networks: vec!["shop_default".into()],
            files: files.clone(),
            ..LiveStack::default()
        };
        assert!(plan(&p, &live, &opts(false)).actions.is_empty());

        // New content: a new secret, the service moved onto it, the old one removed
        // (Mooring's, even without prune); a hand-made one of the stack is kept.
        let q = load_with(compose, &[("db.txt", "hunter3")], true).unwrap();
        let db3 = format!(
            "shop_db_{}",
            &mooring_core::hash::sha256_hex(b"hunter3")[..12]
        );
        let mut live = live;
        live.files.insert(
            (FileKind::Secret, "shop_manual".into()),
            file("s9", true, false),
        );
        let planned = plan(&q, &live, &opts(false));
        let text: Vec<String> = planned
            .actions
            .iter()
            .map(|a| format!("{} — {}", a.action, a.reason))
            .collect();
        assert_eq!(
            text,
            [
                format!("create secret {db3} — no secret holds this content yet"),
                "update service shop_web — TaskTemplate.ContainerSpec.Secrets changed".to_string(),
                format!("remove secret {db} — no service of the stack uses it any more"),
            ]
        );
        assert_eq!(planned.orphans_kept, ["secret shop_manual"]);
        assert!(!format!("{planned:?}").contains("hunter"));
    }

    #[test]
    fn a_swarm_file_comes_from_the_repository_and_fits_in_swarm() {
        let absolute = "services:\n  web:\n    image: x\n    secrets: [db]\nsecrets:\n  db: { file: /etc/hostname }\n";
        let e = load(absolute, true).unwrap_err().to_string();
        assert!(e.contains("compose.yaml:6:15: secrets.db.file: the file /etc/hostname is outside the repository; on a Swarm"), "{e}");
        let big = "x".repeat(600 << 10);
        let e = load_with(
            "services:\n  web:\n    image: x\n    secrets: [db]\nsecrets:\n  db: { file: ./big }\n",
            &[("big", &big)],
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("secrets.db holds 614400 bytes; Swarm takes at most 500 KiB"),
            "{e}"
        );
        // External ones and labels are a Swarm's; on an Engine, refused as before.
        let external = "services:\n  web:\n    image: x\n    secrets: [db]\nsecrets:\n  db: { external: true }\n";
        let e = load(external, false).unwrap_err().to_string();
        assert!(
            e.contains("external secrets exist in a Docker Swarm only"),
            "{e}"
        );
        let p = load(external, true).unwrap();
        assert_eq!(p.services["web"].swarm_files[0].name, "db");
        assert!(p.services["web"].swarm_files[0].content.is_none());
        let e = load(
            "services:\n  web:\n    image: x\nsecrets:\n  db: { external: true, file: ./x }\n",
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("an external one has no `file`"), "{e}");
    }

    #[test]
    fn container_settings_a_service_takes_are_passed_and_the_others_noted() {
        let p = project("services:\n  web:\n    image: x\n    read_only: true\n    stop_signal: SIGINT\n    tty: true\n    stdin_open: true\n    extra_hosts: [\"db:10.0.0.5\", \"v6:::1\"]\n    group_add: [\"100\"]\n    sysctls: { net.core.somaxconn: \"1024\" }\n    ulimits: { nofile: { soft: 1024, hard: 2048 }, nproc: 512 }\n    dns: [1.1.1.1]\n    dns_search: [example.org]\n    logging: { driver: json-file, options: { max-size: 1m } }\n    shm_size: 64m\n    expose: [\"80\"]\n    restart: always\n");
        let s = spec(&p, &p.services["web"]);
        let c = &s["TaskTemplate"]["ContainerSpec"];
        assert_eq!(c["ReadOnly"], true);
        assert_eq!(c["StopSignal"], "SIGINT");
        assert_eq!(
            (c["TTY"].clone(), c["OpenStdin"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(c["Hosts"], json!(["10.0.0.5 db", "::1 v6"]));
        assert_eq!(c["Groups"], json!(["100"]));
        assert_eq!(c["Sysctls"], json!({"net.core.somaxconn": "1024"}));
        assert_eq!(
            c["Ulimits"],
            json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 512, "Hard": 512}])
        );
        assert_eq!(
            c["DNSConfig"],
            json!({"Nameservers": ["1.1.1.1"], "Search": ["example.org"]})
        );
        assert_eq!(
            s["TaskTemplate"]["LogDriver"],
            json!({"Name": "json-file", "Options": {"max-size": "1m"}})
        );
        // The API takes it.
        let _: bollard::models::ServiceSpec = serde_json::from_value(s.clone()).unwrap();
        assert_eq!(not_yet_on_swarm(&p), None);
        // What a service has no place for is noted in every plan, as stack deploy warns.
        let planned = plan(&p, &LiveStack::default(), &opts(false));
        assert!(
            planned.notes.contains(&"service web: expose, shm_size, restart (deploy.restart_policy applies) ignored on a Swarm (a Swarm service has no place for it; docker stack deploy ignores it too)".to_string()),
            "{:?}",
            planned.notes
        );
        let plain = project("services:\n  web:\n    image: x\n");
        assert!(plan(&plain, &LiveStack::default(), &opts(false))
            .notes
            .is_empty());
    }

    #[test]
    fn backup_on_change_backs_a_volume_up_on_each_node_before_its_writer_changes() {
        let old = project("services:\n  db:\n    image: x:1\n    volumes: [\"data:/d\"]\n  ro:\n    image: x:1\n    volumes: [\"data:/d:ro\"]\nvolumes:\n  data: {}\n");
        let new = project("services:\n  db:\n    image: x:2\n    volumes: [\"data:/d\"]\n  ro:\n    image: x:2\n    volumes: [\"data:/d:ro\"]\nvolumes:\n  data: {}\n");
        let live = LiveStack {
            services: ["db", "ro"]
                .iter()
                .map(|s| {
                    let name = format!("shop_{s}");
                    (name, ("id".to_string(), 1, spec(&old, &old.services[*s])))
                })
                .collect(),
            networks: vec!["shop_default".into()],
            node_volumes: BTreeMap::from([
                ("n1".to_string(), Ok(vec!["shop_data".to_string()])),
                ("n2".to_string(), Ok(vec![])),
                (
                    "n3".to_string(),
                    Err("node n3 cannot be reached: refused".to_string()),
                ),
            ]),
            ..LiveStack::default()
        };
        let on_change = ReconcileOptions {
            backup_on_change: true,
            ..opts(false)
        };
        let planned = plan(&new, &live, &on_change);
        let text: Vec<String> = planned
            .actions
            .iter()
            .map(|a| a.action.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "back up volume shop_data@n1",
                "update service shop_db",
                "update service shop_ro"
            ]
        );
        assert!(
            planned.actions[0]
                .reason
                .starts_with("backup: on-change — service db changes"),
            "{:?}",
            planned.actions[0]
        );
        assert!(
            planned.notes.contains(&"volume shop_data on node n3 is not backed up before this update: node n3 cannot be reached: refused".to_string()),
            "{:?}",
            planned.notes
        );
        // Without the policy, or with nothing changing, no backup.
        assert!(plan(&new, &live, &opts(false))
            .actions
            .iter()
            .all(|a| !matches!(a.action, Action::BackupVolume { .. })));
        assert!(plan(&old, &live, &on_change).actions.is_empty());
    }

    #[test]
    fn a_volume_no_longer_declared_follows_the_data_policy_on_each_node() {
        let new = project("services:\n  web:\n    image: x:1\n");
        let live = LiveStack {
            services: BTreeMap::from([(
                "shop_web".to_string(),
                ("id".to_string(), 1, spec(&new, &new.services["web"])),
            )]),
            networks: vec!["shop_default".into()],
            node_volumes: BTreeMap::from([
                (
                    "n1".to_string(),
                    Ok(vec!["shop_data".to_string(), "shop_keep".to_string()]),
                ),
                ("n2".to_string(), Ok(vec![])),
                (
                    "n3".to_string(),
                    Err("node n3 cannot be reached: refused".to_string()),
                ),
            ]),
            // Created with `x-mooring: { data: protect }`: its own policy wins.
            volume_policies: BTreeMap::from([("shop_keep".to_string(), DataPolicy::Protect)]),
            ..LiveStack::default()
        };
        let policy = |volume_policy, prune| ReconcileOptions {
            volume_policy,
            ..opts(prune)
        };
        let text =
            |p: &Plan| -> Vec<String> { p.actions.iter().map(|a| a.action.to_string()).collect() };
        // backup-then-delete with prune: backed up there, then removed there.
        let deleted = plan(&new, &live, &policy(DataPolicy::BackupThenDelete, true));
        assert_eq!(
            text(&deleted),
            ["back up volume shop_data@n1", "remove volume shop_data@n1"]
        );
        assert!(deleted
            .notes
            .iter()
            .any(|n| n.contains("volumes on node n3 not checked")));
        assert!(
            deleted.notes.iter().any(|n| n
                .starts_with("volume shop_keep on node n1 is no longer declared; kept (protected")),
            "{:?}",
            deleted.notes
        );
        // Without prune, or protected: kept, and the plan says so.
        for (p, kept) in [
            (
                policy(DataPolicy::BackupThenDelete, false),
                "removes it only with prune",
            ),
            (policy(DataPolicy::Protect, true), "kept (protected"),
        ] {
            let planned = plan(&new, &live, &p);
            assert!(planned.actions.is_empty(), "{:?}", planned.actions);
            assert!(
                planned.notes.iter().any(|n| n
                    .starts_with("volume shop_data on node n1 is no longer declared")
                    && n.contains(kept)),
                "{:?}",
                planned.notes
            );
        }
    }
}
