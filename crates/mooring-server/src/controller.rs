//! The control loop. One task per **source** (repository + ref) polls it — one fetch
//! per cycle, shared by every app using it — and wakes those apps on a new revision;
//! one task per **app** reconciles it on its interval (with jitter), on a new revision,
//! on request, on webhook, and on Docker events (self-heal). One operation per app at
//! a time (the app's lock); at most `server.workers` at once (a semaphore); a failing
//! app retries with exponential backoff and never stalls the others.
//!
//! An unchanged revision is not re-rendered (the rendered project is kept per app),
//! and an in-sync host costs one observation and no Docker writes.

use crate::activity::{Activity, HEARTBEAT};
use crate::config::{AppConfig, Config};
use crate::failure::OperationFailure;
use crate::metrics::Metrics;
use crate::notify::{Notice, Notifier};
use futures_util::{FutureExt, StreamExt};
use mooring_core::{app_health, Health, Plan, ResourceHealth, ResourceTree};
use mooring_docker::reconcile::{Progress, ReconcileError};
use mooring_docker::{reconcile, Host, Provider, ReconcileOptions};
use mooring_render::{render, RenderRequest, Rendered};
use mooring_store::{
    now_ms, ActionRecord, AppStatus, Condition, NewEvent, NewOperation, OpResult, Store,
};
use mooring_vcs::{
    redact_url, Cache, Credentials, Revision, RevisionInfo, SourceSpec, VerifyKey, VerifyPolicy,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify, Semaphore};
use tokio::task::JoinHandle;

/// Why an app is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Startup,
    Interval,
    Revision,
    Webhook,
    Api,
    /// Fetch now and reconcile as the app's policy says (nothing applied with `auto`
    /// off): the Refresh button, `POST /apps/NAME/refresh`.
    Refresh,
    Rollback,
    Drift,
    Retry,
}

impl TriggerKind {
    fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Startup => "startup",
            TriggerKind::Interval => "interval",
            TriggerKind::Revision => "revision",
            TriggerKind::Webhook => "webhook",
            TriggerKind::Api => "api",
            TriggerKind::Refresh => "refresh",
            TriggerKind::Rollback => "rollback",
            TriggerKind::Drift => "drift",
            TriggerKind::Retry => "retry",
        }
    }

    /// A person asked: apply even when `auto` is off.
    fn manual(self) -> bool {
        matches!(self, TriggerKind::Api | TriggerKind::Rollback)
    }
}

/// A request to reconcile an app.
#[derive(Debug)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// Deploy this revision (a ref or id) instead of the source's current one.
    pub revision: Option<String>,
    /// Pin the app to the revision deployed by this trigger (rollback).
    pub pin: bool,
    /// Told when the operation is over.
    pub reply: Option<oneshot::Sender<Result<AppStatus, OperationFailure>>>,
}

impl Trigger {
    /// A trigger without reply, revision or pin.
    pub fn of(kind: TriggerKind) -> Trigger {
        Trigger {
            kind,
            revision: None,
            pin: false,
            reply: None,
        }
    }
}

/// What a sync would do now, and desired against live for every resource.
pub struct Diff {
    pub plan: Plan,
    pub revision: Revision,
    pub comparisons: Vec<mooring_core::Comparison>,
}

/// A change pushed to `/api/v1/stream` listeners.
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvent {
    /// `app` (status changed), `operation` (an action finished), `event`.
    pub kind: &'static str,
    pub app: String,
    pub data: serde_json::Value,
}

struct SourceHandle {
    spec: SourceSpec,
    /// The cache, with this source's credentials.
    cache: Cache,
    display: String,
    apps: Vec<String>,
    interval: Duration,
    last: Mutex<Option<(Revision, Instant)>>,
    fetch_lock: tokio::sync::Mutex<()>,
    poke: Notify,
}

#[derive(Default)]
struct AppRuntime {
    rendered: Option<Arc<Rendered>>,
    /// Content identity of the app's path in `rendered` (see `Cache::path_tree`).
    rendered_tree: Option<String>,
    /// Revision id whose render failed, with the error (not retried until a new revision).
    render_failure: Option<(String, RenderFailure)>,
    failures: u32,
    next_retry: Option<Instant>,
    last_health: Option<Health>,
}

struct AppHandle {
    config: AppConfig,
    spec: SourceSpec,
    source: Arc<SourceHandle>,
    trigger: mpsc::Sender<Trigger>,
    runtime: tokio::sync::Mutex<AppRuntime>,
    /// Author, time and message of the deployed revision (by id), read once per
    /// revision from the source cache; outside `runtime` so readers never wait for a sync.
    revision_info: Mutex<Option<(String, RevisionInfo)>>,
}

/// The running control loop for one configuration.
pub struct Controller {
    pub config: Config,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    stream: broadcast::Sender<StreamEvent>,
    providers: BTreeMap<String, Provider>,
    apps: BTreeMap<String, Arc<AppHandle>>,
    sources: Vec<Arc<SourceHandle>>,
    workers: Arc<Semaphore>,
    notifier: Notifier,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    receivers: Mutex<BTreeMap<String, mpsc::Receiver<Trigger>>>,
    /// Heartbeat and running work, for `/readyz`.
    pub activity: Arc<Activity>,
}

/// An error of the controller's API.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("app {0} is not configured")]
    UnknownApp(String),
    #[error("{0}")]
    Failed(String),
    /// What a diff met, with the kind the API answers with.
    #[error("{0}")]
    Operation(#[from] OperationFailure),
}

impl Controller {
    /// Builds the controller: connects to every host and validates every source.
    pub async fn new(
        config: Config,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        stream: broadcast::Sender<StreamEvent>,
    ) -> Result<Arc<Controller>, ControlError> {
        let mut providers = BTreeMap::new();
        for (name, host) in &config.hosts {
            let p = Provider::connect(Some(&host.docker))
                .await
                .map_err(|e| ControlError::Failed(format!("host {name}: {e}")))?;
            providers.insert(name.clone(), p);
        }
        let mut sources: BTreeMap<(String, Option<String>), Arc<SourceHandle>> = BTreeMap::new();
        let mut apps = BTreeMap::new();
        let mut receivers = BTreeMap::new();
        for app in &config.apps {
            let spec = app.source.spec.clone();
            let key = app.source.fetch_key();
            let members: Vec<&AppConfig> = config
                .apps
                .iter()
                .filter(|a| a.source.fetch_key() == key)
                .collect();
            let source = sources
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(SourceHandle {
                        display: spec.to_string(),
                        spec: spec.clone(),
                        cache: source_cache(&config.server.data_dir, app),
                        apps: members.iter().map(|a| a.name.clone()).collect(),
                        interval: members
                            .iter()
                            .map(|a| a.sync.interval)
                            .min()
                            .unwrap_or(Duration::from_secs(180)),
                        last: Mutex::new(None),
                        fetch_lock: tokio::sync::Mutex::new(()),
                        poke: Notify::new(),
                    })
                })
                .clone();
            let (tx, rx) = mpsc::channel(1);
            receivers.insert(app.name.clone(), rx);
            apps.insert(
                app.name.clone(),
                Arc::new(AppHandle {
                    config: app.clone(),
                    spec,
                    source,
                    trigger: tx,
                    runtime: Default::default(),
                    revision_info: Mutex::new(None),
                }),
            );
        }
        let (shutdown, _) = watch::channel(false);
        Ok(Arc::new(Controller {
            workers: Arc::new(Semaphore::new(config.server.workers)),
            activity: Activity::new(config.server.stuck_after),
            notifier: Notifier::new(config.notifications.clone()),
            config,
            store,
            metrics,
            stream,
            providers,
            apps,
            sources: sources.into_values().collect(),
            shutdown,
            tasks: Mutex::new(Vec::new()),
            receivers: Mutex::new(receivers),
        }))
    }

    /// Starts the source pollers, the app loops and the Docker event watchers; every
    /// app is reconciled once at start (that is how a restart after `kill -9` converges).
    pub fn start(self: &Arc<Self>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for source in &self.sources {
            let (me, source) = (self.clone(), source.clone());
            tasks.push(tokio::spawn(async move { me.poll_source(source).await }));
        }
        let mut receivers = self.receivers.lock().unwrap_or_else(|e| e.into_inner());
        for (name, app) in &self.apps {
            if let Some(rx) = receivers.remove(name) {
                let (me, app) = (self.clone(), app.clone());
                tasks.push(tokio::spawn(async move { me.app_loop(app, rx).await }));
            }
        }
        let (activity, mut shutdown) = (self.activity.clone(), self.shutdown.subscribe());
        tasks.push(tokio::spawn(async move {
            loop {
                activity.beat(Instant::now());
                tokio::select! {
                    _ = tokio::time::sleep(HEARTBEAT) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }));
        for (host, provider) in &self.providers {
            let (me, host, provider) = (self.clone(), host.clone(), provider.clone());
            tasks.push(tokio::spawn(async move {
                me.watch_events(host, provider).await
            }));
        }
    }

    /// Stops taking work, lets running operations finish, and waits for every task.
    pub async fn stop(&self) {
        let _ = self.shutdown.send(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Configured app names.
    pub fn app_names(&self) -> Vec<String> {
        self.apps.keys().cloned().collect()
    }

    /// The configuration of one app.
    pub fn app_config(&self, name: &str) -> Option<&AppConfig> {
        self.apps.get(name).map(|a| &a.config)
    }

    /// Asks for a reconcile; with `reply`, waits for the operation's outcome.
    pub async fn trigger(&self, app: &str, trigger: Trigger) -> Result<(), ControlError> {
        let handle = self
            .apps
            .get(app)
            .ok_or_else(|| ControlError::UnknownApp(app.to_string()))?;
        if trigger.reply.is_some() {
            handle
                .trigger
                .send(trigger)
                .await
                .map_err(|_| ControlError::Failed("the daemon is stopping".into()))
        } else {
            // Coalesce: one pending trigger per app is enough.
            let _ = handle.trigger.try_send(trigger);
            Ok(())
        }
    }

    /// Apps whose source matches a pushed repository (and ref, when given): their
    /// sources are fetched now. Returns the app names.
    pub fn refresh_repository(
        &self,
        matches: &dyn Fn(&SourceSpec) -> bool,
        reference: Option<&str>,
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
            source.poke.notify_one();
            out.extend(source.apps.iter().cloned());
        }
        out
    }

    /// Fetches `source` unless a fetch finished within `fresh`; returns the revision.
    async fn current_revision(
        &self,
        source: &SourceHandle,
        fresh: Duration,
    ) -> Result<Revision, String> {
        let _guard = source.fetch_lock.lock().await;
        if let Some((rev, at)) = source
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            if at.elapsed() < fresh {
                return Ok(rev);
            }
        }
        let (cache, spec) = (source.cache.clone(), source.spec.clone());
        let start = Instant::now();
        let _busy = self
            .activity
            .begin(format!("fetching {}", redact_url(&source.display)), start);
        let result = tokio::task::spawn_blocking(move || cache.fetch(&spec))
            .await
            .map_err(|e| e.to_string())?;
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
        let rev = result.map_err(|e| e.to_string())?;
        *source.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((rev.clone(), Instant::now()));
        Ok(rev)
    }

    /// Polls a source: one fetch per cycle (or per webhook), shared by its apps, which
    /// are woken when the revision changes.
    async fn poll_source(self: Arc<Self>, source: Arc<SourceHandle>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut known: Option<String> = None;
        let mut kind = TriggerKind::Revision;
        loop {
            match self.current_revision(&source, Duration::ZERO).await {
                Ok(rev) => {
                    if known.as_deref() != Some(rev.id.as_str()) {
                        if known.is_some() {
                            for app in &source.apps {
                                let _ = self.trigger(app, Trigger::of(kind)).await;
                            }
                        }
                        known = Some(rev.id);
                    }
                }
                Err(e) => tracing::warn!(source = %source.display, error = %e, "fetch failed"),
            }
            let wait = source.interval + jitter(&source.display, source.interval);
            tokio::select! {
                _ = tokio::time::sleep(wait) => kind = TriggerKind::Revision,
                // A webhook: fetch now; the apps follow if the revision moved.
                _ = source.poke.notified() => kind = TriggerKind::Webhook,
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn app_loop(self: Arc<Self>, app: Arc<AppHandle>, mut rx: mpsc::Receiver<Trigger>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut next = Some(Trigger::of(TriggerKind::Startup));
        loop {
            let trigger = match next.take() {
                Some(t) => t,
                None => {
                    let (deadline, kind) = {
                        let rt = app.runtime.lock().await;
                        match rt.next_retry {
                            Some(at) => (at, TriggerKind::Retry),
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
                    let _ = reply.send(Err(OperationFailure::Stopping));
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
                self.event(&app.config.name, "sync_failed", &e);
            }
        }
    }

    async fn watch_events(self: Arc<Self>, host: String, provider: Provider) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
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
            // Reconnected: events may have been missed, so look at every app of this host.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.changed() => return,
            }
            for app in self.apps.values().filter(|a| a.config.host == host) {
                let _ = app.trigger.try_send(Trigger::of(TriggerKind::Drift));
            }
        }
    }

    /// The rendered project of `app` at `revision`. Cached: the same revision, or a new
    /// revision that changed nothing under the app's path, is not rendered again.
    async fn rendered(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        revision: &Revision,
    ) -> Result<Arc<Rendered>, RenderFailure> {
        if let Some(r) = &rt.rendered {
            if r.revision.id == revision.id {
                return Ok(r.clone());
            }
        }
        let (cache, spec, path) = (
            app.source.cache.clone(),
            app.spec.clone(),
            app.config.source.path.clone(),
        );
        let tree = {
            let (cache, spec, rev, path) =
                (cache.clone(), spec.clone(), revision.clone(), path.clone());
            tokio::task::spawn_blocking(move || cache.path_tree(&spec, &rev, &path))
                .await
                .map_err(RenderFailure::panicked)?
                .ok()
                .flatten()
        };
        if let Some(r) = &rt.rendered {
            if tree.is_some() && tree == rt.rendered_tree {
                // A commit outside the app's path: same desired state, new revision.
                let mut same = (**r).clone();
                same.revision = revision.clone();
                let same = Arc::new(same);
                rt.rendered = Some(same.clone());
                return Ok(same);
            }
        }
        let data_dir = self.config.server.data_dir.clone();
        let protected = [self.config.folder.clone()];
        let (rev, cfg) = (revision.clone(), app.config.clone());
        let rendered = tokio::task::spawn_blocking(move || {
            render(RenderRequest {
                data_dir: &data_dir,
                cache: &cache,
                spec: &spec,
                revision: &rev,
                path: &path,
                files: &cfg.files,
                app: Some(&cfg.name),
                environment: cfg.env.interpolation(),
                policy: &cfg.policy,
                protected: &protected,
            })
            .map_err(|e| RenderFailure {
                policy: matches!(e, mooring_render::RenderError::Policy { .. }),
                message: cfg.env.scrub(&e.to_string()),
            })
        })
        .await
        .map_err(RenderFailure::panicked)??;
        let rendered = Arc::new(rendered);
        rt.rendered = Some(rendered.clone());
        rt.rendered_tree = tree;
        self.metrics
            .inc("mooring_render_total", &[("app", &app.config.name)]);
        Ok(rendered)
    }

    /// Fetches one explicit revision (a pin, a rollback target, the last verified one).
    async fn fetch_revision(&self, app: &AppHandle, rev: &str) -> Result<Revision, String> {
        let Some(spec) = revision_spec(&app.spec, rev) else {
            // Plain folders have no history: only their current content exists.
            let current = self
                .current_revision(&app.source, Duration::from_secs(1))
                .await?;
            if current.id != rev {
                return Err(format!(
                    "{} has no history; revision {rev} is not its current content",
                    app.spec
                ));
            }
            return Ok(current);
        };
        let (cache, path) = (app.source.cache.clone(), app.config.source.path.clone());
        tokio::task::spawn_blocking(move || cache.fetch_path(&spec, &path))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Which revision to deploy: the trigger's, else the pin, else the source's current one.
    async fn target_revision(
        &self,
        app: &AppHandle,
        trigger: &Trigger,
        pinned: Option<&str>,
    ) -> Result<Revision, String> {
        match trigger.revision.as_deref().or(pinned) {
            Some(rev) => self.fetch_revision(app, rev).await,
            None => {
                let fresh = if trigger.kind.manual()
                    || matches!(trigger.kind, TriggerKind::Startup | TriggerKind::Refresh)
                {
                    Duration::from_secs(1)
                } else {
                    app.config.sync.interval
                };
                self.current_revision(&app.source, fresh).await
            }
        }
    }

    /// Whether the app may deploy `revision`, asked for as `asked` (a sync to a
    /// revision, a rollback, a pin): a revision reachable from the configured ref, or a
    /// ref `source.allow_refs` names. Anything else is refused: a committer who can push
    /// a branch must not get it deployed (and shown as Synced) on an operator's typo.
    async fn allowed_revision(
        &self,
        app: &AppHandle,
        asked: &str,
        revision: &Revision,
    ) -> Result<(), String> {
        let source = &app.config.source;
        if source.allow_refs.iter().any(|p| ref_matches(p, asked)) {
            return Ok(());
        }
        let head = self
            .current_revision(&app.source, app.config.sync.interval)
            .await
            .map_err(|e| format!("source: {e}"))?;
        if head.id == revision.id {
            return Ok(());
        }
        let (cache, spec, rev) = (app.source.cache.clone(), app.spec.clone(), revision.clone());
        let reachable = tokio::task::spawn_blocking(move || cache.is_ancestor(&spec, &rev, &head))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("source: {e}"))?;
        if reachable {
            return Ok(());
        }
        let reference = source.reference.as_deref().unwrap_or("the default branch");
        Err(format!(
            "revision {asked} ({}) is not in the history of {reference}, the app's configured ref; \
             only revisions reachable from it may be deployed. To deploy other refs, name them \
             (or a `prefix*` pattern) in the app's `source.allow_refs` in mooring.yaml",
            revision.describe
        ))
    }

    /// Checks the revision's signature when the app asks for verification.
    async fn verify(&self, app: &AppHandle, revision: &Revision) -> Result<(), String> {
        let Some(v) = &app.config.source.verify else {
            return Ok(());
        };
        let mode = v.mode;
        let keys = v
            .keys
            .iter()
            .map(|k| {
                if k.contains("BEGIN PGP") {
                    VerifyKey::OpenPgp(k.clone())
                } else {
                    VerifyKey::Ssh(k.trim().to_string())
                }
            })
            .collect();
        let policy = VerifyPolicy { mode, keys };
        let (cache, spec, rev) = (app.source.cache.clone(), app.spec.clone(), revision.clone());
        tokio::task::spawn_blocking(move || {
            cache
                .verify(&spec, &rev, &policy)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Reconciles one app and records what happened.
    async fn reconcile_app(&self, app: &AppHandle, trigger: Trigger) {
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
        let mut status = previous.clone().unwrap_or_else(|| AppStatus {
            name: name.clone(),
            sync: "Unknown".into(),
            health: "Unknown".into(),
            revision: None,
            revision_describe: None,
            source: redact_url(&app.spec.to_string()),
            pinned: None,
            conditions: vec![],
            last_operation: None,
            next_retry_at: None,
            failures: 0,
            updated_at: now_ms(),
        });
        status.source = redact_url(&app.spec.to_string());
        status.conditions.clear();

        let result = self
            .run(app, &mut rt, &trigger, pinned.as_deref(), &mut status)
            .await;
        if let Err(e) = &result {
            status.conditions.push(Condition {
                kind: "SyncFailed".into(),
                message: e.to_string(),
            });
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
                status.conditions.push(Condition {
                    kind: "Retrying".into(),
                    message: format!(
                        "attempt {} of {} failed; next try in {}s",
                        rt.failures,
                        app.config.sync.retry_limit + 1,
                        backoff.as_secs()
                    ),
                });
            } else {
                rt.next_retry = None;
                status.next_retry_at = None;
                status.conditions.push(Condition {
                    kind: "RetriesExhausted".into(),
                    message: format!(
                        "{} attempts failed; waiting for a new revision or a manual sync",
                        rt.failures
                    ),
                });
            }
            if previous.as_ref().map(|p| p.failures).unwrap_or(0) == 0 {
                self.notifier.send(Notice {
                    event: "sync_failed",
                    app: name.clone(),
                    message: e.to_string(),
                    revision: status.revision.clone(),
                });
            }
            self.event(&name, "sync_failed", &e.to_string());
        } else {
            if rt.failures > 0 {
                self.notifier.send(Notice {
                    event: "sync_recovered",
                    app: name.clone(),
                    message: format!("synced after {} failed attempts", rt.failures),
                    revision: status.revision.clone(),
                });
                self.event(&name, "sync_recovered", "synced again after failures");
            }
            rt.failures = 0;
            rt.next_retry = None;
            status.failures = 0;
            status.next_retry_at = None;
        }
        if let Some(rev) = &status.revision {
            self.learn_revision_info(app, rev).await;
        }
        // What the caller hears: a refused revision is recorded and not retried, yet
        // the caller's operation failed all the same.
        let failure = match &result {
            Err(e) => Some(e.clone()),
            Ok(()) => OperationFailure::refusal(&status.conditions),
        };
        if trigger.pin && failure.is_some() {
            // A failed rollback does not leave the app pinned to what it did not deploy.
            if let Err(e) = self.store.set_pin(&name, pinned.as_deref()) {
                tracing::error!(app = %name, error = %e, "cannot restore the pin");
            }
        }
        status.pinned = self.store.app(&name).ok().flatten().and_then(|s| s.pinned);
        if let Some(pin) = &status.pinned {
            status.conditions.push(Condition { kind: "Pinned".into(), message: format!("pinned to {pin}; auto-sync holds this revision until `mooring app unpin {name}`") });
        }
        // A no-op reconcile writes nothing: the status is saved (and streamed) on change.
        let changed = previous.as_ref().is_none_or(|p| {
            AppStatus {
                updated_at: status.updated_at,
                ..p.clone()
            } != status
        });
        if changed {
            status.updated_at = now_ms();
            if let Err(e) = self.store.put_app(&status) {
                tracing::error!(app = %name, error = %e, "cannot save app status");
            }
            let _ = self.stream.send(StreamEvent {
                kind: "app",
                app: name.clone(),
                data: serde_json::to_value(&status).unwrap_or_default(),
            });
        }
        self.metrics.observe(
            "mooring_reconcile_duration_seconds",
            &[("app", &name)],
            started.elapsed(),
        );
        self.metrics.app_info(
            &name,
            &status.sync,
            &status.health,
            status.revision.as_deref().unwrap_or(""),
        );
        if let Some(reply) = trigger.reply {
            let _ = reply.send(match failure {
                Some(failure) => Err(failure),
                None => Ok(status),
            });
        }
    }

    /// The body of a reconcile; fills `status`, returns the failure to retry on.
    async fn run(
        &self,
        app: &AppHandle,
        rt: &mut AppRuntime,
        trigger: &Trigger,
        pinned: Option<&str>,
        status: &mut AppStatus,
    ) -> Result<(), OperationFailure> {
        let name = app.config.name.as_str();
        let revision = match self.target_revision(app, trigger, pinned).await {
            Ok(r) => r,
            Err(e) => {
                status.sync = "Unknown".into();
                return Err(OperationFailure::Source(format!("source: {e}")));
            }
        };
        if let Some(asked) = trigger.revision.as_deref().or(pinned) {
            if let Err(e) = self.allowed_revision(app, asked, &revision).await {
                let op = self.begin(name, trigger, &revision, false);
                self.finish(op, OpResult::Failed, Some(&e));
                status.last_operation = op.or(status.last_operation);
                status.conditions.push(Condition {
                    kind: "RevisionRefused".into(),
                    message: e.clone(),
                });
                self.event(name, "revision_refused", &e);
                return Err(OperationFailure::Invalid(e));
            }
        }
        let revision = match self.verify(app, &revision).await {
            Ok(()) => revision,
            Err(e) => {
                status.conditions.push(Condition {
                    kind: "VerificationFailed".into(),
                    message: format!("{} is not deployed: {e}", revision.describe),
                });
                self.event(name, "verification_failed", &e);
                match status.revision.clone() {
                    // Keep running (and healing) the last verified revision.
                    Some(deployed) if deployed != revision.id => self
                        .fetch_revision(app, &deployed)
                        .await
                        .map_err(|e| OperationFailure::Source(format!("source: {e}")))?,
                    _ => return Ok(()),
                }
            }
        };
        if trigger.pin {
            // The pin lives on the app's row: make sure it exists.
            if self.store.app(name).map_err(|e| e.to_string())?.is_none() {
                self.store.put_app(status).map_err(|e| e.to_string())?;
            }
            self.store
                .set_pin(name, Some(&revision.id))
                .map_err(|e| e.to_string())?;
        }
        if let Some((rev, error)) = &rt.render_failure {
            if *rev == revision.id && !trigger.kind.manual() {
                status.sync = "Unknown".into();
                status.conditions.push(Condition {
                    kind: error.condition().into(),
                    message: error.message.clone(),
                });
                return Ok(()); // already recorded; waits for a new revision
            }
        }
        let rendered = match self.rendered(app, rt, &revision).await {
            Ok(r) => {
                rt.render_failure = None;
                r
            }
            Err(failure) => {
                let (kind, e) = (failure.condition(), failure.message.clone());
                rt.render_failure = Some((revision.id.clone(), failure));
                let op = self.begin(name, trigger, &revision, false);
                self.finish(op, OpResult::Failed, Some(&e));
                status.last_operation = op.or(status.last_operation);
                status.sync = "Unknown".into();
                status.conditions.push(Condition {
                    kind: kind.into(),
                    message: e.clone(),
                });
                let event = if kind == "PolicyRefused" {
                    "policy_refused"
                } else {
                    "render_failed"
                };
                self.event(name, event, &e);
                // A broken revision is not retried: it waits for a new one.
                return Ok(());
            }
        };
        let provider = self
            .providers
            .get(&app.config.host)
            .ok_or_else(|| format!("host {} is not connected", app.config.host))?;
        let deployed = status.revision.clone();
        let new_revision = deployed.as_deref() != Some(revision.id.as_str());
        let cfg = &app.config.sync;
        let apply = trigger.kind.manual() || (cfg.auto && (new_revision || cfg.self_heal));
        let mut options = self.reconcile_options(app, !apply);
        // Backups taken now hold the data of the revision deployed until now.
        options.revision = deployed.clone();

        let op_id: Mutex<Option<i64>> = Mutex::new(None);
        let seq = std::sync::atomic::AtomicU32::new(0);
        let prepare = || {
            rendered.materialize()?;
            *op_id.lock().unwrap_or_else(|e| e.into_inner()) =
                self.begin(name, trigger, &revision, false);
            Ok(())
        };
        let report = |p: Progress<'_>| {
            if let Progress::Finished(r) = p {
                let op = *op_id.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(op) = op {
                    let record = ActionRecord {
                        seq: seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        kind: r.action.action.verb().to_string()
                            + " "
                            + resource_kind(&r.action.action),
                        resource: r.action.action.to_string(),
                        reason: r.action.reason.clone(),
                        started_at: now_ms() - r.duration.as_millis() as i64,
                        duration_ms: r.duration.as_millis() as i64,
                        error: r.error.clone(),
                    };
                    if let Err(e) = self.store.record_action(op, &record) {
                        tracing::error!(error = %e, "cannot record action");
                    }
                }
                let _ = self.stream.send(StreamEvent {
                    kind: "operation",
                    app: name.to_string(),
                    data: serde_json::json!({"action": r.action, "seconds": r.duration.as_secs_f64(), "error": r.error, "detail": r.detail}),
                });
            }
        };
        let outcome = match reconcile(provider, &rendered.project, options, &prepare, &report).await
        {
            Ok(o) => o,
            Err(ReconcileError::Plan(e)) => {
                status.sync = "OutOfSync".into();
                if let mooring_core::plan::PlanError::VolumeDiverged { volume, .. } = &e {
                    // Blocks the app until the user resolves it; never a silent skip or delete.
                    status.conditions.push(Condition {
                        kind: "VolumeDiverged".into(),
                        message: format!("volume {volume}: {e}"),
                    });
                }
                return Err(OperationFailure::Conflict(e.to_string()));
            }
            Err(e) => return Err(OperationFailure::Apply(e.to_string())),
        };
        let op = *op_id.lock().unwrap_or_else(|e| e.into_inner());
        let drift = !outcome.plan.actions.is_empty() && !new_revision && !trigger.kind.manual();
        if drift {
            self.metrics
                .inc("mooring_drift_events_total", &[("app", name)]);
            let what: Vec<String> = outcome
                .plan
                .actions
                .iter()
                .map(|a| format!("{} ({})", a.action, a.reason))
                .collect();
            let message = format!(
                "{}{}",
                what.join("; "),
                if apply {
                    "; reverting"
                } else {
                    "; self_heal is off, left as is"
                }
            );
            self.event(name, "drift_detected", &message);
            self.notifier.send(Notice {
                event: "drift_detected",
                app: name.to_string(),
                message,
                revision: deployed.clone(),
            });
        }
        let backed_up = outcome.results.iter().any(|r| {
            r.error.is_none()
                && matches!(r.action.action, mooring_core::Action::BackupVolume { .. })
        });
        if backed_up {
            // The catalogue mirrors the manifests (new backups, and what retention removed).
            if let Err(e) = self.app_backups(name).await {
                tracing::warn!(app = name, error = %e, "cannot catalogue the app's backups");
            }
        }
        let failure = outcome.failure().map(|f| {
            format!(
                "{}: {}",
                f.action.action,
                f.error.clone().unwrap_or_default()
            )
        });
        if let Some(op) = op {
            status.last_operation = Some(op);
            if let Err(e) = self.store.set_operation_notes(op, &outcome.plan.notes) {
                tracing::error!(app = name, error = %e, "cannot record the operation's notes");
            }
            match &failure {
                Some(e) => self.finish(Some(op), OpResult::Failed, Some(e)),
                None => self.finish(Some(op), OpResult::Succeeded, None),
            }
            let result = if failure.is_some() {
                "failed"
            } else {
                "succeeded"
            };
            self.metrics
                .inc("mooring_sync_total", &[("app", name), ("result", result)]);
        }
        let (health, resources) = app_health(&rendered.project, &outcome.live);
        status.health = health.as_str().to_string();
        status.sync = if outcome.after.in_sync() {
            "Synced"
        } else {
            "OutOfSync"
        }
        .to_string();
        if outcome.after.in_sync() || (apply && failure.is_none()) {
            status.revision = Some(revision.id.clone());
            status.revision_describe = Some(revision.describe.clone());
        } else if !apply && new_revision {
            status.conditions.push(Condition {
                kind: "OutOfSync".into(),
                message: format!("{} is available; auto-sync is off", revision.describe),
            });
        }
        if !outcome.after.orphans_kept.is_empty() {
            status.conditions.push(Condition {
                kind: "OrphansKept".into(),
                message: format!(
                    "containers of removed services kept (prune is off): {}",
                    outcome.after.orphans_kept.join(", ")
                ),
            });
        }
        if health == Health::Degraded && rt.last_health != Some(Health::Degraded) {
            let bad: Vec<String> = resources
                .iter()
                .filter(|r: &&ResourceHealth| r.health == Health::Degraded)
                .map(|r| format!("{}: {}", r.container, r.message))
                .collect();
            let message = bad.join("; ");
            self.event(name, "health_degraded", &message);
            self.notifier.send(Notice {
                event: "health_degraded",
                app: name.to_string(),
                message,
                revision: status.revision.clone(),
            });
        }
        rt.last_health = Some(health);
        match failure {
            Some(e) => Err(OperationFailure::Apply(e)),
            None => Ok(()),
        }
    }

    /// The app's prune and data policies, and where its backups go.
    fn reconcile_options(&self, app: &AppHandle, dry_run: bool) -> ReconcileOptions {
        ReconcileOptions {
            prune: app.config.sync.prune,
            dry_run,
            volume_policy: app.config.volumes,
            backups: Some(self.config.server.data_dir.join("backups")),
            recreate_volumes: Vec::new(),
            backup_on_change: app.config.backup_on_change,
            retention: app.config.retention,
            revision: None,
        }
    }

    fn begin(
        &self,
        app: &str,
        trigger: &Trigger,
        revision: &Revision,
        dry_run: bool,
    ) -> Option<i64> {
        let op = NewOperation {
            app: app.to_string(),
            trigger: trigger.kind.as_str().to_string(),
            revision: Some(revision.id.clone()),
            dry_run,
            started_at: now_ms(),
        };
        match self.store.begin_operation(&op) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(app, error = %e, "cannot record operation");
                None
            }
        }
    }

    fn finish(&self, op: Option<i64>, result: OpResult, error: Option<&str>) {
        if let Some(op) = op {
            if let Err(e) = self.store.finish_operation(op, result, error, now_ms()) {
                tracing::error!(error = %e, "cannot finish operation");
            }
        }
    }

    fn event(&self, app: &str, kind: &str, message: &str) {
        tracing::info!(app, kind, message, "event");
        let ev = NewEvent {
            app: Some(app.to_string()),
            kind: kind.to_string(),
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

    /// The plan a sync would execute now (a dry run), after rendering the current revision.
    pub async fn diff(&self, name: &str) -> Result<Diff, ControlError> {
        let app = self
            .apps
            .get(name)
            .ok_or_else(|| ControlError::UnknownApp(name.to_string()))?;
        let mut rt = app.runtime.lock().await;
        let pinned = self.store.app(name).ok().flatten().and_then(|s| s.pinned);
        let revision = self
            .target_revision(app, &Trigger::of(TriggerKind::Api), pinned.as_deref())
            .await
            .map_err(|e| OperationFailure::Source(format!("source: {e}")))?;
        let rendered = self
            .rendered(app, &mut rt, &revision)
            .await
            .map_err(|e| OperationFailure::Invalid(e.message))?;
        let provider = self.providers.get(&app.config.host).ok_or_else(|| {
            OperationFailure::Apply(format!("host {} is not connected", app.config.host))
        })?;
        let options = self.reconcile_options(app, true);
        let outcome = reconcile(provider, &rendered.project, options, &|| Ok(()), &|_| {})
            .await
            .map_err(|e| match e {
                ReconcileError::Plan(e) => OperationFailure::Conflict(e.to_string()),
                e => OperationFailure::Apply(e.to_string()),
            })?;
        // Secret and marked environment values never leave the daemon in clear.
        let mut comparisons = mooring_core::compare(&rendered.project, &outcome.live);
        app.config.env.masking().apply(&mut comparisons);
        Ok(Diff {
            comparisons,
            plan: outcome.plan,
            revision,
        })
    }

    /// Reads who made `revision`, when and why, unless already known.
    async fn learn_revision_info(&self, app: &AppHandle, revision: &str) {
        let known = app
            .revision_info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(id, _)| id == revision);
        if known {
            return;
        }
        let (cache, spec) = (app.source.cache.clone(), app.spec.clone());
        let rev = Revision {
            id: revision.to_string(),
            describe: String::new(),
            tree: None,
        };
        let info = tokio::task::spawn_blocking(move || cache.revision_info(&spec, &rev)).await;
        match info {
            Ok(Ok(info)) => {
                *app.revision_info.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((revision.to_string(), info));
            }
            Ok(Err(e)) => {
                tracing::debug!(app = %app.config.name, error = %e, "no revision info")
            }
            Err(e) => tracing::debug!(app = %app.config.name, error = %e, "no revision info"),
        }
    }

    /// Author, time and message of the app's deployed revision, when known.
    pub fn revision_info(&self, name: &str) -> Option<(String, RevisionInfo)> {
        self.apps.get(name)?.revision_info.lock().ok()?.clone()
    }

    /// The app's backups, newest first: the manifests in the backups folder (the truth,
    /// whoever took them — the daemon or `mooring backup create`), mirrored into the
    /// store's catalogue first.
    pub async fn app_backups(&self, name: &str) -> Result<Vec<mooring_store::BackupRow>, String> {
        let dir = self.config.server.data_dir.join("backups");
        let app = name.to_string();
        let rows = tokio::task::spawn_blocking(move || {
            mooring_backup::list(&dir).map(|records| {
                records
                    .into_iter()
                    .filter(|r| r.manifest.meta.app == app)
                    .map(|r| {
                        let m = r.manifest;
                        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                        mooring_store::BackupRow {
                            id: r.id,
                            app: m.meta.app,
                            volume: m.meta.volume,
                            created_at: m.meta.created_at,
                            revision: m.meta.revision,
                            reason: m.meta.reason,
                            files: int(m.files),
                            bytes: int(m.bytes),
                            archive_size: int(m.archive_size),
                            archive_sha256: m.archive_sha256,
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        self.store
            .mirror_backups(name, &rows)
            .map_err(|e| e.to_string())?;
        self.store.backups(name).map_err(|e| e.to_string())
    }

    /// The app's volumes that its services mount read-write (data that may change).
    pub async fn data_volumes(&self, name: &str) -> Vec<String> {
        let Some(app) = self.apps.get(name) else {
            return vec![];
        };
        let rendered = app.runtime.lock().await.rendered.clone();
        let Some(r) = rendered else { return vec![] };
        let mut out: Vec<String> = r
            .project
            .services
            .values()
            .flat_map(|s| s.mounts.iter())
            .filter(|m| m.kind == mooring_core::MountKind::Volume && !m.read_only)
            .map(|m| m.source.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The app's resource tree with health and data policies (a fresh observation);
    /// `None` before its first render.
    pub async fn resources(&self, name: &str) -> Result<Option<ResourceTree>, ControlError> {
        let app = self
            .apps
            .get(name)
            .ok_or_else(|| ControlError::UnknownApp(name.to_string()))?;
        let rendered = app.runtime.lock().await.rendered.clone();
        let Some(rendered) = rendered else {
            return Ok(None);
        };
        let provider = self
            .providers
            .get(&app.config.host)
            .ok_or_else(|| ControlError::Failed("host not connected".into()))?;
        let live = provider
            .observe(&rendered.project)
            .await
            .map_err(|e| ControlError::Failed(e.to_string()))?;
        let policy = app.config.volumes;
        Ok(Some(mooring_core::resource_tree(
            &rendered.project,
            &live,
            policy,
        )))
    }
}

fn resource_kind(a: &mooring_core::Action) -> &'static str {
    use mooring_core::Action::*;
    match a {
        CreateNetwork { .. } | RemoveNetwork { .. } => "network",
        CreateVolume { .. } => "volume",
        PullImage { .. } => "image",
        _ => "container",
    }
}

/// The cache for an app's source, with its credentials.
fn source_cache(data_dir: &std::path::Path, app: &AppConfig) -> Cache {
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

/// The spec that fetches exactly `rev` of an app's source (`None` for plain folders).
fn revision_spec(spec: &SourceSpec, rev: &str) -> Option<SourceSpec> {
    match spec {
        SourceSpec::Git { url, .. } => Some(SourceSpec::Git {
            url: url.clone(),
            reference: Some(rev.to_string()),
        }),
        SourceSpec::Svn { url, reference } => {
            let base = reference.as_deref().unwrap_or("trunk");
            let base = base.split_once('@').map(|(b, _)| b).unwrap_or(base);
            Some(SourceSpec::Svn {
                url: url.clone(),
                reference: Some(format!("{base}@{rev}")),
            })
        }
        SourceSpec::Hg { url, .. } => Some(SourceSpec::Hg {
            url: url.clone(),
            reference: Some(rev.to_string()),
        }),
        _ => None,
    }
}

/// Whether an `allow_refs` entry (a name, `prefix*`, or `*`) names `asked`.
fn ref_matches(pattern: &str, asked: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => asked.starts_with(prefix),
        None => pattern == asked,
    }
}

/// Why a revision could not be rendered for an app: it waits for a new revision.
#[derive(Debug, Clone)]
struct RenderFailure {
    /// The app's policy refused it (else the render failed).
    policy: bool,
    message: String,
}

impl RenderFailure {
    fn panicked(e: tokio::task::JoinError) -> RenderFailure {
        RenderFailure {
            policy: false,
            message: crate::panic::join_error("rendering", e),
        }
    }

    /// The app's condition while the revision stands.
    fn condition(&self) -> &'static str {
        if self.policy {
            "PolicyRefused"
        } else {
            "RenderError"
        }
    }
}

/// Exponential backoff: `base × 2^(n−1)`, at most `max`.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(max)
}

/// A stable per-name jitter of up to a tenth of the interval, so apps and sources
/// sharing an interval do not all wake at once.
fn jitter(name: &str, interval: Duration) -> Duration {
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
