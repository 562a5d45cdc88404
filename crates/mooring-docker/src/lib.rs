//! Mooring's Docker provider: observes the **Live** state of an app through the Docker
//! Engine API (`bollard`) and executes **Plans**. Bollard types never leave this crate:
//! they are converted to `mooring-core` types here, at the boundary.
//!
//! - [`convert`]: desired service → container create body; inspect data → live types (pure).
//! - [`Provider`]: connection, observe, execute actions.
//! - [`reconcile`]: observe → plan → apply for one rendered project (the sync operation).
//! - [`volumes`]: volume content in and out; `requested`: the backups and restores a
//!   person asks for.

mod build;
mod build_progress;
mod build_session;
pub mod consistent;
mod convert;
mod endpoint;
mod engine_http;
pub mod logs;
pub mod pin;
mod provider;
pub mod reconcile;
mod registry;
mod requested;
pub mod stack;
mod transport;
pub mod volumes;

pub use endpoint::{Endpoint, SshIdentity, SshOptions, Tls};
pub use provider::{BackupWhy, ContainerEvent, DockerError, Host, Provider, ProviderError};
pub use reconcile::{reconcile, ActionResult, Outcome, Progress, ReconcileOptions};
pub use registry::{registry_of, Registries, RegistryAuth};
pub use requested::RestoreDone;
