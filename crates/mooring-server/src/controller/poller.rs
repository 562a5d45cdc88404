//! Source pollers: one task per source (repository + ref) fetches it — one fetch per
//! cycle, shared by every app using it — and wakes those apps when the revision moves;
//! a webhook pokes the source to fetch now.

use super::app_loop::jitter;
use super::error::SourceFailure;
use super::{Controller, SourceHandle, Trigger, TriggerKind};
use crate::config::AppConfig;
use mooring_vcs::{redact_url, Cache, Credentials, Revision, SourceSpec};
use std::sync::Arc;
use std::time::Instant;

impl Controller {
    /// Apps whose source matches a pushed repository (and ref, when given): their
    /// sources are fetched now, and the operations that follow are requested by
    /// `delivery` (`github delivery 72d3…`). Returns the app names.
    pub fn refresh_repository(
        &self,
        matches: &dyn Fn(&SourceSpec) -> bool,
        reference: Option<&str>,
        delivery: &str,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for source in &self.sources {
            if !matches(&source.spec) {
                continue;
            }
            if let (
                Some(pushed),
                SourceSpec::Git {
                    reference: Some(wanted),
                    ..
                },
            ) = (reference, &source.spec)
            {
                let pushed = pushed
                    .trim_start_matches("refs/heads/")
                    .trim_start_matches("refs/tags/");
                if pushed != wanted {
                    continue;
                }
            }
            *source.delivery.lock().unwrap_or_else(|e| e.into_inner()) = Some(delivery.to_string());
            source.poke.notify_one();
            out.extend(source.apps.iter().cloned());
        }
        out
    }

    /// The source's current revision, from a fetch that started at `since` or later
    /// (the last one when it did, else a new one).
    pub(super) async fn current_revision(
        &self,
        source: &SourceHandle,
        since: Instant,
    ) -> Result<Revision, SourceFailure> {
        let _guard = source.fetch_lock.lock().await;
        if let Some((rev, started)) = source
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            if started >= since {
                return Ok(rev);
            }
        }
        let (cache, spec) = (source.cache.clone(), source.spec.clone());
        let start = Instant::now();
        let _busy = self
            .activity
            .begin(format!("fetching {}", redact_url(&source.display)), start);
        let result = tokio::task::spawn_blocking(move || cache.fetch(&spec)).await?;
        self.metrics.observe(
            "mooring_source_fetch_duration_seconds",
            &[("source", &source.display)],
            start.elapsed(),
        );
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics.inc(
            "mooring_source_fetch_total",
            &[("source", &source.display), ("result", outcome)],
        );
        let rev = result?;
        *source.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((rev.clone(), start));
        Ok(rev)
    }

    /// Polls a source: one fetch per cycle (or per webhook), shared by its apps, which
    /// are woken when the revision changes.
    pub(super) async fn poll_source(self: Arc<Self>, source: Arc<SourceHandle>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut known: Option<String> = None;
        let mut kind = TriggerKind::Revision;
        // The delivery behind the last poke, taken when it woke this loop.
        let mut by: Option<String> = None;
        loop {
            match self.current_revision(&source, Instant::now()).await {
                Ok(rev) => {
                    if known.as_deref() != Some(rev.id.as_str()) {
                        if known.is_some() {
                            for app in &source.apps {
                                let mut trigger = Trigger::of(kind);
                                trigger.by = by.clone();
                                let _ = self.trigger(app, trigger).await;
                            }
                        }
                        known = Some(rev.id);
                    }
                }
                Err(e) => tracing::warn!(source = %source.display, error = %e, "fetch failed"),
            }
            let wait = source.interval + jitter(&source.display, source.interval);
            tokio::select! {
                _ = tokio::time::sleep(wait) => (kind, by) = (TriggerKind::Revision, None),
                // A webhook: fetch now; the apps follow if the revision moved.
                _ = source.poke.notified() => {
                    kind = TriggerKind::Webhook;
                    by = source.delivery.lock().unwrap_or_else(|e| e.into_inner()).take();
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The cache for an app's source, with its credentials.
pub(super) fn source_cache(data_dir: &std::path::Path, app: &AppConfig) -> Cache {
    let mut cache = Cache::new(data_dir);
    if let Some(timeout) = app.source.timeout {
        cache = cache.with_timeout(timeout);
    }
    let source = &app.source;
    let (user, password) = (&source.username, &source.password);
    if user.is_none()
        && password.is_none()
        && source.ssh_key.is_none()
        && source.known_hosts.is_none()
    {
        return cache;
    }
    let expose = |s: &Option<crate::config::Secret>| s.as_ref().map(|s| s.expose().to_string());
    let mut credentials = Credentials::new(expose(user), expose(password));
    credentials.ssh_key = source.ssh_key.clone();
    credentials.known_hosts = source.known_hosts.clone();
    cache.with_credentials(credentials)
}
