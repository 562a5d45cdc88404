//! Volumes — the data. Created when missing. A declared volume whose definition changed is
//! never silently changed or deleted: the plan stops with `VolumeDiverged` (unless the
//! user asked to recreate it: backup, remove, create, restore). An undeclared one is
//! kept (protect), or — with prune and `backup-then-delete` — backed up, and removed
//! only after the backup verified. With `backup: on-change`, a volume whose writers'
//! containers change is backed up before anything touches them.

use super::{check_owner, is_app_resource, Action, PlanError, PlanOptions, PlannedAction};
use crate::desired::{DataPolicy, Project};
use crate::live::Live;
use std::collections::{BTreeMap, BTreeSet};

/// What the declared and undeclared volumes need.
pub(super) struct Declared<'a> {
    /// Volumes to create.
    pub creates: Vec<PlannedAction>,
    /// Backups and removals (and the recreations' restores), after the containers using
    /// them are gone.
    pub removals: Vec<PlannedAction>,
    /// Docker names of volumes that are recreated.
    pub recreated: BTreeSet<&'a str>,
}

/// The project's volumes, and the app's volumes it no longer declares.
pub(super) fn declared<'a>(
    desired: &'a Project,
    live: &Live,
    options: &PlanOptions,
    notes: &mut Vec<String>,
) -> Result<Declared<'a>, PlanError> {
    let app = desired.name.as_str();
    let mut actions = Vec::new();
    let mut used_volumes = BTreeSet::new();
    let mut volume_removals = Vec::new();
    let mut recreated: BTreeSet<&str> = BTreeSet::new();
    for vol in desired.volumes.values() {
        used_volumes.insert(vol.name.as_str());
        if let Some(lv) = live.volumes.get(&vol.name) {
            if !vol.external {
                check_owner("volume", &vol.name, &lv.labels, app)?;
            }
            let driver = vol.driver.as_deref().unwrap_or("local");
            let diverged = !vol.external && (lv.driver != driver || lv.options != vol.driver_opts);
            if diverged && options.recreate_volumes.contains(&vol.name) {
                let was = describe_volume(&lv.driver, &lv.options);
                let now = describe_volume(driver, &vol.driver_opts);
                for (action, reason) in [
                    (
                        Action::BackupVolume {
                            volume: vol.name.clone(),
                        },
                        format!("recreated ({was} → {now}): a verified backup first"),
                    ),
                    (
                        Action::RemoveVolume {
                            volume: vol.name.clone(),
                        },
                        "removed to be recreated: its definition cannot change in place"
                            .to_string(),
                    ),
                    (
                        Action::CreateVolume {
                            volume: vol.name.clone(),
                        },
                        format!("created again with {now}"),
                    ),
                    (
                        Action::RestoreVolume {
                            volume: vol.name.clone(),
                        },
                        "data restored from the backup just taken".to_string(),
                    ),
                ] {
                    volume_removals.push(PlannedAction { action, reason });
                }
                recreated.insert(vol.name.as_str());
                continue;
            }
            if let (false, Some(id)) = (diverged, options.recreations.get(&vol.name)) {
                // Cut short after it was created again: its data back before its
                // writers start.
                volume_removals.push(PlannedAction {
                    action: Action::RestoreVolume {
                        volume: vol.name.clone(),
                    },
                    reason: format!("its recreation was cut short: data restored from backup {id}"),
                });
                recreated.insert(vol.name.as_str());
                continue;
            }
            if diverged {
                return Err(PlanError::VolumeDiverged {
                    volume: vol.name.clone(),
                    declared: describe_volume(driver, &vol.driver_opts),
                    live: describe_volume(&lv.driver, &lv.options),
                });
            }
            continue;
        }
        if vol.external {
            return Err(PlanError::ExternalVolumeMissing(vol.name.clone()));
        }
        if let Some(id) = options.recreations.get(&vol.name) {
            // Cut short after its removal: created again, its data back.
            let reason = format!("its recreation was cut short: created again from backup {id}");
            for action in [
                Action::CreateVolume {
                    volume: vol.name.clone(),
                },
                Action::RestoreVolume {
                    volume: vol.name.clone(),
                },
            ] {
                volume_removals.push(PlannedAction {
                    action,
                    reason: reason.clone(),
                });
            }
            recreated.insert(vol.name.as_str());
            continue;
        }
        actions.push(PlannedAction {
            action: Action::CreateVolume {
                volume: vol.name.clone(),
            },
            reason: "volume does not exist".into(),
        });
    }
    for vol in live.volumes.values() {
        if used_volumes.contains(vol.name.as_str()) || !is_app_resource(&vol.labels, app) {
            continue;
        }
        // The volume's own policy (remembered in a label at creation) wins over the app's.
        let policy = vol
            .labels
            .get(crate::labels::DATA_POLICY)
            .and_then(|p| DataPolicy::parse(p))
            .unwrap_or(options.volume_policy);
        match (policy, options.prune) {
            (DataPolicy::BackupThenDelete, true) => {
                volume_removals.push(PlannedAction {
                    action: Action::BackupVolume { volume: vol.name.clone() },
                    reason: "no longer declared; data policy backup-then-delete: a verified backup first".into(),
                });
                volume_removals.push(PlannedAction {
                    action: Action::RemoveVolume { volume: vol.name.clone() },
                    reason: "no longer declared; removed only after its backup verified".into(),
                });
            }
            (DataPolicy::BackupThenDelete, false) => notes.push(format!(
                "volume {} is no longer declared; kept (backup-then-delete removes it only with prune)",
                vol.name
            )),
            (DataPolicy::Protect, _) => notes.push(format!(
                "volume {} is no longer declared; kept (protected: volumes are data and are never removed by sync)",
                vol.name
            )),
        }
    }
    Ok(Declared {
        creates: actions,
        removals: volume_removals,
        recreated,
    })
}

/// `backup: on-change`: a backup of every existing volume whose writers' containers
/// `changing` says change.
pub(super) fn backups_on_change(
    desired: &Project,
    live: &Live,
    options: &PlanOptions,
    recreated: &BTreeSet<&str>,
    changing: impl Fn(&str) -> bool,
) -> Vec<PlannedAction> {
    let mut actions = Vec::new();
    for vol in desired.volumes.values() {
        let always = options.always_back_up.contains(&vol.name);
        let wanted = vol.backup_on_change.unwrap_or(options.backup_on_change) || always;
        if !wanted || recreated.contains(vol.name.as_str()) || !live.volumes.contains_key(&vol.name)
        {
            continue;
        }
        let writers: Vec<&str> = desired
            .services_in_order()
            .into_iter()
            .filter(|s| {
                s.mounts.iter().any(|m| {
                    m.kind == crate::MountKind::Volume && m.source == vol.name && !m.read_only
                })
            })
            .map(|s| s.name.as_str())
            .filter(|s| changing(s))
            .collect();
        // One an automatic rollback would restore: before any change at all (what
        // breaks its data may run in another service, reaching it over the network).
        let anything = desired.services.keys().any(|s| changing(s));
        if writers.is_empty() && always && anything {
            actions.push(PlannedAction {
                action: Action::BackupVolume {
                    volume: vol.name.clone(),
                },
                reason: "restore_on_rollback — the deploy changes containers: a verified backup first, for a rollback to restore".into(),
            });
        } else if !writers.is_empty() {
            actions.push(PlannedAction {
                action: Action::BackupVolume {
                    volume: vol.name.clone(),
                },
                reason: format!(
                    "backup: on-change — the containers of {} change: a verified backup first (running writers are stopped for the copy)",
                    writers.join(", ")
                ),
            });
        }
    }
    actions
}

fn describe_volume(driver: &str, opts: &BTreeMap<String, String>) -> String {
    if opts.is_empty() {
        format!("driver {driver}")
    } else {
        let o: Vec<String> = opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("driver {driver} with {}", o.join(","))
    }
}
