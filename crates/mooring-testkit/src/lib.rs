//! Test support shared by Mooring's integration tests. Everything here drives real
//! components: the `git` CLI and `git daemon` on 127.0.0.1, and the machine's Docker
//! daemon through the `docker` CLI. Missing tools make tests fail, never skip.

pub mod docker;
pub mod git;
