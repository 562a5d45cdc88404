//! Mooring's pure core: the domain vocabulary (Desired, Live, Plan, Action), the
//! planner that turns `Desired × Live` into a readable [`Plan`], and the spec hash.
//!
//! Invariant: no I/O, no async runtime, no Docker types. Everything here is
//! deterministic and unit-testable; the edges (compose loader, Docker provider, CLI)
//! convert their types into these.

pub mod clock;
pub mod desired;
pub mod dockerignore;
pub mod files;
pub mod hash;
pub mod health;
pub mod host_access;
pub mod labels;
pub mod live;
pub mod mask;
pub mod plan;
pub mod policy;
pub mod settings;
pub mod state;
pub mod view;

pub use desired::{
    parse_age, parse_backup_schedule, BindOptions, Build, Consistency, ConsistentBackup,
    DataPolicy, DependsOn, DependsOnCondition, Healthcheck, Hook, Ipam, IpamPool, Mount, MountKind,
    Network, Port, Project, PullPolicy, Retention, Service, ServiceNetwork, Volume, VolumeOptions,
};
pub use files::{BuildSecret, FileKind, FileRef, InlineFile, ProjectFile, SwarmFile};
pub use health::{app_health, Health, ResourceHealth};
pub use host_access::{Device, DeviceRequest, HostAccess};
pub use live::{ContainerState, Live, LiveContainer, LiveNetwork, LiveVolume};
pub use mask::EnvMask;
pub use plan::{plan, Action, Plan, PlanOptions, PlannedAction};
pub use policy::{Exception, HostFacts, Policy, Profile, Verdict};
pub use settings::{Logging, Settings, Ulimit};
pub use state::{Condition, ConditionKind, EventKind, SyncState, UnknownWord};
pub use view::{compare, resource_tree, short_revision, Comparison, ResourceTree};
