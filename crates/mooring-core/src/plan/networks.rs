//! Networks: the project's created when missing (one that exists must be the app's:
//! another owner's is never taken over; an external one must exist), and the app's
//! networks no longer declared removed with prune, else kept with a note.

use super::{check_owner, is_app_resource, Action, PlanError, PlannedAction};
use crate::desired::Project;
use crate::live::Live;
use std::collections::BTreeSet;

/// The networks to create, and the Docker names the project uses.
pub(super) struct Declared<'a> {
    pub creates: Vec<PlannedAction>,
    pub used: BTreeSet<&'a str>,
}

/// The project's networks.
pub(super) fn declared<'a>(
    desired: &'a Project,
    live: &Live,
    notes: &mut Vec<String>,
) -> Result<Declared<'a>, PlanError> {
    let app = desired.name.as_str();
    let mut actions = Vec::new();
    let mut used_networks = BTreeSet::new();
    for net in desired.networks.values() {
        used_networks.insert(net.name.as_str());
        if let Some(ln) = live.networks.get(&net.name) {
            if !net.external {
                check_owner("network", &net.name, &ln.labels, app)?;
                // A network is not changed in place (its containers would have to be
                // disconnected): a difference is said, not applied.
                if ln
                    .labels
                    .get(crate::labels::SPEC_HASH)
                    .is_some_and(|h| *h != net.settings_hash())
                {
                    notes.push(format!(
                        "network {} was created with other settings than the repository now declares (driver, ipam, internal, attachable, enable_ipv6, labels); Mooring does not recreate networks yet: remove it (docker network rm) for the next sync to create it anew",
                        net.name
                    ));
                }
            }
            continue;
        }
        if net.external {
            return Err(PlanError::ExternalNetworkMissing(net.name.clone()));
        }
        actions.push(PlannedAction {
            action: Action::CreateNetwork {
                network: net.name.clone(),
            },
            reason: "network does not exist".into(),
        });
    }
    Ok(Declared {
        creates: actions,
        used: used_networks,
    })
}

/// The app's networks the project no longer uses: removed with prune, else noted.
pub(super) fn orphans(
    live: &Live,
    used_networks: &BTreeSet<&str>,
    app: &str,
    prune: bool,
    notes: &mut Vec<String>,
) -> Vec<PlannedAction> {
    let mut actions = Vec::new();
    for net in live.networks.values() {
        if !used_networks.contains(net.name.as_str()) && is_app_resource(&net.labels, app) {
            if prune {
                actions.push(PlannedAction {
                    action: Action::RemoveNetwork {
                        network: net.name.clone(),
                    },
                    reason: "orphan: network is no longer declared (prune)".into(),
                });
            } else {
                notes.push(format!(
                    "network {} is no longer declared; kept (use prune)",
                    net.name
                ));
            }
        }
    }
    actions
}
