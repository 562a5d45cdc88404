//! A stack's plan (pure): what brings the live stack to the project — networks,
//! secrets and configs, backups before an update, services created or updated with the
//! fields that differ (the live spec cut to the desired one's shape, `shaped_like`),
//! what the stack no longer declares, and the data policy of volumes no longer used.

use crate::reconcile::ReconcileOptions;
use mooring_core::desired::{DataPolicy, Project};
use mooring_core::{Action, FileKind, Plan, PlannedAction};
use serde_json::Value;
use std::collections::BTreeMap;

use super::spec::{ignored_on_swarm, SPEC_HASH};
use super::{desired, service_name, swarm_files, LiveStack};

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
pub(super) fn declares_volume(project: &Project, name: &str) -> bool {
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
