//! The words of an app's state: its sync state, the kinds of its conditions and of its
//! events, and a condition itself, as typed values from the controller through the
//! store to the API and the UI. Each has one spelling (`as_str`), which is what the
//! store keeps, `Serialize` writes, `Deserialize` and [`FromStr`] read back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A stored or sent word that names none of a kind's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {word:?}")]
pub struct UnknownWord {
    /// Which kind of word (`sync state`, `condition kind`…).
    pub what: &'static str,
    /// The word as found.
    pub word: String,
}

/// Declares a word enum: its variants with their spellings, `as_str`, `ALL`,
/// `Display`, `FromStr`, and serde and the JSON schema as the spelling.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored, served and shown spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<$name, UnknownWord> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownWord { what: $what, word: s.to_string() })
            }
        }

    };
}

words! {
    /// Whether the host runs what the source says.
    SyncState, "sync state" {
        Synced = "Synced",
        OutOfSync = "OutOfSync",
        Unknown = "Unknown",
    }
}

words! {
    /// What a condition of an app says.
    ConditionKind, "condition kind" {
        /// The last reconcile failed.
        SyncFailed = "SyncFailed",
        /// It is retried after a backoff.
        Retrying = "Retrying",
        /// It is not retried until a new revision or a manual sync.
        RetriesExhausted = "RetriesExhausted",
        /// The app is pinned to a revision.
        Pinned = "Pinned",
        /// The asked-for revision is outside the allowed refs.
        RevisionRefused = "RevisionRefused",
        /// The revision's signature does not verify.
        VerificationFailed = "VerificationFailed",
        /// The revision does not render.
        RenderError = "RenderError",
        /// The app's policy refuses the rendered project.
        PolicyRefused = "PolicyRefused",
        /// An image of the revision does not build.
        BuildFailed = "BuildFailed",
        /// Swarm paused or rolled back the revision's rolling update (its new tasks
        /// failed): the tasks of the revision before run on.
        RolloutFailed = "RolloutFailed",
        /// The revision failed (its deploy, or its health within the timeout) and the
        /// revision before was deployed again (`sync.rollback`): held until a new one.
        RolledBack = "RolledBack",
        /// A volume the app writes to has no backup newer than `data.backup_max_age`.
        BackupStale = "BackupStale",
        /// The app's backups cannot be copied to one of its `backup_targets` (why).
        BackupCopyFailed = "BackupCopyFailed",
        /// A volume diverged from what the app declares.
        VolumeDiverged = "VolumeDiverged",
        /// A new revision waits (auto-sync is off).
        OutOfSync = "OutOfSync",
        /// Containers of removed services are kept (prune is off).
        OrphansKept = "OrphansKept",
        /// The app's host does not answer (with why, and when it last did).
        HostUnreachable = "HostUnreachable",
        /// The app's host answers as another Docker Engine than the one deployed to.
        HostReplaced = "HostReplaced",
    }
}

words! {
    /// What an app's event says happened (events are stored, streamed, and some
    /// notified; `notifications[].events` names these spellings).
    EventKind, "event kind" {
        /// A reconcile failed.
        SyncFailed = "sync_failed",
        /// A reconcile succeeded after failures.
        SyncRecovered = "sync_recovered",
        /// The host no longer matched the source.
        DriftDetected = "drift_detected",
        /// A resource of the app became unhealthy.
        HealthDegraded = "health_degraded",
        /// A revision could not be rendered.
        RenderFailed = "render_failed",
        /// An image of a revision could not be built.
        BuildFailed = "build_failed",
        /// The app's policy refused a revision.
        PolicyRefused = "policy_refused",
        /// An asked-for revision is outside the allowed refs.
        RevisionRefused = "revision_refused",
        /// A revision's signature does not verify.
        VerificationFailed = "verification_failed",
        /// The app's host stopped answering.
        HostUnreachable = "host_unreachable",
        /// The app's host answers as another Docker Engine.
        HostReplaced = "host_replaced",
        /// A revision failed and the one before was deployed again, its data restored
        /// where the app asks (`sync.rollback`).
        RolledBack = "rolled_back",
        /// A volume's newest backup became older than `data.backup_max_age`.
        BackupStale = "backup_stale",
        /// The app's backups could not be copied to one of its backup targets.
        BackupCopyFailed = "backup_copy_failed",
        /// Backups are copied to a target again after failures.
        BackupCopied = "backup_copied",
    }
}

/// One condition on an app (e.g. `VolumeDiverged`), with a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Condition {
    /// What the condition says.
    pub kind: ConditionKind,
    /// What it means for this app and what to do.
    pub message: String,
}

impl ConditionKind {
    /// A condition of this kind saying `message`.
    pub fn with(self, message: impl Into<String>) -> Condition {
        Condition {
            kind: self,
            message: message.into(),
        }
    }

    /// Something failed and waits for a person or a new revision: the app stands out as
    /// failing (the overview shows it red with the message, not as a grey Unknown).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            ConditionKind::SyncFailed
                | ConditionKind::RetriesExhausted
                | ConditionKind::RevisionRefused
                | ConditionKind::VerificationFailed
                | ConditionKind::RenderError
                | ConditionKind::PolicyRefused
                | ConditionKind::BuildFailed
                | ConditionKind::RolloutFailed
                | ConditionKind::RolledBack
                | ConditionKind::VolumeDiverged
                | ConditionKind::HostUnreachable
                | ConditionKind::HostReplaced
        )
    }

    /// "This revision was not deployed because of its content": a waiting caller's
    /// operation failed although the reconcile recorded it and goes on.
    pub fn refuses_revision(self) -> bool {
        matches!(
            self,
            ConditionKind::RenderError
                | ConditionKind::PolicyRefused
                | ConditionKind::BuildFailed
                | ConditionKind::RolloutFailed
                | ConditionKind::VerificationFailed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_word_is_spelled_once_everywhere() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize,
            T: for<'de> Deserialize<'de>,
        {
            for &v in all {
                let word = v.to_string();
                assert_eq!(serde_json::to_value(v).unwrap(), word.as_str());
                assert_eq!(serde_json::from_value::<T>(word.clone().into()).unwrap(), v);
                assert!(word.parse::<T>().is_ok_and(|p| p == v));
            }
        }
        check(SyncState::ALL);
        check(ConditionKind::ALL);
        check(EventKind::ALL);
        let e = "Nope".parse::<ConditionKind>().unwrap_err();
        assert_eq!(e.to_string(), "unknown condition kind \"Nope\"");
        assert!(serde_json::from_str::<SyncState>("\"synced\"").is_err());
    }
}
