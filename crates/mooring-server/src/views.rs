//! What the API answers, as types: the JSON API serializes these, the web UI renders
//! the same values (no second source of truth), and the OpenAPI document takes its
//! schemas from them (`routes::openapi_document`). Built from the controller, the
//! store and the configuration by the `*_view` functions of `api`.

use mooring_core::view::{NetworkNode, VolumeNode};
use mooring_core::{Comparison, DataPolicy, Plan, ResourceHealth};
use mooring_store::{AppStatus, BackupRow, EventRecord, OperationRecord, Role};
use schemars::JsonSchema;
use serde::Serialize;

/// `GET /api/v1/apps`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppList {
    pub apps: Vec<AppSummary>,
}

/// One app as the overview shows it: its status, where it comes from and goes to, its
/// policies, the deployed revision's author and message, and its latest operation.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppSummary {
    /// The status the controller last saved (sync, health, revision, conditions…).
    #[serde(flatten)]
    pub status: AppStatus,
    /// Who made the deployed revision, when and why (when the source told).
    pub revision_info: Option<RevisionInfo>,
    /// The host it deploys to.
    pub host: String,
    /// The folder in the source.
    pub path: String,
    /// The branch, tag or revision followed (`None`: the source's default).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// When and how it syncs.
    pub policy: SyncPolicyView,
    /// What the repository may ask of the host, and which refs may be deployed.
    pub host_policy: HostPolicyView,
    /// The app's newest operation.
    pub latest_operation: Option<OperationRecord>,
}

impl AppSummary {
    /// The app's name.
    pub fn name(&self) -> &str {
        &self.status.name
    }

    /// Whether auto-sync is off (a person syncs).
    pub fn manual(&self) -> bool {
        !self.policy.auto
    }
}

/// A revision's author, time (unix ms) and message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RevisionInfo {
    pub author: Option<String>,
    pub time_ms: Option<i64>,
    pub message: Option<String>,
}

/// `apps[].sync` and `data.volumes` as they act (`self_heal` is off when `auto` is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SyncPolicyView {
    pub auto: bool,
    pub self_heal: bool,
    pub prune: bool,
    pub interval_seconds: u64,
    pub volumes: DataPolicy,
}

/// `apps[].policy` and `source.allow_refs` as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HostPolicyView {
    /// `baseline`, `restricted` or `privileged`.
    pub profile: String,
    /// The exceptions, as written (`host_path:/srv/media`, `cap:NET_ADMIN`…).
    pub allow: Vec<String>,
    /// Refs whose revisions may be deployed (empty: any).
    pub allow_refs: Vec<String>,
}

/// `GET /api/v1/apps/{name}`: the summary, the live resource tree with health, the
/// volumes with their data policy and latest backup, and recent operations.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppDetail {
    #[serde(flatten)]
    pub summary: AppSummary,
    /// Each desired service's container, with its health.
    pub resources: Vec<ResourceHealth>,
    pub networks: Vec<NetworkNode>,
    pub volumes: Vec<VolumeView>,
    /// Why the live resources could not be read (the rest of the page still shows).
    pub resources_error: Option<String>,
    /// The app's backups, newest first (at most [`AppDetail::BACKUPS_SHOWN`]).
    pub backups: Vec<BackupRow>,
    /// The first line of the message of each revision in `operations`, by id (those
    /// the source could read).
    pub revision_subjects: std::collections::BTreeMap<String, String>,
    /// The app's latest operations, newest first.
    pub operations: Vec<OperationRecord>,
}

impl AppDetail {
    /// Backups listed with an app.
    pub const BACKUPS_SHOWN: usize = 30;

    /// Revisions this app ran, newest first, with when each was deployed (from its
    /// successful operations).
    pub fn deployed_revisions(&self) -> Vec<(&str, i64)> {
        let mut out: Vec<(&str, i64)> = Vec::new();
        for op in &self.operations {
            if op.result != Some(mooring_store::OpResult::Succeeded) {
                continue;
            }
            if let Some(r) = op.revision.as_deref() {
                if !out.iter().any(|(x, _)| *x == r) {
                    out.push((r, op.started_at));
                }
            }
        }
        out
    }

    /// Volumes some container of the app writes to (a rollback keeps their data).
    pub fn written_volumes(&self) -> Vec<&str> {
        self.volumes
            .iter()
            .filter(|v| v.volume.used_by.iter().any(|u| !u.ends_with("(ro)")))
            .map(|v| v.volume.name.as_str())
            .collect()
    }
}

/// A volume of the app: whether it exists, its data policy, who mounts it, and its
/// latest backup.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VolumeView {
    #[serde(flatten)]
    pub volume: VolumeNode,
    pub last_backup: Option<BackupBrief>,
}

/// A backup as the app page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BackupBrief {
    pub id: String,
    /// Unix ms.
    pub created_at: i64,
    pub bytes: i64,
    pub files: i64,
}

impl From<&BackupRow> for BackupBrief {
    fn from(b: &BackupRow) -> BackupBrief {
        BackupBrief {
            id: b.id.clone(),
            created_at: b.created_at,
            bytes: b.bytes,
            files: b.files,
        }
    }
}

/// `GET /api/v1/apps/{name}/diff`: the plan a sync would execute now, and desired
/// against live for every resource.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiffView {
    pub app: String,
    pub revision: String,
    pub revision_describe: String,
    pub in_sync: bool,
    /// The plan's actions as the CLI prints them: what, and why.
    pub steps: Vec<Step>,
    pub plan: Plan,
    /// The plan's fingerprint: a sync or rollback given it as `expect_plan` applies
    /// this plan or nothing.
    pub plan_digest: String,
    pub comparisons: Vec<Comparison>,
}

/// One action of a plan, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Step {
    /// `recreate container blog-web-1`.
    pub text: String,
    /// `recreate`.
    pub verb: String,
    pub reason: String,
}

/// `GET /api/v1/apps/{name}/operations`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OperationList {
    pub operations: Vec<OperationRecord>,
}

/// `GET /api/v1/apps/{name}/backups`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BackupList {
    pub backups: Vec<BackupRow>,
    /// What each of the app's `backup_targets` holds (`data.copy_to`).
    pub copies: Vec<TargetCopies>,
}

/// The app's backups on one backup target: their ids (a backup only there is restored
/// from there), or why the target cannot be read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetCopies {
    pub target: String,
    pub ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /api/v1/events`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventList {
    pub events: Vec<EventRecord>,
}

/// `GET /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TokenList {
    pub tokens: Vec<mooring_store::TokenRecord>,
}

/// `POST /api/v1/tokens`: the new token; its secret is shown this once.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NewTokenView {
    pub name: String,
    pub role: Role,
    /// Unix ms; `None`: it does not expire.
    pub expires_at: Option<i64>,
    /// The apps it is limited to; `None`: every app.
    pub apps: Option<Vec<String>>,
    /// The secret, shown once.
    pub token: String,
}

/// Every error: what went wrong and what to do.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorView {
    pub error: String,
}

/// `POST /api/v1/apps/{name}/sync` and `/rollback`: how the operation ended (`ok`
/// false with the failure's kind and message; the HTTP status says which), the app's
/// status after it, and for a rollback the volumes whose data it did not revert.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OperationOutcome {
    pub ok: bool,
    /// `invalid`, `conflict`, `source`, `apply` or `stopping`, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What failed and what to do, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub status: Option<AppStatus>,
    /// The operation this request started, with its actions (`None`: nothing needed
    /// doing, or the request was refused before any operation started).
    pub operation: Option<OperationRecord>,
    /// A rollback of an app with volumes: reverting a revision does not revert data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_warning: Option<DataWarning>,
}

/// The volumes a rollback left as they were, and the backups of that time.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DataWarning {
    pub message: String,
    pub volumes: Vec<String>,
    /// When the target revision was last deployed before (unix ms).
    pub deployed_at: Option<i64>,
    /// When another revision replaced it (unix ms).
    pub replaced_at: Option<i64>,
    /// Backups of those volumes taken while the target ran, or before.
    pub backups: Vec<BackupMark>,
}

/// A backup a data warning offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BackupMark {
    pub id: String,
    pub volume: String,
    pub created_at: i64,
}

/// A request taken; what it asked runs in the background.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Accepted {
    pub ok: bool,
}

/// `POST /api/v1/apps/{name}/pin` and `/unpin`: the pin now (`null`: none).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PinView {
    pub ok: bool,
    pub pinned: Option<String>,
}

/// How a host is, as its watcher last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum HostCondition {
    /// It answers, and its Engine is the one it is known by.
    Reachable,
    /// It does not answer.
    Unreachable,
    /// It answers as another Docker Engine: nothing is deployed to it until accepted.
    Replaced,
    /// Not asked yet.
    Unknown,
}

/// One Docker host (`GET /api/v1/hosts`, `POST /api/v1/hosts/{name}/accept`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostView {
    pub name: String,
    /// Its endpoint, as configured (`tcp://…`, `ssh://…`, `unix://…`).
    pub endpoint: String,
    pub condition: HostCondition,
    /// Why it is unreachable or replaced.
    pub message: Option<String>,
    /// When its Engine last answered (Unix ms).
    pub last_seen: Option<i64>,
    /// Its Engine's id, as checked since it last came (back).
    pub engine_id: Option<String>,
    /// The apps deployed to it.
    pub apps: Vec<String>,
}

impl HostView {
    pub fn new(
        name: String,
        endpoint: String,
        h: crate::controller::HostHealth,
        apps: Vec<String>,
    ) -> HostView {
        let (condition, message) = match (&h.unreachable, &h.replaced, &h.engine_id) {
            (Some(why), _, _) => (HostCondition::Unreachable, Some(why.clone())),
            (None, Some(why), _) => (HostCondition::Replaced, Some(why.clone())),
            (None, None, Some(_)) => (HostCondition::Reachable, None),
            (None, None, None) => (HostCondition::Unknown, None),
        };
        HostView {
            name,
            endpoint,
            condition,
            message,
            last_seen: h.last_seen,
            engine_id: h.engine_id,
            apps,
        }
    }
}

/// `GET /api/v1/hosts`: every configured host.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostList {
    pub hosts: Vec<HostView>,
}

/// `POST /api/v1/reload`: the apps the new configuration declares.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Reloaded {
    pub ok: bool,
    pub apps: Vec<String>,
}

/// A webhook delivery's answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HookAnswer {
    pub message: String,
}

/// `POST /api/v1/apps/{name}/backups` and `/backups/{id}/restore`: how the backup or
/// restore ended (`ok` false with the error; HTTP 502), and the operation recorded for
/// it, with one action per volume.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DataOutcome {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub operation: Option<OperationRecord>,
    /// The backups taken (a backup).
    pub backups: Vec<BackupRow>,
    /// What was restored (a restore).
    pub restored: Option<RestoredView>,
}

/// `POST /api/v1/apps/{name}/backups/{id}/verify`: whether the backup still matches its
/// manifest (HTTP 200), or why not (`ok` false, HTTP 422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VerifyView {
    pub backup: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tar entries, regular files and their bytes checked, and the archive's size.
    pub entries: u64,
    pub files: u64,
    pub bytes: u64,
    pub archive_size: u64,
    /// What a person reads: `backup … verified: 3 files, 12 bytes match its manifest`.
    pub message: String,
}

/// A restore's result: which backup went into which volume, checked against its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RestoredView {
    pub backup: String,
    pub volume: String,
    pub files: u64,
    pub bytes: u64,
    /// The volume did not exist and was created for the restore.
    pub created: bool,
}
