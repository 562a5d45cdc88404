//! Networks: the project's created when missing (one that exists must be the app's:
//! another owner's is never taken over; an external one must exist), recreated when
//! the settings it was created with (its spec-hash label) differ from the declared
//! ones — after the containers that join it are removed, which then come back, as
//! Compose does —, and the app's networks no longer declared removed with prune, else
//! kept with a note.

use super::{check_owner, is_app_resource, Action, PlanError, PlannedAction};
use crate::desired::{Network, Project};
use crate::live::{Live, LiveNetwork};
use crate::mask::EnvMask;
use std::collections::BTreeSet;

/// The networks to create or recreate, and the Docker names the project uses.
pub(super) struct Declared<'a> {
    pub creates: Vec<PlannedAction>,
    /// Each recreated network's removal then creation, run once the containers that
    /// join it are gone.
    pub recreations: Vec<PlannedAction>,
    /// The Docker names of the networks recreated.
    pub recreated: BTreeSet<&'a str>,
    pub used: BTreeSet<&'a str>,
}

/// The project's networks.
pub(super) fn declared<'a>(
    desired: &'a Project,
    live: &Live,
    mask: Option<&EnvMask>,
) -> Result<Declared<'a>, PlanError> {
    let app = desired.name.as_str();
    let mut actions = Vec::new();
    let mut recreations = Vec::new();
    let mut recreated = BTreeSet::new();
    let mut used_networks = BTreeSet::new();
    for net in desired.networks.values() {
        used_networks.insert(net.name.as_str());
        if let Some(ln) = live.networks.get(&net.name) {
            if !net.external {
                check_owner("network", &net.name, &ln.labels, app)?;
                // Created by Mooring with other settings (a network made by Compose,
                // or before Mooring labelled them, is taken as it is).
                if ln
                    .labels
                    .get(crate::labels::SPEC_HASH)
                    .is_some_and(|h| *h != net.settings_hash())
                {
                    let why = changed_settings(net, ln, mask);
                    recreated.insert(net.name.as_str());
                    recreations.push(PlannedAction {
                        action: Action::RemoveNetwork {
                            network: net.name.clone(),
                        },
                        reason: format!("recreated: {why}"),
                    });
                    recreations.push(PlannedAction {
                        action: Action::CreateNetwork {
                            network: net.name.clone(),
                        },
                        reason: format!("recreated: {why}"),
                    });
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
        recreations,
        recreated,
        used: used_networks,
    })
}

/// What differs between the settings a network was created with (its spec label) and
/// the declared ones, field by field, values masked as the plan's (`mask`).
fn changed_settings(net: &Network, live: &LiveNetwork, mask: Option<&EnvMask>) -> String {
    let old = live
        .labels
        .get(crate::labels::SPEC)
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    let mut fields = Vec::new();
    if let Some(old) = old {
        super::fields::changes(&old, &net.settings(), mask, &mut fields);
    }
    if fields.is_empty() {
        "its settings changed (driver, driver_opts, ipam, internal, attachable, enable_ipv6 or labels)".into()
    } else {
        fields.join("; ")
    }
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
