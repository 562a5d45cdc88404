//! An app's loop: waits for a trigger (interval with jitter, new revision, request,
//! webhook, Docker event for self-heal, retry), runs one reconcile at a time under the
//! workers' semaphore, and keeps the retry count and exponential backoff.

use super::error::OperationError;
use super::{AppHandle, AppRuntime, Controller, Finished, Trigger, TriggerKind};
use crate::failure::OperationFailure;
use crate::notify::Notice;
use futures_util::FutureExt;
use mooring_core::state::ConditionKind;
use mooring_core::state::EventKind;
use mooring_store::{now_ms, AppStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

impl Controller {
    pub(super) async fn app_loop(
        self: Arc<Self>,
        app: Arc<AppHandle>,
        mut rx: mpsc::Receiver<Trigger>,
    ) {
        let mut shutdown = self.shutdown.subscribe();
        let mut next = Some(Trigger::of(TriggerKind::Startup));
        loop {
            let trigger = match next.take() {
                Some(t) => t,
                None => {
                    let (deadline, kind) = {
                        let rt = app.runtime.lock().await;
                        // A stack whose tasks are still starting, or being rescheduled
                        // off a node that went down, is looked at again soon: Swarm
                        // sends no event when a task comes up.
                        let settling = matches!(
                            rt.last_health,
                            Some(
                                mooring_core::Health::Progressing | mooring_core::Health::Degraded
                            )
                        ) && rt.failures == 0
                            // (not while failures are retried or a revision is held)
                            && rt.render_failure.is_none()
                            && self
                            .config
                            .hosts
                            .get(&app.config.host)
                            .is_some_and(|h| h.swarm);
                        // A probation's end still to come (once past, it is judged after
                        // the next reconcile that can judge it, never in a tight loop).
                        let now = Instant::now();
                        let probation_end =
                            rt.watch.as_ref().map(|w| w.deadline).filter(|d| *d > now);
                        match rt.next_retry {
                            // A probation's end is not put off by a retry's backoff.
                            Some(at) => {
                                (probation_end.map_or(at, |d| at.min(d)), TriggerKind::Retry)
                            }
                            // A revision on probation is looked at until it is Healthy
                            // or its time is up.
                            None if rt.watch.is_some() => (
                                probation_end.map_or(now + SETTLE, |d| d.min(now + SETTLE)),
                                TriggerKind::Interval,
                            ),
                            None if settling => (
                                Instant::now() + SETTLE.min(app.config.sync.interval),
                                TriggerKind::Interval,
                            ),
                            None => (
                                Instant::now()
                                    + app.config.sync.interval
                                    + jitter(&app.config.name, app.config.sync.interval),
                                TriggerKind::Interval,
                            ),
                        }
                    };
                    tokio::select! {
                        t = rx.recv() => match t { Some(t) => t, None => return },
                        _ = tokio::time::sleep_until(deadline.into()) => Trigger::of(kind),
                        _ = shutdown.changed() => return,
                    }
                }
            };
            if *shutdown.borrow() {
                if let Some(reply) = trigger.reply {
                    let _ = reply.send(Finished {
                        operation: None,
                        result: Err(OperationFailure::Stopping),
                    });
                }
                return;
            }
            // A panic fails this reconcile only: the app keeps its loop, the others theirs.
            let run = std::panic::AssertUnwindSafe(self.reconcile_app(&app, trigger));
            if let Err(panic) = run.catch_unwind().await {
                let e = format!(
                    "reconciling failed unexpectedly (a bug in Mooring; please report it with this message): {}",
                    crate::panic::message(&*panic)
                );
                tracing::error!(app = %app.config.name, error = %e, "reconcile panicked");
                self.event(&app.config.name, EventKind::SyncFailed, &e);
            }
        }
    }

    /// Reconciles one app and records what happened.
    pub(super) async fn reconcile_app(&self, app: &AppHandle, trigger: Trigger) {
        let _permit = self.workers.acquire().await;
        let mut rt = app.runtime.lock().await;
        let started = Instant::now();
        let name = app.config.name.clone();
        let _busy = self.activity.begin(
            format!("app {name}: {} reconcile", trigger.kind.as_str()),
            started,
        );
        let previous = self.store.app(&name).ok().flatten();
        let pinned = previous.as_ref().and_then(|s| s.pinned.clone());
        let mut status = self.status_before(app, previous.as_ref());
        // A probation outlives the daemon too: its deadline holds across a restart.
        // Read once, at start (later, this loop's own is the truth), and only while it
        // still fits: the app still rolls back, and the revision on probation is the one
        // deployed (or its deploy failed).
        if trigger.kind == TriggerKind::Startup
            && rt.watch.is_none()
            && app.config.sync.rollback.is_some()
        {
            if let Some(p) = previous
                .as_ref()
                .and_then(|p| p.probation.as_ref())
                .filter(|p| {
                    p.failed.is_some()
                        || previous.as_ref().and_then(|s| s.revision.as_deref())
                            == Some(&p.revision)
                })
            {
                rt.watch = Some(super::rollback::Watch::from_probation(p));
            }
        }
        // A rollback's hold outlives the daemon: the stored one, when this loop knows
        // none.
        if rt.render_failure.is_none() {
            if let Some(h) = previous.as_ref().and_then(|p| p.held.clone()) {
                rt.render_failure = Some((
                    h.revision,
                    super::operation::RenderFailure {
                        condition: h.condition.kind,
                        message: h.condition.message,
                    },
                ));
            }
        }

        if trigger.kind == TriggerKind::Startup {
            // The catalogue of backups mirrors the backup folder from the start.
            if let Err(e) = self.app_backups(&name).await {
                tracing::warn!(app = %name, error = %e, "cannot catalogue the app's backups");
            }
        }
        let result = self
            .run(app, &mut rt, &trigger, pinned.as_deref(), &mut status)
            .await;
        match &result {
            // Nothing ran: the person is shown the new plan; the app is as it was
            // (its conditions, failures and retries included).
            Err(OperationError::PlanChanged(_)) => {
                if let Some(p) = &previous {
                    status = p.clone();
                }
            }
            Err(e) => {
                let e = e.failure();
                self.count_failure(app, &mut rt, &e, previous.as_ref(), &mut status)
            }
            Ok(()) => self.clear_failures(app, &mut rt, &mut status),
        }
        self.judge_watch(app, &mut rt, &mut status, result.is_ok())
            .await;
        self.backup_freshness(app, &mut rt, &mut status).await;
        self.add_copy_conditions(app, &mut status.conditions);
        // A held revision: the host runs another than the source says.
        if status
            .conditions
            .iter()
            .any(|c| c.kind.refuses_revision() || c.kind == ConditionKind::RolledBack)
        {
            status.sync = mooring_core::state::SyncState::OutOfSync;
        }
        if let Some(rev) = &status.revision {
            self.learn_revision_info(app, rev).await;
        }
        // What the caller hears: a refused revision is recorded and not retried, yet
        // the caller's operation failed all the same.
        let failure = match &result {
            Err(e) => Some(e.failure()),
            Ok(()) => OperationFailure::refusal(&status.conditions),
        };
        if trigger.pin && failure.is_some() {
            // A failed rollback does not leave the app pinned to what it did not deploy.
            if let Err(e) = self.store.set_pin(&name, pinned.as_deref()) {
                tracing::error!(app = %name, error = %e, "cannot restore the pin");
            }
        }
        // A rolled back revision stays held across restarts (it would run its broken
        // migration again); the others are tried again once, with the configuration
        // as it is then (a policy exception granted, a variable set).
        status.held = rt
            .render_failure
            .as_ref()
            .filter(|(_, f)| f.condition() == ConditionKind::RolledBack)
            .map(|(rev, f)| mooring_store::Held {
                revision: rev.clone(),
                condition: f.condition().with(f.message.clone()),
            });
        status.probation = rt.watch.as_ref().map(super::rollback::Watch::probation);
        self.note_pin(&mut status);
        self.save_status(previous.as_ref(), &mut status, started);
        if let Some(reply) = trigger.reply {
            // This reconcile's operation, never an earlier one left in the status.
            let before = previous.as_ref().and_then(|p| p.last_operation);
            let operation = status.last_operation.filter(|id| Some(*id) != before);
            let _ = reply.send(Finished {
                operation,
                result: match failure {
                    Some(failure) => Err(failure),
                    None => Ok(status),
                },
            });
        }
    }

    /// A failed attempt: the next retry (with backoff) or, past the limit, none; a
    /// notification for the first failure of a series.
    fn count_failure(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        e: &OperationFailure,
        previous: Option<&AppStatus>,
        status: &mut AppStatus,
    ) {
        let name = &app.config.name;
        status
            .conditions
            .push(ConditionKind::SyncFailed.with(e.to_string()));
        rt.failures += 1;
        status.failures = rt.failures;
        if rt.failures <= app.config.sync.retry_limit {
            let backoff = backoff(
                app.config.sync.retry_backoff,
                app.config.sync.retry_max_backoff,
                rt.failures,
            );
            rt.next_retry = Some(Instant::now() + backoff);
            status.next_retry_at = Some(now_ms() + backoff.as_millis() as i64);
            status.conditions.push(ConditionKind::Retrying.with(format!(
                "attempt {} of {} failed; next try in {}s",
                rt.failures,
                app.config.sync.retry_limit + 1,
                backoff.as_secs()
            )));
        } else {
            rt.next_retry = None;
            status.next_retry_at = None;
            status
                .conditions
                .push(ConditionKind::RetriesExhausted.with(format!(
                    "{} attempts failed; waiting for a new revision or a manual sync",
                    rt.failures
                )));
        }
        if previous.map(|p| p.failures).unwrap_or(0) == 0 {
            self.notifier.send(Notice {
                event: EventKind::SyncFailed.as_str(),
                app: name.clone(),
                message: e.to_string(),
                revision: status.revision.clone(),
            });
        }
        self.event(name, EventKind::SyncFailed, &e.to_string());
    }

    /// A successful attempt ends a series of failures (and says so).
    fn clear_failures(&self, app: &AppHandle, rt: &mut AppRuntime, status: &mut AppStatus) {
        let name = &app.config.name;
        if rt.failures > 0 {
            self.notifier.send(Notice {
                event: EventKind::SyncRecovered.as_str(),
                app: name.clone(),
                message: format!("synced after {} failed attempts", rt.failures),
                revision: status.revision.clone(),
            });
            self.event(
                name,
                EventKind::SyncRecovered,
                "synced again after failures",
            );
        }
        rt.failures = 0;
        rt.next_retry = None;
        status.failures = 0;
        status.next_retry_at = None;
    }
}

/// How soon a stack that is not yet healthy is looked at again.
const SETTLE: Duration = Duration::from_secs(5);

/// Exponential backoff: `base × 2^(n−1)`, at most `max`.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(max)
}

/// A stable per-name jitter of up to a tenth of the interval, so apps and sources
/// sharing an interval do not all wake at once.
pub(super) fn jitter(name: &str, interval: Duration) -> Duration {
    let h = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let tenth = interval.as_millis() as u64 / 10;
    Duration::from_millis(if tenth == 0 { 0 } else { h % tenth })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(5), s(60), 1), s(5));
        assert_eq!(backoff(s(5), s(60), 2), s(10));
        assert_eq!(backoff(s(5), s(60), 4), s(40));
        assert_eq!(backoff(s(5), s(60), 5), s(60));
        assert_eq!(backoff(s(5), s(60), 500), s(60));
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        let i = Duration::from_secs(60);
        assert_eq!(jitter("blog", i), jitter("blog", i));
        assert!(jitter("blog", i) < Duration::from_secs(6));
        assert_eq!(jitter("x", Duration::from_millis(5)), Duration::ZERO);
    }
}
