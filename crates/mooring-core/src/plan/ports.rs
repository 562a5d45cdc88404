//! Published ports another container holds: checked before a plan that creates or
//! recreates containers is applied, so a running container is never removed for a new
//! one that cannot start (its port bound by a container outside the app).

use super::{Action, Plan, PlanError};
use crate::desired::Project;
use crate::live::ForeignPort;

/// The first published port of a container the plan creates or recreates that
/// `foreign` (ports bound by containers outside the app) already holds.
pub fn port_conflicts(
    project: &Project,
    plan: &Plan,
    foreign: &[ForeignPort],
) -> Result<(), PlanError> {
    for a in &plan.actions {
        let service = match &a.action {
            Action::CreateContainer { service, .. } | Action::RecreateContainer { service, .. } => {
                service
            }
            _ => continue,
        };
        let Some(svc) = project.services.get(service) else {
            continue;
        };
        for p in &svc.ports {
            let Some((low, high)) = p.published.as_deref().and_then(range) else {
                continue;
            };
            let held = foreign.iter().find(|f| {
                f.protocol == p.protocol
                    && (low..=high).contains(&f.port)
                    && overlaps(p.host_ip.as_deref(), f.host_ip.as_deref())
            });
            if let Some(f) = held {
                return Err(PlanError::PortTaken {
                    service: service.clone(),
                    port: format!("{}/{}", f.port, f.protocol),
                    container: f.container.clone(),
                });
            }
        }
    }
    Ok(())
}

/// A service running several containers must publish a host port range with a port
/// for each: one host port can be held by one container only (Compose starts the
/// first and fails on the next; Mooring refuses before changing anything).
pub(super) fn enough_for_replicas(project: &Project) -> Result<(), PlanError> {
    for svc in project.services.values().filter(|s| s.replicas.0 > 1) {
        for p in &svc.ports {
            let Some((low, high)) = p.published.as_deref().and_then(range) else {
                continue;
            };
            if u32::from(high.saturating_sub(low)) + 1 < svc.replicas.0 {
                return Err(PlanError::PortPerReplica {
                    service: svc.name.clone(),
                    replicas: svc.replicas.0,
                    port: p.published.clone().unwrap_or_default(),
                    first: low,
                    last: u32::from(low) + svc.replicas.0 - 1,
                });
            }
        }
    }
    Ok(())
}

/// `8080` or `8000-8010`.
fn range(published: &str) -> Option<(u16, u16)> {
    match published.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => published.parse().ok().map(|p| (p, p)),
    }
}

/// Two host addresses clash when either is every address or both are the same.
fn overlaps(a: Option<&str>, b: Option<&str>) -> bool {
    let any = |ip: Option<&str>| matches!(ip, None | Some("" | "0.0.0.0" | "::"));
    any(a) || any(b) || a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{tests::project_of, PlannedAction};

    fn foreign(port: u16, ip: Option<&str>) -> ForeignPort {
        ForeignPort {
            container: "blocker".into(),
            host_ip: ip.map(str::to_string),
            port,
            protocol: "tcp".into(),
        }
    }

    #[test]
    fn a_port_held_elsewhere_stops_the_plan() {
        let mut p = project_of(&["web"]);
        p.services
            .get_mut("web")
            .unwrap()
            .ports
            .push(crate::desired::Port {
                target: 80,
                published: Some("8080".into()),
                protocol: "tcp".into(),
                ..Default::default()
            });
        let plan = Plan {
            app: "app".into(),
            actions: vec![PlannedAction {
                action: Action::RecreateContainer {
                    service: "web".into(),
                    container: "app-web-1".into(),
                    id: "x".into(),
                    replica: 1,
                },
                reason: "r".into(),
            }],
            orphans_kept: vec![],
            notes: vec![],
        };
        let err = port_conflicts(&p, &plan, &[foreign(8080, Some("0.0.0.0"))]).unwrap_err();
        assert!(
            err.to_string().contains(
                "publishes port 8080/tcp, which container blocker (not of this app) already holds"
            ),
            "{err}"
        );
        assert!(port_conflicts(&p, &plan, &[foreign(8081, None)]).is_ok());
        assert!(port_conflicts(&p, &plan, &[foreign(8080, Some("127.0.0.2"))]).is_err());
        let mut udp = foreign(8080, None);
        udp.protocol = "udp".into();
        assert!(port_conflicts(&p, &plan, &[udp]).is_ok());
    }
}
