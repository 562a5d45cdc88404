//! Label keys Mooring puts on what it creates: its own `io.mooring.*` identity labels
//! and Compose's labels, so `docker compose ls/ps` show Mooring's projects.

/// Marks every resource Mooring manages.
pub const MANAGED_BY: &str = "io.mooring.managed-by";
/// Value of [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "mooring";
/// The app (Compose project) a resource belongs to.
pub const APP: &str = "io.mooring.app";
/// sha256 of the canonical desired container spec and the repository files it mounts.
pub const SPEC_HASH: &str = "io.mooring.spec-hash";
/// The desired spec a container was created from, as compact JSON without the
/// environment's values (the next plan names the fields that changed).
pub const SPEC: &str = "io.mooring.spec";
/// sha256 of the repository files a container bind-mounts (explains a redeploy).
pub const FILES_HASH: &str = "io.mooring.files-hash";
/// The files copied into a container, `TARGET=DIGEST` separated by `;` (see
/// `InlineFile::digest`): a plan names the secret or config that changed.
pub const FILES: &str = "io.mooring.files";
/// On an image Mooring built: `<inputs hash> <project>/<service>` — the build's inputs
/// (`Build::inputs`) and whose image it is. One label: the Engine's classic builder
/// commits a step per label.
pub const BUILD: &str = "io.mooring.build";

/// The value of [`BUILD`] for a build of `service` of `project` from `inputs`.
pub fn build_value(inputs: &str, project: &str, service: &str) -> String {
    format!("{inputs} {project}/{service}")
}

/// The inputs hash and the `project/service` of a [`BUILD`] label's value.
pub fn parse_build_value(value: &str) -> (&str, &str) {
    value.split_once(' ').unwrap_or((value, ""))
}
/// A volume's data policy, remembered on the volume when it is created from an
/// `x-mooring: { data: … }` annotation (the annotation is gone once the volume is not declared).
pub const DATA_POLICY: &str = "io.mooring.data-policy";

/// Compose's project label.
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
/// Compose's service label.
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
/// Compose's replica number label.
pub const COMPOSE_CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// Compose's one-off (`run`) marker.
pub const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";
/// Compose's project folder label.
pub const COMPOSE_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// Compose's config files label (comma separated).
pub const COMPOSE_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// Compose's hash of a container's configuration: Compose v2 lists only containers
/// that carry it (`docker compose ls/ps/logs/top`). Mooring writes its spec hash.
pub const COMPOSE_CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// The Compose version that made a container. Mooring writes
/// [`COMPOSE_VERSION_FOLLOWED`].
pub const COMPOSE_VERSION: &str = "com.docker.compose.version";
/// The Compose v2 release whose behaviour Mooring follows and is tested against.
pub const COMPOSE_VERSION_FOLLOWED: &str = "2.40.3";
/// A container's dependencies as Compose writes them: `service:condition:restart`,
/// comma separated.
pub const COMPOSE_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// The id of the image a container was created from (`sha256:…`).
pub const COMPOSE_IMAGE: &str = "com.docker.compose.image";
/// Compose's network name label (on networks).
pub const COMPOSE_NETWORK: &str = "com.docker.compose.network";
/// Compose's volume name label (on volumes).
pub const COMPOSE_VOLUME: &str = "com.docker.compose.volume";
