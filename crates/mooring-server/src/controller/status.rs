//! What the daemon says about an app: its status and conditions, events, outgoing
//! notifications and metrics.

use super::{AppHandle, Controller, StreamEvent};
use crate::notify::Notice;
use mooring_core::state::ConditionKind;
use mooring_core::state::EventKind;
use mooring_core::{Health, Plan, ResourceHealth};
use mooring_store::{now_ms, AppStatus, NewEvent};
use mooring_vcs::redact_url;
use std::time::Instant;

impl Controller {
    /// The app's status as a reconcile starts from it: the stored one (or an unknown
    /// one), with the source as configured now and no conditions yet.
    pub(super) fn status_before(&self, app: &AppHandle, previous: Option<&AppStatus>) -> AppStatus {
        let source = redact_url(&app.spec.to_string());
        let mut status = previous
            .cloned()
            .unwrap_or_else(|| AppStatus::unknown(&app.config.name, &source, now_ms()));
        status.source = source;
        status.conditions.clear();
        status
    }

    /// The app's pin as stored now, and its condition.
    pub(super) fn note_pin(&self, status: &mut AppStatus) {
        let name = status.name.clone();
        status.pinned = self.store.app(&name).ok().flatten().and_then(|s| s.pinned);
        if let Some(pin) = &status.pinned {
            status.conditions.push(ConditionKind::Pinned.with(format!(
                "pinned to {pin}; auto-sync holds this revision until it is unpinned (Unpin on its page, or `mooring app unpin {name}`)"
            )));
        }
    }

    /// Saves (and streams) the status when it changed — a no-op reconcile writes
    /// nothing — and records the reconcile's metrics.
    pub(super) fn save_status(
        &self,
        previous: Option<&AppStatus>,
        status: &mut AppStatus,
        started: Instant,
    ) {
        let name = status.name.clone();
        let changed = previous.is_none_or(|p| {
            AppStatus {
                updated_at: status.updated_at,
                ..p.clone()
            } != *status
        });
        if changed {
            status.updated_at = now_ms();
            if let Err(e) = self.store.put_app(status) {
                tracing::error!(app = %name, error = %e, "cannot save app status");
            }
            let _ = self.stream.send(StreamEvent {
                kind: "app",
                app: name.clone(),
                data: serde_json::to_value(&*status).unwrap_or_default(),
            });
        }
        self.metrics.observe(
            "mooring_reconcile_duration_seconds",
            &[("app", &name)],
            started.elapsed(),
        );
        self.metrics.app_info(
            &name,
            status.sync.as_str(),
            status.health.as_str(),
            status.revision.as_deref().unwrap_or(""),
        );
    }

    /// How long a volume's backup or restore (`kind`) took, for the histogram.
    pub(super) fn data_duration(&self, app: &str, kind: &'static str, took: std::time::Duration) {
        self.metrics.observe(
            "mooring_data_operation_duration_seconds",
            &[("app", app), ("kind", kind)],
            took,
        );
    }

    /// Records an event for the app and streams it.
    pub(super) fn event(&self, app: &str, kind: EventKind, message: &str) {
        let failure = matches!(
            kind,
            EventKind::SyncFailed
                | EventKind::RenderFailed
                | EventKind::BuildFailed
                | EventKind::PolicyRefused
                | EventKind::RevisionRefused
                | EventKind::VerificationFailed
                | EventKind::HealthDegraded
                | EventKind::HostUnreachable
                | EventKind::HostReplaced
        );
        if failure {
            tracing::warn!(app, kind = kind.as_str(), message, "event");
        } else {
            tracing::info!(app, kind = kind.as_str(), message, "event");
        }
        let ev = NewEvent {
            app: Some(app.to_string()),
            kind,
            message: message.to_string(),
            at: now_ms(),
        };
        if let Ok(id) = self.store.add_event(&ev) {
            let _ = self.stream.send(StreamEvent {
                kind: "event",
                app: app.to_string(),
                data: serde_json::json!({"id": id, "kind": kind, "message": message}),
            });
        }
    }

    /// The host drifted from the deployed revision: an event, a metric, a notice.
    pub(super) fn drift_detected(
        &self,
        name: &str,
        plan: &Plan,
        reverting: bool,
        deployed: Option<String>,
    ) {
        self.metrics
            .inc("mooring_drift_events_total", &[("app", name)]);
        let what: Vec<String> = plan
            .actions
            .iter()
            .map(|a| format!("{} ({})", a.action, a.reason))
            .collect();
        let message = format!(
            "{}{}",
            what.join("; "),
            if reverting {
                "; reverting"
            } else {
                "; self_heal is off, left as is"
            }
        );
        self.event(name, EventKind::DriftDetected, &message);
        self.notifier.send(Notice {
            event: EventKind::DriftDetected.as_str(),
            app: name.to_string(),
            message,
            revision: deployed,
        });
    }

    /// The app became degraded: an event and a notice naming its degraded containers.
    pub(super) fn health_degraded(
        &self,
        name: &str,
        resources: &[ResourceHealth],
        revision: Option<String>,
    ) {
        let bad: Vec<String> = resources
            .iter()
            .filter(|r| r.health == Health::Degraded)
            .map(|r| format!("{}: {}", r.container, r.message))
            .collect();
        let message = bad.join("; ");
        self.event(name, EventKind::HealthDegraded, &message);
        self.notifier.send(Notice {
            event: EventKind::HealthDegraded.as_str(),
            app: name.to_string(),
            message,
            revision,
        });
    }
}
