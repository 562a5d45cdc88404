//! From command-line arguments to a rendered project (through `mooring_render`).

use anyhow::{bail, Context, Result};
use mooring_compose::{load, LoadOptions};
use mooring_core::{Policy, Project};
use mooring_render::{render, shell_environment, RenderRequest, Rendered};
use mooring_sops::{Keys, Sops};
use mooring_vcs::{redact_url, Cache, Credentials, KnownHosts, SourceSpec, SshKey};
use std::path::Path;
use std::sync::Arc;

/// What the command line says of the project: `-f`, `--app`, `--profile`.
pub struct ProjectArgs<'a> {
    pub files: &'a [String],
    pub app: Option<&'a str>,
    pub profiles: &'a [String],
}

impl ProjectArgs<'_> {
    /// Interpolation's environment: the shell's (minus `MOORING_*`), with
    /// `COMPOSE_PROFILES` from `--profile` when given (as Compose's flag wins).
    fn environment(&self) -> std::collections::BTreeMap<String, String> {
        let mut env = shell_environment();
        if !self.profiles.is_empty() {
            env.insert("COMPOSE_PROFILES".into(), self.profiles.join(","));
        }
        env
    }
}

/// Renders a local project folder (validate, render): an encrypted file no key opens
/// is read with its values as `***` (and a note says so).
pub fn local(dir: &Path, args: &ProjectArgs<'_>, keys: Keys) -> Result<Project> {
    let opts = LoadOptions {
        project_dir: dir.to_path_buf(),
        snapshot_root: dir.to_path_buf(),
        files: args.files.to_vec(),
        project_name: args.app.map(str::to_string),
        environment: args.environment(),
        decrypter: Some(Arc::new(Sops::masking(keys))),
        ..Default::default()
    };
    Ok(load(&opts)?)
}

/// What to fetch, from the command line.
pub struct SourceRequest<'a> {
    /// SOURCE.
    pub source: &'a str,
    /// `--ref`.
    pub reference: Option<&'a str>,
    /// `--path`.
    pub path: &'a str,
    /// `--ssh-key` (relative to the current folder).
    pub ssh_key: Option<&'a Path>,
    /// `--known-hosts`: a file (relative to the current folder) or `accept-new`.
    pub known_hosts: Option<&'a str>,
}

/// Fetches SOURCE at REF and renders the project at PATH in it.
pub fn from_source(
    data_dir: &Path,
    req: &SourceRequest<'_>,
    args: &ProjectArgs<'_>,
    policy: &Policy,
    keys: Keys,
) -> Result<Rendered> {
    let spec = SourceSpec::parse(req.source, req.reference)?;
    let mut cache = Cache::new(data_dir);
    if req.ssh_key.is_some() || req.known_hosts.is_some() {
        if !spec.uses_ssh() {
            bail!(
                "--ssh-key and --known-hosts need an SSH source (ssh://…, user@host:path, \
                 svn+ssh://…, hg+ssh://…); {} is not one",
                redact_url(req.source)
            );
        }
        let cwd = std::env::current_dir().context("cannot read the current folder")?;
        let mut credentials = Credentials::default();
        if let Some(key) = req.ssh_key {
            credentials = credentials.with_ssh_key(SshKey::File(cwd.join(key)));
        }
        if let Some(known) = req.known_hosts {
            credentials = credentials.with_known_hosts(KnownHosts::parse(known, &cwd));
        }
        cache = cache.with_credentials(credentials);
    }
    let revision = cache.fetch_path(&spec, req.path)?;
    Ok(render(RenderRequest {
        cache: &cache,
        data_dir,
        spec: &spec,
        revision: &revision,
        path: req.path,
        files: args.files,
        app: args.app,
        host: None,
        swarm: false,
        environment: args.environment(),
        policy,
        protected: &[],
        decrypter: Some(Arc::new(Sops::strict(keys))),
    })?)
}
