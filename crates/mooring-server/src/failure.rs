//! Why an operation someone waited for failed. The controller says which kind of
//! failure it met; the API turns the kind into an HTTP status in one place
//! (`api::failure_status`), so a failed sync, rollback or pin-and-sync is never
//! answered as a success.

use mooring_store::Condition;

/// The failure of an operation a caller waits for (`POST /api/v1/apps/NAME/sync`,
/// `rollback`), as the controller reports it. The message says what, where
/// (`file:line:col` for a render error) and, where it can, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationFailure {
    /// The revision cannot be deployed as it is: a render or validation error, a
    /// policy refusal, a signature that does not verify, a revision outside the
    /// allowed refs. Nothing was applied.
    #[error("{0}")]
    Invalid(String),
    /// The plan conflicts with the host (a diverged volume, an external resource that
    /// is missing, an image that may not be pulled). Nothing was applied.
    #[error("{0}")]
    Conflict(String),
    /// The source could not be fetched or the revision was not found.
    #[error("{0}")]
    Source(String),
    /// Docker, or an action of the plan, failed.
    #[error("{0}")]
    Apply(String),
    /// The daemon stopped before the operation ran.
    #[error("the daemon is stopping; the operation did not run")]
    Stopping,
    /// The plan is not the one the person confirmed (the host or the revision changed
    /// since). Nothing was applied; not a failure of the app.
    #[error("{0}")]
    PlanChanged(String),
}

impl OperationFailure {
    /// A stable name for the kind (the API's `kind` field).
    pub fn kind(&self) -> &'static str {
        match self {
            OperationFailure::Invalid(_) => "invalid",
            OperationFailure::Conflict(_) => "conflict",
            OperationFailure::Source(_) => "source",
            OperationFailure::Apply(_) => "apply",
            OperationFailure::Stopping => "stopping",
            OperationFailure::PlanChanged(_) => "plan_changed",
        }
    }

    /// The failure a reconcile that returned without error still reports to a
    /// waiting caller: the revision was refused (its render failed, its signature did
    /// not verify) and is recorded, not retried, so the reconcile itself "succeeded".
    pub fn refusal(conditions: &[Condition]) -> Option<OperationFailure> {
        conditions
            .iter()
            .find(|c| c.kind.refuses_revision())
            .map(|c| OperationFailure::Invalid(c.message.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(kind: &str, message: &str) -> Condition {
        Condition {
            kind: kind.parse().unwrap(),
            message: message.into(),
        }
    }

    #[test]
    fn refused_revisions_are_failures_and_other_conditions_are_not() {
        let render = condition(
            "RenderError",
            "compose.yaml:5:5: services.web: key `build` is not supported",
        );
        assert_eq!(
            OperationFailure::refusal(&[condition("Pinned", "p"), render.clone()]),
            Some(OperationFailure::Invalid(render.message.clone()))
        );
        assert_eq!(
            OperationFailure::refusal(&[condition("VerificationFailed", "bad signature")])
                .map(|f| f.kind()),
            Some("invalid")
        );
        assert_eq!(
            OperationFailure::refusal(&[condition(
                "PolicyRefused",
                "compose.yaml:7:9: privileged"
            )])
            .map(|f| f.kind()),
            Some("invalid")
        );
        assert_eq!(
            OperationFailure::refusal(&[condition("OrphansKept", "x"), condition("Pinned", "y")]),
            None
        );
    }
}
