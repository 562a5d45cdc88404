//! The controller's errors: which step failed, carrying the error that made it fail.
//! What a waiting caller hears (`OperationFailure`) is derived from them in one place
//! (`OperationError::failure`), and the API turns a `ControlError` into an HTTP status
//! in one place (`api::control_status`).

use crate::failure::OperationFailure;
use mooring_backup::BackupError;
use mooring_core::plan::PlanError;
use mooring_docker::reconcile::ReconcileError;
use mooring_docker::ProviderError;
use mooring_store::StoreError;
use mooring_vcs::{SourceError, VerifyError};
use tokio::task::JoinError;

/// An error of the controller's API.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("app {0} is not configured")]
    UnknownApp(String),
    #[error("host {0} is not configured")]
    UnknownHost(String),
    /// A configured Docker host could not be reached (start-up, reload).
    #[error("host {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: ProviderError,
    },
    /// The app's host has no connection (a bug: every configured host is connected).
    #[error("host {0} is not connected")]
    NotConnected(String),
    /// Docker failed while observing.
    #[error(transparent)]
    Docker(#[from] ProviderError),
    /// The daemon stops and takes no more work.
    #[error("the daemon is stopping")]
    Stopping,
    /// The backups folder could not be read.
    #[error(transparent)]
    Backups(#[from] BackupError),
    /// The store failed (boxed: it is the largest error, and every result carries it).
    #[error(transparent)]
    Store(Box<StoreError>),
    /// Blocking work panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] JoinError),
    /// What a diff met, with the kind the API answers with.
    #[error(transparent)]
    Operation(#[from] OperationFailure),
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> ControlError {
        ControlError::Store(Box::new(e))
    }
}

/// Reaching a source (a fetch, an explicit revision, a history check) failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceFailure {
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A plain folder has only its current content.
    #[error("{spec} has no history; revision {revision} is not its current content")]
    NoHistory { spec: String, revision: String },
    #[error(transparent)]
    Task(#[from] JoinError),
}

/// Why an asked-for revision may not be deployed (see `allowed_revision`).
#[derive(Debug, thiserror::Error)]
pub enum RevisionRefused {
    #[error("source: {0}")]
    Source(#[from] SourceFailure),
    #[error(
        "revision {asked} ({describe}) is not in the history of {reference}, the app's configured ref; \
         only revisions reachable from it may be deployed. To deploy other refs, name them \
         (or a `prefix*` pattern) in the app's `source.allow_refs` in mooring.yaml"
    )]
    NotInHistory {
        asked: String,
        describe: String,
        reference: String,
    },
}

/// The revision's signature could not be checked or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyFailure {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Task(#[from] JoinError),
}

/// A step of an operation that failed and is retried.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    #[error("source: {0}")]
    Source(#[from] SourceFailure),
    #[error(transparent)]
    Refused(#[from] RevisionRefused),
    /// The plan conflicts with the host (a diverged volume, a missing external).
    #[error(transparent)]
    Plan(PlanError),
    #[error("host {0} is not connected")]
    NotConnected(String),
    /// The host's Engine does not answer (its watcher's last ping failed).
    #[error("{0}")]
    HostUnreachable(String),
    /// The host's Engine is not the one it is known by (a person must accept it).
    #[error("{0}")]
    HostReplaced(String),
    /// Docker failed, or the deploy tree could not be written.
    #[error(transparent)]
    Docker(ReconcileError),
    /// An action of the plan failed: `action: error`.
    #[error("{0}")]
    Action(String),
    /// The plan is not the one confirmed; nothing was applied.
    #[error("{0}")]
    PlanChanged(String),
    #[error(transparent)]
    Store(Box<StoreError>),
}

impl From<StoreError> for OperationError {
    fn from(e: StoreError) -> OperationError {
        OperationError::Store(Box::new(e))
    }
}

impl From<ReconcileError> for OperationError {
    fn from(e: ReconcileError) -> OperationError {
        match e {
            ReconcileError::Plan(e) => OperationError::Plan(e),
            e @ ReconcileError::PlanChanged(_) => OperationError::PlanChanged(e.to_string()),
            e => OperationError::Docker(e),
        }
    }
}

impl OperationError {
    /// What the caller waiting for the operation hears: the kind, and the message.
    pub fn failure(&self) -> OperationFailure {
        let message = self.to_string();
        match self {
            OperationError::Source(_) => OperationFailure::Source(message),
            OperationError::Refused(_) => OperationFailure::Invalid(message),
            OperationError::PlanChanged(_) => OperationFailure::PlanChanged(message),
            OperationError::Plan(_) | OperationError::HostReplaced(_) => {
                OperationFailure::Conflict(message)
            }
            OperationError::NotConnected(_)
            | OperationError::HostUnreachable(_)
            | OperationError::Docker(_)
            | OperationError::Action(_)
            | OperationError::Store(_) => OperationFailure::Apply(message),
        }
    }
}
