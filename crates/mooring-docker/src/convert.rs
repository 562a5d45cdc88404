//! Conversions at the boundary between Mooring's types and Docker's API types. Pure.

use bollard::container::{Config, NetworkingConfig};
use bollard::models::{
    ContainerInspectResponse, DeviceMapping, DeviceRequest, EndpointIpamConfig, EndpointSettings,
    HealthConfig, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, PortBinding,
    ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use mooring_core::hash::spec_hash;
use mooring_core::labels::*;
use mooring_core::{ContainerState, LiveContainer, Mount, Project, Service};
use std::collections::HashMap;

/// The labels of container `replica` of a service: the user's, Mooring's identity,
/// Compose's.
pub(crate) fn container_labels(
    project: &Project,
    svc: &Service,
    replica: u32,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = svc.labels.clone().into_iter().collect();
    labels.insert(MANAGED_BY.into(), MANAGED_BY_VALUE.into());
    labels.insert(APP.into(), project.name.clone());
    labels.insert(SPEC_HASH.into(), spec_hash(svc));
    labels.insert(
        SPEC.into(),
        mooring_core::hash::spec_record(svc).to_string(),
    );
    if let Some(h) = &svc.files_hash {
        labels.insert(FILES_HASH.into(), h.clone());
    }
    if !svc.inline_files.is_empty() {
        let files: Vec<String> = svc
            .inline_files
            .iter()
            .map(|f| format!("{}={}", f.target, f.digest()))
            .collect();
        labels.insert(FILES.into(), files.join(";"));
    }
    labels.insert(COMPOSE_PROJECT.into(), project.name.clone());
    labels.insert(COMPOSE_SERVICE.into(), svc.name.clone());
    labels.insert(COMPOSE_CONTAINER_NUMBER.into(), replica.to_string());
    labels.insert(COMPOSE_ONEOFF.into(), "False".into());
    labels.insert(COMPOSE_WORKING_DIR.into(), project.working_dir.clone());
    // Absolute, as Compose writes them (`docker compose ls` shows them).
    let files: Vec<String> = project
        .config_files
        .iter()
        .map(|f| {
            std::path::Path::new(&project.working_dir)
                .join(f)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    labels.insert(COMPOSE_CONFIG_FILES.into(), files.join(","));
    // Compose's own hash of the service: `docker compose up -d` on the same files
    // finds the container up to date.
    labels.insert(
        COMPOSE_CONFIG_HASH.into(),
        mooring_compose::compose_hash::config_hash(project, svc),
    );
    labels.insert(COMPOSE_VERSION.into(), COMPOSE_VERSION_FOLLOWED.into());
    let depends_on: Vec<String> = svc
        .depends_on
        .iter()
        .map(|(name, d)| format!("{name}:{}:{}", d.condition.as_str(), d.restart))
        .collect();
    labels.insert(COMPOSE_DEPENDS_ON.into(), depends_on.join(","));
    labels
}

/// Labels for networks and volumes Mooring creates.
pub(crate) fn resource_labels(
    project: &Project,
    key_label: &str,
    key: &str,
    user: &std::collections::BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = user.clone().into_iter().collect();
    labels.insert(MANAGED_BY.into(), MANAGED_BY_VALUE.into());
    labels.insert(APP.into(), project.name.clone());
    labels.insert(COMPOSE_PROJECT.into(), project.name.clone());
    labels.insert(key_label.into(), key.into());
    labels
}

/// Restart policy from Compose's text (`on-failure:3`).
pub(crate) fn restart_policy(text: &str) -> RestartPolicy {
    let (name, retries) = match text.split_once(':') {
        Some((n, r)) => (n, r.parse().ok()),
        None => (text, None),
    };
    let name = match name {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: retries,
    }
}

/// The networks container `replica` of a service joins at creation (the first) and
/// afterwards (the rest), highest `priority` first, each with its endpoint as Compose
/// sends it: aliases (the container's name first), legacy links, fixed addresses.
pub(crate) fn network_attachments(
    project: &Project,
    svc: &Service,
    replica: u32,
) -> Vec<(String, EndpointSettings)> {
    let container = project.replica_name(&svc.name, replica);
    let links = legacy_links(project, svc, replica);
    let mut nets: Vec<&mooring_core::ServiceNetwork> = svc.networks.values().collect();
    nets.sort_by_key(|n| std::cmp::Reverse(n.priority.unwrap_or(0)));
    nets.into_iter()
        .map(|n| {
            let mut aliases = vec![container.clone()];
            aliases.extend(n.aliases.iter().cloned());
            let fixed = n.ipv4_address.is_some()
                || n.ipv6_address.is_some()
                || !n.link_local_ips.is_empty();
            let endpoint = EndpointSettings {
                aliases: Some(aliases),
                links: (!links.is_empty()).then(|| links.clone()),
                ipam_config: fixed.then(|| EndpointIpamConfig {
                    ipv4_address: n.ipv4_address.clone(),
                    ipv6_address: n.ipv6_address.clone(),
                    link_local_ips: (!n.link_local_ips.is_empty())
                        .then(|| n.link_local_ips.clone()),
                }),
                mac_address: n.mac_address.clone(),
                ..Default::default()
            };
            (n.name.clone(), endpoint)
        })
        .collect()
}

/// `links` and `external_links` of container `replica` as the Engine's
/// `CONTAINER:ALIAS` entries, as Compose writes them: each container of a linked
/// service, also under `SERVICE-<replica>` and `<project>-SERVICE-<replica>`.
fn legacy_links(project: &Project, svc: &Service, replica: u32) -> Vec<String> {
    let mut out = Vec::new();
    for link in &svc.links {
        let (service, alias) = link.split_once(':').unwrap_or((link, link));
        // Every container of the linked service, under the linking container's number
        // (Compose's getLinks).
        for c in project.replica_names(service) {
            out.push(format!("{c}:{alias}"));
            out.push(format!("{c}:{service}-{replica}"));
            out.push(format!("{c}:{}-{service}-{replica}", project.name));
        }
    }
    for link in &svc.external_links {
        let (c, alias) = link.split_once(':').unwrap_or((link, link));
        out.push(format!("{c}:{alias}"));
    }
    out
}

/// The tar archive of a service's inline files (secrets and configs from values), as
/// Compose copies them: at their target, with their owner and mode.
pub(crate) fn inline_archive(files: &[mooring_core::InlineFile]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.content.len() as u64);
        header.set_mode(f.mode);
        header.set_uid(u64::from(f.uid));
        header.set_gid(u64::from(f.gid));
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(
            &mut header,
            f.target.trim_start_matches('/'),
            f.content.as_slice(),
        )?;
    }
    tar.into_inner()
}

/// `security_opt` as the Engine receives it: a seccomp profile file's JSON in place of
/// its path, as the Docker CLI sends it.
fn security_opt(svc: &Service) -> Vec<String> {
    svc.settings
        .security_opt
        .iter()
        .map(|opt| {
            match (
                &svc.seccomp_profile,
                mooring_core::policy::seccomp_profile_path(opt),
            ) {
                (Some(json), Some(_)) => format!("seccomp={json}"),
                _ => opt.clone(),
            }
        })
        .collect()
}

/// GPUs and other driver devices as Compose sends them: the reservations as written,
/// then `gpus` with the `gpu` capability added.
fn device_requests(host: &mooring_core::HostAccess) -> Vec<DeviceRequest> {
    let request = |d: &mooring_core::DeviceRequest, extra: Option<&str>| DeviceRequest {
        driver: Some(d.driver.clone().unwrap_or_default()),
        count: Some(d.count),
        device_ids: (!d.device_ids.is_empty()).then(|| d.device_ids.clone()),
        capabilities: Some(vec![d
            .capabilities
            .iter()
            .map(String::as_str)
            .chain(extra)
            .map(str::to_string)
            .collect()]),
        options: (!d.options.is_empty()).then(|| d.options.clone().into_iter().collect()),
    };
    host.device_reservations
        .iter()
        .map(|d| request(d, None))
        .chain(host.gpus.iter().map(|d| request(d, Some("gpu"))))
        .collect()
}

/// A namespace mode for the Engine: `service:NAME` joins that service's container
/// (`container:<its name>`); the rest as written.
fn joined(project: &Project, mode: &str) -> String {
    match mode.strip_prefix("service:") {
        Some(service) => format!("container:{}", project.container_name(service)),
        None => mode.to_string(),
    }
}

/// The create body for container `replica` (from 1) of a service.
pub(crate) fn container_config(project: &Project, svc: &Service, replica: u32) -> Config<String> {
    let mut exposed = HashMap::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &svc.ports {
        let key = format!("{}/{}", p.target, p.protocol);
        exposed.insert(key.clone(), HashMap::new());
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.published.clone().unwrap_or_default()),
            });
    }
    // As Compose sends them: as written (`3000`, `4000-4001/udp`).
    for port in &svc.settings.expose {
        exposed.entry(port.clone()).or_insert_with(HashMap::new);
    }
    let binds: Vec<String> = project
        .replica_mounts(svc, replica)
        .iter()
        .map(Mount::bind_spec)
        .collect();
    let tmpfs: HashMap<String, String> = svc
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_string(), opts.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();
    let healthcheck = svc.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: h.interval.map(|d| d.as_nanos_i64()),
        timeout: h.timeout.map(|d| d.as_nanos_i64()),
        retries: h.retries.map(|r| i64::try_from(r).unwrap_or(i64::MAX)),
        start_period: h.start_period.map(|d| d.as_nanos_i64()),
        start_interval: h.start_interval.map(|d| d.as_nanos_i64()),
    });
    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let set = &svc.settings;
    let host_config = HostConfig {
        sysctls: (!set.sysctls.is_empty()).then(|| set.sysctls.clone().into_iter().collect()),
        ulimits: (!set.ulimits.is_empty()).then(|| {
            set.ulimits
                .iter()
                .map(|(name, u)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        dns: nonempty(&set.dns),
        dns_options: nonempty(&set.dns_opt),
        dns_search: nonempty(&set.dns_search),
        log_config: set.logging.as_ref().map(|l| HostConfigLogConfig {
            typ: l.driver.clone(),
            config: Some(l.options.clone().into_iter().collect()),
        }),
        pids_limit: set.pids_limit,
        shm_size: set.shm_size,
        memory_reservation: set.mem_reservation,
        memory_swap: set.memswap_limit,
        cpu_shares: set.cpu_shares,
        runtime: set.runtime.clone(),
        group_add: nonempty(&set.group_add),
        security_opt: nonempty(&security_opt(svc)),
        oom_score_adj: set.oom_score_adj,
        oom_kill_disable: set.oom_kill_disable.then_some(true),
        memory_swappiness: set.mem_swappiness,
        cpu_quota: set.cpu_quota,
        cpu_period: set.cpu_period,
        cpu_realtime_runtime: set.cpu_rt_runtime,
        cpu_realtime_period: set.cpu_rt_period,
        cpuset_cpus: set.cpuset.clone(),
        storage_opt: (!set.storage_opt.is_empty())
            .then(|| set.storage_opt.clone().into_iter().collect()),
        cgroup_parent: set.cgroup_parent.clone(),
        annotations: (!set.annotations.is_empty())
            .then(|| set.annotations.clone().into_iter().collect()),
        device_cgroup_rules: nonempty(&svc.host.device_cgroup_rules),
        device_requests: Some(device_requests(&svc.host)).filter(|d| !d.is_empty()),
        binds: (!binds.is_empty()).then_some(binds),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        restart_policy: Some(restart_policy(&svc.restart)),
        memory: svc.memory,
        nano_cpus: svc.nano_cpus,
        cap_add: nonempty(&svc.cap_add),
        cap_drop: nonempty(&svc.cap_drop),
        extra_hosts: nonempty(&svc.extra_hosts),
        init: svc.init,
        readonly_rootfs: svc.read_only.then_some(true),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        network_mode: match &svc.host.network_mode {
            Some(mode) => Some(joined(project, mode)),
            None => network_attachments(project, svc, replica)
                .into_iter()
                .next()
                .map(|(name, _)| name),
        },
        privileged: svc.host.privileged.then_some(true),
        pid_mode: svc.host.pid.as_deref().map(|m| joined(project, m)),
        ipc_mode: svc.host.ipc.as_deref().map(|m| joined(project, m)),
        uts_mode: svc.host.uts.clone(),
        userns_mode: svc.host.userns_mode.clone(),
        cgroupns_mode: svc.host.cgroup.as_deref().map(|c| match c {
            "host" => HostConfigCgroupnsModeEnum::HOST,
            _ => HostConfigCgroupnsModeEnum::PRIVATE,
        }),
        devices: (!svc.host.devices.is_empty()).then(|| {
            svc.host
                .devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.source.clone()),
                    path_in_container: Some(d.target.clone()),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect()
        }),
        ..Default::default()
    };
    let networking_config = svc
        .host
        .network_mode
        .is_none()
        .then(|| {
            network_attachments(project, svc, replica)
                .into_iter()
                .next()
        })
        .flatten()
        .map(|(name, endpoint)| NetworkingConfig {
            endpoints_config: HashMap::from([(name, endpoint)]),
        });
    Config {
        hostname: svc.hostname.clone(),
        domainname: set.domainname.clone(),
        mac_address: set.mac_address.clone(),
        open_stdin: set.stdin_open.then_some(true),
        tty: set.tty.then_some(true),
        user: svc.user.clone(),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        env: Some(
            svc.environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        cmd: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        healthcheck,
        image: Some(svc.image.clone()),
        working_dir: svc.working_dir.clone(),
        labels: Some(container_labels(project, svc, replica)),
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: svc
            .stop_grace_period
            .map(|d| i64::try_from(d.0 / 1_000_000_000).unwrap_or(i64::MAX)),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

/// Live container from inspect data.
pub(crate) fn live_container(c: ContainerInspectResponse) -> LiveContainer {
    let config = c.config.unwrap_or_default();
    let labels = config.labels.unwrap_or_default();
    let host = c.host_config.unwrap_or_default();
    let state = c.state.unwrap_or_default();
    let restart = host.restart_policy.unwrap_or_default();
    let restart = match restart.name {
        Some(RestartPolicyNameEnum::ALWAYS) => "always".to_string(),
        Some(RestartPolicyNameEnum::UNLESS_STOPPED) => "unless-stopped".to_string(),
        Some(RestartPolicyNameEnum::ON_FAILURE) => match restart.maximum_retry_count {
            Some(n) if n > 0 => format!("on-failure:{n}"),
            _ => "on-failure".to_string(),
        },
        _ => "no".to_string(),
    };
    LiveContainer {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        service: labels.get(COMPOSE_SERVICE).cloned(),
        spec_hash: labels.get(SPEC_HASH).cloned(),
        spec: labels.get(SPEC).cloned(),
        files_hash: labels.get(FILES_HASH).cloned(),
        files: labels
            .get(FILES)
            .map(|v| {
                v.split(';')
                    .filter_map(|e| e.rsplit_once('='))
                    .map(|(t, d)| (t.to_string(), d.to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        state: ContainerState::parse(&state.status.map(|s| s.to_string()).unwrap_or_default()),
        exit_code: state.exit_code,
        health: state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none"),
        image_ref: config.image.unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        restart,
        memory: host.memory.unwrap_or(0),
        nano_cpus: host.nano_cpus.unwrap_or(0),
        env: config.env.unwrap_or_default(),
        restart_count: c.restart_count.unwrap_or(0),
        updatable: mooring_core::live::Updatable {
            cpu_shares: host.cpu_shares.unwrap_or(0),
            pids_limit: host.pids_limit.unwrap_or(0),
            memory_reservation: host.memory_reservation.unwrap_or(0),
            memory_swap: host.memory_swap.unwrap_or(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_round_trip() {
        for text in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:3",
        ] {
            let p = restart_policy(text);
            let c = ContainerInspectResponse {
                host_config: Some(HostConfig {
                    restart_policy: Some(p),
                    ..Default::default()
                }),
                ..Default::default()
            };
            assert_eq!(live_container(c).restart, text);
        }
    }

    #[test]
    fn host_access_reaches_the_host_config() {
        let mut svc = Service {
            name: "web".into(),
            image: "busybox".into(),
            ..Service::default()
        };
        svc.host.privileged = true;
        svc.host.cgroup = Some("host".into());
        svc.host.network_mode = Some("service:db".into());
        let project = Project {
            name: "app".into(),
            working_dir: "/srv/app".into(),
            config_files: vec![],
            services: Default::default(),
            networks: Default::default(),
            volumes: Default::default(),
            notes: vec![],
            positions: Default::default(),
            secret_values: Default::default(),
            extensions: Default::default(),
            secrets: Default::default(),
            configs: Default::default(),
        };
        let host = container_config(&project, &svc, 1).host_config.unwrap();
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::HOST));
        assert_eq!(host.network_mode.as_deref(), Some("container:app-db-1"));
    }
}
