//! Each host's watcher: whether its Engine answers (pinged, with backoff while it does
//! not), its Docker event stream for self-heal while it does, and its apps reconciled
//! when it comes back (events may have been missed). One task per host, each with its
//! own connection and timeouts, so a host that is down or slow never holds up another.
//! What the watcher last saw ([`HostHealth`]) stops operations on an unreachable host
//! at once with `HostUnreachable` instead of waiting on its timeouts. Each time a host
//! answers after it did not (or first), its Engine's id is compared with the one the
//! store knows it by (recorded when first reached): another id is another machine,
//! whose volumes are not the data deployed there, so its apps stop with `HostReplaced`
//! until a person accepts the new Engine ([`Controller::accept_host`]).

use super::{ControlError, Controller, Trigger, TriggerKind};
use futures_util::StreamExt;
use mooring_core::state::EventKind;
use mooring_docker::Provider;
use mooring_store::now_ms;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait between two pings of a host that does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often a host whose event stream is quiet is asked again.
const RECHECK: Duration = Duration::from_secs(15);

/// What the watcher last saw of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostHealth {
    /// Why the last ping failed, while the Engine does not answer.
    pub unreachable: Option<String>,
    /// When the Engine last answered (Unix ms).
    pub last_seen: Option<i64>,
    /// Its Engine's id, once checked since it last came (back).
    pub engine_id: Option<String>,
    /// Why it is not deployed to: its Engine is not the one it is known by.
    pub replaced: Option<String>,
    /// Its Engine manages a Swarm, as it said when its id was checked.
    pub swarm_manager: bool,
}

/// A host's health, shared by its watcher and the operations on it.
#[derive(Debug, Default)]
pub(crate) struct HostState(Mutex<HostHealth>);

impl HostState {
    pub(crate) fn get(&self) -> HostHealth {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records a failed ping; whether the host answered until now. Whatever answers
    /// next is checked again.
    fn down(&self, why: String) -> bool {
        let mut h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let was_up = h.unreachable.is_none();
        h.unreachable = Some(why);
        h.engine_id = None;
        was_up
    }

    /// Asks for the Engine's id to be checked again before the next operation.
    fn recheck(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).engine_id = None;
    }

    /// Records the Engine's id as checked: the known one, or (`replaced`) not.
    fn checked(&self, (id, manager): (String, bool), replaced: Option<String>) {
        let mut h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        h.engine_id = Some(id);
        h.swarm_manager = manager;
        h.replaced = replaced;
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
        let mut backoff = Duration::from_secs(1);
        loop {
            if self
                .check_host(&host, &provider)
                .await
                .unreachable
                .is_some()
            {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            backoff = Duration::from_secs(1);
            let mut events = Box::pin(provider.container_events());
            // A Swarm manager's services: a hand update or scale is drift of its stack.
            let swarm = self.config.hosts.get(&host).is_some_and(|h| h.swarm);
            let mut services: std::pin::Pin<Box<dyn futures_util::Stream<Item = _> + Send + '_>> =
                if swarm {
                    Box::pin(provider.service_events())
                } else {
                    Box::pin(futures_util::stream::pending())
                };
            // An idle stream says nothing when the machine vanishes or is replaced
            // without a reset: the host is asked again now and then.
            let mut check = tokio::time::interval(RECHECK);
            check.reset();
            loop {
                tokio::select! {
                    ev = events.next() => match ev {
                        Some(Ok(ev)) => {
                            // The label names the Compose project: this host's app of it.
                            let app = self.apps.values().find(|a| a.config.host == host && a.config.project == ev.app);
                            let Some(app) = app else { continue };
                            tracing::debug!(app = %ev.app, container = %ev.container, action = %ev.action, "container event");
                            let _ = app.trigger.try_send(Trigger::of(TriggerKind::Drift));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(host = %host, error = %e, "Docker event stream failed; reconnecting");
                            break;
                        }
                        None => break,
                    },
                    ev = services.next() => match ev {
                        Some(Ok(service)) if service.is_empty() => self.reconcile_host_apps(&host),
                        Some(Ok(service)) => {
                            // `<project>_<service>`: the app of the longest project it starts with.
                            let app = self
                                .apps
                                .values()
                                .filter(|a| a.config.host == host && service.starts_with(&format!("{}_", a.config.project)))
                                .max_by_key(|a| a.config.project.len());
                            let Some(app) = app else { continue };
                            tracing::debug!(app = %app.config.name, service = %service, "service event");
                            let _ = app.trigger.try_send(Trigger::of(TriggerKind::Drift));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(host = %host, error = %e, "Swarm event stream failed; reconnecting");
                            break;
                        }
                        None => break,
                    },
                    _ = check.tick() => {
                        let h = self.check_host(&host, &provider).await;
                        if h.unreachable.is_some() || h.replaced.is_some() {
                            break;
                        }
                    }
                    _ = shutdown.changed() => return,
                }
            }
            // The stream ended: the Engine may have restarted — or be another one now:
            // whatever answers next is checked again before anything is deployed. Events
            // may have been missed, so every app of this host is looked at once it
            // answers.
            self.host_state(&host).recheck();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.changed() => return,
            }
            if self
                .check_host(&host, &provider)
                .await
                .unreachable
                .is_none()
            {
                self.reconcile_host_apps(&host);
            }
        }
    }

    fn reconcile_host_apps(&self, host: &str) {
        for app in self.apps.values().filter(|a| a.config.host == host) {
            let _ = app.trigger.try_send(Trigger::of(TriggerKind::Drift));
        }
    }

    /// The health of `host` before an operation on it: asked now — whether it
    /// answers, and whether its Engine is still the one it is known by (a machine
    /// replaced between two operations is never deployed to).
    pub(super) async fn host_health_now(&self, host: &str, provider: &Provider) -> HostHealth {
        let state = self.host_state(host);
        let known = state.get();
        // Its Engine answers on the connection its id was read on: the same Engine, no
        // need to ask its id again.
        if known.engine_id.is_some() && known.unreachable.is_none() && provider.same_engine().await
        {
            return known;
        }
        state.recheck();
        self.check_host(host, provider).await
    }

    /// Asks `host` whether it answers and, when not checked since it came (back),
    /// whether its Engine is the one it is known by; records what it found (also as the
    /// `mooring_host_up` gauge). Whoever sees a change acts on it: a host gone or
    /// replaced is an event for each of its apps, a host back reconciles them.
    async fn check_host(&self, host: &str, provider: &Provider) -> HostHealth {
        let state = self.host_state(host);
        let was = state.get();
        let health = self.ask_host(host, provider, &state).await;
        let up = health.unreachable.is_none() && health.replaced.is_none();
        self.metrics.set_gauge(
            "mooring_host_up",
            &[("host", host)],
            if up { 1.0 } else { 0.0 },
        );
        let on_host = || self.apps.values().filter(move |a| a.config.host == host);
        match (&was.unreachable, &health.unreachable) {
            (None, Some(why)) => {
                tracing::warn!(host, error = %why, "host unreachable");
                for app in on_host() {
                    self.event(&app.config.name, EventKind::HostUnreachable, why);
                }
            }
            (Some(_), None) => {
                tracing::info!(host, "host reachable again");
                // It was away: what happened there meanwhile is not known.
                self.reconcile_host_apps(host);
            }
            _ => {}
        }
        if let (None, Some(why)) = (&was.replaced, &health.replaced) {
            tracing::warn!(host, error = %why, "host replaced");
            for app in on_host() {
                self.event(&app.config.name, EventKind::HostReplaced, why);
            }
        }
        health
    }

    async fn ask_host(&self, host: &str, provider: &Provider, state: &HostState) -> HostHealth {
        if let Err(e) = provider.ping().await {
            state.down(e.to_string());
            return state.get();
        }
        state.up();
        if state.get().engine_id.is_some() {
            return state.get();
        }
        let (id, manager) = match provider.engine_identity().await {
            Ok(identity) => identity,
            Err(e) => {
                state.down(e.to_string());
                return state.get();
            }
        };
        match self.store.host_engine(host) {
            Ok(None) => match self.store.set_host_engine(host, &id, now_ms()) {
                Ok(()) => state.checked((id, manager), None),
                Err(e) => {
                    state.down(format!("cannot record its Engine's id: {e}"));
                }
            },
            Ok(Some(known)) if known == id => state.checked((id, manager), None),
            Ok(Some(known)) => {
                let why = format!(
                    "host {host} ({}) answers as another Docker Engine (id {id}; Mooring deployed to {known}): its volumes are not the data deployed there, so nothing is deployed to it. If the machine was replaced on purpose, accept it: `mooring host accept {host}` (or POST /api/v1/hosts/{host}/accept)",
                    provider.endpoint()
                );
                state.checked((id, manager), Some(why));
            }
            // Not knowing which Engine it should be: nothing is deployed until known.
            Err(e) => {
                state.down(format!("cannot read the Engine id it is known by: {e}"));
            }
        }
        state.get()
    }

    /// A person's word that `host`'s Engine, as it answers now, is the one to deploy
    /// to (a replaced machine); its apps are reconciled.
    /// With `expected`, only that Engine (the one the person saw) is accepted.
    pub async fn accept_host(
        &self,
        host: &str,
        expected: Option<&str>,
    ) -> Result<HostHealth, ControlError> {
        let provider = self
            .providers
            .get(host)
            .ok_or_else(|| ControlError::UnknownHost(host.to_string()))?;
        provider.ping().await?;
        let (id, manager) = provider.engine_identity().await?;
        if let Some(expected) = expected.filter(|e| *e != id) {
            return Err(ControlError::Docker(mooring_docker::ProviderError::Refused(format!(
                "host {host} now answers as Docker Engine {id}, not {expected}: nothing accepted; look again (`mooring host list`)"
            ))));
        }
        self.store.set_host_engine(host, &id, now_ms())?;
        let state = self.host_state(host);
        state.up();
        state.checked((id, manager), None);
        self.reconcile_host_apps(host);
        Ok(state.get())
    }

    /// Every configured host with what its watcher last saw, and its apps.
    pub fn hosts(&self) -> Vec<(String, String, HostHealth, Vec<String>)> {
        self.providers
            .iter()
            .map(|(name, p)| {
                let apps = self
                    .apps
                    .values()
                    .filter(|a| &a.config.host == name)
                    .map(|a| a.config.name.clone())
                    .collect();
                (
                    name.clone(),
                    p.endpoint().to_string(),
                    self.host_state(name).get(),
                    apps,
                )
            })
            .collect()
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
