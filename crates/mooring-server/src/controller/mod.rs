//! The control loop's handle: the `Controller` (built from a configuration, started,
//! stopped, triggered) and the state its rooms share. One task per **source**
//! (`poller`) fetches it and wakes its apps on a new revision; one task per **app**
//! (`app_loop`) reconciles it on its interval (with jitter), on a new revision, on
//! request, on webhook, and on Docker events (self-heal). One operation per app at a
//! time (the app's lock), at most `server.workers` at once (a semaphore); a failing
//! app retries with exponential backoff and never stalls the others. An operation
//! (`operation`) resolves, verifies, renders and applies; `status` records what
//! happened; `queries` answer readers without waiting for a running sync.
//!
//! An unchanged revision is not re-rendered (the rendered project is kept per app),
//! and an in-sync host costs one observation and no Docker writes.

mod app_loop;
mod backup_age;
mod backups;
mod copies;
mod error;
mod hosts;
pub use hosts::HostHealth;
mod operation;
mod poller;
mod queries;
mod rollback;
mod status;

pub use app_loop::backoff;
pub use backups::DataRun;
pub use error::ControlError;

use crate::activity::{Activity, HEARTBEAT};
use crate::config::{AppConfig, Config};
use crate::failure::OperationFailure;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use mooring_core::{Health, Plan};
use mooring_docker::Provider;
use mooring_render::Rendered;
use mooring_store::{AppStatus, Store};
use mooring_vcs::{Cache, Revision, RevisionInfo, SourceSpec};
use operation::RenderFailure;
use poller::source_cache;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
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
    /// A backup asked for through the API (an operation of the app, not a reconcile).
    Backup,
    /// A restore asked for through the API (an operation of the app, not a reconcile).
    Restore,
    /// A failed revision replaced by the one before (`sync.rollback`).
    AutoRollback,
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
            TriggerKind::Backup => "backup",
            TriggerKind::Restore => "restore",
            TriggerKind::AutoRollback => "auto-rollback",
        }
    }

    /// A person asked: apply even when `auto` is off.
    fn manual(self) -> bool {
        matches!(
            self,
            TriggerKind::Api | TriggerKind::Rollback | TriggerKind::AutoRollback
        )
    }

    /// It wants what the source holds now: a pending trigger that reuses the last
    /// fetch (drift, an interval) does not stand in for it.
    fn fetches_now(self) -> bool {
        matches!(
            self,
            TriggerKind::Refresh | TriggerKind::Webhook | TriggerKind::Revision
        )
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
    pub reply: Option<oneshot::Sender<Finished>>,
    /// When it was asked for: a person's request deploys what the source holds from
    /// then on (a fetch started before it may predate the commit they just pushed).
    pub asked_at: Instant,
    /// Who asked (the API token's name); `None`: Mooring itself.
    pub by: Option<String>,
    /// Apply only the plan with this digest (the one the person confirmed).
    pub expect_plan: Option<String>,
}

impl Trigger {
    /// A trigger asked for now, without reply, revision or pin.
    pub fn of(kind: TriggerKind) -> Trigger {
        Trigger {
            kind,
            revision: None,
            pin: false,
            reply: None,
            asked_at: Instant::now(),
            by: None,
            expect_plan: None,
        }
    }

    /// The same, asked by `by` (an API token's name).
    pub fn by(mut self, by: &str) -> Trigger {
        self.by = Some(by.to_string());
        self
    }
}

/// What a trigger's requester hears when its reconcile is over.
#[derive(Debug)]
pub struct Finished {
    /// The operation this reconcile recorded (`None`: nothing needed doing, or it was
    /// refused before any operation started).
    pub operation: Option<i64>,
    /// The app's status after it, or why it failed.
    pub result: Result<AppStatus, OperationFailure>,
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
    /// `app` (status changed), `started` (an action began), `operation` (an action
    /// finished), `output` (a line a pull or build printed), `event`.
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
    /// The last fetch's revision, and when that fetch started.
    last: Mutex<Option<(Revision, Instant)>>,
    fetch_lock: tokio::sync::Mutex<()>,
    poke: Notify,
    /// The webhook delivery behind the last poke (`github delivery 72d3…`): who asked
    /// for the operations it starts.
    delivery: Mutex<Option<String>>,
}

/// The app's last rendered project: what readers (the resource tree, data volumes)
/// look at, and what an unchanged revision reuses instead of rendering again.
#[derive(Clone, Default)]
struct LastRender {
    rendered: Option<Arc<Rendered>>,
    /// Content identity of the app's path in `rendered` (see `Cache::path_tree`).
    tree: Option<String>,
}

/// What the app's loop keeps between reconciles; one reconcile at a time holds it.
#[derive(Default)]
struct AppRuntime {
    /// Revision id whose render failed, with the error (not retried until a new revision).
    render_failure: Option<(String, RenderFailure)>,
    failures: u32,
    next_retry: Option<Instant>,
    last_health: Option<Health>,
    /// A new revision on probation (`sync.rollback`).
    watch: Option<rollback::Watch>,
    /// Volumes whose newest backup is too old, as last reported (`data.backup_max_age`).
    stale_backups: std::collections::BTreeSet<String>,
}

struct AppHandle {
    config: AppConfig,
    spec: SourceSpec,
    source: Arc<SourceHandle>,
    trigger: mpsc::Sender<Trigger>,
    runtime: tokio::sync::Mutex<AppRuntime>,
    /// Outside `runtime`, behind a lock never held across an await, so readers never
    /// wait for a running sync.
    last_render: Mutex<LastRender>,
    /// Author, time and message of the deployed revision (by id), read once per
    /// revision from the source cache; outside `runtime` so readers never wait for a sync.
    revision_info: Mutex<Option<(String, RevisionInfo)>>,
    /// Other revisions' info (the history's, the rollback picker's), read once each:
    /// a revision never changes (`None`: the source cannot say, not asked again).
    /// At most [`REVISIONS_KEPT`].
    revisions: Mutex<HashMap<String, Option<RevisionInfo>>>,
    /// A trigger that wants a fresh fetch is waiting for room (see `trigger`).
    fetch_waiting: std::sync::atomic::AtomicBool,
    /// The backup targets its backups could not be copied to, with why (`copies`).
    copy_failures: Mutex<BTreeMap<String, String>>,
}

/// Revisions whose info an app keeps (then it starts again).
const REVISIONS_KEPT: usize = 256;

impl AppHandle {
    /// The app's last rendered project (a copy of two `Arc`s, taken without waiting).
    fn last_render(&self) -> LastRender {
        self.last_render
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Keeps `rendered` (whose app path has the content identity `tree`) as the last.
    fn keep_render(&self, rendered: Arc<Rendered>, tree: Option<String>) {
        *self.last_render.lock().unwrap_or_else(|e| e.into_inner()) = LastRender {
            rendered: Some(rendered),
            tree,
        };
    }
}

/// The running control loop for one configuration.
pub struct Controller {
    pub config: Config,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    stream: broadcast::Sender<StreamEvent>,
    providers: BTreeMap<String, Provider>,
    /// What each host's watcher last saw (`hosts`).
    host_states: BTreeMap<String, Arc<hosts::HostState>>,
    apps: BTreeMap<String, Arc<AppHandle>>,
    sources: Vec<Arc<SourceHandle>>,
    workers: Arc<Semaphore>,
    notifier: Notifier,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    receivers: Mutex<BTreeMap<String, mpsc::Receiver<Trigger>>>,
    /// Apps whose backups want copying off the host, and the copier's end (`copies`).
    copies: mpsc::Sender<String>,
    copy_requests: Mutex<Option<mpsc::Receiver<String>>>,
    /// Heartbeat and running work, for `/readyz`.
    pub activity: Arc<Activity>,
}

impl Controller {
    /// Builds the controller: connects to every host and validates every source.
    pub async fn new(
        config: Config,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        stream: broadcast::Sender<StreamEvent>,
    ) -> Result<Arc<Controller>, ControlError> {
        // Opened, not asked: a host that does not answer now is watched and retried
        // (`hosts`), and never keeps the daemon or another host's apps from running.
        let mut providers = BTreeMap::new();
        let mut host_states = BTreeMap::new();
        for (name, host) in &config.hosts {
            let p =
                Provider::open(host.endpoint.clone()).map_err(|source| ControlError::Connect {
                    host: name.clone(),
                    source,
                })?;
            providers.insert(name.clone(), p.with_registries(config.registries.clone()));
            host_states.insert(name.clone(), Arc::new(hosts::HostState::default()));
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
                        delivery: Mutex::default(),
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
                    last_render: Mutex::default(),
                    revision_info: Mutex::new(None),
                    revisions: Mutex::default(),
                    fetch_waiting: Default::default(),
                    copy_failures: Mutex::default(),
                }),
            );
        }
        let (shutdown, _) = watch::channel(false);
        let (copies, copy_requests) = mpsc::channel(copies::QUEUE);
        Ok(Arc::new(Controller {
            copies,
            copy_requests: Mutex::new(Some(copy_requests)),
            workers: Arc::new(Semaphore::new(config.server.workers)),
            activity: Activity::new(config.server.stuck_after),
            notifier: Notifier::new(config.notifications.clone()),
            config,
            store,
            metrics,
            stream,
            providers,
            host_states,
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
        if let Some(rx) = self
            .copy_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            tasks.push(tokio::spawn(self.clone().copy_loop(rx)));
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
            tasks.push(tokio::spawn(
                async move { me.watch_host(host, provider).await },
            ));
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

    /// A configured app and the provider of its host.
    fn app_on_host(&self, name: &str) -> Result<(&Arc<AppHandle>, &Provider), ControlError> {
        let app = self
            .apps
            .get(name)
            .ok_or_else(|| ControlError::UnknownApp(name.to_string()))?;
        let provider = self
            .providers
            .get(&app.config.host)
            .ok_or_else(|| ControlError::NotConnected(app.config.host.clone()))?;
        Ok((app, provider))
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
                .map_err(|_| ControlError::Stopping)
        } else {
            // Coalesce: one pending trigger per app is enough — unless this one wants a
            // fresh fetch and the pending one may not make one (a drift): then it waits
            // its turn, once.
            match handle.trigger.try_send(trigger) {
                Err(mpsc::error::TrySendError::Full(t))
                    if t.kind.fetches_now()
                        && !handle
                            .fetch_waiting
                            .swap(true, std::sync::atomic::Ordering::SeqCst) =>
                {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        let _ = handle.trigger.send(t).await;
                        handle
                            .fetch_waiting
                            .store(false, std::sync::atomic::Ordering::SeqCst);
                    });
                }
                _ => {}
            }
            Ok(())
        }
    }
}
