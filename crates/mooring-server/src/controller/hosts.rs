//! Each host's watcher: whether its Engine answers (pinged, with backoff while it does
//! not), its Docker event stream for self-heal while it does, and its apps reconciled
//! when it comes back (events may have been missed). One task per host, each with its
//! own connection and timeouts, so a host that is down or slow never holds up another.
//! What the watcher last saw ([`HostHealth`]) stops operations on an unreachable host
//! at once with `HostUnreachable` instead of waiting on its timeouts.

use super::{Controller, Trigger, TriggerKind};
use futures_util::StreamExt;
use mooring_core::state::EventKind;
use mooring_docker::Provider;
use mooring_store::now_ms;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait between two pings of a host that does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the watcher last saw of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostHealth {
    /// Why the last ping failed, while the Engine does not answer.
    pub(crate) unreachable: Option<String>,
    /// When the Engine last answered (Unix ms).
    pub(crate) last_seen: Option<i64>,
}

/// A host's health, shared by its watcher and the operations on it.
#[derive(Debug, Default)]
pub(crate) struct HostState(Mutex<HostHealth>);

impl HostState {
    pub(crate) fn get(&self) -> HostHealth {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records a failed ping; whether the host answered until now.
    fn down(&self, why: String) -> bool {
        let mut h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let was_up = h.unreachable.is_none();
        h.unreachable = Some(why);
        was_up
    }

    /// Records an answer; whether the host was unreachable until now.
    fn up(&self) -> bool {
        let mut h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        h.last_seen = Some(now_ms());
        h.unreachable.take().is_some()
    }
}

impl Controller {
    /// Watches one host until the daemon stops.
    pub(super) async fn watch_host(self: Arc<Self>, host: String, provider: Provider) {
        let mut shutdown = self.shutdown.subscribe();
        let state = self.host_state(&host);
        let mut backoff = Duration::from_secs(1);
        loop {
            if let Err(e) = provider.ping().await {
                let why = e.to_string();
                if state.down(why.clone()) {
                    tracing::warn!(host = %host, error = %why, "host unreachable");
                    for app in self.apps.values().filter(|a| a.config.host == host) {
                        self.event(&app.config.name, EventKind::HostUnreachable, &why);
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            backoff = Duration::from_secs(1);
            if state.up() {
                tracing::info!(host = %host, "host reachable again");
                // It was away: what happened there meanwhile is not known.
                self.reconcile_host_apps(&host);
            }
            let mut events = Box::pin(provider.container_events());
            loop {
                tokio::select! {
                    ev = events.next() => match ev {
                        Some(Ok(ev)) => {
                            let Some(app) = self.apps.get(&ev.app) else { continue };
                            if app.config.host != host {
                                continue;
                            }
                            tracing::debug!(app = %ev.app, container = %ev.container, action = %ev.action, "container event");
                            let _ = app.trigger.try_send(Trigger::of(TriggerKind::Drift));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(host = %host, error = %e, "Docker event stream failed; reconnecting");
                            break;
                        }
                        None => break,
                    },
                    _ = shutdown.changed() => return,
                }
            }
            // The stream ended: events may have been missed, so look at every app of
            // this host once it answers again.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.changed() => return,
            }
            if provider.ping().await.is_ok() {
                state.up();
                self.reconcile_host_apps(&host);
            }
        }
    }

    fn reconcile_host_apps(&self, host: &str) {
        for app in self.apps.values().filter(|a| a.config.host == host) {
            let _ = app.trigger.try_send(Trigger::of(TriggerKind::Drift));
        }
    }

    /// The health of `host` before an operation on it: one marked unreachable, or
    /// not seen yet, is asked first (it may be back, or up, before its watcher's next
    /// ping).
    pub(super) async fn host_health_now(&self, host: &str, provider: &Provider) -> HostHealth {
        let state = self.host_state(host);
        let health = state.get();
        if health.unreachable.is_some() || health.last_seen.is_none() {
            match provider.ping().await {
                Ok(()) => {
                    state.up();
                }
                Err(e) => {
                    state.down(e.to_string());
                }
            }
        }
        state.get()
    }

    /// The health of `host` (a configured one; others read as healthy).
    pub(crate) fn host_state(&self, host: &str) -> Arc<HostState> {
        self.host_states.get(host).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_down_until_it_answers_again() {
        let s = HostState::default();
        assert_eq!(s.get(), HostHealth::default());
        assert!(!s.up(), "it was not down");
        let seen = s.get().last_seen;
        assert!(seen.is_some());
        assert!(s.down("connection refused".into()), "went down");
        assert!(!s.down("connection refused".into()), "still down");
        assert_eq!(s.get().unreachable.as_deref(), Some("connection refused"));
        assert_eq!(s.get().last_seen, seen, "last seen stays");
        assert!(s.up(), "came back");
        assert_eq!(s.get().unreachable, None);
    }
}
