//! Mooring's source layer: where desired state lives and how it gets onto disk.
//!
//! Vocabulary:
//! - a **Source** ([`SourceSpec`]) is where desired state lives: a Git, Subversion
//!   or Mercurial repository, or a plain local directory;
//! - a **Revision** ([`Revision`]) is an immutable id of the source's content: the
//!   commit id for Git, the revision number for Subversion, the changeset id for
//!   Mercurial, a content hash (`sha256:<hex>`) for a plain directory; its
//!   [`tree`](Revision::tree) identifies the content of the requested path;
//! - a **Snapshot** ([`Snapshot`]) is the file tree at a revision, a directory on disk.
//!
//! [`Cache`] does the work: [`Cache::fetch_path`] (or [`Cache::fetch`] for the
//! whole source) brings the source up to date and resolves it to a [`Revision`];
//! [`Cache::path_tree`] tells, without fetching again, the [`tree`](Revision::tree)
//! any path has at an already fetched revision;
//! [`Cache::checkout`] materializes (part of) that revision as a [`Snapshot`];
//! [`Cache::verify`] checks Git signatures against a [`VerifyPolicy`];
//! [`Cache::revision_info`] tells who made a revision, when and why
//! ([`RevisionInfo`]).
//! [`Cache::with_credentials`] attaches a user name and password or token, and for
//! SSH transports a private key ([`SshKey`]) and the host keys to trust
//! ([`KnownHosts`]).
//!
//! Every tool is driven through its command line (`git`, `svn`, `hg`, `gpg`) with
//! argument vectors, never a shell, so their transports work. None of them
//! prompts, they run with `LC_ALL=C`, and nothing from a repository runs: Git
//! hooks are disabled, Mercurial reads no repository configuration at all (so no
//! hooks), Subversion externals and Mercurial subrepositories are never fetched.
//! URLs are always redacted ([`redact_url`]) before they appear in errors or
//! `Debug`/`Display` output, and so is every tool's stderr; configured passwords
//! and keys never reach a command line, a cache folder name or a message (a key
//! given as a value is a private temporary file while one command runs). SSH host
//! keys are always checked.
//!
//! On-disk layout under `<data_dir>/sources/`:
//! ```text
//! git/<sha256(url)[..16]>/repo.git                       bare cache repository
//! git/<sha256(url)[..16]>/url.txt                        redacted URL, for humans
//! git/<sha256(url)[..16]>/lock/                          held while fetching
//! git/<sha256(url)[..16]>/snapshots/<commit>/<pathkey>/  immutable snapshots
//! git/<sha256(url)[..16]>/meta/<commit>/<pathkey>        tree and subject, remembered
//! hg/<sha256(url)[..16]>/repo                            Mercurial cache repository
//! hg/<sha256(url)[..16]>/{url.txt,lock/,snapshots/<node>/<pathkey>/,meta/<node>/<pathkey>}
//! svn/<sha256(url)[..16]>/log/<rev>                      first lines of log messages
//! svn/<sha256(url)[..16]>/info/<rev>                     author, time, whole message
//! svn/<sha256(url)[..16]>/{url.txt,snapshots/<rev>/<pathkey>/}
//! ```
//! `<pathkey>` is `root` for the whole repository and `sub-<sha256(path)[..16]>`
//! for a sub-folder (for Subversion, of the ref and the path). Snapshots are never
//! deleted by this crate.

mod cache;
mod credentials;
mod dir;
mod error;
mod git;
mod git_cache;
mod hg;
mod info;
mod lock;
mod memo;
#[cfg(test)]
mod poll_tests;
mod redact;
mod run;
mod snapshot;
mod spec;
mod ssh;
mod svn;
mod tree;
mod verify;

pub use cache::{Cache, Revision, Snapshot};
pub use credentials::{Credentials, KnownHosts, SshKey};
pub use error::SourceError;
pub use info::RevisionInfo;
pub use redact::redact_url;
pub use run::Timeouts;
pub use spec::SourceSpec;
pub use tree::sync_tree;
pub use verify::{
    SignatureFormat, SignedObject, Verified, VerifyError, VerifyKey, VerifyMode, VerifyPolicy,
};
