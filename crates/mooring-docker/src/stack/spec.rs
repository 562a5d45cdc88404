//! A stack service's desired spec, as `docker stack deploy` builds it: the API's JSON
//! for `POST /services/create` from a Compose service (`spec`; pure), its image pinned
//! (`desired`), its secrets' and configs' ids filled in (`with_file_ids`), and what a
//! Swarm service has no place for (noted) or cannot run yet (refused).

use mooring_core::desired::{Project, Service};
use mooring_core::FileKind;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use super::{LiveFile, LiveStack, NAMESPACE};

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

/// The label holding a fingerprint of the spec Mooring sent: a setting the repository
/// stops setting changes it, so the service is updated (the comparison itself only
/// looks at what the repository sets).
pub const SPEC_HASH: &str = "io.mooring.spec-hash";

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
pub(super) fn ignored_on_swarm(svc: &Service) -> Vec<String> {
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
pub(super) fn missing(kind: FileKind, name: &str) -> String {
    format!("the Swarm has no {kind} {name}: an external one must be made there first (docker {kind} create {name} FILE)")
}

/// The secrets and configs `project` uses, once each by kind and name.
pub(super) fn swarm_files(
    project: &Project,
) -> BTreeMap<(FileKind, String), &mooring_core::SwarmFile> {
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
