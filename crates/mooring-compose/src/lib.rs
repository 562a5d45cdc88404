//! Mooring's Compose loader: reads Compose files from a snapshot and renders the
//! **Desired** state ([`mooring_core::Project`]). Pure apart from reading the
//! snapshot's files: YAML with positions, interpolation, `.env` and `env_file`,
//! several files merged, encrypted data files decrypted through the caller's
//! [`Decrypter`], validation with `file:line:col` errors.
//!
//! Invariant: nothing outside the snapshot root is read; every key is either
//! understood or rejected with its position (never silently ignored).

pub mod build_context;
pub mod compose_hash;
pub mod decode;
pub mod dotenv;
pub mod encrypted;
pub mod error;
pub mod interpolate;
pub mod limits;
mod load;
pub mod merge;
pub mod output;
pub mod paths;
pub mod yaml;

pub use encrypted::{Decrypter, Plaintext};
pub use error::{LoadError, Pos};
pub use load::{load, normalize_project_name, LoadOptions, COMPOSE_FILE_NAMES};
