//! The words of an app's state: its sync state, the kinds of its conditions and of its
//! events, as typed values. The store and the API keep them as the same strings (`as_str`, and
//! `Serialize` gives the same spelling).

use mooring_store::Condition;
use serde::Serialize;

/// Whether the host runs what the source says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SyncState {
    Synced,
    OutOfSync,
    Unknown,
}

impl SyncState {
    /// The stored and served spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "Synced",
            SyncState::OutOfSync => "OutOfSync",
            SyncState::Unknown => "Unknown",
        }
    }
}

/// What a condition of an app says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConditionKind {
    /// The last reconcile failed.
    SyncFailed,
    /// It is retried after a backoff.
    Retrying,
    /// It is not retried until a new revision or a manual sync.
    RetriesExhausted,
    /// The app is pinned to a revision.
    Pinned,
    /// The asked-for revision is outside the allowed refs.
    RevisionRefused,
    /// The revision's signature does not verify.
    VerificationFailed,
    /// The revision does not render.
    RenderError,
    /// The app's policy refuses the rendered project.
    PolicyRefused,
    /// A volume diverged from what the app declares.
    VolumeDiverged,
    /// A new revision waits (auto-sync is off).
    OutOfSync,
    /// Containers of removed services are kept (prune is off).
    OrphansKept,
}

impl ConditionKind {
    /// The stored and served spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionKind::SyncFailed => "SyncFailed",
            ConditionKind::Retrying => "Retrying",
            ConditionKind::RetriesExhausted => "RetriesExhausted",
            ConditionKind::Pinned => "Pinned",
            ConditionKind::RevisionRefused => "RevisionRefused",
            ConditionKind::VerificationFailed => "VerificationFailed",
            ConditionKind::RenderError => "RenderError",
            ConditionKind::PolicyRefused => "PolicyRefused",
            ConditionKind::VolumeDiverged => "VolumeDiverged",
            ConditionKind::OutOfSync => "OutOfSync",
            ConditionKind::OrphansKept => "OrphansKept",
        }
    }

    /// A condition of this kind saying `message`.
    pub fn with(self, message: impl Into<String>) -> Condition {
        Condition {
            kind: self.as_str().to_string(),
            message: message.into(),
        }
    }

    /// "This revision was not deployed because of its content": a waiting caller's
    /// operation failed although the reconcile recorded it and goes on.
    pub fn refuses_revision(self) -> bool {
        matches!(
            self,
            ConditionKind::RenderError
                | ConditionKind::PolicyRefused
                | ConditionKind::VerificationFailed
        )
    }

    /// Every kind, for lookups by spelling.
    pub const ALL: [ConditionKind; 11] = [
        ConditionKind::SyncFailed,
        ConditionKind::Retrying,
        ConditionKind::RetriesExhausted,
        ConditionKind::Pinned,
        ConditionKind::RevisionRefused,
        ConditionKind::VerificationFailed,
        ConditionKind::RenderError,
        ConditionKind::PolicyRefused,
        ConditionKind::VolumeDiverged,
        ConditionKind::OutOfSync,
        ConditionKind::OrphansKept,
    ];

    /// The kind spelled `s`, if it is one.
    pub fn parse(s: &str) -> Option<ConditionKind> {
        ConditionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What an app's event says happened (events are stored, streamed, and some notified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A reconcile failed.
    SyncFailed,
    /// A reconcile succeeded after failures.
    SyncRecovered,
    /// The host no longer matched the source.
    DriftDetected,
    /// A resource of the app became unhealthy.
    HealthDegraded,
    /// A revision could not be rendered.
    RenderFailed,
    /// The app's policy refused a revision.
    PolicyRefused,
    /// An asked-for revision is outside the allowed refs.
    RevisionRefused,
    /// A revision's signature does not verify.
    VerificationFailed,
}

impl EventKind {
    /// The stored, streamed and notified spelling (`notifications[].events` names
    /// these).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::SyncFailed => "sync_failed",
            EventKind::SyncRecovered => "sync_recovered",
            EventKind::DriftDetected => "drift_detected",
            EventKind::HealthDegraded => "health_degraded",
            EventKind::RenderFailed => "render_failed",
            EventKind::PolicyRefused => "policy_refused",
            EventKind::RevisionRefused => "revision_refused",
            EventKind::VerificationFailed => "verification_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_as_stored() {
        for k in ConditionKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(ConditionKind::parse(k.as_str()), Some(k));
        }
        for s in [SyncState::Synced, SyncState::OutOfSync, SyncState::Unknown] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(ConditionKind::parse("Nope"), None);
    }
}
