//! Images: pulled before anything else is created, as `pull_policy` says (missing by
//! default; `always`; `never`, where a missing image stops the plan).

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
    for svc in desired.services.values() {
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
