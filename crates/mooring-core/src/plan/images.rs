//! Images: pulled before anything else is created, as `pull_policy` says (missing by
//! default; `always`; `never`, where a missing image stops the plan); a `build:`
//! service's image is built when it is missing or was built from other inputs (its
//! `io.mooring.build` label), never pulled.

use super::{Action, PlanError, PlanOptions, PlannedAction};
use crate::desired::{Project, PullPolicy};
use crate::live::Live;
use std::collections::BTreeMap;

/// The pulls the project needs, one per image.
pub(super) fn pulls(
    desired: &Project,
    live: &Live,
    options: &PlanOptions,
) -> Result<Vec<PlannedAction>, PlanError> {
    let mut actions = Vec::new();
    let mut images: BTreeMap<&str, (&str, PullPolicy)> = BTreeMap::new();
    // Images a service builds are never pulled, also for the services that run them.
    let built: std::collections::BTreeSet<&str> = desired
        .services
        .values()
        .filter(|s| s.build.is_some())
        .map(|s| s.image.as_str())
        .collect();
    for svc in desired.services.values() {
        if svc.build.is_none() && built.contains(svc.image.as_str()) {
            continue;
        }
        if let Some(build) = &svc.build {
            let reason = match live.image_builds.get(&svc.image) {
                _ if !live.images.contains_key(&svc.image) => "image is not present on the host",
                Some(inputs) if *inputs == build.inputs => continue,
                Some(_) => "its build inputs changed (context, Dockerfile, args or target)",
                None => "the image present was not built from this context",
            };
            actions.push(PlannedAction {
                action: Action::BuildImage {
                    service: svc.name.clone(),
                    image: svc.image.clone(),
                },
                reason: reason.into(),
            });
            continue;
        }
        let entry = images
            .entry(svc.image.as_str())
            .or_insert((svc.name.as_str(), svc.pull_policy));
        if svc.pull_policy == PullPolicy::Always {
            entry.1 = PullPolicy::Always;
        }
    }
    for (image, (service, policy)) in &images {
        let present = live.images.contains_key(*image);
        let reason = match policy {
            PullPolicy::Always if !options.images_pulled => "pull_policy is always",
            PullPolicy::Never if !present => {
                return Err(PlanError::ImageMissing {
                    service: (*service).to_string(),
                    image: (*image).to_string(),
                })
            }
            _ if !present => "image is not present on the host",
            _ => continue,
        };
        actions.push(PlannedAction {
            action: Action::PullImage {
                image: (*image).to_string(),
            },
            reason: reason.into(),
        });
    }
    Ok(actions)
}
