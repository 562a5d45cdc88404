//! Test support shared by Mooring's integration tests. Everything here drives real
//! components: the `git` CLI and `git daemon`, `svnadmin`/`svn` and `svnserve`,
//! `hg` and `hg serve` (all on 127.0.0.1), OpenSSH's `sshd` on 127.0.0.1 for the
//! SSH transports, `gpg` and `ssh-keygen` for keys, the machine's Docker daemon
//! through the `docker` CLI, and headless Chromium through `chromedriver` for the web
//! UI. Missing tools make tests fail, never skip.

pub mod blackhole;
pub mod browser;
pub mod docker;
pub mod engine;
pub mod git;
pub mod hg;
pub mod http;
pub mod signing;
pub mod sops;
pub mod ssh;
pub mod svn;
pub mod swarm;
