//! The `mooring` binary's black-box tests, one test binary (linked once): each module
//! drives the real binary against the machine's Docker, real VCS servers on loopback,
//! SQLite on disk and Chromium.
mod common;

mod architecture;
mod auto_rollback;
mod backup;
mod backup_copies;
mod build;
mod compose_v2;
mod consistent_backup;
mod data_kill;
mod data_policy;
mod drift;
mod git_sync;
mod hosts;
mod logs;
mod managed_app;
mod network;
mod ordering;
mod policy;
mod pull;
mod render;
mod serve;
mod sops;
mod ssh_sync;
mod swarm;
mod ui;
mod vcs_sync;
