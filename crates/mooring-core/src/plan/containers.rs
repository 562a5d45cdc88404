//! Containers: each of a service's replicas (one unless `scale`/`deploy.replicas` says
//! otherwise) with its fixed name, created, recreated (its spec hash differs, or drift
//! made by hand shows in inspect data) or started; extra containers of a service (beyond
//! its scale) and orphans (the app's label, no declared service) removed — orphans only
//! with prune, else kept and listed.

use super::{Action, PlanOptions, PlannedAction};
use crate::desired::{DependsOnCondition, Project, Service};
use crate::hash::spec_hash;
use crate::live::{ContainerState, Live, LiveContainer};
use crate::mask::EnvMask;
use std::collections::{BTreeMap, BTreeSet};

/// What the containers need.
pub(super) struct Planned {
    /// Removals (orphans, extras, users of recreated volumes): before anything is created.
    pub removals: Vec<PlannedAction>,
    /// Creations, recreations and starts, in dependency order.
    pub actions: Vec<PlannedAction>,
    /// Orphans kept because prune is off.
    pub orphans_kept: Vec<String>,
}

/// The containers of the project's services, and the app's others.
pub(super) fn planned(
    desired: &Project,
    live: &Live,
    options: &PlanOptions,
    (recreated, networks_recreated): (&BTreeSet<&str>, &BTreeSet<&str>),
) -> Planned {
    let mut orphans_kept = Vec::new();
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
        let names = desired.replica_names(&svc.name);
        let mut candidates = by_service.remove(svc.name.as_str()).unwrap_or_default();
        candidates.sort_by_key(|c| c.name.clone());
        // Each replica's container by its name; a service of one container may also be
        // one of the service's under another name (e.g. before `container_name` changed).
        let mut current: Vec<Option<&LiveContainer>> = names
            .iter()
            .map(|name| {
                let i = candidates.iter().position(|c| c.name == *name)?;
                Some(candidates.remove(i))
            })
            .collect();
        // (Only for a service of one container: a replica is known by its name.)
        if let (Some(first @ None), 1) = (current.first_mut(), names.len()) {
            if !candidates.is_empty() {
                *first = Some(candidates.remove(0));
            }
        }
        for extra in candidates {
            removals.push(PlannedAction {
                action: Action::RemoveContainer {
                    service: Some(svc.name.clone()),
                    container: extra.name.clone(),
                    id: extra.id.clone(),
                },
                reason: match names.len() {
                    0 => format!("service {} runs no container (scale 0)", svc.name),
                    1 => format!(
                        "extra container of service {} (only {} is managed)",
                        svc.name, names[0]
                    ),
                    n => format!("service {} runs {n} containers (scale)", svc.name),
                },
            });
        }
        let completes = completion_services.contains(svc.name.as_str());
        for (replica, (name, current)) in (1..).zip(names.iter().zip(current)) {
            // A container mounting a recreated volume, or joining a recreated network,
            // goes first and comes back after it.
            let mounts_recreated = || {
                desired
                    .replica_mounts(svc, replica)
                    .into_iter()
                    .find(|m| recreated.contains(m.source.as_str()))
                    .map(|m| format!("it mounts volume {}, which is recreated", m.source))
            };
            // The networks it joins now (from the spec it was created with) and will join.
            let joins_recreated = |c: &LiveContainer| {
                svc.networks
                    .values()
                    .map(|n| n.name.clone())
                    .chain(created_on_networks(c))
                    .find(|n| networks_recreated.contains(n.as_str()))
                    .map(|n| format!("it joins network {n}, which is recreated"))
            };
            let current = match current {
                Some(c) => match mounts_recreated().or_else(|| joins_recreated(c)) {
                    Some(reason) => {
                        removals.push(PlannedAction {
                            action: Action::RemoveContainer {
                                service: Some(svc.name.clone()),
                                container: c.name.clone(),
                                id: c.id.clone(),
                            },
                            reason,
                        });
                        None
                    }
                    None => Some(c),
                },
                None => None,
            };
            if let Some(action) =
                plan_container(svc, (name, replica), current, live, completes, options)
            {
                container_actions.push(action);
            }
        }
    }
    Planned {
        removals,
        actions: container_actions,
        orphans_kept,
    }
}

/// The Docker names of the networks a container was created on (its spec label).
fn created_on_networks(c: &LiveContainer) -> Vec<String> {
    c.spec
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|spec| {
            Some(
                spec.get("networks")?
                    .as_object()?
                    .values()
                    .filter_map(|n| n.get("name")?.as_str().map(str::to_string))
                    .collect(),
            )
        })
        .unwrap_or_default()
}

/// The action (if any) for container `replica` (named `name`) of one desired service.
fn plan_container(
    svc: &Service,
    (name, replica): (&str, u32),
    current: Option<&LiveContainer>,
    live: &Live,
    completes: bool,
    options: &PlanOptions,
) -> Option<PlannedAction> {
    let Some(c) = current else {
        return Some(PlannedAction {
            action: Action::CreateContainer {
                service: svc.name.clone(),
                container: name.to_string(),
                replica,
            },
            reason: "container does not exist".into(),
        });
    };
    let recreate = |reason: String| PlannedAction {
        action: Action::RecreateContainer {
            service: svc.name.clone(),
            container: name.to_string(),
            id: c.id.clone(),
            replica,
        },
        reason,
    };
    let hash = spec_hash(svc);
    if c.spec_hash.as_deref() != Some(hash.as_str()) {
        return Some(recreate(spec_differences(svc, c, options.mask.as_ref())));
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
    // Compared where the repository sets them (the Engine's defaults vary).
    let set = &svc.settings;
    let u = &c.updatable;
    for (key, desired, live) in [
        ("cpu_shares", set.cpu_shares, u.cpu_shares),
        ("pids_limit", set.pids_limit, u.pids_limit),
        ("mem_reservation", set.mem_reservation, u.memory_reservation),
        ("memswap_limit", set.memswap_limit, u.memory_swap),
    ] {
        if let Some(d) = desired.filter(|d| *d != live) {
            out.push(format!("{key} is {live} (changed by hand); desired {d}"));
        }
    }
    out
}

/// Explains a spec hash mismatch by comparing what inspect data shows.
/// Why the files a container mounts or holds differ, in people's words: each secret,
/// config or file copied in whose content changed (by its digest on the container),
/// else the repository files it bind-mounts.
fn files_changed(svc: &Service, c: &LiveContainer) -> Vec<String> {
    let copied: Vec<String> = svc
        .inline_files
        .iter()
        .filter(|f| c.files.get(&f.target) != Some(&f.digest()))
        .map(|f| format!("{} changed", f.origin))
        .collect();
    if copied.is_empty() {
        vec![super::fields::FILES_CHANGED.into()]
    } else {
        copied
    }
}

fn spec_differences(svc: &Service, c: &LiveContainer, mask: Option<&EnvMask>) -> String {
    let Some(_) = c.spec_hash.as_deref() else {
        return "container was not created by mooring (no spec hash label)".into();
    };
    let mut out = Vec::new();
    let live_env: BTreeMap<&str, &str> = c.env.iter().filter_map(|e| e.split_once('=')).collect();
    let changed: Vec<&str> = svc
        .environment
        .iter()
        .filter(|(k, v)| live_env.get(k.as_str()) != Some(&v.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    // The spec the container was created from: every field that changed, old → new.
    if let Some(old) = c
        .spec
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    {
        let mut fields = Vec::new();
        super::fields::changes(&old, &crate::hash::spec_record(svc), mask, &mut fields);
        // The files' digest changed: say which secret, config or file.
        if let Some(i) = fields
            .iter()
            .position(|f| f == super::fields::FILES_CHANGED)
        {
            fields.splice(i..=i, files_changed(svc, c));
        }
        match mask {
            // With a mask, each variable's old and new value, masked where they must be.
            Some(m) => {
                for name in &changed {
                    let show = |v: Option<&str>| match v {
                        None => "none".to_string(),
                        Some(v) if m.masks(name, v) => m.masked(v),
                        Some(v) => v.to_string(),
                    };
                    fields.push(format!(
                        "environment.{name}: {} → {}",
                        show(live_env.get(name).copied()),
                        show(svc.environment.get(*name).map(String::as_str))
                    ));
                }
            }
            None if !changed.is_empty() => {
                fields.push(format!("environment {} changed", changed.join(", ")));
            }
            None => {}
        }
        if !fields.is_empty() {
            return fields.join("; ");
        }
    }
    if c.image_ref != svc.image {
        out.push(format!("image {} → {}", c.image_ref, svc.image));
    }
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
        out.extend(files_changed(svc, c));
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
