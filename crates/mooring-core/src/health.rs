//! Health rules: each desired service's container gets a [`Health`] from live inspect
//! data; the app takes its worst resource's health.

use crate::desired::{DependsOnCondition, Project};
use crate::live::{ContainerState, Live};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Health of a resource or an app, worst last in severity order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Health {
    Healthy,
    Suspended,
    Progressing,
    Unknown,
    Missing,
    Degraded,
}

impl Health {
    /// The word used in the API, UI and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Suspended => "Suspended",
            Health::Progressing => "Progressing",
            Health::Unknown => "Unknown",
            Health::Missing => "Missing",
            Health::Degraded => "Degraded",
        }
    }
}

impl Health {
    /// Every value, best first.
    pub const ALL: &'static [Health] = &[
        Health::Healthy,
        Health::Suspended,
        Health::Progressing,
        Health::Unknown,
        Health::Missing,
        Health::Degraded,
    ];
}

impl FromStr for Health {
    type Err = crate::UnknownWord;
    fn from_str(s: &str) -> Result<Health, crate::UnknownWord> {
        Health::ALL
            .iter()
            .copied()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| crate::UnknownWord {
                what: "health",
                word: s.to_string(),
            })
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Health of one container of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ResourceHealth {
    pub service: String,
    pub container: String,
    pub health: Health,
    /// Plain words: `running`, `exited with code 1`, `health check failing`.
    pub message: String,
    /// The container's state (`running`, `exited`…), `None` when it does not exist.
    pub state: Option<String>,
    /// The image it runs (as asked), else the one the repository declares.
    pub image: String,
    /// How often Docker restarted it.
    pub restarts: i64,
    /// The id of the image it runs (`sha256:…`), when it exists.
    pub image_id: Option<String>,
    /// Its published ports as Compose writes them: `8080:80/tcp`, `127.0.0.1:8080:80/tcp`.
    pub ports: Vec<String>,
    /// The named volumes it mounts (Docker names; `(ro)` when read-only) and the networks it joins.
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
}

/// The health of every desired container (each replica of each service) and of the
/// app (the worst of them).
pub fn app_health(project: &Project, live: &Live) -> (Health, Vec<ResourceHealth>) {
    let mut out = Vec::new();
    for (svc, name) in project.containers() {
        let completes = project.services.values().any(|s| {
            s.depends_on
                .get(&svc.name)
                .is_some_and(|d| d.condition == DependsOnCondition::ServiceCompletedSuccessfully)
        });
        // A single container may go by another name (the plan recreates it).
        let c = live.containers.iter().find(|c| c.name == name).or_else(|| {
            (svc.replicas.0 == 1)
                .then(|| {
                    live.containers
                        .iter()
                        .find(|c| c.service.as_deref() == Some(&svc.name))
                })
                .flatten()
        });
        let (health, message) = match c {
            None => (Health::Missing, "container does not exist".to_string()),
            Some(c) => match c.state {
                ContainerState::Running => match c.health.as_deref() {
                    Some("starting") => {
                        (Health::Progressing, "running, health check starting".into())
                    }
                    Some("unhealthy") => (Health::Degraded, "running, health check failing".into()),
                    Some("healthy") => (Health::Healthy, "running, healthy".into()),
                    _ => (Health::Healthy, "running".into()),
                },
                ContainerState::Exited if completes && c.exit_code == Some(0) => {
                    (Health::Healthy, "completed successfully".into())
                }
                ContainerState::Exited => (
                    Health::Degraded,
                    format!("exited with code {}", c.exit_code.unwrap_or(-1)),
                ),
                ContainerState::Restarting => (Health::Degraded, "restarting".into()),
                ContainerState::Created => (Health::Progressing, "created, not started".into()),
                ContainerState::Paused => (Health::Suspended, "paused".into()),
                ContainerState::Removing | ContainerState::Dead => {
                    (Health::Degraded, c.state.as_str().to_string())
                }
            },
        };
        out.push(ResourceHealth {
            service: svc.name.clone(),
            container: name,
            health,
            message,
            state: c.map(|c| c.state.as_str().to_string()),
            image: c.map_or_else(|| svc.image.clone(), |c| c.image_ref.clone()),
            restarts: c.map_or(0, |c| c.restart_count),
            image_id: c.map(|c| c.image_id.clone()).filter(|i| !i.is_empty()),
            ports: svc
                .ports
                .iter()
                .filter_map(|p| {
                    let published = p.published.as_deref()?;
                    Some(match p.host_ip.as_deref() {
                        Some(ip) => format!("{ip}:{published}:{}/{}", p.target, p.protocol),
                        None => format!("{published}:{}/{}", p.target, p.protocol),
                    })
                })
                .collect(),
            volumes: svc
                .mounts
                .iter()
                .filter(|m| m.kind == crate::desired::MountKind::Volume && !m.source.is_empty())
                .map(|m| match m.read_only {
                    true => format!("{} (ro)", m.source),
                    false => m.source.clone(),
                })
                .collect(),
            networks: svc.networks.values().map(|n| n.name.clone()).collect(),
        });
    }
    (worst(&out), out)
}

/// The worst health among `resources` (`Unknown` when there are none): the app's.
pub fn worst(resources: &[ResourceHealth]) -> Health {
    resources
        .iter()
        .map(|r| r.health)
        .max()
        .unwrap_or(Health::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests_support::{live_for, project_of};

    #[test]
    fn worst_resource_wins() {
        let p = project_of(&["a", "b"]);
        let mut live = live_for(&p);
        assert_eq!(app_health(&p, &live).0, Health::Healthy);
        live.containers[0].health = Some("starting".into());
        assert_eq!(app_health(&p, &live).0, Health::Progressing);
        live.containers[1].state = ContainerState::Exited;
        live.containers[1].exit_code = Some(2);
        let (h, r) = app_health(&p, &live);
        assert_eq!(h, Health::Degraded);
        assert_eq!(r[1].message, "exited with code 2");
        live.containers.remove(0);
        assert_eq!(app_health(&p, &live).1[0].health, Health::Missing);
    }
}
