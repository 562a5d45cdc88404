//! Mooring's source layer: where desired state lives and how it gets onto disk.
//!
//! Vocabulary:
//! - a **Source** ([`SourceSpec`]) is where desired state lives: a Git repository
//!   or a plain local directory;
//! - a **Revision** ([`Revision`]) is an immutable id of the source's content: the
//!   commit id for Git, a content hash (`sha256:<hex>`) for a plain directory;
//! - a **Snapshot** ([`Snapshot`]) is the file tree at a revision, a directory on disk.
//!
//! [`Cache`] does the work: [`Cache::fetch`] brings the source up to date and
//! resolves it to a [`Revision`]; [`Cache::checkout`] materializes (part of) that
//! revision as a [`Snapshot`].
//!
//! Git is driven through the `git` command line (argument vectors, never a shell),
//! so every transport and credential helper Git supports works. Git never prompts
//! (`GIT_TERMINAL_PROMPT=0`, askpass disabled, ssh in batch mode unless the user
//! configured their own ssh command), runs with `LC_ALL=C`, and hooks are disabled.
//! URLs are always redacted ([`redact_url`]) before they appear in errors or
//! `Debug`/`Display` output, and so is Git's stderr.
//!
//! On-disk layout under `<data_dir>/sources/`:
//! ```text
//! git/<sha256(url)[..16]>/repo.git                       bare cache repository
//! git/<sha256(url)[..16]>/url.txt                        redacted URL, for humans
//! git/<sha256(url)[..16]>/lock/                          held while fetching
//! git/<sha256(url)[..16]>/snapshots/<commit>/<pathkey>/  immutable snapshots
//! ```
//! `<pathkey>` is `root` for the whole repository and `sub-<sha256(path)[..16]>`
//! for a sub-folder. Snapshots are never deleted by this crate.

mod cache;
mod dir;
mod error;
mod git;
mod lock;
mod redact;
mod spec;
mod tree;

pub use cache::{Cache, Revision, Snapshot};
pub use error::SourceError;
pub use redact::redact_url;
pub use spec::SourceSpec;
pub use tree::sync_tree;
