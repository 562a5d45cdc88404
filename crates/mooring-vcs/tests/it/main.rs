//! The source layer's integration tests, one test binary: real git, svn and hg servers on
//! loopback, sshd, gpg.
mod conformance;
mod credentials;
mod dir;
mod git;
mod hg;
mod revision_info;
mod ssh;
mod svn;
mod verify;
