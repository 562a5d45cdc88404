//! What a person sees of an app beyond the plan: the resource tree (services and their
//! containers, networks, volumes with their data policy) and the side-by-side
//! comparison of desired and live, resource by resource. Pure: the CLI, the API and
//! the web UI all show these same values.

use crate::desired::{DataPolicy, MountKind, Project};
use crate::health::{app_health, ResourceHealth};
use crate::live::Live;
use serde::Serialize;

/// A revision as people read it, the same in the CLI, the API's pages and the UI: a
/// folder's content hash or a full commit id cut to its first 12 characters (by
/// characters, never inside one), anything else — a tag, a Subversion number, what a
/// user typed — whole.
pub fn short_revision(rev: &str) -> &str {
    let first = |s: &'_ str, n: usize| s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    match rev.strip_prefix("sha256:") {
        Some(h) => &h[..first(h, 12)],
        None if rev.chars().count() >= 40 => &rev[..first(rev, 12)],
        None => rev,
    }
}

/// An app's resources as they stand on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceTree {
    /// One entry per desired service, with its container's state and health.
    pub services: Vec<ResourceHealth>,
    pub networks: Vec<NetworkNode>,
    pub volumes: Vec<VolumeNode>,
}

/// A network the project declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct NetworkNode {
    /// Docker name.
    pub name: String,
    pub exists: bool,
    pub external: bool,
    /// The live driver, when it exists.
    pub driver: Option<String>,
}

/// A volume the project declares, and what protects its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct VolumeNode {
    /// Docker name.
    pub name: String,
    pub exists: bool,
    pub external: bool,
    /// The data policy in force: the volume's own (`x-mooring`) or the app's.
    pub policy: DataPolicy,
    /// Services that mount it, with `(ro)` when read-only.
    pub used_by: Vec<String>,
}

/// The resource tree of `project` on `live`; `default_policy` is the app's data policy.
pub fn resource_tree(project: &Project, live: &Live, default_policy: DataPolicy) -> ResourceTree {
    let networks = project
        .networks
        .values()
        .map(|n| {
            let l = live.networks.get(&n.name);
            NetworkNode {
                name: n.name.clone(),
                exists: l.is_some(),
                external: n.external,
                driver: l.map(|l| l.driver.clone()),
            }
        })
        .collect();
    let volumes = project
        .volumes
        .values()
        .map(|v| {
            let used_by = project
                .services
                .values()
                .flat_map(|s| s.mounts.iter().map(move |m| (s, m)))
                .filter(|(_, m)| m.kind == MountKind::Volume && m.source == v.name)
                .map(|(s, m)| match m.read_only {
                    true => format!("{} (ro)", s.name),
                    false => s.name.clone(),
                })
                .collect();
            VolumeNode {
                name: v.name.clone(),
                exists: live.volumes.contains_key(&v.name),
                external: v.external,
                policy: v.policy.unwrap_or(default_policy),
                used_by,
            }
        })
        .collect();
    ResourceTree {
        services: app_health(project, live).1,
        networks,
        volumes,
    }
}

/// One resource's desired and live settings side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Comparison {
    /// `container NAME`, `network NAME`, `volume NAME`.
    pub resource: String,
    pub fields: Vec<Field>,
}

/// One setting: what the repository says and what the host has (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Field {
    pub name: String,
    pub desired: Option<String>,
    pub live: Option<String>,
    pub differs: bool,
}

fn field(name: &str, desired: Option<String>, live: Option<String>) -> Field {
    Field {
        name: name.to_string(),
        differs: desired != live,
        desired,
        live,
    }
}

fn cpus(nano: i64) -> Option<String> {
    (nano != 0).then(|| format!("{}", nano as f64 / 1e9))
}

fn memory(bytes: i64) -> Option<String> {
    (bytes != 0).then(|| match bytes {
        b if b % (1 << 30) == 0 => format!("{}g", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}m", b >> 20),
        b => b.to_string(),
    })
}

/// Makes the view agree with `plan`: a resource the plan changes whose shown fields
/// are all the same (its reason lies in a setting the view does not list) gets a
/// differing `plan` field with the action and its reason, so the view never says
/// "same" for what a sync changes.
pub fn agree_with_plan(comparisons: &mut [Comparison], plan: &crate::Plan) {
    for planned in &plan.actions {
        let Some(resource) = planned.action.resource() else {
            continue;
        };
        if let Some(c) = comparisons.iter_mut().find(|c| c.resource == resource) {
            if !c.fields.iter().any(|f| f.differs) {
                c.fields.push(Field {
                    name: "plan".into(),
                    desired: Some(format!("{}: {}", planned.action.verb(), planned.reason)),
                    live: None,
                    differs: true,
                });
            }
        }
    }
}

/// Desired against live for every resource the project declares. Environment
/// variables are compared for the keys the repository sets (the image adds its own).
pub fn compare(project: &Project, live: &Live) -> Vec<Comparison> {
    let mut out = Vec::new();
    for (svc, name) in project.containers() {
        let c = live.containers.iter().find(|c| c.name == name);
        let mut fields = vec![
            field(
                "state",
                Some("running".into()),
                c.map(|c| c.state.as_str().to_string()),
            ),
            field(
                "image",
                Some(svc.image.clone()),
                c.map(|c| c.image_ref.clone()),
            ),
            field(
                "restart",
                Some(svc.restart.clone()),
                c.map(|c| c.restart.clone()),
            ),
            field(
                "memory",
                svc.memory.and_then(memory),
                c.and_then(|c| memory(c.memory)),
            ),
            field(
                "cpus",
                svc.nano_cpus.and_then(cpus),
                c.and_then(|c| cpus(c.nano_cpus)),
            ),
        ];
        for (key, value) in &svc.environment {
            let live_value = c.and_then(|c| {
                c.env
                    .iter()
                    .find_map(|e| e.strip_prefix(key.as_str())?.strip_prefix('='))
                    .map(str::to_string)
            });
            fields.push(field(
                &format!("env {key}"),
                Some(value.clone()),
                live_value,
            ));
        }
        // The other fields the container was created with that the repository now
        // declares otherwise (from its spec label): what makes the plan recreate it.
        if let Some(old) = c
            .and_then(|c| c.spec.as_deref())
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        {
            let new = crate::hash::spec_record(svc);
            for (path, was, now) in crate::plan::changed_fields(&old, &new) {
                fields.push(Field {
                    name: path,
                    desired: Some(now),
                    live: Some(was),
                    differs: true,
                });
            }
        }
        out.push(Comparison {
            resource: format!("container {name}"),
            fields,
        });
    }
    for n in project.networks.values() {
        let l = live.networks.get(&n.name);
        out.push(Comparison {
            resource: format!("network {}", n.name),
            fields: vec![
                field("exists", Some("yes".into()), Some(yes(l.is_some()))),
                field(
                    "driver",
                    Some(n.driver.clone().unwrap_or_else(|| "bridge".into())),
                    l.map(|l| l.driver.clone()),
                ),
            ],
        });
    }
    for v in project.volumes.values() {
        let l = live.volumes.get(&v.name);
        let opts = |m: &std::collections::BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push(Comparison {
            resource: format!("volume {}", v.name),
            fields: vec![
                field("exists", Some("yes".into()), Some(yes(l.is_some()))),
                field(
                    "driver",
                    Some(v.driver.clone().unwrap_or_else(|| "local".into())),
                    l.map(|l| l.driver.clone()),
                ),
                field(
                    "options",
                    Some(opts(&v.driver_opts)),
                    l.map(|l| opts(&l.options)),
                ),
            ],
        });
    }
    out
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_revisions_cut_by_characters() {
        let long = "é".repeat(40);
        assert_eq!(short_revision(&long), "é".repeat(12));
        assert_eq!(short_revision("sha256:éééééééééééééé"), "éééééééééééé");
        assert_eq!(short_revision(&"a".repeat(40)), "aaaaaaaaaaaa");
        assert_eq!(short_revision("v1.2"), "v1.2");
    }
    use crate::live::ContainerState;
    use crate::plan::tests_support::{live_for, project_of};

    #[test]
    fn compare_names_what_differs() {
        let mut p = project_of(&["a"]);
        p.services
            .get_mut("a")
            .unwrap()
            .environment
            .insert("GREETING".into(), "two".into());
        let mut live = live_for(&p);
        live.containers[0].env = vec!["PATH=/bin".into(), "GREETING=one".into()];
        live.containers[0].state = ContainerState::Exited;
        let cmp = compare(&p, &live);
        let fields = &cmp[0].fields;
        let get = |n: &str| fields.iter().find(|f| f.name == n).unwrap();
        assert!(get("state").differs);
        assert_eq!(get("state").live.as_deref(), Some("exited"));
        assert!(get("env GREETING").differs);
        assert_eq!(get("env GREETING").live.as_deref(), Some("one"));
        assert!(!get("image").differs);
        live.containers.clear();
        let cmp = compare(&p, &live);
        assert_eq!(cmp[0].fields[0].live, None);
        assert!(cmp[0].fields.iter().all(|f| f.live.is_none()));
    }

    #[test]
    fn the_view_agrees_with_the_plan() {
        let p = project_of(&["a", "b"]);
        let live = live_for(&p);
        let mut cmp = compare(&p, &live);
        let [a, b] = [&cmp[0].resource, &cmp[1].resource]
            .map(|r| r.strip_prefix("container ").unwrap().to_string());
        assert!(cmp.iter().all(|c| c.fields.iter().all(|f| !f.differs)));
        let recreate = |container: &str, reason: &str| crate::plan::PlannedAction {
            action: crate::Action::RecreateContainer {
                service: "a".into(),
                container: container.into(),
                id: "x".into(),
                replica: 1,
            },
            reason: reason.into(),
        };
        let plan = crate::Plan {
            app: "p".into(),
            actions: vec![recreate(&a, "command changed")],
            orphans_kept: vec![],
            notes: vec![],
        };
        agree_with_plan(&mut cmp, &plan);
        let planned: Vec<&Field> = cmp[0].fields.iter().filter(|f| f.differs).collect();
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].name, "plan");
        assert_eq!(
            planned[0].desired.as_deref(),
            Some("recreate: command changed")
        );
        assert!(
            cmp[1].fields.iter().all(|f| !f.differs),
            "{b} is not in the plan"
        );
        // A resource that already shows what differs gets nothing more.
        let before = cmp[0].fields.len();
        agree_with_plan(&mut cmp, &plan);
        assert_eq!(cmp[0].fields.len(), before);
    }

    #[test]
    fn tree_shows_policy_and_users() {
        let p = project_of(&["a"]);
        let live = live_for(&p);
        let tree = resource_tree(&p, &live, DataPolicy::Protect);
        assert_eq!(tree.services.len(), 1);
        assert_eq!(tree.services[0].state.as_deref(), Some("running"));
    }

    #[test]
    fn memory_and_cpus_read_like_compose() {
        assert_eq!(memory(64 << 20).as_deref(), Some("64m"));
        assert_eq!(memory(2 << 30).as_deref(), Some("2g"));
        assert_eq!(memory(0), None);
        assert_eq!(cpus(500_000_000).as_deref(), Some("0.5"));
    }
}
