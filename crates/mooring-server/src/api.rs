//! The JSON API's handlers under `/api/v1` (every route authenticated by a bearer token
//! with a role, see `auth`), `/metrics`, `/healthz` and `/readyz` (open), and
//! `/hooks/<provider>` (signed webhooks), and the typed answers they serve (`views`:
//! `apps_view`, `app_view`, `diff_view` build those the web UI renders too). The routes and their roles
//! are listed in [`ROUTES`](crate::routes::ROUTES); `router` wires them.

use crate::access::Access;
use crate::config;
use crate::controller::{ControlError, Controller, StreamEvent, Trigger, TriggerKind};
use crate::failure::OperationFailure;
use crate::hooks::{self, normalize_repository};
use crate::limits::{self, FailureLimiter, Scope};
use crate::metrics::Metrics;
use crate::views::*;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mooring_store::{now_ms, AppStatus, Role, Store};
use mooring_vcs::{redact_url, SourceSpec};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot, RwLock};

/// Shared by every request.
pub struct ServerState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub stream: broadcast::Sender<StreamEvent>,
    pub controller: RwLock<Arc<Controller>>,
    pub config_path: PathBuf,
    pub ready: AtomicBool,
    /// Failed webhook deliveries and log-ins per source address.
    pub(crate) limiter: FailureLimiter,
}

impl ServerState {
    pub fn new(
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        stream: broadcast::Sender<StreamEvent>,
        controller: Arc<Controller>,
        config_path: PathBuf,
    ) -> ServerState {
        ServerState {
            store,
            metrics,
            stream,
            controller: RwLock::new(controller),
            config_path,
            ready: AtomicBool::new(false),
            limiter: FailureLimiter::default(),
        }
    }
}

pub(crate) type St = State<Arc<ServerState>>;

/// An API error: status and a message in `{"error": ...}`.
pub struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorView { error: self.1 })).into_response()
    }
}

pub(crate) fn bad(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

impl From<mooring_store::StoreError> for ApiError {
    fn from(e: mooring_store::StoreError) -> ApiError {
        bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        let status = control_status(&e);
        match e {
            ControlError::Operation(failure) => bad(status, failure.to_string()),
            other => bad(status, other.to_string()),
        }
    }
}

/// The HTTP status of a controller error: 404 an unknown app, the operation's status
/// for what a diff met (`failure_status`), 409 a restore that would overwrite data,
/// 502 Docker failed, 503 the daemon is
/// stopping, 500 for the daemon's own storage and tasks.
pub fn control_status(e: &ControlError) -> StatusCode {
    match e {
        ControlError::UnknownApp(_) | ControlError::UnknownHost(_) => StatusCode::NOT_FOUND,
        ControlError::Docker(mooring_docker::ProviderError::Refused(_)) => StatusCode::CONFLICT,
        ControlError::Backups(mooring_backup::BackupError::NotFound { .. }) => {
            StatusCode::NOT_FOUND
        }
        ControlError::Operation(failure) => failure_status(failure),
        ControlError::Connect { .. } | ControlError::NotConnected(_) | ControlError::Docker(_) => {
            StatusCode::BAD_GATEWAY
        }
        ControlError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::Backups(_) | ControlError::Store(_) | ControlError::Task(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

pub(crate) async fn readyz(State(state): St) -> Response {
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    }
    let activity = state.controller.read().await.activity.clone();
    match activity.stuck(Instant::now()) {
        None => "ready".into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("stuck: {why}")).into_response(),
    }
}

pub(crate) async fn metrics(State(state): St) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(crate::routes::openapi_document())
}

pub(crate) async fn controller(state: &ServerState) -> Arc<Controller> {
    state.controller.read().await.clone()
}

pub(crate) async fn list_apps(State(state): St, Extension(access): Extension<Access>) -> ApiResult {
    let mut list = apps_view(&state).await?;
    access.retain(&mut list.apps, |a| Some(a.name()));
    Ok(Json(list).into_response())
}

/// `GET /api/v1/apps`: every configured app with its status, policy and latest
/// operation. The web UI's overview renders this same value.
pub(crate) async fn apps_view(state: &ServerState) -> Result<AppList, ApiError> {
    let c = controller(state).await;
    let mut statuses: HashMap<String, AppStatus> = state
        .store
        .apps()?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut latest = state.store.latest_operations()?;
    let apps = c
        .app_names()
        .iter()
        .filter_map(|name| summary(&c, name, statuses.remove(name), latest.remove(name)))
        .collect();
    Ok(AppList { apps })
}

/// An app's summary from its configuration and stored status (an app never
/// reconciled yet is `Unknown`); `None` when the app is not configured.
fn summary(
    c: &Controller,
    name: &str,
    status: Option<AppStatus>,
    latest_operation: Option<mooring_store::OperationRecord>,
) -> Option<AppSummary> {
    let cfg = c.app_config(name)?;
    let status = status.unwrap_or_else(|| {
        AppStatus::unknown(name, &redact_url(&cfg.source.spec.to_string()), now_ms())
    });
    let revision_info = c
        .revision_info(name)
        .filter(|(id, _)| status.revision.as_deref() == Some(id.as_str()))
        .map(|(_, info)| RevisionInfo {
            author: info.author,
            time_ms: info.time_ms,
            message: info.message,
        });
    Some(AppSummary {
        status,
        revision_info,
        host: cfg.host.clone(),
        path: cfg.source.path.clone(),
        reference: cfg.source.reference.clone(),
        policy: SyncPolicyView {
            auto: cfg.sync.auto,
            // As it acts: self-heal applies only to an app that syncs on its own.
            self_heal: cfg.sync.auto && cfg.sync.self_heal,
            prune: cfg.sync.prune,
            interval_seconds: cfg.sync.interval.as_secs(),
            volumes: cfg.volumes,
        },
        host_policy: HostPolicyView {
            profile: cfg.policy.profile.as_str().to_string(),
            allow: cfg.policy.allow.iter().map(ToString::to_string).collect(),
            allow_refs: cfg.source.allow_refs.clone(),
        },
        latest_operation,
    })
}

fn not_configured(name: &str) -> ApiError {
    bad(
        StatusCode::NOT_FOUND,
        format!("app {name} is not configured"),
    )
}

pub(crate) async fn get_app(State(state): St, Path(name): Path<String>) -> ApiResult {
    Ok(Json(app_view(&state, &name).await?).into_response())
}

/// `GET /api/v1/apps/{name}`: status, policy, the resource tree (services as
/// `resources`, `networks`, `volumes` with their data policy and latest backup) and
/// recent operations. The web UI's app page renders this same value.
pub(crate) async fn app_view(state: &ServerState, name: &str) -> Result<AppDetail, ApiError> {
    let c = controller(state).await;
    let operations = state.store.operations(Some(name), 10, None)?;
    let summary = summary(
        &c,
        name,
        state.store.app(name)?,
        operations.first().cloned(),
    )
    .ok_or_else(|| not_configured(name))?;
    let mut detail = AppDetail {
        summary,
        resources: vec![],
        networks: vec![],
        volumes: vec![],
        resources_error: None,
        backups: vec![],
        revision_subjects: Default::default(),
        operations,
    };
    let revisions: Vec<&str> = detail
        .operations
        .iter()
        .filter_map(|o| o.revision.as_deref())
        .collect();
    detail.revision_subjects = c.revision_subjects(name, &revisions).await;
    let backups = c.app_backups(name).await.unwrap_or_default();
    match c.resources(name).await {
        Ok(Some(tree)) => {
            detail.volumes = tree
                .volumes
                .into_iter()
                .map(|volume| VolumeView {
                    // The catalogue is newest first.
                    last_backup: backups
                        .iter()
                        .find(|b| b.volume == volume.name)
                        .map(BackupBrief::from),
                    volume,
                })
                .collect();
            detail.resources = tree.services;
            detail.networks = tree.networks;
        }
        Ok(None) => {}
        Err(e) => detail.resources_error = Some(e.to_string()),
    }
    detail.backups = backups.into_iter().take(AppDetail::BACKUPS_SHOWN).collect();
    Ok(detail)
}

/// `?revision=`: the revision to plan for (a branch, tag or commit the app may deploy).
#[derive(Deserialize, Default)]
pub(crate) struct DiffQuery {
    revision: Option<String>,
}

pub(crate) async fn diff(
    State(state): St,
    Path(name): Path<String>,
    Extension(access): Extension<Access>,
    Query(q): Query<DiffQuery>,
) -> ApiResult {
    let revision = q.revision.as_deref().filter(|r| !r.is_empty());
    // Another revision is fetched and rendered: what a sync to it does first, so an
    // operator's right, not a viewer's.
    if revision.is_some() && access.role < Role::Operator {
        return Err(bad(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not plan another revision (?revision=); operator is needed",
                access.role
            ),
        ));
    }
    Ok(Json(diff_view(&state, &name, revision).await?).into_response())
}

/// `GET /api/v1/apps/{name}/diff[?revision=R]`: the plan a sync would execute now (or a
/// sync to revision R, or a rollback to it), and desired against live for every
/// resource. The web UI's diff page renders this same value.
pub(crate) async fn diff_view(
    state: &ServerState,
    name: &str,
    revision: Option<&str>,
) -> Result<DiffView, ApiError> {
    let c = controller(state).await;
    let d = c.diff(name, revision).await?;
    Ok(DiffView {
        app: name.to_string(),
        revision: d.revision.id,
        revision_describe: d.revision.describe,
        in_sync: d.plan.in_sync(),
        plan_digest: d.plan.digest(),
        steps: d
            .plan
            .actions
            .iter()
            .map(|a| Step {
                text: a.action.to_string(),
                verb: a.action.verb().to_string(),
                reason: a.reason.clone(),
            })
            .collect(),
        plan: d.plan,
        comparisons: d.comparisons,
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct SyncBody {
    revision: Option<String>,
    /// The digest of the plan the person confirmed (the diff's `plan_digest`): a
    /// different plan now is refused (409, `plan_changed`), nothing applied.
    expect_plan: Option<String>,
}

async fn run_trigger(
    state: &ServerState,
    (name, by): (&str, &Access),
    kind: TriggerKind,
    (revision, expect_plan): (Option<String>, Option<String>),
    pin: bool,
) -> Result<(StatusCode, OperationOutcome), ApiError> {
    let asked_at = std::time::Instant::now();
    let c = controller(state).await;
    if let Some(asked) = &revision {
        // A revision that does not exist, or that the app may not deploy, is refused
        // before any operation starts (the app's status and retries stay as they are).
        match c.resolve_revision(name, asked).await {
            Ok(_) => {}
            Err(ControlError::Operation(failure)) => return failed(state, name, &failure),
            Err(e) => return Err(e.into()),
        }
    }
    let (tx, rx) = oneshot::channel();
    c.trigger(
        name,
        Trigger {
            kind,
            revision,
            pin,
            reply: Some(tx),
            asked_at,
            by: Some(by.name.clone()),
            expect_plan,
        },
    )
    .await?;
    let Ok(finished) = rx.await else {
        return Err(bad(
            StatusCode::SERVICE_UNAVAILABLE,
            OperationFailure::Stopping.to_string(),
        ));
    };
    let (code, mut outcome) = match finished.result {
        Ok(status) => (
            StatusCode::OK,
            OperationOutcome {
                ok: true,
                kind: None,
                error: None,
                status: Some(status),
                operation: None,
                data_warning: None,
            },
        ),
        Err(failure) => failed(state, name, &failure)?,
    };
    outcome.operation = match finished.operation {
        Some(id) => state.store.operation(id)?,
        None => None,
    };
    Ok((code, outcome))
}

/// The answer to a request whose operation failed or was refused: the failure's status,
/// kind and message, and the app's status.
fn failed(
    state: &ServerState,
    name: &str,
    failure: &OperationFailure,
) -> Result<(StatusCode, OperationOutcome), ApiError> {
    Ok((
        failure_status(failure),
        OperationOutcome {
            ok: false,
            kind: Some(failure.kind().to_string()),
            error: Some(failure.to_string()),
            status: state.store.app(name)?,
            operation: None,
            data_warning: None,
        },
    ))
}

/// The HTTP status of a failed operation (documented in the README's API section):
/// 422 the revision cannot be deployed (render, validation, signature), 409 the plan
/// conflicts with the host, 502 the source or Docker failed, 503 the daemon is stopping.
pub fn failure_status(failure: &OperationFailure) -> StatusCode {
    match failure {
        OperationFailure::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        OperationFailure::Conflict(_) | OperationFailure::PlanChanged(_) => StatusCode::CONFLICT,
        OperationFailure::Source(_) | OperationFailure::Apply(_) => StatusCode::BAD_GATEWAY,
        OperationFailure::Stopping => StatusCode::SERVICE_UNAVAILABLE,
    }
}

pub(crate) async fn sync(
    State(state): St,
    Path(name): Path<String>,
    Extension(access): Extension<Access>,
    body: Option<Json<SyncBody>>,
) -> ApiResult {
    let body = body.map(|b| b.0);
    let (revision, expect_plan) = body.map_or((None, None), |b| (b.revision, b.expect_plan));
    let (status, outcome) = run_trigger(
        &state,
        (&name, &access),
        TriggerKind::Api,
        (revision, expect_plan),
        false,
    )
    .await?;
    Ok((status, Json(outcome)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct RollbackBody {
    /// A revision (commit id, tag…) or an operation id (`#12` or `op:12`).
    to: String,
    /// As for a sync: the digest of the plan the person confirmed.
    expect_plan: Option<String>,
}

pub(crate) async fn rollback(
    State(state): St,
    Path(name): Path<String>,
    Extension(access): Extension<Access>,
    Json(body): Json<RollbackBody>,
) -> ApiResult {
    let body_plan = body.expect_plan.clone();
    let op_id = body
        .to
        .strip_prefix('#')
        .or_else(|| body.to.strip_prefix("op:"))
        .and_then(|s| s.parse::<i64>().ok());
    let revision = match op_id {
        Some(id) => {
            let op = state
                .store
                .operation(id)?
                .filter(|o| o.app == name)
                .ok_or_else(|| {
                    bad(
                        StatusCode::NOT_FOUND,
                        format!("operation {id} of app {name} not found"),
                    )
                })?;
            op.revision.ok_or_else(|| {
                bad(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("operation {id} has no revision"),
                )
            })?
        }
        None => body.to,
    };
    let c = controller(&state).await;
    let volumes = c.data_volumes(&name).await;
    let (status, mut outcome) = run_trigger(
        &state,
        (&name, &access),
        TriggerKind::Rollback,
        (Some(revision.clone()), body_plan),
        true,
    )
    .await?;
    if volumes.is_empty() {
        return Ok((status, Json(outcome)).into_response());
    }
    // The target as the source resolved it — what the rollback deployed — so that an
    // abbreviated id, a tag or a Subversion number (`5`, never `51`) matches exactly.
    let after = outcome.status.as_ref();
    let target = after
        .filter(|_| outcome.ok)
        .and_then(|s| s.revision.clone())
        .unwrap_or(revision);
    let this_operation = outcome.operation.as_ref().map(|o| o.id);
    // Before this rollback: when was the target last deployed, until when did it stay
    // deployed (the next successful deploy of another revision).
    let history: Vec<_> = state
        .store
        .operations(Some(&name), 500, None)?
        .into_iter()
        .filter(|o| o.result == Some(mooring_store::OpResult::Succeeded))
        .filter(|o| this_operation.is_none_or(|id| o.id < id))
        .collect(); // newest first
    let is_target = |r: &Option<String>| r.as_deref() == Some(target.as_str());
    let target_at = history.iter().position(|o| is_target(&o.revision));
    let deployed_at = target_at.map(|i| history[i].started_at);
    let replaced_at = target_at.and_then(|i| {
        history[..i]
            .iter()
            .rev()
            .find(|o| !is_target(&o.revision))
            .map(|o| o.started_at)
    });
    // Reverting a commit does not bring data back: say which volumes may have been
    // written since, and offer the backups of that time. Restoring stays a separate step.
    let backups: Vec<BackupMark> = c
        .app_backups(&name)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|b| volumes.contains(&b.volume))
        // Taken while the target ran, or before: newer backups hold newer data.
        .filter(|b| replaced_at.is_none_or(|t| b.created_at <= t))
        .map(|b| BackupMark {
            id: b.id,
            volume: b.volume,
            created_at: b.created_at,
        })
        .collect();
    outcome.data_warning = Some(DataWarning {
        message: format!(
            "the rollback changed containers, not data: volumes {} were mounted read-write since that revision and may hold newer data; restoring a backup is a separate step (mooring backup restore ID)",
            volumes.join(", ")
        ),
        volumes,
        deployed_at,
        replaced_at,
        backups,
    });
    Ok((status, Json(outcome)).into_response())
}

pub(crate) async fn unpin(
    State(state): St,
    Path(name): Path<String>,
    Extension(access): Extension<Access>,
) -> ApiResult {
    let c = controller(&state).await;
    if c.app_config(&name).is_none() {
        return Err(bad(
            StatusCode::NOT_FOUND,
            format!("app {name} is not configured"),
        ));
    }
    state.store.set_pin(&name, None)?;
    // Under the app's own policy: an `auto: false` app changes only by a sync.
    c.trigger(&name, Trigger::of(TriggerKind::Refresh).by(&access.name))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PinView {
            ok: true,
            pinned: None,
        }),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct PinBody {
    revision: Option<String>,
}

pub(crate) async fn pin(
    State(state): St,
    Path(name): Path<String>,
    Extension(access): Extension<Access>,
    body: Option<Json<PinBody>>,
) -> ApiResult {
    let c = controller(&state).await;
    if c.app_config(&name).is_none() {
        return Err(bad(
            StatusCode::NOT_FOUND,
            format!("app {name} is not configured"),
        ));
    }
    let deployed = state.store.app(&name)?.and_then(|s| s.revision);
    let revision = match (body.and_then(|b| b.0.revision), deployed) {
        // What is pinned is what the source resolves, and only what the app may deploy.
        (Some(asked), _) => c.resolve_revision(&name, &asked).await?.id,
        (None, Some(deployed)) => deployed,
        (None, None) => {
            return Err(bad(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("app {name} has no deployed revision to pin; give one (\"revision\")"),
            ))
        }
    };
    state.store.set_pin(&name, Some(&revision))?;
    c.trigger(&name, Trigger::of(TriggerKind::Api).by(&access.name))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PinView {
            ok: true,
            pinned: Some(revision),
        }),
    )
        .into_response())
}

pub(crate) async fn refresh(
    State(state): St,
    Path(name): Path<String>,
    Extension(access): Extension<Access>,
) -> ApiResult {
    let c = controller(&state).await;
    c.trigger(&name, Trigger::of(TriggerKind::Refresh).by(&access.name))
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { ok: true })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Page {
    limit: Option<usize>,
    before: Option<i64>,
    after: Option<i64>,
    app: Option<String>,
}

pub(crate) async fn app_operations(
    State(state): St,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult {
    let ops =
        state
            .store
            .operations(Some(&name), page.limit.unwrap_or(50).min(500), page.before)?;
    Ok(Json(OperationList { operations: ops }).into_response())
}

pub(crate) async fn app_backups(State(state): St, Path(name): Path<String>) -> ApiResult {
    let c = controller(&state).await;
    if c.app_config(&name).is_none() {
        return Err(bad(
            StatusCode::NOT_FOUND,
            format!("app {name} is not configured"),
        ));
    }
    let backups = c.app_backups(&name).await.map_err(|e| {
        bad(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("listing the backups of {name}: {e}"),
        )
    })?;
    let copies = c.target_copies(&name).await;
    Ok(Json(BackupList { backups, copies }).into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct BackupBody {
    /// Only this volume (its Docker name); default: every volume of the app.
    volume: Option<String>,
}

/// `POST /api/v1/apps/{name}/backups`: a backup as an operation of the app.
pub(crate) async fn create_backup(
    State(state): St,
    Path(name): Path<String>,
    Extension(access): Extension<Access>,
    body: Option<Json<BackupBody>>,
) -> ApiResult {
    let volume = body.and_then(|b| b.0.volume);
    let c = controller(&state).await;
    let run = c
        .back_up(&name, volume.as_deref(), Some(&access.name))
        .await?;
    let backups = c
        .app_backups(&name)
        .await?
        .into_iter()
        .filter(|b| run.backups.contains(&b.id))
        .collect();
    data_outcome(&state, run, backups, None)
}

#[derive(Deserialize, Default)]
pub(crate) struct RestoreBody {
    /// Restore into this volume instead (created when missing).
    to_volume: Option<String>,
    /// Overwrite files of a volume that holds data (files not in the backup are kept).
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/apps/{name}/backups/{id}/restore`: a restore as an operation of the app.
pub(crate) async fn restore_backup(
    State(state): St,
    Path((name, id)): Path<(String, String)>,
    Extension(access): Extension<Access>,
    body: Option<Json<RestoreBody>>,
) -> ApiResult {
    let body = body.map(|b| b.0).unwrap_or_default();
    let c = controller(&state).await;
    let run = c
        .restore(
            &name,
            (&id, body.to_volume.as_deref()),
            body.force,
            Some(&access.name),
        )
        .await?;
    let restored = run
        .restored
        .clone()
        .map(|(volume, files, bytes, created)| RestoredView {
            backup: id.clone(),
            volume,
            files,
            bytes,
            created,
        });
    data_outcome(&state, run, Vec::new(), restored)
}

/// `POST /api/v1/apps/{name}/backups/{id}/verify`: reads the backup again against its
/// manifest; 200 when it matches, 422 with the reason when it does not.
pub(crate) async fn verify_backup(
    State(state): St,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult {
    let c = controller(&state).await;
    if c.app_config(&name).is_none() {
        return Err(not_configured(&name));
    }
    let view = match c.verify_backup(&name, &id).await? {
        Ok(r) => VerifyView {
            message: format!(
                "backup {id} verified: {} files, {} bytes and the archive's sha256 match its manifest",
                r.files, r.bytes
            ),
            backup: id,
            ok: true,
            error: None,
            entries: r.entries,
            files: r.files,
            bytes: r.bytes,
            archive_size: r.archive_size,
        },
        Err(e) => VerifyView {
            message: format!("backup {id} does not verify: {e}"),
            backup: id,
            ok: false,
            error: Some(e),
            entries: 0,
            files: 0,
            bytes: 0,
            archive_size: 0,
        },
    };
    let code = if view.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((code, Json(view)).into_response())
}

/// The answer to a backup or restore: 200 when it ended well, else 502 with the error;
/// the operation recorded for it either way.
fn data_outcome(
    state: &ServerState,
    run: crate::controller::DataRun,
    backups: Vec<mooring_store::BackupRow>,
    restored: Option<RestoredView>,
) -> ApiResult {
    let operation = match run.operation {
        Some(id) => state.store.operation(id)?,
        None => None,
    };
    let code = if run.error.is_none() {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    let outcome = DataOutcome {
        ok: run.error.is_none(),
        error: run.error,
        operation,
        backups,
        restored,
    };
    Ok((code, Json(outcome)).into_response())
}

pub(crate) async fn operation(
    State(state): St,
    Extension(access): Extension<Access>,
    Path(id): Path<i64>,
) -> ApiResult {
    let op = state
        .store
        .operation(id)?
        .ok_or_else(|| bad(StatusCode::NOT_FOUND, format!("operation {id} not found")))?;
    if let Some(refusal) = access.refusal(&op.app) {
        return Err(bad(StatusCode::FORBIDDEN, refusal));
    }
    Ok(Json(op).into_response())
}

pub(crate) async fn events(
    State(state): St,
    Extension(access): Extension<Access>,
    Query(page): Query<Page>,
) -> ApiResult {
    let mut events = state.store.events(
        page.app.as_deref(),
        page.after,
        page.limit.unwrap_or(100).min(1000),
    )?;
    access.retain(&mut events, |e| e.app.as_deref());
    Ok(Json(EventList { events }).into_response())
}

pub(crate) async fn stream(State(state): St, Extension(access): Extension<Access>) -> Response {
    let rx = state.stream.subscribe();
    let events = futures_util::stream::unfold((rx, access), |(mut rx, access)| async move {
        loop {
            match rx.recv().await {
                Ok(ev) if !access.sees(&ev.app) => continue,
                Ok(ev) => {
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    return Some((
                        Ok::<_, std::convert::Infallible>(
                            Event::default().event(ev.kind).data(data),
                        ),
                        (rx, access),
                    ));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

pub(crate) async fn list_tokens(State(state): St) -> ApiResult {
    Ok(Json(TokenList {
        tokens: state.store.tokens()?,
    })
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct NewToken {
    name: String,
    role: String,
    /// A lifetime (`30d`, `12h`); none: the token does not expire.
    expires: Option<String>,
    /// The apps the token is limited to; none: every app.
    apps: Option<Vec<String>>,
}

pub(crate) async fn create_token(State(state): St, Json(body): Json<NewToken>) -> ApiResult {
    let role: Role = body
        .role
        .parse()
        .map_err(|e: mooring_store::ParseRoleError| bad(StatusCode::BAD_REQUEST, e.to_string()))?;
    let configured = controller(&state).await.app_names();
    let options = crate::access::token_options(
        body.expires.as_deref(),
        body.apps.clone(),
        &configured,
        now_ms(),
    )
    .map_err(|e| bad(StatusCode::BAD_REQUEST, e))?;
    let token = state
        .store
        .create_token_with(&body.name, role, &options, now_ms())?;
    Ok((
        StatusCode::CREATED,
        Json(NewTokenView {
            name: body.name,
            role,
            expires_at: options.expires_at,
            apps: options.apps,
            token,
        }),
    )
        .into_response())
}

pub(crate) async fn revoke_token(State(state): St, Path(id): Path<i64>) -> ApiResult {
    if state.store.revoke_token(id)? {
        Ok(Json(Accepted { ok: true }).into_response())
    } else {
        Err(bad(StatusCode::NOT_FOUND, format!("token {id} not found")))
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ReloadBody {
    /// Reload even a configuration that declares no apps (it removes every app).
    #[serde(default)]
    force: bool,
}

pub(crate) async fn reload(State(state): St, body: Option<Json<ReloadBody>>) -> ApiResult {
    let force = body.is_some_and(|b| b.0.force);
    let config = config::load(&state.config_path).map_err(|e| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("configuration not reloaded: {e}"),
        )
    })?;
    let running = controller(&state).await.app_names();
    if config.apps.is_empty() && !running.is_empty() && !force {
        // An emptied or commented-out file is more often a mistake than a wish to
        // stop managing everything.
        return Err(bad(
            StatusCode::CONFLICT,
            format!(
                "configuration not reloaded: {} declares no apps, and reloading it would drop all {} running app(s) ({}); they keep running. If that is what you want, reload with {{\"force\": true}}",
                state.config_path.display(),
                running.len(),
                running.join(", ")
            ),
        ));
    }
    let new = Controller::new(
        config,
        state.store.clone(),
        state.metrics.clone(),
        state.stream.clone(),
    )
    .await?;
    let old = {
        let mut guard = state.controller.write().await;
        std::mem::replace(&mut *guard, new.clone())
    };
    old.stop().await;
    for name in old.app_names() {
        if new.app_config(&name).is_none() {
            state.metrics.forget_app(&name);
        }
    }
    let kept: Vec<String> = new.hosts().into_iter().map(|h| h.0).collect();
    for (host, ..) in old.hosts() {
        if !kept.contains(&host) {
            state.metrics.forget_host(&host);
        }
    }
    new.start();
    Ok(Json(Reloaded {
        ok: true,
        apps: new.app_names(),
    })
    .into_response())
}

/// Every configured host, as its watcher last saw it; a token limited to some apps
/// sees the hosts of those apps, with those apps only.
pub(crate) async fn hosts(
    State(state): St,
    Extension(access): Extension<crate::access::Access>,
) -> ApiResult {
    let c = controller(&state).await;
    let hosts = c
        .hosts()
        .into_iter()
        .filter_map(|(name, endpoint, health, mut apps)| {
            let limited = access.global_refusal().is_some();
            access.retain(&mut apps, |a| Some(a.as_str()));
            (!limited || !apps.is_empty()).then(|| HostView::new(name, endpoint, health, apps))
        })
        .collect();
    Ok(Json(HostList { hosts }).into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct AcceptBody {
    /// The Engine id the person saw (`GET /api/v1/hosts`): another one is not accepted.
    #[serde(default)]
    engine_id: Option<String>,
}

/// A person accepts the Engine a host answers as now.
pub(crate) async fn accept_host(
    State(state): St,
    Path(name): Path<String>,
    body: Option<Json<AcceptBody>>,
) -> ApiResult {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let c = controller(&state).await;
    let health = c.accept_host(&name, body.engine_id.as_deref()).await?;
    let (_, endpoint, _, apps) = c
        .hosts()
        .into_iter()
        .find(|(n, ..)| *n == name)
        .ok_or_else(|| ControlError::UnknownHost(name.clone()))?;
    Ok(Json(HostView::new(name, endpoint, health, apps)).into_response())
}

/// A webhook delivery. The signature is checked first: a verified delivery is always
/// taken; a refused one counts against its source address, and an address over the
/// limit (`limits::Scope::Webhook`) is answered 429.
pub(crate) async fn webhook(
    State(state): St,
    Path(provider): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let provider = provider.as_str();
    let label = if hooks::PROVIDERS.contains(&provider) {
        provider
    } else {
        "unknown"
    };
    let answer = |status: StatusCode, result: &str, message: String| {
        state.metrics.inc(
            "mooring_webhook_requests_total",
            &[("provider", label), ("result", result)],
        );
        (status, Json(HookAnswer { message })).into_response()
    };
    let c = controller(&state).await;
    let push = match hooks::verify(provider, &c.config.webhooks, &headers, &body) {
        Ok(p) => p,
        Err(e) => {
            let addr = limits::source_address(peer);
            if let Some(wait) = state.limiter.failed(Scope::Webhook, addr, Instant::now()) {
                return answer(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "too many refused deliveries from {addr}; this one was refused too ({e}); wait {}s",
                        wait.as_secs().max(1)
                    ),
                );
            }
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let result = if e.status == 401 {
                "forged"
            } else {
                "rejected"
            };
            return answer(status, result, e.message);
        }
    };
    if let Some(d) = &push.delivery {
        match state.store.remember_delivery(provider, d, now_ms()) {
            Ok(true) => {}
            Ok(false) => {
                return answer(
                    StatusCode::CONFLICT,
                    "replayed",
                    format!("delivery {d} was already received"),
                )
            }
            Err(e) => return answer(StatusCode::INTERNAL_SERVER_ERROR, "error", e.to_string()),
        }
    }
    let wanted: Vec<String> = push
        .repositories
        .iter()
        .map(|u| normalize_repository(u))
        .collect();
    let matches = |spec: &SourceSpec| match spec {
        SourceSpec::Git { url, .. } => wanted.contains(&normalize_repository(url)),
        _ => false,
    };
    // Who asked, in the history: the provider and its delivery id (printable only).
    let delivery = match &push.delivery {
        Some(d) => format!(
            "{provider} delivery {}",
            d.chars().filter(char::is_ascii_graphic).collect::<String>()
        ),
        None => format!("{provider} webhook"),
    };
    let apps = c.refresh_repository(&matches, push.reference.as_deref(), &delivery);
    answer(
        StatusCode::ACCEPTED,
        "accepted",
        format!("refreshing {} app(s): {}", apps.len(), apps.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_errors_answer_with_the_status_of_what_failed() {
        use mooring_docker::ProviderError;
        let docker = || ProviderError::Endpoint("tcp://nowhere".into());
        let cases = [
            (ControlError::UnknownApp("x".into()), StatusCode::NOT_FOUND),
            // Were 500: the daemon stopping, Docker unreachable or failing.
            (ControlError::Stopping, StatusCode::SERVICE_UNAVAILABLE),
            (
                ControlError::Connect {
                    host: "local".into(),
                    source: docker(),
                },
                StatusCode::BAD_GATEWAY,
            ),
            (ControlError::Docker(docker()), StatusCode::BAD_GATEWAY),
            (
                ControlError::NotConnected("local".into()),
                StatusCode::BAD_GATEWAY,
            ),
            (
                ControlError::Operation(OperationFailure::Invalid("bad".into())),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                ControlError::Operation(OperationFailure::Conflict("diverged".into())),
                StatusCode::CONFLICT,
            ),
            (
                ControlError::Backups(mooring_backup::BackupError::InvalidName {
                    field: "app",
                    value: "/".into(),
                }),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            let message = e.to_string();
            let ApiError(got, body) = ApiError::from(e);
            assert_eq!(got, status, "{message}");
            assert_eq!(body, message);
        }
    }
}
