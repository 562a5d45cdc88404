//! One service, decoded: [`SERVICE_KEYS`] checked, then one short function per part,
//! each in its own module (ports, mounts, networks, …); the simple scalar keys are read
//! here. A new Compose key gets its line in `SERVICE_KEYS` and a part (or a scalar
//! line) below.

mod build;
mod command;
mod depends_on;
mod environment;
mod healthcheck;
mod hooks;
mod host_access;
mod lifecycle;
mod mounts;
mod networks;
mod ports;
mod resources;
mod security;
mod settings;

use super::Decoder;
use crate::decode::*;
use crate::error::LoadError;
use crate::yaml::{Node, Value};
use mooring_core::{Network, Service, Volume};
use std::collections::BTreeMap;

/// Every key a service may have; anything else is an error with its position.
const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "volumes",
    "networks",
    "labels",
    "restart",
    "healthcheck",
    "depends_on",
    "working_dir",
    "user",
    "hostname",
    "stop_grace_period",
    "stop_signal",
    "tmpfs",
    "read_only",
    "cap_add",
    "cap_drop",
    "extra_hosts",
    "init",
    "pull_policy",
    "deploy",
    "container_name",
    "expose",
    "stdin_open",
    "tty",
    "sysctls",
    "ulimits",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "logging",
    "pids_limit",
    "shm_size",
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "cpus",
    "cpu_shares",
    "runtime",
    "group_add",
    "security_opt",
    "oom_score_adj",
    "oom_kill_disable",
    "mem_swappiness",
    "cpu_quota",
    "cpu_period",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "cpuset",
    "storage_opt",
    "mac_address",
    "cgroup_parent",
    "platform",
    "attach",
    "profiles",
    "links",
    "external_links",
    "secrets",
    "configs",
    "extends",
    "scale",
    "develop",
    "post_start",
    "pre_stop",
    "annotations",
];

impl Decoder<'_> {
    pub(super) fn service(
        &mut self,
        project: &str,
        name: &str,
        n: &Node,
        networks: &mut BTreeMap<String, Network>,
        volumes: &BTreeMap<String, Volume>,
    ) -> Result<Service, LoadError> {
        let what = format!("services.{name}");
        if !matches!(n.value, Value::Map(_)) {
            return Err(err(
                n,
                format!("{what} must be a mapping, found {}", n.kind()),
            ));
        }
        check_keys(n, &what, &[SERVICE_KEYS, host_access::KEYS].concat())?;
        let w = |k: &str| format!("{what}.{k}");
        let build = self.build(n, &what)?;
        let image = image(n, &what, project, name, build.is_some())?;
        let environment = self.environment(n, &what)?;
        let labels = self.labels(n, &what)?;
        let ports = ports::ports(n, &what)?;
        let mounts = self.mounts(n, &what, (project, name), volumes)?;
        self.policy_positions(n, &what);
        let mut host = self.host_access(n, &what)?;
        let service_networks = match (&host.network_mode, n.get("networks")) {
            (Some(_), Some(nets)) => {
                return Err(err(
                    nets,
                    format!("{what}: `network_mode` and `networks` cannot both be set"),
                ))
            }
            // The container joins another stack (or none): no network of its own.
            (Some(_), None) => BTreeMap::new(),
            (None, _) => networks::service_networks(n, &what, project, name, networks)?,
        };
        let resources = resources::resources(n, &what, self.swarm)?;
        self.notes.extend(resources.notes.iter().cloned());
        host.device_reservations = resources.devices.clone();
        if let Some(d) = ["deploy", "resources", "reservations", "devices"]
            .iter()
            .try_fold(n, |node, k| node.get(k))
        {
            self.positions.insert(
                format!("{what}.deploy.resources.reservations.devices"),
                d.pos.to_string(),
            );
        }
        // Each container has its own anonymous volumes, as in Compose.
        self.anonymous = mounts
            .anonymous
            .iter()
            .flat_map(|v| {
                (1..=resources.replicas.max(1)).map(|replica| Volume {
                    name: mooring_core::desired::replica_volume(&v.name, replica),
                    ..v.clone()
                })
            })
            .collect();
        let container_name = container_name(n, &what)?;
        if let (Some(c), replicas @ 2..) = (&container_name, resources.replicas) {
            return Err(err(
                n.get("container_name").unwrap_or(n),
                format!("{what}: container_name {c:?} names one container, but the service runs {replicas} (scale/deploy.replicas); drop container_name or run one"),
            ));
        }
        let restart = match (n.get("restart"), &resources.restart) {
            (None, Some(from_deploy)) => from_deploy.clone(),
            _ => lifecycle::restart(n, &what)?,
        };
        let healthcheck = healthcheck::healthcheck(n, &what)?;
        if healthcheck
            .as_ref()
            .is_some_and(|h| h.start_interval.is_some())
        {
            self.notes.push(format!("{what}.healthcheck.start_interval needs Docker Engine API 1.44 (Engine 25); an older Engine ignores it"));
        }
        if n.get("annotations").is_some() {
            self.notes.push(format!("{what}.annotations need Docker Engine API 1.43 (Engine 24); an older Engine ignores them"));
        }
        if n.get("develop").is_some() {
            self.notes.push(format!("{what}.develop applies to `docker compose watch` only; a deploy ignores it, as `docker compose up` does"));
        }
        let mut depends_on = depends_on::depends_on(n, &what)?;
        let links = networks::links(n, &what, "links")?;
        // Joining a service's namespaces, or linking to it, waits for it, as in Compose.
        let linked = links
            .iter()
            .map(|l| l.split(':').next().unwrap_or_default());
        for other in host.joined_services().into_iter().chain(linked) {
            depends_on
                .entry(other.to_string())
                .or_insert(mooring_core::DependsOn {
                    condition: mooring_core::DependsOnCondition::ServiceStarted,
                    required: true,
                    restart: true,
                });
        }
        let extra_hosts = networks::extra_hosts(n, &what)?;
        let pull_policy = lifecycle::pull_policy(n, &what, build.is_some())?;
        let settings = settings::settings(n, &what, &resources)?;
        let written = mooring_core::desired::AsWritten {
            image: n.get("image").is_some(),
            restart: opt_text(n, "restart"),
            pull_policy: opt_text(n, "pull_policy"),
            mem_limit: resources.written_mem_limit,
            cpus: resources.written_cpus,
            deploy: resources.written_deploy.clone(),
            unset_environment: unset_environment(n, &environment),
            volume_tmpfs: mounts.written_tmpfs.clone(),
            healthcheck_disabled: n
                .get("healthcheck")
                .and_then(|h| h.get("disable"))
                .is_some_and(|d| d.text() == Some("true")),
            own_keys: ["mem_reservation", "pids_limit"]
                .into_iter()
                .filter(|k| n.get(k).is_some())
                .map(str::to_string)
                .collect(),
        };
        let seccomp_profile = self.seccomp_profile(n, &what)?;
        // The profile's content is one of the repository files the container depends on.
        let files_hash = match (&seccomp_profile, mounts.files_hash) {
            (Some(profile), files) => Some(mooring_core::hash::sha256_hex(
                format!(
                    "{}\nseccomp:{}",
                    files.unwrap_or_default(),
                    mooring_core::hash::sha256_hex(profile.as_bytes())
                )
                .as_bytes(),
            )),
            (None, files) => files,
        };

        let opt_string = |k: &str| n.get(k).map(|v| string(v, &w(k))).transpose();
        Ok(Service {
            name: name.to_string(),
            image,
            command: command::command(n, &what, "command")?,
            entrypoint: command::command(n, &what, "entrypoint")?,
            environment,
            ports,
            mounts: mounts.mounts,
            networks: service_networks,
            labels,
            restart,
            healthcheck,
            depends_on,
            working_dir: opt_string("working_dir")?,
            user: opt_string("user")?,
            hostname: opt_string("hostname")?,
            stop_grace_period: lifecycle::stop_grace_period(n, &what)?,
            stop_signal: opt_string("stop_signal")?,
            tmpfs: mounts.tmpfs,
            read_only: security::read_only(n, &what)?,
            cap_add: security::capabilities(n, &what, "cap_add")?,
            cap_drop: security::capabilities(n, &what, "cap_drop")?,
            extra_hosts,
            init: lifecycle::init(n, &what)?,
            pull_policy,
            nano_cpus: resources.nano_cpus,
            memory: resources.memory,
            files_hash,
            secrets: mounts.secrets,
            configs: mounts.configs,
            inline_files: mounts.inline,
            swarm_files: mounts.swarm,
            profiles: vec![],
            post_start: self.hooks(n, &what, "post_start")?,
            pre_stop: self.hooks(n, &what, "pre_stop")?,
            links,
            external_links: networks::links(n, &what, "external_links")?,
            container_name,
            scale: resources.scale,
            seccomp_profile,
            written,
            replicas: mooring_core::desired::Replicas(resources.replicas),
            settings,
            host,
            build,
        })
    }
}

/// A scalar key's text, when written.
fn opt_text(n: &Node, key: &str) -> Option<String> {
    n.get(key).and_then(|v| v.text()).map(str::to_string)
}

/// `environment` entries written without a value that no variable sets (Compose
/// prints them as `null`).
fn unset_environment(n: &Node, environment: &BTreeMap<String, String>) -> Vec<String> {
    let Some(e) = n.get("environment") else {
        return vec![];
    };
    let e = crate::merge::list_to_map(e.clone(), "environment");
    let Value::Map(entries) = &e.value else {
        return vec![];
    };
    entries
        .iter()
        .filter(|(k, v)| matches!(v.value, Value::Null) && !environment.contains_key(key_of(k)))
        .map(|(k, _)| key_of(k).to_string())
        .collect()
}

/// `container_name`: a Docker container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
fn container_name(n: &Node, what: &str) -> Result<Option<String>, LoadError> {
    let Some(v) = n.get("container_name") else {
        return Ok(None);
    };
    let name = string(v, &format!("{what}.container_name"))?;
    let valid = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        return Err(err(
            v,
            format!("{what}.container_name: invalid container name {name:?} (letters, digits, `_`, `.`, `-`, starting with a letter or digit)"),
        ));
    }
    Ok(Some(name))
}

/// `image`: required unless the service has `build` (then Compose's name for the built
/// image, `<project>-<service>`), and not empty.
fn image(
    n: &Node,
    what: &str,
    project: &str,
    service: &str,
    built: bool,
) -> Result<String, LoadError> {
    let image = match n.get("image") {
        Some(v) => string(v, &format!("{what}.image"))?,
        None if built => return Ok(format!("{project}-{service}")),
        None => return Err(err(n, format!("{what} has neither `image` nor `build`"))),
    };
    if image.trim().is_empty() {
        return Err(err(
            n.get("image").unwrap_or(n),
            format!("{what}.image is empty"),
        ));
    }
    Ok(image)
}
